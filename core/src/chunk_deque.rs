//! A queue held in chunks of [`CHUNK`] places: what a connection keeps its streams that
//! wait without their state in (module `connection::id_queue`: messages behind a backlog,
//! and messages in flight), where a `VecDeque` was.
//!
//! Inputs: values pushed at the back, popped at the front, looked up by index. Outputs: the
//! values, and the first index a monotone predicate fails at.
//!
//! Why: over a long path a fast sender holds thousands of these at once, and a `VecDeque`
//! grows by doubling, so its room was up to twice what it held: in weir-bench's
//! `messages-far` the queue of messages in flight held at most 2,793 in room for 4,096, and
//! a ring's whole room is touched as its window slides around it (adapters/bench/rounds.md,
//! issue 35's thirty-sixth round). In chunks, the room is what is held rounded up to a
//! chunk, and an emptied chunk kept for the next. A chunk is as many places as an emptied
//! queue kept before (16), so a connection with a stream or two here holds one chunk, as it
//! held that room, and allocates nothing once it has it. A long queue allocates a chunk
//! for at most every 16 values pushed (a `VecDeque` allocated only as it grew): one of
//! 1,536 bytes for the messages in flight, against the several allocations each message
//! makes anyway.
//!
//! Not the packets in flight (module `recovery::sent_packets`), though they gain as much
//! room: every packet pushes, searches and pops them, and in chunks a round trip took 1.2%
//! more of the core's instructions (`transfer_count aes256gcm round-trips=2000`, callgrind,
//! one codegen unit: 74.26 M against 75.03 M), against none for messages here.
//!
//! Every chunk has room for exactly [`CHUNK`] places; all but the first and the last are
//! full, and none is empty but a lone one or a *spare*: a chunk emptied at the front, put
//! back at the end when the last is full, where the next push fills it (when the last is
//! not full, it is let go: there is no place to keep it in 32 bytes without a rule for
//! pushing past it). The first chunk loses places at its
//! front, the last gains them at its back, so index `i` is in the first chunk if below its
//! length, and otherwise at a place the arithmetic gives. The queue is one `VecDeque` of
//! chunks inline, 32 bytes, as the `VecDeque` it replaces: a connection's size is memory
//! too (tests/tests/scale.rs).

use alloc::collections::VecDeque;

/// Places a chunk has room for.
pub(crate) const CHUNK: usize = 16;

/// Values in order, in chunks (module docs).
#[derive(Debug)]
pub(crate) struct ChunkDeque<T> {
    chunks: VecDeque<VecDeque<T>>,
}

impl<T> Default for ChunkDeque<T> {
    fn default() -> Self {
        ChunkDeque {
            chunks: VecDeque::new(),
        }
    }
}

impl<T> ChunkDeque<T> {
    /// How many values are held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match (self.chunks.front(), self.chunks.len()) {
            (None, _) => 0,
            (Some(first), 1) => first.len(),
            // The first, the full ones, the last (a spare, if last, is empty and the one
            // before it full: counted among the full).
            (Some(first), n) => first.len() + (n - 2) * CHUNK + self.chunks.back().map_or(0, VecDeque::len),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        // A first chunk emptied is let go unless lone.
        self.chunks.front().is_none_or(VecDeque::is_empty)
    }

    /// Adds `value` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, value: T) {
        match self.chunks.back_mut() {
            // The last chunk, or a spare after a full one.
            Some(last) if last.len() < CHUNK => last.push_back(value),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_back(value);
                self.chunks.push_back(chunk);
            }
        }
    }

    /// Takes the value at the front out.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        let value = first.pop_front()?;
        if first.is_empty() && self.chunks.len() > 1 {
            self.let_go_of_first();
        }
        Some(value)
    }

    /// The first chunk, emptied, is not the lone one: kept as the spare if the last is full
    /// (the next push needs a chunk); otherwise let go.
    fn let_go_of_first(&mut self) {
        if let Some(emptied) = self.chunks.pop_front() {
            if self.chunks.back().is_some_and(|last| last.len() == CHUNK) {
                self.chunks.push_back(emptied);
            }
        }
    }

    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.chunks.front()?.front()
    }

    #[inline]
    pub(crate) fn back(&self) -> Option<&T> {
        // The last chunk, or the one before a spare.
        self.chunks.iter().rev().take(2).find_map(VecDeque::back)
    }

    /// The value at index `i` from the front.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let first = self.chunks.front()?;
        match i.checked_sub(first.len()) {
            None => first.get(i),
            Some(j) => self.chunks.get(1 + j / CHUNK)?.get(j % CHUNK),
        }
    }

    /// The value at index `i` from the front, to change.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let first = self.chunks.front()?.len();
        match i.checked_sub(first) {
            None => self.chunks.front_mut()?.get_mut(i),
            Some(j) => self.chunks.get_mut(1 + j / CHUNK)?.get_mut(j % CHUNK),
        }
    }

    /// The index of the first value `pred` is false for, `pred` being true for every value
    /// before it and false for every one after (as `VecDeque::partition_point`).
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        if self.chunks.len() <= 1 {
            // A lone chunk (a connection with a packet or two in flight): one search.
            return self.chunks.front().map_or(0, |c| c.partition_point(pred));
        }
        // The first chunk whose last value fails (a spare has none: it fails): every value
        // of the chunks before it passes.
        let k = self.chunks.partition_point(|c| c.back().is_some_and(&mut pred));
        let Some(chunk) = self.chunks.get(k) else {
            return self.len();
        };
        let before = match k {
            0 => 0,
            // The first chunk, then chunks 1 to k - 1: full, as chunk k comes after them.
            k => self.chunks.front().map_or(0, VecDeque::len) + (k - 1) * CHUNK,
        };
        before + chunk.partition_point(pred)
    }

    /// Pops the values at the front while `pred` holds for them.
    #[inline]
    pub(crate) fn pop_front_while(&mut self, mut pred: impl FnMut(&T) -> bool) {
        while let Some(first) = self.chunks.front_mut() {
            if !first.front().is_some_and(&mut pred) {
                return;
            }
            first.pop_front();
            if first.is_empty() && self.chunks.len() > 1 {
                self.let_go_of_first();
            }
        }
    }

    /// The values, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Lets the spare chunk go, and the lone chunk too if nothing is held: what is left is
    /// the room what is held needs, rounded up to a chunk.
    pub(crate) fn shrink_to_fit(&mut self) {
        if self.is_empty() {
            self.chunks = VecDeque::new();
        } else {
            self.drop_spare();
            self.chunks.shrink_to_fit();
        }
    }

    /// Lets the spare chunk go, keeping a lone chunk: room for [`CHUNK`] places if nothing
    /// is held.
    pub(crate) fn drop_spare(&mut self) {
        if self.chunks.len() > 1 && self.chunks.back().is_some_and(VecDeque::is_empty) {
            self.chunks.pop_back();
        }
    }

    /// The places there is room for, the spare chunk's included.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Against a `VecDeque` through pushes and pops in runs of every length, with each
    /// index, the predicate's point at every value and the order checked after each run;
    /// the room is what is held rounded up to a chunk, and a spare.
    #[test]
    fn agrees_with_a_vec_deque_and_holds_room_for_what_it_holds() {
        let mut q = ChunkDeque::default();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let run = (x % 40) as usize;
            if x % 3 == 0 {
                for _ in 0..run {
                    assert_eq!(q.pop_front(), model.pop_front());
                }
            } else {
                for _ in 0..run {
                    q.push_back(next);
                    model.push_back(next);
                    next += 1;
                }
            }
            assert_eq!((q.len(), q.is_empty()), (model.len(), model.is_empty()));
            assert_eq!((q.front(), q.back()), (model.front(), model.back()));
            for i in 0..=model.len() {
                assert_eq!(q.get(i), model.get(i), "index {i}");
            }
            for v in model.iter().copied().chain([next]) {
                assert_eq!(q.partition_point(|&w| w < v), model.partition_point(|&w| w < v));
            }
            assert!(q.iter().eq(model.iter()));
            let held = model.len().div_ceil(CHUNK).max(1);
            assert!(
                q.capacity() <= (held + 2) * CHUNK,
                "{} for {}",
                q.capacity(),
                model.len()
            );
        }
        if let Some(v) = q.get_mut(0) {
            *v += 1000;
        }
        if let Some(v) = model.get_mut(0) {
            *v += 1000;
        }
        assert_eq!(
            q.iter().copied().collect::<Vec<_>>(),
            model.into_iter().collect::<Vec<_>>()
        );
    }

    /// A queue that holds one value at a time keeps its one chunk and allocates no other.
    #[test]
    fn one_at_a_time_stays_in_one_chunk() {
        let mut q = ChunkDeque::default();
        for n in 0..100 {
            q.push_back(n);
            assert_eq!(q.pop_front(), Some(n));
        }
        assert_eq!((q.capacity(), q.chunks.len()), (CHUNK, 1));
        q.shrink_to_fit();
        assert_eq!(q.capacity(), 0);
    }
}
