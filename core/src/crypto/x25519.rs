//! X25519 for the Noise handshake (spec/protocol.md §11.2; RFC 7748 §5), as snow's `Dh`.
//!
//! Its job: the same function as snow's own X25519 (the secret clamped by the scalar
//! multiplication, the shared secret the u-coordinate of the product, no check on it: Noise
//! needs none), with one thing less to do. snow derives a static key's public half whenever
//! a handshake is built, but the static key is our [`Identity`](super::keys::Identity),
//! whose public half is known: a base-point multiplication per handshake and side, 6.5% of
//! a handshake's instructions and about a quarter (by the per-operation counts: 0.20 M for the base point's against 0.64 M for a Diffie-Hellman's) of the X25519 instructions a server spends
//! turning a garbage HELLO away (adapters/bench/rounds.md, "Issue 35, twenty-sixth round").
//!
//! Inputs: the identity's key pair, then snow's calls (`set` for the static key, `generate`
//! for the ephemeral one, `dh`). Outputs: the public half, the shared secrets. A key set
//! that is not the identity's, and every generated one, has its public half derived.

use curve25519_dalek::MontgomeryPoint;
use snow::types::{Dh, Random};
use zeroize::Zeroize;

/// Bytes of a key, public or secret, and of a shared secret.
const LEN: usize = 32;

/// One X25519 key of a handshake: the static one or the ephemeral one (snow makes one of
/// each from the same resolver, and tells them apart only by which it sets and which it
/// generates).
pub(super) struct X25519 {
    secret: [u8; LEN],
    public: [u8; LEN],
    /// Whether `secret` and `public` still hold the identity's pair, as made, for a `set` to
    /// that secret to keep: the pair lives in the key's own fields (one byte more than
    /// snow's X25519, where a pair beside them made each pending handshake 130 bytes
    /// larger). snow reads neither half of a key before it sets or generates it.
    told: bool,
}

impl X25519 {
    /// A key with nothing set yet, that takes `public` for `secret` if set to it.
    pub(super) fn knowing(secret: [u8; LEN], public: [u8; LEN]) -> Self {
        X25519 {
            secret,
            public,
            told: true,
        }
    }
}

impl Drop for X25519 {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// The public half of `secret` (the base point times the clamped secret; curve25519-dalek's
/// precomputed table).
fn public_of(secret: [u8; LEN]) -> [u8; LEN] {
    MontgomeryPoint::mul_base_clamped(secret).to_bytes()
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        LEN
    }

    fn priv_len(&self) -> usize {
        LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        let keep = self.told && super::same_bytes(privkey, &self.secret);
        self.told = false;
        if !keep {
            // (Any other length is not the identity's: copied as far as it goes, as snow's
            // own X25519 copies it, and derived from.)
            self.secret = [0u8; LEN];
            for (to, from) in self.secret.iter_mut().zip(privkey) {
                *to = *from;
            }
            self.public = public_of(self.secret);
        }
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        self.told = false;
        rng.try_fill_bytes(&mut self.secret)?;
        self.public = public_of(self.secret);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        // Lengths are snow's to get right; a wrong one is refused, not a panic.
        let (Some(theirs), Some(out)) = (pubkey.get(..LEN), out.get_mut(..LEN)) else {
            return Err(snow::Error::Dh);
        };
        let mut point = [0u8; LEN];
        point.copy_from_slice(theirs);
        out.copy_from_slice(&MontgomeryPoint(point).mul_clamped(self.secret).to_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{Entropy, Identity, Seed};
    use snow::params::DHChoice;
    use snow::resolvers::{CryptoResolver, DefaultResolver};

    fn snows() -> alloc::boxed::Box<dyn Dh> {
        DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap()
    }

    /// The identity's key takes the public half it was told, derived by no one: told a
    /// wrong one, it answers with that (which a derivation would not).
    #[test]
    fn a_key_set_to_the_identity_s_takes_the_known_public_half() {
        let id = Identity::from_seed(&Seed::from(7));
        let mut told = X25519::knowing(*id.secret_bytes(), *id.public_key().as_bytes());
        told.set(id.secret_bytes());
        assert_eq!(told.pubkey(), *id.public_key().as_bytes());
        assert!(!told.told);
        let wrong = [9u8; LEN];
        let mut lied_to = X25519::knowing(*id.secret_bytes(), wrong);
        lied_to.set(id.secret_bytes());
        assert_eq!(lied_to.pubkey(), wrong);
        // Another key is derived, as snow derives it.
        let other = Identity::from_seed(&Seed::from(8));
        let mut k = X25519::knowing(*id.secret_bytes(), wrong);
        k.set(other.secret_bytes());
        assert_eq!(k.pubkey(), *other.public_key().as_bytes());
        assert_eq!(k.privkey(), other.secret_bytes());
    }

    /// Generated keys and shared secrets are snow's own X25519's, bit for bit.
    #[test]
    fn it_computes_what_snow_s_x25519_computes() {
        let id = Identity::from_seed(&Seed::from(1));
        let mut ours = X25519::knowing(*id.secret_bytes(), *id.public_key().as_bytes());
        let mut theirs = snows();
        ours.generate(&mut Entropy::new(&Seed::from(2), b"x")).unwrap();
        theirs.generate(&mut Entropy::new(&Seed::from(2), b"x")).unwrap();
        assert_eq!(ours.privkey(), theirs.privkey());
        assert_eq!(ours.pubkey(), theirs.pubkey());
        assert!(!ours.told);
        let peer = *Identity::from_seed(&Seed::from(3)).public_key().as_bytes();
        let (mut a, mut b) = ([0u8; LEN], [0u8; LEN]);
        ours.dh(&peer, &mut a).unwrap();
        theirs.dh(&peer, &mut b).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, [0u8; LEN]);
        // A short key or room is refused.
        assert_eq!(ours.dh(&peer[..31], &mut a), Err(snow::Error::Dh));
        assert_eq!(ours.dh(&peer, &mut a[..31]), Err(snow::Error::Dh));
    }
}
