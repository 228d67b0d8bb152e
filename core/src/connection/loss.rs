//! What an acknowledgement's outcome does to the connection (spec/protocol.md §8, Loss and
//! retransmission; RFC 9002): acknowledged frames released, lost ones queued again, the
//! congestion controller and the pacer fed, the retransmission budget checked; and a new
//! path's fresh start (spec §8, A new path; RFC 9000 §9.4).
//!
//! Inputs: the `recovery::Outcome` of an ACK, or the packets a timer declared lost; a move
//! to a new path. Outputs: stream and control state updated, `Event::Writable` when room
//! opened, or a close when retransmissions pass `Config::max_retransmission_ratio`.

use super::*;

/// Where packets declared lost were lost, for what congestion control is told of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LostIn {
    /// In flight on the path, as loss detection found (an ACK's thresholds or the loss
    /// timer): congestion, unless module rules say otherwise (a probe of the path's size,
    /// a packet of the path before a move).
    Flight,
    /// In an outage: the ACK that declared them ended a silence of persistent congestion
    /// (RFC 9002 §7.6), and the packets it found lost are the silence's, which says nothing
    /// of the path's capacity. Congestion control is not told of them: BBR, whose window
    /// returns with that ACK, took them for a congestive round, which capped its flight
    /// at a fraction of the little it had sent before an outage early in a connection, and
    /// then crawled back over seconds (tests/congestion.md, "An outage in Startup").
    Outage,
}

impl Connection {
    pub(super) fn on_ack_outcome(&mut self, now: Instant, config: &Config, ack: &Ack, outcome: &mut Outcome) {
        // Told first: a controller that undoes a reduction for them grows from the window
        // it restored.
        for spurious in &outcome.spurious {
            self.cc.on_spurious_loss(spurious);
        }
        let acked = &outcome.acked;
        if let Some(newest) = acked.newest {
            let rtt = self.recovery.rtt();
            let fresh = acked.largest;
            self.cc.on_ack(&AckEvent {
                now,
                bytes_acked: acked.bytes,
                newest_sent: newest,
                rtt: RttSample {
                    latest: rtt.latest(),
                    smoothed: rtt.smoothed(),
                    min: rtt.min(),
                },
                one_way_delay: fresh.then_some(ack.one_way_delay),
                bytes_in_flight: self.recovery.bytes_in_flight(),
                app_limited: self.gate.app_limited(),
                rate: outcome.rate,
            });
        }
        // The size limit follows from what these decide.
        for (number, _) in acked.slots().filter_map(|slot| self.recovery.acked_packet(slot)) {
            // A size above the base confirmed after a black hole ends the fallback.
            if self.mtu.on_acked(now, number) && self.black_hole.detected() {
                self.black_hole.clear();
            }
        }
        // (Probes are sized to test the path, and the old path's packets say nothing of
        // this one.)
        let large_lost = outcome
            .lost
            .iter()
            .filter(|p| {
                p.size() > MIN_DATAGRAM_SIZE
                    && !self.mtu.is_probe(p.number)
                    && self.recovery.on_current_path(p.number)
            })
            .count();
        let recovery = &self.recovery;
        match self.black_hole.on_acked(
            now,
            acked.slots().filter_map(|slot| recovery.acked_packet(slot)),
            large_lost,
            recovery.next_pn(),
        ) {
            Verdict::FellBack => self.fell_back(now, config),
            Verdict::Raised => self.mtu.start_over(now),
            Verdict::Same => {}
        }
        let receipts = self.receipts_on();
        // Each packet's frames, read where the ACK left them (module `recovery`, `Acked`):
        // every one now, as recovery keeps their places until then.
        for slot in outcome.acked.slots() {
            let frames = self.recovery.acked_frames(slot);
            for &frame in frames.iter() {
                if let SentFrame::Receipt { first, also } = frame {
                    self.receipts.on_acked(first, also);
                    self.release_slots_held_for_receipts();
                    continue;
                }
                if let SentFrame::Relay(n) = frame {
                    self.on_relay_acked(n);
                    continue;
                }
                if let SentFrame::Control(c @ (Control::ResetStream(_) | Control::StopSending(_))) = frame {
                    self.control.end_acked(c);
                    continue;
                }
                if let SentFrame::Stream { id, offset, len, fin } = frame {
                    let range = offset..offset + u64::from(len);
                    // Taken where the stream waits without its state if it can be (module
                    // `in_flight`; a stream in flight is no pipe's), else by its state.
                    let acked = self.streams.ack_in_flight(id, range.clone(), fin).or_else(|| {
                        let state = self.streams.get_mut(&id)?;
                        let send = state.half.send_mut()?;
                        let before = send.unacked();
                        send.on_acked(range, fin);
                        Some((before - send.unacked(), send.is_done() && !state.piped))
                    });
                    let Some((released, done)) = acked else {
                        continue;
                    };
                    self.send_buffer.release(released);
                    self.stats.bytes_acked += released;
                    if done {
                        self.events.push_back(Event::StreamAcked {
                            conn: self.handle,
                            stream: id,
                        });
                        self.drop_stream(id);
                        if receipts {
                            self.receipts.await_receipt(id);
                        }
                    }
                }
            }
        }
        let lost_in = if outcome.silence >= PERSISTENT_CONGESTION_PTOS {
            LostIn::Outage
        } else {
            LostIn::Flight
        };
        self.on_lost(now, core::mem::take(&mut outcome.lost), lost_in);
        // (Most ACKs name no lazy packet: no call, no list moved.)
        if !outcome.lazy_acked.is_empty() {
            self.on_lazy_acked(core::mem::take(&mut outcome.lazy_acked));
        }
        if !outcome.lazy_lost.is_empty() {
            self.on_lazy_lost(core::mem::take(&mut outcome.lazy_lost));
        }
        self.check_writable();
        self.check_retransmissions(now, config);
    }

    /// Ends the connection once its retransmissions pass the budget (spec §10.6): a peer that
    /// acknowledges a trickle, or a path that loses nearly everything, gets no endless
    /// resending.
    pub(super) fn check_retransmissions(&mut self, now: Instant, config: &Config) {
        let Some(ratio) = config.max_retransmission_ratio else {
            return;
        };
        let budget = self
            .stats
            .bytes_acked
            .saturating_mul(u64::from(ratio))
            .saturating_add(RETRANSMISSION_ALLOWANCE);
        if self.stats.bytes_retransmitted > budget && self.is_open() {
            let reason = Reason::from_static("too lossy").unwrap_or_default();
            self.close_with(now, CloseCode::Transport(TransportErrorCode::NO_ERROR), reason);
            self.closed(CloseReason::TooLossy);
        }
    }

    /// A probe timeout fired with no stream waiting to send (RFC 9002 §6.2.4): what the
    /// oldest packet in flight carried that is sent until acknowledged (stream bytes,
    /// receipts, control and relay frames) goes again in the probes. That packet stays in
    /// flight, not declared lost: it may yet be acknowledged, and then the copy is a
    /// duplicate the receiver drops. A lost tail (a message's last packet, a request's only
    /// one, with the receipt for the reply before it) then costs a probe timeout and the
    /// copy's way across, not also the round trip of a PING's acknowledgement that would
    /// show the loss first (spec §8, Loss). With a stream waiting, the probes carry its new
    /// bytes instead, and their acknowledgement shows what was lost.
    pub(super) fn probe_with_oldest(&mut self) {
        if (0..Priority::COUNT).any(|class| self.streams.waiting(class) > 0) {
            return;
        }
        let Some(frames) = self.recovery.oldest_frames() else {
            return;
        };
        for &frame in frames.iter() {
            self.send_again(frame);
        }
    }

    /// Queues what `frame` carried to go again, if it still must: a packet that held it was
    /// lost, or a probe copies it. Stream bytes already acknowledged through another copy,
    /// and receipts, relay and control frames acknowledged or no longer needed, stay as
    /// they are; an application datagram never goes again.
    fn send_again(&mut self, frame: SentFrame) {
        match frame {
            SentFrame::Stream { id, offset, len, fin } => {
                if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.half.send_mut()) {
                    self.stats.bytes_retransmitted += send.on_lost(offset..offset + u64::from(len), fin);
                    self.streams.queue(id);
                }
            }
            SentFrame::Control(c) => self.on_control_lost(c),
            SentFrame::Receipt { first, also } => self.receipts.on_lost(first, also),
            SentFrame::Relay(n) => self.on_relay_lost(n),
            SentFrame::Datagram => {}
        }
    }

    /// Tells the application once a refused write would fit.
    pub(super) fn check_writable(&mut self) {
        if self.send_buffer.writable() {
            self.events.push_back(Event::Writable { conn: self.handle });
        }
    }

    /// The peer is at a new IP address, or we are (spec §8, A new path): how large a
    /// datagram the path carries is unknown again. Black-hole state is forgotten and the MTU
    /// search starts over from the base size at once, a size every path
    /// carries: on a narrower path the first packets, among them the one that proves the
    /// new address, would otherwise be lost for their size until black-hole detection
    /// noticed, seconds later (tests/path_changes.rs, the narrower mobile network). Done
    /// at the move, not at its proof: the packets that prove it go at the size chosen here.
    pub(super) fn search_new_path_size(&mut self, now: Instant) {
        self.black_hole.clear();
        self.mtu.start_over(now);
    }

    /// The connection's path is a new one, on which `first` is the first packet sent (spec
    /// §8, A new path; RFC 9000 §9.4): congestion control starts over with a new controller
    /// of the connection's kind, and the RTT estimate from the initial RTT. What was learned
    /// on the old path says nothing of this one: a BBR estimate of a fast path would pace
    /// into a slow one's queue, and a window of two of its short BDPs would starve a long
    /// one for seconds (tests/congestion.md, "A path whose rate falls").
    pub(super) fn new_path(&mut self, config: &Config, first: u64) {
        self.restart_congestion(config);
        self.recovery.new_path(first, config.initial_rtt);
        self.received.new_path();
    }

    /// Black-hole detection fell back to the base size: the losses that showed the black
    /// hole were of the packets' size, not of the path's capacity (RFC 8899 §4.4 says as
    /// much of a probe's), yet congestion control took each for congestion, and two probe
    /// timeouts in a row for persistent congestion: the window at its minimum, and a
    /// loss-based controller then climbing back at a datagram per RTT (NewReno took 14 s to
    /// half the rate of a 20 Mbit/s, 100 ms path; tests/path_changes.rs). It starts over as
    /// on a new path, from the next packet (the first at the base size); the RTT estimate
    /// stands, the small probes kept measuring it.
    fn fell_back(&mut self, now: Instant, config: &Config) {
        self.mtu.on_black_hole(now);
        self.restart_congestion(config);
        self.recovery.count_from(self.recovery.next_pn());
    }

    /// A new congestion controller of the connection's kind, for the datagram size now.
    fn restart_congestion(&mut self, config: &Config) {
        let algorithm = self.congestion.as_deref().unwrap_or(&config.congestion);
        self.cc = algorithm.build(self.datagram_size(config, usize::MAX));
    }

    pub(super) fn on_lost(&mut self, now: Instant, lost: Vec<SentPacket>, lost_in: LostIn) {
        // A large probe after a black hole tests the path's size, not its capacity: its loss
        // is no congestion signal (RFC 8899 §4.4), nor its late arrival one to undo; nor is
        // the loss of a packet sent on the path before a move (RFC 9000 §9.4), nor that of
        // one an outage took ([`LostIn::Outage`]).
        let congestive = lost
            .iter()
            .filter(|p| {
                let probe = self.black_hole.on_lost(now, p.number) || self.mtu.on_lost(now, p.number);
                let uncounted =
                    probe || !self.recovery.on_current_path(p.number) || lost_in == LostIn::Outage;
                if uncounted {
                    self.recovery.loss_not_counted(p.number);
                }
                !uncounted
            })
            .fold(None, |acc: Option<(Instant, usize)>, p| {
                let (newest, bytes) = acc.unwrap_or((p.time, 0));
                Some((newest.max(p.time), bytes + p.size()))
            });
        if let Some((newest, bytes_lost)) = congestive {
            let before = self.cc.window();
            self.cc.on_loss(&LossEvent {
                now,
                bytes_lost,
                newest_sent: newest,
                bytes_in_flight: self.recovery.bytes_in_flight(),
            });
            if self.cc.window() < before {
                self.stats.congestion_events += 1;
            }
        }
        for packet in lost {
            self.stats.packets_lost += 1;
            for &frame in packet.frames.iter() {
                if frame == SentFrame::Datagram {
                    self.stats.app_datagrams_lost += 1;
                }
                self.send_again(frame);
            }
        }
    }
}
