"""Surviving the network: dead agents, restarted gateways, duplicate agents, stream leaks."""

import signal
import socket
import time

from nltest import assert_rss_growth_below, echo_roundtrip, free_port, socks5_open, socks5_reply_code, wait_until

RECONNECT_DEADLINE = 40.0  # backoff is capped at 30 s by default


def _echo_ok(socks_port: int, echo_port: int, data: bytes = b"ping") -> None:
    with socks5_open(socks_port, "127.0.0.1", echo_port) as s:
        assert echo_roundtrip(s, data) == data


def test_agent_killed_stream_fails_fast_then_restart(nl):
    gw = nl.start_gateway()
    agent = nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    echo = nl.echo_server()

    s = socks5_open(socks.port, "127.0.0.1", echo.port)
    assert echo_roundtrip(s, b"before") == b"before"
    agent.kill()  # SIGKILL: no goodbye from the agent
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        got = s.recv(100)
        # the stream must end (EOF or reset), not stay open
        assert got == b"", f"unexpected data {got!r} after the agent died"
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("stream through a SIGKILLed agent still open after 10 s")
    dt = time.monotonic() - t0
    assert dt < 5, f"the client's stream took {dt:.1f}s to fail after the agent died"
    s.close()

    gw.wait_agent("home", present=False, timeout=10)
    assert socks5_reply_code(socks.port, "127.0.0.1", echo.port) == 0x03

    nl.start_agent(gw, "home", proc_name="agent-home-restarted")
    _echo_ok(socks.port, echo.port, b"after restart")


def test_gateway_restart_same_port(nl):
    port = free_port()
    gw = nl.start_gateway(port=port)
    # short keepalives and a 2 s backoff cap (-c), so reconnecting is quick and bounded
    agent = nl.start_agent(gw, "home", config=nl.peer_config())
    socks = nl.start_socks(gw, config=nl.peer_config())
    echo = nl.echo_server()
    _echo_ok(socks.port, echo.port)
    a_mark, c_mark = agent.mark(), socks.proc.mark()

    gw.proc.kill()  # a crash: no GOAWAY
    agent.wait_line(r"session down: ", timeout=10, after=a_mark)
    socks.proc.wait_line(r"session down: ", timeout=10, after=c_mark)
    # while the gateway is down a new stream fails (0x03) instead of hanging; the client may
    # wait up to its connect_timeout (10 s) for the session to come back first
    t0 = time.monotonic()
    code = socks5_reply_code(socks.port, "127.0.0.1", echo.port, timeout=20)
    dt = time.monotonic() - t0
    assert code == 0x03 and dt < 15, f"SOCKS reply 0x{code:02x} after {dt:.1f}s while the gateway was down"

    gw2 = nl.start_gateway(port=port, name="gateway-restarted")
    agent.wait_line(r"session up: ", timeout=RECONNECT_DEADLINE, after=a_mark)
    socks.proc.wait_line(r"session up: ", timeout=RECONNECT_DEADLINE, after=c_mark)
    gw2.wait_agent("home", timeout=10)
    _echo_ok(socks.port, echo.port, b"after gateway restart")
    assert agent.alive() and socks.proc.alive()


def test_gateway_sigterm_restart_reconnects(nl):
    """Graceful variant: GOAWAY on SIGTERM; agent and client come back to the new gateway."""
    port = free_port()
    gw = nl.start_gateway(port=port)
    agent = nl.start_agent(gw, "home", config=nl.peer_config())
    socks = nl.start_socks(gw, config=nl.peer_config())
    echo = nl.echo_server()
    a_mark, c_mark = agent.mark(), socks.proc.mark()
    gw.proc.signal(signal.SIGTERM)
    assert gw.proc.wait_exit(15) == 0
    nl.start_gateway(port=port, name="gateway-restarted")
    agent.wait_line(r"session up: ", timeout=RECONNECT_DEADLINE, after=a_mark)
    socks.proc.wait_line(r"session up: ", timeout=RECONNECT_DEADLINE, after=c_mark)
    wait_until(lambda: socks5_reply_code(socks.port, "127.0.0.1", echo.port) == 0, 10,
               "a stream through the new gateway")


def test_frozen_agent_detected_by_keepalive(nl):
    """An agent that stops answering (SIGSTOP: the TCP connection stays up, nothing is
    closed) is declared dead by the gateway's pings within keepalive_timeout (3 s here);
    once it runs again it notices and reconnects by itself."""
    gw = nl.start_gateway()  # --keepalive 1s --keepalive-timeout 3s
    agent = nl.start_agent(gw, "home", config=nl.peer_config())
    socks = nl.start_socks(gw)
    echo = nl.echo_server()
    s = socks5_open(socks.port, "127.0.0.1", echo.port)
    assert echo_roundtrip(s, b"x") == b"x"
    mark = agent.mark()
    agent.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        gw.wait_agent("home", present=False, timeout=10)
        dt = time.monotonic() - t0
        assert dt < 8, f"frozen agent still listed {dt:.1f}s later (keepalive timeout 3s)"
        # the stream through it ends instead of hanging
        s.settimeout(10)
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass
        assert socks5_reply_code(socks.port, "127.0.0.1", echo.port) == 0x03
    finally:
        agent.signal(signal.SIGCONT)
        s.close()
    agent.wait_line(r"session up: ", timeout=RECONNECT_DEADLINE, after=mark)
    gw.wait_agent("home", timeout=10)
    wait_until(lambda: socks5_reply_code(socks.port, "127.0.0.1", echo.port) == 0, 10,
               "a stream through the reconnected agent")


def test_same_name_agent_replaces_older(nl):
    gw = nl.start_gateway()
    first = nl.start_agent(gw, "home", proc_name="agent-first")
    second = nl.start_agent(gw, "home", proc_name="agent-second", registered=False)
    rc = first.wait_exit(15)
    assert rc not in (0, None) and rc > 0, f"replaced agent exit code {rc}; want non-zero; log:\n{first.tail()}"
    assert "replaced" in first.text(), f"no 'replaced' in the first agent's log:\n{first.tail()}"
    assert first.count(r"session up: ") == 1, "the replaced agent reconnected"
    assert second.alive(), f"the newer agent exited:\n{second.tail()}"
    assert second.count(r"session up: ") == 1 and "replaced" not in second.text()
    agents = gw.agents()
    assert [a["name"] for a in agents] == ["home"], agents
    socks = nl.start_socks(gw)
    echo = nl.echo_server()
    _echo_ok(socks.port, echo.port)


def test_no_stream_leak_after_2000_cycles(nl):
    gw = nl.start_gateway()
    agent = nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    echo = nl.echo_server()
    procs = [gw.proc, agent, socks.proc]

    def cycles(n: int):
        for i in range(n):
            with socks5_open(socks.port, "127.0.0.1", echo.port, timeout=10) as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x", f"cycle {i}: no echo"

    t0 = time.monotonic()
    cycles(300)  # warm-up: allocator pools, buffers
    wait_until(lambda: gw.total_streams() == 0, 10, "streams back to 0 after warm-up")
    rss0 = {p.name: p.rss_kib() for p in procs}
    cycles(1700)
    elapsed = time.monotonic() - t0
    wait_until(lambda: gw.total_streams() == 0, 10, "gateway streams back to 0 after 2000 cycles")
    rss1 = {p.name: p.rss_kib() for p in procs}
    grown = {k: rss1[k] - rss0[k] for k in rss0}
    print(f"2000 cycles in {elapsed:.1f}s; RSS KiB before {rss0} after {rss1}")
    for name, g in grown.items():
        assert_rss_growth_below(
            g, 16 * 1024, f"{name} RSS grew by {g} KiB over 1700 open/close cycles ({rss0[name]} -> {rss1[name]})")
    assert echo.accepted == 2000
