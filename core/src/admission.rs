//! Admission: whether a HELLO that would create a connection gets one (spec/protocol.md §10).
//!
//! Inputs: the HELLO's source address, client connection id and token, the time, and the
//! endpoint's load (handshakes in progress, connections held). Output: an [`Admission`] —
//! admit (the address validated or not), answer with a stateless RETRY carrying a token,
//! reject, or drop without a word; and what tells one HELLO from another ([`HelloKey`]), so
//! that a duplicate gets the same answer and an altered copy one of its own. Besides, the protocol violations each address committed
//! (reported by the endpoint when it closes a connection for one) and the connections each
//! address holds.
//!
//! - **Address validation** (§10.1; RFC 9000 §8.1 is the model). A token is a keyed MAC over
//!   the client's address and connection id and a time slot; its key is derived from the
//!   endpoint's seed and changes every slot, and a token is good in its own slot and the
//!   next. Checking one keeps no state, so a flood of spoofed HELLOs costs a MAC each and
//!   allocates nothing.
//! - **Handshake rate** (§10.3): a token bucket of new connections per second.
//! - **Per-address connections** (§10.3), counted by IP address (ports are free to forge),
//!   an IPv6 address by its first `ipv6_prefix_len` bits (a host rotates through its /64).
//! - **Reputation** (§10.5): each violation counts against the address; from
//!   `ban_after_violations` on, HELLOs from it are dropped for `ban_duration`, doubling with
//!   each further violation up to `max_ban_duration`. An address is forgotten once its ban
//!   (or its last violation) is that long past, and at most `max_tracked_addresses` are
//!   remembered (the one forgotten soonest goes first), so the table is bounded whatever
//!   the number of offenders.

use alloc::collections::{BTreeMap, BTreeSet};
use core::net::{IpAddr, SocketAddr};

use hmac::Mac;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize;

use crate::config::{AddressValidation, Config};
use crate::crypto::keys::{keyed_mac, HmacSha256, Seed};
use crate::pacing::TokenBucket;
use crate::time::Instant;
use crate::wire::{ConnectionId, NoiseHello, RejectReason};

/// What tells one HELLO from another (spec §4.13, §11.2), as the first 16 bytes of a
/// SHA-256 digest: of the address and client connection id it came with and, in version 2,
/// of everything the handshake binds: the prologue (versions, capabilities, token,
/// parameters, pattern, ciphers) and the first Noise message (the client's ephemeral key,
/// new with each attempt). A NOISE_HELLO altered on the way, in any of those, is thus
/// another HELLO, with a half-open connection of its own that times out, and cannot take
/// the place of the genuine one: the genuine copy that follows gets an answer of its own,
/// which the client can open. (A digest, not the fields: the endpoint's index holds one per
/// connection. Two HELLOs that differ share one only by a SHA-256 collision.)
pub(crate) type HelloDigest = [u8; 16];

/// A HELLO's [`HelloDigest`] and the address admission counted it against, which the
/// connection it made keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HelloKey {
    pub(crate) from: IpAddr,
    pub(crate) digest: HelloDigest,
}

impl HelloKey {
    pub(crate) fn new(from: SocketAddr, client: ConnectionId, noise: Option<&NoiseHello>) -> Self {
        let mut h = Sha256::new();
        match from {
            SocketAddr::V4(a) => {
                h.update([4]);
                h.update(a.ip().octets());
                h.update(a.port().to_be_bytes());
            }
            SocketAddr::V6(a) => {
                h.update([6]);
                h.update(a.ip().octets());
                h.update(a.port().to_be_bytes());
                h.update(a.flowinfo().to_be_bytes());
                h.update(a.scope_id().to_be_bytes());
            }
        }
        h.update(client.0);
        if let Some(n) = noise {
            // A prologue that does not encode is refused later anyway: its digest is moot.
            h.update(n.prologue(client).unwrap_or_default());
            h.update(&n.message);
        }
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&h.finalize()[..16]);
        HelloKey {
            from: from.ip(),
            digest,
        }
    }
}

/// Bytes of a RETRY token: the slot's low 32 bits and a 16-byte tag.
pub(crate) const TOKEN_LEN: usize = 4 + TAG_LEN;
const TAG_LEN: usize = 16;

/// A RETRY token (spec §10.1).
pub(crate) type Token = [u8; TOKEN_LEN];

/// What to do with a HELLO for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Create the connection; `validated` if the HELLO carried a good token.
    Admit { validated: bool },
    /// Answer with RETRY and keep nothing.
    Retry(Token),
    /// Answer with REJECT.
    Reject(RejectReason),
    /// Answer nothing.
    Drop(Dropped),
}

/// Why a HELLO was dropped unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Its address is refused for past violations.
    Banned,
    /// The handshake rate is spent (the client's next HELLO may be luckier).
    RateLimited,
}

/// The load an admission decision weighs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    /// Server handshakes in progress (connection state kept for unconfirmed clients).
    pub(crate) pending: usize,
    /// Connections held, in any state.
    pub(crate) connections: usize,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    violations: u32,
    /// HELLOs are dropped until then (if it is in the future).
    banned_until: Instant,
    /// The address is forgotten then (its index key in `expiry`).
    forget_at: Instant,
}

/// Admission state of an endpoint. Its master key is wiped when dropped (the keyed MACs
/// derived from it are hmac's, which has no way to wipe them: they are freed).
#[derive(Debug)]
pub(crate) struct Admissions {
    master: [u8; 32],
    /// The keyed MACs of the last slots used, `(slot, mac)`: deriving a key costs a MAC.
    keys: [Option<(u64, HmacSha256)>; 2],
    rate: TokenBucket,
    per_address: BTreeMap<IpAddr, u32>,
    records: BTreeMap<IpAddr, Record>,
    expiry: BTreeSet<(Instant, IpAddr)>,
    /// Leading bits of an IPv6 address that name one client.
    ipv6_prefix_len: u8,
}

impl Drop for Admissions {
    fn drop(&mut self) {
        self.master.zeroize();
    }
}

impl Admissions {
    /// Keys derive from `seed`: an endpoint whose seed an attacker can guess has tokens the
    /// attacker can forge (spec §10.1).
    pub(crate) fn new(config: &Config, seed: &Seed) -> Self {
        let mut h = Sha256::new();
        h.update(b"weir retry master key");
        h.update(seed.as_bytes());
        Admissions {
            master: h.finalize().into(),
            keys: [None, None],
            rate: TokenBucket::new(Instant::ZERO, handshake_burst(config)),
            per_address: BTreeMap::new(),
            records: BTreeMap::new(),
            expiry: BTreeSet::new(),
            ipv6_prefix_len: config.ipv6_prefix_len.min(128),
        }
    }

    /// The address that stands for `ip` in the counts and bans: `ip` itself, or its IPv6
    /// prefix with the rest zeroed. A circuit address (module `relay`) stands for itself:
    /// every peer behind a relay shares its prefix, and one must not answer for the others.
    fn client(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(_) if crate::relay::is_circuit_ip(ip) => ip,
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.ipv6_prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Decides on a HELLO from `from` (client connection id `client`, `token` possibly
    /// empty). Deciding changes no count: once the connection exists, call
    /// [`admitted`](Self::admitted), and [`release`](Self::release) when it is gone.
    pub(crate) fn decide(
        &mut self,
        config: &Config,
        now: Instant,
        from: SocketAddr,
        client: ConnectionId,
        token: &[u8],
        load: Load,
    ) -> Admission {
        let ip = self.client(from.ip());
        if self.is_banned(now, ip) {
            return Admission::Drop(Dropped::Banned);
        }
        let validated = if token.is_empty() {
            false
        } else if self.check(config, now, from, client, token) {
            true
        } else {
            return Admission::Reject(RejectReason::INVALID_TOKEN);
        };
        let rate_left = self.rate_left(config, now);
        if !validated {
            let ask = match config.address_validation {
                AddressValidation::Off => false,
                AddressValidation::Always => true,
                AddressValidation::UnderLoad { pending } => load.pending >= pending || !rate_left,
            };
            if ask {
                return Admission::Retry(self.mint(config, now, from, client));
            }
        }
        if load.connections >= config.max_connections
            || self.per_address.get(&ip).copied().unwrap_or(0) as usize >= config.max_connections_per_address
        {
            return Admission::Reject(RejectReason::AT_CAPACITY);
        }
        if !rate_left {
            return Admission::Drop(Dropped::RateLimited);
        }
        // Admitted HELLOs go on to the handshake's public-key work, which costs the same
        // whether it then succeeds or not: each takes from the rate now, so HELLOs that fail
        // it (garbage Noise messages) spend the rate too, and a flood of them turns on
        // address validation like any other.
        self.rate.take(1);
        Admission::Admit { validated }
    }

    /// A connection from `ip` was created: it counts against its address.
    pub(crate) fn admitted(&mut self, ip: IpAddr) {
        let ip = self.client(ip);
        *self.per_address.entry(ip).or_insert(0) += 1;
    }

    /// A connection admitted from `ip` is gone.
    pub(crate) fn release(&mut self, ip: IpAddr) {
        let ip = self.client(ip);
        if let Some(n) = self.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&ip);
            }
        }
    }

    /// Connections admitted from `ip` and still held.
    #[cfg(test)]
    pub(crate) fn connections_from(&self, ip: IpAddr) -> u32 {
        self.per_address.get(&self.client(ip)).copied().unwrap_or(0)
    }

    /// Addresses whose violations are remembered.
    pub(crate) fn tracked(&self) -> usize {
        self.records.len()
    }

    /// `ip` broke the protocol (the endpoint closed a connection of it for that).
    pub(crate) fn violation(&mut self, config: &Config, now: Instant, ip: IpAddr) {
        if config.ban_after_violations == 0 || config.max_tracked_addresses == 0 {
            return;
        }
        let ip = self.client(ip);
        self.forget_expired(now);
        let record = match self.records.get(&ip) {
            Some(r) => {
                self.expiry.remove(&(r.forget_at, ip));
                *r
            }
            None => {
                if self.records.len() >= config.max_tracked_addresses {
                    if let Some((_, oldest)) = self.expiry.pop_first() {
                        self.records.remove(&oldest);
                    }
                }
                Record {
                    violations: 0,
                    banned_until: now,
                    forget_at: now,
                }
            }
        };
        let violations = record.violations.saturating_add(1);
        let (banned_until, forget_at) = if violations >= config.ban_after_violations {
            let doublings = (violations - config.ban_after_violations).min(32);
            let ban = config
                .ban_duration
                .saturating_mul(1u64 << doublings)
                .min(config.max_ban_duration);
            // Remembered for another ban's length after it ends: an offence then doubles it.
            (now + ban, now + ban.saturating_mul(2))
        } else {
            (record.banned_until, now + config.ban_duration)
        };
        self.records.insert(
            ip,
            Record {
                violations,
                banned_until,
                forget_at,
            },
        );
        self.expiry.insert((forget_at, ip));
    }

    fn is_banned(&mut self, now: Instant, ip: IpAddr) -> bool {
        self.forget_expired(now);
        self.records.get(&ip).is_some_and(|r| now < r.banned_until)
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some(&(at, ip)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            self.records.remove(&ip);
        }
    }

    fn rate_left(&mut self, config: &Config, now: Instant) -> bool {
        let rate = u64::from(config.max_handshakes_per_second);
        self.rate.delay(now, rate, handshake_burst(config), 1).is_none()
    }

    /// The MAC keyed for `slot`, derived from the master key on first use.
    fn keyed(&mut self, slot: u64) -> HmacSha256 {
        if let Some((_, mac)) = self.keys.iter().flatten().find(|(s, _)| *s == slot) {
            return mac.clone();
        }
        let mut derive = keyed_mac(&self.master);
        derive.update(b"weir retry slot key");
        derive.update(&slot.to_be_bytes());
        let mac = keyed_mac(&derive.finalize().into_bytes().into());
        // Replace the older of the two cached slots.
        let older = match (&self.keys[0], &self.keys[1]) {
            (Some((a, _)), Some((b, _))) => usize::from(b < a),
            (Some(_), None) => 1,
            _ => 0,
        };
        self.keys[older] = Some((slot, mac.clone()));
        mac
    }

    fn tag(&mut self, slot: u64, from: SocketAddr, client: ConnectionId) -> HmacSha256 {
        let mut mac = self.keyed(slot);
        match from.ip() {
            IpAddr::V4(ip) => {
                mac.update(&[4]);
                mac.update(&ip.octets());
            }
            IpAddr::V6(ip) => {
                mac.update(&[6]);
                mac.update(&ip.octets());
            }
        }
        mac.update(&from.port().to_be_bytes());
        mac.update(&client.to_u64().to_be_bytes());
        mac
    }

    /// A token for a client at `from` with connection id `client`, good until the end of
    /// the next slot.
    pub(crate) fn mint(
        &mut self,
        config: &Config,
        now: Instant,
        from: SocketAddr,
        client: ConnectionId,
    ) -> Token {
        let slot = slot_of(config, now);
        let tag = self.tag(slot, from, client).finalize().into_bytes();
        let mut token = [0u8; TOKEN_LEN];
        token[..4].copy_from_slice(&(slot as u32).to_be_bytes());
        token[4..].copy_from_slice(&tag[..TAG_LEN]);
        token
    }

    /// Whether `token` is one we made for this address and client, in this slot or the last.
    fn check(
        &mut self,
        config: &Config,
        now: Instant,
        from: SocketAddr,
        client: ConnectionId,
        token: &[u8],
    ) -> bool {
        let Some((low, tag)) = token.split_first_chunk::<4>() else {
            return false;
        };
        if tag.len() != TAG_LEN {
            return false;
        }
        let current = slot_of(config, now);
        let low = u32::from_be_bytes(*low);
        let Some(slot) = [current, current.wrapping_sub(1)]
            .into_iter()
            .find(|s| *s as u32 == low && *s <= current)
        else {
            return false;
        };
        // Constant-time comparison of the truncated tag.
        self.tag(slot, from, client).verify_truncated_left(tag).is_ok()
    }
}

/// The time slot tokens are made in (`token_lifetime` long).
fn slot_of(config: &Config, now: Instant) -> u64 {
    now.as_micros() / config.token_lifetime.as_micros().max(1)
}

/// A tenth of a second's handshakes may come at once (at least one).
fn handshake_burst(config: &Config) -> u64 {
    (u64::from(config.max_handshakes_per_second) / 10).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const IDLE: Load = Load {
        pending: 0,
        connections: 0,
    };

    /// `decide`, and on `Admit` create the connection as the endpoint would.
    fn admit(
        a: &mut Admissions,
        c: &Config,
        now: Instant,
        from: SocketAddr,
        client: ConnectionId,
        token: &[u8],
        load: Load,
    ) -> Admission {
        let out = a.decide(c, now, from, client, token, load);
        if let Admission::Admit { .. } = out {
            a.admitted(from.ip());
        }
        out
    }

    fn config(validation: AddressValidation) -> Config {
        Config {
            address_validation: validation,
            ..Config::default()
        }
    }

    #[test]
    fn a_token_is_good_for_its_address_client_and_two_slots_only() {
        let c = config(AddressValidation::Always);
        let mut a = Admissions::new(&c, &Seed::from(7));
        let from = addr("10.0.0.1:4000");
        let client = ConnectionId::from_u64(42);
        let t0 = Instant::from_micros(1_000);
        assert_eq!(
            a.decide(&c, t0, from, client, &[], IDLE),
            Admission::Retry(a.mint(&c, t0, from, client))
        );
        let token = a.mint(&c, t0, from, client);
        assert!(a.check(&c, t0, from, client, &token));
        // The next slot still takes it; the one after does not.
        let next = t0 + c.token_lifetime;
        assert!(a.check(&c, next, from, client, &token));
        assert!(!a.check(&c, next + c.token_lifetime, from, client, &token));
        // Another port, another address, another client, another seed: no.
        assert!(!a.check(&c, t0, addr("10.0.0.1:4001"), client, &token));
        assert!(!a.check(&c, t0, addr("10.0.0.2:4000"), client, &token));
        assert!(!a.check(&c, t0, from, ConnectionId::from_u64(43), &token));
        assert!(!Admissions::new(&c, &Seed::from(8)).check(&c, t0, from, client, &token));
        // A flipped bit anywhere, or a short token: no.
        for i in 0..TOKEN_LEN {
            let mut bad = token;
            bad[i] ^= 1;
            assert!(!a.check(&c, t0, from, client, &bad), "bit flipped in byte {i}");
        }
        assert!(!a.check(&c, t0, from, client, &token[..TOKEN_LEN - 1]));
        assert_eq!(
            a.decide(&c, t0, from, client, &token, IDLE),
            Admission::Admit { validated: true }
        );
        let mut bad = token;
        bad[5] ^= 0x80;
        assert_eq!(
            a.decide(&c, t0, from, client, &bad, IDLE),
            Admission::Reject(RejectReason::INVALID_TOKEN)
        );
    }

    #[test]
    fn validation_under_load_asks_only_once_the_threshold_is_reached() {
        let c = config(AddressValidation::UnderLoad { pending: 3 });
        let mut a = Admissions::new(&c, &Seed::from(1));
        let from = addr("10.0.0.1:4000");
        let client = ConnectionId::from_u64(1);
        let now = Instant::from_micros(5);
        let load = |pending| Load {
            pending,
            connections: pending,
        };
        assert_eq!(
            a.decide(&c, now, from, client, &[], load(2)),
            Admission::Admit { validated: false }
        );
        assert!(matches!(
            a.decide(&c, now, from, client, &[], load(3)),
            Admission::Retry(_)
        ));
        let off = config(AddressValidation::Off);
        assert_eq!(
            a.decide(&off, now, from, client, &[], load(1000)),
            Admission::Admit { validated: false }
        );
    }

    #[test]
    fn the_handshake_rate_and_the_per_address_limit_hold() {
        let c = Config {
            address_validation: AddressValidation::Off,
            max_handshakes_per_second: 100,
            max_connections_per_address: 50,
            ..Config::default()
        };
        let mut a = Admissions::new(&c, &Seed::from(1));
        let now = Instant::from_micros(1);
        let hello = |a: &mut Admissions, now, ip: &str| {
            admit(a, &c, now, addr(ip), ConnectionId::from_u64(9), &[], IDLE)
        };
        // A burst of a tenth of a second's worth, then one per 10 ms.
        for _ in 0..10 {
            assert_eq!(
                hello(&mut a, now, "10.0.0.1:1"),
                Admission::Admit { validated: false }
            );
        }
        assert_eq!(
            hello(&mut a, now, "10.0.0.2:1"),
            Admission::Drop(Dropped::RateLimited)
        );
        let later = now + Duration::from_millis(10);
        assert_eq!(
            hello(&mut a, later, "10.0.0.2:1"),
            Admission::Admit { validated: false }
        );
        assert_eq!(a.connections_from("10.0.0.1".parse().unwrap()), 10);
        // Under validation, a spent rate asks for a token rather than dropping.
        let uc = Config {
            address_validation: AddressValidation::UnderLoad { pending: 1000 },
            ..c.clone()
        };
        assert!(matches!(
            a.decide(
                &uc,
                later,
                addr("10.0.0.3:1"),
                ConnectionId::from_u64(1),
                &[],
                IDLE
            ),
            Admission::Retry(_)
        ));
        // 50 from one address, whatever the ports; then AT_CAPACITY until one goes.
        let mut t = later;
        for i in 0..40 {
            t += Duration::from_millis(10);
            assert_eq!(
                hello(&mut a, t, &alloc::format!("10.0.0.1:{}", 100 + i)),
                Admission::Admit { validated: false }
            );
        }
        t += Duration::from_millis(10);
        assert_eq!(
            hello(&mut a, t, "10.0.0.1:7"),
            Admission::Reject(RejectReason::AT_CAPACITY)
        );
        a.release("10.0.0.1".parse().unwrap());
        assert_eq!(
            hello(&mut a, t, "10.0.0.1:7"),
            Admission::Admit { validated: false }
        );
    }

    #[test]
    fn repeat_offenders_are_banned_for_a_doubling_period_and_the_table_is_bounded() {
        let c = Config {
            ban_after_violations: 2,
            ban_duration: Duration::from_secs(10),
            max_ban_duration: Duration::from_secs(35),
            max_tracked_addresses: 3,
            ..Config::default()
        };
        let mut a = Admissions::new(&c, &Seed::from(1));
        let from = addr("10.0.0.9:1");
        let hello = |a: &mut Admissions, now| admit(a, &c, now, from, ConnectionId::from_u64(9), &[], IDLE);
        let t0 = Instant::from_micros(1);
        a.violation(&c, t0, from.ip());
        assert_eq!(
            hello(&mut a, t0),
            Admission::Admit { validated: false },
            "one violation: no ban yet"
        );
        a.violation(&c, t0, from.ip());
        assert_eq!(hello(&mut a, t0), Admission::Drop(Dropped::Banned));
        let after = |s| t0 + Duration::from_secs(s);
        assert_eq!(hello(&mut a, after(9)), Admission::Drop(Dropped::Banned));
        assert!(matches!(hello(&mut a, after(10)), Admission::Admit { .. }));
        // Again within the memory period: 20 s, then 35 s (the cap), not 40.
        a.violation(&c, after(11), from.ip());
        assert_eq!(hello(&mut a, after(30)), Admission::Drop(Dropped::Banned));
        assert!(matches!(hello(&mut a, after(31)), Admission::Admit { .. }));
        a.violation(&c, after(32), from.ip());
        assert_eq!(hello(&mut a, after(66)), Admission::Drop(Dropped::Banned));
        assert!(matches!(hello(&mut a, after(67)), Admission::Admit { .. }));
        // Forgotten after twice its ban: the next violation starts over.
        a.violation(&c, after(200), from.ip());
        assert!(matches!(hello(&mut a, after(200)), Admission::Admit { .. }));
        // Never more than max_tracked_addresses remembered.
        for i in 0..10u8 {
            let ip = IpAddr::from([10, 1, 0, i]);
            a.violation(&c, after(201), ip);
            a.violation(&c, after(201), ip);
            assert!(a.tracked() <= 3);
        }
        assert_eq!(
            a.decide(
                &c,
                after(201),
                addr("10.1.0.9:1"),
                ConnectionId::from_u64(1),
                &[],
                IDLE
            ),
            Admission::Drop(Dropped::Banned)
        );
    }

    /// Security round 2, item 12: an IPv6 host rotating through its /64 is one client for
    /// the per-address limit and for bans; its neighbour in another /64 is not, and IPv4
    /// addresses count whole.
    #[test]
    fn ipv6_addresses_count_by_their_prefix() {
        let c = Config {
            max_connections_per_address: 2,
            ban_after_violations: 1,
            ..Config::default()
        };
        let mut a = Admissions::new(&c, &Seed::from(3));
        let t = Instant::from_micros(1);
        let hello = |a: &mut Admissions, from: &str, n: u64| {
            admit(a, &c, t, addr(from), ConnectionId::from_u64(n), &[], IDLE)
        };
        assert!(matches!(
            hello(&mut a, "[2001:db8:1:2::1]:5", 1),
            Admission::Admit { .. }
        ));
        assert!(matches!(
            hello(&mut a, "[2001:db8:1:2:ffff::9]:5", 2),
            Admission::Admit { .. }
        ));
        assert_eq!(
            hello(&mut a, "[2001:db8:1:2:abcd::7]:5", 3),
            Admission::Reject(RejectReason::AT_CAPACITY),
            "a third address of the same /64"
        );
        assert!(matches!(
            hello(&mut a, "[2001:db8:1:3::1]:5", 4),
            Admission::Admit { .. }
        ));
        a.violation(&c, t, addr("[2001:db8:1:2::1]:5").ip());
        assert_eq!(
            hello(&mut a, "[2001:db8:1:2:1234::1]:6", 5),
            Admission::Drop(Dropped::Banned)
        );
        assert!(matches!(
            hello(&mut a, "[2001:db8:1:3::2]:5", 6),
            Admission::Admit { .. }
        ));
        // IPv4 neighbours stay apart; /128 counts each IPv6 address.
        assert!(matches!(hello(&mut a, "10.0.0.1:1", 7), Admission::Admit { .. }));
        assert!(matches!(hello(&mut a, "10.0.0.2:1", 8), Admission::Admit { .. }));
        let each = Config {
            ipv6_prefix_len: 128,
            ..c.clone()
        };
        let mut b = Admissions::new(&each, &Seed::from(3));
        for (n, from) in ["[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8::3]:1"]
            .iter()
            .enumerate()
        {
            let out = admit(
                &mut b,
                &each,
                t,
                addr(from),
                ConnectionId::from_u64(n as u64),
                &[],
                IDLE,
            );
            assert!(matches!(out, Admission::Admit { .. }), "{from}");
        }
    }
}
