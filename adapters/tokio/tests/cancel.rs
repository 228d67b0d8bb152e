//! Cancel-safety of every call that can wait, over real UDP on 127.0.0.1: each call's
//! future is polled once while it must wait and then dropped, as a `select!` or a timeout
//! drops it, and what the drop leaves behind is checked against what the handles'
//! documentation says. Bounded: each test body runs under a 60-second limit.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration as StdDuration;

use bytes::Bytes;
mod common;

use common::{bounded, config, local};
use weir_tokio::{Config, Confirm, Connection, Endpoint, Error, StreamHeader};

/// Polls `call` once and drops it; its answer, had it one at once.
fn poll_once_and_drop<F: Future>(call: F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    pin!(call).poll(&mut cx)
}

async fn pair(config: Config) -> (Endpoint, Endpoint, Connection, Connection) {
    let server = Endpoint::bind(local(), config.clone()).unwrap();
    let client = Endpoint::bind(local(), config).unwrap();
    let conn = client.connect(server.local_addr()).await.unwrap();
    let incoming = server.accept().await.unwrap();
    (server, client, conn, incoming)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_accept_leaves_the_connection_for_the_next() {
    bounded(async {
        let server = Endpoint::bind(local(), config()).unwrap();
        let client = Endpoint::bind(local(), config()).unwrap();
        assert!(poll_once_and_drop(server.accept()).is_pending());
        let conn = client.connect(server.local_addr()).await.unwrap();
        let incoming = server.accept().await.unwrap();
        conn.send_message_with(Bytes::from_static(b"hi"), Confirm::Queued)
            .await
            .unwrap();
        assert_eq!(&incoming.recv_message().await.unwrap()[..], b"hi");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_receives_and_accepts_take_nothing() {
    bounded(async {
        let (_server, _client, conn, incoming) = pair(config()).await;
        assert!(poll_once_and_drop(incoming.recv_message()).is_pending());
        assert!(poll_once_and_drop(incoming.accept_stream()).is_pending());
        conn.send_message_with(Bytes::from_static(b"first"), Confirm::Queued)
            .await
            .unwrap();
        let mut stream = conn.open_stream(None).await.unwrap();
        stream
            .write_all_chunk(Bytes::from_static(b"second"))
            .await
            .unwrap();
        stream.finish_with(Confirm::Queued).await.unwrap();
        // The message goes to the receive after the dropped one; the stream, being opened
        // after it, to the accept after the dropped one.
        assert_eq!(&incoming.recv_message().await.unwrap()[..], b"first");
        let mut s = incoming.accept_stream().await.unwrap();
        assert_eq!(&s.read_to_end(100).await.unwrap()[..], b"second");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_read_loses_no_byte() {
    bounded(async {
        let (_server, _client, conn, incoming) = pair(config()).await;
        let mut out = conn.open_stream(None).await.unwrap();
        out.write_all_chunk(Bytes::from_static(b"a")).await.unwrap();
        let mut s = incoming.accept_stream().await.unwrap();
        assert_eq!(&s.read_chunk(10).await.unwrap().unwrap()[..], b"a");
        // Nothing more yet: a read polled and dropped.
        assert!(poll_once_and_drop(s.read_chunk(10)).is_pending());
        out.write_all_chunk(Bytes::from_static(b"bcdefgh")).await.unwrap();
        out.finish_with(Confirm::Queued).await.unwrap();
        let mut rest = Vec::new();
        while let Some(chunk) = s.read_chunk(3).await.unwrap() {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(rest, b"bcdefgh");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_write_wrote_nothing() {
    bounded(async {
        let small = Config {
            send_buffer: 16 * 1024,
            ..config()
        };
        let (_server, _client, conn, incoming) = pair(small).await;
        let mut out = conn.open_stream(None).await.unwrap();
        // Fill the send buffer: the receiver reads nothing yet, so the window closes.
        let mut written = 0usize;
        let block = Bytes::from(vec![1u8; 4096]);
        loop {
            match poll_once_and_drop(out.write_chunk(block.clone())) {
                Poll::Ready(n) => written += n.unwrap(),
                Poll::Pending => break,
            }
            assert!(written < 64 << 20, "the send buffer never filled");
        }
        // The dropped write took nothing: the receiver gets exactly what was written before.
        out.finish_with(Confirm::Queued).await.unwrap();
        let mut s = incoming.accept_stream().await.unwrap();
        let all = s.read_to_end(1 << 30).await.unwrap();
        assert_eq!(all.len(), written);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_dropped_half_written_is_reset_and_the_next_goes_through() {
    bounded(async {
        let small = Config {
            send_buffer: 16 * 1024,
            ..config()
        };
        let (_server, _client, conn, incoming) = pair(small).await;
        let big = Bytes::from(vec![2u8; 1 << 20]);
        assert!(poll_once_and_drop(conn.send_message_with(big, Confirm::Queued)).is_pending());
        conn.send_message_with(Bytes::from_static(b"next"), Confirm::Queued)
            .await
            .unwrap();
        // The half-written message never arrives whole; the next one does.
        assert_eq!(&incoming.recv_message().await.unwrap()[..], b"next");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_dropped_while_confirming_still_ends_the_stream() {
    bounded(async {
        let (_server, _client, conn, incoming) = pair(config()).await;
        let mut out = conn.open_stream_with(StreamHeader::default()).await.unwrap();
        out.write_all_chunk(Bytes::from_static(b"whole")).await.unwrap();
        assert!(poll_once_and_drop(out.finish()).is_pending());
        let mut s = incoming.accept_stream().await.unwrap();
        assert_eq!(&s.read_to_end(100).await.unwrap()[..], b"whole");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connect_or_dial_leaves_the_next_connect_unaffected() {
    bounded(async {
        let server = Endpoint::bind(local(), config()).unwrap();
        let client = Endpoint::bind(local(), config()).unwrap();
        // A handshake may even have finished between its start and its first poll, on a
        // busy machine, as the driver task runs on the other worker: then there is nothing
        // to give up, but it must not have failed, and the connection is let go at once, as
        // a given-up attempt is closed (held, it would stay open, and the server's reads
        // below would wait on it).
        let polled = poll_once_and_drop(client.connect(server.local_addr()));
        assert!(
            !matches!(polled, Poll::Ready(Err(_))),
            "{:?}",
            polled.map(|r| r.map(|c| c.negotiated()))
        );
        drop(polled);
        // The same for a dial by key (its attempts close as it is dropped).
        let key = server.public_key();
        let polled = poll_once_and_drop(client.connect_to_peer(key, &[server.local_addr()]));
        assert!(
            !matches!(polled, Poll::Ready(Err(_))),
            "{:?}",
            polled.map(|r| r.map(|c| c.negotiated()))
        );
        drop(polled);
        // The server may have accepted the attempt before it was closed (that it is closed
        // is the driver's unit test `a_connect_given_up_closes_the_attempt`); a new
        // connect is unaffected.
        let conn = client.connect(server.local_addr()).await.unwrap();
        let mut ended = 0;
        let mut live = None;
        for _ in 0..3 {
            let c = tokio::time::timeout(StdDuration::from_secs(2), server.accept()).await;
            let Ok(c) = c else { break };
            let c = c.unwrap();
            conn.send_message_with(Bytes::from_static(b"live"), Confirm::Queued)
                .await
                .unwrap();
            match c.recv_message().await {
                Ok(m) => {
                    assert_eq!(&m[..], b"live");
                    live = Some(c);
                }
                Err(Error::Closed(_)) => ended += 1,
                Err(e) => panic!("{e}"),
            }
            if live.is_some() {
                break;
            }
        }
        assert!(live.is_some(), "the last connect never reached the server");
        assert!(ended <= 2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_pipe_wait_can_wait_again() {
    bounded(async {
        let relay = Endpoint::bind(local(), config()).unwrap();
        let sender = Endpoint::bind(local(), config()).unwrap();
        let receiver = Endpoint::bind(local(), config()).unwrap();
        let to_relay = sender.connect(relay.local_addr()).await.unwrap();
        let from_sender = relay.accept().await.unwrap();
        let to_receiver = relay.connect(receiver.local_addr()).await.unwrap();
        let at_receiver = receiver.accept().await.unwrap();
        let mut out = to_relay.open_stream(None).await.unwrap();
        out.write_all_chunk(Bytes::from_static(b"piped")).await.unwrap();
        let incoming = from_sender.accept_stream().await.unwrap();
        let pipe = relay.pipe(incoming, &[&to_receiver]).await.unwrap();
        assert!(poll_once_and_drop(pipe.wait()).is_pending());
        out.finish_with(Confirm::Queued).await.unwrap();
        let mut s = at_receiver.accept_stream().await.unwrap();
        assert_eq!(&s.read_to_end(100).await.unwrap()[..], b"piped");
        let stats = pipe.wait().await.unwrap();
        assert_eq!(stats.bytes_forwarded, 5, "{stats:?}");
    })
    .await
}
