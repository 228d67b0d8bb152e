//! The driver task: moves datagrams, time and commands between tokio and the [`Driver`],
//! and nothing else.

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use weir_core::wire::MAX_DATAGRAM_SIZE;
use weir_driver::{Command, Driver};

/// What the handles send the task.
pub(crate) enum Msg {
    Command(Command),
    /// The endpoint was dropped or closed: shut down gracefully.
    Shutdown,
}

pub(crate) async fn run(mut driver: Driver, socket: UdpSocket, mut commands: UnboundedReceiver<Msg>) {
    let mut inbuf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut outbuf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut handles = true;
    loop {
        while let Some(t) = driver.poll_transmit(&mut outbuf) {
            // A full buffer or an unreachable network (ENOBUFS, ENETUNREACH) loses this
            // datagram only; recovery resends what mattered.
            if let Err(e) = socket.send_to(&outbuf[..t.len], t.destination).await {
                tracing::trace!(%e, to = %t.destination, "send failed");
            }
        }
        if driver.is_shut_down() {
            return;
        }
        let deadline = driver.deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            m = commands.recv(), if handles => match m {
                Some(Msg::Command(c)) => driver.command(c),
                Some(Msg::Shutdown) => driver.shutdown(),
                // Every handle is gone: nobody can use the endpoint any more.
                None => {
                    handles = false;
                    driver.shutdown();
                }
            },
            r = socket.recv_from(&mut inbuf) => {
                // Errors are transient here (an ICMP unreachable surfacing): the core's
                // own timers deal with a peer that is gone.
                if let Ok((len, from)) = r {
                    // One copy, out of the reused receive buffer (a pool is issue 10's).
                    driver.handle_datagram(from, Bytes::copy_from_slice(&inbuf[..len]));
                }
            }
            () = sleep_until(deadline) => driver.handle_timeout(),
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
