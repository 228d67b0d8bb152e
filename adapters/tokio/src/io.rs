//! What the driver task (module `run`) and the handles' calls share beside the driver: the
//! socket, its receive and send sides, and who watches the socket ([`Io`]). Module
//! `receive` says how a waiting call receives; this one decides who sends what a call left
//! ([`Io::changed`]).
//!
//! **Who watches the socket.** The driver task, until a call that was about to wait
//! receives for itself (module `receive`): from then on calls watch it and the task stands
//! by, not watching, [`STANDBY`] at a time (it still fires the core's timers). A stand-by
//! in which calls received is followed by another; one in which none did gives the socket
//! back to the task. A call that receives within [`RENEW_AHEAD`] of the stand-by's end
//! wakes the task to begin the next one then ([`Io::renewal_due`]), so that calls which
//! keep receiving never let a stand-by end: each end the task's alarm fired, an interrupt
//! and a wake-up of the thread, which on a CPU both sides of a round trip share cost the
//! round trip it fell in (weir-bench's `rtt`, `weir-bench ab` over twelve turns: p99 46.9
//! against 34.5 µs with the renewal, p50 unchanged; adapters/bench/rounds.md, "The round
//! trip's tail: our own timers"), where a renewal is a turn of the task, in the calling
//! thread on a current-thread runtime. A call also gives the socket back when it is ready
//! while other calls wait with the driver and none waits for the socket
//! ([`Io::call_ready`]; only the last call to wait is registered for it): a task that made
//! round trips and went on to other work would otherwise leave another task's datagrams in the socket's buffer until the
//! stand-by's end. Any call waiting with the driver counts, an accept loop's `accept` too:
//! in a server whose accept loop waits, each call that ends gives the socket back, and its
//! round trips go through the driver task as they did before calls received (test
//! `a_waiting_accept_keeps_the_answers_with_the_driver_task`: 1,002 batches sent by the
//! server's task in 1,000 round trips, against 1 to 4 with no accept waiting). And a call
//! gives it back when it stops receiving ([`Io::call_stops_receiving`]): after as many
//! hand-overs as it may make (weir-driver's `WAIT_RECEIVES`) with datagrams still coming,
//! it waits with the driver, not for the socket, and the socket went unread until a
//! stand-by ended (after one in which the call had received: 8-16 ms; weir-bench's
//! `bulk-whole` stalled so at its start, adapters/bench/rounds.md, "weir-tokio's socket
//! left unread"). So while an application waits on its calls, a datagram wakes the task
//! that waits for it and no other (one wake-up a round trip and side, not two, and no turn
//! of the driver task), and when it stops calling, what comes waits in the socket's buffer
//! at most [`STANDBY`]: under the time a peer already lets our acknowledgements wait
//! (`max_ack_delay`, 25 ms by default). That is the bound, too, for a call dropped while it
//! waited for the socket (a `select!`'s other branch won), the last one registered.
//! weir-std's driver thread stands by the same way
//! (its stand-bys begin at 1 ms and double to 8; here each is 8 ms: stand-bys that began
//! shorter fired within a short exchange's round trips, and weir-bench's `rtt` over 1,000
//! of them had p99 33.6 µs against 24.2 without calls receiving, where 8 ms ones had 26.4
//! against 24.7; adapters/bench/rounds.md, issue 35's sixteenth round).
//!
//! **Who sends.** While the task watches the socket, it sends everything (module `run`):
//! a call wakes it. While it stands by, a call sends in its own task:
//! - the first send after a call received (a round trip's answer, a reply), and with it
//!   whatever else the core has to send (the acknowledgement of what came, the credit the
//!   reads freed), so the answer leaves without a hop through the task;
//! - what the core has to send when a call is about to wait: what reads left (credit, a
//!   receipt the peer may be waiting for);
//! - every [`READS_PER_SEND`] reads with none of those, the credit they freed.
//!
//! A send that answers nothing sends what there is and wakes the task, which gathers the
//! burst it may begin into batches as before. A call that moves the core's deadline before
//! the task's alarm wakes it: an acknowledgement due at once (for a second packet, or one
//! out of order) is a deadline of now, so what a call received is acknowledged as soon as
//! the application lets the task run, as before. A call's sends are made with the driver's
//! lock held, as weir-std's are (the task's never are), and no call waits for room in the
//! send buffer: a batch the kernel refuses for now is left to the task ([`Sending`]).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_udp::UdpSocketState;
use weir_driver::{Driver, Inbox, Outbox, Urgency};

use crate::socket::Socket;

/// Reads after which a call sends the credit they freed while the task stands by (module
/// docs): a reader that takes many messages without waiting or sending would otherwise keep
/// its sender short of credit until it waits. Half the reads after which a reading task
/// lets a watching task run (`READS_PER_TURN`); not tuned.
const READS_PER_SEND: u32 = 32;

/// How long the driver task stands by at a time while calls receive (module docs): the
/// longest a datagram waits in the socket's buffer once the application stops calling.
pub(crate) const STANDBY: Duration = Duration::from_millis(8);

/// How long before a stand-by's end a call's receive has the driver task begin the next
/// stand-by (module docs): the alarm fires at the whole millisecond at or after the end
/// (module `alarm`), so the task has 3 to 4 ms to run before it would, and calls that keep
/// receiving wake it every 5 ms or so, where the alarm fired every 8.
pub(crate) const RENEW_AHEAD: Duration = Duration::from_millis(3);

/// The renewal rule, for both sides of it (the calls' [`Io::renewal_due`], the task's
/// stand-by): a stand-by ending at `end` may be renewed at `now` once it ends within
/// [`RENEW_AHEAD`].
pub(crate) fn renewable(now: Instant, end: Instant) -> bool {
    now + RENEW_AHEAD >= end
}

/// The socket, registered with the runtime for reading, and what the driver task and the
/// calls share of it.
pub(crate) struct Io {
    pub(crate) socket: Socket,
    pub(crate) state: UdpSocketState,
    /// Held by whoever receives, across its receive and its hand-over to the driver: taken
    /// before the driver's lock, never while holding it.
    pub(crate) receiving: Mutex<Receiving>,
    /// Taken after the driver's lock, never before it; never held across a wait.
    sending: Mutex<Sending>,
    /// Whether calls may receive: not in a shard of an endpoint, whose task routes what is
    /// another shard's (weir-driver's `Router`).
    pub(crate) calls_may_receive: bool,
    /// Calls watch the socket; the driver task stands by.
    calls_watch: AtomicBool,
    /// Receives calls made: how the task sees, at a stand-by's end, that calls still do.
    call_receives: AtomicU64,
    /// A call received since a call last sent in its own task: the next send answers it.
    answering: AtomicBool,
    /// The task the last call registered for the socket stands for (its waker's data
    /// pointer: a task's wakers share it), or 0 once that call received at once.
    registrant: AtomicUsize,
    /// Reads since a call last sent: counted by the calls (`Runtime::poll_proceed`), which
    /// let a watching task run every `READS_PER_TURN` of them, and send themselves every
    /// [`READS_PER_SEND`] while it stands by.
    pub(crate) reads: AtomicU32,
    /// While the task stands by: the stand-by's end, in nanoseconds after `origin`, for the
    /// calls' side of the renewal rule ([`renewal_due`](Self::renewal_due)); `u64::MAX`
    /// while the task watches.
    standby_end: AtomicU64,
    /// Where `standby_end` is counted from.
    origin: Instant,
}

/// What a receive fills: the blocks, and the datagrams cut from them until handed over.
pub(crate) struct Receiving {
    pub(crate) inbox: Inbox,
    pub(crate) received: Vec<(SocketAddr, BytesMut, usize)>,
}

/// The send side.
pub(crate) struct Sending {
    pub(crate) outbox: Outbox,
    /// While the driver task waits: until when (its alarm's time; `Some(None)`, no alarm).
    /// `None` while it runs: it sends what calls leave then.
    asleep_until: Option<Option<Instant>>,
    /// A batch a call's send found no room for: destination, datagrams, segment size. The
    /// task sends it first, waiting for room (the one copy of sent bytes the calls make,
    /// and only then).
    pub(crate) stalled: Option<(SocketAddr, Vec<u8>, usize)>,
}

/// What a call did to the driver ([`Io::changed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// A call ran on the driver, and left what may go as `urgency` says.
    Call(Urgency),
    /// A waiting call handed datagrams it received to the driver (module `receive`).
    Received,
    /// A call is about to wait, having found nothing to receive.
    Waits,
}

impl Io {
    /// `socket` (non-blocking), registered with the current runtime for reading.
    pub(crate) fn new(socket: std::net::UdpSocket, calls_may_receive: bool) -> io::Result<Io> {
        let state = weir_driver::udp_state(&socket)?;
        Ok(Io {
            socket: Socket::new(socket)?,
            state,
            receiving: Mutex::new(Receiving {
                inbox: Inbox::new(),
                received: Vec::with_capacity(crate::receive::RECV_BURST),
            }),
            sending: Mutex::new(Sending {
                outbox: Outbox::new(),
                asleep_until: None,
                stalled: None,
            }),
            calls_may_receive,
            calls_watch: AtomicBool::new(false),
            call_receives: AtomicU64::new(0),
            answering: AtomicBool::new(false),
            registrant: AtomicUsize::new(0),
            reads: AtomicU32::new(0),
            standby_end: AtomicU64::new(u64::MAX),
            origin: Instant::now(),
        })
    }

    /// The receive side (the task waits for a call's receive to end).
    pub(crate) fn receiving(&self) -> MutexGuard<'_, Receiving> {
        self.receiving.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The send side, for the driver task, which runs (calls that change the driver leave
    /// what they wrote to it) until it [`sleeps`](Self::sleep) again.
    pub(crate) fn sending(&self) -> MutexGuard<'_, Sending> {
        let mut sending = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
        sending.asleep_until = None;
        sending
    }

    /// The driver task is about to wait, its alarm set for `alarm`.
    pub(crate) fn sleep(&self, alarm: Option<Instant>) {
        self.sending().asleep_until = Some(alarm);
    }

    /// The driver task stands by until `end` (`None`: it watches the socket), which calls
    /// that receive may have it renew ([`renewal_due`](Self::renewal_due)).
    pub(crate) fn stands_by_until(&self, end: Option<Instant>) {
        let end = end.map_or(u64::MAX, |end| {
            u64::try_from(end.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
        });
        self.standby_end.store(end, Ordering::Relaxed);
    }

    /// Whether a call that received at `now` is to wake the driver task to renew its
    /// stand-by: it stands by, and the stand-by may be renewed now ([`renewable`]).
    pub(crate) fn renewal_due(&self, now: Instant) -> bool {
        match self.standby_end.load(Ordering::Relaxed) {
            u64::MAX => false,
            end => renewable(now, self.origin + Duration::from_nanos(end)),
        }
    }

    /// A call received: calls watch the socket from now on.
    pub(crate) fn call_received(&self) {
        self.call_receives.fetch_add(1, Ordering::Relaxed);
        self.calls_watch.store(true, Ordering::Relaxed);
    }

    /// Whether calls watch the socket.
    pub(crate) fn calls_watch(&self) -> bool {
        self.calls_watch.load(Ordering::Relaxed)
    }

    /// Receives calls made so far.
    pub(crate) fn call_receives(&self) -> u64 {
        self.call_receives.load(Ordering::Relaxed)
    }

    /// The driver task watches the socket again: calls stopped receiving.
    pub(crate) fn task_watches(&self) {
        self.calls_watch.store(false, Ordering::Relaxed);
    }

    /// A call of `task` registered for the socket's next datagram (`Some`), or found it
    /// ready (`None`: its task was no longer registered).
    pub(crate) fn registered(&self, task: Option<&Waker>) {
        self.registrant
            .store(task.map_or(0, |t| t.data() as usize), Ordering::Relaxed);
    }

    /// Whether the last call registered for the socket's next datagram is `task`'s.
    pub(crate) fn is_registrant(&self, task: &Waker) -> bool {
        self.registrant.load(Ordering::Relaxed) == task.data() as usize
    }

    /// A call of `task` the core may answer at once is ready, and `others_wait` with the
    /// driver: whether the driver task must take the socket back (and is to be woken for
    /// it), as no call waits for the socket to receive for them (module docs). The last
    /// call registered for the socket no longer waits once its task runs on (a call of it
    /// is ready) or once it found the socket ready.
    pub(crate) fn call_ready(&self, task: &Waker, others_wait: bool) -> bool {
        others_wait && self.left_by(task)
    }

    /// A call of `task` stopped receiving and waits with the driver (weir-driver's
    /// `Runtime::stops_receiving`): whether the driver task must take the socket back (and
    /// is to be woken for it), as for [`call_ready`](Self::call_ready).
    pub(crate) fn call_stops_receiving(&self, task: &Waker) -> bool {
        self.left_by(task)
    }

    /// A call of `task` no longer receives: if calls watch the socket and no other task's
    /// call registered for it since, the driver task watches it again. Whether it must be
    /// woken for that.
    fn left_by(&self, task: &Waker) -> bool {
        if !self.calls_watch() {
            return false;
        }
        let unwatched = self.registrant.load(Ordering::Relaxed) == 0 || self.is_registrant(task);
        if unwatched {
            self.registrant.store(0, Ordering::Relaxed);
            self.task_watches();
        }
        unwatched
    }

    /// After a call changed `driver` (with its lock held): sends what the call left in the
    /// calling task, or leaves it, as the module docs say. Whether the driver task must be
    /// woken.
    pub(crate) fn changed(&self, driver: &mut Driver, change: Change) -> bool {
        if !self.calls_watch() {
            return true;
        }
        // The task is sending: it takes what the call left before it sleeps.
        let Ok(mut sending) = self.sending.try_lock() else {
            return true;
        };
        let Some(until) = sending.asleep_until else {
            return true;
        };
        // What the calling task sends now (module docs, "Who sends"), and whether it
        // answers what a call received.
        let answers = match change {
            Change::Received => {
                self.answering.store(true, Ordering::Relaxed);
                // (The driver's clock was read for the datagrams just handed over.)
                if self.renewal_due(driver.last_reading()) {
                    sending.asleep_until = None;
                    return true;
                }
                return self.is_late(driver, &mut sending, until);
            }
            Change::Call(Urgency::Now) => self.answering.load(Ordering::Relaxed),
            Change::Call(Urgency::Soon) => {
                // (This read was counted on its way in.)
                if self.reads.load(Ordering::Relaxed) < READS_PER_SEND {
                    return self.is_late(driver, &mut sending, until);
                }
                false
            }
            Change::Waits => false,
        };
        let sent = self.send_all(&mut sending, driver);
        self.reads.store(0, Ordering::Relaxed);
        let wrote = change == Change::Call(Urgency::Now) && sent == Sent::Some;
        if wrote {
            // The answer went. (A send that found nothing to write, a later poll of a send
            // that waits for its receipt, say, leaves the flag to the send that writes.)
            self.answering.store(false, Ordering::Relaxed);
        }
        // A send that answers nothing and found something to send may begin a burst: its
        // later sends go to the task, which gathers them into batches.
        let burst = wrote && !answers;
        if sent == Sent::Stalled || burst {
            sending.asleep_until = None;
            return true;
        }
        self.is_late(driver, &mut sending, until)
    }

    /// Whether the core's deadline moved before the sleeping task's alarm (`until`): the
    /// task is then woken (and marked awake, so that calls leave it what they write).
    fn is_late(&self, driver: &Driver, sending: &mut Sending, until: Option<Instant>) -> bool {
        let late = driver.deadline().is_some_and(|d| until.is_none_or(|u| d < u));
        if late {
            sending.asleep_until = None;
        }
        late
    }

    /// Sends all the driver has to send now, without waiting; stops at a batch the kernel
    /// refused for want of room (kept for the task: [`Sending::stalled`]). Another failure
    /// loses its datagrams only (quinn-udp logs it): recovery resends what mattered.
    fn send_all(&self, sending: &mut Sending, driver: &mut Driver) -> Sent {
        let segments = self.state.max_gso_segments();
        let mut sent = Sent::Nothing;
        while let Some(batch) = sending.outbox.next(driver, segments) {
            sent = Sent::Some;
            if let Err(e) = batch.send(&self.state, self.socket.sock2()) {
                if e.kind() == io::ErrorKind::WouldBlock {
                    let kept = (batch.destination, batch.contents.to_vec(), batch.segment_size);
                    sending.stalled = Some(kept);
                    return Sent::Stalled;
                }
            }
        }
        sent
    }
}

/// What [`Io::send_all`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Nothing,
    Some,
    /// The kernel refused a batch for want of room.
    Stalled,
}
