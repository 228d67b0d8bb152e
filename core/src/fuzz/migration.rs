//! `migration`: `pair`'s two applications on an encrypted connection (wire version 2, the
//! fuzzing stand-in for the cryptography) whose client a NAT may rebind at any step: it
//! moves to a new port without being told, what was on its way to the old one is lost, and
//! the server learns the move from the client's next datagrams (spec/protocol.md §10.2,
//! path validation and the new address's amplification limit). The applications send each
//! other messages and unreliable datagrams while the fuzzer also drives the network as in
//! `pair`.
//!
//! Oracle: `pair`'s (every byte read is the byte sent; every sender outcome agrees with its
//! receiver; no protocol violation between the honest peers; once the network is left
//! alone, every message not abandoned arrives) and the datagrams' (module `datagrams`).

use arbitrary::Unstructured;

use super::net::Net;
use super::pair::{congestion, encrypted, Pair};
use crate::wire::VERSION_2;

/// `migration`: a client that a NAT rebinds at any step, exchanging messages and datagrams
/// with its server; `pair`'s oracle and the datagrams'.
pub fn migration(data: &[u8]) {
    migration_on(data, &mut Net::new());
}

/// `migration_batch`: [`migration`] on a network that hands each delivered datagram over
/// with every later one on its path, in one `Endpoint::handle_datagrams` call (a receive
/// call's GRO batch), so that a run from the client's new port, the first packets the server
/// hears of the move among them, reaches the server together. The same oracle.
pub fn migration_batch(data: &[u8]) {
    migration_batch_on(data, &mut Net::new());
}

/// [`migration_batch`] on a network the caller owns (module `trace`).
pub(super) fn migration_batch_on(data: &[u8], net: &mut Net) {
    net.delivery = super::net::Delivery::Batched;
    migration_on(data, net);
}

/// [`migration`] on a network the caller owns (module `trace`).
pub(super) fn migration_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let config = encrypted(congestion(&mut u));
    let client = net.add(config.clone(), 1);
    let server = net.add(config, 2);
    let Some(conn) = net.connect(client, server) else {
        return;
    };
    let mut p = Pair::new(net, VERSION_2).with_rebinding();
    p.set_conn(client, conn);
    p.run(&mut u);
}
