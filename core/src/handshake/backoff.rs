//! When a handshake message goes again (spec §11.2, Handshake): the client's HELLO, the
//! server's ACCEPT, the client's NOISE_FINISH, each resent until the peer's answer shows
//! it arrived.
//!
//! Input: the first interval and the configuration's `max_probe_interval`. Output: the
//! interval before each next copy, doubling up to that bound (RFC 9002 §6.2.1's probe
//! backoff, bounded as the established connection's probes are, spec §8). Unbounded, the
//! last copies of a 10 s handshake went 4.8 s apart: a burst of loss or an outage of a few
//! seconds early in the handshake left one or two copies to find the path again.

use crate::time::Duration;

/// The interval before a handshake message's next copy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    next: Duration,
    bound: Duration,
}

impl Backoff {
    /// Starts at `first`, doubling up to `bound`; a `first` already past `bound` stays as
    /// it is (as a probe timeout longer than the bound does).
    pub(crate) fn new(first: Duration, bound: Duration) -> Self {
        Backoff { next: first, bound }
    }

    /// The interval before the next copy; the one after it doubles, up to the bound.
    pub(crate) fn take(&mut self) -> Duration {
        let now = self.next;
        if now < self.bound {
            self.next = now.saturating_mul(2).min(self.bound);
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_bound_and_stays_there() {
        let mut b = Backoff::new(ms(300), ms(2_000));
        let taken: [Duration; 6] = core::array::from_fn(|_| b.take());
        assert_eq!(
            taken,
            [ms(300), ms(600), ms(1_200), ms(2_000), ms(2_000), ms(2_000)]
        );
    }

    #[test]
    fn a_first_interval_past_the_bound_is_kept() {
        let mut b = Backoff::new(ms(3_000), ms(2_000));
        assert_eq!((b.take(), b.take()), (ms(3_000), ms(3_000)));
    }
}
