//! The client's side of the handshake (spec/protocol.md §4.13-§4.16, §7): the attempt's
//! states as a table, the HELLO or NOISE_HELLO resent with backoff until an answer or the
//! timeout, RETRY and VERSION_REJECT handled, and the server's answer opened.

use alloc::boxed::Box;

use bytes::Bytes;

use super::{Backoff, HandshakeError, Negotiated};
use crate::config::Config;
use crate::crypto::keys::{Entropy, Identity, PublicKey};
use crate::crypto::noise::{NoiseHandshake, Secrets};
use crate::time::{Duration, Instant};
use crate::wire::{
    Accept, AcceptTerms, Capabilities, Ciphers, ConnectionId, Frame, Hello, NoiseHello, NoisePattern,
    VersionRange, VERSION_1, VERSION_2,
};

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
    backoff: Backoff,
    /// The current HELLO's sends: its answer's round trip is the connection's first RTT
    /// sample.
    sent: super::SentOnce,
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
            backoff: Backoff::new(config.initial_rtt.saturating_mul(3), config.max_probe_interval),
            sent: super::SentOnce::NotYet,
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
            None if self.version() == VERSION_1 => Some(Frame::Hello(Box::new(self.hello.clone()))),
            None => None,
            Some(n) => Some(Frame::NoiseHello(Box::new(NoiseHello {
                hello: self.hello.clone(),
                pattern: n.pattern,
                ciphers: n.ciphers,
                message: n.message.clone(),
            }))),
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
        // The new HELLO is a new message: the rejected one's copies do not time its answer.
        self.sent = super::SentOnce::NotYet;
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
                self.next_send = Some(now + self.backoff.take());
                self.sent.sent(now);
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

    /// The round trip that the server's answer, read at `now`, times: from the HELLO it
    /// answers, if that went once.
    pub(crate) fn answer_rtt(&self, now: Instant) -> Option<Duration> {
        self.sent.sample(now)
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
            // Only a HELLO with the token is answered from now on.
            self.sent = super::SentOnce::NotYet;
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
