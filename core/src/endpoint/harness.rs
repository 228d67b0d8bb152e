//! For the endpoint's unit tests: endpoints on a "network" that hands every datagram over
//! at once, with time jumping to the next deadline.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// Endpoints at addresses `10.0.0.1:4000`, `10.0.0.2:4000`, ... and the events each gave.
pub(super) struct Net {
    pub(super) eps: Vec<Endpoint>,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) events: Vec<Vec<Event>>,
    pub(super) now: Instant,
    /// Pairs (from, to) of endpoints between which every datagram is lost.
    pub(super) dark: Vec<(usize, usize)>,
}

impl Net {
    pub(super) fn new(configs: Vec<Config>) -> Net {
        let n = configs.len();
        let eps = configs
            .into_iter()
            .enumerate()
            .map(|(i, c)| Endpoint::new(c, i as u64 + 1))
            .collect();
        let addrs = (0..n)
            .map(|i| SocketAddr::new([10, 0, 0, i as u8 + 1].into(), 4000))
            .collect();
        Net {
            eps,
            addrs,
            events: vec![Vec::new(); n],
            now: Instant::ZERO,
            dark: Vec::new(),
        }
    }

    /// Two endpoints of the default configuration, the first connected to the second (the
    /// handshake run to its end), and the first's handle of the connection.
    pub(super) fn connected() -> (Net, ConnectionHandle) {
        let mut net = Net::new(vec![Config::default(), Config::default()]);
        let server = net.addrs[1];
        // Harness, not input: a new endpoint's first connection always starts.
        let c = net.eps[0].connect(net.now, server).unwrap();
        net.run_until(Instant::from_micros(100_000));
        (net, c)
    }

    /// The second endpoint's handle of the connection [`connected`](Self::connected) made.
    pub(super) fn served(&self) -> ConnectionHandle {
        self.events[1]
            .iter()
            .find_map(|e| match e {
                Event::Connected { conn, .. } => Some(*conn),
                _ => None,
            })
            .expect("the server has the connection")
    }

    /// Moves datagrams and time until nothing is left to do or `limit` passes.
    pub(super) fn run_until(&mut self, limit: Instant) {
        let mut buf = [0u8; 1500];
        loop {
            let mut moved = false;
            for i in 0..self.eps.len() {
                while let Some(t) = self.eps[i].poll_transmit(self.now, &mut buf) {
                    moved = true;
                    let to = self.addrs.iter().position(|a| *a == t.destination);
                    if let Some(to) = to.filter(|&to| !self.dark.contains(&(i, to))) {
                        let from = self.addrs[i];
                        self.eps[to].handle_datagram(self.now, from, BytesMut::from(&buf[..t.len]));
                    }
                }
                while let Some(e) = self.eps[i].poll_event() {
                    self.events[i].push(e);
                }
            }
            if moved {
                continue;
            }
            match self.eps.iter().filter_map(Endpoint::poll_timeout).min() {
                Some(at) if at <= limit => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.eps.iter_mut().for_each(|ep| ep.handle_timeout(now));
                }
                _ => return,
            }
        }
    }
}
