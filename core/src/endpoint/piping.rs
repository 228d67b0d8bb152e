//! The endpoint's half of relaying (spec §8, Piping): starting a pipe between connections,
//! and moving each pipe's fragments, credit and receipts along after every input. What a
//! pipe decides (which bytes go where, when a target is done) is module `pipe`'s; this
//! moves them between the connections it joins, which only the endpoint holds.

use super::*;

impl Endpoint {
    pub(super) fn start_pipe(
        &mut self,
        from: ConnectionHandle,
        stream: StreamId,
        to: &[ConnectionHandle],
        local: LocalRead,
    ) -> Result<PipeId, ApiError> {
        if to.is_empty() || to.contains(&from) {
            return Err(ApiError::NoTargets);
        }
        let cap = self.config.pipe_buffer;
        let tapping = self.conn(from)?.tappable(stream)?;
        if tapping.buffered > cap {
            return Err(ApiError::BufferOverflow {
                buffered: tapping.buffered,
                limit: cap,
            });
        }
        for &t in to {
            if !self.conn(t)?.is_established() {
                return Err(ApiError::NotEstablished);
            }
        }
        let mut targets = Vec::with_capacity(to.len());
        for &t in to {
            match self.conn(t)?.open_piped(tapping.header.clone()) {
                Ok(id) => targets.push(Target {
                    conn: t,
                    stream: id,
                    state: Branch::Open,
                }),
                Err(e) => {
                    for opened in &targets {
                        if let Ok(c) = self.conn(opened.conn) {
                            let _ = c.reset_stream(opened.stream, PIPE_BROKEN);
                        }
                    }
                    return Err(e);
                }
            }
        }
        let granted = self.conn(from)?.tap_stream(stream, local == LocalRead::Keep);
        let id = PipeId(self.next_pipe);
        self.next_pipe = self.next_pipe.wrapping_add(1);
        let mut pipe = Pipe::new((from, stream), tapping.start, targets, cap);
        pipe.granted = granted;
        for c in core::iter::once(from).chain(to.iter().copied()) {
            self.pipes_by_conn.insert((c, id));
        }
        self.pipes_reserved += pipe.reserved();
        self.pipes.insert(id, pipe);
        let mut touched = Vec::new();
        self.pump_pipe(id, &mut touched);
        for slot in touched {
            self.touch(slot);
        }
        Ok(id)
    }

    /// A pipe's counters; `None` once it ended.
    pub fn pipe_stats(&self, pipe: PipeId) -> Option<PipeStats> {
        self.pipes.get(&pipe).map(|p| p.stats)
    }

    /// Gives each pipe (those `only` takes part in, or all) its turn.
    pub(super) fn pump_pipes(&mut self, only: Option<ConnectionHandle>) {
        if self.pipes.is_empty() {
            return;
        }
        let ids: Vec<PipeId> = match only {
            Some(c) => self.pipes_of(c).into_iter().map(|(_, id)| id).collect(),
            None => self.pipes.keys().copied().collect(),
        };
        let mut touched = Vec::new();
        for id in ids {
            self.pump_pipe(id, &mut touched);
        }
        touched.sort_unstable();
        touched.dedup();
        // A pipe's turn reads, writes, finishes, resets and stops streams: none of it moves
        // a timer (checked where each is filed, in debug and fuzzing builds), and a relay pumps at every
        // datagram.
        for slot in touched {
            self.touch_fresh(slot);
        }
    }

    /// Gives every pipe its turn if a connection one takes part in ended since (a stateless
    /// reset, a VERSION_REJECT, a command): the pipe learns it now, not at some later input
    /// that may never come (an endpoint whose last connection ended has no timer left), so
    /// a pipe left without a live target or source ends at once
    /// (fuzz/findings/piping.pipe-target-reset).
    pub(super) fn pump_if_lost(&mut self) {
        if core::mem::take(&mut self.pipes_lost_conn) {
            self.pump_pipes(None);
        }
    }

    /// The pipes connection `c` takes part in, as index entries.
    pub(super) fn pipes_of(&self, c: ConnectionHandle) -> Vec<(ConnectionHandle, PipeId)> {
        self.pipes_by_conn
            .range((c, PipeId(0))..=(c, PipeId(u32::MAX)))
            .copied()
            .collect()
    }

    /// One pipe's turn (`pipe_turn`), keeping the index and the cap's sum in step.
    fn pump_pipe(&mut self, id: PipeId, touched: &mut Vec<u32>) {
        let Some(mut pipe) = self.pipes.remove(&id) else {
            return;
        };
        self.pipes_reserved -= pipe.reserved();
        match self.pipe_turn(id, &mut pipe, touched) {
            Turn::Going => {
                self.pipes_reserved += pipe.reserved();
                self.pipes.insert(id, pipe);
            }
            Turn::Ended => {
                // Every target stream is let go: done, reset, or stopped by its peer and
                // kept until now for the pipe to read why (`release_piped`).
                for t in &pipe.targets {
                    if let Ok(c) = self.conn(t.conn) {
                        c.release_piped(t.stream);
                    }
                }
                for c in core::iter::once(pipe.source.0).chain(pipe.targets.iter().map(|t| t.conn)) {
                    self.pipes_by_conn.remove(&(c, id));
                }
            }
        }
    }

    /// Forwards what arrived, passes on the end or a failure, and grants the sender the
    /// credit the targets allow.
    fn pipe_turn(&mut self, id: PipeId, pipe: &mut Pipe, touched: &mut Vec<u32>) -> Turn {
        let (source, stream) = pipe.source;
        let out = match self.conn(source) {
            Ok(c) if !pipe.source_lost => {
                // A connection that takes no more packets in (closing, draining, or ended
                // and kept for its unread bytes) brings the stream nothing more: the source
                // is lost as surely as if the connection were gone, also for a pipe started
                // after it ended (fuzz/findings/piping.pipe-from-an-ended-connection).
                pipe.source_lost = !c.is_open();
                c.take_tapped(stream)
            }
            _ => {
                pipe.source_lost = true;
                Default::default()
            }
        };
        touched.push(source.index());
        // A reset's final size is where the sender gave up, not the stream's end: passed on
        // as an end, it would finish the targets there, and a target that cannot take the
        // reset (a connection lingering to close) would deliver an abandoned stream whole.
        let end = out.final_size.filter(|_| out.reset.is_none());
        let fragments = pipe.take_in(out.fragments);
        for t in pipe.targets.iter().filter(|t| t.state == Branch::Open) {
            if let Ok(c) = self.conn(t.conn) {
                for (offset, data) in &fragments {
                    c.pipe_write(t.stream, *offset, data.clone());
                }
                if let (None, Some(size)) = (pipe.final_size, end) {
                    c.pipe_finish(t.stream, size.saturating_sub(pipe.start));
                }
                touched.push(t.conn.index());
            }
        }
        pipe.handed_on();
        pipe.final_size = pipe.final_size.or(end);
        // A source whose every byte was handed on needs its connection no more: the pipe
        // finishes delivering whatever becomes of it (spec §8, Piping).
        let failure = match (
            out.reset,
            out.stopped,
            pipe.source_lost && !pipe.source_complete(),
        ) {
            (Some(code), ..) => Some((PipeFailure::SourceReset { code }, code)),
            (None, Some(code), _) => Some((PipeFailure::SourceStopped { code }, code)),
            (None, None, true) => Some((PipeFailure::SourceLost, PIPE_BROKEN)),
            _ => None,
        };
        if let Some((reason, code)) = failure {
            for t in pipe.targets.iter().filter(|t| t.state == Branch::Open) {
                if let Ok(c) = self.conn(t.conn) {
                    let _ = c.reset_stream(t.stream, code);
                }
            }
            self.events.push_back(Event::PipeFailed { pipe: id, reason });
            return Turn::Ended;
        }
        let progress: Vec<TargetState> = pipe
            .targets
            .iter()
            .map(|t| {
                self.lookup(t.conn)
                    .map_or(TargetState::Gone, |c| c.pipe_target(t.stream))
            })
            .collect();
        let was_open: Vec<bool> = pipe.targets.iter().map(|t| t.state == Branch::Open).collect();
        let credit = pipe.observe(&progress);
        for (t, open) in pipe.targets.iter().zip(was_open) {
            if open && matches!(t.state, Branch::Lost(_)) {
                self.events.push_back(Event::PipeTargetLost {
                    pipe: id,
                    conn: t.conn,
                });
            }
        }
        match pipe.ended() {
            Some(Ok(delivered)) => {
                // The sender learns it end to end (spec §8, Delivery). A lost source's
                // handle may already name another connection.
                if let (false, Ok(c)) = (pipe.source_lost, self.conn(source)) {
                    c.send_receipt(stream, delivered);
                }
                self.events.push_back(Event::PipeFinished { pipe: id });
                return Turn::Ended;
            }
            Some(Err((reason, failed))) => {
                if let (false, Ok(c)) = (pipe.source_lost, self.conn(source)) {
                    // Only a receipt tells the sender why, and how far its bytes went: those
                    // that arrived here may all be acknowledged.
                    c.send_receipt(stream, failed);
                    if !pipe.source_complete() {
                        // The rest is not wanted. The receipt goes ahead of this stop in a
                        // packet (module `transmit`), so that a sender that reads both
                        // takes the receipt's reason: the stop is for a sender without
                        // receipts, or one that missed the receipt (spec §8, Delivery).
                        c.stop_piped_source(stream);
                    }
                }
                self.events.push_back(Event::PipeFailed { pipe: id, reason });
                return Turn::Ended;
            }
            None => {}
        }
        if let Some((floor, limit)) = credit {
            // The endpoint-wide cap, less what the other pipes have spoken for.
            let room = self.config.pipe_buffer_total.saturating_sub(self.pipes_reserved);
            let limit = limit.min(floor.saturating_add(room));
            if limit > pipe.granted && !pipe.source_lost {
                pipe.granted = limit;
                if let Ok(c) = self.conn(source) {
                    c.grant_tapped(stream, limit);
                }
            }
        }
        Turn::Going
    }
}

/// Whether a pipe goes on after its turn.
enum Turn {
    Going,
    Ended,
}
