//! What recovery keeps of the connection's paths (spec §8, A new path; §12.5): the packet a
//! path's counting starts from, and what a path that went dark leaves in flight. Part of
//! [`Recovery`], in a file of its own: its state is `Rare::path_start` and the flight.

use super::*;

impl Recovery {
    /// The connection moved to a new path, on which `first` is the first packet sent (RFC
    /// 9000 §9.4; spec §8, A new path): the RTT estimate starts over from `initial_rtt`, and
    /// so do the probe backoff and the reordering thresholds, all learned on the old path;
    /// and the packets sent before `first` are set apart ([`count_from`](Self::count_from)).
    pub(crate) fn new_path(&mut self, first: u64, initial_rtt: Duration) {
        self.rtt = RttEstimator::new(initial_rtt);
        self.pto_count = 0;
        self.packet_threshold = PACKET_THRESHOLD;
        self.time_threshold = TIME_THRESHOLD;
        self.count_from(first);
    }

    /// Congestion control starts over from packet `first` (a new path, or a fallback from a
    /// black hole): packets sent before it give no RTT or delivery-rate sample, and the
    /// ACKs of those acknowledged count none of their bytes for congestion control
    /// ([`Acked`]); the connection keeps their losses from it
    /// ([`on_current_path`](Self::on_current_path)).
    pub(crate) fn count_from(&mut self, first: u64) {
        self.rare.get_or_insert_with(Box::default).path_start = first;
    }

    /// Packets sent before `first` give no RTT sample: the client's data packets sent before
    /// a third copy of NOISE_FINISH may have reached the server before any copy did, and
    /// waited there for its keys (spec §11.2, Data before the keys), so their
    /// acknowledgements time that wait as well as the path. Their bytes and delivery-rate
    /// samples still count: a copy that went again only because the client's estimate was
    /// still the initial RTT, on a longer path, is the common case, and nothing waited then.
    pub(crate) fn time_from(&mut self, first: u64) {
        self.rare.get_or_insert_with(Box::default).timed_from = first;
    }

    /// Whether packet `number` was sent on the connection's current path
    /// ([`new_path`](Self::new_path)).
    pub(crate) fn on_current_path(&self, number: u64) -> bool {
        self.rare.as_deref().is_none_or(|r| number >= r.path_start)
    }

    /// The path every packet in flight went on went dark (spec §12.5: two probe timeouts,
    /// and the connection left it): all of them are lost, returned to be sent again. Not
    /// remembered as recent losses: an acknowledgement of one that comes after all is no
    /// reordering to learn from, and is ignored as any of a packet no longer tracked.
    pub(crate) fn abandon_in_flight(&mut self) -> Vec<SentPacket> {
        self.bytes_in_flight = 0;
        self.loss_time = None;
        self.sent.drain()
    }
}
