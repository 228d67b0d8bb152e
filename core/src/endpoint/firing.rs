//! When the endpoint's timers fire (spec/protocol.md §8 says what each connection's timers
//! are): the earliest deadline a driver must wake for, and every connection whose deadline
//! came, run in (deadline, slot) order.
//!
//! Inputs: the time. Outputs: each due connection's timers run (module
//! `connection::timeouts`), its deadline filed again (module `slots`), the send rate's
//! held-back datagram let go; the next deadline. The list of the slots due is kept from one
//! firing to the next (`Endpoint::due`, within [`DUE_KEPT`]): made at each firing, it was two
//! allocations or more of every timer that fired (tests/tests/allocations.rs).

use super::*;

/// The room kept for the deadlines due at one firing (4 KiB): a firing seldom finds more
/// due; one that found many (every connection's after a pause) lets the excess go.
const DUE_KEPT: usize = 256;

impl Endpoint {
    /// Fires every timer due at `now`. Calling it early, or twice, does nothing. Once it
    /// returned and [`poll_transmit`](Self::poll_transmit) gave `None`,
    /// [`poll_timeout`](Self::poll_timeout) is later than `now` (or `None`): a deadline left
    /// at or before `now` would have a driver call again at once, for ever. The fuzz
    /// targets that drive whole endpoints check this after every firing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.trace.as_mut() {
            t.expire(now);
        }
        self.on_timeout(now);
        self.trace_deadline();
    }

    fn on_timeout(&mut self, now: Instant) {
        // A held-back datagram may go now: the next poll_transmit sends it.
        if self.rate_wake.is_some_and(|at| at <= now) {
            self.rate_wake = None;
        }
        // The list is set aside while the connections run (each refiles its deadline), and
        // kept for the next firing with its room, within `DUE_KEPT`.
        let mut due = core::mem::take(&mut self.due);
        self.deadlines.due(now, &mut due);
        for &(_, slot) in &due {
            self.prefetch(slot);
            if let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) {
                self.loan.lend(slot, conn.events_mut());
                conn.handle_timeout(now, &self.config);
            }
            self.touch_fresh(slot);
            // A trim is a timer's: the queue is the connection's own again.
            if let Some(conn) = self.conns.get_mut(slot as usize).and_then(Option::as_mut) {
                conn.trim_own_events();
            }
        }
        due.clear();
        due.shrink_to(DUE_KEPT);
        self.due = due;
        self.pump_pipes(None);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next needed: a connection's timer,
    /// or, while the endpoint's send rate holds datagrams back, the moment it lets the next
    /// one go (timers due before then wait for it: what they would send could not leave
    /// sooner, and a deadline in the past would have the driver spin).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rate_wake
            .or_else(|| self.deadlines.first().map(|(at, _)| at))
    }

    /// The next deadline with the connection and timer that set it (for debugging).
    pub fn next_timer(&self) -> Option<(Instant, ConnectionHandle, Timer)> {
        let (at, slot) = self.deadlines.first()?;
        let conn = self.conns.get(slot as usize)?.as_ref()?;
        let (_, timer) = conn.next_timeout()?;
        Some((at, conn.handle, timer))
    }
}
