//! The real-socket soak of weir-tokio's `tests/soak.rs`, driven through weir-std's blocking
//! calls: weir-sim's [`soak`](weir_sim::soak) draws the cases (random impaired paths,
//! straight or through a piping relay; random messages both ways, some refused part-way)
//! and says what each end must have seen: every message read intact and once, its sender
//! told it was delivered; every refused one told to its sender with the receiver's code and
//! the relays counted. Each blocking call gives up after a minute, so a stall fails.
//!
//! CI runs [`CASES`] cases from seed 1. A soak: `WEIR_SOAK_CASES=200 WEIR_SOAK_SEED=7
//! cargo test --release -p weir-std --test soak -- --nocapture`.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use bytes::Bytes;
use common::{local, with_timeout};
use weir_sim::proxy::Proxy;
use weir_sim::soak::{self, index, refusal, Case, Way};
use weir_std::{Confirm, Connection, Endpoint, Error, RecvStream};

/// Cases a plain `cargo test` runs (`WEIR_SOAK_CASES` sets another count).
const CASES: u64 = 3;

/// An endpoint on 127.0.0.1 for the soak, whose every blocking call gives up after a
/// minute.
fn bind() -> Endpoint {
    with_timeout(Endpoint::bind(local(), soak::config()).unwrap())
}

/// The receiver's side of one message: reads its index, refuses it there if the case says
/// so, else reads it to its end. Its index and what it read (`None`: refused).
fn receive(mut stream: RecvStream, case: &Case, way: Way) -> Result<(u32, Option<Bytes>), Error> {
    let mut head = Vec::new();
    while head.len() < 4 {
        let chunk = stream
            .read_chunk(4 - head.len())?
            .expect("a message of 8 bytes or more");
        head.extend_from_slice(&chunk);
    }
    let i = index(&head);
    if case.messages(way)[i as usize].refused {
        stream.stop(refusal(i))?;
        return Ok((i, None));
    }
    let rest = stream.read_to_end(1 << 30)?;
    head.extend_from_slice(&rest);
    Ok((i, Some(Bytes::from(head))))
}

/// The messages going `way`: `from` sends them all at once, a thread each, each asking to
/// hear of its delivery, while `to` reads or refuses each on a thread of its own. Checks
/// what each end saw.
fn exchange(from: &Connection, to: &Connection, case: &Case, way: Way) -> Result<(), String> {
    let count = case.messages(way).len();
    thread::scope(|s| {
        let reader = s.spawn(|| {
            let readers: Vec<_> = (0..count)
                .map(|_| {
                    let stream = to.accept_stream()?;
                    Ok(s.spawn(move || receive(stream, case, way)))
                })
                .collect::<Result<_, Error>>()?;
            readers
                .into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Result<Vec<_>, Error>>()
        });
        let sends: Vec<_> = (0..count)
            .map(|i| s.spawn(move || from.send_message_with(case.message(way, i as u32), Confirm::Delivered)))
            .collect();
        for (i, send) in sends.into_iter().enumerate() {
            case.check_heard(way, i, &send.join().unwrap())?;
        }
        let read = reader
            .join()
            .unwrap()
            .map_err(|e| format!("{way:?}: reading: {e}"))?;
        case.check_read(way, &read)
    })
}

/// A relay that pipes every stream one of its connections opens on to the other, on
/// threads of its own that end when their connection does.
fn relay(relay: Endpoint, a: Connection, b: Connection) {
    let relay = Arc::new(relay);
    for (from, onward) in [(a.clone(), b.clone()), (b, a)] {
        let relay = relay.clone();
        thread::spawn(move || {
            while let Ok(stream) = from.accept_stream() {
                if let Ok(pipe) = relay.pipe(stream, &[&onward]) {
                    // How it ends is the sender's to hear; the relay only keeps it running.
                    thread::spawn(move || pipe.wait());
                }
            }
        });
    }
}

fn run(case: &Case) -> Result<String, String> {
    let start = Instant::now();
    let accepting = bind();
    let connecting = bind();
    let near = Proxy::start(accepting.local_addr(), case.hops[0]).unwrap();
    let connect = |e: Error| format!("connect: {e}");
    // Through a relay: connecting end -> hop 1 -> relay -> hop 0 -> accepting end.
    let (conn, far) = match case.hops.get(1) {
        Some(&hop) => {
            let middle = bind();
            let far = Proxy::start(middle.local_addr(), hop).unwrap();
            let onward = middle.connect(near.addr()).map_err(connect)?;
            let conn = connecting.connect(far.addr()).map_err(connect)?;
            let from = middle.accept().map_err(connect)?;
            relay(middle, from, onward);
            (conn, Some(far))
        }
        None => (connecting.connect(near.addr()).map_err(connect)?, None),
    };
    let incoming = accepting.accept().map_err(|e| format!("accept: {e}"))?;
    thread::scope(|s| {
        let back = s.spawn(|| exchange(&incoming, &conn, case, Way::Back));
        let forth = exchange(&conn, &incoming, case, Way::Forth);
        forth.and(back.join().unwrap())
    })?;
    let (took, stats) = (start.elapsed(), conn.stats());
    conn.close(0, "done").ok();
    // The endpoints before the paths to their peers: an endpoint dropped shuts down
    // gracefully, which takes seconds with its peers out of reach.
    drop((conn, incoming, connecting, accepting));
    drop((far, near));
    let s = stats.unwrap_or_default();
    Ok(format!(
        "{took:.2?}: datagrams sent {}, lost {}, probes {}",
        s.datagrams_sent, s.packets_lost, s.probes
    ))
}

#[test]
fn messages_on_random_paths_arrive_intact_or_are_refused_and_each_sender_hears_the_truth() {
    for seed in soak::seeds(CASES) {
        let case = Case::draw(seed);
        match run(&case) {
            Ok(line) => println!("{}: {line}", case.describe()),
            Err(why) => panic!("seed {seed}: {why}\n{case:#?}"),
        }
    }
}
