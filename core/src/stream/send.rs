//! The sending half of a stream: fragmentation and retransmission by offset
//! (spec/protocol.md §4.12).
//!
//! Input: application writes (`Bytes`, kept as given; only a small one is copied, below),
//! acknowledgements and
//! losses of the frames that carried them, and the peer's credit. Output: the next chunk to
//! put in a STREAM frame — lost bytes first, then new ones — cut with `Bytes::slice`, so
//! the only copy of payload is the one into the outgoing datagram.
//!
//! A write shorter than [`SMALL_PIECE`] bytes is joined to the write it continues, in a copy
//! of both, up to [`JOIN_UP_TO`] bytes: tiny writes (an application's, or a pipe's tiny
//! fragments, spec §10.3) then cost neither a map entry each, nor a frame each, nor keep
//! the datagram a fragment came in alive. Each such write costs at most `JOIN_UP_TO`
//! bytes of copying.
//!
//! Writes usually append; a pipe (module `pipe`) also writes at any offset, in the order
//! fragments reached the relay, so the written bytes may have gaps. New bytes are sent
//! lowest offset first; the connection's credit counts the highest offset sent (RFC 9000
//! §4.1), as the receiver does.

use alloc::boxed::Box;
use core::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::range_set::RangeSet;
use crate::stream::by_offset::ByOffset;
use crate::stream::held::SMALL_PIECE;

mod sent_whole;
pub(crate) use sent_whole::{SentWhole, SentWholeAck};

/// The longest a run of small writes is joined into (module docs).
const JOIN_UP_TO: usize = 4 * SMALL_PIECE;

/// A piece of stream to send in one STREAM frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) offset: u64,
    pub(crate) data: Bytes,
    pub(crate) fin: bool,
}

/// Where the stream's end stands (spec/state-machines.md, "Send stream: its end").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fin {
    /// The application may still write.
    Open,
    /// Finished at this size; FIN not sent (or lost and to be sent again).
    Pending,
    /// FIN sent, not yet acknowledged.
    Sent,
    /// FIN acknowledged.
    Acked,
}

/// What moves the stream's end on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FinStep {
    /// The application (or a pipe, at the source's final size) finished the stream.
    Finish,
    /// A frame carried FIN.
    Send,
    /// The frame that carried FIN was acknowledged.
    Ack,
    /// The frame that carried FIN was declared lost.
    Lose,
}

/// Every transition of the stream's end: from, step, to. A step not listed for a state
/// leaves it as it is (an acknowledgement of an older FIN, a second finish).
pub(crate) const FIN_TRANSITIONS: &[(Fin, FinStep, Fin)] = &[
    (Fin::Open, FinStep::Finish, Fin::Pending),
    (Fin::Pending, FinStep::Send, Fin::Sent),
    (Fin::Sent, FinStep::Ack, Fin::Acked),
    (Fin::Sent, FinStep::Lose, Fin::Pending),
];

impl Fin {
    /// The state after `step`, by [`FIN_TRANSITIONS`]; `None` if it has no such row.
    fn after(self, step: FinStep) -> Option<Fin> {
        crate::transitions::next(FIN_TRANSITIONS, self, step)
    }
}

/// What a stream keeps once its bytes are acknowledged out of order or lost. Boxed and made
/// on first use: most streams never need it, and its two sets are 72 bytes each inline,
/// which every stream in flight would carry (a sender keeps one per message until the
/// message is acknowledged).
#[derive(Debug, Default)]
struct Repair {
    /// Bytes acknowledged above `acked_below`.
    acked: RangeSet,
    /// Sent bytes declared lost, to send again.
    lost: RangeSet,
}

/// The send side of one stream.
#[derive(Debug)]
pub(crate) struct SendStream {
    /// Written, not yet acknowledged bytes, keyed by offset; contiguous from `acked_below`.
    chunks: ByOffset<Bytes>,
    /// Every byte below is acknowledged and released.
    acked_below: u64,
    /// Bytes acknowledged past a gap, and bytes declared lost: made at the first
    /// acknowledgement out of order or the first loss.
    repair: Option<Box<Repair>>,
    /// Written bytes never sent.
    unsent: RangeSet,
    /// Bytes written in all, and of those, acknowledged.
    written: u64,
    acked_bytes: u64,
    /// One past the last byte written (or, once finished, the stream's final size).
    write_end: u64,
    /// One past the highest byte ever sent.
    sent_end: u64,
    /// The peer's credit: bytes below this may be sent.
    max_data: u64,
    /// The credit last reported blocked (STREAM_DATA_BLOCKED), so that a limit is
    /// reported once, and again only if that report is lost.
    blocked_reported: Option<u64>,
    fin: Fin,
}

impl SendStream {
    pub(crate) fn new(max_data: u64) -> Self {
        SendStream {
            chunks: ByOffset::default(),
            acked_below: 0,
            repair: None,
            unsent: RangeSet::new(),
            written: 0,
            acked_bytes: 0,
            write_end: 0,
            sent_end: 0,
            max_data,
            blocked_reported: None,
            fin: Fin::Open,
        }
    }

    /// Queues `data` after what was written before. Returns false (and queues nothing) once
    /// the stream is finished.
    pub(crate) fn write(&mut self, data: Bytes) -> bool {
        if self.fin != Fin::Open {
            return false;
        }
        let offset = self.write_end;
        self.write_at(offset, data)
    }

    /// Queues `data` at `offset`, which may leave a gap before it or fill one (a pipe's
    /// fragments arrive in any order). Returns false (and queues nothing) if any of it was
    /// written before or lies past the final size.
    pub(crate) fn write_at(&mut self, offset: u64, data: Bytes) -> bool {
        let end = offset.saturating_add(data.len() as u64);
        let past_final = self.fin != Fin::Open && end > self.write_end;
        if past_final || offset < self.acked_below || self.written(offset..end) {
            return false;
        }
        if !data.is_empty() {
            self.written += data.len() as u64;
            self.unsent.insert(offset..end);
            self.write_end = self.write_end.max(end);
            self.hold(offset, data);
        }
        true
    }

    /// Keeps written bytes, joining a small write to the one it continues (module docs).
    fn hold(&mut self, offset: u64, data: Bytes) {
        if data.len() < SMALL_PIECE {
            if let Some((start, before)) = self.chunks.before_mut(offset) {
                let len = before.len() + data.len();
                if start + before.len() as u64 == offset && len <= JOIN_UP_TO {
                    let mut joined = BytesMut::with_capacity(len);
                    joined.extend_from_slice(before);
                    joined.extend_from_slice(&data);
                    *before = joined.freeze();
                    return;
                }
            }
        }
        self.chunks.insert(offset, data);
    }

    /// Whether any byte of `range` is held already.
    fn written(&self, range: Range<u64>) -> bool {
        let below = self
            .chunks
            .before(range.start)
            .is_some_and(|(s, c)| s + c.len() as u64 > range.start);
        below || self.chunks.first_within(range).is_some()
    }

    /// No more writes: the stream ends after what was written.
    pub(crate) fn finish(&mut self) {
        self.fin_step(FinStep::Finish);
    }

    /// The stream ends at `size`, which bytes still to be written at lower offsets may
    /// reach (a pipe learns the final size before every fragment arrived). False if bytes
    /// were written past it.
    pub(crate) fn finish_at(&mut self, size: u64) -> bool {
        if self.fin != Fin::Open || self.write_end > size {
            return false;
        }
        self.write_end = size;
        self.fin_step(FinStep::Finish)
    }

    /// Moves the stream's end on by `step`; whether it moved.
    fn fin_step(&mut self, step: FinStep) -> bool {
        match self.fin.after(step) {
            Some(next) => {
                self.fin = next;
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.fin != Fin::Open
    }

    /// The peer raised its credit.
    pub(crate) fn set_max_data(&mut self, max: u64) {
        self.max_data = self.max_data.max(max);
    }

    /// The stream's credit, if new bytes wait but it stops them (to report as blocked).
    pub(crate) fn blocked_limit(&self) -> Option<u64> {
        self.unsent
            .first()
            .is_some_and(|r| r.start >= self.max_data)
            .then_some(self.max_data)
    }

    /// The stream's credit, if new bytes wait that it stops and it was not reported at this
    /// limit yet; marks it reported.
    pub(crate) fn report_blocked(&mut self) -> Option<u64> {
        let limit = self
            .blocked_limit()
            .filter(|&l| self.blocked_reported != Some(l))?;
        self.blocked_reported = Some(limit);
        Some(limit)
    }

    /// The last STREAM_DATA_BLOCKED was lost: the limit is reported again if still blocked.
    pub(crate) fn blocked_report_lost(&mut self) {
        self.blocked_reported = None;
    }

    /// Whether new (never sent) bytes wait that the stream's own credit allows.
    pub(crate) fn has_new_data(&self) -> bool {
        self.unsent.first().is_some_and(|r| r.start < self.max_data)
    }

    /// The offset of the next chunk `next_chunk` would give: the first lost byte, else the
    /// first unsent one.
    pub(crate) fn next_offset(&self) -> u64 {
        self.first_lost()
            .or_else(|| self.unsent.first())
            .map_or(self.sent_end, |r| r.start)
    }

    /// Whether `next_chunk` would give something (ignoring connection credit).
    pub(crate) fn has_data(&self) -> bool {
        self.first_lost().is_some() || self.has_new_data() || self.bare_fin_due()
    }

    /// The first range of bytes declared lost and not sent again yet.
    fn first_lost(&self) -> Option<Range<u64>> {
        self.repair.as_ref().and_then(|r| r.lost.first())
    }

    /// A FIN waits and no chunk will carry it: the byte before it was sent without it.
    fn bare_fin_due(&self) -> bool {
        self.fin == Fin::Pending && self.sent_end == self.write_end
    }

    /// The next chunk of at most `max_len` bytes: lost bytes first, then new bytes, of which
    /// at most `new_credit` (the connection's remaining credit). A chunk never spans two
    /// writes, so it is always a slice of one.
    pub(crate) fn next_chunk(&mut self, max_len: usize, new_credit: u64) -> Option<Chunk> {
        if max_len == 0 {
            // Room for no data: only a bare FIN could go, and it waits for the next datagram.
            return None;
        }
        if let Some(range) = self.first_lost() {
            let (start, data) = self.slice(range.start, (range.end - range.start).min(max_len as u64));
            let end = start + data.len() as u64;
            if let Some(repair) = self.repair.as_mut() {
                repair.lost.remove(start..end);
            }
            let fin = self.fin_at(end);
            return Some(Chunk {
                offset: start,
                data,
                fin,
            });
        }
        if let Some(range) = self.unsent.first().filter(|r| r.start < self.max_data) {
            // Bytes below the highest sent offset fill a gap and use no connection credit;
            // past it, each byte uses one.
            let credit_end = self.sent_end.saturating_add(new_credit).max(range.start);
            let end = range
                .end
                .min(self.max_data)
                .min(range.start + max_len as u64)
                .min(credit_end.max(self.sent_end));
            if end > range.start {
                let (start, data) = self.slice(range.start, end - range.start);
                let end = start + data.len() as u64;
                self.unsent.remove(start..end);
                self.sent_end = self.sent_end.max(end);
                let fin = self.fin_at(end);
                return Some(Chunk {
                    offset: start,
                    data,
                    fin,
                });
            }
        }
        if self.bare_fin_due() {
            self.fin_step(FinStep::Send);
            return Some(Chunk {
                offset: self.write_end,
                data: Bytes::new(),
                fin: true,
            });
        }
        None
    }

    /// Whether a chunk ending at `end` carries FIN (and marks FIN sent if so).
    fn fin_at(&mut self, end: u64) -> bool {
        let fin = self.fin == Fin::Pending && end == self.write_end;
        if fin {
            self.fin_step(FinStep::Send);
        }
        fin
    }

    /// Up to `len` bytes from `offset`, within one written chunk.
    fn slice(&self, offset: u64, len: u64) -> (u64, Bytes) {
        match self.chunks.at_or_before(offset) {
            Some((start, chunk)) if start + chunk.len() as u64 > offset => {
                let from = (offset - start) as usize;
                let to = (from as u64 + len).min(chunk.len() as u64) as usize;
                (offset, chunk.slice(from..to))
            }
            // Acknowledged meanwhile (a late loss): nothing to resend here.
            _ => (offset, Bytes::new()),
        }
    }

    /// The frame carrying `range` (and FIN if `fin`) was acknowledged.
    pub(crate) fn on_acked(&mut self, range: Range<u64>, fin: bool) {
        if fin {
            self.fin_step(FinStep::Ack);
        }
        let in_order = self
            .repair
            .as_ref()
            .is_none_or(|r| r.acked.is_empty() && r.lost.is_empty());
        if range.start <= self.acked_below && in_order {
            // In order, with nothing acknowledged past a gap and nothing lost (nearly every
            // acknowledgement): the acknowledged prefix just grows.
            if range.end > self.acked_below {
                self.acked_bytes += range.end - self.acked_below;
                self.acked_below = range.end;
            }
        } else {
            let repair = self.repair.get_or_insert_with(Box::default);
            repair.lost.remove(range.clone());
            let fresh = range.start.max(self.acked_below)..range.end;
            self.acked_bytes += repair.acked.gaps(fresh).map(|g| g.end - g.start).sum::<u64>();
            repair.acked.insert(range);
            if let Some(first) = repair.acked.first() {
                if first.start <= self.acked_below {
                    repair.acked.remove(first.clone());
                    self.acked_below = self.acked_below.max(first.end);
                }
            }
        }
        // Release every written chunk wholly acknowledged.
        while let Some((start, chunk)) = self.chunks.first() {
            if start + chunk.len() as u64 > self.acked_below {
                break;
            }
            self.chunks.pop_first();
        }
    }

    /// The frame carrying `range` (and FIN if `fin`) was declared lost: send it again,
    /// except what was acknowledged meanwhile. The bytes newly queued to go again: none of
    /// a frame whose copy was acknowledged (a probe carried it, spec §8, Loss), nor of one
    /// queued already (a probe's, then the fallback's, spec §12.5).
    pub(crate) fn on_lost(&mut self, range: Range<u64>, fin: bool) -> u64 {
        if fin {
            self.fin_step(FinStep::Lose);
        }
        let start = range.start.max(self.acked_below);
        if start >= range.end {
            return 0;
        }
        let repair = self.repair.get_or_insert_with(Box::default);
        // Acknowledged and lost bytes never overlap: what is neither is what this adds.
        let unacked: u64 = repair.acked.gaps(start..range.end).map(|g| g.end - g.start).sum();
        let not_lost: u64 = repair.lost.gaps(start..range.end).map(|g| g.end - g.start).sum();
        let lost_already = (range.end - start).saturating_sub(not_lost);
        let again = unacked.saturating_sub(lost_already);
        repair.lost.insert(start..range.end);
        for acked in repair
            .acked
            .iter()
            .filter(|a| a.start < range.end && a.end > start)
        {
            repair.lost.remove(acked);
        }
        again
    }

    /// Whether every byte and the FIN were acknowledged.
    pub(crate) fn is_done(&self) -> bool {
        self.fin == Fin::Acked && self.acked_below == self.write_end
    }

    /// Bytes written and not yet acknowledged (held by reference, not copied).
    pub(crate) fn unacked(&self) -> u64 {
        self.written - self.acked_bytes
    }

    /// One past the highest byte sent: what the stream used of the connection's credit.
    pub(crate) fn sent_end(&self) -> u64 {
        self.sent_end
    }

    /// Every byte below is acknowledged.
    pub(crate) fn acked_below(&self) -> u64 {
        self.acked_below
    }

    /// The peer's credit.
    pub(crate) fn max_data(&self) -> u64 {
        self.max_data
    }

    pub(crate) fn write_end(&self) -> u64 {
        self.write_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_end_s_table_lands_on_its_target() {
        for &(from, step, to) in FIN_TRANSITIONS {
            assert_eq!(from.after(step), Some(to), "{from:?} --{step:?}-->");
        }
        // A second finish, or an acknowledgement of a FIN not (or no longer) in flight,
        // changes nothing.
        assert_eq!(Fin::Pending.after(FinStep::Finish), None);
        assert_eq!(Fin::Pending.after(FinStep::Ack), None);
        assert_eq!(Fin::Acked.after(FinStep::Lose), None);
    }

    #[test]
    fn the_spec_shows_the_end_s_table() {
        let section = crate::transitions::table_section(FIN_TRANSITIONS, "Open", &["Acked"]);
        crate::transitions::assert_spec_shows("send stream end", &section);
    }
    use alloc::vec::Vec;

    #[test]
    fn fragments_are_slices_of_the_write() {
        let data = Bytes::from(alloc::vec![9u8; 3000]);
        let mut s = SendStream::new(u64::MAX);
        s.write(data.clone());
        s.finish();
        let a = s.next_chunk(1200, u64::MAX).unwrap();
        let b = s.next_chunk(1200, u64::MAX).unwrap();
        let c = s.next_chunk(1200, u64::MAX).unwrap();
        assert_eq!((a.offset, a.data.len(), a.fin), (0, 1200, false));
        assert_eq!((b.offset, b.data.len(), b.fin), (1200, 1200, false));
        assert_eq!((c.offset, c.data.len(), c.fin), (2400, 600, true));
        assert_eq!(b.data.as_ptr(), data[1200..].as_ptr());
        assert_eq!(s.next_chunk(1200, u64::MAX), None);
    }

    #[test]
    fn lost_bytes_go_first_and_acked_bytes_are_released() {
        let mut s = SendStream::new(u64::MAX);
        s.write(Bytes::from(alloc::vec![1u8; 200]));
        s.write(Bytes::from(alloc::vec![2u8; 200]));
        let a = s.next_chunk(300, u64::MAX).unwrap(); // 0..200: one write at a time
        let b = s.next_chunk(300, u64::MAX).unwrap(); // 200..400
        assert_eq!(
            (a.offset, a.data.len(), b.offset, b.data.len()),
            (0, 200, 200, 200)
        );
        s.on_lost(0..200, false);
        s.on_acked(200..400, false);
        assert_eq!(s.unacked(), 200);
        let again = s.next_chunk(60, u64::MAX).unwrap();
        assert_eq!((again.offset, again.data.len()), (0, 60));
        s.on_acked(0..60, false);
        s.on_acked(60..200, false);
        assert_eq!(s.unacked(), 0);
        assert_eq!(s.next_chunk(1000, u64::MAX), None);
    }

    /// What a loss queues again, counted once: a probe's copy that was acknowledged leaves
    /// nothing of its original to resend, and bytes queued already (a probe's copy, then
    /// the fallback's loss of everything in flight) are not counted twice.
    #[test]
    fn a_loss_counts_only_the_bytes_it_queues_again() {
        let mut s = SendStream::new(u64::MAX);
        s.write(Bytes::from(alloc::vec![1u8; 400]));
        let _ = s.next_chunk(1000, u64::MAX).unwrap(); // 0..400
        assert_eq!(s.on_lost(100..300, false), 200, "a first loss");
        assert_eq!(s.on_lost(0..400, false), 200, "0..100 and 300..400 only");
        let copy = s.next_chunk(1000, u64::MAX).unwrap();
        assert_eq!((copy.offset, copy.data.len()), (0, 400));
        s.on_acked(200..400, false);
        assert_eq!(
            s.on_lost(0..400, false),
            200,
            "the acknowledged half is not sent again"
        );
        assert_eq!(s.on_lost(150..400, false), 0, "150..200 is queued already");
    }

    #[test]
    fn small_writes_are_joined_into_one_frame() {
        let mut s = SendStream::new(u64::MAX);
        let big = Bytes::from(alloc::vec![7u8; 600]);
        s.write(big.clone());
        // Tiny writes after a large one: the first joins nothing (the large one is past
        // the joining size), the rest join it, up to 512 bytes per run.
        for i in 0..600u32 {
            s.write(Bytes::from(alloc::vec![i as u8]));
        }
        let sizes: Vec<(u64, usize)> = core::iter::from_fn(|| s.next_chunk(1200, u64::MAX))
            .map(|c| (c.offset, c.data.len()))
            .collect();
        assert_eq!(sizes, alloc::vec![(0, 600), (600, 512), (1112, 88)]);
        // A large write is never copied, even right after small ones.
        let mut t = SendStream::new(u64::MAX);
        t.write(Bytes::from_static(b"abc"));
        t.write(big.clone());
        let first = t.next_chunk(1200, u64::MAX).unwrap();
        let second = t.next_chunk(1200, u64::MAX).unwrap();
        assert_eq!((first.data.len(), second.data.as_ptr()), (3, big.as_ptr()));
        // Out of order, with gaps: a piece joins only the one it continues.
        let mut u = SendStream::new(u64::MAX);
        assert!(u.write_at(10, Bytes::from_static(b"kl")));
        assert!(u.write_at(0, Bytes::from_static(b"ab")));
        assert!(u.write_at(2, Bytes::from_static(b"cd")));
        assert!(!u.write_at(3, Bytes::from_static(b"x")), "written before");
        let chunks: Vec<Bytes> = core::iter::from_fn(|| u.next_chunk(1200, u64::MAX))
            .map(|c| c.data)
            .collect();
        assert_eq!(
            chunks,
            alloc::vec![Bytes::from_static(b"abcd"), Bytes::from_static(b"kl")]
        );
    }

    #[test]
    fn credit_limits_new_data_and_fin_follows_the_last_byte() {
        let mut s = SendStream::new(50);
        s.write(Bytes::from(alloc::vec![1u8; 100]));
        s.finish();
        assert_eq!(s.next_chunk(1000, 20).unwrap().data.len(), 20);
        assert_eq!(s.next_chunk(1000, u64::MAX).unwrap().data.len(), 30);
        assert!(s.blocked_limit().is_some());
        assert_eq!(s.next_chunk(1000, u64::MAX), None);
        s.set_max_data(100);
        let last = s.next_chunk(1000, u64::MAX).unwrap();
        assert_eq!((last.offset, last.data.len(), last.fin), (50, 50, true));
        s.on_lost(50..100, true);
        assert!(s.next_chunk(1000, u64::MAX).unwrap().fin);
        s.on_acked(0..100, true);
        assert!(s.is_done());
    }

    #[test]
    fn out_of_order_writes_go_lowest_first_and_gaps_use_no_connection_credit() {
        let data = Bytes::from((0..=255u8).cycle().take(3000).collect::<alloc::vec::Vec<u8>>());
        let mut s = SendStream::new(u64::MAX);
        // A pipe's fragments, last first; the final size is known before they all came.
        assert!(s.finish_at(3000));
        assert!(s.write_at(2000, data.slice(2000..3000)));
        let last = s.next_chunk(1200, u64::MAX).unwrap();
        assert_eq!((last.offset, last.data.len(), last.fin), (2000, 1000, true));
        assert_eq!(last.data.as_ptr(), data[2000..].as_ptr());
        // Connection credit counts the highest offset sent: all 3000 bytes are paid for.
        assert_eq!(s.sent_end(), 3000);
        assert!(s.write_at(0, data.slice(0..1000)));
        assert!(s.write_at(1000, data.slice(1000..2000)));
        assert!(
            !s.write_at(500, data.slice(500..1500)),
            "overlaps what was written"
        );
        assert!(!s.write_at(2500, data.slice(0..1000)), "past the final size");
        // The gap below is filled lowest first and needs no further credit.
        let a = s.next_chunk(1200, 0).unwrap();
        let b = s.next_chunk(1200, 0).unwrap();
        assert_eq!(
            (a.offset, a.data.len(), b.offset, b.data.len()),
            (0, 1000, 1000, 1000)
        );
        assert!(!a.fin && !b.fin);
        assert_eq!(s.next_chunk(1200, u64::MAX), None);
        s.on_acked(2000..3000, true);
        assert_eq!(s.unacked(), 2000);
        s.on_acked(0..2000, false);
        assert!(s.is_done());
        assert_eq!(s.unacked(), 0);
    }

    #[test]
    fn a_final_size_learned_after_the_last_byte_went_sends_a_bare_fin() {
        let mut s = SendStream::new(u64::MAX);
        assert!(s.write_at(0, Bytes::from_static(b"abcd")));
        assert_eq!(s.next_chunk(100, u64::MAX).unwrap().data.len(), 4);
        assert!(!s.finish_at(3), "bytes were written past it");
        assert!(s.finish_at(4));
        let c = s.next_chunk(100, u64::MAX).unwrap();
        assert_eq!((c.offset, c.data.len(), c.fin), (4, 0, true));
    }

    #[test]
    fn new_bytes_far_ahead_wait_for_connection_credit() {
        let mut s = SendStream::new(u64::MAX);
        assert!(s.write_at(1000, Bytes::from(alloc::vec![1u8; 100])));
        // Sending 1000..1100 uses 1100 bytes of connection credit.
        assert_eq!(s.next_chunk(1200, 500), None);
        let c = s.next_chunk(1200, 1050).unwrap();
        assert_eq!((c.offset, c.data.len()), (1000, 50));
    }

    #[test]
    fn an_empty_finished_stream_sends_one_fin() {
        let mut s = SendStream::new(0);
        s.finish();
        let c = s.next_chunk(1000, 0).unwrap();
        assert_eq!((c.offset, c.data.len(), c.fin), (0, 0, true));
        assert_eq!(s.next_chunk(1000, 0), None);
        assert!(!s.write(Bytes::from_static(b"late")));
        assert_eq!(s.unacked(), 0);
    }
}
