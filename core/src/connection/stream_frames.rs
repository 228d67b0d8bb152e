//! What the peer's stream frames do (spec/protocol.md §4.4-§4.8, §4.17; §8 Streams and
//! Delivery): STREAM into reassembly within credit and budget, RESET_STREAM and
//! STOP_SENDING, and delivery receipts both ways.
//!
//! Inputs: one frame each, already decoded and authenticated. Outputs: stream state changed,
//! events queued (`StreamOpened`, `StreamReadable`, `StreamReset`, `Delivered`, ...),
//! control frames queued, or the `ViolationKind` that closes the connection.

use super::*;
use crate::wire::request::StreamRole;

pub(super) fn recv_violation(e: RecvError) -> ViolationKind {
    match e {
        RecvError::FlowControl => ViolationKind::PastCredit,
        RecvError::FinalSize => ViolationKind::FinalSize,
        RecvError::Rewritten => ViolationKind::RewrittenBytes,
        RecvError::OverBudget => ViolationKind::ReceiveBudget,
    }
}

impl Connection {
    pub(super) fn on_stream(&mut self, config: &Config, frame: StreamFrame) -> Result<(), ViolationKind> {
        let id = frame.id;
        if id.initiator() == self.side {
            // Streams are unidirectional: the peer cannot send on one we opened.
            return Err(ViolationKind::WrongStreamDirection);
        }
        self.open_peer_streams(config, id)?;
        let Some(state) = self.streams.get_mut(&id) else {
            // Finished and gone: a late copy.
            return Ok(());
        };
        let Some(recv) = state.half.recv_mut() else {
            return Ok(());
        };
        let mut announce = false;
        let gathering = state.reading.gathering().is_some();
        if frame.offset == 0 && state.reading.step(ReadStep::Opened) {
            if let Some(total) = frame.total_len {
                recv.set_total_len(total).map_err(recv_violation)?;
            }
            let header = StreamHeader {
                label: frame.label,
                total_len: frame.total_len,
                digest: frame.digest.map(|d| *d),
            };
            state.header = KeptHeader::new(header.clone());
            state.verifier = header.digest.map(|d| Box::new(Verifier::new(d)));
            // A request or a reply (spec §8, Requests) is the request layer's, found by its
            // `StreamOpened` and read by id: offered, a plain accept or message read would
            // take it.
            if !state.reading.is_stopped() && !StreamRole::is_reserved(header.label.as_ref()) {
                state.reading.set_offered(true);
                self.inbox.offer(id);
            }
            self.events.push_back(Event::StreamOpened {
                conn: self.handle,
                stream: id,
                header,
            });
            // The connection's streams grew their windows: this one starts with the grown
            // window, and the peer, which assumes the configured credit for a new stream, is
            // told at once (only if the stream may be longer than that credit).
            announce = recv.start_with_window(self.receive_credit.stream_window());
        }
        let before = recv.cost();
        let grown = recv
            .insert_from(frame.offset, frame.data, frame.fin, &mut self.datagram)
            .map_err(recv_violation)?;
        self.receive_credit.add_cost(recv.cost().saturating_sub(before));
        self.receive_credit.on_used(grown)?;
        match &mut state.reading {
            Reading::Stopped | Reading::StoppedUnannounced | Reading::Broken => {
                // The application gave up on it (or its pipe did): what arrives is dropped
                // (`RecvStream::stop`) and its credit released. Once the rest up to its end
                // has come (the sender had finished it before the stop reached it, so no
                // reset follows), it is over: it frees its place for the peer's next stream
                // (spec §4.5), unread, unless the application is yet to read that its pipe
                // broke.
                let broken = matches!(state.reading, Reading::Broken);
                state.released += grown;
                let over = !recv.awaits_data() && !recv.is_tapped() && !broken;
                self.receive_credit.release(grown);
                self.update_connection_credit();
                if over {
                    self.remove_recv(id);
                    return Ok(());
                }
            }
            Reading::Open { .. } => {
                if gathering {
                    // Told once whole, by `gather_arrived` below.
                } else if (recv.is_readable() || recv.is_finished())
                    && !state.reading.set_readable_signaled(true)
                {
                    self.events.push_back(Event::StreamReadable {
                        conn: self.handle,
                        stream: id,
                    });
                }
            }
            Reading::Unannounced => {}
        }
        // What the peer's streams cost the heap, which credit does not count, stays within
        // the connection's budget (spec §10.3). The estimate only grows here, so it is never
        // under the real cost; it is summed again only when it passes the budget, and past
        // it, the peer's streams are compacted before that is called a violation.
        let budget = budget(self.receive_credit.window(), self.stream_count.concurrent());
        if self.receive_credit.cost() > budget {
            let mut cost = self.peer_streams_cost();
            if cost > budget {
                self.compact_peer_streams();
                cost = self.peer_streams_cost();
            }
            self.receive_credit.set_cost(cost);
            if cost > budget {
                return Err(ViolationKind::ReceiveBudget);
            }
        }
        // Slices the application leaves unread keep their receive buffers alive, which the
        // budget cannot see: every so often, those held since the last sweep are copied
        // (spec §10.3, "Age"). Checked here, as the peer's frames arrive, so it needs no
        // timer of its own: what a peer gone quiet left is copied by the trim
        // (`unpin_peer_streams`).
        if self.receive_credit.sweep_due(self.clock) {
            self.sweep_peer_streams();
        }
        if announce {
            self.control.push(Control::MaxStreamData(id));
        }
        if gathering {
            self.gather_arrived(id, config.advise_buffer);
        }
        Ok(())
    }

    /// How many pieces the peer's streams hold as slices of their datagrams.
    #[cfg(test)]
    pub(crate) fn peer_slices(&self) -> usize {
        self.streams
            .iter()
            .filter(|(id, _)| id.initiator() != self.side)
            .filter_map(|(_, s)| s.half.recv())
            .map(RecvStream::slices)
            .sum()
    }

    /// What the streams the peer opened cost the heap (module `stream::held`): each one's
    /// state, and what its receive half holds.
    pub(super) fn peer_streams_cost(&self) -> u64 {
        self.streams
            .iter()
            .filter(|(id, _)| id.initiator() != self.side)
            .map(|(_, s)| STREAM_COST + s.half.recv().map_or(0, RecvStream::cost))
            .sum()
    }

    /// Compacts what every stream the peer opened holds (`RecvStream::compact`: once per
    /// stream until it next holds nothing).
    fn compact_peer_streams(&mut self) {
        let side = self.side;
        for (_, stream) in self.streams.iter_mut().filter(|(id, _)| id.initiator() != side) {
            if let Some(recv) = stream.half.recv_mut() {
                recv.compact();
            }
        }
    }

    /// Copies every slice the peer's streams hold: two sweeps, the first copying what an
    /// earlier one marked and marking the rest, the second copying that. A trim's (spec §8,
    /// Liveness): the connection has been quiet a second, so every slice waited that long,
    /// and no stream frame may come to sweep while others' traffic fills new blocks.
    pub(super) fn unpin_peer_streams(&mut self) {
        self.sweep_peer_streams();
        self.sweep_peer_streams();
    }

    /// Sweeps every stream the peer opened (`RecvStream::sweep`, `Gathered::sweep`; spec
    /// §10.3, "Age").
    fn sweep_peer_streams(&mut self) {
        let side = self.side;
        let mut fell = 0;
        for (_, stream) in self.streams.iter_mut().filter(|(id, _)| id.initiator() != side) {
            if let Some(recv) = stream.half.recv_mut() {
                fell += recv.sweep();
            }
            if let Reading::Open { gathered, .. } = &mut stream.reading {
                gathered.sweep();
            }
        }
        self.receive_credit.cost_fell(fell);
    }

    /// Opens the peer's stream `id` if it is new, and with it the peer's lower-numbered
    /// streams not opened yet (spec §4.12): a frame of stream n, or its reset (§4.5), uses
    /// the peer's streams up to n.
    fn open_peer_streams(&mut self, config: &Config, id: StreamId) -> Result<(), ViolationKind> {
        let opened = self.stream_count.peer_uses(id.index())?;
        if opened.is_empty() {
            return Ok(());
        }
        for index in opened {
            let sid = StreamId::new(id.initiator(), index);
            let (window, max) = (config.stream_receive_window, config.max_stream_receive_window);
            self.streams.insert_with(sid, |s| {
                s.half =
                    Half::Recv(RecvStream::auto_tuned(window, max).with_len_limit(config.max_message_len));
            });
            self.receive_credit.add_cost(STREAM_COST);
        }
        self.grant_streams();
        Ok(())
    }

    pub(super) fn on_reset(
        &mut self,
        config: &Config,
        id: StreamId,
        code: u64,
        final_size: u64,
    ) -> Result<(), ViolationKind> {
        if id.initiator() == self.side {
            return Err(ViolationKind::WrongStreamDirection);
        }
        // A stream reset before any of it was sent is known by its reset alone: it counts
        // toward the peer's streams as its opening frame would have.
        self.open_peer_streams(config, id)?;
        let Some(state) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        let Some(recv) = state.half.recv_mut() else {
            return Ok(());
        };
        let before = recv.highest();
        recv.reset(code, final_size).map_err(recv_violation)?;
        self.receive_credit.on_used(final_size.saturating_sub(before))?;
        // No one will read the rest: the peer may use its credit elsewhere (RFC 9000 §4.5).
        let unread = final_size.saturating_sub(state.released);
        state.released += unread;
        let unannounced = matches!(state.reading, Reading::Unannounced);
        let (stopped, broken) = (state.reading.is_stopped(), state.reading.is_broken());
        self.receive_credit.release(unread);
        self.update_connection_credit();
        if unannounced {
            // Its opening frame never came (or comes late, and is then a copy of a stream
            // gone): the application was never told of it and never will be, so it ends
            // here and frees its place for the peer's next stream (spec §4.5).
            self.remove_recv(id);
            return Ok(());
        }
        if broken {
            // A fork's pipe stopped it, and the application, which reads it too, was told
            // then (PIPE_BROKEN): its next read says the same and ends it.
            return Ok(());
        }
        if stopped {
            // The application stopped it and reads it no more: the reset (the sender's
            // answer to the stop, or its own) ends it here, and frees its place for the
            // peer's next stream (spec §4.5). The application is still told.
            self.remove_recv(id);
        }
        self.events.push_back(Event::StreamReset {
            conn: self.handle,
            stream: id,
            code,
        });
        // A message being gathered never will be whole: the message read skips it.
        self.gather_arrived(id, config.advise_buffer);
        Ok(())
    }

    pub(super) fn on_stop_sending(&mut self, id: StreamId, code: u64) -> Result<(), ViolationKind> {
        if id.initiator() != self.side {
            return Err(ViolationKind::WrongStreamDirection);
        }
        if let Some(state) = self.streams.get_mut(&id).filter(|s| s.half.send().is_some()) {
            // Not finished yet: the application still writes it, and its next call is told.
            // A pipe's target is kept, finished or not, with the refusal as its receipt:
            // the pipe passes the receiver's code on to the sender (spec §8, Delivery),
            // then lets the stream go (`release_piped`).
            let unfinished = state.half.send().is_some_and(|s| !s.is_finished());
            if state.piped {
                // A receipt read first (a relay further on sends it ahead of its stop, spec
                // §8 Delivery) says how far the refusal came from: it stands.
                state.receipt.get_or_insert(Delivery::Failed { code, relays: 0 });
            }
            let kept = unfinished || state.piped;
            self.reset_send(id, code, kept.then_some(Settled::Stopped(code)));
            self.events.push_back(Event::StreamStopped {
                conn: self.handle,
                stream: id,
                code,
            });
        } else {
            // Every byte was acknowledged and the receipt is awaited: the receiver refused
            // the stream before all of it arrived, and this STOP_SENDING was overtaken by
            // the acknowledgements of the rest. It is the receiver's verdict, as a receipt
            // with its code would have been (spec §8, Delivery).
            self.on_verdict(id, Delivery::Failed { code, relays: 0 });
        }
        Ok(())
    }

    /// Whether both sides send delivery receipts (capability RECEIPTS).
    pub(super) fn receipts_on(&self) -> bool {
        self.negotiated
            .is_some_and(|n| n.capabilities.contains(crate::wire::Capabilities::RECEIPTS))
    }

    /// Whether receipts may go in runs: both sides send receipts and read RECEIPT_RUN
    /// (capabilities RECEIPTS and RECEIPT_RUNS).
    pub(super) fn receipt_runs_on(&self) -> bool {
        let both = crate::wire::Capabilities::RECEIPTS.union(crate::wire::Capabilities::RECEIPT_RUNS);
        self.negotiated.is_some_and(|n| n.capabilities.contains(both))
    }

    /// The peer's RECEIPT_RUN: a RECEIPT for each stream of the run (spec §4.17). At most
    /// `MAX_RECEIPT_RUN` streams in a packet's runs together (a decode rule), so a packet
    /// costs no more lookups than its bytes would as RECEIPTs.
    pub(super) fn on_receipt_run(&mut self, run: ReceiptRun) -> Result<(), ViolationKind> {
        if !self.receipt_runs_on() {
            // Not negotiated: a frame type this connection does not know (spec §4.1).
            return Err(ViolationKind::Malformed {
                error: DecodeError::UnknownFrameType(crate::wire::frame_types::RECEIPT_RUN),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        let delivery = Delivery::Delivered { relays: run.relays };
        run.ids().try_for_each(|id| self.on_receipt(id, delivery))
    }

    /// The receiver's verdict on our stream `id`: if its receipt was awaited, tells the
    /// application (and a writer held back by the cap on awaited receipts) and returns
    /// true; a verdict on a stream not awaited changes nothing.
    pub(super) fn on_verdict(&mut self, id: StreamId, delivery: Delivery) -> bool {
        let was_full = self.receipts.awaited_full(self.streams.len());
        if !self.receipts.take_awaited(id) {
            return false;
        }
        self.events.push_back(Event::StreamDelivery {
            conn: self.handle,
            stream: id,
            delivery,
        });
        if was_full {
            self.events
                .push_back(Event::StreamsAvailable { conn: self.handle });
        }
        true
    }

    /// The peer's RECEIPT for our stream `id` (spec §8, Delivery).
    // Inlined in both its callers, as it was in its one before RECEIPT_RUN: a call cost an
    // in-memory round trip 86 instructions more (33,312 against 33,226).
    #[inline(always)]
    pub(super) fn on_receipt(&mut self, id: StreamId, delivery: Delivery) -> Result<(), ViolationKind> {
        if !self.receipts_on() {
            // Not negotiated: a frame type this connection does not know (spec §4.1).
            let frame_type = match delivery {
                Delivery::Delivered { .. } => crate::wire::frame_types::RECEIPT,
                Delivery::Failed { .. } => crate::wire::frame_types::RECEIPT_FAILED,
            };
            return Err(ViolationKind::Malformed {
                error: DecodeError::UnknownFrameType(frame_type),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        if id.initiator() != self.side {
            return Err(ViolationKind::WrongStreamDirection);
        }
        if self.on_verdict(id, delivery) {
            return Ok(());
        }
        let Some(state) = self.streams.get_mut(&id) else {
            // A copy of a receipt already taken, or one for a stream we reset.
            return Ok(());
        };
        let Some(send) = state.half.send() else {
            return Ok(());
        };
        if state.piped {
            // The pipe reads it (`pipe_target`). A refusal of bytes not all acknowledged
            // resets the target too, as for a stream of the application's (`end_refused`):
            // a relay further on that stopped it lets it go on the reset.
            state.receipt = Some(delivery);
            if let (Delivery::Failed { code, .. }, false) = (delivery, send.is_done()) {
                self.reset_send(id, code, Some(Settled::Receipt(delivery)));
            }
            return Ok(());
        }
        // The receiver can have read to the end only of a stream we ended, or one whose
        // announced total length we wrote in full (it need not wait for the FIN).
        let complete = send.is_finished() || state.header.total_len() == Some(send.write_end());
        match delivery {
            Delivery::Delivered { .. } if complete => self.end_with_receipt(id, delivery),
            Delivery::Delivered { .. } => {}
            Delivery::Failed { code, .. } => self.end_refused(id, code, delivery),
        }
        Ok(())
    }

    /// A failed receipt came for our stream `id` before every byte was acknowledged: the
    /// final receiver refused it, perhaps behind a relay that had only its start and
    /// stopped the rest (spec §8, Delivery). The stream is reset, so that whoever stopped
    /// it lets it go (a receiver that has it whole ignores the reset), and the application
    /// is told the receipt: at once, and, if it still writes, at its next call. No
    /// `StreamAcked`: not every byte was acknowledged.
    fn end_refused(&mut self, id: StreamId, code: u64, delivery: Delivery) {
        let unfinished = self
            .streams
            .get(&id)
            .and_then(|s| s.half.send())
            .is_some_and(|s| !s.is_finished());
        self.reset_send(id, code, unfinished.then_some(Settled::Receipt(delivery)));
        self.events.push_back(Event::StreamDelivery {
            conn: self.handle,
            stream: id,
            delivery,
        });
    }

    /// A receipt came for our stream `id` before every byte was acknowledged (or before we
    /// sent its FIN, the announced length written): the final receiver read them all, so
    /// the stream is done (its packets still in flight find no stream when acknowledged;
    /// a `finish` after it finds no stream).
    pub(super) fn end_with_receipt(&mut self, id: StreamId, delivery: Delivery) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(send) = state.half.send() else {
            return;
        };
        let unacked = send.unacked();
        self.send_buffer.release(unacked);
        self.stats.bytes_acked += unacked;
        if send.is_finished() {
            self.drop_stream(id);
        } else {
            // The application has not finished it (it wrote the announced length): its
            // `finish` is told the receipt.
            state.half = Half::Settled(Settled::Receipt(delivery));
        }
        self.events.push_back(Event::StreamAcked {
            conn: self.handle,
            stream: id,
        });
        self.events.push_back(Event::StreamDelivery {
            conn: self.handle,
            stream: id,
            delivery,
        });
        self.check_writable();
    }

    /// Owes the peer the receipt for its stream `id` (when receipts are negotiated). A
    /// relay's pipe calls this with what its next hop reported.
    pub(crate) fn send_receipt(&mut self, id: StreamId, delivery: Delivery) {
        if self.receipts_on() && self.is_open() {
            self.receipts.owe(id, delivery);
        }
    }
}
