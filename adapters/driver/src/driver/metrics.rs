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
//! with nothing happening has nothing new to say, and is not woken for it).
//! The names and what each means are in [`describe`].
//!
//! Each figure's key (its name and labels) is made once, at the first publication, and the
//! recorder is looked up at every one: publishing allocates nothing of its own, and a
//! recorder installed after the endpoint started still gets the figures.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use metrics::{Key, Label, Level, Metadata, SharedString, Unit};
use weir_core::ConnectionStats;

use super::Driver;

/// How often the figures are published at most.
pub(super) const PERIOD: StdDuration = StdDuration::from_secs(1);

/// What the driver sums for the figures.
#[derive(Default)]
pub(super) struct Sums {
    /// The counters of the connections that ended, added up.
    pub(super) ended: Totals,
    /// Handshakes that finished, and that failed.
    pub(super) established: u64,
    pub(super) failed: u64,
    /// When the figures were last published.
    pub(super) published: Option<StdInstant>,
    /// Something happened since then that they do not show yet: they are published again
    /// once [`PERIOD`] has passed ([`Driver::metrics_deadline`]), so the last change of a
    /// burst shows within a second even if nothing follows it.
    pub(super) stale: bool,
    /// The figures' keys, in [`COUNTERS`]' and [`GAUGES`]' order, once made.
    keys: Option<Box<Keys>>,
}

/// The counters: name, and the label beside `local` that tells this one apart, if any. The
/// order is the order [`Driver::publish_metrics`] gives their values in.
const COUNTERS: [(&str, Option<(&str, &str)>); 20] = [
    ("weir_datagrams_received_total", None),
    ("weir_datagrams_sent_total", None),
    ("weir_violations_total", None),
    ("weir_datagrams_dropped_total", Some(("reason", "malformed"))),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "unknown_connection")),
    ),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "unauthenticated")),
    ),
    ("weir_datagrams_dropped_total", Some(("reason", "banned"))),
    ("weir_datagrams_dropped_total", Some(("reason", "rate_limited"))),
    (
        "weir_datagrams_dropped_total",
        Some(("reason", "stateless_limit")),
    ),
    ("weir_datagrams_dropped_total", Some(("reason", "relay"))),
    ("weir_handshakes_total", Some(("outcome", "established"))),
    ("weir_handshakes_total", Some(("outcome", "failed"))),
    ("weir_bytes_acked_total", None),
    ("weir_bytes_retransmitted_total", None),
    ("weir_packets_lost_total", None),
    ("weir_probes_total", None),
    ("weir_app_datagrams_total", Some(("what", "sent"))),
    ("weir_app_datagrams_total", Some(("what", "received"))),
    ("weir_app_datagrams_total", Some(("what", "lost"))),
    ("weir_app_datagrams_total", Some(("what", "dropped"))),
];

/// The gauges' names, in the order their values are given.
const GAUGES: [&str; 8] = [
    "weir_connections",
    "weir_handshakes_pending",
    "weir_bytes_unread",
    "weir_bytes_unacknowledged",
    "weir_receive_budget_bytes",
    "weir_bytes_in_flight",
    "weir_congestion_window_bytes",
    "weir_rtt_seconds",
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
            counters: COUNTERS.map(|(name, extra)| key(name, extra)),
            gauges: GAUGES.map(|name| key(name, None)),
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
        let last = self.metrics.published?;
        self.metrics.stale.then_some(last + PERIOD)
    }

    /// Publishes the figures if the last time was [`PERIOD`] ago or more; otherwise notes
    /// that they are stale.
    pub(super) fn publish_metrics(&mut self) {
        let now = self.wall();
        if self.metrics.published.is_some_and(|t| now < t + PERIOD) {
            self.metrics.stale = true;
            return;
        }
        self.metrics.published = Some(now);
        self.metrics.stale = false;
        let ep = self.ep.stats();
        let load = self.ep.load();
        let mut totals = self.metrics.ended;
        let (mut in_flight, mut window, mut rtt) = (0u64, 0u64, 0f64);
        for (&h, _) in self.conns.iter().filter(|(_, c)| c.ended.is_none()) {
            if let Some(s) = self.ep.connection_stats(h) {
                totals.add(&s);
                in_flight += s.bytes_in_flight;
                window += s.congestion_window;
                rtt = rtt.max(s.smoothed_rtt.as_micros() as f64 / 1e6);
            }
        }
        let counters: [u64; COUNTERS.len()] = [
            ep.datagrams_received,
            ep.datagrams_sent,
            ep.violations,
            ep.dropped_malformed,
            ep.dropped_unknown_connection,
            ep.dropped_unauthenticated,
            ep.dropped_banned,
            ep.dropped_rate_limited,
            ep.stateless_dropped,
            ep.relay_dropped,
            self.metrics.established,
            self.metrics.failed,
            totals.bytes_acked,
            totals.bytes_retransmitted,
            totals.packets_lost,
            totals.probes,
            totals.app_datagrams_sent,
            totals.app_datagrams_received,
            totals.app_datagrams_lost,
            totals.app_datagrams_dropped,
        ];
        let gauges: [f64; GAUGES.len()] = [
            load.connections as f64,
            load.handshakes_pending as f64,
            load.bytes_received_unread as f64,
            load.bytes_unacknowledged as f64,
            load.receive_budgets as f64,
            in_flight as f64,
            window as f64,
            rtt,
        ];
        let local = self.local;
        let keys = self
            .metrics
            .keys
            .get_or_insert_with(|| Box::new(Keys::new(&local.to_string())));
        metrics::with_recorder(|r| {
            for (key, v) in keys.counters.iter().zip(counters) {
                r.register_counter(key, &METADATA).absolute(v);
            }
            for (key, v) in keys.gauges.iter().zip(gauges) {
                r.register_gauge(key, &METADATA).set(v);
            }
        });
    }
}
