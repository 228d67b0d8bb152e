//! `forgery`: an established version 2 (encrypted) connection under datagrams that do not
//! authenticate, sent to either end from the other's address (spec/protocol.md §11.4; the
//! off-path attacker of spec/threat-model.md who saw the connection ids in clear). Each
//! forgery is arbitrary bytes, or a datagram an end really sent with bytes changed, written
//! in version 1 or 2, optionally with its CRC made valid again (`wire::reseal`), so that
//! it reaches past the invariant header and the trailer to the frame parser of a version 1
//! reader. Between forgeries the honest ends exchange their traffic and time moves.
//!
//! Oracle: no panic; a forgery (anything but a genuine datagram unchanged) changes nothing:
//! no event, no timer moved, the connection's stats the same but for the count of
//! unauthenticated datagrams, the connection never closed by one, and nothing sent but the
//! stateless VERSION_REJECT that spec §3.6 gives a long datagram in a version the endpoint
//! does not speak (which is no connection's, whatever its connection id says).

use alloc::vec::Vec;

use arbitrary::{Result, Unstructured};
use bytes::BytesMut;

use super::net::Net;
use crate::time::Duration;
use crate::wire;
use crate::{ConnectionHandle, ConnectionStats, Event};

const MAX_STEPS: usize = 200;
/// Honest datagrams delivered to settle the connection before and between forgeries.
const SETTLE: usize = 200;

/// `forgery`: forged datagrams at both ends of an established encrypted connection change
/// nothing.
pub fn forgery(data: &[u8]) {
    forgery_on(data, &mut Net::new());
}

/// [`forgery`] on a network the caller owns (module `trace`).
pub(super) fn forgery_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let Some((handles, mut seen)) = connect(net) else {
        return;
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let step = (|| -> Result<()> {
            match u.int_in_range(0u8..=7)? {
                0 => {
                    let wait = Duration::from_millis(u.int_in_range(0..=2_000)?);
                    net.wait_until(net.now + wait);
                    settle(net, &mut seen);
                }
                _ => {
                    let to = usize::from(u.arbitrary::<bool>()?);
                    let forged = forge(&mut u, &seen[1 - to])?;
                    // A genuine datagram unchanged is a replay, not a forgery: it opens and
                    // is a duplicate (the `pair` target and the hostile suite cover those).
                    if !seen[1 - to].contains(&forged) {
                        check_unchanged(net, to, handles[to], forged);
                    }
                }
            }
            Ok(())
        })();
        if step.is_err() {
            break;
        }
    }
}

/// Real datagrams each end sent (client's first), as templates for forgeries.
type Seen = [Vec<Vec<u8>>; 2];

/// A client (node 0) and a server connected over `net` left undisturbed: their handles,
/// and the datagrams each sent; `None` if they did not connect.
fn connect(net: &mut Net) -> Option<([ConnectionHandle; 2], Seen)> {
    let client = net.add(super::stand_in(), 1);
    let server = net.add(super::stand_in(), 2);
    // Harness, not input: a new endpoint's first connection always starts (nothing fuzzed
    // has run yet).
    let conn = net.connect(client, server).expect("first connection");
    let handles = [conn, ConnectionHandle::from_index(0)];
    let mut seen: Seen = [Vec::new(), Vec::new()];
    settle(net, &mut seen);
    established(net, handles).then_some((handles, seen))
}

/// Delivers the honest traffic waiting (up to [`SETTLE`] datagrams), keeping copies.
fn settle(net: &mut Net, seen: &mut Seen) {
    for _ in 0..SETTLE {
        if let Some(f) = net.waiting.first() {
            let side = usize::from(f.from != net.nodes[0].addr);
            // Data packets only: their connection id is the receiving end's.
            let data = wire::Invariant::parse(&f.data).is_ok_and(|i| i.is_sealed());
            if data && seen[side].len() < 16 {
                seen[side].push(f.data.clone());
            }
        }
        if net.waiting.is_empty() || !net.settle_step() {
            break;
        }
    }
}

fn established(net: &Net, handles: [ConnectionHandle; 2]) -> bool {
    (0..2).all(|i| net.nodes[i].ep.is_established(handles[i]))
}

/// A datagram that does not authenticate: arbitrary bytes, or a real one of the other end
/// with bytes changed, in version 1 or 2, its CRC fixed or not.
fn forge(u: &mut Unstructured<'_>, templates: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut d = match templates.len() {
        0 => Vec::new(),
        n => templates[u.int_in_range(0..=n - 1)?].clone(),
    };
    if d.is_empty() || u.arbitrary::<u8>()? < 32 {
        let len = u.int_in_range(0..=1_400)?;
        let mut bytes = u.bytes(len)?.to_vec();
        // Keep the routing part of a real datagram, so the forgery reaches its connection.
        if let Some(real) = templates.first() {
            for (b, r) in bytes.iter_mut().zip(real.iter().take(11)) {
                *b = *r;
            }
        }
        d = bytes;
    }
    for _ in 0..u.int_in_range(0..=4)? {
        if d.is_empty() {
            break;
        }
        let at = u.int_in_range(0..=d.len() - 1)?;
        d[at] ^= u.int_in_range(1..=255u8)?;
    }
    if d.len() >= 2 && u.arbitrary()? {
        let version = if u.arbitrary()? {
            wire::VERSION_1
        } else {
            wire::VERSION_2
        };
        d[..2].copy_from_slice(&version.to_be_bytes());
    }
    // Addressed to the connection whatever the changes: a datagram for another id is a
    // new connection's business (the `hostile` target's), and may be answered.
    if let (Some(real), true) = (templates.first(), d.len() >= 11) {
        d[3..11].copy_from_slice(&real[3..11]);
    }
    if u.arbitrary()? {
        wire::reseal(&mut d, None);
    }
    Ok(d)
}

/// Hands `forged` to node `to` from the other node's address and checks it changed nothing.
fn check_unchanged(net: &mut Net, to: usize, conn: ConnectionHandle, forged: Vec<u8>) {
    // The honest traffic of this instant first, so that what follows is the forgery's.
    net.collect();
    let from = net.nodes[1 - to].addr;
    let now = net.now;
    let node = &mut net.nodes[to];
    let before = node.ep.connection_stats(conn);
    let timeout = node.ep.poll_timeout();
    node.ep.handle_datagram(now, from, BytesMut::from(&forged[..]));
    let after = node.ep.connection_stats(conn);
    assert!(
        matches!((before, after), (Some(b), Some(a)) if same_but_unauthenticated(b, a)),
        "a forgery changed the connection: {before:?} -> {after:?}, {:02x?}",
        &forged[..forged.len().min(64)]
    );
    assert_eq!(node.ep.poll_event(), None::<Event>, "a forgery raised an event");
    let mut buf = [0u8; wire::MAX_DATAGRAM_SIZE];
    if let Some(t) = node.ep.poll_transmit(now, &mut buf) {
        // A datagram in a version the endpoint does not speak is for no connection (the
        // version decides what its other bytes mean): a long one of 1200 bytes or more
        // gets a VERSION_REJECT from no state (spec §3.1, §3.6). Nothing else is answered.
        let version = forged.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]]));
        let spoken = matches!(version, Some(wire::VERSION_1 | wire::VERSION_2));
        let version_reject = buf[..t.len].starts_with(&0u16.to_be_bytes());
        assert!(
            !spoken && version_reject,
            "a forgery was answered: {:02x?} with {:02x?}",
            &forged[..forged.len().min(40)],
            &buf[..t.len.min(40)]
        );
        assert!(
            node.ep.poll_transmit(now, &mut buf).is_none(),
            "a VERSION_REJECT came with more"
        );
    }
    assert_eq!(node.ep.poll_timeout(), timeout, "a forgery moved a timer");
}

fn same_but_unauthenticated(mut before: ConnectionStats, after: ConnectionStats) -> bool {
    before.unauthenticated = after.unauthenticated;
    before == after
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// An established connection, the server's handle, and a genuine datagram carrying a
    /// message from the client, not yet delivered to the server (node 1).
    fn genuine(net: &mut Net) -> (ConnectionHandle, Vec<u8>) {
        let (handles, _) = connect(net).expect("an undisturbed network connects");
        net.nodes[0]
            .ep
            .send_message(handles[0], None, Bytes::from_static(b"through"))
            .expect("an open connection takes a message");
        net.collect();
        let datagram = net.waiting.remove(0);
        assert_eq!(datagram.to, net.nodes[1].addr);
        (handles[1], datagram.data)
    }

    /// A datagram that authenticates and is new to its receiver changes the connection (it
    /// acknowledges, delivers, and is answered): what a forgery that got through would do.
    /// The oracle must see it.
    #[test]
    #[should_panic(expected = "a forgery")]
    fn the_oracle_fires_on_a_datagram_that_changes_the_connection() {
        let mut net = Net::new();
        let (server, datagram) = genuine(&mut net);
        check_unchanged(&mut net, 1, server, datagram);
    }

    /// The same datagram with one byte of its tag changed is a forgery, and changes nothing.
    #[test]
    fn an_altered_datagram_changes_nothing() {
        let mut net = Net::new();
        let (server, mut forged) = genuine(&mut net);
        // A byte of the AEAD tag, the CRC trailer made valid again so that it reaches the
        // AEAD.
        let in_tag = forged.len() - 5;
        forged[in_tag] ^= 1;
        wire::reseal(&mut forged, None);
        check_unchanged(&mut net, 1, server, forged);
    }
}
