//! STREAM frames and stream labels (spec/protocol.md §4.12).

use alloc::boxed::Box;
use core::fmt;

use bytes::Bytes;

use super::cursor::{varint_len, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::frame_types as types;
use super::ids::StreamId;
use super::varint;
use super::Digest;
use super::MAX_LABEL_LEN;

/// A stream's protocol label, such as `/eth/68` (spec/protocol.md §4.12): 1 to
/// [`MAX_LABEL_LEN`] bytes of printable ASCII (0x21 to 0x7e), held as a slice of the
/// datagram it came in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub(super) Bytes);

impl Label {
    /// The label with these bytes, or the violation if they are not a valid label.
    pub fn new(bytes: Bytes) -> Result<Self, Violation> {
        if bytes.len() > MAX_LABEL_LEN {
            return Err(Violation::LimitExceeded {
                limit: Limit::LabelLength,
                value: bytes.len() as u64,
                max: MAX_LABEL_LEN as u64,
            });
        }
        if bytes.is_empty() || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(Violation::InvalidLabel);
        }
        Ok(Label(bytes))
    }

    /// The label from a static string.
    pub fn from_static(s: &'static str) -> Result<Self, Violation> {
        Self::new(Bytes::from_static(s.as_bytes()))
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        // Printable ASCII is always UTF-8; the fallback is never taken.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The label's bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// STREAM (spec/protocol.md §4.12): bytes of one stream at a byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFrame {
    /// The stream.
    pub id: StreamId,
    /// Offset of `data`'s first byte in the stream.
    pub offset: u64,
    /// The bytes: a slice of the datagram when decoded, a slice of the application's
    /// buffer when encoded. Never copied by the codec except into the outgoing datagram.
    pub data: Bytes,
    /// Whether the stream ends with `data` (the stream's final size is `offset + data.len()`).
    pub fin: bool,
    /// The stream's total length, when the sender knows it; only at offset 0.
    pub total_len: Option<u64>,
    /// The stream's protocol label; only at offset 0.
    pub label: Option<Label>,
    /// The SHA-256 of the whole stream, for its final receiver to verify; only at offset 0.
    /// Boxed: rare, and inline it made a STREAM frame 136 bytes rather than 112, and with it
    /// every frame of every packet, moved by value (`Frame`'s size, bounded by a test in
    /// `frame.rs` that prints the sizes).
    pub digest: Option<Box<Digest>>,
}

impl StreamFrame {
    /// Offset just past this frame's data.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.data.len() as u64)
    }

    pub(crate) fn frame_type(&self) -> u64 {
        let mut t = types::STREAM;
        if self.fin {
            t |= types::STREAM_FIN;
        }
        if self.total_len.is_some() {
            t |= types::STREAM_TOTAL;
        }
        if self.label.is_some() {
            t |= types::STREAM_LABEL;
        }
        if self.digest.is_some() {
            t |= types::STREAM_DIGEST;
        }
        t
    }

    pub(crate) fn check(&self) -> Result<(), Violation> {
        self.check_with_len(self.data.len())
    }

    /// [`check`](Self::check) for a frame carrying `len` bytes of data (a frame read by a
    /// shallow reader holds none: `Reader::payload`).
    fn check_with_len(&self, len: usize) -> Result<(), Violation> {
        let end = self.offset as u128 + len as u128;
        if end > varint::MAX as u128 {
            return Err(Violation::LimitExceeded {
                limit: Limit::StreamEnd,
                value: u64::MAX,
                max: varint::MAX,
            });
        }
        if self.offset != 0 && (self.total_len.is_some() || self.label.is_some() || self.digest.is_some()) {
            return Err(Violation::OpenFieldsNotAtStart { offset: self.offset });
        }
        if let Some(total) = self.total_len {
            let end = end as u64;
            if end > total || (self.fin && end != total) {
                return Err(Violation::TotalLengthMismatch { total, end });
            }
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader, frame_type: u64) -> Result<Self, DecodeError> {
        let id = StreamId(r.varint(Field::StreamId)?);
        let offset = r.varint(Field::Offset)?;
        let total_len = match frame_type & types::STREAM_TOTAL {
            0 => None,
            _ => Some(r.varint(Field::TotalLength)?),
        };
        let label = match frame_type & types::STREAM_LABEL {
            0 => None,
            _ => {
                let len = r.length(Field::Label, Limit::LabelLength, MAX_LABEL_LEN)?;
                Some(Label::new(r.bytes(len, Field::Label)?)?)
            }
        };
        let digest = match frame_type & types::STREAM_DIGEST {
            0 => None,
            _ => Some(Box::new(Digest::from_bytes(r.array(Field::Digest)?))),
        };
        let (data, len) = r.prefixed_payload(Field::StreamData)?;
        let frame = StreamFrame {
            id,
            offset,
            data,
            fin: frame_type & types::STREAM_FIN != 0,
            total_len,
            label,
            digest,
        };
        frame.check_with_len(len)?;
        Ok(frame)
    }

    /// The whole frame's length, its type included: what [`Frame::encoded_len`] gives for
    /// it, without moving the fields into a `Frame` (a sender measures an empty frame's
    /// overhead for every datagram).
    ///
    /// [`Frame::encoded_len`]: super::frame::Frame::encoded_len
    pub(crate) fn frame_len(&self) -> Result<usize, Violation> {
        Ok(varint_len(self.frame_type())? + self.encoded_len()?)
    }

    pub(crate) fn encoded_len(&self) -> Result<usize, Violation> {
        self.check()?;
        let mut len = varint_len(self.id.0)? + varint_len(self.offset)?;
        if let Some(total) = self.total_len {
            len += varint_len(total)?;
        }
        if let Some(label) = &self.label {
            len += varint_len(label.0.len() as u64)? + label.0.len();
        }
        if self.digest.is_some() {
            len += Digest::LEN;
        }
        Ok(len + varint_len(self.data.len() as u64)? + self.data.len())
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.varint(self.id.0)?;
        w.varint(self.offset)?;
        if let Some(total) = self.total_len {
            w.varint(total)?;
        }
        if let Some(label) = &self.label {
            w.varint(label.0.len() as u64)?;
            w.put(&label.0)?;
        }
        if let Some(digest) = &self.digest {
            w.put(digest.as_bytes())?;
        }
        w.varint(self.data.len() as u64)?;
        // The one copy of payload on the send path: into the outgoing datagram.
        w.put(&self.data)
    }
}
