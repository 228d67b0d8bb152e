//! The model of the unreliable datagrams two applications send each other (spec/protocol.md
//! §4.19), for the targets that drive a pair of applications (`relay`): what each side
//! sent, and what each received.
//!
//! Oracle, on every datagram read: it is one the other side sent, whole and unchanged, and
//! read once. Datagrams may be lost or dropped (the queues hold 64), so none is owed.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use bytes::Bytes;

use super::pair::content;
use crate::{ConnectionHandle, Endpoint, Read};

/// Datagrams read from one queue in one step, at most (a queue holds 64).
const READS: usize = 64;
/// Message numbers' content is keyed apart from datagrams' by this bit.
const DATAGRAM_KEY: u32 = 1 << 31;

/// What each side (0 and 1) sent and received.
#[derive(Default)]
pub(super) struct Datagrams {
    /// By sender: each datagram's number and length.
    sent: [BTreeMap<u32, usize>; 2],
    /// By receiver: the numbers read.
    got: [BTreeSet<u32>; 2],
    next: u32,
}

impl Datagrams {
    /// Side `side` sends a datagram of `len` bytes (at least its 4-byte number) on `conn`.
    pub(super) fn send(&mut self, ep: &mut Endpoint, conn: ConnectionHandle, side: usize, len: usize) {
        let number = self.next;
        self.next += 1;
        let len = len.max(4);
        let mut data = Vec::with_capacity(len);
        data.extend_from_slice(&number.to_le_bytes());
        data.extend_from_slice(content(DATAGRAM_KEY | number, len - 4));
        if ep.send_datagram(conn, Bytes::from(data)).is_ok() {
            self.sent[side].insert(number, len);
        }
    }

    /// Side `side` reads what waits on `conn`, checking each datagram.
    pub(super) fn receive(&mut self, ep: &mut Endpoint, conn: ConnectionHandle, side: usize) {
        for _ in 0..READS {
            let Ok(Read::Data { bytes, .. }) = ep.recv_datagram(conn) else {
                return;
            };
            self.check(side, &bytes);
        }
    }

    /// A datagram side `side` read is one the other side sent, unchanged, read once.
    fn check(&mut self, side: usize, bytes: &[u8]) {
        // Oracle: every datagram this target sends begins with its 4-byte number, so a shorter
        // one read is not one it sent: the finding.
        let number = bytes
            .get(..4)
            .map(|n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]))
            .expect("a datagram shorter than its number");
        let len = self.sent[1 - side].get(&number).copied();
        assert_eq!(
            len,
            Some(bytes.len()),
            "datagram {number}: not one the peer sent, or resized"
        );
        assert!(
            bytes[4..] == *content(DATAGRAM_KEY | number, bytes.len() - 4),
            "datagram {number}: bytes differ from those sent"
        );
        assert!(self.got[side].insert(number), "datagram {number} read twice");
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn datagram(number: u32, len: usize) -> Vec<u8> {
        let mut d = number.to_le_bytes().to_vec();
        d.extend_from_slice(content(DATAGRAM_KEY | number, len - 4));
        d
    }

    #[test]
    fn the_oracle_takes_each_datagram_sent_once_and_fires_on_anything_else() {
        let model = || {
            let mut m = Datagrams::default();
            m.sent[0].insert(5, 100);
            m
        };
        model().check(1, &datagram(5, 100));
        let fired = |bytes: Vec<u8>, twice: bool| {
            std::panic::catch_unwind(move || {
                let mut m = model();
                if twice {
                    m.check(1, &bytes);
                }
                m.check(1, &bytes);
            })
            .is_err()
        };
        assert!(fired(datagram(5, 100), true), "read twice");
        assert!(fired(datagram(6, 100), false), "never sent");
        assert!(fired(datagram(5, 99), false), "resized");
        let mut changed = datagram(5, 100);
        changed[50] ^= 1;
        assert!(fired(changed, false), "a changed byte");
        assert!(fired(std::vec![5, 0], false), "shorter than its number");
    }
}
