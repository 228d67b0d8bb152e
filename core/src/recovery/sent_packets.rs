//! The packets kept for what they carried, in the order sent (spec/protocol.md §8, Loss and
//! retransmission): recovery keeps one queue of the ack-eliciting packets in flight and one
//! of the lazy packets (module `recovery`). An owned part: it holds the packets and answers
//! for ranges of numbers; recovery decides what is acknowledged or lost.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::SentPacket;

/// The most slots an empty queue keeps between flights (`SentPackets::compact`).
pub(super) const KEPT_SLOTS: usize = 16;

/// The room past which the queue grows by a quarter, not by doubling (`SentPackets::push`).
pub(super) const GROWS_BY_DOUBLING: usize = 256;

/// The mark of a hole, on its number. Numbers are the connection's own counter
/// (`Recovery::take_pn`), which starts at 0 and moves by one a packet: it never reaches the
/// top bit.
const TAKEN: u64 = 1 << 63;

/// The ack-eliciting packets in flight, in the order sent (so by number): a queue, not a
/// map, since numbers only grow and acknowledgements mostly come in order. An acknowledged
/// or lost packet leaves a hole where it was, and holes at the front are dropped, so the
/// queue spans from the oldest packet in flight to the newest: about a window, since a
/// packet left behind is declared lost within a round trip or three later packets. A range
/// of numbers is found by binary search; nothing is allocated once the queue reached its
/// size.
///
/// A hole is the packet's own record, its frames taken and its number marked [`TAKEN`]: it
/// keeps its place in the search without a second copy of every number, so a place is the
/// record's 112 bytes (thousands of them over a long path), not 120 or more.
#[derive(Debug, Default)]
pub(super) struct SentPackets {
    slots: VecDeque<SentPacket>,
    /// Slots holding a packet.
    live: usize,
}

/// Whether `slot` still holds its packet.
fn holds(slot: &SentPacket) -> bool {
    slot.number & TAKEN == 0
}

/// Takes the packet out of `slot`, leaving its hole, if it holds one.
fn take_out(slot: &mut SentPacket) -> Option<SentPacket> {
    if !holds(slot) {
        return None;
    }
    let packet = SentPacket {
        frames: core::mem::take(&mut slot.frames),
        ..*slot
    };
    slot.number |= TAKEN;
    Some(packet)
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
        debug_assert!(packet.number & TAKEN == 0);
        debug_assert!(self
            .slots
            .back()
            .is_none_or(|p| p.number & !TAKEN < packet.number));
        if self.slots.len() == self.slots.capacity() {
            self.grow();
        }
        self.live += 1;
        self.slots.push_back(packet);
    }

    /// Room for a quarter more. A ring of slots is written all round as its window moves on,
    /// so all its room is memory in use: grown by doubling, a long path's queue held room for
    /// 4,096 packets for at most about 2,200 in flight (`messages-far`, 459 KiB; by a quarter,
    /// at most a quarter over what it held). The copies cost little: a growth is one `realloc`
    /// of what is held, a few times over a flight's ramp (a dozen from 256 to 4,096 places).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let held = self.slots.len();
        if held >= GROWS_BY_DOUBLING {
            self.slots.reserve_exact(held / 4);
        }
    }

    /// The index of the first slot numbered `pn` or above.
    pub(super) fn position(&self, pn: u64) -> usize {
        self.slots.partition_point(|p| p.number & !TAKEN < pn)
    }

    /// Takes out the packets numbered within `range`, lowest first.
    pub(super) fn take_range(&mut self, range: RangeInclusive<u64>, mut each: impl FnMut(SentPacket)) {
        let mut i = self.position(*range.start());
        while let Some(slot) = self.slots.get_mut(i) {
            if slot.number & !TAKEN > *range.end() {
                break;
            }
            if let Some(p) = take_out(slot) {
                self.live -= 1;
                each(p);
            }
            i += 1;
        }
    }

    /// Takes out packet `pn`, if in flight.
    pub(super) fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let i = self.position(pn);
        let p = take_out(self.slots.get_mut(i).filter(|p| p.number & !TAKEN == pn)?)?;
        self.live -= 1;
        Some(p)
    }

    /// Drops the holes at the front; once empty, lets the room of a large flight go at once
    /// (a window's worth of slots is not kept between flights), and keeps a small one for
    /// the next flight: a connection that sends a message at a time would otherwise
    /// allocate and free it for each. The trim lets that go too (`trim`).
    pub(super) fn compact(&mut self) {
        while self.slots.front().is_some_and(|p| !holds(p)) {
            self.slots.pop_front();
        }
        if self.slots.is_empty() && self.slots.capacity() > KEPT_SLOTS {
            self.slots = VecDeque::new();
        }
    }

    /// Lets the queue's room go if it is empty: an idle connection keeps none (512 bytes,
    /// for the four slots a handshake leaves).
    pub(super) fn trim(&mut self) {
        if self.slots.is_empty() {
            self.slots = VecDeque::new();
        }
    }

    /// The oldest packet kept.
    pub(super) fn oldest(&self) -> Option<&SentPacket> {
        self.slots.iter().find(|p| holds(p))
    }

    /// The packets in flight numbered below `pn`.
    #[inline]
    pub(super) fn below(&self, pn: u64) -> impl Iterator<Item = &SentPacket> {
        self.slots.range(..self.position(pn)).filter(|p| holds(p))
    }

    /// Takes out every packet.
    pub(super) fn drain(&mut self) -> Vec<SentPacket> {
        self.live = 0;
        core::mem::take(&mut self.slots)
            .into_iter()
            .filter(holds)
            .collect()
    }
}
