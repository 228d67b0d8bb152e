//! What the weir-std suites share: addresses, configurations, endpoints that cannot hang.
#![allow(dead_code)] // each suite uses its own part

use weir_std::{Config, Endpoint};

#[allow(unused_imports)] // each suite uses its own part
pub use weir_sim::loopback::{config, local, patient};

/// An endpoint on 127.0.0.1 whose every blocking call (and its connections' and streams')
/// gives up after a minute, so that a bug fails a test instead of hanging it.
pub fn bind(config: Config) -> Endpoint {
    with_timeout(Endpoint::bind(local(), config).unwrap())
}

/// `ep` with a minute's limit on each blocking call.
pub fn with_timeout(mut ep: Endpoint) -> Endpoint {
    ep.set_timeout(Some(std::time::Duration::from_secs(60)));
    ep
}
