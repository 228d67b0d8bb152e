//! Unreliable datagrams (spec §4.19, issue 34) in the simulator: delivered whole and in
//! order on a clean path; never retransmitted on a lossy one (each one lost is counted, none
//! arrives twice); congestion-controlled (on a slow link they leave no faster than it
//! drains, the queue dropping the oldest); sized to the path, with a typed refusal past it;
//! refused when the peer does not take them.

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::Capabilities;
use weir_core::{ApiError, Config, ConnectionHandle, Event, Read};
use weir_sim::{LinkConfig, NodeId, Sim};

fn connected(
    config: Config,
    peer: Config,
    link: LinkConfig,
) -> (Sim, NodeId, NodeId, ConnectionHandle, ConnectionHandle) {
    let (sim, cc, sc) = Sim::connected_pair(9, config, peer, link);
    (sim, Sim::PAIR_CLIENT, Sim::PAIR_SERVER, cc, sc)
}

/// Every datagram the peer sent that waits, in order.
fn drain(sim: &mut Sim, node: NodeId, conn: ConnectionHandle) -> Vec<Bytes> {
    let mut got = Vec::new();
    while let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).recv_datagram(conn) {
        got.push(bytes);
    }
    got
}

fn numbered(i: u32) -> Bytes {
    let mut d = i.to_be_bytes().to_vec();
    d.resize(100 + (i as usize % 700), i as u8);
    d.into()
}

/// On a clean path, 40 datagrams sent 8 at a time arrive whole and in order, each told by
/// an event when the queue was empty.
#[test]
fn datagrams_arrive_whole_on_a_clean_path() {
    let (mut sim, c, s, cc, sc) = connected(Config::default(), Config::default(), LinkConfig::default());
    let mut got = Vec::new();
    let mut told = 0;
    for round in 0..5u32 {
        for i in round * 8..round * 8 + 8 {
            sim.endpoint(c).send_datagram(cc, numbered(i)).unwrap();
        }
        sim.run_for(Duration::from_millis(50), |_, n, e| {
            if n == s && matches!(e, Event::DatagramReceived { .. }) {
                told += 1;
            }
        });
        got.extend(drain(&mut sim, s, sc));
    }
    let sent: Vec<Bytes> = (0..40).map(numbered).collect();
    assert_eq!(got, sent);
    assert_eq!(told, 5, "one event per burst that found the queue empty");
    let stats = sim.endpoint(c).connection_stats(cc).unwrap();
    assert_eq!((stats.app_datagrams_sent, stats.app_datagrams_lost), (40, 0));
}

/// Through 10% loss, 2,000 datagrams sent 20 per 10 ms: none is resent, none arrives twice,
/// and what arrived plus what was declared lost is what was sent.
#[test]
fn lost_datagrams_are_counted_and_never_resent() {
    let link = LinkConfig {
        loss: 0.10,
        delay: Duration::from_millis(10),
        ..LinkConfig::default()
    };
    let (mut sim, c, s, cc, sc) = connected(Config::default(), Config::default(), link);
    let mut got = Vec::new();
    for round in 0..100u32 {
        for i in round * 20..round * 20 + 20 {
            sim.endpoint(c).send_datagram(cc, numbered(i)).unwrap();
        }
        sim.run_for(Duration::from_millis(10), |_, _, _| {});
        got.extend(drain(&mut sim, s, sc));
    }
    sim.run_for(Duration::from_secs(2), |_, _, _| {});
    got.extend(drain(&mut sim, s, sc));
    let ids: Vec<u32> = got
        .iter()
        .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "none arrives twice");
    let stats = sim.endpoint(c).connection_stats(cc).unwrap();
    assert_eq!(stats.app_datagrams_sent, 2000);
    assert!(stats.app_datagrams_lost > 100, "{stats:?}");
    assert_eq!(got.len() as u64 + stats.app_datagrams_lost, 2000, "{stats:?}");
    assert_eq!(stats.bytes_retransmitted, 0, "nothing is resent");
    let peer = sim.endpoint(s).connection_stats(sc).unwrap();
    assert_eq!(peer.app_datagrams_received, got.len() as u64);
}

/// On a 1 Mbit/s link, 10,000 datagrams of 1 kB offered at once cannot all go: congestion
/// control holds them back, the queue keeps the newest 64 and drops the rest (counted), and
/// the link is never flooded.
#[test]
fn datagrams_wait_for_the_congestion_window_and_the_queue_drops_the_oldest() {
    let link = LinkConfig {
        delay: Duration::from_millis(20),
        bandwidth: Some(1_000_000),
        ..LinkConfig::default()
    };
    let (mut sim, c, s, cc, sc) = connected(Config::default(), Config::default(), link);
    for i in 0..10_000u32 {
        let mut d = i.to_be_bytes().to_vec();
        d.resize(1000, 0);
        sim.endpoint(c).send_datagram(cc, d.into()).unwrap();
    }
    sim.run_for(Duration::from_secs(5), |_, _, _| {});
    let got = drain(&mut sim, s, sc);
    let stats = sim.endpoint(c).connection_stats(cc).unwrap();
    assert_eq!(
        stats.app_datagrams_dropped + stats.app_datagrams_sent,
        10_000,
        "{stats:?}"
    );
    assert!(
        stats.app_datagrams_sent <= 64,
        "only the queue's worth went: {stats:?}"
    );
    let last = got.last().map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()));
    assert_eq!(last, Some(9_999), "the newest are the ones kept");
    assert_eq!(stats.packets_lost, 0, "the link was not flooded: {stats:?}");
}

/// A datagram as large as `max_datagram_size` goes; one byte more is refused with the
/// largest that fits. A peer that does not take datagrams refuses them all.
#[test]
fn datagrams_are_sized_to_the_path_and_refused_where_not_taken() {
    let (mut sim, c, s, cc, sc) = connected(Config::default(), Config::default(), LinkConfig::default());
    let max = sim.endpoint(c).max_datagram_size(cc).unwrap();
    assert!((1100..1200).contains(&max), "{max}");
    sim.endpoint(c).send_datagram(cc, vec![7u8; max].into()).unwrap();
    assert_eq!(
        sim.endpoint(c).send_datagram(cc, vec![7u8; max + 1].into()),
        Err(ApiError::DatagramTooLarge { max })
    );
    sim.run_for(Duration::from_millis(50), |_, _, _| {});
    assert_eq!(
        drain(&mut sim, s, sc).iter().map(Bytes::len).collect::<Vec<_>>(),
        [max]
    );

    let without = Config {
        capabilities: Capabilities::ALL.without(Capabilities::DATAGRAMS),
        ..Config::default()
    };
    let (mut sim, c, _s, cc, _sc) = connected(Config::default(), without, LinkConfig::default());
    assert_eq!(sim.endpoint(c).max_datagram_size(cc), None);
    assert_eq!(
        sim.endpoint(c).send_datagram(cc, Bytes::from_static(b"x")),
        Err(ApiError::DatagramsUnsupported)
    );
}
