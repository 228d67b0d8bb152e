//! The application's unreliable datagrams (spec/protocol.md §4.19): send one, read the
//! peer's, and how large one may be. Each call records itself on a traced endpoint, as the
//! other commands do (module `commands`).
//!
//! Inputs: the calls. Outputs: their answers; the connection's queues (module
//! `connection::datagrams`) do the rest.

use super::*;

impl Endpoint {
    /// Queues `data` to go to the peer of `conn` as one unreliable datagram: sent whole in
    /// one packet when congestion control lets new data go, never retransmitted (a lost one
    /// is counted in `ConnectionStats::app_datagrams_lost`). Refused before the handshake
    /// ([`ApiError::NotEstablished`]), if the peer does not take datagrams
    /// ([`ApiError::DatagramsUnsupported`]), or if it is larger than
    /// [`max_datagram_size`](Self::max_datagram_size) ([`ApiError::DatagramTooLarge`]).
    /// At most 64 wait to be sent; past that the oldest is dropped (counted in
    /// `app_datagrams_dropped`).
    pub fn send_datagram(&mut self, conn: ConnectionHandle, data: Bytes) -> Result<(), ApiError> {
        let record = self.record(|| Command::SendDatagram {
            conn,
            data: data.clone(),
        });
        let limit = self.config.max_datagram_size;
        let out = self.with_conn(conn, |c| c.send_datagram(limit, data));
        self.recorded(None, record, out)
    }

    /// The oldest datagram the peer of `conn` sent that was not read yet ([`Read::Data`],
    /// at offset 0), or [`Read::Pending`] ([`Event::DatagramReceived`] says when there is
    /// one). At most 64 wait; past that the oldest is dropped.
    pub fn recv_datagram(&mut self, conn: ConnectionHandle) -> Result<Read, ApiError> {
        let record = self.record(|| Command::RecvDatagram { conn });
        let out = self.with_conn(conn, |c| {
            Ok(match c.recv_datagram() {
                Some(bytes) => Read::Data { offset: 0, bytes },
                None => Read::Pending,
            })
        });
        self.recorded(None, record, out)
    }

    /// The largest datagram [`send_datagram`](Self::send_datagram) takes on `conn` now
    /// (what one packet holds at the path's current size); `None` before the handshake, or
    /// if the peer does not take datagrams.
    pub fn max_datagram_size(&self, conn: ConnectionHandle) -> Option<usize> {
        let limit = self.config.max_datagram_size;
        self.lookup(conn)?.max_datagram(limit)
    }
}
