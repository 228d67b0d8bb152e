//! Identities, seeds and the endpoint's secret randomness (spec/protocol.md §11.1).
//!
//! An endpoint's identity is an X25519 static key pair: peers know it by its
//! [`PublicKey`]. Every secret the endpoint makes itself (Noise ephemeral keys, the RETRY
//! token keys) is drawn from its [`Seed`] through an HMAC-SHA-256 generator (`Entropy`),
//! so the same seed gives the same run, byte for byte, and nobody without the seed can
//! predict a key. The seed therefore has to be secret and unpredictable outside tests:
//! 32 bytes from the operating system's generator ([`Seed::from_bytes`]).

use core::fmt;
use core::str::FromStr;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize;

use super::stand_in::Primitives;
use crate::wire::Hex;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// An endpoint's public key: how peers know it (its identity, spec §11.1). 32 bytes of an
/// X25519 public key; shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Bytes of a public key.
    pub const LEN: usize = 32;

    /// The key with these bytes (any 32 bytes are accepted; a key no one holds the secret
    /// of simply never completes a handshake).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// Why a text is not a key or seed: it must be exactly 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits")]
pub struct ParseKeyError;

pub(crate) fn parse_hex32(s: &str) -> Result<[u8; 32], ParseKeyError> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return Err(ParseKeyError);
    }
    let digit = |c: u8| (c as char).to_digit(16).ok_or(ParseKeyError);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let &[high, low] = pair else {
            return Err(ParseKeyError);
        };
        *byte = (digit(high)? << 4 | digit(low)?) as u8;
    }
    Ok(out)
}

impl FromStr for PublicKey {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, ParseKeyError> {
        parse_hex32(s).map(PublicKey)
    }
}

/// An endpoint's static key pair: the secret it proves its identity with, and the
/// [`PublicKey`] peers know it by. `Debug` shows the public key only.
#[derive(Clone)]
pub struct Identity {
    secret: [u8; 32],
    public: PublicKey,
    /// The primitives its public key is of, and so the ones its handshakes use.
    #[cfg(feature = "fuzzing")]
    primitives: Primitives,
}

impl Identity {
    /// The token of the stateless reset for our connection id `cid` (spec §6.1): the first
    /// 16 bytes of HMAC-SHA-256(HMAC-SHA-256(secret key, "weir stateless reset"), cid). It
    /// depends on the identity and the id alone, so an endpoint that lost a connection's
    /// state (it restarted with the same identity) still knows it, and no one else can.
    pub(crate) fn reset_token(&self, cid: &[u8]) -> [u8; 16] {
        let mut key = hmac(&self.secret, b"weir stateless reset");
        let full = hmac(&key, cid);
        key.zeroize();
        let mut token = [0u8; 16];
        token.copy_from_slice(&full[..16]);
        token
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Identity {
    /// The identity whose X25519 secret key is `secret` (clamped as X25519 requires; any
    /// 32 bytes will do, and should come from a secure random generator).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Identity::under(secret, Primitives::Real)
    }

    /// The identity of `secret` under `primitives`: with the fuzzing stand-in, its public
    /// key is the stand-in's (crypto::stand_in).
    pub(crate) fn under(secret: [u8; 32], primitives: Primitives) -> Self {
        let public = match primitives {
            Primitives::Real => curve25519_dalek::MontgomeryPoint::mul_base_clamped(secret).to_bytes(),
            #[cfg(feature = "fuzzing")]
            Primitives::FuzzingStandIn => super::stand_in::public_key(&secret),
        };
        Identity {
            secret,
            public: PublicKey(public),
            #[cfg(feature = "fuzzing")]
            primitives,
        }
    }

    /// This identity's secret under `primitives` (itself under its own).
    pub(crate) fn to_primitives(&self, primitives: Primitives) -> Self {
        if self.primitives() == primitives {
            self.clone()
        } else {
            Identity::under(self.secret, primitives)
        }
    }

    /// The identity `seed` derives under `primitives` (as [`from_seed`](Self::from_seed)).
    pub(crate) fn from_seed_under(seed: &Seed, primitives: Primitives) -> Self {
        let mut secret = [0u8; 32];
        Entropy::new(seed, b"weir identity").fill(&mut secret);
        Identity::under(secret, primitives)
    }

    /// The primitives its public key is of.
    pub(crate) fn primitives(&self) -> Primitives {
        #[cfg(feature = "fuzzing")]
        return self.primitives;
        #[cfg(not(feature = "fuzzing"))]
        Primitives::Real
    }

    /// An identity derived from `seed` (the same seed gives the same identity): for tests,
    /// and for endpoints that need no identity of their own beyond one run.
    pub fn from_seed(seed: &Seed) -> Self {
        Identity::from_seed_under(seed, Primitives::Real)
    }

    /// The public key peers know this identity by.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The secret key, to store the identity (keep it as secret as the seed).
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

impl Eq for Identity {}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public)
    }
}

/// Where all of an endpoint's randomness comes from: 32 bytes. The same seed, config and
/// inputs give byte-identical outputs. Outside tests and simulations the seed must be
/// secret and unpredictable: take 32 bytes from the operating system's generator. Shown
/// and parsed as 64 hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Seed([u8; 32]);

impl Drop for Seed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Seed {
    /// The seed with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Seed(bytes)
    }

    /// The seed's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A seed from a number, for tests and simulations (64 bits are too few for secrets an
/// attacker may try to guess): SHA-256 of `"weir seed"` and the number's 8 bytes
/// (little-endian).
impl From<u64> for Seed {
    fn from(n: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"weir seed");
        h.update(n.to_le_bytes());
        Seed(h.finalize().into())
    }
}

impl From<[u8; 32]> for Seed {
    fn from(bytes: [u8; 32]) -> Self {
        Seed(bytes)
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

/// Does not show the bytes: a seed is a secret.
impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl FromStr for Seed {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, ParseKeyError> {
        parse_hex32(s).map(Seed)
    }
}

/// A deterministic generator of secret bytes (spec §11.1), with key erasure: each call's
/// blocks are HMAC-SHA-256(key, 1 ‖ `i` as 8 bytes big-endian) for i = 0, 1, ..., and then
/// the key becomes HMAC-SHA-256(key, 2), the old one forgotten. So what it gave out before
/// cannot be computed from its state now: whoever later reads an endpoint's memory does not
/// learn the ephemeral keys of its past handshakes (forward secrecy). Fresh bytes mixed in
/// ([`mix`](Self::mix)) make what follows unpredictable even to whoever knows the seed.
#[derive(Clone)]
pub(crate) struct Entropy {
    key: [u8; 32],
}

impl Drop for Entropy {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl Entropy {
    /// A generator whose key is HMAC-SHA-256(seed, label): each label gives an independent
    /// stream.
    pub(crate) fn new(seed: &Seed, label: &[u8]) -> Self {
        Entropy {
            key: hmac(&seed.0, label),
        }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        // The key's HMAC state once for the whole draw, each block and the next key from a
        // copy of it: an HMAC made afresh hashes the key's two pads again, two of the four
        // compressions a block and the key's change cost (the draw's output is the same).
        let keyed = keyed_mac(&self.key);
        for (i, chunk) in out.chunks_mut(32).enumerate() {
            let mut input = [1u8; 9];
            input[1..].copy_from_slice(&(i as u64).to_be_bytes());
            let mut mac = keyed.clone();
            mac.update(&input);
            let block: [u8; 32] = mac.finalize().into_bytes().into();
            for (to, from) in chunk.iter_mut().zip(block) {
                *to = from;
            }
        }
        let mut mac = keyed;
        mac.update(&[2]);
        self.key = mac.finalize().into_bytes().into();
    }

    /// The next 8 bytes as a number.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        u64::from_be_bytes(bytes)
    }

    /// Mixes `fresh` into the key: the key becomes HMAC-SHA-256(key, 3 ‖ fresh).
    pub(crate) fn mix(&mut self, fresh: &[u8]) {
        let mut mac = keyed_mac(&self.key);
        mac.update(&[3]);
        mac.update(fresh);
        self.key = mac.finalize().into_bytes().into();
    }

    /// A generator of its own, keyed by this one's next 32 bytes (one per connection, so that
    /// the order connections draw in changes nothing another one gets).
    pub(crate) fn child(&mut self) -> Entropy {
        let mut key = [0u8; 32];
        self.fill(&mut key);
        Entropy { key }
    }
}

/// The `index`th number of the stream keyed by `seed` and `label`: the first 8 bytes
/// (big-endian) of HMAC-SHA-256(HMAC-SHA-256(Seed::from(seed), label), `index` as 4 bytes
/// big-endian). For numbers drawn rarely whose state must stay small: a connection's
/// left-out packet numbers.
pub(crate) fn keyed_u64(seed: u64, label: &[u8], index: u32) -> u64 {
    let key = hmac(&Seed::from(seed).0, label);
    let block = hmac(&key, &index.to_be_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&block[..8]);
    u64::from_be_bytes(bytes)
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(..)")
    }
}

impl snow::types::Random for Entropy {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.fill(dest);
        Ok(())
    }
}

/// A MAC keyed with `key` (zero-padded to SHA-256's block, as HMAC pads any short key).
pub(crate) fn keyed_mac(key: &[u8; 32]) -> HmacSha256 {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <HmacSha256 as KeyInit>::new(&block.into())
}

/// HMAC-SHA-256 (RFC 2104) under a 32-byte key.
pub(crate) fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn the_generator_forgets_what_it_gave_and_fresh_bytes_change_what_follows() {
        let mut e = Entropy::new(&Seed::from(1), b"test");
        let before = e.key;
        let mut out = [0u8; 40];
        e.fill(&mut out);
        // Its blocks came from the old key, which is gone: the state now holds only a
        // one-way function of it.
        assert_eq!(out[..32], hmac(&before, &[1, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(e.key, hmac(&before, &[2]));
        // Same seed, same stream; fresh bytes mixed in, another one.
        let (mut a, mut b) = (
            Entropy::new(&Seed::from(1), b"test"),
            Entropy::new(&Seed::from(1), b"test"),
        );
        assert_eq!(a.next_u64(), b.next_u64());
        b.mix(&[9; 32]);
        assert_ne!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn the_public_key_is_x25519_of_the_secret() {
        // RFC 7748 §6.1: Alice's private and public keys.
        let secret = parse_hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").unwrap();
        let id = Identity::from_secret(secret);
        assert_eq!(
            id.public_key().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(
            alloc::format!("{id:?}"),
            alloc::format!("Identity({})", id.public_key())
        );
    }

    #[test]
    fn keys_and_seeds_round_trip_through_hex() {
        let key = Identity::from_seed(&Seed::from(3)).public_key();
        assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        let seed = Seed::from(9);
        assert_eq!(seed.to_string().parse::<Seed>(), Ok(seed.clone()));
        assert_eq!("00".parse::<PublicKey>(), Err(ParseKeyError));
        assert_eq!("zz".repeat(32).parse::<PublicKey>(), Err(ParseKeyError));
        // 64 bytes, but not 64 digits: a two-byte character among them.
        assert_eq!(
            alloc::format!("é{}", "0".repeat(62)).parse::<PublicKey>(),
            Err(ParseKeyError)
        );
        assert_eq!(alloc::format!("{seed:?}"), "Seed(..)");
    }

    #[test]
    fn entropy_is_deterministic_per_seed_and_label() {
        let draw = |seed: u64, label: &[u8]| {
            let mut out = [0u8; 40];
            Entropy::new(&Seed::from(seed), label).fill(&mut out);
            out
        };
        assert_eq!(draw(1, b"a"), draw(1, b"a"));
        assert_ne!(draw(1, b"a"), draw(2, b"a"));
        assert_ne!(draw(1, b"a"), draw(1, b"b"));
        // Blocks differ from each other (the counter moves).
        let out = draw(1, b"a");
        assert_ne!(out[..8], out[32..]);
        let mut parent = Entropy::new(&Seed::from(1), b"a");
        let (mut c1, mut c2) = (parent.child(), parent.child());
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        c1.fill(&mut a);
        c2.fill(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac(&key, b"what do ya want for nothing?");
        assert_eq!(
            PublicKey(mac).to_string(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
