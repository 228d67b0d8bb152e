//! Pipes through a relay with weir-tokio over real UDP sockets on 127.0.0.1: a stream
//! forwarded from sender to receiver, and a pipe that cannot begin. Every test body runs
//! under a 60-second limit.

mod common;

use common::{bounded, config, local, payload};
use weir_core::Digest;
use weir_tokio::{Config, Confirm, Connection, Delivery, Endpoint, Error, Label, PipeFailure, StreamHeader};

/// A sender, a relay and a receiver, each an endpoint of its own: the relay's connection
/// onward to the receiver, and the sender's to the relay.
struct Chain {
    receiver: Endpoint,
    relay: Endpoint,
    sender: Endpoint,
    onward: Connection,
    to_relay: Connection,
}

impl Chain {
    async fn new() -> Chain {
        let receiver = Endpoint::bind(local(), config()).unwrap();
        let relay = Endpoint::bind(local(), config()).unwrap();
        let sender = Endpoint::bind(local(), config()).unwrap();
        let onward = relay.connect(receiver.local_addr()).await.unwrap();
        let to_relay = sender.connect(relay.local_addr()).await.unwrap();
        Chain {
            receiver,
            relay,
            sender,
            onward,
            to_relay,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_pipes_a_stream_from_sender_to_receiver() {
    bounded(async {
        let Chain {
            receiver,
            relay,
            sender,
            onward,
            to_relay,
        } = Chain::new().await;
        let data = payload(16 << 20, 4);
        let header = StreamHeader::default()
            .with_label(Label::from_static("/relay/test").unwrap())
            .with_total_len(data.len() as u64)
            .with_digest(Digest::of(&data));
        let mut out = to_relay.open_stream_with(header).await.unwrap();
        let to_send = data.clone();
        let writer = tokio::spawn(async move {
            out.write_all_chunk(to_send).await.unwrap();
            out.finish().await.unwrap();
            (sender, to_relay)
        });
        let from_sender = relay.accept().await.unwrap();
        let stream = from_sender.accept_stream().await.unwrap();
        let pipe = relay.pipe(stream, &[&onward]).await.unwrap();
        let at_receiver = receiver.accept().await.unwrap();
        let mut incoming = at_receiver.accept_stream().await.unwrap();
        assert_eq!(incoming.label().map(Label::as_str), Some("/relay/test"));
        let got = incoming.read_to_end(32 << 20).await.unwrap();
        assert_eq!(Digest::of(&got), Digest::of(&data));
        let stats = pipe.wait().await.unwrap();
        assert_eq!(stats.bytes_forwarded, 16 << 20);
        assert!(stats.in_flight_peak <= Config::default().pipe_buffer, "{stats:?}");
        drop(writer.await.unwrap());
    })
    .await
}

/// A pipe that cannot begin, its target connection closed, takes the stream with it and
/// stops it with PIPE_BROKEN: the sender learns that a relay could not pass it on. Before,
/// the dropped handle stopped it with code 0, and the sender read that the peer stopped
/// reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_that_cannot_begin_tells_the_sender_the_pipe_broke() {
    bounded(async {
        let receiver = Endpoint::bind(local(), config()).unwrap();
        let relay = Endpoint::bind(local(), config()).unwrap();
        let sender = Endpoint::bind(local(), config()).unwrap();
        let onward = relay.connect(receiver.local_addr()).await.unwrap();
        onward.close(0, "gone").await.unwrap();
        let to_relay = sender.connect(relay.local_addr()).await.unwrap();
        let sending = tokio::spawn(async move {
            let sent = to_relay
                .send_message_with(payload(1 << 20, 6), Confirm::Delivered)
                .await;
            (sent, sender, to_relay)
        });
        let from_sender = relay.accept().await.unwrap();
        let stream = from_sender.accept_stream().await.unwrap();
        let refused = relay.pipe(stream, &[&onward]).await;
        assert!(refused.is_err(), "a pipe to a closed connection began");
        let (sent, _sender, _conn) = sending.await.unwrap();
        let broken = weir_core::PIPE_BROKEN;
        assert!(
            matches!(&sent, Err(Error::NotDelivered(Delivery::Failed { code, .. })) if *code == broken),
            "{sent:?}"
        );
    })
    .await
}

/// A relay that forks a stream and then drops its own reader before the end stops the
/// sender (code 0), and so fails the pipe: its waiter learns why, and the receiver is
/// reset with the same code. Before, the sender's reset in answer ended the stream under
/// the pipe, which never heard of it: `wait` never returned and the receiver waited for the
/// rest for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_whose_reader_lets_go_fails_its_pipe() {
    bounded(async {
        let Chain {
            receiver,
            relay,
            sender,
            onward,
            to_relay,
        } = Chain::new().await;
        // More than the relay's reader, who reads none of it, lets the sender send.
        let mut out = to_relay.open_stream(None).await.unwrap();
        let writer = tokio::spawn(async move {
            let written = out.write_all_chunk(payload(64 << 20, 7)).await;
            (written, sender, to_relay)
        });
        let from_sender = relay.accept().await.unwrap();
        let stream = from_sender.accept_stream().await.unwrap();
        let pipe = relay.fork(&stream, &[&onward]).await.unwrap();
        let at_receiver = receiver.accept().await.unwrap();
        let mut incoming = at_receiver.accept_stream().await.unwrap();
        drop(stream);
        let failed = pipe.wait().await;
        assert!(
            matches!(
                failed,
                Err(Error::PipeFailed(PipeFailure::SourceStopped { code: 0 }))
            ),
            "{failed:?}"
        );
        let read = incoming.read_to_end(128 << 20).await;
        assert!(matches!(read, Err(Error::Reset { code: 0 })), "{read:?}");
        let (written, _sender, _conn) = writer.await.unwrap();
        assert!(matches!(written, Err(Error::Stopped { code: 0 })), "{written:?}");
    })
    .await
}
