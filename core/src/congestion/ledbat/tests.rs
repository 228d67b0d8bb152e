use super::*;

const MDS: usize = 1200;
const RTT: Duration = Duration::from_millis(100);

fn ack(now_ms: u64, delay_us: u32, bytes: usize, in_flight: usize) -> AckEvent {
    AckEvent {
        now: Instant::from_micros(now_ms * 1000),
        bytes_acked: bytes,
        newest_sent: Instant::from_micros(now_ms * 1000 - 100_000),
        rtt: RttSample {
            latest: RTT,
            smoothed: RTT,
            min: RTT,
        },
        one_way_delay: Some(delay_us),
        bytes_in_flight: in_flight,
        app_limited: false,
        rate: None,
    }
}

/// A controller that left slow start at t = 104 ms with a 60 ms queue over a 1 ms base.
fn past_slow_start(config: LedbatConfig) -> Ledbat {
    let mut l = Ledbat::new(config, MDS);
    l.on_ack(&ack(100, 1_000, MDS, 100_000));
    for i in 0..4 {
        l.on_ack(&ack(101 + i, 61_000, MDS, 100_000));
    }
    assert!(!l.in_slow_start());
    l
}

fn no_slowdowns() -> LedbatConfig {
    LedbatConfig {
        slowdown: LedbatSlowdown::Disabled,
        ..LedbatConfig::default()
    }
}

#[test]
fn queueing_delay_is_measured_above_the_base_across_the_wrap() {
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    // A clock offset that wraps between samples: base u32::MAX - 1000.
    l.on_ack(&ack(100, u32::MAX - 1000, MDS, 100_000));
    assert_eq!(l.queueing_delay(), Duration::ZERO);
    for i in 0..CURRENT_FILTER as u64 {
        l.on_ack(&ack(110 + i, 19_000, MDS, 100_000));
    }
    assert_eq!(l.queueing_delay(), Duration::from_micros(20_001));
}

#[test]
fn slow_start_ends_at_a_quarter_of_the_target() {
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    l.on_ack(&ack(100, 5_000, 12_000, 100_000));
    assert!(l.in_slow_start());
    assert_eq!(l.window(), 24_000);
    // 15 ms of queue is not above 15 ms (1/4 of 60): still slow start.
    for i in 0..4 {
        l.on_ack(&ack(101 + i, 20_000, 1_200, 100_000));
    }
    assert!(l.in_slow_start());
    for i in 0..4 {
        l.on_ack(&ack(110 + i, 20_001, 1_200, 100_000));
    }
    assert!(!l.in_slow_start());
}

#[test]
fn below_target_grows_above_target_shrinks() {
    let mut l = past_slow_start(no_slowdowns());
    let w = l.window();
    // A 10 ms queue, below the target: a full window acknowledged grows it by the gain
    // (RTT 100 ms, target 60 ms: 2 × 60 / 100 rounds up to 2, so half a datagram).
    for i in 0..4 {
        l.on_ack(&ack(200 + i, 11_000, w / 4, 100_000));
    }
    let grown = l.window();
    // (A little less: each ACK's share is taken of the window as it grows.)
    assert!((grown - w).abs_diff(MDS / 2) <= 10, "{w} -> {grown}");
    // Queue at twice the target (seen once the current-delay filter holds only such
    // samples): the whole window would go per RTT, but no more than half goes.
    for i in 0..8 {
        l.on_ack(&ack(300 + i, 121_000, grown / 8, 100_000));
    }
    assert!(
        l.window() < grown * 3 / 4 && l.window() >= grown / 2,
        "{}",
        l.window()
    );
}

/// No queue at all (below an eighth of the target and of the base RTT): the window is
/// short of the pipe and grows by an eighth of itself per RTT, not by the gain; as soon as
/// a queue shows, the gain again.
#[test]
fn with_no_queue_the_window_grows_by_an_eighth_per_rtt() {
    let mut l = past_slow_start(no_slowdowns());
    let w = l.window();
    for i in 0..4 {
        l.on_ack(&ack(200 + i, 1_000, w / 4, 1 << 20));
    }
    let grown = l.window();
    // (A little less than w / 8: each ACK's share is taken of the window as it grows.)
    assert!(grown > w + w / 9 && grown <= w + w / 8, "{w} -> {grown}");
    // 8 ms of queue, above 60 / 8 = 7.5 ms (once the current-delay filter holds only such
    // samples): the gain, half a datagram per RTT.
    for i in 0..CURRENT_FILTER as u64 {
        l.on_ack(&ack(300 + i, 9_000, 1, 1 << 20));
    }
    let grown = l.window();
    for i in 0..4 {
        l.on_ack(&ack(310 + i, 9_000, grown / 4, 1 << 20));
    }
    assert!(l.window() - grown <= MDS / 2, "{grown} -> {}", l.window());
}

#[test]
fn the_window_never_runs_ahead_of_the_flight() {
    let mut l = past_slow_start(no_slowdowns());
    let w = l.window();
    // An empty queue but almost nothing in flight: no growth, and no cut either.
    for i in 0..50 {
        l.on_ack(&ack(200 + i, 1_000, MDS, 0));
    }
    assert_eq!(l.window(), w);
    // With the window in flight it grows.
    l.on_ack(&ack(300, 1_000, MDS, w));
    assert!(l.window() > w);
}

fn lost(now_ms: u64) -> LossEvent {
    LossEvent {
        now: Instant::from_micros(now_ms * 1000),
        bytes_lost: MDS,
        newest_sent: Instant::from_micros(now_ms * 1000 - 50_000),
        bytes_in_flight: 10_000,
    }
}

/// A loss with no queue is a random one: repaired, the window untouched, slow start on.
#[test]
fn a_loss_without_a_queue_changes_nothing() {
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    l.on_ack(&ack(100, 1_000, 36_000, 100_000));
    assert_eq!(l.window(), 48_000);
    l.on_loss(&lost(200));
    assert_eq!(l.window(), 48_000);
    assert!(l.in_slow_start());
    // Unless the losses pass a fifth of what was sent: a policer, not chance.
    for i in 0..20 {
        l.on_loss(&lost(300 + i));
    }
    assert_eq!(l.window(), 24_000);
    assert!(!l.in_slow_start());
}

/// A loss with a 100 ms queue over a 100 ms base RTT: half the window was queue.
#[test]
fn a_loss_with_a_queue_drops_the_queued_share_and_persistent_congestion_slow_starts_back() {
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    l.on_ack(&ack(100, 1_000, 36_000, 100_000));
    assert_eq!(l.window(), 48_000);
    // The current delay is the least of the last four samples.
    for i in 0..4 {
        l.on_ack(&ack(150 + i, 101_000, 0, 100_000));
    }
    assert!(!l.in_slow_start());
    let before = l.window();
    l.on_loss(&lost(200));
    assert_eq!(l.window(), before / 2);
    // A 25 ms queue: a fifth of the window was queue, the window keeps the rest.
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    l.on_ack(&ack(100, 1_000, 36_000, 100_000));
    for i in 0..4 {
        l.on_ack(&ack(150 + i, 26_000, 0, 100_000));
    }
    let before = l.window();
    l.on_loss(&lost(200));
    assert_eq!(l.window(), before * 100 / 125, "...and keeps the pipe's share");
    l.on_persistent_congestion(Instant::from_micros(300_000));
    assert_eq!(l.window(), 2 * MDS);
    assert!(l.in_slow_start());
    // Slow start doubles back up to the window after the loss, not linearly.
    let mut at = 500;
    while l.in_slow_start() {
        let w = l.window();
        l.on_ack(&ack(at, 1_000, w, 1_000_000));
        at += 100;
    }
    assert!(at <= 500 + 6 * 100, "doubling, not a crawl");
    assert!(l.window() >= before * 100 / 125);
}

/// An outage: no loss before the silence, persistent congestion repeated at each probe
/// timeout, the probes declared lost once the path is back. Slow start goes on to the
/// whole old window.
#[test]
fn after_an_outage_slow_start_climbs_back_to_the_old_window() {
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    l.on_ack(&ack(100, 1_000, 36_000, 100_000));
    assert_eq!(l.window(), 48_000);
    l.on_persistent_congestion(Instant::from_micros(300_000));
    l.on_persistent_congestion(Instant::from_micros(900_000));
    l.on_loss(&LossEvent {
        now: Instant::from_micros(1_000_000),
        bytes_lost: MDS,
        newest_sent: Instant::from_micros(800_000),
        bytes_in_flight: MDS,
    });
    assert!(l.in_slow_start(), "a probe lost in the outage ends nothing");
    let mut at = 1_100;
    while l.window() < 48_000 {
        let w = l.window();
        l.on_ack(&ack(at, 1_000, w, 100_000));
        assert!(l.in_slow_start() || l.window() >= 48_000);
        at += 100;
    }
    assert!(at <= 1_100 + 5 * 100, "doubling, not a crawl");
}

#[test]
fn growth_below_target_does_not_fade_near_it() {
    // 50 ms of queue against a 60 ms target.
    let grown = |decrease| {
        let mut l = past_slow_start(LedbatConfig {
            decrease,
            ..no_slowdowns()
        });
        let w = l.window();
        for i in 0..4 {
            l.on_ack(&ack(200 + i, 51_000, w / 4, 100_000));
        }
        l.window() - w
    };
    // LEDBAT++: the full gain (half a datagram per RTT here), so flows sharing a queue
    // reach the target, where the multiplicative decrease evens their windows out.
    assert!(grown(LedbatDecrease::Multiplicative).abs_diff(MDS / 2) <= 10);
    // RFC 6817: the gain scaled by how far below the target, 10/60 of it.
    assert!(grown(LedbatDecrease::Linear).abs_diff(MDS / 12) <= 10);
}

#[test]
fn periodic_slowdown_drains_the_queue_then_resumes_at_the_pipe_size() {
    let mut l = past_slow_start(LedbatConfig::default());
    let before = l.window();
    // Two RTTs after slow start ended the slowdown begins, with 60 ms of queue: the RTT
    // is 160 ms over a 100 ms base.
    let mut queued = ack(400, 61_000, MDS, 100_000);
    queued.rtt.smoothed = Duration::from_millis(160);
    l.on_ack(&queued);
    assert_eq!(l.window(), 2 * MDS);
    // It holds for two base RTTs plus the 60 ms the queue takes to drain.
    l.on_ack(&ack(659, 1_000, MDS, 100_000));
    assert_eq!(l.window(), 2 * MDS);
    l.on_ack(&ack(660, 1_000, MDS, 100_000));
    // Then the window is the pipe (the old one less its queue, 100/160 of it), and slow
    // start climbs back to the old window, not past it.
    assert!(l.in_slow_start());
    assert!(
        l.window().abs_diff(before * 100 / 160) <= 1,
        "{} vs {before}",
        l.window()
    );
    let pipe = l.window();
    // A queue of 30 ms (other flows') ends a first slow start but not this climb back:
    // stopping short would cost every flow that shares a queue part of its window at
    // each slowdown.
    for i in 0..4 {
        l.on_ack(&ack(760 + i, 31_000, pipe / 16, 1_000_000));
    }
    assert!(l.in_slow_start(), "{} vs {before}", l.window());
    for i in 0..100 {
        if !l.in_slow_start() {
            break;
        }
        l.on_ack(&ack(800 + i, 31_000, MDS, 1_000_000));
    }
    assert!(!l.in_slow_start());
    assert!(
        l.window() >= before && l.window() <= before + 2 * MDS,
        "{} vs {before}",
        l.window()
    );
}

/// The initial slowdown (two RTTs after slow start) is the first slow start's only: a slow
/// start after an outage is followed by the periodic one, nine times the last slowdown's
/// length on. Scheduled two RTTs on, it held the window at the minimum just as the transfer
/// had regained its rate after the outage.
#[test]
fn a_slow_start_after_an_outage_keeps_the_periodic_slowdowns() {
    let mut l = past_slow_start(LedbatConfig::default());
    // The initial slowdown, 2 RTTs on: 60 ms of queue, held until 660 ms, then the climb
    // back ends at 1,000 ms with a queue past the target (a 600 ms slowdown in all).
    let mut queued = ack(400, 61_000, MDS, 100_000);
    queued.rtt.smoothed = Duration::from_millis(160);
    l.on_ack(&queued);
    assert_eq!(l.window(), 2 * MDS);
    l.on_ack(&ack(660, 1_000, MDS, 100_000));
    assert!(l.in_slow_start());
    for i in 0..4 {
        l.on_ack(&ack(997 + i, 101_000, MDS, 100_000));
    }
    assert!(!l.in_slow_start());
    // An outage, then slow start from the minimum, ended by a queue.
    l.on_persistent_congestion(Instant::from_micros(2_000_000));
    l.on_ack(&ack(3_000, 1_000, 20 * MDS, 100_000));
    for i in 0..4 {
        l.on_ack(&ack(3_097 + i, 31_000, MDS, 100_000));
    }
    assert!(!l.in_slow_start());
    let after = l.window();
    assert!(after > 2 * MDS);
    // Two and three RTTs on: no slowdown (the initial one's spacing).
    l.on_ack(&ack(3_300, 1_000, MDS, 1_000_000));
    l.on_ack(&ack(3_400, 1_000, MDS, 1_000_000));
    assert!(l.window() >= after, "{} against {after}", l.window());
    // Nine times the last slowdown's 600 ms on, the next one.
    l.on_ack(&ack(3_100 + 9 * 600, 61_000, MDS, 1_000_000));
    assert_eq!(l.window(), 2 * MDS);
}

#[test]
fn a_slowdown_without_a_queue_slow_starts_to_find_the_path() {
    let mut l = past_slow_start(LedbatConfig::default());
    let before = l.window();
    // The queue drained (say a loss cut the window): at the slowdown, nothing queued.
    for i in 0..4 {
        l.on_ack(&ack(400 + i, 1_000, MDS, 100_000));
    }
    assert_eq!(l.window(), 2 * MDS);
    l.on_ack(&ack(700, 1_000, MDS, 100_000));
    assert!(l.in_slow_start());
    assert!(l.window() >= before);
    let mut t = 800;
    while l.window() < 2 * before {
        let w = l.window();
        l.on_ack(&ack(t, 1_000, w, 1_000_000));
        t += 100;
    }
    assert!(l.in_slow_start());
    for i in 0..4 {
        l.on_ack(&ack(t + i, 30_000, MDS, 1_000_000));
    }
    assert!(!l.in_slow_start());
}

/// Packets sent before a slowdown began sat in the queue it drains: their losses, found
/// during it, leave its plan alone.
#[test]
fn losses_found_during_a_slowdown_do_not_cut_its_plan_again() {
    let mut l = past_slow_start(LedbatConfig::default());
    let mut queued = ack(400, 61_000, MDS, 100_000);
    queued.rtt.smoothed = Duration::from_millis(160);
    l.on_ack(&queued);
    assert_eq!(l.window(), 2 * MDS);
    let Phase::Slowdown { resume, .. } = l.phase else {
        panic!("{:?}", l.phase)
    };
    l.on_loss(&LossEvent {
        now: Instant::from_micros(450_000),
        bytes_lost: 10 * MDS,
        newest_sent: Instant::from_micros(399_000),
        bytes_in_flight: MDS,
    });
    assert!(
        matches!(l.phase, Phase::Slowdown { resume: r, .. } if r == resume),
        "{:?}",
        l.phase
    );
}

/// A policer: heavy losses with no queue halve the window, and the losses stop at the
/// halved rate. From then on the path's losses follow the rate (module `loss_regime`): a
/// lone loss with no queue halves the window too, where on a path whose losses went on
/// after the cut it changes nothing (`a_loss_without_a_queue_changes_nothing`), and the
/// window no longer grows by an eighth per RTT for want of a queue.
#[test]
fn once_losses_stop_when_the_rate_halves_a_lone_loss_is_congestion() {
    let mut l = Ledbat::new(no_slowdowns(), MDS);
    l.on_ack(&ack(100, 1_000, 36_000, 100_000));
    assert_eq!(l.window(), 48_000);
    let mut at = 200;
    while l.window() == 48_000 {
        l.on_loss(&lost(at));
        at += 1;
    }
    assert_eq!(l.window(), 24_000, "a fifth of the recent traffic lost: halved");
    // What was sent after the cut arrives, none of it lost: as many datagrams as the loss
    // rate before it (6%, a moving average) would have lost 16 of.
    at += 100;
    for _ in 0..300 {
        l.on_ack(&ack(at, 1_000, MDS, 100_000));
        at += 1;
    }
    assert!(l.regime.rate_bound());
    // Ten windows more with no queue: the gain (half a datagram per RTT here) adds about
    // 6,000 bytes, where an eighth per RTT would have tripled the window.
    let before = l.window();
    let mut acked = 0;
    while acked < 10 * before {
        l.on_ack(&ack(at, 1_000, MDS, 100_000));
        acked += MDS;
        at += 1;
    }
    let w = l.window();
    assert!(
        w > before && w < before + 10 * MDS,
        "{before} -> {w}: the gain, not an eighth per RTT"
    );
    l.on_loss(&lost(at));
    assert_eq!(l.window(), w / 2);
}
