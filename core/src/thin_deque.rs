//! A queue that costs one pointer while it has no room: for the queues every connection
//! has and an idle one leaves empty (a connection's events; spec §8, Liveness: a
//! trim lets their room go).
//!
//! A `VecDeque` costs 32 bytes even when empty and unallocated; this is 8, and the room is
//! made by the first push after a trim (two allocations: the box and the buffer, once per
//! active period, not per item). Order and contents are exactly a `VecDeque`'s.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

/// A `VecDeque` made on first push and let go by [`ThinDeque::trim`] once empty.
#[derive(Debug)]
// The box is the point: it makes the empty queue one pointer instead of a `VecDeque`'s 32
// bytes, for an extra allocation only while the queue is in use.
#[allow(clippy::box_collection)]
pub(crate) struct ThinDeque<T>(Option<Box<VecDeque<T>>>);

impl<T> Default for ThinDeque<T> {
    fn default() -> Self {
        ThinDeque(None)
    }
}

impl<T> ThinDeque<T> {
    pub(crate) fn push_back(&mut self, item: T) {
        self.0.get_or_insert_with(Box::default).push_back(item);
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.0.as_mut()?.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len())
    }

    /// How many items it has room for without growing (0 without room; for tests).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.capacity())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets the room go if nothing is queued (a trim); the next push makes it again.
    pub(crate) fn trim(&mut self) {
        if self.is_empty() {
            self.0 = None;
        }
    }

    /// Whether room is held (for tests of what a trim frees).
    #[cfg(test)]
    pub(crate) fn has_room(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_one_pointer_and_a_trim_lets_only_an_empty_queue_go() {
        assert_eq!(core::mem::size_of::<ThinDeque<u64>>(), 8);
        let mut q = ThinDeque::default();
        assert!(!q.has_room() && q.pop_front().is_none());
        q.push_back(1u64);
        q.push_back(2);
        q.trim();
        assert!(q.has_room(), "a trim kept what was queued");
        assert_eq!(q.pop_front(), Some(1));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_front(), Some(2));
        q.trim();
        assert!(!q.has_room() && q.is_empty());
    }
}
