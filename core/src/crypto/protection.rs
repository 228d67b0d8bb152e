//! Packet protection: sealing and opening version 2 data packets, and key updates
//! (spec/protocol.md §11.3-§11.5).
//!
//! Its job: give each data packet confidentiality and integrity, header included, with a
//! nonce that never repeats, and move to fresh keys long before an AEAD's limits.
//!
//! Inputs: the two 32-byte secrets the Noise handshake ends with (one per direction), the
//! negotiated [`Cipher`], and for each packet its number and header bytes (the associated
//! data); the largest packet number the peer acknowledged. Outputs: tags and opened
//! payloads, the key phase to send with, and whether a limit is reached.
//!
//! Nonce = 4 zero bytes ‖ the packet number (8 bytes, big-endian): packet numbers are never
//! reused on a connection (spec §3.3) and each direction has its own key, so no nonce
//! repeats under a key. Key update (§11.5; the shape of RFC 9001 §6, simplified to one
//! direction at a time): a sender flips its key phase after `update_after` packets, once
//! the peer has acknowledged one sent under the current key; key `n + 1` is
//! HMAC-SHA-256(key `n`, `"weir key update"`). A receiver keeps the previous, current and
//! next keys: the phase bit and the packet number say which one a packet needs, so it never
//! tries two.

use alloc::boxed::Box;

use bytes::BytesMut;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

use zeroize::Zeroize;

use super::keys::hmac;
use super::stand_in::Primitives;
use crate::wire::{Cipher, DecodeError, EncodeError, Frame, Header, KeyPhase, Packet, PacketWriter, TAG_LEN};

/// Packets one key may seal before it must not be used again: AES-GCM's confidentiality
/// limit (RFC 9001 §6.6: 2^23 packets); ChaCha20-Poly1305's exceeds any packet number.
fn confidentiality_limit(cipher: Cipher) -> u64 {
    match cipher {
        Cipher::Aes256Gcm => 1 << 23,
        Cipher::ChaCha20Poly1305 => u64::MAX,
    }
}

/// Packets that may fail to open over a connection's life before it must close (RFC 9001
/// §6.6: 2^36 for ChaCha20-Poly1305, 2^52 for AES-GCM): an attacker trying forgeries
/// gets no further.
fn integrity_limit(cipher: Cipher) -> u64 {
    match cipher {
        Cipher::Aes256Gcm => 1 << 52,
        Cipher::ChaCha20Poly1305 => 1 << 36,
    }
}

/// A key of one direction and phase: its secret, which the next key derives from, and the
/// AEAD's expanded key, built from the secret when first needed and let go while the
/// connection idles ([`Protection::release`]). The AEAD is ring's (BoringSSL's assembly:
/// AES-NI with carry-less multiplication, AVX2 ChaCha20), several times the speed of the
/// portable Rust implementations on the data path; its AES-256 key schedule and GHASH table
/// take about half a kilobyte, most of an idle connection's keys.
///
/// `expanded` is `None` until built, and again once let go. ring refuses a key for a wrong
/// length alone (both ciphers take the 32 bytes given); if it ever did, the key would stay
/// unbuilt, nothing would seal or open, and the connection would time out rather than the
/// process panic.
struct PacketKey {
    secret: [u8; 32],
    expanded: Option<Box<LessSafeKey>>,
}

impl Drop for PacketKey {
    /// Wipes the secret the next key derives from. (ring's key schedule inside `expanded`
    /// has no such call: it is freed, not wiped.)
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl PacketKey {
    /// The key of `secret`, not yet expanded.
    fn new(secret: [u8; 32]) -> Self {
        PacketKey {
            secret,
            expanded: None,
        }
    }

    /// The key of the next phase (spec §11.5).
    fn next(&self) -> Self {
        PacketKey::new(next_key(self.secret))
    }

    /// The expanded key, built now if it is not (once per build: a forged packet with the
    /// other phase bit costs one key schedule, not one per packet).
    fn expanded(&mut self, cipher: Cipher) -> Option<&LessSafeKey> {
        if self.expanded.is_none() {
            let algorithm = match cipher {
                Cipher::ChaCha20Poly1305 => &CHACHA20_POLY1305,
                Cipher::Aes256Gcm => &AES_256_GCM,
            };
            self.expanded = UnboundKey::new(algorithm, &self.secret)
                .ok()
                .map(|key| Box::new(LessSafeKey::new(key)));
        }
        self.expanded.as_deref()
    }

    /// Lets the expanded key go; the secret stays.
    fn release(&mut self) {
        self.expanded = None;
    }

    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.expanded.is_some()
    }

    fn seal(
        &mut self,
        (cipher, primitives): (Cipher, Primitives),
        number: u64,
        aad: &[u8],
        payload: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        match primitives {
            Primitives::Real => {}
            #[cfg(feature = "fuzzing")]
            Primitives::FuzzingStandIn => {
                return Some(super::stand_in::seal(&self.secret, number, aad, payload))
            }
        }
        let tag = self
            .expanded(cipher)?
            .seal_in_place_separate_tag(nonce(number), Aad::from(aad), payload)
            .ok()?;
        tag.as_ref().try_into().ok()
    }

    fn open(
        &mut self,
        (cipher, primitives): (Cipher, Primitives),
        number: u64,
        aad: &[u8],
        payload: &mut [u8],
        tag: &[u8],
    ) -> bool {
        match primitives {
            Primitives::Real => {}
            #[cfg(feature = "fuzzing")]
            Primitives::FuzzingStandIn => {
                return super::stand_in::open(&self.secret, number, aad, payload, tag)
            }
        }
        let Ok(tag) = Tag::try_from(tag) else {
            return false;
        };
        let Some(key) = self.expanded(cipher) else {
            return false;
        };
        key.open_in_place_separate_tag(nonce(number), Aad::from(aad), tag, payload, 0..)
            .is_ok()
    }
}

/// `send_first` and `recv_first` before any packet: above every packet number (2^62 - 1 at
/// most, spec §3.3).
const NONE: u64 = u64::MAX;

fn nonce(number: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&number.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The packet keys of one connection, both directions (spec §11.3-§11.5). Each connection
/// holds one, boxed, for its whole life: the keys a key update has not reached yet, or has
/// passed, are boxed again, so that an idle connection holds two keys' secrets and its
/// counters (160 bytes).
pub(crate) struct Protection {
    cipher: Cipher,
    /// Real, unless a fuzzing build chose the stand-in (crypto::stand_in).
    primitives: Primitives,
    /// Packets sealed under one key before the sender moves to the next.
    update_after: u64,
    send: PacketKey,
    send_phase: KeyPhase,
    /// The first packet number sealed under the current send key, or [`NONE`].
    send_first: u64,
    sent_in_phase: u64,
    /// The peer acknowledged a packet sealed under the current send key: it has that key
    /// as its current one, so the next update cannot leave it two behind.
    send_confirmed: bool,
    recv_phase: KeyPhase,
    recv: PacketKey,
    /// Derived once a packet with the other phase bit needs it, and let go with the
    /// expanded keys: until the peer updates (after 2^20 packets by default) it would only
    /// take memory.
    recv_next: Option<Box<PacketKey>>,
    recv_previous: Option<Box<PacketKey>>,
    /// The lowest packet number opened under the current receive key, or [`NONE`]: lower
    /// numbers with the other phase bit belong to the previous key, higher ones to the
    /// next.
    recv_first: u64,
    /// Packets that failed to open, over the connection's life.
    pub(crate) failures: u64,
    /// Key updates made, each direction.
    pub(crate) updates_sent: u64,
    pub(crate) updates_received: u64,
}

impl core::fmt::Debug for Protection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Protection")
            .field("cipher", &self.cipher)
            .field("send_phase", &self.send_phase)
            .field("recv_phase", &self.recv_phase)
            .finish_non_exhaustive()
    }
}

impl Protection {
    /// Shows `show` this protection's memory and the keys it seals and opens with, where
    /// expanded (module `connection::prefetch`).
    pub(crate) fn prefetch(&self, show: &mut impl FnMut(*const u8, usize)) {
        show((self as *const Self).cast(), core::mem::size_of_val(self));
        for key in [&self.send, &self.recv] {
            if let Some(k) = key.expanded.as_deref() {
                show((k as *const LessSafeKey).cast(), core::mem::size_of_val(k));
            }
        }
    }

    /// Keys from the handshake's secrets: `send` seals what we send, `recv` opens what the
    /// peer sends.
    pub(crate) fn new(
        (cipher, primitives): (Cipher, Primitives),
        send: [u8; 32],
        recv: [u8; 32],
        update_after: u64,
    ) -> Self {
        Protection {
            cipher,
            primitives,
            update_after: update_after.clamp(1, confidentiality_limit(cipher) / 2),
            send: PacketKey::new(send),
            send_phase: KeyPhase::Zero,
            send_first: NONE,
            sent_in_phase: 0,
            send_confirmed: false,
            recv_phase: KeyPhase::Zero,
            recv: PacketKey::new(recv),
            recv_next: None,
            recv_previous: None,
            recv_first: NONE,
            failures: 0,
            updates_sent: 0,
            updates_received: 0,
        }
    }

    /// The key phase the next packet is sealed under; moves to the next key first if it is
    /// time (spec §11.5).
    pub(crate) fn send_phase(&mut self) -> KeyPhase {
        if self.sent_in_phase >= self.update_after && self.send_confirmed {
            self.send = self.send.next();
            self.send_phase = self.send_phase.flipped();
            self.send_first = NONE;
            self.sent_in_phase = 0;
            self.send_confirmed = false;
            self.updates_sent += 1;
        }
        self.send_phase
    }

    /// Whether the current key has sealed all it may (the peer never acknowledged anything
    /// under it, so no update could happen): the connection must close.
    pub(crate) fn exhausted(&self) -> bool {
        self.sent_in_phase >= confidentiality_limit(self.cipher)
            || self.failures >= integrity_limit(self.cipher)
    }

    /// Seals packet `number` (whose header, `aad`, carries [`send_phase`](Self::send_phase)):
    /// encrypts `payload` in place and returns the tag.
    pub(crate) fn seal(&mut self, number: u64, aad: &[u8], payload: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let tag = self
            .send
            .seal((self.cipher, self.primitives), number, aad, payload)?;
        self.send_first = self.send_first.min(number);
        self.sent_in_phase += 1;
        Some(tag)
    }

    /// The peer acknowledged packets up to `largest`.
    pub(crate) fn on_acked(&mut self, largest: u64) {
        if self.send_first != NONE && largest >= self.send_first {
            self.send_confirmed = true;
        }
    }

    /// Opens packet `number` sealed under `phase`: decrypts `payload` in place if `tag`
    /// verifies, moving to the next receive key if the packet is the peer's first under it.
    pub(crate) fn open(
        &mut self,
        number: u64,
        phase: KeyPhase,
        aad: &[u8],
        payload: &mut [u8],
        tag: &[u8],
    ) -> bool {
        let cipher = (self.cipher, self.primitives);
        let opened = if phase == self.recv_phase {
            let ok = self.recv.open(cipher, number, aad, payload, tag);
            if ok {
                self.recv_first = self.recv_first.min(number);
            }
            ok
        } else if self.recv_first != NONE && number < self.recv_first {
            // Sealed before the peer's last update, delivered late.
            self.recv_previous
                .as_mut()
                .is_some_and(|k| k.open(cipher, number, aad, payload, tag))
        } else {
            let recv = &self.recv;
            let next = self.recv_next.get_or_insert_with(|| Box::new(recv.next()));
            let ok = next.open(cipher, number, aad, payload, tag);
            if let (true, Some(next)) = (ok, self.recv_next.take()) {
                // Only the peer, holding the next key, could have sealed this: it updated.
                let current = core::mem::replace(&mut self.recv, *next);
                self.recv_previous = Some(Box::new(current));
                self.recv_phase = phase;
                self.recv_first = number;
                self.updates_received += 1;
            }
            ok
        };
        if !opened {
            self.failures += 1;
        }
        opened
    }

    /// Lets every expanded key go (the secrets stay), and the next receive key, which is
    /// derived again when needed: while the connection idles, about a kilobyte of
    /// AES-256-GCM key schedules and GHASH tables it would not use. The next packet sealed
    /// or opened builds its key again (well under a microsecond).
    pub(crate) fn release(&mut self) {
        self.send.release();
        self.recv.release();
        self.recv_next = None;
        if let Some(k) = self.recv_previous.as_mut() {
            k.release();
        }
    }

    /// Whether any key is expanded: what [`release`](Self::release) would let go.
    #[cfg(test)]
    fn holds_expanded_keys(&self) -> bool {
        self.send.is_built()
            || self.recv.is_built()
            || self.recv_next.is_some()
            || self.recv_previous.as_deref().is_some_and(PacketKey::is_built)
    }
}

/// Seals one data packet of `header` (version 2) carrying `frames` into `buf` under `key`,
/// one direction's key of one phase (spec §11.4); returns its length. For test vectors and
/// tools: connections pick their keys themselves.
pub fn seal_with_key(
    cipher: Cipher,
    key: [u8; 32],
    header: &Header,
    frames: &[Frame],
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut key = PacketKey::new(key);
    let mut w = PacketWriter::new(buf, header)?;
    for frame in frames {
        w.push(frame)?;
    }
    w.finish_sealed(|aad, payload| key.seal((cipher, Primitives::Real), header.number, aad, payload))
}

/// Opens a sealed packet under `key` (spec §11.4), expanding its packet number against
/// `largest_pn` as [`Packet::decode`] does. For test vectors and tools.
pub fn open_with_key(
    cipher: Cipher,
    key: [u8; 32],
    datagram: BytesMut,
    largest_pn: Option<u64>,
) -> Result<Packet, DecodeError> {
    let mut key = PacketKey::new(key);
    Packet::open(datagram, largest_pn, |header, aad, payload, tag| {
        key.open((cipher, Primitives::Real), header.number, aad, payload, tag)
    })
}

/// Seals a version 2 data packet in place under `key`, whatever its frames region holds:
/// the header is read (its packet number expanded against `largest_pn`), the bytes between
/// it and the last 16 are encrypted, and the last 16 become the tag. The sealed analogue of
/// [`wire::reseal`](crate::wire::reseal), for fuzzers and tools that build packets byte by
/// byte; `false` (nothing changed) if `datagram` is not a version 2 data packet long enough
/// to seal.
pub fn reseal_with_key(cipher: Cipher, key: [u8; 32], datagram: &mut [u8], largest_pn: Option<u64>) -> bool {
    let Ok((header, header_len, _)) = crate::wire::read_header(datagram, largest_pn) else {
        return false;
    };
    if !header.is_sealed() {
        return false;
    }
    let content_len = datagram.len() - TAG_LEN;
    let mut key = PacketKey::new(key);
    let (content, tag) = datagram.split_at_mut(content_len);
    let (aad, payload) = content.split_at_mut(header_len);
    match key.seal((cipher, Primitives::Real), header.number, aad, payload) {
        Some(t) => {
            tag.copy_from_slice(&t);
            true
        }
        None => false,
    }
}

/// The key that follows `key` at a key update (spec §11.5).
pub fn next_key(key: [u8; 32]) -> [u8; 32] {
    hmac(&key, UPDATE_LABEL)
}

const UPDATE_LABEL: &[u8] = b"weir key update";

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cipher: Cipher, update_after: u64) -> (Protection, Protection) {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        (
            Protection::new((cipher, Primitives::Real), a, b, update_after),
            Protection::new((cipher, Primitives::Real), b, a, update_after),
        )
    }

    /// Seals `pn` from `tx`, returning (phase, header, sealed payload, tag).
    fn sealed(
        tx: &mut Protection,
        pn: u64,
        text: &[u8],
    ) -> (KeyPhase, [u8; 4], alloc::vec::Vec<u8>, [u8; 16]) {
        let phase = tx.send_phase();
        let header = [pn as u8, 0, 0, phase as u8];
        let mut payload = text.to_vec();
        let tag = tx.seal(pn, &header, &mut payload).unwrap();
        (phase, header, payload, tag)
    }

    #[test]
    fn sealed_packets_open_and_tampering_anywhere_fails() {
        for cipher in Cipher::ALL {
            let (mut a, mut b) = pair(cipher, 1 << 20);
            let (phase, header, payload, tag) = sealed(&mut a, 0, b"hello");
            assert_ne!(&payload[..], b"hello");
            let mut p = payload.clone();
            assert!(b.open(0, phase, &header, &mut p, &tag));
            assert_eq!(&p[..], b"hello");
            // A flipped bit in the header, the payload or the tag; another packet number.
            let mut bad_header = header;
            bad_header[1] ^= 1;
            let mut p = payload.clone();
            assert!(!b.open(0, phase, &bad_header, &mut p, &tag));
            let mut p = payload.clone();
            p[2] ^= 0x40;
            assert!(!b.open(0, phase, &header, &mut p, &tag));
            let mut bad_tag = tag;
            bad_tag[15] ^= 1;
            let mut p = payload.clone();
            assert!(!b.open(0, phase, &header, &mut p, &bad_tag));
            let mut p = payload.clone();
            assert!(!b.open(1, phase, &header, &mut p, &tag));
            assert_eq!(b.failures, 4);
            // The same key does not open what it sealed: each direction has its own.
            let mut p = payload.clone();
            assert!(!a.open(0, phase, &header, &mut p, &tag));
        }
    }

    #[test]
    fn keys_update_only_after_an_acknowledgement_and_late_packets_still_open() {
        let (mut a, mut b) = pair(Cipher::ChaCha20Poly1305, 3);
        let mut held = alloc::vec::Vec::new();
        for pn in 0..5 {
            held.push((pn, sealed(&mut a, pn, b"x")));
        }
        // Five packets under phase 0: no acknowledgement, no update.
        assert!(held.iter().all(|(_, (phase, ..))| *phase == KeyPhase::Zero));
        a.on_acked(4);
        let (pn5, late5) = (5, sealed(&mut a, 5, b"y"));
        assert_eq!(late5.0, KeyPhase::One);
        assert_eq!(a.updates_sent, 1);
        // The receiver sees packets 0 and 1, then 5 (new phase), then 2..4 late.
        for (pn, (phase, header, mut payload, tag)) in held.drain(..2) {
            assert!(b.open(pn, phase, &header, &mut payload, &tag));
        }
        let (phase, header, mut payload, tag) = late5;
        assert!(b.open(pn5, phase, &header, &mut payload, &tag));
        assert_eq!(&payload[..], b"y");
        assert_eq!(b.updates_received, 1);
        for (pn, (phase, header, mut payload, tag)) in held {
            assert!(b.open(pn, phase, &header, &mut payload, &tag), "late packet {pn}");
        }
        // No second update until something sealed under phase 1 is acknowledged.
        for pn in 6..12 {
            assert_eq!(sealed(&mut a, pn, b"z").0, KeyPhase::One);
        }
        a.on_acked(5);
        assert_eq!(sealed(&mut a, 12, b"z").0, KeyPhase::Zero);
        assert_eq!(b.failures, 0);
    }

    #[test]
    fn keys_are_expanded_when_used_and_let_go_on_release() {
        for cipher in Cipher::ALL {
            let (mut a, mut b) = pair(cipher, 1 << 20);
            assert!(!a.holds_expanded_keys() && !b.holds_expanded_keys());
            let (phase, header, mut payload, tag) = sealed(&mut a, 0, b"first");
            assert!(b.open(0, phase, &header, &mut payload, &tag));
            a.release();
            b.release();
            assert!(!a.holds_expanded_keys() && !b.holds_expanded_keys());
            // Released keys seal and open as before, expanded again.
            let (phase, header, mut payload, tag) = sealed(&mut a, 1, b"second");
            assert!(b.open(1, phase, &header, &mut payload, &tag));
            assert_eq!(&payload[..], b"second");
            assert!(a.holds_expanded_keys() && b.holds_expanded_keys());
        }
    }

    #[test]
    fn an_aes_key_never_seals_past_its_confidentiality_limit() {
        let (a, _) = pair(Cipher::Aes256Gcm, u64::MAX);
        assert_eq!(a.update_after, 1 << 22);
        let (mut a, _) = pair(Cipher::Aes256Gcm, 1);
        a.sent_in_phase = 1 << 23;
        assert!(a.exhausted());
    }
}
