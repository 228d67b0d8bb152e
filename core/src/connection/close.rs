//! Ending a connection (spec/protocol.md §7, Close; the `lifecycle` table): the
//! application's close with its linger, a protocol violation, the peer's CLOSE, a silent
//! end, and the CLOSE datagram sent (again, once per packet received while closing).
//!
//! Inputs: the application's `close`, a `ViolationKind`, the peer's CLOSE, timers.
//! Outputs: lifecycle steps, `Event::Closed` (once), CLOSE datagrams.

use super::*;

impl Connection {
    /// A datagram for this connection passed its checksum but broke the protocol
    /// (spec/protocol.md §6): close, telling the peer the code of `kind`.
    pub(crate) fn protocol_error(&mut self, now: Instant, config: &Config, kind: ViolationKind) {
        if self.state == State::Handshaking || self.is_open() {
            self.violated(now, kind);
            self.refresh_timers(config);
        }
    }

    /// Closes for a protocol violation: the peer is told the code, and a few words.
    pub(super) fn violated(&mut self, now: Instant, kind: ViolationKind) {
        let reason = Reason::from_static(kind.reason()).unwrap_or_default();
        self.close_with(now, CloseCode::Transport(kind.code()), reason);
        self.closed(CloseReason::ProtocolViolation { kind });
    }

    /// The connection ended: the application is told why, with the final counters.
    pub(super) fn closed(&mut self, reason: CloseReason) {
        if !self.closing.report() {
            // Ended while lingering after the application's close: it was told then.
            return;
        }
        let stats = Box::new(self.stats());
        self.events.push_back(Event::Closed {
            conn: self.handle,
            reason,
            stats,
        });
    }

    /// Ends the connection without a word to the peer (it is gone, or timed out).
    pub(super) fn close_silently(&mut self, reason: CloseReason) {
        self.recovery.drain();
        self.step(Step::Silent);
        self.closed(reason);
    }

    /// Closes the connection with an application code. Once everything the application
    /// wrote and every receipt we owe is acknowledged (at once if nothing waits; at most
    /// [`LINGER`] or three PTOs later), CLOSE goes out, and the connection stays three PTOs
    /// more to answer stragglers with it (spec §8, Liveness and close).
    pub(crate) fn close(&mut self, now: Instant, code: u64, reason: Reason) {
        match self.state {
            State::Established => {
                self.closing.keep(Close {
                    code: CloseCode::Application(code),
                    reason,
                });
                let until = now + self.recovery.pto().saturating_mul(3).max(LINGER);
                self.step(Step::AppClosed { until });
                self.closed(CloseReason::Local { code });
                // The linger waits for every receipt's acknowledgement: those in lazy
                // packets go again, with a PING (`receipts_need_ping`).
                self.resend_lazy_receipts();
                if self.linger_done() {
                    self.end_linger(now);
                }
            }
            // Nothing can be said to the peer before the handshake is done.
            State::Handshaking => {
                self.step(Step::AppClosed { until: now });
                self.closed(CloseReason::Local { code });
            }
            _ => {}
        }
    }

    /// Whether a lingering close has nothing left to wait for: no packet of ours waits for
    /// its acknowledgement, no written byte for its sending, no receipt we owe for its
    /// acknowledgement, and no stream's end (STOP_SENDING, RESET_STREAM) for its sending:
    /// a stream stopped or reset just before the close would otherwise leave its peer
    /// with only the CLOSE, not the stream's code.
    pub(super) fn linger_done(&self) -> bool {
        !self.recovery.awaits_ack()
            && self.send_buffer.held() == 0
            && self.receipts.owed() == 0
            && !self.control.holds_stream_end()
    }

    /// Ends the linger: CLOSE with what the application gave.
    pub(super) fn end_linger(&mut self, now: Instant) {
        if let Some(Close { code, reason }) = self.closing.take_kept() {
            self.close_with(now, code, reason);
        }
    }

    pub(super) fn close_with(&mut self, now: Instant, code: CloseCode, reason: Reason) {
        let until = now + self.recovery.pto().saturating_mul(3);
        self.recovery.drain();
        self.closing.send(Close { code, reason });
        self.step(Step::SendClose { until });
    }

    pub(super) fn send_close(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let frame = self.closing.next_frame()?;
        let header = self.header(now, PacketKind::Data);
        let end = MIN_DATAGRAM_SIZE.min(buf.len());
        let mut w = PacketWriter::new(&mut buf[..end], &header).ok()?;
        // What arrived is acknowledged in the same packet, ahead of the CLOSE (spec §4.11):
        // a peer whose last bytes crossed our decision to close learns they were delivered
        // instead of counting them cut short.
        if let Some(ack) = self.received.build(now).map(Frame::Ack) {
            let room = frame.encoded_len().ok()? + ack.encoded_len().ok()?;
            if room <= w.remaining() {
                w.push(&ack).ok()?;
            }
        }
        // Receipts still owed (a linger that ran out) go with it, as many as fit: the
        // peer reads them before the CLOSE.
        for (id, delivery) in self.receipts.owed_frames() {
            let receipt = Frame::Receipt { id, delivery };
            let room = frame.encoded_len().ok()? + receipt.encoded_len().ok()?;
            if room > w.remaining() || w.push(&receipt).is_err() {
                break;
            }
        }
        w.push(&frame).ok()?;
        let len = seal(&mut self.crypto, w, header.number)?;
        self.recovery.take_pn();
        Some(len)
    }
}
