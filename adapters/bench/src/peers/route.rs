//! How a client reaches its server: directly, or, for a workload over a long path
//! ([`Workload::one_way_delay`]), through weir-sim's impairing proxy, which holds each
//! datagram that long each way.
//!
//! The proxy runs in a process of its own (this program again, `weir-bench proxy`), so
//! that the worker's figures are the peers' alone: its queue holds what the path carries
//! at once, which grows with the peer's rate (at 75 MB/s, 7.9 MiB of the worker's heap
//! at its peak when the proxy ran in the worker, measured with heaptrack), and its
//! threads' CPU time is not the peer's either.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use crate::workload::Workload;

/// What the proxy process prints before its address, on a line of its own.
const PROXY_TAG: &str = "weir-bench-proxy";

/// The variable that makes the long path lose that percentage of datagrams, each way, at
/// random (a fixed seed): what loss does to each peer's far rows. Unset: no loss.
const LOSS_VAR: &str = "WEIR_BENCH_FAR_LOSS";

/// The way to a server; a proxy it started stops when this is dropped.
pub(crate) struct Route {
    proxy: Option<Child>,
    to: SocketAddr,
}

impl Route {
    /// The route to `server` for `workload`. A proxy process started here inherits the
    /// calling thread's CPU, as the proxy's threads did when it ran in the worker.
    pub(crate) fn to(server: SocketAddr, workload: Workload) -> io::Result<Route> {
        let Some(delay) = workload.one_way_delay() else {
            return Ok(Route {
                proxy: None,
                to: server,
            });
        };
        let mut proxy = Command::new(std::env::current_exe()?);
        proxy.args(["proxy", &server.to_string(), &delay.as_millis().to_string()]);
        if let Some(loss) = std::env::var_os(LOSS_VAR) {
            let percent = loss.to_str().and_then(|l| l.parse::<f64>().ok());
            let Some(percent) = percent.filter(|p| (0.0..=100.0).contains(p)) else {
                return Err(io::Error::other(format!(
                    "{LOSS_VAR}={loss:?} is not a percentage"
                )));
            };
            proxy.arg("--loss").arg(percent.to_string());
        }
        let mut child = proxy.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            io::BufReader::new(stdout).read_line(&mut line)?;
        }
        let to = line.strip_prefix(PROXY_TAG).and_then(|a| a.trim().parse().ok());
        let Some(to) = to else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "the proxy process printed no address: {line:?}"
            )));
        };
        Ok(Route {
            proxy: Some(child),
            to,
        })
    }

    /// The address the client connects to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.to
    }
}

impl Drop for Route {
    /// Closes the proxy's standard input, which it takes as the end of the run, and
    /// waits for it to exit.
    fn drop(&mut self) {
        if let Some(mut child) = self.proxy.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// The proxy process (`weir-bench proxy TO DELAY_MS [--loss PERCENT]`): forwards between
/// its address and `to`, holding each datagram `delay_ms` each way and losing
/// `loss_percent` of them, until its standard input closes (the worker's [`Route`] dropped,
/// or the worker gone).
pub(crate) fn serve_proxy(to: SocketAddr, delay_ms: u64, loss_percent: f64) -> ExitCode {
    if !(0.0..=100.0).contains(&loss_percent) {
        eprintln!("{LOSS_VAR}: {loss_percent} is not a percentage");
        return ExitCode::FAILURE;
    }
    let impairment = weir_sim::proxy::Impairment {
        delay: Duration::from_millis(delay_ms),
        loss: loss_percent / 100.0,
        seed: 1,
        ..weir_sim::proxy::Impairment::default()
    };
    let proxy = match weir_sim::proxy::Proxy::start(to, impairment) {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("proxy to {to}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = io::stdout();
    if writeln!(stdout, "{PROXY_TAG} {}", proxy.addr())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Until the worker closes the pipe; what it holds is nothing to read.
    let _ = io::stdin().read_to_end(&mut Vec::new());
    drop(proxy);
    ExitCode::SUCCESS
}
