//! The most of a figure over the last `N` rounds (draft-ietf-ccwg-bbr §4.5.2.2's windowed
//! max filter, kept by round count): BBR's bandwidth estimate and its ACK aggregation
//! estimate are each one.
//!
//! Input: a new round begins, a sample in the current round. Output: the largest sample of
//! the current round and the `N - 1` before it. A slot per round, reused as rounds pass: no
//! allocation, `N` numbers per connection.

/// The most of a figure over the last `N` rounds (module docs).
#[derive(Clone, Debug)]
pub(super) struct RoundMax<T, const N: usize> {
    /// Rounds begun so far: the current one's slot is `round % N`.
    round: u64,
    slots: [T; N],
}

impl<T: Copy + Default + Ord, const N: usize> RoundMax<T, N> {
    pub(super) fn new() -> Self {
        RoundMax {
            round: 0,
            slots: [T::default(); N],
        }
    }

    fn slot(&mut self) -> &mut T {
        // `N` is at most a few tens: the remainder fits any usize.
        &mut self.slots[(self.round % N as u64) as usize]
    }

    /// A new round: its slot starts empty, and the round `N` ago is forgotten.
    pub(super) fn next_round(&mut self) {
        self.round += 1;
        *self.slot() = T::default();
    }

    /// A sample of the current round.
    pub(super) fn update(&mut self, sample: T) {
        let slot = self.slot();
        *slot = (*slot).max(sample);
    }

    /// The largest sample of the last `N` rounds (the default if none).
    pub(super) fn max(&self) -> T {
        self.slots.iter().copied().max().unwrap_or_default()
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
}
