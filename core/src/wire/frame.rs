//! Frames: the units a packet carries (spec/protocol.md §4).
//!
//! Each frame starts with its type as a varint; the layout after it is fixed by the type.
//! [`Frame::read`] parses one frame into a validated representation whose byte fields
//! (stream data, labels, tokens, reasons) are slices of the datagram; [`Frame::write`]
//! writes one, refusing anything the reader would refuse. [`Frame::encoded_len`] is exact.

use alloc::boxed::Box;
use core::fmt;

use bytes::Bytes;

use super::ack::Ack;
use super::address::ObservedAddress;
use super::close::{Close, CloseCode, Reason, TransportErrorCode};
use super::cursor::{varint_len, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::frame_types as types;
use super::handshake::{read_message, write_message, Accept, Hello, NoiseHello, Reject, RejectReason, Retry};
use super::hex::Hex;
use super::ids::{PacketType, StreamId};
use super::params::{Capabilities, TransportParams, VersionRange};
use super::relay::RelayFrame;
use super::stream::StreamFrame;
use super::{Delivery, ReceiptRun};
use super::{MAX_REASON_LEN, MAX_TOKEN_LEN, VERSION_2};

/// A frame of wire version 1 or 2 (spec/protocol.md §4, §11.2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A run of this many PADDING bytes (the decoder joins adjacent ones).
    Padding(usize),
    /// PING.
    Ping,
    /// ACK.
    Ack(Ack),
    /// RESET_STREAM: the sender abandons `id` at `final_size` bytes.
    ResetStream {
        /// The stream.
        id: StreamId,
        /// Application error code.
        code: u64,
        /// Bytes the stream had when reset.
        final_size: u64,
    },
    /// STOP_SENDING: the receiver of `id` wants no more of it.
    StopSending {
        /// The stream.
        id: StreamId,
        /// Application error code.
        code: u64,
    },
    /// MAX_DATA: the peer may send up to this many bytes on the connection, all streams.
    MaxData(u64),
    /// MAX_STREAM_DATA: the peer may send up to `max` bytes of stream `id`.
    MaxStreamData {
        /// The stream.
        id: StreamId,
        /// Highest offset (exclusive) allowed.
        max: u64,
    },
    /// MAX_STREAMS: the peer may open this many streams in total.
    MaxStreams(u64),
    /// DATA_BLOCKED: the sender has data but reached this connection credit.
    DataBlocked(u64),
    /// STREAM_DATA_BLOCKED: the sender has data for `id` but reached its credit `limit`.
    StreamDataBlocked {
        /// The stream.
        id: StreamId,
        /// The credit reached.
        limit: u64,
    },
    /// STREAMS_BLOCKED: the sender wants to open a stream but reached this count.
    StreamsBlocked(u64),
    /// CLOSE or APPLICATION_CLOSE.
    Close(Close),
    /// RECEIPT or RECEIPT_FAILED (capability RECEIPTS): the final word on stream `id`,
    /// which the peer sent us (spec §4.17, §8 Delivery).
    Receipt {
        /// The stream (one the receipt's receiver opened).
        id: StreamId,
        /// What became of it, counted in relays from the receipt's sender.
        delivery: Delivery,
    },
    /// RECEIPT_RUN (capability RECEIPT_RUNS): a set of the peer's streams, its first and
    /// some of the same side's next 62, all delivered (spec §4.17).
    ReceiptRun(ReceiptRun),
    /// OBSERVED_ADDRESS (capability ADDRESS_DISCOVERY, version 2): where the peer sees our
    /// packets come from (spec §4.18).
    ObservedAddress(ObservedAddress),
    /// RELAY_RESERVE, RELAY_CONNECT, RELAY_ANSWER, RELAY_CIRCUIT or RELAY_CLOSED
    /// (capability RELAY, version 2): a peer and its relay setting circuits up (spec §12.2).
    Relay(RelayFrame),
    /// STREAM.
    Stream(StreamFrame),
    /// DATAGRAM (capability DATAGRAMS): an unreliable datagram, never retransmitted (spec
    /// §4.19).
    Datagram(Bytes),
    /// HELLO. (The handshake's frames are boxed: once a connection, they would otherwise
    /// make every frame of every packet as large as the largest of them.)
    Hello(Box<Hello>),
    /// ACCEPT.
    Accept(Box<Accept>),
    /// REJECT.
    Reject(Reject),
    /// RETRY.
    Retry(Retry),
    /// NOISE_HELLO (version 2).
    NoiseHello(Box<NoiseHello>),
    /// NOISE_ACCEPT (version 2): the server's Noise message.
    NoiseAccept(Bytes),
    /// NOISE_FINISH (version 2): the client's last Noise message (pattern XX).
    NoiseFinish(Bytes),
}

impl Frame {
    /// The frame's type number (for STREAM, with its flags).
    pub fn frame_type(&self) -> u64 {
        match self {
            Frame::Padding(_) => types::PADDING,
            Frame::Ping => types::PING,
            Frame::Ack(_) => types::ACK,
            Frame::ResetStream { .. } => types::RESET_STREAM,
            Frame::StopSending { .. } => types::STOP_SENDING,
            Frame::MaxData(_) => types::MAX_DATA,
            Frame::MaxStreamData { .. } => types::MAX_STREAM_DATA,
            Frame::MaxStreams(_) => types::MAX_STREAMS,
            Frame::DataBlocked(_) => types::DATA_BLOCKED,
            Frame::StreamDataBlocked { .. } => types::STREAM_DATA_BLOCKED,
            Frame::StreamsBlocked(_) => types::STREAMS_BLOCKED,
            Frame::Close(Close {
                code: CloseCode::Transport(_),
                ..
            }) => types::CLOSE,
            Frame::Close(Close {
                code: CloseCode::Application(_),
                ..
            }) => types::APPLICATION_CLOSE,
            Frame::Receipt {
                delivery: Delivery::Delivered { .. },
                ..
            } => types::RECEIPT,
            Frame::Receipt {
                delivery: Delivery::Failed { .. },
                ..
            } => types::RECEIPT_FAILED,
            Frame::ReceiptRun(_) => types::RECEIPT_RUN,
            Frame::ObservedAddress(_) => types::OBSERVED_ADDRESS,
            Frame::Relay(r) => r.frame_type(),
            Frame::Stream(s) => s.frame_type(),
            Frame::Datagram(_) => types::DATAGRAM,
            Frame::Hello(_) => types::HELLO,
            Frame::Accept(_) => types::ACCEPT,
            Frame::Reject(_) => types::REJECT,
            Frame::Retry(_) => types::RETRY,
            Frame::NoiseHello(_) => types::NOISE_HELLO,
            Frame::NoiseAccept(_) => types::NOISE_ACCEPT,
            Frame::NoiseFinish(_) => types::NOISE_FINISH,
        }
    }

    /// Whether this is a handshake frame (exactly one per handshake packet).
    pub fn is_handshake(&self) -> bool {
        matches!(
            self,
            Frame::Hello(_)
                | Frame::Accept(_)
                | Frame::Reject(_)
                | Frame::Retry(_)
                | Frame::NoiseHello(_)
                | Frame::NoiseAccept(_)
                | Frame::NoiseFinish(_)
        )
    }

    /// Whether a packet carrying this frame must be acknowledged (spec/protocol.md §4.1):
    /// every frame but PADDING, ACK and the closing frames.
    pub fn is_ack_eliciting(&self) -> bool {
        !matches!(self, Frame::Padding(_) | Frame::Ack(_) | Frame::Close(_))
    }

    /// Whether frame type `frame_type` may appear in a packet of type `packet` and wire
    /// version `version` (spec/protocol.md §4, table 2; §11.2). A version 2 handshake
    /// packet is not sealed, so it carries nothing but its handshake frame and PADDING:
    /// an ACK or CLOSE there could be forged by anyone who saw the connection ids.
    pub fn allowed_in(frame_type: u64, packet: PacketType, version: u16) -> bool {
        let v2 = version == VERSION_2;
        match frame_type {
            types::PADDING => true,
            types::PING | types::ACK | types::CLOSE | types::APPLICATION_CLOSE => {
                !v2 || packet == PacketType::Data
            }
            types::HELLO | types::ACCEPT => packet == PacketType::Handshake && !v2,
            types::REJECT | types::RETRY => packet == PacketType::Handshake,
            types::NOISE_HELLO..=types::NOISE_FINISH => packet == PacketType::Handshake && v2,
            // A report of an address is worth something only if nobody else could have made it.
            types::OBSERVED_ADDRESS | types::RELAY_RESERVE..=types::PUNCH_NOW => {
                packet == PacketType::Data && v2
            }
            _ => packet == PacketType::Data,
        }
    }

    /// Reads one frame of a packet of type `packet` and wire version `version`.
    pub(crate) fn read(r: &mut Reader, packet: PacketType, version: u16) -> Result<Frame, DecodeError> {
        let frame_type = r.varint(Field::FrameType)?;
        let known = frame_type <= types::OBSERVED_ADDRESS
            || (types::STREAM..=types::STREAM | 0x0f).contains(&frame_type)
            || (types::HELLO..=types::NOISE_FINISH).contains(&frame_type)
            || (types::RELAY_RESERVE..=types::PUNCH_NOW).contains(&frame_type)
            || frame_type == types::DATAGRAM
            || frame_type == types::RECEIPT_RUN;
        if !known {
            return Err(DecodeError::UnknownFrameType(frame_type));
        }
        if !Self::allowed_in(frame_type, packet, version) {
            return Err(Violation::FrameNotAllowed { frame_type, packet }.into());
        }
        let stream = |r: &mut Reader| r.varint(Field::StreamId).map(StreamId);
        Ok(match frame_type {
            types::PADDING => Frame::Padding(1 + r.zeros()),
            types::PING => Frame::Ping,
            types::ACK => Frame::Ack(Ack::read(r)?),
            types::RESET_STREAM => Frame::ResetStream {
                id: stream(r)?,
                code: r.varint(Field::ErrorCode)?,
                final_size: r.varint(Field::FinalSize)?,
            },
            types::STOP_SENDING => Frame::StopSending {
                id: stream(r)?,
                code: r.varint(Field::ErrorCode)?,
            },
            types::MAX_DATA => Frame::MaxData(r.varint(Field::Maximum)?),
            types::MAX_STREAM_DATA => Frame::MaxStreamData {
                id: stream(r)?,
                max: r.varint(Field::Maximum)?,
            },
            types::MAX_STREAMS => Frame::MaxStreams(r.varint(Field::Maximum)?),
            types::DATA_BLOCKED => Frame::DataBlocked(r.varint(Field::Maximum)?),
            types::STREAM_DATA_BLOCKED => Frame::StreamDataBlocked {
                id: stream(r)?,
                limit: r.varint(Field::Maximum)?,
            },
            types::STREAMS_BLOCKED => Frame::StreamsBlocked(r.varint(Field::Maximum)?),
            types::RECEIPT => Frame::Receipt {
                id: stream(r)?,
                delivery: Delivery::Delivered {
                    relays: r.varint(Field::Relays)?,
                },
            },
            types::RECEIPT_FAILED => Frame::Receipt {
                id: stream(r)?,
                delivery: Delivery::Failed {
                    code: r.varint(Field::ErrorCode)?,
                    relays: r.varint(Field::Relays)?,
                },
            },
            types::RECEIPT_RUN => Frame::ReceiptRun(ReceiptRun::read(r)?),
            types::CLOSE | types::APPLICATION_CLOSE => {
                let raw = r.varint(Field::ErrorCode)?;
                let code = match frame_type {
                    types::CLOSE => CloseCode::Transport(TransportErrorCode(raw)),
                    _ => CloseCode::Application(raw),
                };
                let len = r.length(Field::Reason, Limit::ReasonLength, MAX_REASON_LEN)?;
                Frame::Close(Close {
                    code,
                    reason: Reason::new(r.bytes(len, Field::Reason)?)?,
                })
            }
            types::HELLO => {
                let versions = VersionRange::read(r)?;
                let capabilities = Capabilities::read(r)?;
                let len = r.length(Field::Token, Limit::TokenLength, MAX_TOKEN_LEN)?;
                let token = r.bytes(len, Field::Token)?;
                let params = TransportParams::read(r)?;
                Frame::Hello(Box::new(Hello {
                    versions,
                    capabilities,
                    token,
                    params,
                }))
            }
            types::ACCEPT => {
                let version = r.u16(Field::Version)?;
                if version == 0 {
                    return Err(Violation::InvalidVersionRange { min: 0, max: 0 }.into());
                }
                let capabilities = Capabilities::read(r)?;
                let params = TransportParams::read(r)?;
                Frame::Accept(Box::new(Accept {
                    version,
                    capabilities,
                    params,
                }))
            }
            types::REJECT => Frame::Reject(Reject {
                reason: RejectReason(r.varint(Field::RejectReason)?),
                versions: VersionRange::read(r)?,
            }),
            types::RETRY => {
                let len = r.length(Field::Token, Limit::TokenLength, MAX_TOKEN_LEN)?;
                if len == 0 {
                    return Err(Violation::EmptyToken.into());
                }
                Frame::Retry(Retry {
                    token: r.bytes(len, Field::Token)?,
                })
            }
            types::OBSERVED_ADDRESS => Frame::ObservedAddress(ObservedAddress::read(r)?),
            types::DATAGRAM => {
                // Bounded by the packet it arrives in: a length past its end is truncated.
                let len = r.length(Field::Length, Limit::DatagramSize, super::MAX_DATAGRAM_SIZE)?;
                Frame::Datagram(r.payload(len, Field::StreamData)?)
            }
            types::RELAY_RESERVE..=types::PUNCH_NOW => Frame::Relay(RelayFrame::read(r, frame_type)?),
            types::NOISE_HELLO => Frame::NoiseHello(Box::new(NoiseHello::read(r)?)),
            types::NOISE_ACCEPT => Frame::NoiseAccept(read_message(r)?),
            types::NOISE_FINISH => Frame::NoiseFinish(read_message(r)?),
            _ => Frame::Stream(StreamFrame::read(r, frame_type)?),
        })
    }

    /// What [`encoded_len`](Self::encoded_len) refuses beyond a varint too large to write
    /// (which [`write`](Self::write) refuses too): a frame whose fields contradict each
    /// other, a token too long. The frames a connection sends most are checked directly;
    /// the rest through their length.
    pub(crate) fn check(&self) -> Result<(), Violation> {
        match self {
            Frame::Stream(s) => s.check(),
            Frame::ReceiptRun(run) => run.check(),
            Frame::Padding(_)
            | Frame::Ping
            | Frame::Ack(_)
            | Frame::Receipt { .. }
            | Frame::MaxData(_)
            | Frame::MaxStreams(_)
            | Frame::DataBlocked(_)
            | Frame::StreamsBlocked(_)
            | Frame::MaxStreamData { .. }
            | Frame::StreamDataBlocked { .. } => Ok(()),
            _ => self.encoded_len().map(drop),
        }
    }

    /// Bytes this frame takes on the wire, type included; or the violation that keeps it
    /// off the wire.
    pub fn encoded_len(&self) -> Result<usize, Violation> {
        let token_len = |token: &Bytes| -> Result<usize, Violation> {
            if token.len() > MAX_TOKEN_LEN {
                return Err(Violation::LimitExceeded {
                    limit: Limit::TokenLength,
                    value: token.len() as u64,
                    max: MAX_TOKEN_LEN as u64,
                });
            }
            Ok(varint_len(token.len() as u64)? + token.len())
        };
        let body = match self {
            Frame::Padding(n) => return Ok(*n),
            Frame::Ping => 0,
            Frame::Ack(ack) => ack.encoded_len()?,
            Frame::ResetStream { id, code, final_size } => {
                varint_len(id.0)? + varint_len(*code)? + varint_len(*final_size)?
            }
            Frame::StopSending { id, code } => varint_len(id.0)? + varint_len(*code)?,
            Frame::Receipt { id, delivery } => {
                varint_len(id.0)?
                    + match delivery {
                        Delivery::Delivered { relays } => varint_len(*relays)?,
                        Delivery::Failed { code, relays } => varint_len(*code)? + varint_len(*relays)?,
                    }
            }
            Frame::ReceiptRun(run) => {
                run.check()?;
                varint_len(run.first.0)? + varint_len(run.also)? + varint_len(run.relays)?
            }
            Frame::MaxData(v) | Frame::MaxStreams(v) | Frame::DataBlocked(v) | Frame::StreamsBlocked(v) => {
                varint_len(*v)?
            }
            Frame::MaxStreamData { id, max: v } | Frame::StreamDataBlocked { id, limit: v } => {
                varint_len(id.0)? + varint_len(*v)?
            }
            Frame::Close(close) => {
                let raw = match close.code {
                    CloseCode::Transport(c) => c.0,
                    CloseCode::Application(c) => c,
                };
                varint_len(raw)?
                    + varint_len(close.reason.as_bytes().len() as u64)?
                    + close.reason.as_bytes().len()
            }
            Frame::ObservedAddress(o) => o.encoded_len()?,
            Frame::Datagram(d) => varint_len(d.len() as u64)? + d.len(),
            Frame::Relay(r) => r.body_len()?,
            Frame::Stream(s) => s.encoded_len()?,
            Frame::Hello(h) => {
                4 + varint_len(h.capabilities.bits())? + token_len(&h.token)? + h.params.encoded_len()?
            }
            Frame::Accept(a) => {
                if a.version == 0 {
                    return Err(Violation::InvalidVersionRange { min: 0, max: 0 });
                }
                2 + varint_len(a.capabilities.bits())? + a.params.encoded_len()?
            }
            Frame::Reject(r) => varint_len(r.reason.0)? + 4,
            Frame::Retry(r) => {
                if r.token.is_empty() {
                    return Err(Violation::EmptyToken);
                }
                token_len(&r.token)?
            }
            Frame::NoiseHello(h) => {
                token_len(&h.hello.token)?;
                h.body_len()?
            }
            Frame::NoiseAccept(m) | Frame::NoiseFinish(m) => super::handshake::message_len(m)?,
        };
        Ok(varint_len(self.frame_type())? + body)
    }

    /// Writes the frame. Callers check [`Frame::encoded_len`] first (the packet writer
    /// does), so that a frame that does not fit leaves nothing behind.
    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        if let Frame::Padding(n) = self {
            return w.zeros(*n);
        }
        w.varint(self.frame_type())?;
        match self {
            Frame::Padding(_) | Frame::Ping => {}
            Frame::Ack(ack) => ack.write(w)?,
            Frame::ResetStream { id, code, final_size } => {
                w.varint(id.0)?;
                w.varint(*code)?;
                w.varint(*final_size)?;
            }
            Frame::StopSending { id, code } => {
                w.varint(id.0)?;
                w.varint(*code)?;
            }
            Frame::Receipt { id, delivery } => {
                w.varint(id.0)?;
                match delivery {
                    Delivery::Delivered { relays } => w.varint(*relays)?,
                    Delivery::Failed { code, relays } => {
                        w.varint(*code)?;
                        w.varint(*relays)?;
                    }
                }
            }
            Frame::ReceiptRun(run) => {
                w.varint(run.first.0)?;
                w.varint(run.also)?;
                w.varint(run.relays)?;
            }
            Frame::MaxData(v) | Frame::MaxStreams(v) | Frame::DataBlocked(v) | Frame::StreamsBlocked(v) => {
                w.varint(*v)?
            }
            Frame::MaxStreamData { id, max: v } | Frame::StreamDataBlocked { id, limit: v } => {
                w.varint(id.0)?;
                w.varint(*v)?;
            }
            Frame::Close(close) => {
                w.varint(match close.code {
                    CloseCode::Transport(c) => c.0,
                    CloseCode::Application(c) => c,
                })?;
                w.varint(close.reason.as_bytes().len() as u64)?;
                w.put(close.reason.as_bytes())?;
            }
            Frame::ObservedAddress(o) => o.write(w)?,
            Frame::Datagram(d) => {
                w.varint(d.len() as u64)?;
                w.put(d)?;
            }
            Frame::Relay(r) => r.write(w)?,
            Frame::Stream(s) => s.write(w)?,
            Frame::Hello(h) => {
                h.versions.write(w)?;
                w.varint(h.capabilities.bits())?;
                w.varint(h.token.len() as u64)?;
                w.put(&h.token)?;
                h.params.write(w)?;
            }
            Frame::Accept(a) => {
                w.u16(a.version)?;
                w.varint(a.capabilities.bits())?;
                a.params.write(w)?;
            }
            Frame::Reject(r) => {
                w.varint(r.reason.0)?;
                r.versions.write(w)?;
            }
            Frame::Retry(r) => {
                w.varint(r.token.len() as u64)?;
                w.put(&r.token)?;
            }
            Frame::NoiseHello(h) => h.write(w)?,
            Frame::NoiseAccept(m) | Frame::NoiseFinish(m) => write_message(w, m)?,
        }
        Ok(())
    }
}

/// One line per frame, in the text form spec/vectors/README.md documents, for example
/// `STREAM id=4 offset=0 len=5 fin total=5 label=/eth/68 data=68656c6c6f`.
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Padding(n) => write!(f, "PADDING len={n}"),
            Frame::Ping => f.write_str("PING"),
            Frame::Ack(a) => {
                write!(
                    f,
                    "ACK delay={}us owd={} ranges={}",
                    a.ack_delay, a.one_way_delay, a.ranges
                )
            }
            Frame::ResetStream { id, code, final_size } => {
                write!(f, "RESET_STREAM id={id} code={code} final_size={final_size}")
            }
            Frame::StopSending { id, code } => write!(f, "STOP_SENDING id={id} code={code}"),
            Frame::Receipt {
                id,
                delivery: Delivery::Delivered { relays },
            } => write!(f, "RECEIPT id={id} relays={relays}"),
            Frame::Receipt {
                id,
                delivery: Delivery::Failed { code, relays },
            } => write!(f, "RECEIPT_FAILED id={id} code={code} relays={relays}"),
            Frame::ReceiptRun(run) => write!(
                f,
                "RECEIPT_RUN first={} also={:#x} relays={}",
                run.first, run.also, run.relays
            ),
            Frame::MaxData(v) => write!(f, "MAX_DATA max={v}"),
            Frame::MaxStreamData { id, max } => write!(f, "MAX_STREAM_DATA id={id} max={max}"),
            Frame::MaxStreams(v) => write!(f, "MAX_STREAMS max={v}"),
            Frame::DataBlocked(v) => write!(f, "DATA_BLOCKED limit={v}"),
            Frame::StreamDataBlocked { id, limit } => write!(f, "STREAM_DATA_BLOCKED id={id} limit={limit}"),
            Frame::StreamsBlocked(v) => write!(f, "STREAMS_BLOCKED limit={v}"),
            Frame::Close(c) => match c.code {
                CloseCode::Transport(code) => write!(f, "CLOSE code={code} reason={:?}", c.reason.as_str()),
                CloseCode::Application(code) => {
                    write!(f, "APPLICATION_CLOSE code={code} reason={:?}", c.reason.as_str())
                }
            },
            Frame::ObservedAddress(o) => {
                write!(f, "OBSERVED_ADDRESS seq={} address={}", o.sequence, o.address)
            }
            Frame::Relay(r) => write!(f, "{r}"),
            Frame::Datagram(d) => write!(f, "DATAGRAM len={}", d.len()),
            Frame::Stream(s) => {
                write!(f, "STREAM id={} offset={} len={}", s.id, s.offset, s.data.len())?;
                if s.fin {
                    f.write_str(" fin")?;
                }
                if let Some(total) = s.total_len {
                    write!(f, " total={total}")?;
                }
                if let Some(label) = &s.label {
                    write!(f, " label={label}")?;
                }
                if let Some(digest) = &s.digest {
                    write!(f, " digest={digest}")?;
                }
                write!(f, " data={}", Hex(&s.data))
            }
            Frame::Hello(h) => write!(
                f,
                "HELLO versions={} caps={} token={} params={}",
                h.versions,
                h.capabilities,
                Hex(&h.token),
                h.params
            ),
            Frame::Accept(a) => write!(
                f,
                "ACCEPT version={} caps={} params={}",
                a.version, a.capabilities, a.params
            ),
            Frame::Reject(r) => write!(f, "REJECT reason={} versions={}", r.reason, r.versions),
            Frame::Retry(r) => write!(f, "RETRY token={}", Hex(&r.token)),
            Frame::NoiseHello(n) => write!(
                f,
                "NOISE_HELLO versions={} caps={} token={} params={} pattern={} ciphers={} message={}",
                n.hello.versions,
                n.hello.capabilities,
                Hex(&n.hello.token),
                n.hello.params,
                n.pattern,
                n.ciphers,
                Hex(&n.message)
            ),
            Frame::NoiseAccept(m) => write!(f, "NOISE_ACCEPT message={}", Hex(m)),
            Frame::NoiseFinish(m) => write!(f, "NOISE_FINISH message={}", Hex(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of every packet is moved by value on the way in and out: the handshake's
    /// frames, a STREAM frame's digest and PUNCH_CANDIDATES' addresses stay boxed, so a
    /// frame is no larger than a STREAM frame needs (152 bytes with the last two inline:
    /// 0.56% more of in-memory messages' instructions, 0.8% more of a round trip's;
    /// adapters/bench/rounds.md, twenty-first round).
    #[test]
    fn a_frame_is_no_larger_than_its_common_variants_need() {
        extern crate std;
        // The largest inline variants (`-- --nocapture` prints them).
        std::println!(
            "Frame {} bytes: STREAM {}, relay {}, ACK {}",
            core::mem::size_of::<Frame>(),
            core::mem::size_of::<StreamFrame>(),
            core::mem::size_of::<RelayFrame>(),
            core::mem::size_of::<Ack>(),
        );
        assert!(
            core::mem::size_of::<Frame>() <= 112,
            "{}",
            core::mem::size_of::<Frame>()
        );
    }

    #[test]
    fn a_stream_frame_s_own_length_is_the_frame_s() {
        let plain = StreamFrame {
            id: StreamId(4),
            offset: 70_000,
            data: Bytes::from_static(b"hello"),
            fin: false,
            total_len: None,
            label: None,
            digest: None,
        };
        let opening = StreamFrame {
            offset: 0,
            fin: true,
            total_len: Some(5),
            label: Some(crate::wire::Label::from_static("/kad/1").unwrap()),
            digest: Some(Box::new(crate::wire::Digest::from_bytes(
                [3; crate::wire::Digest::LEN],
            ))),
            ..plain.clone()
        };
        for f in [plain, opening] {
            assert_eq!(f.frame_len(), Frame::Stream(f.clone()).encoded_len());
        }
    }
}
