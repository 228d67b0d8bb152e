//! The `driver` fuzz target (feature `fuzzing`; fuzz/README.md): two endpoints, each a
//! [`Driver`](crate::Driver) behind the handles an application uses, joined by a network
//! the fuzzer controls. The client asks the server requests (taking each reply in turn
//! whole, whole under a limit lower than some replies, or as a stream in pieces), sends it
//! messages (waiting for any of the three confirmations) and datagrams; the server answers,
//! refuses or drops its requests, opens ordered channels back (every other one read under a
//! limit lower than some messages) and sends on them, and sends datagrams; either side may
//! close. The network delivers in any order, drops, duplicates, corrupts, and
//! moves the clock. Both drivers are deterministic (a given seed, a clock that moves only
//! when told) and use the core's stand-in for the cryptography, so an input is one run,
//! repeatable byte for byte, in about a millisecond.
//!
//! Input: one fuzzer input, read as a script of at most [`MAX_STEPS`] steps. Output: a
//! digest of every datagram sent and every answer the applications were given ([`run`]);
//! the corpus replay (`adapters/driver/tests/fuzz_corpus.rs`) runs each input twice and
//! compares them. [`answers`] gives the answers themselves, to explain a finding.
//!
//! Oracles (module `oracle`, each with a test that it fires), on every answer:
//! - a request's body arrives as sent; its reply is the one its responder sent for it (each
//!   piece of it at its offset), and only a request its responder answered gets one; a
//!   refusal carries the responder's code; a reply is refused as too long only if it is
//!   over its call's limit, and given only if it is not (spec/protocol.md §8, Requests);
//! - a channel's messages arrive whole and in the order sent, none skipped or repeated, none
//!   over its reader's limit, and a message is refused as too long only if it is the next
//!   one and over that limit; it ends cleanly only once its sender finished and every
//!   message was read (§8, Channels);
//! - a message arrives at most once, as sent, and its sender hears "delivered" only once
//!   the receiver read it (§8, Delivery);
//! - every datagram read is one the peer sent, unchanged, read once;
//! - liveness: once the fuzzer stops, an undisturbed network with the clock moving brings
//!   every call that ends by itself (a request, a send, a finish, a close) to an answer
//!   within [`SETTLE_LIMIT`] of simulated time (the server then drops every request it
//!   holds, which refuses it).

pub mod circuit;
mod oracle;
pub mod piping;
pub mod pool;
pub mod router;
pub mod tool;
mod world;

use std::rc::Rc;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use bytes::{Bytes, BytesMut};
use weir_core::crypto::Primitives;
use weir_core::wire::Label;

use crate::{ChannelSender, Confirm, Connection, Error, Reply, RequestOptions};
use oracle::{channel_k, content, named, ChannelRecord, Kind, LogRef, RequestRecord, MAX_LEN, SHORT_LIMIT};
use world::{fnv, Task, World};

/// Steps read from one input.
pub const MAX_STEPS: usize = 128;
/// Simulated time the undisturbed network is given at the end for every call to end.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(600);

/// [`Target::run`] of this target, [`Target::Driver`]: what the `driver` fuzz target calls.
pub fn run(data: &[u8]) -> u64 {
    Target::Driver.run(data)
}

/// [`Target::answers`] of [`Target::Driver`].
pub fn answers(data: &[u8], primitives: Primitives) -> String {
    Target::Driver.answers(data, primitives)
}

/// [`Target::record`] of [`Target::Driver`] (1000 is the client's port, 2000 the server's).
pub fn record(data: &[u8], primitives: Primitives, trace: &str) -> String {
    Target::Driver.record(data, primitives, trace)
}

/// The ports the two endpoints record their traces under ([`record`]).
pub const PORTS: [u16; 2] = [1000, 2000];

/// The fuzz targets over drivers, for the tools that explain a finding
/// (`driver_finding`) and the tests that replay the findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Requests, channels, messages and datagrams between two drivers (this module).
    Driver,
    /// A stream piped through a relay to two receivers (module [`piping`]).
    Piping,
    /// A client dialing two servers through its connection pool (module [`pool`]).
    Pool,
    /// A client reaching a server through a circuit relay (module [`circuit`]).
    Circuit,
}

impl Target {
    /// Every target over drivers.
    pub const ALL: [Target; 4] = [Target::Driver, Target::Piping, Target::Pool, Target::Circuit];

    /// Its name, as cargo-fuzz and the findings' folders know it.
    pub fn name(self) -> &'static str {
        match self {
            Target::Driver => "driver",
            Target::Piping => "piping",
            Target::Pool => "pool",
            Target::Circuit => "circuit",
        }
    }

    /// The target named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The ports its endpoints record their traces under.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Target::Driver => &PORTS,
            Target::Piping => &piping::PORTS,
            Target::Pool => &pool::PORTS,
            Target::Circuit => &circuit::PORTS,
        }
    }

    /// Its body.
    fn body(self) -> Body {
        match self {
            Target::Driver => run_logged,
            Target::Piping => piping::run_logged,
            Target::Pool => pool::run_logged,
            Target::Circuit => circuit::run_logged,
        }
    }

    /// Runs one input on the stand-in primitives, as the fuzzer does: the run's digest
    /// (every datagram and every answer). Panics where an oracle fails.
    pub fn run(self, data: &[u8]) -> u64 {
        (self.body())(data, Primitives::FuzzingStandIn, None).0
    }

    /// The answers the applications were given, a line each, in order: what explains a
    /// finding at the level of the calls. With [`Primitives::Real`] the endpoints use the
    /// real cryptography; the answers are the same but for the bytes on the wire.
    pub fn answers(self, data: &[u8], primitives: Primitives) -> String {
        String::from_utf8_lossy(&(self.body())(data, primitives, None).1).into_owned()
    }

    /// The answers, with each endpoint's core recording its trace (spec/trace.md) at
    /// `trace`, `WEIR_TRACE`'s form: `{port}` becomes the endpoint's port
    /// ([`ports`](Self::ports)), and each trace's secrets go beside it
    /// (`weir_driver::secrets_path`). A run that fails still leaves its traces up to the
    /// failure: the drivers write them as they are dropped. With the real primitives they
    /// replay in any build (`weir replay`).
    pub fn record(self, data: &[u8], primitives: Primitives, trace: &str) -> String {
        String::from_utf8_lossy(&(self.body())(data, primitives, Some(trace)).1).into_owned()
    }
}

/// A target's body: runs one input on the given primitives, each endpoint recording its
/// trace at the given path if any; the run's digest and the answers.
type Body = fn(&[u8], Primitives, Option<&str>) -> (u64, Vec<u8>);

/// Where the sides of a world are: the side on port `p` at 10.0.0.`p / 1000`.
fn addrs(ports: &[u16]) -> Vec<std::net::SocketAddr> {
    let at = |p: u16| std::net::SocketAddr::from(([10, 0, 0, (p / 1000) as u8], p));
    ports.iter().map(|&p| at(p)).collect()
}

fn run_logged(data: &[u8], primitives: Primitives, trace: Option<&str>) -> (u64, Vec<u8>) {
    let mut w = World::new(&addrs(&PORTS), primitives, trace);
    // The endpoints' handles live to the end of the run: dropping one shuts it down.
    let (client_endpoint, server_endpoint) = (w.endpoint(0), w.endpoint(1));
    let Some((client, server)) = w.connect(&client_endpoint, &server_endpoint) else {
        panic!("a clean network did not connect the pair");
    };
    serve(&mut w, &client, &server);
    let mut u = Unstructured::new(data);
    for _ in 0..MAX_STEPS {
        if u.is_empty() || step(&mut w, &client, &server, &mut u).is_err() {
            break;
        }
        w.run_tasks();
    }
    settle(&mut w);
    let answers = std::mem::take(&mut w.log.borrow_mut().answers);
    (fnv(w.digest, &answers), answers)
}

/// The loops that serve for the connection's life: the server takes requests and
/// messages, the client takes channels (each read by a call of its own), both read
/// datagrams.
fn serve(w: &mut World, client: &Connection, server: &Connection) {
    let (log, conn) = (Rc::clone(&w.log), server.clone());
    w.spawn("accept requests".into(), false, async move {
        while let Ok((request, responder)) = conn.accept_request().await {
            log.borrow_mut().request_accepted(request, responder);
        }
    });
    let (log, conn) = (Rc::clone(&w.log), server.clone());
    w.spawn("receive messages".into(), false, async move {
        while let Ok(m) = conn.recv_message().await {
            log.borrow_mut().message_read(&m);
        }
    });
    let (log, conn, spawner) = (Rc::clone(&w.log), client.clone(), Rc::clone(&w.spawned));
    w.spawn("accept channels".into(), false, async move {
        while let Ok(stream) = conn.accept_stream().await {
            let c: usize = stream
                .label()
                .and_then(|l| l.as_str().strip_prefix("ch")?.parse().ok())
                .expect("only channels are opened toward the client");
            let limit = channel_limit(c);
            if let Some(ch) = log.borrow_mut().channels.get_mut(c) {
                ch.limit = (limit < MAX_LEN as u64).then_some(limit);
            }
            let mut reader = stream.into_channel(limit);
            let log = Rc::clone(&log);
            spawner.borrow_mut().push(Task {
                future: Box::pin(async move {
                    loop {
                        let got = reader.recv().await;
                        if !log.borrow_mut().channel_read(c, got) {
                            return;
                        }
                    }
                }),
                finite: false,
                what: format!("read channel {c}"),
            });
        }
    });
    for (i, conn) in [client.clone(), server.clone()].into_iter().enumerate() {
        let log = Rc::clone(&w.log);
        w.spawn(format!("receive datagrams {i}"), false, async move {
            while let Ok(d) = conn.recv_datagram().await {
                log.borrow_mut().datagram_read(i, &d);
            }
        });
    }
}

/// The longest message channel `c`'s reader takes: every odd channel's is lower than some
/// messages. (From `c`, not the input, so that the inputs of before decode step for step.)
fn channel_limit(c: usize) -> u64 {
    match c % 2 {
        1 => SHORT_LIMIT,
        _ => MAX_LEN as u64,
    }
}

/// How the client takes a request's reply.
#[derive(Clone, Copy, Debug)]
enum ReplyRead {
    /// Whole, as long as any reply.
    Whole,
    /// Whole, refused past [`SHORT_LIMIT`].
    Limited,
    /// As a stream (`request_streamed`), in pieces of at most this many bytes.
    Pieces(usize),
}

impl ReplyRead {
    /// Request `k`'s: each in turn. (From `k`, not the input, so that the inputs of before
    /// decode step for step.)
    fn of(k: u32) -> ReplyRead {
        match k % 3 {
            0 => ReplyRead::Whole,
            1 => ReplyRead::Limited,
            _ => ReplyRead::Pieces(1 + (k as usize * 389) % 1500),
        }
    }
}

/// A payload's length: 4 bytes (its number) and up to `MAX_LEN` in all.
fn length(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(4 + usize::from(u.int_in_range(0u16..=(MAX_LEN - 4) as u16)?))
}

/// Reads one step from `u` and takes it.
fn step(w: &mut World, client: &Connection, server: &Connection, u: &mut Unstructured<'_>) -> Result<()> {
    // Weighted: deliveries most often, a close rarely (it ends everything else).
    match u.int_in_range(0u8..=25)? {
        op @ 0..=12 => w.network_step(op, u)?,
        13 | 14 => request(w, client, u)?,
        15 => cancel(w, u)?,
        16 | 17 => respond(w, u)?,
        18 | 19 => message(w, client, u)?,
        20 => {
            let (i, len) = (usize::from(u.arbitrary::<bool>()?), length(u)? % 1200);
            let conn = [client, server][i];
            let mut log = w.log.borrow_mut();
            let k = log.datagrams[i].len() as u32;
            log.datagrams[i].push(false);
            let sent = conn.send_datagram(content(Kind::Datagram, k, len));
            log.answer("datagram sent", (i, k, sent.map_err(|e| e.to_string())));
        }
        21 => open_channel(w, server),
        22 | 23 => channel_send(w, u)?,
        24 => channel_finish(w, u)?,
        _ => {
            let side = usize::from(u.arbitrary::<bool>()?);
            let code = u64::from(u.arbitrary::<u8>()?);
            let conn = [client, server][side].clone();
            let log = Rc::clone(&w.log);
            w.spawn(format!("close {side}"), true, async move {
                let r = conn.close(code, "fuzz").await;
                log.borrow_mut()
                    .answer("closed", (side, code, r.map_err(|e| e.to_string())));
            });
        }
    }
    Ok(())
}

/// The client asks the server a request, with or without a timeout.
fn request(w: &mut World, client: &Connection, u: &mut Unstructured<'_>) -> Result<()> {
    let len = length(u)?;
    let timeout = match u.int_in_range(0u8..=3)? {
        0 => None,
        n => Some(Duration::from_millis(u64::from(n) * 700)),
    };
    let service = Label::from_static("fuzz").expect("a short label");
    let k = w.log.borrow().requests.len() as u32;
    let (log, conn) = (Rc::clone(&w.log), client.clone());
    let body = content(Kind::Request, k, len);
    let read = ReplyRead::of(k);
    let reply_limit = match read {
        ReplyRead::Limited => SHORT_LIMIT,
        _ => RequestOptions::default().reply_limit,
    };
    let options = RequestOptions { timeout, reply_limit };
    w.log.borrow_mut().requests.push(RequestRecord {
        reply_limit: matches!(read, ReplyRead::Limited).then_some(reply_limit),
        ..RequestRecord::default()
    });
    let t = w.spawn(format!("request {k}"), true, async move {
        let got = match read {
            ReplyRead::Pieces(max) => match conn.request_streamed(&service, body, timeout).await {
                Ok(mut reply) => {
                    let got = read_reply(&log, k, &mut reply, max).await;
                    log.borrow_mut().answer("reply in pieces", (k, max));
                    got
                }
                Err(e) => Err(e),
            },
            _ => conn.request_with(&service, body, options).await,
        };
        log.borrow_mut().request_answered(k, &got);
    });
    w.log.borrow_mut().requests[k as usize].task = Some(t);
    Ok(())
}

/// Request `k`'s reply read in pieces of at most `max` bytes, each checked as it comes, and
/// joined.
async fn read_reply(
    log: &LogRef,
    k: u32,
    reply: &mut Reply,
    max: usize,
) -> std::result::Result<Bytes, Error> {
    let mut whole = BytesMut::new();
    while let Some(piece) = reply.read_chunk(max).await? {
        log.borrow_mut().reply_piece(k, whole.len(), &piece);
        whole.extend_from_slice(&piece);
    }
    Ok(whole.freeze())
}

/// The client gives up one of its requests waiting for a reply: dropping the call cancels
/// it (spec §8, Requests).
fn cancel(w: &mut World, u: &mut Unstructured<'_>) -> Result<()> {
    let pick = usize::from(u.arbitrary::<u8>()?);
    let mut log = w.log.borrow_mut();
    let waiting: Vec<usize> = (0..log.requests.len())
        .filter(|&k| log.requests[k].task.is_some())
        .collect();
    let Some(&k) = waiting.get(pick % waiting.len().max(1)) else {
        return Ok(());
    };
    if let Some(t) = log.requests[k].task.take() {
        drop(log);
        if w.cancel(t) {
            w.log.borrow_mut().answer("cancelled", k);
        }
    }
    Ok(())
}

/// The server replies to, refuses or drops one of the requests it accepted.
fn respond(w: &mut World, u: &mut Unstructured<'_>) -> Result<()> {
    let (pick, how, len) = (
        usize::from(u.arbitrary::<u8>()?),
        u.int_in_range(0u8..=3)?,
        length(u)?,
    );
    let mut log = w.log.borrow_mut();
    if log.responders.is_empty() {
        return Ok(());
    }
    let i = pick % log.responders.len();
    let (request, responder) = log.responders.remove(i);
    let k = named(Kind::Request, request.body()).expect("checked when accepted");
    match how {
        0 | 1 => {
            let reply = content(Kind::Reply, k, len);
            log.requests[k as usize].replied = Some(reply.clone());
            drop(log);
            let log = Rc::clone(&w.log);
            w.spawn(format!("reply {k}"), true, async move {
                let r = responder.reply(reply).await;
                log.borrow_mut()
                    .answer("replied", (k, r.map_err(|e| e.to_string())));
            });
        }
        2 => {
            let code = len as u64;
            log.requests[k as usize].refused = Some(code);
            drop(log);
            responder.refuse(code);
        }
        _ => {
            log.responder_dropped(k);
            drop(log);
            drop(responder);
        }
    }
    Ok(())
}

/// The client sends the server a message, waiting for one of the confirmations.
fn message(w: &mut World, client: &Connection, u: &mut Unstructured<'_>) -> Result<()> {
    let len = length(u)?;
    let confirm = *u.choose(&[Confirm::Queued, Confirm::Acknowledged, Confirm::Delivered])?;
    let k = {
        let mut log = w.log.borrow_mut();
        log.messages.push(false);
        log.messages.len() as u32 - 1
    };
    let (log, conn) = (Rc::clone(&w.log), client.clone());
    w.spawn(format!("message {k}"), true, async move {
        let r = conn
            .send_message_with(content(Kind::Message, k, len), confirm)
            .await;
        log.borrow_mut().message_sent(k, confirm, &r);
    });
    Ok(())
}

/// The server opens a channel toward the client, labelled `ch<its number>`.
fn open_channel(w: &mut World, server: &Connection) {
    let c = {
        let mut log = w.log.borrow_mut();
        log.channels.push(ChannelRecord::default());
        log.channels.len() - 1
    };
    let label = Label::new(Bytes::from(format!("ch{c}"))).expect("a short label");
    let (log, conn) = (Rc::clone(&w.log), server.clone());
    w.spawn(format!("open channel {c}"), true, async move {
        let r = conn.open_channel(label).await;
        let mut log = log.borrow_mut();
        match r {
            Ok(sender) => log.channels[c].sender = Some(sender),
            Err(e) => log.answer("channel refused", (c, e.to_string())),
        }
    });
}

/// The channel `pick` names, its sender taken if it is free.
fn take_sender(w: &World, pick: usize) -> Option<(usize, ChannelSender)> {
    let mut log = w.log.borrow_mut();
    let c = pick % log.channels.len().max(1);
    Some((c, log.channels.get_mut(c)?.sender.take()?))
}

fn channel_send(w: &mut World, u: &mut Unstructured<'_>) -> Result<()> {
    let (pick, len) = (usize::from(u.arbitrary::<u8>()?), length(u)?);
    let Some((c, mut sender)) = take_sender(w, pick) else {
        return Ok(());
    };
    let n = {
        let mut log = w.log.borrow_mut();
        log.channels[c].sent.push(len);
        log.channels[c].sent.len() - 1
    };
    let log = Rc::clone(&w.log);
    w.spawn(format!("channel {c} send {n}"), true, async move {
        let r = sender.send(content(Kind::Channel, channel_k(c, n), len)).await;
        let mut log = log.borrow_mut();
        // A sender that failed is not given back: nothing more goes on that channel.
        if r.is_ok() {
            log.channels[c].sender = Some(sender);
        }
        log.answer("channel sent", (c, n, r.map_err(|e| e.to_string())));
    });
    Ok(())
}

fn channel_finish(w: &mut World, u: &mut Unstructured<'_>) -> Result<()> {
    if let Some((c, sender)) = take_sender(w, usize::from(u.arbitrary::<u8>()?)) {
        finish(w, c, sender);
    }
    Ok(())
}

/// Finishes every channel no send holds.
fn finish_channels(w: &mut World) {
    let channels = w.log.borrow().channels.len();
    for c in 0..channels {
        if let Some((c, sender)) = take_sender(w, c) {
            finish(w, c, sender);
        }
    }
}

fn finish(w: &mut World, c: usize, sender: ChannelSender) {
    w.log.borrow_mut().channels[c].finished = true;
    let log = Rc::clone(&w.log);
    w.spawn(format!("channel {c} finish"), true, async move {
        let r = sender.finish().await;
        oracle::refusal_not_as_a_write(format_args!("channel {c}"), Confirm::Delivered, &r);
        log.borrow_mut()
            .answer("channel finished", (c, r.map_err(|e| e.to_string())));
    });
}

/// The fuzzer is done: the network carries everything, in order, and the clock moves on;
/// every call that ends by itself must end. The server lets go of the requests it holds
/// and of those that reach it now (each refused), and finishes every channel as soon as
/// no send holds it: an open request or channel would otherwise keep its stream, and past
/// the peer's limit of concurrent streams a new one waits for a stream to end, for ever.
fn settle(w: &mut World) {
    let limit = w.now + SETTLE_LIMIT;
    loop {
        release_responders(w);
        finish_channels(w);
        w.run_tasks();
        if !w.pending_finite() || w.now >= limit {
            break;
        }
        if w.wire.is_empty() {
            let next = w.next_deadline().unwrap_or(limit).min(limit);
            w.advance_to(next);
        }
        w.deliver_all();
    }
    let pending = w.pending();
    assert!(
        pending.is_empty(),
        "calls still unanswered {SETTLE_LIMIT:?} after the network settled: {pending:?}; the answers:\n{}",
        String::from_utf8_lossy(&w.log.borrow().answers)
    );
}

/// The server drops every request it holds unanswered: each is refused.
fn release_responders(w: &mut World) {
    let held = std::mem::take(&mut w.log.borrow_mut().responders);
    for (request, responder) in held {
        if let Some(k) = named(Kind::Request, request.body()) {
            w.log.borrow_mut().responder_dropped(k);
        }
        drop(responder);
    }
}
