//! A soak over real UDP on 127.0.0.1: random paths through the impairing proxy (loss and
//! bursts of it, duplication, reordering, damaged and cut datagrams, delay and jitter, a
//! bottleneck, an outage), straight or through a relay that pipes each message on, and
//! random messages sent at once, some of which the receiver refuses part-way. Each case
//! asks what weir promises end to end (spec §8, Delivery): every message the receiver
//! reads is intact and read once, and its sender hears "delivered"; every message the
//! receiver refuses is heard by its sender as not delivered, with the receiver's code and
//! the relays counted; nothing else (no stall, no other failure) within the case's limit.
//! What the simulator's sweeps ask, asked of the sockets, the adapters and the proxy's
//! real timing.
//!
//! CI runs [`CASES`] cases from a fixed seed. A soak: `WEIR_SOAK_CASES=200
//! WEIR_SOAK_SEED=7 cargo test --release -p weir-tokio --test soak -- --nocapture` (each
//! case prints a line; a failure names the case's seed, which `WEIR_SOAK_SEED` with
//! `WEIR_SOAK_CASES=1` runs again on the same path and messages, not the same timing).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{local, payload};
use weir_sim::proxy::{Burst, Impairment, Outage, Proxy};
use weir_tokio::{Config, Confirm, Connection, Delivery, Endpoint, Error};

/// Cases a plain `cargo test` runs (`WEIR_SOAK_CASES` sets another count).
const CASES: u64 = 3;

/// The seed of the first case a plain `cargo test` runs (`WEIR_SOAK_SEED`).
const SEED: u64 = 1;

/// How long a case may take, its connections included, before it counts as stalled.
const LIMIT: Duration = Duration::from_secs(60);

/// The code the receiver refuses message `i` with.
fn refusal(i: u32) -> u64 {
    0x50_0000 + u64::from(i)
}

/// A small deterministic generator (xorshift64*), so that a case's seed gives its path
/// and messages again.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One of `choices`.
    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}

/// One case: the hops' impairments (one, or two with a relay between) and the messages.
#[derive(Debug)]
struct Case {
    seed: u64,
    hops: Vec<Impairment>,
    /// Each message's length, and whether the receiver refuses it.
    messages: Vec<(usize, bool)>,
}

impl Case {
    fn draw(seed: u64) -> Case {
        let mut d = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let hop_count = if d.one_in(3) { 2 } else { 1 };
        let hops = (0..hop_count).map(|_| hop(&mut d)).collect();
        let messages = (0..1 + d.below(12))
            .map(|_| {
                // From 8 bytes to 512 KiB, as many short as long.
                let len = 8usize << d.below(17);
                (len + d.below(len as u64) as usize, d.one_in(4))
            })
            .collect();
        Case { seed, hops, messages }
    }

    fn via_relay(&self) -> bool {
        self.hops.len() == 2
    }
}

/// A hop's impairment: each kind now and then, within what a connection is meant to
/// survive (an outage shorter than the idle timeout, loss that leaves the path usable).
fn hop(d: &mut Draw) -> Impairment {
    let ms = Duration::from_millis;
    Impairment {
        seed: d.next(),
        loss: d.pick(&[0.0, 0.0, 0.005, 0.02, 0.05]),
        delay: ms(d.pick(&[0, 1, 5, 20, 40])),
        jitter: ms(d.pick(&[0, 0, 2, 10])),
        burst: d.one_in(4).then_some(Burst {
            enter: 0.01,
            leave: 0.25,
            slot: ms(5),
        }),
        duplicate: d.pick(&[0.0, 0.0, 0.01]),
        reorder: d.pick(&[0.0, 0.0, 0.02]),
        corrupt: d.pick(&[0.0, 0.0, 0.01]),
        truncate: d.pick(&[0.0, 0.0, 0.01]),
        rate: d.pick(&[None, None, Some(5_000_000), Some(40_000_000)]),
        queue_bytes: d.pick(&[64 << 10, 256 << 10]),
        outage: d.one_in(4).then(|| Outage {
            after: ms(20 + d.below(600)),
            lasts: ms(100 + d.below(3_900)),
        }),
        ..Impairment::default()
    }
}

/// Long enough for the longest outage drawn (4 s) and the probes after it (2 s apart at
/// most), short enough that a stalled connection ends within the case's limit.
fn config() -> Config {
    Config {
        handshake_timeout: weir_core::time::Duration::from_secs(10),
        idle_timeout: weir_core::time::Duration::from_secs(10),
        ..Config::default()
    }
}

/// Message `i` of `len` bytes: its index first, so the receiver knows which it is.
fn message(seed: u64, i: u32, len: usize) -> Bytes {
    let mut m = i.to_le_bytes().to_vec();
    m.extend_from_slice(&payload(len - 4, (seed as u32) ^ (i + 1)));
    Bytes::from(m)
}

/// The receiver's side of one message: reads its index, refuses it there if the case says
/// so, else reads it to its end. Its index and what it read (`None`: refused).
async fn receive(mut stream: weir_tokio::RecvStream, refuse: Vec<bool>) -> (u32, Option<Bytes>) {
    let mut head = Vec::new();
    while head.len() < 4 {
        let chunk = stream
            .read_chunk(4 - head.len())
            .await
            .unwrap()
            .expect("a message of 8 bytes or more");
        head.extend_from_slice(&chunk);
    }
    let i = u32::from_le_bytes(head[..4].try_into().unwrap());
    if refuse[i as usize] {
        stream.stop(refusal(i)).unwrap();
        return (i, None);
    }
    let rest = stream.read_to_end(1 << 30).await.unwrap();
    let mut whole = head;
    whole.extend_from_slice(&rest);
    (i, Some(Bytes::from(whole)))
}

/// A relay that pipes every stream `from` opens on to `onward`.
async fn relay(relay: Endpoint, from: Connection, onward: Connection) {
    while let Ok(stream) = from.accept_stream().await {
        if let Ok(pipe) = relay.pipe(stream, &[&onward]).await {
            // How it ends is the sender's to hear; the relay only keeps it running.
            tokio::spawn(async move { pipe.wait().await });
        }
    }
}

async fn run(case: &Case) -> Result<String, String> {
    let start = Instant::now();
    let receiver = Endpoint::bind(local(), config()).unwrap();
    let sender = Endpoint::bind(local(), config()).unwrap();
    let near = Proxy::start(receiver.local_addr(), case.hops[0]).unwrap();
    let connect = |e: Error| format!("connect: {e}");
    // Through a relay: sender -> hop 1 -> relay -> hop 0 -> receiver.
    let (conn, relayed) = match case.hops.get(1) {
        Some(&hop) => {
            let middle = Endpoint::bind(local(), config()).unwrap();
            let far = Proxy::start(middle.local_addr(), hop).unwrap();
            let onward = middle.connect(near.addr()).await.map_err(connect)?;
            let conn = sender.connect(far.addr()).await.map_err(connect)?;
            let from = middle.accept().await.map_err(connect)?;
            (conn, Some((far, tokio::spawn(relay(middle, from, onward)))))
        }
        None => (sender.connect(near.addr()).await.map_err(connect)?, None),
    };
    let incoming = receiver.accept().await.map_err(|e| format!("accept: {e}"))?;
    let refuse: Vec<bool> = case.messages.iter().map(|&(_, r)| r).collect();
    let count = case.messages.len();
    let reader = {
        let (incoming, refuse) = (incoming.clone(), refuse.clone());
        tokio::spawn(async move {
            let mut readers = Vec::new();
            for _ in 0..count {
                let stream = incoming.accept_stream().await.unwrap();
                readers.push(tokio::spawn(receive(stream, refuse.clone())));
            }
            let mut read = Vec::new();
            for r in readers {
                read.push(r.await.unwrap());
            }
            read
        })
    };
    let sends: Vec<_> = case
        .messages
        .iter()
        .enumerate()
        .map(|(i, &(len, _))| {
            let (conn, m) = (conn.clone(), message(case.seed, i as u32, len));
            tokio::spawn(async move { conn.send_message_with(m, Confirm::Delivered).await })
        })
        .collect();
    let relays = u64::from(case.via_relay());
    for (i, send) in sends.into_iter().enumerate() {
        let heard = send.await.unwrap();
        let expected = if refuse[i] {
            Err(Error::NotDelivered(Delivery::Failed {
                code: refusal(i as u32),
                relays,
            }))
        } else {
            Ok(())
        };
        if format!("{heard:?}") != format!("{expected:?}") {
            return Err(format!(
                "message {i}: the sender heard {heard:?}, not {expected:?}"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, got) in reader.await.unwrap() {
        if !seen.insert(i) {
            return Err(format!("message {i} read twice"));
        }
        match got {
            Some(bytes) if bytes != message(case.seed, i, case.messages[i as usize].0) => {
                return Err(format!("message {i} read changed"));
            }
            _ => {}
        }
    }
    let (took, stats) = (start.elapsed(), conn.stats().await);
    conn.close(0, "done").await.ok();
    drop((relayed, near));
    let s = stats.unwrap_or_default();
    Ok(format!(
        "{count} messages ({} refused, {} bytes) in {:.2?}: datagrams sent {}, lost {}, probes {}",
        refuse.iter().filter(|r| **r).count(),
        case.messages.iter().map(|&(len, _)| len).sum::<usize>(),
        took,
        s.datagrams_sent,
        s.packets_lost,
        s.probes
    ))
}

/// A hop in a few words, for the case's line.
fn describe(h: &Impairment) -> String {
    let mut words = vec![format!("{} ms", h.delay.as_millis())];
    if h.loss > 0.0 {
        words.push(format!("loss {}%", h.loss * 100.0));
    }
    if h.burst.is_some() {
        words.push("bursts".into());
    }
    if let Some(rate) = h.rate {
        words.push(format!("{} MB/s", rate / 1_000_000));
    }
    if let Some(o) = h.outage {
        words.push(format!("outage {:.1?} at {:.1?}", o.lasts, o.after));
    }
    words.join(", ")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_on_random_paths_arrive_intact_or_are_refused_and_each_sender_hears_the_truth() {
    let (first, cases) = (env("WEIR_SOAK_SEED", SEED), env("WEIR_SOAK_CASES", CASES));
    for seed in first..first + cases {
        let case = Case::draw(seed);
        let outcome = tokio::time::timeout(LIMIT, run(&case))
            .await
            .unwrap_or_else(|_| Err(format!("stalled past {LIMIT:?}")));
        match outcome {
            Ok(line) => {
                let hops: Vec<String> = case.hops.iter().map(describe).collect();
                println!("seed {seed} [{}]: {line}", hops.join(" | "));
            }
            Err(why) => panic!("seed {seed}: {why}\n{case:#?}"),
        }
    }
}
