//! What the ends of a file transfer tell each other when it fails, and how each end says it
//! to a person: the stream codes `weir recv` stops a file with, the connection code either
//! end closes with on Ctrl-C, and the words for the transport's failures (no internal
//! names or bare numbers where a meaning is known).

use std::future::Future;
use std::path::{Path, PathBuf};

use weir_tokio::{CloseReason, Delivery, Error};

/// Stream codes a receiver stops a file with, and the connection code for Ctrl-C.
pub mod code {
    /// The stream is not a weir file (wrong label, or a missing or unsafe name).
    pub const NOT_A_FILE: u64 = 1;
    /// A file of that name exists in the receiver's directory and `--force` was not given.
    pub const EXISTS: u64 = 2;
    /// The receiver could not write the file.
    pub const WRITE_FAILED: u64 = 3;
    /// The other end was interrupted (Ctrl-C): the stream's or the connection's code.
    pub const INTERRUPTED: u64 = 4;
}

/// A receiver's reason for a code it stopped a file with.
fn refusal(code: u64) -> Option<&'static str> {
    Some(match code {
        code::NOT_A_FILE => "the receiver does not take it as a weir file",
        code::EXISTS => "the receiver already has a file of that name (it replaces one only with --force)",
        code::WRITE_FAILED => "the receiver could not write it to disk",
        code::INTERRUPTED => "the other end was interrupted (Ctrl-C)",
        _ => return None,
    })
}

/// Why a transfer failed, in words: the file codes by meaning, the rest as the transport
/// says it.
pub fn why(e: &Error) -> String {
    let code = match e {
        Error::Stopped { code } | Error::Reset { code } => Some(*code),
        Error::NotDelivered(Delivery::Failed { code, .. }) => Some(*code),
        Error::Closed(CloseReason::Peer {
            code: weir_core::wire::CloseCode::Application(code),
            ..
        }) => Some(*code),
        _ => None,
    };
    match (code.and_then(refusal), e) {
        (Some(text), Error::NotDelivered(Delivery::Failed { relays, .. })) if *relays > 0 => {
            format!("{text} ({relays} relays on)")
        }
        (Some(text), _) => text.to_string(),
        (None, e) => e.to_string(),
    }
}

/// Resolves at Ctrl-C (SIGINT), and at once if Ctrl-C already came. Once it has been
/// called, the signal no longer ends the process by itself: whoever waits on it says
/// goodbye to the peer first.
///
/// There is one listener for the whole command, installed at the first call and kept. A
/// listener per call would lose a Ctrl-C that comes between one step's wait and the next
/// (after `connect` returns and before the transfer's `select!` first polls): the handler
/// would be installed, so the process would not end, and no listener would see it.
pub async fn interrupt() {
    let Some(ctrl_c) = listening() else {
        // No handler could be installed: Ctrl-C ends the process as it would without weir.
        return std::future::pending().await;
    };
    let mut ctrl_c = ctrl_c.lock().await;
    if !ctrl_c.seen {
        if ctrl_c.signal.recv().await.is_none() {
            // The runtime's signal driver is gone: no Ctrl-C can come any more.
            drop(ctrl_c);
            return std::future::pending().await;
        }
        ctrl_c.seen = true;
    }
}

/// The command's one Ctrl-C listener, installed at the first call; `None` if it could not
/// be.
fn listening() -> Option<&'static tokio::sync::Mutex<CtrlC>> {
    static CTRL_C: std::sync::OnceLock<Option<tokio::sync::Mutex<CtrlC>>> = std::sync::OnceLock::new();
    CTRL_C
        .get_or_init(|| {
            // Installed here, synchronously: a Ctrl-C from now on is kept until read.
            #[cfg(unix)]
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
            #[cfg(windows)]
            let signal = tokio::signal::windows::ctrl_c();
            signal
                .ok()
                .map(|signal| tokio::sync::Mutex::new(CtrlC { signal, seen: false }))
        })
        .as_ref()
}

/// Whether Ctrl-C came, and the listener that tells.
struct CtrlC {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
    seen: bool,
}

/// Runs `work` unless Ctrl-C comes first.
pub async fn unless_interrupted<T>(
    work: impl Future<Output = Result<T, crate::error::CliError>>,
) -> Result<T, crate::error::CliError> {
    tokio::select! {
        r = work => r,
        () = interrupt() => Err(crate::error::CliError::Cancelled(None)),
    }
}

/// The connections a command is serving, so that Ctrl-C can tell each of them why it ends.
/// Clones share the set.
#[derive(Clone, Default)]
pub struct Serving(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<u64, weir_tokio::Connection>>>);

impl Serving {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, weir_tokio::Connection>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection `n` is being served.
    pub fn add(&self, n: u64, conn: &weir_tokio::Connection) {
        self.set().insert(n, conn.clone());
    }

    /// Connection `n` is done.
    pub fn remove(&self, n: u64) {
        self.set().remove(&n);
    }

    /// Lets go of every connection (their last handles close them gracefully).
    pub fn forget_all(&self) {
        self.set().clear();
    }

    /// Closes every connection served, and `more`, with [`code::INTERRUPTED`], and forgets
    /// them.
    pub async fn interrupt_all(&self, more: impl IntoIterator<Item = weir_tokio::Connection>) {
        let mut conns: Vec<weir_tokio::Connection> = std::mem::take(&mut *self.set()).into_values().collect();
        conns.extend(more);
        for conn in conns {
            let _ = conn.close(code::INTERRUPTED, "interrupted (Ctrl-C)").await;
        }
    }
}

/// A partial file (`.NAME.weir-part`) that is removed unless it was kept: however the
/// receiving of it ends (a failure, Ctrl-C, a task dropped as the runtime shuts down).
pub struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Partial {
    /// Watches `path`, which the caller creates.
    pub fn new(path: &Path) -> Partial {
        Partial {
            path: path.to_path_buf(),
            kept: false,
        }
    }

    /// The file is complete and renamed: nothing to remove.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_codes_read_as_their_meaning_and_others_as_the_transport_says() {
        let exists = Error::Stopped { code: code::EXISTS };
        assert!(
            why(&exists).contains("already has a file of that name"),
            "{}",
            why(&exists)
        );
        let relayed = Error::NotDelivered(Delivery::Failed {
            code: code::WRITE_FAILED,
            relays: 2,
        });
        assert_eq!(
            why(&relayed),
            "the receiver could not write it to disk (2 relays on)"
        );
        let broken = Error::NotDelivered(Delivery::Failed {
            code: weir_core::PIPE_BROKEN,
            relays: 0,
        });
        assert_eq!(why(&broken), "not delivered: a relay lost its next hop");
        assert!(!why(&broken).contains("1885958245"));
    }

    /// The only test in this binary that uses [`interrupt`]: its listener belongs to the
    /// runtime that first asks, this test's.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_ctrl_c_that_comes_while_no_one_waits_is_seen_by_every_later_wait() {
        assert!(listening().is_some(), "the handler is installed");
        let sent = std::process::Command::new("kill")
            .args(["-INT", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        // Nothing waited when it came; a listener per wait would hang here.
        for wait in ["first", "second"] {
            tokio::time::timeout(std::time::Duration::from_secs(60), interrupt())
                .await
                .unwrap_or_else(|_| panic!("the {wait} wait did not see the Ctrl-C"));
        }
    }

    #[test]
    fn a_partial_file_is_removed_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (gone, kept) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&gone, b"x").unwrap();
        std::fs::write(&kept, b"y").unwrap();
        drop(Partial::new(&gone));
        Partial::new(&kept).keep();
        assert!(!gone.exists());
        assert!(kept.exists());
    }
}
