//! Two builds compared, interleaved (`weir-bench ab OTHER`): this build's workers and
//! another build's (`OTHER`, a copy of `target/release/weir-bench` built at another
//! commit) run each (peer, workload) by turns, the order swapped every repetition, and the
//! table gives each figure's median for both, with the ratio of the medians. This
//! machine's speed moves by up to 2× from one hour to the next, so one run of each build
//! compares the hours more than the builds; turns within the same minutes compare the
//! builds (adapters/bench/README.md, "Two builds compared, interleaved").

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::peers::Peer;
use crate::report::{cell, describe, median};
use crate::workload::{Metric, Workload};

/// The builds compared, in the table's column order.
const BUILDS: [&str; 2] = ["this", "other"];

/// Runs `reps` turns of every (peer, workload) with this build and with `other`, and
/// prints the table; fails if any run failed.
pub fn compare(other: &Path, reps: usize, peers: &[Peer], workloads: &[Workload]) -> ExitCode {
    let this = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("this build's path: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exes = [this.as_path(), other];
    let mut runs: BTreeMap<(&str, &str, Metric, usize), Vec<f64>> = BTreeMap::new();
    let mut failed = false;
    for rep in 1..=reps {
        for &w in workloads {
            for &p in peers.iter().filter(|p| p.runs(w)) {
                // Swapped every repetition: whichever runs first may find the machine
                // warmer or colder than the second.
                let order = if rep % 2 == 1 { [0, 1] } else { [1, 0] };
                for build in order {
                    eprint!(
                        "rep {rep}/{reps}: {} {} {} ... ",
                        BUILDS[build],
                        p.name(),
                        w.name()
                    );
                    match crate::spawn_with(exes[build], p, w) {
                        Ok(figures) => {
                            eprintln!("{}", crate::report::brief(&figures));
                            for (m, v) in figures {
                                runs.entry((p.name(), w.name(), m, build)).or_default().push(v);
                            }
                        }
                        Err(e) => {
                            eprintln!("FAILED: {e}");
                            failed = true;
                        }
                    }
                }
            }
        }
    }
    print!("{}", table(&runs, peers, workloads, reps));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One row per (workload, peer, figure): each build's median (min–max), and the other's
/// median over this one's.
fn table(
    runs: &BTreeMap<(&str, &str, Metric, usize), Vec<f64>>,
    peers: &[Peer],
    workloads: &[Workload],
    reps: usize,
) -> String {
    let mut out = format!(
        "\nMedian of {reps} turns each (min–max); this build against the other, interleaved.\n\n\
         | workload | peer | figure | this | other | other ÷ this |\n|---|---|---|---:|---:|---:|\n"
    );
    for &w in workloads {
        for &p in peers.iter().filter(|p| p.runs(w)) {
            for &m in w
                .metrics()
                .iter()
                .chain(&[Metric::PeakRssMiB, Metric::PeakAnonMiB])
            {
                let values = |build: usize| runs.get(&(p.name(), w.name(), m, build)).map(Vec::as_slice);
                let ratio = match (values(0), values(1)) {
                    (Some(a), Some(b)) if median(a) != 0.0 => {
                        format!("{:.3}", median(b) / median(a))
                    }
                    _ => "–".to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {ratio} |",
                    describe(w),
                    p.name(),
                    m.key(),
                    cell(values(0)),
                    cell(values(1)),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_both_medians_and_their_ratio() {
        let mut runs = BTreeMap::new();
        let key = |build| ("weir-tokio", "messages", Metric::MessagesPerSec, build);
        runs.insert(key(0), vec![100.0, 300.0, 200.0]);
        runs.insert(key(1), vec![250.0, 150.0, 300.0]);
        let t = table(&runs, &[Peer::WeirTokio], &[Workload::Messages], 3);
        let row = t
            .lines()
            .find(|l| l.contains("msgs/s"))
            .unwrap_or_else(|| panic!("no row: {t}"));
        assert!(row.contains("| 200 (100–300) | 250 (150–300) | 1.250 |"), "{row}");
        let cpu = t.lines().find(|l| l.contains("CPU µs")).unwrap();
        assert!(cpu.ends_with("| – | – | – |"), "no runs: {cpu}");
    }
}
