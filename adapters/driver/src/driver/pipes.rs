//! The handles' calls on pipes (spec/protocol.md §8, Piping): start one (a fork keeps the
//! stream readable by the application too), wait for its end, its counters, and its handle
//! letting go.

use std::task::{Poll, Waker};

use weir_core::wire::StreamId;
use weir_core::{ApiError, ConnectionHandle, LocalRead, PipeId, PipeStats};

use super::conn::PipeRecord;
use super::{Driver, Wait};
use crate::Error;

impl Driver {
    /// Forwards `stream` of `from` to a new stream on each connection of `to`; with
    /// [`LocalRead::Keep`] (a fork) the application keeps reading it too.
    pub(crate) fn pipe(
        &mut self,
        from: ConnectionHandle,
        stream: StreamId,
        to: &[ConnectionHandle],
        local: LocalRead,
    ) -> Result<PipeId, Error> {
        if let Some(e) = self.refused(from) {
            return Err(e);
        }
        let targets: Option<Vec<_>> = to.iter().map(|&c| self.live_conn(c)).collect();
        let targets = targets.ok_or(Error::Refused(ApiError::UnknownConnection))?;
        let r = self.on_conn(from, |ep, h| ep.pipe(h, stream, &targets, local));
        let pipe = r.map_err(|e| self.error(from, e))?;
        if local == LocalRead::Discard {
            // The pipe reads it all: nothing is left for a reader.
            self.forget_stream(from, stream);
        }
        self.pipes.insert(
            pipe,
            PipeRecord {
                stats: self.ep.pipe_stats(pipe).unwrap_or_default(),
                result: None,
                released: false,
            },
        );
        self.progress();
        Ok(pipe)
    }

    /// A pipe's counters once every target acknowledged the whole stream, or how it failed.
    pub(crate) fn poll_pipe(&mut self, pipe: PipeId, waker: &Waker) -> Poll<Result<PipeStats, Error>> {
        let r = match (self.shutdown.is_some(), self.pipes.get(&pipe)) {
            (true, _) => Some(Err(Error::Shutdown)),
            (false, None) => Some(Err(Error::Refused(ApiError::UnknownStream))),
            (false, Some(p)) => p.result.map(|r| r.map(|()| p.stats).map_err(Error::PipeFailed)),
        };
        self.answer(r, Wait::Pipe(pipe), waker)
    }

    /// A pipe's counters so far (the last seen, once it ended).
    pub(crate) fn pipe_stats(&self, pipe: PipeId) -> Option<PipeStats> {
        self.pipes.get(&pipe).map(|p| p.stats)
    }

    /// The pipe's handle is gone: its result is forgotten (it goes on).
    pub(crate) fn release_pipe(&mut self, pipe: PipeId) {
        if let Some(p) = self.pipes.get_mut(&pipe) {
            p.released = true;
            if p.result.is_some() {
                self.pipes.remove(&pipe);
            }
        }
    }
}
