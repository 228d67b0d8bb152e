//! Ordered message channels (issue 34, spec §8 Channels) over real UDP on 127.0.0.1: order
//! and boundaries kept through a path that reorders, duplicates and loses datagrams; a
//! channel whose reader lags holds back no other; a message over the reader's limit refused
//! at both ends; a dropped send that keeps the framing whole.

mod common;

use bytes::Bytes;
use common::{bounded, config, endpoint, local, patient};
use weir_sim::proxy::{Impairment, Proxy};
use weir_tokio::{ChannelError, Delivery, Endpoint, Error, Label, CHANNEL_REFUSED};

/// Message `i` of a run: its length varies from 0 to about 5 kB, its bytes say who it is.
fn message(i: u32) -> Bytes {
    let len = (i as usize * 997) % 5003;
    (0..len)
        .map(|j| (i as usize * 31 + j) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn label(s: &'static str) -> Label {
    Label::from_static(s).unwrap()
}

/// 2,000 messages of 0 to 5 kB on one channel through a path that reorders 10%,
/// duplicates 2% and loses 1% of datagrams: every one arrives once, whole, in order, and
/// the end of the channel is seen after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_on_a_channel_arrive_whole_and_in_order_through_a_reordering_path() {
    bounded(async {
        let (a, b) = (
            Endpoint::bind(local(), patient()).unwrap(),
            Endpoint::bind(local(), patient()).unwrap(),
        );
        let path = Impairment {
            reorder: 0.10,
            duplicate: 0.02,
            loss: 0.01,
            delay: std::time::Duration::from_millis(2),
            ..Impairment::default()
        };
        let proxy = Proxy::start(b.local_addr(), path).unwrap();
        let conn = a.connect(proxy.addr()).await.unwrap();
        let reading = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let stream = c.accept_stream().await.unwrap();
            let mut channel = stream.into_channel(1 << 20);
            assert_eq!(channel.label().map(|l| l.as_str()), Some("/chat/1"));
            let mut got = Vec::new();
            while let Some(m) = channel.recv().await.unwrap() {
                got.push(m);
            }
            (got, b, c)
        });
        let mut channel = conn.open_channel(label("/chat/1")).await.unwrap();
        for i in 0..2000 {
            channel.send(message(i)).await.unwrap();
        }
        channel.finish().await.unwrap();
        let (got, _b, _c) = reading.await.unwrap();
        assert_eq!(got.len(), 2000);
        for (i, m) in got.iter().enumerate() {
            assert_eq!(*m, message(i as u32), "message {i}");
        }
        let [to_b, _] = proxy.stats();
        // The path did its worst (reordering is not counted apart).
        assert!(to_b.dropped > 0 && to_b.altered > 0, "{to_b:?}");
    })
    .await;
}

/// Two channels on one connection: the reader leaves the first unread while its sender
/// writes 6.4 MB into it, far past the stream's credit, so the transport holds most of it
/// unsent; the second channel meanwhile carries 500 messages one by one, each read as it
/// comes. Then the first is read, whole. (A lagging channel holds back others once its
/// unread bytes fill the connection's send buffer, `Config::send_buffer`, 32 MiB: noted in
/// the adapters' README.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_whose_reader_lags_holds_back_no_other() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let mut stalled = conn.open_channel(label("/stalled")).await.unwrap();
        let mut flowing = conn.open_channel(label("/flowing")).await.unwrap();
        let big = Bytes::from(vec![7u8; 64 << 10]);
        for _ in 0..100 {
            stalled.send(big.clone()).await.unwrap();
        }
        flowing.send(message(0)).await.unwrap();
        let c = b.accept().await.unwrap();
        let first = c.accept_stream().await.unwrap();
        let second = c.accept_stream().await.unwrap();
        assert_eq!(first.label().map(|l| l.as_str()), Some("/stalled"));
        let mut flowing_in = second.into_channel(1 << 20);
        assert_eq!(flowing_in.recv().await.unwrap(), Some(message(0)));
        for i in 1..500 {
            flowing.send(message(i)).await.unwrap();
            assert_eq!(flowing_in.recv().await.unwrap(), Some(message(i)));
        }
        let mut stalled_in = first.into_channel(1 << 20);
        let finishing = tokio::spawn(stalled.finish());
        for _ in 0..100 {
            assert_eq!(stalled_in.recv().await.unwrap().map(|m| m.len()), Some(64 << 10));
        }
        assert_eq!(stalled_in.recv().await.unwrap(), None);
        finishing.await.unwrap().unwrap();
    })
    .await;
}

/// A message over the reader's limit: the reader fails with the typed reason and stops the
/// stream, and the sender hears the channel was refused, with its code. The word that tells
/// it depends on a race the test does not control, between the reader's stop and the
/// sender's finish: the reader's STOP_SENDING, or, if the finish went out and every byte
/// reached the reader first, the stream's receipt, a RECEIPT_FAILED with the stop's code
/// (spec §4.6, §4.17). The finish reports both as `Error::NotDelivered` with the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_reader_s_limit_is_refused_at_both_ends() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let mut channel = conn.open_channel(label("/small")).await.unwrap();
        channel.send(Bytes::from(vec![1u8; 100])).await.unwrap();
        channel.send(Bytes::from(vec![2u8; 5000])).await.unwrap();
        let c = b.accept().await.unwrap();
        let mut reader = c.accept_stream().await.unwrap().into_channel(1000);
        assert_eq!(reader.recv().await.unwrap().map(|m| m.len()), Some(100));
        let refused = reader.recv().await;
        assert!(
            matches!(
                refused,
                Err(Error::Channel(ChannelError::TooLong {
                    len: 5000,
                    limit: 1000
                }))
            ),
            "{refused:?}"
        );
        // Said again, not forgotten.
        assert!(matches!(reader.recv().await, Err(Error::Channel(_))));
        let heard = channel.finish().await;
        assert!(
            matches!(
                heard,
                Err(Error::NotDelivered(Delivery::Failed {
                    code: CHANNEL_REFUSED,
                    relays: 0
                }))
            ),
            "{heard:?}"
        );
    })
    .await;
}

/// A send dropped midway (its message larger than the send buffer, the reader not yet
/// reading) leaves the rest queued: the next send puts it out first, so the reader gets both
/// messages whole, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_send_keeps_the_framing_whole() {
    bounded(async {
        // A 1 MiB send buffer: an 8 MB message cannot all be written before it is read.
        let small_buffer = weir_tokio::Config {
            send_buffer: 1 << 20,
            ..config()
        };
        let (a, b) = (
            Endpoint::bind(local(), small_buffer).unwrap(),
            Endpoint::bind(local(), config()).unwrap(),
        );
        let conn = a.connect(b.local_addr()).await.unwrap();
        let mut channel = conn.open_channel(label("/dropped")).await.unwrap();
        let large = Bytes::from((0..(8u32 << 20)).map(|i| i as u8).collect::<Vec<u8>>());
        // The buffer fills long before 8 MB are written: the send waits, and is dropped.
        let timed_out =
            tokio::time::timeout(std::time::Duration::from_millis(200), channel.send(large.clone())).await;
        assert!(timed_out.is_err(), "the send was still waiting");
        let c = b.accept().await.unwrap();
        let mut reader = c.accept_stream().await.unwrap().into_channel(16 << 20);
        let sending = tokio::spawn(async move {
            channel.send(Bytes::from_static(b"after")).await.unwrap();
            channel.finish().await.unwrap();
        });
        assert_eq!(reader.recv().await.unwrap(), Some(large));
        assert_eq!(reader.recv().await.unwrap(), Some(Bytes::from_static(b"after")));
        assert_eq!(reader.recv().await.unwrap(), None);
        sending.await.unwrap();
    })
    .await;
}
