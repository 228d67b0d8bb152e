//! The network side shared by `demo`, `send`, `recv` and `relay`: addresses, binding and
//! connecting with their failures turned into [`CliError`]s, and the progress bars.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use weir_core::wire::VersionRange;
use weir_tokio::{identity_file, Config, Connection, Endpoint};

use crate::error::CliError;

/// Resolves `text` (`host:port`, `1.2.3.4:5`, `[::1]:5`) to its first address.
pub fn resolve(text: &str) -> Result<SocketAddr, CliError> {
    let bad = |why: String| CliError::BadAddress {
        text: text.to_string(),
        why,
    };
    let mut addrs = text.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| bad("it resolves to no address".into()))
}

/// Binds an endpoint at `addr`; a port in use or an address not ours is [`CliError::Bind`].
pub fn bind(addr: SocketAddr, config: Config) -> Result<Endpoint, CliError> {
    Endpoint::bind(addr, config).map_err(|e| match e {
        weir_tokio::Error::Io(source) => CliError::Bind { addr, source },
        other => CliError::Net(other),
    })
}

/// The local address to send from towards `remote`: any port, the same family.
pub fn any_for(remote: SocketAddr) -> SocketAddr {
    if remote.is_ipv6() {
        "[::]:0".parse().expect("valid address")
    } else {
        "0.0.0.0:0".parse().expect("valid address")
    }
}

/// Connects to `remote` (whose public key is `key`, if given: the handshake then fails
/// unless it holds it), naming the failure: unreachable, version mismatch, refused.
pub async fn connect(
    endpoint: &Endpoint,
    remote: SocketAddr,
    key: Option<weir_tokio::PublicKey>,
    ours: VersionRange,
) -> Result<Connection, CliError> {
    match key {
        Some(key) => endpoint.connect_to(remote, key).await,
        None => endpoint.connect(remote).await,
    }
    .map_err(|e| CliError::handshake(remote, ours, e))
}

/// Where a transfer goes: an address, or a peer's key through a circuit relay (`weir relay
/// --serve`, spec §12).
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The receiver's, or the first pipe relay's, address.
    Address(SocketAddr),
    /// The receiver holding `peer`, reserved at the relay at `relay`.
    Via {
        /// The circuit relay.
        relay: SocketAddr,
        /// The receiver's public key.
        peer: weir_tokio::PublicKey,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Address(a) => write!(f, "{a}"),
            Target::Via { relay, peer } => write!(f, "{peer} via {relay}"),
        }
    }
}

/// Connects to the peer holding `peer` through the circuit relay at `relay`: our
/// connection to the relay (the circuit lasts as long as it does) and the peer's.
pub async fn connect_via(
    endpoint: &Endpoint,
    relay: SocketAddr,
    peer: weir_tokio::PublicKey,
    ours: VersionRange,
) -> Result<(Connection, Connection), CliError> {
    let to_relay = connect(endpoint, relay, None, ours).await?;
    let conn = endpoint
        .connect_via(&to_relay, peer)
        .await
        .map_err(|e| CliError::handshake(relay, ours, e))?;
    Ok((to_relay, conn))
}

/// Makes this endpoint reachable by its key through the circuit relay at `relay`: the
/// connection to it, which the reservation lasts as long as.
pub async fn reserve(
    endpoint: &Endpoint,
    relay: SocketAddr,
    ours: VersionRange,
) -> Result<Connection, CliError> {
    let to_relay = connect(endpoint, relay, None, ours).await?;
    endpoint
        .reserve(&to_relay)
        .await
        .map_err(|e| CliError::handshake(relay, ours, e))?;
    Ok(to_relay)
}

/// How a connection reaches its peer, in words.
pub fn path_text(path: Option<weir_tokio::Path>, relay: Option<SocketAddr>) -> String {
    match (path, relay) {
        (Some(weir_tokio::Path::Direct(a)), _) => format!("direct to {a}"),
        (Some(_), Some(r)) => format!("relayed through {r}"),
        (Some(_), None) => "relayed".to_string(),
        (None, _) => "closed".to_string(),
    }
}

/// Options every networking command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct NetArgs {
    /// Wire versions to speak, `MIN..MAX` (or `MIN..=MAX`) or one version: 2 is encrypted
    /// and authenticated, 1 is plaintext (`1..2` falls back to it with a version 1 peer).
    #[arg(long, default_value = "2", value_parser = crate::versions)]
    pub versions: VersionRange,
    /// Give up on a peer that does not answer the handshake within this long.
    #[arg(long, default_value = "10s", value_parser = crate::units::duration)]
    pub handshake_timeout: Duration,
    /// Declare a connection dead after this long without hearing from the peer.
    #[arg(long, default_value = "30s", value_parser = crate::units::duration)]
    pub idle_timeout: Duration,
    /// The identity file (`weir keygen` writes one): this endpoint's public key stays the
    /// same across runs. Without it, the default file (`$WEIR_IDENTITY`, else
    /// `$XDG_CONFIG_HOME/weir/identity`, else `~/.config/weir/identity`) if it exists, else
    /// a new key for this run only.
    #[arg(long)]
    pub identity: Option<PathBuf>,
}

impl NetArgs {
    /// `base` with these options applied, the identity read from its file.
    pub fn apply(&self, base: Config) -> Result<Config, CliError> {
        Ok(Config {
            versions: self.versions,
            handshake_timeout: crate::core_duration(self.handshake_timeout),
            idle_timeout: crate::core_duration(self.idle_timeout),
            identity: self.identity()?.or(base.identity),
            ..base
        })
    }

    /// The identity `--identity` names, or the default file's if there is one.
    fn identity(&self) -> Result<Option<weir_tokio::Identity>, CliError> {
        let path = match &self.identity {
            Some(path) => path.clone(),
            None => match identity_file::default_path().filter(|p| p.exists()) {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        let identity = identity_file::load(&path).map_err(CliError::Identity)?;
        tracing::info!(path = %path.display(), key = %identity.public_key(), "identity");
        Ok(Some(identity))
    }
}

/// A byte-count bar named `name` with `total` bytes (a spinner when unknown), in `multi`.
pub fn bar(multi: &MultiProgress, name: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(
            ProgressStyle::with_template(
                "{prefix:>18} [{bar:32}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{prefix:>18} {spinner} {bytes:>10} {binary_bytes_per_sec:>12}")
                .expect("a valid template"),
        ),
    };
    let bar = multi.add(bar);
    bar.set_prefix(name.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_or_say_why_not() {
        assert_eq!(resolve("127.0.0.1:9").unwrap(), "127.0.0.1:9".parse().unwrap());
        assert!(matches!(resolve("127.0.0.1"), Err(CliError::BadAddress { .. })));
        assert!(matches!(
            resolve("not an address"),
            Err(CliError::BadAddress { .. })
        ));
        assert_eq!(any_for("[::1]:5".parse().unwrap()), "[::]:0".parse().unwrap());
    }
}
