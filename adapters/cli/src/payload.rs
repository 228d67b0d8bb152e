//! The generated message `weir demo` and `weir sim` send: bytes from a seeded generator, so
//! a transfer that reorders, drops or changes a single byte cannot go unnoticed, and no file
//! is needed.

use bytes::Bytes;

/// `len` bytes from a xorshift64* generator started at `seed`.
pub fn generate(len: u64, seed: u64) -> Bytes {
    let len = usize::try_from(len).expect("a message that fits in memory");
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let take = (len - out.len()).min(word.len());
        out.extend_from_slice(&word[..take]);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        assert_eq!(generate(1001, 5), generate(1001, 5));
        assert_ne!(generate(1001, 5), generate(1001, 6));
        assert_eq!(generate(1001, 5).len(), 1001);
        assert_eq!(generate(0, 5).len(), 0);
    }
}
