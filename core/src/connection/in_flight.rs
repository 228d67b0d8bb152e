//! A stream of ours whose bytes and end have all gone, waiting only for their
//! acknowledgements, kept without its state (module `stream_table`, which decides when; spec
//! §8, Streams and credit).
//!
//! Inputs: a stream's state as its last byte goes; the acknowledgements of its frames.
//! Outputs: what each acknowledgement released and whether the stream is done; the state it
//! had, made again, for anything else (a loss, an acknowledgement out of order, a call or a
//! peer's frame naming it).
//!
//! Why: a sender keeps a stream per message until every byte of it is acknowledged, so over
//! a long path a fast sender holds the messages of a round trip and more at once (4,096 when
//! the peer's stream count has grown to it). Their states, 384 bytes each in a box, were
//! the largest part of a sender's memory beyond the bytes themselves, which are the
//! application's. What such a stream still needs is its unacknowledged bytes (to send again
//! if lost), its header (its first frame announces it), its class and its credit: 88 bytes,
//! kept in id order (module `id_queue`), the box going back to the table's spares for the
//! next stream's turn. Nearly every acknowledgement of such a stream is one this form takes
//! as it is ([`SentWhole::on_acked`]); the rest make the state again first, the state it
//! would have had all along, so nothing a connection sends or tells depends on which form a
//! stream waited in.

use crate::event::Priority;
use crate::stream::send::{SendStream, SentWhole, SentWholeAck};

use super::reading::Reading;
use super::stream_state::{Half, KeptHeader, StreamState};

/// A stream of ours waiting for its acknowledgements without its state (module docs).
#[derive(Debug)]
pub(super) struct InFlight {
    send: SentWhole,
    header: KeptHeader,
    priority: Priority,
}

impl InFlight {
    /// `state`'s stream as one in flight, taken out of it (the state is left to be emptied),
    /// if nothing but its acknowledgements is left to it: a send half with every byte and
    /// its end sent once ([`SendStream::take_sent_whole`]), not queued, not a pipe's, and no
    /// receive side's field set.
    pub(super) fn take(state: &mut StreamState) -> Option<InFlight> {
        let plain = !state.queued
            && !state.piped
            && state.receipt.is_none()
            && state.verifier.is_none()
            && state.released == 0
            && matches!(state.reading, Reading::Unannounced);
        if !plain {
            return None;
        }
        let send = state.half.send_mut()?.take_sent_whole()?;
        Some(InFlight {
            send,
            header: core::mem::take(&mut state.header),
            priority: state.priority,
        })
    }

    /// Makes `state`, empty (`StreamState::default()`), the state this was taken from.
    pub(super) fn restore(self, state: &mut StreamState) {
        state.half = Half::Send(SendStream::from_sent_whole(self.send));
        state.header = self.header;
        state.priority = self.priority;
    }

    /// Bytes not yet acknowledged, all held in the send buffer.
    pub(super) fn unacked(&self) -> u64 {
        self.send.unacked()
    }

    /// The frame carrying `range` (and FIN if `fin`) was acknowledged: taken in place, or
    /// [`SentWholeAck::Repair`] (nothing changed) if the state must be made to take it.
    pub(super) fn on_acked(&mut self, range: core::ops::Range<u64>, fin: bool) -> SentWholeAck {
        self.send.on_acked(range, fin)
    }
}
