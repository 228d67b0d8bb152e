//! weir-std over real UDP sockets on 127.0.0.1. Every wait is bounded by the core's own
//! timeouts (handshake, idle), so no test can hang.

use std::thread;

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::VersionRange;
use weir_core::Digest;
use weir_sim::proxy::{Impairment, Proxy};
mod common;

use common::{bind, config, local, patient};
use weir_std::{
    CloseReason, Config, Confirm, Delivery, Endpoint, Error, HandshakeError, Label, StreamHeader,
};

#[test]
fn handshake_reports_what_was_negotiated() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    assert_eq!(conn.negotiated().version, 2);
    assert!(conn.negotiated().cipher.is_some(), "encrypted by default");
    assert!(conn.negotiated().piping());
    let incoming = server.accept().unwrap();
    assert_eq!(incoming.negotiated(), conn.negotiated());
}

#[test]
fn each_side_learns_the_others_key_and_a_named_key_must_match() {
    let server = bind(config());
    let client = bind(config());
    // XX: learned in the handshake.
    let conn = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    assert_eq!(conn.peer_key(), Some(server.public_key()));
    assert_eq!(incoming.peer_key(), Some(client.public_key()));
    // IK: named beforehand.
    let conn = client
        .connect_to(server.local_addr(), server.public_key())
        .unwrap();
    assert_eq!(conn.peer_key(), Some(server.public_key()));
    let wrong = weir_std::Identity::from_seed(&weir_core::Seed::from(5)).public_key();
    match client.connect_to(server.local_addr(), wrong) {
        Err(Error::Handshake(HandshakeError::ServerKeyMismatch { expected })) => assert_eq!(expected, wrong),
        other => panic!("expected a key mismatch, got {:?}", other.map(|c| c.negotiated())),
    }
}

/// Dialing by key: the address that holds the key wins over one that does not; none that
/// does is [`Error::Unreachable`], naming each.
#[test]
fn a_peer_is_dialled_by_its_key_at_the_address_that_holds_it() {
    let server = bind(config());
    let impostor = bind(config());
    let client = bind(config());
    let (right, wrong) = (server.local_addr(), impostor.local_addr());
    let conn = client
        .connect_to_peer(server.public_key(), &[wrong, right])
        .unwrap();
    assert_eq!(conn.peer_key(), Some(server.public_key()));
    assert_eq!(server.accept().unwrap().peer_key(), Some(client.public_key()));
    match client.connect_to_peer(server.public_key(), &[wrong]) {
        Err(Error::Unreachable { attempts }) => {
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].0, wrong);
        }
        other => panic!("expected unreachable, got {:?}", other.map(|c| c.negotiated())),
    }
}

/// A peer reached by key through a circuit relay (spec §12), with blocking calls: the
/// message arrives byte-exact through the relay, and the relay's refusal of a key nobody
/// reserved is typed.
#[test]
fn a_peer_is_reached_by_its_key_through_a_relay() {
    let relay = bind(Config {
        relay: Some(weir_std::RelayConfig::default()),
        ..config()
    });
    let (a, b) = (bind(config()), bind(config()));
    let b_r = b.connect(relay.local_addr()).unwrap();
    b.reserve(&b_r).unwrap();
    let a_r = a.connect(relay.local_addr()).unwrap();
    let b_key = b.public_key();
    let receiving = thread::spawn(move || {
        let c = b.accept().unwrap();
        let got = c.recv_message().unwrap();
        (c.peer_key(), got, b_r)
    });
    let conn = a.connect_via(&a_r, b_key).unwrap();
    let msg = Bytes::from(vec![9u8; 50_000]);
    conn.send_message(msg.clone()).unwrap();
    let (peer, got, _) = receiving.join().unwrap();
    assert_eq!((peer, got), (Some(a.public_key()), msg));
    let nobody = weir_std::PublicKey::from_bytes([7; 32]);
    assert!(matches!(
        a.connect_via(&a_r, nobody),
        Err(Error::Handshake(HandshakeError::Relay(
            weir_std::RelayRefusal::NoReservation
        )))
    ));
}

#[test]
fn a_version_mismatch_reports_both_ranges() {
    let server = Endpoint::bind(
        local(),
        Config {
            versions: VersionRange::new(3, 3).unwrap(),
            ..config()
        },
    )
    .unwrap();
    let client = bind(config());
    match client.connect(server.local_addr()) {
        Err(Error::Handshake(HandshakeError::Rejected { versions, .. })) => {
            assert_eq!(versions, VersionRange::new(3, 3).unwrap());
        }
        Err(Error::Handshake(HandshakeError::NoCommonVersion { ours, server })) => {
            assert_eq!(
                (ours, server),
                (VersionRange::ENCRYPTED, VersionRange::new(3, 3).unwrap())
            );
        }
        other => panic!(
            "expected a version failure, got {:?}",
            other.map(|c| c.negotiated())
        ),
    }
}

#[test]
fn a_thousand_messages_arrive_once_each_and_a_reply_comes_back() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    let sender = thread::spawn(move || {
        for i in 0u32..1000 {
            conn.send_message(Bytes::from(format!("message {i}"))).unwrap();
        }
        let reply = conn.recv_message().unwrap();
        // Returned so that it stays open until the end of the test.
        (client, conn, reply)
    });
    let incoming = server.accept().unwrap();
    // One stream per message: streams may complete out of order, so compare as a set
    // and check every one arrived once.
    let mut got: Vec<String> = (0..1000)
        .map(|_| String::from_utf8(incoming.recv_message().unwrap().to_vec()).unwrap())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0u32..1000).map(|i| format!("message {i}")).collect();
    want.sort();
    assert_eq!(got, want);
    incoming.send_message(Bytes::from_static(b"all 1000")).unwrap();
    let (_client, _conn, reply) = sender.join().unwrap();
    assert_eq!(&reply[..], b"all 1000");
    assert!(incoming.stats().unwrap().datagrams_received > 0);
}

/// `len` bytes that are not a repeating pattern of a datagram's size.
fn payload(len: usize, seed: u32) -> Bytes {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    Bytes::from(data)
}

#[test]
fn a_64_mib_message_arrives_with_its_checksum() {
    let server = bind(patient());
    let client = bind(patient());
    let conn = client.connect(server.local_addr()).unwrap();
    let data = payload(64 << 20, 1);
    let sent = Digest::of(&data);
    let sender = thread::spawn(move || {
        conn.send_message(data).unwrap();
        (client, conn)
    });
    let incoming = server.accept().unwrap();
    let got = incoming.recv_message().unwrap();
    assert_eq!(got.len(), 64 << 20);
    assert_eq!(Digest::of(&got), sent);
    drop(sender.join().unwrap());
}

#[test]
fn a_stream_shows_its_label_and_length_and_arrives_in_order() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    let data = payload(3 << 20, 2);
    let header = StreamHeader::default()
        .with_label(Label::from_static("/files/1").unwrap())
        .with_total_len(data.len() as u64);
    let mut out = conn.open_stream_with(header).unwrap();
    let to_send = data.clone();
    let sender = thread::spawn(move || {
        // In uneven pieces, as an application writing a file would.
        let mut rest = to_send;
        while !rest.is_empty() {
            let piece = rest.split_to(rest.len().min(100_003));
            out.write_all_chunk(piece).unwrap();
        }
        out.finish().unwrap();
        (client, conn)
    });
    let incoming = server.accept().unwrap();
    let mut stream = incoming.accept_stream().unwrap();
    assert_eq!(stream.label().map(Label::as_str), Some("/files/1"));
    assert_eq!(stream.total_len(), Some(3 << 20));
    let got = stream.read_to_end(4 << 20).unwrap();
    assert!(got == data, "the bytes differ");
    assert_eq!(stream.read_chunk(10).unwrap(), None);
    drop(sender.join().unwrap());
}

#[test]
fn std_io_read_and_write_carry_a_stream() {
    use std::io::{Read, Write};
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    let mut out = conn.open_stream(None).unwrap();
    out.write_all(b"line one\nline two\n").unwrap();
    // One large write copies and takes a bounded piece, though the send buffer has room for
    // all of it; write_all sends the rest.
    let big = vec![7u8; 2 << 20];
    assert_eq!(out.write(&big).unwrap(), weir_std::SLICE_WRITE_LIMIT);
    out.write_all(&big[weir_std::SLICE_WRITE_LIMIT..]).unwrap();
    // This thread reads it below: a finish that waited for the receipt would wait for itself.
    out.finish_with(Confirm::Queued).unwrap();
    let incoming = server.accept().unwrap();
    let mut stream = incoming.accept_stream().unwrap();
    let mut text = vec![0; 18];
    stream.read_exact(&mut text).unwrap();
    assert_eq!(text, b"line one\nline two\n");
    let mut rest = Vec::new();
    Read::read_to_end(&mut stream, &mut rest).unwrap();
    assert!(rest == big, "the large write's bytes differ");
}

#[test]
fn fifty_connections_on_one_endpoint_each_get_their_own_reply() {
    let server = bind(config());
    let server_addr = server.local_addr();
    let server = thread::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..50 {
            let conn = server.accept().unwrap();
            handlers.push(thread::spawn(move || {
                let m = conn.recv_message().unwrap();
                let mut reply = b"echo ".to_vec();
                reply.extend_from_slice(&m);
                conn.send_message(reply.into()).unwrap();
                // Hold the connection until the client closes it.
                let _ = conn.recv_message();
            }));
        }
        for h in handlers {
            h.join().unwrap();
        }
        server
    });
    let client = std::sync::Arc::new(bind(config()));
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let client = std::sync::Arc::clone(&client);
            thread::spawn(move || {
                let conn = client.connect(server_addr).unwrap();
                conn.send_message(Bytes::from(format!("{i}"))).unwrap();
                let reply = conn.recv_message().unwrap();
                assert_eq!(reply, Bytes::from(format!("echo {i}")));
                conn
            })
        })
        .collect();
    // All fifty are open at once before any closes.
    let conns: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(conns.len(), 50);
    for c in &conns {
        c.close(0, "done").unwrap();
    }
    drop(server.join().unwrap());
}

#[test]
fn a_relay_pipes_a_stream_from_sender_to_receiver() {
    let receiver = bind(config());
    let relay = bind(config());
    let sender = bind(config());
    let onward = relay.connect(receiver.local_addr()).unwrap();
    let to_relay = sender.connect(relay.local_addr()).unwrap();
    let data = payload(16 << 20, 3);
    let header = StreamHeader::default()
        .with_label(Label::from_static("/relay/test").unwrap())
        .with_total_len(data.len() as u64)
        .with_digest(Digest::of(&data));
    let mut out = to_relay.open_stream_with(header).unwrap();
    let to_send = data.clone();
    let writer = thread::spawn(move || {
        out.write_all_chunk(to_send).unwrap();
        out.finish().unwrap();
        (sender, to_relay)
    });
    let from_sender = relay.accept().unwrap();
    let stream = from_sender.accept_stream().unwrap();
    let pipe = relay.pipe(stream, &[&onward]).unwrap();
    let at_receiver = receiver.accept().unwrap();
    let mut incoming = at_receiver.accept_stream().unwrap();
    assert_eq!(incoming.label().map(Label::as_str), Some("/relay/test"));
    assert_eq!(incoming.total_len(), Some(16 << 20));
    // The digest the sender attached is checked at the end of the read.
    let got = incoming.read_to_end(32 << 20).unwrap();
    assert_eq!(Digest::of(&got), Digest::of(&data));
    let stats = pipe.wait().unwrap();
    assert_eq!(stats.bytes_forwarded, 16 << 20);
    // The relay never held the whole stream: at most its pipe buffer was unacknowledged.
    assert!(stats.in_flight_peak <= Config::default().pipe_buffer, "{stats:?}");
    drop(writer.join().unwrap());
}

#[test]
fn a_pipe_refuses_a_connection_of_another_endpoint() {
    let a = bind(config());
    let b = bind(config());
    let ab = a.connect(b.local_addr()).unwrap();
    let ba = b.accept().unwrap();
    let mut s = ab.open_stream(None).unwrap();
    s.write_all_chunk(Bytes::from_static(b"x")).unwrap();
    let incoming = ba.accept_stream().unwrap();
    assert!(matches!(a.pipe(incoming, &[&ab]), Err(Error::WrongEndpoint)));
}

#[test]
fn a_peer_that_dies_mid_transfer_is_reported_within_the_idle_timeout() {
    let quick = Config {
        idle_timeout: Duration::from_secs(1),
        keep_alive: None,
        ..config()
    };
    let server = bind(quick.clone());
    let path = Proxy::start(server.local_addr(), Impairment::default()).unwrap();
    let client = bind(quick);
    let conn = client.connect(path.addr()).unwrap();
    let incoming = server.accept().unwrap();
    let reader = thread::spawn(move || {
        let r = incoming.recv_message();
        (server, r)
    });
    let mut out = conn.open_stream(None).unwrap();
    out.write_all_chunk(payload(1 << 20, 4)).unwrap();
    path.set_cut(true);
    let started = std::time::Instant::now();
    // Writing on blocks once the send buffer is full of unacknowledged bytes; the silence
    // ends the connection with a typed error, not a hang.
    let mut end = Ok(());
    for _ in 0..1_000 {
        if let Err(e) = out.write_all_chunk(payload(1 << 20, 5)) {
            end = Err(e);
            break;
        }
    }
    assert!(
        matches!(end, Err(Error::Closed(CloseReason::Unreachable))),
        "{end:?}"
    );
    // Within the idle timeout, plus the probes' back-off margin (bounded, not a race).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (_server, r) = reader.join().unwrap();
    // The reader waited for the message: unreachable if its first bytes had arrived (a
    // stream under way), timed out if the cut came before any did (nothing was).
    assert!(
        matches!(
            r,
            Err(Error::Closed(CloseReason::Unreachable | CloseReason::TimedOut))
        ),
        "{r:?}"
    );
}

#[test]
fn a_call_that_times_out_loses_nothing() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    let mut incoming = server.accept().unwrap();
    incoming.set_timeout(Some(std::time::Duration::from_millis(30)));
    assert!(matches!(incoming.recv_message(), Err(Error::TimedOut)));
    let mut out = conn.open_stream(None).unwrap();
    out.write_all_chunk(Bytes::from_static(b"first")).unwrap();
    let mut stream = incoming.accept_stream().unwrap();
    assert_eq!(stream.read_chunk(100).unwrap().as_deref(), Some(&b"first"[..]));
    assert!(matches!(stream.read_chunk(100), Err(Error::TimedOut)));
    out.write_all_chunk(Bytes::from_static(b"second")).unwrap();
    out.finish_with(Confirm::Queued).unwrap();
    let mut rest = Vec::new();
    while let Some(c) = stream.read_chunk(100).unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"second");
    conn.send_message_with(Bytes::from_static(b"late"), Confirm::Queued)
        .unwrap();
    assert_eq!(&incoming.recv_message().unwrap()[..], b"late");
}

#[test]
fn dropping_an_endpoint_delivers_what_was_sent_first() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    let reader = thread::spawn(move || {
        let first = incoming.recv_message();
        let then = incoming.recv_message();
        (server, first, then)
    });
    let data = payload(2 << 20, 6);
    conn.send_message(data.clone()).unwrap();
    drop(conn);
    // The drop waits (bounded) for the server to acknowledge the message, then closes.
    drop(client);
    let (_server, first, then) = reader.join().unwrap();
    assert!(first.unwrap() == data, "the bytes differ");
    assert!(
        matches!(then, Err(Error::Closed(CloseReason::Peer { .. }))),
        "{then:?}"
    );
}

#[test]
fn a_message_sent_just_before_a_close_can_still_be_read() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    conn.send_message_with(Bytes::from_static(b"last words"), Confirm::Queued)
        .unwrap();
    let incoming = server.accept().unwrap();
    // The last handle closes the connection once the server acknowledged the message;
    // dropping the endpoint waits for that and the CLOSE. Only then does anything read.
    drop(conn);
    drop(client);
    assert_eq!(&incoming.recv_message().unwrap()[..], b"last words");
    assert!(matches!(
        incoming.recv_message(),
        Err(Error::Closed(CloseReason::Peer { .. }))
    ));
}

#[test]
fn ipv6_loopback_works_where_the_host_has_it() {
    let Ok(server) = Endpoint::bind("[::1]:0".parse().unwrap(), config()) else {
        return; // No IPv6 on this host.
    };
    let client = Endpoint::bind("[::1]:0".parse().unwrap(), config()).unwrap();
    let conn = client.connect(server.local_addr()).unwrap();
    conn.send_message_with(Bytes::from_static(b"v6"), Confirm::Queued)
        .unwrap();
    assert_eq!(&server.accept().unwrap().recv_message().unwrap()[..], b"v6");
}

#[test]
fn a_closed_connection_is_reported_to_the_peer() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    conn.send_message_with(Bytes::from_static(b"bye"), Confirm::Queued)
        .unwrap();
    let incoming = server.accept().unwrap();
    assert_eq!(&incoming.recv_message().unwrap()[..], b"bye");
    conn.close(42, "bye").unwrap();
    match incoming.recv_message() {
        Err(Error::Closed(weir_std::CloseReason::Peer { .. })) => {}
        other => panic!("expected the peer's close, got {other:?}"),
    }
}

/// Issue 31: the controller is chosen per connection. Two connections from one endpoint,
/// one with the configured BBR, one with `connect_with` NewReno: only BBR sets a pacing
/// rate.
#[test]
fn each_connection_may_have_its_own_congestion_controller() {
    let server = bind(config());
    let client = bind(config());
    let bbr = client.connect(server.local_addr()).unwrap();
    let reno = client
        .connect_with(server.local_addr(), weir_std::CongestionAlgorithm::NewReno)
        .unwrap();
    // Accepted in the order they connected (one after the other).
    for (ours, theirs) in [
        (&bbr, server.accept().unwrap()),
        (&reno, server.accept().unwrap()),
    ] {
        ours.send_message_with(Bytes::from(vec![3u8; 100_000]), Confirm::Queued)
            .unwrap();
        assert_eq!(theirs.recv_message().unwrap().len(), 100_000);
    }
    let (paced, windowed) = (bbr.stats().unwrap(), reno.stats().unwrap());
    assert!(paced.pacing_rate.is_some(), "{paced:?}");
    assert_eq!(windowed.pacing_rate, None, "{windowed:?}");
}

/// A call that moves the core's deadline earlier wakes the driver thread, which was asleep
/// for up to a second with nothing to do: a handshake with a silent peer fails at its
/// 100 ms timeout, not at the end of that sleep.
#[test]
fn a_call_that_sets_an_earlier_deadline_wakes_the_sleeping_driver() {
    let silent = std::net::UdpSocket::bind(local()).unwrap();
    let client = bind(Config {
        handshake_timeout: Duration::from_millis(100),
        ..config()
    });
    // Let the new driver thread reach its sleep (no deadline: up to a second) first; were
    // it still awake, it would see the new deadline by itself.
    thread::sleep(std::time::Duration::from_millis(100));
    let started = std::time::Instant::now();
    let r = client.connect(silent.local_addr().unwrap());
    let took = started.elapsed();
    assert!(
        matches!(r, Err(Error::Handshake(HandshakeError::TimedOut))),
        "{:?}",
        r.err()
    );
    assert!(
        took < std::time::Duration::from_millis(900),
        "failed after {took:?}"
    );
}

/// Once the endpoint is dropped (and its driver thread gone), calls on the connections it
/// made fail at once with `Shutdown`.
#[test]
fn calls_fail_once_the_endpoint_is_dropped() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    drop(client);
    assert!(matches!(conn.recv_message(), Err(Error::Shutdown)));
    assert!(matches!(conn.send_message(payload(10, 1)), Err(Error::Shutdown)));
    drop(server);
}

/// A deferred delivery: the sender's `finish` returns only once the receiver confirms, and
/// fails with the receiver's code when it refuses a stream it read to its end.
#[test]
fn a_deferred_delivery_waits_for_the_receiver_s_word() {
    let server = bind(config());
    let client = bind(config());
    let conn = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    for refusal in [None, Some(9)] {
        let mut out = conn.open_stream(None).unwrap();
        out.write_all_chunk(payload(20_000, 5)).unwrap();
        let sender = thread::spawn(move || out.finish());
        let mut held = incoming.accept_stream().unwrap();
        held.defer_delivery().unwrap();
        assert!(held.read_to_end(1 << 20).unwrap() == payload(20_000, 5));
        match refusal {
            None => held.confirm_delivery().unwrap(),
            Some(code) => held.stop(code).unwrap(),
        }
        let r = sender.join().unwrap();
        match refusal {
            None => assert!(r.is_ok(), "{r:?}"),
            Some(code) => assert!(
                matches!(r, Err(Error::NotDelivered(Delivery::Failed { code: c, relays: 0 })) if c == code),
                "{r:?}"
            ),
        }
    }
}
