//! A NAT in userspace for real sockets: a host in a network namespace of its own sends
//! through a TUN device, and this NAT translates what it sends onto real UDP sockets in a
//! shared "internet" namespace, and what arrives at those sockets back into the host's
//! namespace, with the simulator's NAT model deciding each step ([`NatConfig`]: RFC 4787
//! mapping and filtering, mapping timeouts, port allocation, hairpinning). The adapters are
//! run unchanged behind it: their sockets are ordinary kernel sockets bound in the host's
//! namespace, so hole punching is tested over the real stack, on this machine only.
//!
//! Layout: [`Internet`] is one namespace whose loopback holds every public address: the
//! hosts on it (relays, public peers; 198.51.100.N) and the NATs' public addresses
//! (203.0.113.N). [`HostNat::start`] makes a host namespace whose default route is a TUN
//! device (the host is 192.168.N.2), and two kinds of threads: one reads the host's packets
//! from the device (IPv4 UDP only; fragments and anything else are dropped) and sends each
//! payload from the socket of its mapping, bound at the NAT's public address and mapped port
//! in the internet namespace (made when the mapping is); one per such socket receives, asks
//! the model whether its filtering lets the sender in, and writes the datagram into the
//! device as an IPv4 packet to the host.
//!
//! Inputs: the host's packets and the datagrams to the NAT's ports. Outputs: the translated
//! datagrams and [`HostNatStats`]. Time is the NAT's own since it started.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use weir_core::time::{Duration, Instant};

use crate::nat::Nat;
use crate::netns::Netns;
use crate::NatConfig;

/// How often a NAT's threads look up from a wait to see whether it is stopping.
const STOP_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// The TUN device's MTU: an Ethernet path's.
const MTU: usize = 1500;

/// The public network: one namespace holding every public address.
#[derive(Debug)]
pub struct Internet {
    ns: Netns,
    hosts: AtomicU8,
}

impl Internet {
    /// Makes the internet's namespace (it needs `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`).
    pub fn new() -> io::Result<Internet> {
        Ok(Internet {
            ns: Netns::new()?,
            hosts: AtomicU8::new(0),
        })
    }

    /// A new public address for a host on the internet (198.51.100.N, N from 1): bind to
    /// it in [`namespace`](Self::namespace).
    pub fn add_host(&self) -> io::Result<IpAddr> {
        let n = self.hosts.fetch_add(1, Ordering::Relaxed) + 1;
        let ip = Ipv4Addr::new(198, 51, 100, n);
        self.ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"])?;
        Ok(ip.into())
    }

    /// The internet's namespace: sockets bound in [`Netns::run`] are public.
    pub fn namespace(&self) -> &Netns {
        &self.ns
    }
}

/// What a [`HostNat`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNatStats {
    /// Datagrams the host sent that left translated.
    pub sent: u64,
    /// Datagrams let in to the host.
    pub let_in: u64,
    /// Datagrams from outside not let in: no live mapping holds the port, or its filtering
    /// keeps the sender out.
    pub filtered: u64,
    /// The host's datagrams not sent: not IPv4 UDP, a fragment, a hairpin the NAT does not
    /// do, or the send failed.
    pub dropped: u64,
    /// Datagrams let in, by the IP address they came from.
    pub let_in_from: BTreeMap<IpAddr, u64>,
    /// Datagrams from or to a blocked address ([`HostNat::block`]), dropped.
    pub blocked: u64,
}

/// A running userspace NAT with one host behind it; stops when dropped.
#[derive(Debug)]
pub struct HostNat {
    lan: Netns,
    private: Ipv4Addr,
    public: Ipv4Addr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    tun: File,
    public: Ipv4Addr,
    hairpinning: bool,
    started: std::time::Instant,
    stop: AtomicBool,
}

#[derive(Debug)]
struct State {
    nat: Nat,
    rng: Xoshiro256PlusPlus,
    /// The socket of each public port a mapping was given, and its receiving thread.
    sockets: BTreeMap<u16, (Arc<UdpSocket>, JoinHandle<()>)>,
    /// Addresses nothing passes to or from, whatever the mappings say.
    blocked: Vec<IpAddr>,
    stats: HostNatStats,
}

impl HostNat {
    /// Starts NAT number `n` (1 to 254) on `internet`, behaving as `config`: public address
    /// 203.0.113.`n`, its host 192.168.`n`.2 in a namespace of its own; `seed` picks random
    /// ports.
    pub fn start(internet: &Internet, n: u8, config: NatConfig, seed: u64) -> io::Result<HostNat> {
        let public = Ipv4Addr::new(203, 0, 113, n);
        let private = Ipv4Addr::new(192, 168, n, 2);
        internet
            .ns
            .ip(&["addr", "add", &format!("{public}/32"), "dev", "lo"])?;
        let lan = Netns::new()?;
        let tun = lan.tun("nat0")?;
        lan.ip(&["addr", "add", &format!("{private}/24"), "dev", "nat0"])?;
        lan.ip(&["link", "set", "nat0", "mtu", &MTU.to_string(), "up"])?;
        lan.ip(&["route", "add", "default", "dev", "nat0"])?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                nat: Nat::new(config, public.into()),
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
                sockets: BTreeMap::new(),
                blocked: Vec::new(),
                stats: HostNatStats::default(),
            }),
            tun,
            public,
            hairpinning: config.hairpinning,
            started: std::time::Instant::now(),
            stop: AtomicBool::new(false),
        });
        let outbound = Arc::clone(&shared);
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let internet_ns = internet.ns.try_clone()?;
        let thread = std::thread::spawn(move || {
            // This thread binds the mappings' sockets: they must be in the internet.
            let entered = internet_ns.enter();
            let ok = entered.is_ok();
            let _ = entered_tx.send(entered);
            if ok {
                outbound.run_outbound();
            }
        });
        entered
            .recv()
            .map_err(|_| io::Error::other("the NAT's thread ended"))??;
        Ok(HostNat {
            lan,
            private,
            public,
            shared,
            thread: Some(thread),
        })
    }

    /// The host's namespace: bind the host's sockets in [`Netns::run`].
    pub fn host(&self) -> &Netns {
        &self.lan
    }

    /// The host's own (private) address.
    pub fn private_ip(&self) -> IpAddr {
        self.private.into()
    }

    /// The NAT's public address.
    pub fn public_ip(&self) -> IpAddr {
        self.public.into()
    }

    /// Drops every datagram from or to `ip` from now on, as a firewall rule would: a path
    /// that worked goes dark while the others stay.
    pub fn block(&self, ip: IpAddr) {
        self.shared.lock().blocked.push(ip);
    }

    /// Undoes [`block`](Self::block): datagrams from and to `ip` pass as the mappings say.
    pub fn unblock(&self, ip: IpAddr) {
        self.shared.lock().blocked.retain(|&b| b != ip);
    }

    /// What the NAT did so far.
    pub fn stats(&self) -> HostNatStats {
        self.shared.lock().stats.clone()
    }
}

impl Drop for HostNat {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let sockets = std::mem::take(&mut self.shared.lock().sockets);
        for (_, (_, t)) in sockets {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Instant {
        let us = self.started.elapsed().as_micros();
        Instant::ZERO + Duration::from_micros(us as u64)
    }

    /// Reads the host's packets and sends them out, until stopped.
    fn run_outbound(self: &Arc<Self>) {
        let mut buf = vec![0u8; 65_536];
        while !self.stop.load(Ordering::Relaxed) {
            if !crate::readable::readable(&self.tun, STOP_POLL) {
                continue;
            }
            let Ok(n) = (&self.tun).read(&mut buf) else {
                continue;
            };
            if let Some((from, to, payload)) = parse_udp(&buf[..n]) {
                self.send_out(from, to, payload);
            } else {
                self.lock().stats.dropped += 1;
            }
        }
    }

    /// Translates one datagram of the host's and sends it from its mapping's socket. It is
    /// counted before it is sent, so a receiver that got it finds it counted.
    fn send_out(self: &Arc<Self>, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
        let socket = {
            let mut guard = self.lock();
            let state = &mut *guard;
            if *to.ip() == self.public && !self.hairpinning {
                state.stats.dropped += 1;
                return;
            }
            if state.blocked.contains(&IpAddr::V4(*to.ip())) {
                state.stats.blocked += 1;
                return;
            }
            let now = self.now();
            let public = state.nat.outbound(now, from.into(), to.into(), &mut state.rng);
            let socket = match state.sockets.get(&public.port()) {
                Some((s, _)) => Arc::clone(s),
                None => match UdpSocket::bind(public) {
                    Ok(s) => {
                        let s = Arc::new(s);
                        let inbound = (Arc::clone(self), Arc::clone(&s), public.port());
                        let thread = std::thread::spawn(move || inbound.0.run_inbound(&inbound.1, inbound.2));
                        state.sockets.insert(public.port(), (Arc::clone(&s), thread));
                        s
                    }
                    Err(_) => {
                        state.stats.dropped += 1;
                        return;
                    }
                },
            };
            state.stats.sent += 1;
            socket
        };
        if socket.send_to(payload, to).is_err() {
            let mut state = self.lock();
            state.stats.sent -= 1;
            state.stats.dropped += 1;
        }
    }

    /// Receives at public `port` and lets in what the filtering allows, until stopped.
    fn run_inbound(&self, socket: &UdpSocket, port: u16) {
        if socket.set_read_timeout(Some(STOP_POLL)).is_err() {
            return;
        }
        let mut buf = vec![0u8; 65_536];
        let mut packet = Vec::with_capacity(MTU);
        while !self.stop.load(Ordering::Relaxed) {
            let Ok((n, SocketAddr::V4(remote))) = socket.recv_from(&mut buf) else {
                continue;
            };
            let private = {
                let mut state = self.lock();
                if state.blocked.contains(&IpAddr::V4(*remote.ip())) {
                    state.stats.blocked += 1;
                    continue;
                }
                match state.nat.inbound(self.now(), remote.into(), port) {
                    Ok(SocketAddr::V4(private)) => {
                        // Counted before it is written, as outbound datagrams are.
                        state.stats.let_in += 1;
                        *state.stats.let_in_from.entry((*remote.ip()).into()).or_default() += 1;
                        private
                    }
                    _ => {
                        state.stats.filtered += 1;
                        continue;
                    }
                }
            };
            build_udp(remote, private, &buf[..n], &mut packet);
            // A full device queue drops the datagram, as a router's full queue would.
            let _ = (&self.tun).write(&packet);
        }
    }
}

/// An IPv4 UDP packet's source, destination and payload; `None` for anything else, a
/// fragment, or a packet whose lengths do not add up.
fn parse_udp(p: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 17 {
        return None;
    }
    let header = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16_at(p, 2));
    // More-fragments or a fragment offset: a piece of a datagram, which this NAT drops.
    if header < 20 || total > p.len() || total < header + 8 || u16_at(p, 6) & 0x3fff != 0 {
        return None;
    }
    let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
    let udp = &p[header..total];
    let len = usize::from(u16_at(udp, 4));
    if len < 8 || len > udp.len() {
        return None;
    }
    Some((
        SocketAddrV4::new(ip(12), u16_at(udp, 0)),
        SocketAddrV4::new(ip(16), u16_at(udp, 2)),
        &udp[8..len],
    ))
}

/// Writes into `out` the IPv4 UDP packet carrying `payload` from `from` to `to` (don't
/// fragment, TTL 64, no UDP checksum: optional over IPv4, RFC 768).
fn build_udp(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8], out: &mut Vec<u8>) {
    let total = (28 + payload.len()) as u16;
    out.clear();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    out.extend_from_slice(&from.ip().octets());
    out.extend_from_slice(&to.ip().octets());
    let sum = checksum(&out[..20]);
    out[10..12].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(&from.port().to_be_bytes());
    out.extend_from_slice(&to.port().to_be_bytes());
    out.extend_from_slice(&(total - 20).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
}

/// The Internet checksum (RFC 1071) of an even-length header.
fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dependency;

    fn v4(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn a_built_packet_parses_back_and_its_header_sums_to_zero() {
        let mut p = Vec::new();
        build_udp(v4("203.0.113.9:4000"), v4("192.168.1.2:5000"), b"payload", &mut p);
        assert_eq!(p.len(), 28 + 7);
        // A header with its checksum in place sums (one's complement) to all ones.
        assert_eq!(checksum(&p[..20]), 0);
        let (from, to, payload) = parse_udp(&p).unwrap();
        assert_eq!(
            (from, to, payload),
            (v4("203.0.113.9:4000"), v4("192.168.1.2:5000"), &b"payload"[..])
        );
        // A fragment, a truncated packet and a TCP segment are not datagrams to translate.
        let mut fragment = p.clone();
        fragment[6] |= 0x20;
        assert!(parse_udp(&fragment).is_none());
        assert!(parse_udp(&p[..p.len() - 1]).is_none());
        let mut tcp = p.clone();
        tcp[9] = 6;
        assert!(parse_udp(&tcp).is_none());
    }

    /// Through the kernel: a host behind an endpoint-independent NAT reaches a public host,
    /// which sees the NAT's public address and port (the host's own port, kept), and the
    /// reply comes back in; a stranger's datagram to that port is kept out when the
    /// filtering depends on the address.
    #[test]
    fn a_host_behind_the_nat_reaches_the_internet_and_strangers_are_filtered() {
        let internet = Internet::new().unwrap();
        let server_ip = internet.add_host().unwrap();
        let stranger_ip = internet.add_host().unwrap();
        let server = internet
            .namespace()
            .run(|| UdpSocket::bind((server_ip, 0)))
            .unwrap()
            .unwrap();
        let stranger = internet
            .namespace()
            .run(|| UdpSocket::bind((stranger_ip, 0)))
            .unwrap()
            .unwrap();
        let config = NatConfig::new(Dependency::EndpointIndependent, Dependency::AddressDependent);
        let nat = HostNat::start(&internet, 1, config, 1).unwrap();
        let host = nat.host().run(|| UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
        let timeout = Some(std::time::Duration::from_secs(10));
        server.set_read_timeout(timeout).unwrap();
        host.set_read_timeout(timeout).unwrap();
        host.send_to(b"out", server.local_addr().unwrap()).unwrap();
        let mut buf = [0; 16];
        let (n, seen) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"out");
        let port = host.local_addr().unwrap().port();
        assert_eq!(seen, SocketAddr::new(nat.public_ip(), port));
        stranger.send_to(b"unasked", seen).unwrap();
        server.send_to(b"back", seen).unwrap();
        let (n, from) = host.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"back"[..], server.local_addr().unwrap()));
        let stats = nat.stats();
        assert_eq!((stats.sent, stats.let_in, stats.filtered), (1, 1, 1), "{stats:?}");
    }
}
