//! tokio's `AsyncRead` and `AsyncWrite` for the stream handles, and `futures_core::Stream`
//! of a received stream's chunks (feature `tokio`).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{RecvStream, SendStream};
use crate::{Confirm, Error};

impl AsyncWrite for SendStream {
    /// Copies `buf` once ([`SendStream::poll_write_slice`]).
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_slice(cx, buf).map_err(io::Error::from)
    }

    /// Every write is in the core when it returns: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ends the stream once the core took it, as a TCP socket's shutdown does: nothing is
    /// confirmed ([`SendStream::finish`] waits for the receipt).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_finish(cx, Confirm::Queued).map_err(io::Error::from)
    }
}

impl AsyncRead for RecvStream {
    /// Copies into `buf` (the chunk APIs hand out the received bytes without a copy).
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let max = buf.remaining();
        if let Some(chunk) = ready!(self.poll_chunk(cx, max)).map_err(io::Error::from)? {
            buf.put_slice(&chunk);
            let room = buf.remaining();
            self.take_rest(room, |piece| buf.put_slice(piece));
        }
        Poll::Ready(Ok(()))
    }
}

impl futures_core::Stream for RecvStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.more() {
            return Poll::Ready(None);
        }
        ready!(self.poll_chunk(cx, usize::MAX)).transpose().into()
    }
}
