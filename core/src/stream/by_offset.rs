//! A stream's pieces by offset, in order: the chunks a send stream holds until they are
//! acknowledged, and the pieces a receive stream holds until they are read (modules `send`
//! and `recv` decide what the pieces are and when they go).
//!
//! Inputs: pieces put in at their offsets, the lowest taken out. Outputs: the piece at or
//! before an offset, the first within a range, the pieces in order. Most streams carry one
//! message that fits one piece: the lowest piece is kept inline, so such a stream allocates
//! nothing for it (a B-tree alone allocated a node per stream, an allocation and a free per
//! message at each end); the others go in a B-tree, so that pieces arriving in any order,
//! as a peer may send them, cost a logarithm each, never a walk.
//!
//! The small lookups are marked `#[inline]`: they are on every stream's send and receive
//! path, and without the mark the compiler inlines them or not by which codegen unit their
//! callers fall in, which changes elsewhere in the crate move (issue 35's thirty-fourth
//! round: 2,000 in-memory round trips +0.9% instructions from a change that never ran on
//! them, until these and `wire::varint::decode` were marked).

use alloc::collections::BTreeMap;
use core::ops::Range;

/// Pieces by offset (module docs). The inline piece's offset is below every other's.
#[derive(Debug)]
pub(crate) struct ByOffset<V> {
    first: Option<(u64, V)>,
    rest: BTreeMap<u64, V>,
}

impl<V> Default for ByOffset<V> {
    fn default() -> Self {
        ByOffset {
            first: None,
            rest: BTreeMap::new(),
        }
    }
}

impl<V> ByOffset<V> {
    /// Holding `v` at `offset` alone.
    pub(crate) fn one(offset: u64, v: V) -> Self {
        ByOffset {
            first: Some((offset, v)),
            rest: BTreeMap::new(),
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
        self.rest.clear();
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
            Some(_) => {
                self.rest.insert(offset, v);
            }
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
        match self.rest.range(..=offset).next_back() {
            Some((s, v)) => Some((*s, v)),
            None => self.first().filter(|(s, _)| *s <= offset),
        }
    }

    /// The last piece starting below `offset`.
    #[inline]
    pub(crate) fn before(&self, offset: u64) -> Option<(u64, &V)> {
        match self.rest.range(..offset).next_back() {
            Some((s, v)) => Some((*s, v)),
            None => self.first().filter(|(s, _)| *s < offset),
        }
    }

    /// [`before`](Self::before), to change.
    #[inline]
    pub(crate) fn before_mut(&mut self, offset: u64) -> Option<(u64, &mut V)> {
        match self.rest.range_mut(..offset).next_back() {
            Some((s, v)) => Some((*s, v)),
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
            _ => self.rest.range(range).next().map(|(s, v)| (*s, v)),
        }
    }

    /// The pieces starting at or above `offset`, in order.
    pub(crate) fn from(&self, offset: u64) -> impl Iterator<Item = (u64, &V)> {
        let first = self.first().filter(|(s, _)| *s >= offset);
        first
            .into_iter()
            .chain(self.rest.range(offset..).map(|(s, v)| (*s, v)))
    }

    /// Every piece, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.from(0)
    }

    /// Every piece, in order, to change.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> {
        let first = self.first.as_mut().map(|(s, v)| (*s, v));
        first
            .into_iter()
            .chain(self.rest.iter_mut().map(|(s, v)| (*s, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

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
