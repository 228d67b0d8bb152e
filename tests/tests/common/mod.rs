//! Workloads shared by the simulator suites: bulk senders that respect backpressure, and
//! receivers that count what they read.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::time::{Duration, Instant};
use weir_core::wire::StreamId;
use weir_core::{ApiError, ConnectionHandle, Event, Priority, Read, StreamHeader};
use weir_sim::{NodeId, Sim};

/// One bulk stream per client connection: `total` bytes written in slices of a shared
/// buffer as fast as the send buffer takes them, then finished.
#[derive(Default)]
pub struct Bulk {
    stream: Option<StreamId>,
    written: u64,
    total: u64,
    priority: Priority,
}

/// The traffic of one simulation: bulk senders on `client` nodes, counting receivers.
pub struct Traffic {
    chunk: Bytes,
    /// Bulk transfers by (client node, connection).
    pub bulk: BTreeMap<(NodeId, ConnectionHandle), Bulk>,
    /// Bytes read, by (server node, server-side connection).
    pub delivered: BTreeMap<(NodeId, ConnectionHandle), u64>,
    /// Server-side connections (on nodes that send no bulk) in the order they connected.
    pub accepted: Vec<(NodeId, ConnectionHandle)>,
    /// Writes refused for a full send buffer, and Writable events seen.
    pub would_block: u64,
    pub writable: u64,
    /// Receivers read at most this many bytes per read call burst (None: all there is).
    pub read_budget: Option<u64>,
    /// Receivers leave unread what the connections from this address send (an application
    /// that has not got round to them).
    pub unread_from: Option<SocketAddr>,
}

impl Traffic {
    pub fn new() -> Self {
        Traffic {
            chunk: Bytes::from(vec![0x42u8; 256 << 10]),
            bulk: BTreeMap::new(),
            delivered: BTreeMap::new(),
            accepted: Vec::new(),
            would_block: 0,
            writable: 0,
            read_budget: None,
            unread_from: None,
        }
    }

    /// Sends `total` bytes on `conn` of `node` once it is connected.
    pub fn bulk(&mut self, node: NodeId, conn: ConnectionHandle, total: u64, priority: Priority) {
        self.bulk.insert(
            (node, conn),
            Bulk {
                total,
                priority,
                ..Bulk::default()
            },
        );
    }

    /// Bytes read on the server side of the `i`-th accepted connection.
    #[allow(dead_code, reason = "the hostile suite finds its connection by address")]
    pub fn delivered_by(&self, i: usize) -> u64 {
        self.accepted
            .get(i)
            .and_then(|k| self.delivered.get(k))
            .copied()
            .unwrap_or(0)
    }

    fn pump(&mut self, sim: &mut Sim, node: NodeId, conn: ConnectionHandle) {
        let Some(b) = self.bulk.get_mut(&(node, conn)) else {
            return;
        };
        let ep = sim.endpoint(node);
        let stream = match b.stream {
            Some(s) => s,
            None => {
                let Ok(s) = ep.open_stream(conn, StreamHeader::default()) else {
                    return;
                };
                ep.set_priority(conn, s, b.priority).unwrap();
                b.stream = Some(s);
                s
            }
        };
        while b.written < b.total {
            let len = (b.total - b.written).min(self.chunk.len() as u64) as usize;
            match ep.write(conn, stream, self.chunk.slice(..len)) {
                Ok(n) => b.written += n as u64,
                Err(ApiError::WouldBlock) => {
                    self.would_block += 1;
                    return;
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        let _ = ep.finish(conn, stream);
    }

    /// Reads what `stream` has (within the read budget); returns the bytes read.
    pub fn drain(&mut self, sim: &mut Sim, node: NodeId, conn: ConnectionHandle, stream: StreamId) -> u64 {
        let mut budget = self.read_budget.unwrap_or(u64::MAX);
        let mut got = 0;
        while budget > 0 {
            match sim
                .endpoint(node)
                .read(conn, stream, budget.min(usize::MAX as u64) as usize)
            {
                Ok(Read::Data { bytes, .. }) => {
                    got += bytes.len() as u64;
                    budget -= bytes.len() as u64;
                }
                _ => break,
            }
        }
        *self.delivered.entry((node, conn)).or_default() += got;
        got
    }

    /// The event handler: call it with every event of the simulation.
    pub fn on_event(&mut self, sim: &mut Sim, node: NodeId, event: &Event) {
        match *event {
            Event::Connected { conn, .. } if self.bulk.contains_key(&(node, conn)) => {
                self.pump(sim, node, conn)
            }
            // A node that sends bulk is a client; the others' connections are accepted ones.
            Event::Connected { conn, .. } if !self.bulk.keys().any(|&(n, _)| n == node) => {
                self.accepted.push((node, conn))
            }
            Event::Writable { conn } => {
                self.writable += 1;
                self.pump(sim, node, conn);
            }
            Event::StreamsAvailable { conn } => self.pump(sim, node, conn),
            Event::StreamReadable { conn, stream } => {
                let from = sim.endpoint_ref(node).remote_address(conn);
                if from.is_none() || from != self.unread_from {
                    self.drain(sim, node, conn, stream);
                }
            }
            _ => {}
        }
    }
}

/// The three controllers weir ships, each with its name as the suites print it.
#[allow(
    dead_code,
    reason = "the suites that run every controller use it, the others not"
)]
pub fn controllers() -> [(CongestionAlgorithm, &'static str); 3] {
    [
        (CongestionAlgorithm::Bbr, "BBR"),
        (CongestionAlgorithm::NewReno, "NewReno"),
        (CongestionAlgorithm::Ledbat(LedbatConfig::default()), "LEDBAT"),
    ]
}

/// Runs `sim` until `secs` seconds from its start, `traffic` handling every event.
#[allow(
    dead_code,
    reason = "the suites that measure spans of a bulk run use it, the others not"
)]
pub fn run_to(sim: &mut Sim, traffic: &RefCell<Traffic>, secs: u64) {
    run_to_time(sim, traffic, Duration::from_secs(secs));
}

/// As [`run_to`], until `at` from the start.
#[allow(
    dead_code,
    reason = "the suites that measure spans of a bulk run use it, the others not"
)]
pub fn run_to_time(sim: &mut Sim, traffic: &RefCell<Traffic>, at: Duration) {
    sim.run_until(
        Instant::ZERO + at,
        |sim, node, e| traffic.borrow_mut().on_event(sim, node, &e),
        |_| false,
    );
}
