//! A set of `u64` values stored as disjoint, non-adjacent half-open ranges.
//!
//! Used for received packet numbers (what to acknowledge), acknowledged and lost stream
//! byte ranges. Ranges are kept in a `BTreeMap` keyed by start, so iteration order is the
//! numeric order: nothing here depends on hashing, and every operation is O(log n) in the
//! number of ranges plus the ranges it merges or splits.

use alloc::collections::BTreeMap;
use core::ops::Range;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// start -> end (exclusive); ranges are disjoint and never touch.
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub(crate) fn new() -> Self {
        RangeSet { map: BTreeMap::new() }
    }

    /// Number of disjoint ranges.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds `range`; returns whether any value was new.
    pub(crate) fn insert(&mut self, range: Range<u64>) -> bool {
        let Range { mut start, mut end } = range;
        if start >= end {
            return false;
        }
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= end {
                return false;
            }
            if e >= start {
                start = s;
                self.map.remove(&s);
            }
        }
        while let Some((&s, &e)) = self.map.range(start..).next() {
            if s > end {
                break;
            }
            end = end.max(e);
            self.map.remove(&s);
        }
        self.map.insert(start, end);
        true
    }

    /// Removes `range`.
    pub(crate) fn remove(&mut self, range: Range<u64>) {
        let Range { start, end } = range;
        if start >= end {
            return;
        }
        if let Some((&s, &e)) = self.map.range(..start).next_back() {
            if e > start {
                self.map.insert(s, start);
                if e > end {
                    self.map.insert(end, e);
                    return;
                }
            }
        }
        while let Some((&s, &e)) = self.map.range(start..).next() {
            if s >= end {
                break;
            }
            self.map.remove(&s);
            if e > end {
                self.map.insert(end, e);
                break;
            }
        }
    }

    pub(crate) fn contains(&self, value: u64) -> bool {
        self.map
            .range(..=value)
            .next_back()
            .is_some_and(|(_, &e)| value < e)
    }

    /// The lowest range.
    pub(crate) fn first(&self) -> Option<Range<u64>> {
        self.map.iter().next().map(|(&s, &e)| s..e)
    }

    /// Removes and returns the lowest range.
    pub(crate) fn pop_first(&mut self) -> Option<Range<u64>> {
        self.map.pop_first().map(|(s, e)| s..e)
    }

    /// Ranges from highest to lowest.
    pub(crate) fn iter_rev(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.map.iter().rev().map(|(&s, &e)| s..e)
    }

    /// Ranges from lowest to highest.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    /// The parts of `range` not in the set, lowest first.
    pub(crate) fn gaps(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        // The range that may cover `range.start` from below, then those starting inside.
        let below = self.map.range(..range.start).next_back().map(|(&s, &e)| (s, e));
        let mut at = range.start;
        let end = range.end;
        below
            .into_iter()
            .chain(self.map.range(range.start..end).map(|(&s, &e)| (s, e)))
            .map(Some)
            .chain(core::iter::once(None))
            .filter_map(move |next| {
                let (s, e) = next.unwrap_or((end, end));
                let gap = at..s.min(end).max(at);
                at = at.max(e.min(end));
                (gap.start < gap.end).then_some(gap)
            })
    }

    /// Removes every value below `value`.
    #[cfg(test)]
    pub(crate) fn remove_below(&mut self, value: u64) {
        self.remove(0..value);
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
            }
        }
    }
}
