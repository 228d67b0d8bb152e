//! Where a driver's time comes from: the system's monotonic clock for every adapter, or,
//! in tests and fuzzing (feature `fuzzing`), a clock that moves only when told, with a seed given and no fresh entropy, so
//! that timeouts are tested without waiting and the same calls give the same bytes.
//!
//! Inputs: the system clock, or a test's `advance`. Outputs: the time every deadline of
//! the driver (requests, the pool, shutdown, figures) and the core's `Instant`s are
//! reckoned from.

#[cfg(any(test, feature = "fuzzing"))]
use std::net::SocketAddr;
#[cfg(any(test, feature = "fuzzing"))]
use std::time::Duration as StdDuration;
use std::time::Instant as StdInstant;

#[cfg(any(test, feature = "fuzzing"))]
use weir_core::Config;

use super::Driver;

/// Where a driver's time comes from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Clock {
    /// The system's monotonic clock: every adapter's.
    System,
    /// Time that moves only when a test or the fuzz target moves it (`Driver::advance`), so that timeouts are
    /// tested without waiting and runs repeat exactly.
    #[cfg(any(test, feature = "fuzzing"))]
    Manual(StdInstant),
}

impl Clock {
    pub(super) fn now(&self) -> StdInstant {
        match self {
            Clock::System => StdInstant::now(),
            #[cfg(any(test, feature = "fuzzing"))]
            Clock::Manual(at) => *at,
        }
    }
}

impl Driver {
    /// A driver whose seed and time are given, with no entropy besides: the same calls give
    /// the same datagrams and answers. It records its core's trace where `trace` says
    /// (`WEIR_TRACE`'s form; the environment is not read). For tests and the `driver` fuzz
    /// target.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn deterministic(
        config: Config,
        local: SocketAddr,
        seed: u64,
        trace: Option<String>,
    ) -> Driver {
        let seed = (weir_core::Seed::from(seed), None);
        Driver::with(config, local, seed, Clock::Manual(StdInstant::now()), trace)
    }

    /// Moves a driver made by [`deterministic`](Self::deterministic) `by` on; its calls
    /// see the new time, and [`handle_timeout`](Self::handle_timeout) fires what is due.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn advance(&mut self, by: StdDuration) {
        if let Clock::Manual(at) = &mut self.clock {
            *at += by;
        }
    }

    /// The time by the driver's clock.
    pub(crate) fn wall(&self) -> StdInstant {
        let now = self.clock.now();
        self.seen.set(now);
        #[cfg(test)]
        self.reads.set(self.reads.get() + 1);
        now
    }

    /// The clock's last reading by [`wall`](Self::wall), without reading it again.
    pub(super) fn seen(&self) -> StdInstant {
        self.seen.get()
    }
}
