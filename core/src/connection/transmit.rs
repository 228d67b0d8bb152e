//! Filling datagrams (spec/protocol.md §3, §4; §8 Pacing and Priorities): the next datagram
//! this connection sends, if any: its close, its handshake, or a data packet with an ACK,
//! control frames and stream data by priority class and round robin, within the congestion
//! window, the pacer, the anti-amplification limit and the peer's credit; sealed and
//! recorded in recovery.
//!
//! Inputs: the time, the endpoint's buffer. Outputs: the datagram's length, or nothing
//! (with the pacer's wake time set when it held one back).

use super::*;

/// Below this much room a datagram takes no more STREAM frames.
pub(super) const MIN_STREAM_ROOM: usize = 24;

/// Where in a datagram a stream's turn begins, among the streams of its class
/// (`Connection::stream_turn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TurnBegins {
    /// Before any other stream of its class: the turn has the room its class has.
    FirstOfClass,
    /// Behind other streams' data of its class: the turn has what they left.
    BehindOthers,
}

/// The next STREAM frame of stream `id` that fits in `room` bytes (its own fields included),
/// with at most `credit` new bytes; the open fields ride on the frame at offset 0.
pub(super) fn next_stream_frame(
    id: StreamId,
    send: &mut SendStream,
    header: &KeptHeader,
    room: usize,
    credit: u64,
) -> Option<StreamFrame> {
    let frame = |offset: u64, data: Bytes, fin: bool| {
        // The opening fields ride only on offset 0: no label clone for the other frames.
        let opening = (offset == 0).then_some(header);
        StreamFrame {
            id,
            offset,
            data,
            fin,
            total_len: opening.and_then(KeptHeader::total_len),
            label: opening.and_then(|h| h.label().cloned()),
            digest: opening.and_then(KeptHeader::digest).map(Box::new),
        }
    };
    // A stream's turn ends with this call; without the check, it built the frame's fields
    // to size a chunk that does not exist (a message's stream: every other call).
    if !send.has_data() {
        return None;
    }
    let fields = frame(send.next_offset(), Bytes::new(), false);
    // The empty frame's 1-byte length becomes at most `varint_len(room)` bytes.
    let overhead = fields.frame_len().ok()? - 1 + crate::wire::varint::encoded_len(room as u64)?;
    let chunk = send.next_chunk(room.checked_sub(overhead)?, credit)?;
    Some(frame(chunk.offset, chunk.data, chunk.fin))
}

/// The timers' inputs that a poll sending nothing can move: compared before and after, so
/// that such a poll rebuilds the table only if one moved (the endpoint checks the table in
/// debug and fuzzing builds, so an input missing here shows in the tests and under the
/// fuzzers).
#[derive(PartialEq, Eq)]
struct QuietPollInputs {
    /// A step of the lifecycle (the keys exhausted close the connection).
    state: State,
    /// The pacer holding the next datagram back.
    pacer_wake: Option<Instant>,
    /// The amplification limit keeping everything back (spec §10.2).
    starved: bool,
    /// The ACK timer, which an ACK built and then not written satisfies: one whose delay a
    /// clock jumped by centuries cannot encode
    /// (`fuzz/corpus/trace_inputs/crash-quiet-poll-cleared-the-ack-timer`).
    ack_deadline: Option<Instant>,
    /// The hint that we wait on the peer's credit, which a stream's turn sets when it
    /// reports being blocked, even if no datagram then goes (a waiting end's PINGs, spec
    /// §8, Liveness; fuzz/findings/piping.blocked-report-on-a-quiet-poll).
    awaits_credit: bool,
}

/// Ends a packet: sealed under the connection's keys if it is a version 2 data packet
/// (spec §11.4), else with its checksum trailer.
pub(super) fn seal(crypto: &mut Option<Box<Protection>>, w: PacketWriter<'_>, number: u64) -> Option<usize> {
    match crypto {
        Some(p) if w.is_sealed() => w.finish_sealed(|aad, payload| p.seal(number, aad, payload)).ok(),
        _ => w.finish().ok(),
    }
}

impl Connection {
    /// Writes the next datagram into `buf`; returns its length, or `None` if there is
    /// nothing to send now.
    pub(crate) fn poll_transmit(&mut self, now: Instant, config: &Config, buf: &mut [u8]) -> Option<usize> {
        self.clock = self.clock.max(now);
        let quiet_inputs = self.quiet_poll_inputs();
        let buf = match self.path.room() {
            Some(room) => {
                let end = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
                &mut buf[..end]
            }
            None => buf,
        };
        if self.crypto.as_ref().is_some_and(|p| p.exhausted())
            && (self.state == State::Handshaking || self.is_open())
        {
            // spec §11.5: the key may seal nothing more (the peer acknowledged nothing under
            // it, so no update could happen), or forgeries reached the integrity limit.
            self.close_silently(CloseReason::KeysExhausted);
        }
        let len = match self.state {
            State::Closed | State::Draining { .. } => None,
            State::Closing { .. } => self.send_close(now, buf),
            State::Handshaking => self.send_handshake(now, config, buf),
            State::Established | State::Lingering { .. }
                if self.finish.as_ref().is_some_and(|f| f.at <= now) =>
            {
                self.send_finish(now, buf)
            }
            State::Established => self.send_data(now, config, buf),
            State::Lingering { .. } if self.linger_done() => {
                self.end_linger(now);
                self.send_close(now, buf)
            }
            State::Lingering { .. } => self.send_data(now, config, buf),
        };
        match len {
            Some(len) => {
                self.stats.datagrams_sent += 1;
                self.path.on_sent(len);
                self.refresh_timers(config);
            }
            None => {
                // Nothing went: on an unproven address with less room than a packet needs,
                // the amplification limit (spec §10.2) keeps everything back until more
                // comes.
                self.path.starve();
                // Half of a round trip's polls send nothing (the driver asks until it gets
                // nothing): their table is rebuilt only if what such a poll can move moved
                // (`quiet_poll_inputs`; the endpoint checks the table in debug and fuzzing
                // builds).
                if self.state != State::Established || self.quiet_poll_inputs() != quiet_inputs {
                    self.refresh_timers(config);
                }
            }
        }
        len
    }

    /// What an established connection's poll can change of its timers' inputs without
    /// sending ([`QuietPollInputs`]). A handshake's poll may also give up or move its
    /// resend time: it always rebuilds.
    fn quiet_poll_inputs(&self) -> QuietPollInputs {
        QuietPollInputs {
            state: self.state,
            pacer_wake: self.gate.wake(),
            starved: self.path.starved(),
            ack_deadline: self.received.deadline(),
            awaits_credit: self.liveness.awaits_credit(),
        }
    }

    pub(super) fn header(&mut self, now: Instant, kind: PacketKind) -> Header {
        let number = self.recovery.next_pn();
        let key_phase = match (kind, self.crypto.as_mut()) {
            (PacketKind::Data, Some(p)) => p.send_phase(),
            _ => KeyPhase::Zero,
        };
        Header {
            version: self.version,
            key_phase,
            kind,
            dcid: self.remote_cid,
            number,
            number_len: match (
                kind,
                PacketNumberLen::for_packet(number, self.recovery.largest_acked()),
            ) {
                // spec §3.3: data packets use at least 2 bytes, so reordering deeper than the
                // packets in flight when one was sent does not make it unrecoverable.
                (PacketKind::Data, PacketNumberLen::One) => PacketNumberLen::Two,
                (_, len) => len,
            },
            timestamp: now.wire_timestamp(),
        }
    }

    pub(super) fn send_data(&mut self, now: Instant, config: &Config, buf: &mut [u8]) -> Option<usize> {
        let mut size = self.datagram_size(config, buf.len());
        let large = self.large_datagram_size(config, buf.len());
        // The second probe of a probe timeout may go at the base size, to tell a path that
        // drops large datagrams from one that drops everything (RFC 8899 §4.3); after a
        // fallback, a busy connection tries the large size again now and then (§5.1.2).
        // Otherwise the MTU search may probe a larger size, when the window has room for it.
        let room = self.cc.window().saturating_sub(self.recovery.bytes_in_flight());
        let probe = if self.liveness.last_probe()
            && self.black_hole.wants_probe(self.recovery.pto_count(), size)
        {
            size = MIN_DATAGRAM_SIZE.min(size);
            Probe::Small
        } else if self.black_hole.wants_raise(now) && self.recovery.bytes_in_flight() > 0 && large > size {
            size = large;
            Probe::Raise
        } else if let Some(probe) = self
            .mtu
            // The search's ceiling is both ends' maximum, not this buffer's length: given a
            // buffer too short for the next probe (the later datagrams of a batch may get
            // ones of the current size), it waits for a longer one rather than taking the
            // short buffer for the path's limit and stopping for RAISE_AFTER.
            .wants_probe(now, self.large_size_within(config.max_datagram_size, usize::MAX))
            .filter(|&p| p <= room && p <= buf.len())
        {
            size = probe;
            Probe::Mtu
        } else {
            Probe::None
        };
        let window_open = self.stream_window_open(now, size);
        let probing = self.liveness.probing();
        self.receipts.skip_stale();
        let has_content = !self.control.is_empty()
            || self.receipts.has_queued()
            || self.relay_queued()
            || window_open
            || probing;
        let ack_due = self.received.deadline().is_some_and(|d| d <= now);
        if probe == Probe::None && !has_content && !ack_due {
            // Nothing would be written. A driver asks until it gets nothing, so this is
            // every other call: it returns before a header is built.
            return None;
        }
        let header = self.header(now, PacketKind::Data);
        let mut w = PacketWriter::new(buf.get_mut(..size)?, &header).ok()?;
        let empty = w.remaining();
        let mut sent = SentFrames::new();
        let mut ack_largest = None;
        // A size probe carries no ACK: it is lost whenever the path is narrower, and the ACK
        // with it, which left the peer waiting a probe timeout for the last packets of a
        // message, two in a row now and then (tests: weir-sim's and weir-tokio's
        // path_mtu.rs). The ACK waits for the next datagram.
        let size_probe = matches!(probe, Probe::Raise | Probe::Mtu);
        if !size_probe && (ack_due || (self.received.has_news() && has_content)) {
            if let Some(ack) = self.received.build(now) {
                let largest = ack.largest();
                // An ACK that does not fit waits for the next datagram.
                if w.push(&Frame::Ack(ack)).is_ok() {
                    ack_largest = Some(largest);
                }
            }
        }
        if size_probe {
            // A PING padded to the large size and nothing else: its loss loses no data.
            w.push(&Frame::Ping).ok()?;
            sent.push(SentFrame::Control(Control::Ping));
            w.pad_to(size).ok()?;
        } else {
            // A grant of streams that is due but not urgent rides here, in a packet that goes
            // anyway: sent on its own as the request that made it due arrived, it cost a
            // datagram, and the peer's acknowledgement another, every half of the limit
            // (spec §8, Streams and credit).
            if self.stream_count.grant_due() {
                self.control.push(Control::MaxStreams);
            }
            // Receipts ahead of the control frames: a relay that stops a stream it had only
            // in part sends the receipt that says why with the STOP_SENDING, and the sender
            // takes whichever it reads first (spec §8, Delivery).
            if self.receipts.has_queued() {
                if self.receipts_need_ping() && !probing && w.push(&Frame::Ping).is_ok() {
                    sent.push(SentFrame::Control(Control::Ping));
                }
                self.fill_receipts(&mut w, &mut sent);
            }
            while let Some(c) = self.control.front() {
                let Some(frame) = self.control_frame(c) else {
                    self.control.pop_front();
                    continue;
                };
                if w.push(&frame).is_err() {
                    break;
                }
                self.control.pop_front();
                if c == Control::MaxStreams {
                    let path = self.recovery.rtt().min();
                    self.stream_count
                        .announced(now, path, config.max_concurrent_streams);
                }
                sent.push(SentFrame::Control(c));
            }
            self.fill_relay(&mut w, &mut sent);
            // A probe carries a PING whatever else it holds (ahead of the stream data, which
            // would fill the datagram), so that the peer acknowledges it at once rather than
            // after a second packet or its ACK delay (spec §8, Loss).
            if probing && w.push(&Frame::Ping).is_ok() {
                sent.push(SentFrame::Control(Control::Ping));
            }
            if window_open {
                // Datagrams first: they are small and stale soon, streams fill what is left.
                self.fill_datagrams(&mut w, &mut sent, empty);
                self.fill_streams(&mut w, &mut sent);
            }
        }
        let lazy = self.sends_lazily(&sent);
        let eliciting = !sent.is_empty() && !lazy;
        if sent.is_empty() && w.remaining() == empty {
            // Nothing at all was written.
            return None;
        }
        let len = seal(&mut self.crypto, w, header.number)?;
        let number = self.recovery.take_pn();
        if let Some(largest) = ack_largest {
            self.received.ack_sent(number, largest);
        }
        if eliciting {
            self.black_hole.on_sent(number, len, probe);
            if probe == Probe::Mtu {
                self.mtu.on_probe_sent(number, len);
            }
            self.liveness.on_eliciting_sent(now);
            self.recovery.on_sent(SentPacket::new(number, now, len, sent));
            self.gate.on_sent(len);
            self.cc.on_sent(now, len, self.recovery.bytes_in_flight());
        } else if lazy {
            self.recovery
                .on_sent_lazy(SentPacket::new(number, now, len, sent));
        }
        Some(len)
    }

    /// Whether new stream data may go out now: a probe may always send; otherwise the send
    /// gate decides (window, pacer; module `send_gate`), and an application-limited sender
    /// is noted in recovery too (RFC 9002 §7.8).
    pub(super) fn stream_window_open(&mut self, now: Instant, size: usize) -> bool {
        if self.liveness.probing() {
            self.gate.probe();
            return true;
        }
        let window = self.cc.window();
        let sending = Sending {
            in_flight: self.recovery.bytes_in_flight(),
            window,
            queued: !self.streams.nothing_queued() || self.datagrams.has_outgoing(),
        };
        let cc = &self.cc;
        let pace = || match cc.pacing_rate() {
            Some(rate) => Pace::Rate(rate),
            None => Pace::Window {
                window,
                slow_start: cc.in_slow_start(),
            },
        };
        match self.gate.check(now, sending, pace, self.recovery.rtt(), size) {
            Gate::Open => true,
            Gate::NothingQueued => {
                self.recovery.on_app_limited();
                false
            }
            Gate::WindowFull | Gate::Paced => false,
        }
    }

    /// Adds the receipts waiting to be sent that fit to the packet being written: as
    /// RECEIPT_RUN sets where negotiated, up to the streams a packet's sets may answer for
    /// together (spec §4.17); past that, one by one.
    fn fill_receipts(&mut self, w: &mut PacketWriter<'_>, sent: &mut SentFrames) {
        let runs = self.receipt_runs_on();
        loop {
            // Streams after a set's first that the packet's sets may still answer for (none:
            // sets not negotiated); the packet's rules keep the count.
            let more_max = match runs {
                true => w.receipt_run_room().saturating_sub(1),
                false => 0,
            };
            let Some((id, delivery, also)) = self.receipts.next_to_send(more_max) else {
                break;
            };
            // Each frame made where it is pushed: a frame of either kind, made first, is
            // dropped through the whole enum's drop glue.
            let pushed = match (also, delivery) {
                (1.., Delivery::Delivered { relays }) => w.push(&Frame::ReceiptRun(ReceiptRun {
                    first: id,
                    also,
                    relays,
                })),
                _ => w.push(&Frame::Receipt { id, delivery }),
            };
            if pushed.is_err() {
                break;
            }
            self.receipts.sent(id, also);
            sent.push(SentFrame::Receipt { first: id, also });
        }
    }

    /// Adds STREAM frames while there is room: higher priority classes first; within a
    /// class streams take turns (round robin), and a stream's turn lasts until it has
    /// nothing more to send or has had a datagram's room (spec §8, Priorities). Notes what
    /// waits on credit, to report.
    pub(super) fn fill_streams(&mut self, w: &mut PacketWriter<'_>, sent: &mut SentFrames) {
        for class in 0..Priority::COUNT {
            let mut begins = TurnBegins::FirstOfClass;
            let mut turns = self.streams.waiting(class);
            while turns > 0 && w.remaining() > MIN_STREAM_ROOM {
                turns -= 1;
                let Some(id) = self.streams.next_turn(class) else {
                    break;
                };
                let room = w.remaining();
                self.stream_turn(id, w, sent, begins);
                if w.remaining() < room {
                    begins = TurnBegins::BehindOthers;
                }
            }
        }
    }

    /// One stream's turn in `fill_streams`, begun where `begins` says. A turn that began
    /// behind other streams' data of its class and that the datagram's end cut short goes on
    /// first in its class in the next datagram, and ends there: a turn has at least the room
    /// its class has in one datagram, and at most that and a tail. Put back at the end of
    /// the round instead, the stream left its message's first piece waiting at the receiver
    /// until every other stream had had a turn (over a 40 ms round trip with 4,096 messages
    /// of 1 KiB open, each of those pieces held a receive block of 256 KiB alive for round
    /// trips, and the message's stream for as long). Counted within its class, so that a
    /// stream behind a higher class's data goes on once, not as long as that class leaves
    /// it only tails.
    pub(super) fn stream_turn(
        &mut self,
        id: StreamId,
        w: &mut PacketWriter<'_>,
        sent: &mut SentFrames,
        begins: TurnBegins,
    ) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(send) = state.half.send_mut() else { return };
        while w.remaining() > MIN_STREAM_ROOM {
            let credit = self.send_credit.available();
            let before = send.sent_end();
            let Some(frame) = next_stream_frame(id, send, &state.header, w.remaining(), credit) else {
                break;
            };
            self.send_credit.consume(send.sent_end() - before);
            let record = SentFrame::Stream {
                id,
                offset: frame.offset,
                // Within one datagram, so it fits.
                len: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
                fin: frame.fin,
            };
            let (range, fin) = (frame.offset..frame.end(), frame.fin);
            if w.push(&Frame::Stream(frame)).is_err() {
                // Sized to fit, so this does not happen; if it did, the bytes are resent.
                send.on_lost(range, fin);
                break;
            }
            sent.push(record);
        }
        // In its class's queue again if it still has something to send (`queue_at` checks):
        // at the front if its turn goes on, else at the end.
        let goes_on = begins == TurnBegins::BehindOthers && w.remaining() <= MIN_STREAM_ROOM;
        let place = if goes_on { Place::Front } else { Place::Back };
        let stream_blocked = send.report_blocked();
        let wants_credit = send.has_new_data();
        self.streams.queue_at(id, place);
        // With nothing left but its acknowledgements it may wait for them without its state
        // (module `in_flight`, whose checks say when: not queued again, not blocked).
        self.streams.keep_in_flight(id, self.spare_streams());
        if stream_blocked.is_some() {
            self.stats.stream_data_blocked += 1;
            self.control.push(Control::StreamDataBlocked(id));
            self.liveness.blocked();
        }
        if wants_credit && self.send_credit.take_blocked().is_some() {
            self.stats.data_blocked += 1;
            self.control.push(Control::DataBlocked);
            self.liveness.blocked();
        }
    }

    /// The largest datagram this connection sends, within a buffer of `buf_len` bytes.
    pub(super) fn datagram_size(&self, config: &Config, buf_len: usize) -> usize {
        self.datagram_size_within(config.max_datagram_size, buf_len)
    }

    /// [`datagram_size`](Self::datagram_size) with our configured limit given as is.
    pub(super) fn datagram_size_within(&self, limit: u16, buf_len: usize) -> usize {
        self.large_size_within(limit, buf_len).min(self.path_mtu())
    }

    /// The largest datagram the path is known to carry: what the MTU search confirmed,
    /// unless black-hole detection fell back to the base size.
    pub(super) fn path_mtu(&self) -> usize {
        self.mtu
            .confirmed()
            .min(self.black_hole.limit().unwrap_or(usize::MAX))
    }

    /// The datagram size both ends allow, whatever black-hole detection decided.
    pub(super) fn large_datagram_size(&self, config: &Config, buf_len: usize) -> usize {
        self.large_size_within(config.max_datagram_size, buf_len)
    }

    fn large_size_within(&self, limit: u16, buf_len: usize) -> usize {
        usize::from(limit.min(self.peer.max_datagram_size))
            .max(MIN_DATAGRAM_SIZE)
            .min(buf_len)
    }
}
