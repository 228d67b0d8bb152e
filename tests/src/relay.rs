//! A sender, a relay and a receiver driven by hand in rounds, with no simulated links: what
//! the sender sends in a round reaches the relay together, in an [`Arrival`] order of our
//! choosing, so the relay's memory can be measured against the order fragments arrive in.
//! Behind the pipe suite's memory table and the `pipe` benchmark (which also reads how long
//! the relay's own calls took).

use std::net::SocketAddr;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::{Config, Endpoint, Event, LocalRead, PipeId, PipeStats, Read};

/// The order a round's datagrams reach the relay in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// As sent.
    InOrder,
    /// Each run of ten datagrams reversed (Freenet's "realistic reordering").
    RunsOfTenReversed,
    /// Each round's datagrams reversed: the relay never gets the next fragment it would
    /// forward first.
    RoundReversed,
}

/// What one message through the relay gave.
#[derive(Clone, Debug)]
pub struct RelayRun {
    /// The message as the receiver read it (`None` if it did not arrive within the rounds).
    pub received: Option<Bytes>,
    /// The relay's pipe stats, with each figure at its peak over the run.
    pub peak: PipeStats,
    /// Rounds it took.
    pub rounds: u32,
    /// Wall-clock time spent inside the relay endpoint's calls (the benchmark's measure;
    /// never used for a decision, so runs stay deterministic).
    pub relay_busy: std::time::Duration,
}

const ROUND: Duration = Duration::from_millis(5);
const MAX_ROUNDS: u32 = 200_000;

/// Sends `msg` from the sender through the relay (which pipes it with
/// [`LocalRead::Discard`]) to the receiver, all three with `config`, rounds of 5 ms one way.
pub fn relay_message(config: &Config, arrival: Arrival, msg: Bytes) -> RelayRun {
    let addrs: Vec<SocketAddr> = (1..=3).map(|i| SocketAddr::from(([10, 0, 0, i], 1))).collect();
    let mut eps: Vec<Endpoint> = (0..3).map(|i| Endpoint::new(config.clone(), i)).collect();
    let mut now = Instant::ZERO;
    let mut busy = std::time::Duration::ZERO;
    let mut timed = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        f();
        busy += start.elapsed();
    };
    let up = eps[0].connect(now, addrs[1]).expect("a fresh endpoint connects");
    let down = eps[1].connect(now, addrs[2]).expect("a fresh endpoint connects");
    let mut buf = vec![0u8; 65_536];
    let (mut pipe, mut sent, mut received): (Option<PipeId>, bool, Option<Bytes>) = (None, false, None);
    let mut peak = PipeStats::default();
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && received.is_none() {
        rounds += 1;
        // Everything each endpoint sends this round, by destination.
        let mut flights: Vec<Vec<(SocketAddr, Bytes)>> = vec![Vec::new(); 3];
        for (i, ep) in eps.iter_mut().enumerate() {
            let mut send = || {
                while let Some(t) = ep.poll_transmit(now, &mut buf) {
                    if let Some(to) = addrs.iter().position(|a| *a == t.destination) {
                        flights[to].push((addrs[i], Bytes::copy_from_slice(&buf[..t.len])));
                    }
                }
            };
            if i == 1 {
                timed(&mut send);
            } else {
                send();
            }
        }
        now += ROUND;
        for (to, mut flight) in flights.into_iter().enumerate() {
            if to == 1 {
                match arrival {
                    Arrival::InOrder => {}
                    Arrival::RunsOfTenReversed => flight.chunks_mut(10).for_each(|c| c.reverse()),
                    Arrival::RoundReversed => flight.reverse(),
                }
                timed(&mut || {
                    flight
                        .drain(..)
                        .for_each(|(from, d)| eps[1].handle_datagram(now, from, d.into()))
                });
            } else {
                flight
                    .into_iter()
                    .for_each(|(from, d)| eps[to].handle_datagram(now, from, d.into()));
            }
        }
        for (i, ep) in eps.iter_mut().enumerate() {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                if i == 1 {
                    timed(&mut || ep.handle_timeout(now));
                } else {
                    ep.handle_timeout(now);
                }
            }
        }
        for i in 0..3 {
            while let Some(e) = eps[i].poll_event() {
                match e {
                    Event::StreamOpened { conn, stream, .. } if i == 1 => {
                        let relay = &mut eps[1];
                        timed(&mut || pipe = relay.pipe(conn, stream, &[down], LocalRead::Discard).ok());
                    }
                    Event::StreamReadable { conn, stream } if i == 2 => {
                        if let Ok(Read::Data { bytes, .. }) = eps[2].read_message(conn, stream, u64::MAX) {
                            received = Some(bytes);
                        }
                    }
                    _ => {}
                }
            }
        }
        if !sent && eps[0].is_established(up) && eps[1].is_established(down) {
            sent = eps[0].send_message(up, None, msg.clone()).is_ok();
        }
        if let Some(s) = pipe.and_then(|p| eps[1].pipe_stats(p)) {
            peak.waiting_peak = peak.waiting_peak.max(s.waiting_peak);
            peak.in_flight_peak = peak.in_flight_peak.max(s.in_flight_peak);
            peak.fragments_out_of_order = s.fragments_out_of_order;
            peak.bytes_forwarded = s.bytes_forwarded;
        }
    }
    RelayRun {
        received,
        peak,
        rounds,
        relay_busy: busy,
    }
}
