//! Traces (spec/trace.md): scenarios recorded in weir-sim replay byte for byte; the golden
//! traces in spec/traces/ replay under `cargo test`; a changed behaviour makes a replay fail
//! at the first differing record; a failing trace shrinks to its shortest failing prefix.
//!
//! The golden traces are written by the scenarios below. A wire or behaviour change that
//! alters them is made on purpose, then they are regenerated and the diff reviewed:
//!
//! ```text
//! WEIR_UPDATE_TRACES=1 cargo test -p weir-sim --test suites traces::golden_traces_replay
//! ```

use std::path::{Path, PathBuf};

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::trace::{replay, shrink, TraceError};
use weir_core::wire::VersionRange;
use weir_core::{Config, ConnectionHandle, Event, LocalRead, Read, StreamHeader};
use weir_sim::{LinkConfig, NodeId, Sim};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/traces")
}

fn golden(name: &str) -> String {
    let path = golden_dir().join(format!("{name}.trace"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Short timers, so the golden traces stay short.
fn quick() -> Config {
    Config {
        idle_timeout: Duration::from_secs(2),
        keep_alive: None,
        ..Config::default()
    }
}

/// Runs a client and a server (both traced) until `secs` have passed, with `on_event` as
/// the application; returns the sim.
fn pair(
    seed: u64,
    client: Config,
    server: Config,
    link: LinkConfig,
    secs: u64,
    mut on_event: impl FnMut(&mut Sim, NodeId, Event),
) -> Sim {
    let mut sim = Sim::new(seed);
    let c = sim.add_traced_node(client);
    let s = sim.add_traced_node(server);
    sim.link(c, s, link);
    sim.connect(c, s);
    sim.run_for(Duration::from_secs(secs), |sim, node, e| on_event(sim, node, e));
    sim
}

/// A server that reads every message whole.
fn read_messages(sim: &mut Sim, node: NodeId, e: &Event) {
    if let Event::StreamReadable { conn, stream } = *e {
        let _ = sim.endpoint(node).read_message(conn, stream, 1 << 20);
    }
}

/// Makes a golden trace: the trace of one endpoint of a scenario.
type Scenario = fn() -> String;

/// Each golden trace by name.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("handshake", || {
        pair(1, quick(), quick(), LinkConfig::default(), 1, |_, _, _| {}).take_trace(0)
    }),
    ("version-rejection", || {
        let v2 = Config {
            versions: VersionRange::new(2, 2).unwrap(),
            ..quick()
        };
        let client = Config {
            versions: VersionRange::new(1, 1).unwrap(),
            ..quick()
        };
        pair(2, client, v2, LinkConfig::default(), 1, |_, _, _| {}).take_trace(0)
    }),
    ("lossy-transfer", || {
        let lossy = LinkConfig {
            loss: 0.1,
            ..LinkConfig::default()
        };
        let mut sim = pair(3, quick(), quick(), lossy, 5, |sim, node, e| {
            if let (0, Event::Connected { conn, .. }) = (node, &e) {
                let msg: Bytes = (0..8000u32).map(|i| (i * 31) as u8).collect::<Vec<u8>>().into();
                sim.endpoint(0).send_message(*conn, None, msg).unwrap();
            }
            read_messages(sim, node, &e);
        });
        sim.take_trace(1)
    }),
    ("stream-reset", || {
        // The client sends part of a stream, then abandons it; the server reads what came.
        let read = |sim: &mut Sim, node: NodeId, e: Event| {
            if let Event::StreamReadable { conn, stream } = e {
                while let Ok(Read::Data { .. }) = sim.endpoint(node).read(conn, stream, 1 << 20) {}
            }
        };
        let mut sim = pair(4, quick(), quick(), LinkConfig::default(), 1, |sim, node, e| {
            if let (0, Event::Connected { conn, .. }) = (node, &e) {
                let ep = sim.endpoint(0);
                let id = ep.open_stream(*conn, StreamHeader::default()).unwrap();
                ep.write(*conn, id, vec![1u8; 3000].into()).unwrap();
            }
            read(sim, node, e);
        });
        let (conn, stream) = (ConnectionHandle::from_index(0), weir_core::wire::StreamId(0));
        sim.endpoint(0).reset_stream(conn, stream, 42).unwrap();
        sim.run_for(Duration::from_secs(1), read);
        sim.take_trace(1)
    }),
    ("relay-pipe", || {
        let mut sim = Sim::new(5);
        let nodes: Vec<NodeId> = (0..3).map(|_| sim.add_traced_node(quick())).collect();
        sim.link(nodes[0], nodes[1], LinkConfig::default());
        sim.link(nodes[1], nodes[2], LinkConfig::default());
        let down = sim.connect(nodes[1], nodes[2]);
        let up = sim.connect(nodes[0], nodes[1]);
        sim.run_for(Duration::from_secs(1), |sim, node, e| match (node, &e) {
            (0, Event::Connected { .. }) => {
                let msg: Bytes = vec![9u8; 5000].into();
                sim.endpoint(0).send_verified_message(up, None, msg).unwrap();
            }
            (1, Event::StreamOpened { conn, stream, .. }) if *conn != down => {
                sim.endpoint(1)
                    .pipe(*conn, *stream, &[down], LocalRead::Discard)
                    .unwrap();
            }
            _ => read_messages(sim, node, &e),
        });
        sim.take_trace(1)
    }),
    ("idle-timeout", || {
        pair(6, quick(), quick(), LinkConfig::default(), 4, |_, _, _| {}).take_trace(0)
    }),
];

#[test]
fn golden_traces_replay() {
    let update = std::env::var_os("WEIR_UPDATE_TRACES").is_some();
    for (name, make) in SCENARIOS {
        if update {
            std::fs::write(golden_dir().join(format!("{name}.trace")), make()).unwrap();
        }
        let trace = golden(name);
        let replayed = replay(&trace).unwrap_or_else(|e| panic!("spec/traces/{name}.trace: {e}"));
        println!("{name}: {replayed:?}");
    }
    // Every golden trace on disk is one of the scenarios (none left over from a rename).
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(name) = file.strip_suffix(".trace") else {
            continue;
        };
        assert!(
            SCENARIOS.iter().any(|(n, _)| *n == name),
            "{file} has no scenario"
        );
    }
}

#[test]
fn the_golden_traces_show_what_their_names_say() {
    let events = |name| {
        golden(name)
            .lines()
            .filter(|l| l.contains(" event => ") && !l.ends_with("none"))
            .map(|l| l.split(" event => ").nth(1).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(events("handshake")[0].starts_with("Connected"));
    assert!(events("version-rejection")
        .iter()
        .any(|e| e.starts_with("HandshakeFailed")));
    assert!(golden("lossy-transfer").contains(" read_message #0 s0 1048576 => data 0 "));
    assert!(events("stream-reset")
        .iter()
        .any(|e| e.contains("StreamReset") && e.contains("code: 42")));
    assert!(events("relay-pipe").iter().any(|e| e.starts_with("PipeFinished")));
    assert!(events("idle-timeout").iter().any(|e| e.contains("TimedOut")));
}

/// The record at `line` (from 1) of `trace`.
fn line_of(trace: &str, line: usize) -> &str {
    trace.lines().nth(line - 1).unwrap()
}

#[test]
fn a_changed_behaviour_fails_the_replay_at_the_first_difference() {
    // The same recorded inputs into an endpoint that behaves differently: a shorter initial
    // RTT estimate moves the first probe timer.
    let trace = golden("handshake").replacen("initial_rtt=100000", "initial_rtt=50000", 1);
    let Err(TraceError::Diverged {
        line,
        offset,
        expected,
        actual,
    }) = replay(&trace)
    else {
        panic!("the replay should differ")
    };
    assert!(line_of(&trace, line).ends_with(&format!("=> {expected}")));
    assert_ne!(expected, actual);
    // The first differing position, and no difference before it.
    assert_eq!(expected[..offset], actual[..offset]);
    assert_ne!(expected.as_bytes().get(offset), actual.as_bytes().get(offset));
    let shown = replay(&trace).unwrap_err().to_string();
    assert!(
        shown.contains(&format!("line {line}: replay differs at character {offset}"))
            && shown.contains("expected")
            && shown.contains("actual"),
        "{shown}"
    );
    // Around the difference, not whole datagrams.
    assert!(shown.lines().all(|l| l.len() < 80), "{shown}");
    println!("{shown}");
}

#[test]
fn traces_the_replayer_cannot_honour_are_refused() {
    let trace = golden("handshake");
    assert_eq!(
        replay(&trace.replacen("weir-trace 1", "weir-trace 2", 1)),
        Err(TraceError::UnsupportedVersion { found: "2".into() })
    );
    assert_eq!(
        replay(&trace.replacen("config ", "config warp_drive=on ", 1)),
        Err(TraceError::UnknownConfigKey {
            key: "warp_drive".into()
        })
    );
    assert_eq!(
        replay(&trace.replacen("max_probe_interval=2000000", "max_probe_interval=many", 1)),
        Err(TraceError::BadConfig {
            key: "max_probe_interval".into()
        })
    );
    assert_eq!(replay("hello"), Err(TraceError::NotATrace));
    // A command named without the arguments it takes is a bad record, not a panic of the
    // parser (found by clippy's indexing_slicing: `open_stream` read past its arguments).
    let lines = trace.lines().count();
    for call in ["open_stream", "open_stream ", "connect", "write", "pipe"] {
        assert_eq!(
            replay(&format!("{trace}20000 {call} => ok\n")),
            Err(TraceError::BadRecord { line: lines + 1 }),
            "{call:?}"
        );
    }
}

#[test]
fn a_failing_trace_shrinks_to_its_shortest_failing_prefix() {
    let trace = golden("lossy-transfer");
    // Break one recorded output two thirds of the way in: the replay fails there, and no
    // record after it is needed to show it.
    let lines: Vec<&str> = trace.lines().collect();
    let target = (lines.len() * 2 / 3..lines.len())
        .find(|&i| lines[i].contains(" out ") && !lines[i].ends_with("none"))
        .unwrap();
    let mut broken: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    broken[target] = broken[target].replacen(" => ", " => 10.9.9.9:1 ", 1);
    let broken = broken.join("\n");
    let Err(TraceError::Diverged { line, .. }) = replay(&broken) else {
        panic!("the broken trace fails")
    };
    assert_eq!(line, target + 1);
    let mut runs = 0;
    let short = shrink(&broken, |t| {
        runs += 1;
        replay(t).is_err()
    })
    .unwrap();
    assert_eq!(short.lines().count(), target + 1, "ends at the failing record");
    assert!(matches!(replay(&short), Err(TraceError::Diverged { line: l, .. }) if l == line));
    assert!(runs <= 2 + lines.len().ilog2() as usize, "{runs} replays");
    assert_eq!(
        shrink(&trace, |t| replay(t).is_err()),
        None,
        "a passing trace does not shrink"
    );
}

#[test]
fn a_recorded_lossy_session_replays_on_both_sides() {
    let lossy = LinkConfig {
        loss: 0.05,
        duplicate: 0.02,
        reorder: 0.05,
        ..LinkConfig::default()
    };
    let mut delivered = None;
    let mut sim = pair(
        7,
        Config::default(),
        Config::default(),
        lossy,
        10,
        |sim, node, e| {
            if let (0, Event::Connected { conn, .. }) = (node, &e) {
                sim.endpoint(0)
                    .send_message(*conn, None, vec![7u8; 20_000].into())
                    .unwrap();
            }
            if let (1, Event::StreamReadable { conn, stream }) = (node, &e) {
                if let Ok(Read::Data { bytes, .. }) = sim.endpoint(1).read_message(*conn, *stream, 1 << 20) {
                    delivered = Some(bytes);
                }
            }
        },
    );
    assert_eq!(
        delivered,
        Some(Bytes::from(vec![7u8; 20_000])),
        "the message arrived whole"
    );
    assert!(sim
        .endpoint_ref(1)
        .connection_stats(ConnectionHandle::from_index(0))
        .is_some());
    for node in [0, 1] {
        let replayed = replay(&sim.take_trace(node)).unwrap_or_else(|e| panic!("node {node}: {e}"));
        assert!(replayed.outputs > 10, "{replayed:?}");
    }
}

#[test]
fn replay_with_shows_each_record_with_the_endpoint_it_left() {
    let trace = golden("lossy-transfer");
    let mut steps = 0;
    let mut last_line = 0;
    let mut saw_read = false;
    let mut connections_seen = 0;
    let replayed = weir_core::trace::replay_with(&trace, |step| {
        steps += 1;
        assert!(step.line > last_line, "records come in order");
        last_line = step.line;
        assert_eq!(
            line_of(&trace, step.line).split_once(' ').map(|(_, r)| r),
            Some(step.record)
        );
        let conns: Vec<_> = step.endpoint.connections().collect();
        connections_seen = connections_seen.max(conns.len());
        saw_read |= conns
            .iter()
            .filter_map(|&c| step.endpoint.connection_stats(c))
            .any(|s| s.bytes_read > 0);
    })
    .unwrap();
    assert_eq!(steps, replayed.records, "one step per record");
    assert_eq!(connections_seen, 1, "the trace's one connection is listed");
    assert!(saw_read, "the observer sees state the trace does not write down");
}

/// Issue 29, item 7: a sender that hands a large chunk over as room frees up made the trace
/// record the whole remainder at every try (188 MB for a 24 MiB transfer). A write records
/// the bytes it took, a refused one a single byte; the trace still replays.
#[test]
fn a_partial_write_records_only_the_bytes_it_took() {
    let config = Config {
        send_buffer: 64 << 10,
        ..quick()
    };
    let mut sim = Sim::new(11);
    let c = sim.add_traced_node(config.clone());
    let s = sim.add_node(config);
    sim.link(c, s, LinkConfig::default());
    let conn = sim.connect(c, s);
    sim.run_for(Duration::from_millis(200), |sim, node, e| {
        read_messages(sim, node, &e)
    });
    let id = sim
        .endpoint(c)
        .open_stream(conn, StreamHeader::default())
        .unwrap();
    let data: Bytes = (0..1u32 << 20)
        .map(|i| (i * 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut sent = 0;
    let mut tries = 0;
    while sent < data.len() {
        tries += 1;
        if let Ok(n) = sim.endpoint(c).write(conn, id, data.slice(sent..)) {
            sent += n;
        }
        sim.run_for(Duration::from_millis(5), |sim, node, e| {
            if let Event::StreamReadable { conn, stream } = e {
                while let Ok(Read::Data { .. }) = sim.endpoint(node).read(conn, stream, usize::MAX) {}
            }
        });
    }
    assert!(tries > 10, "the buffer took it in {tries} tries");
    let trace = sim.take_trace(c);
    let written_hex: usize = trace
        .lines()
        .filter_map(|l| l.split_once(" write ").map(|(_, rest)| rest))
        .map(|rest| rest.split_whitespace().nth(2).map_or(0, |hex| hex.len()))
        .sum();
    // Each byte once (two hex digits), plus one byte per refused try.
    assert!(
        written_hex >= 2 * data.len() && written_hex <= 2 * (data.len() + tries),
        "{written_hex}"
    );
    assert!(trace.len() < 6 << 20, "{} bytes of trace for 1 MiB", trace.len());
    replay(&trace).unwrap();
}

/// Issue 30, item 10: a trace records no secret — neither the seed, nor the configured
/// identity's secret key, nor the fresh entropy (recorded by its length) — and replays only
/// with its own secrets given apart; `inline_secrets` makes it self-contained again for
/// tests. (Before, the header held the seed, the config line the key and `add_entropy` the
/// bytes.)
#[test]
fn a_trace_holds_no_secret_and_replays_only_with_its_own() {
    use weir_core::trace::{inline_secrets, replay, replay_with_secrets, TraceError, TraceSecrets};
    use weir_core::{Endpoint, Identity, Seed};
    let identity = Identity::from_seed(&Seed::from(31));
    let seed = Seed::from_bytes([0x3c; 32]);
    let config = Config {
        identity: Some(identity.clone()),
        ..Config::default()
    };
    let mut ep = Endpoint::new_traced(config.clone(), seed.clone());
    ep.add_entropy(&[0x6b; 32]);
    let now = weir_core::time::Instant::ZERO;
    ep.connect(now, "10.0.0.2:4000".parse().unwrap()).unwrap();
    let mut buf = vec![0u8; 2048];
    while ep.poll_transmit(now, &mut buf).is_some() {}
    let trace = ep.take_trace();
    let secrets = ep.trace_secrets().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for secret in [
        hex(seed.as_bytes()),
        hex(identity.secret_bytes()),
        hex(&[0x6b; 32]),
    ] {
        assert!(!trace.contains(&secret), "the trace holds {secret}");
    }
    assert!(trace.contains("add_entropy len=32"));
    assert_eq!(replay(&trace).err(), Some(TraceError::SecretsMissing));
    let others = Endpoint::new_traced(config, Seed::from(32))
        .trace_secrets()
        .unwrap();
    assert_eq!(
        replay_with_secrets(&trace, Some(&others), |_| {}).err(),
        Some(TraceError::SecretsMismatch)
    );
    // Through their text, as the `.secrets` file carries them.
    let read = TraceSecrets::parse(&secrets.to_text()).unwrap();
    assert!(replay_with_secrets(&trace, Some(&read), |_| {}).is_ok_and(|r| r.outputs > 0));
    let inline = inline_secrets(&trace, &secrets).unwrap();
    assert!(replay(&inline).is_ok_and(|r| r.outputs > 0));
}

/// A controller of the user's own: a fixed window of 20 datagrams, no pacing rate.
#[derive(Debug)]
struct FixedWindow;

impl weir_core::congestion::CongestionController for FixedWindow {
    fn on_sent(&mut self, _: weir_core::time::Instant, _: usize, _: usize) {}
    fn on_ack(&mut self, _: &weir_core::congestion::AckEvent) {}
    fn on_loss(&mut self, _: &weir_core::congestion::LossEvent) {}
    fn on_persistent_congestion(&mut self, _: weir_core::time::Instant) {}
    fn window(&self) -> usize {
        20 * 1200
    }
    fn in_slow_start(&self) -> bool {
        false
    }
}

impl weir_core::congestion::ControllerFactory for FixedWindow {
    fn name(&self) -> &str {
        "fixed-20"
    }
    fn build(&self, _: usize) -> Box<dyn weir_core::congestion::CongestionController> {
        Box::new(FixedWindow)
    }
}

/// Issue 31, "pluggable": a connection runs a controller the user wrote, its trace names it
/// (`custom:fixed-20`), and the trace replays given the same factory and refuses to replay
/// without it.
#[test]
fn a_custom_controller_runs_and_its_trace_replays_with_its_factory() {
    use std::sync::Arc;
    use weir_core::congestion::{CongestionAlgorithm, ControllerFactory};
    let factory: Arc<dyn ControllerFactory> = Arc::new(FixedWindow);
    let config = Config {
        congestion: CongestionAlgorithm::Custom(factory.clone()),
        ..quick()
    };
    let mut sim = Sim::new(31);
    let c = sim.add_traced_node(config.clone());
    let s = sim.add_node(config);
    sim.link(c, s, LinkConfig::default());
    let conn = sim.connect(c, s);
    let body = Bytes::from(vec![7u8; 200_000]);
    let mut sent = false;
    let mut windows = Vec::new();
    sim.run_for(Duration::from_secs(5), |sim, node, e| {
        if let Event::Connected { .. } = e {
            if node == c && !sent {
                sent = true;
                sim.endpoint(c).send_message(conn, None, body.clone()).unwrap();
            }
        }
        if let Some(stats) = sim.endpoint_ref(c).connection_stats(conn) {
            windows.push(stats.congestion_window);
        }
    });
    assert!(sent);
    assert!(windows.iter().all(|&w| w == 24_000), "{windows:?}");
    let stats = sim.endpoint_ref(c).connection_stats(conn).unwrap();
    assert_eq!(stats.bytes_acked, 200_000, "{stats:?}");
    let trace = sim.take_trace(c);
    assert!(trace.contains("congestion=custom:fixed-20"), "{}", &trace[..300]);
    assert!(matches!(
        replay(&trace),
        Err(TraceError::UnknownController { name }) if name == "fixed-20"
    ));
    let replayed = weir_core::trace::replay_with_controllers(&trace, None, &[factory], |_| {}).unwrap();
    assert!(replayed.outputs > 10, "{replayed:?}");
}
