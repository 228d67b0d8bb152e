//! `tracing` spans per connection (issue 34): what the driver logs of a connection is
//! logged inside that connection's span, named `connection`, with its handle and the peer's
//! address. The only test in its binary: it installs the process's subscriber (the driver
//! logs from its own task, on any thread), and no other test's logging can race it for
//! tracing's per-callsite cache.

mod common;

use std::sync::{Arc, Mutex};

use common::{bounded, endpoint};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_connection_s_events_are_logged_in_its_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let accepted = b.accept().await.unwrap();
        conn.close(0, "done").await.unwrap();
        drop(accepted);
        let text = || String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        let established = text()
            .lines()
            .filter(|l| l.contains("connection established") && l.contains("connection{conn="))
            .count();
        assert_eq!(established, 2, "both ends, each in its span:\n{}", text());
        let server_side = format!("remote=Some({})", a.local_addr());
        assert!(
            text()
                .lines()
                .any(|l| l.contains("connection established") && l.contains(&server_side)),
            "the server's span names the client's address:\n{}",
            text()
        );
    })
    .await;
}
