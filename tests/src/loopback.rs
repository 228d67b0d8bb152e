//! What the adapters' loopback suites share (weir-tokio's and weir-std's `tests/common`):
//! the address to bind, and configurations whose failures show within seconds.

use std::net::{Ipv4Addr, SocketAddr};

use weir_core::time::Duration;
use weir_core::Config;

/// 127.0.0.1, any port.
pub fn local() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A configuration whose failures show within seconds.
pub fn config() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(5),
        ..Config::default()
    }
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
