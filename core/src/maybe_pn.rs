//! A packet number or none, in 8 bytes: `Option<u64>` takes 16, and every connection
//! keeps several (the largest acknowledged, a path's probe, the black-hole probe). Packet
//! numbers stay below 2^62 (spec §3.1), so the number plus one is never zero and fits.

use core::num::NonZeroU64;

/// A packet number, or none (module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MaybePn(Option<NonZeroU64>);

impl MaybePn {
    /// No packet number.
    pub(crate) const NONE: MaybePn = MaybePn(None);

    /// Packet number `pn` (saturating at the last number `u64` can hold plus one: beyond
    /// any packet number).
    pub(crate) fn some(pn: u64) -> MaybePn {
        MaybePn(NonZeroU64::new(pn.saturating_add(1)))
    }

    /// The packet number, if any.
    pub(crate) fn get(self) -> Option<u64> {
        self.0.map(|n| n.get() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_eight_bytes_and_keeps_every_number_including_zero() {
        assert_eq!(core::mem::size_of::<MaybePn>(), 8);
        assert_eq!(MaybePn::NONE.get(), None);
        assert_eq!(MaybePn::default(), MaybePn::NONE);
        for pn in [0, 1, 41, (1 << 62) - 1] {
            assert_eq!(MaybePn::some(pn).get(), Some(pn));
        }
    }
}
