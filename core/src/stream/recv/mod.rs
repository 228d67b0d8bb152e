//! The receiving half of a stream: reassembly by byte offset (spec/protocol.md §4.12).
//!
//! Input: STREAM frames as `(offset, Bytes, fin)` in any order, duplicated or overlapping,
//! and RESET_STREAM. Output: contiguous bytes the moment they exist, as slices of the
//! datagrams they arrived in (no copy), and the credit to grant the peer.
//!
//! Memory: the reassembler holds only bytes at offsets in `[read_offset, max_data)`, and the
//! peer may not send at or past `max_data` (a flow-control violation otherwise), so what a
//! stream holds never exceeds the window it granted, whatever the peer announces.
//!
//! A held slice keeps its whole datagram alive, so a peer sending one byte per datagram
//! could make a few bytes of credit pin a thousand times as much. A small piece (under
//! [`SMALL_PIECE`] bytes, or under a quarter of its datagram) is therefore copied when it has
//! to wait, and appended to the copy it follows. A piece behind a gap is copied whatever its
//! size (a run of them into a few copies, `RecvStream::hold_behind_gap`): it waits a round
//! trip at least for the lost bytes, and a slice would keep alive, beside its datagram, the
//! whole buffer its driver received the datagram into (spec §10.3, "Small pieces"). What
//! the pieces really cost (module `held`) stays within twice the stream's window: a frame
//! that would pass it first compacts the stream (each run of contiguous bytes copied once,
//! exactly; pieces that wait after that copied until the stream holds nothing), and only if
//! that is not enough is it refused ([`RecvError::OverBudget`]; spec §10.3). A slice the
//! application leaves unread is copied by the second sweep that finds it
//! ([`RecvStream::sweep`], spec §10.3, "Age"), so it keeps its receive buffer alive a grace
//! period or two, not until it is read. Bytes readable at once into an empty stream, the
//! usual case, are not copied unless they wait that long.

// A peer's frames land here: outside tests, no index or slice that is not checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::stream::by_offset::ByOffset;
use alloc::boxed::Box;

use bytes::{Bytes, BytesMut};

use crate::flow::ReceiveWindow;
use crate::stream::held::{append, pins_too_much, stream_budget, Datagram, Held, PIECE_COST, SMALL_PIECE};
use crate::time::{Duration, Instant};

mod tap;
use tap::Tap;

/// The most room a copy of pieces behind a gap is made with (`RecvStream::hold_behind_gap`):
/// about a dozen full datagrams, so a long run takes an allocation per dozen, and a run
/// that ends leaves at most this much unused.
const RUN_ROOM: usize = 16 << 10;

/// Why a STREAM frame was refused: each is a connection error (spec/protocol.md §4.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Data at or past the credit granted (FLOW_CONTROL_ERROR).
    FlowControl,
    /// Data past the final size, a second different final size, or a total length broken
    /// (FINAL_SIZE_ERROR).
    FinalSize,
    /// Bytes at offsets already held that differ from what was received there before: the
    /// peer rewrote its stream (PROTOCOL_VIOLATION; spec §10.4).
    Rewritten,
    /// What the stream holds would cost more than its budget (module `held`; spec §10.3).
    OverBudget,
}

/// How a stream holds pieces that have to wait (spec §10.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pressure {
    /// As slices of their datagrams, unless small (module docs).
    Slices,
    /// As copies: the stream was compacted to stay within its budget, and has held
    /// something ever since.
    Copies,
}

/// What the peer said of the stream's end: its final size, once a FIN or a RESET_STREAM
/// came, and with a reset, the code it abandoned the stream with (spec/protocol.md §4.11).
/// One field, not two options: a reset always carries a final size (and a stream's state
/// is 8 bytes smaller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Neither came yet.
    Unknown,
    /// A FIN: the stream ends at this offset.
    Fin(u64),
    /// A RESET_STREAM: the stream ends at `final_size`, abandoned with `code`.
    Reset { final_size: u64, code: u64 },
}

impl Ending {
    fn final_size(self) -> Option<u64> {
        match self {
            Ending::Unknown => None,
            Ending::Fin(size) | Ending::Reset { final_size: size, .. } => Some(size),
        }
    }

    fn reset_code(self) -> Option<u64> {
        match self {
            Ending::Reset { code, .. } => Some(code),
            Ending::Unknown | Ending::Fin(_) => None,
        }
    }
}

/// The receive side of one stream.
#[derive(Debug)]
pub struct RecvStream {
    /// Received bytes not yet read, keyed by offset; disjoint, all at or above `read_offset`.
    chunks: ByOffset<Held>,
    /// Everything below has been handed to the application.
    read_offset: u64,
    /// One past the bytes held contiguously from `read_offset`: a piece past it waits
    /// behind a gap.
    contiguous_end: u64,
    /// One past the highest offset received (counts against connection credit).
    highest: u64,
    /// Known once FIN or RESET_STREAM arrives.
    ending: Ending,
    /// The length the opening frame announced: a FIN must end exactly there, a
    /// RESET_STREAM (the sender gave up before the end) at or below it.
    total_len: Option<u64>,
    /// The credit granted: the peer may send bytes below its limit, kept about a window
    /// ahead of what the application read.
    flow: ReceiveWindow,
    /// Bytes held in `chunks`.
    buffered: u64,
    /// What `chunks` keeps alive ([`Held::charge`]), bookkeeping aside.
    charged: u64,
    /// The held pieces were compacted since the stream last held nothing ([`Pressure`]).
    pressure: Pressure,
    /// Set while the stream is piped, and once it is stopped: where new bytes go besides
    /// (or instead of) `chunks`, and which arrived. Boxed: few streams are piped or
    /// stopped, and every stream's state carries the field (120 bytes inline, an eighth of
    /// a stream's state then).
    tap: Option<Box<Tap>>,
    /// The longest stream we take (`Config::max_message_len`): no byte, final size or
    /// total length past it, and no credit either. `u64::MAX`: no limit (not an `Option`,
    /// which would take 8 bytes more of every stream's state).
    len_limit: u64,
}

impl RecvStream {
    /// A stream whose peer may send `window` bytes beyond what was read.
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn new(window: u64) -> Self {
        Self::auto_tuned(window, window)
    }

    /// A stream whose window starts at `initial` and may grow to `max` when the application
    /// reads fast (module `flow`).
    pub(crate) fn auto_tuned(initial: u64, max: u64) -> Self {
        RecvStream {
            chunks: ByOffset::default(),
            read_offset: 0,
            contiguous_end: 0,
            highest: 0,
            ending: Ending::Unknown,
            total_len: None,
            flow: ReceiveWindow::new(initial, max),
            buffered: 0,
            charged: 0,
            pressure: Pressure::Slices,
            tap: None,
            len_limit: u64::MAX,
        }
    }

    /// The same stream, refusing anything past `limit` bytes (spec §10.4).
    pub(crate) fn with_len_limit(mut self, limit: Option<u64>) -> Self {
        self.len_limit = limit.unwrap_or(u64::MAX);
        self
    }

    /// Takes in a STREAM frame's data, as if it were the whole of its datagram. As
    /// [`insert_from`](Self::insert_from) otherwise.
    #[cfg(any(test, feature = "bench-internals", feature = "fuzzing"))]
    pub fn insert(&mut self, offset: u64, data: Bytes, fin: bool) -> Result<u64, RecvError> {
        let mut datagram = Datagram::new(data.len());
        self.insert_from(offset, data, fin, &mut datagram)
    }

    /// Takes in a STREAM frame's data, a slice of `datagram` (what holding the slice would
    /// keep alive). Returns how far the stream's highest received offset moved (what the
    /// connection counts against its own credit).
    pub fn insert_from(
        &mut self,
        offset: u64,
        data: Bytes,
        fin: bool,
        datagram: &mut Datagram,
    ) -> Result<u64, RecvError> {
        let end = offset.saturating_add(data.len() as u64);
        if end > self.flow.limit() || end > self.len_limit {
            return Err(RecvError::FlowControl);
        }
        if self
            .total_len
            .is_some_and(|total| end > total || (fin && end != total))
        {
            return Err(RecvError::FinalSize);
        }
        match self.ending.final_size() {
            Some(size) if end > size || (fin && end != size) => return Err(RecvError::FinalSize),
            None if fin && end < self.highest => return Err(RecvError::FinalSize),
            None if fin => self.ending = Ending::Fin(end),
            _ => {}
        }
        // Past every byte received so far (in order, the common case): nothing held can
        // overlap it.
        let past_all = offset >= self.highest;
        let grown = end.saturating_sub(self.highest);
        self.highest = self.highest.max(end);
        if self.ending.reset_code().is_none() {
            let keep = match self.tap.as_mut() {
                Some(tap) => {
                    tap.forward(offset, &data, datagram.len());
                    tap.keep
                }
                None => true,
            };
            if keep {
                self.store(offset, data, datagram, past_all)?;
            }
        }
        let budget = stream_budget(self.flow.window());
        if self.cost() > budget {
            self.compact();
            if self.cost() > budget {
                return Err(RecvError::OverBudget);
            }
        }
        Ok(grown)
    }

    /// Sets the length the stream's opening frame announced: where a FIN must fall, and
    /// past which no data or reset may go.
    pub(crate) fn set_total_len(&mut self, total: u64) -> Result<(), RecvError> {
        let fin_elsewhere = matches!(self.ending, Ending::Fin(size) if size != total);
        if fin_elsewhere
            || total > self.len_limit
            || self.total_len.is_some_and(|t| t != total)
            || self.highest > total
            || self.ending.final_size().is_some_and(|size| size > total)
        {
            return Err(RecvError::FinalSize);
        }
        self.total_len = Some(total);
        Ok(())
    }

    /// Stores the parts of `data` not already held or read, as slices of it. Parts already
    /// held must be the same bytes (those already read can no longer be compared).
    fn store(
        &mut self,
        mut offset: u64,
        mut data: Bytes,
        datagram: &mut Datagram,
        past_all: bool,
    ) -> Result<(), RecvError> {
        // Drop what was already read.
        if offset < self.read_offset {
            let skip = (self.read_offset - offset).min(data.len() as u64) as usize;
            data = data.slice(skip..);
            offset = self.read_offset;
        }
        // In order (past everything received), the common case: nothing to compare or skip.
        if past_all {
            if !data.is_empty() {
                self.hold(offset, data, datagram);
            }
            return Ok(());
        }
        // Drop what the chunk starting at or before `offset` already covers.
        if let Some((start, chunk)) = self.chunks.at_or_before(offset) {
            let chunk_end = start + chunk.len() as u64;
            if chunk_end > offset {
                let skip = (chunk_end - offset).min(data.len() as u64) as usize;
                let from = (offset - start) as usize;
                if !same_bytes(chunk.bytes().get(from..from + skip), data.get(..skip)) {
                    return Err(RecvError::Rewritten);
                }
                data = data.slice(skip..);
                offset = chunk_end;
            }
        }
        // Fill the gaps between the chunks that start inside the new data.
        while !data.is_empty() {
            let end = offset + data.len() as u64;
            let next = self.chunks.first_within(offset..end).map(|(s, held)| {
                let len = held.len() as u64;
                let gap = (s - offset) as usize;
                let skip = ((s + len).min(end) - offset) as usize;
                (
                    s,
                    len,
                    gap,
                    skip,
                    same_bytes(held.bytes().get(..skip - gap), data.get(gap..skip)),
                )
            });
            match next {
                None => {
                    self.hold(offset, data, datagram);
                    return Ok(());
                }
                Some((start, len, gap, skip, same)) => {
                    if !same {
                        return Err(RecvError::Rewritten);
                    }
                    if gap > 0 {
                        self.hold(offset, data.slice(..gap), datagram);
                    }
                    data = data.slice(skip..);
                    offset = start + len;
                }
            }
        }
        Ok(())
    }

    /// Keeps `piece` (at `offset`, in a gap) until it is read: as a slice of its datagram, or,
    /// when small and waiting, copied and appended to the copy it follows, or, when behind a
    /// gap, copied (module docs).
    fn hold(&mut self, offset: u64, piece: Bytes, datagram: &mut Datagram) {
        let len = piece.len();
        self.buffered += len as u64;
        if self.chunks.is_empty() {
            // Everything held was read: pressure, if there was any, is over.
            self.pressure = Pressure::Slices;
        }
        let behind_gap = offset > self.contiguous_end;
        if offset == self.contiguous_end {
            // Any pieces that waited behind the gap this fills now follow on (none past the
            // highest byte received: in order, the usual case, no look-up).
            let end = offset + len as u64;
            self.contiguous_end = if end >= self.highest {
                end
            } else {
                self.contiguous_from(end)
            };
        }
        let small = len < SMALL_PIECE || pins_too_much(len, datagram.len());
        let copy = self.pressure == Pressure::Copies || small || behind_gap;
        let read_at_once = offset == self.read_offset && self.chunks.is_empty();
        if !copy || read_at_once {
            let held = Held::shared(piece, datagram);
            self.charged += held.charge();
            self.chunks.insert(offset, held);
            return;
        }
        if behind_gap && !small && self.pressure == Pressure::Slices {
            self.hold_behind_gap(offset, &piece);
            return;
        }
        // One copy of the piece, into the copy that ends where it starts if there is one.
        if let Some(before) = self.copy_ending_at(offset) {
            let capacity = before.capacity() as u64;
            append(before, &piece);
            let grown = before.capacity() as u64 - capacity;
            self.charged += grown;
            return;
        }
        let held = Held::Owned(BytesMut::from(&piece[..]));
        self.charged += held.charge();
        self.chunks.insert(offset, held);
    }

    /// Keeps `piece` (at `offset`, behind a gap, not small) as a copy: appended to the copy
    /// it follows if that has room, else in a copy of its own with room for what follows
    /// it, twice the copy it follows (none: exact), at most [`RUN_ROOM`] or the piece. A
    /// run of pieces behind one gap then takes an allocation and a map entry per doubling
    /// rather than per piece, and each byte is copied once (a copy that grows would copy
    /// what it holds again each time); a copy's room is at most twice the run before it.
    fn hold_behind_gap(&mut self, offset: u64, piece: &[u8]) {
        let len = piece.len();
        let mut room = len;
        if let Some(before) = self.copy_ending_at(offset) {
            if before.capacity() - before.len() >= len {
                // Its capacity is charged already.
                before.extend_from_slice(piece);
                return;
            }
            room = (2 * before.len()).clamp(len, RUN_ROOM.max(len));
        }
        let mut copy = BytesMut::with_capacity(room);
        copy.extend_from_slice(piece);
        let held = Held::Owned(copy);
        self.charged += held.charge();
        self.chunks.insert(offset, held);
    }

    /// The copy held just before `offset`, if one ends exactly there: what a copied piece at
    /// `offset` is appended to.
    fn copy_ending_at(&mut self, offset: u64) -> Option<&mut BytesMut> {
        match self.chunks.before_mut(offset) {
            Some((start, Held::Owned(before))) if start + before.len() as u64 == offset => Some(before),
            _ => None,
        }
    }

    /// Copies what the stream holds into one exact copy per run of contiguous bytes, so that
    /// it keeps no datagram alive and no spare capacity, and copies every piece that has to
    /// wait from now on, until the stream holds nothing again (spec §10.3, "Pressure"). Once
    /// per such episode: the copy is at most what the stream holds, which the application
    /// must read (or the peer abandon) before the next, so it costs at most one copy of each
    /// received byte.
    pub(crate) fn compact(&mut self) {
        if self.pressure == Pressure::Copies {
            return;
        }
        self.pressure = Pressure::Copies;
        // The runs' lengths first, so each copy is allocated once, at its final size.
        let mut runs = alloc::vec::Vec::new();
        let mut end = None;
        for (offset, piece) in self.chunks.iter() {
            let len = piece.len();
            match runs.last_mut() {
                Some(run) if end == Some(offset) => *run += len,
                _ => runs.push(len),
            }
            end = Some(offset + len as u64);
        }
        let mut pieces = core::mem::take(&mut self.chunks);
        let mut runs = runs.into_iter();
        let mut copy: Option<(u64, BytesMut)> = None;
        while let Some((offset, piece)) = pieces.pop_first() {
            match &mut copy {
                Some((start, run)) if *start + run.len() as u64 == offset => {
                    run.extend_from_slice(piece.bytes());
                }
                _ => {
                    if let Some((start, run)) = copy.take() {
                        self.chunks.insert(start, Held::Owned(run));
                    }
                    let mut run = BytesMut::with_capacity(runs.next().unwrap_or(piece.len()));
                    run.extend_from_slice(piece.bytes());
                    copy = Some((offset, run));
                }
            }
        }
        if let Some((start, run)) = copy {
            self.chunks.insert(start, Held::Owned(run));
        }
        self.charged = self.chunks.iter().map(|(_, h)| h.charge()).sum();
    }

    /// A sweep (spec §10.3, "Age"): copies each slice an earlier sweep found held, exactly,
    /// and marks the slices held now for the next ([`Held::age`]). So a piece the application
    /// leaves unread keeps its receive buffer alive for one to two sweeps' intervals, not
    /// until it is read. Returns by how much the stream's cost fell. Copies are left as they
    /// are: they keep nothing else alive.
    pub(crate) fn sweep(&mut self) -> u64 {
        let mut fell = 0;
        for (_, piece) in self.chunks.iter_mut() {
            if let Some((before, now)) = piece.age() {
                fell += before.saturating_sub(now);
            }
        }
        self.charged -= fell;
        fell
    }

    /// How many pieces are held as slices of their datagrams.
    #[cfg(test)]
    pub(crate) fn slices(&self) -> usize {
        self.chunks
            .iter()
            .filter(|(_, h)| matches!(h, Held::Shared(..)))
            .count()
    }

    /// The next contiguous bytes, at most `max_len` of them, with their offset.
    pub fn read(&mut self, max_len: usize) -> Option<(u64, Bytes)> {
        let (start, chunk) = self.chunks.first_mut()?;
        if *start != self.read_offset || max_len == 0 {
            return None;
        }
        let offset = self.read_offset;
        self.charged -= chunk.charge();
        let out = if chunk.len() > max_len {
            // Read in part: the rest stays first, a little further on.
            let head = chunk.split_to(max_len);
            *start += max_len as u64;
            self.charged += chunk.charge();
            head
        } else {
            self.chunks.pop_first()?.1.into_bytes()
        };
        self.read_offset += out.len() as u64;
        self.buffered -= out.len() as u64;
        Some((offset, out))
    }

    /// A RESET_STREAM from the peer: drops what is buffered. Errors as [`insert_from`](Self::insert_from).
    pub(crate) fn reset(&mut self, code: u64, final_size: u64) -> Result<(), RecvError> {
        // Below an announced total length is allowed: the sender gave up before the end.
        if final_size < self.highest
            || final_size > self.len_limit
            || self.ending.final_size().is_some_and(|s| s != final_size)
            || self.total_len.is_some_and(|t| final_size > t)
        {
            return Err(RecvError::FinalSize);
        }
        if final_size > self.flow.limit() {
            return Err(RecvError::FlowControl);
        }
        self.ending = Ending::Reset { final_size, code };
        self.highest = final_size;
        self.chunks.clear();
        self.buffered = 0;
        self.charged = 0;
        Ok(())
    }

    /// A new credit limit to announce, if reading has used up a quarter of the window (or the
    /// window can now reach the stream's known end). Never beyond the final size.
    pub(crate) fn credit_update(&mut self, now: Instant, rtt: Duration) -> Option<u64> {
        if self.ending.reset_code().is_some() {
            return None;
        }
        if self.tap.is_some() {
            // A piped stream's credit follows its targets (`raise_limit`); a local read may
            // free what the local reader's window held back.
            return self.grant_tapped().then(|| self.flow.limit());
        }
        self.flow.update(self.read_offset, self.credit_end(), now, rtt)
    }

    /// Whether contiguous bytes wait at the read offset.
    pub(crate) fn is_readable(&self) -> bool {
        self.chunks.first().is_some_and(|(o, _)| o == self.read_offset)
    }

    /// Whether bytes the peer still owes us are missing: the stream is not reset, and its
    /// FIN has not arrived or a gap lies before it (bytes read, held or, if piped, handed
    /// on count as arrived).
    pub(crate) fn awaits_data(&self) -> bool {
        let end = match self.ending {
            Ending::Reset { .. } => return false,
            Ending::Fin(end) => end,
            Ending::Unknown => return true,
        };
        if let Some(t) = &self.tap {
            let before = t.start.min(end);
            return self.contiguous_from(self.read_offset) < before
                || t.forwarded.gaps(t.start..end).next().is_some();
        }
        self.contiguous_from(self.read_offset) < end
    }

    /// One past the last byte held contiguously from `offset`.
    fn contiguous_from(&self, mut offset: u64) -> u64 {
        for (at, held) in self.chunks.from(offset) {
            if at != offset {
                break;
            }
            offset += held.len() as u64;
        }
        offset
    }

    /// Whether every byte up to the final size has been read.
    pub(crate) fn is_finished(&self) -> bool {
        self.end() == Some(self.read_offset) && self.ending.reset_code().is_none()
    }

    /// Whether a read would give the application something now: bytes, the end, or the
    /// sender's reset.
    pub(crate) fn has_news(&self) -> bool {
        self.is_readable() || self.is_finished() || self.ending.reset_code().is_some()
    }

    pub(crate) fn reset_code(&self) -> Option<u64> {
        self.ending.reset_code()
    }

    pub(crate) fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Heap bytes what the stream holds costs (module `held`): the datagrams and copies its
    /// pieces keep alive, and each separate piece's bookkeeping (a piped stream's forwarded
    /// runs count as pieces).
    pub(crate) fn cost(&self) -> u64 {
        self.charged + self.pieces() as u64 * PIECE_COST
    }

    /// Separate pieces held (what the connection caps, spec §10.3): a piped stream's count
    /// the runs it forwarded, each of which its targets hold until acknowledged.
    pub(crate) fn pieces(&self) -> usize {
        self.chunks.len() + self.tap.as_ref().map_or(0, |t| t.forwarded.len())
    }

    pub(crate) fn read_offset(&self) -> u64 {
        self.read_offset
    }

    /// Where the stream ends, as far as known: its FIN's or reset's final size, else the
    /// total length its opening frame announced.
    pub(crate) fn end(&self) -> Option<u64> {
        self.ending.final_size().or(self.total_len)
    }

    /// Where credit stops: the stream's end if known, else the longest stream we take.
    fn credit_end(&self) -> Option<u64> {
        self.end()
            .or((self.len_limit != u64::MAX).then_some(self.len_limit))
    }

    pub(crate) fn max_data(&self) -> u64 {
        self.flow.limit()
    }

    /// The receive window's current size (grown by auto-tuning).
    pub(crate) fn window(&self) -> u64 {
        self.flow.window()
    }

    /// Before anything was read: the window becomes `window` if larger (at most the
    /// maximum), and the credit grows with it, never past the stream's known end. Whether
    /// the credit grew (a new limit to announce).
    pub(crate) fn start_with_window(&mut self, window: u64) -> bool {
        let end = self.credit_end();
        self.flow.start_with(self.read_offset, window, end)
    }

    /// Bytes received past what was read (the stream's share of connection credit in use).
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }
}

/// Whether two ranges a caller took from bytes it holds are both there and the same: a
/// range that is not there (no input makes one) reads as a difference.
fn same_bytes(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests;
