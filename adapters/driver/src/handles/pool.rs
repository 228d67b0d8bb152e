//! The endpoint's connection pool, as calls (the driver's module `pool` keeps it): dial a
//! peer by key or an address and get the live connection to it if there is one, one dial
//! shared by concurrent calls if not; a pooled connection no handle holds stays open for
//! the idle time; the connections' ups and downs as [`PeerEvent`]s.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::time::Duration;

use weir_core::PublicKey;

use super::endpoint::{OnDrop, Urgency};
use super::{Connection, Endpoint};
use crate::driver::{Claim, PeerEvent, PoolKey};
use crate::Error;

impl Endpoint {
    /// The connection to the peer whose key is `key`: the pool's, if it has a live one
    /// (one dialed before, or one the peer opened to us); else a dial as
    /// [`connect_to_peer`](Self::connect_to_peer) makes, shared with every call for that key
    /// made while it runs (they all get its connection, or its failure). The connection
    /// stays in the pool while it lives; once no handle holds it, it is closed after the
    /// pool's idle time ([`set_pool_idle`](Self::set_pool_idle)) unless dialed again by
    /// then. Cancel-safe: a call dropped while it dials hands the dial over to a call
    /// waiting on it, if any, which dials again.
    pub async fn dial(&self, key: PublicKey, addresses: &[SocketAddr]) -> Result<Connection, Error> {
        self.pooled(PoolKey::Peer(key), || self.connect_to_peer(key, addresses))
            .await
    }

    /// [`dial`](Self::dial) by address: the pool's connection to `remote` if it has a live
    /// one that was dialed to that address, else a [`connect`](Self::connect) shared by the
    /// concurrent calls.
    pub async fn dial_addr(&self, remote: SocketAddr) -> Result<Connection, Error> {
        self.pooled(PoolKey::Addr(remote), || self.connect(remote)).await
    }

    /// How long a pooled connection no handle holds stays open before it is closed
    /// ([`DEFAULT_POOL_IDLE`](crate::DEFAULT_POOL_IDLE), 60 s, until set); zero closes it
    /// as soon as its last handle goes, as a connection outside the pool is.
    pub fn set_pool_idle(&self, idle: Duration) {
        self.shared.driver().set_pool_idle(idle);
    }

    /// The next connection event: a connection came up (its handshake finished, either
    /// way) or an established one went down. Events wait for this call in order, the
    /// oldest dropped past 1,024 (then [`PeerEvent::Missed`] says how many).
    pub async fn peer_event(&self) -> Result<PeerEvent, Error> {
        poll_fn(|cx| self.shared.poll(Urgency::Soon, |d| d.poll_peer_event(cx.waker()))).await
    }

    async fn pooled<F, D>(&self, key: PoolKey, dial: D) -> Result<Connection, Error>
    where
        D: Fn() -> F,
        F: Future<Output = Result<Connection, Error>>,
    {
        loop {
            match self.shared.call(|d| d.pool_claim(key))?? {
                Claim::Live(c) => return Ok(Connection::new(&self.shared, c)),
                Claim::Wait(n) => {
                    let done = poll_fn(|cx| {
                        self.shared
                            .poll(Urgency::Soon, |d| d.poll_pool(key, n, cx.waker()))
                    })
                    .await?;
                    if let Some(c) = done {
                        return Ok(Connection::new(&self.shared, c));
                    }
                    // The call that dialed gave up: claim again (this one may dial now).
                }
                Claim::Dial(n) => {
                    let mut given_up = OnDrop::new(&self.shared, move |d| d.pool_abandoned(key, n));
                    let r = dial().await;
                    given_up.disarm();
                    let outcome = r.as_ref().map(Connection::id);
                    self.shared.call(|d| d.pool_dialed(key, n, outcome))?;
                    return r;
                }
            }
        }
    }
}
