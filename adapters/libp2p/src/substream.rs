//! A libp2p substream: our weir stream to write, the peer's to read (spec/protocol.md §8,
//! libp2p binding), as `futures`' `AsyncRead` and `AsyncWrite`.
//!
//! Closing (`AsyncWrite::poll_close`) finishes our stream and waits until the peer
//! acknowledged every byte of it, so that a protocol which writes, closes and then drops
//! the connection has not lost its last bytes. Dropping a substream whose writing was not
//! closed resets our stream with [`SUBSTREAM_RESET`] (the peer's reads fail rather than
//! see a truncated stream end cleanly), and stops the peer's. One exception: the answer half
//! of an inbound substream dropped before anything was written to it is finished, empty,
//! instead (the opener reads the end, as yamux's drop sends it): weir's RESET_STREAM carries
//! no label, so a reset of a stream none of whose bytes left yet never reaches the peer, and
//! the opener, which waits for its answer by label, would wait on. (The same holds for an
//! answer that was written to but reset before its first bytes left: that opener waits
//! until its protocol's timeout or the connection's end.)
//!
//! Copies: `AsyncWrite` lends the bytes, so each write copies them once into the core; each
//! read copies once out of the received datagrams' buffers into the caller's.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::{AsyncRead, AsyncWrite};
use weir_tokio::{Confirm, RecvStream, SendStream};

use crate::muxer::{lock, Answer, SharedRoutes};
use crate::SUBSTREAM_RESET;

/// One libp2p substream over weir: see the module documentation.
pub struct Substream {
    /// `None` once closed.
    send: Option<SendStream>,
    /// Our half is an answer (the substream is inbound) and nothing was written to it yet.
    unannounced_answer: bool,
    recv: Recv,
}

enum Recv {
    Open(RecvStream),
    /// The peer's answer to our outbound substream `n`, not here yet.
    Awaiting {
        n: u64,
        routes: SharedRoutes,
    },
}

impl Substream {
    pub(crate) fn outbound(send: SendStream, n: u64, routes: SharedRoutes) -> Substream {
        Substream {
            send: Some(send),
            unannounced_answer: false,
            recv: Recv::Awaiting { n, routes },
        }
    }

    pub(crate) fn inbound(send: SendStream, recv: RecvStream) -> Substream {
        Substream {
            send: Some(send),
            unannounced_answer: true,
            recv: Recv::Open(recv),
        }
    }

    /// The stream to read, once the peer's answer arrived.
    fn recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut RecvStream>> {
        if let Recv::Awaiting { n, routes } = &self.recv {
            let answer = lock(routes).take(*n, cx.waker());
            match answer {
                Answer::Arrived(stream) => self.recv = Recv::Open(stream),
                Answer::Waiting => return Poll::Pending,
                Answer::Never => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the connection ended before the peer answered the substream",
                    )))
                }
            }
        }
        match &mut self.recv {
            Recv::Open(stream) => Poll::Ready(Ok(stream)),
            // The branch above put an arrived answer in place or returned: no peer input
            // leads here.
            Recv::Awaiting { .. } => unreachable!("an arrived answer was put in place"),
        }
    }

    fn send(&mut self) -> io::Result<&mut SendStream> {
        self.send
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the substream was closed for writing"))
    }
}

impl AsyncRead for Substream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let stream = ready!(self.recv(cx))?;
        stream.poll_read_into(cx, buf).map_err(io::Error::from)
    }
}

impl AsyncWrite for Substream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = ready!(self.send()?.poll_write_slice(cx, buf)).map_err(io::Error::from)?;
        self.unannounced_answer &= n == 0;
        Poll::Ready(Ok(n))
    }

    /// Every write is in the core when it returns: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(send) = self.send.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        ready!(send.poll_finish(cx, Confirm::Acknowledged)).map_err(io::Error::from)?;
        self.send = None;
        Poll::Ready(Ok(()))
    }
}

impl Drop for Substream {
    fn drop(&mut self) {
        if let Some(send) = self.send.take() {
            if self.unannounced_answer {
                // Its own drop finishes it.
                drop(send);
            } else {
                let _ = send.reset(SUBSTREAM_RESET);
            }
        }
        match &self.recv {
            // The RecvStream's own drop stops it.
            Recv::Open(_) => {}
            Recv::Awaiting { n, routes } => lock(routes).forget(*n),
        }
    }
}
