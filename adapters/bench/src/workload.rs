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
    /// The same message, taken whole by the server (as an application that wants the
    /// message, not its pieces, receives it), then checked.
    BulkWhole,
    /// The bulk message over a 40 ms round trip, through weir-sim's impairing proxy as
    /// [`MessagesFar`](Self::MessagesFar): what the congestion controller and the windows'
    /// auto-tuning make of a long path.
    BulkFar,
    /// 10,000 messages of 1 KiB one way, then one answer: messages per second.
    Messages,
    /// The same over a 40 ms round trip: weir-sim's impairing proxy between the two
    /// delays each datagram 20 ms each way (the path of a peer across an ocean).
    MessagesFar,
    /// 1,000 sequential round trips of a 64-byte request and a 64-byte response.
    Rtt,
    /// 100 sequential requests of 1 MiB, each answered with 64 bytes.
    BigRequest,
}

impl Workload {
    /// Every workload, in the order of the table.
    pub const ALL: [Workload; 7] = [
        Workload::Bulk,
        Workload::BulkWhole,
        Workload::BulkFar,
        Workload::Messages,
        Workload::MessagesFar,
        Workload::Rtt,
        Workload::BigRequest,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::BulkWhole => "bulk-whole",
            Workload::BulkFar => "bulk-far",
            Workload::Messages => "messages",
            Workload::MessagesFar => "messages-far",
            Workload::Rtt => "rtt",
            Workload::BigRequest => "big-request",
        }
    }

    /// The delay each datagram is held each way between client and server, for a workload
    /// over a long path; `None` for loopback as it is.
    pub fn one_way_delay(self) -> Option<Duration> {
        match self {
            Workload::MessagesFar | Workload::BulkFar => Some(Duration::from_millis(20)),
            _ => None,
        }
    }

    /// Where the two sides run: round trips measure latency, and on a 2-vCPU machine a
    /// wake-up of the other CPU costs tens of µs, so both sides share one CPU; the
    /// throughput workloads give each side its own. `WEIR_BENCH_RTT_SPLIT=1` gives the
    /// round trips' sides a CPU each too, as two peers on two machines have (what a side's
    /// own work costs it then, apart from the other's).
    pub fn placement(self) -> Placement {
        match self {
            Workload::Rtt if std::env::var_os("WEIR_BENCH_RTT_SPLIT").is_none_or(|v| v != "1") => {
                Placement::SameCpu
            }
            _ => Placement::SplitCpus,
        }
    }

    /// The figures this workload reports, in table order: (key, unit, higher is better).
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Workload::Bulk | Workload::BulkWhole | Workload::BulkFar => {
                &[Metric::BulkMBps, Metric::BulkCpuMs]
            }
            Workload::Messages | Workload::MessagesFar => &[Metric::MessagesPerSec, Metric::MessageCpuUs],
            Workload::Rtt => &[
                Metric::RttP50,
                Metric::RttP95,
                Metric::RttP99,
                Metric::RttStallsPerMs,
                Metric::RttCpuUs,
            ],
            Workload::BigRequest => &[Metric::BigP50, Metric::BigP95, Metric::BigCpuMs],
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
    /// Round trips that took over twice the median, per millisecond the round trips took
    /// in all: the rate at which something outside the exchange (the host's ticks and
    /// softirqs, a timer of the transport's own) stalled one. A peer that adds no stalls of
    /// its own shows raw UDP's rate, however much longer its round trips; a p99 of 1,000
    /// round trips is the tenth slowest, so it turns on how many stalls a run caught and
    /// moves between runs where this rate does not (adapters/bench/rounds.md, "The round
    /// trip's p99 is the host's ticks, counted").
    RttStallsPerMs,
    /// 1 MiB request to response percentiles, ms.
    BigP50,
    /// See [`Metric::BigP50`].
    BigP95,
    /// CPU time of the whole process (client and server) for the 64 MiB, ms: steadier
    /// than the rate on a shared machine, where the rate also counts the time the
    /// hypervisor gave the CPUs to others.
    BulkCpuMs,
    /// The same per message, µs.
    MessageCpuUs,
    /// The same per round trip, µs.
    RttCpuUs,
    /// The same per request, ms.
    BigCpuMs,
    /// The process's peak resident set, MiB.
    PeakRssMiB,
    /// The peak resident set less the file-backed pages resident at the end (the bench
    /// binary's code, mapped 16 pages to a fault), MiB: about the peak of the memory the
    /// process allocated. Every peer runs from the same binary, so its code's pages, most of
    /// a small workload's peak (about 7 of 9 MiB for the messages), move with code layout:
    /// a change to weir moved them by 0.5 MiB where the heap's peak moved by 0.1.
    PeakAnonMiB,
}

impl Metric {
    /// Every metric, for parsing a worker's report.
    pub const ALL: [Metric; 14] = [
        Metric::BulkMBps,
        Metric::MessagesPerSec,
        Metric::RttP50,
        Metric::RttP95,
        Metric::RttP99,
        Metric::RttStallsPerMs,
        Metric::BigP50,
        Metric::BigP95,
        Metric::BulkCpuMs,
        Metric::MessageCpuUs,
        Metric::RttCpuUs,
        Metric::BigCpuMs,
        Metric::PeakRssMiB,
        Metric::PeakAnonMiB,
    ];

    /// The key in a worker's report and the label in the table.
    pub fn key(self) -> &'static str {
        match self {
            Metric::BulkMBps => "MB/s",
            Metric::MessagesPerSec => "msgs/s",
            Metric::RttP50 => "p50 µs",
            Metric::RttP95 => "p95 µs",
            Metric::RttP99 => "p99 µs",
            Metric::RttStallsPerMs => "over 2 × p50, per ms",
            Metric::BigP50 => "p50 ms",
            Metric::BigP95 => "p95 ms",
            Metric::BulkCpuMs => "CPU ms",
            Metric::MessageCpuUs => "CPU µs per message",
            Metric::RttCpuUs => "CPU µs per round trip",
            Metric::BigCpuMs => "CPU ms per request",
            Metric::PeakRssMiB => "peak RSS MiB",
            Metric::PeakAnonMiB => "peak RSS less file pages MiB",
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
/// How many round trips the rtt workload makes, unless `WEIR_BENCH_ROUND_TRIPS` says.
pub const ROUND_TRIPS: usize = 1_000;

/// How many round trips the rtt workload makes: `WEIR_BENCH_ROUND_TRIPS` when that is a
/// number above zero, else [`ROUND_TRIPS`]. A run of 1,000 lasts about 20 ms here, and its
/// p99 (the tenth slowest) is decided by how many of the kernel's scheduler ticks (every
/// 4 ms) land in it; 10,000 leave each peer's ticks under the 1% a p99 leaves out
/// (this crate's rounds.md, "Issue 35, seventh round").
pub fn round_trips() -> usize {
    std::env::var("WEIR_BENCH_ROUND_TRIPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUND_TRIPS)
}
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
        Workload::Bulk | Workload::BulkWhole | Workload::BulkFar => {
            let mut crc = crc32fast::Hasher::new();
            let len = match workload {
                Workload::BulkWhole => {
                    let whole = link.recv().await?;
                    crc.update(&whole);
                    whole.len() as u64
                }
                _ => link.recv_each(&mut |piece| crc.update(piece)).await?,
            };
            let mut answer = len.to_le_bytes().to_vec();
            answer.extend_from_slice(&crc.finalize().to_le_bytes());
            link.send(Bytes::from(answer)).await?;
            link.flush().await
        }
        Workload::Messages | Workload::MessagesFar => {
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
            for _ in 0..round_trips() {
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
        Workload::Bulk | Workload::BulkWhole | Workload::BulkFar => {
            let data = payload(BULK_LEN);
            let crc = crc32fast::hash(&data);
            let (start, cpu) = (Instant::now(), Cpu::start());
            link.send(data).await?;
            link.flush().await?;
            let answer = link.recv().await?;
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu.per(1, 1e3);
            let mut expected = (BULK_LEN as u64).to_le_bytes().to_vec();
            expected.extend_from_slice(&crc.to_le_bytes());
            if answer[..] != expected[..] {
                return Err(bad("the server's length and CRC differ from what was sent".into()));
            }
            Ok([
                (Metric::BulkMBps, Some(BULK_LEN as f64 / secs / 1e6)),
                (Metric::BulkCpuMs, cpu),
            ]
            .into_iter()
            .filter_map(|(m, v)| Some((m, v?)))
            .collect())
        }
        Workload::Messages | Workload::MessagesFar => {
            let msg = payload(MESSAGE_LEN);
            let (start, cpu) = (Instant::now(), Cpu::start());
            for _ in 0..MESSAGES {
                link.send(msg.clone()).await?;
            }
            link.flush().await?;
            let answer = link.recv().await?;
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu.per(MESSAGES, 1e6);
            if answer[..] != ((MESSAGES * MESSAGE_LEN) as u64).to_le_bytes() {
                return Err(bad("the server counted other bytes than were sent".into()));
            }
            Ok([
                (Metric::MessagesPerSec, Some(MESSAGES as f64 / secs)),
                (Metric::MessageCpuUs, cpu),
            ]
            .into_iter()
            .filter_map(|(m, v)| Some((m, v?)))
            .collect())
        }
        Workload::Rtt => {
            let msg = payload(SMALL_LEN);
            let cpu = Cpu::start();
            let n = round_trips();
            let times = exchanges(link, &msg, n, |echo| {
                (*echo != msg).then(|| "the echo differs from the request".to_string())
            })
            .await?;
            let cpu = cpu.per(n, 1e6);
            let us = |p| percentile(&times, p).as_secs_f64() * 1e6;
            let mut figures = vec![
                (Metric::RttP50, us(50)),
                (Metric::RttP95, us(95)),
                (Metric::RttP99, us(99)),
                (Metric::RttStallsPerMs, stalls_per_ms(&times)),
            ];
            figures.extend(cpu.map(|c| (Metric::RttCpuUs, c)));
            Ok(figures)
        }
        Workload::BigRequest => {
            let request = payload(BIG_LEN);
            let cpu = Cpu::start();
            let times = exchanges(link, &request, BIG_REQUESTS, |response| {
                (response.len() != SMALL_LEN).then(|| format!("a response of {} bytes", response.len()))
            })
            .await?;
            let cpu = cpu.per(BIG_REQUESTS, 1e3);
            let ms = |p| percentile(&times, p).as_secs_f64() * 1e3;
            let mut figures = vec![(Metric::BigP50, ms(50)), (Metric::BigP95, ms(95))];
            figures.extend(cpu.map(|c| (Metric::BigCpuMs, c)));
            Ok(figures)
        }
    }
}

/// The process's CPU time from a start (both sides of a run are threads of this process),
/// where the platform measures it.
struct Cpu(Option<cpu_time::ProcessTime>);

impl Cpu {
    fn start() -> Cpu {
        Cpu(cpu_time::ProcessTime::try_now().ok())
    }

    /// The CPU time since the start, per one of `count`, in seconds times `scale`.
    fn per(self, count: usize, scale: f64) -> Option<f64> {
        let spent = self.0?.try_elapsed().ok()?;
        Some(spent.as_secs_f64() * scale / count as f64)
    }
}

/// `count` sequential exchanges of `request` for a response, each timed from the send to
/// the response; `wrong` says what is wrong with a response, if anything. Sorted times; with
/// `WEIR_BENCH_TIMES=path` set, each time in nanoseconds, one a line, in the order they
/// came, goes to `path` first.
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
    // In the order they came: a stall that recurs every so many exchanges shows as a
    // period (how a yield every 64th read was found, adapters/bench/rounds.md).
    if let Ok(path) = std::env::var("WEIR_BENCH_TIMES") {
        let text: String = times.iter().map(|t| format!("{}\n", t.as_nanos())).collect();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("WEIR_BENCH_TIMES: writing {path} failed: {e}");
        }
    }
    times.sort_unstable();
    Ok(times)
}

/// How many of `sorted` took over twice their median, per millisecond of their sum
/// ([`Metric::RttStallsPerMs`]); 0 for none.
fn stalls_per_ms(sorted: &[Duration]) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let median = percentile(sorted, 50);
    let stalls = sorted.len() - sorted.partition_point(|&t| t <= 2 * median);
    let ms = sorted.iter().sum::<Duration>().as_secs_f64() * 1e3;
    if ms > 0.0 {
        stalls as f64 / ms
    } else {
        0.0
    }
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
    fn stalls_are_counted_over_twice_the_median_per_millisecond() {
        // 96 round trips of 10 µs, two of exactly 20 (not over twice), two of 50: 2 stalls
        // in 96 × 10 + 2 × 20 + 2 × 50 = 1,100 µs.
        let mut t = vec![Duration::from_micros(10); 96];
        t.extend([20, 20, 50, 50].map(Duration::from_micros));
        let rate = stalls_per_ms(&t);
        assert!((rate - 2.0 / 1.1).abs() < 1e-9, "{rate}");
        assert_eq!(stalls_per_ms(&[]), 0.0);
        assert_eq!(stalls_per_ms(&[Duration::from_micros(5); 10]), 0.0);
    }

    #[test]
    fn payload_is_deterministic_and_sized() {
        assert_eq!(payload(1000), payload(1000));
        assert_eq!(payload(13).len(), 13);
        assert_ne!(payload(64)[..8], payload(64)[8..16]);
    }
}
