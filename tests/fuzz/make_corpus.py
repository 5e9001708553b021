#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (a few valid inputs each).

The files are committed; rerun this only when a format changes. It encodes the formats
independently of the C++ code (frame layout from proto/frame.hpp, SOCKS5 per RFC 1928/1929,
HS256 JWTs with the fuzz target's fixed secret 00..1f).
"""
import base64
import hashlib
import hmac
import json
import pathlib
import struct

root = pathlib.Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- frames: u8 type | u8 flags | u16 reserved | u32 stream | u32 length | payload ---
def frame(t, sid, payload=b""):
    return struct.pack(">BBHII", t, 0, 0, sid, len(payload)) + payload


def s8(b):
    return bytes([len(b)]) + b


def s16(b):
    return struct.pack(">H", len(b)) + b


frames = {
    "hello": frame(1, 0, struct.pack(">BII", 1, 25000, 1024) + s16(b"acme/laptop") + s16(b"nl-gateway 0.1.0")),
    "open": frame(2, 1, struct.pack(">IBH", 262144, 1, 443) + s8(b"example.com") + s8(b"home") + s16(b"")),
    "open_udp_v6": frame(2, 3, struct.pack(">IBH", 65536, 2, 53) + s8(b"2001:db8::1") + s8(b"") + s16(b"")),
    "open_e2e": frame(2, 5, struct.pack(">IBH", 65536, 1, 0) + s8(b"") + s8(b"acme/laptop") + s16(bytes(range(40)))),
    "open_result_ok": frame(3, 1, struct.pack(">BI", 0, 262144) + s16(b"")),
    "open_result_denied": frame(3, 1, struct.pack(">BI", 6, 0) + s16(b"denied by rule 3")),
    "data": frame(4, 1, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    "window": frame(5, 1, struct.pack(">I", 65536)),
    "fin": frame(6, 1),
    "reset": frame(7, 1, bytes([10]) + s16(b"stream aborted by peer")),
    "ping": frame(8, 0, struct.pack(">Q", 0x0102030405060708)),
    "pong": frame(9, 0, struct.pack(">Q", 42)),
    "goaway": frame(10, 0, bytes([1]) + s16(b"replaced")),
}
for name, data in frames.items():
    write("fuzz_frame", name, data)
write("fuzz_frame", "session", b"".join(frames.values()))

# --- SOCKS5 ---
socks = {
    "greeting": bytes([5, 2, 0, 2]),
    "userpass": bytes([1, 5]) + b"alice" + bytes([6]) + b"secret",
    "connect_v4": bytes([5, 1, 0, 1, 127, 0, 0, 1, 0x1F, 0x90]),
    "connect_v6": bytes([5, 1, 0, 4]) + bytes(15) + bytes([1]) + bytes([0, 22]),
    "connect_domain": bytes([5, 1, 0, 3, 11]) + b"example.com" + bytes([1, 0xBB]) + b"GET",
    "udp_associate": bytes([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]),
    "udp_datagram_v4": bytes([0, 0, 0, 1, 8, 8, 8, 8, 0, 53]) + b"\x12\x34\x01\x00",
    "udp_datagram_domain": bytes([0, 0, 0, 3, 7]) + b"dns.lan" + bytes([0, 53]) + b"q",
}
for name, data in socks.items():
    write("fuzz_socks5", name, data)

# --- HTTP CONNECT ---
http = {
    "connect": "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "connect_v6_auth": "CONNECT [2001:db8::1]:22 HTTP/1.0\r\nProxy-Authorization: Basic "
    + base64.b64encode(b"alice:secret").decode()
    + "\r\nUser-Agent: curl/7.88.1\r\n\r\n\x16\x03\x01",
    "get": "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "partial": "CONNECT host.lan:8080 HTTP/1.1\r\nProxy-Connection: keep",
}
for name, data in http.items():
    write("fuzz_http_connect", name, data)

# --- tokens (secret 00..1f, as in fuzz_token.cpp) ---
secret = bytes(range(32))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, payload):
    inp = b64u(header.encode()) + "." + b64u(payload.encode())
    return inp + "." + b64u(hmac.new(secret, inp.encode(), hashlib.sha256).digest())


hdr = json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"))
claims = {"ten": "acme", "sub": "home", "role": "agent", "iat": 1700000000, "exp": 1700003600,
          "jti": "00112233445566778899aabbccddeeff"}
with_pol = dict(claims, role="client", sub="laptop", nbf=1699999000,
                pol={"allow": [{"cidr": "10.0.0.0/8", "ports": "22,80-90"}], "deny": [{"domain": "*.corp"}]})
p1 = json.dumps(claims, sort_keys=True, separators=(",", ":"))
p2 = json.dumps(with_pol, sort_keys=True, separators=(",", ":"))
write("fuzz_token", "token", jwt(hdr, p1))
write("fuzz_token", "token_policy", jwt(hdr, p2) + "\n")
write("fuzz_token", "signed_claims", hdr + "\n" + p1)
write("fuzz_token", "signed_policy", hdr + "\n" + p2)
write("fuzz_token", "secret", b64u(secret) + "\n")
