//! Congestion control: how many bytes a connection may have in flight, and how fast they
//! leave (spec/protocol.md §8, Congestion control).
//!
//! A [`CongestionController`] is fed explicit events by the connection: every ack-eliciting
//! packet sent, every ACK frame that acknowledged something (with the RTT estimate, the
//! one-way delay sample of spec §3.4 and a delivery-rate sample), every batch of losses,
//! every loss that turned out spurious (the packet arrived after all), and persistent
//! congestion. Its outputs are the congestion window in bytes and,
//! optionally, a pacing rate. Three controllers ship:
//!
//! - [`Bbr`]: model-based (draft-ietf-ccwg-bbr), the default. Paces at its estimate of
//!   the bottleneck bandwidth and keeps the queue short; a random loss changes neither,
//!   so it holds its rate on lossy wireless and long paths. Losses that its probes make
//!   and the rest of its sending does not (a policer) bind its rate (module `bbr::policed`).
//! - [`Ledbat`]: RFC 6817, delay-based "less than best effort", with the remedies of
//!   LEDBAT++ (draft-irtf-iccrg-ledbat-plus-plus) and a loss response only when queueing
//!   delay came with the loss, or when the path's losses have been seen to follow its rate
//!   (a policer; module `loss_regime`). The scavenger, for background transfers that should
//!   yield to everything else.
//! - [`NewReno`]: RFC 9002 §7, loss-based, competes evenly with TCP-like flows.
//!
//! Which one a connection uses is [`CongestionAlgorithm`] in its [`Config`](crate::Config).
//! A user brings their own by implementing [`CongestionController`] (its events are all
//! public types) and a [`ControllerFactory`], and choosing
//! [`CongestionAlgorithm::Custom`]: per endpoint in `Config::congestion`, or per connection.
//! Controllers are integer arithmetic only, so the same events give the same window on
//! every platform. Pacing (spreading the window over the RTT, or following the
//! controller's rate) is the separate `pacing` module; an endpoint-wide rate limit is the
//! endpoint's.

mod bbr;
mod ledbat;
mod loss_regime;
mod new_reno;
mod round_max;

pub use bbr::{Bbr, State as BbrState};
pub use ledbat::{Ledbat, LedbatConfig, LedbatDecrease, LedbatGain, LedbatSlowdown};
pub use new_reno::NewReno;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;

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
    /// The delivery rate this ACK measured (`None` only if it acknowledged nothing).
    pub rate: Option<RateSample>,
}

/// One delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation §3): the bytes the
/// path delivered between sending a packet and the ACK of it, and over how long. Taken
/// from the most recently sent packet an ACK acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes acknowledged between that packet's send and this ACK.
    pub delivered: u64,
    /// The longer of the time those bytes took to send and to be acknowledged.
    pub interval: Duration,
    /// That packet's round-trip time: from its send to this ACK (ACK delay included).
    pub rtt: Duration,
    /// The sender was application-limited when that packet left: the sample shows what
    /// the application offered, not what the path can carry.
    pub app_limited: bool,
    /// Bytes the connection had delivered when that packet left (BBR counts round trips
    /// by it: a round ends when a packet sent after the previous round ended is acknowledged).
    pub prior_delivered: u64,
    /// Bytes the connection has delivered in all, this ACK included.
    pub total_delivered: u64,
    /// Bytes this ACK newly acknowledged.
    pub acked: u64,
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

/// A congestion control algorithm, fed explicit events; its outputs are the window and,
/// optionally, a pacing rate.
///
/// The connection calls, in order of what happens: [`on_sent`](Self::on_sent) for every
/// ack-eliciting packet, [`on_ack`](Self::on_ack) for every ACK that acknowledged new
/// packets (after the RTT estimate took its sample), [`on_loss`](Self::on_loss) for the
/// packets that ACK or a timer declared lost, and
/// [`on_persistent_congestion`](Self::on_persistent_congestion); and
/// [`on_spurious_loss`](Self::on_spurious_loss) when an ACK shows that a packet declared
/// lost arrived after all. It reads
/// [`window`](Self::window) before each packet and [`pacing_rate`](Self::pacing_rate) to pace.
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
    /// A packet an earlier [`on_loss`](Self::on_loss) counted was acknowledged after all:
    /// the path reordered it, it was not lost (RFC 9002 §6.1.1; RFC 4015's "spurious
    /// retransmission"). `loss` describes that one packet: its bytes, when it was sent, the
    /// flight now. A controller may undo the reduction it made for a loss that was not one;
    /// the default does nothing.
    fn on_spurious_loss(&mut self, loss: &LossEvent) {
        let _ = loss;
    }
    /// Bytes that may be in flight.
    fn window(&self) -> usize;
    /// Whether the window is still growing exponentially (pacing goes faster then).
    fn in_slow_start(&self) -> bool;
    /// The queueing delay the controller measures, if it measures one (for statistics).
    fn queueing_delay(&self) -> Option<Duration> {
        None
    }
    /// The rate to pace at, in bytes per second, if the controller sets one (a model-based
    /// controller paces at its bandwidth estimate). `None`: the connection paces the window
    /// over the smoothed RTT (RFC 9002 §7.7).
    fn pacing_rate(&self) -> Option<u64> {
        None
    }
}

/// Which congestion controller a connection uses.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum CongestionAlgorithm {
    /// BBR ([`Bbr`]): paces at a model of the path (bottleneck bandwidth and minimum RTT),
    /// keeps the queue short, and holds its rate under random loss. The default.
    #[default]
    Bbr,
    /// LEDBAT with the LEDBAT++ remedies ([`Ledbat`]), the scavenger: yields to other
    /// traffic, keeps the bottleneck queue near its target delay. For background transfers.
    Ledbat(LedbatConfig),
    /// NewReno ([`NewReno`]): loss-based, shares evenly with TCP.
    NewReno,
    /// A controller of the user's own, built by the factory for each connection. Traces
    /// record it by [`ControllerFactory::name`]; replaying them takes the same factory
    /// ([`replay_with_controllers`](crate::trace::replay_with_controllers)).
    Custom(Arc<dyn ControllerFactory>),
}

/// Two choices are equal if they build the same controllers: custom ones by name.
impl PartialEq for CongestionAlgorithm {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CongestionAlgorithm::Bbr, CongestionAlgorithm::Bbr) => true,
            (CongestionAlgorithm::NewReno, CongestionAlgorithm::NewReno) => true,
            (CongestionAlgorithm::Ledbat(a), CongestionAlgorithm::Ledbat(b)) => a == b,
            (CongestionAlgorithm::Custom(a), CongestionAlgorithm::Custom(b)) => a.name() == b.name(),
            _ => false,
        }
    }
}

impl Eq for CongestionAlgorithm {}

/// Builds a controller of the user's own for each connection that uses it
/// ([`CongestionAlgorithm::Custom`]).
pub trait ControllerFactory: core::fmt::Debug + Send + Sync {
    /// The name traces record it by (`custom:NAME`). Letters, digits, `-`, `_` and `.`
    /// only, so that the trace reads back.
    fn name(&self) -> &str;
    /// A new controller for datagrams of at most `max_datagram` bytes.
    fn build(&self, max_datagram: usize) -> Box<dyn CongestionController>;
}

/// A custom controller named in a trace, before the replay is given its factory.
#[derive(Debug)]
pub(crate) struct Unresolved(pub(crate) String);

impl ControllerFactory for Unresolved {
    fn name(&self) -> &str {
        &self.0
    }

    /// Never reached: a replay swaps an unresolved name for its factory or refuses it
    /// (`trace::resolve`). NewReno keeps the type total.
    fn build(&self, max_datagram: usize) -> Box<dyn CongestionController> {
        Box::new(NewReno::new(max_datagram))
    }
}

impl CongestionAlgorithm {
    /// A controller of this kind for datagrams of at most `max_datagram` bytes.
    pub fn build(&self, max_datagram: usize) -> Box<dyn CongestionController> {
        match self {
            CongestionAlgorithm::Bbr => Box::new(Bbr::new(max_datagram)),
            CongestionAlgorithm::Ledbat(c) => Box::new(Ledbat::new(*c, max_datagram)),
            CongestionAlgorithm::NewReno => Box::new(NewReno::new(max_datagram)),
            CongestionAlgorithm::Custom(f) => f.build(max_datagram),
        }
    }
}

/// One-way delay samples made comparable: the wire value wraps every 2^32 µs and carries
/// the clocks' offset, so each sample is unwrapped against the previous one into a running
/// signed value. Only differences are used.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DelayClock {
    last_wire: Option<u32>,
    value: i64,
}

impl DelayClock {
    pub(crate) fn unwrap(&mut self, wire: u32) -> i64 {
        if let Some(last) = self.last_wire {
            // Consecutive samples differ by far less than 2^31 µs (35 minutes).
            self.value += i64::from(wire.wrapping_sub(last) as i32);
        }
        self.last_wire = Some(wire);
        self.value
    }
}
