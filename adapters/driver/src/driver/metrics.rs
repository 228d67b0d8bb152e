//! The endpoint's figures through the `metrics` facade (issue 34): counters and gauges with
//! Prometheus-friendly names (`weir_…`, `_total` for counters, units in the name), labelled
//! with the endpoint's local address so that several endpoints in one process stay apart.
//! Nothing is recorded unless the application installed a recorder (an exporter such as
//! `metrics-exporter-prometheus`, as `weir --metrics-addr` does).
//!
//! Inputs: the core's endpoint counters and load, each live connection's counters, the
//! counters of connections that ended (kept here as sums, so that every counter only
//! grows), and the handshakes' outcomes. Outputs: the figures, published at most once a
//! second: after an input, or a second after the last one that was not shown (an endpoint
//! with nothing happening has nothing new to say, and is not woken for it). Past 10,000
//! connections the second grows by 100 µs for each one more (5 s at 50,000): each
//! publication reads every connection, and this keeps that under 1% of a core ([`period`]).
//! The names and what each means are in [`describe`].
//!
//! Each figure's key (its name and labels) is made once, at the first publication, and the
//! recorder is looked up at every one: publishing allocates nothing of its own, and a
//! recorder installed after the endpoint started still gets the figures.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use metrics::{Key, Label, Level, Metadata, SharedString, Unit};
use weir_core::{ConnectionStats, EndpointLoad, EndpointStats};

use super::Driver;

/// How often the figures are published at most, with up to [`SWEPT_FREELY`] connections.
pub(super) const PERIOD: StdDuration = StdDuration::from_secs(1);

/// The connections a publication may read within [`PERIOD`]; past this many, the period
/// grows with the count, [`PER_CONNECTION`] each.
const SWEPT_FREELY: usize = 10_000;

/// The period's share for each connection past [`SWEPT_FREELY`] (and so for each of all
/// of them, since 10,000 × 100 µs is the one-second [`PERIOD`]). A publication reads every
/// connection's counters; among 50,000 each was cold by then, and the reading took about
/// 0.8 µs a connection: with the period fixed at a second, nearly 9% of the CPU of
/// `weir-bench many` at 50,000 connections went to figures no recorder took
/// (adapters/bench/rounds.md, "After the fifty-fifth round"). 100 µs a connection keeps the
/// reading under 1% of a core at any count: every 5 s at 50,000, every 10 s at 100,000,
/// still within Prometheus' usual scrape interval of 15 s.
const PER_CONNECTION: StdDuration = StdDuration::from_micros(100);

/// The period between publications for `connections` connections: [`PERIOD`], or more
/// with more than [`SWEPT_FREELY`].
pub(super) fn period(connections: usize) -> StdDuration {
    let more = connections.saturating_sub(SWEPT_FREELY);
    PERIOD.saturating_add(PER_CONNECTION.saturating_mul(u32::try_from(more).unwrap_or(u32::MAX)))
}

/// What the driver sums for the figures.
#[derive(Default)]
pub(super) struct Sums {
    /// The counters of the connections that ended, added up.
    pub(super) ended: Totals,
    /// Handshakes that finished, and that failed.
    pub(super) established: u64,
    pub(super) failed: u64,
    /// When the figures may be published again: a [`period`] after they last were (kept as
    /// that sum, not summed at each of the calls that ask).
    pub(super) next: Option<StdInstant>,
    /// Something happened since then that they do not show yet: they are published again
    /// once the period has passed ([`Driver::metrics_deadline`]), so the last change of a
    /// burst shows within a second even if nothing follows it.
    pub(super) stale: bool,
    /// The figures' keys, in [`COUNTERS`]' and [`GAUGES`]' order, once made.
    keys: Option<Box<Keys>>,
}

/// What one publication reads its figures from.
struct Figures {
    ep: EndpointStats,
    load: EndpointLoad,
    /// Handshakes that finished, and that failed.
    established: u64,
    failed: u64,
    /// The connections' counters, ended ones included.
    totals: Totals,
    /// Over the open connections: bytes in flight, congestion windows (added up), and the
    /// largest smoothed RTT in seconds.
    in_flight: u64,
    window: u64,
    rtt: f64,
}

/// A counter: its name, the label beside `local` that tells it apart (if any), and where
/// its value comes from, side by side so that none can be paired with another's value.
type Counter = (
    &'static str,
    Option<(&'static str, &'static str)>,
    fn(&Figures) -> u64,
);

/// The counters, in the order their keys are made and published.
const COUNTERS: [Counter; 20] = [
    ("weir_datagrams_received_total", None, |f| f.ep.datagrams_received),
    ("weir_datagrams_sent_total", None, |f| f.ep.datagrams_sent),
    ("weir_violations_total", None, |f| f.ep.violations),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "malformed")),
        |f| f.ep.dropped_malformed,
    ),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "unknown_connection")),
        |f| f.ep.dropped_unknown_connection,
    ),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "unauthenticated")),
        |f| f.ep.dropped_unauthenticated,
    ),
    ("weir_datagrams_dropped_total", Some(("reason", "banned")), |f| {
        f.ep.dropped_banned
    }),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "rate_limited")),
        |f| f.ep.dropped_rate_limited,
    ),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "stateless_limit")),
        |f| f.ep.stateless_dropped,
    ),
    ("weir_datagrams_dropped_total", Some(("reason", "relay")), |f| {
        f.ep.relay_dropped
    }),
    ("weir_handshakes_total", Some(("outcome", "established")), |f| {
        f.established
    }),
    ("weir_handshakes_total", Some(("outcome", "failed")), |f| f.failed),
    ("weir_bytes_acked_total", None, |f| f.totals.bytes_acked),
    ("weir_bytes_retransmitted_total", None, |f| {
        f.totals.bytes_retransmitted
    }),
    ("weir_packets_lost_total", None, |f| f.totals.packets_lost),
    ("weir_probes_total", None, |f| f.totals.probes),
    ("weir_app_datagrams_total", Some(("what", "sent")), |f| {
        f.totals.app_datagrams_sent
    }),
    ("weir_app_datagrams_total", Some(("what", "received")), |f| {
        f.totals.app_datagrams_received
    }),
    ("weir_app_datagrams_total", Some(("what", "lost")), |f| {
        f.totals.app_datagrams_lost
    }),
    ("weir_app_datagrams_total", Some(("what", "dropped")), |f| {
        f.totals.app_datagrams_dropped
    }),
];

/// A gauge: its name and where its value comes from.
type Gauge = (&'static str, fn(&Figures) -> f64);

/// The gauges, in the order their keys are made and published.
const GAUGES: [Gauge; 8] = [
    ("weir_connections", |f| f.load.connections as f64),
    ("weir_handshakes_pending", |f| f.load.handshakes_pending as f64),
    ("weir_bytes_unread", |f| f.load.bytes_received_unread as f64),
    ("weir_bytes_unacknowledged", |f| {
        f.load.bytes_unacknowledged as f64
    }),
    ("weir_receive_budget_bytes", |f| f.load.receive_budgets as f64),
    ("weir_bytes_in_flight", |f| f.in_flight as f64),
    ("weir_congestion_window_bytes", |f| f.window as f64),
    ("weir_rtt_seconds", |f| f.rtt),
];

/// What the figures are registered under, as the `counter!` and `gauge!` macros would give
/// from this module.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Every figure's key, labelled with the endpoint's local address (one shared string).
struct Keys {
    counters: [Key; COUNTERS.len()],
    gauges: [Key; GAUGES.len()],
}

impl Keys {
    fn new(local: &str) -> Keys {
        let local = SharedString::from(Arc::<str>::from(local));
        let key = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![Label::new("local", local.clone())];
            labels.extend(extra.map(|(k, v)| Label::new(k, v)));
            Key::from_parts(name, labels)
        };
        Keys {
            counters: COUNTERS.map(|(name, extra, _)| key(name, extra)),
            gauges: GAUGES.map(|(name, _)| key(name, None)),
        }
    }
}

/// Connection counters added up.
#[derive(Clone, Copy, Default)]
pub(super) struct Totals {
    bytes_acked: u64,
    bytes_retransmitted: u64,
    packets_lost: u64,
    probes: u64,
    app_datagrams_sent: u64,
    app_datagrams_received: u64,
    app_datagrams_lost: u64,
    app_datagrams_dropped: u64,
}

impl Totals {
    pub(super) fn add(&mut self, s: &ConnectionStats) {
        self.bytes_acked += s.bytes_acked;
        self.bytes_retransmitted += s.bytes_retransmitted;
        self.packets_lost += s.packets_lost;
        self.probes += s.probes;
        self.app_datagrams_sent += s.app_datagrams_sent;
        self.app_datagrams_received += s.app_datagrams_received;
        self.app_datagrams_lost += s.app_datagrams_lost;
        self.app_datagrams_dropped += s.app_datagrams_dropped;
    }
}

/// Gives every figure its unit and meaning (for an exporter's `# HELP`). Harmless to call
/// more than once.
pub fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g};
    c!(
        "weir_datagrams_received_total",
        Unit::Count,
        "UDP datagrams received"
    );
    c!("weir_datagrams_sent_total", Unit::Count, "UDP datagrams sent");
    c!(
        "weir_datagrams_dropped_total",
        Unit::Count,
        "datagrams dropped on arrival, by reason"
    );
    c!(
        "weir_handshakes_total",
        Unit::Count,
        "handshakes that ended, by outcome (established, failed)"
    );
    c!(
        "weir_violations_total",
        Unit::Count,
        "connections closed for a protocol violation"
    );
    c!(
        "weir_bytes_acked_total",
        Unit::Bytes,
        "stream bytes the peers acknowledged"
    );
    c!(
        "weir_bytes_retransmitted_total",
        Unit::Bytes,
        "stream bytes sent again"
    );
    c!("weir_packets_lost_total", Unit::Count, "packets declared lost");
    c!("weir_probes_total", Unit::Count, "probe timeouts that fired");
    c!(
        "weir_app_datagrams_total",
        Unit::Count,
        "unreliable datagrams, by what became of them (sent, received, lost, dropped)"
    );
    g!("weir_connections", Unit::Count, "connections held");
    g!("weir_handshakes_pending", Unit::Count, "handshakes under way");
    g!(
        "weir_bytes_unread",
        Unit::Bytes,
        "bytes received that the application has not read"
    );
    g!(
        "weir_bytes_unacknowledged",
        Unit::Bytes,
        "bytes written that the peers have not acknowledged"
    );
    g!(
        "weir_receive_budget_bytes",
        Unit::Bytes,
        "receive window room given out"
    );
    g!(
        "weir_bytes_in_flight",
        Unit::Bytes,
        "bytes of packets in flight, all connections"
    );
    g!(
        "weir_congestion_window_bytes",
        Unit::Bytes,
        "congestion windows, all connections added"
    );
    g!(
        "weir_rtt_seconds",
        Unit::Seconds,
        "the largest smoothed round-trip time of a connection"
    );
}

impl Driver {
    /// When figures not shown yet are due, if any are.
    pub(super) fn metrics_deadline(&self) -> Option<StdInstant> {
        let next = self.metrics.next?;
        self.metrics.stale.then_some(next)
    }

    /// Publishes the figures if the last time was a [`period`] ago or more; otherwise notes
    /// that they are stale. Timed by the clock's last reading, not a new one (this runs
    /// after every call): a period missed that way is caught by the deadline it leaves
    /// ([`metrics_deadline`](Self::metrics_deadline)), whose timeout reads the clock.
    pub(super) fn publish_metrics(&mut self) {
        let now = self.seen();
        if self.metrics.next.is_some_and(|t| now < t) {
            self.metrics.stale = true;
            return;
        }
        self.metrics.next = Some(now + period(self.conns.len()));
        self.metrics.stale = false;
        let ep = self.ep.stats();
        let load = self.ep.load();
        let mut totals = self.metrics.ended;
        let (mut in_flight, mut window, mut rtt) = (0u64, 0u64, 0f64);
        for (h, _) in self.conns.iter().filter(|(_, c)| c.ended.is_none()) {
            if let Some(s) = self.ep.connection_stats(h) {
                totals.add(&s);
                in_flight += s.bytes_in_flight;
                window += s.congestion_window;
                rtt = rtt.max(s.smoothed_rtt.as_micros() as f64 / 1e6);
            }
        }
        let figures = Figures {
            ep,
            load,
            established: self.metrics.established,
            failed: self.metrics.failed,
            totals,
            in_flight,
            window,
            rtt,
        };
        let local = self.local;
        let keys = self
            .metrics
            .keys
            .get_or_insert_with(|| Box::new(Keys::new(&local.to_string())));
        metrics::with_recorder(|r| {
            for (key, (_, _, value)) in keys.counters.iter().zip(&COUNTERS) {
                r.register_counter(key, &METADATA).absolute(value(&figures));
            }
            for (key, (_, value)) in keys.gauges.iter().zip(&GAUGES) {
                r.register_gauge(key, &METADATA).set(value(&figures));
            }
        });
    }
}
