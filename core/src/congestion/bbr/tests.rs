use super::*;
use crate::congestion::{RateSample, RttSample};

const MDS: usize = 1200;

/// Drives a controller round by round over a path of `rtt`: each call is one ACK that
/// ends a round, with the delivery rate and one-way queueing delay given.
struct Path {
    b: Bbr,
    now: Instant,
    delivered: u64,
    rtt: Duration,
    /// The one-way delay on the wire: a fixed offset plus the queue.
    base_owd: u32,
    /// Bytes delivered when the current round began.
    round_began: u64,
    /// Added to every RTT sample, not to the one-way delay (the peer's ACK delay).
    ack_delay: Duration,
}

impl Path {
    fn new(rtt_ms: u64) -> Self {
        Path {
            b: Bbr::new(MDS),
            now: Instant::from_micros(1_000_000),
            delivered: 0,
            rtt: Duration::from_millis(rtt_ms),
            base_owd: 5_000,
            round_began: 0,
            ack_delay: Duration::ZERO,
        }
    }

    /// One round at `rate` bytes/s with `queue` µs of queueing, `in_flight` after it.
    fn round(&mut self, rate: u64, queue: u32, in_flight: usize) {
        self.ack(rate, queue, in_flight, true);
    }

    fn ack(&mut self, rate: u64, queue: u32, in_flight: usize, new_round: bool) {
        let rtt = self.rtt + Duration::from_micros(u64::from(queue)) + self.ack_delay;
        self.now += self.rtt;
        let bytes = rate * rtt.as_micros() / 1_000_000;
        // A packet sent after the round began ends it; one sent before does not.
        let prior = if new_round {
            self.delivered
        } else {
            self.round_began.saturating_sub(1)
        };
        self.delivered += bytes;
        if new_round {
            self.round_began = self.delivered;
        }
        self.b.on_ack(&AckEvent {
            now: self.now,
            bytes_acked: bytes as usize,
            newest_sent: self.now - rtt,
            rtt: RttSample {
                latest: rtt,
                smoothed: rtt,
                min: self.rtt,
            },
            one_way_delay: Some(self.base_owd + queue),
            bytes_in_flight: in_flight,
            app_limited: false,
            rate: Some(RateSample {
                delivered: bytes,
                interval: rtt,
                rtt,
                app_limited: false,
                prior_delivered: prior,
                total_delivered: self.delivered,
                acked: bytes,
            }),
        });
    }

    fn lose(&mut self, bytes: usize, in_flight: usize) {
        self.b.on_loss(&LossEvent {
            now: self.now,
            bytes_lost: bytes,
            newest_sent: self.now - self.rtt,
            bytes_in_flight: in_flight,
        });
    }

    /// Startup to ProbeBw at `rate` (the doubling rounds, three flat ones, the drain).
    fn reach_probe_bw(&mut self, rate: u64) {
        let mut r = rate / 64;
        while r < rate {
            self.round(r, 0, 0);
            r *= 2;
        }
        for _ in 0..6 {
            if matches!(self.b.state(), State::ProbeBw { .. }) {
                return;
            }
            self.round(rate, 0, 0);
        }
        panic!("{:?}", self.b.state());
    }
}

#[test]
fn startup_ends_when_the_bandwidth_stops_growing_then_drains_reach_probe_bw() {
    let mut p = Path::new(40);
    let rate = 10_000_000;
    let mut r = rate / 64;
    while r < rate {
        p.round(r, 0, 0);
        assert_eq!(p.b.state(), State::Startup);
        r *= 2;
    }
    // The first round at the full rate still doubled the estimate; then three rounds
    // that grew it by less than 25%.
    p.round(rate, 0, 1 << 20);
    p.round(rate, 0, 1 << 20);
    p.round(rate, 0, 1 << 20);
    assert_eq!(p.b.state(), State::Startup, "two flat rounds are not enough");
    p.round(rate, 0, 1 << 20);
    assert_eq!(p.b.state(), State::Drain);
    // Drain paces below the estimate until one BDP (400 kB) is in flight.
    assert!(p.b.pacing_rate().unwrap() < rate / 2);
    p.round(rate, 0, 390_000);
    assert!(matches!(p.b.state(), State::ProbeBw { .. }));
    assert_eq!(p.b.bandwidth(), rate);
    // Paced at the estimate less 1%; the window two BDPs plus three datagrams, plus what
    // this path's ACKs aggregate: each acknowledges a whole round (one BDP) at once.
    assert_eq!(p.b.pacing_rate(), Some(rate * 99 / 100));
    assert_eq!(p.b.extra_acked(), 400_000);
    assert_eq!(p.b.window(), 800_000 + 3 * MDS + 400_000);
}

/// ACKs that acknowledge in bursts (here a round's bytes in one ACK) leave the window room
/// for a burst; ACKs that come as fast as the estimate delivers leave room for one ACK's
/// bytes only (draft §4.6.4.2).
#[test]
fn the_window_makes_room_for_acks_that_come_in_bursts() {
    fn drive(acks_per_round: u64, rtt_ms: u64) -> Bbr {
        let mut b = Bbr::new(MDS);
        let rtt = Duration::from_millis(rtt_ms);
        let rate: u64 = 10_000_000;
        let step = Duration::from_micros(rtt.as_micros() / acks_per_round);
        let chunk = rate * step.as_micros() / 1_000_000;
        let (mut now, mut delivered) = (Instant::from_micros(1_000_000), 0u64);
        for i in 0..40 * acks_per_round {
            now += step;
            // Each round's first ACK acknowledges a packet sent after the last round ended.
            let prior = if i % acks_per_round == 0 {
                delivered
            } else {
                delivered - 1
            };
            delivered += chunk;
            b.on_ack(&AckEvent {
                now,
                bytes_acked: chunk as usize,
                newest_sent: now - rtt,
                rtt: RttSample {
                    latest: rtt,
                    smoothed: rtt,
                    min: rtt,
                },
                one_way_delay: Some(5_000),
                bytes_in_flight: 0,
                app_limited: false,
                rate: Some(RateSample {
                    delivered: rate * rtt.as_micros() / 1_000_000,
                    interval: rtt,
                    rtt,
                    app_limited: false,
                    prior_delivered: prior,
                    total_delivered: delivered,
                    acked: chunk,
                }),
            });
        }
        b
    }
    let smooth = drive(10, 10);
    let bursty = drive(1, 10);
    assert!(matches!(smooth.state(), State::ProbeBw { .. }));
    assert!(matches!(bursty.state(), State::ProbeBw { .. }));
    // One ACK's bytes (10 kB), against a whole round's (100 kB).
    assert_eq!(smooth.extra_acked(), 10_000);
    assert_eq!(bursty.extra_acked(), 100_000);
    assert_eq!(bursty.window() - smooth.window(), 90_000);
    // A burst of 300 ms worth of the rate makes room for 100 ms of it only: what a receiver
    // that acknowledges in bursts on purpose can add.
    assert_eq!(drive(1, 300).extra_acked(), 1_000_000);
}

#[test]
fn a_queue_seen_by_eight_acks_in_a_row_ends_startup() {
    let mut p = Path::new(40);
    p.round(1_000_000, 0, 0);
    p.round(2_000_000, 0, 0);
    // 12 ms of queue, above a quarter of the 40 ms RTT: seven ACKs are not enough.
    for i in 0..7 {
        p.ack(4_000_000, 12_000, 0, false);
        assert_eq!(p.b.state(), State::Startup, "after {} ACKs", i + 1);
    }
    p.ack(4_000_000, 12_000, 0, false);
    assert_ne!(p.b.state(), State::Startup);
}

/// 5% of each round lost with no queue: random loss. The window and the pace are what
/// they are without it.
#[test]
fn random_loss_without_a_queue_changes_neither_window_nor_pace() {
    let run = |lossy: bool| {
        let mut p = Path::new(40);
        p.reach_probe_bw(10_000_000);
        for _ in 0..20 {
            if lossy {
                p.lose(20_000, 400_000);
            }
            p.round(10_000_000, 0, 400_000);
        }
        (p.b.window(), p.b.pacing_rate())
    };
    assert_eq!(run(true), run(false));
}

/// The same losses with a standing queue of 20 ms: congestion. What may be in flight is
/// capped at 85% of the round's peak, never below one BDP.
#[test]
fn loss_with_a_standing_queue_caps_what_may_be_in_flight() {
    let mut p = Path::new(40);
    p.reach_probe_bw(10_000_000);
    let before = p.b.window();
    p.b.on_sent(p.now, MDS, 700_000);
    p.lose(40_000, 700_000);
    p.round(10_000_000, 20_000, 600_000);
    assert_eq!(p.b.inflight_hi, 700_000 * 85 / 100);
    assert!(
        p.b.window() < before && p.b.window() >= 400_000,
        "{}",
        p.b.window()
    );
    // Six datagrams lost are needed: a round losing five says nothing.
    let mut q = Path::new(40);
    q.reach_probe_bw(10_000_000);
    q.lose(5 * MDS, 700_000);
    q.round(10_000_000, 20_000, 600_000);
    assert_eq!(q.b.inflight_hi, usize::MAX);
}

/// Startup into a bottleneck whose buffer holds 3 ms, too shallow for a standing queue of a
/// quarter of the 40 ms RTT: the round's losses while the buffer is full end Startup at
/// once, not at the round's end; the same losses with the queue empty (random loss) do
/// not.
#[test]
fn a_shallow_buffer_s_overflow_ends_startup_within_the_round() {
    let run = |queue: u32| {
        let mut p = Path::new(40);
        let rate = 10_000_000;
        let mut r = rate / 64;
        while r < rate {
            p.round(r, 0, 0);
            r *= 2;
        }
        // The buffer fills as the round ends (the first ACK at 3 ms); 40 ms later it is
        // still full, and 30 datagrams of the round's 860 kB (4%) are lost there.
        p.ack(rate, queue, 1 << 20, true);
        p.ack(rate, queue, 1 << 20, false);
        p.lose(30 * MDS, 1 << 20);
        p.ack(rate, queue, 1 << 20, false);
        p.b.state()
    };
    assert_eq!(run(3_000), State::Drain);
    assert_eq!(run(0), State::Startup);
}

/// After an overflow in ProbeBw the cap on the flight is one BDP (400 kB here); the next
/// 5/4 probe raises it by a quarter and can grow the flight no further: it ends after its
/// round trip rather than pacing above the bottleneck until the next congestion.
#[test]
fn a_probe_that_reaches_the_cap_ends_after_its_round_trip() {
    let mut p = Path::new(40);
    p.reach_probe_bw(10_000_000);
    // A 3 ms buffer, full for a round: 30 datagrams lost there, none below it.
    p.ack(10_000_000, 3_000, 400_000, true);
    p.ack(10_000_000, 3_000, 400_000, false);
    p.lose(30 * MDS, 400_000);
    p.ack(10_000_000, 3_000, 400_000, true);
    assert_eq!(p.b.inflight_hi, 400_000, "one BDP");
    // To the probe, then a round trip at the cap.
    for _ in 0..10 {
        if p.b.state() == (State::ProbeBw { phase: 0 }) {
            break;
        }
        p.round(10_000_000, 0, 400_000);
    }
    assert_eq!(p.b.state(), State::ProbeBw { phase: 0 });
    // Each round trip fills the flight to the cap, and its ACK leaves it ten datagrams
    // under: never 5/4 of the BDP (500 kB) after an ACK.
    let cap = p.b.inflight_hi;
    assert_eq!(cap, 500_000 + MDS);
    for _ in 0..2 {
        p.round(10_000_000, 0, cap - 10 * MDS);
    }
    assert_eq!(p.b.state(), State::ProbeBw { phase: 1 });
}

/// The minimum RTT is 5 s old: ProbeRtt drains to half a BDP, unless the one-way delay
/// showed the queue empty meanwhile.
#[test]
fn probe_rtt_comes_only_when_the_queue_never_emptied() {
    let mut p = Path::new(40);
    p.reach_probe_bw(10_000_000);
    // 5 s of rounds with a 5 ms queue all the time (above half the 10 ms floor).
    for _ in 0..130 {
        p.round(10_000_000, 5_000, 400_000);
    }
    assert_eq!(p.b.state(), State::ProbeRtt);
    assert_eq!(p.b.window(), 200_000);
    // Every RTT sample 1 ms above the minimum (the peer delays its ACKs), so only the
    // one-way delay can tell that the queue emptied.
    let mut q = Path::new(40);
    q.reach_probe_bw(10_000_000);
    q.ack_delay = Duration::from_millis(1);
    for i in 0..130 {
        // The queue empties now and then.
        q.round(10_000_000, if i % 10 == 0 { 0 } else { 5_000 }, 400_000);
    }
    assert!(matches!(q.b.state(), State::ProbeBw { .. }), "{:?}", q.b.state());
}

#[test]
fn after_an_outage_the_window_returns_with_the_first_ack() {
    let mut p = Path::new(40);
    p.reach_probe_bw(10_000_000);
    let window = p.b.window();
    p.b.on_persistent_congestion(p.now);
    p.b.on_persistent_congestion(p.now + Duration::from_secs(1));
    assert_eq!(p.b.window(), MIN_PIPE_PACKETS * MDS);
    p.round(10_000_000, 0, 0);
    assert_eq!(p.b.window(), window);
}

/// Random loss in Startup: the window grows by what was delivered and what was lost, so
/// the doubling per round keeps its pace.
#[test]
fn startup_grows_its_window_by_what_was_lost_too() {
    let mut p = Path::new(40);
    p.round(1_000_000, 0, 0);
    let before = p.b.window();
    p.lose(10 * MDS, 0);
    assert_eq!(p.b.window(), before + 10 * MDS);
    // Not once Startup is over.
    let mut q = Path::new(40);
    q.reach_probe_bw(10_000_000);
    let before = q.b.window();
    q.lose(10 * MDS, 0);
    assert_eq!(q.b.window(), before);
}

/// ProbeBw starts at a phase drawn from the moment and the bytes delivered: never the
/// drain phase, the same for the same inputs, and spread over the cycle otherwise, so
/// flows that leave ProbeRtt together do not probe in step.
#[test]
fn probe_bw_starts_at_a_drawn_phase_other_than_the_drain() {
    let b = Bbr::new(MDS);
    let mut seen = [0u32; 8];
    for us in 0..700 {
        let at = Instant::from_micros(5_000_000 + us * 137);
        let State::ProbeBw { phase } = b.cruise(at) else {
            panic!("not ProbeBw");
        };
        assert_eq!(b.cruise(at), State::ProbeBw { phase });
        seen[usize::from(phase)] += 1;
    }
    assert_eq!(seen[1], 0, "{seen:?}");
    // Each of the seven other phases about a seventh of the time.
    assert!(
        seen.iter()
            .enumerate()
            .all(|(p, &n)| p == 1 || (70..=130).contains(&n)),
        "{seen:?}"
    );
}

/// A connection that only sent a few control frames samples a trickle: Startup still
/// paces at least its initial window per RTT times the gain.
#[test]
fn a_trickle_of_samples_never_paces_startup_at_a_trickle() {
    let mut p = Path::new(40);
    p.round(1_000, 0, 0);
    let floor = (initial_window(MDS) as u64 * STARTUP_PACING_GAIN / UNIT) * 1_000_000 / 40_000;
    assert!(
        p.b.pacing_rate().unwrap() + 1 >= floor,
        "{:?} vs {floor}",
        p.b.pacing_rate()
    );
}
