//! A stream this side writes.

use std::future::poll_fn;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use weir_core::wire::StreamId;
use weir_core::Priority;

use super::endpoint::Urgency;
use super::Connection;
use crate::{CallId, Confirm, Error};

/// The most bytes [`SendStream::poll_write_slice`] (and so one `AsyncWrite::poll_write`)
/// copies and takes at once: 256 KiB.
pub const SLICE_WRITE_LIMIT: usize = 256 << 10;

/// A stream this side writes. [`write_chunk`](Self::write_chunk) hands over a `Bytes`
/// without copying. [`finish`](Self::finish) ends it; dropping it unfinished finishes it
/// too (or resets it, if it announced a total length it did not reach).
///
/// Cancel-safety: a write's future that is dropped before it is ready wrote nothing. A
/// finish's future dropped before it is ready has ended the stream (it cannot be taken
/// back) and no longer waits for its confirmation.
pub struct SendStream {
    conn: Connection,
    id: StreamId,
    /// Neither finished nor reset.
    open: bool,
    /// A finish waits for the stream's confirmation.
    confirming: bool,
    /// The peer's stop, with its code, once a write was told of it: the core tells a stop
    /// once and then forgets the stream, so the finish that follows answers from here.
    stopped: Option<u64>,
    /// The copy of the last buffer [`poll_write_slice`](Self::poll_write_slice) found no
    /// room for, reused while the caller offers the same bytes again.
    staged: Option<Bytes>,
    /// Its writes' identity, for their waits (module `driver::waiting`): one at a time, as
    /// they take the handle exclusively.
    call: CallId,
}

impl SendStream {
    pub(crate) fn new(conn: Connection, id: StreamId) -> SendStream {
        SendStream {
            call: conn.shared().call_id(),
            conn,
            id,
            open: true,
            confirming: false,
            stopped: None,
            staged: None,
        }
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Sets the class the stream is sent in ([`Priority`]; `Normal` until set): a stream is
    /// sent only when no stream of a higher class on its connection has anything to send,
    /// and streams of one class take turns. Fails once the stream is finished and sent, or
    /// reset.
    pub fn set_priority(&self, priority: Priority) -> Result<(), Error> {
        let (conn, stream) = (self.conn.id(), self.id);
        self.conn
            .shared()
            .call(|d| d.set_priority(conn, stream, priority))?
    }

    /// Writes what fits of `data` (kept by reference until acknowledged, no copy); pending
    /// until at least one byte fits, then says how many did.
    pub async fn write_chunk(&mut self, data: Bytes) -> Result<usize, Error> {
        poll_fn(|cx| self.poll_write_chunk(cx, &data)).await
    }

    /// [`write_chunk`](Self::write_chunk) as a poll: takes nothing unless it is ready.
    pub fn poll_write_chunk(&mut self, cx: &mut Context<'_>, data: &Bytes) -> Poll<Result<usize, Error>> {
        let (conn, stream) = (self.conn.id(), self.id);
        let r = self
            .conn
            .shared()
            .poll_busy(cx, Urgency::Now, Some(self.call), |d, cx| {
                d.poll_write(conn, stream, data, cx.waker())
            });
        if let Poll::Ready(Err(Error::Stopped { code })) = r {
            self.stopped = Some(code);
        }
        r
    }

    /// A write of borrowed bytes as a poll, for byte-oriented IO traits: copies at most
    /// [`SLICE_WRITE_LIMIT`] bytes of `buf` once (the core keeps them by reference from there
    /// on), and not again while a caller that found no room offers the same bytes; says how
    /// many it took, as `AsyncWrite::poll_write` does.
    pub fn poll_write_slice(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, Error>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Copying all of a large `buf` when the core takes a part of it would copy the rest
        // again at the next call (quadratic in a 64 MiB `write_all`), and the core would keep
        // the whole copy alive for the part it took.
        let buf = &buf[..buf.len().min(SLICE_WRITE_LIMIT)];
        let data = match self.staged.take() {
            Some(staged) if staged[..] == *buf => staged,
            _ => Bytes::copy_from_slice(buf),
        };
        let r = self.poll_write_chunk(cx, &data);
        if r.is_pending() {
            self.staged = Some(data);
        }
        r
    }

    /// Writes all of `data`, waiting for room as often as needed. Dropped midway, an
    /// unknown prefix of `data` was written.
    pub async fn write_all_chunk(&mut self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let n = self.write_chunk(data.clone()).await?;
            let _ = data.split_to(n);
        }
        Ok(())
    }

    /// Ends the stream after what was written; ready once it was delivered: the final
    /// receiver, through any relays, read it all (and verified the digest, if one was
    /// attached) and said so ([`Confirm::Delivered`]; spec §8, Delivery). Fails with
    /// [`Error::NotDelivered`] if it was refused or a relay lost it, or with the
    /// connection's end if that came first. A refusal reads the same whether the peer's
    /// stop came before the last acknowledgement or after it (`Delivery::Failed` with the
    /// peer's code and `relays` 0), and also when it came before the finish; only writes
    /// report it as [`Error::Stopped`]. [`finish_with`](Self::finish_with) waits less.
    pub async fn finish(self) -> Result<(), Error> {
        self.finish_with(Confirm::Delivered).await
    }

    /// Ends the stream after what was written; ready once it got as far as `confirm` says
    /// ([`Confirm::Queued`]: at once, and a stream the peer stopped is [`Error::Stopped`]
    /// as for a write; otherwise a refusal is [`Error::NotDelivered`], as for
    /// [`finish`](Self::finish)).
    pub async fn finish_with(mut self, confirm: Confirm) -> Result<(), Error> {
        poll_fn(|cx| self.poll_finish(cx, confirm)).await
    }

    /// [`finish_with`](Self::finish_with) as a poll: the first poll ends the stream, the
    /// next ones wait for `confirm`; ready at once on a stream already finished.
    pub fn poll_finish(&mut self, cx: &mut Context<'_>, confirm: Confirm) -> Poll<Result<(), Error>> {
        let (conn, stream) = (self.conn.id(), self.id);
        if self.open {
            self.open = false;
            if let Some(code) = self.stopped {
                return Poll::Ready(Err(crate::driver::stop_for(confirm, code)));
            }
            match self.conn.shared().call(|d| d.finish(conn, stream, confirm)) {
                Ok(Some(answer)) => return Poll::Ready(answer),
                Ok(None) => self.confirming = true,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if !self.confirming {
            return Poll::Ready(Ok(()));
        }
        let r = ready!(self.conn.shared().poll(Urgency::Soon, |d| d.poll_confirm(
            conn,
            stream,
            confirm,
            cx.waker()
        )));
        self.confirming = false;
        Poll::Ready(r)
    }

    /// Abandons the stream; the peer is told `code`. Fails only once the endpoint is shut
    /// down (a stream that already ended has nothing to abandon).
    pub fn reset(mut self, code: u64) -> Result<(), Error> {
        self.open = false;
        let (conn, stream) = (self.conn.id(), self.id);
        self.conn.shared().call(|d| {
            let _ = d.reset_stream(conn, stream, code);
        })
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        let (conn, stream) = (self.conn.id(), self.id);
        if self.open && self.stopped.is_none() {
            let _ = self.conn.shared().call(|d| d.release_send_stream(conn, stream));
        } else if self.confirming {
            let _ = self.conn.shared().call(|d| d.forget_confirmation(conn, stream));
        }
    }
}
