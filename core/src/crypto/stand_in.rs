//! Which cryptographic primitives an endpoint uses, and the fuzzing stand-in for the real
//! ones (feature `fuzzing` only; fuzz/README.md).
//!
//! Its job: let the fuzz targets that drive whole connections spend their time in the state
//! machines, not in curve arithmetic. The stand-in keeps the real primitives' shapes, so
//! every message, packet and state transition is the one a real endpoint makes:
//!
//! | real | stand-in | same |
//! | --- | --- | --- |
//! | X25519 public key of a secret | a 32-byte digest of the secret | 32 bytes; one key per secret |
//! | X25519 agreement | a digest of the two public keys, in order | both sides get the same 32 bytes; another key gives other bytes |
//! | SHA-256 (inside Noise's HMAC and HKDF) | a 32-byte digest over 64-byte blocks | lengths; any change of input changes the output |
//! | ChaCha20-Poly1305 in Noise, AES-256-GCM or ChaCha20-Poly1305 on packets | a keystream XOR and a 16-byte tag over the nonce, associated data and ciphertext | nonces, lengths; a changed byte, key, nonce or associated datum fails to open |
//!
//! It is no cipher: anyone who reads this file can forge. The digest chains each 8-byte word
//! through a bijective mix, so a change confined to one word always changes the result, and
//! other changes do except by a 2^-64 chance: a fuzzer's mutation fails to open as it
//! would against the real AEAD. Time and seeds come in as everywhere in the core; nothing
//! here draws randomness.
//!
//! [`Primitives`] exists in every build, but only a build with the `fuzzing` feature has the
//! stand-in variant, the config field that selects it and this module's primitives: a
//! normal build cannot select it (`core/tests/stand_in_absent.rs` checks the trace parser,
//! the one way in from outside the code).

/// The primitives of an endpoint's handshake and packet protection
/// (the field `primitives` of [`Config`](crate::Config), feature `fuzzing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Primitives {
    /// X25519, SHA-256, ChaCha20-Poly1305 and AES-256-GCM (spec §11): the only choice of a
    /// normal build.
    #[default]
    Real,
    /// The fuzzing stand-in (module docs): never secure, several times cheaper under a
    /// fuzzer's instrumentation. Only peers that use it too can talk to an endpoint that
    /// does.
    #[cfg(feature = "fuzzing")]
    FuzzingStandIn,
}

#[cfg(feature = "fuzzing")]
pub(crate) use imp::*;

#[cfg(feature = "fuzzing")]
mod imp {
    use alloc::boxed::Box;

    use snow::params::{CipherChoice, DHChoice, HashChoice};
    use snow::resolvers::CryptoResolver;
    use snow::types::{Cipher, Dh, Hash, Random};

    use crate::crypto::keys::Entropy;
    use crate::wire::TAG_LEN;

    /// A bijective 64-bit mix (SplitMix64's finaliser).
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A streaming digest: two chains of 64-bit words (module docs). `Default` starts it
    /// empty.
    #[derive(Clone, Default)]
    pub(crate) struct Digest {
        a: u64,
        b: u64,
        /// Bytes of the word being filled, little-endian.
        word: u64,
        len: u64,
    }

    impl Digest {
        /// A digest that starts from `label`, so that digests of different uses differ.
        pub(crate) fn labelled(label: &[u8]) -> Self {
            let mut d = Digest::default();
            d.input(label);
            d.finish_word();
            d
        }

        fn absorb(&mut self, w: u64) {
            self.a = mix(self.a ^ w);
            self.b = mix(self.b.wrapping_add(w).rotate_left(23) ^ self.a ^ 0x9e37_79b9_7f4a_7c15);
        }

        pub(crate) fn input(&mut self, data: &[u8]) {
            // Bytes until the word being filled is full, then whole words (the same words the
            // byte loop would assemble, eight times fewer steps), then the bytes left.
            let head = data.len().min(((8 - self.len % 8) % 8) as usize);
            let (head, rest) = data.split_at(head);
            self.input_bytes(head);
            let mut words = rest.chunks_exact(8);
            for word in &mut words {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                self.absorb(u64::from_le_bytes(w));
                self.len += 8;
            }
            self.input_bytes(words.remainder());
        }

        fn input_bytes(&mut self, data: &[u8]) {
            for &byte in data {
                let at = self.len % 8;
                self.word |= u64::from(byte) << (8 * at);
                self.len += 1;
                if at == 7 {
                    let w = core::mem::take(&mut self.word);
                    self.absorb(w);
                }
            }
        }

        /// Pads the word being filled with its length, so that inputs that differ only in
        /// where one part ends give different digests.
        fn finish_word(&mut self) {
            let w = core::mem::take(&mut self.word);
            self.absorb(w ^ self.len.rotate_left(56));
            self.len = self.len.next_multiple_of(8);
        }

        /// The digest's output: `out.len()` bytes (any length), in 8-byte words.
        pub(crate) fn result(mut self, out: &mut [u8]) {
            self.finish_word();
            for (i, chunk) in out.chunks_mut(8).enumerate() {
                let w = mix(self.a ^ mix(self.b ^ (i as u64 + 1)));
                for (to, from) in chunk.iter_mut().zip(w.to_le_bytes()) {
                    *to = from;
                }
            }
        }
    }

    /// The stand-in public key of a secret key.
    pub(crate) fn public_key(secret: &[u8; 32]) -> [u8; 32] {
        let mut d = Digest::labelled(b"weir stand-in public key");
        d.input(secret);
        let mut public = [0u8; 32];
        d.result(&mut public);
        public
    }

    /// The stand-in agreement between two public keys: the same either way round.
    fn agree(a: &[u8], b: &[u8]) -> [u8; 32] {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let mut d = Digest::labelled(b"weir stand-in agreement");
        d.input(low);
        d.input(high);
        let mut out = [0u8; 32];
        d.result(&mut out);
        out
    }

    /// XORs `data` with the keystream of `key` and `nonce`: word `i` is a mix of `i` and of
    /// a base folded once per call from the key's first two words and the nonce, so one
    /// mix a word.
    fn xor_keystream(key: &[u8; 32], nonce: u64, data: &mut [u8]) {
        let word = |at: usize| {
            key.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let base = mix(word(0) ^ word(8) ^ mix(nonce ^ 0x2545_f491_4f6c_dd1d));
        for (i, chunk) in data.chunks_mut(8).enumerate() {
            let ks = mix(base ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes();
            if let Ok(word) = <&mut [u8; 8]>::try_from(&mut *chunk) {
                *word = (u64::from_le_bytes(*word) ^ u64::from_le_bytes(ks)).to_le_bytes();
            } else {
                for (b, k) in chunk.iter_mut().zip(ks) {
                    *b ^= k;
                }
            }
        }
    }

    fn tag(key: &[u8; 32], nonce: u64, aad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        let mut d = Digest::labelled(b"weir stand-in tag");
        d.input(key);
        d.input(&nonce.to_le_bytes());
        d.input(&(aad.len() as u64).to_le_bytes());
        d.input(aad);
        d.input(ciphertext);
        let mut out = [0u8; TAG_LEN];
        d.result(&mut out);
        out
    }

    /// Seals `payload` in place under `key` and `nonce`; returns the tag.
    pub(crate) fn seal(key: &[u8; 32], nonce: u64, aad: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        xor_keystream(key, nonce, payload);
        tag(key, nonce, aad, payload)
    }

    /// Opens `payload` in place if `tag` authenticates it; leaves it as it was otherwise.
    pub(crate) fn open(key: &[u8; 32], nonce: u64, aad: &[u8], payload: &mut [u8], tag_given: &[u8]) -> bool {
        if !crate::crypto::same_bytes(&tag(key, nonce, aad, payload), tag_given) {
            return false;
        }
        xor_keystream(key, nonce, payload);
        true
    }

    /// snow's Noise over the stand-in primitives, whatever the pattern names; the ephemeral
    /// keys come from weir's generator as with the real ones.
    pub(crate) struct Resolver(pub(crate) Entropy);

    impl CryptoResolver for Resolver {
        fn resolve_rng(&self) -> Option<Box<dyn Random>> {
            Some(Box::new(self.0.clone()))
        }

        fn resolve_dh(&self, _: &DHChoice) -> Option<Box<dyn Dh>> {
            Some(Box::new(StandInDh::default()))
        }

        fn resolve_hash(&self, _: &HashChoice) -> Option<Box<dyn Hash>> {
            Some(Box::new(StandInHash(Digest::default())))
        }

        fn resolve_cipher(&self, _: &CipherChoice) -> Option<Box<dyn Cipher>> {
            Some(Box::new(StandInCipher([0; 32])))
        }
    }

    #[derive(Default)]
    struct StandInDh {
        secret: [u8; 32],
        public: [u8; 32],
    }

    impl Dh for StandInDh {
        fn name(&self) -> &'static str {
            "25519"
        }
        fn pub_len(&self) -> usize {
            32
        }
        fn priv_len(&self) -> usize {
            32
        }
        fn set(&mut self, secret: &[u8]) {
            self.secret = [0; 32];
            for (to, from) in self.secret.iter_mut().zip(secret) {
                *to = *from;
            }
            self.public = public_key(&self.secret);
        }
        fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
            let mut secret = [0u8; 32];
            rng.try_fill_bytes(&mut secret)?;
            self.set(&secret);
            Ok(())
        }
        fn pubkey(&self) -> &[u8] {
            &self.public
        }
        fn privkey(&self) -> &[u8] {
            &self.secret
        }
        fn dh(&self, public: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
            // snow hands the peer's key in a buffer sized for its largest curve.
            let public = public.get(..32).ok_or(snow::Error::Dh)?;
            let shared = agree(&self.public, public);
            for (to, from) in out.iter_mut().zip(shared) {
                *to = from;
            }
            Ok(())
        }
    }

    struct StandInHash(Digest);

    impl Hash for StandInHash {
        fn name(&self) -> &'static str {
            "SHA256"
        }
        fn block_len(&self) -> usize {
            64
        }
        fn hash_len(&self) -> usize {
            32
        }
        fn reset(&mut self) {
            self.0 = Digest::default();
        }
        fn input(&mut self, data: &[u8]) {
            self.0.input(data);
        }
        fn result(&mut self, out: &mut [u8]) {
            let n = out.len().min(32);
            if let Some(out) = out.get_mut(..n) {
                self.0.clone().result(out);
            }
        }
    }

    struct StandInCipher([u8; 32]);

    impl Cipher for StandInCipher {
        fn name(&self) -> &'static str {
            "ChaChaPoly"
        }
        fn set(&mut self, key: &[u8; 32]) {
            self.0 = *key;
        }
        #[expect(
            clippy::indexing_slicing,
            reason = "snow sizes `out` for the plaintext and its tag, and its trait has no error to return"
        )]
        fn encrypt(&self, nonce: u64, aad: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
            let len = plaintext.len();
            out[..len].copy_from_slice(plaintext);
            let t = seal(&self.0, nonce, aad, &mut out[..len]);
            out[len..len + TAG_LEN].copy_from_slice(&t);
            len + TAG_LEN
        }
        fn decrypt(
            &self,
            nonce: u64,
            aad: &[u8],
            ciphertext: &[u8],
            out: &mut [u8],
        ) -> Result<usize, snow::Error> {
            let len = ciphertext
                .len()
                .checked_sub(TAG_LEN)
                .ok_or(snow::Error::Decrypt)?;
            let (body, tag) = ciphertext.split_at_checked(len).ok_or(snow::Error::Decrypt)?;
            let out = out.get_mut(..len).ok_or(snow::Error::Decrypt)?;
            out.copy_from_slice(body);
            if open(&self.0, nonce, aad, out, tag) {
                Ok(len)
            } else {
                Err(snow::Error::Decrypt)
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn any_changed_byte_fails_to_open_and_the_genuine_packet_opens() {
            let key = [7u8; 32];
            let aad = *b"header bytes";
            let mut sealed = *b"a payload of some length, 41 bytes long.";
            let t = seal(&key, 9, &aad, &mut sealed);
            for i in 0..sealed.len() {
                let mut bad = sealed;
                bad[i] ^= 0x10;
                assert!(!open(&key, 9, &aad, &mut bad, &t), "payload byte {i}");
            }
            for i in 0..aad.len() {
                let mut bad = aad;
                bad[i] ^= 1;
                assert!(!open(&key, 9, &bad, &mut sealed.clone(), &t), "aad byte {i}");
            }
            let mut bad_tag = t;
            bad_tag[15] ^= 0x80;
            assert!(!open(&key, 9, &aad, &mut sealed.clone(), &bad_tag));
            assert!(
                !open(&key, 9, &aad, &mut sealed.clone(), &t[..TAG_LEN - 1]),
                "a short tag"
            );
            assert!(!open(&key, 10, &aad, &mut sealed.clone(), &t), "another nonce");
            assert!(!open(&[8; 32], 9, &aad, &mut sealed.clone(), &t), "another key");
            let mut opened = sealed;
            assert!(open(&key, 9, &aad, &mut opened, &t));
            assert_eq!(&opened, b"a payload of some length, 41 bytes long.");
        }

        #[test]
        fn agreement_is_the_same_both_ways_and_differs_by_key() {
            let (a, b, c) = (public_key(&[1; 32]), public_key(&[2; 32]), public_key(&[3; 32]));
            assert_eq!(agree(&a, &b), agree(&b, &a));
            assert_ne!(agree(&a, &b), agree(&a, &c));
            assert_ne!(a, b);
        }

        #[test]
        fn where_one_input_ends_changes_the_digest() {
            let digest = |parts: &[&[u8]]| {
                let mut d = Digest::labelled(b"x");
                for p in parts {
                    d.input(p);
                }
                let mut out = [0u8; 32];
                d.result(&mut out);
                out
            };
            assert_ne!(digest(&[b"ab"]), digest(&[b"ab", b"\0"]));
            assert_ne!(digest(&[b"12345678"]), digest(&[b"12345679"]));
            assert_eq!(digest(&[b"abc", b"def"]), digest(&[b"abcdef"]));
        }
    }
}
