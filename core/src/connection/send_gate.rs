//! Whether new stream data may leave now (RFC 9002 §7 and §7.7, congestion control and
//! pacing): the congestion window must have room and the pacer must let the datagram go;
//! when it does not, when it will; and whether the sender was application-limited, which
//! the controllers are told with each acknowledgement (RFC 9002 §7.8). An owned part of the
//! connection: it keeps the pacer, its wake-up time and the application-limited mark, and
//! answers with [`Gate`]; the window, the RTT and whether anything waits to be sent are
//! handed in (module `transmit`).
//!
//! Inputs: what the congestion controller and recovery say now, datagrams sent, the pacing
//! timer. Outputs: open or shut, the pacing deadline (`Timer::Pacing`), the mark.

use crate::pacing::{Pace, Pacer};
use crate::recovery::rtt::RttEstimator;
use crate::time::Instant;

/// What holds new stream data back, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// It may go.
    Open,
    /// The congestion window is full.
    WindowFull,
    /// The window has room and nothing waits to be sent: application-limited.
    NothingQueued,
    /// The pacer holds it until the pacing deadline.
    Paced,
}

/// What the sender looks like at the moment of asking.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sending {
    /// Bytes in flight.
    pub(super) in_flight: usize,
    /// The congestion window.
    pub(super) window: usize,
    /// Whether any stream has something to send.
    pub(super) queued: bool,
}

/// The send gate of one connection.
#[derive(Debug)]
pub(super) struct SendGate {
    pacer: Pacer,
    /// When the pacer lets the next datagram leave, if it held one back.
    wake: Option<Instant>,
    /// The window had room but there was nothing to send (RFC 9002 §7.8).
    app_limited: bool,
}

impl SendGate {
    pub(super) fn new(now: Instant) -> SendGate {
        SendGate {
            pacer: Pacer::new(now),
            wake: None,
            app_limited: false,
        }
    }

    /// Whether a datagram of `size` bytes of new stream data may leave at `now`, paced
    /// as `pace` says (asked only when it is needed: once the window has room and something
    /// waits).
    pub(super) fn check(
        &mut self,
        now: Instant,
        sending: Sending,
        pace: impl FnOnce() -> Pace,
        rtt: &RttEstimator,
        size: usize,
    ) -> Gate {
        self.wake = None;
        if sending.in_flight >= sending.window {
            self.app_limited = false;
            return Gate::WindowFull;
        }
        if !sending.queued {
            self.app_limited = true;
            return Gate::NothingQueued;
        }
        match self.pacer.delay(now, pace(), rtt, size) {
            None => Gate::Open,
            Some(at) => {
                self.wake = Some(at);
                Gate::Paced
            }
        }
    }

    /// A probe may send whatever the window says: nothing waits for the pacer.
    pub(super) fn probe(&mut self) {
        self.wake = None;
    }

    /// A datagram of `len` bytes left.
    pub(super) fn on_sent(&mut self, len: usize) {
        self.pacer.on_sent(len);
    }

    /// When the pacer lets the next datagrams go (a quantum, `pacing.rs`), if it held one back.
    pub(super) fn wake(&self) -> Option<Instant> {
        self.wake
    }

    /// The pacing timer fired: what was held back may go (`poll_transmit` sends it).
    pub(super) fn woken(&mut self) {
        self.wake = None;
    }

    /// Whether the sender was application-limited when last asked.
    pub(super) fn app_limited(&self) -> bool {
        self.app_limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn a_full_window_shuts_it_nothing_queued_marks_it_and_the_pacer_sets_a_deadline() {
        let now = Instant::ZERO;
        let rtt = RttEstimator::new(Duration::from_millis(100));
        let window = 10 * 1200;
        let pace = || Pace::Window {
            window,
            slow_start: false,
        };
        let mut g = SendGate::new(now);
        let idle = Sending {
            in_flight: 0,
            window,
            queued: false,
        };
        assert_eq!(g.check(now, idle, pace, &rtt, 1200), Gate::NothingQueued);
        assert!(g.app_limited());
        let full = Sending {
            in_flight: window,
            queued: true,
            ..idle
        };
        assert_eq!(g.check(now, full, pace, &rtt, 1200), Gate::WindowFull);
        assert!(!g.app_limited(), "a full window is not the application's doing");

        // Sending as fast as it lets: open for a burst, then paced until a deadline.
        let busy = Sending { queued: true, ..idle };
        let mut sent = 0;
        while g.check(now, busy, pace, &rtt, 1200) == Gate::Open {
            g.on_sent(1200);
            sent += 1;
            assert!(sent < 100, "the pacer never held a datagram back");
        }
        let at = g.wake().expect("paced until a deadline");
        assert!(at > now);
        g.woken();
        assert_eq!(g.wake(), None);
        assert_eq!(g.check(at, busy, pace, &rtt, 1200), Gate::Open);
    }
}
