//! What received stream data costs to hold, and the budget that cost is kept within
//! (spec/protocol.md §10.3, "Receive budget").
//!
//! Input: a piece of a STREAM frame that has to wait for the application, and the length of
//! the datagram it arrived in. Output: the piece as it is held ([`Held`]: a slice of the
//! datagram, or a copy), and its cost in heap bytes ([`Held::charge`] plus [`PIECE_COST`]),
//! which the stream and its connection add up and keep under [`budget`] of their windows.
//!
//! Credit counts payload bytes, which is all the peer can see; the heap counts more: the
//! datagram a slice keeps alive, the capacity of a copy, the map entry of each separate
//! piece, and the state of each open stream. A peer sending one byte per datagram, at
//! offsets with gaps between them, would otherwise make each byte of credit cost a hundred
//! bytes of heap. So the receiver charges each piece what it really holds. A slice may cost
//! up to four times its bytes (an honest sender's pieces share datagrams too), so a stream
//! about to pass twice its window is first compacted (`RecvStream::compact`: its bytes
//! copied to exact allocations, at most 1.5 times their bytes from then on); a peer whose
//! pieces still cost more than that (and, for a connection, its streams' state) is closed
//! (`ViolationKind::ReceiveBudget`). What is left to close for is bookkeeping: pieces kept
//! apart by gaps.
//!
//! What the budget cannot see is the buffer a driver received a datagram into, which a slice
//! keeps alive too (weir's drivers share 256 KiB blocks among datagrams). A slice is
//! therefore copied once it has waited [`HOLD_GRACE`] for the application ([`Held::age`],
//! spec §10.3, "Age").

use bytes::{Bytes, BytesMut};

use crate::time::Duration;

/// A piece shorter than this is copied when it has to wait, whatever its datagram, so runs of
/// tiny pieces coalesce instead of each costing a map entry.
pub(crate) const SMALL_PIECE: usize = 128;

/// A piece under `1 / PIN_RATIO` of its datagram is copied when it has to wait: a held byte
/// keeps at most this many alive.
const PIN_RATIO: usize = 4;

/// Heap bytes of bookkeeping charged for each separate piece a stream holds: its entry in
/// the stream's map of pieces (a B-tree node's share, or at most two places of a ring's room
/// of 48 bytes each: module `by_offset`) and the allocator's rounding of a small copy. The
/// hostile suite measures about 90 bytes per one-byte piece
/// (`one_byte_pieces_with_gaps_on_every_stream_pin_at_most_the_receive_budget`).
pub(crate) const PIECE_COST: u64 = 128;

/// Heap bytes charged for each stream the peer has open: its state (its receive half, the
/// header, the digest being computed) and its map entry. The hostile suite measures 412
/// bytes for a stream opened by a one-byte frame, the piece included
/// (`the_costliest_datagrams_cost_work_bounded_by_the_frames_they_carry`); the charge
/// leaves room for a digest's state and the map's growth.
pub(crate) const STREAM_COST: u64 = 2048;

/// What received data may cost a connection whose receive window is `window` bytes and
/// whose peer may have `streams` streams open: twice the window, each stream's state, and
/// [`BUDGET_FLOOR`]. The payload is at most the window (credit); the other half pays for the
/// datagrams slices keep alive, copies' spare capacity and pieces' bookkeeping.
pub(crate) fn budget(window: u64, streams: u64) -> u64 {
    stream_budget(window).saturating_add(streams.saturating_mul(STREAM_COST))
}

/// What received data may cost one stream whose window is `window` bytes: twice the window
/// and [`BUDGET_FLOOR`].
pub(crate) fn stream_budget(window: u64) -> u64 {
    window.saturating_mul(2).saturating_add(BUDGET_FLOOR)
}

/// What any budget allows besides, so that a tiny window (a test's, or a connection squeezed
/// by `Config::receive_buffer_total`) still takes a full datagram and a few separate pieces.
pub(crate) const BUDGET_FLOOR: u64 = 4096;

/// The most streams a connection squeezed by `Config::receive_buffer_total` (given less
/// than its configured window) lets its peer open.
pub(crate) const SQUEEZED_STREAMS: u64 = 16;

/// Whether holding a `len`-byte slice would keep more than [`PIN_RATIO`] times as much of its
/// `datagram_len`-byte datagram alive.
pub(crate) fn pins_too_much(len: usize, datagram_len: usize) -> bool {
    len.saturating_mul(PIN_RATIO) < datagram_len
}

/// Appends `piece` to the copy `run`, growing it by half when full, so that a copy holds at
/// most half as much again as its bytes (a `Vec` doubling could hold twice).
pub(crate) fn append(run: &mut BytesMut, piece: &[u8]) {
    if run.capacity() - run.len() < piece.len() {
        let len = run.len() + piece.len();
        let mut grown = BytesMut::with_capacity(len + (len / 2).max(SMALL_PIECE));
        grown.extend_from_slice(run);
        *run = grown;
    }
    run.extend_from_slice(piece);
}

/// The datagram a STREAM frame came in, as far as holding its slices goes: its length, and
/// whether a slice held already pays for it. A datagram's slices all keep the one
/// allocation alive, so the first slice held is charged the whole datagram and the others
/// only their own bytes: several small messages sharing a datagram cost it once, not once
/// each. (If the application reads the paying slice first, the others keep the datagram
/// alive at their own charge: at most four times it, since a waiting slice under a quarter of
/// its datagram is copied, and for slices readable at once, at most a datagram per stream.)
#[derive(Clone, Copy, Debug)]
pub struct Datagram {
    len: u32,
    paid: bool,
}

impl Datagram {
    /// A datagram of `len` bytes, none of whose slices is held yet.
    pub fn new(len: usize) -> Self {
        Datagram {
            len: u32::try_from(len).unwrap_or(u32::MAX),
            paid: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// What a slice of it held now is charged besides its own bytes: the whole datagram for
    /// the first, nothing for the others.
    fn pay(&mut self) -> usize {
        if core::mem::replace(&mut self.paid, true) {
            0
        } else {
            self.len()
        }
    }
}

/// How long a slice of a datagram may wait for the application before it is copied, at
/// least: a sweep (`RecvStream::sweep`) runs at most this often while the peer sends stream
/// frames, and copies each slice an earlier sweep found held (so a slice is copied after one
/// to two of these, and at the next stream frame after that). A slice keeps alive, beside its
/// datagram, the buffer its driver received the datagram into, which the budget cannot see
/// (spec §10.3, "Age"); a tenth of a second is many round trips on the paths a receive block
/// is cut for, and longer than an application that reads as it is told takes to read.
pub(crate) const HOLD_GRACE: Duration = Duration::from_millis(100);

/// Whether a sweep found a slice held already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Swept {
    /// Not yet: it came after the last sweep.
    Not,
    /// Once: the next sweep copies it.
    Once,
}

/// Received bytes held for the application.
#[derive(Debug)]
pub(crate) enum Held {
    /// A slice of the datagram they came in (no copy), and what it is charged for keeping that
    /// datagram alive (its length, or 0 if another slice pays for it: [`Datagram`]), and
    /// whether a sweep found it held already ([`Held::age`]; in what would be padding).
    Shared(Bytes, u32, Swept),
    /// A copy of small pieces, which the pieces that follow it are appended to.
    Owned(BytesMut),
}

impl Held {
    /// `piece`, a slice of `datagram`, held as it is.
    pub(crate) fn shared(piece: Bytes, datagram: &mut Datagram) -> Self {
        Self::shared_charged(piece, datagram.pay())
    }

    /// `piece`, held as it is, charged at least `charge` bytes.
    fn shared_charged(piece: Bytes, charge: usize) -> Self {
        Held::Shared(piece, u32::try_from(charge).unwrap_or(u32::MAX), Swept::Not)
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes().len()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Held::Shared(b, ..) => b,
            Held::Owned(b) => b,
        }
    }

    /// Heap bytes the piece keeps alive, besides its bookkeeping ([`PIECE_COST`]): its whole
    /// datagram (unless another slice pays for it), or its copy's capacity.
    pub(crate) fn charge(&self) -> u64 {
        match self {
            Held::Shared(b, datagram, _) => (b.len() as u64).max(u64::from(*datagram)),
            Held::Owned(b) => b.capacity() as u64,
        }
    }

    /// The first `at` bytes, leaving the rest (which keeps what it kept alive).
    pub(crate) fn split_to(&mut self, at: usize) -> Bytes {
        match self {
            Held::Shared(b, ..) => b.split_to(at),
            Held::Owned(b) => b.split_to(at).freeze(),
        }
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Held::Shared(b, ..) => b,
            Held::Owned(b) => b.freeze(),
        }
    }

    /// A sweep finds the piece held: a slice found by an earlier sweep becomes an exact
    /// copy, so it keeps no receive buffer alive; a slice found for the first time is marked.
    /// Returns what its charge ([`charge`](Self::charge)) was before and is now, for a
    /// slice copied.
    pub(crate) fn age(&mut self) -> Option<(u64, u64)> {
        match self {
            Held::Shared(_, _, swept @ Swept::Not) => {
                *swept = Swept::Once;
                None
            }
            Held::Shared(b, _, Swept::Once) => {
                let copy = BytesMut::from(&b[..]);
                let before = self.charge();
                *self = Held::Owned(copy);
                Some((before, self.charge()))
            }
            Held::Owned(_) => None,
        }
    }

    /// The bytes as a `Bytes` to share (a copy stops taking appends, and is charged what it
    /// held).
    pub(crate) fn share(&mut self) -> Bytes {
        let charge = self.charge();
        let held = core::mem::replace(self, Held::Owned(BytesMut::new()));
        let bytes = held.into_bytes();
        *self = Held::shared_charged(bytes.clone(), usize::try_from(charge).unwrap_or(usize::MAX));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_slice_of_a_datagram_pays_for_it_and_a_copy_its_capacity() {
        let bytes = Bytes::from(alloc::vec![7u8; 1200]);
        let mut datagram = Datagram::new(1200);
        assert_eq!(Held::shared(bytes.slice(..500), &mut datagram).charge(), 1200);
        // A second slice of the same datagram: its own bytes only.
        assert_eq!(Held::shared(bytes.slice(500..1000), &mut datagram).charge(), 500);
        let copy = BytesMut::with_capacity(64);
        assert_eq!(Held::Owned(copy).charge(), 64);
    }

    #[test]
    fn reading_part_of_a_slice_leaves_its_datagram_charged() {
        let bytes = Bytes::from(alloc::vec![1u8; 1200]);
        let mut held = Held::shared(bytes.slice(..900), &mut Datagram::new(1200));
        assert_eq!(held.split_to(800).len(), 800);
        assert_eq!((held.len(), held.charge()), (100, 1200));
    }

    #[test]
    fn a_shared_copy_keeps_its_charge() {
        let mut held = Held::Owned(BytesMut::with_capacity(256));
        if let Held::Owned(b) = &mut held {
            b.extend_from_slice(b"abc");
        }
        assert_eq!(held.share(), Bytes::from_static(b"abc"));
        assert_eq!(held.charge(), 256);
    }

    #[test]
    fn a_slice_is_copied_by_the_second_sweep_that_finds_it_and_lets_its_datagram_go() {
        let datagram = Bytes::from(alloc::vec![3u8; 1200]);
        let mut held = Held::shared(datagram.slice(..1000), &mut Datagram::new(1200));
        assert_eq!(held.age(), None, "the first sweep marks it");
        assert!(!datagram.is_unique());
        assert_eq!(held.age(), Some((1200, 1000)), "the second copies it, exactly");
        assert!(datagram.is_unique(), "the datagram is no longer held");
        assert_eq!(held.bytes(), &datagram[..1000]);
        assert_eq!(held.age(), None, "a copy stays as it is");
        assert_eq!(held.charge(), 1000);
    }
}
