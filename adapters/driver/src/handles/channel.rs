//! Ordered message channels (spec/protocol.md §8, Channels): one stream per channel, each
//! message on it a varint length and that many bytes. Messages sent on one channel arrive
//! in the order sent, with their boundaries; channels are independent streams, so a channel
//! whose reader lags holds back no other (each stream has its own flow control).
//! `send_message` stays the default for independent messages, each a stream of its own and
//! in no order.
//!
//! Copies: a message's bytes go out as the caller's `Bytes` (its length prefix is a small
//! chunk of its own); a message that arrived in one piece is handed over as a slice of it,
//! and one that spans pieces is joined into one buffer (one copy of that message only).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use weir_core::wire::varint::{self, VarintError};
use weir_core::wire::{Label, StreamId};
use weir_core::StreamHeader;

use super::{Connection, RecvStream, SendStream};
use crate::Error;

/// The stream error code a channel's reader stops the stream with when the sender broke
/// the framing or sent a message over the reader's limit (`0x6368616e`, "chan").
pub const CHANNEL_REFUSED: u64 = 0x6368_616e;

/// How a channel's sender broke its framing, as its reader saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A message longer than the reader takes ([`RecvStream::into_channel`]'s limit).
    #[error("a {len}-byte message, over the {limit}-byte limit")]
    TooLong {
        /// The length the sender announced.
        len: u64,
        /// The reader's limit.
        limit: u64,
    },
    /// The stream ended inside a message (or its length).
    #[error("the channel ended {missing} bytes short of its last message")]
    Truncated {
        /// Bytes the last message still lacked (at least 1).
        missing: u64,
    },
    /// A length not in the shortest varint form (spec §2.1).
    #[error("a message length not in its shortest form")]
    NonMinimalLength,
}

/// What the front of a channel's buffer holds.
enum Next {
    /// A whole message.
    Message(Bytes),
    /// Part of one, lacking this many bytes (at least 1).
    Lacks(u64),
}

/// The sending side of an ordered message channel ([`Connection::open_channel`]).
///
/// Cancel-safety: a [`send`](Self::send) dropped before it returns keeps the message whole
/// in the channel: what it had not written goes out first at the next send or at
/// [`finish`](Self::finish), so the framing never breaks.
pub struct ChannelSender {
    stream: SendStream,
    /// Pieces (a length prefix, a message) not yet written, in order.
    queued: VecDeque<Bytes>,
}

impl ChannelSender {
    /// The channel's stream.
    pub fn id(&self) -> StreamId {
        self.stream.id()
    }

    /// Sends `message` after every message sent before it on this channel; ready once it
    /// is all written (handed to the core, within the stream's flow control), not when it
    /// arrived: [`finish`](Self::finish) waits for that.
    pub async fn send(&mut self, message: Bytes) -> Result<(), Error> {
        let mut prefix = [0u8; 8];
        let len = varint::encode(message.len() as u64, &mut prefix)
            .ok_or(Error::Refused(weir_core::ApiError::MessageTooLong))?;
        self.queued.push_back(Bytes::copy_from_slice(&prefix[..len]));
        if !message.is_empty() {
            self.queued.push_back(message);
        }
        self.drain().await
    }

    /// Ends the channel after the messages sent; returns once the final receiver read them
    /// all ([`SendStream::finish`]). A reader that refused the channel (a message over its
    /// limit, [`CHANNEL_REFUSED`]) is [`Error::NotDelivered`] with its code, also when its
    /// stop met messages still going out.
    pub async fn finish(mut self) -> Result<(), Error> {
        self.drain().await.map_err(|e| match e {
            Error::Stopped { code } => crate::driver::refused(code),
            e => e,
        })?;
        self.stream.finish().await
    }

    /// Writes what is queued. A write takes nothing unless it is ready, and what it took is
    /// cut off the queue only then, so a drop between writes loses nothing.
    async fn drain(&mut self) -> Result<(), Error> {
        while let Some(front) = self.queued.front() {
            let n = self.stream.write_chunk(front.clone()).await?;
            if let Some(front) = self.queued.front_mut() {
                front.advance(n);
                if front.is_empty() {
                    self.queued.pop_front();
                }
            }
        }
        Ok(())
    }
}

/// The receiving side of an ordered message channel ([`RecvStream::into_channel`]).
///
/// Cancel-safety: a [`recv`](Self::recv) dropped before it returns loses nothing: what it
/// read waits for the next one.
pub struct ChannelReceiver {
    stream: Option<RecvStream>,
    id: StreamId,
    header: StreamHeader,
    limit: u64,
    /// Bytes read and not yet handed over, in pieces as they came.
    pieces: VecDeque<Bytes>,
    held: u64,
    /// How the sender broke the channel, once it did: every later receive says so.
    broken: Option<ChannelError>,
}

impl ChannelReceiver {
    /// The channel's stream.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The channel's label, as its sender opened it.
    pub fn label(&self) -> Option<&Label> {
        self.header.label.as_ref()
    }

    /// The next message, whole and in order; `None` once the sender finished the channel
    /// and every message was handed over. Fails with [`Error::Channel`] if the sender broke
    /// the framing or sent a message over the limit (the stream is then stopped with
    /// [`CHANNEL_REFUSED`], which the sender hears), or with the stream's or connection's
    /// end.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, Error> {
        if let Some(e) = self.broken {
            return Err(Error::Channel(e));
        }
        loop {
            let need = match self.next_message() {
                Ok(Next::Message(message)) => return Ok(Some(message)),
                Ok(Next::Lacks(need)) => need,
                Err(e) => return Err(self.refuse(e)),
            };
            let Some(stream) = self.stream.as_mut() else {
                return Ok(None);
            };
            // What the message lacks and the next one's length at most: the channel holds
            // one message at a time.
            let want = usize::try_from(need).unwrap_or(usize::MAX).saturating_add(8);
            match stream.read_chunk(want).await? {
                Some(piece) => {
                    self.held += piece.len() as u64;
                    self.pieces.push_back(piece);
                }
                None if self.held == 0 => {
                    self.stream = None;
                    return Ok(None);
                }
                None => {
                    self.stream = None;
                    let e = ChannelError::Truncated { missing: need };
                    self.broken = Some(e);
                    return Err(Error::Channel(e));
                }
            }
        }
    }

    /// The message at the front if all of it is here, else how many bytes it lacks (at
    /// least 1; its length's, while that is not whole).
    fn next_message(&mut self) -> Result<Next, ChannelError> {
        let Some((len, prefix)) = self.length()? else {
            return Ok(Next::Lacks(1));
        };
        if len > self.limit {
            return Err(ChannelError::TooLong {
                len,
                limit: self.limit,
            });
        }
        let whole = prefix as u64 + len;
        if self.held < whole {
            return Ok(Next::Lacks(whole - self.held));
        }
        self.take(prefix);
        Ok(Next::Message(self.take(len as usize)))
    }

    /// The front message's length and its prefix's size, once the prefix is here.
    fn length(&self) -> Result<Option<(u64, usize)>, ChannelError> {
        let mut prefix = [0u8; 8];
        let mut have = 0;
        for piece in &self.pieces {
            let n = piece.len().min(8 - have);
            prefix[have..have + n].copy_from_slice(&piece[..n]);
            have += n;
            if have == 8 {
                break;
            }
        }
        match varint::decode(&prefix[..have]) {
            Ok((len, size)) => Ok(Some((len, size))),
            Err(VarintError::Truncated) => Ok(None),
            Err(VarintError::NonMinimal) => Err(ChannelError::NonMinimalLength),
        }
    }

    /// Takes `n` bytes off the front (the caller checked they are held): a slice of one
    /// piece if they lie in it, else joined (the one copy a channel makes).
    fn take(&mut self, n: usize) -> Bytes {
        self.held -= n as u64;
        let mut joined: Option<BytesMut> = None;
        let mut left = n;
        while let Some(front) = self.pieces.front_mut() {
            let k = front.len().min(left);
            let part = front.split_to(k);
            if front.is_empty() {
                self.pieces.pop_front();
            }
            left -= k;
            match (&mut joined, left) {
                // All of it in one piece: that slice, no copy.
                (None, 0) => return part,
                (None, _) => {
                    let mut buf = BytesMut::with_capacity(n);
                    buf.extend_from_slice(&part);
                    joined = Some(buf);
                }
                (Some(buf), _) => buf.extend_from_slice(&part),
            }
            if left == 0 {
                break;
            }
        }
        joined.map(BytesMut::freeze).unwrap_or_default()
    }

    /// Stops the stream, so the sender hears the channel was refused, and says why.
    fn refuse(&mut self, e: ChannelError) -> Error {
        if let Some(stream) = self.stream.take() {
            let _ = stream.stop(CHANNEL_REFUSED);
        }
        self.pieces.clear();
        self.held = 0;
        self.broken = Some(e);
        Error::Channel(e)
    }
}

impl Connection {
    /// Opens an ordered message channel labelled `label` (spec §8, Channels): messages sent
    /// on it arrive in order, with their boundaries, without holding back other channels
    /// or messages. The peer sees a stream with that label and reads it with
    /// [`RecvStream::into_channel`].
    pub async fn open_channel(&self, label: Label) -> Result<ChannelSender, Error> {
        let stream = self.open_stream(Some(label)).await?;
        Ok(ChannelSender {
            stream,
            queued: VecDeque::new(),
        })
    }
}

impl RecvStream {
    /// Reads this stream as an ordered message channel (its sender opened it with
    /// [`Connection::open_channel`]), taking messages of at most `limit` bytes.
    pub fn into_channel(self, limit: u64) -> ChannelReceiver {
        ChannelReceiver {
            id: self.id(),
            header: self.header().clone(),
            stream: Some(self),
            limit,
            pieces: VecDeque::new(),
            held: 0,
            broken: None,
        }
    }
}
