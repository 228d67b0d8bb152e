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
//! Two kinds of home for an entry. Most deadlines a connection files are its timers' lengths
//! after now (the idle deadlines, the acknowledgement delay, the probe timeout), so across
//! connections each length makes a stream of deadlines that only grow: a connection touched
//! moves its entry later than every other. Those go at the end of a **run**, a vector kept
//! in (deadline, slot) order, and the earliest is a run's first entry; an entry that moves
//! and still fits between its neighbours is written where it is. `RUNS` runs take a few
//! lengths at once; an entry that fits at no run's end goes into a four-ary **min-heap**
//! (the first of `first`'s candidates), moved by a sift of at most log4(n) steps. Before the
//! runs, the heap held every entry, and each message of the scale bench (a round robin over
//! the connections, so the one touched always held the first deadline) sifted the first
//! entry to a leaf twice: the part of its cost that grew most with the connection count
//! (adapters/bench/rounds.md, "After the fifty-second round: the timer index's sift" and
//! "After the fifty-third round: deadlines that only grow, appended").
//!
//! An entry leaving a run is not taken out: its slot's place (a heap index, or a run and a
//! sequence number) moves, which makes it stale. Stale entries at a run's ends go at once;
//! those at the front are dropped by a copy of the rest once they are a quarter of the run,
//! and those in the middle by a sweep once they outnumber the live ones: from its first live
//! entry on, a run holds at most twice its live entries and `SLACK` more, and before it at
//! most a quarter of the whole (or `SLACK`). Each is checked after every step of the
//! property test below.

use alloc::vec::Vec;

use crate::time::Instant;

/// No place: the slot has no deadline filed.
const NONE: u32 = u32::MAX;

/// A place with this bit set is in a run: the run's number in the next bits, then the
/// entry's sequence number; without it, an index into the heap.
const IN_RUN: u32 = 1 << 31;

/// Runs beside the heap: enough for a few timer lengths at once (the idle deadlines, the
/// acknowledgement delay, the probe timeout), each a steady stream of deadlines that only
/// grow. Each costs `first` one more comparison.
const RUNS: usize = 2;

/// Bits of a run's sequence numbers (below the tag bit and the run's number). Tests use
/// few, so that their runs run out of numbers and renumber.
const SEQ_BITS: u32 = if cfg!(test) { 6 } else { 30 };

/// Sequence numbers are below this; a run renumbers its entries from 0 before reaching it.
/// (One below the bits' span, so that no place is `NONE`.)
const SEQ_LIMIT: u32 = (1 << SEQ_BITS) - 1;

const _: () = assert!(RUNS <= 1 << (31 - SEQ_BITS), "the run's number fits its bits");

/// Stale entries a run keeps in any case: its middle's are swept out once they outnumber
/// the live ones by more than this, and those before its first live entry are dropped only
/// past this many.
const SLACK: usize = 32;

/// Each slot's deadline, earliest first.
///
/// The indexing below cannot go out of bounds: a place, when not `NONE`, names its slot's
/// entry (a heap index, or a run and a sequence number within that run's span), `set`,
/// `put` and the runs' methods keep places and entries in step, and every entry's slot has
/// a place (`set` makes room for it first). Slots are the endpoint's own numbers, never a
/// peer's, and fewer than 2^31 (a heap index must not reach `IN_RUN`).
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    /// A min-heap by (deadline, slot): each entry no later than its children.
    heap: Vec<(Instant, u32)>,
    /// Deadlines filed in order: each run nondecreasing by (deadline, slot).
    runs: [Run; RUNS],
    /// For each slot, where its entry is (a heap index or `IN_RUN` with a run's number and
    /// a sequence number), or `NONE`.
    place: Vec<u32>,
}

/// Entries appended in (deadline, slot) order, so the first is the earliest and appending
/// costs nothing more. An entry whose slot moved since (its place no longer names it) is
/// stale: skipped, and let go when it reaches either end or stale ones outnumber the rest.
#[derive(Debug, Default)]
struct Run {
    /// Nondecreasing by (deadline, slot) from `head` on; those before `head` are stale,
    /// `head`'s and the last are live.
    entries: Vec<(Instant, u32)>,
    /// The first live entry's index (the length when none is).
    head: usize,
    /// The sequence number of `entries[0]` (an entry's is its index plus this): moved on
    /// when the stale entries before `head` are dropped, so that places need not move.
    base: u32,
    /// The entries that are live.
    live: usize,
}

impl Deadlines {
    /// Shows `show` where `slot`'s deadline is filed, which the next refile reads.
    pub(super) fn prefetch(&self, slot: u32, show: &mut impl FnMut(*const u8, usize)) {
        if let Some(p) = self.place.get(slot as usize) {
            show((p as *const u32).cast(), core::mem::size_of::<u32>());
        }
    }

    /// The deadline filed for `slot`.
    pub(super) fn get(&self, slot: u32) -> Option<Instant> {
        let place = *self.place.get(slot as usize)?;
        let entry = match where_is(place) {
            Place::None => return None,
            Place::Heap(i) => self.heap.get(i),
            Place::Run(r, seq) => self.runs[r].at(seq),
        };
        entry.map(|&(at, _)| at)
    }

    /// The earliest deadline and its slot (the smallest slot of those that share it).
    pub(super) fn first(&self) -> Option<(Instant, u32)> {
        let mut first = self.heap.first().copied();
        for run in &self.runs {
            if let Some(&front) = run.entries().first() {
                if first.is_none_or(|f| front < f) {
                    first = Some(front);
                }
            }
        }
        first
    }

    /// Files `at` as `slot`'s deadline, or takes its deadline away (`None`).
    pub(super) fn set(&mut self, slot: u32, at: Option<Instant>) {
        let s = slot as usize;
        if self.place.len() <= s {
            self.place.resize(s + 1, NONE);
        }
        let old = where_is(self.place[s]);
        // Moved within its run, where it still keeps the run's order: written in place.
        if let (Place::Run(r, seq), Some(at)) = (&old, at) {
            if self.runs[*r].replace(*seq, (at, slot)) {
                return;
            }
        }
        let run = at.and_then(|at| self.run_for((at, slot)));
        match (old, at) {
            (Place::None, None) => return,
            // Moved within the heap: one sift from where it is.
            (Place::Heap(i), Some(at)) if run.is_none() => {
                let old = self.heap[i].0;
                self.heap[i].0 = at;
                if at < old {
                    self.up(i);
                } else {
                    self.down(i);
                }
                return;
            }
            (Place::None, _) => {}
            (Place::Heap(i), _) => {
                self.place[s] = NONE;
                self.remove_from_heap(i);
            }
            (Place::Run(r, _), _) => {
                self.place[s] = NONE;
                self.runs[r].forget(&mut self.place, r);
            }
        }
        let Some(at) = at else { return };
        // The runs were chosen before the old entry went: its going leaves each run's last
        // entry no later, so the one chosen still takes it (a run emptied takes anything).
        match run {
            Some(r) => self.place[s] = self.runs[r].push((at, slot), &mut self.place, r),
            None => {
                let i = self.heap.len();
                self.heap.push((at, slot));
                self.place[s] = i as u32;
                self.up(i);
            }
        }
    }

    /// Writes into `due` (emptied first) the entries whose deadline is at or before `now`,
    /// ordered by (deadline, slot). The index is left as it is: each is filed again after
    /// its connection ran its timers. The list is the caller's, kept from one firing to the
    /// next: three vectors made at each firing were two allocations or more of every timer
    /// that fired (tests/tests/allocations.rs).
    pub(super) fn due(&self, now: Instant, due: &mut Vec<(Instant, u32)>) {
        due.clear();
        let is_due = |i: usize| self.heap.get(i).is_some_and(|&(at, _)| at <= now);
        // The heap's due entries, found breadth first: only a due entry's children can be
        // due, so the walk stops at every later one. An entry's heap index is its slot's
        // place, so the list itself is the walk's queue.
        if let Some(&root) = self.heap.first().filter(|_| is_due(0)) {
            due.push(root);
            let mut next = 0;
            while let Some(&(_, slot)) = due.get(next) {
                next += 1;
                // (Every heap entry's slot has its place: the type's invariant.)
                if let Some(&i) = self.place.get(slot as usize) {
                    due.extend(children(i as usize).filter(|&c| is_due(c)).map(|c| self.heap[c]));
                }
            }
        }
        for (r, run) in self.runs.iter().enumerate() {
            let live = |(k, &(_, slot)): &(usize, &(Instant, u32))| {
                self.place[slot as usize] == tag(r, run.seq(run.head + *k))
            };
            let run_due = run.entries().iter().take_while(|&&(at, _)| at <= now);
            due.extend(run_due.enumerate().filter(live).map(|(_, &e)| e));
        }
        due.sort_unstable();
    }

    /// The run that takes `entry` at its end: of those whose last entry is no later, the
    /// one whose last is latest (leaving the others for earlier deadlines); else an empty
    /// one; else none (the heap takes it).
    fn run_for(&self, entry: (Instant, u32)) -> Option<usize> {
        let fits = |r: &(usize, &Run)| r.1.has_room();
        let mut best: Option<(usize, Option<(Instant, u32)>)> = None;
        for (r, run) in self.runs.iter().enumerate().filter(fits) {
            let last = run.entries().last().copied();
            if last.is_some_and(|last| last > entry) {
                continue;
            }
            if best.is_none_or(|(_, b)| last > b) {
                best = Some((r, last));
            }
        }
        best.map(|(r, _)| r)
    }

    /// Takes the heap's entry `i` out (its slot's place already cleared).
    fn remove_from_heap(&mut self, i: usize) {
        let last = self.heap.len() - 1;
        self.heap.swap(i, last);
        self.heap.pop();
        if i < last {
            // The last entry took the removed one's place: it may belong above or below it.
            self.place[self.heap[i].1 as usize] = i as u32;
            self.up(i);
            self.down(i);
        }
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

impl Run {
    /// The entries from the first live one on.
    fn entries(&self) -> &[(Instant, u32)] {
        self.entries.get(self.head..).unwrap_or_default()
    }

    /// The sequence number of `entries[k]`.
    fn seq(&self, k: usize) -> u32 {
        self.base + k as u32
    }

    /// Whether an entry can be appended without its sequence number reaching the limit,
    /// once stale entries are swept (past half the limit live, the heap takes the rest).
    fn has_room(&self) -> bool {
        self.seq(self.entries.len()) < SEQ_LIMIT || self.live < SEQ_LIMIT as usize / 2
    }

    /// The entry numbered `seq`.
    fn at(&self, seq: u32) -> Option<&(Instant, u32)> {
        self.entries.get(seq.wrapping_sub(self.base) as usize)
    }

    /// Writes `entry` over the one numbered `seq` if it keeps the run's order between its
    /// neighbours (stale or not: the order is over all entries from `head`); says whether
    /// it did.
    fn replace(&mut self, seq: u32, entry: (Instant, u32)) -> bool {
        let k = seq.wrapping_sub(self.base) as usize;
        let after_previous =
            k == self.head || self.entries.get(k.wrapping_sub(1)).is_some_and(|&p| p <= entry);
        let before_next = self.entries.get(k + 1).is_none_or(|&n| entry <= n);
        match self.entries.get_mut(k) {
            Some(e) if after_previous && before_next => {
                *e = entry;
                true
            }
            _ => false,
        }
    }

    /// Appends `entry` (no earlier than the last) and returns its place; `run` is this run's
    /// number, `place` every slot's place (moved if the entries are renumbered first).
    fn push(&mut self, entry: (Instant, u32), place: &mut [u32], run: usize) -> u32 {
        if self.seq(self.entries.len()) >= SEQ_LIMIT {
            self.sweep(place, run);
        }
        self.entries.push(entry);
        self.live += 1;
        tag(run, self.seq(self.entries.len() - 1))
    }

    /// Counts one entry fewer live (its slot's place already moved): lets stale entries at
    /// either end go, drops those before `head` once they are a quarter of the entries (a
    /// copy of the rest, a few entries a deadline filed), and sweeps the stale ones out of
    /// the middle when they outnumber the live ones.
    fn forget(&mut self, place: &mut [u32], run: usize) {
        self.live -= 1;
        let is_live = |seq: u32, e: &(Instant, u32)| place[e.1 as usize] == tag(run, seq);
        while let Some(e) = self.entries.get(self.head) {
            if is_live(self.seq(self.head), e) {
                break;
            }
            self.head += 1;
        }
        while let Some(e) = self.entries.last().filter(|_| self.entries.len() > self.head) {
            if is_live(self.seq(self.entries.len() - 1), e) {
                break;
            }
            self.entries.pop();
        }
        if self.live == 0 {
            // Numbering starts again: nothing names this run's entries.
            self.entries.clear();
            (self.head, self.base) = (0, 0);
        } else if self.entries.len() - self.head > 2 * self.live + SLACK {
            self.sweep(place, run);
        } else if self.head > SLACK && self.head * 4 > self.entries.len() {
            self.entries.drain(..self.head);
            self.base += self.head as u32;
            self.head = 0;
        }
    }

    /// Keeps only the live entries, numbered from 0, and moves their places.
    fn sweep(&mut self, place: &mut [u32], run: usize) {
        let mut seq = self.base;
        self.entries.retain(|e| {
            let live = place[e.1 as usize] == tag(run, seq);
            seq += 1;
            live
        });
        (self.head, self.base) = (0, 0);
        for (k, e) in self.entries.iter().enumerate() {
            place[e.1 as usize] = tag(run, k as u32);
        }
    }
}

/// Where a place says a slot's entry is.
enum Place {
    None,
    Heap(usize),
    /// A run's number and the entry's sequence number in it.
    Run(usize, u32),
}

fn where_is(place: u32) -> Place {
    match place {
        NONE => Place::None,
        p if p & IN_RUN == 0 => Place::Heap(p as usize),
        p => Place::Run(((p & !IN_RUN) >> SEQ_BITS) as usize, p & ((1 << SEQ_BITS) - 1)),
    }
}

/// The place of run `run`'s entry numbered `seq`.
fn tag(run: usize, seq: u32) -> u32 {
    IN_RUN | (run as u32) << SEQ_BITS | seq
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

    /// The slots `d` has due at `now`, in order.
    fn due(d: &Deadlines, now: Instant) -> Vec<u32> {
        let mut list = Vec::new();
        d.due(now, &mut list);
        list.into_iter().map(|(_, slot)| slot).collect()
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
        assert_eq!(due(&d, at(89)), [2]);
        assert_eq!(due(&d, at(90)), [2, 1]);
    }

    /// Every place names its slot's entry, the heap is a heap, each run is ordered with live
    /// ends and counts its live entries, and stale entries are bounded.
    fn check(d: &Deadlines) {
        for (i, &(_, slot)) in d.heap.iter().enumerate() {
            assert_eq!(d.place[slot as usize], i as u32);
            if i > 0 {
                assert!(d.heap[(i - 1) / ARITY] <= d.heap[i]);
            }
        }
        for (r, run) in d.runs.iter().enumerate() {
            let live = |k: usize, e: &(Instant, u32)| d.place[e.1 as usize] == tag(r, run.seq(k));
            let (all, kept) = (&run.entries, run.entries());
            assert!(kept.iter().zip(kept.iter().skip(1)).all(|(a, b)| a <= b));
            assert!(all.iter().enumerate().take(run.head).all(|(k, e)| !live(k, e)));
            let n = all.iter().enumerate().filter(|(k, e)| live(*k, e)).count();
            assert_eq!(n, run.live);
            if let (Some(f), Some(b)) = (run.entries().first(), run.entries().last()) {
                assert!(live(run.head, f) && live(all.len() - 1, b));
            }
            assert!(kept.len() <= 2 * run.live + SLACK + 1);
            assert!(run.head <= SLACK || run.head * 4 <= all.len());
            assert!(run.seq(all.len()) <= SEQ_LIMIT);
        }
        let filed = d.place.iter().filter(|&&p| p != NONE).count();
        assert_eq!(filed, d.heap.len() + d.runs.iter().map(|r| r.live).sum::<usize>());
    }

    /// The case the runs are for: many connections, each touched in turn, each filing a
    /// short deadline (a probe timeout) and then a long one (the receipt's), as the scale
    /// bench's messages do. Neither ever goes into the heap: each run only grows at its end
    /// and is taken from its front.
    #[test]
    fn deadlines_that_only_grow_are_appended_not_sifted() {
        let mut d = Deadlines::default();
        for t in 0..2_000u64 {
            let slot = (t % 20) as u32;
            d.set(slot, Some(at(t * 10 + 1_000)));
            assert_eq!(d.first(), Some((at(t * 10 + 1_000), slot)));
            d.set(slot, Some(at(t * 10 + 250_000)));
            assert!(d.heap.is_empty(), "filed in the heap at {t}");
            check(&d);
        }
        assert_eq!(d.runs.iter().map(|r| r.entries().len()).sum::<usize>(), 20);
    }

    proptest! {
        /// Any sequence of deadlines filed and taken away gives the same answers as a
        /// `BTreeSet` of (deadline, slot), the index this one replaced, and keeps the
        /// index's invariants (`check`).
        #[test]
        fn it_answers_as_an_ordered_set_does(
            ops in proptest::collection::vec(
                (0u32..64, proptest::option::of(1u64..40), 0u64..3),
                0..600,
            ),
            now in 1u64..40,
        ) {
            let mut d = Deadlines::default();
            let (mut set, mut of) = (BTreeSet::new(), [None; 64]);
            // Time moves on now and then, so that many deadlines arrive in order (the runs'
            // case) and many do not (the heap's).
            let mut clock = 0;
            for (slot, t, step) in ops {
                clock += step;
                let t = t.map(|t| at(clock + t));
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
                check(&d);
            }
            let now = at(clock + now);
            let due: Vec<u32> = set.range(..=(now, u32::MAX)).map(|&(_, s)| s).collect();
            prop_assert_eq!(self::due(&d, now), due);
        }
    }
}
