//! Requests and replies (spec/protocol.md §8, Requests): a request is a stream labelled
//! `weir/rq/<service>` that announces its length and stays open (no FIN) until the exchange
//! is over; its reply is a stream the other way labelled `weir/re/<request id>`. The
//! requester ends its request once it read the reply whole, or resets it with
//! `REQUEST_CANCELLED` when it gives up, which the responder sees; the responder stops the
//! request with `REQUEST_REFUSED` (or its own code) to refuse it.
//!
//! What the driver keeps per connection ([`Requests`]): the requests we sent and the reply
//! each one got, and the requests the peer sent: their bodies as they arrive (read here, as
//! the core's events say bytes came, so their credit goes back at once), whole ones waiting
//! for `accept_request`, and those being answered, watched for the requester's cancel.
//! Inputs: the core's `StreamOpened`, `StreamReadable` and `StreamReset` events, and the
//! handles' calls. Outputs: answers to those calls, stops of replies nobody waits for.
//!
//! Memory: a request's body is gathered up to [`REQUEST_LIMIT`], like
//! a message; the peer's concurrent streams bound how many are held at once.

use std::collections::{BTreeMap, VecDeque};
use std::task::{Poll, Waker};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::Bytes;
use weir_core::wire::request::{StreamRole, REQUEST_CANCELLED, REQUEST_REFUSED};
use weir_core::wire::varint;
use weir_core::wire::{Label, StreamId};
use weir_core::{ConnectionHandle, Read, StreamHeader};

use super::conn::Confirming;
use super::{Driver, Wait};
use crate::{Error, RequestError, REQUEST_LIMIT};

/// A connection's requests, both ways.
#[derive(Default)]
pub(super) struct Requests {
    /// Requests we sent that wait for their reply.
    waiting: BTreeMap<StreamId, Awaiting>,
    /// Requests the peer sent, by their stream, until they are over.
    served: BTreeMap<StreamId, Served>,
    /// Requests whose body is whole and that no `accept_request` took yet, in the order
    /// they became so.
    ready: VecDeque<StreamId>,
}

/// A request of ours waiting for its reply.
#[derive(Default)]
struct Awaiting {
    /// The reply's stream, once it opened.
    reply: Option<(StreamId, StreamHeader)>,
    /// When it stops waiting for the reply to begin, if ever.
    deadline: Option<StdInstant>,
    /// That time passed first.
    expired: bool,
}

/// A request the peer sent.
struct Served {
    service: Label,
    /// The body's length prefix (a varint) as it arrives, and how much of it did.
    prefix: [u8; 8],
    prefix_len: usize,
    /// The body's length, once its prefix arrived whole.
    total: Option<u64>,
    /// The body's pieces as they came, and their length.
    body: Vec<Bytes>,
    len: u64,
    phase: Phase,
    /// The requester ended the request before it was taken (a requester that does not
    /// wait with its end; this one does): it can no longer be cancelled.
    ended_early: bool,
    /// Its responder answered and let go: only its end is still read, for no one.
    answered: bool,
}

/// Where a request the peer sent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Its body is arriving.
    Arriving,
    /// Whole, waiting for `accept_request`.
    Ready,
    /// The application took it and answers it (or already did); the request stream is
    /// still read for its end.
    Taken,
    /// The requester gave up with this code while it was being answered.
    Cancelled(u64),
    /// The requester ended it: nothing more will come.
    Ended,
}

/// A request of the peer's, whole, handed to the application.
pub(crate) struct Accepted {
    pub(crate) stream: StreamId,
    pub(crate) service: Label,
    pub(crate) body: Bytes,
}

impl Driver {
    /// The peer opened `stream` with `header`: a request is read as it arrives, a reply goes
    /// to the request waiting for it (a reply nobody waits for, or a malformed one, is
    /// stopped at once). Plain streams are not the request layer's.
    pub(super) fn stream_opened(&mut self, conn: ConnectionHandle, stream: StreamId, header: &StreamHeader) {
        match StreamRole::of(header.label.as_ref()) {
            StreamRole::Plain => {}
            StreamRole::Request(service) => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.requests.served.insert(
                    stream,
                    Served {
                        service,
                        prefix: [0; 8],
                        prefix_len: 0,
                        total: None,
                        body: Vec::new(),
                        len: 0,
                        phase: Phase::Arriving,
                        ended_early: false,
                        answered: false,
                    },
                );
                self.pump_request(conn, stream);
            }
            StreamRole::Reply(request) => {
                let awaited = self.conns.get_mut(&conn).and_then(|c| {
                    let slot = c.requests.waiting.get_mut(&request);
                    let slot = slot.filter(|s| s.reply.is_none() && !s.expired)?;
                    slot.reply = Some((stream, header.clone()));
                    Some(())
                });
                if awaited.is_some() {
                    self.dirty.push((conn, Some(request)));
                } else {
                    let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, REQUEST_CANCELLED));
                }
            }
            StreamRole::Malformed => {
                let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, REQUEST_REFUSED));
            }
        }
    }

    /// Reads what arrived of the peer's request `stream`: its length and body while they
    /// arrive, its end or reset after.
    pub(super) fn pump_request(&mut self, conn: ConnectionHandle, stream: StreamId) {
        loop {
            let Some(s) = self.served(conn, stream) else {
                return;
            };
            let phase = s.phase;
            if matches!(phase, Phase::Cancelled(_) | Phase::Ended) {
                return;
            }
            // Exactly what the prefix or the body still lacks: a read never takes bytes
            // past the body (there are none; a misbehaving peer's are dropped below).
            let want = match s.total {
                None if s.prefix_len == 0 => 1,
                None => varint::len_of(s.prefix[0]) - s.prefix_len,
                Some(total) => (total - s.len).clamp(1, usize::MAX as u64) as usize,
            };
            let read = self.on_conn(conn, |ep, h| ep.read(h, stream, want));
            let over = match read {
                Ok(Read::Data { bytes, .. }) if phase == Phase::Arriving => {
                    if self.request_arrived(conn, stream, bytes).is_err() {
                        // A length over what we gather, or not in its shortest form.
                        let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, REQUEST_REFUSED));
                        self.request_over(conn, stream, phase, None);
                        return;
                    }
                    continue;
                }
                Ok(Read::Data { .. }) => continue,
                Ok(Read::Pending) => return,
                Ok(Read::Reset { code }) => Phase::Cancelled(code),
                Ok(_) | Err(_) => Phase::Ended,
            };
            if phase == Phase::Ready && over == Phase::Ended {
                if let Some(s) = self.served_mut(conn, stream) {
                    s.ended_early = true;
                    s.phase = Phase::Ended;
                }
                return;
            }
            self.request_over(conn, stream, phase, Some(over));
            return;
        }
    }

    /// `bytes` of the peer's request `stream` arrived, its length prefix's or its body's;
    /// once the body is whole, the request waits for `accept_request`. Fails on a length
    /// over [`REQUEST_LIMIT`] or not in its shortest form.
    fn request_arrived(&mut self, conn: ConnectionHandle, stream: StreamId, bytes: Bytes) -> Result<(), ()> {
        let Some(s) = self.served_mut(conn, stream) else {
            return Ok(());
        };
        if s.total.is_none() {
            let end = s.prefix_len + bytes.len();
            s.prefix[s.prefix_len..end].copy_from_slice(&bytes);
            s.prefix_len = end;
            if s.prefix_len < varint::len_of(s.prefix[0]) {
                return Ok(());
            }
            let (total, _) = varint::decode(&s.prefix[..s.prefix_len]).map_err(|_| ())?;
            if total > REQUEST_LIMIT {
                return Err(());
            }
            s.total = Some(total);
        } else {
            s.len += bytes.len() as u64;
            s.body.push(bytes);
        }
        if s.total == Some(s.len) {
            s.phase = Phase::Ready;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.requests.ready.push_back(stream);
            }
            self.dirty.push((conn, None));
        }
        Ok(())
    }

    /// The peer's request `stream`, in `phase`, ended (`next`: cancelled or ended, `None`:
    /// let go of): one a responder holds keeps how it ended for it; any other is forgotten
    /// (nobody saw it, or nobody waits on it any more).
    fn request_over(&mut self, conn: ConnectionHandle, stream: StreamId, phase: Phase, next: Option<Phase>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let held = c.requests.served.get_mut(&stream).filter(|s| !s.answered);
        match (phase, next, held) {
            (Phase::Taken, Some(next), Some(s)) => {
                s.phase = next;
                self.dirty.push((conn, Some(stream)));
            }
            _ => {
                c.requests.served.remove(&stream);
                c.requests.ready.retain(|&s| s != stream);
            }
        }
    }

    fn served(&self, conn: ConnectionHandle, stream: StreamId) -> Option<&Served> {
        self.conns.get(&conn)?.requests.served.get(&stream)
    }

    fn served_mut(&mut self, conn: ConnectionHandle, stream: StreamId) -> Option<&mut Served> {
        self.conns.get_mut(&conn)?.requests.served.get_mut(&stream)
    }

    // ------------------------------------------------------------ the requester's calls

    /// Our request `stream` (its body being written, not ended) waits for its reply from
    /// now on, for `timeout` if given; a stop of it is kept for
    /// [`poll_reply`](Self::poll_reply).
    pub(crate) fn await_reply(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        timeout: Option<StdDuration>,
    ) {
        let deadline = timeout.map(|t| self.wall() + t);
        if let Some(c) = self.conns.get_mut(&conn) {
            let awaiting = Awaiting {
                deadline,
                ..Awaiting::default()
            };
            c.requests.waiting.insert(stream, awaiting);
            c.confirming.entry(stream).or_insert(Confirming::Sent);
            if let Some(at) = deadline {
                self.request_deadlines.insert((at, conn, stream));
            }
        }
    }

    /// The reply to our request `stream` once it opened, or why none will come: the
    /// responder refused it (stopped the request), its time ran out, the connection ended.
    pub(crate) fn poll_reply(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        waker: &Waker,
    ) -> Poll<Result<(StreamId, StreamHeader), Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => self.conns.get(&conn).and_then(|c| {
                let awaiting = c.requests.waiting.get(&stream);
                if let Some(reply) = awaiting.and_then(|a| a.reply.clone()) {
                    return Some(Ok(reply));
                }
                if let Some(&Confirming::Stopped(code)) = c.confirming.get(&stream) {
                    return Some(Err(Error::Request(RequestError::Refused { code })));
                }
                if awaiting.is_some_and(|a| a.expired) {
                    return Some(Err(Error::Request(RequestError::TimedOut)));
                }
                c.ended.as_ref().map(|end| Err(end.error()))
            }),
        };
        self.answer(r, Wait::Conn(conn, Some(stream)), waker)
    }

    /// Our request `stream` is over (its reply read, or given up): nothing is kept of it.
    pub(crate) fn forget_request(&mut self, conn: ConnectionHandle, stream: StreamId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if let Some(at) = c.requests.waiting.remove(&stream).and_then(|a| a.deadline) {
                self.request_deadlines.remove(&(at, conn, stream));
            }
            c.confirming.remove(&stream);
        }
    }

    /// When the next request's wait for its reply runs out.
    pub(super) fn next_request_deadline(&self) -> Option<StdInstant> {
        self.request_deadlines.first().map(|&(at, _, _)| at)
    }

    /// The requests whose wait ran out by `now` fail (their calls are woken to say so).
    pub(super) fn expire_requests(&mut self, now: StdInstant) {
        while let Some(&(at, conn, stream)) = self.request_deadlines.first() {
            if at > now {
                break;
            }
            self.request_deadlines.pop_first();
            let awaiting = self
                .conns
                .get_mut(&conn)
                .and_then(|c| c.requests.waiting.get_mut(&stream));
            if let Some(a) = awaiting.filter(|a| a.reply.is_none()) {
                a.expired = true;
                self.dirty.push((conn, Some(stream)));
            }
        }
    }

    // ------------------------------------------------------------ the responder's calls

    /// The next whole request the peer sent, in the order they became whole.
    pub(crate) fn poll_accept_request(
        &mut self,
        conn: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<Accepted, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => self.take_request(conn).map(Ok).or_else(|| {
                let end = self.conns.get(&conn)?.ended.as_ref()?;
                Some(Err(end.error()))
            }),
        };
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    fn take_request(&mut self, conn: ConnectionHandle) -> Option<Accepted> {
        let c = self.conns.get_mut(&conn)?;
        let stream = c.requests.ready.pop_front()?;
        let s = c.requests.served.get_mut(&stream)?;
        s.phase = if s.ended_early { Phase::Ended } else { Phase::Taken };
        let body = crate::join(std::mem::take(&mut s.body));
        Some(Accepted {
            stream,
            service: s.service.clone(),
            body,
        })
    }

    /// Whether the requester gave up on its request `stream` (with its code), which we
    /// answer; pending while it has not (and, once it ended the request, for good).
    pub(crate) fn poll_cancelled(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        waker: &Waker,
    ) -> Poll<Result<u64, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => self.conns.get(&conn).and_then(|c| {
                if let Some(Phase::Cancelled(code)) = c.requests.served.get(&stream).map(|s| s.phase) {
                    return Some(Ok(code));
                }
                c.ended.as_ref().map(|end| Err(end.error()))
            }),
        };
        self.answer(r, Wait::Conn(conn, Some(stream)), waker)
    }

    /// The code the requester cancelled the peer's request `stream` with, if it did.
    pub(crate) fn cancel_code(&self, conn: ConnectionHandle, stream: StreamId) -> Option<u64> {
        match self.served(conn, stream)?.phase {
            Phase::Cancelled(code) => Some(code),
            _ => None,
        }
    }

    /// The responder of the peer's request `stream` is gone: unanswered (`refuse`: with
    /// this code), the request is stopped; answered, it is still read to its end (the
    /// requester's word that it read the reply), for no one.
    pub(crate) fn release_request(&mut self, conn: ConnectionHandle, stream: StreamId, refuse: Option<u64>) {
        match (self.served(conn, stream).map(|s| s.phase), refuse) {
            (Some(Phase::Taken), Some(code)) => {
                let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, code));
                self.request_over(conn, stream, Phase::Taken, None);
            }
            (Some(Phase::Taken), None) => {
                if let Some(s) = self.served_mut(conn, stream) {
                    s.answered = true;
                }
            }
            (Some(_), _) => self.request_over(conn, stream, Phase::Taken, None),
            (None, _) => {}
        }
        self.progress();
    }
}
