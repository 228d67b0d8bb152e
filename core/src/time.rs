//! Time as an input: weir-core's own `Instant` and `Duration`.
//!
//! The core never reads a clock. The driver picks an origin (process start, the start of a
//! simulation, the first record of a trace) and passes every moment in as an [`Instant`]:
//! a count of microseconds since that origin. Because it is a plain `u64`, a moment can be
//! written into a trace and replayed exactly, and a simulator can jump time forward at will.
//!
//! Arithmetic never panics and never wraps silently: `+` and `-` saturate (a moment cannot
//! go before the origin nor past `Instant::MAX`), and `checked_*` variants say when they
//! would. [`Instant::wire_timestamp`] gives the low 32 bits carried in every packet header
//! (spec/protocol.md §3.4).
//!
//! Both hold their count plus one, in a `NonZeroU64`, so that an `Option` of either takes
//! 8 bytes, not 16: a connection holds a dozen of them. The largest count is thus
//! `u64::MAX - 1` microseconds (584,000 years), which is what `MAX` is; a larger count
//! given saturates to it.

use core::fmt;
use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// The largest count of microseconds either type holds.
const MAX_MICROS: u64 = u64::MAX - 1;

/// `us` (saturated at [`MAX_MICROS`]) as stored: plus one, never zero.
const fn stored(us: u64) -> NonZeroU64 {
    let us = if us > MAX_MICROS { MAX_MICROS } else { us };
    match NonZeroU64::new(us + 1) {
        Some(v) => v,
        // `us + 1` is at least 1 and at most u64::MAX.
        None => NonZeroU64::MAX,
    }
}

/// A span of time, in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(NonZeroU64);

/// `Duration(us)`, the count itself (traces record it).
impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Duration").field(&self.as_micros()).finish()
    }
}

impl Default for Duration {
    fn default() -> Self {
        Duration::ZERO
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(stored(0));
    /// The longest representable span (`u64::MAX - 1` microseconds).
    pub const MAX: Duration = Duration(stored(MAX_MICROS));

    /// A span of `us` microseconds, saturating at [`Duration::MAX`].
    pub const fn from_micros(us: u64) -> Self {
        Duration(stored(us))
    }

    /// A span of `ms` milliseconds, saturating at [`Duration::MAX`].
    pub const fn from_millis(ms: u64) -> Self {
        Duration::from_micros(ms.saturating_mul(1_000))
    }

    /// A span of `s` seconds, saturating at [`Duration::MAX`].
    pub const fn from_secs(s: u64) -> Self {
        Duration::from_micros(s.saturating_mul(1_000_000))
    }

    /// The span in whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0.get() - 1
    }

    /// The span in whole milliseconds (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.as_micros() / 1_000
    }

    /// `self + rhs`, or `None` past [`Duration::MAX`].
    pub const fn checked_add(self, rhs: Duration) -> Option<Duration> {
        match self.as_micros().checked_add(rhs.as_micros()) {
            Some(v) if v <= MAX_MICROS => Some(Duration::from_micros(v)),
            _ => None,
        }
    }

    /// `self - rhs`, or `None` if `rhs` is longer.
    pub const fn checked_sub(self, rhs: Duration) -> Option<Duration> {
        match self.as_micros().checked_sub(rhs.as_micros()) {
            Some(v) => Some(Duration::from_micros(v)),
            None => None,
        }
    }

    /// `self * n`, saturating at [`Duration::MAX`].
    pub const fn saturating_mul(self, n: u64) -> Duration {
        Duration::from_micros(self.as_micros().saturating_mul(n))
    }
}

impl Add for Duration {
    type Output = Duration;
    /// Saturates at [`Duration::MAX`].
    fn add(self, rhs: Duration) -> Duration {
        Duration::from_micros(self.as_micros().saturating_add(rhs.as_micros()))
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Duration {
    type Output = Duration;
    /// Saturates at [`Duration::ZERO`].
    fn sub(self, rhs: Duration) -> Duration {
        Duration::from_micros(self.as_micros().saturating_sub(rhs.as_micros()))
    }
}

impl SubAssign for Duration {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

/// Writes the span in the largest unit that keeps it exact to three decimals:
/// `750us`, `1.250ms`, `3.000s`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.as_micros();
        if us < 1_000 {
            write!(f, "{us}us")
        } else if us < 1_000_000 {
            write!(f, "{}.{:03}ms", us / 1_000, us % 1_000)
        } else {
            let ms = us / 1_000;
            write!(f, "{}.{:03}s", ms / 1_000, ms % 1_000)
        }
    }
}

/// A moment: microseconds since an origin the driver chose.
///
/// Instants from different origins must not be mixed; the core only ever compares instants
/// that one driver handed it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(NonZeroU64);

/// `Instant(us)`, the count itself (traces record it).
impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Instant").field(&self.as_micros()).finish()
    }
}

impl Default for Instant {
    fn default() -> Self {
        Instant::ZERO
    }
}

impl Instant {
    /// The driver's origin.
    pub const ZERO: Instant = Instant(stored(0));
    /// The last representable moment (`u64::MAX - 1` microseconds, about 584,000 years
    /// after the origin).
    pub const MAX: Instant = Instant(stored(MAX_MICROS));

    /// The moment `us` microseconds after the origin, saturating at [`Instant::MAX`].
    pub const fn from_micros(us: u64) -> Self {
        Instant(stored(us))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0.get() - 1
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.as_micros().saturating_sub(earlier.as_micros()))
    }

    /// Time elapsed from `earlier` to `self`, or `None` if `earlier` is later.
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        match self.as_micros().checked_sub(earlier.as_micros()) {
            Some(v) => Some(Duration::from_micros(v)),
            None => None,
        }
    }

    /// `self + d`, or `None` past [`Instant::MAX`].
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.as_micros().checked_add(d.as_micros()) {
            Some(v) if v <= MAX_MICROS => Some(Instant::from_micros(v)),
            _ => None,
        }
    }

    /// `self - d`, or `None` before the origin.
    pub const fn checked_sub(self, d: Duration) -> Option<Instant> {
        match self.as_micros().checked_sub(d.as_micros()) {
            Some(v) => Some(Instant::from_micros(v)),
            None => None,
        }
    }

    /// The sender timestamp carried in a packet header: the low 32 bits of the microsecond
    /// count. It wraps every 71.6 minutes; receivers only ever subtract two of them with
    /// wrapping arithmetic (spec/protocol.md §3.4).
    pub const fn wire_timestamp(self) -> u32 {
        // Truncation is the documented wire encoding.
        self.as_micros() as u32
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`].
    fn add(self, d: Duration) -> Instant {
        Instant::from_micros(self.as_micros().saturating_add(d.as_micros()))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at the origin.
    fn sub(self, d: Duration) -> Instant {
        Instant::from_micros(self.as_micros().saturating_sub(d.as_micros()))
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturates at zero when `rhs` is later than `self`.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// Writes the moment as seconds since the origin with microsecond precision: `t=12.000345s`.
impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.as_micros();
        write!(f, "t={}.{:06}s", us / 1_000_000, us % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - Instant::from_micros(5), Duration::ZERO);
        assert_eq!(Duration::MAX + Duration::from_micros(1), Duration::MAX);
        assert_eq!(Duration::ZERO - Duration::from_micros(1), Duration::ZERO);
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(Instant::ZERO.checked_sub(Duration::from_micros(1)), None);
        assert_eq!(
            Instant::from_micros(10).checked_duration_since(Instant::from_micros(11)),
            None
        );
        assert_eq!(
            Instant::from_micros(10).checked_add(Duration::from_millis(1)),
            Some(Instant::from_micros(1_010))
        );
        assert_eq!(Duration::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(Duration::ZERO.checked_sub(Duration::from_micros(1)), None);
    }

    #[test]
    fn an_option_of_either_is_eight_bytes_and_max_saturates() {
        assert_eq!(core::mem::size_of::<Option<Instant>>(), 8);
        assert_eq!(core::mem::size_of::<Option<Duration>>(), 8);
        assert_eq!(Instant::from_micros(u64::MAX), Instant::MAX);
        assert_eq!(Instant::MAX.as_micros(), u64::MAX - 1);
        assert_eq!(Duration::from_micros(u64::MAX), Duration::MAX);
        assert_eq!(Instant::ZERO.as_micros(), 0);
        assert_eq!(Duration::default(), Duration::ZERO);
        assert_eq!(
            Instant::from_micros(u64::MAX - 2).checked_add(Duration::from_micros(1)),
            Some(Instant::MAX)
        );
        assert!(Instant::ZERO < Instant::from_micros(1));
        assert_eq!(alloc::format!("{:?}", Duration::from_micros(7)), "Duration(7)");
        assert_eq!(alloc::format!("{:?}", Instant::from_micros(7)), "Instant(7)");
    }

    #[test]
    fn units_convert() {
        assert_eq!(Duration::from_millis(3).as_micros(), 3_000);
        assert_eq!(Duration::from_secs(2).as_millis(), 2_000);
        assert_eq!(
            Instant::from_micros(7) + Duration::from_micros(3) - Instant::from_micros(4),
            Duration::from_micros(6)
        );
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(Duration::from_micros(750).to_string(), "750us");
        assert_eq!(Duration::from_micros(1_250).to_string(), "1.250ms");
        assert_eq!(Duration::from_millis(3_000).to_string(), "3.000s");
        assert_eq!(Instant::from_micros(12_000_345).to_string(), "t=12.000345s");
    }

    #[test]
    fn wire_timestamp_is_the_low_32_bits() {
        let t = Instant::from_micros((7 << 32) | 0xdead_beef);
        assert_eq!(t.wire_timestamp(), 0xdead_beef);
        // Differences survive the wrap when taken with wrapping arithmetic.
        let a = Instant::from_micros(u32::MAX as u64 - 10);
        let b = a + Duration::from_micros(25);
        assert_eq!(b.wire_timestamp().wrapping_sub(a.wire_timestamp()), 25);
    }
}
