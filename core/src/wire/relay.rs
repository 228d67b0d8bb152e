//! Relay circuits on the wire (spec/protocol.md §12): the frames a peer and its relay
//! exchange on their own (authenticated) connection to set circuits up and tear them down
//! (§12.2, capability RELAY, version 2 only), and the header of a relayed datagram, which
//! carries another connection's datagram, opaque, between a circuit's end and the relay
//! (§12.3).

use alloc::boxed::Box;
use core::fmt;
use core::net::SocketAddr;

use super::address::{address_len, read_address, write_address};
use super::cursor::{bytes_at, varint_len, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::frame_types as types;
use super::hex::Hex;

/// The version number of a relayed datagram (§12.3): `0x5257`, "RW".
pub const RELAYED: u16 = 0x5257;

/// Bytes a relayed datagram adds to the one it carries: version, flags, circuit id.
pub const RELAY_HEADER_LEN: usize = 11;

/// Names one leg of a circuit at its relay: a circuit's two ends each hold their own, which
/// the relay chose at random (§12.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CircuitId(pub [u8; 8]);

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Hex(&self.0))
    }
}

/// Most candidate addresses one PUNCH_CANDIDATES carries (§12.5).
pub const MAX_CANDIDATES: usize = 4;

/// The addresses an end of a relayed connection may be reached at directly (§12.5): up to
/// [`MAX_CANDIDATES`], kept inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidates {
    len: u8,
    list: [SocketAddr; MAX_CANDIDATES],
}

impl Candidates {
    /// The first [`MAX_CANDIDATES`] of `addresses`.
    pub fn new(addresses: &[SocketAddr]) -> Candidates {
        let unspecified = SocketAddr::new(core::net::Ipv4Addr::UNSPECIFIED.into(), 0);
        let mut list = [unspecified; MAX_CANDIDATES];
        let mut len = 0;
        for (slot, address) in list.iter_mut().zip(addresses) {
            *slot = *address;
            len += 1;
        }
        Candidates { len, list }
    }

    /// The addresses.
    pub fn as_slice(&self) -> &[SocketAddr] {
        self.list.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// A frame of the relay exchange (§12.2), or of the hole punch two ends of a relayed
/// connection coordinate over it (§12.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayFrame {
    /// RELAY_RESERVE: keep me reachable by my key through you.
    Reserve {
        /// Names the request in the answer (from 1).
        request: u64,
    },
    /// RELAY_CONNECT: open a circuit to the peer holding `peer`.
    Connect {
        /// Names the request in the answer (from 1).
        request: u64,
        /// The public key of the peer wanted.
        peer: [u8; 32],
    },
    /// RELAY_ANSWER: a reservation granted (`code` 0), or a request refused (its reason).
    Answer {
        /// The request answered.
        request: u64,
        /// 0 for a reservation granted; else why not (§12.2, table of codes).
        code: u64,
    },
    /// RELAY_CIRCUIT: a circuit is open; `request` names the RELAY_CONNECT it answers, 0
    /// when the other end opened it.
    Circuit {
        /// The RELAY_CONNECT answered, or 0.
        request: u64,
        /// The id this end puts on its relayed datagrams.
        circuit: CircuitId,
        /// The public key of the other end, as it authenticated to the relay.
        peer: [u8; 32],
    },
    /// RELAY_CLOSED: the circuit ended (a limit, the other end gone, or asked by this end).
    Closed {
        /// This end's id of it.
        circuit: CircuitId,
        /// Why (§12.2, table of codes).
        code: u64,
    },
    /// PUNCH_CANDIDATES: where the sender may be reached directly, for hole punching
    /// round `round` (§12.5).
    Candidates {
        /// The round (from 1).
        round: u64,
        /// The sender's addresses. Boxed: a rare frame, and inline they made a relay frame
        /// 144 bytes, the largest of `Frame`'s variants, and with it every frame of every
        /// packet (`Frame`'s size, bounded by a test in `frame.rs` that prints the sizes).
        addresses: Box<Candidates>,
    },
    /// PUNCH_NOW: the initiator of round `round` punches half a round trip from now; the
    /// receiver punches at once (§12.5).
    PunchNow {
        /// The round.
        round: u64,
    },
}

impl RelayFrame {
    pub(crate) fn frame_type(&self) -> u64 {
        match self {
            RelayFrame::Reserve { .. } => types::RELAY_RESERVE,
            RelayFrame::Connect { .. } => types::RELAY_CONNECT,
            RelayFrame::Answer { .. } => types::RELAY_ANSWER,
            RelayFrame::Circuit { .. } => types::RELAY_CIRCUIT,
            RelayFrame::Closed { .. } => types::RELAY_CLOSED,
            RelayFrame::Candidates { .. } => types::PUNCH_CANDIDATES,
            RelayFrame::PunchNow { .. } => types::PUNCH_NOW,
        }
    }

    pub(super) fn read(r: &mut Reader, frame_type: u64) -> Result<Self, DecodeError> {
        let request = |r: &mut Reader| r.varint(Field::Request);
        let circuit = |r: &mut Reader| r.array::<8>(Field::Circuit).map(CircuitId);
        Ok(match frame_type {
            types::RELAY_RESERVE => RelayFrame::Reserve { request: request(r)? },
            types::RELAY_CONNECT => RelayFrame::Connect {
                request: request(r)?,
                peer: r.array::<32>(Field::PeerKey)?,
            },
            types::RELAY_ANSWER => RelayFrame::Answer {
                request: request(r)?,
                code: r.varint(Field::ErrorCode)?,
            },
            types::RELAY_CIRCUIT => RelayFrame::Circuit {
                request: request(r)?,
                circuit: circuit(r)?,
                peer: r.array::<32>(Field::PeerKey)?,
            },
            types::RELAY_CLOSED => RelayFrame::Closed {
                circuit: circuit(r)?,
                code: r.varint(Field::ErrorCode)?,
            },
            types::PUNCH_CANDIDATES => {
                let round = r.varint(Field::Request)?;
                let n = usize::from(r.u8(Field::Address)?);
                if n > MAX_CANDIDATES {
                    return Err(Violation::LimitExceeded {
                        limit: Limit::Candidates,
                        value: n as u64,
                        max: MAX_CANDIDATES as u64,
                    }
                    .into());
                }
                let mut list = [SocketAddr::new(core::net::Ipv4Addr::UNSPECIFIED.into(), 0); MAX_CANDIDATES];
                for slot in list.iter_mut().take(n) {
                    *slot = read_address(r)?;
                }
                RelayFrame::Candidates {
                    round,
                    addresses: Box::new(Candidates { len: n as u8, list }),
                }
            }
            _ => RelayFrame::PunchNow { round: request(r)? },
        })
    }

    pub(super) fn body_len(&self) -> Result<usize, Violation> {
        Ok(match self {
            RelayFrame::Reserve { request } => varint_len(*request)?,
            RelayFrame::Connect { request, .. } => varint_len(*request)? + 32,
            RelayFrame::Answer { request, code } => varint_len(*request)? + varint_len(*code)?,
            RelayFrame::Circuit { request, .. } => varint_len(*request)? + 8 + 32,
            RelayFrame::Closed { code, .. } => 8 + varint_len(*code)?,
            RelayFrame::Candidates { round, addresses } => {
                varint_len(*round)? + 1 + addresses.as_slice().iter().map(address_len).sum::<usize>()
            }
            RelayFrame::PunchNow { round } => varint_len(*round)?,
        })
    }

    pub(super) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            RelayFrame::Reserve { request } => w.varint(*request),
            RelayFrame::Connect { request, peer } => {
                w.varint(*request)?;
                w.put(peer)
            }
            RelayFrame::Answer { request, code } => {
                w.varint(*request)?;
                w.varint(*code)
            }
            RelayFrame::Circuit {
                request,
                circuit,
                peer,
            } => {
                w.varint(*request)?;
                w.put(&circuit.0)?;
                w.put(peer)
            }
            RelayFrame::Closed { circuit, code } => {
                w.put(&circuit.0)?;
                w.varint(*code)
            }
            RelayFrame::Candidates { round, addresses } => {
                w.varint(*round)?;
                w.u8(addresses.len)?;
                addresses.as_slice().iter().try_for_each(|a| write_address(w, a))
            }
            RelayFrame::PunchNow { round } => w.varint(*round),
        }
    }
}

/// One line, in the text form of spec/vectors/README.md.
impl fmt::Display for RelayFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayFrame::Reserve { request } => write!(f, "RELAY_RESERVE request={request}"),
            RelayFrame::Connect { request, peer } => {
                write!(f, "RELAY_CONNECT request={request} peer={}", Hex(peer))
            }
            RelayFrame::Answer { request, code } => write!(f, "RELAY_ANSWER request={request} code={code}"),
            RelayFrame::Circuit {
                request,
                circuit,
                peer,
            } => write!(
                f,
                "RELAY_CIRCUIT request={request} circuit={circuit} peer={}",
                Hex(peer)
            ),
            RelayFrame::Closed { circuit, code } => write!(f, "RELAY_CLOSED circuit={circuit} code={code}"),
            RelayFrame::Candidates { round, addresses } => {
                write!(f, "PUNCH_CANDIDATES round={round} addresses=")?;
                for (i, a) in addresses.as_slice().iter().enumerate() {
                    write!(f, "{}{a}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
            RelayFrame::PunchNow { round } => write!(f, "PUNCH_NOW round={round}"),
        }
    }
}

/// Writes the header of a relayed datagram on circuit `circuit` into `buf` (at least
/// [`RELAY_HEADER_LEN`] bytes); the datagram it carries follows it.
pub fn write_relay_header(buf: &mut [u8], circuit: CircuitId) -> Result<(), EncodeError> {
    let mut w = Writer::new(buf);
    w.u16(RELAYED)?;
    w.u8(0)?;
    w.put(&circuit.0)
}

/// The circuit of a relayed datagram and where the datagram it carries starts; `None` if
/// `datagram` is not one (another version, a flags byte other than 0, too short to carry
/// anything).
pub fn read_relay_header(datagram: &[u8]) -> Option<CircuitId> {
    let [high, low, flags] = bytes_at(datagram, 0, Field::Version).ok()?;
    if datagram.len() <= RELAY_HEADER_LEN || u16::from_be_bytes([high, low]) != RELAYED || flags != 0 {
        return None;
    }
    bytes_at(datagram, 3, Field::Circuit).ok().map(CircuitId)
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use bytes::Bytes;

    use super::*;

    #[test]
    fn candidates_keep_the_first_four_in_order() {
        let addresses: Vec<SocketAddr> = (1..=6)
            .map(|i| SocketAddr::new([192, 0, 2, i].into(), 5000))
            .collect();
        assert_eq!(
            Candidates::new(&addresses).as_slice(),
            &addresses[..MAX_CANDIDATES]
        );
        assert_eq!(Candidates::new(&addresses[..2]).as_slice(), &addresses[..2]);
        assert!(Candidates::new(&[]).as_slice().is_empty());
    }

    #[test]
    fn every_relay_frame_round_trips_at_its_length() {
        let circuit = CircuitId([1, 2, 3, 4, 5, 6, 7, 8]);
        for f in [
            RelayFrame::Reserve { request: 1 },
            RelayFrame::Connect {
                request: 300,
                peer: [7; 32],
            },
            RelayFrame::Answer { request: 2, code: 0 },
            RelayFrame::Circuit {
                request: 0,
                circuit,
                peer: [9; 32],
            },
            RelayFrame::Closed { circuit, code: 6 },
            RelayFrame::Candidates {
                round: 1,
                addresses: Box::new(Candidates::new(&[
                    "192.0.2.1:5000".parse().unwrap(),
                    "[2001:db8::2]:6000".parse().unwrap(),
                ])),
            },
            RelayFrame::Candidates {
                round: 2,
                addresses: Box::new(Candidates::new(&[])),
            },
            RelayFrame::PunchNow { round: 3 },
        ] {
            let mut buf = [0u8; 128];
            let mut w = Writer::new(&mut buf);
            f.write(&mut w).unwrap();
            let written: Vec<u8> = w.written().to_vec();
            assert_eq!(written.len(), f.body_len().unwrap());
            let mut r = Reader::new(Bytes::from(written));
            assert_eq!(RelayFrame::read(&mut r, f.frame_type()).unwrap(), f);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn more_than_four_candidates_is_refused() {
        let mut r = Reader::new(Bytes::from_static(&[0x01, 5]));
        assert!(matches!(
            RelayFrame::read(&mut r, types::PUNCH_CANDIDATES),
            Err(DecodeError::Violation(Violation::LimitExceeded {
                limit: Limit::Candidates,
                ..
            }))
        ));
        let five: Vec<SocketAddr> = (0..5)
            .map(|i| SocketAddr::new([192, 0, 2, i].into(), 1))
            .collect();
        assert_eq!(Candidates::new(&five).as_slice(), &five[..4]);
    }

    #[test]
    fn the_relay_header_is_the_invariant_header_with_the_circuit_for_a_connection_id() {
        let mut d = [0u8; 20];
        write_relay_header(&mut d, CircuitId([0xaa; 8])).unwrap();
        assert_eq!(&d[..3], [0x52, 0x57, 0x00]);
        assert_eq!(read_relay_header(&d), Some(CircuitId([0xaa; 8])));
        // Nothing carried, another version, or flags set: not a relayed datagram.
        assert_eq!(read_relay_header(&d[..RELAY_HEADER_LEN]), None);
        let mut other = d;
        other[1] = 0x58;
        assert_eq!(read_relay_header(&other), None);
        let mut flags = d;
        flags[2] = 0x80;
        assert_eq!(read_relay_header(&flags), None);
    }
}
