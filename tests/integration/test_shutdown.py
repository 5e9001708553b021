"""Graceful shutdown: SIGTERM stops accepting, GOAWAYs the sessions, lets streams drain
(bounded by drain_timeout, 10 s by default) and exits 0. Agents and clients exit 0 on SIGTERM."""

import signal
import time

from nltest import echo_roundtrip, port_accepts, socks5_open, wait_until

DRAIN_TIMEOUT = 10.0  # gateway default
MARGIN = 3.0


def test_gateway_sigterm_idle_exits_zero(nl):
    gw = nl.start_gateway()
    agent = nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    mark_a, mark_c = agent.mark(), socks.proc.mark()
    t0 = time.monotonic()
    gw.proc.signal(signal.SIGTERM)
    rc = gw.proc.wait_exit(DRAIN_TIMEOUT + MARGIN)
    dt = time.monotonic() - t0
    assert rc == 0, f"gateway exit code {rc} on SIGTERM"
    # nothing to drain: it should not sit out the whole drain timeout
    assert dt < DRAIN_TIMEOUT, f"idle gateway took {dt:.1f}s to stop"
    assert not port_accepts(gw.port), "gateway port still accepting after exit"
    # peers notice and keep trying to reconnect (they are not told to give up)
    agent.wait_line(r"session down: ", timeout=10, after=mark_a)
    socks.proc.wait_line(r"session down: ", timeout=10, after=mark_c)
    assert agent.alive() and socks.proc.alive()


def test_gateway_sigterm_drains_open_stream(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    echo = nl.echo_server()
    s = socks5_open(socks.port, "127.0.0.1", echo.port)
    assert echo_roundtrip(s, b"before") == b"before"

    t0 = time.monotonic()
    gw.proc.signal(signal.SIGTERM)
    # stops accepting new connections promptly
    wait_until(lambda: not port_accepts(gw.port), 5, "the gateway to stop accepting")
    # the open stream keeps working while draining
    assert echo_roundtrip(s, b"during drain") == b"during drain"
    # closing the last stream lets the gateway finish early
    s.close()
    rc = gw.proc.wait_exit(DRAIN_TIMEOUT + MARGIN)
    dt = time.monotonic() - t0
    assert rc == 0, f"gateway exit code {rc}"
    assert dt < DRAIN_TIMEOUT, f"gateway waited {dt:.1f}s although its only stream had closed"


def test_gateway_sigterm_drain_timeout_bounds_exit(nl):
    drain = 3.0
    cfg = nl.write_config("gw.yaml", f"drain_timeout: {drain:g}s\n")
    gw = nl.start_gateway(config=cfg)
    nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    echo = nl.echo_server()
    s = socks5_open(socks.port, "127.0.0.1", echo.port)
    assert echo_roundtrip(s, b"x") == b"x"
    t0 = time.monotonic()
    gw.proc.signal(signal.SIGTERM)
    rc = gw.proc.wait_exit(drain + MARGIN)  # the stream stays open: drain_timeout ends it
    dt = time.monotonic() - t0
    assert rc == 0, f"gateway exit code {rc}"
    assert dt >= drain * 0.8, f"gateway exited after {dt:.1f}s without draining the open stream ({drain}s)"
    # the stream is closed by then (EOF or reset), not left hanging
    s.settimeout(5)
    try:
        assert s.recv(10) == b""
    except ConnectionResetError:
        pass
    s.close()
    print(f"gateway exited {dt:.1f}s after SIGTERM with one stream still open")


def test_agent_and_client_sigterm_exit_zero(nl):
    gw = nl.start_gateway()
    agent = nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    for p in (socks.proc, agent):
        p.signal(signal.SIGTERM)
        assert p.wait_exit(5) == 0, f"{p.name} exit code {p.returncode}; log:\n{p.tail()}"
    gw.wait_agent("home", present=False, timeout=5)
