//! A connection's streams as a table it owns (spec/protocol.md §8, Streams and credit;
//! Priorities): each stream's state in a box of its own, boxes of ended streams kept for
//! the next ones, and the send round robin, one queue per priority class.
//!
//! Inputs: streams opened (by either side) and ended, messages sent, and streams that have
//! something to send, each put back at the end of its class's queue for a new turn or at
//! the front for a turn that goes on (the connection's transmit path decides which).
//! Outputs: a stream's state by id, and the next stream whose turn it is in a class.
//! It owns its fields and calls nothing of the connection's: what a stream's state means
//! is the rest of the connection's to decide.
//!
//! Why boxes: a stream's state is several hundred bytes, and the table (module
//! `crate::stream_slots`) moves its entries about on insert and removal (a B-tree of the states
//! themselves once made that a tenth of the per-message cost). Why spare boxes: a
//! connection carrying a message per stream then allocates no box per message; what is
//! kept is the allocation, emptied, until the connection has been quiet for a second or
//! more (a trim, spec §8, Liveness). As many are kept as the peer may keep streams open
//! at once (the caller's bound, `Config::max_concurrent_streams`): a burst of messages
//! opens up to that many streams, and with fewer spares every burst past them allocated
//! its boxes again (with 8 kept, 3.3% of the instructions of 10,000 messages of 1 KiB).
//! The spares and the open streams together never outnumber the most streams open at once
//! since the last trim, so keeping them raises no peak.
//!
//! Why a backlog of messages waits unsent: a message the application sends is a stream
//! written and finished at once, but an application may send far more than its path lets
//! go, up to the peer's stream count (4,096 by default): 1.5 MiB of states for one
//! connection, beside the bytes, which are the application's. So a message sent behind
//! [`MADE_AT_ONCE`] streams waiting in its class waits as its bytes and its header's rare
//! part (module `unsent`: 48 bytes with its id, in a queue of their own, against a
//! 384-byte state in a box), and its state is made when it first has a turn
//! (`next_turn`) or a call names it (`get_mut`): the same state it would have had from the
//! start, as a message's state changes only once its bytes go. Its id is in its class's
//! send queue from the start, as a state's would be. A backlog of 4,096 then holds 96 KiB
//! of states and 48 bytes a message past them (adapters/bench/rounds.md, issue 35's
//! thirty-third round, which also says why the long path's heap peak moved little: what
//! it held there was mostly messages in flight).
//!
//! Why a stream in flight waits without its state: a sender keeps each message's stream
//! until every byte of it is acknowledged, a round trip and more, so over a long path a
//! fast sender holds thousands at once. Past [`STATES_BEFORE_IN_FLIGHT`] states, a stream
//! of ours whose bytes and end have all gone once, with nothing lost, waits for its
//! acknowledgements as its unacknowledged bytes, header, class and credit (module
//! `in_flight`: 96 bytes with its id, in a queue of its own in id order, module
//! `id_queue`), and its box goes back to the spares for the next stream's turn. An
//! acknowledgement in order is taken there (`ack_in_flight`); anything else (a loss, an
//! acknowledgement out of order, a call or a peer's frame naming it) makes its state again
//! first (`get_mut`), the state it would have had all along (issue 35's thirty-fourth
//! round).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::id_queue::IdQueue;
use super::in_flight::InFlight;
use super::unsent::Unsent;
use super::StreamState;
use crate::event::Priority;
use crate::stream::send::SentWholeAck;
use crate::stream_slots::StreamSlots;
use crate::wire::StreamId;

/// How many streams may wait in a class before a message sent waits unsent (module docs):
/// the default stream count's start (`Config::initial_concurrent_streams`), so that a
/// backlog the first count allows, as on a short path, pays nothing for the detour, which
/// costs a message about 200 instructions (its bytes queued, taken back and written into
/// the state; `transfer_count aes256gcm`, callgrind, with every message waiting unsent:
/// 10,000 messages +0.22%, round trips +0.79%); a connection's waiting states then hold at
/// most 96 KiB.
///
/// None in a fuzzing build (feature `fuzzing`, which the workspace's tests run with too):
/// there every message takes the detour, so the fuzz targets and the test suite, whose
/// messages seldom wait behind 256 others, run it. What a connection sends is the same
/// either way (the whole suite, its recorded traces and fuzz findings included, passes
/// with either).
#[cfg(not(feature = "fuzzing"))]
const MADE_AT_ONCE: usize = 256;
#[cfg(feature = "fuzzing")]
const MADE_AT_ONCE: usize = 0;

/// How many states the table holds before a stream of ours whose bytes have all gone waits
/// for their acknowledgements without its state (module docs): again the default stream
/// count's start, so that a connection with no more streams than that in flight, as on a
/// short path or one message at a time, never pays for the move (out and back, with its
/// checks, 76 instructions a message: `transfer_count aes256gcm messages`, callgrind, one
/// codegen unit; adapters/bench/rounds.md, issue 35's thirty-fourth round). None in a
/// fuzzing build, for the reasons [`MADE_AT_ONCE`] gives.
#[cfg(not(feature = "fuzzing"))]
const STATES_BEFORE_IN_FLIGHT: usize = 256;
#[cfg(feature = "fuzzing")]
const STATES_BEFORE_IN_FLIGHT: usize = 0;

/// The streams of one connection.
#[derive(Debug, Default)]
pub(super) struct StreamTable {
    streams: StreamSlots<Box<StreamState>>,
    /// What only an active connection needs: boxed, made by the first stream ended or
    /// queued, let go by a trim once nothing is queued (an idle connection pays a pointer).
    active: Option<Box<Active>>,
}

/// Where in its class's queue a stream waits ([`StreamTable::queue_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// After every stream waiting: a new turn.
    Back,
    /// Before them: the turn it had goes on.
    Front,
}

#[derive(Debug, Default)]
struct Active {
    #[allow(clippy::vec_box)]
    spare: Vec<Box<StreamState>>,
    /// Streams with something to send, one round-robin queue per priority class; a stream
    /// is in at most one, at most once (`StreamState::queued`; an unsent message always
    /// is, in its class's).
    send_queues: [VecDeque<StreamId>; Priority::COUNT],
    /// Messages waiting for their first turn, their states not made yet (module docs).
    unsent: IdQueue<Unsent>,
    /// Streams of ours waiting only for their acknowledgements, their states let go
    /// (module docs).
    in_flight: IdQueue<InFlight>,
    /// The peer's credit for a new stream, which an unsent message's state starts with:
    /// the one its transport parameters gave, which does not change.
    message_credit: u64,
}

impl StreamTable {
    /// Shows `show` the table's memory a stream opened, sent or read next uses: the slots
    /// (if few), what an active connection keeps, and the spare box the next new stream's
    /// state is made in (module `prefetch`).
    pub(super) fn prefetch(&self, show: &mut impl FnMut(*const u8, usize)) {
        self.streams.prefetch(show);
        if let Some(a) = self.active.as_deref() {
            show((a as *const Active).cast(), core::mem::size_of_val(a));
            if let Some(b) = a.spare.last() {
                show((&**b as *const StreamState).cast(), core::mem::size_of_val(&**b));
            }
        }
    }

    /// Stream `id`'s state, if made: `None` for an unsent message or a stream in flight
    /// (module docs), whose states nothing but the send path, the acknowledgements and the
    /// application's calls ask for.
    pub(super) fn get(&self, id: &StreamId) -> Option<&StreamState> {
        self.streams.get(*id).map(|b| &**b)
    }

    /// Stream `id`'s state, made first if it is an unsent message's or a stream's in flight
    /// (module docs).
    pub(super) fn get_mut(&mut self, id: &StreamId) -> Option<&mut StreamState> {
        let at = match self.streams.position(*id) {
            Some(at) => at,
            None => self.make_state(*id)?,
        };
        self.streams.at_mut(at).map(|b| &mut **b)
    }

    /// Makes the state of unsent message `id` or of stream `id` in flight, in a spare box
    /// if there is one; where it is now. `None` if `id` is neither.
    #[cold]
    fn make_state(&mut self, id: StreamId) -> Option<usize> {
        let active = self.active.as_deref_mut()?;
        if let Some(unsent) = active.unsent.take(id) {
            return Some(self.file_message(id, unsent));
        }
        let in_flight = active.in_flight.take(id)?;
        let mut boxed = active.spare.pop().unwrap_or_default();
        in_flight.restore(&mut boxed);
        Some(self.streams.insert_absent(id, boxed))
    }

    /// Files message `id`, which the table does not hold, as a state made of `message` in a
    /// spare box if there is one; where it is now.
    fn file_message(&mut self, id: StreamId, message: Unsent) -> usize {
        let active = self.active.get_or_insert_with(Box::default);
        let mut boxed = active.spare.pop().unwrap_or_default();
        message.fill(&mut boxed, active.message_credit);
        self.streams.insert_absent(id, boxed)
    }

    /// How many streams: states, unsent messages and streams in flight.
    pub(super) fn len(&self) -> usize {
        self.streams.len()
            + self
                .active
                .as_deref()
                .map_or(0, |a| a.unsent.len() + a.in_flight.len())
    }

    /// The bytes of the unsent messages and the streams in flight not yet acknowledged
    /// (module docs), all held in the send buffer.
    pub(super) fn stateless_bytes(&self) -> u64 {
        self.active.as_deref().map_or(0, |a| {
            a.unsent.values().map(Unsent::len).sum::<u64>()
                + a.in_flight.values().map(InFlight::unacked).sum::<u64>()
        })
    }

    /// Stream `id`, which has nothing left to send, waits for its acknowledgements without
    /// its state if it may (module docs: more than [`STATES_BEFORE_IN_FLIGHT`] states held,
    /// and nothing but its acknowledgements left to it, [`InFlight::take`]); its box goes
    /// to the spares, if fewer than `spares` are kept.
    #[inline]
    pub(super) fn keep_in_flight(&mut self, id: StreamId, spares: usize) {
        // Always past the bound in a fuzzing build, where it is 0 (its docs). Checked here,
        // inline: a connection with few streams, one message at a time, goes no further.
        #[allow(clippy::absurd_extreme_comparisons)]
        let few = self.streams.len() <= STATES_BEFORE_IN_FLIGHT;
        if !few {
            self.move_in_flight(id, spares);
        }
    }

    fn move_in_flight(&mut self, id: StreamId, spares: usize) {
        // Behind a stream already waiting there (a longer message's last byte went after a
        // later one's), it keeps its state.
        if self.active.as_deref().is_some_and(|a| !a.in_flight.accepts(id)) {
            return;
        }
        let Some(in_flight) = self.streams.get_mut(id).and_then(|s| InFlight::take(s)) else {
            return;
        };
        let active = self.active.get_or_insert_with(Box::default);
        if active.in_flight.push(id, in_flight).is_ok() {
            self.remove(id, spares);
        }
    }

    /// Stream `id`'s frame carrying `range` (and FIN if `fin`) was acknowledged, taken in
    /// place if the stream is in flight and it can be: the bytes it released, and whether
    /// that was the last of them. `None` if the stream is not in flight, or if only its
    /// state can take it (the caller then asks for the state, which is made again).
    #[inline]
    pub(super) fn ack_in_flight(
        &mut self,
        id: StreamId,
        range: core::ops::Range<u64>,
        fin: bool,
    ) -> Option<(u64, bool)> {
        let waiting = &mut self.active.as_deref_mut()?.in_flight;
        if waiting.is_empty() {
            return None;
        }
        let in_flight = waiting.get_mut(id)?;
        match in_flight.on_acked(range, fin) {
            SentWholeAck::Taken { released, done } => Some((released, done)),
            SentWholeAck::Repair => None,
        }
    }

    /// Every stream's state, in no useful order (module `crate::stream_slots`): for
    /// order-free folds. Not the unsent messages', which are not made (module docs).
    pub(super) fn values(&self) -> impl Iterator<Item = &StreamState> {
        self.streams.iter().map(|(_, s)| &**s)
    }

    /// Every stream's state with its id, in no useful order (module `crate::stream_slots`);
    /// not the unsent messages'.
    pub(super) fn iter(&self) -> impl Iterator<Item = (StreamId, &StreamState)> {
        self.streams.iter().map(|(id, s)| (id, &**s))
    }

    /// Every stream's state with its id, to change, in no useful order (module
    /// `crate::stream_slots`): for changes that do not depend on one another. Not the unsent
    /// messages', which are not made (module docs).
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (StreamId, &mut StreamState)> {
        self.streams.iter_mut().map(|(id, s)| (id, &mut **s))
    }

    /// A new stream, in a spare box if there is one.
    #[cfg(test)]
    pub(super) fn insert(&mut self, id: StreamId, state: StreamState) {
        self.insert_with(id, |s| *s = state);
    }

    /// A new stream, in a spare box if there is one, its state made in the box by `make`,
    /// which is given it empty (`StreamState::default()`): a spare box is one already emptied, so
    /// nothing is built on the stack and moved in (a state is about 900 bytes, and that move
    /// was 2% of a one-message stream's cost).
    pub(super) fn insert_with(&mut self, id: StreamId, make: impl FnOnce(&mut StreamState)) {
        let mut boxed = self
            .active
            .as_mut()
            .and_then(|a| a.spare.pop())
            .unwrap_or_default();
        make(&mut boxed);
        self.streams.insert(id, boxed);
    }

    /// A message sent, stream `id`, waiting unsent in its class's send queue (the class a
    /// new stream has) until its first turn (module docs); `message_credit` is the peer's
    /// credit for a new stream.
    pub(super) fn insert_unsent(&mut self, id: StreamId, message: Unsent, message_credit: u64) {
        let active = self.active.get_or_insert_with(Box::default);
        active.message_credit = message_credit;
        let class = Priority::default() as usize;
        // Never true in a fuzzing build, where the bound is 0 (its docs).
        #[allow(clippy::absurd_extreme_comparisons)]
        let made_at_once = active.send_queues[class].len() < MADE_AT_ONCE;
        active.send_queues[class].push_back(id);
        let waits = if made_at_once {
            Err(message)
        } else {
            active.unsent.push(id, message)
        };
        if let Err(message) = waits {
            // Made now: few wait ahead of it, or its id is not above those held (module
            // `unsent`: this does not happen).
            self.file_message(id, message);
        }
    }

    /// Forgets stream `id`, keeping its box, emptied (it holds no bytes), as a spare if
    /// fewer than `spares` are kept (module docs).
    pub(super) fn remove(&mut self, id: StreamId, spares: usize) {
        match self.streams.remove(id) {
            Some(mut b) => {
                let spare = &mut self.active.get_or_insert_with(Box::default).spare;
                if spare.len() < spares {
                    *b = StreamState::default();
                    spare.push(b);
                }
            }
            None => {
                // A stream in flight acknowledged whole goes from here. Callers make an
                // unsent message's state before they end it; one named here goes all the
                // same (its id left in a send queue is passed over there).
                if let Some(a) = self.active.as_deref_mut() {
                    if a.in_flight.take(id).is_none() {
                        a.unsent.take(id);
                    }
                }
            }
        }
    }

    /// Lets go of the spare boxes, of the table if no stream is left, and of the queues if
    /// all are empty (spec §8, Liveness: a trim): a connection quiet long enough keeps no
    /// memory for the next stream.
    pub(super) fn trim(&mut self) {
        self.streams.trim();
        // An unsent message is queued: with nothing queued, none is left.
        let in_flight = self.active.as_deref().is_some_and(|a| !a.in_flight.is_empty());
        if self.nothing_queued() && !in_flight {
            self.active = None;
        } else if let Some(a) = self.active.as_mut() {
            a.spare = Vec::new();
            a.unsent.trim();
            a.in_flight.trim();
        }
    }

    /// Puts stream `id` at the back of its class's queue if it has something to send and is
    /// not queued already.
    pub(super) fn queue(&mut self, id: StreamId) {
        self.queue_at(id, Place::Back);
    }

    /// Puts stream `id` in its class's queue at `place`, if it has something to send and is
    /// not queued already: at the front, its turn goes on before any other stream's.
    pub(super) fn queue_at(&mut self, id: StreamId, place: Place) {
        if let Some(state) = self.streams.get_mut(id) {
            if !state.queued && state.half.send().is_some_and(|s| s.has_data()) {
                state.queued = true;
                let active = self.active.get_or_insert_with(Box::default);
                let queue = &mut active.send_queues[state.priority as usize];
                match place {
                    Place::Back => queue.push_back(id),
                    Place::Front => queue.push_front(id),
                }
            }
        }
    }

    /// Puts stream `id` in `priority`'s class. One waiting in its old class's queue waits at
    /// the back of the new one's: left where it was, it had one more turn in the old class
    /// first (a message sent, then made urgent, went after every stream queued before it).
    pub(super) fn set_priority(&mut self, id: StreamId, priority: Priority) {
        // An unsent message's state is made first: it then has a priority of its own.
        let Some(state) = self.get_mut(&id) else {
            return;
        };
        let old = core::mem::replace(&mut state.priority, priority);
        let queued = state.queued;
        if queued && old != priority {
            if let Some(a) = self.active.as_deref_mut() {
                a.send_queues[old as usize].retain(|&q| q != id);
                a.send_queues[priority as usize].push_back(id);
            }
        }
    }

    /// No stream has anything to send.
    pub(super) fn nothing_queued(&self) -> bool {
        self.active
            .as_deref()
            .is_none_or(|a| a.send_queues.iter().all(VecDeque::is_empty))
    }

    /// How many streams wait in `class`: the turns one round gives.
    pub(super) fn waiting(&self, class: usize) -> usize {
        self.active.as_deref().map_or(0, |a| a.send_queues[class].len())
    }

    /// The stream whose turn it is in `class`, taken off the queue (`queue` puts it back
    /// at the end if it still has something to send after its turn); an unsent message's
    /// state is made now.
    pub(super) fn next_turn(&mut self, class: usize) -> Option<StreamId> {
        let id = self.active.as_deref_mut()?.send_queues[class].pop_front()?;
        if let Some(state) = self.get_mut(&id) {
            state.queued = false;
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Half;
    use crate::event::StreamHeader;
    use crate::stream::send::SendStream;
    use bytes::Bytes;

    fn sending(priority: Priority) -> StreamState {
        let mut send = SendStream::new(u64::MAX);
        send.write(Bytes::from_static(b"x"));
        StreamState {
            half: Half::Send(send),
            priority,
            ..StreamState::default()
        }
    }

    #[test]
    fn ended_streams_leave_at_most_the_bound_s_boxes_for_the_next() {
        const BOUND: usize = 12;
        let mut t = StreamTable::default();
        for i in 0..20 {
            t.insert(StreamId(i), StreamState::default());
        }
        for i in 0..20 {
            t.remove(StreamId(i), BOUND);
        }
        let spares = |t: &StreamTable| t.active.as_ref().map_or(0, |a| a.spare.len());
        assert_eq!((t.len(), spares(&t)), (0, BOUND));
        // The next streams take spare boxes instead of allocating, up to the bound.
        let kept: Vec<*const StreamState> = t
            .active
            .as_ref()
            .unwrap()
            .spare
            .iter()
            .map(|b| &**b as *const StreamState)
            .collect();
        for i in 0..BOUND as u64 {
            t.insert(StreamId(40 + i), StreamState::default());
            let at = t.get(&StreamId(40 + i)).map(|s| s as *const StreamState);
            assert!(at.is_some_and(|p| kept.contains(&p)), "stream {i} in a spare box");
        }
        assert_eq!(spares(&t), 0);
        // A trim lets the spare boxes go with the rest.
        t.trim();
        assert!(t.active.is_none());
    }

    /// The box the next new stream's state is made in is among what a prefetch shows.
    #[test]
    fn a_prefetch_shows_the_box_the_next_stream_is_made_in() {
        let mut t = StreamTable::default();
        for i in 0..3 {
            t.insert(StreamId(4 * i), StreamState::default());
        }
        for i in 0..3 {
            t.remove(StreamId(4 * i), 8);
        }
        let mut ranges = Vec::new();
        t.prefetch(&mut |start, len| ranges.push((start as usize, len)));
        t.insert(StreamId(40), StreamState::default());
        let at = t.get(&StreamId(40)).map(|s| s as *const StreamState as usize);
        let made = (at.unwrap(), core::mem::size_of::<StreamState>());
        assert!(ranges.contains(&made), "{made:x?} not in {ranges:x?}");
    }

    #[test]
    fn a_stream_waits_once_in_its_class_and_classes_are_apart() {
        let mut t = StreamTable::default();
        t.insert(StreamId(0), sending(Priority::Low));
        t.insert(StreamId(4), sending(Priority::High));
        t.insert(StreamId(8), StreamState::default());
        for id in [0, 4, 0, 8] {
            t.queue(StreamId(id));
        }
        // Stream 8 has nothing to send; stream 0 is queued once.
        let (high, low) = (Priority::High as usize, Priority::Low as usize);
        assert_eq!((t.waiting(high), t.waiting(low)), (1, 1));
        assert_eq!(t.next_turn(low), Some(StreamId(0)));
        assert_eq!(t.next_turn(low), None);
        // After its turn it may be queued again.
        t.queue(StreamId(0));
        assert_eq!(t.next_turn(low), Some(StreamId(0)));
        assert_eq!(t.next_turn(high), Some(StreamId(4)));
        assert!(t.nothing_queued());
    }

    #[test]
    fn a_waiting_stream_moved_to_another_class_waits_there() {
        let mut t = StreamTable::default();
        for id in [0, 4] {
            t.insert(StreamId(id), sending(Priority::Normal));
            t.queue(StreamId(id));
        }
        t.set_priority(StreamId(4), Priority::High);
        let (high, normal) = (Priority::High as usize, Priority::Normal as usize);
        assert_eq!((t.waiting(high), t.waiting(normal)), (1, 1));
        assert_eq!(t.next_turn(high), Some(StreamId(4)));
        assert_eq!(t.next_turn(normal), Some(StreamId(0)));
        // One not waiting only changes class.
        t.set_priority(StreamId(0), Priority::Low);
        assert!(t.nothing_queued());
        assert_eq!(t.get(&StreamId(0)).map(|s| s.priority), Some(Priority::Low));
    }

    /// Past a backlog of `MADE_AT_ONCE` streams waiting, a message sent waits unsent: no
    /// state, its bytes counted; its state is made at its turn, or when a call names it, the
    /// state a message made at once has.
    #[test]
    fn a_message_past_the_backlog_waits_unsent_until_its_turn_or_a_call() {
        let mut t = StreamTable::default();
        let n = MADE_AT_ONCE as u64 + 3;
        let message = |i: u64| {
            Unsent::new(
                StreamHeader::default(),
                Bytes::from(alloc::vec![1u8; i as usize + 1]),
            )
        };
        for i in 0..n {
            t.insert_unsent(StreamId(4 * i), message(i), 5000);
        }
        let class = Priority::default() as usize;
        assert_eq!(
            (t.len(), t.streams.len(), t.waiting(class)),
            (n as usize, MADE_AT_ONCE, n as usize)
        );
        let last = (MADE_AT_ONCE as u64..n).map(|i| i + 1).sum::<u64>();
        assert_eq!(t.stateless_bytes(), last);
        assert!(t.get(&StreamId(4 * (n - 1))).is_none(), "not made");
        // A call names the last: made, and still waiting for its turn.
        let state = t.get_mut(&StreamId(4 * (n - 1))).unwrap();
        assert!(state.queued);
        assert_eq!(state.header.total_len(), Some(n));
        let send = state.half.send().unwrap();
        assert_eq!(
            (send.write_end(), send.unacked(), send.is_finished()),
            (n, n, true)
        );
        // The turns go in order, each made as it comes.
        for i in 0..n {
            assert_eq!(t.next_turn(class), Some(StreamId(4 * i)));
            let state = t.get(&StreamId(4 * i)).unwrap();
            assert!(!state.queued);
            assert_eq!(state.half.send().map(SendStream::write_end), Some(i + 1));
        }
        assert_eq!(
            (t.len(), t.streams.len(), t.stateless_bytes()),
            (n as usize, n as usize, 0)
        );
    }

    /// An unsent message removed goes with its bytes; its id, left in its queue, is passed
    /// over at its turn (no state is made of it).
    #[test]
    fn an_unsent_message_removed_leaves_nothing() {
        let mut t = StreamTable::default();
        let n = MADE_AT_ONCE as u64 + 1;
        for i in 0..n {
            t.insert_unsent(
                StreamId(4 * i),
                Unsent::new(StreamHeader::default(), Bytes::from_static(b"ab")),
                5000,
            );
        }
        let last = StreamId(4 * (n - 1));
        t.remove(last, 8);
        assert_eq!((t.len(), t.stateless_bytes()), (MADE_AT_ONCE, 0));
        let class = Priority::default() as usize;
        for _ in 0..n {
            let id = t.next_turn(class).unwrap();
            assert_eq!(t.get(&id).is_some(), id != last);
        }
        assert!(t.nothing_queued());
    }

    /// A stream of `len` bytes, finished and sent whole: the frames it went in.
    fn sent(t: &mut StreamTable, id: StreamId, len: usize) -> Vec<(core::ops::Range<u64>, bool)> {
        let mut send = SendStream::new(u64::MAX);
        send.write(Bytes::from(alloc::vec![5u8; len]));
        send.finish();
        let mut frames = Vec::new();
        while let Some(c) = send.next_chunk(1200, u64::MAX) {
            frames.push((c.offset..c.offset + c.data.len() as u64, c.fin));
        }
        t.insert(
            id,
            StreamState {
                half: Half::Send(send),
                header: super::super::stream_state::KeptHeader::message(len as u64, None),
                priority: Priority::High,
                ..StreamState::default()
            },
        );
        frames
    }

    /// Past `STATES_BEFORE_IN_FLIGHT` states, a stream whose bytes have all gone waits
    /// without its state: still counted, its bytes still held; acknowledged in order where it
    /// waits, until done; made again, as it was, for anything else; kept through a trim.
    #[test]
    fn a_stream_sent_whole_past_the_states_kept_waits_in_flight() {
        let mut t = StreamTable::default();
        let kept = STATES_BEFORE_IN_FLIGHT as u64;
        for i in 0..=kept {
            sent(&mut t, StreamId(4 * i), 10);
        }
        let (a, b) = (StreamId(4 * kept + 4), StreamId(4 * kept + 8));
        let frames = sent(&mut t, a, 3000);
        sent(&mut t, b, 3000);
        let states = t.streams.len();
        t.keep_in_flight(a, 64);
        assert_eq!((t.streams.len(), t.len()), (states - 1, states));
        assert!(t.get(&a).is_none(), "its state let go");
        assert_eq!(t.stateless_bytes(), 3000);
        // Its box went to the spares.
        assert_eq!(t.active.as_ref().map(|a| a.spare.len()), Some(1));
        // In order: taken where it waits.
        assert_eq!(
            t.ack_in_flight(a, frames[0].0.clone(), frames[0].1),
            Some((1200, false))
        );
        assert_eq!(t.stateless_bytes(), 1800);
        // Out of order: not taken; the state is made again, as it would have been.
        assert_eq!(t.ack_in_flight(a, frames[2].0.clone(), frames[2].1), None);
        let state = t.get_mut(&a).unwrap();
        assert_eq!(state.priority, Priority::High);
        assert_eq!(state.header.total_len(), Some(3000));
        let send = state.half.send().unwrap();
        assert_eq!(
            (send.acked_below(), send.unacked(), send.is_finished()),
            (1200, 1800, true)
        );
        assert_eq!(t.stateless_bytes(), 0);

        // One acknowledged to its end where it waits, then forgotten: nothing left of it.
        let frames = frames.clone();
        t.keep_in_flight(b, 64);
        assert!(t.get(&b).is_none());
        for (i, (range, fin)) in frames.iter().enumerate() {
            let done = i + 1 == frames.len();
            let released = range.end - range.start;
            assert_eq!(t.ack_in_flight(b, range.clone(), *fin), Some((released, done)));
        }
        // Kept through a trim until then.
        t.trim();
        assert_eq!(t.stateless_bytes(), 0);
        let len = t.len();
        t.remove(b, 64);
        assert_eq!(t.len(), len - 1);
        assert!(t.get_mut(&b).is_none());
    }

    /// A stream still waiting for a turn, or at or below the states kept, keeps its state.
    #[test]
    fn a_stream_keeps_its_state_below_the_bound_or_with_more_to_send() {
        let mut t = StreamTable::default();
        sent(&mut t, StreamId(0), 10);
        t.keep_in_flight(StreamId(0), 64);
        assert_eq!(t.get(&StreamId(0)).is_some(), STATES_BEFORE_IN_FLIGHT != 0);
        let mut t = StreamTable::default();
        for i in 0..=STATES_BEFORE_IN_FLIGHT as u64 {
            t.insert(StreamId(4 * i), sending(Priority::Normal));
        }
        t.keep_in_flight(StreamId(0), 64);
        assert!(t.get(&StreamId(0)).is_some(), "its byte not sent");
    }

    #[test]
    fn a_stream_put_at_the_front_has_the_next_turn() {
        let mut t = StreamTable::default();
        for id in [0, 4, 8] {
            t.insert(StreamId(id), sending(Priority::Normal));
        }
        let normal = Priority::Normal as usize;
        t.queue(StreamId(0));
        t.queue(StreamId(4));
        t.queue_at(StreamId(8), Place::Front);
        // Queued already: neither place moves it.
        t.queue_at(StreamId(0), Place::Front);
        let order: Vec<_> = core::iter::from_fn(|| t.next_turn(normal)).collect();
        assert_eq!(order, [StreamId(8), StreamId(0), StreamId(4)]);
    }
}
