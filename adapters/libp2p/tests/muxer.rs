//! The transport and muxer without a swarm, over 127.0.0.1 (spec/protocol.md §8, libp2p
//! binding): identities, substream pairing, close and reset, and what is refused.

mod common;

use std::time::Duration;

use common::{config, connected, dial_opts, drive, listening, next_arrival, next_event, Arrival};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::core::transport::{ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport as _;
use libp2p::identity::{Keypair, PeerId};
use libp2p::multiaddr::Protocol;
use weir_libp2p::{Error, IdentityError, Transport, IDENTITY_REFUSED};
use weir_tokio::{CloseReason, Endpoint};

/// Bounds a wait that would otherwise hang a failing test.
const BOUND: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"))
}

#[tokio::test]
async fn each_side_proves_the_peer_id_of_its_keypair() {
    let pair = connected(config()).await;
    let [dialer_key, listener_key] = &pair.keys;
    assert_eq!(pair.dialer.0, listener_key.public().to_peer_id());
    assert_eq!(pair.listener.0, dialer_key.public().to_peer_id());
    // The weir keys the handshakes authenticated are the ones the keypairs derive.
    let weir_key = |key| weir_libp2p::weir_key(key).unwrap();
    assert_eq!(
        pair.dialer.1.connection().peer_key(),
        Some(weir_key(listener_key))
    );
    assert_eq!(
        pair.listener.1.connection().peer_key(),
        Some(weir_key(dialer_key))
    );
}

#[tokio::test]
async fn substreams_opened_by_both_sides_at_once_carry_their_own_bytes_both_ways() {
    let pair = connected(config()).await;
    let a = drive(pair.dialer.1);
    let b = drive(pair.listener.1);
    // Each side echoes what its peer's substreams send, reversed.
    for mut side in [a.inbound, b.inbound] {
        tokio::spawn(async move {
            while let Some(mut s) = side.recv().await {
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    got.reverse();
                    s.write_all(&got).await.unwrap();
                    s.close().await.unwrap();
                });
            }
        });
    }
    // Both sides number their substreams from 0: the labels must not mix them up.
    let mut calls = Vec::new();
    for (name, opener) in [("a", &a.open), ("b", &b.open)] {
        for i in 0..16u32 {
            let open = opener.clone();
            calls.push(tokio::spawn(async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                open.send(tx).unwrap();
                let mut s = rx.await.unwrap().unwrap();
                let sent: Vec<u8> = format!("{name}{i}:")
                    .bytes()
                    .cycle()
                    .take(10_000 + i as usize)
                    .collect();
                s.write_all(&sent).await.unwrap();
                s.close().await.unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).await.unwrap();
                back.reverse();
                assert_eq!(back, sent, "substream {name}{i}");
            }));
        }
    }
    for call in calls {
        tokio::time::timeout(BOUND, call).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_substream_dropped_midway_fails_the_peers_reads_instead_of_ending_them() {
    let pair = connected(config()).await;
    let a = drive(pair.dialer.1);
    let mut b = drive(pair.listener.1);

    // The opener drops it midway: the acceptor must not take the part as the whole. (A
    // substream dropped before the peer took it never surfaces there: weir drops a stream
    // reset before it was accepted.)
    let mut s = within("open", a.open()).await.unwrap();
    within("write", s.write_all(&[1; 1000])).await.unwrap();
    let mut taken = within("accept", b.inbound.recv()).await.unwrap();
    drop(s);
    let mut got = Vec::new();
    let read = tokio::time::timeout(BOUND, taken.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);

    // The acceptor drops it midway through its answer: the opener's read fails too.
    let mut s = within("open", a.open()).await.unwrap();
    within("write", s.write_all(b"anyone?")).await.unwrap();
    let mut taken = within("accept", b.inbound.recv()).await.unwrap();
    within("answer", taken.write_all(b"partly")).await.unwrap();
    let mut first = [0; 6];
    within("read", s.read_exact(&mut first)).await.unwrap();
    drop(taken);
    let read = within("read", s.read_to_end(&mut got)).await;
    assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);

    // The acceptor drops it without a word: the opener reads the end rather than waiting.
    let mut s = within("open", a.open()).await.unwrap();
    within("write", s.write_all(b"anyone?")).await.unwrap();
    drop(within("accept", b.inbound.recv()).await.unwrap());
    got.clear();
    within("read", s.read_to_end(&mut got)).await.unwrap();
    assert!(got.is_empty());
}

#[tokio::test]
async fn a_dial_to_a_peer_id_that_does_not_answer_fails_with_who_did() {
    let (mut listener, listener_key, addr) = listening(config()).await;
    let stranger = PeerId::random();
    let mut dialer = Transport::new(&Keypair::generate_ed25519(), config()).unwrap();
    let dial = tokio::spawn(
        dialer
            .dial(addr.with(Protocol::P2p(stranger)), dial_opts())
            .unwrap(),
    );
    let upgrade = next_arrival(&mut listener).await.upgrade;
    let (out, _) = within("dial and upgrade", async { tokio::join!(dial, upgrade) }).await;
    match out.unwrap() {
        Err(Error::Identity(IdentityError::WrongPeer(wrong))) => {
            assert_eq!(wrong.expected, stranger);
            assert_eq!(wrong.found, listener_key.public().to_peer_id());
        }
        Err(e) => panic!("expected WrongPeer, got {e}"),
        Ok(_) => panic!("expected WrongPeer, got a connection"),
    }
}

#[tokio::test]
async fn a_weir_peer_that_does_not_prove_a_libp2p_identity_is_closed_with_the_code() {
    let short = weir_libp2p::Config {
        identity_timeout: Duration::from_millis(300),
        ..config()
    };
    let (mut listener, _, addr) = listening(short).await;
    let Some(Protocol::Udp(port)) = addr.iter().nth(1) else {
        panic!("a udp address");
    };
    let plain = Endpoint::bind(weir_sim::loopback::local(), weir_sim::loopback::config()).unwrap();
    let conn = plain.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let upgrade = next_arrival(&mut listener).await.upgrade;
    match upgrade.await {
        Err(Error::IdentityTimedOut(limit)) => assert_eq!(limit, Duration::from_millis(300)),
        Err(e) => panic!("expected IdentityTimedOut, got {e}"),
        Ok(_) => panic!("expected IdentityTimedOut, got a connection"),
    }
    // The listener's identity stream came first; then the close, with the code.
    let mut identity = conn.accept_stream().await.unwrap();
    assert_eq!(identity.label().map(|l| l.as_str()), Some("libp2p/id"));
    let _ = identity.read_to_end(4096).await;
    match tokio::time::timeout(BOUND, conn.accept_stream()).await.unwrap() {
        Err(weir_tokio::Error::Closed(CloseReason::Peer { code, .. })) => {
            assert_eq!(code, weir_tokio::CloseCode::Application(IDENTITY_REFUSED));
        }
        Err(e) => panic!("expected the peer's close, got {e}"),
        Ok(_) => panic!("expected the peer's close, got a stream"),
    }
}

#[tokio::test]
async fn addresses_that_are_not_weirs_are_refused_and_a_removed_listener_closes() {
    let (mut transport, _, _) = listening(config()).await;
    for other in ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"] {
        let addr: libp2p::Multiaddr = other.parse().unwrap();
        assert!(matches!(
            transport.listen_on(ListenerId::next(), addr.clone()),
            Err(TransportError::MultiaddrNotSupported(a)) if a == addr
        ));
        assert!(matches!(
            transport.dial(addr.clone(), dial_opts()),
            Err(TransportError::MultiaddrNotSupported(a)) if a == addr
        ));
    }
    let id = ListenerId::next();
    transport
        .listen_on(id, "/ip4/127.0.0.1/udp/0".parse().unwrap())
        .unwrap();
    assert!(
        matches!(next_event(&mut transport).await, TransportEvent::NewAddress { listener_id, .. } if listener_id == id)
    );
    assert!(transport.remove_listener(id));
    assert!(!transport.remove_listener(id));
    assert!(matches!(
        next_event(&mut transport).await,
        TransportEvent::ListenerClosed { listener_id, reason: Ok(()) } if listener_id == id
    ));
}

#[tokio::test]
async fn a_listener_on_an_unspecified_address_reports_its_interfaces_addresses() {
    let key = Keypair::generate_ed25519();
    let mut transport = Transport::new(&key, config()).unwrap();
    let id = ListenerId::next();
    transport
        .listen_on(id, "/ip4/0.0.0.0/udp/0".parse().unwrap())
        .unwrap();
    let mut reported = Vec::new();
    let loopback = loop {
        match within("the interfaces' addresses", next_event(&mut transport)).await {
            TransportEvent::NewAddress {
                listener_id,
                listen_addr,
            } => {
                assert_eq!(listener_id, id);
                reported.push(listen_addr.clone());
                if listen_addr.iter().next() == Some(Protocol::Ip4([127, 0, 0, 1].into())) {
                    break listen_addr;
                }
            }
            _ => panic!("only addresses are reported"),
        }
    };
    // One port, interface addresses only, never the unspecified one.
    let ports: Vec<_> = reported.iter().map(|a| a.iter().nth(1)).collect();
    assert!(ports.iter().all(|p| *p == ports[0]), "{reported:?}");
    assert!(
        reported
            .iter()
            .all(|a| !a.to_string().starts_with("/ip4/0.0.0.0")),
        "{reported:?}"
    );

    // The address reported is one to dial.
    let mut dialer = Transport::new(&Keypair::generate_ed25519(), config()).unwrap();
    let dial = tokio::spawn(dialer.dial(loopback, dial_opts()).unwrap());
    let upgrade = next_arrival(&mut transport).await.upgrade;
    let (out, inc) = within("the upgrades", async { tokio::join!(dial, upgrade) }).await;
    assert_eq!(
        out.unwrap().ok().map(|(peer, _)| peer),
        Some(key.public().to_peer_id())
    );
    assert!(inc.is_ok());
}

#[tokio::test]
async fn a_peer_that_moves_to_a_new_address_is_reported_as_an_address_change() {
    let (mut listener, listener_key, addr) = listening(config()).await;
    let Some(Protocol::Udp(port)) = addr.iter().nth(1) else {
        panic!("a udp address");
    };
    let nat = common::Rebinder::start(([127, 0, 0, 1], port).into());
    let mut dialer = Transport::new(&Keypair::generate_ed25519(), config()).unwrap();
    let via = libp2p::Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Udp(nat.addr().port()))
        .with(Protocol::P2p(listener_key.public().to_peer_id()));
    let dial = tokio::spawn(dialer.dial(via, dial_opts()).unwrap());
    let upgrade = next_arrival(&mut listener).await.upgrade;
    let (out, inc) = within("the upgrades", async { tokio::join!(dial, upgrade) }).await;
    let (a, mut b) = (drive(out.unwrap().unwrap().1), drive(inc.unwrap().1));

    let moved_to = nat.rebind();
    // Traffic from the new address moves the listener's connection there.
    let mut s = within("open", a.open()).await.unwrap();
    within("write", s.write_all(b"from a new port")).await.unwrap();
    let reported = within("the address change", b.moves.recv()).await.unwrap();
    let expected = libp2p::Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Udp(moved_to.port()));
    assert_eq!(reported, expected);
    let mut taken = within("accept", b.inbound.recv()).await.unwrap();
    let mut got = [0; 15];
    within("read", taken.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"from a new port");
}

#[tokio::test]
async fn a_listening_transport_dials_from_its_listening_port() {
    let (mut listener, _, addr) = listening(config()).await;
    let (mut dialer, _, dialer_addr) = listening(config()).await;
    let dial = tokio::spawn(dialer.dial(addr.clone(), dial_opts()).unwrap());
    let Arrival {
        upgrade,
        local_addr,
        send_back_addr,
    } = next_arrival(&mut listener).await;
    // The peer sees the address it can dial back: the dialer's listening one.
    assert_eq!(send_back_addr, dialer_addr);
    assert_eq!(local_addr, addr);
    let (out, inc) = within("the upgrades", async { tokio::join!(dial, upgrade) }).await;
    assert!(out.unwrap().is_ok() && inc.is_ok());

    // A dial that asks for a new port gets one.
    let fresh = libp2p::core::transport::DialOpts {
        port_use: libp2p::core::transport::PortUse::New,
        ..dial_opts()
    };
    let dial = tokio::spawn(dialer.dial(addr, fresh).unwrap());
    let Arrival {
        upgrade,
        send_back_addr,
        ..
    } = next_arrival(&mut listener).await;
    assert_ne!(send_back_addr, dialer_addr);
    let (out, inc) = within("the upgrades", async { tokio::join!(dial, upgrade) }).await;
    assert!(out.unwrap().is_ok() && inc.is_ok());
}
