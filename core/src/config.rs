//! Endpoint configuration: every limit and timer the core uses, with defaults a serious
//! deployment can start from.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::congestion::CongestionAlgorithm;
use crate::crypto::keys::{Identity, PublicKey};
use crate::time::Duration;
use crate::wire::{Capabilities, Cipher, TransportParams, VersionRange, MIN_DATAGRAM_SIZE};

/// What a [`PeerPolicy::Decide`] callback says of a peer's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerDecision {
    /// Go on with the connection.
    Accept,
    /// End it: a client fails its attempt with
    /// [`HandshakeError::PeerRefused`](crate::HandshakeError::PeerRefused); a server refuses
    /// the client (spec §11.6).
    Refuse,
}

/// Which peers' identities (static public keys, learned in the handshake) an endpoint
/// accepts (spec §11.6). Checked by a server on each client's key, and by a client on the
/// server's key when it did not name the key itself ([`Endpoint::connect_to`] does).
///
/// [`Endpoint::connect_to`]: crate::Endpoint::connect_to
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum PeerPolicy {
    /// Any identity: the connection is encrypted and the peer's key is reported
    /// ([`Event::Connected`](crate::Event::Connected)), for the application to judge.
    #[default]
    Any,
    /// Only these keys.
    Allow(BTreeSet<PublicKey>),
    /// The application decides, key by key. Called inside the endpoint's calls, so it must
    /// be quick and must not call the endpoint; for a trace to replay, it must decide the
    /// same way each time.
    Decide(Arc<dyn Fn(&PublicKey) -> PeerDecision + Send + Sync>),
}

impl PeerPolicy {
    /// Whether the policy judges identities (anything but [`Any`](Self::Any)): then only
    /// version 2, which proves them, is spoken with peers (spec §11.7).
    pub fn checks(&self) -> bool {
        !matches!(self, PeerPolicy::Any)
    }

    /// The decision on `key`.
    pub fn check(&self, key: &PublicKey) -> PeerDecision {
        match self {
            PeerPolicy::Any => PeerDecision::Accept,
            PeerPolicy::Allow(keys) if keys.contains(key) => PeerDecision::Accept,
            PeerPolicy::Allow(_) => PeerDecision::Refuse,
            PeerPolicy::Decide(decide) => decide(key),
        }
    }
}

impl core::fmt::Debug for PeerPolicy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PeerPolicy::Any => f.write_str("Any"),
            PeerPolicy::Allow(keys) => f.debug_tuple("Allow").field(keys).finish(),
            PeerPolicy::Decide(_) => f.write_str("Decide(..)"),
        }
    }
}

/// What an endpoint does with a HELLO from a new client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptPolicy {
    /// Accept every client while below [`Config::max_connections`].
    Accept,
    /// Refuse every client with REJECT REFUSED (an endpoint that only connects out).
    Refuse,
}

/// When a HELLO must first prove that its sender receives at its source address, by echoing
/// the token of a stateless RETRY (spec/protocol.md §10.1). Until it does, the endpoint keeps
/// no state for it, so spoofed HELLOs cost a MAC each and nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressValidation {
    /// Never ask (a closed network; each HELLO may hold state until the handshake timeout).
    Off,
    /// Ask once `pending` handshakes are in progress (connection state kept for clients
    /// that have not yet confirmed the handshake), or the handshake rate
    /// ([`Config::max_handshakes_per_second`]) is spent.
    UnderLoad {
        /// Handshakes in progress from which on every new client is asked.
        pending: usize,
    },
    /// Ask every client (one more round trip per connection).
    Always,
}

/// [`Config::max_datagram_size`]'s default: the largest UDP payload of an IPv6 packet on
/// a 1,500-byte Ethernet link (1500 − 40 − 8).
pub const DEFAULT_MAX_DATAGRAM_SIZE: u16 = 1452;

/// The room at which a whole-message read's buffer is shown to
/// [`Config::advise_buffer`]: 2 MiB, the size of an x86-64 or AArch64 huge page (a smaller
/// buffer could not be backed by one).
pub const LARGE_BUFFER: usize = 2 << 20;

/// Configuration of an [`Endpoint`](crate::Endpoint) and of every connection it holds.
#[derive(Clone, Debug)]
pub struct Config {
    /// Wire versions this endpoint speaks (spec/protocol.md §4.13): version 2 is encrypted
    /// and authenticated (§11), version 1 is not. Default:
    /// [`VersionRange::ENCRYPTED`] (2 only); see also
    /// [`VersionRange::ENCRYPTED_OR_PLAINTEXT`] and [`VersionRange::UNPROTECTED`].
    pub versions: VersionRange,
    /// This endpoint's static key pair: its identity, which peers learn in the handshake
    /// (spec §11.1). `None`: one derived from the endpoint's seed (new with each seed, so
    /// peers cannot recognise the endpoint from one run to the next). Default: `None`.
    pub identity: Option<Identity>,
    /// Which peer identities to accept (spec §11.6). Any policy but
    /// [`PeerPolicy::Any`] refuses version 1 peers, which prove no identity: a server
    /// answers their HELLO with REJECT REFUSED, a client does not fall back to version 1.
    /// Default: [`PeerPolicy::Any`].
    pub peer_policy: PeerPolicy,
    /// The ciphers data packets may be sealed with, in order of preference (a server picks
    /// the first of its list the client offers). Default: AES-256-GCM, then
    /// ChaCha20-Poly1305 (the order rustls uses): with AES instructions (x86-64 AES-NI and
    /// PCLMULQDQ, ARMv8 AES) AES-GCM seals at about twice ChaCha20-Poly1305's rate and costs
    /// a quarter as much on a small packet; on a CPU without them, put ChaCha20-Poly1305
    /// first.
    pub ciphers: Vec<Cipher>,
    /// Packets sealed under one key before the sender moves to the next (a key update,
    /// spec §11.5). Capped at 2^22 for AES-256-GCM, half its confidentiality limit.
    /// Default: 2^20 (about 1.2 GB of 1200-byte datagrams).
    pub key_update_interval: u64,
    /// Optional features offered (intersected with the peer's). Default: [`Capabilities::ALL`].
    pub capabilities: Capabilities,
    /// What to do with new clients. Default: [`AcceptPolicy::Accept`].
    pub accept: AcceptPolicy,
    /// Most connections held at once; a HELLO beyond it gets REJECT AT_CAPACITY.
    /// Default: 10,000.
    pub max_connections: usize,
    /// Most connections clients at one IP address may hold here at once (any ports); a
    /// HELLO beyond it gets REJECT AT_CAPACITY (spec §10.3). Default: 64.
    pub max_connections_per_address: usize,
    /// How many leading bits of an IPv6 address name one client for the per-address limit
    /// and for bans (spec §10.3, §10.5): a host usually holds a whole /64 and may rotate
    /// through it at will. IPv4 addresses count whole. Default: 64; 128 counts every IPv6
    /// address apart (values above 128 count as 128).
    pub ipv6_prefix_len: u8,
    /// Most new connections per second the endpoint accepts (bursts of a tenth of a second's
    /// worth); beyond, a HELLO is asked for a RETRY token or, if it has one (or
    /// [`address_validation`](Self::address_validation) is off), dropped: the client's next
    /// HELLO may get in (spec §10.3). Default: 1,000.
    pub max_handshakes_per_second: u32,
    /// When a new client must prove its address first (spec §10.1). Default:
    /// [`AddressValidation::UnderLoad`] from 64 handshakes in progress.
    pub address_validation: AddressValidation,
    /// Length of the time slots RETRY tokens are made in: a token is good in its slot and
    /// the next, and the key that makes them changes each slot. Default: 10 s.
    pub token_lifetime: Duration,
    /// Protocol violations (connections we closed for one) an IP address may commit before
    /// its HELLOs are dropped (spec §10.5); 0: never ban. Default: 2.
    pub ban_after_violations: u32,
    /// How long the first ban lasts; each further violation doubles it. Default: 10 s.
    pub ban_duration: Duration,
    /// The longest ban. Default: 1 hour.
    pub max_ban_duration: Duration,
    /// Most addresses whose violations are remembered at once (the one to be forgotten
    /// soonest makes room). Default: 4,096.
    pub max_tracked_addresses: usize,
    /// A connection that hears nothing from its peer for this long is closed (the smaller of
    /// both sides' non-zero values applies): as
    /// [`CloseReason::Unreachable`](crate::CloseReason::Unreachable) if it was waiting for
    /// an acknowledgement, else as [`CloseReason::TimedOut`](crate::CloseReason::TimedOut).
    /// This is the only rule that gives up on a peer: however short the RTT, probes go on
    /// until then (spec §8, Liveness), so an outage shorter than this is survived.
    /// Default: 30 s.
    pub idle_timeout: Duration,
    /// Send a PING after this long without sending anything ack-eliciting, so an idle but
    /// healthy connection does not time out; never later than half the idle timeout, and,
    /// while a stream's receipt is awaited, at half the idle timeout even if `None`.
    /// `None`: never otherwise. When the peer's ack-eliciting packet came after our last
    /// one (its own keep-alive, say), this long and a probe timeout after the last packet
    /// heard instead: one end of a quiet connection pings, and the other's acknowledgements
    /// answer it (spec §8, Liveness). Default: 10 s.
    pub keep_alive: Option<Duration>,
    /// A handshake not finished after this long fails with
    /// [`HandshakeError::TimedOut`](crate::HandshakeError::TimedOut). Default: 10 s.
    pub handshake_timeout: Duration,
    /// RTT assumed before the first measurement (RFC 9002 §6.2.2 suggests 333 ms for the
    /// open internet). Default: 100 ms.
    pub initial_rtt: Duration,
    /// Longest we delay an ACK (announced to the peer). Default: 25 ms.
    pub max_ack_delay: Duration,
    /// The longest the probe timeout backs off to while acknowledgements are missing (RFC
    /// 9002 §6.2 doubles it each time; unbounded, a path that returned after an outage
    /// would wait long for the next probe to find it). A path whose PTO is longer than this
    /// probes once a PTO. Probing never gives up by itself: the idle timeout does. It bounds
    /// the backoff of the handshake's messages (HELLO, ACCEPT, NOISE_FINISH) alike.
    /// Default: 2 s.
    pub max_probe_interval: Duration,
    /// Bounds a connection's retransmission effort (spec §10.6): once the stream bytes it
    /// declared lost ([`ConnectionStats::bytes_retransmitted`](crate::ConnectionStats))
    /// pass this many times the bytes acknowledged (`bytes_acked`) plus 64 KiB, the path or
    /// the peer loses too much to be worth it, and the connection ends with
    /// [`CloseReason::TooLossy`](crate::CloseReason::TooLossy). `None`: no bound (congestion
    /// control still slows the sender). Default: 8 (a path losing up to 88% still works).
    pub max_retransmission_ratio: Option<u32>,
    /// Bytes the peer may send on one stream beyond what the application read, at first:
    /// the most a stream's reassembly holds until the window grows. Default: 256 KiB.
    pub stream_receive_window: u64,
    /// The most a stream's window grows to when the application reads faster than the
    /// window lets the peer send (auto-tuning, so a long fat path is not window-limited).
    /// Default: 32 MiB, as far as the connection's window
    /// ([`max_receive_window`](Self::max_receive_window)), which bounds what the peer can
    /// pin whatever this is: a lost datagram leaves a hole the application cannot read past
    /// for a round trip and a half or more, and one stream carrying a long transfer over a
    /// fast, long, lossy path needs the whole window meanwhile (at 1 Gbit/s over a 100 ms
    /// round trip with 1% loss, a stream held to 16 MiB took 1.25 times as long; spec §8,
    /// "Streams and credit").
    pub max_stream_receive_window: u64,
    /// Bytes the peer may send on all streams together beyond what the application read, at
    /// first. What the connection's received data may cost the heap (datagrams kept alive,
    /// copies, each piece's bookkeeping) is at most twice its window, and its open streams'
    /// state at most 2 KiB each: its receive budget. So a peer whose data the application
    /// cannot read (gaps, a slow reader) pins at most 2 MiB + 260 KiB by default, until the
    /// window grows (spec §10.3). Default: 1 MiB.
    pub receive_window: u64,
    /// The most the connection's window grows to by auto-tuning. Default: 32 MiB.
    pub max_receive_window: u64,
    /// The most all connections' receive budgets add up to: the heap the endpoint may be
    /// made to hold for received, unread stream data, whatever its peers do (spec §10.3).
    /// A connection's budget is twice its receive window, 2 KiB per stream its peer may
    /// open, and 4 KiB. A squeezed connection's budget (16 streams and a 64 KiB window:
    /// 164 KiB) is kept for each connection still to come (up to
    /// [`max_connections`](Self::max_connections), or as many as the total holds); a new
    /// connection gets its configured window and streams if their budget fits in what is
    /// left besides, else it is squeezed: at most 16 streams and the window the rest pays
    /// for. Windows grow only into what is left. With under a 64 KiB window left a new
    /// connection is refused (REJECT AT_CAPACITY, or
    /// [`ApiError::ConnectionLimit`](crate::ApiError::ConnectionLimit) for our own). The
    /// default holds 10,000 connections' floors (1.6 GiB) and leaves the rest for windows
    /// of the busiest. Default: 2 GiB.
    pub receive_buffer_total: u64,
    /// Bytes the application may have written and not yet seen acknowledged, per
    /// connection: beyond it writes are refused with
    /// [`ApiError::WouldBlock`](crate::ApiError::WouldBlock) until
    /// [`Event::Writable`](crate::Event::Writable). The bytes are held by reference, not
    /// copied. Default: 32 MiB, as far as a peer's connection window grows by default
    /// ([`max_receive_window`](Self::max_receive_window)): with less, a sender's own buffer
    /// binds before the peer's credit on a path whose bandwidth-delay product passes it (in
    /// weir-sim, 1 Gbit/s over a 300 ms round trip: 28.5 MB/s with 16 MiB, 40.5 with 32;
    /// tests/congestion.md, "Long lossy paths").
    pub send_buffer: u64,
    /// What the connections' send buffers may hold together (spec §10.3): past it a write
    /// waits ([`ApiError::WouldBlock`](crate::ApiError::WouldBlock), then
    /// [`Event::Writable`](crate::Event::Writable)) for another connection's bytes to be
    /// acknowledged. Each connection may always hold 64 KiB (or `send_buffer`, if smaller)
    /// whatever the others hold, so peers that stop reading cannot starve the rest; the sum
    /// stays under this plus 64 KiB per connection. Default: 1 GiB.
    pub send_buffer_total: u64,
    /// Streams the peer may have open at once, at first. Default: 256. Each message is a
    /// stream, so this also bounds the messages a peer has in flight to us, per round trip:
    /// a peer sending many small messages waits for more credit each time it has this many
    /// open. So the count grows by auto-tuning (spec §8, Streams and credit): when the
    /// application reads a whole count of the peer's streams in less than two of the path's
    /// least round-trip times, it doubles, up to
    /// [`max_concurrent_streams`](Self::max_concurrent_streams), within
    /// [`receive_buffer_total`](Self::receive_buffer_total): each stream the peer may have
    /// open is 2 KiB of the connection's receive budget (spec §10.3). Never more than
    /// `max_concurrent_streams`. Why 256 and not less: on a fast path (loopback, a LAN) the
    /// time a whole count's grants take is mostly the receiver's own work on them, so the
    /// rule can miss a count that holds the peer back; 1 KiB messages over loopback ran
    /// 23% slower at 128 than at 256 in one hour's runs (alike in another's).
    pub initial_concurrent_streams: u64,
    /// The most streams the peer may have open at once: what
    /// [`initial_concurrent_streams`](Self::initial_concurrent_streams) grows to by
    /// auto-tuning, and a hard bound (set both to the same count to fix it). Each one open is
    /// state and unread bytes this endpoint holds. Default: 4,096 (8 MiB of receive budget
    /// once grown that far; a connection's byte window may grow to 32 MiB, 64 MiB of budget,
    /// by the same rule). A peer 40 ms away sending 1 KiB messages moves about 100,000 a
    /// second at most through 4,096 streams, 25,000 through 1,024. A connection that
    /// [`receive_buffer_total`](Self::receive_buffer_total) squeezes (gives less than
    /// [`receive_window`](Self::receive_window)) starts with at most 16, and grows only into
    /// what the budget leaves.
    pub max_concurrent_streams: u64,
    /// Ranges of received packet numbers a connection remembers, to recognise duplicates and
    /// build ACKs: below the oldest, every packet counts as a duplicate (dropped). Bounds
    /// what a peer skipping packet numbers makes us hold (16 bytes and a tree entry per
    /// range); more tolerates heavier reordering. Default: 256 (an ACK carries the highest
    /// 64). At most 65,535 are kept, whatever is asked.
    pub max_tracked_ack_ranges: usize,
    /// The longest message (stream) the peer may send, announced to it: a stream's credit
    /// never reaches past it, and a total length announced beyond it closes the connection
    /// (FINAL_SIZE_ERROR, spec §10.4). Writes that would pass the peer's limit fail with
    /// [`ApiError::MessageTooLong`](crate::ApiError::MessageTooLong). `None`: no limit (a
    /// stream's memory is bounded by its window whatever its length). Default: `None`.
    pub max_message_len: Option<u64>,
    /// Largest datagram this endpoint accepts and sends (1200 to 65,527); the peer's value
    /// caps what we send. A connection starts at 1200 bytes and finds how much of this the
    /// path carries by probing (RFC 8899 DPLPMTUD, module `mtu_search`); 1200 turns the
    /// search off. Default: 1452, the largest UDP payload an IPv6 packet carries on a
    /// 1,500-byte Ethernet link (1472 for IPv4; set more on a jumbo-frame network).
    pub max_datagram_size: u16,
    /// The congestion controller each connection uses. Default: BBR
    /// ([`CongestionAlgorithm::Bbr`]), which keeps its rate under random loss and the
    /// bottleneck queue short; choose [`CongestionAlgorithm::Ledbat`] for background transfers
    /// that should yield to everything else, [`CongestionAlgorithm::NewReno`] to behave like
    /// TCP Reno.
    pub congestion: CongestionAlgorithm,
    /// The most bytes per second the endpoint sends, all connections together; `None`: no
    /// limit. Connections with something to send share it evenly (one datagram each in
    /// turn); idle ones take no share. Bursts up to 10 ms of the rate. Default: `None`.
    pub max_send_rate: Option<u64>,
    /// The most bytes a relay holds for one pipe: received and not yet acknowledged by
    /// every target (plus, with [`LocalRead::Keep`](crate::LocalRead::Keep), not yet read).
    /// The sender is granted no credit beyond it (beyond what the stream had been granted
    /// when piping began). Default: 4 MiB.
    pub pipe_buffer: u64,
    /// The most bytes all pipes of the endpoint hold together, enforced the same way: the
    /// credit each stream had been granted before it was piped (at least
    /// [`stream_receive_window`](Self::stream_receive_window) from its start) comes on top,
    /// so a relay with many pipes wants a small initial stream window. Default: 64 MiB.
    pub pipe_buffer_total: u64,
    /// Serve as a relay (spec §12): keep peers reachable by their keys and forward the
    /// datagrams of circuits between them, within these limits. `None` (the default):
    /// refuse every relay request with `RelayRefusal::NotARelay`.
    pub relay: Option<RelayConfig>,
    /// The first byte of every connection id and relay circuit id this endpoint chooses,
    /// so that whatever sits in front of several endpoints sharing one address (the shards
    /// of one, or a load balancer) can tell from a datagram's destination id which of them
    /// it is for (spec §3.3, routing). The other seven bytes stay random. `None` (the
    /// default): all eight bytes are random.
    pub connection_id_prefix: Option<u8>,
    /// Called with a whole-message read's buffer (its start and its room, in bytes) each
    /// time the buffer is made [`LARGE_BUFFER`] bytes or more, before anything is copied
    /// into the new room: for a host that tells its OS how to back that memory. An
    /// adapter's whole-stream read passes it to [`Gathered::push_advised`](crate::Gathered::push_advised)
    /// (weir-driver's `read_to_end` does).
    /// `weir_driver::advise_huge_pages` asks Linux for transparent huge pages there (a
    /// 64 MiB message's buffer is otherwise faulted in 4 KiB at a time as its bytes
    /// arrive): faster large receives for a little more peak memory (its documentation has
    /// the figures). The hook must leave the memory's contents as they are (it gets a
    /// `*const`); no output of the core depends on it. Default: `None`.
    pub advise_buffer: Option<fn(*const u8, usize)>,
    /// Called with memory the core is about to use, its start and its length in bytes, as
    /// an input (a datagram, a timer, a command) reaches a connection other than the one the
    /// last input reached: the endpoint's entries for the connection, the connection, and
    /// what of its own it reaches first (its congestion controller, its packet protection
    /// and the expanded keys, its stream table and packets in flight), each allocation
    /// shown on its own. For a host that can ask the CPU to start loading memory into its
    /// caches without waiting (`weir_driver::prefetch` does on x86-64 and AArch64). Among many
    /// connections each one's state is cold by its next event, and the core reaches these
    /// allocations one after another, a pointer in one leading to the next, each cache miss
    /// waiting for the one before; shown first, their loads overlap (module
    /// `connection::prefetch`; adapters/bench/rounds.md, "After the fifty-fourth round: cold
    /// connections' memory shown first", has the figures: a message among 100,000
    /// connections a third faster). weir-driver's endpoints, and so weir-tokio's and
    /// weir-std's, use `weir_driver::prefetch` when this is `None`; a hook that does nothing
    /// turns it off there. The hook must not write the memory and had best not read it (it
    /// may be padding); no output of the core depends on it. Default: `None`.
    pub prefetch: Option<fn(*const u8, usize)>,
    /// Feature `fuzzing` only: the primitives of the handshake and packet protection. The
    /// default is the real ones; [`Primitives::FuzzingStandIn`](crate::crypto::Primitives)
    /// is for fuzz targets, which then spend their time in the state machines rather than
    /// curve arithmetic. A normal build has neither this field nor the stand-in.
    #[cfg(feature = "fuzzing")]
    pub primitives: crate::crypto::Primitives,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            versions: VersionRange::ENCRYPTED,
            identity: None,
            peer_policy: PeerPolicy::Any,
            ciphers: alloc::vec![Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305],
            key_update_interval: 1 << 20,
            capabilities: Capabilities::ALL,
            accept: AcceptPolicy::Accept,
            max_connections: 10_000,
            max_connections_per_address: 64,
            ipv6_prefix_len: 64,
            max_handshakes_per_second: 1_000,
            address_validation: AddressValidation::UnderLoad { pending: 64 },
            token_lifetime: Duration::from_secs(10),
            ban_after_violations: 2,
            ban_duration: Duration::from_secs(10),
            max_ban_duration: Duration::from_secs(3600),
            max_tracked_addresses: 4096,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Some(Duration::from_secs(10)),
            handshake_timeout: Duration::from_secs(10),
            initial_rtt: Duration::from_millis(100),
            max_ack_delay: Duration::from_millis(25),
            max_probe_interval: Duration::from_secs(2),
            max_retransmission_ratio: Some(8),
            stream_receive_window: 256 << 10,
            max_stream_receive_window: 32 << 20,
            receive_window: 1 << 20,
            max_receive_window: 32 << 20,
            receive_buffer_total: 2 << 30,
            send_buffer: 32 << 20,
            send_buffer_total: 1 << 30,
            initial_concurrent_streams: 256,
            max_concurrent_streams: 4096,
            max_tracked_ack_ranges: 256,
            max_message_len: None,
            max_datagram_size: DEFAULT_MAX_DATAGRAM_SIZE,
            congestion: CongestionAlgorithm::default(),
            max_send_rate: None,
            pipe_buffer: 4 << 20,
            pipe_buffer_total: 64 << 20,
            relay: None,
            connection_id_prefix: None,
            advise_buffer: None,
            prefetch: None,
            #[cfg(feature = "fuzzing")]
            primitives: crate::crypto::Primitives::Real,
        }
    }
}

impl Config {
    /// The primitives the handshake and packet protection use: the real ones, unless a
    /// fuzzing build selects the stand-in.
    pub(crate) fn primitives(&self) -> crate::crypto::stand_in::Primitives {
        #[cfg(feature = "fuzzing")]
        return self.primitives;
        #[cfg(not(feature = "fuzzing"))]
        crate::crypto::stand_in::Primitives::Real
    }

    /// Streams the peer may have open at once when a connection starts: the initial count,
    /// never past the most, nor past 2^31 - 1 (what a connection counts them in).
    pub(crate) fn concurrent_streams_at_start(&self) -> u64 {
        self.initial_concurrent_streams
            .min(self.max_concurrent_streams)
            .min((1 << 31) - 1)
    }

    /// The transport parameters this configuration announces (spec/protocol.md §4.14).
    pub(crate) fn transport_params(&self) -> TransportParams {
        TransportParams {
            max_data: Some(self.receive_window),
            max_stream_data: Some(self.stream_receive_window),
            max_streams: Some(self.concurrent_streams_at_start()),
            max_message_len: self.max_message_len,
            max_datagram_size: Some(self.max_datagram_size.max(MIN_DATAGRAM_SIZE as u16)),
            idle_timeout_ms: Some(self.idle_timeout.as_millis()),
            max_ack_delay_ms: Some(self.max_ack_delay.as_millis().min(crate::wire::MAX_ACK_DELAY_MS)),
            ..TransportParams::default()
        }
    }
}

/// The peer's transport parameters with spec/protocol.md §4.14's defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerParams {
    pub(crate) max_data: u64,
    pub(crate) max_stream_data: u64,
    pub(crate) max_streams: u64,
    pub(crate) max_datagram_size: u16,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_ack_delay: Duration,
    /// The longest stream the peer takes (`None`: any).
    pub(crate) max_message_len: Option<u64>,
    /// The server's stateless reset token (spec §6.1); read by clients only.
    pub(crate) reset_token: Option<[u8; 16]>,
}

/// What a connection keeps of the peer's [`PeerParams`] once its handshake applied them: the
/// limits it goes on reading (the others went into credit, stream counts and loss recovery
/// then). Every connection holds one: 48 bytes instead of 80.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerLimits {
    /// Each new stream's credit.
    pub(crate) max_stream_data: u64,
    /// The longest stream the peer takes; `u64::MAX` for any (a wire value is below 2^62).
    pub(crate) max_message_len: u64,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_datagram_size: u16,
    /// The server's stateless reset token (spec §6.1); read by clients only.
    pub(crate) reset_token: Option<[u8; 16]>,
}

impl PeerParams {
    /// What a connection keeps of these once they are applied.
    pub(crate) fn limits(&self) -> PeerLimits {
        PeerLimits {
            max_stream_data: self.max_stream_data,
            max_message_len: self.max_message_len.unwrap_or(u64::MAX),
            idle_timeout: self.idle_timeout,
            max_datagram_size: self.max_datagram_size,
            reset_token: self.reset_token,
        }
    }

    pub(crate) fn from_wire(p: &TransportParams) -> Self {
        PeerParams {
            max_data: p.max_data.unwrap_or(65_536),
            max_stream_data: p.max_stream_data.unwrap_or(65_536),
            max_streams: p.max_streams.unwrap_or(16),
            max_datagram_size: p.max_datagram_size.unwrap_or(MIN_DATAGRAM_SIZE as u16),
            idle_timeout: Duration::from_millis(p.idle_timeout_ms.unwrap_or(0)),
            max_ack_delay: Duration::from_millis(p.max_ack_delay_ms.unwrap_or(25)),
            max_message_len: p.max_message_len,
            reset_token: p.stateless_reset_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_parameters_take_the_spec_defaults() {
        let p = PeerParams::from_wire(&TransportParams::default());
        assert_eq!(p.max_data, 65_536);
        assert_eq!(p.max_stream_data, 65_536);
        assert_eq!(p.max_streams, 16);
        assert_eq!(p.max_datagram_size, 1200);
        assert_eq!(p.idle_timeout, Duration::ZERO);
        assert_eq!(p.max_ack_delay, Duration::from_millis(25));
    }

    #[test]
    fn announced_parameters_round_trip() {
        let c = Config::default();
        let p = PeerParams::from_wire(&c.transport_params());
        assert_eq!(p.max_data, c.receive_window);
        assert_eq!(p.max_stream_data, c.stream_receive_window);
        assert_eq!(p.max_streams, c.initial_concurrent_streams);
        assert_eq!(p.idle_timeout, c.idle_timeout);
        assert_eq!(p.max_ack_delay, c.max_ack_delay);
    }
}

/// What a relay allows (spec §12.2); `Config::relay`. The limits bound what one peer can
/// make it hold and forward; who may connect to it at all is the endpoint's peer policy,
/// and who may be reachable through it, [`reservers`](Self::reservers).
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Peers reachable through the relay at once.
    pub max_reservations: usize,
    /// Circuits open at once, all peers.
    pub max_circuits: usize,
    /// Circuits one peer may have open at once (as either end).
    pub max_circuits_per_peer: usize,
    /// Bytes a circuit forwards, both ways together, before the relay closes it.
    pub circuit_bytes: u64,
    /// How long a circuit lives before the relay closes it.
    pub circuit_duration: Duration,
    /// Who may reserve (be reachable by key through this relay); others are refused with
    /// [`RelayRefusal::NotAllowed`](crate::RelayRefusal::NotAllowed). Any peer connected may ask for a circuit to one who
    /// reserved.
    pub reservers: PeerPolicy,
}

impl Default for RelayConfig {
    /// 1,024 reservations and circuits, 16 circuits per peer, 1 GiB and one hour per circuit:
    /// enough to carry a transfer between two peers that no hole punch joins.
    fn default() -> Self {
        RelayConfig {
            max_reservations: 1024,
            max_circuits: 1024,
            max_circuits_per_peer: 16,
            circuit_bytes: 1 << 30,
            circuit_duration: Duration::from_secs(3600),
            reservers: PeerPolicy::Any,
        }
    }
}
