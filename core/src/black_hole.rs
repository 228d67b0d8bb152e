//! Black-hole detection: falling back to the smallest datagram when large ones stop getting
//! through (RFC 8899 §4.3 and §5.2, the "black hole detected" transition; spec/protocol.md
//! §8, Liveness).
//!
//! A path can lose every datagram above some size while passing smaller ones: a tunnel
//! whose MTU is below what both ends announced, a middlebox that drops fragments. Loss
//! recovery alone never gets out of that: every retransmission is as large as the packet
//! it replaces, while small ACKs keep the connection from going idle.
//!
//! Inputs: each ack-eliciting packet sent (its size, and its number if it was a black-hole
//! probe) and the packets an ACK acknowledged. Output: the
//! largest datagram to send ([`BlackHole::limit`]), and whether the next probe should be a
//! small one ([`BlackHole::wants_probe`]).
//!
//! The rule. Once two probe timeouts in a row went unanswered while large packets went
//! out, the second probe of each probe timeout is sent at the base size (1200 bytes). A
//! base-size probe acknowledged while none of the last [`LARGE_UNANSWERED`] or more large
//! packets sent has been is one confirmation; [`CONFIRMATIONS`] of them, with no
//! large packet acknowledged in between, and the connection sends base-size datagrams from
//! then on. Any large packet acknowledged clears the evidence, so random or burst loss that
//! also hits small packets never triggers it. The larger size is not tried again (RFC 8899
//! §5.1.2's raise timer is not implemented).

use crate::wire::MIN_DATAGRAM_SIZE;

/// Large packets sent, with none acknowledged since, before a small probe that gets
/// through counts as evidence of a black hole.
const LARGE_UNANSWERED: u32 = 3;

/// Small probes acknowledged (each after [`LARGE_UNANSWERED`] large packets, with no large
/// packet acknowledged between) before falling back.
const CONFIRMATIONS: u32 = 2;

/// Probe timeouts in a row without an answer before probes go small (RFC 9002 §7.6's
/// persistent-congestion span: the path is not just slow).
const PROBE_AFTER_PTOS: u32 = 2;

/// What a connection knows about large datagrams on its path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlackHole {
    /// Large packets sent since a large one was last acknowledged.
    large_unanswered: u32,
    /// Small probes acknowledged, each after `LARGE_UNANSWERED` large packets unanswered.
    confirmations: u32,
    /// The latest small probe's packet number.
    probe: Option<u64>,
    /// Fell back to the base size.
    detected: bool,
}

impl BlackHole {
    /// The largest datagram the path is trusted with: the base size once a black hole was
    /// detected, otherwise no limit.
    pub(crate) fn limit(&self) -> Option<usize> {
        self.detected.then_some(MIN_DATAGRAM_SIZE)
    }

    /// Whether a black hole was detected (the connection sends base-size datagrams).
    pub(crate) fn detected(&self) -> bool {
        self.detected
    }

    /// Whether a probe sent now, after `pto_count` unanswered probe timeouts, should be a
    /// base-size one, by a connection whose datagrams are `size` bytes.
    pub(crate) fn wants_probe(&self, pto_count: u32, size: usize) -> bool {
        !self.detected
            && size > MIN_DATAGRAM_SIZE
            && pto_count >= PROBE_AFTER_PTOS
            && self.large_unanswered >= LARGE_UNANSWERED
    }

    /// An ack-eliciting packet `number` of `size` bytes went out; `probe`: a base-size
    /// black-hole probe.
    pub(crate) fn on_sent(&mut self, number: u64, size: usize, probe: bool) {
        if size > MIN_DATAGRAM_SIZE {
            self.large_unanswered = self.large_unanswered.saturating_add(1);
        }
        if probe {
            self.probe = Some(number);
        }
    }

    /// An ACK acknowledged these packets (number, size). Returns true when it made the
    /// connection fall back to the base size.
    pub(crate) fn on_acked(&mut self, acked: impl Iterator<Item = (u64, usize)>) -> bool {
        let mut probe_acked = false;
        for (number, size) in acked {
            if size > MIN_DATAGRAM_SIZE {
                // Large datagrams get through: whatever was lost was lost to something else.
                self.large_unanswered = 0;
                self.confirmations = 0;
                self.probe = None;
                return false;
            }
            probe_acked |= self.probe == Some(number);
        }
        if !probe_acked || self.detected || self.large_unanswered < LARGE_UNANSWERED {
            return false;
        }
        self.probe = None;
        self.confirmations += 1;
        if self.confirmations >= CONFIRMATIONS {
            self.detected = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LARGE: usize = 1400;

    fn send_large(b: &mut BlackHole, n: u32) {
        for pn in 0..n {
            b.on_sent(u64::from(pn), LARGE, false);
        }
    }

    #[test]
    fn small_probes_answered_while_large_packets_are_not_make_it_fall_back() {
        let mut b = BlackHole::default();
        assert!(!b.wants_probe(2, LARGE), "no evidence yet");
        send_large(&mut b, 3);
        assert!(!b.wants_probe(1, LARGE), "one probe timeout is not enough");
        assert!(!b.wants_probe(2, MIN_DATAGRAM_SIZE), "nothing to fall back from");
        assert!(b.wants_probe(2, LARGE));
        b.on_sent(10, MIN_DATAGRAM_SIZE, true);
        // Another small packet acknowledged is no confirmation; the probe is.
        assert!(!b.on_acked([(9, 100)].into_iter()));
        assert!(!b.on_acked([(10, MIN_DATAGRAM_SIZE)].into_iter()));
        assert_eq!(b.limit(), None, "one confirmation is not enough");
        send_large(&mut b, 2);
        b.on_sent(20, MIN_DATAGRAM_SIZE, true);
        assert!(b.on_acked([(20, MIN_DATAGRAM_SIZE)].into_iter()));
        assert_eq!(b.limit(), Some(MIN_DATAGRAM_SIZE));
        assert!(b.detected());
        assert!(!b.wants_probe(5, LARGE), "nothing more to find");
    }

    #[test]
    fn a_large_packet_acknowledged_clears_the_evidence() {
        let mut b = BlackHole::default();
        send_large(&mut b, 3);
        b.on_sent(10, MIN_DATAGRAM_SIZE, true);
        assert!(!b.on_acked([(10, MIN_DATAGRAM_SIZE)].into_iter()));
        // Random loss: a large packet gets through after all.
        assert!(!b.on_acked([(11, LARGE)].into_iter()));
        assert!(!b.wants_probe(2, LARGE));
        send_large(&mut b, 3);
        b.on_sent(20, MIN_DATAGRAM_SIZE, true);
        assert!(!b.on_acked([(20, MIN_DATAGRAM_SIZE)].into_iter()));
        assert_eq!(b.limit(), None);
        // The probe and a large packet in one ACK: large ones pass.
        send_large(&mut b, 3);
        b.on_sent(30, MIN_DATAGRAM_SIZE, true);
        assert!(!b.on_acked([(30, MIN_DATAGRAM_SIZE), (31, LARGE)].into_iter()));
        assert_eq!(b.limit(), None);
    }
}
