//! Hole punching coordinated over a relayed connection (spec/protocol.md §12.5; the scheme
//! of libp2p's DCUtR): the end that asked for the circuit sends its candidate addresses (its
//! public addresses as its peers saw them, `Endpoint::reflexive`) and times the answer; the
//! other end answers with its own; the first then says PUNCH_NOW and punches half a round
//! trip later, the moment the other end, punching as PUNCH_NOW arrives, starts too. Each
//! side's connection then punches (module `connection::punch`) and moves to the direct path
//! the first authenticated packet shows.
//!
//! A round that ends with the connection still on the circuit (a direct path that did not
//! open, or one that went silent and sent the connection back) is followed by another, at
//! once for the first [`QUICK_ROUNDS`] (unless the round ended in a chase of the peer's
//! ports, module `connection::punch`), then after a wait that doubles each round
//! ([`wait_before`]): the connection keeps trying to go direct for as long as it lives, at
//! a cost that shrinks with time, as NAT bindings and paths change.
//!
//! Inputs: the relayed connection's handshake ending, PUNCH_* frames, what peers said of
//! our address, time (a round's due moment, through the connection's punch timer). Outputs:
//! PUNCH_* frames, punch plans on connections. A peer can make us punch toward at most four
//! addresses, three times, per round, and a round only as often as [`wait_before`] allows
//! (half of it, for clocks that differ): the bound on what it can make us send to addresses
//! of its choosing (spec §12.5).

use super::*;
use crate::relay::circuit_of;
use crate::wire::{Candidates, RelayFrame, Side};

/// Rounds that follow each other at once, each when the one before failed.
pub(super) const QUICK_ROUNDS: u64 = 3;

/// The wait before the first round past [`QUICK_ROUNDS`]; each later one waits twice the
/// one before, up to [`MAX_ROUND_WAIT`].
const ROUND_WAIT: Duration = Duration::from_secs(2);

/// The longest wait between two rounds' starts.
const MAX_ROUND_WAIT: Duration = Duration::from_secs(300);

/// How long, at least, the initiator waits for the answer to a round past the first before
/// judging the round failed (three round trips if longer): the other end ignores a round
/// while it is still on the direct path the initiator just left (it falls back on its own
/// probe timeouts, a little later), and an unanswered round must not end the schedule.
const ANSWER_WAIT: Duration = Duration::from_secs(1);

/// How long after round `round - 1` began round `round` may begin.
pub(super) fn wait_before(round: u64) -> Duration {
    match round.checked_sub(QUICK_ROUNDS + 1) {
        None => Duration::ZERO,
        Some(doublings) => ROUND_WAIT
            .saturating_mul(1u64 << doublings.min(16))
            .min(MAX_ROUND_WAIT),
    }
}

/// Where a connection's hole punch stands.
#[derive(Clone, Copy, Debug)]
pub(super) struct Round {
    /// The round (from 1).
    number: u64,
    /// The initiator: when it sent its candidates, to time the answer.
    asked_at: Option<Instant>,
    /// The peer's candidates, once heard.
    peer: Option<Candidates>,
    /// When the round began here: the initiator sent its candidates, the other end heard
    /// them. The next round is timed from it ([`wait_before`]).
    started: Instant,
}

impl Endpoint {
    /// A connection's handshake ended: if it runs through a circuit we asked for, it starts a
    /// punch (the end that asked leads).
    pub(super) fn start_punch(&mut self, conn: ConnectionHandle) {
        let Some(c) = self.lookup(conn) else {
            return;
        };
        if circuit_of(c.remote).is_none() || c.side != Side::Client || !c.relay_on() {
            return;
        }
        let now = c.clock();
        let ours = self.candidates();
        if ours.as_slice().is_empty() {
            // No peer told us our public address yet (the relay's report may still be on
            // its way, or lost and coming again): the punch waits for one, as round 0
            // ([`address_heard`](Self::address_heard)).
            self.punches.insert(
                conn,
                Round {
                    number: 0,
                    asked_at: None,
                    peer: None,
                    started: now,
                },
            );
            return;
        }
        let round = Round {
            number: 1,
            asked_at: Some(now),
            peer: None,
            started: now,
        };
        let frame = RelayFrame::Candidates {
            round: 1,
            addresses: Box::new(ours),
        };
        if self.conn(conn).and_then(|c| c.send_relay(frame)).is_ok() {
            self.punches.insert(conn, round);
            self.touch(conn.index());
        }
    }

    /// A round of `conn`'s punching ended with it still on the circuit (or its direct path
    /// failed and it went back): the end that leads starts the next, with fresh candidates,
    /// when [`wait_before`] allows: now, or at a moment the connection's punch timer is set
    /// to, which calls this again.
    pub(super) fn retry_punch(&mut self, conn: ConnectionHandle) {
        let Some(round) = self.punches.get(&conn).copied() else {
            return;
        };
        let Some(c) = self.lookup(conn) else {
            return;
        };
        if c.side != Side::Client || circuit_of(c.remote).is_none() {
            return;
        }
        let now = c.clock();
        // A chase ends the quick rounds: what made it (both NATs mapping per destination)
        // is not a punch lost or mistimed, and meets the next round at once as surely.
        let number = if c.punch_chased() {
            (round.number + 1).max(QUICK_ROUNDS + 1)
        } else {
            round.number + 1
        };
        let due = round.started + wait_before(number);
        if due > now {
            if let Ok(c) = self.conn(conn) {
                c.wait_punch(due);
            }
            self.touch(conn.index());
            return;
        }
        let frame = RelayFrame::Candidates {
            round: number,
            addresses: Box::new(self.candidates()),
        };
        let Ok(c) = self.conn(conn) else {
            return;
        };
        if c.send_relay(frame).is_ok() {
            c.wait_punch(now + ANSWER_WAIT.max(c.rtt().saturating_mul(3)));
            self.punches.insert(
                conn,
                Round {
                    number,
                    asked_at: Some(now),
                    peer: None,
                    started: now,
                },
            );
            self.touch(conn.index());
        }
    }

    /// A peer told us our address: the punches that waited for one start.
    pub(super) fn address_heard(&mut self) {
        let waiting: Vec<ConnectionHandle> = self
            .punches
            .iter()
            .filter(|(_, r)| r.number == 0)
            .map(|(&h, _)| h)
            .collect();
        for h in waiting {
            self.start_punch(h);
        }
    }

    /// Our candidates: where peers saw us.
    fn candidates(&self) -> Candidates {
        Candidates::new(&self.reflexive.summary().addresses)
    }

    /// The peer's PUNCH_CANDIDATES or PUNCH_NOW on `conn`.
    pub(super) fn on_punch_frame(&mut self, now: Instant, conn: ConnectionHandle, frame: RelayFrame) {
        let Some(c) = self.lookup(conn) else {
            return;
        };
        if circuit_of(c.remote).is_none() {
            // Direct already: nothing to punch.
            return;
        }
        let side = c.side;
        // The peer's candidates, without circuit addresses (ours alone to give).
        let direct = |a: &Candidates| {
            let list: Vec<SocketAddr> = a
                .as_slice()
                .iter()
                .copied()
                .filter(|x| circuit_of(*x).is_none())
                .collect();
            Candidates::new(&list)
        };
        match (frame, side) {
            (RelayFrame::Candidates { round, addresses }, Side::Server) => {
                // The other end leads: answer with ours, and wait for PUNCH_NOW. A round
                // number that does not grow, or a round sooner than half its wait after the
                // last one began here, is ignored: the budget of punches a peer can ask for.
                let early = |r: &Round| {
                    r.number >= round
                        || now < r.started + Duration::from_micros(wait_before(round).as_micros() / 2)
                };
                if round == 0 || self.punches.get(&conn).is_some_and(early) {
                    return;
                }
                self.punches.insert(
                    conn,
                    Round {
                        number: round,
                        asked_at: None,
                        peer: Some(direct(&addresses)),
                        started: now,
                    },
                );
                let addresses = Box::new(self.candidates());
                let _ = self
                    .conn(conn)
                    .and_then(|c| c.send_relay(RelayFrame::Candidates { round, addresses }));
            }
            (RelayFrame::Candidates { round, addresses }, Side::Client) => {
                let Some(r) = self
                    .punches
                    .get_mut(&conn)
                    .filter(|r| r.number == round && r.peer.is_none())
                else {
                    return;
                };
                let peer = direct(&addresses);
                r.peer = Some(peer);
                let rtt = now.saturating_duration_since(r.asked_at.unwrap_or(now));
                let half = Duration::from_micros(rtt.as_micros() / 2);
                let _ = self
                    .conn(conn)
                    .and_then(|c| c.send_relay(RelayFrame::PunchNow { round }));
                if let Ok(c) = self.conn(conn) {
                    c.plan_punch(now + half, peer.as_slice());
                }
            }
            (RelayFrame::PunchNow { round }, Side::Server) => {
                // Taken: a round punches once, however often PUNCH_NOW comes.
                let Some(peer) = self
                    .punches
                    .get_mut(&conn)
                    .filter(|r| r.number == round)
                    .and_then(|r| r.peer.take())
                else {
                    return;
                };
                if let Ok(c) = self.conn(conn) {
                    c.plan_punch(now, peer.as_slice());
                }
            }
            _ => {}
        }
        self.touch(conn.index());
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::Net;
    use super::*;
    use crate::{Path, RelayConfig};
    use alloc::vec;

    /// A relay (0) and peers A (1) and B (2) whose direct way is dark: A reaches B through
    /// the relay. A's connection, and B's.
    fn relayed() -> (Net, ConnectionHandle, ConnectionHandle) {
        let relay = Config {
            relay: Some(RelayConfig::default()),
            ..Config::default()
        };
        let mut net = Net::new(vec![relay, Config::default(), Config::default()]);
        net.dark = vec![(1, 2), (2, 1)];
        let a_r = net.eps[1].connect(net.now, net.addrs[0]).unwrap();
        let b_r = net.eps[2].connect(net.now, net.addrs[0]).unwrap();
        net.run_until(net.now + Duration::from_secs(1));
        net.eps[2].reserve(b_r).unwrap();
        net.run_until(net.now + Duration::from_secs(1));
        let key = net.eps[2].public_key();
        let a = net.eps[1].connect_via(net.now, a_r, key).unwrap();
        net.run_until(net.now + Duration::from_millis(50));
        let a_key = net.eps[1].public_key();
        let b = net.eps[2]
            .connections()
            .find(|&c| net.eps[2].peer_key(c) == Some(a_key))
            .expect("B's end of the relayed connection");
        (net, a, b)
    }

    /// Runs the network for `d`, the clock ending `d` later (the harness's stops at the
    /// last deadline it met).
    fn wait(net: &mut Net, d: Duration) {
        let until = net.now + d;
        net.run_until(until);
        net.now = until;
    }

    fn punches(net: &Net, i: usize, conn: ConnectionHandle) -> u64 {
        net.eps[i].connection_stats(conn).unwrap().punches_sent
    }

    /// A connection whose direct way stays dark keeps trying, ever less often: rounds 1 to
    /// 3 at once, then 2 s, 4 s, 8 s, … (at most 300 s) apart. In 20 minutes that is 13
    /// rounds, each punching B's one candidate three times, at both ends.
    #[test]
    fn rounds_follow_at_once_then_ever_further_apart() {
        let (mut net, a, b) = relayed();
        net.run_until(net.now + Duration::from_millis(1500));
        assert_eq!(
            (punches(&net, 1, a), punches(&net, 2, b)),
            (9, 9),
            "rounds 1 to 3"
        );
        net.run_until(net.now + Duration::from_secs(1200));
        // Round n > 3 starts 2^(n-3) s after the one before, up to 300 s: rounds 4 to 11
        // start 2+4+...+256 = 510 s in, 12 and 13 at 810 and 1110 s.
        assert_eq!((punches(&net, 1, a), punches(&net, 2, b)), (39, 39));
        assert!(matches!(net.eps[1].path(a), Some(Path::Relayed { .. })));
    }

    /// A peer that asks for rounds faster than the schedule is ignored: a round that does
    /// not grow, a PUNCH_NOW again for a round that punched, or a round sooner than half its
    /// wait after the last one began, makes no punch; one that waited long enough makes its
    /// three punches toward the one address.
    #[test]
    fn a_peer_gets_rounds_of_punches_only_as_often_as_the_schedule_allows() {
        let (mut net, _, b) = relayed();
        wait(&mut net, Duration::from_millis(500));
        let before = punches(&net, 2, b);
        assert_eq!(before, 9, "B punched in A's rounds 1 to 3");
        let stranger = Candidates::new(&[SocketAddr::new([192, 0, 2, 9].into(), 9)]);
        let ask = |net: &mut Net, round| {
            let now = net.now;
            let frames = [
                RelayFrame::Candidates {
                    round,
                    addresses: Box::new(stranger),
                },
                RelayFrame::PunchNow { round },
            ];
            for frame in frames {
                net.eps[2].on_punch_frame(now, b, frame);
            }
            wait(net, Duration::from_millis(200));
        };
        ask(&mut net, 3);
        ask(&mut net, 4);
        assert_eq!(punches(&net, 2, b), before, "an old round, and one too soon");
        // Round 4 may come once half its 2 s wait has passed since round 3 began here
        // (within the first 500 ms; 1.6 s are gone now, A's own round 4 is 2 s after).
        wait(&mut net, Duration::from_millis(700));
        ask(&mut net, 4);
        assert_eq!(punches(&net, 2, b), before + 3);
        ask(&mut net, 5);
        assert_eq!(punches(&net, 2, b), before + 3, "round 5 waits 2 s from round 4");
    }
}
