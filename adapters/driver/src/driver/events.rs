//! The core's events, read after every input ([`Driver::events`]): what each names (a
//! stream, or a whole connection) is marked for the calls waiting on it (module `waiting`
//! wakes them), what it logs goes in its connection's `tracing` span, and the driver's own
//! records follow it: a connection registered or ended, a stream's confirmation, a
//! request's or a pipe's end.
//!
//! Input: [`weir_core::Endpoint::poll_event`]. Outputs: `Driver::dirty`, the connections'
//! records (`conn.rs`), `tracing` events.

use weir_core::wire::StreamId;
use weir_core::{ConnectionHandle, Event, PipeFailure, PipeId};

use super::conn::{Confirming, Conn, Ended};
use super::{Driver, Wait};
use crate::Connected;

impl Driver {
    pub(super) fn events(&mut self) {
        while let Some(e) = self.ep.poll_event() {
            // What the event changed is marked for the calls waiting on it, and what it logs
            // goes in its connection's span (one lookup for both).
            let mut span = None;
            if let Some((h, stream)) = event_conn(&e) {
                if let Some(c) = self.conns.get(&h) {
                    if c.ended.is_none() {
                        self.dirty.push((h, stream));
                    }
                    span = c.span.clone();
                }
            }
            let _entered = span.as_ref().map(tracing::Span::enter);
            match e {
                Event::Connected {
                    conn: h,
                    negotiated,
                    peer,
                } => {
                    // A client's connection is registered here, after its span was looked
                    // for: its first line goes in the span it gets now.
                    let (id, fresh) = match self.live_conn(h) {
                        Some(id) => (id, None),
                        None => {
                            let id = self.register(h);
                            self.accepted.push_back(Connected { id, negotiated, peer });
                            (id, self.conns.get(&id).and_then(|c| c.span.clone()))
                        }
                    };
                    let _fresh = fresh.as_ref().map(tracing::Span::enter);
                    let remote = self.ep.remote_address(h);
                    tracing::info!(conn = %id, ?remote, version = negotiated.version, "connection established");
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.negotiated = Some(negotiated);
                        c.peer = peer;
                    }
                    self.pool_up(id);
                    self.metrics.established += 1;
                    self.dirty.push((id, None));
                    self.handshake_ended = true;
                }
                Event::PathChanged { conn: h, path } => {
                    tracing::info!(conn = %h, ?path, "path changed");
                    if let Some(c) = self.conn_mut(h) {
                        c.moves += 1;
                        c.path = Some(path);
                    }
                }
                Event::RelayReserved { conn: h } | Event::RelayRefused { conn: h, .. } => {
                    let answer = match e {
                        Event::RelayRefused { reason, .. } => Err(reason),
                        _ => Ok(()),
                    };
                    tracing::info!(conn = %h, ?answer, "the relay answered our reservation");
                    if let Some(c) = self.conn_mut(h) {
                        c.reservation = Some(answer);
                    }
                }
                Event::HandshakeFailed { conn: h, reason } => {
                    let remote = self.ep.remote_address(h);
                    tracing::warn!(?remote, %reason, "handshake failed");
                    self.metrics.failed += 1;
                    self.pool_down(h, None);
                    self.end(h, Ended::Handshake(reason));
                }
                Event::Closed {
                    conn: h,
                    reason,
                    stats,
                } => {
                    if self.live_conn(h).is_some() {
                        tracing::info!(conn = %h, %reason, "connection closed");
                    }
                    if self.live_conn(h).is_some() {
                        self.metrics.ended.add(&stats);
                    }
                    if let Some(c) = self.conn_mut(h) {
                        c.last_stats = Some(*stats);
                    }
                    if self.live_conn(h).is_some() {
                        self.pool_down(h, Some(reason.clone()));
                    }
                    self.end(h, Ended::Closed(reason));
                }
                Event::StreamReset {
                    conn: h,
                    stream,
                    code,
                } => {
                    tracing::debug!(conn = %h, stream = stream.0, code, "stream reset by the peer");
                    self.pump_request(h, stream);
                }
                Event::StreamOpened {
                    conn: h,
                    stream,
                    header,
                } => self.stream_opened(h, stream, &header),
                Event::StreamReadable { conn: h, stream } => self.pump_request(h, stream),
                Event::StreamStopped {
                    conn: h,
                    stream,
                    code,
                } => {
                    tracing::debug!(conn = %h, stream = stream.0, code, "stream stopped by the peer");
                    if let Some(got) = self.conn_mut(h).and_then(|c| c.confirming.get_mut(&stream)) {
                        *got = Confirming::Stopped(code);
                    }
                }
                Event::StreamAcked { conn: h, stream } => {
                    if let Some(got) = self.conn_mut(h).and_then(|c| c.confirming.get_mut(&stream)) {
                        *got = Confirming::Acknowledged;
                    }
                }
                Event::StreamDelivery {
                    conn: h,
                    stream,
                    delivery,
                } => {
                    tracing::debug!(conn = %h, stream = stream.0, %delivery, "receipt");
                    if let Some(got) = self.conn_mut(h).and_then(|c| c.confirming.get_mut(&stream)) {
                        *got = Confirming::Receipt(delivery);
                    }
                }
                Event::PipeFinished { pipe } => self.pipe_ended(pipe, Ok(())),
                Event::PipeFailed { pipe, reason } => {
                    tracing::warn!(pipe = ?pipe, ?reason, "pipe failed");
                    self.pipe_ended(pipe, Err(reason));
                }
                _ => {}
            }
        }
    }

    /// A connection that has not ended ([`live_conn`](Self::live_conn)), to change.
    pub(super) fn conn_mut(&mut self, h: ConnectionHandle) -> Option<&mut Conn> {
        self.conns.get_mut(&h).filter(|c| c.ended.is_none())
    }

    pub(super) fn pipe_ended(&mut self, pipe: PipeId, result: Result<(), PipeFailure>) {
        self.wake(Wait::Pipe(pipe));
        if let Some(p) = self.pipes.get_mut(&pipe) {
            if p.released {
                self.pipes.remove(&pipe);
            } else {
                p.result = Some(result);
                p.stats.in_flight = 0;
                p.stats.waiting = 0;
            }
        }
    }

    /// A connection is over (handshake failed or closed): its waiting calls get the end.
    pub(super) fn end(&mut self, h: ConnectionHandle, end: Ended) {
        let id = h;
        let Some(c) = self.conns.get_mut(&id).filter(|c| c.ended.is_none()) else {
            return;
        };
        c.ended = Some(end);
        // A connection that ended before anyone accepted it stays in the queue: `accept`
        // still hands it out, with what it received, and its end. Only past the
        // endpoint's connection limit are the oldest ended ones let go, so that a flood of
        // short connections nobody accepts cannot grow the queue without bound.
        while self.accepted.len() > self.ep.config().max_connections {
            let oldest_ended = self
                .accepted
                .iter()
                .position(|c| self.conns.get(&c.id).is_none_or(|c| c.ended.is_some()));
            let Some(i) = oldest_ended else {
                break;
            };
            if let Some(Connected { id: gone, .. }) = self.accepted.remove(i) {
                if let Some(c) = self.conns.get_mut(&gone) {
                    c.released = true;
                }
                self.forget_if_done(gone);
            }
        }
        self.dirty.push((id, None));
        self.forget_if_done(id);
    }
}

/// The connection an event names, if any, and its stream if it concerns one only (calls on
/// the connection as a whole, such as `accept_stream`, hear of it too).
fn event_conn(e: &Event) -> Option<(ConnectionHandle, Option<StreamId>)> {
    match e {
        Event::StreamOpened { conn, stream, .. }
        | Event::StreamReadable { conn, stream }
        | Event::StreamReset { conn, stream, .. }
        | Event::StreamStopped { conn, stream, .. }
        | Event::StreamAcked { conn, stream }
        | Event::StreamDelivery { conn, stream, .. } => Some((*conn, Some(*stream))),
        Event::Connected { conn, .. }
        | Event::HandshakeFailed { conn, .. }
        | Event::StreamsAvailable { conn }
        | Event::DatagramReceived { conn }
        | Event::Writable { conn }
        | Event::RelayReserved { conn }
        | Event::RelayRefused { conn, .. }
        | Event::PathChanged { conn, .. }
        | Event::Closed { conn, .. } => Some((*conn, None)),
        _ => None,
    }
}
