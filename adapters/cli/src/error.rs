//! What a `weir` command can fail with, and the exit code each failure gives, so scripts can
//! tell a typo from a dead peer without reading the message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use weir_core::trace::TraceError;
use weir_core::wire::VersionRange;

/// Exit codes (also listed in `weir --help`). 2 is clap's own for a malformed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// A transfer failed after it began: the connection ended, or the bytes did not verify.
    Interrupted = 1,
    /// An address that does not parse or resolve.
    BadAddress = 3,
    /// A local file or directory that cannot be read or written.
    File = 4,
    /// The local address cannot be bound (in use, or not ours).
    Bind = 5,
    /// No answer from the peer within the handshake timeout.
    Unreachable = 6,
    /// The peer speaks no version we do, or refused us.
    Refused = 7,
    /// A trace that does not read, or whose replay differs from it.
    Trace = 8,
    /// Interrupted by Ctrl-C (SIGINT), as shells report a command a signal 2 ended.
    Cancelled = 130,
}

/// A failed command: a message for a person and an [`Exit`] code for a script.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// See [`Exit::BadAddress`].
    #[error("bad address `{text}`: {why}")]
    BadAddress {
        /// What was given.
        text: String,
        /// Why it does not do.
        why: String,
    },
    /// See [`Exit::File`].
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// See [`Exit::Bind`].
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said (in use, not available on this host).
        source: std::io::Error,
    },
    /// See [`Exit::Unreachable`].
    #[error("no answer from {addr} within the handshake timeout: is a weir endpoint listening there?")]
    Unreachable {
        /// The peer.
        addr: SocketAddr,
    },
    /// The peer speaks no version we do (see [`Exit::Refused`]).
    #[error("version mismatch with {addr}: we speak versions {ours}, the peer speaks {theirs}")]
    VersionMismatch {
        /// The peer.
        addr: SocketAddr,
        /// Our range.
        ours: VersionRange,
        /// The peer's range.
        theirs: VersionRange,
    },
    /// The peer refused the connection for another reason (see [`Exit::Refused`]).
    #[error("{addr} refused the connection: {why}")]
    Refused {
        /// The peer.
        addr: SocketAddr,
        /// The handshake failure.
        why: weir_tokio::HandshakeError,
    },
    /// The circuit relay refused a reservation or a circuit (see [`Exit::Refused`]).
    #[error("the relay at {relay} refused: {why}")]
    RelayRefused {
        /// The relay.
        relay: SocketAddr,
        /// Why.
        why: weir_tokio::RelayRefusal,
    },
    /// See [`Exit::Interrupted`].
    #[error("{}: {why}", progress(*delivered, *total))]
    Interrupted {
        /// What the receiving side got (or the sending side wrote).
        delivered: u64,
        /// The transfer's length (`?` when not known).
        total: Total,
        /// What ended it.
        why: String,
    },
    /// The bytes arrived but do not hash to the sender's digest (see [`Exit::Interrupted`]).
    #[error("verification failed: the bytes received do not match the sender's digest")]
    Verification,
    /// See [`Exit::Trace`].
    #[error("{}: {source}", path.display())]
    Trace {
        /// The trace file.
        path: PathBuf,
        /// Why it does not read or replay.
        source: TraceError,
    },
    /// An identity file that cannot be read, written or used (see [`Exit::File`]).
    #[error("identity: {0}")]
    Identity(weir_driver::identity_file::IdentityFileError),
    /// A socket failed after it was bound.
    #[error("network error: {0}")]
    Net(weir_tokio::Error),
    /// Standard output cannot be written (a full disk behind `> file`; see [`Exit::File`]). A
    /// reader that closed its end is not this: see the `output` module.
    #[error("cannot write to standard output: {0}")]
    Output(std::io::Error),
    /// Ctrl-C: the peers were told, partial files removed (see [`Exit::Cancelled`]).
    #[error("interrupted (Ctrl-C){}", match .0 { Some(what) => format!(": {what}"), None => String::new() })]
    Cancelled(Option<String>),
}

/// How far a failed transfer got, in words that do not claim bytes that never moved.
fn progress(delivered: u64, total: Total) -> String {
    match delivered {
        0 => format!("transfer failed before any of its {total} bytes arrived"),
        n => format!("transfer interrupted after {n} of {total} bytes"),
    }
}

/// A transfer's length, when known.
#[derive(Clone, Copy, Debug)]
pub struct Total(pub Option<u64>);

impl std::fmt::Display for Total {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("?"),
        }
    }
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::BadAddress { .. } => Exit::BadAddress,
            CliError::File { .. } | CliError::Identity(_) | CliError::Output(_) => Exit::File,
            CliError::Bind { .. } => Exit::Bind,
            CliError::Unreachable { .. } => Exit::Unreachable,
            CliError::VersionMismatch { .. } | CliError::Refused { .. } | CliError::RelayRefused { .. } => {
                Exit::Refused
            }
            CliError::Interrupted { .. } | CliError::Verification | CliError::Net(_) => Exit::Interrupted,
            CliError::Trace { .. } => Exit::Trace,
            CliError::Cancelled(_) => Exit::Cancelled,
        }
    }

    /// A failed handshake with `addr`, given the versions we offered.
    pub fn handshake(addr: SocketAddr, ours: VersionRange, error: weir_tokio::Error) -> CliError {
        use weir_tokio::HandshakeError as H;
        match error {
            weir_tokio::Error::Handshake(H::TimedOut) => CliError::Unreachable { addr },
            weir_tokio::Error::Handshake(H::NoCommonVersion { ours, server }) => CliError::VersionMismatch {
                addr,
                ours,
                theirs: server,
            },
            weir_tokio::Error::Handshake(H::Rejected { reason, versions })
                if reason == weir_core::wire::RejectReason::NO_COMMON_VERSION =>
            {
                CliError::VersionMismatch {
                    addr,
                    ours,
                    theirs: versions,
                }
            }
            weir_tokio::Error::Handshake(H::Relay(why)) | weir_tokio::Error::Relay(why) => {
                CliError::RelayRefused { relay: addr, why }
            }
            weir_tokio::Error::Handshake(why) => CliError::Refused { addr, why },
            other => CliError::Net(other),
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
