//! `handshake`: a client and a server endpoint (spec/protocol.md §4.13-§4.16, §7, §8
//! Handshake) whose datagrams the fuzzer delivers, drops, duplicates, corrupts and replays
//! late, and to which it adds handshake datagrams of its own: ACCEPT, REJECT, RETRY and
//! VERSION_REJECT to the client as if from the server (with the client's real connection
//! id, so they reach it), HELLOs to the server from the client's address and from
//! strangers, and data packets, all with fuzzed fields. Both sides' version ranges and
//! capabilities are fuzzed too, so negotiation succeeds or fails either way.
//!
//! Oracle: the connection attempt ends exactly once, connected or failed, and by the
//! handshake timeout; what it agreed to is within what the client offered; a version
//! failure reports the client's own range; the server never holds more connections than
//! its limit; and once the network goes quiet, both endpoints forget every connection
//! once its timers run out, within ten minutes (no state outlives its peer).

use alloc::boxed::Box;
use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use smallvec::SmallVec;

use super::net::{addr, Net, NetOp};
use crate::handshake::HandshakeError;
use crate::time::Duration;
use crate::wire::{
    self, Accept, Capabilities, ConnectionId, Datagram, Frame, Header, Hello, PacketKind, PacketNumberLen,
    PacketWriter, Reject, RejectReason, Retry, TransportParams, VersionRange, VersionReject,
    MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE,
};
use crate::{Config, Event};

const MAX_STEPS: usize = 400;
/// Datagrams remembered for late replays.
const REMEMBERED: usize = 64;
const CLIENT: usize = 0;
const SERVER: usize = 1;

fn versions(u: &mut Unstructured<'_>) -> Result<VersionRange> {
    let min = u.int_in_range(1..=3)?;
    let max = u.int_in_range(min..=3)?;
    Ok(VersionRange::new(min, max).unwrap_or(VersionRange::V1))
}

fn params(u: &mut Unstructured<'_>) -> Result<TransportParams> {
    let mut p = TransportParams::default();
    if u.arbitrary()? {
        p.max_data = Some(u.int_in_range(0..=1 << 24)?);
        p.max_stream_data = Some(u.int_in_range(0..=1 << 22)?);
        p.max_streams = Some(u.int_in_range(0..=300)?);
        p.max_datagram_size = Some(u.int_in_range(1200..=65_527)?);
        p.idle_timeout_ms = Some(u.int_in_range(0..=60_000)?);
        p.max_ack_delay_ms = Some(u.int_in_range(0..=wire::MAX_ACK_DELAY_MS)?);
    }
    Ok(p)
}

fn token(u: &mut Unstructured<'_>) -> Result<Bytes> {
    let len = u.int_in_range(1..=wire::MAX_TOKEN_LEN)?;
    Ok(Bytes::copy_from_slice(u.bytes(len)?))
}

/// Encodes one handshake packet carrying `frame`, padded like a HELLO must be.
fn packet(kind: PacketKind, dcid: ConnectionId, number: u64, frame: Frame) -> Option<Bytes> {
    let mut buf = alloc::vec![0u8; MAX_DATAGRAM_SIZE];
    let header = Header {
        version: crate::wire::VERSION_1,
        key_phase: crate::wire::KeyPhase::Zero,
        kind,
        dcid,
        number,
        number_len: PacketNumberLen::Four,
        timestamp: 0,
    };
    let mut w = PacketWriter::new(&mut buf, &header).ok()?;
    w.push(&frame).ok()?;
    w.pad_to(MIN_DATAGRAM_SIZE).ok()?;
    let len = w.finish().ok()?;
    buf.truncate(len);
    Some(Bytes::from(buf))
}

/// The client's connection id, from the HELLOs it sent.
fn client_cid(remembered: &[(usize, Bytes)]) -> Option<ConnectionId> {
    remembered
        .iter()
        .find_map(|(from, d)| match wire::decode(d.clone(), None) {
            Ok(Datagram::Packet(p)) if *from == CLIENT => match p.header.kind {
                PacketKind::Handshake { scid } => Some(scid),
                PacketKind::Data => None,
            },
            _ => None,
        })
}

/// `handshake`: client and server under loss, corruption, replays and forged handshake
/// datagrams; the attempt ends exactly once, in time, within what was offered, and no state
/// outlives a silent peer.
pub fn handshake(data: &[u8]) {
    handshake_on(data, &mut Net::new());
}

/// [`handshake`] on a network the caller owns (module `trace`).
pub(super) fn handshake_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u, net);
}

fn run(u: &mut Unstructured<'_>, net: &mut Net) -> Result<()> {
    let base = Config {
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        keep_alive: Some(Duration::from_secs(1)),
        max_connections: 3,
        ..Config::default()
    };
    let client_config = Config {
        versions: versions(u)?,
        capabilities: Capabilities::from_bits(u.int_in_range(0..=3)?),
        ..base.clone()
    };
    let server_config = Config {
        versions: versions(u)?,
        capabilities: Capabilities::from_bits(u.int_in_range(0..=3)?),
        ..base
    };
    let offered = (client_config.versions, client_config.capabilities);
    let timeout = client_config.handshake_timeout;
    net.add(client_config, u.arbitrary()?);
    net.add(server_config, u.arbitrary()?);
    let server_addr = net.nodes[SERVER].addr;
    let client_addr = net.nodes[CLIENT].addr;
    // Harness, not input: a new endpoint's first connection always starts (nothing fuzzed
    // has run yet).
    let conn = net.nodes[CLIENT]
        .ep
        .connect(net.now, server_addr)
        .expect("a first connection");
    net.collect();
    let started = net.now;
    let mut remembered: Vec<(usize, Bytes)> = Vec::new();
    let mut outcome: Option<bool> = None;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        for f in &net.waiting {
            if remembered.len() < REMEMBERED {
                let from = usize::from(f.from == server_addr);
                remembered.push((from, Bytes::copy_from_slice(&f.data)));
            }
        }
        match u.int_in_range(0u8..=9)? {
            0..=5 => net.apply(NetOp::arbitrary(u, Duration::from_millis(3_000))?),
            6 if !remembered.is_empty() => {
                // A late copy of something either side sent.
                let (from, d) = remembered[u.int_in_range(0..=remembered.len() - 1)?].clone();
                let (src, dst) = if from == CLIENT {
                    (client_addr, server_addr)
                } else {
                    (server_addr, client_addr)
                };
                net.inject(src, dst, d);
            }
            7 => {
                let Some(cid) = client_cid(&remembered) else {
                    continue;
                };
                let scid = ConnectionId(u.arbitrary()?);
                let frame = match u.int_in_range(0u8..=2)? {
                    0 => Frame::Accept(Box::new(Accept {
                        version: u.int_in_range(0..=3)?,
                        capabilities: Capabilities::from_bits(u.int_in_range(0..=7)?),
                        params: params(u)?,
                    })),
                    1 => Frame::Reject(Reject {
                        reason: RejectReason(u.int_in_range(0..=6)?),
                        versions: versions(u)?,
                    }),
                    _ => Frame::Retry(Retry { token: token(u)? }),
                };
                let datagram = if u.ratio(1, 4)? {
                    let mut buf = [0u8; MIN_DATAGRAM_SIZE];
                    let mut ranges = SmallVec::new();
                    ranges.push(versions(u)?);
                    let reject = VersionReject {
                        dcid: cid,
                        scid,
                        versions: ranges,
                    };
                    reject
                        .encode(&mut buf)
                        .ok()
                        .map(|len| Bytes::copy_from_slice(&buf[..len]))
                } else {
                    packet(PacketKind::Handshake { scid }, cid, u.int_in_range(0..=3)?, frame)
                };
                if let Some(d) = datagram {
                    net.inject(server_addr, client_addr, d);
                }
            }
            8 => {
                let hello = Frame::Hello(Box::new(Hello {
                    versions: versions(u)?,
                    capabilities: Capabilities::from_bits(u.int_in_range(0..=7)?),
                    token: if u.arbitrary()? { token(u)? } else { Bytes::new() },
                    params: params(u)?,
                }));
                let from = if u.arbitrary()? {
                    client_addr
                } else {
                    addr(100 + u.int_in_range(0..=7)?)
                };
                let scid = ConnectionId(u.arbitrary()?);
                let dcid = ConnectionId(u.arbitrary()?);
                if let Some(d) = packet(PacketKind::Handshake { scid }, dcid, 0, hello) {
                    net.inject(from, server_addr, d);
                }
            }
            _ => {
                // A data packet for a connection id the fuzzer picks: unknown ids are dropped.
                let dcid = ConnectionId(u.arbitrary()?);
                if let Some(d) = packet(PacketKind::Data, dcid, u.int_in_range(0..=8)?, Frame::Ping) {
                    net.inject(client_addr, server_addr, d);
                }
            }
        }
        outcome = check(net, conn, offered, outcome);
        assert!(
            net.nodes[SERVER].ep.connection_count() <= 3,
            "server past its connection limit"
        );
    }
    // The network goes quiet: the attempt ends by the handshake timeout, and every
    // connection on both sides is forgotten within the idle timeout after that.
    net.waiting.clear();
    net.wait_until(started + timeout);
    outcome = check(net, conn, offered, outcome);
    assert!(outcome.is_some(), "the handshake outlived its timeout");
    // Every connection on both sides is forgotten once its timers run out: the idle
    // timeout, or the closing or draining period of three PTOs (spec §8, RFC 9000 §10.2),
    // which an RTT the fuzzer stretched makes long (a reply held back 5.8 s gives a PTO of
    // 17 s: a finding, fuzz/README.md). Ten minutes bound both.
    net.waiting.clear();
    net.wait_until(net.now + Duration::from_secs(600));
    check(net, conn, offered, outcome);
    for node in &net.nodes {
        assert_eq!(node.ep.connection_count(), 0, "state outlived a silent peer");
    }
    Ok(())
}

/// Checks the client's events: `Some(true)` once connected, `Some(false)` once failed.
fn check(
    net: &mut Net,
    conn: crate::ConnectionHandle,
    offered: (VersionRange, Capabilities),
    mut outcome: Option<bool>,
) -> Option<bool> {
    let events = core::mem::take(&mut net.nodes[CLIENT].events);
    for e in events {
        match e {
            Event::Connected {
                conn: c, negotiated, ..
            } if c == conn => {
                assert_eq!(outcome, None, "the attempt ended twice");
                assert!(offered.0.contains(negotiated.version), "a version not offered");
                // Version 2 is always sealed, version 1 never.
                assert_eq!(
                    negotiated.cipher.is_some(),
                    negotiated.version == 2,
                    "{negotiated:?}"
                );
                assert!(
                    offered.1.contains(negotiated.capabilities),
                    "capabilities not offered"
                );
                outcome = Some(true);
            }
            Event::HandshakeFailed { conn: c, reason } if c == conn => {
                assert_eq!(outcome, None, "the attempt ended twice");
                if let HandshakeError::NoCommonVersion { ours, .. } = reason {
                    assert_eq!(ours, offered.0, "reported our range wrong");
                }
                outcome = Some(false);
            }
            _ => {}
        }
    }
    net.nodes[SERVER].events.clear();
    outcome
}
