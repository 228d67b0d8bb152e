//! The endpoint's part in relay circuits (spec/protocol.md §12; module `relay` holds the
//! two roles' state): the application's requests (`reserve`, `connect_via`), the RELAY_*
//! frames connections received, relayed datagrams in (forwarded as a relay, or unwrapped
//! and handled from their circuit address as an end), and the header put on what a
//! connection sends through a circuit.
//!
//! Copies: a forwarded datagram keeps the bytes it came in (only its circuit id is
//! rewritten, in place) until `poll_transmit` copies it into the caller's buffer, the one
//! copy every datagram the endpoint sends makes; an unwrapped datagram is a slice of the one
//! that carried it.

// Relayed datagrams are anyone's: outside tests, no index or slice that is not checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use super::*;
use crate::event::Path;
use crate::relay::ends::{End, Pending};
use crate::relay::forwards::Pushed;
use crate::relay::serve::Forward;
use crate::relay::{circuit_addr, circuit_of, RelayRefusal, PENDING};
use crate::wire::{write_relay_header, CircuitId, RelayFrame, RELAY_HEADER_LEN};

/// Where a connection's datagrams go.
enum Route {
    /// To its address.
    Direct,
    /// Through the circuit `id`, to its relay at `relay`.
    Circuit { relay: SocketAddr, id: CircuitId },
    /// Nowhere yet: its circuit is not open (or no longer is).
    Waiting,
}

/// How datagrams to `remote` travel, given the circuits we are an end of.
pub(super) fn path_to(ends: &crate::relay::ends::Ends, remote: SocketAddr) -> Path {
    match circuit_of(remote) {
        None => Path::Direct(remote),
        Some(id) => match ends.get(id) {
            Some(end) => Path::Relayed { relay: end.relay },
            None => Path::Waiting,
        },
    }
}

impl Endpoint {
    /// Asks the relay at the other end of `relay` (a connection that negotiated RELAY) to
    /// keep us reachable by our key: peers that name it in [`connect_via`](Self::connect_via)
    /// then reach us through it. [`Event::RelayReserved`] or [`Event::RelayRefused`]
    /// answers. A reservation lasts as long as the connection.
    pub fn reserve(&mut self, relay: ConnectionHandle) -> Result<(), ApiError> {
        let record = self.record(|| Command::Reserve { relay });
        let request = self.ends.request(relay, Pending::Reserve);
        let out = self.relay_send(relay, RelayFrame::Reserve { request });
        if out.is_err() {
            self.ends.answered(relay, request);
        }
        self.recorded(None, record, out)
    }

    /// Connects to the peer holding `peer` through the relay at the other end of `relay`
    /// (a connection that negotiated RELAY; the peer reserved there): the relay opens a
    /// circuit, and our handshake with the peer runs through it, authenticated to `peer`
    /// end to end (Noise IK). [`Event::Connected`], or [`Event::HandshakeFailed`] with
    /// [`HandshakeError::Relay`](crate::HandshakeError::Relay) if the relay refuses.
    pub fn connect_via(
        &mut self,
        now: Instant,
        relay: ConnectionHandle,
        peer: PublicKey,
    ) -> Result<ConnectionHandle, ApiError> {
        let record = self.record(|| Command::ConnectVia { relay, peer });
        let out = self.open_via(now, relay, peer);
        self.recorded(Some(now), record, out)
    }

    fn open_via(
        &mut self,
        now: Instant,
        relay: ConnectionHandle,
        peer: PublicKey,
    ) -> Result<ConnectionHandle, ApiError> {
        let link = self.lookup(relay).ok_or(ApiError::UnknownConnection)?;
        if !link.is_established() {
            return Err(ApiError::NotEstablished);
        }
        if !link.relay_on() {
            return Err(ApiError::NotNegotiated);
        }
        let cc = self.config.congestion.clone();
        let inner = self.open_connection(now, circuit_addr(PENDING), cc, Some(peer))?;
        if let Ok(c) = self.conn(inner) {
            c.await_circuit();
        }
        self.touch(inner.index());
        let request = self.ends.request(relay, Pending::Connect { inner });
        let frame = RelayFrame::Connect {
            request,
            peer: *peer.as_bytes(),
        };
        if let Err(e) = self.relay_send(relay, frame) {
            self.ends.answered(relay, request);
            if let Ok(c) = self.conn(inner) {
                c.circuit_refused(RelayRefusal::PeerGone);
            }
            self.touch(inner.index());
            return Err(e);
        }
        Ok(inner)
    }

    /// How `conn` reaches its peer now: directly, or through a relay's circuit
    /// ([`Event::PathChanged`] tells each move).
    pub fn path(&self, conn: ConnectionHandle) -> Option<Path> {
        Some(path_to(&self.ends, self.lookup(conn)?.remote))
    }

    /// Circuits open through this endpoint as a relay, and peers reserved at it.
    pub fn relay_load(&self) -> (usize, usize) {
        self.relay.as_ref().map_or((0, 0), |r| r.load())
    }

    /// Queues `frame` on `conn`, and gives the connection a turn to send it.
    fn relay_send(&mut self, conn: ConnectionHandle, frame: RelayFrame) -> Result<(), ApiError> {
        let out = self.conn(conn).and_then(|c| c.send_relay(frame));
        if out.is_ok() {
            self.touch(conn.index());
        }
        out
    }

    /// Acts on the relay frames the connection in `slot` received.
    pub(super) fn on_relay_frames(&mut self, slot: u32, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) else {
                return;
            };
            let Some(frame) = conn.take_relay() else {
                return;
            };
            let handle = conn.handle;
            self.on_relay_frame(now, handle, frame);
        }
    }

    fn on_relay_frame(&mut self, now: Instant, conn: ConnectionHandle, frame: RelayFrame) {
        // Answers to a frame that cannot be sent (the connection is closing) are dropped:
        // the peer is leaving anyway.
        match frame {
            RelayFrame::Reserve { request } => {
                let key = self.lookup(conn).and_then(Connection::peer_key);
                let code = match (self.relay.as_mut(), key) {
                    (Some(r), Some(key)) => r.reserve(conn, key).map_or_else(RelayRefusal::code, |()| 0),
                    _ => RelayRefusal::NotARelay.code(),
                };
                let _ = self.relay_send(conn, RelayFrame::Answer { request, code });
            }
            RelayFrame::Connect { request, peer } => {
                if let Err(why) = self.open_circuit(now, conn, request, PublicKey::from_bytes(peer)) {
                    let code = why.code();
                    let _ = self.relay_send(conn, RelayFrame::Answer { request, code });
                }
            }
            RelayFrame::Answer { request, code } => match self.ends.answered(conn, request) {
                Some(Pending::Reserve) if code == 0 => {
                    self.ends.reserved(conn);
                    self.events.push_back(Event::RelayReserved { conn });
                }
                Some(Pending::Reserve) => self.events.push_back(Event::RelayRefused {
                    conn,
                    reason: RelayRefusal::from_code(code),
                }),
                Some(Pending::Connect { inner }) => {
                    if let Ok(c) = self.conn(inner) {
                        c.circuit_refused(RelayRefusal::from_code(code));
                    }
                    self.touch(inner.index());
                }
                None => {}
            },
            RelayFrame::Circuit {
                request,
                circuit,
                peer,
            } => self.on_circuit(now, conn, request, circuit, peer),
            RelayFrame::Candidates { .. } | RelayFrame::PunchNow { .. } => {
                self.on_punch_frame(now, conn, frame)
            }
            RelayFrame::Closed { circuit, code } => {
                if let Some((other, id)) = self.relay.as_mut().and_then(|r| r.end_asked(conn, circuit)) {
                    let code = RelayRefusal::PeerGone.code();
                    let _ = self.relay_send(other, RelayFrame::Closed { circuit: id, code });
                }
                if self.ends.close(conn, circuit).is_some() {
                    self.circuit_gone(circuit, RelayRefusal::from_code(code));
                }
            }
        }
    }

    /// As a relay: `a` asks (request `request`) for a circuit to the peer holding `target`.
    fn open_circuit(
        &mut self,
        now: Instant,
        a: ConnectionHandle,
        request: u64,
        target: PublicKey,
    ) -> Result<(), RelayRefusal> {
        let relay = self.relay.as_ref().ok_or(RelayRefusal::NotARelay)?;
        if relay.opened(a, request) {
            // A copy of a request that opened a circuit (its acknowledgement was lost): the
            // circuit's RELAY_CIRCUIT frames are on their way already.
            return Ok(());
        }
        let b = relay.reservation(&target).ok_or(RelayRefusal::NoReservation)?;
        let a_conn = self.lookup(a).ok_or(RelayRefusal::PeerGone)?;
        let (a_addr, a_key) = (a_conn.remote, a_conn.peer_key().ok_or(RelayRefusal::NotARelay)?);
        let b_addr = self
            .lookup(b)
            .filter(|c| c.is_established())
            .ok_or(RelayRefusal::NoReservation)?
            .remote;
        let ids = [self.free_circuit_id(None), self.free_circuit_id(None)];
        let ids = if ids[0] == ids[1] {
            [ids[0], self.free_circuit_id(Some(ids[0]))]
        } else {
            ids
        };
        self.relay.as_mut().ok_or(RelayRefusal::NotARelay)?.open(
            now,
            (a, a_addr, request),
            (b, b_addr),
            ids,
        )?;
        let to_a = RelayFrame::Circuit {
            request,
            circuit: ids[0],
            peer: *target.as_bytes(),
        };
        let to_b = RelayFrame::Circuit {
            request: 0,
            circuit: ids[1],
            peer: *a_key.as_bytes(),
        };
        let _ = self.relay_send(a, to_a);
        let _ = self.relay_send(b, to_b);
        Ok(())
    }

    /// A random circuit id no leg of ours holds (nor `not`), starting with the configured
    /// prefix as connection ids do.
    pub(super) fn free_circuit_id(&mut self, not: Option<CircuitId>) -> CircuitId {
        loop {
            let mut id = [0u8; 8];
            self.entropy.fill(&mut id);
            self.stamp_prefix(&mut id);
            let id = CircuitId(id);
            if Some(id) != not && self.relay.as_ref().is_none_or(|r| r.is_free(id)) {
                return id;
            }
        }
    }

    /// As an end: the relay on `relay` opened circuit `id` to the peer `peer`, for our
    /// request `request` (or, 0, at the other end's).
    fn on_circuit(
        &mut self,
        now: Instant,
        relay: ConnectionHandle,
        request: u64,
        id: CircuitId,
        peer: [u8; 32],
    ) {
        let Some(relay_addr) = self.lookup(relay).map(|c| c.remote) else {
            return;
        };
        let end = End {
            relay,
            relay_addr,
            peer: PublicKey::from_bytes(peer),
        };
        let refuse = |ep: &mut Self, why: RelayRefusal| {
            let code = why.code();
            let _ = ep.relay_send(relay, RelayFrame::Closed { circuit: id, code });
        };
        if request == 0 {
            // Only a reservation makes us reachable: a circuit we did not make possible is
            // refused, and one already open (a copy) changes nothing. A relay opens circuits
            // only to reserved ends, so one that comes while our reservation is asked for
            // shows the grant whose RELAY_ANSWER is still on its way (lost, or overtaken):
            // kept (spec §12.2).
            if !self.ends.is_reserved(relay) && !self.ends.reserving(relay) {
                return refuse(self, RelayRefusal::NoReservation);
            }
            if self.ends.get(id).is_none() && !self.ends.open(id, end) {
                refuse(self, RelayRefusal::CircuitsFull);
            }
            return;
        }
        let Some(Pending::Connect { inner }) = self.ends.answered(relay, request) else {
            return;
        };
        if !self.ends.open(id, end) {
            refuse(self, RelayRefusal::CircuitsFull);
            if let Ok(c) = self.conn(inner) {
                c.circuit_refused(RelayRefusal::CircuitsFull);
            }
            return self.touch(inner.index());
        }
        if let Ok(c) = self.conn(inner) {
            c.circuit_open(now, circuit_addr(id));
        }
        self.touch(inner.index());
    }

    /// Circuit `id` ended: a connection still using it as its path ends with `why`; one
    /// that left it for a direct path loses its way back.
    fn circuit_gone(&mut self, id: CircuitId, why: RelayRefusal) {
        let addr = circuit_addr(id);
        let (mut on_it, mut left_it) = (Vec::new(), Vec::new());
        for c in self.conns.iter_mut().flatten() {
            if c.remote == addr {
                on_it.push(c.handle);
            } else if c.way_back_ended(addr) {
                // Its punch timer, if one was set, goes with the way back (its touch below
                // rebuilds its timers).
                left_it.push(c.handle);
            }
        }
        for h in on_it {
            if let Ok(c) = self.conn(h) {
                c.circuit_ended(why);
            }
            self.touch(h.index());
        }
        for h in left_it {
            self.touch(h.index());
        }
    }

    /// Connection `conn` ended: as a relay, its reservation and circuits go (their other
    /// ends are told); as an end, the circuits through it, and the connections that waited
    /// for one, end.
    pub(super) fn relay_conn_closed(&mut self, conn: ConnectionHandle) {
        self.punches.remove(&conn);
        if let Some(relay) = self.relay.as_mut() {
            for (other, id) in relay.conn_closed(conn) {
                let code = RelayRefusal::PeerGone.code();
                let _ = self.relay_send(other, RelayFrame::Closed { circuit: id, code });
            }
        }
        let (waiting, gone) = self.ends.relay_closed(conn);
        for inner in waiting {
            if let Ok(c) = self.conn(inner) {
                c.circuit_refused(RelayRefusal::PeerGone);
            }
            self.touch(inner.index());
        }
        for id in gone {
            self.circuit_gone(id, RelayRefusal::PeerGone);
        }
    }

    /// A relayed datagram (spec §12.3) on circuit `id` came from `from`: forwarded if the
    /// circuit is one we relay, handled from its circuit address if we are an end of it,
    /// else dropped.
    pub(super) fn on_relayed(
        &mut self,
        now: Instant,
        from: SocketAddr,
        id: CircuitId,
        mut datagram: BytesMut,
    ) {
        // `read_relay_header` found a header and more; anything shorter is not relayed.
        let Some(carried) = datagram.len().checked_sub(RELAY_HEADER_LEN).filter(|&n| n > 0) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if let Some(relay) = self.relay.as_mut() {
            match relay.forward(now, from, id, carried) {
                Forward::To { addr, id: out } => {
                    // In place: the header is rewritten for the outgoing leg's circuit (it fits:
                    // `carried` is past it).
                    if write_relay_header(&mut datagram, out).is_err() {
                        self.stats.dropped_malformed += 1;
                        return;
                    }
                    match self.forwards.push(id, addr, datagram) {
                        Pushed::Queued => self.stats.relay_forwarded += 1,
                        // This one queued in place of another circuit's, counted before
                        // as forwarded and now dropped.
                        Pushed::Displaced => self.stats.relay_dropped += 1,
                        Pushed::Dropped => self.stats.relay_dropped += 1,
                    }
                    return;
                }
                Forward::Closed { ends, reason } => {
                    self.stats.relay_dropped += 1;
                    for (conn, leg) in ends {
                        let code = reason.code();
                        let _ = self.relay_send(conn, RelayFrame::Closed { circuit: leg, code });
                    }
                    return;
                }
                Forward::WrongSource => {
                    self.stats.relay_dropped += 1;
                    return;
                }
                Forward::Unknown => {}
            }
        }
        match self.ends.get(id) {
            Some(end) if end.relay_addr == from => {
                let inner = datagram.split_off(RELAY_HEADER_LEN);
                self.on_datagram(now, circuit_addr(id), inner);
            }
            _ => self.stats.dropped_unknown_connection += 1,
        }
    }

    /// Where datagrams to `remote` go.
    fn route(&self, remote: SocketAddr) -> Route {
        match circuit_of(remote) {
            None => Route::Direct,
            Some(id) => match self.ends.get(id) {
                Some(end) => Route::Circuit {
                    relay: end.relay_addr,
                    id,
                },
                None => Route::Waiting,
            },
        }
    }

    /// The next datagram of the connection in `slot`, written into `buf`: a punch that is
    /// due (to a candidate address), or what the connection sends on its route (through a
    /// circuit: behind the relayed datagram's header). Where it goes, and its length.
    pub(super) fn poll_routed(
        &mut self,
        slot: u32,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let remote = self.conns.get(slot as usize)?.as_ref()?.remote;
        let route = self.route(remote);
        let conn = self.conns.get_mut(slot as usize)?.as_mut()?;
        if conn.punch_due(now) {
            let punch = conn.poll_punch(now, buf);
            // A punch went, or the plan was dropped: either moved the punch timer.
            conn.refresh_timers(&self.config);
            if punch.is_some() {
                return punch;
            }
        }
        match route {
            Route::Direct => conn
                .poll_transmit(now, &self.config, buf)
                .map(|len| (remote, len)),
            Route::Circuit { relay, id } => {
                let len = conn.poll_transmit(now, &self.config, buf.get_mut(RELAY_HEADER_LEN..)?)?;
                Some((relay, Self::wrap(buf, id, len)))
            }
            // Its circuit is not open: nothing leaves, and its timers run on.
            Route::Waiting => None,
        }
    }

    /// The stateless answer `s`, written into `buf` on its route.
    pub(super) fn write_routed(&self, s: Stateless, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        match self.route(s.to()) {
            Route::Direct => write_stateless(s, now, buf),
            Route::Circuit { relay, id } => {
                let t = write_stateless(s, now, buf.get_mut(RELAY_HEADER_LEN..)?)?;
                Some(Transmit {
                    destination: relay,
                    len: Self::wrap(buf, id, t.len),
                })
            }
            Route::Waiting => None,
        }
    }

    /// The next relayed datagram to forward, copied into `buf`.
    pub(super) fn next_forward(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some((destination, d)) = self.forwards.pop() {
            if let Some(out) = buf.get_mut(..d.len()) {
                out.copy_from_slice(&d);
                return Some(Transmit {
                    destination,
                    len: d.len(),
                });
            }
            self.stats.relay_dropped += 1;
        }
        None
    }

    /// Writes the header of a datagram on circuit `id` before the `len` bytes that follow
    /// it in `buf`.
    fn wrap(buf: &mut [u8], id: CircuitId, len: usize) -> usize {
        // Unreachable failure: the caller left the header's room.
        let _ = write_relay_header(buf, id);
        len + RELAY_HEADER_LEN
    }
}
