//! The driver task's one timer (`run`), kept where waiting on it costs the runtime nothing:
//! set to the time module `timer` decides, and fired once that time comes.
//!
//! Input: the driver's deadline, which it follows as module `timer` decides ([`Move`]).
//! Output: a future that completes when the armed time has come, which disarms it.
//!
//! A tokio timer has every wait of the runtime's thread carry a timeout, the time to the
//! next timer, and a wait with a timeout arms a kernel timer and cancels it on waking: in a
//! virtual machine, one exit to the hypervisor or two per wait once that timer is the CPU's
//! next event, which it is for the last milliseconds before any tokio timer fires. tokio's
//! wheel adds firings of its own: a timer in a later 64 ms span than now is filed a level
//! up, and the wheel wakes at the span's start to move it down. Where Linux's `timerfd` is
//! (Linux, Android), the timer is one instead: a kernel timer set once per move and watched
//! like a socket, so the runtime waits without a timeout (if nothing else of the
//! application's keeps a tokio timer). Measured on raw UDP over tokio (2 vCPUs under KVM,
//! `CONFIG_HZ=250`, 10,000 round trips, a timer firing every 2 ms on each side, medians of
//! 9 runs): with tokio's sleep p50 14.4 µs, p95 29.0 µs and 18.4 µs of CPU per round trip;
//! with a timerfd 12.6, 13.6 and 12.9; with no timer 12.6, 13.5 and 12.7
//! (`WEIR_BENCH_ROUND_TRIPS=10000 WEIR_BENCH_UDP_TIMER_MS=2 WEIR_BENCH_UDP_TIMERFD=1 cargo
//! run --release -p weir-bench -- --reps 9 --peers udp --workloads rtt`; adapters/bench/
//! README.md, "Issue 35, eighth round"). Elsewhere, or where the descriptor cannot be made,
//! the timer is tokio's.
//!
//! Either way the timer fires when a tokio timer would: at the first whole millisecond of
//! its clock at or after the time set (tokio's wheel turns in milliseconds), at once if
//! that has passed. The core's pacer asks for waits of microseconds, and its deadline has
//! often passed by the time the task reads it (the core's clock is the one read before the
//! sends just made). Fired at once every time (throw-away builds), the timer paced a sender
//! sharing one CPU with its receiver a datagram or two per firing, in most runs: up to
//! 7,095 firings for weir-bench's 64 MiB `bulk` under `taskset -c 0`, 441–812 MB/s against
//! 739–836 with tokio's timer, which lets the pacer's releases gather for up to a
//! millisecond and go together (this rule: 745–814; adapters/bench/rounds.md, "Issue 35,
//! eighth round"). Waking at the pacer's microsecond would be a change of the adapter's
//! behaviour, for an issue of its own.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::timer::{self, Move};

/// The timer (see the module documentation).
pub(crate) struct Alarm {
    kind: Kind,
    /// The time it is armed for: none before the first deadline, nor once it fired.
    armed: Option<Instant>,
}

enum Kind {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Fd {
        fd: fd::Fd,
        /// Where its milliseconds are counted from.
        origin: Instant,
        /// Set for a time already come: it fires at the next wait, without the timerfd.
        due: bool,
    },
    /// A move later is a new registration: resetting a tokio timer later keeps its old
    /// entry in the wheel, which still comes near, and fires.
    Sleep(Pin<Box<Sleep>>),
}

impl Alarm {
    /// A timer not armed yet.
    pub(crate) fn new() -> Alarm {
        let now = Instant::now();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        match fd::Fd::new() {
            Ok(fd) => {
                let kind = Kind::Fd {
                    fd,
                    origin: now,
                    due: false,
                };
                return Alarm { kind, armed: None };
            }
            Err(e) => tracing::debug!(%e, "no timerfd: the driver task keeps a tokio timer"),
        }
        Alarm {
            kind: sleep(now),
            armed: None,
        }
    }

    /// Follows the driver's `deadline` as module `timer` decides; the driver's clock last
    /// read `seen`.
    pub(crate) fn follow(&mut self, deadline: Option<Instant>, seen: Instant) {
        self.apply(timer::next(deadline, self.armed, seen));
    }

    /// Moves the timer armed for `from` (a stand-by's end, module `run`) to `to`, if later:
    /// a move module `timer` would leave, the armed time being near, for the timer to
    /// fire early and find nothing due; here the firing is what the move saves. Armed for
    /// another time (an earlier deadline of the core's), it is left as it is.
    pub(crate) fn postpone(&mut self, from: Instant, to: Option<Instant>) {
        if let Some(to) = to.filter(|&to| self.armed == Some(from) && to > from) {
            self.apply(Move::Later(to));
        }
    }

    /// The time it is armed for, if any.
    pub(crate) fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// Whether it is armed: [`fired`](Self::fired) is worth waiting for.
    pub(crate) fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    /// Sets the timer as `step` says.
    fn apply(&mut self, step: Move) {
        let at = match step {
            Move::Arm(at) | Move::Later(at) => at,
            Move::Stay => return,
        };
        self.armed = Some(at);
        match &mut self.kind {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Kind::Fd { fd, origin, due } => {
                let fire = whole_millisecond(*origin, at);
                let now = Instant::now();
                *due = fire <= now;
                if *due {
                    return;
                }
                if let Err(e) = fd.set(fire - now) {
                    tracing::error!(%e, "the timerfd cannot be set: the driver task keeps a tokio timer");
                    self.kind = sleep(at);
                }
            }
            Kind::Sleep(s) => match step {
                Move::Later(_) => self.kind = sleep(at),
                _ => s.as_mut().reset(at.into()),
            },
        }
    }

    /// Completes once the time armed has come (at once if it has, or if it was never
    /// armed), and disarms it. Dropped before it completes, it leaves the timer armed.
    pub(crate) async fn fired(&mut self) {
        self.expired().await;
        self.armed = None;
    }

    async fn expired(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Kind::Fd { fd, due, .. } = &mut self.kind {
            if std::mem::take(due) {
                return;
            }
            match fd.expired().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(%e, "the timerfd cannot be waited for: the driver task keeps a tokio timer");
                    self.kind = sleep(self.armed.unwrap_or_else(Instant::now));
                }
            }
        }
        if let Kind::Sleep(s) = &mut self.kind {
            s.as_mut().await;
        }
    }
}

fn sleep(at: Instant) -> Kind {
    Kind::Sleep(Box::pin(tokio::time::sleep_until(at.into())))
}

/// The first whole millisecond after `origin` at or after `at` (`origin` itself if `at` is
/// before it): when a tokio timer set for `at` fires.
fn whole_millisecond(origin: Instant, at: Instant) -> Instant {
    let since = at.saturating_duration_since(origin);
    let part = u64::from(since.subsec_nanos() % 1_000_000 != 0);
    let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX - 1) + part;
    // (Past what an `Instant` holds, which no deadline reaches: `at` itself.)
    origin.checked_add(Duration::from_millis(ms)).unwrap_or(at)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod fd {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// A one-shot timerfd on the monotonic clock, registered with the runtime for reading.
    pub(super) struct Fd(AsyncFd<Timer>);

    /// The timerfd, as tokio registers it.
    struct Timer(TimerFd);

    impl AsRawFd for Timer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    impl Fd {
        pub(super) fn new() -> io::Result<Fd> {
            let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
            let timer = Timer(TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?);
            #[allow(unsafe_code)]
            // SAFETY: the `AsyncFd` owns the timer, whose `TimerFd` owns its descriptor, so
            // the descriptor stays open and names the same timer until the `AsyncFd` is
            // dropped (tokio's safe constructors are deprecated for types that cannot promise
            // this; ours can).
            let fd = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) };
            fd.map(Fd).map_err(io::Error::from)
        }

        /// Sets the timer to expire in `wait` (not zero, which would disarm it), replacing
        /// what it was set to. (Relative: std has no way to an `Instant`'s clock value.)
        pub(super) fn set(&self, wait: Duration) -> io::Result<()> {
            let wait = wait.max(Duration::from_nanos(1));
            let expiration = Expiration::OneShot(TimeSpec::from_duration(wait));
            self.0.get_ref().0.set(expiration, TimerSetTimeFlags::empty())?;
            Ok(())
        }

        /// Completes when the timer has expired, taking the expiry.
        pub(super) async fn expired(&self) -> io::Result<()> {
            loop {
                let mut ready = self.0.readable().await?;
                // A read takes the expiry, or finds none (`EAGAIN`) and clears the readiness.
                match ready.try_io(|t| t.get_ref().0.wait().map_err(io::Error::from)) {
                    Ok(r) => {
                        // Taken: the timer is readable again only once set anew and expired,
                        // which is a new edge, so the readiness can go without a second read.
                        ready.clear_ready();
                        return r;
                    }
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_fires_at_the_whole_millisecond_a_tokio_timer_would() {
        let origin = Instant::now();
        let ns = |n| origin + Duration::from_nanos(n);
        let cases = [
            (0, 0),
            (1, 1_000_000),
            (999_999, 1_000_000),
            (1_000_000, 1_000_000),
            (1_000_001, 2_000_000),
            (2_500_000_000, 2_500_000_000),
        ];
        for (at, expected) in cases {
            assert_eq!(whole_millisecond(origin, ns(at)), ns(expected), "{at} ns");
        }
        let before = origin.checked_sub(Duration::from_millis(5));
        if let Some(before) = before {
            assert_eq!(whole_millisecond(origin, before), origin);
        }
    }

    /// The timer fires once its time has come, and not before: set to the past it fires at
    /// once; set again later, a wait shorter than that ends first; moved earlier, it fires
    /// then; firing disarms it, and following a deadline arms it. (Only the order of events
    /// is asserted, not how long anything took.)
    async fn fires_when_set_and_follows_its_moves(mut alarm: Alarm) {
        assert!(!alarm.is_armed(), "armed before any deadline");
        alarm.apply(Move::Arm(Instant::now()));
        alarm.fired().await;
        assert!(!alarm.is_armed(), "still armed once fired");
        alarm.apply(Move::Later(Instant::now() + Duration::from_secs(3600)));
        let waited = tokio::select! {
            biased;
            () = alarm.fired() => false,
            () = tokio::task::yield_now() => true,
        };
        assert!(waited, "a timer an hour off does not fire at once");
        alarm.apply(Move::Stay);
        alarm.apply(Move::Arm(Instant::now() + Duration::from_micros(10)));
        alarm.fired().await;
        alarm.apply(Move::Arm(Instant::now()));
        alarm.fired().await;
        let now = Instant::now();
        alarm.follow(Some(now), now);
        assert!(alarm.is_armed(), "a deadline followed arms it");
        alarm.fired().await;
        alarm.follow(None, now);
        assert!(!alarm.is_armed(), "no deadline arms nothing");
    }

    #[tokio::test]
    async fn the_timer_fires_when_set_and_follows_its_moves() {
        let alarm = Alarm::new();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert!(
            matches!(alarm.kind, Kind::Fd { .. }),
            "a timerfd where the platform has one"
        );
        fires_when_set_and_follows_its_moves(alarm).await;
    }

    /// The same of the tokio timer kept where there is no timerfd.
    #[tokio::test]
    async fn the_tokio_timer_fires_when_set_and_follows_its_moves() {
        let at = Instant::now();
        let alarm = Alarm {
            kind: sleep(at),
            armed: None,
        };
        fires_when_set_and_follows_its_moves(alarm).await;
    }
}
