//! A stream's end, a sender's RESET_STREAM or a receiver's STOP_SENDING, in weir-sim over a
//! path that loses: each is sent again as it was asked for until a copy is acknowledged
//! (spec/protocol.md §8, Loss and retransmission; weir-core's `connection::control` holds
//! its values until then).

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::StreamId;
use weir_core::{Config, Event, StreamHeader};
use weir_sim::{LinkConfig, Sim};

/// Resets and stops over a path that loses a quarter of the datagrams each way: a stream
/// end's code and final size are held by its sender until a copy is acknowledged (weir-core's
/// `connection::control`), so each lost one is sent again as it was and every one arrives
/// with its code, once. The streams' bytes still in flight then are given up: both sides end
/// with nothing buffered.
#[test]
fn resets_and_stops_survive_a_lossy_path_with_their_codes() {
    for seed in 36..44 {
        resets_and_stops_over_a_lossy_path(seed);
    }
}

fn resets_and_stops_over_a_lossy_path(seed: u64) {
    let link = LinkConfig {
        delay: Duration::from_millis(10),
        loss: 0.25,
        ..LinkConfig::default()
    };
    let (mut sim, cc, sc) = Sim::connected_pair(seed, Config::default(), Config::default(), link);
    let (c, s) = (Sim::PAIR_CLIENT, Sim::PAIR_SERVER);
    let ids: Vec<StreamId> = (0..16)
        .map(|_| {
            let id = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
            sim.endpoint(c)
                .write(cc, id, Bytes::from(vec![3u8; 3_000]))
                .unwrap();
            id
        })
        .collect();
    // Every stream reaches the server before any is ended.
    let mut accepted = Vec::new();
    for _ in 0..100 {
        sim.run_for(Duration::from_millis(100), |_, _, _| {});
        while let Ok(Some((id, _))) = sim.endpoint(s).accept_stream(sc) {
            accepted.push(id);
        }
        if accepted.len() == ids.len() {
            break;
        }
    }
    assert_eq!(accepted.len(), ids.len(), "streams opened");
    let (reset, stopped) = ids.split_at(8);
    for (i, &id) in reset.iter().enumerate() {
        sim.endpoint(c).reset_stream(cc, id, 100 + i as u64).unwrap();
    }
    for (i, &id) in stopped.iter().enumerate() {
        sim.endpoint(s).stop_sending(sc, id, 200 + i as u64).unwrap();
    }
    let mut ev = Vec::new();
    sim.run_for(Duration::from_secs(20), |_, n, e| ev.push((n, e)));
    for (i, &id) in reset.iter().enumerate() {
        let told: Vec<_> = ev
            .iter()
            .filter(|(n, e)| *n == s && matches!(e, Event::StreamReset { stream, .. } if *stream == id))
            .collect();
        assert_eq!(told.len(), 1, "seed {seed}: {id:?}'s reset told once: {told:?}");
        assert!(
            matches!(told[0].1, Event::StreamReset { code, .. } if code == 100 + i as u64),
            "{told:?}"
        );
    }
    for (i, &id) in stopped.iter().enumerate() {
        let code = 200 + i as u64;
        assert!(
            ev.iter().any(|(n, e)| *n == c
                && matches!(e, Event::StreamStopped { stream, code: got, .. } if *stream == id && *got == code)),
            "seed {seed}: {id:?}'s stop reached the sender with its code"
        );
    }
    assert!(sim.endpoint(c).is_established(cc), "the connection lives on");
    assert_eq!(sim.endpoint(c).buffered(cc), Some((0, 0)));
}
