//! Version 1's invalid datagrams, one decode error each, put together byte by byte (the
//! codec refuses to write them) and sealed with a correct trailer unless the vector is
//! about the trailer.

use super::*;

/// Decode errors.
pub(super) fn decode_errors(out: &mut Out) {
    let ping = [0x01u8];
    let valid_ping = raw(raw_data_header(), &ping);
    out.vector("err-empty", "no bytes at all", None, &[]);
    out.vector(
        "err-truncated-header",
        "a data header cut inside the destination id",
        None,
        &valid_ping[..7],
    );
    out.vector(
        "err-truncated-trailer",
        "header only, not even room for the trailer",
        None,
        &raw_data_header()[..16],
    );
    out.vector(
        "err-truncated-frame",
        "MAX_STREAM_DATA missing its maximum",
        Some(6),
        &raw(raw_data_header(), &[0x06, 0x02]),
    );
    out.vector(
        "err-truncated-stream-data",
        "STREAM announcing 10 bytes of data and carrying 3",
        Some(6),
        &raw(raw_data_header(), &[0x10, 0x00, 0x00, 0x0a, 1, 2, 3]),
    );
    out.vector(
        "err-non-minimal-varint",
        "MAX_DATA 5 written in two bytes (0x4005)",
        Some(6),
        &raw(raw_data_header(), &[0x05, 0x40, 0x05]),
    );
    let mut corrupted = valid_ping.clone();
    corrupted[14] ^= 0x01;
    out.vector(
        "err-checksum",
        "a valid PING packet with one bit of the packet number flipped",
        Some(6),
        &corrupted,
    );
    let mut bad_trailer = valid_ping.clone();
    let last = bad_trailer.len() - 1;
    bad_trailer[last] ^= 0x80;
    out.vector(
        "err-checksum-trailer",
        "a valid PING packet with its trailer damaged",
        Some(6),
        &bad_trailer,
    );
    let mut v3 = valid_ping.clone();
    v3[1] = 0x03;
    out.vector(
        "err-unknown-version",
        "version 3, which this codec does not read",
        None,
        &seal(v3[..v3.len() - 4].to_vec()),
    );
    let mut reserved = raw_data_header();
    reserved[2] = 0x40;
    out.vector(
        "err-reserved-bits",
        "flags 0x40: a reserved bit set",
        Some(6),
        &raw(reserved, &ping),
    );
    out.vector(
        "err-unknown-frame-type",
        "frame type 0x3f",
        Some(6),
        &raw(raw_data_header(), &[0x3f]),
    );
    out.vector(
        "err-frame-not-allowed",
        "a STREAM frame in a handshake packet next to a HELLO",
        None,
        &{
            let mut payload = vec![0x10, 0x00, 0x00, 0x01, 0xaa];
            payload.extend_from_slice(&hello_payload());
            payload.resize(1200 - 24 - 4, 0);
            raw(raw_handshake_header(), &payload)
        },
    );
    out.vector(
        "err-observed-address-in-v1",
        "an OBSERVED_ADDRESS in a version 1 data packet (version 2 only: unauthenticated, anyone could forge it)",
        Some(6),
        &raw(raw_data_header(), &[0x0f, 0x01, 0x04, 192, 0, 2, 7, 0x11, 0x51]),
    );
    out.vector(
        "err-datagram-truncated",
        "a DATAGRAM whose length (16) runs past the end of its packet",
        Some(6),
        &raw(raw_data_header(), &[0x37, 0x10, b'a', b'b']),
    );
    out.vector(
        "err-relay-in-v1",
        "a RELAY_RESERVE in a version 1 data packet (the relay exchange is version 2 only)",
        Some(6),
        &raw(raw_data_header(), &[0x30, 0x01]),
    );
    out.vector(
        "err-hello-in-data-packet",
        "a HELLO in a data packet",
        Some(6),
        &{
            let mut payload = hello_payload();
            payload.resize(1200 - 16 - 4, 0);
            raw(raw_data_header(), &payload)
        },
    );
    out.vector(
        "err-handshake-frame-count",
        "a handshake packet with PING only",
        None,
        &raw(raw_handshake_header(), &[0x01]),
    );
    out.vector(
        "err-empty-packet",
        "a data packet with no frames",
        Some(6),
        &raw(raw_data_header(), &[]),
    );
    out.vector(
        "err-hello-too-short",
        "a HELLO datagram of 40 bytes, not padded to 1200",
        None,
        &raw(raw_handshake_header(), &hello_payload()),
    );
    out.vector(
        "err-ack-range-count",
        "an ACK claiming 64 more ranges (65 in all; the limit is 64)",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x02, 0x0a, 0x00, 0, 0, 0, 0, 0x40, 0x40, 0x00],
        ),
    );
    out.vector(
        "err-ack-underflow",
        "an ACK whose first range (largest 3, length 5) reaches below 0",
        Some(6),
        &raw(raw_data_header(), &[0x02, 0x03, 0x00, 0, 0, 0, 0, 0x00, 0x05]),
    );
    out.vector(
        "err-ack-gap-underflow",
        "an ACK whose second range starts below 0 (largest 5, first range 0..=... then gap 4)",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x02, 0x05, 0x00, 0, 0, 0, 0, 0x01, 0x02, 0x04, 0x00],
        ),
    );
    out.vector(
        "err-label-too-long",
        "a stream label of 129 bytes (the limit is 128)",
        Some(6),
        &{
            let mut p = vec![0x14, 0x00, 0x00, 0x40, 0x81];
            p.extend_from_slice(&[b'a'; 129]);
            p.push(0x00);
            raw(raw_data_header(), &p)
        },
    );
    out.vector(
        "err-receipt-run-past-the-last-id",
        "a RECEIPT_RUN of stream 2^62 - 2 and the one after it (2^62, past 2^62 - 1)",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x01, 0x00],
        ),
    );
    out.vector(
        "err-receipt-runs-too-many",
        "nine RECEIPT_RUNs of stream 4 and the 62 after it in one packet (512 streams at most together, counted frame by frame)",
        Some(6),
        &raw(raw_data_header(), &{
            let mut frames = Vec::new();
            for _ in 0..9 {
                frames.extend_from_slice(&[0x38, 0x04]);
                frames.extend_from_slice(&[0xff; 8]);
                frames.push(0x00);
            }
            frames
        }),
    );
    out.vector(
        "err-label-not-printable",
        "a stream label with a space in it",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x14, 0x00, 0x00, 0x03, b'a', b' ', b'b', 0x00],
        ),
    );
    out.vector(
        "err-open-fields-not-at-start",
        "a total length on a STREAM frame at offset 10",
        Some(6),
        &raw(raw_data_header(), &[0x12, 0x00, 0x0a, 0x20, 0x01, 0xaa]),
    );
    out.vector(
        "err-digest-not-at-start",
        "a digest on a STREAM frame at offset 10",
        Some(6),
        &raw(raw_data_header(), &{
            let mut p = vec![0x18, 0x00, 0x0a];
            p.extend_from_slice(&[0x5a; 32]);
            p.extend_from_slice(&[0x01, 0xaa]);
            p
        }),
    );
    out.vector(
        "err-total-length-mismatch",
        "a STREAM frame with fin and 2 bytes of data announcing a total length of 3",
        Some(6),
        &raw(raw_data_header(), &[0x13, 0x00, 0x00, 0x03, 0x02, 0xaa, 0xbb]),
    );
    out.vector(
        "err-stream-end",
        "STREAM data at offset 2^62-1 (the stream would end past 2^62-1)",
        Some(6),
        &raw(
            raw_data_header(),
            &[
                0x10, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xaa,
            ],
        ),
    );
    out.vector(
        "err-reason-too-long",
        "a CLOSE reason of 257 bytes (the limit is 256)",
        Some(6),
        &{
            let mut p = vec![0x0b, 0x00, 0x41, 0x01];
            p.extend_from_slice(&[b'x'; 257]);
            raw(raw_data_header(), &p)
        },
    );
    out.vector(
        "err-reason-not-utf8",
        "a CLOSE reason that is not UTF-8",
        Some(6),
        &raw(raw_data_header(), &[0x0b, 0x00, 0x02, 0xc3, 0x28]),
    );
    out.vector(
        "err-token-too-long",
        "a RETRY token of 129 bytes (the limit is 128)",
        None,
        &{
            let mut p = vec![0x23, 0x40, 0x81];
            p.extend_from_slice(&[0x11; 129]);
            raw(raw_handshake_header(), &p)
        },
    );
    out.vector(
        "err-empty-token",
        "a RETRY with an empty token",
        None,
        &raw(raw_handshake_header(), &[0x23, 0x00]),
    );
    out.vector(
        "err-invalid-version-range",
        "a REJECT whose version range is 3..=2",
        None,
        &raw(raw_handshake_header(), &[0x22, 0x01, 0x00, 0x03, 0x00, 0x02]),
    );
    out.vector(
        "err-transport-parameter-order",
        "an ACCEPT whose parameters list id 2 before id 1",
        None,
        &raw(
            raw_handshake_header(),
            &[0x21, 0x00, 0x01, 0x00, 0x06, 0x02, 0x01, 0x05, 0x01, 0x01, 0x05],
        ),
    );
    out.vector(
        "err-invalid-transport-parameter",
        "an ACCEPT announcing max_datagram_size 1000 (below 1200)",
        None,
        &raw(
            raw_handshake_header(),
            &[0x21, 0x00, 0x01, 0x00, 0x04, 0x04, 0x02, 0x43, 0xe8],
        ),
    );
    out.vector(
        "err-version-reject-empty",
        "a VERSION_REJECT listing no version",
        None,
        &{
            let mut p = vec![0x00, 0x00, 0x80];
            p.extend_from_slice(&CLIENT.0);
            p.extend_from_slice(&SERVER.0);
            p.push(0x00);
            seal(p)
        },
    );
}
