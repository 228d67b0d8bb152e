//! Linux network namespaces made by a test for itself, and TUN devices in them: the hosts of
//! the userspace NAT ([`host_nat`](crate::host_nat)) that real sockets are tested through.
//!
//! A namespace is made by a thread that leaves its parent's (`unshare(CLONE_NEWNET)`) and
//! kept alive by a descriptor of it, so it needs no name and no clean-up: it goes when the
//! last descriptor, socket or device in it does, even if the test panics. Work is done in
//! it by a thread that joins it (`setns`) for the work's length; a socket or device made
//! there stays there whichever thread then uses it. Interfaces and routes are set up by
//! iproute2's `ip`, run from such a thread (a child process starts in its parent thread's
//! namespace).
//!
//! Making namespaces and devices needs `CAP_SYS_ADMIN` and `CAP_NET_ADMIN` (root, or a
//! container granting them); [`Netns::new`] says so in its error when they are missing.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A network namespace of the test's own, with its loopback interface up.
#[derive(Debug)]
pub struct Netns {
    /// `/proc/thread-self/ns/net` of the thread that made it: holds it alive.
    fd: File,
}

impl Netns {
    /// Makes a namespace: an empty network with only `lo`, up.
    pub fn new() -> io::Result<Netns> {
        let fd = std::thread::spawn(|| -> io::Result<File> {
            // SAFETY: unshare takes flags only; this thread alone moves to the new namespace
            // (network namespaces are per thread), and it ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("a network namespace needs CAP_SYS_ADMIN (run as root): {e}"),
                ));
            }
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .map_err(|_| io::Error::other("the namespace's thread panicked"))??;
        let ns = Netns { fd };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `f` on a thread in this namespace: the sockets and devices it makes are here.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                Ok(f())
            })
            .join()
            .map_err(|_| io::Error::other("a thread in the namespace panicked"))?
        })
    }

    /// Another handle on the same namespace (for a thread of its own to enter).
    pub fn try_clone(&self) -> io::Result<Netns> {
        Ok(Netns {
            fd: self.fd.try_clone()?,
        })
    }

    /// Moves the calling thread into this namespace, for good: for a thread made to live
    /// there (a NAT's, which makes sockets as mappings come).
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: setns takes a descriptor this struct owns and keeps open, and a flag; it
        // moves only the calling thread.
        if unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `ip ARGS` in this namespace; a failure carries what `ip` said.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let out = self.run(|| Command::new("ip").args(args).output())??;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Makes a TUN device `name` here (IP packets without the 4-byte prefix) and returns
    /// its queue: a read gives one packet the namespace routed to the device, a write
    /// delivers one into the namespace. The device still needs an address and to be up.
    pub fn tun(&self, name: &str) -> io::Result<File> {
        self.run(|| open_tun(name))?
    }
}

fn open_tun(name: &str) -> io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    // SAFETY: ifreq is plain data (a name and a union of integers), all zeroes a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "device name too long",
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call; the descriptor
    // is the open TUN control file.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// Two namespaces are two networks: an address bound in one is not in the other, and a
    /// socket made in one keeps working there from any thread.
    #[test]
    fn namespaces_are_separate_networks() {
        let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
        a.ip(&["addr", "add", "198.51.100.7/32", "dev", "lo"]).unwrap();
        let bound = a.run(|| UdpSocket::bind("198.51.100.7:0")).unwrap().unwrap();
        let elsewhere = b.run(|| UdpSocket::bind("198.51.100.7:0")).unwrap();
        assert_eq!(elsewhere.unwrap_err().kind(), io::ErrorKind::AddrNotAvailable);
        let peer = a.run(|| UdpSocket::bind("127.0.0.1:0")).unwrap().unwrap();
        peer.send_to(b"here", bound.local_addr().unwrap()).unwrap();
        let mut buf = [0; 8];
        let (n, _) = bound.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"here");
    }
}
