#!/usr/bin/env python3
"""An implementation of spec/protocol.md §3.3 (packet number expansion), §3.5 (the
integrity trailer) and §4.12's DIGEST (SHA-256 of a whole stream) written from the spec
alone, in another language, with zlib's CRC-32 and hashlib's SHA-256: checks the trailer of
every valid vector in spec/vectors/*.txt, and the digest of every STREAM frame that holds a
whole stream (offset 0, fin) with one. CI runs it, so the codec and the spec text cannot
drift apart unnoticed."""
import hashlib
import pathlib
import sys
import zlib


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
    checked = failed = digests = 0
    for path in sorted(pathlib.Path(__file__).parent.glob("*.txt")):
        for record in path.read_text().split("\nvector ")[1:]:
            lines = record.split("\n")
            data, largest, ok = bytearray(), None, False
            for line in lines:
                key, _, rest = line.partition(" ")
                if key == "hex":
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
            if not ok:
                continue
            checked += 1
            if not check(bytes(data), largest):
                failed += 1
                print(f"{path.name}: {lines[0]}: trailer does not check", file=sys.stderr)
    print(f"{checked} trailers and {digests} digests checked, {failed} failed")
    return 1 if failed or checked == 0 or digests == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
