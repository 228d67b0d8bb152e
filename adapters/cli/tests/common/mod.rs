//! What the `weir` command's suites share: running the binary in the foreground under a
//! time limit or in the background, reading what it prints, and test files.
#![allow(dead_code)] // each suite uses its own part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

/// Longest any one `weir` run may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(120);

pub fn weir() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("weir").expect("the weir binary");
    cmd.timeout(LIMIT);
    cmd
}

/// A `weir` process running in the background, killed when dropped.
pub struct Background {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Background {
    pub fn start(args: &[&str]) -> Background {
        Background::spawn(Command::cargo_bin("weir").expect("the weir binary").args(args))
    }

    /// [`start`](Self::start) with one environment variable set.
    pub fn start_with_env(args: &[&str], (name, value): (&str, &str)) -> Background {
        Background::spawn(
            Command::cargo_bin("weir")
                .expect("the weir binary")
                .args(args)
                .env(name, value),
        )
    }

    pub fn spawn(command: &mut Command) -> Background {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Background { child, stdout }
    }

    /// The address in its first line (`listening on ADDR key KEY`, `relaying ADDR (key KEY)
    /// -> ...`).
    pub fn address(&mut self) -> String {
        self.address_and_key().0
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its next line of output.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("a line");
        line
    }

    /// The address and the public key its first line gives.
    pub fn address_and_key(&mut self) -> (String, String) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("a first line");
        let words: Vec<&str> = line.split_whitespace().collect();
        let addr = words
            .iter()
            .find(|w| w.parse::<SocketAddr>().is_ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let key = words
            .iter()
            .map(|w| w.trim_matches(|c| c == '(' || c == ')'))
            .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
            .unwrap_or_else(|| panic!("no key in {line:?}"));
        (addr.to_string(), key.to_string())
    }

    /// Waits (bounded by [`LIMIT`]) for it to exit; its exit code, stdout and stderr.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let start = Instant::now();
        while self.child.try_wait().expect("waitable").is_none() {
            assert!(start.elapsed() < LIMIT, "weir did not exit within {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.child.wait().expect("exited");
        let mut stdout = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut stdout);
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        (status.code(), stdout, stderr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `weir args`; asserts it exits with `code` and its stderr holds `message`.
pub fn fails_with(args: &[&str], code: i32, message: &str) {
    let out = weir().args(args).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(message), "expected {message:?} in: {err}");
}

pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A file of `len` bytes of a pattern that shows any shifted or repeated block.
pub fn make_file(dir: &Path, name: &str, len: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

/// An empty `out` directory in `dir`, and `weir recv` listening at `listen` writing into it
/// with `extra` options, in the background (started from the calling thread, so in its
/// network namespace).
pub fn start_receiver(dir: &Path, listen: &str, extra: &[&str]) -> (PathBuf, Background) {
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut args = vec!["recv", "--listen", listen, "--out", out_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let recv = Background::start(&args);
    (out_dir, recv)
}
