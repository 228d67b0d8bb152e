//! The bytes a send stream holds until they are acknowledged: the application's chunks by
//! offset, in order (module `send` decides what they are and when they go).
//!
//! Inputs: chunks written (nearly always each after the last), chunks acknowledged from the
//! front. Outputs: the chunk holding an offset, the one before an offset, whether a range is
//! held. Most streams carry one message written at once, one chunk: the first is kept
//! inline, so such a stream allocates nothing for it (a B-tree allocated a node per
//! stream, an allocation and a free per message); the rest go in a deque, found by binary
//! search, appended at the back and released from the front.

use alloc::collections::VecDeque;
use core::ops::Range;

use bytes::Bytes;

/// Chunks by offset, disjoint, in order (module docs).
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// The lowest chunk; `None` only if there is none.
    first: Option<(u64, Bytes)>,
    /// The chunks after it, in order.
    rest: VecDeque<(u64, Bytes)>,
}

impl Written {
    /// The `i`-th chunk, in order.
    fn get(&self, i: usize) -> Option<&(u64, Bytes)> {
        match i {
            0 => self.first.as_ref(),
            i => self.rest.get(i - 1),
        }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut (u64, Bytes)> {
        match i {
            0 => self.first.as_mut(),
            i => self.rest.get_mut(i - 1),
        }
    }

    /// How many chunks start below `offset`.
    fn below(&self, offset: u64) -> usize {
        match &self.first {
            Some((start, _)) if *start < offset => 1 + self.rest.partition_point(|(s, _)| *s < offset),
            _ => 0,
        }
    }

    /// The last chunk starting below `offset`.
    pub(crate) fn before(&self, offset: u64) -> Option<(u64, &Bytes)> {
        let i = self.below(offset).checked_sub(1)?;
        self.get(i).map(|(s, c)| (*s, c))
    }

    /// [`before`](Self::before), to change.
    pub(crate) fn before_mut(&mut self, offset: u64) -> Option<(u64, &mut Bytes)> {
        let i = self.below(offset).checked_sub(1)?;
        self.get_mut(i).map(|(s, c)| (*s, c))
    }

    /// The last chunk starting at or below `offset`.
    pub(crate) fn at_or_before(&self, offset: u64) -> Option<(u64, &Bytes)> {
        let i = self.below(offset.saturating_add(1)).checked_sub(1)?;
        self.get(i).map(|(s, c)| (*s, c))
    }

    /// Whether a chunk starts within `range`.
    pub(crate) fn starts_within(&self, range: Range<u64>) -> bool {
        self.get(self.below(range.start))
            .is_some_and(|(s, _)| *s < range.end)
    }

    /// Adds `chunk` at `offset` (no chunk may start there already).
    pub(crate) fn insert(&mut self, offset: u64, chunk: Bytes) {
        match &self.first {
            None => self.first = Some((offset, chunk)),
            Some((start, _)) if offset < *start => {
                let old = self.first.replace((offset, chunk));
                if let Some(old) = old {
                    self.rest.push_front(old);
                }
            }
            Some(_) => {
                let i = self.rest.partition_point(|(s, _)| *s < offset);
                self.rest.insert(i, (offset, chunk));
            }
        }
    }

    /// The first chunk, taken out if `done` says so of its offset and bytes.
    pub(crate) fn pop_first_if(&mut self, done: impl FnOnce(u64, &Bytes) -> bool) -> bool {
        match &self.first {
            Some((s, c)) if done(*s, c) => {
                self.first = self.rest.pop_front();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;

    #[test]
    fn written_chunks_agree_with_a_map_in_and_out_of_order() {
        let mut w = Written::default();
        let mut model: BTreeMap<u64, Bytes> = BTreeMap::new();
        // In order, one out of order before the first, one in a gap, then released from the
        // front.
        for off in [100u64, 200, 300, 500, 0, 400, 600] {
            let b = Bytes::from(alloc::vec![off as u8; 10]);
            w.insert(off, b.clone());
            model.insert(off, b);
        }
        for probe in [0u64, 5, 99, 100, 101, 350, 599, 600, 601, 10_000] {
            let want = model.range(..=probe).next_back().map(|(s, c)| (*s, c.clone()));
            assert_eq!(
                w.at_or_before(probe).map(|(s, c)| (s, c.clone())),
                want,
                "{probe}"
            );
            let want = model.range(..probe).next_back().map(|(s, _)| *s);
            assert_eq!(w.before(probe).map(|(s, _)| s), want, "{probe}");
            assert_eq!(w.before_mut(probe).map(|(s, _)| s), want, "{probe}");
            for end in [probe + 1, probe + 150] {
                assert_eq!(
                    w.starts_within(probe..end),
                    model.range(probe..end).next().is_some(),
                    "{probe}..{end}"
                );
            }
        }
        let mut released = Vec::new();
        while w.pop_first_if(|s, _| s < 450) {
            released.push(model.pop_first().unwrap().0);
        }
        assert_eq!(released, [0, 100, 200, 300, 400]);
        assert_eq!(w.at_or_before(10_000).map(|(s, _)| s), Some(600));
        while w.pop_first_if(|_, _| true) {}
        assert!(w.first.is_none() && w.rest.is_empty());
    }
}
