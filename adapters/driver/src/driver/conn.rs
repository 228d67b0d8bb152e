//! What the driver keeps of a connection beyond the core: how it ended (and its counters
//! then), how the streams being read ended, the peer's stops and the receipts a call waits
//! for. Inputs are the core's events (`Driver::events`) and the calls; nothing here calls
//! the core.

use std::collections::BTreeMap;
use std::time::Instant as StdInstant;

use weir_core::wire::StreamId;
use weir_core::{CloseReason, Delivery, HandshakeError, Negotiated, PipeFailure, PipeStats};

use crate::Error;

/// What the driver knows of one connection beyond the core.
#[derive(Default)]
pub(super) struct Conn {
    pub(super) negotiated: Option<Negotiated>,
    pub(super) peer: Option<weir_core::PublicKey>,
    /// How it ended; `None` while it lives.
    pub(super) ended: Option<Ended>,
    /// The counters as the connection closed (from `Event::Closed`), for `Stats` once the
    /// core forgot it.
    pub(super) last_stats: Option<weir_core::ConnectionStats>,
    /// How streams being read ended, met by a read that returned pieces before it: told
    /// at the next read.
    pub(super) ends: BTreeMap<StreamId, StreamEnd>,
    /// Our finished streams a call waits to see confirmed ([`Confirm`](crate::Confirm)),
    /// and how far each got. Only streams a call waits on are kept (the core tells each
    /// step once, as an event).
    pub(super) confirming: BTreeMap<StreamId, Confirming>,
    /// No application handle is left: forget the connection once it ended.
    pub(super) released: bool,
    /// The relay at the other end answered our reservation (spec §12.2): granted, or why
    /// not; `None` before an answer.
    pub(super) reservation: Option<Result<(), weir_core::RelayRefusal>>,
    /// How many times the connection moved to another path (`Event::PathChanged`), and
    /// the last path it moved to.
    pub(super) moves: u64,
    pub(super) path: Option<weir_core::Path>,
    /// The application's handles on it ([`Connection`](crate::Connection)s made from it,
    /// each a set of clones): let go of when the last one goes.
    pub(super) handles: u32,
    /// The pool dialed it: parked, not let go, when its last handle goes (module `pool`).
    pub(super) pooled: bool,
    /// Parked by the pool until then.
    pub(super) parked: Option<StdInstant>,
    /// The `tracing` span its events are logged in (set as it is registered).
    pub(super) span: Option<tracing::Span>,
    /// Requests both ways, and their replies (module `requests`).
    pub(super) requests: super::requests::Requests,
}

/// How far a finished stream of ours got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Confirming {
    /// Sent, not every byte acknowledged yet.
    Sent,
    /// Every byte acknowledged.
    Acknowledged,
    /// The final receiver's receipt.
    Receipt(Delivery),
    /// The peer stopped it before every byte was acknowledged, with this code.
    Stopped(u64),
}

/// How a stream the application reads ended, once a read that returned its last pieces
/// met the end.
pub(super) enum StreamEnd {
    /// Read to its end: every later read is told so.
    Finished,
    /// A reset, a digest that did not match, the connection's end: told once.
    Failed(Error),
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
