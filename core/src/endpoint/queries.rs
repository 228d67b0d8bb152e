//! What the application may ask of the endpoint without changing it: its configuration,
//! counters and load, and each connection's negotiated mode, keys, RTT, statistics,
//! buffered bytes and address.

use super::*;

impl Endpoint {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// What the endpoint holds now (walks every connection).
    pub fn load(&self) -> EndpointLoad {
        let mut load = EndpointLoad {
            connections: self.by_cid.len(),
            handshakes_pending: self.pending,
            addresses_tracked: self.admission.tracked(),
            stateless_queued: self.stateless.len(),
            receive_budgets: self.windows_total,
            ..EndpointLoad::default()
        };
        for conn in self.conns.iter().flatten() {
            let (recv, send) = conn.buffered();
            load.bytes_received_unread += recv;
            load.bytes_unacknowledged += send;
        }
        load
    }

    /// What the handshake agreed, once connected.
    pub fn negotiated(&self, conn: ConnectionHandle) -> Option<Negotiated> {
        self.lookup(conn)?.negotiated()
    }

    /// This endpoint's public key: its identity, which peers learn in the handshake and
    /// which a client names in [`connect_to`](Self::connect_to) (spec §11.1).
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The peer's public key, authenticated by the handshake; `None` before the handshake is
    /// confirmed (a server's connection whose client has not yet sent a packet under the new
    /// keys: its HELLO may be a replay), on an unprotected (version 1) connection, or for an
    /// unknown handle.
    pub fn peer_key(&self, conn: ConnectionHandle) -> Option<PublicKey> {
        self.lookup(conn)?.peer_key()
    }

    /// Whether the connection is established (handshake done, not closing).
    pub fn is_established(&self, conn: ConnectionHandle) -> bool {
        self.lookup(conn).is_some_and(Connection::is_established)
    }

    /// The connection's smoothed RTT estimate.
    pub fn rtt(&self, conn: ConnectionHandle) -> Option<Duration> {
        Some(self.lookup(conn)?.rtt())
    }

    /// The connection's counters.
    pub fn connection_stats(&self, conn: ConnectionHandle) -> Option<ConnectionStats> {
        Some(self.lookup(conn)?.stats())
    }

    /// Bytes a connection holds for the application: `(received, unread)` and
    /// `(written, unacknowledged)`; the first is bounded by the receive windows.
    pub fn buffered(&self, conn: ConnectionHandle) -> Option<(u64, u64)> {
        Some(self.lookup(conn)?.buffered())
    }

    /// The peer's address as last seen.
    pub fn remote_address(&self, conn: ConnectionHandle) -> Option<SocketAddr> {
        Some(self.lookup(conn)?.remote)
    }

    /// Our address as this connection's peer last said it sees it (capability
    /// ADDRESS_DISCOVERY, spec §4.18); `None` before it said, or if it does not.
    pub fn observed_address(&self, conn: ConnectionHandle) -> Option<SocketAddr> {
        self.lookup(conn)?.observed_address()
    }

    /// Our public addresses as recent peers saw them, and whether one serves every
    /// destination (what hole punching needs): a summary of the latest report of each of
    /// the last eight peers that told one, kept after their connections end. A report
    /// outlives the NAT mapping it describes; a rebinding shows as a second address until
    /// newer reports push the old out.
    pub fn reflexive(&self) -> Reflexive {
        self.reflexive.summary()
    }
}
