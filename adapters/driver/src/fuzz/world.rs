//! The world of the targets over drivers (`driver`, `piping`, `pool`, `circuit`): two or
//! more sides, each a deterministic [`Driver`] behind the handles' lock, the datagrams in
//! flight between them, and the application calls under way, polled as a runtime would poll
//! them.
//!
//! Inputs: the script's network steps (deliver, drop, move the clock) and the calls it
//! starts. Outputs: the calls' answers (into the log, module `oracle`) and a digest of
//! every datagram sent.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant as StdInstant};

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};
use weir_core::crypto::Primitives;
use weir_core::wire::MAX_DATAGRAM_SIZE;
use weir_core::Config;

use super::oracle::LogRef;
use crate::{Connection, Driver, Endpoint, Runtime, Shared, Urgency};

/// Datagrams in flight at most: a newer one beyond is lost, as at a full queue.
const MAX_IN_FLIGHT: usize = 256;

/// The handles tell the runtime what they changed; here the script moves every datagram
/// and the clock itself, so there is nothing to tell.
struct Scripted;

impl Runtime for Scripted {
    fn changed(&self, _driver: &mut Driver, _urgency: Urgency) {}
}

/// A waker that notes it was woken: the call it belongs to is polled again.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One side: its driver behind the handles' lock, where it is, and its clock's zero.
pub(super) struct Side {
    shared: Arc<Shared>,
    addr: SocketAddr,
    zero: StdInstant,
    /// Its shutdown finished: as a runtime's loop ends then, nothing drives it any more
    /// (no datagram reaches it, no timer fires).
    gone: Cell<bool>,
}

impl Side {
    fn new(addr: SocketAddr, seed: u64, config: Config, trace: Option<String>) -> Side {
        let driver = Driver::deterministic(config, addr, seed, trace);
        let zero = driver.wall();
        Side {
            shared: Shared::new(driver, addr, Box::new(Scripted)),
            addr,
            zero,
            gone: Cell::new(false),
        }
    }

    /// Moves this side's clock to `t` after its zero and fires what is due.
    fn set_time(&self, t: Duration) {
        if self.gone.get() {
            return;
        }
        let mut d = self.shared.driver();
        let by = (self.zero + t).saturating_duration_since(d.wall());
        d.advance(by);
        d.handle_timeout();
    }

    /// When this side next has something to do, after its zero.
    fn next_deadline(&self) -> Option<Duration> {
        if self.gone.get() {
            return None;
        }
        let d = self.shared.driver();
        d.deadline().map(|at| at.saturating_duration_since(self.zero))
    }
}

/// A call under way.
pub(super) struct Task {
    pub(super) future: Pin<Box<dyn Future<Output = ()>>>,
    /// It ends by itself (liveness waits for it), rather than serving for the
    /// connection's life.
    pub(super) finite: bool,
    /// What it is, for a liveness failure's message.
    pub(super) what: String,
}

/// A call under way and its own waker: polled again only once woken, as a runtime polls
/// a task, so that a wake-up the driver misses shows as a call that never ends.
struct Polled {
    task: Task,
    woken: Arc<Flag>,
    waker: Waker,
}

impl Polled {
    fn new(task: Task) -> Polled {
        let woken = Arc::new(Flag(AtomicBool::new(true)));
        Polled {
            task,
            waker: Waker::from(Arc::clone(&woken)),
            woken,
        }
    }
}

/// Calls that a call starts (a channel's reads, by the loop that accepts it), taken into
/// the world's list at its next poll.
pub(super) type Spawner = Rc<RefCell<Vec<Task>>>;

/// The world: the sides, the datagrams in flight, the calls under way.
pub(super) struct World {
    /// In the order they send: every datagram of the first, then of the second, ...
    sides: Vec<Side>,
    /// In flight: source, destination, bytes.
    pub(super) wire: VecDeque<(SocketAddr, SocketAddr, Bytes)>,
    /// Calls under way, by their number (a finished or cancelled one leaves `None`).
    tasks: Vec<Option<Polled>>,
    pub(super) spawned: Spawner,
    pub(super) log: LogRef,
    /// Time since both clocks' zero.
    pub(super) now: Duration,
    /// [`fnv`] over every datagram sent.
    pub(super) digest: u64,
    /// Where the drivers write what they send (one buffer for the run: a datagram's room is
    /// 64 KiB).
    buf: Vec<u8>,
}

/// FNV-1a's step taken eight bytes at a time (the last word zero-padded, the length mixed
/// in last): a digest only for telling two runs apart, one multiply a word instead of one a
/// byte, over every datagram of every input.
pub(super) fn fnv(h: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut h = words.by_ref().fold(h, |h, w| {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        (h ^ u64::from_le_bytes(word)).wrapping_mul(PRIME)
    });
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(PRIME);
    (h ^ bytes.len() as u64).wrapping_mul(PRIME)
}

impl World {
    /// A world of a side at each of `addrs`, side `i` seeded with `i + 1`, whose endpoints
    /// use `primitives`: the fuzzing stand-in as the targets run, or the real ones to record
    /// traces any build replays. With `trace` (`WEIR_TRACE`'s form: `{port}` is the
    /// endpoint's port), each records its core's trace there.
    pub(super) fn new(addrs: &[SocketAddr], primitives: Primitives, trace: Option<&str>) -> World {
        World::configured(addrs, primitives, trace, &|_, config| config)
    }

    /// [`new`](Self::new), side `i` configured by `configure(i, config)` from the sides'
    /// common configuration.
    pub(super) fn configured(
        addrs: &[SocketAddr],
        primitives: Primitives,
        trace: Option<&str>,
        configure: &dyn Fn(usize, Config) -> Config,
    ) -> World {
        // Small windows and few concurrent streams, so that a few kilobytes and a few calls
        // already meet flow control (a stream's credit, the connection's) and the stream
        // limit, without the cost of moving megabytes and opening hundreds of streams.
        let config = Config {
            primitives,
            max_concurrent_streams: 16,
            stream_receive_window: 2 << 10,
            max_stream_receive_window: 8 << 10,
            receive_window: 8 << 10,
            max_receive_window: 32 << 10,
            ..Config::default()
        };
        let sides = addrs.iter().zip(1..).enumerate();
        World {
            sides: sides
                .map(|(i, (&addr, seed))| {
                    let config = configure(i, config.clone());
                    Side::new(addr, seed, config, trace.map(str::to_owned))
                })
                .collect(),
            wire: VecDeque::new(),
            tasks: Vec::new(),
            spawned: Spawner::default(),
            log: LogRef::default(),
            now: Duration::ZERO,
            digest: 0xcbf2_9ce4_8422_2325,
            buf: vec![0; MAX_DATAGRAM_SIZE],
        }
    }

    /// Starts a call; its number, which an ended call's may be (the log forgets a call's
    /// number when it ends).
    pub(super) fn spawn(
        &mut self,
        what: String,
        finite: bool,
        future: impl Future<Output = ()> + 'static,
    ) -> usize {
        let polled = Polled::new(Task {
            future: Box::pin(future),
            finite,
            what,
        });
        self.start(polled)
    }

    fn start(&mut self, polled: Polled) -> usize {
        match self.tasks.iter().position(Option::is_none) {
            Some(free) => {
                self.tasks[free] = Some(polled);
                free
            }
            None => {
                self.tasks.push(Some(polled));
                self.tasks.len() - 1
            }
        }
    }

    /// Gives up every call under way (dropped, with whatever handles they hold).
    pub(super) fn end_tasks(&mut self) {
        self.tasks.clear();
        self.spawned.borrow_mut().clear();
    }

    /// Gives up call `t` (dropped: a request so dropped is cancelled); whether it was
    /// under way.
    pub(super) fn cancel(&mut self, t: usize) -> bool {
        self.tasks.get_mut(t).and_then(Option::take).is_some()
    }

    /// Polls the calls woken since their last poll, again while that wakes more or starts
    /// new ones (bounded), then takes what the drivers have to send.
    pub(super) fn run_tasks(&mut self) {
        for _ in 0..64 {
            self.fire_due();
            let mut polled = false;
            for slot in self.tasks.iter_mut() {
                let Some(p) = slot else { continue };
                if !p.woken.0.swap(false, Ordering::Relaxed) {
                    continue;
                }
                polled = true;
                let mut cx = Context::from_waker(&p.waker);
                if p.task.future.as_mut().poll(&mut cx).is_ready() {
                    *slot = None;
                }
            }
            let spawned = std::mem::take(&mut *self.spawned.borrow_mut());
            let started = !spawned.is_empty();
            for task in spawned {
                self.start(Polled::new(task));
            }
            if !started && !polled {
                break;
            }
        }
        self.flush();
    }

    /// Fires the timers of every side whose deadline is not later than now: a datagram
    /// handled may leave one there, and a runtime's loop fires it at once, not at the next
    /// later deadline.
    fn fire_due(&self) {
        for side in &self.sides {
            if side.next_deadline().is_some_and(|d| d <= self.now) {
                side.set_time(self.now);
            }
        }
    }

    /// Takes every datagram the drivers have to send onto the wire, then, as a runtime's
    /// loop does, asks each whether its shutdown (if one began) finished, which moves it on
    /// (closing its connections once the time to drain is up, their CLOSEs taken too).
    fn flush(&mut self) {
        for side in &self.sides {
            if side.gone.get() {
                continue;
            }
            // Twice while shutting down: what the shutdown's closes left to send goes too.
            for _ in 0..2 {
                while let Some(t) = side.shared.driver().poll_transmit(&mut self.buf) {
                    let sent = &self.buf[..t.len];
                    self.digest = fnv(self.digest, sent);
                    if self.wire.len() < MAX_IN_FLIGHT {
                        self.wire
                            .push_back((side.addr, t.destination, Bytes::copy_from_slice(sent)));
                    }
                }
                let mut d = side.shared.driver();
                if !d.shutting_down() {
                    break;
                }
                if d.is_shut_down() {
                    side.gone.set(true);
                    break;
                }
            }
        }
    }

    /// Hands a datagram to the side it is for (none: it is lost).
    pub(super) fn deliver(&mut self, (from, to, bytes): (SocketAddr, SocketAddr, Bytes)) {
        if let Some(side) = self.sides.iter().find(|s| s.addr == to && !s.gone.get()) {
            // No copy unless the datagram is still shared (a duplicate kept on the wire).
            side.shared.driver().handle_datagram(from, BytesMut::from(bytes));
        }
    }

    /// Takes network step `op` (0 to 12; a target's script numbers its own steps from 13),
    /// reading what it needs from `u`:
    /// deliver the next datagram (0 to 5, the most likely), deliver all (6), lose the next
    /// (7), deliver a copy of the next and keep it (8), send the next to the back (9),
    /// deliver the next with a bit flipped (10), move the clock up to 4 s (11, 12; a longer
    /// quiet spell only times the connections out).
    pub(super) fn network_step(&mut self, op: u8, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        match op {
            0..=5 => {
                if let Some(d) = self.wire.pop_front() {
                    self.deliver(d);
                }
            }
            6 => self.deliver_all(),
            7 => {
                self.wire.pop_front();
            }
            8 => {
                if let Some(d) = self.wire.front().cloned() {
                    self.deliver(d);
                }
            }
            9 => {
                if let Some(d) = self.wire.pop_front() {
                    self.wire.push_back(d);
                }
            }
            10 => {
                let (at, bit) = (usize::from(u.arbitrary::<u16>()?), u.int_in_range(0u8..=7)?);
                if let Some((from, to, bytes)) = self.wire.pop_front() {
                    let mut b = BytesMut::from(&bytes[..]);
                    let i = at % b.len().max(1);
                    if let Some(x) = b.get_mut(i) {
                        *x ^= 1 << bit;
                    }
                    self.deliver((from, to, b.freeze()));
                }
            }
            _ => {
                let ms = u64::from(u.int_in_range(0u16..=4000)?);
                self.advance_to(self.now + Duration::from_millis(ms));
            }
        }
        Ok(())
    }

    /// Hands every datagram in flight to its side, in order.
    pub(super) fn deliver_all(&mut self) {
        while let Some(d) = self.wire.pop_front() {
            self.deliver(d);
        }
    }

    /// The earliest deadline of any side after now.
    pub(super) fn next_deadline(&self) -> Option<Duration> {
        self.sides
            .iter()
            .filter_map(Side::next_deadline)
            .filter(|&d| d > self.now)
            .min()
    }

    /// Moves every clock to `t` (never back), stopping at every deadline on the way.
    pub(super) fn advance_to(&mut self, t: Duration) {
        while self.now < t {
            let next = self.next_deadline().map_or(t, |d| d.min(t));
            self.now = next;
            for side in &self.sides {
                side.set_time(next);
            }
            self.run_tasks();
            self.check_timers();
        }
    }

    /// The timer oracle (as the core's targets check it, `weir_core::fuzz`): once a side's
    /// due timers fired, its calls ran and what it had to send was taken, its next deadline
    /// is later than now. One left at or before now would have a runtime wake the driver
    /// again at once, for ever.
    fn check_timers(&self) {
        for side in &self.sides {
            if let Some(due) = side.next_deadline().filter(|&d| d <= self.now) {
                panic!(
                    "a timer of {} stays due at {:?} (deadline {due:?}) after it fired and \
                     every datagram was taken",
                    side.addr, self.now
                );
            }
        }
    }

    /// Delivers everything in flight and moves the clock from deadline to deadline, running
    /// the calls after each step, until `busy` says no more or the clock reaches `limit`.
    pub(super) fn run_until(&mut self, limit: Duration, busy: &dyn Fn(&World) -> bool) {
        loop {
            self.run_tasks();
            if !busy(self) || self.now >= limit {
                return;
            }
            if self.wire.is_empty() {
                let next = self.next_deadline().unwrap_or(limit).min(limit);
                self.advance_to(next);
            }
            self.deliver_all();
        }
    }

    /// Runs the script in `data`: at most `max_steps` steps, each read by `step` and the
    /// calls run after it, until the input runs out or a step cannot be read.
    pub(super) fn run_script(
        &mut self,
        data: &[u8],
        max_steps: usize,
        mut step: impl FnMut(&mut World, &mut Unstructured<'_>) -> arbitrary::Result<()>,
    ) {
        let mut u = Unstructured::new(data);
        for _ in 0..max_steps {
            if u.is_empty() || step(self, &mut u).is_err() {
                break;
            }
            self.run_tasks();
        }
    }

    /// The liveness oracle: with the fuzzer done, the network carries everything, in order,
    /// and the clock moves on; every call that ends by itself ends within `limit` of
    /// simulated time.
    pub(super) fn settle(&mut self, limit: Duration) {
        let until = self.now + limit;
        self.run_until(until, &World::pending_finite);
        let pending = self.pending();
        assert!(
            pending.is_empty(),
            "calls still unanswered {limit:?} after the network settled: {pending:?}"
        );
    }

    /// Some call that ends by itself has not.
    pub(super) fn pending_finite(&self) -> bool {
        self.tasks.iter().flatten().any(|p| p.task.finite)
    }

    /// What the calls that end by themselves and have not are.
    pub(super) fn pending(&self) -> Vec<&str> {
        let finite = self.tasks.iter().flatten().filter(|p| p.task.finite);
        finite.map(|p| p.task.what.as_str()).collect()
    }

    /// How many connections side `i`'s driver keeps anything of.
    pub(super) fn connections_kept(&self, i: usize) -> usize {
        self.sides[i].shared.driver().connections_kept()
    }

    /// A handle on side `i`'s endpoint (dropping the last one shuts it down).
    pub(super) fn endpoint(&self, i: usize) -> Rc<Endpoint> {
        Rc::new(Endpoint::new(Arc::clone(&self.sides[i].shared)))
    }

    /// Connects `client` to `server` over a clean network: the connection at each end.
    pub(super) fn connect(
        &mut self,
        client: &Rc<Endpoint>,
        server: &Rc<Endpoint>,
    ) -> Option<(Connection, Connection)> {
        let (client, server) = (Rc::clone(client), Rc::clone(server));
        let got: Rc<RefCell<(Option<Connection>, Option<Connection>)>> = Rc::default();
        let (g1, g2) = (Rc::clone(&got), Rc::clone(&got));
        let to = server.local_addr();
        self.spawn("connect".into(), true, async move {
            g1.borrow_mut().0 = client.connect(to).await.ok();
        });
        self.spawn("accept".into(), true, async move {
            g2.borrow_mut().1 = server.accept().await.ok();
        });
        for _ in 0..64 {
            self.run_tasks();
            if !self.pending_finite() {
                break;
            }
            self.deliver_all();
        }
        self.tasks.clear();
        let (c, s) = got.borrow_mut().clone();
        Some((c?, s?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sides connected over a clean network, with their endpoints' handles.
    fn pair() -> (World, [Rc<Endpoint>; 2]) {
        let addrs = ["10.0.0.1:1000".parse().unwrap(), "10.0.0.2:2000".parse().unwrap()];
        let mut w = World::new(&addrs, Primitives::FuzzingStandIn, None);
        let ends = [w.endpoint(0), w.endpoint(1)];
        w.connect(&ends[0], &ends[1]).expect("a clean network connects");
        (w, ends)
    }

    #[test]
    fn the_timer_oracle_passes_once_the_deadline_fired() {
        let (mut w, _ends) = pair();
        let next = w.next_deadline().expect("a deadline");
        w.advance_to(next);
        w.check_timers();
    }

    #[test]
    #[should_panic(expected = "stays due")]
    fn the_timer_oracle_fires_on_a_deadline_left_behind() {
        let (mut w, _ends) = pair();
        // The clock moved past a deadline that did not fire: as a firing that failed to
        // move its own deadline leaves it.
        w.now = w.next_deadline().expect("a deadline");
        w.check_timers();
    }
}
