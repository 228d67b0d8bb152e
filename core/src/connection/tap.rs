//! The connection's half of a pipe (spec/protocol.md §8, Piping): a stream it receives,
//! tapped so that its fragments go on to other connections as they arrive, and streams it
//! sends that a pipe writes.
//!
//! Inputs: the endpoint's pipe mechanism (`endpoint/piping.rs`), after every input.
//! Outputs: fragments, final sizes, resets and receipts for the pipe ([`TapOutput`],
//! `pipe::TargetState`); credit granted back as the targets take the bytes.

use super::*;
use crate::PIPE_BROKEN;

/// A stream a pipe started tapping (`Connection::tap_stream`).
#[derive(Clone, Debug)]
pub(crate) struct Tapped {
    pub(crate) start: u64,
    /// The source's header for the targets: the total length is what is left from `start`,
    /// and the digest goes only if `start` is 0 (it covers the whole stream).
    pub(crate) header: StreamHeader,
    /// Bytes received and not read when tapping began.
    pub(crate) buffered: u64,
}

/// What arrived on a tapped stream (`Connection::take_tapped`).
#[derive(Debug, Default)]
pub(crate) struct TapOutput {
    pub(crate) fragments: Vec<(u64, Bytes)>,
    pub(crate) final_size: Option<u64>,
    /// Every byte up to the final size was handed out.
    pub(crate) complete: bool,
    pub(crate) reset: Option<u64>,
    /// The stream was stopped with this code (by the application, `stop_sending`): the
    /// sender is told to stop, and nothing more is handed out.
    pub(crate) stopped: Option<u64>,
}

impl Connection {
    /// Pipe source: whether stream `id` can be piped, and what piping it would start with.
    pub(crate) fn tappable(&mut self, id: StreamId) -> Result<Tapped, ApiError> {
        let state = self.recv_stream(id)?;
        let recv = state.half.recv().ok_or(ApiError::UnknownStream)?;
        if recv.is_tapped() {
            return Err(ApiError::AlreadyPiped);
        }
        if !matches!(state.reading, Reading::Open { .. }) || recv.reset_code().is_some() {
            return Err(ApiError::UnknownStream);
        }
        let start = recv.read_offset();
        Ok(Tapped {
            start,
            header: StreamHeader {
                label: state.header.label().cloned(),
                total_len: state.header.total_len().map(|t| t.saturating_sub(start)),
                digest: state.header.digest().filter(|_| start == 0),
            },
            buffered: recv.buffered(),
        })
    }

    /// Pipe source: starts handing out the bytes of stream `id` from its read offset on
    /// (after `tappable` said yes). Returns the credit the stream has now.
    pub(crate) fn tap_stream(&mut self, id: StreamId, keep: bool) -> u64 {
        // Piped: the application took it (it is not offered to an accept).
        self.take_stream(id);
        let Some(state) = self.streams.get_mut(&id) else {
            return 0;
        };
        let Some(recv) = state.half.recv_mut() else {
            return 0;
        };
        let buffered = recv.buffered();
        recv.tap(keep);
        let limit = recv.max_data();
        if !keep {
            // Handed on: those bytes no longer wait for the application.
            state.released += buffered;
            self.receive_credit.release(buffered);
            self.update_connection_credit();
        }
        limit
    }

    /// Pipe source: what arrived on a tapped stream since the last call.
    pub(crate) fn take_tapped(&mut self, id: StreamId) -> TapOutput {
        let Some(state) = self.streams.get_mut(&id) else {
            return TapOutput::default();
        };
        let Some(recv) = state.half.recv_mut() else {
            return TapOutput::default();
        };
        let fragments = recv.take_tapped();
        let out = TapOutput {
            final_size: recv.end(),
            complete: recv.tap_complete(),
            reset: recv.reset_code(),
            stopped: recv.tap_stopped(),
            fragments,
        };
        if !recv.tap_keeps() {
            let handed: u64 = out.fragments.iter().map(|(_, b)| b.len() as u64).sum();
            state.released += handed;
            self.receive_credit.release(handed);
            self.update_connection_credit();
            if out.complete || out.reset.is_some() {
                self.remove_recv(id);
            }
        }
        out
    }

    /// Pipe source: the pipe failed before the stream arrived whole, and stops it
    /// (PIPE_BROKEN). An application that reads it too (a fork, `LocalRead::Keep`) is told
    /// at once, as of a reset with that code, and its next read says so (`Reading::Broken`,
    /// whatever the sender does next): what arrives now is dropped, and a reader left
    /// waiting for it waited for ever (fuzz/findings/piping.fork-reader-left-waiting).
    pub(crate) fn stop_piped_source(&mut self, id: StreamId) {
        if self.check_established().is_err() {
            return;
        }
        let Some(state) = self.streams.get(&id) else {
            return;
        };
        // Stopped already, or reset by its sender (the reset is the stream's end, which
        // a local reader reads as it is): nothing to stop.
        if state.reading.is_stopped() || state.half.recv().is_some_and(|r| r.reset_code().is_some()) {
            return;
        }
        let keeps = state.half.recv().is_some_and(RecvStream::tap_keeps);
        let step = if keeps { ReadStep::PipeStop } else { ReadStep::Stop };
        self.stop_reading(id, PIPE_BROKEN, step);
        if keeps {
            self.events.push_back(Event::StreamReset {
                conn: self.handle,
                stream: id,
                code: PIPE_BROKEN,
            });
        }
    }

    /// Pipe source: the peer may send the stream below `limit`.
    pub(crate) fn grant_tapped(&mut self, id: StreamId, limit: u64) {
        let grew = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.half.recv_mut())
            .is_some_and(|r| r.raise_limit(limit));
        if grew {
            self.control.push(Control::MaxStreamData(id));
        }
    }

    /// Pipe target: opens the stream a pipe writes.
    pub(crate) fn open_piped(&mut self, header: StreamHeader) -> Result<StreamId, ApiError> {
        let id = self.open_stream(header)?;
        if let Some(state) = self.streams.get_mut(&id) {
            state.piped = true;
        }
        Ok(id)
    }

    /// Pipe target: queues a fragment at its offset (outside the application's send
    /// buffer limit: the pipe's credit bounds it). False if the stream is gone.
    pub(crate) fn pipe_write(&mut self, id: StreamId, offset: u64, data: Bytes) -> bool {
        let len = data.len() as u64;
        let written = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.half.send_mut())
            .is_some_and(|send| send.write_at(offset, data));
        if written {
            self.send_buffer.take(len);
            self.streams.queue(id);
        }
        written
    }

    /// Pipe target: the stream ends at `size`.
    pub(crate) fn pipe_finish(&mut self, id: StreamId, size: u64) -> bool {
        let done = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.half.send_mut())
            .is_some_and(|send| send.finish_at(size));
        self.streams.queue(id);
        done
    }

    /// Pipe target: where the stream stands.
    pub(crate) fn pipe_target(&self, id: StreamId) -> TargetState {
        let state = self.streams.get(&id);
        if let Some(receipt) = state.and_then(|s| s.receipt) {
            return TargetState::Ended(receipt);
        }
        let send = state.and_then(|s| s.half.send());
        // A peer without receipts vouches for nothing past its acknowledgement: delivered
        // is acknowledged, even if it closed at once after (its CLOSE carries that last ACK,
        // spec §4.11).
        if !self.receipts_on() && send.is_some_and(|s| s.is_done()) {
            return TargetState::Ended(Delivery::Delivered { relays: 0 });
        }
        if !self.is_established() {
            return TargetState::Gone;
        }
        match send {
            None => TargetState::Gone,
            Some(send) => TargetState::Open(Progress {
                acked_below: send.acked_below(),
                max_data: send.max_data(),
                unacked: send.unacked(),
            }),
        }
    }

    /// Pipe target: the pipe is done with the stream.
    pub(crate) fn release_piped(&mut self, id: StreamId) {
        if let Some(state) = self.streams.get_mut(&id) {
            // A receipt that overtook the last acknowledgements ends the stream as well.
            let ended = state.receipt.is_some() && state.half.send().is_some_and(SendStream::is_finished);
            if let Some(send) = state.half.send().filter(|s| s.is_done() || ended) {
                self.send_buffer.release(send.unacked());
                self.drop_stream(id);
            } else if matches!(state.half, Half::Settled(_)) {
                // Stopped by the peer, kept for the pipe to read why.
                self.drop_stream(id);
            }
        }
    }
}
