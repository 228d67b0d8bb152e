//! When the driver task's one timer (module `alarm`) moves (`run`): the core's deadline
//! moves at nearly every packet, and each way a timer can follow it has its cost.
//!
//! Input: the driver's deadline, the time the timer is armed for, and the driver clock's
//! last reading. Output: arm it for the deadline, move it there, or leave it.
//!
//! - An earlier deadline arms the timer at once: it must fire then.
//! - A later one leaves it armed, to fire early and find nothing due: a later deadline
//!   comes at nearly every packet, and each move is work (a system call for a timerfd; for
//!   a tokio timer, a new registration in its wheel).
//! - But not until it is near. A timer that fires early wakes the task for nothing, and
//!   with a tokio timer the last milliseconds before any firing are slow: a thread that
//!   waits with a timer due within the kernel's next tick has the kernel program the CPU's
//!   timer for each wait, and in a virtual machine each programming is an exit to the
//!   hypervisor. Measured here (2 vCPUs under KVM, `CONFIG_HZ=250`), raw UDP's round trip
//!   on tokio took 16.1 µs (p50) with a tokio timer firing every 2 ms on each side, 12.5 µs
//!   every 50 ms, 11.8 µs with none (`WEIR_BENCH_UDP_TIMER_MS=2 cargo run --release -p
//!   weir-bench -- --reps 9 --peers udp --workloads rtt`). weir-tokio's round trips, when
//!   its timer was tokio's, took 30–34 µs instead of 19–20 for the last milliseconds before
//!   each early firing, every `max_ack_delay` (weir-bench `rtt`, 10,000 round trips: 350 to
//!   600 of them over 29 µs). So a timer armed for a deadline that has since moved later is
//!   moved to it once it is within [`NEAR`] of firing, if the deadline is not near itself.
//!   (A timerfd, module `alarm`, does not slow the waits before it fires; moving it before
//!   it fires is still one system call against a wake-up for nothing.)

use std::time::{Duration, Instant};

/// How close to firing an armed timer is moved to a later deadline: past the kernel's
/// tick at 100 Hz (10 ms), the coarsest in common use.
pub(crate) const NEAR: Duration = Duration::from_millis(12);

/// What the driver task does with its timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Move {
    /// Arm it for this deadline, the first or an earlier one.
    Arm(Instant),
    /// Move it to this later deadline (for a tokio timer a new registration, since `reset`
    /// to a later time keeps the old one in tokio's wheel, which would still come near, and
    /// fire).
    Later(Instant),
    /// Leave it as it is.
    Stay,
}

/// The timer is armed for `armed` (or not at all); the driver's next deadline is
/// `deadline`, and its clock last read `seen`.
pub(crate) fn next(deadline: Option<Instant>, armed: Option<Instant>, seen: Instant) -> Move {
    let Some(at) = deadline else {
        return Move::Stay;
    };
    match armed {
        None => Move::Arm(at),
        Some(a) if at < a => Move::Arm(at),
        // (Not near, so later than the armed time, which is.)
        Some(a) if near(a, seen) && !near(at, seen) => Move::Later(at),
        Some(_) => Move::Stay,
    }
}

fn near(at: Instant, seen: Instant) -> bool {
    at.saturating_duration_since(seen) < NEAR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_follows_the_deadline_as_the_module_says() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // (deadline, armed, seen) → what happens
        let cases = [
            (None, None, ms(0), Move::Stay),
            (None, Some(ms(25)), ms(0), Move::Stay),
            (Some(ms(25)), None, ms(0), Move::Arm(ms(25))),
            // Earlier: at once.
            (Some(ms(5)), Some(ms(25)), ms(0), Move::Arm(ms(5))),
            // Later, the armed one far off: it stays, to fire early.
            (Some(ms(30)), Some(ms(25)), ms(0), Move::Stay),
            // Later, the armed one near: moved.
            (Some(ms(40)), Some(ms(25)), ms(15), Move::Later(ms(40))),
            // Later, but the deadline is near too: nothing gained by moving.
            (Some(ms(26)), Some(ms(25)), ms(15), Move::Stay),
            // The same deadline.
            (Some(ms(25)), Some(ms(25)), ms(20), Move::Stay),
            // A clock reading past the armed time (not fired yet): moved if the deadline is far.
            (Some(ms(60)), Some(ms(25)), ms(30), Move::Later(ms(60))),
        ];
        for (deadline, armed, seen, expected) in cases {
            assert_eq!(
                next(deadline, armed, seen),
                expected,
                "{deadline:?} {armed:?} {seen:?}"
            );
        }
    }
}
