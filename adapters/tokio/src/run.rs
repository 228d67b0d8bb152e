//! The driver task: moves datagrams and time between tokio and the
//! [`Driver`](weir_driver::Driver), and nothing else. The handles run their calls on the
//! driver themselves (under [`Shared`]'s lock) and wake this task (`wake`) when a call left
//! something to send or an earlier deadline.
//!
//! The socket is driven through `quinn-udp`: sends are batches of equal datagrams cut by
//! the kernel (GSO) where the platform has it, receives take a whole GRO batch (or one
//! datagram) into the [`Inbox`]'s shared blocks. Each wake-up drains the socket (up to
//! [`RECV_BURST`] receives, outside the lock) and hands what came to the driver under one
//! lock, before anything is sent, so the acknowledgements and credit the core writes in
//! answer go out together. When that woke calls, the task yields once before it sends: the
//! woken tasks read what came, and the credit and receipts their reads free go out with the
//! answers they write, one datagram instead of two. No system call is made under the lock.
//! A turn starts by taking the wake-up a call stored meanwhile ([`take_stored_wake`]): its
//! sends answer it.
//!
//! A shard of an endpoint ([`Endpoint::bind_sharded`](crate::Endpoint::bind_sharded)) hands
//! what its socket received for another shard to that shard first (weir-driver's `Router`),
//! outside its own lock.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::sync::Notify;
use weir_driver::{Batch, Inbox, Outbox, Router, Shared};

use crate::alarm::Alarm;
use crate::socket::{Readable, Socket};

/// Receives per wake-up before the task sends and yields.
const RECV_BURST: usize = 32;

/// Marks the endpoint stopped when the task ends, however it ends (shut down, or dropped
/// with its runtime): calls then fail at once instead of waiting for a task that is gone.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Which shard of an endpoint a task drives, and the router among them (weir-driver's
/// `shards`); `None` for an endpoint alone on its address.
pub(crate) type Shard = Option<(usize, Arc<Router>)>;

pub(crate) async fn run(shared: Arc<Shared>, wake: Arc<Notify>, socket: std::net::UdpSocket, shard: Shard) {
    let _stopped = Stopped(Arc::clone(&shared));
    let state = match UdpSocketState::new((&socket).into()) {
        Ok(s) => s,
        Err(e) => {
            // Only a socket that is not a UDP socket fails here; the endpoint cannot run.
            tracing::error!(%e, "the socket cannot be driven");
            return;
        }
    };
    let socket = match Socket::new(socket) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%e, "the socket cannot be registered with the runtime");
            return;
        }
    };
    let mut outbox = Outbox::new();
    let mut inbox = Inbox::new();
    let mut received = Vec::with_capacity(RECV_BURST);
    let mut away = Vec::new();
    // One timer for the task's life (module `alarm`), moved as module `timer` says: to an
    // earlier deadline at once, to a later one only once the armed one is near.
    let mut alarm = Alarm::new();
    loop {
        #[cfg(test)]
        tests::TURNS.set(tests::TURNS.get() + 1);
        take_stored_wake(&wake);
        loop {
            let batch = outbox.next(&mut shared.driver(), state.max_gso_segments());
            let Some(batch) = batch else { break };
            send(&socket, &state, batch).await;
        }
        let (deadline, seen, done) = {
            let mut driver = shared.driver();
            (driver.deadline(), driver.last_reading(), driver.is_shut_down())
        };
        if done {
            return;
        }
        alarm.follow(deadline, seen);
        let mut woke = 0;
        tokio::select! {
            // A call left something to send, or moved the deadline (a permit stored while
            // the task was busy is taken here, so no call goes unnoticed).
            () = wake.notified() => {}
            r = socket.readable() => {
                if let Ok(mut readable) = r {
                    receive(&mut readable, &state, &mut inbox, &mut received);
                    if let Some((here, router)) = &shard {
                        router.sort(*here, &mut received, &mut away);
                    }
                    let mut driver = shared.driver();
                    for (from, datagrams, stride) in received.drain(..) {
                        driver.handle_received(from, datagrams, stride);
                    }
                    woke = driver.unlock();
                    if let Some((_, router)) = &shard {
                        router.forward(&mut away);
                    }
                }
            }
            () = alarm.fired(), if alarm.is_armed() => {
                shared.driver().handle_timeout();
            }
        }
        if woke > 0 {
            // The calls the datagrams woke read what came, and free credit and stream slots
            // the peer is to hear of: let them run first, so that one send carries it all.
            tokio::task::yield_now().await;
        }
    }
}

/// Takes the wake-up a call stored (`Notify`'s permit) while the task was busy, at the start
/// of a turn: the turn's sends take what that call left, and its deadline is read after
/// them, so the wake-up is answered. Left stored, it ended the turn's wait at once, and the
/// task went round again for nothing: in a round trip, each side's call writes its answer
/// (and wakes the task) before the task's turn after the `yield_now` sends it, so every
/// round trip cost each side a turn that found nothing to send (weir-bench's `rtt`:
/// adapters/bench/README.md, issue 35's sixteenth round).
fn take_stored_wake(wake: &Notify) {
    // `enable` takes a stored permit; dropped after taking it, the `Notified` passes
    // nothing on.
    std::pin::pin!(wake.notified()).enable();
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
fn receive(
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

/// Sends one batch, waiting while the socket's buffer is full. A failed send loses these
/// datagrams only; recovery resends what mattered.
async fn send(socket: &Socket, state: &UdpSocketState, batch: Batch<'_>) {
    let transmit = batch.transmit();
    loop {
        match state.send(socket.sock_ref(), &transmit) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    return;
                }
            }
            // quinn-udp logs (rate-limited) and swallows other errors.
            _ => return,
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

    thread_local! {
        /// Turns the driver tasks on this thread began (a current-thread runtime's tasks run
        /// on the thread that drives it).
        pub(super) static TURNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// A wake-up stored before a turn is taken by it: the wait that ends the turn waits.
    #[test]
    fn a_turn_takes_the_wake_up_stored_before_it() {
        let wake = Notify::new();
        wake.notify_one();
        take_stored_wake(&wake);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(pin!(wake.notified()).poll(&mut cx).is_pending());
        // And one stored after it is kept for the wait.
        wake.notify_one();
        assert!(pin!(wake.notified()).poll(&mut cx).is_ready());
    }

    /// A round trip of small messages between two endpoints on one current-thread runtime:
    /// each side's task turns once (it sends what the woken call wrote, waits, receives and
    /// yields), not twice (measured: 2.0 turns a round trip for both sides, 4.0 without
    /// [`take_stored_wake`], the second turn of each side finding nothing to send).
    #[test]
    fn a_round_trip_costs_each_side_one_turn() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let local = "127.0.0.1:0".parse().unwrap();
            let server = crate::Endpoint::bind(local, crate::Config::default()).unwrap();
            let client = crate::Endpoint::bind(local, crate::Config::default()).unwrap();
            let to = server.local_addr();
            let serving = tokio::spawn(async move {
                let conn = server.accept().await.unwrap();
                while let Ok(m) = conn.recv_message().await {
                    conn.send_message_with(m, crate::Confirm::Queued).await.unwrap();
                }
            });
            let conn = bounded(client.connect(to)).await.unwrap();
            let ping = bytes::Bytes::from_static(&[7; 64]);
            // Warm up: the handshake, the first samples, the stream count.
            for _ in 0..100 {
                conn.send_message_with(ping.clone(), crate::Confirm::Queued)
                    .await
                    .unwrap();
                bounded(conn.recv_message()).await.unwrap();
            }
            let before = TURNS.get();
            let n = 1_000;
            for _ in 0..n {
                conn.send_message_with(ping.clone(), crate::Confirm::Queued)
                    .await
                    .unwrap();
                bounded(conn.recv_message()).await.unwrap();
            }
            let per_round_trip = (TURNS.get() - before) as f64 / n as f64;
            assert!(
                per_round_trip <= 2.2,
                "{per_round_trip} turns a round trip, both sides"
            );
            drop(conn);
            client.close().await;
            serving.abort();
        });
    }

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
