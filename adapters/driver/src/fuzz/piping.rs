//! The `piping` fuzz target (feature `fuzzing`; fuzz/README.md): a sender, a relay and two
//! receivers, each a deterministic [`Driver`](crate::Driver) behind the handles, on the
//! fuzzer's network. The sender sends streams to the relay, each written in one to three
//! pieces, then finished (waiting for any of the three confirmations) or reset (at its next
//! send, so that the relay may have piped it by then); the relay
//! pipes each stream it takes (spec/protocol.md §8, Piping) to one receiver or to both,
//! forks it to one while reading it itself (to its end, or a piece and then stopping it),
//! or refuses it; each receiver reads what it is
//! given piece by piece, or whole, or stops it. Any connection may close, and the relay or
//! a receiver may shut its endpoint down. The network delivers in any order, drops,
//! duplicates, corrupts, and moves the clock.
//!
//! Input: one fuzzer input, read as a script of at most [`MAX_STEPS`] steps. Output: a
//! digest of every datagram sent and every answer the applications were given
//! ([`Target::Piping`](super::Target::Piping));
//! the corpus replay (`adapters/driver/tests/fuzz_corpus.rs`) runs each input twice and
//! compares them.
//!
//! Oracles (spec §8, Piping and Delivery), on every answer:
//! - every piece a reader is given is the sender's bytes at that offset, and a reader sees a
//!   stream's end only once it read every byte of a stream its sender wrote whole (and
//!   finished, or announced the length of: spec §4.12);
//! - the sender hears "delivered" only once a receiver read the stream to its end; a
//!   failure naming a receiver's (or the relay's) code only once that one stopped it with
//!   that code; never a verification failure (nothing unauthenticated is accepted);
//! - a pipe ends well only for a stream its sender wrote whole, fails with the sender's
//!   code only for a stream its sender reset with it, and as stopped at the relay only
//!   with the code the relay stopped it with;
//! - liveness: once the fuzzer stops, an undisturbed network with the clock moving brings
//!   every call that ends by itself to an answer within [`SETTLE_LIMIT`] of simulated
//!   time (the relay then pipes what it holds to the first receiver, and the receivers
//!   read all they hold);
//! - the timers and determinism of module `world`, as for `driver`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write as _;
use std::rc::Rc;

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use weir_core::crypto::Primitives;
use weir_core::wire::Label;
use weir_core::{Delivery, Digest, StreamHeader, PIPE_BROKEN, VERIFICATION_FAILED};

use super::oracle::{content, Kind, MAX_LEN};
use super::world::{fnv, World};
use super::{addrs, SETTLE_LIMIT};
use crate::{Confirm, Connection, Endpoint, Error, PipeFailure, RecvStream, SendStream};

/// Steps read from one input.
pub const MAX_STEPS: usize = 128;

/// The ports the four endpoints record their traces under
/// ([`Target::record`](super::Target::record)): the sender, the relay, the first receiver,
/// the second.
pub const PORTS: [u16; 4] = [1000, 2000, 3000, 4000];

/// Who reads: the relay (a fork), the first receiver, the second.
const READERS: usize = 3;

/// What the relay does with a stream it was sent.
#[derive(Clone, Copy, Debug)]
enum Route {
    /// Pipes it to these receivers (1: the first, 2: the second).
    Pipe(&'static [usize]),
    /// Pipes it to the first receiver and reads it too.
    Fork,
    /// Pipes it to the first receiver and reads its first piece too, then stops reading it
    /// with this code: the sender is stopped, and the pipe fails.
    ForkThenStop(u64),
    /// Stops it with this code.
    Refuse(u64),
}

/// What became of stream `k`, at each end.
#[derive(Default)]
struct Stream {
    /// Its bytes.
    bytes: Bytes,
    /// Its sender wrote every byte and finished it, or had announced its total length
    /// (spec §4.12): a reader need not wait for the FIN then.
    complete: bool,
    /// Its sender reset it, with this code.
    reset: Option<u64>,
    /// Per reader ([`READERS`]): read to its end.
    read_whole: [bool; READERS],
    /// Per reader: stopped, with this code.
    stopped: [Option<u64>; READERS],
}

/// What the applications did and were given.
#[derive(Default)]
struct Log {
    streams: Vec<Stream>,
    /// Per reader: the streams it took and has not acted on yet.
    taken: [VecDeque<RecvStream>; READERS],
    /// Every answer given, a line each, in order: part of the run's digest.
    answers: Vec<u8>,
    /// Streams the sender wrote in part and resets at its next send (or as the fuzzer
    /// stops), with the code: by then the relay may have piped them, which a reset in the
    /// call that wrote the bytes would rarely let it do.
    held: Vec<(usize, u64, SendStream)>,
}

type LogRef = Rc<RefCell<Log>>;

impl Log {
    fn answer(&mut self, what: &str, detail: impl std::fmt::Debug) {
        // Writing to a Vec cannot fail.
        let _ = writeln!(self.answers, "{what} {detail:?}");
    }

    /// The stream `s` names by its label (`s<k>`), which must be one the sender opened.
    fn named(&self, s: &RecvStream) -> usize {
        let k = s
            .label()
            .and_then(|l| l.as_str().strip_prefix('s')?.parse::<usize>().ok())
            .filter(|&k| k < self.streams.len());
        k.unwrap_or_else(|| panic!("a stream the sender never opened: {:?}", s.label()))
    }

    /// Reader `r` was given `piece` of stream `k` at `offset`: the sender's bytes there.
    fn piece(&mut self, r: usize, k: usize, offset: usize, piece: &[u8]) {
        let sent = &self.streams[k].bytes;
        assert!(
            sent.get(offset..offset + piece.len()) == Some(piece),
            "reader {r} was given {} bytes at {offset} of stream {k} that its sender did not send there",
            piece.len()
        );
    }

    /// Reader `r` saw stream `k`'s end after `read` bytes: it read them all, of a stream
    /// its sender wrote whole.
    fn end(&mut self, r: usize, k: usize, read: usize) {
        let s = &mut self.streams[k];
        assert!(
            s.complete && read == s.bytes.len(),
            "reader {r} saw stream {k} end after {read} of its {} bytes (sender wrote it whole: {})",
            s.bytes.len(),
            s.complete
        );
        assert!(!s.read_whole[r], "reader {r} read stream {k} to its end twice");
        s.read_whole[r] = true;
        self.answer("read whole", (r, k));
    }

    /// Reader `r`'s read of stream `k` failed after `offset` bytes: the stream's handle
    /// goes with the reader, which stops it with code 0 unless it had ended.
    fn read_failed(&mut self, r: usize, k: usize, offset: usize, e: &Error) {
        self.streams[k].stopped[r].get_or_insert(0);
        self.answer("read failed", (r, k, offset, e.to_string()));
    }

    /// Stream `k`'s finish, waiting for `confirm`, ended with `got`: "delivered" only once
    /// a receiver read it whole, a failure only as the one that failed it said.
    fn sent(&mut self, k: usize, confirm: Confirm, got: &std::result::Result<(), Error>) {
        super::oracle::refusal_not_as_a_write(format_args!("stream {k}"), confirm, got);
        let s = &self.streams[k];
        match got {
            Ok(()) if confirm == Confirm::Delivered => assert!(
                s.read_whole[1] || s.read_whole[2],
                "stream {k} reported delivered, never read to its end by a receiver"
            ),
            Err(Error::NotDelivered(Delivery::Failed { code, relays })) => {
                assert_ne!(*code, VERIFICATION_FAILED, "stream {k} failed verification");
                if *code != PIPE_BROKEN {
                    let by: &[usize] = if *relays == 0 { &[0] } else { &[1, 2] };
                    assert!(
                        by.iter().any(|&r| s.stopped[r] == Some(*code)),
                        "stream {k} failed with code {code} ({relays} relays), which no reader \
                         there stopped it with (stopped: {:?})",
                        s.stopped
                    );
                }
            }
            _ => {}
        }
        self.answer("sent", (k, got.as_ref().map_err(Error::to_string)));
    }

    /// The relay's pipe of stream `k` ended with `got`.
    fn piped(&mut self, k: usize, got: &std::result::Result<crate::PipeStats, Error>) {
        let s = &self.streams[k];
        match got {
            Ok(stats) => {
                assert!(
                    s.complete,
                    "the pipe of stream {k} ended well, but its sender did not write it whole"
                );
                assert_eq!(
                    stats.bytes_forwarded,
                    s.bytes.len() as u64,
                    "the pipe of stream {k} ended well, having forwarded another length"
                );
            }
            Err(Error::PipeFailed(PipeFailure::SourceReset { code })) => assert_eq!(
                s.reset,
                Some(*code),
                "the pipe of stream {k} passed on a reset its sender did not make"
            ),
            Err(Error::PipeFailed(PipeFailure::SourceStopped { code })) => assert_eq!(
                s.stopped[0],
                Some(*code),
                "the pipe of stream {k} failed as stopped at the relay with a code the relay did not stop it with"
            ),
            Err(_) => {}
        }
        let answer = got.as_ref().map(|p| p.bytes_forwarded).map_err(Error::to_string);
        self.answer("piped", (k, answer));
    }
}

/// The world and what the script acts on.
struct Piping {
    w: World,
    log: LogRef,
    /// The endpoints' handles: the sender's, the relay's, the receivers'.
    endpoints: [Rc<Endpoint>; 4],
    /// The sender's connection to the relay.
    sender: Connection,
    /// The relay's connections: from the sender, to the first receiver, to the second.
    relay: [Connection; 3],
    /// The receivers' connections from the relay.
    receivers: [Connection; 2],
}

/// Runs one input (its endpoints on `primitives`, each recording its trace at `trace` if
/// given): the run's digest and the answers ([`Target`](super::Target)'s calls).
pub(super) fn run_logged(data: &[u8], primitives: Primitives, trace: Option<&str>) -> (u64, Vec<u8>) {
    let mut w = World::new(&addrs(&PORTS), primitives, trace);
    let endpoints = [w.endpoint(0), w.endpoint(1), w.endpoint(2), w.endpoint(3)];
    let clean = "a clean network connects";
    let (sender, from_sender) = w.connect(&endpoints[0], &endpoints[1]).expect(clean);
    let (to_b, b) = w.connect(&endpoints[1], &endpoints[2]).expect(clean);
    let (to_c, c) = w.connect(&endpoints[1], &endpoints[3]).expect(clean);
    let mut p = Piping {
        w,
        log: LogRef::default(),
        endpoints,
        sender,
        relay: [from_sender, to_b, to_c],
        receivers: [b, c],
    };
    p.serve();
    let mut u = Unstructured::new(data);
    for _ in 0..MAX_STEPS {
        if u.is_empty() || p.step(&mut u).is_err() {
            break;
        }
        p.w.run_tasks();
    }
    p.settle();
    let answers = std::mem::take(&mut p.log.borrow_mut().answers);
    (fnv(p.w.digest, &answers), answers)
}

impl Piping {
    /// The loops that take streams for the connections' life: the relay's from the sender,
    /// each receiver's from the relay.
    fn serve(&mut self) {
        let takers = [&self.relay[0], &self.receivers[0], &self.receivers[1]];
        for (r, conn) in takers.into_iter().enumerate() {
            let (log, conn) = (Rc::clone(&self.log), conn.clone());
            self.w.spawn(format!("take streams {r}"), false, async move {
                while let Ok(stream) = conn.accept_stream().await {
                    let mut log = log.borrow_mut();
                    let k = log.named(&stream);
                    log.answer("taken", (r, k));
                    log.taken[r].push_back(stream);
                }
            });
        }
    }

    /// Reads one step from `u` and takes it.
    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        // Weighted: deliveries most often, closes and shutdowns rarely (they end much).
        match u.int_in_range(0u8..=23)? {
            op @ 0..=12 => self.w.network_step(op, u)?,
            13..=15 => self.send(u)?,
            16..=18 => {
                let route = match u.int_in_range(0u8..=5)? {
                    0 | 1 => Route::Pipe(&[1]),
                    2 => Route::Pipe(&[2]),
                    3 => Route::Pipe(&[1, 2]),
                    4 => Route::Fork,
                    // One byte for both, so that the inputs of before (every code a
                    // refusal) still decode step for step.
                    _ => match u.arbitrary::<u8>()? {
                        code @ 0..=127 => Route::Refuse(u64::from(code)),
                        code => Route::ForkThenStop(u64::from(code - 128)),
                    },
                };
                self.route(route);
            }
            19..=21 => {
                let r = 1 + usize::from(u.arbitrary::<bool>()?);
                let how = match u.int_in_range(0u8..=3)? {
                    0 => Read::Whole,
                    1 => Read::Stop(u64::from(u.arbitrary::<u8>()?)),
                    _ => Read::Pieces(1 + usize::from(u.int_in_range(0u16..=2047)?)),
                };
                self.read(r, how);
            }
            22 => {
                let (i, end) = (u.int_in_range(0u8..=5)?, u64::from(u.arbitrary::<u8>()?));
                let conn = match i {
                    0 => self.sender.clone(),
                    1..=3 => self.relay[usize::from(i) - 1].clone(),
                    _ => self.receivers[usize::from(i) - 4].clone(),
                };
                let log = Rc::clone(&self.log);
                self.w.spawn(format!("close {i}"), true, async move {
                    let r = conn.close(end, "fuzz").await;
                    log.borrow_mut()
                        .answer("closed", (i, end, r.map_err(|e| e.to_string())));
                });
            }
            _ => {
                let side = 1 + usize::from(u.int_in_range(0u8..=2)?);
                self.endpoints[side].shutdown();
                self.log.borrow_mut().answer("shut down", side);
            }
        }
        Ok(())
    }

    /// The sender opens stream `k` (labelled `s<k>`, with or without its length and
    /// digest), writes it in one to three pieces, then finishes it waiting for a
    /// confirmation, or holds it after a piece for a reset at its next send.
    fn send(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        self.reset_held();
        let len = 4 + usize::from(u.int_in_range(0u16..=(MAX_LEN - 4) as u16)?);
        let (declared, pieces) = (u.arbitrary::<bool>()?, u.int_in_range(1u8..=3)?);
        let reset_after = match u.int_in_range(0u8..=4)? {
            0 => Some((u.int_in_range(0u8..=pieces - 1)?, u64::from(u.arbitrary::<u8>()?))),
            _ => None,
        };
        let confirm = *u.choose(&[Confirm::Queued, Confirm::Acknowledged, Confirm::Delivered])?;
        let k = self.log.borrow().streams.len();
        let bytes = content(Kind::Piped, k as u32, len);
        self.log.borrow_mut().streams.push(Stream {
            bytes: bytes.clone(),
            ..Stream::default()
        });
        let mut header = StreamHeader::default()
            .with_label(Label::new(Bytes::from(format!("s{k}"))).expect("a short label"));
        if declared {
            header = header.with_total_len(len as u64).with_digest(Digest::of(&bytes));
        }
        let (log, conn) = (Rc::clone(&self.log), self.sender.clone());
        self.w.spawn(format!("send {k}"), true, async move {
            let mut stream = match conn.open_stream_with(header).await {
                Ok(s) => s,
                Err(e) => return log.borrow_mut().answer("not opened", (k, e.to_string())),
            };
            let cut = |i: usize| len * i / usize::from(pieces);
            for i in 0..usize::from(pieces) {
                let piece = bytes.slice(cut(i)..cut(i + 1));
                if let Err(e) = stream.write_all_chunk(piece).await {
                    return log.borrow_mut().answer("write failed", (k, e.to_string()));
                }
                if let Some((_, code)) = reset_after.filter(|&(after, _)| usize::from(after) == i) {
                    let mut log = log.borrow_mut();
                    log.streams[k].complete = declared && i + 1 == usize::from(pieces);
                    log.answer("held for a reset", k);
                    return log.held.push((k, code, stream));
                }
            }
            log.borrow_mut().streams[k].complete = true;
            let r = stream.finish_with(confirm).await;
            log.borrow_mut().sent(k, confirm, &r);
        });
        Ok(())
    }

    /// The sender resets the streams it holds for a reset.
    fn reset_held(&mut self) {
        let held = std::mem::take(&mut self.log.borrow_mut().held);
        for (k, code, stream) in held {
            let mut log = self.log.borrow_mut();
            log.streams[k].reset = Some(code);
            let r = stream.reset(code);
            log.answer("reset", (k, code, r.map_err(|e| e.to_string())));
        }
    }

    /// The relay acts on the oldest stream it took and has not acted on.
    fn route(&mut self, route: Route) {
        let Some(stream) = self.log.borrow_mut().taken[0].pop_front() else {
            return;
        };
        let k = self.log.borrow().named(&stream);
        self.log.borrow_mut().answer("route", (k, route));
        let targets: &[usize] = match route {
            Route::Pipe(to) => to,
            Route::Fork | Route::ForkThenStop(_) => &[1],
            Route::Refuse(code) => {
                self.log.borrow_mut().streams[k].stopped[0] = Some(code);
                let r = stream.stop(code);
                self.log
                    .borrow_mut()
                    .answer("refused", (k, r.map_err(|e| e.to_string())));
                return;
            }
        };
        let relay = Rc::clone(&self.endpoints[1]);
        let targets: Vec<Connection> = targets.iter().map(|&t| self.relay[t].clone()).collect();
        let log = Rc::clone(&self.log);
        let fork = matches!(route, Route::Fork | Route::ForkThenStop(_));
        self.w.spawn(format!("pipe {k}"), true, async move {
            let to: Vec<&Connection> = targets.iter().collect();
            let (pipe, stream) = if fork {
                (relay.fork(&stream, &to).await, Some(stream))
            } else {
                (relay.pipe(stream, &to).await, None)
            };
            let pipe = match pipe {
                Ok(p) => p,
                Err(e) => {
                    // A pipe that cannot begin stops the stream it took (PIPE_BROKEN); a
                    // fork leaves it to its handle, let go here, which stops it with 0.
                    let mut log = log.borrow_mut();
                    log.streams[k].stopped[0] = Some(if fork { 0 } else { PIPE_BROKEN });
                    return log.answer("not piped", (k, e.to_string()));
                }
            };
            match (stream, route) {
                (Some(mut stream), Route::ForkThenStop(code)) => {
                    let first = stream.read_chunk(700).await;
                    {
                        let mut log = log.borrow_mut();
                        match first {
                            Ok(Some(piece)) => log.piece(0, k, 0, &piece),
                            Ok(None) => log.end(0, k, 0),
                            Err(e) => log.read_failed(0, k, 0, &e),
                        }
                        log.streams[k].stopped[0].get_or_insert(code);
                    }
                    let r = stream.stop(code);
                    let answer = (k, code, r.map_err(|e| e.to_string()));
                    log.borrow_mut().answer("fork stopped", answer);
                }
                (Some(mut stream), _) => read_pieces(&log, 0, k, &mut stream, 700).await,
                (None, _) => {}
            }
            let r = pipe.wait().await;
            log.borrow_mut().piped(k, &r);
        });
    }

    /// Receiver `r` acts on the oldest stream it took and has not acted on.
    fn read(&mut self, r: usize, how: Read) {
        let Some(mut stream) = self.log.borrow_mut().taken[r].pop_front() else {
            return;
        };
        let k = self.log.borrow().named(&stream);
        let log = Rc::clone(&self.log);
        if let Read::Stop(code) = how {
            log.borrow_mut().streams[k].stopped[r] = Some(code);
            let got = stream.stop(code);
            log.borrow_mut()
                .answer("stopped", (r, k, code, got.map_err(|e| e.to_string())));
            return;
        }
        self.w.spawn(format!("read {k} at {r}"), true, async move {
            match how {
                Read::Pieces(max) => read_pieces(&log, r, k, &mut stream, max).await,
                _ => {
                    let got = stream.read_to_end(MAX_LEN as u64).await;
                    let mut log = log.borrow_mut();
                    match got {
                        Ok(whole) => {
                            log.piece(r, k, 0, &whole);
                            log.end(r, k, whole.len());
                        }
                        Err(e) => log.read_failed(r, k, 0, &e),
                    }
                }
            }
        });
    }

    /// The fuzzer is done: the network carries everything, in order, and the clock moves
    /// on; every call that ends by itself must end. The relay pipes every stream it holds
    /// to the first receiver, and the receivers read every stream they hold in pieces.
    fn settle(&mut self) {
        let limit = self.w.now + SETTLE_LIMIT;
        loop {
            // A write that waited for credit may have held its stream since.
            self.reset_held();
            while !self.log.borrow().taken[0].is_empty() {
                self.route(Route::Pipe(&[1]));
            }
            for r in 1..READERS {
                while !self.log.borrow().taken[r].is_empty() {
                    self.read(r, Read::Pieces(1024));
                }
            }
            self.w.run_tasks();
            if !self.w.pending_finite() || self.w.now >= limit {
                break;
            }
            if self.w.wire.is_empty() {
                let next = self.w.next_deadline().unwrap_or(limit).min(limit);
                self.w.advance_to(next);
            }
            self.w.deliver_all();
        }
        let pending = self.w.pending();
        assert!(
            pending.is_empty(),
            "calls still unanswered {SETTLE_LIMIT:?} after the network settled: {pending:?}; the answers:\n{}",
            String::from_utf8_lossy(&self.log.borrow().answers)
        );
    }
}

/// How a receiver reads a stream.
#[derive(Clone, Copy)]
enum Read {
    /// In pieces of at most this many bytes.
    Pieces(usize),
    /// Whole, in one call.
    Whole,
    /// Not at all: stopped with this code.
    Stop(u64),
}

/// Reader `r` reads stream `k` in pieces of at most `max` bytes to its end or an error,
/// each piece checked as it comes.
async fn read_pieces(log: &LogRef, r: usize, k: usize, stream: &mut RecvStream, max: usize) {
    let mut offset = 0;
    loop {
        match stream.read_chunk(max).await {
            Ok(Some(piece)) => {
                log.borrow_mut().piece(r, k, offset, &piece);
                offset += piece.len();
            }
            Ok(None) => return log.borrow_mut().end(r, k, offset),
            Err(e) => return log.borrow_mut().read_failed(r, k, offset, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(streams: usize) -> Log {
        let mut log = Log::default();
        for k in 0..streams {
            let bytes = content(Kind::Piped, k as u32, 100);
            log.streams.push(Stream {
                bytes,
                ..Stream::default()
            });
        }
        log
    }

    #[test]
    fn the_oracles_pass_a_stream_read_whole_and_delivered() {
        let mut log = log_with(1);
        log.streams[0].complete = true;
        let bytes = log.streams[0].bytes.clone();
        log.piece(1, 0, 0, &bytes[..40]);
        log.piece(1, 0, 40, &bytes[40..]);
        log.end(1, 0, 100);
        log.sent(0, Confirm::Delivered, &Ok(()));
        let stats = crate::PipeStats {
            bytes_forwarded: 100,
            ..crate::PipeStats::default()
        };
        log.piped(0, &Ok(stats));
    }

    #[test]
    #[should_panic(expected = "that its sender did not send there")]
    fn a_piece_at_the_wrong_offset_fires() {
        let mut log = log_with(1);
        let bytes = log.streams[0].bytes.clone();
        log.piece(1, 0, 1, &bytes[..10]);
    }

    #[test]
    #[should_panic(expected = "end after 99 of its 100 bytes")]
    fn an_end_short_of_the_stream_fires() {
        let mut log = log_with(1);
        log.streams[0].complete = true;
        log.end(2, 0, 99);
    }

    #[test]
    #[should_panic(expected = "sender wrote it whole: false")]
    fn an_end_of_a_stream_its_sender_did_not_finish_fires() {
        log_with(1).end(1, 0, 100);
    }

    #[test]
    #[should_panic(expected = "reported delivered, never read")]
    fn delivered_when_only_the_relay_read_it_fires() {
        let mut log = log_with(1);
        log.streams[0].complete = true;
        log.end(0, 0, 100);
        log.sent(0, Confirm::Delivered, &Ok(()));
    }

    #[test]
    #[should_panic(expected = "which no reader there stopped it with")]
    fn a_failure_with_a_code_no_receiver_stopped_with_fires() {
        let mut log = log_with(1);
        log.streams[0].stopped[0] = Some(7);
        let failed = Delivery::Failed { code: 7, relays: 1 };
        log.sent(0, Confirm::Delivered, &Err(Error::NotDelivered(failed)));
    }

    #[test]
    #[should_panic(expected = "failed verification")]
    fn a_verification_failure_fires() {
        let failed = Delivery::Failed {
            code: VERIFICATION_FAILED,
            relays: 1,
        };
        log_with(1).sent(0, Confirm::Delivered, &Err(Error::NotDelivered(failed)));
    }

    #[test]
    #[should_panic(expected = "but its sender did not write it whole")]
    fn a_pipe_ending_well_for_a_reset_stream_fires() {
        let mut log = log_with(1);
        log.streams[0].reset = Some(3);
        log.piped(0, &Ok(crate::PipeStats::default()));
    }

    #[test]
    #[should_panic(expected = "having forwarded another length")]
    fn a_pipe_ending_well_short_of_the_stream_fires() {
        let mut log = log_with(1);
        log.streams[0].complete = true;
        log.piped(0, &Ok(crate::PipeStats::default()));
    }

    #[test]
    #[should_panic(expected = "a reset its sender did not make")]
    fn a_pipe_passing_on_another_code_fires() {
        let mut log = log_with(1);
        log.streams[0].reset = Some(3);
        let failed = PipeFailure::SourceReset { code: 4 };
        log.piped(0, &Err(Error::PipeFailed(failed)));
    }

    #[test]
    #[should_panic(expected = "a code the relay did not stop it with")]
    fn a_pipe_failing_as_stopped_with_another_code_fires() {
        let mut log = log_with(1);
        log.streams[0].stopped[0] = Some(3);
        let failed = PipeFailure::SourceStopped { code: 4 };
        log.piped(0, &Err(Error::PipeFailed(failed)));
    }
}
