//! Frame type numbers (spec/protocol.md §4, table 2): a leaf, read by the frames' codecs.

/// One zero byte; runs of them pad a datagram.
pub const PADDING: u64 = 0x00;
/// Asks for an acknowledgement; carries nothing.
pub const PING: u64 = 0x01;
/// Acknowledges packets by ranges.
pub const ACK: u64 = 0x02;
/// The sender abandons a stream it was sending.
pub const RESET_STREAM: u64 = 0x03;
/// The receiver asks the sender to stop a stream.
pub const STOP_SENDING: u64 = 0x04;
/// Connection-wide credit.
pub const MAX_DATA: u64 = 0x05;
/// Per-stream credit.
pub const MAX_STREAM_DATA: u64 = 0x06;
/// Stream count credit.
pub const MAX_STREAMS: u64 = 0x07;
/// The sender is blocked by connection credit.
pub const DATA_BLOCKED: u64 = 0x08;
/// The sender is blocked by a stream's credit.
pub const STREAM_DATA_BLOCKED: u64 = 0x09;
/// The sender is blocked by the stream count limit.
pub const STREAMS_BLOCKED: u64 = 0x0a;
/// Closes the connection for a transport reason.
pub const CLOSE: u64 = 0x0b;
/// Closes the connection for an application reason.
pub const APPLICATION_CLOSE: u64 = 0x0c;
/// The final word on a stream the peer sent: delivered (capability RECEIPTS).
pub const RECEIPT: u64 = 0x0d;
/// The final word on a stream the peer sent: not delivered, and why (capability
/// RECEIPTS).
pub const RECEIPT_FAILED: u64 = 0x0e;
/// The address the sender sees our packets come from (capability ADDRESS_DISCOVERY,
/// version 2 only).
pub const OBSERVED_ADDRESS: u64 = 0x0f;
/// Stream data: 0x10 to 0x1f, the low four bits are flags.
pub const STREAM: u64 = 0x10;
/// STREAM flag: the frame ends the stream.
pub const STREAM_FIN: u64 = 0x01;
/// STREAM flag: the frame carries the stream's total length.
pub const STREAM_TOTAL: u64 = 0x02;
/// STREAM flag: the frame carries the stream's label.
pub const STREAM_LABEL: u64 = 0x04;
/// STREAM flag: the frame carries the stream's digest.
pub const STREAM_DIGEST: u64 = 0x08;
/// Client's opening handshake message.
pub const HELLO: u64 = 0x20;
/// Server's acceptance.
pub const ACCEPT: u64 = 0x21;
/// Server's refusal.
pub const REJECT: u64 = 0x22;
/// Server asks the client to prove its address.
pub const RETRY: u64 = 0x23;
/// Version 2: the client's HELLO with the first Noise message.
pub const NOISE_HELLO: u64 = 0x24;
/// Version 2: the server's Noise message, which seals its acceptance.
pub const NOISE_ACCEPT: u64 = 0x25;
/// Version 2: the client's last Noise message of an XX handshake.
pub const NOISE_FINISH: u64 = 0x26;
/// A peer asks its relay to keep it reachable (capability RELAY, version 2 only; §12.2).
pub const RELAY_RESERVE: u64 = 0x30;
/// A peer asks its relay for a circuit to another peer (capability RELAY).
pub const RELAY_CONNECT: u64 = 0x31;
/// A relay grants a reservation or refuses a request (capability RELAY).
pub const RELAY_ANSWER: u64 = 0x32;
/// A relay tells an end of a circuit that it is open (capability RELAY).
pub const RELAY_CIRCUIT: u64 = 0x33;
/// A circuit ended (capability RELAY).
pub const RELAY_CLOSED: u64 = 0x34;
/// Where an end of a relayed connection may be reached directly (capability RELAY; §12.5).
pub const PUNCH_CANDIDATES: u64 = 0x35;
/// The moment to punch (capability RELAY; §12.5).
pub const PUNCH_NOW: u64 = 0x36;
/// An unreliable datagram: never retransmitted (capability DATAGRAMS; §4.19).
pub const DATAGRAM: u64 = 0x37;
/// Receipts for a run of the peer's streams, all delivered (capability RECEIPT_RUNS;
/// §4.17).
pub const RECEIPT_RUN: u64 = 0x38;
