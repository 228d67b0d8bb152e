//! When the endpoint shows the host's prefetch hook ([`Config::prefetch`](crate::Config::prefetch))
//! a connection's memory (module `connection::prefetch` says what it shows): as an input is
//! about to reach the connection (a command naming it, a datagram matched to it by its
//! connection id, a timer of it due), unless the input before reached the same one.
//!
//! Input: the slot an input is about to reach. Output: calls of the hook, the endpoint's
//! own entries for the slot first (its marks, where its deadline is filed: their addresses
//! need no load), then the connection's; nothing else changes, and no output of the core
//! depends on them. Why: adapters/bench/rounds.md, "After the fifty-fourth round: cold
//! connections' memory shown first" (and, for what showing the next connection ahead of
//! its input did not give, "After the fifty-fifth round").

use super::*;
use slots::Marks;

impl Endpoint {
    /// Shows [`Config::prefetch`](crate::Config::prefetch) the memory of the connection in
    /// `slot`, which an input is about to reach (module `connection::prefetch`), unless the
    /// last input reached it too: then its memory is in the caches still (showing it again,
    /// a build without this check counted 1,720 more instructions a one-connection round
    /// trip, 4.4%, for nothing). A slot freed and taken by a new connection may be skipped
    /// once: a hint missed, nothing else. (The check inlined, the rest not: it is on every
    /// command's path.)
    #[inline]
    pub(super) fn prefetch(&mut self, slot: u32) {
        if self.prefetched != slot && self.config.prefetch.is_some() {
            self.prefetch_other(slot);
        }
    }

    #[inline(never)]
    fn prefetch_other(&mut self, slot: u32) {
        self.prefetched = slot;
        let Some(hook) = self.config.prefetch else {
            return;
        };
        #[cfg(test)]
        let shown = &mut self.shown;
        let show = &mut |start: *const u8, len: usize| {
            hook(start, len);
            #[cfg(test)]
            shown.push((start as usize, len));
        };
        // The endpoint's own lines of the slot first: their addresses need no load.
        if let Some(m) = self.marks.get(slot as usize) {
            show((m as *const Marks).cast(), core::mem::size_of::<Marks>());
        }
        self.deadlines.prefetch(slot, show);
        if let Some(Some(c)) = self.conns.get(slot as usize) {
            c.prefetch(show);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefetch hook that does nothing: what it was shown is in the endpoint's test-only
    /// log (`shown`).
    fn ignore(_: *const u8, _: usize) {}

    /// What `ep`'s prefetch hook was shown since the last call: each range's start and
    /// length.
    fn shown(ep: &mut Endpoint) -> Vec<(usize, usize)> {
        core::mem::take(&mut ep.shown)
    }

    /// Where `h`'s connection is in `ep`'s memory: the first range a prefetch shows.
    fn connection_at(ep: &Endpoint, h: ConnectionHandle) -> (usize, usize) {
        let c = ep.lookup(h).expect("the connection is open");
        (
            c as *const Connection as usize,
            core::mem::size_of::<Connection>(),
        )
    }

    /// Checks `ranges` are what a prefetch of `h`'s connection in `ep` shows: the endpoint's
    /// two entries for its slot (its marks, where its deadline is filed), then the
    /// connection's own memory, then at least `more` other allocations; none empty, no two
    /// overlapping.
    fn assert_shows(ranges: &[(usize, usize)], ep: &Endpoint, h: ConnectionHandle, more: usize) {
        assert!(ranges.len() >= 3 + more, "{ranges:x?}");
        assert_eq!(ranges[2], connection_at(ep, h));
        let mut sorted = ranges.to_vec();
        sorted.sort_unstable();
        for w in sorted.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping: {ranges:x?}");
        }
        assert!(ranges.iter().all(|&(_, len)| len > 0), "{ranges:x?}");
    }

    /// A command, a datagram and a timer each show `Config::prefetch` the memory of the
    /// connection they reach, before they reach it: the endpoint's entries for its slot, the
    /// connection, its congestion controller, its protection and its two expanded keys, and
    /// what else it holds (at least four allocations beside the connection), two fewer once
    /// a trim let the keys go; and the next input that reaches the same connection shows
    /// nothing again.
    #[test]
    fn each_input_shows_the_prefetch_hook_its_connection_once() {
        use super::super::harness::Net;
        // No receipts: the harness reads nothing, and a sender that waits on a receipt is
        // heard from every few seconds (spec §8, Liveness), so it would never be quiet.
        let config = Config {
            prefetch: Some(ignore),
            capabilities: crate::wire::Capabilities::ALL.without(crate::wire::Capabilities::RECEIPTS),
            ..Config::default()
        };
        let mut net = Net::new(alloc::vec![config.clone(), config]);
        let server = net.addrs[1];
        let a = net.eps[0].connect(net.now, server).unwrap();
        let b = net.eps[0].connect(net.now, server).unwrap();
        net.run_until(Instant::from_micros(100_000));
        shown(&mut net.eps[0]);

        // Commands: one connection, again, then the other.
        let hi = Bytes::from_static(b"hi");
        net.eps[0].send_message(a, None, hi.clone()).unwrap();
        let first = shown(&mut net.eps[0]);
        assert_shows(&first, &net.eps[0], a, 4);
        net.eps[0].send_message(a, None, hi.clone()).unwrap();
        assert_eq!(shown(&mut net.eps[0]), []);
        net.eps[0].send_message(b, None, hi.clone()).unwrap();
        assert_shows(&shown(&mut net.eps[0]), &net.eps[0], b, 4);

        // Datagrams: the server's connections, each shown as a packet of it arrives.
        let client = net.addrs[0];
        let mut datagrams = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = net.eps[0].poll_transmit(net.now, &mut buf) {
            datagrams.push(BytesMut::from(&buf[..t.len]));
        }
        assert_eq!(
            shown(&mut net.eps[0]),
            [],
            "sending reaches the connection the command did"
        );
        shown(&mut net.eps[1]);
        for d in datagrams {
            net.eps[1].handle_datagram(net.now, client, d);
        }
        let served: Vec<_> = net.eps[1].connections().collect();
        assert_eq!(served.len(), 2);
        let starts: Vec<_> = shown(&mut net.eps[1]).iter().map(|r| r.0).collect();
        for h in served {
            assert!(starts.contains(&connection_at(&net.eps[1], h).0), "{starts:x?}");
        }

        // A timer: the one due next, after another connection's input.
        net.run_until(net.now + Duration::from_millis(1));
        net.eps[0].send_message(a, None, hi.clone()).unwrap();
        net.run_until(net.now + Duration::from_millis(1));
        let (at, due, _) = net.eps[0].next_timer().unwrap();
        net.eps[0].prefetched = u32::MAX;
        shown(&mut net.eps[0]);
        net.eps[0].handle_timeout(at);
        let ranges = shown(&mut net.eps[0]);
        assert!(
            ranges.get(2) == Some(&connection_at(&net.eps[0], due)),
            "{ranges:x?}"
        );

        // Quiet until both trim: the keys let go are not shown.
        net.run_until(net.now + Duration::from_secs(5));
        net.eps[0].prefetched = u32::MAX;
        shown(&mut net.eps[0]);
        net.eps[0].send_message(a, None, hi).unwrap();
        let trimmed = shown(&mut net.eps[0]);
        assert_shows(&trimmed, &net.eps[0], a, 2);
        assert!(
            trimmed.len() + 2 <= first.len(),
            "{trimmed:x?} against {first:x?}"
        );
    }

    /// The hook changes no output: two runs alike but for it send the same bytes.
    #[test]
    fn the_prefetch_hook_changes_no_datagram() {
        let run = |prefetch| {
            let config = Config {
                prefetch,
                ..Config::default()
            };
            let (mut a, mut b) = (Endpoint::new(config.clone(), 1), Endpoint::new(config, 2));
            let (to_a, to_b) = (
                SocketAddr::new([10, 0, 0, 1].into(), 1),
                SocketAddr::new([10, 0, 0, 2].into(), 1),
            );
            let mut now = Instant::ZERO;
            let c = a.connect(now, to_b).unwrap();
            let mut sent = Vec::new();
            let mut buf = [0u8; 1500];
            for round in 0..40u64 {
                if round % 4 == 3 {
                    // Ignored until the handshake ends.
                    let _ = a.send_message(c, None, Bytes::from(alloc::vec![round as u8; 3000]));
                }
                while let Some(t) = a.poll_transmit(now, &mut buf) {
                    sent.push(buf[..t.len].to_vec());
                    b.handle_datagram(now, to_a, BytesMut::from(&buf[..t.len]));
                }
                while let Some(t) = b.poll_transmit(now, &mut buf) {
                    sent.push(buf[..t.len].to_vec());
                    a.handle_datagram(now, to_b, BytesMut::from(&buf[..t.len]));
                }
                while b.poll_event().is_some() || a.poll_event().is_some() {}
                now += Duration::from_millis(7);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            assert_eq!(shown(&mut a).is_empty(), prefetch.is_none());
            sent
        };
        let with = run(Some(ignore));
        assert!(with.len() > 20, "{} datagrams", with.len());
        assert_eq!(with, run(None));
    }
}
