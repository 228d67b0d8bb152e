//! The client's NOISE_FINISH (spec/protocol.md §7, "Data before the keys") lost or
//! overtaken in weir-sim: an XX server cannot open the client's data until it has the
//! NOISE_FINISH, so how soon a lost one goes again, what the server keeps of the data that
//! came first, and what junk under the connection's id changes (nothing). The rest of the
//! handshake's matrix is in `handshake`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::{Config, Event};
use weir_sim::{LinkConfig, NodeId, Sim};

/// A client's NOISE_FINISH lost (XX; the client's second datagram) on a 4 ms path: the
/// server cannot open the client's data without it, so the first message waits for it to
/// go again. It went again three *initial* RTTs later (300 ms by default) whatever the path,
/// and the probes sent meanwhile were data the server dropped, backing the probe timer off:
/// a 64 KiB message took 0.9 s (`weir sim --direct --delay 2ms --jitter 20ms --loss 5%
/// --size 64KiB --seed 6`). Now it goes again three handshake round trips later, and with
/// any probe: the message arrives within 15 round trips.
#[test]
fn a_lost_noise_finish_is_resent_in_round_trips() {
    let mut sim = Sim::new(11);
    let c = sim.add_node(Config::default());
    let s = sim.add_node(Config::default());
    let one_way = Duration::from_millis(2);
    sim.link(
        c,
        s,
        LinkConfig {
            delay: one_way,
            ..LinkConfig::default()
        },
    );
    sim.drop_nth(c, s, 2);
    sim.connect(c, s);
    let arrived = std::cell::Cell::new(None);
    sim.run_until(
        Instant::ZERO + Duration::from_secs(15),
        |sim, node, event| {
            if first_message(sim, node, event, c, s) {
                arrived.set(Some(sim.now()));
            }
        },
        |_| arrived.get().is_some(),
    );
    assert_eq!(
        sim.stats().lost,
        1,
        "the NOISE_FINISH, and nothing else, was lost"
    );
    let took = arrived.get().expect("the message arrived") - Instant::ZERO;
    let rtt = one_way.saturating_mul(2);
    println!(
        "first message after {took:?} ({} round trips)",
        took.as_micros() / rtt.as_micros()
    );
    assert!(took <= rtt.saturating_mul(15), "{took:?}");
}

/// The client sends the message "first" once connected; whether `event` (at `node`) brought
/// it to the server.
fn first_message(sim: &mut Sim, node: NodeId, event: Event, client: NodeId, server: NodeId) -> bool {
    match event {
        Event::Connected { conn, .. } if node == client => {
            sim.endpoint(client)
                .send_message(conn, None, Bytes::from_static(b"first"))
                .unwrap();
            false
        }
        Event::StreamReadable { conn, stream } if node == server => matches!(
            sim.endpoint(server).read(conn, stream, usize::MAX),
            Ok(weir_core::Read::Data { bytes, .. }) if &bytes[..] == b"first"
        ),
        _ => false,
    }
}

/// A client and a server 2 ms apart whose client's NOISE_FINISH (its second datagram) is
/// held off the path until the test lets it go, with a copy of the datagram after it; the
/// client sends a message once connected. For what an XX server does before its keys.
struct FinishHeld {
    sim: Sim,
    client: NodeId,
    server: NodeId,
    seen: Rc<Cell<u32>>,
    finish: Rc<RefCell<Option<Vec<u8>>>>,
    after: Rc<RefCell<Option<Vec<u8>>>>,
    arrived: Cell<bool>,
}

impl FinishHeld {
    fn new(seed: u64) -> Self {
        let mut sim = Sim::new(seed);
        let client = sim.add_node(Config::default());
        let server = sim.add_node(Config::default());
        sim.link(
            client,
            server,
            LinkConfig {
                delay: Duration::from_millis(2),
                ..LinkConfig::default()
            },
        );
        let (seen, finish, after) = (Rc::new(Cell::new(0)), Rc::default(), Rc::default());
        let (count, keep, copy): (_, Rc<RefCell<_>>, Rc<RefCell<_>>) =
            (seen.clone(), Rc::clone(&finish), Rc::clone(&after));
        sim.intercept(client, server, move |datagram| {
            count.set(count.get() + 1);
            match count.get() {
                2 => *keep.borrow_mut() = Some(datagram.clone()),
                3 => *copy.borrow_mut() = Some(datagram.clone()),
                _ => {}
            }
            count.get() != 2
        });
        sim.connect(client, server);
        FinishHeld {
            sim,
            client,
            server,
            seen,
            finish,
            after,
            arrived: Cell::new(false),
        }
    }

    /// Runs for `d`: the client's message goes once it is connected, and is checked for
    /// when it arrives.
    fn run(&mut self, d: Duration) {
        let (c, s, arrived) = (self.client, self.server, &self.arrived);
        let until = self.sim.now() + d;
        self.sim.run_until(
            until,
            |sim, node, event| {
                if first_message(sim, node, event, c, s) {
                    arrived.set(true);
                }
            },
            |_| arrived.get(),
        );
    }

    /// A datagram into the path as if the client had sent it.
    fn inject(&mut self, datagram: Vec<u8>) {
        let from = self.sim.addr(self.client);
        self.sim.inject(from, self.server, Bytes::from(datagram));
    }

    /// Runs until the datagram after the NOISE_FINISH has arrived; then lets it go, with
    /// `before` injected ahead of it, and runs until the message arrived (or 2 s). Returns
    /// what the server had dropped unauthenticated when the NOISE_FINISH went.
    fn release_after(&mut self, before: impl FnOnce(&[u8]) -> Vec<Vec<u8>>) -> u64 {
        while self.seen.get() < 3 && self.sim.now() < Instant::ZERO + Duration::from_secs(1) {
            self.run(Duration::from_micros(500));
        }
        let after = self
            .after
            .borrow()
            .clone()
            .expect("the datagram after the NOISE_FINISH");
        for datagram in before(&after) {
            self.inject(datagram);
        }
        self.run(Duration::from_millis(3));
        let dropped = self.sim.endpoint_ref(self.server).stats().dropped_unauthenticated;
        let finish = self.finish.borrow_mut().take().expect("the NOISE_FINISH held");
        self.inject(finish);
        while !self.arrived.get() && self.sim.now() < Instant::ZERO + Duration::from_secs(2) {
            self.run(Duration::from_millis(1));
        }
        assert!(self.arrived.get(), "the message arrived");
        dropped
    }
}

/// The data a client sends right after its NOISE_FINISH overtakes it (XX; a path that
/// reorders): the server, without keys until the NOISE_FINISH, kept those datagrams and
/// opened them once it came. Before, it dropped them unopened: real losses, found by the
/// client a loss-detection period later, that NewReno could not undo (its first reduction
/// stayed, and on a 4 ms path with 20 ms of jitter it kept half the link;
/// tests/congestion.md, "Data before the keys").
#[test]
fn data_that_overtakes_the_noise_finish_is_kept_for_it() {
    let mut t = FinishHeld::new(12);
    assert_eq!(t.release_after(|_| Vec::new()), 0);
    assert_eq!(
        t.sim.endpoint_ref(t.server).stats().dropped_unauthenticated,
        0,
        "nothing the server could not open"
    );
    let conn = weir_core::ConnectionHandle::from_index(0);
    let lost = t
        .sim
        .endpoint_ref(t.client)
        .connection_stats(conn)
        .unwrap()
        .packets_lost;
    assert_eq!(lost, 0, "no data packet of the client lost");
}

/// Junk under the connection's id before its NOISE_FINISH (anyone who saw the id can send
/// it): kept within the bounds (module `early`: eight datagrams a connection), opened with
/// the keys, and then dropped unauthenticated like any datagram that does not open. It
/// changes nothing but crowd out the genuine datagrams that came after it, which are lost
/// as they were before any was kept: the handshake completes and the message arrives.
#[test]
fn junk_kept_before_the_keys_changes_nothing() {
    let mut t = FinishHeld::new(13);
    let junk = 20u8;
    let dropped_before = t.release_after(|genuine| {
        (1..=junk)
            .map(|i| {
                let mut bad = genuine.to_vec();
                let last = bad.len() - 1;
                bad[last] ^= i;
                bad
            })
            .collect()
    });
    // At most eight kept for the connection (the genuine datagram and seven of the junk):
    // the rest dropped as they came.
    assert!(
        dropped_before >= u64::from(junk) - 7,
        "{dropped_before} dropped on arrival"
    );
    // Every junk datagram dropped in the end; genuine ones that came past the bound too
    // (their data went again, as before the server kept any).
    assert!(t.sim.endpoint_ref(t.server).stats().dropped_unauthenticated >= u64::from(junk));
    let conn = weir_core::ConnectionHandle::from_index(0);
    assert!(
        t.sim.endpoint_ref(t.server).connection_stats(conn).is_some(),
        "the connection stands"
    );
}
