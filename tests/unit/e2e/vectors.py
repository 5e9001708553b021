#!/usr/bin/env python3
"""Independent check of the e2e test vectors.

Recomputes the handshake, traffic keys, first records, public-key text, fingerprint and
passphrase psk from the construction written down in docs/security.md ("End-to-end
encryption"), using PyNaCl only (python3-nacl), and compares them with what the C++
implementation prints:

    vectors.py UNIT_E2E_BINARY

runs `UNIT_E2E_BINARY "[.print-vectors]"` and reads its "vector NAME HEX" lines. Exits 0
when every vector matches, 1 on any difference, 2 on a usage/environment problem.

    vectors.py --corpus DIR

writes seed inputs for tests/fuzz/fuzz_e2e.cpp (valid handshake messages and records under
the same fixed secrets) into DIR, normally tests/fuzz/corpus/fuzz_e2e.
"""
import base64
import subprocess
import sys

try:
    import nacl.bindings as b
    import nacl.encoding
    import nacl.hash
    import nacl.pwhash
except ImportError:  # pragma: no cover
    print("vectors.py: PyNaCl is missing (apt-get install python3-nacl)", file=sys.stderr)
    sys.exit(2)

# ---- the construction, as docs/security.md states it ------------------------------------

NAME_NK = b"nl-e2e/1 Noise_NK_25519_XChaChaPoly_BLAKE2b"
NAME_NKPSK0 = b"nl-e2e/1 Noise_NKpsk0_25519_XChaChaPoly_BLAKE2b"
LABEL_CK = b"nl-e2e/1 ck"
LABEL_K1 = b"nl-e2e/1 k1"
LABEL_K2 = b"nl-e2e/1 k2"
LABEL_I2R = b"nl-e2e/1 initiator->responder"
LABEL_R2I = b"nl-e2e/1 responder->initiator"
VERSION = b"\x01"
ZERO_NONCE = bytes(24)


def blake2b(data, key=b""):
    """BLAKE2b with a 32-byte output, keyed when key is given."""
    return nacl.hash.blake2b(data, digest_size=32, key=key, encoder=nacl.encoding.RawEncoder)


def dh(secret, public):
    out = b.crypto_scalarmult(secret, public)
    assert out != bytes(32), "all-zero X25519 output must be refused"
    return out


def aead(key, nonce, ad, plain):
    return b.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, nonce, key)


def mix_key(ck, data, label):
    prk = blake2b(data, key=ck)
    return blake2b(LABEL_CK, key=prk), (blake2b(label, key=prk) if label else None)


def handshake(rs_secret, e_secret, re_secret, psk, payload1, payload2):
    rs = b.crypto_scalarmult_base(rs_secret)
    e = b.crypto_scalarmult_base(e_secret)
    re = b.crypto_scalarmult_base(re_secret)

    h = blake2b(NAME_NKPSK0 if psk is not None else NAME_NK)
    ck = h
    h = blake2b(h + rs)
    if psk is not None:
        ck, _ = mix_key(ck, psk, None)
    # message 1: version || e || AEAD(k1, 0, h, payload1)
    h = blake2b(h + e)
    ck, k1 = mix_key(ck, dh(e_secret, rs), LABEL_K1)
    c1 = aead(k1, ZERO_NONCE, h, payload1)
    h = blake2b(h + c1)
    message1 = VERSION + e + c1
    # message 2: re || AEAD(k2, 0, h, payload2)
    h = blake2b(h + re)
    ck, k2 = mix_key(ck, dh(re_secret, e), LABEL_K2)
    c2 = aead(k2, ZERO_NONCE, h, payload2)
    h = blake2b(h + c2)
    message2 = re + c2
    # split
    k_i2r = blake2b(LABEL_I2R + h, key=ck)
    k_r2i = blake2b(LABEL_R2I + h, key=ck)
    # The responder's view must agree: es from its static secret, ee from its ephemeral.
    assert b.crypto_scalarmult(rs_secret, e) == dh(e_secret, rs)
    assert b.crypto_scalarmult(e_secret, re) == dh(re_secret, e)
    return message1, message2, k_i2r, k_r2i


def record(key, seq, plain, final):
    header = bytes([1 if final else 0]) + len(plain).to_bytes(3, "big")
    nonce = seq.to_bytes(8, "little") + bytes(16)
    return header + aead(key, nonce, header, plain)


def public_text(pub):
    return b"nl1:" + base64.urlsafe_b64encode(pub).rstrip(b"=")


def fingerprint(pub):
    h = blake2b(b"nl e2e fingerprint" + pub)[:10].hex()
    return ":".join(h[i:i + 4] for i in range(0, 20, 4)).encode()


def passphrase_psk(phrase, agent_public):
    salt = blake2b(b"nl e2e psk" + agent_public)[:16]
    return nacl.pwhash.argon2id.kdf(32, phrase, salt,
                                    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
                                    memlimit=nacl.pwhash.argon2id.MEMLIMIT_MODERATE)


def counting(first):
    return bytes((first + i) & 0xFF for i in range(32))


def expected_vectors():
    v = {}
    rs_secret = counting(0x00)
    agent_public = b.crypto_scalarmult_base(rs_secret)
    v["agent_public"] = agent_public
    v["agent_public_text"] = public_text(agent_public)
    v["agent_fingerprint"] = fingerprint(agent_public)
    for prefix, psk in (("nk_", None), ("nkpsk0_", counting(0x60))):
        m1, m2, k_i2r, k_r2i = handshake(rs_secret, counting(0x20), counting(0x40), psk,
                                         b"tcp example.com:22", b"ok")
        v[prefix + "message1"] = m1
        v[prefix + "message2"] = m2
        v[prefix + "key_i2r"] = k_i2r
        v[prefix + "key_r2i"] = k_r2i
        v[prefix + "record_i2r_0"] = record(k_i2r, 0, b"hello", False)
        v[prefix + "record_i2r_1"] = record(k_i2r, 1, b"", True)
        v[prefix + "record_r2i_0"] = record(k_r2i, 0, b"bye", True)
    v["passphrase_psk"] = passphrase_psk(b"correct horse battery staple", agent_public)
    return {name: value.hex() for name, value in v.items()}


# ---- fuzz seeds -------------------------------------------------------------------------

def write_corpus(directory):
    import pathlib
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    v = {k: bytes.fromhex(x) for k, x in expected_vectors().items()}
    seeds = {
        "message1_nk": b"\x00" + v["nk_message1"],
        "message1_psk": b"\x10" + v["nkpsk0_message1"],
        "message2_nk": b"\x01" + v["nk_message2"],
        "message2_psk": b"\x11" + v["nkpsk0_message2"],
        "records_final": b"\x02" + v["nk_record_i2r_0"] + v["nk_record_i2r_1"],
        "records_open": b"\x02" + v["nk_record_i2r_0"],
        "differential": b"\x03" + (5).to_bytes(2, "little") + b"hello"
                        + (0x8000 | 3).to_bytes(2, "little") + b"bye",
    }
    for name, data in seeds.items():
        (d / name).write_bytes(data)
    print(f"vectors.py: wrote {len(seeds)} seeds to {d}")
    return 0


# ---- comparison -------------------------------------------------------------------------

def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
        return write_corpus(sys.argv[2])
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: vectors.py UNIT_E2E_BINARY | vectors.py --corpus DIR", file=sys.stderr)
        return 2
    run = subprocess.run([sys.argv[1], "[.print-vectors]"], capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout + run.stderr, file=sys.stderr)
        print(f"vectors.py: {sys.argv[1]} exited with {run.returncode}", file=sys.stderr)
        return 1
    got = {}
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "vector":
            got[parts[1]] = parts[2]

    want = expected_vectors()
    failures = 0
    for name in sorted(set(want) | set(got)):
        if name not in got:
            print(f"MISSING from C++ output: {name}")
            failures += 1
        elif name not in want:
            print(f"UNEXPECTED in C++ output: {name}")
            failures += 1
        elif got[name] != want[name]:
            print(f"DIFFERS {name}\n  c++:    {got[name]}\n  python: {want[name]}")
            failures += 1
    if failures:
        print(f"vectors.py: {failures} of {len(want)} vectors differ")
        return 1
    print(f"vectors.py: all {len(want)} vectors match the independent PyNaCl computation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
