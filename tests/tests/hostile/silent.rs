//! A peer that acknowledges nothing the server sends while it ends stream after stream:
//! the receipts the server owes it stay owed (spec §4.17, §8 Delivery), and must not grow
//! with every stream it ends.

use super::*;

/// Each stream a byte and its end, read by the server's application, so that each owes a
/// receipt; the peer opens every stream the server's MAX_STREAMS lets it and never sends an
/// ACK (its receipts' lazy packets, spec §8 Acknowledgements, need none at once). Past as
/// many receipts owed as the stream count, a stream that ends gives the peer no new one:
/// it gets at most twice the count, where before it got one more for every stream it ended,
/// the server holding a receipt for each.
#[test]
fn a_peer_that_never_acknowledges_receipts_gets_at_most_twice_the_stream_count() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let count = config.initial_concurrent_streams;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(3), 9);
    let mut opened = 0u64;
    let attack_until = arena.sim.now() + Duration::from_secs(10);
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, now| {
            peer.poll(sim, server);
            if peer.greet(sim, server) || peer.server_cid.is_none() {
                return true;
            }
            let limit = peer.max_streams.unwrap_or(count);
            while opened < limit {
                let stream = StreamFrame {
                    id: StreamId::new(Side::Client, opened),
                    offset: 0,
                    data: Bytes::from_static(b"x"),
                    fin: true,
                    total_len: None,
                    label: None,
                    digest: None,
                };
                peer.send(sim, server, &[Frame::Stream(stream)]);
                opened += 1;
            }
            now < attack_until
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    println!("streams opened {opened}, limit heard {:?}", peer.max_streams);
    assert!(opened >= 2 * count, "the peer used what it was given: {opened}");
    assert!(
        opened <= 2 * count,
        "{opened} streams, past twice the count {count}"
    );
    assert_eq!(peer.closed, None, "not a violation: the peer broke no rule");
    assert_survived("receipts never acknowledged", &report, bound(&config, 0, 2));
}
