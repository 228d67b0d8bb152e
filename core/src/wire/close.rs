//! CLOSE and APPLICATION_CLOSE: codes and reasons (spec/protocol.md §4.11).

use core::fmt;

use bytes::Bytes;

use super::error::{Limit, Violation};
use super::MAX_REASON_LEN;

/// A transport error code carried by CLOSE (spec/protocol.md §4.11, table 4). Codes this
/// version does not name are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransportErrorCode(pub u64);

impl TransportErrorCode {
    /// Closed without error.
    pub const NO_ERROR: Self = Self(0x0);
    /// The endpoint hit a bug of its own.
    pub const INTERNAL_ERROR: Self = Self(0x1);
    /// The peer broke a protocol rule not covered by a more specific code.
    pub const PROTOCOL_VIOLATION: Self = Self(0x2);
    /// The peer sent more than its credit.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// The peer opened more streams than allowed.
    pub const STREAM_LIMIT_ERROR: Self = Self(0x4);
    /// A frame could not be decoded.
    pub const FRAME_ENCODING_ERROR: Self = Self(0x5);
    /// A stream's final size changed or was exceeded.
    pub const FINAL_SIZE_ERROR: Self = Self(0x6);
    /// A frame arrived for a stream in a state that forbids it.
    pub const STREAM_STATE_ERROR: Self = Self(0x7);
    /// Transport parameters were malformed or unacceptable.
    pub const TRANSPORT_PARAMETER_ERROR: Self = Self(0x8);
    /// The endpoint is overloaded and sheds this connection.
    pub const EXCESSIVE_LOAD: Self = Self(0x9);
    /// Version 2: the endpoint's peer policy refuses the peer's identity (spec §11.6).
    pub const CONNECTION_REFUSED: Self = Self(0xa);
    /// Version 2: a key reached its AEAD limit with no key update possible (spec §11.5).
    pub const AEAD_LIMIT_REACHED: Self = Self(0xb);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NO_ERROR => "NO_ERROR",
            Self::INTERNAL_ERROR => "INTERNAL_ERROR",
            Self::PROTOCOL_VIOLATION => "PROTOCOL_VIOLATION",
            Self::FLOW_CONTROL_ERROR => "FLOW_CONTROL_ERROR",
            Self::STREAM_LIMIT_ERROR => "STREAM_LIMIT_ERROR",
            Self::FRAME_ENCODING_ERROR => "FRAME_ENCODING_ERROR",
            Self::FINAL_SIZE_ERROR => "FINAL_SIZE_ERROR",
            Self::STREAM_STATE_ERROR => "STREAM_STATE_ERROR",
            Self::TRANSPORT_PARAMETER_ERROR => "TRANSPORT_PARAMETER_ERROR",
            Self::EXCESSIVE_LOAD => "EXCESSIVE_LOAD",
            Self::CONNECTION_REFUSED => "CONNECTION_REFUSED",
            Self::AEAD_LIMIT_REACHED => "AEAD_LIMIT_REACHED",
            _ => return None,
        })
    }
}

impl fmt::Display for TransportErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// Who closed a connection, and with which code (spec/protocol.md §4.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// The transport closed it (frame type CLOSE).
    Transport(TransportErrorCode),
    /// The application closed it with its own code (frame type APPLICATION_CLOSE).
    Application(u64),
}

/// A CLOSE reason: at most [`MAX_REASON_LEN`] bytes of UTF-8, for people to read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reason(Bytes);

impl Reason {
    /// The reason with these bytes, or the violation if they are too long or not UTF-8.
    pub fn new(bytes: Bytes) -> Result<Self, Violation> {
        if bytes.len() > MAX_REASON_LEN {
            return Err(Violation::LimitExceeded {
                limit: Limit::ReasonLength,
                value: bytes.len() as u64,
                max: MAX_REASON_LEN as u64,
            });
        }
        core::str::from_utf8(&bytes).map_err(|_| Violation::InvalidReason)?;
        Ok(Reason(bytes))
    }

    /// The reason from a static string.
    pub fn from_static(s: &'static str) -> Result<Self, Violation> {
        Self::new(Bytes::from_static(s.as_bytes()))
    }

    /// The reason's bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        // Checked to be UTF-8 on construction; the fallback is never taken.
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// CLOSE or APPLICATION_CLOSE (spec/protocol.md §4.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// Who closed and why, as a code.
    pub code: CloseCode,
    /// Why, for people.
    pub reason: Reason,
}
