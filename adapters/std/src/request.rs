//! Request/response with blocking calls: weir-driver's `Connection::request` and
//! `accept_request`, `Reply` and `Responder` (spec/protocol.md §8, Requests), each call run
//! to completion on the calling thread within the handle's timeout. A request call that
//! gives up at the handle's timeout cancels the request (the responder sees it), as a
//! request past its own [`RequestOptions::timeout`] does.

use std::time::Duration;

use bytes::Bytes;

use crate::run::wait;
use crate::{Connection, Error, Label, RequestOptions, SendStream};

/// The reply to a request, read as a stream ([`Connection::request_streamed`]).
pub struct Reply {
    inner: weir_driver::Reply,
    timeout: Option<Duration>,
}

/// The one answer to a [`Request`](crate::Request) ([`Connection::accept_request`]):
/// weir-driver's `Responder`, blocking. Dropped unanswered, it refuses the request.
pub struct Responder {
    inner: weir_driver::Responder,
    timeout: Option<Duration>,
}

impl Connection {
    /// Asks the peer's `service` with `body` and returns its reply, read whole
    /// (weir-driver's `Connection::request`: a 30 s wait for the reply to begin).
    pub fn request(&self, service: &Label, body: Bytes) -> Result<Bytes, Error> {
        wait(self.timeout, self.inner.request(service, body))
    }

    /// [`request`](Self::request) with `options`.
    pub fn request_with(
        &self,
        service: &Label,
        body: Bytes,
        options: RequestOptions,
    ) -> Result<Bytes, Error> {
        wait(self.timeout, self.inner.request_with(service, body, options))
    }

    /// [`request`](Self::request), the reply to be read as a stream.
    pub fn request_streamed(
        &self,
        service: &Label,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        let inner = wait(self.timeout, self.inner.request_streamed(service, body, timeout))?;
        Ok(Reply {
            inner,
            timeout: self.timeout,
        })
    }

    /// Waits for the next whole request the peer sent, with its [`Responder`].
    pub fn accept_request(&self) -> Result<(crate::Request, Responder), Error> {
        let (request, inner) = wait(self.timeout, self.inner.accept_request())?;
        let responder = Responder {
            inner,
            timeout: self.timeout,
        };
        Ok((request, responder))
    }
}

impl Reply {
    /// The next bytes of the reply (at most `max`), `None` at its end.
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        wait(self.timeout, self.inner.read_chunk(max))
    }

    /// The whole reply, refused past `limit` bytes.
    pub fn read_to_end(&mut self, limit: u64) -> Result<Bytes, Error> {
        wait(self.timeout, self.inner.read_to_end(limit))
    }
}

impl Responder {
    /// Sends `body` as the reply; returns once the requester read it all.
    pub fn reply(self, body: Bytes) -> Result<(), Error> {
        wait(self.timeout, self.inner.reply(body))
    }

    /// [`reply`](Self::reply), returning once the reply got as far as `confirm` says.
    pub fn reply_with(self, body: Bytes, confirm: crate::Confirm) -> Result<(), Error> {
        wait(self.timeout, self.inner.reply_with(body, confirm))
    }

    /// Opens the reply as a stream to write.
    pub fn reply_stream(self) -> Result<SendStream, Error> {
        let inner = wait(self.timeout, self.inner.reply_stream())?;
        Ok(SendStream {
            inner,
            timeout: self.timeout,
        })
    }

    /// Refuses the request with `code`.
    pub fn refuse(self, code: u64) {
        self.inner.refuse(code)
    }

    /// Blocks until the requester gives up on the request, and returns its code.
    pub fn cancelled(&self) -> Result<u64, Error> {
        wait(self.timeout, self.inner.cancelled())
    }
}
