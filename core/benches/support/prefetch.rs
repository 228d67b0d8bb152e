//! The prefetch hook weir-driver gives the endpoints of weir-tokio and weir-std
//! (`Config::prefetch`), for the benchmarks and examples here, which run as those hosts
//! would: with it, unless `WEIR_PREFETCH` says otherwise:
//!
//! - `off`: no hook, to compare the two in one build;
//! - `read`: a hook that reads one byte of every 64-byte line it is shown, for valgrind,
//!   which does not simulate a prefetch: under callgrind's cache simulation the misses a
//!   prefetch would take early are then counted in the hook, and those left in the rest of
//!   the code are the ones no prefetch covers (the `scale_count` example's doc). Reading
//!   waits for each miss, so it is slower than prefetching on a real CPU: not for timing.

#[path = "../../../adapters/driver/src/prefetch.rs"]
mod driver;

/// The hook to configure: weir-driver's, none, or the reading one (module doc).
pub fn hook() -> Option<fn(*const u8, usize)> {
    match std::env::var("WEIR_PREFETCH").as_deref() {
        Ok("off") => None,
        Ok("read") => Some(read),
        _ => Some(driver::prefetch),
    }
}

/// Reads one byte in each 64-byte line of the `len` bytes from `start` (the range's own
/// first byte in its first line), as a load the compiler cannot drop.
fn read(start: *const u8, len: usize) {
    let end = start as usize + len;
    let mut at = start;
    while (at as usize) < end {
        // SAFETY: the core shows the hook only ranges inside allocations it holds
        // (`Config::prefetch`), and `at` is within the range. The byte may be padding,
        // so it is read as possibly uninitialized, and only kept from the optimizer.
        #[allow(unsafe_code)]
        let byte = unsafe { std::ptr::read_volatile(at.cast::<std::mem::MaybeUninit<u8>>()) };
        std::hint::black_box(byte);
        at = at.wrapping_add(64 - at as usize % 64);
    }
}
