//! Request/response with blocking calls (issue 34, spec §8 Requests) over real UDP on
//! 127.0.0.1: replies matched to concurrent requests; a request given up at the handle's
//! timeout, which the responder sees as a cancel; a refusal with its code.

use std::thread;
use std::time::Duration;

mod common;

use bytes::Bytes;
use weir_std::{Endpoint, Error, Label, RequestError, REQUEST_CANCELLED};

fn bind() -> Endpoint {
    common::bind(common::config())
}

fn service(s: &'static str) -> Label {
    Label::from_static(s).unwrap()
}

/// Eight threads ask 25 requests each on one connection; a responder thread answers each
/// with its bytes reversed: every reply is its own request's.
#[test]
fn concurrent_blocking_requests_get_their_own_replies() {
    let (a, b) = (bind(), bind());
    let conn = a.connect(b.local_addr()).unwrap();
    let serving = thread::spawn(move || {
        let c = b.accept().unwrap();
        for _ in 0..200 {
            let (request, responder) = c.accept_request().unwrap();
            let reply: Vec<u8> = request.body().iter().rev().copied().collect();
            responder
                .reply_with(reply.into(), weir_std::Confirm::Queued)
                .unwrap();
        }
        (b, c)
    });
    let askers: Vec<_> = (0..8u32)
        .map(|t| {
            let conn = conn.clone();
            thread::spawn(move || {
                for i in 0..25u32 {
                    let body = format!("thread {t} request {i} {}", "x".repeat((i * 97) as usize));
                    let reply = conn
                        .request(&service("/echo"), Bytes::from(body.clone()))
                        .unwrap();
                    let expected: Vec<u8> = body.bytes().rev().collect();
                    assert_eq!(&reply[..], &expected[..]);
                }
            })
        })
        .collect();
    for asker in askers {
        asker.join().unwrap();
    }
    serving.join().unwrap();
}

/// A request call that gives up at its handle's timeout cancels the request: the
/// responder's `cancelled` returns `REQUEST_CANCELLED`. A refusal reaches the requester with
/// its code.
#[test]
fn a_request_given_up_at_the_handle_timeout_is_cancelled_and_a_refusal_is_told() {
    let (a, b) = (bind(), bind());
    let mut conn = a.connect(b.local_addr()).unwrap();
    let serving = thread::spawn(move || {
        let c = b.accept().unwrap();
        let (_, responder) = c.accept_request().unwrap();
        let code = responder.cancelled().unwrap();
        let (_, responder) = c.accept_request().unwrap();
        responder.refuse(9);
        (code, b, c)
    });
    conn.set_timeout(Some(Duration::from_millis(300)));
    let r = conn.request(&service("/slow"), Bytes::from_static(b"?"));
    assert!(matches!(r, Err(Error::TimedOut)), "{r:?}");
    conn.set_timeout(None);
    let r = conn.request(&service("/slow"), Bytes::from_static(b"again"));
    assert!(
        matches!(r, Err(Error::Request(RequestError::Refused { code: 9 }))),
        "{r:?}"
    );
    let (code, _b, _c) = serving.join().unwrap();
    assert_eq!(code, REQUEST_CANCELLED);
}
