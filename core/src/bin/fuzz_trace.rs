//! A fuzz input (a crash, or any corpus file) made into weir traces, one per endpoint of the
//! target's world, twice: as the fuzzer ran it, and with the real cryptographic primitives
//! (fuzz/README.md, "A crash becomes a trace").
//!
//! ```text
//! cargo run -p weir-core --features fuzzing --bin fuzz_trace -- TARGET INPUT DIR
//! ```
//!
//! writes `DIR/as-fuzzed-N.trace` and `DIR/real-N.trace` (N: the endpoint's last address
//! byte), says for each run whether it failed and how, and whether each trace replays
//! here. The `real-*` traces replay in any build (`weir replay`, `weir trace show`); the
//! `as-fuzzed-*` ones, where the target used the fuzzing stand-in, only in a build with the
//! `fuzzing` feature. Exit code 0 when the input fails in at least one run, 1 when it fails
//! in none (nothing to reproduce), 2 on a usage or file error.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use weir_core::fuzz::{TraceRun, TracedRun};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, input, dir] = &args[..] else {
        eprintln!("usage: fuzz_trace TARGET INPUT DIR");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fuzz_trace: cannot read {input}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("fuzz_trace: cannot create {dir}: {e}");
        return ExitCode::from(2);
    }
    // The failure's message, kept by a quiet hook instead of printed by the default one.
    let message = Arc::new(Mutex::new(None::<String>));
    let kept = Arc::clone(&message);
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
        let text = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        *kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{text}{at}"));
    }));
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
                let text = message.lock().unwrap_or_else(|p| p.into_inner()).take();
                println!("{name}: FAILED: {}", text.unwrap_or_default());
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
                Err(_) => {
                    let text = message.lock().unwrap_or_else(|p| p.into_inner()).take();
                    format!("replay crashes as the run did: {}", text.unwrap_or_default())
                }
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
