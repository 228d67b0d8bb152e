//! The Noise handshake inside weir's (spec/protocol.md §11.2), on the `snow` crate.
//!
//! Its job: authenticate both sides' static keys and agree on two fresh secrets (one per
//! direction) with forward secrecy, binding everything the HELLO negotiates in the clear
//! into the handshake so that a change on the way makes it fail.
//!
//! Inputs: the pattern (`Noise_XX_25519_ChaChaPoly_SHA256`, or `Noise_IK_…` when the
//! client knows the server's key), our [`Identity`], the prologue (the HELLO's fields,
//! [`NoiseHello::prologue`](crate::wire::NoiseHello::prologue)), a generator for the
//! ephemeral key, and the peer's messages. Outputs: our messages, the payloads the peer's
//! carry, the peer's [`PublicKey`], and the secrets.
//!
//! A message that fails to read (tampered, or for another key) leaves the state as it was
//! (`snow` restores it), so the genuine message can still be read after a forged one.

use alloc::boxed::Box;

use bytes::Bytes;
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroize;

use super::keys::{Entropy, Identity, PublicKey};
use super::stand_in::Primitives;
use super::x25519::X25519;
use crate::wire::{NoisePattern, MAX_NOISE_MESSAGE_LEN};

/// Why a Noise step failed: the message did not authenticate or was malformed, or (never in
/// practice) the state was asked for a step out of turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoiseFailed;

impl From<snow::Error> for NoiseFailed {
    fn from(_: snow::Error) -> Self {
        NoiseFailed
    }
}

/// The two secrets a finished handshake gives, by direction.
pub(crate) struct Secrets {
    pub(crate) send: [u8; 32],
    pub(crate) recv: [u8; 32],
}

impl Drop for Secrets {
    fn drop(&mut self) {
        self.send.zeroize();
        self.recv.zeroize();
    }
}

/// One side of a Noise handshake. snow's state is large (hash and key buffers inline), and
/// lives only until the handshake ends: on the heap, so a connection does not carry its
/// room for life.
pub(crate) struct NoiseHandshake {
    state: Box<snow::HandshakeState>,
}

impl core::fmt::Debug for NoiseHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NoiseHandshake")
            .field("initiator", &self.state.is_initiator())
            .field("finished", &self.state.is_handshake_finished())
            .finish()
    }
}

fn params(pattern: NoisePattern) -> Result<NoiseParams, NoiseFailed> {
    let name = match pattern {
        NoisePattern::Xx => "Noise_XX_25519_ChaChaPoly_SHA256",
        NoisePattern::Ik => "Noise_IK_25519_ChaChaPoly_SHA256",
    };
    Ok(name.parse()?)
}

/// snow's default primitives, with weir's generator for the ephemeral key (the core draws
/// no global randomness), and X25519 told the identity's public key (module `x25519`).
struct Resolver {
    entropy: Entropy,
    identity: Identity,
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(self.entropy.clone()))
    }

    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            snow::params::DHChoice::Curve25519 => Some(Box::new(X25519::knowing(
                *self.identity.secret_bytes(),
                *self.identity.public_key().as_bytes(),
            ))),
            _ => DefaultResolver.resolve_dh(choice),
        }
    }

    fn resolve_hash(&self, choice: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// The resolver for `identity`'s primitives (the fuzzing stand-in's, when it is of them).
fn resolver(identity: &Identity, entropy: Entropy) -> Box<dyn CryptoResolver + Send> {
    match identity.primitives() {
        Primitives::Real => Box::new(Resolver {
            entropy,
            identity: identity.clone(),
        }),
        #[cfg(feature = "fuzzing")]
        Primitives::FuzzingStandIn => Box::new(super::stand_in::Resolver(entropy)),
    }
}

impl NoiseHandshake {
    /// The client's side: `server` is the server's key, which IK needs and XX ignores. The
    /// primitives are `identity`'s.
    pub(crate) fn initiator(
        pattern: NoisePattern,
        identity: &Identity,
        server: Option<&PublicKey>,
        prologue: &[u8],
        entropy: Entropy,
    ) -> Result<Self, NoiseFailed> {
        let mut builder = snow::Builder::with_resolver(params(pattern)?, resolver(identity, entropy))
            .local_private_key(identity.secret_bytes())?
            .prologue(prologue)?;
        if let (NoisePattern::Ik, Some(key)) = (pattern, server) {
            builder = builder.remote_public_key(key.as_bytes())?;
        }
        Ok(NoiseHandshake {
            state: Box::new(builder.build_initiator()?),
        })
    }

    /// The server's side.
    pub(crate) fn responder(
        pattern: NoisePattern,
        identity: &Identity,
        prologue: &[u8],
        entropy: Entropy,
    ) -> Result<Self, NoiseFailed> {
        let state = snow::Builder::with_resolver(params(pattern)?, resolver(identity, entropy))
            .local_private_key(identity.secret_bytes())?
            .prologue(prologue)?
            .build_responder()?;
        Ok(NoiseHandshake {
            state: Box::new(state),
        })
    }

    /// Our next message, carrying `payload` (encrypted once the pattern allows).
    pub(crate) fn write(&mut self, payload: &[u8]) -> Result<Bytes, NoiseFailed> {
        let mut out = [0u8; MAX_NOISE_MESSAGE_LEN];
        let len = self.state.write_message(payload, &mut out)?;
        Ok(Bytes::copy_from_slice(out.get(..len).ok_or(NoiseFailed)?))
    }

    /// Reads the peer's next message; returns the payload it carried.
    pub(crate) fn read(&mut self, message: &[u8]) -> Result<Bytes, NoiseFailed> {
        let mut out = [0u8; MAX_NOISE_MESSAGE_LEN];
        let len = self.state.read_message(message, &mut out)?;
        Ok(Bytes::copy_from_slice(out.get(..len).ok_or(NoiseFailed)?))
    }

    /// The peer's static key, once a message has revealed it.
    pub(crate) fn remote_key(&self) -> Option<PublicKey> {
        let key = self.state.get_remote_static()?;
        let bytes: [u8; 32] = key.try_into().ok()?;
        Some(PublicKey::from_bytes(bytes))
    }

    /// The secrets, once the last message is written or read; `None` before.
    pub(crate) fn secrets(&mut self) -> Option<Secrets> {
        if !self.state.is_handshake_finished() {
            return None;
        }
        let (initiator, responder) = self.state.dangerously_get_raw_split();
        Some(if self.state.is_initiator() {
            Secrets {
                send: initiator,
                recv: responder,
            }
        } else {
            Secrets {
                send: responder,
                recv: initiator,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::Seed;

    fn identity(n: u64) -> Identity {
        Identity::from_seed(&Seed::from(n))
    }

    fn entropy(n: u64) -> Entropy {
        Entropy::new(&Seed::from(n), b"test")
    }

    #[test]
    fn xx_authenticates_both_keys_and_agrees_on_secrets() {
        let (client, server) = (identity(1), identity(2));
        let mut c = NoiseHandshake::initiator(NoisePattern::Xx, &client, None, b"p", entropy(1)).unwrap();
        let mut s = NoiseHandshake::responder(NoisePattern::Xx, &server, b"p", entropy(2)).unwrap();
        let m1 = c.write(b"").unwrap();
        assert_eq!(s.read(&m1).unwrap(), Bytes::new());
        let m2 = s.write(b"terms").unwrap();
        assert_eq!(c.read(&m2).unwrap(), Bytes::from_static(b"terms"));
        assert_eq!(c.remote_key(), Some(server.public_key()));
        let m3 = c.write(b"").unwrap();
        s.read(&m3).unwrap();
        assert_eq!(s.remote_key(), Some(client.public_key()));
        let (cs, ss) = (c.secrets().unwrap(), s.secrets().unwrap());
        assert_eq!(cs.send, ss.recv);
        assert_eq!(cs.recv, ss.send);
        assert_ne!(cs.send, cs.recv);
    }

    #[test]
    fn ik_needs_the_servers_key_and_a_different_prologue_fails() {
        let (client, server) = (identity(1), identity(2));
        let run = |server_key: PublicKey, prologue: &[u8]| {
            let mut c =
                NoiseHandshake::initiator(NoisePattern::Ik, &client, Some(&server_key), b"p", entropy(1))
                    .unwrap();
            let mut s = NoiseHandshake::responder(NoisePattern::Ik, &server, prologue, entropy(2)).unwrap();
            let m1 = c.write(b"").unwrap();
            s.read(&m1)?;
            assert_eq!(s.remote_key(), Some(client.public_key()));
            let m2 = s.write(b"").unwrap();
            c.read(&m2)?;
            assert_eq!(c.secrets().unwrap().send, s.secrets().unwrap().recv);
            Ok::<(), NoiseFailed>(())
        };
        assert_eq!(run(server.public_key(), b"p"), Ok(()));
        assert_eq!(run(identity(3).public_key(), b"p"), Err(NoiseFailed));
        assert_eq!(run(server.public_key(), b"q"), Err(NoiseFailed));
    }

    #[test]
    fn a_tampered_message_fails_and_the_genuine_one_still_reads() {
        let (client, server) = (identity(1), identity(2));
        let mut c = NoiseHandshake::initiator(NoisePattern::Xx, &client, None, b"p", entropy(1)).unwrap();
        let mut s = NoiseHandshake::responder(NoisePattern::Xx, &server, b"p", entropy(2)).unwrap();
        s.read(&c.write(b"").unwrap()).unwrap();
        let m2 = s.write(b"terms").unwrap();
        let mut bad = m2.to_vec();
        bad[40] ^= 1;
        assert_eq!(c.read(&bad), Err(NoiseFailed));
        assert_eq!(c.read(&m2).unwrap(), Bytes::from_static(b"terms"));
    }

    /// snow's default primitives with our generator: the resolver before module `x25519`.
    struct SnowsOwn(Entropy);

    impl CryptoResolver for SnowsOwn {
        fn resolve_rng(&self) -> Option<Box<dyn Random>> {
            Some(Box::new(self.0.clone()))
        }
        fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
            DefaultResolver.resolve_dh(choice)
        }
        fn resolve_hash(&self, choice: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
            DefaultResolver.resolve_hash(choice)
        }
        fn resolve_cipher(&self, choice: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
            DefaultResolver.resolve_cipher(choice)
        }
    }

    /// A handshake with X25519 told the identities' public keys writes the bytes, and agrees
    /// on the secrets, that snow's own X25519 does, for the same keys and entropy.
    #[test]
    fn the_handshake_is_byte_for_byte_snow_s_own() {
        let (client, server) = (identity(1), identity(2));
        let snows = |id: &Identity, n: u64, initiator: bool| {
            let b = snow::Builder::with_resolver(
                params(NoisePattern::Xx).unwrap(),
                Box::new(SnowsOwn(entropy(n))),
            )
            .local_private_key(id.secret_bytes())
            .unwrap()
            .prologue(b"p")
            .unwrap();
            NoiseHandshake {
                state: Box::new(if initiator {
                    b.build_initiator().unwrap()
                } else {
                    b.build_responder().unwrap()
                }),
            }
        };
        let run = |mut c: NoiseHandshake, mut s: NoiseHandshake| {
            let m1 = c.write(b"").unwrap();
            s.read(&m1).unwrap();
            let m2 = s.write(b"terms").unwrap();
            c.read(&m2).unwrap();
            let m3 = c.write(b"").unwrap();
            s.read(&m3).unwrap();
            let (cs, ss) = (c.secrets().unwrap(), s.secrets().unwrap());
            assert_eq!(cs.send, ss.recv);
            ([m1, m2, m3], cs.send, cs.recv)
        };
        let ours = run(
            NoiseHandshake::initiator(NoisePattern::Xx, &client, None, b"p", entropy(1)).unwrap(),
            NoiseHandshake::responder(NoisePattern::Xx, &server, b"p", entropy(2)).unwrap(),
        );
        let theirs = run(snows(&client, 1, true), snows(&server, 2, false));
        let mixed = run(
            NoiseHandshake::initiator(NoisePattern::Xx, &client, None, b"p", entropy(1)).unwrap(),
            snows(&server, 2, false),
        );
        assert_eq!(ours, theirs);
        assert_eq!(mixed, theirs);
    }

    #[test]
    fn the_same_entropy_gives_the_same_messages() {
        let write = || {
            NoiseHandshake::initiator(NoisePattern::Xx, &identity(1), None, b"p", entropy(5))
                .unwrap()
                .write(b"")
                .unwrap()
        };
        assert_eq!(write(), write());
    }
}
