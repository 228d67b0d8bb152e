//! libp2p's `StreamMuxer` over one weir connection (spec/protocol.md §8, libp2p binding):
//! pairs the connection's one-way weir streams into two-way substreams.
//!
//! Inputs: the swarm's polls (`poll_outbound`, `poll_inbound`, `poll`, `poll_close`) and the
//! streams the peer opens. Outputs: [`Substream`]s.
//!
//! An outbound substream is our stream `libp2p/o/<n>` (n counts our outbound substreams
//! from 0) and the peer's answer `libp2p/a/<n>`, which arrives later: until it does, the
//! substream's reads wait on a slot in [`Routes`]. An inbound substream is the peer's
//! `libp2p/o/<n>` and our answer `libp2p/a/<n>`, opened before the substream is handed out.
//! Every poll of the muxer takes the streams the peer opened: openers queue for
//! `poll_inbound`, answers go to their slot, and anything else (an answer nobody waits for,
//! a stream not of the binding) is stopped with [`SUBSTREAM_RESET`]. What the peer can make
//! us hold is bounded by the weir streams it may have open at once (the connection's
//! concurrent-stream limit).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use bytes::Bytes;
use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};
use weir_tokio::{Connection, Label, Path, RecvStream, StreamHeader};

use crate::{addr, Error, Substream, SUBSTREAM_RESET};

/// Which half of a substream a weir stream is, by its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Half {
    /// `libp2p/o/<n>`: the opener's.
    Opener(u64),
    /// `libp2p/a/<n>`: the answer to the peer's opener `n`.
    Answer(u64),
}

impl Half {
    fn parse(label: Option<&Label>) -> Option<Half> {
        let rest = label?.as_str().strip_prefix("libp2p/")?;
        let (kind, n) = rest.split_once('/')?;
        // Digits only, no sign or leading zero: one label per number.
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
            return None;
        }
        let n = n.parse().ok()?;
        match kind {
            "o" => Some(Half::Opener(n)),
            "a" => Some(Half::Answer(n)),
            _ => None,
        }
    }

    fn header(self) -> StreamHeader {
        let text = match self {
            Half::Opener(n) => format!("libp2p/o/{n}"),
            Half::Answer(n) => format!("libp2p/a/{n}"),
        };
        let mut header = StreamHeader::default();
        header.label = Some(Label::new(Bytes::from(text)).expect("a label under 128 bytes"));
        header
    }
}

/// The answers our outbound substreams wait for, shared between the muxer (which takes them
/// from the connection) and the substreams (which read them).
#[derive(Default)]
pub(crate) struct Routes {
    slots: BTreeMap<u64, Slot>,
    /// The muxer is gone or the connection ended: no answer will come.
    ended: bool,
}

enum Slot {
    Waiting(Option<Waker>),
    Arrived(RecvStream),
}

/// What a read of an outbound substream's answer found.
pub(crate) enum Answer {
    Arrived(RecvStream),
    Waiting,
    /// It will never come: the connection ended.
    Never,
}

pub(crate) type SharedRoutes = Arc<Mutex<Routes>>;

pub(crate) fn lock(routes: &SharedRoutes) -> MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Routes {
    /// The answer to outbound substream `n`, if it arrived; else registers `waker`.
    pub(crate) fn take(&mut self, n: u64, waker: &Waker) -> Answer {
        match self.slots.remove(&n) {
            Some(Slot::Arrived(stream)) => Answer::Arrived(stream),
            Some(Slot::Waiting(_)) if !self.ended => {
                self.slots.insert(n, Slot::Waiting(Some(waker.clone())));
                Answer::Waiting
            }
            _ => Answer::Never,
        }
    }

    /// Outbound substream `n` no longer waits (it was dropped).
    pub(crate) fn forget(&mut self, n: u64) {
        self.slots.remove(&n);
    }

    fn end(&mut self) {
        self.ended = true;
        for slot in self.slots.values_mut() {
            if let Slot::Waiting(Some(waker)) = slot {
                waker.wake_by_ref();
            }
        }
    }
}

/// One weir connection as a libp2p muxer: see the module documentation. Dropping it ends the
/// outbound substreams' wait for answers; the connection itself closes once its last handle
/// (this, and every substream) is gone.
pub struct Muxer {
    conn: Connection,
    routes: SharedRoutes,
    next_outbound: u64,
    /// The peer's openers, waiting for `poll_inbound`.
    inbound: VecDeque<(u64, RecvStream)>,
    closed: bool,
}

impl Muxer {
    /// The muxer of `conn`, whose peer already opened `early` streams.
    pub(crate) fn new(conn: Connection, early: Vec<RecvStream>) -> Muxer {
        let mut muxer = Muxer {
            conn,
            routes: SharedRoutes::default(),
            next_outbound: 0,
            inbound: VecDeque::new(),
            closed: false,
        };
        for stream in early {
            muxer.route(stream);
        }
        muxer
    }

    /// The weir connection under the muxer: its statistics, path, peer key.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Takes every stream the peer opened and routes it; fails with the connection's end.
    fn take_streams(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        loop {
            let stream = match self.conn.poll_accept_stream(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(stream)) => stream,
                Poll::Ready(Err(e)) => {
                    lock(&self.routes).end();
                    return Err(e.into());
                }
            };
            self.route(stream);
        }
    }

    /// Queues a peer's opener for `poll_inbound`, gives an answer to the substream waiting
    /// for it, and stops anything else.
    fn route(&mut self, stream: RecvStream) {
        match Half::parse(stream.label()) {
            Some(Half::Opener(n)) => self.inbound.push_back((n, stream)),
            Some(Half::Answer(n)) => {
                let mut routes = lock(&self.routes);
                match routes.slots.get_mut(&n) {
                    Some(slot @ Slot::Waiting(_)) => {
                        if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, Slot::Arrived(stream)) {
                            waker.wake();
                        }
                    }
                    _ => {
                        let _ = stream.stop(SUBSTREAM_RESET);
                    }
                }
            }
            None => {
                tracing::debug!(label = ?stream.label(), "stopping a stream that is not a libp2p substream's");
                let _ = stream.stop(SUBSTREAM_RESET);
            }
        }
    }
}

impl StreamMuxer for Muxer {
    type Substream = Substream;
    type Error = Error;

    fn poll_inbound(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Substream, Error>> {
        self.take_streams(cx)?;
        let Some(&(n, _)) = self.inbound.front() else {
            return Poll::Pending;
        };
        let answer = ready!(self.conn.poll_open_stream(cx, &Half::Answer(n).header()))?;
        let (_, opener) = self.inbound.pop_front().expect("the front was there");
        Poll::Ready(Ok(Substream::inbound(answer, opener)))
    }

    fn poll_outbound(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Substream, Error>> {
        let n = self.next_outbound;
        let opener = ready!(self.conn.poll_open_stream(cx, &Half::Opener(n).header()))?;
        self.next_outbound += 1;
        lock(&self.routes).slots.insert(n, Slot::Waiting(None));
        Poll::Ready(Ok(Substream::outbound(opener, n, Arc::clone(&self.routes))))
    }

    /// Closes the connection with code 0 at once (as QUIC's close does, what is not yet
    /// acknowledged is not sent; a substream's `close` waits for its acknowledgement).
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.closed {
            // `close` asks the driver at once and has nothing to wait for: its first poll
            // is its last.
            let close = self.conn.close(0, "libp2p connection closed");
            let _ = ready!(std::pin::pin!(close).poll(cx));
            self.closed = true;
            lock(&self.routes).end();
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the streams the peer opened (so that answers reach the substreams waiting for
    /// them even while the swarm takes no inbound substream), and reports the peer's new
    /// address when weir moves the connection to another direct path (a NAT rebinding, a
    /// hole punch); fails with the connection's end.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Error>> {
        if self.closed {
            return Poll::Pending;
        }
        self.take_streams(cx)?;
        // A move to a relay's circuit has no address of the peer's to report; the end of the
        // connection is the accept's to report.
        while let Poll::Ready(Ok(path)) = self.conn.poll_path_changed(cx) {
            if let Path::Direct(remote) = path {
                return Poll::Ready(Ok(StreamMuxerEvent::AddressChange(addr::to_multiaddr(remote))));
            }
        }
        Poll::Pending
    }
}

impl Drop for Muxer {
    fn drop(&mut self) {
        lock(&self.routes).end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(text: &'static str) -> Label {
        Label::from_static(text).unwrap()
    }

    #[test]
    fn labels_name_one_half_each() {
        assert_eq!(Half::parse(Some(&label("libp2p/o/0"))), Some(Half::Opener(0)));
        assert_eq!(Half::parse(Some(&label("libp2p/a/42"))), Some(Half::Answer(42)));
        for other in [
            "libp2p/id",
            "libp2p/o/",
            "libp2p/o/01",
            "libp2p/o/+1",
            "libp2p/x/1",
            "weir/rq/x",
            "libp2p/o/99999999999999999999999",
        ] {
            assert_eq!(Half::parse(Some(&label(other))), None, "{other}");
        }
        assert_eq!(Half::parse(None), None);
        for half in [Half::Opener(7), Half::Answer(123456)] {
            assert_eq!(Half::parse(half.header().label.as_ref()), Some(half));
        }
    }
}
