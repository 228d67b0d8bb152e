//! The handshake frames HELLO, ACCEPT, REJECT and RETRY (spec/protocol.md §4.13-§4.16).
//! Their encoding lives with the other frames' in `frame`; what they negotiate is in
//! `params`.

use core::fmt;

use bytes::Bytes;

use super::params::{Capabilities, TransportParams, VersionRange};

/// Why a server refused a HELLO (spec/protocol.md §4.15). Codes this version does not name
/// are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RejectReason(pub u64);

impl RejectReason {
    /// The client's and server's version ranges do not overlap.
    pub const NO_COMMON_VERSION: Self = Self(1);
    /// The server is at its connection limit.
    pub const AT_CAPACITY: Self = Self(2);
    /// The server's policy refuses this client.
    pub const REFUSED: Self = Self(3);
    /// The HELLO's address-validation token is invalid or expired.
    pub const INVALID_TOKEN: Self = Self(4);
    /// The HELLO's transport parameters are unacceptable.
    pub const BAD_PARAMETERS: Self = Self(5);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NO_COMMON_VERSION => "NO_COMMON_VERSION",
            Self::AT_CAPACITY => "AT_CAPACITY",
            Self::REFUSED => "REFUSED",
            Self::INVALID_TOKEN => "INVALID_TOKEN",
            Self::BAD_PARAMETERS => "BAD_PARAMETERS",
            _ => return None,
        })
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// HELLO (spec/protocol.md §4.13): a client asks for a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Versions the client speaks.
    pub versions: VersionRange,
    /// Capabilities the client offers.
    pub capabilities: Capabilities,
    /// The token of the server's last RETRY, or empty.
    pub token: Bytes,
    /// What the client is willing to receive.
    pub params: TransportParams,
}

/// ACCEPT (spec/protocol.md §4.14): the server accepts a HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The version chosen: the highest both speak. Never 0.
    pub version: u16,
    /// The capabilities the connection may use: the intersection of both offers.
    pub capabilities: Capabilities,
    /// What the server is willing to receive.
    pub params: TransportParams,
}

/// REJECT (spec/protocol.md §4.15): the server refuses a HELLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub reason: RejectReason,
    /// The versions the server speaks, so the client can report a mismatch.
    pub versions: VersionRange,
}

/// RETRY (spec/protocol.md §4.16): the server asks the client to repeat its HELLO with
/// this token, proving it receives at its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    /// 1 to [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN) opaque bytes.
    pub token: Bytes,
}
