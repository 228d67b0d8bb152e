//! Authenticated encryption and peer identity (spec/protocol.md §11): wire version 2.
//!
//! | part | module | spec |
//! | --- | --- | --- |
//! | identities, seeds, the secret generator | `keys` | §11.1 |
//! | the Noise handshake (XX, IK) | `noise` | §11.2 |
//! | sealing and opening data packets, key update | `protection` | §11.3-§11.5 |
//!
//! The core stays `no_std` + `alloc` and deterministic: keys come from the config, the
//! ephemeral keys from the endpoint's seed.

// Wired into connections by the next commit (wire version 2); until then only tests use it.
#![allow(dead_code)]

pub(crate) mod keys;
pub(crate) mod noise;
pub(crate) mod protection;
