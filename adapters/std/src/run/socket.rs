//! The endpoint's UDP socket as weir-std drives it: sent to by any thread ([`Socket`]),
//! received from by one thread at a time ([`Receiver`]), and how another thread ends that
//! receive ([`Socket::kick`]).
//!
//! The socket blocks: a receive that must wait is one system call, which the first datagram
//! (a whole GRO batch, through `quinn-udp`), the read timeout (the core's next deadline) or
//! a kick ends. What else the socket holds by then is taken too, without waiting (Unix:
//! `MSG_DONTWAIT`), up to [`RECV_BURST`] receives, before the driver sees any of it, as
//! weir-tokio's driver task does: the core then answers a burst with one acknowledgement
//! and one send, where a receive per datagram made it answer each one, a system call each.
//! Looking for more costs a receive that finds the socket empty, so while receives find
//! nothing more, only one in [`PROBE_EVERY`] looks (or one that brought a GRO batch): a
//! round trip's lone datagrams cost one receive each, mostly.
//!
//! A kick is a one-byte datagram from a socket of the endpoint's own, which no peer can
//! send from; a receive drops it.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use bytes::BytesMut;
use quinn_udp::{RecvMeta, UdpSocketState};
use weir_driver::{Driver, Inbox, Outbox};

/// Receives per call of [`Receiver::receive`], the waiting one included.
const RECV_BURST: usize = 32;
/// Bytes per call of [`Receiver::receive`], past which it takes no more: what a burst
/// moves out of the socket waits, held in the receive blocks, until the core has taken it
/// (weir-tokio's `BURST_BYTES` says why).
const BURST_BYTES: usize = Inbox::BLOCK;
/// While the socket has held nothing more than the waiting receive took, one receive in
/// this many looks for more anyway (a look that finds nothing is a system call).
pub(super) const PROBE_EVERY: u8 = 8;

/// Whether the socket held more than the waiting receive took, lately: a receive looks
/// for more while it did, and now and then while it did not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backlog {
    Seen,
    /// Not at the last look; receives since.
    Unseen(u8),
}

/// The socket, shared: calls and the driver thread send through it, whoever holds the
/// [`Receiver`] receives from it.
pub(super) struct Socket {
    socket: UdpSocket,
    state: UdpSocketState,
    /// Sends the kicks, from an address only this endpoint has.
    waker: UdpSocket,
    waker_addr: SocketAddr,
    /// Where kicks go: the socket's address (its family's loopback if unspecified).
    own_addr: SocketAddr,
}

/// The receive side, held by the thread that receives: the buffer datagrams are received
/// into, the read timeout last set, and what the last receive brought.
pub(super) struct Receiver {
    inbox: Inbox,
    /// The socket's read timeout as last set (setting it costs a system call).
    timeout: Duration,
    received: Vec<(SocketAddr, BytesMut, usize)>,
    backlog: Backlog,
    /// Room for a receive's control messages: the GRO segment size (on Linux, the only one
    /// left, `weir_driver::udp_state`; elsewhere also what `quinn-udp` asked the OS for:
    /// addresses, ECN).
    #[cfg(unix)]
    control: Vec<u8>,
}

impl Socket {
    /// Drives `socket` (bound, blocking), and makes the socket its kicks come from.
    pub(super) fn new(socket: UdpSocket) -> io::Result<Socket> {
        // quinn-udp turns the socket non-blocking; a receive waits in the OS.
        let state = weir_driver::udp_state(&socket)?;
        socket.set_nonblocking(false)?;
        let local = socket.local_addr()?;
        let own_addr = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
            }
            _ => local,
        };
        let waker = UdpSocket::bind(SocketAddr::new(own_addr.ip(), 0))?;
        let waker_addr = waker.local_addr()?;
        Ok(Socket {
            socket,
            state,
            waker,
            waker_addr,
            own_addr,
        })
    }

    /// Ends the receive under way, whoever makes it; with none under way, the next one
    /// ends at once, which costs it a loop. (A lost kick only delays the receiver to its
    /// read timeout.)
    pub(super) fn kick(&self) {
        let _ = self.waker.send_to(&[0], self.own_addr);
    }

    /// Sends everything the driver has to send now; whether anything was.
    pub(super) fn flush(&self, outbox: &mut Outbox, driver: &mut Driver) -> bool {
        let mut sent = false;
        while let Some(batch) = outbox.next(driver, self.state.max_gso_segments()) {
            // A full buffer or an unreachable network (ENOBUFS, ENETUNREACH) loses these
            // datagrams only; recovery resends what mattered. quinn-udp logs such failures
            // (rate-limited) and returns them as success.
            let _ = batch.send(&self.state, socket2::SockRef::from(&self.socket));
            sent = true;
        }
        sent
    }
}

/// Waits shorter than this are timed by `ppoll` before the receive, not by the socket's
/// read timeout: the kernel counts a read timeout in its ticks (4 ms at 250 Hz), and a wait
/// for the pacer's next send of 3 ms slept 4 to 8. A sender paced on a long path then sent
/// a few datagrams every 8 ms: weir-std's 64 MiB over a 40 ms round trip went at 2-4 MB/s
/// with BBR, 74 MB/s with this (weir-bench `bulk-far`, issue 35's thirteenth round).
/// Longer waits, a quiet connection's, keep the one system call: below 25 ms the extra
/// `ppoll` cost weir-std's round trip 2.8% (p50 16.29 → 16.75 µs), below 10 ms 1.2%.
#[cfg(any(target_os = "linux", target_os = "android"))]
const PRECISE_BELOW: Duration = Duration::from_millis(10);

/// Whether a datagram (or a kick) is there within `longest`, timed to the microsecond; an
/// interrupted wait says yes, and the receive that follows waits at most `longest`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn readable_within(socket: &Socket, longest: Duration) -> bool {
    use nix::poll::{ppoll, PollFd, PollFlags};
    use nix::sys::time::TimeSpec;
    use std::os::fd::AsFd;

    let mut fds = [PollFd::new(socket.socket.as_fd(), PollFlags::POLLIN)];
    !matches!(ppoll(&mut fds, Some(TimeSpec::from(longest)), None), Ok(0))
}

impl Receiver {
    pub(super) fn new() -> Receiver {
        Receiver {
            inbox: Inbox::new(),
            timeout: Duration::ZERO,
            received: Vec::with_capacity(RECV_BURST),
            // The first receive looks.
            backlog: Backlog::Seen,
            #[cfg(unix)]
            control: vec![0; 128],
        }
    }

    /// Waits up to `longest` for a datagram or a kick, then takes what else the socket
    /// holds. What was received, in arrival order, kicks left out: each a sender, a buffer
    /// of datagrams and their stride (GRO), for [`Driver::handle_received`].
    pub(super) fn receive(
        &mut self,
        socket: &Socket,
        longest: Duration,
    ) -> std::vec::Drain<'_, (SocketAddr, BytesMut, usize)> {
        self.received.clear();
        if self.wait(socket, longest) {
            // A GRO batch is a peer's burst: more of it may be waiting.
            let burst = self
                .received
                .first()
                .is_some_and(|(_, d, stride)| *stride < d.len());
            self.backlog = match self.backlog {
                Backlog::Unseen(n) if n + 1 < PROBE_EVERY && !burst => Backlog::Unseen(n + 1),
                _ => {
                    #[cfg(unix)]
                    self.take_the_rest(socket);
                    if self.received.len() > 1 {
                        Backlog::Seen
                    } else {
                        Backlog::Unseen(0)
                    }
                }
            };
        }
        self.received.drain(..)
    }

    /// The waiting receive: whether it ended with a datagram (a kick is none).
    fn wait(&mut self, socket: &Socket, longest: Duration) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if longest < PRECISE_BELOW && !readable_within(socket, longest) {
            return false;
        }
        // A zero timeout means "block forever" to the OS: wait at least a microsecond. The
        // timeout is a power of two of microseconds, at most the wait: a wait that shrinks
        // towards a deadline then sets it a few times, not every time.
        let micros = u64::try_from(longest.as_micros()).unwrap_or(u64::MAX).max(1);
        let wait = Duration::from_micros(1 << micros.ilog2());
        if wait != self.timeout {
            if socket.socket.set_read_timeout(Some(wait)).is_err() {
                return false;
            }
            self.timeout = wait;
        }
        let mut meta = [RecvMeta::default()];
        let received = {
            let mut bufs = [IoSliceMut::new(self.inbox.room())];
            socket.state.recv((&socket.socket).into(), &mut bufs, &mut meta)
        };
        match received {
            Ok(1) if meta[0].addr != socket.waker_addr => {
                let m = meta[0];
                self.received.push((m.addr, self.inbox.take(m.len), m.stride));
                true
            }
            // Timeouts, and transient errors (an ICMP unreachable surfacing here) that must
            // not stop the endpoint: the core's own timers deal with a peer that is gone.
            _ => false,
        }
    }

    /// Receives, without waiting, until the socket is empty or the burst is full.
    #[cfg(unix)]
    fn take_the_rest(&mut self, socket: &Socket) {
        use nix::errno::Errno;
        use nix::sys::socket::{recvmsg, MsgFlags, SockaddrLike, SockaddrStorage};
        use std::os::fd::AsRawFd;

        let mut bytes: usize = self.received.iter().map(|(_, d, _)| d.len()).sum();
        for _ in 1..RECV_BURST {
            if bytes >= BURST_BYTES {
                break;
            }
            let mut bufs = [IoSliceMut::new(self.inbox.room())];
            let got = recvmsg::<SockaddrStorage>(
                socket.socket.as_raw_fd(),
                &mut bufs,
                Some(&mut self.control),
                MsgFlags::MSG_DONTWAIT,
            );
            let (len, from, stride) = match got {
                // A datagram cut short (the buffer is the largest GRO batch, so never by
                // rights) is dropped.
                Ok(m) if m.flags.contains(MsgFlags::MSG_TRUNC) => continue,
                Ok(m) => {
                    let from = m.address.as_ref().and_then(|a| match a.family() {
                        Some(nix::sys::socket::AddressFamily::Inet) => a.as_sockaddr_in().map(|&a| a.into()),
                        Some(nix::sys::socket::AddressFamily::Inet6) => {
                            a.as_sockaddr_in6().map(|&a| a.into())
                        }
                        _ => None,
                    });
                    (m.bytes, from, gro_stride(&m).unwrap_or(m.bytes))
                }
                Err(Errno::EAGAIN | Errno::EINTR) => break,
                // Transient (an ICMP unreachable surfacing here): the rest waits for the
                // next receive.
                Err(e) => {
                    tracing::trace!(%e, "receive failed");
                    break;
                }
            };
            match from {
                Some(from) if from != socket.waker_addr => {
                    bytes += len;
                    self.received.push((from, self.inbox.take(len), stride));
                }
                _ => {}
            }
        }
    }
}

/// The segment size of a GRO batch, from its control message.
#[cfg(unix)]
fn gro_stride<S>(m: &nix::sys::socket::RecvMsg<'_, '_, S>) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::ControlMessageOwned;
        m.cmsgs().ok()?.find_map(|c| match c {
            ControlMessageOwned::UdpGroSegments(n) => usize::try_from(n).ok(),
            _ => None,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = m;
        None
    }
}

#[cfg(test)]
impl Socket {
    /// The receive buffer the OS gave, as it reports it.
    pub(super) fn recv_buffer_size(&self) -> usize {
        socket2::SockRef::from(&self.socket)
            .recv_buffer_size()
            .unwrap_or(0)
    }
}

#[cfg(test)]
impl Receiver {
    /// Waits up to `longest` (at least a microsecond) for a datagram and takes it, for
    /// no driver: whether it was a kick.
    pub(super) fn kicked_within(&mut self, socket: &Socket, longest: Duration) -> bool {
        let longest = longest.max(Duration::from_micros(1));
        socket.socket.set_read_timeout(Some(longest)).unwrap();
        self.timeout = longest;
        let mut buf = [0u8; 16];
        matches!(socket.socket.recv_from(&mut buf), Ok((1, from)) if from == socket.waker_addr)
    }
}
