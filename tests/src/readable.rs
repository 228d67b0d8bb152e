//! Waiting for a descriptor to have something to read, to the microsecond (Linux).
//!
//! A socket's receive timeout (`SO_RCVTIMEO`) counts in the kernel's ticks: on this
//! project's machine a 0.3-20 ms timeout overshot by 3.5-7.7 ms, so the impairing proxy,
//! which slept in a receive until its next datagram was due, held every datagram that came
//! alone that much past its time (a lone message's one-way delay read 8 ms of queue that no
//! queue made). `ppoll` takes its timeout to the nanosecond, on a high-resolution timer.

use std::os::fd::AsRawFd;
use std::time::Duration;

/// Waits up to `timeout` for `fd` to have something to read; whether it has.
#[allow(unsafe_code)]
pub(crate) fn readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let at_most = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // (Below 10^9: it fits a c_long of any width.)
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one pollfd and one timespec, both valid for the call; the descriptor is open
    // (its owner is borrowed); no signal mask is given.
    let n = unsafe { libc::ppoll(&mut poll, 1, &at_most, std::ptr::null()) };
    n > 0 && poll.revents & libc::POLLIN != 0
}
