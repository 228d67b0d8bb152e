//! `weir`: see weir work in one command (`weir demo`), move files between machines through
//! relays (`send`, `recv`, `relay`) under an identity kept across runs (`keygen`), run the
//! same transfer in the deterministic simulator (`sim`), and read, replay, plot and shrink
//! traces (`replay`, `trace`).
#![forbid(unsafe_code)]

mod circuits;
mod demo;
mod error;
mod net;
mod output;
mod payload;
mod sim;
mod traces;
mod transfer;
mod units;
mod verdict;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use weir_core::wire::VersionRange;

use error::CliError;
use output::say;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  a transfer was interrupted or did not verify (what was delivered is printed)
  2  the command line does not parse
  3  bad address
  4  a file or directory cannot be read or written (standard output too), or an identity
     file is not usable
  5  cannot listen on the address (in use, or not this host's)
  6  unreachable peer: no answer within the handshake timeout
  7  version mismatch or refused by the peer (both version ranges are printed)
  8  a trace does not read, or its replay differs
130  interrupted by Ctrl-C (the peer is told; a partial file is removed)";

/// weir: a reliable, message-oriented transport for peer-to-peer systems.
#[derive(Parser, Debug)]
#[command(name = "weir", version, after_help = EXIT_CODES)]
struct Cli {
    /// Log to stderr: connections and transfers; `-vv` streams and receipts too; `-vvv`
    /// everything. `RUST_LOG` (tracing's env-filter directives) overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Serve the endpoint's figures (datagrams, drops by reason, handshakes, bytes, RTT,
    /// congestion window, ...) in Prometheus' text format at `http://ADDR/metrics`.
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send a generated message from a sender through a relay to a receiver, all in this
    /// process on 127.0.0.1 over real UDP sockets with a lossy, slow path between them.
    Demo(DemoArgs),
    /// Send a file to a `weir recv` (directly or through `weir relay`s).
    Send {
        /// The file.
        file: PathBuf,
        /// Where to send it: the receiver's or the first relay's `HOST:PORT`; with `--via`,
        /// the receiver's public key (64 hex digits).
        #[arg(long)]
        to: String,
        /// The public key of the endpoint at `--to` (64 hex digits, as it prints when it
        /// starts): the handshake fails unless it holds that key. Without it, any key is
        /// accepted and the connection is still encrypted.
        #[arg(long, conflicts_with = "via")]
        peer_key: Option<weir_tokio::PublicKey>,
        /// A circuit relay (`weir relay --serve`), `HOST:PORT`, where the receiver reserved
        /// (`weir recv --via`): the file goes through it, sealed end to end, and over a
        /// direct path if a hole punch opens one.
        #[arg(long)]
        via: Option<String>,
        #[command(flatten)]
        net: net::NetArgs,
    },
    /// Receive files into a directory.
    Recv {
        /// The address to listen on, `HOST:PORT` (`0.0.0.0:4433`, `[::]:4433`).
        #[arg(long)]
        listen: String,
        /// The directory to write files into.
        #[arg(long)]
        out: PathBuf,
        /// Exit after the first file (with its outcome as the exit code).
        #[arg(long)]
        once: bool,
        /// Replace a file of the same name in `--out` (without it, such a transfer is
        /// refused and the sender is told why).
        #[arg(long)]
        force: bool,
        /// Also be reachable by key through this circuit relay (`weir relay --serve`),
        /// `HOST:PORT`: for a receiver behind a NAT that senders cannot reach directly.
        #[arg(long)]
        via: Option<String>,
        #[command(flatten)]
        net: net::NetArgs,
    },
    /// Forward every stream received to each target, fragment by fragment, never holding a
    /// whole file; or, with `--serve`, serve as a circuit relay.
    Relay {
        /// The address to listen on, `HOST:PORT`.
        #[arg(long)]
        listen: String,
        /// Where to forward: one or more `HOST:PORT` (receivers or further relays).
        #[arg(long, required_unless_present = "serve", num_args = 1..)]
        to: Vec<String>,
        /// Serve as a circuit relay (spec §12) instead: peers reserve here (`weir recv
        /// --via`) and others reach them by key (`weir send --via`) through circuits sealed
        /// end to end, which this relay forwards without reading.
        #[arg(long, conflicts_with = "to")]
        serve: bool,
        #[command(flatten)]
        net: net::NetArgs,
    },
    /// Make a new identity (an X25519 key pair) and write it to a file readable by you only;
    /// print its public key, which peers name with `--peer-key`.
    Keygen {
        /// The file to write (default: `$WEIR_IDENTITY`, else
        /// `$XDG_CONFIG_HOME/weir/identity`, else `~/.config/weir/identity`, which the
        /// networking commands read when given no `--identity`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the identity already there (its key is lost for good).
        #[arg(long)]
        force: bool,
    },
    /// Run the demo's transfer in the deterministic simulator (virtual time).
    Sim(SimArgs),
    /// Replay a trace against a fresh endpoint and check every output matches.
    Replay {
        /// The trace file (`WEIR_TRACE=FILE`, or `weir sim --trace FILE`).
        trace: PathBuf,
    },
    /// Read, plot or shrink a trace.
    #[command(subcommand)]
    Trace(TraceCmd),
}

#[derive(Subcommand, Debug)]
enum TraceCmd {
    /// A readable timeline: every datagram, event and call, with the congestion window,
    /// bytes in flight and RTT as they change.
    Show {
        /// The trace file.
        trace: PathBuf,
    },
    /// Plot congestion window, bytes in flight, RTT and delivered bytes over time as SVG.
    Plot {
        /// The trace file.
        trace: PathBuf,
        /// Where to write the SVG.
        #[arg(short, long, default_value = "trace.svg")]
        output: PathBuf,
    },
    /// Cut a trace whose replay fails down to its shortest failing prefix.
    Shrink {
        /// The trace file.
        trace: PathBuf,
        /// Where to write the shrunk trace.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// The path the demo and the simulator put between the endpoints.
#[derive(Args, Debug, Clone)]
struct PathArgs {
    /// Bytes in the message.
    #[arg(long, default_value = "64MiB", value_parser = units::size)]
    size: u64,
    /// Chance each datagram is lost on each hop (`2%` or `0.02`).
    #[arg(long, default_value = "2%", value_parser = units::probability)]
    loss: f64,
    /// One-way delay of each hop, each direction.
    #[arg(long, default_value = "20ms", value_parser = units::duration)]
    delay: Duration,
    /// Extra delay on each hop of up to this: drawn per datagram (datagrams overtake each
    /// other by up to it), or with `--jitter-order in-order` as stalls of up to it.
    #[arg(long, default_value = "0", value_parser = units::duration)]
    jitter: Duration,
    /// Whether the jitter reorders datagrams, or comes as stalls that keep their order.
    #[arg(long, value_enum, default_value_t = JitterOrder::Reorders)]
    jitter_order: JitterOrder,
    /// Chance a datagram is held back and overtaken (`1%`).
    #[arg(long, default_value = "0", value_parser = units::probability)]
    reorder: f64,
    /// Seeds the path's randomness and the message.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sender straight to receiver, without the relay.
    #[arg(long)]
    direct: bool,
    /// Bottleneck rate of each hop (`80mbit` is 10 MB/s), with a drop-tail queue (`--queue`);
    /// unlimited when not given.
    #[arg(long, value_parser = units::rate)]
    rate: Option<u64>,
    /// The bottleneck's drop-tail queue in bytes (`256KiB`), with `--rate`; one
    /// bandwidth-delay product of the path (both directions' delay), at least 64 KiB, when
    /// not given. A queue much shallower than that is a switch's or a home router's.
    #[arg(long, value_parser = units::size, requires = "rate")]
    queue: Option<u64>,
    /// The congestion controller.
    #[arg(long, value_enum, default_value_t = Congestion::Bbr)]
    congestion: Congestion,
    /// Largest datagram (UDP payload) the endpoints send, 1200 to 65527.
    #[arg(long, default_value_t = 1200, value_parser = clap::value_parser!(u16).range(1200..=65527))]
    datagram_size: u16,
}

/// What the jitter does to the order of datagrams (weir_sim::JitterOrdering).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum JitterOrder {
    /// Each datagram's extra delay is its own: late ones are overtaken.
    Reorders,
    /// The hop stalls now and then for up to the jitter and then delivers what it held at
    /// once, in order (a Wi-Fi hop waiting for the medium, then sending an aggregate).
    InOrder,
}

impl From<JitterOrder> for weir_sim::JitterOrdering {
    fn from(o: JitterOrder) -> Self {
        match o {
            JitterOrder::Reorders => weir_sim::JitterOrdering::Reorders,
            JitterOrder::InOrder => weir_sim::JitterOrdering::InOrder,
        }
    }
}

/// A congestion controller (weir_core::CongestionAlgorithm).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Congestion {
    /// Model-based: paces at the path's bandwidth, keeps its rate under random loss (the
    /// default).
    Bbr,
    /// Delay-based scavenger: yields to other traffic.
    Ledbat,
    /// Loss-based, shares evenly with TCP.
    Newreno,
}

impl PathArgs {
    /// The bottleneck queue of a rate-limited hop, in bytes: `--queue`, or one
    /// bandwidth-delay product of the path (both directions' delay), at least 64 KiB.
    fn queue_bytes(&self) -> usize {
        if let Some(queue) = self.queue {
            return usize::try_from(queue).unwrap_or(usize::MAX);
        }
        let bytes_per_second = self.rate.unwrap_or(0) / 8;
        let bdp = u128::from(bytes_per_second) * 2 * self.delay.as_micros() / 1_000_000;
        usize::try_from(bdp).unwrap_or(usize::MAX).max(64 << 10)
    }

    /// The endpoints' config these options describe.
    fn config(&self) -> weir_core::Config {
        weir_core::Config {
            congestion: match self.congestion {
                Congestion::Bbr => weir_core::congestion::CongestionAlgorithm::Bbr,
                Congestion::Ledbat => weir_core::congestion::CongestionAlgorithm::Ledbat(
                    weir_core::congestion::LedbatConfig::default(),
                ),
                Congestion::Newreno => weir_core::congestion::CongestionAlgorithm::NewReno,
            },
            max_datagram_size: self.datagram_size,
            ..weir_core::Config::default()
        }
    }
}

#[derive(Args, Debug)]
struct DemoArgs {
    #[command(flatten)]
    path: PathArgs,
}

#[derive(Args, Debug)]
struct SimArgs {
    #[command(flatten)]
    path: PathArgs,
    /// Record the sender's trace to this file (replay it, show it, plot it).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Give up after this much virtual time.
    #[arg(long, default_value = "1h", value_parser = units::duration)]
    limit: Duration,
}

fn versions(text: &str) -> Result<VersionRange, String> {
    let (min, max) = text.split_once("..").unwrap_or((text, text));
    let max = max.strip_prefix('=').unwrap_or(max);
    let parse = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("`{text}` is not MIN..MAX"))
    };
    VersionRange::new(parse(min)?, parse(max)?).map_err(|e| e.to_string())
}

fn core_duration(d: Duration) -> weir_core::time::Duration {
    weir_core::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn run_sim(args: SimArgs) -> Result<(), CliError> {
    let spec = sim::Spec {
        size: args.path.size,
        link: weir_sim::LinkConfig {
            delay: core_duration(args.path.delay),
            jitter: core_duration(args.path.jitter),
            ordering: args.path.jitter_order.into(),
            loss: args.path.loss,
            reorder: args.path.reorder,
            bandwidth: args.path.rate,
            queue_bytes: args.path.queue_bytes(),
            ..weir_sim::LinkConfig::default()
        },
        seed: args.path.seed,
        direct: args.path.direct,
        trace: args.trace.is_some(),
        limit: core_duration(args.limit),
        config: args.path.config(),
    };
    let report = sim::run(&spec);
    say!("{report}")?;
    if let (Some(path), Some(trace)) = (&args.trace, &report.trace) {
        std::fs::write(path, trace).map_err(|source| CliError::File {
            path: path.clone(),
            source,
        })?;
        say!("trace:            {} (the sender's)", path.display())?;
    }
    match report.outcome {
        sim::Outcome::Verified => Ok(()),
        sim::Outcome::VerificationFailed => Err(CliError::Verification),
        sim::Outcome::Failed(why) => Err(CliError::Interrupted {
            delivered: report.delivered,
            total: error::Total(Some(report.size)),
            why,
        }),
    }
}

/// `weir keygen`: a new identity in `out` (or the default file); its public key on stdout,
/// alone on its line, to copy.
fn keygen(out: Option<PathBuf>, force: bool) -> Result<(), CliError> {
    use weir_tokio::identity_file::{self, IdentityFileError, Replace};
    let path = out
        .or_else(identity_file::default_path)
        .ok_or(CliError::Identity(IdentityFileError::NoLocation))?;
    let replace = match force {
        true => Replace::Yes,
        false => Replace::No,
    };
    let identity = identity_file::create(&path, replace).map_err(CliError::Identity)?;
    eprintln!("identity written to {}; its public key:", path.display());
    say!("{}", identity.public_key())?;
    Ok(())
}

/// Runs a networking command on a tokio runtime, serving the figures at `metrics` first if
/// given.
fn on_tokio(
    metrics: Option<SocketAddr>,
    f: impl std::future::Future<Output = Result<(), CliError>>,
) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Net(weir_tokio::Error::Io(e)))?;
    runtime.block_on(async {
        if let Some(addr) = metrics {
            serve_metrics(addr)?;
        }
        f.await
    })
}

/// Installs the Prometheus exporter, listening on `addr` (on the runtime this runs on).
fn serve_metrics(addr: SocketAddr) -> Result<(), CliError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| CliError::Bind {
            addr,
            source: std::io::Error::other(e.to_string()),
        })?;
    weir_driver::describe_metrics();
    tracing::info!(%addr, "serving metrics");
    Ok(())
}

fn run(cli: Cli) -> Result<(), CliError> {
    let metrics = cli.metrics_addr;
    match cli.command {
        Cmd::Demo(args) => on_tokio(
            metrics,
            demo::run(demo::Spec {
                size: args.path.size,
                loss: args.path.loss,
                delay: args.path.delay,
                jitter: args.path.jitter,
                ordering: args.path.jitter_order.into(),
                reorder: args.path.reorder,
                seed: args.path.seed,
                direct: args.path.direct,
                rate: args.path.rate,
                queue_bytes: args.path.queue_bytes(),
                config: args.path.config(),
            }),
        ),
        Cmd::Send {
            file,
            to,
            peer_key,
            via,
            net,
        } => {
            let target = match via {
                None => net::Target::Address(net::resolve(&to)?),
                Some(via) => net::Target::Via {
                    relay: net::resolve(&via)?,
                    peer: to.parse().map_err(|_| CliError::BadAddress {
                        text: to.clone(),
                        why: "with --via, --to is the receiver's public key (64 hex digits)".into(),
                    })?,
                },
            };
            on_tokio(metrics, async move {
                transfer::send(&file, target, peer_key, &net).await
            })
        }
        Cmd::Recv {
            listen,
            out,
            once,
            force,
            via,
            net,
        } => {
            let via = via.map(|v| net::resolve(&v)).transpose()?;
            let listen = net::resolve(&listen)?;
            let existing = match force {
                true => transfer::Existing::Replace,
                false => transfer::Existing::Refuse,
            };
            on_tokio(metrics, async move {
                transfer::recv(listen, &out, once, existing, via, &net).await
            })
        }
        Cmd::Relay {
            listen,
            serve: true,
            net,
            ..
        } => on_tokio(metrics, circuits::serve(net::resolve(&listen)?, net)),
        Cmd::Relay { listen, to, net, .. } => {
            let listen = net::resolve(&listen)?;
            let to = to
                .iter()
                .map(|t| net::resolve(t))
                .collect::<Result<Vec<_>, _>>()?;
            on_tokio(metrics, transfer::relay(listen, to, net))
        }
        Cmd::Keygen { out, force } => keygen(out, force),
        Cmd::Sim(args) => run_sim(args),
        Cmd::Replay { trace } => traces::replay(&trace),
        Cmd::Trace(TraceCmd::Show { trace }) => traces::show(&trace),
        Cmd::Trace(TraceCmd::Plot { trace, output }) => traces::plot(&trace, &output),
        Cmd::Trace(TraceCmd::Shrink { trace, output }) => traces::shrink(&trace, &output),
    }
}

/// Sends the transport's `tracing` logs to stderr: as `RUST_LOG` says (env-filter
/// directives) when it is set, else by `-v`: none without it, connections and transfers with
/// one, each stream's progress and receipts with two, every datagram with three.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // The binary's own logs carry its target name, `weir`, not the package's.
    const CRATES: [&str; 4] = ["weir", "weir_driver", "weir_tokio", "weir_core"];
    let from_env = std::env::var("RUST_LOG").ok().filter(|d| !d.trim().is_empty());
    let filter = match (from_env, verbose) {
        (Some(directives), _) => EnvFilter::new(directives),
        (None, 0) => EnvFilter::new("off"),
        (None, v) => {
            let level = match v {
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            EnvFilter::new(CRATES.map(|c| format!("{c}={level}")).join(","))
        }
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: escape codes in a log file or a pipe are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir: {e}");
            e.exit().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn version_ranges_read_as_min_dot_dot_max_or_one_version() {
        assert_eq!(versions("1..3"), Ok(VersionRange::new(1, 3).unwrap()));
        assert_eq!(versions("1..=3"), Ok(VersionRange::new(1, 3).unwrap()));
        assert_eq!(versions("2"), Ok(VersionRange::single(2).unwrap()));
        assert!(versions("3..1").is_err());
        assert!(versions("one").is_err());
    }
}
