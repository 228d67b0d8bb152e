//! The connection's side of the handshake (spec/protocol.md §7; version 2's Noise messages,
//! §11.2): the client's answer to ACCEPT, REJECT and RETRY, both sides' Noise messages, what
//! the peer's parameters set, and the handshake datagrams this side sends and resends.
//!
//! Inputs: handshake frames from `Connection::handle_packet`. Outputs: the negotiated mode
//! and packet keys installed on the connection, `Event::Connected` or
//! `Event::HandshakeFailed`, and handshake datagrams from `poll_transmit`. The attempt's own
//! logic (what a client and a server decide) is the crate's `handshake` module's; this
//! applies it to one connection.

use super::*;

/// This side of the connection's handshake (spec/state-machines.md, "Handshake"): a
/// client's attempt (its own table: `ATTEMPT_TRANSITIONS` in `handshake/client.rs`), a server answering,
/// or done. Its failures end the connection through the lifecycle (`Step::Abandoned`).
///
/// The attempt's state is boxed (a client's, a server's with its answer: about 250 bytes
/// each): a connection past its handshake holds none of it, and the enum takes 16 bytes.
#[derive(Debug)]
pub(super) enum HandshakeState {
    Client(Box<handshake::Client>),
    Server(Box<Answering>),
    Done,
}

/// A server's side of the handshake. The answer is sent again when a copy of the HELLO
/// arrives and, until the client's first data packet (or NOISE_FINISH) confirms the
/// handshake, on a backoff timer of its own (so a lost ACK of the answer cannot leave the
/// client connected and the server not).
#[derive(Debug)]
pub(super) struct Answering {
    /// ACCEPT (version 1) or NOISE_ACCEPT (version 2).
    pub(super) answer: Frame,
    /// Version 2, pattern XX: the handshake, waiting for the client's NOISE_FINISH.
    pub(super) noise: Option<NoiseHandshake>,
    pub(super) send_accept: bool,
    pub(super) resend: Instant,
    pub(super) backoff: Backoff,
    /// The answer is sent until then (the handshake timeout): a client has given up by then
    /// if it never read one.
    pub(super) answer_until: Instant,
    /// The answer's sends: the client's confirmation, sent the moment it reads the answer,
    /// times a round trip.
    pub(super) sent: handshake::SentOnce,
    /// The attempt is forgotten then: the handshake timeout, or the idle timeout after the
    /// last answer sent, whichever is later (spec §8, Handshake).
    pub(super) deadline: Instant,
}

/// A handshake state's name, without its data: the rows of [`HANDSHAKE_TRANSITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HandshakePhase {
    Client,
    Server,
    Done,
}

/// What ends the handshake on this side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HandshakeStep {
    /// The client read the server's answer (ACCEPT, or NOISE_ACCEPT that authenticated).
    Answered,
    /// The server read the client's first data packet or its NOISE_FINISH.
    Confirmed,
}

/// Every transition of the handshake: from, step, to. A step not listed leaves it as it is.
pub(super) const HANDSHAKE_TRANSITIONS: &[(HandshakePhase, HandshakeStep, HandshakePhase)] = &[
    (
        HandshakePhase::Client,
        HandshakeStep::Answered,
        HandshakePhase::Done,
    ),
    (
        HandshakePhase::Server,
        HandshakeStep::Confirmed,
        HandshakePhase::Done,
    ),
];

impl HandshakeState {
    pub(super) fn phase(&self) -> HandshakePhase {
        match self {
            HandshakeState::Client(_) => HandshakePhase::Client,
            HandshakeState::Server(_) => HandshakePhase::Server,
            HandshakeState::Done => HandshakePhase::Done,
        }
    }

    /// The round trip that the peer's answer, read at `now`, times (`handshake::SentOnce`):
    /// a client's from its HELLO, a server's from its answer; none once done.
    fn rtt(&self, now: Instant) -> Option<Duration> {
        match self {
            HandshakeState::Client(c) => c.answer_rtt(now),
            HandshakeState::Server(s) => s.sent.sample(now),
            HandshakeState::Done => None,
        }
    }

    /// Takes `step` by [`HANDSHAKE_TRANSITIONS`]; whether it moved. The only target is
    /// `Done`, which keeps nothing of the attempt.
    pub(super) fn step(&mut self, step: HandshakeStep) -> bool {
        let moves =
            crate::transitions::next(HANDSHAKE_TRANSITIONS, self.phase(), step) == Some(HandshakePhase::Done);
        if moves {
            *self = HandshakeState::Done;
        }
        moves
    }
}

impl Connection {
    /// The handshake ended (version 2): `peer` is who the other side is, `secrets` key the
    /// packets from now on (spec §11.3).
    pub(super) fn authenticated(
        &mut self,
        config: &Config,
        cipher: crate::wire::Cipher,
        peer: PublicKey,
        secrets: Secrets,
    ) {
        let keys = Protection::new(
            (cipher, config.primitives()),
            secrets.send,
            secrets.recv,
            config.key_update_interval,
        );
        self.crypto = Some(Box::new(keys));
        self.peer_key = Some(peer);
    }

    pub(super) fn apply_peer_params(&mut self, config: &Config, peer: PeerParams) {
        self.peer = peer.limits();
        // Nothing is in flight yet: the controller starts over for the datagram size in use.
        let algorithm = self.congestion.as_deref().unwrap_or(&config.congestion);
        self.cc = algorithm.build(self.datagram_size(config, usize::MAX));
        self.send_credit = SendCredit::new(peer.max_data);
        self.stream_count.on_peer_limit(peer.max_streams);
        self.recovery.set_peer_max_ack_delay(peer.max_ack_delay);
    }

    /// A VERSION_REJECT answered our HELLO: the server cannot read our version.
    pub(crate) fn on_version_reject(
        &mut self,
        now: Instant,
        server: crate::wire::VersionRange,
        config: &Config,
    ) {
        if self.state != State::Handshaking {
            // Closing already (a violation during the handshake): nothing to answer.
            return;
        }
        if let HandshakeState::Client(c) = &mut self.handshake {
            match c.on_version_reject(server, now) {
                Ok(()) => self.version = c.version(),
                Err(e) => self.fail_handshake(e),
            }
            self.refresh_timers(config);
        }
    }

    /// The handshake failed: the connection is abandoned and the application told, if it
    /// is still handshaking (one that is closing already ends as its close says).
    pub(super) fn fail_handshake(&mut self, reason: HandshakeError) {
        if self.state != State::Handshaking {
            return;
        }
        self.step(Step::Abandoned);
        self.events.push_back(Event::HandshakeFailed {
            conn: self.handle,
            reason,
        });
    }

    /// Ends this side's handshake with `step` (the answer read, or the confirmation), which
    /// at `now` times the connection's first round trip (spec §8, Loss and retransmission).
    pub(super) fn end_handshake(&mut self, now: Instant, step: HandshakeStep) {
        if let Some(rtt) = self.handshake.rtt(now) {
            self.recovery.on_handshake_rtt(rtt);
        }
        self.handshake.step(step);
    }

    pub(super) fn on_accept(&mut self, now: Instant, config: &Config, header: &Header, accept: Accept) {
        let HandshakeState::Client(client) = &self.handshake else {
            return;
        };
        if self.state != State::Handshaking {
            return;
        }
        let PacketKind::Handshake { scid } = header.kind else {
            return;
        };
        match client.on_accept(&accept) {
            Ok(negotiated) => {
                self.remote_cid = scid;
                self.negotiated = Some(negotiated);
                self.apply_peer_params(config, PeerParams::from_wire(&accept.params));
                self.end_handshake(now, HandshakeStep::Answered);
                self.step(Step::Confirmed);
                self.liveness.elicited(now);
                self.connected(negotiated, None);
            }
            Err(e) => self.fail_handshake(e),
        }
    }

    /// A version 2 handshake packet (spec §11.2): NOISE_ACCEPT, REJECT or RETRY for a
    /// client, a HELLO copy or NOISE_FINISH for a server; anything else is ignored.
    pub(super) fn on_handshake_packet_v2(&mut self, now: Instant, config: &Config, packet: &Packet) {
        if !matches!(self.state, State::Handshaking | State::Established) {
            return;
        }
        for frame in packet.frames() {
            match (frame, &mut self.handshake) {
                (Frame::NoiseAccept(message), HandshakeState::Client(_)) => {
                    self.on_noise_accept(now, config, &packet.header, &message)
                }
                (Frame::Reject(reject), HandshakeState::Client(c)) => {
                    let error = match (reject.reason, c.server_key()) {
                        (RejectReason::KEY_MISMATCH, Some(expected)) => {
                            HandshakeError::ServerKeyMismatch { expected }
                        }
                        (reason, _) => HandshakeError::Rejected {
                            reason,
                            versions: reject.versions,
                        },
                    };
                    self.fail_handshake(error);
                }
                (Frame::Retry(retry), HandshakeState::Client(c)) => {
                    c.on_retry(retry.token, now, self.local_cid)
                }
                (Frame::NoiseHello(_), HandshakeState::Server(s)) => s.send_accept = true,
                (Frame::NoiseFinish(message), HandshakeState::Server(_)) => {
                    self.on_noise_finish(now, config, &message)
                }
                _ => {}
            }
        }
    }

    /// Client: the server's NOISE_ACCEPT (spec §11.2).
    pub(super) fn on_noise_accept(&mut self, now: Instant, config: &Config, header: &Header, message: &[u8]) {
        let HandshakeState::Client(client) = &mut self.handshake else {
            return;
        };
        let PacketKind::Handshake { scid } = header.kind else {
            return;
        };
        let named = client.server_key().is_some();
        let opened = match client.on_noise_accept(message) {
            Ok(opened) => opened,
            Err(NotOpened::Unauthentic) => {
                self.stats.unauthenticated += 1;
                return;
            }
            Err(NotOpened::Failed(e)) => return self.fail_handshake(e),
        };
        if !named && config.peer_policy.check(&opened.peer) == PeerDecision::Refuse {
            return self.fail_handshake(HandshakeError::PeerRefused { peer: opened.peer });
        }
        let Some(cipher) = opened.negotiated.cipher else {
            return;
        };
        self.remote_cid = scid;
        self.negotiated = Some(opened.negotiated);
        self.apply_peer_params(config, PeerParams::from_wire(&opened.accept.params));
        self.authenticated(config, cipher, opened.peer, opened.secrets);
        // A data packet at once (spec §11.2): with IK it confirms the handshake to the
        // server; with XX the server's ACK of it tells us NOISE_FINISH arrived. Either way
        // the server need not send anything of its own to finish the handshake.
        self.control.push(Control::Ping);
        self.end_handshake(now, HandshakeStep::Answered);
        // Resent a probe period of the handshake's round trip later (RFC 9002 §6.2.1's, with
        // no ACK delay: three round trips after a first sample, and at least a millisecond),
        // doubling up to `max_probe_interval`. Three *initial* RTTs stood in for it: a
        // NOISE_FINISH lost on a 4 ms path waited 300 ms to go again
        // (`noise_finish::a_lost_noise_finish_is_resent_in_round_trips`).
        let backoff = Backoff::new(
            self.recovery.rtt().pto_base(Duration::ZERO),
            config.max_probe_interval,
        );
        self.finish = opened.finish.map(|message| {
            Box::new(Resend {
                message,
                at: now,
                backoff,
                copies: 0,
            })
        });
        self.step(Step::Confirmed);
        self.liveness.elicited(now);
        // The idle timer runs from the handshake's end (the NOISE_ACCEPT is the first
        // packet heard; handshake packets do not count for it otherwise).
        self.liveness.heard(now);
        self.connected(opened.negotiated, Some(opened.peer));
    }

    /// The handshake is done: the application hears of the connection, and the peer of the
    /// address we see it at (capability ADDRESS_DISCOVERY).
    pub(super) fn connected(&mut self, negotiated: Negotiated, peer: Option<PublicKey>) {
        self.events.push_back(Event::Connected {
            conn: self.handle,
            negotiated,
            peer,
        });
        self.report_address();
    }

    /// Server, pattern XX: the client's NOISE_FINISH, which authenticates its key and
    /// confirms the handshake (spec §11.2). A peer policy that refuses the key closes the
    /// connection with CONNECTION_REFUSED, sealed, so only the client can read it.
    pub(super) fn on_noise_finish(&mut self, now: Instant, config: &Config, message: &[u8]) {
        let HandshakeState::Server(s) = &mut self.handshake else {
            return;
        };
        let Some(noise) = s.noise.as_mut() else {
            return;
        };
        if noise.read(message).is_err() {
            self.stats.unauthenticated += 1;
            return;
        }
        let (Some(peer), Some(secrets), Some(negotiated)) =
            (noise.remote_key(), noise.secrets(), self.negotiated)
        else {
            return;
        };
        let Some(cipher) = negotiated.cipher else {
            return;
        };
        self.authenticated(config, cipher, peer, secrets);
        self.end_handshake(now, HandshakeStep::Confirmed);
        // Only a client that read our NOISE_ACCEPT could have written this.
        self.path.proven();
        self.liveness.heard(now);
        if config.peer_policy.check(&peer) == PeerDecision::Refuse {
            // The application never heard of the connection: it ends without an event.
            let reason = Reason::from_static("identity refused").unwrap_or_default();
            return self.close_with(
                now,
                CloseCode::Transport(TransportErrorCode::CONNECTION_REFUSED),
                reason,
            );
        }
        self.step(Step::Confirmed);
        self.liveness.elicited(now);
        self.connected(negotiated, Some(peer));
    }

    pub(super) fn send_handshake(&mut self, now: Instant, config: &Config, buf: &mut [u8]) -> Option<usize> {
        let idle_timeout = self.idle_timeout(config);
        let kind = PacketKind::Handshake { scid: self.local_cid };
        let header = self.header(now, kind);
        let end = MIN_DATAGRAM_SIZE.min(buf.len());
        let mut w = PacketWriter::new(&mut buf[..end], &header).ok()?;
        match &mut self.handshake {
            HandshakeState::Client(c) => {
                if !c.take_send(now) {
                    return None;
                }
                w.push(&c.hello_frame()?).ok()?;
                w.pad_to(MIN_DATAGRAM_SIZE).ok()?;
            }
            HandshakeState::Server(s) => {
                // A copy of the HELLO (a duplicate included) is answered by the same ACCEPT,
                // which in version 1 carries the ACK; nothing else can carry it before
                // confirmation. (Version 2 records no handshake packet: nothing to ACK.)
                let ack_due = self.received.deadline().is_some_and(|d| d <= now);
                if (!s.send_accept && !ack_due) || now >= s.answer_until {
                    return None;
                }
                let answer = s.answer.clone();
                let ack = self.received.build(now);
                let written = ack.map_or(Ok(()), |ack| w.push(&Frame::Ack(ack)));
                if written.and_then(|()| w.push(&answer)).is_err() {
                    // No room within spec §10.2's budget: the ACCEPT goes once there is.
                    return None;
                }
                s.send_accept = false;
                s.sent.sent(now);
                // A client that reads this answer is connected, and gives up on us only
                // after its idle timeout without a word: keep the attempt at least that
                // long, so that a client is never connected to a server that forgot it
                // (spec §8, Handshake).
                s.deadline = s.deadline.max(now + idle_timeout);
            }
            HandshakeState::Done => return None,
        }
        let len = w.finish().ok()?;
        self.recovery.take_pn();
        Some(len)
    }

    /// Client, pattern XX: NOISE_FINISH, again on its backoff until the server's first data
    /// packet shows it arrived (spec §11.2).
    pub(super) fn send_finish(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let header = self.header(now, PacketKind::Handshake { scid: self.local_cid });
        let end = MIN_DATAGRAM_SIZE.min(buf.len());
        let finish = self.finish.as_mut()?;
        let mut w = PacketWriter::new(&mut buf[..end], &header).ok()?;
        w.push(&Frame::NoiseFinish(finish.message.clone())).ok()?;
        let len = w.finish().ok()?;
        finish.at = now + finish.backoff.take();
        let earlier = finish.copies;
        finish.copies = finish.copies.saturating_add(1);
        let number = self.recovery.take_pn();
        if earlier >= 2 {
            // The data packets sent since the first copy may have reached the server before
            // any copy did, and waited there for the keys: their acknowledgements time that
            // wait as well as the path, so they give no RTT sample (a handshake stalled 11 s
            // by loss gave an 11.2 s sample of a 25 ms path). Not at the second copy: on a
            // path longer than the initial RTT a client with no sample yet sends one before
            // the server's answer can come, and nothing waited; the wait behind one lost
            // copy is one backoff, as Karn's rule bounds the handshake's own samples.
            self.recovery.time_from(number);
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_shows_the_handshake_table() {
        let section = crate::transitions::table_section(HANDSHAKE_TRANSITIONS, "Client", &["Done"]);
        crate::transitions::assert_spec_shows("handshake", &section);
    }

    #[test]
    fn only_the_side_s_own_step_ends_its_handshake() {
        let mut server = HandshakeState::Server(Box::new(Answering {
            answer: Frame::Ping,
            noise: None,
            send_accept: false,
            sent: handshake::SentOnce::NotYet,
            resend: Instant::ZERO,
            backoff: handshake::Backoff::new(Duration::ZERO, Duration::ZERO),
            answer_until: Instant::ZERO,
            deadline: Instant::ZERO,
        }));
        // A server is not done by reading an answer, only by the client's confirmation.
        assert!(!server.step(HandshakeStep::Answered));
        assert_eq!(server.phase(), HandshakePhase::Server);
        assert!(server.step(HandshakeStep::Confirmed));
        assert_eq!(server.phase(), HandshakePhase::Done);
        // Done is final.
        assert!(!server.step(HandshakeStep::Confirmed) && !server.step(HandshakeStep::Answered));
    }
}
