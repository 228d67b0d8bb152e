//! `endpoint`: one endpoint under everything the outside world and its own application can
//! do to it. Datagrams come from many addresses: two honest peers (which connect to it,
//! send it messages and read what it sends), copies of their datagrams with fuzzed bytes
//! (resealed so they reach the frame parser instead of dying at the checksum), and
//! raw garbage. The application issues any [`Command`] (
//! connect, open, write, finish, send, read, reset, stop, close, pipe) with fuzzed
//! arguments, and time only moves forward.
//!
//! Oracle: no panic; the memory bound holds after every step (connections within
//! `max_connections`, bytes held for the application within the windows and buffers
//! configured); and the session replays: the endpoint records a trace
//! (`Endpoint::new_traced`) that `trace::replay` must reproduce byte for byte, so every
//! command also round-trips through its trace text.

use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;

use super::net::{addr, Net, NetOp};
use crate::command::{Command, MessageDigest, ReadUnit};
use crate::congestion::CongestionAlgorithm;
use crate::pipe::LocalRead;
use crate::time::Duration;
use crate::verify::Digest;
use crate::wire::{self, Label, Reason, StreamId, VersionRange};
use crate::{Config, ConnectionHandle, Endpoint, Event, Priority, Read, StreamHeader};

const MAX_STEPS: usize = 300;
/// The fuzzed endpoint is node 0; honest peers are nodes 1 and 2.
const TARGET: usize = 0;
/// Longest message or write the application hands over, and longest whole-message read.
const MAX_APP_BYTES: usize = 16 * 1024;

pub(super) fn config() -> Config {
    Config {
        // Unprotected (wire version 1), so fuzzed datagrams reach the state machines
        // without keys; the handshake target covers version 2.
        versions: VersionRange::UNPROTECTED,
        max_connections: 4,
        stream_receive_window: 4 * 1024,
        max_stream_receive_window: 16 * 1024,
        receive_window: 16 * 1024,
        max_receive_window: 64 * 1024,
        // Three connections' initial budgets (twice a 16 KiB window, 8 streams' 2 KiB, and
        // 4 KiB): a fourth starts smaller, or is refused.
        receive_buffer_total: 156 * 1024,
        send_buffer: 128 * 1024,
        // Past each connection's 64 KiB floor, writes share what is left of 96 KiB.
        send_buffer_total: 96 * 1024,
        // Eight streams at first, auto-tuned up to 32 within the budget (spec §8).
        initial_concurrent_streams: 8,
        max_concurrent_streams: 32,
        pipe_buffer: 16 * 1024,
        pipe_buffer_total: 32 * 1024,
        handshake_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(10),
        ..super::stand_in()
    }
}

/// `endpoint`: one endpoint under datagrams from many addresses and any application
/// command; no panic, memory within the configuration after every step, and the recorded
/// trace replays byte for byte.
pub fn endpoint(data: &[u8]) {
    endpoint_on(data, &mut Net::new());
}

/// `endpoint_batch`: [`endpoint`] on a network that hands each delivered datagram over with
/// every later one on its path, in one `Endpoint::handle_datagrams` call (a receive call's
/// GRO batch): the honest peers' runs, with the fuzzed copies of their datagrams among
/// them, reach the target together, while garbage still comes one datagram at a time, each
/// from an address of its own. The same oracle.
pub fn endpoint_batch(data: &[u8]) {
    endpoint_batch_on(data, &mut Net::new());
}

/// [`endpoint_batch`] on a network the caller owns (module `trace`).
pub(super) fn endpoint_batch_on(data: &[u8], net: &mut Net) {
    net.delivery = super::net::Delivery::Batched;
    endpoint_on(data, net);
}

/// [`endpoint`] on a network the caller owns (module `trace`).
pub(super) fn endpoint_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary().unwrap_or(0);
    net.add_traced(config(), seed);
    net.add(super::stand_in(), 11);
    net.add(super::stand_in(), 12);
    let target = net.nodes[TARGET].addr;
    for peer in 1..=2 {
        let now = net.now;
        let _ = net.nodes[peer].ep.connect(now, target);
    }
    net.collect();
    // Datagrams honest peers sent the endpoint (to mutate), and how many of all those
    // queued have been looked at for them.
    let mut seen: (Vec<Bytes>, u64) = (Vec::new(), 0);
    for _ in 0..MAX_STEPS {
        if u.is_empty() || step(&mut u, net, &mut seen).is_err() {
            break;
        }
        peers_read(net);
        net.nodes[TARGET].events.clear();
        check_bounds(&net.nodes[TARGET].ep);
    }
    net.check_replay(TARGET);
}

fn step(u: &mut Unstructured<'_>, net: &mut Net, (seen, inspected): &mut (Vec<Bytes>, u64)) -> Result<()> {
    for f in net.waiting.iter().filter(|f| f.seq >= *inspected) {
        if seen.len() < 32 && f.to == net.nodes[TARGET].addr {
            seen.push(Bytes::copy_from_slice(&f.data));
        }
    }
    *inspected = net.queued;
    let target = net.nodes[TARGET].addr;
    match u.int_in_range(0u8..=11)? {
        0..=3 => net.apply(NetOp::arbitrary(u, Duration::from_millis(2_000))?),
        4..=6 => {
            let command = arbitrary_command(u, net)?;
            let now = net.now;
            let _ = net.nodes[TARGET].ep.command(now, command);
            net.collect();
        }
        7 => {
            // A peer's datagram with fuzzed bytes, resealed, from any address.
            if seen.is_empty() {
                return Ok(());
            }
            let mut d = seen[u.int_in_range(0..=seen.len() - 1)?].to_vec();
            for _ in 0..u.int_in_range(1..=4)? {
                let at = u.int_in_range(0..=d.len().max(1) - 1)?;
                if let Some(b) = d.get_mut(at) {
                    *b = u.arbitrary()?;
                }
            }
            wire::reseal(&mut d, u.arbitrary::<Option<u16>>()?.map(u64::from));
            let from = addr(u.int_in_range(2..=3)?);
            net.inject(from, target, Bytes::from(d));
        }
        8 => {
            let len = u.int_in_range(0..=1400)?;
            let d = Bytes::copy_from_slice(u.bytes(len)?);
            let from = addr(100 + u.int_in_range(0..=15)?);
            net.inject(from, target, d);
        }
        _ => {
            // An honest peer sends a message to the endpoint.
            let peer = u.int_in_range(1..=2)?;
            let len = u.int_in_range(0..=MAX_APP_BYTES)?;
            let conn = ConnectionHandle::from_index(0);
            let _ = net.nodes[peer]
                .ep
                .send_message(conn, None, Bytes::from(alloc::vec![7u8; len]));
            net.collect();
        }
    }
    Ok(())
}

/// The honest peers (every node but the fuzzed one) read everything it sends them.
pub(super) fn peers_read(net: &mut Net) {
    for peer in 1..net.nodes.len() {
        let node = &mut net.nodes[peer];
        for e in core::mem::take(&mut node.events) {
            if let Event::StreamReadable { conn, stream } = e {
                for _ in 0..64 {
                    match node.ep.read(conn, stream, usize::MAX) {
                        Ok(Read::Data { .. }) => {}
                        _ => break,
                    }
                }
            }
        }
    }
    net.collect();
}

/// What the endpoint holds stays within what its configuration allows.
pub(super) fn check_bounds(ep: &Endpoint) {
    check_bounds_within(ep, ep.config());
}

/// [`check_bounds`] against the limits of `c`, which may be tighter than the endpoint's own
/// (the oracle's test).
fn check_bounds_within(ep: &Endpoint, c: &Config) {
    assert!(
        ep.connection_count() <= c.max_connections,
        "connections past the limit"
    );
    let budgets = ep.load().receive_budgets;
    assert!(
        budgets <= c.receive_buffer_total,
        "receive budgets add up to {budgets}"
    );
    let mut sends = 0;
    let mut connections = 0;
    for h in ep.connections() {
        let Some((recv, send)) = ep.buffered(h) else {
            continue;
        };
        sends += send;
        connections += 1;
        // Reassembly is bounded by the connection window; whole-message reads gather at
        // most what the application allowed per stream.
        let recv_bound = c.max_receive_window + c.max_concurrent_streams * MAX_APP_BYTES as u64;
        assert!(recv <= recv_bound, "connection {h} holds {recv} received bytes");
        // Writes are bounded by the send buffer; pipes add at most their total cap.
        let send_bound = c.send_buffer + c.pipe_buffer_total + MAX_APP_BYTES as u64;
        assert!(send <= send_bound, "connection {h} holds {send} bytes to send");
    }
    // The send budget, plus each connection's floor (64 KiB); pipes are bounded by their
    // own cap.
    let sends_bound = c.send_buffer_total
        + connections * c.send_buffer.min(64 << 10)
        + c.pipe_buffer_total
        + MAX_APP_BYTES as u64;
    assert!(sends <= sends_bound, "send buffers add up to {sends}");
}

/// One of the target's live handles, or one that names no live connection (a slot's first
/// generation, which may be gone or reused, or a slot never used).
fn conn(u: &mut Unstructured<'_>, net: &Net) -> Result<ConnectionHandle> {
    let live: Vec<ConnectionHandle> = net.nodes[TARGET].ep.connections().collect();
    Ok(match live.get(u.int_in_range(0..=live.len())?) {
        Some(&h) => h,
        None => ConnectionHandle::from_index(u.int_in_range(0..=5)?),
    })
}

fn stream(u: &mut Unstructured<'_>) -> Result<StreamId> {
    Ok(StreamId(u.int_in_range(0..=19)?))
}

fn label(u: &mut Unstructured<'_>) -> Result<Option<Label>> {
    const LABELS: [&str; 3] = ["/a", "/contract/put", "/eth/68"];
    Ok(match u.int_in_range(0..=3)? {
        3 => None,
        i => Label::from_static(LABELS[i]).ok(),
    })
}

fn payload(u: &mut Unstructured<'_>) -> Result<Bytes> {
    let len = u.int_in_range(0..=MAX_APP_BYTES)?;
    let fill = u.arbitrary::<u8>()?;
    Ok(Bytes::from(alloc::vec![fill; len]))
}

/// Any application command, with arguments near the endpoint's real handles and streams.
pub(super) fn arbitrary_command(u: &mut Unstructured<'_>, net: &Net) -> Result<Command> {
    Ok(match u.int_in_range(0u8..=17)? {
        0 => Command::Connect {
            remote: net.nodes[u.int_in_range(1..=2)?].addr,
            congestion: if u.arbitrary()? {
                Some(CongestionAlgorithm::NewReno)
            } else {
                None
            },
            server: None,
        },
        1 => {
            let mut header = StreamHeader::default();
            if let Some(l) = label(u)? {
                header = header.with_label(l);
            }
            if u.arbitrary()? {
                header = header.with_total_len(u.int_in_range(0..=MAX_APP_BYTES as u64)?);
            }
            if u.arbitrary()? {
                let len = u.int_in_range(0..=8)?;
                header = header.with_digest(Digest::of(u.bytes(len)?));
            }
            Command::OpenStream {
                conn: conn(u, net)?,
                header,
            }
        }
        2 => Command::Write {
            conn: conn(u, net)?,
            stream: stream(u)?,
            data: payload(u)?,
        },
        3 => Command::SetPriority {
            conn: conn(u, net)?,
            stream: stream(u)?,
            priority: *u.choose(&[Priority::High, Priority::Normal, Priority::Low])?,
        },
        4 => Command::Finish {
            conn: conn(u, net)?,
            stream: stream(u)?,
        },
        5 => Command::SendMessage {
            conn: conn(u, net)?,
            label: label(u)?,
            data: payload(u)?,
            digest: if u.arbitrary()? {
                MessageDigest::Attached
            } else {
                MessageDigest::None
            },
        },
        6 => Command::ResetStream {
            conn: conn(u, net)?,
            stream: stream(u)?,
            code: u.arbitrary::<u16>()?.into(),
        },
        7 => Command::StopSending {
            conn: conn(u, net)?,
            stream: stream(u)?,
            code: u.arbitrary::<u16>()?.into(),
        },
        8 => Command::Read {
            conn: conn(u, net)?,
            stream: stream(u)?,
            max_len: u.int_in_range(0..=MAX_APP_BYTES as u64)?,
            unit: if u.arbitrary()? {
                ReadUnit::Message
            } else {
                ReadUnit::Contiguous
            },
        },
        9 => Command::Close {
            conn: conn(u, net)?,
            code: u.arbitrary::<u16>()?.into(),
            reason: Reason::new(Bytes::from_static(b"fuzz")).unwrap_or_default(),
        },
        11 => Command::DeferDelivery {
            conn: conn(u, net)?,
            stream: stream(u)?,
        },
        12 => Command::ConfirmDelivery {
            conn: conn(u, net)?,
            stream: stream(u)?,
        },
        13 => Command::Release { conn: conn(u, net)? },
        14 => Command::AcceptStream { conn: conn(u, net)? },
        15 => Command::NextMessage {
            conn: conn(u, net)?,
            max_len: u.int_in_range(0..=MAX_APP_BYTES as u64)?,
        },
        // Version 1 connections never negotiate RELAY: these reach its refusals only (the
        // relay exchange itself is fuzzed through the simulator's tests, issue 37).
        16 => Command::Reserve { relay: conn(u, net)? },
        17 => Command::ConnectVia {
            relay: conn(u, net)?,
            peer: crate::crypto::keys::PublicKey::from_bytes([u.arbitrary()?; 32]),
        },
        _ => {
            let to = (0..u.int_in_range(1..=3)?)
                .map(|_| conn(u, net))
                .collect::<Result<Vec<_>>>()?;
            Command::Pipe {
                from: conn(u, net)?,
                stream: stream(u)?,
                to,
                local: if u.arbitrary()? {
                    LocalRead::Keep
                } else {
                    LocalRead::Discard
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server holding an unread 5,000-byte message from its client.
    fn holding_a_message() -> (Net, usize) {
        let mut net = Net::new();
        let (client, server) = (
            net.add(super::super::stand_in(), 1),
            net.add(super::super::stand_in(), 2),
        );
        let conn = net.connect(client, server).unwrap();
        net.deliver_all();
        net.nodes[client]
            .ep
            .send_message(conn, None, Bytes::from_static(&[1; 5000]))
            .unwrap();
        net.collect();
        net.deliver_all();
        (net, server)
    }

    #[test]
    fn the_memory_oracle_passes_what_the_configured_bounds_allow() {
        let (net, server) = holding_a_message();
        let ep = &net.nodes[server].ep;
        let held: u64 = ep
            .connections()
            .filter_map(|h| ep.buffered(h))
            .map(|(recv, _)| recv)
            .sum();
        assert_eq!(held, 5000);
        check_bounds(ep);
    }

    #[test]
    #[should_panic(expected = "received bytes")]
    fn the_memory_oracle_fires_on_received_bytes_past_the_bound() {
        let (net, server) = holding_a_message();
        let ep = &net.nodes[server].ep;
        let tight = Config {
            max_receive_window: 4999,
            max_concurrent_streams: 0,
            ..ep.config().clone()
        };
        check_bounds_within(ep, &tight);
    }
}
