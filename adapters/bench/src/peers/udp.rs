//! Raw UDP ping-pong on tokio: one datagram each way per round trip, nothing resent,
//! nothing ordered. The floor any transport's round trip is measured against.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;

use super::{localhost, pair, runtime};
use crate::workload::{drive, serve, Link, Metric, Placement, Workload};

struct UdpLink(UdpSocket);

impl Link for UdpLink {
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        self.0.send(&msg).await.map(drop)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(2048);
        let n = self.0.recv(&mut buf).await?;
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
                socket.connect(client).await?;
                serve(workload, &mut UdpLink(socket)).await
            })
        },
        move |server| {
            runtime()?.block_on(async move {
                keep_a_timer_pending();
                let socket = UdpSocket::bind(localhost()).await?;
                socket.connect(server).await?;
                socket.send(b"hello").await?;
                drive(workload, &mut UdpLink(socket)).await
            })
        },
    )
}

/// With `WEIR_BENCH_UDP_TIMER_MS=N`, a task on each side's runtime sleeps N ms again and
/// again, so that every wait of the runtime has a timer due within N ms, as a transport's
/// timers make it: what a near timer costs each wait, against raw UDP without one
/// (README.md, "Issue 35, seventh round").
fn keep_a_timer_pending() {
    let Some(every) = std::env::var("WEIR_BENCH_UDP_TIMER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .filter(|&ms| ms > 0)
        .map(std::time::Duration::from_millis)
    else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
        }
    });
}
