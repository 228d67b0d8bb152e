//! The handshake (spec/protocol.md §4.13-§4.16, §7): version and capability negotiation,
//! HELLO retransmission with backoff, and the typed ways it can fail.
//!
//! Client: sends HELLO (padded to 1200 bytes) at once, again after `initial_rtt × 3`, then
//! doubling, until ACCEPT, REJECT, VERSION_REJECT or the handshake timeout. RETRY makes it
//! send HELLO again at once with the token (one RETRY per attempt). Server: answers each
//! copy of a HELLO with the same ACCEPT (idempotent), and counts the connection as
//! established when the client's first data packet arrives.

use bytes::Bytes;

use crate::config::Config;
use crate::time::{Duration, Instant};
use crate::wire::{Accept, Capabilities, Hello, Reject, RejectReason, VersionRange};

/// Why a connection attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// No answer within the handshake timeout.
    #[error("handshake timed out")]
    TimedOut,
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
    /// The server's ACCEPT chose a version or capabilities we did not offer.
    #[error("server's ACCEPT is not one we offered (version {version}, capabilities {capabilities})")]
    InvalidAccept {
        /// Version the server chose.
        version: u16,
        /// Capabilities the server chose.
        capabilities: Capabilities,
    },
}

/// What both sides agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The wire version in use.
    pub version: u16,
    /// Capabilities both sides offered: what the connection may use.
    pub capabilities: Capabilities,
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
}

/// The server's decision on a HELLO: an ACCEPT to send, or a REJECT.
pub(crate) fn negotiate(config: &Config, hello: &Hello) -> Result<Accept, Reject> {
    let Some(version) = config.versions.highest_common(hello.versions) else {
        return Err(Reject {
            reason: RejectReason::NO_COMMON_VERSION,
            versions: config.versions,
        });
    };
    Ok(Accept {
        version,
        capabilities: config.capabilities.intersection(hello.capabilities),
        params: config.transport_params(),
    })
}

/// The client's side of the handshake, until it ends.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) hello: Hello,
    /// When HELLO is to be sent (again); `None` while no resend is scheduled.
    next_send: Option<Instant>,
    backoff: Duration,
    deadline: Instant,
    retried: bool,
}

impl Client {
    pub(crate) fn new(config: &Config, now: Instant) -> Self {
        Client {
            hello: Hello {
                versions: config.versions,
                capabilities: config.capabilities,
                token: Bytes::new(),
                params: config.transport_params(),
            },
            next_send: Some(now),
            backoff: config.initial_rtt.saturating_mul(3),
            deadline: now + config.handshake_timeout,
            retried: false,
        }
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

    /// The earliest of the resend and the give-up deadlines.
    pub(crate) fn deadline(&self) -> Instant {
        self.next_send.map_or(self.deadline, |t| t.min(self.deadline))
    }

    pub(crate) fn timed_out(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// A RETRY: resend at once with its token. A second RETRY in one attempt is ignored
    /// (a server that keeps asking is not validating us; the timeout ends it).
    pub(crate) fn on_retry(&mut self, token: Bytes, now: Instant) {
        if !self.retried {
            self.retried = true;
            self.hello.token = token;
            self.next_send = Some(now);
        }
    }

    /// Checks an ACCEPT against what we offered.
    pub(crate) fn on_accept(&self, accept: &Accept) -> Result<Negotiated, HandshakeError> {
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(min: u16, max: u16, caps: Capabilities) -> Hello {
        Hello {
            versions: VersionRange::new(min, max).unwrap(),
            capabilities: caps,
            token: Bytes::new(),
            params: Default::default(),
        }
    }

    #[test]
    fn server_picks_the_highest_common_version_and_intersects_capabilities() {
        let config = Config {
            versions: VersionRange::new(1, 3).unwrap(),
            ..Config::default()
        };
        let a = negotiate(&config, &hello(2, 5, Capabilities::PIPING)).unwrap();
        assert_eq!(a.version, 3);
        assert_eq!(a.capabilities, Capabilities::PIPING);
        let r = negotiate(&config, &hello(4, 5, Capabilities::ALL_V1)).unwrap_err();
        assert_eq!(r.reason, RejectReason::NO_COMMON_VERSION);
        assert_eq!(r.versions, config.versions);
    }

    #[test]
    fn client_resends_with_backoff_until_the_deadline() {
        let config = Config::default();
        let mut c = Client::new(&config, Instant::ZERO);
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
            capabilities: Capabilities::STREAMING,
            ..Config::default()
        };
        let c = Client::new(&config, Instant::ZERO);
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
    fn one_retry_per_attempt() {
        let mut c = Client::new(&Config::default(), Instant::ZERO);
        assert!(c.take_send(Instant::ZERO));
        c.on_retry(Bytes::from_static(b"tok"), Instant::from_micros(10));
        assert!(c.take_send(Instant::from_micros(10)));
        assert_eq!(&c.hello.token[..], b"tok");
        c.on_retry(Bytes::from_static(b"other"), Instant::from_micros(20));
        assert_eq!(&c.hello.token[..], b"tok");
    }
}
