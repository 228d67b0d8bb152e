//! The error names that spec/vectors/README.md gives each [`DecodeError`], shared by the
//! vector generator (core/examples/gen_vectors/) and the vector test (core/tests/vectors.rs).

use weir_core::wire::{DecodeError, Limit, Violation};

/// The error names of spec/vectors/README.md.
pub fn error_kind(e: &DecodeError) -> String {
    match e {
        DecodeError::Truncated(_) => "truncated".into(),
        DecodeError::NonMinimalVarint(_) => "non-minimal-varint".into(),
        DecodeError::ChecksumMismatch { .. } => "checksum".into(),
        DecodeError::UnknownVersion(_) => "unknown-version".into(),
        DecodeError::ReservedBits(_) => "reserved-bits".into(),
        DecodeError::UnknownFrameType(_) => "unknown-frame-type".into(),
        DecodeError::TrailingBytes(_) => "trailing-bytes".into(),
        DecodeError::Sealed => "sealed".into(),
        DecodeError::AuthenticationFailed => "authentication-failed".into(),
        DecodeError::Violation(v) => match v {
            Violation::LimitExceeded { limit, .. } => format!("limit-exceeded {}", limit_kind(limit)),
            Violation::FrameNotAllowed { .. } => "frame-not-allowed".into(),
            Violation::HandshakeFrameCount { .. } => "handshake-frame-count".into(),
            Violation::EmptyPacket => "empty-packet".into(),
            Violation::HelloTooShort { .. } => "hello-too-short".into(),
            Violation::InvalidAckRange => "invalid-ack-range".into(),
            Violation::OpenFieldsNotAtStart { .. } => "open-fields-not-at-start".into(),
            Violation::TotalLengthMismatch { .. } => "total-length-mismatch".into(),
            Violation::InvalidLabel => "invalid-label".into(),
            Violation::InvalidReason => "invalid-reason".into(),
            Violation::InvalidVersionRange { .. } => "invalid-version-range".into(),
            Violation::TransportParameterOrder { .. } => "transport-parameter-order".into(),
            Violation::InvalidTransportParameter { .. } => "invalid-transport-parameter".into(),
            Violation::EmptyToken => "empty-token".into(),
            Violation::UnknownNoisePattern(_) => "unknown-noise-pattern".into(),
            Violation::InvalidCipher(_) => "invalid-cipher".into(),
            Violation::KeyPhaseNotAllowed => "key-phase-not-allowed".into(),
            Violation::InvalidAddressFamily(_) => "invalid-address-family".into(),
            other => panic!("no vector name for {other:?}"),
        },
        other => panic!("no vector name for {other:?}"),
    }
}

fn limit_kind(limit: &Limit) -> &'static str {
    match limit {
        Limit::DatagramSize => "datagram-size",
        Limit::AckRanges => "ack-ranges",
        Limit::LabelLength => "label-length",
        Limit::TokenLength => "token-length",
        Limit::ReasonLength => "reason-length",
        Limit::StreamEnd => "stream-end",
        Limit::VersionRanges => "version-ranges",
        Limit::Varint => "varint",
        Limit::NoiseMessageLength => "noise-message-length",
        Limit::Candidates => "candidates",
        Limit::ReceiptRun => "receipt-run",
        other => panic!("no vector name for {other:?}"),
    }
}
