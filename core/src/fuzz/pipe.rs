//! `pipe`: a relay's pipe (`pipe`, spec/protocol.md §8 Piping) between a source stream
//! (`stream::recv`, tapped) and one to three targets, driven the way the endpoint drives
//! it: the sender's fragments arrive in any order, duplicated and overlapping, within the
//! credit the pipe grants; the application may have read part of the stream before piping
//! and may go on reading (`LocalRead::Keep`); each target's peer acknowledges, grants
//! credit, finishes or goes away whenever the fuzzer says.
//!
//! Oracle: bytes out equal bytes in: every target still open receives each byte of the
//! stream from the pipe's start exactly once, at the right offset, with the right value,
//! and once the sender has sent everything, all of them; the local reader reads the stream
//! in order; the credit granted to the sender never lets the relay hold more than the pipe's
//! cap above what every open target acknowledged (nor, with a local reader, more than its
//! window past what it read); the pipe ends exactly when no target is open, delivered iff
//! one finished.

use alloc::vec;
use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;

use crate::handle::ConnectionHandle;
use crate::pipe::{Branch, Pipe, PipeFailure, Progress, Target, TargetState};
use crate::stream::recv::RecvStream;
use crate::wire::Delivery;
use crate::wire::{Side, StreamId};

const MAX_STEPS: usize = 2_000;

fn content(offset: u64) -> u8 {
    (offset as u8).wrapping_mul(13) ^ ((offset >> 8) as u8)
}

/// What one target's peer has seen, in target offsets.
struct Peer {
    got: Vec<bool>,
    /// Bytes handed, and the first offset not handed.
    handed: u64,
    contiguous: u64,
    acked_below: u64,
    max_data: u64,
    state: TargetState,
}

impl Peer {
    fn take(&mut self, at: usize) {
        assert!(!self.got[at], "byte {at} handed to a target twice");
        self.got[at] = true;
        self.handed += 1;
        while self.got.get(self.contiguous as usize) == Some(&true) {
            self.contiguous += 1;
        }
    }
}

/// `pipe`: a tapped stream piped to up to three targets; every open target receives each
/// byte once, unchanged, and the credit keeps the relay within the pipe's cap.
pub fn pipe(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let len = u.int_in_range(0..=64 * 1024u64)?;
    let window = u.int_in_range(1..=16 * 1024u64)?;
    let cap = u.int_in_range(1..=32 * 1024u64)?;
    let mut source = RecvStream::auto_tuned(window, window);
    let mut sent = vec![false; len as usize];
    // Before the pipe: the sender sends and the application reads some.
    for _ in 0..u.int_in_range(0..=8)? {
        send(u, &mut source, &mut sent, len)?;
    }
    let mut read = 0u64;
    for _ in 0..u.int_in_range(0..=8)? {
        if let Some((_, b)) = source.read(u.int_in_range(1..=4096)?) {
            read += b.len() as u64;
        }
    }
    let keep = u.arbitrary()?;
    source.tap(keep);
    let start = read;
    let credit_at_start = source.max_data();
    let count = u.int_in_range(1..=3usize)?;
    let targets = (0..count)
        .map(|i| Target {
            conn: ConnectionHandle::from_index(i as u32 + 1),
            stream: StreamId::new(Side::Server, i as u64),
            state: Branch::Open,
        })
        .collect();
    let mut pipe = Pipe::new(
        (ConnectionHandle::from_index(0), StreamId::new(Side::Client, 0)),
        start,
        targets,
        cap,
    );
    let mut peers: Vec<Peer> = (0..count)
        .map(|_| Peer {
            got: vec![false; (len - start) as usize],
            handed: 0,
            contiguous: 0,
            acked_below: 0,
            max_data: 0,
            state: TargetState::Open(Progress {
                acked_below: 0,
                max_data: 0,
                unacked: 0,
            }),
        })
        .collect();
    turn(&mut source, &mut pipe, &mut peers, start);
    for _ in 0..MAX_STEPS {
        if u.is_empty() || pipe.ended().is_some() {
            break;
        }
        match u.int_in_range(0u8..=7)? {
            0..=3 => send(u, &mut source, &mut sent, len)?,
            4 if keep => {
                if let Some((offset, b)) = source.read(u.int_in_range(1..=4096)?) {
                    assert_eq!(offset, read, "the local reader reads in order");
                    for (i, &x) in b.iter().enumerate() {
                        assert_eq!(
                            x,
                            content(offset + i as u64),
                            "local read at {}",
                            offset + i as u64
                        );
                    }
                    read += b.len() as u64;
                }
            }
            _ => {
                let i = u.int_in_range(0..=count - 1)?;
                let p = &mut peers[i];
                if let TargetState::Open(_) = p.state {
                    match u.int_in_range(0u8..=9)? {
                        0 => p.state = TargetState::Gone,
                        1 if p.contiguous == len - start => {
                            p.acked_below = len - start;
                            p.state = TargetState::Ended(Delivery::Delivered { relays: 0 });
                        }
                        2 if p.contiguous == len - start => {
                            // Every byte arrived, and the receiver refused them.
                            p.acked_below = len - start;
                            p.state = TargetState::Ended(Delivery::Failed { code: 7, relays: 0 });
                        }
                        _ => {
                            p.acked_below =
                                u.int_in_range(p.acked_below..=p.contiguous.max(p.acked_below))?;
                            p.max_data = p.max_data.saturating_add(u.int_in_range(0..=16 * 1024)?);
                        }
                    }
                }
            }
        }
        turn(&mut source, &mut pipe, &mut peers, start);
        // The credit holds the relay to the cap above what every open target acknowledged,
        // and with a local reader, to its window past what it read.
        let open: Vec<&Peer> = peers
            .iter()
            .filter(|p| matches!(p.state, TargetState::Open(_)))
            .collect();
        if let Some(floor) = open.iter().map(|p| p.acked_below).min() {
            assert!(
                source.max_data() <= credit_at_start.max(start + floor + cap),
                "credit {} past the cap {} above the targets' floor {}",
                source.max_data(),
                cap,
                start + floor
            );
        }
        if keep {
            assert!(
                source.max_data() <= credit_at_start.max(read + window),
                "credit past the local reader's window"
            );
        }
    }
    let everything = sent.iter().all(|&s| s);
    for (i, p) in peers.iter().enumerate() {
        if matches!(p.state, TargetState::Open(_)) && everything {
            assert_eq!(p.handed, len - start, "target {i} is missing bytes");
        }
    }
    let open = peers.iter().any(|p| matches!(p.state, TargetState::Open(_)));
    let done = peers
        .iter()
        .any(|p| matches!(p.state, TargetState::Ended(Delivery::Delivered { .. })));
    let refused = peers
        .iter()
        .any(|p| matches!(p.state, TargetState::Ended(Delivery::Failed { .. })));
    // The relay's own receipt: one relay further than its targets'.
    let expected = match (open, done, refused) {
        (true, _, _) => None,
        (false, true, _) => Some(Ok(Delivery::Delivered { relays: 1 })),
        (false, false, true) => Some(Err((
            PipeFailure::TargetsLost,
            Delivery::Failed { code: 7, relays: 1 },
        ))),
        (false, false, false) => Some(Err((
            PipeFailure::TargetsLost,
            Delivery::Failed {
                code: crate::PIPE_BROKEN,
                relays: 0,
            },
        ))),
    };
    assert_eq!(pipe.ended(), expected, "how the pipe ended");
    Ok(())
}

/// The sender sends a fragment (maybe again) within its credit; FIN with the last byte.
fn send(u: &mut Unstructured<'_>, source: &mut RecvStream, sent: &mut [bool], len: u64) -> Result<()> {
    let room = source.max_data().min(len);
    let offset = u.int_in_range(0..=room)?;
    let end = u.int_in_range(offset..=room.min(offset + 1500))?;
    let bytes: Bytes = (offset..end).map(content).collect::<Vec<u8>>().into();
    // Harness: `offset` and `end` were drawn within the credit and the length above.
    source
        .insert(offset, bytes, end == len)
        .expect("a fragment within credit and length is taken");
    sent[offset as usize..end as usize].fill(true);
    Ok(())
}

/// One turn of the pipe, as the endpoint takes it after every datagram: what the source
/// received goes to every open target; the targets' progress sets the source's credit.
fn turn(source: &mut RecvStream, pipe: &mut Pipe, peers: &mut [Peer], start: u64) {
    let fragments = pipe.take_in(source.take_tapped());
    for p in peers
        .iter_mut()
        .filter(|p| matches!(p.state, TargetState::Open(_)))
    {
        for (offset, data) in &fragments {
            for (i, &b) in data.iter().enumerate() {
                let at = *offset as usize + i;
                assert_eq!(b, content(start + at as u64), "byte {at} changed on the way");
                p.take(at);
            }
        }
    }
    pipe.handed_on();
    let progress: Vec<TargetState> = peers
        .iter_mut()
        .map(|p| {
            if let TargetState::Open(_) = p.state {
                p.state = TargetState::Open(Progress {
                    acked_below: p.acked_below,
                    max_data: p.max_data,
                    unacked: p.handed - p.acked_below,
                });
            }
            p.state
        })
        .collect();
    if let Some((_, limit)) = pipe.observe(&progress) {
        if limit > pipe.granted {
            pipe.granted = limit;
            source.raise_limit(limit);
        }
    }
}
