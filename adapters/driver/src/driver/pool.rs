//! The connection pool (issue 34): one connection per peer, reused by every dial to it,
//! concurrent dials coalesced into one, a pooled connection no handle holds kept open for
//! an idle time in case it is wanted again, and the connections' ups and downs as events.
//!
//! A pool entry is keyed by the peer's key (`Endpoint::dial`) or by an address
//! (`Endpoint::dial_addr`) and is, in turn: `Dialing` (one call dials, the others wait on
//! the dial's number), `Live` (a connection, handed to every dial while it is usable), or
//! `Failed` (the dial's failure, kept for the calls that waited on it until the next dial).
//! A connection a client opened to us joins the pool under its key too, so dialing that
//! peer reuses it. Only a connection the pool dialed is parked when its last handle goes:
//! it stays open for the idle time, and is closed (as any released connection) if no dial
//! took it by then.
//!
//! Inputs: the handles' dial calls, connections established and ended (from the core's
//! events), handles released, time. Outputs: answers to the dial calls, parked connections
//! released, [`PeerEvent`]s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::task::{Poll, Waker};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use weir_core::{ConnectionHandle, PublicKey};

use super::{Driver, Wait};
use crate::{Connected, Error};

/// How long a pooled connection no handle holds stays open, unless configured otherwise.
pub const DEFAULT_POOL_IDLE: StdDuration = StdDuration::from_secs(60);

/// The most [`PeerEvent`]s kept for `Endpoint::peer_event`: past it the oldest go (and are
/// counted as missed).
const EVENT_LIMIT: usize = 1024;

/// What the pool knows a connection by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PoolKey {
    /// The peer's key.
    Peer(PublicKey),
    /// The address dialed.
    Addr(SocketAddr),
}

enum Entry {
    Dialing { dial: u64 },
    Live(ConnectionHandle),
    Failed { dial: u64, error: Error },
}

/// What a dial call does next ([`Driver::pool_claim`]).
pub(crate) enum Claim {
    /// Takes this connection, the pool's.
    Live(Connected),
    /// Waits for dial number `.0`, which another call makes.
    Wait(u64),
    /// Dials, as dial number `.0`, and says how it went ([`Driver::pool_dialed`]).
    Dial(u64),
}

/// A connection of the endpoint came up or went down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A connection's handshake finished (one we dialed, or one a client opened).
    Up {
        /// The peer's key (`None` on an unprotected connection).
        peer: Option<PublicKey>,
        /// Its address when it came up.
        remote: Option<SocketAddr>,
    },
    /// An established connection ended.
    Down {
        /// The peer's key (`None` on an unprotected connection).
        peer: Option<PublicKey>,
        /// How it ended.
        reason: weir_core::CloseReason,
    },
    /// Events were dropped because nobody took them: this many, oldest first.
    Missed(u64),
}

/// The pool's state.
pub(super) struct Pool {
    entries: BTreeMap<PoolKey, Entry>,
    dials: u64,
    idle: StdDuration,
    /// Pooled connections no handle holds, by when they are let go.
    parked: BTreeSet<(StdInstant, ConnectionHandle)>,
    events: VecDeque<PeerEvent>,
    missed: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            entries: BTreeMap::new(),
            dials: 0,
            idle: DEFAULT_POOL_IDLE,
            parked: BTreeSet::new(),
            events: VecDeque::new(),
            missed: 0,
        }
    }
}

impl Pool {
    fn push(&mut self, event: PeerEvent) {
        if self.events.len() >= EVENT_LIMIT {
            self.events.pop_front();
            self.missed += 1;
        }
        self.events.push_back(event);
    }
}

impl Driver {
    /// Sets how long a pooled connection no handle holds stays open.
    pub(crate) fn set_pool_idle(&mut self, idle: StdDuration) {
        self.pool.idle = idle;
    }

    /// The pool's connection to `key` if it has a usable one (established, not ended, not
    /// being let go), else a dial to wait for or to make.
    pub(crate) fn pool_claim(&mut self, key: PoolKey) -> Result<Claim, Error> {
        if self.shutdown.is_some() {
            return Err(Error::Shutdown);
        }
        match self.pool.entries.get(&key) {
            Some(&Entry::Live(conn)) => {
                if let Some(c) = self.pool_take(conn) {
                    return Ok(Claim::Live(c));
                }
            }
            Some(&Entry::Dialing { dial }) => return Ok(Claim::Wait(dial)),
            Some(Entry::Failed { .. }) | None => {}
        }
        self.pool.dials += 1;
        let dial = self.pool.dials;
        self.pool.entries.insert(key, Entry::Dialing { dial });
        Ok(Claim::Dial(dial))
    }

    /// `conn`, if usable, unparked and handed out.
    fn pool_take(&mut self, conn: ConnectionHandle) -> Option<Connected> {
        let c = self.conns.get_mut(&conn)?;
        let negotiated = c.negotiated.filter(|_| c.ended.is_none() && !c.released)?;
        if let Some(at) = c.parked.take() {
            self.pool.parked.remove(&(at, conn));
        }
        let peer = c.peer;
        Some(self.hand_out(Connected {
            id: conn,
            negotiated,
            peer,
        }))
    }

    /// How dial number `dial` for `key` went: its connection joins the pool (parked when
    /// its last handle goes), or its failure is kept for the calls that waited on it.
    pub(crate) fn pool_dialed(&mut self, key: PoolKey, dial: u64, result: Result<ConnectionHandle, &Error>) {
        if !matches!(self.pool.entries.get(&key), Some(Entry::Dialing { dial: d }) if *d == dial) {
            return;
        }
        let entry = match result {
            Ok(conn) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.pooled = true;
                }
                Entry::Live(conn)
            }
            Err(e) => Entry::Failed {
                dial,
                error: e.duplicate(),
            },
        };
        self.pool.entries.insert(key, entry);
        self.wake(Wait::Dial(dial));
    }

    /// Dial number `dial` for `key` was given up before it ended (its call dropped): a call
    /// that waited on it dials again.
    pub(crate) fn pool_abandoned(&mut self, key: PoolKey, dial: u64) {
        if matches!(self.pool.entries.get(&key), Some(Entry::Dialing { dial: d }) if *d == dial) {
            self.pool.entries.remove(&key);
        }
        self.wake(Wait::Dial(dial));
    }

    /// What became of dial number `dial` for `key`: its connection, its failure, or
    /// (`Ok(None)`) nothing any more (given up, or replaced): claim again.
    pub(crate) fn poll_pool(
        &mut self,
        key: PoolKey,
        dial: u64,
        waker: &Waker,
    ) -> Poll<Result<Option<Connected>, Error>> {
        let r = match self.pool.entries.get(&key) {
            _ if self.shutdown.is_some() => Some(Err(Error::Shutdown)),
            Some(&Entry::Live(conn)) => Some(Ok(self.pool_take(conn))),
            Some(Entry::Dialing { dial: d }) if *d == dial => None,
            Some(Entry::Failed { dial: d, error }) if *d == dial => Some(Err(error.duplicate())),
            _ => Some(Ok(None)),
        };
        self.answer(r, Wait::Dial(dial), waker)
    }

    /// The last handle of pooled `conn` went: it is parked for the idle time instead of
    /// being let go; whether it was.
    pub(super) fn pool_park(&mut self, conn: ConnectionHandle) -> bool {
        let idle = self.pool.idle;
        let now = self.wall();
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if !c.pooled || c.ended.is_some() || idle.is_zero() {
            return false;
        }
        let at = now + idle;
        if let Some(old) = c.parked.replace(at) {
            self.pool.parked.remove(&(old, conn));
        }
        self.pool.parked.insert((at, conn));
        true
    }

    /// When the next parked connection is let go.
    pub(super) fn next_pool_deadline(&self) -> Option<StdInstant> {
        self.pool.parked.first().map(|&(at, _)| at)
    }

    /// Lets go of the parked connections whose idle time ran out by `now`: out of the pool,
    /// then released as any connection whose last handle went.
    pub(super) fn expire_parked(&mut self, now: StdInstant) {
        while let Some(&(at, conn)) = self.pool.parked.first() {
            if at > now {
                break;
            }
            self.pool.parked.pop_first();
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            c.parked = None;
            if c.handles > 0 {
                // Taken again (a dial unparks it as it hands it out; kept defensively).
                continue;
            }
            c.pooled = false;
            self.pool
                .entries
                .retain(|_, e| !matches!(e, Entry::Live(c) if *c == conn));
            self.let_go(conn);
        }
    }

    /// `conn` finished its handshake: it joins the pool under its peer's key, if it has
    /// one and the pool has no usable connection to that peer yet.
    pub(super) fn pool_up(&mut self, conn: ConnectionHandle) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let peer = c.peer;
        let remote = self.ep.remote_address(conn);
        self.pool.push(PeerEvent::Up { peer, remote });
        self.wake(Wait::PeerEvent);
        let Some(key) = peer.map(PoolKey::Peer) else {
            return;
        };
        let usable = match self.pool.entries.get(&key) {
            Some(&Entry::Live(other)) => self
                .conns
                .get(&other)
                .is_some_and(|o| o.ended.is_none() && !o.released),
            Some(Entry::Dialing { .. }) => true,
            Some(Entry::Failed { .. }) | None => false,
        };
        if !usable {
            self.pool.entries.insert(key, Entry::Live(conn));
        }
    }

    /// `conn` ended: out of the pool, and told as an event if it had come up.
    pub(super) fn pool_down(&mut self, conn: ConnectionHandle, reason: Option<weir_core::CloseReason>) {
        self.pool
            .entries
            .retain(|_, e| !matches!(e, Entry::Live(c) if *c == conn));
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(at) = c.parked.take() {
            self.pool.parked.remove(&(at, conn));
            // Parked, it has no handle, and its idle time will not come to let it go now:
            // it goes as a connection whose last handle went does (`end` forgets it). Kept
            // before, it stayed for good, here and in the core (found by the `pool` fuzz
            // target: fuzz/findings/pool.parked-connection-kept-after-its-end).
            c.released = true;
            c.ends.clear();
        }
        let peer = c.peer;
        if let (Some(reason), true) = (reason, c.negotiated.is_some()) {
            self.pool.push(PeerEvent::Down { peer, reason });
            self.wake(Wait::PeerEvent);
        }
    }

    /// How many connections the driver keeps anything of (live, or ended and not yet
    /// taken by the application): what the `pool` fuzz target checks falls to zero once
    /// every handle went.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn connections_kept(&self) -> usize {
        self.conns.len()
    }

    /// The next connection event, oldest first.
    pub(crate) fn poll_peer_event(&mut self, waker: &Waker) -> Poll<Result<PeerEvent, Error>> {
        let r = if self.pool.missed > 0 {
            Some(Ok(PeerEvent::Missed(std::mem::take(&mut self.pool.missed))))
        } else {
            match self.pool.events.pop_front() {
                Some(e) => Some(Ok(e)),
                None => self.shutdown.as_ref().map(|_| Err(Error::Shutdown)),
            }
        };
        self.answer(r, Wait::PeerEvent, waker)
    }
}
