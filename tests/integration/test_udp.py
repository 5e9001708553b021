"""UDP through nl: `forward -U` with dig against a real DNS server (dnsmasq), SOCKS5 UDP
ASSOCIATE with a test client, `connect --udp`, ordering, idle expiry and the ACL."""

import socket
import struct
import threading

import pytest

from conftest import CLIENT, have
from nltest import free_port, wait_until


class UdpEcho:
    """Echoes every datagram back to its sender; counts what it saw."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.count = 0
        self.peers = set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                d, a = self.sock.recvfrom(65535)
            except OSError:
                return
            self.count += 1
            self.peers.add(a)
            self.sock.sendto(d, a)

    def close(self):
        self.sock.close()


def udp_config(nl, idle="1s", max_flows=None, log_level=None):
    extra = f"udp:\n  idle_timeout: {idle}\n" + (f"  max_flows: {max_flows}\n" if max_flows else "")
    extra += f"log_level: {log_level}\n" if log_level else ""
    return nl.peer_config(extra=extra)


@pytest.fixture
def dns(nl):
    """dnsmasq on 127.0.0.1:<port> answering nl-test.example with 10.1.2.3."""
    if not have("dnsmasq") or not have("dig"):
        pytest.fail("dnsmasq and dig are needed (scripts/deps.sh installs dnsmasq-base and dnsutils)")
    port = free_port()
    p = nl.start(["dnsmasq", "-d", "-C", "/dev/null", f"--port={port}", "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
                  "--address=/nl-test.example/10.1.2.3"], "dnsmasq")
    p.wait_line(r"started, version", timeout=10)
    return port


def start_udp_forward(nl, gw, spec, config=None, pin=None):
    argv = nl.client_args(gw, config=config) + (["--pin", f"home={pin}"] if pin else [])
    argv += ["forward", "--agent", "home", "-U", spec]
    p = nl.start(argv, "client-forward-udp")
    m = p.wait_line(r"forward listening on udp 127\.0\.0\.1:(\d+) -> ", timeout=15)
    p.wait_line(r"session up: ", timeout=15)
    return p, int(m.group(1))


def dig(nl, port, name="nl-test.example"):
    return nl.run(["dig", "@127.0.0.1", "-p", str(port), name, "+short", "+time=3", "+tries=2"], timeout=20)


def test_dig_through_udp_forward(nl, dns):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    _, port = start_udp_forward(nl, gw, f"0:127.0.0.1:{dns}")
    r = dig(nl, port)
    assert r.returncode == 0, r.stdout_text + r.stderr_text
    assert r.stdout_text.strip() == "10.1.2.3"


def test_dig_through_udp_forward_e2e(nl, dns):
    from test_e2e import agent_key
    gw = nl.start_gateway()
    key_file = nl.tmp / "agent.key"
    pub, _ = agent_key(nl, key_file)
    agent = nl.start_agent(gw, "home", extra=["--key-file", key_file, "--require-e2e"])
    _, port = start_udp_forward(nl, gw, f"0:127.0.0.1:{dns}", pin=pub)
    r = dig(nl, port)
    assert r.stdout_text.strip() == "10.1.2.3", r.stdout_text + r.stderr_text


def socks_udp_associate(port):
    """Returns (control tcp socket, relay (host, port))."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"\x05\x01\x00")
    assert c.recv(2) == b"\x05\x00"
    c.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("0.0.0.0") + struct.pack(">H", 0))
    rep = b""
    while len(rep) < 10:
        chunk = c.recv(10 - len(rep))
        assert chunk, "socks server closed the control connection"
        rep += chunk
    assert rep[:4] == b"\x05\x00\x00\x01", f"UDP ASSOCIATE refused: {rep!r}"
    host = socket.inet_ntoa(rep[4:8])
    (bport,) = struct.unpack(">H", rep[8:10])
    return c, (host, bport)


def socks_udp_packet(host, port, payload, frag=0):
    return b"\x00\x00" + bytes([frag]) + b"\x01" + socket.inet_aton(host) + struct.pack(">H", port) + payload


def test_socks5_udp_associate_echo_in_order(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    echo = UdpEcho()
    nl.servers.append(echo)
    ctl, relay = socks_udp_associate(socks.port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    try:
        n = 200
        got = []
        # a window of 20 in flight keeps loopback buffers far from overflowing
        sent = 0
        while len(got) < n:
            while sent < n and sent - len(got) < 20:
                u.sendto(socks_udp_packet("127.0.0.1", echo.port, b"seq:%05d" % sent + b"x" * 500), relay)
                sent += 1
            d, _ = u.recvfrom(65535)
            assert d[:4] == b"\x00\x00\x00\x01", d[:10]
            assert socket.inet_ntoa(d[4:8]) == "127.0.0.1" and struct.unpack(">H", d[8:10])[0] == echo.port
            got.append(int(d[14:19]))
        assert got == list(range(n)), "datagrams lost or reordered on loopback"
        # A fragment (FRAG != 0) is dropped, never relayed.
        before = echo.count
        u.sendto(socks_udp_packet("127.0.0.1", echo.port, b"fragment", frag=1), relay)
        u.sendto(socks_udp_packet("127.0.0.1", echo.port, b"after"), relay)
        d, _ = u.recvfrom(65535)
        assert d[10:] == b"after"
        assert echo.count == before + 1
    finally:
        u.close()
        ctl.close()


def test_socks5_udp_denied_destination_gets_nothing(nl):
    gw = nl.start_gateway()
    echo = UdpEcho()
    nl.servers.append(echo)
    agent = nl.start_agent(gw, "home", deny=(f"cidr=127.0.0.1/32;ports={echo.port};protocol=udp",))
    socks = nl.start_socks(gw)
    ctl, relay = socks_udp_associate(socks.port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(socks_udp_packet("127.0.0.1", echo.port, b"hello"), relay)
        agent.wait_line(r"flow \d+ from \S+ to udp:127\.0\.0\.1:%d refused: .*denied" % echo.port, timeout=10)
        socks.proc.wait_line(r"udp .* denied", timeout=10)
        assert echo.count == 0
    finally:
        u.close()
        ctl.close()


def test_connect_udp_stdin_stdout(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    echo = UdpEcho()
    nl.servers.append(echo)
    cfg = udp_config(nl, idle="1s")
    r = nl.run(nl.client_args(gw, config=cfg) + ["connect", "--udp", "--agent", "home", echo.addr],
               input=b"ping over udp", timeout=30)
    assert r.returncode == 0, r.stderr_text
    assert r.stdout == b"ping over udp"
    assert echo.count == 1


def test_connect_udp_denied_prints_rule(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home", deny=("protocol=udp;ports=9",))
    r = nl.run(nl.connect_argv(gw, "127.0.0.1:9")[:-1] + ["--udp", "127.0.0.1:9"], input=b"x", timeout=30)
    assert r.returncode != 0
    assert "denied" in r.stderr_text and "ports 9" in r.stderr_text, r.stderr_text


def test_idle_udp_flows_expire(nl):
    gw = nl.start_gateway()
    agent = nl.start_agent(gw, "home", config=udp_config(nl, idle="1s"))
    echo = UdpEcho()
    nl.servers.append(echo)
    p, port = start_udp_forward(nl, gw, f"0:{echo.addr}", config=udp_config(nl, idle="30s", log_level="debug"))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    try:
        u.sendto(b"one", ("127.0.0.1", port))
        assert u.recvfrom(100)[0] == b"one"
        assert gw.total_streams() >= 1
        # the agent's 1 s idle timeout closes the flow; the stream disappears everywhere
        agent.wait_line(r"flow from \S+ to udp:127\.0\.0\.1:\d+ closed", timeout=10)
        wait_until(lambda: gw.total_streams() == 0, 10, "the idle flow's stream is gone at the gateway")
        # and at the client (a datagram sent before the client has heard of the close is lost, as UDP may)
        p.wait_line(r"udp flow \S+ -> udp:127\.0\.0\.1:\d+ closed", timeout=10)
        # a new datagram from the same source opens a new flow
        u.sendto(b"two", ("127.0.0.1", port))
        assert u.recvfrom(100)[0] == b"two"
    finally:
        u.close()
