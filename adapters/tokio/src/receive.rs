//! The socket's receive side, shared by the driver task (module `run`) and the calls that
//! are about to wait ([`Io::poll_wait`], weir-driver's `Runtime::poll_wait`).
//!
//! Inputs: the socket's readiness and what a receive brings (a buffer of one or more
//! datagrams of one size, `stride`, as generic receive offload, GRO, delivers them).
//! Output: those datagrams, handed to the driver by whoever received them.
//!
//! **Who receives.** Both the driver task and a waiting call watch the socket: whichever
//! runs first when a datagram comes receives it, under [`Io`]'s receive lock (the other
//! finds the lock taken, or the socket emptied and its readiness cleared, and waits again).
//! A call that receives hands what came to the driver in its own task and asks the driver
//! again at once, so a round trip's answer reaches the task that waits for it without a
//! hop through the driver task: the runtime wakes the calling task for the socket itself,
//! and nothing wakes it a second time (on a current-thread runtime, a task that wakes the
//! `block_on` future makes the runtime poll for IO once more before it sleeps, an
//! `epoll_wait` per round trip and side). The driver task still receives whenever no call
//! does, and it sends what the calls leave: a call that stops waiting leaves nothing
//! behind. A shard of an endpoint receives only in its driver task, which routes what is
//! another shard's (weir-driver's `Router`).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll};

use bytes::BytesMut;
use quinn_udp::{RecvMeta, UdpSocketState};
use weir_driver::{Inbox, Shared};

use crate::socket::{Readable, Socket};

/// Receives per wake-up before the task sends and yields.
pub(crate) const RECV_BURST: usize = 32;

/// The socket, registered with the runtime for reading, and its receive side.
pub(crate) struct Io {
    pub(crate) socket: Socket,
    pub(crate) state: UdpSocketState,
    /// Held by whoever receives, across its receive and its hand-over to the driver: taken
    /// before the driver's lock, never while holding it.
    receiving: Mutex<Receiving>,
    /// Whether waiting calls receive: not for a shard of an endpoint (module docs).
    calls_receive: bool,
}

/// What a receive fills: the blocks, and the datagrams cut from them until handed over.
pub(crate) struct Receiving {
    pub(crate) inbox: Inbox,
    pub(crate) received: Vec<(SocketAddr, BytesMut, usize)>,
}

impl Io {
    /// The receive side of `socket` (non-blocking), registered with the current runtime.
    pub(crate) fn new(socket: std::net::UdpSocket, calls_receive: bool) -> io::Result<Io> {
        let state = UdpSocketState::new((&socket).into())?;
        Ok(Io {
            socket: Socket::new(socket)?,
            state,
            receiving: Mutex::new(Receiving {
                inbox: Inbox::new(),
                received: Vec::with_capacity(RECV_BURST),
            }),
            calls_receive,
        })
    }

    /// The receive side, for the driver task (which waits for a call's receive to end).
    pub(crate) fn receiving(&self) -> MutexGuard<'_, Receiving> {
        self.receiving.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Receives for a call that is about to wait, whose task `cx` wakes: hands what came to
    /// the driver (`Ready`: the call asks again at once), or registers `cx`'s waker for the
    /// socket's next datagram (`Pending`). Pending at once while another receives (it
    /// hands over and wakes the call) and for a shard.
    pub(crate) fn poll_wait(&self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        if !self.calls_receive {
            return Poll::Pending;
        }
        let mut receiving = match self.receiving.try_lock() {
            Ok(r) => r,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Poll::Pending,
        };
        let Receiving { inbox, received } = &mut *receiving;
        // Twice at most: a readiness the receive found stale is cleared by it, and the
        // second poll registers the waker for the next datagram.
        for _ in 0..2 {
            let Poll::Ready(Ok(mut readable)) = self.socket.poll_readable(cx) else {
                return Poll::Pending;
            };
            receive(&mut readable, &self.state, inbox, received);
            if !received.is_empty() {
                shared.hand_over(received.drain(..), cx.waker());
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

/// Whether a receive that fills fewer rooms than it was offered shows the socket emptied:
/// only where quinn-udp receives with `recvmmsg`, which takes every datagram waiting up to
/// the rooms offered (Linux, Android). Elsewhere a receive may take one whatever waits
/// (quinn-udp 0.5 on macOS, OpenBSD, NetBSD and illumos calls `recvmsg`), a short receive
/// says nothing, and clearing then would leave datagrams behind a readiness that no new
/// edge raises: there the loop receives until one would block, as before.
const SHORT_RECEIVE_EMPTIES: bool =
    quinn_udp::BATCH_SIZE >= Inbox::SLOTS && cfg!(any(target_os = "linux", target_os = "android"));

/// Receives until the socket has nothing more (or [`RECV_BURST`] times), into `received`.
/// Each receive offers two rooms: where [`SHORT_RECEIVE_EMPTIES`], one that fills only the
/// first has emptied the socket, and its readiness is cleared then (`Readable::drained`)
/// rather than by one more receive that would block, a system call each wake-up saves.
pub(crate) fn receive(
    readable: &mut Readable<'_>,
    state: &UdpSocketState,
    inbox: &mut Inbox,
    received: &mut Vec<(SocketAddr, BytesMut, usize)>,
) {
    for _ in 0..RECV_BURST {
        let mut meta = [RecvMeta::default(); Inbox::SLOTS];
        let r = readable.try_recv(|socket| {
            let mut bufs = inbox.rooms().map(IoSliceMut::new);
            state.recv(socket, &mut bufs, &mut meta)
        });
        match r {
            Ok(n) if n > 0 => {
                let meta = &meta[..n.min(Inbox::SLOTS)];
                let taken = inbox.take_rooms(meta.iter().map(|m| m.len));
                received.extend(meta.iter().zip(taken).map(|(m, d)| (m.addr, d, m.stride)));
                if SHORT_RECEIVE_EMPTIES && n < Inbox::SLOTS {
                    readable.drained();
                    break;
                }
            }
            Ok(_) => break,
            // The readiness is cleared: the next wait is for new datagrams.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // Transient (an ICMP unreachable surfacing): the core's own timers deal with a
            // peer that is gone.
            Err(e) => tracing::trace!(%e, "receive failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::tests::{bound, bounded};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    /// Three datagrams waiting: the receives (two rooms each) take all three, the second
    /// finding the socket emptied and clearing its readiness without a receive that would
    /// block; a datagram sent afterwards makes it readable again.
    #[tokio::test]
    async fn receives_take_every_datagram_and_leave_the_socket_waiting_for_the_next() {
        let (socket, state, addr) = bound();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Growing sizes, which GRO never merges into one batch (only a shorter last one).
        for word in [&b"a"[..], b"bb", b"ccc"] {
            peer.send_to(word, addr).unwrap();
        }
        let (mut inbox, mut received) = (Inbox::new(), Vec::new());
        while received.len() < 3 {
            let mut readable = bounded(socket.readable()).await.unwrap();
            receive(&mut readable, &state, &mut inbox, &mut received);
        }
        let got: Vec<&[u8]> = received.iter().map(|(_, d, _)| &d[..]).collect();
        assert_eq!(got, [&b"a"[..], b"bb", b"ccc"]);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            pin!(socket.readable()).poll(&mut cx).is_pending(),
            "readable, nothing to read"
        );
        peer.send_to(b"dddd", addr).unwrap();
        let mut readable = bounded(socket.readable()).await.unwrap();
        receive(&mut readable, &state, &mut inbox, &mut received);
        assert_eq!(&received[3].1[..], b"dddd");
    }
}
