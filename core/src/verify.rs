//! End-to-end verification of a stream against its sender's digest (spec/protocol.md §4.12, DIGEST, and §8, Verification).
//!
//! Its job: let the final receiver of a stream prove that the bytes it read are the bytes
//! the original sender wrote, whatever relays forwarded them on the way. The CRC trailer of
//! each datagram (§3.5) covers one hop only; a relay that mixes up offsets or streams would
//! re-wrap the wrong bytes in a correct trailer.
//!
//! Inputs: the [`Digest`] the sender attaches to a stream's opening frame (a SHA-256 of the
//! whole stream, FIPS 180-4), then the stream's bytes in order as the application reads
//! them. Output: at the end of the stream, whether they match
//! ([`Read::Finished`](crate::Read::Finished)) or not
//! ([`Read::VerificationFailed`](crate::Read::VerificationFailed)).
//!
//! SHA-256 rather than a tree hash: every platform our users run on has it, and fed
//! datagram-sized pieces (the order bytes are read in) the `sha2` crate, with the CPU's SHA
//! extensions, beats BLAKE3 by about two to one (`cargo bench -p weir-core --bench digest`;
//! BLAKE3 wins only over large contiguous buffers).

use sha2::Digest as _;

pub use crate::wire::Digest;

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = DigestHasher::new();
        h.update(data);
        h.finish()
    }
}

/// Computes a [`Digest`] over bytes given in pieces, for a sender that streams content it
/// does not hold whole (or a receiver checking bytes it reassembled itself).
#[derive(Clone, Debug, Default)]
pub struct DigestHasher(sha2::Sha256);

impl DigestHasher {
    /// A hasher over no bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of every byte added.
    pub fn finish(self) -> Digest {
        Digest::from_bytes(self.0.finalize().into())
    }
}

/// Receive side: the digest a stream announced and the hash of what was read so far.
#[derive(Clone, Debug)]
pub(crate) struct Verifier {
    expected: Digest,
    hasher: DigestHasher,
}

/// A stream's bytes did not hash to the digest its sender attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub(crate) expected: Digest,
    pub(crate) actual: Digest,
}

impl Verifier {
    pub(crate) fn new(expected: Digest) -> Self {
        Verifier {
            expected,
            hasher: DigestHasher::new(),
        }
    }

    /// The next bytes the application read, in stream order.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// The verdict, once every byte was read.
    pub(crate) fn finish(self) -> Result<(), Mismatch> {
        let actual = self.hasher.finish();
        if actual == self.expected {
            Ok(())
        } else {
            Err(Mismatch {
                expected: self.expected,
                actual,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn digest_is_sha256() {
        // FIPS 180-4 example "abc".
        assert_eq!(
            format!("{}", Digest::of(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pieces_hash_like_the_whole() {
        let data: alloc::vec::Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut v = Verifier::new(Digest::of(&data));
        data.chunks(1100).for_each(|c| v.update(c));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn one_changed_byte_is_a_mismatch() {
        let data = [1u8; 64];
        let mut v = Verifier::new(Digest::of(&data));
        let mut bad = data;
        bad[63] = 2;
        v.update(&bad);
        assert_eq!(
            v.finish(),
            Err(Mismatch {
                expected: Digest::of(&data),
                actual: Digest::of(&bad)
            })
        );
    }
}
