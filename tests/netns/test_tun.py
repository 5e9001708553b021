"""`nl-client tun` end to end, in namespaces the lab creates (conftest.py): applications in
the client namespace use plain sockets, curl, nc and dig, with no proxy support; their
flows are captured by the TUN, carried through gateway and agent, and reach servers that
only the agent's namespace has."""

import re
import signal

import pytest
from conftest import DENIED_V4

from nltest import wait_until

MiB = 1 << 20


def test_curl_nc_by_ip_v4_and_v6(lab):
    lab.start_tun()
    for host, url in (("10.77.0.1", "http://10.77.0.1/"), ("fd77::1", "http://[fd77::1]/")):
        r = lab.run_c("curl", "-sS", "--max-time", "20", url, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"hello from {host}\n"
    # nc: bytes out, echo back, half-close ends it
    for host in ("10.77.0.1", "fd77::1"):
        r = sh_input(lab, ["nc", "-N", "-w", "10", host, "7"], b"ping through the tun\n")
        assert r == b"ping through the tun\n"


def sh_input(lab, argv, data, timeout=30):
    import subprocess
    r = subprocess.run(["ip", "netns", "exec", lab.c, *argv], input=data, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_names_resolve_on_the_agent_side(lab):
    """dig gets a fake address at once; a connection to it is opened at the agent BY NAME."""
    tun = lab.start_tun()
    r = lab.run_c("dig", "+short", "+time=3", "+tries=1", "@10.77.0.53", "web.nltest", timeout=20)
    assert r.returncode == 0 and re.fullmatch(r"198\.19\.\d+\.\d+\n", r.stdout), r.stdout + r.stderr
    r = lab.run_c("dig", "+short", "+time=3", "+tries=1", "@10.77.0.53", "AAAA", "web6.nltest", timeout=20)
    assert r.returncode == 0 and r.stdout.startswith("fd6e:6c01::"), r.stdout + r.stderr
    # the system resolver of the client namespace (resolv.conf -> 10.77.0.53) and curl by name
    r = lab.run_c("curl", "-4", "-sS", "--max-time", "20", "http://web.nltest/", timeout=30)
    assert r.returncode == 0 and r.stdout == "hello from 10.77.0.1\n", r.stderr
    r = lab.run_c("curl", "-6", "-sS", "--max-time", "20", "http://web6.nltest/", timeout=30)
    assert r.returncode == 0 and r.stdout == "hello from fd77::1\n", r.stderr
    assert tun.count(r"web\.nltest:80") == 0, "a named flow must not be reported as failed"
    # other question types go to the queried server through the agent, as plain UDP
    r = lab.run_c("dig", "+short", "+time=3", "+tries=2", "@10.77.0.53", "TXT", "txt.nltest", timeout=20)
    assert r.stdout.strip() == '"hello-from-dnsmasq"', r.stdout + r.stderr
    # a name the agent cannot resolve: the app's connect fails (not accepted-then-closed)
    r = lab.run_c("curl", "-sS", "--max-time", "10", "http://nosuch.nltest/", timeout=20)
    assert r.returncode == 7, (r.returncode, r.stderr)
    tun.wait_line(r"nosuch\.nltest:80\): target name did not resolve", timeout=10)


def test_udp_echo_and_idle_expiry(lab):
    cfg = lab.tmp / "client.yaml"
    cfg.write_text("udp:\n  idle_timeout: 2s\n")
    tun = lab.start_tun("-c", cfg)
    for host in ("10.77.0.1", "fd77::1"):
        r = lab.probe("udp", host, "7", "100")
        assert r["echoed"] == r["count"] == 100, r
    m = tun.wait_line(r"tun flows: tcp 0 \(active 0\), udp 2", timeout=10)
    # both flows expire after 2 s without a datagram, at the client and at the agent
    tun.wait_line(r"tun flows: tcp 0 \(active 0\), udp 0", timeout=15, after=tun.lines.index(m.string))
    lab.agent.wait_line(r"flow from t1/laptop to udp:\[?fd77::1\]?:7 closed", timeout=10)


def test_refused_and_denied_look_so_to_the_app(lab):
    tun = lab.start_tun()
    assert lab.probe("connect", "10.77.0.1", "9")["result"] == "ECONNREFUSED"
    assert lab.probe("connect", "fd77::1", "9")["result"] == "ECONNREFUSED"
    # denied by the agent's policy: ICMP administratively prohibited -> EHOSTUNREACH (v4)
    assert lab.probe("connect", DENIED_V4, "80")["result"] == "EHOSTUNREACH"
    tun.wait_line(re.escape(DENIED_V4) + r":80\): denied by policy", timeout=10)


def test_300_concurrent_flows_to_distinct_destinations(lab):
    tun = lab.start_tun()
    addrs = [f"10.77.1.{i}" for i in range(1, 251)] + [f"fd77::100:{i:x}" for i in range(1, 51)]
    r = lab.probe("flows", *addrs, "5001", timeout=180)
    assert r["ok"] == r["total"] == 300, r
    # every flow closes: the flow table returns to empty (closed mappings linger ~3 s)
    tun.wait_line(r"tun flows: tcp 0 \(active 0\), udp 0", timeout=30, after=0, nth=1)


@pytest.mark.parametrize("extra", [(), ("--no-offload",), ("--mtu", "9000")], ids=["offload", "no-offload", "mtu9000"])
def test_256_mib_each_way(lab, extra):
    tun = lab.start_tun(*extra)
    up = lab.probe("upload", "10.77.0.1", "5002", str(256 * MiB), timeout=240)
    assert up["sha256"] == up["expected"], up
    down = lab.probe("download", "fd77::1", "5003", str(256 * MiB), timeout=240)
    assert down["bytes"] == 256 * MiB and down["sha256"] == down["expected"], down
    mark = tun.mark()
    tun.wait_line(r"tun flows: tcp 0 \(active 0\), udp 0", timeout=30, after=mark)


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_backpressure_bounds_memory(lab):
    """A server that reads nothing: the application's sends stop after a bounded amount
    (windows and socket buffers along the way), and nl-client's peak memory stays small."""
    tun = lab.start_tun()
    assert lab.probe("connect", "10.77.0.1", "5005")["result"] == "ok"  # warm up the flow path
    before = vm_hwm_kib(tun.pid)
    r = lab.probe("stall", "10.77.0.1", "5005", "2", timeout=90)
    assert r["stalled"], r
    assert r["bytes"] < 48 * MiB, r
    grew = vm_hwm_kib(tun.pid) - before
    print(f"stalled after {r['bytes'] >> 10} KiB; nl-client peak RSS +{grew} KiB")
    assert grew < 24 * 1024, f"nl-client peak RSS grew by {grew} KiB while {r['bytes']} bytes were in flight"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_restores_routes(lab, sig):
    before = lab.routes()
    tun = lab.start_tun()
    during = lab.routes()
    assert "10.77.0.0/16 dev nl0" in during and "fd77::/32 dev nl0" in during, during
    tun.signal(sig)
    assert tun.wait_exit(15) == 0
    tun.wait_line(r"routes restored", timeout=5)
    assert lab.routes() == before


def test_killed_client_leaves_no_capture(lab):
    before = lab.routes()
    tun = lab.start_tun()
    tun.kill()  # SIGKILL: no cleanup code runs; the TUN device and its routes go with the process
    assert lab.routes() == before
    r = lab.run_c("curl", "-sS", "--max-time", "3", "http://10.77.0.1/", timeout=10)
    assert r.returncode != 0, "no route: the capture is gone"


def test_default_route_keeps_the_gateway_off_the_tun(lab):
    before = lab.routes()
    tun = lab.start_tun("--default-route", routes=())
    tun.wait_line(r"gateway address 10\.200\.0\.1 bypasses nl0", timeout=5)
    r = lab.run_c("curl", "-sS", "--max-time", "20", "http://10.77.0.1/", timeout=30)
    assert r.returncode == 0 and r.stdout == "hello from 10.77.0.1\n", r.stderr
    # the session survives: a second request through a new stream on the same session
    r = lab.run_c("curl", "-sS", "--max-time", "20", "http://[fd77::1]/", timeout=30)
    assert r.returncode == 0 and r.stdout == "hello from fd77::1\n", r.stderr
    assert tun.count(r"session down") == 0, tun.tail()
    tun.signal(signal.SIGTERM)
    assert tun.wait_exit(15) == 0
    assert lab.routes() == before


def test_without_root_the_message_says_so(lab):
    import subprocess
    from conftest import CLIENT
    r = subprocess.run(["ip", "netns", "exec", lab.c, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", "--bounding-set=-all", str(CLIENT), "--gateway", lab.gateway_url,
                        "--token", "x.y.z", "tun", "--agent", "home", "--route", "10.77.0.0/16"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "needs root" in r.stderr and "sudo" in r.stderr, r.stderr


def test_end_to_end_encrypted_capture(lab):
    """With the agent's key pinned, captured flows are e2e streams: an agent that requires
    e2e serves them, and refuses the same capture without the pin."""
    key = lab.agent.wait_line(r"end-to-end key (nl1:\S+)").group(1)
    lab.agent.stop()
    lab.agent = lab.start_in(lab.a, lab.agent_argv + ["--require-e2e"], "agent-e2e")
    lab.agent.wait_line(r"session up: ", timeout=15)
    plain = lab.start_tun(name="client-tun-plain")
    r = lab.run_c("curl", "-sS", "--max-time", "10", "http://10.77.0.1/", timeout=20)
    assert r.returncode == 7, (r.returncode, r.stdout, r.stderr)
    lab.agent.wait_line(r"refused: not end-to-end encrypted", timeout=10)
    plain.stop()
    lab.start_tun("--pin", f"home={key}", name="client-tun-e2e")
    r = lab.run_c("curl", "-sS", "--max-time", "20", "http://10.77.0.1/", timeout=30)
    assert r.returncode == 0 and r.stdout == "hello from 10.77.0.1\n", r.stderr
    r = lab.probe("udp", "fd77::1", "7", "20")
    assert r["echoed"] == 20, r
