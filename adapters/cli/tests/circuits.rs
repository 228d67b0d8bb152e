//! The circuit relay as a user runs it (spec §12): `weir relay --serve`, `weir recv --via`
//! and `weir send --to KEY --via`, on 127.0.0.1 and, on Linux, with each peer behind a
//! userspace NAT in a network namespace of its own (weir-sim's `host_nat`; needs root, see
//! tests/README.md), where the sender says which path the transfer took.

mod common;

use common::{fails_with, make_file, start_receiver, stderr_of, stdout_of, weir, Background};

/// A receiver reachable by key through a circuit relay (`weir recv --via`, `weir relay
/// --serve`) gets a file sent to its key (`weir send --to KEY --via RELAY`), byte-exact; the
/// sender says which path it took (on one host, the hole punch opens a direct path); a key
/// nobody reserved is refused by the relay, with its reason and the refusal exit code.
#[test]
fn a_file_reaches_a_receiver_by_its_key_through_a_circuit_relay() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "via.bin", 300_000);
    let mut relay = Background::start(&["relay", "--serve", "--listen", "127.0.0.1:0"]);
    let (relay_addr, _) = relay.address_and_key();
    let extra = ["--once", "--via", &relay_addr];
    let (out_dir, mut recv) = start_receiver(dir.path(), "127.0.0.1:0", &extra);
    let (_, key) = recv.address_and_key();
    let reachable = recv.line();
    assert!(
        reachable.contains(&format!("reachable through relay {relay_addr} as {key}")),
        "{reachable}"
    );
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &key, "--via", &relay_addr])
        .output()
        .unwrap();
    let (out, err) = (stdout_of(&sent), stderr_of(&sent));
    assert!(sent.status.success(), "{err}");
    assert!(out.contains(&format!("to {key} via {relay_addr}")), "{out}");
    assert!(out.contains("; path "), "{out}");
    assert!(err.contains("path: "), "{err}");
    let (code, _, recv_err) = recv.finish();
    assert_eq!(code, Some(0), "{recv_err}");
    assert_eq!(
        std::fs::read(out_dir.join("via.bin")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    let nobody = "ab".repeat(32);
    fails_with(
        &[
            "send",
            file.to_str().unwrap(),
            "--to",
            &nobody,
            "--via",
            &relay_addr,
        ],
        7,
        "refused: the peer wanted is not reachable through this relay",
    );
    fails_with(
        &[
            "send",
            file.to_str().unwrap(),
            "--to",
            "not-a-key",
            "--via",
            &relay_addr,
        ],
        3,
        "with --via, --to is the receiver's public key",
    );
    drop(relay);
}

#[cfg(target_os = "linux")]
mod behind_nats {
    use super::*;
    use weir_sim::host_nat::{HostNat, Internet};
    use weir_sim::netns::Netns;
    use weir_sim::{Dependency, NatConfig};

    /// `weir args` in the background, in network namespace `ns`.
    fn start_in(ns: &Netns, args: &[&str]) -> Background {
        ns.run(|| Background::start(args))
            .expect("a thread in the namespace")
    }

    /// A relay on the internet, a receiver behind one NAT reserved there (`recv --via`), and
    /// a sender behind another sending a file to the receiver's key (`send --to --via`),
    /// both NATs of `kind`: the file arrives byte-exact, and the sender's stderr and summary
    /// line, which it returns, say the paths it took.
    fn send_across(kind: (Dependency, Dependency)) -> (String, String, [HostNat; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let file = make_file(dir.path(), "nat.bin", 8 << 20);
        let internet = Internet::new().expect("network namespaces (run as root)");
        let relay_ip = internet.add_host().unwrap();
        let nats =
            [1u8, 2].map(|n| HostNat::start(&internet, n, NatConfig::new(kind.0, kind.1), n.into()).unwrap());
        let listen = format!("{relay_ip}:0");
        let mut relay = start_in(internet.namespace(), &["relay", "--serve", "--listen", &listen]);
        let (relay_addr, _) = relay.address_and_key();
        let listen = format!("{}:0", nats[1].private_ip());
        let extra = ["--once", "--via", &relay_addr];
        let (out_dir, mut recv) = nats[1]
            .host()
            .run(|| start_receiver(dir.path(), &listen, &extra))
            .expect("a thread in the namespace");
        let (_, key) = recv.address_and_key();
        assert!(recv.line().contains("reachable through relay"));
        let sent = nats[0]
            .host()
            .run(|| {
                weir()
                    .args(["send", file.to_str().unwrap(), "--to", &key, "--via", &relay_addr])
                    .output()
            })
            .unwrap()
            .unwrap();
        let (out, err) = (stdout_of(&sent), stderr_of(&sent));
        assert!(sent.status.success(), "{err}");
        let (code, _, recv_err) = recv.finish();
        assert_eq!(code, Some(0), "{recv_err}");
        assert_eq!(
            std::fs::read(out_dir.join("nat.bin")).unwrap(),
            std::fs::read(&file).unwrap()
        );
        drop(relay);
        (out, err, nats)
    }

    /// Behind two address-restricted cone NATs the transfer starts through the relay and
    /// moves to the direct path the punch opened, the receiver's NAT's public address: the
    /// sender says so as it happens (stderr) and in its summary, with the move counted.
    #[test]
    fn a_sender_behind_a_nat_says_it_moved_to_the_direct_path() {
        let kind = (Dependency::EndpointIndependent, Dependency::AddressDependent);
        let (out, err, nats) = send_across(kind);
        let direct = format!("direct to {}:", nats[1].public_ip());
        assert!(err.contains(&format!("path: {direct}")), "{err}");
        assert!(out.contains(&format!("; path {direct}")), "{out}");
        assert!(out.contains("(moves: 1)"), "{out}");
    }

    /// Behind two symmetric NATs no punch gets through: the file goes through the relay the
    /// whole way, and the sender says so.
    #[test]
    fn a_sender_behind_a_symmetric_nat_stays_relayed_and_says_so() {
        let kind = (
            Dependency::AddressAndPortDependent,
            Dependency::AddressAndPortDependent,
        );
        let (out, err, _) = send_across(kind);
        assert!(err.contains("path: relayed through 198.51.100.1:"), "{err}");
        assert!(!err.contains("path: direct"), "{err}");
        assert!(out.contains("; path relayed through 198.51.100.1:"), "{out}");
        assert!(out.contains("(moves: 0)"), "{out}");
    }
}
