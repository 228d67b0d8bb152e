//! The handles' calls other than reads: connect and accept, send a message, open, write,
//! finish, reset and stop streams, a stream's priority, wait for a stream's confirmation,
//! close, and a handle letting go (pipes are `pipes`'s). A call that may have to wait is a `poll_*`: it answers now, or
//! registers the caller's waker on what it waits for and answers `Pending`. State that
//! spans several polls (a message half written) lives in the caller's future
//! ([`Sending`]), never here, and a future dropped midway says so (`abandon_*`), so the
//! driver keeps no record of calls.

use std::net::SocketAddr;
use std::task::{Poll, Waker};

use bytes::{Buf, Bytes};
use weir_core::congestion::CongestionAlgorithm;
use weir_core::wire::{Capabilities, Label, Reason, StreamId};
use weir_core::{
    ApiError, ConnectionHandle, ConnectionStats, Delivery, EndpointLoad, EndpointStats, Path, Priority,
    PublicKey, Reflexive, StreamHeader,
};

use super::conn::Confirming;
use super::{Driver, Wait};
use crate::{Confirm, Connected, Error};

/// The peer's refusal of a stream we wrote, stopped with `code`, as a wait for its
/// confirmation reports it: the peer (no relay between) did not take it whole. A stop that
/// comes before the last acknowledgement arrives as STOP_SENDING, one after it as
/// RECEIPT_FAILED (spec §4.6, §8 Delivery); which of the two won a race is no business of
/// the application's, so both read the same.
pub(crate) fn refused(code: u64) -> Error {
    Error::NotDelivered(Delivery::Failed { code, relays: 0 })
}

/// The peer's stop of a stream we ended, as a call that waits for `confirm` reports it: a
/// refusal ([`refused`]) to a wait past [`Confirm::Queued`], else as a write reports it.
pub(crate) fn stop_for(confirm: Confirm, code: u64) -> Error {
    match confirm {
        Confirm::Queued => Error::Stopped { code },
        _ => refused(code),
    }
}

/// A message on its way out, across the polls of the call that sends it.
pub(crate) struct Sending {
    label: Option<Label>,
    /// What is left to write.
    data: Bytes,
    /// The message's stream, once opened.
    stream: Option<StreamId>,
    confirm: Confirm,
    /// Every byte is in the core: what is left is the wait for `confirm`.
    written: bool,
}

impl Sending {
    /// A message to send with `label`, confirmed as far as `confirm` before it is done.
    pub(crate) fn new(label: Option<Label>, data: Bytes, confirm: Confirm) -> Sending {
        Sending {
            label,
            data,
            stream: None,
            confirm,
            written: false,
        }
    }

    /// Every byte is in the core: what is left is the wait for the confirmation asked for.
    pub(crate) fn is_written(&self) -> bool {
        self.written
    }
}

impl Driver {
    // ------------------------------------------------------------ shared by the calls

    /// Why a call on `conn` cannot even be tried: the endpoint is shutting down, or the
    /// driver knows no such connection (its handles are all gone, or it never was).
    pub(super) fn refused(&self, conn: ConnectionHandle) -> Option<Error> {
        if self.shutdown.is_some() {
            return Some(Error::Shutdown);
        }
        (!self.conns.contains_key(&conn)).then_some(Error::Refused(ApiError::UnknownConnection))
    }

    /// A poll's answer: `r`, or, while there is none, `Pending` with `waker` registered on
    /// `on`. The core's events are read before returning (the call may have freed credit,
    /// stopped a stream or left something to send).
    pub(super) fn answer<T>(&mut self, r: Option<T>, on: Wait, waker: &Waker) -> Poll<T> {
        if r.is_none() {
            // Before the events are read: a change they bring wakes this call too.
            self.park(on, waker);
        }
        self.progress();
        r.map_or(Poll::Pending, Poll::Ready)
    }

    /// Runs `f` on the connection in the core.
    pub(super) fn on_conn<T>(
        &mut self,
        conn: ConnectionHandle,
        f: impl FnOnce(&mut weir_core::Endpoint, ConnectionHandle) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if !self.conns.contains_key(&conn) {
            return Err(ApiError::UnknownConnection);
        }
        // Ended too: the core keeps a connection that ended with something untold until it
        // is taken or the connection released (`weir_core::Endpoint::release`), and refuses
        // the rest.
        f(&mut self.ep, conn)
    }

    /// Why a call on `conn` failed: the peer's stop if it stopped the stream, the final
    /// receiver's refusal if a relay passed it on before the stream was all written, its end
    /// if it ended, else the core's refusal.
    pub(super) fn error(&self, conn: ConnectionHandle, e: ApiError) -> Error {
        match e {
            ApiError::Stopped { code } => return Error::Stopped { code },
            ApiError::Settled {
                delivery: refused @ Delivery::Failed { .. },
            } => return Error::NotDelivered(refused),
            _ => {}
        }
        match self.conns.get(&conn).and_then(|c| c.ended.as_ref()) {
            Some(end) => end.error(),
            None => Error::Refused(e),
        }
    }

    /// Why a call that ends a stream and waits for `confirm` failed: as
    /// [`error`](Self::error), except that the peer's stop is its refusal of the stream
    /// ([`refused`]), which a wait for the stream's acknowledgement or receipt reports as
    /// [`Error::NotDelivered`] whichever way it came.
    pub(super) fn confirm_error(&self, conn: ConnectionHandle, e: ApiError, confirm: Confirm) -> Error {
        match e {
            ApiError::Stopped { code } => stop_for(confirm, code),
            e => self.error(conn, e),
        }
    }

    /// Runs a call the core answers at once on `conn`'s handle: refused as
    /// [`refused`](Self::refused) says, the core's refusal told as [`error`](Self::error)
    /// says, the events it raised read.
    fn act<T>(
        &mut self,
        conn: ConnectionHandle,
        f: impl FnOnce(&mut weir_core::Endpoint, ConnectionHandle) -> Result<T, ApiError>,
    ) -> Result<T, Error> {
        if let Some(e) = self.refused(conn) {
            return Err(e);
        }
        let r = self.on_conn(conn, f);
        self.progress();
        r.map_err(|e| self.error(conn, e))
    }

    /// The application let go of `stream`: how it ended is no longer kept.
    pub(super) fn forget_stream(&mut self, conn: ConnectionHandle, stream: StreamId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.ends.remove(&stream);
        }
    }

    // ------------------------------------------------------------ connections

    /// Starts a connection to `remote` (to `server`'s key, if known; with a controller of
    /// its own, if given); [`poll_connected`](Self::poll_connected) says how it ends.
    pub(crate) fn connect(
        &mut self,
        remote: std::net::SocketAddr,
        server: Option<PublicKey>,
        congestion: Option<CongestionAlgorithm>,
    ) -> Result<ConnectionHandle, Error> {
        if self.shutdown.is_some() {
            return Err(Error::Shutdown);
        }
        let now = self.now();
        let h = match (server, congestion) {
            (Some(key), Some(cc)) => self.ep.connect_to_with(now, remote, key, cc),
            (Some(key), None) => self.ep.connect_to(now, remote, key),
            (None, Some(cc)) => self.ep.connect_with(now, remote, cc),
            (None, None) => self.ep.connect(now, remote),
        }
        .map_err(Error::Refused)?;
        let conn = self.register(h);
        self.progress();
        Ok(conn)
    }

    /// Starts a connection to the peer holding `peer` through the relay on `relay` (spec
    /// §12); [`poll_connected`](Self::poll_connected) answers as for `connect`.
    pub(crate) fn connect_via(
        &mut self,
        relay: ConnectionHandle,
        peer: PublicKey,
    ) -> Result<ConnectionHandle, Error> {
        if self.shutdown.is_some() {
            return Err(Error::Shutdown);
        }
        let now = self.now();
        let h = self.ep.connect_via(now, relay, peer).map_err(Error::Refused)?;
        let conn = self.register(h);
        self.progress();
        Ok(conn)
    }

    /// Asks the relay on `relay` for a reservation.
    pub(crate) fn reserve(&mut self, relay: ConnectionHandle) -> Result<(), Error> {
        if let Some(c) = self.conns.get_mut(&relay) {
            c.reservation = None;
        }
        self.ep.reserve(relay).map_err(Error::Refused)?;
        self.progress();
        Ok(())
    }

    /// The relay's answer to our reservation on `relay`, or the connection's end.
    pub(crate) fn poll_reserved(
        &mut self,
        relay: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<(), Error>> {
        let r = self
            .conns
            .get(&relay)
            .and_then(|c| match (c.reservation, &c.ended) {
                (Some(answer), _) => Some(answer.map_err(Error::Relay)),
                (None, Some(end)) => Some(Err(end.error())),
                (None, None) => None,
            });
        self.answer(r, Wait::Conn(relay, None), waker)
    }

    /// How `conn` reaches its peer now.
    pub(crate) fn path(&self, conn: ConnectionHandle) -> Option<Path> {
        self.ep.path(conn)
    }

    /// `conn`'s path once it moved more than `seen` times in all: the count and the path it
    /// is on now; or the connection's end.
    pub(crate) fn poll_moved(
        &mut self,
        conn: ConnectionHandle,
        seen: u64,
        waker: &Waker,
    ) -> Poll<Result<(u64, Path), Error>> {
        let r = self.conns.get(&conn).and_then(|c| match (c.path, &c.ended) {
            (Some(path), _) if c.moves > seen => Some(Ok((c.moves, path))),
            (_, Some(end)) => Some(Err(end.error())),
            _ => None,
        });
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    /// Where `conn`'s peer is, as last seen.
    pub(crate) fn remote_address(&self, conn: ConnectionHandle) -> Option<SocketAddr> {
        self.ep.remote_address(conn)
    }

    /// The connection [`connect`](Self::connect) started, once its handshake succeeded, or
    /// why it failed.
    pub(crate) fn poll_connected(
        &mut self,
        conn: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<Connected, Error>> {
        let r = match (self.refused(conn), self.conns.get(&conn)) {
            (Some(e), _) => Some(Err(e)),
            // (`refused` said the driver knows it.)
            (None, None) => Some(Err(Error::Refused(ApiError::UnknownConnection))),
            (None, Some(c)) => match (c.negotiated, c.ended.clone()) {
                (Some(negotiated), _) => Some(Ok(self.hand_out(Connected {
                    id: conn,
                    negotiated,
                    peer: c.peer,
                }))),
                (None, Some(end)) => {
                    self.abandon_connect(conn);
                    Some(Err(end.error()))
                }
                (None, None) => None,
            },
        };
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    /// A connect given up before its answer: the connection is closed and forgotten.
    pub(crate) fn abandon_connect(&mut self, conn: ConnectionHandle) {
        let now = self.now();
        let _ = self.on_conn(conn, |ep, h| ep.close(now, h, 0, Reason::default()));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.released = true;
        }
        self.forget_if_done(conn);
        self.progress();
    }

    /// The next connection a client opened (one that already ended is handed out too, with
    /// what it received and its end).
    pub(crate) fn poll_accept(&mut self, waker: &Waker) -> Poll<Result<Connected, Error>> {
        let r = match self.shutdown {
            Some(_) => Some(Err(Error::Shutdown)),
            None => self.accepted.pop_front().map(|c| Ok(self.hand_out(c))),
        };
        self.answer(r, Wait::Accept, waker)
    }

    /// Closes `conn`; the peer is told `code` and `reason`.
    pub(crate) fn close(&mut self, conn: ConnectionHandle, code: u64, reason: Reason) -> Result<(), Error> {
        let now = self.now();
        self.act(conn, |ep, h| ep.close(now, h, code, reason))
    }

    /// Our public addresses as recent peers saw them (`weir_core::Endpoint::reflexive`).
    pub(crate) fn reflexive(&self) -> Reflexive {
        self.ep.reflexive()
    }

    /// The endpoint's counters since it started.
    pub(crate) fn endpoint_stats(&self) -> EndpointStats {
        self.ep.stats()
    }

    /// What the endpoint holds now.
    pub(crate) fn load(&self) -> EndpointLoad {
        self.ep.load()
    }

    /// Our address as `conn`'s peer last said it sees it, while the connection is open.
    pub(crate) fn observed_address(&self, conn: ConnectionHandle) -> Option<SocketAddr> {
        self.ep.observed_address(conn)
    }

    /// A connection's counters: live while it is open, then the ones it closed with.
    pub(crate) fn connection_stats(&self, conn: ConnectionHandle) -> Option<ConnectionStats> {
        let c = self.conns.get(&conn)?;
        match c.ended {
            None => self.ep.connection_stats(conn),
            Some(_) => c.last_stats,
        }
    }

    /// `conn` is handed to the application (a [`Connection`](crate::Connection) will be
    /// made of it): one more handle, with its clones, to go before it is let go. Counted
    /// here, as the answer leaves the driver, so that no handle made of it is missed by a
    /// parked connection's expiry.
    pub(super) fn hand_out(&mut self, c: Connected) -> Connected {
        if let Some(conn) = self.conns.get_mut(&c.id) {
            conn.handles += 1;
        }
        c
    }

    /// A handle of `conn` (with all its clones) is gone. Once the last one is, a connection
    /// the pool dialed is parked for the pool's idle time; any other is closed (code 0) once
    /// the peer acknowledged everything written to it, and forgotten once it ended.
    pub(crate) fn release_connection(&mut self, conn: ConnectionHandle) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.handles = c.handles.saturating_sub(1);
            if c.handles > 0 {
                return;
            }
        }
        if self.pool_park(conn) {
            return;
        }
        self.let_go(conn);
    }

    /// `conn` has no handle left and is not parked: closed once acknowledged, forgotten
    /// once ended.
    pub(super) fn let_go(&mut self, conn: ConnectionHandle) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.released = true;
            c.ends.clear();
        }
        self.close_if_acked(conn);
        self.forget_if_done(conn);
        self.progress();
    }

    // ------------------------------------------------------------ sending

    /// Sends a message: whole if it fits the send buffer, else as a stream of announced
    /// length written piece by piece as room frees up; then waits until it got as far as
    /// its [`Confirm`] says.
    pub(crate) fn poll_send(
        &mut self,
        conn: ConnectionHandle,
        m: &mut Sending,
        waker: &Waker,
    ) -> Poll<Result<(), Error>> {
        if let Some(e) = self.refused(conn) {
            return Poll::Ready(Err(e));
        }
        if !m.written {
            match self.send_step(conn, &m.label, &mut m.data, &mut m.stream) {
                Ok(true) => m.written = true,
                Ok(false) => return self.answer(None, Wait::Conn(conn, None), waker),
                Err(e) => {
                    let e = self.confirm_error(conn, e, m.confirm);
                    return self.answer(Some(Err(e)), Wait::Conn(conn, None), waker);
                }
            }
            match (m.confirm, m.stream) {
                (Confirm::Queued, _) | (_, None) => {
                    return self.answer(Some(Ok(())), Wait::Conn(conn, None), waker)
                }
                (_, Some(stream)) => self.await_confirmation(conn, stream),
            }
        }
        match m.stream {
            Some(stream) => self.poll_confirm(conn, stream, m.confirm, waker),
            None => Poll::Ready(Ok(())),
        }
    }

    /// A send given up: a message half written is reset (the peer drops it), and the wait
    /// for a whole one's confirmation is forgotten.
    pub(crate) fn abandon_send(&mut self, conn: ConnectionHandle, m: &Sending) {
        match (m.written, m.stream) {
            (false, Some(stream)) => {
                let _ = self.on_conn(conn, |ep, h| ep.reset_stream(h, stream, 0));
            }
            (true, Some(stream)) => self.forget_confirmation(conn, stream),
            (_, None) => {}
        }
        self.progress();
    }

    /// One step of sending a message. `Ok(true)` once all of it is in the core.
    fn send_step(
        &mut self,
        conn: ConnectionHandle,
        label: &Option<Label>,
        data: &mut Bytes,
        stream: &mut Option<StreamId>,
    ) -> Result<bool, ApiError> {
        let s = match *stream {
            Some(s) => s,
            None => {
                let len = data.len() as u64;
                if len <= self.ep.config().send_buffer {
                    return match self.on_conn(conn, |ep, h| ep.send_message(h, label.clone(), data.clone())) {
                        Ok(s) => {
                            *stream = Some(s);
                            Ok(true)
                        }
                        Err(ApiError::WouldBlock | ApiError::StreamLimit) => Ok(false),
                        Err(e) => Err(e),
                    };
                }
                let mut header = StreamHeader::default().with_total_len(len);
                header.label = label.clone();
                let s = match self.on_conn(conn, |ep, h| ep.open_stream(h, header)) {
                    Ok(s) => s,
                    Err(ApiError::StreamLimit) => return Ok(false),
                    Err(e) => return Err(e),
                };
                *stream = Some(s);
                s
            }
        };
        while !data.is_empty() {
            match self.on_conn(conn, |ep, h| ep.write(h, s, data.clone())) {
                Ok(0) | Err(ApiError::WouldBlock) => return Ok(false),
                Ok(n) => data.advance(n),
                Err(e) => return Err(e),
            }
        }
        self.on_conn(conn, |ep, h| ep.finish(h, s))?;
        Ok(true)
    }

    /// Opens a stream to write to; waits while the peer allows no more streams.
    pub(crate) fn poll_open(
        &mut self,
        conn: ConnectionHandle,
        header: &StreamHeader,
        waker: &Waker,
    ) -> Poll<Result<StreamId, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => match self.on_conn(conn, |ep, h| ep.open_stream(h, header.clone())) {
                Ok(s) => Some(Ok(s)),
                Err(ApiError::StreamLimit) => None,
                Err(e) => Some(Err(self.error(conn, e))),
            },
        };
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    /// Writes what fits of `data` on `stream` (at least one byte): how many bytes were
    /// taken; waits while none fit. Takes nothing unless it answers.
    pub(crate) fn poll_write(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        data: &Bytes,
        waker: &Waker,
    ) -> Poll<Result<usize, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => match self.on_conn(conn, |ep, h| ep.write(h, stream, data.clone())) {
                Ok(n) if n > 0 || data.is_empty() => Some(Ok(n)),
                Ok(_) | Err(ApiError::WouldBlock) => None,
                Err(e) => Some(Err(self.error(conn, e))),
            },
        };
        self.answer(r, Wait::Conn(conn, Some(stream)), waker)
    }

    /// Ends `stream` after what was written. `Some` answer when the call is over at once;
    /// `None` when it waits for the confirmation ([`poll_confirm`](Self::poll_confirm)).
    pub(crate) fn finish(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        confirm: Confirm,
    ) -> Option<Result<(), Error>> {
        if let Some(e) = self.refused(conn) {
            return Some(Err(e));
        }
        let finished = self.on_conn(conn, |ep, h| ep.finish(h, stream));
        let answer = match finished {
            // The receipt came before the finish: the announced length was read.
            Err(ApiError::Settled { delivery }) => Some(match delivery {
                Delivery::Failed { .. } if confirm != Confirm::Queued => Err(Error::NotDelivered(delivery)),
                _ => Ok(()),
            }),
            Err(e) => Some(Err(self.confirm_error(conn, e, confirm))),
            Ok(()) if confirm == Confirm::Queued => Some(Ok(())),
            Ok(()) => {
                self.await_confirmation(conn, stream);
                None
            }
        };
        self.progress();
        answer
    }

    /// From now on the acknowledgement and receipt of `stream` are kept for
    /// [`poll_confirm`](Self::poll_confirm). Called in the same lock as the finish, before
    /// any datagram could bring them.
    fn await_confirmation(&mut self, conn: ConnectionHandle, stream: StreamId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.confirming.entry(stream).or_insert(Confirming::Sent);
        }
    }

    /// A wait for `stream`'s confirmation given up.
    pub(crate) fn forget_confirmation(&mut self, conn: ConnectionHandle, stream: StreamId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.confirming.remove(&stream);
        }
    }

    /// Whether a finished `stream` got as far as `until`: acknowledged, or delivered (its
    /// receipt; a peer without receipts is taken at its acknowledgement), or why it got no
    /// further.
    pub(crate) fn poll_confirm(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        until: Confirm,
        waker: &Waker,
    ) -> Poll<Result<(), Error>> {
        let r = match self.conns.get_mut(&conn) {
            None => Some(Err(Error::Refused(ApiError::UnknownConnection))),
            Some(_) if self.shutdown.is_some() => Some(Err(Error::Shutdown)),
            Some(c) => {
                let receipts = c
                    .negotiated
                    .is_some_and(|n| n.capabilities.contains(Capabilities::RECEIPTS));
                let answer = match c.confirming.get(&stream) {
                    Some(Confirming::Receipt(Delivery::Delivered { .. })) => Some(Ok(())),
                    Some(&Confirming::Receipt(failed)) => Some(Err(Error::NotDelivered(failed))),
                    Some(Confirming::Acknowledged) if until == Confirm::Acknowledged || !receipts => {
                        Some(Ok(()))
                    }
                    Some(&Confirming::Stopped(code)) => Some(Err(refused(code))),
                    _ => c.ended.as_ref().map(|end| Err(end.error())),
                };
                if answer.is_some() {
                    c.confirming.remove(&stream);
                }
                answer
            }
        };
        self.answer(r, Wait::Conn(conn, Some(stream)), waker)
    }

    /// Abandons a stream we write; the peer is told `code`.
    pub(crate) fn reset_stream(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        code: u64,
    ) -> Result<(), Error> {
        self.act(conn, |ep, h| ep.reset_stream(h, stream, code))
    }

    /// Queues `data` as one unreliable datagram on `conn` (spec §4.19).
    pub(crate) fn send_datagram(&mut self, conn: ConnectionHandle, data: Bytes) -> Result<(), Error> {
        self.act(conn, |ep, h| ep.send_datagram(h, data))
    }

    /// The largest datagram `conn` takes now.
    pub(crate) fn max_datagram_size(&self, conn: ConnectionHandle) -> Option<usize> {
        self.ep.max_datagram_size(conn)
    }

    /// Sets the class `stream` is sent in (see [`weir_core::Endpoint::set_priority`]).
    pub(crate) fn set_priority(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        priority: Priority,
    ) -> Result<(), Error> {
        self.act(conn, |ep, h| ep.set_priority(h, stream, priority))
    }

    /// A handle on a stream we write let go, neither finished nor reset: it is finished, or
    /// reset with code 0 if its announced length was not reached.
    pub(crate) fn release_send_stream(&mut self, conn: ConnectionHandle, stream: StreamId) {
        let finished = self.on_conn(conn, |ep, h| ep.finish(h, stream));
        if finished == Err(ApiError::TotalLength) {
            let _ = self.on_conn(conn, |ep, h| ep.reset_stream(h, stream, 0));
        }
        self.progress();
    }

    // ------------------------------------------------------------ streams the peer sends

    /// Tells the peer to stop sending `stream`; what still arrives is discarded.
    pub(crate) fn stop_sending(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        code: u64,
    ) -> Result<(), Error> {
        self.forget_stream(conn, stream);
        self.act(conn, |ep, h| ep.stop_sending(h, stream, code))
    }

    /// A handle on a stream being read let go before its end: the peer is told to stop
    /// sending it (code 0).
    pub(crate) fn release_recv_stream(&mut self, conn: ConnectionHandle, stream: StreamId) {
        let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, 0));
        self.forget_stream(conn, stream);
        self.progress();
    }

    /// Makes the delivery of a stream the peer sends the application's to confirm (see
    /// [`weir_core::Endpoint::defer_delivery`]).
    pub(crate) fn defer_delivery(&mut self, conn: ConnectionHandle, stream: StreamId) -> Result<(), Error> {
        self.act(conn, |ep, h| ep.defer_delivery(h, stream))
    }

    /// Tells the sender that a deferred stream read to its end is delivered (see
    /// [`weir_core::Endpoint::confirm_delivery`]).
    pub(crate) fn confirm_delivery(&mut self, conn: ConnectionHandle, stream: StreamId) -> Result<(), Error> {
        self.act(conn, |ep, h| ep.confirm_delivery(h, stream))
    }
}
