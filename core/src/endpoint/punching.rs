//! Hole punching coordinated over a relayed connection (spec/protocol.md §12.5; the scheme
//! of libp2p's DCUtR): the end that asked for the circuit sends its candidate addresses (its
//! public addresses as its peers saw them, `Endpoint::reflexive`) and times the answer; the
//! other end answers with its own; the first then says PUNCH_NOW and punches half a round
//! trip later, the moment the other end, punching as PUNCH_NOW arrives, starts too. Each
//! side's connection then punches (module `connection::punch`) and moves to the direct path
//! the first authenticated packet shows.
//!
//! Inputs: the relayed connection's handshake ending, PUNCH_* frames, what peers said of
//! our address. Outputs: PUNCH_* frames, punch plans on connections. A peer can make us
//! punch at most [`MAX_ROUNDS`] times per connection, each toward at most four addresses
//! three times: the bound on what it can make us send to addresses of its choosing.

use super::*;
use crate::relay::circuit_of;
use crate::wire::{Candidates, RelayFrame, Side};

/// Rounds one connection punches, at most.
pub(super) const MAX_ROUNDS: u64 = 3;

/// Where a connection's hole punch stands.
#[derive(Clone, Copy, Debug)]
pub(super) struct Round {
    /// The round (from 1).
    number: u64,
    /// The initiator: when it sent its candidates, to time the answer.
    asked_at: Option<Instant>,
    /// The peer's candidates, once heard.
    peer: Option<Candidates>,
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
            // No peer told us our public address: nothing to offer.
            return;
        }
        let round = Round {
            number: 1,
            asked_at: Some(now),
            peer: None,
        };
        let frame = RelayFrame::Candidates {
            round: 1,
            addresses: ours,
        };
        if self.conn(conn).and_then(|c| c.send_relay(frame)).is_ok() {
            self.punches.insert(conn, round);
            self.touch(conn.index());
        }
    }

    /// A round of `conn`'s punching ended with it still on the circuit: the end that leads
    /// starts the next, with fresh candidates, up to [`MAX_ROUNDS`].
    pub(super) fn retry_punch(&mut self, conn: ConnectionHandle) {
        let Some(round) = self.punches.get(&conn).copied() else {
            return;
        };
        let Some(c) = self.lookup(conn) else {
            return;
        };
        if c.side != Side::Client || round.number >= MAX_ROUNDS || circuit_of(c.remote).is_none() {
            return;
        }
        let now = c.clock();
        let number = round.number + 1;
        let frame = RelayFrame::Candidates {
            round: number,
            addresses: self.candidates(),
        };
        if self.conn(conn).and_then(|c| c.send_relay(frame)).is_ok() {
            self.punches.insert(
                conn,
                Round {
                    number,
                    asked_at: Some(now),
                    peer: None,
                },
            );
            self.touch(conn.index());
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
        let direct = |a: Candidates| {
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
                // The other end leads: answer with ours, and wait for PUNCH_NOW.
                if round == 0
                    || round > MAX_ROUNDS
                    || self.punches.get(&conn).is_some_and(|r| r.number >= round)
                {
                    return;
                }
                self.punches.insert(
                    conn,
                    Round {
                        number: round,
                        asked_at: None,
                        peer: Some(direct(addresses)),
                    },
                );
                let addresses = self.candidates();
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
                let peer = direct(addresses);
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
                let Some(peer) = self
                    .punches
                    .get(&conn)
                    .filter(|r| r.number == round)
                    .and_then(|r| r.peer)
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
