//! Delivery over real UDP on 127.0.0.1 (spec §8, Delivery): `send_message` and `finish`
//! wait for the final receiver's receipt, a refusal reads the same however it came, and a
//! deferred delivery waits for the receiver's confirmation. Moved out of `loopback.rs`,
//! one concern per file. Every test is bounded as there.

mod common;

use bytes::Bytes;
use common::{bounded, connected, payload};
use weir_tokio::{ApiError, Confirm, Delivery, Error};

/// `send_message` and `finish` wait for the final receiver's receipt (issue 29; spec §8,
/// Delivery): a message is not done while the peer's application has not read it, and one
/// it refuses after it arrived fails with the refusal, though every byte was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_waits_for_the_receipt_of_the_final_receiver() {
    bounded(async {
        let (_server, _client, conn, incoming) = connected().await;
        let sent = tokio::spawn({
            let conn = conn.clone();
            async move { conn.send_message(payload(50_000, 1)).await }
        });
        // Every byte acknowledged, none read: still waiting (only the read makes a receipt).
        while conn.stats().await.unwrap().bytes_acked < 50_000 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!sent.is_finished(), "done before the peer read it");
        assert_eq!(incoming.recv_message().await.unwrap(), payload(50_000, 1));
        sent.await.unwrap().unwrap();
        // A stream whose bytes all arrived and that the receiver's application refuses.
        let mut out = conn.open_stream(None).await.unwrap();
        out.write_all_chunk(payload(10_000, 2)).await.unwrap();
        let finishing = tokio::spawn(async move { out.finish().await });
        let refused = incoming.accept_stream().await.unwrap();
        while conn.stats().await.unwrap().bytes_acked < 60_000 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        refused.stop(7).unwrap();
        let r = finishing.await.unwrap();
        // The refusal either ends the finish waiting for its receipt, or, on a loaded
        // machine where the spawned `finish` reached the endpoint only after it, is what
        // the finish meets: either way the sender learns the refusal and its code, in one
        // shape.
        assert!(refused_with_7(&r), "{r:?}");
    })
    .await
}

/// A peer that stops a stream before the last of it could arrive (1 MiB against its 256 KiB
/// stream window, which grows only as it reads) refuses it: the sender's `finish` and
/// `send_message` report that as `NotDelivered` with the peer's code, the same shape as a
/// refusal after every byte arrived (above), however the stop met the sender's calls. They
/// reported `Error::Stopped` before, a second shape for one outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refused_before_it_all_arrived_is_not_delivered_with_the_code() {
    bounded(async {
        let (_server, _client, conn, incoming) = connected().await;
        // A finish: waiting when the stop comes, or meeting it if it came first.
        let mut out = conn.open_stream(None).await.unwrap();
        out.write_all_chunk(payload(1 << 20, 3)).await.unwrap();
        let finishing = tokio::spawn(async move { out.finish().await });
        incoming.accept_stream().await.unwrap().stop(7).unwrap();
        let r = finishing.await.unwrap();
        assert!(refused_with_7(&r), "{r:?}");
        // A finish after a write already met the stop.
        let mut out = conn.open_stream(None).await.unwrap();
        out.write_all_chunk(payload(1 << 10, 4)).await.unwrap();
        incoming.accept_stream().await.unwrap().stop(7).unwrap();
        let written = loop {
            if let Err(e) = out.write_all_chunk(payload(64 << 10, 5)).await {
                break e;
            }
        };
        assert!(matches!(written, Error::Stopped { code: 7 }), "{written:?}");
        let r = out.finish().await;
        assert!(refused_with_7(&r), "{r:?}");
        // A message, whose writing the stop may meet.
        let sending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.send_message(payload(1 << 20, 6)).await }
        });
        incoming.accept_stream().await.unwrap().stop(7).unwrap();
        let r = sending.await.unwrap();
        assert!(refused_with_7(&r), "{r:?}");
    })
    .await
}

fn refused_with_7(r: &Result<(), Error>) -> bool {
    matches!(
        r,
        Err(Error::NotDelivered(Delivery::Failed { code: 7, relays: 0 }))
    )
}

/// A receiver that keeps the bytes before they count defers the delivery: its sender's
/// `finish` waits past the read of the end until the receiver confirms; a held stream
/// dropped unconfirmed is not delivered (code 0), and a confirmation out of turn is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_delivery_waits_for_the_receiver_s_confirmation() {
    bounded(async {
        let (_server, _client, conn, incoming) = connected().await;
        for confirm in [true, false] {
            let mut out = conn.open_stream(None).await.unwrap();
            out.write_all_chunk(payload(20_000, 3)).await.unwrap();
            let finishing = tokio::spawn(async move { out.finish().await });
            let mut held = incoming.accept_stream().await.unwrap();
            held.defer_delivery().unwrap();
            assert_eq!(held.read_to_end(1 << 20).await.unwrap(), payload(20_000, 3));
            // A message back, sent after the end was read, arrives first: had reading the
            // end sent the receipt, it would have come before it.
            incoming
                .send_message_with(Bytes::from_static(b"read"), Confirm::Queued)
                .await
                .unwrap();
            assert_eq!(conn.recv_message().await.unwrap(), Bytes::from_static(b"read"));
            assert!(!finishing.is_finished(), "delivered before it was confirmed");
            let r = if confirm {
                held.confirm_delivery().unwrap();
                finishing.await.unwrap()
            } else {
                drop(held);
                finishing.await.unwrap()
            };
            match confirm {
                true => assert!(r.is_ok(), "{r:?}"),
                false => assert!(
                    matches!(
                        r,
                        Err(Error::NotDelivered(Delivery::Failed { code: 0, relays: 0 }))
                    ),
                    "{r:?}"
                ),
            }
        }
        let mut plain = {
            conn.send_message_with(payload(100, 4), Confirm::Queued)
                .await
                .unwrap();
            incoming.accept_stream().await.unwrap()
        };
        plain.read_to_end(1 << 20).await.unwrap();
        assert!(matches!(
            plain.confirm_delivery(),
            Err(Error::Refused(ApiError::NothingToConfirm))
        ));
    })
    .await
}
