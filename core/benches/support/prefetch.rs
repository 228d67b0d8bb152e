//! The prefetch hook weir-driver gives the endpoints of weir-tokio and weir-std
//! (`Config::prefetch`), for the benchmarks and examples here, which run as those hosts
//! would: with it, unless `WEIR_PREFETCH=off` (to compare the two in one build).

#[path = "../../../adapters/driver/src/prefetch.rs"]
mod driver;

/// The hook to configure: weir-driver's, or none if `WEIR_PREFETCH` is `off`.
pub fn hook() -> Option<fn(*const u8, usize)> {
    match std::env::var("WEIR_PREFETCH").as_deref() {
        Ok("off") => None,
        _ => Some(driver::prefetch),
    }
}
