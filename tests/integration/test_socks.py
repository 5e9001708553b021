"""SOCKS5 and HTTP CONNECT on the client's socks port, with curl and with a raw client."""

import hashlib
import os

import pytest

from nltest import SocksError, echo_roundtrip, free_port, http_connect, pattern_sha256, socks5_open, socks5_reply_code


@pytest.fixture
def trio(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    return gw


def test_curl_socks5h_fetches_page(nl, trio):
    http = nl.http_server()
    socks = nl.start_socks(trio)
    r = nl.curl("--proxy", socks.url, http.url + "/")
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert "Hello from behind the agent" in r.stdout_text
    # name resolved by the agent (socks5h sends the name)
    r = nl.curl("--proxy", socks.url, f"http://localhost:{http.port}/")
    assert r.returncode == 0, f"curl via name: exit {r.returncode}: {r.stderr_text}"
    assert "Hello from behind the agent" in r.stdout_text
    # socks5:// (curl resolves, sends an IPv4 address)
    r = nl.curl("--proxy", f"socks5://127.0.0.1:{socks.port}", http.url + "/")
    assert r.returncode == 0, f"curl socks5:// exit {r.returncode}: {r.stderr_text}"


def test_curl_socks_bulk_integrity(nl, trio):
    http = nl.http_server()
    socks = nl.start_socks(trio)
    n = 24 * 1024 * 1024
    out = nl.tmp / "bulk.bin"
    r = nl.curl("--proxy", socks.url, "-o", out, f"{http.url}/bytes/{n}", timeout=60)
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert out.stat().st_size == n
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(n)


def test_http_connect_with_curl(nl, trio):
    http = nl.http_server()
    socks = nl.start_socks(trio)
    # curl -x http://proxy --proxytunnel: CONNECT then GET inside the tunnel
    r = nl.curl("-x", f"http://127.0.0.1:{socks.port}", "--proxytunnel", http.url + "/")
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert "Hello from behind the agent" in r.stdout_text
    # a plain proxy GET (not CONNECT) is refused with 405
    r = nl.curl("-x", f"http://127.0.0.1:{socks.port}", "-o", "/dev/null", "-w", "%{http_code}", http.url + "/")
    assert r.stdout_text == "405", f"proxy GET -> {r.stdout_text} ({r.stderr_text})"


def test_http_connect_raw(nl, trio):
    echo = nl.echo_server()
    socks = nl.start_socks(trio)
    st, hdr, s = http_connect(socks.port, echo.addr)
    with s:
        assert st == 200, (st, hdr)
        data = os.urandom(256 * 1024)
        assert echo_roundtrip(s, data) == data
    st, hdr, s = http_connect(socks.port, "no-port-here")
    s.close()
    assert st == 400, (st, hdr)


def test_socks5_raw_echo_and_ipv4_domain(nl, trio):
    echo = nl.echo_server()
    socks = nl.start_socks(trio)
    for host in ("127.0.0.1", "localhost"):
        with socks5_open(socks.port, host, echo.port) as s:
            data = os.urandom(100_000)
            assert echo_roundtrip(s, data) == data


def test_socks5_user_pass(nl, trio):
    echo = nl.echo_server()
    http = nl.http_server()
    socks = nl.start_socks(trio, user="alice", password="s3cret")

    # right credentials
    with socks5_open(socks.port, "127.0.0.1", echo.port, user="alice", password="s3cret") as s:
        assert echo_roundtrip(s, b"hello") == b"hello"
    # no-auth only offered: the server must pick 0xFF
    with pytest.raises(SocksError) as e:
        socks5_open(socks.port, "127.0.0.1", echo.port, methods=[0x00])
    assert (e.value.stage, e.value.code) == ("method", 0xFF)
    # wrong password / user: RFC 1929 status != 0
    for u, p in (("alice", "wrong"), ("bob", "s3cret"), ("", "")):
        with pytest.raises(SocksError) as e:
            socks5_open(socks.port, "127.0.0.1", echo.port, user=u, password=p)
        assert e.value.stage == "auth" and e.value.code != 0, e.value

    # curl with and without credentials
    r = nl.curl("--proxy", f"socks5h://alice:s3cret@127.0.0.1:{socks.port}", http.url + "/")
    assert r.returncode == 0 and "Hello from behind the agent" in r.stdout_text, r.stderr_text
    r = nl.curl("--proxy", f"socks5h://alice:nope@127.0.0.1:{socks.port}", http.url + "/")
    assert r.returncode == 97, f"curl with a wrong password: exit {r.returncode} {r.stderr_text}"
    r = nl.curl("--proxy", f"socks5h://127.0.0.1:{socks.port}", http.url + "/")
    assert r.returncode == 97, f"curl without credentials: exit {r.returncode} {r.stderr_text}"

    # HTTP CONNECT on the same port: 407 without, 200 with Basic credentials
    st, hdr, s = http_connect(socks.port, echo.addr)
    s.close()
    assert st == 407, (st, hdr)
    assert "proxy-authenticate" in hdr, hdr
    st, hdr, s = http_connect(socks.port, echo.addr, auth=("alice", "s3cret"))
    with s:
        assert st == 200, (st, hdr)
        assert echo_roundtrip(s, b"x" * 1000) == b"x" * 1000
    r = nl.curl("-x", f"http://alice:s3cret@127.0.0.1:{socks.port}", "--proxytunnel", http.url + "/")
    assert r.returncode == 0 and "Hello from behind the agent" in r.stdout_text, r.stderr_text


def test_socks_many_sequential_curls(nl, trio):
    """Each new stream costs no new handshake: 50 curls in a row all succeed quickly."""
    http = nl.http_server()
    socks = nl.start_socks(trio)
    for i in range(50):
        r = nl.curl("--proxy", socks.url, http.url + "/", timeout=15)
        assert r.returncode == 0, f"curl #{i}: exit {r.returncode}: {r.stderr_text}"


def test_early_reply_answers_before_the_agent(nl):
    """socks --early-reply: CONNECT is answered with success at once, and what follows rides
    with the stream's OPEN. A refusal can then only close the connection. Streams to a pinned
    (end-to-end) agent still wait for the agent and carry its reply code."""
    from test_e2e import agent_key
    gw = nl.start_gateway()
    key_file = nl.tmp / "agent.key"
    pub, _ = agent_key(nl, key_file)
    nl.start_agent(gw, "home", deny=("domain=*.blocked.test",), extra=["--key-file", key_file])
    http = nl.http_server()
    echo = nl.echo_server()
    socks = nl.start_socks(gw, extra=["--early-reply"])
    r = nl.curl("--proxy", socks.url, http.url + "/")
    assert r.returncode == 0 and "Hello from behind the agent" in r.stdout_text, r.stderr_text
    r = nl.curl("-x", f"http://127.0.0.1:{socks.port}", "--proxytunnel", http.url + "/")
    assert r.returncode == 0 and "Hello from behind the agent" in r.stdout_text, r.stderr_text
    # more than the early-data window before the first read: the rest waits for the answer
    with socks5_open(socks.port, "127.0.0.1", echo.port) as s:
        data = os.urandom(300_000)
        assert echo_roundtrip(s, data) == data

    def closes_after_success(host: str, port: int) -> None:
        s = socks5_open(socks.port, host, port, timeout=10)  # success: answered before the verdict
        with s:
            try:
                got = s.recv(1)
            except ConnectionResetError:
                got = b""
            assert got == b"", f"{host}:{port}: expected the connection to close, read {got!r}"

    closes_after_success("www.blocked.test", 80)
    socks.proc.wait_line(r"socks www\.blocked\.test:80 via home: denied", timeout=10)
    closed = free_port()
    closes_after_success("127.0.0.1", closed)
    socks.proc.wait_line(rf"socks 127\.0\.0\.1:{closed} via home: .*refused", timeout=10)
    st, hdr, s = http_connect(socks.port, "www.blocked.test:443")
    with s:
        assert st == 200, (st, hdr)
        assert s.recv(1) == b""

    sealed = nl.start_socks(gw, extra=["--early-reply", "--pin", f"home={pub}"])
    assert socks5_reply_code(sealed.port, "www.blocked.test", 80) == 0x02
    with socks5_open(sealed.port, "127.0.0.1", echo.port) as s:
        assert echo_roundtrip(s, b"sealed") == b"sealed"
