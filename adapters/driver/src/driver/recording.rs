//! Where an endpoint records its trace (`WEIR_TRACE`, spec/trace.md §2.1), and the file
//! while it does.
//!
//! The name comes from the pattern: `{port}` becomes the socket's port, and a shard adds its
//! number. A pattern without `{port}` names one file for every endpoint of the process, and
//! two endpoints recording to one file interleave their lines into a trace neither replays
//! (`weir demo`, whose sender, relay and receiver share a process, did). So a name is held by
//! the endpoint recording to it until its driver is dropped; an endpoint that finds its name
//! held adds its port (`.PORT`, then `.PORT.2`, ... if that is held too) and says so in a
//! warning. Processes are not kept apart: that is what `{port}` is for.
//!
//! Inputs: the pattern, the socket's address and the shard. Outputs: the open file, its
//! name, and the name's release when the recording ends.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Mutex;

/// The names the endpoints of this process are recording to.
static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The trace file of one endpoint, its name held while it lives.
pub(crate) struct Recording {
    pub(super) out: std::io::BufWriter<std::fs::File>,
    name: String,
}

impl Recording {
    /// Opens the trace of the endpoint at `local` (`shard`: its ids' prefix, if a shard) by
    /// `pattern` (module docs), or `None`, with a warning, if it cannot be created.
    pub(super) fn open(pattern: &str, local: SocketAddr, shard: Option<u8>) -> Option<Recording> {
        let name = hold(&named(pattern, local, shard), local.port());
        match crate::create_trace_file(std::path::Path::new(&name)) {
            Ok(f) => Some(Recording {
                out: std::io::BufWriter::new(f),
                name,
            }),
            Err(e) => {
                tracing::warn!(path = %name, %e, "cannot record the trace");
                release(&name);
                None
            }
        }
    }

    /// The file it records to.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        release(&self.name);
    }
}

/// The name `pattern` gives the endpoint at `local`: `{port}` becomes the local port, and a
/// shard (its ids' prefix) adds its number, since the shards of one endpoint share its port.
fn named(pattern: &str, local: SocketAddr, shard: Option<u8>) -> String {
    let path = pattern.replace("{port}", &local.port().to_string());
    match shard {
        Some(k) => format!("{path}.{k}"),
        None => path,
    }
}

/// `name`, or if another endpoint of this process holds it, the first of `name.PORT`,
/// `name.PORT.2`, ... that none holds; held from now on.
fn hold(name: &str, port: u16) -> String {
    // A poisoned lock only means a thread panicked while holding it; the set is still whole.
    let mut held = HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut free = name.to_string();
    let mut n = 1;
    while held.contains(&free) {
        n += 1;
        free = match n {
            2 => format!("{name}.{port}"),
            n => format!("{name}.{port}.{}", n - 1),
        };
    }
    if free != name {
        tracing::warn!(
            held = %name,
            path = %free,
            "another endpoint of this process records its trace to that file (add {{port}} to WEIR_TRACE); this one records to the other path"
        );
    }
    held.insert(free.clone());
    free
}

fn release(name: &str) {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two endpoints of one process given one name: the second records beside the first,
    /// under its port, and the name is free again once the first is dropped.
    #[test]
    fn a_name_another_endpoint_records_to_gets_the_port() {
        let dir = std::env::temp_dir().join(format!("weir-recording-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pattern = dir.join("one.trace").to_str().unwrap().to_string();
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let first = Recording::open(&pattern, at(4000), None).unwrap();
        let second = Recording::open(&pattern, at(4001), None).unwrap();
        let third = Recording::open(&pattern, at(4001), None).unwrap();
        assert_eq!(first.name(), pattern);
        assert_eq!(second.name(), format!("{pattern}.4001"));
        assert_eq!(third.name(), format!("{pattern}.4001.2"));
        drop((first, second));
        let again = Recording::open(&pattern, at(4002), None).unwrap();
        assert_eq!(again.name(), pattern, "a dropped recording frees its name");
        drop((third, again));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_shard_of_an_endpoint_traces_to_a_file_of_its_own() {
        let local = "127.0.0.1:4433".parse().unwrap();
        assert_eq!(named("/t/w-{port}.trace", local, None), "/t/w-4433.trace");
        assert_eq!(named("/t/w-{port}.trace", local, Some(1)), "/t/w-4433.trace.1");
    }
}
