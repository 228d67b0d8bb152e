//! How a large buffer the core makes may be backed: [`advise_huge_pages`], for
//! [`Config::advise_buffer`](weir_core::Config::advise_buffer), asks Linux (and Android) for
//! transparent huge pages for a whole-message read's buffer of 2 MiB or more
//! ([`weir_core::LARGE_BUFFER`]). An application that receives large messages whole
//! may set it; it is not set by default.
//!
//! What it is worth: a 64 MiB message received whole is copied into a buffer of fresh
//! memory, which the kernel otherwise faults in and clears 4 KiB at a time as the bytes
//! arrive (16,384 pages; with huge pages, 32 of 2 MiB). Counted over the whole benchmark
//! process, `perf stat -e page-faults target/release/weir-bench worker weir-tokio
//! bulk-whole`, with `WEIR_BENCH_HUGE_PAGES=1` and without the variable (an empty value
//! sets it too): 33,261–33,393 faults without, 19,795–20,513 with (three runs each, at
//! 4e96c10d). weir-bench's `bulk-whole` with `WEIR_BENCH_HUGE_PAGES` set against
//! unset, eight runs each, interleaved (adapters/bench/README.md's loop for two peers of
//! one build, over the variable instead): 391 against 346 MB/s and 273 against 296 ms of CPU
//! (medians), but two of the eight slower than any run without (266 and 272 MB/s), and a
//! peak RSS of 138.6 MiB against 137.2, above quinn's, which issue 35 asks weir not to
//! pass (adapters/bench/rounds.md, issue 35's twenty-eighth round). Later, on an AMD EPYC:
//! 1,256–1,399 MB/s against 931–978 in runs back to back, but 308–443 after a few seconds
//! idle, where unadvised runs kept 764–953. The slow runs were not the kernel compacting
//! memory, as first guessed: they spend their faults clearing pages that a virtual
//! machine's free page reporting had handed back to the host (a huge page is taken from
//! exactly the free 2 MiB blocks such reporting returns), so each first write faults on
//! the host as well (rounds.md, "A message received whole: the receiver's page faults, and
//! why huge pages are bimodal"). Hence not the default: the gain is real where freed memory
//! stays the guest's (bare metal, a VM without free page reporting, an application that
//! receives large messages often), the loss real on a VM that reports free pages. The kernel
//! gives huge pages only where its policy allows (`/sys/kernel/mm/transparent_hugepage/
//! enabled`: `madvise` or `always`); with `never` the advice changes nothing.

/// Asks the kernel to back the mapping that holds the `len` bytes from `start` with huge
/// pages, if that mapping is the buffer's own: it begins within a page before `start` and
/// ends within two pages after the buffer (the allocator's header and rounding: glibc maps
/// a large allocation on its own, one past its mmap threshold, which grows with what was
/// freed up to 32 MiB). A mapping that holds more (an allocator's arena, the heap) is left
/// as it is, and so is the buffer then.
///
/// The whole mapping, not the buffer's pages rounded inward: advice on part of a mapping
/// splits it in two, and the allocator's next growth of the buffer, a `mremap` of one
/// mapping, then fails and copies the buffer instead. A throw-away build that advised the
/// pages inward did just that (issue 35's twenty-eighth round: more page faults than
/// unadvised, 24 MiB more peak memory and a slower receive; no committed command rebuilds
/// it).
///
/// A refusal (an old kernel, a policy of `never`) is ignored: the memory stays as it was.
///
/// Elsewhere than Linux and Android it does nothing. Set it as the core's hook:
///
/// ```
/// let config = weir_core::Config {
///     advise_buffer: Some(weir_driver::advise_huge_pages),
///     ..weir_core::Config::default()
/// };
/// # let _ = config;
/// ```
pub fn advise_huge_pages(start: *const u8, len: usize) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    advise_own_mapping(start, len);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (start, len);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn advise_own_mapping(start: *const u8, len: usize) {
    const PAGE: usize = 4096;
    let (lo, hi) = (start as usize, (start as usize).saturating_add(len));
    let Some((first, end)) = own_mapping(lo, hi, PAGE) else {
        return;
    };
    let Some(addr) = std::ptr::NonNull::new(first as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: MADV_HUGEPAGE changes only how the kernel backs the pages of the range (it
    // marks the mapping for huge pages at its next faults); it neither reads, writes nor
    // frees them, so no memory's contents or validity change, whatever the range. The
    // range is one whole mapping of this process, as `/proc/self/maps` listed it, and page
    // aligned as madvise requires.
    #[allow(unsafe_code)]
    let advised =
        unsafe { nix::sys::mman::madvise(addr, end - first, nix::sys::mman::MmapAdvise::MADV_HUGEPAGE) };
    if let Err(e) = advised {
        tracing::debug!(%e, len, "huge pages not advised");
    }
}

/// The mapping (from `/proc/self/maps`) that holds `lo..hi` and little else.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn own_mapping(lo: usize, hi: usize, page: usize) -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let (a, b) = line.split(' ').next()?.split_once('-')?;
        let (a, b) = (
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        );
        let own = a <= lo && lo - a < page && b >= hi && b - hi < 2 * page;
        own.then_some((a, b))
    })
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    /// Kilobytes of huge pages backing the mapping that holds `at` (`/proc/self/smaps`).
    fn huge_kib_at(at: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ').filter(|(r, _)| r.contains('-')) {
                if let Some((lo, hi)) = range.split_once('-') {
                    let (lo, hi) = (
                        usize::from_str_radix(lo, 16).unwrap_or(usize::MAX),
                        usize::from_str_radix(hi, 16).unwrap_or(0),
                    );
                    inside = (lo..hi).contains(&at);
                    continue;
                }
            }
            if inside {
                if let Some(kib) = line.strip_prefix("AnonHugePages:") {
                    return kib.trim().trim_end_matches("kB").trim().parse().unwrap();
                }
            }
        }
        0
    }

    /// A large buffer advised and then filled is backed by huge pages where the kernel's
    /// policy allows them (`madvise` or `always`), and one left unadvised is not (with
    /// `madvise`), nor one that is not its mapping's own; its bytes are what was written
    /// either way. Under `never` nothing may be backed so, and that is all it checks
    /// there; this machine and CI's run `madvise`.
    #[test]
    fn a_large_buffer_advised_is_backed_by_huge_pages_where_the_kernel_allows() {
        let policy =
            std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        // 40 MiB: past glibc's largest mmap threshold (32 MiB), so each buffer is a mapping
        // of its own whatever the other tests in this process freed.
        const SIZE: usize = 40 << 20;
        let fill = |advise: bool| {
            let mut v: Vec<u8> = Vec::with_capacity(SIZE);
            if advise {
                advise_huge_pages(v.as_ptr(), v.capacity());
            }
            v.resize(SIZE, 7);
            let huge = huge_kib_at(v.as_ptr() as usize + (8 << 20));
            assert!(v.iter().all(|&b| b == 7));
            huge
        };
        let (advised, plain) = (fill(true), fill(false));
        // A buffer inside a larger mapping (here, the middle of one) is not advised.
        let mut outer: Vec<u8> = Vec::with_capacity(SIZE);
        advise_huge_pages(outer.as_ptr().wrapping_add(4 << 20), 4 << 20);
        outer.resize(SIZE, 7);
        let inner = huge_kib_at(outer.as_ptr() as usize + (6 << 20));
        if policy.contains("[madvise]") {
            assert!(advised >= 8 << 10, "{advised} KiB of huge pages advised");
            assert_eq!(plain, 0, "{plain} KiB of huge pages unadvised");
            assert_eq!(
                inner, 0,
                "{inner} KiB of huge pages in a mapping not the buffer's own"
            );
        } else if policy.contains("[always]") {
            // Every large mapping may get huge pages: only the advised one must.
            assert!(advised >= 8 << 10, "{advised} KiB of huge pages advised");
        } else if policy.contains("[never]") {
            assert_eq!(advised, 0);
        }
    }
}
