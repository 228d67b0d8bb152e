//! What a receiving application is offered and reads, in weir-sim (spec §8, Streams and
//! Requests): streams offered to `accept_stream` in the order they opened, requests and
//! replies kept for the request layer, a message read that gathers as bytes arrive, and a
//! writer's `finish` told a receipt that came first. Resets, stops and closes are in
//! `lifecycle`.

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::{Reason, StreamId};
use weir_core::{Config, Event, Read, StreamHeader};
use weir_sim::LinkConfig;

use crate::lifecycle::connected;

/// Streams the peer opened are offered to `accept_stream` in the order they opened, until
/// the application takes them, by accepting or by reading one by its id.
#[test]
fn streams_are_offered_to_accept_in_the_order_they_opened_until_taken() {
    let (mut sim, c, s, cc, sc) = connected(34, Config::default(), LinkConfig::default());
    let ids: Vec<StreamId> = (0..3)
        .map(|i| {
            let header = StreamHeader::default().with_total_len(2);
            let id = sim.endpoint(c).open_stream(cc, header).unwrap();
            sim.endpoint(c).write(cc, id, Bytes::from(vec![i; 2])).unwrap();
            id
        })
        .collect();
    sim.run_for(Duration::from_millis(100), |_, _, _| {});
    assert!(matches!(
        sim.endpoint(s).read(sc, ids[1], 10),
        Ok(Read::Data { .. })
    ));
    let first = sim.endpoint(s).accept_stream(sc).unwrap();
    assert_eq!(first.map(|(id, h)| (id, h.total_len)), Some((ids[0], Some(2))));
    let next = sim.endpoint(s).accept_stream(sc).unwrap();
    assert_eq!(
        next.map(|(id, _)| id),
        Some(ids[2]),
        "the one read by its id was taken"
    );
    assert_eq!(sim.endpoint(s).accept_stream(sc), Ok(None));
    assert_eq!(
        sim.endpoint(s).next_message(sc, 1 << 10),
        Ok(None),
        "taken streams are not messages to read"
    );
}

/// A request or a reply (spec §8, Requests) is the request layer's: its `StreamOpened`
/// says it came, but it is offered neither to `accept_stream` nor to a message read, and it
/// is read by its id. A plain stream beside them is offered as ever.
#[test]
fn requests_and_replies_are_not_offered_as_plain_streams() {
    let (mut sim, c, s, cc, sc) = connected(35, Config::default(), LinkConfig::default());
    let service = weir_core::wire::Label::from_static("/kad/1").unwrap();
    let labels = [
        weir_core::wire::request::request_label(&service).unwrap(),
        weir_core::wire::request::reply_label(StreamId(1)),
        weir_core::wire::Label::from_static("/plain").unwrap(),
    ];
    let ids: Vec<StreamId> = labels
        .iter()
        .map(|label| {
            let id = sim
                .endpoint(c)
                .open_stream(cc, StreamHeader::default().with_label(label.clone()))
                .unwrap();
            sim.endpoint(c).write(cc, id, Bytes::from_static(b"hi")).unwrap();
            sim.endpoint(c).finish(cc, id).unwrap();
            id
        })
        .collect();
    let mut opened = Vec::new();
    sim.run_for(Duration::from_millis(100), |_, n, e| {
        if let (true, Event::StreamOpened { stream, header, .. }) = (n == s, e) {
            opened.push((stream, header.label));
        }
    });
    let told: Vec<_> = ids
        .iter()
        .copied()
        .zip(labels.iter().cloned().map(Some))
        .collect();
    assert_eq!(opened, told, "each one's opening is told");
    let accepted = sim.endpoint(s).accept_stream(sc).unwrap();
    assert_eq!(
        accepted.map(|(id, _)| id),
        Some(ids[2]),
        "only the plain stream is offered"
    );
    assert_eq!(sim.endpoint(s).accept_stream(sc), Ok(None));
    assert_eq!(sim.endpoint(s).next_message(sc, 1 << 10), Ok(None));
    for &id in &ids[..2] {
        assert!(
            matches!(sim.endpoint(s).read(sc, id, 10), Ok(Read::Data { bytes, .. }) if &bytes[..] == b"hi"),
            "read by its id"
        );
    }
}

/// A message read takes the message streams the peer opened and gathers each as its
/// bytes arrive, so a message far larger than the windows (3 MiB against 1 MiB and
/// 256 KiB) comes whole without any further read; a message past the limit is refused
/// and its stream stopped.
#[test]
fn a_message_read_gathers_as_bytes_arrive_and_refuses_what_is_too_long() {
    let (mut sim, c, s, cc, sc) = connected(35, Config::default(), LinkConfig::default());
    let big = Bytes::from(vec![5u8; 3 << 20]);
    let big_id = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
    let mut written = sim.endpoint(c).write(cc, big_id, big.clone()).unwrap();
    sim.run_for(Duration::from_millis(20), |_, _, _| {});
    assert_eq!(
        sim.endpoint(s).next_message(sc, 4 << 20),
        Ok(None),
        "taken, not whole"
    );
    let long = sim
        .endpoint(c)
        .send_message(cc, None, Bytes::from(vec![1u8; 2_000]))
        .unwrap();
    let small = sim
        .endpoint(c)
        .send_message(cc, None, Bytes::from_static(b"small"))
        .unwrap();
    let mut stopped = None;
    let mut finished = false;
    for _ in 0..200 {
        if written < big.len() {
            written += sim
                .endpoint(c)
                .write(cc, big_id, big.slice(written..))
                .unwrap_or(0);
        }
        if written == big.len() && !finished {
            sim.endpoint(c).finish(cc, big_id).unwrap();
            finished = true;
        }
        sim.run_for(Duration::from_millis(20), |_, n, e| {
            if let (true, Event::StreamStopped { stream, code, .. }) = (n == c, e) {
                stopped = Some((stream, code));
            }
        });
    }
    assert_eq!(written, big.len(), "the sender was never held back for good");
    let mut got = Vec::new();
    while let Ok(Some((id, read))) = sim.endpoint(s).next_message(sc, 4 << 20) {
        got.push((id, read));
    }
    let mut ids: Vec<StreamId> = got.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, [big_id, long, small], "each whole, once");
    assert!(got
        .iter()
        .any(|(id, read)| *id == big_id && matches!(read, Read::Data { bytes, .. } if *bytes == big)));
    assert_eq!(stopped, None);

    // Too long for the reader: refused, its stream stopped (code 0), and skipped.
    let refused = sim
        .endpoint(c)
        .send_message(cc, None, Bytes::from(vec![2u8; 2_000]))
        .unwrap();
    let after = sim
        .endpoint(c)
        .send_message(cc, None, Bytes::from_static(b"after"))
        .unwrap();
    sim.run_for(Duration::from_millis(200), |_, _, _| {});
    let next = sim.endpoint(s).next_message(sc, 1_000).unwrap();
    assert_eq!(next.map(|(id, _)| id), Some(after));
    // The sender had every byte acknowledged: the refusal reaches it as a failed receipt.
    let mut verdicts = Vec::new();
    sim.run_for(Duration::from_millis(200), |_, n, e| match e {
        Event::StreamDelivery { stream, delivery, .. } if n == c => verdicts.push((stream, delivery)),
        Event::StreamStopped { stream, code, .. } if n == c => stopped = Some((stream, code)),
        _ => {}
    });
    assert_eq!(stopped, None);
    assert!(
        verdicts.contains(&(refused, weir_core::Delivery::Failed { code: 0, relays: 0 })),
        "{verdicts:?}"
    );
}

/// A stream of announced length is complete once written: the receiver may read it to its
/// end and its receipt come before the writer finishes it. The writer's `finish` is told
/// the receipt (once), rather than of a stream it no longer knows, even once the connection
/// ended.
#[test]
fn a_finish_after_the_receipt_came_is_told_the_receipt() {
    let (mut sim, c, s, cc, sc) = connected(36, Config::default(), LinkConfig::default());
    let header = StreamHeader::default().with_total_len(4);
    let id = sim.endpoint(c).open_stream(cc, header).unwrap();
    assert_eq!(sim.endpoint(c).write(cc, id, Bytes::from_static(b"four")), Ok(4));
    sim.run_for(Duration::from_millis(100), |_, _, _| {});
    assert_eq!(
        sim.endpoint(s).read_message(sc, id, 10),
        Ok(Read::Data {
            offset: 0,
            bytes: Bytes::from_static(b"four")
        })
    );
    sim.run_for(Duration::from_millis(100), |_, _, _| {});
    // The receiver closes at once, and the sender's connection ends (drained) before it
    // finishes: kept for what it was not told.
    let now = sim.now();
    sim.endpoint(s).close(now, sc, 0, Reason::default()).unwrap();
    sim.run_for(Duration::from_secs(5), |_, _, _| {});
    assert_eq!(sim.endpoint(c).connection_count(), 0);
    assert_eq!(
        sim.endpoint(c).finish(cc, id),
        Err(weir_core::ApiError::Settled {
            delivery: weir_core::Delivery::Delivered { relays: 0 }
        })
    );
    // Told, and nothing else was kept: the connection is let go of.
    assert_eq!(
        sim.endpoint(c).finish(cc, id),
        Err(weir_core::ApiError::UnknownConnection)
    );
}
