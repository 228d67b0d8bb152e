//! The labels that make a stream a request or a reply (spec/protocol.md §8, Requests): a
//! convention over streams, no frame of its own. A request is a stream labelled
//! `weir/rq/` and the service's label; its reply is a stream the other way labelled
//! `weir/re/` and the request's stream id in decimal. The core does not offer either to
//! `accept_stream` or `next_message` (they would be taken for plain streams); the
//! application's request layer finds them by their `StreamOpened` event and reads them by
//! id.
//!
//! Inputs: a label (ours to send, or the peer's). Outputs: the label to send, or what a
//! received label says the stream is.

use core::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use super::{Label, StreamId, Violation, MAX_LABEL_LEN};

/// The stream error code a responder stops a request with when it will not answer it
/// (`0x72667364`, "rfsd"): the application refused it, or dropped it unanswered.
pub const REQUEST_REFUSED: u64 = 0x7266_7364;

/// The stream error code a requester resets its request with when it gives up waiting
/// (cancelled, or its deadline passed), and stops a reply with that no request waits for
/// (`0x636e636c`, "cncl").
pub const REQUEST_CANCELLED: u64 = 0x636e_636c;

const REQUEST_PREFIX: &[u8] = b"weir/rq/";
const REPLY_PREFIX: &[u8] = b"weir/re/";

/// The longest service label a request can carry: a label's limit less the prefix.
pub const MAX_SERVICE_LEN: usize = MAX_LABEL_LEN - REQUEST_PREFIX.len();

/// What a stream's label says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamRole {
    /// A plain stream (no label, or one of the application's).
    Plain,
    /// A request to this service.
    Request(Label),
    /// The reply to the request that is this stream id (one opened by the reply's
    /// receiver: the caller checks).
    Reply(StreamId),
    /// A request or reply label that breaks its form (an empty service, an id not in its
    /// shortest decimal form): a stream no request layer takes.
    Malformed,
}

impl StreamRole {
    /// What a stream with `label` is.
    pub fn of(label: Option<&Label>) -> StreamRole {
        let Some(label) = label else {
            return StreamRole::Plain;
        };
        let bytes = label.as_bytes();
        if let Some(service) = bytes.strip_prefix(REQUEST_PREFIX) {
            let service = bytes.slice_ref(service);
            return Label::new(service).map_or(StreamRole::Malformed, StreamRole::Request);
        }
        if let Some(digits) = bytes.strip_prefix(REPLY_PREFIX) {
            return parse_id(digits).map_or(StreamRole::Malformed, |id| StreamRole::Reply(StreamId(id)));
        }
        StreamRole::Plain
    }

    /// Whether a stream with `label` is left out of the streams offered to the application
    /// (a request, a reply, or a malformed one of either).
    pub fn is_reserved(label: Option<&Label>) -> bool {
        StreamRole::of(label) != StreamRole::Plain
    }
}

/// A decimal stream id in its shortest form (no leading zero but for 0 itself), at most
/// 2^62 − 1.
fn parse_id(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || (digits.first() == Some(&b'0') && digits.len() > 1) {
        return None;
    }
    let mut id: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        id = id.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    (id < 1 << 62).then_some(id)
}

/// The label a request to `service` carries; fails if `service` is longer than
/// [`MAX_SERVICE_LEN`].
pub fn request_label(service: &Label) -> Result<Label, Violation> {
    let mut label = BytesMut::with_capacity(REQUEST_PREFIX.len() + service.as_bytes().len());
    label.extend_from_slice(REQUEST_PREFIX);
    label.extend_from_slice(service.as_bytes());
    Label::new(label.freeze())
}

/// The label of the reply to `request`.
pub fn reply_label(request: StreamId) -> Label {
    let mut text = alloc::string::String::with_capacity(REPLY_PREFIX.len() + 19);
    text.push_str("weir/re/");
    // Writing into a String cannot fail.
    let _ = write!(text, "{}", request.0);
    // Printable ASCII, at most 27 bytes: a label by construction.
    Label(Bytes::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &'static str) -> Label {
        Label::from_static(s).unwrap()
    }

    #[test]
    fn labels_round_trip_and_malformed_ones_are_no_request_or_reply() {
        let service = label("/kad/find-node/1");
        assert_eq!(
            StreamRole::of(Some(&request_label(&service).unwrap())),
            StreamRole::Request(service)
        );
        for id in [0, 7, 1 << 40, (1 << 62) - 1] {
            let reply = reply_label(StreamId(id));
            assert_eq!(StreamRole::of(Some(&reply)), StreamRole::Reply(StreamId(id)));
        }
        assert_eq!(reply_label(StreamId(12)).as_str(), "weir/re/12");
        assert_eq!(StreamRole::of(None), StreamRole::Plain);
        for plain in ["weir/file", "/eth/68", "weir/r", "weir/rq", "weir/re"] {
            assert_eq!(StreamRole::of(Some(&label(plain))), StreamRole::Plain, "{plain}");
            assert!(!StreamRole::is_reserved(Some(&label(plain))));
        }
        for bad in [
            "weir/rq/",
            "weir/re/",
            "weir/re/01",
            "weir/re/1x",
            "weir/re/4611686018427387904",
            "weir/re/99999999999999999999",
        ] {
            assert_eq!(StreamRole::of(Some(&label(bad))), StreamRole::Malformed, "{bad}");
            assert!(StreamRole::is_reserved(Some(&label(bad))));
        }
    }

    #[test]
    fn a_service_label_longer_than_the_room_left_is_refused() {
        let longest = Label::new(Bytes::from(alloc::vec![b'a'; MAX_SERVICE_LEN])).unwrap();
        assert!(request_label(&longest).is_ok());
        let over = Label::new(Bytes::from(alloc::vec![b'a'; MAX_SERVICE_LEN + 1])).unwrap();
        assert!(request_label(&over).is_err());
    }
}
