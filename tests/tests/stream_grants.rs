//! When a receiver grants more streams (MAX_STREAMS, spec §4.9 and §8, Streams and credit):
//! a grant due because the peer used a quarter of its count rides in a packet that goes anyway,
//! and goes on its own only once the peer has a quarter or less left.
//!
//! Two endpoints in memory (the harness of weir-core's `--bench transfer`), which polls the
//! server for datagrams right after each one it hands it, before the server's application
//! reads: what a driver that sends as soon as it has received does (weir-std's receiving
//! thread did so for the grant, a datagram of its own every 63 round trips, which its peer
//! then acknowledged alone).

use crate::pair;

use weir_core::time::Duration;
use weir_core::wire::Cipher;

use pair::{Pair, Protection};

/// Request and answer, one at a time, far more of them than the peer's 128 streams: each
/// round trip is one datagram each way (the answer carries the server's grants and its
/// acknowledgement of the request; the next request the client's acknowledgement of the
/// answer). With the grant sent as the request that made it due arrived, 1,000 round trips
/// took 2,049 datagrams: the grant, and the client's acknowledgement of it after its ACK
/// delay, every 64 requests.
#[test]
fn request_response_traffic_carries_its_stream_grants_in_its_answers() {
    let mut p = Pair::connected(Protection::Sealed(Cipher::Aes256Gcm));
    // Past the first grants, so that the count is the steady state.
    assert_eq!(p.round_trips(1_000, 64, Duration::from_micros(40)), 1_000);
    let before = p.datagrams;
    assert_eq!(p.round_trips(1_000, 64, Duration::from_micros(40)), 1_000);
    let datagrams = p.datagrams - before;
    // Two a round trip, and a few ACKs whose delay ran out between them.
    assert!(datagrams <= 2_005, "{datagrams} datagrams in 1,000 round trips");
}
