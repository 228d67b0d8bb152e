//! The wire format, versions 1 and 2: zero-copy decoding and exact encoding of weir datagrams.
//!
//! spec/protocol.md is the source of truth; section numbers below and in each item's docs
//! point into it. Inputs are untrusted bytes from the network; outputs are validated
//! representations whose payload fields are [`bytes::Bytes`] slices of the datagram, or a
//! typed [`DecodeError`]. No input can make this module panic or allocate more than a
//! bounded amount (a VERSION_REJECT's version ranges beyond two).
//!
//! - [`decode`] / [`Packet::decode`]: a datagram in, a validated [`Packet`] out; iterate its
//!   frames with [`Packet::frames`].
//! - [`PacketWriter`]: header, frames while they fit, trailer, into a caller's buffer.
//! - [`Invariant::parse`]: the version-independent start of any datagram, for routing.
//!
//! | part | module | spec |
//! | --- | --- | --- |
//! | varints | [`varint`] | §2.1 |
//! | invariant header, v1 header, packet numbers | `header` | §3.1-§3.4 |
//! | whole packets, checksum trailer | `packet` | §3.5, §4.1 |
//! | VERSION_REJECT | `version_reject` | §3.6 |
//! | frames | `frame` (the enum, the table), `ack`, `stream`, `close`, `handshake` | §4 |
//! | request and reply labels | [`request`] | §8, Requests |
//! | handshake parameters | `params` | §4.13-§4.16 |

// No input can make this module panic (above): outside tests, no index or slice that is not
// checked (`get`); a bound the code proves otherwise says why where it stands (`expect`).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod ack;
mod address;
mod close;
mod cursor;
mod digest;
mod error;
mod frame;
pub mod frame_types;
mod handshake;
mod header;
mod hex;
mod ids;
mod packet;
mod params;
mod receipt;
mod relay;
pub mod request;
mod stream;
mod trailer;
pub mod varint;
mod version_reject;

pub use ack::{Ack, AckRange, AckRangeIter, AckRanges};
pub use address::ObservedAddress;
pub use close::{Close, CloseCode, Reason, TransportErrorCode};
pub use digest::Digest;
pub use error::{DecodeError, EncodeError, Field, Limit, Violation};
pub use frame::Frame;
pub use handshake::{Accept, AcceptTerms, Hello, NoiseHello, Reject, RejectReason, Retry};
pub use header::{
    expand_packet_number, Header, Invariant, KeyPhase, PacketKind, PacketNumberLen, FLAG_LONG,
    MAX_PACKET_NUMBER,
};
pub(crate) use hex::Hex;
pub use ids::{ConnectionId, PacketType, Side, StreamId};
pub(crate) use packet::read_header;
pub use packet::{decode, encode_packet, reseal, Datagram, Frames, Packet, PacketWriter};
pub use params::{
    Capabilities, Cipher, Ciphers, NoisePattern, TransportParams, VersionRange, MAX_ACK_DELAY_MS,
};
pub use receipt::{Delivery, ReceiptRun, PIPE_BROKEN, VERIFICATION_FAILED};
pub use relay::{
    read_relay_header, write_relay_header, Candidates, CircuitId, RelayFrame, MAX_CANDIDATES, RELAYED,
    RELAY_HEADER_LEN,
};
pub use stream::{Label, StreamFrame};
pub use version_reject::VersionReject;

/// Wire version 1: plaintext packets ended by a CRC-32 trailer (spec/protocol.md §3).
pub const VERSION_1: u16 = 1;
/// Wire version 2: a Noise handshake and AEAD-sealed data packets (spec/protocol.md §11).
pub const VERSION_2: u16 = 2;
/// The smallest datagram every path must carry and every endpoint must accept; datagrams
/// carrying HELLO are padded to at least this (spec/protocol.md §3.7).
pub const MIN_DATAGRAM_SIZE: usize = 1200;
/// The largest UDP payload (65,535 - 8 bytes of UDP header): no datagram may exceed it.
pub const MAX_DATAGRAM_SIZE: usize = 65_527;
/// Bytes of the checksum trailer (CRC-32) that ends every datagram but a sealed one
/// (spec/protocol.md §3.5).
pub const TRAILER_LEN: usize = 4;
/// Bytes of the AEAD tag that ends a sealed (version 2 data) packet (spec/protocol.md §11.4).
pub const TAG_LEN: usize = 16;
/// Longest Noise handshake message a NOISE_HELLO, NOISE_ACCEPT or NOISE_FINISH carries
/// (spec/protocol.md §11.2).
pub const MAX_NOISE_MESSAGE_LEN: usize = 1024;
/// Most ranges an ACK frame carries (spec/protocol.md §4.3).
pub const MAX_ACK_RANGES: usize = 64;
/// Longest stream label, in bytes (spec/protocol.md §4.12).
pub const MAX_LABEL_LEN: usize = 128;
/// Longest address-validation token, in bytes (spec/protocol.md §4.13, §4.16).
pub const MAX_TOKEN_LEN: usize = 128;
/// Longest CLOSE reason, in bytes (spec/protocol.md §4.11).
pub const MAX_REASON_LEN: usize = 256;
/// Most version ranges in a VERSION_REJECT (spec/protocol.md §3.6).
pub const MAX_VERSION_RANGES: usize = 16;
/// Most streams the RECEIPT_RUN frames of one packet answer for, together
/// (spec/protocol.md §4.17): what bounds a packet's work on receipts, not its length.
pub const MAX_RECEIPT_RUN: u64 = 512;
