//! A set of `u64` values stored as disjoint, non-adjacent half-open ranges.
//!
//! Used for received packet numbers (what to acknowledge), acknowledged, lost and unsent
//! stream byte ranges. Nearly every such set holds a few ranges and changes at its ends
//! (the next packet number, the next bytes sent or acknowledged), so up to [`INLINE`]
//! ranges are kept in a sorted array inside the set: no allocation and a few comparisons
//! per operation. Past that, ranges move to a `BTreeMap` keyed by start, where every
//! operation is O(log n) in the number of ranges plus the ranges it merges or splits, so a
//! peer that scatters its acknowledgements costs logarithmic time, not linear; they move
//! back once at most [`INLINE`] / 2 remain. Either way iteration is in numeric order:
//! nothing here depends on hashing.

use alloc::collections::BTreeMap;
use core::ops::Range;

/// Ranges kept inline before the set moves to a B-tree.
const INLINE: usize = 4;

#[derive(Clone, Debug)]
pub(crate) enum RangeSet {
    /// `ranges[..len]`, sorted, disjoint and never touching.
    Inline { len: u8, ranges: [(u64, u64); INLINE] },
    /// start -> end (exclusive); ranges are disjoint and never touch.
    Tree(BTreeMap<u64, u64>),
}

impl Default for RangeSet {
    fn default() -> Self {
        RangeSet::new()
    }
}

impl PartialEq for RangeSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for RangeSet {}

impl RangeSet {
    pub(crate) fn new() -> Self {
        RangeSet::Inline {
            len: 0,
            ranges: [(0, 0); INLINE],
        }
    }

    /// Number of disjoint ranges.
    pub(crate) fn len(&self) -> usize {
        match self {
            RangeSet::Inline { len, .. } => *len as usize,
            RangeSet::Tree(map) => map.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `range`; returns whether any value was new.
    pub(crate) fn insert(&mut self, range: Range<u64>) -> bool {
        let Range { start, end } = range;
        if start >= end {
            return false;
        }
        let RangeSet::Inline { len, ranges } = self else {
            let fresh = tree_insert(self.tree(), start, end);
            self.shrink();
            return fresh;
        };
        let n = *len as usize;
        let v = &mut ranges[..n];
        // The ranges that overlap or touch `range`: v[i..j].
        let i = v.iter().position(|&(_, e)| e >= start).unwrap_or(n);
        let j = i + v[i..].iter().take_while(|&&(s, _)| s <= end).count();
        if j == i + 1 && v[i].0 <= start && v[i].1 >= end {
            return false;
        }
        if j > i {
            // Merged into one range at i; the ranges after j move down.
            v[i] = (v[i].0.min(start), v[j - 1].1.max(end));
            v.copy_within(j.., i + 1);
            *len -= (j - i - 1) as u8;
            return true;
        }
        if n < INLINE {
            ranges.copy_within(i..n, i + 1);
            ranges[i] = (start, end);
            *len += 1;
            return true;
        }
        let map = self.tree();
        map.insert(start, end);
        true
    }

    /// Removes `range`.
    pub(crate) fn remove(&mut self, range: Range<u64>) {
        let Range { start, end } = range;
        if start >= end {
            return;
        }
        let RangeSet::Inline { len, ranges } = self else {
            tree_remove(self.tree(), start, end);
            self.shrink();
            return;
        };
        let n = *len as usize;
        // The usual removal, a sender's next bytes off the front of the lowest range: that
        // range starts later (the general walk below was 1.5% of the instructions of
        // weir-bench's `big-request` sender, callgrind).
        if n > 0 && ranges[0].0 == start && end < ranges[0].1 {
            ranges[0].0 = end;
            return;
        }
        // The ranges that overlap `range`: ranges[i..j]; what is left of them are at most
        // the piece of the first below `start` and the piece of the last past `end`.
        let i = ranges[..n].iter().position(|&(_, e)| e > start).unwrap_or(n);
        let j = i + ranges[i..n].iter().take_while(|&&(s, _)| s < end).count();
        if i == j {
            return;
        }
        let below = (ranges[i].0 < start).then_some((ranges[i].0, start));
        let above = (ranges[j - 1].1 > end).then_some((end, ranges[j - 1].1));
        let kept = below.into_iter().chain(above);
        let k = kept.clone().count();
        if n - (j - i) + k > INLINE {
            // Only a split of one range of a full array gets here.
            tree_remove(self.tree(), start, end);
            return;
        }
        ranges.copy_within(j..n, i + k);
        for (at, r) in kept.enumerate() {
            ranges[i + at] = r;
        }
        *len = (n - (j - i) + k) as u8;
    }

    pub(crate) fn contains(&self, value: u64) -> bool {
        match self {
            RangeSet::Inline { len, ranges } => ranges[..*len as usize]
                .iter()
                .any(|&(s, e)| s <= value && value < e),
            RangeSet::Tree(map) => map.range(..=value).next_back().is_some_and(|(_, &e)| value < e),
        }
    }

    /// The lowest range (read directly: a sender asks for every datagram).
    pub(crate) fn first(&self) -> Option<Range<u64>> {
        match self {
            RangeSet::Inline { len, ranges } => (*len > 0).then(|| ranges[0].0..ranges[0].1),
            RangeSet::Tree(map) => map.first_key_value().map(|(&s, &e)| s..e),
        }
    }

    /// Removes and returns the lowest range.
    pub(crate) fn pop_first(&mut self) -> Option<Range<u64>> {
        let first = self.first()?;
        self.remove(first.clone());
        Some(first)
    }

    /// Ranges from highest to lowest.
    pub(crate) fn iter_rev(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.iter().rev()
    }

    /// Ranges from lowest to highest.
    pub(crate) fn iter(&self) -> Iter<'_> {
        match self {
            RangeSet::Inline { len, ranges } => Iter::Inline(ranges[..*len as usize].iter()),
            RangeSet::Tree(map) => Iter::Tree(map.iter()),
        }
    }

    /// The parts of `range` not in the set, lowest first.
    pub(crate) fn gaps(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let mut at = range.start;
        // An empty (or reversed) range has no gaps.
        let end = range.end.max(range.start);
        // The ranges that may overlap `range`: for a tree, the one that may cover
        // `range.start` from below, then those starting inside.
        let near: Iter<'_> = match self {
            RangeSet::Inline { .. } => self.iter(),
            RangeSet::Tree(map) => {
                let below = map.range(..at).next_back().map_or(at, |(&s, _)| s);
                Iter::Tree2(map.range(below..end))
            }
        };
        let start = at;
        near.skip_while(move |r| r.end <= start)
            .take_while(move |r| r.start < end)
            .map(Some)
            .chain(core::iter::once(None))
            .filter_map(move |next| {
                let r = next.unwrap_or(end..end);
                let gap = at..r.start.min(end).max(at);
                at = at.max(r.end.min(end));
                (gap.start < gap.end).then_some(gap)
            })
    }

    /// Removes every value below `value`.
    #[cfg(test)]
    pub(crate) fn remove_below(&mut self, value: u64) {
        self.remove(0..value);
    }

    /// The B-tree form, moving the inline ranges into it first.
    fn tree(&mut self) -> &mut BTreeMap<u64, u64> {
        match self {
            RangeSet::Tree(map) => map,
            RangeSet::Inline { len, ranges } => {
                let map = ranges[..*len as usize].iter().copied().collect();
                *self = RangeSet::Tree(map);
                // Once more, now a tree: the first arm.
                self.tree()
            }
        }
    }

    /// Back to the inline form once few ranges are left (half the room, so that a set at
    /// the boundary does not move back and forth).
    fn shrink(&mut self) {
        if let RangeSet::Tree(map) = self {
            if map.len() <= INLINE / 2 {
                let mut ranges = [(0, 0); INLINE];
                for (slot, (&s, &e)) in ranges.iter_mut().zip(map.iter()) {
                    *slot = (s, e);
                }
                *self = RangeSet::Inline {
                    len: map.len() as u8,
                    ranges,
                };
            }
        }
    }
}

fn tree_insert(map: &mut BTreeMap<u64, u64>, mut start: u64, mut end: u64) -> bool {
    // The common case, the next packet number or the next bytes: the highest range grows
    // in place.
    if let Some(mut last) = map.last_entry() {
        if *last.key() <= start && start <= *last.get() {
            if end <= *last.get() {
                return false;
            }
            last.insert(end);
            return true;
        }
    }
    if let Some((&s, &e)) = map.range(..=start).next_back() {
        if e >= end {
            return false;
        }
        if e >= start {
            start = s;
            map.remove(&s);
        }
    }
    while let Some((&s, &e)) = map.range(start..).next() {
        if s > end {
            break;
        }
        end = end.max(e);
        map.remove(&s);
    }
    map.insert(start, end);
    true
}

fn tree_remove(map: &mut BTreeMap<u64, u64>, start: u64, end: u64) {
    if let Some((&s, &e)) = map.range(..start).next_back() {
        if e > start {
            map.insert(s, start);
            if e > end {
                map.insert(end, e);
                return;
            }
        }
    }
    while let Some((&s, &e)) = map.range(start..).next() {
        if s >= end {
            break;
        }
        map.remove(&s);
        if e > end {
            map.insert(end, e);
            break;
        }
    }
}

/// The ranges of a [`RangeSet`], in order.
#[derive(Clone)]
pub(crate) enum Iter<'a> {
    Inline(core::slice::Iter<'a, (u64, u64)>),
    Tree(alloc::collections::btree_map::Iter<'a, u64, u64>),
    Tree2(alloc::collections::btree_map::Range<'a, u64, u64>),
}

impl Iterator for Iter<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        match self {
            Iter::Inline(it) => it.next().map(|&(s, e)| s..e),
            Iter::Tree(it) => it.next().map(|(&s, &e)| s..e),
            Iter::Tree2(it) => it.next().map(|(&s, &e)| s..e),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Range<u64>> {
        match self {
            Iter::Inline(it) => it.next_back().map(|&(s, e)| s..e),
            Iter::Tree(it) => it.next_back().map(|(&s, &e)| s..e),
            Iter::Tree2(it) => it.next_back().map(|(&s, &e)| s..e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_what_the_set_lacks_within_a_range() {
        let mut s = RangeSet::new();
        s.insert(10..20);
        s.insert(30..40);
        let gaps = |r: Range<u64>| s.gaps(r).collect::<Vec<_>>();
        assert_eq!(gaps(0..50), [0..10, 20..30, 40..50]);
        assert_eq!(gaps(15..35), alloc::vec![20..30]);
        assert!(gaps(12..18).is_empty());
        assert_eq!(gaps(20..30), alloc::vec![20..30]);
        assert!(gaps(5..5).is_empty());
    }
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn ranges(s: &RangeSet) -> Vec<(u64, u64)> {
        s.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn inserts_merge_touching_and_overlapping_ranges() {
        let mut s = RangeSet::new();
        assert!(s.insert(10..20));
        assert!(s.insert(30..40));
        assert!(!s.insert(12..15));
        assert!(s.insert(20..30));
        assert_eq!(ranges(&s), [(10, 40)]);
        assert!(s.insert(0..5));
        assert!(s.insert(4..11));
        assert_eq!(ranges(&s), [(0, 40)]);
        assert!(!s.insert(7..7));
    }

    #[test]
    fn removes_split_ranges() {
        let mut s = RangeSet::new();
        s.insert(0..100);
        s.remove(10..20);
        s.remove(50..60);
        assert_eq!(ranges(&s), [(0, 10), (20, 50), (60, 100)]);
        s.remove(5..70);
        assert_eq!(ranges(&s), [(0, 5), (70, 100)]);
        s.remove_below(80);
        assert_eq!(ranges(&s), [(80, 100)]);
        assert!(s.contains(80) && s.contains(99) && !s.contains(100) && !s.contains(79));
        // Off the front of the lowest range (a sender's next bytes), then all of it.
        s.insert(120..130);
        s.remove(80..90);
        assert_eq!(ranges(&s), [(90, 100), (120, 130)]);
        s.remove(90..100);
        assert_eq!(ranges(&s), [(120, 130)]);
    }

    proptest! {
        #[test]
        fn agrees_with_a_bitmap(ops in prop::collection::vec((any::<bool>(), 0u64..200, 0u64..40), 0..60)) {
            let mut set = RangeSet::new();
            let mut model = [false; 240];
            for (add, start, len) in ops {
                let r = start..start + len;
                if add {
                    let fresh = r.clone().any(|v| !model[v as usize]);
                    prop_assert_eq!(set.insert(r.clone()), fresh);
                    r.for_each(|v| model[v as usize] = true);
                } else {
                    set.remove(r.clone());
                    r.for_each(|v| model[v as usize] = false);
                }
                for (v, &m) in model.iter().enumerate() {
                    prop_assert_eq!(set.contains(v as u64), m);
                }
                // Disjoint and never touching.
                let rs = ranges(&set);
                for w in rs.windows(2) {
                    prop_assert!(w[0].1 < w[1].0);
                }
                prop_assert_eq!(set.len(), rs.len());
                prop_assert_eq!(set.first().map(|r| (r.start, r.end)), rs.first().copied());
                let mut rev: Vec<_> = set.iter_rev().map(|r| (r.start, r.end)).collect();
                rev.reverse();
                prop_assert_eq!(rev, rs);
            }
        }

        /// Whichever form the set is in (inline or tree), its gaps are what the model lacks.
        #[test]
        fn gaps_agree_with_a_bitmap(
            adds in prop::collection::vec((0u64..200, 0u64..20), 0..20),
            queries in prop::collection::vec((0u64..240, 0u64..60), 1..8),
        ) {
            let mut set = RangeSet::new();
            let mut model = [false; 240];
            for (start, len) in adds {
                set.insert(start..start + len);
                (start..start + len).for_each(|v| model[v as usize] = true);
            }
            for (start, len) in queries {
                let end = (start + len).min(240);
                let mut expected = Vec::new();
                for v in start..end {
                    if !model[v as usize] {
                        match expected.last_mut() {
                            Some((_, e)) if *e == v => *e = v + 1,
                            _ => expected.push((v, v + 1)),
                        }
                    }
                }
                let got: Vec<_> = set.gaps(start..end).map(|r| (r.start, r.end)).collect();
                prop_assert_eq!(got, expected);
            }
        }
    }
}
