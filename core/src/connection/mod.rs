//! One connection: handshake progress, streams, acknowledgements and retransmission,
//! credit, liveness and close (spec/protocol.md §4, §7, §8).
//!
//! The [`Endpoint`](crate::Endpoint) owns every connection and drives it: it routes each
//! decoded packet here (`handle_packet`, which dispatches each frame in `on_frame`),
//! forwards application commands, asks for the next datagram (`poll_transmit`), fires
//! timers (`handle_timeout`) and collects events. A connection never sees a socket, a clock
//! or a random source. This file holds the state, its construction and what the endpoint
//! asks of it; each concern's methods are in a file of their own:
//!
//! | file | decides |
//! | --- | --- |
//! | `receive` | a packet for this connection: address, duplicates, each frame dispatched |
//! | `lifecycle` | the connection's states and every transition, as a table (spec/state-machines.md) |
//! | `handshaking` | the handshake frames and datagrams of this connection (§7, §11.2), and its table |
//! | `stream_frames` | what the peer's STREAM, RESET_STREAM, STOP_SENDING and RECEIPT frames do |
//! | `streams` | the application's stream calls, and stream and connection credit granted back |
//! | `receive_credit` | the connection credit we grant, what the peer used and the application released, the streams' heap cost (an owned part) |
//! | `send_buffer` | the bytes written and not yet acknowledged, and when a refused write hears of room (an owned part) |
//! | `inbox` | the streams the peer opened that the application has not taken, the messages gathered for it (an owned part) |
//! | `stream_table` | the stream table (an owned part): boxed states, spare boxes, the send round robin |
//! | `unsent` | a backlog's messages, kept as their bytes until their first turn (an owned part of the stream table) |
//! | `in_flight` | streams of ours whose bytes have all gone, waiting only for their acknowledgements without their states (an owned part of the stream table) |
//! | `id_queue` | the stream table's values kept in id order: unsent messages and streams in flight |
//! | `stream_count` | how many streams each side may open, and when to tell the peer more (an owned part) |
//! | `loss` | what an ACK's outcome does: frames released or queued again, congestion fed |
//! | `lazy_receipts` | which packets go lazily and which of the peer's we answer lazily; a lazy packet's receipts sent again (§8, Acknowledgements) |
//! | `control` | control frames: what waits (an owned queue), the frame and recovery record of each |
//! | `send_gate` | whether new stream data may leave now: window, pacer, application-limited mark (an owned part) |
//! | `liveness` | when the peer was last heard from and sent to, the probes owed (an owned part) |
//! | `transmit` | the next datagram: close, handshake, or ACK, control and stream data |
//! | `tap` | the connection's half of a pipe |
//! | `close` | ending the connection: the application's close, violations, the peer's CLOSE |
//! | `closing` | the CLOSE to send (again) and the end reported once (an owned part) |
//! | `path` | whether the peer's address is proven, and the 3× limit until then (an owned part) |
//! | `punch` | hole punching toward the peer's candidates, and the way back to the circuit (an owned part; spec §12.5) |
//! | `relay_link` | the relay frames both ways: sent until acknowledged, received for the endpoint (an owned part; spec §12.2) |
//! | `address_report` | the addresses each side told the other it sees it at (an owned part; spec §4.18) |
//! | `timers`, `timeouts` | the timer table ([`Timer`]), each deadline and each timer's action |

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::black_hole::{BlackHole, Probe, Verdict};
use crate::config::{Config, PeerDecision, PeerLimits, PeerParams};
use crate::congestion::{AckEvent, CongestionAlgorithm, CongestionController, LossEvent, RttSample};
use crate::crypto::keys::{Entropy, Identity, PublicKey};
use crate::crypto::noise::{NoiseHandshake, Secrets};
use crate::crypto::protection::Protection;
use crate::delivery::{Held, Receipts};
use crate::event::{ApiError, CloseReason, Event, Priority, Read, StreamHeader, ViolationKind};
use crate::flow::SendCredit;
use crate::handle::ConnectionHandle;
use crate::handshake::{self, Backoff, HandshakeError, Negotiated, NotOpened, ServerNext, ServerNoise};
use crate::mtu_search::MtuSearch;
use crate::pacing::Pace;
use crate::pipe::{Progress, TargetState};
use crate::recovery::received::{AckWanted, Received};
use crate::recovery::{Control, Outcome, Recovery, SentFrame, SentFrames, SentPacket, Timeout};
use crate::stats::{ConnectionCounters, ConnectionStats};
use crate::stream::held::{budget, Datagram, STREAM_COST};
use crate::stream::recv::{RecvError, RecvStream};
use crate::stream::send::SendStream;
use crate::thin_deque::ThinDeque;
use crate::time::{Duration, Instant};
use crate::verify::{Mismatch, Verifier};
use crate::wire::{
    Accept, Ack, Close, CloseCode, ConnectionId, DecodeError, Frame, Header, KeyPhase, Packet, PacketKind,
    PacketNumberLen, PacketWriter, Reason, RejectReason, Side, StreamFrame, StreamId, TransportErrorCode,
    MIN_DATAGRAM_SIZE, VERSION_1, VERSION_2,
};
use crate::wire::{Capabilities, Delivery, ReceiptRun, VERIFICATION_FAILED};

mod address_report;
mod close;
mod closing;
mod control;
mod datagrams;
mod gathered;
mod handshaking;
mod id_queue;
mod in_flight;
mod inbox;
mod lazy_receipts;
mod lifecycle;
mod liveness;
mod loss;
mod path;
mod prefetch;
mod punch;
mod reading;
mod receive;
mod receive_credit;
mod relay_link;
mod send_buffer;
mod send_gate;
mod stream_count;
mod stream_frames;
mod stream_state;
mod stream_table;
mod streams;
mod tap;
mod timeouts;
mod timers;
mod transmit;
mod unsent;

use address_report::AddressReport;
use closing::Closing;
use control::ControlQueue;
use datagrams::Datagrams;
pub use gathered::Gathered;
use handshaking::{HandshakeState, HandshakeStep};
use inbox::Inbox;
use lazy_receipts::frame_ack_wanted;
use lifecycle::{State, Step};
use liveness::Liveness;
use path::{Move, Path};
use punch::{Follow, Punch};
use reading::{ReadStep, Reading};
use receive_credit::ReceiveCredit;
use relay_link::RelayLink;
use send_buffer::SendBuffer;
use send_gate::{Gate, SendGate, Sending};
use stream_count::{Refusal, StreamCount};
use stream_state::{Half, KeptHeader, Settled, StreamState};
use stream_table::{Place, StreamTable};
pub use timers::Timer;
use timers::Timers;
use transmit::seal;
use unsent::Unsent;

/// A handshake message sent again on a backoff timer until the peer's answer shows it
/// arrived (the client's NOISE_FINISH, spec §11.2).
#[derive(Debug)]
struct Resend {
    message: Bytes,
    at: Instant,
    backoff: Backoff,
    /// How often it went (saturating): from the third copy, the ones before may all have
    /// been lost, and the packets sent meanwhile held at the peer for its keys.
    copies: u8,
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
    /// (Boxed: a client holds it for one round trip, every connection holds the field.)
    finish: Option<Box<Resend>>,
    /// Server side: the (address, client id) its HELLO came with, for the endpoint's index.
    pub(crate) hello_key: Option<crate::admission::HelloKey>,
    pub(crate) side: Side,
    pub(crate) remote: SocketAddr,
    pub(crate) local_cid: ConnectionId,
    remote_cid: ConnectionId,
    state: State,
    handshake: HandshakeState,
    negotiated: Option<Negotiated>,
    /// What the connection goes on reading of the peer's transport parameters.
    peer: PeerLimits,
    recovery: Recovery,
    received: Received,
    /// A client's own choice of controller, if not the configured one: the handshake builds
    /// it (`apply_peer_params`), and a new path builds it again (`new_path`).
    congestion: Option<Box<CongestionAlgorithm>>,
    cc: Box<dyn CongestionController>,
    /// Whether new stream data may leave now: the pacer, its deadline, the
    /// application-limited mark (an owned part, module `send_gate`).
    gate: SendGate,
    /// Every stream, and the send round robin (module `stream_table`).
    streams: StreamTable,
    /// How many streams each side may open, and when to tell the peer more (an owned part,
    /// module `stream_count`): grants are batched, a MAX_STREAMS riding in a packet that
    /// goes anyway once the peer has used a quarter of the count (RFC 9000 §4.6), not after
    /// every stream read, so a request-response exchange is not followed by a datagram of
    /// its own.
    stream_count: StreamCount,
    /// Connection credit the peer granted (used: new stream bytes sent).
    send_credit: SendCredit,
    /// Connection credit we grant, what the peer used of it and the application released,
    /// and what the peer's streams cost the heap (an owned part, module `receive_credit`).
    receive_credit: ReceiveCredit,
    /// Bytes written and not yet acknowledged, against `Config::send_buffer`, and when a
    /// refused write hears of room (an owned part, module `send_buffer`).
    send_buffer: SendBuffer,
    /// The latest time an input carried (for what the application's calls decide).
    clock: Instant,
    /// The streams the peer opened that the application has not taken, and the messages
    /// gathered for it (an owned part, module `inbox`).
    inbox: Inbox,
    /// Control frames waiting to be sent (module `control`).
    control: ControlQueue,
    /// Delivery receipts we owe the peer and await from it (capability RECEIPTS).
    receipts: Receipts,
    /// The CLOSE to send and whether the end was reported (an owned part, module `closing`).
    closing: Closing,
    timers: Timers,
    /// Whether the endpoint's timer index holds [`timers`](Self::timers)' earliest deadline
    /// as it stands: cleared by every change of the table, set by the endpoint once it filed
    /// it (`Endpoint::refile_timer`, which skips a connection that changed nothing).
    timers_filed: bool,
    /// When the peer was last heard from and sent to, and the probes owed (an owned part,
    /// module `liveness`; spec §8, Liveness).
    liveness: Liveness,
    /// Whether large datagrams get through (RFC 8899 black-hole detection).
    black_hole: BlackHole,
    /// How large a datagram the path carries (RFC 8899 DPLPMTUD; module `mtu_search`).
    mtu: MtuSearch,
    /// Whether the peer's address is proven, and until then how much may be sent to it
    /// (an owned part, module `path`; spec §10.2).
    path: Path,
    /// The addresses each side told the other it sees it at (an owned part, module
    /// `address_report`; spec §4.18).
    address_report: AddressReport,
    /// The relay frames both ways (an owned part, module `relay_link`; spec §12.2); boxed,
    /// made on first use.
    relay: Option<Box<RelayLink>>,
    /// Hole punching, and the circuit to go back to (an owned part, module `punch`; spec
    /// §12.5); boxed, made when a punch is planned.
    punch: Option<Box<Punch>>,
    /// The datagram being handled: its size (it opens a new address's account), and whether
    /// a slice of it held pays for it (module `stream::held`).
    datagram: Datagram,
    /// Unreliable datagrams both ways (an owned part, module `datagrams`; spec §4.19).
    datagrams: Datagrams,
    /// Events for the application, in order (one pointer while a trimmed connection has
    /// none).
    events: ThinDeque<Event>,
    pub(crate) stats: ConnectionCounters,
}

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
            peer: PeerParams::from_wire(&Default::default()).limits(),
            recovery: Recovery::new(config.initial_rtt, config.max_probe_interval, skip_seed),
            received: Received::new(config.max_tracked_ack_ranges),
            congestion: None,
            cc: config.congestion.build(MIN_DATAGRAM_SIZE),
            gate: SendGate::new(now),
            streams: StreamTable::default(),
            stream_count: StreamCount::new(config.concurrent_streams_at_start()),
            send_credit: SendCredit::new(0),
            // Growth comes from the endpoint's shared budget (`grant_window_room`).
            receive_credit: ReceiveCredit::new(config.receive_window, config.max_receive_window)
                .with_stream_window(config.stream_receive_window),
            send_buffer: SendBuffer::new(config.send_buffer),
            clock: now,
            inbox: Inbox::default(),
            control: ControlQueue::default(),
            receipts: Receipts::default(),
            closing: Closing::default(),
            timers: Timers::default(),
            timers_filed: false,
            liveness: Liveness::new(now),
            black_hole: BlackHole::default(),
            mtu: MtuSearch::default(),
            path: Path::default(),
            address_report: AddressReport::default(),
            relay: None,
            punch: None,
            datagram: Datagram::new(0),
            datagrams: Datagrams::default(),
            events: ThinDeque::default(),
            stats: ConnectionCounters::default(),
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
        let version = client.version();
        let hs = HandshakeState::Client(Box::new(client));
        let mut c = Self::new(slot, Side::Client, now, config, remote, hs);
        c.version = version;
        c.congestion = (congestion != config.congestion).then(|| Box::new(congestion));
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
                (Frame::Accept(Box::new(accept)), negotiated, None, None)
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
        let mut backoff = Backoff::new(config.initial_rtt.saturating_mul(3), config.max_probe_interval);
        let hs = HandshakeState::Server(Box::new(handshaking::Answering {
            answer,
            noise,
            send_accept: true,
            sent: crate::handshake::SentOnce::NotYet,
            resend: now + backoff.take(),
            backoff,
            answer_until: now + config.handshake_timeout,
            deadline: now + config.handshake_timeout,
        }));
        let mut c = Self::new(slot, Side::Server, now, config, remote, hs);
        c.remote_cid = client_cid;
        c.hello_key = Some(hello_key);
        if !validated {
            c.path = Path::unproven();
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
                AckWanted::Promptly,
                config.max_ack_delay,
                c.recovery.rtt().smoothed(),
            );
        }
        c.refresh_timers(config);
        c
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

    /// Opens a sealed datagram of this connection in place, with its keys (spec §11.4; none
    /// before the handshake gives them). One that does not authenticate is the caller's to
    /// count ([`count_unauthenticated`](Self::count_unauthenticated)): the packet is
    /// returned as made, as a pass through `inspect_err` copied it (700 bytes then, 1% of a
    /// receiving thread's instructions).
    pub(crate) fn open(&mut self, datagram: BytesMut) -> Result<Packet, DecodeError> {
        let largest = self.received.largest();
        let crypto = &mut self.crypto;
        Packet::open(datagram, largest, |header, aad, payload, tag| {
            crypto
                .as_mut()
                .is_some_and(|p| p.open(header.number, header.key_phase, aad, payload, tag))
        })
    }

    /// A server answering an XX handshake, without keys until the client's NOISE_FINISH
    /// (spec §7): a sealed datagram cannot be opened yet, only kept.
    pub(crate) fn awaits_keys(&self) -> bool {
        self.crypto.is_none() && matches!(&self.handshake, HandshakeState::Server(a) if a.noise.is_some())
    }

    /// A datagram [`open`](Self::open) refused as unauthenticated, in the statistics.
    pub(crate) fn count_unauthenticated(&mut self) {
        self.stats.unauthenticated += 1;
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

    /// What the connection's receive window holds of the endpoint's budget
    /// (`Config::receive_buffer_total`): its window, and the growth it was granted.
    pub(crate) fn window_reserved(&self) -> u64 {
        self.receive_credit.reserved()
    }

    /// The connection's receive budget with its window at [`window_reserved`](Self::window_reserved)
    /// (module `stream::held`): what it holds of `Config::receive_buffer_total`.
    pub(crate) fn budget_reserved(&self) -> u64 {
        budget(self.window_reserved(), self.stream_count.reserved())
    }

    /// Whether the count of the peer's streams wanted to grow past what it was granted.
    pub(crate) fn streams_starved(&self) -> bool {
        self.stream_count.starved()
    }

    /// Lets the count of the peer's streams grow by up to `more` (at most doubling it), and
    /// grows it now if it wanted to, up to `most` (`Config::max_concurrent_streams`).
    pub(crate) fn grant_stream_room(&mut self, more: u64, most: u64) {
        self.stream_count.grant_room(more, most);
    }

    /// Whether the receive window wanted to grow past what it was granted.
    pub(crate) fn window_starved(&self) -> bool {
        self.receive_credit.starved()
    }

    /// Lets the receive window grow by up to `more` bytes (at most doubling it); a window
    /// that wanted to grows now, and the peer hears its new limit.
    pub(crate) fn grant_window_room(&mut self, more: u64) {
        if self.receive_credit.grant_room(more) {
            self.control.push(Control::MaxData);
        }
    }

    /// Bytes written (by the application or a pipe) and not yet acknowledged: what
    /// `buffered` sums over the streams, kept as one counter.
    pub(crate) fn send_buffered(&self) -> u64 {
        self.send_buffer.held()
    }

    /// Bytes held for the application: received but unread (reassembly and whole-message
    /// reads), and written but unacknowledged (held by reference to the application's
    /// buffers, not copied).
    pub(crate) fn buffered(&self) -> (u64, u64) {
        let mut recv = 0;
        let mut send = 0;
        for s in self.streams.values() {
            recv += s.half.recv().map_or(0, RecvStream::buffered);
            recv += s.reading.gathered_len();
            send += s.half.send().map_or(0, SendStream::unacked);
        }
        send += self.streams.stateless_bytes();
        // Both sides of this move together on our own writes and on acknowledgements (which
        // release exactly what a stream acknowledged), whatever the peer sends: a
        // difference is a bug here, not an input, so only debug builds check.
        debug_assert_eq!(send, self.send_buffer.held(), "the send counter drifted");
        (recv, send)
    }

    /// A datagram of `len` bytes arrived from `from` for this connection (whatever it held):
    /// from the address not yet validated, it widens what may be sent there.
    pub(crate) fn on_datagram_len(&mut self, from: SocketAddr, len: usize) {
        self.datagram = Datagram::new(len);
        if from == self.remote {
            self.path.on_received(len);
        }
    }

    /// Whether the handshake of a connection a client asked for is still unconfirmed.
    pub(crate) fn is_half_open(&self) -> bool {
        matches!(self.handshake, HandshakeState::Server(_)) && self.state == State::Handshaking
    }

    /// The latest time an input carried.
    pub(crate) fn clock(&self) -> Instant {
        self.clock
    }

    /// The largest packet number received, to expand the next one's.
    pub(crate) fn largest_received(&self) -> Option<u64> {
        self.received.largest()
    }

    pub(crate) fn rtt(&self) -> Duration {
        self.recovery.rtt().smoothed()
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        // Every field named (no `..`): a field added to the statistics must say here where
        // it comes from.
        let c = self.stats;
        ConnectionStats {
            datagrams_sent: c.datagrams_sent,
            datagrams_received: c.datagrams_received,
            packets_lost: c.packets_lost,
            duplicates_received: c.duplicates_received.get(),
            unauthenticated: c.unauthenticated.get(),
            bytes_retransmitted: c.bytes_retransmitted,
            bytes_acked: c.bytes_acked,
            bytes_read: c.bytes_read,
            probes: c.probes.get(),
            congestion_events: c.congestion_events.get(),
            persistent_congestion: c.persistent_congestion.get(),
            punches_sent: c.punches_sent.get(),
            migrations: c.migrations.get(),
            fallbacks: c.fallbacks.get(),
            data_blocked: c.data_blocked.get(),
            stream_data_blocked: c.stream_data_blocked.get(),
            streams_blocked: c.streams_blocked.get(),
            peer_blocked: c.peer_blocked.get(),
            app_datagrams_sent: c.app_datagrams_sent,
            app_datagrams_received: c.app_datagrams_received,
            app_datagrams_lost: c.app_datagrams_lost.get(),
            app_datagrams_dropped: c.app_datagrams_dropped.get(),
            streams_verified: c.streams_verified.get(),
            verification_failures: c.verification_failures.get(),
            spurious_losses: self.recovery.spurious_losses(),
            congestion_window: self.cc.window() as u64,
            concurrent_streams: self.stream_count.concurrent(),
            bytes_in_flight: self.recovery.bytes_in_flight() as u64,
            smoothed_rtt: self.recovery.rtt().smoothed(),
            min_rtt: self.recovery.rtt().min(),
            queueing_delay: self.cc.queueing_delay(),
            pacing_rate: self.cc.pacing_rate(),
            key_updates_sent: self.crypto.as_ref().map_or(0, |p| p.updates_sent),
            key_updates_received: self.crypto.as_ref().map_or(0, |p| p.updates_received),
            black_holes: self.black_hole.fallbacks(),
            path_mtu: self.path_mtu() as u64,
        }
    }

    /// Its event queue, for the endpoint to lend it a warm one for a call (module
    /// `endpoint::event_loan`).
    pub(crate) fn events_mut(&mut self) -> &mut ThinDeque<Event> {
        &mut self.events
    }

    /// Lets its own event queue's room go if it is trimmed (spec §8, Liveness), and empty:
    /// for the endpoint to call after a timer's call, with its queue back from the loan
    /// (module `endpoint::event_loan`). The trim itself leaves the queue alone, as the one it
    /// holds then is the endpoint's, whose room is kept.
    pub(crate) fn trim_own_events(&mut self) {
        if self.liveness.is_trimmed() {
            self.events.trim();
        }
    }

    /// Whether its own event queue holds room (for tests of what the endpoint lends).
    #[cfg(test)]
    pub(crate) fn holds_event_room(&self) -> bool {
        self.events.has_room()
    }

    /// Whether it holds no event for the endpoint to hand out.
    pub(crate) fn has_no_events(&self) -> bool {
        self.events.is_empty()
    }

    /// Events for the endpoint to hand out.
    pub(crate) fn take_event(&mut self) -> Option<Event> {
        self.events.pop_front()
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
        if self.state == State::Closed {
            // A closed connection has no timer: however it closed (one ended with its relay's
            // circuit is never refreshed after), nothing of it may come due again (a timer
            // left due kept its endpoint's deadline in the past for good:
            // fuzz/findings/circuit.released-connection-left-a-deadline).
            self.replace_timers(Timers::default());
        }
    }

    /// Whether the peer's packets are still taken in (established, or lingering after the
    /// application closed): once not, no more bytes of any stream of it can come.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Established | State::Lingering { .. })
    }
}

/// RFC 9002 §7.6: persistent congestion after this many probe timeouts in a row.
const PERSISTENT_CONGESTION_PTOS: u32 = 2;

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
mod tests;
