//! Who receives: the calling thread that waits, the datagram that ends its receive when
//! another thread wakes it, and a dropped endpoint's socket let go by the threads that
//! called it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;

use super::Unpark;
use crate::{Config, Confirm, Connection, Endpoint};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn bind(config: Config) -> Endpoint {
    let mut ep = Endpoint::bind(local(), config).unwrap();
    ep.set_timeout(Some(Duration::from_secs(60)));
    ep
}

/// A server and a client endpoint (default configuration) and the connection between them:
/// (server, client, the client's end, the server's end).
fn connected() -> (Endpoint, Endpoint, Connection, Connection) {
    let server = bind(Config::default());
    let client = bind(Config::default());
    let conn = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    (server, client, conn, incoming)
}

/// Round trips between two threads: the waits are received by the waiting threads
/// themselves (after the first, which the driver thread answers while it receives).
#[test]
fn a_waiting_call_receives_for_itself() {
    let (server, client, conn, incoming) = connected();
    let echo = std::thread::spawn(move || {
        for _ in 0..50 {
            let m = incoming.recv_message().unwrap();
            incoming.send_message(m).unwrap();
        }
    });
    for i in 0..50u8 {
        conn.send_message(Bytes::from(vec![i; 64])).unwrap();
        assert_eq!(conn.recv_message().unwrap(), Bytes::from(vec![i; 64]));
    }
    echo.join().unwrap();
    for ep in [&server, &client] {
        assert!(
            ep.io.call_receives.load(Ordering::Acquire) > 0,
            "no call received"
        );
    }
}

/// Another thread's wake-up of a thread that receives ends its receive: the receiving
/// socket gets a datagram from the waker socket (a thread that wakes itself sends none).
#[test]
fn waking_a_receiving_thread_ends_its_receive() {
    let ep = bind(Config::default());
    let io = &ep.io;
    // This thread receives: the driver thread cannot while the receiver is held here.
    let _receiver = io.receiver.lock().unwrap();
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
        receiving: Mutex::new(Some(Arc::clone(io))),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    waker.wake_by_ref();
    let socket = &io.socket.socket;
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "a thread woke itself with a datagram"
    );
    socket.set_nonblocking(false).unwrap();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    // Without the datagram this fails with a timeout.
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (len, from) = socket.recv_from(&mut buf).unwrap();
    assert_eq!((len, from), (1, io.waker_addr));
    assert!(unpark.woken.load(Ordering::Acquire));
}

/// A thread's last call notes its endpoint weakly: once the endpoint is dropped its socket
/// is closed, and its address can be bound again, while the thread lives on.
#[test]
fn a_dropped_endpoint_lets_go_of_its_socket() {
    let (_server, client, conn, incoming) = connected();
    let addr = client.local_addr();
    conn.send_message_with(Bytes::from_static(b"x"), Confirm::Queued)
        .unwrap();
    assert_eq!(&incoming.recv_message().unwrap()[..], b"x");
    drop((conn, client));
    let again = Endpoint::bind(addr, Config::default());
    assert!(again.is_ok(), "{:?}", again.err());
}

/// A call that waits is polled when woken, not after every receive: a 1 MiB message (about
/// 720 datagrams) is received whole in a handful of polls.
#[test]
fn a_waiting_call_is_polled_when_woken_not_per_datagram() {
    let (_server, _client, conn, incoming) = connected();
    let message = Bytes::from(vec![5u8; 1 << 20]);
    let sender = {
        let message = message.clone();
        std::thread::spawn(move || conn.send_message_with(message, Confirm::Queued).map(|()| conn))
    };
    let polls = std::cell::Cell::new(0);
    let inner = incoming.inner.recv_message();
    let mut inner = std::pin::pin!(inner);
    let counted = std::future::poll_fn(|cx| {
        polls.set(polls.get() + 1);
        inner.as_mut().poll(cx)
    });
    let received = super::block_on(Some(Duration::from_secs(60)), counted)
        .unwrap()
        .unwrap();
    assert_eq!(received, message);
    let _conn = sender.join().unwrap().unwrap();
    assert!(polls.get() <= 10, "{} polls for one message", polls.get());
}
