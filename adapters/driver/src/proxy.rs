//! An impairing UDP proxy for tests and demonstrations on one machine: it stands between a
//! client and a server and loses, delays or cuts the datagrams between them, the way a
//! real path would, so that transfers over real sockets meet loss and delay.
//!
//! The client sends to [`Proxy::addr`]; the proxy forwards to the server from a socket of
//! its own and sends the server's answers back to the client it last heard from. Two
//! threads, one per direction, each hold the delayed datagrams in a queue bounded like a
//! router's ([`QUEUE_LIMIT`]); every loop wakes at least every 10 ms to check whether it
//! should stop, so dropping the proxy always ends its threads.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Datagrams a direction holds at most while delaying them; more are dropped.
pub const QUEUE_LIMIT: usize = 65_536;
/// How often an idle direction looks at the stop flag.
const POLL: Duration = Duration::from_millis(10);

/// What the path does to each datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// The probability that a datagram is lost, from 0 to 1.
    pub loss: f64,
    /// One-way delay added to every datagram (each direction).
    pub delay: Duration,
    /// Seed of the loss pattern.
    pub seed: u64,
}

impl Default for Impairment {
    /// A perfect path: no loss, no delay.
    fn default() -> Self {
        Impairment {
            loss: 0.0,
            delay: Duration::ZERO,
            seed: 1,
        }
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams forwarded.
    pub forwarded: u64,
    /// Datagrams lost on purpose (loss, a full queue, or the path cut).
    pub dropped: u64,
}

/// A running proxy; dropping it stops its threads.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    stats: [Arc<Mutex<DirectionStats>>; 2],
    threads: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 (or `[::1]` for an IPv6 `server`) in front of `server`.
    pub fn start(server: SocketAddr, impairment: Impairment) -> io::Result<Proxy> {
        let any: SocketAddr = if server.is_ipv6() {
            "[::1]:0".parse().expect("valid address")
        } else {
            "127.0.0.1:0".parse().expect("valid address")
        };
        let front = crate::bind_socket(any)?;
        let back = crate::bind_socket(any)?;
        front.set_read_timeout(Some(POLL))?;
        back.set_read_timeout(Some(POLL))?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Mutex::new(None::<SocketAddr>));
        let stats = [Arc::default(), Arc::default()];
        let mut threads = Vec::new();
        for (i, (from, to)) in [(front.try_clone()?, back.try_clone()?), (back, front)]
            .into_iter()
            .enumerate()
        {
            let dir = Direction {
                from,
                to,
                towards: if i == 0 {
                    Towards::Server(server)
                } else {
                    Towards::Client
                },
                client: Arc::clone(&client),
                impairment,
                rng: impairment.seed.wrapping_add(i as u64).max(1),
                stop: Arc::clone(&stop),
                cut: Arc::clone(&cut),
                stats: Arc::clone(&stats[i]),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("weir-proxy {addr} {i}"))
                    .spawn(move || dir.run())?,
            );
        }
        Ok(Proxy {
            addr,
            stop,
            cut,
            stats,
            threads,
        })
    }

    /// Where the client sends.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the path (`true`: every datagram is dropped, as if the peer died) or restores it.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    /// Counters towards the server and towards the client.
    pub fn stats(&self) -> [DirectionStats; 2] {
        self.stats
            .each_ref()
            .map(|s| *s.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

enum Towards {
    Server(SocketAddr),
    Client,
}

struct Direction {
    from: UdpSocket,
    to: UdpSocket,
    towards: Towards,
    client: Arc<Mutex<Option<SocketAddr>>>,
    impairment: Impairment,
    rng: u64,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    stats: Arc<Mutex<DirectionStats>>,
}

impl Direction {
    fn run(mut self) {
        let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        let mut buf = vec![0u8; 65_536];
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while queue.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, d)) = queue.pop_front() {
                    self.forward(&d);
                }
            }
            let wait = queue
                .front()
                .map_or(POLL, |(at, _)| at.saturating_duration_since(now).min(POLL));
            let _ = self
                .from
                .set_read_timeout(Some(wait.max(Duration::from_micros(50))));
            let Ok((len, from)) = self.from.recv_from(&mut buf) else {
                continue;
            };
            if let Towards::Server(_) = self.towards {
                *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(from);
            }
            if self.cut.load(Ordering::Relaxed) || self.lost() || queue.len() >= QUEUE_LIMIT {
                self.count(|s| s.dropped += 1);
                continue;
            }
            if self.impairment.delay.is_zero() && queue.is_empty() {
                self.forward(&buf[..len]);
            } else {
                queue.push_back((Instant::now() + self.impairment.delay, buf[..len].to_vec()));
            }
        }
    }

    /// Whether the loss pattern drops the next datagram (xorshift64*).
    fn lost(&mut self) -> bool {
        if self.impairment.loss <= 0.0 {
            return false;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < self.impairment.loss
    }

    fn forward(&self, datagram: &[u8]) {
        let to = match self.towards {
            Towards::Server(server) => Some(server),
            Towards::Client => *self.client.lock().unwrap_or_else(|e| e.into_inner()),
        };
        if let Some(to) = to {
            if self.cut.load(Ordering::Relaxed) {
                self.count(|s| s.dropped += 1);
            } else if self.to.send_to(datagram, to).is_ok() {
                self.count(|s| s.forwarded += 1);
            }
        }
    }

    fn count(&self, f: impl FnOnce(&mut DirectionStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (UdpSocket, SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let a = s.local_addr().unwrap();
        (s, a)
    }

    #[test]
    fn datagrams_cross_both_ways_and_a_cut_path_drops_them() {
        let (server, server_addr) = echo_server();
        let proxy = Proxy::start(server_addr, Impairment::default()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        client.send_to(b"ping", proxy.addr()).unwrap();
        let mut buf = [0; 16];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        server.send_to(b"pong", from).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], proxy.addr()));

        proxy.set_cut(true);
        client.send_to(b"lost", proxy.addr()).unwrap();
        server.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        assert!(server.recv_from(&mut buf).is_err());
        assert_eq!(proxy.stats()[0].dropped, 1);
    }

    #[test]
    fn loss_drops_about_the_share_asked() {
        let mut d = Direction {
            from: UdpSocket::bind("127.0.0.1:0").unwrap(),
            to: UdpSocket::bind("127.0.0.1:0").unwrap(),
            towards: Towards::Client,
            client: Arc::default(),
            impairment: Impairment {
                loss: 0.02,
                ..Impairment::default()
            },
            rng: 7,
            stop: Arc::default(),
            cut: Arc::default(),
            stats: Arc::default(),
        };
        let lost = (0..100_000).filter(|_| d.lost()).count();
        assert!((1_700..2_300).contains(&lost), "{lost}");
    }
}
