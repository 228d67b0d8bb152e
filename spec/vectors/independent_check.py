#!/usr/bin/env python3
"""An implementation of spec/protocol.md §3.3 (packet number expansion), §3.5 (the
checksum trailer), §4.12's DIGEST (SHA-256 of a whole stream) and, for version 2, §11.4
(sealed packets: ChaCha20-Poly1305 per RFC 8439, written out here; AES-256-GCM through the
`cryptography` package when it is installed) and §11.5 (key update, with hmac) written from
the spec alone, in another language: checks the trailer or tag of every valid vector in
spec/vectors/*.txt, the digest of every STREAM frame that holds a whole stream (offset 0,
fin) with one, and every key-update vector. CI runs it, so the codec and the spec text
cannot drift apart unnoticed."""
import hashlib
import hmac
import pathlib
import sys
import zlib

MASK = 0xFFFFFFFF


def chacha20_block(key, counter, nonce):
    """RFC 8439 §2.3."""
    def rotl(v, n):
        return ((v << n) & MASK) | (v >> (32 - n))

    def quarter(s, a, b, c, d):
        s[a] = (s[a] + s[b]) & MASK; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & MASK; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & MASK; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & MASK; s[b] = rotl(s[b] ^ s[c], 7)

    words = lambda b: [int.from_bytes(b[i:i + 4], "little") for i in range(0, len(b), 4)]
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + words(key) + [counter] + words(nonce)
    s = list(state)
    for _ in range(10):
        quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13); quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12); quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14)
    return b"".join(((a + b) & MASK).to_bytes(4, "little") for a, b in zip(s, state))


def poly1305(key, msg):
    """RFC 8439 §2.5."""
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        block = msg[i:i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def chacha20_poly1305_open(key, nonce, aad, ciphertext, tag):
    """RFC 8439 §2.8: the plaintext, or None if the tag does not verify."""
    otk = chacha20_block(key, 0, nonce)[:32]
    pad = lambda b: b + bytes(-len(b) % 16)
    mac_data = pad(aad) + pad(ciphertext) + len(aad).to_bytes(8, "little") + len(ciphertext).to_bytes(8, "little")
    if not hmac.compare_digest(poly1305(otk, mac_data), tag):
        return None
    stream = b"".join(chacha20_block(key, 1 + i, nonce) for i in range(len(ciphertext) // 64 + 1))
    return bytes(c ^ k for c, k in zip(ciphertext, stream))


def aes_256_gcm_open(key, nonce, aad, ciphertext, tag):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        return "skipped"
    try:
        return AESGCM(key).decrypt(nonce, ciphertext + tag, aad)
    except Exception:
        return None


def open_sealed(datagram, largest, cipher, key):
    """§11.4: the header (version 1's layout) is the associated data, the nonce is four zero
    bytes and the full packet number, the last 16 bytes are the tag."""
    flags = datagram[2]
    length = (flags & 0x03) + 1
    header_len = 11 + length + 4
    number = expand(int.from_bytes(datagram[11:11 + length], "big"), length, largest)
    nonce = bytes(4) + number.to_bytes(8, "big")
    aad, body, tag = datagram[:header_len], datagram[header_len:-16], datagram[-16:]
    if cipher == "chacha20-poly1305":
        return chacha20_poly1305_open(key, nonce, aad, body, tag)
    return aes_256_gcm_open(key, nonce, aad, body, tag)


def expand(truncated, length, largest):
    expected = 0 if largest is None else largest + 1
    window = 1 << (8 * length)
    half = window // 2
    candidate = (expected & ~(window - 1)) | truncated
    if candidate + half <= expected and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half and candidate >= window:
        return candidate - window
    return candidate


def check(datagram, largest):
    if datagram[0:2] == b"\x00\x00":
        covered = datagram[:-4]  # VERSION_REJECT: no packet number
    else:
        flags = datagram[2]
        start = 19 if flags & 0x80 else 11
        length = (flags & 0x03) + 1
        number = expand(int.from_bytes(datagram[start:start + length], "big"), length, largest)
        covered = number.to_bytes(8, "big") + datagram[:-4]
    return zlib.crc32(covered) == int.from_bytes(datagram[-4:], "big")


def digest_ok(line):
    """A decoded STREAM line (text form, spec/vectors/README.md): a whole stream's digest
    must be the SHA-256 of its data; other lines pass."""
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    whole = fields.get("offset") == "0" and " fin" in line
    if "digest" not in fields or not whole:
        return True
    return hashlib.sha256(bytes.fromhex(fields["data"])).hexdigest() == fields["digest"]


def main():
    checked = failed = digests = sealed = skipped = updates = 0
    for path in sorted(pathlib.Path(__file__).parent.glob("*.txt")):
        for record in path.read_text().split("\nvector ")[1:]:
            lines = record.split("\n")
            data, largest, ok = bytearray(), None, False
            cipher = key_bytes = next_key = None
            for line in lines:
                key, _, rest = line.partition(" ")
                if key == "cipher":
                    cipher = rest
                elif key == "key":
                    key_bytes = bytes.fromhex(rest)
                elif key == "next":
                    next_key = bytes.fromhex(rest)
                elif key == "hex":
                    data += bytes.fromhex(rest)
                elif key == "zeros":
                    data += bytes(int(rest))
                elif key == "largest" and rest != "none":
                    largest = int(rest)
                elif key == "ok":
                    ok = True
                elif key == "|" and "digest=" in rest:
                    digests += 1
                    if not digest_ok(rest):
                        failed += 1
                        print(f"{path.name}: {lines[0]}: digest is not the data's SHA-256", file=sys.stderr)
            if next_key is not None:
                updates += 1
                if hmac.new(key_bytes, b"weir key update", hashlib.sha256).digest() != next_key:
                    failed += 1
                    print(f"{path.name}: {lines[0]}: the next key is not HMAC-SHA-256(key, label)", file=sys.stderr)
                continue
            if not ok:
                continue
            if cipher is not None:
                opened = open_sealed(bytes(data), largest, cipher, key_bytes)
                if opened == "skipped":
                    skipped += 1
                    continue
                sealed += 1
                if opened is None:
                    failed += 1
                    print(f"{path.name}: {lines[0]}: tag does not verify", file=sys.stderr)
                continue
            checked += 1
            if not check(bytes(data), largest):
                failed += 1
                print(f"{path.name}: {lines[0]}: trailer does not check", file=sys.stderr)
    print(
        f"{checked} trailers, {sealed} sealed packets ({skipped} skipped: no AES implementation), "
        f"{updates} key updates and {digests} digests checked, {failed} failed"
    )
    return 1 if failed or checked == 0 or digests == 0 or sealed == 0 or updates == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
