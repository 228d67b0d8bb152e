//! Replaying traces (spec/trace.md): a fresh endpoint built from a trace's config and seed
//! is given every recorded input at its recorded time, and every output it gives is compared
//! with the one recorded, stopping at the first difference; [`shrink`] cuts a failing trace
//! down to its shortest failing prefix.
//!
//! Inputs: a trace's text (module `record` writes it), its secrets if they were kept apart,
//! and the factories of any controllers of the user's own it names. Outputs: [`Replayed`] or
//! the [`TraceError`] saying where the replay departed. This module sits above the endpoint
//! (it drives one); the recorder sits below it, so the two never import each other.

// A trace may be any text: outside tests, no index or slice that is not checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use alloc::string::{String, ToString};
use alloc::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::command::{Command, Done};
use crate::config::Config;
use crate::congestion::{CongestionAlgorithm, ControllerFactory};
use crate::crypto::keys::Seed;
use crate::record::{
    config_line_hides_identity, hex, outcome_text, parse_config, parse_seed, unhex, TraceError, TraceSecrets,
    TRACE_VERSION,
};
use crate::time::Instant;
use crate::Endpoint;

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
    let mut config = parse_config(config_line)?;
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

/// A trace that replayed without a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// Records replayed.
    pub records: usize,
    /// Of those, outputs compared.
    pub outputs: usize,
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
    let Parsed {
        mut config,
        seed,
        entropy,
        records,
    } = split(trace, secrets)?;
    config.congestion = resolve(config.congestion, controllers)?;
    let ep = Endpoint::new(config, seed);
    run(&records, entropy, ep, Outputs::Compared, controllers, observe).map(|(replayed, _)| replayed)
}

/// What a run does with the outputs a trace recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outputs {
    /// Each is compared with what the endpoint gives now: a replay.
    Compared,
    /// The calls are made and their results ignored: the trace's inputs drive an endpoint
    /// that may since have gone another way (the fuzz target `trace`, whose inputs are
    /// traces with bytes changed).
    Ignored,
}

/// Feeds a self-contained `trace`'s inputs, at their times (made to move only forward), to
/// an endpoint built from its config as `adjust` leaves it (traced if `traced`), making
/// every call the trace records but comparing nothing; `check` sees the endpoint after
/// each record. Returns the endpoint (its trace to be taken), or why the text is no trace.
#[cfg(feature = "fuzzing")]
pub(crate) fn drive(
    trace: &str,
    adjust: impl FnOnce(&mut Config),
    mut check: impl FnMut(&Endpoint),
) -> Result<Endpoint, TraceError> {
    let Parsed {
        mut config,
        seed,
        entropy,
        records,
    } = split(trace, None)?;
    adjust(&mut config);
    let ep = Endpoint::new_traced(config, seed);
    run(&records, entropy, ep, Outputs::Ignored, &[], |step| {
        check(step.endpoint)
    })
    .map(|(_, ep)| ep)
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

/// Makes every call of a trace's `records` on `ep` (built from its config and seed), the
/// trace's fresh `entropy` given where it records some, in order;
/// with [`Outputs::Compared`], stops at the first output that differs from the record's.
fn run(
    records: &[(usize, &str)],
    entropy: alloc::vec::Vec<Bytes>,
    mut ep: Endpoint,
    compare: Outputs,
    controllers: &[Arc<dyn ControllerFactory>],
    mut observe: impl FnMut(Step<'_>),
) -> Result<(Replayed, Endpoint), TraceError> {
    let mut entropy = entropy.into_iter();
    let mut buf = alloc::vec::Vec::new();
    let mut outputs = 0;
    let mut latest = Instant::ZERO;
    for &(line, record) in records {
        let bad = TraceError::BadRecord { line };
        let (time, body) = record.split_once(' ').ok_or(bad.clone())?;
        let mut now = Instant::from_micros(time.parse().map_err(|_| bad.clone())?);
        if compare == Outputs::Ignored {
            // A changed trace may go back in time; a driver never does.
            now = now.max(latest);
            latest = now;
        }
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
            ("batch", None) => {
                let mut words = call.split(' ').skip(1);
                let from = words.next().and_then(|w| w.parse().ok()).ok_or(bad.clone())?;
                let datagrams = words
                    .map(|w| unhex(w).map(BytesMut::from))
                    .collect::<Option<alloc::vec::Vec<_>>>()
                    .ok_or(bad.clone())?;
                ep.handle_datagrams(now, from, datagrams);
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
                // A changed trace may ask for any size of buffer; drivers give up to 64 KiB.
                let len = match compare {
                    Outputs::Compared => len,
                    Outputs::Ignored => len.min(1 << 16),
                };
                buf.resize(len, 0);
                Some(match ep.poll_transmit(now, &mut buf) {
                    Some(t) => {
                        alloc::format!("{} {}", t.destination, hex(buf.get(..t.len).unwrap_or_default()))
                    }
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
                Some(outcome_text(&ep.command(now, cmd)))
            }
            _ => return Err(bad),
        };
        if let (Some(actual), Some(expected), Outputs::Compared) = (actual, expected, compare) {
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
    let replayed = Replayed {
        records: records.len(),
        outputs,
    };
    Ok((replayed, ep))
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
        for l in lines.iter().take(body + records) {
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
