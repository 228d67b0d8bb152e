//! What a connection says as it ends (spec/protocol.md §7, Close): the CLOSE it sends (kept
//! while it lingers, then sent, and sent again once per packet received while closing), and
//! whether the application was told of the end. An owned part of the connection: it keeps
//! these and answers with the frame to send or the report to make; the lifecycle steps and
//! timers stay with the connection (module `close`).

use alloc::boxed::Box;

use crate::wire::{Close, Frame};

/// The close of one connection.
#[derive(Debug, Default)]
pub(super) struct Closing {
    /// The CLOSE to send: the application's, kept while its close lingers, or the one being
    /// sent. Boxed: set only while closing, and a `Close` is large.
    frame: Option<Box<Close>>,
    /// `frame` is to go in the next datagram.
    pending: bool,
    /// `Event::Closed` was reported (once per connection, whatever else ends it after).
    reported: bool,
}

impl Closing {
    /// Whether the end is to be reported now: the first time only.
    pub(super) fn report(&mut self) -> bool {
        !core::mem::replace(&mut self.reported, true)
    }

    /// The application's close, kept until its linger ends ([`take_kept`](Self::take_kept)).
    pub(super) fn keep(&mut self, close: Close) {
        self.frame = Some(Box::new(close));
    }

    /// The close kept while lingering, if any.
    pub(super) fn take_kept(&mut self) -> Option<Close> {
        self.frame.take().map(|c| *c)
    }

    /// `close` goes out in the next datagram, and again when asked ([`again`](Self::again)).
    pub(super) fn send(&mut self, close: Close) {
        self.frame = Some(Box::new(close));
        self.pending = true;
    }

    /// The peer has not seen our CLOSE (it sent a packet while we close): send it again.
    pub(super) fn again(&mut self) {
        self.pending = true;
    }

    /// The CLOSE frame to send now, if one is due.
    pub(super) fn next_frame(&mut self) -> Option<Frame> {
        if !self.pending {
            return None;
        }
        let frame = Frame::Close(Close::clone(self.frame.as_deref()?));
        self.pending = false;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CloseCode, Reason};

    fn close(code: u64) -> Close {
        Close {
            code: CloseCode::Application(code),
            reason: Reason::default(),
        }
    }

    #[test]
    fn the_end_is_reported_once() {
        let mut c = Closing::default();
        assert!(c.report());
        assert!(!c.report());
    }

    #[test]
    fn a_close_goes_once_then_again_when_the_peer_shows_it_missed_it() {
        let mut c = Closing::default();
        assert!(c.next_frame().is_none(), "nothing to send before a close");
        c.keep(close(7));
        assert!(c.next_frame().is_none(), "kept while lingering, not sent");
        let kept = c.take_kept().expect("kept");
        c.send(kept);
        assert!(matches!(
            c.next_frame(),
            Some(Frame::Close(Close {
                code: CloseCode::Application(7),
                ..
            }))
        ));
        assert!(c.next_frame().is_none(), "once");
        c.again();
        assert!(c.next_frame().is_some(), "again, once");
        assert!(c.next_frame().is_none());
    }
}
