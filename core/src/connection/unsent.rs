//! Messages sent behind a backlog and not yet given their first turn, kept as their bytes
//! until then (module `stream_table`, which makes each one's state at its first turn or at
//! the first call that names it).
//!
//! Inputs: messages as the application sends them, each with its stream id; ids asked for
//! when a message's state is to be made. Outputs: a message's bytes and header, taken out.
//!
//! Why a queue in id order and not a table by id: a connection gives its ids out rising
//! (spec/protocol.md §4.12), every message joins as it is sent, and the send round robin
//! gives messages their first turns in the order they were sent, so the message taken is
//! nearly always the first: a push and a pop, where a second table by id would probe on
//! insert and probe and shift on removal. One taken out of order (a call naming it, a
//! peer's STOP_SENDING) is found by binary search and leaves its place empty until the
//! places before it go, so no call or frame moves the others: a peer that names many of
//! them, middle first, costs a search each.

use alloc::collections::VecDeque;

use bytes::Bytes;

use crate::event::StreamHeader;
use crate::stream::send::SendStream;
use crate::wire::StreamId;

use super::stream_state::{self, Half, KeptHeader, Rare, StreamState};

/// A message the application sent that has not had its first turn yet: its bytes and its
/// header's label and digest, 40 bytes, where the state made of it at its first turn is
/// 384.
#[derive(Debug)]
pub(super) struct Unsent {
    data: Bytes,
    rare: Rare,
}

impl Unsent {
    /// Message `data` announcing `header` (whose total length, if any, is the data's: the
    /// caller checked).
    pub(super) fn new(header: StreamHeader, data: Bytes) -> Self {
        Unsent {
            data,
            rare: stream_state::split(header).1,
        }
    }

    /// The message's length, all of it held in the send buffer.
    pub(super) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Makes `state`, empty (`StreamState::default()`), the message's: its bytes written and
    /// the stream finished, with the peer's credit for a new stream, `max_data`; its header
    /// announcing its length; queued, as it waited. The state opening a stream, writing it
    /// and finishing it makes.
    pub(super) fn fill(self, state: &mut StreamState, max_data: u64) {
        let len = self.len();
        let mut send = SendStream::new(max_data);
        send.write(self.data);
        send.finish();
        state.half = Half::Send(send);
        state.header = KeptHeader::message(len, self.rare);
        state.queued = true;
    }
}

/// Places an emptied queue keeps room for (`UnsentQueue::take`).
const ROOM_KEPT: usize = 16;

/// The unsent messages of one connection, in id order (module docs).
#[derive(Debug, Default)]
pub(super) struct UnsentQueue {
    /// Rising ids; a place whose message was taken out of order is empty until it is first.
    queue: VecDeque<(StreamId, Option<Unsent>)>,
    /// The messages held (the places not empty).
    len: usize,
}

impl UnsentQueue {
    /// Adds message `id`; given back if `id` is not above every id held (ids are given out
    /// rising, so this does not happen; a caller that got it back makes the message's
    /// state at once instead).
    pub(super) fn push(&mut self, id: StreamId, message: Unsent) -> Result<(), Unsent> {
        if self.queue.back().is_some_and(|(last, _)| *last >= id) {
            return Err(message);
        }
        self.queue.push_back((id, Some(message)));
        self.len += 1;
        Ok(())
    }

    /// Takes message `id` out, if held.
    pub(super) fn take(&mut self, id: StreamId) -> Option<Unsent> {
        let first = self.queue.front()?.0;
        let message = if first == id {
            // Its first turn, in order: nearly every message.
            self.queue.pop_front()?.1
        } else if first < id {
            let at = self.queue.binary_search_by_key(&id, |(k, _)| *k).ok()?;
            self.queue.get_mut(at)?.1.take()
        } else {
            None
        }?;
        self.len -= 1;
        while self.queue.front().is_some_and(|(_, m)| m.is_none()) {
            self.queue.pop_front();
        }
        if self.len == 0 {
            // The backlog is gone: its room goes too, but for a few places, before the
            // messages it held, now in flight with a state each, make the connection's peak
            // (4,096 places, 192 KiB, were kept until the trim). The few kept are what a
            // connection sending a message at a time needs: with none kept, each of its
            // messages allocated the queue again (in a fuzzing build, where every message
            // waits here, a round trip cost two allocations).
            self.queue.shrink_to(ROOM_KEPT);
        }
        Some(message)
    }

    /// How many messages are held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Their bytes, all held in the send buffer.
    pub(super) fn bytes(&self) -> u64 {
        self.queue
            .iter()
            .filter_map(|(_, m)| m.as_ref())
            .map(Unsent::len)
            .sum()
    }

    /// Lets go of the room beyond what is held (a trim, spec §8, Liveness).
    pub(super) fn trim(&mut self) {
        self.queue.shrink_to_fit();
    }

    /// The places the queue has room for.
    #[cfg(test)]
    fn room(&self) -> usize {
        self.queue.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Unsent {
        Unsent::new(StreamHeader::default(), Bytes::from(alloc::vec![7u8; len]))
    }

    fn id(n: u64) -> StreamId {
        StreamId(n * 4)
    }

    #[test]
    fn messages_come_out_in_any_order_and_a_place_taken_early_is_passed_over() {
        let mut q = UnsentQueue::default();
        for n in 0..6 {
            assert!(q.push(id(n), message(n as usize + 1)).is_ok());
        }
        assert_eq!((q.len(), q.bytes()), (6, 21));
        // Out of order: found by search, its place left empty.
        assert_eq!(q.take(id(3)).map(|m| m.len()), Some(4));
        assert!(q.take(id(3)).is_none(), "taken once");
        assert_eq!((q.len(), q.queue.len()), (5, 6));
        // In order: the empty place goes once the ones before it have.
        for n in [0, 1, 2] {
            assert_eq!(q.take(id(n)).map(|m| m.len()), Some(n + 1));
        }
        assert_eq!((q.len(), q.queue.len()), (2, 2));
        // Ids not held, below, between and above: nothing.
        for n in [0, 3, 9] {
            assert!(q.take(id(n)).is_none());
        }
        assert!(q.take(StreamId(17)).is_none());
        // The last one, out of order: its place waits for the one before it.
        assert_eq!(q.take(id(5)).map(|m| m.len()), Some(6));
        assert_eq!((q.len(), q.queue.len(), q.bytes()), (1, 2, 5));
        assert_eq!(q.take(id(4)).map(|m| m.len()), Some(5));
        assert_eq!((q.len(), q.queue.len()), (0, 0));
    }

    /// Emptied, a queue keeps room for a few places, not for the backlog it held.
    #[test]
    fn an_emptied_queue_keeps_room_for_a_few() {
        let mut q = UnsentQueue::default();
        for n in 0..1000 {
            assert!(q.push(id(n), message(1)).is_ok());
        }
        for n in 0..1000 {
            assert!(q.take(id(n)).is_some());
        }
        assert!(q.room() <= ROOM_KEPT, "room for {}", q.room());
        // One message at a time then allocates nothing: the room stays as it is.
        let room = q.room();
        for n in 1000..1010 {
            assert!(q.push(id(n), message(1)).is_ok());
            assert!(q.take(id(n)).is_some());
            assert_eq!(q.room(), room);
        }
    }

    #[test]
    fn an_id_not_above_those_held_is_given_back() {
        let mut q = UnsentQueue::default();
        assert!(q.push(id(2), message(1)).is_ok());
        assert!(q.push(id(2), message(1)).is_err());
        assert!(q.push(id(1), message(1)).is_err());
        assert_eq!(q.len(), 1);
    }
}
