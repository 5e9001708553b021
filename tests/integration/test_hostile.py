"""A hostile peer with a valid token, speaking the wire protocol itself (docs/protocol.md).

The gateway must bound what such a peer makes it hold by the protocol's limits, never by
the peer's traffic.
"""

import select
import socket
import struct
import time

from nltest import assert_rss_growth_below, recv_all, wait_until
from wstap import _frame

FLOOD_BYTES = 64 * 1024 * 1024   # PINGs sent at most
FLOOD_DEADLINE = 20.0            # absolute bound for sending them
STALL = 0.5                      # no byte accepted for this long: the gateway stopped reading
MEM_GROWTH_KIB = 16 * 1024


def ws_session(port: int, token: str) -> socket.socket:
    """A plain WebSocket client session (nl.2) on /v1/client whose receive buffer is tiny,
    so that what the gateway sends it soon stays in the gateway."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET /v1/client HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Protocol: nl.2\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, f"gateway closed during the upgrade: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_ping_flood_from_a_peer_that_does_not_read(nl):
    """A client session that sends PINGs as fast as it can and never reads the PONGs. The
    gateway stops reading it once about 1 MiB of answers wait to be sent, as TCP itself
    would; so the flood stalls in the sender's socket, the gateway's memory stays flat, and
    the gateway keeps serving everyone else."""
    gw = nl.start_gateway(tls=False)
    s = ws_session(gw.port, nl.token("client", "t1", "flooder"))
    ping = struct.pack(">BBHIIQ", 0x08, 0, 0, 0, 8, 7)   # PING, stream 0, 8-byte payload
    msg = _frame(0x2, ping * 50_000, masked=True)        # one 1 MB binary message
    mem0 = gw.proc.rss_kib()
    s.setblocking(False)
    view, off, sent, peak = memoryview(msg), 0, 0, mem0
    start = last_progress = time.monotonic()
    while sent < FLOOD_BYTES:
        now = time.monotonic()
        assert now - start < FLOOD_DEADLINE, f"sent {sent} bytes in {FLOOD_DEADLINE} s"
        if now - last_progress > STALL:
            break  # the gateway takes no more
        peak = max(peak, gw.proc.rss_kib())
        _, writable, _ = select.select([], [s], [], 0.05)
        if not writable:
            continue
        try:
            n = s.send(view[off:])
        except BlockingIOError:
            continue
        off, sent, last_progress = (off + n) % len(msg), sent + n, time.monotonic()
    st, _, body = gw.get("/healthz", timeout=5)
    assert st == 200, (st, body)
    peak = max(peak, gw.proc.rss_kib())
    assert sent < FLOOD_BYTES, f"the gateway read all {sent} bytes of PINGs it could not answer"
    assert_rss_growth_below(peak - mem0, MEM_GROWTH_KIB,
                            f"gateway grew by {peak - mem0} KiB while a peer sent {sent >> 20} MiB of PINGs "
                            "and read nothing")
    s.close()
    assert gw.proc.alive()


def upgrade_status(port: int, token: str) -> tuple[int, str]:
    """(HTTP status, X-NL-Error) of a WebSocket upgrade on /v1/client."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/v1/client", headers={
            "Authorization": f"Bearer {token}", "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "nl.2"})
        r = c.getresponse()
        return r.status, r.getheader("X-NL-Error") or ""
    finally:
        c.close()


def test_a_client_holds_at_most_max_client_sessions(nl):
    """One client token cannot open sessions without end: beyond max_client_sessions the
    gateway answers 429 with the reason. Other clients are not affected, and a session that
    ends frees its place."""
    gw = nl.start_gateway(tls=False, config=nl.write_config("gw-limit.yaml", "max_client_sessions: 2\n"))
    laptop, other = nl.token("client", "t1", "laptop"), nl.token("client", "t1", "other")
    first = ws_session(gw.port, laptop)
    second = ws_session(gw.port, laptop)
    gw.proc.wait_line(r"client t1/laptop connected", nth=2, timeout=10)
    st, why = upgrade_status(gw.port, laptop)
    assert st == 429, (st, why)
    assert "client 't1/laptop' already has 2 sessions open, the gateway's max_client_sessions" in why, why
    gw.proc.wait_line(r"refused /v1/client from .*: client 't1/laptop' already has 2 sessions", timeout=10)
    third = ws_session(gw.port, other)  # another client is not counted against laptop
    first.close()
    gw.proc.wait_line(r"client t1/laptop disconnected", timeout=10)
    again = ws_session(gw.port, laptop)
    for s in (second, third, again):
        s.close()


def assert_shed(port: int, why: str):
    """A new connection to the gateway is closed at once, without a byte (5 s bound)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        assert c.recv(1) == b"", why
    except ConnectionResetError:
        pass  # closed with unread data: as good
    finally:
        c.close()


def test_connections_that_never_authenticate_are_capped(nl):
    """Connections that are not yet a session (TLS handshake, HTTP request) count against
    max_pending_connections. Beyond it the gateway closes new connections at once and says
    so; sessions already up are not affected, and once the idle connections go it serves
    new ones again."""
    gw = nl.start_gateway(tls=False, config=nl.write_config("gw-pending.yaml", "max_pending_connections: 4\n"))
    nl.start_agent(gw, "home")
    gw.proc.wait_line(r"agent t1/home online", timeout=10)
    idle = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(4)]
    assert_shed(gw.port, "the connection over the limit was not closed")
    gw.proc.wait_line(r"4 connections being set up at once \(max_pending_connections\); closed 1 new ones",
                      timeout=10)
    for s in idle:
        s.close()
    # The gateway sees the closes in its own time; until then a probe may still be shed.
    wait_until(lambda: gw.get("/healthz", timeout=2)[0] == 200, 10, "the listener to serve again")
    assert gw.agent("home") is not None
    assert len([ln for ln in gw.proc.lines if "agent t1/home online" in ln]) == 1, "the agent's session was dropped"


def test_one_address_cannot_take_every_place(nl):
    """max_pending_per_address: connections being set up from one address are capped on
    their own, so a host that opens many and never authenticates leaves places for other
    addresses. 127.0.0.2 is a second source on loopback."""
    gw = nl.start_gateway(tls=False, config=nl.write_config(
        "gw-per-address.yaml", "max_pending_connections: 100\nmax_pending_per_address: 3\n"))
    idle = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(3)]
    assert_shed(gw.port, "the fourth connection from 127.0.0.1 was not closed")
    gw.proc.wait_line(r"3 connections being set up at once from 127\.0\.0\.1 \(max_pending_per_address\); "
                      r"closed 1 new ones", timeout=10)
    # Another address is served while 127.0.0.1 holds its three.
    other = socket.create_connection(("127.0.0.1", gw.port), timeout=5, source_address=("127.0.0.2", 0))
    other.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    reply = recv_all(other, timeout=5)
    other.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    # Places come back as 127.0.0.1's connections go.
    for s in idle:
        s.close()
    wait_until(lambda: gw.get("/healthz", timeout=2)[0] == 200, 10, "127.0.0.1 to be served again")
