//! The driver task: moves datagrams, time and commands between tokio and the [`Driver`],
//! and nothing else.
//!
//! The socket is driven through `quinn-udp`: sends are batches of equal datagrams cut by
//! the kernel (GSO) where the platform has it, receives take a whole GRO batch (or one
//! datagram) into the [`Inbox`]'s shared blocks. Each wake-up drains the socket (up to
//! [`RECV_BURST`] receives) before anything is sent, so the acknowledgements and credit
//! the core writes in answer go out together.

use std::io::{self, IoSliceMut};

use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use weir_driver::{Batch, Command, Driver, Inbox, Outbox};

/// Receives per wake-up before the task sends and yields.
const RECV_BURST: usize = 32;

/// Rounds of [`cork`] before what the commands wrote is sent regardless.
const CORK_ROUNDS: usize = 64;

/// Commands that go uncorked after a cork that gathered one command at most.
const CORK_SKIP: u8 = 8;

/// What the handles send the task.
pub(crate) enum Msg {
    Command(Command),
    /// The endpoint was dropped or closed: shut down gracefully.
    Shutdown,
}

pub(crate) async fn run(mut driver: Driver, socket: UdpSocket, mut commands: UnboundedReceiver<Msg>) {
    let state = match UdpSocketState::new((&socket).into()) {
        Ok(s) => s,
        Err(e) => {
            // Only a socket that is not a UDP socket fails here; the endpoint cannot run.
            tracing::error!(%e, "the socket cannot be driven");
            return;
        }
    };
    let mut outbox = Outbox::new();
    let mut inbox = Inbox::new();
    let mut handles = true;
    // One timer for the task's life, moved only to an earlier deadline: tokio wakes its own
    // thread (a write to an eventfd) each time a timer is set earlier than the one it
    // waits for, and the core's deadline moves at nearly every packet. A later deadline
    // waits for the armed timer to fire, which then finds nothing due and re-arms.
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<std::time::Instant> = None;
    // Commands left before corking is tried again, after a cork that gathered one command
    // at most (a request, then the wait for its answer: nothing to gather but the wait).
    let mut skip_cork = 0u8;
    loop {
        while let Some(batch) = outbox.next(&mut driver, state.max_gso_segments()) {
            send(&socket, &state, batch).await;
        }
        if driver.is_shut_down() {
            return;
        }
        if let Some(at) = driver.deadline().filter(|&at| armed.is_none_or(|a| at < a)) {
            timer.as_mut().reset(at.into());
            armed = Some(at);
        }
        tokio::select! {
            m = commands.recv(), if handles => {
                handles = handle(&mut driver, m);
                if handles && skip_cork > 0 {
                    skip_cork -= 1;
                } else if handles && cork(&mut driver, &mut commands).await <= 1 {
                    skip_cork = CORK_SKIP;
                }
            }
            r = socket.readable() => {
                if r.is_ok() {
                    receive(&socket, &state, &mut inbox, &mut driver);
                }
            }
            () = &mut timer, if armed.is_some() => {
                armed = None;
                driver.handle_timeout();
            }
        }
    }
}

/// Passes one message from the handles on; `false` once every handle is gone.
fn handle(driver: &mut Driver, m: Option<Msg>) -> bool {
    match m {
        Some(Msg::Command(c)) => driver.command(c),
        Some(Msg::Shutdown) => driver.shutdown(),
        // Every handle is gone: nobody can use the endpoint any more.
        None => {
            driver.shutdown();
            return false;
        }
    }
    true
}

/// After a command, the task that sent it often has the next one ready (a loop of
/// `send_message`): give the runtime one turn, take whatever was queued meanwhile, and go
/// on while commands keep coming (at most [`CORK_ROUNDS`] turns). Their messages then share
/// datagrams and system calls instead of leaving one by one; a lone call costs one yield.
/// Returns how many commands it gathered: a cork that gathered one at most (a request,
/// then the wait for its answer) is not tried again for [`CORK_SKIP`] commands, since on a
/// current-thread runtime each yield costs the runtime a poll of its sockets.
async fn cork(driver: &mut Driver, commands: &mut UnboundedReceiver<Msg>) -> usize {
    let mut gathered = 0;
    for _ in 0..CORK_ROUNDS {
        tokio::task::yield_now().await;
        let mut more = false;
        while let Ok(m) = commands.try_recv() {
            more = true;
            gathered += 1;
            if !handle(driver, Some(m)) {
                return gathered;
            }
        }
        if !more {
            break;
        }
    }
    gathered
}

/// Receives until the socket has nothing more (or [`RECV_BURST`] times).
fn receive(socket: &UdpSocket, state: &UdpSocketState, inbox: &mut Inbox, driver: &mut Driver) {
    for _ in 0..RECV_BURST {
        let mut meta = [RecvMeta::default()];
        let r = socket.try_io(Interest::READABLE, || {
            let mut bufs = [IoSliceMut::new(inbox.room())];
            state.recv(socket.into(), &mut bufs, &mut meta)
        });
        match r {
            Ok(n) if n > 0 => {
                let m = meta[0];
                driver.handle_received(m.addr, inbox.take(m.len), m.stride);
            }
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // Transient (an ICMP unreachable surfacing): the core's own timers deal with a
            // peer that is gone.
            Err(e) => tracing::trace!(%e, "receive failed"),
        }
    }
}

/// Sends one batch, waiting while the socket's buffer is full. A failed send loses these
/// datagrams only; recovery resends what mattered.
async fn send(socket: &UdpSocket, state: &UdpSocketState, batch: Batch<'_>) {
    let transmit = batch.transmit();
    loop {
        match socket.try_io(Interest::WRITABLE, || state.send(socket.into(), &transmit)) {
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
