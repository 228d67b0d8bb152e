//! A stream's pieces by offset, in order: the chunks a send stream holds until they are
//! acknowledged, and the pieces a receive stream holds until they are read (modules `send`
//! and `recv` decide what the pieces are and when they go).
//!
//! Inputs: pieces put in at their offsets, the lowest taken out. Outputs: the piece at or
//! before an offset, the first within a range, the pieces in order. Most streams carry one
//! message that fits one piece: the lowest piece is kept inline, so such a stream allocates
//! nothing for it (a B-tree alone allocated a node per stream, an allocation and a free per
//! message at each end).
//!
//! The others are kept as they came, in one of two ways ([`Rest`]):
//! - *In order*, a ring of pieces sorted by offset: while every piece comes after all held
//!   (a sender's chunks as the application writes them; a receiver's pieces when nothing
//!   is lost), or before all of them. Putting one in is a push, taking the lowest a pop, a
//!   look-up a binary search. A B-tree took a search and node splits and merges for each:
//!   some 6% of the in-memory transfer's time (`perf` of `--bench transfer`, issue 35's
//!   round on this module, adapters/bench/rounds.md).
//! - *Any order*, a B-tree: from the first piece that lands between two held ones (a
//!   retransmission into a gap), until the stream holds nothing again. Pieces arriving in
//!   any order, as a peer may send them, then cost a logarithm each, never a walk; each piece
//!   moves from the ring to the tree at most once, so what a peer can make the switch cost
//!   is a logarithm per piece it sent too.
//!
//! The ring's room stays within twice what it holds plus [`SPARE`] places (it is shrunk as
//! it empties, which copies what is left at most once per half of it taken out): under the
//! [`PIECE_COST`](crate::stream::held::PIECE_COST) each piece is charged, as the B-tree's
//! node shares were.
//!
//! The small lookups are marked `#[inline]`: they are on every stream's send and receive
//! path, and without the mark the compiler inlines them or not by which codegen unit their
//! callers fall in, which changes elsewhere in the crate move (issue 35's thirty-fourth
//! round: 2,000 in-memory round trips +0.9% instructions from a change that never ran on
//! them, until these and `wire::varint::decode` were marked).

use alloc::collections::{BTreeMap, VecDeque};
use core::ops::{Range, RangeBounds};

/// Places the ring may keep beyond twice what it holds, so that one emptied and filled
/// again by each batch of datagrams does not allocate for each.
const SPARE: usize = 8;

/// Pieces by offset (module docs). The inline piece's offset is below every other's.
#[derive(Debug)]
pub(crate) struct ByOffset<V> {
    first: Option<(u64, V)>,
    rest: Rest<V>,
}

/// The pieces after the inline one, as they came (module docs).
#[derive(Debug)]
enum Rest<V> {
    /// Sorted by offset: every piece so far came after or before all held.
    InOrder(VecDeque<(u64, V)>),
    /// One came between two held: a B-tree, until empty.
    AnyOrder(BTreeMap<u64, V>),
}

impl<V> Default for Rest<V> {
    fn default() -> Self {
        Rest::InOrder(VecDeque::new())
    }
}

impl<V> Rest<V> {
    fn len(&self) -> usize {
        match self {
            Rest::InOrder(ring) => ring.len(),
            Rest::AnyOrder(tree) => tree.len(),
        }
    }

    /// Puts `v` at `offset`, replacing what was there.
    #[inline]
    fn insert(&mut self, offset: u64, v: V) {
        let ring = match self {
            Rest::AnyOrder(tree) => {
                tree.insert(offset, v);
                return;
            }
            Rest::InOrder(ring) => ring,
        };
        if ring.back().is_none_or(|(last, _)| offset > *last) {
            ring.push_back((offset, v));
        } else if ring.front().is_some_and(|(lowest, _)| offset < *lowest) {
            ring.push_front((offset, v));
        } else if let Some((_, held)) = Self::last_index(ring, ..=offset)
            .and_then(|i| ring.get_mut(i))
            .filter(|(s, _)| *s == offset)
        {
            *held = v;
        } else {
            // Between two held: the tree from now on (module docs).
            let mut tree: BTreeMap<u64, V> = core::mem::take(ring).into_iter().collect();
            tree.insert(offset, v);
            *self = Rest::AnyOrder(tree);
        }
    }

    /// Takes out the lowest piece; back in order once none is left.
    #[inline]
    fn pop_first(&mut self) -> Option<(u64, V)> {
        match self {
            // Most streams hold one piece, inline: nothing here (the check is what most calls
            // cost).
            Rest::InOrder(ring) if ring.is_empty() => None,
            _ => self.pop_first_held(),
        }
    }

    fn pop_first_held(&mut self) -> Option<(u64, V)> {
        match self {
            Rest::InOrder(ring) => {
                let lowest = ring.pop_front();
                if ring.capacity() > 2 * ring.len() + SPARE {
                    ring.shrink_to(ring.len() + ring.len() / 2 + SPARE / 2);
                }
                lowest
            }
            Rest::AnyOrder(tree) => {
                let lowest = tree.pop_first();
                if tree.is_empty() {
                    *self = Rest::default();
                }
                lowest
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Rest::InOrder(ring) => ring.is_empty(),
            Rest::AnyOrder(tree) => tree.is_empty(),
        }
    }

    /// The index in the ring of the last piece in `below`, a range of the offsets up to a
    /// bound (`..offset` or `..=offset`).
    #[inline]
    fn last_index(ring: &VecDeque<(u64, V)>, below: impl RangeBounds<u64>) -> Option<usize> {
        ring.partition_point(|(s, _)| below.contains(s)).checked_sub(1)
    }

    /// The last piece in `below` ([`last_index`](Self::last_index)).
    #[inline]
    fn last_within(&self, below: impl RangeBounds<u64>) -> Option<(u64, &V)> {
        let (s, v) = match self {
            Rest::InOrder(ring) => ring.get(Self::last_index(ring, below)?).map(|(s, v)| (s, v))?,
            Rest::AnyOrder(tree) => tree.range(below).next_back()?,
        };
        Some((*s, v))
    }

    /// [`last_within`](Self::last_within), to change.
    #[inline]
    fn last_within_mut(&mut self, below: impl RangeBounds<u64>) -> Option<(u64, &mut V)> {
        let (s, v) = match self {
            Rest::InOrder(ring) => {
                let i = Self::last_index(ring, below)?;
                ring.get_mut(i).map(|(s, v)| (&*s, v))?
            }
            Rest::AnyOrder(tree) => tree.range_mut(below).next_back()?,
        };
        Some((*s, v))
    }

    /// The pieces starting at or above `offset`, in order.
    fn from(&self, offset: u64) -> impl Iterator<Item = (u64, &V)> {
        let (ring, tree) = match self {
            Rest::InOrder(ring) => {
                let start = ring.partition_point(|(s, _)| *s < offset);
                (Some(ring.range(start..)), None)
            }
            Rest::AnyOrder(tree) => (None, Some(tree.range(offset..))),
        };
        let ring = ring.into_iter().flatten().map(|(s, v)| (*s, v));
        ring.chain(tree.into_iter().flatten().map(|(s, v)| (*s, v)))
    }

    /// Every piece, in order, to change.
    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> {
        let (ring, tree) = match self {
            Rest::InOrder(ring) => (Some(ring.iter_mut()), None),
            Rest::AnyOrder(tree) => (None, Some(tree.iter_mut())),
        };
        let ring = ring.into_iter().flatten().map(|(s, v)| (*s, v));
        ring.chain(tree.into_iter().flatten().map(|(s, v)| (*s, v)))
    }
}

impl<V> Default for ByOffset<V> {
    fn default() -> Self {
        ByOffset {
            first: None,
            rest: Rest::default(),
        }
    }
}

impl<V> ByOffset<V> {
    /// Holding `v` at `offset` alone.
    pub(crate) fn one(offset: u64, v: V) -> Self {
        ByOffset {
            first: Some((offset, v)),
            rest: Rest::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.rest = Rest::default();
    }

    /// Puts `v` at `offset`, replacing what was there.
    #[inline]
    pub(crate) fn insert(&mut self, offset: u64, v: V) {
        match &mut self.first {
            None => self.first = Some((offset, v)),
            Some((start, held)) if *start == offset => *held = v,
            Some((start, _)) if offset < *start => {
                if let Some((s, old)) = self.first.replace((offset, v)) {
                    self.rest.insert(s, old);
                }
            }
            Some(_) => self.rest.insert(offset, v),
        }
    }

    /// The lowest piece.
    #[inline]
    pub(crate) fn first(&self) -> Option<(u64, &V)> {
        self.first.as_ref().map(|(s, v)| (*s, v))
    }

    /// The lowest piece, to change. Its offset may move up as long as it stays below the
    /// next piece's (what is left of a piece read in part).
    #[inline]
    pub(crate) fn first_mut(&mut self) -> Option<(&mut u64, &mut V)> {
        self.first.as_mut().map(|(s, v)| (s, v))
    }

    /// Takes out the lowest piece.
    #[inline]
    pub(crate) fn pop_first(&mut self) -> Option<(u64, V)> {
        let next = self.rest.pop_first();
        core::mem::replace(&mut self.first, next)
    }

    /// The last piece starting at or below `offset`.
    #[inline]
    pub(crate) fn at_or_before(&self, offset: u64) -> Option<(u64, &V)> {
        if self.rest.is_empty() {
            return self.first().filter(|(s, _)| *s <= offset);
        }
        match self.rest.last_within(..=offset) {
            Some(found) => Some(found),
            None => self.first().filter(|(s, _)| *s <= offset),
        }
    }

    /// The last piece starting below `offset`.
    #[inline]
    pub(crate) fn before(&self, offset: u64) -> Option<(u64, &V)> {
        if self.rest.is_empty() {
            return self.first().filter(|(s, _)| *s < offset);
        }
        match self.rest.last_within(..offset) {
            Some(found) => Some(found),
            None => self.first().filter(|(s, _)| *s < offset),
        }
    }

    /// [`before`](Self::before), to change.
    #[inline]
    pub(crate) fn before_mut(&mut self, offset: u64) -> Option<(u64, &mut V)> {
        let found = match self.rest.is_empty() {
            true => None,
            false => self.rest.last_within_mut(..offset),
        };
        match found {
            Some(found) => Some(found),
            None => self
                .first
                .as_mut()
                .filter(|(s, _)| *s < offset)
                .map(|(s, v)| (*s, v)),
        }
    }

    /// The first piece starting within `range`.
    #[inline]
    pub(crate) fn first_within(&self, range: Range<u64>) -> Option<(u64, &V)> {
        match self.first() {
            Some((s, v)) if range.contains(&s) => Some((s, v)),
            _ if self.rest.is_empty() => None,
            _ => self.rest.from(range.start).next().filter(|(s, _)| *s < range.end),
        }
    }

    /// The pieces starting at or above `offset`, in order.
    pub(crate) fn from(&self, offset: u64) -> impl Iterator<Item = (u64, &V)> {
        let first = self.first().filter(|(s, _)| *s >= offset);
        first.into_iter().chain(self.rest.from(offset))
    }

    /// Every piece, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.from(0)
    }

    /// Every piece, in order, to change.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> {
        let first = self.first.as_mut().map(|(s, v)| (*s, v));
        first.into_iter().chain(self.rest.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// The ring's room, if the pieces are in one.
    fn ring_room<V>(p: &ByOffset<V>) -> Option<usize> {
        match &p.rest {
            Rest::InOrder(ring) => Some(ring.capacity()),
            Rest::AnyOrder(_) => None,
        }
    }

    /// Checks every look-up against the model, and the ring's room against what it holds.
    fn agrees(p: &ByOffset<u32>, model: &BTreeMap<u64, u32>, probes: &[u64]) {
        assert_eq!(p.len(), model.len());
        assert_eq!(
            p.first().map(|(s, v)| (s, *v)),
            model.first_key_value().map(|(s, v)| (*s, *v))
        );
        let all: Vec<_> = model.iter().map(|(s, v)| (*s, *v)).collect();
        assert_eq!(p.iter().map(|(s, v)| (s, *v)).collect::<Vec<_>>(), all);
        for &probe in probes {
            let want = model.range(..=probe).next_back().map(|(s, v)| (*s, *v));
            assert_eq!(p.at_or_before(probe).map(|(s, v)| (s, *v)), want);
            let want = model.range(..probe).next_back().map(|(s, v)| (*s, *v));
            assert_eq!(p.before(probe).map(|(s, v)| (s, *v)), want);
            let want = model
                .range(probe..probe.saturating_add(3))
                .next()
                .map(|(s, v)| (*s, *v));
            assert_eq!(
                p.first_within(probe..probe.saturating_add(3))
                    .map(|(s, v)| (s, *v)),
                want
            );
            let want: Vec<_> = model.range(probe..).map(|(s, v)| (*s, *v)).collect();
            assert_eq!(p.from(probe).map(|(s, v)| (s, *v)).collect::<Vec<_>>(), want);
        }
        if let Some(room) = ring_room(p) {
            // The bound the module docs give, under the charge of each piece.
            assert!(
                room <= 2 * p.rest.len() + SPARE,
                "{room} places for {}",
                p.rest.len()
            );
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Past every piece held: the in-order case.
        Append(u64),
        /// Anywhere (a piece into a gap, below all, or at one held).
        At(u64),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1u64..4).prop_map(Op::Append),
            1 => (0u64..200).prop_map(Op::At),
            3 => Just(Op::Pop),
        ]
    }

    proptest! {
        /// Whatever the order pieces come and go in, the look-ups give what a sorted map
        /// does, in either form, and the ring's room stays within the docs' bound.
        #[test]
        fn pieces_agree_with_a_map_in_either_form(ops in proptest::collection::vec(op(), 1..400)) {
            let mut p = ByOffset::default();
            let mut model = BTreeMap::new();
            let mut next = 0u64;
            for (i, op) in ops.into_iter().enumerate() {
                let v = i as u32;
                match op {
                    Op::Append(step) => {
                        let at = model.last_key_value().map_or(next, |(s, _)| s + step);
                        next = at + step;
                        p.insert(at, v);
                        model.insert(at, v);
                    }
                    Op::At(at) => {
                        p.insert(at, v);
                        model.insert(at, v);
                    }
                    Op::Pop => prop_assert_eq!(p.pop_first(), model.pop_first()),
                }
                agrees(&p, &model, &[0, 1, 50, 100, 150, next, next + 1, u64::MAX]);
            }
        }
    }

    /// Two places of the ring are within a piece's charge (`held::PIECE_COST`), as the
    /// module docs say.
    #[test]
    fn a_ring_place_is_at_most_half_a_piece_charge() {
        use crate::stream::held::{Held, PIECE_COST};
        let place = core::mem::size_of::<(u64, Held)>();
        assert_eq!(place, 48);
        assert!(2 * place as u64 <= PIECE_COST);
        assert!(core::mem::size_of::<(u64, bytes::Bytes)>() <= place);
    }

    #[test]
    fn pieces_in_order_stay_in_the_ring_and_one_between_moves_them_to_the_tree_until_empty() {
        let mut p = ByOffset::default();
        for i in 1..=1000u64 {
            p.insert(i * 10, i);
        }
        // One below all of them too: still in order.
        p.insert(0, 0);
        p.insert(5, 5);
        assert!(ring_room(&p).is_some());
        // A replacement changes nothing of the form.
        p.insert(500, 50);
        assert!(ring_room(&p).is_some());
        // Taken out down to ten: the room follows.
        while p.len() > 10 {
            p.pop_first();
        }
        assert!(ring_room(&p).is_some_and(|room| room <= 2 * 9 + SPARE));
        // One between two held: a tree, until it holds nothing, then a ring again.
        p.insert(9_995, 1);
        assert_eq!(ring_room(&p), None);
        p.insert(20_000, 2);
        assert_eq!(ring_room(&p), None);
        while p.pop_first().is_some() {}
        assert_eq!(ring_room(&p), Some(0));
        p.insert(1, 1);
        p.insert(2, 2);
        assert!(ring_room(&p).is_some());
    }

    #[test]
    fn pieces_agree_with_a_map_whatever_the_order() {
        let mut p = ByOffset::default();
        let mut model = BTreeMap::new();
        // In order, one before the first, one in a gap, one replaced; then taken from the
        // front.
        for (off, v) in [
            (100u64, 1),
            (200, 2),
            (300, 3),
            (500, 5),
            (0, 0),
            (400, 4),
            (600, 6),
            (200, 22),
        ] {
            p.insert(off, v);
            model.insert(off, v);
            assert_eq!(p.len(), model.len());
        }
        for probe in [0u64, 5, 99, 100, 101, 350, 599, 600, 601, 10_000] {
            let want = model.range(..=probe).next_back().map(|(s, v)| (*s, *v));
            assert_eq!(p.at_or_before(probe).map(|(s, v)| (s, *v)), want, "{probe}");
            let want = model.range(..probe).next_back().map(|(s, v)| (*s, *v));
            assert_eq!(p.before(probe).map(|(s, v)| (s, *v)), want, "{probe}");
            assert_eq!(p.before_mut(probe).map(|(s, v)| (s, *v)), want, "{probe}");
            for end in [probe + 1, probe + 150] {
                let want = model.range(probe..end).next().map(|(s, v)| (*s, *v));
                assert_eq!(p.first_within(probe..end).map(|(s, v)| (s, *v)), want);
            }
            let want: Vec<_> = model.range(probe..).map(|(s, v)| (*s, *v)).collect();
            assert_eq!(p.from(probe).map(|(s, v)| (s, *v)).collect::<Vec<_>>(), want);
        }
        for (_, v) in p.iter_mut() {
            *v += 10;
        }
        // The lowest piece read in part: what is left moves up, still first.
        if let Some((s, v)) = p.first_mut() {
            *s += 50;
            *v += 100;
        }
        let lowest = model.pop_first().unwrap();
        model.insert(lowest.0 + 50, lowest.1 + 100);
        let mut taken = Vec::new();
        while let Some((s, v)) = p.pop_first() {
            taken.push((s, v));
        }
        let want: Vec<_> = model.into_iter().map(|(s, v)| (s, v + 10)).collect();
        assert_eq!(taken, want);
        assert!(p.is_empty() && p.first().is_none());
    }
}
