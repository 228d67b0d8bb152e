//! What one stream keeps in its connection's stream table ([`StreamState`]): the half still
//! kept, send or receive ([`Half`]), the header its opening frame carried or will carry
//! ([`KeptHeader`]), and the rest each side reads.
//!
//! Laid out for size: a sender keeps a state per message until the message is
//! acknowledged, a receiver until it is read, so on a long path this size times the
//! messages in flight is much of both ends' memory (`stream_state_size` in the connection's
//! tests bounds it; adapters/bench/rounds.md, issue 35's fourteenth round).

use alloc::boxed::Box;

use crate::event::{ApiError, Priority, StreamHeader};
use crate::stream::recv::RecvStream;
use crate::stream::send::SendStream;
use crate::verify::Verifier;
use crate::wire::{Delivery, Digest, Label};

use super::reading::Reading;

/// What one stream keeps, in the connection's stream table.
///
/// Streams are one-way (spec §4.12): a stream we opened has a send half, one the peer opened
/// a receive half, never both, so the two share one place ([`Half`]). The fields after
/// `header` say which side reads them.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    pub(super) half: Half,
    /// What the opening frame announces (sent, or received once `opened`).
    pub(super) header: KeptHeader,
    /// Receive side: the hash of what the application read, when the sender attached a
    /// digest (spec §8, Verification).
    pub(super) verifier: Option<Box<Verifier>>,
    /// Receive side: what the application was told, and whether it still wants the bytes.
    pub(super) reading: Reading,
    /// Receive side: bytes of this stream counted as consumed for connection credit (read,
    /// handed to a pipe, or given up on); a reset releases the rest up to its final size.
    pub(super) released: u64,
    /// Send side: queued in the send round robin.
    pub(super) queued: bool,
    /// Send side: its class in the send scheduler.
    pub(super) priority: Priority,
    /// Send side: a pipe writes it; kept once done until the pipe releases it.
    pub(super) piped: bool,
    /// Send side, piped: the receipt its peer sent (spec §8, Delivery), for the pipe.
    pub(super) receipt: Option<Delivery>,
}

/// The half of a stream still kept: a send half until all it sent is acknowledged (or it is
/// reset), a receive half until the application is done with it.
#[derive(Debug, Default)]
pub(super) enum Half {
    /// Neither: a place just made, or a stream whose half went a moment before it goes.
    #[default]
    Gone,
    Send(SendStream),
    Recv(RecvStream),
    /// A stream of ours that ended before the application finished it, its send half gone:
    /// kept only to tell the application's next call on it how it ended.
    Settled(Settled),
}

impl Half {
    pub(super) fn send(&self) -> Option<&SendStream> {
        match self {
            Half::Send(send) => Some(send),
            _ => None,
        }
    }

    pub(super) fn send_mut(&mut self) -> Option<&mut SendStream> {
        match self {
            Half::Send(send) => Some(send),
            _ => None,
        }
    }

    pub(super) fn recv(&self) -> Option<&RecvStream> {
        match self {
            Half::Recv(recv) => Some(recv),
            _ => None,
        }
    }

    pub(super) fn recv_mut(&mut self) -> Option<&mut RecvStream> {
        match self {
            Half::Recv(recv) => Some(recv),
            _ => None,
        }
    }

    /// Lets the send half go, returning it; `None` (and nothing changes) if there is none.
    pub(super) fn take_send(&mut self) -> Option<SendStream> {
        // Looked at in place first, as `take_settled` does: a half moved out and back costs
        // a copy of it. (The second arm below cannot be taken once the first check passed.)
        if !matches!(self, Half::Send(_)) {
            return None;
        }
        match core::mem::take(self) {
            Half::Send(send) => Some(send),
            _ => None,
        }
    }

    /// How the stream ended before the application finished it, told once: the stream
    /// keeps nothing after.
    pub(super) fn take_settled(&mut self) -> Option<Settled> {
        // Looked at in place first: every call on a stream of ours asks, and moving a half
        // out and back costs a copy of it.
        let Half::Settled(settled) = *self else {
            return None;
        };
        *self = Half::Gone;
        Some(settled)
    }
}

/// How a stream of ours ended before the application finished it: its next call on the
/// stream is told ([`ApiError::Stopped`], [`ApiError::Settled`]).
#[derive(Clone, Copy, Debug)]
pub(super) enum Settled {
    /// The peer stopped it, with this code.
    Stopped(u64),
    /// The final receiver's receipt came: it read every byte of the announced length, or
    /// refused the stream (a relay with only its start may pass on such a refusal).
    Receipt(Delivery),
}

impl Settled {
    pub(super) fn error(self) -> ApiError {
        match self {
            Settled::Stopped(code) => ApiError::Stopped { code },
            Settled::Receipt(delivery) => ApiError::Settled { delivery },
        }
    }
}

/// A stream's header as its state keeps it: the total length inline (a message announces
/// it), the label and digest, which few streams carry, in one box made only for those that
/// do. 24 bytes where the [`StreamHeader`] itself is 88.
#[derive(Debug, Default)]
pub(super) struct KeptHeader {
    total_len: Option<u64>,
    rare: Rare,
}

/// A header's label and digest, boxed, or nothing if it carries neither.
pub(super) type Rare = Option<Box<(Option<Label>, Option<Digest>)>>;

/// `header`'s total length, and its label and digest kept apart.
pub(super) fn split(header: StreamHeader) -> (Option<u64>, Rare) {
    let StreamHeader {
        label,
        total_len,
        digest,
        ..
    } = header;
    let rare = (label.is_some() || digest.is_some()).then(|| Box::new((label, digest)));
    (total_len, rare)
}

impl KeptHeader {
    pub(super) fn new(header: StreamHeader) -> Self {
        let (total_len, rare) = split(header);
        KeptHeader { total_len, rare }
    }

    /// A message's: `len` bytes long, with `rare`'s label and digest.
    pub(super) fn message(len: u64, rare: Rare) -> Self {
        KeptHeader {
            total_len: Some(len),
            rare,
        }
    }

    pub(super) fn total_len(&self) -> Option<u64> {
        self.total_len
    }

    pub(super) fn label(&self) -> Option<&Label> {
        self.rare.as_ref().and_then(|r| r.0.as_ref())
    }

    pub(super) fn digest(&self) -> Option<Digest> {
        self.rare.as_ref().and_then(|r| r.1)
    }

    /// The header in full, as the application is told it.
    pub(super) fn to_header(&self) -> StreamHeader {
        StreamHeader {
            label: self.label().cloned(),
            total_len: self.total_len,
            digest: self.digest(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept header gives back the header it was made from, and boxes nothing for a
    /// stream that carries neither a label nor a digest (a message: its total length only).
    #[test]
    fn a_kept_header_gives_back_its_header_and_boxes_only_a_label_or_digest() {
        let label = Label::new(bytes::Bytes::from_static(b"/weir/test")).unwrap();
        let digest = Digest::from_bytes([7; 32]);
        for (label, total_len, digest) in [
            (None, None, None),
            (None, Some(1024), None),
            (Some(label.clone()), Some(1024), None),
            (None, None, Some(digest)),
            (Some(label), Some(3), Some(digest)),
        ] {
            let header = StreamHeader {
                label,
                total_len,
                digest,
            };
            let kept = KeptHeader::new(header.clone());
            assert_eq!(kept.to_header(), header);
            assert_eq!(kept.total_len(), header.total_len);
            let plain = header.label.is_none() && header.digest.is_none();
            assert_eq!(kept.rare.is_none(), plain, "{header:?}");
        }
    }
}
