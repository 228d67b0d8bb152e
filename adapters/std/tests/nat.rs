//! Hole punching with blocking calls over the real network stack, through userspace NATs
//! (weir-sim's `host_nat`): each peer in a network namespace of its own behind a NAT, the
//! relay on the "internet" namespace; weir-std runs unchanged, on kernel sockets there.
//!
//! Needs root (network namespaces and TUN devices); see tests/README.md.
#![cfg(target_os = "linux")]

use std::net::{IpAddr, SocketAddr};
use std::thread;

use bytes::Bytes;
mod common;

use common::{config, with_timeout};
use weir_sim::host_nat::{HostNat, Internet};
use weir_sim::netns::Netns;
use weir_sim::{Dependency, NatConfig};
use weir_std::{Config, Endpoint, Path, RelayConfig};

/// An endpoint bound in `ns` at `ip` whose every blocking call gives up after a minute.
fn bind_in(ns: &Netns, ip: IpAddr, config: Config) -> Endpoint {
    let ep = ns
        .run(move || Endpoint::bind(SocketAddr::new(ip, 0), config))
        .expect("a thread in the namespace")
        .expect("bound");
    with_timeout(ep)
}

/// Both peers behind address-restricted cone NATs: B reserves at the relay, A reaches it by
/// key through the relay, the punch moves the connection to B's NAT's public address, and
/// every echoed message comes back byte-exact whichever path it took.
#[test]
fn peers_behind_nats_punch_through_with_blocking_calls() {
    let internet = Internet::new().expect("network namespaces (run as root)");
    let relay_ip = internet.add_host().unwrap();
    let kind = NatConfig::new(Dependency::EndpointIndependent, Dependency::AddressDependent);
    let [nat_a, nat_b] = [1u8, 2].map(|n| HostNat::start(&internet, n, kind, n.into()).unwrap());
    let relay_config = Config {
        relay: Some(RelayConfig::default()),
        ..config()
    };
    let relay = bind_in(internet.namespace(), relay_ip, relay_config);
    let a = bind_in(nat_a.host(), nat_a.private_ip(), config());
    let b = bind_in(nat_b.host(), nat_b.private_ip(), config());
    let b_key = b.public_key();
    let b_r = b.connect(relay.local_addr()).unwrap();
    b.reserve(&b_r).unwrap();
    let echo = thread::spawn(move || {
        let c = b.accept().unwrap();
        while let Ok(m) = c.recv_message() {
            if c.send_message(m).is_err() {
                break;
            }
        }
        (b, b_r)
    });
    let a_r = a.connect(relay.local_addr()).unwrap();
    let conn = a.connect_via(&a_r, b_key).unwrap();
    assert_eq!(conn.peer_key(), Some(b_key));
    let mut paths = Vec::new();
    for i in 0..400u32 {
        let msg: Bytes = (0..3000u32)
            .map(|j| (i * 3 + j) as u8)
            .collect::<Vec<u8>>()
            .into();
        conn.send_message(msg.clone()).unwrap();
        assert_eq!(conn.recv_message().unwrap(), msg, "message {i}");
        paths.push(conn.path());
        if matches!(conn.path(), Some(Path::Direct(_))) {
            break;
        }
    }
    let b_public = nat_b.public_ip();
    assert!(
        matches!(paths.last(), Some(Some(Path::Direct(at))) if at.ip() == b_public),
        "{paths:?}"
    );
    // The move is told even to a call made after it: this one returns at once.
    assert_eq!(conn.path_changed().unwrap(), conn.path().unwrap());
    // One more message, on the direct path: A may have switched on B's first direct
    // datagram before sending one of its own through B's NAT (under load the loop above
    // ended there, and B's NAT had let in nothing from A yet).
    let last = Bytes::from_static(b"straight through");
    conn.send_message(last.clone()).unwrap();
    assert_eq!(conn.recv_message().unwrap(), last);
    let from_a = nat_b.stats().let_in_from.get(&nat_a.public_ip()).copied();
    assert!(
        from_a.is_some_and(|n| n > 0),
        "B's NAT let in nothing straight from A's"
    );
    conn.close(0, "done").unwrap();
    drop(echo.join().unwrap());
}
