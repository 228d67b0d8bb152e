//! The packets kept for what they carried, in the order sent (spec/protocol.md §8, Loss and
//! retransmission): recovery keeps one queue of the ack-eliciting packets in flight and one
//! of the lazy packets (module `recovery`). An owned part: it holds the packets and answers
//! for ranges of numbers; recovery decides what is acknowledged or lost.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::SentPacket;

/// The ack-eliciting packets in flight, in the order sent (so by number): a queue, not a
/// map, since numbers only grow and acknowledgements mostly come in order. An acknowledged
/// or lost packet leaves a hole where it was, and holes at the front are dropped, so the
/// queue spans from the oldest packet in flight to the newest: about a window, since a
/// packet left behind is declared lost within a round trip or three later packets. A range
/// of numbers is found by binary search; nothing is allocated once the queue reached its
/// size.
/// The most slots an empty queue keeps between flights (`SentPackets::compact`).
pub(super) const KEPT_SLOTS: usize = 16;

#[derive(Debug, Default)]
pub(super) struct SentPackets {
    slots: VecDeque<(u64, Option<SentPacket>)>,
    /// Slots holding a packet.
    live: usize,
}

impl SentPackets {
    /// The slots the queue has room for (tests: what a flight leaves kept).
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.slots.capacity()
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Records a packet numbered above every one recorded before.
    pub(super) fn push(&mut self, packet: SentPacket) {
        // Numbers come from our own counter (`take_pn`), which only grows: no peer input
        // chooses them, so only debug builds check.
        debug_assert!(self.slots.back().is_none_or(|&(pn, _)| pn < packet.number));
        self.live += 1;
        self.slots.push_back((packet.number, Some(packet)));
    }

    /// The index of the first slot numbered `pn` or above.
    pub(super) fn position(&self, pn: u64) -> usize {
        self.slots.partition_point(|&(n, _)| n < pn)
    }

    /// Takes out the packets numbered within `range`, lowest first.
    pub(super) fn take_range(&mut self, range: RangeInclusive<u64>, mut each: impl FnMut(SentPacket)) {
        let mut i = self.position(*range.start());
        while let Some((pn, slot)) = self.slots.get_mut(i) {
            if *pn > *range.end() {
                break;
            }
            if let Some(p) = slot.take() {
                self.live -= 1;
                each(p);
            }
            i += 1;
        }
    }

    /// Takes out packet `pn`, if in flight.
    pub(super) fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let i = self.position(pn);
        let p = self.slots.get_mut(i).filter(|(n, _)| *n == pn)?.1.take()?;
        self.live -= 1;
        Some(p)
    }

    /// Drops the holes at the front; once empty, lets the room of a large flight go at once
    /// (a window's worth of slots is not kept between flights), and keeps a small one for
    /// the next flight: a connection that sends a message at a time would otherwise
    /// allocate and free it for each. The trim lets that go too (`trim`).
    pub(super) fn compact(&mut self) {
        while self.slots.front().is_some_and(|(_, p)| p.is_none()) {
            self.slots.pop_front();
        }
        if self.slots.is_empty() && self.slots.capacity() > KEPT_SLOTS {
            self.slots = VecDeque::new();
        }
    }

    /// Lets the queue's room go if it is empty: an idle connection keeps none (608 bytes,
    /// for the four slots a handshake leaves).
    pub(super) fn trim(&mut self) {
        if self.slots.is_empty() {
            self.slots = VecDeque::new();
        }
    }

    /// The oldest packet kept.
    pub(super) fn oldest(&self) -> Option<&SentPacket> {
        self.slots.iter().find_map(|(_, p)| p.as_ref())
    }

    /// The packets in flight numbered below `pn`.
    #[inline]
    pub(super) fn below(&self, pn: u64) -> impl Iterator<Item = &SentPacket> {
        self.slots
            .range(..self.position(pn))
            .filter_map(|(_, p)| p.as_ref())
    }

    /// Takes out every packet.
    pub(super) fn drain(&mut self) -> Vec<SentPacket> {
        self.live = 0;
        core::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|(_, p)| p)
            .collect()
    }
}
