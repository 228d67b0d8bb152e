//! weir's multiaddresses (spec/protocol.md §8, libp2p binding): `/ip4/<a>/udp/<port>` or
//! `/ip6/<a>/udp/<port>`, optionally ending in `/p2p/<peer id>`. weir has no protocol code
//! of its own in the multiaddr table, so its addresses are plain UDP ones; a swarm that
//! also runs QUIC tells them apart by QUIC's `/quic-v1` suffix.

use std::net::{IpAddr, SocketAddr};

use libp2p_core::multiaddr::{Multiaddr, Protocol};
use libp2p_identity::PeerId;

/// The socket address of `addr` and the peer id it names, if any; `None` if it is not one of
/// weir's.
pub(crate) fn parse(addr: &Multiaddr) -> Option<(SocketAddr, Option<PeerId>)> {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Udp(port) = parts.next()? else {
        return None;
    };
    let peer = match parts.next() {
        None => None,
        Some(Protocol::P2p(peer)) => Some(peer),
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((SocketAddr::new(ip, port), peer))
}

/// The multiaddress of a socket address.
pub(crate) fn to_multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(addr.ip().into())
        .with(Protocol::Udp(addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_addresses_with_and_without_a_peer_id_parse() {
        let peer = PeerId::random();
        let v4: Multiaddr = "/ip4/127.0.0.1/udp/4433".parse().unwrap();
        assert_eq!(parse(&v4), Some(("127.0.0.1:4433".parse().unwrap(), None)));
        let v6 = "/ip6/::1/udp/9"
            .parse::<Multiaddr>()
            .unwrap()
            .with(Protocol::P2p(peer));
        assert_eq!(parse(&v6), Some(("[::1]:9".parse().unwrap(), Some(peer))));
        assert_eq!(to_multiaddr("127.0.0.1:4433".parse().unwrap()), v4);
    }

    #[test]
    fn other_transports_addresses_are_not_weirs() {
        for other in [
            "/ip4/127.0.0.1/tcp/4433",
            "/ip4/127.0.0.1/udp/4433/quic-v1",
            "/dns4/example.com/udp/4433",
            "/ip4/127.0.0.1",
            "/memory/5",
        ] {
            assert_eq!(parse(&other.parse().unwrap()), None, "{other}");
        }
    }
}
