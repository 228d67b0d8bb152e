//! Unreliable datagrams with blocking calls (issue 34, spec §4.19) over real UDP on
//! 127.0.0.1: they arrive whole on a clean path, one over the path's size is refused with
//! the size, and the path MTU search took the connection to 1452 bytes.

mod common;

use bytes::Bytes;
use weir_std::{ApiError, Confirm, Endpoint, Error};

fn bind() -> Endpoint {
    common::bind(common::config())
}

#[test]
fn blocking_datagrams_arrive_and_one_too_large_is_refused() {
    let (a, b) = (bind(), bind());
    let conn = a.connect(b.local_addr()).unwrap();
    let peer = b.accept().unwrap();
    // A message acknowledged first: the path MTU search has had round trips to finish.
    for _ in 0..20 {
        conn.send_message_with(Bytes::from(vec![1u8; 20_000]), Confirm::Acknowledged)
            .unwrap();
        peer.recv_message().unwrap();
    }
    let max = conn.max_datagram_size().unwrap();
    assert!(
        max > 1400,
        "sized to the 1452-byte datagrams the search confirmed: {max}"
    );
    let r = conn.send_datagram(Bytes::from(vec![0u8; max + 1]));
    assert!(
        matches!(r, Err(Error::Refused(ApiError::DatagramTooLarge { max: m })) if m == max),
        "{r:?}"
    );
    for i in 0..10u8 {
        conn.send_datagram(Bytes::from(vec![i; 100 + usize::from(i)]))
            .unwrap();
    }
    for i in 0..10u8 {
        let d = peer.recv_datagram().unwrap();
        assert_eq!(
            d,
            Bytes::from(vec![i; 100 + usize::from(i)]),
            "whole and in order"
        );
    }
}
