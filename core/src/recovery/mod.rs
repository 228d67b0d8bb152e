//! Acknowledgements, loss detection and probe timeouts (RFC 9002 §5-§6; spec/protocol.md §3.3).
//!
//! Inputs: each ack-eliciting packet we send (number, time, size, and what it carried), the
//! ACK frames the peer sends back, and timeouts. Outputs: which packets are acknowledged and
//! which are lost (the connection then releases or resends their frames), the RTT estimate,
//! and the next deadline: the loss timer (time threshold) or the probe timeout (PTO), which
//! backs off exponentially up to a cap and keeps probing at that pace. Recovery never gives
//! up on the peer: liveness is decided on time (the connection's idle timer, spec §8,
//! Liveness), not on a count of probes, so a path that returns after an outage shorter
//! than the idle timeout is found again within one capped probe period.
//!
//! Both loss thresholds adapt to reordering (RFC 9002 §6.1 allows it): an ACK of a packet
//! already declared lost raises the packet threshold to the distance seen and the time
//! threshold to how late the packet came (RFC 8985 §6.2's adaptive reordering window,
//! measured rather than stepped), up to eight RTTs, so a path whose delay jitters per
//! datagram does not have its late packets resent for nothing. After [`CALM_ROUNDS`] round
//! trips that declared losses and saw none turn out spurious, what reordering added to
//! both is halved, so they return to RFC 9002's once a path stops reordering.
//!
//! Packet numbers are never reused: what is lost is resent in new packets by frame. Packets
//! that only carry ACK, PADDING or CLOSE are not tracked here at all.
//!
//! *Lazy* packets (capability LAZY_RECEIPT_ACKS, spec §8 Acknowledgements) are those whose
//! only frames that ask for an acknowledgement are receipts: the peer acknowledges them
//! within [`received::LAZY_ACK_DELAY`] or with its next packet. They are kept apart, for
//! their receipts alone: not in flight for congestion control, no probe timer, no RTT
//! sample (their ACK's delay is the peer's choice). They are lost by the same thresholds
//! when later packets are acknowledged, when the connection gives them up
//! ([`Recovery::give_up_lazy`]: the peer's PING, a close), or when the peer's lazy delay and
//! a probe period pass without their acknowledgement ([`Timeout::LazyLost`], backing off as
//! the probe timer does).
//!
//! Now and then a packet number is left out, at random (RFC 9000 §21.4; spec §8): a peer
//! that acknowledges it acknowledges a packet it cannot have received, an optimistic ACK,
//! and is refused like one naming a number beyond the last sent.

pub(crate) mod ack_frequency;
pub(crate) mod delivery_rate;
mod path;
pub(crate) mod received;
pub(crate) mod rtt;
mod sent;
mod sent_packets;
mod skips;

use alloc::boxed::Box;
use alloc::vec::Vec;

use smallvec::SmallVec;

use crate::congestion::{LossEvent, RateSample};
use crate::maybe_pn::MaybePn;
use crate::stats::Tally;
use crate::time::{Duration, Instant};
use crate::wire::Ack;
use delivery_rate::{DeliveryRate, DeliveryState, Sampler};
use rtt::RttEstimator;
pub(crate) use sent::{Control, SentFrame, SentFrames};
use sent_packets::SentPackets;
#[cfg(test)]
use sent_packets::{GROWS_BY_DOUBLING, KEPT_SLOTS};
use skips::Skips;
#[cfg(test)]
use skips::{FIRST_SKIP_EXPONENT, LAST_SKIP_EXPONENT, REMEMBERED_SKIPS};

/// Packets this far below the largest acknowledged are lost (RFC 9002 §6.1.1, kPacketThreshold):
/// the starting value; it grows when losses turn out spurious (RFC 9002 §6.1.1 allows
/// adapting it), up to [`MAX_PACKET_THRESHOLD`].
const PACKET_THRESHOLD: u16 = 3;
/// The most reordering tolerated before the packet threshold stops growing (the time
/// threshold still declares loss).
const MAX_PACKET_THRESHOLD: u64 = 1 << 12;
/// The time threshold for loss, in eighths of an RTT beyond one RTT (RFC 9002 §6.1.2,
/// kTimeThreshold 9/8): the starting value; while losses turn out spurious it grows to an
/// eighth beyond how late the late packet came (RACK's adaptive reordering window, RFC 8985
/// §6.2), up to [`MAX_TIME_THRESHOLD`]: eight RTTs. RACK caps its window at one RTT beyond
/// the RTT, as this did; but RTT samples come from the newest packet acknowledged, which
/// on a path that reorders is one that was not delayed, so where a datagram may be delayed
/// by more than the RTT (a Wi-Fi hop of a 4 ms path) twice the RTT still declared a fifth
/// of them lost (`jitter::jitter_beyond_the_rtt_is_learned_not_resent`).
const TIME_THRESHOLD: u8 = 1;
const MAX_TIME_THRESHOLD: u8 = 56;
/// Round trips with losses and none of them spurious after which what reordering added to
/// the thresholds is halved (RACK's `reo_wnd_persist`, RFC 8985 §6.2: 16 recoveries), so
/// a path that stopped reordering has its real losses found at 9/8 RTT again within a
/// hundred such round trips, not as late as the latest packet it ever delivered late for
/// good. Halved, not reset as RACK does: on a path that goes on reordering, each step down
/// costs the spurious losses of the packets between the halved threshold and the lateness
/// learned, and a reset cost 20-40% more datagrams declared lost than no decay at all
/// against 5-10% for halving (`weir sim --direct` at 2 ms / 10 ms jitter / 1% / 100 Mbit/s,
/// 5 ms / 20 ms / 5% / 20 Mbit/s, 100 ms / 30 ms / 2% / 50 Mbit/s and 50 ms / 50 ms / 3% /
/// 10 Mbit/s, 64 MiB, seeds 1 and 2; issue 35's fortieth round in tests/congestion.md).
const CALM_ROUNDS: u8 = 16;
/// Packets declared lost that are remembered, to notice when an ACK shows it was reordering.
const REMEMBERED_LOSSES: usize = 512;
/// A packet in flight: 112 bytes (its size in 32 bits, three frames inline in 72, its
/// delivery state packed with its instants as ages), as a sender keeps one for every packet
/// in flight, thousands over a long path.
#[derive(Clone, Debug)]
pub(crate) struct SentPacket {
    pub(crate) number: u64,
    pub(crate) time: Instant,
    size: u32,
    pub(crate) frames: SentFrames,
    /// The connection's delivery when it left, for rate samples (set by
    /// [`Recovery::on_sent`]).
    delivery: DeliveryState,
}

impl SentPacket {
    /// Packet `number` of `size` bytes sent at `time`, carrying `frames`. (A datagram's size:
    /// far within 32 bits; a size beyond them would be counted as `u32::MAX`.)
    pub(crate) fn new(number: u64, time: Instant, size: usize, frames: SentFrames) -> Self {
        SentPacket {
            number,
            time,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            frames,
            delivery: DeliveryState::default(),
        }
    }

    /// Its size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size as usize
    }
}

/// The peer acknowledged a packet we never sent, one beyond the last sent or one left out
/// (an optimistic ACK): a protocol violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnsentPacketAcked;

/// What an ACK or a timeout decided.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) acked: Acked,
    pub(crate) lost: Vec<SentPacket>,
    /// The delivery rate the ACK measured, if it acknowledged anything.
    pub(crate) rate: Option<RateSample>,
    /// Lazy packets acknowledged, and lost (their receipts only: no congestion signal).
    pub(crate) lazy_acked: Vec<SentPacket>,
    pub(crate) lazy_lost: Vec<SentPacket>,
    /// Packets declared lost that the ACK acknowledged after all, one event each, for
    /// congestion control to undo what their loss made it do
    /// (`CongestionController::on_spurious_loss`). Empty unless the path reordered.
    pub(crate) spurious: Vec<LossEvent>,
    /// Probe timeouts in a row that fired before this ACK, with nothing acknowledged
    /// between them: how long the path had been silent (0: it was not).
    pub(crate) silence: u32,
}

/// The packets an ACK newly acknowledged, left in the queue of packets in flight with their
/// frames (module `sent_packets`): what congestion control is told of them, and their
/// places, in the order the ACK names them, for the connection to read each one's number
/// and size ([`Recovery::acked_packet`]) and then its frames, once
/// ([`Recovery::acked_frames`]). Read them all before the next call to recovery that
/// changes the flight: until then the queue keeps its holes (one it is not read for drops
/// those frames at the next ACK).
#[derive(Debug, Default)]
pub(crate) struct Acked {
    /// Inline for an ACK of a few packets (a connection that sends a message at a time),
    /// which so allocates nothing; a list beside it otherwise.
    slots: SmallVec<[usize; 4]>,
    /// The bytes of those sent on the current path ([`Recovery::new_path`]): what
    /// congestion control counts.
    pub(crate) bytes: usize,
    /// The latest send time of those sent on the current path.
    pub(crate) newest: Option<Instant>,
    /// Whether the ACK's largest number is among those sent on the current path.
    pub(crate) largest: bool,
}

impl Acked {
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// How many.
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The places the list has room for (tests: made once at its size).
    #[cfg(test)]
    pub(crate) fn room(&self) -> usize {
        self.slots.capacity()
    }

    /// Their places in the queue, in the ACK's order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots.iter().copied()
    }
}

/// Makes room in `list` for `wanted` more places, at most `in_flight`: out of line, as an
/// ACK of a few packets (a connection that sends a message at a time) never needs it.
#[cold]
fn make_room(list: &mut SmallVec<[usize; 4]>, wanted: u64, in_flight: usize) {
    list.reserve_exact(usize::try_from(wanted).map_or(in_flight, |w| w.min(in_flight)));
}

/// What the recovery timer asks for when it fires.
#[derive(Debug)]
pub(crate) enum Timeout {
    /// Packets declared lost by the time threshold.
    Lost(Vec<SentPacket>),
    /// Send one or two ack-eliciting probe packets; `consecutive` probe timeouts have now
    /// fired without an acknowledgement (counted up to 255: what depends on the count,
    /// persistent congestion and the backoff, stops changing long before).
    Probe { consecutive: u32 },
    /// Lazy packets whose acknowledgement did not come within the peer's lazy delay and a
    /// probe period: their receipts are to be sent again.
    LazyLost(Vec<SentPacket>),
}

/// What only a connection that lost packets, sent lazy ones or moved to a new path keeps:
/// boxed, made on first use and let go by a trim once empty, so that every other connection
/// keeps a pointer (64 bytes less than both inline).
#[derive(Debug, Default)]
struct Rare {
    /// Packets recently declared lost (bounded), by number, with when they were sent and
    /// the bytes their loss counted for congestion control: an ACK of one means the loss
    /// was spurious, the thresholds grow to the reordering seen (how far behind the largest
    /// acknowledged it came, and how late), and congestion control is told.
    recently_lost: alloc::collections::BTreeMap<u64, (Instant, u32)>,
    /// Lazy packets not yet acknowledged nor lost, in the order sent.
    lazy: SentPackets,
    /// Lazy timeouts in a row (the lazy timer backs off as the probe timer does).
    lazy_timeouts: u8,
    /// Smoothed RTTs in which packets were declared lost and none turned out spurious since
    /// the thresholds last grew or came down, and when the last of them was counted
    /// (after [`CALM_ROUNDS`], what reordering added to the thresholds is halved).
    calm_rounds: u8,
    calm_counted: Instant,
    /// The first packet congestion control counts (0: every packet): the first sent on the
    /// connection's current path, or since a black hole's fallback
    /// ([`Recovery::count_from`]).
    path_start: u64,
    /// The first packet that may give an RTT sample (0: every packet): packets before it may
    /// have waited at the peer for the handshake's keys ([`Recovery::time_from`]).
    timed_from: u64,
}

impl Rare {
    /// Whether it holds nothing: `oldest` is the oldest packet in flight, which a path
    /// start above it still sets apart.
    fn is_empty(&self, oldest: Option<u64>) -> bool {
        self.recently_lost.is_empty()
            && self.lazy.is_empty()
            && oldest.is_none_or(|n| n >= self.path_start.max(self.timed_from))
    }
}

#[derive(Debug)]
pub(crate) struct Recovery {
    sent: SentPackets,
    /// What only a connection that lost packets or sent lazy ones keeps ([`Rare`]).
    rare: Option<Box<Rare>>,
    next_pn: u64,
    skips: Skips,
    largest_acked: MaybePn,
    rtt: RttEstimator,
    /// Probe timeouts in a row (saturating: the backoff stops doubling at 16 anyway).
    pto_count: u8,
    /// The longest the probe timeout backs off to (unless the unbacked-off PTO is longer).
    max_probe_interval: Duration,
    /// The peer's max_ack_delay.
    max_ack_delay: Duration,
    last_eliciting_sent: Option<Instant>,
    loss_time: Option<Instant>,
    bytes_in_flight: usize,
    packet_threshold: u16,
    /// The time threshold in eighths of an RTT beyond one, and when it last grew (`ZERO`:
    /// never; an idle connection keeps thousands of these, so no `Option`).
    time_threshold: u8,
    time_threshold_raised: Instant,
    spurious_losses: Tally,
    rate: DeliveryRate,
}

impl Recovery {
    /// Shows `show` the packets in flight an input may reach first (`connection::prefetch`).
    pub(crate) fn prefetch(&self, show: &mut impl FnMut(*const u8, usize)) {
        self.sent.prefetch(show);
    }

    /// `skip_seed` chooses the numbers left out; it should be unknown to the peer.
    /// `max_probe_interval` caps the probe timeout's backoff.
    pub(crate) fn new(initial_rtt: Duration, max_probe_interval: Duration, skip_seed: u64) -> Self {
        Recovery {
            sent: SentPackets::default(),
            rare: None,
            next_pn: 0,
            skips: Skips::new(skip_seed),
            largest_acked: MaybePn::NONE,
            rtt: RttEstimator::new(initial_rtt),
            pto_count: 0,
            max_probe_interval,
            max_ack_delay: Duration::from_millis(25),
            last_eliciting_sent: None,
            loss_time: None,
            bytes_in_flight: 0,
            packet_threshold: PACKET_THRESHOLD,
            time_threshold: TIME_THRESHOLD,
            time_threshold_raised: Instant::ZERO,
            spurious_losses: Tally::default(),
            rate: DeliveryRate::default(),
        }
    }

    /// Losses later shown to be reordering.
    pub(crate) fn spurious_losses(&self) -> u64 {
        self.spurious_losses.get()
    }

    pub(crate) fn set_peer_max_ack_delay(&mut self, d: Duration) {
        self.max_ack_delay = d;
    }

    /// The number the next packet will carry.
    pub(crate) fn next_pn(&self) -> u64 {
        self.next_pn
    }

    /// The number for the next packet; numbers are never reused.
    pub(crate) fn take_pn(&mut self) -> u64 {
        let pn = self.next_pn;
        self.next_pn += 1;
        pn
    }

    /// Whether `pn` is one of the numbers left out that are still remembered.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn remembers_skipped(&self, pn: u64) -> bool {
        self.skips.recent().any(|s| s == pn)
    }

    pub(crate) fn largest_acked(&self) -> Option<u64> {
        self.largest_acked.get()
    }

    pub(crate) fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// The handshake's round trip (`handshake::SentOnce`): the first sample, unless an ACK
    /// gave one already. The peer answers a handshake message at once: no ack delay.
    pub(crate) fn on_handshake_rtt(&mut self, sample: Duration) {
        if !self.rtt.has_sample() {
            self.rtt.update(sample, Duration::ZERO);
        }
    }

    pub(crate) fn bytes_in_flight(&self) -> usize {
        self.bytes_in_flight
    }

    /// Whether an ack-eliciting packet we sent is still unacknowledged (and not declared
    /// lost): the peer owes us an answer.
    pub(crate) fn awaits_ack(&self) -> bool {
        !self.sent.is_empty()
    }

    /// Probe timeouts in a row that fired without an acknowledgement.
    pub(crate) fn pto_count(&self) -> u32 {
        u32::from(self.pto_count)
    }

    #[cfg(test)]
    pub(crate) fn packets_in_flight(&self) -> usize {
        self.sent.len()
    }

    /// Records an ack-eliciting packet just sent. Now and then the number after it is left
    /// out: only after ack-eliciting packets, as only those are worth acknowledging
    /// optimistically, so a peer that sends nothing but ACKs sends them in one unbroken run
    /// (each gap costs whoever acknowledges them an ACK range).
    pub(crate) fn on_sent(&mut self, mut packet: SentPacket) {
        if self.next_pn >= self.skips.next {
            self.skips.skip(self.next_pn);
            self.next_pn += 1;
        }
        packet.delivery = self.rate.on_sent(packet.time, self.bytes_in_flight);
        self.last_eliciting_sent = Some(packet.time);
        self.bytes_in_flight += packet.size();
        self.sent.push(packet);
    }

    /// The frames of the oldest packet in flight, which stays in flight: for probes to carry
    /// again (RFC 9002 §6.2.4).
    pub(crate) fn oldest_frames(&self) -> Option<SentFrames> {
        self.sent.oldest().map(|p| p.frames.clone())
    }

    /// Records a lazy packet just sent (only its receipts matter): not in flight, no probe
    /// timer, no number left out after it.
    pub(crate) fn on_sent_lazy(&mut self, packet: SentPacket) {
        self.rare.get_or_insert_with(Box::default).lazy.push(packet);
    }

    /// The number and size of the packet an ACK took at `slot` ([`Acked`]); none once the
    /// flight was drained.
    pub(crate) fn acked_packet(&self, slot: usize) -> Option<(u64, usize)> {
        self.sent.acked(slot)
    }

    /// The frames of the packet an ACK took at `slot` ([`Acked`]), once.
    pub(crate) fn acked_frames(&mut self, slot: usize) -> SentFrames {
        self.sent.take_acked_frames(slot)
    }

    /// Packet `number`, just declared lost, was no congestion signal (a probe of the path's
    /// size): should an ACK show it arrived after all, congestion control has nothing to
    /// undo for it.
    pub(crate) fn loss_not_counted(&mut self, number: u64) {
        if let Some((_, size)) = self
            .rare
            .as_deref_mut()
            .and_then(|r| r.recently_lost.get_mut(&number))
        {
            *size = 0;
        }
    }

    /// Lazy packets waiting for their acknowledgement.
    pub(crate) fn lazy_in_flight(&self) -> usize {
        self.rare.as_deref().map_or(0, |r| r.lazy.len())
    }

    /// Gives up every lazy packet not yet acknowledged, for its receipts to be sent again
    /// in a packet the peer answers: the peer's PING asks for an answer that may be waited
    /// on, and a close waits for every receipt's acknowledgement.
    pub(crate) fn give_up_lazy(&mut self) -> Vec<SentPacket> {
        self.rare.as_deref_mut().map_or_else(Vec::new, |r| r.lazy.drain())
    }

    /// The sender ran out of data with room in its window (RFC 9002 §7.8): the rate samples
    /// of what is in flight now are application-limited.
    pub(crate) fn on_app_limited(&mut self) {
        self.rate.on_app_limited(self.bytes_in_flight);
    }

    /// Processes an ACK frame received at `now`.
    pub(crate) fn on_ack(&mut self, now: Instant, ack: &Ack) -> Result<Outcome, UnsentPacketAcked> {
        if ack.largest() >= self.next_pn || self.skips.any_in(ack) {
            return Err(UnsentPacketAcked);
        }
        // An ACK's frames not read (a caller other than the connection) go now.
        self.sent.forget_acked();
        let mut out = Outcome::default();
        let mut sampler = Sampler::default();
        let in_flight = self.sent.len();
        let largest = ack.largest();
        let (path_start, timed_from) = self
            .rare
            .as_deref()
            .map_or((0, 0), |r| (r.path_start, r.timed_from));
        // The send times of the packet numbered `largest` and of the highest numbered one,
        // if newly acknowledged, for the RTT sample below.
        let (mut largest_sent, mut highest) = (None, None);
        for range in ack.ranges.iter() {
            let acked = &mut out.acked;
            self.sent.ack_range(range.smallest..=range.largest, |slot, p| {
                if acked.slots.len() == acked.slots.capacity() {
                    // Room for the rest of the range at once: a bulk sender's ACKs name
                    // tens of packets, and growing the list by doubling cost the sender of
                    // weir-bench's `big-request` 1.3% of its instructions (callgrind).
                    make_room(
                        &mut acked.slots,
                        (range.largest - p.number).saturating_add(1),
                        in_flight,
                    );
                }
                self.bytes_in_flight -= p.size();
                acked.slots.push(slot);
                // (A packet of the path before says nothing of this one.)
                if p.number < path_start {
                    return;
                }
                self.rate
                    .on_acked(&mut sampler, now, p.time, p.size(), p.delivery);
                acked.bytes += p.size();
                acked.newest = Some(acked.newest.map_or(p.time, |t| t.max(p.time)));
                if p.number < timed_from {
                    return;
                }
                if p.number == largest {
                    largest_sent = Some(p.time);
                }
                if highest.is_none_or(|(n, _)| p.number > n) {
                    highest = Some((p.number, p.time));
                }
            });
        }
        out.acked.largest = largest_sent.is_some();
        out.rate = self.rate.sample(sampler, now);
        if let Some(rare) = self.rare.as_deref_mut().filter(|r| !r.lazy.is_empty()) {
            for range in ack.ranges.iter() {
                rare.lazy
                    .take_range(range.smallest..=range.largest, |p| out.lazy_acked.push(p));
            }
            if !out.lazy_acked.is_empty() {
                rare.lazy_timeouts = 0;
                rare.lazy.compact();
            }
        }
        // RFC 9002 §6.1.1: an ACK of a packet already declared lost shows reordering; grow
        // the packet threshold past the distance seen and the time threshold past how late it
        // came (`raise_time_threshold`), and tell congestion control (`Outcome::spurious`).
        let mut reordered = false;
        // How long the latest of them took to be acknowledged.
        let mut latest_late = Duration::ZERO;
        // (Most ACKs come with no packet declared lost lately: no walk of their ranges.)
        if let Some(rare) = self.rare.as_deref_mut().filter(|r| !r.recently_lost.is_empty()) {
            for range in ack.ranges.iter() {
                let spurious: SmallVec<[(u64, Instant, u32); 8]> = rare
                    .recently_lost
                    .range(range.smallest..=range.largest)
                    .map(|(&pn, &(sent, size))| (pn, sent, size))
                    .collect();
                for (pn, sent, size) in spurious {
                    rare.recently_lost.remove(&pn);
                    rare.calm_rounds = 0;
                    self.spurious_losses += 1;
                    reordered = true;
                    let distance = largest.saturating_sub(pn).saturating_add(1);
                    let distance = u16::try_from(distance.min(MAX_PACKET_THRESHOLD)).unwrap_or(u16::MAX);
                    self.packet_threshold = self.packet_threshold.max(distance);
                    latest_late = latest_late.max(now - sent);
                    if size > 0 {
                        out.spurious.push(LossEvent {
                            now,
                            bytes_lost: size as usize,
                            newest_sent: sent,
                            bytes_in_flight: self.bytes_in_flight,
                        });
                    }
                }
            }
        }
        if reordered {
            self.raise_time_threshold(now, latest_late);
        }
        // The largest acknowledged moves on even when it names a packet not tracked here
        // (one that carried only ACK, PADDING or CLOSE): packets in flight sent before it
        // are then overdue all the same (RFC 9002 §6.1 counts every packet).
        let advanced = self.largest_acked().is_none_or(|l| largest > l);
        if out.acked.is_empty() && !advanced {
            // Nothing new, but a threshold that just grew moves the loss timer later.
            if reordered {
                out.lost = self.detect_lost(now);
                if self.rare.is_some() {
                    out.lazy_lost = self.detect_lazy_lost(now);
                }
            }
            return Ok(out);
        }
        self.sent.compact();
        if advanced {
            self.largest_acked = MaybePn::some(largest);
        }
        // RFC 9002 §5.1: a sample when the largest acknowledged is newly acknowledged and
        // the ACK newly acknowledges an ack-eliciting packet, timed from the largest's send.
        // Only ack-eliciting packets are tracked here, so when the largest carried only an
        // ACK its send time is not known. Before the first sample, the newest ack-eliciting
        // packet newly acknowledged stands in for it (sent earlier, so its sample is no
        // shorter): without it a client that acknowledged the answer to its first request
        // before sending its second paced the second on the initial RTT of 100 ms (the second
        // round trip of weir-bench's `rtt` took 1.1 ms instead of 30 µs in one run of nine).
        // Not later: after an outage the newest one acknowledged may have been sent before
        // it, seconds earlier, and a sample that long held LEDBAT's probes back for seconds
        // (`liveness::after_an_outage_the_transfer_regains_its_rate_at_once`). Nor when an
        // ack-eliciting packet (a probe) went after the stand-in: the ACK answers a later
        // packet than it, for the same reason (a stalled handshake's first ACK timed
        // 10.3 s that way; `tests.rs`, `..._no_stand_in_older_than_...`), nor after a probe
        // timeout with no ACK since: the ACK that would have timed the stand-in may be
        // the one lost (1.0-1.2 s samples of a 25 ms path, seen in sweeps). And the first
        // sample, after such a timeout, only from the newest packet: an older one may have
        // waited at the peer meanwhile (Karn's ambiguity; a packet the peer held until the
        // handshake's keys came, 7.3 s, timed that long).
        let first = !self.rtt.has_sample();
        let probed = self.pto_count > 0;
        let newest = |sent: &Instant| self.last_eliciting_sent.is_none_or(|last| last <= *sent);
        let timed = match largest_sent {
            Some(sent) if first && probed => Some(sent).filter(newest),
            Some(sent) => Some(sent),
            None if advanced && first && !probed => highest.map(|(_, sent)| sent).filter(newest),
            None => None,
        };
        if let Some(sent) = timed {
            let delay = Duration::from_micros(ack.ack_delay).min(self.max_ack_delay);
            self.rtt.update(now - sent, delay);
        }
        out.silence = self.pto_count();
        self.pto_count = 0;
        out.lost = self.detect_lost(now);
        // (Checked here: most connections never make the box, and a call per ACK to find
        // that out was 20 instructions of each.)
        if self.rare.is_some() {
            out.lazy_lost = self.detect_lazy_lost(now);
        }
        Ok(out)
    }

    /// The lazy packets the thresholds declare lost: as [`detect_lost`](Self::detect_lost),
    /// but without a loss timer (the lazy timer stands in) and without a lesson about
    /// reordering (an ACK of one lost counts nothing).
    fn detect_lazy_lost(&mut self, now: Instant) -> Vec<SentPacket> {
        let (Some(largest), Some(lazy)) = (
            self.largest_acked(),
            self.rare
                .as_deref_mut()
                .map(|r| &mut r.lazy)
                .filter(|l| !l.is_empty()),
        ) else {
            return Vec::new();
        };
        let delay = self.rtt.loss_delay(u64::from(self.time_threshold));
        let threshold = u64::from(self.packet_threshold);
        let lost_pns: SmallVec<[u64; 8]> = lazy
            .below(largest)
            .filter(|p| largest - p.number >= threshold || p.time + delay <= now)
            .map(|p| p.number)
            .collect();
        let lost = lost_pns.into_iter().filter_map(|pn| lazy.take(pn)).collect();
        lazy.compact();
        lost
    }

    /// RFC 9002 §6.1: packets below the largest acknowledged are lost once three later ones
    /// are acknowledged or 9/8 RTT passed since they were sent; otherwise the loss timer
    /// is set for the earliest of them.
    fn detect_lost(&mut self, now: Instant) -> Vec<SentPacket> {
        self.loss_time = None;
        let Some(largest) = self.largest_acked() else {
            return Vec::new();
        };
        let delay = self.rtt.loss_delay(u64::from(self.time_threshold));
        let mut lost_pns: SmallVec<[(u64, Instant); 16]> = SmallVec::new();
        for p in self.sent.below(largest) {
            let pn = p.number;
            if largest - pn >= u64::from(self.packet_threshold) || p.time + delay <= now {
                lost_pns.push((pn, p.time));
            } else {
                let at = p.time + delay;
                self.loss_time = Some(self.loss_time.map_or(at, |t| t.min(at)));
            }
        }
        let mut lost = Vec::with_capacity(lost_pns.len());
        if !lost_pns.is_empty() {
            self.count_calm_round(now);
        }
        for (pn, sent) in lost_pns {
            let Some(p) = self.sent.take(pn) else {
                continue;
            };
            let recently_lost = &mut self.rare.get_or_insert_with(Box::default).recently_lost;
            recently_lost.insert(pn, (sent, p.size));
            if recently_lost.len() > REMEMBERED_LOSSES {
                recently_lost.pop_first();
            }
            self.bytes_in_flight -= p.size();
            lost.push(p);
        }
        self.sent.compact();
        lost
    }

    /// A loss turned out spurious at `now`, the latest of the packets acknowledged `late`
    /// after it was sent: the time threshold grows so that a packet that late would not be
    /// declared lost (at least one more eighth of an RTT, unless the threshold grew within
    /// the last smoothed RTT: the losses of one burst of reordering are found by the same
    /// few ACKs, and one step is their lesson), up to [`MAX_TIME_THRESHOLD`].
    fn raise_time_threshold(&mut self, now: Instant, late: Duration) {
        let recent = self.time_threshold_raised != Instant::ZERO
            && now < self.time_threshold_raised + self.rtt.smoothed();
        let step = if recent {
            self.time_threshold
        } else {
            self.time_threshold.saturating_add(1)
        };
        let needed = self.rtt.eighths_beyond(late).saturating_add(1);
        let threshold = step.max(needed).min(MAX_TIME_THRESHOLD);
        if threshold > self.time_threshold {
            self.time_threshold = threshold;
            self.time_threshold_raised = now;
        }
    }

    /// Packets are being declared lost at `now`: a round trip without a spurious loss is
    /// counted (at most one per smoothed RTT), and after [`CALM_ROUNDS`] of them what
    /// reordering added to the thresholds is halved.
    fn count_calm_round(&mut self, now: Instant) {
        if self.packet_threshold == PACKET_THRESHOLD && self.time_threshold == TIME_THRESHOLD {
            return;
        }
        let srtt = self.rtt.smoothed();
        let rare = self.rare.get_or_insert_with(Box::default);
        if rare.calm_counted != Instant::ZERO && now < rare.calm_counted + srtt {
            return;
        }
        rare.calm_counted = now;
        rare.calm_rounds += 1;
        if rare.calm_rounds >= CALM_ROUNDS {
            rare.calm_rounds = 0;
            self.packet_threshold = PACKET_THRESHOLD + (self.packet_threshold - PACKET_THRESHOLD) / 2;
            self.time_threshold = TIME_THRESHOLD + (self.time_threshold - TIME_THRESHOLD) / 2;
        }
    }

    /// The PTO period with backoff (RFC 9002 §6.2.1), at most `max_probe_interval`, or the
    /// unbacked-off period where that is longer (a path whose RTT is longer than the cap).
    pub(crate) fn pto(&self) -> Duration {
        let base = self.rtt.pto_base(self.max_ack_delay);
        base.saturating_mul(1 << self.pto_count.min(16))
            .min(self.max_probe_interval.max(base))
    }

    /// When the recovery timer fires: the loss timer if set, else the PTO if anything is in
    /// flight; or the lazy timer, if earlier. (Inlined: the timers are rebuilt after every
    /// change; as a call it cost an in-memory round trip 22 instructions more.)
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let main = match self.loss_time {
            Some(t) => Some(t),
            None if self.sent.is_empty() => None,
            None => self.last_eliciting_sent.map(|t| t + self.pto()),
        };
        // (The timers are rebuilt after every change: most connections have no box.)
        if self.rare.is_none() {
            return main;
        }
        match (main, self.lazy_deadline()) {
            (Some(m), Some(l)) => Some(m.min(l)),
            (m, l) => m.or(l),
        }
    }

    /// When the oldest lazy packet is given up: the peer's lazy delay and a probe period
    /// after it was sent, the period backing off with each lazy timeout in a row, up to
    /// `max_probe_interval` (or the unbacked-off period where that is longer).
    fn lazy_deadline(&self) -> Option<Instant> {
        let rare = self.rare.as_deref()?;
        let oldest = rare.lazy.oldest()?;
        let base = self.rtt.pto_base(self.max_ack_delay);
        let period = base
            .saturating_mul(1 << rare.lazy_timeouts.min(16))
            .min(self.max_probe_interval.max(base));
        Some(oldest.time + received::LAZY_ACK_DELAY + period)
    }

    /// The recovery timer fired at `now` (call only when `deadline() <= now`).
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Timeout {
        if self.lazy_deadline().is_some_and(|t| t <= now) {
            // Every lazy packet goes with the oldest: their receipts then share packets
            // again, and the timer restarts from their new one.
            let rare = self.rare.get_or_insert_with(Box::default);
            rare.lazy_timeouts = rare.lazy_timeouts.saturating_add(1);
            return Timeout::LazyLost(rare.lazy.drain());
        }
        if self.loss_time.is_some_and(|t| t <= now) {
            return Timeout::Lost(self.detect_lost(now));
        }
        self.pto_count = self.pto_count.saturating_add(1);
        // The probe timer restarts from now even if the probe cannot be sent at once.
        self.last_eliciting_sent = Some(now);
        Timeout::Probe {
            consecutive: self.pto_count(),
        }
    }

    /// Lets go of the room an idle connection does not need (spec §8, Liveness: a trim).
    pub(crate) fn trim(&mut self) {
        self.sent.trim();
        let oldest = self.sent.oldest().map(|p| p.number);
        if self.rare.as_deref().is_some_and(|r| r.is_empty(oldest)) {
            self.rare = None;
        }
    }

    /// Forgets every packet in flight (the connection is closing); returns them.
    pub(crate) fn drain(&mut self) -> Vec<SentPacket> {
        self.bytes_in_flight = 0;
        self.loss_time = None;
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.lazy.drain();
        }
        self.sent.drain()
    }
}

#[cfg(feature = "bench-internals")]
mod bench;
#[cfg(feature = "bench-internals")]
pub use bench::BenchSender;

#[cfg(test)]
mod tests;
