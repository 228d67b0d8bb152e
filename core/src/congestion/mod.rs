//! Congestion control: how many bytes a connection may have in flight (spec/protocol.md §8.6).
//!
//! A [`CongestionController`] is fed explicit events by the connection: every ack-eliciting
//! packet sent, every ACK frame that acknowledged something (with the RTT estimate and the
//! one-way delay sample of spec §3.4), every batch of losses, and persistent congestion.
//! Its only output is the congestion window in bytes. Two controllers ship:
//!
//! - [`Ledbat`]: RFC 6817, delay-based "less than best effort", with the remedies of
//!   LEDBAT++ (draft-irtf-iccrg-ledbat-plus-plus) for its known failures. The default: bulk
//!   transfers between peers should yield to everything else the user does.
//! - [`NewReno`]: RFC 9002 §7, loss-based, competes evenly with TCP-like flows.
//!
//! Which one a connection uses is [`CongestionControl`] in its [`Config`](crate::Config).
//! Controllers are integer arithmetic only, so the same events give the same window on
//! every platform. Pacing (spreading the window over the RTT) is the separate `pacing`
//! module; an endpoint-wide rate limit is the endpoint's.

mod ledbat;
mod new_reno;

pub use ledbat::{Ledbat, LedbatConfig, LedbatDecrease, LedbatGain, LedbatSlowdown};
pub use new_reno::NewReno;

use alloc::boxed::Box;

use crate::time::{Duration, Instant};

/// RFC 9002 §7.2, kMinimumWindow: two datagrams.
pub(crate) const MIN_WINDOW_PACKETS: usize = 2;

/// RFC 9002 §7.2: the initial window, `min(10 × max_datagram, max(14,720, 2 × max_datagram))`.
pub fn initial_window(max_datagram: usize) -> usize {
    (10 * max_datagram).min(14_720.max(2 * max_datagram))
}

/// The RTT estimate when an ACK arrived (RFC 9002 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttSample {
    /// The sample this ACK gave, or the latest one if it gave none.
    pub latest: Duration,
    /// Smoothed RTT.
    pub smoothed: Duration,
    /// Minimum RTT seen.
    pub min: Duration,
}

/// An ACK frame acknowledged new packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckEvent {
    /// When the ACK arrived.
    pub now: Instant,
    /// Bytes of the ack-eliciting packets it newly acknowledged.
    pub bytes_acked: usize,
    /// When the newest of them was sent (for the recovery period, RFC 9002 §7.3.2).
    pub newest_sent: Instant,
    /// The RTT estimate after this ACK.
    pub rtt: RttSample,
    /// The peer's one-way delay measurement of the packet this ACK names as largest, in
    /// microseconds modulo 2^32 with the unknown offset between the two clocks (spec §3.4);
    /// `None` when that packet was acknowledged before, so the sample is stale. Only
    /// differences between samples mean anything.
    pub one_way_delay: Option<u32>,
    /// Bytes in flight once these packets left flight.
    pub bytes_in_flight: usize,
    /// The sender had less to send than the window allowed when these packets left: the
    /// window was not tested, so it must not grow (RFC 9002 §7.8).
    pub app_limited: bool,
}

/// Packets were declared lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossEvent {
    /// When the loss was detected.
    pub now: Instant,
    /// Bytes of the ack-eliciting packets declared lost.
    pub bytes_lost: usize,
    /// When the newest of them was sent: losses of packets sent before the current
    /// recovery period began do not reduce the window again (RFC 9002 §7.3.2).
    pub newest_sent: Instant,
    /// Bytes in flight once they left flight.
    pub bytes_in_flight: usize,
}

/// A congestion control algorithm, fed explicit events; its output is the window.
///
/// Implementations must be deterministic (no clock, no randomness, no floating point whose
/// result could differ between platforms) and must never return a window below two
/// datagrams, so a connection can always make progress.
pub trait CongestionController: core::fmt::Debug + Send {
    /// An ack-eliciting packet of `bytes` left at `now`; `bytes_in_flight` includes it.
    fn on_sent(&mut self, now: Instant, bytes: usize, bytes_in_flight: usize);
    /// An ACK acknowledged new packets.
    fn on_ack(&mut self, ack: &AckEvent);
    /// Packets were declared lost (a congestion event unless already in recovery).
    fn on_loss(&mut self, loss: &LossEvent);
    /// Nothing sent over a period of three probe timeouts was acknowledged (RFC 9002 §7.6):
    /// the path may have changed entirely. Called again at each further probe timeout while
    /// nothing is acknowledged, so that the probes lost in an outage belong to its recovery
    /// period; a repeat only moves that period's start.
    fn on_persistent_congestion(&mut self, now: Instant);
    /// Bytes that may be in flight.
    fn window(&self) -> usize;
    /// Whether the window is still growing exponentially (pacing goes faster then).
    fn in_slow_start(&self) -> bool;
    /// The queueing delay the controller measures, if it measures one (for statistics).
    fn queueing_delay(&self) -> Option<Duration> {
        None
    }
}

/// Which congestion controller a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CongestionControl {
    /// LEDBAT with the LEDBAT++ remedies ([`Ledbat`]): yields to other traffic, keeps the
    /// bottleneck queue near its target delay. The default.
    Ledbat(LedbatConfig),
    /// NewReno ([`NewReno`]): loss-based, shares evenly with TCP.
    NewReno,
}

impl Default for CongestionControl {
    fn default() -> Self {
        CongestionControl::Ledbat(LedbatConfig::default())
    }
}

impl CongestionControl {
    /// A controller of this kind for datagrams of at most `max_datagram` bytes.
    pub fn build(self, max_datagram: usize) -> Box<dyn CongestionController> {
        match self {
            CongestionControl::Ledbat(c) => Box::new(Ledbat::new(c, max_datagram)),
            CongestionControl::NewReno => Box::new(NewReno::new(max_datagram)),
        }
    }
}
