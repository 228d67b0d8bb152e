//! The most of a figure over the last `N` rounds (draft-ietf-ccwg-bbr §4.5.2.2's windowed
//! max filter, kept by round count): BBR's bandwidth estimate and its ACK aggregation
//! estimate are each one, and so is the queueing delay's peak over the last two spans of a
//! minimum RTT that tells LEDBAT a loss was a queue's (module `loss_regime`). BBR's policer
//! test (module `bbr::policed`) reads one filter of its queueing delay two ways: the
//! largest of the latest rounds (a queue) and the least of the rounds' largest (the path's
//! jitter).
//!
//! Input: a new round begins, a sample in the current round. Output: the largest sample of
//! the current round and the `N - 1` before it (or of fewer of the latest rounds), and the
//! least of those rounds' largest. A slot per round, reused as rounds pass: no allocation,
//! `N` numbers and two bytes per connection.

/// The most of a figure over the last `N` rounds (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RoundMax<T, const N: usize> {
    /// The current round's slot (a byte, not a count of rounds: 32-bit samples then pack
    /// with it, and it never wraps out of step).
    slot: u8,
    /// A slot holding the largest sample, so that `max`, asked on every ACK, reads one slot
    /// rather than `N`; it is found again only when a new round clears it. (A byte that
    /// packs beside `slot`: the filter is no larger for it.)
    most: u8,
    slots: [T; N],
}

impl<T: Copy + Default + Ord, const N: usize> RoundMax<T, N> {
    pub(super) fn new() -> Self {
        const { assert!(N > 0 && N <= 256, "a slot index is a byte") };
        RoundMax {
            slot: 0,
            most: 0,
            slots: [T::default(); N],
        }
    }

    fn slot(&mut self) -> &mut T {
        &mut self.slots[usize::from(self.slot) % N]
    }

    /// A new round: its slot starts empty, and the round `N` ago is forgotten.
    pub(super) fn next_round(&mut self) {
        // `N` is at most 256 (checked in `new` as it compiles): the next slot fits a byte,
        // and so does any slot's index below.
        self.slot = ((usize::from(self.slot) + 1) % N) as u8;
        *self.slot() = T::default();
        if self.most == self.slot {
            // The largest went with its round: find the largest left, once a round.
            let largest = self.slots.iter().enumerate().max_by_key(|&(_, v)| *v);
            self.most = largest.map_or(0, |(i, _)| i) as u8;
        }
    }

    /// A sample of the current round.
    pub(super) fn update(&mut self, sample: T) {
        let slot = self.slot();
        *slot = (*slot).max(sample);
        if self.current() > self.max() {
            self.most = self.slot;
        }
    }

    /// The largest sample of the last `N` rounds (the default if none).
    pub(super) fn max(&self) -> T {
        self.slots[usize::from(self.most) % N]
    }

    /// The largest sample of the current round (the default if none).
    pub(super) fn current(&self) -> T {
        self.slots[usize::from(self.slot) % N]
    }

    /// The largest sample of the current round and the `rounds - 1` before it (`rounds`
    /// from 1 to `N`; more reads all `N`).
    pub(super) fn recent(&self, rounds: usize) -> T {
        let current = usize::from(self.slot);
        (0..rounds.min(N))
            .map(|back| self.slots[(current + N - back) % N])
            .max()
            .unwrap_or_default()
    }

    /// The smallest of the last `N` rounds' largest samples (the default until `N` rounds
    /// have passed, or if a round had none): what every round of them reached.
    pub(super) fn least(&self) -> T {
        self.slots.iter().copied().min().unwrap_or_default()
    }

    /// Forgets every round but the current one: what they showed no longer holds.
    pub(super) fn forget_earlier(&mut self) {
        let current = self.current();
        self.slots = [T::default(); N];
        *self.slot() = current;
        self.most = self.slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_counts_for_n_rounds_and_is_then_forgotten() {
        let mut m: RoundMax<u64, 3> = RoundMax::new();
        assert_eq!(m.max(), 0);
        m.update(7);
        m.update(5);
        m.next_round();
        m.update(4);
        m.next_round();
        assert_eq!(m.max(), 7, "two rounds on, the first round's 7 still counts");
        m.next_round();
        assert_eq!(m.max(), 4, "three rounds on, it is forgotten");
        m.next_round();
        assert_eq!(m.max(), 0);
    }

    proptest::proptest! {
        /// The largest kept is always the largest of the slots, whatever the rounds and
        /// samples: `max` reads one slot, so this is what keeps that slot right.
        #[test]
        fn the_largest_is_the_largest_of_the_rounds_kept(
            ops in proptest::collection::vec(proptest::option::of(0u32..1_000), 0..200),
            forget_at in 0usize..200,
        ) {
            let mut m: RoundMax<u32, 4> = RoundMax::new();
            for (k, op) in ops.into_iter().enumerate() {
                match op {
                    Some(sample) => m.update(sample),
                    None => m.next_round(),
                }
                if k == forget_at {
                    m.forget_earlier();
                }
                proptest::prop_assert_eq!(m.max(), m.slots.iter().copied().max().unwrap_or_default());
            }
        }

        /// The latest rounds' largest, read from a longer filter, is what a filter of that
        /// many rounds keeps (the policer test reads its two rounds' queue so).
        #[test]
        fn the_latest_rounds_largest_is_a_filter_of_that_many_rounds(
            rounds in proptest::collection::vec(proptest::collection::vec(0u32..1000, 0..4), 1..20),
        ) {
            let (mut all, mut two) = (RoundMax::<u32, 5>::new(), RoundMax::<u32, 2>::new());
            for samples in &rounds {
                all.next_round();
                two.next_round();
                for &s in samples {
                    all.update(s);
                    two.update(s);
                }
                proptest::prop_assert_eq!(all.recent(2), two.max());
                proptest::prop_assert_eq!(all.recent(1), all.current());
                proptest::prop_assert_eq!(all.recent(5), all.max());
            }
        }
    }

    #[test]
    fn the_least_is_what_every_round_reached() {
        let mut f = RoundMax::<u32, 3>::new();
        f.update(5);
        f.next_round();
        f.update(9);
        f.update(2);
        // A round with no sample yet reached nothing.
        assert_eq!(f.least(), 0);
        f.next_round();
        f.update(7);
        assert_eq!(f.least(), 5);
        // The round that reached 5 is forgotten.
        f.next_round();
        f.update(8);
        assert_eq!(f.least(), 7);
    }

    #[test]
    fn forgetting_earlier_rounds_keeps_the_current_one() {
        let mut m: RoundMax<u64, 4> = RoundMax::new();
        m.update(9);
        m.next_round();
        m.update(3);
        assert_eq!((m.max(), m.current()), (9, 3));
        m.forget_earlier();
        assert_eq!((m.max(), m.current()), (3, 3));
        m.next_round();
        m.update(2);
        assert_eq!(m.max(), 3, "the kept round still counts its N rounds");
    }
}
