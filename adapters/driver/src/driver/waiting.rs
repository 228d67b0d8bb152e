//! The calls waiting on the driver: what each waits on ([`Wait`]), its task's waker kept
//! once per task, call and key, and the wake-ups of those whose key changed. A woken call
//! polls again and registers again if it must still wait; the holder of the driver's lock
//! wakes them once it let go of it (`Shared`'s guard), sparing the call that is about to
//! ask again itself (a hand-over, [`Spared`]).
//!
//! Inputs: a waiting call's key, waker and identity (`park`, [`Driver::asking`]), the marks
//! the core's events left (`Driver::dirty`, module `events`). Output: the wakers to wake
//! (`take_woken`).

use std::collections::BTreeMap;
use std::task::Waker;

use smallvec::SmallVec;
use weir_core::wire::StreamId;
use weir_core::{ConnectionHandle, PipeId};

use super::Driver;

/// Marks of what changed kept room for between wakes (`Driver::dirty`), about 24 KiB: a
/// larger burst's room is let go once its calls are woken.
pub(super) const DIRTY_KEPT: usize = 1024;

/// What a waiting call waits on: a change to it wakes the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Wait {
    /// A client connecting.
    Accept,
    /// A pipe ending.
    Pipe(PipeId),
    /// A pool's dial (by its number) ending.
    Dial(u64),
    /// A connection coming up or going down (`PeerEvent`).
    PeerEvent,
    /// Anything on a connection (`None`: a call on the connection as a whole, woken by a
    /// change to any of its streams too), or on one of its streams.
    Conn(ConnectionHandle, Option<StreamId>),
}

/// One call's identity, for as long as it is polled: what tells a task's calls apart when
/// they share its waker. The handles make them (an exclusive handle's calls, one at a time,
/// may share one); a runtime passes them on to [`Shared::hand_over`](crate::Shared::hand_over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallId(pub(crate) u64);

/// A waiting call: its task's waker and, if it has one, its identity.
pub(super) struct Parked {
    waker: Waker,
    call: Option<CallId>,
}

impl Parked {
    /// Whether this is `call`'s registration with `waker`'s task.
    fn is(&self, call: Option<CallId>, waker: &Waker) -> bool {
        self.call == call && same_waker(&self.waker, waker)
    }
}

/// A call waiting on a connection: the connection (its slot may hold another's by then),
/// the stream or `None` (the whole connection), and the call.
pub(super) type OnConn = (ConnectionHandle, Option<StreamId>, Parked);

/// The waiting calls, by what they wait on. Calls on a connection, nearly all of them, are
/// found by the connection's slot, so that waking one costs the same however many
/// connections have a call waiting; the rest, a few keys, are in an ordered map.
///
/// All of them were in one B-tree before: with a call waiting on each of 50,000
/// connections (a server reading each), each message's wake-up and each call's parking
/// searched it, 5% of the CPU samples of `weir-bench many-worker 50000`'s message phase
/// (adapters/bench/rounds.md, issue 35's fifty-sixth round).
#[derive(Default)]
pub(super) struct Waiters {
    /// Calls on a connection, by its slot: room up to the highest slot a call waited on
    /// (64 bytes a slot), kept as `ConnTable`'s is (module `conn_table`).
    on_conns: Vec<SmallVec<[OnConn; 1]>>,
    /// How many calls `on_conns` holds.
    on_conns_count: usize,
    /// Calls on anything else.
    others: BTreeMap<Wait, SmallVec<[Parked; 1]>>,
}

impl Waiters {
    /// Whether no call waits.
    pub(super) fn is_empty(&self) -> bool {
        self.on_conns_count == 0 && self.others.is_empty()
    }

    /// How many calls wait (tests: each is kept once).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.on_conns_count + self.others.values().map(SmallVec::len).sum::<usize>()
    }

    /// Keeps `call`, of `waker`'s task, waiting on `on`, unless it already is.
    fn park(&mut self, on: Wait, waker: &Waker, call: Option<CallId>) {
        let parked = || Parked {
            waker: waker.clone(),
            call,
        };
        match on {
            Wait::Conn(conn, stream) => {
                let i = slot(conn);
                if self.on_conns.len() <= i {
                    self.on_conns.resize_with(i + 1, SmallVec::new);
                }
                let list = &mut self.on_conns[i];
                if !list
                    .iter()
                    .any(|(h, s, p)| *h == conn && *s == stream && p.is(call, waker))
                {
                    list.push((conn, stream, parked()));
                    self.on_conns_count += 1;
                }
            }
            other => {
                let list = self.others.entry(other).or_default();
                if !list.iter().any(|p| p.is(call, waker)) {
                    list.push(parked());
                }
            }
        }
    }

    /// Moves the calls waiting on `on` to `woken`.
    fn wake(&mut self, on: Wait, woken: &mut Vec<Parked>) {
        match on {
            Wait::Conn(conn, stream) => self.wake_on_conn(conn, |s| s == stream, woken),
            other => woken.extend(self.others.remove(&other).into_iter().flatten()),
        }
    }

    /// Moves the calls waiting on `conn` whose stream (`None`: the whole connection) `of`
    /// accepts to `woken`.
    fn wake_on_conn(
        &mut self,
        conn: ConnectionHandle,
        of: impl Fn(Option<StreamId>) -> bool,
        woken: &mut Vec<Parked>,
    ) {
        let Some(list) = self.on_conns.get_mut(slot(conn)) else {
            return;
        };
        let mut i = 0;
        while i < list.len() {
            if list[i].0 == conn && of(list[i].1) {
                woken.push(list.remove(i).2);
                self.on_conns_count -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// Moves every waiting call to `woken`.
    fn wake_all(&mut self, woken: &mut Vec<Parked>) {
        let on_conns = self
            .on_conns
            .iter_mut()
            .flat_map(|l| l.drain(..).map(|(_, _, p)| p));
        woken.extend(on_conns);
        woken.extend(std::mem::take(&mut self.others).into_values().flatten());
        self.on_conns_count = 0;
    }
}

/// `conn`'s index in [`Waiters::on_conns`].
fn slot(conn: ConnectionHandle) -> usize {
    conn.index() as usize
}

/// The call whose hand-over wakes the calls ([`Shared::hand_over`](crate::Shared::hand_over)):
/// it asks the driver again as soon as the hand-over ends, so its own wake-up (its task's
/// waker, for its own registrations) is spared. Another call of the same task is woken: it
/// may have been polled before this one in the task's poll and would not be polled again.
#[derive(Clone, Copy)]
pub(crate) struct Spared<'a> {
    pub(crate) waker: &'a Waker,
    pub(crate) call: CallId,
}

impl Driver {
    /// Registers `waker` to be woken when `on` changes (once: a woken call that must wait
    /// again registers again), for the call being asked ([`asking`](Self::asking)). A call
    /// polling again with the same waker is kept once ([`same_waker`]); calls without an
    /// identity are kept once per task, as before calls had one.
    pub(super) fn park(&mut self, on: Wait, waker: &Waker) {
        self.wakers.park(on, waker, self.asking);
    }

    /// Whether calls are parked waiting (perhaps for what the socket may bring): an adapter
    /// whose calls receive for themselves keeps the socket watched while so.
    pub fn has_waiting_calls(&self) -> bool {
        !self.wakers.is_empty()
    }

    /// Wakes the calls waiting on `on` (once the lock is released: [`Driver::take_woken`]).
    pub(super) fn wake(&mut self, on: Wait) {
        self.wakers.wake(on, &mut self.woken);
    }

    /// Wakes every waiting call (a shutdown's).
    pub(super) fn wake_all(&mut self) {
        self.wakers.wake_all(&mut self.woken);
    }

    /// The wakers of the calls to wake now, but for `spared`'s own: the holder of the
    /// driver's lock wakes them after releasing it ([`Shared`](crate::Shared)'s guard
    /// does), so that a task woken on another thread does not find the lock still held.
    pub(crate) fn take_woken(&mut self, spared: Option<Spared<'_>>) -> SmallVec<[Waker; 4]> {
        // (Most releases wake nothing: a draining collect costs them about 80 instructions,
        // about 20 releases a round trip.)
        if self.woken.is_empty() {
            return SmallVec::new();
        }
        let own =
            |p: &Parked| spared.is_some_and(|s| p.call == Some(s.call) && same_waker(&p.waker, s.waker));
        self.woken
            .drain(..)
            .filter(|p| !own(p))
            .map(|p| p.waker)
            .collect()
    }

    /// Wakes the calls waiting on what changed since the last time, and closes released
    /// connections whose data is all acknowledged.
    pub(super) fn wake_changed(&mut self) {
        // Taken and given back emptied, its room kept: the next change is marked without an
        // allocation. Walked in the order the core told the changes, neither sorted nor
        // deduplicated: a mark seen twice finds its calls already woken (`wake` takes them).
        // The sort cost weir-bench's sender of 1 KiB messages 1.6% of its instructions, its
        // receiver 0.7% (two marks a message each side, which no call waited on).
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut last = None;
        for &(conn, stream) in &dirty {
            if last != Some(conn) {
                last = Some(conn);
                if self.conns.get(&conn).is_some_and(|c| c.released) {
                    self.close_if_acked(conn);
                }
            }
            if self.wakers.is_empty() {
                continue;
            }
            // A change to a stream wakes the calls on it and those on the connection as a
            // whole; a change to the connection wakes every call on it.
            let of = |s: Option<StreamId>| stream.is_none() || s.is_none() || s == stream;
            self.wakers.wake_on_conn(conn, of, &mut self.woken);
        }
        if !self.accepted.is_empty() {
            self.wake(Wait::Accept);
        }
        // What waking marked (a released connection closed, say) is for the next time.
        dirty.clear();
        dirty.append(&mut self.dirty);
        if dirty.capacity() > DIRTY_KEPT {
            // A burst's room goes with it.
            dirty.shrink_to(DIRTY_KEPT);
        }
        self.dirty = dirty;
    }
}

/// Whether `a` and `b` wake the same task: the same data under equal vtables (the same four
/// functions). `Waker::will_wake` compares the vtables' addresses, and a waker's clones may
/// carry an equal vtable at another address (tokio 1.54's current-thread `block_on` waker
/// does in a release build): each poll of a waiting call then kept one more clone, as many
/// as the task polled it until it was woken.
fn same_waker(a: &Waker, b: &Waker) -> bool {
    a.data() == b.data() && a.vtable() == b.vtable()
}

#[cfg(test)]
mod tests {
    use super::super::tests::slot_reused;
    use super::*;

    /// The calls `waiters` wakes on `on`, by identity, in the order woken.
    fn woken(waiters: &mut Waiters, on: impl FnOnce(&mut Waiters, &mut Vec<Parked>)) -> Vec<u64> {
        let mut woken = Vec::new();
        on(waiters, &mut woken);
        woken.iter().map(|p| p.call.map_or(0, |c| c.0)).collect()
    }

    #[test]
    fn a_connection_s_calls_wake_by_stream_and_never_for_another_generation_of_its_slot() {
        let (old, new) = slot_reused();
        let other = ConnectionHandle::from_index(3);
        let waker = Waker::noop();
        let mut w = Waiters::default();
        let (s1, s5) = (Some(StreamId(1)), Some(StreamId(5)));
        for (call, on) in [
            (1, Wait::Conn(new, None)),
            (2, Wait::Conn(new, s1)),
            (3, Wait::Conn(new, s5)),
            (4, Wait::Conn(old, None)),
            (5, Wait::Conn(other, s1)),
            (6, Wait::Accept),
        ] {
            w.park(on, waker, Some(CallId(call)));
            w.park(on, waker, Some(CallId(call)));
        }
        assert_eq!(w.len(), 6, "each call kept once");
        let stream = |s| {
            move |w: &mut Waiters, out: &mut Vec<Parked>| w.wake_on_conn(new, |x| x.is_none() || x == s, out)
        };
        assert_eq!(
            woken(&mut w, stream(s5)),
            [1, 3],
            "the stream's and the connection's"
        );
        assert_eq!(woken(&mut w, stream(s5)), [0; 0]);
        assert_eq!(woken(&mut w, |w, out| w.wake(Wait::Conn(new, s1), out)), [2]);
        assert_eq!(woken(&mut w, |w, out| w.wake(Wait::Conn(new, None), out)), [0; 0]);
        assert_eq!(w.len(), 3, "the older generation's call, another's, accept's");
        assert_eq!(woken(&mut w, |w, out| w.wake_on_conn(old, |_| true, out)), [4]);
        assert!(!w.is_empty());
        assert_eq!(woken(&mut w, |w, out| w.wake_all(out)), [5, 6]);
        assert!(w.is_empty());
        assert_eq!(w.len(), 0);
    }
}
