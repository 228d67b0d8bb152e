//! The connection's receive side accounts (spec/protocol.md §8 Flow control, §10.3 the
//! receive budget): the connection credit we grant (its window, auto-tuned within the room
//! the endpoint grants it), what the peer used of it, what the application released, and
//! what the peer's streams cost the heap. An owned part of the connection: it keeps these
//! and answers with violations and with whether a MAX_DATA is due; the streams hold the
//! bytes, and the cost is recounted from them (module `stream_frames`) when the estimate
//! passes the budget.
//!
//! Inputs: stream bytes arriving (by how much a stream's highest offset grew), bytes read
//! or dropped, the endpoint's grants of room, streams' windows grown by auto-tuning. Outputs: `PastCredit`, MAX_DATA due, the
//! limit to announce, the window and room the endpoint budgets, the window a new stream
//! of the peer's starts with.

use crate::event::ViolationKind;
use crate::flow::ReceiveWindow;
use crate::stream::held::HOLD_GRACE;
use crate::time::{Duration, Instant};

/// The receive accounts of one connection.
#[derive(Debug)]
pub(super) struct ReceiveCredit {
    /// The connection credit we grant.
    flow: ReceiveWindow,
    /// Bytes the peer used: each stream's highest offset received, summed.
    used: u64,
    /// Bytes released: read by the application, handed on by a pipe, or dropped with a
    /// stopped or reset stream. What moves the window.
    released: u64,
    /// What the peer's streams cost the heap, at least (module `stream::held`): grown by
    /// each frame, set again when recounted.
    cost: u64,
    /// The window a stream the peer opens starts with: the configured one, or the largest
    /// a stream of this connection has grown to since (spec §4.12, Streams and credit).
    stream_window: u64,
    /// When the peer's streams were last swept (`RecvStream::sweep`; spec §10.3, "Age").
    swept: Option<Instant>,
}

impl ReceiveCredit {
    /// A window of `window` bytes, growing up to `max_window` as the endpoint grants room
    /// (none yet).
    pub(super) fn new(window: u64, max_window: u64) -> ReceiveCredit {
        ReceiveCredit {
            flow: ReceiveWindow::new(window, max_window).with_room(0),
            used: 0,
            released: 0,
            cost: 0,
            stream_window: 0,
            swept: None,
        }
    }

    /// Streams the peer opens start with a window of `start` bytes (each grows up to
    /// `Config::max_stream_receive_window`, read from the config: not kept here).
    pub(super) fn with_stream_window(mut self, start: u64) -> ReceiveCredit {
        self.stream_window = start;
        self
    }

    /// The window the next stream the peer opens starts with.
    pub(super) fn stream_window(&self) -> u64 {
        self.stream_window
    }

    /// A stream's window grew to `to`: the next ones start there.
    pub(super) fn stream_window_grew(&mut self, to: u64) {
        self.stream_window = self.stream_window.max(to);
    }

    /// A stream's highest offset grew by `grown` bytes: a violation past the credit we
    /// granted.
    pub(super) fn on_used(&mut self, grown: u64) -> Result<(), ViolationKind> {
        self.used += grown;
        if self.used > self.flow.limit() {
            return Err(ViolationKind::PastCredit);
        }
        Ok(())
    }

    /// `n` bytes no longer wait for the application (read, handed on, or dropped).
    pub(super) fn release(&mut self, n: u64) {
        self.released += n;
    }

    /// Whether a MAX_DATA is due (a quarter of the window used up), the window auto-tuned
    /// first.
    pub(super) fn update(&mut self, now: Instant, rtt: Duration) -> bool {
        self.flow.update(self.released, None, now, rtt).is_some()
    }

    /// The limit a MAX_DATA carries now.
    pub(super) fn limit(&self) -> u64 {
        self.flow.limit()
    }

    /// The window now.
    pub(super) fn window(&self) -> u64 {
        self.flow.window()
    }

    /// What the window holds of the endpoint's budget: itself, and the growth it was
    /// granted.
    pub(super) fn reserved(&self) -> u64 {
        self.flow.window().saturating_add(self.flow.room())
    }

    /// Whether the window wanted to grow past the room it was granted.
    pub(super) fn starved(&self) -> bool {
        self.flow.starved()
    }

    /// Lets the window grow by up to `more` bytes (at most doubling it), now if it wanted
    /// to: whether the limit grew (a MAX_DATA is due).
    pub(super) fn grant_room(&mut self, more: u64) -> bool {
        let more = more.min(self.flow.window());
        self.flow.grant_room(more)
    }

    /// The peer's streams cost `n` more bytes of heap.
    pub(super) fn add_cost(&mut self, n: u64) {
        self.cost += n;
    }

    /// The cost as estimated.
    pub(super) fn cost(&self) -> u64 {
        self.cost
    }

    /// The peer's streams' cost fell by `n` bytes (a sweep copied slices).
    pub(super) fn cost_fell(&mut self, n: u64) {
        self.cost = self.cost.saturating_sub(n);
    }

    /// Whether the peer's streams are to be swept at `now`: the first time, and then once
    /// [`HOLD_GRACE`] has passed since the last sweep (which this, answering yes, moves to
    /// `now`).
    pub(super) fn sweep_due(&mut self, now: Instant) -> bool {
        if self
            .swept
            .is_some_and(|at| now.saturating_duration_since(at) < HOLD_GRACE)
        {
            return false;
        }
        self.swept = Some(now);
        true
    }

    /// The cost as recounted from the streams.
    pub(super) fn set_cost(&mut self, cost: u64) {
        self.cost = cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_may_use_what_was_granted_and_no_more() {
        let mut c = ReceiveCredit::new(1000, 4000);
        assert_eq!(c.limit(), 1000);
        assert_eq!(c.on_used(600), Ok(()));
        assert_eq!(c.on_used(400), Ok(()));
        assert_eq!(c.on_used(1), Err(ViolationKind::PastCredit));
    }

    #[test]
    fn more_credit_is_due_once_a_quarter_of_the_window_is_released() {
        let mut c = ReceiveCredit::new(1000, 4000);
        let (now, rtt) = (Instant::ZERO, Duration::from_millis(10));
        c.on_used(1000).unwrap();
        c.release(249);
        assert!(!c.update(now, rtt));
        c.release(1);
        assert!(c.update(now, rtt));
        assert_eq!(c.limit(), 1250);
        assert_eq!(c.reserved(), 1000, "no room granted yet");
        c.grant_room(5000);
        assert_eq!(c.reserved(), 2000, "room at most doubles the window");
    }

    #[test]
    fn a_stream_s_window_that_grew_is_where_the_next_ones_start() {
        let mut c = ReceiveCredit::new(1000, 4000).with_stream_window(100);
        assert_eq!(c.stream_window(), 100);
        c.stream_window_grew(300);
        c.stream_window_grew(200);
        assert_eq!(c.stream_window(), 300, "never shrinks");
    }

    #[test]
    fn the_peer_s_streams_are_swept_at_once_and_then_once_a_grace_period() {
        let mut c = ReceiveCredit::new(1000, 4000);
        let at = |ms| Instant::ZERO + Duration::from_millis(ms);
        assert!(c.sweep_due(at(5)), "the first time");
        assert!(!c.sweep_due(at(5)));
        assert!(!c.sweep_due(at(104)));
        assert!(c.sweep_due(at(105)), "a grace period later");
        assert!(!c.sweep_due(at(204)), "counted from the last sweep");
        assert!(c.sweep_due(at(400)));
    }
}
