//! What `core/benches/recovery.rs` drives recovery through (feature `bench-internals`):
//! [`BenchSender`]. Apart from `mod.rs` so that the state machine's file holds only it.

use alloc::vec::Vec;

use super::{Ack, Recovery, SentFrames, SentPacket};
use crate::time::{Duration, Instant};

/// A sender's loss recovery driven from outside, for `--bench recovery` (feature
/// `bench-internals`; not a stable API): packets recorded as sent, then an ACK processed.
pub struct BenchSender(Recovery);

impl Default for BenchSender {
    fn default() -> Self {
        BenchSender(Recovery::new(
            Duration::from_millis(10),
            Duration::from_secs(2),
            1,
        ))
    }
}

impl BenchSender {
    /// Records `count` packets of `size` bytes sent at `now`; returns their numbers (the
    /// numbers recovery leaves out, RFC 9000 §21.4, are skipped).
    pub fn send(&mut self, now: Instant, count: usize, size: usize) -> Vec<u64> {
        (0..count)
            .map(|_| {
                let number = self.0.take_pn();
                self.0
                    .on_sent(SentPacket::new(number, now, size, SentFrames::new()));
                number
            })
            .collect()
    }

    /// Processes, at `now`, an ACK of `numbers` (ascending, each one sent): how many
    /// packets it acknowledged and how many it declared lost.
    pub fn ack(&mut self, now: Instant, numbers: &[u64]) -> (usize, usize) {
        let mut runs: Vec<crate::wire::AckRange> = Vec::new();
        for &n in numbers {
            match runs.last_mut() {
                Some(r) if r.largest + 1 == n => r.largest = n,
                _ => runs.push(crate::wire::AckRange {
                    smallest: n,
                    largest: n,
                }),
            }
        }
        let Ok(ranges) = crate::wire::AckRanges::new(runs.into_iter().rev()) else {
            return (0, 0);
        };
        let ack = Ack {
            ranges,
            ack_delay: 0,
            one_way_delay: 0,
        };
        match self.0.on_ack(now, &ack) {
            Ok(out) => (out.acked.len(), out.lost.len()),
            Err(_) => (0, 0),
        }
    }
}
