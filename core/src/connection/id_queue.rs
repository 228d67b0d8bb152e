//! Values by stream id in a queue in id order: what a connection's stream table keeps its
//! streams in while they need no state of their own (module `stream_table`): messages
//! waiting for their first turn (module `unsent`) and messages whose bytes have all gone,
//! waiting for their acknowledgements (module `in_flight`).
//!
//! Inputs: values pushed with rising ids; ids asked for. Outputs: a value found in place or
//! taken out.
//!
//! Why a queue in id order and not a table by id: a connection gives its ids out rising
//! (spec/protocol.md §4.12), its messages get their first turns in the order they were sent
//! and their acknowledgements in the order they went, so the id asked for is nearly always
//! the first: a push and a pop, where a second table by id would probe on insert and probe
//! and shift on removal. One taken out of order (a call naming it, a peer's STOP_SENDING, a
//! message that went behind a longer one) is found by binary search and leaves its place
//! empty until the places before it go, so no call or frame moves the others: a peer that
//! names many of them, middle first, costs a search each. An id not above every one held
//! is given back to the caller, which then keeps its value another way.

use crate::chunk_deque::ChunkDeque;
use crate::wire::StreamId;

/// Values in id order (module docs).
#[derive(Debug)]
pub(super) struct IdQueue<T> {
    /// Rising ids; a place whose value was taken out of order is empty until it is first.
    /// In chunks (module `crate::chunk_deque`): over a long path thousands wait here, and
    /// the room follows what is held, not the next power of two.
    queue: ChunkDeque<(StreamId, Option<T>)>,
    /// The values held (the places not empty).
    len: usize,
}

impl<T> Default for IdQueue<T> {
    fn default() -> Self {
        IdQueue {
            queue: ChunkDeque::default(),
            len: 0,
        }
    }
}

impl<T> IdQueue<T> {
    /// Whether `id` is above every id held, as [`push`](Self::push) needs.
    pub(super) fn accepts(&self, id: StreamId) -> bool {
        self.queue.back().is_none_or(|(last, _)| *last < id)
    }

    /// Adds `value` as `id`'s; given back if `id` is not above every id held.
    pub(super) fn push(&mut self, id: StreamId, value: T) -> Result<(), T> {
        if !self.accepts(id) {
            return Err(value);
        }
        self.queue.push_back((id, Some(value)));
        self.len += 1;
        Ok(())
    }

    /// The place holding `id`'s value, if held.
    fn place(&self, id: StreamId) -> Option<usize> {
        let (first, value) = self.queue.front()?;
        let at = if *first == id {
            0
        } else if *first < id {
            let at = self.queue.partition_point(|(k, _)| *k < id);
            self.queue.get(at).filter(|(k, _)| *k == id)?;
            at
        } else {
            return None;
        };
        (at > 0 || value.is_some()).then_some(at)
    }

    /// `id`'s value, to change in place, if held.
    pub(super) fn get_mut(&mut self, id: StreamId) -> Option<&mut T> {
        let at = self.place(id)?;
        self.queue.get_mut(at)?.1.as_mut()
    }

    /// Takes `id`'s value out, if held.
    pub(super) fn take(&mut self, id: StreamId) -> Option<T> {
        let at = self.place(id)?;
        let value = if at == 0 {
            self.queue.pop_front()?.1
        } else {
            self.queue.get_mut(at)?.1.take()
        }?;
        self.len -= 1;
        self.queue.pop_front_while(|(_, v)| v.is_none());
        if self.len == 0 {
            // Emptied: its room goes too (the chunks went as they emptied; the spare goes
            // now), but for one chunk, before the streams it held, now with a state each or
            // gone, make the connection's peak (4,096 places were kept until the trim, before
            // the queue was held in chunks). The chunk kept is what a connection with one
            // stream here at a time needs: with none kept, each one allocated the queue again
            // (in a fuzzing build, where every message passes here, a round trip cost two
            // allocations).
            self.queue.drop_spare();
        }
        Some(value)
    }

    /// How many values are held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values held, in id order.
    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.queue.iter().filter_map(|(_, v)| v.as_ref())
    }

    /// Lets go of the room beyond what is held (a trim, spec §8, Liveness).
    pub(super) fn trim(&mut self) {
        self.queue.shrink_to_fit();
    }

    /// The places the queue has room for.
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.queue.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> StreamId {
        StreamId(n * 4)
    }

    #[test]
    fn values_come_out_in_any_order_and_a_place_taken_early_is_passed_over() {
        let mut q = IdQueue::default();
        for n in 0..6 {
            assert!(q.push(id(n), n + 1).is_ok());
        }
        assert_eq!((q.len(), q.values().sum::<u64>()), (6, 21));
        // Out of order: found by search, its place left empty.
        assert_eq!(q.take(id(3)), Some(4));
        assert!(q.take(id(3)).is_none(), "taken once");
        assert!(q.get_mut(id(3)).is_none(), "taken once");
        assert_eq!((q.len(), q.queue.len()), (5, 6));
        // In order: the empty place goes once the ones before it have.
        for n in [0, 1, 2] {
            assert_eq!(q.take(id(n)), Some(n + 1));
        }
        assert_eq!((q.len(), q.queue.len()), (2, 2));
        // Ids not held, below, between and above: nothing.
        for n in [0, 3, 9] {
            assert!(q.take(id(n)).is_none());
            assert!(q.get_mut(id(n)).is_none());
        }
        assert!(q.take(StreamId(17)).is_none());
        // Changed in place, first or not.
        for n in [4, 5] {
            *q.get_mut(id(n)).unwrap() *= 10;
        }
        // The last one, out of order: its place waits for the one before it.
        assert_eq!(q.take(id(5)), Some(60));
        assert_eq!((q.len(), q.queue.len(), q.values().sum::<u64>()), (1, 2, 50));
        assert_eq!(q.take(id(4)), Some(50));
        assert_eq!((q.len(), q.queue.len()), (0, 0));
        assert!(q.is_empty());
    }

    /// A place emptied early, now first, holds nothing: neither found nor taken.
    #[test]
    fn an_empty_first_place_is_not_a_value() {
        let mut q = IdQueue::default();
        for n in 0..3 {
            assert!(q.push(id(n), n).is_ok());
        }
        assert_eq!(q.take(id(1)), Some(1));
        assert_eq!(q.take(id(0)), Some(0));
        // Place 1 went with place 0: id(2) is first.
        assert_eq!(q.queue.len(), 1);
        assert!(q.get_mut(id(1)).is_none() && q.take(id(1)).is_none());
        assert_eq!(q.take(id(2)), Some(2));
    }

    /// Emptied, a queue keeps room for a few places, not for the backlog it held.
    #[test]
    fn an_emptied_queue_keeps_room_for_a_few() {
        let mut q = IdQueue::default();
        for n in 0..1000 {
            assert!(q.push(id(n), n).is_ok());
        }
        for n in 0..1000 {
            assert!(q.take(id(n)).is_some());
        }
        assert!(q.room() <= crate::chunk_deque::CHUNK, "room for {}", q.room());
        // One value at a time then allocates nothing: the room stays as it is.
        let room = q.room();
        for n in 1000..1010 {
            assert!(q.push(id(n), n).is_ok());
            assert!(q.take(id(n)).is_some());
            assert_eq!(q.room(), room);
        }
    }

    #[test]
    fn an_id_not_above_those_held_is_given_back() {
        let mut q = IdQueue::default();
        assert!(q.push(id(2), 1).is_ok());
        assert_eq!(q.push(id(2), 2), Err(2));
        assert_eq!(q.push(id(1), 3), Err(3));
        assert_eq!(q.len(), 1);
    }
}
