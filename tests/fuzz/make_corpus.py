#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (a few valid inputs each).

The files are committed; rerun this only when a format changes. It encodes the formats
independently of the C++ code (frame layout from docs/protocol.md and proto/frame.hpp,
SOCKS5 per RFC 1928/1929, HS256 JWTs with the fuzz target's fixed secret 00..1f).

    tests/fuzz/make_corpus.py [TARGET...]    only these targets' seeds (default: all)
"""
import base64
import hashlib
import hmac
import json
import pathlib
import struct
import sys

root = pathlib.Path(__file__).resolve().parent / "corpus"
only = set(sys.argv[1:])


def write(target, name, data):
    if only and target not in only:
        return
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


# OPEN: u32 window | u8 protocol (0 hidden, 1 tcp, 2 udp) | u16 port | s8 host | s8 peer |
#       s16 envelope | u8 count + s8 group * count | s16 policy
def open_payload(window, proto, port, host, peer, envelope=b"", groups=(), policy=b""):
    return (struct.pack(">IBH", window, proto, port) + s8(host) + s8(peer) + s16(envelope)
            + bytes([len(groups)]) + b"".join(s8(g) for g in groups) + s16(policy))


# OPEN_RESULT: u8 code | u32 window | s16 message | s16 envelope
def open_result_payload(code, window, message=b"", envelope=b""):
    return struct.pack(">BI", code, window) + s16(message) + s16(envelope)


policy = json.dumps({"default": "deny", "rules": [{"allow": {"cidr": ["10.0.0.0/8"], "ports": "22"}}]},
                    separators=(",", ":")).encode()
frames = {
    "hello": frame(1, 0, struct.pack(">BII", 1, 25000, 1024) + s16(b"acme/laptop") + s16(b"nl-gateway 0.1.0")),
    "open": frame(2, 1, open_payload(262144, 1, 443, b"example.com", b"home")),
    "open_udp_v6": frame(2, 3, open_payload(65536, 2, 53, b"2001:db8::1", b"")),
    "open_e2e": frame(2, 5, open_payload(65536, 0, 0, b"", b"home", bytes(range(40)))),
    "open_policy": frame(2, 2, open_payload(2097152, 1, 22, b"nas.lan", b"acme/alice", b"", (b"ops", b"dev-team"), policy)),
    "open_e2e_policy": frame(2, 4, open_payload(2097152, 0, 0, b"", b"acme/alice", bytes(range(48, 120)), (b"ops",),
                                                policy)),
    "open_result_ok": frame(3, 1, open_result_payload(0, 262144)),
    "open_result_denied": frame(3, 1, open_result_payload(6, 0, b"denied by rule 3")),
    "open_result_e2e": frame(3, 1, open_result_payload(0, 262144, b"", bytes(range(64)))),
    "open_result_e2e_denied": frame(3, 3, open_result_payload(6, 0, b"refused (details are end-to-end encrypted)",
                                                              bytes(range(100, 164)))),
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

# The same target reads its input as an e2e request, an e2e verdict and UDP stream bytes.
# e2e request: u8 version 1 | u8 protocol (1 tcp, 2 udp) | u16 port | s8 host
write("fuzz_frame", "e2e_request_tcp", bytes([1, 1]) + struct.pack(">H", 443) + s8(b"example.com"))
write("fuzz_frame", "e2e_request_udp_v6", bytes([1, 2]) + struct.pack(">H", 53) + s8(b"fd00::53"))
# e2e verdict: u8 code | s16 message
write("fuzz_frame", "e2e_verdict_ok", bytes([0]) + s16(b""))
write("fuzz_frame", "e2e_verdict_denied", bytes([6]) + s16(b"denied by rule 2: deny cidr=10.0.0.0/8"))
# datagrams: u16 length | bytes, back to back (a DNS query, an empty one, a partial one)
dns_query = bytes.fromhex("12340100000100000000000003777777076578616d706c6503636f6d0000010001")
write("fuzz_frame", "datagrams", s16(dns_query) + s16(b"") + s16(b"x" * 300) + struct.pack(">H", 1000) + b"part")
write("fuzz_frame", "datagram_max", struct.pack(">H", 65507) + bytes(65507))

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
    "udp_datagram_v6": bytes([0, 0, 0, 4]) + bytes.fromhex("fd000000000000000000000000000053") + bytes([0, 53])
    + b"\xab\xcd\x01\x00",
    "udp_datagram_empty": bytes([0, 0, 0, 1, 10, 0, 0, 1, 0x1F, 0x90]),
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

# --- IP packets as a TUN device hands them over (RFC 791/8200 headers, RFC 793/768/792/4443
#     transports), with correct RFC 1071 checksums ---


def inet_sum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def inet_checksum(b):
    return ~inet_sum(b) & 0xFFFF


def pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack(">BBH", 0, proto, length)
    return src + dst + struct.pack(">IxxxB", length, proto)


def with_l4_checksum(src, dst, proto, seg, at):
    c = inet_checksum(pseudo(src, dst, proto, len(seg)) + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:at] + struct.pack(">H", c) + seg[at + 2:]


def ip4(src, dst, proto, l4, options=b""):
    ihl = 5 + len(options) // 4
    h = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), 0x1C46, 0x4000, 64, proto, 0, src, dst) + options
    return h[:10] + struct.pack(">H", inet_checksum(h)) + h[12:] + l4


def ip6(src, dst, proto, l4, ext=()):
    """ext: (type, body) pairs; each body is padded so the header is a multiple of 8 bytes."""
    chain = b""
    types = [t for t, _ in ext] + [proto]
    for i, (_, body) in enumerate(ext):
        hdr = bytes([types[i + 1], 0]) + body
        hdr += bytes(-len(hdr) % 8)
        chain += bytes([hdr[0], len(hdr) // 8 - 1]) + hdr[2:]
    payload = chain + l4
    return struct.pack(">IHBB16s16s", 0x60000000, len(payload), types[0], 64, src, dst) + payload


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", options=b""):
    off = (20 + len(options)) // 4
    seg = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 64240, 0, 0) + options + payload
    return with_l4_checksum(src, dst, 6, seg, 16)


def udp(src, dst, sport, dport, payload):
    seg = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    return with_l4_checksum(src, dst, 17, seg, 6)


def icmp4(typ, code, rest):
    msg = bytes([typ, code, 0, 0]) + rest
    return msg[:2] + struct.pack(">H", inet_checksum(msg)) + msg[4:]


def icmp6(src, dst, typ, code, rest):
    return with_l4_checksum(src, dst, 58, bytes([typ, code, 0, 0]) + rest, 2)


a4, b4 = bytes([10, 0, 0, 2]), bytes([93, 184, 216, 34])
a6 = bytes.fromhex("fd000000000000000000000000000002")
b6 = bytes.fromhex("20010db8000000000000000000000034")
# MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (a Linux SYN's options)
syn_opts = bytes.fromhex("020405b40402080a0001e2400000000001030307")
syn4 = ip4(a4, b4, 6, tcp(a4, b4, 40000, 443, 0x1234ABCD, 0, 0x02, options=syn_opts))
packets = {
    "tcp4_syn": syn4,
    "tcp4_data": ip4(a4, b4, 6, tcp(a4, b4, 40000, 443, 1001, 77, 0x18, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
    "tcp4_fin_ack": ip4(a4, b4, 6, tcp(a4, b4, 40000, 443, 2000, 78, 0x11)),
    "tcp4_rst": ip4(b4, a4, 6, tcp(b4, a4, 443, 40000, 78, 0, 0x04)),
    "udp4_dns": ip4(a4, bytes([198, 18, 0, 53]), 17, udp(a4, bytes([198, 18, 0, 53]), 5353, 53, dns_query)),
    "udp4_no_checksum": ip4(a4, b4, 17, struct.pack(">HHHH", 1000, 2000, 12, 0) + b"ping"),
    "udp4_options_padding": ip4(a4, b4, 17, udp(a4, b4, 1, 2, b"x"), options=bytes([1, 1, 1, 0])) + bytes(6),
    "icmp4_echo": ip4(a4, b4, 1, icmp4(8, 0, struct.pack(">HH", 1, 1) + b"abcdefgh")),
    "icmp4_unreachable": ip4(b4, a4, 1, icmp4(3, 3, bytes(4) + syn4[:28])),
    "tcp6_syn": ip6(a6, b6, 6, tcp(a6, b6, 50000, 22, 1, 0, 0x02, options=syn_opts)),
    "tcp6_ack_ext": ip6(a6, b6, 6, tcp(a6, b6, 50000, 22, 2, 3, 0x10, b"SSH-2.0"),
                        ext=[(0, bytes([1, 4, 0, 0, 0, 0])), (60, bytes([1, 4, 0, 0, 0, 0]))]),
    "udp6_quic": ip6(a6, b6, 17, udp(a6, b6, 50001, 443, bytes([0xC3]) + bytes(40))),
    "udp6_routing": ip6(a6, b6, 17, udp(a6, b6, 1, 2, b"r"), ext=[(43, bytes([0, 0, 0, 0, 0, 0]))]),
    "icmp6_echo": ip6(a6, b6, 58, icmp6(a6, b6, 128, 0, struct.pack(">HH", 7, 1) + b"ping")),
    "icmp6_unreachable": ip6(b6, a6, 58, icmp6(b6, a6, 1, 4, bytes(4) + ip6(a6, b6, 17, udp(a6, b6, 1, 2, b"q")))),
    "frag6": ip6(a6, b6, 17, udp(a6, b6, 1, 2, b"f"), ext=[(44, bytes(6))]),
}
frag4 = bytearray(ip4(a4, b4, 17, udp(a4, b4, 1, 2, b"frag")))
frag4[6:8] = struct.pack(">H", 0x2000)  # MF
frag4[10:12] = b"\0\0"
frag4[10:12] = struct.pack(">H", inet_checksum(bytes(frag4[:20])))
packets["frag4"] = bytes(frag4)
for name, data in packets.items():
    write("fuzz_packet", name, data)
