//! One event queue with room, lent to the connection the endpoint is about to call: the
//! events the call raises land in memory the endpoint used a moment ago, not in that
//! connection's own queue, which among many connections is cold (its box and its room: two
//! or three cache lines missed on every call that raises an event: at 10,000 connections
//! 8% of a message's misses of a 2 MiB cache; adapters/bench/rounds.md, "After the
//! fifty-fourth round").
//!
//! It is lent for the calls the peer's traffic makes (a datagram, a timer), which raise
//! nearly every event; an application's command raises few and fills the connection's
//! own queue (lending for commands too cost one connection's round trip 36 instructions,
//! with no miss to save in the bench: a build not committed, rounds.md says how).
//!
//! The room is kept for the endpoint's life: it is what the most events one call raised
//! needed, and a call's events are bounded by what one datagram's frames or one
//! connection's streams can raise (some hundreds, tens of kilobytes, once per endpoint).
//! Letting larger room go at each return cost a regrowth, and its copies, on every ACK
//! that settles many messages: 1% of the messages' instructions of one connection
//! (`transfer_count aes256gcm messages`, a build not committed). Without the loan each connection kept the room
//! its own largest call needed, until trimmed idle. A connection's trim comes in a timer's
//! call, so while it holds the lent queue: it leaves the queue alone, and its own queue's
//! room goes once the endpoint has taken the loan back (`Connection::trim_own_events`).
//! When the trim let the lent room go, the next datagram made it again (a box and its
//! room) on each end of every round trip that found its connection trimmed.
//!
//! Inputs: the slot to be called and its queue, just before the call ([`EventLoan::lend`]),
//! and again once the endpoint has collected the call's events ([`EventLoan::reclaim`]), or
//! as its connection goes ([`EventLoan::forget`]). No output: which events are raised, in
//! what order, and when the endpoint collects them are as without the loan (the golden
//! traces of spec/traces/ replay byte for byte). A queue that is not empty is never lent
//! into, so the loan cannot put a later event before an earlier one.

use core::mem;

use crate::event::Event;
use crate::thin_deque::ThinDeque;

/// The queue and whom it is lent to.
#[derive(Debug, Default)]
pub(super) struct EventLoan {
    /// While lent: the borrower's own queue (empty), set aside.
    queue: ThinDeque<Event>,
    /// The slot that has the queue.
    to: Option<u32>,
}

impl EventLoan {
    /// Lends the queue to connection `slot`, whose queue is `events`, unless it is lent
    /// already (to `slot` itself, across a batch of its datagrams; or to another, when the
    /// call nests: then `slot` uses its own) or `events` holds something not yet collected.
    #[inline]
    pub(super) fn lend(&mut self, slot: u32, events: &mut ThinDeque<Event>) {
        if self.to.is_none() && events.is_empty() {
            mem::swap(&mut self.queue, events);
            self.to = Some(slot);
        }
    }

    /// Takes the queue back from `slot` once its events were collected (`events` is
    /// empty): its own goes back to it. Nothing if the queue is not lent to `slot`.
    #[inline]
    pub(super) fn reclaim(&mut self, slot: u32, events: &mut ThinDeque<Event>) {
        if self.to != Some(slot) || !events.is_empty() {
            return;
        }
        mem::swap(&mut self.queue, events);
        self.to = None;
    }

    /// Connection `slot` is gone, with the queue if it had it: the set-aside one (empty),
    /// now the endpoint's, is lent next.
    #[inline]
    pub(super) fn forget(&mut self, slot: u32) {
        if self.to == Some(slot) {
            self.to = None;
        }
    }

    /// Whether the queue is out (for tests).
    #[cfg(test)]
    pub(super) fn is_lent(&self) -> bool {
        self.to.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectionHandle;

    fn event(n: u32) -> Event {
        Event::Writable {
            conn: ConnectionHandle::new(n, 0),
        }
    }

    fn drain(q: &mut ThinDeque<Event>) -> alloc::vec::Vec<Event> {
        core::iter::from_fn(|| q.pop_front()).collect()
    }

    #[test]
    fn a_lent_queue_keeps_its_room_across_borrowers_and_each_keeps_its_own() {
        let mut loan = EventLoan::default();
        let (mut a, mut b) = (ThinDeque::default(), ThinDeque::default());
        loan.lend(1, &mut a);
        a.push_back(event(1));
        assert!(!b.has_room());
        // Lent to 1 already: 2 uses its own.
        loan.lend(2, &mut b);
        b.push_back(event(2));
        assert_eq!(drain(&mut a), [event(1)]);
        loan.reclaim(1, &mut a);
        assert!(!a.has_room(), "1 has its own (roomless) queue back");
        assert_eq!(drain(&mut b), [event(2)]);
        loan.reclaim(2, &mut b);
        assert!(b.has_room(), "2's own queue is its own");
        let mut c = ThinDeque::default();
        loan.lend(3, &mut c);
        assert!(c.has_room(), "the room 1 made is lent to 3");
    }

    #[test]
    fn a_queue_holding_events_is_never_lent_into_nor_taken_back_unread() {
        let mut loan = EventLoan::default();
        let mut a = ThinDeque::default();
        a.push_back(event(1));
        loan.lend(1, &mut a);
        assert!(!loan.is_lent());
        a.push_back(event(2));
        assert_eq!(drain(&mut a), [event(1), event(2)]);
        loan.lend(1, &mut a);
        a.push_back(event(3));
        loan.reclaim(1, &mut a);
        assert!(loan.is_lent(), "taken back with an event uncollected");
        assert_eq!(drain(&mut a), [event(3)]);
        loan.reclaim(1, &mut a);
        assert!(!loan.is_lent());
    }

    #[test]
    fn the_room_a_call_made_is_kept_and_a_gone_borrower_is_forgotten() {
        let mut loan = EventLoan::default();
        let mut a = ThinDeque::default();
        loan.lend(1, &mut a);
        for n in 0..300 {
            a.push_back(event(n));
        }
        drain(&mut a);
        loan.reclaim(1, &mut a);
        let mut b = ThinDeque::default();
        loan.lend(2, &mut b);
        assert!(b.capacity() >= 300, "the room 1's call made is lent again");
        b.push_back(event(2));
        // 2 is gone with the queue: the next borrower gets the one set aside.
        loan.forget(2);
        let mut c = ThinDeque::default();
        loan.lend(3, &mut c);
        assert!(loan.is_lent() && !c.has_room());
        loan.reclaim(2, &mut c);
        assert!(loan.is_lent(), "only its borrower gives it back");
    }

    /// A connection's trim comes in a timer's call, while it has the endpoint's queue: the
    /// trim must leave that room to the endpoint (it let it go, and the next call lent a
    /// queue without room: two allocations on each end of every round trip that found its
    /// connection trimmed), and let the connection's own room go instead.
    #[test]
    fn a_trim_lets_the_connection_s_own_room_go_and_leaves_the_lent_room() {
        let (mut net, c) = super::super::harness::Net::connected();
        let data = bytes::Bytes::from_static(b"hi");
        net.eps[0].send_message(c, None, data).unwrap();
        let limit = net.now + crate::time::Duration::from_millis(10);
        net.run_until(limit);
        assert!(
            net.eps.iter().all(|ep| ep.loan.queue.has_room()),
            "each lent room"
        );
        // The client's connection makes room of its own (as a command raising an event
        // does), empty again once collected.
        let own = net.eps[0].conns.iter_mut().flatten().next().unwrap();
        own.events_mut().push_back(event(9));
        assert_eq!(own.take_event(), Some(event(9)));
        assert!(own.holds_event_room());
        // Quiet until both ends trimmed.
        let limit = net.now + crate::time::Duration::from_secs(3);
        net.run_until(limit);
        for ep in &net.eps {
            assert!(!ep.loan.is_lent());
            assert!(ep.loan.queue.has_room(), "the endpoint's room is its own");
            assert!(ep.conns.iter().flatten().all(|c| !c.holds_event_room()));
        }
    }

    #[test]
    fn every_loan_comes_back_and_the_connections_own_queues_stay_unmade() {
        let (mut net, c) = super::super::harness::Net::connected();
        let served = net.served();
        let mut read = 0;
        for i in 0..20u8 {
            let data = bytes::Bytes::from(alloc::vec![i; 100]);
            net.eps[0].send_message(c, None, data).unwrap();
            let limit = net.now + crate::time::Duration::from_millis(10);
            net.run_until(limit);
            while let Some((_, crate::Read::Data { bytes, .. })) =
                net.eps[1].next_message(served, u64::MAX).unwrap()
            {
                assert_eq!(bytes, alloc::vec![read; 100]);
                read += 1;
            }
            assert!(net.eps.iter().all(|ep| !ep.loan.is_lent()), "message {i}");
        }
        assert_eq!(read, 20);
        // The last receipt is lazy: its acknowledgement's delay, then it goes.
        let limit = net.now + crate::time::Duration::from_millis(200);
        net.run_until(limit);
        assert!(net.eps.iter().all(|ep| !ep.loan.is_lent()));
        let told = |ep: usize, f: fn(&Event) -> bool| net.events[ep].iter().filter(|e| f(e)).count();
        assert_eq!(told(1, |e| matches!(e, Event::StreamOpened { .. })), 20);
        assert_eq!(told(0, |e| matches!(e, Event::StreamDelivery { .. })), 20);
        // Every event of the peer's traffic went through the lent queue: neither
        // connection made its own.
        for ep in &net.eps {
            assert!(ep.conns.iter().flatten().all(|c| !c.holds_event_room()));
        }
    }
}
