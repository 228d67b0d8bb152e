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

use std::time::{Duration as StdDuration, Instant as StdInstant};

use metrics::{counter, gauge, Unit};
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
        let local = self.local.to_string();
        let ep = self.ep.stats();
        let load = self.ep.load();
        let absolute = |name: &'static str, v: u64| counter!(name, "local" => local.clone()).absolute(v);
        absolute("weir_datagrams_received_total", ep.datagrams_received);
        absolute("weir_datagrams_sent_total", ep.datagrams_sent);
        absolute("weir_violations_total", ep.violations);
        for (reason, v) in [
            ("malformed", ep.dropped_malformed),
            ("unknown_connection", ep.dropped_unknown_connection),
            ("unauthenticated", ep.dropped_unauthenticated),
            ("banned", ep.dropped_banned),
            ("rate_limited", ep.dropped_rate_limited),
            ("stateless_limit", ep.stateless_dropped),
            ("relay", ep.relay_dropped),
        ] {
            counter!("weir_datagrams_dropped_total", "local" => local.clone(), "reason" => reason)
                .absolute(v);
        }
        for (outcome, v) in [
            ("established", self.metrics.established),
            ("failed", self.metrics.failed),
        ] {
            counter!("weir_handshakes_total", "local" => local.clone(), "outcome" => outcome).absolute(v);
        }
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
        absolute("weir_bytes_acked_total", totals.bytes_acked);
        absolute("weir_bytes_retransmitted_total", totals.bytes_retransmitted);
        absolute("weir_packets_lost_total", totals.packets_lost);
        absolute("weir_probes_total", totals.probes);
        for (what, v) in [
            ("sent", totals.app_datagrams_sent),
            ("received", totals.app_datagrams_received),
            ("lost", totals.app_datagrams_lost),
            ("dropped", totals.app_datagrams_dropped),
        ] {
            counter!("weir_app_datagrams_total", "local" => local.clone(), "what" => what).absolute(v);
        }
        let set = |name: &'static str, v: f64| gauge!(name, "local" => local.clone()).set(v);
        set("weir_connections", load.connections as f64);
        set("weir_handshakes_pending", load.handshakes_pending as f64);
        set("weir_bytes_unread", load.bytes_received_unread as f64);
        set("weir_bytes_unacknowledged", load.bytes_unacknowledged as f64);
        set("weir_receive_budget_bytes", load.receive_budgets as f64);
        set("weir_bytes_in_flight", in_flight as f64);
        set("weir_congestion_window_bytes", window as f64);
        set("weir_rtt_seconds", rtt);
    }
}
