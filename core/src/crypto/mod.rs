//! Authenticated encryption and peer identity (spec/protocol.md §11): wire version 2.
//!
//! | part | module | spec |
//! | --- | --- | --- |
//! | identities, seeds, the secret generator | `keys` | §11.1 |
//! | the Noise handshake (XX, IK) | `noise` | §11.2 |
//! | X25519 for it, told the identity's public key | `x25519` | §11.2, RFC 7748 §5 |
//! | sealing and opening data packets, key update | `protection` | §11.3-§11.5 |
//! | the primitives used, and the fuzzing stand-in (feature `fuzzing`) | `stand_in` | fuzz/README.md |
//!
//! The core stays `no_std` + `alloc` and deterministic: keys come from the config, the
//! ephemeral keys from the endpoint's seed. Public here: sealing and opening a packet under a
//! given key, for test vectors and tools (connections manage their own keys); the identity
//! types are at the crate root.

// Handshake messages and key texts come from peers and users: outside tests, no index or
// slice that is not checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub(crate) mod keys;
pub(crate) mod noise;
pub(crate) mod protection;
pub(crate) mod stand_in;
mod x25519;

pub use protection::{next_key, open_with_key, reseal_with_key, seal_with_key};

/// Whether `a` and `b` are the same bytes, decided as the real AEADs decide a tag: every
/// byte's difference folded into one value, then that value tested. Its time does not depend
/// on where they differ, and a fuzzer's comparison hooks (libFuzzer's trace-cmp, which copy
/// a slice comparison's operands into its dictionary) see only the folded value: they had
/// learned whole stand-in tags that way (fuzz/README.md, crashes found).
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
#[cfg(feature = "fuzzing")]
pub use stand_in::Primitives;
