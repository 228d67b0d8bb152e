//! The `weir` command as a user runs it: the demo, three processes moving a file through a
//! relay, the simulator and trace tools, and each failure's message and exit code. On
//! 127.0.0.1 only; every process runs under a time limit and is killed if it overstays.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fails_with, make_file, start_receiver, stderr_of, stdout_of, weir, Background, LIMIT};
use weir_sim::proxy::{Impairment, Proxy};

/// An empty `out` directory in `dir`, and `weir recv` on 127.0.0.1 writing into it with
/// `extra` options; the receiver and its address.
fn receiver(dir: &Path, extra: &[&str]) -> (std::path::PathBuf, Background, String) {
    let (out_dir, mut recv) = start_receiver(dir, "127.0.0.1:0", extra);
    let addr = recv.address();
    (out_dir, recv, addr)
}

/// A proxy in front of the receiver at `addr` that lets 10 MB/s through, so that a 64 MiB
/// transfer takes at least six seconds however fast the machine: a test that stops a
/// transfer midway must not race the transfer's end (unimpeded, a release build moves it
/// over loopback in a fraction of a second, and CI once saw the sender finish first).
fn slow_path_to(addr: &str) -> Proxy {
    let path = Impairment {
        rate: Some(10_000_000),
        queue_bytes: 512 << 10,
        ..Impairment::default()
    };
    Proxy::start(addr.parse().expect("an address"), path).expect("a proxy on 127.0.0.1")
}

#[test]
fn the_demo_completes_and_prints_the_verified_summary() {
    let out = weir()
        .args(["demo", "--size", "1MiB", "--loss", "2%", "--delay", "5ms"])
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}\n{}", stderr_of(&out));
    for line in [
        "delivered:         1.0 MiB",
        "goodput:",
        "sender -> relay:",
        "relay -> receiver:",
        "relay peak:",
        "retransmitted",
        "rtt smoothed",
        "verified:          digest matches",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // The proxies dropped datagrams: the 2% impairment was applied between the sockets
    // (about 18 of ~900 per hop; none on both hops has odds below 1e-14).
    let dropped: u64 = text
        .lines()
        .filter(|l| l.starts_with("path "))
        .filter_map(|l| {
            l.split(" forwarded, ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(dropped > 0, "no datagram dropped on either hop:\n{text}");
}

/// `--rate` puts a bottleneck with a queue of one BDP on the path (the proxy's rate limit),
/// and the note before the run says that is what bounds BBR's speed; each controller
/// crosses it with 1% loss, verified.
#[test]
fn the_demo_crosses_a_rate_limited_lossy_path_with_each_controller() {
    for cc in ["bbr", "ledbat", "newreno"] {
        let out = weir()
            .args([
                "demo",
                "--direct",
                "--size",
                "512KiB",
                "--loss",
                "1%",
                "--delay",
                "5ms",
                "--rate",
                "80mbit",
                "--congestion",
                cc,
            ])
            .output()
            .unwrap();
        let text = stdout_of(&out);
        assert!(out.status.success(), "{cc}: {text}\n{}", stderr_of(&out));
        assert!(text.contains("verified:          digest matches"), "{cc}: {text}");
        if cc == "bbr" {
            assert!(
                text.contains("the speed is the 10.0 MB/s (80 Mbit/s) bottleneck"),
                "{text}"
            );
        }
    }
}

/// The bytes the demo's sender line says were retransmitted ("..., 35.0 KiB retransmitted").
fn retransmitted(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("sender:"))
        .unwrap_or_else(|| panic!("no sender line: {text}"));
    let before = line
        .split(" retransmitted")
        .next()
        .and_then(|l| l.rsplit(", ").next())
        .unwrap_or_else(|| panic!("no retransmitted figure: {line}"));
    let (number, unit) = before.split_once(' ').unwrap_or((before, "B"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other} in {line}"),
    };
    number.parse::<f64>().unwrap() * scale
}

/// `--jitter` delays each datagram by a random extra up to 10 ms on a 20 ms path, so they
/// overtake each other: loss detection learns the reordering and resends little (measured:
/// 35 to 71 KiB of 4 MiB). Before its time threshold adapted, about a fifth of all bytes
/// were resent for nothing and the goodput fell to a tenth of the link.
#[test]
fn the_demo_crosses_a_jittery_path_without_resending_for_nothing() {
    let out = weir()
        .args([
            "demo", "--direct", "--size", "4MiB", "--loss", "0", "--delay", "10ms", "--rate", "80mbit",
            "--jitter", "10ms",
        ])
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}\n{}", stderr_of(&out));
    assert!(text.contains("plus up to 10ms of jitter"), "{text}");
    assert!(text.contains("verified:          digest matches"), "{text}");
    let resent = retransmitted(&text);
    assert!(
        resent < 0.1 * 4.0 * 1024.0 * 1024.0,
        "{resent} bytes resent: {text}"
    );
}

/// A path that stalls and then delivers what it held at once, in order (`--jitter-order
/// in-order`, a Wi-Fi hop's aggregation) through the impairing proxy: the demo says so, the
/// digest matches, and nothing much is resent (no datagram is overtaken, so none is
/// declared lost for lateness).
#[test]
fn the_demo_crosses_a_stalling_path() {
    let out = weir()
        .args([
            "demo",
            "--direct",
            "--size",
            "4MiB",
            "--loss",
            "0",
            "--delay",
            "10ms",
            "--rate",
            "80mbit",
            "--jitter",
            "10ms",
            "--jitter-order",
            "in-order",
        ])
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}\n{}", stderr_of(&out));
    assert!(text.contains("plus up to 10ms of jitter (in order)"), "{text}");
    assert!(text.contains("verified:          digest matches"), "{text}");
    let resent = retransmitted(&text);
    assert!(
        resent < 0.1 * 4.0 * 1024.0 * 1024.0,
        "{resent} bytes resent: {text}"
    );
}

#[test]
fn send_recv_and_relay_move_a_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "payload.bin", 3_000_000);
    let (out_dir, recv, recv_addr) = receiver(dir.path(), &["--once"]);
    let mut relay = Background::start(&["relay", "--listen", "127.0.0.1:0", "--to", &recv_addr]);
    let relay_addr = relay.address();
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &relay_addr])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", stderr_of(&sent));
    assert!(
        stdout_of(&sent).contains("sent payload.bin"),
        "{}",
        stdout_of(&sent)
    );
    let (code, stdout, stderr) = recv.finish();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verified: digest matches"), "{stdout}");
    let got = std::fs::read(out_dir.join("payload.bin")).unwrap();
    assert!(got == std::fs::read(&file).unwrap(), "the file differs");
    assert!(!out_dir.join(".payload.bin.weir-part").exists());
    drop(relay);
}

#[test]
fn a_receiver_serves_senders_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..3)
        .map(|i| make_file(dir.path(), &format!("f{i}.bin"), 500_000 + i * 1000))
        .collect();
    let (out_dir, recv, addr) = receiver(dir.path(), &[]);
    let senders: Vec<_> = files
        .iter()
        .map(|f| Background::start(&["send", f.to_str().unwrap(), "--to", &addr]))
        .collect();
    for sender in senders {
        let (code, stdout, stderr) = sender.finish();
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    }
    for f in &files {
        let got = out_dir.join(f.file_name().unwrap());
        let start = Instant::now();
        while !got.exists() {
            assert!(start.elapsed() < LIMIT, "{} never arrived", got.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(std::fs::read(&got).unwrap() == std::fs::read(f).unwrap());
    }
    drop(recv);
}

#[test]
fn a_bad_address_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "f", 10);
    let f = file.to_str().unwrap();
    fails_with(
        &["send", f, "--to", "no-such-host.invalid"],
        3,
        "bad address `no-such-host.invalid`",
    );
}

#[test]
fn a_port_in_use_is_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = dir.path().to_str().unwrap();
    fails_with(
        &["recv", "--listen", &addr, "--out", out],
        5,
        &format!("cannot listen on {addr}"),
    );
}

#[test]
fn a_missing_file_is_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bin");
    fails_with(
        &["send", missing.to_str().unwrap(), "--to", "127.0.0.1:9"],
        4,
        "missing.bin",
    );
}

/// `weir keygen` writes an identity readable by its owner only and prints its key; a
/// receiver started with it (by `--identity`, or from the default file `$WEIR_IDENTITY`
/// names) has that key, run after run; an existing identity is replaced only with
/// `--force`, and a file others may read is refused.
#[test]
fn an_identity_made_by_keygen_keeps_a_receiver_s_key_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("identity");
    let path_str = path.to_str().unwrap();
    let out = weir().args(["keygen", "--out", path_str]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let key = stdout_of(&out).trim().to_string();
    assert!(
        key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    for run in 0..2 {
        let mut recv = Background::start(&[
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--out",
            dir.path().to_str().unwrap(),
            "--identity",
            path_str,
        ]);
        assert_eq!(recv.address_and_key().1, key, "run {run}");
    }
    // The default file, named by the environment.
    let mut recv = Background::start_with_env(
        &[
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        ("WEIR_IDENTITY", path_str),
    );
    assert_eq!(recv.address_and_key().1, key, "from the default file");
    drop(recv);

    fails_with(&["keygen", "--out", path_str], 4, "exists there already");
    let nowhere = weir()
        .arg("keygen")
        .env_remove("WEIR_IDENTITY")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("HOME")
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(4));
    assert!(
        stderr_of(&nowhere).contains("no default location"),
        "{}",
        stderr_of(&nowhere)
    );
    let again = weir()
        .args(["keygen", "--out", path_str, "--force"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_ne!(stdout_of(&again).trim(), key, "a new key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        fails_with(
            &[
                "recv",
                "--listen",
                "127.0.0.1:0",
                "--out",
                ".",
                "--identity",
                path_str,
            ],
            4,
            "chmod 600",
        );
    }
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a key\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    fails_with(
        &[
            "send",
            path_str,
            "--to",
            "127.0.0.1:9",
            "--identity",
            junk.to_str().unwrap(),
        ],
        4,
        "not an identity file",
    );
}

#[test]
fn an_unreachable_peer_is_exit_6() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "f", 10);
    // A socket that reads nothing and answers nothing.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let args = [
        "send",
        file.to_str().unwrap(),
        "--to",
        &addr,
        "--handshake-timeout",
        "1s",
    ];
    fails_with(&args, 6, &format!("no answer from {addr}"));
}

#[test]
fn a_sender_naming_the_receivers_key_gets_through_and_a_wrong_key_is_exit_7() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "keyed.bin", 10_000);
    let (out_dir, mut recv) = start_receiver(dir.path(), "127.0.0.1:0", &["--once"]);
    let (addr, key) = recv.address_and_key();
    let wrong = "11".repeat(32);
    fails_with(
        &[
            "send",
            file.to_str().unwrap(),
            "--to",
            &addr,
            "--peer-key",
            &wrong,
        ],
        7,
        &format!("the server does not hold the key {wrong}"),
    );
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &addr, "--peer-key", &key])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", stderr_of(&sent));
    let (code, stdout, stderr) = recv.finish();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(std::fs::read(out_dir.join("keyed.bin")).unwrap() == std::fs::read(&file).unwrap());
}

#[test]
fn a_version_mismatch_is_exit_7_with_both_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "f", 10);
    let (_, _recv, addr) = receiver(dir.path(), &["--versions", "1"]);
    let message = "we speak versions 2..=2, the peer speaks 1..=1";
    fails_with(&["send", file.to_str().unwrap(), "--to", &addr], 7, message);
}

#[test]
fn a_transfer_cut_off_midway_is_exit_1_with_what_was_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "big.bin", 64 << 20);
    let (out_dir, recv, addr) = receiver(dir.path(), &["--once", "--idle-timeout", "1s"]);
    let path = slow_path_to(&addr);
    let to = path.addr().to_string();
    let sender = Background::start(&["send", file.to_str().unwrap(), "--to", &to]);
    // Kill the sender once the receiver has written part of the file.
    let part = out_dir.join(".big.bin.weir-part");
    let start = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) == 0 {
        assert!(start.elapsed() < LIMIT, "nothing arrived within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(sender);
    let (code, stdout, stderr) = recv.finish();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let total = (64u64 << 20).to_string();
    assert!(stderr.contains("transfer interrupted after "), "{stderr}");
    assert!(
        stderr.contains(&format!(
            " of {total} bytes: connection lost: the peer stopped answering"
        )),
        "{stderr}"
    );
    assert!(!part.exists(), "the partial file is removed");
    assert!(!out_dir.join("big.bin").exists());
}

/// `-v` turns the transport's logs on (stderr), the command's own among them, in plain text
/// when stderr is not a terminal; `RUST_LOG` chooses them; without either, a run prints only
/// its result.
#[test]
fn verbose_and_rust_log_drive_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "logged.bin", 20_000);
    for (flags, env, wanted) in [
        (&[][..], None, None),
        (&["-v"][..], None, Some("connection established")),
        (
            &["-v"][..],
            None,
            Some("the receiver sees us at this address public=127.0.0.1:"),
        ),
        (&[][..], Some("weir_driver=debug"), Some("receipt")),
    ] {
        let sub = tempfile::tempdir().unwrap();
        let (_, recv, addr) = receiver(sub.path(), &["--once"]);
        let mut cmd = weir();
        cmd.args(flags)
            .args(["send", file.to_str().unwrap(), "--to", &addr]);
        cmd.env_remove("RUST_LOG");
        if let Some(directives) = env {
            cmd.env("RUST_LOG", directives);
        }
        let sent = cmd.output().unwrap();
        let err = stderr_of(&sent);
        assert!(sent.status.success(), "{err}");
        match wanted {
            Some(line) => assert!(err.contains(line), "{flags:?} {env:?}: no {line:?} in {err}"),
            None => assert!(
                !err.contains("INFO") && !err.contains("DEBUG"),
                "logs without -v: {err}"
            ),
        }
        let (code, _, _) = recv.finish();
        assert_eq!(code, Some(0));
    }
}

/// A file of the same name in the receiver's directory is not overwritten: the transfer is
/// refused and both ends say why; with `--force` it is replaced.
#[test]
fn an_existing_file_is_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "same.bin", 50_000);
    let (out_dir, recv, addr) = receiver(dir.path(), &["--once"]);
    std::fs::write(out_dir.join("same.bin"), b"precious").unwrap();
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &addr])
        .output()
        .unwrap();
    assert_eq!(sent.status.code(), Some(1), "{}", stderr_of(&sent));
    assert!(
        stderr_of(&sent).contains("the receiver already has a file of that name"),
        "{}",
        stderr_of(&sent)
    );
    let (code, _, stderr) = recv.finish();
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("same.bin: exists: refused the transfer (--force replaces it)"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out_dir.join("same.bin")).unwrap(), b"precious");
    assert!(!out_dir.join(".same.bin.weir-part").exists());
    // With --force.
    let forced = tempfile::tempdir().unwrap();
    let (out_dir, recv, addr) = receiver(forced.path(), &["--once", "--force"]);
    std::fs::write(out_dir.join("same.bin"), b"old").unwrap();
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &addr])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", stderr_of(&sent));
    assert_eq!(recv.finish().0, Some(0));
    assert!(std::fs::read(out_dir.join("same.bin")).unwrap() == std::fs::read(&file).unwrap());
}

/// The receiver read and verified every byte but could not put the file in place (its name
/// is a directory there): the sender is not told it was delivered, and says why.
#[test]
fn a_file_the_receiver_cannot_keep_is_not_reported_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "blocked.bin", 40_000);
    let (out_dir, recv, addr) = receiver(dir.path(), &["--once", "--force"]);
    std::fs::create_dir_all(out_dir.join("blocked.bin").join("inside")).unwrap();
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &addr])
        .output()
        .unwrap();
    let err = stderr_of(&sent);
    assert_eq!(sent.status.code(), Some(1), "{err}");
    assert!(err.contains("the receiver could not write it to disk"), "{err}");
    let (code, _, stderr) = recv.finish();
    assert_eq!(code, Some(4), "{stderr}");
    assert!(out_dir.join("blocked.bin").is_dir());
    assert!(!out_dir.join(".blocked.bin.weir-part").exists());
}

/// Ctrl-C in the middle of a transfer: the sender tells the receiver, prints one line and
/// exits 130; the receiver says the sender was interrupted and leaves no partial file.
#[test]
fn ctrl_c_stops_a_transfer_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "big.bin", 64 << 20);
    let (out_dir, recv, addr) = receiver(dir.path(), &["--once"]);
    let path = slow_path_to(&addr);
    let to = path.addr().to_string();
    let sender = Background::start(&["send", file.to_str().unwrap(), "--to", &to]);
    let part = out_dir.join(".big.bin.weir-part");
    let start = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) == 0 {
        assert!(start.elapsed() < LIMIT, "nothing arrived within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &sender.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let (code, _, stderr) = sender.finish();
    assert_eq!(code, Some(130), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("weir:")).collect();
    assert_eq!(
        lines,
        ["weir: interrupted (Ctrl-C): big.bin was not delivered; the receiver was told"],
        "{stderr}"
    );
    let (code, _, stderr) = recv.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the other end was interrupted (Ctrl-C)"),
        "{stderr}"
    );
    assert!(!part.exists(), "the partial file is removed");
    assert!(!out_dir.join("big.bin").exists());
}
