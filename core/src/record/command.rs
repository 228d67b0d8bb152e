//! The application's commands as trace records (spec/trace.md §3.3): each one's text
//! (written by the recorder, read back by the replayer) and the text of what it returned
//! (written by both and compared). The commands themselves are module `command`'s.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use bytes::Bytes;

use super::config_text::{congestion_text, parse_congestion};
use super::{hex, unhex};
use crate::command::{Command, Done, MessageDigest, ReadUnit};
use crate::event::{ApiError, Priority, Read, StreamHeader};
use crate::handle::ConnectionHandle;
use crate::pipe::LocalRead;
use crate::verify::Digest;
use crate::wire::{Label, Reason, StreamId};

/// The longest refused write (`write #C sS zeros=N`, spec/trace.md) a trace may record, 1
/// GiB: a replay allocates its zeros, so a longer one is refused as malformed instead of
/// taking that memory. Found twice by the `trace_inputs` fuzz target: a length of 7.2 ×
/// 10^18 aborted the replayer, and with a bound of 2^32, a length of 4.0 × 10^9 took more
/// than the fuzzer's 2 GiB (an hour-long run, issue 37's eighth session).
pub(crate) const MAX_REFUSED_WRITE: u64 = 1 << 30;

/// The text of a command's result, as recorded after `=>`.
pub(crate) fn outcome_text(r: &Result<Done, ApiError>) -> String {
    let mut s = String::new();
    let _ = match r {
        Err(e) => write!(s, "err {e:?}"),
        Ok(Done::Unit) => write!(s, "ok"),
        Ok(Done::Conn(c)) => write!(s, "ok {c}"),
        Ok(Done::Stream(id)) => write!(s, "ok s{id}"),
        Ok(Done::Taken(n)) => write!(s, "ok {n}"),
        Ok(Done::Pipe(p)) => write!(s, "ok pipe{}", p.0),
        Ok(Done::Read(Read::Data { offset, bytes })) => write!(s, "data {offset} {}", hex(bytes)),
        Ok(Done::Read(Read::Pending)) => write!(s, "pending"),
        Ok(Done::Read(Read::Finished)) => write!(s, "finished"),
        Ok(Done::Read(Read::Reset { code })) => write!(s, "reset {code}"),
        Ok(Done::Read(Read::VerificationFailed { expected, actual })) => {
            write!(s, "verification-failed {expected} {actual}")
        }
    };
    s
}

/// A command's text as a trace writes it. A write keeps only the bytes it took (replayed,
/// that prefix is taken whole, as every check a write makes holds for a prefix of what
/// passed it), and a refused one only its length (every check that refuses a write looks at
/// lengths, never at bytes), so a sender retrying a large chunk as room frees up does not
/// record the whole remainder at every try.
pub(crate) struct Text<'a> {
    pub(crate) command: &'a Command,
    pub(crate) result: &'a Result<Done, ApiError>,
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.command {
            Command::Connect {
                remote,
                server: Some(key),
                congestion,
            } => {
                write!(f, "connect_to {remote} {key}")?;
                if let Some(c) = congestion {
                    write!(f, " {}", congestion_text(c))?;
                }
                Ok(())
            }
            Command::Connect {
                remote, congestion, ..
            } => {
                write!(f, "connect {remote}")?;
                if let Some(c) = congestion {
                    write!(f, " {}", congestion_text(c))?;
                }
                Ok(())
            }
            Command::OpenStream { conn, header } => {
                write!(f, "open_stream {conn}")?;
                if let Some(l) = &header.label {
                    write!(f, " label={l}")?;
                }
                if let Some(t) = header.total_len {
                    write!(f, " total={t}")?;
                }
                if let Some(d) = &header.digest {
                    write!(f, " digest={d}")?;
                }
                Ok(())
            }
            Command::Write { conn, stream, data } => match self.result {
                Ok(Done::Taken(n)) => {
                    write!(
                        f,
                        "write {conn} s{stream} {}",
                        hex(data.get(..*n).unwrap_or(data))
                    )
                }
                Ok(_) => write!(f, "write {conn} s{stream} {}", hex(data)),
                Err(_) => write!(f, "write {conn} s{stream} zeros={}", data.len()),
            },
            Command::SetPriority {
                conn,
                stream,
                priority,
            } => {
                let p = match priority {
                    Priority::High => "high",
                    Priority::Normal => "normal",
                    Priority::Low => "low",
                };
                write!(f, "set_priority {conn} s{stream} {p}")
            }
            Command::Finish { conn, stream } => write!(f, "finish {conn} s{stream}"),
            Command::SendMessage {
                conn,
                label,
                data,
                digest,
            } => {
                let name = match digest {
                    MessageDigest::None => "send_message",
                    MessageDigest::Attached => "send_verified_message",
                };
                write!(f, "{name} {conn}")?;
                if let Some(l) = label {
                    write!(f, " label={l}")?;
                }
                write!(f, " {}", hex(data))
            }
            Command::ResetStream { conn, stream, code } => write!(f, "reset_stream {conn} s{stream} {code}"),
            Command::StopSending { conn, stream, code } => write!(f, "stop_sending {conn} s{stream} {code}"),
            Command::DeferDelivery { conn, stream } => write!(f, "defer_delivery {conn} s{stream}"),
            Command::ConfirmDelivery { conn, stream } => write!(f, "confirm_delivery {conn} s{stream}"),
            Command::Release { conn } => write!(f, "release {conn}"),
            Command::Reserve { relay } => write!(f, "reserve {relay}"),
            Command::ConnectVia { relay, peer } => write!(f, "connect_via {relay} {peer}"),
            Command::AcceptStream { conn } => write!(f, "accept_stream {conn}"),
            Command::SendDatagram { conn, data } => write!(f, "send_datagram {conn} {}", hex(data)),
            Command::RecvDatagram { conn } => write!(f, "recv_datagram {conn}"),
            Command::NextMessage { conn, max_len } => write!(f, "next_message {conn} {max_len}"),
            // The bytes are a secret: kept with the trace's secrets, not in it.
            Command::AddEntropy { bytes } => write!(f, "add_entropy len={}", bytes.len()),
            Command::Read {
                conn,
                stream,
                max_len,
                unit,
            } => {
                let name = match unit {
                    ReadUnit::Contiguous => "read",
                    ReadUnit::Message => "read_message",
                };
                write!(f, "{name} {conn} s{stream} {max_len}")
            }
            Command::Close { conn, code, reason } => {
                write!(f, "close {conn} {code} {}", hex(reason.as_bytes()))
            }
            Command::Pipe {
                from,
                stream,
                to,
                local,
            } => {
                write!(f, "pipe {from} s{stream} ")?;
                for (i, t) in to.iter().enumerate() {
                    write!(f, "{}{t}", if i == 0 { "" } else { "," })?;
                }
                let local = match local {
                    LocalRead::Discard => "discard",
                    LocalRead::Keep => "keep",
                };
                write!(f, " {local}")
            }
        }
    }
}

/// `#slot` or `#slot.generation` (the handle's `Display`).
fn conn(s: &str) -> Option<ConnectionHandle> {
    let s = s.strip_prefix('#')?;
    let (slot, generation) = s.split_once('.').unwrap_or((s, "0"));
    Some(ConnectionHandle::new(
        slot.parse().ok()?,
        generation.parse().ok()?,
    ))
}

fn stream(s: &str) -> Option<StreamId> {
    s.strip_prefix('s')?.parse().ok().map(StreamId)
}

fn label(s: &str) -> Option<Label> {
    Label::new(Bytes::copy_from_slice(s.as_bytes())).ok()
}

impl Command {
    /// Reads a command record's text (without its time and result); `None` if it is not one.
    pub(crate) fn parse(text: &str) -> Option<Command> {
        let words: Vec<&str> = text.split(' ').collect();
        let (&name, args) = words.split_first()?;
        let arg = |i: usize| args.get(i).copied();
        let num = |i: usize| arg(i)?.parse::<u64>().ok();
        let cs = |i: usize| Some((conn(arg(i)?)?, stream(arg(i + 1)?)?));
        Some(match (name, args.len()) {
            ("connect", 1 | 2) => Command::Connect {
                remote: arg(0)?.parse().ok()?,
                congestion: match args.get(1) {
                    Some(c) => Some(parse_congestion(c)?),
                    None => None,
                },
                server: None,
            },
            ("connect_to", 2 | 3) => Command::Connect {
                remote: arg(0)?.parse().ok()?,
                congestion: match args.get(2) {
                    Some(c) => Some(parse_congestion(c)?),
                    None => None,
                },
                server: Some(arg(1)?.parse().ok()?),
            },
            ("open_stream", _) => {
                let mut header = StreamHeader::default();
                for field in args.get(1..)? {
                    let (k, v) = field.split_once('=')?;
                    match k {
                        "label" => header.label = Some(label(v)?),
                        "total" => header.total_len = Some(v.parse().ok()?),
                        "digest" => {
                            header.digest = Some(Digest::from_bytes(unhex(v)?.as_ref().try_into().ok()?))
                        }
                        _ => return None,
                    }
                }
                Command::OpenStream {
                    conn: conn(args.first()?)?,
                    header,
                }
            }
            ("write", 3) => {
                let (conn, stream) = cs(0)?;
                let data = match arg(2)?.strip_prefix("zeros=") {
                    // A refused write: its length is what decided, so zeros stand for its
                    // bytes; a length past what a replay allocates is a malformed trace.
                    Some(len) => {
                        let len = len.parse::<u64>().ok().filter(|&n| n <= MAX_REFUSED_WRITE)?;
                        Bytes::from(alloc::vec![0u8; usize::try_from(len).ok()?])
                    }
                    None => unhex(arg(2)?)?,
                };
                Command::Write { conn, stream, data }
            }
            ("set_priority", 3) => {
                let (conn, stream) = cs(0)?;
                let priority = match arg(2)? {
                    "high" => Priority::High,
                    "normal" => Priority::Normal,
                    "low" => Priority::Low,
                    _ => return None,
                };
                Command::SetPriority {
                    conn,
                    stream,
                    priority,
                }
            }
            ("finish", 2) => {
                let (conn, stream) = cs(0)?;
                Command::Finish { conn, stream }
            }
            ("defer_delivery", 2) => {
                let (conn, stream) = cs(0)?;
                Command::DeferDelivery { conn, stream }
            }
            ("confirm_delivery", 2) => {
                let (conn, stream) = cs(0)?;
                Command::ConfirmDelivery { conn, stream }
            }
            ("release", 1) => Command::Release { conn: conn(arg(0)?)? },
            ("reserve", 1) => Command::Reserve {
                relay: conn(arg(0)?)?,
            },
            ("connect_via", 2) => Command::ConnectVia {
                relay: conn(arg(0)?)?,
                peer: arg(1)?.parse().ok()?,
            },
            ("accept_stream", 1) => Command::AcceptStream { conn: conn(arg(0)?)? },
            ("send_datagram", 2) => Command::SendDatagram {
                conn: conn(arg(0)?)?,
                data: unhex(arg(1)?)?,
            },
            ("recv_datagram", 1) => Command::RecvDatagram { conn: conn(arg(0)?)? },
            ("next_message", 2) => Command::NextMessage {
                conn: conn(arg(0)?)?,
                max_len: arg(1)?.parse().ok()?,
            },
            // The inline form; `len=N` is the replayer's to fill from the secrets.
            ("add_entropy", 1) => Command::AddEntropy {
                bytes: unhex(arg(0)?)?,
            },
            ("send_message" | "send_verified_message", 2 | 3) => Command::SendMessage {
                conn: conn(arg(0)?)?,
                label: match args.len() {
                    3 => Some(label(arg(1)?.strip_prefix("label=")?)?),
                    _ => None,
                },
                data: unhex(args.last()?)?,
                digest: match name {
                    "send_message" => MessageDigest::None,
                    _ => MessageDigest::Attached,
                },
            },
            ("reset_stream" | "stop_sending", 3) => {
                let (conn, stream) = cs(0)?;
                let code = num(2)?;
                if name == "reset_stream" {
                    Command::ResetStream { conn, stream, code }
                } else {
                    Command::StopSending { conn, stream, code }
                }
            }
            ("read" | "read_message", 3) => {
                let (conn, stream) = cs(0)?;
                Command::Read {
                    conn,
                    stream,
                    max_len: num(2)?,
                    unit: match name {
                        "read" => ReadUnit::Contiguous,
                        _ => ReadUnit::Message,
                    },
                }
            }
            ("close", 3) => Command::Close {
                conn: conn(arg(0)?)?,
                code: num(1)?,
                reason: Reason::new(unhex(arg(2)?)?).ok()?,
            },
            ("pipe", 4) => {
                let (from, stream) = cs(0)?;
                let to = arg(2)?.split(',').map(conn).collect::<Option<Vec<_>>>()?;
                let local = match arg(3)? {
                    "discard" => LocalRead::Discard,
                    "keep" => LocalRead::Keep,
                    _ => return None,
                };
                Command::Pipe {
                    from,
                    stream,
                    to,
                    local,
                }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::CongestionAlgorithm;
    use crate::crypto::keys::PublicKey;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn every_command_reads_back_from_its_text() {
        let (c, s) = (ConnectionHandle::new(3, 2), StreamId(6));
        let label = Label::from_static("/eth/68").ok();
        let commands = vec![
            Command::Connect {
                remote: "10.0.0.1:4000".parse().unwrap(),
                congestion: None,
                server: None,
            },
            Command::Connect {
                remote: "[::1]:9".parse().unwrap(),
                congestion: Some(CongestionAlgorithm::default()),
                server: None,
            },
            Command::Connect {
                remote: "10.0.0.2:1".parse().unwrap(),
                congestion: None,
                server: Some(crate::Identity::from_seed(&crate::Seed::from(1)).public_key()),
            },
            Command::Connect {
                remote: "10.0.0.3:1".parse().unwrap(),
                congestion: Some(CongestionAlgorithm::NewReno),
                server: Some(crate::Identity::from_seed(&crate::Seed::from(2)).public_key()),
            },
            Command::OpenStream {
                conn: c,
                header: StreamHeader::default()
                    .with_total_len(9)
                    .with_digest(Digest::of(b"x"))
                    .with_label(Label::from_static("/a").unwrap()),
            },
            Command::OpenStream {
                conn: c,
                header: StreamHeader::default(),
            },
            Command::Write {
                conn: c,
                stream: s,
                data: Bytes::from_static(b"\x00\xffab"),
            },
            Command::SetPriority {
                conn: c,
                stream: s,
                priority: Priority::Low,
            },
            Command::Finish { conn: c, stream: s },
            Command::SendMessage {
                conn: c,
                label: label.clone(),
                data: Bytes::new(),
                digest: MessageDigest::Attached,
            },
            Command::SendMessage {
                conn: c,
                label: None,
                data: Bytes::from_static(b"m"),
                digest: MessageDigest::None,
            },
            Command::ResetStream {
                conn: c,
                stream: s,
                code: 7,
            },
            Command::StopSending {
                conn: c,
                stream: s,
                code: 8,
            },
            Command::DeferDelivery { conn: c, stream: s },
            Command::ConfirmDelivery { conn: c, stream: s },
            Command::Release { conn: c },
            Command::Reserve { relay: c },
            Command::ConnectVia {
                relay: c,
                peer: PublicKey::from_bytes([3; 32]),
            },
            Command::AcceptStream { conn: c },
            Command::SendDatagram {
                conn: c,
                data: Bytes::from_static(b"\x01dg"),
            },
            Command::RecvDatagram { conn: c },
            Command::NextMessage {
                conn: c,
                max_len: 1 << 20,
            },
            Command::Read {
                conn: c,
                stream: s,
                max_len: 100,
                unit: ReadUnit::Contiguous,
            },
            Command::Read {
                conn: c,
                stream: s,
                max_len: u64::MAX,
                unit: ReadUnit::Message,
            },
            Command::Close {
                conn: c,
                code: 1,
                reason: Reason::new(Bytes::from_static(b"bye now")).unwrap(),
            },
            Command::Pipe {
                from: c,
                stream: s,
                to: vec![ConnectionHandle::from_index(0), ConnectionHandle::new(9, 1)],
                local: LocalRead::Keep,
            },
        ];
        let text = |command: &Command, result: &Result<Done, ApiError>| Text { command, result }.to_string();
        for cmd in commands {
            let text = text(&cmd, &Ok(Done::Unit));
            assert_eq!(Command::parse(&text), Some(cmd), "{text}");
        }
        // A write keeps what it took; a refused one its length, read back as zeros.
        let write = Command::Write {
            conn: c,
            stream: s,
            data: Bytes::from_static(b"abcd"),
        };
        assert_eq!(text(&write, &Ok(Done::Taken(2))), "write #3.2 s6 6162");
        let refused = text(&write, &Err(ApiError::WouldBlock));
        assert_eq!(refused, "write #3.2 s6 zeros=4");
        let zeros = Command::Write {
            conn: c,
            stream: s,
            data: Bytes::from_static(&[0; 4]),
        };
        assert_eq!(Command::parse(&refused), Some(zeros));
        // A refused write longer than a replay allocates is a malformed trace: 4.0 × 10^9
        // bytes (the hour-long fuzzing run's find) is, and so is one byte past the bound.
        let max = super::MAX_REFUSED_WRITE;
        for len in [max + 1, 4_000_000_263] {
            // (Not assert_eq: a failure would print the gigabytes.)
            let parsed = Command::parse(&alloc::format!("write #3.2 s6 zeros={len}"));
            assert!(parsed.is_none(), "a refused write of {len} bytes parsed");
        }
        assert_eq!(Command::parse("write #3.2 s6 zeros=7211644586603810357"), None);
        // Fresh entropy is recorded by its length; the inline form carries the bytes.
        let entropy = Command::AddEntropy {
            bytes: Bytes::from_static(&[7; 2]),
        };
        assert_eq!(text(&entropy, &Ok(Done::Unit)), "add_entropy len=2");
        assert_eq!(Command::parse("add_entropy 0707"), Some(entropy));
        assert_eq!(Command::parse("write #1 s2 0g"), None);
        assert_eq!(Command::parse("launch #1"), None);
    }

    #[test]
    fn a_command_without_its_arguments_is_not_one() {
        for name in [
            "open_stream",
            "connect",
            "write",
            "pipe",
            "close",
            "send_message",
            "read",
        ] {
            assert_eq!(Command::parse(name), None, "{name}");
            assert_eq!(
                Command::parse(&alloc::format!("{name} ")),
                None,
                "{name} and a space"
            );
        }
    }
}
