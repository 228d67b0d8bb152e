//! What the finding tools (`fuzz_trace`, `driver_finding`) share: reading the input, making
//! the output folder, and keeping a failure's message instead of printing it.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The input at `input`, with the folder `dir` made; on an error, said on stderr under
/// `tool`'s name, the exit code 2.
pub fn prepare(tool: &str, input: &str, dir: &str) -> Result<Vec<u8>, ExitCode> {
    let data = std::fs::read(input).map_err(|e| {
        eprintln!("{tool}: cannot read {input}: {e}");
        ExitCode::from(2)
    })?;
    std::fs::create_dir_all(dir).map_err(|e| {
        eprintln!("{tool}: cannot create {dir}: {e}");
        ExitCode::from(2)
    })?;
    Ok(data)
}

/// The message of the latest panic, with where it happened, kept by a quiet panic hook
/// (installed by [`PanicMessages::install`]) instead of printed.
pub struct PanicMessages(Arc<Mutex<Option<String>>>);

impl PanicMessages {
    /// Replaces the panic hook with one that keeps each panic's message.
    pub fn install() -> PanicMessages {
        let kept = Arc::new(Mutex::new(None::<String>));
        let into = Arc::clone(&kept);
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
            let text = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            *into.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{text}{at}"));
        }));
        PanicMessages(kept)
    }

    /// The latest panic's message, taken; empty if none was kept.
    pub fn take(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }
}
