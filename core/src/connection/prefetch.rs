//! The memory an event of a connection is about to use, shown to the host's prefetch hook
//! ([`Config::prefetch`](crate::Config::prefetch)) as the event reaches the connection.
//!
//! Input: the connection. Output: calls of the hook, one for each allocation (or the part
//! of one) with its start and its length: the connection itself, its congestion
//! controller, its packet protection and the protection's expanded keys, then its stream
//! table's slots (if few), what an active connection's table keeps and the spare box the
//! next new stream's state is made in, and the oldest and newest of its packets in flight.
//! (The endpoint shows its own entries for the connection's slot first: module
//! `endpoint::prefetching`.) Nothing else changes, and no output of the core depends on
//! what the hook does.
//!
//! Why: among many connections, each one's state is cold by its next event (at 100,000
//! connections with a message each every 100 ms, every other connection's state has gone
//! through the caches meanwhile), and it lies in allocations the event's handling reaches
//! one after another, a pointer in one leading to the next. Handled in turn, each cache miss
//! waits for the one before; shown first, the loads overlap, and the connection's turn
//! waits about as long as the slowest of them. adapters/bench/rounds.md ("After the
//! fifty-fourth round: cold connections' memory shown first") has the figures.

use core::mem::size_of_val;

use super::Connection;
use crate::congestion::CongestionController;

impl Connection {
    /// Shows `show` (the endpoint's call of the hook) the memory an event of this
    /// connection is about to use, each range as its start and its length (module docs).
    pub(crate) fn prefetch(&self, show: &mut impl FnMut(*const u8, usize)) {
        // The connection first: its own address is known without reading it, and the
        // pointers to the rest are in it.
        show((self as *const Self).cast(), size_of_val(self));
        let cc: *const dyn CongestionController = &*self.cc;
        show(cc.cast(), size_of_val(&*self.cc));
        if let Some(protection) = self.crypto.as_deref() {
            protection.prefetch(show);
        }
        // What a message sent, received or acknowledged reaches next.
        self.streams.prefetch(show);
        self.recovery.prefetch(show);
    }
}
