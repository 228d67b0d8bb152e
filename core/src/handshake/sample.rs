//! The handshake's round-trip sample (spec §8, Loss and retransmission; RFC 9002 §5.1 and
//! Karn's rule, RFC 6298 §3).
//!
//! A handshake message that the peer answers at once times a round trip: a client's HELLO
//! to the server's answer, a server's answer to the client's confirmation, which the client
//! sends the moment it reads the answer (NOISE_FINISH with XX, a PING with IK, the ACK of
//! the ACCEPT in version 1). Handshake packets are not tracked
//! by recovery, so without this a connection's first exchanges are paced, and its first
//! probe timeout set, on the configured initial RTT (100 ms by default), whatever the path.
//!
//! Input: each send of the message, and the answer's arrival. Output: the sample, or none
//! when the message went more than once (the answer cannot say which copy it answers).

use crate::time::{Duration, Instant};

/// How often the message that the answer times was sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum SentOnce {
    /// Not yet.
    #[default]
    NotYet,
    /// Once, at this time.
    Once(Instant),
    /// More than once: no sample (Karn's rule).
    Again,
}

impl SentOnce {
    /// The message went at `now`.
    pub(crate) fn sent(&mut self, now: Instant) {
        *self = match self {
            SentOnce::NotYet => SentOnce::Once(now),
            SentOnce::Once(_) | SentOnce::Again => SentOnce::Again,
        };
    }

    /// The round trip that an answer read at `now` times, if the message went exactly once.
    pub(crate) fn sample(&self, now: Instant) -> Option<Duration> {
        match *self {
            SentOnce::Once(at) => Some(now.saturating_duration_since(at)),
            SentOnce::NotYet | SentOnce::Again => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_message_sent_once_gives_a_sample() {
        let t0 = Instant::ZERO + Duration::from_millis(5);
        let mut s = SentOnce::default();
        assert_eq!(s.sample(t0), None, "nothing sent");
        s.sent(t0);
        assert_eq!(
            s.sample(t0 + Duration::from_millis(30)),
            Some(Duration::from_millis(30))
        );
        s.sent(t0 + Duration::from_millis(300));
        assert_eq!(s.sample(t0 + Duration::from_millis(310)), None, "which copy?");
        s.sent(t0 + Duration::from_millis(900));
        assert_eq!(s.sample(t0 + Duration::from_millis(910)), None);
    }
}
