//! A normal build of weir-core cannot select the fuzzing stand-in for its cryptography
//! (crypto::stand_in): the config field and the variant exist only with the `fuzzing`
//! feature, so no code can name them, and the one way in from outside the code, a trace's
//! config line, is refused with a typed error. `.ci/run` runs this file without the feature
//! (the workspace's tests run with every feature, which would compile it out).
#![cfg(not(feature = "fuzzing"))]

use weir_core::trace::{replay, TraceError, TRACE_VERSION};

#[test]
fn a_trace_recorded_with_the_stand_in_is_refused_by_a_normal_build() {
    let trace = format!("weir-trace {TRACE_VERSION}\nseed 1\nconfig primitives=fuzzing-stand-in\n");
    let err = replay(&trace).expect_err("a normal build replayed a stand-in trace");
    assert!(matches!(err, TraceError::Unreplayable { .. }), "{err:?}");
    assert!(err.to_string().contains("`fuzzing` feature"), "{err}");
    // The real primitives, named or not, replay as ever.
    let real = format!("weir-trace {TRACE_VERSION}\nseed 1\nconfig primitives=real\n");
    assert!(replay(&real).is_ok());
}
