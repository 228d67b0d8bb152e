//! What the libp2p suites share: two transports connected without a swarm, and a task that
//! drives a muxer as a swarm's connection task does.

#![allow(dead_code)] // each suite uses its own part

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use libp2p::core::muxing::{StreamMuxerEvent, StreamMuxerExt};
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportEvent};
use libp2p::core::{Endpoint, Transport as _};
use libp2p::identity::{Keypair, PeerId};
use libp2p::Multiaddr;
use tokio::sync::{mpsc, oneshot};
use weir_libp2p::{Config, Error, Muxer, Substream, Transport};

/// Settings whose failures show within seconds.
pub fn config() -> Config {
    Config {
        weir: weir_sim::loopback::config(),
        identity_timeout: Duration::from_secs(3),
    }
}

/// A transport listening on 127.0.0.1, its keypair and its address.
pub async fn listening(config: Config) -> (Transport, Keypair, Multiaddr) {
    let key = Keypair::generate_ed25519();
    let mut transport = Transport::new(&key, config).unwrap();
    transport
        .listen_on(ListenerId::next(), "/ip4/127.0.0.1/udp/0".parse().unwrap())
        .unwrap();
    match next_event(&mut transport).await {
        TransportEvent::NewAddress { listen_addr, .. } => (transport, key, listen_addr),
        _ => panic!("a new listener reports its address first"),
    }
}

pub async fn next_event(
    transport: &mut Transport,
) -> TransportEvent<<Transport as libp2p::core::Transport>::ListenerUpgrade, Error> {
    poll_fn(|cx| Pin::new(&mut *transport).poll(cx)).await
}

/// A connection that arrived at a listener: its upgrade, and the listener's and the peer's
/// addresses.
pub struct Arrival {
    pub upgrade: <Transport as libp2p::core::Transport>::ListenerUpgrade,
    pub local_addr: Multiaddr,
    pub send_back_addr: Multiaddr,
}

/// The next connection that arrives at `transport`, past the addresses it reports meanwhile
/// (a listener on an unspecified address reports each interface's); bounded in time.
pub async fn next_arrival(transport: &mut Transport) -> Arrival {
    let wait = async {
        loop {
            match next_event(transport).await {
                TransportEvent::Incoming {
                    upgrade,
                    local_addr,
                    send_back_addr,
                    ..
                } => {
                    return Arrival {
                        upgrade,
                        local_addr,
                        send_back_addr,
                    }
                }
                TransportEvent::NewAddress { .. } => {}
                _ => panic!("a connection arrives, not a listener's end"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("a connection arrives within 20 s")
}

pub fn dial_opts() -> DialOpts {
    DialOpts {
        role: Endpoint::Dialer,
        port_use: PortUse::Reuse,
    }
}

/// Two transports connected once, each with the muxer and the peer id it proved of the
/// other. The transports hold the endpoints: dropping them closes the connection.
pub struct Pair {
    pub dialer: (PeerId, Muxer),
    pub listener: (PeerId, Muxer),
    /// The dialer's and the listener's.
    pub keys: [Keypair; 2],
    pub transports: [Transport; 2],
}

pub async fn connected(config: Config) -> Pair {
    let (mut listener, listener_key, addr) = listening(config.clone()).await;
    let dialer_key = Keypair::generate_ed25519();
    let mut dialer = Transport::new(&dialer_key, config).unwrap();
    // A dial is a future that does nothing until polled: run it beside the listener.
    let dial = tokio::spawn(dialer.dial(addr, dial_opts()).unwrap());
    let upgrade = next_arrival(&mut listener).await.upgrade;
    let (out, inc) = tokio::join!(dial, upgrade);
    Pair {
        dialer: out.unwrap().unwrap(),
        listener: inc.unwrap(),
        keys: [dialer_key, listener_key],
        transports: [dialer, listener],
    }
}

/// A muxer driven in a task of its own, as a swarm's connection task drives it.
pub struct Driven {
    pub open: mpsc::UnboundedSender<oneshot::Sender<Result<Substream, Error>>>,
    /// The substreams the peer opened.
    pub inbound: mpsc::UnboundedReceiver<Substream>,
    /// How the connection ended (the muxer failed), once it did.
    pub ended: tokio::task::JoinHandle<Option<Error>>,
    /// The peer's addresses the muxer reported (`StreamMuxerEvent::AddressChange`).
    pub moves: mpsc::UnboundedReceiver<Multiaddr>,
}

impl Driven {
    pub async fn open(&self) -> Result<Substream, Error> {
        let (tx, rx) = oneshot::channel();
        self.open.send(tx).unwrap();
        rx.await.unwrap()
    }
}

pub fn drive(mut muxer: Muxer) -> Driven {
    let (open, mut requests) = mpsc::unbounded_channel::<oneshot::Sender<Result<Substream, Error>>>();
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let (moves_tx, moves) = mpsc::unbounded_channel();
    let ended = tokio::spawn(async move {
        let mut opening: Option<oneshot::Sender<Result<Substream, Error>>> = None;
        poll_fn(|cx| loop {
            if opening.is_none() {
                match requests.poll_recv(cx) {
                    Poll::Ready(Some(tx)) => opening = Some(tx),
                    // The test let go of the handle: stop driving.
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            if opening.is_some() {
                if let Poll::Ready(r) = muxer.poll_outbound_unpin(cx) {
                    let _ = opening.take().unwrap().send(r);
                    continue;
                }
            }
            match muxer.poll_inbound_unpin(cx) {
                Poll::Ready(Ok(s)) => {
                    let _ = inbound_tx.send(s);
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(e)),
                Poll::Pending => {}
            }
            match muxer.poll_unpin(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Some(e)),
                Poll::Ready(Ok(StreamMuxerEvent::AddressChange(to))) => {
                    let _ = moves_tx.send(to);
                    continue;
                }
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    });
    Driven {
        open,
        inbound,
        ended,
        moves,
    }
}

/// A UDP forwarder on 127.0.0.1 whose side toward the server can move to a new port, as a
/// NAT that rebinds does: the server sees its client at a new address.
pub struct Rebinder {
    front: std::net::SocketAddr,
    back: std::sync::Arc<std::sync::RwLock<std::sync::Arc<std::net::UdpSocket>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Rebinder {
    pub fn start(server: std::net::SocketAddr) -> Rebinder {
        use std::net::UdpSocket;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex, RwLock};
        let wait = Some(Duration::from_millis(5));
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        front.set_read_timeout(wait).unwrap();
        let back = Arc::new(RwLock::new(Arc::new(Self::socket())));
        let stop = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Mutex::new(None));
        let out = (
            Arc::clone(&front),
            Arc::clone(&back),
            Arc::clone(&stop),
            Arc::clone(&client),
        );
        std::thread::spawn(move || {
            let (front, back, stop, client) = out;
            let mut buf = vec![0; 65_536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    *client.lock().unwrap() = Some(from);
                    let socket = Arc::clone(&back.read().unwrap());
                    let _ = socket.send_to(&buf[..n], server);
                }
            }
        });
        let back_in = (Arc::clone(&front), Arc::clone(&back), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (front, back, stop) = back_in;
            let mut buf = vec![0; 65_536];
            while !stop.load(Ordering::Relaxed) {
                let socket = Arc::clone(&back.read().unwrap());
                if let Ok(n) = socket.recv(&mut buf) {
                    if let Some(to) = *client.lock().unwrap() {
                        let _ = front.send_to(&buf[..n], to);
                    }
                }
            }
        });
        Rebinder {
            front: front.local_addr().unwrap(),
            back,
            stop,
        }
    }

    fn socket() -> std::net::UdpSocket {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        socket
    }

    /// The address clients send to.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.front
    }

    /// Moves the side toward the server to a new port; returns it.
    pub fn rebind(&self) -> std::net::SocketAddr {
        let socket = std::sync::Arc::new(Self::socket());
        let at = socket.local_addr().unwrap();
        *self.back.write().unwrap() = socket;
        at
    }
}

impl Drop for Rebinder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
