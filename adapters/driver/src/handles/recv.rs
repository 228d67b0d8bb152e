//! A stream the peer opened, read by this side.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use weir_core::wire::{Label, StreamId};
use weir_core::{ApiError, StreamHeader};

use super::endpoint::Urgency;
use super::Connection;
use crate::{CallId, Error, RecvState};

/// A stream the peer opened: read it by chunks as they become contiguous
/// ([`read_chunk`](Self::read_chunk)) or whole ([`read_to_end`](Self::read_to_end)).
/// Dropping it before its end tells the peer to stop sending.
///
/// Cancel-safety: every read is cancel-safe. A read takes bytes out of the core only when
/// it is ready, and pieces fetched beyond what one call hands out stay in the handle for
/// the next.
pub struct RecvStream {
    conn: Connection,
    id: StreamId,
    header: StreamHeader,
    /// Pieces a read fetched that its caller has not taken yet (a read fetches every piece
    /// there is, up to the caller's `max` in all, and hands them out one per call).
    pub(crate) rest: VecDeque<Bytes>,
    /// Read, held for the application's word on its delivery, or done.
    pub(crate) state: RecvState,
    /// Its reads' identity, for their waits (module `driver::waiting`): one at a time, as
    /// they take the handle exclusively.
    call: CallId,
}

impl RecvStream {
    pub(crate) fn new(conn: Connection, id: StreamId, header: StreamHeader) -> RecvStream {
        RecvStream {
            call: conn.shared().call_id(),
            conn,
            id,
            header,
            rest: VecDeque::new(),
            state: RecvState::New,
        }
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// What the peer announced: label, total length, digest.
    pub fn header(&self) -> &StreamHeader {
        &self.header
    }

    /// The stream's protocol label, if it has one.
    pub fn label(&self) -> Option<&Label> {
        self.header.label.as_ref()
    }

    /// The stream's length, if the peer announced it.
    pub fn total_len(&self) -> Option<u64> {
        self.header.total_len
    }

    #[cfg(feature = "tokio")]
    /// Whether a read may still return something (bytes, the end, or a failure).
    pub(crate) fn more(&self) -> bool {
        self.state.reading() || !self.rest.is_empty()
    }

    /// The next contiguous bytes (at most `max`), as slices of the datagrams they came in;
    /// `None` once every byte was read.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_chunk(cx, max)).await
    }

    /// [`read_chunk`](Self::read_chunk) as a poll.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<Result<Option<Bytes>, Error>> {
        let max = max.max(1);
        if let Some(mut chunk) = self.rest.pop_front() {
            if chunk.len() > max {
                self.rest.push_front(chunk.split_off(max));
            }
            return Poll::Ready(Ok(Some(chunk)));
        }
        if !self.state.reading() {
            return Poll::Ready(Ok(None));
        }
        let (conn, stream) = (self.conn.id(), self.id);
        // From the first read on, delivery can no longer be deferred: it may fetch the end.
        self.state = self.state.read_started();
        let r = ready!(self
            .conn
            .shared()
            .poll_busy(cx, Urgency::Soon, Some(self.call), |d, cx| d.poll_read(
                conn,
                stream,
                max,
                cx.waker()
            )));
        match r {
            Ok(Some(chunks)) => {
                self.rest.extend(chunks);
                self.poll_chunk(cx, max)
            }
            Ok(None) => {
                self.state = self.state.at_end();
                Poll::Ready(Ok(None))
            }
            Err(e) => {
                if matches!(e, Error::Reset { .. } | Error::VerificationFailed { .. }) {
                    self.state = RecvState::Done;
                }
                Poll::Ready(Err(e))
            }
        }
    }

    /// A read into `buf` as a poll, for byte-oriented IO traits: the next bytes, copied (as
    /// many pieces as were fetched and fit, not one per datagram); `0` at the end.
    pub fn poll_read_into(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize, Error>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let Some(chunk) = ready!(self.poll_chunk(cx, buf.len()))? else {
            return Poll::Ready(Ok(0));
        };
        buf[..chunk.len()].copy_from_slice(&chunk);
        let mut n = chunk.len();
        self.take_rest(buf.len() - n, |piece| {
            buf[n..n + piece.len()].copy_from_slice(piece);
            n += piece.len();
        });
        Poll::Ready(Ok(n))
    }

    /// Takes pieces already fetched, as far as `room` bytes, after the first chunk of a
    /// read: one call per read, not one per datagram.
    pub(crate) fn take_rest(&mut self, mut room: usize, mut put: impl FnMut(&[u8])) {
        while room > 0 {
            let Some(mut next) = self.rest.pop_front() else {
                break;
            };
            if next.len() > room {
                self.rest.push_front(next.split_off(room));
            }
            room -= next.len();
            put(&next);
        }
    }

    /// Reads the whole stream; refuses (and stops the stream) past `limit` bytes. A stream
    /// that came in one piece is handed over as it came; several are joined as they arrive
    /// ([`weir_core::Gathered`]: one copy, each receive buffer let go at once), in a buffer
    /// shown to the endpoint's [`Config::advise_buffer`](weir_core::Config::advise_buffer)
    /// once it is large, as the core's whole-message reads are.
    pub async fn read_to_end(&mut self, limit: u64) -> Result<Bytes, Error> {
        let total = self.total_len();
        if total.is_some_and(|t| t > limit) {
            return Err(Error::Refused(ApiError::MessageTooLong));
        }
        // A driver gone leaves nothing to advise by; the read itself says why it failed.
        let advise = self.conn.shared().call(|d| d.advise_buffer()).ok().flatten();
        let mut whole = weir_core::Gathered::default();
        while let Some(chunk) = self.read_chunk(usize::MAX).await? {
            if whole.len() + chunk.len() as u64 > limit {
                return Err(Error::Refused(ApiError::MessageTooLong));
            }
            whole.push_advised(chunk, total, advise);
        }
        Ok(whole.take())
    }

    /// Makes this stream's delivery yours to confirm (spec §8, Delivery): reading it to its
    /// end no longer tells the sender it was delivered; [`confirm_delivery`] does, once you
    /// have kept the bytes (a file flushed and renamed into place, say), and
    /// [`stop`](Self::stop) or dropping the handle tells it they were not. Call it before
    /// the first read (a read may fetch the end with the first bytes); after it, this is
    /// refused. Until confirmed, the stream counts against the streams the peer may open.
    ///
    /// [`confirm_delivery`]: Self::confirm_delivery
    pub fn defer_delivery(&mut self) -> Result<(), Error> {
        let (conn, stream) = (self.conn.id(), self.id);
        let deferred = self.state.deferred()?;
        self.conn
            .shared()
            .call_as(Urgency::Soon, |d| d.defer_delivery(conn, stream))??;
        self.state = deferred;
        Ok(())
    }

    /// Tells the sender that this stream, deferred and read to its end, is delivered.
    /// [`ApiError::NothingToConfirm`] (as [`Error::Refused`]) if it was not deferred or its
    /// end was not read.
    pub fn confirm_delivery(mut self) -> Result<(), Error> {
        self.state = self.state.confirmed()?;
        let (conn, stream) = (self.conn.id(), self.id);
        self.conn
            .shared()
            .call_as(Urgency::Soon, |d| d.confirm_delivery(conn, stream))?
    }

    /// Tells the peer to stop sending; what still arrives is discarded. On a stream whose
    /// delivery was deferred and whose end was read, tells the sender it was not delivered,
    /// with `code`. Fails only once the endpoint is shut down.
    pub fn stop(mut self, code: u64) -> Result<(), Error> {
        self.state = RecvState::Done;
        let (conn, stream) = (self.conn.id(), self.id);
        self.conn.shared().call(|d| {
            let _ = d.stop_sending(conn, stream, code);
        })
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        if self.state != RecvState::Done {
            let (conn, stream) = (self.conn.id(), self.id);
            let _ = self.conn.shared().call(|d| d.release_recv_stream(conn, stream));
        }
    }
}
