//! What weir-core already did, reached from the adapter (issue 34): a fork (a relay that
//! reads what it forwards), a stream's priority, the endpoint's counters and load, and the
//! hook for large whole-read buffers, over real UDP on 127.0.0.1.

mod common;

use bytes::Bytes;
use common::{bounded, endpoint, local};
use weir_sim::proxy::{Impairment, Proxy};
use weir_tokio::{ApiError, Error, Label, Priority, StreamHeader};

fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 13 + i / 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A relay forks a stream to a target while reading it itself: both get every byte, in
/// order, and the pipe reports the whole stream forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_forwards_a_stream_that_the_relay_reads_too() {
    bounded(async {
        let (sender, relay, target) = (endpoint(), endpoint(), endpoint());
        let data = payload(2 << 20);
        let to_target = relay.connect(target.local_addr()).await.unwrap();
        let to_relay = sender.connect(relay.local_addr()).await.unwrap();
        let sent = data.clone();
        let sending = tokio::spawn(async move {
            let header = StreamHeader::default()
                .with_label(Label::from_static("/fork/test").unwrap())
                .with_total_len(sent.len() as u64);
            let mut out = to_relay.open_stream_with(header).await.unwrap();
            out.write_all_chunk(sent).await.unwrap();
            out.finish().await.unwrap();
            (sender, to_relay)
        });
        let receiving = tokio::spawn(async move {
            let c = target.accept().await.unwrap();
            let mut s = c.accept_stream().await.unwrap();
            let label = s.label().map(|l| l.as_str().to_string());
            (label, s.read_to_end(64 << 20).await.unwrap(), target, c)
        });
        let from_sender = relay.accept().await.unwrap();
        let mut stream = from_sender.accept_stream().await.unwrap();
        let pipe = relay.fork(&stream, &[&to_target]).await.unwrap();
        let kept = stream.read_to_end(64 << 20).await.unwrap();
        let stats = pipe.wait().await.unwrap();
        let (label, forwarded, _target, _c) = receiving.await.unwrap();
        assert_eq!(kept, data, "what the relay read");
        assert_eq!(forwarded, data, "what the target got");
        assert_eq!(label.as_deref(), Some("/fork/test"));
        assert_eq!(stats.bytes_forwarded, data.len() as u64, "{stats:?}");
        drop(sending.await.unwrap());
    })
    .await;
}

/// A stream's class decides what goes first on a congested path (a proxy that carries
/// 4 MB/s): a 512 KiB low-priority stream written first and a 2 MiB high-priority one
/// written after it; the high one is sent while it has anything to send, so it is read
/// whole first. (Taking turns, as streams of one class do, the small one would end first.)
/// The reader starts reading only once both streams came, so the low one stops at its
/// first window (256 KiB) until then and cannot end before the high one is written, however
/// late a busy machine runs the writing task (with 256 kB, its whole size fitting its
/// window, it ended first in 1 run of 4 of the adapters' suites beside two busy loops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_stream_goes_ahead_of_a_low_one_written_before_it() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let path = Impairment {
            rate: Some(4_000_000),
            queue_bytes: 64 << 10,
            ..Impairment::default()
        };
        let proxy = Proxy::start(b.local_addr(), path).unwrap();
        let conn = a.connect(proxy.addr()).await.unwrap();
        let reading = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let mut ends = Vec::new();
            let mut reads = tokio::task::JoinSet::new();
            let (first, second) = (c.accept_stream().await.unwrap(), c.accept_stream().await.unwrap());
            for mut s in [first, second] {
                let label = s.label().map(|l| l.as_str().to_string()).unwrap();
                reads.spawn(async move { (label, s.read_to_end(4 << 20).await.unwrap().len()) });
            }
            while let Some(done) = reads.join_next().await {
                ends.push(done.unwrap());
            }
            (ends, b, c)
        });
        let labelled = |l: &'static str| StreamHeader::default().with_label(Label::from_static(l).unwrap());
        let mut low = conn.open_stream_with(labelled("/low")).await.unwrap();
        low.set_priority(Priority::Low).unwrap();
        low.write_all_chunk(payload(512 << 10)).await.unwrap();
        let mut high = conn.open_stream_with(labelled("/high")).await.unwrap();
        high.set_priority(Priority::High).unwrap();
        high.write_all_chunk(payload(2 << 20)).await.unwrap();
        let (l, h) = tokio::join!(low.finish(), high.finish());
        l.unwrap();
        h.unwrap();
        let (ends, _b, _c) = reading.await.unwrap();
        assert_eq!(
            ends,
            [("/high".to_string(), 2 << 20), ("/low".to_string(), 512 << 10)]
        );
        drop(proxy);
    })
    .await;
}

/// The endpoint's counters and load: datagrams both ways, one connection each side while
/// it lives; a datagram for no connection counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_s_counters_and_load_show_what_it_did() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let accepted = b.accept().await.unwrap();
        // Delivered means read: the send returns once the receive has.
        let (sent, got) = tokio::join!(conn.send_message(payload(10_000)), accepted.recv_message());
        sent.unwrap();
        assert_eq!(got.unwrap(), payload(10_000));
        let (sa, sb) = (a.stats(), b.stats());
        assert!(sa.datagrams_sent > 0 && sa.datagrams_received > 0, "{sa:?}");
        assert!(sb.datagrams_sent > 0 && sb.datagrams_received > 0, "{sb:?}");
        assert_eq!((a.load().connections, b.load().connections), (1, 1));
        // A datagram of no connection of b's: garbage after a short header, dropped. The
        // connection may still carry a datagram meanwhile (an ACK, a receipt), so the wait is
        // for the drop, and the received count is at least one more.
        let dropped = |s: &weir_tokio::EndpointStats| s.dropped_malformed + s.dropped_unknown_connection;
        let stray = std::net::UdpSocket::bind(local()).unwrap();
        let before = b.stats();
        stray
            .send_to(&[0x52, 0x57, 0x00, 1, 2, 3], b.local_addr())
            .unwrap();
        while dropped(&b.stats()) == dropped(&before) {
            tokio::task::yield_now().await;
        }
        let after = b.stats();
        assert!(after.datagrams_received > before.datagrams_received, "{after:?}");
        assert_eq!(dropped(&after), dropped(&before) + 1, "{after:?}");
    })
    .await;
}

/// Setting the priority of a stream that the core no longer knows is refused with the
/// core's reason (here: the connection closed under it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_on_a_closed_connection_is_refused() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let stream = conn.open_stream(None).await.unwrap();
        conn.close(0, "bye").await.unwrap();
        let refused = stream.set_priority(Priority::High);
        assert!(
            matches!(
                refused,
                Err(Error::Closed(_) | Error::Refused(ApiError::UnknownConnection))
            ),
            "{refused:?}"
        );
    })
    .await;
}

/// `Config::advise_buffer` is shown a large buffer of both whole reads the adapter offers:
/// the core's whole-message read (`recv_message`) and the adapter's whole-stream read
/// (`read_to_end`, which it was not before: the hook saw only the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_whole_reads_show_a_large_buffer_to_the_configured_hook() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SHOWN: AtomicUsize = AtomicUsize::new(0);
    fn hook(_: *const u8, room: usize) {
        assert!(room >= weir_core::LARGE_BUFFER, "{room} bytes shown");
        SHOWN.fetch_add(1, Ordering::Relaxed);
    }
    bounded(async {
        let server = weir_tokio::Endpoint::bind(
            local(),
            weir_tokio::Config {
                advise_buffer: Some(hook),
                ..common::config()
            },
        )
        .unwrap();
        let client = endpoint();
        let conn = client.connect(server.local_addr()).await.unwrap();
        let incoming = server.accept().await.unwrap();
        let big = payload(6 << 20);

        conn.send_message_with(big.clone(), weir_tokio::Confirm::Queued)
            .await
            .unwrap();
        assert_eq!(incoming.recv_message().await.unwrap(), big);
        let by_message = SHOWN.swap(0, Ordering::Relaxed);
        assert!(by_message >= 1, "recv_message: shown {by_message} times");

        let mut out = conn.open_stream(None).await.unwrap();
        out.write_all_chunk(big.clone()).await.unwrap();
        let finishing = tokio::spawn(async move { out.finish().await });
        let mut s = incoming.accept_stream().await.unwrap();
        assert_eq!(s.read_to_end(64 << 20).await.unwrap(), big);
        finishing.await.unwrap().unwrap();
        let by_stream = SHOWN.load(Ordering::Relaxed);
        assert!(by_stream >= 1, "read_to_end: shown {by_stream} times");
    })
    .await
}
