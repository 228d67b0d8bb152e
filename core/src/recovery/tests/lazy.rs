//! Lazy packets in the recovery state machine (spec/protocol.md §8, Acknowledgements): kept
//! for their receipts alone, out of flight, lost by the packet threshold or given up by the
//! lazy timer, which backs off.

use super::*;

fn sent_lazy(r: &mut Recovery, at: u64) -> u64 {
    let pn = r.take_pn();
    r.on_sent_lazy(SentPacket::new(
        pn,
        Instant::from_micros(at),
        100,
        SentFrames::new(),
    ));
    pn
}

/// Spec §8, Acknowledgements: a lazy packet is kept for its receipts alone. Not in flight,
/// no probe timer, no RTT sample from its lazily given ACK; only the lazy timer, 250 ms
/// and a probe period after it.
#[test]
fn a_lazy_packet_is_not_in_flight_and_its_ack_gives_no_sample() {
    let mut r = unskipped(2000);
    let first = sent(&mut r, 0);
    r.on_ack(Instant::from_micros(10_000), &ack(&[(first, first)]))
        .unwrap();
    let smoothed = r.rtt.smoothed();
    let lazy = sent_lazy(&mut r, 20_000);
    assert_eq!(r.bytes_in_flight(), 0);
    assert!(!r.awaits_ack());
    let period = r.rtt.pto_base(r.max_ack_delay);
    assert_eq!(
        r.deadline(),
        Some(Instant::from_micros(20_000) + received::LAZY_ACK_DELAY + period),
        "the lazy timer, not a probe timer"
    );
    // Acknowledged 200 ms later, as the peer may: done, and the RTT stands.
    let out = r
        .on_ack(Instant::from_micros(220_000), &ack(&[(lazy, lazy)]))
        .unwrap();
    assert_eq!(numbers(&out.lazy_acked), [lazy]);
    assert!(out.acked.is_empty());
    assert_eq!(r.rtt.smoothed(), smoothed);
    assert_eq!(r.deadline(), None);
}

/// A lazy packet below three later packets acknowledged is lost, like any, without a
/// lesson about reordering.
#[test]
fn a_lazy_packet_is_lost_by_the_packet_threshold() {
    let mut r = unskipped(2000);
    let lazy = sent_lazy(&mut r, 0);
    let later: Vec<u64> = (0..3).map(|i| sent(&mut r, 1_000 + i)).collect();
    let out = r
        .on_ack(Instant::from_micros(5_000), &ack(&[(later[0], later[2])]))
        .unwrap();
    assert_eq!(numbers(&out.lazy_lost), [lazy]);
    assert_eq!(r.lazy_in_flight(), 0);
    // Acknowledged after all: no spurious loss counted, no threshold raised.
    r.on_ack(Instant::from_micros(6_000), &ack(&[(lazy, later[2])]))
        .unwrap();
    assert_eq!(r.spurious_losses(), 0);
    assert_eq!(r.packet_threshold, PACKET_THRESHOLD);
}

/// The lazy timer gives up every lazy packet at once and backs off for the next, until a
/// lazy packet is acknowledged; giving them up (the peer's PING, a close) takes them all.
#[test]
fn the_lazy_timer_gives_up_every_lazy_packet_and_backs_off() {
    let mut r = unskipped(2000);
    let period = r.rtt.pto_base(r.max_ack_delay);
    let a = sent_lazy(&mut r, 0);
    let b = sent_lazy(&mut r, 1_000);
    let due = Instant::ZERO + received::LAZY_ACK_DELAY + period;
    assert_eq!(r.deadline(), Some(due));
    match r.on_timeout(due) {
        Timeout::LazyLost(lost) => assert_eq!(numbers(&lost), [a, b]),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.deadline(), None);
    let c = sent_lazy(&mut r, 500_000);
    assert_eq!(
        r.deadline(),
        Some(Instant::from_micros(500_000) + received::LAZY_ACK_DELAY + period.saturating_mul(2)),
        "backed off"
    );
    let out = r.on_ack(Instant::from_micros(510_000), &ack(&[(c, c)])).unwrap();
    assert_eq!(numbers(&out.lazy_acked), [c]);
    let d = sent_lazy(&mut r, 600_000);
    assert_eq!(
        r.deadline(),
        Some(Instant::from_micros(600_000) + received::LAZY_ACK_DELAY + period),
        "back to the unbacked-off period"
    );
    assert_eq!(numbers(&r.give_up_lazy()), [d]);
    assert_eq!(r.deadline(), None);
    r.trim();
    assert!(r.rare.is_none(), "an empty box let go by the trim");
}
