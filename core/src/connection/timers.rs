//! A connection's timers (spec §8): which deadlines it has, as a table indexed by [`Timer`].
//!
//! Input: the deadline of each timer, rebuilt from the connection's state after every
//! change (`Connection::refresh_timers`). Output: the earliest deadline, for the endpoint's
//! timer index, and whether a timer is due; due timers fire in a fixed order
//! ([`Timer::ALL`]), so that the same inputs fire them in the same order.

use crate::time::Instant;

/// The timers of a connection, indexing its timer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// Client: resend HELLO or give up; server: give up on an unconfirmed handshake.
    Handshake,
    /// Send an ACK that was delayed.
    Ack,
    /// Loss detection by time threshold, or the probe timeout.
    Recovery,
    /// Send a PING to keep an idle connection alive.
    KeepAlive,
    /// Nothing heard for the idle timeout: the connection is dead.
    Idle,
    /// End of the closing or draining period.
    Close,
    /// The pacer allows the next datagrams, a quantum of them (spec §8.6): the driver wakes
    /// to send them.
    Pacing,
    /// The next hole punch datagram is due (spec §12.5).
    Punch,
    /// The connection has been quiet long enough to let go of its idle memory (spec §8,
    /// Liveness).
    Trim,
}

impl Timer {
    const COUNT: usize = 9;
    /// Every timer, in the order due timers fire.
    pub(crate) const ALL: [Timer; Timer::COUNT] = [
        Timer::Handshake,
        Timer::Ack,
        Timer::Recovery,
        Timer::KeepAlive,
        Timer::Idle,
        Timer::Close,
        Timer::Pacing,
        Timer::Punch,
        Timer::Trim,
    ];
}

/// Each timer's deadline; [`Instant::MAX`] for a timer not set (a deadline that could never
/// come, so setting one clears the timer): 8 bytes a timer instead of an `Option`'s 16, in
/// every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timers([Instant; Timer::COUNT]);

impl Default for Timers {
    fn default() -> Self {
        Timers([Instant::MAX; Timer::COUNT])
    }
}

impl Timers {
    /// Sets `timer` to fire at `at`, or clears it.
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.0[timer as usize] = at.unwrap_or(Instant::MAX);
    }

    /// The earliest deadline and its timer (the first in [`Timer`]'s order on a tie).
    pub(crate) fn next(&self) -> Option<(Instant, Timer)> {
        // The table is in `Timer::ALL`'s order, so keeping the first of equal deadlines
        // breaks ties as that order does. (A loop: this runs after every change.)
        let mut next = (Instant::MAX, 0);
        for (i, &at) in self.0.iter().enumerate() {
            if at < next.0 {
                next = (at, i);
            }
        }
        (next.0 != Instant::MAX).then(|| (next.0, Timer::ALL[next.1]))
    }

    /// Whether `timer` is set and due at `now`. Firing one timer can move the others (a
    /// probe restarts the idle clock's neighbours, a close clears them), so the connection
    /// asks this of each timer in [`Timer::ALL`]'s order just before firing it, not of a
    /// list taken up front.
    pub(crate) fn due(&self, timer: Timer, now: Instant) -> bool {
        let at = self.0[timer as usize];
        at != Instant::MAX && at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn due_timers_come_in_a_fixed_order_and_the_earliest_is_next() {
        let at = |ms: u64| Instant::from_micros(ms * 1000);
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Idle, Some(at(30)));
        t.set(Timer::Ack, Some(at(10)));
        t.set(Timer::Pacing, Some(at(10)));
        t.set(Timer::Close, Some(at(50)));
        t.set(Timer::Close, None);
        assert_eq!(t.next(), Some((at(10), Timer::Ack)));
        let due: Vec<Timer> = Timer::ALL.into_iter().filter(|&x| t.due(x, at(30))).collect();
        assert_eq!(due, [Timer::Ack, Timer::Idle, Timer::Pacing]);
        assert!(Timer::ALL.iter().all(|&x| !t.due(x, at(9))));
        // The table's index is the firing order, which ties follow.
        assert!(Timer::ALL.iter().enumerate().all(|(i, &x)| x as usize == i));
        t.set(Timer::Trim, Some(at(10)));
        t.set(Timer::Handshake, Some(at(10)));
        assert_eq!(t.next(), Some((at(10), Timer::Handshake)));
        // A deadline that could never come is none.
        let mut t = Timers::default();
        t.set(Timer::Idle, Some(Instant::MAX));
        assert_eq!(t.next(), None);
        assert!(!t.due(Timer::Idle, Instant::MAX));
    }
}
