//! The driver thread, what the calls tell it ([`Io`], the [`Runtime`]), and how a calling
//! thread waits for a call ([`block_on`], module `calling`).
//!
//! A call runs on the driver in the calling thread and sends what it left at once
//! ([`Calls::changed`](Runtime::changed)), so a call the core can answer (a send with room, a read of what is
//! there) costs no thread switch. Sends are batches of equal datagrams cut by the kernel
//! (GSO) where the platform has it.
//!
//! **Who receives.** One thread at a time receives from the socket: whoever holds the
//! [`Receiver`] (module `socket`: the receive buffer, behind a lock), in a blocking receive
//! with a read timeout no later than the core's next deadline, which also takes what else
//! the socket holds by then; it hands what came to the driver under one lock and fires its
//! timers.
//! - A call that must wait receives itself, if the receiver is free: the datagram it waits
//!   for then wakes the thread that wants it, directly, instead of waking the driver thread
//!   which would wake the caller (two thread switches a message, most of weir-std's cost
//!   before). Another thread's wake-up of a receiving caller ends its receive with a kick
//!   (a one-byte datagram from the endpoint's private waker socket).
//! - What a receive leaves the core to send (acknowledgements, above all) goes at once,
//!   unless the receive was made for a waiting send ([`Answer`]): woken, the send writes
//!   next, and one datagram carries both; not woken, its thread sends it before it receives
//!   again. (A waiting read's receive sends at once: deferring its acknowledgement to the
//!   read's next wait cut weir-bench's `messages` by a fifth, adapters/bench/rounds.md,
//!   issue 35's eleventh round.)
//! - The driver thread receives while no call does. After waking calls it stands by (parks,
//!   no receive) for [`WOKEN_WAIT`], then for [`STANDBY`], firing the timers that come due,
//!   for as long as calls keep receiving, each stand-by twice the last up to
//!   [`STANDBY_MOST`]; a stand-by in which none did returns the receiver to it. So a peer's
//!   datagrams wait in the socket's buffer at most [`STANDBY_MOST`] when the application
//!   stops calling. A call that receives within [`RENEW_AHEAD`] of a stand-by's end
//!   unparks the driver thread to begin the next one then, so that calls which keep
//!   receiving never let a stand-by end: a firing of its timer cost the round trip it fell
//!   in more than the unpark does, both being a switch to the driver thread and back on
//!   the CPU the calls run on (weir-bench's `rtt`, `weir-bench ab` over twelve turns: p99
//!   35.9 against 29.7 µs with the renewal, p50 within the spread; adapters/bench/rounds.md,
//!   "The round trip's tail: our own timers").
//!
//! While the driver thread waits, it records until when (`asleep_until`); a call that
//! moves the deadline earlier wakes it (a kick if it receives, an unpark if it stands by),
//! and no other call does. What a read leaves to send ([`Urgency::Soon`]: credit, stream
//! slots, a receipt) is not sent by the reading thread while the driver thread is about to
//! send anyway (busy, or back within `WOKEN_WAIT`): the answer the application writes
//! next, if it writes one, carries it.
//!
//! **Sends in a burst.** A thread that sends again within [`HOLD`] of a call that was
//! answered at once (a send with room, say) is sending a burst: its data is held, up to
//! [`HOLD`] and [`HOLD_SENDS`] sends, so that the burst leaves in full datagrams and few
//! system calls (GSO), as weir-tokio's do when its driver task runs after the
//! application's. A send after a call that waited (a request after its reply, a round trip)
//! goes at once; one after a send that waited for room (its stream credit, say) does not:
//! that wait is the burst's own ([`Waiting::in_burst`]). Held data goes when the burst's
//! sending thread sends again after [`HOLD`], when a thread is about to wait, or, if none
//! does, when the driver thread wakes for it at the end of [`HOLD`] (the thread whose call
//! started holding wakes it as it goes back to the application, if it would sleep past
//! that: [`Io::wake_for_hold`]). A receive meanwhile sends nothing (what
//! it would send goes with the held data): acknowledgements arriving during a burst would
//! otherwise cut it into small sends. The costs: a thread that sends a burst and then works
//! without waiting delays the burst's tail by up to [`HOLD`]; and while the driver thread
//! waits for a hold to end it does not receive, so a datagram that arrives meanwhile waits
//! up to [`HOLD`] unless a calling thread receives it.

mod calling;
mod socket;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use weir_driver::{Config, Driver, Error, Outbox, Runtime, Shared, Urgency};

use calling::leave_hold;
pub(crate) use calling::{block_on, wait};
use socket::{Receiver, Socket};

/// The longest the thread sleeps with no deadline (a datagram or a wake-up ends it sooner).
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// The longest the thread sleeps after waking calls: they read what came and move the
/// core's timers (an acknowledgement's delay, say), and a short first sleep lets them run
/// before the thread sleeps to a deadline they would have to wake it from, with a datagram.
const WOKEN_WAIT: Duration = Duration::from_micros(200);
/// How long the driver thread stands by while calls receive, at first: each stand-by in
/// which calls received doubles the next, up to [`STANDBY_MOST`]; one in which none did
/// gives the receiver back to the driver thread, and the next stand-by is this long again.
const STANDBY: Duration = Duration::from_millis(1);
/// The longest stand-by: the longest a peer's datagram waits in the socket's buffer once the
/// application stops calling, and what a read left to send (credit, a receipt) waits if no
/// call sends it first. A thread that stands by 1 ms at a time while calls receive wakes a
/// thousand times a second, and each wake-up costs the exchange it falls in: weir-bench's
/// `rtt` over 10,000 round trips, pinned to one CPU, ten alternated runs each, had p95
/// 26–32 µs and p99 46–53 µs with every stand-by 1 ms, 20–23 µs and 35–43 µs with
/// stand-bys doubling to 8 ms (adapters/bench/rounds.md, "Issue 35, eighth round"). Well
/// under `max_ack_delay`'s default (25 ms), the delay a peer already allows our ACKs.
const STANDBY_MOST: Duration = Duration::from_millis(8);
/// How long before a stand-by's end a call's receive has the driver thread begin the next
/// (module docs): as weir-tokio's, whose task has as long to run before its alarm fires.
/// A stand-by shorter than this (the first ones, 1, 2 ms) is renewed at the first receive
/// in it, so the stand-bys grow to [`STANDBY_MOST`] at the pace calls receive.
const RENEW_AHEAD: Duration = Duration::from_millis(3);

/// What the calls and the driver thread share beside the driver: the socket, what is
/// being sent and received, and how to wake the thread.
pub(crate) struct Io {
    socket: Socket,
    /// Taken after the driver's lock, never before it.
    sending: Mutex<Sending>,
    /// Held by the thread that receives, across its receive; never taken while the
    /// driver's lock is held, only tried.
    receiver: Mutex<Receiver>,
    /// Receives made by calls (not the driver thread): how the standing-by driver thread
    /// sees that calls still receive.
    call_receives: AtomicU64,
    /// The endpoint was dropped: the driver thread shuts down.
    stop: AtomicBool,
    /// Receives made for a waiting send that brought datagrams and left what the core
    /// wrote in answer to the send ([`Answer::WithTheSend`]): what tests look at.
    #[cfg(test)]
    answers_left_to_sends: AtomicU64,
    /// Parks of the driver thread in [`Duty::StandBy`] that ran to their time while calls
    /// received (no renewal came before): what tests look at.
    #[cfg(test)]
    standbys_run_out: AtomicU64,
    /// Wake-ups of the driver thread by calls, for a deadline or a hold
    /// ([`Io::wake_driver_thread`]): what tests look at.
    #[cfg(test)]
    driver_wakes: AtomicU64,
    /// The driver (for calls that receive) and the driver thread (to unpark it when it
    /// stands by), set once it started.
    shared: OnceLock<Weak<Shared>>,
    driver_thread: OnceLock<Thread>,
}

/// The send side's state.
struct Sending {
    outbox: Outbox,
    /// While the driver thread waits: until when.
    asleep_until: Option<Instant>,
    /// What the driver thread does.
    duty: Duty,
    /// While the driver thread stands by (not in the short wait after it woke calls): the
    /// stand-by's end, which a call that receives within [`RENEW_AHEAD`] of it has the
    /// thread renew (module docs); taken by the call that unparks it for that.
    standby_end: Option<Instant>,
    /// A burst's data held (module docs, "Sends in a burst").
    held: Option<Held>,
}

/// A burst's data held: since when, and how many sends it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    since: Instant,
    sends: u32,
}

impl Sending {
    /// Sends everything the driver has to send now, held data included.
    fn flush(&mut self, socket: &Socket, driver: &mut Driver) {
        socket.flush(&mut self.outbox, driver);
        self.held = None;
    }

    /// [`flush`](Self::flush)es, unless a burst's data is held: that waits for the end of
    /// the hold, and what the driver has to send besides waits with it.
    fn flush_unless_held(&mut self, socket: &Socket, driver: &mut Driver) {
        if self.held.is_none_or(|h| Instant::now() >= h.since + HOLD) {
            self.flush(socket, driver);
        }
    }
}

/// The longest a burst's data is held for the sends that follow it (module docs, "Sends
/// in a burst"): at the 200,000 messages a second weir-std sends on loopback, about 40.
const HOLD: Duration = Duration::from_micros(200);

/// The most sends a burst's data is held for: the next takes them all along, so the peer
/// starts on the burst's head while the rest is written (a burst held to its end left
/// each side idle while the other worked). weir-bench's `messages` (the client waits for
/// stream credit about every 40 messages), 6 alternated runs each: 620k messages a second
/// holding to the end, 698k, 707k and 705k holding at most 24, 32 and 48, 588k at 64;
/// against holding to the end, 20 alternated runs at 32: 605k → 693k, and CPU per message
/// 2.637 → 2.654 µs, the cost of the system calls more (adapters/bench/rounds.md, issue
/// 35's eleventh round).
const HOLD_SENDS: u32 = 32;

/// What a call that queued data for the peer does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Release {
    /// Sends it, and whatever is held.
    Now,
    /// Starts holding it: the first call of a burst after the one answered at once.
    Hold,
    /// Leaves it with the data already held.
    Join,
}

impl Release {
    /// The rule: `answered_at` is when the calling thread's last call was answered without
    /// waiting (`None` if it waited, unless it was a send: [`Waiting::in_burst`]), `held`
    /// what data is held. A send that is not part of a burst takes held data with it, and
    /// so does one that would hold it past [`HOLD`] or [`HOLD_SENDS`].
    fn decide(answered_at: Option<Instant>, held: Option<Held>, now: Instant) -> Release {
        let within = |t: Instant| now < t + HOLD;
        match (answered_at.is_some_and(within), held) {
            (false, _) => Release::Now,
            (true, None) => Release::Hold,
            (true, Some(h)) if within(h.since) && h.sends < HOLD_SENDS => Release::Join,
            (true, Some(_)) => Release::Now,
        }
    }
}

/// What a calling thread's call is, as its last poll told the runtime: whether it is a
/// send ([`Runtime::poll_proceed`] with [`Urgency::Now`]: a write the core takes at once
/// while there is room).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// A send: if it waits, it waits for room (credit, stream slots, the peer's
    /// acknowledgement of what it sent), and it sends as soon as it is woken.
    Send,
    /// Anything else: a read, a connect, an accept.
    Other,
}

impl Waiting {
    /// Who sends what a receive made for this call left ([`Answer`]).
    fn answer(self) -> Answer {
        match self {
            Waiting::Send => Answer::WithTheSend,
            Waiting::Other => Answer::Now,
        }
    }

    /// Whether the calling thread is in a burst once this call is answered
    /// ([`Release::decide`]'s `answered_at`): answered at once, or a send that waited for
    /// room. A send's wait is the burst's own (the peer takes less than the thread writes),
    /// and the send after it continues the burst; after any other wait (a reply, say) the
    /// next send is a request of its own and goes at once.
    fn in_burst(self, waited: bool) -> bool {
        !waited || self == Waiting::Send
    }
}

/// Who sends what a receive left the core to send ([`Io::receive`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// The receiving thread, now (or with the burst's held data).
    Now,
    /// The waiting send the receive was made for: if the receive woke it, its write comes
    /// next and carries it, one datagram instead of two; if not, its thread sends it before
    /// it receives again ([`Io::receive_for_call`] flushes first).
    WithTheSend,
}

/// What the driver thread does about receiving.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duty {
    /// It receives (or will, once it has done what it does now).
    Receive,
    /// It woke calls, or calls received lately: it parks for [`WOKEN_WAIT`] or
    /// [`STANDBY`], and receives again after a stand-by in which no call did.
    StandBy,
    /// A call receives now: it parks until the core's deadline, and the call unparks it
    /// when its receive is over.
    Yield,
}

/// How a park of the driver thread in [`Duty::StandBy`] or [`Duty::Yield`] went.
#[derive(Clone, Copy, Debug)]
struct Stood {
    /// No call received meanwhile.
    quiet: bool,
    /// It lasted to its end (no unpark: a call's, a deadline moved, ended it sooner).
    over: bool,
}

impl Stood {
    /// What the driver thread does next, and its next stand-by, after it parked in `duty`
    /// with `standby` as its stand-by: a stand-by that lasted to its end with no call
    /// receiving gives the receiver back; one in which calls received doubles the next.
    fn next(self, duty: Duty, standby: Duration) -> (Duty, Duration) {
        match (duty, self.quiet, self.over) {
            (Duty::StandBy, true, true) => (Duty::Receive, STANDBY),
            (Duty::StandBy, false, _) => (Duty::StandBy, (standby * 2).min(STANDBY_MOST)),
            _ => (Duty::StandBy, standby),
        }
    }
}

impl Io {
    fn sending(&self) -> MutexGuard<'_, Sending> {
        self.sending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the receive under way, whoever makes it; with none under way, the next one
    /// ends at once, which costs it a loop. (A failed wake-up only delays the receiver to
    /// the end of its wait.)
    fn kick(&self) {
        self.socket.kick();
    }

    /// Wakes the driver thread, which does `duty`: unparks it if it parks, kicks the
    /// receive it makes otherwise.
    fn wake_driver_thread(&self, duty: Duty) {
        #[cfg(test)]
        self.driver_wakes.fetch_add(1, Ordering::Relaxed);
        match (duty, self.driver_thread.get()) {
            (Duty::StandBy | Duty::Yield, Some(thread)) => thread.unpark(),
            _ => self.kick(),
        }
    }

    /// A thread whose call started holding a burst's data goes back to the application:
    /// if the data is still held (the call did not wait, which sends it first) and the
    /// driver thread sleeps past the hold's end, it is woken to send it then. Left to this
    /// point rather than done when the hold starts: a send that goes on to wait (for its
    /// receipt, say) sends what is held as it waits, and a wake-up of the driver thread for
    /// it then was a switch to that thread and back for nothing, at every round trip of
    /// weir-bench's `rtt` with `Confirm::Delivered` (adapters/bench/rounds.md, "The round
    /// trip's tail: our own timers").
    fn wake_for_hold(&self) {
        let sending = self.sending();
        let end = sending.held.map(|h| h.since + HOLD);
        self.wake_if_asleep_past(sending, end);
    }

    /// Wakes the driver thread if it sleeps past `by` (marked awake first, so that one
    /// wake-up per sleep is made).
    fn wake_if_asleep_past(&self, mut sending: MutexGuard<'_, Sending>, by: Option<Instant>) {
        let late = sending
            .asleep_until
            .is_some_and(|until| by.is_some_and(|t| t < until));
        if late {
            sending.asleep_until = None;
            let duty = sending.duty;
            drop(sending);
            self.wake_driver_thread(duty);
        }
    }

    /// The endpoint was dropped: wakes the driver thread to shut down (a lost wake-up only
    /// delays it to its next deadline).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.kick();
        if let Some(thread) = self.driver_thread.get() {
            thread.unpark();
        }
    }

    /// Receives what the socket holds, or waits up to `longest` for it, and hands what came
    /// to the driver, firing its timers if due; `answer` says who sends what the core wrote
    /// in answer. The number of calls that woke.
    fn receive(&self, receiver: &mut Receiver, shared: &Shared, longest: Duration, answer: Answer) -> usize {
        let received = receiver.receive(&self.socket, longest);
        let came = received.len() > 0;
        let mut driver = shared.driver();
        for (from, datagrams, stride) in received {
            driver.handle_received(from, datagrams, stride);
        }
        if driver.deadline().is_some_and(|t| t <= Instant::now()) {
            driver.handle_timeout();
        }
        match answer {
            Answer::Now => self.sending().flush_unless_held(&self.socket, &mut driver),
            Answer::WithTheSend => self.left_to_send(came),
        }
        driver.unlock()
    }

    /// A receive made for a waiting send left what the core wrote in answer to the send
    /// ([`Answer::WithTheSend`]): nothing to do here but, in tests, count it.
    fn left_to_send(&self, came: bool) {
        #[cfg(test)]
        self.answers_left_to_sends
            .fetch_add(u64::from(came), Ordering::Relaxed);
        #[cfg(not(test))]
        let _ = came;
    }

    /// A waiting call's receive, if no other thread receives now: until a datagram, a
    /// wake-up, the core's deadline or `until`. False if another thread receives.
    fn receive_for_call(&self, until: Option<Instant>, call: Waiting) -> bool {
        let Some(shared) = self.shared.get().and_then(Weak::upgrade) else {
            return false;
        };
        // What calls left to send (held data, a read's credit) goes now: this thread is
        // about to wait, perhaps for the answer to it, whether it receives or parks.
        let deadline = {
            let mut driver = shared.driver();
            self.sending().flush(&self.socket, &mut driver);
            driver.deadline()
        };
        let Ok(mut receiver) = self.receiver.try_lock() else {
            return false;
        };
        let now = Instant::now();
        let until = [until, deadline]
            .into_iter()
            .flatten()
            .fold(now + IDLE_WAIT, Instant::min);
        self.receive(
            &mut receiver,
            &shared,
            until.saturating_duration_since(now),
            call.answer(),
        );
        drop(receiver);
        self.call_receives.fetch_add(1, Ordering::Release);
        let unpark = {
            let mut sending = self.sending();
            match sending.duty {
                Duty::Yield => true,
                Duty::StandBy => sending
                    .standby_end
                    .take_if(|end| Instant::now() + RENEW_AHEAD >= *end)
                    .is_some(),
                Duty::Receive => false,
            }
        };
        if unpark {
            if let Some(thread) = self.driver_thread.get() {
                thread.unpark();
            }
        }
        true
    }
}

/// The [`Runtime`] the handles tell: an [`Io`] shared with the driver thread.
struct Calls(Arc<Io>);

impl Runtime for Calls {
    /// Notes whether the calling thread's call is a send ([`Waiting`]); always goes on (a
    /// thread has nothing else to run).
    fn poll_proceed(&self, _: &mut Context<'_>, urgency: Urgency) -> Poll<()> {
        if urgency == Urgency::Now {
            CALL_WAITING.set(Waiting::Send);
        }
        Poll::Ready(())
    }

    /// Sends what the call left, or holds it if the call is part of a burst ([`Release`]),
    /// and wakes the driver thread if it sleeps past the driver's new deadline or the end
    /// of the hold (one wake-up per sleep is enough). What a read left waits while the
    /// driver thread is about to send anyway (it is busy, or wakes within [`WOKEN_WAIT`]):
    /// the application's answer, if it sends one first, carries it. Notes this endpoint as
    /// the one the calling thread's call waits on, should it wait ([`block_on`]).
    fn changed(&self, driver: &mut Driver, urgency: Urgency) {
        CALLED.with(|c| {
            let mut called = c.borrow_mut();
            if !called
                .as_ref()
                .is_some_and(|io| std::ptr::eq(io.as_ptr(), Arc::as_ptr(&self.0)))
            {
                *called = Some(Arc::downgrade(&self.0));
            }
        });
        CALLED_NOW.set(true);
        // The time as the call read it on its way in, for the burst's rule (a window of
        // `HOLD`, far coarser than a call): a clock reading for it and another for
        // `ANSWERED_AT` were 6% of a burst's sending thread (adapters/bench/rounds.md, issue
        // 35's tenth round). Whether the driver thread sends soon is read afresh: with the
        // call's reading there too, round trips took about 0.1 µs longer in three
        // alternated comparisons (why was not found). A call that did not read the clock
        // leaves an older reading: a hold then starts earlier and ends earlier, never later
        // than `HOLD` from now.
        let now = driver.last_reading();
        CALL_READING.set(Some(now));
        let mut sending = self.0.sending();
        // Standing by, the driver thread wakes within STANDBY_MOST, and the calls that
        // receive send after each receive.
        let driver_sends_soon = sending.duty == Duty::StandBy
            || sending
                .asleep_until
                .is_none_or(|until| until <= Instant::now() + WOKEN_WAIT);
        if urgency == Urgency::Soon && driver_sends_soon {
            return;
        }
        let release = match urgency {
            Urgency::Now => {
                let release = Release::decide(ANSWERED_AT.get(), sending.held, now);
                match (release, sending.held.as_mut()) {
                    (Release::Hold, _) => {
                        sending.held = Some(Held { since: now, sends: 1 });
                        HOLD_STARTED.set(Some(Arc::downgrade(&self.0)));
                    }
                    (Release::Join, Some(held)) => held.sends += 1,
                    _ => {}
                }
                release
            }
            Urgency::Soon => Release::Now,
        };
        if release == Release::Now {
            sending.flush(&self.0.socket, driver);
        }
        // The driver thread must wake by the core's deadline. By the end of a hold too, but
        // only if the thread that holds goes back to the application with it held
        // ([`Io::wake_for_hold`]): one that waits sends it first. A call that does not block
        // (`send_datagram`, a stream's `reset`) is back with the application as it returns.
        self.0.wake_if_asleep_past(sending, driver.deadline());
        if !IN_BLOCK_ON.get() {
            leave_hold();
        }
    }
}

/// Binds the socket and starts the driver thread: the endpoint's handle, what the thread
/// shares with the calls, and the thread.
pub(crate) fn start(
    addr: SocketAddr,
    config: Config,
) -> Result<(weir_driver::Endpoint, Arc<Io>, JoinHandle<()>), Error> {
    let socket = weir_driver::bind_socket(addr)?;
    let local = socket.local_addr()?;
    let io = Arc::new(Io {
        socket: Socket::new(socket)?,
        sending: Mutex::new(Sending {
            outbox: Outbox::new(),
            asleep_until: None,
            duty: Duty::Receive,
            standby_end: None,
            held: None,
        }),
        receiver: Mutex::new(Receiver::new()),
        call_receives: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        #[cfg(test)]
        answers_left_to_sends: AtomicU64::new(0),
        #[cfg(test)]
        standbys_run_out: AtomicU64::new(0),
        #[cfg(test)]
        driver_wakes: AtomicU64::new(0),
        shared: OnceLock::new(),
        driver_thread: OnceLock::new(),
    });
    let shared = Shared::new(
        Driver::new(config, local),
        local,
        Box::new(Calls(Arc::clone(&io))),
    );
    let _ = io.shared.set(Arc::downgrade(&shared));
    let thread = {
        let (shared, io) = (Arc::clone(&shared), Arc::clone(&io));
        std::thread::Builder::new()
            .name(format!("weir-driver {local}"))
            .spawn(move || run(&shared, &io))?
    };
    let _ = io.driver_thread.set(thread.thread().clone());
    Ok((weir_driver::Endpoint::new(shared), io, thread))
}

thread_local! {
    /// When this thread's last call was answered without waiting; `None` if it waited: what
    /// tells a burst of sends ([`Release::decide`]).
    static ANSWERED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The driver's clock as this thread's call under way read it, if the call left
    /// something to send ([`Calls::changed`]): its time, without reading the clock again.
    static CALL_READING: Cell<Option<Instant>> = const { Cell::new(None) };
    /// What this thread's call under way is, as its polls told ([`Calls::poll_proceed`]).
    static CALL_WAITING: Cell<Waiting> = const { Cell::new(Waiting::Other) };
    /// The endpoint this thread's calls last called into: the one a call receives from if
    /// it must wait ([`block_on`]), if its last poll called into it ([`CALLED_NOW`]). Kept
    /// from call to call, so that a thread calling one endpoint over and over does not
    /// count its references each time. Weak: a thread's last call must not keep a dropped
    /// endpoint's socket open.
    static CALLED: RefCell<Option<Weak<Io>>> = const { RefCell::new(None) };
    /// Whether the call under way called into [`CALLED`] as it was last polled.
    static CALLED_NOW: Cell<bool> = const { Cell::new(false) };
    /// The endpoint on which this thread's call under way started holding a burst's data
    /// ([`Release::Hold`]): looked at when the call returns ([`Io::wake_for_hold`]).
    static HOLD_STARTED: Cell<Option<Weak<Io>>> = const { Cell::new(None) };
    /// Whether this thread is in a blocking call ([`block_on`]), which hands the driver
    /// thread the hold it started as it returns ([`calling::BlockOn`]).
    static IN_BLOCK_ON: Cell<bool> = const { Cell::new(false) };
}

/// The driver thread's loop: returns once the driver shut down (or, if the socket cannot
/// be read, at once), after which calls fail with `Shutdown`.
fn run(shared: &Arc<Shared>, io: &Io) {
    let _stopped = Stopped(Arc::clone(shared));
    // Calls woken by the last receive.
    let mut woke = 0;
    let mut duty = Duty::Receive;
    let mut standby = STANDBY;
    loop {
        // Held data waits for the rest of its burst until the hold ends (an unpark, a call's
        // or the endpoint's stop, ends the wait sooner).
        let held = io.sending().held;
        if let Some(end) = held.map(|h| h.since + HOLD) {
            std::thread::park_timeout(end.saturating_duration_since(Instant::now()));
        }
        let (now, until) = {
            let mut driver = shared.driver();
            if io.stop.load(Ordering::Acquire) {
                driver.shutdown();
            }
            let now = Instant::now();
            if driver.deadline().is_some_and(|t| t <= now) {
                driver.handle_timeout();
            }
            let mut sending = io.sending();
            sending.flush(&io.socket, &mut driver);
            if driver.is_shut_down() {
                return;
            }
            let longest = match (woke > 0, duty) {
                (true, _) => WOKEN_WAIT,
                (false, Duty::StandBy) => standby,
                (false, Duty::Receive | Duty::Yield) => IDLE_WAIT,
            };
            let until = driver.deadline().map_or(now + longest, |t| t.min(now + longest));
            sending.asleep_until = Some(until);
            sending.duty = duty;
            sending.standby_end = (woke == 0 && duty == Duty::StandBy).then_some(now + standby);
            (now, until)
        };
        duty = match duty {
            Duty::Receive => match io.receiver.try_lock() {
                Ok(mut receiver) => {
                    let longest = until.saturating_duration_since(now);
                    woke = io.receive(&mut receiver, shared, longest, Answer::Now);
                    standby = STANDBY;
                    if woke > 0 {
                        Duty::StandBy
                    } else {
                        Duty::Receive
                    }
                }
                Err(_) => Duty::Yield,
            },
            Duty::StandBy | Duty::Yield => {
                let receives = io.call_receives.load(Ordering::Acquire);
                std::thread::park_timeout(until.saturating_duration_since(now));
                woke = 0;
                let stood = Stood {
                    quiet: io.call_receives.load(Ordering::Acquire) == receives,
                    over: Instant::now() >= until,
                };
                #[cfg(test)]
                if duty == Duty::StandBy && stood.over && !stood.quiet {
                    io.standbys_run_out.fetch_add(1, Ordering::Relaxed);
                }
                let next;
                (next, standby) = stood.next(duty, standby);
                next
            }
        };
        io.sending().asleep_until = None;
    }
}

/// Marks the endpoint stopped when the driver thread ends, however it ends: calls then
/// fail at once instead of waiting for a thread that is gone.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests;
