//! What the adapters' real-socket soaks share (weir-tokio's and weir-std's `tests/soak.rs`):
//! the random cases, the messages, and what each end must have seen when a case ends.
//!
//! A case is a path through the [`proxy`](crate::proxy) (loss and bursts of it,
//! duplication, reordering, damaged and cut datagrams, delay and jitter, a bottleneck, an
//! outage, a policer, a smaller MTU, a change of rate or delay, a client whose address
//! changes), straight or through a relay that pipes each message on, and messages each way,
//! sent at once with `Confirm::Delivered`, some of which their receiver refuses after their
//! first bytes. It asks what weir promises end to end (spec §8, Delivery): every message
//! read is intact and read once, and its sender hears "delivered"; every message refused is
//! heard by its sender as not delivered, with the receiver's code and the relays counted;
//! nothing else. A case's seed gives its path and messages again, not its timing.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use weir_core::Config;
use weir_driver::{Delivery, Error};

use crate::proxy::{Burst, Impairment, Outage, PathChange};
use crate::Policer;

/// How long a case may take before it counts as stalled.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The seeds of the cases to run: `WEIR_SOAK_CASES` of them (else `cases`) from
/// `WEIR_SOAK_SEED` (else 1).
pub fn seeds(cases: u64) -> std::ops::Range<u64> {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let first = env("WEIR_SOAK_SEED", 1);
    first..first + env("WEIR_SOAK_CASES", cases)
}

/// Which way a message goes: from the end that connects (through the relay, if any) to the
/// end that accepts, or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// From the connecting end to the accepting one.
    Forth,
    /// From the accepting end to the connecting one.
    Back,
}

/// One message of a case.
#[derive(Clone, Copy, Debug)]
pub struct Message {
    /// Its length in bytes (8 or more: its index comes first).
    pub len: usize,
    /// Whether its receiver refuses it after reading its index.
    pub refused: bool,
}

/// One case: the hops' impairments (one, or two with a relay between) and the messages.
#[derive(Debug)]
pub struct Case {
    /// What drew it.
    pub seed: u64,
    /// The path at the accepting end first; through a relay, the connecting end's second.
    pub hops: Vec<Impairment>,
    /// The messages the connecting end sends.
    pub forth: Vec<Message>,
    /// The messages the accepting end sends back (none in half the cases).
    pub back: Vec<Message>,
}

impl Case {
    /// The case `seed` draws. (What later kinds of harm a hop may get are drawn last, so
    /// that a seed keeps the path and messages it drew before they were added.)
    pub fn draw(seed: u64) -> Case {
        let mut d = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let hop_count = if d.one_in(3) { 2 } else { 1 };
        let mut hops: Vec<Impairment> = (0..hop_count).map(|_| hop(&mut d)).collect();
        let forth_count = 1 + d.below(12);
        let forth = messages(&mut d, forth_count);
        let back_count = if d.one_in(2) { 1 + d.below(6) } else { 0 };
        let back = messages(&mut d, back_count);
        for h in &mut hops {
            more_harm(&mut d, h);
        }
        Case {
            seed,
            hops,
            forth,
            back,
        }
    }

    /// Whether the messages go through a relay.
    pub fn via_relay(&self) -> bool {
        self.hops.len() == 2
    }

    /// The messages that go `way`.
    pub fn messages(&self, way: Way) -> &[Message] {
        match way {
            Way::Forth => &self.forth,
            Way::Back => &self.back,
        }
    }

    /// The bytes of message `i` going `way`: its index first, so that its receiver knows
    /// which it is.
    pub fn message(&self, way: Way, i: u32) -> Bytes {
        let len = self.messages(way)[i as usize].len;
        let mut m = i.to_le_bytes().to_vec();
        let way_bit = if way == Way::Back { 0x8000_0000 } else { 0 };
        let mut x = ((self.seed as u32) ^ (i + 1) ^ way_bit) | 1;
        m.extend((4..len).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        Bytes::from(m)
    }

    /// Whether what the sender of message `i` going `way` heard is the truth: delivered,
    /// or, for a refused one, not delivered with the receiver's code and the relays.
    pub fn check_heard(&self, way: Way, i: usize, heard: &Result<(), Error>) -> Result<(), String> {
        let expected = if self.messages(way)[i].refused {
            Err(Error::NotDelivered(Delivery::Failed {
                code: refusal(i as u32),
                relays: u64::from(self.via_relay()),
            }))
        } else {
            Ok(())
        };
        if format!("{heard:?}") == format!("{expected:?}") {
            Ok(())
        } else {
            Err(format!(
                "{way:?} message {i}: its sender heard {heard:?}, not {expected:?}"
            ))
        }
    }

    /// Whether what the receiver of the messages going `way` read (each message's index,
    /// and its bytes, `None` if it refused it) is every message once, intact.
    pub fn check_read(&self, way: Way, read: &[(u32, Option<Bytes>)]) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (i, got) in read {
            if self.messages(way).get(*i as usize).is_none() {
                return Err(format!("{way:?}: a message with no index {i} read"));
            }
            if !seen.insert(*i) {
                return Err(format!("{way:?} message {i} read twice"));
            }
            match got {
                Some(bytes) if *bytes != self.message(way, *i) => {
                    return Err(format!("{way:?} message {i} read changed"));
                }
                _ => {}
            }
        }
        if seen.len() != self.messages(way).len() {
            return Err(format!(
                "{way:?}: {} of {} messages read",
                seen.len(),
                self.messages(way).len()
            ));
        }
        Ok(())
    }

    /// The case in a line: its hops in a few words each, its messages' count and bytes.
    pub fn describe(&self) -> String {
        let hops: Vec<String> = self.hops.iter().map(describe).collect();
        let count = |way| {
            let m = self.messages(way);
            let refused = m.iter().filter(|m| m.refused).count();
            let bytes: usize = m.iter().map(|m| m.len).sum();
            format!("{} ({refused} refused, {bytes} bytes)", m.len())
        };
        format!(
            "seed {}: [{}]; forth {}, back {}",
            self.seed,
            hops.join("] via relay ["),
            count(Way::Forth),
            count(Way::Back)
        )
    }
}

/// The code the receiver refuses message `i` with.
pub fn refusal(i: u32) -> u64 {
    0x50_0000 + u64::from(i)
}

/// The index a message's first four bytes give.
pub fn index(head: &[u8]) -> u32 {
    u32::from_le_bytes([head[0], head[1], head[2], head[3]])
}

/// Long enough for the longest outage drawn (4 s) and the probes after it (2 s apart at
/// most), short enough that a stalled connection ends within the case's limit.
pub fn config() -> Config {
    Config {
        handshake_timeout: weir_core::time::Duration::from_secs(10),
        idle_timeout: weir_core::time::Duration::from_secs(10),
        ..Config::default()
    }
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

/// `count` messages from 8 bytes to 1 MiB, as many short as long, a quarter refused.
fn messages(d: &mut Draw, count: u64) -> Vec<Message> {
    (0..count)
        .map(|_| {
            let len = 8usize << d.below(17);
            Message {
                len: len + d.below(len as u64) as usize,
                refused: d.one_in(4),
            }
        })
        .collect()
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

/// The kinds of harm added after the first: each in about one hop of eight.
fn more_harm(d: &mut Draw, h: &mut Impairment) {
    let ms = Duration::from_millis;
    // The client's NAT gives it a new address (a phone moving between networks).
    if d.one_in(8) {
        h.readdress = Some(ms(50 + d.below(1_500)));
    }
    // An ISP's token bucket on the way to the server.
    if d.one_in(8) {
        h.policer = Some(Policer {
            rate: d.pick(&[10_000_000, 40_000_000, 100_000_000]),
            burst_bytes: d.pick(&[16 << 10, 64 << 10]),
        });
    }
    // A tunnel's smaller MTU: what weir's path MTU probes find larger is lost.
    if d.one_in(8) {
        h.mtu = Some(d.pick(&[1_232, 1_280, 1_400]));
    }
    // A radio adapting its rate, or a route moving.
    if d.one_in(8) {
        h.change = Some(PathChange {
            after: ms(50 + d.below(1_500)),
            rate: d.pick(&[None, Some(2_000_000), Some(20_000_000)]),
            delay: d.pick(&[None, Some(ms(1)), Some(ms(60))]),
            mtu: None,
        });
    }
}

/// A hop in a few words.
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
    if let Some(after) = h.readdress {
        words.push(format!("new address at {after:.1?}"));
    }
    if let Some(p) = h.policer {
        words.push(format!(
            "policer {} Mbit/s, {} kB",
            p.rate / 1_000_000,
            p.burst_bytes >> 10
        ));
    }
    if let Some(mtu) = h.mtu {
        words.push(format!("mtu {mtu}"));
    }
    if let Some(c) = h.change {
        words.push(format!(
            "change at {:.1?} to {:?}, {:?}",
            c.after, c.rate, c.delay
        ));
    }
    words.join(", ")
}
