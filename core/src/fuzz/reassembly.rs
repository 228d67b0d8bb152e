//! `reassembly`: any sequence of STREAM data (offset, length, FIN), announced total
//! lengths, resets, reads and credit updates against one receive stream (`stream::recv`),
//! checked after every step against a model that keeps one flag per byte.
//!
//! Oracle: the stream accepts or refuses each input exactly when the model's rules do
//! (spec/protocol.md §4.5, §4.12); what it reads is the next bytes of the stream, in order,
//! each once; it holds exactly the received bytes not yet read, never more than the credit
//! it granted past the read offset; credit never shrinks and never runs more than the
//! largest window past what was read; what it holds costs at most its budget (module
//! `stream::held`), and a frame is refused for the budget only past it (the run ends there,
//! as the connection would).

use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;

use crate::stream::held::{stream_budget, Datagram};
use crate::stream::recv::{RecvError, RecvStream};
use crate::time::{Duration, Instant};

/// Largest window the stream may grow to; offsets are fuzzed a little past it.
const MAX_WINDOW: u64 = 8 * 1024;
/// How far past the largest window offsets go.
const SLACK: u64 = 512;
const MAX_STEPS: usize = 1_000;

/// The byte at `offset` of the stream: every offset's differs from its neighbours'.
fn content(offset: u64) -> u8 {
    (offset as u8) ^ ((offset >> 8) as u8).wrapping_mul(29)
}

/// What the model knows of the stream.
struct Model {
    received: Vec<bool>,
    read_offset: u64,
    highest: u64,
    final_size: Option<u64>,
    total_len: Option<u64>,
    reset: bool,
}

impl Model {
    fn end(&self) -> Option<u64> {
        self.final_size.or(self.total_len)
    }

    /// The flags from the read offset on.
    fn unread(&self) -> &[bool] {
        self.received.get(self.read_offset as usize..).unwrap_or_default()
    }

    /// Received bytes from the read offset on, without a gap.
    fn contiguous(&self) -> u64 {
        self.unread().iter().take_while(|&&r| r).count() as u64
    }

    fn held(&self) -> u64 {
        self.unread().iter().filter(|&&r| r).count() as u64
    }

    fn mark(&mut self, from: u64, to: u64) {
        if self.received.len() < to as usize {
            self.received.resize(to as usize, false);
        }
        self.received[from as usize..to as usize].fill(true);
    }

    fn insert(&self, limit: u64, end: u64, fin: bool) -> Result<(), RecvError> {
        if end > limit {
            return Err(RecvError::FlowControl);
        }
        if self.total_len.is_some_and(|t| end > t || (fin && end != t)) {
            return Err(RecvError::FinalSize);
        }
        match self.final_size {
            Some(size) if end > size || (fin && end != size) => Err(RecvError::FinalSize),
            None if fin && end < self.highest => Err(RecvError::FinalSize),
            _ => Ok(()),
        }
    }
}

/// `reassembly`: STREAM data, total lengths, resets, reads and credit updates against one
/// receive stream, which must agree with a one-flag-per-byte model.
pub fn reassembly(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let initial = u.int_in_range(1..=MAX_WINDOW)?;
    let max = u.int_in_range(initial..=MAX_WINDOW)?;
    let mut s = RecvStream::auto_tuned(initial, max);
    let mut m = Model {
        received: Vec::new(),
        read_offset: 0,
        highest: 0,
        final_size: None,
        total_len: None,
        reset: false,
    };
    let mut now = Instant::ZERO;
    let rtt = Duration::from_millis(u.int_in_range(1..=200)?);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let limit = s.max_data();
        match u.int_in_range(0u8..=9)? {
            0..=4 => {
                // Mostly near the credit, so both sides of it are reached.
                let offset = u.int_in_range(m.read_offset..=limit + SLACK)?;
                let len = u.int_in_range(0..=1500u64)?;
                let fin = u.ratio(1, 8)?;
                // The rest of its datagram: small pieces of large datagrams are copied.
                let datagram_len = len as usize + u.int_in_range(0..=1500usize)?;
                let end = offset + len;
                let bytes: Bytes = (offset..end).map(content).collect::<Vec<u8>>().into();
                let expected = m.insert(limit, end, fin);
                let got = s.insert_from(offset, bytes, fin, &mut Datagram::new(datagram_len));
                if got == Err(RecvError::OverBudget) {
                    // What the model does not count: the heap the pieces cost. Refused only
                    // past the budget, which ends the connection: so ends the run.
                    assert!(s.cost() > stream_budget(s.window()), "refused within the budget");
                    return Ok(());
                }
                assert_eq!(got.map(|_| ()), expected, "insert {offset}+{len} fin {fin}");
                assert!(s.cost() <= stream_budget(s.window()), "held past the budget");
                if let Ok(grown) = got {
                    assert_eq!(
                        grown,
                        end.saturating_sub(m.highest),
                        "growth of the highest offset"
                    );
                    m.highest = m.highest.max(end);
                    if fin {
                        m.final_size = Some(end);
                    }
                    if !m.reset {
                        m.mark(offset, end);
                    }
                }
            }
            5..=6 => {
                let max_len = u.int_in_range(0..=4096usize)?;
                let contiguous = if m.reset { 0 } else { m.contiguous() };
                match s.read(max_len) {
                    None => assert!(contiguous == 0 || max_len == 0, "{contiguous} bytes not read"),
                    Some((offset, bytes)) => {
                        assert_eq!(offset, m.read_offset, "read out of order");
                        assert!(!bytes.is_empty() && bytes.len() <= max_len, "read length");
                        assert!(bytes.len() as u64 <= contiguous, "read past a gap");
                        for (i, &b) in bytes.iter().enumerate() {
                            assert_eq!(b, content(offset + i as u64), "byte {}", offset + i as u64);
                        }
                        m.read_offset += bytes.len() as u64;
                    }
                }
            }
            7 => {
                now += Duration::from_micros(u.int_in_range(0..=500_000)?);
                if let Some(new) = s.credit_update(now, rtt) {
                    assert!(new > limit, "credit announced without growing");
                }
            }
            8 => {
                let total = u.int_in_range(0..=limit + SLACK)?;
                let refused = (!m.reset && m.final_size.is_some_and(|f| f != total))
                    || m.total_len.is_some_and(|t| t != total)
                    || m.highest > total
                    || m.final_size.is_some_and(|f| f > total);
                let got = s.set_total_len(total);
                assert_eq!(got.is_err(), refused, "total length {total}");
                if got.is_ok() {
                    m.total_len = Some(total);
                }
            }
            _ => {
                let size = u.int_in_range(0..=limit + SLACK)?;
                let expected = if size < m.highest
                    || m.final_size.is_some_and(|f| f != size)
                    || m.total_len.is_some_and(|t| size > t)
                {
                    Err(RecvError::FinalSize)
                } else if size > limit {
                    Err(RecvError::FlowControl)
                } else {
                    Ok(())
                };
                assert_eq!(s.reset(9, size), expected, "reset at {size}");
                if expected.is_ok() {
                    m.final_size = Some(size);
                    m.highest = size;
                    m.reset = true;
                    m.received.fill(false);
                }
            }
        }
        check(&s, &m, limit);
    }
    Ok(())
}

/// The invariants that hold between any two inputs.
fn check(s: &RecvStream, m: &Model, old_limit: u64) {
    let held = if m.reset { 0 } else { m.held() };
    assert_eq!(s.buffered(), held, "bytes held");
    assert!(s.max_data() >= old_limit, "credit shrank");
    assert!(
        s.max_data() <= old_limit.max(m.read_offset + MAX_WINDOW),
        "credit ran more than the largest window past the reads"
    );
    assert!(
        held <= s.max_data() - m.read_offset,
        "held more than the credit granted"
    );
    assert_eq!(s.read_offset(), m.read_offset);
    assert_eq!(s.highest(), m.highest);
    assert_eq!(s.end(), m.end());
    assert_eq!(s.is_readable(), !m.reset && m.contiguous() > 0, "readable");
    assert_eq!(
        s.is_finished(),
        !m.reset && m.end() == Some(m.read_offset),
        "finished"
    );
}
