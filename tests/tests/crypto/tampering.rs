//! Tampering on the path: flipped, replayed and rewritten datagrams; key updates under loss;
//! version 1; determinism.

use super::*;

/// Flips one bit (anywhere: header, frames, tag) of one datagram in `every` on the path,
/// chosen by a seeded generator; for handshake packets (which carry a CRC) it also fixes the
/// CRC, so that only the Noise messages can tell.
fn tamperer(every: u64, seed: u64) -> impl FnMut(&mut Vec<u8>) -> bool {
    let mut state = seed | 1;
    move |d: &mut Vec<u8>| {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % every == 0 {
            let bit = (state >> 8) as usize % (d.len() * 8);
            d[bit / 8] ^= 1 << (bit % 8);
            reseal(d, None);
        }
        true
    }
}

#[test]
fn a_tampered_datagram_anywhere_is_dropped_and_the_transfer_completes() {
    for every in [4, 10] {
        let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
        sim.intercept(c, s, tamperer(every, 1));
        sim.intercept(s, c, tamperer(every, 2));
        let conn = sim.connect(c, s);
        let (delivered, seen) = transfer(&mut sim, c, conn, MIB, Duration::from_secs(120));
        assert_eq!(delivered, MIB, "every {every}");
        assert!(
            seen.closed(c).is_empty() && seen.closed(s).is_empty(),
            "{:?}",
            seen.events
        );
        let dropped = |n: NodeId| {
            let st = sim.endpoint_ref(n).stats();
            st.dropped_unauthenticated + st.dropped_malformed
        };
        assert!(sim.stats().intercepted > 100, "{:?}", sim.stats());
        // The client receives acknowledgements only: one per burst the pacer lets go, so
        // fewer datagrams to tamper with on its side (7 at one in ten).
        assert!(dropped(s) > 50 && dropped(c) > 5, "{} {}", dropped(s), dropped(c));
        assert_eq!(
            sim.endpoint_ref(s).stats().violations,
            0,
            "tampering is never the peer's word"
        );
        // The connection counts the sealed datagrams whose tag failed, among the endpoint's.
        let server_conn = sim.endpoint_ref(s).connections().next().unwrap();
        let counted = sim
            .endpoint_ref(s)
            .connection_stats(server_conn)
            .unwrap()
            .unauthenticated;
        let dropped = sim.endpoint_ref(s).stats().dropped_unauthenticated;
        assert!(counted > 0 && counted <= dropped, "{counted} of {dropped}");
    }
}

#[test]
fn replayed_datagrams_change_nothing() {
    let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
    sim.tap(c, s);
    let conn = sim.connect(c, s);
    let (delivered, _) = transfer(&mut sim, c, conn, MIB, Duration::from_secs(30));
    assert_eq!(delivered, MIB);
    let captured = sim.take_tapped(c, s);
    assert!(captured.len() > 500);
    let before_conn = sim.endpoint_ref(s).connections().next().unwrap();
    let before = sim.endpoint_ref(s).connection_stats(before_conn).unwrap();
    let client_addr = sim.addr(c);
    let elsewhere = "10.9.9.9:9".parse().unwrap();
    for d in &captured {
        sim.inject(client_addr, s, d.clone());
        sim.inject(elsewhere, s, d.clone());
    }
    let seen = watch(&mut sim, 1);
    let server = sim.endpoint_ref(s);
    let conn_s = before_conn;
    let after = server.connection_stats(conn_s).unwrap();
    // Nothing new reached the application, and the connection stayed where it was.
    assert!(
        seen.events.iter().all(|(_, e)| !matches!(
            e,
            Event::StreamOpened { .. } | Event::StreamReadable { .. } | Event::Connected { .. }
        )),
        "{:?}",
        seen.events
    );
    assert_eq!(server.remote_address(conn_s), Some(client_addr));
    assert!(after.duplicates_received >= before.duplicates_received + 500);
    // The HELLO's copy from elsewhere is a new attempt the replayer cannot finish: it holds
    // a half-open connection until the handshake timeout, or the idle timeout after its last
    // answer (sent within the handshake timeout) if later (spec §8, Handshake), and never
    // reaches the application.
    let defaults = Config::default();
    let half_open = defaults.handshake_timeout + defaults.idle_timeout + Duration::from_secs(1);
    sim.run_for(half_open, |_, _, e| {
        assert!(!matches!(e, Event::Connected { .. }), "{e:?}")
    });
    assert_eq!(sim.endpoint_ref(s).connection_count(), 1);
    assert!(seen.closed(s).is_empty());
}

/// What a man in the middle changes: a name, a byte offset, how.
type Rewrite = (&'static str, usize, fn(u8) -> u8);

/// Rewrites byte `offset` of every NOISE_HELLO (a long-header version 2 datagram whose
/// first frame is type 0x24) with `f`, then fixes its CRC: a man in the middle on the path.
pub(super) fn rewrite_hello(offset: usize, f: fn(u8) -> u8) -> impl FnMut(&mut Vec<u8>) -> bool {
    move |d: &mut Vec<u8>| {
        // Header: version, flags, two connection ids, a 1-byte packet number, timestamp.
        if d.len() >= 1200 && d[0..2] == [0, 2] && d[2] & 0x80 != 0 && d[24] == 0x24 {
            d[offset] = f(d[offset]);
            reseal(d, None);
        }
        true
    }
}

#[test]
fn a_man_in_the_middle_rewriting_the_capabilities_or_versions_fails_the_handshake() {
    // NOISE_HELLO body: versions (2 x u16) at 25..29, capabilities at 29..31 (all seven, a
    // 2-byte varint: 0x407f); the rewrite clears PIPING in its low byte.
    let cases: [Rewrite; 3] = [
        ("capabilities", 30, |b| b & !0x2),
        ("minimum version", 26, |_| 2),
        ("maximum version", 28, |_| 3),
    ];
    for (what, offset, f) in cases {
        for known in [false, true] {
            let client = Config {
                versions: VersionRange::ENCRYPTED_OR_PLAINTEXT,
                ..config(1)
            };
            let server = Config {
                versions: VersionRange::new(1, 3).unwrap(),
                ..config(2)
            };
            let (mut sim, c, s) = pair(client, server, LinkConfig::default());
            sim.intercept(c, s, rewrite_hello(offset, f));
            start(&mut sim, c, s, known);
            let seen = watch(&mut sim, 12);
            assert!(
                seen.connected(c).is_empty(),
                "{what}, IK {known}: {:?}",
                seen.events
            );
            assert!(seen.connected(s).is_empty(), "{what}, IK {known}");
            let failure = seen.failed(c);
            // XX: the server answers, but its answer does not open under the client's view
            // of the handshake. IK: the server cannot open the client's first message.
            let expected = if known {
                matches!(failure, Some(HandshakeError::ServerKeyMismatch { .. }))
            } else {
                matches!(failure, Some(HandshakeError::AuthenticationFailed { failures }) if failures > 0)
            };
            assert!(expected, "{what}, IK {known}: {failure:?}");
            assert!(sim.stats().intercepted > 0);
        }
    }
    // The same path without the rewrite connects (the test's offsets are right).
    let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
    sim.intercept(c, s, rewrite_hello(30, |b| b));
    let conn = sim.connect(c, s);
    assert_eq!(transfer(&mut sim, c, conn, 1000, Duration::from_secs(5)).0, 1000);
}

#[test]
fn keys_update_many_times_under_loss_and_reordering() {
    let cfg = |n| Config {
        key_update_interval: 50,
        ..config(n)
    };
    let link = LinkConfig {
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        loss: 0.05,
        reorder: 0.1,
        duplicate: 0.02,
        ..LinkConfig::default()
    };
    let (mut sim, c, s) = pair(cfg(1), cfg(2), link);
    let conn = sim.connect(c, s);
    let (delivered, seen) = transfer(&mut sim, c, conn, 4 * MIB, Duration::from_secs(120));
    assert_eq!(delivered, 4 * MIB);
    assert!(seen.closed(c).is_empty() && seen.closed(s).is_empty());
    let client = sim.endpoint_ref(c).connection_stats(conn).unwrap();
    let server_conn = sim.endpoint_ref(s).connections().next().unwrap();
    let server = sim.endpoint_ref(s).connection_stats(server_conn).unwrap();
    println!("client {client:?}\nserver {server:?}");
    // ~4,500 datagrams from the client and ~3,000 from the server (whose ACKs wait for up to
    // ten packets once the rate levels) at one update per 50 sealed, but a new phase waits
    // until the peer answered the last: 15 updates here (17 when every second packet was
    // acknowledged; 2 MiB gave 11, too near the bound), each followed by the peer although
    // packets of the old phase keep arriving late.
    assert!(client.key_updates_sent >= 12, "{client:?}");
    assert!(server.key_updates_sent >= 5, "{server:?}");
    assert!(
        server.key_updates_received + 1 >= client.key_updates_sent,
        "{server:?}"
    );
    assert!(
        client.key_updates_received + 1 >= server.key_updates_sent,
        "{client:?}"
    );
    // Nothing failed to open: every packet found its key.
    assert_eq!(server.unauthenticated, 0, "{server:?}");
    assert_eq!(client.unauthenticated, 0, "{client:?}");
}

#[test]
fn version_1_peers_still_talk_when_both_allow_it() {
    let plain = Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    };
    let (mut sim, c, s) = pair(plain.clone(), plain, LinkConfig::default());
    let conn = sim.connect(c, s);
    let (delivered, seen) = transfer(&mut sim, c, conn, MIB, Duration::from_secs(30));
    assert_eq!(delivered, MIB);
    let Event::Connected { negotiated, peer, .. } = seen.connected(c)[0] else {
        unreachable!()
    };
    assert_eq!((negotiated.version, negotiated.cipher, *peer), (1, None, None));
}

#[test]
fn the_same_seeds_give_the_same_encrypted_run() {
    let run = || {
        let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
        sim.tap(c, s);
        let conn = sim.connect(c, s);
        transfer(&mut sim, c, conn, 100_000, Duration::from_secs(10));
        sim.take_tapped(c, s)
    };
    let (a, b) = (run(), run());
    assert!(a.len() > 50);
    assert_eq!(a, b);
}
