//! Address discovery on one connection (spec/protocol.md §4.18, capability
//! ADDRESS_DISCOVERY; the idea of QUIC's address-discovery extension): each side tells the
//! other the address its packets arrive from, once the handshake is done and again whenever
//! that address changes (a NAT rebinding, a migration). Behind a NAT, that address is the
//! endpoint's public (reflexive) one, which it has no other way to learn.
//!
//! An owned part of the connection. Inputs: the handshake's end and the peer's moves (to
//! tell), OBSERVED_ADDRESS frames (to hear). Outputs: the sequence number of the report to
//! send (its address is the connection's current `remote` when it leaves, so a report lost
//! and sent again carries the newest), and whether a frame heard is news. A report of
//! another IP address than the last is how an endpoint learns that it moved itself (its
//! network changed under it): a new path, on which congestion control and the RTT estimate
//! start over (spec §8, A new path).

use super::*;
use crate::wire::ObservedAddress;

/// What we told the peer, and what it told us, of the addresses each sees the other at.
#[derive(Debug, Default)]
pub(super) struct AddressReport {
    /// The sequence number of our latest report; 0 before the first.
    told: u64,
    /// The peer's report with the highest sequence number.
    heard: Option<ObservedAddress>,
}

impl AddressReport {
    /// The peer's address is new to the peer's reports (the first, or it moved): the next
    /// report gets a higher sequence number.
    pub(super) fn renew(&mut self) {
        self.told += 1;
    }

    /// The sequence number of our latest report.
    pub(super) fn told(&self) -> u64 {
        self.told
    }

    /// The peer's report `o`: whether it is newer than any before (a reordered older one, or
    /// a copy, is not) and says something new.
    pub(super) fn hear(&mut self, o: ObservedAddress) -> bool {
        match self.heard {
            Some(h) if h.sequence >= o.sequence => false,
            Some(h) => {
                self.heard = Some(o);
                h.address != o.address
            }
            None => {
                self.heard = Some(o);
                true
            }
        }
    }

    /// The address the peer last said it sees us at.
    pub(super) fn observed(&self) -> Option<SocketAddr> {
        self.heard.map(|h| h.address)
    }
}

impl Connection {
    /// Whether both sides report addresses on this connection.
    fn address_discovery(&self) -> bool {
        self.negotiated.is_some_and(|n| n.address_discovery())
    }

    /// The peer's address is new to it (the handshake ended, or the peer moved): tell it
    /// where we see it.
    pub(super) fn report_address(&mut self) {
        if self.address_discovery() {
            self.address_report.renew();
            self.control.push(Control::ObservedAddress);
        }
    }

    /// The peer's OBSERVED_ADDRESS: kept if newer than what it said before, and told to the
    /// application if it says something new.
    pub(super) fn on_observed_address(
        &mut self,
        now: Instant,
        config: &Config,
        o: ObservedAddress,
    ) -> Result<(), ViolationKind> {
        if !self.address_discovery() {
            // Not negotiated: a frame type this connection does not know (spec §4.1).
            return Err(ViolationKind::Malformed {
                error: DecodeError::UnknownFrameType(crate::wire::frame_types::OBSERVED_ADDRESS),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        let before = self.address_report.observed();
        if self.address_report.hear(o) {
            // We moved to another IP address: a new path from the next packet on (those
            // sent since the move are counted with the old path's: they say nothing of
            // either for certain).
            if before.is_some_and(|b| Move::between(b, o.address) == Move::Address) {
                self.new_path(config, self.recovery.next_pn());
                self.search_new_path_size(now);
            }
            self.events.push_back(Event::AddressObserved {
                conn: self.handle,
                address: o.address,
            });
        }
        Ok(())
    }

    /// The address the peer last said it sees us at (capability ADDRESS_DISCOVERY).
    pub(crate) fn observed_address(&self) -> Option<SocketAddr> {
        self.address_report.observed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sequence: u64, address: &str) -> ObservedAddress {
        ObservedAddress {
            sequence,
            address: address.parse().unwrap(),
        }
    }

    #[test]
    fn only_a_newer_report_replaces_the_last_and_only_a_new_address_is_news() {
        let mut r = AddressReport::default();
        assert!(r.hear(report(1, "192.0.2.1:1000")));
        // Reordered: an older report, or a copy, changes nothing.
        assert!(!r.hear(report(1, "192.0.2.9:9")));
        assert!(!r.hear(report(0, "192.0.2.9:9")));
        assert_eq!(r.observed(), Some("192.0.2.1:1000".parse().unwrap()));
        // A newer report of the same address is kept, and is no news.
        assert!(!r.hear(report(2, "192.0.2.1:1000")));
        assert!(r.hear(report(5, "192.0.2.1:2000")));
        assert!(!r.hear(report(4, "192.0.2.1:1000")));
        assert_eq!(r.observed(), Some("192.0.2.1:2000".parse().unwrap()));
    }

    #[test]
    fn each_renewal_numbers_the_report_higher() {
        let mut r = AddressReport::default();
        assert_eq!(r.told(), 0);
        r.renew();
        assert_eq!(r.told(), 1);
        r.renew();
        assert_eq!(r.told(), 2);
    }
}
