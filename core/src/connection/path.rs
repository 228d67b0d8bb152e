//! Whether the peer's address is proven to receive what we send, and until then how much
//! we may send it (spec/protocol.md §10.2 address validation; RFC 9000 §8.1: at most three
//! times what came from it). A server's client is unproven until its first data packet (only
//! our ACCEPT told it our connection id); a peer that moved to a new address is unproven
//! until it acknowledges a packet we sent there, and once it does, a move of more than its
//! port is a new path, on which congestion control and the RTT estimate start over (spec
//! §8, A new path; RFC 9000 §9.4). An owned part of the connection: it keeps the account
//! and answers how many bytes may go; the connection applies it to each datagram (module
//! `transmit`).

use core::net::SocketAddr;

use crate::maybe_pn::MaybePn;

/// Before its address is proven, a peer is sent at most this many times what it sent.
const AMPLIFICATION_FACTOR: u64 = 3;

/// Room under which an unproven path cannot carry a packet with an acknowledgement (a
/// sealed header and tag, and an ACK of a few ranges, take well under this).
const STARVED_BELOW: u64 = 128;

/// The path to the peer's current address.
#[derive(Debug, Default)]
pub(super) struct Path {
    /// Until the address is proven: bytes received from it and sent to it.
    unproven: Option<Account>,
    /// After the peer moved: the first packet number sent to the new address; an ACK of it
    /// (or of a later one) proves the peer receives there.
    probe: MaybePn,
    /// The limit keeps back whatever is due: the timers that would send it (an ACK, the
    /// pacer, a keep-alive) wait until more comes from the address (or it is proven, or
    /// left), or they would stay due and fire again and again with nothing sent.
    starved: bool,
    /// What the peer's last move changed.
    change: Move,
}

/// What a move of the peer's address changed (RFC 9000 §9.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Move {
    /// Its port only, as a NAT rebinding does: most likely the same path, whose congestion
    /// state and RTT estimate still hold.
    #[default]
    Port,
    /// Its IP address: a new path, whose congestion state and RTT estimate start over.
    Address,
}

impl Move {
    /// What a move from `old` to `new` changed.
    pub(super) fn between(old: SocketAddr, new: SocketAddr) -> Move {
        if old.ip() == new.ip() {
            Move::Port
        } else {
            Move::Address
        }
    }
}

/// The anti-amplification account of an unproven address. In 32 bits each (every
/// connection keeps one): both saturate, and once what was sent saturates nothing more may
/// be sent, so the limit holds past 4 GiB too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Account {
    /// Bytes received from the address.
    pub(super) received: u32,
    /// Bytes sent to it.
    pub(super) sent: u32,
}

/// `len` as a count of the account's width, saturated.
fn bytes(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Path {
    /// A path whose address is still to be proven, nothing counted yet (a server's new
    /// client that has not answered a RETRY).
    pub(super) fn unproven() -> Path {
        Path {
            unproven: Some(Account::default()),
            probe: MaybePn::NONE,
            starved: false,
            change: Move::Port,
        }
    }

    /// A datagram of `len` bytes came from the current address.
    pub(super) fn on_received(&mut self, len: usize) {
        if let Some(a) = self.unproven.as_mut() {
            a.received = a.received.saturating_add(bytes(len));
            self.starved = false;
        }
    }

    /// Nothing could be sent: if the limit is why (less room than a packet needs), the
    /// path is starved until more comes from the address.
    pub(super) fn starve(&mut self) {
        self.starved = self.room().is_some_and(|r| r < STARVED_BELOW);
    }

    /// Whether the limit keeps back what is due (see [`starve`](Self::starve)).
    pub(super) fn starved(&self) -> bool {
        self.starved
    }

    /// The peer moved to a new address, from which a datagram of `len` bytes came, making
    /// `change` to the address it was at; the next packet we send it is `next_packet`.
    ///
    /// A move from an address still unproven counts as no new path, whatever it changes:
    /// the proven address it is weighed against is not kept, and the likeliest such move is
    /// back to it (a copy of the peer's packet sent from elsewhere, then the peer's next
    /// one: restarting congestion control for that would let whoever can copy a packet
    /// restart it at will; `hostile`'s path theft). Returns the change it counts.
    pub(super) fn moved(&mut self, len: usize, next_packet: u64, change: Move) -> Move {
        self.change = match self.unproven {
            Some(_) => Move::Port,
            None => change,
        };
        self.unproven = Some(Account {
            received: bytes(len),
            sent: 0,
        });
        self.probe = MaybePn::some(next_packet);
        self.starved = false;
        self.change
    }

    /// How many bytes may be sent now; `None` once the address is proven (no limit).
    pub(super) fn room(&self) -> Option<u64> {
        let a = self.unproven?;
        if a.sent == u32::MAX {
            return Some(0);
        }
        Some((u64::from(a.received) * AMPLIFICATION_FACTOR).saturating_sub(u64::from(a.sent)))
    }

    /// A datagram of `len` bytes was sent to the current address.
    pub(super) fn on_sent(&mut self, len: usize) {
        if let Some(a) = self.unproven.as_mut() {
            a.sent = a.sent.saturating_add(bytes(len));
        }
    }

    /// The peer acknowledged packets up to `largest`: the address is proven if that covers
    /// the probe. If it is, and the move changed the peer's IP address, the first packet
    /// sent on the new path: congestion control and the RTT estimate start over from it.
    pub(super) fn on_acked(&mut self, largest: u64) -> Option<u64> {
        let first = self.probe.get().filter(|&first| largest >= first)?;
        self.proven();
        (self.change == Move::Address).then_some(first)
    }

    /// The address is proven (the handshake showed the peer receives there).
    pub(super) fn proven(&mut self) {
        self.unproven = None;
        self.probe = MaybePn::NONE;
        self.starved = false;
    }

    /// The account, while the address is unproven.
    #[cfg(test)]
    pub(super) fn account(&self) -> Option<Account> {
        self.unproven
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unproven_address_gets_three_times_what_it_sent() {
        let mut p = Path::unproven();
        assert_eq!(p.room(), Some(0));
        p.on_received(100);
        assert_eq!(p.room(), Some(300));
        p.on_sent(250);
        assert_eq!(p.room(), Some(50));
        p.on_sent(100);
        assert_eq!(p.room(), Some(0), "never below nothing");
        p.proven();
        assert_eq!(p.room(), None);
    }

    #[test]
    fn the_limit_holds_when_the_counts_saturate() {
        let mut p = Path::unproven();
        p.on_received(usize::MAX);
        assert_eq!(p.room(), Some(3 * u64::from(u32::MAX)));
        p.on_sent(u32::MAX as usize - 1);
        p.on_sent(10);
        assert_eq!(p.room(), Some(0), "what was sent saturated: nothing more may go");
        p.on_received(1 << 20);
        assert_eq!(p.room(), Some(0));
    }

    #[test]
    fn a_starved_path_waits_for_more_from_the_address() {
        let mut p = Path::default();
        p.starve();
        assert!(!p.starved(), "a proven path is never starved");
        p.moved(10, 1, Move::Port);
        p.starve();
        assert!(p.starved());
        p.on_received(40);
        assert!(!p.starved(), "more came: room again");
    }

    #[test]
    fn a_moved_peer_is_proven_by_an_ack_of_the_probe_or_later() {
        let mut p = Path::default();
        assert_eq!(p.room(), None, "proven from the start (a client's server)");
        p.moved(40, 10, Move::Port);
        assert_eq!(p.room(), Some(120));
        assert_eq!(p.on_acked(9), None);
        assert!(p.room().is_some(), "an older packet proves nothing");
        assert_eq!(p.on_acked(10), None, "a new port is the same path");
        assert_eq!(p.room(), None);
    }

    #[test]
    fn a_peer_proven_at_a_new_ip_address_is_on_a_new_path_from_the_probe() {
        let a: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        assert_eq!(Move::between(a, "192.0.2.1:4001".parse().unwrap()), Move::Port);
        let b: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        assert_eq!(Move::between(a, b), Move::Address);
        let mut p = Path::default();
        assert_eq!(p.moved(40, 10, Move::between(a, b)), Move::Address);
        assert_eq!(p.on_acked(9), None);
        assert_eq!(p.on_acked(12), Some(10), "the new path starts at the probe");
        assert_eq!(p.on_acked(13), None, "once");
        // A copy from elsewhere, then the peer again from where it was: no new path.
        // (The path's size is searched afresh at the first move, from a proven address,
        // and not at the second.)
        assert_eq!(p.moved(40, 20, Move::between(b, a)), Move::Address);
        assert_eq!(p.moved(40, 21, Move::between(a, b)), Move::Port);
        assert_eq!(p.on_acked(21), None, "a move from an unproven address");
    }
}
