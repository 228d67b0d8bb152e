//! Which packet numbers a sender leaves out (RFC 9000 §21.4; spec §8): now and then, at
//! gaps drawn under a key the peer does not know and growing from 2^4 to 2^16 packets, so
//! that a peer acknowledging a number it cannot have received (an optimistic ACK) is caught.
//! An owned part of `Recovery`, which asks it whether a number is the next to leave out
//! (`next`), tells it when one was (`skip`), and asks whether an ACK names one (`any_in`).

use crate::crypto::keys::keyed_u64;
use crate::wire::Ack;

/// The first number left out comes 2^4 to 2^5 packets in; each gap after is drawn from a
/// range twice as high, up to 2^16 to 2^17 packets. Early skips catch an optimistic ACKer
/// while its congestion window is still small; later ones are rare, as each costs the peer
/// an ACK range and an immediate ACK.
pub(super) const FIRST_SKIP_EXPONENT: u8 = 4;
pub(super) const LAST_SKIP_EXPONENT: u8 = 16;
/// Numbers left out that are remembered: an ACK of an older one is not noticed.
pub(super) const REMEMBERED_SKIPS: usize = 8;

/// Which packet numbers are left out (RFC 9000 §21.4).
#[derive(Debug)]
pub(super) struct Skips {
    /// The key gaps are drawn under (`keyed_u64`), so that the gaps an observer sees do not
    /// tell the next one (spec §8), and how many were drawn.
    seed: u64,
    drawn: u32,
    /// The next number to leave out.
    pub(super) next: u64,
    /// The next gap is drawn from `2^exponent..2^(exponent + 1)`.
    exponent: u8,
    /// The latest numbers left out, oldest first: `recent[..remembered]`, each by its low
    /// 32 bits. All lie below `next` and within `REMEMBERED_SKIPS` gaps of it (at most 2^20
    /// numbers), so the low bits name each exactly (`full`); every connection keeps these,
    /// and this way they cost 32 bytes instead of 72.
    recent: [u32; REMEMBERED_SKIPS],
    remembered: u8,
}

impl Skips {
    pub(super) fn new(seed: u64) -> Self {
        let mut skips = Skips {
            seed,
            drawn: 0,
            next: 0,
            exponent: FIRST_SKIP_EXPONENT,
            recent: [0; REMEMBERED_SKIPS],
            remembered: 0,
        };
        skips.next = skips.gap();
        skips
    }

    fn gap(&mut self) -> u64 {
        let low = 1u64 << self.exponent;
        self.exponent = (self.exponent + 1).min(LAST_SKIP_EXPONENT);
        self.drawn += 1;
        low + keyed_u64(self.seed, b"weir skips", self.drawn) % low
    }

    /// Leaves out `pn` (at or past `self.next`).
    pub(super) fn skip(&mut self, pn: u64) {
        let n = usize::from(self.remembered);
        if n == REMEMBERED_SKIPS {
            self.recent.copy_within(1.., 0);
            self.recent[n - 1] = pn as u32;
        } else {
            self.recent[n] = pn as u32;
            self.remembered += 1;
        }
        self.next = pn.saturating_add(self.gap());
    }

    /// The numbers left out that are remembered, oldest first.
    pub(super) fn recent(&self) -> impl Iterator<Item = u64> + '_ {
        // The distance back from `next`, in the low 32 bits, is the whole distance.
        let full = |low: u32| self.next - u64::from((self.next as u32).wrapping_sub(low));
        self.recent[..usize::from(self.remembered)]
            .iter()
            .map(move |&low| full(low))
    }

    pub(super) fn any_in(&self, ack: &Ack) -> bool {
        // The ranges once, each against the few numbers remembered: a walk of the ranges
        // decodes them from the frame's bytes, and one for each number remembered (with
        // `Received::on_peer_ack`'s one for each packet watched) was 1.25% of an in-memory
        // round trip's instructions (`transfer_count aes256gcm round-trips=N`).
        self.remembered > 0
            && ack
                .ranges
                .iter()
                .any(|r| self.recent().any(|pn| r.smallest <= pn && pn <= r.largest))
    }
}
