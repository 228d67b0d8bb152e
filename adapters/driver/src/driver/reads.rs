//! Reads: the bytes of a stream the application took (`poll_read`), whole messages of the
//! streams it did not (`poll_recv_message`), the streams the peer opened
//! (`poll_accept_stream`); after a connection ended, what it received and no call read
//! yet, which the core keeps until read or released.
//! Each poll takes from the core only what it returns; while nothing is there it registers
//! the caller's waker on the stream (a read) or the connection (the others).

use std::task::{Poll, Waker};

use bytes::Bytes;
use weir_core::wire::StreamId;
use weir_core::{ApiError, ConnectionHandle, Read};

use super::conn::Held;
use super::{Driver, Wait};
use crate::{Error, Incoming};

impl Driver {
    /// The next whole message on `conn`: the first stream the peer opened, not taken by
    /// [`poll_accept_stream`](Self::poll_accept_stream), to be complete (at most `limit`
    /// bytes; a longer one is refused and its stream stopped).
    pub(crate) fn poll_recv_message(
        &mut self,
        conn: ConnectionHandle,
        limit: u64,
        waker: &Waker,
    ) -> Poll<Result<Bytes, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => self.take_message(conn, limit),
        };
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    /// The next stream the peer opened, in the order they opened, that no message read
    /// began to gather.
    pub(crate) fn poll_accept_stream(
        &mut self,
        conn: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<Incoming, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => {
                // Unreachable: `refused` answered `None`, so the driver knows the connection.
                let c = self.conns.get_mut(&conn).expect("refused() found it");
                match c.opened.pop_front() {
                    Some(incoming) => {
                        c.readable.remove(incoming.0);
                        c.taken.insert(incoming.0);
                        Some(Ok(incoming))
                    }
                    None => c.ended.as_ref().map(|end| Err(end.error())),
                }
            }
        };
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    /// Up to `max` bytes of `stream` (every piece there is, in the pieces they came in),
    /// `Ok(None)` at its end, or how it failed.
    pub(crate) fn poll_read(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        max: usize,
        waker: &Waker,
    ) -> Poll<Result<Option<Vec<Bytes>>, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => self.take_read(conn, stream, max.max(1)),
        };
        self.answer(r, Wait::Conn(conn, Some(stream)), waker)
    }

    /// The next whole message on `conn`, or why there will be none; `None` while the next
    /// one is still on its way.
    fn take_message(&mut self, conn: ConnectionHandle, limit: u64) -> Option<Result<Bytes, Error>> {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return Some(Err(Error::Refused(ApiError::UnknownConnection)));
            };
            let Some(stream) = c.readable.front_id() else {
                return c.ended.as_ref().map(|end| Err(end.error()));
            };
            c.readable.pop_front();
            // Gathered whole (or failed) before this call: whole, or nothing.
            if let Some(held) = c.held.remove(&stream) {
                c.forget_opened(stream);
                c.gathering.remove(&stream);
                if let Some(e) = held.failed {
                    return Some(Err(e));
                }
                if !held.finished {
                    continue;
                }
                return Some(Ok(crate::join(held.chunks)));
            }
            let ended = c.ended.is_some();
            let read = self.on_conn(conn, |ep, h| ep.read_message(h, stream, limit));
            if ended && matches!(read, Ok(Read::Pending)) {
                // The connection ended before the message was whole: it never will be.
                self.forget_stream(conn, stream);
                continue;
            }
            if let Some(answer) = self.message_read(conn, stream, limit, read) {
                return Some(answer);
            }
        }
    }

    /// What a message read of `stream` came to: the message, or why it failed; `None` when
    /// there is nothing to hand out (not whole yet, reset by its sender, refused as too
    /// long, gone). A stream not whole yet is from now on one being gathered.
    fn message_read(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        limit: u64,
        read: Result<Read, ApiError>,
    ) -> Option<Result<Bytes, Error>> {
        let c = self.conns.get_mut(&conn)?;
        match read {
            Ok(Read::Data { bytes, .. }) => {
                c.forget_opened(stream);
                c.gathering.remove(&stream);
                Some(Ok(bytes))
            }
            // Not whole yet: its next StreamReadable brings it on. From now on it is a
            // message being gathered, not a stream to accept.
            Ok(Read::Pending) => {
                if c.opened.remove(stream).is_some() {
                    c.gathering.insert(stream, limit);
                }
                None
            }
            Ok(Read::VerificationFailed { expected, actual }) => {
                c.forget_opened(stream);
                c.gathering.remove(&stream);
                Some(Err(Error::VerificationFailed { expected, actual }))
            }
            Err(ApiError::MessageTooLong) => {
                tracing::debug!(%conn, stream = stream.0, limit, "message too long; stream stopped");
                self.forget_stream(conn, stream);
                let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, 0));
                None
            }
            // Reset by the sender (it knows), or gone: nothing to deliver.
            Ok(_) | Err(_) => {
                self.forget_stream(conn, stream);
                None
            }
        }
    }

    /// New bytes on `stream` of `conn`: a message being gathered takes
    /// them at once, so that the credit they used goes out with the next send, and wakes
    /// its receive only once whole (kept in `held` until a receive takes it) or failed;
    /// any other stream wakes its reader.
    pub(super) fn on_readable(&mut self, conn: ConnectionHandle, stream: StreamId) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| c.handle.is_some()) else {
            return;
        };
        if let Some(&limit) = c.gathering.get(&stream) {
            let read = self.ep.read_message(conn, stream, limit);
            if matches!(read, Ok(Read::Pending)) {
                return;
            }
            let answer = self.message_read(conn, stream, limit, read);
            if let (Some(answer), Some(c)) = (answer, self.conns.get_mut(&conn)) {
                let mut held = Held::default();
                match answer {
                    Ok(message) => {
                        held.chunks.push_back(message);
                        held.finished = true;
                    }
                    Err(e) => held.failed = Some(e),
                }
                c.held.insert(stream, held);
                c.readable.push_back(stream, ());
            }
        } else if c.opened.contains(stream) {
            c.readable.push_back(stream, ());
        }
        self.dirty.insert((conn, Some(stream)));
    }

    /// Up to `max` bytes of `stream`, in the pieces they came in, `Ok(None)` at its end, or
    /// how it failed; `None` while nothing new is there.
    fn take_read(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        max: usize,
    ) -> Option<Result<Option<Vec<Bytes>>, Error>> {
        let c = self.conns.get_mut(&conn)?;
        let mut out = Vec::new();
        let mut room = max;
        // What follows the pieces in `out`: the stream's end (`Ok`) or its failure.
        let mut end: Option<Result<(), Error>> = None;
        let mut more = true;
        if let Some(held) = c.held.get_mut(&stream) {
            while room > 0 {
                let Some(mut chunk) = held.chunks.pop_front() else {
                    break;
                };
                if chunk.len() > room {
                    held.chunks.push_front(chunk.split_off(room));
                }
                room -= chunk.len();
                out.push(chunk);
            }
            more = held.chunks.is_empty();
            if more && held.finished {
                // Kept: every later read is told the end too.
                end = Some(Ok(()));
            } else if more {
                end = held.failed.take().map(Err);
                c.held.remove(&stream);
            }
        }
        let ended = c.ended.clone();
        while more && end.is_none() && room > 0 {
            match self.on_conn(conn, |ep, h| ep.read(h, stream, room)) {
                Ok(Read::Data { bytes, .. }) => {
                    room -= bytes.len();
                    out.push(bytes);
                }
                // Nothing more will come once the connection ended.
                Ok(Read::Pending) => {
                    more = false;
                    end = ended.as_ref().map(|e| Err(e.error()));
                }
                Ok(Read::Finished) => end = Some(Ok(())),
                Ok(Read::Reset { code }) => end = Some(Err(Error::Reset { code })),
                Ok(Read::VerificationFailed { expected, actual }) => {
                    end = Some(Err(Error::VerificationFailed { expected, actual }))
                }
                // A kind of read this driver does not know yet: nothing it can deliver.
                Ok(_) => end = Some(Err(Error::Refused(ApiError::UnknownStream))),
                Err(e) => end = Some(Err(self.error(conn, Some(stream), e))),
            }
        }
        Some(match (out.is_empty(), end) {
            (true, None) => return None,
            (true, Some(Ok(()))) => Ok(None),
            (true, Some(Err(e))) => Err(e),
            (false, end) => {
                // The pieces now; how the stream ended, at the next read.
                if let (Some(end), Some(c)) = (end, self.conns.get_mut(&conn)) {
                    let held = c.held.entry(stream).or_default();
                    match end {
                        Ok(()) => held.finished = true,
                        Err(e) => held.failed = Some(e),
                    }
                }
                Ok(Some(out))
            }
        })
    }
}
