//! A hop whose delay comes in stalls ([`JitterOrdering::InOrder`](crate::JitterOrdering)):
//! from time to time it holds everything that reaches it, for up to the jitter, and then
//! delivers what it held at once and in order. A Wi-Fi station waiting for the medium and
//! then sending one aggregate, or a cellular scheduler's grants, do this: the datagrams
//! behind a late one are late with it, and their ACKs come back in a burst.
//!
//! Input: when a datagram reaches the hop, the jitter, and uniform draws. Output: when it
//! leaves. The schedule is drawn as datagrams come (a gap of up to the jitter between
//! stalls, each stall up to the jitter long), so it does not depend on how many datagrams
//! there are: a fast flow and a slow one see the same stalls. Both the simulator's links and
//! the socket proxy use it, in microseconds from their own origin.

/// One direction's stalls: the current or next one is `start..end` (µs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stalls {
    start: u64,
    end: u64,
}

impl Stalls {
    /// When a datagram that reaches the hop at `at` leaves it: at once between stalls, at
    /// the stall's end during one. `draw(max)` is a uniform draw from `0..=max`; `jitter` is
    /// the longest stall and the longest gap, in µs.
    pub(crate) fn release(&mut self, at: u64, jitter: u64, mut draw: impl FnMut(u64) -> u64) -> u64 {
        if at > self.end.saturating_add(2 * jitter) {
            // Quiet for a while: the stalls meanwhile held nothing; start drawing again
            // near now rather than one stall at a time since the last datagram.
            self.end = at - jitter;
        }
        while at >= self.end {
            // At least a microsecond apart, so a jitter of zero still moves on.
            self.start = self.end + 1 + draw(jitter);
            self.end = self.start + draw(jitter);
        }
        if at >= self.start {
            self.end
        } else {
            at
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap deterministic draw for the tests (an LCG).
    fn draws(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut x = seed;
        move |max| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % (max + 1)
        }
    }

    /// Datagrams every 100 µs through a hop of 20 ms stalls: none overtakes another, none
    /// waits more than the jitter, and about half of them wait (stalls and gaps are alike).
    #[test]
    fn stalls_keep_the_order_and_bound_the_wait() {
        let mut s = Stalls::default();
        let mut draw = draws(1);
        let jitter = 20_000;
        let (mut last, mut held) = (0, 0);
        for i in 0..100_000u64 {
            let at = i * 100;
            let out = s.release(at, jitter, &mut draw);
            assert!(out >= at && out - at <= jitter, "{at} -> {out}");
            assert!(out >= last, "overtaken at {at}");
            last = out;
            held += u64::from(out > at);
        }
        assert!((35_000..65_000).contains(&held), "{held} held of 100,000");
    }

    /// The schedule does not depend on the traffic: a datagram at a given moment leaves at
    /// the same time whether many or few came before it.
    #[test]
    fn the_stalls_do_not_depend_on_the_traffic() {
        let jitter = 5_000;
        let (mut dense, mut sparse) = (Stalls::default(), Stalls::default());
        let (mut d1, mut d2) = (draws(3), draws(3));
        let mut differ = 0;
        for i in 0..20_000u64 {
            let at = i * 50;
            let a = dense.release(at, jitter, &mut d1);
            if i % 7 == 0 {
                differ += u64::from(sparse.release(at, jitter, &mut d2) != a);
            }
        }
        assert_eq!(differ, 0);
    }
}
