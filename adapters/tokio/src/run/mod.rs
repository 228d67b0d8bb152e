//! The driver task: moves datagrams and time between tokio and the
//! [`Driver`](weir_driver::Driver) when the calls do not. The handles run their calls on
//! the driver themselves (under [`Shared`]'s lock) and wake this task (`wake`) when a call
//! left something for it to send or an earlier deadline (module `io` says which).
//!
//! The socket is driven through `quinn-udp`: sends are batches of equal datagrams cut by
//! the kernel (GSO) where the platform has it, receives take a whole GRO batch (or one
//! datagram) into the [`Inbox`](weir_driver::Inbox)'s shared blocks. While the task
//! watches the socket, each wake-up drains it (up to [`RECV_BURST`](crate::receive::RECV_BURST) receives or [`BURST_BYTES`](crate::receive::BURST_BYTES), under the
//! receive lock, outside the driver's) and hands what came to the driver under one lock,
//! before anything is sent, so the acknowledgements and credit the core writes in answer
//! go out together. When that woke calls, the task yields once before it sends: the woken
//! tasks read what came, and the credit and receipts their reads free go out with the
//! answers they write, one datagram instead of two. Not when what came ended a handshake:
//! its last message goes first, as the peer waits for it and a connect's caller may run on
//! for long before it lets the task run again. No system call is made under the
//! driver's lock. A turn starts by taking the wake-up a call stored meanwhile
//! ([`take_stored_wake`]): its sends answer it.
//!
//! Who watches the socket is the task's [`Duty`]: once calls receive for themselves
//! (module `receive`), the task stands by, not watching, and takes the socket back after a
//! stand-by in which no call received (module `io`). Watch → StandBy when a call received;
//! StandBy → StandBy at a stand-by's end if calls received during it, or at a turn within
//! `RENEW_AHEAD` of its end if they did (a call's receive wakes the task for it, so that
//! the alarm does not fire while calls keep receiving); → Watch if none did or when a call
//! gave the socket back.
//!
//! A shard of an endpoint ([`Endpoint::bind_sharded`](crate::Endpoint::bind_sharded)) hands
//! what its socket received for another shard to that shard first (weir-driver's `Router`),
//! outside its own lock; its calls do not receive.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use quinn_udp::UdpSocketState;
use tokio::sync::Notify;
use weir_driver::{Batch, Router, Shared};

use crate::alarm::Alarm;
use crate::io::{renewable, Io, STANDBY};
use crate::receive::receive;
use crate::socket::Socket;

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

/// What the task does with the socket (module `io`, "Who watches the socket").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Duty {
    /// It watches the socket and receives.
    Watch,
    /// Calls receive; it stands by until `until`, and then looks whether calls received
    /// since the stand-by began, when they had made `receives`.
    StandBy { until: Instant, receives: u64 },
}

impl Duty {
    /// The duty for the turn about to wait, at `now`: calls that began to receive make a
    /// watching task stand by; a call that gave the socket back (module `io`) ends a
    /// stand-by.
    fn for_turn(self, io: &Io, now: Instant) -> Duty {
        match (self, io.calls_watch()) {
            (Duty::Watch, true) => Duty::StandBy {
                until: now + STANDBY,
                receives: io.call_receives(),
            },
            (Duty::StandBy { .. }, false) => Duty::Watch,
            (duty, _) => duty,
        }
    }

    /// The alarm fired at `now`: at a stand-by's end, another if calls received meanwhile,
    /// else the socket back to the task.
    fn at_alarm(self, io: &Io, now: Instant) -> Duty {
        match self {
            Duty::StandBy { until, receives } if now >= until => {
                #[cfg(test)]
                {
                    tests::STANDBY_ENDS.set(tests::STANDBY_ENDS.get() + 1);
                    tests::AT_STANDBY_END.set(true);
                }
                let made = io.call_receives();
                if made == receives {
                    #[cfg(test)]
                    tests::TAKEN_BACK_AT_END.set(tests::TAKEN_BACK_AT_END.get() + 1);
                    io.task_watches();
                    return Duty::Watch;
                }
                Duty::StandBy {
                    until: now + STANDBY,
                    receives: made,
                }
            }
            duty => duty,
        }
    }

    /// The duty for a turn at `now`, when calls have made `receives` so far: a stand-by
    /// that may be renewed ([`renewable`]: within
    /// [`RENEW_AHEAD`](crate::io::RENEW_AHEAD) of its end), in which calls received, is
    /// renewed from now (module `io`).
    fn renewed(self, receives: u64, now: Instant) -> Duty {
        match self {
            Duty::StandBy {
                until,
                receives: at_start,
            } if receives != at_start && renewable(now, until) => Duty::StandBy {
                until: now + STANDBY,
                receives,
            },
            duty => duty,
        }
    }

    /// The stand-by's end, if the task stands by.
    fn standby_end(self) -> Option<Instant> {
        match self {
            Duty::Watch => None,
            Duty::StandBy { until, .. } => Some(until),
        }
    }

    /// When the task must wake: by the core's `deadline`, and by a stand-by's end.
    fn wake_by(self, deadline: Option<Instant>) -> Option<Instant> {
        match self {
            Duty::Watch => deadline,
            Duty::StandBy { until, .. } => Some(deadline.map_or(until, |d| d.min(until))),
        }
    }
}

pub(crate) async fn run(shared: Arc<Shared>, wake: Arc<Notify>, io: Arc<Io>, shard: Shard) {
    let _stopped = Stopped(Arc::clone(&shared));
    let mut away = Vec::new();
    let mut duty = Duty::Watch;
    // One timer for the task's life (module `alarm`), moved as module `timer` says: to an
    // earlier deadline at once, to a later one only once the armed one is near.
    let mut alarm = Alarm::new();
    loop {
        take_stored_wake(&wake);
        send_all(&shared, &io).await;
        let (deadline, seen, done) = {
            let mut driver = shared.driver();
            (driver.deadline(), driver.last_reading(), driver.is_shut_down())
        };
        if done {
            return;
        }
        let now = Instant::now();
        duty = duty.for_turn(&io, now);
        let renewed = duty.renewed(io.call_receives(), now);
        if let Some(end) = duty.standby_end().filter(|_| renewed != duty) {
            // The alarm, armed for the stand-by's end, moves with it: module `timer`
            // leaves a timer near its time where it is, to fire early for nothing.
            alarm.postpone(end, renewed.wake_by(deadline));
            duty = renewed;
        }
        io.stands_by_until(duty.standby_end());
        alarm.follow(duty.wake_by(deadline), seen);
        io.sleep(alarm.armed());
        let (mut woke, mut handshake_ended) = (0, false);
        tokio::select! {
            // A call left something to send, moved the deadline, or handed the socket
            // back (a permit stored while the task was busy is taken here, so no call goes
            // unnoticed).
            () = wake.notified() => {}
            r = io.socket.readable(), if duty == Duty::Watch => {
                if let Ok(mut readable) = r {
                    let mut receiving = io.receiving();
                    let rx = &mut *receiving;
                    receive(&mut readable, &io.state, &mut rx.inbox, &mut rx.received);
                    if let Some((here, router)) = &shard {
                        router.sort(*here, &mut rx.received, &mut away);
                    }
                    let mut driver = shared.driver();
                    for (from, datagrams, stride) in rx.received.drain(..) {
                        driver.handle_received(from, datagrams, stride);
                    }
                    handshake_ended = driver.take_handshake_ended();
                    woke = driver.unlock();
                    drop(receiving);
                    if let Some((_, router)) = &shard {
                        router.forward(&mut away);
                    }
                }
            }
            () = alarm.fired(), if alarm.is_armed() => {
                #[cfg(test)]
                tests::ALARM_FIRINGS.set(tests::ALARM_FIRINGS.get() + 1);
                shared.driver().handle_timeout();
                duty = duty.at_alarm(&io, Instant::now());
            }
        }
        if woke > 0 {
            // A handshake that ended leaves its last message to send, which the peer waits
            // for before it counts the connection as made: it goes before the woken calls
            // run, as they may run on for long (a connect's caller that builds a large
            // message, blocking the thread).
            if handshake_ended {
                send_all(&shared, &io).await;
            }
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
/// adapters/bench/rounds.md, issue 35's sixteenth round).
fn take_stored_wake(wake: &Notify) {
    // `enable` takes a stored permit; dropped after taking it, the `Notified` passes
    // nothing on.
    std::pin::pin!(wake.notified()).enable();
}

/// Sends what a call's send left for want of room, then everything the driver has to send
/// now, waiting while the socket's buffer is full (outside the locks: a batch refused for
/// now is copied out first, as a call's is). Calls leave a batch only while the task sleeps
/// (module `io`), so it is looked for once, before the driver's batches.
async fn send_all(shared: &Shared, io: &Io) {
    #[cfg(test)]
    let at_standby_end = tests::AT_STANDBY_END.take();
    let mut stalled = io.sending().stalled.take();
    loop {
        if let Some((destination, contents, segment_size)) = stalled.take() {
            let batch = Batch {
                destination,
                contents: &contents,
                segment_size,
            };
            send(&io.socket, &io.state, batch).await;
        }
        // The driver's lock before the send side's: calls hold the first when they take
        // the second.
        let mut driver = shared.driver();
        let mut sending = io.sending();
        let Some(batch) = sending.outbox.next(&mut driver, io.state.max_gso_segments()) else {
            return;
        };
        drop(driver);
        #[cfg(test)]
        {
            tests::TASK_SENDS.set(tests::TASK_SENDS.get() + 1);
            let ended = tests::STANDBY_END_SENDS.get() + u64::from(at_standby_end);
            tests::STANDBY_END_SENDS.set(ended);
        }
        match batch.send(&io.state, io.socket.sock2()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stalled = Some((batch.destination, batch.contents.to_vec(), batch.segment_size));
            }
            // quinn-udp logs (rate-limited) and swallows other errors.
            _ => {}
        }
    }
}

/// Sends one batch, waiting while the socket's buffer is full. A failed send loses these
/// datagrams only; recovery resends what mattered.
async fn send(socket: &Socket, state: &UdpSocketState, batch: Batch<'_>) {
    loop {
        match batch.send(state, socket.sock2()) {
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
pub(crate) mod tests;
