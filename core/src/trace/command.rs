//! The application's commands to an endpoint as trace records (spec/trace.md §3.3): each
//! one's text (written by the recorder, read back by the replayer) and the text of what it
//! returned (written by both and compared).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::net::SocketAddr;

use bytes::Bytes;

use super::config_text::{congestion_text, parse_congestion};
use super::{hex, unhex};
use crate::congestion::CongestionAlgorithm;
use crate::crypto::keys::PublicKey;
use crate::event::{ApiError, Priority, Read, StreamHeader};
use crate::handle::ConnectionHandle;
use crate::pipe::{LocalRead, PipeId};
use crate::verify::Digest;
use crate::wire::{Label, Reason, StreamId};
use crate::Endpoint;

/// One call of the application's API that changes the endpoint (queries are not recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `connect`, `connect_with` (a congestion controller) or `connect_to` (a server key).
    Connect {
        remote: SocketAddr,
        congestion: Option<CongestionAlgorithm>,
        server: Option<PublicKey>,
    },
    OpenStream {
        conn: ConnectionHandle,
        header: StreamHeader,
    },
    Write {
        conn: ConnectionHandle,
        stream: StreamId,
        data: Bytes,
    },
    /// A write that was refused, recorded by its length: what it carried decided nothing.
    WriteRefused {
        conn: ConnectionHandle,
        stream: StreamId,
        len: usize,
    },
    SetPriority {
        conn: ConnectionHandle,
        stream: StreamId,
        priority: Priority,
    },
    Finish {
        conn: ConnectionHandle,
        stream: StreamId,
    },
    SendMessage {
        conn: ConnectionHandle,
        label: Option<Label>,
        data: Bytes,
        digest: MessageDigest,
    },
    ResetStream {
        conn: ConnectionHandle,
        stream: StreamId,
        code: u64,
    },
    StopSending {
        conn: ConnectionHandle,
        stream: StreamId,
        code: u64,
    },
    DeferDelivery {
        conn: ConnectionHandle,
        stream: StreamId,
    },
    ConfirmDelivery {
        conn: ConnectionHandle,
        stream: StreamId,
    },
    Read {
        conn: ConnectionHandle,
        stream: StreamId,
        max_len: u64,
        unit: ReadUnit,
    },
    Close {
        conn: ConnectionHandle,
        code: u64,
        reason: Reason,
    },
    Pipe {
        from: ConnectionHandle,
        stream: StreamId,
        to: Vec<ConnectionHandle>,
        local: LocalRead,
    },
    /// `add_entropy`: fresh random bytes (a secret: recorded by length, the bytes kept with
    /// the trace's secrets; an inline trace writes them: spec/trace.md).
    AddEntropy { bytes: Bytes },
}

/// `send_message` or `send_verified_message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageDigest {
    None,
    Attached,
}

/// `read` (what is contiguous) or `read_message` (the whole message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadUnit {
    Contiguous,
    Message,
}

/// What a command returned when it succeeded.
#[derive(Clone, Debug)]
pub(crate) enum Done {
    Unit,
    Conn(ConnectionHandle),
    Stream(StreamId),
    Taken(usize),
    Read(Read),
    Pipe(PipeId),
}

impl Command {
    /// What a trace keeps of a call that returned `result`: a write keeps only the bytes it
    /// took (replayed, that prefix is taken whole, as every check a write makes holds for
    /// a prefix of what passed it), and a refused one only its length (every check that
    /// refuses a write looks at lengths, never at bytes). A sender retrying a large chunk
    /// as room frees up would otherwise record the whole remainder at every try
    /// (spec/trace.md §3.3).
    pub(crate) fn recorded(self, result: &Result<Done, crate::ApiError>) -> Command {
        match (self, result) {
            (Command::Write { conn, stream, data }, Ok(Done::Taken(n))) => Command::Write {
                conn,
                stream,
                data: data.slice(..(*n).min(data.len())),
            },
            (Command::Write { conn, stream, data }, Err(_)) => Command::WriteRefused {
                conn,
                stream,
                len: data.len(),
            },
            (cmd, _) => cmd,
        }
    }
}

impl From<()> for Done {
    fn from((): ()) -> Self {
        Done::Unit
    }
}

impl From<ConnectionHandle> for Done {
    fn from(c: ConnectionHandle) -> Self {
        Done::Conn(c)
    }
}

impl From<StreamId> for Done {
    fn from(id: StreamId) -> Self {
        Done::Stream(id)
    }
}

impl From<usize> for Done {
    fn from(n: usize) -> Self {
        Done::Taken(n)
    }
}

impl From<Read> for Done {
    fn from(r: Read) -> Self {
        Done::Read(r)
    }
}

impl From<PipeId> for Done {
    fn from(p: PipeId) -> Self {
        Done::Pipe(p)
    }
}

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

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            Command::Write { conn, stream, data } => write!(f, "write {conn} s{stream} {}", hex(data)),
            Command::WriteRefused { conn, stream, len } => write!(f, "write {conn} s{stream} zeros={len}"),
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
        let num = |i: usize| args.get(i)?.parse::<u64>().ok();
        let cs = |i: usize| Some((conn(args.get(i)?)?, stream(args.get(i + 1)?)?));
        Some(match (name, args.len()) {
            ("connect", 1 | 2) => Command::Connect {
                remote: args[0].parse().ok()?,
                congestion: match args.get(1) {
                    Some(c) => Some(parse_congestion(c)?),
                    None => None,
                },
                server: None,
            },
            ("connect_to", 2 | 3) => Command::Connect {
                remote: args[0].parse().ok()?,
                congestion: match args.get(2) {
                    Some(c) => Some(parse_congestion(c)?),
                    None => None,
                },
                server: Some(args[1].parse().ok()?),
            },
            ("open_stream", _) => {
                let mut header = StreamHeader::default();
                for field in &args[1..] {
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
                match args[2].strip_prefix("zeros=") {
                    Some(len) => Command::WriteRefused {
                        conn,
                        stream,
                        len: len.parse().ok()?,
                    },
                    None => Command::Write {
                        conn,
                        stream,
                        data: unhex(args[2])?,
                    },
                }
            }
            ("set_priority", 3) => {
                let (conn, stream) = cs(0)?;
                let priority = match args[2] {
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
            // The inline form; `len=N` is the replayer's to fill from the secrets.
            ("add_entropy", 1) => Command::AddEntropy {
                bytes: unhex(args[0])?,
            },
            ("send_message" | "send_verified_message", 2 | 3) => Command::SendMessage {
                conn: conn(args[0])?,
                label: match args.len() {
                    3 => Some(label(args[1].strip_prefix("label=")?)?),
                    _ => None,
                },
                data: unhex(args[args.len() - 1])?,
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
                conn: conn(args[0])?,
                code: num(1)?,
                reason: Reason::new(unhex(args[2])?).ok()?,
            },
            ("pipe", 4) => {
                let (from, stream) = cs(0)?;
                let to = args[2].split(',').map(conn).collect::<Option<Vec<_>>>()?;
                let local = match args[3] {
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

    /// Runs the command on `ep` at `now` (the time of its record).
    pub(crate) fn execute(self, ep: &mut Endpoint, now: crate::time::Instant) -> Result<Done, ApiError> {
        match self {
            Command::Connect {
                remote,
                congestion,
                server,
            } => match (congestion, server) {
                (Some(c), Some(key)) => ep.connect_to_with(now, remote, key, c),
                (None, Some(key)) => ep.connect_to(now, remote, key),
                (Some(c), None) => ep.connect_with(now, remote, c),
                (None, None) => ep.connect(now, remote),
            }
            .map(Done::Conn),
            Command::OpenStream { conn, header } => ep.open_stream(conn, header).map(Done::Stream),
            Command::Write { conn, stream, data } => ep.write(conn, stream, data).map(Done::Taken),
            Command::WriteRefused { conn, stream, len } => ep
                .write(conn, stream, Bytes::from(alloc::vec![0u8; len]))
                .map(Done::Taken),
            Command::SetPriority {
                conn,
                stream,
                priority,
            } => ep.set_priority(conn, stream, priority).map(|()| Done::Unit),
            Command::Finish { conn, stream } => ep.finish(conn, stream).map(|()| Done::Unit),
            Command::SendMessage {
                conn,
                label,
                data,
                digest: MessageDigest::Attached,
            } => ep.send_verified_message(conn, label, data).map(Done::Stream),
            Command::SendMessage {
                conn, label, data, ..
            } => ep.send_message(conn, label, data).map(Done::Stream),
            Command::ResetStream { conn, stream, code } => {
                ep.reset_stream(conn, stream, code).map(|()| Done::Unit)
            }
            Command::StopSending { conn, stream, code } => {
                ep.stop_sending(conn, stream, code).map(|()| Done::Unit)
            }
            Command::DeferDelivery { conn, stream } => ep.defer_delivery(conn, stream).map(|()| Done::Unit),
            Command::ConfirmDelivery { conn, stream } => {
                ep.confirm_delivery(conn, stream).map(|()| Done::Unit)
            }
            Command::AddEntropy { bytes } => {
                ep.add_entropy(&bytes);
                Ok(Done::Unit)
            }
            Command::Read {
                conn,
                stream,
                max_len,
                unit: ReadUnit::Message,
            } => ep.read_message(conn, stream, max_len).map(Done::Read),
            Command::Read {
                conn,
                stream,
                max_len,
                ..
            } => ep
                .read(conn, stream, usize::try_from(max_len).unwrap_or(usize::MAX))
                .map(Done::Read),
            Command::Close { conn, code, reason } => ep.close(now, conn, code, reason).map(|()| Done::Unit),
            Command::Pipe {
                from,
                stream,
                to,
                local,
            } => ep.pipe(from, stream, &to, local).map(Done::Pipe),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            Command::WriteRefused {
                conn: c,
                stream: s,
                len: 70_000,
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
        for cmd in commands {
            let text = cmd.to_string();
            assert_eq!(Command::parse(&text), Some(cmd), "{text}");
        }
        // Fresh entropy is recorded by its length; the inline form carries the bytes.
        let entropy = Command::AddEntropy {
            bytes: Bytes::from_static(&[7; 2]),
        };
        assert_eq!(entropy.to_string(), "add_entropy len=2");
        assert_eq!(Command::parse("add_entropy 0707"), Some(entropy));
        assert_eq!(Command::parse("write #1 s2 0g"), None);
        assert_eq!(Command::parse("launch #1"), None);
    }
}
