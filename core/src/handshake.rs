//! The handshake (spec/protocol.md §4.13-§4.16, §7, §11.2): version and capability
//! negotiation, the Noise handshake of version 2, HELLO retransmission with backoff, and
//! the typed ways it can fail.
//!
//! Client: sends HELLO (version 1) or NOISE_HELLO (version 2), padded to 1200 bytes, at
//! once, again after `initial_rtt × 3`, then doubling, until ACCEPT / NOISE_ACCEPT, REJECT,
//! VERSION_REJECT or the handshake timeout. RETRY makes it send the HELLO again at once
//! with the token (one RETRY per attempt; in version 2 with a fresh Noise message, since the
//! token is part of the prologue). A VERSION_REJECT from a server that speaks only version
//! 1 makes a client whose range includes 1 start over in version 1. Server: answers each
//! copy of a HELLO with the same answer (idempotent), and counts the connection as
//! established when the client's first data packet (or, XX, its NOISE_FINISH) arrives.

use alloc::boxed::Box;

use bytes::Bytes;

use crate::config::{Config, PeerDecision};
use crate::crypto::keys::{Entropy, Identity, PublicKey};
use crate::crypto::noise::{NoiseHandshake, Secrets};
use crate::time::{Duration, Instant};
use crate::wire::{
    Accept, AcceptTerms, Capabilities, Cipher, Ciphers, ConnectionId, Frame, Hello, NoiseHello, NoisePattern,
    Reject, RejectReason, TransportParams, VersionRange, VERSION_1, VERSION_2,
};

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

/// What a server's Noise step on a NOISE_HELLO gives: the NOISE_ACCEPT to send, and the
/// handshake (XX: waiting for NOISE_FINISH) or the finished keys (IK).
pub(crate) struct ServerNoise {
    pub(crate) accept: Accept,
    pub(crate) cipher: Cipher,
    pub(crate) message: Bytes,
    pub(crate) next: ServerNext,
}

/// After NOISE_ACCEPT: the client's NOISE_FINISH to read (XX), or done (IK).
pub(crate) enum ServerNext {
    Finish(NoiseHandshake),
    Done { peer: PublicKey, secrets: Secrets },
}

impl core::fmt::Debug for ServerNext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServerNext::Finish(_) => f.write_str("Finish"),
            ServerNext::Done { peer, .. } => write!(f, "Done({peer})"),
        }
    }
}

/// The server's side of a NOISE_HELLO (spec §11.2): reads the client's first message under
/// the prologue of what the HELLO says, decides (versions, ciphers, and for IK the client's
/// identity), and writes NOISE_ACCEPT with the terms sealed inside. Costs two X25519
/// operations (XX) or four (IK), so it runs only on a HELLO admission let through.
pub(crate) fn accept_noise(
    config: &Config,
    identity: &Identity,
    entropy: Entropy,
    client: ConnectionId,
    hello: &NoiseHello,
    reset: Option<[u8; 16]>,
) -> Result<ServerNoise, Reject> {
    let refuse = |reason| Reject {
        reason,
        versions: config.versions,
    };
    let accept = negotiate(config, &hello.hello, VERSION_2, reset)?;
    let Some(&cipher) = config.ciphers.iter().find(|c| hello.ciphers.contains(**c)) else {
        return Err(refuse(RejectReason::NO_COMMON_CIPHER));
    };
    let prologue = hello
        .prologue(client)
        .map_err(|_| refuse(RejectReason::BAD_PARAMETERS))?;
    let mut noise = NoiseHandshake::responder(hello.pattern, identity, &prologue, entropy)
        .map_err(|_| refuse(RejectReason::KEY_MISMATCH))?;
    noise
        .read(&hello.message)
        .map_err(|_| refuse(RejectReason::KEY_MISMATCH))?;
    if let Some(peer) = noise.remote_key() {
        if config.peer_policy.check(&peer) == PeerDecision::Refuse {
            return Err(refuse(RejectReason::REFUSED));
        }
    }
    let terms = AcceptTerms {
        accept: accept.clone(),
        cipher,
    };
    let payload = terms.encode().map_err(|_| refuse(RejectReason::BAD_PARAMETERS))?;
    let message = noise
        .write(&payload)
        .map_err(|_| refuse(RejectReason::BAD_PARAMETERS))?;
    let next = match (noise.remote_key(), noise.secrets()) {
        (Some(peer), Some(secrets)) => ServerNext::Done { peer, secrets },
        _ => ServerNext::Finish(noise),
    };
    Ok(ServerNoise {
        accept,
        cipher,
        message,
        next,
    })
}

/// A client's Noise state while it waits for NOISE_ACCEPT.
struct ClientNoise {
    pattern: NoisePattern,
    /// The server's key, for IK.
    server: Option<PublicKey>,
    ciphers: Ciphers,
    identity: Identity,
    /// Draws the ephemeral key of each attempt (a RETRY starts a new one).
    entropy: Entropy,
    state: NoiseHandshake,
    /// The first message, sent in every copy of NOISE_HELLO.
    message: Bytes,
    /// NOISE_ACCEPTs that did not open.
    failures: u32,
}

impl core::fmt::Debug for ClientNoise {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientNoise")
            .field("pattern", &self.pattern)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// What opening a NOISE_ACCEPT gives the client.
pub(crate) struct Opened {
    pub(crate) negotiated: Negotiated,
    pub(crate) accept: Accept,
    pub(crate) peer: PublicKey,
    pub(crate) secrets: Secrets,
    /// XX: the NOISE_FINISH message to send (and resend until the server answers).
    pub(crate) finish: Option<Bytes>,
}

/// Why a NOISE_ACCEPT did not finish the handshake.
pub(crate) enum NotOpened {
    /// It did not authenticate (forged, altered, or the HELLO was altered on the way):
    /// dropped; the genuine answer may still come.
    Unauthentic,
    /// It authenticated, and the handshake fails with this.
    Failed(HandshakeError),
}

/// Where a client's attempt stands (spec/state-machines.md, "Handshake: a client's
/// attempt"): the wire version its HELLO is written in (2, a NOISE_HELLO, when our range
/// includes it; else 1, a HELLO), and whether a RETRY's token rides on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    V2,
    V2Retried,
    V1,
    V1Retried,
}

/// What moves a client's attempt on; its end (an answer read, or a failure) is the
/// connection's lifecycle's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttemptStep {
    /// A RETRY: the HELLO goes again at once with its token (and, in version 2, a new Noise
    /// handshake, the token being part of the prologue). Once per attempt: a server that
    /// keeps asking is not validating us, and the timeout ends it.
    Retry,
    /// A VERSION_REJECT naming only version 1, which our range allows and no identity to
    /// prove forbids (spec §11.7): the HELLO goes again in version 1.
    FallBack,
}

/// Every transition of a client's attempt: from, step, to. A step not listed leaves it as
/// it is (a second RETRY; a VERSION_REJECT that leaves no version to fall back to fails
/// the handshake instead).
pub(crate) const ATTEMPT_TRANSITIONS: &[(Attempt, AttemptStep, Attempt)] = &[
    (Attempt::V2, AttemptStep::Retry, Attempt::V2Retried),
    (Attempt::V1, AttemptStep::Retry, Attempt::V1Retried),
    (Attempt::V2, AttemptStep::FallBack, Attempt::V1),
    (Attempt::V2Retried, AttemptStep::FallBack, Attempt::V1Retried),
];

impl Attempt {
    /// The state after `step`, by [`ATTEMPT_TRANSITIONS`]; `None` if it has no such row.
    pub(crate) fn after(self, step: AttemptStep) -> Option<Attempt> {
        crate::transitions::next(ATTEMPT_TRANSITIONS, self, step)
    }

    /// The wire version the HELLO is written in.
    pub(crate) fn version(self) -> u16 {
        match self {
            Attempt::V2 | Attempt::V2Retried => VERSION_2,
            Attempt::V1 | Attempt::V1Retried => VERSION_1,
        }
    }
}

/// The client's side of the handshake, until it ends.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) hello: Hello,
    /// The version written in, and whether a RETRY came.
    attempt: Attempt,
    /// Boxed: it is large, and gone once the handshake ends.
    noise: Option<Box<ClientNoise>>,
    /// When HELLO is to be sent (again); `None` while no resend is scheduled.
    next_send: Option<Instant>,
    backoff: Duration,
    deadline: Instant,
    /// The server must prove its identity (a named key, or a peer policy): never version 1.
    needs_identity: bool,
}

impl Client {
    /// A client handshake; `server` names the server's key (IK), `None` learns it (XX).
    pub(crate) fn new(
        config: &Config,
        now: Instant,
        client: ConnectionId,
        identity: &Identity,
        entropy: Entropy,
        server: Option<PublicKey>,
    ) -> Self {
        let hello = Hello {
            versions: config.versions,
            capabilities: config.capabilities,
            token: Bytes::new(),
            params: config.transport_params(),
        };
        let mut c = Client {
            hello,
            attempt: Attempt::V1,
            noise: None,
            next_send: Some(now),
            backoff: config.initial_rtt.saturating_mul(3),
            deadline: now + config.handshake_timeout,
            needs_identity: server.is_some() || config.peer_policy.checks(),
        };
        if config.versions.contains(VERSION_2) {
            let pattern = match server {
                Some(_) => NoisePattern::Ik,
                None => NoisePattern::Xx,
            };
            c.attempt = Attempt::V2;
            c.noise = ClientNoise::start(
                &c.hello,
                client,
                pattern,
                server,
                config.ciphers.iter().copied().collect(),
                identity.clone(),
                entropy,
            );
        }
        c
    }

    /// The wire version the HELLO is written in.
    pub(crate) fn version(&self) -> u16 {
        self.attempt.version()
    }

    /// The frame every copy of the HELLO carries.
    pub(crate) fn hello_frame(&self) -> Option<Frame> {
        match &self.noise {
            None if self.version() == VERSION_1 => Some(Frame::Hello(self.hello.clone())),
            None => None,
            Some(n) => Some(Frame::NoiseHello(NoiseHello {
                hello: self.hello.clone(),
                pattern: n.pattern,
                ciphers: n.ciphers,
                message: n.message.clone(),
            })),
        }
    }

    /// The key we named for an IK handshake.
    pub(crate) fn server_key(&self) -> Option<PublicKey> {
        self.noise.as_ref().and_then(|n| n.server)
    }

    /// Why the handshake failed when it timed out: answers that did not authenticate, if
    /// any came, else the timeout.
    pub(crate) fn timeout_error(&self) -> HandshakeError {
        match self.noise.as_ref().map_or(0, |n| n.failures) {
            0 => HandshakeError::TimedOut,
            failures => HandshakeError::AuthenticationFailed { failures },
        }
    }

    /// A VERSION_REJECT from a server speaking `server`: start over in version 1 if we may
    /// (spec §11.7: a downgrade our range allows, and no identity to prove), ignore it if it
    /// names the version we wrote in, else the typed failure.
    pub(crate) fn on_version_reject(
        &mut self,
        server: VersionRange,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        if server.contains(self.version()) {
            // A server that speaks the version we wrote in could read us: this one is forged
            // or stale, and taken as such (RFC 9000 §6.2 makes the same rule).
            return Ok(());
        }
        let next = self.attempt.after(AttemptStep::FallBack);
        let fallback =
            next.is_some() && self.hello.versions.contains(VERSION_1) && server.contains(VERSION_1);
        if fallback && self.needs_identity {
            // Unauthenticated, so possibly forged: version 1 could not show who answers.
            return Err(HandshakeError::DowngradeRefused { server });
        }
        let (true, Some(next)) = (fallback, next) else {
            return Err(HandshakeError::NoCommonVersion {
                ours: self.hello.versions,
                server,
            });
        };
        self.attempt = next;
        self.noise = None;
        self.next_send = Some(now);
        Ok(())
    }

    /// Opens a NOISE_ACCEPT carrying `message` (spec §11.2).
    pub(crate) fn on_noise_accept(&mut self, message: &[u8]) -> Result<Opened, NotOpened> {
        let Some(noise) = self.noise.as_mut() else {
            return Err(NotOpened::Unauthentic);
        };
        let Ok(payload) = noise.state.read(message) else {
            noise.failures += 1;
            return Err(NotOpened::Unauthentic);
        };
        // Authenticated from here: whatever is wrong is the server's doing.
        let invalid = |accept: Option<&Accept>| {
            NotOpened::Failed(HandshakeError::InvalidAccept {
                version: accept.map_or(0, |a| a.version),
                capabilities: accept.map_or(Capabilities::NONE, |a| a.capabilities),
            })
        };
        let terms = AcceptTerms::decode(payload).map_err(|_| invalid(None))?;
        if terms.accept.version != VERSION_2 || !noise.ciphers.contains(terms.cipher) {
            return Err(invalid(Some(&terms.accept)));
        }
        let mut negotiated = self.check_accept(&terms.accept).map_err(NotOpened::Failed)?;
        negotiated.cipher = Some(terms.cipher);
        let noise = self.noise.as_mut().ok_or(NotOpened::Unauthentic)?;
        let peer = noise
            .state
            .remote_key()
            .ok_or_else(|| invalid(Some(&terms.accept)))?;
        let finish = match noise.pattern {
            NoisePattern::Xx => Some(noise.state.write(&[]).map_err(|_| invalid(Some(&terms.accept)))?),
            NoisePattern::Ik => None,
        };
        let secrets = noise
            .state
            .secrets()
            .ok_or_else(|| invalid(Some(&terms.accept)))?;
        Ok(Opened {
            negotiated,
            accept: terms.accept,
            peer,
            secrets,
            finish,
        })
    }
    /// Whether HELLO is due at `now`; if so, schedules the next copy with backoff.
    pub(crate) fn take_send(&mut self, now: Instant) -> bool {
        match self.next_send {
            Some(at) if at <= now => {
                self.next_send = Some(now + self.backoff);
                self.backoff = self.backoff.saturating_mul(2);
                true
            }
            _ => false,
        }
    }

    /// Sends nothing until [`resume`](Self::resume): the path to the server is not open yet
    /// (a relay's circuit, spec §12). The give-up deadline runs on.
    pub(crate) fn hold(&mut self) {
        self.next_send = None;
    }

    /// The path is open: HELLO goes at once, then on its backoff.
    pub(crate) fn resume(&mut self, now: Instant) {
        self.next_send = Some(now);
    }

    /// The earliest of the resend and the give-up deadlines.
    pub(crate) fn deadline(&self) -> Instant {
        self.next_send.map_or(self.deadline, |t| t.min(self.deadline))
    }

    pub(crate) fn timed_out(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// A RETRY: resend at once with its token. A second RETRY in one attempt is ignored
    /// (a server that keeps asking is not validating us; the timeout ends it). In version 2
    /// the token is part of the prologue, so the Noise handshake starts over.
    pub(crate) fn on_retry(&mut self, token: Bytes, now: Instant, client: ConnectionId) {
        if let Some(next) = self.attempt.after(AttemptStep::Retry) {
            self.attempt = next;
            self.hello.token = token;
            self.next_send = Some(now);
            if let Some(old) = self.noise.take() {
                let ClientNoise {
                    pattern,
                    server,
                    ciphers,
                    identity,
                    mut entropy,
                    ..
                } = *old;
                let fresh = entropy.child();
                self.noise =
                    ClientNoise::start(&self.hello, client, pattern, server, ciphers, identity, fresh);
            }
        }
    }

    /// Checks an ACCEPT (version 1) against what we offered.
    pub(crate) fn on_accept(&self, accept: &Accept) -> Result<Negotiated, HandshakeError> {
        if self.version() != VERSION_1 || accept.version != VERSION_1 {
            return Err(HandshakeError::InvalidAccept {
                version: accept.version,
                capabilities: accept.capabilities,
            });
        }
        self.check_accept(accept)
    }

    fn check_accept(&self, accept: &Accept) -> Result<Negotiated, HandshakeError> {
        if !self.hello.versions.contains(accept.version)
            || !self.hello.capabilities.contains(accept.capabilities)
        {
            return Err(HandshakeError::InvalidAccept {
                version: accept.version,
                capabilities: accept.capabilities,
            });
        }
        Ok(Negotiated {
            version: accept.version,
            capabilities: accept.capabilities,
            cipher: None,
        })
    }
}

impl ClientNoise {
    /// A Noise initiator for `hello` (whose fields make the prologue) and its first message;
    /// `None` if the handshake cannot start (a HELLO too large to encode), which leaves the
    /// client sending nothing until its timeout.
    fn start(
        hello: &Hello,
        client: ConnectionId,
        pattern: NoisePattern,
        server: Option<PublicKey>,
        ciphers: Ciphers,
        identity: Identity,
        mut entropy: Entropy,
    ) -> Option<Box<ClientNoise>> {
        let frame = NoiseHello {
            hello: hello.clone(),
            pattern,
            ciphers,
            message: Bytes::new(),
        };
        let prologue = frame.prologue(client).ok()?;
        let mut state =
            NoiseHandshake::initiator(pattern, &identity, server.as_ref(), &prologue, entropy.child())
                .ok()?;
        let message = state.write(&[]).ok()?;
        Some(Box::new(ClientNoise {
            pattern,
            server,
            ciphers,
            identity,
            entropy,
            state,
            message,
            failures: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
