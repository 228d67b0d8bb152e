//! `recovery`: any sequence of packets sent, ACK frames (of packets sent, never sent,
//! already acknowledged or declared lost) and timer expiries against the loss-recovery
//! state machine (`recovery`, RFC 9002 §5-§6), with time only moving forward.
//!
//! Oracle: bytes in flight always equal the sizes of the packets the model holds in flight
//! (never negative, never leaking); every packet sent leaves flight exactly once, as
//! acknowledged or lost, never both and never twice; numbers are taken in order, at most
//! one left out after each packet sent; an ACK of a number never sent (past the last, or left out and
//! still remembered) is refused (and changes nothing), any other is taken; only packets below the largest acknowledged are declared
//! lost; the timer is armed whenever something is in flight; probe timeouts in a row
//! without an acknowledgement are counted, never end in giving up, and back off to no more
//! than the cap (or the unbacked-off period, where that is longer). Lazy packets (their
//! receipts only, spec §8 Acknowledgements) are never in flight and leave no number out
//! after them; each leaves exactly once, acknowledged only if the ACK names it, lost only
//! below the largest acknowledged, or given up with every other; the timer is armed
//! whenever one is kept.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use smallvec::SmallVec;

use crate::recovery::{Recovery, SentFrames, SentPacket, Timeout};
use crate::time::{Duration, Instant};
use crate::wire::{Ack, AckRange, AckRanges};

const MAX_STEPS: usize = 2_000;

/// `recovery`: packets sent, ACKs and timer expiries against loss recovery; every packet
/// leaves flight exactly once and bytes in flight stay exact.
pub fn recovery(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let max_probe_interval = Duration::from_millis(u.int_in_range(1..=5_000)?);
    let initial_rtt = Duration::from_millis(u.int_in_range(1..=500)?);
    let mut r = Recovery::new(initial_rtt, max_probe_interval, u.arbitrary()?);
    let max_ack_delay = Duration::from_millis(u.int_in_range(0..=100)?);
    r.set_peer_max_ack_delay(max_ack_delay);
    // The model: packets in flight by number, with their size.
    let mut in_flight: BTreeMap<u64, usize> = BTreeMap::new();
    // The lazy packets kept, by number, with their size.
    let mut lazy: BTreeMap<u64, usize> = BTreeMap::new();
    // Numbers left out (never sent), seen as gaps between the numbers taken.
    let mut left_out: Vec<u64> = Vec::new();
    let mut next_expected = 0u64;
    let mut now = Instant::ZERO;
    let mut probes_in_a_row = 0u32;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        now += Duration::from_micros(u.int_in_range(0..=50_000)?);
        match u.int_in_range(0u8..=7)? {
            0..=2 => {
                let number = r.take_pn();
                assert_eq!(number, next_expected, "numbers are taken in order");
                let size = u.int_in_range(1..=1500usize)?;
                r.on_sent(SentPacket::new(number, now, size, SentFrames::new()));
                // The number after an ack-eliciting packet may be left out, never more.
                next_expected = r.next_pn();
                assert!(
                    next_expected == number + 1 || next_expected == number + 2,
                    "{next_expected}"
                );
                if next_expected == number + 2 {
                    left_out.push(number + 1);
                }
                assert!(
                    in_flight.insert(number, size).is_none(),
                    "packet number {number} reused"
                );
            }
            6 => {
                let number = r.take_pn();
                assert_eq!(number, next_expected, "numbers are taken in order");
                let size = u.int_in_range(1..=1500usize)?;
                r.on_sent_lazy(SentPacket::new(number, now, size, SentFrames::new()));
                next_expected = r.next_pn();
                assert_eq!(next_expected, number + 1, "a number left out after a lazy packet");
                assert!(
                    lazy.insert(number, size).is_none(),
                    "packet number {number} reused"
                );
            }
            7 => {
                leave(&mut lazy, &r.give_up_lazy());
                assert!(lazy.is_empty(), "a lazy packet kept after giving them up");
            }
            3..=4 => {
                let Some(ack) = arbitrary_ack(u, r.next_pn())? else {
                    continue;
                };
                let before = r.bytes_in_flight();
                let largest_before = r.largest_acked();
                let names = |pn: u64| ack.ranges.iter().any(|a| (a.smallest..=a.largest).contains(&pn));
                let names_remembered_skip = left_out.iter().any(|&pn| names(pn) && r.remembers_skipped(pn));
                match r.on_ack(now, &ack) {
                    Err(_) => {
                        assert!(
                            ack.largest() >= r.next_pn() || names_remembered_skip,
                            "an ACK of sent packets refused"
                        );
                        assert_eq!(r.bytes_in_flight(), before, "a refused ACK changed the flight");
                    }
                    Ok(out) => {
                        assert!(ack.largest() < r.next_pn(), "an ACK of an unsent packet taken");
                        assert!(!names_remembered_skip, "an ACK of a number left out taken");
                        // Recovery keeps an ACK's packets in place until they are read
                        // or the next ACK: a place it gave that it cannot answer for is
                        // the bug this target looks for.
                        let acked: Vec<(u64, usize)> = out
                            .acked
                            .slots()
                            .map(|slot| r.acked_packet(slot).expect("an ACK's packet kept until read"))
                            .collect();
                        // The connection reads every ACK's frames; leaving some unread is
                        // what the next ACK cleans up after.
                        if u.arbitrary()? {
                            for slot in out.acked.slots() {
                                r.acked_frames(slot);
                            }
                        }
                        for &(number, _) in &acked {
                            assert!(
                                ack.ranges
                                    .iter()
                                    .any(|a| (a.smallest..=a.largest).contains(&number)),
                                "packet {number} acknowledged but not in the ACK"
                            );
                        }
                        if !out.acked.is_empty() || r.largest_acked() != largest_before {
                            probes_in_a_row = 0;
                        }
                        for p in &out.lazy_acked {
                            assert!(
                                names(p.number),
                                "lazy packet {} acknowledged but not in the ACK",
                                p.number
                            );
                        }
                        leave_numbers(&mut in_flight, acked);
                        lost(&mut in_flight, &out.lost, r.largest_acked());
                        leave(&mut lazy, &out.lazy_acked);
                        lost(&mut lazy, &out.lazy_lost, r.largest_acked());
                        // Whatever the ACK named is out of flight now.
                        for a in ack.ranges.iter() {
                            assert!(in_flight.range(a.smallest..=a.largest).next().is_none());
                            assert!(lazy.range(a.smallest..=a.largest).next().is_none());
                        }
                    }
                }
            }
            _ => {
                let Some(deadline) = r.deadline() else { continue };
                now = now.max(deadline);
                match r.on_timeout(now) {
                    Timeout::Lost(packets) => lost(&mut in_flight, &packets, r.largest_acked()),
                    Timeout::LazyLost(packets) => {
                        leave(&mut lazy, &packets);
                        assert!(lazy.is_empty(), "the lazy timer gives up every lazy packet");
                    }
                    Timeout::Probe { consecutive } => {
                        // The count saturates at 255 (`Timeout::Probe`).
                        probes_in_a_row = (probes_in_a_row + 1).min(255);
                        assert_eq!(consecutive, probes_in_a_row, "probes counted");
                        let base = r.rtt().pto_base(max_ack_delay);
                        assert!(r.pto() <= max_probe_interval.max(base), "backed off past the cap");
                        if let Some(next) = r.deadline() {
                            assert!(
                                next <= now + max_probe_interval.max(base),
                                "probe timer past the cap"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(
            r.bytes_in_flight(),
            in_flight.values().sum::<usize>(),
            "bytes in flight"
        );
        if !in_flight.is_empty() || !lazy.is_empty() {
            assert!(r.deadline().is_some(), "packets kept and no timer");
        }
        assert_eq!(r.lazy_in_flight(), lazy.len(), "lazy packets kept");
    }
    let drained = r.drain();
    assert_eq!(drained.len(), in_flight.len(), "drain returns what is in flight");
    leave(&mut in_flight, &drained);
    assert_eq!(r.bytes_in_flight(), 0);
    assert_eq!(r.lazy_in_flight(), 0, "drain keeps lazy packets");
    Ok(())
}

/// Takes packets out of the model's flight; each must be there.
fn leave(in_flight: &mut BTreeMap<u64, usize>, packets: &[SentPacket]) {
    leave_numbers(in_flight, packets.iter().map(|p| (p.number, p.size())));
}

/// As [`leave`], packets told by number and size.
fn leave_numbers(in_flight: &mut BTreeMap<u64, usize>, packets: impl IntoIterator<Item = (u64, usize)>) {
    for (number, size) in packets {
        assert_eq!(
            in_flight.remove(&number),
            Some(size),
            "packet {number} left flight twice or was never sent"
        );
    }
}

/// Packets declared lost: each in flight, and below the largest acknowledged.
fn lost(in_flight: &mut BTreeMap<u64, usize>, packets: &[SentPacket], largest: Option<u64>) {
    for p in packets {
        assert!(
            largest.is_some_and(|l| p.number < l),
            "packet {} lost with nothing acknowledged above it",
            p.number
        );
    }
    leave(in_flight, packets);
}

/// Up to 8 ranges, highest first, anywhere up to 2 past the next packet number (so ACKs of
/// unsent packets happen); `None` when the fuzzer's ranges are not a valid ACK.
fn arbitrary_ack(u: &mut Unstructured<'_>, next_pn: u64) -> Result<Option<Ack>> {
    let mut top = u.int_in_range(0..=next_pn + 1)?;
    let mut ranges: SmallVec<[AckRange; 8]> = SmallVec::new();
    for _ in 0..u.int_in_range(1..=8)? {
        let len = u.int_in_range(0..=top.min(64))?;
        ranges.push(AckRange {
            smallest: top - len,
            largest: top,
        });
        let gap = u.int_in_range(2..=16)?;
        match (top - len).checked_sub(gap) {
            Some(next) => top = next,
            None => break,
        }
    }
    Ok(AckRanges::new(ranges).ok().map(|ranges| Ack {
        ranges,
        ack_delay: u.int_in_range(0..=100_000).unwrap_or(0),
        one_way_delay: 0,
    }))
}
