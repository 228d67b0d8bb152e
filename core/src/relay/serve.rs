//! A relay's side of circuits (spec/protocol.md §12.2, §12.4): which peers are reachable
//! through it (reservations, by key), which circuits are open (two legs each, one per end,
//! each with its own random id, the address its datagrams must come from, and what it may
//! still forward), and where a relayed datagram goes. Every limit of [`RelayConfig`] is
//! checked here; what it decides, the endpoint carries out (module `endpoint::relaying`).
//!
//! Memory: one reservation entry per reserved peer and two legs per circuit, bounded by
//! `max_reservations` and `max_circuits` whatever peers ask.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{RelayConfig, RelayRefusal};
use crate::crypto::keys::PublicKey;
use crate::handle::ConnectionHandle;
use crate::time::Instant;
use crate::wire::CircuitId;

/// One end of a circuit, as the relay keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leg {
    /// The end's connection to the relay: the circuit ends with it.
    pub(crate) conn: ConnectionHandle,
    /// The address the end's relayed datagrams come from, and go to.
    pub(crate) addr: SocketAddr,
    /// The other end's id.
    pub(crate) other: CircuitId,
    /// The RELAY_CONNECT that opened the circuit, on the asking end's leg (0 on the other):
    /// a copy of it (its acknowledgement was lost) opens nothing more.
    request: u64,
    /// Bytes forwarded from this end.
    forwarded: u64,
    /// When the relay ends the circuit.
    deadline: Instant,
}

/// What becomes of a relayed datagram that came to the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forward {
    /// Sent on to `addr` under the other end's id.
    To { addr: SocketAddr, id: CircuitId },
    /// No circuit of ours has this id: not for the relay.
    Unknown,
    /// From another address than the leg's: dropped (spoofed, or the end moved; a moved
    /// end's connection to the relay tells the new address).
    WrongSource,
    /// The circuit reached a limit: it is closed, both ends to be told why.
    Closed {
        /// Each end's connection and id.
        ends: [(ConnectionHandle, CircuitId); 2],
        /// Which limit.
        reason: RelayRefusal,
    },
}

/// A relay's reservations and circuits.
#[derive(Debug)]
pub(crate) struct Relay {
    config: RelayConfig,
    /// Peers reachable through us, by key: the connection each reserved on.
    reserved: BTreeMap<PublicKey, ConnectionHandle>,
    /// Every leg of every circuit, by its id.
    legs: BTreeMap<CircuitId, Leg>,
    /// Legs per connection, for the per-peer limit.
    per_conn: BTreeMap<ConnectionHandle, usize>,
}

impl Relay {
    pub(crate) fn new(config: RelayConfig) -> Self {
        Relay {
            config,
            reserved: BTreeMap::new(),
            legs: BTreeMap::new(),
            per_conn: BTreeMap::new(),
        }
    }

    /// The peer `key` on `conn` asks to be reachable. A newer reservation of the same key
    /// replaces the older (the peer reconnected).
    pub(crate) fn reserve(&mut self, conn: ConnectionHandle, key: PublicKey) -> Result<(), RelayRefusal> {
        if self.config.reservers.check(&key) == crate::config::PeerDecision::Refuse {
            return Err(RelayRefusal::NotAllowed);
        }
        if !self.reserved.contains_key(&key) && self.reserved.len() >= self.config.max_reservations {
            return Err(RelayRefusal::ReservationsFull);
        }
        self.reserved.insert(key, conn);
        Ok(())
    }

    /// The connection the peer `key` reserved on, if any.
    pub(crate) fn reservation(&self, key: &PublicKey) -> Option<ConnectionHandle> {
        self.reserved.get(key).copied()
    }

    /// Whether a leg of a circuit has `id`.
    pub(crate) fn holds(&self, id: CircuitId) -> bool {
        self.legs.contains_key(&id)
    }

    /// Whether `id` is free for a new leg.
    pub(crate) fn is_free(&self, id: CircuitId) -> bool {
        id != super::PENDING && !self.legs.contains_key(&id)
    }

    /// Whether `conn`'s request `request` opened a circuit already.
    pub(crate) fn opened(&self, conn: ConnectionHandle, request: u64) -> bool {
        request != 0 && self.legs.values().any(|l| l.conn == conn && l.request == request)
    }

    /// Opens a circuit between `a` (the asking end: its connection and address, and the
    /// request it asked with) and `b` (the reserved end), under the ids `ids` (free,
    /// distinct). `b` must be a reservation's connection (`reservation`).
    pub(crate) fn open(
        &mut self,
        now: Instant,
        a: (ConnectionHandle, SocketAddr, u64),
        b: (ConnectionHandle, SocketAddr),
        ids: [CircuitId; 2],
    ) -> Result<(), RelayRefusal> {
        let (a, request) = ((a.0, a.1), a.2);
        let per = |c| self.per_conn.get(&c).copied().unwrap_or(0);
        if self.legs.len() / 2 >= self.config.max_circuits
            || per(a.0) >= self.config.max_circuits_per_peer
            || per(b.0) >= self.config.max_circuits_per_peer
        {
            return Err(RelayRefusal::CircuitsFull);
        }
        let deadline = now + self.config.circuit_duration;
        for (end, id, other, request) in [(a, ids[0], ids[1], request), (b, ids[1], ids[0], 0)] {
            self.legs.insert(
                id,
                Leg {
                    conn: end.0,
                    addr: end.1,
                    other,
                    request,
                    forwarded: 0,
                    deadline,
                },
            );
            *self.per_conn.entry(end.0).or_default() += 1;
        }
        Ok(())
    }

    /// A relayed datagram of `len` bytes on leg `id` came from `from` at `now`.
    pub(crate) fn forward(&mut self, now: Instant, from: SocketAddr, id: CircuitId, len: usize) -> Forward {
        let Some(leg) = self.legs.get(&id).copied() else {
            return Forward::Unknown;
        };
        if leg.addr != from {
            return Forward::WrongSource;
        }
        let Some(other) = self.legs.get(&leg.other).copied() else {
            return Forward::Unknown;
        };
        let total = leg.forwarded + other.forwarded + len as u64;
        let reason = if now >= leg.deadline {
            Some(RelayRefusal::TimeLimit)
        } else if total > self.config.circuit_bytes {
            Some(RelayRefusal::ByteLimit)
        } else {
            None
        };
        if let Some(reason) = reason {
            return match self.close(id) {
                Some(ends) => Forward::Closed { ends, reason },
                None => Forward::Unknown,
            };
        }
        if let Some(l) = self.legs.get_mut(&id) {
            l.forwarded += len as u64;
        }
        Forward::To {
            addr: other.addr,
            id: leg.other,
        }
    }

    /// Ends the circuit of leg `id`: each end's connection and id, this leg's first; `None`
    /// if `id` names no leg (legs are made and removed in pairs, so a leg's other is there).
    fn close(&mut self, id: CircuitId) -> Option<[(ConnectionHandle, CircuitId); 2]> {
        let leg = self.legs.remove(&id)?;
        let other = self.legs.remove(&leg.other)?;
        for conn in [leg.conn, other.conn] {
            if let Some(n) = self.per_conn.get_mut(&conn) {
                *n -= 1;
                if *n == 0 {
                    self.per_conn.remove(&conn);
                }
            }
        }
        Some([(leg.conn, id), (other.conn, leg.other)])
    }

    /// The end on `conn` asks to close its leg `id` (it refused the circuit, or is done
    /// with it): the circuit ends; the other end, to be told.
    pub(crate) fn end_asked(
        &mut self,
        conn: ConnectionHandle,
        id: CircuitId,
    ) -> Option<(ConnectionHandle, CircuitId)> {
        if self.legs.get(&id).is_none_or(|l| l.conn != conn) {
            return None;
        }
        let [_, other] = self.close(id)?;
        Some(other).filter(|o| o.0 != conn)
    }

    /// `conn` ended: its reservation goes, and so does every circuit it was an end of. The
    /// other ends still connected, to be told (`PeerGone`).
    pub(crate) fn conn_closed(&mut self, conn: ConnectionHandle) -> Vec<(ConnectionHandle, CircuitId)> {
        self.reserved.retain(|_, c| *c != conn);
        let mine: Vec<CircuitId> = self
            .legs
            .iter()
            .filter(|(_, l)| l.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        let mut tell = Vec::new();
        for id in mine {
            // A circuit with both ends on `conn` went with its first leg.
            if let Some([_, other]) = self.close(id) {
                if other.0 != conn {
                    tell.push(other);
                }
            }
        }
        tell
    }

    /// Circuits open, and reservations held.
    pub(crate) fn load(&self) -> (usize, usize) {
        (self.legs.len() / 2, self.reserved.len())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;
    use crate::time::Duration;

    fn conn(i: u32) -> ConnectionHandle {
        ConnectionHandle::from_index(i)
    }

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::new([192, 0, 2, i].into(), 4000)
    }

    fn key(i: u8) -> PublicKey {
        PublicKey::from_bytes([i; 32])
    }

    #[test]
    fn a_circuit_forwards_each_way_from_its_ends_only_and_ends_at_its_byte_limit() {
        let mut r = Relay::new(RelayConfig {
            circuit_bytes: 3000,
            ..RelayConfig::default()
        });
        let (a, b) = (CircuitId([1; 8]), CircuitId([2; 8]));
        r.reserve(conn(2), key(2)).unwrap();
        assert_eq!(r.reservation(&key(2)), Some(conn(2)));
        r.open(Instant::ZERO, (conn(1), addr(1), 1), (conn(2), addr(2)), [a, b])
            .unwrap();
        let now = Instant::ZERO;
        assert_eq!(
            r.forward(now, addr(1), a, 1200),
            Forward::To { addr: addr(2), id: b }
        );
        assert_eq!(
            r.forward(now, addr(2), b, 1200),
            Forward::To { addr: addr(1), id: a }
        );
        assert_eq!(r.forward(now, addr(9), a, 10), Forward::WrongSource);
        // A copy of the request that opened it is known; another request, or the other end's
        // 0, is not.
        assert!(r.opened(conn(1), 1));
        assert!(!r.opened(conn(1), 2) && !r.opened(conn(2), 0));
        assert_eq!(r.forward(now, addr(1), CircuitId([3; 8]), 10), Forward::Unknown);
        assert_eq!(
            r.forward(now, addr(1), a, 1200),
            Forward::Closed {
                ends: [(conn(1), a), (conn(2), b)],
                reason: RelayRefusal::ByteLimit
            }
        );
        assert_eq!(r.forward(now, addr(2), b, 10), Forward::Unknown);
        assert_eq!(r.load(), (0, 1));
    }

    #[test]
    fn only_the_peers_the_relay_allows_may_reserve() {
        let mut r = Relay::new(RelayConfig {
            reservers: crate::config::PeerPolicy::Allow([key(1)].into_iter().collect()),
            max_reservations: 1,
            ..RelayConfig::default()
        });
        assert_eq!(r.reserve(conn(2), key(2)), Err(RelayRefusal::NotAllowed));
        assert_eq!(r.reserve(conn(1), key(1)), Ok(()));
        // Again, from a new connection: the newer replaces the older, within the limit.
        assert_eq!(r.reserve(conn(3), key(1)), Ok(()));
        assert_eq!(r.reservation(&key(1)), Some(conn(3)));
    }

    #[test]
    fn a_circuit_ends_at_its_time_limit_and_with_either_end_s_connection() {
        let mut r = Relay::new(RelayConfig {
            circuit_duration: Duration::from_secs(60),
            max_circuits_per_peer: 1,
            ..RelayConfig::default()
        });
        let ids = |n: u8| [CircuitId([n; 8]), CircuitId([n + 1; 8])];
        let t0 = Instant::ZERO;
        r.reserve(conn(2), key(2)).unwrap();
        r.open(t0, (conn(1), addr(1), 1), (conn(2), addr(2)), ids(1))
            .unwrap();
        // One circuit per peer: a second is refused for either end.
        assert_eq!(
            r.open(t0, (conn(3), addr(3), 1), (conn(2), addr(2)), ids(5)),
            Err(RelayRefusal::CircuitsFull)
        );
        let late = t0 + Duration::from_secs(60);
        assert!(matches!(
            r.forward(late, addr(1), CircuitId([1; 8]), 10),
            Forward::Closed {
                reason: RelayRefusal::TimeLimit,
                ..
            }
        ));
        r.open(late, (conn(3), addr(3), 2), (conn(2), addr(2)), ids(5))
            .unwrap();
        // The reserved end leaves: its reservation and circuit go; the other end is told.
        assert_eq!(r.conn_closed(conn(2)), vec![(conn(3), CircuitId([5; 8]))]);
        assert_eq!(r.reservation(&key(2)), None);
        assert_eq!(r.load(), (0, 0));
        // The end that asked may close its circuit; the other end is told.
        r.reserve(conn(2), key(2)).unwrap();
        r.open(late, (conn(1), addr(1), 3), (conn(2), addr(2)), ids(7))
            .unwrap();
        assert_eq!(r.end_asked(conn(2), CircuitId([7; 8])), None, "not its leg");
        assert_eq!(
            r.end_asked(conn(1), CircuitId([7; 8])),
            Some((conn(2), CircuitId([8; 8])))
        );
    }
}
