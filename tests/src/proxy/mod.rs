//! An impairing UDP proxy for tests and demonstrations on one machine: it stands between a
//! client and a server and does to the datagrams between them what real paths do (loss,
//! bursts of loss, delay, jitter, reordering, duplication, corrupted and truncated
//! datagrams, a rate limit with a finite queue, a narrower one on the way back, a moment the
//! rate or delay changes, a move to another address, outages, an MTU), so that transfers
//! over real sockets meet them; and, for a test that needs a loss at a chosen point, one
//! datagram it picks ([`Proxy::drop_next`]). The impairments are declared in module
//! `impairment`.
//!
//! The client sends to [`Proxy::addr`]; the proxy forwards to the server from a socket of
//! its own and sends the server's answers back to the client it last heard from. Two
//! threads, one per direction, each hold the delayed datagrams in a queue bounded like a
//! router's ([`QUEUE_LIMIT`]); every loop wakes at least every 10 ms to check whether it
//! should stop, so dropping the proxy always ends its threads. Between datagrams a thread
//! waits on `ppoll` (Linux), to the microsecond: until the forty-eighth round of issue 35 it
//! slept in a receive timeout, which counts in the kernel's ticks, and held each datagram
//! that came alone 3.5-7.7 ms past its delay (figures through the proxy from before then
//! include that).
//!
//! Each direction receives a batch of datagrams at a time where the system coalesces them
//! (GRO), impairs each on its own, and sends those that leave together to one address as
//! one batch (GSO): one system call per datagram made the proxy, not the peers, the limit
//! of a bulk transfer through it (about 55 MB/s on the project's machine, its two threads
//! half of the process's CPU samples).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};

use crate::stalls::Stalls;
use crate::JitterOrdering;

mod impairment;
pub use impairment::{Bottleneck, Burst, Impairment, Outage, PathChange};

/// Datagrams a direction holds at most while delaying them; more are dropped.
pub const QUEUE_LIMIT: usize = 65_536;
/// How often an idle direction looks at the stop flag.
const POLL: Duration = Duration::from_millis(10);
/// The most bytes one batch of datagrams sent together holds (a UDP payload's limit).
const MAX_BATCH: usize = 65_000;

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams forwarded.
    pub forwarded: u64,
    /// Datagrams lost on purpose (loss, a full queue, a policer, or the path cut).
    pub dropped: u64,
    /// Datagrams delivered twice, corrupted, or cut short (counted once each way).
    pub altered: u64,
    /// Batches sent: system calls, each one datagram or a GSO batch of several.
    pub sends: u64,
}

/// One of the proxy's two directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// From the client to the server.
    ToServer,
    /// From the server back to the client.
    ToClient,
}

/// A running proxy; dropping it stops its threads.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    drop_next: [Arc<AtomicUsize>; 2],
    stats: [Arc<Mutex<DirectionStats>>; 2],
    threads: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 (or `[::1]` for an IPv6 `server`) in front of `server`.
    pub fn start(server: SocketAddr, impairment: Impairment) -> io::Result<Proxy> {
        let any: SocketAddr = if server.is_ipv6() {
            "[::1]:0".parse().expect("valid address")
        } else {
            "127.0.0.1:0".parse().expect("valid address")
        };
        let front = weir_driver::bind_socket(any)?;
        let back = weir_driver::bind_socket(any)?;
        front.set_read_timeout(Some(POLL))?;
        back.set_read_timeout(Some(POLL))?;
        // The server-facing socket the proxy moves to, if it moves.
        let moved = match impairment.readdress {
            Some(_) if server.is_ipv6() => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a move to another address needs an IPv4 server (127.0.0.2)",
                ));
            }
            Some(_) => {
                let socket = weir_driver::bind_socket("127.0.0.2:0".parse().expect("valid address"))?;
                socket.set_read_timeout(Some(POLL))?;
                Some(socket)
            }
            None => None,
        };
        let addr = front.local_addr()?;
        let shared = Shared::default();
        let stats = [Arc::default(), Arc::default()];
        let mut dirs = Vec::new();
        for (i, (from, to)) in [(front.try_clone()?, back.try_clone()?), (back, front)]
            .into_iter()
            .enumerate()
        {
            let towards = if i == 0 {
                Towards::Server(server)
            } else {
                Towards::Client
            };
            let rng = impairment.seed.wrapping_add(i as u64);
            let mut impairment = impairment;
            if let (Towards::Client, Some(back)) = (&towards, impairment.back) {
                impairment.rate = Some(back.rate);
                impairment.queue_bytes = back.queue_bytes;
            }
            let moves_to = moved.as_ref().map(UdpSocket::try_clone).transpose()?;
            let stats = Arc::clone(&stats[i]);
            dirs.push(Direction::new(
                (from, to),
                towards,
                impairment,
                rng,
                &shared,
                stats,
                moves_to,
            )?);
        }
        // quinn-udp's state makes a socket non-blocking; the directions wait in their
        // receives (up to the read timeout), so the sockets block again.
        let mut threads = Vec::new();
        for (i, dir) in dirs.into_iter().enumerate() {
            dir.from.set_nonblocking(false)?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("weir-proxy {addr} {i}"))
                    .spawn(move || dir.run())?,
            );
        }
        Ok(Proxy {
            addr,
            stop: shared.stop,
            cut: shared.cut,
            drop_next: shared.drop_next,
            stats,
            threads,
        })
    }

    /// Where the client sends.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the path (`true`: every datagram is dropped, as if the peer died) or restores it.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    /// Drops the next datagram of at least `at_least` bytes (at least 1) that comes to the
    /// proxy going `way`, and that one only: a loss at a chosen point of an exchange, such
    /// as a request's only datagram, where random loss would make a test depend on its seed.
    /// A second call before that datagram comes replaces the first.
    pub fn drop_next(&self, way: Way, at_least: usize) {
        self.drop_next[way as usize].store(at_least.max(1), Ordering::Relaxed);
    }

    /// Counters towards the server and towards the client.
    pub fn stats(&self) -> [DirectionStats; 2] {
        self.stats
            .each_ref()
            .map(|s| *s.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The datagrams leaving a direction together for one address, back to back: all `len`
/// long but the last, which may be shorter (a GSO batch), and the sending socket's state.
struct Outgoing {
    state: UdpSocketState,
    bytes: Vec<u8>,
    len: usize,
    count: usize,
    to: Option<SocketAddr>,
}

impl Outgoing {
    fn new(socket: &UdpSocket) -> io::Result<Outgoing> {
        Ok(Outgoing {
            state: UdpSocketState::new(socket.into())?,
            bytes: Vec::new(),
            len: 0,
            count: 0,
            to: None,
        })
    }

    /// Whether `datagram` for `to` may join the batch.
    fn joins(&self, to: SocketAddr, datagram: &[u8]) -> bool {
        self.count > 0
            && self.to == Some(to)
            && datagram.len() <= self.len
            && self.bytes.len() == self.count * self.len
            && self.count < self.state.max_gso_segments()
            && self.bytes.len() + datagram.len() <= MAX_BATCH
    }
}

enum Towards {
    Server(SocketAddr),
    Client,
}

/// What the two directions share.
#[derive(Default)]
struct Shared {
    /// The client's address, as the way to the server last heard it.
    client: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    /// Per direction ([`Way`] as an index), the least length of the next datagram to drop;
    /// 0: none.
    drop_next: [Arc<AtomicUsize>; 2],
    /// When either direction saw its first datagram.
    first_seen: Arc<Mutex<Option<Instant>>>,
}

struct Direction {
    from: UdpSocket,
    to: UdpSocket,
    from_state: UdpSocketState,
    out: Outgoing,
    towards: Towards,
    client: Arc<Mutex<Option<SocketAddr>>>,
    impairment: Impairment,
    rng: u64,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    /// [`Proxy::drop_next`]'s request for this direction.
    drop_next: Arc<AtomicUsize>,
    /// When either direction saw its first datagram (outages count from it).
    first_seen: Arc<Mutex<Option<Instant>>>,
    stats: Arc<Mutex<DirectionStats>>,
    /// In a burst.
    bad: bool,
    /// When the burst state last moved.
    last_step: Option<Instant>,
    /// When the bottleneck has sent what it holds.
    busy_until: Option<Instant>,
    /// When the policer's bucket is full again (the bucket as a virtual queue, as in
    /// weir-sim: its backlog is the tokens missing).
    policed_until: Option<Instant>,
    /// The path's stalls (with [`JitterOrdering::InOrder`]), in µs since `origin`.
    stalls: Stalls,
    origin: Instant,
    /// Orders datagrams released at the same instant.
    seq: u64,
    /// The server-facing socket this direction moves to at [`Impairment::readdress`].
    moves_to: Option<UdpSocket>,
}

impl Direction {
    /// A direction that receives on the first socket and sends from the second, drawing
    /// its random choices from `seed`, counting into `stats`, and moving to `moves_to` at
    /// [`Impairment::readdress`].
    fn new(
        (from, to): (UdpSocket, UdpSocket),
        towards: Towards,
        impairment: Impairment,
        seed: u64,
        shared: &Shared,
        stats: Arc<Mutex<DirectionStats>>,
        moves_to: Option<UdpSocket>,
    ) -> io::Result<Direction> {
        let way = match towards {
            Towards::Server(_) => Way::ToServer,
            Towards::Client => Way::ToClient,
        };
        Ok(Direction {
            from_state: UdpSocketState::new((&from).into())?,
            out: Outgoing::new(&to)?,
            from,
            to,
            towards,
            client: Arc::clone(&shared.client),
            impairment,
            rng: seed.max(1),
            stop: Arc::clone(&shared.stop),
            cut: Arc::clone(&shared.cut),
            drop_next: Arc::clone(&shared.drop_next[way as usize]),
            first_seen: Arc::clone(&shared.first_seen),
            stats,
            bad: false,
            last_step: None,
            busy_until: None,
            policed_until: None,
            stalls: Stalls::default(),
            origin: Instant::now(),
            seq: 0,
            moves_to,
        })
    }

    fn run(mut self) {
        // Datagrams waiting for their time, earliest first.
        let mut queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
        let mut buf = vec![0u8; 65_536];
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            // (Whatever it now receives comes to the new socket.)
            let _ = self.readdress(now);
            while queue.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
                if let Some(Reverse((_, _, d))) = queue.pop() {
                    self.forward(&d);
                }
            }
            self.flush();
            let wait = queue.peek().map_or(POLL, |Reverse((at, _, _))| {
                at.saturating_duration_since(now).min(POLL)
            });
            // (The receive timeout alone overshoots by the kernel's ticks: module
            // `readable`.)
            #[cfg(target_os = "linux")]
            if !crate::readable::readable(&self.from, wait) {
                continue;
            }
            let _ = self
                .from
                .set_read_timeout(Some(wait.max(Duration::from_micros(50))));
            let mut meta = [RecvMeta::default()];
            let received =
                self.from_state
                    .recv((&self.from).into(), &mut [IoSliceMut::new(&mut buf)], &mut meta);
            if received.is_err() {
                continue;
            }
            // What came to the old socket after the move was sent to an address no longer
            // the client's.
            if self.readdress(Instant::now()) && matches!(self.towards, Towards::Client) {
                continue;
            }
            let RecvMeta {
                len, stride, addr, ..
            } = meta[0];
            if let Towards::Server(_) = self.towards {
                *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
            }
            let now = Instant::now();
            for start in (0..len).step_by(stride.max(1)) {
                let end = (start + stride.max(1)).min(len);
                self.impair(&mut buf[start..end], now, &mut queue);
            }
            self.flush();
        }
    }

    /// One datagram received at `now`: dropped, forwarded at once, or queued for its time.
    fn impair(
        &mut self,
        datagram: &mut [u8],
        now: Instant,
        queue: &mut BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    ) {
        let len = datagram.len();
        if self.chosen(len)
            || self.cut.load(Ordering::Relaxed)
            || self.mtu(now).is_some_and(|mtu| len > mtu)
            || self.in_outage(now)
            || self.lost(now)
            || queue.len() >= QUEUE_LIMIT
        {
            self.count(|s| s.dropped += 1);
            return;
        }
        if !self.policer_passes(now, len) {
            self.count(|s| s.dropped += 1);
            return;
        }
        let Some(depart) = self.bottleneck(now, len) else {
            self.count(|s| s.dropped += 1);
            return;
        };
        let len = self.alter(datagram);
        let datagram = &datagram[..len];
        let delay = self.changed(now).and_then(|c| c.delay);
        let mut at = depart + delay.unwrap_or(self.impairment.delay);
        let jitter = self.impairment.jitter;
        if !jitter.is_zero() {
            match self.impairment.ordering {
                JitterOrdering::Reorders => at += jitter.mul_f64(self.unit()),
                JitterOrdering::InOrder => {
                    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
                    let reach = micros(at.saturating_duration_since(self.origin));
                    let mut stalls = self.stalls;
                    let left = stalls.release(reach, micros(jitter), |max| {
                        // (A draw of 53 bits scaled: uniform enough for a schedule.)
                        (self.unit() * (max + 1) as f64) as u64
                    });
                    self.stalls = stalls;
                    at = self.origin + Duration::from_micros(left);
                }
            }
        }
        if self.chance(self.impairment.reorder) {
            let extra = self.impairment.delay + Duration::from_millis(2);
            at += extra.mul_f64(self.unit());
        }
        let copies = if self.chance(self.impairment.duplicate) {
            self.count(|s| s.altered += 1);
            2
        } else {
            1
        };
        for _ in 0..copies {
            if at <= now && queue.is_empty() {
                self.forward(datagram);
            } else {
                self.seq += 1;
                queue.push(Reverse((at, self.seq, datagram.to_vec())));
            }
        }
    }

    /// Whether a datagram of `len` bytes is the one [`Proxy::drop_next`] asked for; it is
    /// dropped, and the request done.
    fn chosen(&self, len: usize) -> bool {
        let at_least = self.drop_next.load(Ordering::Relaxed);
        at_least > 0
            && len >= at_least
            && self
                .drop_next
                .compare_exchange(at_least, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// A uniform draw in [0, 1) (xorshift64*).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// When either direction saw its first datagram (`now` if this is it).
    fn first_seen(&self, now: Instant) -> Instant {
        *self
            .first_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(now)
    }

    /// Moves to the other server-facing socket once [`Impairment::readdress`] says so: the
    /// way to the server sends from it, the way back receives on it (what comes to the old
    /// one is no longer read). Whether it moved now.
    fn readdress(&mut self, now: Instant) -> bool {
        let Some(after) = self.impairment.readdress else {
            return false;
        };
        if self.moves_to.is_none() || now < self.first_seen(now) + after {
            return false;
        }
        let Some(socket) = self.moves_to.take() else {
            return false;
        };
        match self.towards {
            Towards::Server(_) => {
                self.flush();
                if let Ok(out) = Outgoing::new(&socket) {
                    self.out = out;
                    self.to = socket;
                }
            }
            Towards::Client => {
                if let Ok(state) = UdpSocketState::new((&socket).into()) {
                    // quinn-udp's state makes a socket non-blocking; this one waits in its
                    // receives, as the others do.
                    let _ = socket.set_nonblocking(false);
                    self.from_state = state;
                    self.from = socket;
                }
            }
        }
        true
    }

    /// Whether the path is in its outage at `now`.
    fn in_outage(&self, now: Instant) -> bool {
        let Some(o) = self.impairment.outage else {
            return false;
        };
        let start = self.first_seen(now) + o.after;
        now >= start && now < start + o.lasts
    }

    /// The change in force at `now`, if one is.
    fn changed(&self, now: Instant) -> Option<PathChange> {
        self.impairment
            .change
            .filter(|c| now >= self.first_seen(now) + c.after)
    }

    /// The largest datagram the path carries at `now`.
    fn mtu(&self, now: Instant) -> Option<usize> {
        self.changed(now).and_then(|c| c.mtu).or(self.impairment.mtu)
    }

    /// The bottleneck's rate at `now`.
    fn rate(&self, now: Instant) -> Option<u64> {
        self.changed(now).and_then(|c| c.rate).or(self.impairment.rate)
    }

    /// Whether the next datagram, at `now`, is lost: to random loss or in a burst.
    fn lost(&mut self, now: Instant) -> bool {
        if let Some(b) = self.impairment.burst {
            // Steps for the time since the last datagram, then one for this datagram: the
            // two-state chain after k steps, in closed form.
            let idle = self
                .last_step
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            self.last_step = Some(now);
            let slots = if b.slot.is_zero() {
                0
            } else {
                (idle.as_nanos() / b.slot.as_nanos()).min(1 << 20) as i32
            };
            let stationary = b.enter / (b.enter + b.leave).max(f64::MIN_POSITIVE);
            let decay = (1.0 - b.enter - b.leave).powi(slots + 1);
            let p_bad = match self.bad {
                true => stationary + (1.0 - stationary) * decay,
                false => stationary * (1.0 - decay),
            };
            self.bad = self.unit() < p_bad;
            if self.bad {
                return true;
            }
        }
        self.chance(self.impairment.loss)
    }

    /// Whether the policer (on the way to the server) lets a datagram of `len` bytes through
    /// at `now`, taking its tokens if so.
    fn policer_passes(&mut self, now: Instant, len: usize) -> bool {
        let (Some(policer), Towards::Server(_)) = (self.impairment.policer, &self.towards) else {
            return true;
        };
        let bytes_per_second = policer.rate as f64 / 8.0;
        let until = self.policed_until.filter(|&u| u > now).unwrap_or(now);
        let missing = (until - now).as_secs_f64() * bytes_per_second;
        if missing as usize + len > policer.burst_bytes {
            return false;
        }
        self.policed_until = Some(until + Duration::from_secs_f64(len as f64 / bytes_per_second));
        true
    }

    /// When a datagram of `len` bytes leaves the bottleneck, or `None` if its queue is full.
    fn bottleneck(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(rate) = self.rate(now).filter(|&r| r > 0) else {
            return Some(now);
        };
        let busy = self.busy_until.filter(|&b| b > now).unwrap_or(now);
        let queued = (busy - now).as_secs_f64() * rate as f64;
        if queued as usize + len > self.impairment.queue_bytes {
            return None;
        }
        let done = busy + Duration::from_secs_f64(len as f64 / rate as f64);
        self.busy_until = Some(done);
        Some(done)
    }

    /// Corrupts or cuts short the datagram, as the impairment asks; its length after.
    fn alter(&mut self, datagram: &mut [u8]) -> usize {
        if datagram.is_empty() {
            return 0;
        }
        if self.chance(self.impairment.corrupt) {
            let bit = (self.unit() * (datagram.len() * 8) as f64) as usize;
            datagram[bit / 8] ^= 1 << (bit % 8);
            self.count(|s| s.altered += 1);
        }
        if self.chance(self.impairment.truncate) {
            self.count(|s| s.altered += 1);
            return 1 + (self.unit() * (datagram.len() - 1) as f64) as usize;
        }
        datagram.len()
    }

    /// Adds `datagram` to the batch leaving now, sending the batch first if it cannot join
    /// it (another address, a longer datagram after a shorter one, or the batch full).
    fn forward(&mut self, datagram: &[u8]) {
        let to = match self.towards {
            Towards::Server(server) => Some(server),
            Towards::Client => *self.client.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let Some(to) = to else {
            return;
        };
        if !self.out.joins(to, datagram) {
            self.flush();
            self.out.to = Some(to);
            self.out.len = datagram.len();
        }
        self.out.bytes.extend_from_slice(datagram);
        self.out.count += 1;
    }

    /// Sends the batch leaving now, if any: one system call for all its datagrams.
    fn flush(&mut self) {
        let (Some(to), n) = (self.out.to, self.out.count) else {
            return;
        };
        if n == 0 {
            return;
        }
        if self.cut.load(Ordering::Relaxed) {
            self.count(|s| s.dropped += n as u64);
        } else {
            let transmit = Transmit {
                destination: to,
                ecn: None,
                contents: &self.out.bytes,
                segment_size: (n > 1).then_some(self.out.len),
                src_ip: None,
            };
            if self.out.state.send((&self.to).into(), &transmit).is_ok() {
                self.count(|s| {
                    s.forwarded += n as u64;
                    s.sends += 1;
                });
            }
        }
        self.out.bytes.clear();
        self.out.count = 0;
    }

    fn count(&self, f: impl FnOnce(&mut DirectionStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests;
