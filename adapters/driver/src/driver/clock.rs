//! Where a driver's time comes from: the system's monotonic clock for every adapter, or,
//! in tests, a clock that moves only when told, with a seed given and no fresh entropy, so
//! that timeouts are tested without waiting and the same calls give the same bytes.
//!
//! Inputs: the system clock, or a test's `advance`. Outputs: the time every deadline of
//! the driver (requests, the pool, shutdown, figures) and the core's `Instant`s are
//! reckoned from.

#[cfg(test)]
use std::net::SocketAddr;
#[cfg(test)]
use std::time::Duration as StdDuration;
use std::time::Instant as StdInstant;

#[cfg(test)]
use weir_core::Config;

use super::Driver;

/// Where a driver's time comes from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Clock {
    /// The system's monotonic clock: every adapter's.
    System,
    /// Time that moves only when a test moves it (`Driver::advance`), so that timeouts are
    /// tested without waiting and runs repeat exactly.
    #[cfg(test)]
    Manual(StdInstant),
}

impl Clock {
    pub(super) fn now(&self) -> StdInstant {
        match self {
            Clock::System => StdInstant::now(),
            #[cfg(test)]
            Clock::Manual(at) => *at,
        }
    }
}

impl Driver {
    /// A driver whose seed and time are given, with no entropy besides: the same calls give
    /// the same datagrams and answers. For tests.
    #[cfg(test)]
    pub(crate) fn deterministic(config: Config, local: SocketAddr, seed: u64) -> Driver {
        let seed = (weir_core::Seed::from(seed), None);
        Driver::with(config, local, seed, Clock::Manual(StdInstant::now()))
    }

    /// Moves a driver made by [`deterministic`](Self::deterministic) `by` on; its calls
    /// see the new time, and [`handle_timeout`](Self::handle_timeout) fires what is due.
    #[cfg(test)]
    pub(crate) fn advance(&mut self, by: StdDuration) {
        if let Clock::Manual(at) = &mut self.clock {
            *at += by;
        }
    }

    /// The time by the driver's clock.
    pub(crate) fn wall(&self) -> StdInstant {
        self.clock.now()
    }
}
