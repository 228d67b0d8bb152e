//! Checks every test vector of spec/vectors/ (format: spec/vectors/README.md) against the
//! codec: valid vectors decode to the given text form and re-encode to identical bytes;
//! invalid ones fail with the given error.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use weir_core::crypto::{next_key, open_with_key, seal_with_key};
use weir_core::wire::{decode, encode_packet, Cipher, Datagram, Frame, MAX_DATAGRAM_SIZE};

mod support {
    pub mod error_kind;
}
use support::error_kind::error_kind;

#[derive(Clone, Default)]
struct Vector {
    name: String,
    largest: Option<u64>,
    bytes: Vec<u8>,
    expect_ok: Option<bool>,
    error: String,
    text: Vec<String>,
    /// A sealed packet's cipher and key (version 2).
    cipher: Option<Cipher>,
    key: Option<[u8; 32]>,
    /// A key-update vector: the key that follows `key`.
    next: Option<[u8; 32]>,
}

fn key32(hex: &str) -> [u8; 32] {
    assert_eq!(hex.len(), 64, "a key is 64 hex digits");
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digit"))
}

fn parse(src: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    let mut cur: Option<Vector> = None;
    for (n, line) in src.lines().enumerate() {
        let at = || format!("line {}", n + 1);
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        if key == "vector" {
            out.extend(cur.take());
            cur = Some(Vector {
                name: rest.to_string(),
                ..Vector::default()
            });
            continue;
        }
        let v = cur
            .as_mut()
            .unwrap_or_else(|| panic!("{}: record before `vector`", at()));
        match key {
            "about" => {}
            "largest" => {
                v.largest = if rest == "none" {
                    None
                } else {
                    Some(rest.parse().expect("largest"))
                }
            }
            "hex" => {
                assert!(rest.len() % 2 == 0, "{}: odd hex", at());
                for i in (0..rest.len()).step_by(2) {
                    v.bytes
                        .push(u8::from_str_radix(&rest[i..i + 2], 16).expect("hex digit"));
                }
            }
            "zeros" => v
                .bytes
                .resize(v.bytes.len() + rest.parse::<usize>().expect("count"), 0),
            "ok" => v.expect_ok = Some(true),
            "error" => {
                v.expect_ok = Some(false);
                v.error = rest.to_string();
            }
            "|" => v.text.push(rest.to_string()),
            "cipher" => {
                v.cipher = Some(
                    Cipher::ALL
                        .into_iter()
                        .find(|c| c.to_string() == rest)
                        .unwrap_or_else(|| panic!("{}: unknown cipher", at())),
                )
            }
            "key" => v.key = Some(key32(rest)),
            "next" => v.next = Some(key32(rest)),
            _ => panic!("{}: unknown record `{key}`", at()),
        }
    }
    out.extend(cur);
    out
}

fn check(v: &Vector) -> Result<(), String> {
    if let (Some(key), Some(next)) = (v.key, v.next) {
        return match next_key(key) == next {
            true => Ok(()),
            false => Err("the next key differs".into()),
        };
    }
    let keyed = v.cipher.zip(v.key);
    let result = match keyed {
        Some((cipher, key)) => {
            open_with_key(cipher, key, BytesMut::from(&v.bytes[..]), v.largest).map(Datagram::Packet)
        }
        None => decode(Bytes::copy_from_slice(&v.bytes), v.largest),
    };
    match (v.expect_ok, result) {
        (Some(true), Ok(d)) => {
            let text: Vec<String> = d.to_string().lines().map(str::to_string).collect();
            if text != v.text {
                return Err(format!(
                    "decoded to\n{}\nexpected\n{}",
                    text.join("\n"),
                    v.text.join("\n")
                ));
            }
            let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
            let len = match &d {
                Datagram::Packet(p) => {
                    let frames: Vec<Frame> = p.frames().collect();
                    match keyed {
                        Some((cipher, key)) => seal_with_key(cipher, key, &p.header, &frames, &mut buf)
                            .map_err(|e| e.to_string())?,
                        None => encode_packet(&p.header, &frames, &mut buf).map_err(|e| e.to_string())?,
                    }
                }
                Datagram::VersionReject(r) => r.encode(&mut buf).map_err(|e| e.to_string())?,
            };
            if buf[..len] != v.bytes[..] {
                return Err("re-encodes to different bytes".into());
            }
            Ok(())
        }
        (Some(false), Err(e)) if error_kind(&e) == v.error => Ok(()),
        (Some(false), Err(e)) => Err(format!(
            "failed with `{}` ({e}), expected `{}`",
            error_kind(&e),
            v.error
        )),
        (Some(false), Ok(d)) => Err(format!("decoded to {d}, expected error `{}`", v.error)),
        (Some(true), Err(e)) => Err(format!("failed with {e}")),
        (None, _) => Err("no `ok`, `error` or `next` record".into()),
    }
}

#[test]
fn every_vector_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("spec/vectors exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vector files in {}", dir.display());
    let (mut checked, mut valid, mut failures) = (0, 0, Vec::new());
    for file in &files {
        for v in parse(&std::fs::read_to_string(file).unwrap()) {
            checked += 1;
            valid += usize::from(v.expect_ok == Some(true));
            if let Err(why) = check(&v) {
                failures.push(format!("{}: {}: {why}", file.display(), v.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Guards against a parser that silently reads nothing.
    assert!(
        checked >= 60 && valid >= 30,
        "only {checked} vectors ({valid} valid) were read"
    );
}

#[test]
fn a_changed_vector_is_caught() {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/v1.txt"))
        .unwrap();
    let vectors = parse(&src);
    let ping = vectors
        .iter()
        .find(|v| v.name == "ping")
        .expect("the ping vector");
    // A wrong expected text fails.
    let mut wrong_text = Vector {
        text: vec!["data".into()],
        ..ping.clone()
    };
    assert!(check(&wrong_text).is_err());
    // A flipped byte fails as corruption, not as the expected `ok`.
    wrong_text = ping.clone();
    wrong_text.bytes[5] ^= 1;
    assert!(check(&wrong_text).unwrap_err().contains("checksum"));
}
