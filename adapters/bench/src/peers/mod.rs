//! The peers of the comparison, each a [`Link`](crate::workload::Link) over its own
//! transport, and the two threads every run is made of.

use std::io;
use std::sync::mpsc;

pub(crate) use route::{serve_proxy, Route};

use crate::workload::{Metric, Placement, Workload};

mod libp2p;
mod quinn;
mod route;
mod tcp;
mod udp;
mod weir;

/// weir's configuration in every weir row, at the comparison's datagram size.
pub(crate) fn weir_config() -> weir_core::Config {
    weir::config(weir::DATAGRAM)
}

/// The transports compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// weir over weir-tokio (async; the driver is a task on the side's runtime).
    WeirTokio,
    /// weir-tokio with 65,000-byte datagrams (loopback's MTU allows them): a separate row,
    /// not the like-for-like comparison.
    #[value(name = "weir-tokio-64k")]
    WeirTokio64k,
    /// weir-tokio held to 1200-byte datagrams (path MTU discovery off): what the search for
    /// 1452 is worth, a separate row.
    #[value(name = "weir-tokio-1200")]
    WeirTokio1200,
    /// weir-tokio's request/response calls (`Connection::request`, `accept_request`) for
    /// the round-trip workloads, instead of a message each way.
    #[value(name = "weir-tokio-request")]
    WeirTokioRequest,
    /// weir over weir-std (blocking calls; the driver is a thread of its own).
    WeirStd,
    /// quinn 0.11 (rustls with ring), one connection, one bidirectional stream with
    /// length-prefixed messages.
    Quinn,
    /// tokio TCP with length-prefixed messages, `TCP_NODELAY`, writes buffered until flushed.
    Tcp,
    /// Raw UDP ping-pong on tokio: the floor for round trips (no reliability at all).
    Udp,
    /// rust-libp2p over weir (`weir-libp2p`): one substream of its muxer, with TCP's framing.
    #[value(name = "libp2p-weir")]
    Libp2pWeir,
    /// rust-libp2p over its own QUIC transport (`libp2p-quic`), the same way.
    #[value(name = "libp2p-quic")]
    Libp2pQuic,
}

impl Peer {
    /// Every peer, in the order of the table.
    pub const ALL: [Peer; 10] = [
        Peer::WeirTokio,
        Peer::WeirStd,
        Peer::Quinn,
        Peer::Tcp,
        Peer::Udp,
        Peer::WeirTokio64k,
        Peer::WeirTokio1200,
        Peer::WeirTokioRequest,
        Peer::Libp2pWeir,
        Peer::Libp2pQuic,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Peer::WeirTokio => "weir-tokio",
            Peer::WeirTokio64k => "weir-tokio-64k",
            Peer::WeirTokio1200 => "weir-tokio-1200",
            Peer::WeirTokioRequest => "weir-tokio-request",
            Peer::WeirStd => "weir-std",
            Peer::Quinn => "quinn",
            Peer::Tcp => "tcp",
            Peer::Udp => "udp",
            Peer::Libp2pWeir => "libp2p-weir",
            Peer::Libp2pQuic => "libp2p-quic",
        }
    }

    /// Whether this peer can run `workload` (raw UDP is only the round-trip floor: it
    /// neither orders nor recovers; the request row runs round trips only).
    pub fn runs(self, workload: Workload) -> bool {
        match self {
            Peer::Udp => workload == Workload::Rtt,
            Peer::WeirTokioRequest => matches!(workload, Workload::Rtt | Workload::BigRequest),
            // The long path is a UDP proxy, and libp2p's rows dial by multiaddr.
            Peer::Tcp | Peer::Libp2pWeir | Peer::Libp2pQuic => workload.one_way_delay().is_none(),
            _ => true,
        }
    }

    /// Runs `workload` between a client and a server of this peer in this process.
    pub fn run(self, workload: Workload) -> io::Result<Vec<(Metric, f64)>> {
        let placement = workload.placement();
        match self {
            Peer::WeirTokio => weir::run_tokio(workload, placement, weir::DATAGRAM),
            Peer::WeirTokio64k => weir::run_tokio(workload, placement, weir::LARGE_DATAGRAM),
            Peer::WeirTokio1200 => weir::run_tokio(workload, placement, weir::BASE_DATAGRAM),
            Peer::WeirTokioRequest => weir::run_requests(workload, placement),
            Peer::WeirStd => weir::run_std(workload, placement),
            Peer::Quinn => quinn::run(workload, placement),
            Peer::Tcp => tcp::run(workload, placement),
            Peer::Udp => udp::run(workload, placement),
            Peer::Libp2pWeir => libp2p::run(libp2p::Under::Weir, workload, placement),
            Peer::Libp2pQuic => libp2p::run(libp2p::Under::Quic, workload, placement),
        }
    }
}

/// The server on one thread and the client on another, each pinned to its CPU of
/// `placement` before it builds anything (threads a side starts inherit its CPU). The
/// server hands the client what it needs to connect (`T`) through a channel; the client's
/// figures are the result.
pub(crate) fn pair<T: Send + 'static>(
    placement: Placement,
    server: impl FnOnce(mpsc::Sender<T>) -> io::Result<()> + Send + 'static,
    client: impl FnOnce(T) -> io::Result<Vec<(Metric, f64)>> + Send + 'static,
) -> io::Result<Vec<(Metric, f64)>> {
    let (client_cpu, server_cpu) = placement.cpus();
    let (tx, rx) = mpsc::channel();
    // Named, so a profile (`perf report --sort comm`) tells the two sides apart.
    let server = std::thread::Builder::new().name("server".into()).spawn(move || {
        pin(server_cpu);
        server(tx)
    })?;
    let client = std::thread::Builder::new().name("client".into()).spawn(move || {
        pin(client_cpu);
        let hello = rx
            .recv()
            .map_err(|_| io::Error::other("the server ended before it was ready"))?;
        client(hello)
    })?;
    // A client that failed returns before the server is joined: a server whose client
    // never came (its route failed, say) waits for it for ever; the process's exit ends it.
    let figures = client
        .join()
        .map_err(|_| io::Error::other("the client panicked"))??;
    server
        .join()
        .map_err(|_| io::Error::other("the server panicked"))??;
    Ok(figures)
}

/// Pins the calling thread to `cpu` (or the last CPU there is, on a smaller machine).
pub(crate) fn pin(cpu: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if let Some(id) = ids.get(cpu).or(ids.last()) {
            core_affinity::set_for_current(*id);
        }
    }
}

/// 127.0.0.1 with a port the OS picks.
pub(crate) fn localhost() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A current-thread tokio runtime for one side.
pub(crate) fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}
