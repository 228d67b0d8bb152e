//! The application's stream calls on one connection (spec/protocol.md §8, Streams and
//! credit): opening, writing, finishing, resetting and stopping streams, reading them
//! contiguously or as whole messages, deferring and confirming delivery; and the stream
//! table's bookkeeping (boxes kept for reuse, stream and connection credit granted back).
//!
//! Inputs: the endpoint's commands (`endpoint/commands.rs`). Outputs: what each call
//! returns, stream state changed, control frames and events queued.

use super::gathered::Advise;
use super::*;
use crate::PIPE_BROKEN;

impl Connection {
    pub(super) fn check_established(&self) -> Result<(), ApiError> {
        if self.state == State::Established {
            Ok(())
        } else {
            Err(ApiError::NotEstablished)
        }
    }

    pub(crate) fn open_stream(&mut self, header: StreamHeader) -> Result<StreamId, ApiError> {
        let id = self.admit_stream(&header)?;
        let max_stream_data = self.peer.max_stream_data;
        self.streams.insert_with(id, |s| {
            s.half = Half::Send(SendStream::new(max_stream_data));
            s.header = KeptHeader::new(header);
        });
        Ok(id)
    }

    /// The id of a new stream of ours announcing `header`, if one may open now (else why
    /// not); the caller files it.
    fn admit_stream(&mut self, header: &StreamHeader) -> Result<StreamId, ApiError> {
        self.check_established()?;
        if self.receipts_on() && self.receipts.awaited_full(self.streams.len()) {
            // As many streams await their receipt, or may come to (any open stream, counted
            // whichever side opened it: a bound, not an exact count), as we remember: a new
            // one waits (`StreamsAvailable` follows a receipt).
            return Err(ApiError::StreamLimit);
        }
        if self.too_long_for_peer(header.total_len.unwrap_or(0)) {
            return Err(ApiError::MessageTooLong);
        }
        let index = match self.stream_count.open() {
            Ok(index) => index,
            Err(refusal) => {
                if refusal == Refusal::Report {
                    self.stats.streams_blocked += 1;
                    self.control.push(Control::StreamsBlocked);
                }
                return Err(ApiError::StreamLimit);
            }
        };
        Ok(StreamId::new(self.side, index))
    }

    /// Whether a stream of `len` bytes is longer than the peer takes (its `max_message_len`).
    pub(super) fn too_long_for_peer(&self, len: u64) -> bool {
        len > self.peer.max_message_len
    }

    pub(super) fn send_stream(&mut self, id: StreamId) -> Result<&mut StreamState, ApiError> {
        // How it ended is told even once the connection ended (it is kept for this). A
        // second lookup on the way (a small ordered map, once per call, not per byte) keeps
        // the borrow checker content.
        if let Some(settled) = self.streams.get_mut(&id).and_then(|s| s.half.take_settled()) {
            // Told once: the stream is let go of now.
            self.drop_stream(id);
            return Err(settled.error());
        }
        self.check_established()?;
        if id.initiator() != self.side {
            return Err(ApiError::WrongDirection);
        }
        match self.streams.get_mut(&id) {
            Some(s) if s.half.send().is_some() => Ok(s),
            _ => Err(ApiError::UnknownStream),
        }
    }

    /// Queues what fits of `data` in the send buffer; how many bytes were taken.
    pub(crate) fn write(&mut self, id: StreamId, mut data: Bytes) -> Result<usize, ApiError> {
        let room = self.send_buffer.room();
        let peer_max = self.peer.max_message_len;
        let state = self.send_stream(id)?;
        let total = state.header.total_len();
        let send = state.half.send_mut().ok_or(ApiError::UnknownStream)?;
        if send.is_finished() {
            return Err(ApiError::StreamFinished);
        }
        let end = send.write_end() + data.len() as u64;
        if total.is_some_and(|t| end > t) {
            return Err(ApiError::TotalLength);
        }
        if end > peer_max {
            return Err(ApiError::MessageTooLong);
        }
        if data.is_empty() {
            return Ok(0);
        }
        if room == 0 {
            self.send_buffer.want_some_of(data.len() as u64);
            return Err(ApiError::WouldBlock);
        }
        let taken = (data.len() as u64).min(room) as usize;
        data.truncate(taken);
        send.write(data);
        self.send_buffer.take(taken as u64);
        self.streams.queue(id);
        Ok(taken)
    }

    /// Whether a message of `len` bytes can be sent now (else why not).
    pub(crate) fn message_room(&mut self, len: u64) -> Result<(), ApiError> {
        self.check_established()?;
        if len > self.send_buffer.limit() || self.too_long_for_peer(len) {
            return Err(ApiError::MessageTooLong);
        }
        if len > self.send_buffer.room() {
            self.send_buffer.want(len);
            return Err(ApiError::WouldBlock);
        }
        Ok(())
    }

    /// Sends `data` as one message on a new stream, whole or not at all.
    pub(crate) fn send_message(&mut self, header: StreamHeader, data: Bytes) -> Result<StreamId, ApiError> {
        let len = data.len() as u64;
        self.message_room(len)?;
        let header = header.with_total_len(len);
        let id = self.admit_stream(&header)?;
        // The stream waits as its bytes until its first turn (module `stream_table`), what
        // `write` and `finish` would check holding by construction (the room and the peer's
        // limit were checked above, and the length is the one announced): through `write`
        // and `finish` a message cost seven lookups of its stream, 1.3% of 10,000 messages
        // of 1 KiB counted in memory (`transfer_count aes256gcm messages`, both sides).
        self.streams
            .insert_unsent(id, Unsent::new(header, data), self.peer.max_stream_data);
        self.send_buffer.take(len);
        Ok(id)
    }

    /// Sets the class a stream we send is scheduled in.
    pub(crate) fn set_priority(&mut self, id: StreamId, priority: Priority) -> Result<(), ApiError> {
        self.send_stream(id)?;
        self.streams.set_priority(id, priority);
        Ok(())
    }

    pub(crate) fn finish(&mut self, id: StreamId) -> Result<(), ApiError> {
        let state = self.send_stream(id)?;
        let total = state.header.total_len();
        let send = state.half.send_mut().ok_or(ApiError::UnknownStream)?;
        if total.is_some_and(|t| send.write_end() != t) {
            return Err(ApiError::TotalLength);
        }
        send.finish();
        self.streams.queue(id);
        Ok(())
    }

    pub(crate) fn reset_stream(&mut self, id: StreamId, code: u64) -> Result<(), ApiError> {
        self.send_stream(id)?;
        self.reset_send(id, code, None);
        Ok(())
    }

    /// Abandons our stream `id` with `code` (RESET_STREAM): its send half goes, and the
    /// stream with it unless it is kept `settled`, to tell the application how it ended.
    pub(super) fn reset_send(&mut self, id: StreamId, code: u64, settled: Option<Settled>) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(send) = state.half.take_send() else {
            return;
        };
        self.send_buffer.release(send.unacked());
        let final_size = send.sent_end();
        match settled {
            Some(settled) => state.half = Half::Settled(settled),
            None => self.drop_stream(id),
        }
        self.control.reset(id, code, final_size);
        self.check_writable();
    }

    pub(crate) fn stop_sending(&mut self, id: StreamId, code: u64) -> Result<(), ApiError> {
        self.check_established()?;
        if id.initiator() == self.side {
            return Err(ApiError::WrongDirection);
        }
        if self.receipts.held(id) == Some(Held::Read) {
            // Read to its end and held for the application's word: this is its refusal.
            return self.settle_delivery(id, Some(code));
        }
        let state = self.streams.get_mut(&id).ok_or(ApiError::UnknownStream)?;
        if state.reading.is_broken() {
            // A fork's local copy that its pipe stopped, let go of unread: the peer was
            // stopped already. It ends once nothing more of it can come.
            state.reading.step(ReadStep::Stop);
            let over = state
                .half
                .recv()
                .is_some_and(|r| r.reset_code().is_some() || !r.awaits_data());
            if over {
                self.remove_recv(id);
            }
            return Ok(());
        }
        self.stop_reading(id, code, ReadStep::Stop);
        Ok(())
    }

    /// Stops a stream the peer sends, by `step`: STOP_SENDING with `code` goes to the peer,
    /// and what arrived unread is dropped, as is what arrives after; a stream whose reset
    /// came already ends at once. Nothing happens to a stream stopped already.
    pub(super) fn stop_reading(&mut self, id: StreamId, code: u64, step: ReadStep) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        if !state.reading.is_stopped() {
            // Every byte arrived, and the application refuses them: the sender may have
            // seen them all acknowledged, so only a receipt tells it (spec §8, Delivery).
            let refused_whole = state
                .half
                .recv()
                .is_some_and(|r| !r.awaits_data() && !r.is_tapped() && r.reset_code().is_none());
            let reset_came = state.half.recv().is_some_and(|r| r.reset_code().is_some());
            if state.reading.set_offered(false) {
                self.inbox.take(id);
            }
            state.reading.step(step);
            self.receipts.forget_unread(id);
            // (Stopped, it is gathered no more.)
            self.inbox.forget(id);
            // What arrived and was not read is dropped, past a gap too, and its credit
            // released. A piped stream is piped no more: still tapped, it would end only
            // through its pipe, which then learns of the stop (`take_tapped`) and ends.
            // (Before, a sender that had finished the stream, and saw every byte
            // acknowledged before the stop came, sent no reset, and the stream held its
            // place among its streams for ever.)
            if let Some(recv) = state.half.recv_mut() {
                recv.stop(code);
                let unread = recv.highest().saturating_sub(state.released);
                state.released += unread;
                self.receive_credit.release(unread);
            }
            self.update_connection_credit();
            if reset_came {
                // The sender's reset came first, unread: nothing more of it can come and
                // the sender needs no stop (RFC 9000 §3.5), so it ends here and frees its
                // place for the peer's next stream (spec §4.5). Before, it waited for a
                // reset that had come already, and held its place for ever.
                self.remove_recv(id);
                return;
            }
            self.control.stop(id, code);
            if refused_whole {
                self.send_receipt(id, Delivery::Failed { code, relays: 0 });
                // Every byte had come: nothing more will, and it frees its place for the
                // peer's next stream (spec §4.5).
                self.remove_recv(id);
            }
        }
    }

    /// Whether a stream holds something the application was not told yet: bytes of the
    /// peer's it has not read (or their end, or a reset), or how one of ours ended before it
    /// finished it ([`Settled`]). A connection that ends with some is kept for them (module
    /// `endpoint::retained`).
    pub(crate) fn holds_untold(&self) -> bool {
        self.streams.values().any(|s| {
            matches!(s.half, Half::Settled(_))
                || matches!(s.reading, Reading::Open { .. })
                    && s.half.recv().is_some_and(RecvStream::has_news)
        })
    }

    pub(super) fn recv_stream(&mut self, id: StreamId) -> Result<&mut StreamState, ApiError> {
        if id.initiator() == self.side {
            return Err(ApiError::WrongDirection);
        }
        match self.streams.get_mut(&id) {
            Some(s) if s.half.recv().is_some() => Ok(s),
            _ => Err(ApiError::UnknownStream),
        }
    }

    /// Reads the next contiguous bytes of a stream, at most `max_len`.
    pub(crate) fn read(&mut self, id: StreamId, max_len: usize) -> Result<Read, ApiError> {
        let (now, rtt) = (self.clock, self.recovery.rtt().smoothed());
        let state = self.recv_stream(id)?;
        let recv = state.half.recv_mut().ok_or(ApiError::UnknownStream)?;
        if state.reading.is_broken() {
            // A fork whose pipe stopped the stream (`stop_piped_source`): the local copy
            // ends here for the application, as the targets' streams did, and as it was
            // told, even if the sender's reset came since. The stream itself is then
            // stopped, and ends as a stopped one does: here if nothing more of it can come,
            // else when the sender's reset or the rest arrives. Forgotten before its final
            // size is known, the bytes still on their way would count toward the
            // connection's credit at the sender but never here, which stalls the
            // connection once enough is lost (fuzz/findings/piping.send-waits-for-a-stream).
            let over = recv.reset_code().is_some() || !recv.awaits_data();
            state.reading.step(ReadStep::Stop);
            if over {
                self.remove_recv(id);
            }
            return Ok(Read::Reset { code: PIPE_BROKEN });
        }
        if let Some(code) = recv.reset_code() {
            self.remove_recv(id);
            return Ok(Read::Reset { code });
        }
        if let Some((offset, bytes)) = recv.read(max_len) {
            if let Some(v) = state.verifier.as_mut() {
                v.update(&bytes);
            }
            let credit = recv.credit_update(now, rtt);
            let grown_to = recv.window();
            state
                .reading
                .set_readable_signaled(recv.is_readable() || recv.is_finished());
            state.released += bytes.len() as u64;
            self.receive_credit.release(bytes.len() as u64);
            self.stats.bytes_read += bytes.len() as u64;
            if credit.is_some() {
                self.control.push(Control::MaxStreamData(id));
            }
            self.receive_credit.stream_window_grew(grown_to);
            self.update_connection_credit();
            return Ok(Read::Data { offset, bytes });
        }
        if recv.is_finished() {
            return Ok(match self.end_read(id) {
                Ok(()) => Read::Finished,
                Err(m) => m.into(),
            });
        }
        state.reading.set_readable_signaled(false);
        Ok(Read::Pending)
    }

    /// Gathers a whole message: [`Read::Pending`] until the stream is finished, then all of
    /// it as one [`Read::Data`] at offset 0 (copied into one buffer only if it arrived in
    /// several pieces), or [`Read::Reset`]. Refuses messages longer than `max_len`.
    /// `advise` is [`Config::advise_buffer`](crate::Config::advise_buffer), here and in the
    /// other calls that gather.
    pub(crate) fn read_message(
        &mut self,
        id: StreamId,
        max_len: u64,
        advise: Advise,
    ) -> Result<Read, ApiError> {
        if let Some(other) = self.gather(id, max_len, advise)? {
            return Ok(other);
        }
        let message = match self.streams.get_mut(&id).map(|s| &mut s.reading) {
            Some(Reading::Open { gathered, .. }) => gathered.take(),
            _ => Bytes::new(),
        };
        Ok(match self.end_read(id) {
            Ok(()) => Read::Data {
                offset: 0,
                bytes: message,
            },
            Err(m) => m.into(),
        })
    }

    /// Moves what arrived of message `id` into its gathered pieces (its credit released):
    /// `None` once every byte is there, else what a read says now ([`Read::Pending`],
    /// [`Read::Reset`]). Refuses messages longer than `max_len`.
    fn gather(&mut self, id: StreamId, max_len: u64, advise: Advise) -> Result<Option<Read>, ApiError> {
        loop {
            let state = self.recv_stream(id)?;
            let recv = state.half.recv().ok_or(ApiError::UnknownStream)?;
            if state.reading.gathered_len() > max_len
                || recv
                    .end()
                    .or(state.header.total_len())
                    .is_some_and(|s| s > max_len)
            {
                return Err(ApiError::MessageTooLong);
            }
            if recv.is_finished() {
                return Ok(None);
            }
            // What `read` would answer with nothing there, answered here as it would: a
            // message arriving in pieces asked it once more after each piece, 0.7% of a
            // 1 MiB request's receiving thread.
            if !recv.has_news() && !state.reading.is_broken() {
                state.reading.set_readable_signaled(false);
                return Ok(Some(Read::Pending));
            }
            let total = recv.end().or(state.header.total_len());
            match self.read(id, usize::MAX)? {
                Read::Data { bytes, .. } => {
                    let Some(Reading::Open { gathered, .. }) =
                        self.streams.get_mut(&id).map(|s| &mut s.reading)
                    else {
                        continue;
                    };
                    if !gathered.grows_short_of(bytes.len(), total) {
                        gathered.push(bytes, total);
                        continue;
                    }
                    let spare = self.gathering_spare(id);
                    if let Some(Reading::Open { gathered, .. }) =
                        self.streams.get_mut(&id).map(|s| &mut s.reading)
                    {
                        gathered.push_within(bytes, total, spare, advise);
                    }
                }
                other => return Ok(Some(other)),
            }
        }
    }

    /// How far past what arrived stream `id`'s gathering buffer may grow toward the length
    /// its message announced (spec/protocol.md §8, Streams and credit): the connection's
    /// receive window, less the room the other gathering buffers hold unfilled. The peer
    /// may have that much on its way anyway; announcing lengths it then does not send pins
    /// at most one window more. Asked only when a buffer would otherwise grow short of its
    /// message (at each growth of a large message's buffer: a few times a message), as it
    /// walks the connection's streams.
    fn gathering_spare(&self, id: StreamId) -> u64 {
        let unfilled: u64 = self
            .streams
            .iter()
            .filter(|&(other, _)| other != id)
            .map(|(_, s)| s.reading.unfilled())
            .sum();
        self.receive_credit.window().saturating_sub(unfilled)
    }

    /// What the whole-message reads' buffers hold, the room they keep beyond it, and the
    /// connection's receive window.
    #[cfg(test)]
    pub(crate) fn gathering(&self) -> (u64, u64, u64) {
        let (held, room) = self.streams.values().fold((0, 0), |(held, room), s| {
            (held + s.reading.gathered_len(), room + s.reading.unfilled())
        });
        (held, room, self.receive_credit.window())
    }

    /// The next stream the peer opened that the application has not taken, with what its
    /// opening frame announced; taken now.
    pub(crate) fn accept_stream(&mut self) -> Option<(StreamId, StreamHeader)> {
        let id = self.inbox.accept()?;
        let state = self.streams.get_mut(&id)?;
        state.reading.set_offered(false);
        Some((id, state.header.to_header()))
    }

    /// The next whole message of a stream the peer opened and the application did not take:
    /// one gathered whole before this call first, then, in the order they opened, the
    /// streams offered that have something to read, each taken (and gathered from then on
    /// as its bytes arrive, `gather_arrived`, if not whole yet). [`Read::Data`] or
    /// [`Read::VerificationFailed`]; `None` while no message is whole. A message longer than
    /// `max_len` is refused and its stream stopped (code 0); a reset one is skipped.
    pub(crate) fn next_message(&mut self, max_len: u64, advise: Advise) -> Option<(StreamId, Read)> {
        while let Some(id) = self.inbox.next_whole() {
            if let Some(read) = self.message_or_skip(id, max_len, advise) {
                return Some((id, read));
            }
        }
        // Nearly every stream offered has bytes (its opening frame brought some), so this
        // walks past few: each one taken leaves the list.
        let mut skipped = 0;
        while let Some(id) = self.inbox.offered_at(skipped) {
            if !self.has_news(id) {
                skipped += 1;
                continue;
            }
            self.take_stream(id);
            if let Some(state) = self.streams.get_mut(&id) {
                state.reading.set_gathering(Some(max_len));
            }
            if let Some(read) = self.message_or_skip(id, max_len, advise) {
                return Some((id, read));
            }
        }
        None
    }

    /// Whether [`next_message`](Self::next_message) would find anything to take: a message
    /// gathered whole, or an offered stream with something to read. When not, it changes
    /// nothing (it walks the offered streams and returns `None`).
    pub(crate) fn has_message_news(&self) -> bool {
        self.inbox.has_whole()
            || (0..)
                .map_while(|i| self.inbox.offered_at(i))
                .any(|id| self.has_news(id))
    }

    /// Whether stream `id` has something to read (bytes, its end, or its reset).
    fn has_news(&self, id: StreamId) -> bool {
        self.streams
            .get(&id)
            .is_some_and(|s| s.half.recv().is_some_and(RecvStream::has_news))
    }

    /// The application takes stream `id` (by its id, by accepting it, by a message read, by
    /// stopping or piping it): it is no longer offered.
    pub(crate) fn take_stream(&mut self, id: StreamId) {
        if let Some(state) = self.streams.get_mut(&id) {
            if state.reading.set_offered(false) {
                self.inbox.take(id);
            }
        }
    }

    /// A message read of `id`: the message or its failed verification; `None` if it is not
    /// whole yet (it stays gathered), or if it is skipped (reset, too long, gone).
    fn message_or_skip(&mut self, id: StreamId, max_len: u64, advise: Advise) -> Option<Read> {
        match self.read_message(id, max_len, advise) {
            Ok(read @ (Read::Data { .. } | Read::VerificationFailed { .. })) => {
                self.forget_message(id);
                Some(read)
            }
            Ok(Read::Pending) => None,
            Err(ApiError::MessageTooLong) => {
                self.forget_message(id);
                let _ = self.stop_sending(id, 0);
                None
            }
            Ok(_) | Err(_) => {
                self.forget_message(id);
                None
            }
        }
    }

    /// Bytes arrived on `id`: if a message read is gathering it, they are gathered now (so
    /// their credit goes back at once), and once the message is whole (or ended otherwise)
    /// it is next for a message read, and the application is told (`StreamReadable`).
    /// Whether the stream was being gathered.
    pub(super) fn gather_arrived(&mut self, id: StreamId, advise: Advise) -> bool {
        let Some(limit) = self.streams.get(&id).and_then(|s| s.reading.gathering()) else {
            return false;
        };
        if matches!(self.gather(id, limit, advise), Ok(Some(Read::Pending))) {
            return true;
        }
        if let Some(state) = self.streams.get_mut(&id) {
            state.reading.set_gathering(None);
        }
        self.inbox.whole(id);
        self.events.push_back(Event::StreamReadable {
            conn: self.handle,
            stream: id,
        });
        true
    }

    /// The application read stream `id` to its end: checks the bytes against the digest
    /// the sender attached, if any (spec §8, Verification), and lets the stream go.
    pub(super) fn end_read(&mut self, id: StreamId) -> Result<(), Mismatch> {
        let state = self.streams.get_mut(&id);
        let tapped = state
            .as_ref()
            .is_some_and(|s| s.half.recv().is_some_and(RecvStream::is_tapped));
        let verifier = state.and_then(|s| s.verifier.take());
        let verdict = verifier.map(|v| v.finish());
        match verdict {
            Some(Ok(())) => self.stats.streams_verified += 1,
            Some(Err(_)) => self.stats.verification_failures += 1,
            None => {}
        }
        // The final receiver's word (spec §8, Delivery); a relay's comes from its pipe.
        if !tapped {
            match verdict {
                Some(Err(_)) => {
                    self.receipts.forget_unread(id);
                    let failed = Delivery::Failed {
                        code: VERIFICATION_FAILED,
                        relays: 0,
                    };
                    self.send_receipt(id, failed);
                }
                _ if self.receipts.on_read_to_end(id) => {
                    // The application confirms it: the stream keeps its slot until then.
                    self.drop_recv_state(id);
                    return verdict.unwrap_or(Ok(()));
                }
                _ => self.send_receipt(id, Delivery::Delivered { relays: 0 }),
            }
        }
        self.remove_recv(id);
        verdict.unwrap_or(Ok(()))
    }

    /// The application confirms the delivery of the peer's stream `id` itself (spec §8,
    /// Delivery): reading it to its end owes no receipt until `settle_delivery`.
    pub(crate) fn defer_delivery(&mut self, id: StreamId) -> Result<(), ApiError> {
        let state = self.recv_stream(id)?;
        if state.half.recv().is_some_and(RecvStream::is_tapped) {
            return Err(ApiError::AlreadyPiped);
        }
        if state.reading.is_stopped() {
            return Err(ApiError::UnknownStream);
        }
        self.receipts.hold(id);
        Ok(())
    }

    /// The application's word on a stream whose delivery it deferred and read to its end:
    /// delivered (`None`) or refused with a code.
    pub(crate) fn settle_delivery(&mut self, id: StreamId, refused: Option<u64>) -> Result<(), ApiError> {
        if id.initiator() == self.side {
            return Err(ApiError::WrongDirection);
        }
        if !self.receipts.settle(id) {
            return Err(ApiError::NothingToConfirm);
        }
        let delivery = match refused {
            None => Delivery::Delivered { relays: 0 },
            Some(code) => Delivery::Failed { code, relays: 0 },
        };
        self.send_receipt(id, delivery);
        self.release_stream_slot();
        Ok(())
    }

    pub(super) fn remove_recv(&mut self, id: StreamId) {
        self.drop_recv_state(id);
        self.release_stream_slot();
    }

    pub(super) fn drop_recv_state(&mut self, id: StreamId) {
        self.drop_stream(id);
    }

    /// One stream of the peer's gone: it may open one more.
    pub(super) fn release_stream_slot(&mut self) {
        self.stream_count.release(self.receipts.owed());
        self.grant_streams();
    }

    /// Receipts were acknowledged: the peer's slots held for them go back if the count now
    /// covers what is still owed (`StreamCount::release`).
    pub(super) fn release_slots_held_for_receipts(&mut self) {
        if self.stream_count.receipts_acknowledged(self.receipts.owed()) {
            self.grant_streams();
        }
    }

    /// Stream `id` is no longer read as a message: not gathered, and not next for a message
    /// read.
    fn forget_message(&mut self, id: StreamId) {
        if let Some(state) = self.streams.get_mut(&id) {
            state.reading.set_gathering(None);
        }
        self.inbox.forget(id);
    }

    /// Forgets stream `id` (its box is kept for the next stream).
    pub(super) fn drop_stream(&mut self, id: StreamId) {
        // Only the peer's streams are read (streams are one-way, spec §4.12): ours were
        // never offered, gathered or held for a receipt, and a sender of small messages
        // drops one a message.
        if id.initiator() != self.side {
            self.receipts.forget_unread(id);
            self.take_stream(id);
            self.forget_message(id);
        }
        self.streams.remove(id, self.spare_streams());
    }

    /// How many emptied stream boxes the table keeps for the next streams: as many as the
    /// peer may keep open at once (module `stream_table`).
    pub(super) fn spare_streams(&self) -> usize {
        usize::try_from(self.stream_count.concurrent()).unwrap_or(usize::MAX)
    }

    /// Queues a MAX_STREAMS when one must go at once (`StreamCount::grant_urgent`); one
    /// that is only due rides in the next packet (`transmit.rs`, spec §8, Streams and
    /// credit).
    pub(super) fn grant_streams(&mut self) {
        if self.stream_count.grant_urgent() {
            self.control.push(Control::MaxStreams);
        }
    }

    pub(super) fn update_connection_credit(&mut self) {
        let rtt = self.recovery.rtt().smoothed();
        if self.receive_credit.update(self.clock, rtt) {
            self.control.push(Control::MaxData);
        }
    }
}
