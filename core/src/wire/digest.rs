//! The digest a stream's opening frame may carry (spec §4.12, DIGEST): a value of the wire
//! format. Computing one, and checking a stream against it, is module `verify`'s.

use core::fmt;

/// The SHA-256 digest of a stream's bytes, from offset 0 to its final size (spec §4.12,
/// DIGEST).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Bytes of a digest on the wire.
    pub const LEN: usize = 32;

    /// A digest from its bytes (one computed elsewhere, or read from the wire).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::Hex(&self.0).fmt(f)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}
