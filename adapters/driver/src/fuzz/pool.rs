//! The `pool` fuzz target (feature `fuzzing`; fuzz/README.md): a client and two servers,
//! each a deterministic [`Driver`](crate::Driver) behind the handles, on the fuzzer's
//! network. The client dials the servers through its connection pool (`Endpoint::dial` by
//! key, `Endpoint::dial_addr` by address), holds what it is given, lets handles go, gives
//! dials up (dropping the call), closes connections, and sets the pool's idle time; a
//! server may close every connection it has from the client. The network delivers in any
//! order, drops, duplicates, corrupts, and moves the clock.
//!
//! Input: one fuzzer input, read as a script of at most [`MAX_STEPS`] steps. Output: a
//! digest of every datagram sent and every answer the client was given
//! ([`Target::Pool`](super::Target::Pool)); the corpus replay
//! (`adapters/driver/tests/fuzz_corpus.rs`) runs each input twice and compares them.
//!
//! Oracles (the driver's module `pool`), on every answer:
//! - a dial gives a connection to the peer it named: by key, to that key; by address, to
//!   the server there;
//! - one connection per pool key: a dial gives the connection the last one for the same
//!   key gave, while the client holds a handle on it and has neither closed it nor been
//!   told that a connection to that server went down;
//! - the client's peer events never say a server's connection went down more often than
//!   they said one came up;
//! - liveness: once the fuzzer stops, an undisturbed network with the clock moving brings
//!   every dial to an answer within [`SETTLE_LIMIT`] of simulated time;
//! - nothing outlives its use: once every handle is gone, the idle time and the closes' own
//!   time have passed (a day of simulated time at most), the client's core holds no connection and its
//!   driver keeps nothing of one;
//! - the timers and determinism of module `world`, as for `driver`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use weir_core::crypto::Primitives;
use weir_core::{ConnectionHandle, PublicKey};

use super::world::{fnv, World};
use super::{addrs, SETTLE_LIMIT};
use crate::{Connection, Endpoint, Error, PeerEvent};

/// Steps read from one input.
pub const MAX_STEPS: usize = 128;

/// The ports the three endpoints record their traces under
/// ([`Target::record`](super::Target::record)): the client, the first server, the second.
pub const PORTS: [u16; 3] = [1000, 2000, 3000];

/// How long, after the last handle went, the client is given to have closed every
/// connection: the idle time, then the close's own time (spec §8, Liveness and close: a
/// linger of up to three probe timeouts, then a closing period of three), which on the
/// fuzzer's network, whose clock jumps by seconds, may be many minutes (seen: 11): a
/// probe timeout grows with the round-trip time measured and doubles with each probe
/// unanswered. A day of simulated time, passed from deadline to deadline, is beyond any of
/// them; what is still held then has no end.
const LET_GO: Duration = Duration::from_secs(24 * 3600);

/// What a dial named: a server (0 or 1), by its key or by its address. Each is a key of
/// the client's pool.
#[derive(Clone, Copy, Debug)]
struct Dialed {
    server: usize,
    by_key: bool,
}

impl Dialed {
    /// Its place among the pool keys.
    fn slot(self) -> usize {
        self.server * 2 + usize::from(self.by_key)
    }
}

/// The connection the last successful dial of a pool key gave.
#[derive(Clone, Copy)]
struct Last {
    id: ConnectionHandle,
    /// It may have ended since: the client closed it or let go of every handle on it (the
    /// pool then closes it after the idle time), or was told a connection to its server
    /// went down.
    may_have_ended: bool,
}

/// What the client did and was given.
struct Log {
    /// The servers' keys.
    keys: [PublicKey; 2],
    /// Connections the client holds, with the dial that gave each.
    held: Vec<(Dialed, Connection)>,
    /// Per pool key ([`Dialed::slot`]).
    last: [Option<Last>; 4],
    /// Per server: the client's peer events' ups less downs.
    up: [u64; 2],
    /// Dials under way, by their number: the world's call number. (A call's number is
    /// reused once it ended, so an ended dial must leave here.)
    dials: BTreeMap<u32, usize>,
    /// The next dial's number.
    next_dial: u32,
    /// Per server: the connections it has from the client.
    accepted: [Vec<Connection>; 2],
    /// Every answer given, a line each, in order: part of the run's digest.
    answers: Vec<u8>,
}

type LogRef = Rc<RefCell<Log>>;

impl Log {
    fn new(keys: [PublicKey; 2]) -> Log {
        Log {
            keys,
            held: Vec::new(),
            last: [None; 4],
            up: [0; 2],
            dials: BTreeMap::new(),
            next_dial: 0,
            accepted: Default::default(),
            answers: Vec::new(),
        }
    }

    fn answer(&mut self, what: &str, detail: impl std::fmt::Debug) {
        // Writing to a Vec cannot fail.
        let _ = writeln!(self.answers, "{what} {detail:?}");
    }

    /// The dial `d` ended with `got`: a connection to the peer it named, and the one the
    /// last dial of that key gave while that one is known to live.
    fn dialed(&mut self, d: Dialed, got: std::result::Result<Connection, Error>) {
        match got {
            Ok(c) => {
                self.given(d, c.peer_key(), c.id());
                self.held.push((d, c));
            }
            Err(e) => self.answer("dial failed", (d, e.to_string())),
        }
    }

    /// The dial `d` gave connection `id`, to `peer`: the checks of [`dialed`](Self::dialed).
    fn given(&mut self, d: Dialed, peer: Option<PublicKey>, id: ConnectionHandle) {
        assert_eq!(
            peer,
            Some(self.keys[d.server]),
            "a dial of server {} ({d:?}) gave a connection to another peer",
            d.server
        );
        let last = self.last[d.slot()];
        if let Some(last) = last {
            assert!(
                last.id == id || last.may_have_ended,
                "a dial ({d:?}) gave a second connection while the pool's first, held and not \
                 known to have ended, was live"
            );
        }
        self.last[d.slot()] = Some(Last {
            id,
            may_have_ended: false,
        });
        let how = match last.is_some_and(|l| l.id == id) {
            true => "again",
            false => "new",
        };
        self.answer("dialed", (d, id.index(), how));
    }

    /// Connection `id` may have ended: every pool key's record of it says so.
    fn may_have_ended(&mut self, id: ConnectionHandle) {
        for last in self.last.iter_mut().flatten().filter(|l| l.id == id) {
            last.may_have_ended = true;
        }
    }

    /// The client let go of held connection `i`: if it held no other handle on that
    /// connection, the pool may close it once idle.
    fn let_go(&mut self, i: usize) -> Connection {
        let (_, c) = self.held.remove(i);
        if !self.held.iter().any(|(_, h)| h.id() == c.id()) {
            self.may_have_ended(c.id());
        }
        c
    }

    /// The client's next peer event.
    fn peer_event(&mut self, e: &PeerEvent) {
        let server = |peer: &Option<PublicKey>| self.keys.iter().position(|k| Some(k) == peer.as_ref());
        match e {
            PeerEvent::Up { peer, .. } => {
                if let Some(s) = server(peer) {
                    self.up[s] += 1;
                }
            }
            PeerEvent::Down { peer, .. } => {
                if let Some(s) = server(peer) {
                    assert!(
                        self.up[s] > 0,
                        "server {s}'s connection went down, never having come up"
                    );
                    self.up[s] -= 1;
                    for by_key in [false, true] {
                        if let Some(last) = &mut self.last[Dialed { server: s, by_key }.slot()] {
                            last.may_have_ended = true;
                        }
                    }
                }
            }
            PeerEvent::Missed(n) => panic!("{n} peer events missed, with one call always taking them"),
        }
        self.answer("peer event", e);
    }
}

/// Runs one input (its endpoints on `primitives`, each recording its trace at `trace` if
/// given): the run's digest and the answers ([`Target`](super::Target)'s calls).
pub(super) fn run_logged(data: &[u8], primitives: Primitives, trace: Option<&str>) -> (u64, Vec<u8>) {
    let mut w = World::new(&addrs(&PORTS), primitives, trace);
    let endpoints = [w.endpoint(0), w.endpoint(1), w.endpoint(2)];
    let keys = [endpoints[1].public_key(), endpoints[2].public_key()];
    let log = Rc::new(RefCell::new(Log::new(keys)));
    serve(&mut w, &log, &endpoints);
    w.run_script(data, MAX_STEPS, |w, u| step(w, &log, &endpoints, u));
    w.settle(SETTLE_LIMIT);
    let_everything_go(&mut w, &log, &endpoints[0]);
    let answers = std::mem::take(&mut log.borrow_mut().answers);
    (fnv(w.digest, &answers), answers)
}

/// The loops that run for the endpoints' life: each server takes the connections the
/// client opens, and the client takes its peer events.
fn serve(w: &mut World, log: &LogRef, endpoints: &[Rc<Endpoint>; 3]) {
    for s in 0..2 {
        let (log, server) = (Rc::clone(log), Rc::clone(&endpoints[1 + s]));
        w.spawn(format!("accept {s}"), false, async move {
            while let Ok(c) = server.accept().await {
                log.borrow_mut().accepted[s].push(c);
            }
        });
    }
    let (log, client) = (Rc::clone(log), Rc::clone(&endpoints[0]));
    w.spawn("peer events".into(), false, async move {
        while let Ok(e) = client.peer_event().await {
            log.borrow_mut().peer_event(&e);
        }
    });
}

/// Reads one step from `u` and takes it.
fn step(w: &mut World, log: &LogRef, endpoints: &[Rc<Endpoint>; 3], u: &mut Unstructured<'_>) -> Result<()> {
    // Weighted: deliveries most often, dials next.
    match u.int_in_range(0u8..=20)? {
        op @ 0..=12 => w.network_step(op, u)?,
        13..=15 => {
            let d = Dialed {
                server: usize::from(u.arbitrary::<bool>()?),
                by_key: u.arbitrary::<bool>()?,
            };
            dial(w, log, endpoints, d);
        }
        16 => {
            let pick = usize::from(u.arbitrary::<u8>()?);
            let mut l = log.borrow_mut();
            if !l.held.is_empty() {
                let i = pick % l.held.len();
                let c = l.let_go(i);
                l.answer("let go", c.id().index());
                drop(l);
                drop(c);
            }
        }
        17 => {
            let pick = usize::from(u.arbitrary::<u8>()?);
            let given_up = {
                let mut l = log.borrow_mut();
                let n = l.dials.len();
                let k = l.dials.keys().nth(pick % n.max(1)).copied();
                k.and_then(|k| Some((k, l.dials.remove(&k)?)))
            };
            if let Some((k, t)) = given_up {
                w.cancel(t);
                log.borrow_mut().answer("dial given up", k);
            }
        }
        18 => {
            let (pick, code) = (usize::from(u.arbitrary::<u8>()?), u64::from(u.arbitrary::<u8>()?));
            let c = {
                let l = log.borrow_mut();
                let n = l.held.len();
                (n > 0).then(|| l.held[pick % n].1.clone())
            };
            if let Some(c) = c {
                log.borrow_mut().may_have_ended(c.id());
                let log = Rc::clone(log);
                w.spawn(format!("close {}", c.id().index()), true, async move {
                    let r = c.close(code, "fuzz").await;
                    log.borrow_mut()
                        .answer("closed", (c.id().index(), code, r.map_err(|e| e.to_string())));
                });
            }
        }
        19 => {
            let (s, code) = (
                usize::from(u.arbitrary::<bool>()?),
                u64::from(u.arbitrary::<u8>()?),
            );
            let conns = std::mem::take(&mut log.borrow_mut().accepted[s]);
            for c in conns {
                let log = Rc::clone(log);
                w.spawn(format!("server {s} closes"), true, async move {
                    let r = c.close(code, "fuzz").await;
                    log.borrow_mut()
                        .answer("server closed", (s, code, r.map_err(|e| e.to_string())));
                });
            }
        }
        _ => {
            let idle = *u.choose(&[0, 500, 2_000, 60_000])?;
            endpoints[0].set_pool_idle(Duration::from_millis(idle));
            log.borrow_mut().answer("idle", idle);
        }
    }
    Ok(())
}

/// The client dials what `d` names.
fn dial(w: &mut World, log: &LogRef, endpoints: &[Rc<Endpoint>; 3], d: Dialed) {
    let server = &endpoints[1 + d.server];
    let (key, addr): (PublicKey, SocketAddr) = (server.public_key(), server.local_addr());
    let (log2, client) = (Rc::clone(log), Rc::clone(&endpoints[0]));
    let k = {
        let mut l = log.borrow_mut();
        l.next_dial += 1;
        l.next_dial
    };
    let t = w.spawn(format!("dial {k} {d:?}"), true, async move {
        let got = match d.by_key {
            true => client.dial(key, &[addr]).await,
            false => client.dial_addr(addr).await,
        };
        let mut l = log2.borrow_mut();
        l.dials.remove(&k);
        l.dialed(d, got);
    });
    log.borrow_mut().dials.insert(k, t);
}

/// The client lets go of every handle, and the servers of theirs; once the idle time and
/// the closes' own time have passed, the client holds no connection.
fn let_everything_go(w: &mut World, log: &LogRef, client: &Rc<Endpoint>) {
    {
        let mut l = log.borrow_mut();
        l.held.clear();
        l.accepted = Default::default();
    }
    let held = |w: &World| (client.load().connections, w.connections_kept(0));
    let limit = w.now + LET_GO;
    w.run_until(limit, &|w| held(w) != (0, 0));
    let (core, kept) = held(w);
    assert!(
        core == 0 && kept == 0,
        "{LET_GO:?} after every handle went, the client's core still holds {core} connections \
         and its driver keeps {kept}; the answers:\n{}",
        String::from_utf8_lossy(&log.borrow().answers)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Log {
        Log::new([PublicKey::from_bytes([1; 32]), PublicKey::from_bytes([2; 32])])
    }

    const BY_KEY: Dialed = Dialed {
        server: 1,
        by_key: true,
    };

    fn up(peer: PublicKey) -> PeerEvent {
        PeerEvent::Up {
            peer: Some(peer),
            remote: None,
        }
    }

    fn down(peer: PublicKey) -> PeerEvent {
        PeerEvent::Down {
            peer: Some(peer),
            reason: weir_core::CloseReason::TimedOut,
        }
    }

    #[test]
    fn the_same_connection_again_and_a_new_one_after_a_down_hold() {
        let mut l = log();
        let key = l.keys[1];
        let (first, second) = (ConnectionHandle::from_index(0), ConnectionHandle::from_index(1));
        l.peer_event(&up(key));
        l.given(BY_KEY, Some(key), first);
        l.given(BY_KEY, Some(key), first);
        l.peer_event(&down(key));
        l.peer_event(&up(key));
        l.given(BY_KEY, Some(key), second);
        assert!(String::from_utf8_lossy(&l.answers).contains("\"again\""));
    }

    #[test]
    #[should_panic(expected = "gave a connection to another peer")]
    fn a_connection_to_another_peer_fires() {
        let mut l = log();
        let other = l.keys[0];
        l.given(BY_KEY, Some(other), ConnectionHandle::from_index(0));
    }

    #[test]
    #[should_panic(expected = "gave a second connection while the pool's first")]
    fn a_second_connection_while_the_first_lives_fires() {
        let mut l = log();
        let key = l.keys[1];
        l.given(BY_KEY, Some(key), ConnectionHandle::from_index(0));
        l.given(BY_KEY, Some(key), ConnectionHandle::from_index(1));
    }

    #[test]
    #[should_panic(expected = "went down, never having come up")]
    fn a_down_without_an_up_fires() {
        let mut l = log();
        let key = l.keys[0];
        l.peer_event(&down(key));
    }
}
