//! The endpoint's timer index: each connection slot's next deadline (what
//! `Connection::next_timeout` says after every call that touched it; spec/protocol.md §8
//! says what the deadlines are), kept so that the earliest is found at once and one slot's
//! deadline moves in a few steps. An owned part of the endpoint: module `slots` files a
//! slot's deadline after each call, `Endpoint::poll_timeout` reads the earliest, and
//! `Endpoint::handle_timeout` takes every one due.
//!
//! Inputs: a slot and its deadline, or none. Outputs: the earliest (deadline, slot), and the
//! slots due at an instant, ordered by (deadline, slot): the order a `BTreeSet` of the pairs
//! gave before, so outputs are unchanged.
//!
//! A four-ary min-heap of (deadline, slot) with each slot's place in it. A connection files
//! its deadline after nearly every packet (an ACK or probe deadline set, moved or cleared),
//! so what matters is moving one entry: here a sift of at most log4(n) steps through one
//! array, where the `BTreeSet` it replaced removed and inserted a node entry (descending its
//! tree twice): 735 instructions fewer a round trip (adapters/bench/rounds.md, issue 35's
//! tenth round). Four children a node rather than two halve the steps, each reading four
//! neighbouring entries (64 bytes, though not aligned to a cache line) rather than two; the
//! entry that moves is held aside and written once where it stops, so each step writes one
//! entry and one place, not two of each. The sift is still the part of a message's cost that
//! grows most with the connection count (rounds.md, "After the fifty-second round: the timer
//! index's sift", which also says why the index is not lazier and what would do better).

use alloc::vec::Vec;

use crate::time::Instant;

/// No place in the heap.
const NONE: u32 = u32::MAX;

/// Each slot's deadline, earliest first.
///
/// The indexing below cannot go out of bounds: `place[slot]`, when not `NONE`, is the index
/// of `slot`'s entry in `heap` (`set` and `put` keep the two in step, and nothing else
/// changes either), and every entry's slot has a place (`set` makes room for it first).
/// Slots are the endpoint's own numbers, never a peer's.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    /// A min-heap by (deadline, slot): each entry no later than its children.
    heap: Vec<(Instant, u32)>,
    /// For each slot, its entry's index in `heap`, or `NONE`.
    place: Vec<u32>,
}

impl Deadlines {
    /// The deadline filed for `slot`.
    pub(super) fn get(&self, slot: u32) -> Option<Instant> {
        match *self.place.get(slot as usize)? {
            NONE => None,
            i => self.heap.get(i as usize).map(|&(at, _)| at),
        }
    }

    /// The earliest deadline and its slot (the smallest slot of those that share it).
    pub(super) fn first(&self) -> Option<(Instant, u32)> {
        self.heap.first().copied()
    }

    /// Files `at` as `slot`'s deadline, or takes its deadline away (`None`).
    pub(super) fn set(&mut self, slot: u32, at: Option<Instant>) {
        let s = slot as usize;
        if self.place.len() <= s {
            self.place.resize(s + 1, NONE);
        }
        match (self.place[s], at) {
            (NONE, None) => {}
            (NONE, Some(at)) => {
                let i = self.heap.len();
                self.heap.push((at, slot));
                self.place[s] = i as u32;
                self.up(i);
            }
            (i, Some(at)) => {
                let i = i as usize;
                let old = self.heap[i].0;
                self.heap[i].0 = at;
                if at < old {
                    self.up(i);
                } else {
                    self.down(i);
                }
            }
            (i, None) => {
                let i = i as usize;
                self.place[s] = NONE;
                let last = self.heap.len() - 1;
                self.heap.swap(i, last);
                self.heap.pop();
                if i < last {
                    // The last entry took the removed one's place: it may belong above or
                    // below it.
                    self.place[self.heap[i].1 as usize] = i as u32;
                    self.up(i);
                    self.down(i);
                }
            }
        }
    }

    /// The slots whose deadline is at or before `now`, ordered by (deadline, slot). The
    /// index is left as it is: each is filed again after its connection ran its timers.
    pub(super) fn due(&self, now: Instant) -> Vec<u32> {
        let is_due = |i: usize| self.heap.get(i).is_some_and(|&(at, _)| at <= now);
        if !is_due(0) {
            return Vec::new();
        }
        // The heap indices of the due entries, found breadth first: only a due entry's
        // children can be due, so the walk stops at every later one.
        let mut due = alloc::vec![0u32];
        let mut next = 0;
        while let Some(&i) = due.get(next) {
            next += 1;
            for child in children(i as usize) {
                if is_due(child) {
                    // (An index into the heap, which has at most one entry per slot.)
                    due.push(child as u32);
                }
            }
        }
        due.sort_unstable_by_key(|&i| self.heap[i as usize]);
        for i in &mut due {
            *i = self.heap[*i as usize].1;
        }
        due
    }

    /// Moves entry `i` up while it is earlier than its parent.
    fn up(&mut self, mut i: usize) {
        let entry = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.heap[parent] <= entry {
                break;
            }
            self.put(i, self.heap[parent]);
            i = parent;
        }
        self.put(i, entry);
    }

    /// Moves entry `i` down while a child is earlier.
    fn down(&mut self, mut i: usize) {
        let entry = self.heap[i];
        loop {
            let mut least = None;
            for child in children(i).take_while(|&c| c < self.heap.len()) {
                if least.is_none_or(|l: usize| self.heap[child] < self.heap[l]) {
                    least = Some(child);
                }
            }
            match least {
                Some(child) if self.heap[child] < entry => {
                    self.put(i, self.heap[child]);
                    i = child;
                }
                _ => break,
            }
        }
        self.put(i, entry);
    }

    /// Writes `entry` at `i` and keeps its slot's place.
    fn put(&mut self, i: usize, entry: (Instant, u32)) {
        self.heap[i] = entry;
        self.place[entry.1 as usize] = i as u32;
    }
}

/// Children a node has in the heap.
const ARITY: usize = 4;

/// The indices of node `i`'s children (those past the heap's end are not entries).
fn children(i: usize) -> core::ops::Range<usize> {
    ARITY * i + 1..ARITY * i + 1 + ARITY
}

#[cfg(test)]
mod tests {
    use alloc::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn at(us: u64) -> Instant {
        Instant::from_micros(us)
    }

    #[test]
    fn the_earliest_is_first_and_ties_go_by_slot() {
        let mut d = Deadlines::default();
        d.set(3, Some(at(50)));
        d.set(1, Some(at(50)));
        d.set(2, Some(at(70)));
        assert_eq!(d.first(), Some((at(50), 1)));
        d.set(1, Some(at(90)));
        assert_eq!(d.first(), Some((at(50), 3)));
        d.set(3, None);
        assert_eq!(d.first(), Some((at(70), 2)));
        assert_eq!((d.get(3), d.get(1), d.get(9)), (None, Some(at(90)), None));
        assert_eq!(d.due(at(89)), [2]);
        assert_eq!(d.due(at(90)), [2, 1]);
    }

    proptest! {
        /// Any sequence of deadlines filed and taken away gives the same answers as a
        /// `BTreeSet` of (deadline, slot), the index this one replaced.
        #[test]
        fn it_answers_as_an_ordered_set_does(
            ops in proptest::collection::vec((0u32..64, proptest::option::of(1u64..40)), 0..600),
            now in 1u64..40,
        ) {
            let mut d = Deadlines::default();
            let (mut set, mut of) = (BTreeSet::new(), [None; 64]);
            for (slot, t) in ops {
                let t = t.map(at);
                if let Some(old) = of[slot as usize] {
                    set.remove(&(old, slot));
                }
                if let Some(t) = t {
                    set.insert((t, slot));
                }
                of[slot as usize] = t;
                d.set(slot, t);
                prop_assert_eq!(d.first(), set.first().copied());
                prop_assert_eq!(d.get(slot), t);
            }
            let due: Vec<u32> = set.range(..=(at(now), u32::MAX)).map(|&(_, s)| s).collect();
            prop_assert_eq!(d.due(at(now)), due);
            prop_assert_eq!(d.heap.len(), set.len());
        }
    }
}
