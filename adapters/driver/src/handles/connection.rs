//! A connection's handle: messages, streams, close, counters.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use weir_core::wire::Label;
use weir_core::{ConnectionStats, Negotiated, PublicKey, StreamHeader};

use super::endpoint::{Shared, Urgency};
use super::{RecvStream, SendStream};
use crate::driver::Sending;
use crate::{CallId, Confirm, Connected, Error, DEFAULT_MESSAGE_LIMIT};
use weir_core::ConnectionHandle;

/// One connection of an endpoint. Clones are handles to the same connection; when the last
/// one (and the last of its streams) is dropped, the connection is closed (code 0) once
/// the peer acknowledged what was written.
///
/// Cancel-safety: [`recv_message`](Self::recv_message),
/// [`accept_stream`](Self::accept_stream) and [`open_stream`](Self::open_stream) take
/// nothing unless they are ready, so a dropped future loses nothing. A message send dropped
/// midway resets the message's stream if it was partly written (the peer drops it), and
/// leaves a message already whole in the core to be delivered, unconfirmed.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
}

struct ConnInner {
    shared: Arc<Shared>,
    id: ConnectionHandle,
    negotiated: Negotiated,
    peer: Option<PublicKey>,
    /// The moves [`Connection::path_changed`] returned so far.
    moves_seen: AtomicU64,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self.shared.call(|d| d.release_connection(id));
    }
}

impl Connection {
    pub(crate) fn new(shared: &Arc<Shared>, c: Connected) -> Connection {
        Connection {
            inner: Arc::new(ConnInner {
                shared: Arc::clone(shared),
                id: c.id,
                negotiated: c.negotiated,
                peer: c.peer,
                moves_seen: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn id(&self) -> ConnectionHandle {
        self.inner.id
    }

    /// The version, capabilities and cipher both sides agreed on.
    pub fn negotiated(&self) -> Negotiated {
        self.inner.negotiated
    }

    /// The peer's public key (its identity), authenticated by the handshake; `None` on an
    /// unprotected (version 1) connection.
    pub fn peer_key(&self) -> Option<PublicKey> {
        self.inner.peer
    }

    /// How the connection reaches its peer now: directly, or through a relay's circuit
    /// (spec §12); `None` once it ended.
    pub fn path(&self) -> Option<weir_core::Path> {
        let conn = self.id();
        self.shared().driver().path(conn)
    }

    /// Waits until the connection moves to another path (spec §12.5: a hole punch opened a
    /// direct path, the direct path went silent and it went back to the relay's circuit, or
    /// the peer's address changed, a NAT rebinding), and returns the path it is on now.
    /// Each move is returned once, by the next call after it, whichever clone of the handle
    /// makes it; several moves since the last call are returned as one, the latest path.
    /// Fails with the connection's end.
    pub async fn path_changed(&self) -> Result<weir_core::Path, Error> {
        poll_fn(|cx| self.poll_path_changed(cx)).await
    }

    /// [`path_changed`](Self::path_changed) as a poll, for poll-driven code (a muxer that
    /// reports address changes, say).
    pub fn poll_path_changed(&self, cx: &mut Context<'_>) -> Poll<Result<weir_core::Path, Error>> {
        let conn = self.id();
        let seen = self.inner.moves_seen.load(Ordering::Relaxed);
        let (moves, path) =
            ready!(self
                .shared()
                .poll(Urgency::Soon, |d| d.poll_moved(conn, seen, cx.waker())))?;
        self.inner.moves_seen.fetch_max(moves, Ordering::Relaxed);
        Poll::Ready(Ok(path))
    }

    /// Our address as the peer last said it sees it (capability ADDRESS_DISCOVERY, spec
    /// §4.18): behind a NAT, our public address toward this peer. `None` until the peer
    /// said (its report follows the handshake by a moment), or once the connection ended.
    pub fn observed_address(&self) -> Option<SocketAddr> {
        let conn = self.id();
        self.shared().driver().observed_address(conn)
    }

    /// Sends `data` as one message (a stream of its own, whose length the peer learns at
    /// once); ready once it was delivered: the final receiver, through any relays, read it
    /// all and said so ([`Confirm::Delivered`]; spec §8, Delivery). Fails with
    /// [`Error::NotDelivered`] if it was refused or a relay lost it, or with the
    /// connection's end if that came first. A message larger than the send buffer goes out
    /// in pieces as room frees up. [`send_message_with`](Self::send_message_with) waits
    /// less. Concurrent sends on one connection may complete in any order.
    pub async fn send_message(&self, data: Bytes) -> Result<(), Error> {
        self.send_message_with(data, Confirm::Delivered).await
    }

    /// [`send_message`](Self::send_message), ready once the message got as far as `confirm`
    /// says: [`Confirm::Queued`] once the core took all of it (for a sender that pipelines
    /// many), [`Confirm::Acknowledged`] once the peer acknowledged every byte. Waiting for
    /// either of the last two, a peer that stopped the message is [`Error::NotDelivered`]
    /// with its code, as for `send_message`; with `Queued`, a stop met while writing is
    /// [`Error::Stopped`].
    pub async fn send_message_with(&self, data: Bytes, confirm: Confirm) -> Result<(), Error> {
        self.send_labelled(None, data, confirm).await
    }

    async fn send_labelled(&self, label: Option<Label>, data: Bytes, confirm: Confirm) -> Result<(), Error> {
        let mut call = SendCall {
            conn: self,
            sending: Sending::new(label, data, confirm),
            done: false,
            id: self.shared().call_id(),
        };
        poll_fn(|cx| {
            let (conn, sending) = (call.conn.id(), &mut call.sending);
            // Once every byte is in the core, a poll only waits for the confirmation, as a
            // stream's `finish_with` does: it writes nothing, so it is no send to the
            // runtime (which would start a burst's hold for what the poll left, or send it
            // alone at once).
            let urgency = if sending.is_written() {
                Urgency::Soon
            } else {
                Urgency::Now
            };
            let r = ready!(call.conn.shared().poll_busy(cx, urgency, Some(call.id), |d, cx| {
                d.poll_send(conn, sending, cx.waker())
            }));
            call.done = true;
            Poll::Ready(r)
        })
        .await
    }

    /// The next whole message: the first stream the peer opened that
    /// [`accept_stream`](Self::accept_stream) did not take to be complete. Messages longer
    /// than [`DEFAULT_MESSAGE_LIMIT`] are refused (their stream is stopped).
    pub async fn recv_message(&self) -> Result<Bytes, Error> {
        let call = self.shared().call_id();
        poll_fn(|cx| self.poll_recv_message_as(cx, Some(call))).await
    }

    /// [`recv_message`](Self::recv_message) as a poll. (A poll has no identity of its own,
    /// so what it receives for itself wakes its task too: `recv_message` spares it that.)
    pub fn poll_recv_message(&self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Error>> {
        self.poll_recv_message_as(cx, None)
    }

    fn poll_recv_message_as(&self, cx: &mut Context<'_>, call: Option<CallId>) -> Poll<Result<Bytes, Error>> {
        let conn = self.id();
        self.shared().poll_busy(cx, Urgency::Soon, call, |d, cx| {
            d.poll_recv_message(conn, DEFAULT_MESSAGE_LIMIT, cx.waker())
        })
    }

    /// Opens a stream to write to, with a protocol label (or none); pending while the peer
    /// allows no more streams.
    pub async fn open_stream(&self, label: Option<Label>) -> Result<SendStream, Error> {
        let mut header = StreamHeader::default();
        header.label = label;
        self.open_stream_with(header).await
    }

    /// [`open_stream`](Self::open_stream) with a full header: label, total length (the
    /// stream must then be exactly that long) and digest (checked by the final receiver).
    pub async fn open_stream_with(&self, header: StreamHeader) -> Result<SendStream, Error> {
        poll_fn(|cx| self.poll_open_stream(cx, &header)).await
    }

    /// [`open_stream_with`](Self::open_stream_with) as a poll, for muxers and other
    /// poll-driven code: opens nothing until it is ready.
    pub fn poll_open_stream(
        &self,
        cx: &mut Context<'_>,
        header: &StreamHeader,
    ) -> Poll<Result<SendStream, Error>> {
        let conn = self.id();
        let id = ready!(self
            .shared()
            .poll(Urgency::Now, |d| d.poll_open(conn, header, cx.waker())))?;
        Poll::Ready(Ok(SendStream::new(self.clone(), id)))
    }

    /// The next stream the peer opens (in the order they were opened) that
    /// [`recv_message`](Self::recv_message) did not take.
    pub async fn accept_stream(&self) -> Result<RecvStream, Error> {
        poll_fn(|cx| self.poll_accept_stream(cx)).await
    }

    /// [`accept_stream`](Self::accept_stream) as a poll: takes a stream only when it
    /// returns it.
    pub fn poll_accept_stream(&self, cx: &mut Context<'_>) -> Poll<Result<RecvStream, Error>> {
        let conn = self.id();
        let (id, header) = ready!(self
            .shared()
            .poll(Urgency::Soon, |d| d.poll_accept_stream(conn, cx.waker())))?;
        Poll::Ready(Ok(RecvStream::new(self.clone(), id, header)))
    }

    /// Sends `data` as one unreliable datagram (spec §4.19): whole in one packet when
    /// congestion control lets new data go, never retransmitted, with no word of its fate.
    /// Returns at once. Fails with `Error::Refused(ApiError::DatagramTooLarge { max })` past
    /// [`max_datagram_size`](Self::max_datagram_size), and with
    /// `ApiError::DatagramsUnsupported` if the peer does not take datagrams. At most 64
    /// wait to be sent; past that the oldest is dropped.
    pub fn send_datagram(&self, data: Bytes) -> Result<(), Error> {
        let conn = self.id();
        self.shared().call(|d| d.send_datagram(conn, data))?
    }

    /// The next datagram the peer sent (at most 64 wait; past that the oldest is
    /// dropped). Fails with the connection's end. Cancel-safe.
    pub async fn recv_datagram(&self) -> Result<Bytes, Error> {
        let conn = self.id();
        poll_fn(|cx| {
            self.shared()
                .poll(Urgency::Soon, |d| d.poll_recv_datagram(conn, cx.waker()))
        })
        .await
    }

    /// The largest datagram [`send_datagram`](Self::send_datagram) takes now (what one
    /// packet holds at the path's current size); `None` if the peer does not take
    /// datagrams or the connection ended.
    pub fn max_datagram_size(&self) -> Option<usize> {
        let conn = self.id();
        self.shared().driver().max_datagram_size(conn)
    }

    /// Closes the connection with an application `code` and a `reason` for people (cut to
    /// 256 bytes); the peer is told both.
    pub async fn close(&self, code: u64, reason: &str) -> Result<(), Error> {
        let (conn, reason) = (self.id(), crate::close_reason(reason));
        self.shared().call(|d| d.close(conn, code, reason))?
    }

    /// The connection's counters: live while it is open; once it ended, the ones it closed
    /// with.
    pub async fn stats(&self) -> Option<ConnectionStats> {
        let conn = self.id();
        self.shared()
            .call_as(Urgency::Soon, |d| d.connection_stats(conn))
            .ok()
            .flatten()
    }
}

/// A message send across its polls; dropped before it was done, it tells the driver
/// ([`Driver::abandon_send`](crate::Driver)).
struct SendCall<'a> {
    conn: &'a Connection,
    sending: Sending,
    done: bool,
    /// The call's identity, for its waits (module `driver::waiting`).
    id: CallId,
}

impl Drop for SendCall<'_> {
    fn drop(&mut self) {
        if !self.done {
            let conn = self.conn.id();
            let _ = self.conn.shared().call(|d| d.abandon_send(conn, &self.sending));
        }
    }
}
