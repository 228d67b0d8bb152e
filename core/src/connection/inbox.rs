//! What the application has not taken yet of the streams the peer opened (spec/protocol.md
//! §8, Streams and credit): the streams offered to `accept_stream`, in the order they
//! opened, and the messages gathered whole before a read asked, in the order they became
//! so. An owned part of the connection: it keeps these two lists and answers with the next
//! stream to hand out; the bytes stay in the streams (module `streams` reads them), and so
//! does whether a message read gathers a stream, and up to what length (`Reading::Open`:
//! looked up with the stream, on every frame that arrives).
//!
//! Inputs: a stream opened, a stream taken (accepted, read by id, stopped, piped), a
//! gathered message whole, a stream gone. Outputs: the next stream to accept, the next
//! whole message.
//!
//! Each list holds only streams still in the stream table (a stream gone is forgotten), so
//! together they hold at most as many entries as the peer may open at once.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use crate::wire::StreamId;

/// The application's inbox of one connection: nothing until the peer opens a stream (an
/// idle connection pays one pointer for it).
#[derive(Debug, Default)]
pub(super) struct Inbox(Option<Box<Lists>>);

#[derive(Debug, Default)]
struct Lists {
    /// Opened by the peer, not taken by the application: `accept_stream` hands them out.
    offered: VecDeque<StreamId>,
    /// Gathered whole (or ended otherwise: reset, too long) before a read asked.
    whole: VecDeque<StreamId>,
}

/// Takes `id` out of `list`: usually the first, so usually no walk.
fn remove(list: &mut VecDeque<StreamId>, id: StreamId) -> bool {
    if list.front() == Some(&id) {
        list.pop_front();
        return true;
    }
    match list.iter().position(|&s| s == id) {
        Some(i) => list.remove(i).is_some(),
        None => false,
    }
}

impl Inbox {
    fn lists(&mut self) -> &mut Lists {
        self.0.get_or_insert_with(Box::default)
    }

    /// Lets go of the lists if both are empty (spec §8, Liveness: a trim).
    pub(super) fn trim(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|l| l.offered.is_empty() && l.whole.is_empty())
        {
            self.0 = None;
        }
    }

    /// The peer opened `id`: offered to the application.
    pub(super) fn offer(&mut self, id: StreamId) {
        self.lists().offered.push_back(id);
    }

    /// The application took `id`, offered (the stream's `Reading` says whether it is, so
    /// that this walk is made only for a stream that is there: usually the first).
    pub(super) fn take(&mut self, id: StreamId) {
        if let Some(l) = self.0.as_mut() {
            remove(&mut l.offered, id);
        }
    }

    /// The next stream offered, taken.
    pub(super) fn accept(&mut self) -> Option<StreamId> {
        self.0.as_mut()?.offered.pop_front()
    }

    /// The `i`-th stream offered, in the order they opened.
    pub(super) fn offered_at(&self, i: usize) -> Option<StreamId> {
        self.0.as_ref()?.offered.get(i).copied()
    }

    /// `id`, gathered by a message read, is whole (or ended otherwise): next for a message
    /// read.
    pub(super) fn whole(&mut self, id: StreamId) {
        self.lists().whole.push_back(id);
    }

    /// Whether a message gathered whole waits to be taken.
    pub(super) fn has_whole(&self) -> bool {
        self.0.as_ref().is_some_and(|l| !l.whole.is_empty())
    }

    /// The next message gathered whole, taken.
    pub(super) fn next_whole(&mut self) -> Option<StreamId> {
        self.0.as_mut()?.whole.pop_front()
    }

    /// `id` is gone from the stream table, or no longer read as a message (taken out of the
    /// offered list apart: [`take`](Self::take)).
    pub(super) fn forget(&mut self, id: StreamId) {
        if let Some(l) = self.0.as_mut() {
            if !l.whole.is_empty() {
                remove(&mut l.whole, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_offered_in_order_until_taken_and_messages_come_in_the_order_they_are_whole() {
        let mut i = Inbox::default();
        for s in [1, 5, 9, 13] {
            i.offer(StreamId(s));
        }
        for s in [5, 9, 13] {
            i.take(StreamId(s));
        }
        assert_eq!((i.offered_at(0), i.offered_at(1)), (Some(StreamId(1)), None));
        i.whole(StreamId(13));
        i.whole(StreamId(9));
        assert_eq!(i.next_whole(), Some(StreamId(13)), "whole first");
        i.forget(StreamId(9));
        assert_eq!(i.next_whole(), None, "gone");
        assert_eq!(i.accept(), Some(StreamId(1)));
        assert_eq!(i.accept(), None);
    }
}
