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

    /// Shows [`Config::prefetch`](crate::Config::prefetch) the memory of the connection in
    /// `slot`, which an input is about to reach (module `connection::prefetch`), unless the
    /// last input reached it too: then its memory is in the caches still (showing it again,
    /// a build without this check counted 1,720 more instructions a one-connection round
    /// trip, 4.4%, for nothing). A slot freed and taken by a new connection may be skipped
    /// once: a hint missed, nothing else. (The check inlined, the rest not: it is on every
    /// command's path.)
    #[inline]
    pub(super) fn prefetch(&mut self, slot: u32) {
        if self.prefetched != slot && self.config.prefetch.is_some() {
            self.prefetch_other(slot);
        }
    }

    #[inline(never)]
    fn prefetch_other(&mut self, slot: u32) {
        self.prefetched = slot;
        let Some(hook) = self.config.prefetch else {
            return;
        };
        #[cfg(test)]
        let shown = &mut self.shown;
        let show = &mut |start: *const u8, len: usize| {
            hook(start, len);
            #[cfg(test)]
            shown.push((start as usize, len));
        };
        // The endpoint's own lines of the slot first: their addresses need no load.
        if let Some(m) = self.marks.get(slot as usize) {
            show((m as *const Marks).cast(), core::mem::size_of::<Marks>());
        }
        self.deadlines.prefetch(slot, show);
        if let Some(Some(c)) = self.conns.get(slot as usize) {
            c.prefetch(show);
        }
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
        // Every call rebuilds what it moved (`touch`, `touch_fresh`). A stale table is a bug
        // here, not an input: only debug builds and the fuzzing build check (as the
        // lifecycle's undeclared steps are checked), so the suites and every fuzz campaign
        // find a call that skipped a rebuild it needed; a normal build files what it has.
        #[cfg(any(debug_assertions, feature = "fuzzing"))]
        assert_eq!(
            *conn.timers(),
            conn.wanted_timers(&self.config),
            "{:?}'s timers filed stale",
            conn.handle
        );
        let next = conn.next_timeout().map(|(at, _)| at);
        let punch_failed = conn.take_failed_punch().then_some(conn.handle);
        if next != self.deadlines.get(slot) {
            // (Unchanged for most packets of a transfer: the index is left alone.)
            self.deadlines.set(slot, next);
        }
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
    /// [`touch_fresh`](Self::touch_fresh) for a call that cannot move its timers (a message
    /// written or read).
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

    /// A prefetch hook that does nothing: what it was shown is in the endpoint's test-only
    /// log (`shown`).
    fn ignore(_: *const u8, _: usize) {}

    /// What `ep`'s prefetch hook was shown since the last call: each range's start and
    /// length.
    fn shown(ep: &mut Endpoint) -> Vec<(usize, usize)> {
        core::mem::take(&mut ep.shown)
    }

    /// Where `h`'s connection is in `ep`'s memory: the first range a prefetch shows.
    fn connection_at(ep: &Endpoint, h: ConnectionHandle) -> (usize, usize) {
        let c = ep.lookup(h).expect("the connection is open");
        (
            c as *const Connection as usize,
            core::mem::size_of::<Connection>(),
        )
    }

    /// Checks `ranges` are what a prefetch of `h`'s connection in `ep` shows: the endpoint's
    /// two entries for its slot (its marks, where its deadline is filed), then the
    /// connection's own memory, then at least `more` other allocations; none empty, no two
    /// overlapping.
    fn assert_shows(ranges: &[(usize, usize)], ep: &Endpoint, h: ConnectionHandle, more: usize) {
        assert!(ranges.len() >= 3 + more, "{ranges:x?}");
        assert_eq!(ranges[2], connection_at(ep, h));
        let mut sorted = ranges.to_vec();
        sorted.sort_unstable();
        for w in sorted.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping: {ranges:x?}");
        }
        assert!(ranges.iter().all(|&(_, len)| len > 0), "{ranges:x?}");
    }

    /// A command, a datagram and a timer each show `Config::prefetch` the memory of the
    /// connection they reach, before they reach it: the endpoint's entries for its slot, the
    /// connection, its congestion controller, its protection and its two expanded keys, and
    /// what else it holds (at least four allocations beside the connection), two fewer once
    /// a trim let the keys go; and the next input that reaches the same connection shows
    /// nothing again.
    #[test]
    fn each_input_shows_the_prefetch_hook_its_connection_once() {
        use super::super::harness::Net;
        let config = Config {
            prefetch: Some(ignore),
            ..Config::default()
        };
        let mut net = Net::new(alloc::vec![config.clone(), config]);
        let server = net.addrs[1];
        let a = net.eps[0].connect(net.now, server).unwrap();
        let b = net.eps[0].connect(net.now, server).unwrap();
        net.run_until(Instant::from_micros(100_000));
        shown(&mut net.eps[0]);

        // Commands: one connection, again, then the other.
        let hi = Bytes::from_static(b"hi");
        net.eps[0].send_message(a, None, hi.clone()).unwrap();
        let first = shown(&mut net.eps[0]);
        assert_shows(&first, &net.eps[0], a, 4);
        net.eps[0].send_message(a, None, hi.clone()).unwrap();
        assert_eq!(shown(&mut net.eps[0]), []);
        net.eps[0].send_message(b, None, hi.clone()).unwrap();
        assert_shows(&shown(&mut net.eps[0]), &net.eps[0], b, 4);

        // Datagrams: the server's connections, each shown as a packet of it arrives.
        let client = net.addrs[0];
        let mut datagrams = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = net.eps[0].poll_transmit(net.now, &mut buf) {
            datagrams.push(BytesMut::from(&buf[..t.len]));
        }
        assert_eq!(
            shown(&mut net.eps[0]),
            [],
            "sending reaches the connection the command did"
        );
        shown(&mut net.eps[1]);
        for d in datagrams {
            net.eps[1].handle_datagram(net.now, client, d);
        }
        let served: Vec<_> = net.eps[1].connections().collect();
        assert_eq!(served.len(), 2);
        let starts: Vec<_> = shown(&mut net.eps[1]).iter().map(|r| r.0).collect();
        for h in served {
            assert!(starts.contains(&connection_at(&net.eps[1], h).0), "{starts:x?}");
        }

        // A timer: the one due next, after another connection's input.
        net.run_until(net.now + Duration::from_millis(1));
        net.eps[0].send_message(a, None, hi.clone()).unwrap();
        net.run_until(net.now + Duration::from_millis(1));
        let (at, due, _) = net.eps[0].next_timer().unwrap();
        net.eps[0].prefetched = u32::MAX;
        shown(&mut net.eps[0]);
        net.eps[0].handle_timeout(at);
        let ranges = shown(&mut net.eps[0]);
        assert!(
            ranges.get(2) == Some(&connection_at(&net.eps[0], due)),
            "{ranges:x?}"
        );

        // Quiet until both trim: the keys let go are not shown.
        net.run_until(net.now + Duration::from_secs(5));
        net.eps[0].prefetched = u32::MAX;
        shown(&mut net.eps[0]);
        net.eps[0].send_message(a, None, hi).unwrap();
        let trimmed = shown(&mut net.eps[0]);
        assert_shows(&trimmed, &net.eps[0], a, 2);
        assert!(
            trimmed.len() + 2 <= first.len(),
            "{trimmed:x?} against {first:x?}"
        );
    }

    /// The hook changes no output: two runs alike but for it send the same bytes.
    #[test]
    fn the_prefetch_hook_changes_no_datagram() {
        let run = |prefetch| {
            let config = Config {
                prefetch,
                ..Config::default()
            };
            let (mut a, mut b) = (Endpoint::new(config.clone(), 1), Endpoint::new(config, 2));
            let (to_a, to_b) = (
                SocketAddr::new([10, 0, 0, 1].into(), 1),
                SocketAddr::new([10, 0, 0, 2].into(), 1),
            );
            let mut now = Instant::ZERO;
            let c = a.connect(now, to_b).unwrap();
            let mut sent = Vec::new();
            let mut buf = [0u8; 1500];
            for round in 0..40u64 {
                if round % 4 == 3 {
                    // Ignored until the handshake ends.
                    let _ = a.send_message(c, None, Bytes::from(alloc::vec![round as u8; 3000]));
                }
                while let Some(t) = a.poll_transmit(now, &mut buf) {
                    sent.push(buf[..t.len].to_vec());
                    b.handle_datagram(now, to_a, BytesMut::from(&buf[..t.len]));
                }
                while let Some(t) = b.poll_transmit(now, &mut buf) {
                    sent.push(buf[..t.len].to_vec());
                    a.handle_datagram(now, to_b, BytesMut::from(&buf[..t.len]));
                }
                while b.poll_event().is_some() || a.poll_event().is_some() {}
                now += Duration::from_millis(7);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            assert_eq!(shown(&mut a).is_empty(), prefetch.is_none());
            sent
        };
        let with = run(Some(ignore));
        assert!(with.len() > 20, "{} datagrams", with.len());
        assert_eq!(with, run(None));
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
