//! A connection's lifecycle (spec §7 and §8, Liveness and close): its states and every
//! transition between them, declared as a table ([`TRANSITIONS`]) rather than written as
//! assignments where they happen.
//!
//! Input: a [`Step`], what happened (the handshake was confirmed, the application closed,
//! the peer's CLOSE arrived, a deadline passed, ...). Output: the next [`State`]. The
//! connection does what each step means (sends CLOSE, drains recovery, reports events);
//! this module only decides which state follows, and `spec/state-machines.md` is the same
//! table, checked against this one by a test.

use crate::time::Instant;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// The handshake is under way.
    Handshaking,
    /// Data flows both ways.
    Established,
    /// The application closed; until everything it wrote and every receipt we owe is
    /// acknowledged, or the deadline, the connection goes on sending and acknowledging
    /// (spec §8, Liveness and close). Then CLOSE.
    Lingering { until: Instant },
    /// We closed: CLOSE sent (again on each packet received), until the deadline.
    Closing { until: Instant },
    /// The peer closed: send nothing, until the deadline.
    Draining { until: Instant },
    /// Gone; the endpoint frees it.
    Closed,
}

/// A state's name, without its deadline: the rows of [`TRANSITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Handshaking,
    Established,
    Lingering,
    Closing,
    Draining,
    Closed,
}

/// What moves a connection on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The handshake completed: the client read the server's answer, or the server the
    /// client's first data packet or NOISE_FINISH.
    Confirmed,
    /// The handshake failed or timed out, or a server forgot an attempt never confirmed.
    Abandoned,
    /// The application closed, with this deadline for what is still unacknowledged.
    AppClosed { until: Instant },
    /// We send CLOSE (a protocol violation, a refusal, or the end of a linger) and answer
    /// with it until the deadline.
    SendClose { until: Instant },
    /// The peer's CLOSE arrived: nothing more is sent until the deadline.
    PeerClosed { until: Instant },
    /// Gone without a word: the idle timeout, a stateless reset, the endpoint dropping it.
    Silent,
    /// The closing or draining deadline passed.
    Deadline,
}

/// A step's name, without its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StepKind {
    Confirmed,
    Abandoned,
    AppClosed,
    SendClose,
    PeerClosed,
    Silent,
    Deadline,
}

/// Every transition: from, step, to. A step not listed for a state leaves it as it is.
pub(super) const TRANSITIONS: &[(Phase, StepKind, Phase)] = &[
    (Phase::Handshaking, StepKind::Confirmed, Phase::Established),
    (Phase::Handshaking, StepKind::Abandoned, Phase::Closed),
    // Nothing can be said to the peer before the handshake is done.
    (Phase::Handshaking, StepKind::AppClosed, Phase::Closed),
    (Phase::Handshaking, StepKind::SendClose, Phase::Closing),
    (Phase::Handshaking, StepKind::PeerClosed, Phase::Draining),
    (Phase::Handshaking, StepKind::Silent, Phase::Closed),
    (Phase::Established, StepKind::AppClosed, Phase::Lingering),
    (Phase::Established, StepKind::SendClose, Phase::Closing),
    (Phase::Established, StepKind::PeerClosed, Phase::Draining),
    (Phase::Established, StepKind::Silent, Phase::Closed),
    (Phase::Lingering, StepKind::SendClose, Phase::Closing),
    (Phase::Lingering, StepKind::PeerClosed, Phase::Draining),
    (Phase::Lingering, StepKind::Silent, Phase::Closed),
    (Phase::Closing, StepKind::SendClose, Phase::Closing),
    (Phase::Closing, StepKind::PeerClosed, Phase::Draining),
    (Phase::Closing, StepKind::Silent, Phase::Closed),
    (Phase::Closing, StepKind::Deadline, Phase::Closed),
    (Phase::Draining, StepKind::Silent, Phase::Closed),
    (Phase::Draining, StepKind::Deadline, Phase::Closed),
];

impl State {
    pub(super) fn phase(self) -> Phase {
        match self {
            State::Handshaking => Phase::Handshaking,
            State::Established => Phase::Established,
            State::Lingering { .. } => Phase::Lingering,
            State::Closing { .. } => Phase::Closing,
            State::Draining { .. } => Phase::Draining,
            State::Closed => Phase::Closed,
        }
    }

    /// The state after `step`, by [`TRANSITIONS`]; `None` if the table has no such
    /// transition (the state stays).
    pub(super) fn after(self, step: Step) -> Option<State> {
        let to = crate::transitions::next(TRANSITIONS, self.phase(), step.kind())?;
        Some(match (to, step) {
            (Phase::Handshaking, _) => State::Handshaking,
            (Phase::Established, _) => State::Established,
            (Phase::Closed, _) => State::Closed,
            (Phase::Lingering, Step::AppClosed { until }) => State::Lingering { until },
            (Phase::Closing, Step::SendClose { until }) => State::Closing { until },
            (Phase::Draining, Step::PeerClosed { until }) => State::Draining { until },
            // A deadline for a state that needs one comes only with the steps above.
            (Phase::Lingering | Phase::Closing | Phase::Draining, _) => return None,
        })
    }
}

impl Step {
    pub(super) fn kind(self) -> StepKind {
        match self {
            Step::Confirmed => StepKind::Confirmed,
            Step::Abandoned => StepKind::Abandoned,
            Step::AppClosed { .. } => StepKind::AppClosed,
            Step::SendClose { .. } => StepKind::SendClose,
            Step::PeerClosed { .. } => StepKind::PeerClosed,
            Step::Silent => StepKind::Silent,
            Step::Deadline => StepKind::Deadline,
        }
    }
}

/// The table as `spec/state-machines.md` shows it.
#[cfg(test)]
pub(crate) fn spec_section() -> alloc::string::String {
    crate::transitions::table_section(TRANSITIONS, "Handshaking", &["Closed"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Instant = Instant::ZERO;

    #[test]
    fn every_row_is_reachable_from_a_state_of_its_phase_and_lands_on_its_target() {
        let of = |p: Phase| match p {
            Phase::Handshaking => State::Handshaking,
            Phase::Established => State::Established,
            Phase::Lingering => State::Lingering { until: T },
            Phase::Closing => State::Closing { until: T },
            Phase::Draining => State::Draining { until: T },
            Phase::Closed => State::Closed,
        };
        let step = |k: StepKind| match k {
            StepKind::Confirmed => Step::Confirmed,
            StepKind::Abandoned => Step::Abandoned,
            StepKind::AppClosed => Step::AppClosed { until: T },
            StepKind::SendClose => Step::SendClose { until: T },
            StepKind::PeerClosed => Step::PeerClosed { until: T },
            StepKind::Silent => Step::Silent,
            StepKind::Deadline => Step::Deadline,
        };
        for &(from, kind, to) in TRANSITIONS {
            let next = of(from).after(step(kind));
            assert_eq!(next.map(State::phase), Some(to), "{from:?} --{kind:?}-->");
        }
        // Closed is final; a deadline does not end a linger (the connection sends CLOSE).
        assert_eq!(State::Closed.after(Step::Confirmed), None);
        assert_eq!(State::Closed.after(Step::Silent), None);
        assert_eq!(State::Lingering { until: T }.after(Step::Deadline), None);
        // The deadline travels with the step.
        let later = Instant::from_micros(7);
        assert_eq!(
            State::Established.after(Step::PeerClosed { until: later }),
            Some(State::Draining { until: later })
        );
    }

    #[test]
    fn the_spec_shows_this_table() {
        crate::transitions::assert_spec_shows("lifecycle", &spec_section());
    }

    #[test]
    fn each_state_and_step_appears_at_most_once() {
        for (i, a) in TRANSITIONS.iter().enumerate() {
            for b in &TRANSITIONS[i + 1..] {
                assert!((a.0, a.1) != (b.0, b.1), "{a:?} and {b:?}");
            }
        }
    }
}
