//! # weir-std
//!
//! weir over a real UDP socket with plain threads and no async runtime. One driver thread
//! per [`Endpoint`] owns the sans-IO core endpoint and the socket; it moves datagrams
//! between them and sets the socket's read timeout to the core's next deadline, so the
//! core's timers fire on time. Application calls are blocking: each sends a command to the
//! driver over a channel and waits for its answer, and wakes the driver with a one-byte
//! datagram from a private waker socket (the driver drops datagrams from that address).
//!
//! Backpressure reaches the caller as a blocking call, never as an unbounded queue:
//! [`Connection::send_message`] waits while the connection's send buffer is full, and
//! messages stay in the core (under its flow control) until [`Connection::recv_message`]
//! asks for one.
//!
//! ```no_run
//! use weir_std::{Config, Endpoint};
//!
//! let server = Endpoint::bind("127.0.0.1:4433".parse()?, Config::default())?;
//! let client = Endpoint::bind("127.0.0.1:0".parse()?, Config::default())?;
//! let conn = client.connect(server.local_addr())?;
//! conn.send_message("hello".into())?;
//! let incoming = server.accept()?;
//! assert_eq!(&incoming.recv_message()?[..], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Status (issue 7, first part): bind, connect, accept, whole messages both ways, close and
//! stats. Streams, pipes, socket buffer tuning, graceful shutdown and tracing come next.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod driver;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
pub use weir_core::{CloseReason, Config, ConnectionStats, HandshakeError, Negotiated};

use driver::{Command, Driver};

/// What a call on an endpoint or connection can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed (binding, or setting it up).
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection attempt failed.
    #[error("handshake failed: {0}")]
    Handshake(HandshakeError),
    /// The connection ended.
    #[error("connection closed: {0:?}")]
    Closed(CloseReason),
    /// The core refused the call (see [`weir_core::ApiError`]).
    #[error("refused: {0}")]
    Refused(weir_core::ApiError),
    /// The endpoint's driver thread has stopped.
    #[error("the endpoint is shut down")]
    Shutdown,
}

/// A UDP socket driven by weir: connects out and accepts in.
pub struct Endpoint {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
}

/// What the endpoint's handles share: the way to the driver.
struct Shared {
    commands: Sender<Command>,
    waker: UdpSocket,
    driver_addr: SocketAddr,
    local: SocketAddr,
}

impl Shared {
    /// Sends `command` to the driver and waits for what it answers on `rx`.
    fn call<T>(&self, command: Command, rx: Receiver<T>) -> Result<T, Error> {
        self.commands.send(command).map_err(|_| Error::Shutdown)?;
        // A lost wake-up only delays the command to the driver's next deadline.
        let _ = self.waker.send_to(&[0], self.driver_addr);
        rx.recv().map_err(|_| Error::Shutdown)
    }
}

/// A one-answer channel.
fn answer<T>() -> (SyncSender<T>, Receiver<T>) {
    mpsc::sync_channel(1)
}

impl Endpoint {
    /// Binds a UDP socket at `addr` and starts the driver thread.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Endpoint, Error> {
        let socket = UdpSocket::bind(addr)?;
        let local = socket.local_addr()?;
        // The driver is woken through its own socket; an unspecified address is reached
        // through the loopback address of its family.
        let driver_addr = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
            }
            _ => local,
        };
        let waker = UdpSocket::bind(SocketAddr::new(driver_addr.ip(), 0))?;
        let (tx, rx) = mpsc::channel();
        let driver = Driver::new(config, socket, waker.local_addr()?, rx);
        let handle = std::thread::Builder::new()
            .name(format!("weir-driver {local}"))
            .spawn(move || driver.run())?;
        Ok(Endpoint {
            shared: Arc::new(Shared {
                commands: tx,
                waker,
                driver_addr,
                local,
            }),
            driver: Some(handle),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Connects to `remote`; returns once the handshake finished (or failed, within the
    /// configured handshake timeout).
    pub fn connect(&self, remote: SocketAddr) -> Result<Connection, Error> {
        let (tx, rx) = answer();
        let (handle, negotiated) = self.shared.call(Command::Connect(remote, tx), rx)??;
        Ok(self.connection(handle, negotiated))
    }

    /// Waits for the next client to connect.
    pub fn accept(&self) -> Result<Connection, Error> {
        let (tx, rx) = answer();
        let (handle, negotiated) = self.shared.call(Command::Accept(tx), rx)?;
        Ok(self.connection(handle, negotiated))
    }

    fn connection(&self, handle: weir_core::ConnectionHandle, negotiated: Negotiated) -> Connection {
        Connection {
            shared: Arc::clone(&self.shared),
            handle,
            negotiated,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.shared.commands.send(Command::Shutdown);
        let _ = self.shared.waker.send_to(&[0], self.shared.driver_addr);
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
    }
}

/// One connection of an [`Endpoint`]. Valid while the endpoint lives.
pub struct Connection {
    shared: Arc<Shared>,
    handle: weir_core::ConnectionHandle,
    negotiated: Negotiated,
}

impl Connection {
    /// The version and capabilities both sides agreed on.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// Sends `data` as one message (a stream of its own); waits while the send buffer is
    /// full. Returns once the core took it, not once the peer received it.
    pub fn send_message(&self, data: Bytes) -> Result<(), Error> {
        let (tx, rx) = answer();
        self.shared.call(Command::Send(self.handle, data, tx), rx)?
    }

    /// Waits for the next whole message from the peer.
    pub fn recv_message(&self) -> Result<Bytes, Error> {
        let (tx, rx) = answer();
        self.shared.call(Command::Recv(self.handle, tx), rx)?
    }

    /// Closes the connection with an application `code`; the peer is told.
    pub fn close(&self, code: u64) -> Result<(), Error> {
        let (tx, rx) = answer();
        self.shared.call(Command::Close(self.handle, code, tx), rx)?
    }

    /// The connection's counters, while it is open.
    pub fn stats(&self) -> Option<ConnectionStats> {
        let (tx, rx) = answer();
        self.shared
            .call(Command::Stats(self.handle, tx), rx)
            .ok()
            .flatten()
    }
}
