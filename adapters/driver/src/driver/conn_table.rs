//! Where the driver finds its record of a connection ([`Conn`]) from the core's handle:
//! a table indexed by the handle's slot, so that finding one costs a memory access or
//! two, whatever the connection count. Inputs are the driver's inserts, lookups and
//! removals; it decides nothing else.
//!
//! A B-tree held these before. Its search walked three or four nodes of 7 KiB (a record
//! is 640 bytes) per lookup, each likely a cache miss with 50,000 connections, and the
//! driver looks a connection up several times a message: about 8% of the CPU samples of
//! `weir-bench many-worker 50000`'s message phase (adapters/bench/rounds.md, issue 35's
//! fifty-sixth round).
//!
//! The core reuses a slot once its connection is gone, under a new generation
//! (`ConnectionHandle`), but the driver keeps an ended connection's record until the
//! application lets go of its handles. So a slot's new connection can arrive while the
//! old one's record is still wanted: the old record moves aside to `displaced` (a
//! B-tree, rarely more than empty), and lookups that miss the slot look there.
//! Iteration is in handle order, as the B-tree's was.
//!
//! The table keeps room up to the highest slot the core used (648 bytes a slot, so
//! 6.5 MB for the default `max_connections` of 10,000), after those connections end too:
//! the B-tree let go of a record's room with it. It is not shrunk: the core gives a freed
//! slot to the next connection, most recent first, so a table cut back to its highest
//! live slot could be grown again by the next connection, a copy of all of it each time a
//! connection comes and goes in a high slot.

use std::collections::BTreeMap;

use weir_core::ConnectionHandle;

use super::conn::Conn;

/// The records of the connections the driver knows, by core handle.
#[derive(Default)]
pub(super) struct ConnTable {
    /// By the handle's slot: the handle that holds it (with its generation) and its
    /// record.
    slots: Vec<Option<(ConnectionHandle, Conn)>>,
    /// Records of ended connections whose slot the core gave to a newer one.
    displaced: BTreeMap<ConnectionHandle, Conn>,
    /// Records held, in both: kept, not counted, because counting walks every slot (the
    /// figures' period asks it at each publication).
    len: usize,
}

impl ConnTable {
    /// How many records are held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether `h` has a record.
    pub(super) fn contains_key(&self, h: &ConnectionHandle) -> bool {
        self.get(h).is_some()
    }

    /// `h`'s record.
    pub(super) fn get(&self, h: &ConnectionHandle) -> Option<&Conn> {
        match self.slots.get(slot(h)) {
            Some(Some((held, c))) if held == h => Some(c),
            _ => self.displaced.get(h),
        }
    }

    /// `h`'s record, to change.
    pub(super) fn get_mut(&mut self, h: &ConnectionHandle) -> Option<&mut Conn> {
        match self.slots.get_mut(slot(h)) {
            Some(Some((held, c))) if held == h => Some(c),
            _ => self.displaced.get_mut(h),
        }
    }

    /// Holds `conn` as `h`'s record, in place of the one it had, if any (returned). A
    /// record of another generation in `h`'s slot moves aside.
    pub(super) fn insert(&mut self, h: ConnectionHandle, conn: Conn) -> Option<Conn> {
        let i = slot(&h);
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        match self.slots[i].replace((h, conn)) {
            Some((held, old)) if held == h => Some(old),
            Some((held, old)) => {
                self.displaced.insert(held, old);
                self.len += 1;
                None
            }
            None => {
                self.len += 1;
                None
            }
        }
    }

    /// Takes `h`'s record out.
    pub(super) fn remove(&mut self, h: &ConnectionHandle) -> Option<Conn> {
        let in_slot = self
            .slots
            .get_mut(slot(h))
            .filter(|entry| entry.as_ref().is_some_and(|(held, _)| held == h));
        let taken = match in_slot {
            Some(entry) => entry.take().map(|(_, c)| c),
            None => self.displaced.remove(h),
        };
        self.len -= usize::from(taken.is_some());
        taken
    }

    /// Every record with its handle, in handle order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ConnectionHandle, &Conn)> + '_ {
        let mut in_slots = self.slots.iter().flatten().map(|(h, c)| (*h, c)).peekable();
        let mut aside = self.displaced.iter().map(|(h, c)| (*h, c)).peekable();
        std::iter::from_fn(move || match (in_slots.peek(), aside.peek()) {
            (Some((a, _)), Some((b, _))) if b < a => aside.next(),
            (Some(_), _) => in_slots.next(),
            (None, _) => aside.next(),
        })
    }
}

/// The table's index of `h`.
fn slot(h: &ConnectionHandle) -> usize {
    h.index() as usize
}

#[cfg(test)]
mod tests {
    use super::super::tests::slot_reused;
    use super::*;

    /// A record that tells which it is.
    fn record(moves: u64) -> Conn {
        Conn {
            moves,
            ..Conn::default()
        }
    }

    #[test]
    fn a_record_is_found_by_its_handle_and_not_by_another_generation_of_its_slot() {
        let (old, new) = slot_reused();
        let mut t = ConnTable::default();
        assert!(t.insert(old, record(1)).is_none());
        assert_eq!(t.get(&old).map(|c| c.moves), Some(1));
        assert!(
            t.get(&new).is_none(),
            "the slot's next connection has no record yet"
        );
        assert!(t.remove(&new).is_none());
        assert_eq!(t.len(), 1);
        assert_eq!(t.insert(old, record(2)).map(|c| c.moves), Some(1), "replaced");
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(&old).map(|c| c.moves), Some(2));
        assert!(!t.contains_key(&old));
        assert_eq!(t.len(), 0);
    }

    /// What the module docs say a slot costs, here and in `waiting::Waiters`: a test to
    /// fail when it changes, so that the docs are changed with it.
    #[test]
    fn a_slot_costs_what_the_docs_say() {
        assert_eq!(size_of::<Option<(ConnectionHandle, Conn)>>(), 648);
        assert_eq!(
            size_of::<smallvec::SmallVec<[super::super::waiting::OnConn; 1]>>(),
            64
        );
    }

    #[test]
    fn a_record_whose_slot_is_reused_moves_aside_and_stays_found() {
        let (old, new) = slot_reused();
        let far = ConnectionHandle::from_index(5);
        let mut t = ConnTable::default();
        t.insert(far, record(5));
        t.insert(old, record(1));
        t.insert(new, record(2));
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&old).map(|c| c.moves), Some(1), "moved aside, still found");
        assert_eq!(t.get(&new).map(|c| c.moves), Some(2));
        t.get_mut(&old).expect("held").moves = 10;
        assert_eq!(t.get(&old).map(|c| c.moves), Some(10));
        let order: Vec<_> = t.iter().map(|(h, c)| (h, c.moves)).collect();
        assert_eq!(order, [(old, 10), (new, 2), (far, 5)], "in handle order");
        assert_eq!(t.remove(&old).map(|c| c.moves), Some(10));
        assert_eq!(
            t.get(&new).map(|c| c.moves),
            Some(2),
            "the slot's own record stays"
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(&new).map(|c| c.moves), Some(2));
        assert_eq!(t.iter().map(|(h, _)| h).collect::<Vec<_>>(), [far]);
        assert_eq!(t.len(), 1);
    }
}
