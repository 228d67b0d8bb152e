//! Recording traces (spec/trace.md): the record of one endpoint's life, one line per call,
//! enough to rebuild it and check it byte for byte; and the trace format both sides share.
//!
//! Job: record every input an endpoint was given (datagrams, timeouts, the application's
//! [`Command`]s, each with its time) and every output it gave back (datagrams out, events,
//! deadlines, what each command returned), in call order; keep what the text leaves out
//! ([`TraceSecrets`]) apart. Replaying is module `replay`'s, which sits above the endpoint;
//! this one sits below it, so the two never import each other.
//!
//! Inputs: an endpoint made with [`Endpoint::new_traced`](crate::Endpoint::new_traced)
//! records as it is driven (the recorder only reads what the calls pass and return, so
//! behaviour is the same traced or not; untraced, each call pays one branch). Outputs: the
//! text, drained with [`Endpoint::take_trace`](crate::Endpoint::take_trace), and the secrets.

// A trace is read back from a file anyone may have changed (`crate::replay`): outside
// tests, no index or slice that is not checked; a bound the code proves says why where it
// stands.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod command;
mod config_text;

use alloc::string::{String, ToString};
use core::fmt::{self, Write as _};
use core::net::SocketAddr;

use bytes::Bytes;

use sha2::{Digest as _, Sha256};

use crate::command::{Command, Done};
use crate::config::Config;
use crate::crypto::keys::{Identity, Seed};
use crate::event::{ApiError, Event};
use crate::time::Instant;
pub(crate) use command::outcome_text;
pub(crate) use config_text::parse as parse_config;

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
    /// The trace needs what this replay cannot have: the application's peer-policy
    /// callback, or (a fuzz target's trace) the fuzzing stand-in for the cryptography,
    /// which only a build with weir-core's `fuzzing` feature has.
    #[error("the trace cannot be replayed: {what}")]
    Unreplayable {
        /// What is missing.
        what: &'static str,
    },
    /// The trace leaves its secrets out (`secrets` header) and none were given to the
    /// replayer ([`replay_with_secrets`](crate::trace::replay_with_secrets)).
    #[error("the trace's secrets are kept apart (its `.secrets` file): give them to the replayer")]
    SecretsMissing,
    /// The secrets given are not the ones the trace was recorded with (its `secrets`
    /// fingerprint differs), or do not read.
    #[error("the secrets given are not this trace's")]
    SecretsMismatch,
    /// The trace names a controller of the user's own (`custom:NAME`) that the replayer
    /// was not given ([`replay_with_controllers`](crate::trace::replay_with_controllers)).
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
        // A chunk at a time through a buffer: a trace of a busy endpoint is mostly these
        // digits, and a `write!` per byte made recording several times slower.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 128];
        for chunk in self.0.chunks(buf.len() / 2) {
            for (pair, &b) in buf.chunks_exact_mut(2).zip(chunk) {
                #[expect(clippy::indexing_slicing, reason = "a nibble indexes 16 digits")]
                let digits = [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]];
                pair.copy_from_slice(&digits);
            }
            let digits = buf.get(..2 * chunk.len()).ok_or(fmt::Error)?;
            let digits = core::str::from_utf8(digits).map_err(|_| fmt::Error)?;
            f.write_str(digits)?;
        }
        Ok(())
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
    // By table, every byte's validity folded into one test at the end: traces are mostly
    // these digits, and a branch per digit was most of a replay's cost under a fuzzer.
    let mut bad = 0u8;
    let bytes: alloc::vec::Vec<u8> = s
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let (high, low) = match pair {
                #[expect(clippy::indexing_slicing, reason = "a byte indexes 256 values")]
                &[high, low] => (HEX_VALUE[usize::from(high)], HEX_VALUE[usize::from(low)]),
                _ => (0xff, 0xff),
            };
            bad |= high | low;
            high << 4 | (low & 0xf)
        })
        .collect();
    (bad & 0xf0 == 0).then(|| Bytes::from(bytes))
}

/// Each byte's value as a hex digit, or 0xff for a byte that is not one.
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where a bad index fails the build"
)]
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// What a trace leaves out (spec/trace.md §2.1): the endpoint's seed, its configured
/// identity's secret key, and the fresh entropy it was given, in order. Kept apart from the
/// trace ([`Endpoint::trace_secrets`](crate::Endpoint::trace_secrets)) and handed to the replayer separately
/// ([`replay_with_secrets`](crate::trace::replay_with_secrets)), so a trace can be read, shared and shrunk without them.
/// `Debug` shows none of them.
#[derive(Clone)]
pub struct TraceSecrets {
    pub(crate) seed: Seed,
    pub(crate) identity: Option<Identity>,
    pub(crate) entropy: alloc::vec::Vec<Bytes>,
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
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"weir trace secrets");
        h.update(self.seed.as_bytes());
        if let Some(id) = &self.identity {
            h.update(id.secret_bytes());
        }
        hex(h.finalize().get(..8).unwrap_or_default()).to_string()
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

    /// Datagrams handed over together (`Endpoint::handle_datagrams`): one record, so that
    /// a replay hands them over together too.
    pub(crate) fn batch_in(&mut self, now: Instant, from: SocketAddr, datagrams: &[bytes::BytesMut]) {
        let mut text = String::new();
        for d in datagrams {
            // Writing into a `String` cannot fail.
            let _ = write!(text, " {}", hex(d));
        }
        self.record(Some(now), format_args!("batch {from}{text}"));
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
        let text = command::Text { command: cmd, result };
        self.record(now, format_args!("{text} => {}", outcome_text(result)));
    }

    pub(crate) fn take(&mut self) -> String {
        core::mem::take(&mut self.text)
    }
}

/// Whether a config line names its identity as kept with the secrets.
pub(crate) fn config_line_hides_identity(line: &str) -> bool {
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
pub(crate) fn parse_seed(s: &str) -> Option<Seed> {
    s.parse::<Seed>()
        .ok()
        .or_else(|| s.parse::<u64>().ok().map(Seed::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_reads_back_across_its_chunks_and_refuses_what_is_not_hex() {
        for len in [1, 2, 63, 64, 65, 200, 1500] {
            let bytes: alloc::vec::Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = hex(&bytes).to_string();
            let per_byte: alloc::string::String = bytes.iter().map(|b| alloc::format!("{b:02x}")).collect();
            assert_eq!(text, per_byte);
            assert_eq!(unhex(&text).as_deref(), Some(&bytes[..]), "{len} bytes");
        }
        assert_eq!(hex(&[]).to_string(), "-");
        assert_eq!(unhex("-").as_deref(), Some(&[][..]));
        assert_eq!(unhex("0aFf").as_deref(), Some(&[0x0a, 0xff][..]));
        for bad in ["0", "0g", "+f", " 1", "é1"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
    }
}
