//! Tail losses in weir-sim (spec §8, Loss): when a message's last packet (a small request's
//! only one) is lost, nothing after it is acknowledged to show the loss, and the probe
//! timeout finds it. The probes then carry its bytes again (RFC 9002 §6.2.4), so the loss
//! costs a probe timeout and the copy's way across; before, they carried a PING alone, and
//! the loss was seen only when the PING's acknowledgement came back, a round trip later.
//! The receipts, control and relay frames it held go again with its bytes.
//! Run with `--nocapture` for the figures.

use std::cell::RefCell;

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::{Config, ConnectionHandle, Event, Read};
use weir_sim::{LinkConfig, NodeId, Sim};

const C: NodeId = Sim::PAIR_CLIENT;
const S: NodeId = Sim::PAIR_SERVER;

/// A client and a server, connected, over a link of `one_way` delay losing `loss`: the sim
/// and the client's connection.
fn connected(seed: u64, one_way: Duration, loss: f64) -> (Sim, ConnectionHandle) {
    let link = LinkConfig {
        delay: one_way,
        loss,
        ..LinkConfig::default()
    };
    let (sim, conn, _) = Sim::connected_pair(seed, Config::default(), Config::default(), link);
    (sim, conn)
}

/// The client sends a 100-byte request, the server answers each with 100 bytes, `n` times in
/// a row: how long each round took, from the request to the client's read of the answer.
fn requests(sim: &mut Sim, conn: ConnectionHandle, n: usize) -> Vec<Duration> {
    let rounds = RefCell::new(Vec::new());
    let started = RefCell::new(sim.now());
    let request = || Bytes::from(vec![1u8; 100]);
    sim.endpoint(C).send_message(conn, None, request()).unwrap();
    let limit = sim.now() + Duration::from_secs(3600);
    let done = sim.run_until(
        limit,
        |sim, node, e| {
            let Event::StreamReadable { conn, stream } = e else {
                return;
            };
            let Ok(Read::Data { .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 20) else {
                return;
            };
            if node == S {
                let answer = Bytes::from(vec![2u8; 100]);
                sim.endpoint(S).send_message(conn, None, answer).unwrap();
                return;
            }
            let now = sim.now();
            let began = started.replace(now);
            rounds.borrow_mut().push(now.saturating_duration_since(began));
            if rounds.borrow().len() < n {
                sim.endpoint(C).send_message(conn, None, request()).unwrap();
            }
        },
        |_| rounds.borrow().len() >= n,
    );
    assert!(done, "{} rounds of {n}", rounds.borrow().len());
    rounds.into_inner()
}

/// The request's only datagram is lost: the client's probe timeout sends it again, and the
/// answer comes a probe timeout and one round trip after the request (100 ms round trip:
/// 226 ms; 326 ms when the probe carried a PING alone).
#[test]
fn a_lost_request_goes_again_in_the_probe() {
    let (mut sim, conn) = connected(1, Duration::from_millis(50), 0.0);
    // Twenty rounds first, so that the RTT's variation has settled (the handshake's few
    // samples leave it at tens of milliseconds, a probe timeout of nearly 300), then lose
    // the next datagram to S.
    requests(&mut sim, conn, 20);
    let sent = sim.endpoint_ref(C).stats().datagrams_sent;
    sim.drop_nth(C, S, sent + 1);
    let round = requests(&mut sim, conn, 1)[0];
    let stats = sim.endpoint_ref(C).connection_stats(conn).unwrap();
    println!("answered {round:?} after the request; client {stats:?}");
    assert_eq!(stats.probes, 1, "one probe timeout: {stats:?}");
    // A probe timeout here is about 130 ms (smoothed RTT, its variation, the peer's
    // acknowledgement delay), a round trip 100 ms: no second round trip fits below 300.
    assert!(
        round < Duration::from_millis(300),
        "answered {round:?} after the request"
    );
}

/// The lost request also carried the client's receipt for the answer before it (spec §8,
/// Delivery): the probe copies it with the request, so the server hears that answer
/// delivered a probe timeout and a one-way delay after the request (about 180 ms here).
/// When the probe copied the request's bytes alone, the receipt went again only once the
/// probe's acknowledgement showed the request lost, a round trip later (280 ms).
#[test]
fn the_receipt_a_lost_request_carried_goes_again_in_the_probe() {
    let (mut sim, conn) = connected(1, Duration::from_millis(50), 0.0);
    let request = || Bytes::from(vec![1u8; 100]);
    let answers = RefCell::new(0u32);
    // When the request whose datagram is lost went, and when the server then heard of a
    // delivery (the answer's before it: the only one outstanding).
    let (lost_at, delivered) = (RefCell::new(None), RefCell::new(None));
    sim.endpoint(C).send_message(conn, None, request()).unwrap();
    let limit = sim.now() + Duration::from_secs(60);
    let done = sim.run_until(
        limit,
        |sim, node, e| match e {
            Event::StreamDelivery { delivery, .. } if node == S => {
                if let Some(at) = *lost_at.borrow() {
                    assert_eq!(delivery, weir_core::Delivery::Delivered { relays: 0 });
                    delivered
                        .borrow_mut()
                        .get_or_insert(sim.now().saturating_duration_since(at));
                }
            }
            Event::StreamReadable { conn, stream } => {
                let Ok(Read::Data { .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 20) else {
                    return;
                };
                if node == S {
                    sim.endpoint(S)
                        .send_message(conn, None, Bytes::from(vec![2u8; 100]))
                        .unwrap();
                    return;
                }
                *answers.borrow_mut() += 1;
                // Twenty rounds first, so that the RTT's variation has settled; then the
                // next request, sent at once (its datagram carries the receipt for the
                // answer just read), is lost.
                if *answers.borrow() == 20 {
                    let sent = sim.endpoint_ref(C).stats().datagrams_sent;
                    sim.drop_nth(C, S, sent + 1);
                    *lost_at.borrow_mut() = Some(sim.now());
                }
                if *answers.borrow() <= 20 {
                    sim.endpoint(C).send_message(conn, None, request()).unwrap();
                }
            }
            _ => {}
        },
        |_| delivered.borrow().is_some(),
    );
    assert!(done, "no delivery heard after the lost request");
    let delivered = delivered.into_inner().unwrap();
    let stats = sim.endpoint_ref(C).connection_stats(conn).unwrap();
    println!("the answer's delivery heard {delivered:?} after the lost request; client {stats:?}");
    assert_eq!(stats.probes, 1, "one probe timeout: {stats:?}");
    assert!(
        delivered < Duration::from_millis(250),
        "the answer's delivery heard {delivered:?} after the request"
    );
}

/// Request after request over a 100 ms round trip losing 2% each way (four seeds of 300): the
/// slowest 1% of rounds take a probe timeout and a round trip, not a round trip more
/// (p99 226 ms, the slowest 353; 326 and 578 when the probe carried a PING alone).
#[test]
fn request_rounds_under_random_loss_lose_no_extra_round_trip() {
    let mut all = Vec::new();
    for seed in 1..=4 {
        let (mut sim, conn) = connected(seed, Duration::from_millis(50), 0.02);
        all.extend(requests(&mut sim, conn, 300));
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    let (p50, p99, max) = (at(0.5), at(0.99), all[all.len() - 1]);
    println!(
        "2% loss, 100 ms round trip, {} rounds: p50 {p50:?}, p99 {p99:?}, max {max:?}",
        all.len()
    );
    assert_eq!(p50, Duration::from_millis(100));
    assert!(p99 <= Duration::from_millis(250), "p99 {p99:?}");
}
