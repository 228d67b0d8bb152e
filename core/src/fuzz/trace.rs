//! A fuzz input made into weir traces (spec/trace.md): the whole-endpoint targets run with
//! every endpoint recording, on a network kept outside the target, so that the traces
//! survive the target's failure (a panic unwinds through the target, not through the
//! [`TracedRun`] that owns the network). Each trace holds its endpoint's every input up to
//! the failing one, which is recorded before the endpoint acts on it: replaying the trace
//! of a crash in the core crashes again at the same record, and the trace viewer
//! (`weir trace show`) explains what led there.
//!
//! `cargo run -p weir-driver --features fuzzing --bin fuzz_trace -- TARGET INPUT DIR` is
//! the command around it (fuzz/README.md, "A crash becomes a trace").

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::net::Net;

/// Which primitives a traced run gives its endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceRun {
    /// Those the target gives them (the fuzzing stand-in, in all but `handshake`): the run
    /// is exactly the fuzzer's, but its traces replay only in a build with the `fuzzing`
    /// feature.
    AsFuzzed,
    /// The real ones everywhere: the traces replay in any build (`weir replay`), and the
    /// run fails as the fuzzer's did unless the failure came from the stand-in (the
    /// wire version 1 targets, `endpoint`, `hostile` and `pair`, never use it but for the
    /// endpoints' identities).
    RealPrimitives,
}

/// Why an input cannot be made into traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceTargetError {
    /// No fuzz target has this name.
    #[error("no fuzz target is named so")]
    Unknown,
    /// The target has no world of endpoints to trace: it drives one state machine, or
    /// (`trace_inputs`) its input is a trace already. Its input, committed to its corpus,
    /// is the regression test.
    #[error("this target has no endpoints to trace (one state machine, or a trace as input): its input is the regression")]
    NoEndpoints,
}

/// A whole-endpoint target's body, on a network the caller owns.
type BodyOn = fn(&[u8], &mut Net);

/// The whole-endpoint targets, by name.
const TRACED: &[(&str, BodyOn)] = &[
    ("batch", super::pair::batch_on),
    ("endpoint", super::endpoint::endpoint_on),
    ("endpoint_batch", super::endpoint::endpoint_batch_on),
    ("forgery", super::forgery::forgery_on),
    ("handshake", super::handshake::handshake_on),
    ("hostile", super::hostile::hostile_on),
    ("hostile_batch", super::hostile::hostile_batch_on),
    ("migration", super::migration::migration_on),
    ("migration_batch", super::migration::migration_batch_on),
    ("key_update", super::key_update::key_update_on),
    ("pair", super::pair::pair_on),
    ("relay", super::relay::relay_on),
    ("relay_batch", super::relay::relay_batch_on),
];

/// One run of a whole-endpoint target with every endpoint traced.
pub struct TracedRun {
    net: Net,
}

/// The targets that drive whole endpoints, which [`TracedRun`] runs (the others have no
/// endpoints to trace).
pub fn traced_targets() -> impl Iterator<Item = &'static str> {
    TRACED.iter().map(|(name, _)| *name)
}

impl TracedRun {
    /// A run whose endpoints use the primitives `how` says.
    pub fn new(how: TraceRun) -> Self {
        TracedRun {
            net: Net::traced(how),
        }
    }

    /// Runs `target` on `data`. A failure panics as it does under the fuzzer: catch it
    /// (`std::panic::catch_unwind`) and the traces are still here.
    pub fn run(&mut self, target: &str, data: &[u8]) -> Result<(), TraceTargetError> {
        match TRACED.iter().find(|(name, _)| *name == target) {
            Some((_, body)) => {
                body(data, &mut self.net);
                Ok(())
            }
            None if super::TARGETS.iter().any(|(name, _)| *name == target) => {
                Err(TraceTargetError::NoEndpoints)
            }
            None => Err(TraceTargetError::Unknown),
        }
    }

    /// Each endpoint's trace, self-contained (its secrets written in: a fuzz run's seeds are
    /// no secret), by the endpoint's address; an endpoint that recorded nothing is left out.
    pub fn traces(&mut self) -> Vec<(SocketAddr, String)> {
        let mut out = Vec::new();
        for node in &mut self.net.nodes {
            let mut text = core::mem::take(&mut node.taken);
            text.push_str(&node.ep.take_trace());
            let Some(secrets) = node.ep.trace_secrets() else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            // Only a trace this recorder wrote is read back here, so it always reads.
            let whole = crate::trace::inline_secrets(&text, &secrets).unwrap_or(text);
            out.push((node.addr, whole));
        }
        out
    }
}
