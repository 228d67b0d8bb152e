//! What the endpoint lends the connection it calls (module `endpoint::loan` says when): an
//! event queue with room and the emptied stream boxes kept for new streams, both used a
//! moment ago by another call and so in cache, where the connection's own, among many
//! connections, are cold by its next message.
//!
//! Inputs: the connection's own queue and spare boxes, and the lent ones. Output: the two
//! swapped, so that a second swap gives each back. What the connection does is the same
//! with either: an event queue is swapped only when both are empty (an event never changes
//! hands, nor its place in order), and every spare box is a stream state emptied
//! (`StreamState::default()`, module `stream_table`), which any connection may fill. A
//! connection without its stream table's active part (none made, or trimmed) keeps its
//! spares where they are: there is nowhere to put lent ones.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem;

use super::StreamState;
use crate::event::Event;
use crate::thin_deque::ThinDeque;

/// An event queue and spare stream boxes, lent (module docs).
#[derive(Debug, Default)]
pub(crate) struct Lent {
    events: ThinDeque<Event>,
    #[allow(clippy::vec_box)]
    boxes: Vec<Box<StreamState>>,
}

impl Lent {
    /// Swaps these with a connection's `events` (if both queues are empty) and `spares` (if
    /// it has a place for them).
    #[inline]
    #[allow(clippy::vec_box)]
    pub(super) fn swap(&mut self, events: &mut ThinDeque<Event>, spares: Option<&mut Vec<Box<StreamState>>>) {
        if events.is_empty() && self.events.is_empty() {
            mem::swap(&mut self.events, events);
        }
        if let Some(spares) = spares {
            mem::swap(&mut self.boxes, spares);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectionHandle;

    fn event(n: u32) -> Event {
        Event::Writable {
            conn: ConnectionHandle::new(n, 0),
        }
    }

    #[test]
    fn a_swap_gives_the_lent_room_and_boxes_and_a_second_gives_them_back() {
        let mut lent = Lent::default();
        lent.events.push_back(event(0));
        lent.events.pop_front();
        lent.boxes.push(Box::default());
        let (mut events, mut spares) = (ThinDeque::default(), Vec::new());
        lent.swap(&mut events, Some(&mut spares));
        assert!(events.has_room() && spares.len() == 1);
        events.push_back(event(1));
        spares.clear();
        assert_eq!(events.pop_front(), Some(event(1)));
        lent.swap(&mut events, Some(&mut spares));
        assert!(!events.has_room() && spares.is_empty());
        assert!(lent.events.has_room() && lent.boxes.is_empty());
    }

    #[test]
    fn an_event_never_changes_hands_and_boxes_need_a_place() {
        let mut lent = Lent::default();
        lent.boxes.push(Box::default());
        let mut events = ThinDeque::default();
        events.push_back(event(1));
        lent.swap(&mut events, None);
        assert_eq!(
            events.pop_front(),
            Some(event(1)),
            "a queue holding an event stays"
        );
        assert!(events.is_empty() && lent.events.is_empty());
        assert_eq!(lent.boxes.len(), 1, "no place for the boxes: they stay lent's");
    }
}
