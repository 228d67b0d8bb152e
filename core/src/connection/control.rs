//! Control frames (spec/protocol.md §4): the one table from a control intent ([`Control`],
//! module `recovery::sent`) to the frame it becomes when sent, and back from a lost one to
//! what it needs: sent again (with the value current then, for credit), a report of being
//! blocked renewed if still blocked, or nothing.
//!
//! Inputs: intents from the rest of the connection (`ControlQueue::push`) and the `Control`s of
//! lost packets. Outputs: frames for `poll_transmit`; the same `Control` is what recovery
//! keeps of each (`SentFrame::Control`).

use super::*;

/// The control frames waiting to be sent, in the order they were asked for, each once: a
/// second ask for one already waiting changes nothing (its value is taken when it is sent).
#[derive(Debug, Default)]
pub(super) struct ControlQueue(ThinDeque<Control>);

impl ControlQueue {
    /// Asks for `c` to be sent, unless it waits already.
    pub(super) fn push(&mut self, c: Control) {
        if !self.0.contains(&c) {
            self.0.push_back(c);
        }
    }

    /// The next to send.
    pub(super) fn front(&self) -> Option<Control> {
        self.0.front().copied()
    }

    /// The next is sent, or no longer needed.
    pub(super) fn pop_front(&mut self) {
        self.0.pop_front();
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lets go of the queue's room if nothing waits (spec §8, Liveness: a trim).
    pub(super) fn trim(&mut self) {
        self.0.trim();
    }

    /// Whether a stream's end waits to be sent (STOP_SENDING, RESET_STREAM): a lingering
    /// close waits for it.
    pub(super) fn holds_stream_end(&self) -> bool {
        self.0
            .iter()
            .any(|c| matches!(c, Control::StopSending { .. } | Control::ResetStream { .. }))
    }

    #[cfg(test)]
    pub(super) fn waiting(&self) -> impl Iterator<Item = Control> + '_ {
        self.0.iter().copied()
    }

    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        self.0.clear();
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
            Control::ResetStream { id, code, final_size } => Frame::ResetStream { id, code, final_size },
            Control::StopSending { id, code } => Frame::StopSending { id, code },
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
            // Resent as they were until acknowledged (RFC 9000 §13.3).
            Control::ResetStream { .. } | Control::StopSending { .. } => self.control.push(c),
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
        let reset = Control::ResetStream {
            id: StreamId(1),
            code: 7,
            final_size: 10,
        };
        let stop = Control::StopSending {
            id: StreamId(2),
            code: 3,
        };
        // Sent again as they were, code and final size included, with no record kept
        // elsewhere; twice lost, queued once.
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
    }
}
