//! A soak over real UDP on 127.0.0.1 (weir-sim's [`soak`](weir_sim::soak) draws the cases
//! and says what each must show): random paths through the impairing proxy, straight or
//! through a relay that pipes each message on, both ways; random messages each way, sent at
//! once, some refused part-way by their receiver. Every message read must be intact and
//! read once and its sender must hear "delivered"; every refused one must be heard by its
//! sender as not delivered, with the receiver's code and the relays counted. What the
//! simulator's sweeps ask, asked of the sockets, the adapter and the proxy's real timing.
//!
//! CI runs [`CASES`] cases from seed 1. A soak: `WEIR_SOAK_CASES=200 WEIR_SOAK_SEED=7
//! cargo test --release -p weir-tokio --test soak -- --nocapture` (each case prints a line;
//! a failure names the case's seed, which `WEIR_SOAK_SEED` with `WEIR_SOAK_CASES=1` runs
//! again on the same path and messages, not the same timing).

mod common;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use common::local;
use weir_sim::proxy::Proxy;
use weir_sim::soak::{self, index, refusal, Case, Way, LIMIT};
use weir_tokio::{Confirm, Connection, Endpoint, Error, RecvStream};

/// Cases a plain `cargo test` runs (`WEIR_SOAK_CASES` sets another count).
const CASES: u64 = 3;

/// The receiver's side of one message: reads its index, refuses it there if the case says
/// so, else reads it to its end. Its index and what it read (`None`: refused).
async fn receive(mut stream: RecvStream, case: Arc<Case>, way: Way) -> (u32, Option<Bytes>) {
    let mut head = Vec::new();
    while head.len() < 4 {
        let chunk = stream
            .read_chunk(4 - head.len())
            .await
            .unwrap()
            .expect("a message of 8 bytes or more");
        head.extend_from_slice(&chunk);
    }
    let i = index(&head);
    if case.messages(way)[i as usize].refused {
        stream.stop(refusal(i)).unwrap();
        return (i, None);
    }
    let rest = stream.read_to_end(1 << 30).await.unwrap();
    head.extend_from_slice(&rest);
    (i, Some(Bytes::from(head)))
}

/// The messages going `way`: `from` sends them all at once, each asking to hear of its
/// delivery, while `to` reads or refuses each. Checks what each end saw.
async fn exchange(from: Connection, to: Connection, case: Arc<Case>, way: Way) -> Result<(), String> {
    let count = case.messages(way).len();
    let reader = {
        let case = case.clone();
        tokio::spawn(async move {
            let mut readers = Vec::new();
            for _ in 0..count {
                let stream = to.accept_stream().await.unwrap();
                readers.push(tokio::spawn(receive(stream, case.clone(), way)));
            }
            let mut read = Vec::new();
            for r in readers {
                read.push(r.await.unwrap());
            }
            read
        })
    };
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let (from, m) = (from.clone(), case.message(way, i as u32));
            tokio::spawn(async move { from.send_message_with(m, Confirm::Delivered).await })
        })
        .collect();
    for (i, send) in sends.into_iter().enumerate() {
        case.check_heard(way, i, &send.await.unwrap())?;
    }
    case.check_read(way, &reader.await.unwrap())
}

/// A relay that pipes every stream one of its connections opens on to the other.
async fn relay(relay: Endpoint, a: Connection, b: Connection) {
    let pipe_all = |from: Connection, onward: Connection| {
        let relay = &relay;
        async move {
            while let Ok(stream) = from.accept_stream().await {
                if let Ok(pipe) = relay.pipe(stream, &[&onward]).await {
                    // How it ends is the sender's to hear; the relay only keeps it running.
                    tokio::spawn(async move { pipe.wait().await });
                }
            }
        }
    };
    tokio::join!(pipe_all(a.clone(), b.clone()), pipe_all(b, a));
}

async fn run(case: Arc<Case>) -> Result<String, String> {
    let start = Instant::now();
    let accepting = Endpoint::bind(local(), soak::config()).unwrap();
    let connecting = Endpoint::bind(local(), soak::config()).unwrap();
    let near = Proxy::start(accepting.local_addr(), case.hops[0]).unwrap();
    let connect = |e: Error| format!("connect: {e}");
    // Through a relay: connecting end -> hop 1 -> relay -> hop 0 -> accepting end.
    let (conn, relayed) = match case.hops.get(1) {
        Some(&hop) => {
            let middle = Endpoint::bind(local(), soak::config()).unwrap();
            let far = Proxy::start(middle.local_addr(), hop).unwrap();
            let onward = middle.connect(near.addr()).await.map_err(connect)?;
            let conn = connecting.connect(far.addr()).await.map_err(connect)?;
            let from = middle.accept().await.map_err(connect)?;
            (conn, Some((far, tokio::spawn(relay(middle, from, onward)))))
        }
        None => (connecting.connect(near.addr()).await.map_err(connect)?, None),
    };
    let incoming = accepting.accept().await.map_err(|e| format!("accept: {e}"))?;
    let forth = tokio::spawn(exchange(conn.clone(), incoming.clone(), case.clone(), Way::Forth));
    let back = tokio::spawn(exchange(incoming, conn.clone(), case.clone(), Way::Back));
    forth.await.unwrap()?;
    back.await.unwrap()?;
    let (took, stats) = (start.elapsed(), conn.stats().await);
    conn.close(0, "done").await.ok();
    drop((relayed, near));
    let s = stats.unwrap_or_default();
    Ok(format!(
        "{took:.2?}: datagrams sent {}, lost {}, probes {}",
        s.datagrams_sent, s.packets_lost, s.probes
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_on_random_paths_arrive_intact_or_are_refused_and_each_sender_hears_the_truth() {
    for seed in soak::seeds(CASES) {
        let case = Arc::new(Case::draw(seed));
        let outcome = tokio::time::timeout(LIMIT, run(case.clone()))
            .await
            .unwrap_or_else(|_| Err(format!("stalled past {LIMIT:?}")));
        match outcome {
            Ok(line) => println!("{}: {line}", case.describe()),
            Err(why) => panic!("seed {seed}: {why}\n{case:#?}"),
        }
    }
}
