"""QUIC between peers and the gateway: automatic fallback to WebSocket when UDP does not
get through, re-probing and moving to QUIC when it does again, transfers intact under
loss and delay, NAT rebinding, and a wrong certificate. Transport-specific, so these run
in the integration-quic registration only (the rest of the suite runs over both)."""

import hashlib
import os
import re
import time

import pytest
from conftest import CLIENT, TRANSPORT
from nltest import echo_roundtrip, socks5_open, wait_until
from relay import Relay

pytestmark = pytest.mark.skipif(TRANSPORT != "quic", reason="QUIC-specific (runs as integration-quic/test_quic)")


@pytest.fixture
def relay_for(request):
    relays = []

    def make(gw):
        r = Relay(gw.port)
        relays.append(r)
        return r
    yield make
    for r in relays:
        r.close()


def socks_via(nl, gw, url, transport="auto", extra_yaml=""):
    cfg = nl.peer_config(extra=extra_yaml)
    tok = nl.token("client", "t1", "laptop")
    argv = [CLIENT, "-c", cfg, "--gateway", url,
            "--token-file", nl.token_file(tok), "--ca", nl.cert, "--transport", transport,
            "--log-level", "debug", "socks", "--agent", "home", "--listen", "127.0.0.1:0"]
    p = nl.start(argv, "client-socks")
    port = int(p.wait_line(r"socks listening on 127\.0\.0\.1:(\d+)").group(1))
    return p, port


def echo_via(nl, socks_port, payload):
    """A new echo server, a stream to it through the SOCKS port, one round trip checked;
    returns the open stream for more."""
    echo = nl.echo_server()
    s = socks5_open(socks_port, "127.0.0.1", echo.port)
    assert echo_roundtrip(s, payload) == payload
    return s


def test_auto_uses_quic_when_the_gateway_offers_it(nl):
    gw = nl.start_gateway()
    gw.proc.wait_line(r"listening on 127\.0\.0\.1:\d+ \(quic\)")
    nl.start_agent(gw)
    p, port = socks_via(nl, gw, gw.url)
    p.wait_line(r"session up: .*\(quic\)$", timeout=10)
    echo_via(nl, port, b"over quic")


def test_fallback_to_websocket_when_nothing_answers_on_udp(nl, monkeypatch):
    import conftest
    monkeypatch.setattr(conftest, "TRANSPORT", "auto")  # the agent falls back as well
    gw = nl.start_gateway(extra=["--no-quic"])  # nothing listens on the UDP port
    nl.start_agent(gw)
    t = time.monotonic()
    p, port = socks_via(nl, gw, gw.url)
    p.wait_line(r"QUIC to .* failed \(.*\); falling back to WebSocket", timeout=10)
    p.wait_line(r"session up: .*\(wss\)$", timeout=10)
    assert time.monotonic() - t < 5, "falling back took too long"
    echo_via(nl, port, b"over websocket")


def test_blocked_udp_falls_back_then_moves_to_quic_when_it_opens(nl, relay_for):
    gw = nl.start_gateway()
    nl.start_agent(gw)
    relay = relay_for(gw)  # TCP forwarded, UDP dropped (blocked)
    url = f"wss://127.0.0.1:{relay.port}"
    p, port = socks_via(nl, gw, url, extra_yaml="quic_reprobe: 1s\n")
    p.wait_line(r"falling back to WebSocket", timeout=10)
    p.wait_line(r"session up: .*\(wss\)$", timeout=10)
    mark = p.mark()
    relay.udp_enabled = True  # the network lets UDP through again
    p.wait_line(r"QUIC is reachable again: moving the session from WebSocket to QUIC", timeout=15, after=mark)
    p.wait_line(r"session up: .*\(quic\)$", timeout=10, after=mark)
    echo_via(nl, port, b"moved")


def test_transfers_complete_under_loss_and_delay(nl, relay_for):
    gw = nl.start_gateway()
    nl.start_agent(gw)
    relay = relay_for(gw)
    relay.udp_enabled = True
    relay.loss = 0.03
    relay.delay = 0.01
    p, port = socks_via(nl, gw, f"wss://127.0.0.1:{relay.port}", transport="quic")
    p.wait_line(r"session up: .*\(quic\)$", timeout=15)
    echo = nl.echo_server()
    s = socks5_open(port, "127.0.0.1", echo.port, timeout=30)
    data = os.urandom(4 << 20)
    got = echo_roundtrip(s, data, timeout=120)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_nat_rebinding_keeps_the_session(nl, relay_for):
    gw = nl.start_gateway()
    nl.start_agent(gw)
    relay = relay_for(gw)
    relay.udp_enabled = True
    p, port = socks_via(nl, gw, f"wss://127.0.0.1:{relay.port}", transport="quic")
    p.wait_line(r"session up: .*\(quic\)$", timeout=15)
    s = echo_via(nl, port, b"before")
    relay.rebind()  # the gateway now sees the client from another port
    for i in range(20):
        msg = f"after rebinding {i}".encode()
        assert echo_roundtrip(s, msg, timeout=20) == msg
    assert p.count(r"session down") == 0, p.tail()


def test_wrong_certificate_is_refused_with_a_clear_message(nl, tmp_path):
    gw = nl.start_gateway()
    nl.start_agent(gw)
    other_key, other_crt = tmp_path / "o.key", tmp_path / "o.crt"
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=other", "-keyout", str(other_key), "-out", str(other_crt)],
                   check=True, capture_output=True, timeout=30)
    tok = nl.token("client", "t1", "laptop")
    p = nl.start([CLIENT, "--gateway", gw.url, "--token-file", nl.token_file(tok), "--ca", other_crt,
                  "--transport", "quic", "socks", "--agent", "home", "--listen", "127.0.0.1:0"], "client-wrong-ca")
    m = p.wait_line(r"session down: (.*certificate.*)", timeout=15)
    assert re.search(r"certificate verification failed|not trusted|issuer", m.group(1)), m.group(1)


# Interop with Debian's ngtcp2 example tools (packages ngtcp2-client, ngtcp2-server: the same
# ngtcp2 0.12 with GnuTLS, but an independent QUIC endpoint and TLS configuration). They
# speak only HTTP/3 (ALPN h3) and nl speaks nl/1, so a handshake cannot complete: what these
# show is that each side parses the other's Initial packets and TLS ClientHello, refuses on
# ALPN with the proper alert (no_application_protocol, CRYPTO_ERROR 0x178), reports it in
# words, and goes on serving.
GTLSCLIENT, GTLSSERVER = "/usr/bin/gtlsclient", "/usr/sbin/gtlsserver"


@pytest.mark.skipif(not os.path.exists(GTLSCLIENT), reason="ngtcp2-client not installed (scripts/deps.sh installs it)")
def test_interop_ngtcp2_client_is_refused_on_alpn_and_the_gateway_goes_on(nl):
    gw = nl.start_gateway()
    gw.proc.wait_line(r"listening on 127\.0\.0\.1:\d+ \(quic\)")
    nl.start_agent(gw)
    r = nl.run([GTLSCLIENT, "--timeout=3s", "--exit-on-all-streams-close", "127.0.0.1", str(gw.port),
                f"https://127.0.0.1:{gw.port}/"], timeout=30)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert re.search(r"CONNECTION_CLOSE\(0x1c\) error_code=CRYPTO_ERROR\(0x178\)", out), out[-2000:]
    gw.proc.wait_line(r"quic: TLS handshake failed: no_application_protocol: the peer does not speak nl/1")
    # the gateway still serves QUIC peers
    p, port = socks_via(nl, gw, gw.url, transport="quic")
    p.wait_line(r"session up: .*\(quic\)$", timeout=10)
    echo_via(nl, port, b"after interop")


@pytest.mark.skipif(not os.path.exists(GTLSSERVER), reason="ngtcp2-server not installed (scripts/deps.sh installs it)")
def test_interop_nl_client_against_ngtcp2_server_fails_with_the_reason(nl):
    from nltest import free_port
    port = free_port()
    srv = nl.start([GTLSSERVER, "-q", "127.0.0.1", str(port), nl.key, nl.cert], "gtlsserver")
    tok = nl.token("client", "t1", "laptop")
    p = nl.start([CLIENT, "--gateway", f"wss://127.0.0.1:{port}", "--token-file", nl.token_file(tok), "--ca", nl.cert,
                  "--transport", "quic", "socks", "--agent", "home", "--listen", "127.0.0.1:0"], "client-vs-gtlsserver")
    p.wait_line(r"session down: the server refused the TLS handshake: no_application_protocol: "
                r"the peer does not speak nl/1", timeout=15)
    assert srv.alive()
