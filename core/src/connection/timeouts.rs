//! What a connection's timers do (spec/protocol.md §8: Acknowledgements, Loss and
//! retransmission, Liveness, Handshake, Close): each deadline computed from the connection's
//! state after every change, and each timer's action when it fires. The table they live in
//! is module `timers`'.
//!
//! Inputs: the time and the configuration. Outputs: the deadlines (`next_timeout`, for the
//! endpoint's timer index), and what a due timer does: an ACK or a probe queued, packets
//! declared lost, a handshake message resent, a keep-alive PING, the connection ended.
//! Every action checks its own deadline, so firing early does nothing.

use super::*;

impl Connection {
    /// The earliest timer and which it is (none once closed: `step` empties the table).
    pub(crate) fn next_timeout(&self) -> Option<(Instant, Timer)> {
        self.timers.next()
    }

    /// Rebuilds the timer table from the state it depends on.
    pub(crate) fn refresh_timers(&mut self, config: &Config) {
        self.replace_timers(self.wanted_timers(config));
    }

    /// The one way the timer table changes: whatever the endpoint filed of the old one is
    /// then stale ([`timers_filed`](Self::timers_filed)).
    pub(super) fn replace_timers(&mut self, timers: Timers) {
        self.timers = timers;
        self.timers_filed = false;
    }

    /// Whether the endpoint's timer index holds this connection's earliest deadline as the
    /// table stands: no rebuild since [`mark_timers_filed`](Self::mark_timers_filed).
    pub(crate) fn timers_filed(&self) -> bool {
        self.timers_filed
    }

    /// The endpoint filed [`next_timeout`](Self::next_timeout) in its index.
    pub(crate) fn mark_timers_filed(&mut self) {
        self.timers_filed = true;
    }

    /// The timer table as it stands (rebuilt by [`refresh_timers`](Self::refresh_timers)):
    /// for the endpoint's check that it files what the state gives, made where that check is.
    #[cfg(any(debug_assertions, feature = "fuzzing"))]
    pub(crate) fn timers(&self) -> &Timers {
        &self.timers
    }

    /// The timer table the connection's state gives. (Inlined: built where it is kept, not
    /// copied there, 16 instructions of every rebuild.)
    #[inline(always)]
    pub(crate) fn wanted_timers(&self, config: &Config) -> Timers {
        let mut t = Timers::default();
        // What would send something the amplification limit keeps back waits for room
        // (path.rs), in every state: an ACK, the pacer, a keep-alive.
        let can_send = !self.path.starved();
        match self.state {
            State::Handshaking => {
                let handshake = match &self.handshake {
                    HandshakeState::Client(c) => Some(c.deadline()),
                    HandshakeState::Server(s) => Some(s.resend.min(s.deadline)),
                    HandshakeState::Done => None,
                };
                t.set(Timer::Handshake, handshake);
                // The ACK of a HELLO rides only on an ACCEPT (handshaking.rs): none is due
                // once the server no longer answers (its handshake timeout passed) or while
                // the amplification limit keeps it back. A deadline set then
                // would stay in the past, the timer firing at every call and never clearing:
                // a duplicate HELLO after the answering time made a server spin on it for
                // ever (fuzz/findings/pair.unanswerable-hello-ack).
                let answering = match &self.handshake {
                    HandshakeState::Server(s) => self.clock < s.answer_until,
                    HandshakeState::Client(_) | HandshakeState::Done => true,
                };
                t.set(
                    Timer::Ack,
                    self.received.deadline().filter(|_| can_send && answering),
                );
            }
            State::Established | State::Lingering { .. } => {
                if let State::Lingering { until } = self.state {
                    t.set(Timer::Close, Some(until));
                }
                t.set(Timer::Ack, self.received.deadline().filter(|_| can_send));
                t.set(Timer::Recovery, self.recovery.deadline());
                let pings = self.ping_deadlines(config);
                let keep_alive = [pings.keep_alive, pings.waiting].into_iter().flatten().min();
                t.set(Timer::KeepAlive, keep_alive.filter(|_| can_send));
                t.set(
                    Timer::Idle,
                    Some(self.liveness.idle_deadline(self.idle_timeout(config))),
                );
                t.set(Timer::Pacing, self.gate.wake().filter(|_| can_send));
                t.set(Timer::Handshake, self.finish.as_ref().map(|f| f.at));
                t.set(Timer::Punch, self.punch_deadline());
                if self.state == State::Established {
                    t.set(Timer::Trim, self.liveness.trim_deadline());
                }
            }
            State::Closing { until } | State::Draining { until } => t.set(Timer::Close, Some(until)),
            State::Closed => {}
        }
        t
    }

    /// When a PING is due, as a keep-alive and as a waiting end's: neither while a packet
    /// waits for its acknowledgement. (One call for both: the timers are rebuilt after
    /// every change, and this asks the recovery state once.)
    #[inline(always)]
    fn ping_deadlines(&self, config: &Config) -> PingDeadlines {
        // While something waits for an acknowledgement the probe timer asks for one;
        // a keep-alive then would only push the probe timer back (RFC 9002 §6.2:
        // it runs from the last ack-eliciting packet), so loss detection never ran.
        if self.recovery.awaits_ack() {
            return PingDeadlines::default();
        }
        let pto = self.recovery.pto();
        let awaiting_receipt = self.receipts.awaiting();
        // A keep-alive comes at least twice per idle timeout (one that came later
        // could not keep anything alive), and, while a receipt is awaited, even if
        // keep-alives are off: the far end may take long to read the stream, and the
        // path must not be given up meanwhile.
        let half_idle = Duration::from_micros(self.idle_timeout(config).as_micros() / 2);
        let keep_alive = match (config.keep_alive, awaiting_receipt) {
            (Some(k), _) => Some(k.min(half_idle)),
            (None, true) => Some(half_idle),
            (None, false) => None,
        };
        // A waiting end is heard from (spec §8), whether or not keep-alives are on, while
        // it waits on the peer: for credit it reported being blocked by (a hint, checked
        // when it fires: `waits_on_peer`) or for a receipt. What the peer sent may have
        // gone to an address we no longer have (a NAT that rebound, a phone that left
        // Wi-Fi), and its probes follow it there: only a packet of ours shows it the new
        // one.
        let waiting = self.liveness.awaits_credit() || awaiting_receipt;
        PingDeadlines {
            keep_alive: keep_alive.map(|k| self.liveness.keep_alive_deadline(k, pto)),
            waiting: waiting.then(|| self.liveness.waiting_deadline(pto, config.max_probe_interval)),
        }
    }

    /// Whether we wait on the peer: for a receipt, or for credit (a stream with bytes its
    /// own credit stops, or the connection's credit spent with new bytes waiting).
    fn waits_on_peer(&self) -> bool {
        if self.receipts.awaiting() {
            return true;
        }
        let spent = self.send_credit.available() == 0;
        self.streams.values().any(|s| {
            s.half
                .send()
                .is_some_and(|send| send.blocked_limit().is_some() || (spent && send.has_new_data()))
        })
    }

    /// The smaller of both sides' non-zero idle timeouts.
    pub(super) fn idle_timeout(&self, config: &Config) -> Duration {
        match (config.idle_timeout, self.peer.idle_timeout) {
            (Duration::ZERO, p) => p,
            (o, Duration::ZERO) => o,
            (o, p) => o.min(p),
        }
        .max(Duration::from_millis(1))
    }

    /// Fires every timer due at `now`, and those that firing makes due: the last packet in
    /// flight declared lost lets the keep-alive run from a send long past, due at once. Left
    /// for the next call, it would have the driver called again at once, and the fuzzers'
    /// timer oracle (`fuzz::net::check_timers`) takes a deadline left in the past for a
    /// spin. Each timer fires at most once per call: the ACK and pacing timers stay due
    /// until `poll_transmit` sends, and a rule that failed to move its own deadline must not
    /// loop here.
    pub(crate) fn handle_timeout(&mut self, now: Instant, config: &Config) {
        self.clock = self.clock.max(now);
        let mut fired = [false; Timer::ALL.len()];
        loop {
            let mut more = false;
            for timer in Timer::ALL {
                // A timer that ended the connection (the idle timeout, a deadline) leaves
                // the others nothing to do: one due at the same instant, the close timer of
                // a linger say, would take a step the lifecycle has not for a closed
                // connection (tests/tests/closing.rs, found by the `piping` fuzz target).
                if self.state == State::Closed {
                    break;
                }
                if !fired[timer as usize] && self.timers.due(timer, now) {
                    fired[timer as usize] = true;
                    more = true;
                    self.on_timer(timer, now, config);
                }
            }
            self.refresh_timers(config);
            if !more {
                break;
            }
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, now: Instant, config: &Config) {
        match timer {
            Timer::Handshake => match &mut self.handshake {
                HandshakeState::Client(c) if c.timed_out(now) => {
                    let error = c.timeout_error();
                    self.fail_handshake(error)
                }
                // A server whose ACCEPT was never confirmed forgets the attempt quietly:
                // the application never heard of it.
                HandshakeState::Server(s) if s.deadline <= now => self.step(Step::Abandoned),
                HandshakeState::Server(s) if s.resend <= now => {
                    if now < s.answer_until {
                        s.send_accept = true;
                        s.resend = now + s.backoff.take();
                    } else {
                        s.resend = Instant::MAX;
                    }
                }
                _ => {}
            },
            // poll_transmit sends the ACK once its deadline has passed.
            Timer::Ack => {}
            Timer::Recovery => {
                // While the loss timer is set it hides the probe timer (RFC 9002 §6.2.1): a
                // probe period that ran out meanwhile is due the moment the losses are
                // declared, and fires now (as RFC 9002's timer, re-armed in the past, would
                // at once) instead of leaving the recovery deadline behind `now` for the
                // next call (fuzz/findings/pair.probe-behind-loss-timer).
                // The lazy timer, the loss timer and the probe timer may all be due: each
                // firing but the probe's leaves the next one's deadline, so at most three.
                for _ in 0..3 {
                    let fired = self.on_recovery_timeout(now, config);
                    if fired == RecoveryFired::Probe || self.recovery.deadline().is_none_or(|d| d > now) {
                        break;
                    }
                }
            }
            Timer::KeepAlive => {
                let pings = self.ping_deadlines(config);
                let waiting_due = pings.waiting.is_some_and(|t| t <= now);
                if waiting_due && self.waits_on_peer() {
                    // Also a keep-alive: the wait's PINGs go on doubling from its start.
                    self.control.push(Control::Ping);
                    self.liveness.waiting_ping_due(now);
                    return;
                }
                if waiting_due {
                    // The hint outlived the wait (the blocked stream was reset, say).
                    self.liveness.credit_came();
                }
                if pings.keep_alive.is_some_and(|t| t <= now) {
                    self.control.push(Control::Ping);
                    self.liveness.elicited(now);
                }
            }
            // The only rule that gives up on a peer (spec §8, Liveness): time without a word
            // from it, whatever the RTT or the number of probes sent meanwhile.
            Timer::Idle => {
                if now >= self.liveness.idle_deadline(self.idle_timeout(config)) {
                    // Unreachable if something was under way: what we sent waited for an
                    // acknowledgement (a lazy packet's too), or a stream the peer sends us
                    // waited for bytes.
                    let under_way = self.recovery.awaits_ack()
                        || self.recovery.lazy_in_flight() > 0
                        || self.receipts.awaiting()
                        || self
                            .streams
                            .values()
                            .any(|s| s.half.recv().is_some_and(RecvStream::awaits_data));
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
            Timer::Pacing => self.gate.woken(),
            // poll_punch sends what is due; a round over is judged here.
            Timer::Punch => self.on_punch_timer(now),
            Timer::Trim => self.trim(),
        }
    }

    /// Lets go of the memory only an active connection uses (spec §8, Liveness): its packet
    /// keys' expanded form (rebuilt by the next packet either way), the spare stream boxes,
    /// and the room of whatever queue, list or map is empty; and copies what the peer's
    /// streams hold as slices, which keep their receive buffers alive (spec §10.3, "Age").
    /// Nothing the peer or the application sees changes. Its own event queue's room goes
    /// once the endpoint has it back ([`trim_own_events`](Connection::trim_own_events)):
    /// the queue it has during this call is the one the endpoint lends for it.
    fn trim(&mut self) {
        self.unpin_peer_streams();
        if let Some(keys) = self.crypto.as_mut() {
            keys.release();
        }
        self.control.trim();
        self.streams.trim();
        self.recovery.trim();
        self.inbox.trim();
        self.receipts.trim();
        self.datagrams.trim();
        self.liveness.trimmed();
    }
}

/// What a firing of the recovery timer was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecoveryFired {
    /// The loss timer or the lazy timer: packets declared lost.
    Losses,
    /// The probe timer.
    Probe,
}

impl Connection {
    /// The recovery timer fired at `now` (its deadline is at or before `now`): the losses it
    /// found, or a probe.
    fn on_recovery_timeout(&mut self, now: Instant, config: &Config) -> RecoveryFired {
        match self.recovery.on_timeout(now) {
            Timeout::Lost(lost) => {
                self.on_lost(now, lost, super::loss::LostIn::Flight);
                self.check_retransmissions(now, config);
                RecoveryFired::Losses
            }
            Timeout::LazyLost(lost) => {
                self.on_lazy_lost(lost);
                RecoveryFired::Losses
            }
            Timeout::Probe { consecutive } => {
                self.stats.probes += 1;
                self.liveness.probe_timeout();
                self.probe_with_oldest();
                // A client whose NOISE_FINISH the server has not shown it read: the probes
                // are data the server cannot open without it, so it goes again with them.
                if let Some(finish) = self.finish.as_mut() {
                    finish.at = finish.at.min(now);
                }
                // (The silence was the old path's: the circuit's controller starts afresh.)
                let afresh = consecutive >= 2 && self.fall_back(now, config);
                // RFC 9002 §7.6: two probe timeouts in a row span (srtt + 4 rttvar +
                // max_ack_delay) × 3 with nothing acknowledged: persistent congestion.
                // Each later one in the same silence extends its recovery period over
                // the probes sent meanwhile, whose loss is the outage's, not news.
                if consecutive >= PERSISTENT_CONGESTION_PTOS && !afresh {
                    if consecutive == PERSISTENT_CONGESTION_PTOS {
                        self.stats.persistent_congestion += 1;
                    }
                    self.cc.on_persistent_congestion(now);
                }
                RecoveryFired::Probe
            }
        }
    }
}

/// When the next PINGs are due ([`Connection::ping_deadlines`]).
#[derive(Clone, Copy, Debug, Default)]
struct PingDeadlines {
    /// As a keep-alive (spec §8, Liveness).
    keep_alive: Option<Instant>,
    /// As a waiting end's (spec §8, "a waiting end is heard from").
    waiting: Option<Instant>,
}
