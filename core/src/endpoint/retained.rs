//! Connections that ended with something the application was not told yet: bytes it has
//! not read (spec/protocol.md §7, Close: the peer's last message may come just before its
//! CLOSE), or how one of its streams ended before it finished it (a receipt, the peer's
//! stop). Such a connection stays in its slot, no longer reachable by datagrams or timers,
//! so that its streams can still be read, accepted and asked about from the core, until
//! the application has taken all of it, lets go of it ([`Endpoint::release`](crate::Endpoint::release)), or newer ones push it out
//! past `Config::max_connections` kept at once. An owned part of the endpoint: it keeps
//! which connections are kept and which the application let go of, and answers with the
//! one to free; the slots are the endpoint's (module `slots`).
//!
//! Inputs: a connection that ended, the application's release. Outputs: whether to keep
//! it, and the oldest one to free when too many are kept.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::handle::ConnectionHandle;

/// The connections kept after their end, and the ones the application let go of. Every
/// call on a kept connection asks whether it is kept, and there may be as many as
/// `Config::max_connections`: each question is a lookup, not a walk.
#[derive(Debug, Default)]
pub(super) struct Retained {
    /// Kept, with when each was kept (a count).
    kept: BTreeMap<ConnectionHandle, u64>,
    /// The same, oldest first.
    by_age: BTreeMap<u64, ConnectionHandle>,
    /// The next age.
    next: u64,
    /// Live connections the application let go of: freed as soon as they end.
    released: BTreeSet<ConnectionHandle>,
}

impl Retained {
    /// Whether `conn` ended and is kept.
    pub(super) fn contains(&self, conn: ConnectionHandle) -> bool {
        self.kept.contains_key(&conn)
    }

    /// Whether the application let go of `conn`.
    pub(super) fn is_released(&self, conn: ConnectionHandle) -> bool {
        self.released.contains(&conn)
    }

    /// The application let go of a live `conn`.
    pub(super) fn release(&mut self, conn: ConnectionHandle) {
        self.released.insert(conn);
    }

    /// Keeps `conn` (once); if more than `most` are kept, the oldest other one is to be
    /// freed, and is returned (and no longer kept).
    pub(super) fn keep(&mut self, conn: ConnectionHandle, most: usize) -> Option<ConnectionHandle> {
        if !self.kept.contains_key(&conn) {
            self.kept.insert(conn, self.next);
            self.by_age.insert(self.next, conn);
            self.next += 1;
        }
        if self.kept.len() <= most.max(1) {
            return None;
        }
        let oldest = self.by_age.values().copied().find(|&c| c != conn)?;
        self.forget(oldest);
        Some(oldest)
    }

    /// `conn`'s slot is freed: nothing is kept of it.
    pub(super) fn forget(&mut self, conn: ConnectionHandle) {
        if let Some(age) = self.kept.remove(&conn) {
            self.by_age.remove(&age);
        }
        self.released.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_the_oldest_kept_one_goes() {
        let h = |slot| ConnectionHandle::new(slot, 0);
        let mut r = Retained::default();
        assert_eq!(r.keep(h(0), 2), None);
        assert_eq!(r.keep(h(1), 2), None);
        assert_eq!(r.keep(h(1), 2), None, "kept once");
        assert_eq!(r.keep(h(2), 2), Some(h(0)));
        assert!(!r.contains(h(0)) && r.contains(h(1)) && r.contains(h(2)));
        r.forget(h(1));
        assert!(!r.contains(h(1)));

        r.release(h(5));
        assert!(r.is_released(h(5)));
        r.forget(h(5));
        assert!(!r.is_released(h(5)), "a freed slot's next occupant starts afresh");
    }
}
