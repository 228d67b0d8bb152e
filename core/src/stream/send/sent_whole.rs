//! A send half with nothing left to it but its acknowledgements, kept small
//! ([`SentWhole`]): what module `connection::in_flight` keeps of a stream in flight, and
//! the half made again from it, as it was, for anything else (spec/protocol.md §4.12).
//!
//! Inputs: a send half whose every byte and FIN went once; the acknowledgements of its
//! frames. Outputs: what each acknowledgement released and whether the stream is done, or
//! that only the half itself can take it. A child of module `send`, so that it reads and
//! makes the half's own fields, and the rules that say when a half is one stay beside them.

use core::ops::Range;

use bytes::Bytes;

use super::{Fin, SendStream};
use crate::range_set::RangeSet;
use crate::stream::by_offset::ByOffset;

/// A send half whose every byte and FIN went once, with nothing lost, nothing acknowledged
/// out of order and no blocked report kept: what it still holds is the one written piece
/// not yet acknowledged whole, from `start`, and how much of it is acknowledged. A stream
/// kept so waits for its acknowledgements in 56 bytes instead of a send half's 216 (module
/// `connection::in_flight`); made back into the very half it was
/// ([`SendStream::from_sent_whole`]) the moment anything else happens to it.
#[derive(Debug)]
pub(crate) struct SentWhole {
    data: Bytes,
    start: u64,
    acked_below: u64,
    max_data: u64,
}

impl SendStream {
    /// The half as a [`SentWhole`], taken out (the half is left empty, to be dropped), if it
    /// is one: its FIN sent and not acknowledged, no byte waiting to go, nothing written
    /// past a gap, lost or acknowledged out of order, no blocked report kept, and one
    /// written piece left, reaching its end.
    pub(crate) fn take_sent_whole(&mut self) -> Option<SentWhole> {
        let clean = self.fin == Fin::Sent
            && self.repair.is_none()
            && self.unsent.is_empty()
            && self.blocked_reported.is_none()
            && self.sent_end == self.write_end
            && self.written == self.write_end
            && self.acked_bytes == self.acked_below
            && self.chunks.len() == 1
            && self.chunks.first().is_some_and(|(start, data)| {
                start + data.len() as u64 == self.write_end && start <= self.acked_below
            });
        if !clean {
            return None;
        }
        let (start, data) = self.chunks.pop_first()?;
        Some(SentWhole {
            data,
            start,
            acked_below: self.acked_below,
            max_data: self.max_data,
        })
    }

    /// The half `sent` was taken from, as it was. Out of line: rare (a loss, an
    /// acknowledgement out of order, a call naming the stream), and inlined it changed what
    /// the compiler inlined of the pieces' map on the hot paths.
    #[cold]
    #[inline(never)]
    pub(crate) fn from_sent_whole(sent: SentWhole) -> SendStream {
        let write_end = sent.end();
        SendStream {
            chunks: ByOffset::one(sent.start, sent.data),
            acked_below: sent.acked_below,
            repair: None,
            unsent: RangeSet::new(),
            written: write_end,
            acked_bytes: sent.acked_below,
            write_end,
            sent_end: write_end,
            max_data: sent.max_data,
            blocked_reported: None,
            fin: Fin::Sent,
        }
    }
}

/// What an acknowledgement did to a [`SentWhole`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SentWholeAck {
    /// Taken in place: `released` more bytes acknowledged, and whether that was the last of
    /// them with the FIN (the stream is done).
    Taken { released: u64, done: bool },
    /// Not one it can take as it is (out of order, or its piece acknowledged whole while
    /// the FIN is not): nothing changed; the half is made again to take it.
    Repair,
}

impl SentWhole {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// Bytes not yet acknowledged.
    pub(crate) fn unacked(&self) -> u64 {
        self.end() - self.acked_below
    }

    /// The frame carrying `range` (and FIN if `fin`) was acknowledged: what
    /// [`SendStream::on_acked`] does, for the acknowledgements that leave a sent whole one
    /// (in order, the FIN with the last byte).
    pub(crate) fn on_acked(&mut self, range: Range<u64>, fin: bool) -> SentWholeAck {
        let end = self.end();
        let acked_below = self.acked_below.max(range.end);
        let done = fin && acked_below == end;
        if range.start > self.acked_below || (fin && !done) || (!done && acked_below >= end) {
            return SentWholeAck::Repair;
        }
        let released = acked_below - self.acked_below;
        self.acked_below = acked_below;
        SentWholeAck::Taken { released, done }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A message of `len` bytes, finished and sent in pieces of at most `piece` bytes: the
    /// ranges its frames carried, the last with FIN.
    fn sent_message(len: usize, piece: usize) -> (SendStream, Vec<(Range<u64>, bool)>) {
        let mut s = SendStream::new(1 << 20);
        assert!(s.write(Bytes::from(alloc::vec![3u8; len])));
        s.finish();
        let mut frames = Vec::new();
        while let Some(c) = s.next_chunk(piece, u64::MAX) {
            frames.push((c.offset..c.offset + c.data.len() as u64, c.fin));
        }
        (s, frames)
    }

    /// A half taken as sent whole and made again is the half it was, before any
    /// acknowledgement and after some in order; one that is not sent whole is not taken.
    #[test]
    fn a_half_sent_whole_is_made_again_as_it_was() {
        let (mut s, frames) = sent_message(3000, 1200);
        let was = summary(&s);
        let whole = s.take_sent_whole().expect("sent whole");
        assert_eq!(whole.unacked(), 3000);
        let mut s = SendStream::from_sent_whole(whole);
        assert_eq!(summary(&s), was);
        s.on_acked(frames[0].0.clone(), frames[0].1);
        let was = summary(&s);
        let whole = s.take_sent_whole().expect("acknowledged in order");
        assert_eq!(whole.unacked(), 1800);
        assert_eq!(summary(&SendStream::from_sent_whole(whole)), was);

        // Not sent whole: its FIN not sent, a piece lost, a piece acknowledged out of order.
        let mut unsent = SendStream::new(1 << 20);
        assert!(unsent.write(Bytes::from_static(b"abc")));
        assert!(unsent.take_sent_whole().is_none());
        let (mut lost, frames) = sent_message(3000, 1200);
        lost.on_lost(frames[1].0.clone(), false);
        assert!(lost.take_sent_whole().is_none());
        let (mut ahead, frames) = sent_message(3000, 1200);
        ahead.on_acked(frames[1].0.clone(), false);
        assert!(ahead.take_sent_whole().is_none());
        // Nor an empty message (no piece held: its bare FIN alone in flight).
        let (mut empty, _) = sent_message(0, 1200);
        assert!(empty.take_sent_whole().is_none());
    }

    /// Every order of acknowledgements (and their repeats) leaves a half sent whole as it
    /// leaves the half itself: what each releases, when the stream is done, and, where the
    /// sent whole form cannot take one, the half made again takes it the same.
    #[test]
    fn a_half_sent_whole_takes_acknowledgements_as_the_half_does() {
        for (len, piece) in [(1, 1200), (1024, 1200), (3000, 1200), (2400, 1200), (5000, 700)] {
            let (_, frames) = sent_message(len, piece);
            let n = frames.len();
            // Each order of the frames, then each frame again (duplicate acknowledgements).
            let mut orders: Vec<Vec<usize>> = Vec::new();
            let mut order: Vec<usize> = (0..n).collect();
            permutations(&mut order, 0, &mut orders);
            for order in orders {
                let (mut half, _) = sent_message(len, piece);
                let (copy, _) = sent_message(len, piece);
                let mut copy = Some(copy);
                let mut whole = copy.as_mut().and_then(SendStream::take_sent_whole);
                let mut made_again: Option<SendStream> = None;
                for &i in order.iter().chain(order.iter()) {
                    let (range, fin) = frames[i].clone();
                    let before = half.unacked();
                    half.on_acked(range.clone(), fin);
                    let released = before - half.unacked();
                    if let Some(w) = whole.as_mut() {
                        match w.on_acked(range.clone(), fin) {
                            SentWholeAck::Taken { released: r, done } => {
                                assert_eq!((r, done), (released, half.is_done()), "{len} {order:?}");
                                if done {
                                    whole = None;
                                }
                                continue;
                            }
                            SentWholeAck::Repair => {
                                made_again = whole.take().map(SendStream::from_sent_whole);
                            }
                        }
                    }
                    if let Some(m) = made_again.as_mut() {
                        let before = m.unacked();
                        m.on_acked(range, fin);
                        assert_eq!(before - m.unacked(), released);
                        assert_eq!(summary(m), summary(&half));
                    }
                }
                assert!(half.is_done());
                assert!(whole.is_none() && made_again.as_ref().is_none_or(SendStream::is_done));
            }
        }
    }

    /// What a half is, without its bytes or the room its sets keep: two halves that say the
    /// same are the same half.
    fn summary(s: &SendStream) -> alloc::string::String {
        let chunks: Vec<(u64, usize)> = s.chunks.iter().map(|(o, c)| (o, c.len())).collect();
        let sets = |r: &RangeSet| r.iter().collect::<Vec<_>>();
        let repair = s.repair.as_ref().map(|r| (sets(&r.acked), sets(&r.lost)));
        alloc::format!(
            "{chunks:?} {} {repair:?} {:?} {} {} {} {} {} {:?} {:?}",
            s.acked_below,
            sets(&s.unsent),
            s.written,
            s.acked_bytes,
            s.write_end,
            s.sent_end,
            s.max_data,
            s.blocked_reported,
            s.fin
        )
    }

    fn permutations(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
        if k == v.len() {
            out.push(v.clone());
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permutations(v, k + 1, out);
            v.swap(k, i);
        }
    }
}
