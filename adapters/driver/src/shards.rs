//! The shards of one endpoint: several drivers on one address, each with a socket and a
//! core endpoint of its own, so that one endpoint's connections spread over cores
//! (spec/protocol.md §3.3, routing among shards).
//!
//! Inputs: what one shard's socket received. Outputs: the same datagrams, each handed to
//! the shard that holds its connection. The operating system picks a socket by a hash of
//! the datagram's addresses (`SO_REUSEPORT`, [`bind_sockets`](crate::bind_sockets)): the
//! right shard for connections peers opened to us, but not always for the ones a shard
//! opened (the peer answers the one shared address, whichever shard wrote), nor after a
//! peer's address changed. So each shard fixes the first byte of the ids it chooses to its
//! number ([`shard_configs`]), and that byte names the shard. A HELLO (destination id zero)
//! stays where it arrived. A relayed datagram, whose id the relay chose, goes to the shard
//! that holds its circuit (`Endpoint::holds_destination`), or stays where it arrived if
//! none does.
//!
//! The router holds one shard's lock at a time, never two, and never the receiving
//! shard's while it sorts: two shards forwarding to each other cannot deadlock. A
//! forwarded datagram is handled on the receiving shard's thread, under the owner's lock;
//! the owner's loop is then told to send what the core wrote in answer.

use std::net::SocketAddr;
use std::num::NonZeroU8;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use smallvec::SmallVec;
use weir_core::{Config, Identity};

use crate::Shared;

/// The configs of `shards` shards of one endpoint: each with its number as its ids' first
/// byte (`Config::connection_id_prefix`), and all with one identity, the configured one or,
/// if none, one new identity from the operating system's generator, so that peers see one
/// endpoint whichever shard answers them. Each shard holds the config's limits
/// (`max_connections`, the buffer totals, ...) on its own: together they hold `shards`
/// times as much.
pub fn shard_configs(config: Config, shards: NonZeroU8) -> Vec<Config> {
    let identity = config.identity.clone().unwrap_or_else(|| {
        let local = SocketAddr::from(([0, 0, 0, 0], 0));
        Identity::from_seed(&crate::driver::os_seed(local))
    });
    (0..shards.get())
        .map(|i| Config {
            identity: Some(identity.clone()),
            connection_id_prefix: Some(i),
            ..config.clone()
        })
        .collect()
}

/// Hands each datagram a shard received to the shard it is for (module docs). Shard `i`
/// of [`Router::new`]'s list must use prefix `i` ([`shard_configs`]).
pub struct Router {
    shards: Vec<Arc<Shared>>,
    forwarded: AtomicU64,
}

/// Where a datagram goes, from its header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The shard that received it: a HELLO, anything too short to name a connection, or
    /// an id with no shard's prefix (which that shard drops or answers as any endpoint).
    Here,
    /// The shard whose prefix the destination id carries.
    Shard(usize),
    /// A relayed datagram: the shard that holds its circuit.
    Holder,
}

fn route(datagram: &[u8], shards: usize) -> Route {
    if weir_core::wire::read_relay_header(datagram).is_some() {
        return Route::Holder;
    }
    match datagram.get(3..11) {
        Some(id) if id != [0; 8] && usize::from(id[0]) < shards => Route::Shard(usize::from(id[0])),
        _ => Route::Here,
    }
}

/// What a shard's socket received: the source, the datagrams back to back, their stride
/// (as [`Driver::handle_received`](crate::Driver::handle_received) takes them).
pub type Received = (SocketAddr, BytesMut, usize);

impl Router {
    /// A router for `shards`, the drivers of one endpoint's shards, shard `i` at index `i`.
    pub fn new(shards: Vec<Arc<Shared>>) -> Arc<Router> {
        Arc::new(Router {
            shards,
            forwarded: AtomicU64::new(0),
        })
    }

    /// How many datagrams were handed from the shard that received them to another.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Leaves in `received` (what shard `here`'s socket received) what is for `here`, and
    /// moves the rest to `away`, each with its shard, cut from its batch uncopied; the order
    /// of what stays is kept. Must be called without `here`'s lock held.
    pub fn sort(
        &self,
        here: usize,
        received: &mut Vec<Received>,
        away: &mut Vec<(usize, SocketAddr, BytesMut)>,
    ) {
        let mut i = 0;
        while i < received.len() {
            let (_, buf, stride) = &received[i];
            let owners: SmallVec<[usize; 8]> = chunks(buf, *stride).map(|d| self.owner(here, d)).collect();
            if owners.iter().all(|&k| k == here) {
                i += 1;
                continue;
            }
            // (Rare: a batch with a datagram for another shard is cut into its datagrams.)
            let (from, buf, stride) = received.remove(i);
            for (datagram, k) in crate::io::datagrams(buf, stride).zip(owners) {
                if k == here {
                    let len = datagram.len();
                    received.insert(i, (from, datagram, len));
                    i += 1;
                } else {
                    away.push((k, from, datagram));
                }
            }
        }
    }

    /// Hands the datagrams [`sort`](Self::sort) set aside to their shards, each shard's
    /// under one lock, and tells each shard's loop what its core wrote in answer. Must be
    /// called with no shard's lock held.
    pub fn forward(&self, away: &mut Vec<(usize, SocketAddr, BytesMut)>) {
        if away.is_empty() {
            return;
        }
        self.forwarded.fetch_add(away.len() as u64, Ordering::Relaxed);
        // Stable: each shard's datagrams keep the order they came in.
        away.sort_by_key(|(k, _, _)| *k);
        while let Some(&(k, _, _)) = away.first() {
            let n = away.iter().take_while(|(j, _, _)| *j == k).count();
            self.shards[k].deliver(away.drain(..n).map(|(_, from, d)| (from, d)));
        }
    }

    /// The shard `datagram`, received by `here`, is for.
    fn owner(&self, here: usize, datagram: &[u8]) -> usize {
        match route(datagram, self.shards.len()) {
            Route::Here => here,
            Route::Shard(k) => k,
            Route::Holder => std::iter::once(here)
                .chain((0..self.shards.len()).filter(|&k| k != here))
                .find(|&k| self.shards[k].driver().holds_destination(datagram))
                .unwrap_or(here),
        }
    }
}

/// The datagrams of one receive, as [`crate::io::datagrams`] cuts them, by reference.
fn chunks(buf: &[u8], stride: usize) -> std::slice::Chunks<'_, u8> {
    buf.chunks(if stride == 0 { buf.len().max(1) } else { stride })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(version: u16, flags: u8, dcid: [u8; 8]) -> Vec<u8> {
        let mut d = version.to_be_bytes().to_vec();
        d.push(flags);
        d.extend_from_slice(&dcid);
        d.extend_from_slice(&[0; 20]);
        d
    }

    #[test]
    fn the_destination_id_s_first_byte_names_the_shard() {
        assert_eq!(
            route(&datagram(1, 0, [2, 9, 9, 9, 9, 9, 9, 9]), 4),
            Route::Shard(2)
        );
        assert_eq!(
            route(&datagram(0, 0x80, [3, 1, 1, 1, 1, 1, 1, 1]), 4),
            Route::Shard(3)
        );
        // No shard has that prefix: the receiver deals with it as any endpoint would.
        assert_eq!(route(&datagram(1, 0, [4, 9, 9, 9, 9, 9, 9, 9]), 4), Route::Here);
        // A HELLO names no connection yet; a runt names nothing.
        assert_eq!(route(&datagram(1, 0x80, [0; 8]), 4), Route::Here);
        assert_eq!(route(&[0, 1, 0, 2], 4), Route::Here);
        // A relayed datagram's id is the relay's: its circuit's holder takes it.
        let mut relayed = vec![0u8; 30];
        weir_core::wire::write_relay_header(&mut relayed, weir_core::wire::CircuitId([2; 8])).unwrap();
        assert_eq!(route(&relayed, 4), Route::Holder);
    }

    struct Quiet;

    impl crate::Runtime for Quiet {
        fn changed(&self, _: &mut crate::Driver, _: crate::Urgency) {}
    }

    #[test]
    fn a_batch_is_cut_only_where_a_datagram_is_for_another_shard() {
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let configs = shard_configs(Config::default(), NonZeroU8::new(2).unwrap());
        let shards = configs
            .into_iter()
            .map(|c| Shared::new(crate::Driver::new(c, local), local, Box::new(Quiet)))
            .collect();
        let router = Router::new(shards);
        let from: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let to = |shard: u8| datagram(1, 0, [shard, 1, 2, 3, 4, 5, 6, 7]);
        // A GRO batch of three equal-size datagrams for shards 0, 1, 0; one datagram for 1;
        // a batch wholly for 0.
        let batch =
            |shards: &[u8]| BytesMut::from(&shards.iter().flat_map(|&k| to(k)).collect::<Vec<u8>>()[..]);
        let stride = to(0).len();
        let mut received = vec![
            (from, batch(&[0, 1, 0]), stride),
            (from, batch(&[1]), stride),
            (from, batch(&[0, 0]), stride),
        ];
        let mut away = Vec::new();
        router.sort(0, &mut received, &mut away);
        let kept: Vec<(usize, u8)> = received
            .iter()
            .map(|(_, b, _)| (b.len() / stride, b[3]))
            .collect();
        assert_eq!(
            kept,
            [(1, 0), (1, 0), (2, 0)],
            "order kept, the whole batch uncut"
        );
        let sent: Vec<(usize, u8)> = away.iter().map(|(k, _, d)| (*k, d[3])).collect();
        assert_eq!(sent, [(1, 1), (1, 1)]);
        router.forward(&mut away);
        assert!(away.is_empty());
        assert_eq!(router.forwarded(), 2);
    }

    #[test]
    fn shards_share_one_identity_and_each_has_its_prefix() {
        let configs = shard_configs(Config::default(), NonZeroU8::new(3).unwrap());
        let keys: Vec<_> = configs
            .iter()
            .map(|c| c.identity.as_ref().map(Identity::public_key))
            .collect();
        assert!(keys[0].is_some() && keys.iter().all(|k| *k == keys[0]));
        let prefixes: Vec<_> = configs.iter().map(|c| c.connection_id_prefix).collect();
        assert_eq!(prefixes, [Some(0), Some(1), Some(2)]);
    }
}
