//! What the driver keeps of a connection beyond the core: the streams its peer opened and
//! no call took yet, the receipts a call waits for, and how it ended. Inputs are the core's events (`Driver::events`) and the calls that take
//! from these queues; nothing here calls the core.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant as StdInstant;

use bytes::Bytes;
use weir_core::wire::StreamId;
use weir_core::{
    CloseReason, ConnectionHandle, Delivery, HandshakeError, Negotiated, PipeFailure, PipeStats, StreamHeader,
};

use crate::Error;

/// What the driver knows of one connection beyond the core.
#[derive(Default)]
pub(super) struct Conn {
    /// The core's handle; `None` once the connection is gone from the core.
    pub(super) handle: Option<ConnectionHandle>,
    pub(super) negotiated: Option<Negotiated>,
    pub(super) peer: Option<weir_core::PublicKey>,
    pub(super) ended: Option<Ended>,
    /// The counters as the connection closed (from `Event::Closed`), for `Stats` once the
    /// core forgot it.
    pub(super) last_stats: Option<weir_core::ConnectionStats>,
    /// Streams the peer opened that no call took yet, in the order they opened.
    pub(super) opened: StreamQueue<StreamHeader>,
    /// Streams a message read began to gather, with the longest message it accepts
    /// (no longer offered to `accept_stream`). The driver gathers what arrives for them at
    /// once (`Driver::on_readable`), so that their credit goes out with the next send, and
    /// wakes the receive only once the message is whole (or failed).
    pub(super) gathering: BTreeMap<StreamId, u64>,
    /// Untaken streams with something new to read, in the order they became readable.
    pub(super) readable: StreamQueue<()>,
    /// Bytes taken out of the core and not handed out yet: the end or failure that followed
    /// the pieces a read returned, a message gathered whole (or how it failed) before a
    /// receive asked.
    pub(super) held: BTreeMap<StreamId, Held>,
    /// Streams the peer opened that `accept_stream` handed out and are still being read.
    pub(super) taken: BTreeSet<StreamId>,
    /// Our streams the peer stopped, with its code.
    pub(super) stopped: BTreeMap<StreamId, u64>,
    /// Our streams a call waits to see confirmed ([`Confirm`]), and how far each got:
    /// `None` until every byte is acknowledged, then `Some(None)`, then the receipt.
    /// Only streams a call waits on are kept.
    pub(super) confirming: BTreeMap<StreamId, Option<Option<Delivery>>>,
    /// The latest receipts no call waited for (at most [`RECENT_RECEIPTS`](super::RECENT_RECEIPTS)): a stream of
    /// announced length can be read to its end, and its receipt come, before the
    /// application finishes it; that `finish` then finds its answer here, even once the
    /// core forgot the stream or the connection ended.
    pub(super) recent: VecDeque<(StreamId, Delivery)>,
    /// No application handle is left: forget the connection once it ended.
    pub(super) released: bool,
}

impl Conn {
    /// `stream` is no longer one to accept.
    pub(super) fn forget_opened(&mut self, stream: StreamId) {
        self.opened.remove(stream);
    }
}

/// Streams in the order they came, which also says whether a stream is among them without a
/// long walk: a connection's queues hold up to as many streams as its peer may open at once,
/// and every datagram that arrives asks about the streams it carries. A short queue is
/// searched (cheaper than a set's upkeep for the few streams a connection usually has); past
/// [`StreamQueue::INDEXED`] streams a set of its members is kept too, until it empties.
pub(super) struct StreamQueue<T> {
    pub(super) order: VecDeque<(StreamId, T)>,
    pub(super) members: Option<BTreeSet<StreamId>>,
}

impl<T> Default for StreamQueue<T> {
    fn default() -> Self {
        StreamQueue {
            order: VecDeque::new(),
            members: None,
        }
    }
}

impl<T> StreamQueue<T> {
    /// Queued streams past which membership is looked up in a set.
    const INDEXED: usize = 32;

    pub(super) fn contains(&self, stream: StreamId) -> bool {
        match &self.members {
            Some(m) => m.contains(&stream),
            None => self.order.iter().any(|(s, _)| *s == stream),
        }
    }

    pub(super) fn front_id(&self) -> Option<StreamId> {
        self.order.front().map(|(s, _)| *s)
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.order.iter().map(|(s, _)| *s)
    }

    /// Queues `stream` last, unless it is queued already.
    pub(super) fn push_back(&mut self, stream: StreamId, value: T) {
        if self.admit(stream) {
            self.order.push_back((stream, value));
        }
    }

    /// Whether `stream` is new here; counts it in the set (made once the queue is long).
    pub(super) fn admit(&mut self, stream: StreamId) -> bool {
        if self.members.is_none() {
            if self.contains(stream) {
                return false;
            }
            if self.order.len() < Self::INDEXED {
                return true;
            }
            self.members = Some(self.ids().collect());
        }
        self.members.as_mut().is_some_and(|m| m.insert(stream))
    }

    pub(super) fn pop_front(&mut self) -> Option<(StreamId, T)> {
        let first = self.order.pop_front()?;
        self.forget(first.0);
        Some(first)
    }

    /// Takes `stream` out. Streams are mostly taken in the order they came, so it is nearly
    /// always the first; only one that is queued and not first costs a walk (and, in a long
    /// queue, one that is not queued costs none).
    pub(super) fn remove(&mut self, stream: StreamId) -> Option<(StreamId, T)> {
        if self.front_id() == Some(stream) {
            return self.pop_front();
        }
        if self.members.as_ref().is_some_and(|m| !m.contains(&stream)) {
            return None;
        }
        let i = self.order.iter().position(|(s, _)| *s == stream)?;
        let taken = self.order.remove(i);
        self.forget(stream);
        taken
    }

    pub(super) fn forget(&mut self, stream: StreamId) {
        if let Some(m) = self.members.as_mut() {
            m.remove(&stream);
            if m.is_empty() {
                self.members = None;
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.order.clear();
        self.members = None;
    }
}

#[derive(Default)]
pub(super) struct Held {
    pub(super) chunks: VecDeque<Bytes>,
    /// Every byte of the stream is in `chunks`.
    pub(super) finished: bool,
    /// How the stream failed after `chunks` (a reset, a digest that did not match): told
    /// once they are read.
    pub(super) failed: Option<Error>,
}

#[derive(Clone, Debug)]
pub(super) enum Ended {
    Closed(CloseReason),
    Handshake(HandshakeError),
}

impl Ended {
    pub(super) fn error(&self) -> Error {
        match self {
            Ended::Closed(r) => Error::Closed(r.clone()),
            Ended::Handshake(h) => Error::Handshake(h.clone()),
        }
    }
}

pub(super) struct PipeRecord {
    pub(super) stats: PipeStats,
    pub(super) result: Option<Result<(), PipeFailure>>,
    pub(super) released: bool,
}

/// A shutdown in progress: first the peers acknowledge what was written, then the
/// connections close.
pub(super) struct Shutdown {
    pub(super) drain_until: StdInstant,
    pub(super) close_until: Option<StdInstant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_queue_keeps_order_and_membership_together() {
        let mut q = StreamQueue::default();
        for i in [4, 8, 0, 12] {
            q.push_back(StreamId(i), i);
        }
        q.push_back(StreamId(8), 99);
        assert_eq!(
            q.ids().map(|s| s.0).collect::<Vec<_>>(),
            [4, 8, 0, 12],
            "queued once"
        );
        assert_eq!(q.remove(StreamId(0)), Some((StreamId(0), 0)));
        assert_eq!(q.remove(StreamId(0)), None);
        assert!(!q.contains(StreamId(0)));
        assert_eq!(q.remove(StreamId(12)), Some((StreamId(12), 12)));
        assert_eq!(q.pop_front(), Some((StreamId(4), 4)));
        assert_eq!(q.pop_front(), Some((StreamId(8), 8)));
        assert_eq!(q.pop_front(), None);
        assert!(!q.contains(StreamId(8)));
        q.push_back(StreamId(8), 1);
        q.clear();
        assert!(!q.contains(StreamId(8)) && q.front_id().is_none());

        // Long enough to keep a set of its members: the same answers.
        let n = 3 * StreamQueue::<u64>::INDEXED as u64;
        for i in (0..n).rev() {
            q.push_back(StreamId(i), i);
            q.push_back(StreamId(i), 0);
        }
        assert!(q.members.is_some());
        assert_eq!(q.ids().count() as u64, n);
        assert_eq!(q.remove(StreamId(5)), Some((StreamId(5), 5)));
        assert_eq!(q.remove(StreamId(5)), None);
        assert_eq!(q.remove(StreamId(n)), None);
        assert!(!q.contains(StreamId(5)) && q.contains(StreamId(6)));
        assert_eq!(q.ids().count() as u64, n - 1);
        assert_eq!(q.remove(StreamId(7)), Some((StreamId(7), 7)));
        assert!(!q.contains(StreamId(7)) && q.contains(StreamId(8)));
        while q.pop_front().is_some() {}
        assert!(q.members.is_none() && !q.contains(StreamId(8)));
    }
}
