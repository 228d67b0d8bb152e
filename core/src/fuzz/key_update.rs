//! `key_update`: `pair`'s two applications on an encrypted connection (wire version 2, the
//! fuzzing stand-in for the cryptography) whose keys change every few packets: the input's
//! first byte sets `Config::key_update_interval` to 1–16 packets, where the default is 2^20,
//! so that every run crosses many key phases (spec §11.5) while the fuzzer loses, delays,
//! reorders and duplicates packets around each change. The applications send each other
//! messages and unreliable datagrams.
//!
//! Oracle: `pair`'s (every byte read is the byte sent; every sender outcome agrees with its
//! receiver; no protocol violation between the honest peers, so no packet of either key
//! phase is refused; once the network is left alone, every message not abandoned arrives)
//! and the datagrams' (module `datagrams`).

use arbitrary::Unstructured;

use super::net::Net;
use super::pair::{congestion, encrypted, Pair};
use crate::congestion::CongestionAlgorithm;
use crate::wire::VERSION_2;
use crate::Config;

/// The fewest and most packets sealed under one key in this target.
const INTERVALS: core::ops::RangeInclusive<u64> = 1..=16;

/// `pair`'s encrypted config with keys that change every `interval` packets.
fn config(interval: u64, congestion: CongestionAlgorithm) -> Config {
    Config {
        key_update_interval: interval,
        ..encrypted(congestion)
    }
}

/// `key_update`: messages and datagrams over a connection that updates its keys every
/// 1–16 packets; `pair`'s oracle and the datagrams'.
pub fn key_update(data: &[u8]) {
    key_update_on(data, &mut Net::new());
}

/// [`key_update`] on a network the caller owns (module `trace`).
pub(super) fn key_update_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let Ok(interval) = u.int_in_range(INTERVALS) else {
        return;
    };
    let config = config(interval, congestion(&mut u));
    let client = net.add(config.clone(), 1);
    let server = net.add(config, 2);
    let Some(conn) = net.connect(client, server) else {
        return;
    };
    let mut p = Pair::new(net, VERSION_2).with_datagrams();
    p.set_conn(client, conn);
    p.run(&mut u);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_s_connections_update_their_keys_at_both_ends() {
        let mut net = Net::new();
        let config = config(*INTERVALS.start(), CongestionAlgorithm::default());
        let (client, server) = (net.add(config.clone(), 1), net.add(config, 2));
        let conn = net.connect(client, server).unwrap();
        net.deliver_all();
        for _ in 0..3 {
            net.nodes[client]
                .ep
                .send_message(conn, None, bytes::Bytes::from_static(&[7; 8000]))
                .unwrap();
            net.collect();
            net.deliver_all();
        }
        for node in [client, server] {
            let ep = &net.nodes[node].ep;
            let h = ep.connections().next().unwrap();
            let stats = ep.connection_stats(h).unwrap();
            assert!(
                stats.key_updates_sent > 0 && stats.key_updates_received > 0,
                "node {node}: {stats:?}"
            );
        }
    }
}
