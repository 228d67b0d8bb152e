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
    /// Frames the peer sent, for the endpoint.
    inbox: VecDeque<RelayFrame>,
}

impl RelayLink {
    fn next_to_send(&self) -> Option<(u32, RelayFrame)> {
        let n = *self.queue.front()?;
        Some((n, *self.owed.get(&n)?))
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
        let link = self.relay.get_or_insert_with(Box::default);
        let n = link.next;
        link.next = link.next.wrapping_add(1);
        link.owed.insert(n, frame);
        link.queue.push_back(n);
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
                error: DecodeError::UnknownFrameType(frame_type_of(&frame)),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        self.relay.get_or_insert_with(Box::default).inbox.push_back(frame);
        Ok(())
    }

    /// Whether relay frames wait to be sent.
    pub(super) fn relay_queued(&self) -> bool {
        self.relay.as_ref().is_some_and(|l| !l.queue.is_empty())
    }

    /// Adds the waiting relay frames that fit to the packet being written.
    pub(super) fn fill_relay(&mut self, w: &mut PacketWriter<'_>, sent: &mut SmallVec<[SentFrame; 2]>) {
        let Some(link) = self.relay.as_mut() else {
            return;
        };
        while let Some((n, frame)) = link.next_to_send() {
            if w.push(&Frame::Relay(frame)).is_err() {
                break;
            }
            link.queue.pop_front();
            sent.push(SentFrame::Relay(n));
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

fn frame_type_of(frame: &RelayFrame) -> u64 {
    Frame::Relay(*frame).frame_type()
}
