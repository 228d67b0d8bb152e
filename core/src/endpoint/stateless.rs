//! Answers that need no connection state (spec §3.6, §4.15, §4.16, §6.1, §10.1): REJECT,
//! VERSION_REJECT, RETRY and stateless resets, queued by the endpoint and written straight
//! into the caller's buffer by `poll_transmit`; and what arrives for no connection (a
//! stateless reset to check, a VERSION_REJECT for a client).

// What arrives here is anyone's datagram: no index or slice that is not checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

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

impl Stateless {
    /// Where the answer goes.
    pub(super) fn to(&self) -> SocketAddr {
        match self {
            Stateless::Reject { to, .. }
            | Stateless::VersionReject { to, .. }
            | Stateless::Retry { to, .. }
            | Stateless::Reset { to, .. } => *to,
        }
    }
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
            let (head, tail) = buf.get_mut(..len)?.split_at_mut_checked(len.checked_sub(16)?)?;
            head.copy_from_slice(random.get(..head.len())?);
            let [v0, v1, flags, ..] = head else {
                return None;
            };
            [*v0, *v1] = version.to_be_bytes();
            // A short header's flags: what any data packet of this version shows.
            *flags &= !wire::FLAG_LONG;
            tail.copy_from_slice(&token);
            Some(Transmit { destination: to, len })
        }
    }
}

impl Endpoint {
    /// A datagram for a connection id we do not know (spec §6.1): a stateless reset for one
    /// of our client connections if it ends with that connection's token (the connection
    /// ends, `CloseReason::Reset`); else, if it looks like a data packet of a connection we
    /// lost and is longer than any reset, answered with a stateless reset of our own.
    pub(super) fn on_unknown_connection(&mut self, from: SocketAddr, invariant: &Invariant, datagram: &[u8]) {
        self.stats.dropped_unknown_connection += 1;
        let len = datagram.len();
        let Some(tail) = datagram.last_chunk::<16>().filter(|_| len >= MIN_RESET_LEN) else {
            return;
        };
        if let Some(&slot) = self.by_reset.get(tail) {
            if let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) {
                conn.on_stateless_reset();
                self.stats.resets_received += 1;
            }
            self.touch(slot);
            return;
        }
        if invariant.scid.is_some() || len <= MAX_RESET_LEN {
            // Only data packets, and only those longer than any reset: a reset never answers
            // a reset, so two endpoints that lost state do not answer each other.
            return;
        }
        if self.stateless.len() >= MAX_STATELESS {
            // No room to answer: no token or random bytes made for nothing.
            self.stats.stateless_dropped += 1;
            return;
        }
        let mut random = [0u8; MAX_RESET_LEN - 16];
        self.entropy.fill(&mut random);
        // Of a random length, so that resets do not stand out by one.
        let spread = (MAX_RESET_LEN - MIN_RESET_LEN + 1) as u8;
        let reset_len = MIN_RESET_LEN as u8 + random.last().map_or(0, |r| r % spread);
        self.stats.resets_sent += 1;
        self.push_stateless(Stateless::Reset {
            to: from,
            version: invariant.version,
            len: reset_len,
            random,
            token: self.identity.reset_token(&invariant.dcid.0),
        });
    }

    /// Answers a HELLO of wire version `version` with REJECT (statelessly) and counts it.
    pub(super) fn reject(&mut self, to: SocketAddr, client: ConnectionId, reject: Reject, version: u16) {
        self.stats.rejected += 1;
        self.push_stateless(Stateless::Reject {
            to,
            client,
            reject,
            version,
        });
    }

    pub(super) fn push_stateless(&mut self, s: Stateless) {
        if self.stateless.len() < MAX_STATELESS {
            self.stateless.push_back(s);
        } else {
            self.stats.stateless_dropped += 1;
        }
    }

    pub(super) fn on_version_reject(&mut self, now: Instant, datagram: Bytes) {
        let Ok(vr) = VersionReject::decode(datagram) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let Some(slot) = self.by_cid.get(&vr.dcid) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        let Some(&server) = vr.versions.first() else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) {
            conn.on_version_reject(now, server, &self.config);
        }
        self.touch(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_packet, KeyPhase, PacketNumberLen, VersionRange};

    /// A packet for no connection gets a stateless reset, shorter than itself; a reset, or
    /// anything as short, gets nothing, so two endpoints that both lost state do not answer
    /// each other for ever (spec §6.1).
    #[test]
    fn a_reset_answers_a_longer_packet_and_never_a_reset() {
        let config = Config {
            versions: VersionRange::ENCRYPTED_OR_PLAINTEXT,
            ..Config::default()
        };
        let mut ep = Endpoint::new(config, 1);
        let (now, from) = (Instant::ZERO, SocketAddr::new([10, 0, 0, 7].into(), 9));
        let header = Header {
            version: VERSION_1,
            kind: PacketKind::Data,
            dcid: ConnectionId::from_u64(99),
            number: 0,
            number_len: PacketNumberLen::One,
            timestamp: 0,
            key_phase: KeyPhase::Zero,
        };
        let mut buf = [0u8; 1500];
        let len = encode_packet(&header, &[Frame::Padding(200)], &mut buf).unwrap();
        ep.handle_datagram(now, from, BytesMut::from(&buf[..len]));
        let t = ep.poll_transmit(now, &mut buf).expect("a stateless reset");
        assert_eq!(t.destination, from);
        assert!((MIN_RESET_LEN..=MAX_RESET_LEN).contains(&t.len) && t.len < len);
        assert_eq!(ep.stats().resets_sent, 1);
        // The reset, come back: a packet for no connection, no longer than a reset.
        let reset = BytesMut::from(&buf[..t.len]);
        ep.handle_datagram(now, from, reset);
        assert!(ep.poll_transmit(now, &mut buf).is_none());
        assert_eq!(ep.stats().resets_sent, 1);
    }
}
