//! The `driver` target's oracles: what each payload is, what the applications sent and
//! were given, and the checks on every answer (spec/protocol.md §8, Delivery, Requests and
//! Channels). Each check panics on a broken answer; the tests below show each one firing.
//!
//! Inputs: the answers the calls get. Output: the log's record of them (part of the run's
//! digest), or a panic that names what broke.

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::{
    ApiError, ChannelError, ChannelSender, Confirm, Error, Request, RequestError, Responder, REQUEST_REFUSED,
};

/// Longest body, reply, message or channel message: past a stream's first window (2 KiB,
/// module `world`), and a few past the connection's (8 KiB).
pub(super) const MAX_LEN: usize = 3 * 1024;
/// The lower limit some readers take (a reply read whole, a channel's messages), so that
/// some payloads are over it.
pub(super) const SHORT_LIMIT: u64 = (MAX_LEN / 2) as u64;

/// A call that ends a stream and waits for its acknowledgement or receipt (`what`) never
/// answers a peer's stop as a write does ([`Error::Stopped`]): the stop is the peer's
/// refusal, [`Error::NotDelivered`] with its code, whether it came before the last
/// acknowledgement (STOP_SENDING) or after it (RECEIPT_FAILED), or met a write first.
pub(super) fn refusal_not_as_a_write(what: std::fmt::Arguments<'_>, confirm: Confirm, r: &Result<(), Error>) {
    if let Err(Error::Stopped { code }) = r {
        assert!(
            confirm == Confirm::Queued,
            "{what}, waiting for {confirm:?}, reported the peer's stop ({code}) as a write does"
        );
    }
}

/// What a payload is: each kind is cut from a different place of the pattern.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    Request = 1,
    Reply = 2,
    Message = 3,
    Channel = 4,
    Datagram = 5,
    /// A stream the `piping` target's sender sends through the relay.
    Piped = 6,
}

/// Payload `k` of `kind`, `len` bytes (at least 4): `k` in its first four, then pattern
/// from a place that `kind`, `k` and `len` choose (so that a payload cut short is not
/// another payload).
pub(super) fn content(kind: Kind, k: u32, len: usize) -> Bytes {
    // The core's targets' bytes: pseudo-random, so that a byte given to the wrong call or
    // offset shows.
    let pattern = weir_core::fuzz::pattern();
    let len = len.clamp(4, MAX_LEN);
    let start = (k as usize * 4099 + kind as usize * 1031 + len * 7) % (pattern.len() - MAX_LEN);
    let mut out = BytesMut::with_capacity(len);
    out.extend_from_slice(&k.to_le_bytes());
    out.extend_from_slice(&pattern[start..start + len - 4]);
    out.freeze()
}

/// The `k` a payload of `kind` names, if it is exactly that payload.
pub(super) fn named(kind: Kind, bytes: &[u8]) -> Option<u32> {
    let k = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    (content(kind, k, bytes.len()) == bytes).then_some(k)
}

/// Channel `c`'s message `n`, as a payload number.
pub(super) fn channel_k(c: usize, n: usize) -> u32 {
    (c as u32) << 16 | n as u32
}

/// What the applications did and were given.
#[derive(Default)]
pub(super) struct Log {
    pub(super) requests: Vec<RequestRecord>,
    /// Requests the server accepted and has not answered yet.
    pub(super) responders: Vec<(Request, Responder)>,
    /// Per message the client sent: whether the server read it.
    pub(super) messages: Vec<bool>,
    pub(super) channels: Vec<ChannelRecord>,
    /// Per datagram sent (by the client, by the server): whether the peer read it.
    pub(super) datagrams: [Vec<bool>; 2],
    /// Every answer given, a line each, in order: part of the run's digest.
    pub(super) answers: Vec<u8>,
}

pub(super) type LogRef = Rc<RefCell<Log>>;

#[derive(Default)]
pub(super) struct RequestRecord {
    /// The call that waits for its reply, until it ends (a cancel drops it).
    pub(super) task: Option<usize>,
    /// The reply its responder sent.
    pub(super) replied: Option<Bytes>,
    /// The code its responder refused it with.
    pub(super) refused: Option<u64>,
    /// The longest reply its call takes whole, if lower than any reply.
    pub(super) reply_limit: Option<u64>,
}

#[derive(Default)]
pub(super) struct ChannelRecord {
    /// Its sender, while no send holds it and it is neither finished nor broken.
    pub(super) sender: Option<ChannelSender>,
    /// The lengths of the messages sent on it, in order.
    pub(super) sent: Vec<usize>,
    pub(super) read: usize,
    pub(super) finished: bool,
    /// The longest message its reader takes, if lower than any message.
    pub(super) limit: Option<u64>,
}

impl Log {
    pub(super) fn answer(&mut self, what: &str, detail: impl std::fmt::Debug) {
        // Written in place, no string made and copied for each answer; writing to a Vec
        // cannot fail.
        let _ = writeln!(self.answers, "{what} {detail:?}");
    }

    /// The server accepted a request: its body is one the client sent, whole.
    pub(super) fn request_accepted(&mut self, request: Request, responder: Responder) {
        let Some(k) = named(Kind::Request, request.body()) else {
            panic!("a request's body is not what was sent: {:?}", request.body());
        };
        self.answer("request", k);
        self.responders.push((request, responder));
    }

    /// Request `k`'s call ended with `got`: a reply only if its responder sent exactly
    /// that one, a refusal only if it did not reply, with its code.
    pub(super) fn request_answered(&mut self, k: u32, got: &Result<Bytes, Error>) {
        let r = &mut self.requests[k as usize];
        r.task = None;
        match got {
            Ok(reply) => {
                assert_eq!(
                    Some(reply),
                    r.replied.as_ref(),
                    "request {k} was given a reply its responder did not send"
                );
                assert!(
                    r.reply_limit.is_none_or(|limit| reply.len() as u64 <= limit),
                    "request {k} was given a reply over its limit"
                );
            }
            Err(Error::Refused(ApiError::MessageTooLong)) => assert!(
                r.reply_limit
                    .is_some_and(|limit| r.replied.as_ref().is_some_and(|b| b.len() as u64 > limit)),
                "request {k}'s reply was refused as too long, but it was not over the call's limit"
            ),
            Err(Error::Request(RequestError::Refused { code })) => {
                assert!(
                    r.replied.is_none(),
                    "request {k} refused after its reply was sent"
                );
                if let Some(refused) = r.refused {
                    assert_eq!(*code, refused, "request {k} refused with another code");
                }
            }
            Err(_) => {}
        }
        let answer = got.as_ref().map(Bytes::len).map_err(Error::to_string);
        self.answer("reply", (k, answer));
    }

    /// Request `k`'s reply, read as a stream, gave `piece` at `offset`: its responder's
    /// bytes there.
    pub(super) fn reply_piece(&mut self, k: u32, offset: usize, piece: &[u8]) {
        let replied = self.requests[k as usize].replied.as_ref();
        assert!(
            replied.and_then(|b| b.get(offset..offset + piece.len())) == Some(piece),
            "request {k} was given {} reply bytes at {offset} that its responder did not send there",
            piece.len()
        );
    }

    /// The responder of request `k` is dropped unanswered: the request is refused.
    pub(super) fn responder_dropped(&mut self, k: u32) {
        self.requests[k as usize].refused = Some(REQUEST_REFUSED);
    }

    /// The server read message `m`: one the client sent, read once.
    pub(super) fn message_read(&mut self, m: &[u8]) {
        let Some(k) = named(Kind::Message, m) else {
            panic!("a message is not what was sent: {m:?}");
        };
        let read = self
            .messages
            .get_mut(k as usize)
            .expect("a message that was sent");
        assert!(!*read, "message {k} read twice");
        *read = true;
        self.answer("message", k);
    }

    /// Message `k`'s send ended with `r`: "delivered" only once the server read it.
    pub(super) fn message_sent(&mut self, k: u32, confirm: Confirm, r: &Result<(), Error>) {
        refusal_not_as_a_write(format_args!("message {k}"), confirm, r);
        if r.is_ok() && confirm == Confirm::Delivered {
            assert!(
                self.messages[k as usize],
                "message {k} reported delivered, never read"
            );
        }
        self.answer("message sent", (k, r.as_ref().map_err(Error::to_string)));
    }

    /// Channel `c`'s reader got `got`: the next message sent, whole, or the end once every
    /// message was read and the sender finished. Whether the reader goes on.
    pub(super) fn channel_read(&mut self, c: usize, got: Result<Option<Bytes>, Error>) -> bool {
        let ch = &mut self.channels[c];
        match got {
            Ok(Some(m)) => {
                let n = ch.read;
                let expected = ch.sent.get(n).copied();
                assert!(
                    expected.is_some_and(|len| m == content(Kind::Channel, channel_k(c, n), len)),
                    "channel {c}'s message {n} is not what was sent"
                );
                assert!(
                    ch.limit.is_none_or(|limit| m.len() as u64 <= limit),
                    "channel {c}'s message {n} is over its reader's limit"
                );
                ch.read += 1;
                self.answer("channel message", (c, n));
                true
            }
            Ok(None) => {
                assert!(
                    ch.finished && ch.read == ch.sent.len(),
                    "channel {c} ended cleanly after {} of {} messages, finished: {}",
                    ch.read,
                    ch.sent.len(),
                    ch.finished
                );
                self.answer("channel end", c);
                false
            }
            Err(e) => {
                if let Error::Channel(ChannelError::TooLong { len, limit }) = e {
                    let next = ch.sent.get(ch.read).map(|&l| l as u64);
                    assert!(
                        ch.limit == Some(limit) && next == Some(len) && len > limit,
                        "channel {c} refused a {len}-byte message over a {limit}-byte limit, \
                         but its next message is {next:?} bytes and its reader's limit {:?}",
                        ch.limit
                    );
                }
                self.answer("channel error", (c, e.to_string()));
                false
            }
        }
    }

    /// Side `reader` (0: the client) read datagram `d`: one its peer sent, read once.
    pub(super) fn datagram_read(&mut self, reader: usize, d: &[u8]) {
        let Some(k) = named(Kind::Datagram, d) else {
            panic!("a datagram is not what was sent: {d:?}");
        };
        let read = self.datagrams[1 - reader]
            .get_mut(k as usize)
            .expect("a datagram that was sent");
        assert!(!*read, "datagram {k} read twice");
        *read = true;
        self.answer("datagram", (reader, k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(requests: usize, messages: usize) -> Log {
        let mut log = Log::default();
        log.requests.resize_with(requests, RequestRecord::default);
        log.messages.resize(messages, false);
        log
    }

    #[test]
    fn payloads_name_themselves_and_nothing_else() {
        let p = content(Kind::Message, 7, 100);
        assert_eq!(named(Kind::Message, &p), Some(7));
        assert_eq!(named(Kind::Reply, &p), None, "another kind");
        let mut changed = p.to_vec();
        changed[50] ^= 1;
        assert_eq!(named(Kind::Message, &changed), None, "a byte changed");
        assert_eq!(named(Kind::Message, &p[..99]), None, "a byte short");
    }

    #[test]
    fn a_reply_its_responder_sent_holds_and_so_does_its_refusal() {
        let mut log = log_with(2, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 10));
        log.request_answered(0, &Ok(content(Kind::Reply, 0, 10)));
        log.requests[1].refused = Some(9);
        log.request_answered(1, &Err(Error::Request(RequestError::Refused { code: 9 })));
    }

    #[test]
    fn a_stop_reads_as_a_write_s_only_where_nothing_waits_for_a_confirmation() {
        let mut log = log_with(0, 1);
        log.message_sent(0, Confirm::Queued, &Err(Error::Stopped { code: 3 }));
        let refused = Error::NotDelivered(crate::Delivery::Failed { code: 3, relays: 0 });
        log.message_sent(0, Confirm::Delivered, &Err(refused));
    }

    #[test]
    #[should_panic(expected = "reported the peer's stop (3) as a write does")]
    fn a_stop_answered_to_a_wait_for_delivery_as_a_write_s_fires() {
        log_with(0, 1).message_sent(0, Confirm::Acknowledged, &Err(Error::Stopped { code: 3 }));
    }

    #[test]
    #[should_panic(expected = "a reply its responder did not send")]
    fn a_reply_no_responder_sent_fires() {
        log_with(1, 0).request_answered(0, &Ok(content(Kind::Reply, 0, 10)));
    }

    #[test]
    #[should_panic(expected = "a reply its responder did not send")]
    fn another_request_s_reply_fires() {
        let mut log = log_with(2, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 10));
        log.request_answered(0, &Ok(content(Kind::Reply, 1, 10)));
    }

    #[test]
    #[should_panic(expected = "refused after its reply was sent")]
    fn a_refusal_after_the_reply_fires() {
        let mut log = log_with(1, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 10));
        log.request_answered(0, &Err(Error::Request(RequestError::Refused { code: 9 })));
    }

    #[test]
    #[should_panic(expected = "refused with another code")]
    fn a_refusal_with_another_code_fires() {
        let mut log = log_with(1, 0);
        log.responder_dropped(0);
        log.request_answered(0, &Err(Error::Request(RequestError::Refused { code: 3 })));
    }

    #[test]
    #[should_panic(expected = "reported delivered, never read")]
    fn delivered_before_read_fires() {
        log_with(0, 1).message_sent(0, Confirm::Delivered, &Ok(()));
    }

    #[test]
    fn delivered_after_read_holds_and_queued_needs_no_read() {
        let mut log = log_with(0, 2);
        log.message_sent(1, Confirm::Queued, &Ok(()));
        log.message_read(&content(Kind::Message, 0, 300));
        log.message_sent(0, Confirm::Delivered, &Ok(()));
    }

    #[test]
    #[should_panic(expected = "read twice")]
    fn a_message_read_twice_fires() {
        let mut log = log_with(0, 1);
        log.message_read(&content(Kind::Message, 0, 300));
        log.message_read(&content(Kind::Message, 0, 300));
    }

    #[test]
    #[should_panic(expected = "not what was sent")]
    fn a_changed_message_fires() {
        let mut m = content(Kind::Message, 0, 300).to_vec();
        m[299] ^= 0x80;
        log_with(0, 1).message_read(&m);
    }

    fn channel(sent: &[usize], finished: bool) -> Log {
        let mut log = Log::default();
        log.channels.push(ChannelRecord {
            sent: sent.to_vec(),
            finished,
            ..ChannelRecord::default()
        });
        log
    }

    #[test]
    fn a_channel_read_in_order_to_its_end_holds() {
        let mut log = channel(&[10, 20], true);
        assert!(log.channel_read(0, Ok(Some(content(Kind::Channel, channel_k(0, 0), 10)))));
        assert!(log.channel_read(0, Ok(Some(content(Kind::Channel, channel_k(0, 1), 20)))));
        assert!(!log.channel_read(0, Ok(None)));
    }

    #[test]
    #[should_panic(expected = "message 0 is not what was sent")]
    fn a_channel_message_skipped_fires() {
        channel(&[10, 20], false).channel_read(0, Ok(Some(content(Kind::Channel, channel_k(0, 1), 20))));
    }

    #[test]
    #[should_panic(expected = "ended cleanly after 0 of 1 messages")]
    fn a_channel_ending_short_fires() {
        channel(&[10], true).channel_read(0, Ok(None));
    }

    #[test]
    #[should_panic(expected = "finished: false")]
    fn a_channel_ending_unfinished_fires() {
        channel(&[], false).channel_read(0, Ok(None));
    }

    #[test]
    fn a_limit_holds_for_replies_and_channel_messages_within_it_and_refuses_those_over() {
        let mut log = log_with(2, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 10));
        log.requests[0].reply_limit = Some(10);
        log.reply_piece(0, 4, &content(Kind::Reply, 0, 10)[4..]);
        log.request_answered(0, &Ok(content(Kind::Reply, 0, 10)));
        log.requests[1].replied = Some(content(Kind::Reply, 1, 11));
        log.requests[1].reply_limit = Some(10);
        log.request_answered(1, &Err(Error::Refused(ApiError::MessageTooLong)));
        let mut log = channel(&[10, 11], false);
        log.channels[0].limit = Some(10);
        assert!(log.channel_read(0, Ok(Some(content(Kind::Channel, channel_k(0, 0), 10)))));
        let too_long = ChannelError::TooLong { len: 11, limit: 10 };
        assert!(!log.channel_read(0, Err(Error::Channel(too_long))));
    }

    #[test]
    #[should_panic(expected = "that its responder did not send there")]
    fn a_reply_piece_at_the_wrong_offset_fires() {
        let mut log = log_with(1, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 10));
        log.reply_piece(0, 3, &content(Kind::Reply, 0, 10)[4..]);
    }

    #[test]
    #[should_panic(expected = "not over the call's limit")]
    fn a_reply_refused_within_its_limit_fires() {
        let mut log = log_with(1, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 10));
        log.requests[0].reply_limit = Some(10);
        log.request_answered(0, &Err(Error::Refused(ApiError::MessageTooLong)));
    }

    #[test]
    #[should_panic(expected = "a reply over its limit")]
    fn a_reply_over_its_limit_given_fires() {
        let mut log = log_with(1, 0);
        log.requests[0].replied = Some(content(Kind::Reply, 0, 11));
        log.requests[0].reply_limit = Some(10);
        log.request_answered(0, &Ok(content(Kind::Reply, 0, 11)));
    }

    #[test]
    #[should_panic(expected = "over its reader's limit")]
    fn a_channel_message_over_the_limit_given_fires() {
        let mut log = channel(&[11], false);
        log.channels[0].limit = Some(10);
        log.channel_read(0, Ok(Some(content(Kind::Channel, channel_k(0, 0), 11))));
    }

    #[test]
    #[should_panic(expected = "but its next message is Some(10) bytes")]
    fn a_channel_message_refused_within_the_limit_fires() {
        let mut log = channel(&[10], false);
        log.channels[0].limit = Some(10);
        let too_long = ChannelError::TooLong { len: 10, limit: 10 };
        log.channel_read(0, Err(Error::Channel(too_long)));
    }

    #[test]
    #[should_panic(expected = "datagram 0 read twice")]
    fn a_datagram_read_twice_fires() {
        let mut log = Log::default();
        log.datagrams[1].push(false);
        log.datagram_read(0, &content(Kind::Datagram, 0, 40));
        log.datagram_read(0, &content(Kind::Datagram, 0, 40));
    }

    #[test]
    #[should_panic(expected = "a datagram that was sent")]
    fn a_datagram_the_peer_never_sent_fires() {
        let mut log = Log::default();
        log.datagrams[0].push(false);
        // Sent by the client (0), "read" by the client too.
        log.datagram_read(0, &content(Kind::Datagram, 0, 40));
    }
}
