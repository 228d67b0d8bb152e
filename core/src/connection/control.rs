//! Control frames (spec/protocol.md §4): the one table from a control intent ([`Control`],
//! module `recovery::sent`) to the frame it becomes when sent, and back from a lost one to
//! what it needs: sent again (with the value current then, for credit), a report of being
//! blocked renewed if still blocked, or nothing.
//!
//! Inputs: intents from the rest of the connection (`ControlQueue::push`, and `reset` and
//! `stop` for a stream's end) and the `Control`s of lost and acknowledged packets. Outputs:
//! frames for `poll_transmit`; the same `Control` is what recovery keeps of each
//! (`SentFrame::Control`).
//!
//! A stream's end (RESET_STREAM, STOP_SENDING) is resent as it was until a packet carrying
//! it is acknowledged (RFC 9000 §13.3), so its values (code, and a reset's final size) are
//! kept here from the call until then, and its `Control` names only the stream. So a
//! `Control` is 16 bytes, a packet's record of one frame 24, and every packet in flight
//! keeps three inline in 72 bytes, not 96.

use alloc::collections::BTreeMap;

use super::*;

/// The control frames waiting to be sent, in the order they were asked for, each once: a
/// second ask for one already waiting changes nothing (its value is taken when it is sent).
/// With them, the values of the stream ends not yet acknowledged. One pointer while nothing
/// waits and nothing is held (an idle connection's: a trim lets the room go).
#[derive(Debug, Default)]
pub(super) struct ControlQueue(Option<Box<Waiting>>);

#[derive(Debug, Default)]
struct Waiting {
    order: VecDeque<Control>,
    /// Each stream end's (code, final size) by its `Control` (a stop's final size is 0),
    /// until acknowledged.
    ends: BTreeMap<Control, (u64, u64)>,
}

impl ControlQueue {
    /// Asks for `c` to be sent, unless it waits already.
    pub(super) fn push(&mut self, c: Control) {
        let order = &mut self.0.get_or_insert_with(Box::default).order;
        if !order.contains(&c) {
            order.push_back(c);
        }
    }

    /// Asks for stream `id`'s RESET_STREAM with `code` and `final_size`, held until
    /// acknowledged ([`end_acked`](Self::end_acked)). A stream's send half is reset once (it
    /// is gone after).
    pub(super) fn reset(&mut self, id: StreamId, code: u64, final_size: u64) {
        self.end(Control::ResetStream(id), code, final_size);
    }

    /// Asks for stream `id`'s STOP_SENDING with `code`, held until acknowledged.
    pub(super) fn stop(&mut self, id: StreamId, code: u64) {
        self.end(Control::StopSending(id), code, 0);
    }

    fn end(&mut self, c: Control, code: u64, final_size: u64) {
        self.0
            .get_or_insert_with(Box::default)
            .ends
            .insert(c, (code, final_size));
        self.push(c);
    }

    /// A stream end's (code, final size), while not yet acknowledged.
    pub(super) fn end_of(&self, c: Control) -> Option<(u64, u64)> {
        self.0.as_ref()?.ends.get(&c).copied()
    }

    /// A packet carrying stream end `c` was acknowledged: a copy still waiting, or one lost
    /// later, is no longer needed (`control_frame` then finds no values).
    pub(super) fn end_acked(&mut self, c: Control) {
        if let Some(w) = self.0.as_mut() {
            w.ends.remove(&c);
        }
    }

    /// The next to send.
    pub(super) fn front(&self) -> Option<Control> {
        self.0.as_ref()?.order.front().copied()
    }

    /// The next is sent, or no longer needed.
    pub(super) fn pop_front(&mut self) {
        if let Some(w) = self.0.as_mut() {
            w.order.pop_front();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|w| w.order.is_empty())
    }

    /// Lets the room go if nothing waits and nothing is held (spec §8, Liveness: a trim).
    pub(super) fn trim(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|w| w.order.is_empty() && w.ends.is_empty())
        {
            self.0 = None;
        }
    }

    /// Whether a stream's end waits to be sent (STOP_SENDING, RESET_STREAM): a lingering
    /// close waits for it.
    pub(super) fn holds_stream_end(&self) -> bool {
        self.0.as_ref().is_some_and(|w| {
            w.order
                .iter()
                .any(|c| matches!(c, Control::StopSending(_) | Control::ResetStream(_)))
        })
    }

    #[cfg(test)]
    pub(super) fn waiting(&self) -> impl Iterator<Item = Control> + '_ {
        self.0.iter().flat_map(|w| w.order.iter().copied())
    }

    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }

    /// Empties the order, keeping the values held (as if all were sent).
    #[cfg(test)]
    pub(super) fn clear_order(&mut self) {
        if let Some(w) = self.0.as_mut() {
            w.order.clear();
        }
    }

    /// Whether room is held (for tests of what a trim frees).
    #[cfg(test)]
    pub(super) fn has_room(&self) -> bool {
        self.0.is_some()
    }
}

impl Connection {
    /// The frame for a pending control entry; `None` if it is no longer needed.
    pub(super) fn control_frame(&self, c: Control) -> Option<Frame> {
        Some(match c {
            Control::MaxData => Frame::MaxData(self.receive_credit.limit()),
            Control::DataBlocked => Frame::DataBlocked(self.send_credit.limit()),
            Control::StreamDataBlocked(id) => Frame::StreamDataBlocked {
                id,
                limit: self.streams.get(&id)?.half.send()?.blocked_limit()?,
            },
            Control::StreamsBlocked => Frame::StreamsBlocked(self.stream_count.blocked_at()),
            Control::MaxStreamData(id) => Frame::MaxStreamData {
                id,
                max: self.streams.get(&id)?.half.recv()?.max_data(),
            },
            Control::MaxStreams => Frame::MaxStreams(self.stream_count.local_max()),
            Control::ResetStream(id) => {
                let (code, final_size) = self.control.end_of(c)?;
                Frame::ResetStream { id, code, final_size }
            }
            Control::StopSending(id) => Frame::StopSending {
                id,
                code: self.control.end_of(c)?.0,
            },
            Control::Ping => Frame::Ping,
            Control::ObservedAddress => Frame::ObservedAddress(crate::wire::ObservedAddress {
                sequence: self.address_report.told(),
                address: self.remote,
            }),
        })
    }

    /// A packet carrying `c` was lost.
    pub(super) fn on_control_lost(&mut self, c: Control) {
        match c {
            // Sent again at its value then (`control_frame`): credit if still needed, the
            // peer's newest address.
            Control::MaxData | Control::MaxStreams | Control::ObservedAddress => self.control.push(c),
            Control::MaxStreamData(id) => {
                if self.streams.get(&id).is_some_and(|s| s.half.recv().is_some()) {
                    self.control.push(c);
                }
            }
            // Resent as they were until acknowledged (RFC 9000 §13.3): while their values are
            // held, that is until a copy was acknowledged.
            Control::ResetStream(_) | Control::StopSending(_) => {
                if self.control.end_of(c).is_some() {
                    self.control.push(c);
                }
            }
            // Reported again if still blocked.
            Control::DataBlocked => self.send_credit.report_lost(),
            Control::StreamsBlocked => self.stream_count.blocked_report_lost(),
            Control::StreamDataBlocked(id) => {
                if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.half.send_mut()) {
                    send.blocked_report_lost();
                }
            }
            Control::Ping => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::unvalidated_server;
    use super::*;

    /// The way back of the table: a lost control frame is queued again as it was sent, or
    /// renewed, or dropped, by what it was.
    #[test]
    fn a_lost_control_frame_is_queued_again_only_if_still_needed() {
        let mut c = unvalidated_server(&Config::default());
        c.control.clear();
        c.control.reset(StreamId(1), 7, 10);
        c.control.stop(StreamId(2), 3);
        c.control.clear_order();
        let reset = Control::ResetStream(StreamId(1));
        let stop = Control::StopSending(StreamId(2));
        // Sent again as they were, code and final size included; twice lost, queued once.
        for c2 in [reset, stop, reset] {
            c.on_control_lost(c2);
        }
        // Nothing to resend: a PING, and credit for a stream that is gone.
        c.on_control_lost(Control::Ping);
        c.on_control_lost(Control::MaxStreamData(StreamId(9)));
        c.on_control_lost(Control::MaxData);
        assert_eq!(
            c.control.waiting().collect::<Vec<_>>(),
            [reset, stop, Control::MaxData]
        );
        // Connection credit goes out at its value when sent, not when first queued.
        assert_eq!(
            c.control_frame(Control::MaxData),
            Some(Frame::MaxData(c.receive_credit.limit()))
        );
        assert_eq!(c.control_frame(Control::MaxStreamData(StreamId(9))), None);
        assert_eq!(
            c.control_frame(reset),
            Some(Frame::ResetStream {
                id: StreamId(1),
                code: 7,
                final_size: 10
            })
        );
        assert_eq!(
            c.control_frame(stop),
            Some(Frame::StopSending {
                id: StreamId(2),
                code: 3
            })
        );
    }

    /// A stream end's values are held until a copy of it is acknowledged: a copy lost after
    /// that, or one still waiting, is no longer sent; and only then may a trim let the
    /// queue's room go. A stream's reset and its stop (both halves of a bidirectional
    /// stream) are held apart.
    #[test]
    fn a_reset_is_held_until_acknowledged_then_neither_resent_nor_kept() {
        let mut c = unvalidated_server(&Config::default());
        c.control.clear();
        let reset = Control::ResetStream(StreamId(3));
        let stop = Control::StopSending(StreamId(3));
        c.control.reset(StreamId(3), 9, 1_200);
        c.control.stop(StreamId(3), 4);
        assert_eq!(c.control.waiting().collect::<Vec<_>>(), [reset, stop]);
        assert!(c.control.holds_stream_end());
        c.control.end_acked(stop);
        assert_eq!(c.control_frame(stop), None);
        assert_eq!(
            c.control_frame(reset),
            Some(Frame::ResetStream {
                id: StreamId(3),
                code: 9,
                final_size: 1_200
            })
        );
        c.control.clear_order();
        // Sent; the queue is empty, but the reset's values are held for a loss.
        c.control.trim();
        assert!(c.control.has_room());
        c.on_control_lost(reset);
        assert_eq!(c.control.waiting().collect::<Vec<_>>(), [reset]);
        // The first copy's acknowledgement comes: the copy waiting is dropped unsent.
        c.control.end_acked(reset);
        assert_eq!(c.control_frame(reset), None);
        c.control.pop_front();
        // The second copy lost too: nothing queued, and the room goes at the next trim.
        c.on_control_lost(reset);
        assert!(c.control.is_empty());
        c.control.trim();
        assert!(!c.control.has_room());
    }
}
