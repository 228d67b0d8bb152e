//! The circuit-relay side of the tool (spec/protocol.md §12): `weir relay --serve`, and the
//! path a transfer through a circuit takes, said as it changes. `send --via` and `recv
//! --via` themselves are `transfer`'s, with `net::connect_via` and `net::reserve`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use weir_tokio::{Config, Connection, Path};

use crate::error::CliError;
use crate::net::{self, NetArgs};
use crate::output::say;
use crate::verdict;

/// Serves as a circuit relay (spec §12) on `listen` until Ctrl-C: peers reserve here and
/// reach each other by key through circuits this endpoint forwards without reading.
pub async fn serve(listen: SocketAddr, net: NetArgs) -> Result<(), CliError> {
    let config = Config {
        relay: Some(weir_tokio::RelayConfig::default()),
        ..net.apply(Config::default())?
    };
    let endpoint = net::bind(listen, config)?;
    say!(
        "relay serving circuits at {} (key {})",
        endpoint.local_addr(),
        endpoint.public_key()
    )?;
    let serving = async {
        // Each peer's connection is held while it lasts: a reservation and its circuits
        // live as long as it does.
        loop {
            let conn = endpoint.accept().await.map_err(CliError::Net)?;
            tracing::info!(peer = ?conn.peer_key(), "a peer connected");
            tokio::spawn(async move {
                // Peers open no streams to a relay: this returns when the connection ends.
                while conn.accept_stream().await.is_ok() {}
            });
        }
    };
    let outcome: Result<(), CliError> = tokio::select! {
        r = serving => r,
        () = verdict::interrupt() => Err(CliError::Cancelled(Some("the relay stopped; circuits through it ended".into()))),
    };
    endpoint.close().await;
    outcome
}

/// Says on stderr which path a connection through the circuit relay at `relay` takes, and
/// each time it moves (to a direct path a hole punch opened, or back to the relay), until
/// it ends; `last` keeps the latest for the summary (the connection forgets its path when
/// it ends).
pub async fn watch_path(conn: Connection, relay: SocketAddr, last: Arc<Mutex<Option<Path>>>) {
    let say = |path: Path| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if *last != Some(path) {
            let what = net::path_text(Some(path), Some(relay));
            tracing::info!(path = %what, "path");
            eprintln!("path: {what}");
            *last = Some(path);
        }
    };
    let Some(first) = conn.path() else {
        return;
    };
    say(first);
    while let Ok(path) = conn.path_changed().await {
        say(path);
    }
}
