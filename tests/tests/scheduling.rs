//! How a connection shares its datagrams among the streams it sends (spec/protocol.md §8,
//! Priorities): two endpoints in weir-sim, the sender's datagrams sent one by one by hand so
//! that what each one brings the receiver can be seen.

use std::collections::BTreeMap;

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::StreamId;
use weir_core::{Config, ConnectionHandle, Event, Priority, Read, StreamHeader};
use weir_sim::{LinkConfig, NodeId, Sim};

const CLIENT: NodeId = Sim::PAIR_CLIENT;
const SERVER: NodeId = Sim::PAIR_SERVER;

/// A client connected to a server by a link without delay (the handshake run to its end),
/// the client's datagrams from then on sent by hand; with the client's handle of the
/// connection and the server's.
fn connected() -> (Sim, ConnectionHandle, ConnectionHandle) {
    connected_to(Config::default())
}

/// [`connected`], the server configured by `server`.
fn connected_to(server: Config) -> (Sim, ConnectionHandle, ConnectionHandle) {
    let link = LinkConfig {
        delay: Duration::ZERO,
        ..LinkConfig::default()
    };
    let (mut sim, client, server) = Sim::connected_pair(1, Config::default(), server, link);
    sim.send_by_hand(CLIENT);
    (sim, client, server)
}

/// The client's next datagram, delivered to the server (which answers at once); whether
/// there was one.
fn step(sim: &mut Sim) -> bool {
    if !sim.send_one(CLIENT) {
        return false;
    }
    let now = sim.now();
    sim.step(now);
    true
}

/// Time to the next thing either end does.
fn tick(sim: &mut Sim) {
    let limit = sim.now() + Duration::from_secs(1);
    sim.step(limit);
}

/// A message whose first bytes end a datagram goes on at the start of the next one, not at
/// the end of the round of the streams waiting: put back there, its first piece waited at
/// the receiver (holding the receive buffer it came in) until every other message had had
/// a turn, and a sender of many small messages kept about as many begun and not whole as it
/// had datagrams in flight.
#[test]
fn a_message_cut_by_a_datagram_s_end_goes_on_in_the_next() {
    const MESSAGES: usize = 200;
    let (mut sim, client, server) = connected();
    for i in 0..MESSAGES {
        let message = Bytes::from(vec![i as u8; 1000]);
        sim.endpoint(CLIENT).send_message(client, None, message).unwrap();
    }
    let (mut opened, mut whole, mut datagrams, mut most_begun) = (0, 0, 0, 0);
    for _ in 0..10_000 {
        if whole == MESSAGES {
            break;
        }
        // The client's datagrams one at a time; after each, what the server has.
        while step(&mut sim) {
            datagrams += 1;
            while let Some(e) = sim.endpoint(SERVER).poll_event() {
                if matches!(e, Event::StreamOpened { conn, .. } if conn == server) {
                    opened += 1;
                }
            }
            while let Some((_, read)) = sim.endpoint(SERVER).next_message(server, 1 << 20).unwrap() {
                assert!(matches!(read, Read::Data { ref bytes, .. } if bytes.len() == 1000));
                whole += 1;
            }
            most_begun = most_begun.max(opened - whole);
        }
        tick(&mut sim);
    }
    assert_eq!(whole, MESSAGES, "every message arrived");
    assert!(
        most_begun <= 1,
        "at most one message begun and not whole after any datagram: {most_begun}, {datagrams} datagrams"
    );
}

/// Streams of one class sent at once, each of `len` bytes, and what each brought the server
/// so far, by the id both ends know it by.
struct Shares {
    len: usize,
    got: BTreeMap<StreamId, usize>,
    /// The most bytes one stream was ahead of another while none was done.
    most_apart: usize,
}

impl Shares {
    /// `count` streams of `len` bytes, written and finished on the client.
    fn sent(sim: &mut Sim, client: ConnectionHandle, count: u8, len: usize) -> Shares {
        let mut got = BTreeMap::new();
        for i in 0..count {
            let id = sim
                .endpoint(CLIENT)
                .open_stream(client, StreamHeader::default())
                .unwrap();
            assert_eq!(
                sim.endpoint(CLIENT)
                    .write(client, id, Bytes::from(vec![i; len]))
                    .unwrap(),
                len
            );
            sim.endpoint(CLIENT).finish(client, id).unwrap();
            got.insert(id, 0);
        }
        Shares {
            len,
            got,
            most_apart: 0,
        }
    }

    fn done(&self) -> bool {
        self.got.values().all(|&n| n == self.len)
    }

    /// Reads what the server has of each stream (and lets go of the other streams it
    /// opened), and notes how far apart the streams are.
    fn read(&mut self, sim: &mut Sim, server: ConnectionHandle) {
        let mut others = Vec::new();
        while let Some(e) = sim.endpoint(SERVER).poll_event() {
            if let Event::StreamOpened { conn, stream, .. } = e {
                assert_eq!(conn, server);
                if !self.got.contains_key(&stream) {
                    others.push(stream);
                }
            }
        }
        for id in others {
            while let Ok(Read::Data { .. }) = sim.endpoint(SERVER).read(server, id, usize::MAX) {}
        }
        for (&id, n) in self.got.iter_mut() {
            while let Ok(Read::Data { bytes, .. }) = sim.endpoint(SERVER).read(server, id, usize::MAX) {
                *n += bytes.len();
            }
        }
        if self.got.values().all(|&n| n < self.len) {
            let apart = self.got.values().max().unwrap() - self.got.values().min().unwrap();
            self.most_apart = self.most_apart.max(apart);
        }
    }

    /// Every byte arrived, and the streams stayed within two datagrams of each other.
    fn check(&self) {
        assert!(self.done(), "every byte arrived: {:?}", self.got);
        assert!(
            self.most_apart <= 2 * 1452,
            "the streams' shares stayed within two datagrams of each other: {} bytes apart",
            self.most_apart
        );
    }
}

/// Streams of one class still take turns of about a datagram each: a turn that goes on into
/// the next datagram ends with it. Three streams of 60,000 bytes sent at once: after every
/// datagram, no stream has received more than two datagrams' worth beyond another that is
/// not done yet.
#[test]
fn streams_of_one_class_share_the_datagrams_turn_by_turn() {
    let (mut sim, client, server) = connected();
    let mut shares = Shares::sent(&mut sim, client, 3, 60_000);
    for _ in 0..10_000 {
        if shares.done() {
            break;
        }
        while step(&mut sim) {
            shares.read(&mut sim, server);
        }
        tick(&mut sim);
    }
    shares.check();
}

/// A turn goes on into the next datagram once, counted within its class: behind a higher
/// class's data, which leaves the lower class only each datagram's tail, the lower class's
/// streams still take turns. Two streams of 20,000 bytes, and a high-priority message of
/// 1,000 bytes at the front of every datagram: counted over the datagram instead, the first
/// stream began every turn behind other streams' data, went on in every next datagram, and
/// had every tail until it was done.
#[test]
fn a_turn_behind_a_higher_class_goes_on_once() {
    let (mut sim, client, server) = connected();
    let mut shares = Shares::sent(&mut sim, client, 2, 20_000);
    let mut urgent_waiting = false;
    for _ in 0..100_000 {
        if shares.done() {
            break;
        }
        if !urgent_waiting {
            let ep = sim.endpoint(CLIENT);
            let id = ep
                .open_stream(client, StreamHeader::default().with_total_len(1000))
                .unwrap();
            ep.set_priority(client, id, Priority::High).unwrap();
            ep.write(client, id, Bytes::from(vec![9; 1000])).unwrap();
            ep.finish(client, id).unwrap();
            urgent_waiting = true;
        }
        if !step(&mut sim) {
            tick(&mut sim);
            continue;
        }
        // The high-priority message went first in that datagram.
        urgent_waiting = false;
        shares.read(&mut sim, server);
    }
    shares.check();
}

/// A message sent and then made urgent goes before the streams queued ahead of it: it waited
/// in its old class's queue and had its turn there first.
#[test]
fn a_message_made_urgent_once_sent_goes_in_the_next_datagram() {
    let (mut sim, client, server) = connected();
    let bulk = sim
        .endpoint(CLIENT)
        .open_stream(client, StreamHeader::default())
        .unwrap();
    sim.endpoint(CLIENT)
        .write(client, bulk, Bytes::from(vec![1; 100_000]))
        .unwrap();
    let urgent = sim
        .endpoint(CLIENT)
        .send_message(client, None, Bytes::from(vec![9; 500]))
        .unwrap();
    sim.endpoint(CLIENT)
        .set_priority(client, urgent, Priority::High)
        .unwrap();
    assert!(step(&mut sim), "a datagram goes");
    let message = sim.endpoint(SERVER).next_message(server, 1 << 20).unwrap();
    assert!(
        matches!(message, Some((id, Read::Data { ref bytes, .. })) if id == urgent && bytes.len() == 500),
        "the urgent message came whole in the first datagram: {message:?}"
    );
}

/// Messages sent in a backlog longer than 256 wait as their bytes until their first turn
/// (module `connection::unsent`); a call on one of them acts as on any message. Of 600 sent
/// at once: one made urgent goes first, one reset never arrives, and the others arrive
/// whole, each with its own bytes.
#[test]
fn calls_on_messages_waiting_in_a_backlog_act_as_on_any_message() {
    const MESSAGES: usize = 600;
    const URGENT: usize = 500;
    const RESET: usize = 400;
    let (mut sim, client, server) = connected_to(Config {
        initial_concurrent_streams: 1024,
        ..Config::default()
    });
    let body = |i: usize| Bytes::from(vec![i as u8; 100 + i]);
    let mut ids = Vec::new();
    for i in 0..MESSAGES {
        ids.push(sim.endpoint(CLIENT).send_message(client, None, body(i)).unwrap());
    }
    let ep = sim.endpoint(CLIENT);
    ep.set_priority(client, ids[URGENT], Priority::High).unwrap();
    ep.reset_stream(client, ids[RESET], 7).unwrap();
    assert!(step(&mut sim), "a datagram goes");
    let first = sim.endpoint(SERVER).next_message(server, 1 << 20).unwrap();
    assert!(
        matches!(first, Some((id, Read::Data { ref bytes, .. })) if id == ids[URGENT] && *bytes == body(URGENT)),
        "the urgent message came first: {first:?}"
    );
    let mut whole = BTreeMap::from([(ids[URGENT], body(URGENT))]);
    let mut told = Vec::new();
    for _ in 0..100_000 {
        if whole.len() == MESSAGES - 1 {
            break;
        }
        if !step(&mut sim) {
            tick(&mut sim);
        }
        while let Some(e) = sim.endpoint(SERVER).poll_event() {
            if let Event::StreamOpened { stream, .. } | Event::StreamReset { stream, .. } = e {
                told.push(stream);
            }
        }
        while let Some((id, read)) = sim.endpoint(SERVER).next_message(server, 1 << 20).unwrap() {
            let Read::Data { bytes, .. } = read else {
                panic!("message {id:?}: {read:?}");
            };
            assert!(whole.insert(id, bytes).is_none(), "message {id:?} came twice");
        }
    }
    // Reset before any of it went: the server is never told of it (spec §4.5), as of any
    // stream reset unannounced.
    assert!(!told.contains(&ids[RESET]));
    assert_eq!(whole.len(), MESSAGES - 1);
    for (i, id) in ids.iter().enumerate().filter(|&(i, _)| i != RESET) {
        assert_eq!(whole.get(id), Some(&body(i)), "message {i}");
    }
}
