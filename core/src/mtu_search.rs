//! Path MTU discovery (RFC 8899, DPLPMTUD; spec/protocol.md §8, Datagram size): how large a
//! datagram the path carries, found by probing upward from the base size, 1,200 bytes,
//! which every path must carry (spec §3.7).
//!
//! A probe is a PING padded to the size tried, carrying no data, so its loss loses nothing
//! and is no congestion signal (RFC 8899 §4.4). The search keeps the largest size a probe
//! confirmed and the smallest that failed (less one: the ceiling). It tries the both-ends
//! maximum first (most paths carry it: one probe and done), then halves the gap; a size
//! fails after [`MAX_PROBES`] probes at it are lost in a row (one lost probe may be random
//! loss). It is done once the gap is under [`MIN_STEP`] bytes, and searches again after
//! [`RAISE_AFTER`] if it stopped short of the maximum (the path may have changed, RFC 8899
//! §5.1.2). Black-hole detection (module `black_hole`) watches the confirmed size: when it
//! falls back to the base size the search starts over at once, below the size that stopped
//! getting through, and a size above the base it confirms ends the fallback; it starts
//! over from the top once the black hole's own probe finds large datagrams getting through
//! again. A new path (the peer's IP address
//! or ours changed) starts it over at once: a Wi-Fi path's size says nothing of a mobile
//! network's, and its datagrams would be lost there until black-hole detection noticed.
//!
//! Inputs: the time, the both-ends maximum, each probe sent, packets acknowledged and lost,
//! the black hole's verdicts. Outputs: the size confirmed ([`MtuSearch::confirmed`]), and
//! whether to send a probe now and at what size ([`MtuSearch::wants_probe`]).

use crate::time::{Duration, Instant};
use crate::wire::MIN_DATAGRAM_SIZE;

/// RFC 8899 §5.1.1: PMTU_RAISE_TIMER, the wait before searching again.
pub(crate) const RAISE_AFTER: Duration = Duration::from_secs(600);

/// RFC 8899 §5.1.2: MAX_PROBES, probes lost in a row at one size before it counts as too
/// large.
pub(crate) const MAX_PROBES: u8 = 3;

/// The search ends once the largest size confirmed and the ceiling are closer than this.
pub(crate) const MIN_STEP: u16 = 16;

const BASE: u16 = MIN_DATAGRAM_SIZE as u16;

/// Where the search stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No probe out; the next may go at this time (searching), or it is the time to search
    /// again (done).
    Wait(Instant),
    /// A probe of `size` bytes is out, as packet `number`.
    Probing { number: u64, size: u16 },
}

/// The state of one connection's path MTU search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MtuSearch {
    /// The largest size a probe confirmed (the base size until one did).
    confirmed: u16,
    /// The largest size not yet shown too large; `None`: the both-ends maximum.
    ceiling: Option<u16>,
    /// Probes lost in a row at the size being tried.
    losses: u8,
    phase: Phase,
}

impl Default for MtuSearch {
    fn default() -> Self {
        MtuSearch {
            confirmed: BASE,
            ceiling: None,
            losses: 0,
            phase: Phase::Wait(Instant::ZERO),
        }
    }
}

impl MtuSearch {
    /// The largest datagram the path is known to carry.
    pub(crate) fn confirmed(&self) -> usize {
        usize::from(self.confirmed)
    }

    /// The size to try next, below `max` (the both-ends maximum); `None` once the gap is
    /// closed.
    fn candidate(&self, max: u16) -> Option<u16> {
        let ceiling = self.ceiling.unwrap_or(max).min(max);
        if ceiling < self.confirmed.saturating_add(MIN_STEP) {
            return None;
        }
        Some(match self.ceiling {
            // Nothing failed yet: the maximum itself, which most paths carry.
            None => ceiling,
            Some(_) => self.confirmed + (ceiling - self.confirmed).div_ceil(2),
        })
    }

    /// The size of the probe to send now, if one is due: `max` is the both-ends maximum.
    pub(crate) fn wants_probe(&mut self, now: Instant, max: usize) -> Option<usize> {
        let max = u16::try_from(max).unwrap_or(u16::MAX);
        let Phase::Wait(at) = self.phase else {
            return None;
        };
        if at > now {
            return None;
        }
        match self.candidate(max) {
            Some(size) => Some(usize::from(size)),
            None => {
                // Done: search again later, from the top, if it stopped short of the maximum.
                if self.confirmed < max {
                    self.ceiling = None;
                    self.phase = Phase::Wait(now + RAISE_AFTER);
                } else {
                    self.phase = Phase::Wait(Instant::MAX);
                }
                None
            }
        }
    }

    /// Whether packet `number` is the probe in flight.
    pub(crate) fn is_probe(&self, number: u64) -> bool {
        matches!(self.phase, Phase::Probing { number: n, .. } if n == number)
    }

    /// A probe of `size` bytes went as packet `number`.
    pub(crate) fn on_probe_sent(&mut self, number: u64, size: usize) {
        let size = u16::try_from(size).unwrap_or(u16::MAX);
        self.phase = Phase::Probing { number, size };
    }

    /// Packet `number` was acknowledged: if it was the probe, its size is confirmed and the
    /// search goes on at once. Whether it was.
    pub(crate) fn on_acked(&mut self, now: Instant, number: u64) -> bool {
        match self.phase {
            Phase::Probing { number: n, size } if n == number => {
                self.confirmed = self.confirmed.max(size);
                self.losses = 0;
                self.phase = Phase::Wait(now);
                true
            }
            _ => false,
        }
    }

    /// Packet `number` was declared lost: if it was the probe, one more loss at its size
    /// ([`MAX_PROBES`] make it too large) and the search goes on. Whether it was (its loss
    /// is then no congestion signal).
    pub(crate) fn on_lost(&mut self, now: Instant, number: u64) -> bool {
        let Phase::Probing { number: n, size } = self.phase else {
            return false;
        };
        if n != number {
            return false;
        }
        self.losses += 1;
        if self.losses >= MAX_PROBES {
            self.losses = 0;
            self.ceiling = Some(size - 1);
        }
        self.phase = Phase::Wait(now);
        true
    }

    /// Black-hole detection fell back to the base size: the size confirmed stopped getting
    /// through, and the search starts over from the base size at once, below it (RFC 8899
    /// §5.2: from BASE, once the base size is known to get through, SEARCHING). A path that
    /// narrowed to 1,300 bytes under the connection is used at about that, not at 1,200
    /// for the [`RAISE_AFTER`] the search waited before the forty-seventh round; once the
    /// search is done short of the maximum it tries the top again after that wait, which
    /// finds a path that healed.
    pub(crate) fn on_black_hole(&mut self, now: Instant) {
        let failed = self.confirmed;
        *self = MtuSearch {
            ceiling: (failed > BASE).then(|| failed - 1),
            phase: Phase::Wait(now),
            ..MtuSearch::default()
        };
    }

    /// The search starts over from the base size, now: large datagrams get through again
    /// after a black hole, or the connection is on a new path, whose size is as unknown as
    /// its capacity (RFC 9000 §9.4).
    pub(crate) fn start_over(&mut self, now: Instant) {
        *self = MtuSearch {
            phase: Phase::Wait(now),
            ..MtuSearch::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// Runs a search on a path that carries `path` bytes, every probe answered at once;
    /// returns the sizes probed.
    fn search(path: u16, max: usize) -> (MtuSearch, Vec<usize>) {
        let mut m = MtuSearch::default();
        let mut probed = Vec::new();
        for pn in 0..100 {
            let Some(size) = m.wants_probe(at(pn), max) else {
                break;
            };
            probed.push(size);
            m.on_probe_sent(pn, size);
            if size <= usize::from(path) {
                assert!(m.on_acked(at(pn), pn));
            } else {
                assert!(m.on_lost(at(pn), pn));
            }
        }
        (m, probed)
    }

    #[test]
    fn a_path_that_carries_the_maximum_takes_one_probe() {
        let (m, probed) = search(1500, 1452);
        assert_eq!(probed, [1452]);
        assert_eq!(m.confirmed(), 1452);
        let mut m = m;
        assert_eq!(
            m.wants_probe(at(10_000_000), 1452),
            None,
            "nothing more to search, ever"
        );
    }

    #[test]
    fn a_narrower_path_is_found_within_a_step_by_halving() {
        let (m, probed) = search(1380, 1452);
        assert!(
            m.confirmed() <= 1380 && m.confirmed() + usize::from(MIN_STEP) > 1380,
            "{m:?}"
        );
        // Three losses at the maximum, then a halving search: a handful of probes.
        assert_eq!(&probed[..3], [1452, 1452, 1452]);
        assert!(probed.len() <= 3 + 3 * 5, "{probed:?}");
        // Stopped short of the maximum: searched again after the raise timer, from the top.
        let mut m = m;
        assert_eq!(m.wants_probe(at(1_000), 1452), None);
        assert_eq!(m.wants_probe(at(1_000 + 600_000), 1452), Some(1452));
    }

    #[test]
    fn one_lost_probe_is_not_enough_to_give_up_a_size() {
        let mut m = MtuSearch::default();
        assert_eq!(m.wants_probe(at(0), 1452), Some(1452));
        m.on_probe_sent(1, 1452);
        assert!(!m.on_lost(at(1), 0), "another packet's loss is the connection's");
        assert!(m.on_lost(at(1), 1));
        assert_eq!(m.wants_probe(at(1), 1452), Some(1452), "tried again");
        m.on_probe_sent(2, 1452);
        assert!(m.on_acked(at(2), 2));
        assert_eq!(m.confirmed(), 1452);
    }

    #[test]
    fn after_a_black_hole_the_search_starts_over_from_the_base_size() {
        let (mut m, _) = search(1500, 1452);
        m.on_black_hole(at(1_000));
        assert_eq!(m.confirmed(), 1200);
        assert_eq!(
            m.wants_probe(at(1_000), 1452),
            Some(1326),
            "at once, halfway below the size that failed"
        );
        m.start_over(at(5));
        assert_eq!(m.wants_probe(at(5), 1452), Some(1452));
        assert_eq!(
            MtuSearch::default().wants_probe(at(0), 1200),
            None,
            "nothing above the base"
        );
    }
}
