//! [`prefetch`]: the hook weir-driver gives the core's
//! [`Config::prefetch`](weir_core::Config::prefetch) unless the application gave one (so
//! weir-tokio's and weir-std's endpoints have it). It asks the CPU to start loading a
//! range of memory into its caches and returns at once.
//!
//! Self-contained (no `crate::` paths): weir-core's benchmarks and examples include this
//! file as it is, so that what they measure is the hook the adapters use.

/// The size of a cache line on the CPUs weir runs on (x86-64, AArch64).
const LINE: usize = 64;

/// Asks the CPU to start loading the `len` bytes from `start` (every cache line of them)
/// into its caches, without waiting for them: x86-64's `prefetcht0` or AArch64's
/// `prfm pldl1keep`, one per 64-byte line; elsewhere it does nothing. A prefetch is a hint:
/// it reads no byte into the program, writes none and never faults, whatever the address
/// (an unmapped one is dropped by the CPU). (Where a line is 128 bytes, as on Apple's
/// cores, every second prefetch asks for a line already asked for: a few instructions, no
/// memory traffic.)
pub fn prefetch(start: *const u8, len: usize) {
    let skip = start as usize % LINE;
    let lines = len.saturating_add(skip).div_ceil(LINE);
    // From the line `start` is in, keeping `start`'s provenance.
    let first = start.wrapping_sub(skip);
    for i in 0..lines {
        prefetch_line(first.wrapping_add(i * LINE));
    }
}

#[cfg(target_arch = "x86_64")]
fn prefetch_line(line: *const u8) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: `prefetcht0` is a hint to the cache: it never faults (an address that is not
    // mapped is ignored), reads nothing into a register and changes no memory, so no address
    // can make it unsound. SSE, which the intrinsic needs, is part of every x86-64 CPU (and
    // of the `x86_64` target's baseline).
    #[allow(unsafe_code)]
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(line.cast::<i8>())
    }
}

#[cfg(target_arch = "aarch64")]
fn prefetch_line(line: *const u8) {
    // SAFETY: `prfm` (prefetch memory) with `pldl1keep` asks for the line to be loaded into
    // the level-1 data cache for a read and kept there. The Arm architecture defines it as
    // a hint whose effect is the implementation's and which raises no synchronous abort,
    // whatever the address (the Arm ARM's "Prefetch memory"; an unmapped or inaccessible
    // one is ignored); it writes no register and no memory, so no address can make it
    // unsound. `readonly`: it is ordered as a read would be, never as a write; the stack and
    // the flags are untouched. (`core::arch::aarch64::_prefetch` says the same without
    // assembly but is not stable.)
    #[allow(unsafe_code)]
    unsafe {
        core::arch::asm!(
            "prfm pldl1keep, [{line}]",
            line = in(reg) line,
            options(nostack, readonly, preserves_flags)
        )
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn prefetch_line(_line: *const u8) {}
