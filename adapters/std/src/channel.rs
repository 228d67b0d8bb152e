//! Ordered message channels with blocking calls: weir-driver's `ChannelSender` and
//! `ChannelReceiver` (spec/protocol.md §8, Channels), each call run to completion on the
//! calling thread within the handle's timeout.

use std::time::Duration;

use bytes::Bytes;

use crate::run::wait;
use crate::{Connection, Error, Label, RecvStream, StreamId};

/// The sending side of an ordered message channel ([`Connection::open_channel`]).
pub struct ChannelSender {
    inner: weir_driver::ChannelSender,
    timeout: Option<Duration>,
}

/// The receiving side of an ordered message channel ([`RecvStream::into_channel`]).
pub struct ChannelReceiver {
    inner: weir_driver::ChannelReceiver,
    timeout: Option<Duration>,
}

impl Connection {
    /// Opens an ordered message channel labelled `label`: messages sent on it arrive in
    /// order and whole, without holding back other channels (weir-driver's
    /// `Connection::open_channel`).
    pub fn open_channel(&self, label: Label) -> Result<ChannelSender, Error> {
        let inner = wait(self.timeout, self.inner.open_channel(label))?;
        Ok(ChannelSender {
            inner,
            timeout: self.timeout,
        })
    }
}

impl RecvStream {
    /// Reads this stream as an ordered message channel, taking messages of at most `limit`
    /// bytes (weir-driver's `RecvStream::into_channel`).
    pub fn into_channel(self, limit: u64) -> ChannelReceiver {
        ChannelReceiver {
            inner: self.inner.into_channel(limit),
            timeout: self.timeout,
        }
    }
}

impl ChannelSender {
    /// The channel's stream.
    pub fn id(&self) -> StreamId {
        self.inner.id()
    }

    /// Sends `message` after those sent before it; returns once it is written. A send that
    /// timed out keeps the message whole: the rest goes first at the next send or finish.
    pub fn send(&mut self, message: Bytes) -> Result<(), Error> {
        wait(self.timeout, self.inner.send(message))
    }

    /// Ends the channel; returns once the final receiver read every message.
    pub fn finish(self) -> Result<(), Error> {
        wait(self.timeout, self.inner.finish())
    }
}

impl ChannelReceiver {
    /// The channel's stream.
    pub fn id(&self) -> StreamId {
        self.inner.id()
    }

    /// The channel's label.
    pub fn label(&self) -> Option<&Label> {
        self.inner.label()
    }

    /// The next message, whole and in order; `None` once the channel is finished and read.
    pub fn recv(&mut self) -> Result<Option<Bytes>, Error> {
        wait(self.timeout, self.inner.recv())
    }
}
