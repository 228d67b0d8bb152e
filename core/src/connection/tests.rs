//! The connection's unit tests (the state machines' own tests live beside them).

use super::*;
use crate::wire::{Capabilities, TransportParams};

pub(super) fn unvalidated_server(config: &Config) -> Connection {
    let client = ConnectionId::from_u64(7);
    let hello = Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Handshake { scid: client },
        dcid: ConnectionId::UNSET,
        number: 0,
        number_len: PacketNumberLen::One,
        timestamp: 0,
    };
    let accept = Accept {
        version: 1,
        capabilities: Capabilities::ALL,
        params: config.transport_params(),
    };
    let slot = Slot {
        handle: ConnectionHandle::from_index(0),
        cid: ConnectionId::from_u64(8),
        skip_seed: 0,
        entropy: Entropy::new(&crate::Seed::from(0), b"test"),
    };
    Connection::server(
        slot,
        Instant::ZERO,
        config,
        "10.0.0.1:1".parse().unwrap(),
        (
            client,
            crate::admission::HelloKey::new("10.0.0.1:1".parse().unwrap(), client, None),
        ),
        &hello,
        &TransportParams::default(),
        ServerAnswer::V1(accept),
        false,
    )
}

/// Found by fuzzing (`fuzz/corpus/endpoint/crash-ad28c06d…`): a client that closed for
/// a violation during its handshake, then received a VERSION_REJECT (or a REJECT, or an
/// ACCEPT), took a lifecycle step the table does not declare for a closing connection.
/// A handshake answer to a closing connection changes nothing.
#[test]
fn a_handshake_answer_to_a_client_closing_already_changes_nothing() {
    let config = Config::default();
    let slot = Slot {
        handle: ConnectionHandle::from_index(0),
        cid: ConnectionId::from_u64(8),
        skip_seed: 0,
        entropy: Entropy::new(&crate::Seed::from(0), b"test"),
    };
    let identity = Identity::from_seed(&crate::Seed::from(1));
    let remote = "10.0.0.1:1".parse().unwrap();
    let mut c = Connection::client(
        slot,
        Instant::ZERO,
        &config,
        remote,
        config.congestion.clone(),
        &identity,
        None,
    );
    c.protocol_error(Instant::ZERO, &config, ViolationKind::UnsentPacketAcked);
    let closing = c.state;
    assert!(matches!(closing, State::Closing { .. }), "{closing:?}");
    while c.take_event().is_some() {}
    c.on_version_reject(
        Instant::ZERO,
        crate::wire::VersionRange::new(9, 9).unwrap(),
        &config,
    );
    c.fail_handshake(HandshakeError::TimedOut);
    assert_eq!(c.state, closing);
    assert_eq!(c.take_event(), None, "no second end reported");
}

#[test]
fn an_unvalidated_address_is_sent_at_most_three_times_what_it_sent() {
    let config = Config::default();
    let mut c = unvalidated_server(&config);
    let mut buf = [0u8; 1500];
    let now = Instant::ZERO;
    // Nothing counted from the address yet: the ACCEPT waits.
    assert_eq!(c.poll_transmit(now, &config, &mut buf), None);
    // 20 bytes allow 60: too few for the ACCEPT.
    let from = c.remote;
    c.on_datagram_len(from, 20);
    assert_eq!(c.poll_transmit(now, &config, &mut buf), None);
    // The HELLO's 1200 bytes allow it.
    c.on_datagram_len(from, 1200);
    let len = c.poll_transmit(now, &config, &mut buf).expect("the ACCEPT");
    let account = c.path.account().expect("still unvalidated");
    assert_eq!(account.sent, len as u32);
    assert!(account.sent <= 3 * account.received);
}

/// What a connection holds inline, its largest parts printed (`cargo test -p weir-core --lib
/// connection_size -- --nocapture`): the figures adapters/bench/README.md gives. The
/// connection lives boxed in the endpoint's slot table, so this is most of what an idle
/// connection costs (tests/tests/scale.rs counts the rest).
#[cfg(target_pointer_width = "64")]
#[test]
fn connection_size() {
    extern crate std;
    use core::mem::size_of;

    let parts = [
        ("loss recovery", size_of::<crate::recovery::Recovery>()),
        ("received packet numbers", size_of::<super::Received>()),
        ("statistics' counters", size_of::<super::ConnectionCounters>()),
        ("stream table", size_of::<super::StreamTable>()),
        ("timers", size_of::<super::Timers>()),
        ("receipts", size_of::<super::Receipts>()),
        ("peer's limits", size_of::<super::PeerLimits>()),
        ("BBR (boxed)", size_of::<crate::congestion::Bbr>()),
        (
            "packet keys (boxed)",
            size_of::<crate::crypto::protection::Protection>(),
        ),
    ];
    std::println!("connection: {} bytes inline", size_of::<super::Connection>());
    for (name, bytes) in parts {
        std::println!("  {name}: {bytes}");
    }
    // 1,416 since the receive accounts keep when the peer's streams were last swept (spec
    // §10.3, Age); 1,408 before. The timers' filed flag (`timers_filed`) took padding.
    assert!(size_of::<super::Connection>() <= 1416);
    assert_eq!(size_of::<super::Timers>(), 72, "8 bytes a timer");
    assert!(
        size_of::<crate::crypto::protection::Protection>() <= 160,
        "two keys inline"
    );
    assert_eq!(
        size_of::<super::HandshakeState>(),
        16,
        "the attempt's state boxed"
    );
}

/// What one stream costs its connection's stream table (`cargo test -p weir-core --lib
/// stream_state_size -- --nocapture`): the sender keeps one for each message until the
/// message's bytes have all gone (past 256 states, a stream then waits for its
/// acknowledgements without it: module `in_flight`, whose size this test bounds too), the
/// receiver one until it is read (adapters/bench/rounds.md).
#[cfg(target_pointer_width = "64")]
#[test]
fn stream_state_size() {
    extern crate std;
    use core::mem::size_of;

    let parts = [
        ("one half (send or receive)", size_of::<super::Half>()),
        ("send half", size_of::<super::SendStream>()),
        ("receive half", size_of::<super::RecvStream>()),
        ("header, as kept", size_of::<super::KeptHeader>()),
        ("reading", size_of::<super::Reading>()),
        (
            "a stream in flight, without its state",
            size_of::<super::in_flight::InFlight>(),
        ),
    ];
    std::println!("stream state: {} bytes", size_of::<super::StreamState>());
    for (name, bytes) in parts {
        std::println!("  {name}: {bytes}");
    }
    // 936 while each half had a place of its own, 600 with the pipe's outlet and the
    // send half's repair sets inline, 488 with the whole header inline, 424 with how a
    // stream of ours ended and its blocked report beside the halves (issue 35).
    assert!(size_of::<super::StreamState>() <= 384);
    assert!(size_of::<super::in_flight::InFlight>() <= 88);
}
