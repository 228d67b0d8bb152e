//! The driver thread: owns the core endpoint and the socket, carries datagrams and time
//! between them, and answers the application's commands (waiting ones are kept until the
//! core's events let them finish).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::Bytes;
use weir_core::time::Instant;
use weir_core::wire::{Reason, StreamId, MAX_DATAGRAM_SIZE};
use weir_core::{ApiError, CloseReason, Config, ConnectionHandle, ConnectionStats, Event, Negotiated, Read};

use crate::Error;

/// Longest message `recv_message` gathers. A longer one is refused and the stream stopped.
const MAX_MESSAGE: u64 = 256 << 20;
/// The longest the driver sleeps with no deadline (a command wakes it sooner).
const IDLE_WAIT: StdDuration = StdDuration::from_secs(1);

type Reply<T> = SyncSender<T>;
/// The answer to `connect`.
type ConnectReply = Reply<Result<(ConnectionHandle, Negotiated), Error>>;
/// The answer to `send_message` and `close`.
type DoneReply = Reply<Result<(), Error>>;

/// What an application handle asks the driver.
pub(crate) enum Command {
    Connect(SocketAddr, ConnectReply),
    Accept(Reply<(ConnectionHandle, Negotiated)>),
    Send(ConnectionHandle, Bytes, DoneReply),
    Recv(ConnectionHandle, Reply<Result<Bytes, Error>>),
    Close(ConnectionHandle, u64, DoneReply),
    Stats(ConnectionHandle, Reply<Option<ConnectionStats>>),
    Shutdown,
}

pub(crate) struct Driver {
    ep: weir_core::Endpoint,
    socket: UdpSocket,
    waker: SocketAddr,
    commands: Receiver<Command>,
    started: StdInstant,
    connecting: BTreeMap<ConnectionHandle, ConnectReply>,
    /// Connections clients opened that no `accept` took yet, and `accept`s waiting.
    accepted: VecDeque<(ConnectionHandle, Negotiated)>,
    acceptors: VecDeque<Reply<(ConnectionHandle, Negotiated)>>,
    /// Incoming streams with something to read, in the order they became readable.
    readable: BTreeMap<ConnectionHandle, VecDeque<StreamId>>,
    receivers: BTreeMap<ConnectionHandle, VecDeque<Reply<Result<Bytes, Error>>>>,
    /// Messages refused for a full send buffer, retried on `Writable`.
    senders: BTreeMap<ConnectionHandle, VecDeque<(Bytes, DoneReply)>>,
    /// How connections ended, for the calls that come after.
    closed: BTreeMap<ConnectionHandle, CloseReason>,
    /// Connections established and not yet closed.
    live: BTreeSet<ConnectionHandle>,
    buf: Vec<u8>,
}

impl Driver {
    pub(crate) fn new(
        config: Config,
        socket: UdpSocket,
        waker: SocketAddr,
        commands: Receiver<Command>,
    ) -> Self {
        // The seed only has to differ between endpoints; the clock is as good as any.
        let started = StdInstant::now();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Driver {
            ep: weir_core::Endpoint::new(config, seed),
            socket,
            waker,
            commands,
            started,
            connecting: BTreeMap::new(),
            accepted: VecDeque::new(),
            acceptors: VecDeque::new(),
            readable: BTreeMap::new(),
            receivers: BTreeMap::new(),
            senders: BTreeMap::new(),
            closed: BTreeMap::new(),
            live: BTreeSet::new(),
            buf: vec![0; MAX_DATAGRAM_SIZE],
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.started.elapsed().as_micros() as u64)
    }

    pub(crate) fn run(mut self) {
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return self.shutdown(),
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.flush();
            self.events();
            self.flush();
            self.wait();
        }
    }

    /// Waits for a datagram until the core's next deadline, then fires the timers due.
    fn wait(&mut self) {
        let now = self.now();
        let wait = self.ep.poll_timeout().map_or(IDLE_WAIT, |t| {
            StdDuration::from_micros(t.saturating_duration_since(now).as_micros()).min(IDLE_WAIT)
        });
        // A zero timeout means "block forever" to the OS: wait at least a microsecond.
        let _ = self
            .socket
            .set_read_timeout(Some(wait.max(StdDuration::from_micros(1))));
        match self.socket.recv_from(&mut self.buf) {
            Ok((_, from)) if from == self.waker => {}
            Ok((len, from)) => {
                // One copy, out of the reused receive buffer (a buffer pool is issue 10's).
                let datagram = Bytes::copy_from_slice(&self.buf[..len]);
                let now = self.now();
                self.ep.handle_datagram(now, from, datagram);
            }
            // Timeouts, and transient errors (an ICMP unreachable surfacing here) that must
            // not stop the endpoint: the core's own timers deal with a peer that is gone.
            Err(_) => {}
        }
        let now = self.now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
    }

    fn flush(&mut self) {
        let now = self.now();
        while let Some(t) = self.ep.poll_transmit(now, &mut self.buf) {
            // A full buffer or an unreachable network loses this datagram; recovery resends
            // what mattered.
            let _ = self.socket.send_to(&self.buf[..t.len], t.destination);
        }
    }

    fn command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Connect(remote, reply) => match self.ep.connect(now, remote) {
                Ok(conn) => {
                    self.connecting.insert(conn, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Refused(e)));
                }
            },
            Command::Accept(reply) => match self.accepted.pop_front() {
                Some(c) => {
                    let _ = reply.send(c);
                }
                None => self.acceptors.push_back(reply),
            },
            Command::Send(conn, data, reply) => {
                if self.senders.get(&conn).is_some_and(|q| !q.is_empty()) {
                    // Keep the order of messages waiting for room.
                    self.senders.entry(conn).or_default().push_back((data, reply));
                } else {
                    self.send(conn, data, reply);
                }
            }
            Command::Recv(conn, reply) => {
                self.receivers.entry(conn).or_default().push_back(reply);
                self.deliver(conn);
            }
            Command::Close(conn, code, reply) => {
                let r = self
                    .ep
                    .close(now, conn, code, Reason::default())
                    .map_err(Error::Refused);
                let _ = reply.send(r);
            }
            Command::Stats(conn, reply) => {
                let _ = reply.send(self.ep.connection_stats(conn));
            }
            Command::Shutdown => {}
        }
    }

    /// Hands `data` to the core, or keeps it until the send buffer has room.
    fn send(&mut self, conn: ConnectionHandle, data: Bytes, reply: DoneReply) {
        match self.ep.send_message(conn, None, data.clone()) {
            Ok(_) => {
                let _ = reply.send(Ok(()));
            }
            Err(ApiError::WouldBlock | ApiError::StreamLimit) => {
                self.senders.entry(conn).or_default().push_back((data, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(self.error(conn, e)));
            }
        }
    }

    /// Why a call on `conn` failed: its end, if it ended.
    fn error(&self, conn: ConnectionHandle, e: ApiError) -> Error {
        self.closed
            .get(&conn)
            .map_or(Error::Refused(e), |reason| Error::Closed(reason.clone()))
    }

    /// Answers waiting receivers of `conn` with whole messages, as long as there are both.
    fn deliver(&mut self, conn: ConnectionHandle) {
        while self.receivers.get(&conn).is_some_and(|q| !q.is_empty()) {
            if let Some(reason) = self.closed.get(&conn).cloned() {
                let reply = self.receivers.get_mut(&conn).and_then(VecDeque::pop_front);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::Closed(reason)));
                }
                continue;
            }
            let Some(&stream) = self.readable.get(&conn).and_then(VecDeque::front) else {
                return;
            };
            let message = match self.ep.read_message(conn, stream, MAX_MESSAGE) {
                Ok(Read::Data { bytes, .. }) => Some(bytes),
                // Not whole yet: a later StreamReadable brings it back.
                Ok(Read::Pending) => None,
                Ok(_) | Err(_) => {
                    // Reset, failed verification, too long or gone: skip this stream.
                    let _ = self.ep.stop_sending(conn, stream, 0);
                    None
                }
            };
            if let Some(q) = self.readable.get_mut(&conn) {
                q.pop_front();
            }
            if let Some(bytes) = message {
                let reply = self.receivers.get_mut(&conn).and_then(VecDeque::pop_front);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(bytes));
                }
            }
        }
    }

    fn events(&mut self) {
        while let Some(e) = self.ep.poll_event() {
            match e {
                Event::Connected { conn, negotiated } => {
                    // Handles are reused: whatever a previous connection left is gone.
                    self.closed.remove(&conn);
                    self.live.insert(conn);
                    self.connected(conn, negotiated);
                }
                Event::HandshakeFailed { conn, reason } => {
                    if let Some(reply) = self.connecting.remove(&conn) {
                        let _ = reply.send(Err(Error::Handshake(reason)));
                    }
                }
                Event::StreamReadable { conn, stream } => {
                    let q = self.readable.entry(conn).or_default();
                    if !q.contains(&stream) {
                        q.push_back(stream);
                    }
                    self.deliver(conn);
                }
                Event::Writable { conn } | Event::StreamsAvailable { conn } => {
                    let waiting = self.senders.remove(&conn).unwrap_or_default();
                    for (data, reply) in waiting {
                        if self.senders.get(&conn).is_some_and(|q| !q.is_empty()) {
                            self.senders.entry(conn).or_default().push_back((data, reply));
                        } else {
                            self.send(conn, data, reply);
                        }
                    }
                }
                Event::Closed { conn, reason } => {
                    self.live.remove(&conn);
                    self.accepted.retain(|(c, _)| *c != conn);
                    if let Some(reply) = self.connecting.remove(&conn) {
                        let _ = reply.send(Err(Error::Closed(reason.clone())));
                    }
                    self.readable.remove(&conn);
                    for (_, reply) in self.senders.remove(&conn).unwrap_or_default() {
                        let _ = reply.send(Err(Error::Closed(reason.clone())));
                    }
                    self.closed.insert(conn, reason);
                    self.deliver(conn);
                }
                _ => {}
            }
        }
    }

    /// A connection finished its handshake: the `connect` waiting for it, else an
    /// `accept`, else the accept queue.
    fn connected(&mut self, conn: ConnectionHandle, negotiated: Negotiated) {
        if let Some(reply) = self.connecting.remove(&conn) {
            let _ = reply.send(Ok((conn, negotiated)));
        } else if let Some(reply) = self.acceptors.pop_front() {
            let _ = reply.send((conn, negotiated));
        } else {
            self.accepted.push_back((conn, negotiated));
        }
    }

    /// Closes every connection and sends the CLOSE frames once (waiting for the peers'
    /// acknowledgement is not done yet).
    fn shutdown(mut self) {
        let now = self.now();
        for conn in std::mem::take(&mut self.live) {
            let _ = self.ep.close(now, conn, 0, Reason::default());
        }
        self.flush();
    }
}
