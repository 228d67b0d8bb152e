//! A policed path over real sockets: UDP on 127.0.0.1 through the impairing proxy, whose
//! policer (a token bucket, as an ISP's or a carrier's) drops what a sender sends above its
//! rate and queues nothing (spec §8, Congestion control, "Losses that follow the rate" for
//! LEDBAT and "A policed path" for BBR; the simulator's figures are in tests/congestion.md,
//! "Policers").

use std::time::Duration as StdDuration;

use bytes::Bytes;
use weir_sim::proxy::{Impairment, Proxy};
use weir_sim::Policer;
use weir_tokio::{CongestionAlgorithm, Connection, Endpoint, LedbatConfig};

mod common;
use common::{bounded, config, local};

/// Sends a message of `len` bytes on `conn`, received whole on `incoming`.
async fn carry(conn: &Connection, incoming: &Connection, len: usize) {
    let message = Bytes::from(vec![3u8; len]);
    let (sent, got) = tokio::join!(conn.send_message(message.clone()), incoming.recv_message());
    sent.unwrap();
    assert_eq!(got.unwrap(), message);
}

/// A connection with `cc` from a client through the proxy's policer (`rate` bits per second,
/// a bucket of `bucket` bytes), `delay_ms` each way, to a server. The endpoints are kept
/// for as long as the connection is used.
struct Policed {
    _ends: [Endpoint; 2],
    path: Proxy,
    conn: Connection,
    incoming: Connection,
}

impl Policed {
    async fn connect(rate: u64, bucket: usize, delay_ms: u64, cc: CongestionAlgorithm) -> Policed {
        let server = Endpoint::bind(local(), config()).unwrap();
        let path = Proxy::start(
            server.local_addr(),
            Impairment {
                delay: StdDuration::from_millis(delay_ms),
                policer: Some(Policer {
                    rate,
                    burst_bytes: bucket,
                }),
                ..Impairment::default()
            },
        )
        .unwrap();
        let client = Endpoint::bind(local(), config()).unwrap();
        let conn = client.connect_with(path.addr(), cc).await.unwrap();
        let incoming = server.accept().await.unwrap();
        Policed {
            _ends: [server, client],
            path,
            conn,
            incoming,
        }
    }
}

/// Sends `warm_up` bytes and then 8 MiB with `cc` through a policer of 20 Mbit/s with a 32
/// kB bucket, 10 ms each way, and returns the share of the second message's datagrams the
/// policer dropped. (Startup or slow start overshoots any bucket; what it costs is not the
/// rule's.)
async fn dropped_through_a_policer(cc: CongestionAlgorithm, warm_up: usize) -> f64 {
    let p = Policed::connect(20_000_000, 32_000, 10, cc.clone()).await;
    let (path, conn, incoming) = (&p.path, &p.conn, &p.incoming);
    carry(conn, incoming, warm_up).await;
    let [before, _] = path.stats();
    carry(conn, incoming, 8 << 20).await;
    let [after, _] = path.stats();
    let (forwarded, dropped) = (after.forwarded - before.forwarded, after.dropped - before.dropped);
    let share = dropped as f64 / (forwarded + dropped) as f64;
    println!(
        "{cc:?} through a policer: {forwarded} forwarded, {dropped} dropped: {:.2}%",
        share * 100.0
    );
    share
}

/// LEDBAT, the scavenger, through the policer: over the second message the policer dropped
/// at most 3% of what it sent. Its losses come with no queue, and LEDBAT took them as random
/// until they passed a fifth of what it sent (7.4% and 7.7% dropped, two runs); it now
/// finds they stop when it slows down, and answers them from then on (0.12% and 0.20%).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scavenger_does_not_overrun_a_policer() {
    bounded(async {
        let share =
            dropped_through_a_policer(CongestionAlgorithm::Ledbat(LedbatConfig::default()), 2 << 20).await;
        assert!(share <= 0.03, "{:.2}% dropped", share * 100.0);
    })
    .await
}

/// BBR, the default, through the policer, after 4 MiB (its test needs a few probes; after
/// 2 MiB it had not always found the policer: 1.4-4.6% dropped over eleven runs): at most 4%
/// dropped. Its probes and its burst-inflated estimate overran the bucket, and its losses
/// with no queue were random to it: 5.99%, 7.03% and 5.13% dropped (137cb364's controller,
/// three runs). It now finds that its probes lose more than the rest of what it sends, and
/// paces at a bound it cuts when a round loses more than random loss explains: 1.80-2.31%
/// (six runs; at most 2.9% over 31 runs on 2026-12-04, idle, beside four busy loops, or
/// stopped for 150 ms every 0.75 s). The margin is not for a host that starves it: with the
/// test's threads pinned to one core beside two busy loops, the scheduler's stalls read as
/// queues and start BBR's tallies again, and 1.4-5.2% were dropped over six runs, 1.2-5.8%
/// over eight once the threshold was above the path's jitter (a stall is not in every
/// round; tests/congestion.md, "What the controllers still get wrong").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbr_does_not_overrun_a_policer() {
    bounded(async {
        let share = dropped_through_a_policer(CongestionAlgorithm::Bbr, 4 << 20).await;
        assert!(share <= 0.04, "{:.2}% dropped", share * 100.0);
    })
    .await
}

/// BBR sending messages through a policer of 5 Mbit/s with a 16 kB bucket, 20 ms each way:
/// 60 of 200 B to 100 kB in turn, each received and confirmed before the next (what
/// `message_paths.rs` sends). Each pause refills the bucket, and BBR's estimate held the
/// burst it passes; the probes' test never passed, and the policer dropped 18.3% and 18.9%
/// of what it sent here (two runs, ef49f9b6's controller). Each burst's later datagrams are
/// now tested against its first eight: 6.4-7.4% (three runs; the test's first second or so
/// is a larger part of this run than of message_paths' 120 messages, 3.9-4.3% there). At
/// most 12% asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbr_sending_messages_does_not_overrun_a_policer() {
    bounded(async {
        let p = Policed::connect(5_000_000, 16_000, 20, CongestionAlgorithm::Bbr).await;
        let (path, conn, incoming) = (&p.path, &p.conn, &p.incoming);
        for len in [200, 3_000, 20_000, 100_000, 1_300, 64].repeat(10) {
            carry(conn, incoming, len).await;
        }
        let [out, _] = path.stats();
        let share = out.dropped as f64 / (out.forwarded + out.dropped) as f64;
        println!(
            "messages through a policer: {} forwarded, {} dropped: {:.2}%",
            out.forwarded,
            out.dropped,
            share * 100.0
        );
        assert!(share <= 0.12, "{:.2}% dropped", share * 100.0);
    })
    .await
}
