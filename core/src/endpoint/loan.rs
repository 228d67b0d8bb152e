//! Which connection has what the endpoint lends: an event queue with room and emptied
//! stream boxes (module `connection::lent`), swapped for the connection's own before the
//! endpoint calls it and back once the call's events are collected. A call's events and
//! its new streams then land in memory the endpoint used a moment ago, not in the
//! connection's own queue and spare boxes, which among many connections are cold by its
//! next message (at 10,000 connections the queue alone was 8% of a message's misses of a
//! 2 MiB cache; adapters/bench/rounds.md, "After the fifty-fourth round").
//!
//! Inputs: the slot to be called and its connection, just before the call
//! ([`Loan::lend`]); again once the endpoint has collected the call's events
//! ([`Loan::reclaim`], in `refile_timer`); or the slot, as its connection goes
//! ([`Loan::forget`]). No output: which events are raised, in what order, and when the
//! endpoint collects them are as without the loan (the golden traces of spec/traces/
//! replay byte for byte), since a swap never moves an event; which emptied box a stream
//! is made in changes nothing it does.
//!
//! Lent to one connection at a time: a call that nests inside another's (a relay's
//! circuit, a pipe's target) uses its own. What is lent is kept for the endpoint's life:
//! the queue's room is what the most events one call raised needed, bounded by one
//! datagram's frames or one connection's streams (some hundreds, tens of kilobytes, once
//! per endpoint), and the boxes are bounded as a connection's spares are (its peer's
//! stream limit, module `stream_table`). Letting room past 256 events go at each return
//! cost a regrowth, and its copies, on every ACK that settles many messages: 1% of one
//! connection's messages' instructions (`transfer_count aes256gcm messages`).

use crate::connection::{Connection, Lent};

/// What is lent, and to whom.
#[derive(Debug, Default)]
pub(super) struct Loan {
    /// While lent: the borrower's own queue and boxes, set aside.
    lent: Lent,
    /// The slot that has the loan.
    to: Option<u32>,
}

impl Loan {
    /// Lends to connection `slot`, unless the loan is out already (to `slot` itself, across
    /// a batch of its datagrams, or to a connection whose call this one nests in).
    #[inline]
    pub(super) fn lend(&mut self, slot: u32, conn: &mut Connection) {
        if self.to.is_none() {
            conn.swap_lent(&mut self.lent);
            self.to = Some(slot);
        }
    }

    /// Takes the loan back from `slot`, whose events were all collected: its own go back
    /// to it. Nothing if the loan is not `slot`'s.
    #[inline]
    pub(super) fn reclaim(&mut self, slot: u32, conn: &mut Connection) {
        if self.to == Some(slot) {
            conn.swap_lent(&mut self.lent);
            self.to = None;
        }
    }

    /// Connection `slot` is gone, with the loan if it had it: what it set aside, now the
    /// endpoint's, is lent next.
    #[inline]
    pub(super) fn forget(&mut self, slot: u32) {
        if self.to == Some(slot) {
            self.to = None;
        }
    }

    /// Whether the loan is out (for tests).
    #[cfg(test)]
    pub(super) fn is_out(&self) -> bool {
        self.to.is_some()
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use bytes::Bytes;

    use super::super::harness::Net;
    use crate::event::{Event, Read};
    use crate::time::Duration;

    #[test]
    fn every_loan_comes_back_and_the_connections_own_queues_stay_unmade() {
        let (mut net, c) = Net::connected();
        let served = net.served();
        let mut read = 0;
        for i in 0..20u8 {
            net.eps[0]
                .send_message(c, None, Bytes::from(vec![i; 100]))
                .unwrap();
            let limit = net.now + Duration::from_millis(10);
            net.run_until(limit);
            while let Some((_, Read::Data { bytes, .. })) = net.eps[1].next_message(served, u64::MAX).unwrap()
            {
                assert_eq!(bytes, vec![read; 100]);
                read += 1;
            }
            assert!(net.eps.iter().all(|ep| !ep.loan.is_out()), "message {i}");
        }
        assert_eq!(read, 20);
        // The last receipt is lazy: its acknowledgement's delay, then it goes.
        let limit = net.now + Duration::from_millis(200);
        net.run_until(limit);
        assert!(net.eps.iter().all(|ep| !ep.loan.is_out()));
        let told = |ep: usize, f: fn(&Event) -> bool| net.events[ep].iter().filter(|e| f(e)).count();
        assert_eq!(told(1, |e| matches!(e, Event::StreamOpened { .. })), 20);
        assert_eq!(told(0, |e| matches!(e, Event::StreamDelivery { .. })), 20);
        // Every event went through the lent queue: neither connection made its own.
        for ep in &net.eps {
            assert!(ep.conns.iter().flatten().all(|c| !c.holds_event_room()));
        }
    }
}
