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
use alloc::sync::Arc;
use core::fmt::{self, Write as _};
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use sha2::{Digest as _, Sha256};

use crate::config::Config;
use crate::congestion::{CongestionAlgorithm, ControllerFactory};
use crate::crypto::keys::{Identity, Seed};
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
    /// The trace leaves its secrets out (`secrets` header) and none were given to the
    /// replayer ([`replay_with_secrets`]).
    #[error("the trace's secrets are kept apart (its `.secrets` file): give them to the replayer")]
    SecretsMissing,
    /// The secrets given are not the ones the trace was recorded with (its `secrets`
    /// fingerprint differs), or do not read.
    #[error("the secrets given are not this trace's")]
    SecretsMismatch,
    /// The trace names a controller of the user's own (`custom:NAME`) that the replayer
    /// was not given ([`replay_with_controllers`]).
    #[error("the trace uses the custom congestion controller `{name}`: give its factory to the replayer")]
    UnknownController {
        /// The controller's name.
        name: String,
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

/// What a trace leaves out (spec/trace.md §2.1): the endpoint's seed, its configured
/// identity's secret key, and the fresh entropy it was given, in order. Kept apart from the
/// trace ([`Endpoint::trace_secrets`]) and handed to the replayer separately
/// ([`replay_with_secrets`]), so a trace can be read, shared and shrunk without them.
/// `Debug` shows none of them.
#[derive(Clone)]
pub struct TraceSecrets {
    seed: Seed,
    identity: Option<Identity>,
    entropy: alloc::vec::Vec<Bytes>,
}

impl fmt::Debug for TraceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceSecrets({})", self.fingerprint())
    }
}

impl TraceSecrets {
    /// What the trace's `secrets` line names: 16 hex digits of SHA-256 over the seed and the
    /// identity's secret key, so a replayer can tell the secrets belong to the trace without
    /// the trace telling anything about them.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"weir trace secrets");
        h.update(self.seed.as_bytes());
        if let Some(id) = &self.identity {
            h.update(id.secret_bytes());
        }
        hex(&h.finalize()[..8]).to_string()
    }

    /// The secrets file's text: `weir-trace-secrets 1`, `seed HEX`, `identity HEX` if one
    /// was configured, and an `entropy HEX` line for each `add_entropy`.
    pub fn to_text(&self) -> String {
        let mut out = alloc::format!("weir-trace-secrets {TRACE_VERSION}\nseed {}\n", self.seed);
        if let Some(id) = &self.identity {
            let _ = writeln!(out, "identity {}", hex(id.secret_bytes()));
        }
        for e in &self.entropy {
            let _ = writeln!(out, "entropy {}", hex(e));
        }
        out
    }

    /// Reads what [`to_text`](Self::to_text) wrote.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
        if lines.next() != Some("weir-trace-secrets 1") {
            return Err(TraceError::SecretsMismatch);
        }
        let seed = lines
            .next()
            .and_then(|l| parse_seed(l.strip_prefix("seed ")?))
            .ok_or(TraceError::SecretsMismatch)?;
        let mut secrets = TraceSecrets {
            seed,
            identity: None,
            entropy: alloc::vec::Vec::new(),
        };
        for line in lines {
            match line.split_once(' ') {
                Some(("identity", v)) if secrets.identity.is_none() && secrets.entropy.is_empty() => {
                    let key = crate::crypto::keys::parse_hex32(v).map_err(|_| TraceError::SecretsMismatch)?;
                    secrets.identity = Some(Identity::from_secret(key));
                }
                Some(("entropy", v)) => secrets.entropy.push(unhex(v).ok_or(TraceError::SecretsMismatch)?),
                _ => return Err(TraceError::SecretsMismatch),
            }
        }
        Ok(secrets)
    }
}

/// What a traced endpoint has recorded and not yet handed out.
#[derive(Debug)]
pub(crate) struct Recorder {
    text: String,
    /// The last time an input carried: the time of records whose call has none.
    now: Instant,
    /// What the text leaves out.
    secrets: TraceSecrets,
}

impl Recorder {
    pub(crate) fn new(config: &Config, seed: &Seed) -> Self {
        let secrets = TraceSecrets {
            seed: seed.clone(),
            identity: config.identity.clone(),
            entropy: alloc::vec::Vec::new(),
        };
        let mut text = String::new();
        let _ = write!(
            text,
            "weir-trace {TRACE_VERSION}\nsecrets {}\nconfig ",
            secrets.fingerprint()
        );
        config_text::write(config, &mut text);
        text.push('\n');
        Recorder {
            text,
            now: Instant::ZERO,
            secrets,
        }
    }

    /// Fresh entropy given to the endpoint: kept with the secrets, not in the text.
    pub(crate) fn entropy(&mut self, fresh: &[u8]) {
        self.secrets.entropy.push(Bytes::copy_from_slice(fresh));
    }

    pub(crate) fn secrets(&self) -> &TraceSecrets {
        &self.secrets
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

/// A trace read: the endpoint to build, the entropy to give it, and its records, each with
/// its line number.
struct Parsed<'a> {
    config: Config,
    seed: Seed,
    entropy: alloc::vec::Vec<Bytes>,
    records: alloc::vec::Vec<(usize, &'a str)>,
}

/// The header and the records after it (blank lines and `#` comments skipped).
fn split<'a>(trace: &'a str, secrets: Option<&TraceSecrets>) -> Result<Parsed<'a>, TraceError> {
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
    let (_, second) = lines.next().ok_or(TraceError::BadHeader { what: "seed" })?;
    let config_line = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("config"))
        .ok_or(TraceError::BadHeader { what: "config" })?;
    let mut config = config_text::parse(config_line)?;
    let (seed, entropy) = match second.strip_prefix("secrets ") {
        // The secrets are apart: they must be given, and be this trace's.
        Some(fingerprint) => {
            let s = secrets.ok_or(TraceError::SecretsMissing)?;
            if s.fingerprint() != fingerprint || s.identity.is_some() != config.identity.is_some() {
                return Err(TraceError::SecretsMismatch);
            }
            config.identity.clone_from(&s.identity);
            (s.seed.clone(), s.entropy.clone())
        }
        // A self-contained trace (a simulation's, or hand-written): the seed is inline.
        None if config_line_hides_identity(config_line) => return Err(TraceError::SecretsMissing),
        None => {
            let seed = second
                .strip_prefix("seed ")
                .and_then(parse_seed)
                .ok_or(TraceError::BadHeader { what: "seed" })?;
            (seed, alloc::vec::Vec::new())
        }
    };
    Ok(Parsed {
        config,
        seed,
        entropy,
        records: lines.collect(),
    })
}

/// Whether a config line names its identity as kept with the secrets.
fn config_line_hides_identity(line: &str) -> bool {
    line.split(' ').any(|kv| kv == "identity=secret")
}

/// `trace` (recorded with its secrets apart) made self-contained: the seed written inline,
/// the identity's secret key in the config line, each `add_entropy` with its bytes. For
/// simulations and tests, whose seeds are not secret; a trace of a real endpoint should
/// stay apart from its secrets.
pub fn inline_secrets(trace: &str, secrets: &TraceSecrets) -> Result<String, TraceError> {
    let mut entropy = secrets.entropy.iter();
    let mut out = String::with_capacity(trace.len() + 128);
    for line in trace.lines() {
        if line.starts_with("secrets ") {
            let _ = writeln!(out, "seed {}", secrets.seed);
        } else if let (Some(rest), Some(id)) = (line.strip_prefix("config "), &secrets.identity) {
            let inline = alloc::format!("identity={}", hex(id.secret_bytes()));
            let _ = writeln!(out, "config {}", rest.replacen("identity=secret", &inline, 1));
        } else if let Some((time, _)) = line.split_once(" add_entropy len=") {
            let bytes = entropy.next().ok_or(TraceError::SecretsMismatch)?;
            let result = line.split_once(" => ").map_or("", |(_, r)| r);
            let _ = writeln!(out, "{time} add_entropy {} => {result}", hex(bytes));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
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

/// [`replay_with`] of a trace whose secrets were kept apart: `secrets` (read with
/// [`TraceSecrets::parse`] from its `.secrets` file) give the seed, the identity and the
/// fresh entropy. A self-contained trace replays with `None`.
pub fn replay_with_secrets(
    trace: &str,
    secrets: Option<&TraceSecrets>,
    observe: impl FnMut(Step<'_>),
) -> Result<Replayed, TraceError> {
    replay_with_controllers(trace, secrets, &[], observe)
}

/// [`replay_with_secrets`] of a trace recorded with controllers of the user's own
/// ([`CongestionAlgorithm::Custom`]): each `custom:NAME` in it is built by the factory of that
/// name in `controllers`; a name not among them is [`TraceError::UnknownController`].
pub fn replay_with_controllers(
    trace: &str,
    secrets: Option<&TraceSecrets>,
    controllers: &[Arc<dyn ControllerFactory>],
    observe: impl FnMut(Step<'_>),
) -> Result<Replayed, TraceError> {
    let mut parsed = split(trace, secrets)?;
    parsed.config.congestion = resolve(parsed.config.congestion, controllers)?;
    run(parsed, controllers, observe)
}

/// `cc` with a custom controller named in a trace swapped for its factory.
fn resolve(
    cc: CongestionAlgorithm,
    controllers: &[Arc<dyn ControllerFactory>],
) -> Result<CongestionAlgorithm, TraceError> {
    let CongestionAlgorithm::Custom(named) = &cc else {
        return Ok(cc);
    };
    controllers
        .iter()
        .find(|f| f.name() == named.name())
        .map(|f| CongestionAlgorithm::Custom(f.clone()))
        .ok_or_else(|| TraceError::UnknownController {
            name: named.name().to_string(),
        })
}

/// [`replay`], showing `observe` each record with the endpoint it left, so a tool can read
/// what the trace does not write down (congestion window, bytes in flight, RTT) at every
/// step. Observing changes nothing: the endpoint is only lent for reading.
pub fn replay_with(trace: &str, observe: impl FnMut(Step<'_>)) -> Result<Replayed, TraceError> {
    replay_with_secrets(trace, None, observe)
}

fn run(
    parsed: Parsed<'_>,
    controllers: &[Arc<dyn ControllerFactory>],
    mut observe: impl FnMut(Step<'_>),
) -> Result<Replayed, TraceError> {
    let Parsed {
        config,
        seed,
        entropy,
        records,
    } = parsed;
    let mut entropy = entropy.into_iter();
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
            ("add_entropy", Some(_)) if call.starts_with("add_entropy len=") => {
                // The bytes are a secret: they come from the secrets, in order.
                let fresh = entropy.next().ok_or(TraceError::SecretsMismatch)?;
                ep.add_entropy(&fresh);
                Some(outcome_text(&Ok(Done::Unit)))
            }
            (_, Some(_)) => {
                let mut cmd = Command::parse(call).ok_or(bad.clone())?;
                if let Command::Connect { congestion, .. } = &mut cmd {
                    if let Some(cc) = congestion.take() {
                        *congestion = Some(resolve(cc, controllers)?);
                    }
                }
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
