//! A property test of piping (spec §8, Piping and Delivery) in weir-sim: over seeds, a
//! sender, a chain of one to three relays and one or two receivers behind the last, each hop
//! with its own loss, bursts, duplication, reordering, corruption and delay, and at times an
//! outage on one hop, short or past the idle timeout. The oracle is the end-to-end promise:
//! a receiver reads only messages the sender sent, intact and once; the sender hears
//! "delivered" only for a message a receiver has whole; every message the sender sent ends
//! at the sender with a verdict, a stop or a typed close; and where no connection was lost,
//! every receiver has every message. Sweeps of more cases: tests/README.md, "Sweeps".

mod pipe_world;
mod sweep;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use proptest::prelude::*;
use weir_core::time::Duration;
use weir_core::wire::StreamId;
use weir_core::{ApiError, CloseReason, Config, Delivery, Event};
use weir_sim::{LinkConfig, NodeId, Sim};

use pipe_world::{chain, World};
use sweep::{hop, Hop, Outage};

/// One case: its inputs, as proptest prints them.
#[derive(Clone, Debug)]
struct PipeCase {
    seed: u64,
    relays: usize,
    receivers: usize,
    hops: Vec<Hop>,
    sizes: Vec<usize>,
    verified: bool,
    outage: Option<Outage>,
}

/// What the sender heard of its messages, and every connection that ended.
#[derive(Default)]
struct Heard {
    /// Stream ids of the messages sent, in the order of `sizes`.
    streams: Vec<StreamId>,
    /// Messages not yet taken by the send buffer.
    waiting: VecDeque<usize>,
    verdicts: BTreeMap<StreamId, Delivery>,
    stopped: BTreeMap<StreamId, u64>,
    /// Every `Closed`, by node.
    closed: Vec<(NodeId, CloseReason)>,
}

impl PipeCase {
    /// The hops' node pairs: the chain, then the last relay to each receiver.
    fn hop_nodes(&self) -> Vec<(NodeId, NodeId)> {
        let chain = (0..self.relays).map(|i| (i, i + 1));
        let fan = (0..self.receivers).map(|r| (self.relays, self.relays + 1 + r));
        chain.chain(fan).collect()
    }

    /// Builds the chain on clean links, impairs each hop, sends every message as the send
    /// buffer takes it, and runs until the sender heard of each and every receiver has each
    /// (or a connection ended and all is quiet), for at most `limit`.
    fn run(&self, limit: Duration) -> (Sim, RefCell<World>, Heard, Vec<Bytes>) {
        let clean = LinkConfig {
            delay: Duration::from_millis(5),
            ..LinkConfig::default()
        };
        let (mut sim, world, conn) = chain(self.seed, self.relays, self.receivers, clean, Config::default());
        for (&(a, b), hop) in self.hop_nodes().iter().zip(&self.hops) {
            sim.change_link_one_way(a, b, hop.link());
            sim.change_link_one_way(b, a, hop.link());
        }
        let start = sim.now();
        if let Some(o) = self.outage {
            let (a, b) = self.hop_nodes()[o.hop];
            let from = start + Duration::from_millis(o.from_ms);
            sim.partition(a, b, from, from + Duration::from_millis(o.for_ms));
        }
        let msgs = sweep::messages(&self.sizes);
        let heard = RefCell::new(Heard {
            waiting: (0..msgs.len()).collect(),
            ..Heard::default()
        });
        let send = |sim: &mut Sim, heard: &mut Heard| {
            while let Some(&m) = heard.waiting.front() {
                let ep = sim.endpoint(0);
                let sent = if self.verified {
                    ep.send_verified_message(conn, None, msgs[m].clone())
                } else {
                    ep.send_message(conn, None, msgs[m].clone())
                };
                match sent {
                    Ok(stream) => {
                        heard.streams.push(stream);
                        heard.waiting.pop_front();
                    }
                    Err(ApiError::WouldBlock | ApiError::StreamLimit) => break,
                    Err(e) => panic!("message {m}: {e:?}"),
                }
            }
        };
        send(&mut sim, &mut heard.borrow_mut());
        let receivers: Vec<NodeId> = (0..self.receivers).map(|r| self.relays + 1 + r).collect();
        sim.run_until(
            start + limit,
            |sim, node, e| {
                let mut h = heard.borrow_mut();
                match &e {
                    Event::Closed { reason, .. } => h.closed.push((node, reason.clone())),
                    Event::StreamDelivery { stream, delivery, .. } if node == 0 => {
                        h.verdicts.insert(*stream, *delivery);
                    }
                    Event::StreamStopped { stream, code, .. } if node == 0 => {
                        h.stopped.insert(*stream, *code);
                    }
                    Event::Writable { .. } | Event::StreamsAvailable { .. } if node == 0 => send(sim, &mut h),
                    _ => {}
                }
                drop(h);
                world.borrow_mut().on_event(sim, node, e);
            },
            |_| {
                let h = heard.borrow();
                let w = world.borrow();
                let sender_done = h.waiting.is_empty()
                    && h.streams
                        .iter()
                        .all(|s| h.verdicts.contains_key(s) || h.stopped.contains_key(s));
                let sender_gone = h.closed.iter().any(|(n, _)| *n == 0);
                let all_read = receivers
                    .iter()
                    .all(|r| w.received.get(r).map_or(0, Vec::len) == msgs.len());
                sender_gone || (sender_done && (all_read || !h.closed.is_empty()))
            },
        );
        (sim, world, heard.into_inner(), msgs)
    }
}

fn case() -> impl Strategy<Value = PipeCase> {
    (1usize..=3, 1usize..=2)
        .prop_flat_map(|(relays, receivers)| {
            let hops = relays + receivers;
            (
                any::<u64>(),
                Just(relays),
                Just(receivers),
                proptest::collection::vec(hop(), hops),
                proptest::collection::vec(1usize..200_000, 1..8),
                any::<bool>(),
                sweep::outage(hops),
            )
        })
        .prop_map(
            |(seed, relays, receivers, hops, sizes, verified, outage)| PipeCase {
                seed,
                relays,
                receivers,
                hops,
                sizes,
                verified,
                outage,
            },
        )
}

/// Checks the end-to-end promise for one finished case.
fn check(case: &PipeCase, world: &World, heard: &Heard, msgs: &[Bytes]) -> Result<(), TestCaseError> {
    let receivers: Vec<NodeId> = (0..case.receivers).map(|r| case.relays + 1 + r).collect();
    prop_assert!(
        world.corrupt.is_empty(),
        "a read failed its digest: {:?}",
        world.corrupt
    );
    for (node, reason) in &heard.closed {
        prop_assert!(sweep::explained(reason), "node {} closed: {:?}", node, reason);
    }
    for r in &receivers {
        let got = world.received.get(r).map_or(&[][..], Vec::as_slice);
        for (i, bytes) in got.iter().enumerate() {
            prop_assert!(
                msgs.contains(bytes),
                "receiver {r} read a message nobody sent ({} bytes)",
                bytes.len()
            );
            prop_assert!(!got[..i].contains(bytes), "receiver {r} read a message twice");
        }
    }
    for (m, stream) in heard.streams.iter().enumerate() {
        match heard.verdicts.get(stream) {
            Some(Delivery::Delivered { relays }) => {
                prop_assert_eq!(*relays as usize, case.relays, "message {}'s receipt", m);
                prop_assert!(
                    receivers
                        .iter()
                        .any(|r| world.received.get(r).is_some_and(|g| g.contains(&msgs[m]))),
                    "message {} reported delivered, and no receiver has it",
                    m
                );
            }
            Some(Delivery::Failed { .. }) => {}
            None => prop_assert!(
                heard.stopped.contains_key(stream) || heard.closed.iter().any(|(n, _)| *n == 0),
                "message {} ended with no word at the sender (closed: {:?})",
                m,
                heard.closed
            ),
        }
    }
    if heard.closed.is_empty() {
        prop_assert!(
            heard.waiting.is_empty(),
            "{} messages never sent",
            heard.waiting.len()
        );
        for r in &receivers {
            let got = world.received.get(r).map_or(0, Vec::len);
            prop_assert_eq!(
                got,
                msgs.len(),
                "receiver {} has {} of {}; no connection was lost",
                r,
                got,
                msgs.len()
            );
        }
        for (m, stream) in heard.streams.iter().enumerate() {
            prop_assert_eq!(
                heard.verdicts.get(stream),
                Some(&Delivery::Delivered {
                    relays: case.relays as u64
                }),
                "message {}",
                m
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(sweep::sweep(16))]

    /// Over seeds, chains, hops and outages: the end-to-end promise holds (module doc).
    #[test]
    fn piped_messages_arrive_intact_and_the_sender_hears_the_truth(case in case()) {
        let (_, world, heard, msgs) = case.run(Duration::from_secs(300));
        check(&case, &world.borrow(), &heard, &msgs)?;
    }
}
