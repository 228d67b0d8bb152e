//! The handshake (spec/protocol.md §4.13-§4.16, §7, §11.2): version and capability
//! negotiation, the Noise handshake of version 2, HELLO retransmission with backoff, and
//! the typed ways it can fail.
//!
//! Client: sends HELLO (version 1) or NOISE_HELLO (version 2), padded to 1200 bytes, at
//! once, again after `initial_rtt × 3`, then doubling up to `max_probe_interval` (module
//! `backoff`), until ACCEPT / NOISE_ACCEPT, REJECT, VERSION_REJECT or the handshake
//! timeout. RETRY makes it send the HELLO again at once
//! with the token (one RETRY per attempt; in version 2 with a fresh Noise message, since the
//! token is part of the prologue). A VERSION_REJECT from a server that speaks only version
//! 1 makes a client whose range includes 1 start over in version 1. Server: answers each
//! copy of a HELLO with the same answer (idempotent), and counts the connection as
//! established when the client's first data packet (or, XX, its NOISE_FINISH) arrives.
//!
//! Files: this one holds the typed outcomes and the version and capability negotiation;
//! `client` the client's attempt (its table of states and the HELLO it resends), `server`
//! the server's Noise step on a NOISE_HELLO, `backoff` when each handshake message goes
//! again, `sample` the handshake's round-trip sample.

use crate::config::Config;
use crate::crypto::keys::PublicKey;
use crate::wire::{
    Accept, Capabilities, Cipher, Hello, Reject, RejectReason, TransportParams, VersionRange, VERSION_1,
    VERSION_2,
};

mod backoff;
mod client;
mod sample;
mod server;

pub(crate) use backoff::Backoff;
pub(crate) use client::{Client, NotOpened};
pub(crate) use sample::SentOnce;
pub(crate) use server::{accept_noise, ServerNext, ServerNoise};

/// Why a connection attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// No answer within the handshake timeout.
    #[error("handshake timed out")]
    TimedOut,
    /// The relay asked for a circuit to the peer refused it (spec §12.2), or the connection
    /// to the relay ended first (`PeerGone`).
    #[error("the relay opened no circuit: {0}")]
    Relay(crate::RelayRefusal),
    /// The server refused with this reason; `versions` is the server's range.
    #[error("server rejected the connection: {reason} (server speaks versions {versions})")]
    Rejected {
        /// The server's reason.
        reason: RejectReason,
        /// The versions the server speaks.
        versions: VersionRange,
    },
    /// The server cannot read our HELLO's version; it speaks `server` (its first range).
    #[error("no common version: we speak {ours}, the server {server}")]
    NoCommonVersion {
        /// Our range.
        ours: VersionRange,
        /// The server's (first) range.
        server: VersionRange,
    },
    /// The server's ACCEPT chose a version, capabilities or a cipher we did not offer.
    #[error("server's ACCEPT is not one we offered (version {version}, capabilities {capabilities})")]
    InvalidAccept {
        /// Version the server chose.
        version: u16,
        /// Capabilities the server chose.
        capabilities: Capabilities,
    },
    /// The server could not open our IK handshake with its key: it is not the server whose
    /// key we named ([`Endpoint::connect_to`](crate::Endpoint::connect_to)).
    #[error("the server does not hold the key {expected}")]
    ServerKeyMismatch {
        /// The key we named.
        expected: PublicKey,
    },
    /// Our [`PeerPolicy`](crate::PeerPolicy) refused the server's identity.
    #[error("the server's identity {peer} is refused by our peer policy")]
    PeerRefused {
        /// The server's public key.
        peer: PublicKey,
    },
    /// The server answered that it speaks only plaintext version 1, and this connection must
    /// prove the server's identity (a key named with
    /// [`Endpoint::connect_to`](crate::Endpoint::connect_to), or a peer policy other than
    /// `Any`), which version 1 cannot: the answer may be forged, and falling back would
    /// hand the connection to whoever forged it (spec §11.7).
    #[error("the server offered only plaintext version {server}, which cannot prove its identity")]
    DowngradeRefused {
        /// The server's (first) range.
        server: VersionRange,
    },
    /// Answers came but none authenticated (a NOISE_ACCEPT that did not open): something on
    /// the path altered the handshake (a HELLO field, the version, the key), or forged
    /// answers, until the handshake timed out.
    #[error("the server's answers failed authentication ({failures} of them)")]
    AuthenticationFailed {
        /// How many answers failed.
        failures: u32,
    },
}

/// What both sides agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The wire version in use.
    pub version: u16,
    /// Capabilities both sides offered: what the connection may use.
    pub capabilities: Capabilities,
    /// The cipher data packets are sealed with; `None` on an unprotected (version 1)
    /// connection.
    pub cipher: Option<Cipher>,
}

impl Negotiated {
    /// Whether the peer delivers stream bytes incrementally (Freenet's streaming mode).
    pub fn streaming(&self) -> bool {
        self.capabilities.contains(Capabilities::STREAMING)
    }

    /// Whether the peer can relay streams without reassembly.
    pub fn piping(&self) -> bool {
        self.capabilities.contains(Capabilities::PIPING)
    }

    /// Whether each side tells the other the address it sees it at (OBSERVED_ADDRESS,
    /// spec §4.18): negotiated, and on an authenticated (version 2) connection.
    pub fn address_discovery(&self) -> bool {
        self.version == VERSION_2 && self.capabilities.contains(Capabilities::ADDRESS_DISCOVERY)
    }

    /// Whether the relay exchange (spec §12) may run on this connection: negotiated, and on
    /// an authenticated (version 2) connection.
    pub fn relay(&self) -> bool {
        self.version == VERSION_2 && self.capabilities.contains(Capabilities::RELAY)
    }
}

/// The server's decision on a HELLO of wire version `version` (the version of the datagram
/// that carried it, which is the only one it can get): an ACCEPT to send, or a REJECT.
pub(crate) fn negotiate(
    config: &Config,
    hello: &Hello,
    version: u16,
    reset: Option<[u8; 16]>,
) -> Result<Accept, Reject> {
    if !config.versions.contains(version) || !hello.versions.contains(version) {
        return Err(Reject {
            reason: RejectReason::NO_COMMON_VERSION,
            versions: config.versions,
        });
    }
    if version == VERSION_1 && config.peer_policy.checks() {
        // A peer policy judges identities, and a version 1 client proves none (spec §11.7).
        return Err(Reject {
            reason: RejectReason::REFUSED,
            versions: config.versions,
        });
    }
    let mut capabilities = config.capabilities.intersection(hello.capabilities);
    if version == VERSION_1 {
        capabilities = capabilities.without(Capabilities::AUTHENTICATED_ONLY);
    }
    Ok(Accept {
        version,
        capabilities,
        params: TransportParams {
            stateless_reset_token: reset,
            ..config.transport_params()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::client::{Attempt, AttemptStep, ATTEMPT_TRANSITIONS};
    use super::*;
    use crate::crypto::keys::{Entropy, Identity};
    use crate::time::Instant;
    use crate::wire::{Accept, ConnectionId, Frame};
    use bytes::Bytes;

    #[test]
    fn every_row_of_the_attempt_table_lands_on_its_target() {
        for &(from, step, to) in ATTEMPT_TRANSITIONS {
            assert_eq!(from.after(step), Some(to), "{from:?} --{step:?}-->");
        }
        // One RETRY per attempt; version 1 has nothing to fall back to.
        assert_eq!(Attempt::V2Retried.after(AttemptStep::Retry), None);
        assert_eq!(Attempt::V1.after(AttemptStep::FallBack), None);
        assert_eq!(Attempt::V1Retried.version(), VERSION_1);
    }

    #[test]
    fn the_spec_shows_the_attempt_table() {
        let section = crate::transitions::table_section(ATTEMPT_TRANSITIONS, "V2", &[]);
        crate::transitions::assert_spec_shows("client attempt", &section);
    }
    use crate::crypto::keys::Seed;

    fn hello(min: u16, max: u16, caps: Capabilities) -> Hello {
        Hello {
            versions: VersionRange::new(min, max).unwrap(),
            capabilities: caps,
            token: Bytes::new(),
            params: Default::default(),
        }
    }

    fn client(config: &Config, server: Option<PublicKey>) -> Client {
        let seed = Seed::from(1);
        Client::new(
            config,
            Instant::ZERO,
            ConnectionId::from_u64(9),
            &Identity::from_seed(&seed),
            Entropy::new(&seed, b"test"),
            server,
        )
    }

    #[test]
    fn a_hello_negotiates_its_own_version_and_intersects_capabilities() {
        let config = Config {
            versions: VersionRange::new(1, 2).unwrap(),
            ..Config::default()
        };
        let a = negotiate(&config, &hello(1, 5, Capabilities::PIPING), 2, None).unwrap();
        assert_eq!(a.version, 2);
        assert_eq!(a.capabilities, Capabilities::PIPING);
        assert_eq!(
            negotiate(&config, &hello(1, 5, Capabilities::NONE), 1, None)
                .unwrap()
                .version,
            1
        );
        // The datagram's version must be in both ranges.
        let r = negotiate(&config, &hello(2, 5, Capabilities::ALL), 1, None).unwrap_err();
        assert_eq!(r.reason, RejectReason::NO_COMMON_VERSION);
        assert_eq!(r.versions, config.versions);
        let v2_only = Config::default();
        let r = negotiate(&v2_only, &hello(1, 1, Capabilities::ALL), 1, None).unwrap_err();
        assert_eq!(r.reason, RejectReason::NO_COMMON_VERSION);
    }

    #[test]
    fn client_resends_with_backoff_until_the_deadline() {
        let config = Config::default();
        let mut c = client(&config, None);
        assert!(c.take_send(Instant::ZERO));
        assert!(!c.take_send(Instant::from_micros(299_999)));
        assert_eq!(c.deadline(), Instant::from_micros(300_000));
        assert!(c.take_send(Instant::from_micros(300_000)));
        assert_eq!(c.deadline(), Instant::from_micros(900_000));
        assert!(!c.timed_out(Instant::from_micros(9_999_999)));
        assert!(c.timed_out(Instant::from_micros(10_000_000)));
    }

    #[test]
    fn client_checks_the_accept() {
        let config = Config {
            versions: VersionRange::UNPROTECTED,
            capabilities: Capabilities::STREAMING,
            ..Config::default()
        };
        let c = client(&config, None);
        let ok = Accept {
            version: 1,
            capabilities: Capabilities::STREAMING,
            params: Default::default(),
        };
        assert_eq!(c.on_accept(&ok).unwrap().version, 1);
        assert!(c.on_accept(&ok).unwrap().streaming());
        let bad = Accept {
            capabilities: Capabilities::PIPING,
            ..ok.clone()
        };
        assert!(matches!(
            c.on_accept(&bad),
            Err(HandshakeError::InvalidAccept { .. })
        ));
        let bad = Accept { version: 2, ..ok };
        assert!(matches!(
            c.on_accept(&bad),
            Err(HandshakeError::InvalidAccept { .. })
        ));
    }

    #[test]
    fn one_retry_per_attempt_and_each_makes_a_new_noise_message() {
        let mut c = client(&Config::default(), None);
        assert!(c.take_send(Instant::ZERO));
        let first = c.hello_frame().unwrap();
        c.on_retry(
            Bytes::from_static(b"tok"),
            Instant::from_micros(10),
            ConnectionId::from_u64(9),
        );
        assert!(c.take_send(Instant::from_micros(10)));
        assert_eq!(&c.hello.token[..], b"tok");
        let (Frame::NoiseHello(a), Some(Frame::NoiseHello(b))) = (first, c.hello_frame()) else {
            panic!("version 2 sends NOISE_HELLO");
        };
        assert_ne!(a.message, b.message);
        c.on_retry(
            Bytes::from_static(b"other"),
            Instant::from_micros(20),
            ConnectionId::from_u64(9),
        );
        assert_eq!(&c.hello.token[..], b"tok");
    }

    #[test]
    fn a_server_answers_both_patterns_and_the_client_opens_the_answer() {
        let server_config = Config {
            identity: Some(Identity::from_seed(&Seed::from(7))),
            ..Config::default()
        };
        let server_id = server_config.identity.clone().unwrap();
        for server in [None, Some(server_id.public_key())] {
            let mut c = client(&Config::default(), server);
            let Some(Frame::NoiseHello(h)) = c.hello_frame() else {
                panic!("NOISE_HELLO expected");
            };
            let entropy = Entropy::new(&Seed::from(7), b"server");
            let answer = accept_noise(
                &server_config,
                &server_id,
                entropy,
                ConnectionId::from_u64(9),
                &h,
                None,
            )
            .unwrap();
            // Both offer every cipher: the server's first preference wins.
            assert_eq!(answer.cipher, server_config.ciphers[0]);
            let opened = c.on_noise_accept(&answer.message).ok().unwrap();
            assert_eq!(opened.peer, server_id.public_key());
            assert_eq!(opened.negotiated.cipher, Some(server_config.ciphers[0]));
            assert_eq!(opened.finish.is_some(), server.is_none());
            match answer.next {
                ServerNext::Done { secrets, .. } => assert_eq!(secrets.recv, opened.secrets.send),
                ServerNext::Finish(_) => assert!(server.is_none()),
            }
        }
    }

    #[test]
    fn an_ik_hello_for_another_key_is_rejected_as_a_key_mismatch() {
        let c = client(
            &Config::default(),
            Some(Identity::from_seed(&Seed::from(99)).public_key()),
        );
        let Some(Frame::NoiseHello(h)) = c.hello_frame() else {
            panic!("NOISE_HELLO expected");
        };
        let server = Identity::from_seed(&Seed::from(7));
        let entropy = Entropy::new(&Seed::from(7), b"server");
        let r = accept_noise(
            &Config::default(),
            &server,
            entropy,
            ConnectionId::from_u64(9),
            &h,
            None,
        )
        .err()
        .unwrap();
        assert_eq!(r.reason, RejectReason::KEY_MISMATCH);
    }
}
