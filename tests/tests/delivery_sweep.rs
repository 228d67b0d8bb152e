//! The property test over seeds and link parameters in weir-sim (loss up to 50%, bursts,
//! duplication, reordering, corruption): every message intact exactly once or a typed
//! failure, and the cases its longer sweeps found (tests/README.md, "Longer sweeps"). Its
//! transfer is `scenarios`'.

use std::cell::RefCell;

use bytes::Bytes;
use proptest::prelude::*;
use weir_core::time::{Duration, Instant};
use weir_core::{Config, ConnectionHandle, Delivery};
use weir_sim::{LinkConfig, NodeId, Sim};

use crate::scenarios::{body, pair, transfer, Run};
use crate::sweep;

/// One case of the property test: its inputs, as proptest prints them.
struct SweepCase {
    seed: u64,
    loss: f64,
    burst: bool,
    duplicate: f64,
    reorder: f64,
    corrupt: f64,
    count: usize,
}

impl SweepCase {
    /// Runs the case for up to 120 s: the sim, the client, the messages and what came.
    fn run(&self) -> (Sim, NodeId, Vec<Bytes>, Run) {
        // The property test's link: the sweeps' hop, at the default delay, with 3 ms of
        // jitter.
        let hop = sweep::Hop {
            loss: self.loss,
            burst: self.burst,
            duplicate: self.duplicate,
            reorder: self.reorder,
            corrupt: self.corrupt,
            delay_ms: 0,
        };
        let link = LinkConfig {
            delay: LinkConfig::default().delay,
            jitter: Duration::from_millis(3),
            ..hop.link()
        };
        let (mut sim, c, s) = pair(self.seed, Config::default(), link);
        let msgs: Vec<Bytes> = (0..self.count).map(|m| body(m, 1 + (m * 997) % 20_000)).collect();
        let run = transfer(&mut sim, c, s, msgs.clone(), Duration::from_secs(120));
        (sim, c, msgs, run)
    }
}

proptest! {
    // Random runs once found inputs this oracle rejected near 49% loss with bursts on top
    // (e.g. seed 2840040736257640275, loss 0.4946, burst, duplicate 0.078, corrupt 0.048, 38
    // messages: 16 delivered and no failure within 120 s), and loss was drawn below 40%
    // (the issue 7 note of 2026-11-21). They were stalls: a handshake slowed by loss left a
    // first RTT sample of seconds (the two tests below). Since that was mended (issue 35's
    // fifty-second round), that case delivers all 38 in 27 s, and sweeps of 30,000 cases
    // with loss up to 40% and 90,000 up to 50% found nothing: up to 50% again.
    #![proptest_config(sweep::sweep(24))]

    /// Over seeds and link parameters (loss up to 50%, bursts, duplication, reordering):
    /// every message is delivered intact exactly once, or the connection reports a typed
    /// failure — never silent loss, duplication or corruption. The client hears "delivered"
    /// only for a message the server has; where all arrived and nothing ended, it hears it
    /// for each within 30 s more, and then neither end holds a byte.
    #[test]
    fn delivered_intact_once_or_a_typed_failure(
        seed in any::<u64>(),
        loss in 0.0f64..0.5,
        burst in any::<bool>(),
        duplicate in 0.0f64..0.2,
        reorder in 0.0f64..0.3,
        corrupt in 0.0f64..0.05,
        count in 1usize..40,
    ) {
        let case = SweepCase { seed, loss, burst, duplicate, reorder, corrupt, count };
        let (mut sim, c, msgs, run) = case.run();
        for (stream, bytes) in &run.got {
            let m = (*stream / 2) as usize;
            prop_assert!(bytes == &msgs[m], "message {} corrupted", m);
        }
        if run.got.len() < count {
            prop_assert!(run.failed || !run.closed.is_empty(), "{} of {} delivered and no failure reported", run.got.len(), count);
        }
        let run = RefCell::new(run);
        if !run.borrow().failed && run.borrow().closed.is_empty() {
            let until = sim.now() + Duration::from_secs(30);
            let heard_all = |_: &Sim| run.borrow().verdicts.len() == count;
            sim.run_until(until, |_, node, e| run.borrow_mut().hear(c, node, &e), heard_all);
            let run = run.borrow();
            prop_assert!(run.closed.is_empty(), "closed after all arrived: {:?}", run.closed);
            for m in 0..count as u64 {
                let verdict = run.verdicts.get(&(2 * m));
                prop_assert_eq!(verdict, Some(&Delivery::Delivered { relays: 0 }), "message {}", m);
            }
            sim.run_until(sim.now() + Duration::from_secs(30), |_, _, _| {}, |_| false);
            sweep::holds_no_bytes(&sim)?;
        }
        let run = run.into_inner();
        for (stream, verdict) in &run.verdicts {
            if matches!(verdict, Delivery::Delivered { .. }) {
                prop_assert!(run.got.contains_key(stream), "stream {} delivered, never read", stream);
            }
        }
    }
}

/// A case a sweep of the property test found (seed 20261201; issue 35's fifty-second round):
/// a handshake stalled ten seconds by loss, the client with no handshake sample (its HELLO
/// went twice). Its first ACK named its first data packet, sent at the start, beside the
/// ACK-only packets of its probes, and that packet stood in for a first RTT sample of 10.3
/// s: the probe timeout grew to half a minute and BBR paced at 258 bytes a second, so the
/// sixteen messages took 125.8 s, past the test's 120. With no stand-in older than a packet
/// sent since (module `recovery`), they are delivered 12.5 s after the start.
#[test]
fn a_handshake_stalled_by_loss_leaves_no_stale_first_rtt_sample() {
    let case = SweepCase {
        seed: 8036635863352868276,
        loss: 0.34497352694469446,
        burst: false,
        duplicate: 0.11496603018223717,
        reorder: 0.22778111424851646,
        corrupt: 0.039525772945015504,
        count: 16,
    };
    let (sim, _, msgs, run) = case.run();
    let took = sim.now().saturating_duration_since(Instant::ZERO);
    assert_eq!(run.got.len(), msgs.len(), "{} of 16 in {took:?}", run.got.len());
    assert!(took < Duration::from_secs(20), "delivered in {took:?}");
}

/// The same sweep's next case: the handshake stalled eight seconds by bursts of loss, the
/// client's first data packet, sent at 1.3 s, waited at the server for the handshake's
/// keys, and the server's first ACK named it as its largest: a first RTT sample of 7.3 s,
/// and ten messages in 142 s. After a probe timeout with no ACK since, the first sample
/// now comes only from the newest packet (module `recovery`): delivered in 10.4 s.
#[test]
fn a_packet_held_for_the_handshake_s_keys_gives_no_stale_first_rtt_sample() {
    let case = SweepCase {
        seed: 4324215575042154466,
        loss: 0.3953230306651827,
        burst: true,
        duplicate: 0.07286899242009773,
        reorder: 0.08431820909450305,
        corrupt: 0.008905419634745372,
        count: 10,
    };
    let (sim, _, msgs, run) = case.run();
    let took = sim.now().saturating_duration_since(Instant::ZERO);
    assert_eq!(run.got.len(), msgs.len(), "{} of 10 in {took:?}", run.got.len());
    assert!(took < Duration::from_secs(20), "delivered in {took:?}");
}

/// A third case of a sweep (seed 99): the client had its handshake sample (25 ms), but the
/// handshake stalled 11 s on the NOISE_FINISH, lost copy after copy, and its first data
/// packet, sent at 32 ms, waited at the server for the keys; the server's first ACK named
/// it as its largest, an 11.2 s sample that put the smoothed RTT at 1.4 s and the probe
/// timeout past 12 s (0.84 s smoothed at the end). Packets sent before the third or a later
/// copy of NOISE_FINISH now give no RTT sample (`Recovery::time_from`).
#[test]
fn packets_held_for_the_keys_of_a_late_noise_finish_give_no_rtt_sample() {
    let case = SweepCase {
        seed: 15013354236033065442,
        loss: 0.33609423259124954,
        burst: true,
        duplicate: 0.16534663205043212,
        reorder: 0.15821634478324104,
        corrupt: 0.005577351329287398,
        count: 6,
    };
    let (sim, c, msgs, run) = case.run();
    assert_eq!(run.got.len(), msgs.len());
    let stats = sim
        .endpoint_ref(c)
        .connection_stats(ConnectionHandle::from_index(0))
        .unwrap();
    assert!(
        stats.smoothed_rtt < Duration::from_millis(100),
        "smoothed RTT {:?} of a path whose least is {:?}",
        stats.smoothed_rtt,
        stats.min_rtt
    );
}
