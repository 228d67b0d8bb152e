//! The real-socket impairment suite (issue 29): `weir recv`, `weir relay` and `weir send` as
//! processes on 127.0.0.1, each hop through an impairing proxy (weir_sim::proxy), time
//! compressed (a 5 s idle timeout standing for the default 30 s). Every case asserts either
//! byte-exact delivery with both ends exiting 0, or the typed failure both ends report; no
//! case may end with the sender reporting success and the receiver without the file.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{make_file, Background};
use weir_sim::proxy::DirectionStats;
use weir_sim::proxy::{Bottleneck, Burst, Impairment, Outage, PathChange, Proxy};

/// The idle timeout every process runs with.
const IDLE: &str = "5s";

/// `weir args` in the background with the suite's idle timeout, and the address its first
/// line gives.
fn start(args: &[&str]) -> (Background, SocketAddr) {
    let mut all = args.to_vec();
    all.extend(["--idle-timeout", IDLE]);
    let mut weir = Background::start(&all);
    let addr = weir.address().parse().expect("an address");
    (weir, addr)
}

/// Its exit code, stderr and how long it took to exit (bounded by `common::LIMIT`).
fn finish(weir: Background) -> (Option<i32>, String, Duration) {
    let start = Instant::now();
    let (code, _, err) = weir.finish();
    (code, err, start.elapsed())
}

/// A loopback path at 20 MB/s with a router's queue, so a transfer takes a while.
fn path() -> Impairment {
    Impairment {
        rate: Some(20_000_000),
        queue_bytes: 512 << 10,
        ..Impairment::default()
    }
}

/// What one case came to.
struct Ends {
    sender: (Option<i32>, String, Duration),
    receiver: (Option<i32>, String, Duration),
    delivered: bool,
    /// What the last hop's proxy counted towards the receiver.
    last_hop: DirectionStats,
    /// The last hop's way back, towards the sender.
    way_back: DirectionStats,
}

/// Sends a file of `len` bytes from a sender to a receiver through `hops` (one proxy per
/// hop; two hops put a `weir relay` between them).
fn transfer(len: usize, hops: &[Impairment]) -> Ends {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = make_file(dir.path(), "payload.bin", len);
    let (receiver, at) = start(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--out",
        out.to_str().unwrap(),
        "--once",
    ]);
    let last = Proxy::start(at, *hops.last().unwrap()).unwrap();
    let mut _relay = None;
    let mut _first = None;
    let to = match hops.len() {
        1 => last.addr(),
        _ => {
            let target = last.addr().to_string();
            let (relay, relay_at) = start(&["relay", "--listen", "127.0.0.1:0", "--to", &target]);
            let first = Proxy::start(relay_at, hops[0]).unwrap();
            let addr = first.addr();
            _relay = Some(relay);
            _first = Some(first);
            addr
        }
    };
    let mut sender = Command::cargo_bin("weir").unwrap();
    sender
        .args([
            "send",
            file.to_str().unwrap(),
            "--to",
            &to.to_string(),
            "--idle-timeout",
            IDLE,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let sent = sender.output().unwrap();
    let sender = (
        sent.status.code(),
        String::from_utf8_lossy(&sent.stderr).into_owned(),
        started.elapsed(),
    );
    let receiver = finish(receiver);
    let delivered =
        std::fs::read(out.join("payload.bin")).is_ok_and(|got| got == std::fs::read(&file).unwrap());
    Ends {
        sender,
        receiver,
        delivered,
        last_hop: last.stats()[0],
        way_back: last.stats()[1],
    }
}

/// Delivered, byte for byte, and both ends say so.
fn assert_delivered(case: &str, e: &Ends) {
    assert!(
        e.delivered,
        "{case}: not delivered; sender {:?}, receiver {:?}",
        e.sender, e.receiver
    );
    assert_eq!(e.sender.0, Some(0), "{case}: {}", e.sender.1);
    assert_eq!(e.receiver.0, Some(0), "{case}: {}", e.receiver.1);
    println!("{case}: delivered in {:.1} s", e.sender.2.as_secs_f64());
}

#[test]
fn loss_bursts_duplication_reordering_and_damage_are_survived() {
    let cases = [
        ("loss 1%", Impairment { loss: 0.01, ..path() }),
        ("loss 5%", Impairment { loss: 0.05, ..path() }),
        ("loss 30%", Impairment { loss: 0.3, ..path() }),
        (
            "bursts of 5, ~5%",
            Impairment {
                burst: Some(Burst {
                    enter: 0.05 / 0.95 / 5.0,
                    leave: 0.2,
                    slot: Duration::from_micros(60),
                }),
                ..path()
            },
        ),
        (
            "bursts of 20, ~5%",
            Impairment {
                burst: Some(Burst {
                    enter: 0.05 / 0.95 / 20.0,
                    leave: 0.05,
                    slot: Duration::from_micros(60),
                }),
                ..path()
            },
        ),
        (
            "duplication 5%, reordering 10%, 2 ms",
            Impairment {
                duplicate: 0.05,
                reorder: 0.1,
                delay: Duration::from_millis(2),
                ..path()
            },
        ),
        (
            "bit flips 1%, truncation 1%",
            Impairment {
                corrupt: 0.01,
                truncate: 0.01,
                ..path()
            },
        ),
    ];
    for (case, hop) in cases {
        let len = if hop.loss >= 0.3 { 1 << 20 } else { 4 << 20 };
        assert_delivered(case, &transfer(len, &[hop]));
    }
}

/// Outages shorter than the idle timeout are survived: the 5, 8 and 15 s against a
/// 30 s idle timeout, scaled to the 5 s one here (0.83, 1.33 and 2.5 s). Probes back off to
/// 2 s however short the idle timeout, so the last case is the harder one here: 2.5 s of
/// outage and up to 2 s more before a probe finds the path, of 5 s.
#[test]
fn short_outages_are_survived() {
    for secs in [5.0, 8.0, 15.0].map(|s: f64| s * 5.0 / 30.0) {
        let hop = Impairment {
            outage: Some(Outage {
                after: Duration::from_millis(150),
                lasts: Duration::from_secs_f64(secs),
            }),
            ..path()
        };
        let e = transfer(4 << 20, &[hop]);
        assert_delivered(&format!("outage {secs:.2} s"), &e);
        assert!(
            e.sender.2 > Duration::from_secs_f64(secs),
            "the transfer straddled the outage"
        );
    }
}

/// The path's rate falls to a tenth in the middle of a transfer, as a radio's does when it
/// adapts (12.5 MB/s to 1.25 MB/s over a 40 ms RTT, a 512 KiB queue: 40 ms of it before,
/// 400 ms after). Delivered, and the sender's controller follows the fall within a few round
/// trips instead of pacing at the old rate into the full queue. Measured, three runs each:
/// the proxy dropped 2,394-3,417 datagrams with a BBR that kept its estimate for ten rounds,
/// 1,314-1,432 since it forgets it after two such rounds (tests/congestion.md, "A path whose
/// rate falls").
#[test]
fn a_path_whose_rate_falls_is_followed() {
    let hop = Impairment {
        delay: Duration::from_millis(20),
        rate: Some(12_500_000),
        change: Some(PathChange {
            after: Duration::from_millis(600),
            rate: Some(1_250_000),
            delay: None,
            mtu: None,
        }),
        ..path()
    };
    let e = transfer(8 << 20, &[hop]);
    assert_delivered("the rate falls to a tenth", &e);
    println!("the last hop: {:?}", e.last_hop);
    assert!(
        e.sender.2 > Duration::from_millis(600),
        "the transfer straddled the fall"
    );
    assert!(e.last_hop.dropped <= 1_900, "{:?}", e.last_hop);
}

/// The way back is thin, as an asymmetric line's uplink is: what the receiver sends back
/// crosses 25 kB/s (200 kbit/s, a 16 KiB queue) while the data comes at up to 12.5 MB/s,
/// 20 ms each way, a line of 1/500. Delivered, and the receiver sent at most one datagram
/// for every fourteen it received: once the data's rate stops climbing an ACK waits for up
/// to ten packets, and for more while the peer's ACKs show ours queueing on their way back
/// (spec §8, Acknowledgements, ACK frequency and "The way back"). With ten at most, one
/// went every 8.9-9.2 datagrams (six runs over two rounds), about 410 ACKs a second (all
/// the way back carries), and the sender took 3.1-3.4 s. With the way back's rule, one
/// every 17.2-25.3 in 2.11-2.23 s (13 runs, release and debug); a way back that is not thin
/// takes 1.91-1.98 s. Before a climb was thinned at its span's first four late samples, six
/// runs of sixteen went at one for 11.6-17.2 in 2.46-2.93 s: BBR's Startup saw its rate,
/// bound by every second packet's ACKs, stay flat three rounds and left at a sixth of the
/// link (tests/congestion.md, "A line of 1/500"). The time is not asserted.
#[test]
fn a_thin_way_back_carries_the_acknowledgements() {
    let hop = Impairment {
        delay: Duration::from_millis(20),
        rate: Some(12_500_000),
        back: Some(Bottleneck {
            rate: 25_000,
            queue_bytes: 16 << 10,
        }),
        ..path()
    };
    let e = transfer(16 << 20, &[hop]);
    assert_delivered("a thin way back", &e);
    let sent = |s: DirectionStats| s.forwarded + s.dropped;
    println!(
        "data's way: {:?}; the way back: {:?}; the sender took {:?}",
        e.last_hop, e.way_back, e.sender.2
    );
    assert!(
        sent(e.way_back) * 14 <= sent(e.last_hop),
        "{:?} back for {:?}",
        e.way_back,
        e.last_hop
    );
}

/// The client's network changes under a transfer, as a phone's does when it leaves Wi-Fi:
/// from 0.6 s after the first datagram the proxy forwards from another IP address
/// (127.0.0.2), what the receiver sends to the old one is lost, and the path goes from
/// 12.5 MB/s and 10 ms each way to 2.5 MB/s and 50 ms. Delivered, byte for byte, both ends
/// exiting 0: the receiver follows the sender to its new address, and congestion control
/// starts over on the new path at both ends (spec §8, A new path; what that changes is
/// measured in tests/congestion.md, "A new path", not asserted here).
#[test]
fn a_sender_whose_network_changes_delivers() {
    let hop = Impairment {
        delay: Duration::from_millis(10),
        rate: Some(12_500_000),
        change: Some(PathChange {
            after: Duration::from_millis(600),
            rate: Some(2_500_000),
            delay: Some(Duration::from_millis(50)),
            mtu: None,
        }),
        readdress: Some(Duration::from_millis(600)),
        ..path()
    };
    let e = transfer(16 << 20, &[hop]);
    assert_delivered("a new address and a slower, longer path", &e);
    println!("the last hop: {:?}", e.last_hop);
    assert!(
        e.sender.2 > Duration::from_millis(600),
        "the transfer straddled the move"
    );
}

/// An outage longer than the idle timeout: both ends fail, as unreachable, within the idle
/// timeout plus 10% of the last word heard, and nothing is reported delivered.
#[test]
fn a_long_outage_fails_on_both_ends_as_unreachable() {
    let hop = Impairment {
        outage: Some(Outage {
            after: Duration::from_millis(150),
            lasts: Duration::from_secs(60),
        }),
        ..path()
    };
    let e = transfer(16 << 20, &[hop]);
    assert!(!e.delivered);
    for (end, (code, err, took)) in [("sender", &e.sender), ("receiver", &e.receiver)] {
        assert_eq!(*code, Some(1), "{end}: {err}");
        assert!(err.contains("the peer stopped answering"), "{end}: {err}");
        // Started, 0.15 s of transfer, then at most the idle timeout + 10%.
        assert!(
            *took < Duration::from_secs_f64(0.15 + 5.5 + 1.0),
            "{end} took {took:?}"
        );
    }
}

/// Through a relay whose last hop is slower, or lossier, than the first: delivered, and the
/// sender exits 0 only once the receiver has the file (its receipt came through the relay).
#[test]
fn a_relay_with_a_slower_or_lossier_last_hop_delivers_end_to_end() {
    let fast = Impairment {
        rate: Some(60_000_000),
        ..path()
    };
    for (case, last) in [
        (
            "last hop at 4 MB/s",
            Impairment {
                rate: Some(4_000_000),
                ..path()
            },
        ),
        (
            "last hop 5% loss, reordering",
            Impairment {
                loss: 0.05,
                reorder: 0.05,
                delay: Duration::from_millis(1),
                ..path()
            },
        ),
    ] {
        assert_delivered(case, &transfer(8 << 20, &[fast, last]));
    }
}

/// The relay's last hop goes dark after the relay took every byte: the sender does not
/// report success; it says the relay lost its next hop, and the receiver has no file.
#[test]
fn a_relay_losing_its_last_hop_is_a_failure_at_both_ends() {
    let fast = Impairment {
        rate: Some(60_000_000),
        ..path()
    };
    // 2 MiB fits the relay's pipe buffer: it takes everything at once, then the slow last
    // hop goes dark.
    let last = Impairment {
        rate: Some(1_000_000),
        outage: Some(Outage {
            after: Duration::from_millis(500),
            lasts: Duration::from_secs(60),
        }),
        ..path()
    };
    let e = transfer(2 << 20, &[fast, last]);
    assert!(!e.delivered);
    assert_eq!(e.sender.0, Some(1), "{}", e.sender.1);
    assert!(
        e.sender.1.contains("not delivered: a relay lost its next hop")
            || e.sender.1.contains("a relay lost the other side of its pipe"),
        "{}",
        e.sender.1
    );
    assert_eq!(e.receiver.0, Some(1), "{}", e.receiver.1);
}
