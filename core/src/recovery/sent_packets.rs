//! The packets kept for what they carried, in the order sent (spec/protocol.md §8, Loss and
//! retransmission): recovery keeps one queue of the ack-eliciting packets in flight and one
//! of the lazy packets (module `recovery`). An owned part: it holds the packets and answers
//! for ranges of numbers; recovery decides what is acknowledged or lost.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::{SentFrames, SentPacket};

/// The most slots an empty queue keeps between flights (`SentPackets::compact`).
pub(super) const KEPT_SLOTS: usize = 16;

/// The room past which the queue grows by a quarter, not by doubling (`SentPackets::push`).
pub(super) const GROWS_BY_DOUBLING: usize = 256;

/// The mark of a hole, on its number. Numbers are the connection's own counter
/// (`Recovery::take_pn`), which starts at 0 and moves by one a packet: it never reaches the
/// top two bits.
const TAKEN: u64 = 1 << 63;
/// The mark, beside [`TAKEN`], of a packet an ACK took whose frames are still in its slot,
/// for the connection to read ([`SentPackets::ack_range`]).
const ACKED: u64 = 1 << 62;
/// Both marks: what is left of a slot's number without them is the packet's.
const MARKS: u64 = TAKEN | ACKED;

/// The ack-eliciting packets in flight, in the order sent (so by number): a queue, not a
/// map, since numbers only grow and acknowledgements mostly come in order. An acknowledged
/// or lost packet leaves a hole where it was, and holes at the front are dropped, so the
/// queue spans from the oldest packet in flight to the newest: about a window, since a
/// packet left behind is declared lost by the loss thresholds (a round trip or three later
/// packets at first, up to two RTTs or 4,096 packets once reordering stretched them). A range
/// of numbers is found by binary search; nothing is allocated once the queue reached its
/// size.
///
/// A hole is the packet's own record, its frames taken and its number marked [`TAKEN`]: it
/// keeps its place in the search without a second copy of every number, so a place is the
/// record's 112 bytes (thousands of them over a long path), not 120 or more.
///
/// An ACK's packets are not moved out: each becomes a hole that keeps its frames (marked
/// [`ACKED`] too) until the connection reads them by the slot's index
/// ([`take_acked_frames`](Self::take_acked_frames)). A list of the records taken out was a
/// copy of each (112 bytes), and one ACK after an outage or a stall names thousands: over
/// `bulk-far` the list was 400–530 KiB of the sender's peak (heaptrack, issue 35). The
/// indices stay good while any such hole waits, as nothing is dropped from the front
/// meanwhile ([`compact`](Self::compact) waits).
#[derive(Debug, Default)]
pub(super) struct SentPackets {
    slots: VecDeque<SentPacket>,
    /// Slots holding a packet. (32 bits each, these two: a connection's size is memory per
    /// connection, and a queue of 2^32 places would be 480 GB.)
    live: u32,
    /// Slots an ACK took whose frames are still to be read.
    awaiting: u32,
}

/// Whether `slot` still holds its packet.
fn holds(slot: &SentPacket) -> bool {
    slot.number & TAKEN == 0
}

/// Whether `slot` is a packet an ACK took whose frames wait to be read (`ack_range`).
fn awaits_read(slot: &SentPacket) -> bool {
    slot.number & MARKS == MARKS
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
    /// Shows `show` the oldest packet in flight and the newest, where an ACK's reading and
    /// the next packet's record begin (`connection::prefetch`).
    pub(super) fn prefetch(&self, show: &mut impl FnMut(*const u8, usize)) {
        let newest = self.slots.back().filter(|_| self.slots.len() > 1);
        for p in [self.slots.front(), newest].into_iter().flatten() {
            show((p as *const SentPacket).cast(), core::mem::size_of_val(p));
        }
    }

    /// The slots the queue has room for (tests: what a flight leaves kept).
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.slots.capacity()
    }

    pub(super) fn len(&self) -> usize {
        self.live as usize
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Records a packet numbered above every one recorded before.
    pub(super) fn push(&mut self, packet: SentPacket) {
        // Numbers come from our own counter (`take_pn`), which only grows: no peer input
        // chooses them, so only debug builds check.
        debug_assert!(packet.number & MARKS == 0);
        debug_assert!(self
            .slots
            .back()
            .is_none_or(|p| p.number & !MARKS < packet.number));
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
        self.slots.partition_point(|p| p.number & !MARKS < pn)
    }

    /// Each slot holding a packet numbered within `range`, lowest first, with its index.
    fn held_in(&mut self, range: RangeInclusive<u64>, mut each: impl FnMut(usize, &mut SentPacket)) {
        let mut i = self.position(*range.start());
        while let Some(slot) = self.slots.get_mut(i) {
            if slot.number & !MARKS > *range.end() {
                break;
            }
            if holds(slot) {
                each(i, slot);
            }
            i += 1;
        }
    }

    /// Takes out the packets numbered within `range`, lowest first.
    pub(super) fn take_range(&mut self, range: RangeInclusive<u64>, mut each: impl FnMut(SentPacket)) {
        let mut taken = 0;
        self.held_in(range, |_, slot| {
            if let Some(p) = take_out(slot) {
                taken += 1;
                each(p);
            }
        });
        self.live -= taken;
    }

    /// Takes the packets numbered within `range` out of flight, lowest first, leaving each
    /// one's frames in its slot (type docs): `each` is told its slot's index and the packet.
    pub(super) fn ack_range(&mut self, range: RangeInclusive<u64>, mut each: impl FnMut(usize, &SentPacket)) {
        let mut acked = 0;
        self.held_in(range, |i, slot| {
            each(i, slot);
            slot.number |= MARKS;
            acked += 1;
        });
        self.live -= acked;
        self.awaiting += acked;
    }

    /// The number and size of the packet an ACK took at slot `index` (`ack_range`).
    pub(super) fn acked(&self, index: usize) -> Option<(u64, usize)> {
        let slot = self.slots.get(index).filter(|p| awaits_read(p))?;
        Some((slot.number & !MARKS, slot.size()))
    }

    /// The frames of the packet an ACK took at slot `index`, once (`ack_range`): none if
    /// they were read, or forgotten ([`forget_acked`](Self::forget_acked)). The last read
    /// lets the queue drop its holes at the front again.
    pub(super) fn take_acked_frames(&mut self, index: usize) -> SentFrames {
        let Some(slot) = self.slots.get_mut(index).filter(|p| awaits_read(p)) else {
            return SentFrames::new();
        };
        slot.number &= !ACKED;
        let frames = core::mem::take(&mut slot.frames);
        self.awaiting -= 1;
        if self.awaiting == 0 {
            self.compact();
        }
        frames
    }

    /// Drops the frames of every packet an ACK took that were not read: a caller that did
    /// not read them all (the connection reads every one at once) does not keep them.
    pub(super) fn forget_acked(&mut self) {
        if self.awaiting == 0 {
            return;
        }
        for slot in self.slots.iter_mut().filter(|p| awaits_read(p)) {
            slot.number &= !ACKED;
            slot.frames = SentFrames::new();
        }
        self.awaiting = 0;
        self.compact();
    }

    /// Takes out packet `pn`, if in flight.
    pub(super) fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let i = self.position(pn);
        let p = take_out(self.slots.get_mut(i).filter(|p| p.number & !MARKS == pn)?)?;
        self.live -= 1;
        Some(p)
    }

    /// Drops the holes at the front; once empty, lets the room of a large flight go at once
    /// (a window's worth of slots is not kept between flights), and keeps a small one for
    /// the next flight: a connection that sends a message at a time would otherwise
    /// allocate and free it for each. The trim lets that go too (`trim`). Not while an
    /// ACK's frames wait to be read: their indices would move (type docs).
    pub(super) fn compact(&mut self) {
        if self.awaiting > 0 {
            return;
        }
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
        self.forget_acked();
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
        self.awaiting = 0;
        core::mem::take(&mut self.slots)
            .into_iter()
            .filter(holds)
            .collect()
    }
}
