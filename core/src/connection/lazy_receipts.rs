//! Receipts acknowledged lazily (capability LAZY_RECEIPT_ACKS; spec/protocol.md §4.17 and
//! §8, Acknowledgements): which packets of ours go as *lazy* packets and which of the
//! peer's we answer lazily, and what gives a lazy packet's receipts up to be sent again.
//!
//! Without it a message on an otherwise quiet connection costs three datagrams: the data,
//! the receiver's ACK with the message's RECEIPT, and the sender's acknowledgement of that
//! receipt within its ACK delay. With it the receipt is acknowledged within
//! `LAZY_ACK_DELAY` (250 ms) or by whatever packet the sender sends first, so a connection
//! with a message every quarter second or more often pays two.
//!
//! The receipt's truth does not rest on that acknowledgement coming: its sender keeps the
//! receipt until it does, and sends it again when the thresholds declare its packet lost,
//! when the peer's PING arrives (a probe of a sender whose data or receipt went missing,
//! or a keep-alive: its answer carries every receipt not yet acknowledged), when the lazy
//! timer runs out (the peer's lazy delay and a probe period), or when it closes (a lingering
//! close waits for every receipt's acknowledgement, so receipts then ride with a PING).
//!
//! Inputs: the negotiated capabilities, a packet's frames, the peer's PING, the close.
//! Outputs: [`AckWanted`] for a received frame or packet, whether a packet we built goes
//! lazily, receipts queued again.

use super::*;

/// What `frame` asks of our acknowledgements, with lazy receipt acknowledgements `lazy`
/// negotiated or not.
#[inline]
pub(super) fn frame_ack_wanted(frame: &Frame, lazy: bool) -> AckWanted {
    match frame {
        Frame::Receipt { .. } | Frame::ReceiptRun(_) if lazy => AckWanted::Lazily,
        f if f.is_ack_eliciting() => AckWanted::Promptly,
        _ => AckWanted::Nothing,
    }
}

impl Connection {
    /// Whether receipts go in packets acknowledged lazily: both sides send receipts and
    /// answer them lazily (capabilities RECEIPTS and LAZY_RECEIPT_ACKS).
    pub(super) fn lazy_receipt_acks_on(&self) -> bool {
        let both = Capabilities::RECEIPTS.union(Capabilities::LAZY_RECEIPT_ACKS);
        self.negotiated.is_some_and(|n| n.capabilities.contains(both))
    }

    /// What a received packet asks of our acknowledgements: what its most demanding frame
    /// asks.
    pub(super) fn packet_ack_wanted(&self, packet: &Packet) -> AckWanted {
        let lazy = self.lazy_receipt_acks_on();
        packet
            .frames()
            .map(|f| frame_ack_wanted(&f, lazy))
            .max()
            .unwrap_or(AckWanted::Nothing)
    }

    /// Whether a packet that carried `sent` goes as a lazy packet: receipts are all it
    /// carried that asks for an acknowledgement, and the peer answers them lazily.
    pub(super) fn sends_lazily(&self, sent: &SentFrames) -> bool {
        !sent.is_empty()
            && sent.iter().all(|f| matches!(f, SentFrame::Receipt { .. }))
            && self.lazy_receipt_acks_on()
    }

    /// Whether the packet being built, which will carry receipts, needs a PING so that the
    /// peer acknowledges it at once: a lingering close waits for every receipt's
    /// acknowledgement, and must not wait a lazy delay for each.
    pub(super) fn receipts_need_ping(&self) -> bool {
        matches!(self.state, State::Lingering { .. }) && self.lazy_receipt_acks_on()
    }

    /// Sends again, in the next packets, the receipts of every lazy packet not yet
    /// acknowledged: the peer's PING asks for an answer it may wait on, and a close waits
    /// for every receipt's acknowledgement.
    pub(super) fn resend_lazy_receipts(&mut self) {
        let given_up = self.recovery.give_up_lazy();
        self.queue_lazy_receipts_again(given_up);
    }

    /// Lazy packets acknowledged: their receipts are done.
    pub(super) fn on_lazy_acked(&mut self, acked: Vec<SentPacket>) {
        for packet in acked {
            for &frame in packet.frames.iter() {
                if let SentFrame::Receipt { first, also } = frame {
                    self.receipts.on_acked(first, also);
                }
            }
        }
        self.release_slots_held_for_receipts();
    }

    /// Lazy packets declared lost (by the thresholds or the lazy timer): their receipts
    /// still owed are queued again. No congestion signal: they were never in flight.
    pub(super) fn on_lazy_lost(&mut self, lost: Vec<SentPacket>) {
        self.stats.packets_lost += lost.len() as u64;
        self.queue_lazy_receipts_again(lost);
    }

    /// The receipts still owed of lazy packets lost or given up, queued again.
    fn queue_lazy_receipts_again(&mut self, packets: Vec<SentPacket>) {
        for packet in packets {
            for &frame in packet.frames.iter() {
                if let SentFrame::Receipt { first, also } = frame {
                    self.receipts.on_lost(first, also);
                }
            }
        }
    }
}
