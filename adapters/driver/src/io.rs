//! Batched datagram IO, for any runtime: [`Outbox`] gathers what the core sends into
//! batches that one system call sends (UDP generic segmentation offload, GSO), and
//! [`Inbox`] receives into large blocks that stay shared by the datagrams cut from them,
//! so a received byte is copied on its way to the application at most once, within its
//! block: the second datagram of a two-room receive, moved up against the first so that it
//! does not pin the room's unfilled rest ([`Inbox::take_rooms`]).
//!
//! Inputs: the [`Driver`]'s datagrams (`poll_transmit`), and what the socket received
//! (a buffer of one or more datagrams of one size, `stride`, as generic receive offload,
//! GRO, delivers them). Outputs: [`Batch`]es to send, and datagrams for
//! [`Driver::handle_received`].

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::BytesMut;
use weir_core::wire::{MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE};

use crate::Driver;

/// The most bytes one batch carries: a GSO send is one UDP datagram to the kernel until it
/// cuts it, so it is bounded by the largest UDP payload (65,507 bytes over IPv4).
pub const MAX_BATCH_BYTES: usize = 65_000;

/// Datagrams to one destination, ready for one send: `contents` is `segment_size`-byte
/// datagrams back to back, the last one possibly shorter (what GSO expects).
#[derive(Debug)]
pub struct Batch<'a> {
    /// Where every datagram of the batch goes.
    pub destination: SocketAddr,
    /// The datagrams, back to back.
    pub contents: &'a [u8],
    /// The length of each datagram but the last; equal to `contents.len()` for one.
    pub segment_size: usize,
}

impl Batch<'_> {
    /// How many datagrams the batch holds.
    pub fn datagrams(&self) -> usize {
        self.contents.len().div_ceil(self.segment_size.max(1))
    }

    /// Sends the batch on `socket`, whose quinn-udp state is `state`: a run of datagrams
    /// as one GSO `sendmsg` (quinn-udp's), a lone datagram with a plain `sendto`.
    /// quinn-udp's `sendmsg` always carries a control message (the IP_TOS byte for ECN,
    /// which weir does not set), which the kernel reads and parses for every datagram; a
    /// round trip of two lone datagrams is most of what a request and its reply cost, and
    /// that parse was part of what the kernel spent beyond raw UDP's (adapters/bench/
    /// README.md, issue 35's twenty-fourth and twenty-eighth rounds).
    ///
    /// Fails only when the socket's buffer is full (`WouldBlock`): as quinn-udp does for
    /// its sends, any other failure (an unreachable network, say) loses these datagrams
    /// only, and recovery resends what mattered; it is logged at debug level.
    pub fn send(
        &self,
        state: &quinn_udp::UdpSocketState,
        socket: socket2::SockRef<'_>,
    ) -> std::io::Result<()> {
        if self.datagrams() > 1 {
            return state.send((&*socket).into(), &self.transmit());
        }
        let to = socket2::SockAddr::from(self.destination);
        loop {
            return match socket.send_to(self.contents, &to) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, to = %self.destination, "a datagram not sent");
                    Ok(())
                }
                Ok(_) => Ok(()),
            };
        }
    }

    /// The batch as `quinn-udp` sends it: one GSO send, or a plain one for one datagram.
    pub fn transmit(&self) -> quinn_udp::Transmit<'_> {
        quinn_udp::Transmit {
            destination: self.destination,
            ecn: None,
            contents: self.contents,
            segment_size: (self.datagrams() > 1).then_some(self.segment_size),
            src_ip: None,
        }
    }
}

/// The transmit side: gathers the core's datagrams into [`Batch`]es.
///
/// After the first datagram, the core is offered room for one more of the same size only,
/// so a batch's datagrams are never longer than its first. A batch ends at a datagram for
/// another destination (which then starts the next batch: its bytes are moved to the front
/// of the buffer, the one copy of sent bytes this type makes, only at such a boundary), at
/// a shorter one (the batch's last), at `max_segments`, or at [`MAX_BATCH_BYTES`].
/// Datagrams under 1,200 bytes (acknowledgements, mostly) go alone: the core is never
/// offered less room than a minimum-size packet.
pub struct Outbox {
    buf: Vec<u8>,
    /// A datagram polled for a batch it could not join: destination, length, offset.
    carried: Option<(SocketAddr, usize, usize)>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

impl Outbox {
    /// An outbox with room for one batch (about 130 KiB, allocated once).
    pub fn new() -> Outbox {
        Outbox {
            buf: vec![0; MAX_BATCH_BYTES + MAX_DATAGRAM_SIZE],
            carried: None,
        }
    }

    /// The next batch of at most `max_segments` datagrams (1: no GSO), or `None` when the
    /// driver has nothing to send now.
    pub fn next(&mut self, driver: &mut Driver, max_segments: usize) -> Option<Batch<'_>> {
        // The clock is read for the batch's first poll only (`Driver::poll_transmit_next`).
        let (destination, mut segment, mut len, mut count, mut clock_read) = match self.carried.take() {
            Some((to, l, at)) => {
                self.buf.copy_within(at..at + l, 0);
                (to, l, l, 1, false)
            }
            None => {
                let t = driver.poll_transmit(&mut self.buf[..MAX_DATAGRAM_SIZE])?;
                (t.destination, t.len, t.len, 1, true)
            }
        };
        while count < max_segments.max(1) && segment >= MIN_DATAGRAM_SIZE && len + segment <= MAX_BATCH_BYTES
        {
            let room = &mut self.buf[len..len + segment];
            let t = if clock_read {
                driver.poll_transmit_next(room)
            } else {
                driver.poll_transmit(room)
            };
            clock_read = true;
            let Some(t) = t else {
                break;
            };
            if t.destination != destination {
                self.carried = Some((t.destination, t.len, len));
                break;
            }
            len += t.len;
            count += 1;
            if t.len < segment {
                break;
            }
        }
        if count == 1 {
            segment = len;
        }
        Some(Batch {
            destination,
            contents: &self.buf[..len],
            segment_size: segment,
        })
    }
}

/// The receive side: blocks of [`Inbox::BLOCK`] bytes, each filled by many receives and
/// cut into the datagrams they brought.
///
/// The datagrams of a block share its allocation, so a stream chunk the application keeps
/// keeps its whole block alive (at most [`Inbox::BLOCK`] bytes per chunk held; reading
/// promptly frees blocks as fast as they fill). A block none of whose datagrams is held
/// any more is received into again from its start, whether it is the one being filled or
/// one waiting in the pool of [`Inbox::POOL`] filled blocks: a receiver that keeps up
/// allocates (and faults in fresh pages) only for its first few blocks, and one that drops
/// each datagram before the next comes (a round trip's) touches only a block's first
/// pages. The first block comes with a spare, allocated with it and left untouched, so
/// that moving to a second block costs no allocation in the middle of traffic.
pub struct Inbox {
    /// The block being filled. Empty (its length 0) but during a receive: its spare room is
    /// where receives write, from [`room`](Self::room) or [`rooms`](Self::rooms) until
    /// [`take`](Self::take) or [`take_rooms`](Self::take_rooms).
    block: BytesMut,
    /// Filled blocks, oldest first, each held by an empty handle until it is taken back.
    filled: VecDeque<BytesMut>,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox::new()
    }
}

impl Inbox {
    /// Bytes per block.
    pub const BLOCK: usize = 256 << 10;
    /// The room offered to each receive: the largest batch GRO delivers at once.
    pub const ROOM: usize = 64 << 10;
    /// Filled blocks kept to be filled again (at most `POOL * BLOCK` bytes idle, 1 MiB).
    pub const POOL: usize = 4;
    /// Rooms [`rooms`](Self::rooms) offers one receive.
    pub const SLOTS: usize = 2;

    /// An inbox; its first block is allocated on first use.
    pub fn new() -> Inbox {
        Inbox {
            block: BytesMut::new(),
            filled: VecDeque::new(),
        }
    }

    /// Where the next receive writes: [`Inbox::ROOM`] bytes (another block when the current
    /// one has less left).
    pub fn room(&mut self) -> &mut [u8] {
        self.make_room(Self::ROOM);
        &mut self.block[..Self::ROOM]
    }

    /// Where the next receive of up to [`Inbox::SLOTS`] datagrams (or GRO batches) writes:
    /// that many rooms of [`Inbox::ROOM`] bytes, back to back. Where a receive takes every
    /// datagram waiting up to the rooms offered (`recvmmsg`), one that fills fewer has
    /// emptied the socket: an edge-triggered runtime may then clear the socket's readiness
    /// without one more receive to see it would block (a system call per wake-up, a tenth
    /// of a round trip's).
    pub fn rooms(&mut self) -> [&mut [u8]; Self::SLOTS] {
        self.make_room(Self::SLOTS * Self::ROOM);
        let (first, rest) = self.block.split_at_mut(Self::ROOM);
        [first, &mut rest[..Self::ROOM]]
    }

    /// After a receive into [`rooms`](Self::rooms) that filled one room per item of `lens`,
    /// that many bytes of each, in order: each room's datagrams cut off the block. Take them
    /// all: a room left untaken is the next receive's.
    ///
    /// A room's bytes no longer than the gap the room before left unfilled are moved up
    /// into it (one copy of them, within the block), so that a held datagram pins its own
    /// bytes and not a room's: two single datagrams in one receive (a path without GRO)
    /// would otherwise take 64 KiB of the block for the first. Longer ones (a GRO batch after
    /// a small datagram's room, at most 64 KiB) stay where they are, uncopied, and the gap
    /// before them is skipped: no larger than they are.
    pub fn take_rooms<'a>(
        &'a mut self,
        lens: impl IntoIterator<Item = usize> + 'a,
    ) -> impl Iterator<Item = BytesMut> + 'a {
        let mut taken: [Option<BytesMut>; Self::SLOTS] = Default::default();
        // How far the block's front has moved since the receive, as offsets into its rooms.
        let mut front = 0;
        for (i, len) in lens.into_iter().take(Self::SLOTS).enumerate() {
            let len = len.min(Self::ROOM);
            // Where this room's bytes are, from the front.
            let at = (i * Self::ROOM).saturating_sub(front).min(self.block.len());
            if at > 0 && len <= at && at + len <= self.block.len() {
                self.block.copy_within(at..at + len, 0);
            } else {
                bytes::Buf::advance(&mut self.block, at);
                front += at;
            }
            taken[i] = Some(self.take(len));
            front += len;
        }
        taken.into_iter().flatten()
    }

    /// Opens `need` bytes (at most [`Inbox::BLOCK`]) of room in the current block for a
    /// receive: from the block's start again if none of its datagrams is still held, else
    /// after the last one cut; another block if the current one has less left.
    fn make_room(&mut self, need: usize) {
        // What the last receive left unfilled is room again. With nothing in it, taking
        // back the whole block copies nothing, and succeeds only if no datagram cut from
        // it is still held (or it was never cut).
        self.block.clear();
        if !self.block.try_reclaim(Self::BLOCK) && self.block.capacity() < need {
            let old = std::mem::take(&mut self.block);
            let old_capacity = old.capacity();
            // (Not the empty handle before the first block, nor the rare block cut to its
            // last byte, whose handle no longer reaches it: freed with its datagrams.)
            if old_capacity > 0 {
                self.filled.push_back(old);
            }
            // The oldest block none of whose datagrams is still held is taken back.
            let free = self.filled.iter_mut().position(|b| b.try_reclaim(Self::BLOCK));
            self.block = match free.and_then(|i| self.filled.remove(i)) {
                Some(block) => block,
                None => {
                    // The first block comes with a spare, kept in the pool untouched: a
                    // receiver that holds each datagram until the next comes (an echoing
                    // server's) moves to a second block after some hundreds of receives,
                    // and that allocation (an `mmap`, 15 µs and more here) was then one
                    // of the slowest round trips of the run.
                    if old_capacity == 0 && self.filled.is_empty() {
                        self.filled.push_back(fresh_block());
                    }
                    fresh_block()
                }
            };
            if self.filled.len() > Self::POOL {
                // Its datagrams keep it alive as long as they need it, no longer.
                self.filled.pop_front();
            }
        }
        open(&mut self.block, need);
    }

    /// The first `len` bytes of [`room`](Self::room), which the receive filled, cut off the
    /// block (no copy).
    pub fn take(&mut self, len: usize) -> BytesMut {
        self.block.split_to(len.min(Self::ROOM).min(self.block.len()))
    }
}

/// A new block, empty: zeroed by the allocator, not written. Fresh pages come zeroed from
/// the kernel, so a new block is faulted in page by page as receives fill it, not all at
/// once (256 KiB of page faults, a 140 µs stall in the middle of traffic), and the pages
/// past what the receives reach are never touched at all.
fn fresh_block() -> BytesMut {
    let mut block = BytesMut::zeroed(Inbox::BLOCK);
    block.clear();
    block
}

/// `block`'s first `need` bytes (an empty block's spare room, `need` at most its capacity)
/// as its contents, to receive into, as they are: what an earlier filling left, or the
/// allocator's zeros.
///
/// Written over with zeros instead (`resize`, all safe `BytesMut` offers), every reuse of a
/// block cost a 256 KiB `memset` (about 2% of a 1 MiB request's CPU time) and faulted in
/// the pages past what the receives reach, which a fresh block never touches: a third of a
/// MiB of weir's peak RSS over 10,000 round trips (adapters/bench/rounds.md, issue 35's
/// tenth round). Nothing reads those stale bytes: a receive overwrites the rooms it fills,
/// and only the lengths it reports are cut off the block ([`Inbox::take`]).
fn open(block: &mut BytesMut, need: usize) {
    if block.capacity() < need {
        // Never so after `Inbox::make_room`; `set_len` needs it.
        block.resize(need, 0);
        return;
    }
    // SAFETY: `set_len` needs the capacity (checked above) and every byte up to the new
    // length initialized. Every block the inbox holds comes from
    // `BytesMut::zeroed(Inbox::BLOCK)`, so its whole allocation was initialized, and a
    // handle's room never reaches past its allocation. Since then only receives (the
    // kernel) and safe code wrote into it, and neither de-initializes a byte.
    #[allow(unsafe_code)]
    unsafe {
        block.set_len(need)
    };
}

/// Cuts `received` (datagrams of `stride` bytes back to back, the last possibly shorter)
/// into its datagrams, without copying.
pub(crate) fn datagrams(mut received: BytesMut, stride: usize) -> impl Iterator<Item = BytesMut> {
    let stride = if stride == 0 { received.len() } else { stride };
    std::iter::from_fn(move || {
        if received.is_empty() {
            return None;
        }
        if received.len() <= stride {
            // The last (or only) one is the handle itself: a split would change the block's
            // reference count twice for nothing.
            return Some(std::mem::take(&mut received));
        }
        Some(received.split_to(stride))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lone datagram (a plain `sendto`) and a run of them (quinn-udp's GSO `sendmsg`, or
    /// its fallback where the kernel has none) arrive as sent; a lone one the socket cannot
    /// send (an IPv6 destination from an IPv4 socket) is dropped, not an error.
    #[test]
    fn a_batch_is_sent_lone_or_as_a_run_and_an_unsendable_one_is_dropped() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.set_nonblocking(true).unwrap();
        let state = quinn_udp::UdpSocketState::new((&sender).into()).unwrap();
        let destination = receiver.local_addr().unwrap();
        let lone = Batch {
            destination,
            contents: b"lone",
            segment_size: 4,
        };
        lone.send(&state, (&sender).into()).unwrap();
        let run = Batch {
            destination,
            contents: b"aaaabbbbcc",
            segment_size: 4,
        };
        run.send(&state, (&sender).into()).unwrap();
        let mut buf = [0u8; 64];
        let got: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                let n = receiver.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect();
        assert_eq!(got, [&b"lone"[..], b"aaaa", b"bbbb", b"cc"]);
        let unsendable = Batch {
            destination: "[::1]:9".parse().unwrap(),
            contents: b"nowhere",
            segment_size: 7,
        };
        assert!(unsendable.send(&state, (&sender).into()).is_ok());
    }

    #[test]
    fn a_gro_buffer_is_cut_at_its_stride_without_copying() {
        let mut b = BytesMut::zeroed(10);
        b.copy_from_slice(b"aaaabbbbcc");
        let start = b.as_ptr();
        let parts: Vec<BytesMut> = datagrams(b, 4).collect();
        assert_eq!(
            parts.iter().map(|p| &p[..]).collect::<Vec<_>>(),
            [&b"aaaa"[..], b"bbbb", b"cc"]
        );
        // Each datagram is a view of the one allocation.
        assert_eq!(parts[1].as_ptr(), start.wrapping_add(4));
        // A stride of 0 (no GRO information) is one datagram.
        assert_eq!(datagrams(BytesMut::from(&b"xyz"[..]), 0).count(), 1);
    }

    /// A receive: `len` bytes of `byte` into the next room, cut off.
    fn receive(inbox: &mut Inbox, byte: u8, len: usize) -> BytesMut {
        inbox.room()[..len].fill(byte);
        inbox.take(len)
    }

    #[test]
    fn the_inbox_cuts_receives_from_one_block_until_it_runs_low() {
        let mut inbox = Inbox::new();
        let first = receive(&mut inbox, b'1', 3);
        let second = receive(&mut inbox, b'2', 3);
        assert_eq!((&first[..], &second[..]), (&b"111"[..], &b"222"[..]));
        assert_eq!(second.as_ptr(), first.as_ptr().wrapping_add(3), "same block");
        // Fill the block to under one room's worth: the next receive gets a new block.
        let full: Vec<BytesMut> = (0..3).map(|_| receive(&mut inbox, 0, Inbox::ROOM)).collect();
        assert!(inbox.block.capacity() < Inbox::ROOM);
        let _ = inbox.room();
        assert_eq!(inbox.block.capacity(), Inbox::BLOCK);
        assert_eq!(full[2].len(), Inbox::ROOM);
        assert_ne!(
            inbox.block.as_ptr(),
            first.as_ptr(),
            "the first block is still held"
        );
    }

    #[test]
    fn two_rooms_are_cut_into_their_datagrams() {
        let mut inbox = Inbox::new();
        let [first, second] = inbox.rooms();
        assert_eq!((first.len(), second.len()), (Inbox::ROOM, Inbox::ROOM));
        first[..3].copy_from_slice(b"one");
        second[..5].copy_from_slice(b"three");
        let start = first.as_ptr();
        let got: Vec<BytesMut> = inbox.take_rooms([3, 5]).collect();
        assert_eq!((&got[0][..], &got[1][..]), (&b"one"[..], &b"three"[..]));
        // The next receive starts right after the second datagram (both still held).
        assert_eq!(inbox.room().as_ptr(), start.wrapping_add(3 + 5));
        // A receive that filled one room takes only its bytes.
        inbox.rooms()[0][..2].copy_from_slice(b"hi");
        let one: Vec<BytesMut> = inbox.take_rooms([2]).collect();
        assert_eq!(one.len(), 1);
        assert_eq!(&one[0][..], b"hi");
        assert_eq!(inbox.room().as_ptr(), start.wrapping_add(10));
        drop((got, one));
    }

    /// Two datagrams of one receive, both held, take their own bytes of the block and no
    /// more: the second, no longer than what the first left of its room, is moved up against
    /// the first (one copy of its bytes). Skipping that gap instead, a receiver that held
    /// what two-datagram receives brought pinned 64 KiB for each: weir-bench's
    /// `messages-far` (1 KiB messages through a proxy, up to 1,024 in flight) peaked at
    /// 25.1 MiB of anonymous memory, 4.0 MiB with the move (4 alternated runs). A batch
    /// longer than the gap (GRO's, up to 64 KiB) is left where it is.
    #[test]
    fn a_second_datagram_is_moved_up_against_the_first_and_a_larger_batch_is_not() {
        let mut inbox = Inbox::new();
        let mut held = Vec::new();
        let [first, second] = inbox.rooms();
        first[..3].copy_from_slice(b"one");
        second[..5].copy_from_slice(b"three");
        let start = first.as_ptr();
        held.extend(inbox.take_rooms([3, 5]));
        assert_eq!((&held[0][..], &held[1][..]), (&b"one"[..], &b"three"[..]));
        assert_eq!(held[1].as_ptr(), start.wrapping_add(3));
        assert_eq!(inbox.room().as_ptr(), start.wrapping_add(8));
        // A first room all but full, and a batch in the second longer than the gap.
        let [first, second] = inbox.rooms();
        let at = first.as_ptr();
        first[Inbox::ROOM - 10..].fill(1);
        second[..100].fill(2);
        held.extend(inbox.take_rooms([Inbox::ROOM - 10, 100]));
        assert_eq!(held[3].as_ptr(), at.wrapping_add(Inbox::ROOM));
        assert!(held[3].iter().all(|&b| b == 2));
    }

    #[test]
    fn two_rooms_take_a_new_block_when_the_current_one_holds_fewer() {
        let mut inbox = Inbox::new();
        // Three rooms taken and held: one room's worth left, not two.
        let held: Vec<BytesMut> = (0..3).map(|_| receive(&mut inbox, 0, Inbox::ROOM)).collect();
        let [first, _] = inbox.rooms();
        assert_ne!(first.as_ptr(), held[2].as_ptr().wrapping_add(Inbox::ROOM));
        assert_eq!(inbox.block.capacity(), Inbox::BLOCK);
    }

    /// The first block comes with a spare: a receiver that fills its first block while
    /// holding a datagram of it moves to the spare, not to a new allocation.
    #[test]
    fn the_first_block_comes_with_a_spare() {
        let mut inbox = Inbox::new();
        let _ = inbox.room();
        assert_eq!(inbox.filled.len(), 1, "a spare in the pool");
        let spare = inbox.filled[0].as_ptr();
        // Three rooms and a bit, held: the first block's last bytes are too few for a fourth.
        let mut held: Vec<BytesMut> = (0..3).map(|_| receive(&mut inbox, 0, Inbox::ROOM)).collect();
        held.push(receive(&mut inbox, 0, 100));
        assert_eq!(inbox.room().as_ptr(), spare);
        drop(held);
    }

    /// Round trips: each datagram dropped before the next comes. Every receive writes at
    /// the block's start, so only its first pages are ever touched; one still held moves
    /// the next receive past it.
    #[test]
    fn a_receive_after_every_datagram_of_its_block_is_gone_writes_at_the_block_s_start() {
        let mut inbox = Inbox::new();
        let start = inbox.room().as_ptr();
        for i in 0..1_000u32 {
            let d = receive(&mut inbox, i as u8, 100);
            assert_eq!(d.as_ptr(), start, "receive {i}");
        }
        let held = receive(&mut inbox, 1, 100);
        assert_eq!(inbox.room().as_ptr(), start.wrapping_add(100));
        drop(held);
        assert_eq!(inbox.room().as_ptr(), start);
    }

    #[test]
    fn a_block_whose_datagrams_are_gone_is_used_again() {
        let mut inbox = Inbox::new();
        // A receive that writes nothing but what is already there.
        let untouched = |inbox: &mut Inbox, len| {
            let _ = inbox.room();
            inbox.take(len)
        };
        let start = inbox.room().as_ptr();
        inbox.room()[..3].copy_from_slice(b"old");
        // Three rooms and a bit: the block's last bytes are too few for a fourth.
        let mut taken: Vec<BytesMut> = (0..3).map(|_| untouched(&mut inbox, Inbox::ROOM)).collect();
        taken.push(untouched(&mut inbox, 100));
        let held = taken.pop();
        drop(taken);
        // One datagram still held: the block stays with it, a new one is allocated.
        let second = inbox.room().as_ptr();
        assert_ne!(second, start);
        let mut more: Vec<BytesMut> = (0..3).map(|_| untouched(&mut inbox, Inbox::ROOM)).collect();
        more.push(untouched(&mut inbox, 100));
        drop(held);
        // The second block is full and held; the first is free again: filled once more,
        // not allocated, and not written over first (its pages past what receives reach
        // stay untouched).
        assert_eq!(inbox.room().as_ptr(), start);
        assert_eq!(inbox.block.capacity(), Inbox::BLOCK);
        assert_eq!(&inbox.room()[..3], b"old");
        drop(more);
    }
}
