//! The UDP socket as a network engineer sets it up: large buffers, either address family.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// The receive and send buffer size asked of the OS. A default-sized UDP buffer (about
/// 200 KiB on Linux) overflows within a millisecond of a burst at loopback rates, and
/// every datagram it drops costs a retransmission and a congestion response. The OS caps
/// the request (Linux: `net.core.rmem_max` and `wmem_max`; raise those for more).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Binds a UDP socket at `addr` (IPv4 or IPv6) with its buffers raised towards
/// [`SOCKET_BUFFER`], in blocking mode. A refused buffer size is not an error: the socket
/// works with what the OS allows, and the sizes obtained are logged.
pub fn bind_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    bind(addr, Share::Alone)
}

/// Binds `count` UDP sockets at one address, as [`bind_socket`] binds one, each with
/// `SO_REUSEPORT`: the operating system spreads what arrives among them by a hash of the
/// datagram's addresses, so that one peer's datagrams go to one socket while the set is
/// unchanged. Port 0 in `addr` picks one port for all. The shards of one endpoint
/// (module `shards`) each drive one. Only on Unix; elsewhere more than one socket is
/// [`io::ErrorKind::Unsupported`].
pub fn bind_sockets(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    if count <= 1 {
        return bind_socket(addr).map(|s| vec![s]);
    }
    #[cfg(unix)]
    {
        let first = bind(addr, Share::ReusePort)?;
        let at = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..count {
            sockets.push(bind(at, Share::ReusePort)?);
        }
        Ok(sockets)
    }
    #[cfg(not(unix))]
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "several sockets on one address need SO_REUSEPORT (Unix)",
    ))
}

/// Whether a socket shares its address with others.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Share {
    Alone,
    #[cfg_attr(not(unix), allow(dead_code))]
    ReusePort,
}

fn bind(addr: SocketAddr, share: Share) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    if share == Share::ReusePort {
        socket.set_reuse_port(true)?;
    }
    if socket.set_recv_buffer_size(SOCKET_BUFFER).is_err() {
        tracing::debug!("the OS refused a {SOCKET_BUFFER}-byte receive buffer");
    }
    if socket.set_send_buffer_size(SOCKET_BUFFER).is_err() {
        tracing::debug!("the OS refused a {SOCKET_BUFFER}-byte send buffer");
    }
    socket.bind(&addr.into())?;
    tracing::debug!(
        %addr,
        recv_buffer = socket.recv_buffer_size().unwrap_or(0),
        send_buffer = socket.send_buffer_size().unwrap_or(0),
        "socket bound"
    );
    Ok(socket.into())
}

/// quinn-udp's state for `socket` (GSO and GRO where the OS has them, no fragmentation,
/// non-blocking), without the control messages it asks the OS to attach to every datagram
/// received and that weir never reads: the address a datagram was sent to (`IP_PKTINFO`,
/// `IPV6_RECVPKTINFO`) and its ECN bits (`IP_RECVTOS`, `IPV6_RECVTCLASS`; weir sets no ECN
/// codepoint either). The kernel builds and copies out each of them per datagram, and the
/// receive parses them: a cost a small message's round trip pays twice
/// (adapters/bench/rounds.md, issue 35's twenty-eighth round). Turned off on Linux and
/// Android; elsewhere the socket keeps what quinn-udp set. An option the OS refuses (an
/// IPv6 one on an IPv4 socket) is left as it is.
pub fn udp_state(socket: &UdpSocket) -> io::Result<quinn_udp::UdpSocketState> {
    let state = quinn_udp::UdpSocketState::new(socket.into())?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        let _ = setsockopt(socket, sockopt::Ipv4PacketInfo, &false);
        let _ = setsockopt(socket, sockopt::IpRecvTos, &false);
        let _ = setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &false);
        let _ = setsockopt(socket, sockopt::Ipv6RecvTClass, &false);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OS's cap on a buffer size (Linux), or none known.
    fn cap(name: &str) -> usize {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn buffers_are_raised_as_far_as_the_os_allows() {
        let socket = Socket::from(bind_socket("127.0.0.1:0".parse().unwrap()).unwrap());
        // Linux grants min(request, cap) and reports it doubled (for its bookkeeping).
        assert!(socket.recv_buffer_size().unwrap() >= SOCKET_BUFFER.min(cap("rmem_max")));
        assert!(socket.send_buffer_size().unwrap() >= SOCKET_BUFFER.min(cap("wmem_max")));
    }

    #[cfg(unix)]
    #[test]
    fn sockets_for_shards_share_one_port_and_a_plain_socket_does_not() {
        let sockets = bind_sockets("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let at = sockets[0].local_addr().unwrap();
        assert_ne!(at.port(), 0);
        assert!(sockets.iter().all(|s| s.local_addr().unwrap() == at));
        // A socket that did not ask to share cannot join them.
        assert_eq!(bind_socket(at).unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }

    /// quinn-udp asks for a destination address and the ECN bits with every datagram
    /// received; `udp_state` turns both off, and a datagram still arrives through
    /// quinn-udp's receive, with neither.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_socket_s_state_asks_for_no_control_message_weir_does_not_read() {
        use nix::sys::socket::{getsockopt, sockopt};
        let asked = |s: &UdpSocket| {
            (
                getsockopt(s, sockopt::Ipv4PacketInfo).unwrap(),
                getsockopt(s, sockopt::IpRecvTos).unwrap(),
            )
        };
        let plain = bind_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let _ = quinn_udp::UdpSocketState::new((&plain).into()).unwrap();
        assert_eq!(asked(&plain), (true, true), "quinn-udp's own state asks for both");
        let socket = bind_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let state = udp_state(&socket).unwrap();
        assert_eq!(asked(&socket), (false, false));
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"still arrives", socket.local_addr().unwrap())
            .unwrap();
        socket.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 64];
        let mut meta = [quinn_udp::RecvMeta::default()];
        let n = state
            .recv(
                (&socket).into(),
                &mut [std::io::IoSliceMut::new(&mut buf)],
                &mut meta,
            )
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(&buf[..meta[0].len], b"still arrives");
        assert_eq!((meta[0].dst_ip, meta[0].ecn), (None, None));
    }

    #[test]
    fn ipv6_binds_when_the_host_has_it() {
        match bind_socket("[::1]:0".parse().unwrap()) {
            Ok(s) => assert!(s.local_addr().unwrap().is_ipv6()),
            // A host without IPv6 (some containers): nothing to check.
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable, "{e}"),
        }
    }
}
