//! Identifiers carried on the wire: connection ids, stream ids, packet types.

use core::fmt;

/// A connection id (spec/protocol.md §3.3): 8 bytes chosen by the endpoint that receives
/// packets carrying it, so that it can find the connection without looking at addresses.
/// All zeros means "not yet known" (a client's HELLO before the server has chosen one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub [u8; 8]);

impl ConnectionId {
    /// Length of every connection id in wire version 1.
    pub const LEN: usize = 8;
    /// The all-zero id: "not yet chosen".
    pub const UNSET: ConnectionId = ConnectionId([0; 8]);

    /// The id as a big-endian number (handy for logs and tests).
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// The id whose big-endian bytes are `v`.
    pub const fn from_u64(v: u64) -> Self {
        ConnectionId(v.to_be_bytes())
    }
}

/// Lower-case hex, 16 digits.
impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.to_u64())
    }
}

/// Which end of a connection: the one that sent HELLO, or the one that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The endpoint that initiated the connection.
    Client,
    /// The endpoint that accepted it.
    Server,
}

/// A stream id (spec/protocol.md §4.12). Streams are unidirectional; the lowest bit says
/// which side opened the stream (0: client, 1: server), the rest count that side's streams
/// from 0. Values run up to 2^62 - 1 (a varint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

impl StreamId {
    /// The `index`-th stream opened by `initiator` (0-based).
    pub const fn new(initiator: Side, index: u64) -> Self {
        let bit = match initiator {
            Side::Client => 0,
            Side::Server => 1,
        };
        StreamId((index << 1) | bit)
    }

    /// The side that opened the stream.
    pub const fn initiator(self) -> Side {
        if self.0 & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// How many streams `initiator` opened before this one.
    pub const fn index(self) -> u64 {
        self.0 >> 1
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The two packet types of wire version 1 (spec/protocol.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Long header with both connection ids; carries the handshake.
    Handshake,
    /// Short header with the destination connection id only; everything after the handshake.
    Data,
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacketType::Handshake => "handshake",
            PacketType::Data => "data",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_encode_initiator_and_index() {
        assert_eq!(StreamId::new(Side::Client, 0), StreamId(0));
        assert_eq!(StreamId::new(Side::Server, 0), StreamId(1));
        assert_eq!(StreamId::new(Side::Server, 5), StreamId(11));
        assert_eq!(StreamId(11).initiator(), Side::Server);
        assert_eq!(StreamId(10).initiator(), Side::Client);
        assert_eq!(StreamId(11).index(), 5);
    }

    #[test]
    fn connection_id_round_trips_through_u64() {
        let id = ConnectionId::from_u64(0x0102_0304_0506_0708);
        assert_eq!(id.0, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(id.to_u64(), 0x0102_0304_0506_0708);
        assert_eq!(alloc::format!("{id}"), "0102030405060708");
    }
}
