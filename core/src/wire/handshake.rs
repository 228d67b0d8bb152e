//! The handshake frames HELLO, ACCEPT, REJECT and RETRY (spec/protocol.md §4.13-§4.16),
//! and version 2's NOISE_HELLO, NOISE_ACCEPT and NOISE_FINISH with the prologue and the
//! sealed terms they carry (§11.2). Their frame encoding lives with the other frames' in
//! `frame`; what they negotiate is in `params`.

use core::fmt;

use bytes::Bytes;

use super::cursor::{Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::params::{Capabilities, Cipher, Ciphers, NoisePattern, TransportParams, VersionRange};
use super::MAX_NOISE_MESSAGE_LEN;

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
    /// The NOISE_HELLO's first message does not open with this server's static key (an IK
    /// handshake aimed at another key, spec §11.2), or is otherwise unreadable.
    pub const KEY_MISMATCH: Self = Self(6);
    /// The server and client share no cipher (spec §11.3).
    pub const NO_COMMON_CIPHER: Self = Self(7);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NO_COMMON_VERSION => "NO_COMMON_VERSION",
            Self::AT_CAPACITY => "AT_CAPACITY",
            Self::REFUSED => "REFUSED",
            Self::INVALID_TOKEN => "INVALID_TOKEN",
            Self::BAD_PARAMETERS => "BAD_PARAMETERS",
            Self::KEY_MISMATCH => "KEY_MISMATCH",
            Self::NO_COMMON_CIPHER => "NO_COMMON_CIPHER",
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

/// NOISE_HELLO (spec/protocol.md §11.2): a version 2 client asks for a connection. The HELLO
/// fields travel in the clear (the server reads the token before it keeps any state) and
/// are bound into the Noise handshake as its prologue, so that a change on the way makes
/// the handshake fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseHello {
    /// Versions, capabilities, token and transport parameters, as in HELLO.
    pub hello: Hello,
    /// The handshake pattern `message` starts.
    pub pattern: NoisePattern,
    /// The ciphers the client can seal packets with.
    pub ciphers: Ciphers,
    /// The first Noise handshake message.
    pub message: Bytes,
}

impl NoiseHello {
    /// The Noise prologue (spec §11.2): `"weir/2 prologue"`, the client's connection id,
    /// then every field of the frame before the message, as encoded.
    pub fn prologue(&self, client: super::ConnectionId) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        let mut out = alloc::vec![0u8; PROLOGUE_LABEL.len() + 8 + self.fields_len()?];
        let mut w = Writer::new(&mut out);
        w.put(PROLOGUE_LABEL)?;
        w.put(&client.0)?;
        self.write_fields(&mut w)?;
        Ok(out)
    }

    fn fields_len(&self) -> Result<usize, Violation> {
        Ok(super::cursor::varint_len(self.hello.capabilities.bits())?
            + 4
            + super::cursor::varint_len(self.hello.token.len() as u64)?
            + self.hello.token.len()
            + self.hello.params.encoded_len()?
            + super::cursor::varint_len(self.pattern.code())?
            + super::cursor::varint_len(self.ciphers.bits())?)
    }

    /// Bytes of the frame body (type excluded).
    pub(crate) fn body_len(&self) -> Result<usize, Violation> {
        Ok(self.fields_len()? + message_len(&self.message)?)
    }

    fn write_fields(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.hello.versions.write(w)?;
        w.varint(self.hello.capabilities.bits())?;
        w.varint(self.hello.token.len() as u64)?;
        w.put(&self.hello.token)?;
        self.hello.params.write(w)?;
        w.varint(self.pattern.code())?;
        w.varint(self.ciphers.bits())
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.write_fields(w)?;
        write_message(w, &self.message)
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let versions = VersionRange::read(r)?;
        let capabilities = Capabilities::read(r)?;
        let len = r.length(Field::Token, Limit::TokenLength, super::MAX_TOKEN_LEN)?;
        let token = r.bytes(len, Field::Token)?;
        let params = TransportParams::read(r)?;
        Ok(NoiseHello {
            hello: Hello {
                versions,
                capabilities,
                token,
                params,
            },
            pattern: NoisePattern::read(r)?,
            ciphers: Ciphers::read(r)?,
            message: read_message(r)?,
        })
    }
}

const PROLOGUE_LABEL: &[u8] = b"weir/2 prologue";

/// Bytes a Noise message field takes: its length varint and the message.
pub(crate) fn message_len(message: &Bytes) -> Result<usize, Violation> {
    if message.len() > MAX_NOISE_MESSAGE_LEN {
        return Err(Violation::LimitExceeded {
            limit: Limit::NoiseMessageLength,
            value: message.len() as u64,
            max: MAX_NOISE_MESSAGE_LEN as u64,
        });
    }
    Ok(super::cursor::varint_len(message.len() as u64)? + message.len())
}

pub(crate) fn write_message(w: &mut Writer, message: &Bytes) -> Result<(), EncodeError> {
    message_len(message)?;
    w.varint(message.len() as u64)?;
    w.put(message)
}

pub(crate) fn read_message(r: &mut Reader) -> Result<Bytes, DecodeError> {
    let len = r.length(
        Field::NoiseMessage,
        Limit::NoiseMessageLength,
        MAX_NOISE_MESSAGE_LEN,
    )?;
    r.bytes(len, Field::NoiseMessage)
}

/// What a version 2 server's NOISE_ACCEPT says, sealed inside its Noise message (spec
/// §11.2): ACCEPT's fields and the cipher chosen for data packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptTerms {
    /// Version, capabilities and the server's transport parameters, as in ACCEPT.
    pub accept: Accept,
    /// The cipher both sides seal data packets with.
    pub cipher: Cipher,
}

impl AcceptTerms {
    /// The encoding: version (u16), capabilities, cipher (varint: its bit), transport
    /// parameters.
    pub fn encode(&self) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        if self.accept.version == 0 {
            return Err(Violation::InvalidVersionRange { min: 0, max: 0 }.into());
        }
        let len = 2
            + super::cursor::varint_len(self.accept.capabilities.bits())?
            + super::cursor::varint_len(self.cipher.bit())?
            + self.accept.params.encoded_len()?;
        let mut out = alloc::vec![0u8; len];
        let mut w = Writer::new(&mut out);
        w.u16(self.accept.version)?;
        w.varint(self.accept.capabilities.bits())?;
        w.varint(self.cipher.bit())?;
        self.accept.params.write(&mut w)?;
        Ok(out)
    }

    /// Reads terms that fill `bytes` exactly.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u16(Field::Version)?;
        if version == 0 {
            return Err(Violation::InvalidVersionRange { min: 0, max: 0 }.into());
        }
        let capabilities = Capabilities::read(&mut r)?;
        let cipher = Cipher::read(&mut r)?;
        let params = TransportParams::read(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes(Field::TransportParameters));
        }
        Ok(AcceptTerms {
            accept: Accept {
                version,
                capabilities,
                params,
            },
            cipher,
        })
    }
}
