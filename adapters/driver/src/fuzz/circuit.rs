//! The `circuit` fuzz target (feature `fuzzing`; fuzz/README.md): a client, a circuit relay
//! and a server, each a deterministic [`Driver`](crate::Driver) behind the handles, on the
//! fuzzer's network (spec/protocol.md §12). The server reserves at the relay
//! (`Endpoint::reserve`) and echoes every message it is sent; the client connects to it
//! through the relay (`Endpoint::connect_via`, or `connect_to_peer_via` racing the relay
//! against the server's address), sends messages and reads their echoes, lets connections
//! go and closes them; either end may close its connection to the relay. The relay's
//! circuits are small (16 KiB, 20 s, two a peer), so that their limits end some. Once a
//! circuit carries a connection, the ends punch a hole and may move to the direct path
//! (the fuzzer's network carries any datagram between any two addresses).
//!
//! Input: one fuzzer input, read as a script of at most [`MAX_STEPS`] steps. Output: a
//! digest of every datagram sent and every answer the applications were given
//! ([`Target::Circuit`](super::Target::Circuit)); the corpus replay
//! (`adapters/driver/tests/fuzz_corpus.rs`) runs each input twice and compares them.
//!
//! Oracles, on every answer:
//! - a connection through the relay is to the server's key (the relay sees only
//!   ciphertext, spec §12.3);
//! - every message the server reads is one the client sent, unchanged, read once; every
//!   echo the client reads is the message it sent on that connection, unchanged, in order;
//!   "delivered" only once the server read it;
//! - liveness: once the fuzzer stops, an undisturbed network with the clock moving brings
//!   every call that ends by itself to an answer within [`SETTLE_LIMIT`] of simulated time;
//! - nothing outlives its use: once every handle is gone, within a day of simulated time no
//!   endpoint's core holds a connection and no driver keeps anything of one;
//! - the timers and determinism of module `world`, as for `driver`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::rc::Rc;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use weir_core::crypto::Primitives;
use weir_core::{PublicKey, RelayConfig};

use super::oracle::{content, named, Kind, MAX_LEN};
use super::world::{fnv, World};
use super::{addrs, SETTLE_LIMIT};
use crate::{Confirm, Connection, Endpoint, Error};

/// Steps read from one input.
pub const MAX_STEPS: usize = 128;

/// The ports the three endpoints record their traces under
/// ([`Target::record`](super::Target::record)): the client, the relay, the server.
pub const PORTS: [u16; 3] = [1000, 2000, 3000];

/// How long, after the last handle went, the endpoints are given to have let go of every
/// connection: beyond any idle time and close on the fuzzer's network (as `pool`'s).
const LET_GO: Duration = Duration::from_secs(24 * 3600);

/// The relay's limits: small, so that the fuzzer meets them.
fn relay_config() -> RelayConfig {
    RelayConfig {
        max_circuits_per_peer: 2,
        circuit_bytes: 16 << 10,
        circuit_duration: weir_core::time::Duration::from_secs(20),
        ..RelayConfig::default()
    }
}

/// One of the client's connections to the server, and what went on it.
struct Link {
    conn: Connection,
    /// The messages sent on it whose echo was not read yet, by number.
    unechoed: BTreeSet<u32>,
}

/// What the applications did and were given.
struct Log {
    server_key: PublicKey,
    /// The client's connections to the server, by number.
    links: BTreeMap<u32, Link>,
    next_link: u32,
    /// Per message the client sent: whether the server read it.
    read: Vec<bool>,
    /// The client's connection to the relay, and the server's, while held.
    to_relay: [Option<Connection>; 2],
    /// The server's connections from the client (direct or through the relay).
    accepted: Vec<Connection>,
    answers: Vec<u8>,
}

type LogRef = Rc<RefCell<Log>>;

impl Log {
    fn answer(&mut self, what: &str, detail: impl std::fmt::Debug) {
        // Writing to a Vec cannot fail.
        let _ = writeln!(self.answers, "{what} {detail:?}");
    }

    /// A connect ended with `got`: a connection to the server's key.
    fn connected(&mut self, how: &str, got: std::result::Result<Connection, Error>) -> Option<u32> {
        match got {
            Ok(c) => {
                assert_eq!(
                    c.peer_key(),
                    Some(self.server_key),
                    "a connection through the relay ({how}) to another peer"
                );
                self.next_link += 1;
                let n = self.next_link;
                self.answer("connected", (how, n));
                self.links.insert(
                    n,
                    Link {
                        conn: c,
                        unechoed: BTreeSet::new(),
                    },
                );
                Some(n)
            }
            Err(e) => {
                self.answer("not connected", (how, e.to_string()));
                None
            }
        }
    }

    /// The server read message `m`: one the client sent, read once.
    fn server_read(&mut self, m: &[u8]) -> u32 {
        let Some(k) = named(Kind::Message, m) else {
            panic!("the server read a message the client did not send: {m:?}");
        };
        let read = self.read.get_mut(k as usize).expect("a message that was sent");
        assert!(!*read, "the server read message {k} twice");
        *read = true;
        self.answer("server read", k);
        k
    }

    /// Message `k`'s send on link `n` ended with `r`: "delivered" only once the server read
    /// it.
    fn sent(&mut self, n: u32, k: u32, confirm: Confirm, r: &std::result::Result<(), Error>) {
        super::oracle::refusal_not_as_a_write(format_args!("message {k}"), confirm, r);
        if r.is_ok() && confirm == Confirm::Delivered {
            assert!(
                self.read[k as usize],
                "message {k} reported delivered, never read"
            );
        }
        self.answer("sent", (n, k, r.as_ref().map_err(Error::to_string)));
    }

    /// The client read `m` on link `n`: the echo of a message it sent there, read once.
    /// (In any order: each message is a stream of its own, and the server reads and
    /// echoes them as they come whole.)
    fn echo(&mut self, n: u32, m: &[u8]) {
        let link = self.links.get_mut(&n).expect("a link that reads");
        let k = named(Kind::Message, m);
        assert!(
            k.is_some_and(|k| link.unechoed.remove(&k)),
            "link {n} read an echo of no message sent on it and not echoed yet ({k:?})"
        );
        self.answer("echo", (n, k));
    }
}

/// Runs one input (its endpoints on `primitives`, each recording its trace at `trace` if
/// given): the run's digest and the answers ([`Target`](super::Target)'s calls).
pub(super) fn run_logged(data: &[u8], primitives: Primitives, trace: Option<&str>) -> (u64, Vec<u8>) {
    let configure = |i: usize, config: weir_core::Config| match i {
        1 => weir_core::Config {
            relay: Some(relay_config()),
            ..config
        },
        _ => config,
    };
    let mut w = World::configured(&addrs(&PORTS), primitives, trace, &configure);
    let endpoints = [w.endpoint(0), w.endpoint(1), w.endpoint(2)];
    let clean = "a clean network connects";
    let (client_side, relay_client) = w.connect(&endpoints[0], &endpoints[1]).expect(clean);
    let (server_side, relay_server) = w.connect(&endpoints[2], &endpoints[1]).expect(clean);
    let log = Rc::new(RefCell::new(Log {
        server_key: endpoints[2].public_key(),
        links: BTreeMap::new(),
        next_link: 0,
        read: Vec::new(),
        to_relay: [Some(client_side), Some(server_side)],
        accepted: Vec::new(),
        answers: Vec::new(),
    }));
    // The relay's ends of both connections live as long as the run.
    let relay_ends = [relay_client, relay_server];
    serve(&mut w, &log, &endpoints[2]);
    w.run_script(data, MAX_STEPS, |w, u| step(w, &log, &endpoints, u));
    w.settle(SETTLE_LIMIT);
    drop(relay_ends);
    let_everything_go(&mut w, &log, &endpoints);
    let answers = std::mem::take(&mut log.borrow_mut().answers);
    (fnv(w.digest, &answers), answers)
}

/// The server takes every connection the client opens and echoes what it is sent on it.
fn serve(w: &mut World, log: &LogRef, server: &Rc<Endpoint>) {
    let (log, server) = (Rc::clone(log), Rc::clone(server));
    let spawner = Rc::clone(&w.spawned);
    w.spawn("accept".into(), false, async move {
        while let Ok(c) = server.accept().await {
            let (log2, echoing) = (Rc::clone(&log), c.clone());
            log.borrow_mut().accepted.push(c);
            spawner.borrow_mut().push(super::world::Task {
                future: Box::pin(async move {
                    while let Ok(m) = echoing.recv_message().await {
                        log2.borrow_mut().server_read(&m);
                        if echoing.send_message(m).await.is_err() {
                            return;
                        }
                    }
                }),
                finite: false,
                what: "echo".into(),
            });
        }
    });
}

/// Reads one step from `u` and takes it.
fn step(w: &mut World, log: &LogRef, endpoints: &[Rc<Endpoint>; 3], u: &mut Unstructured<'_>) -> Result<()> {
    // Weighted: deliveries most often.
    match u.int_in_range(0u8..=22)? {
        op @ 0..=12 => w.network_step(op, u)?,
        13 => {
            let relay = log.borrow().to_relay[1].clone();
            if let Some(relay) = relay {
                let (log, server) = (Rc::clone(log), Rc::clone(&endpoints[2]));
                w.spawn("reserve".into(), true, async move {
                    let r = server.reserve(&relay).await;
                    log.borrow_mut().answer("reserved", r.map_err(|e| e.to_string()));
                });
            }
        }
        14..=15 => connect(w, log, endpoints, u.arbitrary::<bool>()?),
        16..=18 => {
            let (pick, len) = (
                u.arbitrary::<u8>()?,
                4 + usize::from(u.int_in_range(0u16..=(MAX_LEN - 4) as u16)?),
            );
            let confirm = *u.choose(&[Confirm::Queued, Confirm::Acknowledged, Confirm::Delivered])?;
            send(w, log, usize::from(pick), len, confirm);
        }
        19 => {
            let pick = usize::from(u.arbitrary::<u8>()?);
            let mut l = log.borrow_mut();
            let n = l.links.keys().nth(pick % l.links.len().max(1)).copied();
            if let Some(link) = n.and_then(|n| l.links.remove(&n)) {
                l.answer("let go", n);
                drop(l);
                drop(link);
            }
        }
        20 => {
            let (pick, code) = (usize::from(u.arbitrary::<u8>()?), u64::from(u.arbitrary::<u8>()?));
            let c = {
                let l = log.borrow();
                l.links
                    .values()
                    .nth(pick % l.links.len().max(1))
                    .map(|k| k.conn.clone())
            };
            if let Some(c) = c {
                let log = Rc::clone(log);
                w.spawn("close".into(), true, async move {
                    let r = c.close(code, "fuzz").await;
                    log.borrow_mut()
                        .answer("closed", (code, r.map_err(|e| e.to_string())));
                });
            }
        }
        _ => {
            let (side, code) = (
                usize::from(u.arbitrary::<bool>()?),
                u64::from(u.arbitrary::<u8>()?),
            );
            let c = log.borrow_mut().to_relay[side].take();
            if let Some(c) = c {
                let log = Rc::clone(log);
                w.spawn(format!("close to relay {side}"), true, async move {
                    let r = c.close(code, "fuzz").await;
                    log.borrow_mut()
                        .answer("closed to relay", (side, code, r.map_err(|e| e.to_string())));
                });
            }
        }
    }
    Ok(())
}

/// The client connects to the server through the relay: `connect_via`, or
/// `connect_to_peer_via` (`racing`) with the server's address too.
fn connect(w: &mut World, log: &LogRef, endpoints: &[Rc<Endpoint>; 3], racing: bool) {
    let Some(relay) = log.borrow().to_relay[0].clone() else {
        return;
    };
    let (log, client) = (Rc::clone(log), Rc::clone(&endpoints[0]));
    let (key, addr) = (endpoints[2].public_key(), endpoints[2].local_addr());
    w.spawn("connect".into(), true, async move {
        let (how, got) = match racing {
            true => (
                "racing",
                client.connect_to_peer_via(key, &[addr], &[&relay]).await,
            ),
            false => ("via", client.connect_via(&relay, key).await),
        };
        log.borrow_mut().connected(how, got);
    });
}

/// The client sends a message of `len` bytes on link `pick`, waiting for `confirm`, then
/// reads its echo.
fn send(w: &mut World, log: &LogRef, pick: usize, len: usize, confirm: Confirm) {
    let picked = {
        let mut l = log.borrow_mut();
        let n = l.links.keys().nth(pick % l.links.len().max(1)).copied();
        let k = l.read.len() as u32;
        n.and_then(|n| {
            let link = l.links.get_mut(&n)?;
            link.unechoed.insert(k);
            Some((n, k, link.conn.clone()))
        })
    };
    let Some((n, k, conn)) = picked else {
        return;
    };
    log.borrow_mut().read.push(false);
    let log = Rc::clone(log);
    w.spawn(format!("send {k} on {n}"), true, async move {
        let m: Bytes = content(Kind::Message, k, len);
        let r = conn.send_message_with(m, confirm).await;
        log.borrow_mut().sent(n, k, confirm, &r);
        if r.is_ok() {
            match conn.recv_message().await {
                Ok(echo) if log.borrow().links.contains_key(&n) => log.borrow_mut().echo(n, &echo),
                Ok(_) => {}
                Err(e) => log.borrow_mut().answer("no echo", (n, k, e.to_string())),
            }
        }
    });
}

/// Every handle goes; within [`LET_GO`], no endpoint holds a connection or keeps anything
/// of one.
fn let_everything_go(w: &mut World, log: &LogRef, endpoints: &[Rc<Endpoint>; 3]) {
    w.end_tasks();
    // A connection that comes up at the server from now on (the loser of a race, say) is
    // taken and let go at once: one never taken is kept for an `accept`, by design.
    let server = Rc::clone(&endpoints[2]);
    w.spawn("accept and let go".into(), false, async move {
        while let Ok(c) = server.accept().await {
            drop(c);
        }
    });
    {
        let mut l = log.borrow_mut();
        l.links.clear();
        l.to_relay = [None, None];
        l.accepted.clear();
    }
    let held = |w: &World| -> Vec<(usize, usize)> {
        (0..3)
            .map(|i| (endpoints[i].load().connections, w.connections_kept(i)))
            .collect()
    };
    let limit = w.now + LET_GO;
    w.run_until(limit, &|w| held(w).iter().any(|&h| h != (0, 0)));
    let left = held(w);
    assert!(
        left.iter().all(|&h| h == (0, 0)),
        "{LET_GO:?} after every handle went, the client, relay and server still hold \
         (core connections, driver records) {left:?}; the answers:\n{}",
        String::from_utf8_lossy(&log.borrow().answers)
    );
}
