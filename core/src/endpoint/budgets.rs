//! The endpoint-wide memory budgets (spec/protocol.md §10.3): receive windows shared out of
//! `Config::receive_buffer_total` with a floor kept for connections still to come, and send
//! buffers within `Config::send_buffer_total`, each connection always allowed a floor.
//!
//! Inputs: what each connection reserves and holds, after every call that touches it.
//! Outputs: the room a write may take, the window a new connection starts with, whether a
//! new connection fits at all; `Writable` for a connection the budget held back, once it
//! has room.

use super::*;

/// The smallest receive window a new connection starts with when
/// `Config::receive_buffer_total` is nearly spoken for: below it, the connection is refused
/// (the spec's default initial credit, §4.14).
pub(super) const MIN_RECEIVE_WINDOW: u64 = 64 << 10;

/// What each connection may hold in its send buffer whatever `Config::send_buffer_total`
/// has left (if `send_buffer` is not smaller): a connection is never starved by others.
pub(super) const SEND_FLOOR: u64 = 64 << 10;

/// One connection's shares of the endpoint's budgets, as of its last touch.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Shares {
    /// Of `Config::receive_buffer_total`: its receive windows' reservation
    /// (`Connection::budget_reserved`), or, once it ended, its unread bytes.
    pub(super) window: u64,
    /// Of `Config::send_buffer_total`: what its send buffer holds.
    pub(super) send: u64,
}

/// Whether a message of `len` bytes can go whole on `c` now, with `room` left in the
/// endpoint's send budget of which one connection can hold at most `most`.
pub(super) fn message_fits(c: &mut Connection, len: u64, room: u64, most: u64) -> Result<(), ApiError> {
    c.message_room(len)?;
    if len > most {
        return Err(ApiError::MessageTooLong);
    }
    if len > room {
        return Err(ApiError::WouldBlock);
    }
    Ok(())
}

impl Endpoint {
    /// Keeps the sum of receive budgets under `Config::receive_buffer_total` (spec §10.3):
    /// re-counts `slot`'s (nothing once closed) and lets its window and its count of the
    /// peer's streams grow into what is left if they wanted to (each byte of window takes
    /// two of the budget, each stream 2 KiB).
    pub(super) fn account_window(&mut self, slot: u32) {
        let i = slot as usize;
        self.windows_total -= self.shares[i].window;
        self.shares[i].window = 0;
        let Some(conn) = self.conns[i].as_ref() else {
            return;
        };
        if conn.is_closed() {
            // Ended, and kept for what the application has not read (module `retained`):
            // its unread bytes still hold memory, so they still count.
            self.shares[i].window = conn.buffered().0;
            self.windows_total += self.shares[i].window;
            return;
        }
        // What the others hold and what is kept for newcomers, worked out before borrowing
        // this one, and only for a connection that wants more (a division, which every
        // touch of a round trip paid before).
        let others = (conn.window_starved() || conn.streams_starved())
            .then(|| self.windows_total + self.floors_for_newcomers(0));
        let (budget, most) = (
            self.config.receive_buffer_total,
            self.config.max_concurrent_streams,
        );
        let Some(conn) = self.conns[i].as_mut() else {
            return;
        };
        if let Some(others) = others {
            if conn.window_starved() {
                let used = others + conn.budget_reserved();
                conn.grant_window_room(budget.saturating_sub(used) / 2);
            }
            if conn.streams_starved() {
                let used = others + conn.budget_reserved();
                conn.grant_stream_room(budget.saturating_sub(used) / held::STREAM_COST, most);
            }
        }
        self.shares[i].window = conn.budget_reserved();
        self.windows_total += self.shares[i].window;
    }

    /// Updates what `slot`'s send buffer holds of `Config::send_buffer_total`, and tells
    /// the connections the budget refused once it has room for them: one whose own bytes
    /// left enough of its floor, or all once the total fell to three quarters.
    pub(super) fn account_send(&mut self, slot: u32) {
        let i = slot as usize;
        let held = match self.conns[i].as_ref().filter(|c| !c.is_closed()) {
            // The counter, not `buffered()`, which walks the streams: this runs every touch.
            Some(c) => c.send_buffered(),
            None => {
                // Its handle may be reused: it waits for nothing any more.
                self.send_waiters.remove(&slot);
                0
            }
        };
        let before = self.sends_total;
        self.sends_total = self.sends_total - self.shares[i].send + held;
        self.shares[i].send = held;
        if self.send_waiters.is_empty() || self.sends_total >= before {
            return;
        }
        let woken: Vec<u32> = if self.sends_total <= self.config.send_buffer_total / 4 * 3 {
            core::mem::take(&mut self.send_waiters).into_iter().collect()
        } else if self.send_waiters.contains(&slot) && self.send_room(slot) >= self.send_floor() / 4 {
            self.send_waiters.remove(&slot);
            alloc::vec![slot]
        } else {
            return;
        };
        for w in woken {
            if let Some(c) = self.conns[w as usize].as_ref().filter(|c| !c.is_closed()) {
                self.events.push_back(Event::Writable { conn: c.handle });
            }
        }
    }

    /// Bytes `slot` may add to its send buffer as far as `Config::send_buffer_total` goes:
    /// what is left of the budget, or of its floor if more.
    pub(super) fn send_room(&self, slot: u32) -> u64 {
        let held = self.shares.get(slot as usize).map_or(0, |h| h.send);
        let floor = self.send_floor().saturating_sub(held);
        let shared = self.config.send_buffer_total.saturating_sub(self.sends_total);
        floor.max(shared)
    }

    /// What a connection may always hold, whatever the others hold.
    pub(super) fn send_floor(&self) -> u64 {
        SEND_FLOOR.min(self.config.send_buffer)
    }

    /// The most one connection's send buffer can ever hold under `Config::send_buffer_total`.
    pub(super) fn most_buffered(&self) -> u64 {
        self.config.send_buffer_total.max(self.send_floor())
    }

    /// Runs a write on `h` within `Config::send_buffer_total`: `f` gets the room the budget
    /// leaves; if it answers `WouldBlock` and the budget was short, `Writable` follows when
    /// the budget has room.
    pub(super) fn budgeted_write<T>(
        &mut self,
        h: ConnectionHandle,
        wanted: u64,
        f: impl FnOnce(&mut Connection, u64) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let room = self.send_room(h.index());
        let out = self.with_conn_then(h, |c| f(c, room), Self::touch_fresh);
        if matches!(out, Err(ApiError::WouldBlock)) && room < wanted {
            self.send_waiters.insert(h.index());
        }
        out
    }

    /// What `Config::receive_buffer_total` keeps back for connections still to come, less
    /// `joining`: a floor each (`budget_floor`), up to `max_connections` (or as many as the
    /// total holds), so windows grown early never leave a later connection nothing.
    pub(super) fn floors_for_newcomers(&self, joining: usize) -> u64 {
        let floor = self.budget_floor();
        let fit = usize::try_from(self.config.receive_buffer_total / floor).unwrap_or(usize::MAX);
        let slots = self.config.max_connections.min(fit);
        let still = slots.saturating_sub(self.by_cid.len() + joining);
        (still as u64).saturating_mul(floor)
    }

    /// The smallest receive window a connection starts with.
    pub(super) fn window_floor(&self) -> u64 {
        MIN_RECEIVE_WINDOW.min(self.config.receive_window)
    }

    /// The configuration a new connection starts with: the configured one if its receive
    /// budget fits in what is left of `Config::receive_buffer_total` (less the floors kept
    /// for later connections); else a squeezed one, with at most
    /// [`held::SQUEEZED_STREAMS`] streams and the window what is left pays for; `None` if
    /// that is under [`MIN_RECEIVE_WINDOW`].
    pub(super) fn connection_config(&self) -> Option<Config> {
        let used = self.windows_total + self.floors_for_newcomers(1);
        let left = self.config.receive_buffer_total.saturating_sub(used);
        let mut config = self.config.clone();
        if held::budget(config.receive_window, config.concurrent_streams_at_start()) <= left {
            return Some(config);
        }
        config.max_concurrent_streams = config.max_concurrent_streams.min(held::SQUEEZED_STREAMS);
        let for_window = left.saturating_sub(held::budget(0, config.concurrent_streams_at_start()));
        config.receive_window = config.receive_window.min(for_window / 2);
        (config.receive_window >= self.window_floor()).then_some(config)
    }

    /// The budget kept back for each connection still to come: a squeezed one's, at the
    /// smallest window.
    pub(super) fn budget_floor(&self) -> u64 {
        let streams = self
            .config
            .concurrent_streams_at_start()
            .min(held::SQUEEZED_STREAMS);
        held::budget(self.window_floor(), streams)
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::Net;
    use super::*;
    use alloc::vec;

    /// `Config::send_buffer_total` is shared, but never below a floor per connection: one
    /// connection filling the total leaves the next its floor.
    #[test]
    fn a_connection_may_always_fill_its_floor_whatever_the_others_hold() {
        let client = Config {
            send_buffer_total: SEND_FLOOR,
            ..Config::default()
        };
        let mut net = Net::new(vec![client, Config::default(), Config::default()]);
        let a = net.eps[0].connect(net.now, net.addrs[1]).unwrap();
        let b = net.eps[0].connect(net.now, net.addrs[2]).unwrap();
        net.run_until(Instant::ZERO + Duration::from_secs(1));
        let ep = &mut net.eps[0];
        assert!(ep.is_established(a) && ep.is_established(b));
        let floor = Bytes::from(vec![7u8; SEND_FLOOR as usize]);
        // Nothing is sent between the calls, so what a message holds stays held.
        assert!(ep.send_message(a, None, floor.clone()).is_ok());
        assert_eq!(
            ep.send_message(a, None, Bytes::from_static(b"more")),
            Err(ApiError::WouldBlock)
        );
        assert!(ep.send_message(b, None, floor).is_ok());
    }

    /// A piece the application leaves unread is copied by the connection's trim once the
    /// peer goes quiet, though no stream frame comes to sweep it (spec §10.3, "Age"): a
    /// slice would keep its receive buffer alive as long as the peer stays quiet.
    #[test]
    fn a_quiet_connection_copies_what_its_application_left_unread() {
        let (mut net, c) = Net::connected();
        let s = net.eps[1].connections().next().unwrap();
        let id = net.eps[0].open_stream(c, crate::StreamHeader::default()).unwrap();
        net.eps[0].write(c, id, Bytes::from(vec![5u8; 1000])).unwrap();
        net.run_until(net.now + Duration::from_millis(1));
        let held = |net: &Net| net.eps[1].lookup(s).unwrap().peer_slices();
        assert_eq!(held(&net), 1, "held as it came");
        // Quiet a second each way, but for the acknowledgements: the trim is due.
        net.run_until(net.now + Duration::from_secs(2));
        assert_eq!(held(&net), 0, "copied");
        let read = net.eps[1].read(s, id, usize::MAX).unwrap();
        assert!(matches!(read, crate::Read::Data { bytes, .. } if bytes == vec![5u8; 1000]));
    }
}
