//! `pair`: two endpoints, a client and a server, exchange messages both ways through a
//! network the fuzzer controls (it delivers in any order, drops, duplicates, corrupts and
//! moves the clock), while the applications send, read slowly or not at all, reset and
//! stop streams.
//!
//! Oracle: every byte read is the byte sent at that offset of that message; a stream ends
//! `Finished` only at its full length; no honest side ever sees a protocol violation (a
//! corrupted datagram must be dropped, not taken for the peer's word), so neither credit
//! nor final sizes are ever exceeded; digests always verify. Liveness: once the fuzzer
//! stops, an undisturbed network delivers every message that was neither reset nor
//! stopped, unless the connection timed out.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;

use super::datagrams::Datagrams;
use super::net::{Net, NetOp};
use crate::congestion::CongestionAlgorithm;
use crate::time::Duration;
use crate::wire::{Delivery, Label, StreamId, VersionRange};
use crate::{CloseReason, Config, ConnectionHandle, Event, Read};

/// Steps read from one input: a scenario of a few hundred steps runs in well under a
/// millisecond, so the fuzzer tries thousands a second.
const MAX_STEPS: usize = 192;
/// Longest message sent: past the stream window (8 KiB), so flow control blocks.
const MAX_MESSAGE: usize = 12 * 1024;
/// Datagrams the undisturbed network carries at the end before liveness is judged.
const SETTLE_ROUNDS: usize = 30_000;

/// The bytes messages are cut from: pseudo-random, so that a byte delivered to the wrong
/// message or offset shows. Static, so that a send copies nothing and the oracle checks a
/// read with one slice comparison: a comparison per byte was a call per byte into the
/// fuzzer's comparison hooks, a quarter of the target's time.
static PATTERN: [u8; PATTERN_LEN] = pattern();
const PATTERN_LEN: usize = 2 * MAX_MESSAGE + 4096;

const fn pattern() -> [u8; PATTERN_LEN] {
    let mut out = [0u8; PATTERN_LEN];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut i = 0;
    while i < PATTERN_LEN {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (x >> 24) as u8;
        i += 1;
    }
    out
}

/// The whole of [`PATTERN`], for the targets above the core (`weir_driver::fuzz`).
pub(super) fn pattern_bytes() -> &'static [u8] {
    &PATTERN
}

/// Message `k`'s bytes: `len` bytes of [`PATTERN`] from a start of its own (4,099 is prime
/// to the starts' range, so the first 16,384 messages all start apart).
pub(super) fn content(k: u32, len: usize) -> &'static [u8] {
    let start = (k as usize).wrapping_mul(4099) % (PATTERN_LEN - MAX_MESSAGE);
    &PATTERN[start..start + len.min(MAX_MESSAGE)]
}

/// A message one side sent.
struct Sent {
    len: u64,
    /// Reset by its sender or stopped by its receiver: it need not arrive.
    abandoned: bool,
}

/// A stream one side receives.
struct Incoming {
    k: u32,
    len: u64,
    read: u64,
    ended: bool,
}

/// One side's application.
#[derive(Default)]
pub(super) struct Side {
    conn: Option<ConnectionHandle>,
    /// The connection ended (handshake failure, timeout).
    gone: bool,
    sent: BTreeMap<StreamId, (u32, Sent)>,
    incoming: BTreeMap<StreamId, Incoming>,
    /// Messages this side read to their end (`Finished`).
    delivered: BTreeSet<u32>,
    /// Messages this side read every byte of (before or when their end was read).
    read_whole: BTreeSet<u32>,
    /// Messages this side stopped reading.
    stopped: BTreeSet<u32>,
}

/// The code the receiving application stops a stream with, and the sender resets one with.
const STOP_CODE: u64 = 7;
const RESET_CODE: u64 = 9;

/// The two applications (nodes 0 and 1 of `net`, whose connection is `sides[i].conn`) and
/// the model of what they sent and read. Nodes past the first two (a relay) are watched:
/// their events drained and checked, their bounds after every step.
pub(super) struct Pair<'a> {
    net: &'a mut Net,
    sides: [Side; 2],
    /// Messages sent so far, both sides (numbers them).
    messages: BTreeMap<u32, (usize, Sent)>,
    /// The wire version the two sides' connection speaks.
    version: u16,
    /// The unreliable datagrams, when the target sends them too.
    datagrams: Option<Datagrams>,
    /// Whether the client's address may change under it.
    client_address: ClientAddress,
}

/// Whether the client's address may change (a NAT rebinding it: `Net::rebind`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAddress {
    Fixed,
    /// A step may move it (one more kind of step, after the datagrams' two).
    Rebinding,
}

/// The two applications' configuration: `pair`'s unprotected one with `congestion`.
fn config(congestion: CongestionAlgorithm) -> Config {
    Config {
        // Unprotected (wire version 1): the fuzzer's corruptions reach the frame decoder
        // whenever it fixes the trailer, instead of all dying at the AEAD tag.
        versions: VersionRange::UNPROTECTED,
        congestion,
        ..windows()
    }
}

/// The applications' configuration on an encrypted connection (wire version 2, the
/// stand-in primitives), with `congestion` (the `relay` and `migration` targets).
pub(super) fn encrypted(congestion: CongestionAlgorithm) -> Config {
    Config {
        versions: VersionRange::ENCRYPTED,
        congestion,
        ..windows()
    }
}

/// Small windows and buffers, so that flow control and the buffers' limits are reached.
fn windows() -> Config {
    Config {
        stream_receive_window: 8 * 1024,
        max_stream_receive_window: 32 * 1024,
        receive_window: 16 * 1024,
        max_receive_window: 64 * 1024,
        send_buffer: 256 * 1024,
        // Eight streams at first, auto-tuned up to 32 (spec §8).
        initial_concurrent_streams: 8,
        max_concurrent_streams: 32,
        ..super::stand_in()
    }
}

/// The congestion controller an input chooses (its first byte's lowest bit).
pub(super) fn congestion(u: &mut Unstructured<'_>) -> CongestionAlgorithm {
    if u.arbitrary::<bool>().unwrap_or(false) {
        CongestionAlgorithm::NewReno
    } else {
        CongestionAlgorithm::default()
    }
}

/// `pair`: two endpoints exchanging messages through a network the fuzzer controls; every
/// byte read is the byte sent, honest peers never see a protocol violation, and an
/// undisturbed network then delivers every message not abandoned.
pub fn pair(data: &[u8]) {
    pair_on(data, &mut Net::new());
}

/// `batch`: [`pair`] on a network that hands each delivered datagram over with every later
/// one waiting on its path, in one `Endpoint::handle_datagrams` call (a receive call's GRO
/// batch): what arrives is still what was sent, and each batch's bookkeeping (module
/// `endpoint::batch`) leaves the timers as the oracle wants them.
pub fn batch(data: &[u8]) {
    batch_on(data, &mut Net::new());
}

/// [`batch`] on a network the caller owns (module `trace`).
pub(super) fn batch_on(data: &[u8], net: &mut Net) {
    net.delivery = super::net::Delivery::Batched;
    pair_on(data, net);
}

/// [`pair`] on a network the caller owns (module `trace`).
pub(super) fn pair_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let cc = congestion(&mut u);
    let client = net.add(config(cc.clone()), 1);
    let server = net.add(config(cc), 2);
    // Harness, not input: a new endpoint's first connection always starts (nothing fuzzed
    // has run yet).
    let conn = net.connect(client, server).expect("first connection");
    let mut p = Pair::new(net, 1);
    p.set_conn(client, conn);
    p.run(&mut u);
}

/// A read of `bytes` at `offset` of `inc` is the next part of the message sent.
fn check_read(inc: &Incoming, offset: u64, bytes: &[u8]) {
    assert_eq!(offset, inc.read, "data read out of order");
    let end = offset + bytes.len() as u64;
    assert!(end <= inc.len, "more bytes than the message has");
    let sent = content(inc.k, inc.len as usize);
    assert!(
        bytes[..] == sent[offset as usize..end as usize],
        "message {} bytes {offset}..{end} differ from those sent",
        inc.k
    );
}

impl<'a> Pair<'a> {
    /// The model of two applications on nodes 0 and 1 of `net`, their connection speaking
    /// wire `version` (the caller sets `sides[i].conn` if it connected them already).
    pub(super) fn new(net: &'a mut Net, version: u16) -> Self {
        Pair {
            net,
            sides: [Side::default(), Side::default()],
            messages: BTreeMap::new(),
            version,
            datagrams: None,
            client_address: ClientAddress::Fixed,
        }
    }

    /// A step may move the client (node 0) to a new address. Datagrams come with it: their
    /// two kinds of step come before this one.
    pub(super) fn with_rebinding(mut self) -> Self {
        self.datagrams.get_or_insert_with(Datagrams::default);
        self.client_address = ClientAddress::Rebinding;
        self
    }

    /// The applications send each other unreliable datagrams too, besides messages.
    pub(super) fn with_datagrams(mut self) -> Self {
        self.datagrams = Some(Datagrams::default());
        self
    }

    /// The side's connection, for a caller that connected them.
    pub(super) fn set_conn(&mut self, side: usize, conn: ConnectionHandle) {
        self.sides[side].conn = Some(conn);
    }

    /// The input's steps, the oracle after each, then the undisturbed network's liveness.
    pub(super) fn run(&mut self, u: &mut Unstructured<'_>) {
        for _ in 0..MAX_STEPS {
            if u.is_empty() || self.step(u).is_err() {
                break;
            }
            self.events();
        }
        self.settle();
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let side = usize::from(u.arbitrary::<bool>()?);
        // Two more kinds of step when there are datagrams, so that `pair`'s inputs read
        // as they always did.
        let kinds = match (&self.datagrams, self.client_address) {
            (_, ClientAddress::Rebinding) => 18,
            (Some(_), ClientAddress::Fixed) => 17,
            (None, ClientAddress::Fixed) => 15,
        };
        match u.int_in_range(0u8..=kinds)? {
            0..=1 => {
                let len = u.int_in_range(0..=MAX_MESSAGE)?;
                let verified = u.arbitrary()?;
                self.send(side, len, verified);
            }
            2..=3 => {
                let max = u.int_in_range(1..=16 * 1024)?;
                self.read_all(side, max);
            }
            4 => {
                let pick = u.arbitrary::<u8>()?;
                self.abandon(side, pick, u.arbitrary()?);
            }
            16 => {
                let len = u.int_in_range(0..=1_200)?;
                if let (Some(d), Some(conn)) = (&mut self.datagrams, self.sides[side].conn) {
                    d.send(&mut self.net.nodes[side].ep, conn, side, len);
                    self.net.collect();
                }
            }
            17 => {
                if let (Some(d), Some(conn)) = (&mut self.datagrams, self.sides[side].conn) {
                    d.receive(&mut self.net.nodes[side].ep, conn, side);
                }
            }
            18 => self.net.rebind(0),
            _ => self.net.apply(NetOp::arbitrary(u, Duration::from_millis(400))?),
        }
        Ok(())
    }

    fn send(&mut self, side: usize, len: usize, verified: bool) {
        let Some(conn) = self.sides[side].conn else { return };
        let k = self.messages.len() as u32;
        let data = Bytes::from_static(content(k, len));
        // Harness: `m` and a number are far below a label's limit.
        let label = Label::new(Bytes::from(format!("m{k}"))).expect("a short label");
        let ep = &mut self.net.nodes[side].ep;
        let sent = if verified {
            ep.send_verified_message(conn, Some(label), data)
        } else {
            ep.send_message(conn, Some(label), data)
        };
        if let Ok(stream) = sent {
            let len = len as u64;
            self.messages.insert(
                k,
                (
                    side,
                    Sent {
                        len,
                        abandoned: false,
                    },
                ),
            );
            self.sides[side].sent.insert(
                stream,
                (
                    k,
                    Sent {
                        len,
                        abandoned: false,
                    },
                ),
            );
        }
        self.net.collect();
    }

    /// The sender resets (or the receiver stops) one of the streams, picked by `pick`.
    fn abandon(&mut self, side: usize, pick: u8, stop: bool) {
        let s = &self.sides[side];
        let Some(conn) = s.conn else { return };
        let ep = &mut self.net.nodes[side].ep;
        let k = if stop {
            let ids: Vec<_> = s
                .incoming
                .iter()
                .filter(|(_, i)| !i.ended)
                .map(|(&id, i)| (id, i.k))
                .collect();
            let Some(&(id, k)) = ids.get(usize::from(pick) % ids.len().max(1)) else {
                return;
            };
            if ep.stop_sending(conn, id, STOP_CODE).is_err() {
                return;
            }
            // Harness: `id` was taken from this map's keys just above.
            self.sides[side].incoming.get_mut(&id).expect("listed").ended = true;
            self.sides[side].stopped.insert(k);
            k
        } else {
            let ids: Vec<_> = s.sent.iter().map(|(&id, (k, _))| (id, *k)).collect();
            let Some(&(id, k)) = ids.get(usize::from(pick) % ids.len().max(1)) else {
                return;
            };
            if ep.reset_stream(conn, id, RESET_CODE).is_err() {
                return;
            }
            k
        };
        if let Some((_, m)) = self.messages.get_mut(&k) {
            m.abandoned = true;
        }
        self.net.collect();
    }

    /// Reads every incoming stream once, at most `max` bytes each, checking each byte.
    fn read_all(&mut self, side: usize, max: usize) {
        let Some(conn) = self.sides[side].conn else { return };
        let ids: Vec<StreamId> = self.sides[side].incoming.keys().copied().collect();
        for id in ids {
            let ep = &mut self.net.nodes[side].ep;
            let s = &mut self.sides[side];
            // Harness: `id` is one of this map's keys, listed above.
            let inc = s.incoming.get_mut(&id).expect("listed");
            if inc.ended {
                continue;
            }
            match ep.read(conn, id, max) {
                Ok(Read::Data { offset, bytes }) => {
                    check_read(inc, offset, &bytes);
                    inc.read += bytes.len() as u64;
                    if inc.read == inc.len {
                        s.read_whole.insert(inc.k);
                    }
                }
                Ok(Read::Finished) => {
                    assert_eq!(inc.read, inc.len, "finished short");
                    inc.ended = true;
                    s.delivered.insert(inc.k);
                    s.read_whole.insert(inc.k);
                }
                Ok(Read::Reset { .. }) => inc.ended = true,
                // Oracle: nothing alters bytes in this target, so a digest that fails is weir's.
                Ok(Read::VerificationFailed { .. }) => panic!("digest failed with no one changing bytes"),
                Ok(Read::Pending) | Err(_) => {}
            }
        }
        self.net.collect();
    }

    /// Takes both sides' events into the model; a watched node's events are checked for
    /// a protocol violation (all its peers are honest), and its bounds.
    fn events(&mut self) {
        for side in 0..2 {
            let events = core::mem::take(&mut self.net.nodes[side].events);
            for e in events {
                self.event(side, e);
            }
        }
        for node in &mut self.net.nodes[2..] {
            for e in node.events.drain(..) {
                if let Event::Closed { reason, .. } = e {
                    assert!(
                        !matches!(reason, CloseReason::ProtocolViolation { .. }),
                        "a relay saw a protocol violation from an honest peer: {reason:?}"
                    );
                }
            }
            super::endpoint::check_bounds(&node.ep);
        }
    }

    fn event(&mut self, side: usize, e: Event) {
        if let Event::StreamDelivery { stream, delivery, .. } = e {
            return self.check_delivery(side, stream, delivery);
        }
        let s = &mut self.sides[side];
        match e {
            Event::Connected { conn, negotiated, .. } => {
                assert_eq!(negotiated.version, self.version);
                s.conn = Some(conn);
            }
            Event::StreamOpened { stream, header, .. } => {
                // Oracle: this target labels every message `m{k}`; a stream without such a label is
                // not one it opened: the finding.
                let label = header.label.as_ref().expect("every message is labelled");
                let k: u32 = label.as_str()[1..].parse().expect("a label this target wrote");
                let (_, sent) = &self.messages[&k];
                assert_eq!(header.total_len, Some(sent.len), "announced length");
                s.incoming.insert(
                    stream,
                    Incoming {
                        k,
                        len: sent.len,
                        read: 0,
                        ended: false,
                    },
                );
            }
            Event::Closed { reason, .. } => {
                assert!(
                    !matches!(reason, CloseReason::ProtocolViolation { .. }),
                    "side {side} saw a protocol violation from an honest peer: {reason:?}"
                );
                s.gone = true;
            }
            Event::HandshakeFailed { .. } => s.gone = true,
            _ => {}
        }
    }

    /// The sender's outcome for a message agrees with what its receiver did: delivered only
    /// once the receiver read every byte, failed only with the code it stopped reading with.
    fn check_delivery(&self, side: usize, stream: StreamId, delivery: Delivery) {
        // Oracle: an outcome for a stream this side never sent is the finding.
        let (k, _) = self.sides[side]
            .sent
            .get(&stream)
            .expect("an outcome for a stream this side sent");
        let receiver = &self.sides[1 - side];
        match delivery {
            Delivery::Delivered { relays } => assert!(
                relays == 0 && receiver.read_whole.contains(k),
                "message {k} reported delivered, but its receiver has not read it all"
            ),
            Delivery::Failed { code, .. } => assert!(
                code == STOP_CODE && receiver.stopped.contains(k),
                "message {k} reported failed with code {code}, but its receiver did not stop it"
            ),
        }
    }

    /// Messages that should still arrive and have not.
    fn outstanding(&self) -> usize {
        self.messages
            .iter()
            .filter(|(k, (from, m))| !m.abandoned && !self.sides[1 - from].delivered.contains(k))
            .count()
    }

    /// Lets an undisturbed network carry everything, both applications reading all they
    /// can, then judges liveness.
    fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            if self.sides.iter().any(|s| s.gone) || self.outstanding() == 0 || !self.net.settle_step() {
                break;
            }
            self.events();
            self.read_all(0, usize::MAX);
            self.read_all(1, usize::MAX);
            self.events();
        }
        if self.sides.iter().all(|s| !s.gone) {
            assert_eq!(
                self.outstanding(),
                0,
                "messages not delivered over an undisturbed network"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn pair(net: &mut Net) -> Pair<'_> {
        Pair::new(net, 1)
    }

    fn incoming(len: u64) -> Incoming {
        Incoming {
            k: 3,
            len,
            read: 0,
            ended: false,
        }
    }

    #[test]
    fn the_read_oracle_takes_the_bytes_sent_and_fires_on_any_other() {
        check_read(&incoming(100), 0, &content(3, 100)[..40]);
        let mut wrong = content(3, 100)[..40].to_vec();
        wrong[39] ^= 1;
        let fired = |bytes: &[u8], offset| {
            let bytes = bytes.to_vec();
            std::panic::catch_unwind(move || check_read(&incoming(100), offset, &bytes)).is_err()
        };
        assert!(fired(&wrong, 0), "a changed byte");
        assert!(fired(content(4, 40), 0), "another message's bytes");
        assert!(fired(&content(3, 100)[..40], 1), "out of order");
        assert!(fired(content(3, 101), 0), "past the end");
    }

    /// A pair where side 0 sent message 3 on stream 0 and side 1 has done nothing with it.
    fn sent_and_untouched(net: &mut Net) -> Pair<'_> {
        let mut p = pair(net);
        let sent = Sent {
            len: 10,
            abandoned: false,
        };
        p.sides[0].sent.insert(StreamId(0), (3, sent));
        p
    }

    /// A sender told "delivered" for a message its receiver has not read all of.
    #[test]
    #[should_panic(expected = "reported delivered")]
    fn the_delivery_oracle_fires_on_a_delivery_the_receiver_contradicts() {
        let mut net = Net::new();
        let p = sent_and_untouched(&mut net);
        p.check_delivery(0, StreamId(0), Delivery::Delivered { relays: 0 });
    }

    /// A sender told "failed" for a message its receiver never stopped.
    #[test]
    #[should_panic(expected = "reported failed")]
    fn the_delivery_oracle_fires_on_a_failure_the_receiver_contradicts() {
        let mut net = Net::new();
        let p = sent_and_untouched(&mut net);
        p.check_delivery(
            0,
            StreamId(0),
            Delivery::Failed {
                code: STOP_CODE,
                relays: 0,
            },
        );
    }

    #[test]
    fn the_delivery_oracle_takes_the_outcomes_the_receiver_caused() {
        let mut net = Net::new();
        let mut p = sent_and_untouched(&mut net);
        p.sides[1].read_whole.insert(3);
        p.check_delivery(0, StreamId(0), Delivery::Delivered { relays: 0 });
        p.sides[1].stopped.insert(3);
        p.check_delivery(
            0,
            StreamId(0),
            Delivery::Failed {
                code: STOP_CODE,
                relays: 0,
            },
        );
    }
}
