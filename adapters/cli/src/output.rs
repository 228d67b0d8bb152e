//! The commands' reports on standard output, written so that a reader who stops reading does
//! not end the command.
//!
//! `println!` panics when a write fails, and Rust ignores SIGPIPE, so `weir trace show F |
//! head` used to end in a panic (exit 101) once `head` had its lines. Here a closed pipe ends
//! the *output*: later lines are dropped, and the command goes on to its own verdict (a sim
//! still writes its trace and still fails if its transfer did), as a command whose output was
//! sent to `/dev/null` would. Any other write failure (a full disk behind `> file`) is a
//! [`CliError::Output`]: the report the user asked for was not written.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::CliError;

/// Set once a write found the reading end closed: nothing is written after it.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to standard output (see the module doc for what a closed pipe does).
pub fn line(text: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    if closed() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    check(out.write_fmt(text).and_then(|()| out.write_all(b"\n")))
}

/// What a write to standard output came to: a closed pipe is noted (see [`closed`]) and is
/// not an error; any other failure is.
pub fn check(written: std::io::Result<()>) -> Result<(), CliError> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other.map_err(CliError::Output),
    }
}

/// Whether the reader of standard output has gone: a caller with much to write stops here.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// [`line()`] with `format!`'s arguments: `say!("{x}")?`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;
