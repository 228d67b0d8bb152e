//! Traces (spec/trace.md): the record of one endpoint's life, one line per call, enough to
//! rebuild it and check it byte for byte.
//!
//! Job: record every input an endpoint was given (datagrams, timeouts, the application's
//! commands, each with its time) and every output it gave back (datagrams out, events,
//! deadlines, what each command returned), in call order; replay such a record against a
//! fresh endpoint built from the recorded config and seed, stopping at the first output that
//! differs; cut a failing record down to its shortest failing prefix.
//!
//! Inputs: an endpoint made with [`Endpoint::new_traced`] records as it is driven (the
//! recorder only reads what the calls pass and return, so behaviour is the same traced or
//! not; untraced, each call pays one branch). Outputs: the text, drained with
//! [`Endpoint::take_trace`]; [`replay`]'s verdict; [`shrink`]'s prefix.

mod command;
mod config_text;

use alloc::string::{String, ToString};
use core::fmt::{self, Write as _};
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::config::Config;
use crate::crypto::keys::Seed;
use crate::event::{ApiError, Event};
use crate::time::Instant;
use crate::Endpoint;
pub(crate) use command::{outcome_text, Command, Done, MessageDigest, ReadUnit};

/// The trace format version this code writes and reads (spec/trace.md §1).
pub const TRACE_VERSION: u32 = 1;

/// Why a trace could not be replayed, or where its replay departed from it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The text does not start with a `weir-trace` line.
    #[error("not a weir trace: the first line must be `weir-trace VERSION`")]
    NotATrace,
    /// A format version this replayer does not read.
    #[error("trace format version {found} is not supported (this replayer reads version {TRACE_VERSION})")]
    UnsupportedVersion {
        /// The version the trace names.
        found: String,
    },
    /// The trace needs what a replay cannot have: the application's peer-policy callback.
    #[error("the trace cannot be replayed: {what}")]
    Unreplayable {
        /// What is missing.
        what: &'static str,
    },
    /// The `seed` or `config` line is missing or malformed.
    #[error("trace header: missing or malformed `{what}` line")]
    BadHeader {
        /// `seed` or `config`.
        what: &'static str,
    },
    /// A config setting this replayer does not know: it cannot build the recorded endpoint.
    #[error("config setting `{key}` is unknown to this replayer")]
    UnknownConfigKey {
        /// The setting's name.
        key: String,
    },
    /// A config setting whose value does not read.
    #[error("config setting `{key}` has a value this replayer cannot read")]
    BadConfig {
        /// The setting's name (or the malformed pair).
        key: String,
    },
    /// A record that does not read.
    #[error("line {line}: not a trace record")]
    BadRecord {
        /// Its line number (from 1).
        line: usize,
    },
    /// The replayed endpoint gave a different output than the one recorded. Shown as the
    /// line, the first differing position and the text around it (not whole datagrams).
    #[error(
        "line {line}: replay differs at character {offset} of the result\n  expected: {}\n  actual:   {}",
        around(expected, *offset),
        around(actual, *offset)
    )]
    Diverged {
        /// The record's line number (from 1).
        line: usize,
        /// Where the two results first differ (bytes from the start of the result; for an
        /// `out` record's hex, twice the datagram byte offset plus the prefix).
        offset: usize,
        /// What the trace recorded.
        expected: String,
        /// What the replayed endpoint gave.
        actual: String,
    },
}

/// `text` around byte `at`: up to 24 bytes either side, elided with `…`.
fn around(text: &str, at: usize) -> String {
    const SIDE: usize = 24;
    let start = at.saturating_sub(SIDE);
    let end = at.saturating_add(SIDE).min(text.len());
    let shown = text.get(start..end).unwrap_or(text);
    let before = if start > 0 { "…" } else { "" };
    let after = if end < text.len() { "…" } else { "" };
    alloc::format!("{before}{shown}{after}")
}

/// A trace that replayed without a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// Records replayed.
    pub records: usize,
    /// Of those, outputs compared.
    pub outputs: usize,
}

/// Writes bytes as lower-case hex (`-` when empty, so every field is one word).
pub(crate) fn hex(bytes: &[u8]) -> Hex<'_> {
    Hex(bytes)
}

pub(crate) struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Reads what [`hex`] wrote.
pub(crate) fn unhex(s: &str) -> Option<Bytes> {
    if s == "-" {
        return Some(Bytes::new());
    }
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<alloc::vec::Vec<u8>>>()
        .map(Bytes::from)
}

/// What a traced endpoint has recorded and not yet handed out.
#[derive(Debug)]
pub(crate) struct Recorder {
    text: String,
    /// The last time an input carried: the time of records whose call has none.
    now: Instant,
}

impl Recorder {
    pub(crate) fn new(config: &Config, seed: &Seed) -> Self {
        let mut text = String::new();
        let _ = write!(text, "weir-trace {TRACE_VERSION}\nseed {seed}\nconfig ");
        config_text::write(config, &mut text);
        text.push('\n');
        Recorder {
            text,
            now: Instant::ZERO,
        }
    }

    fn record(&mut self, now: Option<Instant>, body: fmt::Arguments<'_>) {
        if let Some(now) = now {
            self.now = now;
        }
        let _ = writeln!(self.text, "{} {body}", self.now.as_micros());
    }

    pub(crate) fn datagram_in(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.record(Some(now), format_args!("in {from} {}", hex(datagram)));
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.record(Some(now), format_args!("expire"));
    }

    pub(crate) fn transmit(&mut self, now: Instant, buf_len: usize, out: Option<(SocketAddr, &[u8])>) {
        match out {
            Some((to, d)) => self.record(Some(now), format_args!("out {buf_len} => {to} {}", hex(d))),
            None => self.record(Some(now), format_args!("out {buf_len} => none")),
        }
    }

    pub(crate) fn event(&mut self, event: Option<&Event>) {
        match event {
            Some(e) => self.record(None, format_args!("event => {e:?}")),
            None => self.record(None, format_args!("event => none")),
        }
    }

    pub(crate) fn deadline(&mut self, at: Option<Instant>) {
        match at {
            Some(t) => self.record(None, format_args!("deadline => {}", t.as_micros())),
            None => self.record(None, format_args!("deadline => none")),
        }
    }

    pub(crate) fn command(&mut self, now: Option<Instant>, cmd: &Command, result: &Result<Done, ApiError>) {
        self.record(now, format_args!("{cmd} => {}", outcome_text(result)));
    }

    pub(crate) fn take(&mut self) -> String {
        core::mem::take(&mut self.text)
    }
}

/// A trace read: the endpoint to build and its records, each with its line number.
struct Parsed<'a> {
    config: Config,
    seed: Seed,
    records: alloc::vec::Vec<(usize, &'a str)>,
}

/// The header and the records after it (blank lines and `#` comments skipped).
fn split(trace: &str) -> Result<Parsed<'_>, TraceError> {
    let mut lines = trace
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let version = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("weir-trace "))
        .ok_or(TraceError::NotATrace)?;
    if version != TRACE_VERSION.to_string() {
        return Err(TraceError::UnsupportedVersion {
            found: version.to_string(),
        });
    }
    let seed = lines
        .next()
        .and_then(|(_, l)| parse_seed(l.strip_prefix("seed ")?))
        .ok_or(TraceError::BadHeader { what: "seed" })?;
    let config = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("config"))
        .ok_or(TraceError::BadHeader { what: "config" })?;
    Ok(Parsed {
        config: config_text::parse(config)?,
        seed,
        records: lines.collect(),
    })
}

/// `seed S`: 64 hex digits, or a decimal number N standing for `Seed::from(N)`.
fn parse_seed(s: &str) -> Option<Seed> {
    s.parse::<Seed>()
        .ok()
        .or_else(|| s.parse::<u64>().ok().map(Seed::from))
}

/// One record as [`replay_with`] met it: after the record's call ran and its output matched.
#[derive(Debug)]
pub struct Step<'a> {
    /// The record's line number (from 1).
    pub line: usize,
    /// Its time.
    pub now: Instant,
    /// The record's text after its time (`in ...`, `out 1500 => ...`, `event => ...`).
    pub record: &'a str,
    /// The replayed endpoint, as the call left it.
    pub endpoint: &'a Endpoint,
}

/// Replays `trace` against a new endpoint built from its config and seed: feeds every input
/// at its recorded time and checks every output, stopping at the first difference.
pub fn replay(trace: &str) -> Result<Replayed, TraceError> {
    replay_with(trace, |_| {})
}

/// [`replay`], showing `observe` each record with the endpoint it left, so a tool can read
/// what the trace does not write down (congestion window, bytes in flight, RTT) at every
/// step. Observing changes nothing: the endpoint is only lent for reading.
pub fn replay_with(trace: &str, mut observe: impl FnMut(Step<'_>)) -> Result<Replayed, TraceError> {
    let Parsed {
        config,
        seed,
        records,
    } = split(trace)?;
    let mut ep = Endpoint::new(config, seed);
    let mut buf = alloc::vec::Vec::new();
    let mut outputs = 0;
    for &(line, record) in &records {
        let bad = TraceError::BadRecord { line };
        let (time, body) = record.split_once(' ').ok_or(bad.clone())?;
        let now = Instant::from_micros(time.parse().map_err(|_| bad.clone())?);
        let (call, expected) = match body.split_once(" => ") {
            Some((call, expected)) => (call, Some(expected)),
            None => (body, None),
        };
        let actual = match (call.split_once(' ').map_or(call, |(k, _)| k), expected) {
            ("in", None) => {
                let mut words = call.split(' ').skip(1);
                let from = words.next().and_then(|w| w.parse().ok()).ok_or(bad.clone())?;
                let datagram = words.next().and_then(unhex).ok_or(bad.clone())?;
                ep.handle_datagram(now, from, BytesMut::from(datagram));
                None
            }
            ("expire", None) => {
                ep.handle_timeout(now);
                None
            }
            ("out", Some(_)) => {
                let len: usize = call
                    .strip_prefix("out ")
                    .and_then(|l| l.parse().ok())
                    .ok_or(bad.clone())?;
                buf.resize(len, 0);
                Some(match ep.poll_transmit(now, &mut buf) {
                    Some(t) => alloc::format!("{} {}", t.destination, hex(&buf[..t.len])),
                    None => "none".to_string(),
                })
            }
            ("event", Some(_)) => Some(match ep.poll_event() {
                Some(e) => alloc::format!("{e:?}"),
                None => "none".to_string(),
            }),
            ("deadline", Some(_)) => Some(match ep.poll_timeout() {
                Some(t) => t.as_micros().to_string(),
                None => "none".to_string(),
            }),
            (_, Some(_)) => {
                let cmd = Command::parse(call).ok_or(bad.clone())?;
                Some(outcome_text(&cmd.execute(&mut ep, now)))
            }
            _ => return Err(bad),
        };
        if let (Some(actual), Some(expected)) = (actual, expected) {
            outputs += 1;
            if actual != expected {
                let offset = expected
                    .bytes()
                    .zip(actual.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.len().min(actual.len()));
                return Err(TraceError::Diverged {
                    line,
                    offset,
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        observe(Step {
            line,
            now,
            record: body,
            endpoint: &ep,
        });
    }
    Ok(Replayed {
        records: records.len(),
        outputs,
    })
}

/// The shortest prefix of `trace` (header kept, records cut) for which `fails` still holds,
/// or `None` if the whole trace does not fail. Failures are taken to be prefix-closed, as a
/// replay difference or a panic at record *k* is: every prefix holding record *k* fails, no
/// shorter one does; the search is binary, so `fails` runs about log2(records) times.
pub fn shrink(trace: &str, mut fails: impl FnMut(&str) -> bool) -> Option<String> {
    if !fails(trace) {
        return None;
    }
    let lines: alloc::vec::Vec<&str> = trace.lines().collect();
    // The header is the lines up to and including `config`.
    let body = lines
        .iter()
        .position(|l| l.starts_with("config"))
        .map_or(0, |i| i + 1);
    let prefix = |records: usize| {
        let mut s = String::new();
        for l in &lines[..body + records] {
            s.push_str(l);
            s.push('\n');
        }
        s
    };
    // Smallest record count that fails: `hi` always fails, `lo` never did.
    let (mut lo, mut hi) = (0, lines.len() - body);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fails(&prefix(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(prefix(hi))
}
