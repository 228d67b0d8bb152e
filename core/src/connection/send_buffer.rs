//! The connection's send buffer (spec/protocol.md §8 Flow control, `Config::send_buffer`):
//! how many bytes written by the application or a pipe are not acknowledged yet, how many
//! more it takes, and when a refused write is to hear that there is room. An owned part of
//! the connection: it keeps the count and answers; the streams hold the bytes.
//!
//! Inputs: bytes taken, bytes acknowledged or let go, refused writes. Outputs: room, and
//! whether `Event::Writable` is due.

/// The send buffer's account.
#[derive(Debug)]
pub(super) struct SendBuffer {
    /// The most it holds (`Config::send_buffer`).
    limit: u64,
    /// Bytes written and not yet acknowledged (held by reference in the streams).
    held: u64,
    /// A write was refused for lack of room: `Writable` is due once this much is free.
    wanted: Option<u64>,
}

impl SendBuffer {
    /// An empty buffer of `limit` bytes.
    pub(super) fn new(limit: u64) -> SendBuffer {
        SendBuffer {
            limit,
            held: 0,
            wanted: None,
        }
    }

    /// The most it holds.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes written and not yet acknowledged.
    pub(super) fn held(&self) -> u64 {
        self.held
    }

    /// Bytes it takes now.
    pub(super) fn room(&self) -> u64 {
        self.limit.saturating_sub(self.held)
    }

    /// `n` bytes were written.
    pub(super) fn take(&mut self, n: u64) {
        self.held += n;
    }

    /// `n` bytes were acknowledged, or let go with their stream.
    pub(super) fn release(&mut self, n: u64) {
        self.held -= n;
    }

    /// A write was refused: the application hears once `n` bytes are free.
    pub(super) fn want(&mut self, n: u64) {
        self.wanted = Some(n);
    }

    /// A write of `len` bytes was refused for a full buffer: the application hears once a
    /// quarter of the buffer (or the whole write, if smaller) is free, not after every
    /// acknowledgement.
    pub(super) fn want_some_of(&mut self, len: u64) {
        self.want(len.min(self.limit / 4).max(1));
    }

    /// Whether `Event::Writable` is due now: a refused write would fit (once per refusal).
    pub(super) fn writable(&mut self) -> bool {
        let due = self.wanted.is_some_and(|w| self.room() >= w);
        if due {
            self.wanted = None;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_hears_once_a_quarter_of_the_buffer_is_free() {
        let mut b = SendBuffer::new(1000);
        b.take(1000);
        assert_eq!(b.room(), 0);
        b.want_some_of(600);
        assert!(!b.writable());
        b.release(249);
        assert!(!b.writable(), "less than a quarter free");
        b.release(1);
        assert!(b.writable());
        assert!(!b.writable(), "once per refusal");
        assert_eq!((b.held(), b.room(), b.limit()), (750, 250, 1000));
    }

    #[test]
    fn a_refused_message_hears_once_all_of_it_fits() {
        let mut b = SendBuffer::new(1000);
        b.take(900);
        b.want(300);
        b.release(199);
        assert!(!b.writable());
        b.release(1);
        assert!(b.writable());
    }
}
