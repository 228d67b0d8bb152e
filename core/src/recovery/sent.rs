//! What a packet in flight carried, for what to do once it is acknowledged or lost: stream
//! bytes by range, a delivery receipt, or a control frame, kept as the same [`Control`]
//! value that waited to be sent, so that a lost one is queued again as it is (spec/protocol.md
//! §8, Loss and retransmission: what is resent is the information, never the packet).
//!
//! The connection maps each [`Control`] to its frame when it sends it and decides what a
//! lost one needs (`connection/control.rs`); recovery only keeps these records with the
//! packets they rode in.

use alloc::vec::Vec;

use crate::wire::StreamId;

/// Frames a packet's record holds without an allocation.
const INLINE: usize = 3;

/// What a packet in flight carried: up to three inline, in 72 bytes (a `SmallVec` of three
/// took 80, its length in a word of its own; here the places left are `None`, and the list
/// spilled to the heap fits beside the first place's niche). Three, since an answer carries
/// its stream's data, the receipt for the request and, every so often, a grant of streams
/// riding with it (spec §8, Streams and credit); with two, that packet's list was an
/// allocation, and messages and round trips took 0.5–0.7% more instructions.
#[derive(Clone, Debug)]
pub(crate) enum SentFrames {
    /// Up to [`INLINE`] frames, from the front; the places after the last are `None`.
    Inline([Option<SentFrame>; INLINE]),
    /// More.
    Spilled(Vec<SentFrame>),
}

impl Default for SentFrames {
    fn default() -> Self {
        SentFrames::Inline([None, None, None])
    }
}

impl SentFrames {
    /// No frames.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `frame` after the others.
    #[inline]
    pub(crate) fn push(&mut self, frame: SentFrame) {
        if let SentFrames::Inline(places) = self {
            if let Some(place) = places.iter_mut().find(|p| p.is_none()) {
                *place = Some(frame);
                return;
            }
        }
        self.push_spilled(frame);
    }

    /// [`push`](Self::push) past the places inline: out of line, so that the common push
    /// inlines small.
    #[inline(never)]
    fn push_spilled(&mut self, frame: SentFrame) {
        match self {
            SentFrames::Inline(places) => {
                let mut all = Vec::with_capacity(2 * INLINE);
                all.extend(places.iter_mut().filter_map(Option::take));
                all.push(frame);
                *self = SentFrames::Spilled(all);
            }
            SentFrames::Spilled(all) => all.push(frame),
        }
    }

    /// Whether there are none.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            SentFrames::Inline([first, ..]) => first.is_none(),
            SentFrames::Spilled(all) => all.is_empty(),
        }
    }

    /// The frames, in the order pushed.
    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SentFrame> {
        let (inline, spilled): (&[Option<SentFrame>], &[SentFrame]) = match self {
            SentFrames::Inline(places) => (places, &[]),
            SentFrames::Spilled(all) => (&[], all),
        };
        // Inline places are filled from the front: the first `None` ends them.
        inline.iter().map_while(Option::as_ref).chain(spilled)
    }
}

/// What a sent packet carried that matters once it is acknowledged or lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SentFrame {
    /// Stream bytes `offset..offset + len`, and FIN if `fin`. (`len` in 32 bits, as a
    /// frame is within one datagram: the record is 24 bytes, the other kinds fitting beside
    /// `fin`'s spare values, and a packet in flight keeps three inline.)
    Stream {
        id: StreamId,
        offset: u64,
        len: u32,
        fin: bool,
    },
    /// A RECEIPT for the peer's stream `first` (`also` 0), or a RECEIPT_RUN for it and the
    /// streams of its side after it that `also`'s bits name (resent if lost, until
    /// acknowledged).
    Receipt { first: StreamId, also: u64 },
    /// A control frame.
    Control(Control),
    /// A relay frame, by the number the connection's relay link gave it (resent if lost,
    /// until acknowledged).
    Relay(u32),
    /// A DATAGRAM (never resent: a lost one is only counted).
    Datagram,
}

/// A control frame: what waits to be sent, and what a packet in flight carried. 16 bytes:
/// the values of a stream's end are held apart (module `connection::control`), so that a
/// packet's record of a frame is 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Control {
    /// MAX_DATA: the connection's receive credit (its current value when sent).
    MaxData,
    /// MAX_STREAM_DATA: a stream's receive credit.
    MaxStreamData(StreamId),
    /// MAX_STREAMS: how many streams the peer may open.
    MaxStreams,
    /// DATA_BLOCKED: the connection's send credit ran out.
    DataBlocked,
    /// STREAM_DATA_BLOCKED: a stream's send credit ran out.
    StreamDataBlocked(StreamId),
    /// STREAMS_BLOCKED: we may open no more streams.
    StreamsBlocked,
    /// RESET_STREAM: a stream we send, abandoned (its code and final size are held by the
    /// connection's control queue until acknowledged: module `connection::control`).
    ResetStream(StreamId),
    /// STOP_SENDING: a stream the peer sends, no longer wanted (its code is held by the
    /// connection's control queue until acknowledged).
    StopSending(StreamId),
    /// PING: asks for an acknowledgement (nothing to resend).
    Ping,
    /// OBSERVED_ADDRESS: where we see the peer (its newest address when sent).
    ObservedAddress,
}
