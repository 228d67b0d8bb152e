//! What the weir-std suites share: addresses, configurations, endpoints that cannot hang.
#![allow(dead_code)] // each suite uses its own part

use std::net::SocketAddr;

use weir_core::time::Duration;
use weir_std::{Config, Endpoint};

pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

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

/// For bulk transfers in a debug build on a busy 2-vCPU machine: a starved receiver can
/// stay silent for a while (seen with two test suites running at once), so these give the
/// peer a longer silence before declaring it gone.
pub fn patient() -> Config {
    Config {
        idle_timeout: Duration::from_secs(30),
        ..config()
    }
}

/// A configuration whose failures show within seconds.
pub fn config() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}
