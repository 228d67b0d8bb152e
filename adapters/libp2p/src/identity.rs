//! The libp2p identity of a weir connection (spec/protocol.md §8, libp2p binding):
//! deriving weir's static key from the libp2p keypair, and the exchange after the weir
//! handshake that proves which libp2p peer holds the weir key at the other end.
//!
//! Each side sends, on a stream labelled `libp2p/id` that it opens first, a message of a
//! 2-byte big-endian length, its libp2p public key in libp2p's protobuf encoding, and the
//! key's signature over `"weir-libp2p-static-key:"` followed by its own 32-byte weir static
//! key. The receiver checks the signature against the weir key the handshake
//! authenticated, so a message replayed on another connection names a weir key that is
//! not that connection's peer. As in libp2p's Noise handshake, the signature binds the
//! libp2p key to the static key, and the static key's handshake binds it to the
//! connection. Streams of the peer's that arrive before its identity (a path that reorders
//! can bring a substream's stream first) are kept for the muxer, up to [`MAX_EARLY`].

use bytes::{BufMut, Bytes, BytesMut};
use libp2p_identity::{Keypair, PeerId, PublicKey};
use weir_tokio::{Confirm, Connection, Identity, Label, RecvStream};
use zeroize::Zeroize;

use crate::{Error, IdentityError, WrongPeer, IDENTITY_REFUSED};

/// The label of the identity stream.
const LABEL: &str = "libp2p/id";
/// What the signature covers before the weir key.
const SIGNED_PREFIX: &[u8] = b"weir-libp2p-static-key:";
/// The HKDF domain of weir's static key, derived from the libp2p keypair's secret.
const DERIVATION_DOMAIN: &[u8] = b"weir static key v1";
/// The longest identity message taken: an RSA-4096 key and signature fit.
const MAX_MESSAGE: u64 = 2048;
/// The most streams of the peer's kept while its identity has not arrived; past them, the
/// identity is taken to be missing.
const MAX_EARLY: usize = 64;

/// weir's identity for `keypair`: always the same for one keypair.
pub(crate) fn weir_identity(keypair: &Keypair) -> Result<Identity, Error> {
    let mut secret = keypair
        .derive_secret(DERIVATION_DOMAIN)
        .ok_or(Error::UnsupportedKey)?;
    let identity = Identity::from_secret(secret);
    secret.zeroize();
    Ok(identity)
}

/// Our identity message for the weir static key `ours`.
fn encode(keypair: &Keypair, ours: &[u8; 32]) -> Bytes {
    let key = keypair.public().encode_protobuf();
    let signature = keypair
        .sign(&[SIGNED_PREFIX, ours].concat())
        .expect("a key that derived weir's secret can sign");
    let mut out = BytesMut::with_capacity(2 + key.len() + signature.len());
    out.put_u16(u16::try_from(key.len()).expect("a libp2p public key is under 64 KiB"));
    out.put_slice(&key);
    out.put_slice(&signature);
    out.freeze()
}

/// The peer id that `message` proves holds the weir static key `theirs`.
fn verify(message: &[u8], theirs: &[u8; 32]) -> Result<PeerId, IdentityError> {
    let (len, rest) = message.split_first_chunk::<2>().ok_or(IdentityError::Malformed)?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(IdentityError::Malformed);
    }
    let (key, signature) = rest.split_at(len);
    let key = PublicKey::try_decode_protobuf(key).map_err(|_| IdentityError::Malformed)?;
    if !key.verify(&[SIGNED_PREFIX, theirs].concat(), signature) {
        return Err(IdentityError::BadSignature);
    }
    Ok(key.to_peer_id())
}

/// Sends our identity on `conn` and checks the peer's; `expected` is the peer id the dialed
/// address named. Returns the peer id and the peer's streams that came before its identity.
/// A peer whose identity does not check is told [`IDENTITY_REFUSED`].
pub(crate) async fn exchange(
    conn: &Connection,
    keypair: &Keypair,
    ours: &weir_tokio::PublicKey,
    expected: Option<PeerId>,
) -> Result<(PeerId, Vec<RecvStream>), Error> {
    let Some(theirs) = conn.peer_key() else {
        return Err(refuse(conn, IdentityError::Unauthenticated).await);
    };
    let mut out = conn.open_stream(Some(label())).await?;
    out.write_all_chunk(encode(keypair, ours.as_bytes())).await?;
    out.finish_with(Confirm::Queued).await?;

    let mut early = Vec::new();
    let mut incoming = loop {
        let stream = conn.accept_stream().await?;
        if stream.label().map(Label::as_str) == Some(LABEL) {
            break stream;
        }
        if early.len() == MAX_EARLY {
            return Err(refuse(conn, IdentityError::Missing).await);
        }
        early.push(stream);
    };
    let message = match incoming.read_to_end(MAX_MESSAGE).await {
        Ok(message) => message,
        Err(weir_tokio::Error::Refused(_)) => return Err(refuse(conn, IdentityError::Malformed).await),
        Err(e) => return Err(e.into()),
    };
    let found = match verify(&message, theirs.as_bytes()) {
        Ok(found) => found,
        Err(e) => return Err(refuse(conn, e).await),
    };
    match expected {
        Some(expected) if expected != found => Err(refuse(
            conn,
            IdentityError::WrongPeer(Box::new(WrongPeer { expected, found })),
        )
        .await),
        _ => Ok((found, early)),
    }
}

fn label() -> Label {
    Label::from_static(LABEL).expect("a short label")
}

/// Closes `conn` with [`IDENTITY_REFUSED`] and the reason, and returns the error.
async fn refuse(conn: &Connection, why: IdentityError) -> Error {
    tracing::debug!(%why, "refusing a libp2p connection");
    let _ = conn.close(IDENTITY_REFUSED, &why.to_string()).await;
    Error::Identity(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_keypair_derives_one_weir_identity() {
        let keypair = Keypair::generate_ed25519();
        let a = weir_identity(&keypair).unwrap().public_key();
        let b = weir_identity(&keypair).unwrap().public_key();
        assert_eq!(a, b);
        assert_ne!(
            a,
            weir_identity(&Keypair::generate_ed25519()).unwrap().public_key()
        );
    }

    #[test]
    fn a_message_proves_its_signer_for_its_own_weir_key_only() {
        let keypair = Keypair::generate_ed25519();
        let (weir_key, other_key) = ([7u8; 32], [8u8; 32]);
        let message = encode(&keypair, &weir_key);
        assert_eq!(verify(&message, &weir_key), Ok(keypair.public().to_peer_id()));
        // Replayed by the holder of another weir key.
        assert_eq!(verify(&message, &other_key), Err(IdentityError::BadSignature));
        let mut tampered = message.to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(verify(&tampered, &weir_key), Err(IdentityError::BadSignature));
    }

    #[test]
    fn truncated_and_garbled_messages_are_malformed() {
        let message = encode(&Keypair::generate_ed25519(), &[7; 32]);
        for cut in [0, 1, 2, 10] {
            assert_eq!(
                verify(&message[..cut], &[7; 32]),
                Err(IdentityError::Malformed),
                "cut at {cut}"
            );
        }
        let mut garbled = message.to_vec();
        garbled[2] ^= 0xff;
        assert_eq!(verify(&garbled, &[7; 32]), Err(IdentityError::Malformed));
    }
}
