//! The relay exchange on one connection (spec/protocol.md §12.2, capability RELAY): the
//! RELAY_* frames the endpoint asks this connection to send, each kept until acknowledged
//! and sent again if lost (every one of them is idempotent at its receiver), and the ones
//! the peer sent, kept for the endpoint to act on (module `endpoint::relaying`): what a
//! relay does is the endpoint's, since a circuit joins two connections.
//!
//! An owned part of the connection, boxed behind an `Option` so that a connection that
//! never relays pays one pointer.

use alloc::collections::BTreeMap;

use super::*;
use crate::wire::RelayFrame;

/// The relay frames of one connection, both ways.
#[derive(Debug, Default)]
pub(super) struct RelayLink {
    /// Frames to send, by the number they were given, kept until acknowledged.
    owed: BTreeMap<u32, RelayFrame>,
    /// Numbers of owed frames to send (again).
    queue: VecDeque<u32>,
    next: u32,
    /// The first frame never sent: frames go out first in the order they were numbered
    /// (copies and retransmissions queue behind), so a frame is sent for the first time,
    /// and copied if it is [`sent_twice`], when it is this one.
    unsent: u32,
    /// Frames the peer sent, for the endpoint.
    inbox: VecDeque<RelayFrame>,
}

/// Whether `frame` goes twice, in two packets one after the other: the hole punch's
/// coordination (spec §12.5), whose loss would otherwise cost a probe timeout, several
/// round trips, before the punch. Both are idempotent at the receiver.
fn sent_twice(frame: &RelayFrame) -> bool {
    matches!(frame, RelayFrame::Candidates { .. } | RelayFrame::PunchNow { .. })
}

impl RelayLink {
    /// Queues `frame`, owed until acknowledged.
    fn push(&mut self, frame: RelayFrame) {
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        self.owed.insert(n, frame);
        self.queue.push_back(n);
    }

    /// Adds the waiting frames that fit to the packet being written.
    fn fill(&mut self, w: &mut PacketWriter<'_>, sent: &mut SentFrames) {
        let mut copies: SmallVec<[u32; 2]> = SmallVec::new();
        while let Some(&n) = self.queue.front() {
            let Some(frame) = self.owed.get(&n) else {
                // Acknowledged since it was queued again (its loss was spurious): skipped,
                // or it would hold back every frame behind it.
                self.queue.pop_front();
                continue;
            };
            // Copied into a frame to write (an allocation only for PUNCH_CANDIDATES, whose
            // addresses are boxed: a punch round's few frames).
            if w.push(&Frame::Relay(frame.clone())).is_err() {
                break;
            }
            if n == self.unsent {
                self.unsent = self.unsent.wrapping_add(1);
                if sent_twice(frame) {
                    copies.push(n);
                }
            }
            self.queue.pop_front();
            sent.push(SentFrame::Relay(n));
        }
        // The copies go in the next packet, not this one, whose loss would take both.
        self.queue.extend(copies);
    }
}

impl Connection {
    /// Whether the relay exchange runs on this connection.
    pub(crate) fn relay_on(&self) -> bool {
        self.negotiated.is_some_and(|n| n.relay())
    }

    /// Queues `frame` for the peer; `ApiError::NotNegotiated` if the connection did not
    /// negotiate RELAY, `ApiError::NotEstablished` before its handshake ended or once it is
    /// closing.
    pub(crate) fn send_relay(&mut self, frame: RelayFrame) -> Result<(), ApiError> {
        if !self.is_established() {
            return Err(ApiError::NotEstablished);
        }
        if !self.relay_on() {
            return Err(ApiError::NotNegotiated);
        }
        self.relay.get_or_insert_with(Box::default).push(frame);
        Ok(())
    }

    /// The next relay frame the peer sent, oldest first.
    pub(crate) fn take_relay(&mut self) -> Option<RelayFrame> {
        self.relay.as_mut()?.inbox.pop_front()
    }

    /// The peer's relay frame: kept for the endpoint, or a violation if RELAY was not
    /// negotiated.
    pub(super) fn on_relay_frame(&mut self, frame: RelayFrame) -> Result<(), ViolationKind> {
        if !self.relay_on() {
            return Err(ViolationKind::Malformed {
                error: DecodeError::UnknownFrameType(frame.frame_type()),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        self.relay.get_or_insert_with(Box::default).inbox.push_back(frame);
        Ok(())
    }

    /// Whether relay frames wait to be sent.
    pub(super) fn relay_queued(&self) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|l| l.queue.iter().any(|n| l.owed.contains_key(n)))
    }

    /// Adds the waiting relay frames that fit to the packet being written.
    pub(super) fn fill_relay(&mut self, w: &mut PacketWriter<'_>, sent: &mut SentFrames) {
        if let Some(link) = self.relay.as_mut() {
            link.fill(w, sent);
        }
    }

    /// The packet carrying relay frame `n` was acknowledged.
    pub(super) fn on_relay_acked(&mut self, n: u32) {
        if let Some(link) = self.relay.as_mut() {
            link.owed.remove(&n);
        }
    }

    /// The packet carrying relay frame `n` was lost: it goes again.
    pub(super) fn on_relay_lost(&mut self, n: u32) {
        if let Some(link) = self.relay.as_mut().filter(|l| l.owed.contains_key(&n)) {
            link.queue.push_back(n);
        }
    }
}

impl Connection {
    /// The circuit this connection waited for was refused, or its relay left: the
    /// handshake fails with why.
    pub(crate) fn circuit_refused(&mut self, why: crate::RelayRefusal) {
        self.fail_handshake(HandshakeError::Relay(why));
    }

    /// A connection of ours whose path is a circuit not open yet: its HELLO waits.
    pub(crate) fn await_circuit(&mut self) {
        if let HandshakeState::Client(c) = &mut self.handshake {
            c.hold();
        }
    }

    /// The circuit this connection waited for opened: its peer is at `remote` (the circuit's
    /// address), and the HELLO goes now.
    pub(crate) fn circuit_open(&mut self, now: Instant, remote: SocketAddr) {
        self.remote = remote;
        if let HandshakeState::Client(c) = &mut self.handshake {
            c.resume(now);
        }
    }

    /// The circuit this connection runs through ended while it was the only path: the
    /// connection ends without a word (there is no way left to say one).
    pub(crate) fn circuit_ended(&mut self, why: crate::RelayRefusal) {
        if self.state == State::Handshaking {
            return self.circuit_refused(why);
        }
        if self.is_open() {
            self.close_silently(CloseReason::Relay(why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Candidates, ConnectionId, Header, KeyPhase, PacketNumberLen, VERSION_2};
    use alloc::vec::Vec;

    /// The relay frames one packet of `size` bytes takes from `link`, by number.
    fn packet(link: &mut RelayLink, size: usize) -> Vec<u32> {
        let header = Header {
            version: VERSION_2,
            kind: PacketKind::Data,
            dcid: ConnectionId::from_u64(7),
            number: 0,
            number_len: PacketNumberLen::One,
            timestamp: 0,
            key_phase: KeyPhase::Zero,
        };
        let mut buf = alloc::vec![0u8; size];
        let mut w = PacketWriter::new(&mut buf, &header).unwrap();
        let mut sent = SentFrames::new();
        link.fill(&mut w, &mut sent);
        sent.iter()
            .map(|f| match f {
                SentFrame::Relay(n) => *n,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// PUNCH_CANDIDATES and PUNCH_NOW go twice, the copy in the next packet (a lost packet
    /// would take both); other relay frames once; a retransmission is not copied again.
    #[test]
    fn punch_coordination_goes_twice_in_two_packets() {
        let mut link = RelayLink::default();
        let candidates = RelayFrame::Candidates {
            round: 1,
            addresses: Box::new(Candidates::new(&["192.0.2.1:9".parse().unwrap()])),
        };
        link.push(RelayFrame::Reserve { request: 1 });
        link.push(candidates);
        assert_eq!(packet(&mut link, 1200), [0, 1]);
        assert_eq!(packet(&mut link, 1200), [1], "the copy, alone");
        assert_eq!(packet(&mut link, 1200), Vec::<u32>::new());
        // Lost: sent again, once.
        link.queue.push_back(1);
        assert_eq!(packet(&mut link, 1200), [1]);
        assert_eq!(packet(&mut link, 1200), Vec::<u32>::new());
    }

    /// A frame queued again as lost, then acknowledged after all (the loss was spurious),
    /// is skipped: the frames behind it still go.
    #[test]
    fn a_frame_acknowledged_after_it_was_queued_again_holds_nothing_back() {
        let mut link = RelayLink::default();
        link.push(RelayFrame::Reserve { request: 1 });
        assert_eq!(packet(&mut link, 1200), [0]);
        link.queue.push_back(0);
        link.owed.remove(&0);
        link.push(RelayFrame::PunchNow { round: 1 });
        assert_eq!(packet(&mut link, 1200), [1]);
    }
}
