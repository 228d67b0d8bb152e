//! The recovery state machine's unit tests (spec/protocol.md §8, Loss and retransmission;
//! RFC 9002): RTT samples, loss by packet and time thresholds, reordering, numbers left
//! out, probes and their backoff, the sent-packet table's room, a new path. Lazy packets
//! are in `lazy`.

mod lazy;

use super::*;
use crate::wire::{AckRange, AckRanges};

fn sent(r: &mut Recovery, at: u64) -> u64 {
    let pn = r.take_pn();
    r.on_sent(SentPacket::new(
        pn,
        Instant::from_micros(at),
        1000,
        SentFrames::new(),
    ));
    pn
}

fn ack(ranges: &[(u64, u64)]) -> Ack {
    Ack {
        ranges: AckRanges::new(ranges.iter().map(|&(s, l)| AckRange {
            smallest: s,
            largest: l,
        }))
        .unwrap(),
        ack_delay: 0,
        one_way_delay: 0,
    }
}

/// A recovery that leaves no number out, so the tests can name packets by count.
fn unskipped(max_probe_interval_ms: u64) -> Recovery {
    let mut r = Recovery::new(
        Duration::from_millis(100),
        Duration::from_millis(max_probe_interval_ms),
        0,
    );
    r.skips.next = u64::MAX;
    r
}

fn numbers(v: &[SentPacket]) -> Vec<u64> {
    v.iter().map(|p| p.number).collect()
}

/// The numbers of the packets an ACK took, their frames read as the connection reads them.
fn acked(r: &mut Recovery, out: &Outcome) -> Vec<u64> {
    let mut numbers = Vec::new();
    for slot in out.acked.slots() {
        numbers.push(r.acked_packet(slot).expect("an ACK's packet kept until read").0);
        r.acked_frames(slot);
    }
    numbers
}

/// RFC 9002 §5.1: an ACK whose largest acknowledged carried only an ACK (a packet not
/// tracked) still newly acknowledges an ack-eliciting packet: before the first sample, the
/// newest such gives one. Before, it gave none, and a connection's second request was
/// paced on the initial RTT of 100 ms.
#[test]
fn before_the_first_sample_an_ack_whose_largest_carried_only_an_ack_gives_one() {
    let mut r = unskipped(2000);
    sent(&mut r, 1_000);
    let ack_only = r.take_pn();
    r.on_ack(Instant::from_micros(1_300), &ack(&[(0, ack_only)]))
        .unwrap();
    assert_eq!(r.rtt.latest(), Duration::from_micros(300));
    assert_eq!(r.rtt.smoothed(), Duration::from_micros(300));
    // One that newly acknowledges only packets that carried an ACK gives none.
    let ack_only = r.take_pn();
    r.on_ack(Instant::from_micros(9_000), &ack(&[(0, ack_only)]))
        .unwrap();
    assert_eq!(r.rtt.latest(), Duration::from_micros(300));
}

/// After the first sample the stand-in is not used: after an outage the newest packet an
/// ACK newly acknowledges may have been sent before it, and its sample would be the outage.
#[test]
fn after_the_first_sample_an_ack_whose_largest_carried_only_an_ack_gives_none() {
    let mut r = unskipped(2000);
    sent(&mut r, 1_000);
    r.on_ack(Instant::from_micros(1_300), &ack(&[(0, 0)])).unwrap();
    sent(&mut r, 2_000);
    let ack_only = r.take_pn();
    r.on_ack(Instant::from_micros(3_002_000), &ack(&[(0, ack_only)]))
        .unwrap();
    assert_eq!(r.rtt.latest(), Duration::from_micros(300));
}

/// Nor before the first sample when an ack-eliciting packet went after the stand-in (a
/// probe, here): the ACK that names the stand-in answers a later packet than it, and may
/// come an outage after it. A sweep of the property test over seeds and links found a
/// client without a handshake sample (its HELLO went twice) whose first ACK, 10 s after a
/// stalled handshake, named its first data packet beside its probes' ACK-only packets: a
/// 10.3 s sample made its probe timeout half a minute and its BBR pace 258 bytes a second.
#[test]
fn before_the_first_sample_no_stand_in_older_than_an_ack_eliciting_packet_sent_since() {
    let mut r = unskipped(2000);
    sent(&mut r, 1_000);
    // A probe, lost; then an ACK-only packet, which the ACK names as its largest.
    let probe = sent(&mut r, 3_000_000);
    let ack_only = r.take_pn();
    r.on_ack(
        Instant::from_micros(10_000_000),
        &ack(&[(ack_only, ack_only), (0, 0)]),
    )
    .unwrap();
    assert!(!r.rtt.has_sample(), "a sample of {:?}", r.rtt.latest());
    // The next ACK whose largest is tracked gives the first sample.
    let next = sent(&mut r, 10_000_000);
    assert!(next > probe);
    r.on_ack(Instant::from_micros(10_030_000), &ack(&[(next, next)]))
        .unwrap();
    assert_eq!(r.rtt.smoothed(), Duration::from_millis(30));
}

/// Karn's ambiguity for the first sample: after a probe timeout with no ACK since, an ACK
/// whose largest is a packet older than the newest may time a wait at the peer (it held
/// that packet until the handshake's keys came: a second sweep case, 7.3 s) rather than
/// the path. No sample then; the probe's own acknowledgement gives it.
#[test]
fn before_the_first_sample_none_from_a_packet_older_than_a_probe_timeout() {
    let mut r = unskipped(2000);
    let first = sent(&mut r, 1_000);
    let due = r.deadline().unwrap();
    assert!(matches!(r.on_timeout(due), Timeout::Probe { .. }));
    // (Sent later than the probe timeout, as after a backoff.)
    let probe = sent(&mut r, 7_270_000);
    r.on_ack(Instant::from_micros(7_300_000), &ack(&[(first, first)]))
        .unwrap();
    assert!(!r.rtt.has_sample(), "a sample of {:?}", r.rtt.latest());
    r.on_ack(Instant::from_micros(7_300_000), &ack(&[(probe, probe)]))
        .unwrap();
    assert_eq!(r.rtt.smoothed(), Duration::from_millis(30));
}

/// Nor a stand-in, even the newest packet, after a probe timeout with no ACK since: the ACK
/// that answered it may be the one lost, and this one came later, for a packet that carried
/// only an ACK (sweeps: 1.0 and 1.2 s samples of a 25 ms path).
#[test]
fn before_the_first_sample_no_stand_in_after_a_probe_timeout() {
    let mut r = unskipped(2000);
    sent(&mut r, 1_000);
    let due = r.deadline().unwrap();
    assert!(matches!(r.on_timeout(due), Timeout::Probe { .. }));
    let probe = sent(&mut r, due.as_micros());
    let ack_only = r.take_pn();
    r.on_ack(Instant::from_micros(1_500_000), &ack(&[(0, ack_only)]))
        .unwrap();
    assert!(probe < ack_only);
    assert!(!r.rtt.has_sample(), "a sample of {:?}", r.rtt.latest());
}

#[test]
fn packet_threshold_declares_loss() {
    let mut r = unskipped(2000);
    for _ in 0..5 {
        sent(&mut r, 0);
    }
    let out = r.on_ack(Instant::from_micros(50_000), &ack(&[(4, 4)])).unwrap();
    assert_eq!(acked(&mut r, &out), [4]);
    assert_eq!(numbers(&out.lost), [0, 1]);
    assert_eq!(r.bytes_in_flight(), 2000);
    // 2 and 3 wait for the time threshold: 9/8 of the 50 ms sample.
    assert_eq!(r.deadline(), Some(Instant::from_micros(56_250)));
    match r.on_timeout(Instant::from_micros(56_250)) {
        Timeout::Lost(lost) => assert_eq!(numbers(&lost), [2, 3]),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.bytes_in_flight(), 0);
    assert_eq!(r.deadline(), None);
}

#[test]
fn an_ack_of_many_packets_makes_their_list_once_at_its_size() {
    let mut r = unskipped(2000);
    for _ in 0..40 {
        sent(&mut r, 0);
    }
    // Two ranges, 30 and 8 packets: the list is made for each range as it comes, exactly
    // (grown by doubling it would have been 2, 4, ... 64).
    let out = r
        .on_ack(Instant::from_micros(1_000), &ack(&[(10, 39), (0, 7)]))
        .unwrap();
    assert_eq!((out.acked.len(), out.acked.room()), (38, 38));
    // A range reaching past what is in flight asks no more room than that.
    let mut r = unskipped(2000);
    for _ in 0..6 {
        sent(&mut r, 0);
    }
    r.on_ack(Instant::from_micros(1_000), &ack(&[(0, 2)])).unwrap();
    let out = r.on_ack(Instant::from_micros(1_100), &ack(&[(0, 5)])).unwrap();
    assert_eq!(acked(&mut r, &out), [3, 4, 5]);
    assert_eq!(out.acked.room(), 4, "inline");
}

#[test]
fn reordering_raises_the_packet_threshold() {
    let mut r = unskipped(2000);
    for _ in 0..10 {
        sent(&mut r, 0);
    }
    let out = r.on_ack(Instant::from_micros(1000), &ack(&[(9, 9)])).unwrap();
    assert_eq!(numbers(&out.lost), [0, 1, 2, 3, 4, 5, 6]);
    // 2 was only late: the threshold grows to 8 (9 - 2 + 1).
    r.on_ack(Instant::from_micros(1100), &ack(&[(9, 9), (2, 2)]))
        .unwrap();
    assert_eq!(r.spurious_losses(), 1);
    for _ in 0..10 {
        sent(&mut r, 1100);
    }
    // 19 acked: 10..=11 are 8 or more below and lost; 12 to 18 wait.
    let out = r.on_ack(Instant::from_micros(1200), &ack(&[(19, 19)])).unwrap();
    assert_eq!(numbers(&out.lost), [7, 8, 10, 11]);
}

/// An ACK of packets declared lost tells congestion control of each (its bytes, when it was
/// sent), except one whose loss was no congestion signal to begin with (a probe of the
/// path's size): nothing to undo for it.
#[test]
fn a_late_packet_is_reported_to_congestion_control_as_a_spurious_loss() {
    let mut r = unskipped(2000);
    for at in [100, 200, 300, 400, 500] {
        sent(&mut r, at);
    }
    let out = r.on_ack(Instant::from_micros(1000), &ack(&[(4, 4)])).unwrap();
    assert_eq!(numbers(&out.lost), [0, 1]);
    assert!(out.spurious.is_empty());
    r.loss_not_counted(0);
    let out = r
        .on_ack(Instant::from_micros(1100), &ack(&[(4, 4), (0, 1)]))
        .unwrap();
    assert_eq!(r.spurious_losses(), 2);
    assert_eq!(
        out.spurious,
        [LossEvent {
            now: Instant::from_micros(1100),
            bytes_lost: 1000,
            newest_sent: Instant::from_micros(200),
            bytes_in_flight: 2000,
        }]
    );
    // Once only.
    let out = r.on_ack(Instant::from_micros(1200), &ack(&[(0, 4)])).unwrap();
    assert!(out.spurious.is_empty());
}

/// A packet declared lost by the time threshold and acknowledged after all: the threshold
/// grows to an eighth of an RTT beyond how late it came, so a packet as late is not lost
/// again, in one step however many such packets the ACKs then name; at most
/// `MAX_TIME_THRESHOLD`. (It grew by an eighth per smoothed RTT, to at most two RTTs:
/// where datagrams are delayed by more than the RTT, as on Wi-Fi, a fifth of them were
/// resent for nothing; `jitter::jitter_beyond_the_rtt_is_learned_not_resent`.)
#[test]
fn reordering_raises_the_time_threshold_to_the_lateness_seen() {
    let mut r = unskipped(2000);
    let ms = |m: u64| Instant::from_micros(m * 1000);
    for _ in 0..3 {
        sent(&mut r, 0);
    }
    r.on_ack(ms(50), &ack(&[(2, 2)])).unwrap();
    // 9/8 of 50 ms.
    assert_eq!(r.deadline(), Some(Instant::from_micros(56_250)));
    let Timeout::Lost(lost) = r.on_timeout(Instant::from_micros(56_250)) else {
        panic!("no loss");
    };
    assert_eq!(numbers(&lost), [0, 1]);
    // 0 came 60 ms after it was sent, 1 ms before 1: 60 ms is 10/8 of the RTT, so the
    // threshold becomes 11/8, and 1's 61 ms is within it.
    r.on_ack(ms(60), &ack(&[(2, 2), (0, 0)])).unwrap();
    r.on_ack(ms(61), &ack(&[(0, 2)])).unwrap();
    assert_eq!(r.spurious_losses(), 2);
    assert_eq!(r.time_threshold, TIME_THRESHOLD + 2);
    // A packet as late is not lost again.
    let a = sent(&mut r, 61_000);
    let b = sent(&mut r, 61_000);
    r.on_ack(ms(111), &ack(&[(b, b)])).unwrap();
    assert_eq!(r.deadline(), Some(Instant::from_micros(61_000 + 68_750)));
    let out = r.on_ack(ms(121), &ack(&[(a, b)])).unwrap();
    assert!(out.lost.is_empty());
    assert_eq!(r.spurious_losses(), 2);
    // One that comes seconds late raises it to the cap, no further.
    let c = sent(&mut r, 121_000);
    let d = sent(&mut r, 121_000);
    r.on_ack(ms(171), &ack(&[(d, d)])).unwrap();
    let at = r.deadline().unwrap();
    let Timeout::Lost(lost) = r.on_timeout(at) else {
        panic!("no loss");
    };
    assert_eq!(numbers(&lost), [c]);
    r.on_ack(ms(10_000), &ack(&[(c, d)])).unwrap();
    assert_eq!(r.time_threshold, MAX_TIME_THRESHOLD);
}

/// What reordering added to the thresholds is halved after each `CALM_ROUNDS` round trips
/// that declared losses and saw none turn out spurious: a path that stopped reordering has
/// its losses found at 9/8 RTT again.
#[test]
fn grown_thresholds_come_down_after_round_trips_of_real_loss() {
    let mut r = unskipped(2000);
    let ms = |m: u64| Instant::from_micros(m * 1000);
    for _ in 0..6 {
        sent(&mut r, 0);
    }
    r.on_ack(ms(50), &ack(&[(5, 5)])).unwrap();
    let Timeout::Lost(_) = r.on_timeout(Instant::from_micros(56_250)) else {
        panic!("no loss");
    };
    // All five were only late.
    r.on_ack(ms(60), &ack(&[(0, 5)])).unwrap();
    assert_eq!(r.spurious_losses(), 5);
    let grown = (r.time_threshold, r.packet_threshold);
    assert!(grown.0 > TIME_THRESHOLD && grown.1 > PACKET_THRESHOLD);
    let mut now = ms(61);
    let mut rounds = 0u32;
    while (r.time_threshold, r.packet_threshold) != (TIME_THRESHOLD, PACKET_THRESHOLD) {
        // A packet that is lost for good, and one after it that arrives.
        let lost = sent(&mut r, now.as_micros());
        let next = sent(&mut r, now.as_micros());
        r.on_ack(now + Duration::from_millis(50), &ack(&[(next, next)]))
            .unwrap();
        let at = r.deadline().expect("the loss timer");
        let Timeout::Lost(declared) = r.on_timeout(at) else {
            panic!("no loss");
        };
        assert_eq!(numbers(&declared), [lost]);
        rounds += 1;
        let halved = (
            TIME_THRESHOLD + (grown.0 - TIME_THRESHOLD) / 2,
            PACKET_THRESHOLD + (grown.1 - PACKET_THRESHOLD) / 2,
        );
        let now_at = (r.time_threshold, r.packet_threshold);
        match rounds {
            n if n < u32::from(CALM_ROUNDS) => assert_eq!(now_at, grown, "round {n}"),
            n if n == u32::from(CALM_ROUNDS) => assert_eq!(now_at, halved),
            _ => {}
        }
        assert!(rounds <= 8 * u32::from(CALM_ROUNDS), "still {now_at:?}");
        now = at + Duration::from_millis(1);
    }
    // Back at 9/8 of the RTT.
    sent(&mut r, now.as_micros());
    let next = sent(&mut r, now.as_micros());
    r.on_ack(now + Duration::from_millis(50), &ack(&[(next, next)]))
        .unwrap();
    assert_eq!(r.deadline(), Some(now + Duration::from_micros(56_250)));
}

#[test]
fn acking_an_unsent_packet_is_refused() {
    let mut r = unskipped(2000);
    sent(&mut r, 0);
    assert_eq!(
        r.on_ack(Instant::ZERO, &ack(&[(1, 1)])).unwrap_err(),
        UnsentPacketAcked
    );
}

#[test]
fn numbers_are_left_out_at_growing_random_gaps() {
    let mut r = Recovery::new(Duration::from_millis(100), Duration::from_secs(2), 7);
    let taken: Vec<u64> = (0..100_000).map(|_| sent(&mut r, 0)).collect();
    let left_out: Vec<u64> = taken
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| {
            assert_eq!(w[1], w[0] + 2, "one number at a time");
            w[0] + 1
        })
        .collect();
    assert!((16..32).contains(&left_out[0]), "{left_out:?}");
    for (k, pair) in left_out.windows(2).enumerate() {
        let low = 1u64 << (FIRST_SKIP_EXPONENT as usize + 1 + k).min(LAST_SKIP_EXPONENT.into());
        assert!((low..2 * low).contains(&(pair[1] - pair[0])), "{left_out:?}");
    }
    // The 11th number left out comes by 2^16 - 32, the 13th no sooner than 2^17 - 16.
    assert!((11..=12).contains(&left_out.len()), "{left_out:?}");
    // Another seed, other numbers.
    let mut other = Recovery::new(Duration::from_millis(100), Duration::from_secs(2), 8);
    let other_taken: Vec<u64> = (0..100_000).map(|_| sent(&mut other, 0)).collect();
    assert_ne!(taken, other_taken);
    // Packets that elicit no ACK (not recorded here) are never followed by a gap.
    let mut acks_only = Recovery::new(Duration::from_millis(100), Duration::from_secs(2), 7);
    assert!((0..100_000).all(|n| acks_only.take_pn() == n));
}

#[test]
fn the_numbers_left_out_are_remembered_whole_across_32_bit_boundaries() {
    // Skips keeps each number by its low 32 bits: the eight latest, wherever they fall.
    let mut skips = Skips::new(7);
    let start = (1u64 << 32) - (1 << 14);
    let mut left_out = Vec::new();
    let mut pn = start;
    while left_out.len() < REMEMBERED_SKIPS + 3 {
        if pn >= skips.next {
            skips.skip(pn);
            left_out.push(pn);
        }
        pn += 1;
    }
    assert!(left_out[0] < 1 << 32 && *left_out.last().unwrap() > 1 << 32);
    let remembered: Vec<u64> = skips.recent().collect();
    assert_eq!(remembered, left_out[3..], "the latest eight, oldest first");
    let named = |pn: u64| ack(&[(pn, pn)]);
    assert!(remembered.iter().all(|&pn| skips.any_in(&named(pn))));
    assert!(
        !skips.any_in(&named(left_out[2])),
        "forgotten once eight newer came"
    );
    assert!(!skips.any_in(&named(left_out[5] + (1 << 32))));
    assert!(!skips.any_in(&named(left_out[5] - 1)));
}

#[test]
fn an_ack_whose_ranges_pass_between_the_numbers_left_out_names_none_and_one_over_any_names_it() {
    let mut skips = Skips::new(11);
    let mut left_out = Vec::new();
    let mut pn = 0;
    while left_out.len() < REMEMBERED_SKIPS {
        if pn >= skips.next {
            skips.skip(pn);
            left_out.push(pn);
        }
        pn += 1;
    }
    // Every packet but those left out, highest first: the ranges between them.
    let mut between: Vec<(u64, u64)> = alloc::vec![(left_out[7] + 1, left_out[7] + 100)];
    for w in left_out.windows(2).rev() {
        between.push((w[0] + 1, w[1] - 1));
    }
    between.push((0, left_out[0] - 1));
    assert!(!skips.any_in(&ack(&between)));
    // One range over a number left out, among ranges that name none, each in turn: the
    // oldest, the latest and one between.
    for &named in &[left_out[0], left_out[4], left_out[7]] {
        let mut ranges = between.clone();
        let i = ranges.iter().position(|&(lo, _)| lo == named + 1).unwrap();
        // (The range below then ends a number lower: ranges have a gap between them.)
        ranges[i].0 = named;
        ranges[i + 1].1 = named - 2;
        assert!(skips.any_in(&ack(&ranges)), "{named} not found");
    }
}

#[test]
fn acking_a_number_left_out_is_refused() {
    let mut r = Recovery::new(Duration::from_millis(100), Duration::from_secs(2), 7);
    let mut numbers = Vec::new();
    while numbers.len() < 40 {
        numbers.push(sent(&mut r, 0));
    }
    let skipped = (0..40).find(|pn| !numbers.contains(pn)).unwrap();
    assert!(r.remembers_skipped(skipped));
    // An honest ACK names what was sent, around the gap.
    let honest = r
        .on_ack(
            Instant::from_micros(1000),
            &ack(&[(skipped + 1, skipped + 2), (0, skipped - 1)]),
        )
        .unwrap();
    assert_eq!(honest.acked.len() as u64, skipped + 2);
    // An optimistic one covers the gap.
    assert_eq!(
        r.on_ack(Instant::from_micros(2000), &ack(&[(0, skipped + 3)]))
            .unwrap_err(),
        UnsentPacketAcked
    );
}

/// An ACK leaves its packets' frames in their slots (module `sent_packets`): the connection
/// reads them in the order the ACK names them, once each, at places that the losses the same
/// ACK declared ahead of them did not move; the queue drops its holes after the last read.
/// An ACK's frames left unread are dropped at the next ACK.
#[test]
fn an_ack_s_frames_are_read_in_place_once_each() {
    let mut r = unskipped(2000);
    for i in 0..10 {
        let mut frames = SentFrames::new();
        frames.push(SentFrame::Relay(i));
        let pn = r.take_pn();
        r.on_sent(SentPacket::new(pn, Instant::ZERO, 1000, frames));
    }
    // Ranges as an ACK frame has them, highest first. Three below the largest are lost.
    let out = r
        .on_ack(Instant::from_micros(1_000), &ack(&[(8, 9), (4, 5)]))
        .unwrap();
    assert_eq!(numbers(&out.lost), [0, 1, 2, 3, 6]);
    assert_eq!((out.acked.bytes, out.acked.largest), (4_000, true));
    let read: Vec<_> = out
        .acked
        .slots()
        .map(|slot| {
            let (number, size) = r.acked_packet(slot).unwrap();
            let frames: Vec<SentFrame> = r.acked_frames(slot).iter().copied().collect();
            (number, size, frames)
        })
        .collect();
    let expected = [8, 9, 4, 5].map(|i| (u64::from(i), 1000, alloc::vec![SentFrame::Relay(i)]));
    assert_eq!(read, expected);
    for slot in out.acked.slots() {
        assert!(r.acked_packet(slot).is_none() && r.acked_frames(slot).is_empty());
    }
    // Only 7 is left, at the front.
    assert_eq!((r.sent.len(), r.sent.oldest().map(|p| p.number)), (1, Some(7)));
    // An ACK not read: the next one drops its frames, and after that one's read the queue
    // holds nothing.
    let unread = r.on_ack(Instant::from_micros(2_000), &ack(&[(7, 7)])).unwrap();
    assert_eq!(unread.acked.len(), 1);
    let pn = sent(&mut r, 2_000);
    let out = r.on_ack(Instant::from_micros(3_000), &ack(&[(pn, pn)])).unwrap();
    assert_eq!(acked(&mut r, &out), [pn]);
    assert!(r.sent.is_empty() && r.sent.oldest().is_none());
    assert!(r.sent.room() <= KEPT_SLOTS);
}

#[test]
fn every_packet_leaves_flight_once() {
    let mut r = unskipped(2000);
    for _ in 0..10 {
        sent(&mut r, 0);
    }
    let a = r
        .on_ack(Instant::from_micros(1000), &ack(&[(8, 9), (3, 5)]))
        .unwrap();
    let mut all = acked(&mut r, &a);
    let b = r
        .on_ack(Instant::from_micros(2000), &ack(&[(8, 9), (3, 5), (0, 1)]))
        .unwrap();
    all.extend(numbers(&a.lost));
    all.extend(acked(&mut r, &b));
    all.extend(numbers(&b.lost));
    // 0 and 1 were already lost when acknowledged, 2 ms after they were sent. Their ACK
    // shows reordering, so loss detection runs again with the grown thresholds: 7 is not
    // as late as they came yet, and the loss timer declares it lost once it is.
    assert!(b.acked.is_empty() && b.lost.is_empty());
    let at = r.deadline().expect("7's loss timer");
    assert!(at > Instant::from_micros(2000));
    let Timeout::Lost(lost) = r.on_timeout(at) else {
        panic!("no loss");
    };
    assert_eq!(numbers(&lost), [7]);
    all.extend(numbers(&lost));
    assert_eq!(r.deadline(), None);
    all.sort();
    assert_eq!(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(r.packets_in_flight(), 0);
}

#[test]
fn probes_back_off_to_the_cap_and_never_give_up() {
    let mut r = unskipped(1000);
    sent(&mut r, 0);
    // PTO = 100 + 4 × 50 + 25 = 325 ms, then 650 ms, then capped at 1 s, for ever.
    let mut at = 0;
    for (k, period) in [325_000, 650_000, 1_000_000, 1_000_000, 1_000_000]
        .into_iter()
        .enumerate()
    {
        at += period;
        assert_eq!(r.deadline(), Some(Instant::from_micros(at)), "probe {k}");
        assert!(matches!(
            r.on_timeout(Instant::from_micros(at)),
            Timeout::Probe { consecutive } if consecutive == k as u32 + 1
        ));
    }
    for _ in 0..1000 {
        at += 1_000_000;
        assert!(matches!(
            r.on_timeout(Instant::from_micros(at)),
            Timeout::Probe { .. }
        ));
    }
    // An acknowledgement ends the backoff.
    let pn = sent(&mut r, at);
    r.on_ack(Instant::from_micros(at + 1000), &ack(&[(pn, pn)]))
        .unwrap();
    assert_eq!(r.pto_count(), 0);
}

#[test]
fn a_pto_longer_than_the_cap_is_not_shortened() {
    // A 3 s RTT: the PTO is 3 + 4 × 1.5 + 0.025 s before any backoff, past a 2 s cap.
    let mut r = Recovery::new(Duration::from_secs(3), Duration::from_secs(2), 0);
    r.skips.next = u64::MAX;
    sent(&mut r, 0);
    assert_eq!(r.pto(), Duration::from_micros(9_025_000));
    r.on_timeout(Instant::from_micros(9_025_000));
    assert_eq!(r.pto(), Duration::from_micros(9_025_000));
}

#[test]
fn an_ack_naming_only_untracked_packets_still_detects_losses() {
    let mut r = unskipped(2000);
    let data = sent(&mut r, 0);
    // Numbers 1 to 4 carried only ACKs: not tracked here.
    for _ in 0..4 {
        r.take_pn();
    }
    let out = r.on_ack(Instant::from_micros(50_000), &ack(&[(2, 4)])).unwrap();
    assert!(out.acked.is_empty());
    assert_eq!(
        numbers(&out.lost),
        [data],
        "three later packets were acknowledged"
    );
    assert_eq!(r.largest_acked(), Some(4));
    assert!(!r.awaits_ack());
}

#[test]
fn a_small_flight_s_room_is_kept_until_a_trim_and_a_large_one_s_goes_at_once() {
    let mut r = unskipped(2000);
    // A message at a time: its flight's room stays for the next.
    let pn = sent(&mut r, 0);
    let out = r.on_ack(Instant::from_micros(1_000), &ack(&[(pn, pn)])).unwrap();
    assert_eq!(acked(&mut r, &out), [pn]);
    assert!(r.sent.is_empty());
    let kept = r.sent.room();
    assert!(kept > 0 && kept <= KEPT_SLOTS, "{kept} slots kept");
    r.trim();
    assert_eq!(r.sent.room(), 0, "a trim lets the room go");
    // A flight wider than what is kept: its room goes once it is all acknowledged.
    let first = sent(&mut r, 2_000);
    let mut last = first;
    for _ in 0..4 * KEPT_SLOTS {
        last = sent(&mut r, 2_000);
    }
    let out = r
        .on_ack(Instant::from_micros(3_000), &ack(&[(first, last)]))
        .unwrap();
    assert_ne!(r.sent.room(), 0, "kept while the ACK's frames wait to be read");
    assert_eq!(acked(&mut r, &out).len(), 4 * KEPT_SLOTS + 1);
    assert!(r.sent.is_empty());
    assert_eq!(r.sent.room(), 0);
}

/// A long path's flight (issue 35): past [`GROWS_BY_DOUBLING`] places the queue grows by a
/// quarter, so a ring that moves on as packets are acknowledged holds room for at most a
/// quarter more than the most it held (grown by doubling: 4,096 places for 2,201 here).
#[test]
fn a_long_flight_s_room_is_at_most_a_quarter_over_what_it_held() {
    let mut r = unskipped(2000);
    let mut oldest = sent(&mut r, 0);
    let mut most = 0;
    for i in 1..4_400u64 {
        sent(&mut r, i);
        if i % 2 == 0 {
            // The window widens as it moves: one acknowledged for every two sent.
            let out = r
                .on_ack(Instant::from_micros(i), &ack(&[(oldest, oldest)]))
                .unwrap();
            assert_eq!((acked(&mut r, &out), out.lost.len()), (alloc::vec![oldest], 0));
            oldest += 1;
        }
        most = most.max(r.sent.len());
        let room = r.sent.room();
        assert!(
            room <= (most + most / 4).max(GROWS_BY_DOUBLING),
            "{room} places for {most}"
        );
    }
    assert_eq!((most, r.sent.oldest().map(|p| p.number)), (2_201, Some(oldest)));
}

/// A sender keeps one record per packet in flight (over a long path, thousands), so its size
/// is memory (issue 35): 184 bytes while a stream frame's length took 64 bits and the
/// record's tag a word of its own; 168 with a reset's values in every control record, the
/// size in a word, the delivery state's flag in a word and every number kept twice; 128
/// while its three frames inline were a `SmallVec` (80 bytes) and its delivery state held
/// two instants whole. A place in the queue is the record itself.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_packet_in_flight_is_recorded_in_112_bytes() {
    assert_eq!(core::mem::size_of::<SentFrame>(), 24);
    assert_eq!(core::mem::size_of::<SentPacket>(), 112);
    assert_eq!(core::mem::size_of::<SentFrames>(), 72);
}

/// A packet's frames keep the order they were pushed in, three inline and more spilled.
#[test]
fn sent_frames_keep_their_order_inline_and_spilled() {
    let frames = |n: u32| {
        let mut f = SentFrames::new();
        assert!(f.is_empty());
        for i in 0..n {
            f.push(SentFrame::Relay(i));
        }
        f
    };
    for n in 1..=5 {
        let f = frames(n);
        assert!(!f.is_empty());
        assert_eq!(matches!(f, SentFrames::Spilled(_)), n > 3, "{n} frames");
        let want: alloc::vec::Vec<_> = (0..n).map(SentFrame::Relay).collect();
        assert_eq!(f.iter().copied().collect::<alloc::vec::Vec<_>>(), want);
    }
}

/// RFC 9000 §9.4: packets sent on the old path contribute nothing to the new one's RTT
/// estimate or congestion control. After `new_path`, the estimate is the initial RTT's
/// again; an ACK of old packets gives no RTT or rate sample and counts none of their
/// bytes; the first packet on the new path gives the first sample; a lost old packet is
/// not on the current path.
#[test]
fn a_new_path_learns_nothing_from_packets_sent_on_the_old_one() {
    let mut r = unskipped(2000);
    for at in [1_000, 2_000, 3_000] {
        sent(&mut r, at);
    }
    r.on_ack(Instant::from_micros(21_000), &ack(&[(0, 0)])).unwrap();
    assert!(r.rtt().has_sample());
    sent(&mut r, 22_000);
    r.new_path(4, Duration::from_millis(100));
    assert!(!r.rtt().has_sample(), "the estimate starts over");
    assert_eq!(r.rtt().smoothed(), Duration::from_millis(100));
    assert!(!r.on_current_path(3) && r.on_current_path(4));
    sent(&mut r, 23_000);
    let out = r.on_ack(Instant::from_micros(300_000), &ack(&[(1, 2)])).unwrap();
    assert_eq!(acked(&mut r, &out), [1, 2], "taken out of flight all the same");
    assert_eq!(
        (out.acked.bytes, out.acked.newest, out.rate.is_some()),
        (0, None, false)
    );
    assert!(!r.rtt().has_sample(), "no sample from the old path");
    let out = r.on_ack(Instant::from_micros(83_000), &ack(&[(4, 4)])).unwrap();
    acked(&mut r, &out);
    assert_eq!(out.acked.bytes, 1000);
    assert!(out.rate.is_some());
    assert_eq!(
        r.rtt().smoothed(),
        Duration::from_millis(60),
        "the new path's first sample"
    );
}
