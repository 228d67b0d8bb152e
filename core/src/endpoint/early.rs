//! Sealed datagrams that arrive before their keys (spec/protocol.md §7, Established; RFC
//! 9001 §5.7 allows the same). A server answering an XX handshake has no keys until the
//! client's NOISE_FINISH, and the data packets the client sends right after it overtake it
//! on a path that reorders (a Wi-Fi hop whose delay jitters by more than the gap between
//! them). Dropped, each was a loss the client found only a loss-detection period later, and
//! a real one: no ACK ever named it, so NewReno's first reduction could not be undone and
//! it started in congestion avoidance. Kept instead, and opened once the keys are in.
//!
//! Inputs: a sealed datagram for a connection still waiting for its keys; the connection
//! having them; the connection's slot freed. Outputs: that connection's datagrams, in the
//! order they came, to be opened now. Memory: at most [`PER_CONNECTION`] datagrams for a
//! connection and [`TOTAL_BYTES`] for the endpoint, whatever the number of handshakes; a
//! datagram past either bound is dropped, as before (counted unauthenticated), so a peer
//! that sends junk under a connection id it learned pins nothing more than that, and
//! crowds out at worst the early datagrams of others, which then cost what they cost
//! before.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::BytesMut;

use super::Endpoint;
use crate::handle::ConnectionHandle;
use crate::time::Instant;
use crate::wire::Invariant;

/// Datagrams kept for one connection: a client's first flight after NOISE_FINISH is its
/// PING and what its initial window lets out (ten datagrams at most); the first of them are
/// the ones worth keeping.
pub(super) const PER_CONNECTION: usize = 8;
/// Bytes kept for the whole endpoint.
pub(super) const TOTAL_BYTES: usize = 64 << 10;

/// One datagram kept: whose, from where, and its invariant header as routed.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) conn: ConnectionHandle,
    pub(super) from: SocketAddr,
    pub(super) invariant: Invariant,
    pub(super) datagram: BytesMut,
}

/// The datagrams kept, oldest first, and their bytes.
#[derive(Debug, Default)]
pub(super) struct Early {
    held: VecDeque<Held>,
    bytes: usize,
}

impl Early {
    /// Keeps `held` if both bounds allow; otherwise gives it back, to be dropped.
    pub(super) fn keep(&mut self, held: Held) -> Result<(), Held> {
        let len = held.datagram.len();
        // The bytes first: a flood of junk past them costs no walk of what is kept.
        if self.bytes + len > TOTAL_BYTES
            || self.held.iter().filter(|h| h.conn == held.conn).count() >= PER_CONNECTION
        {
            return Err(held);
        }
        self.bytes += len;
        self.held.push_back(held);
        Ok(())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Takes every datagram kept for `conn`, oldest first.
    pub(super) fn take(&mut self, conn: ConnectionHandle) -> Vec<Held> {
        if !self.held.iter().any(|h| h.conn == conn) {
            return Vec::new();
        }
        let (mine, others): (Vec<Held>, Vec<Held>) = core::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.conn == conn);
        self.held = others.into();
        self.bytes -= mine.iter().map(|h| h.datagram.len()).sum::<usize>();
        mine
    }

    /// Lets go of what was kept for `conn` (its slot is freed); how many datagrams that was.
    pub(super) fn forget(&mut self, conn: ConnectionHandle) -> u64 {
        self.take(conn).len() as u64
    }

    /// Bytes kept now.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Endpoint {
    /// Connection `slot` may have its keys now (it handled a handshake packet): what was
    /// kept for it is opened and handled, in the order it came.
    pub(super) fn open_early(&mut self, slot: u32, now: Instant) {
        if self.early.is_empty() {
            return;
        }
        let Some(conn) = self.conns[slot as usize].as_ref().filter(|c| !c.awaits_keys()) else {
            return;
        };
        for held in self.early.take(conn.handle) {
            self.on_sealed_or_plain(slot, now, held.from, held.invariant, held.datagram);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(conn: u32, len: usize) -> Held {
        Held {
            conn: ConnectionHandle::new(conn, 0),
            from: "10.0.0.1:1".parse().unwrap(),
            invariant: Invariant {
                version: 2,
                dcid: crate::wire::ConnectionId::UNSET,
                scid: None,
            },
            datagram: BytesMut::zeroed(len),
        }
    }

    /// Eight datagrams a connection, 64 KiB in all; what is taken or forgotten makes room.
    #[test]
    fn both_bounds_hold() {
        let mut e = Early::default();
        for _ in 0..PER_CONNECTION {
            e.keep(held(1, 1200)).unwrap();
        }
        assert!(e.keep(held(1, 1200)).is_err(), "a ninth for one connection");
        for n in 0.. {
            if e.bytes() + 1200 > TOTAL_BYTES {
                break;
            }
            e.keep(held(2 + n / PER_CONNECTION as u32, 1200)).unwrap();
        }
        assert!(e.keep(held(99, 1200)).is_err(), "past the endpoint's bytes");
        assert_eq!(e.take(ConnectionHandle::new(1, 0)).len(), PER_CONNECTION);
        assert_eq!(e.forget(ConnectionHandle::new(2, 0)), PER_CONNECTION as u64);
        e.keep(held(99, 1200)).unwrap();
        assert!(e.take(ConnectionHandle::new(1, 0)).is_empty());
    }
}
