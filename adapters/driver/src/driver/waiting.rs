//! The calls waiting on the driver: what each waits on ([`Wait`]), its task's waker kept
//! once per task, call and key, and the wake-ups of those whose key changed. A woken call
//! polls again and registers again if it must still wait; the holder of the driver's lock
//! wakes them once it let go of it (`Shared`'s guard), sparing the call that is about to
//! ask again itself (a hand-over, [`Spared`]).
//!
//! Inputs: a waiting call's key, waker and identity (`park`, [`Driver::asking`]), the marks
//! the core's events left (`Driver::dirty`, module `events`). Output: the wakers to wake
//! (`take_woken`).

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
        let call = self.asking;
        let parked = self.wakers.entry(on).or_default();
        if !parked
            .iter()
            .any(|p| p.call == call && same_waker(&p.waker, waker))
        {
            parked.push(Parked {
                waker: waker.clone(),
                call,
            });
        }
    }

    /// Whether calls are parked waiting (perhaps for what the socket may bring): an adapter
    /// whose calls receive for themselves keeps the socket watched while so.
    pub fn has_waiting_calls(&self) -> bool {
        !self.wakers.is_empty()
    }

    /// Wakes the calls waiting on `on` (once the lock is released: [`Driver::take_woken`]).
    pub(super) fn wake(&mut self, on: Wait) {
        if let Some(wakers) = self.wakers.remove(&on) {
            self.woken.extend(wakers);
        }
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
            match stream {
                Some(s) => {
                    self.wake(Wait::Conn(conn, None));
                    self.wake(Wait::Conn(conn, Some(s)));
                }
                None => {
                    let all: SmallVec<[Wait; 4]> = self
                        .wakers
                        .range(Wait::Conn(conn, None)..=Wait::Conn(conn, Some(StreamId(u64::MAX))))
                        .map(|(k, _)| *k)
                        .collect();
                    all.into_iter().for_each(|k| self.wake(k));
                }
            }
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
