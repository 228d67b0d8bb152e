//! Unreliable datagrams (issue 34, spec §4.19) over real UDP on 127.0.0.1: sized to the
//! path with a typed refusal past it; through a proxy that loses and duplicates, what
//! arrives is whole and never twice, and what was lost is counted, not resent.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, endpoint};
use weir_sim::proxy::{Impairment, Proxy};
use weir_tokio::{ApiError, Confirm, Error};

#[tokio::test]
async fn datagrams_are_sized_to_the_path_and_lost_ones_are_not_resent() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let path = Impairment {
            loss: 0.05,
            duplicate: 0.02,
            delay: Duration::from_millis(1),
            ..Impairment::default()
        };
        let proxy = Proxy::start(b.local_addr(), path).unwrap();
        let conn = a.connect(proxy.addr()).await.unwrap();
        let peer = b.accept().await.unwrap();
        let max = conn.max_datagram_size().unwrap();
        let r = conn.send_datagram(Bytes::from(vec![0u8; max + 1]));
        assert!(
            matches!(r, Err(Error::Refused(ApiError::DatagramTooLarge { max: m })) if m == max),
            "{r:?}"
        );
        // 400 datagrams, 20 at a time with a pause for the path to drain (the queue holds 64).
        for burst in 0..20u32 {
            for i in burst * 20..burst * 20 + 20 {
                let mut d = i.to_be_bytes().to_vec();
                d.resize(max, i as u8);
                conn.send_datagram(Bytes::from(d)).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A reliable message after them says when the datagrams had their chance.
        conn.send_message_with(Bytes::from_static(b"done"), Confirm::Acknowledged)
            .await
            .unwrap();
        assert_eq!(&peer.recv_message().await.unwrap()[..], b"done");
        let mut seen = BTreeSet::new();
        while let Ok(Ok(d)) = tokio::time::timeout(Duration::from_millis(200), peer.recv_datagram()).await {
            assert_eq!(d.len(), max, "whole");
            let i = u32::from_be_bytes(d[..4].try_into().unwrap());
            assert!(d[4..].iter().all(|&b| b == i as u8), "datagram {i} intact");
            assert!(seen.insert(i), "datagram {i} arrived twice");
        }
        let stats = conn.stats().await.unwrap();
        assert_eq!(
            stats.app_datagrams_sent + stats.app_datagrams_dropped,
            400,
            "{stats:?}"
        );
        assert!(seen.len() < 400, "a 5% lossy path lost none of 400");
        assert!(stats.app_datagrams_lost > 0, "{stats:?}");
        // Only the 4-byte message may be resent, as often as its copies (or their
        // acknowledgements) are lost: a resent datagram would count its whole size. (At
        // most 4 bytes, as this asserted before, failed once in a loaded run: the message
        // sent three times, 8 bytes.)
        assert!(
            stats.bytes_retransmitted < max as u64,
            "only the message could be resent: {stats:?}"
        );
    })
    .await;
}
