//! The connection pool with blocking calls (issue 34) over real UDP on 127.0.0.1: dials
//! from several threads make one connection; a pooled connection no handle holds closes
//! after the idle time, and the events say so.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

mod common;

use bytes::Bytes;
use weir_std::{Confirm, Endpoint, PeerEvent};

fn bind() -> Endpoint {
    common::bind(common::config())
}

#[test]
fn dials_from_several_threads_share_one_connection_until_it_idles_out() {
    let (a, b) = (Arc::new(bind()), bind());
    a.set_pool_idle(Duration::from_millis(300));
    let (key, addr) = (b.public_key(), b.local_addr());
    let dials: Vec<_> = (0..6)
        .map(|i| {
            let a = Arc::clone(&a);
            thread::spawn(move || {
                let conn = a.dial(key, &[addr]).unwrap();
                let note = Bytes::from(format!("thread {i}"));
                conn.send_message_with(note, Confirm::Acknowledged).unwrap();
            })
        })
        .collect();
    let c = b.accept().unwrap();
    for d in dials {
        d.join().unwrap();
    }
    for _ in 0..6 {
        c.recv_message().unwrap();
    }
    assert_eq!(a.load().connections, 1);
    assert!(matches!(a.peer_event().unwrap(), PeerEvent::Up { peer: Some(k), .. } if k == key));
    // Every handle went with its thread: the connection closes once idle.
    assert!(matches!(a.peer_event().unwrap(), PeerEvent::Down { .. }));
    assert!(c.recv_message().is_err(), "the peer sees the close");
}
