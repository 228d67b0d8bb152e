//! What the loopback suites share: addresses, configurations and the time limit.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use weir_core::time::Duration;
use weir_tokio::Config;

#[allow(dead_code)] // not every suite binds on loopback
pub fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An endpoint on 127.0.0.1 with [`config`].
#[allow(dead_code)] // not every suite binds its own
pub fn endpoint() -> weir_tokio::Endpoint {
    weir_tokio::Endpoint::bind(local(), config()).unwrap()
}

/// For bulk transfers in a debug build on a busy 2-vCPU machine: a starved receiver can
/// stay silent for a while (seen with two test suites running at once), so these give the
/// peer a longer silence before declaring it gone.
#[allow(dead_code)] // not every suite moves bulk
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

/// Runs `test` with a limit, so that a bug shows as a failure and not a hang.
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(StdDuration::from_secs(60), test)
        .await
        .expect("the test took over 60 s")
}
