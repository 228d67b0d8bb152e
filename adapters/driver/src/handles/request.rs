//! Request/response (spec/protocol.md §8, Requests): ask a peer and wait for its answer, or
//! answer what it asks. A request is a stream of its own, labelled for its service, that
//! the requester keeps open until it has read the reply (a stream the other way, labelled
//! with the request's id); giving up resets it, which the responder sees
//! ([`Responder::cancelled`]). The driver's module `requests` matches replies to requests
//! and gathers the peer's requests whole.
//!
//! Concurrency: each request in flight is a stream the requester opened and has not ended,
//! so the peer's limit on concurrent streams (`Config::initial_concurrent_streams`, its
//! side, grown by auto-tuning up to `Config::max_concurrent_streams`) bounds how many
//! requests one peer may have outstanding with us, and ours with it; a request beyond it
//! waits to open. Copies: the request's and the reply's bytes go out as
//! the caller's `Bytes`; a body that arrived in one piece is handed over as a slice of it,
//! one in several pieces is joined (one copy).

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use weir_core::wire::request::{self, REQUEST_CANCELLED, REQUEST_REFUSED};
use weir_core::wire::varint;
use weir_core::wire::{Label, StreamId};
use weir_core::{PublicKey, StreamHeader};

use super::endpoint::Urgency;
use super::{Connection, RecvStream, SendStream};
use crate::{Confirm, Error, RequestError, DEFAULT_MESSAGE_LIMIT};

/// How a request waits for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    /// How long to wait, from the moment the request's stream opened, for the reply to
    /// begin; past it the request is cancelled (the responder sees it) and fails with
    /// [`RequestError::TimedOut`]. `None` waits for as long as the connection lives.
    /// Default 30 s.
    pub timeout: Option<Duration>,
    /// The longest reply [`Connection::request_with`] reads whole; a longer one is refused
    /// (`Error::Refused(ApiError::MessageTooLong)`). Default [`DEFAULT_MESSAGE_LIMIT`].
    pub reply_limit: u64,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            timeout: Some(Duration::from_secs(30)),
            reply_limit: DEFAULT_MESSAGE_LIMIT,
        }
    }
}

/// A request of ours in flight: its stream, open until the reply was read. Dropped before
/// that, it cancels the request (resets its stream with `REQUEST_CANCELLED`).
struct Outstanding {
    stream: Option<SendStream>,
}

impl Outstanding {
    /// The reply was read whole: the request ends normally (its responder learns the
    /// exchange is over) and nothing more is kept of it.
    fn complete(&mut self) {
        if let Some(stream) = self.stream.take() {
            let (conn, id) = (stream.connection().clone(), stream.id());
            let _ = conn.shared().call(|d| d.forget_request(conn.id(), id));
            // Ends it at once: the finish's confirmation is not awaited.
            drop(stream);
        }
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            let (conn, id) = (stream.connection().clone(), stream.id());
            let _ = conn.shared().call(|d| d.forget_request(conn.id(), id));
            let _ = stream.reset(REQUEST_CANCELLED);
        }
    }
}

/// The reply to a request, read as a stream ([`Connection::request_streamed`]): the
/// request is over once this is read to its end; dropped before, it is cancelled.
pub struct Reply {
    stream: RecvStream,
    request: Outstanding,
}

impl Reply {
    /// The next bytes of the reply (at most `max`), `None` at its end (which ends the
    /// request).
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        let chunk = self.stream.read_chunk(max).await?;
        if chunk.is_none() {
            self.request.complete();
        }
        Ok(chunk)
    }

    /// The whole reply, refused past `limit` bytes.
    pub async fn read_to_end(&mut self, limit: u64) -> Result<Bytes, Error> {
        let body = self.stream.read_to_end(limit).await?;
        self.request.complete();
        Ok(body)
    }

    /// The reply's length, if the responder announced it (a reply sent whole does).
    pub fn total_len(&self) -> Option<u64> {
        self.stream.total_len()
    }
}

/// A request the peer sent, whole ([`Connection::accept_request`]).
#[derive(Clone, Debug)]
pub struct Request {
    service: Label,
    body: Bytes,
    peer: Option<PublicKey>,
    id: StreamId,
}

impl Request {
    /// The service the request is for.
    pub fn service(&self) -> &Label {
        &self.service
    }

    /// The request's bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The request's bytes, taken.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Who asked: the peer's key (`None` on an unprotected connection).
    pub fn peer(&self) -> Option<PublicKey> {
        self.peer
    }

    /// The request's stream on its connection.
    pub fn id(&self) -> StreamId {
        self.id
    }
}

/// The one answer to a [`Request`]: a reply, sent whole ([`reply`](Self::reply)) or as a
/// stream ([`reply_stream`](Self::reply_stream)), or a refusal. Dropped unanswered, it
/// refuses the request with `REQUEST_REFUSED`.
pub struct Responder {
    conn: Connection,
    request: StreamId,
    answered: bool,
}

impl Responder {
    /// Sends `body` as the reply; ready once the requester read it all
    /// ([`Confirm::Delivered`]). Fails with [`RequestError::Cancelled`] if the requester
    /// gave up first.
    pub async fn reply(self, body: Bytes) -> Result<(), Error> {
        self.reply_with(body, Confirm::Delivered).await
    }

    /// [`reply`](Self::reply), ready once the reply got as far as `confirm` says.
    pub async fn reply_with(self, body: Bytes, confirm: Confirm) -> Result<(), Error> {
        let len = body.len() as u64;
        let mut stream = self.open_reply(Some(len)).await?;
        let sent = async {
            stream.write_all_chunk(body).await?;
            stream.finish_with(confirm).await
        };
        sent.await.map_err(cancelled)
    }

    /// Opens the reply as a stream to write (no length announced): the requester reads it
    /// as it comes. Fails with [`RequestError::Cancelled`] if the requester gave up.
    pub async fn reply_stream(self) -> Result<SendStream, Error> {
        self.open_reply(None).await
    }

    async fn open_reply(mut self, total_len: Option<u64>) -> Result<SendStream, Error> {
        if let Some(code) = self.cancel_code() {
            return Err(Error::Request(RequestError::Cancelled { code }));
        }
        let mut header = StreamHeader::default();
        header.label = Some(request::reply_label(self.request));
        header.total_len = total_len;
        let stream = self.conn.open_stream_with(header).await?;
        self.answered = true;
        Ok(stream)
    }

    /// Refuses the request: the requester's call fails with [`RequestError::Refused`] and
    /// `code`.
    pub fn refuse(mut self, code: u64) {
        self.answered = true;
        let (conn, id) = (self.conn.id(), self.request);
        let _ = self
            .conn
            .shared()
            .call(|d| d.release_request(conn, id, Some(code)));
    }

    /// Waits until the requester gives up on the request (dropped its call, or its timeout
    /// passed) and returns the code it reset the request with (`REQUEST_CANCELLED`). Never
    /// ready if it does not; fails with the connection's end.
    pub async fn cancelled(&self) -> Result<u64, Error> {
        let (conn, id) = (self.conn.id(), self.request);
        poll_fn(|cx| {
            self.conn
                .shared()
                .poll(Urgency::Soon, |d| d.poll_cancelled(conn, id, cx.waker()))
        })
        .await
    }

    /// Whether the requester already gave up, and with what code.
    fn cancel_code(&self) -> Option<u64> {
        let (conn, id) = (self.conn.id(), self.request);
        self.conn
            .shared()
            .call(|d| d.cancel_code(conn, id))
            .ok()
            .flatten()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let refuse = (!self.answered).then_some(REQUEST_REFUSED);
        let (conn, id) = (self.conn.id(), self.request);
        let _ = self.conn.shared().call(|d| d.release_request(conn, id, refuse));
    }
}

/// A stop of the reply with `REQUEST_CANCELLED` is the requester's cancel.
fn cancelled(e: Error) -> Error {
    match e {
        Error::Stopped { code } if code == REQUEST_CANCELLED => {
            Error::Request(RequestError::Cancelled { code })
        }
        e => e,
    }
}

impl Connection {
    /// Asks the peer's `service` with `body` and returns its reply, read whole
    /// ([`RequestOptions::default`]: a 30 s wait for the reply to begin). Fails with
    /// [`RequestError::Refused`] if the responder refused it, [`RequestError::TimedOut`],
    /// or the connection's end ([`Error::Closed`]: the peer is gone). Dropping the future
    /// cancels the request, and the responder sees it.
    pub async fn request(&self, service: &Label, body: Bytes) -> Result<Bytes, Error> {
        self.request_with(service, body, RequestOptions::default()).await
    }

    /// [`request`](Self::request) with `options`.
    pub async fn request_with(
        &self,
        service: &Label,
        body: Bytes,
        options: RequestOptions,
    ) -> Result<Bytes, Error> {
        let mut reply = self.request_streamed(service, body, options.timeout).await?;
        reply.read_to_end(options.reply_limit).await
    }

    /// [`request`](Self::request), the reply to be read as a stream: ready once the reply
    /// began (within `timeout` of the request's stream opening, if given).
    pub async fn request_streamed(
        &self,
        service: &Label,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        let label =
            request::request_label(service).map_err(|_| Error::Request(RequestError::ServiceTooLong))?;
        // The body's length goes in front of it (a varint), not as the stream's total
        // length: that would end the stream with the body, and the request stays open
        // until its reply was read, so that giving up can still reset it.
        let mut prefix = [0u8; 8];
        let n = varint::encode(body.len() as u64, &mut prefix)
            .ok_or(Error::Refused(weir_core::ApiError::MessageTooLong))?;
        let stream = self.open_stream(Some(label)).await?;
        let id = stream.id();
        let mut request = Outstanding { stream: Some(stream) };
        let conn = self.id();
        self.shared().call(|d| d.await_reply(conn, id, timeout))?;
        if let Some(stream) = request.stream.as_mut() {
            // A stop while the body goes out is the responder's refusal (of a request too
            // long for it, say).
            let written = async {
                stream
                    .write_all_chunk(Bytes::copy_from_slice(&prefix[..n]))
                    .await?;
                stream.write_all_chunk(body).await
            };
            written.await.map_err(|e| match e {
                Error::Stopped { code } => Error::Request(RequestError::Refused { code }),
                e => e,
            })?;
        }
        let (reply, header) = poll_fn(|cx| {
            self.shared()
                .poll(Urgency::Soon, |d| d.poll_reply(conn, id, cx.waker()))
        })
        .await?;
        Ok(Reply {
            stream: RecvStream::new(self.clone(), reply, header),
            request,
        })
    }

    /// The next request the peer sent, whole, in the order they became whole, with its
    /// [`Responder`]. Cancel-safe: a request is taken only when this is ready.
    pub async fn accept_request(&self) -> Result<(Request, Responder), Error> {
        let conn = self.id();
        let accepted = poll_fn(|cx| {
            self.shared()
                .poll(Urgency::Soon, |d| d.poll_accept_request(conn, cx.waker()))
        })
        .await?;
        let request = Request {
            service: accepted.service,
            body: accepted.body,
            peer: self.peer_key(),
            id: accepted.stream,
        };
        let responder = Responder {
            conn: self.clone(),
            request: accepted.stream,
            answered: false,
        };
        Ok((request, responder))
    }
}
