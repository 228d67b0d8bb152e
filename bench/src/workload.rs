//! The four workloads, written once over [`Link`]: what the client sends, what the server
//! answers, and what is timed. Every peer runs exactly this code; only the link differs.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The workloads of the comparison (issue 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// One 64 MiB message; the server checks its length and CRC-32 and answers with them.
    Bulk,
    /// 10,000 messages of 1 KiB one way, then one answer: messages per second.
    Messages,
    /// 1,000 sequential round trips of a 64-byte request and a 64-byte response.
    Rtt,
    /// 100 sequential requests of 1 MiB, each answered with 64 bytes.
    BigRequest,
}

impl Workload {
    /// Every workload, in the order of the table.
    pub const ALL: [Workload; 4] = [
        Workload::Bulk,
        Workload::Messages,
        Workload::Rtt,
        Workload::BigRequest,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Messages => "messages",
            Workload::Rtt => "rtt",
            Workload::BigRequest => "big-request",
        }
    }

    /// Where the two sides run: round trips measure latency, and on a 2-vCPU machine a
    /// wake-up of the other CPU costs tens of µs, so both sides share one CPU; the
    /// throughput workloads give each side its own.
    pub fn placement(self) -> Placement {
        match self {
            Workload::Rtt => Placement::SameCpu,
            _ => Placement::SplitCpus,
        }
    }

    /// The figures this workload reports, in table order: (key, unit, higher is better).
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Workload::Bulk => &[Metric::BulkMBps],
            Workload::Messages => &[Metric::MessagesPerSec],
            Workload::Rtt => &[Metric::RttP50, Metric::RttP95, Metric::RttP99],
            Workload::BigRequest => &[Metric::BigP50, Metric::BigP95],
        }
    }
}

/// One figure of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Bulk goodput, 10^6 bytes per second.
    BulkMBps,
    /// Messages delivered per second.
    MessagesPerSec,
    /// Round-trip time percentiles, µs.
    RttP50,
    /// See [`Metric::RttP50`].
    RttP95,
    /// See [`Metric::RttP50`].
    RttP99,
    /// 1 MiB request to response percentiles, ms.
    BigP50,
    /// See [`Metric::BigP50`].
    BigP95,
    /// The process's peak resident set, MiB.
    PeakRssMiB,
}

impl Metric {
    /// Every metric, for parsing a worker's report.
    pub const ALL: [Metric; 8] = [
        Metric::BulkMBps,
        Metric::MessagesPerSec,
        Metric::RttP50,
        Metric::RttP95,
        Metric::RttP99,
        Metric::BigP50,
        Metric::BigP95,
        Metric::PeakRssMiB,
    ];

    /// The key in a worker's report and the label in the table.
    pub fn key(self) -> &'static str {
        match self {
            Metric::BulkMBps => "MB/s",
            Metric::MessagesPerSec => "msgs/s",
            Metric::RttP50 => "p50 µs",
            Metric::RttP95 => "p95 µs",
            Metric::RttP99 => "p99 µs",
            Metric::BigP50 => "p50 ms",
            Metric::BigP95 => "p95 ms",
            Metric::PeakRssMiB => "peak RSS MiB",
        }
    }
}

/// Which CPUs the client and the server run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Both on CPU 0.
    SameCpu,
    /// The client on CPU 0, the server on CPU 1.
    SplitCpus,
}

impl Placement {
    /// The CPUs of (client, server).
    pub fn cpus(self) -> (usize, usize) {
        match self {
            Placement::SameCpu => (0, 0),
            Placement::SplitCpus => (0, 1),
        }
    }
}

/// The sizes of the workloads.
pub const BULK_LEN: usize = 64 << 20;
/// How many messages the messages workload sends.
pub const MESSAGES: usize = 10_000;
/// The length of each of those.
pub const MESSAGE_LEN: usize = 1024;
/// How many round trips the rtt workload makes.
pub const ROUND_TRIPS: usize = 1_000;
/// The request and response length of a round trip, and the response to a big request.
pub const SMALL_LEN: usize = 64;
/// How many big requests.
pub const BIG_REQUESTS: usize = 100;
/// The length of each.
pub const BIG_LEN: usize = 1 << 20;

/// One side of a connection as the workloads see it: whole messages out, whole messages
/// (or their pieces) in.
#[allow(async_fn_in_trait)]
pub trait Link {
    /// Sends one message (the link may hold it until [`flush`](Self::flush)).
    async fn send(&mut self, msg: Bytes) -> io::Result<()>;
    /// Pushes out whatever [`send`](Self::send) held back.
    async fn flush(&mut self) -> io::Result<()>;
    /// Receives one whole message.
    async fn recv(&mut self) -> io::Result<Bytes>;
    /// Receives one message piece by piece, as the transport hands them over (nothing is
    /// gathered); returns its length.
    async fn recv_each(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<u64>;
}

/// Deterministic, incompressible-looking bytes (xorshift64).
pub fn payload(len: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The server's half of `workload`: answers until the client has all it asked for.
pub async fn serve(workload: Workload, link: &mut impl Link) -> io::Result<()> {
    match workload {
        Workload::Bulk => {
            let mut crc = crc32fast::Hasher::new();
            let len = link.recv_each(&mut |piece| crc.update(piece)).await?;
            let mut answer = len.to_le_bytes().to_vec();
            answer.extend_from_slice(&crc.finalize().to_le_bytes());
            link.send(Bytes::from(answer)).await?;
            link.flush().await
        }
        Workload::Messages => {
            let mut total = 0u64;
            for _ in 0..MESSAGES {
                let m = link.recv().await?;
                if m.len() != MESSAGE_LEN {
                    return Err(bad(format!("a message of {} bytes", m.len())));
                }
                total += m.len() as u64;
            }
            link.send(Bytes::copy_from_slice(&total.to_le_bytes())).await?;
            link.flush().await
        }
        Workload::Rtt => {
            for _ in 0..ROUND_TRIPS {
                let m = link.recv().await?;
                link.send(m).await?;
                link.flush().await?;
            }
            Ok(())
        }
        Workload::BigRequest => {
            let response = payload(SMALL_LEN);
            for _ in 0..BIG_REQUESTS {
                let m = link.recv().await?;
                if m.len() != BIG_LEN {
                    return Err(bad(format!("a request of {} bytes", m.len())));
                }
                link.send(response.clone()).await?;
                link.flush().await?;
            }
            Ok(())
        }
    }
}

/// The client's half of `workload`: sends, waits for the answers, and returns the figures.
pub async fn drive(workload: Workload, link: &mut impl Link) -> io::Result<Vec<(Metric, f64)>> {
    match workload {
        Workload::Bulk => {
            let data = payload(BULK_LEN);
            let crc = crc32fast::hash(&data);
            let start = Instant::now();
            link.send(data).await?;
            link.flush().await?;
            let answer = link.recv().await?;
            let secs = start.elapsed().as_secs_f64();
            let mut expected = (BULK_LEN as u64).to_le_bytes().to_vec();
            expected.extend_from_slice(&crc.to_le_bytes());
            if answer[..] != expected[..] {
                return Err(bad("the server's length and CRC differ from what was sent".into()));
            }
            Ok(vec![(Metric::BulkMBps, BULK_LEN as f64 / secs / 1e6)])
        }
        Workload::Messages => {
            let msg = payload(MESSAGE_LEN);
            let start = Instant::now();
            for _ in 0..MESSAGES {
                link.send(msg.clone()).await?;
            }
            link.flush().await?;
            let answer = link.recv().await?;
            let secs = start.elapsed().as_secs_f64();
            if answer[..] != ((MESSAGES * MESSAGE_LEN) as u64).to_le_bytes() {
                return Err(bad("the server counted other bytes than were sent".into()));
            }
            Ok(vec![(Metric::MessagesPerSec, MESSAGES as f64 / secs)])
        }
        Workload::Rtt => {
            let msg = payload(SMALL_LEN);
            let times = exchanges(link, &msg, ROUND_TRIPS, |echo| {
                (*echo != msg).then(|| "the echo differs from the request".to_string())
            })
            .await?;
            let us = |p| percentile(&times, p).as_secs_f64() * 1e6;
            Ok(vec![
                (Metric::RttP50, us(50)),
                (Metric::RttP95, us(95)),
                (Metric::RttP99, us(99)),
            ])
        }
        Workload::BigRequest => {
            let times = exchanges(link, &payload(BIG_LEN), BIG_REQUESTS, |response| {
                (response.len() != SMALL_LEN).then(|| format!("a response of {} bytes", response.len()))
            })
            .await?;
            let ms = |p| percentile(&times, p).as_secs_f64() * 1e3;
            Ok(vec![(Metric::BigP50, ms(50)), (Metric::BigP95, ms(95))])
        }
    }
}

/// `count` sequential exchanges of `request` for a response, each timed from the send to
/// the response; `wrong` says what is wrong with a response, if anything. Sorted times.
async fn exchanges(
    link: &mut impl Link,
    request: &Bytes,
    count: usize,
    wrong: impl Fn(&Bytes) -> Option<String>,
) -> io::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        link.send(request.clone()).await?;
        link.flush().await?;
        let response = link.recv().await?;
        times.push(start.elapsed());
        if let Some(what) = wrong(&response) {
            return Err(bad(what));
        }
    }
    times.sort_unstable();
    Ok(times)
}

/// The `p`th percentile of `sorted` by nearest rank.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let times = sorted;
    let rank = (p * times.len()).div_ceil(100).max(1);
    times[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let t: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&t, 50), Duration::from_micros(50));
        assert_eq!(percentile(&t, 99), Duration::from_micros(99));
        assert_eq!(
            percentile(&[Duration::from_micros(7)], 50),
            Duration::from_micros(7)
        );
    }

    #[test]
    fn payload_is_deterministic_and_sized() {
        assert_eq!(payload(1000), payload(1000));
        assert_eq!(payload(13).len(), 13);
        assert_ne!(payload(64)[..8], payload(64)[8..16]);
    }
}
