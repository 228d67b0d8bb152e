//! The `router` fuzz target (feature `fuzzing`; fuzz/README.md): the shards' [`Router`]
//! sorting what one shard's socket received (module `shards`; spec/protocol.md §3.3,
//! routing among shards).
//!
//! Input: one fuzzer input, read as the endpoint's shard count (1 to 8), the shard that
//! received, and up to 16 receives, each a source and a buffer with its stride, as a GRO
//! receive hands them over: datagrams of the stride back to back, the last possibly
//! shorter, each a HELLO, a datagram whose destination id names a shard (or no shard), a
//! relayed datagram, or bytes as they come; or a buffer and a stride as they come.
//! Output: none; the oracles below panic.
//!
//! Oracles, on every input:
//! - nothing is lost, made up or copied twice: cut at their strides, the receives that
//!   stay and the datagrams sent away are the receives' datagrams, each once;
//! - each goes where its header says: a destination id whose first byte is a shard's
//!   number to that shard, the rest (a HELLO, a runt, an id of no shard, a relayed
//!   datagram whose circuit no shard holds) stays;
//! - what stays keeps its order, and so do the datagrams for each other shard.
//!
//! Not reached: a relayed datagram whose circuit another shard holds (these shards hold
//! no circuit), and the forwarding itself, which hands datagrams to the shards' cores as
//! the `endpoint` and `hostile` targets do.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::num::NonZeroU8;
use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use bytes::BytesMut;
use weir_core::wire::{write_relay_header, CircuitId};
use weir_core::{Config, Identity, Seed};

use crate::shards::{shard_configs, Received, Router};
use crate::{Driver, Runtime, Shared, Urgency};

/// The most shards an input asks for.
const MAX_SHARDS: u8 = 8;
/// The most receives in one input.
const MAX_RECEIVES: usize = 16;
/// The most datagrams in one generated receive.
const MAX_BATCH: usize = 8;

/// A runtime that is never woken: the router's sort calls no driver but to ask whether it
/// holds a relayed datagram's circuit.
struct Still;

impl Runtime for Still {
    fn changed(&self, _: &mut Driver, _: Urgency) {}
}

thread_local! {
    /// One router per shard count, built once: sorting changes no shard.
    static ROUTERS: RefCell<Vec<Option<Arc<Router>>>> = RefCell::new(vec![None; usize::from(MAX_SHARDS) + 1]);
}

/// The router of `n` shards of one endpoint, on their configs' prefixes.
fn router(n: u8) -> Arc<Router> {
    ROUTERS.with(|r| {
        let mut r = r.borrow_mut();
        Arc::clone(r[usize::from(n)].get_or_insert_with(|| {
            let local = SocketAddr::from(([127, 0, 0, 1], 4433));
            let config = Config {
                identity: Some(Identity::from_seed(&Seed::from(7u64))),
                ..Config::default()
            };
            let shards = shard_configs(config, NonZeroU8::new(n).expect("at least one shard"))
                .into_iter()
                .map(|c| Shared::new(Driver::new(c, local), local, Box::new(Still)))
                .collect();
            Router::new(shards)
        }))
    })
}

/// Runs one input: panics if an oracle fails.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((shards, here, received)) = input(&mut u) else {
        return;
    };
    check(shards, here, received);
}

/// Reads the shard count, the receiving shard and the receives from `u`.
fn input(u: &mut Unstructured<'_>) -> Result<(u8, usize, Vec<Received>)> {
    let shards = u.int_in_range(1..=MAX_SHARDS)?;
    let here = usize::from(u.int_in_range(0..=shards - 1)?);
    let mut received = Vec::new();
    while received.len() < MAX_RECEIVES && !u.is_empty() {
        let from = SocketAddr::from(([10, 0, 0, u.arbitrary::<u8>()?], u.arbitrary::<u16>()?));
        let (buf, stride) = if u.ratio(1u8, 8)? {
            // As they come: any bytes, any stride (0 is one datagram).
            let len = u.int_in_range(0..=512usize)?;
            (u.bytes(len)?.to_vec(), u.int_in_range(0..=600usize)?)
        } else {
            batch(u, shards)?
        };
        received.push((from, BytesMut::from(&buf[..]), stride));
    }
    Ok((shards, here, received))
}

/// A GRO receive: datagrams of one stride back to back, the last possibly shorter.
fn batch(u: &mut Unstructured<'_>, shards: u8) -> Result<(Vec<u8>, usize)> {
    let stride = u.int_in_range(1..=64usize)?;
    let count = u.int_in_range(1..=MAX_BATCH)?;
    let mut buf = Vec::new();
    for i in 0..count {
        let len = if i + 1 == count {
            u.int_in_range(1..=stride)?
        } else {
            stride
        };
        let mut d = vec![0u8; len];
        match u.int_in_range(0u8..=3)? {
            // A destination id whose first byte may name a shard, or one past the last.
            0 | 1 => {
                let mut id = [0u8; 8];
                u.fill_buffer(&mut id)?;
                id[0] = u.int_in_range(0..=shards)?;
                let header = [&[0, 1, 0][..], &id[..]].concat();
                let n = header.len().min(len);
                d[..n].copy_from_slice(&header[..n]);
            }
            // A HELLO: destination id zero.
            2 => {
                let n = 3.min(len);
                d[..n].copy_from_slice(&[0, 1, 0x80][..n]);
            }
            // A relayed datagram (too short for its header, it is none).
            _ => {
                let mut circuit = [0u8; 8];
                u.fill_buffer(&mut circuit)?;
                let _ = write_relay_header(&mut d, CircuitId(circuit));
            }
        }
        buf.extend_from_slice(&d);
    }
    Ok((buf, stride))
}

/// Where the module's rules send `d`, received by `here`, among `shards` that hold no
/// circuit: written apart from the router's own code.
fn expected_owner(d: &[u8], here: usize, shards: usize) -> usize {
    if weir_core::wire::read_relay_header(d).is_some() {
        return here;
    }
    match d.get(3..11) {
        Some(id) if id.iter().any(|&b| b != 0) && usize::from(id[0]) < shards => usize::from(id[0]),
        _ => here,
    }
}

/// `buf` cut at `stride` (0: whole), as a GRO receive is.
fn cut(buf: &[u8], stride: usize) -> Vec<Vec<u8>> {
    let stride = if stride == 0 { buf.len().max(1) } else { stride };
    buf.chunks(stride).map(<[u8]>::to_vec).collect()
}

/// What the router hands on to other shards: each datagram with its shard.
type Away = Vec<(usize, SocketAddr, BytesMut)>;

/// Sorts `received` with the router of `shards` at `here`, and checks the oracles.
fn check(shards: u8, here: usize, received: Vec<Received>) {
    let router = router(shards);
    check_sort(shards, here, received, |kept, away| router.sort(here, kept, away));
}

/// Sorts `received` with `sort` as shard `here` of `shards`, and checks the oracles.
fn check_sort(
    shards: u8,
    here: usize,
    received: Vec<Received>,
    sort: impl FnOnce(&mut Vec<Received>, &mut Away),
) {
    let n = usize::from(shards);
    let mut stays = Vec::new();
    let mut goes = Vec::new();
    for (from, buf, stride) in &received {
        for d in cut(buf, *stride) {
            match expected_owner(&d, here, n) {
                k if k == here => stays.push((*from, d)),
                k => goes.push((k, *from, d)),
            }
        }
    }
    let mut kept = received;
    let mut away = Vec::new();
    sort(&mut kept, &mut away);
    let kept: Vec<(SocketAddr, Vec<u8>)> = kept
        .iter()
        .flat_map(|(from, buf, stride)| cut(buf, *stride).into_iter().map(move |d| (*from, d)))
        .collect();
    assert_eq!(
        kept, stays,
        "shard {here} of {n} kept other datagrams than its own, or not in their order"
    );
    let away: Vec<(usize, SocketAddr, Vec<u8>)> = away
        .into_iter()
        .map(|(k, from, d)| (k, from, d.to_vec()))
        .collect();
    assert_eq!(
        away, goes,
        "shard {here} of {n} sent other datagrams away than those for other shards, or not in their order"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(shard: u8) -> Vec<u8> {
        let mut d = vec![0, 1, 0, shard, 1, 2, 3, 4, 5, 6, 7];
        d.extend_from_slice(&[9; 9]);
        d
    }

    /// One receive from one source: datagrams for shards 0, 1, 0, 3 (no such shard of 2)
    /// and 1, cut at their stride.
    fn received() -> Vec<Received> {
        let from = SocketAddr::from(([10, 0, 0, 1], 1));
        let buf = [to(0), to(1), to(0), to(3), to(1)].concat();
        vec![(from, BytesMut::from(&buf[..]), to(0).len())]
    }

    #[test]
    fn the_router_passes() {
        check(2, 0, received());
        check(2, 1, received());
    }

    #[test]
    #[should_panic(expected = "kept other datagrams than its own")]
    fn the_oracle_fires_on_a_sort_that_keeps_everything() {
        check_sort(2, 0, received(), |_, _| {});
    }

    #[test]
    #[should_panic(expected = "sent other datagrams away")]
    fn the_oracle_fires_on_a_datagram_lost_on_its_way() {
        let router = router(2);
        check_sort(2, 0, received(), |kept, away| {
            router.sort(0, kept, away);
            away.pop();
        });
    }

    #[test]
    #[should_panic(expected = "kept other datagrams than its own, or not in their order")]
    fn the_oracle_fires_on_a_sort_that_reorders() {
        let router = router(2);
        check_sort(2, 0, received(), |kept, away| {
            router.sort(0, kept, away);
            kept.reverse();
        });
    }

    #[test]
    fn a_hello_a_runt_and_a_relayed_datagram_stay() {
        let mut relayed = vec![0u8; 30];
        write_relay_header(&mut relayed, CircuitId([1; 8])).unwrap();
        for d in [
            vec![0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 5],
            vec![0, 1, 0],
            relayed,
        ] {
            assert_eq!(expected_owner(&d, 1, 4), 1, "{d:?}");
        }
        assert_eq!(expected_owner(&to(3), 1, 4), 3);
        assert_eq!(expected_owner(&to(4), 1, 4), 1);
    }
}
