//! `weir replay`, `weir trace show|plot|shrink`: what a recorded trace (spec/trace.md) says,
//! read back through `weir_core::trace::replay_with_secrets`, so every figure shown is the
//! replayed endpoint's own state at that record, not a guess from the text. A trace's
//! secrets, if it keeps them apart, are read from the file beside it (`TRACE.secrets`).

use std::io::Write as _;
use std::path::Path;

use weir_core::trace::{replay_with_secrets, Step, TraceError, TraceSecrets};
use weir_core::ConnectionStats;

use crate::error::CliError;
use crate::output::{self, say};
use crate::units;

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// The secrets of the trace at `path`, from the file beside it (`PATH.secrets`, written 0600
/// by whoever recorded it), if there is one: a self-contained trace has none.
fn secrets(path: &Path) -> Result<Option<TraceSecrets>, CliError> {
    let at = weir_driver::secrets_path(path);
    if !at.exists() {
        return Ok(None);
    }
    TraceSecrets::parse(&read(&at)?)
        .map(Some)
        .map_err(trace_error(path))
}

fn trace_error(path: &Path) -> impl FnOnce(TraceError) -> CliError + '_ {
    move |source| CliError::Trace {
        path: path.to_path_buf(),
        source,
    }
}

/// `weir replay`: replays the trace and says how much matched.
pub fn replay(path: &Path) -> Result<(), CliError> {
    let text = read(path)?;
    let secrets = secrets(path)?;
    let done = replay_with_secrets(&text, secrets.as_ref(), |_| {}).map_err(trace_error(path))?;
    say!(
        "{}: replayed {} records, {} outputs, all identical",
        path.display(),
        done.records,
        done.outputs
    )?;
    Ok(())
}

/// `weir trace shrink`: the shortest prefix whose replay still fails, written to `output`.
pub fn shrink(path: &Path, output: &Path) -> Result<(), CliError> {
    let text = read(path)?;
    let secrets = secrets(path)?;
    let replay = |t: &str| replay_with_secrets(t, secrets.as_ref(), |_| {});
    let Some(short) = weir_core::trace::shrink(&text, |t| replay(t).is_err()) else {
        say!(
            "{}: replays without a difference; nothing to shrink",
            path.display()
        )?;
        return Ok(());
    };
    // Owner-only like the trace, and its secrets beside it, as the trace's are.
    let mut files = vec![(output.to_path_buf(), short.clone())];
    if let Some(s) = &secrets {
        files.push((weir_driver::secrets_path(output), s.to_text()));
    }
    for (at, content) in files {
        weir_driver::create_trace_file(&at)
            .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()))
            .map_err(|source| CliError::File { path: at, source })?;
    }
    let records = |t: &str| t.lines().count();
    let why = replay(&short).err().map(|e| e.to_string()).unwrap_or_default();
    say!(
        "{}: {} lines -> {} lines in {}\n{why}",
        path.display(),
        records(&text),
        records(&short),
        output.display()
    )?;
    Ok(())
}

/// The state of the endpoint's connections that a trace does not write down: summed over
/// connections (a trace of one connection, the usual case, shows that connection).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sample {
    secs: f64,
    cwnd: u64,
    in_flight: u64,
    rtt_ms: Option<f64>,
    acked: u64,
    read: u64,
}

fn sample(step: &Step<'_>) -> Sample {
    let ep = step.endpoint;
    let stats: Vec<ConnectionStats> = ep.connections().filter_map(|c| ep.connection_stats(c)).collect();
    let rtt = stats
        .iter()
        .filter(|s| s.min_rtt.as_micros() > 0)
        .map(|s| s.smoothed_rtt.as_micros() as f64 / 1000.0)
        .reduce(f64::max);
    Sample {
        secs: step.now.as_micros() as f64 / 1e6,
        cwnd: stats.iter().map(|s| s.congestion_window).sum(),
        in_flight: stats.iter().map(|s| s.bytes_in_flight).sum(),
        rtt_ms: rtt,
        acked: stats.iter().map(|s| s.bytes_acked).sum(),
        read: stats.iter().map(|s| s.bytes_read).sum(),
    }
}

/// What kind of datagram `hex` holds, from its invariant header (spec/protocol.md §3.1):
/// the rest cannot be read without the receiver's packet-number context.
fn kind(hex: &str) -> &'static str {
    // The invariant header fits in its first 40 bytes.
    let head: Option<Vec<u8>> = (0..hex.len().min(80) / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    match head.as_deref().map(weir_core::wire::Invariant::parse) {
        Some(Ok(i)) if i.version == 0 => "version-reject",
        Some(Ok(i)) if i.scid.is_some() => "handshake",
        Some(Ok(_)) => "data",
        _ => "unreadable",
    }
}

/// A call with its long hex words (written payloads) cut to their length.
fn abbreviate(call: &str) -> String {
    call.split(' ')
        .map(|w| {
            if w.len() > 64 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
                format!("<{} bytes>", w.len() / 2)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One record as a timeline line, or `None` for records that only say nothing happened.
fn describe(record: &str) -> Option<String> {
    let (call, out) = match record.split_once(" => ") {
        Some((c, o)) => (c, Some(o)),
        None => (record, None),
    };
    let mut words = call.split(' ');
    Some(match (words.next()?, out) {
        ("in", _) => {
            let from = words.next()?;
            let hex = words.next()?;
            format!("<- {from:<22} {:>6} B  {}", hex.len() / 2, kind(hex))
        }
        ("out", Some("none")) | ("event", Some("none")) | ("deadline", _) => return None,
        ("out", Some(out)) => {
            let (to, hex) = out.split_once(' ')?;
            format!("-> {to:<22} {:>6} B  {}", hex.len() / 2, kind(hex))
        }
        ("expire", _) => "timer fired".to_string(),
        ("event", Some(e)) => format!("event  {e}"),
        (_, Some(result)) => format!("call   {} => {result}", abbreviate(call)),
        (_, None) => format!("?      {record}"),
    })
}

/// `weir trace show`: a timeline, one line per datagram, event and call, with the
/// connection's window, flight and RTT after each datagram.
pub fn show(path: &Path) -> Result<(), CliError> {
    let text = read(path)?;
    let secrets = secrets(path)?;
    // Buffered, not a line at a time: a trace shows as hundreds of thousands of lines.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut written = Ok(());
    let result = replay_with_secrets(&text, secrets.as_ref(), |step| {
        if written.is_err() || output::closed() {
            return;
        }
        let Some(line) = describe(step.record) else { return };
        let s = sample(&step);
        let state = if step.record.starts_with("in ") || step.record.starts_with("out ") {
            format!(
                "  | cwnd {} flight {} rtt {}",
                units::bytes(s.cwnd),
                units::bytes(s.in_flight),
                s.rtt_ms.map_or("-".to_string(), |r| format!("{r:.1} ms"))
            )
        } else {
            String::new()
        };
        written = output::check(writeln!(out, "{:>12.3} ms  {line}{state}", s.secs * 1000.0));
    });
    let written = written.and_then(|()| output::check(out.flush()));
    drop(out);
    let done = result.map_err(trace_error(path))?;
    written?;
    eprintln!(
        "{} records replayed, {} outputs identical",
        done.records, done.outputs
    );
    Ok(())
}

/// `weir trace plot`: congestion window, bytes in flight, RTT and delivered bytes over time.
pub fn plot(path: &Path, output: &Path) -> Result<(), CliError> {
    let text = read(path)?;
    let secrets = secrets(path)?;
    let mut samples: Vec<Sample> = Vec::new();
    replay_with_secrets(&text, secrets.as_ref(), |step| {
        let s = sample(&step);
        // One point per change keeps a long trace's plot small.
        let same = samples.last().is_some_and(|l| Sample { secs: l.secs, ..s } == *l);
        if !same {
            samples.push(s);
        }
    })
    .map_err(trace_error(path))?;
    draw(&samples, output).map_err(|e| CliError::File {
        path: output.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    say!(
        "{}: {} points plotted to {}",
        path.display(),
        samples.len(),
        output.display()
    )?;
    Ok(())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

type Area<'a> = plotters::drawing::DrawingArea<plotters::prelude::SVGBackend<'a>, plotters::coord::Shift>;
type Chart<'a, 'b> = plotters::chart::ChartContext<
    'a,
    plotters::prelude::SVGBackend<'b>,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// One panel: `caption` over time from 0 to `end` seconds, values from 0 to `top`.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    end: f64,
    top: f64,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    Ok(chart)
}

/// A labelled line on `chart`.
fn line(
    chart: &mut Chart<'_, '_>,
    points: impl IntoIterator<Item = (f64, f64)>,
    color: plotters::style::RGBColor,
    label: &str,
) -> DrawResult {
    use plotters::prelude::*;
    chart
        .draw_series(LineSeries::new(points, color))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    Ok(())
}

fn draw(samples: &[Sample], output: &Path) -> DrawResult {
    use plotters::prelude::*;
    let root = SVGBackend::new(output, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let end = samples.last().map_or(1.0, |s| s.secs).max(1e-3);
    let top = |f: &dyn Fn(&Sample) -> f64, floor: f64| samples.iter().map(f).fold(floor, f64::max) * 1.05;
    let kib = |b: u64| b as f64 / 1024.0;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);

    let caption = "congestion window and bytes in flight (KiB)";
    let mut chart = panel(
        &panels[0],
        caption,
        end,
        top(&|s| kib(s.cwnd.max(s.in_flight)), 1.0),
    )?;
    line(
        &mut chart,
        samples.iter().map(|s| (s.secs, kib(s.cwnd))),
        BLUE,
        "congestion window",
    )?;
    line(
        &mut chart,
        samples.iter().map(|s| (s.secs, kib(s.in_flight))),
        RED,
        "bytes in flight",
    )?;
    chart.configure_series_labels().border_style(BLACK).draw()?;

    let rtt: Vec<(f64, f64)> = samples.iter().filter_map(|s| Some((s.secs, s.rtt_ms?))).collect();
    let mut chart = panel(
        &panels[1],
        "smoothed RTT (ms)",
        end,
        top(&|s| s.rtt_ms.unwrap_or(0.0), 1.0),
    )?;
    line(&mut chart, rtt, GREEN, "smoothed RTT")?;

    let caption = "delivered (MiB): acknowledged by the peer, read from the peer";
    let mut chart = panel(&panels[2], caption, end, top(&|s| mib(s.acked.max(s.read)), 1e-3))?;
    line(
        &mut chart,
        samples.iter().map(|s| (s.secs, mib(s.acked))),
        BLUE,
        "acknowledged",
    )?;
    line(
        &mut chart,
        samples.iter().map(|s| (s.secs, mib(s.read))),
        MAGENTA,
        "read",
    )?;
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_as_a_timeline() {
        assert_eq!(
            describe("in 10.0.0.2:4000 0102").as_deref(),
            Some("<- 10.0.0.2:4000               2 B  unreadable")
        );
        let short = format!("0001{}{}", "00", "ab".repeat(8));
        assert_eq!(
            describe(&format!("out 1500 => 10.0.0.2:4000 {short}")).as_deref(),
            Some("-> 10.0.0.2:4000              11 B  data")
        );
        let long = format!("0001{}{}", "80", "ab".repeat(16));
        assert!(describe(&format!("in 10.0.0.2:4000 {long}")).is_some_and(|l| l.ends_with("19 B  handshake")));
        assert_eq!(describe("out 1500 => none"), None);
        assert_eq!(describe("deadline => 1000"), None);
        assert_eq!(describe("event => none"), None);
        assert_eq!(describe("expire").as_deref(), Some("timer fired"));
        assert_eq!(
            describe("event => Writable { conn: c0 }").as_deref(),
            Some("event  Writable { conn: c0 }")
        );
        assert_eq!(
            describe("finish c0 s0 => ok").as_deref(),
            Some("call   finish c0 s0 => ok")
        );
    }
}
