//! The proxy's own tests: what it does to datagrams, over sockets on 127.0.0.1.

use super::*;
use crate::Policer;

fn echo_server() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

#[test]
fn datagrams_cross_both_ways_and_a_cut_path_drops_them() {
    let (server, server_addr) = echo_server();
    let proxy = Proxy::start(server_addr, Impairment::default()).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    client.send_to(b"ping", proxy.addr()).unwrap();
    let mut buf = [0; 16];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    server.send_to(b"pong", from).unwrap();
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"pong"[..], proxy.addr()));

    proxy.set_cut(true);
    client.send_to(b"lost", proxy.addr()).unwrap();
    server.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    assert!(server.recv_from(&mut buf).is_err());
    assert_eq!(proxy.stats()[0].dropped, 1);
}

/// `drop_next` drops one datagram, the first long enough going its way, and no other.
#[test]
fn a_chosen_datagram_is_dropped_and_only_it() {
    let (server, server_addr) = echo_server();
    let proxy = Proxy::start(server_addr, Impairment::default()).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0; 64];
    proxy.drop_next(Way::ToServer, 10);
    // Too short to be chosen, then the chosen one, then one as long that is not.
    for d in [&b"short"[..], b"long enough 1", b"long enough 2"] {
        client.send_to(d, proxy.addr()).unwrap();
    }
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"short");
    let (n, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"long enough 2");
    assert_eq!(proxy.stats()[0].dropped, 1);

    // The other way, its own request.
    proxy.drop_next(Way::ToClient, 1);
    server.send_to(b"answer 1", from).unwrap();
    server.send_to(b"answer 2", from).unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"answer 2");
    assert_eq!(proxy.stats()[1].dropped, 1);
}

/// Datagrams released together leave as one batch where the system has GSO; each still
/// arrives on its own, whole and in order, a short one after full-size ones included,
/// and every one is counted.
#[test]
fn datagrams_released_together_arrive_each_whole_and_in_order() {
    let (server, server_addr) = echo_server();
    let impairment = Impairment {
        delay: Duration::from_millis(5),
        ..Impairment::default()
    };
    let proxy = Proxy::start(server_addr, impairment).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent: Vec<Vec<u8>> = (0..40u8)
        .map(|i| vec![i; if i == 39 { 300 } else { 1_200 }])
        .collect();
    for d in &sent {
        client.send_to(d, proxy.addr()).unwrap();
    }
    let mut buf = [0u8; 2_000];
    for d in &sent {
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &d[..]);
    }
    // The proxy counts a batch once its send returned, which may be after the server
    // received it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while proxy.stats()[0].forwarded < 40 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(proxy.stats()[0].forwarded, 40);
    // Released together, they left in batches where the system batches sends.
    if cfg!(any(target_os = "linux", target_os = "android")) {
        assert!(proxy.stats()[0].sends < 40, "{:?}", proxy.stats()[0]);
    }
}

/// The numbers 0 to 99 sent at once through a path with 20 ms of jitter: in order when
/// the jitter comes as stalls, overtaking each other when each datagram draws its own.
/// (300 at once could pass a socket's receive buffer while the machine is busy: each
/// small datagram takes about a kilobyte of it.)
#[test]
fn stalls_keep_the_order_and_per_datagram_jitter_does_not() {
    for ordering in [JitterOrdering::InOrder, JitterOrdering::Reorders] {
        let (server, server_addr) = echo_server();
        let impairment = Impairment {
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(20),
            ordering,
            ..Impairment::default()
        };
        let proxy = Proxy::start(server_addr, impairment).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..100u16 {
            client.send_to(&i.to_be_bytes(), proxy.addr()).unwrap();
        }
        let mut buf = [0u8; 16];
        let got: Vec<u16> = (0..100)
            .map(|_| {
                let n = server.recv(&mut buf).unwrap();
                u16::from_be_bytes([buf[0], buf[n - 1]])
            })
            .collect();
        let in_order = got.windows(2).all(|w| w[0] < w[1]);
        assert_eq!(
            in_order,
            ordering == JitterOrdering::InOrder,
            "{ordering:?}: {got:?}"
        );
    }
}

/// Once readdressed, the proxy sends to the server from 127.0.0.2, and only what the
/// server sends there reaches the client: what it sends to the old address is lost, as
/// it is when a client's network changes its public address.
#[test]
fn a_readdressed_proxy_sends_from_another_ip_and_hears_only_there() {
    let (server, server_addr) = echo_server();
    let impairment = Impairment {
        readdress: Some(Duration::from_millis(20)),
        ..Impairment::default()
    };
    let proxy = Proxy::start(server_addr, impairment).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    client.send_to(b"a", proxy.addr()).unwrap();
    let (_, old) = server.recv_from(&mut buf).unwrap();
    assert_eq!(old.ip(), std::net::Ipv4Addr::LOCALHOST);
    // Each datagram asks again until one comes from the new address (bounded: the move
    // is 20 ms after the first).
    let new = (0..10_000)
        .find_map(|_| {
            client.send_to(b"b", proxy.addr()).unwrap();
            let (_, from) = server.recv_from(&mut buf).unwrap();
            (from.ip() != old.ip()).then_some(from)
        })
        .expect("the proxy moved");
    assert_eq!(new.ip(), std::net::Ipv4Addr::new(127, 0, 0, 2));
    // Forwarded at once and in order: had the first come through, it would come first.
    server.send_to(b"to the old", old).unwrap();
    server.send_to(b"to the new", new).unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to the new");
}

#[test]
fn loss_drops_about_the_share_asked() {
    let (from, to) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let loss = Impairment {
        loss: 0.02,
        ..Impairment::default()
    };
    let shared = Shared::default();
    let mut d = Direction::new(
        (from, to),
        Towards::Client,
        loss,
        7,
        &shared,
        Arc::default(),
        None,
    )
    .unwrap();
    let now = Instant::now();
    let lost = (0..100_000).filter(|_| d.lost(now)).count();
    assert!((1_700..2_300).contains(&lost), "{lost}");
    // Bursts of 10 on average, about 5% in all.
    d.impairment = Impairment {
        burst: Some(Burst {
            enter: 0.05 / 0.95 / 10.0,
            leave: 0.1,
            slot: Duration::from_micros(100),
        }),
        ..Impairment::default()
    };
    let pattern: Vec<bool> = (0..200_000).map(|_| d.lost(now)).collect();
    let lost = pattern.iter().filter(|&&l| l).count();
    let bursts = pattern.windows(2).filter(|w| !w[0] && w[1]).count();
    assert!((8_000..12_000).contains(&lost), "{lost}");
    assert!(
        (7.0..13.0).contains(&(lost as f64 / bursts as f64)),
        "{lost} in {bursts} bursts"
    );
}

/// A narrower way back: twenty 1,000-byte datagrams sent at once each way. The way to the
/// server (100 kB/s, a 64 KiB queue) carries them all; the way back to the client (10 kB/s,
/// a queue of 3,000 bytes) takes three and drops what its queue cannot hold.
#[test]
fn the_way_back_has_a_bottleneck_of_its_own() {
    let (server, server_addr) = echo_server();
    let impairment = Impairment {
        rate: Some(100_000),
        queue_bytes: 64 << 10,
        back: Some(Bottleneck {
            rate: 10_000,
            queue_bytes: 3_000,
        }),
        ..Impairment::default()
    };
    let proxy = Proxy::start(server_addr, impairment).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u8 {
        client.send_to(&[i; 1_000], proxy.addr()).unwrap();
    }
    let mut buf = [0u8; 2_000];
    let mut from = None;
    for i in 0..20u8 {
        let (n, f) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 1_000][..]);
        from = Some(f);
    }
    let from = from.unwrap();
    for i in 0..20u8 {
        server.send_to(&[i; 1_000], from).unwrap();
    }
    // The proxy counts a datagram forwarded once its send returned: up to 0.3 s here.
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = |s: DirectionStats| s.forwarded + s.dropped;
    while seen(proxy.stats()[1]) < 20 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let [out, back] = proxy.stats();
    assert_eq!((out.forwarded, out.dropped), (20, 0));
    assert_eq!(seen(back), 20);
    // Three fit the queue at once; a slow proxy thread could let a fourth in.
    assert!((15..=17).contains(&back.dropped), "{back:?}");
}

/// A policer on the way to the server: forty 1,000-byte datagrams sent at once. Its bucket
/// of 10,000 bytes lets ten through and drops the rest, where a queue would have held them
/// (at 80 kbit/s, 10 kB/s, the bucket refills by a datagram in 0.1 s, longer than the
/// sends take); the way back is not policed.
#[test]
fn a_policer_drops_what_exceeds_its_bucket_and_queues_nothing() {
    let (server, server_addr) = echo_server();
    let impairment = Impairment {
        policer: Some(Policer {
            rate: 80_000,
            burst_bytes: 10_000,
        }),
        ..Impairment::default()
    };
    let proxy = Proxy::start(server_addr, impairment).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for i in 0..40u8 {
        client.send_to(&[i; 1_000], proxy.addr()).unwrap();
    }
    let mut buf = [0u8; 2_000];
    let mut from = None;
    for i in 0..10u8 {
        let (n, f) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 1_000][..]);
        from = Some(f);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = |s: DirectionStats| s.forwarded + s.dropped;
    while seen(proxy.stats()[0]) < 40 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let [out, _] = proxy.stats();
    // A slow proxy thread could let one more token accrue.
    assert!((10..=11).contains(&out.forwarded), "{out:?}");
    // The way back: twenty at once, all through.
    let from = from.unwrap();
    for i in 0..20u8 {
        server.send_to(&[i; 1_000], from).unwrap();
    }
    for _ in 0..20 {
        client.recv_from(&mut buf).unwrap();
    }
    assert_eq!(proxy.stats()[1].dropped, 0);
}

/// A datagram that comes alone leaves at its delay: each of nine lone round trips through
/// 10 ms each way takes about 20 ms, the median at most 23. Before, the proxy slept in a
/// receive whose timeout counts in the kernel's ticks (module `readable`), and held such a
/// datagram 3.5-7.7 ms past its time each way: a median of 32 ms (two runs).
#[cfg(target_os = "linux")]
#[test]
fn a_datagram_that_comes_alone_leaves_at_its_delay() {
    let (server, server_addr) = echo_server();
    let impairment = Impairment {
        delay: Duration::from_millis(10),
        ..Impairment::default()
    };
    let proxy = Proxy::start(server_addr, impairment).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    let mut took = Vec::new();
    for i in 0..9u8 {
        let sent = Instant::now();
        client.send_to(&[i], proxy.addr()).unwrap();
        let (_, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(&[i], from).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i]);
        took.push(sent.elapsed());
    }
    took.sort();
    assert!(took[0] >= Duration::from_millis(20), "{took:?}");
    assert!(took[4] <= Duration::from_millis(23), "{took:?}");
}
