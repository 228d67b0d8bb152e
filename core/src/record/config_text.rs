//! A [`Config`] as the `config` line of a trace (spec/trace.md §2): every field as
//! `name=value`, durations in microseconds, so a replayer builds exactly the endpoint that
//! was recorded. A key this replayer does not know, or a value it cannot read, refuses the
//! trace: replaying with a guessed setting would report differences that are not there.

use alloc::string::{String, ToString};
use core::fmt::Write as _;

use super::TraceError;
use crate::config::{AcceptPolicy, AddressValidation, Config, PeerPolicy};
use crate::congestion::{
    CongestionAlgorithm, LedbatConfig, LedbatDecrease, LedbatGain, LedbatSlowdown, Unresolved,
};
use crate::crypto::keys::{parse_hex32, Identity, PublicKey};
use crate::time::Duration;
use crate::wire::{Capabilities, Cipher, VersionRange};

/// What the config line says of a configured identity: its key is with the secrets.
pub(crate) const SECRET: &str = "secret";

/// Writes `config` as space-separated `name=value` pairs.
pub(crate) fn write(config: &Config, out: &mut String) {
    // Destructured whole: a new Config field does not compile until traces carry it.
    let Config {
        versions,
        identity,
        peer_policy,
        ciphers,
        key_update_interval,
        capabilities,
        accept,
        max_connections,
        max_connections_per_address,
        ipv6_prefix_len,
        max_handshakes_per_second,
        address_validation,
        token_lifetime,
        ban_after_violations,
        ban_duration,
        max_ban_duration,
        max_tracked_addresses,
        idle_timeout,
        keep_alive,
        handshake_timeout,
        initial_rtt,
        max_ack_delay,
        max_probe_interval,
        max_retransmission_ratio,
        stream_receive_window,
        max_stream_receive_window,
        receive_window,
        max_receive_window,
        receive_buffer_total,
        send_buffer,
        send_buffer_total,
        initial_concurrent_streams,
        max_concurrent_streams,
        max_tracked_ack_ranges,
        max_message_len,
        max_datagram_size,
        congestion,
        max_send_rate,
        pipe_buffer,
        pipe_buffer_total,
        relay,
        connection_id_prefix,
        // A host's hook on memory, which changes no output: not recorded, and a replay
        // runs without it.
        advise_buffer: _,
        prefetch: _,
        #[cfg(feature = "fuzzing")]
        primitives,
    } = config;
    let us = |d: &Duration| d.as_micros();
    let opt = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
    let accept = match accept {
        AcceptPolicy::Accept => "accept",
        AcceptPolicy::Refuse => "refuse",
    };
    let validation = match address_validation {
        AddressValidation::Off => "off".to_string(),
        AddressValidation::UnderLoad { pending } => alloc::format!("under-load:{pending}"),
        AddressValidation::Always => "always".to_string(),
    };
    // The key itself is a secret: it goes with the trace's secrets (module docs).
    let identity = identity.as_ref().map_or("none", |_| "secret");
    let peers = policy_text(peer_policy);
    let ciphers: alloc::vec::Vec<String> = ciphers.iter().map(ToString::to_string).collect();
    let _ = write!(
        out,
        "versions={}-{} identity={identity} peer_policy={peers} ciphers={} \
         key_update_interval={key_update_interval} \
         capabilities={:#x} accept={accept} max_connections={max_connections} \
         max_connections_per_address={max_connections_per_address} \
         ipv6_prefix_len={ipv6_prefix_len} \
         max_handshakes_per_second={max_handshakes_per_second} address_validation={validation} \
         token_lifetime={} ban_after_violations={ban_after_violations} ban_duration={} \
         max_ban_duration={} max_tracked_addresses={max_tracked_addresses} \
         idle_timeout={} keep_alive={} handshake_timeout={} initial_rtt={} max_ack_delay={} \
         max_probe_interval={} max_retransmission_ratio={} \
         stream_receive_window={stream_receive_window} \
         max_stream_receive_window={max_stream_receive_window} receive_window={receive_window} \
         max_receive_window={max_receive_window} receive_buffer_total={receive_buffer_total} \
         send_buffer={send_buffer} send_buffer_total={send_buffer_total} \
         initial_concurrent_streams={initial_concurrent_streams} \
         max_concurrent_streams={max_concurrent_streams} \
         max_tracked_ack_ranges={max_tracked_ack_ranges} max_message_len={} \
         max_datagram_size={max_datagram_size} \
         congestion={} max_send_rate={} pipe_buffer={pipe_buffer} pipe_buffer_total={pipe_buffer_total} relay={} \
         connection_id_prefix={}",
        versions.min(),
        versions.max(),
        ciphers.join(","),
        capabilities.bits(),
        us(token_lifetime),
        us(ban_duration),
        us(max_ban_duration),
        us(idle_timeout),
        opt(keep_alive.map(|d| d.as_micros())),
        us(handshake_timeout),
        us(initial_rtt),
        us(max_ack_delay),
        us(max_probe_interval),
        opt(max_retransmission_ratio.map(u64::from)),
        opt(*max_message_len),
        congestion_text(congestion),
        opt(*max_send_rate),
        relay.as_ref().map_or("none".to_string(), |r| alloc::format!(
            "{}/{}/{}/{}/{}/{}",
            r.max_reservations,
            r.max_circuits,
            r.max_circuits_per_peer,
            r.circuit_bytes,
            us(&r.circuit_duration),
            policy_text(&r.reservers)
        )),
        opt(connection_id_prefix.map(u64::from)),
    );
    // Written only when not the real ones, so that every other trace reads the same from
    // any build.
    #[cfg(feature = "fuzzing")]
    if *primitives == crate::crypto::Primitives::FuzzingStandIn {
        out.push_str(" primitives=");
        out.push_str(STAND_IN);
    }
}

/// The config line's value for the fuzzing stand-in primitives (key `primitives`).
const STAND_IN: &str = "fuzzing-stand-in";

/// `any`, `allow:KEY,KEY,...` (`allow:` for none) or `decide`.
fn policy_text(policy: &PeerPolicy) -> String {
    match policy {
        PeerPolicy::Any => "any".to_string(),
        PeerPolicy::Allow(keys) => {
            let keys: alloc::vec::Vec<String> = keys.iter().map(ToString::to_string).collect();
            alloc::format!("allow:{}", keys.join(","))
        }
        PeerPolicy::Decide(_) => "decide".to_string(),
    }
}

/// The policy [`policy_text`] wrote; `None` if unreadable, `Some(Err)` for `decide` (an
/// application callback is not in the trace: its decisions are the application's, which a
/// replay cannot make; `what` names the setting).
fn parse_policy(value: &str, what: &'static str) -> Option<Result<PeerPolicy, TraceError>> {
    Some(Ok(match value {
        "any" => PeerPolicy::Any,
        "decide" => return Some(Err(TraceError::Unreplayable { what })),
        v => PeerPolicy::Allow(
            v.strip_prefix("allow:")?
                .split(',')
                .filter(|k| !k.is_empty())
                .map(|k| k.parse::<PublicKey>().ok())
                .collect::<Option<_>>()?,
        ),
    }))
}

/// `none`, or `RESERVATIONS/CIRCUITS/PER_PEER/BYTES/DURATION_US/RESERVERS` (RESERVERS a
/// policy as [`policy_text`] writes it): `Some(None)` for `none`.
fn parse_relay(value: &str) -> Option<Result<Option<crate::RelayConfig>, TraceError>> {
    if value == "none" {
        return Some(Ok(None));
    }
    let mut fields = value.splitn(6, '/');
    let mut num = || fields.next()?.parse::<u64>().ok();
    let (max_reservations, max_circuits, max_circuits_per_peer, circuit_bytes, duration) =
        (num()?, num()?, num()?, num()?, num()?);
    let reservers = match parse_policy(fields.next()?, "relay reservers=decide")? {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(Some(crate::RelayConfig {
        max_reservations: usize::try_from(max_reservations).ok()?,
        max_circuits: usize::try_from(max_circuits).ok()?,
        max_circuits_per_peer: usize::try_from(max_circuits_per_peer).ok()?,
        circuit_bytes,
        circuit_duration: Duration::from_micros(duration),
        reservers,
    })))
}

/// `bbr`, `newreno`, `custom:NAME`, or `ledbat/TARGET_US/GAIN/DECREASE/SLOWDOWN`.
pub(crate) fn congestion_text(c: &CongestionAlgorithm) -> String {
    match c {
        CongestionAlgorithm::Bbr => "bbr".to_string(),
        CongestionAlgorithm::Custom(f) => alloc::format!("custom:{}", f.name()),
        CongestionAlgorithm::NewReno => "newreno".to_string(),
        CongestionAlgorithm::Ledbat(l) => {
            let gain = match l.gain {
                LedbatGain::Adaptive => "adaptive".to_string(),
                LedbatGain::Fixed { per_mille } => alloc::format!("fixed:{per_mille}"),
            };
            let decrease = match l.decrease {
                LedbatDecrease::Multiplicative => "multiplicative",
                LedbatDecrease::Linear => "linear",
            };
            let slowdown = match l.slowdown {
                LedbatSlowdown::Periodic => "periodic",
                LedbatSlowdown::Disabled => "disabled",
            };
            alloc::format!("ledbat/{}/{gain}/{decrease}/{slowdown}", l.target.as_micros())
        }
    }
}

pub(crate) fn parse_congestion(s: &str) -> Option<CongestionAlgorithm> {
    match s {
        "bbr" => return Some(CongestionAlgorithm::Bbr),
        "newreno" => return Some(CongestionAlgorithm::NewReno),
        _ => {}
    }
    if let Some(name) = s.strip_prefix("custom:") {
        // Resolved to the factory of that name when the trace is replayed.
        let name = Unresolved(name.to_string());
        return Some(CongestionAlgorithm::Custom(alloc::sync::Arc::new(name)));
    }
    let mut parts = s.strip_prefix("ledbat/")?.split('/');
    let target = Duration::from_micros(parts.next()?.parse().ok()?);
    let gain = match parts.next()? {
        "adaptive" => LedbatGain::Adaptive,
        g => LedbatGain::Fixed {
            per_mille: g.strip_prefix("fixed:")?.parse().ok()?,
        },
    };
    let decrease = match parts.next()? {
        "multiplicative" => LedbatDecrease::Multiplicative,
        "linear" => LedbatDecrease::Linear,
        _ => return None,
    };
    let slowdown = match parts.next()? {
        "periodic" => LedbatSlowdown::Periodic,
        "disabled" => LedbatSlowdown::Disabled,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(CongestionAlgorithm::Ledbat(LedbatConfig {
        target,
        gain,
        decrease,
        slowdown,
    }))
}

/// Reads a `config` line's pairs. Keys left out keep their defaults (a trace written by a
/// later recorder that added a setting at its default still replays).
pub(crate) fn parse(text: &str) -> Result<Config, TraceError> {
    let mut c = Config::default();
    for pair in text.split_whitespace() {
        let (key, value) = pair.split_once('=').ok_or(TraceError::BadConfig {
            key: pair.to_string(),
        })?;
        let bad = || TraceError::BadConfig { key: key.to_string() };
        let num = || value.parse::<u64>().map_err(|_| bad());
        let dur = || num().map(Duration::from_micros);
        let opt = |v: &str| -> Result<Option<u64>, TraceError> {
            match v {
                "none" => Ok(None),
                v => v.parse().map(Some).map_err(|_| bad()),
            }
        };
        match key {
            "versions" => {
                let (min, max) = value.split_once('-').ok_or_else(bad)?;
                let (min, max) = (min.parse().map_err(|_| bad())?, max.parse().map_err(|_| bad())?);
                c.versions = VersionRange::new(min, max).map_err(|_| bad())?;
            }
            "identity" => {
                c.identity = match value {
                    "none" => None,
                    // A stand-in, replaced by the key from the trace's secrets.
                    SECRET => Some(Identity::from_secret([0; 32])),
                    v => Some(Identity::from_secret(parse_hex32(v).map_err(|_| bad())?)),
                }
            }
            "peer_policy" => c.peer_policy = parse_policy(value, "peer_policy=decide").ok_or_else(bad)??,
            "ciphers" => {
                c.ciphers = value
                    .split(',')
                    .map(|name| {
                        Cipher::ALL
                            .into_iter()
                            .find(|c| c.to_string() == name)
                            .ok_or_else(bad)
                    })
                    .collect::<Result<_, _>>()?
            }
            "key_update_interval" => c.key_update_interval = num()?,
            "capabilities" => {
                let hex = value.strip_prefix("0x").ok_or_else(bad)?;
                c.capabilities = Capabilities::from_bits(u64::from_str_radix(hex, 16).map_err(|_| bad())?);
            }
            "accept" => {
                c.accept = match value {
                    "accept" => AcceptPolicy::Accept,
                    "refuse" => AcceptPolicy::Refuse,
                    _ => return Err(bad()),
                }
            }
            "max_connections" => c.max_connections = num()? as usize,
            "max_connections_per_address" => c.max_connections_per_address = num()? as usize,
            "ipv6_prefix_len" => c.ipv6_prefix_len = u8::try_from(num()?).map_err(|_| bad())?,
            "max_handshakes_per_second" => {
                c.max_handshakes_per_second = u32::try_from(num()?).map_err(|_| bad())?
            }
            "address_validation" => {
                c.address_validation = match value {
                    "off" => AddressValidation::Off,
                    "always" => AddressValidation::Always,
                    v => AddressValidation::UnderLoad {
                        pending: v
                            .strip_prefix("under-load:")
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(bad)?,
                    },
                }
            }
            "token_lifetime" => c.token_lifetime = dur()?,
            "ban_after_violations" => c.ban_after_violations = u32::try_from(num()?).map_err(|_| bad())?,
            "ban_duration" => c.ban_duration = dur()?,
            "max_ban_duration" => c.max_ban_duration = dur()?,
            "max_tracked_addresses" => c.max_tracked_addresses = num()? as usize,
            "idle_timeout" => c.idle_timeout = dur()?,
            "keep_alive" => c.keep_alive = opt(value)?.map(Duration::from_micros),
            "handshake_timeout" => c.handshake_timeout = dur()?,
            "initial_rtt" => c.initial_rtt = dur()?,
            "max_ack_delay" => c.max_ack_delay = dur()?,
            "max_probe_interval" => c.max_probe_interval = dur()?,
            "max_retransmission_ratio" => {
                c.max_retransmission_ratio = opt(value)?.map(u32::try_from).transpose().map_err(|_| bad())?
            }
            "stream_receive_window" => c.stream_receive_window = num()?,
            "max_stream_receive_window" => c.max_stream_receive_window = num()?,
            "receive_window" => c.receive_window = num()?,
            "max_receive_window" => c.max_receive_window = num()?,
            "receive_buffer_total" => c.receive_buffer_total = num()?,
            "send_buffer" => c.send_buffer = num()?,
            "send_buffer_total" => c.send_buffer_total = num()?,
            "initial_concurrent_streams" => c.initial_concurrent_streams = num()?,
            "max_concurrent_streams" => c.max_concurrent_streams = num()?,
            "max_message_len" => c.max_message_len = opt(value)?,
            "max_tracked_ack_ranges" => c.max_tracked_ack_ranges = num()? as usize,
            "max_datagram_size" => c.max_datagram_size = u16::try_from(num()?).map_err(|_| bad())?,
            "congestion" => c.congestion = parse_congestion(value).ok_or_else(bad)?,
            "max_send_rate" => c.max_send_rate = opt(value)?,
            "pipe_buffer" => c.pipe_buffer = num()?,
            "pipe_buffer_total" => c.pipe_buffer_total = num()?,
            "relay" => c.relay = parse_relay(value).ok_or_else(bad)??,
            "connection_id_prefix" => {
                c.connection_id_prefix = opt(value)?.map(u8::try_from).transpose().map_err(|_| bad())?
            }
            "primitives" => match value {
                "real" => {}
                #[cfg(feature = "fuzzing")]
                STAND_IN => c.primitives = crate::crypto::Primitives::FuzzingStandIn,
                #[cfg(not(feature = "fuzzing"))]
                STAND_IN => {
                    return Err(TraceError::Unreplayable {
                        what: "it was recorded with the fuzzing stand-in for the real cryptography \
                               (config primitives=fuzzing-stand-in), which only a build with \
                               weir-core's `fuzzing` feature has",
                    })
                }
                _ => return Err(bad()),
            },
            _ => return Err(TraceError::UnknownConfigKey { key: key.to_string() }),
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::Seed;

    #[test]
    fn a_connection_id_prefix_reads_back_from_its_text() {
        for prefix in [None, Some(0), Some(255)] {
            let mut text = String::new();
            let config = Config {
                connection_id_prefix: prefix,
                ..Config::default()
            };
            write(&config, &mut text);
            assert_eq!(parse(&text).unwrap().connection_id_prefix, prefix, "{text}");
        }
        assert!(matches!(
            parse("connection_id_prefix=256"),
            Err(TraceError::BadConfig { .. })
        ));
    }

    #[test]
    fn a_relay_s_settings_read_back_from_their_text() {
        let peer = Identity::from_seed(&Seed::from(5)).public_key();
        let relay = crate::RelayConfig {
            max_reservations: 3,
            max_circuits: 4,
            max_circuits_per_peer: 2,
            circuit_bytes: 5000,
            circuit_duration: Duration::from_secs(7),
            reservers: PeerPolicy::Allow([peer].into_iter().collect()),
        };
        let mut text = String::new();
        write(
            &Config {
                relay: Some(relay),
                ..Config::default()
            },
            &mut text,
        );
        assert!(
            text.contains(&alloc::format!("relay=3/4/2/5000/7000000/allow:{peer}")),
            "{text}"
        );
        let back = parse(&text).unwrap().relay.unwrap();
        assert_eq!(
            (
                back.max_reservations,
                back.max_circuits,
                back.max_circuits_per_peer
            ),
            (3, 4, 2)
        );
        assert_eq!(
            (back.circuit_bytes, back.circuit_duration),
            (5000, Duration::from_secs(7))
        );
        assert!(matches!(&back.reservers, PeerPolicy::Allow(k) if k.len() == 1 && k.contains(&peer)));
        assert!(parse("relay=none").unwrap().relay.is_none());
        assert!(matches!(
            parse("relay=1/1/1/1/1/decide"),
            Err(TraceError::Unreplayable { .. })
        ));
        assert!(matches!(
            parse("relay=1/1/x/1/1/any"),
            Err(TraceError::BadConfig { .. })
        ));
    }

    #[test]
    fn the_security_settings_read_back_from_their_text() {
        let id = Identity::from_seed(&Seed::from(4));
        let peer = Identity::from_seed(&Seed::from(5)).public_key();
        let config = Config {
            versions: VersionRange::ENCRYPTED_OR_PLAINTEXT,
            identity: Some(id.clone()),
            peer_policy: PeerPolicy::Allow([peer].into_iter().collect()),
            ciphers: alloc::vec![Cipher::Aes256Gcm],
            key_update_interval: 77,
            ..Config::default()
        };
        let mut text = String::new();
        write(&config, &mut text);
        let back = parse(&text).unwrap();
        assert_eq!(back.versions, config.versions);
        // The key itself is not written: it goes with the trace's secrets.
        assert!(text.contains("identity=secret"));
        assert!(!text.contains(&crate::wire::Hex(id.secret_bytes()).to_string()));
        assert!(back.identity.is_some());
        // A self-contained trace's key, written inline, reads back.
        let inline = text.replace(
            "identity=secret",
            &alloc::format!("identity={}", crate::wire::Hex(id.secret_bytes())),
        );
        assert_eq!(
            parse(&inline)
                .unwrap()
                .identity
                .as_ref()
                .map(Identity::secret_bytes),
            Some(id.secret_bytes())
        );
        assert!(matches!(&back.peer_policy, PeerPolicy::Allow(k) if k.len() == 1 && k.contains(&peer)));
        assert_eq!(back.ciphers, config.ciphers);
        assert_eq!(back.key_update_interval, 77);
        // An application's callback is not in the trace: such a trace is refused.
        let decide = Config {
            peer_policy: PeerPolicy::Decide(alloc::sync::Arc::new(|_: &PublicKey| {
                crate::config::PeerDecision::Accept
            })),
            ..Config::default()
        };
        let mut text = String::new();
        write(&decide, &mut text);
        assert!(matches!(parse(&text), Err(TraceError::Unreplayable { .. })));
    }
}
