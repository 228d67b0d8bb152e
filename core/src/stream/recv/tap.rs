//! A piped or stopped stream's outlet (module `pipe`; spec/protocol.md §4.6, §8 Piping): where
//! the bytes of a [`RecvStream`] go besides (or instead of) its reassembly, and which offsets
//! arrived once it keeps none of them.
//!
//! Input: each STREAM frame's data as `insert` takes it in, a pipe's credit, and the stop.
//! Output: the pieces handed to the pipe, once each, in arrival order, and whether every byte
//! up to the stream's end arrived.

use alloc::boxed::Box;

use bytes::Bytes;

use super::RecvStream;
use crate::range_set::RangeSet;
use crate::stream::held::pins_too_much;

/// A piped stream's outlet (module `pipe`): every byte at or past `start` is handed out once,
/// the moment it arrives, in arrival order; or a stopped stream's record of which bytes
/// arrived, which it no longer keeps ([`RecvStream::stop`]).
#[derive(Debug)]
pub(super) struct Tap {
    pub(super) start: u64,
    /// Offsets already handed out (so a retransmission is not forwarded twice).
    pub(super) forwarded: RangeSet,
    /// Where what is handed out goes.
    pub(super) outlet: Outlet,
    /// The application keeps reading the stream too (the same `Bytes`, no second copy).
    pub(super) keep: bool,
    /// The credit the pipe would grant (`raise_limit`); with `keep`, the local reader's
    /// window caps what is granted.
    pub(super) wanted: u64,
}

/// Where a tapped stream's bytes go.
#[derive(Debug)]
pub(super) enum Outlet {
    /// To its pipe: what `insert` handed out and the pipe has not taken yet.
    Pipe(alloc::vec::Vec<(u64, Bytes)>),
    /// Nowhere: the stream was stopped with this code ([`RecvStream::stop`]). Nothing is
    /// handed out or kept; `forwarded` still says what arrived.
    Stopped(u64),
}

impl Tap {
    /// Hands out the parts of `data` (at `offset`, from a datagram of `datagram_len`
    /// bytes) not handed out before. A part under a quarter of its datagram is handed out as
    /// a copy: targets hold it until their peers acknowledge it (spec §10.3).
    pub(super) fn forward(&mut self, offset: u64, data: &Bytes, datagram_len: usize) {
        let end = offset + data.len() as u64;
        let from = offset.max(self.start);
        if from >= end {
            // All of it lies before the pipe began (a late retransmission).
            return;
        }
        let new: smallvec::SmallVec<[core::ops::Range<u64>; 2]> = self.forwarded.gaps(from..end).collect();
        for gap in new {
            self.forwarded.insert(gap.clone());
            let Outlet::Pipe(out) = &mut self.outlet else {
                // Stopped: the bytes are only counted as arrived.
                continue;
            };
            let mut piece = data.slice((gap.start - offset) as usize..(gap.end - offset) as usize);
            if pins_too_much(piece.len(), datagram_len) {
                piece = Bytes::copy_from_slice(&piece);
            }
            out.push((gap.start, piece));
        }
    }
}

impl RecvStream {
    /// Starts handing out every byte from the read offset on, as it arrives: what is held
    /// now at once, the rest from `insert`. With `keep`, the application goes on reading
    /// it as well.
    pub(crate) fn tap(&mut self, keep: bool) {
        let start = self.read_offset;
        let mut tap = Tap {
            start,
            forwarded: RangeSet::new(),
            outlet: Outlet::Pipe(alloc::vec::Vec::new()),
            keep,
            wanted: 0,
        };
        for (offset, chunk) in self.chunks.iter_mut() {
            // What the stream held is within §10.3's bounds already.
            tap.forward(offset, &chunk.share(), 0);
        }
        if !keep {
            self.chunks.clear();
            self.buffered = 0;
            self.contiguous_end = self.read_offset;
        }
        self.charged = self.chunks.iter().map(|(_, h)| h.charge()).sum();
        self.tap = Some(Box::new(tap));
    }

    /// Bytes handed out since the last call, by offset, in arrival order.
    pub(crate) fn take_tapped(&mut self) -> alloc::vec::Vec<(u64, Bytes)> {
        match self.tap.as_mut().map(|t| &mut t.outlet) {
            Some(Outlet::Pipe(out)) => core::mem::take(out),
            _ => alloc::vec::Vec::new(),
        }
    }

    /// The stream was stopped with `code`, by the application or by its failed pipe: what
    /// it holds is let go, past a gap as well as before one, and so is what waited for a
    /// pipe; nothing more is kept or handed out. Only which offsets arrived is kept (as a
    /// tap whose outlet is [`Outlet::Stopped`], which a piped stream has already), so that
    /// it ends as any stopped stream does once nothing more of it can come
    /// ([`awaits_data`](Self::awaits_data)). Bytes held are no longer compared with what
    /// arrives again at their offsets, as bytes read are not. Before, the pieces behind a
    /// gap stayed until the sender's reset or the rest came, which an outage can delay by
    /// tens of seconds (tests/README.md, "Sweeps").
    pub(crate) fn stop(&mut self, code: u64) {
        let read_offset = self.read_offset;
        let tap = self.tap.get_or_insert_with(|| {
            Box::new(Tap {
                start: read_offset,
                forwarded: RangeSet::new(),
                outlet: Outlet::Stopped(code),
                keep: false,
                wanted: 0,
            })
        });
        if matches!(tap.outlet, Outlet::Pipe(_)) {
            tap.outlet = Outlet::Stopped(code);
        }
        tap.keep = false;
        // A piped stream's held pieces were handed out, so counted, already.
        for (offset, piece) in self.chunks.iter() {
            tap.forwarded.insert(offset..offset + piece.len() as u64);
        }
        self.chunks.clear();
        self.buffered = 0;
        self.charged = 0;
        self.contiguous_end = self.read_offset;
    }

    /// The code the stream was stopped with ([`stop`](Self::stop)), if it was.
    pub(crate) fn tap_stopped(&self) -> Option<u64> {
        match self.tap.as_ref().map(|t| &t.outlet) {
            Some(Outlet::Stopped(code)) => Some(*code),
            _ => None,
        }
    }

    /// Whether every byte of a piped stream was handed out, up to its final size.
    pub(crate) fn tap_complete(&self) -> bool {
        match (&self.tap, self.end()) {
            (Some(t), Some(end)) => t.forwarded.gaps(t.start..end).next().is_none(),
            _ => false,
        }
    }

    /// Whether a pipe takes this stream's bytes (not once it was stopped, [`stop`](Self::stop)).
    pub(crate) fn is_tapped(&self) -> bool {
        self.tap
            .as_ref()
            .is_some_and(|t| matches!(t.outlet, Outlet::Pipe(_)))
    }

    /// Whether the application reads this piped stream too.
    pub(crate) fn tap_keeps(&self) -> bool {
        self.tap.as_ref().is_some_and(|t| t.keep)
    }

    /// A pipe's credit: the peer may send below `limit` (never lowered; never past the
    /// final size; if the application reads the stream too, never more than its window
    /// past what it read). Whether the credit grew.
    pub(crate) fn raise_limit(&mut self, limit: u64) -> bool {
        if let Some(tap) = self.tap.as_mut() {
            tap.wanted = tap.wanted.max(limit);
        }
        self.grant_tapped()
    }

    /// Raises a piped stream's credit to what both the pipe and a local reader allow.
    pub(super) fn grant_tapped(&mut self) -> bool {
        let Some(tap) = &self.tap else { return false };
        let mut limit = tap.wanted;
        if tap.keep {
            // Bytes the application has not read stay here: hold them to its window.
            limit = limit.min(self.read_offset.saturating_add(self.flow.window()));
        }
        let limit = self.credit_end().map_or(limit, |f| limit.min(f));
        self.flow.raise(limit)
    }
}
