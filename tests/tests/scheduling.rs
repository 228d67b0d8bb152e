//! How a connection shares its datagrams among the streams it sends (spec/protocol.md §8,
//! Priorities): two endpoints of the public API, their datagrams handed over one by one so
//! that what each one brings the receiver can be seen.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::Instant;
use weir_core::{Config, ConnectionHandle, Endpoint, Event};

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
                assert!(matches!(read, weir_core::Read::Data { ref bytes, .. } if bytes.len() == 1000));
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
