//! `trace_inputs`: a weir trace (spec/trace.md) as the fuzzer's input. The text is parsed
//! as a replayer parses it, and every call it records is made on an endpoint built from its
//! config, at its times, with its datagrams and commands, the outputs it recorded ignored:
//! the fuzzer changes the trace's bytes, so the endpoint goes its own way. A trace is thus a
//! corpus entry as it stands: the golden traces (spec/traces/) and the findings' traces
//! (fuzz/findings/) seed this target, and any trace a user records can join them.
//!
//! The config is the trace's, its memory limits held to the `endpoint` target's, so that a
//! changed digit cannot ask for gigabytes legitimately; only self-contained traces (seed
//! inline, no secrets kept apart) read.
//!
//! Oracle: no panic in the parser or the endpoint; after every record the `endpoint`
//! target's memory bound; and the endpoint's own trace of the run replays byte for byte.

use super::endpoint::{check_bounds, config as bounds};
use crate::Config;

/// `trace_inputs`: a changed trace's inputs drive an endpoint; no panic, memory within
/// the configuration after every record, and the run's own trace replays.
pub fn trace_inputs(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(mut ep) = crate::replay::drive(text, hold_limits, check_bounds) else {
        return;
    };
    let trace = ep.take_trace();
    let secrets = ep.trace_secrets();
    if let Err(e) = crate::trace::replay_with_secrets(&trace, secrets.as_ref(), |_| {}) {
        // Oracle: what an endpoint recorded replays; a trace that does not is the finding.
        panic!("the driven session does not replay: {e}");
    }
}

/// Holds `c`'s limits on memory and connections to the `endpoint` target's, and its
/// timeouts to at most theirs, so that a run stays small whatever the text says.
fn hold_limits(c: &mut Config) {
    let b = bounds();
    c.max_connections = c.max_connections.min(b.max_connections);
    c.stream_receive_window = c.stream_receive_window.min(b.stream_receive_window);
    c.max_stream_receive_window = c.max_stream_receive_window.min(b.max_stream_receive_window);
    c.receive_window = c.receive_window.min(b.receive_window);
    c.max_receive_window = c.max_receive_window.min(b.max_receive_window);
    c.receive_buffer_total = c.receive_buffer_total.min(b.receive_buffer_total);
    c.send_buffer = c.send_buffer.min(b.send_buffer);
    c.send_buffer_total = c.send_buffer_total.min(b.send_buffer_total);
    c.initial_concurrent_streams = c.initial_concurrent_streams.min(b.initial_concurrent_streams);
    c.max_concurrent_streams = c.max_concurrent_streams.min(b.max_concurrent_streams);
    c.pipe_buffer = c.pipe_buffer.min(b.pipe_buffer);
    c.pipe_buffer_total = c.pipe_buffer_total.min(b.pipe_buffer_total);
    c.relay = None;
}

#[cfg(test)]
mod tests {
    /// Driven unchanged and unadjusted, a trace makes every call it records and gets every
    /// output it recorded: the endpoint records the same trace again.
    #[test]
    fn an_unchanged_trace_driven_records_itself_again() {
        let golden = include_str!("../../../spec/traces/stream-reset.trace");
        let mut ep = crate::replay::drive(golden, |_| {}, |_| {}).expect("a golden trace reads");
        let secrets = ep.trace_secrets().expect("a traced endpoint");
        let again = crate::trace::inline_secrets(&ep.take_trace(), &secrets).expect("its own trace");
        let first = golden.lines().zip(again.lines()).position(|(a, b)| a != b);
        assert!(
            again == golden,
            "the driven endpoint went another way at line {first:?}"
        );
    }
}
