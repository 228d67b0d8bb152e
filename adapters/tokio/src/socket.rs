//! The driver task's UDP socket as tokio watches it: for reading only, where the platform
//! lets us choose (Unix). Watched for writing too, as `tokio::net::UdpSocket` is, every
//! datagram sent wakes the runtime again once the kernel has delivered it (an edge of
//! writability: one more `epoll_wait` per datagram sent, a fifth of a round trip's system
//! calls). A full send buffer, rare, is waited for through a second registration made for
//! that wait only.

use std::io;

use quinn_udp::UdpSockRef;
use tokio::io::Interest;

#[cfg(unix)]
pub(crate) use unix::{Readable, Socket};

#[cfg(not(unix))]
pub(crate) use other::{Readable, Socket};

#[cfg(unix)]
mod unix {
    use super::*;
    use std::net::UdpSocket;
    use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

    /// A non-blocking UDP socket registered for reading.
    pub(crate) struct Socket(AsyncFd<UdpSocket>);

    /// The socket found readable: receives until one would block, which clears it, or until
    /// one finds the socket emptied ([`drained`](Self::drained)).
    pub(crate) struct Readable<'a>(AsyncFdReadyGuard<'a, UdpSocket>);

    /// Registers `socket` with the runtime for `interest`.
    #[allow(unsafe_code)]
    fn register(socket: UdpSocket, interest: Interest) -> io::Result<AsyncFd<UdpSocket>> {
        // SAFETY: the `AsyncFd` owns the socket, so its descriptor stays open and names the
        // same socket until the `AsyncFd` is dropped; a std `UdpSocket` always returns that
        // one descriptor from `as_raw_fd`. (tokio's safe constructors are deprecated for
        // types that cannot promise this; ours can.)
        unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(io::Error::from)
    }

    impl Socket {
        /// Registers a non-blocking `socket` with the current runtime.
        pub(crate) fn new(socket: UdpSocket) -> io::Result<Socket> {
            register(socket, Interest::READABLE).map(Socket)
        }

        /// The socket as socket2 sees it, for a send (`Batch::send`).
        pub(crate) fn sock2(&self) -> socket2::SockRef<'_> {
            self.0.get_ref().into()
        }

        pub(crate) async fn readable(&self) -> io::Result<Readable<'_>> {
            self.0.readable().await.map(Readable)
        }

        /// [`readable`](Self::readable) as a poll: registers `cx`'s waker (one task's at a
        /// time, beside the tasks that await `readable`) while the socket is not.
        pub(crate) fn poll_readable(
            &self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<Readable<'_>>> {
            self.0.poll_read_ready(cx).map_ok(Readable)
        }

        /// Waits until the send buffer has room.
        pub(crate) async fn writable(&self) -> io::Result<()> {
            let room = register(self.0.get_ref().try_clone()?, Interest::WRITABLE)?;
            room.writable().await.map(drop)
        }
    }

    impl Readable<'_> {
        /// Runs the receive `f`; a `WouldBlock` from it clears the readiness.
        pub(crate) fn try_recv(
            &mut self,
            f: impl FnOnce(UdpSockRef<'_>) -> io::Result<usize>,
        ) -> io::Result<usize> {
            match self.0.try_io(|s| f(s.get_ref().into())) {
                Ok(r) => r,
                Err(_) => Err(io::ErrorKind::WouldBlock.into()),
            }
        }

        /// The last receive found the socket emptied (it filled fewer rooms than it was
        /// offered): clears the readiness without a receive that would block. Safe with
        /// edge-triggered readiness: a datagram that came after that receive raises a new
        /// edge, and tokio clears only the readiness this guard saw, not a newer one.
        pub(crate) fn drained(&mut self) {
            self.0.clear_ready();
        }
    }
}

#[cfg(not(unix))]
mod other {
    use super::*;
    use tokio::net::UdpSocket;

    /// A non-blocking UDP socket registered with tokio the usual way.
    pub(crate) struct Socket(UdpSocket);

    /// The socket found readable.
    pub(crate) struct Readable<'a>(&'a UdpSocket);

    impl Socket {
        pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<Socket> {
            UdpSocket::from_std(socket).map(Socket)
        }

        /// The socket as socket2 sees it, for a send (`Batch::send`).
        pub(crate) fn sock2(&self) -> socket2::SockRef<'_> {
            (&self.0).into()
        }

        pub(crate) async fn readable(&self) -> io::Result<Readable<'_>> {
            self.0.readable().await.map(|()| Readable(&self.0))
        }

        pub(crate) fn poll_readable(
            &self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<Readable<'_>>> {
            self.0.poll_recv_ready(cx).map_ok(|()| Readable(&self.0))
        }

        pub(crate) async fn writable(&self) -> io::Result<()> {
            self.0.writable().await
        }
    }

    impl Readable<'_> {
        pub(crate) fn try_recv(
            &mut self,
            f: impl FnOnce(UdpSockRef<'_>) -> io::Result<usize>,
        ) -> io::Result<usize> {
            self.0.try_io(Interest::READABLE, || f(self.0.into()))
        }

        /// Nothing here: tokio's socket clears its readiness only on a receive that would
        /// block, which the next wake-up makes.
        pub(crate) fn drained(&mut self) {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::future::Future;
    use std::io::IoSliceMut;
    use std::net::SocketAddr;
    use std::time::Duration;

    use quinn_udp::{RecvMeta, UdpSocketState};

    /// `f`, or a panic after 10 s.
    pub(crate) async fn bounded<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("took over 10 s")
    }

    /// A socket on 127.0.0.1 registered with the runtime, its quinn-udp state and address.
    pub(crate) fn bound() -> (Socket, UdpSocketState, SocketAddr) {
        let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        raw.set_nonblocking(true).unwrap();
        let state = UdpSocketState::new((&raw).into()).unwrap();
        let addr = raw.local_addr().unwrap();
        (Socket::new(raw).unwrap(), state, addr)
    }

    /// Waiting for room registers a second descriptor of the same socket for writing, and
    /// dropping that registration leaves the socket's own (for reading) working.
    #[tokio::test]
    async fn waiting_for_room_leaves_the_read_registration_working() {
        let (socket, state, addr) = bound();
        bounded(socket.writable()).await.unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"after the wait", addr).unwrap();
        let mut readable = bounded(socket.readable()).await.unwrap();
        let mut buf = [0u8; 64];
        let mut meta = [RecvMeta::default()];
        let mut recv = |r: &mut Readable<'_>, buf: &mut [u8]| {
            r.try_recv(|s| state.recv(s, &mut [IoSliceMut::new(buf)], &mut meta))
                .map(|_| meta[0].len)
        };
        let n = recv(&mut readable, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"after the wait");
        let again = recv(&mut readable, &mut buf);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    /// Readiness cleared by `drained` (no receive that would block) is raised again by the
    /// next datagram: no wake-up is lost.
    #[tokio::test]
    async fn a_datagram_after_a_drained_receive_wakes_the_socket_again() {
        let (socket, state, addr) = bound();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        let mut meta = [RecvMeta::default()];
        for word in [&b"first"[..], b"second"] {
            peer.send_to(word, addr).unwrap();
            let mut readable = bounded(socket.readable()).await.unwrap();
            let n = readable
                .try_recv(|s| state.recv(s, &mut [IoSliceMut::new(&mut buf)], &mut meta))
                .unwrap();
            assert_eq!((n, &buf[..meta[0].len]), (1, word));
            readable.drained();
            // Cleared: the socket is not readable until another datagram comes.
            let mut wait = std::pin::pin!(socket.readable());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(
                wait.as_mut().poll(&mut cx).is_pending(),
                "readable, nothing to read"
            );
        }
    }
}
