//! `flow`: the two halves of flow control (`flow`, RFC 9000 §4) joined by a channel the
//! fuzzer controls. A receiver's [`ReceiveWindow`] announces limits as its application
//! reads; the announcements travel to a sender's [`SendCredit`] through a network that
//! loses, duplicates and reorders them; the sender sends what its credit allows, and the
//! data arrives in any order.
//!
//! Oracle: credit is never exceeded (the sender's idea of its limit never passes what the
//! receiver announced, so what arrives never passes the receiver's limit); the limit never
//! shrinks, never runs more than the largest window past what was read and never past a
//! known end; the window stays within its bounds; a sender is told it is blocked only when
//! it is, once per limit unless that report was lost; and when everything sent was read,
//! the receiver always has a new limit to announce (no deadlock).

use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};

use crate::flow::{ReceiveWindow, SendCredit};
use crate::time::{Duration, Instant};

const MAX_STEPS: usize = 2_000;
/// Most announcements and data chunks in flight at once (more are dropped).
const MAX_IN_FLIGHT: usize = 64;

/// `flow`: a receive window and a send credit joined by a lossy, reordering channel; credit
/// is never exceeded and never deadlocks.
pub fn flow(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let initial = u.int_in_range(1..=1u64 << 16)?;
    let max = u.int_in_range(initial..=1u64 << 20)?;
    // The stream's known end, as if its total length was announced.
    let end: Option<u64> = if u.arbitrary()? {
        Some(u.int_in_range(0..=1u64 << 22)?)
    } else {
        None
    };
    let rtt = Duration::from_millis(u.int_in_range(1..=300)?);
    let mut window = ReceiveWindow::new(initial, max);
    let mut credit = SendCredit::new(initial);
    let mut now = Instant::ZERO;
    // Limits announced and not yet delivered; data sent and not yet received.
    let mut announcements: Vec<u64> = Vec::new();
    let mut chunks: Vec<u64> = Vec::new();
    let (mut sent, mut received, mut read) = (0u64, 0u64, 0u64);
    // The limit last reported as blocked at, while that report stands.
    let mut reported: Option<u64> = None;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let pick = usize::from(u.arbitrary::<u8>()?);
        match u.int_in_range(0u8..=9)? {
            0..=1 => {
                let room = credit.available().min(end.map_or(u64::MAX, |e| e - sent));
                let n = u.int_in_range(0..=room.min(1 << 16))?;
                if n > 0 && chunks.len() < MAX_IN_FLIGHT {
                    credit.consume(n);
                    sent += n;
                    chunks.push(n);
                }
            }
            2..=3 if !chunks.is_empty() => {
                received += chunks.swap_remove(pick % chunks.len());
                assert!(received <= window.limit(), "data past the credit granted");
            }
            4..=5 => {
                read = read.saturating_add(u.int_in_range(0..=1u64 << 16)?).min(received);
                let before = (window.limit(), window.window());
                let update = window.update(read, end, now, rtt);
                match update {
                    Some(limit) => {
                        assert!(limit > before.0, "an announcement that does not grow the limit");
                        assert!(limit <= read + window.window(), "credit past the window");
                        if announcements.len() < MAX_IN_FLIGHT {
                            announcements.push(limit);
                        }
                    }
                    None => assert_eq!(window.limit(), before.0, "the limit moved unannounced"),
                }
                assert!(window.limit() >= before.0, "the limit shrank");
                assert!(
                    window.window() >= before.1 && window.window() <= max,
                    "window out of bounds"
                );
                if let Some(e) = end {
                    assert!(window.limit() <= before.0.max(e), "credit past the known end");
                }
                let idle = read == received && sent == received && window.limit() == read;
                if idle && end.is_none_or(|e| read < e) {
                    // Everything granted was sent and read: without a new limit, both
                    // sides would wait forever.
                    assert!(
                        update.is_some(),
                        "deadlock: all credit used and read, none announced"
                    );
                }
            }
            6 if !announcements.is_empty() => {
                let i = pick % announcements.len();
                let limit = if u.arbitrary()? {
                    announcements[i]
                } else {
                    announcements.swap_remove(i)
                };
                let old = credit.limit();
                let grew = credit.raise(limit);
                assert_eq!(grew, limit > old, "raise reports growth");
                assert!(
                    credit.limit() <= window.limit(),
                    "sender's credit past the announced"
                );
            }
            7 if !announcements.is_empty() => {
                announcements.swap_remove(pick % announcements.len());
            }
            8 => match credit.take_blocked() {
                Some(at) => {
                    assert_eq!(credit.available(), 0, "blocked with credit left");
                    assert_eq!(at, credit.limit());
                    assert_ne!(reported, Some(at), "blocked reported twice at one limit");
                    reported = Some(at);
                }
                None => assert!(
                    credit.available() > 0 || reported == Some(credit.limit()),
                    "blocked and not reported"
                ),
            },
            9 => {
                credit.report_lost();
                reported = None;
            }
            _ => now += Duration::from_micros(u.int_in_range(0..=1_000_000)?),
        }
        assert!(sent <= credit.limit(), "sent past the credit");
        assert!(
            credit.limit() <= window.limit(),
            "credit believed past the announced"
        );
    }
    Ok(())
}
