//! A fuzz input of a target over drivers (`driver`, or `piping` with `--target piping`; a
//! crash, or any corpus file) made into what explains it: the answers the applications were
//! given, and the weir traces every endpoint's core recorded, twice: as the fuzzer ran it,
//! and with the real cryptographic primitives (fuzz/README.md, "A crash becomes a trace").
//!
//! ```text
//! cargo run -p weir-driver --features fuzzing --bin driver_finding -- [--target piping] INPUT DIR
//! ```
//!
//! writes, for each run (`as-fuzzed`, `real`), `DIR/RUN.answers` and `DIR/RUN-PORT.trace`
//! (PORT: for `driver` 1000 the client, 2000 the server; for `piping` 1000 the sender,
//! 2000 the relay, 3000 and 4000 the receivers; self-contained, its secrets inlined), says
//! whether the run failed and how, and whether each trace replays here. The `real-*`
//! traces replay in any build (`weir replay`, `weir trace show`); the `as-fuzzed-*` ones
//! only in a build with weir-core's `fuzzing` feature. Exit code 0 when the input fails in
//! at least one run, 1 when it fails in none (nothing to reproduce), 2 on a usage or file
//! error.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;

use weir_core::crypto::Primitives;
use weir_core::trace::TraceSecrets;
use weir_driver::fuzz::tool::{self, PanicMessages};
use weir_driver::fuzz::Target;

fn main() -> ExitCode {
    const USAGE: &str = "usage: driver_finding [--target driver|piping|pool|circuit] INPUT DIR";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, rest) = match &args[..] {
        [flag, name, rest @ ..] if flag == "--target" => match Target::from_name(name) {
            Some(t) => (t, rest),
            None => {
                eprintln!("driver_finding: no target {name:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        rest => (Target::Driver, rest),
    };
    let [input, dir] = rest else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let data = match tool::prepare("driver_finding", input, dir) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let messages = PanicMessages::install();
    let mut failed = false;
    for (primitives, name) in [
        (Primitives::FuzzingStandIn, "as-fuzzed"),
        (Primitives::Real, "real"),
    ] {
        let pattern = Path::new(dir).join(format!("{name}-{{port}}.trace"));
        let pattern = pattern.to_string_lossy();
        let run = catch_unwind(AssertUnwindSafe(|| target.record(&data, primitives, &pattern)));
        let answers = match run {
            Ok(answers) => {
                println!("{name}: no failure");
                answers
            }
            Err(_) => {
                failed = true;
                let text = messages.take();
                println!("{name}: FAILED: {text}");
                text
            }
        };
        let path = Path::new(dir).join(format!("{name}.answers"));
        if let Err(e) = std::fs::write(&path, answers) {
            eprintln!("driver_finding: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
        for &port in target.ports() {
            let path = Path::new(dir).join(format!("{name}-{port}.trace"));
            let trace = match inline(&path) {
                Ok(trace) => trace,
                Err(e) => {
                    eprintln!("driver_finding: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            let verdict = match catch_unwind(|| weir_core::trace::replay(&trace)) {
                Ok(Ok(r)) => format!("replays, {} records, {} outputs identical", r.records, r.outputs),
                Ok(Err(e)) => format!("replay differs: {e}"),
                Err(_) => format!("replay crashes as the run did: {}", messages.take()),
            };
            println!("  {}: {verdict}", path.display());
        }
    }
    if failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Makes the trace at `path` self-contained: its secrets (the file beside it) inlined, the
/// secrets file removed. The trace as it now stands.
fn inline(path: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let secrets_path = weir_driver::secrets_path(path);
    let secrets = TraceSecrets::parse(&std::fs::read_to_string(&secrets_path)?)?;
    let text = weir_core::trace::inline_secrets(&text, &secrets)?;
    std::fs::write(path, &text)?;
    std::fs::remove_file(secrets_path)?;
    Ok(text)
}
