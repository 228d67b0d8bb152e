//! `send_stream`: any sequence of writes (appended, or at any offset as a pipe writes),
//! finishes, credit raises, chunks taken for frames, and acknowledgements and losses of
//! the frames sent, against one send stream (`stream::send`), checked after every step
//! against a model that keeps one state per byte.
//!
//! Oracle (spec/protocol.md §4.12, spec/state-machines.md "Send stream: its end"): a write
//! is taken exactly when the model's rules take it; every chunk holds the bytes written at
//! its offsets, never an acknowledged byte, lost bytes before new ones, new bytes only
//! within the stream's credit and the connection credit given; FIN rides exactly on the
//! chunk that reaches a pending final size (or alone, once every byte was sent); what the
//! stream counts unacknowledged is what the model does; and at the end, with credit
//! unlimited and every chunk acknowledged, every byte written was sent and the stream is
//! done if it was finished.

use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;

use crate::stream::send::{Chunk, SendStream};

/// Offsets written stay below this.
const MAX_END: u64 = 8 * 1024;
const MAX_STEPS: usize = 600;
/// Chunks taken at the end before giving up on the stream draining.
const MAX_DRAIN: usize = 10_000;

/// The byte at `offset` of the stream: every offset's differs from its neighbours'.
fn content(offset: u64) -> u8 {
    (offset as u8) ^ ((offset >> 8) as u8).wrapping_mul(31)
}

/// What the model knows of one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Byte {
    NotWritten,
    /// Written, never sent.
    Unsent,
    /// Sent, neither acknowledged nor lost since.
    InFlight,
    /// Sent and declared lost, not acknowledged since: to send again.
    Lost,
    Acked,
}

/// The model's view of the stream's end (`stream::send::Fin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Open,
    Pending,
    Sent,
    Acked,
}

/// The model. It keeps its counts as bytes change state rather than counting at every
/// step: a comparison per byte per step is a call per byte into the fuzzer's comparison
/// hooks, which took most of the target's time.
struct Model {
    bytes: Vec<Byte>,
    /// One past the last byte written, or the final size once finished.
    write_end: u64,
    sent_end: u64,
    max_data: u64,
    end: End,
    /// Chunks handed out, to acknowledge or lose: offset, length, FIN.
    sent: Vec<(u64, u64, bool)>,
    /// Bytes written and not acknowledged.
    unacked: u64,
    /// Every byte below is acknowledged.
    acked_below: u64,
    /// No byte below is lost, and none below is unsent.
    lost_from: u64,
    unsent_from: u64,
}

impl Model {
    fn new(max_data: u64) -> Self {
        Model {
            bytes: Vec::new(),
            write_end: 0,
            sent_end: 0,
            max_data,
            end: End::Open,
            sent: Vec::new(),
            unacked: 0,
            acked_below: 0,
            lost_from: 0,
            unsent_from: 0,
        }
    }

    fn at(&self, offset: u64) -> Byte {
        self.bytes
            .get(offset as usize)
            .copied()
            .unwrap_or(Byte::NotWritten)
    }

    fn set(&mut self, range: core::ops::Range<u64>, to: impl Fn(Byte) -> Byte) {
        if self.bytes.len() < range.end as usize {
            self.bytes.resize(range.end as usize, Byte::NotWritten);
        }
        let held = |b: Byte| u64::from(!matches!(b, Byte::NotWritten | Byte::Acked));
        for (b, offset) in self.bytes[range.start as usize..range.end as usize]
            .iter_mut()
            .zip(range)
        {
            let new = to(*b);
            self.unacked = self.unacked + held(new) - held(*b);
            match new {
                Byte::Lost => self.lost_from = self.lost_from.min(offset),
                Byte::Unsent => self.unsent_from = self.unsent_from.min(offset),
                _ => {}
            }
            *b = new;
        }
        while self.at(self.acked_below) == Byte::Acked {
            self.acked_below += 1;
        }
    }

    /// Whether `write_at(offset, len)` is taken (`len` > 0).
    fn takes_write(&self, offset: u64, len: u64) -> bool {
        let end = offset + len;
        let past_final = self.end != End::Open && end > self.write_end;
        !past_final && offset >= self.acked_below && (offset..end).all(|o| self.at(o) == Byte::NotWritten)
    }

    /// The first lost byte, and the first unsent one the stream's credit allows.
    fn first_lost_and_unsent(&mut self) -> (Option<u64>, Option<u64>) {
        let first = |bytes: &[Byte], from: &mut u64, state: Byte| {
            let at = bytes
                .get(*from as usize..)
                .unwrap_or_default()
                .iter()
                .position(|&b| b == state);
            *from = at.map_or(bytes.len() as u64, |p| *from + p as u64);
            at.map(|_| *from)
        };
        let lost = first(&self.bytes, &mut self.lost_from, Byte::Lost);
        let unsent = first(&self.bytes, &mut self.unsent_from, Byte::Unsent);
        (lost, unsent.filter(|&o| o < self.max_data))
    }
}

/// `send_stream`: one send stream against its model (module docs).
pub fn send_stream(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let max_data = u.int_in_range(0..=MAX_END)?;
    let (mut s, mut m) = (SendStream::new(max_data), Model::new(max_data));
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0u8..=9)? {
            0..=1 => {
                let len = u.int_in_range(0..=(MAX_END - m.write_end).min(3000))?;
                write(&mut s, &mut m, None, len);
            }
            2 => {
                let offset = u.int_in_range(0..=MAX_END - 1)?;
                let len = u.int_in_range(1..=(MAX_END - offset).min(1500))?;
                write(&mut s, &mut m, Some(offset), len);
            }
            3 => {
                let at = if u.arbitrary()? {
                    Some(u.int_in_range(0..=MAX_END)?)
                } else {
                    None
                };
                finish(&mut s, &mut m, at);
            }
            4 => {
                let max = u.int_in_range(0..=MAX_END)?;
                s.set_max_data(max);
                m.max_data = m.max_data.max(max);
            }
            5..=7 => {
                let max_len = u.int_in_range(0..=1500usize)?;
                let credit = u.int_in_range(0..=4000u64)?;
                take(&mut s, &mut m, max_len, credit);
            }
            _ => {
                if m.sent.is_empty() {
                    continue;
                }
                let i = u.choose_index(m.sent.len())?;
                acked_or_lost(&mut s, &mut m, i, u.arbitrary()?);
            }
        }
        assert_eq!(s.unacked(), m.unacked, "bytes unacknowledged");
        assert_eq!(s.acked_below(), m.acked_below, "acknowledged prefix");
        assert_eq!(s.sent_end(), m.sent_end, "highest byte sent");
    }
    drain(&mut s, &mut m);
    Ok(())
}

/// Writes `len` bytes after what was written, or at `offset`.
fn write(s: &mut SendStream, m: &mut Model, offset: Option<u64>, len: u64) {
    let at = offset.unwrap_or(m.write_end);
    let bytes: Bytes = (at..at + len).map(content).collect::<Vec<u8>>().into();
    let taken = match offset {
        None => s.write(bytes),
        Some(offset) => s.write_at(offset, bytes),
    };
    let expected = match offset {
        None => m.end == End::Open,
        Some(offset) => m.takes_write(offset, len),
    };
    assert_eq!(taken, expected, "write of {len} at {at}");
    if taken && len > 0 {
        m.set(at..at + len, |_| Byte::Unsent);
        m.write_end = m.write_end.max(at + len);
    }
}

/// Finishes the stream after what was written, or at `size`.
fn finish(s: &mut SendStream, m: &mut Model, size: Option<u64>) {
    match size {
        None => {
            s.finish();
            if m.end == End::Open {
                m.end = End::Pending;
            }
        }
        Some(size) => {
            let expected = m.end == End::Open && m.write_end <= size;
            assert_eq!(s.finish_at(size), expected, "finish at {size}");
            if expected {
                m.end = End::Pending;
                m.write_end = size;
            }
        }
    }
    assert_eq!(s.is_finished(), m.end != End::Open, "finished");
}

/// Takes the next chunk, of at most `max_len` bytes and `credit` new ones, and checks it.
fn take(s: &mut SendStream, m: &mut Model, max_len: usize, credit: u64) {
    let firsts = m.first_lost_and_unsent();
    let chunk = s.next_chunk(max_len, credit);
    check(m, firsts, chunk.as_ref(), max_len, credit);
    if let Some(chunk) = chunk {
        record(m, &chunk);
    }
}

/// The oracle on one answer of `next_chunk(max_len, credit)`, given the first lost byte and
/// the first unsent one within credit before it (`Model::first_lost_and_unsent`).
fn check(
    m: &Model,
    (lost, unsent): (Option<u64>, Option<u64>),
    chunk: Option<&Chunk>,
    max_len: usize,
    credit: u64,
) {
    let bare_fin = m.end == End::Pending && m.sent_end == m.write_end;
    let Some(Chunk { offset, data, fin }) = chunk else {
        if max_len > 0 {
            assert_eq!(lost, None, "lost bytes wait, no chunk");
            assert!(!bare_fin, "a bare FIN waits, no chunk");
            if let Some(o) = unsent {
                // Sending a byte at `o` past the highest sent uses credit up to it (the
                // connection counts the highest offset, RFC 9000 §4.1).
                assert!(
                    o >= m.sent_end && o - m.sent_end >= credit,
                    "bytes at {o} wait, no chunk"
                );
            }
        }
        return;
    };
    let (offset, fin) = (*offset, *fin);
    let end = offset + data.len() as u64;
    assert!(data.len() <= max_len, "chunk longer than allowed");
    assert!(!data.is_empty() || fin, "an empty chunk without FIN");
    if let Some(first) = lost {
        assert_eq!(offset, first, "lost bytes go first");
        assert!(
            (offset..end).all(|o| m.at(o) == Byte::Lost),
            "a resent chunk beyond the lost bytes"
        );
    } else if !data.is_empty() {
        assert_eq!(Some(offset), unsent, "new bytes lowest first");
        assert!(
            (offset..end).all(|o| m.at(o) == Byte::Unsent),
            "a new chunk past the unsent bytes"
        );
        assert!(end <= m.max_data, "new bytes past the stream's credit");
        assert!(
            end.saturating_sub(m.sent_end) <= credit,
            "new bytes past the connection credit"
        );
    } else {
        assert!(bare_fin, "a bare FIN not due");
    }
    // One slice comparison, not a call per byte into the comparison hooks.
    let written: Vec<u8> = (offset..end).map(content).collect();
    assert!(
        data[..] == written[..],
        "chunk at {offset} holds other bytes than were written"
    );
    let fin_due = m.end == End::Pending && end == m.write_end;
    assert_eq!(fin, fin_due, "FIN on the chunk ending at {end}");
}

/// What the model learns from a chunk handed out.
fn record(m: &mut Model, chunk: &Chunk) {
    let end = chunk.offset + chunk.data.len() as u64;
    if chunk.fin {
        m.end = End::Sent;
    }
    m.set(chunk.offset..end, |_| Byte::InFlight);
    m.sent_end = m.sent_end.max(end);
    m.sent.push((chunk.offset, chunk.data.len() as u64, chunk.fin));
}

/// The frame carrying chunk `i` was acknowledged, or lost.
fn acked_or_lost(s: &mut SendStream, m: &mut Model, i: usize, acked: bool) {
    let (offset, len, fin) = m.sent[i];
    let range = offset..offset + len;
    if acked {
        s.on_acked(range.clone(), fin);
        m.set(range, |_| Byte::Acked);
        if fin && m.end == End::Sent {
            m.end = End::Acked;
        }
        m.sent.swap_remove(i);
    } else {
        s.on_lost(range.clone(), fin);
        m.set(range, |b| if b == Byte::Acked { b } else { Byte::Lost });
        if fin && m.end == End::Sent {
            m.end = End::Pending;
        }
        m.sent.swap_remove(i);
    }
}

/// Unlimited credit, every chunk taken and acknowledged: every byte written goes, and a
/// finished stream is done.
fn drain(s: &mut SendStream, m: &mut Model) {
    s.set_max_data(u64::MAX);
    m.max_data = u64::MAX;
    for _ in 0..MAX_DRAIN {
        while !m.sent.is_empty() {
            acked_or_lost(s, m, 0, true);
        }
        let before = m.sent.len();
        take(s, m, 1500, u64::MAX);
        if m.sent.len() == before {
            break;
        }
    }
    assert_eq!(s.unacked(), 0, "bytes left unacknowledged");
    assert_eq!(m.unacked, 0, "the model's bytes left unacknowledged");
    assert!(
        m.bytes
            .iter()
            .all(|&b| matches!(b, Byte::NotWritten | Byte::Acked)),
        "bytes never sent"
    );
    let gapless = (0..m.write_end).all(|o| m.at(o) == Byte::Acked);
    assert_eq!(
        s.is_done(),
        m.end == End::Acked && gapless,
        "done, for a stream {:?} with every byte acknowledged: {gapless}",
        m.end
    );
    if m.end != End::Open && gapless {
        assert!(s.is_done(), "a finished, fully acknowledged stream not done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bytes_go_within_credit_and_a_finished_stream_drains() {
        let (mut s, mut m) = (SendStream::new(1000), Model::new(1000));
        write(&mut s, &mut m, None, 1500);
        finish(&mut s, &mut m, None);
        take(&mut s, &mut m, 600, 4000);
        take(&mut s, &mut m, 600, 4000);
        // The stream's credit stops the rest.
        take(&mut s, &mut m, 600, 4000);
        assert_eq!(m.sent.len(), 2);
        acked_or_lost(&mut s, &mut m, 0, false);
        take(&mut s, &mut m, 1500, 0);
        assert_eq!(
            m.sent.last(),
            Some(&(0, 600, false)),
            "the lost chunk again, first"
        );
        drain(&mut s, &mut m);
        assert!(s.is_done());
    }

    #[test]
    #[should_panic(expected = "new bytes past the connection credit")]
    fn the_oracle_fires_on_new_bytes_past_the_connection_credit() {
        let (mut s, mut m) = (SendStream::new(1000), Model::new(1000));
        write(&mut s, &mut m, None, 500);
        // The stream was given 200 bytes of connection credit; the oracle is told 100.
        let firsts = m.first_lost_and_unsent();
        let chunk = s.next_chunk(1500, 200);
        check(&m, firsts, chunk.as_ref(), 1500, 100);
    }

    #[test]
    #[should_panic(expected = "lost bytes go first")]
    fn the_oracle_fires_on_new_bytes_before_lost_ones() {
        let (mut s, mut m) = (SendStream::new(1000), Model::new(1000));
        write(&mut s, &mut m, None, 500);
        take(&mut s, &mut m, 100, 1000);
        // The model hears of a loss the stream is not told of.
        m.set(0..100, |_| Byte::Lost);
        let firsts = m.first_lost_and_unsent();
        let chunk = s.next_chunk(1500, 1000);
        check(&m, firsts, chunk.as_ref(), 1500, 1000);
    }
}
