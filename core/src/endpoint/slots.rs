//! The endpoint's connection slots (spec/protocol.md §5, connection ids): a slot per live
//! connection, named by generation-tagged handles so a handle kept after its connection
//! ended never reaches the slot's next occupant; connection ids drawn and mapped to slots;
//! and the bookkeeping after every call that touches a connection (`touch`: its deadline
//! filed in the timer index, module `deadlines`; its budgets accounted; once it ended its slot freed,
//! or kept for what the application has not read: module `retained`).
//!
//! Inputs: handles from the application, connection ids from datagrams. Outputs: the
//! connection a handle or id names, or `ApiError::UnknownConnection`.

use super::*;

/// What a slot is marked with besides its connection.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Marks {
    /// It waits in the endpoint's `ready` queue for a turn to send.
    pub(super) queued: bool,
    /// Its connection is a server handshake still half-open (counted in `pending`).
    pub(super) half_open: bool,
}

impl Endpoint {
    /// How many connections the endpoint holds that have not ended (in any state before
    /// that: handshaking, established, closing). One that ended and is kept for what the
    /// application has not read is not counted ([`release`](Self::release)).
    pub fn connection_count(&self) -> usize {
        self.by_cid.len()
    }

    /// Whether `datagram` is for a connection or relay circuit this endpoint holds, by its
    /// destination connection id (a relayed datagram's: its circuit id, spec §12.3): for a
    /// driver that shares one address among several endpoints and must find the one a
    /// datagram is for (`Config::connection_id_prefix`). A HELLO, whose destination id is
    /// not chosen yet, is for none. Reads the header only and changes nothing.
    pub fn holds_destination(&self, datagram: &[u8]) -> bool {
        if let Some(id) = crate::wire::read_relay_header(datagram) {
            return self.ends.get(id).is_some() || self.relay.as_ref().is_some_and(|r| r.holds(id));
        }
        Invariant::parse(datagram)
            .is_ok_and(|i| i.dcid != ConnectionId::UNSET && self.by_cid.contains_key(&i.dcid))
    }

    /// The connections [`connection_count`](Self::connection_count) counts, in handle
    /// order: for tools that watch an endpoint they did not drive themselves, such as a
    /// trace's replay.
    pub fn connections(&self) -> impl Iterator<Item = ConnectionHandle> + '_ {
        self.conns
            .iter()
            .filter_map(|c| c.as_ref().filter(|c| !c.is_closed()).map(|c| c.handle))
    }

    /// A random connection id that no connection holds, starting with the configured
    /// prefix if there is one (`Config::connection_id_prefix`).
    pub(super) fn fresh_cid(&mut self) -> ConnectionId {
        loop {
            let mut id = ConnectionId::from_u64(self.entropy.next_u64());
            self.stamp_prefix(&mut id.0);
            if id != ConnectionId::UNSET && !self.by_cid.contains_key(&id) {
                return id;
            }
        }
    }

    /// Puts the configured prefix, if any, as the first byte of an id this endpoint chose
    /// (a connection id or a relay circuit id: `Config::connection_id_prefix`).
    pub(super) fn stamp_prefix(&self, id: &mut [u8; 8]) {
        if let Some(prefix) = self.config.connection_id_prefix {
            id[0] = prefix;
        }
    }

    /// A slot for a new connection, with its id and secret.
    pub(super) fn new_slot(&mut self) -> Slot {
        let cid = self.fresh_cid();
        self.new_slot_with(cid)
    }

    /// A slot for a new connection whose id is `cid` (from `fresh_cid`).
    pub(super) fn new_slot_with(&mut self, cid: ConnectionId) -> Slot {
        let skip_seed = self.entropy.next_u64();
        Slot {
            handle: self.alloc_slot(),
            cid,
            skip_seed,
            entropy: self.entropy.child(),
        }
    }

    /// A free slot, as the handle of its next connection (a new generation of a reused one).
    pub(super) fn alloc_slot(&mut self) -> ConnectionHandle {
        if let Some((slot, last)) = self.free.pop() {
            return ConnectionHandle::new(slot, last.wrapping_add(1));
        }
        self.conns.push(None);
        self.marks.push(Marks::default());
        self.shares.push(budgets::Shares::default());
        ConnectionHandle::new((self.conns.len() - 1) as u32, 0)
    }

    /// The connection `h` names: none if its slot is empty or holds a later connection.
    pub(super) fn conn(&mut self, h: ConnectionHandle) -> Result<&mut Connection, ApiError> {
        self.prefetch(h.index());
        self.conns
            .get_mut(h.slot())
            .and_then(Option::as_deref_mut)
            .filter(|c| c.handle == h)
            .ok_or(ApiError::UnknownConnection)
    }

    /// As [`conn`](Self::conn), to look at.
    pub(super) fn lookup(&self, h: ConnectionHandle) -> Option<&Connection> {
        self.conns.get(h.slot())?.as_deref().filter(|c| c.handle == h)
    }

    /// The handle of the connection in `slot`, if any.
    pub(super) fn handle_of(&self, slot: u32) -> Option<ConnectionHandle> {
        Some(self.conns.get(slot as usize)?.as_ref()?.handle)
    }

    /// After anything touched connection `slot`: rebuild its timers, collect its events,
    /// free it if closed, re-file its timer and offer it a turn to send.
    pub(super) fn touch(&mut self, slot: u32) {
        if let Some(conn) = self.conns[slot as usize].as_mut() {
            conn.refresh_timers(&self.config);
        }
        self.touch_fresh(slot);
    }

    /// As [`touch`](Self::touch), for a connection whose timers are as its state gives: the
    /// connection's own input rebuilt them (a datagram, a timer, a poll that sent), or the
    /// call could not move them (checked in debug and fuzzing builds). Every
    /// call of a round trip is one of these, and a rebuild is nine deadlines.
    pub(super) fn touch_fresh(&mut self, slot: u32) {
        self.refile_timer(slot);
        self.account_window(slot);
        self.account_send(slot);
        let Some(conn) = self.conns.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        if self.marks[slot as usize].half_open && (conn.is_closed() || !conn.is_half_open()) {
            self.marks[slot as usize].half_open = false;
            self.pending -= 1;
        }
        if conn.is_closed() {
            let handle = conn.handle;
            let untold = conn.holds_untold();
            if !self.retained.contains(handle) {
                self.retire(slot);
            }
            if untold && !self.retained.is_released(handle) {
                if let Some(oldest) = self.retained.keep(handle, self.config.max_connections) {
                    self.free_slot(oldest.index());
                }
            } else {
                self.free_slot(slot);
            }
            return;
        }
        if !self.marks[slot as usize].queued {
            self.marks[slot as usize].queued = true;
            self.ready.push_back(slot);
        }
    }

    /// A connection ended: datagrams, timers, pipes and admission let go of it (its slot
    /// may be reused, or kept for what the application has not read: module `retained`).
    fn retire(&mut self, slot: u32) {
        let Some(conn) = self.conns.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let handle = conn.handle;
        for (_, id) in self.pipes_of(handle) {
            if let Some(pipe) = self.pipes.get_mut(&id) {
                pipe.lose(handle);
                self.pipes_lost_conn = true;
            }
        }
        self.by_cid.remove(&conn.local_cid);
        if let Some(token) = conn.reset_token() {
            self.by_reset.remove(&token);
        }
        if let Some(key) = conn.hello_key {
            self.by_hello.remove(&key.digest);
            self.admission.release(key.from);
        }
        self.deadlines.set(slot, None);
    }

    /// Frees a retired connection's slot for the next one.
    fn free_slot(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.retained.forget(conn.handle);
        self.loan.forget(slot);
        // Datagrams it never got the keys for: dropped unopened after all.
        self.stats.dropped_unauthenticated += self.early.forget(conn.handle);
        // A freed slot has no timer. (One left filed stayed due for good: found by the
        // `circuit` fuzz target, fuzz/findings/circuit.released-connection-left-a-deadline.)
        self.deadlines.set(slot, None);
        // What it held of the receive budget is free again.
        self.windows_total -= core::mem::take(&mut self.shares[slot as usize].window);
        self.free.push((slot, conn.handle.generation()));
    }

    /// Collects a connection's events and re-files its timer (without offering it a turn).
    pub(super) fn refile_timer(&mut self, slot: u32) {
        let Some(conn) = self.conns[slot as usize].as_mut() else {
            return;
        };
        // Most calls change nothing here (a poll that sent nothing, a message read, most
        // datagrams of a transfer): no event, no failed punch, the table not rebuilt since
        // it was filed. Those stop here, before the events' loop, the table's earliest
        // deadline and the index's lookup (two-thirds of a round trip's refiles, 99% of a
        // transfer's).
        if conn.timers_filed() && conn.has_no_events() && !conn.has_failed_punch() {
            self.loan.reclaim(slot, conn.events_mut());
            #[cfg(any(debug_assertions, feature = "fuzzing"))]
            {
                assert_fresh(conn, &self.config);
                assert_eq!(
                    conn.next_timeout().map(|(at, _)| at),
                    self.deadlines.get(slot),
                    "{:?}'s deadline marked filed, but not",
                    conn.handle
                );
            }
            return;
        }
        let (mut ended, mut connected, mut heard) = (None, None, false);
        while let Some(e) = conn.take_event() {
            // One match, each event moved once into the endpoint's queue: a datagram's
            // stream events are most of them, and passed on as they are.
            let e = match e {
                Event::Closed {
                    conn: h,
                    reason: ref why,
                    ..
                } => {
                    ended = Some(h);
                    if matches!(why, CloseReason::ProtocolViolation { .. }) {
                        self.stats.violations += 1;
                        let ip = conn.hello_key.map_or(conn.remote.ip(), |k| k.from);
                        self.admission.violation(&self.config, conn.clock(), ip);
                    }
                    e
                }
                Event::Connected { conn: h, .. } => {
                    connected = Some(h);
                    e
                }
                Event::AddressObserved { address, .. } => {
                    // A peer reached through a relay's circuit sees us at a circuit address,
                    // which says nothing of our public one (and a circuit address is never
                    // one): neither kept nor told.
                    let circuit = |a| crate::relay::circuit_of(a).is_some();
                    if circuit(conn.remote) || circuit(address) {
                        continue;
                    }
                    self.reflexive.heard(conn.remote, address);
                    heard = true;
                    e
                }
                // The connection names its new peer address; the path through it is the
                // endpoint's to say (a circuit address stands for a relay's circuit).
                Event::PathChanged { conn: h, .. } => Event::PathChanged {
                    conn: h,
                    path: relaying::path_to(&self.ends, conn.remote),
                },
                e => e,
            };
            self.events.push_back(e);
        }
        self.loan.reclaim(slot, conn.events_mut());
        #[cfg(any(debug_assertions, feature = "fuzzing"))]
        assert_fresh(conn, &self.config);
        let next = conn.next_timeout().map(|(at, _)| at);
        let punch_failed = conn.take_failed_punch().then_some(conn.handle);
        if next != self.deadlines.get(slot) {
            // (Unchanged for most packets of a transfer: the index is left alone.)
            self.deadlines.set(slot, next);
        }
        conn.mark_timers_filed();
        // Last, once this connection's timer is filed: these may touch it again.
        if let Some(h) = ended {
            // Relays and circuits that ran on it end with it.
            self.relay_conn_closed(h);
        }
        if let Some(h) = connected {
            // A connection through a relay tries for a direct path (spec §12.5).
            self.start_punch(h);
        }
        if let Some(h) = punch_failed {
            self.retry_punch(h);
        }
        if heard {
            self.address_heard();
        }
    }

    /// Calls `f` on connection `h`, then [`touch`](Self::touch)es it.
    pub(super) fn with_conn<T>(
        &mut self,
        h: ConnectionHandle,
        f: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.with_conn_then(h, f, Self::touch)
    }

    /// Calls `f` on connection `h`, then `touch`es it with [`touch`](Self::touch), or with
    /// [`touch_fresh`](Self::touch_fresh) for a call that cannot move its timers: a stream
    /// opened, written, finished or read, a message sent or taken. The timers read the
    /// connection's acknowledgement, loss, pacing, liveness and handshake state, which no
    /// stream call changes (what it queues to send is the ready queue's); debug and fuzzing
    /// builds check each such call (`refile_timer`).
    pub(super) fn with_conn_then<T>(
        &mut self,
        h: ConnectionHandle,
        f: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
        touch: fn(&mut Self, u32),
    ) -> Result<T, ApiError> {
        let out = f(self.conn(h)?);
        touch(self, h.index());
        self.pump_if_lost();
        out
    }
}

/// Every call rebuilds what it moved (`touch`, `touch_fresh`). A stale table is a bug here,
/// not an input: only debug builds and the fuzzing build check (as the lifecycle's
/// undeclared steps are checked), so the suites and every fuzz campaign find a call that
/// skipped a rebuild it needed; a normal build files what it has.
#[cfg(any(debug_assertions, feature = "fuzzing"))]
fn assert_fresh(conn: &Connection, config: &Config) {
    assert_eq!(
        *conn.timers(),
        conn.wanted_timers(config),
        "{:?}'s timers filed stale",
        conn.handle
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_kept_after_its_connection_ended_never_reaches_the_slot_s_next_occupant() {
        let mut ep = Endpoint::new(Config::default(), 1);
        let now = Instant::ZERO;
        let to = SocketAddr::new([10, 0, 0, 9].into(), 1);
        let first = ep.connect(now, to).unwrap();
        // Closed before its handshake ended: gone at once, its slot free for the next.
        ep.close(now, first, 0, Reason::default()).unwrap();
        assert_eq!(ep.connection_count(), 0);
        let second = ep.connect(now, to).unwrap();
        assert_eq!(second.slot(), first.slot());
        assert_ne!(second, first);
        assert_eq!(
            ep.open_stream(first, StreamHeader::default()),
            Err(ApiError::UnknownConnection)
        );
        assert_eq!(ep.remote_address(first), None);
        assert_eq!(ep.remote_address(second), Some(to));
        assert_eq!(ep.connections().collect::<Vec<_>>(), [second]);
    }

    /// A poll that sends nothing may still satisfy a connection's ACK timer: the ACK it
    /// built is not written when its delay cannot be encoded (a clock jumped by centuries,
    /// as a replayed trace's may). The deadline filed follows: before, the skipped rebuild
    /// left the ACK's deadline filed (the debug check caught it:
    /// fuzz/corpus/trace_inputs/crash-quiet-poll-cleared-the-ack-timer).
    #[test]
    fn a_poll_that_sends_nothing_but_satisfies_the_ack_timer_files_it_gone() {
        let (mut net, c) = super::super::harness::Net::connected();
        let client = net.addrs[0];
        net.eps[0]
            .send_message(c, None, Bytes::from_static(b"hi"))
            .unwrap();
        let message = next_datagram(&mut net.eps[0], net.now);
        net.eps[1].handle_datagram(net.now, client, message);
        let owed = net.eps[1].next_timer();
        assert!(matches!(owed, Some((_, _, Timer::Ack))), "{owed:?}");
        // Past 2^62 microseconds of delay: no ACK can say it.
        let later = Instant::from_micros(5_000_000_000_000_000_000);
        let mut buf = [0u8; 1500];
        assert_eq!(net.eps[1].poll_transmit(later, &mut buf), None);
        let next = net.eps[1].next_timer();
        assert!(!matches!(next, Some((_, _, Timer::Ack))), "{next:?}");
    }

    /// The next datagram `ep` sends, as bytes.
    fn next_datagram(ep: &mut Endpoint, now: Instant) -> BytesMut {
        let mut buf = [0u8; 1500];
        let t = ep.poll_transmit(now, &mut buf).expect("a datagram to send");
        BytesMut::from(&buf[..t.len])
    }

    #[test]
    fn ids_start_with_the_configured_prefix_and_name_their_endpoint() {
        let with = |prefix| Config {
            connection_id_prefix: Some(prefix),
            relay: Some(crate::RelayConfig::default()),
            ..Config::default()
        };
        let mut net = super::harness::Net::new(alloc::vec![with(3), with(7)]);
        let (now, server) = (net.now, net.addrs[1]);
        let (client_addr, (c, s)) = (net.addrs[0], (0, 1));
        net.eps[c].connect(now, server).unwrap();
        // A HELLO names no connection yet: it is for whichever endpoint received it.
        let hello = next_datagram(&mut net.eps[c], now);
        assert_eq!(hello[3..11], [0; 8]);
        assert!(!net.eps[s].holds_destination(&hello));
        net.eps[s].handle_datagram(now, client_addr, hello);
        // The answer goes to the client's id, which starts with the client's prefix.
        let answer = next_datagram(&mut net.eps[s], now);
        assert_eq!(answer[3], 3);
        assert!(net.eps[c].holds_destination(&answer));
        assert!(!net.eps[s].holds_destination(&answer));
        net.eps[c].handle_datagram(now, server, answer);
        net.run_until(Instant::from_micros(100_000));
        let conn = net.eps[c].connections().next().unwrap();
        net.eps[c]
            .send_message(conn, None, Bytes::from_static(b"hi"))
            .unwrap();
        let data = next_datagram(&mut net.eps[c], net.now);
        assert_eq!(data[3], 7);
        assert!(net.eps[s].holds_destination(&data));
        assert!(!net.eps[c].holds_destination(&data));
        // So do the relay's circuit ids; a relayed datagram on a circuit no leg holds is
        // for no one.
        let id = net.eps[s].free_circuit_id(None);
        assert_eq!(id.0[0], 7);
        let mut relayed = [0u8; 20];
        crate::wire::write_relay_header(&mut relayed, id).unwrap();
        assert!(!net.eps[s].holds_destination(&relayed));
        // Ids drawn without a prefix take the same draws: a config without one is unchanged.
        let mut plain = Endpoint::new(Config::default(), 9);
        let mut prefixed = Endpoint::new(with(200), 9);
        let (a, b) = (plain.fresh_cid(), prefixed.fresh_cid());
        assert_eq!((b.0[0], &b.0[1..]), (200, &a.0[1..]));
    }
}
