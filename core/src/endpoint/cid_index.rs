//! The endpoint's index of its connections by the connection id it chose for each (spec §3:
//! the destination id of every packet after the HELLO names the receiver's connection):
//! which slot holds the connection a datagram is for, asked for every datagram received. An
//! owned part of the endpoint: module `slots` files an id when it makes a connection and
//! takes it away when the connection ends; `Endpoint::receive` and the stateless answers
//! look ids up.
//!
//! Inputs: an id and its slot, or an id to find or forget. Outputs: the slot, or none; how
//! many ids are filed. Nothing iterates the index, so the order it keeps reaches no output.
//!
//! An open-addressing table (linear probing, emptied places closed up by shifting back, no
//! tombstones) of (id, slot) pairs, 12 bytes each, kept at most three-quarters full. The ids
//! are ours, drawn from the endpoint's secret generator, so a peer cannot choose ids that
//! collide; a datagram's id that is not filed costs a probe to the next empty place. The
//! `BTreeMap` this replaced descended four or five nodes of eleven keys for every datagram
//! at 10,000 to 100,000 connections, a cache miss or two each, the more the more
//! connections (adapters/bench/rounds.md, "After the fifty-second round: the connection
//! index"); a probe here reads a line or two at any count.

use alloc::vec::Vec;

use crate::wire::ConnectionId;

/// The fewest places a table that holds anything has.
const MIN_PLACES: usize = 16;

/// The endpoint's connections by their local connection id.
#[derive(Debug, Default)]
pub(super) struct CidIndex {
    /// `(id, slot)` at the place the id hashes to or the first free one after it (wrapping);
    /// `ConnectionId::UNSET` marks a free place (no connection has that id: `fresh_cid`).
    /// Empty, or a power of two long.
    places: Vec<(ConnectionId, u32)>,
    len: usize,
}

impl CidIndex {
    /// How many ids are filed.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The slot filed for `id`.
    pub(super) fn get(&self, id: &ConnectionId) -> Option<u32> {
        if self.len == 0 || *id == ConnectionId::UNSET {
            return None;
        }
        let mask = self.places.len() - 1;
        let mut i = self.home(id);
        loop {
            match self.places.get(i)? {
                (at, slot) if at == id => return Some(*slot),
                (at, _) if *at == ConnectionId::UNSET => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Whether `id` is filed.
    pub(super) fn contains_key(&self, id: &ConnectionId) -> bool {
        self.get(id).is_some()
    }

    /// Files `slot` for `id` (an id filed already gets the new slot). `UNSET` is never filed.
    pub(super) fn insert(&mut self, id: ConnectionId, slot: u32) {
        if id == ConnectionId::UNSET {
            return;
        }
        if (self.len + 1) * 4 > self.places.len() * 3 {
            self.resize((self.places.len() * 2).max(MIN_PLACES));
        }
        let mask = self.places.len() - 1;
        let mut i = self.home(&id);
        while let Some(place) = self.places.get_mut(i) {
            if place.0 == id {
                place.1 = slot;
                return;
            }
            if place.0 == ConnectionId::UNSET {
                *place = (id, slot);
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Forgets `id`, and gives back room once the table is an eighth full.
    pub(super) fn remove(&mut self, id: &ConnectionId) {
        if self.len == 0 || *id == ConnectionId::UNSET {
            return;
        }
        let mask = self.places.len() - 1;
        let mut hole = self.home(id);
        loop {
            match self.places.get(hole) {
                Some((at, _)) if at == id => break,
                Some((at, _)) if *at != ConnectionId::UNSET => hole = (hole + 1) & mask,
                _ => return,
            }
        }
        self.len -= 1;
        // Close the hole: each entry after it, up to the next free place, moves back into
        // it if the hole lies between the entry's home and its place (wrapping), so that
        // every entry stays reachable from its home without a gap.
        let mut next = (hole + 1) & mask;
        loop {
            let Some(&entry) = self.places.get(next) else {
                return;
            };
            if entry.0 == ConnectionId::UNSET {
                break;
            }
            let home = self.home(&entry.0);
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.put(hole, entry);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.put(hole, (ConnectionId::UNSET, 0));
        if self.places.len() > MIN_PLACES && self.len * 8 < self.places.len() {
            self.resize(self.places.len() / 2);
        }
    }

    /// Where `id` belongs: the top bits of its eight bytes times 2^64 / φ (Fibonacci hashing),
    /// so that every byte counts (the first may be the configured prefix, the same for all).
    fn home(&self, id: &ConnectionId) -> usize {
        let bits = self.places.len().trailing_zeros();
        match bits {
            0 => 0,
            _ => (id.to_u64().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize,
        }
    }

    fn put(&mut self, i: usize, entry: (ConnectionId, u32)) {
        if let Some(place) = self.places.get_mut(i) {
            *place = entry;
        }
    }

    /// Moves every entry into a table of `places` places (a power of two).
    fn resize(&mut self, places: usize) {
        let old = core::mem::replace(&mut self.places, alloc::vec![(ConnectionId::UNSET, 0); places]);
        self.len = 0;
        for (id, slot) in old {
            if id != ConnectionId::UNSET {
                self.insert(id, slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn id(n: u64) -> ConnectionId {
        ConnectionId::from_u64(n)
    }

    #[test]
    fn ids_are_found_replaced_and_forgotten() {
        let mut index = CidIndex::default();
        assert_eq!(index.get(&id(7)), None);
        index.insert(id(7), 1);
        index.insert(id(8), 2);
        index.insert(ConnectionId::UNSET, 3);
        assert_eq!(
            (index.get(&id(7)), index.get(&id(8)), index.len()),
            (Some(1), Some(2), 2)
        );
        assert_eq!(index.get(&ConnectionId::UNSET), None, "UNSET is never filed");
        index.insert(id(7), 4);
        assert_eq!((index.get(&id(7)), index.len()), (Some(4), 2));
        index.remove(&id(7));
        index.remove(&id(9));
        assert_eq!(
            (index.get(&id(7)), index.get(&id(8)), index.len()),
            (None, Some(2), 1)
        );
    }

    #[test]
    fn the_table_grows_with_its_ids_and_gives_room_back_as_they_go() {
        let mut index = CidIndex::default();
        for n in 1..=10_000 {
            index.insert(id(n), n as u32);
        }
        // At most three-quarters full: 10,000 ids in 16,384 places, 12 bytes each.
        assert_eq!(index.places.len(), 16_384);
        assert_eq!(core::mem::size_of::<(ConnectionId, u32)>(), 12);
        for n in 1..=9_990 {
            index.remove(&id(n));
        }
        assert!(
            index.places.len() <= 128,
            "{} places for 10 ids",
            index.places.len()
        );
        assert!((9_991..=10_000).all(|n| index.get(&id(n)) == Some(n as u32)));
    }

    proptest! {
        /// Any sequence of ids filed and forgotten answers as the `BTreeMap` this replaced.
        /// Ids from a small range collide and wrap, so the closing up of holes is exercised.
        #[test]
        fn it_answers_as_an_ordered_map_does(
            ops in proptest::collection::vec((0u64..48, proptest::option::of(0u32..8)), 0..400),
        ) {
            let (mut index, mut map) = (CidIndex::default(), BTreeMap::new());
            for (n, op) in ops {
                let key = id(n);
                match op {
                    Some(slot) if key != ConnectionId::UNSET => {
                        index.insert(key, slot);
                        map.insert(key, slot);
                    }
                    Some(_) => {}
                    None => {
                        index.remove(&key);
                        map.remove(&key);
                    }
                }
                prop_assert_eq!(index.len(), map.len());
                for probe in 0..48 {
                    prop_assert_eq!(index.get(&id(probe)), map.get(&id(probe)).copied());
                }
            }
        }
    }
}
