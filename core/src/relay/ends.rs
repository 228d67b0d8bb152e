//! A peer's side of relay circuits (spec/protocol.md §12.2): the requests it sent its
//! relays and what each waits for, the relay connections it holds a reservation on, and
//! the circuits it is an end of, each with the relay it runs through and the key of the
//! peer at its far end.
//!
//! Memory: at most [`MAX_CIRCUITS`] circuits, whatever relays send; a request lives until
//! answered or its relay connection ends.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::crypto::keys::PublicKey;
use crate::handle::ConnectionHandle;
use crate::wire::CircuitId;

/// Circuits one endpoint is an end of at once; a relay that opens more gets them refused.
pub(crate) const MAX_CIRCUITS: usize = 256;

/// What a request to a relay waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// A reservation.
    Reserve,
    /// A circuit for the connection `inner`, which waits at the pending circuit address.
    Connect { inner: ConnectionHandle },
}

/// A circuit this endpoint is an end of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct End {
    /// Our connection to the relay.
    pub(crate) relay: ConnectionHandle,
    /// The relay's address: where the circuit's datagrams go, and the only one they may
    /// come from.
    pub(crate) relay_addr: SocketAddr,
    /// The far end's key, as the relay authenticated it.
    pub(crate) peer: PublicKey,
}

/// A peer's requests, reservations and circuits.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    next_request: u64,
    pending: BTreeMap<(ConnectionHandle, u64), Pending>,
    reserved_on: BTreeSet<ConnectionHandle>,
    circuits: BTreeMap<CircuitId, End>,
}

impl Ends {
    /// A request to the relay on `relay`, waiting for `what`: its number (from 1).
    pub(crate) fn request(&mut self, relay: ConnectionHandle, what: Pending) -> u64 {
        self.next_request += 1;
        self.pending.insert((relay, self.next_request), what);
        self.next_request
    }

    /// The relay on `relay` answered `request`: what it waited for, once.
    pub(crate) fn answered(&mut self, relay: ConnectionHandle, request: u64) -> Option<Pending> {
        self.pending.remove(&(relay, request))
    }

    /// The relay on `relay` granted a reservation.
    pub(crate) fn reserved(&mut self, relay: ConnectionHandle) {
        self.reserved_on.insert(relay);
    }

    /// Whether we hold a reservation on `relay`.
    pub(crate) fn is_reserved(&self, relay: ConnectionHandle) -> bool {
        self.reserved_on.contains(&relay)
    }

    /// Whether we asked `relay` for a reservation and wait for its answer.
    pub(crate) fn reserving(&self, relay: ConnectionHandle) -> bool {
        self.pending
            .range((relay, 0)..=(relay, u64::MAX))
            .any(|(_, p)| *p == Pending::Reserve)
    }

    /// A circuit opened; false if it cannot be kept (its id is taken, or too many are open).
    pub(crate) fn open(&mut self, id: CircuitId, end: End) -> bool {
        if id == super::PENDING || self.circuits.contains_key(&id) || self.circuits.len() >= MAX_CIRCUITS {
            return false;
        }
        self.circuits.insert(id, end);
        true
    }

    /// The circuit `id`, if we are an end of it.
    pub(crate) fn get(&self, id: CircuitId) -> Option<End> {
        self.circuits.get(&id).copied()
    }

    /// The circuit `id` ended, if it ran through `relay`.
    pub(crate) fn close(&mut self, relay: ConnectionHandle, id: CircuitId) -> Option<End> {
        if self.circuits.get(&id).is_some_and(|e| e.relay == relay) {
            return self.circuits.remove(&id);
        }
        None
    }

    /// Our connection `relay` ended: its reservation, requests and circuits go. The
    /// connections that waited for a circuit from it, and the circuits that ran through it.
    pub(crate) fn relay_closed(
        &mut self,
        relay: ConnectionHandle,
    ) -> (Vec<ConnectionHandle>, Vec<CircuitId>) {
        self.reserved_on.remove(&relay);
        let mut waiting = Vec::new();
        self.pending.retain(|(r, _), p| {
            if *r != relay {
                return true;
            }
            if let Pending::Connect { inner } = p {
                waiting.push(*inner);
            }
            false
        });
        let gone: Vec<CircuitId> = self
            .circuits
            .iter()
            .filter(|(_, e)| e.relay == relay)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.circuits.remove(id);
        }
        (waiting, gone)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    #[test]
    fn requests_are_answered_once_and_a_relay_s_end_takes_its_circuits_and_waiters() {
        let (r1, r2, inner) = (
            ConnectionHandle::from_index(1),
            ConnectionHandle::from_index(2),
            ConnectionHandle::from_index(3),
        );
        let mut e = Ends::default();
        let a = e.request(r1, Pending::Reserve);
        let b = e.request(r1, Pending::Connect { inner });
        assert_eq!(e.answered(r1, a), Some(Pending::Reserve));
        assert_eq!(e.answered(r1, a), None, "once");
        assert_eq!(e.answered(r2, b), None, "another relay's answer");
        let end = End {
            relay: r2,
            relay_addr: "192.0.2.2:1".parse().unwrap(),
            peer: PublicKey::from_bytes([5; 32]),
        };
        assert!(e.open(CircuitId([1; 8]), end));
        assert!(!e.open(CircuitId([1; 8]), end), "an id in use");
        assert!(!e.open(super::super::PENDING, end), "the pending id");
        assert_eq!(e.close(r1, CircuitId([1; 8])), None, "not through r1");
        assert_eq!(e.relay_closed(r1), (vec![inner], vec![]));
        assert_eq!(e.relay_closed(r2), (vec![], vec![CircuitId([1; 8])]));
        assert_eq!(e.get(CircuitId([1; 8])), None);
    }
}
