//! Flow control: how far the peer may send, and how far we may (spec/protocol.md §4.6-§4.9,
//! §8.5; the rules of RFC 9000 §4).
//!
//! Two small state machines, used per stream and for the whole connection:
//!
//! - [`ReceiveWindow`]: the credit we grant. Input: how much the application consumed, the
//!   time and the RTT. Output: a new limit to announce (MAX_DATA / MAX_STREAM_DATA) once
//!   a quarter of the window is used ([`UPDATE_SHARE`]). Auto-tuning: when updates are
//!   needed within an RTT of each other, the application reads a quarter window a round
//!   trip or faster, faster than the window lets the peer send over the path, so the
//!   window doubles, up to its configured maximum (the approach of Chromium's QUIC flow
//!   controller, which updates at half the window and compares with two RTTs: the same
//!   rate, measured twice as often). A slow reader never makes it grow, so what we hold
//!   stays bounded by what it reads.
//! - [`SendCredit`]: the credit the peer granted us. Input: its limits and what we send.
//!   Output: what may be sent, and once per limit the fact that we are blocked at it (so the
//!   connection sends DATA_BLOCKED / STREAM_DATA_BLOCKED / STREAMS_BLOCKED).

use crate::time::{Duration, Instant};

/// A window's limit moves once this share of it (a quarter) is consumed: often enough that
/// a window which doubles at each fast update keeps up with a sender in slow start, whose
/// congestion window doubles each round trip. At half, a window-limited sender on a long
/// path waited about 1.4 round trips between doublings, and its congestion controller,
/// whose samples the window then limited, grew as slowly (issue 35's thirteenth round:
/// 16 MiB over a 40 ms round trip in weir-sim took 591 ms by default, 507 ms with windows
/// too large to bind, and 507 ms at a quarter). The cost is a MAX_DATA or MAX_STREAM_DATA
/// frame each quarter window read instead of each half.
const UPDATE_SHARE: u64 = 4;

/// The credit we grant the peer, auto-tuned.
#[derive(Clone, Debug)]
pub(crate) struct ReceiveWindow {
    window: u64,
    max_window: u64,
    /// The peer may send below this offset (what we announced).
    limit: u64,
    last_update: Option<Instant>,
    /// How much more the window may grow, by the endpoint's leave (a connection's windows
    /// share `Config::receive_buffer_total`); unlimited for streams.
    room: u64,
    /// The window wanted to grow past `room`.
    starved: bool,
}

impl ReceiveWindow {
    /// A window of `initial` bytes that may grow to `max`.
    pub(crate) fn new(initial: u64, max: u64) -> Self {
        ReceiveWindow {
            window: initial,
            max_window: max.max(initial),
            limit: initial,
            last_update: None,
            room: u64::MAX,
            starved: false,
        }
    }

    /// The limit announced.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Sets the limit directly, never lowering it (a pipe's credit follows its targets,
    /// not reads). Whether it grew.
    pub(crate) fn raise(&mut self, limit: u64) -> bool {
        let grew = limit > self.limit;
        self.limit = self.limit.max(limit);
        grew
    }

    /// Whether the window wanted to grow beyond its room (and has not been given more).
    pub(crate) fn starved(&self) -> bool {
        self.starved
    }

    /// How much more the window may grow.
    pub(crate) fn room(&self) -> u64 {
        self.room
    }

    /// Lets the window grow by `more` bytes beyond its current room. A window that wanted
    /// to grow (starved) grows now, into what it was given, and its limit with it: whether
    /// the limit grew, so that a MAX_DATA goes. It waited for the room since the update
    /// that wanted it, and waiting for the next update to use it halved how fast the
    /// window followed the path: a window-limited sender on a long path waited about 1.4
    /// round trips between doublings of a connection's window, slower than its congestion
    /// controller's slow start (issue 35's thirteenth round: 16 MiB over a 40 ms round trip
    /// in weir-sim took 679 ms, 591 ms with this, 507 ms with windows too large to bind and
    /// with this and [`UPDATE_SHARE`] both). Once per update that wanted it: a window the
    /// room held short waits for the next fast update to want more.
    pub(crate) fn grant_room(&mut self, more: u64) -> bool {
        self.room = self.room.saturating_add(more);
        if more == 0 || !self.starved {
            return false;
        }
        let grown = self.grow();
        self.starved = false;
        self.limit = self.limit.saturating_add(grown);
        grown > 0
    }

    /// Doubles the window, up to its maximum and within its room; marks it starved if the
    /// room held it back. Returns by how much it grew.
    fn grow(&mut self) -> u64 {
        let wanted = self
            .window
            .saturating_mul(2)
            .min(self.max_window)
            .saturating_sub(self.window);
        let grown = wanted.min(self.room);
        self.starved |= grown < wanted;
        self.window += grown;
        self.room -= grown;
        grown
    }

    /// Sets how much more the window may grow (a connection's starts with none until its
    /// endpoint grants some).
    pub(crate) fn with_room(mut self, room: u64) -> Self {
        self.room = room;
        self
    }

    /// The window's current size.
    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// The window becomes `window` if larger (at most the maximum), and the limit moves to
    /// `consumed` plus the window, never past `end`. Whether the limit grew. (A new stream
    /// of a connection whose streams grew their windows starts with the grown one.)
    pub(crate) fn start_with(&mut self, consumed: u64, window: u64, end: Option<u64>) -> bool {
        self.window = self.window.max(window.min(self.max_window));
        let target = consumed.saturating_add(self.window);
        self.raise(end.map_or(target, |e| target.min(e)))
    }

    /// The application consumed up to `consumed`: a new limit to announce, if a quarter of
    /// the window is used up or the limit can now reach `end` (a known final size, never
    /// passed). An update within an RTT of the last doubles the window first.
    pub(crate) fn update(
        &mut self,
        consumed: u64,
        end: Option<u64>,
        now: Instant,
        rtt: Duration,
    ) -> Option<u64> {
        let cap = |t: u64| end.map_or(t, |e| t.min(e));
        let target = cap(consumed.saturating_add(self.window));
        let reaches_end = end == Some(target) && target > self.limit;
        if target.saturating_sub(self.limit) < (self.window / UPDATE_SHARE).max(1) && !reaches_end {
            return None;
        }
        if self.last_update.is_some_and(|t| now - t < rtt) {
            self.grow();
        }
        self.last_update = Some(now);
        self.limit = self.limit.max(cap(consumed.saturating_add(self.window)));
        Some(self.limit)
    }
}

/// The credit the peer granted us.
#[derive(Clone, Debug, Default)]
pub(crate) struct SendCredit {
    /// The limit, in the low 63 bits (a wire limit is below 2^62); the top bit says we
    /// reported being blocked at it (a raise clears it). One word, not two: every
    /// connection keeps two of these, and every stream one.
    limit: u64,
    used: u64,
}

/// `SendCredit::limit`'s top bit: blocked at this limit was reported.
const REPORTED: u64 = 1 << 63;

impl SendCredit {
    pub(crate) fn new(limit: u64) -> Self {
        SendCredit {
            limit: limit.min(!REPORTED),
            used: 0,
        }
    }

    /// Bytes (or streams) that may still be used.
    pub(crate) fn available(&self) -> u64 {
        self.limit().saturating_sub(self.used)
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit & !REPORTED
    }

    pub(crate) fn consume(&mut self, n: u64) {
        self.used += n;
    }

    /// What was used of it.
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    /// The peer raised its limit (a lower value is stale and ignored); whether it grew.
    pub(crate) fn raise(&mut self, limit: u64) -> bool {
        let limit = limit.min(!REPORTED);
        let grew = limit > self.limit();
        if grew {
            self.limit = limit;
        }
        grew
    }

    /// We want more than the limit allows: the limit to report as blocked at, once per
    /// limit.
    pub(crate) fn take_blocked(&mut self) -> Option<u64> {
        if self.available() > 0 || self.limit & REPORTED != 0 {
            return None;
        }
        self.limit |= REPORTED;
        Some(self.limit())
    }

    /// The report sent by [`take_blocked`](Self::take_blocked) was lost: report again if
    /// still blocked.
    pub(crate) fn report_lost(&mut self) {
        self.limit &= !REPORTED;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(100);

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn the_limit_moves_once_a_quarter_of_the_window_is_consumed() {
        let mut w = ReceiveWindow::new(100, 100);
        assert_eq!(w.update(24, None, at(0), RTT), None);
        assert_eq!(w.update(25, None, at(0), RTT), Some(125));
        assert_eq!(w.update(49, None, at(1000), RTT), None);
    }

    #[test]
    fn fast_reading_doubles_the_window_up_to_the_maximum() {
        let mut w = ReceiveWindow::new(100, 300);
        assert_eq!(w.update(25, None, at(0), RTT), Some(125));
        // The next update within an RTT: the reader outpaces the window.
        assert_eq!(w.update(50, None, at(99), RTT), Some(250));
        assert_eq!(w.window(), 200);
        assert_eq!(w.update(100, None, at(150), RTT), Some(400));
        assert_eq!(w.window(), 300, "capped at the maximum");
    }

    #[test]
    fn an_update_an_rtt_or_more_after_the_last_does_not_grow_the_window() {
        let mut w = ReceiveWindow::new(100, 1000);
        assert_eq!(w.update(25, None, at(0), RTT), Some(125));
        assert_eq!(w.update(50, None, at(100), RTT), Some(150));
        assert_eq!(w.window(), 100);
    }

    #[test]
    fn the_window_grows_only_into_the_room_granted_and_at_once_when_it_wanted_to() {
        let mut w = ReceiveWindow::new(100, 1000).with_room(0);
        assert_eq!(w.update(25, None, at(0), RTT), Some(125));
        // Reading fast would double it, but there is no room: the same window slides on.
        assert_eq!(w.update(50, None, at(50), RTT), Some(150));
        assert!(w.starved());
        assert_eq!(w.window(), 100);
        // Room comes: the window grows by it now, and the limit with it.
        assert!(w.grant_room(60));
        assert_eq!((w.window(), w.room(), w.limit()), (160, 0, 210));
        assert!(!w.starved(), "grown once for the update that wanted it");
        assert!(!w.grant_room(100), "room alone grows nothing");
        assert_eq!((w.window(), w.room()), (160, 100));
        // The next fast update doubles it within the room.
        assert_eq!(w.update(90, None, at(90), RTT), Some(350));
        assert_eq!((w.window(), w.room()), (260, 0));
        assert!(w.starved(), "wanted 320");
    }

    #[test]
    fn slow_reading_never_grows_the_window() {
        let mut w = ReceiveWindow::new(100, 1000);
        for i in 1..20 {
            w.update(50 * i, None, at(300 * i), RTT);
        }
        assert_eq!(w.window(), 100);
        assert_eq!(w.limit(), 50 * 19 + 100);
    }

    #[test]
    fn a_known_end_is_granted_at_once_and_never_passed() {
        let mut w = ReceiveWindow::new(100, 100);
        assert_eq!(w.update(20, Some(130), at(0), RTT), None);
        assert_eq!(w.update(40, Some(130), at(0), RTT), Some(130));
        assert_eq!(w.update(130, Some(130), at(0), RTT), None);
    }

    #[test]
    fn blocked_is_reported_once_per_limit() {
        let mut c = SendCredit::new(10);
        assert_eq!(c.take_blocked(), None);
        c.consume(10);
        assert_eq!(c.take_blocked(), Some(10));
        assert_eq!(c.take_blocked(), None);
        c.report_lost();
        assert_eq!(c.take_blocked(), Some(10));
        assert!(c.raise(20));
        assert!(!c.raise(15));
        assert_eq!(c.available(), 10);
        c.consume(10);
        assert_eq!(c.take_blocked(), Some(20));
        assert_eq!(
            (c.limit(), c.available()),
            (20, 0),
            "the report leaves the limit as it was"
        );
    }

    #[test]
    fn a_limit_past_any_wire_value_is_kept_apart_from_the_report() {
        let most = u64::MAX >> 1;
        let mut c = SendCredit::new(u64::MAX);
        assert_eq!(c.limit(), most);
        c.consume(most);
        assert_eq!(c.take_blocked(), Some(most));
        assert!(!c.raise(u64::MAX), "no higher limit to grow to");
        assert_eq!((c.limit(), c.available(), c.take_blocked()), (most, 0, None));
        assert_eq!(core::mem::size_of::<SendCredit>(), 16);
    }
}
