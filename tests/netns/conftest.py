"""The TUN lab: two network namespaces made by the test, nothing else touched.

    agent side "<id>a": nl-gateway (TLS on 10.200.0.1), nl-agent, the target servers
        (servers.py) on 10.77.0.1 / fd77::1 and on every address of 10.77.1.0/24 and
        fd77::100:0/120 (local routes to lo), dnsmasq on 10.77.0.53 (TXT/MX records), and
        /etc/netns/<id>a/hosts naming web.nltest -> 10.77.0.1, web6.nltest -> fd77::1.
    client side "<id>c": veth 10.200.0.2 / fd20::2 to the agent side and NO route to
        10.77.0.0/16 or fd77::/32 except through `nl-client tun`; its resolv.conf names
        10.77.0.53.

Root only (CI runs as root); skipped otherwise. Every process is stopped and both
namespaces and their /etc/netns files are removed after each test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import nltest  # noqa: E402
from nltest import Proc  # noqa: E402

BIN_DIR = Path(os.environ.get("NL_BIN_DIR") or REPO / "build")
GATEWAY = BIN_DIR / "gateway" / "nl-gateway"
AGENT = BIN_DIR / "agent" / "nl-agent"
CLIENT = BIN_DIR / "client" / "nl-client"
PY = sys.executable

CAPTURE = ("10.77.0.0/16", "fd77::/32")
DENIED_V4 = "10.77.0.99"


def sh(*argv, check=True, timeout=30):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} -> {r.returncode}: {r.stderr.strip()}")
    return r


class Lab:
    _seq = 0

    def __init__(self, tmp: Path):
        Lab._seq += 1
        self.tmp = tmp
        self.id = f"nlt{os.getpid() % 10000}{Lab._seq}"
        self.a, self.c = self.id + "a", self.id + "c"
        self.procs: list[Proc] = []
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.env["XDG_CONFIG_HOME"] = str(tmp / "xdg")
        self._made = []

    # -- setup ----------------------------------------------------------------------------
    def build(self, agent_extra=()):
        for ns in (self.a, self.c):
            sh("ip", "netns", "add", ns)
            self._made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", self.id + "va", "netns", self.a, "type", "veth", "peer", "name", self.id + "vc",
           "netns", self.c)
        for ns, dev, v4, v6 in ((self.a, self.id + "va", "10.200.0.1/24", "fd20::1/64"),
                                (self.c, self.id + "vc", "10.200.0.2/24", "fd20::2/64")):
            sh("ip", "-n", ns, "addr", "add", v4, "dev", dev)
            sh("ip", "-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.a, "addr", "add", "10.77.0.1/24", "dev", "lo")
        sh("ip", "-n", self.a, "-6", "addr", "add", "fd77::1/64", "dev", "lo", "nodad")
        sh("ip", "-n", self.a, "route", "add", "local", "10.77.1.0/24", "dev", "lo")
        sh("ip", "-n", self.a, "-6", "route", "add", "local", "fd77::100:0/120", "dev", "lo")
        for ns, name, text in ((self.a, "hosts", "127.0.0.1 localhost\n10.77.0.1 web.nltest\nfd77::1 web6.nltest\n"),
                               (self.c, "resolv.conf", "nameserver 10.77.0.53\n")):
            d = Path("/etc/netns") / ns
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(text)

        # PKI and tokens
        self.cert, self.key = self.tmp / "gw.crt", self.tmp / "gw.key"
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-days", "2", "-subj", "/CN=nl-lab", "-addext", "subjectAltName=IP:10.200.0.1",
           "-keyout", self.key, "-out", self.cert)
        self.secret = self.tmp / "secret"
        sh(GATEWAY, "gen-secret", "--out", self.secret)
        self.agent_token = self._token_file("agent", "home")
        self.client_token = self._token_file("client", "laptop")

        self.servers = self.start_in(self.a, [PY, HERE / "servers.py"], "servers")
        self.servers.wait_line(r"servers ready", timeout=15)
        self.dnsmasq = self.start_in(self.a, ["dnsmasq", "--no-daemon", "--log-facility=-", "--no-resolv", "--no-hosts",
                                              "--listen-address=10.77.0.53", "--bind-interfaces", "--port=53",
                                              "--txt-record=txt.nltest,hello-from-dnsmasq", "--user=root",
                                              f"--pid-file={self.tmp / 'dnsmasq.pid'}"], "dnsmasq")
        self.dnsmasq.wait_line(r"started", timeout=15)
        self.gateway = self.start_in(self.a, [GATEWAY, "--listen", "10.200.0.1:0", "--secret-file", self.secret,
                                              "--tls-cert", self.cert, "--tls-key", self.key,
                                              "--keepalive", "1s", "--keepalive-timeout", "3s"], "gateway",
                                     term_timeout=15)
        port = int(self.gateway.wait_line(r"listening on 10\.200\.0\.1:(\d+)", timeout=15).group(1))
        self.gateway_url = f"wss://10.200.0.1:{port}"
        allow = ["--allow", "cidr=10.77.0.0/16", "--allow", "cidr=fd77::/32", "--deny", f"cidr={DENIED_V4}/32"]
        self.agent_argv = [AGENT, "--gateway", self.gateway_url, "--token-file", self.agent_token, "--ca", self.cert,
                           *allow, *agent_extra]
        self.agent = self.start_in(self.a, self.agent_argv, "agent")
        self.agent.wait_line(r"session up: ", timeout=15)

    def _token_file(self, role, name):
        r = sh(GATEWAY, "token", "--secret-file", self.secret, "--role", role, "--tenant", "t1", "--name", name)
        p = self.tmp / f"{role}.jwt"
        p.write_text(r.stdout.strip() + "\n")
        p.chmod(0o600)
        return p

    def start_in(self, ns, argv, name, **kw) -> Proc:
        p = Proc(["ip", "netns", "exec", ns, *argv], name, self.log_dir, self.env, self.tmp, **kw)
        self.procs.append(p)
        return p

    def start_tun(self, *extra, routes=CAPTURE, name="client-tun", ready=True) -> Proc:
        argv = [CLIENT, "--gateway", self.gateway_url, "--token-file", self.client_token, "--ca", self.cert,
                "--log-level", "debug", "tun", "--agent", "home"]
        for r in routes:
            argv += ["--route", r]
        p = self.start_in(self.c, argv + list(extra), name)
        if ready:
            p.wait_line(r"tun \S+ up .*; ready", timeout=15)
            p.wait_line(r"session up: ", timeout=15)
        return p

    # -- probes ---------------------------------------------------------------------------
    def run_c(self, *argv, timeout=60, check=False):
        return sh("ip", "netns", "exec", self.c, *argv, check=check, timeout=timeout)

    def probe(self, *args, timeout=120) -> dict:
        r = self.run_c(PY, HERE / "probe.py", *args, timeout=timeout)
        assert r.returncode == 0, f"probe {args} failed: {r.stderr}"
        return json.loads(r.stdout)

    def routes(self) -> str:
        v4 = sh("ip", "-n", self.c, "route", "show").stdout
        v6 = sh("ip", "-n", self.c, "-6", "route", "show").stdout
        return v4 + v6

    # -- teardown -------------------------------------------------------------------------
    def close(self) -> list[str]:
        complaints = []
        for p in reversed(self.procs):
            c = p.stop()
            if c:
                complaints.append(c)
        for ns in self._made:
            sh("ip", "netns", "del", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        return complaints

    def report(self, lines=40) -> str:
        return "\n".join(f"--- {p.name} (exit {p.returncode}) {p.log_path}\n{p.tail(lines)}" for p in self.procs)


@pytest.fixture
def lab(tmp_path, request):
    if os.geteuid() != 0:
        pytest.skip("the TUN tests need root (network namespaces, /dev/net/tun)")
    for tool in ("ip", "dig", "curl", "nc", "dnsmasq", "openssl"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing (scripts/deps.sh installs it)", pytrace=False)
    lab = Lab(tmp_path)
    request.node._lab = lab
    try:
        lab.build()
        yield lab
    finally:
        complaints = lab.close()
    if complaints:
        pytest.fail("cleanup: " + "\n".join(complaints), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    lab = getattr(item, "_lab", None)
    if lab is not None and rep.failed and rep.when in ("call", "setup"):
        rep.sections.append(("lab process logs (tail)", lab.report()))
