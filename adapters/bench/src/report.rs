//! The workers' figures: how a worker writes them, how the benchmark reads and collects
//! them, and the markdown table (medians, with min–max) and goal ratios it prints.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::peers::Peer;
use crate::workload::{Metric, Workload};

/// A metric's name in a worker's report.
fn tag(m: Metric) -> String {
    format!("{m:?}")
}

/// A worker's figures as one line: ` Name=value` for each.
pub fn format(figures: &[(Metric, f64)]) -> String {
    figures.iter().map(|(m, v)| format!(" {}={v}", tag(*m))).collect()
}

/// The inverse of [`format()`].
pub fn parse(line: &str) -> Result<Vec<(Metric, f64)>, String> {
    line.split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').ok_or(format!("not name=value: {pair}"))?;
            let metric = Metric::ALL
                .into_iter()
                .find(|m| tag(*m) == name)
                .ok_or(format!("unknown figure {name}"))?;
            let value = value.parse().map_err(|_| format!("not a number: {value}"))?;
            Ok((metric, value))
        })
        .collect()
}

/// The figures of one run, for the progress line.
pub fn brief(figures: &[(Metric, f64)]) -> String {
    let parts: Vec<String> = figures
        .iter()
        .map(|(m, v)| format!("{} {}", number(*v), m.key()))
        .collect();
    parts.join(", ")
}

/// Every run's figures by (peer, workload, metric).
#[derive(Default)]
pub struct Runs(BTreeMap<(&'static str, &'static str, Metric), Vec<f64>>);

impl Runs {
    /// Adds one run's figures.
    pub fn add(&mut self, peer: Peer, workload: Workload, figures: Vec<(Metric, f64)>) {
        for (m, v) in figures {
            self.0
                .entry((peer.name(), workload.name(), m))
                .or_default()
                .push(v);
        }
    }

    fn values(&self, peer: Peer, workload: Workload, metric: Metric) -> Option<&[f64]> {
        self.0
            .get(&(peer.name(), workload.name(), metric))
            .map(Vec::as_slice)
    }

    /// The median of a cell's runs.
    fn median(&self, peer: Peer, workload: Workload, metric: Metric) -> Option<f64> {
        self.values(peer, workload, metric).map(median)
    }
}

/// The median (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// A table's cell: the runs' median and their range, `median (min–max)`, or `–` for none.
pub(crate) fn cell(values: Option<&[f64]>) -> String {
    values.map_or("–".to_string(), |v| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} ({}–{})", number(median(v)), number(min), number(max))
    })
}

/// Three significant figures, thousands grouped.
pub(crate) fn number(v: f64) -> String {
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    }
}

pub(crate) fn describe(w: Workload) -> String {
    match w {
        Workload::Bulk => "bulk: 1 × 64 MiB".into(),
        Workload::BulkWhole => "bulk, received whole: 1 × 64 MiB".into(),
        Workload::BulkFar => format!(
            "bulk over a {} ms round trip: 1 × 64 MiB",
            2 * w.one_way_delay().unwrap_or_default().as_millis()
        ),
        Workload::Messages => "messages: 10,000 × 1 KiB".into(),
        Workload::MessagesFar => format!(
            "messages over a {} ms round trip: 10,000 × 1 KiB",
            2 * w.one_way_delay().unwrap_or_default().as_millis()
        ),
        Workload::Rtt => format!(
            "round trips: {} × 64 B ↔ 64 B",
            number(crate::workload::round_trips() as f64)
        ),
        Workload::BigRequest => "big requests: 100 × (1 MiB → 64 B)".into(),
    }
}

fn placement(w: Workload) -> &'static str {
    match w.placement() {
        crate::workload::Placement::SameCpu => "both on CPU 0",
        crate::workload::Placement::SplitCpus => "client CPU 0, server CPU 1",
    }
}

/// The markdown table of every cell, then the goals of issue 10 as ratios of medians.
pub fn table(runs: &Runs, peers: &[Peer], workloads: &[Workload], reps: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nMedian of {reps} runs (min–max); each run a process of its own.\n"
    );
    let _ = write!(out, "| workload | CPUs | figure |");
    for p in peers {
        let _ = write!(out, " {} |", p.name());
    }
    let _ = write!(out, "\n|---|---|---|");
    for _ in peers {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    for &w in workloads {
        for &m in w
            .metrics()
            .iter()
            .chain(&[Metric::PeakRssMiB, Metric::PeakAnonMiB])
        {
            let _ = write!(out, "| {} | {} | {} |", describe(w), placement(w), m.key());
            for &p in peers {
                let _ = write!(out, " {} |", cell(runs.values(p, w, m)));
            }
            out.push('\n');
        }
    }
    out.push_str(&goals(runs, peers));
    out
}

/// Issue 10's goals, as ratios of medians in this run, for each weir adapter.
fn goals(runs: &Runs, peers: &[Peer]) -> String {
    type Goal = (&'static str, &'static str, fn(&Runs, Peer) -> Option<f64>);
    let goals: [Goal; 14] = [
        ("bulk MB/s ÷ quinn's", "≥ 1.5", |r, p| {
            ratio(r, p, Peer::Quinn, Workload::Bulk, Metric::BulkMBps)
        }),
        ("bulk received whole, MB/s ÷ quinn's", "≥ 1.5", |r, p| {
            ratio(r, p, Peer::Quinn, Workload::BulkWhole, Metric::BulkMBps)
        }),
        ("peak RSS, bulk received whole ÷ quinn's", "≤ 1", |r, p| {
            ratio(r, p, Peer::Quinn, Workload::BulkWhole, Metric::PeakRssMiB)
        }),
        ("messages/s ÷ quinn's", "≥ 2", |r, p| {
            ratio(r, p, Peer::Quinn, Workload::Messages, Metric::MessagesPerSec)
        }),
        (
            "messages/s over a 40 ms round trip ÷ quinn's",
            "– (a reading)",
            |r, p| ratio(r, p, Peer::Quinn, Workload::MessagesFar, Metric::MessagesPerSec),
        ),
        (
            "bulk MB/s over a 40 ms round trip ÷ quinn's",
            "– (a reading)",
            |r, p| ratio(r, p, Peer::Quinn, Workload::BulkFar, Metric::BulkMBps),
        ),
        ("round-trip p50 ÷ raw UDP's", "≤ 1.3", |r, p| {
            ratio(r, p, Peer::Udp, Workload::Rtt, Metric::RttP50)
        }),
        ("round-trip p99 ÷ raw UDP's", "≤ 2", |r, p| {
            ratio(r, p, Peer::Udp, Workload::Rtt, Metric::RttP99)
        }),
        (
            "round trips over 2 × p50 per ms ÷ raw UDP's",
            "– (a reading)",
            |r, p| ratio(r, p, Peer::Udp, Workload::Rtt, Metric::RttStallsPerMs),
        ),
        ("big-request p50, ms", "≤ 0.5", |r, p| {
            r.median(p, Workload::BigRequest, Metric::BigP50)
        }),
        ("peak RSS, messages ÷ quinn's", "≤ 1", |r, p| {
            ratio(r, p, Peer::Quinn, Workload::Messages, Metric::PeakRssMiB)
        }),
        ("peak RSS, round trips ÷ quinn's", "≤ 1", |r, p| {
            ratio(r, p, Peer::Quinn, Workload::Rtt, Metric::PeakRssMiB)
        }),
        (
            "peak RSS less file pages, messages ÷ quinn's",
            "– (a reading)",
            |r, p| ratio(r, p, Peer::Quinn, Workload::Messages, Metric::PeakAnonMiB),
        ),
        (
            "peak RSS less file pages, round trips ÷ quinn's",
            "– (a reading)",
            |r, p| ratio(r, p, Peer::Quinn, Workload::Rtt, Metric::PeakAnonMiB),
        ),
    ];
    let weirs: Vec<Peer> = peers
        .iter()
        .copied()
        .filter(|p| matches!(p, Peer::WeirTokio | Peer::WeirStd | Peer::WeirTokio64k))
        .collect();
    if weirs.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n| goal | target |");
    for p in &weirs {
        let _ = write!(out, " {} |", p.name());
    }
    out.push_str("\n|---|---|");
    for _ in &weirs {
        out.push_str("---:|");
    }
    out.push('\n');
    for (name, target, value) in goals {
        let _ = write!(out, "| {name} | {target} |");
        for &p in &weirs {
            let cell = value(runs, p).map_or("–".to_string(), number);
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// `peer`'s median over `base`'s; none where either has none, or `base`'s is 0 (a run of
/// raw UDP's round trips that caught no stall).
fn ratio(runs: &Runs, peer: Peer, base: Peer, w: Workload, m: Metric) -> Option<f64> {
    let base = runs.median(base, w, m).filter(|&b| b > 0.0)?;
    Some(runs.median(peer, w, m)? / base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back() {
        let figures = vec![
            (Metric::RttP50, 14.25),
            (Metric::PeakRssMiB, 3.5),
            (Metric::PeakAnonMiB, 1.25),
        ];
        assert_eq!(parse(&format(&figures)).unwrap(), figures);
        assert!(parse(" Nonsense=1").is_err());
        assert!(parse(" RttP50=x").is_err());
    }

    #[test]
    fn medians_and_numbers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.4567), "0.46");
    }
}
