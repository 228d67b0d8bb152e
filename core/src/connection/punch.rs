//! Hole punching and the way back (spec/protocol.md §12.5), on a connection that runs
//! through a relay's circuit: at the moment the endpoint set (coordinated with the peer over
//! this very connection, module `endpoint::punching`), a PING in a packet of its own goes to
//! each of the peer's candidate addresses, a few times; the NATs on both sides see outbound
//! datagrams toward each other and let the other side's in. The first authenticated packet
//! that comes straight from the peer moves the connection to it (the receive path follows
//! the newest packet's address, validated before trusted, spec §10.2): the same connection,
//! every stream as it was. If the direct path then goes silent (two probe timeouts in a
//! row), the connection goes back to the circuit, which it keeps as its fallback. So it
//! does if the peer's direct address keeps moving, a few moves in quick succession: NATs on
//! both sides that map per destination, each end's reply to the other's new port leaving
//! from a new port of its own, which no direct path survives; then it stays on the circuit
//! until the next round. And so it does, at once, when the peer went back to the circuit
//! after hearing us directly (`peer_went_back`): the two ends follow each other back.
//!
//! An owned part of the connection (boxed, made when a punch is planned). Inputs: the plan
//! (moment, candidates), time. Outputs: punch datagrams for `poll_transmit`'s caller, each
//! with its own destination, and the punch timer. Punch packets are not tracked by
//! recovery: their loss is expected and says nothing of congestion.

use super::*;
use crate::wire::MAX_CANDIDATES;

/// Times each candidate is sent a punch.
const TRIES: u8 = 3;

/// The gap between tries: long enough that the other side's first try has opened its NAT
/// by the second (half a round trip apart at worst), short enough to finish within a few
/// round trips.
const MIN_GAP: Duration = Duration::from_millis(20);

/// Moves of the peer's direct address, each within [`CHASE_GAP`] of the last, that end
/// the direct path.
const CHASE_MOVES: u8 = 3;

/// Moves closer together than this (or two smoothed RTTs, if longer) are quick: a NAT
/// rebinding comes once in minutes, a chase once a round trip.
const CHASE_GAP: Duration = Duration::from_secs(2);

/// What a packet from a new address of the peer does to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Follow {
    /// Moves there (validated before trusted, spec §10.2).
    Move,
    /// Leaves the connection where it is: back on the circuit after a chase.
    Stay,
    /// Takes the connection back to the circuit: the peer's address is a chase.
    FallBack,
}

/// The peer's moves from one direct address to another in this round.
#[derive(Debug, Default)]
struct Chase {
    /// When the last one came.
    last: Option<Instant>,
    /// Quick ones in a row.
    quick: u8,
    /// They made the connection go back to the circuit: no direct address is followed
    /// again this round.
    given_up: bool,
}

/// A connection's punching, and its way back.
#[derive(Debug)]
pub(super) struct Punch {
    /// The relay's circuit the connection ran through when it punched: its way back.
    fallback: SocketAddr,
    /// The punches still to send.
    plan: Option<Plan>,
    /// After the last burst: when to judge the round (a gap later, so that the peer's last
    /// punches have had time to arrive).
    verdict: Option<Instant>,
    /// The round ended with the connection still on the circuit: told to the endpoint once
    /// (`take_failed_punch`), which may try another round.
    failed: bool,
    /// The peer's moves on the direct path.
    chase: Chase,
    /// The first packet number the connection sent on the direct path it runs on now, if
    /// it does: a packet through the circuit that acknowledges it or a later one comes from
    /// a peer that heard us directly and went back to the circuit (`peer_went_back`).
    direct_from: Option<u64>,
}

/// Punches still to send.
#[derive(Debug)]
struct Plan {
    targets: SmallVec<[SocketAddr; MAX_CANDIDATES]>,
    /// When the next burst (one datagram per target) goes.
    next: Instant,
    /// The next target of the burst under way.
    cursor: usize,
    /// Bursts left.
    left: u8,
    gap: Duration,
}

impl Connection {
    /// Punches toward `targets` from `at` on (the peer's candidates; at most
    /// `MAX_CANDIDATES`). The circuit the connection runs through now is its way back.
    pub(crate) fn plan_punch(&mut self, at: Instant, targets: &[SocketAddr]) {
        if targets.is_empty() {
            return;
        }
        let gap = self.recovery.rtt().smoothed().max(MIN_GAP);
        self.punch = Some(Box::new(Punch {
            fallback: self.remote,
            verdict: None,
            failed: false,
            chase: Chase::default(),
            direct_from: None,
            plan: Some(Plan {
                targets: targets.iter().copied().take(MAX_CANDIDATES).collect(),
                next: at,
                cursor: 0,
                left: TRIES,
                gap,
            }),
        }));
    }

    /// When the next punch goes, or the round is judged.
    pub(super) fn punch_deadline(&self) -> Option<Instant> {
        let punch = self.punch.as_ref()?;
        punch.plan.as_ref().map(|p| p.next).or(punch.verdict)
    }

    /// The punch timer fired: a round whose verdict is due failed if the connection is still
    /// on the circuit.
    pub(super) fn on_punch_timer(&mut self, now: Instant) {
        let on_circuit = self.punch.as_ref().is_some_and(|p| p.fallback == self.remote);
        if let Some(punch) = self
            .punch
            .as_mut()
            .filter(|p| p.verdict.is_some_and(|v| v <= now))
        {
            punch.verdict = None;
            punch.failed = on_circuit;
        }
    }

    /// No punching until `at`, when the punch timer tells the endpoint (as a failed round
    /// does) that the next round is due, if the connection is still on the circuit.
    pub(crate) fn wait_punch(&mut self, at: Instant) {
        if let Some(punch) = self.punch.as_mut() {
            punch.plan = None;
            punch.verdict = Some(at);
            punch.failed = false;
        }
    }

    /// Whether a round of punching ended with the connection still relayed, not told yet.
    pub(crate) fn has_failed_punch(&self) -> bool {
        self.punch.as_ref().is_some_and(|p| p.failed)
    }

    /// Whether a round of punching ended with the connection still relayed (told once).
    pub(crate) fn take_failed_punch(&mut self) -> bool {
        self.punch
            .as_mut()
            .is_some_and(|p| core::mem::take(&mut p.failed))
    }

    /// Whether this round's punch ended in a chase of the peer's ports ([`follow`]): NATs
    /// on both sides that map per destination, which another round at once would only meet
    /// again.
    ///
    /// [`follow`]: Self::follow
    pub(crate) fn punch_chased(&self) -> bool {
        self.punch.as_ref().is_some_and(|p| p.chase.given_up)
    }

    /// Whether a punch datagram is due at `now`: [`poll_punch`](Self::poll_punch) sends it,
    /// or drops the plan of a connection that moved off the circuit.
    pub(crate) fn punch_due(&self, now: Instant) -> bool {
        self.punch
            .as_ref()
            .and_then(|p| p.plan.as_ref())
            .is_some_and(|plan| plan.next <= now)
    }

    /// The next punch datagram due at `now`, written into `buf`: where it goes, and its
    /// length. A connection that moved off the circuit punches no more.
    pub(crate) fn poll_punch(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        if !self.punch_due(now) {
            return None;
        }
        let punch = self.punch.as_ref()?;
        let plan = punch.plan.as_ref()?;
        if self.remote != punch.fallback || !self.is_established() {
            let punch = self.punch.as_mut()?;
            punch.plan = None;
            punch.verdict = None;
            return None;
        }
        // `cursor` stays below the targets' count (reset at each burst's end).
        let to = *plan.targets.get(plan.cursor)?;
        let header = self.header(now, PacketKind::Data);
        let mut w = PacketWriter::new(buf.get_mut(..MIN_DATAGRAM_SIZE.min(buf.len()))?, &header).ok()?;
        w.push(&Frame::Ping).ok()?;
        let len = seal(&mut self.crypto, w, header.number)?;
        self.recovery.take_pn();
        self.stats.punches_sent += 1;
        let punch = self.punch.as_mut()?;
        let plan = punch.plan.as_mut()?;
        plan.cursor += 1;
        if plan.cursor == plan.targets.len() {
            plan.cursor = 0;
            plan.left -= 1;
            plan.next = now + plan.gap;
            if plan.left == 0 {
                punch.verdict = Some(plan.next);
                punch.plan = None;
            }
        }
        Some((to, len))
    }

    /// Whether a packet from `from` leaves the connection where it is: it came through the
    /// circuit this connection punched its way off. Packets the peer sent through the relay
    /// before it moved too arrive after its first direct ones; following them would send
    /// the connection back and forth while both ends switch. The way back is the probe
    /// timeouts' (`fall_back`), on each side: a packet that stays direct makes the receive
    /// path PING the direct path if nothing of ours is in flight, so that an end that only
    /// receives has probe timeouts to run.
    pub(super) fn stays_direct(&self, from: SocketAddr) -> bool {
        self.punch
            .as_ref()
            .is_some_and(|p| p.fallback == from && self.remote != from)
    }

    /// What the newest packet yet, come from another address than the peer's (and not the
    /// circuit we left: `stays_direct` keeps those), does to the connection at `now`.
    /// Without a punch, and onto the direct path, it moves there. From one direct address
    /// to another it moves there too, unless it is the [`CHASE_MOVES`]th quick move in a
    /// row: two NATs that map per destination, each end's answer to the other's new port
    /// leaving from a new port of its own, so that each move makes the next (spec §12.5). No
    /// direct path lasts between those: back to the circuit, where the connection stays,
    /// whatever comes straight from the peer, until the next round's punch.
    pub(super) fn follow(&mut self, now: Instant) -> Follow {
        let gap = CHASE_GAP.max(self.recovery.rtt().smoothed().saturating_mul(2));
        let remote = self.remote;
        let next_pn = self.recovery.next_pn();
        let Some(punch) = self.punch.as_mut() else {
            return Follow::Move;
        };
        let chase = &mut punch.chase;
        if remote == punch.fallback {
            if chase.given_up {
                return Follow::Stay;
            }
            punch.direct_from = Some(next_pn);
            return Follow::Move;
        }
        let quick = chase.last.is_some_and(|t| now.saturating_duration_since(t) < gap);
        chase.quick = if quick { chase.quick.saturating_add(1) } else { 1 };
        chase.last = Some(now);
        if chase.quick >= CHASE_MOVES {
            chase.given_up = true;
            return Follow::FallBack;
        }
        Follow::Move
    }

    /// Whether the peer went back to the circuit after hearing us on the direct path: the
    /// newest packet yet came through the circuit (`stays_direct`), and acknowledgements
    /// have reached a packet we sent on the direct path. It gave up a chase of our ports, or
    /// its own packets went unanswered (its direct path went dark one way, or its NAT
    /// mapping moved): either way it sends and listens through the circuit now, and, if
    /// ours still reach it directly, answers them there, so our probe timeouts would never
    /// take us back (we stayed direct until our way to it went dark, 30 s in weir-sim;
    /// for good behind a NAT that refreshes its mappings on inbound traffic). A peer that
    /// has not moved yet has heard nothing of ours on the direct path: it moves when it
    /// does (spec §12.5).
    pub(super) fn peer_went_back(&self) -> bool {
        let first = self.punch.as_ref().and_then(|p| p.direct_from);
        first.is_some_and(|first| self.recovery.largest_acked().is_some_and(|l| l >= first))
    }

    /// Two probe timeouts in a row on a path that is not the circuit: it went silent (a NAT
    /// mapping expired, the peer's network changed). Back to the circuit, and a PING there
    /// so that the peer follows; the endpoint hears the punch failed, and tries again when
    /// its rounds' schedule allows (module `endpoint::punching`). The circuit is a new path
    /// for congestion control and the RTT estimate (spec §8, A new path), unless only the
    /// port differs. What was in flight went down the dark path (lazy packets too): lost,
    /// and sent again through the circuit at once, not after the peer's acknowledgements
    /// of later packets show it (they would have to come through the circuit, from a peer
    /// that may still be on the direct path itself). Whether they started over.
    pub(super) fn fall_back(&mut self, now: Instant, config: &Config) -> bool {
        let Some(punch) = self.punch.as_mut().filter(|p| p.fallback != self.remote) else {
            return false;
        };
        let circuit = punch.fallback;
        punch.failed = true;
        let change = Move::between(self.remote, circuit);
        self.remote = circuit;
        // The circuit carried the connection before: proven.
        self.path.proven();
        self.stats.fallbacks += 1;
        let afresh = change == Move::Address;
        if afresh {
            self.new_path(config, self.recovery.next_pn());
        }
        let lost = self.recovery.abandon_in_flight();
        self.on_lost(now, lost, super::loss::LostIn::Flight);
        // And the lazy packets (receipts) with them: their timer counts from the dark
        // path's probe period, and the circuit's, from the initial RTT, can be far shorter,
        // which left it in the past once the probe timer that led here had fired
        // (fuzz/findings/relay.lazy-timer-behind-a-fallback).
        let lazy = self.recovery.give_up_lazy();
        self.on_lazy_lost(lazy);
        self.control.push(Control::Ping);
        self.path_changed();
        afresh
    }

    /// The circuit at `circuit` ended. If it was this connection's way back (the
    /// connection runs direct), there is none any more: a dark direct path is then waited
    /// out on its probe timeouts, or left by the idle timeout, not left for an address no
    /// datagram can take (spec §12.5). (Nothing could go there, and what fell due to send,
    /// an acknowledgement, stayed due: the driver was asked to handle it at one instant again
    /// and again.) Whether it was this connection's way back.
    pub(crate) fn way_back_ended(&mut self, circuit: SocketAddr) -> bool {
        let ended = self.remote != circuit && self.punch.as_ref().is_some_and(|p| p.fallback == circuit);
        if ended {
            self.punch = None;
        }
        ended
    }

    /// The connection's path changed: the application hears of it (the endpoint fills in
    /// the path, which only it can name: a circuit's relay).
    pub(super) fn path_changed(&mut self) {
        self.events.push_back(Event::PathChanged {
            conn: self.handle,
            path: crate::event::Path::Direct(self.remote),
        });
    }
}
