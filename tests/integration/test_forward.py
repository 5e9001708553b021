"""`nl-client forward -L ...`: two forwards from one process, data integrity, many connections."""

import hashlib
import os
import socket
import threading

from nltest import echo_roundtrip, pattern_sha256, recv_all


def test_two_forwards_integrity(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    echo = nl.echo_server()
    http = nl.http_server()
    fwd = nl.start_forward(gw, [f"0:127.0.0.1:{echo.port}", f"127.0.0.1:0:127.0.0.1:{http.port}"])
    assert set(fwd.ports) == {echo.addr, http.addr}, fwd.ports

    # echo forward: 8 MiB round trip
    with socket.create_connection(("127.0.0.1", fwd.ports[echo.addr]), timeout=30) as s:
        data = os.urandom(8 * 1024 * 1024)
        got = echo_roundtrip(s, data, timeout=60)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()

    # http forward: 16 MiB download with curl
    n = 16 * 1024 * 1024
    out = nl.tmp / "f.bin"
    r = nl.curl("-o", out, f"http://127.0.0.1:{fwd.ports[http.addr]}/bytes/{n}", timeout=60)
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(n)


def test_forward_parallel_connections(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    echo = nl.echo_server()
    fwd = nl.start_forward(gw, [f"0:127.0.0.1:{echo.port}"])
    port = fwd.ports[echo.addr]
    errors = []

    def one(i):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                data = os.urandom(64 * 1024 + i)
                if echo_roundtrip(s, data) != data:
                    errors.append(f"conn {i}: data mismatch")
                s.shutdown(socket.SHUT_WR)
                if recv_all(s, timeout=15) != b"":
                    errors.append(f"conn {i}: extra bytes after EOF")
        except Exception as e:  # noqa: BLE001
            errors.append(f"conn {i}: {e!r}")

    ts = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:5]


def test_forward_request_and_eof_before_the_agent_answers(nl):
    """A forward's first bytes and its half-close go with the stream's OPEN (early data):
    whatever the client sends before the agent has answered, up to and beyond the 32 KiB the
    agent keeps for it, arrives whole and in order, and so does the EOF after it."""
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    hs = nl.hash_server()
    fwd = nl.start_forward(gw, [f"0:127.0.0.1:{hs.port}"])
    port = fwd.ports[hs.addr]
    for size in (1, 5000, 32 * 1024, 32 * 1024 + 1, 300 * 1024):
        data = os.urandom(size)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # at once: no reply has come back yet
            reply = recv_all(s, timeout=30)
        assert reply == f"{hashlib.sha256(data).hexdigest()} {size}\n".encode(), (size, reply)
