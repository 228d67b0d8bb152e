//! Relay circuits (spec/protocol.md §12): two peers that cannot reach each other run their
//! own connection through a relay that forwards its datagrams, opaque. The handshake,
//! encryption and acknowledgements are the two ends'; the relay sees ciphertext, sizes and
//! timing, and can drop datagrams but not read, alter or forge one that the ends accept.
//! The ends each hold an authenticated connection to the relay, on which they ask for a
//! circuit (RELAY_* frames, module `connection::relay_link`); each circuit is named on the
//! wire by one random id per end (the relayed datagram's header, §12.3).
//!
//! This module holds the two roles' state, as owned parts of the endpoint (module
//! `endpoint::relaying` joins them to connections and datagrams):
//! - [`serve`]: a relay's reservations, circuits and limits ([`RelayConfig`]), and where a
//!   relayed datagram goes (its limits are `Config::relay`'s [`RelayConfig`]);
//! - [`forwards`]: a relay's queue of datagrams to forward, fair among circuits when full;
//! - [`ends`]: a peer's side: its requests, reservations, and the circuits it is an end of,
//!   each seen by the rest of the endpoint as a *circuit address*: an address in
//!   `100::/64` (RFC 6666's discard-only prefix, which no datagram comes from) whose low
//!   64 bits are the circuit id, so that admission, connections and their path logic
//!   work on relayed peers as on any other.
//!
//! Inputs: RELAY_* frames from connections, relayed datagrams, the application's requests.
//! Outputs: RELAY_* frames to send, datagrams to forward, and typed refusals.

use core::net::{IpAddr, Ipv6Addr, SocketAddr};

pub use crate::config::RelayConfig;
use crate::wire::CircuitId;

pub(crate) mod ends;
pub(crate) mod forwards;
pub(crate) mod serve;

/// Why a relay refused a request or ended a circuit (spec §12.2, the codes of RELAY_ANSWER
/// and RELAY_CLOSED).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayRefusal {
    /// The peer does not serve as a relay.
    #[error("the peer is not a relay")]
    NotARelay,
    /// The peer wanted holds no reservation at the relay.
    #[error("the peer wanted is not reachable through this relay")]
    NoReservation,
    /// The relay holds as many reservations as it allows.
    #[error("the relay holds as many reservations as it allows")]
    ReservationsFull,
    /// The relay, or this peer, has as many circuits as allowed.
    #[error("the relay has as many circuits as it allows")]
    CircuitsFull,
    /// The circuit forwarded as many bytes as the relay allows one.
    #[error("the circuit forwarded as many bytes as the relay allows")]
    ByteLimit,
    /// The circuit lived as long as the relay allows one.
    #[error("the circuit lived as long as the relay allows")]
    TimeLimit,
    /// The other end's connection to the relay ended.
    #[error("the other end left the relay")]
    PeerGone,
    /// The relay does not let this peer reserve.
    #[error("the relay does not let this peer reserve")]
    NotAllowed,
    /// A code this version does not know.
    #[error("relay code {0}")]
    Other(u64),
}

impl RelayRefusal {
    /// The code on the wire.
    pub fn code(self) -> u64 {
        match self {
            RelayRefusal::NotARelay => 1,
            RelayRefusal::NoReservation => 2,
            RelayRefusal::ReservationsFull => 3,
            RelayRefusal::CircuitsFull => 4,
            RelayRefusal::ByteLimit => 5,
            RelayRefusal::TimeLimit => 6,
            RelayRefusal::PeerGone => 7,
            RelayRefusal::NotAllowed => 8,
            RelayRefusal::Other(c) => c,
        }
    }

    /// The refusal a code names (0 is not one: it grants).
    pub fn from_code(code: u64) -> RelayRefusal {
        match code {
            1 => RelayRefusal::NotARelay,
            2 => RelayRefusal::NoReservation,
            3 => RelayRefusal::ReservationsFull,
            4 => RelayRefusal::CircuitsFull,
            5 => RelayRefusal::ByteLimit,
            6 => RelayRefusal::TimeLimit,
            7 => RelayRefusal::PeerGone,
            8 => RelayRefusal::NotAllowed,
            c => RelayRefusal::Other(c),
        }
    }
}

/// The first 64 bits of every circuit address: `100::/64`.
const CIRCUIT_PREFIX: [u8; 8] = [0x01, 0, 0, 0, 0, 0, 0, 0];

/// The port of every circuit address (any would do; 0 reads as "no port").
const CIRCUIT_PORT: u16 = 1;

/// The address the endpoint knows the peer at the far end of `circuit` by.
pub(crate) fn circuit_addr(circuit: CircuitId) -> SocketAddr {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&CIRCUIT_PREFIX);
    b[8..].copy_from_slice(&circuit.0);
    SocketAddr::new(IpAddr::V6(Ipv6Addr::from(b)), CIRCUIT_PORT)
}

/// Whether `ip` is a circuit address's.
pub(crate) fn is_circuit_ip(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.octets()[..8] == CIRCUIT_PREFIX)
}

/// The circuit a circuit address stands for; `None` for any other address.
pub(crate) fn circuit_of(addr: SocketAddr) -> Option<CircuitId> {
    let IpAddr::V6(ip) = addr.ip() else {
        return None;
    };
    let b = ip.octets();
    if b[..8] != CIRCUIT_PREFIX || addr.port() != CIRCUIT_PORT {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&b[8..]);
    Some(CircuitId(id))
}

/// The circuit id no relay gives: a connection asked for through a relay waits at its
/// address until the circuit opens.
pub(crate) const PENDING: CircuitId = CircuitId([0; 8]);

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn a_circuit_address_stands_for_its_circuit_and_nothing_else_does() {
        let c = CircuitId([1, 2, 3, 4, 5, 6, 7, 8]);
        let a = circuit_addr(c);
        assert_eq!(a.to_string(), "[100::102:304:506:708]:1");
        assert_eq!(circuit_of(a), Some(c));
        for other in ["[100::102:304:506:708]:2", "[101::1]:1", "192.0.2.1:1"] {
            assert_eq!(circuit_of(other.parse().unwrap()), None, "{other}");
        }
    }

    #[test]
    fn every_refusal_round_trips_through_its_code() {
        for r in [
            RelayRefusal::NotARelay,
            RelayRefusal::NoReservation,
            RelayRefusal::ReservationsFull,
            RelayRefusal::CircuitsFull,
            RelayRefusal::ByteLimit,
            RelayRefusal::TimeLimit,
            RelayRefusal::PeerGone,
            RelayRefusal::NotAllowed,
            RelayRefusal::Other(99),
        ] {
            assert_eq!(RelayRefusal::from_code(r.code()), r);
        }
    }
}
