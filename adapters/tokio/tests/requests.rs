//! Request/response (issue 34, spec §8 Requests) over real UDP on 127.0.0.1: replies
//! matched to their requests through a path that reorders, duplicates and loses datagrams,
//! with plain messages beside them; a timeout and a dropped call, each seen by the
//! responder as a cancel; refusals; the peer gone; a reply read as a stream; a reply over
//! the requester's limit; a lost request sent again in the first probe.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bounded, config, endpoint, local, patient};
use weir_sim::proxy::{Impairment, Proxy, Way};
use weir_tokio::{
    ApiError, Config, Endpoint, Error, Label, RequestError, RequestOptions, REQUEST_CANCELLED,
    REQUEST_REFUSED,
};

fn service(s: &'static str) -> Label {
    Label::from_static(s).unwrap()
}

/// Request `i`'s body: its length varies from 0 to about 40 kB, its bytes say which it is.
fn body(i: u32) -> Bytes {
    let len = (i as usize * 7919) % 40_009;
    (0..len)
        .map(|j| (i as usize * 13 + j) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The echo service's answer to `request`: its bytes reversed.
fn answer(request: &[u8]) -> Bytes {
    request.iter().rev().copied().collect::<Vec<u8>>().into()
}

/// 300 requests, 50 at a time, through a path that reorders 10%, duplicates 2% and loses
/// 1% of datagrams, with 50 plain messages sent beside them: every reply is the answer to
/// its own request, and every message arrives as a message (no request or reply is taken
/// for one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_come_back_to_their_requests_through_a_reordering_path() {
    bounded(async {
        let (a, b) = (
            Endpoint::bind(local(), patient()).unwrap(),
            Endpoint::bind(local(), patient()).unwrap(),
        );
        let path = Impairment {
            reorder: 0.10,
            duplicate: 0.02,
            loss: 0.01,
            delay: Duration::from_millis(2),
            ..Impairment::default()
        };
        let proxy = Proxy::start(b.local_addr(), path).unwrap();
        let conn = a.connect(proxy.addr()).await.unwrap();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let messages = {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..50 {
                        got.push(c.recv_message().await.unwrap());
                    }
                    got
                })
            };
            for _ in 0..300 {
                let (request, responder) = c.accept_request().await.unwrap();
                assert_eq!(request.service().as_str(), "/echo/1");
                assert_eq!(request.peer(), c.peer_key());
                tokio::spawn(async move {
                    let reply = answer(request.body());
                    responder.reply(reply).await.unwrap();
                });
            }
            (messages.await.unwrap(), b, c)
        });
        let mut sent = Vec::new();
        for i in 0..50u32 {
            let (conn, m) = (conn.clone(), Bytes::from(format!("plain message {i}")));
            sent.push(m.clone());
            tokio::spawn(async move { conn.send_message(m).await.unwrap() });
        }
        for batch in 0..6u32 {
            let calls: Vec<_> = (batch * 50..batch * 50 + 50)
                .map(|i| {
                    let conn = conn.clone();
                    tokio::spawn(async move {
                        let reply = conn.request(&service("/echo/1"), body(i)).await.unwrap();
                        assert_eq!(reply, answer(&body(i)), "request {i}");
                    })
                })
                .collect();
            for call in calls {
                call.await.unwrap();
            }
        }
        let (mut messages, _b, _c) = serving.await.unwrap();
        messages.sort();
        sent.sort();
        assert_eq!(messages, sent);
        let stats = conn.stats().await.unwrap();
        assert!(stats.packets_lost > 0, "the path lost nothing: {stats:?}");
    })
    .await;
}

/// A request whose only datagram is lost goes again in the requester's first probe (spec
/// §8, Loss; RFC 9002 §6.2.4): the responder has it while the requester has yet to see any
/// loss, which only an acknowledgement after the probe could show it. Before, the probe
/// carried a PING alone and the request went again only once the PING's acknowledgement
/// had shown it lost, a round trip later (weir-sim's `tail_loss.rs` has the figures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_request_goes_again_in_the_first_probe() {
    bounded(async {
        // No path MTU probes: the datagram dropped is the request's.
        let config = Config {
            max_datagram_size: 1200,
            ..config()
        };
        let bind = || Endpoint::bind(local(), config.clone()).unwrap();
        let (a, b) = (bind(), bind());
        let path = Impairment {
            delay: Duration::from_millis(25),
            ..Impairment::default()
        };
        let proxy = Proxy::start(b.local_addr(), path).unwrap();
        let conn = a.connect(proxy.addr()).await.unwrap();
        let requester = conn.clone();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let mut seen = None;
            loop {
                let (request, responder) = c.accept_request().await.unwrap();
                let last = request.body().len() > 100;
                if last {
                    // What the requester knew when the request came.
                    seen = Some(requester.stats().await.unwrap());
                }
                // (A reply's call returns once the requester has it: the next request
                // is taken meanwhile.)
                tokio::spawn(async move { responder.reply(answer(request.body())).await.unwrap() });
                if last {
                    return (seen, b, c);
                }
            }
        });
        // Rounds first, so that the requester's RTT has settled.
        for i in 0..10u8 {
            let reply = conn
                .request(&service("/echo"), Bytes::from(vec![i; 10]))
                .await
                .unwrap();
            assert_eq!(reply, answer(&[i; 10]));
        }
        // ACKs are a few dozen bytes; the request's datagram is longer than its body.
        proxy.drop_next(Way::ToServer, 400);
        let body = Bytes::from(vec![7u8; 400]);
        let reply = conn.request(&service("/echo"), body.clone()).await.unwrap();
        assert_eq!(reply, answer(&body));
        let (seen, _b, _c) = serving.await.unwrap();
        let seen = seen.unwrap();
        assert_eq!(
            proxy.stats()[0].dropped,
            1,
            "the request's datagram was not dropped"
        );
        assert!(seen.probes >= 1, "the request came without a probe: {seen:?}");
        assert_eq!(
            seen.packets_lost, 0,
            "the request went again after a loss: {seen:?}"
        );
    })
    .await;
}

/// A request whose reply does not begin within its timeout fails with `TimedOut`, and the
/// responder sees the cancel (`REQUEST_CANCELLED`); its late reply then fails as cancelled.
#[tokio::test]
async fn a_request_past_its_timeout_fails_and_the_responder_sees_the_cancel() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let (request, responder) = c.accept_request().await.unwrap();
            assert_eq!(&request.body()[..], b"slow?");
            assert_eq!(responder.cancelled().await.unwrap(), REQUEST_CANCELLED);
            let late = responder.reply(Bytes::from_static(b"too late")).await;
            (late, b, c)
        });
        let options = RequestOptions {
            timeout: Some(Duration::from_millis(300)),
            ..RequestOptions::default()
        };
        let r = conn
            .request_with(&service("/slow"), Bytes::from_static(b"slow?"), options)
            .await;
        assert!(matches!(r, Err(Error::Request(RequestError::TimedOut))), "{r:?}");
        let (late, _b, _c) = serving.await.unwrap();
        assert!(
            matches!(
                late,
                Err(Error::Request(RequestError::Cancelled {
                    code: REQUEST_CANCELLED
                }))
            ),
            "{late:?}"
        );
    })
    .await;
}

/// A request call dropped while it waits (the task holding it aborted) cancels the request:
/// the responder sees it, and a reply written anyway is refused by the requester.
#[tokio::test]
async fn dropping_a_request_cancels_it_and_the_responder_sees_it() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let c = {
            let accepting = tokio::spawn(async move { (b.accept().await.unwrap(), b) });
            let asking = {
                let conn = conn.clone();
                tokio::spawn(async move { conn.request(&service("/held"), Bytes::from_static(b"q")).await })
            };
            let (c, b) = accepting.await.unwrap();
            let (_, responder) = c.accept_request().await.unwrap();
            asking.abort();
            assert!(asking.await.unwrap_err().is_cancelled());
            assert_eq!(responder.cancelled().await.unwrap(), REQUEST_CANCELLED);
            // Written as if nothing happened: the requester stops the reply nobody waits for.
            let stream = responder.reply_stream().await;
            assert!(
                matches!(stream, Err(Error::Request(RequestError::Cancelled { .. }))),
                "the cancel was known before the reply opened"
            );
            (c, b)
        };
        // The connection goes on: another request is answered.
        let serving = tokio::spawn(async move {
            let (request, responder) = c.0.accept_request().await.unwrap();
            responder.reply(answer(request.body())).await.unwrap();
            c
        });
        let reply = conn
            .request(&service("/held"), Bytes::from_static(b"abc"))
            .await
            .unwrap();
        assert_eq!(&reply[..], b"cba");
        serving.await.unwrap();
    })
    .await;
}

/// A responder that refuses says why (its code reaches the requester); one dropped
/// unanswered refuses with `REQUEST_REFUSED`.
#[tokio::test]
async fn refusals_reach_the_requester_with_their_code() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let (_, responder) = c.accept_request().await.unwrap();
            responder.refuse(42);
            let (_, responder) = c.accept_request().await.unwrap();
            drop(responder);
            (b, c)
        });
        let first = conn.request(&service("/picky"), Bytes::from_static(b"one")).await;
        assert!(
            matches!(first, Err(Error::Request(RequestError::Refused { code: 42 }))),
            "{first:?}"
        );
        let second = conn.request(&service("/picky"), Bytes::from_static(b"two")).await;
        assert!(
            matches!(
                second,
                Err(Error::Request(RequestError::Refused {
                    code: REQUEST_REFUSED
                }))
            ),
            "{second:?}"
        );
        serving.await.unwrap();
    })
    .await;
}

/// A responder that refuses more requests than its client may have open at once (128 by
/// default) keeps being asked: each refused request's stream frees its place once its
/// requester resets it (spec §4.6). Before, the 129th request waited for a stream for ever
/// (found by the `driver` fuzz target).
#[tokio::test]
async fn refusing_more_requests_than_the_stream_limit_leaves_room_for_more() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            for _ in 0..300 {
                let (_, responder) = c.accept_request().await.unwrap();
                responder.refuse(9);
            }
            (b, c)
        });
        for i in 0..300 {
            let r = conn.request(&service("/no"), Bytes::from_static(b"?")).await;
            assert!(
                matches!(r, Err(Error::Request(RequestError::Refused { code: 9 }))),
                "request {i}: {r:?}"
            );
        }
        serving.await.unwrap();
    })
    .await;
}

/// The peer closing the connection fails a request waiting on it with the connection's
/// end.
#[tokio::test]
async fn a_request_fails_with_the_connection_when_the_peer_is_gone() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let (_request, _responder) = c.accept_request().await.unwrap();
            c.close(7, "going away").await.unwrap();
            b
        });
        let r = conn.request(&service("/gone"), Bytes::from_static(b"?")).await;
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
        serving.await.unwrap();
    })
    .await;
}

/// A reply written as a stream (1 MiB in 64 KiB pieces, no length announced) is read as it
/// comes; a reply over the requester's limit is refused.
#[tokio::test]
async fn a_reply_streams_and_one_over_the_limit_is_refused() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let piece = Bytes::from(vec![7u8; 64 << 10]);
        let serving = {
            let piece = piece.clone();
            tokio::spawn(async move {
                let c = b.accept().await.unwrap();
                let (_, responder) = c.accept_request().await.unwrap();
                let mut out = responder.reply_stream().await.unwrap();
                for _ in 0..16 {
                    out.write_all_chunk(piece.clone()).await.unwrap();
                }
                out.finish().await.unwrap();
                let (_, responder) = c.accept_request().await.unwrap();
                let r = responder.reply(Bytes::from(vec![1u8; 5000])).await;
                (r, b, c)
            })
        };
        let mut reply = conn
            .request_streamed(&service("/big"), Bytes::new(), None)
            .await
            .unwrap();
        assert_eq!(reply.total_len(), None);
        let mut got = 0;
        while let Some(chunk) = reply.read_chunk(usize::MAX).await.unwrap() {
            assert!(chunk.iter().all(|&b| b == 7));
            got += chunk.len();
        }
        assert_eq!(got, 16 * piece.len());
        let options = RequestOptions {
            reply_limit: 4096,
            ..RequestOptions::default()
        };
        let r = conn.request_with(&service("/big"), Bytes::new(), options).await;
        assert!(
            matches!(r, Err(Error::Refused(ApiError::MessageTooLong))),
            "{r:?}"
        );
        let (refused, _b, _c) = serving.await.unwrap();
        assert!(
            refused.is_err(),
            "the responder hears the reply was not taken: {refused:?}"
        );
    })
    .await;
}
