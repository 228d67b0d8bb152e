//! OBSERVED_ADDRESS (spec/protocol.md §4.18): the address a peer saw our packets come from,
//! numbered so that a reordered older report never replaces a newer one. The layout of the
//! address itself (family, bytes, port) is the one every future frame that names an address
//! reuses.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::cursor::{varint_len, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Violation};

/// The family byte of an IPv4 address.
const FAMILY_V4: u8 = 4;
/// The family byte of an IPv6 address.
const FAMILY_V6: u8 = 6;

/// What an OBSERVED_ADDRESS frame says (capability ADDRESS_DISCOVERY, version 2 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedAddress {
    /// Grows by one with each new address the sender reports on this connection; a
    /// receiver keeps the report with the highest.
    pub sequence: u64,
    /// The source address of the packets the sender receives from us.
    pub address: SocketAddr,
}

impl ObservedAddress {
    pub(super) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let sequence = r.varint(Field::Sequence)?;
        let address = read_address(r)?;
        Ok(ObservedAddress { sequence, address })
    }

    pub(super) fn encoded_len(&self) -> Result<usize, Violation> {
        Ok(varint_len(self.sequence)? + address_len(&self.address))
    }

    pub(super) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.varint(self.sequence)?;
        write_address(w, &self.address)
    }
}

/// Bytes an address takes: family, address, port.
pub(super) fn address_len(a: &SocketAddr) -> usize {
    match a {
        SocketAddr::V4(_) => 1 + 4 + 2,
        SocketAddr::V6(_) => 1 + 16 + 2,
    }
}

pub(super) fn read_address(r: &mut Reader) -> Result<SocketAddr, DecodeError> {
    let ip = match r.u8(Field::Address)? {
        FAMILY_V4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>(Field::Address)?)),
        FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>(Field::Address)?)),
        other => return Err(Violation::InvalidAddressFamily(other).into()),
    };
    Ok(SocketAddr::new(ip, r.u16(Field::Address)?))
}

pub(super) fn write_address(w: &mut Writer, a: &SocketAddr) -> Result<(), EncodeError> {
    match a.ip() {
        IpAddr::V4(ip) => {
            w.u8(FAMILY_V4)?;
            w.put(&ip.octets())?;
        }
        IpAddr::V6(ip) => {
            w.u8(FAMILY_V6)?;
            w.put(&ip.octets())?;
        }
    }
    w.u16(a.port())
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use bytes::Bytes;

    use super::*;

    fn round_trip(o: ObservedAddress) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        o.write(&mut w).unwrap();
        let written = w.written().to_vec();
        assert_eq!(written.len(), o.encoded_len().unwrap());
        let mut r = Reader::new(Bytes::from(written.clone()));
        assert_eq!(ObservedAddress::read(&mut r).unwrap(), o);
        assert!(r.is_empty());
        written
    }

    #[test]
    fn both_families_round_trip_in_the_documented_layout() {
        let v4 = round_trip(ObservedAddress {
            sequence: 1,
            address: "192.0.2.7:4433".parse().unwrap(),
        });
        assert_eq!(v4, [0x01, 4, 192, 0, 2, 7, 0x11, 0x51]);
        let v6 = round_trip(ObservedAddress {
            sequence: 300,
            address: "[2001:db8::1]:65535".parse().unwrap(),
        });
        assert_eq!(v6.len(), 2 + 1 + 16 + 2);
        assert_eq!(&v6[..3], [0x41, 0x2c, 6]);
    }

    #[test]
    fn an_unknown_family_or_a_short_address_is_refused() {
        let mut r = Reader::new(Bytes::from_static(&[0x01, 5, 1, 2, 3, 4, 0, 1]));
        assert_eq!(
            ObservedAddress::read(&mut r),
            Err(DecodeError::Violation(Violation::InvalidAddressFamily(5)))
        );
        let mut r = Reader::new(Bytes::from_static(&[0x01, 6, 1, 2, 3, 4, 0, 1]));
        assert_eq!(
            ObservedAddress::read(&mut r),
            Err(DecodeError::Truncated(Field::Address))
        );
    }
}
