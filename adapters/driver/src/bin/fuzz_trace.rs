//! A fuzz input (a crash, or any corpus file) made into weir traces, one per endpoint of the
//! target's world, twice: as the fuzzer ran it, and with the real cryptographic primitives
//! (fuzz/README.md, "A crash becomes a trace").
//!
//! ```text
//! cargo run -p weir-driver --features fuzzing --bin fuzz_trace -- TARGET INPUT DIR
//! ```
//!
//! writes `DIR/as-fuzzed-N.trace` and `DIR/real-N.trace` (N: the endpoint's last address
//! byte), says for each run whether it failed and how, and whether each trace replays
//! here. The `real-*` traces replay in any build (`weir replay`, `weir trace show`); the
//! `as-fuzzed-*` ones, where the target used the fuzzing stand-in, only in a build with the
//! `fuzzing` feature. Exit code 0 when the input fails in at least one run, 1 when it fails
//! in none (nothing to reproduce), 2 on a usage or file error. It is weir-driver's, not
//! weir-core's, whose code touches no file.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;

use weir_core::fuzz::{TraceRun, TracedRun};
use weir_driver::fuzz::tool::{self, PanicMessages};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, input, dir] = &args[..] else {
        eprintln!("usage: fuzz_trace TARGET INPUT DIR");
        return ExitCode::from(2);
    };
    let data = match tool::prepare("fuzz_trace", input, dir) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let messages = PanicMessages::install();
    let mut failed = false;
    for (how, name) in [
        (TraceRun::AsFuzzed, "as-fuzzed"),
        (TraceRun::RealPrimitives, "real"),
    ] {
        let mut run = TracedRun::new(how);
        let outcome = catch_unwind(AssertUnwindSafe(|| run.run(target, &data)));
        match outcome {
            Ok(Err(e)) => {
                eprintln!("fuzz_trace: {target}: {e}");
                return ExitCode::from(2);
            }
            Ok(Ok(())) => println!("{name}: no failure"),
            Err(_) => {
                failed = true;
                println!("{name}: FAILED: {}", messages.take());
            }
        }
        for (addr, trace) in run.traces() {
            let last = match addr.ip() {
                std::net::IpAddr::V4(ip) => ip.octets()[3],
                std::net::IpAddr::V6(ip) => ip.octets()[15],
            };
            let path = Path::new(dir).join(format!("{name}-{last}.trace"));
            if let Err(e) = std::fs::write(&path, &trace) {
                eprintln!("fuzz_trace: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
            let replay = catch_unwind(|| weir_core::trace::replay(&trace));
            let verdict = match replay {
                Ok(Ok(r)) => format!("replays, {} records, {} outputs identical", r.records, r.outputs),
                Ok(Err(e)) => format!("replay differs: {e}"),
                Err(_) => format!("replay crashes as the run did: {}", messages.take()),
            };
            println!("  {} ({addr}): {verdict}", path.display());
        }
    }
    if failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
