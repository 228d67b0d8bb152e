//! weir through its two adapters. Messages are weir messages (a stream each); the bulk
//! message is read piece by piece from its stream, as the datagrams brought it.

use std::io;

use bytes::Bytes;
use weir_core::Config;

use super::{localhost, pair, runtime, Route};
use crate::workload::{drive, serve, Link, Metric, Placement, Workload};

/// The datagram size of the comparison: quinn's (a 1452-byte UDP payload, what its path-MTU
/// discovery settles on over loopback), and weir's default, which its own path MTU
/// discovery reaches there after starting at 1200.
pub(super) const DATAGRAM: u16 = 1452;
/// The base size, which turns weir's path MTU discovery off: for the row that says what
/// the search is worth.
pub(super) const BASE_DATAGRAM: u16 = 1200;
/// The largest datagram weir sends, for the separate row: loopback's MTU is 64 KiB, so
/// nothing is fragmented, and every per-packet cost is paid once per 64 KB instead of
/// once per 1.4 KB.
pub(super) const LARGE_DATAGRAM: u16 = 65_000;

/// The configuration both sides use: the defaults, with the datagram size given,
/// the count of streams the peer may have open fixed at `WEIR_BENCH_STREAMS` when that is
/// set to a number (`initial_concurrent_streams` and `max_concurrent_streams` both, no
/// auto-tuning: to measure what a count costs a sender of many messages), or starting at
/// `WEIR_BENCH_INITIAL_STREAMS` (`initial_concurrent_streams` only, auto-tuned from there:
/// what the count's ramp costs), and the congestion
/// controller from `WEIR_BENCH_CONGESTION` (`ledbat`, `new-reno`; otherwise the default),
/// and with `WEIR_BENCH_HUGE_PAGES` set, large whole-message buffers advised for huge pages
/// (`weir_driver::advise_huge_pages`, not the default).
pub(crate) fn config(datagram: u16) -> Config {
    config_with(datagram, |name| std::env::var(name).ok())
}

/// [`config`], with the variables read from `var`.
fn config_with(datagram: u16, var: impl Fn(&str) -> Option<String>) -> Config {
    let defaults = Config::default();
    let number = |name| var(name).and_then(|v: String| v.parse().ok());
    let streams = number("WEIR_BENCH_STREAMS");
    let initial = number("WEIR_BENCH_INITIAL_STREAMS");
    let congestion = match var("WEIR_BENCH_CONGESTION").as_deref() {
        Some("ledbat") => weir_core::congestion::CongestionAlgorithm::Ledbat(Default::default()),
        Some("new-reno") => weir_core::congestion::CongestionAlgorithm::NewReno,
        _ => defaults.congestion.clone(),
    };
    Config {
        max_datagram_size: datagram,
        initial_concurrent_streams: streams.or(initial).unwrap_or(defaults.initial_concurrent_streams),
        max_concurrent_streams: streams.unwrap_or(defaults.max_concurrent_streams),
        congestion,
        advise_buffer: var("WEIR_BENCH_HUGE_PAGES")
            .map(|_| weir_tokio::advise_huge_pages as fn(*const u8, usize)),
        ..defaults
    }
}

/// With `WEIR_BENCH_STATS` set, each side's connection statistics go to stderr after the
/// run (datagrams, losses, blocking, and the server's count of streams the client may keep
/// open, which its auto-tuning grows): what to look at first when a figure is off.
fn report_stats(side: &str, stats: &weir_core::ConnectionStats) {
    if std::env::var_os("WEIR_BENCH_STATS").is_some() {
        eprintln!("{side}: {stats:#?}");
    }
}

struct TokioLink(weir_tokio::Connection);

impl Link for TokioLink {
    /// Hands the message over as quinn's peer does (write and finish, nothing confirmed):
    /// `send_message` alone would wait for each message's receipt.
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        Ok(self.0.send_message_with(msg, weir_tokio::Confirm::Queued).await?)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        Ok(self.0.recv_message().await?)
    }

    async fn recv_each(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let mut stream = self.0.accept_stream().await?;
        let mut len = 0;
        while let Some(piece) = stream.read_chunk(usize::MAX).await? {
            len += piece.len() as u64;
            each(&piece);
        }
        Ok(len)
    }
}

pub(super) fn run_tokio(
    workload: Workload,
    placement: Placement,
    datagram: u16,
) -> io::Result<Vec<(Metric, f64)>> {
    pair(
        placement,
        move |ready| {
            runtime()?.block_on(async move {
                let endpoint = weir_tokio::Endpoint::bind(localhost(), config(datagram))?;
                let _ = ready.send(endpoint.local_addr());
                let mut link = TokioLink(endpoint.accept().await?);
                serve(workload, &mut link).await?;
                if let Some(stats) = link.0.stats().await {
                    report_stats("server", &stats);
                }
                endpoint.close().await;
                Ok(())
            })
        },
        move |server| {
            let route = Route::to(server, workload)?;
            runtime()?.block_on(async move {
                let endpoint = weir_tokio::Endpoint::bind(localhost(), config(datagram))?;
                let mut link = TokioLink(endpoint.connect(route.addr()).await?);
                let figures = drive(workload, &mut link).await?;
                if let Some(stats) = link.0.stats().await {
                    report_stats("client", &stats);
                }
                endpoint.close().await;
                Ok(figures)
            })
        },
    )
}

/// The service the request rows ask.
const SERVICE: &str = "/bench/echo";

/// Round trips through weir's request/response calls instead of two messages: the
/// client's `send` holds the request and its `recv` asks it (`Connection::request`); the
/// server's `recv` takes the next request (`accept_request`) and its `send` answers it
/// (`Responder::reply_with`, handed over, as the other rows' sends are).
struct RequestLink {
    conn: weir_tokio::Connection,
    pending: Option<Bytes>,
    responder: Option<weir_tokio::Responder>,
}

impl Link for RequestLink {
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        match self.responder.take() {
            Some(r) => Ok(r.reply_with(msg, weir_tokio::Confirm::Queued).await?),
            None => {
                self.pending = Some(msg);
                Ok(())
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        if let Some(request) = self.pending.take() {
            let service =
                weir_tokio::Label::from_static(SERVICE).map_err(|e| io::Error::other(e.to_string()))?;
            return Ok(self.conn.request(&service, request).await?);
        }
        let (request, responder) = self.conn.accept_request().await?;
        self.responder = Some(responder);
        Ok(request.into_body())
    }

    async fn recv_each(&mut self, _: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        Err(io::Error::other("the request row runs round trips only"))
    }
}

/// weir-tokio's request/response calls, for the round-trip workloads
/// ([`Peer::WeirTokioRequest`](super::Peer::WeirTokioRequest)).
pub(super) fn run_requests(workload: Workload, placement: Placement) -> io::Result<Vec<(Metric, f64)>> {
    let link = |conn| RequestLink {
        conn,
        pending: None,
        responder: None,
    };
    pair(
        placement,
        move |ready| {
            runtime()?.block_on(async move {
                let endpoint = weir_tokio::Endpoint::bind(localhost(), config(DATAGRAM))?;
                let _ = ready.send(endpoint.local_addr());
                let mut link = link(endpoint.accept().await?);
                serve(workload, &mut link).await?;
                endpoint.close().await;
                Ok(())
            })
        },
        move |server| {
            runtime()?.block_on(async move {
                let endpoint = weir_tokio::Endpoint::bind(localhost(), config(DATAGRAM))?;
                let mut link = link(endpoint.connect(server).await?);
                let figures = drive(workload, &mut link).await?;
                endpoint.close().await;
                Ok(figures)
            })
        },
    )
}

/// weir-std's calls block; the workloads' futures are driven by a runtime that has
/// nothing else to run, so blocking inside them is what a thread of a blocking program
/// does.
struct StdLink(weir_std::Connection);

impl Link for StdLink {
    /// As [`TokioLink::send`]: handed over, not confirmed.
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        Ok(self.0.send_message_with(msg, weir_std::Confirm::Queued)?)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        Ok(self.0.recv_message()?)
    }

    async fn recv_each(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let mut stream = self.0.accept_stream()?;
        let mut len = 0;
        while let Some(piece) = stream.read_chunk(usize::MAX)? {
            len += piece.len() as u64;
            each(&piece);
        }
        Ok(len)
    }
}

pub(super) fn run_std(workload: Workload, placement: Placement) -> io::Result<Vec<(Metric, f64)>> {
    pair(
        placement,
        move |ready| {
            let endpoint = weir_std::Endpoint::bind(localhost(), config(DATAGRAM))?;
            let _ = ready.send(endpoint.local_addr());
            let mut link = StdLink(endpoint.accept()?);
            runtime()?.block_on(serve(workload, &mut link))?;
            if let Some(stats) = link.0.stats() {
                report_stats("server", &stats);
            }
            Ok(())
        },
        move |server| {
            let route = Route::to(server, workload)?;
            let endpoint = weir_std::Endpoint::bind(localhost(), config(DATAGRAM))?;
            let mut link = StdLink(endpoint.connect(route.addr())?);
            let figures = runtime()?.block_on(drive(workload, &mut link))?;
            if let Some(stats) = link.0.stats() {
                report_stats("client", &stats);
            }
            Ok(figures)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream count's variables: `WEIR_BENCH_STREAMS` fixes it (both ends of its
    /// range), `WEIR_BENCH_INITIAL_STREAMS` only starts it, and the first wins over the
    /// second; neither set leaves the defaults.
    #[test]
    fn the_stream_count_variables_set_the_count_as_documented() {
        let with = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let c = config_with(DATAGRAM, |name| {
                pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            });
            (c.initial_concurrent_streams, c.max_concurrent_streams)
        };
        let d = Config::default();
        let defaults = (d.initial_concurrent_streams, d.max_concurrent_streams);
        assert_eq!(with(&[]), defaults);
        assert_eq!(with(&[("WEIR_BENCH_INITIAL_STREAMS", "512")]), (512, defaults.1));
        assert_eq!(with(&[("WEIR_BENCH_STREAMS", "48")]), (48, 48));
        assert_eq!(
            with(&[
                ("WEIR_BENCH_STREAMS", "48"),
                ("WEIR_BENCH_INITIAL_STREAMS", "512")
            ]),
            (48, 48)
        );
        assert_eq!(with(&[("WEIR_BENCH_INITIAL_STREAMS", "many")]), defaults);
    }
}
