//! What a stream the application leaves unread keeps alive of the receive buffers: the
//! in-memory pair of `--bench transfer`, its datagrams cut from 256 KiB blocks as
//! weir-driver's `Inbox` cuts them.

#[path = "../benches/support/pair.rs"]
#[allow(dead_code)]
mod pair;

use pair::{Pair, Protection};
use weir_core::wire::Cipher;

/// A piece of a stream waiting behind bytes the application has not read is kept as a slice
/// of its datagram and charged that datagram (spec §10.3), but it keeps alive the whole
/// block its datagram was received into. Beside a stream read as it comes, each block holds
/// about one piece of the unread one: before sweeps (spec §10.3, "Age"), 100 rounds of
/// 400,000 bytes read and 1,000 left unread, 50 ms apart, kept 101 blocks (25 MiB) alive
/// for 100,000 bytes, where the receive budget counts about 158 KB. Sweeps copy a slice
/// within two grace periods, so the blocks alive stay a few whatever the rounds.
#[test]
fn a_stream_left_unread_keeps_no_block_per_piece() {
    let mut p = Pair::connected(Protection::Sealed(Cipher::Aes256Gcm));
    let held = p.unread_trickle(100, 400_000, 1000);
    assert_eq!(held, 100_000);
    assert!(
        p.blocks_allocated <= 8,
        "{} blocks of 256 KiB allocated for {held} bytes left unread",
        p.blocks_allocated
    );
}
