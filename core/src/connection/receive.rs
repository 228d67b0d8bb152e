//! The receive path (spec/protocol.md §4, §7, §10.4): a decoded, authenticated packet for
//! this connection: duplicates dropped, the peer's address followed (only for the newest
//! packet, and validated before trusted), the server's handshake confirmed by the client's
//! first data packet, each frame dispatched (`on_frame`), and the packet recorded to be
//! acknowledged.
//!
//! Inputs: a `Packet` the endpoint routed here, with its source address and time. Outputs:
//! the connection's state moved by each frame (stream frames in `stream_frames`, ACKs
//! through `loss`, handshake frames in `handshaking`), or the `ViolationKind` that closes
//! it.

use super::*;

impl Connection {
    /// Handles a packet the endpoint routed here, taking its frames out of it (by
    /// reference: a packet with its kept frames is some 540 bytes, each move a copy).
    pub(crate) fn handle_packet(
        &mut self,
        now: Instant,
        config: &Config,
        from: SocketAddr,
        packet: &mut Packet,
    ) {
        self.clock = self.clock.max(now);
        if packet.header.version != self.version {
            // Another version's packet (a stale one from before a client's fallback, or a
            // forgery): nothing in it applies here.
            return;
        }
        if self.version == VERSION_2 && packet.header.kind != PacketKind::Data {
            // Not authenticated as a packet: only the Noise messages in it count, and its
            // number, address and time are not trusted with anything.
            self.on_handshake_packet_v2(now, config, packet);
            self.refresh_timers(config);
            return;
        }
        match self.state {
            State::Closed | State::Draining { .. } => return,
            State::Closing { until } => {
                // The peer closed too (its CLOSE crossed ours): it listens for nothing more,
                // so drain silently, no longer than the closing period had left. Answering
                // its CLOSE with ours, as any other packet is answered, had two ends that
                // closed at once bounce CLOSE between them for the whole closing period
                // (fuzz/findings/piping.crossed-closes). Else the peer has not seen our
                // CLOSE: send it again (once per packet received).
                if packet.frames().any(|f| matches!(f, Frame::Close(_))) {
                    let until = until.min(now + self.recovery.pto().saturating_mul(3));
                    self.step(Step::PeerClosed { until });
                    self.refresh_timers(config);
                } else {
                    self.closing.again();
                }
                return;
            }
            _ => {}
        }
        let header = packet.header;
        if header.kind == PacketKind::Data && self.finish.is_some() {
            // Only a server that read our NOISE_FINISH has the keys this packet opened with.
            self.finish = None;
        }
        if header.kind == PacketKind::Data && matches!(self.handshake, HandshakeState::Client(_)) {
            // The server sends data packets only after its ACCEPT: one that comes first
            // overtook it, and has no connection to apply to yet (its ACK would name packet
            // numbers we may not have sent). Dropped; the server repeats what matters.
            return;
        }
        if self.received.is_duplicate(header.number) {
            self.stats.duplicates_received += 1;
            // Acknowledge again only what asks for it: answering duplicate ACK-only
            // packets would let two endpoints bounce ACKs between them forever.
            if self.packet_ack_wanted(packet) == AckWanted::Promptly {
                self.received.ack_now(now);
            }
            self.refresh_timers(config);
            return;
        }
        self.stats.datagrams_received += 1;
        self.liveness.heard(now);
        // The peer's address may change (NAT rebinding): follow it, but only for the
        // highest-numbered packet yet (spec §10.4; RFC 9000 §9.3), so a copy of an older
        // packet, replayed from elsewhere, cannot lead the connection away.
        let newest = self.received.largest().is_none_or(|l| header.number > l);
        let through_circuit = newest && self.stays_direct(from);
        if through_circuit {
            // The peer sends through the circuit: it has not moved yet, or its direct path
            // went dark and it fell back. Either way our side of the direct path wants an
            // answer: a PING there reaches the peer (which then moves), or goes unanswered,
            // and its probe timeouts take us back too (`fall_back`). With something of ours
            // in flight already, its probe timeouts do the same; a PING only when none is.
            if !self.recovery.awaits_ack() {
                self.control.push(Control::Ping);
            }
        } else if newest && from != self.remote && self.is_open() {
            match self.follow(now) {
                Follow::Move => {
                    // A new address is not trusted until it acknowledges a packet sent
                    // there (spec §10.2): until then it gets at most 3x what came from it,
                    // and a PING asks for that acknowledgement.
                    let change = Move::between(self.remote, from);
                    let change = self
                        .path
                        .moved(self.datagram.len(), self.recovery.next_pn(), change);
                    if change == Move::Address {
                        self.search_new_path_size(now);
                    }
                    self.control.push(Control::Ping);
                    self.stats.migrations += 1;
                    self.remote = from;
                    // The report reads `remote` when it is sent.
                    self.report_address();
                    self.path_changed();
                }
                // The peer chases our ports (module `punch`): back to the circuit, or
                // already there; the packet is read and answered there.
                Follow::FallBack => {
                    self.fall_back(now, config);
                }
                Follow::Stay => {}
            }
        } else if newest {
            // Where the handshake's packets come from, or the address we know.
            self.remote = from;
        }
        if let HandshakeState::Server(s) = &mut self.handshake {
            match header.kind {
                // Another copy of the HELLO: the ACCEPT was lost; send it again.
                PacketKind::Handshake { .. } => s.send_accept = true,
                // The client's first data packet confirms the handshake.
                // It also proves the client receives at its address: only the ACCEPT told it
                // our connection id (spec §10.2).
                PacketKind::Data => {
                    self.path.proven();
                    self.end_handshake(now, HandshakeStep::Confirmed);
                    self.step(Step::Confirmed);
                    self.liveness.elicited(now);
                    if let Some(negotiated) = self.negotiated {
                        self.connected(negotiated, self.peer_key);
                    }
                }
            }
        }
        let mut wanted = AckWanted::Nothing;
        let mut ping = false;
        let lazy = self.lazy_receipt_acks_on();
        for frame in packet.take_frames() {
            wanted = wanted.max(frame_ack_wanted(&frame, lazy));
            ping |= matches!(frame, Frame::Ping);
            if let Err(kind) = self.on_frame(now, config, &header, frame) {
                self.violated(now, kind);
                break;
            }
            if self.state != State::Handshaking && !self.is_open() {
                // Closed by a frame: the peer's CLOSE, or our retransmission budget.
                break;
            }
        }
        if through_circuit && self.is_open() && self.peer_went_back() {
            // Its packet's acknowledgements tell: follow it back (module `punch`).
            self.fall_back(now, config);
        }
        // A client still in its handshake answers nothing it receives (RETRY and REJECT are
        // stateless, spec §3.3): only packets of an established connection, or a server's
        // handshake (whose ACK rides on its ACCEPT), are recorded to be acknowledged.
        let records = self.is_open() || (self.state == State::Handshaking && self.side == Side::Server);
        if records {
            if wanted != AckWanted::Nothing && self.is_open() {
                self.liveness.heard_eliciting();
            }
            let rtt = self.recovery.rtt().smoothed();
            self.received.on_packet(
                header.number,
                now,
                header.timestamp,
                wanted,
                config.max_ack_delay,
                rtt,
            );
            if ping {
                // A PING is a probe or a keep-alive: the sender waits on its answer to know
                // the path works (spec §8, Acknowledgements).
                self.received.ack_now(now);
                // The peer may be waiting on a receipt that went in a packet it does not
                // acknowledge at once and that may be lost: ours not yet acknowledged go
                // with the answer (spec §8, Acknowledgements).
                if lazy && self.is_open() {
                    self.resend_lazy_receipts();
                }
            }
            if matches!(self.handshake, HandshakeState::Done)
                && self.side == Side::Client
                && header.kind != PacketKind::Data
            {
                // ACCEPT: acknowledge at once, which also confirms the handshake to the server.
                self.received.ack_now(now);
            }
        }
        self.refresh_timers(config);
    }

    pub(super) fn on_frame(
        &mut self,
        now: Instant,
        config: &Config,
        header: &Header,
        frame: Frame,
    ) -> Result<(), ViolationKind> {
        match frame {
            Frame::Padding(_) | Frame::Ping => {}
            Frame::Ack(ack) => {
                // An ACK that proves the peer at a new IP address starts the new path's
                // congestion state before it is read, so that its RTT sample, taken from
                // the probe sent there, is the new path's first. (An ACK of a packet never
                // sent closes the connection below: what this did then does not matter.)
                if let Some(first) = self.path.on_acked(ack.largest()) {
                    self.new_path(config, first);
                }
                // Handshake packets are not tracked by recovery; an ACK in one only matters
                // for its packet numbers (checked against what we sent).
                // By reference: an outcome is some 200 bytes (its lists inline), and each
                // move of it a copy, three an ACK before (1.2% of an in-memory round trip,
                // when it was 400).
                match &mut self.recovery.on_ack(now, &ack) {
                    Ok(outcome) => {
                        self.received.on_peer_ack(&ack);
                        // Samples of the way back from data packets only: a version 2
                        // handshake packet, not authenticated, never gets here
                        // (`on_handshake_packet_v2`), and a version 1 handshake's ACK
                        // names the HELLO or ACCEPT, sent before the path carried anything.
                        if header.kind == PacketKind::Data {
                            self.received.on_way_back(ack.one_way_delay);
                        }
                        if let Some(p) = self.crypto.as_mut() {
                            p.on_acked(ack.largest());
                        }
                        self.on_ack_outcome(now, config, &ack, outcome)
                    }
                    Err(_) => return Err(ViolationKind::UnsentPacketAcked),
                }
            }
            Frame::Accept(accept) => self.on_accept(now, config, header, *accept),
            Frame::Reject(reject) => {
                if matches!(self.handshake, HandshakeState::Client(_)) {
                    self.fail_handshake(HandshakeError::Rejected {
                        reason: reject.reason,
                        versions: reject.versions,
                    });
                }
            }
            Frame::Retry(retry) => {
                if let HandshakeState::Client(c) = &mut self.handshake {
                    c.on_retry(retry.token, now, self.local_cid);
                }
            }
            // The endpoint creates connections from HELLO; a copy was handled above.
            Frame::Hello(_) => {}
            Frame::NoiseHello(_) | Frame::NoiseAccept(_) | Frame::NoiseFinish(_) => {}
            Frame::Stream(s) => self.on_stream(config, s)?,
            Frame::ResetStream { id, code, final_size } => self.on_reset(config, id, code, final_size)?,
            Frame::StopSending { id, code } => self.on_stop_sending(id, code)?,
            Frame::Receipt { id, delivery } => self.on_receipt(id, delivery)?,
            Frame::ReceiptRun(run) => self.on_receipt_run(run)?,
            Frame::ObservedAddress(o) => self.on_observed_address(now, config, o)?,
            Frame::Relay(r) => self.on_relay_frame(r)?,
            Frame::Datagram(d) => self.on_datagram(d)?,
            Frame::MaxData(max) => {
                self.send_credit.raise(max);
                self.liveness.credit_came();
            }
            Frame::MaxStreamData { id, max } => {
                if id.initiator() != self.side {
                    return Err(ViolationKind::WrongStreamDirection);
                }
                if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.half.send_mut()) {
                    send.set_max_data(max);
                    self.streams.queue(id);
                }
                self.liveness.credit_came();
            }
            Frame::MaxStreams(max) => {
                if self.stream_count.raise(max) {
                    self.events
                        .push_back(Event::StreamsAvailable { conn: self.handle });
                }
            }
            Frame::DataBlocked(_) | Frame::StreamDataBlocked { .. } | Frame::StreamsBlocked(_) => {
                self.stats.peer_blocked += 1;
            }
            Frame::Close(close) => {
                let until = now + self.recovery.pto().saturating_mul(3);
                self.recovery.drain();
                self.step(Step::PeerClosed { until });
                self.closed(CloseReason::Peer {
                    code: close.code,
                    reason: close.reason,
                });
            }
        }
        Ok(())
    }
}
