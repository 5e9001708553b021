"""The ACL as users meet it: denials reach SOCKS (0x02), HTTP CONNECT (403), connect and
forward with the rule; odd IP spellings and names resolving to forbidden addresses are
refused; client identity rules; per-client policies in tokens, enforced by the gateway for
plain streams and by the agent for end-to-end streams it alone can read."""

import socket
import struct

import pytest

from conftest import GATEWAY
from nltest import recv_exact


def socks_connect_reply(port, host, dport):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        c.sendall(b"\x05\x01\x00")
        assert recv_exact(c, 2) == b"\x05\x00"
        h = host.encode()
        c.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", dport))
        return recv_exact(c, 10)[1]
    finally:
        c.close()


def client_token(nl, name="laptop", groups=(), allow=(), deny=(), default=None):
    argv = [GATEWAY, "token", "--secret-file", nl.secret, "--role", "client", "--tenant", "t1", "--name", name]
    for g in groups:
        argv += ["--group", g]
    for a in allow:
        argv += ["--allow", a]
    for d in deny:
        argv += ["--deny", d]
    if default:
        argv += ["--default", default]
    r = nl.run(argv, check=True)
    return r.stdout_text.strip()


@pytest.fixture
def guarded(nl):
    """An agent allowing loopback except 127.0.0.1 port <echo>, i.e. the echo server is denied
    on 127.0.0.1 but reachable on 127.0.0.2."""
    gw = nl.start_gateway()
    echo = nl.echo_server()
    return gw, echo


def test_odd_ip_spellings_and_names_are_normalised(nl, guarded):
    gw, echo = guarded
    # localhost resolves to 127.0.0.1 and ::1: both are denied, so the name is refused
    agent = nl.start_agent(gw, "home", deny=(f"cidr=127.0.0.1/32;ports={echo.port}",
                                             f"cidr=::1/128;ports={echo.port}"))
    socks = nl.start_socks(gw)
    for host in ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.0.0.1", "::ffff:127.0.0.1",
                 "localhost"]:
        rep = socks_connect_reply(socks.port, host, echo.port)
        assert rep == 0x02, f"{host}: SOCKS reply {rep:#x}, expected 0x02 (not allowed)"
    assert echo.accepted == 0, "a denied spelling reached the target"
    # the allowed neighbour still works, so the rule is what refused the others
    assert socks_connect_reply(socks.port, "127.0.0.2", echo.port) in (0x00, 0x05)
    # the agent logs each refusal before answering it, but its log reaches us through a
    # reader thread: wait for the eighth line rather than counting what arrived so far
    agent.wait_line(r"refused: denied by policy", timeout=10, nth=8)


def test_denials_reach_every_front_end_with_the_rule(nl, guarded):
    gw, echo = guarded
    nl.start_agent(gw, "home", deny=(f"cidr=127.0.0.1/32;ports={echo.port}",))
    socks = nl.start_socks(gw)
    # HTTP CONNECT: 403 naming the rule
    c = socket.create_connection(("127.0.0.1", socks.port), timeout=10)
    c.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = c.recv(4096).decode()
    c.close()
    assert head.startswith("HTTP/1.1 403"), head
    assert "deny cidr 127.0.0.1/32" in head, head
    # connect: exit non-zero, the rule on stderr
    r = nl.run(nl.connect_argv(gw, f"127.0.0.1:{echo.port}"), input=b"", timeout=30)
    assert r.returncode != 0 and "deny cidr 127.0.0.1/32" in r.stderr_text, r.stderr_text
    # forward: the local connection is closed and the log names the rule
    fwd = nl.start_forward(gw, [f"0:127.0.0.1:{echo.port}"])
    port = list(fwd.ports.values())[0]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    assert s.recv(10) == b""
    s.close()
    fwd.proc.wait_line(r"deny cidr 127\.0\.0\.1/32", timeout=10)


def test_client_identity_and_group_rules(nl, guarded):
    gw, echo = guarded
    nl.start_agent(gw, "home", allow=("client=alice", "client=group:ops"), extra=["--default", "deny"])
    for name, groups, ok in [("alice", (), True), ("bob", (), False), ("carol", ("ops",), True),
                             ("dave", ("dev",), False)]:
        tok = client_token(nl, name, groups)
        r = nl.run(nl.client_args(gw, token=tok) + ["connect", "--agent", "home", echo.addr], input=b"hi",
                   timeout=30)
        if ok:
            assert r.returncode == 0 and r.stdout == b"hi", f"{name}: {r.stderr_text}"
        else:
            assert r.returncode != 0 and "denied" in r.stderr_text, f"{name}: {r.stderr_text}"


@pytest.mark.parametrize("e2e", [False, True], ids=["plain", "e2e"])
def test_token_policy_is_enforced(nl, guarded, e2e):
    """The client's token allows only port 22 on 10.0.0.0/8: the gateway refuses what it can
    see; with e2e the gateway sees nothing and the agent applies the same token policy."""
    from test_e2e import agent_key
    gw, echo = guarded
    pub, _ = agent_key(nl, nl.tmp / "agent.key")
    agent = nl.start_agent(gw, "home", extra=["--key-file", nl.tmp / "agent.key"])
    tok = client_token(nl, "laptop", allow=("cidr=10.0.0.0/8;ports=22",))
    pin = ["--pin", f"home={pub}"] if e2e else []
    r = nl.run(nl.client_args(gw, token=tok) + pin + ["connect", "--agent", "home", echo.addr], input=b"hi",
               timeout=30)
    assert r.returncode != 0, "the token's policy should deny the echo server"
    assert "denied" in r.stderr_text, r.stderr_text
    assert echo.accepted == 0
    if e2e:
        agent.wait_line(r"client's token policy", timeout=10)
    else:
        gw.proc.wait_line(r"denied by its token policy", timeout=10)
    # an unrestricted token of the same tenant passes
    r = nl.run(nl.client_args(gw) + pin + ["connect", "--agent", "home", echo.addr], input=b"hi", timeout=30)
    assert r.returncode == 0 and r.stdout == b"hi", r.stderr_text


def test_time_window_rules_in_a_named_zone(nl, guarded):
    """A deny rule whose window covers every hour in Europe/Berlin is active now; one whose
    window starts two hours from now (UTC) is not, so the default allow applies."""
    import datetime
    gw, echo = guarded
    h = datetime.datetime.now(datetime.timezone.utc).hour
    later = f"{(h + 2) % 24:02d}:00-{(h + 3) % 24:02d}:00"
    other = nl.echo_server()
    nl.start_agent(gw, "home", deny=(
        f"cidr=127.0.0.1/32;ports={echo.port};days=mon-sun;hours=00:00-24:00;tz=Europe/Berlin",
        f"cidr=127.0.0.1/32;ports={other.port};days=mon-sun;hours={later};tz=UTC",
    ))
    r = nl.run(nl.connect_argv(gw, echo.addr), input=b"hi", timeout=30)
    assert r.returncode != 0 and "denied" in r.stderr_text, r.stderr_text
    assert "Europe/Berlin" in r.stderr_text, f"the denial should name the rule: {r.stderr_text}"
    r = nl.run(nl.connect_argv(gw, other.addr), input=b"hi", timeout=30)
    assert r.returncode == 0 and r.stdout == b"hi", f"window {later} UTC is not active now: {r.stderr_text}"
