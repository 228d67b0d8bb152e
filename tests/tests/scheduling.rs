//! How a connection shares its datagrams among the streams it sends (spec/protocol.md §8,
//! Priorities): two endpoints of the public API, their datagrams handed over one by one so
//! that what each one brings the receiver can be seen.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::Instant;
use weir_core::wire::StreamId;
use weir_core::{Config, ConnectionHandle, Endpoint, Event, Priority, Read, StreamHeader};

/// The client's address, then the server's.
const ADDRS: [&str; 2] = ["10.0.0.1:4000", "10.0.0.2:4000"];

struct Pair {
    eps: [Endpoint; 2],
    addrs: [SocketAddr; 2],
    now: Instant,
}

impl Pair {
    /// A client connected to a server (the handshake run to its end), with the client's
    /// handle of the connection and the server's.
    fn connected() -> (Pair, ConnectionHandle, ConnectionHandle) {
        let mut pair = Pair {
            eps: [
                Endpoint::new(Config::default(), 1),
                Endpoint::new(Config::default(), 2),
            ],
            addrs: ADDRS.map(|a| a.parse().unwrap()),
            now: Instant::ZERO,
        };
        let client = pair.eps[0].connect(pair.now, pair.addrs[1]).unwrap();
        let (mut server, mut up) = (None, false);
        for _ in 0..100 {
            pair.flush(0);
            pair.flush(1);
            while let Some(e) = pair.eps[0].poll_event() {
                up |= matches!(e, Event::Connected { conn, .. } if conn == client);
            }
            while let Some(e) = pair.eps[1].poll_event() {
                if let Event::Connected { conn, .. } = e {
                    server = Some(conn);
                }
            }
            if up && server.is_some() {
                break;
            }
            pair.tick();
        }
        (pair, client, server.expect("the handshake ended"))
    }

    /// The next datagram endpoint `from` sends, handed to the other; whether there was one.
    fn step(&mut self, from: usize) -> bool {
        let mut buf = [0u8; 1500];
        let Some(t) = self.eps[from].poll_transmit(self.now, &mut buf) else {
            return false;
        };
        let datagram = BytesMut::from(&buf[..t.len]);
        self.eps[1 - from].handle_datagram(self.now, self.addrs[from], datagram);
        true
    }

    /// Every datagram endpoint `from` has to send now, handed over.
    fn flush(&mut self, from: usize) {
        while self.step(from) {}
    }

    /// Time to the next deadline of either endpoint.
    fn tick(&mut self) {
        if let Some(at) = self.eps.iter().filter_map(Endpoint::poll_timeout).min() {
            self.now = self.now.max(at);
            let now = self.now;
            self.eps.iter_mut().for_each(|ep| ep.handle_timeout(now));
        }
    }
}

/// A message whose first bytes end a datagram goes on at the start of the next one, not at
/// the end of the round of the streams waiting: put back there, its first piece waited at
/// the receiver (holding the receive buffer it came in) until every other message had had
/// a turn, and a sender of many small messages kept about as many begun and not whole as it
/// had datagrams in flight.
#[test]
fn a_message_cut_by_a_datagram_s_end_goes_on_in_the_next() {
    const MESSAGES: usize = 200;
    let (mut pair, client, server) = Pair::connected();
    for i in 0..MESSAGES {
        let message = Bytes::from(vec![i as u8; 1000]);
        pair.eps[0].send_message(client, None, message).unwrap();
    }
    let (mut opened, mut whole, mut datagrams, mut most_begun) = (0, 0, 0, 0);
    for _ in 0..10_000 {
        if whole == MESSAGES {
            break;
        }
        // The client's datagrams one at a time; after each, what the server has.
        while pair.step(0) {
            datagrams += 1;
            while let Some(e) = pair.eps[1].poll_event() {
                if matches!(e, Event::StreamOpened { conn, .. } if conn == server) {
                    opened += 1;
                }
            }
            while let Some((_, read)) = pair.eps[1].next_message(server, 1 << 20).unwrap() {
                assert!(matches!(read, Read::Data { ref bytes, .. } if bytes.len() == 1000));
                whole += 1;
            }
            most_begun = most_begun.max(opened - whole);
        }
        pair.flush(1);
        pair.tick();
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
    fn sent(pair: &mut Pair, client: ConnectionHandle, count: u8, len: usize) -> Shares {
        let mut got = BTreeMap::new();
        for i in 0..count {
            let id = pair.eps[0].open_stream(client, StreamHeader::default()).unwrap();
            assert_eq!(
                pair.eps[0].write(client, id, Bytes::from(vec![i; len])).unwrap(),
                len
            );
            pair.eps[0].finish(client, id).unwrap();
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
    fn read(&mut self, pair: &mut Pair, server: ConnectionHandle) {
        let mut others = Vec::new();
        while let Some(e) = pair.eps[1].poll_event() {
            if let Event::StreamOpened { conn, stream, .. } = e {
                assert_eq!(conn, server);
                if !self.got.contains_key(&stream) {
                    others.push(stream);
                }
            }
        }
        for id in others {
            while let Ok(Read::Data { .. }) = pair.eps[1].read(server, id, usize::MAX) {}
        }
        for (&id, n) in self.got.iter_mut() {
            while let Ok(Read::Data { bytes, .. }) = pair.eps[1].read(server, id, usize::MAX) {
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
    let (mut pair, client, server) = Pair::connected();
    let mut shares = Shares::sent(&mut pair, client, 3, 60_000);
    for _ in 0..10_000 {
        if shares.done() {
            break;
        }
        while pair.step(0) {
            shares.read(&mut pair, server);
        }
        pair.flush(1);
        pair.tick();
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
    let (mut pair, client, server) = Pair::connected();
    let mut shares = Shares::sent(&mut pair, client, 2, 20_000);
    let mut urgent_waiting = false;
    for _ in 0..100_000 {
        if shares.done() {
            break;
        }
        if !urgent_waiting {
            let ep = &mut pair.eps[0];
            let id = ep
                .open_stream(client, StreamHeader::default().with_total_len(1000))
                .unwrap();
            ep.set_priority(client, id, Priority::High).unwrap();
            ep.write(client, id, Bytes::from(vec![9; 1000])).unwrap();
            ep.finish(client, id).unwrap();
            urgent_waiting = true;
        }
        if !pair.step(0) {
            pair.flush(1);
            pair.tick();
            continue;
        }
        // The high-priority message went first in that datagram.
        urgent_waiting = false;
        shares.read(&mut pair, server);
    }
    shares.check();
}

/// A message sent and then made urgent goes before the streams queued ahead of it: it waited
/// in its old class's queue and had its turn there first.
#[test]
fn a_message_made_urgent_once_sent_goes_in_the_next_datagram() {
    let (mut pair, client, server) = Pair::connected();
    let bulk = pair.eps[0].open_stream(client, StreamHeader::default()).unwrap();
    pair.eps[0]
        .write(client, bulk, Bytes::from(vec![1; 100_000]))
        .unwrap();
    let urgent = pair.eps[0]
        .send_message(client, None, Bytes::from(vec![9; 500]))
        .unwrap();
    pair.eps[0].set_priority(client, urgent, Priority::High).unwrap();
    assert!(pair.step(0), "a datagram goes");
    let message = pair.eps[1].next_message(server, 1 << 20).unwrap();
    assert!(
        matches!(message, Some((id, Read::Data { ref bytes, .. })) if id == urgent && bytes.len() == 500),
        "the urgent message came whole in the first datagram: {message:?}"
    );
}
