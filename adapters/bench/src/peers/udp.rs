//! Raw UDP ping-pong on tokio: one datagram each way per round trip, nothing resent,
//! nothing ordered. The floor any transport's round trip is measured against.

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;

use super::{localhost, pair, runtime};
use crate::workload::{drive, serve, Link, Metric, Placement, Workload};

/// A side's socket and, when it is left unconnected (`WEIR_BENCH_UDP_UNCONNECTED=1`), the
/// peer's address each datagram goes to.
struct UdpLink(UdpSocket, Option<SocketAddr>);

/// Whether raw UDP's sockets stay unconnected, as a transport's one socket for every peer
/// does (weir's, quinn's): each send then names its destination and the kernel looks the
/// route up again, where a connected socket keeps it (`WEIR_BENCH_UDP_UNCONNECTED=1`).
/// Connected by default: the floor as low as UDP goes.
fn unconnected() -> bool {
    std::env::var_os("WEIR_BENCH_UDP_UNCONNECTED").is_some_and(|v| v == "1")
}

/// Says on standard error that `side`'s socket has no peer, as the socket itself reports
/// it (not as the setting asked): what the unconnected floor's test checks.
fn say_if_unconnected(socket: &UdpSocket, side: &str) {
    if socket.peer_addr().is_err() {
        eprintln!("raw UDP's {side} socket is unconnected");
    }
}

impl Link for UdpLink {
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        match self.1 {
            Some(to) => self.0.send_to(&msg, to).await.map(drop),
            None => self.0.send(&msg).await.map(drop),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(2048);
        let n = match self.1 {
            // (Only the peer writes to it here: no need to check where it came from.)
            Some(_) => self.0.recv_from(&mut buf).await?.0,
            None => self.0.recv(&mut buf).await?,
        };
        buf.truncate(n);
        Ok(buf.freeze())
    }

    async fn recv_each(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let m = self.recv().await?;
        each(&m);
        Ok(m.len() as u64)
    }
}

pub(super) fn run(workload: Workload, placement: Placement) -> io::Result<Vec<(Metric, f64)>> {
    pair(
        placement,
        move |ready| {
            runtime()?.block_on(async move {
                keep_a_timer_pending();
                let socket = UdpSocket::bind(localhost()).await?;
                let _ = ready.send(socket.local_addr()?);
                // The client's first datagram says where it is.
                let mut buf = [0; 16];
                let (_, client) = socket.recv_from(&mut buf).await?;
                let to = if unconnected() {
                    Some(client)
                } else {
                    socket.connect(client).await?;
                    None
                };
                say_if_unconnected(&socket, "server");
                serve(workload, &mut UdpLink(socket, to)).await
            })
        },
        move |server| {
            runtime()?.block_on(async move {
                keep_a_timer_pending();
                let socket = UdpSocket::bind(localhost()).await?;
                let to = if unconnected() {
                    Some(server)
                } else {
                    socket.connect(server).await?;
                    None
                };
                say_if_unconnected(&socket, "client");
                let mut link = UdpLink(socket, to);
                link.send(Bytes::from_static(b"hello")).await?;
                drive(workload, &mut link).await
            })
        },
    )
}

/// With `WEIR_BENCH_UDP_TIMER_MS=N`, a task on each side's runtime sleeps N ms again and
/// again, so that every wait of the runtime has a timer due within N ms, as a transport's
/// timers make it: what a near timer costs each wait, against raw UDP without one
/// (rounds.md, "Issue 35, seventh round"). With `WEIR_BENCH_UDP_TIMERFD=1` as well (Linux,
/// Android), the timer is a timerfd the runtime watches like a socket, as weir-tokio's
/// driver task keeps its own: the runtime's waits then carry no timeout (rounds.md, "Issue
/// 35, eighth round").
fn keep_a_timer_pending() {
    let Some(every) = std::env::var("WEIR_BENCH_UDP_TIMER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .filter(|&ms| ms > 0)
        .map(std::time::Duration::from_millis)
    else {
        return;
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if std::env::var_os("WEIR_BENCH_UDP_TIMERFD").is_some_and(|v| v == "1") {
        eprintln!("raw UDP keeps a timerfd firing every {every:?}");
        timerfd::keep_firing(every);
        return;
    }
    eprintln!("raw UDP keeps a tokio timer firing every {every:?}");
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod timerfd {
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    struct Timer(TimerFd);

    impl AsRawFd for Timer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    /// A timerfd expiring every `every`, read by a task of the current runtime.
    pub(super) fn keep_firing(every: Duration) {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags).expect("a timerfd");
        let period = TimeSpec::from_duration(every);
        timer
            .set(Expiration::Interval(period), TimerSetTimeFlags::empty())
            .expect("the timerfd set");
        // SAFETY: the `AsyncFd` owns the timer, whose `TimerFd` owns its descriptor, which
        // so stays open and names the same timer until the `AsyncFd` is dropped.
        let timer = unsafe { AsyncFd::register_with_interest(Timer(timer), Interest::READABLE) }
            .expect("the timerfd registered");
        tokio::spawn(async move {
            loop {
                let Ok(mut ready) = timer.readable().await else {
                    return;
                };
                let _ = ready.try_io(|t| t.get_ref().0.wait().map_err(std::io::Error::from));
            }
        });
    }
}
