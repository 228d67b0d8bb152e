//! The counters a connection keeps ([`ConnectionStats`]): a leaf, so that events, traces and
//! the adapters can carry them without depending on the connection.

use crate::time::Duration;

/// Counters a connection keeps. Those of rare events (probes, congestion events, blocking,
/// migrations, punches, fallbacks, verifications, datagrams lost or dropped) stop at
/// 4,294,967,295 rather than wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received and accepted.
    pub datagrams_received: u64,
    /// Packets declared lost.
    pub packets_lost: u64,
    /// Duplicate packets received (dropped, acknowledged again).
    pub duplicates_received: u64,
    /// Datagrams for this connection that failed authentication (version 2: a sealed
    /// packet whose tag did not verify, or a Noise message that did not open): dropped,
    /// never answered.
    pub unauthenticated: u64,
    /// Key updates (spec §11.5): made by us, and followed from the peer.
    pub key_updates_sent: u64,
    /// Key updates the peer made that we followed.
    pub key_updates_received: u64,
    /// Stream bytes queued to be sent again: after a loss (less what a copy already got
    /// acknowledged), or carried again by a probe.
    pub bytes_retransmitted: u64,
    /// Stream bytes the peer acknowledged, each counted once: what has been delivered to it.
    pub bytes_acked: u64,
    /// Stream bytes the application read (with `read` or `read_message`).
    pub bytes_read: u64,
    /// Probe timeouts fired.
    pub probes: u64,
    /// Packets declared lost that were only reordered (their ACK came later).
    pub spurious_losses: u64,
    /// Congestion events: losses that reduced the window (one per recovery period).
    pub congestion_events: u64,
    /// Times nothing sent over three probe timeouts was acknowledged (RFC 9002 §7.6).
    pub persistent_congestion: u64,
    /// Times the connection found that datagrams larger than 1200 bytes stopped reaching
    /// the peer while smaller ones did, and fell back to 1200 bytes (RFC 8899 black-hole
    /// detection; spec §8, Black holes). The path MTU search then looks at once for the
    /// size that gets through: [`path_mtu`](Self::path_mtu) is what it found.
    pub black_holes: u64,
    /// Hole punch datagrams sent toward the peer's candidate addresses (spec §12.5).
    pub punches_sent: u64,
    /// Times the connection followed the peer to another address (a NAT rebinding, a move
    /// from a relay's circuit to a direct path or back).
    pub migrations: u64,
    /// Times a direct path went silent and the connection went back to its relay's circuit.
    pub fallbacks: u64,
    /// DATA_BLOCKED sent: new stream data waited on the peer's connection credit.
    pub data_blocked: u64,
    /// STREAM_DATA_BLOCKED sent: new data of a stream waited on its credit.
    pub stream_data_blocked: u64,
    /// STREAMS_BLOCKED sent: a stream could not be opened for the peer's stream limit.
    pub streams_blocked: u64,
    /// *_BLOCKED frames received: the peer waited on our credit.
    pub peer_blocked: u64,
    /// The largest datagram the connection sends now: what path MTU discovery confirmed
    /// (RFC 8899), or the base size after a black hole.
    pub path_mtu: u64,
    /// Unreliable datagrams sent (DATAGRAM frames, spec §4.19).
    pub app_datagrams_sent: u64,
    /// Unreliable datagrams received from the peer.
    pub app_datagrams_received: u64,
    /// Unreliable datagrams sent in packets declared lost (never resent).
    pub app_datagrams_lost: u64,
    /// Unreliable datagrams dropped here: the oldest past a full queue either way, or one
    /// that no longer fits the path.
    pub app_datagrams_dropped: u64,
    /// Streams read to the end whose bytes matched the digest their sender attached.
    pub streams_verified: u64,
    /// Streams read to the end whose bytes did not match their digest
    /// ([`Read::VerificationFailed`](crate::Read::VerificationFailed)).
    pub verification_failures: u64,
    /// The congestion window now, in bytes.
    pub congestion_window: u64,
    /// How many streams the peer may have open at once now:
    /// [`Config::initial_concurrent_streams`](crate::Config::initial_concurrent_streams),
    /// grown by auto-tuning (spec §8, Streams and credit).
    pub concurrent_streams: u64,
    /// Bytes of ack-eliciting packets in flight now.
    pub bytes_in_flight: u64,
    /// Smoothed round-trip time now (RFC 9002 §5.3).
    pub smoothed_rtt: Duration,
    /// Minimum round-trip time seen (RFC 9002 §5.2).
    pub min_rtt: Duration,
    /// The queueing delay the congestion controller measures, if it measures one (LEDBAT
    /// and BBR: the current one-way delay above the lowest seen).
    pub queueing_delay: Option<Duration>,
    /// The rate the congestion controller paces at, in bytes per second, if it sets one
    /// (BBR: its bandwidth estimate times the gain of its state).
    pub pacing_rate: Option<u64>,
}

/// What a connection counts as it goes: the fields of [`ConnectionStats`] that no other part
/// of the connection knows. The rest (the RTTs, the congestion window and pacing, the key
/// updates, the path MTU, whether a black hole was found) are read from their owners when
/// the statistics are asked for, so an idle connection does not store them twice. What
/// counts rare events (probes, congestion, blocking, migrations, punches, verifications,
/// datagrams lost or dropped, duplicates, datagrams that did not authenticate) is a
/// [`Tally`], half the size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnectionCounters {
    pub(crate) datagrams_sent: u64,
    pub(crate) datagrams_received: u64,
    pub(crate) packets_lost: u64,
    pub(crate) duplicates_received: Tally,
    pub(crate) unauthenticated: Tally,
    pub(crate) bytes_retransmitted: u64,
    pub(crate) bytes_acked: u64,
    pub(crate) bytes_read: u64,
    pub(crate) probes: Tally,
    pub(crate) congestion_events: Tally,
    pub(crate) persistent_congestion: Tally,
    pub(crate) punches_sent: Tally,
    pub(crate) migrations: Tally,
    pub(crate) fallbacks: Tally,
    pub(crate) data_blocked: Tally,
    pub(crate) stream_data_blocked: Tally,
    pub(crate) streams_blocked: Tally,
    pub(crate) peer_blocked: Tally,
    pub(crate) app_datagrams_sent: u64,
    pub(crate) app_datagrams_received: u64,
    pub(crate) app_datagrams_lost: Tally,
    pub(crate) app_datagrams_dropped: Tally,
    pub(crate) streams_verified: Tally,
    pub(crate) verification_failures: Tally,
}

/// A count of rare events in 32 bits, which saturates (at 4,294,967,295) instead of
/// overflowing: a connection keeps sixteen of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally(u32);

impl Tally {
    /// The count, as [`ConnectionStats`] gives it.
    pub(crate) fn get(self) -> u64 {
        u64::from(self.0)
    }
}

impl core::ops::AddAssign<u32> for Tally {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.saturating_add(n);
    }
}
