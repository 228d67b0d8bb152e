//! What weir-core already did, reached with blocking calls (issue 34): a fork, a stream's
//! priority, the endpoint's counters and load, and an ordered message channel, over real
//! UDP on 127.0.0.1.

use std::thread;

mod common;

use bytes::Bytes;
use weir_std::{
    ApiError, ChannelError, Delivery, Endpoint, Error, Label, Priority, StreamHeader, CHANNEL_REFUSED,
};

fn bind() -> Endpoint {
    common::bind(common::config())
}

fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 13 + i / 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A relay forks a stream to a target and reads it too: both get every byte.
#[test]
fn a_fork_forwards_a_stream_that_the_relay_reads_too() {
    let (sender, relay, target) = (bind(), bind(), bind());
    let data = payload(1 << 20);
    let to_target = relay.connect(target.local_addr()).unwrap();
    let to_relay = sender.connect(relay.local_addr()).unwrap();
    let sent = data.clone();
    let sending = thread::spawn(move || {
        let header = StreamHeader::default().with_label(Label::from_static("/fork/std").unwrap());
        let mut out = to_relay.open_stream_with(header).unwrap();
        out.write_all_chunk(sent).unwrap();
        out.finish().unwrap();
        (sender, to_relay)
    });
    let receiving = thread::spawn(move || {
        let c = target.accept().unwrap();
        let mut s = c.accept_stream().unwrap();
        (s.read_to_end(16 << 20).unwrap(), target, c)
    });
    let from_sender = relay.accept().unwrap();
    let mut stream = from_sender.accept_stream().unwrap();
    let pipe = relay.fork(&stream, &[&to_target]).unwrap();
    assert_eq!(stream.read_to_end(16 << 20).unwrap(), data, "what the relay read");
    let stats = pipe.wait().unwrap();
    let (forwarded, _target, _c) = receiving.join().unwrap();
    assert_eq!(forwarded, data, "what the target got");
    assert_eq!(stats.bytes_forwarded, data.len() as u64);
    drop(sending.join().unwrap());
}

/// Priorities are set on live streams; once the connection closed, the call is refused.
/// The counters and the load show the connection and its datagrams.
#[test]
fn priorities_counters_and_load() {
    let (a, b) = (bind(), bind());
    let conn = a.connect(b.local_addr()).unwrap();
    let accepted = b.accept().unwrap();
    let stream = conn.open_stream(None).unwrap();
    stream.set_priority(Priority::High).unwrap();
    let (sa, sb) = (a.stats(), b.stats());
    assert!(
        sa.datagrams_sent > 0 && sb.datagrams_received > 0,
        "{sa:?} {sb:?}"
    );
    assert_eq!((a.load().connections, b.load().connections), (1, 1));
    conn.close(0, "bye").unwrap();
    let refused = stream.set_priority(Priority::Low);
    assert!(
        matches!(
            refused,
            Err(Error::Closed(_) | Error::Refused(ApiError::UnknownConnection))
        ),
        "{refused:?}"
    );
    drop(accepted);
}

/// An ordered message channel with blocking calls: 500 messages of 0 to 5 kB arrive whole
/// and in order, then the end; a message over the reader's limit is refused at both ends.
#[test]
fn a_channel_keeps_order_and_refuses_what_is_too_long() {
    let (a, b) = (bind(), bind());
    let conn = a.connect(b.local_addr()).unwrap();
    let message = |i: usize| payload((i * 997) % 5003).slice(..);
    let mut channel = conn
        .open_channel(Label::from_static("/std/chat").unwrap())
        .unwrap();
    let writing = thread::spawn(move || {
        for i in 0..500 {
            channel.send(message(i)).unwrap();
        }
        channel.finish().unwrap();
        conn
    });
    let c = b.accept().unwrap();
    let mut reader = c.accept_stream().unwrap().into_channel(1 << 20);
    for i in 0..500 {
        assert_eq!(reader.recv().unwrap(), Some(message(i)), "message {i}");
    }
    assert_eq!(reader.recv().unwrap(), None);
    let conn = writing.join().unwrap();
    let mut big = conn
        .open_channel(Label::from_static("/std/big").unwrap())
        .unwrap();
    big.send(payload(5000)).unwrap();
    let mut small = c.accept_stream().unwrap().into_channel(1000);
    assert!(matches!(
        small.recv(),
        Err(Error::Channel(ChannelError::TooLong {
            len: 5000,
            limit: 1000
        }))
    ));
    // Whichever word the sender hears first, the reader's STOP_SENDING or, if the finish
    // reached it first, the RECEIPT_FAILED with the stop's code (spec §4.6, §4.17), the
    // finish reports the refusal one way, with the code.
    let finished = big.finish();
    assert!(
        matches!(
            finished,
            Err(Error::NotDelivered(Delivery::Failed {
                code: CHANNEL_REFUSED,
                relays: 0
            }))
        ),
        "{finished:?}"
    );
}
