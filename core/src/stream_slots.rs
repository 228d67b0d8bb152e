//! Values by stream id, in a table indexed by the id itself: what a connection's
//! [`StreamTable`](crate::connection) keeps its streams' boxes in, and what its receipts
//! (module `delivery`) keep the streams owed, held and awaited in.
//!
//! Inputs: ids to insert, look up and remove. Outputs: the values. Stream ids run up from 0,
//! one side's even and the other's odd (spec/protocol.md §4.12), and the streams open at a
//! time are mostly a window of recent ids: so an id's low bits are its place in a table of a
//! power of two slots, and the ids of one window land in slots of their own. Ids that share
//! a place (a stream left open while many after it came and went) take the next free slot
//! (open addressing, linear probing); a removal moves the entries after it back (backward
//! shift), so a lookup stops at the first empty slot and no tombstone is ever left. The
//! table stays at most half full, doubling when it would pass that; it shrinks only at the
//! connection's trim (spec §8, Liveness), to fit what it still holds, or is let go if it
//! holds nothing: its size follows the most entries held at once since the last trim, not
//! the most ever held. Not as entries go: a connection whose messages come a burst at a time
//! (up to the peer's stream limit, then none) halved and doubled its table with every burst
//! (784 moves of the whole table in 10,000 messages of 1 KiB), and one whose messages come
//! one at a time (a request, then its answer) would make and free the table for every one.
//!
//! Why not a B-tree: with a stream per message, every message inserted and removed a key,
//! and its lookups went through nodes spread over the heap; this table costs one probe for
//! most lookups. Iteration order is the slots' order, which the same inserts and removals
//! always give alike (nothing here is random): deterministic, but not the ids' order.

use alloc::vec::Vec;

use crate::wire::StreamId;

/// The fewest slots a table that holds anything has.
const MIN_SLOTS: usize = 8;

/// Values by stream id (module docs).
#[derive(Debug)]
pub(crate) struct StreamSlots<V> {
    /// A power of two of them, or none.
    slots: Vec<Option<(StreamId, V)>>,
    len: usize,
}

impl<V> Default for StreamSlots<V> {
    fn default() -> Self {
        StreamSlots {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<V> StreamSlots<V> {
    /// Shows `show` the slots, if there are any and they are few (at most 8 lines): an
    /// input may look any of them up (`connection::prefetch`).
    pub(crate) fn prefetch(&self, show: &mut impl FnMut(*const u8, usize)) {
        let slots = self.slots.as_slice();
        if (1..=512).contains(&core::mem::size_of_val(slots)) {
            show(slots.as_ptr().cast(), core::mem::size_of_val(slots));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn home(&self, id: StreamId) -> usize {
        // The low bits, truncated on a 32-bit target: a place, not the id. Not the index
        // alone (the id without its side's bit): a table of one side's ids then leaves every
        // other slot empty, which ends a removal's backward shift at the next slot, where a
        // window of consecutive indices packed in a run made every removal walk the whole
        // run (in-memory messages took 24% more instructions).
        id.0 as usize & self.mask()
    }

    /// The slot holding `id`.
    fn find(&self, id: StreamId) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(id);
        // Ends: the table is at most half full, so an empty slot comes.
        loop {
            match &self.slots[i] {
                None => return None,
                Some((k, _)) if *k == id => return Some(i),
                Some(_) => i = (i + 1) & self.mask(),
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, id: StreamId) -> Option<&V> {
        let i = self.find(id)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, id: StreamId) -> Option<&mut V> {
        let i = self.find(id)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Where `id`'s value is, for [`at_mut`](Self::at_mut), until the table next changes: a
    /// caller that inserts on a miss and then returns the value looks up once on a hit, where
    /// `get_mut` and a second `get_mut` would look up twice.
    pub(crate) fn position(&self, id: StreamId) -> Option<usize> {
        self.find(id)
    }

    /// The value at `at`, a [`position`](Self::position) taken since the table last changed.
    pub(crate) fn at_mut(&mut self, at: usize) -> Option<&mut V> {
        self.slots.get_mut(at)?.as_mut().map(|(_, v)| v)
    }

    /// Puts `value` in as `id`'s; what `id` held before is returned.
    pub(crate) fn insert(&mut self, id: StreamId, value: V) -> Option<V> {
        if let Some(i) = self.find(id) {
            return self.slots[i].replace((id, value)).map(|(_, v)| v);
        }
        self.add(id, value);
        None
    }

    /// Puts `value` in as `id`'s unless `id` holds one already (which stays); whether it
    /// did. One lookup, where `contains` then `insert` made two.
    pub(crate) fn insert_new(&mut self, id: StreamId, value: V) -> bool {
        if self.find(id).is_some() {
            return false;
        }
        self.add(id, value);
        true
    }

    /// Puts `value` in as `id`'s, which the caller found absent (a [`position`](Self::position)
    /// of `None` since the table last changed); where it is now, for
    /// [`at_mut`](Self::at_mut).
    pub(crate) fn insert_absent(&mut self, id: StreamId, value: V) -> usize {
        self.add(id, value)
    }

    /// Adds `id`, which the table does not hold, growing it first if it would pass half full;
    /// where it is now.
    fn add(&mut self, id: StreamId, value: V) -> usize {
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize((self.slots.len() * 2).max(MIN_SLOTS));
        }
        self.len += 1;
        self.place(id, value)
    }

    /// Puts `id` in the first free slot from its place (the table has one); which.
    fn place(&mut self, id: StreamId, value: V) -> usize {
        let mut i = self.home(id);
        while self.slots[i].is_some() {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = Some((id, value));
        i
    }

    /// Takes `id`'s value out, moving back the entries after it that its slot kept from
    /// their places.
    pub(crate) fn remove(&mut self, id: StreamId) -> Option<V> {
        let mut hole = self.find(id)?;
        let (_, taken) = self.slots[hole].take()?;
        self.len -= 1;
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some((k, _)) = &self.slots[j] else { break };
            // The entry at j may fill the hole if its place is not in (hole, j], cyclically:
            // a lookup for it starts at its place and must pass no empty slot.
            let home = self.home(*k);
            let reachable_without_hole = if hole < j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !reachable_without_hole {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        Some(taken)
    }

    /// Lets the table go if it holds nothing, or shrinks it to fit what it holds (a trim:
    /// an idle connection holds no table, a quiet one the least that fits its entries).
    pub(crate) fn trim(&mut self) {
        if self.len == 0 {
            self.slots = Vec::new();
        } else {
            let fit = (self.len * 2).next_power_of_two().max(MIN_SLOTS);
            if fit < self.slots.len() {
                self.resize(fit);
            }
        }
    }

    /// Moves every entry into a table of `n` slots (a power of two, more than twice the
    /// entries), in slot order.
    fn resize(&mut self, n: usize) {
        let old = core::mem::replace(&mut self.slots, (0..n).map(|_| None).collect());
        for (id, value) in old.into_iter().flatten() {
            self.place(id, value);
        }
    }

    /// Every entry, in no useful order (module docs).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (StreamId, &V)> {
        self.slots.iter().flatten().map(|(id, v)| (*id, v))
    }

    /// Every entry, to change, in no useful order (module docs).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (StreamId, &mut V)> {
        self.slots.iter_mut().flatten().map(|(id, v)| (*id, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    #[test]
    fn insert_new_keeps_what_an_id_holds() {
        let mut table = StreamSlots::default();
        assert!(table.insert_new(StreamId(5), 'a'));
        assert!(!table.insert_new(StreamId(5), 'b'));
        assert_eq!((table.get(StreamId(5)), table.len()), (Some(&'a'), 1));
    }

    #[test]
    fn the_table_agrees_with_a_map_through_windows_stragglers_and_shrinking() {
        let mut table = StreamSlots::default();
        let mut model = BTreeMap::new();
        // A fixed pseudo-random walk: a sliding window of ids, some left open for long.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = 0u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0..=4 => {
                    let id = StreamId(next);
                    next += 1 + (x >> 8) % 2;
                    assert_eq!(table.insert(id, step).is_some(), model.insert(id, step).is_some());
                }
                5..=8 => {
                    // Mostly the oldest ids go, now and then one far back stays.
                    let id = if x % 7 == 0 {
                        model.keys().nth((x >> 16) as usize % model.len().max(1)).copied()
                    } else {
                        model.keys().nth(usize::from(model.len() > 40)).copied()
                    };
                    if let Some(id) = id {
                        assert_eq!(table.remove(id), model.remove(&id));
                    }
                }
                _ => {
                    let id = StreamId(x % (next + 1));
                    assert_eq!(table.get(id).copied(), model.get(&id).copied());
                }
            }
            assert_eq!(table.len(), model.len());
        }
        let mut all: Vec<_> = table.iter().map(|(id, s)| (id, *s)).collect();
        all.sort_unstable();
        assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        // Down to a few streams, it keeps its size until a trim shrinks it to fit them;
        // emptied, a trim lets it go.
        let ids: Vec<_> = table.iter().map(|(id, _)| id).collect();
        let most = table.slots.len();
        for &id in &ids[..ids.len() - 3] {
            table.remove(id);
        }
        assert_eq!((table.len(), table.slots.len()), (3, most));
        table.trim();
        assert_eq!(table.slots.len(), MIN_SLOTS);
        for &id in &ids[ids.len() - 3..] {
            assert!(table.get(id).is_some(), "{id:?} kept through the trim");
            table.remove(id);
        }
        assert_eq!((table.len(), table.slots.len()), (0, MIN_SLOTS));
        table.trim();
        assert_eq!(table.slots.len(), 0);
    }
}
