//! A new receive block is zeroed by the allocator, not written: fresh pages come zeroed from
//! the kernel and are faulted in only as receives fill them, where writing the block's
//! 256 KiB at once stalled a round trip in the middle of traffic (adapters/bench/rounds.md,
//! "Issue 35, eighth round"). A block taken back from the pool is not written either: it is
//! received into as it is (`io::open`, since the tenth round).
//!
//! Counted by a global allocator that tells zeroed allocations of a block's size from
//! others, so this test file holds this one test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use weir_driver::Inbox;

struct Counting;

static ZEROED: AtomicUsize = AtomicUsize::new(0);
static PLAIN: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= Inbox::BLOCK {
            PLAIN.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's promises about `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= Inbox::BLOCK {
            ZEROED.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_new_receive_block_is_zeroed_by_the_allocator_not_written() {
    let mut inbox = Inbox::new();
    let mut held = Vec::new();
    // Enough full rooms to use up several blocks, each datagram kept so that no block can
    // be taken back: every block is a new one.
    for _ in 0..8 {
        let [first, _] = inbox.rooms();
        first.fill(1);
        held.extend(inbox.take_rooms([Inbox::ROOM]));
    }
    let zeroed = ZEROED.load(Ordering::Relaxed);
    assert!(zeroed >= 2, "{zeroed} blocks");
    assert_eq!(
        PLAIN.load(Ordering::Relaxed),
        0,
        "a block allocated to be written"
    );
    assert!(held
        .iter()
        .all(|d| d.len() == Inbox::ROOM && d.iter().all(|&b| b == 1)));
}
