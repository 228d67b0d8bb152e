//! Two endpoints driven in one thread with datagrams handed over in memory, no loss unless
//! asked (`lose_every`), one per call or in runs as a Linux receive gives them
//! ([`Handover`]): the harness of `--bench transfer` and of the `transfer_count` example
//! (callgrind). Their congestion controller is NewReno, whose per-ACK work is a few
//! instructions, so the counts are the rest of the core's; `WEIR_PAIR_CONGESTION=bbr`
//! gives them BBR, weir's default, whose model of the path costs some 560 instructions an
//! ACK (adapters/bench/rounds.md, "timers neither rebuilt nor refiled").

#[path = "prefetch.rs"]
mod prefetch;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Cipher, VersionRange};
use weir_core::{Config, Endpoint, Event, Read};

pub struct Pair {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    buf: Vec<u8>,
    /// Received datagrams are cut from blocks, as a socket adapter's receive buffer does
    /// (weir-driver's `Inbox`): one allocation per block, not one or two per datagram.
    block: BytesMut,
    /// Filled blocks, taken back once none of their datagrams is held, as the `Inbox`
    /// does: a fresh block each time made the kernel fault in and clear 256 KiB of pages,
    /// 15% of the 64 MiB transfer's time, which no socket adapter pays.
    filled: std::collections::VecDeque<BytesMut>,
    /// Datagrams moved, both ways.
    pub datagrams: u64,
    /// Receive blocks allocated afresh (the others were taken back and filled again).
    pub blocks_allocated: u64,
    /// Every this many datagrams from the client to the server, one is lost (none if 0):
    /// the same ones each run.
    pub lose_every: u64,
    /// Datagrams from the client to the server so far, lost ones included.
    sent_to_server: u64,
    /// The client's and the server's addresses, parsed once (parsing them at every
    /// shuttle cost a round trip 1,300 instructions, 3% of the count).
    addresses: (SocketAddr, SocketAddr),
    /// How datagrams reach the other endpoint.
    handover: Handover,
    /// Datagrams received and not yet handed over: a run in the making ([`Handover::GroRuns`]).
    run: Vec<BytesMut>,
    /// The bytes of `run`'s datagrams (the sum, kept rather than taken again for each
    /// datagram of a run in the measured loop).
    run_bytes: usize,
    /// Runs handed over ([`Handover::GroRuns`]), both ways.
    pub runs: u64,
}

/// How the harness hands one side's datagrams to the other endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handover {
    /// Each by its own `Endpoint::handle_datagram` call: a driver that receives one
    /// datagram per call.
    OneByOne,
    /// In runs, each by one `Endpoint::handle_datagrams` call, as weir-driver hands over what
    /// one receive gave on Linux, where a generic-segmentation send over loopback reaches the
    /// receiver as one GRO batch: the datagrams weir-driver's `Outbox` would send together
    /// (each no longer than the run's first, a shorter one the last; at most
    /// [`GSO_SEGMENTS`] of them and [`GSO_BYTES`] in all).
    #[allow(dead_code)] // Chosen by the transfer bench and the example, not by the tests.
    GroRuns,
}

/// The most datagrams one generic-segmentation send carries on Linux (`UDP_MAX_SEGMENTS`,
/// what quinn-udp's `max_gso_segments` gives there).
const GSO_SEGMENTS: usize = 64;

/// The most bytes one batch of weir-driver carries (its `MAX_BATCH_BYTES`, written again
/// here: weir-core's benches do not depend on weir-driver, which depends on weir-core).
const GSO_BYTES: usize = 65_000;

/// Which endpoint a datagram goes to.
#[derive(Clone, Copy)]
enum To {
    Client,
    Server,
}

/// Bytes per receive block.
const BLOCK: usize = 256 << 10;

const CLIENT: &str = "10.0.0.1:4000";
const SERVER: &str = "10.0.0.2:4000";

/// What the connection is sealed with: nothing (version 1), or a cipher (version 2).
#[derive(Clone, Copy)]
pub enum Protection {
    None,
    Sealed(Cipher),
}

/// The congestion controller `WEIR_PAIR_CONGESTION` names (`newreno`, the default, or
/// `bbr`). The tests that include this harness (weir-sim's suites,
/// `core/tests/unread_blocks.rs`, built with `cfg(test)`) always get NewReno: their bounds
/// are for it, and a variable left set for a count must not move them.
fn congestion() -> weir_core::congestion::CongestionAlgorithm {
    use weir_core::congestion::CongestionAlgorithm;
    if cfg!(test) {
        return CongestionAlgorithm::NewReno;
    }
    match std::env::var("WEIR_PAIR_CONGESTION").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("newreno") => CongestionAlgorithm::NewReno,
        Ok("bbr") => CongestionAlgorithm::Bbr,
        other => panic!("WEIR_PAIR_CONGESTION={other:?}: expected newreno or bbr"),
    }
}

impl Pair {
    fn new(protection: Protection, datagram: u16) -> Self {
        Pair::with_streams(protection, datagram, Config::default().initial_concurrent_streams)
    }

    /// A pair whose endpoints grant `streams` streams at once from the start.
    fn with_streams(protection: Protection, datagram: u16, streams: u64) -> Self {
        let (versions, ciphers) = match protection {
            Protection::None => (VersionRange::UNPROTECTED, Vec::new()),
            Protection::Sealed(c) => (VersionRange::ENCRYPTED, vec![c]),
        };
        let config = Config {
            versions,
            ciphers,
            stream_receive_window: 16 << 20,
            receive_window: 32 << 20,
            // One 64 MiB message, held by reference.
            send_buffer: 128 << 20,
            congestion: congestion(),
            max_datagram_size: datagram,
            initial_concurrent_streams: streams,
            prefetch: prefetch::hook(),
            ..Config::default()
        };
        Pair {
            client: Endpoint::new(config.clone(), 1),
            server: Endpoint::new(config, 2),
            now: Instant::ZERO,
            buf: vec![0u8; usize::from(datagram).max(2048)],
            block: BytesMut::new(),
            filled: std::collections::VecDeque::new(),
            datagrams: 0,
            blocks_allocated: 0,
            lose_every: 0,
            sent_to_server: 0,
            addresses: (CLIENT.parse().unwrap(), SERVER.parse().unwrap()),
            handover: Handover::OneByOne,
            run: Vec::with_capacity(GSO_SEGMENTS),
            run_bytes: 0,
            runs: 0,
        }
    }

    /// This pair, handing its datagrams over as `handover` says (one by one unless told).
    #[allow(dead_code)] // Used by the transfer bench and the example, not by the tests.
    pub fn handing_over(mut self, handover: Handover) -> Self {
        self.handover = handover;
        self
    }

    /// Moves every pending datagram across, both ways, until both are quiet; returns the
    /// server's events.
    fn shuttle(&mut self, events: &mut Vec<Event>) {
        let (c, s) = (self.addresses.0, self.addresses.1);
        loop {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
                moved = true;
                self.sent_to_server += 1;
                if self.lose_every > 0 && self.sent_to_server % self.lose_every == 0 {
                    continue;
                }
                let d = self.received(t.len);
                self.hand_over(To::Server, c, d);
            }
            self.end_run(To::Server, c);
            while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
                let d = self.received(t.len);
                self.hand_over(To::Client, s, d);
                moved = true;
            }
            self.end_run(To::Client, s);
            events.extend(std::iter::from_fn(|| self.server.poll_event()));
            if !moved {
                return;
            }
        }
    }

    /// Hands `d`, from `from`, to the endpoint `to` now, or adds it to the run in the
    /// making ([`Handover::GroRuns`]), which it may end first or last.
    fn hand_over(&mut self, to: To, from: SocketAddr, d: BytesMut) {
        if self.handover == Handover::OneByOne {
            let now = self.now;
            self.endpoint(to).handle_datagram(now, from, d);
            return;
        }
        // A run ends where weir-driver's `Outbox` would end a batch: before a datagram
        // longer than its first or one past the segments' or the bytes' limit, and after a
        // shorter one.
        let segment = self.run.first().map_or(usize::MAX, BytesMut::len);
        if d.len() > segment || self.run.len() == GSO_SEGMENTS || self.run_bytes + d.len() > GSO_BYTES {
            self.end_run(to, from);
        }
        let last = self.run.first().is_some_and(|first| d.len() < first.len());
        self.run_bytes += d.len();
        self.run.push(d);
        if last {
            self.end_run(to, from);
        }
    }

    /// Hands the run in the making, if any, to the endpoint `to` in one call.
    fn end_run(&mut self, to: To, from: SocketAddr) {
        if self.run.is_empty() {
            return;
        }
        let now = self.now;
        self.runs += 1;
        self.run_bytes = 0;
        let mut run = std::mem::take(&mut self.run);
        self.endpoint(to).handle_datagrams(now, from, run.drain(..));
        self.run = run;
    }

    fn endpoint(&mut self, to: To) -> &mut Endpoint {
        match to {
            To::Client => &mut self.client,
            To::Server => &mut self.server,
        }
    }

    /// The datagram in `buf`, as a receive would hand it over: copied into the block.
    fn received(&mut self, len: usize) -> BytesMut {
        if self.block.capacity() - self.block.len() < len {
            let old = std::mem::take(&mut self.block);
            if old.capacity() > 0 {
                self.filled.push_back(old);
            }
            let free = self.filled.iter_mut().position(|b| b.try_reclaim(BLOCK));
            self.block = match free.and_then(|i| self.filled.remove(i)) {
                Some(mut block) => {
                    block.clear();
                    block
                }
                None => {
                    self.blocks_allocated += 1;
                    BytesMut::with_capacity(BLOCK)
                }
            };
            // A block some datagram still holds is left to it (the receiver keeps what it
            // has not read); four are kept to be taken back.
            if self.filled.len() > 4 {
                self.filled.pop_front();
            }
        }
        self.block.extend_from_slice(&self.buf[..len]);
        self.datagrams += 1;
        self.block.split_to(len)
    }

    #[allow(dead_code)] // Used by the example and some benches, not by every bench.
    pub fn connected(protection: Protection) -> Self {
        Pair::connected_with(protection, Config::default().max_datagram_size)
    }

    /// [`connected`](Self::connected), sending datagrams of up to `datagram` bytes (a
    /// loopback interface's MTU allows 65,000).
    pub fn connected_with(protection: Protection, datagram: u16) -> Self {
        Pair::connect(Pair::new(protection, datagram))
    }

    /// [`connected`](Self::connected), the server granting the client `streams` streams at
    /// once from the start.
    #[allow(dead_code)] // Used by some tests, not by the benches.
    pub fn connected_granting(protection: Protection, streams: u64) -> Self {
        let datagram = Config::default().max_datagram_size;
        Pair::connect(Pair::with_streams(protection, datagram, streams))
    }

    /// `p`, its handshake done.
    fn connect(mut p: Pair) -> Self {
        p.client.connect(p.now, SERVER.parse().unwrap()).unwrap();
        let mut ev = Vec::new();
        for _ in 0..10 {
            p.shuttle(&mut ev);
            p.now += Duration::from_millis(1);
            p.client.handle_timeout(p.now);
            p.server.handle_timeout(p.now);
        }
        while p.client.poll_event().is_some() {}
        p
    }

    /// Sends two streams at once for `rounds` of 50 ms: `bulk` bytes a round on one, which
    /// the server reads as they come, and `trickle` bytes on the other, which it never
    /// reads. Returns the trickle's bytes sent (all held unread by the server). Each trickle
    /// piece held as a slice keeps its receive block alive ([`Pair::blocks_allocated`] shows
    /// how many were not taken back).
    #[allow(dead_code)] // Used by the example, not by every bench.
    pub fn unread_trickle(&mut self, rounds: usize, bulk: usize, trickle: usize) -> u64 {
        let conn = weir_core::ConnectionHandle::from_index(0);
        let header = weir_core::StreamHeader::default();
        let bulk_id = self.client.open_stream(conn, header.clone()).unwrap();
        let trickle_id = self.client.open_stream(conn, header).unwrap();
        let (bulk_bytes, trickle_bytes) = (Bytes::from(vec![2u8; bulk]), Bytes::from(vec![1u8; trickle]));
        let mut sent = 0;
        let mut events = Vec::new();
        for _ in 0..rounds {
            sent += self
                .client
                .write(conn, trickle_id, trickle_bytes.clone())
                .unwrap_or(0) as u64;
            let _ = self.client.write(conn, bulk_id, bulk_bytes.clone());
            for _ in 0..50 {
                self.shuttle(&mut events);
                for e in events.drain(..) {
                    if let Event::StreamReadable { conn, stream } = e {
                        while stream != trickle_id
                            && matches!(self.server.read(conn, stream, usize::MAX), Ok(Read::Data { .. }))
                        {
                        }
                    }
                }
                self.advance(Duration::from_millis(1));
            }
        }
        sent
    }

    /// Has the client send `n` messages of `msg` and moves no datagram: what the client
    /// holds for messages its path has not let go yet. Returns how many it took.
    #[allow(dead_code)] // Used by some tests, not by the benches.
    pub fn queue_messages(&mut self, msg: &Bytes, n: usize) -> usize {
        let conn = weir_core::ConnectionHandle::from_index(0);
        (0..n)
            .take_while(|_| self.client.send_message(conn, None, msg.clone()).is_ok())
            .count()
    }

    /// Sends `msgs` from client to server, each a message of its own, as fast as the
    /// peer's stream limit lets them go, and reads each one whole; returns how many came.
    #[allow(dead_code)] // Used by the example, not by every bench.
    pub fn messages(&mut self, msgs: &[Bytes]) -> usize {
        let conn = weir_core::ConnectionHandle::from_index(0);
        let (mut sent, mut received) = (0, 0);
        let mut events = Vec::new();
        while received < msgs.len() {
            while sent < msgs.len() && self.client.send_message(conn, None, msgs[sent].clone()).is_ok() {
                sent += 1;
            }
            self.shuttle(&mut events);
            for e in events.drain(..) {
                if let Event::StreamReadable { conn, stream } = e {
                    if let Ok(Read::Data { .. }) = self.server.read_message(conn, stream, u64::MAX) {
                        received += 1;
                    }
                }
            }
            self.now += Duration::from_millis(1);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
        received
    }

    /// `n` sequential round trips: the client sends a message of `size` bytes, the server
    /// reads it whole and answers with one of `size` bytes, the client reads that whole;
    /// returns how many answers came. Virtual time moves `gap` after each answer and 10 µs
    /// while one is awaited, and timers fire only when due, as a driver runs them: the
    /// in-memory counterpart of weir-bench's `rtt` workload.
    #[allow(dead_code)] // Used by the example, not by every bench.
    pub fn round_trips(&mut self, n: usize, size: usize, gap: Duration) -> usize {
        let conn = weir_core::ConnectionHandle::from_index(0);
        let message = Bytes::from(vec![0x42u8; size]);
        let mut events = Vec::new();
        let mut answered = 0;
        while answered < n {
            self.client.send_message(conn, None, message.clone()).unwrap();
            let before = answered;
            while answered == before {
                self.shuttle(&mut events);
                for e in events.drain(..) {
                    if let Event::StreamReadable { conn, stream } = e {
                        if let Ok(Read::Data { .. }) = self.server.read_message(conn, stream, u64::MAX) {
                            self.server.send_message(conn, None, message.clone()).unwrap();
                        }
                    }
                }
                self.shuttle(&mut events);
                while let Some(e) = self.client.poll_event() {
                    if let Event::StreamReadable { conn, stream } = e {
                        if let Ok(Read::Data { .. }) = self.client.read_message(conn, stream, u64::MAX) {
                            answered += 1;
                        }
                    }
                }
                self.advance(if answered == before {
                    Duration::from_micros(10)
                } else {
                    gap
                });
            }
        }
        answered
    }

    /// Moves time on by `by` and runs the timers that are due.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    /// Sends `msg` from client to server and reads it as it arrives; returns the bytes
    /// read.
    pub fn transfer(&mut self, msg: &Bytes) -> usize {
        let conn = weir_core::ConnectionHandle::from_index(0);
        self.client.send_message(conn, None, msg.clone()).unwrap();
        let mut received = 0usize;
        let mut events = Vec::new();
        while received < msg.len() {
            self.shuttle(&mut events);
            for e in events.drain(..) {
                if let Event::StreamReadable { conn, stream } = e {
                    while let Ok(Read::Data { bytes, .. }) = self.server.read(conn, stream, usize::MAX) {
                        received += bytes.len();
                    }
                }
            }
            // Let delayed ACKs and timers fire; time is virtual.
            self.now += Duration::from_millis(1);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
        received
    }
}
