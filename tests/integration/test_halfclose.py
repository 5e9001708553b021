"""Half-close end to end: shutting one direction must not cut the other one.

client -> target: the client sends a request, shuts its write side, and the full reply the
target computes only after EOF (sha256 of the request) still arrives.
target -> client: the target sends a banner and shuts its write side first; the client
sees EOF, then still sends data that the target receives completely.
"""

import hashlib
import os
import socket

from nltest import recv_all, socks5_open


def _trio(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    return gw


def test_halfclose_via_socks(nl):
    gw = _trio(nl)
    socks = nl.start_socks(gw)
    hs = nl.hash_server()
    for size in (0, 1, 100_000, 5 * 1024 * 1024):
        data = os.urandom(size)
        with socks5_open(socks.port, "127.0.0.1", hs.port) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = recv_all(s, timeout=30).decode()
        assert reply == f"{hashlib.sha256(data).hexdigest()} {size}\n", f"size {size}: reply {reply!r}"


def test_target_halfcloses_first_via_socks(nl):
    gw = _trio(nl)
    socks = nl.start_socks(gw)
    bs = nl.banner_server()
    with socks5_open(socks.port, "127.0.0.1", bs.port) as s:
        # EOF after the banner while our side is still open
        assert recv_all(s, timeout=15) == bs.BANNER
        data = os.urandom(1024 * 1024)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert bs.done.wait(15), "the target never got EOF"
    assert bs.results[-1] == (hashlib.sha256(data).hexdigest(), len(data))


def test_halfclose_via_connect(nl):
    gw = _trio(nl)
    hs = nl.hash_server()
    data = os.urandom(3 * 1024 * 1024)
    r = nl.run(nl.connect_argv(gw, hs.addr), input=data, timeout=60)
    assert r.returncode == 0, f"connect exit {r.returncode}: {r.stderr_text}"
    assert r.stdout_text == f"{hashlib.sha256(data).hexdigest()} {len(data)}\n"


def test_halfclose_via_forward(nl):
    gw = _trio(nl)
    hs = nl.hash_server()
    fwd = nl.start_forward(gw, [f"0:{hs.addr}"])
    data = os.urandom(777_777)
    with socket.create_connection(("127.0.0.1", fwd.ports[hs.addr]), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s, timeout=30).decode() == f"{hashlib.sha256(data).hexdigest()} {len(data)}\n"
