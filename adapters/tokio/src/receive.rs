//! How a call that is about to wait receives for itself ([`Io::poll_wait`], weir-driver's
//! `Runtime::poll_wait`), and the receive both it and the driver task make ([`receive`]).
//!
//! Inputs: the socket's readiness and what a receive brings (a buffer of one or more
//! datagrams of one size, `stride`, as generic receive offload, GRO, delivers them).
//! Output: those datagrams, handed to the driver by whoever received them.
//!
//! A call the core cannot answer yet, before it waits, takes the receive lock if no one
//! holds it and receives what the socket holds: it hands that to the driver in its own task
//! (waking the calls it lets go on) and asks the driver again at once. If nothing came, its
//! task's waker is registered with the runtime for the socket's next datagram (one task's
//! at a time: the last to register, which [`Io`] notes), as well as with the driver. So a round trip's answer
//! reaches the task that waits for it without a turn of the driver task (its receive, its
//! hand-over, its wake-up of the waiting task, and its send of the answer: module `io`
//! says who sends while calls receive, and when the driver task takes the socket back).
//!
//! When the task registered for the socket is woken and polls its call again, the call
//! receives first (if the socket holds something) and then asks the driver: the wake-up
//! was most likely the datagram it waits for, still in the socket, and an ask before the
//! receive found nothing, a quarter of a round trip's driver calls (`Io::receive_first`).
//!
//! The waiting call's own task is woken by the hand-over too, though the call asks again
//! at once: another call of the same task (two in a `select!`, say), polled before this
//! one, may wait for what came, and the driver cannot tell the two apart (both are
//! parked with the task's waker). Left out, such a call was lost until something else
//! woke the task; woken, the task is polled once more for nothing when it is alone, which
//! on a current-thread runtime also makes it look for IO before it sleeps (an
//! `epoll_wait`): weir-bench's `rtt` p50 11.29 µs without that wake-up, 11.70 with it,
//! 12.11 with the driver task receiving (adapters/bench/rounds.md, issue 35's sixteenth
//! round).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::{MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::sync::Notify;
use weir_driver::{CallId, Inbox, Shared};

use crate::io::{Change, Io, Receiving};
use crate::socket::Readable;

/// Receives per wake-up before the task sends and yields.
pub(crate) const RECV_BURST: usize = 32;

/// Bytes per wake-up past which the task receives no more before it hands them to the
/// core. A burst's datagrams wait, held in the receive blocks, until the core has taken
/// them (and what the application has not read yet, until it has): 32 receives of two GRO
/// batches could move 4 MiB out of the socket at once, and over a 40 ms round trip the
/// sender's window came as such bursts (the `messages-far` row's peak RSS less file pages
/// 4.19 MiB with no bound, 3.53 with this one; adapters/bench/rounds.md, issue 35's
/// thirty-fourth round). A block's worth still takes a GRO batch's 44 datagrams several
/// times over per wake-up, and what is left in the socket keeps it readable.
pub(crate) const BURST_BYTES: usize = Inbox::BLOCK;

impl Io {
    /// Receives first for a call polled again whose task is the one registered for the
    /// socket's next datagram, if the socket holds some (weir-driver's
    /// `Runtime::receive_first`): the wake-up was most likely that datagram, which the
    /// driver has not seen, so an ask first would find nothing. Its readiness is looked at
    /// with the task's own waker, already the one registered, so a socket with nothing
    /// leaves the registration as it was; nothing is sent (the call may be answered at
    /// once). Whether it handed datagrams over.
    pub(crate) fn receive_first(&self, shared: &Shared, cx: &mut Context<'_>, call: Option<CallId>) -> bool {
        if !self.calls_may_receive || !self.is_registrant(cx.waker()) {
            return false;
        }
        let Some(mut receiving) = self.try_receiving() else {
            return false;
        };
        let Poll::Ready(Ok(mut readable)) = self.socket.poll_readable(cx) else {
            return false;
        };
        let handed = self.receive_and_hand_over(&mut readable, &mut receiving, shared, cx.waker(), call);
        #[cfg(test)]
        if handed {
            crate::run::tests::RECEIVED_FIRST.set(crate::run::tests::RECEIVED_FIRST.get() + 1);
        }
        handed
    }

    /// Receives for a call that is about to wait, whose task `cx` wakes: hands what came to
    /// the driver (`Ready`: the call asks again at once), or registers `cx`'s waker for the
    /// socket's next datagram (`Pending`), having sent what reads left (module `io`;
    /// `wake` wakes the driver task if that is its to send). Pending at once while another
    /// receives (it hands over, and wakes the call if what it waits for came) and in a
    /// shard.
    pub(crate) fn poll_wait(
        &self,
        shared: &Shared,
        wake: &Notify,
        cx: &mut Context<'_>,
        call: Option<CallId>,
    ) -> Poll<()> {
        if !self.calls_may_receive {
            return Poll::Pending;
        }
        let Some(mut receiving) = self.try_receiving() else {
            return Poll::Pending;
        };
        // Twice at most: a readiness the receive finds stale is cleared by it, and the
        // second poll registers the waker for the next datagram.
        for _ in 0..2 {
            let Poll::Ready(Ok(mut readable)) = self.socket.poll_readable(cx) else {
                self.registered(Some(cx.waker()));
                // About to wait: what reads left goes first (the peer may wait for it). While
                // the driver task watches, the call's own poll already woke it to send.
                if self.calls_watch() && self.changed(&mut shared.driver(), Change::Waits) {
                    wake.notify_one();
                }
                return Poll::Pending;
            };
            if self.receive_and_hand_over(&mut readable, &mut receiving, shared, cx.waker(), call) {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }

    /// The receive side, if no one else holds it (a poisoned lock is taken as it is: what
    /// it guards is a buffer and the datagrams received into it).
    fn try_receiving(&self) -> Option<MutexGuard<'_, Receiving>> {
        match self.receiving.try_lock() {
            Ok(r) => Some(r),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// A call's receive from a socket found `readable`: hands what came to the driver in
    /// the calling task, naming the call (`call`, of the task `waker` wakes), which is then
    /// spared its own wake-up (`Shared::hand_over`). The call's task is no longer the one registered for the socket
    /// (a ready poll does not register it). Whether anything came.
    fn receive_and_hand_over(
        &self,
        readable: &mut Readable<'_>,
        rx: &mut Receiving,
        shared: &Shared,
        waker: &Waker,
        call: Option<CallId>,
    ) -> bool {
        self.registered(None);
        receive(readable, &self.state, &mut rx.inbox, &mut rx.received);
        if rx.received.is_empty() {
            return false;
        }
        self.call_received();
        shared.hand_over(rx.received.drain(..), waker, call);
        true
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

/// Receives until the socket has nothing more (or [`RECV_BURST`] times, or [`BURST_BYTES`]),
/// into `received`.
/// Each receive offers two rooms: where [`SHORT_RECEIVE_EMPTIES`], one that fills only the
/// first has emptied the socket, and its readiness is cleared then (`Readable::drained`)
/// rather than by one more receive that would block, a system call each wake-up saves.
pub(crate) fn receive(
    readable: &mut Readable<'_>,
    state: &UdpSocketState,
    inbox: &mut Inbox,
    received: &mut Vec<(SocketAddr, BytesMut, usize)>,
) {
    let mut bytes = 0;
    for _ in 0..RECV_BURST {
        if bytes >= BURST_BYTES {
            break;
        }
        let mut meta = [RecvMeta::default(); Inbox::SLOTS];
        let r = readable.try_recv(|socket| {
            let mut bufs = inbox.rooms().map(IoSliceMut::new);
            state.recv(socket, &mut bufs, &mut meta)
        });
        match r {
            Ok(n) if n > 0 => {
                let meta = &meta[..n.min(Inbox::SLOTS)];
                bytes += meta.iter().map(|m| m.len).sum::<usize>();
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

    /// A wake-up receives no more once it holds [`BURST_BYTES`] (a block), however much
    /// waits: 1,000 datagrams of 1,200 bytes (1.2 MB, within the 4 MiB socket buffer weir
    /// asks for), sent in GSO runs as weir's sender sends them, come out a block's worth and
    /// at most one receive more at a time, and the socket stays readable for the rest, which
    /// the next wake-ups take, all of it, in order. Without the bound one wake-up took them
    /// all.
    #[tokio::test]
    async fn a_wake_up_takes_a_block_s_worth_and_leaves_the_rest_readable() {
        let raw = weir_driver::bind_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        // Linux reports twice the bytes it accounts, and a 1,200-byte datagram takes about
        // 2,300 of them: 1,000 need a buffer of about 4.6 MB as reported.
        let buffer = socket2::SockRef::from(&raw).recv_buffer_size().unwrap();
        if buffer < 5 << 20 {
            eprintln!("skipped: the OS gave a {buffer}-byte receive buffer (net.core.rmem_max)");
            return;
        }
        raw.set_nonblocking(true).unwrap();
        let state = weir_driver::udp_state(&raw).unwrap();
        let addr = raw.local_addr().unwrap();
        let socket = crate::socket::Socket::new(raw).unwrap();
        // Sent as weir sends, in GSO runs of 40, which GRO delivers as batches.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_state = weir_driver::udp_state(&peer).unwrap();
        const DATAGRAMS: u32 = 1000;
        for run in 0..DATAGRAMS / 40 {
            let mut contents = vec![0u8; 40 * 1200];
            for (k, d) in contents.chunks_mut(1200).enumerate() {
                d[..4].copy_from_slice(&(run * 40 + k as u32).to_le_bytes());
            }
            let batch = weir_driver::Batch {
                destination: addr,
                contents: &contents,
                segment_size: 1200,
            };
            batch.send(&peer_state, (&peer).into()).unwrap();
        }
        let (mut inbox, mut received) = (Inbox::new(), Vec::new());
        let mut held = Vec::new();
        let mut wake_ups = 0;
        while held.len() < DATAGRAMS as usize {
            let mut readable = bounded(socket.readable()).await.unwrap();
            receive(&mut readable, &state, &mut inbox, &mut received);
            wake_ups += 1;
            let bytes: usize = received.iter().map(|(_, d, _)| d.len()).sum();
            // The last receive may pass the bound by what two GRO batches hold.
            assert!(
                bytes < BURST_BYTES + Inbox::SLOTS * Inbox::ROOM,
                "{bytes} bytes in one wake-up"
            );
            for (_, d, stride) in received.drain(..) {
                // A GRO batch: datagrams of `stride` bytes back to back (0: one).
                let stride = if stride == 0 { d.len() } else { stride };
                held.extend(d.chunks(stride).map(<[u8]>::to_vec));
            }
        }
        assert!(wake_ups >= 1_200_000 / Inbox::BLOCK, "{wake_ups} wake-ups");
        for (i, d) in held.iter().enumerate() {
            assert_eq!(
                (d.len(), &d[..4]),
                (1200, &(i as u32).to_le_bytes()[..]),
                "datagram {i}"
            );
        }
    }
}
