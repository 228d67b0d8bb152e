//! One connection: handshake progress, streams, acknowledgements and retransmission,
//! credit, liveness and close (spec/protocol.md §4, §7).
//!
//! The [`Endpoint`](crate::Endpoint) owns every connection and drives it: it routes each
//! decoded packet here (`handle_packet`), forwards application commands, asks for the next
//! datagram (`poll_transmit`), fires timers (`handle_timeout`) and collects events. A
//! connection never sees a socket, a clock or a random source.
//!
//! Timers are an enum-indexed table ([`Timer`]); [`Connection::next_timeout`] is its minimum.
//! Every timer action checks its own deadline, so firing early does nothing.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::black_hole::{BlackHole, Probe};
use crate::config::{Config, PeerDecision, PeerParams};
use crate::congestion::{AckEvent, CongestionAlgorithm, CongestionController, LossEvent, RttSample};
use crate::crypto::keys::{Entropy, Identity, PublicKey};
use crate::crypto::noise::{NoiseHandshake, Secrets};
use crate::crypto::protection::Protection;
use crate::delivery::{Held, Receipts};
use crate::event::{ApiError, CloseReason, Event, Priority, Read, StreamHeader, ViolationKind};
use crate::flow::{ReceiveWindow, SendCredit};
use crate::handle::ConnectionHandle;
use crate::handshake::{self, HandshakeError, Negotiated, NotOpened, ServerNext, ServerNoise};
use crate::pacing::{Pace, Pacer};
use crate::pipe::{Progress, TargetState};
use crate::recovery::received::Received;
use crate::recovery::{Blocked, Outcome, Recovery, SentFrame, SentPacket, Timeout};
use crate::stats::ConnectionStats;
use crate::stream::held::{budget, Datagram, STREAM_COST};
use crate::stream::recv::{RecvError, RecvStream};
use crate::stream::send::SendStream;
use crate::time::{Duration, Instant};
use crate::verify::{Mismatch, Verifier};
use crate::wire::{
    Accept, Ack, Close, CloseCode, ConnectionId, DecodeError, Frame, Header, KeyPhase, Packet, PacketKind,
    PacketNumberLen, PacketWriter, Reason, RejectReason, Side, StreamFrame, StreamId, TransportErrorCode,
    MIN_DATAGRAM_SIZE, VERSION_1, VERSION_2,
};
use crate::wire::{Delivery, VERIFICATION_FAILED};

mod lifecycle;
mod timers;

use lifecycle::{State, Step};
pub use timers::Timer;
use timers::Timers;

#[derive(Debug)]
enum HandshakeState {
    Client(handshake::Client),
    /// The answer is sent again when a copy of the HELLO arrives and, until the client's
    /// first data packet (or NOISE_FINISH) confirms the handshake, on a backoff timer of its
    /// own (so a lost ACK of the answer cannot leave the client connected and the server not).
    Server {
        /// ACCEPT (version 1) or NOISE_ACCEPT (version 2).
        answer: Frame,
        /// Version 2, pattern XX: the handshake, waiting for the client's NOISE_FINISH.
        noise: Option<NoiseHandshake>,
        send_accept: bool,
        resend: Instant,
        backoff: Duration,
        /// The answer is sent until then (the handshake timeout): a client has given up by
        /// then if it never read one.
        answer_until: Instant,
        /// The attempt is forgotten then: the handshake timeout, or the idle timeout after
        /// the last answer sent, whichever is later (spec §8, Handshake).
        deadline: Instant,
    },
    Done,
}

/// A control frame waiting to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    MaxData,
    MaxStreamData(StreamId),
    MaxStreams,
    DataBlocked,
    StreamDataBlocked(StreamId),
    StreamsBlocked,
    ResetStream {
        id: StreamId,
        code: u64,
        final_size: u64,
    },
    StopSending {
        id: StreamId,
        code: u64,
    },
    Ping,
}

#[derive(Debug, Default)]
struct StreamState {
    send: Option<SendStream>,
    recv: Option<RecvStream>,
    /// What the opening frame announces (sent, or received once `opened`).
    header: StreamHeader,
    /// Receive side: the hash of what the application read, when the sender attached a
    /// digest (spec §8, Verification).
    verifier: Option<Verifier>,
    /// Receive side: StreamOpened was reported.
    opened: bool,
    /// Receive side: a StreamReadable is outstanding (not re-sent until the app reads).
    readable_signaled: bool,
    /// Receive side: the application no longer wants the data (STOP_SENDING sent).
    stopped: bool,
    /// Receive side: bytes of this stream counted as consumed for connection credit (read,
    /// handed to a pipe, or given up on); a reset releases the rest up to its final size.
    released: u64,
    /// Receive side: bytes gathered for a whole-message read, and their total length.
    partial: SmallVec<[Bytes; 2]>,
    partial_len: u64,
    /// Send side: queued in the send round robin.
    queued: bool,
    /// Send side: its class in the send scheduler.
    priority: Priority,
    /// Send side: the stream credit last reported with STREAM_DATA_BLOCKED.
    blocked_reported: Option<u64>,
    /// Send side: a pipe writes it; kept once done until the pipe releases it.
    piped: bool,
    /// Send side, piped: the receipt its peer sent (spec §8, Delivery), for the pipe.
    receipt: Option<Delivery>,
}

/// A stream a pipe started tapping (`Connection::tap_stream`).
#[derive(Clone, Debug)]
pub(crate) struct Tapped {
    pub(crate) start: u64,
    /// The source's header for the targets: the total length is what is left from `start`,
    /// and the digest goes only if `start` is 0 (it covers the whole stream).
    pub(crate) header: StreamHeader,
    /// Bytes received and not read when tapping began.
    pub(crate) buffered: u64,
}

/// What arrived on a tapped stream (`Connection::take_tapped`).
#[derive(Debug, Default)]
pub(crate) struct TapOutput {
    pub(crate) fragments: Vec<(u64, Bytes)>,
    pub(crate) final_size: Option<u64>,
    /// Every byte up to the final size was handed out.
    pub(crate) complete: bool,
    pub(crate) reset: Option<u64>,
}

/// A handshake message sent again on a backoff timer until the peer's answer shows it
/// arrived (the client's NOISE_FINISH, spec §11.2).
#[derive(Debug)]
struct Resend {
    message: Bytes,
    at: Instant,
    backoff: Duration,
}

/// How a server answers the HELLO that creates its connection.
pub(crate) enum ServerAnswer {
    /// Version 1: ACCEPT.
    V1(Accept),
    /// Version 2: NOISE_ACCEPT, and what the Noise step left (spec §11.2).
    V2(ServerNoise),
}

pub(crate) struct Connection {
    pub(crate) handle: ConnectionHandle,
    /// The wire version in use: the HELLO's, which a client may change once (spec §11.7).
    version: u16,
    /// Version 2: the packet keys, once the handshake gave them (spec §11.3).
    crypto: Option<Box<Protection>>,
    /// Version 2: the peer's static public key, once the handshake authenticated it.
    peer_key: Option<PublicKey>,
    /// Client, pattern XX: NOISE_FINISH, sent until a data packet from the server opens.
    finish: Option<Resend>,
    /// Server side: the (address, client id) its HELLO came with, for the endpoint's index.
    pub(crate) hello_key: Option<crate::admission::HelloKey>,
    pub(crate) side: Side,
    pub(crate) remote: SocketAddr,
    pub(crate) local_cid: ConnectionId,
    remote_cid: ConnectionId,
    state: State,
    handshake: HandshakeState,
    negotiated: Option<Negotiated>,
    peer: PeerParams,
    recovery: Recovery,
    received: Received,
    congestion: CongestionAlgorithm,
    cc: Box<dyn CongestionController>,
    pacer: Pacer,
    /// When the pacer lets the next datagram leave, if it held one back.
    pacing_wake: Option<Instant>,
    /// The window had room but there was nothing to send (RFC 9002 §7.8).
    app_limited: bool,
    /// Boxed: a stream's state is several hundred bytes, and a B-tree moves its values
    /// about on every insert and removal (a stream per message made that a tenth of the
    /// per-message cost).
    streams: BTreeMap<StreamId, Box<StreamState>>,
    /// Boxes of streams that ended, kept for the next ones (at most [`SPARE_STREAMS`]): a
    /// connection carrying a message per stream then allocates no box per message. Boxes,
    /// not states: what is kept is the allocation, moved back into `streams` as it is.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<StreamState>>,
    /// Streams with something to send, one round-robin queue per priority class.
    send_queues: [VecDeque<StreamId>; Priority::COUNT],
    send_buffer_limit: u64,
    /// `Config::max_retransmission_ratio`.
    retransmission_ratio: Option<u32>,
    next_stream_index: u64,
    /// Streams the peer lets us open (used: how many we opened).
    stream_credit: SendCredit,
    peer_streams_opened: u64,
    /// Streams the peer may open: what we would announce now, and what we last announced.
    /// Grants are batched: a MAX_STREAMS goes out once the peer's announced credit is down
    /// to half of `max_concurrent_streams` (RFC 9000 §4.6), not after every stream read,
    /// so a request-response exchange is not followed by a datagram of its own.
    local_max_streams: u64,
    announced_max_streams: u64,
    max_concurrent_streams: u64,
    /// Connection credit the peer granted (used: new stream bytes sent).
    send_credit: SendCredit,
    /// Connection credit we grant, and what the peer used of it and the application read.
    recv_flow: ReceiveWindow,
    recv_data: u64,
    /// What the peer's streams cost the heap, at least (module `stream::held`): grown by
    /// each frame, summed again when it passes the budget.
    recv_cost: u64,
    read_data: u64,
    /// Bytes the application handed us that are not yet acknowledged (held by reference).
    send_buffered: u64,
    /// A write was refused for lack of room: `Writable` is due once this much is free.
    writable_wanted: Option<u64>,
    /// The latest time an input carried (for what the application's calls decide).
    clock: Instant,
    /// The window a stream the peer opens starts with: the configured one, or the largest
    /// a stream of this connection has grown to since (spec §4.12, Streams and credit).
    stream_window: u64,
    max_stream_window: u64,
    control: VecDeque<Control>,
    /// RESET_STREAM and STOP_SENDING we sent, kept to send again if lost.
    resets: BTreeMap<StreamId, (u64, u64)>,
    /// Delivery receipts we owe the peer and await from it (capability RECEIPTS).
    receipts: Receipts,
    stops: BTreeMap<StreamId, u64>,
    /// Boxed: set only while closing, and a `Close` is large.
    close_frame: Option<Box<Close>>,
    close_pending: bool,
    /// `Event::Closed` was reported (once per connection, whatever else ends it after).
    close_reported: bool,
    timers: Timers,
    last_received: Instant,
    last_eliciting_sent: Instant,
    probes: u8,
    /// Whether large datagrams get through (RFC 8899 black-hole detection).
    black_hole: BlackHole,
    /// Server side, until the client proved it receives at its address (spec §10.2): bytes
    /// received from it and sent to it, the latter kept within 3× the former.
    unvalidated: Option<Amplification>,
    /// After the peer's address changed: the first packet number sent to the new address.
    /// An ACK of it (or of a later one) proves the peer receives there (spec §10.2).
    path_probe: Option<u64>,
    /// The datagram being handled: its size (it opens a new address's account), and whether
    /// a slice of it held pays for it (module `stream::held`).
    datagram: Datagram,
    events: VecDeque<Event>,
    pub(crate) stats: ConnectionStats,
}

/// The anti-amplification account of an address not yet validated (spec §10.2).
#[derive(Clone, Copy, Debug, Default)]
struct Amplification {
    received: u64,
    sent: u64,
}

/// Before its address is validated, a server sends a client at most this many times what it
/// received from it (RFC 9000 §8.1).
const AMPLIFICATION_FACTOR: u64 = 3;

/// Boxes of ended streams a connection keeps for new ones (`Connection::spare`): about
/// 800 bytes each.
const SPARE_STREAMS: usize = 8;

/// The longest an application's close waits for what it wrote and the receipts we owe to be
/// acknowledged (or three PTOs, if longer), before CLOSE goes out regardless.
const LINGER: Duration = Duration::from_secs(3);

/// Retransmitted bytes allowed beyond `max_retransmission_ratio` times those acknowledged,
/// so that losses before much is acknowledged (a first flight into a blackout) end nothing.
const RETRANSMISSION_ALLOWANCE: u64 = 64 << 10;

/// What the endpoint gives a connection it creates.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) handle: ConnectionHandle,
    /// The connection id peers address it by.
    pub(crate) cid: ConnectionId,
    /// Chooses the packet numbers left out to catch optimistic ACKs (spec §8); secret,
    /// from the endpoint's generator.
    pub(crate) skip_seed: u64,
    /// The connection's own generator of secrets (a client's Noise ephemeral keys).
    pub(crate) entropy: Entropy,
}

impl Connection {
    fn new(
        slot: Slot,
        side: Side,
        now: Instant,
        config: &Config,
        remote: SocketAddr,
        handshake: HandshakeState,
    ) -> Self {
        let Slot {
            handle,
            cid: local_cid,
            skip_seed,
            ..
        } = slot;
        Connection {
            handle,
            version: VERSION_1,
            crypto: None,
            peer_key: None,
            finish: None,
            hello_key: None,
            side,
            remote,
            local_cid,
            remote_cid: ConnectionId::UNSET,
            state: State::Handshaking,
            handshake,
            negotiated: None,
            peer: PeerParams::from_wire(&Default::default()),
            recovery: Recovery::new(config.initial_rtt, config.max_probe_interval, skip_seed),
            received: Received::new(config.max_tracked_ack_ranges),
            congestion: config.congestion.clone(),
            cc: config.congestion.build(MIN_DATAGRAM_SIZE),
            pacer: Pacer::new(now),
            pacing_wake: None,
            app_limited: false,
            streams: BTreeMap::new(),
            spare: Vec::new(),
            send_queues: Default::default(),
            send_buffer_limit: config.send_buffer,
            retransmission_ratio: config.max_retransmission_ratio,
            next_stream_index: 0,
            stream_credit: SendCredit::new(0),
            peer_streams_opened: 0,
            local_max_streams: config.max_concurrent_streams,
            announced_max_streams: config.max_concurrent_streams,
            max_concurrent_streams: config.max_concurrent_streams,
            send_credit: SendCredit::new(0),
            // Growth comes from the endpoint's shared budget (`grant_window_room`).
            recv_flow: ReceiveWindow::new(config.receive_window, config.max_receive_window).with_room(0),
            recv_data: 0,
            recv_cost: 0,
            read_data: 0,
            send_buffered: 0,
            writable_wanted: None,
            clock: now,
            stream_window: config.stream_receive_window,
            max_stream_window: config.max_stream_receive_window,
            control: VecDeque::new(),
            resets: BTreeMap::new(),
            receipts: Receipts::default(),
            stops: BTreeMap::new(),
            close_frame: None,
            close_pending: false,
            close_reported: false,
            timers: Timers::default(),
            last_received: now,
            last_eliciting_sent: now,
            probes: 0,
            black_hole: BlackHole::default(),
            unvalidated: None,
            path_probe: None,
            datagram: Datagram::new(0),
            events: VecDeque::new(),
            stats: ConnectionStats::default(),
        }
    }

    /// A connection we start, with its own congestion controller, as `identity`; `server`
    /// names the server's key (an IK handshake) or, `None`, learns it (XX). HELLO goes out
    /// on the next `poll_transmit`.
    pub(crate) fn client(
        slot: Slot,
        now: Instant,
        config: &Config,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
        identity: &Identity,
        server: Option<PublicKey>,
    ) -> Self {
        let client = handshake::Client::new(config, now, slot.cid, identity, slot.entropy.clone(), server);
        let version = client.version;
        let hs = HandshakeState::Client(client);
        let mut c = Self::new(slot, Side::Client, now, config, remote, hs);
        c.version = version;
        c.congestion = congestion;
        c.refresh_timers(config);
        c
    }

    /// A connection a client asked for with `hello_packet` (carrying a HELLO that
    /// negotiated to `answer`): the answer goes out on the next `poll_transmit`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn server(
        slot: Slot,
        now: Instant,
        config: &Config,
        remote: SocketAddr,
        hello: (ConnectionId, crate::admission::HelloKey),
        hello_header: &Header,
        hello_params: &crate::wire::TransportParams,
        answer: ServerAnswer,
        validated: bool,
    ) -> Self {
        let (client_cid, hello_key) = hello;
        let (answer, negotiated, noise, keys) = match answer {
            ServerAnswer::V1(accept) => {
                let negotiated = Negotiated {
                    version: accept.version,
                    capabilities: accept.capabilities,
                    cipher: None,
                };
                (Frame::Accept(accept), negotiated, None, None)
            }
            ServerAnswer::V2(sn) => {
                let negotiated = Negotiated {
                    version: sn.accept.version,
                    capabilities: sn.accept.capabilities,
                    cipher: Some(sn.cipher),
                };
                let (noise, keys) = match sn.next {
                    ServerNext::Finish(noise) => (Some(noise), None),
                    ServerNext::Done { peer, secrets } => (None, Some((peer, secrets))),
                };
                (Frame::NoiseAccept(sn.message), negotiated, noise, keys)
            }
        };
        let backoff = config.initial_rtt.saturating_mul(3);
        let hs = HandshakeState::Server {
            answer,
            noise,
            send_accept: true,
            resend: now + backoff,
            backoff: backoff.saturating_mul(2),
            answer_until: now + config.handshake_timeout,
            deadline: now + config.handshake_timeout,
        };
        let mut c = Self::new(slot, Side::Server, now, config, remote, hs);
        c.remote_cid = client_cid;
        c.hello_key = Some(hello_key);
        if !validated {
            c.unvalidated = Some(Amplification::default());
        }
        c.version = hello_header.version;
        c.negotiated = Some(negotiated);
        if let (Some((peer, secrets)), Some(cipher)) = (keys, negotiated.cipher) {
            c.authenticated(config, cipher, peer, secrets);
        }
        c.apply_peer_params(config, PeerParams::from_wire(hello_params));
        if c.version == VERSION_1 {
            // Its ACK rides on the ACCEPT. Version 2 handshake packets are not authenticated,
            // so their numbers are never recorded (a forged one must not poison the record).
            c.received.on_packet(
                hello_header.number,
                now,
                hello_header.timestamp,
                true,
                config.max_ack_delay,
            );
        }
        c.refresh_timers(config);
        c
    }

    /// The handshake ended (version 2): `peer` is who the other side is, `secrets` key the
    /// packets from now on (spec §11.3).
    fn authenticated(
        &mut self,
        config: &Config,
        cipher: crate::wire::Cipher,
        peer: PublicKey,
        secrets: Secrets,
    ) {
        let keys = Protection::new(cipher, secrets.send, secrets.recv, config.key_update_interval);
        self.crypto = Some(Box::new(keys));
        self.peer_key = Some(peer);
    }

    /// The server's stateless reset token for this connection, once its ACCEPT gave one
    /// (a client's only: spec §6.1).
    pub(crate) fn reset_token(&self) -> Option<[u8; 16]> {
        self.peer.reset_token.filter(|_| self.side == Side::Client)
    }

    /// A stateless reset bearing our token arrived: the server no longer has the
    /// connection, so it ends at once, with nothing sent (spec §6.1).
    pub(crate) fn on_stateless_reset(&mut self) {
        if !self.is_closed() {
            self.close_silently(CloseReason::Reset);
        }
    }

    /// The peer's public key, once the handshake authenticated it (version 2) and the peer
    /// proved, in this handshake, that it holds it: a server's connection is confirmed only
    /// by the client's first packet under the new keys, and an IK HELLO alone may be a
    /// replay by someone without the client's keys (spec §11.2).
    pub(crate) fn peer_key(&self) -> Option<PublicKey> {
        self.peer_key.filter(|_| !self.is_half_open())
    }

    /// Opens a datagram of this connection: a sealed one with its keys (spec §11.4; none
    /// before the handshake gives them), any other as it is.
    pub(crate) fn open(&mut self, datagram: BytesMut) -> Result<Packet, DecodeError> {
        let largest = self.received.largest();
        let crypto = &mut self.crypto;
        let out = Packet::open(datagram, largest, |header, aad, payload, tag| {
            crypto
                .as_mut()
                .is_some_and(|p| p.open(header.number, header.key_phase, aad, payload, tag))
        });
        if out == Err(DecodeError::AuthenticationFailed) {
            self.stats.unauthenticated += 1;
        }
        out
    }

    fn apply_peer_params(&mut self, config: &Config, peer: PeerParams) {
        self.peer = peer;
        // Nothing is in flight yet: the controller starts over for the datagram size in use.
        self.cc = self.congestion.build(self.datagram_size(config, usize::MAX));
        self.send_credit = SendCredit::new(peer.max_data);
        self.stream_credit = SendCredit::new(peer.max_streams);
        self.recovery.set_peer_max_ack_delay(peer.max_ack_delay);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub(crate) fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether a datagram of wire version `version` may be this connection's at all: one
    /// of another version cannot be (spec §11.4), and on an encrypted connection one of
    /// version 1 is plaintext anyone who saw the connection id could have forged.
    pub(crate) fn speaks(&self, version: u16) -> bool {
        version == self.version
    }

    pub(crate) fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Bytes held for the application: received but unread (reassembly and whole-message
    /// reads), and written but unacknowledged (held by reference to the application's
    /// buffers, not copied).
    /// What the connection's receive window holds of the endpoint's budget
    /// (`Config::receive_buffer_total`): its window, and the growth it was granted.
    pub(crate) fn window_reserved(&self) -> u64 {
        self.recv_flow.window().saturating_add(self.recv_flow.room())
    }

    /// The connection's receive budget with its window at [`window_reserved`]
    /// (module `stream::held`): what it holds of `Config::receive_buffer_total`.
    pub(crate) fn budget_reserved(&self) -> u64 {
        budget(self.window_reserved(), self.max_concurrent_streams)
    }

    /// Whether the receive window wanted to grow past what it was granted.
    pub(crate) fn window_starved(&self) -> bool {
        self.recv_flow.starved()
    }

    /// Lets the receive window grow by up to `more` bytes (at most doubling it).
    pub(crate) fn grant_window_room(&mut self, more: u64) {
        let more = more.min(self.recv_flow.window());
        self.recv_flow.grant_room(more);
    }

    /// Bytes written (by the application or a pipe) and not yet acknowledged: what
    /// `buffered` sums over the streams, kept as one counter.
    pub(crate) fn send_buffered(&self) -> u64 {
        self.send_buffered
    }

    pub(crate) fn buffered(&self) -> (u64, u64) {
        let mut recv = 0;
        let mut send = 0;
        for s in self.streams.values() {
            recv += s.recv.as_ref().map_or(0, RecvStream::buffered);
            recv += s.partial_len;
            send += s.send.as_ref().map_or(0, SendStream::unacked);
        }
        debug_assert_eq!(send, self.send_buffered, "the send counter drifted");
        (recv, send)
    }

    /// A datagram of `len` bytes arrived from `from` for this connection (whatever it held):
    /// from the address not yet validated, it widens what may be sent there.
    pub(crate) fn on_datagram_len(&mut self, from: SocketAddr, len: usize) {
        self.datagram = Datagram::new(len);
        if let Some(a) = self.unvalidated.as_mut().filter(|_| from == self.remote) {
            a.received += len as u64;
        }
    }

    /// Whether the handshake of a connection a client asked for is still unconfirmed.
    pub(crate) fn is_half_open(&self) -> bool {
        matches!(self.handshake, HandshakeState::Server { .. }) && self.state == State::Handshaking
    }

    /// The latest time an input carried.
    pub(crate) fn clock(&self) -> Instant {
        self.clock
    }

    /// The largest packet number received, to expand the next one's.
    pub(crate) fn largest_received(&self) -> Option<u64> {
        self.received.largest()
    }

    /// A datagram for this connection passed its checksum but broke the protocol
    /// (spec/protocol.md §6): close, telling the peer the code of `kind`.
    pub(crate) fn protocol_error(&mut self, now: Instant, config: &Config, kind: ViolationKind) {
        if self.state == State::Handshaking || self.is_open() {
            self.violated(now, kind);
            self.refresh_timers(config);
        }
    }

    /// Closes for a protocol violation: the peer is told the code, and a few words.
    fn violated(&mut self, now: Instant, kind: ViolationKind) {
        let reason = Reason::from_static(kind.reason()).unwrap_or_default();
        self.close_with(now, CloseCode::Transport(kind.code()), reason);
        self.closed(CloseReason::ProtocolViolation { kind });
    }

    /// The connection ended: the application is told why, with the final counters.
    fn closed(&mut self, reason: CloseReason) {
        if core::mem::replace(&mut self.close_reported, true) {
            // Ended while lingering after the application's close: it was told then.
            return;
        }
        let stats = Box::new(self.stats());
        self.events.push_back(Event::Closed {
            conn: self.handle,
            reason,
            stats,
        });
    }

    pub(crate) fn rtt(&self) -> Duration {
        self.recovery.rtt().smoothed()
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            spurious_losses: self.recovery.spurious_losses(),
            congestion_window: self.cc.window() as u64,
            bytes_in_flight: self.recovery.bytes_in_flight() as u64,
            smoothed_rtt: self.recovery.rtt().smoothed(),
            min_rtt: self.recovery.rtt().min(),
            queueing_delay: self.cc.queueing_delay(),
            pacing_rate: self.cc.pacing_rate(),
            key_updates_sent: self.crypto.as_ref().map_or(0, |p| p.updates_sent),
            key_updates_received: self.crypto.as_ref().map_or(0, |p| p.updates_received),
            black_hole: self.black_hole.detected(),
            ..self.stats
        }
    }

    /// The largest datagram this connection sends, within a buffer of `buf_len` bytes.
    fn datagram_size(&self, config: &Config, buf_len: usize) -> usize {
        self.large_datagram_size(config, buf_len)
            .min(self.black_hole.limit().unwrap_or(usize::MAX))
    }

    /// The datagram size both ends allow, whatever black-hole detection decided.
    fn large_datagram_size(&self, config: &Config, buf_len: usize) -> usize {
        usize::from(config.max_datagram_size.min(self.peer.max_datagram_size))
            .max(MIN_DATAGRAM_SIZE)
            .min(buf_len)
    }

    /// Events for the endpoint to hand out.
    pub(crate) fn take_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- timers

    /// The earliest timer and which it is.
    pub(crate) fn next_timeout(&self) -> Option<(Instant, Timer)> {
        self.timers.next()
    }

    /// Rebuilds the timer table from the state it depends on.
    pub(crate) fn refresh_timers(&mut self, config: &Config) {
        let mut t = Timers::default();
        match self.state {
            State::Handshaking => {
                let handshake = match &self.handshake {
                    HandshakeState::Client(c) => Some(c.deadline()),
                    HandshakeState::Server { resend, deadline, .. } => Some((*resend).min(*deadline)),
                    HandshakeState::Done => None,
                };
                t.set(Timer::Handshake, handshake);
                t.set(Timer::Ack, self.received.deadline());
            }
            State::Established | State::Lingering { .. } => {
                if let State::Lingering { until } = self.state {
                    t.set(Timer::Close, Some(until));
                }
                t.set(Timer::Ack, self.received.deadline());
                t.set(Timer::Recovery, self.recovery.deadline());
                // While something waits for an acknowledgement the probe timer asks for one;
                // a keep-alive then would only push the probe timer back (RFC 9002 §6.2:
                // it runs from the last ack-eliciting packet), so loss detection never ran.
                // A keep-alive comes at least twice per idle timeout (one that came later
                // could not keep anything alive), and, while a receipt is awaited, even if
                // keep-alives are off: the far end may take long to read the stream, and the
                // path must not be given up meanwhile.
                let half_idle = Duration::from_micros(self.idle_timeout(config).as_micros() / 2);
                let keep_alive = match (config.keep_alive, self.receipts.awaiting()) {
                    (Some(k), _) => Some(k.min(half_idle)),
                    (None, true) => Some(half_idle),
                    (None, false) => None,
                };
                let keep_alive = match self.recovery.awaits_ack() {
                    false => keep_alive.map(|k| self.last_eliciting_sent + k),
                    true => None,
                };
                t.set(Timer::KeepAlive, keep_alive);
                t.set(Timer::Idle, Some(self.last_received + self.idle_timeout(config)));
                t.set(Timer::Pacing, self.pacing_wake);
                t.set(Timer::Handshake, self.finish.as_ref().map(|f| f.at));
            }
            State::Closing { until } | State::Draining { until } => t.set(Timer::Close, Some(until)),
            State::Closed => {}
        }
        self.timers = t;
    }

    /// The smaller of both sides' non-zero idle timeouts.
    fn idle_timeout(&self, config: &Config) -> Duration {
        match (config.idle_timeout, self.peer.idle_timeout) {
            (Duration::ZERO, p) => p,
            (o, Duration::ZERO) => o,
            (o, p) => o.min(p),
        }
        .max(Duration::from_millis(1))
    }

    /// Fires every timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant, config: &Config) {
        self.clock = self.clock.max(now);
        for timer in Timer::ALL {
            if self.timers.due(timer, now) {
                self.on_timer(timer, now, config);
            }
        }
        self.refresh_timers(config);
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, config: &Config) {
        match timer {
            Timer::Handshake => match &mut self.handshake {
                HandshakeState::Client(c) if c.timed_out(now) => {
                    let error = c.timeout_error();
                    self.fail_handshake(error)
                }
                // A server whose ACCEPT was never confirmed forgets the attempt quietly:
                // the application never heard of it.
                HandshakeState::Server { deadline, .. } if *deadline <= now => self.step(Step::Abandoned),
                HandshakeState::Server {
                    send_accept,
                    resend,
                    backoff,
                    answer_until,
                    ..
                } if *resend <= now => {
                    if now < *answer_until {
                        *send_accept = true;
                        *resend = now + *backoff;
                        *backoff = backoff.saturating_mul(2);
                    } else {
                        *resend = Instant::MAX;
                    }
                }
                _ => {}
            },
            // poll_transmit sends the ACK once its deadline has passed.
            Timer::Ack => {}
            Timer::Recovery => match self.recovery.on_timeout(now) {
                Timeout::Lost(lost) => {
                    self.on_lost(now, lost);
                    self.check_retransmissions(now);
                }
                Timeout::Probe { consecutive } => {
                    self.stats.probes += 1;
                    self.probes = 2;
                    // RFC 9002 §7.6: two probe timeouts in a row span (srtt + 4 rttvar +
                    // max_ack_delay) × 3 with nothing acknowledged: persistent congestion.
                    // Each later one in the same silence extends its recovery period over
                    // the probes sent meanwhile, whose loss is the outage's, not news.
                    if consecutive >= PERSISTENT_CONGESTION_PTOS {
                        if consecutive == PERSISTENT_CONGESTION_PTOS {
                            self.stats.persistent_congestion += 1;
                        }
                        self.cc.on_persistent_congestion(now);
                    }
                }
            },
            Timer::KeepAlive => {
                if !self.control.contains(&Control::Ping) {
                    self.control.push_back(Control::Ping);
                }
                self.last_eliciting_sent = now;
            }
            // The only rule that gives up on a peer (spec §8, Liveness): time without a word
            // from it, whatever the RTT or the number of probes sent meanwhile.
            Timer::Idle => {
                if now >= self.last_received + self.idle_timeout(config) {
                    // Unreachable if something was under way: what we sent waited for an
                    // acknowledgement, or a stream the peer sends us waited for bytes.
                    let under_way = self.recovery.awaits_ack()
                        || self.receipts.awaiting()
                        || self
                            .streams
                            .values()
                            .any(|s| s.recv.as_ref().is_some_and(RecvStream::awaits_data));
                    let reason = match under_way {
                        true => CloseReason::Unreachable,
                        false => CloseReason::TimedOut,
                    };
                    self.close_silently(reason);
                }
            }
            Timer::Close => match self.state {
                State::Lingering { .. } => self.end_linger(now),
                _ => self.step(Step::Deadline),
            },
            // poll_transmit sends what the pacer held back.
            Timer::Pacing => self.pacing_wake = None,
        }
    }

    /// A VERSION_REJECT answered our HELLO: the server cannot read our version.
    pub(crate) fn on_version_reject(
        &mut self,
        now: Instant,
        server: crate::wire::VersionRange,
        config: &Config,
    ) {
        if let HandshakeState::Client(c) = &mut self.handshake {
            match c.on_version_reject(server, now) {
                Ok(()) => self.version = c.version,
                Err(e) => self.fail_handshake(e),
            }
            self.refresh_timers(config);
        }
    }

    fn fail_handshake(&mut self, reason: HandshakeError) {
        self.step(Step::Abandoned);
        self.events.push_back(Event::HandshakeFailed {
            conn: self.handle,
            reason,
        });
    }

    /// Ends the connection without a word to the peer (it is gone, or timed out).
    fn close_silently(&mut self, reason: CloseReason) {
        self.recovery.drain();
        self.step(Step::Silent);
        self.closed(reason);
    }

    // ---------------------------------------------------------------- input

    /// Handles a packet the endpoint routed here. `hello_again` is set when it is another
    /// copy of the HELLO that created this (server) connection.
    pub(crate) fn handle_packet(&mut self, now: Instant, config: &Config, from: SocketAddr, packet: &Packet) {
        self.clock = self.clock.max(now);
        if packet.header.version != self.version {
            // Another version's packet (a stale one from before a client's fallback, or a
            // forgery): nothing in it applies here.
            return;
        }
        if self.version == VERSION_2 && packet.header.kind != PacketKind::Data {
            // Not authenticated as a packet: only the Noise messages in it count, and its
            // number, address and time are not trusted with anything.
            self.on_handshake_packet_v2(now, config, packet);
            self.refresh_timers(config);
            return;
        }
        match self.state {
            State::Closed | State::Draining { .. } => return,
            State::Closing { .. } => {
                // The peer has not seen our CLOSE: send it again (once per packet received).
                self.close_pending = true;
                return;
            }
            _ => {}
        }
        let header = packet.header;
        if header.kind == PacketKind::Data && self.finish.is_some() {
            // Only a server that read our NOISE_FINISH has the keys this packet opened with.
            self.finish = None;
        }
        if header.kind == PacketKind::Data && matches!(self.handshake, HandshakeState::Client(_)) {
            // The server sends data packets only after its ACCEPT: one that comes first
            // overtook it, and has no connection to apply to yet (its ACK would name packet
            // numbers we may not have sent). Dropped; the server repeats what matters.
            return;
        }
        if self.received.is_duplicate(header.number) {
            self.stats.duplicates_received += 1;
            // Acknowledge again only what asks for it: answering duplicate ACK-only
            // packets would let two endpoints bounce ACKs between them forever.
            if packet.is_ack_eliciting() {
                self.received.ack_now(now);
            }
            self.refresh_timers(config);
            return;
        }
        self.stats.datagrams_received += 1;
        self.last_received = now;
        // The peer's address may change (NAT rebinding): follow it, but only for the
        // highest-numbered packet yet (spec §10.4; RFC 9000 §9.3), so a copy of an older
        // packet, replayed from elsewhere, cannot lead the connection away.
        if self.received.largest().is_none_or(|l| header.number > l) {
            if from != self.remote && self.is_open() {
                // A new address is not trusted until it acknowledges a packet sent there
                // (spec §10.2): until then it gets at most 3x what came from it, and a PING
                // asks for that acknowledgement.
                self.unvalidated = Some(Amplification {
                    received: self.datagram.len() as u64,
                    sent: 0,
                });
                self.path_probe = Some(self.recovery.next_pn());

                if !self.control.contains(&Control::Ping) {
                    self.control.push_back(Control::Ping);
                }
            }
            self.remote = from;
        }
        if let HandshakeState::Server { send_accept, .. } = &mut self.handshake {
            match header.kind {
                // Another copy of the HELLO: the ACCEPT was lost; send it again.
                PacketKind::Handshake { .. } => *send_accept = true,
                // The client's first data packet confirms the handshake.
                // It also proves the client receives at its address: only the ACCEPT told it
                // our connection id (spec §10.2).
                PacketKind::Data => {
                    self.unvalidated = None;
                    self.handshake = HandshakeState::Done;
                    self.step(Step::Confirmed);
                    self.last_eliciting_sent = now;
                    if let Some(negotiated) = self.negotiated {
                        self.events.push_back(Event::Connected {
                            conn: self.handle,
                            negotiated,
                            peer: self.peer_key,
                        });
                    }
                }
            }
        }
        let mut eliciting = false;
        let mut ping = false;
        for frame in packet.frames() {
            eliciting |= frame.is_ack_eliciting();
            ping |= matches!(frame, Frame::Ping);
            if let Err(kind) = self.on_frame(now, config, &header, frame) {
                self.violated(now, kind);
                break;
            }
            if self.state != State::Handshaking && !self.is_open() {
                // Closed by a frame: the peer's CLOSE, or our retransmission budget.
                break;
            }
        }
        // A client still in its handshake answers nothing it receives (RETRY and REJECT are
        // stateless, spec §3.3): only packets of an established connection, or a server's
        // handshake (whose ACK rides on its ACCEPT), are recorded to be acknowledged.
        let records = self.is_open() || (self.state == State::Handshaking && self.side == Side::Server);
        if records {
            self.received.on_packet(
                header.number,
                now,
                header.timestamp,
                eliciting,
                config.max_ack_delay,
            );
            if ping {
                // A PING is a probe or a keep-alive: the sender waits on its answer to know
                // the path works (spec §8, Acknowledgements).
                self.received.ack_now(now);
            }
            if matches!(self.handshake, HandshakeState::Done)
                && self.side == Side::Client
                && header.kind != PacketKind::Data
            {
                // ACCEPT: acknowledge at once, which also confirms the handshake to the server.
                self.received.ack_now(now);
            }
        }
        self.refresh_timers(config);
    }

    fn on_frame(
        &mut self,
        now: Instant,
        config: &Config,
        header: &Header,
        frame: Frame,
    ) -> Result<(), ViolationKind> {
        match frame {
            Frame::Padding(_) | Frame::Ping => {}
            Frame::Ack(ack) => {
                // Handshake packets are not tracked by recovery; an ACK in one only matters
                // for its packet numbers (checked against what we sent).
                match self.recovery.on_ack(now, &ack) {
                    Ok(outcome) => {
                        self.received.on_peer_ack(&ack);
                        if let Some(p) = self.crypto.as_mut() {
                            p.on_acked(ack.largest());
                        }
                        if self.path_probe.is_some_and(|first| ack.largest() >= first) {
                            self.path_probe = None;
                            self.unvalidated = None;
                        }
                        self.on_ack_outcome(now, &ack, outcome)
                    }
                    Err(_) => return Err(ViolationKind::UnsentPacketAcked),
                }
            }
            Frame::Accept(accept) => self.on_accept(now, config, header, accept),
            Frame::Reject(reject) => {
                if matches!(self.handshake, HandshakeState::Client(_)) {
                    self.fail_handshake(HandshakeError::Rejected {
                        reason: reject.reason,
                        versions: reject.versions,
                    });
                }
            }
            Frame::Retry(retry) => {
                if let HandshakeState::Client(c) = &mut self.handshake {
                    c.on_retry(retry.token, now, self.local_cid);
                }
            }
            // The endpoint creates connections from HELLO; a copy was handled above.
            Frame::Hello(_) => {}
            Frame::NoiseHello(_) | Frame::NoiseAccept(_) | Frame::NoiseFinish(_) => {}
            Frame::Stream(s) => self.on_stream(config, s)?,
            Frame::ResetStream { id, code, final_size } => self.on_reset(id, code, final_size)?,
            Frame::StopSending { id, code } => self.on_stop_sending(id, code)?,
            Frame::Receipt { id, delivery } => self.on_receipt(id, delivery)?,
            Frame::MaxData(max) => {
                self.send_credit.raise(max);
            }
            Frame::MaxStreamData { id, max } => {
                if id.initiator() != self.side {
                    return Err(ViolationKind::WrongStreamDirection);
                }
                if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) {
                    send.set_max_data(max);
                    self.queue_stream(id);
                }
            }
            Frame::MaxStreams(max) => {
                if self.stream_credit.raise(max) {
                    self.events
                        .push_back(Event::StreamsAvailable { conn: self.handle });
                }
            }
            Frame::DataBlocked(_) | Frame::StreamDataBlocked { .. } | Frame::StreamsBlocked(_) => {
                self.stats.peer_blocked += 1;
            }
            Frame::Close(close) => {
                let until = now + self.recovery.pto().saturating_mul(3);
                self.recovery.drain();
                self.step(Step::PeerClosed { until });
                self.closed(CloseReason::Peer {
                    code: close.code,
                    reason: close.reason,
                });
            }
        }
        Ok(())
    }

    fn on_accept(&mut self, now: Instant, config: &Config, header: &Header, accept: Accept) {
        let HandshakeState::Client(client) = &self.handshake else {
            return;
        };
        let PacketKind::Handshake { scid } = header.kind else {
            return;
        };
        match client.on_accept(&accept) {
            Ok(negotiated) => {
                self.remote_cid = scid;
                self.negotiated = Some(negotiated);
                self.apply_peer_params(config, PeerParams::from_wire(&accept.params));
                self.handshake = HandshakeState::Done;
                self.step(Step::Confirmed);
                self.last_eliciting_sent = now;
                self.events.push_back(Event::Connected {
                    conn: self.handle,
                    negotiated,
                    peer: None,
                });
            }
            Err(e) => self.fail_handshake(e),
        }
    }

    /// A version 2 handshake packet (spec §11.2): NOISE_ACCEPT, REJECT or RETRY for a
    /// client, a HELLO copy or NOISE_FINISH for a server; anything else is ignored.
    fn on_handshake_packet_v2(&mut self, now: Instant, config: &Config, packet: &Packet) {
        if !matches!(self.state, State::Handshaking | State::Established) {
            return;
        }
        for frame in packet.frames() {
            match (frame, &mut self.handshake) {
                (Frame::NoiseAccept(message), HandshakeState::Client(_)) => {
                    self.on_noise_accept(now, config, &packet.header, &message)
                }
                (Frame::Reject(reject), HandshakeState::Client(c)) => {
                    let error = match (reject.reason, c.server_key()) {
                        (RejectReason::KEY_MISMATCH, Some(expected)) => {
                            HandshakeError::ServerKeyMismatch { expected }
                        }
                        (reason, _) => HandshakeError::Rejected {
                            reason,
                            versions: reject.versions,
                        },
                    };
                    self.fail_handshake(error);
                }
                (Frame::Retry(retry), HandshakeState::Client(c)) => {
                    c.on_retry(retry.token, now, self.local_cid)
                }
                (Frame::NoiseHello(_), HandshakeState::Server { send_accept, .. }) => *send_accept = true,
                (Frame::NoiseFinish(message), HandshakeState::Server { .. }) => {
                    self.on_noise_finish(now, config, &message)
                }
                _ => {}
            }
        }
    }

    /// Client: the server's NOISE_ACCEPT (spec §11.2).
    fn on_noise_accept(&mut self, now: Instant, config: &Config, header: &Header, message: &[u8]) {
        let HandshakeState::Client(client) = &mut self.handshake else {
            return;
        };
        let PacketKind::Handshake { scid } = header.kind else {
            return;
        };
        let named = client.server_key().is_some();
        let opened = match client.on_noise_accept(message) {
            Ok(opened) => opened,
            Err(NotOpened::Unauthentic) => {
                self.stats.unauthenticated += 1;
                return;
            }
            Err(NotOpened::Failed(e)) => return self.fail_handshake(e),
        };
        if !named && config.peer_policy.check(&opened.peer) == PeerDecision::Refuse {
            return self.fail_handshake(HandshakeError::PeerRefused { peer: opened.peer });
        }
        let Some(cipher) = opened.negotiated.cipher else {
            return;
        };
        self.remote_cid = scid;
        self.negotiated = Some(opened.negotiated);
        self.apply_peer_params(config, PeerParams::from_wire(&opened.accept.params));
        self.authenticated(config, cipher, opened.peer, opened.secrets);
        self.finish = opened.finish.map(|message| Resend {
            message,
            at: now,
            backoff: config.initial_rtt.saturating_mul(3),
        });
        // A data packet at once (spec §11.2): with IK it confirms the handshake to the
        // server; with XX the server's ACK of it tells us NOISE_FINISH arrived. Either way
        // the server need not send anything of its own to finish the handshake.
        self.control.push_back(Control::Ping);
        self.handshake = HandshakeState::Done;
        self.step(Step::Confirmed);
        self.last_eliciting_sent = now;
        // The idle timer runs from the handshake's end (the NOISE_ACCEPT is the first
        // packet heard; handshake packets do not count for it otherwise).
        self.last_received = now;
        self.events.push_back(Event::Connected {
            conn: self.handle,
            negotiated: opened.negotiated,
            peer: Some(opened.peer),
        });
    }

    /// Server, pattern XX: the client's NOISE_FINISH, which authenticates its key and
    /// confirms the handshake (spec §11.2). A peer policy that refuses the key closes the
    /// connection with CONNECTION_REFUSED, sealed, so only the client can read it.
    fn on_noise_finish(&mut self, now: Instant, config: &Config, message: &[u8]) {
        let HandshakeState::Server {
            noise: Some(noise), ..
        } = &mut self.handshake
        else {
            return;
        };
        if noise.read(message).is_err() {
            self.stats.unauthenticated += 1;
            return;
        }
        let (Some(peer), Some(secrets), Some(negotiated)) =
            (noise.remote_key(), noise.secrets(), self.negotiated)
        else {
            return;
        };
        let Some(cipher) = negotiated.cipher else {
            return;
        };
        self.authenticated(config, cipher, peer, secrets);
        self.handshake = HandshakeState::Done;
        // Only a client that read our NOISE_ACCEPT could have written this.
        self.unvalidated = None;
        self.last_received = now;
        if config.peer_policy.check(&peer) == PeerDecision::Refuse {
            // The application never heard of the connection: it ends without an event.
            let reason = Reason::from_static("identity refused").unwrap_or_default();
            return self.close_with(
                now,
                CloseCode::Transport(TransportErrorCode::CONNECTION_REFUSED),
                reason,
            );
        }
        self.step(Step::Confirmed);
        self.last_eliciting_sent = now;
        self.events.push_back(Event::Connected {
            conn: self.handle,
            negotiated,
            peer: Some(peer),
        });
    }

    fn on_stream(&mut self, config: &Config, frame: StreamFrame) -> Result<(), ViolationKind> {
        let id = frame.id;
        if id.initiator() == self.side {
            // Streams are unidirectional: the peer cannot send on one we opened.
            return Err(ViolationKind::WrongStreamDirection);
        }
        if id.index() >= self.local_max_streams {
            return Err(ViolationKind::StreamLimit);
        }
        if id.index() >= self.peer_streams_opened {
            // Opening stream n opens the peer's lower-numbered streams too (spec §4.12).
            for index in self.peer_streams_opened..=id.index() {
                let sid = StreamId::new(id.initiator(), index);
                let (window, max) = (config.stream_receive_window, self.max_stream_window);
                let state = self.boxed(StreamState {
                    recv: Some(RecvStream::auto_tuned(window, max).with_len_limit(config.max_message_len)),
                    ..Default::default()
                });
                self.streams.insert(sid, state);
                self.recv_cost += STREAM_COST;
            }
            self.peer_streams_opened = id.index() + 1;
            self.grant_streams();
        }
        let Some(state) = self.streams.get_mut(&id) else {
            // Finished and gone: a late copy.
            return Ok(());
        };
        let Some(recv) = state.recv.as_mut() else {
            return Ok(());
        };
        let mut announce = false;
        if frame.offset == 0 && !state.opened {
            if let Some(total) = frame.total_len {
                recv.set_total_len(total).map_err(recv_violation)?;
            }
            state.opened = true;
            state.header = StreamHeader {
                label: frame.label,
                total_len: frame.total_len,
                digest: frame.digest,
            };
            state.verifier = frame.digest.map(Verifier::new);
            self.events.push_back(Event::StreamOpened {
                conn: self.handle,
                stream: id,
                header: state.header.clone(),
            });
            // The connection's streams grew their windows: this one starts with the grown
            // window, and the peer, which assumes the configured credit for a new stream, is
            // told at once (only if the stream may be longer than that credit).
            announce = recv.start_with_window(self.stream_window);
        }
        let before = recv.cost();
        let grown = recv
            .insert_from(frame.offset, frame.data, frame.fin, &mut self.datagram)
            .map_err(recv_violation)?;
        self.recv_cost += recv.cost().saturating_sub(before);
        self.recv_data += grown;
        if self.recv_data > self.recv_flow.limit() {
            return Err(ViolationKind::PastCredit);
        }
        if state.stopped {
            // The application gave up on it: what arrives is dropped and its credit released.
            while recv.read(usize::MAX).is_some() {}
            state.released += grown;
            self.read_data += grown;
            self.update_connection_credit();
        } else {
            let readable = recv.is_readable() || recv.is_finished();
            if readable && state.opened && !state.readable_signaled {
                state.readable_signaled = true;
                self.events.push_back(Event::StreamReadable {
                    conn: self.handle,
                    stream: id,
                });
            }
        }
        // What the peer's streams cost the heap, which credit does not count, stays within
        // the connection's budget (spec §10.3). `recv_cost` only grows here, so it is never
        // under the real cost; it is summed again only when it passes the budget.
        let budget = budget(self.recv_flow.window(), self.max_concurrent_streams);
        if self.recv_cost > budget {
            self.recv_cost = self.peer_streams_cost();
            if self.recv_cost > budget {
                return Err(ViolationKind::ReceiveBudget);
            }
        }
        if announce {
            self.push_control(Control::MaxStreamData(id));
        }
        Ok(())
    }

    /// What the streams the peer opened cost the heap (module `stream::held`): each one's
    /// state, and what its receive half holds.
    fn peer_streams_cost(&self) -> u64 {
        self.streams
            .iter()
            .filter(|(id, _)| id.initiator() != self.side)
            .map(|(_, s)| STREAM_COST + s.recv.as_ref().map_or(0, RecvStream::cost))
            .sum()
    }

    fn on_reset(&mut self, id: StreamId, code: u64, final_size: u64) -> Result<(), ViolationKind> {
        if id.initiator() == self.side {
            return Err(ViolationKind::WrongStreamDirection);
        }
        let Some(state) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        let Some(recv) = state.recv.as_mut() else {
            return Ok(());
        };
        let before = recv.highest();
        recv.reset(code, final_size).map_err(recv_violation)?;
        self.recv_data += final_size.saturating_sub(before);
        if self.recv_data > self.recv_flow.limit() {
            return Err(ViolationKind::PastCredit);
        }
        // No one will read the rest: the peer may use its credit elsewhere (RFC 9000 §4.5).
        let unread = final_size.saturating_sub(state.released);
        state.released += unread;
        self.read_data += unread;
        self.update_connection_credit();
        self.events.push_back(Event::StreamReset {
            conn: self.handle,
            stream: id,
            code,
        });
        Ok(())
    }

    fn on_stop_sending(&mut self, id: StreamId, code: u64) -> Result<(), ViolationKind> {
        if id.initiator() != self.side {
            return Err(ViolationKind::WrongStreamDirection);
        }
        if self.streams.get(&id).is_some_and(|s| s.send.is_some()) {
            self.reset_send(id, code);
            self.events.push_back(Event::StreamStopped {
                conn: self.handle,
                stream: id,
                code,
            });
        } else {
            // Every byte was acknowledged and the receipt is awaited: the receiver refused
            // the stream before all of it arrived, and this STOP_SENDING was overtaken by
            // the acknowledgements of the rest. It is the receiver's verdict, as a receipt
            // with its code would have been (spec §8, Delivery).
            self.on_verdict(id, Delivery::Failed { code, relays: 0 });
        }
        Ok(())
    }

    /// Whether both sides send delivery receipts (capability RECEIPTS).
    fn receipts_on(&self) -> bool {
        self.negotiated
            .is_some_and(|n| n.capabilities.contains(crate::wire::Capabilities::RECEIPTS))
    }

    /// The receiver's verdict on our stream `id`: if its receipt was awaited, tells the
    /// application (and a writer held back by the cap on awaited receipts) and returns
    /// true; a verdict on a stream not awaited changes nothing.
    fn on_verdict(&mut self, id: StreamId, delivery: Delivery) -> bool {
        let was_full = self.receipts.awaited_full(self.streams.len());
        if !self.receipts.take_awaited(id) {
            return false;
        }
        self.events.push_back(Event::StreamDelivery {
            conn: self.handle,
            stream: id,
            delivery,
        });
        if was_full {
            self.events
                .push_back(Event::StreamsAvailable { conn: self.handle });
        }
        true
    }

    /// The peer's RECEIPT for our stream `id` (spec §8, Delivery).
    fn on_receipt(&mut self, id: StreamId, delivery: Delivery) -> Result<(), ViolationKind> {
        if !self.receipts_on() {
            // Not negotiated: a frame type this connection does not know (spec §4.1).
            let frame_type = match delivery {
                Delivery::Delivered { .. } => crate::wire::frame_types::RECEIPT,
                Delivery::Failed { .. } => crate::wire::frame_types::RECEIPT_FAILED,
            };
            return Err(ViolationKind::Malformed {
                error: DecodeError::UnknownFrameType(frame_type),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            });
        }
        if id.initiator() != self.side {
            return Err(ViolationKind::WrongStreamDirection);
        }
        if self.on_verdict(id, delivery) {
            return Ok(());
        }
        let Some(state) = self.streams.get_mut(&id) else {
            // A copy of a receipt already taken, or one for a stream we reset.
            return Ok(());
        };
        let Some(send) = state.send.as_ref() else {
            return Ok(());
        };
        if state.piped {
            // The pipe reads it (`pipe_target`).
            state.receipt = Some(delivery);
            return Ok(());
        }
        // The receiver can have read to the end only of a stream we ended, or one whose
        // announced total length we wrote in full (it need not wait for the FIN).
        let complete = send.is_finished() || state.header.total_len == Some(send.write_end());
        if complete {
            self.end_with_receipt(id, delivery);
        }
        Ok(())
    }

    /// A receipt came for our stream `id` before every byte was acknowledged (or before we
    /// sent its FIN, the announced length written): the final receiver read them all, so
    /// the stream is done (its packets still in flight find no stream when acknowledged;
    /// a `finish` after it finds no stream).
    fn end_with_receipt(&mut self, id: StreamId, delivery: Delivery) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(send) = state.send.as_ref() else {
            return;
        };
        let unacked = send.unacked();
        self.send_buffered -= unacked;
        self.stats.bytes_acked += unacked;
        state.send = None;
        if state.recv.is_none() {
            self.drop_stream(id);
        }
        self.events.push_back(Event::StreamAcked {
            conn: self.handle,
            stream: id,
        });
        self.events.push_back(Event::StreamDelivery {
            conn: self.handle,
            stream: id,
            delivery,
        });
        self.check_writable();
    }

    /// Owes the peer the receipt for its stream `id` (when receipts are negotiated). A
    /// relay's pipe calls this with what its next hop reported.
    pub(crate) fn send_receipt(&mut self, id: StreamId, delivery: Delivery) {
        if self.receipts_on() && self.is_open() {
            self.receipts.owe(id, delivery);
        }
    }

    fn on_ack_outcome(&mut self, now: Instant, ack: &Ack, outcome: Outcome) {
        if let Some(newest) = outcome.acked.iter().map(|p| p.time).max() {
            let rtt = self.recovery.rtt();
            let fresh = outcome.acked.iter().any(|p| p.number == ack.largest());
            self.cc.on_ack(&AckEvent {
                now,
                bytes_acked: outcome.acked.iter().map(|p| p.size).sum(),
                newest_sent: newest,
                rtt: RttSample {
                    latest: rtt.latest(),
                    smoothed: rtt.smoothed(),
                    min: rtt.min(),
                },
                one_way_delay: fresh.then_some(ack.one_way_delay),
                bytes_in_flight: self.recovery.bytes_in_flight(),
                app_limited: self.app_limited,
                rate: outcome.rate,
            });
        }
        // The size limit follows from what it decides.
        self.black_hole
            .on_acked(now, outcome.acked.iter().map(|p| (p.number, p.size)));
        let receipts = self.receipts_on();
        for packet in outcome.acked {
            for frame in packet.frames {
                if let SentFrame::Receipt(id) = frame {
                    self.receipts.on_acked(id);
                    continue;
                }
                if let SentFrame::Stream { id, offset, len, fin } = frame {
                    let Some(state) = self.streams.get_mut(&id) else {
                        continue;
                    };
                    let Some(send) = state.send.as_mut() else { continue };
                    let before = send.unacked();
                    send.on_acked(offset..offset + len, fin);
                    self.send_buffered -= before - send.unacked();
                    self.stats.bytes_acked += before - send.unacked();
                    if send.is_done() && !state.piped {
                        state.send = None;
                        self.events.push_back(Event::StreamAcked {
                            conn: self.handle,
                            stream: id,
                        });
                        if state.recv.is_none() {
                            self.drop_stream(id);
                        }
                        if receipts {
                            self.receipts.await_receipt(id);
                        }
                    }
                }
            }
        }
        self.on_lost(now, outcome.lost);
        self.check_writable();
        self.check_retransmissions(now);
    }

    /// Ends the connection once its retransmissions pass the budget (spec §10.6): a peer that
    /// acknowledges a trickle, or a path that loses nearly everything, gets no endless
    /// resending.
    fn check_retransmissions(&mut self, now: Instant) {
        let Some(ratio) = self.retransmission_ratio else {
            return;
        };
        let budget = self
            .stats
            .bytes_acked
            .saturating_mul(u64::from(ratio))
            .saturating_add(RETRANSMISSION_ALLOWANCE);
        if self.stats.bytes_retransmitted > budget && self.is_open() {
            let reason = Reason::from_static("too lossy").unwrap_or_default();
            self.close_with(now, CloseCode::Transport(TransportErrorCode::NO_ERROR), reason);
            self.closed(CloseReason::TooLossy);
        }
    }

    /// Tells the application once a refused write would fit.
    fn check_writable(&mut self) {
        let room = self.send_buffer_limit.saturating_sub(self.send_buffered);
        if self.writable_wanted.is_some_and(|w| room >= w) {
            self.writable_wanted = None;
            self.events.push_back(Event::Writable { conn: self.handle });
        }
    }

    fn on_lost(&mut self, now: Instant, lost: Vec<SentPacket>) {
        // A large probe after a black hole tests the path's size, not its capacity: its loss
        // is no congestion signal (RFC 8899 §4.4).
        let congestive = lost
            .iter()
            .filter(|p| !self.black_hole.on_lost(now, p.number))
            .fold(None, |acc: Option<(Instant, usize)>, p| {
                let (newest, bytes) = acc.unwrap_or((p.time, 0));
                Some((newest.max(p.time), bytes + p.size))
            });
        if let Some((newest, bytes_lost)) = congestive {
            let before = self.cc.window();
            self.cc.on_loss(&LossEvent {
                now,
                bytes_lost,
                newest_sent: newest,
                bytes_in_flight: self.recovery.bytes_in_flight(),
            });
            if self.cc.window() < before {
                self.stats.congestion_events += 1;
            }
        }
        for packet in lost {
            self.stats.packets_lost += 1;
            for frame in packet.frames {
                match frame {
                    SentFrame::Stream { id, offset, len, fin } => {
                        if let Some(send) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) {
                            send.on_lost(offset..offset + len, fin);
                            self.stats.bytes_retransmitted += len;
                            self.queue_stream(id);
                        }
                    }
                    SentFrame::MaxData => self.push_control(Control::MaxData),
                    SentFrame::MaxStreamData(id) => {
                        if self.streams.get(&id).is_some_and(|s| s.recv.is_some()) {
                            self.push_control(Control::MaxStreamData(id));
                        }
                    }
                    SentFrame::MaxStreams => self.push_control(Control::MaxStreams),
                    SentFrame::ResetStream(_) | SentFrame::StopSending(_) => {
                        // Resent from the record kept in `resets`.
                        self.resend_reset_or_stop(frame);
                    }
                    SentFrame::Ping => {}
                    SentFrame::Receipt(id) => self.receipts.on_lost(id),
                    SentFrame::Blocked(Blocked::Data) => self.send_credit.report_lost(),
                    SentFrame::Blocked(Blocked::Streams) => self.stream_credit.report_lost(),
                    SentFrame::Blocked(Blocked::Stream(id)) => {
                        if let Some(state) = self.streams.get_mut(&id) {
                            state.blocked_reported = None;
                        }
                    }
                }
            }
        }
    }

    fn resend_reset_or_stop(&mut self, frame: SentFrame) {
        match frame {
            SentFrame::ResetStream(id) => {
                if let Some(&(code, final_size)) = self.resets.get(&id) {
                    self.push_control(Control::ResetStream { id, code, final_size });
                }
            }
            SentFrame::StopSending(id) => {
                if let Some(&code) = self.stops.get(&id) {
                    self.push_control(Control::StopSending { id, code });
                }
            }
            _ => {}
        }
    }

    fn push_control(&mut self, c: Control) {
        if !self.control.contains(&c) {
            self.control.push_back(c);
        }
    }

    fn queue_stream(&mut self, id: StreamId) {
        if let Some(state) = self.streams.get_mut(&id) {
            if !state.queued && state.send.as_ref().is_some_and(|s| s.has_data()) {
                state.queued = true;
                self.send_queues[state.priority as usize].push_back(id);
            }
        }
    }

    // ---------------------------------------------------------------- pipes
    // The endpoint's pipes (module `pipe`) move bytes between connections through these.

    /// Pipe source: whether stream `id` can be piped, and what piping it would start with.
    pub(crate) fn tappable(&mut self, id: StreamId) -> Result<Tapped, ApiError> {
        let state = self.recv_stream(id)?;
        let recv = state.recv.as_ref().ok_or(ApiError::UnknownStream)?;
        if recv.is_tapped() {
            return Err(ApiError::AlreadyPiped);
        }
        if state.stopped || !state.opened || recv.reset_code().is_some() {
            return Err(ApiError::UnknownStream);
        }
        let start = recv.read_offset();
        Ok(Tapped {
            start,
            header: StreamHeader {
                label: state.header.label.clone(),
                total_len: state.header.total_len.map(|t| t.saturating_sub(start)),
                digest: state.header.digest.filter(|_| start == 0),
            },
            buffered: recv.buffered(),
        })
    }

    /// Pipe source: starts handing out the bytes of stream `id` from its read offset on
    /// (after `tappable` said yes). Returns the credit the stream has now.
    pub(crate) fn tap_stream(&mut self, id: StreamId, keep: bool) -> u64 {
        let Some(state) = self.streams.get_mut(&id) else {
            return 0;
        };
        let Some(recv) = state.recv.as_mut() else {
            return 0;
        };
        let buffered = recv.buffered();
        recv.tap(keep);
        let limit = recv.max_data();
        if !keep {
            // Handed on: those bytes no longer wait for the application.
            state.released += buffered;
            self.read_data += buffered;
            self.update_connection_credit();
        }
        limit
    }

    /// Pipe source: what arrived on a tapped stream since the last call.
    pub(crate) fn take_tapped(&mut self, id: StreamId) -> TapOutput {
        let Some(state) = self.streams.get_mut(&id) else {
            return TapOutput::default();
        };
        let Some(recv) = state.recv.as_mut() else {
            return TapOutput::default();
        };
        let fragments = recv.take_tapped();
        let out = TapOutput {
            final_size: recv.end(),
            complete: recv.tap_complete(),
            reset: recv.reset_code(),
            fragments,
        };
        if !recv.tap_keeps() {
            let handed: u64 = out.fragments.iter().map(|(_, b)| b.len() as u64).sum();
            state.released += handed;
            self.read_data += handed;
            self.update_connection_credit();
            if out.complete || out.reset.is_some() {
                self.remove_recv(id);
            }
        }
        out
    }

    /// Pipe source: the peer may send the stream below `limit`.
    pub(crate) fn grant_tapped(&mut self, id: StreamId, limit: u64) {
        let grew = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.recv.as_mut())
            .is_some_and(|r| r.raise_limit(limit));
        if grew {
            self.push_control(Control::MaxStreamData(id));
        }
    }

    /// Pipe target: opens the stream a pipe writes.
    pub(crate) fn open_piped(&mut self, header: StreamHeader) -> Result<StreamId, ApiError> {
        let id = self.open_stream(header)?;
        if let Some(state) = self.streams.get_mut(&id) {
            state.piped = true;
        }
        Ok(id)
    }

    /// Pipe target: queues a fragment at its offset (outside the application's send
    /// buffer limit: the pipe's credit bounds it). False if the stream is gone.
    pub(crate) fn pipe_write(&mut self, id: StreamId, offset: u64, data: Bytes) -> bool {
        let len = data.len() as u64;
        let written = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.send.as_mut())
            .is_some_and(|send| send.write_at(offset, data));
        if written {
            self.send_buffered += len;
            self.queue_stream(id);
        }
        written
    }

    /// Pipe target: the stream ends at `size`.
    pub(crate) fn pipe_finish(&mut self, id: StreamId, size: u64) -> bool {
        let done = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.send.as_mut())
            .is_some_and(|send| send.finish_at(size));
        self.queue_stream(id);
        done
    }

    /// Pipe target: where the stream stands.
    pub(crate) fn pipe_target(&self, id: StreamId) -> TargetState {
        let state = self.streams.get(&id);
        if let Some(receipt) = state.and_then(|s| s.receipt) {
            return TargetState::Ended(receipt);
        }
        let send = state.and_then(|s| s.send.as_ref());
        // A peer without receipts vouches for nothing past its acknowledgement: delivered
        // is acknowledged, even if it closed at once after (its CLOSE carries that last ACK,
        // spec §4.11).
        if !self.receipts_on() && send.is_some_and(|s| s.is_done()) {
            return TargetState::Ended(Delivery::Delivered { relays: 0 });
        }
        if !self.is_established() {
            return TargetState::Gone;
        }
        match send {
            None => TargetState::Gone,
            Some(send) => TargetState::Open(Progress {
                acked_below: send.acked_below(),
                max_data: send.max_data(),
                unacked: send.unacked(),
            }),
        }
    }

    /// Pipe target: the pipe is done with the stream.
    pub(crate) fn release_piped(&mut self, id: StreamId) {
        if let Some(state) = self.streams.get_mut(&id) {
            // A receipt that overtook the last acknowledgements ends the stream as well.
            let ended = state.receipt.is_some() && state.send.as_ref().is_some_and(SendStream::is_finished);
            if let Some(send) = state.send.as_ref().filter(|s| s.is_done() || ended) {
                self.send_buffered -= send.unacked();
                state.send = None;
                if state.recv.is_none() {
                    self.drop_stream(id);
                }
            }
        }
    }

    // ---------------------------------------------------------------- application

    fn check_established(&self) -> Result<(), ApiError> {
        if self.state == State::Established {
            Ok(())
        } else {
            Err(ApiError::NotEstablished)
        }
    }

    pub(crate) fn open_stream(&mut self, header: StreamHeader) -> Result<StreamId, ApiError> {
        self.check_established()?;
        if self.receipts_on() && self.receipts.awaited_full(self.streams.len()) {
            // As many streams await their receipt, or may come to (any open stream, counted
            // whichever side opened it: a bound, not an exact count), as we remember: a new
            // one waits (`StreamsAvailable` follows a receipt).
            return Err(ApiError::StreamLimit);
        }
        if self.too_long_for_peer(header.total_len.unwrap_or(0)) {
            return Err(ApiError::MessageTooLong);
        }
        if self.stream_credit.available() == 0 {
            if self.stream_credit.take_blocked().is_some() {
                self.stats.streams_blocked += 1;
                self.push_control(Control::StreamsBlocked);
            }
            return Err(ApiError::StreamLimit);
        }
        self.stream_credit.consume(1);
        let id = StreamId::new(self.side, self.next_stream_index);
        self.next_stream_index += 1;
        let state = self.boxed(StreamState {
            send: Some(SendStream::new(self.peer.max_stream_data)),
            header,
            ..Default::default()
        });
        self.streams.insert(id, state);
        Ok(id)
    }

    /// Whether a stream of `len` bytes is longer than the peer takes (its `max_message_len`).
    fn too_long_for_peer(&self, len: u64) -> bool {
        self.peer.max_message_len.is_some_and(|max| len > max)
    }

    fn send_stream(&mut self, id: StreamId) -> Result<&mut StreamState, ApiError> {
        self.check_established()?;
        if id.initiator() != self.side {
            return Err(ApiError::WrongDirection);
        }
        match self.streams.get_mut(&id) {
            Some(s) if s.send.is_some() => Ok(s),
            _ => Err(ApiError::UnknownStream),
        }
    }

    /// Queues what fits of `data` in the send buffer; how many bytes were taken.
    pub(crate) fn write(&mut self, id: StreamId, mut data: Bytes) -> Result<usize, ApiError> {
        let room = self.send_buffer_limit.saturating_sub(self.send_buffered);
        let limit = self.send_buffer_limit;
        let peer_max = self.peer.max_message_len;
        let state = self.send_stream(id)?;
        let total = state.header.total_len;
        let send = state.send.as_mut().ok_or(ApiError::UnknownStream)?;
        if send.is_finished() {
            return Err(ApiError::StreamFinished);
        }
        let end = send.write_end() + data.len() as u64;
        if total.is_some_and(|t| end > t) {
            return Err(ApiError::TotalLength);
        }
        if peer_max.is_some_and(|max| end > max) {
            return Err(ApiError::MessageTooLong);
        }
        if data.is_empty() {
            return Ok(0);
        }
        if room == 0 {
            // Writable once a quarter of the buffer (or the whole write) is free, not after
            // every acknowledgement.
            self.writable_wanted = Some((data.len() as u64).min(limit / 4).max(1));
            return Err(ApiError::WouldBlock);
        }
        let taken = (data.len() as u64).min(room) as usize;
        data.truncate(taken);
        send.write(data);
        self.send_buffered += taken as u64;
        self.queue_stream(id);
        Ok(taken)
    }

    /// Whether a message of `len` bytes can be sent now (else why not).
    pub(crate) fn message_room(&mut self, len: u64) -> Result<(), ApiError> {
        self.check_established()?;
        if len > self.send_buffer_limit || self.too_long_for_peer(len) {
            return Err(ApiError::MessageTooLong);
        }
        if len > self.send_buffer_limit.saturating_sub(self.send_buffered) {
            self.writable_wanted = Some(len);
            return Err(ApiError::WouldBlock);
        }
        Ok(())
    }

    /// Sends `data` as one message on a new stream, whole or not at all.
    pub(crate) fn send_message(&mut self, header: StreamHeader, data: Bytes) -> Result<StreamId, ApiError> {
        let len = data.len() as u64;
        self.message_room(len)?;
        let id = self.open_stream(header.with_total_len(len))?;
        self.write(id, data)?;
        self.finish(id)?;
        Ok(id)
    }

    /// Sets the class a stream we send is scheduled in.
    pub(crate) fn set_priority(&mut self, id: StreamId, priority: Priority) -> Result<(), ApiError> {
        self.send_stream(id)?.priority = priority;
        Ok(())
    }

    pub(crate) fn finish(&mut self, id: StreamId) -> Result<(), ApiError> {
        let state = self.send_stream(id)?;
        let total = state.header.total_len;
        let send = state.send.as_mut().ok_or(ApiError::UnknownStream)?;
        if total.is_some_and(|t| send.write_end() != t) {
            return Err(ApiError::TotalLength);
        }
        send.finish();
        self.queue_stream(id);
        Ok(())
    }

    pub(crate) fn reset_stream(&mut self, id: StreamId, code: u64) -> Result<(), ApiError> {
        self.send_stream(id)?;
        self.reset_send(id, code);
        Ok(())
    }

    fn reset_send(&mut self, id: StreamId, code: u64) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(send) = state.send.take() else { return };
        self.send_buffered -= send.unacked();
        let final_size = send.sent_end();
        if state.recv.is_none() {
            self.drop_stream(id);
        }
        self.resets.insert(id, (code, final_size));
        self.push_control(Control::ResetStream { id, code, final_size });
        self.check_writable();
    }

    pub(crate) fn stop_sending(&mut self, id: StreamId, code: u64) -> Result<(), ApiError> {
        self.check_established()?;
        if id.initiator() == self.side {
            return Err(ApiError::WrongDirection);
        }
        if self.receipts.held(id) == Some(Held::Read) {
            // Read to its end and held for the application's word: this is its refusal.
            return self.settle_delivery(id, Some(code));
        }
        let state = self.streams.get_mut(&id).ok_or(ApiError::UnknownStream)?;
        if !state.stopped {
            // Every byte arrived, and the application refuses them: the sender may have
            // seen them all acknowledged, so only a receipt tells it (spec §8, Delivery).
            let refused_whole = state
                .recv
                .as_ref()
                .is_some_and(|r| !r.awaits_data() && !r.is_tapped() && r.reset_code().is_none());
            state.stopped = true;
            self.receipts.forget_unread(id);
            state.partial.clear();
            state.partial_len = 0;
            // What arrived and was not read is dropped, and its credit released.
            if let Some(recv) = state.recv.as_mut() {
                while recv.read(usize::MAX).is_some() {}
                let unread = recv.highest().saturating_sub(state.released);
                state.released += unread;
                self.read_data += unread;
            }
            self.update_connection_credit();
            self.stops.insert(id, code);
            self.push_control(Control::StopSending { id, code });
            if refused_whole {
                self.send_receipt(id, Delivery::Failed { code, relays: 0 });
            }
        }
        Ok(())
    }

    fn recv_stream(&mut self, id: StreamId) -> Result<&mut StreamState, ApiError> {
        if id.initiator() == self.side {
            return Err(ApiError::WrongDirection);
        }
        match self.streams.get_mut(&id) {
            Some(s) if s.recv.is_some() => Ok(s),
            _ => Err(ApiError::UnknownStream),
        }
    }

    /// Reads the next contiguous bytes of a stream, at most `max_len`.
    pub(crate) fn read(&mut self, id: StreamId, max_len: usize) -> Result<Read, ApiError> {
        let (now, rtt) = (self.clock, self.recovery.rtt().smoothed());
        let state = self.recv_stream(id)?;
        let recv = state.recv.as_mut().ok_or(ApiError::UnknownStream)?;
        if let Some(code) = recv.reset_code() {
            self.remove_recv(id);
            return Ok(Read::Reset { code });
        }
        if let Some((offset, bytes)) = recv.read(max_len) {
            if let Some(v) = state.verifier.as_mut() {
                v.update(&bytes);
            }
            let credit = recv.credit_update(now, rtt);
            let grown_to = recv.window();
            let still_readable = recv.is_readable() || recv.is_finished();
            state.readable_signaled = still_readable;
            state.released += bytes.len() as u64;
            self.read_data += bytes.len() as u64;
            self.stats.bytes_read += bytes.len() as u64;
            if credit.is_some() {
                self.push_control(Control::MaxStreamData(id));
            }
            self.stream_window = self.stream_window.max(grown_to);
            self.update_connection_credit();
            return Ok(Read::Data { offset, bytes });
        }
        if recv.is_finished() {
            return Ok(match self.end_read(id) {
                Ok(()) => Read::Finished,
                Err(m) => m.into(),
            });
        }
        state.readable_signaled = false;
        Ok(Read::Pending)
    }

    /// Gathers a whole message: [`Read::Pending`] until the stream is finished, then all of
    /// it as one [`Read::Data`] at offset 0 (copied into one buffer only if it arrived in
    /// several pieces), or [`Read::Reset`]. Refuses messages longer than `max_len`.
    pub(crate) fn read_message(&mut self, id: StreamId, max_len: u64) -> Result<Read, ApiError> {
        loop {
            let state = self.recv_stream(id)?;
            let recv = state.recv.as_ref().ok_or(ApiError::UnknownStream)?;
            if state.partial_len > max_len
                || recv.end().or(state.header.total_len).is_some_and(|s| s > max_len)
            {
                return Err(ApiError::MessageTooLong);
            }
            if recv.is_finished() {
                let pieces = core::mem::take(&mut state.partial);
                return Ok(match self.end_read(id) {
                    Ok(()) => Read::Data {
                        offset: 0,
                        bytes: join(pieces),
                    },
                    Err(m) => m.into(),
                });
            }
            match self.read(id, usize::MAX)? {
                Read::Data { bytes, .. } => {
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.partial_len += bytes.len() as u64;
                        s.partial.push(bytes);
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// The application read stream `id` to its end: checks the bytes against the digest
    /// the sender attached, if any (spec §8, Verification), and lets the stream go.
    fn end_read(&mut self, id: StreamId) -> Result<(), Mismatch> {
        let state = self.streams.get_mut(&id);
        let tapped = state
            .as_ref()
            .is_some_and(|s| s.recv.as_ref().is_some_and(RecvStream::is_tapped));
        let verifier = state.and_then(|s| s.verifier.take());
        let verdict = verifier.map(Verifier::finish);
        match verdict {
            Some(Ok(())) => self.stats.streams_verified += 1,
            Some(Err(_)) => self.stats.verification_failures += 1,
            None => {}
        }
        // The final receiver's word (spec §8, Delivery); a relay's comes from its pipe.
        if !tapped {
            match verdict {
                Some(Err(_)) => {
                    self.receipts.forget_unread(id);
                    let failed = Delivery::Failed {
                        code: VERIFICATION_FAILED,
                        relays: 0,
                    };
                    self.send_receipt(id, failed);
                }
                _ if self.receipts.on_read_to_end(id) => {
                    // The application confirms it: the stream keeps its slot until then.
                    self.drop_recv_state(id);
                    return verdict.unwrap_or(Ok(()));
                }
                _ => self.send_receipt(id, Delivery::Delivered { relays: 0 }),
            }
        }
        self.remove_recv(id);
        verdict.unwrap_or(Ok(()))
    }

    /// The application confirms the delivery of the peer's stream `id` itself (spec §8,
    /// Delivery): reading it to its end owes no receipt until `settle_delivery`.
    pub(crate) fn defer_delivery(&mut self, id: StreamId) -> Result<(), ApiError> {
        let state = self.recv_stream(id)?;
        if state.recv.as_ref().is_some_and(RecvStream::is_tapped) {
            return Err(ApiError::AlreadyPiped);
        }
        if state.stopped {
            return Err(ApiError::UnknownStream);
        }
        self.receipts.hold(id);
        Ok(())
    }

    /// The application's word on a stream whose delivery it deferred and read to its end:
    /// delivered (`None`) or refused with a code.
    pub(crate) fn settle_delivery(&mut self, id: StreamId, refused: Option<u64>) -> Result<(), ApiError> {
        if id.initiator() == self.side {
            return Err(ApiError::WrongDirection);
        }
        if !self.receipts.settle(id) {
            return Err(ApiError::NothingToConfirm);
        }
        let delivery = match refused {
            None => Delivery::Delivered { relays: 0 },
            Some(code) => Delivery::Failed { code, relays: 0 },
        };
        self.send_receipt(id, delivery);
        self.release_stream_slot();
        Ok(())
    }

    fn remove_recv(&mut self, id: StreamId) {
        self.drop_recv_state(id);
        self.release_stream_slot();
    }

    fn drop_recv_state(&mut self, id: StreamId) {
        if let Some(state) = self.streams.get_mut(&id) {
            if state.send.is_some() {
                state.recv = None;
            } else {
                self.drop_stream(id);
            }
        }
    }

    /// One stream of the peer's gone: it may open one more.
    fn release_stream_slot(&mut self) {
        self.local_max_streams += 1;
        self.grant_streams();
    }

    /// A box for a new stream's state: a spare one if there is one.
    fn boxed(&mut self, state: StreamState) -> Box<StreamState> {
        match self.spare.pop() {
            Some(mut b) => {
                *b = state;
                b
            }
            None => Box::new(state),
        }
    }

    /// Forgets stream `id`, keeping its box as a spare (emptied: it holds no bytes).
    fn drop_stream(&mut self, id: StreamId) {
        self.receipts.forget_unread(id);
        if let Some(mut b) = self.streams.remove(&id) {
            if self.spare.len() < SPARE_STREAMS {
                *b = StreamState::default();
                self.spare.push(b);
            }
        }
    }

    /// Queues a MAX_STREAMS once the peer has used half of the stream credit it was told of
    /// and there is more to grant.
    fn grant_streams(&mut self) {
        let left = self
            .announced_max_streams
            .saturating_sub(self.peer_streams_opened);
        if self.local_max_streams > self.announced_max_streams && left <= self.max_concurrent_streams / 2 {
            self.push_control(Control::MaxStreams);
        }
    }

    fn update_connection_credit(&mut self) {
        let rtt = self.recovery.rtt().smoothed();
        if self
            .recv_flow
            .update(self.read_data, None, self.clock, rtt)
            .is_some()
        {
            self.push_control(Control::MaxData);
        }
    }

    /// Closes the connection with an application code. Once everything the application
    /// wrote and every receipt we owe is acknowledged (at once if nothing waits; at most
    /// [`LINGER`] or three PTOs later), CLOSE goes out, and the connection stays three PTOs
    /// more to answer stragglers with it (spec §8, Liveness and close).
    pub(crate) fn close(&mut self, now: Instant, code: u64, reason: Reason) {
        match self.state {
            State::Established => {
                self.close_frame = Some(Box::new(Close {
                    code: CloseCode::Application(code),
                    reason,
                }));
                let until = now + self.recovery.pto().saturating_mul(3).max(LINGER);
                self.step(Step::AppClosed { until });
                self.closed(CloseReason::Local { code });
                if self.linger_done() {
                    self.end_linger(now);
                }
            }
            // Nothing can be said to the peer before the handshake is done.
            State::Handshaking => {
                self.step(Step::AppClosed { until: now });
                self.closed(CloseReason::Local { code });
            }
            _ => {}
        }
    }

    /// Whether a lingering close has nothing left to wait for: no packet of ours waits for
    /// its acknowledgement, no written byte for its sending, no receipt we owe for its
    /// acknowledgement.
    fn linger_done(&self) -> bool {
        !self.recovery.awaits_ack() && self.send_buffered == 0 && self.receipts.owed() == 0
    }

    /// Ends the linger: CLOSE with what the application gave.
    fn end_linger(&mut self, now: Instant) {
        if let Some(Close { code, reason }) = self.close_frame.take().map(|c| *c) {
            self.close_with(now, code, reason);
        }
    }

    /// Moves the lifecycle on by `step` (`lifecycle::TRANSITIONS`). A step the table does not
    /// list for the state leaves it as it is; the fuzzing build treats one as a bug, so the
    /// fuzzers and the suites find any path the table does not declare.
    fn step(&mut self, step: Step) {
        let next = self.state.after(step);
        // Only the fuzzing build (never a normal one) asserts: there an undeclared step is a
        // bug for the fuzzers and suites to find; elsewhere the state stays as it is.
        #[cfg(feature = "fuzzing")]
        assert!(
            next.is_some(),
            "no transition from {:?} on {step:?} (lifecycle::TRANSITIONS)",
            self.state
        );
        if let Some(next) = next {
            self.state = next;
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.state, State::Established | State::Lingering { .. })
    }

    fn close_with(&mut self, now: Instant, code: CloseCode, reason: Reason) {
        let until = now + self.recovery.pto().saturating_mul(3);
        self.recovery.drain();
        self.close_frame = Some(Box::new(Close { code, reason }));
        self.close_pending = true;
        self.step(Step::SendClose { until });
    }

    // ---------------------------------------------------------------- output

    /// Writes the next datagram into `buf`; returns its length, or `None` if there is
    /// nothing to send now.
    pub(crate) fn poll_transmit(&mut self, now: Instant, config: &Config, buf: &mut [u8]) -> Option<usize> {
        self.clock = self.clock.max(now);
        let buf = match self.unvalidated {
            Some(a) => {
                let budget = (a.received * AMPLIFICATION_FACTOR).saturating_sub(a.sent);
                let end = usize::try_from(budget).unwrap_or(usize::MAX).min(buf.len());
                &mut buf[..end]
            }
            None => buf,
        };
        if self.crypto.as_ref().is_some_and(|p| p.exhausted())
            && (self.state == State::Handshaking || self.is_open())
        {
            // spec §11.5: the key may seal nothing more (the peer acknowledged nothing under
            // it, so no update could happen), or forgeries reached the integrity limit.
            self.close_silently(CloseReason::KeysExhausted);
        }
        let len = match self.state {
            State::Closed | State::Draining { .. } => None,
            State::Closing { .. } => self.send_close(now, buf),
            State::Handshaking => self.send_handshake(now, config, buf),
            State::Established | State::Lingering { .. }
                if self.finish.as_ref().is_some_and(|f| f.at <= now) =>
            {
                self.send_finish(now, buf)
            }
            State::Established => self.send_data(now, config, buf),
            State::Lingering { .. } if self.linger_done() => {
                self.end_linger(now);
                self.send_close(now, buf)
            }
            State::Lingering { .. } => self.send_data(now, config, buf),
        };
        if let Some(len) = len {
            self.stats.datagrams_sent += 1;
            if let Some(a) = self.unvalidated.as_mut() {
                a.sent += len as u64;
            }
        }
        self.refresh_timers(config);
        len
    }

    fn header(&mut self, now: Instant, kind: PacketKind) -> Header {
        let number = self.recovery.next_pn();
        let key_phase = match (kind, self.crypto.as_mut()) {
            (PacketKind::Data, Some(p)) => p.send_phase(),
            _ => KeyPhase::Zero,
        };
        Header {
            version: self.version,
            key_phase,
            kind,
            dcid: self.remote_cid,
            number,
            number_len: match (
                kind,
                PacketNumberLen::for_packet(number, self.recovery.largest_acked()),
            ) {
                // spec §3.3: data packets use at least 2 bytes, so reordering deeper than the
                // packets in flight when one was sent does not make it unrecoverable.
                (PacketKind::Data, PacketNumberLen::One) => PacketNumberLen::Two,
                (_, len) => len,
            },
            timestamp: now.wire_timestamp(),
        }
    }

    fn send_handshake(&mut self, now: Instant, config: &Config, buf: &mut [u8]) -> Option<usize> {
        let idle_timeout = self.idle_timeout(config);
        let kind = PacketKind::Handshake { scid: self.local_cid };
        let header = self.header(now, kind);
        let end = MIN_DATAGRAM_SIZE.min(buf.len());
        let mut w = PacketWriter::new(&mut buf[..end], &header).ok()?;
        match &mut self.handshake {
            HandshakeState::Client(c) => {
                if !c.take_send(now) {
                    return None;
                }
                w.push(&c.hello_frame()?).ok()?;
                w.pad_to(MIN_DATAGRAM_SIZE).ok()?;
            }
            HandshakeState::Server {
                answer,
                send_accept,
                answer_until,
                deadline,
                ..
            } => {
                // A copy of the HELLO (a duplicate included) is answered by the same ACCEPT,
                // which in version 1 carries the ACK; nothing else can carry it before
                // confirmation. (Version 2 records no handshake packet: nothing to ACK.)
                let ack_due = self.received.deadline().is_some_and(|d| d <= now);
                if (!*send_accept && !ack_due) || now >= *answer_until {
                    return None;
                }
                let answer = answer.clone();
                let ack = self.received.build(now);
                let written = ack.map_or(Ok(()), |ack| w.push(&Frame::Ack(ack)));
                if written.and_then(|()| w.push(&answer)).is_err() {
                    // No room within spec §10.2's budget: the ACCEPT goes once there is.
                    return None;
                }
                *send_accept = false;
                // A client that reads this answer is connected, and gives up on us only
                // after its idle timeout without a word: keep the attempt at least that
                // long, so that a client is never connected to a server that forgot it
                // (spec §8, Handshake).
                *deadline = (*deadline).max(now + idle_timeout);
            }
            HandshakeState::Done => return None,
        }
        let len = w.finish().ok()?;
        self.recovery.take_pn();
        Some(len)
    }

    /// Client, pattern XX: NOISE_FINISH, again on its backoff until the server's first data
    /// packet shows it arrived (spec §11.2).
    fn send_finish(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let header = self.header(now, PacketKind::Handshake { scid: self.local_cid });
        let end = MIN_DATAGRAM_SIZE.min(buf.len());
        let finish = self.finish.as_mut()?;
        let mut w = PacketWriter::new(&mut buf[..end], &header).ok()?;
        w.push(&Frame::NoiseFinish(finish.message.clone())).ok()?;
        let len = w.finish().ok()?;
        finish.at = now + finish.backoff;
        finish.backoff = finish.backoff.saturating_mul(2);
        self.recovery.take_pn();
        Some(len)
    }

    fn send_close(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if !self.close_pending {
            return None;
        }
        let frame = Frame::Close(Close::clone(self.close_frame.as_deref()?));
        self.close_pending = false;
        let header = self.header(now, PacketKind::Data);
        let end = MIN_DATAGRAM_SIZE.min(buf.len());
        let mut w = PacketWriter::new(&mut buf[..end], &header).ok()?;
        // What arrived is acknowledged in the same packet, ahead of the CLOSE (spec §4.11):
        // a peer whose last bytes crossed our decision to close learns they were delivered
        // instead of counting them cut short.
        if let Some(ack) = self.received.build(now).map(Frame::Ack) {
            let room = frame.encoded_len().ok()? + ack.encoded_len().ok()?;
            if room <= w.remaining() {
                w.push(&ack).ok()?;
            }
        }
        // Receipts still owed (a linger that ran out) go with it, as many as fit: the
        // peer reads them before the CLOSE.
        for (id, delivery) in self.receipts.owed_frames() {
            let receipt = Frame::Receipt { id, delivery };
            let room = frame.encoded_len().ok()? + receipt.encoded_len().ok()?;
            if room > w.remaining() || w.push(&receipt).is_err() {
                break;
            }
        }
        w.push(&frame).ok()?;
        let len = seal(&mut self.crypto, w, header.number)?;
        self.recovery.take_pn();
        Some(len)
    }

    fn send_data(&mut self, now: Instant, config: &Config, buf: &mut [u8]) -> Option<usize> {
        let mut size = self.datagram_size(config, buf.len());
        // The second probe of a probe timeout may go at the base size, to tell a path that
        // drops large datagrams from one that drops everything (RFC 8899 §4.3); after a
        // fallback, a busy connection tries the large size again now and then (§5.1.2).
        let probe = if self.probes == 1 && self.black_hole.wants_probe(self.recovery.pto_count(), size) {
            size = MIN_DATAGRAM_SIZE.min(size);
            Probe::Small
        } else if self.black_hole.wants_raise(now)
            && self.recovery.bytes_in_flight() > 0
            && self.large_datagram_size(config, buf.len()) > size
        {
            size = self.large_datagram_size(config, buf.len());
            Probe::Raise
        } else {
            Probe::None
        };
        let header = self.header(now, PacketKind::Data);
        let mut w = PacketWriter::new(buf.get_mut(..size)?, &header).ok()?;
        let empty = w.remaining();
        let mut sent: SmallVec<[SentFrame; 2]> = SmallVec::new();
        let window_open = self.stream_window_open(now, size);
        let probing = self.probes > 0;
        self.receipts.skip_stale();
        let has_content = !self.control.is_empty() || self.receipts.has_queued() || window_open || probing;
        let ack_due = self.received.deadline().is_some_and(|d| d <= now);
        let mut ack_largest = None;
        if ack_due || (self.received.has_news() && has_content) {
            if let Some(ack) = self.received.build(now) {
                let largest = ack.largest();
                // An ACK that does not fit waits for the next datagram.
                if w.push(&Frame::Ack(ack)).is_ok() {
                    ack_largest = Some(largest);
                }
            }
        }
        if probe == Probe::Raise {
            // A PING padded to the large size and nothing else: its loss loses no data.
            w.push(&Frame::Ping).ok()?;
            sent.push(SentFrame::Ping);
            w.pad_to(size).ok()?;
        } else {
            while let Some(&c) = self.control.front() {
                let Some((frame, record)) = self.control_frame(c) else {
                    self.control.pop_front();
                    continue;
                };
                if w.push(&frame).is_err() {
                    break;
                }
                self.control.pop_front();
                if let SentFrame::MaxStreams = record {
                    self.announced_max_streams = self.local_max_streams;
                }
                sent.push(record);
            }
            while let Some((id, delivery)) = self.receipts.next_to_send() {
                if w.push(&Frame::Receipt { id, delivery }).is_err() {
                    break;
                }
                self.receipts.sent();
                sent.push(SentFrame::Receipt(id));
            }
            // A probe carries a PING whatever else it holds (ahead of the stream data, which
            // would fill the datagram), so that the peer acknowledges it at once rather than
            // after a second packet or its ACK delay (spec §8, Loss).
            if probing && w.push(&Frame::Ping).is_ok() {
                sent.push(SentFrame::Ping);
            }
            if window_open {
                self.fill_streams(&mut w, &mut sent);
            }
        }
        let eliciting = !sent.is_empty();
        if !eliciting && w.remaining() == empty {
            // Nothing at all was written.
            return None;
        }
        let len = seal(&mut self.crypto, w, header.number)?;
        let number = self.recovery.take_pn();
        if let Some(largest) = ack_largest {
            self.received.ack_sent(number, largest);
        }
        if eliciting {
            self.black_hole.on_sent(number, len, probe);
            self.probes = self.probes.saturating_sub(1);
            self.last_eliciting_sent = now;
            self.recovery.on_sent(SentPacket::new(number, now, len, sent));
            self.pacer.on_sent(len);
            self.cc.on_sent(now, len, self.recovery.bytes_in_flight());
        }
        Some(len)
    }

    /// Whether new stream data may go out now: a probe may always send; otherwise the
    /// congestion window must have room and the pacer must allow a datagram of `size`
    /// (if it does not, the pacing timer is set for when it will). Also notes whether the
    /// sender is application-limited (RFC 9002 §7.8).
    fn stream_window_open(&mut self, now: Instant, size: usize) -> bool {
        self.pacing_wake = None;
        if self.probes > 0 {
            return true;
        }
        let window = self.cc.window();
        if self.recovery.bytes_in_flight() >= window {
            self.app_limited = false;
            return false;
        }
        if self.send_queues.iter().all(VecDeque::is_empty) {
            self.app_limited = true;
            self.recovery.on_app_limited();
            return false;
        }
        let rtt = self.recovery.rtt();
        let pace = match self.cc.pacing_rate() {
            Some(rate) => Pace::Rate(rate),
            None => Pace::Window {
                window,
                slow_start: self.cc.in_slow_start(),
            },
        };
        match self.pacer.delay(now, pace, rtt, size) {
            None => true,
            Some(at) => {
                self.pacing_wake = Some(at);
                false
            }
        }
    }

    /// The frame for a pending control entry, with what to remember of it; `None` if it is
    /// no longer needed.
    fn control_frame(&self, c: Control) -> Option<(Frame, SentFrame)> {
        Some(match c {
            Control::MaxData => (Frame::MaxData(self.recv_flow.limit()), SentFrame::MaxData),
            Control::DataBlocked => (
                Frame::DataBlocked(self.send_credit.limit()),
                SentFrame::Blocked(Blocked::Data),
            ),
            Control::StreamDataBlocked(id) => {
                let send = self.streams.get(&id)?.send.as_ref()?;
                (
                    Frame::StreamDataBlocked {
                        id,
                        limit: send.blocked_limit()?,
                    },
                    SentFrame::Blocked(Blocked::Stream(id)),
                )
            }
            Control::StreamsBlocked => (
                Frame::StreamsBlocked(self.stream_credit.limit()),
                SentFrame::Blocked(Blocked::Streams),
            ),
            Control::MaxStreamData(id) => {
                let recv = self.streams.get(&id)?.recv.as_ref()?;
                (
                    Frame::MaxStreamData {
                        id,
                        max: recv.max_data(),
                    },
                    SentFrame::MaxStreamData(id),
                )
            }
            Control::MaxStreams => (Frame::MaxStreams(self.local_max_streams), SentFrame::MaxStreams),
            Control::ResetStream { id, code, final_size } => (
                Frame::ResetStream { id, code, final_size },
                SentFrame::ResetStream(id),
            ),
            Control::StopSending { id, code } => {
                (Frame::StopSending { id, code }, SentFrame::StopSending(id))
            }
            Control::Ping => (Frame::Ping, SentFrame::Ping),
        })
    }

    /// Adds STREAM frames while there is room: higher priority classes first; within a
    /// class streams take turns (round robin), and a stream's turn lasts until it has
    /// nothing more to send or the datagram is full. Notes what waits on credit, to report.
    fn fill_streams(&mut self, w: &mut PacketWriter<'_>, sent: &mut SmallVec<[SentFrame; 2]>) {
        for class in 0..Priority::COUNT {
            let mut turns = self.send_queues[class].len();
            while turns > 0 && w.remaining() > MIN_STREAM_ROOM {
                turns -= 1;
                let Some(id) = self.send_queues[class].pop_front() else {
                    break;
                };
                self.stream_turn(id, w, sent);
            }
        }
    }

    /// One stream's turn in `fill_streams`.
    fn stream_turn(&mut self, id: StreamId, w: &mut PacketWriter<'_>, sent: &mut SmallVec<[SentFrame; 2]>) {
        let Some(state) = self.streams.get_mut(&id) else {
            return;
        };
        state.queued = false;
        let Some(send) = state.send.as_mut() else { return };
        while w.remaining() > MIN_STREAM_ROOM {
            let credit = self.send_credit.available();
            let before = send.sent_end();
            let Some(frame) = next_stream_frame(id, send, &state.header, w.remaining(), credit) else {
                break;
            };
            self.send_credit.consume(send.sent_end() - before);
            let record = SentFrame::Stream {
                id,
                offset: frame.offset,
                len: frame.data.len() as u64,
                fin: frame.fin,
            };
            let (range, fin) = (frame.offset..frame.end(), frame.fin);
            if w.push(&Frame::Stream(frame)).is_err() {
                // Sized to fit, so this does not happen; if it did, the bytes are resent.
                send.on_lost(range, fin);
                break;
            }
            sent.push(record);
        }
        let stream_blocked = send
            .blocked_limit()
            .filter(|&l| state.blocked_reported != Some(l));
        if let Some(limit) = stream_blocked {
            state.blocked_reported = Some(limit);
        }
        let wants_credit = send.has_new_data();
        if send.has_data() {
            state.queued = true;
            self.send_queues[state.priority as usize].push_back(id);
        }
        if stream_blocked.is_some() {
            self.stats.stream_data_blocked += 1;
            self.push_control(Control::StreamDataBlocked(id));
        }
        if wants_credit && self.send_credit.take_blocked().is_some() {
            self.stats.data_blocked += 1;
            self.push_control(Control::DataBlocked);
        }
    }
}

/// RFC 9002 §7.6: persistent congestion after this many probe timeouts in a row.
const PERSISTENT_CONGESTION_PTOS: u32 = 2;

/// Below this much room a datagram takes no more STREAM frames.
const MIN_STREAM_ROOM: usize = 24;

/// The next STREAM frame of stream `id` that fits in `room` bytes (its own fields included),
/// with at most `credit` new bytes; the open fields ride on the frame at offset 0.
fn next_stream_frame(
    id: StreamId,
    send: &mut SendStream,
    header: &StreamHeader,
    room: usize,
    credit: u64,
) -> Option<StreamFrame> {
    let frame = |offset: u64, data: Bytes, fin: bool| {
        // The opening fields ride only on offset 0: no label clone for the other frames.
        let opening = (offset == 0).then_some(header);
        StreamFrame {
            id,
            offset,
            data,
            fin,
            total_len: opening.and_then(|h| h.total_len),
            label: opening.and_then(|h| h.label.clone()),
            digest: opening.and_then(|h| h.digest),
        }
    };
    let fields = frame(send.next_offset(), Bytes::new(), false);
    // The empty frame's 1-byte length becomes at most `varint_len(room)` bytes.
    let overhead =
        Frame::Stream(fields).encoded_len().ok()? - 1 + crate::wire::varint::encoded_len(room as u64)?;
    let chunk = send.next_chunk(room.checked_sub(overhead)?, credit)?;
    Some(frame(chunk.offset, chunk.data, chunk.fin))
}

/// Ends a packet: sealed under the connection's keys if it is a version 2 data packet
/// (spec §11.4), else with its checksum trailer.
fn seal(crypto: &mut Option<Box<Protection>>, w: PacketWriter<'_>, number: u64) -> Option<usize> {
    match crypto {
        Some(p) if w.is_sealed() => w.finish_sealed(|aad, payload| p.seal(number, aad, payload)).ok(),
        _ => w.finish().ok(),
    }
}

fn recv_violation(e: RecvError) -> ViolationKind {
    match e {
        RecvError::FlowControl => ViolationKind::PastCredit,
        RecvError::FinalSize => ViolationKind::FinalSize,
        RecvError::Rewritten => ViolationKind::RewrittenBytes,
        RecvError::OverBudget => ViolationKind::ReceiveBudget,
    }
}

/// Joins pieces of a message; a single piece is returned as is (no copy).
fn join(mut pieces: SmallVec<[Bytes; 2]>) -> Bytes {
    match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.pop().unwrap_or_default(),
        _ => {
            let total = pieces.iter().map(Bytes::len).sum();
            let mut out = BytesMut::with_capacity(total);
            for p in &pieces {
                out.extend_from_slice(p);
            }
            out.freeze()
        }
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("handle", &self.handle)
            .field("side", &self.side)
            .field("state", &self.state)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Capabilities, TransportParams};

    fn unvalidated_server(config: &Config) -> Connection {
        let client = ConnectionId::from_u64(7);
        let hello = Header {
            version: VERSION_1,
            key_phase: KeyPhase::Zero,
            kind: PacketKind::Handshake { scid: client },
            dcid: ConnectionId::UNSET,
            number: 0,
            number_len: PacketNumberLen::One,
            timestamp: 0,
        };
        let accept = Accept {
            version: 1,
            capabilities: Capabilities::ALL,
            params: config.transport_params(),
        };
        let slot = Slot {
            handle: ConnectionHandle::from_index(0),
            cid: ConnectionId::from_u64(8),
            skip_seed: 0,
            entropy: Entropy::new(&crate::Seed::from(0), b"test"),
        };
        Connection::server(
            slot,
            Instant::ZERO,
            config,
            "10.0.0.1:1".parse().unwrap(),
            (
                client,
                crate::admission::HelloKey::new("10.0.0.1:1".parse().unwrap(), client, None),
            ),
            &hello,
            &TransportParams::default(),
            ServerAnswer::V1(accept),
            false,
        )
    }

    #[test]
    fn an_unvalidated_address_is_sent_at_most_three_times_what_it_sent() {
        let config = Config::default();
        let mut c = unvalidated_server(&config);
        let mut buf = [0u8; 1500];
        let now = Instant::ZERO;
        // Nothing counted from the address yet: the ACCEPT waits.
        assert_eq!(c.poll_transmit(now, &config, &mut buf), None);
        // 20 bytes allow 60: too few for the ACCEPT.
        let from = c.remote;
        c.on_datagram_len(from, 20);
        assert_eq!(c.poll_transmit(now, &config, &mut buf), None);
        // The HELLO's 1200 bytes allow it.
        c.on_datagram_len(from, 1200);
        let len = c.poll_transmit(now, &config, &mut buf).expect("the ACCEPT");
        let account = c.unvalidated.expect("still unvalidated");
        assert_eq!(account.sent, len as u64);
        assert!(account.sent <= 3 * account.received);
    }
}
