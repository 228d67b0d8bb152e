//! Answers that need no connection state (spec §3.6, §4.15, §4.16, §6.1, §10.1): REJECT,
//! VERSION_REJECT, RETRY and stateless resets, queued by the endpoint and written straight
//! into the caller's buffer by `poll_transmit`.

use super::*;

/// An answer that needs no connection state.
#[derive(Clone, Copy, Debug)]
pub(super) enum Stateless {
    /// In the version of the HELLO it answers.
    Reject {
        to: SocketAddr,
        client: ConnectionId,
        reject: Reject,
        version: u16,
    },
    VersionReject {
        to: SocketAddr,
        dcid: ConnectionId,
        scid: ConnectionId,
        versions: wire::VersionRange,
    },
    Retry {
        to: SocketAddr,
        client: ConnectionId,
        token: Token,
        version: u16,
    },
    /// A stateless reset of `len` bytes (spec §6.1): a data packet's invariant header of
    /// `version` with random bytes for the rest, ending with `token`.
    Reset {
        to: SocketAddr,
        version: u16,
        len: u8,
        random: [u8; MAX_RESET_LEN - 16],
        token: [u8; 16],
    },
}

/// The shortest stateless reset (and the shortest datagram checked for one): a data
/// packet's invariant header (11 bytes), 15 random bytes, the 16-byte token (spec §6.1).
pub(super) const MIN_RESET_LEN: usize = 42;
/// The longest stateless reset; only longer datagrams are answered with one, so a reset
/// never answers a reset and is always shorter than what it answers.
pub(super) const MAX_RESET_LEN: usize = 64;

/// The header of a stateless handshake answer (REJECT, RETRY) to `client`: no connection id
/// of ours, packet number 0 (spec §3.3).
fn stateless_header(client: ConnectionId, now: Instant, version: u16) -> Header {
    Header {
        version,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Handshake {
            scid: ConnectionId::UNSET,
        },
        dcid: client,
        number: 0,
        number_len: PacketNumberLen::One,
        timestamp: now.wire_timestamp(),
    }
}

pub(super) fn write_stateless(s: Stateless, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
    match s {
        Stateless::Reject {
            to,
            client,
            reject,
            version,
        } => {
            let header = stateless_header(client, now, version);
            let mut w = PacketWriter::new(buf, &header).ok()?;
            w.push(&Frame::Reject(reject)).ok()?;
            Some(Transmit {
                destination: to,
                len: w.finish().ok()?,
            })
        }
        Stateless::Retry {
            to,
            client,
            token,
            version,
        } => {
            let header = stateless_header(client, now, version);
            let mut w = PacketWriter::new(buf, &header).ok()?;
            w.push(&Frame::Retry(wire::Retry {
                token: Bytes::copy_from_slice(&token),
            }))
            .ok()?;
            Some(Transmit {
                destination: to,
                len: w.finish().ok()?,
            })
        }
        Stateless::VersionReject {
            to,
            dcid,
            scid,
            versions,
        } => {
            let vr = VersionReject {
                dcid,
                scid,
                versions: smallvec::smallvec![versions],
            };
            Some(Transmit {
                destination: to,
                len: vr.encode(buf).ok()?,
            })
        }
        Stateless::Reset {
            to,
            version,
            len,
            random,
            token,
        } => {
            let len = usize::from(len);
            let out = buf.get_mut(..len)?;
            out[..len - 16].copy_from_slice(&random[..len - 16]);
            out[..2].copy_from_slice(&version.to_be_bytes());
            // A short header's flags: what any data packet of this version shows.
            out[2] &= !wire::FLAG_LONG;
            out[len - 16..].copy_from_slice(&token);
            Some(Transmit { destination: to, len })
        }
    }
}
