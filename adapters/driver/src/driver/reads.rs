//! Reads: the bytes of a stream the application took (`poll_read`), whole messages of the
//! streams it did not (`poll_recv_message`), the streams the peer opened
//! (`poll_accept_stream`). The core keeps all of it (the streams offered, the messages it
//! gathers, and after a connection ended what it received, until read or released); each
//! poll takes from the core only what it returns, and while nothing is there registers
//! the caller's waker on the stream (a read) or the connection (the others).

use std::task::{Poll, Waker};

use bytes::Bytes;
use weir_core::wire::StreamId;
use weir_core::{ApiError, ConnectionHandle, Read};

use super::conn::StreamEnd;
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

    /// The next stream the peer opened, in the order they opened, that no call took yet
    /// (the core offers it: `weir_core::Endpoint::accept_stream`).
    pub(crate) fn poll_accept_stream(
        &mut self,
        conn: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<Incoming, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => match self.on_conn(conn, |ep, h| ep.accept_stream(h)) {
                Ok(Some(incoming)) => Some(Ok(incoming)),
                Ok(None) | Err(_) => self.ended(conn),
            },
        };
        self.answer(r, Wait::Conn(conn, None), waker)
    }

    /// The oldest datagram the peer sent on `conn` not read yet, or the connection's end.
    pub(crate) fn poll_recv_datagram(
        &mut self,
        conn: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<Bytes, Error>> {
        let r = match self.refused(conn) {
            Some(e) => Some(Err(e)),
            None => match self.on_conn(conn, |ep, h| ep.recv_datagram(h)) {
                Ok(Read::Data { bytes, .. }) => Some(Ok(bytes)),
                Ok(_) | Err(_) => self.ended(conn),
            },
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

    /// The next whole message on `conn` (the core gathers them:
    /// `weir_core::Endpoint::next_message`), or why there will be none; `None` while the
    /// next one is still on its way.
    fn take_message(&mut self, conn: ConnectionHandle, limit: u64) -> Option<Result<Bytes, Error>> {
        match self.on_conn(conn, |ep, h| ep.next_message(h, limit)) {
            Ok(Some((_, Read::Data { bytes, .. }))) => Some(Ok(bytes)),
            Ok(Some((_, Read::VerificationFailed { expected, actual }))) => {
                Some(Err(Error::VerificationFailed { expected, actual }))
            }
            // No other kind of read is a message; the core hands out none.
            Ok(Some(_)) | Ok(None) | Err(_) => self.ended(conn),
        }
    }

    /// How `conn` ended, as the error of a call that waits for more, if it did.
    fn ended<T>(&self, conn: ConnectionHandle) -> Option<Result<T, Error>> {
        let end = self.conns.get(&conn)?.ended.as_ref()?;
        Some(Err(end.error()))
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
        match c.ends.remove(&stream) {
            // Kept: every later read is told the end too.
            Some(StreamEnd::Finished) => {
                c.ends.insert(stream, StreamEnd::Finished);
                return Some(Ok(None));
            }
            Some(StreamEnd::Failed(e)) => return Some(Err(e)),
            None => {}
        }
        let ended = c.ended.clone();
        let mut out = Vec::new();
        let mut room = max;
        // What follows the pieces in `out`: the stream's end (`Ok`) or its failure.
        let mut end: Option<Result<(), Error>> = None;
        while end.is_none() && room > 0 {
            match self.on_conn(conn, |ep, h| ep.read(h, stream, room)) {
                Ok(Read::Data { bytes, .. }) => {
                    room -= bytes.len();
                    out.push(bytes);
                }
                // Nothing more will come once the connection ended.
                Ok(Read::Pending) => {
                    end = ended.as_ref().map(|e| Err(e.error()));
                    break;
                }
                Ok(Read::Finished) => end = Some(Ok(())),
                Ok(Read::Reset { code }) => end = Some(Err(Error::Reset { code })),
                Ok(Read::VerificationFailed { expected, actual }) => {
                    end = Some(Err(Error::VerificationFailed { expected, actual }))
                }
                // A kind of read this driver does not know yet: nothing it can deliver.
                Ok(_) => end = Some(Err(Error::Refused(ApiError::UnknownStream))),
                Err(e) => end = Some(Err(self.error(conn, e))),
            }
        }
        Some(match (out.is_empty(), end) {
            (true, None) => return None,
            (true, Some(Ok(()))) => Ok(None),
            (true, Some(Err(e))) => Err(e),
            (false, end) => {
                // The pieces now; how the stream ended, at the next read.
                if let (Some(end), Some(c)) = (end, self.conns.get_mut(&conn)) {
                    let end = match end {
                        Ok(()) => StreamEnd::Finished,
                        Err(e) => StreamEnd::Failed(e),
                    };
                    c.ends.insert(stream, end);
                }
                Ok(Some(out))
            }
        })
    }
}
