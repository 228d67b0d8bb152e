//! End-to-end delivery receipts (spec/protocol.md §4.17 and §8, Delivery; capability
//! RECEIPTS).
//!
//! A transfer is done when the final receiver has every byte, verified where a digest was
//! sent, and the sender knows it, through any relays. An acknowledgement says only that the
//! next hop has the bytes. With RECEIPTS negotiated, the receiver of every stream answers,
//! once, with a RECEIPT: delivered (its application read the stream to the end, and the
//! digest matched if there was one) or why not. A relay answers for a piped stream only once
//! its next hop answered (module `pipe`), one relay further from the final receiver.
//!
//! This module keeps a connection's two sides of that exchange:
//!
//! - **Owed**: receipts for streams the peer sent, queued, sent, and resent if lost until
//!   acknowledged (like RESET_STREAM). Input: the connection's verdict on a stream, or the
//!   pipe's. Output: RECEIPT frames, and with RECEIPT_RUNS negotiated a RECEIPT_RUN for a
//!   set of them, all delivered through as many relays, for the same side's next streams
//!   (spec §4.17): a receiver of many messages owes one a message, most of them in sets.
//!   Where each stands between the queue and the packets in flight: [`Place`].
//! - **Held**: streams of the peer's whose application asked to confirm delivery itself
//!   (it keeps the bytes somewhere first, say, a file renamed into place). Reading such a
//!   stream to its end owes nothing yet; the application's confirmation owes RECEIPT, its
//!   stop owes RECEIPT_FAILED with its code. A digest mismatch owes RECEIPT_FAILED at once:
//!   no confirmation can make bytes that do not match delivered. Transitions, as data:
//!   [`Held`].
//! - **Awaited**: our streams whose every byte was acknowledged and whose receipt has not
//!   come. Input: streams acknowledged, RECEIPT frames. Output: each stream's [`Delivery`],
//!   once. At most [`MAX_AWAITED`] are remembered: a peer that never answers cannot make us
//!   hold more; the connection opens no new stream while the set and the streams open (any
//!   of which may come to await its receipt) reach that many.
//!
//! A receipt that comes before the stream was all acknowledged (it overtook the ACK, or the
//! stream is piped and the pipe waits for it) is the connection's to apply at once: the
//! receiver having read every byte implies it has them.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use crate::stream_slots::StreamSlots;
use crate::wire::{Delivery, ReceiptRun, StreamId};

/// Our streams awaiting their receipt that one connection remembers at most.
pub(crate) const MAX_AWAITED: usize = 4096;

/// Queue entries after the first that a run's search looks at: what bounds a frame's work
/// when the queue holds many receipts for streams too far from the first to share it.
const RUN_SCAN: usize = 128;

impl Delivery {
    /// The same outcome, reported one relay further from where it arose.
    pub(crate) fn one_relay_on(self) -> Self {
        match self {
            Delivery::Delivered { relays } => Delivery::Delivered {
                relays: relays.saturating_add(1),
            },
            Delivery::Failed { code, relays } => Delivery::Failed {
                code,
                relays: relays.saturating_add(1),
            },
        }
    }
}

/// Where a stream whose delivery the application confirms stands.
///
/// | from | input | to | owes |
/// | --- | --- | --- | --- |
/// | (none) | the application defers | `Reading` | |
/// | `Reading` | read to the end, digest matched or none | `Read` | |
/// | `Reading` | read to the end, digest mismatch | (none) | RECEIPT_FAILED VERIFICATION_FAILED |
/// | `Reading` | reset by the peer, stopped, connection gone | (none) | |
/// | `Read` | the application confirms | (none) | RECEIPT |
/// | `Read` | the application stops it with a code | (none) | RECEIPT_FAILED with the code |
///
/// A `Read` stream still counts against the peer's stream limit, so a peer cannot make an
/// application that never confirms hold more of them than it allows open streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// The application reads it; its end owes no receipt yet.
    Reading,
    /// Read to its end and matched; the application's word is awaited.
    Read,
}

/// One connection's receipts, owed, held and awaited: boxed, made by the first receipt
/// owed, held or awaited, and let go by a trim once all is empty (spec §8, Liveness), so
/// that a connection with none holds a pointer.
#[derive(Debug, Default)]
pub(crate) struct Receipts(Option<Box<Book>>);

/// The tables are indexed by stream id (module `crate::stream_slots`), not B-trees: a
/// stream per message owed a receipt on one side and awaited it on the other, four B-tree
/// insertions and removals per message, about 4% of its instructions.
#[derive(Debug, Default)]
struct Book {
    /// Streams of the peer's whose delivery the application confirms.
    held: StreamSlots<Held>,
    /// Receipts for the peer's streams, kept until acknowledged.
    owed: StreamSlots<Owed>,
    /// The outcomes of the owed receipts whose [`Owed::relays`] is [`ELSEWHERE`]: failures,
    /// and deliveries through `u32::MAX` relays or more (none in practice).
    uncommon: StreamSlots<Delivery>,
    /// Owed receipts to send (again), in the order they came to be owed. An entry whose
    /// receipt went out in a run begun elsewhere in the queue stays until it reaches the
    /// front, and is passed over there ([`Place`]: one entry a receipt at most).
    queue: VecDeque<StreamId>,
    /// Our streams acknowledged whose receipt has not come.
    awaited: StreamSlots<()>,
}

/// A receipt owed, and where it stands: 8 bytes, so that a place in the table of owed
/// receipts is 16, not the 40 a whole [`Delivery`] made it. A receiver of many messages
/// over a long path owes thousands at once, for the round trip their acknowledgements take
/// (the table held 8,192 places at the peak of weir-bench's `messages-far`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owed {
    /// Delivered through this many relays, or [`ELSEWHERE`]: the outcome is in the book's
    /// `uncommon` table.
    relays: u32,
    place: Place,
}

/// [`Owed::relays`] of a receipt whose outcome is not a delivery through fewer relays.
const ELSEWHERE: u32 = u32::MAX;

impl Owed {
    /// `delivery`'s receipt, to be sent; its outcome goes in the `uncommon` table if its
    /// relays say [`ELSEWHERE`].
    fn new(delivery: Delivery) -> Owed {
        let relays = match delivery {
            Delivery::Delivered { relays } => u32::try_from(relays).unwrap_or(ELSEWHERE),
            Delivery::Failed { .. } => ELSEWHERE,
        };
        Owed {
            relays,
            place: Place::ToSend,
        }
    }
}

/// Where an owed receipt stands between the queue and the packets in flight.
///
/// | from | input | to | queue |
/// | --- | --- | --- | --- |
/// | (none) | owed | `ToSend` | its entry pushed |
/// | `ToSend` | sent, its entry at the front | `Sent` | the entry popped |
/// | `ToSend` | sent in a set begun further on | `SentEntryLeft` | |
/// | `SentEntryLeft` | its entry reaches the front | `Sent` | the entry popped |
/// | `Sent` | its packet lost | `ToSend` | its entry pushed |
/// | `SentEntryLeft` | its packet lost | `ToSend` | (its entry is still there) |
/// | any | its packet acknowledged | (none) | an entry left is popped at the front |
///
/// So a receipt has at most one entry in the queue, however often it is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// To be sent (again); its entry is in the queue.
    ToSend,
    /// In a packet; its entry is still in the queue, to be passed over at the front.
    SentEntryLeft,
    /// In a packet; no entry in the queue.
    Sent,
}

impl Book {
    /// Whether `id`'s receipt is to be sent, delivered through `relays` relays (not
    /// [`ELSEWHERE`]).
    fn to_send_with(&self, id: StreamId, relays: u32) -> bool {
        self.owed
            .get(id)
            .is_some_and(|o| o.place == Place::ToSend && o.relays == relays)
    }

    /// The outcome `id`'s receipt, `owed`, says.
    fn outcome(&self, id: StreamId, owed: Owed) -> Delivery {
        match owed.relays {
            // `owe` files every such outcome, and only `remove` takes it out, with the
            // receipt; the fallback is never taken.
            ELSEWHERE => self.uncommon.get(id).copied().unwrap_or(Delivery::Delivered {
                relays: u64::from(ELSEWHERE),
            }),
            relays => Delivery::Delivered {
                relays: u64::from(relays),
            },
        }
    }

    /// Forgets `id`'s receipt.
    fn remove(&mut self, id: StreamId) {
        if self.owed.remove(id).is_some_and(|o| o.relays == ELSEWHERE) {
            self.uncommon.remove(id);
        }
    }

    /// The receipt at the queue's front that is to be sent, after dropping the entries
    /// before it whose receipt is not: no longer owed, or sent in a set (one lookup each).
    // Inlined: called on every poll with receipts queued, as a call it cost an in-memory
    // round trip 138 instructions (33,364 against 33,226).
    #[inline]
    fn front_to_send(&mut self) -> Option<(StreamId, Owed)> {
        loop {
            let &id = self.queue.front()?;
            match self.owed.get_mut(id) {
                Some(o) if o.place == Place::ToSend => return Some((id, *o)),
                Some(o) => o.place = Place::Sent,
                None => {}
            }
            self.queue.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.held.is_empty()
            && self.owed.is_empty()
            && self.uncommon.is_empty()
            && self.queue.is_empty()
            && self.awaited.is_empty()
    }
}

impl Receipts {
    fn book(&mut self) -> &mut Book {
        self.0.get_or_insert_with(Box::default)
    }

    /// Lets go of the book if nothing is in it, or shrinks its tables to fit (spec §8,
    /// Liveness: a trim).
    pub(crate) fn trim(&mut self) {
        match self.0.as_deref_mut() {
            Some(book) if book.is_empty() => self.0 = None,
            Some(book) => {
                book.held.trim();
                book.owed.trim();
                book.uncommon.trim();
                book.awaited.trim();
            }
            None => {}
        }
    }

    /// Owes the peer a receipt for its stream `id` (once: a second verdict is ignored).
    pub(crate) fn owe(&mut self, id: StreamId, delivery: Delivery) {
        let book = self.book();
        let owed = Owed::new(delivery);
        if book.owed.insert_new(id, owed) {
            if owed.relays == ELSEWHERE {
                book.uncommon.insert(id, delivery);
            }
            book.queue.push_back(id);
        }
    }

    /// The next receipts to send in one frame, as `(first, delivery, also)`: the queue's
    /// first, and with `more_max` above 0 up to that many more owed the same delivered
    /// outcome for the same side's next 62 streams after it (bit `i` of `also`: stream
    /// `first + 2 × (i + 1)`, as RECEIPT_RUN says them). They are found among the next
    /// [`RUN_SCAN`] entries of the queue, not only those next to the first: a receiver
    /// reads the messages that came whole in one datagram before those that spanned two,
    /// so its receipts are owed for ids 0, 4, 8, … and then 2, 10, …. They stay owed until
    /// acknowledged.
    pub(crate) fn next_to_send(&mut self, more_max: u64) -> Option<(StreamId, Delivery, u64)> {
        let book = self.0.as_deref_mut()?;
        let (first, owed) = book.front_to_send()?;
        let delivery = book.outcome(first, owed);
        // A failure goes alone (RECEIPT_RUN says deliveries only), and so does a delivery
        // through `ELSEWHERE` relays or more.
        if more_max == 0 || book.queue.len() == 1 || owed.relays == ELSEWHERE {
            return Some((first, delivery, 0));
        }
        let (mut also, mut more) = (0u64, 0);
        for &id in book.queue.iter().skip(1).take(RUN_SCAN) {
            let Some(bit) = ReceiptRun::bit_of(first, id) else {
                continue;
            };
            if also & bit == 0 && book.to_send_with(id, owed.relays) {
                also |= bit;
                more += 1;
                if more == more_max {
                    break;
                }
            }
        }
        Some((first, delivery, also))
    }

    /// The receipts `next_to_send` gave went into a packet: `first` and those `also` names.
    pub(crate) fn sent(&mut self, first: StreamId, also: u64) {
        let Some(book) = self.0.as_deref_mut() else {
            return;
        };
        // The first is the queue's front (`next_to_send`): its entry goes at once.
        if let Some(o) = book.owed.get_mut(first) {
            o.place = if book.queue.front() == Some(&first) {
                book.queue.pop_front();
                Place::Sent
            } else {
                Place::SentEntryLeft
            };
        }
        if also != 0 {
            for id in ReceiptRun::ids_of(first, also).skip(1) {
                // (`next_to_send` named only receipts to send: their entries are queued.)
                if let Some(o) = book.owed.get_mut(id).filter(|o| o.place == Place::ToSend) {
                    o.place = Place::SentEntryLeft;
                }
            }
            book.front_to_send();
        }
    }

    /// Drops queue entries whose receipt is not to be sent.
    pub(crate) fn skip_stale(&mut self) {
        if let Some(book) = self.0.as_deref_mut().filter(|b| !b.queue.is_empty()) {
            book.front_to_send();
        }
    }

    /// The packet carrying the receipts for `first` and the streams `also` names was
    /// acknowledged.
    pub(crate) fn on_acked(&mut self, first: StreamId, also: u64) {
        if let Some(book) = self.0.as_deref_mut() {
            for id in ReceiptRun::ids_of(first, also) {
                book.remove(id);
            }
        }
    }

    /// The packet carrying the receipts for `first` and the streams `also` names was lost:
    /// those still owed are to be sent again (queued at the back, or where their entry
    /// still is).
    pub(crate) fn on_lost(&mut self, first: StreamId, also: u64) {
        if let Some(book) = self.0.as_deref_mut() {
            for id in ReceiptRun::ids_of(first, also) {
                let Some(o) = book.owed.get_mut(id) else {
                    continue;
                };
                if o.place == Place::Sent {
                    book.queue.push_back(id);
                }
                o.place = Place::ToSend;
            }
        }
    }

    /// Receipts owed and not yet acknowledged.
    pub(crate) fn owed(&self) -> usize {
        self.0.as_deref().map_or(0, |b| b.owed.len())
    }

    /// Whether a receipt waits to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        self.0.as_deref().is_some_and(|b| !b.queue.is_empty())
    }

    /// The application confirms the delivery of the peer's stream `id` itself.
    pub(crate) fn hold(&mut self, id: StreamId) {
        self.book().held.insert(id, Held::Reading);
    }

    /// The application read stream `id` to its end, and it matched: whether its receipt
    /// waits for the application (true) or is owed now (false).
    pub(crate) fn on_read_to_end(&mut self, id: StreamId) -> bool {
        match self.0.as_deref_mut().and_then(|b| b.held.get_mut(id)) {
            Some(h) => {
                *h = Held::Read;
                true
            }
            None => false,
        }
    }

    /// Stream `id` ended without being read to its end (reset, stopped, or its digest did
    /// not match): nothing is held for it any more.
    pub(crate) fn forget_unread(&mut self, id: StreamId) {
        if let Some(book) = self.0.as_deref_mut() {
            if book.held.get(id) == Some(&Held::Reading) {
                book.held.remove(id);
            }
        }
    }

    /// The application's word on stream `id` came: whether the stream was read to its end
    /// and held (its receipt is now owed).
    pub(crate) fn settle(&mut self, id: StreamId) -> bool {
        let Some(book) = self.0.as_deref_mut() else {
            return false;
        };
        if book.held.get(id) != Some(&Held::Read) {
            return false;
        }
        book.held.remove(id);
        true
    }

    /// Where stream `id` stands, if its delivery is the application's to confirm.
    pub(crate) fn held(&self, id: StreamId) -> Option<Held> {
        self.0.as_deref()?.held.get(id).copied()
    }

    /// Our stream `id` was all acknowledged: its receipt is awaited.
    pub(crate) fn await_receipt(&mut self, id: StreamId) {
        self.book().awaited.insert(id, ());
    }

    /// A receipt for our stream `id` came: whether it was awaited (and is no more).
    pub(crate) fn take_awaited(&mut self, id: StreamId) -> bool {
        self.0
            .as_deref_mut()
            .is_some_and(|b| b.awaited.remove(id).is_some())
    }

    /// Whether any receipt is awaited.
    pub(crate) fn awaiting(&self) -> bool {
        self.0.as_deref().is_some_and(|b| !b.awaited.is_empty())
    }

    /// Whether, with `open` more streams that may come to await theirs, as many receipts
    /// would be awaited as are remembered.
    pub(crate) fn awaited_full(&self, open: usize) -> bool {
        let awaited = self.0.as_deref().map_or(0, |b| b.awaited.len());
        awaited.saturating_add(open) >= MAX_AWAITED
    }

    /// Every receipt still owed (for the CLOSE packet), in the table's order: deterministic,
    /// not the ids' (module `crate::stream_slots`).
    pub(crate) fn owed_frames(&self) -> impl Iterator<Item = (StreamId, Delivery)> + '_ {
        self.0
            .iter()
            .flat_map(|b| b.owed.iter().map(|(id, &o)| (id, b.outcome(id, o))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Side, VERIFICATION_FAILED};
    use alloc::vec::Vec;

    fn id(n: u64) -> StreamId {
        StreamId::new(Side::Client, n)
    }

    #[test]
    fn an_owed_receipt_is_sent_until_acknowledged() {
        let mut r = Receipts::default();
        r.owe(id(1), Delivery::Delivered { relays: 0 });
        r.owe(id(1), Delivery::Failed { code: 5, relays: 0 });
        let delivered = Delivery::Delivered { relays: 0 };
        assert_eq!(
            r.next_to_send(0),
            Some((id(1), delivered, 0)),
            "the first verdict stands"
        );
        r.sent(id(1), 0);
        assert_eq!(r.next_to_send(0), None);
        r.on_lost(id(1), 0);
        r.on_lost(id(1), 0);
        assert_eq!(r.next_to_send(0), Some((id(1), delivered, 0)));
        r.sent(id(1), 0);
        assert_eq!(r.next_to_send(0), None, "queued once however often lost");
        r.on_acked(id(1), 0);
        assert_eq!(r.owed(), 0);
        r.on_lost(id(1), 0);
        assert_eq!(r.next_to_send(0), None, "an acknowledged receipt is not resent");
        assert!(r.0.is_some());
        r.trim();
        assert!(r.0.is_none(), "a trim lets the empty book go");
    }

    /// Receipts go in a run only for the same side's next 62 streams after the first,
    /// owed the same delivered outcome, up to the number asked for; a run is acknowledged
    /// and lost as a whole.
    #[test]
    fn owed_receipts_go_as_one_run() {
        let mut r = Receipts::default();
        let delivered = Delivery::Delivered { relays: 0 };
        for n in [1, 2, 3, 4, 6, 7] {
            r.owe(id(n), delivered);
        }
        r.owe(id(8), Delivery::Delivered { relays: 1 });
        r.owe(id(9), Delivery::Failed { code: 3, relays: 0 });
        r.owe(id(70), delivered);
        r.owe(id(10), delivered);
        assert_eq!(r.next_to_send(0), Some((id(1), delivered, 0)), "runs off");
        assert_eq!(
            r.next_to_send(2),
            Some((id(1), delivered, 0b11)),
            "as many as asked"
        );
        assert_eq!(
            r.next_to_send(100),
            Some((id(1), delivered, 0b1_0011_0111)),
            "2, 3, 4, 6, 7 and 10; not 8 (other relays), 9 (a failure) or 70 (too far)"
        );
        r.sent(id(1), 0b1_0011_0111);
        assert_eq!(
            r.next_to_send(100),
            Some((id(8), Delivery::Delivered { relays: 1 }, 0)),
            "other relays, another run"
        );
        r.sent(id(8), 0);
        assert_eq!(
            r.next_to_send(100),
            Some((id(9), Delivery::Failed { code: 3, relays: 0 }, 0)),
            "a failure goes alone"
        );
        r.sent(id(9), 0);
        assert_eq!(r.next_to_send(100), Some((id(70), delivered, 0)));
        r.sent(id(70), 0);
        assert_eq!(r.next_to_send(100), None, "10 went with 1");
        r.on_lost(id(1), 0b1_0011_0111);
        assert_eq!(
            r.next_to_send(100),
            Some((id(1), delivered, 0b1_0011_0111)),
            "lost whole, resent whole"
        );
        r.on_acked(id(1), 0b1_0011_0111);
        assert_eq!(r.owed(), 3);
        r.on_lost(id(1), 0b1_0011_0111);
        assert_eq!(r.next_to_send(100), None, "acknowledged receipts are not resent");
    }

    /// A receiver reads the messages that came whole before those that spanned two
    /// datagrams: its receipts are owed out of id order, and a run gathers those after the
    /// first from further back in the queue. What went in a run is passed over when its own
    /// entry reaches the front, and a receipt lost again has one entry at most.
    #[test]
    fn a_run_gathers_receipts_owed_out_of_order() {
        let mut r = Receipts::default();
        let delivered = Delivery::Delivered { relays: 0 };
        for n in [0, 2, 4, 6, 1, 3, 5] {
            r.owe(id(n), delivered);
        }
        assert_eq!(r.next_to_send(100), Some((id(0), delivered, 0b11_1111)));
        r.sent(id(0), 0b1010);
        assert_eq!(
            r.next_to_send(100),
            Some((id(6), delivered, 0)),
            "2 and 4 went with 0; 1, 3 and 5 are below 6"
        );
        r.sent(id(6), 0);
        assert_eq!(r.next_to_send(100), Some((id(1), delivered, 0b1010)));
        r.sent(id(1), 0b1010);
        assert_eq!(r.next_to_send(100), None, "every entry left was sent");
        r.on_lost(id(0), 0b1010);
        r.on_lost(id(0), 0b1010);
        r.on_lost(id(6), 0);
        let book = r.0.as_deref().unwrap();
        assert_eq!(book.queue.len(), 4, "one entry a receipt however often lost");
        assert_eq!(r.next_to_send(100), Some((id(0), delivered, 0b10_1010)));
    }

    /// An owed receipt's place in its table is 16 bytes: its stream id, its relays and
    /// where it stands. What a failure or a delivery through `u32::MAX` relays or more says
    /// is kept beside it, told whole, and forgotten with it.
    #[test]
    fn an_owed_receipt_is_kept_in_16_bytes_and_an_uncommon_outcome_beside_it() {
        assert_eq!(core::mem::size_of::<Option<(StreamId, Owed)>>(), 16);
        let mut r = Receipts::default();
        let failed = Delivery::Failed {
            code: VERIFICATION_FAILED,
            relays: 3,
        };
        let far = Delivery::Delivered {
            relays: u64::from(u32::MAX) + 7,
        };
        let near = Delivery::Delivered {
            relays: u64::from(u32::MAX) - 1,
        };
        r.owe(id(0), failed);
        r.owe(id(1), far);
        r.owe(id(2), far);
        r.owe(id(3), near);
        r.owe(id(4), near);
        let mut close: Vec<_> = r.owed_frames().collect();
        close.sort_unstable_by_key(|&(id, _)| id);
        assert_eq!(
            close,
            [
                (id(0), failed),
                (id(1), far),
                (id(2), far),
                (id(3), near),
                (id(4), near)
            ]
        );
        assert_eq!(r.next_to_send(100), Some((id(0), failed, 0)));
        r.sent(id(0), 0);
        assert_eq!(r.next_to_send(100), Some((id(1), far, 0)), "alone, not in a run");
        r.sent(id(1), 0);
        assert_eq!(r.next_to_send(100), Some((id(2), far, 0)));
        r.sent(id(2), 0);
        assert_eq!(r.next_to_send(100), Some((id(3), near, 0b1)), "a run");
        r.sent(id(3), 0b1);
        for (first, also) in [(id(0), 0), (id(1), 0), (id(2), 0), (id(3), 0b1)] {
            r.on_acked(first, also);
        }
        let book = r.0.as_deref().unwrap();
        assert!(book.owed.is_empty() && book.uncommon.is_empty());
    }

    #[test]
    fn a_held_receipt_is_owed_only_on_the_application_s_word() {
        let mut r = Receipts::default();
        r.hold(id(1));
        assert!(!r.settle(id(1)), "not read yet");
        assert!(r.on_read_to_end(id(1)));
        assert_eq!(r.next_to_send(0), None, "read to the end owes nothing yet");
        r.forget_unread(id(1));
        assert_eq!(r.held(id(1)), Some(Held::Read), "a read stream is not forgotten");
        assert!(r.settle(id(1)));
        assert!(!r.settle(id(1)), "settled once");
        assert!(
            !r.on_read_to_end(id(3)),
            "a stream not held owes its receipt at once"
        );
        r.hold(id(5));
        r.forget_unread(id(5));
        assert_eq!(r.held(id(5)), None);
    }

    #[test]
    fn awaited_receipts_are_taken_once() {
        let mut r = Receipts::default();
        r.await_receipt(id(2));
        assert!(r.take_awaited(id(2)));
        assert!(!r.take_awaited(id(2)), "a duplicate receipt changes nothing");
        for n in 0..MAX_AWAITED as u64 {
            r.await_receipt(id(n));
        }
        assert!(r.awaited_full(0));
        assert!(r.take_awaited(id(0)));
        assert!(!r.awaited_full(0));
        assert!(r.awaited_full(1), "a stream open counts too");
    }

    #[test]
    fn a_receipt_counts_the_relays_it_passes() {
        assert_eq!(
            Delivery::Delivered { relays: 0 }.one_relay_on(),
            Delivery::Delivered { relays: 1 }
        );
    }
}
