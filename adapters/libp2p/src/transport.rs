//! libp2p's `Transport` over weir endpoints: one weir endpoint (one UDP socket) per
//! listener, and dials from a listener's socket when one can reach the address (so that
//! the peer sees our listening port, as NATs and peers' address books want), else from a
//! socket of the transport's own.
//!
//! Inputs: the swarm's `listen_on`, `remove_listener`, `dial` and `poll`. Outputs: transport
//! events, and for each connection a future that runs the identity exchange
//! ([`crate::identity`]) and yields the peer id and its [`Muxer`].

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::future::BoxFuture;
use if_watch::tokio::IfWatcher;
use if_watch::IfEvent;
use libp2p_core::multiaddr::Multiaddr;
use libp2p_core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent};
use libp2p_identity::{Keypair, PeerId};
use weir_tokio::{Connection, Endpoint, Path};

use crate::{addr, identity, Config, Error, Muxer};

type Upgrade = BoxFuture<'static, Result<(PeerId, Muxer), Error>>;

/// weir as a libp2p transport: see the crate documentation. Must be used within a tokio
/// runtime (its endpoints spawn their driver tasks).
pub struct Transport {
    keypair: Keypair,
    config: Config,
    listeners: Vec<Listener>,
    /// Endpoints for dials no listener can make, at most one per address family.
    dialers: Vec<Arc<Endpoint>>,
    events: VecDeque<TransportEvent<Upgrade, Error>>,
    waker: Option<Waker>,
}

struct Listener {
    id: ListenerId,
    endpoint: Arc<Endpoint>,
    /// The bound address (with an unspecified IP, the `local_addr` of its connections).
    addr: Multiaddr,
    /// For a listener bound to an unspecified IP: the interface addresses, reported as the
    /// listener's as they come and go.
    interfaces: Option<IfWatcher>,
}

impl Listener {
    /// The next change of the addresses the listener is reachable at.
    fn poll_address(&mut self, cx: &mut Context<'_>) -> Poll<TransportEvent<Upgrade, Error>> {
        let Some(interfaces) = self.interfaces.as_mut() else {
            return Poll::Pending;
        };
        let bound = self.endpoint.local_addr();
        loop {
            let (up, ip) = match interfaces.poll_if_event(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(IfEvent::Up(net))) => (true, net.addr()),
                Poll::Ready(Ok(IfEvent::Down(net))) => (false, net.addr()),
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "watching the interfaces' addresses failed");
                    continue;
                }
            };
            if ip.is_ipv4() != bound.is_ipv4() {
                continue;
            }
            let (listener_id, listen_addr) = (self.id, addr::to_multiaddr(SocketAddr::new(ip, bound.port())));
            return Poll::Ready(if up {
                TransportEvent::NewAddress {
                    listener_id,
                    listen_addr,
                }
            } else {
                TransportEvent::AddressExpired {
                    listener_id,
                    listen_addr,
                }
            });
        }
    }
}

impl Transport {
    /// A transport whose node is `keypair`: its weir identity is derived from the keypair
    /// (the same keypair always gives the same weir key). Fails with
    /// [`Error::UnsupportedKey`] for a keypair that cannot export a secret.
    pub fn new(keypair: &Keypair, mut config: Config) -> Result<Transport, Error> {
        config.weir.identity = Some(identity::weir_identity(keypair)?);
        Ok(Transport {
            keypair: keypair.clone(),
            config,
            listeners: Vec::new(),
            dialers: Vec::new(),
            events: VecDeque::new(),
            waker: None,
        })
    }

    fn bind(&self, at: SocketAddr) -> Result<Arc<Endpoint>, Error> {
        Ok(Arc::new(Endpoint::bind(at, self.config.weir.clone())?))
    }

    /// The endpoint to dial `to` from: a listener's if one can reach it (`PortUse::Reuse`),
    /// else the transport's own for the address family, bound on first use.
    fn dialer(&mut self, to: SocketAddr, port_use: PortUse) -> Result<Arc<Endpoint>, Error> {
        if port_use == PortUse::Reuse {
            let reaches = |local: SocketAddr| {
                local.is_ipv4() == to.is_ipv4()
                    && (local.ip().is_unspecified() || local.ip().is_loopback() == to.ip().is_loopback())
            };
            if let Some(l) = self.listeners.iter().find(|l| reaches(l.endpoint.local_addr())) {
                return Ok(Arc::clone(&l.endpoint));
            }
        }
        if let Some(d) = self
            .dialers
            .iter()
            .find(|d| d.local_addr().is_ipv4() == to.is_ipv4())
        {
            return Ok(Arc::clone(d));
        }
        let any: IpAddr = if to.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let endpoint = self.bind(SocketAddr::new(any, 0))?;
        self.dialers.push(Arc::clone(&endpoint));
        Ok(endpoint)
    }

    /// The future that proves the peer's identity on `conn` and makes its muxer.
    fn accepted(&self, conn: Connection, ours: weir_tokio::PublicKey) -> Upgrade {
        Box::pin(prove(
            conn,
            self.keypair.clone(),
            ours,
            None,
            self.config.identity_timeout,
        ))
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// Proves the peer's identity on `conn` (expected to be `expected`, if given) within
/// `limit`, and makes its muxer; a peer that takes too long is told [`IDENTITY_REFUSED`].
///
/// [`IDENTITY_REFUSED`]: crate::IDENTITY_REFUSED
async fn prove(
    conn: Connection,
    keypair: Keypair,
    ours: weir_tokio::PublicKey,
    expected: Option<PeerId>,
    limit: Duration,
) -> Result<(PeerId, Muxer), Error> {
    let exchange = identity::exchange(&conn, &keypair, &ours, expected);
    match tokio::time::timeout(limit, exchange).await {
        Ok(proved) => {
            let (peer, early) = proved?;
            Ok((peer, Muxer::new(conn, early)))
        }
        Err(_) => {
            let _ = conn
                .close(crate::IDENTITY_REFUSED, "no libp2p identity in time")
                .await;
            Err(Error::IdentityTimedOut(limit))
        }
    }
}

impl libp2p_core::Transport for Transport {
    type Output = (PeerId, Muxer);
    type Error = Error;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    /// Binds a weir endpoint at `addr` (`/ip4|ip6/<a>/udp/<port>`, port 0 picks one) and
    /// reports its address; bound to an unspecified IP (`0.0.0.0`, `::`), it reports the
    /// addresses of the interfaces of that family instead, as they come and go.
    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Error>> {
        let Some((at, None)) = addr::parse(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let endpoint = self.bind(at).map_err(TransportError::Other)?;
        let bound = addr::to_multiaddr(endpoint.local_addr());
        tracing::debug!(%bound, "weir listening");
        let interfaces = if at.ip().is_unspecified() {
            IfWatcher::new()
                .inspect_err(|error| tracing::debug!(%error, "cannot watch the interfaces' addresses"))
                .ok()
        } else {
            None
        };
        if interfaces.is_none() {
            self.events.push_back(TransportEvent::NewAddress {
                listener_id: id,
                listen_addr: bound.clone(),
            });
        }
        self.listeners.push(Listener {
            id,
            endpoint,
            addr: bound,
            interfaces,
        });
        self.wake();
        Ok(())
    }

    /// Shuts the listener's endpoint down: the connections it accepted, and those dialed
    /// from its socket, are closed with it (after a bounded wait for what they wrote to be
    /// acknowledged).
    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(at) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        let listener = self.listeners.remove(at);
        listener.endpoint.shutdown();
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        self.wake();
        true
    }

    /// Dials `addr` (`/ip4|ip6/<a>/udp/<port>[/p2p/<peer id>]`). A dial as listener (a
    /// hole punch's simultaneous open, to libp2p) is a plain dial: weir's connections do
    /// not depend on which side opened them.
    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Upgrade, TransportError<Error>> {
        let Some((to, expected)) = addr::parse(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        if to.port() == 0 || to.ip().is_unspecified() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let endpoint = self.dialer(to, opts.port_use).map_err(TransportError::Other)?;
        let (keypair, limit) = (self.keypair.clone(), self.config.identity_timeout);
        Ok(Box::pin(async move {
            let conn = endpoint.connect(to).await?;
            prove(conn, keypair, endpoint.public_key(), expected, limit).await
        }))
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Upgrade, Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        for at in 0..self.listeners.len() {
            if let Poll::Ready(event) = self.listeners[at].poll_address(cx) {
                return Poll::Ready(event);
            }
            let listener = &self.listeners[at];
            match listener.endpoint.poll_accept(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(conn)) => {
                    let send_back_addr = match conn.path() {
                        Some(Path::Direct(remote)) => addr::to_multiaddr(remote),
                        // Listeners do not reserve at relays, so a connection reaches them
                        // directly; one that moved away already has no address to give.
                        _ => Multiaddr::empty(),
                    };
                    let (listener_id, local_addr) = (listener.id, listener.addr.clone());
                    let ours = listener.endpoint.public_key();
                    return Poll::Ready(TransportEvent::Incoming {
                        listener_id,
                        upgrade: self.accepted(conn, ours),
                        local_addr,
                        send_back_addr,
                    });
                }
                Poll::Ready(Err(error)) => {
                    let listener = self.listeners.remove(at);
                    return Poll::Ready(TransportEvent::ListenerClosed {
                        listener_id: listener.id,
                        reason: Err(error.into()),
                    });
                }
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
