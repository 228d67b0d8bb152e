//! `congestion`: any of weir's congestion controllers (BBR, NewReno, LEDBAT in each of its
//! modes; module `congestion`, RFC 9002 §7, RFC 6817) under a sender that sends within the
//! window (and probes past it), and a path the fuzzer makes up: ACKs of the oldest packets
//! in flight with any RTT, one-way delay (a part of the RTT) and app-limited flag, losses, lost
//! packets that arrive after all (spurious losses), persistent congestion, and time that only
//! moves forward. The events are built as the connection
//! builds them (bytes in flight, delivery-rate samples from the packets acknowledged), so
//! what the controller sees is what a connection could show it.
//!
//! Oracle, after every event: the window is at least two datagrams (the trait's contract,
//! so a connection always makes progress), a pacing rate is positive, and a queueing delay
//! is at most the time elapsed; no panic (and, where debug assertions are on, as under
//! `cargo test`, no arithmetic overflow). No upper bound on the window or the rate: the
//! made-up path can acknowledge a window in no time at all, a delivery rate no real path
//! shows, and BBR then models a path that fast (a first run found a 1.7 GB window that way).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};

use crate::congestion::{
    AckEvent, CongestionAlgorithm, CongestionController, LedbatConfig, LedbatDecrease, LedbatGain,
    LedbatSlowdown, LossEvent, RateSample, RttSample,
};
use crate::time::{Duration, Instant};

const MAX_STEPS: usize = 1_000;
const MAX_DATAGRAM: usize = 1_452;

/// A packet in flight: when it left, its size, and what had been delivered then.
struct Sent {
    at: Instant,
    bytes: usize,
    prior_delivered: u64,
    app_limited: bool,
}

/// `congestion`: a controller under a made-up path; its window, pacing rate and queueing
/// delay stay within their bounds after every event.
pub fn congestion(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}

fn algorithm(u: &mut Unstructured<'_>) -> Result<CongestionAlgorithm> {
    Ok(match u.int_in_range(0u8..=2)? {
        0 => CongestionAlgorithm::Bbr,
        1 => CongestionAlgorithm::NewReno,
        _ => CongestionAlgorithm::Ledbat(LedbatConfig {
            target: Duration::from_millis(u.int_in_range(1..=200)?),
            gain: if u.arbitrary()? {
                LedbatGain::Adaptive
            } else {
                LedbatGain::Fixed {
                    per_mille: u.int_in_range(1..=1000)?,
                }
            },
            decrease: if u.arbitrary()? {
                LedbatDecrease::Multiplicative
            } else {
                LedbatDecrease::Linear
            },
            slowdown: if u.arbitrary()? {
                LedbatSlowdown::Periodic
            } else {
                LedbatSlowdown::Disabled
            },
        }),
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut cc = algorithm(u)?.build(MAX_DATAGRAM);
    let start = Instant::ZERO;
    let mut now = start;
    let mut flight: VecDeque<Sent> = VecDeque::new();
    let mut in_flight = 0usize;
    let mut delivered = 0u64;
    let mut min_rtt: Option<Duration> = None;
    // Losses reported, any of which may turn out spurious (once each).
    let mut lost: Vec<LossEvent> = Vec::new();
    // The two clocks' offset: one-way delays are this plus a part of the packet's RTT.
    let offset = u.arbitrary::<u32>()?;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        now += Duration::from_micros(u.int_in_range(0..=200_000)?);
        match u.int_in_range(0u8..=9)? {
            0..=3 => {
                // Within the window, or a probe past it.
                let bytes = u.int_in_range(1..=MAX_DATAGRAM)?;
                if in_flight + bytes > cc.window() && !u.arbitrary::<bool>()? {
                    continue;
                }
                in_flight += bytes;
                flight.push_back(Sent {
                    at: now,
                    bytes,
                    prior_delivered: delivered,
                    app_limited: u.arbitrary()?,
                });
                cc.on_sent(now, bytes, in_flight);
            }
            4..=6 => {
                let Some((bytes, newest)) = take_oldest(u, &mut flight, &mut in_flight)? else {
                    continue;
                };
                delivered += bytes as u64;
                let rtt = now.saturating_duration_since(newest.at);
                let min = min_rtt.map_or(rtt, |m| m.min(rtt));
                min_rtt = Some(min);
                // The way there took some of the round trip, as on a real path: so delays
                // never grow faster than time passes.
                let there = u.int_in_range(0..=rtt.as_micros())?;
                let one_way = offset.wrapping_add(there as u32);
                let rate = RateSample {
                    delivered: delivered - newest.prior_delivered,
                    interval: rtt.max(Duration::from_micros(1)),
                    rtt,
                    app_limited: newest.app_limited,
                    prior_delivered: newest.prior_delivered,
                    total_delivered: delivered,
                    acked: bytes as u64,
                };
                cc.on_ack(&AckEvent {
                    now,
                    bytes_acked: bytes,
                    newest_sent: newest.at,
                    rtt: RttSample {
                        latest: rtt,
                        smoothed: rtt,
                        min,
                    },
                    one_way_delay: u.arbitrary::<bool>()?.then_some(one_way),
                    bytes_in_flight: in_flight,
                    app_limited: u.arbitrary()?,
                    rate: Some(rate),
                });
            }
            7..=8 => {
                let Some((bytes, newest)) = take_oldest(u, &mut flight, &mut in_flight)? else {
                    continue;
                };
                let loss = LossEvent {
                    now,
                    bytes_lost: bytes,
                    newest_sent: newest.at,
                    bytes_in_flight: in_flight,
                };
                cc.on_loss(&loss);
                lost.push(loss);
            }
            _ if !lost.is_empty() && u.arbitrary::<bool>()? => {
                let at = u.int_in_range(0..=lost.len() - 1)?;
                let loss = lost.swap_remove(at);
                cc.on_spurious_loss(&LossEvent {
                    now,
                    bytes_in_flight: in_flight,
                    ..loss
                });
            }
            _ => cc.on_persistent_congestion(now),
        }
        check(cc.as_ref(), now.saturating_duration_since(start));
    }
    Ok(())
}

/// Takes the oldest packets in flight, as many as the input says (at least one), out of
/// `flight` and `in_flight`: their total size and the newest of them; `None` with nothing in
/// flight.
fn take_oldest(
    u: &mut Unstructured<'_>,
    flight: &mut VecDeque<Sent>,
    in_flight: &mut usize,
) -> Result<Option<(usize, Sent)>> {
    let count = u.int_in_range(1..=flight.len().max(1))?.min(flight.len());
    let mut bytes = 0;
    let mut newest = None;
    for sent in flight.drain(..count) {
        bytes += sent.bytes;
        newest = Some(sent);
    }
    *in_flight -= bytes;
    Ok(newest.map(|n| (bytes, n)))
}

/// The controller's outputs are within their bounds, `elapsed` into its life.
fn check(cc: &dyn CongestionController, elapsed: Duration) {
    let window = cc.window();
    assert!(window >= 2 * MAX_DATAGRAM, "window {window} below two datagrams");
    if let Some(rate) = cc.pacing_rate() {
        assert!(rate > 0, "a pacing rate of zero");
    }
    if let Some(delay) = cc.queueing_delay() {
        assert!(
            delay <= elapsed,
            "a queueing delay of {delay:?} after {elapsed:?}"
        );
    }
}
