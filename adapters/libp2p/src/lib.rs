//! # weir-libp2p
//!
//! weir as a [rust-libp2p](https://docs.rs/libp2p) transport and stream muxer: a swarm that
//! adds [`Transport`] dials and listens on UDP through weir endpoints (on tokio), and
//! each connection it makes is authenticated, encrypted and multiplexed by weir, so
//! libp2p's security and muxer upgrades are not needed. The binding is spec/protocol.md
//! §8, libp2p binding:
//!
//! - **Addresses** are `/ip4/<a>/udp/<port>` and `/ip6/<a>/udp/<port>`, optionally with
//!   `/p2p/<peer id>` (weir has no code in the multiaddr table; QUIC's addresses end in
//!   `/quic-v1` and are not weir's).
//! - **Identity**: the weir identity (the X25519 static key of the weir handshake) is
//!   derived from the libp2p keypair, so one key is the node's identity in both. After the
//!   weir handshake each side sends its libp2p public key and a signature, by that key,
//!   over its weir static key; the peer id is the one of a key that signed the weir key
//!   the handshake authenticated. A dial to `/p2p/<peer id>` fails with
//!   [`IdentityError::WrongPeer`] if someone else answers.
//! - **Substreams**: weir streams go one way, libp2p substreams both ways. A substream is
//!   two weir streams: the opener's, labelled `libp2p/o/<n>`, and the answer, labelled
//!   `libp2p/a/<n>`, opened by the other side as soon as it accepts.
//!
//! ```no_run
//! use libp2p::{ping, SwarmBuilder};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut swarm = SwarmBuilder::with_new_identity()
//!     .with_tokio()
//!     .with_other_transport(|key| Ok(weir_libp2p::Transport::new(key, weir_libp2p::Config::default())?))?
//!     .with_behaviour(|_| ping::Behaviour::default())?
//!     .build();
//! swarm.listen_on("/ip4/127.0.0.1/udp/0".parse()?)?;
//! # Ok(())
//! # }
//! ```
//!
//! A listener bound to `0.0.0.0` or `::` reports its interfaces' addresses as they come and
//! go. When weir moves a connection to another direct path (the peer's NAT rebound, a hole
//! punch succeeded), the muxer reports the peer's new address as libp2p's `AddressChange`.
//!
//! What it does not do (yet): hole punching for libp2p's DCUtR (a dial as listener is a
//! plain dial; weir's own hole punching, through a weir relay, is not reachable from
//! libp2p), or libp2p's circuit relays.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod addr;
mod identity;
mod muxer;
mod substream;
mod transport;

use std::time::Duration;

use libp2p_identity::PeerId;

pub use muxer::Muxer;

/// The weir public key of the node whose libp2p keypair is `keypair`: the key its weir
/// endpoints hold, which peers see in `Connection::peer_key` (plain weir peers can dial it
/// with `connect_to`). Fails with [`Error::UnsupportedKey`] as [`Transport::new`] does.
pub fn weir_key(keypair: &libp2p_identity::Keypair) -> Result<weir_tokio::PublicKey, Error> {
    Ok(identity::weir_identity(keypair)?.public_key())
}
pub use substream::Substream;
pub use transport::Transport;

/// How long a new connection's peer has, after the weir handshake, to prove its libp2p
/// identity: 10 s.
pub const DEFAULT_IDENTITY_TIMEOUT: Duration = Duration::from_secs(10);

/// The application close code of a connection whose peer's libp2p identity did not check
/// (ASCII `l2id`); the peer sees it in its `Error::Closed`.
pub const IDENTITY_REFUSED: u64 = 0x6c32_6964;

/// The reset code of a substream dropped before it was closed, and the stop code of a weir
/// stream that is not part of the binding (ASCII `l2rs`).
pub const SUBSTREAM_RESET: u64 = 0x6c32_7273;

/// The transport's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The weir endpoints' configuration. Its `identity` is replaced by the one derived from
    /// the libp2p keypair.
    pub weir: weir_tokio::Config,
    /// See [`DEFAULT_IDENTITY_TIMEOUT`].
    pub identity_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            weir: weir_tokio::Config::default(),
            identity_timeout: DEFAULT_IDENTITY_TIMEOUT,
        }
    }
}

/// What the transport and its connections fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// weir failed: binding, the handshake, the connection's end, a stream's reset.
    #[error(transparent)]
    Weir(#[from] weir_tokio::Error),
    /// The peer's libp2p identity did not check; the connection was closed with
    /// [`IDENTITY_REFUSED`].
    #[error("the peer's libp2p identity: {0}")]
    Identity(#[from] IdentityError),
    /// The peer did not prove its libp2p identity within [`Config::identity_timeout`] (a weir
    /// peer that does not speak libp2p, say).
    #[error("the peer did not prove its libp2p identity within {0:?}")]
    IdentityTimedOut(Duration),
    /// The libp2p keypair cannot derive a secret (only key types with a secret libp2p can
    /// export can: ed25519, secp256k1, ECDSA).
    #[error("this libp2p keypair cannot derive weir's identity")]
    UnsupportedKey,
}

/// Why the peer's libp2p identity did not check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The weir connection carries no authenticated key (an unprotected version 1
    /// connection), so there is nothing to bind a libp2p identity to.
    #[error("the connection is not authenticated")]
    Unauthenticated,
    /// The peer opened many streams and none was its identity.
    #[error("the peer opened streams but sent no identity")]
    Missing,
    /// The identity message could not be read: truncated, too long, or a public key
    /// libp2p cannot decode.
    #[error("malformed identity message")]
    Malformed,
    /// The signature is not the key's over the weir key the handshake authenticated.
    #[error("the signature does not bind the key to the weir connection")]
    BadSignature,
    /// The peer is not the one the dialed address named.
    #[error("expected peer {}, found {}", .0.expected, .0.found)]
    WrongPeer(Box<WrongPeer>),
}

/// A dial that reached a peer other than the one its address named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrongPeer {
    /// The peer id in the dialed address.
    pub expected: PeerId,
    /// The peer id the connection proved.
    pub found: PeerId,
}
