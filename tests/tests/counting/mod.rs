//! A counting global allocator for the tests that bound memory or allocations: it counts,
//! per thread, the heap bytes live and the allocations made, and passes every call to the
//! system allocator. The suites' binary declares it (`suites.rs`), so every suite allocates
//! through it; the simulator and the in-memory pairs run on the test's own thread, so what a
//! test counts is its own, whatever runs beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Bytes this thread allocated and has not freed (frees of another thread's blocks
    /// count here too).
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Allocations (and reallocations) this thread made.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// The most bytes `LIVE` has counted since `reset_peak`.
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    // `try_with`: the allocator runs during thread teardown too, after the slot is gone.
    let _ = LIVE.try_with(|l| {
        let live = l.get() + delta;
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts. The counters are
// const-initialised thread-local `Cell`s, which neither allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        count_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count(new as i64 - layout.size() as i64);
        count_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes this thread holds (net of what it freed).
pub fn live() -> i64 {
    LIVE.with(Cell::get)
}

/// Starts a new peak at what this thread holds now.
pub fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

/// The most heap bytes this thread held at once since [`reset_peak`].
pub fn peak() -> i64 {
    PEAK.with(Cell::get)
}

/// Allocations this thread made so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}
