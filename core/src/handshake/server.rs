//! The server's Noise step on a NOISE_HELLO (spec/protocol.md §4.14, §11.2): the pattern
//! the client chose (XX or IK), the NOISE_ACCEPT to answer with, and what remains (XX: the
//! client's NOISE_FINISH; IK: nothing, the keys are ready).

use bytes::Bytes;

use super::negotiate;
use crate::config::{Config, PeerDecision};
use crate::crypto::keys::{Entropy, Identity, PublicKey};
use crate::crypto::noise::{NoiseHandshake, Secrets};
use crate::wire::{Accept, AcceptTerms, Cipher, ConnectionId, NoiseHello, Reject, RejectReason, VERSION_2};

/// What a server's Noise step on a NOISE_HELLO gives: the NOISE_ACCEPT to send, and the
/// handshake (XX: waiting for NOISE_FINISH) or the finished keys (IK).
pub(crate) struct ServerNoise {
    pub(crate) accept: Accept,
    pub(crate) cipher: Cipher,
    pub(crate) message: Bytes,
    pub(crate) next: ServerNext,
}

/// After NOISE_ACCEPT: the client's NOISE_FINISH to read (XX), or done (IK).
pub(crate) enum ServerNext {
    Finish(NoiseHandshake),
    Done { peer: PublicKey, secrets: Secrets },
}

impl core::fmt::Debug for ServerNext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServerNext::Finish(_) => f.write_str("Finish"),
            ServerNext::Done { peer, .. } => write!(f, "Done({peer})"),
        }
    }
}

/// The server's side of a NOISE_HELLO (spec §11.2): reads the client's first message under
/// the prologue of what the HELLO says, decides (versions, ciphers, and for IK the client's
/// identity), and writes NOISE_ACCEPT with the terms sealed inside. Costs two X25519
/// operations (XX) or four (IK), so it runs only on a HELLO admission let through.
pub(crate) fn accept_noise(
    config: &Config,
    identity: &Identity,
    entropy: Entropy,
    client: ConnectionId,
    hello: &NoiseHello,
    reset: Option<[u8; 16]>,
) -> Result<ServerNoise, Reject> {
    let refuse = |reason| Reject {
        reason,
        versions: config.versions,
    };
    let accept = negotiate(config, &hello.hello, VERSION_2, reset)?;
    let Some(&cipher) = config.ciphers.iter().find(|c| hello.ciphers.contains(**c)) else {
        return Err(refuse(RejectReason::NO_COMMON_CIPHER));
    };
    let prologue = hello
        .prologue(client)
        .map_err(|_| refuse(RejectReason::BAD_PARAMETERS))?;
    let mut noise = NoiseHandshake::responder(hello.pattern, identity, &prologue, entropy)
        .map_err(|_| refuse(RejectReason::KEY_MISMATCH))?;
    noise
        .read(&hello.message)
        .map_err(|_| refuse(RejectReason::KEY_MISMATCH))?;
    if let Some(peer) = noise.remote_key() {
        if config.peer_policy.check(&peer) == PeerDecision::Refuse {
            return Err(refuse(RejectReason::REFUSED));
        }
    }
    let terms = AcceptTerms {
        accept: accept.clone(),
        cipher,
    };
    let payload = terms.encode().map_err(|_| refuse(RejectReason::BAD_PARAMETERS))?;
    let message = noise
        .write(&payload)
        .map_err(|_| refuse(RejectReason::BAD_PARAMETERS))?;
    let next = match (noise.remote_key(), noise.secrets()) {
        (Some(peer), Some(secrets)) => ServerNext::Done { peer, secrets },
        _ => ServerNext::Finish(noise),
    };
    Ok(ServerNoise {
        accept,
        cipher,
        message,
        next,
    })
}
