//! A message's bytes as a whole-message read gathers them (spec/protocol.md §8, Streams and
//! credit): the input is each piece as it is read out of the stream, the output the message
//! as one `Bytes`.
//!
//! One piece is kept as it came, so a message that arrived in one datagram reaches the
//! application without a copy. Once a message is known to come in more than one piece (a
//! second arrived, or the first is shorter than the length the message announced), its
//! pieces are copied into one buffer as they arrive: the message has to be contiguous in the end anyway, and copying
//! early lets each datagram's receive buffer go at once, where keeping the pieces would
//! hold every receive buffer of the message until its last byte came (a 64 MiB message kept
//! about 64 MiB of them alive beside the joined copy, and the endpoint allocated fresh
//! receive buffers all the while). The buffer grows geometrically with what arrived, never
//! past twice that or [`SMALL`] (a peer's announced length alone reserves no more), unless
//! its owner grants spare room: then a message that announced its length reserves up to
//! that length at once, within what arrived and the spare (the core grants the room the
//! connection's receive window leaves beside the other gathering buffers: bytes the peer
//! may have on their way anyway, spec/protocol.md §8, Streams and credit). Each growth of a
//! buffer the allocator cannot extend in place copies what it holds: with the buffer only
//! doubling, a run of 1 MiB requests spent 14 M instructions on such copies on the
//! receiving side, about a second copy of every message (adapters/bench/rounds.md, issue
//! 35's eighteenth round).

use alloc::vec::Vec;

use bytes::Bytes;

use crate::config::LARGE_BUFFER;

/// [`Config::advise_buffer`](crate::Config::advise_buffer), as the calls that gather a
/// whole message pass it down to [`Gathered::push_within`].
pub(crate) type Advise = Option<fn(*const u8, usize)>;

/// A buffer this small may be reserved whatever arrived of it: a small message in several
/// pieces is joined with one allocation, and a peer's announced lengths pin at most this much
/// per stream it has open that it did not send.
const SMALL: usize = 4096;

/// A message's pieces joined as they arrive (see the module documentation): what the core's
/// whole-message read keeps, and what an adapter's read of a whole stream may use the same
/// way.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The first piece, while it is the only one.
    first: Option<Bytes>,
    /// Every piece so far, copied, once there were two (a `Vec`, whose growth this decides
    /// exactly: a buffer frozen exactly full becomes `Bytes` without an allocation).
    joined: Vec<u8>,
}

impl Gathered {
    /// Adds the next piece; `total` is the message's length, if known.
    pub fn push(&mut self, piece: Bytes, total: Option<u64>) {
        self.push_within(piece, total, 0, None);
    }

    /// As [`push`](Self::push), showing a buffer made
    /// [`LARGE_BUFFER`] or more to `advise` before bytes go
    /// into it: an adapter's whole-stream read passes its endpoint's
    /// [`Config::advise_buffer`](crate::Config::advise_buffer), as the core's
    /// whole-message reads do.
    pub fn push_advised(&mut self, piece: Bytes, total: Option<u64>, advise: Option<fn(*const u8, usize)>) {
        self.push_within(piece, total, 0, advise);
    }

    /// Whether adding a piece of `len` bytes of a message of `total` bytes would grow the
    /// buffer by less than the message's length, to twice what arrived: what a grant of
    /// spare room (`push_within`) can change.
    pub(crate) fn grows_short_of(&self, len: usize, total: Option<u64>) -> bool {
        // (A piece kept as it came, and an empty one, make no growth.)
        if len == 0 || self.keeps_as_it_came(len, total) {
            return false;
        }
        let needed = self.len().saturating_add(len as u64);
        (self.joined.capacity() as u64) < needed
            && total.is_some_and(|t| t > needed.saturating_mul(2).max(SMALL as u64))
    }

    /// Room the buffer holds beyond what arrived.
    pub(crate) fn unfilled(&self) -> u64 {
        (self.joined.capacity() - self.joined.len()) as u64
    }

    /// As [`push`](Self::push), but a growth may reserve up to `spare` bytes beyond what
    /// arrived when `total` says the message is that long; a growth to
    /// [`LARGE_BUFFER`] or more is shown to `advise`
    /// ([`Config::advise_buffer`](crate::Config::advise_buffer)) before bytes go into it.
    pub(crate) fn push_within(&mut self, piece: Bytes, total: Option<u64>, spare: u64, advise: Advise) {
        if piece.is_empty() {
            return;
        }
        if self.keeps_as_it_came(piece.len(), total) {
            self.first = Some(piece);
            return;
        }
        let needed = self.len() as usize + piece.len();
        let first = self.first.take();
        if self.joined.capacity() < needed {
            // Twice what arrived (at least `SMALL`), or further into the message as far as
            // the spare granted, but never past the whole message: room for what comes
            // next (geometric growth), and the last growth lands on the message's length.
            let whole = total
                .and_then(|t| usize::try_from(t).ok())
                .filter(|&t| t >= needed);
            let room = (2 * needed).max(SMALL);
            let granted = usize::try_from(spare).map_or(usize::MAX, |s| needed.saturating_add(s));
            let target = whole.map_or(room, |t| t.min(room.max(granted)));
            self.joined.reserve_exact(target - self.joined.len());
            if let Some(advise) = advise.filter(|_| self.joined.capacity() >= LARGE_BUFFER) {
                advise(self.joined.as_ptr(), self.joined.capacity());
            }
        }
        if let Some(first) = first {
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&piece);
    }

    /// A sweep (spec §10.3, "Age"): the first piece, kept as it came while it is the only
    /// one, is copied, so that a message waiting whole for a read keeps no receive buffer
    /// alive. Unlike a stream's slices it is not marked first (there is no room for the
    /// mark), so a message a sweep finds waiting is copied however recently it came: one
    /// message's copy per sweep and stream at most.
    pub(crate) fn sweep(&mut self) {
        if let Some(first) = self.first.take() {
            self.joined.reserve_exact(first.len());
            self.joined.extend_from_slice(&first);
        }
    }

    /// Whether a piece of `len` bytes is kept as it came: the first, unless the message
    /// announced a greater length. A first piece known to be short of its message is copied
    /// at once, as the second would copy it anyway: kept, it held its whole receive buffer
    /// until the rest came, a round trip and more when the datagram with the rest was lost.
    fn keeps_as_it_came(&self, len: usize, total: Option<u64>) -> bool {
        self.first.is_none() && self.joined.is_empty() && total.is_none_or(|t| t <= len as u64)
    }

    /// The bytes gathered so far.
    pub fn len(&self) -> u64 {
        (self.first.as_ref().map_or(0, Bytes::len) + self.joined.len()) as u64
    }

    /// Whether nothing was gathered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message, taken; nothing is left.
    pub fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => Bytes::from(core::mem::take(&mut self.joined)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn one_piece_is_handed_out_as_it_came() {
        let piece = Bytes::from_static(b"whole");
        let mut g = Gathered::default();
        g.push(piece.clone(), Some(5));
        assert_eq!(g.len(), 5);
        let out = g.take();
        assert_eq!(out, piece);
        assert_eq!(out.as_ptr(), piece.as_ptr(), "no copy");
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn pieces_are_joined_as_they_arrive_within_twice_what_arrived() {
        let (piece_len, pieces) = (1_400usize, 1_000usize);
        for total in [Some((piece_len * pieces) as u64), None] {
            let mut g = Gathered::default();
            let mut expected = Vec::new();
            for i in 0..pieces {
                let piece: Vec<u8> = (0..piece_len).map(|b| (b + i) as u8).collect();
                expected.extend_from_slice(&piece);
                g.push(Bytes::from(piece), total);
                assert!(
                    g.first.is_none() || i == 0,
                    "the first piece is copied once a second comes"
                );
                let cap = g.joined.capacity() as u64;
                let bound = (2 * g.len()).max(SMALL as u64);
                assert!(cap <= bound, "{total:?}: capacity {cap} for {} bytes", g.len());
            }
            if total.is_some() {
                assert_eq!(
                    g.joined.capacity(),
                    piece_len * pieces,
                    "the last growth lands on the total"
                );
            }
            assert_eq!(g.take(), Bytes::from(expected));
        }
    }

    #[test]
    fn spare_room_granted_reserves_into_the_announced_length_at_the_first_piece_short_of_it() {
        for (spare, reserved) in [(0, SMALL), (10_000, 10_100), (1 << 20, 50_000)] {
            let mut g = Gathered::default();
            assert!(!g.grows_short_of(100, Some(100)), "a whole message is kept");
            assert!(
                !g.grows_short_of(100, None),
                "so is a first piece of unknown length"
            );
            assert!(!g.grows_short_of(100, Some(3_000)), "the first growth reaches it");
            assert!(g.grows_short_of(100, Some(50_000)));
            g.push_within(Bytes::from(vec![1; 100]), Some(50_000), spare, None);
            assert_eq!(g.joined.capacity(), reserved, "spare {spare}");
            assert_eq!(g.unfilled(), reserved as u64 - 100);
            g.push_within(Bytes::from(vec![2; 100]), Some(50_000), spare, None);
            assert_eq!(g.joined.capacity(), reserved, "no growth at the second piece");
        }
    }

    /// A first piece shorter than its message's announced length is copied at once, so the
    /// datagram it came in is not held until the rest comes; a whole message, and a first
    /// piece of a message of unknown length, are kept as they came.
    #[test]
    fn a_first_piece_short_of_its_message_lets_its_datagram_go() {
        let datagram = |len: usize| Bytes::from(vec![7u8; len]);
        let mut g = Gathered::default();
        let short = datagram(1_200);
        g.push(short.slice(800..), Some(1_024));
        assert!(short.is_unique(), "the datagram is no longer held");
        assert_eq!(g.len(), 400);
        g.push(datagram(624), Some(1_024));
        assert_eq!(g.take(), Bytes::from(vec![7u8; 1_024]));
        for total in [Some(400), None] {
            let mut g = Gathered::default();
            let whole = datagram(1_200);
            g.push(whole.slice(800..), total);
            assert!(!whole.is_unique(), "{total:?}: kept as it came");
            assert_eq!(g.take().as_ptr(), whole.slice(800..).as_ptr());
        }
    }

    /// A sweep copies a message waiting whole as it came, so its datagram is no longer
    /// held; what follows is joined to the copy as it would have been to the first piece.
    #[test]
    fn a_sweep_copies_the_first_piece_and_lets_its_datagram_go() {
        let whole = Bytes::from(vec![5u8; 1_200]);
        let mut g = Gathered::default();
        g.push(whole.slice(200..), None);
        g.sweep();
        assert!(whole.is_unique(), "the datagram is no longer held");
        assert_eq!(g.joined.capacity(), 1_000, "an exact copy");
        g.push(Bytes::from(vec![6u8; 24]), None);
        let mut expected = vec![5u8; 1_000];
        expected.extend_from_slice(&[6u8; 24]);
        assert_eq!(g.take(), Bytes::from(expected));
        g.sweep();
        assert!(g.is_empty(), "nothing to copy");
    }

    /// The hook sees each buffer made `LARGE_BUFFER` or more (its start and whole room),
    /// and none smaller.
    #[test]
    fn a_large_buffer_is_shown_to_the_hook_as_it_is_made() {
        use core::sync::atomic::{AtomicUsize, Ordering};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        static ROOM: AtomicUsize = AtomicUsize::new(0);
        fn hook(_: *const u8, room: usize) {
            CALLS.fetch_add(1, Ordering::Relaxed);
            ROOM.store(room, Ordering::Relaxed);
        }
        let total = 8 * LARGE_BUFFER as u64;
        let mut g = Gathered::default();
        g.push_within(Bytes::from(vec![1; 100]), Some(total), 1 << 20, Some(hook));
        g.push_within(Bytes::from(vec![2; 100]), Some(total), 1 << 20, Some(hook));
        assert_eq!(CALLS.load(Ordering::Relaxed), 0, "a 1 MiB buffer is not shown");
        let piece = Bytes::from(vec![3; 2 << 20]);
        g.push_within(piece, Some(total), 4 << 20, Some(hook));
        assert_eq!(CALLS.load(Ordering::Relaxed), 1);
        assert_eq!(ROOM.load(Ordering::Relaxed), g.joined.capacity());
        assert!(g.joined.capacity() >= LARGE_BUFFER);
    }

    #[test]
    fn an_announced_length_reserves_nothing_that_did_not_arrive() {
        let mut g = Gathered::default();
        g.push(Bytes::from(vec![1; 100]), Some(1 << 30));
        g.push(Bytes::from(vec![2; 100]), Some(1 << 30));
        assert!(g.joined.capacity() <= SMALL);
        assert_eq!(g.len(), 200);
    }

    #[test]
    fn a_small_message_in_several_pieces_is_joined_with_one_allocation() {
        let mut g = Gathered::default();
        for piece in [379, 108, 537] {
            g.push(Bytes::from(vec![3; piece]), Some(1024));
            assert!(g.joined.is_empty() || g.joined.capacity() == 1024);
        }
        assert_eq!(g.take().len(), 1024);
    }
}
