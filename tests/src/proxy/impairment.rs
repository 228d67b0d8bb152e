//! What the proxy does to the datagrams of each direction: the impairment a test asks for
//! ([`Impairment`]) and its parts. [`super`] applies it.

use std::time::Duration;

use crate::{JitterOrdering, Policer};

/// What the path does to each datagram, in each direction. Probabilities are from 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// The probability that a datagram is lost.
    pub loss: f64,
    /// One-way delay added to every datagram (each direction).
    pub delay: Duration,
    /// Extra delay drawn from 0 to this for each datagram, so that datagrams overtake each
    /// other by up to it (a Wi-Fi or cellular hop), unless `ordering` keeps the order.
    pub jitter: Duration,
    /// Whether the jitter may reorder datagrams.
    pub ordering: JitterOrdering,
    /// Seed of the random choices.
    pub seed: u64,
    /// Bursts of loss on top of `loss` (Gilbert-Elliott).
    pub burst: Option<Burst>,
    /// The probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// The probability that a datagram is held back by up to `delay` + 2 ms more, so that
    /// later ones overtake it.
    pub reorder: f64,
    /// The probability that one bit of a datagram is flipped.
    pub corrupt: f64,
    /// The probability that a datagram is cut short (to a random length, at least 1 byte).
    pub truncate: f64,
    /// The most bytes a second the path carries: a bottleneck whose queue holds
    /// `queue_bytes` and drops what does not fit. `None`: no limit.
    pub rate: Option<u64>,
    /// The bottleneck's queue (with `rate`).
    pub queue_bytes: usize,
    /// The way to the client's own bottleneck, if it is not `rate` and `queue_bytes`: an
    /// asymmetric line whose uplink is at the server's side (what the server sends back to
    /// a client that sends it data, its ACKs among it, crosses it). A `change` of the rate
    /// sets both ways.
    pub back: Option<Bottleneck>,
    /// A policer on the way to the server (a token bucket that drops what exceeds its rate
    /// and queues nothing: an ISP's or a carrier's, at the client's side), ahead of the
    /// bottleneck. Its rate is in bits per second, as in weir-sim.
    pub policer: Option<Policer>,
    /// A time the path drops everything, counted from the first datagram it saw.
    pub outage: Option<Outage>,
    /// A moment the path's rate or delay changes for good, as a radio's rate does when it
    /// adapts, or a route when it moves.
    pub change: Option<PathChange>,
    /// A moment, counted from the first datagram, from which the proxy forwards to the
    /// server from another IP address (127.0.0.2; an IPv4 server only), as a client whose
    /// network changes its public address does: what the server sends to the old address is
    /// lost from then on.
    pub readdress: Option<Duration>,
    /// The largest datagram (UDP payload) the path carries; larger ones are dropped, as a
    /// link with a smaller MTU, or a tunnel, does. `None`: no limit.
    pub mtu: Option<usize>,
}

/// Bursty loss (Gilbert-Elliott): the path is good or bad; in a bad state every datagram is
/// lost. The state moves once per datagram and once for each `slot` of time without one,
/// so a burst lasts about as long whether the traffic in it is dense or a probe now and then.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Burst {
    /// The probability per step of going bad.
    pub enter: f64,
    /// The probability per step of going good again: bursts last `1 / leave` steps on
    /// average.
    pub leave: f64,
    /// A step of time without datagrams.
    pub slot: Duration,
}

/// A time the path is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// From the first datagram the proxy saw to the cut.
    pub after: Duration,
    /// How long the cut lasts.
    pub lasts: Duration,
}

/// A bottleneck of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bottleneck {
    /// The most bytes a second it carries.
    pub rate: u64,
    /// What its queue holds; it drops what does not fit.
    pub queue_bytes: usize,
}

/// The path changes once, for good: what is queued then leaves at the new rate, and what
/// is already delayed keeps its delay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PathChange {
    /// From the first datagram the proxy saw to the change.
    pub after: Duration,
    /// The most bytes a second the path carries from then on (with [`Impairment::rate`];
    /// `None`: as before).
    pub rate: Option<u64>,
    /// The one-way delay from then on (`None`: as before).
    pub delay: Option<Duration>,
    /// The largest datagram the path carries from then on (`None`: as before, what
    /// [`Impairment::mtu`] says).
    pub mtu: Option<usize>,
}

impl Default for Impairment {
    /// A perfect path: no loss, no delay.
    fn default() -> Self {
        Impairment {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            ordering: JitterOrdering::Reorders,
            seed: 1,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            truncate: 0.0,
            rate: None,
            queue_bytes: 256 << 10,
            back: None,
            policer: None,
            outage: None,
            change: None,
            readdress: None,
            mtu: None,
        }
    }
}
