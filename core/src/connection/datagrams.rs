//! Unreliable datagrams (spec/protocol.md §4.19, after RFC 9221): the application's
//! datagrams waiting to be sent, and the peer's waiting to be read. A datagram rides whole
//! in one packet as a DATAGRAM frame, only when the congestion controller and the pacer
//! let new data go (it counts as bytes in flight like any ack-eliciting packet), and is
//! never retransmitted: a lost one is counted, nothing more.
//!
//! Inputs: the application's `send_datagram`, DATAGRAM frames, room in a packet being
//! filled. Outputs: DATAGRAM frames, the peer's datagrams for `recv_datagram`,
//! `Event::DatagramReceived`, counters. Both queues hold at most [`QUEUE`] datagrams: past
//! it the oldest is dropped (counted), as a datagram that waited that long is stale.
//!
//! Copies: none; a datagram goes out as the application's `Bytes` and comes in as a slice
//! of the datagram it arrived in (which that slice keeps alive: the receive queue's bound
//! is in datagrams, at most `QUEUE` packets held).

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use super::*;
use crate::wire::varint::encoded_len;

/// Datagrams each queue holds at most.
pub(crate) const QUEUE: usize = 64;

/// Bytes a data packet's header and seal (or trailer) take: measured on an empty packet in
/// a small scratch buffer (the header does not depend on the packet's size).
fn overhead(header: &Header) -> Option<usize> {
    const SCRATCH: usize = 128;
    let mut scratch = [0u8; SCRATCH];
    let w = PacketWriter::new(&mut scratch, header).ok()?;
    Some(SCRATCH - w.remaining())
}

/// The connection's two queues: nothing until a datagram is sent or received (an idle
/// connection pays one pointer for them).
#[derive(Debug, Default)]
pub(super) struct Datagrams(Option<Box<Queues>>);

#[derive(Debug, Default)]
struct Queues {
    outgoing: VecDeque<Bytes>,
    incoming: VecDeque<Bytes>,
}

impl Datagrams {
    fn queues(&mut self) -> &mut Queues {
        self.0.get_or_insert_with(Box::default)
    }

    /// Whether a datagram waits to be sent.
    pub(super) fn has_outgoing(&self) -> bool {
        self.0.as_ref().is_some_and(|q| !q.outgoing.is_empty())
    }

    /// Lets go of the queues if both are empty (spec §8, Liveness: a trim).
    pub(super) fn trim(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|q| q.outgoing.is_empty() && q.incoming.is_empty())
        {
            self.0 = None;
        }
    }
}

impl Connection {
    /// Whether both ends take datagrams (capability DATAGRAMS).
    fn datagrams_on(&self) -> bool {
        self.negotiated
            .is_some_and(|n| n.capabilities.contains(crate::wire::Capabilities::DATAGRAMS))
    }

    /// The largest datagram [`send_datagram`](Self::send_datagram) takes now: what one
    /// packet of the path's current size holds besides its header and the frame's own
    /// fields. `None` before the handshake, or if the peer does not take datagrams.
    /// `limit` is our configured `Config::max_datagram_size`.
    pub(crate) fn max_datagram(&self, limit: u16) -> Option<usize> {
        if !self.is_open() || !self.datagrams_on() {
            return None;
        }
        let size = self.datagram_size_within(limit, usize::MAX);
        // The longest header a data packet of ours takes (a 4-byte packet number).
        let header = Header {
            version: self.version,
            key_phase: KeyPhase::Zero,
            kind: PacketKind::Data,
            dcid: self.remote_cid,
            number: 0,
            number_len: PacketNumberLen::Four,
            timestamp: self.clock.wire_timestamp(),
        };
        let fixed = overhead(&header)?;
        let room = size.checked_sub(fixed + 1)?;
        Some(room - encoded_len(room as u64)?)
    }

    /// Queues `data` to go as one datagram. Refused before the handshake or after the
    /// close ([`ApiError::NotEstablished`]), if the peer does not take datagrams
    /// ([`ApiError::DatagramsUnsupported`]), or if it does not fit one packet
    /// ([`ApiError::DatagramTooLarge`], with the largest that does). Past [`QUEUE`] waiting,
    /// the oldest is dropped.
    pub(crate) fn send_datagram(&mut self, limit: u16, data: Bytes) -> Result<(), ApiError> {
        if !self.is_open() {
            return Err(ApiError::NotEstablished);
        }
        if !self.datagrams_on() {
            return Err(ApiError::DatagramsUnsupported);
        }
        let max = self.max_datagram(limit).unwrap_or(0);
        if data.len() > max {
            return Err(ApiError::DatagramTooLarge { max });
        }
        let queues = self.datagrams.queues();
        if queues.outgoing.len() >= QUEUE {
            queues.outgoing.pop_front();
            self.stats.app_datagrams_dropped += 1;
        }
        queues.outgoing.push_back(data);
        Ok(())
    }

    /// The oldest datagram the peer sent that was not read yet.
    pub(crate) fn recv_datagram(&mut self) -> Option<Bytes> {
        self.datagrams.0.as_mut()?.incoming.pop_front()
    }

    /// A DATAGRAM frame arrived: queued for the application (told once the queue was
    /// empty), the oldest dropped past [`QUEUE`]. One the peer may not send (we did not
    /// offer the capability) breaks the protocol.
    pub(super) fn on_datagram(&mut self, data: Bytes) -> Result<(), ViolationKind> {
        if !self.datagrams_on() {
            // Not negotiated: a frame type this connection does not know (spec §4.1).
            return Err(ViolationKind::Malformed {
                error: crate::wire::DecodeError::UnknownFrameType(crate::wire::frame_types::DATAGRAM),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        self.stats.app_datagrams_received += 1;
        let queues = self.datagrams.queues();
        let was_empty = queues.incoming.is_empty();
        if queues.incoming.len() >= QUEUE {
            queues.incoming.pop_front();
            self.stats.app_datagrams_dropped += 1;
        }
        queues.incoming.push_back(data);
        if was_empty {
            self.events
                .push_back(Event::DatagramReceived { conn: self.handle });
        }
        Ok(())
    }

    /// Adds the waiting datagrams that fit to the packet being filled, oldest first. One
    /// that can never fit (the path's size fell below it since it was queued) is dropped.
    pub(super) fn fill_datagrams(&mut self, w: &mut PacketWriter<'_>, sent: &mut SentFrames, empty: usize) {
        let stats = &mut self.stats;
        let Some(queues) = self.datagrams.0.as_mut() else {
            return;
        };
        while let Some(front) = queues.outgoing.front() {
            let frame = Frame::Datagram(front.clone());
            if w.push(&frame).is_ok() {
                queues.outgoing.pop_front();
                sent.push(SentFrame::Datagram);
                stats.app_datagrams_sent += 1;
                continue;
            }
            if frame.encoded_len().map_or(true, |len| len > empty) {
                queues.outgoing.pop_front();
                stats.app_datagrams_dropped += 1;
                continue;
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_lets_the_queues_go_only_when_both_are_empty() {
        let mut d = Datagrams::default();
        d.queues().incoming.push_back(Bytes::from_static(b"x"));
        d.trim();
        assert!(d.0.is_some(), "a datagram waits to be read");
        d.queues().incoming.clear();
        d.trim();
        assert!(d.0.is_none());
    }
}
