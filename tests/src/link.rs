//! Links between simulated nodes and what they do to a datagram: loss (random and in
//! bursts), duplication, reordering, delay and jitter, a bandwidth with a finite drop-tail
//! queue, timed partitions, corruption and an MTU ([`LinkConfig`]), and the counters each
//! keeps ([`LinkStats`]).
//!
//! Input: a datagram a node sent, its link's configuration and state, and the simulator's
//! seeded generator. Output: the copies that arrive and when (queued as in-flight events),
//! or the reason it was dropped, counted.

use super::*;
use crate::nat::Routed;

/// Bursty loss by the Gilbert-Elliott model: a link is in a good or a bad state; each
/// datagram may move it, and datagrams are lost with the state's probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstLoss {
    /// Chance per datagram of going from good to bad.
    pub enter: f64,
    /// Chance per datagram of going from bad back to good.
    pub leave: f64,
    /// Loss probability while bad (while good, [`LinkConfig::loss`] applies).
    pub loss_in_burst: f64,
    /// If not zero, the chain also moves once for each `slot` of time that passed without a
    /// datagram, so that a burst lasts about the same time however sparse the traffic in it
    /// (a busy link's datagram time is the natural slot). Zero: it moves only with
    /// datagrams, so a burst that begins as traffic thins out to a probe now and then lasts
    /// many times longer.
    pub slot: Duration,
}

impl BurstLoss {
    /// Whether the chain is bad for the next datagram: it was `bad` at the previous one,
    /// `idle` ago, and now takes one step for that datagram (after the idle slots' steps).
    fn next_state(&self, bad: bool, idle: Duration, draw: f64) -> bool {
        let slots = idle.as_micros() / self.slot.as_micros().max(1);
        // A two-state chain after k steps (k idle slots and this datagram's): it decays to
        // its stationary share of bad steps, enter / (enter + leave), at rate 1 - enter - leave.
        let k = slots.saturating_add(1).min(1 << 20) as i32;
        let stationary = self.enter / (self.enter + self.leave).max(f64::MIN_POSITIVE);
        let decay = (1.0 - self.enter - self.leave).powi(k);
        let p_bad = if bad {
            stationary + (1.0 - stationary) * decay
        } else {
            stationary * (1.0 - decay)
        };
        draw < p_bad
    }
}

/// What a link's jitter does to the order of its datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JitterOrdering {
    /// Each datagram's extra delay is its own: a datagram delayed more than the ones after
    /// it is overtaken (independent per-packet delay, as netem's jitter without a rate).
    #[default]
    Reorders,
    /// The link stalls now and then for up to the jitter, holding what reaches it, and
    /// then delivers it all at once, in order (module `stalls`): a Wi-Fi hop waiting for
    /// the medium and then sending one aggregate, whose block-ack reorder buffer keeps the
    /// order; a cellular hop's scheduler likewise.
    InOrder,
}

/// A token-bucket policer: what an ISP or a mobile carrier enforces a subscriber's rate
/// with. Tokens accrue at `rate` up to `burst_bytes`; a datagram passes, at once and without
/// delay, if the bucket holds its length, and is dropped otherwise. Unlike a bottleneck it
/// queues nothing, so a sender above the rate sees no delay, only loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policer {
    /// The rate enforced, in bits per second.
    pub rate: u64,
    /// The bucket's depth: the most that passes at once after a quiet spell.
    pub burst_bytes: usize,
}

/// One direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram (reorders when large,
    /// unless [`ordering`](Self::ordering) keeps the order).
    pub jitter: Duration,
    /// Whether the jitter may reorder datagrams.
    pub ordering: JitterOrdering,
    /// Chance a datagram is lost.
    pub loss: f64,
    /// Bursty loss on top of `loss`.
    pub burst: Option<BurstLoss>,
    /// Chance a datagram is delivered twice.
    pub duplicate: f64,
    /// Chance a datagram is held back by up to one extra `delay` + 1 ms (reordering).
    pub reorder: f64,
    /// Chance one bit of a datagram is flipped.
    pub corrupt: f64,
    /// Bottleneck rate in bits per second; `None`: unlimited.
    pub bandwidth: Option<u64>,
    /// Bytes the bottleneck queue holds before it drops (drop-tail).
    pub queue_bytes: usize,
    /// A policer ahead of the bottleneck; `None`: none.
    pub policer: Option<Policer>,
    /// Largest datagram the link carries; larger ones are dropped.
    pub mtu: usize,
}

impl Default for LinkConfig {
    /// A clean 10 ms link with no loss, no limit on rate and a 1500-byte MTU.
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            ordering: JitterOrdering::Reorders,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            bandwidth: None,
            queue_bytes: 256 * 1024,
            policer: None,
            mtu: 1500,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) config: LinkConfig,
    pub(crate) in_burst: bool,
    /// When the burst chain last moved.
    pub(crate) last_datagram: Instant,
    /// When the bottleneck finishes sending what is queued.
    pub(crate) busy_until: Instant,
    /// When the policer's bucket is full again: the bucket as a virtual queue of
    /// `burst_bytes` drained at its rate, whose backlog is the tokens missing.
    pub(crate) policed_until: Instant,
    pub(crate) stats: LinkStats,
}

impl Link {
    /// A link that has carried nothing before `now`.
    pub(crate) fn new(config: LinkConfig, now: Instant) -> Link {
        Link {
            config,
            in_burst: false,
            last_datagram: now,
            busy_until: now,
            policed_until: now,
            stats: LinkStats::default(),
        }
    }
}

/// What one direction of a rate-limited or policed link did: the bottleneck's and the
/// policer's view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams that went through the bottleneck queue.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Dropped because the queue was full.
    pub queue_drops: u64,
    /// Dropped by the policer: its bucket held too few tokens.
    pub policer_drops: u64,
    /// Sum over datagrams of the time each waited in the queue, in microseconds.
    pub queueing_delay_sum_us: u64,
    /// Longest wait in the queue.
    pub max_queueing_delay: Duration,
}

impl LinkStats {
    /// Average time a datagram waited in the queue.
    pub fn mean_queueing_delay(&self) -> Duration {
        Duration::from_micros(
            self.queueing_delay_sum_us
                .checked_div(self.datagrams)
                .unwrap_or(0),
        )
    }

    /// What happened between `earlier` and `self` (both from [`Sim::link_stats`]).
    pub fn since(&self, earlier: &LinkStats) -> LinkStats {
        LinkStats {
            datagrams: self.datagrams - earlier.datagrams,
            bytes: self.bytes - earlier.bytes,
            queue_drops: self.queue_drops - earlier.queue_drops,
            policer_drops: self.policer_drops - earlier.policer_drops,
            queueing_delay_sum_us: self.queueing_delay_sum_us - earlier.queueing_delay_sum_us,
            max_queueing_delay: self.max_queueing_delay,
        }
    }
}

/// A timed partition between two nodes (both directions).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Partition {
    pub(crate) a: NodeId,
    pub(crate) b: NodeId,
    pub(crate) from: Instant,
    pub(crate) until: Instant,
}

impl Sim {
    pub(crate) fn route(&mut self, from: NodeId, to_addr: SocketAddr, mut data: Bytes) {
        self.stats.sent += 1;
        let (to, from_addr, nat) = match self.through_nats(from, to_addr) {
            Routed::Node(to, from_addr, nat) => (to, from_addr, nat),
            Routed::Outside => {
                let (datagrams, bytes) = self.outside.entry(to_addr).or_default();
                *datagrams += 1;
                *bytes += data.len() as u64;
                if let Some(kept) = self.captured.get_mut(&to_addr) {
                    kept.push(data);
                }
                return;
            }
            Routed::Dropped(why) => {
                self.stats.nat_dropped += 1;
                let now = self.now;
                return self.log(|| format!("{now} n{from}->{to_addr} DROP nat: {why}"));
            }
        };
        if let Some(rewrite) = self.interceptors.get_mut(&(from, to)) {
            let mut bytes = data.to_vec();
            if !rewrite(&mut bytes) {
                self.stats.intercepted += 1;
                return;
            }
            if bytes[..] != data[..] {
                self.stats.intercepted += 1;
            }
            data = Bytes::from(bytes);
        }
        if let Some(seen) = self.taps.get_mut(&(from, to)) {
            seen.push(data.clone());
        }
        let now = self.now;
        let config = self
            .links
            .get(&(from, to))
            .map_or_else(LinkConfig::default, |l| l.config);
        let len = data.len();
        let drop =
            |sim: &mut Sim, why: &str| sim.log(|| format!("{now} n{from}->n{to} len={len} DROP {why}"));
        let count = self.counts.entry((from, to)).or_insert(0);
        *count += 1;
        if self.drops.remove(&(from, to, *count)) {
            self.stats.lost += 1;
            return drop(self, "chosen");
        }
        if self.partitions.iter().any(|p| {
            ((p.a == from && p.b == to) || (p.a == to && p.b == from)) && p.from <= now && now < p.until
        }) {
            self.stats.partitioned += 1;
            return drop(self, "partition");
        }
        if len > config.mtu {
            self.stats.too_big += 1;
            return drop(self, "mtu");
        }
        let in_burst = match config.burst {
            Some(b) => {
                let (was, last) = self
                    .links
                    .get(&(from, to))
                    .map_or((false, now), |l| (l.in_burst, l.last_datagram));
                let now_bad = match (b.slot == Duration::ZERO, was) {
                    (true, true) => !self.chance(b.leave),
                    (true, false) => self.chance(b.enter),
                    (false, _) => {
                        let draw = self.unit();
                        b.next_state(was, now - last.min(now), draw)
                    }
                };
                if let Some(l) = self.links.get_mut(&(from, to)) {
                    l.in_burst = now_bad;
                    l.last_datagram = now;
                }
                now_bad.then_some(b.loss_in_burst)
            }
            None => None,
        };
        if self.chance(in_burst.unwrap_or(config.loss)) {
            self.stats.lost += 1;
            return drop(self, "loss");
        }
        if let Some(policer) = config.policer {
            let link = self
                .links
                .entry((from, to))
                .or_insert_with(|| Link::new(config, now));
            let until = link.policed_until.max(now);
            if bytes_in(until - now, policer.rate) + len > policer.burst_bytes {
                link.stats.policer_drops += 1;
                self.stats.policer_drops += 1;
                return drop(self, "policer");
            }
            link.policed_until = until + time_of(len, policer.rate);
        }
        // The bottleneck: serialise after what is queued; drop when the queue is full.
        let mut depart = now;
        if let Some(bw) = config.bandwidth {
            let link = self
                .links
                .entry((from, to))
                .or_insert_with(|| Link::new(config, now));
            let busy = link.busy_until.max(now);
            if bytes_in(busy - now, bw) + len > config.queue_bytes {
                link.stats.queue_drops += 1;
                self.stats.queue_drops += 1;
                return drop(self, "queue");
            }
            let tx = time_of(len, bw);
            let waited = busy - now;
            link.stats.datagrams += 1;
            link.stats.bytes += len as u64;
            link.stats.queueing_delay_sum_us += waited.as_micros();
            link.stats.max_queueing_delay = link.stats.max_queueing_delay.max(waited);
            link.busy_until = busy + tx;
            depart = busy + tx;
        }
        if self.chance(config.corrupt) {
            let mut v = data.to_vec();
            let bit = (self.rng.next_u64() % (len as u64 * 8).max(1)) as usize;
            if let Some(b) = v.get_mut(bit / 8) {
                *b ^= 1 << (bit % 8);
            }
            data = Bytes::from(v);
            self.stats.corrupted += 1;
        }
        let mut at = depart + config.delay;
        match config.ordering {
            JitterOrdering::Reorders => at += self.uniform(config.jitter),
            JitterOrdering::InOrder if config.jitter > Duration::ZERO => {
                let mut stalls = self.stalls.get(&(from, to)).copied().unwrap_or_default();
                let left = stalls.release(at.as_micros(), config.jitter.as_micros(), |max| {
                    self.uniform(Duration::from_micros(max)).as_micros()
                });
                self.stalls.insert((from, to), stalls);
                at = Instant::ZERO + Duration::from_micros(left);
            }
            JitterOrdering::InOrder => {}
        }
        if self.chance(config.reorder) {
            at += self.uniform(config.delay + Duration::from_millis(1));
        }
        let copies = if self.chance(config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for i in 0..copies {
            let seq = self.next_seq();
            let at = at + Duration::from_micros(i);
            self.queue.push(Reverse(InFlight {
                at,
                seq,
                to,
                from: from_addr,
                nat,
                data: data.clone(),
            }));
        }
        let kind = describe(&data);
        self.log(|| format!("{now} n{from}->n{to} len={len} {kind} arrives {at}"));
    }
}

/// The bytes a rate of `bits_per_second` moves in `span` (what a queue or a bucket drained
/// at that rate holds when it is busy for `span` more).
fn bytes_in(span: Duration, bits_per_second: u64) -> usize {
    (span.as_micros() as u128 * bits_per_second as u128 / 8_000_000) as usize
}

/// How long `len` bytes take at `bits_per_second`.
fn time_of(len: usize, bits_per_second: u64) -> Duration {
    Duration::from_micros((len as u128 * 8_000_000 / bits_per_second as u128) as u64)
}
