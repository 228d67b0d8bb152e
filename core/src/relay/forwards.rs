//! A relay's queue of datagrams to forward (spec/protocol.md §12.3): first in, first out,
//! bounded, and fair among circuits when it overflows. A full queue makes room for a
//! circuit with fewer datagrams waiting by dropping the newest of the circuit with the
//! most (longest-queue drop, as fair-queueing routers do): a circuit that floods the relay
//! loses its own datagrams, not the others', while a circuit alone may use the whole queue.
//!
//! An owned part of the endpoint. Inputs: datagrams the relay forwards, each with the
//! circuit it came on. Outputs: the datagrams in order, and whether one was dropped.

use alloc::collections::{BTreeMap, VecDeque};
use core::net::SocketAddr;

use bytes::BytesMut;

use crate::wire::CircuitId;

/// Datagrams waiting, at most; beyond, one is dropped (the circuit's ends recover from the
/// loss as from any other).
pub(crate) const MAX_FORWARDS: usize = 256;

/// The queue.
#[derive(Debug, Default)]
pub(crate) struct Forwards {
    /// Datagrams in arrival order: the circuit each came on, where it goes.
    queue: VecDeque<(CircuitId, SocketAddr, BytesMut)>,
    /// Datagrams waiting, by circuit (circuits with none are not kept).
    waiting: BTreeMap<CircuitId, u16>,
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued, nothing dropped.
    Queued,
    /// Queued, and the newest datagram of the circuit with the most waiting dropped.
    Displaced,
    /// Not queued: the queue is full and no circuit has more waiting than this one.
    Dropped,
}

impl Forwards {
    /// Queues `datagram`, from `circuit`, for `to`.
    pub(crate) fn push(&mut self, circuit: CircuitId, to: SocketAddr, datagram: BytesMut) -> Pushed {
        let mut pushed = Pushed::Queued;
        if self.queue.len() >= MAX_FORWARDS {
            let own = self.waiting.get(&circuit).copied().unwrap_or(0);
            // The most waiting; of equals, the lowest id (deterministic).
            let longest = self
                .waiting
                .iter()
                .max_by(|(a, m), (b, n)| m.cmp(n).then(b.cmp(a)))
                .map(|(&id, &n)| (id, n));
            match longest {
                Some((victim, n)) if n > own.saturating_add(1) => {
                    if let Some(i) = self.queue.iter().rposition(|(c, _, _)| *c == victim) {
                        self.queue.remove(i);
                        self.forget(victim);
                    }
                    pushed = Pushed::Displaced;
                }
                _ => return Pushed::Dropped,
            }
        }
        self.queue.push_back((circuit, to, datagram));
        *self.waiting.entry(circuit).or_default() += 1;
        pushed
    }

    /// The oldest datagram and where it goes.
    /// Whether nothing waits to be forwarded.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn pop(&mut self) -> Option<(SocketAddr, BytesMut)> {
        let (circuit, to, datagram) = self.queue.pop_front()?;
        self.forget(circuit);
        Some((to, datagram))
    }

    /// One datagram of `circuit` left the queue.
    fn forget(&mut self, circuit: CircuitId) {
        if let Some(n) = self.waiting.get_mut(&circuit) {
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(&circuit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn drain(q: &mut Forwards) -> Vec<u8> {
        core::iter::from_fn(|| q.pop()).map(|(_, d)| d[0]).collect()
    }

    const TO: SocketAddr = SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 9);

    /// A circuit alone uses the whole queue; a second circuit that arrives while the first
    /// fills it still gets every datagram through, the flooding circuit losing its newest;
    /// each circuit's datagrams stay in order.
    #[test]
    fn a_flooding_circuit_loses_its_own_datagrams_not_the_others() {
        let (flood, quiet) = (CircuitId([1; 8]), CircuitId([2; 8]));
        let mut q = Forwards::default();
        let pushes: Vec<Pushed> = (0..300)
            .map(|_| q.push(flood, TO, BytesMut::from(&[1u8][..])))
            .collect();
        assert_eq!(
            pushes.iter().filter(|&&p| p == Pushed::Queued).count(),
            MAX_FORWARDS
        );
        assert_eq!(
            pushes.iter().filter(|&&p| p == Pushed::Dropped).count(),
            300 - MAX_FORWARDS
        );
        for _ in 0..10 {
            assert_eq!(q.push(quiet, TO, BytesMut::from(&[2u8][..])), Pushed::Displaced);
        }
        let out = drain(&mut q);
        assert_eq!(out.len(), MAX_FORWARDS);
        assert_eq!(
            out.iter().filter(|&&c| c == 2).count(),
            10,
            "every quiet datagram"
        );
        // The flood's 246 oldest go first, then the quiet circuit's, in order.
        assert!(out[..246].iter().all(|&c| c == 1));
        assert!(q.waiting.is_empty(), "nothing counted for an empty queue");
    }

    /// Two circuits flooding together share the full queue about evenly: each push from the
    /// one with fewer waiting displaces one of the other's.
    #[test]
    fn two_floods_share_the_queue() {
        let (a, b) = (CircuitId([1; 8]), CircuitId([2; 8]));
        let mut q = Forwards::default();
        for _ in 0..MAX_FORWARDS {
            q.push(a, TO, BytesMut::from(&[1u8][..]));
        }
        for _ in 0..1000 {
            q.push(b, TO, BytesMut::from(&[2u8][..]));
            q.push(a, TO, BytesMut::from(&[1u8][..]));
        }
        let (na, nb) = (q.waiting[&a], q.waiting[&b]);
        assert_eq!(usize::from(na + nb), MAX_FORWARDS);
        assert!(na.abs_diff(nb) <= 2, "{na} and {nb}");
    }
}
