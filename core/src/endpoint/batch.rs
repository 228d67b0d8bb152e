//! Datagrams that arrived together ([`Endpoint::handle_datagrams`]): a run of packets for one
//! connection is handled packet by packet, and the endpoint's bookkeeping for it (`touch`:
//! its events handed on, its deadline filed, its budgets re-counted, its place in the
//! transmit queue) runs once, after the run, not after each packet.
//!
//! Inputs: the datagrams from one source of one receive call (a GRO batch; a `recvmmsg`
//! call's run from one address; a shard's routed run, module `shards` of weir-driver). Outputs: those
//! of [`Endpoint::handle_datagram`] for each, in order, with one difference: what the
//! bookkeeping itself decides (a receive window's growth into the endpoint's budget, a
//! `Writable` for the send budget) is decided once for the run, at its end.
//!
//! The state is [`Batch`]; its transitions:
//!
//! | state | on | next |
//! | --- | --- | --- |
//! | `Single` | `handle_datagrams` begins | `Open` |
//! | `Open` | a packet of an open connection, handled, that may wait (`defer_touch`) | `Deferred(its slot)` |
//! | `Deferred(s)` | another packet for `s` that may wait | `Deferred(s)` |
//! | `Deferred(s)` | a packet for `s` that may not wait (one that did not decode, one that closed `s`) | `Open`: `s` is touched at once, for its run's earlier packets too (`undefer`) |
//! | `Deferred(s)` | anything else: another connection's packet, a HELLO, a stateless answer, a relayed datagram, a packet for `s` with relay frames (before it is handled), the batch's end | `Open`, once `s` is touched (`settle_deferred`) |
//! | `Open` | the batch's end | `Single` |
//!
//! A run waits only where nothing else needs its bookkeeping first: no pipe runs (pipes
//! move bytes between connections after each packet), and the connection is open (a closed
//! one is retired at once, as its datagrams after the close must find). A traced endpoint
//! records the batch as one input (spec/trace.md §3.1; a batch of one as the datagram it
//! is), so that its replay hands the datagrams over together too and gives the same
//! outputs.

use super::*;

/// Whether datagrams are being handed over together, and which connection's bookkeeping
/// waits (module doc: the transitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum Batch {
    /// One datagram at a time ([`Endpoint::handle_datagram`]): each packet's bookkeeping at
    /// once.
    #[default]
    Single,
    /// Inside [`Endpoint::handle_datagrams`], nothing waiting.
    Open,
    /// Inside [`Endpoint::handle_datagrams`]: this slot's bookkeeping waits for the end of
    /// its run.
    Deferred(u32),
}

impl Endpoint {
    /// Datagrams that arrived together from `from`, in the order received: as
    /// [`handle_datagram`](Self::handle_datagram) for each, but the endpoint's bookkeeping
    /// for a run of packets to one connection runs once, at the run's end (module
    /// `batch`). A driver whose socket hands over several datagrams per call (GRO,
    /// `recvmmsg`) passes them here.
    pub fn handle_datagrams(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagrams: impl IntoIterator<Item = BytesMut>,
    ) {
        self.batch = Batch::Open;
        if self.trace.is_some() {
            // Recorded as one input (spec/trace.md §3.1, `batch`), so that a replay hands
            // them over together too, and gives what this call gives.
            let all: Vec<BytesMut> = datagrams.into_iter().collect();
            // A batch of one is what `handle_datagram` does (its bookkeeping waits for
            // nothing), and is recorded as that; an empty one does nothing.
            match (self.trace.as_mut(), &all[..]) {
                (Some(t), [one]) => t.datagram_in(now, from, one),
                (Some(t), [_, _, ..]) => t.batch_in(now, from, &all),
                _ => {}
            }
            all.into_iter().for_each(|d| self.receive(now, from, d));
        } else {
            datagrams.into_iter().for_each(|d| self.receive(now, from, d));
        }
        self.settle_deferred();
        self.batch = Batch::Single;
        self.trace_deadline();
    }

    /// The waiting slot's bookkeeping, now: before the endpoint does anything but handle
    /// another packet of that connection.
    pub(super) fn settle_deferred(&mut self) {
        if let Batch::Deferred(slot) = self.batch {
            self.batch = Batch::Open;
            self.touch_fresh(slot);
        }
    }

    /// Before a packet for `slot`: another connection's waiting bookkeeping is done first.
    pub(super) fn settle_unless(&mut self, slot: u32) {
        if !matches!(self.batch, Batch::Deferred(s) if s == slot) {
            self.settle_deferred();
        }
    }

    /// After `slot`'s packet was handled (its own timers rebuilt): whether its bookkeeping
    /// may wait for the end of its run, which it then does.
    pub(super) fn defer_touch(&mut self, slot: u32) -> bool {
        if self.batch == Batch::Single {
            return false;
        }
        let open =
            self.pipes.is_empty() && self.conns[slot as usize].as_ref().is_some_and(|c| !c.is_closed());
        if !open {
            self.undefer(slot);
            return false;
        }
        self.batch = Batch::Deferred(slot);
        true
    }

    /// `slot`'s packet is accounted now (the caller touches it): its run's earlier packets
    /// with it, so nothing of it waits any longer.
    pub(super) fn undefer(&mut self, slot: u32) {
        if self.batch == Batch::Deferred(slot) {
            self.batch = Batch::Open;
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::super::harness::Net;
    use super::*;
    use crate::wire::Invariant;

    /// Two endpoints, the client connected to the server twice over (two connections from
    /// one address; the server traced if `traced`), and what the client then sends:
    /// `messages` of `len` bytes on each connection, as datagrams, `interleaved` (one from
    /// each connection in turn) or as the client gave them (a run for each connection).
    fn two_connections_sending(
        messages: usize,
        len: usize,
        interleaved: bool,
        traced: bool,
    ) -> (Net, Vec<BytesMut>) {
        let mut net = Net::new(vec![Config::default(), Config::default()]);
        if traced {
            // The seed `Net::new` gives the second endpoint.
            net.eps[1] = Endpoint::new_traced(Config::default(), 2);
        }
        let server = net.addrs[1];
        let a = net.eps[0].connect(net.now, server).unwrap();
        let b = net.eps[0].connect(net.now, server).unwrap();
        net.run_until(Instant::from_micros(100_000));
        for i in 0..messages {
            for c in [a, b] {
                let data = Bytes::from(vec![i as u8; len]);
                net.eps[0].send_message(c, None, data).unwrap();
            }
        }
        let mut sent = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = net.eps[0].poll_transmit(net.now, &mut buf) {
            assert_eq!(t.destination, server);
            sent.push(BytesMut::from(&buf[..t.len]));
        }
        if !interleaved {
            return (net, sent);
        }
        let cid = |d: &BytesMut| Invariant::parse(d).unwrap().dcid;
        let first = cid(&sent[0]);
        let (mut x, mut y): (Vec<_>, Vec<_>) = sent.into_iter().partition(|d| cid(d) == first);
        assert!(!x.is_empty() && !y.is_empty(), "both connections sent");
        let mut out = Vec::new();
        while !x.is_empty() || !y.is_empty() {
            for side in [&mut x, &mut y] {
                if !side.is_empty() {
                    out.push(side.remove(0));
                }
            }
        }
        (net, out)
    }

    /// Everything the server gives after its input: its events, its datagrams (with where
    /// each goes), its next deadline and its counters.
    type Outputs = (
        Vec<Event>,
        Vec<(SocketAddr, Vec<u8>)>,
        Option<Instant>,
        EndpointStats,
    );

    /// The server's [`Outputs`] as they stand.
    fn outputs(net: &mut Net) -> Outputs {
        let ep = &mut net.eps[1];
        let events = core::iter::from_fn(|| ep.poll_event()).collect();
        let mut buf = [0u8; 1500];
        let mut sent = Vec::new();
        while let Some(t) = ep.poll_transmit(net.now, &mut buf) {
            sent.push((t.destination, buf[..t.len].to_vec()));
        }
        (events, sent, ep.poll_timeout(), ep.stats())
    }

    /// Datagrams for two connections, in runs (several packets of one connection in a row),
    /// interleaved, or in runs with a packet that does not authenticate: handed over as one
    /// batch, the server gives exactly what it gives when they are handed over one at a
    /// time (the same events in the same order, the same datagrams, deadline and counters),
    /// and it ends with nothing waiting.
    #[test]
    fn a_batch_gives_what_its_datagrams_one_at_a_time_give() {
        for (interleaved, corrupt) in [(false, false), (true, false), (false, true)] {
            for (messages, len) in [(4, 700), (12, 1_000)] {
                let (mut one, mut datagrams) = two_connections_sending(messages, len, interleaved, false);
                let (mut batched, mut same) = two_connections_sending(messages, len, interleaved, false);
                if corrupt {
                    // A packet in the middle of a run that does not authenticate: its
                    // connection is accounted at once, with the run so far.
                    for d in [&mut datagrams[1], &mut same[1]] {
                        let at = d.len() - 5;
                        d[at] ^= 0x40;
                    }
                }
                assert_eq!(datagrams, same, "the two nets are alike");
                assert!(datagrams.len() >= 4, "{}", datagrams.len());
                let (from, now) = (one.addrs[0], one.now);
                for d in datagrams {
                    one.eps[1].handle_datagram(now, from, d);
                }
                batched.eps[1].handle_datagrams(now, from, same);
                assert_eq!(batched.eps[1].batch, Batch::Single, "nothing left waiting");
                let (one, batched) = (outputs(&mut one), outputs(&mut batched));
                assert!(one.0.len() >= 4, "{:?}", one.0);
                let dropped = one.3.dropped_unauthenticated + one.3.dropped_malformed;
                assert_eq!(dropped > 0, corrupt, "{:?}", one.3);
                assert_eq!(one, batched);
            }
        }
    }

    /// The client of [`Net::connected`], the server's datagrams to it waiting: a message of
    /// three packets, then the server's answer to the client's reservation (a relay frame;
    /// the server is no relay, so a refusal) with a second message in the same packet.
    fn a_relay_answer_after_data() -> (Net, Vec<BytesMut>) {
        let (mut net, relay) = Net::connected();
        let served = net.served();
        let mut to_client = Vec::new();
        let server_sends = |net: &mut Net, to: &mut Vec<BytesMut>| {
            let mut buf = [0u8; 1500];
            while let Some(t) = net.eps[1].poll_transmit(net.now, &mut buf) {
                to.push(BytesMut::from(&buf[..t.len]));
            }
        };
        net.eps[1]
            .send_message(served, None, Bytes::from(vec![1u8; 3_000]))
            .unwrap();
        server_sends(&mut net, &mut to_client);
        let data_packets = to_client.len();
        net.eps[0].reserve(relay).unwrap();
        let (client, now) = (net.addrs[0], net.now);
        let mut buf = [0u8; 1500];
        while let Some(t) = net.eps[0].poll_transmit(now, &mut buf) {
            net.eps[1].handle_datagram(now, client, BytesMut::from(&buf[..t.len]));
        }
        net.eps[1]
            .send_message(served, None, Bytes::from(vec![2u8; 100]))
            .unwrap();
        server_sends(&mut net, &mut to_client);
        assert!(
            data_packets >= 2 && to_client.len() == data_packets + 1,
            "{to_client:?}"
        );
        while net.eps[0].poll_event().is_some() {}
        (net, to_client)
    }

    /// Relay frames in a run settle the run's earlier packets before their packet is
    /// handled: what the earlier packets brought comes first, then what the relay frames
    /// did, then the rest of their packet, as one datagram at a time gives.
    #[test]
    fn relay_frames_in_a_run_keep_the_order_one_at_a_time_gives() {
        let (mut one, datagrams) = a_relay_answer_after_data();
        let (mut batched, same) = a_relay_answer_after_data();
        assert_eq!(datagrams, same, "the two nets are alike");
        let now = one.now;
        let server = one.addrs[1];
        for d in datagrams {
            one.eps[0].handle_datagram(now, server, d);
        }
        batched.eps[0].handle_datagrams(now, server, same);
        let client = |net: &mut Net| {
            let ep = &mut net.eps[0];
            core::iter::from_fn(|| ep.poll_event()).collect::<Vec<_>>()
        };
        let (one, batched) = (client(&mut one), client(&mut batched));
        let refused = one.iter().position(|e| matches!(e, Event::RelayRefused { .. }));
        let opened: Vec<usize> = (0..one.len())
            .filter(|&i| matches!(one[i], Event::StreamOpened { .. }))
            .collect();
        assert!(
            matches!((refused, &opened[..]), (Some(r), [a, b]) if a < &r && &r < b),
            "the refusal between the two messages: {one:?}"
        );
        assert_eq!(one, batched);
    }

    /// Only a batch defers: one datagram at a time, each packet's bookkeeping is done before
    /// the call returns (its connection is offered a turn to send at once); inside a batch
    /// a packet's waits, and the batch's end settles it.
    #[test]
    fn only_a_batch_defers_and_it_ends_settled() {
        let (mut net, datagrams) = two_connections_sending(4, 700, false, false);
        let (from, now) = (net.addrs[0], net.now);
        let ep = &mut net.eps[1];
        ep.handle_datagram(now, from, datagrams[0].clone());
        assert_eq!(ep.batch, Batch::Single);
        assert_eq!(ep.ready.len(), 1, "accounted: its connection may send");
        ep.ready.clear();
        ep.marks.iter_mut().for_each(|m| m.queued = false);
        ep.batch = Batch::Open;
        ep.receive(now, from, datagrams[1].clone());
        assert!(matches!(ep.batch, Batch::Deferred(_)), "{:?}", ep.batch);
        assert!(ep.ready.is_empty(), "its bookkeeping waits for the run's end");
        ep.settle_deferred();
        assert_eq!(ep.ready.len(), 1);
        ep.batch = Batch::Single;
        ep.handle_datagrams(now, from, datagrams[2..].iter().cloned());
        assert_eq!(ep.batch, Batch::Single);
    }

    /// A traced endpoint records a batch as one input (spec/trace.md §3.1), and its trace
    /// replays: the replayer hands the datagrams over together and gets the same outputs.
    #[test]
    fn a_traced_batch_is_one_record_and_replays() {
        let (mut net, datagrams) = two_connections_sending(6, 700, true, true);
        let (from, now) = (net.addrs[0], net.now);
        let again = datagrams[0].clone();
        let again_hex: alloc::string::String = again.iter().map(|b| alloc::format!("{b:02x}")).collect();
        net.eps[1].handle_datagrams(now, from, datagrams);
        let _ = outputs(&mut net);
        // A batch of one is recorded as the one datagram it is; an empty one not at all.
        net.eps[1].handle_datagrams(now, from, [again]);
        net.eps[1].handle_datagrams(now, from, []);
        let _ = outputs(&mut net);
        let ep = &mut net.eps[1];
        let trace = ep.take_trace();
        let kind = |k: &'static str| trace.lines().filter(move |l| l.split(' ').nth(1) == Some(k));
        assert_eq!(kind("batch").count(), 1, "{trace}");
        let alone = kind("in").filter(|l| l.ends_with(&again_hex)).count();
        assert_eq!(alone, 1, "{trace}");
        let secrets = ep.trace_secrets();
        crate::trace::replay_with_secrets(&trace, secrets.as_ref(), |_| {}).expect("the trace replays");
    }
}
