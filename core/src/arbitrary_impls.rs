//! `Arbitrary` impls (feature `arbitrary`), for structure-aware fuzzing of code that takes
//! weir's time and wire types. Written by hand because `arbitrary`'s derive needs `std`.

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::time::{Duration, Instant};
use crate::wire::{
    Capabilities, ConnectionId, Header, PacketKind, PacketNumberLen, StreamId, MAX_PACKET_NUMBER,
};

impl<'a> Arbitrary<'a> for Duration {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Duration::from_micros(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for Instant {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Instant::from_micros(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for ConnectionId {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ConnectionId(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for StreamId {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(StreamId(u.int_in_range(0..=crate::wire::varint::MAX)?))
    }
}

impl<'a> Arbitrary<'a> for Capabilities {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Capabilities::from_bits(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for PacketNumberLen {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(*u.choose(&[
            PacketNumberLen::One,
            PacketNumberLen::Two,
            PacketNumberLen::Three,
            PacketNumberLen::Four,
        ])?)
    }
}

impl<'a> Arbitrary<'a> for Header {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let kind = if u.arbitrary()? {
            PacketKind::Handshake { scid: u.arbitrary()? }
        } else {
            PacketKind::Data
        };
        Ok(Header {
            version: crate::wire::VERSION_1,
            key_phase: crate::wire::KeyPhase::Zero,
            kind,
            dcid: u.arbitrary()?,
            number: u.int_in_range(0..=MAX_PACKET_NUMBER)?,
            number_len: u.arbitrary()?,
            timestamp: u.arbitrary()?,
        })
    }
}
