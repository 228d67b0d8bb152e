//! Messages sent behind a backlog and not yet given their first turn, kept as their bytes
//! until then (module `stream_table`, which makes each one's state at its first turn or at
//! the first call that names it, and holds them in id order: module `id_queue`).
//!
//! Inputs: messages as the application sends them. Outputs: a message's bytes and header,
//! made into the state it would have had from the start.

use bytes::Bytes;

use crate::event::StreamHeader;
use crate::stream::send::SendStream;

use super::stream_state::{self, Half, KeptHeader, Rare, StreamState};

/// A message the application sent that has not had its first turn yet: its bytes and its
/// header's label and digest, 40 bytes, where the state made of it at its first turn is
/// 384.
#[derive(Debug)]
pub(super) struct Unsent {
    data: Bytes,
    rare: Rare,
}

impl Unsent {
    /// Message `data` announcing `header` (whose total length, if any, is the data's: the
    /// caller checked).
    pub(super) fn new(header: StreamHeader, data: Bytes) -> Self {
        Unsent {
            data,
            rare: stream_state::split(header).1,
        }
    }

    /// The message's length, all of it held in the send buffer.
    pub(super) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Makes `state`, empty (`StreamState::default()`), the message's: its bytes written and
    /// the stream finished, with the peer's credit for a new stream, `max_data`; its header
    /// announcing its length; queued, as it waited. The state opening a stream, writing it
    /// and finishing it makes.
    pub(super) fn fill(self, state: &mut StreamState, max_data: u64) {
        let len = self.len();
        let mut send = SendStream::new(max_data);
        send.write(self.data);
        send.finish();
        state.half = Half::Send(send);
        state.header = KeptHeader::message(len, self.rare);
        state.queued = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message made into a state is a finished send half of its bytes, its header
    /// announcing its length with its label, and queued.
    #[test]
    fn a_message_fills_the_state_a_message_sent_at_once_has() {
        let label = crate::wire::Label::new(Bytes::from_static(b"/weir/test")).unwrap();
        let header = StreamHeader {
            label: Some(label.clone()),
            ..StreamHeader::default()
        };
        let message = Unsent::new(header, Bytes::from(alloc::vec![7u8; 5]));
        assert_eq!(message.len(), 5);
        let mut state = StreamState::default();
        message.fill(&mut state, 100);
        assert!(state.queued);
        assert_eq!(state.header.total_len(), Some(5));
        assert_eq!(state.header.label(), Some(&label));
        let send = state.half.send().unwrap();
        assert_eq!(
            (
                send.write_end(),
                send.unacked(),
                send.is_finished(),
                send.max_data()
            ),
            (5, 5, true, 100)
        );
    }
}
