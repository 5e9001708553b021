"""Fixtures for the nl integration tests: real nl-gateway / nl-agent / nl-client binaries on
127.0.0.1 with a generated secret, tokens and a self-signed certificate.

    def test_x(nl):
        gw = nl.start_gateway()                 # TLS, port 0, short keepalives
        nl.start_agent(gw, "home")              # tenant t1, allows 127.0.0.0/8
        socks = nl.start_socks(gw, agent="home")
        echo = nl.echo_server()
        s = socks5_open(socks.port, "127.0.0.1", echo.port)

Binaries are taken from $NL_BIN_DIR/{gateway,agent,client}/ (CTest sets it to the build
directory); without it, from <repo>/build. Every process is stopped after the test
(SIGTERM, then SIGKILL after a deadline - which fails the test), and the test fails if one
is left behind. On failure the tail of every process log is attached to the report.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nltest  # noqa: E402
import targets  # noqa: E402
from nltest import Proc, wait_until  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("NL_BIN_DIR") or REPO / "build")
GATEWAY = BIN_DIR / "gateway" / "nl-gateway"
AGENT = BIN_DIR / "agent" / "nl-agent"
CLIENT = BIN_DIR / "client" / "nl-client"

DEFAULT_ALLOW = ("cidr=127.0.0.0/8", "cidr=::1/128")
# Short liveness settings so that dead peers are noticed within seconds in tests.
KEEPALIVE = os.environ.get("NL_TEST_KEEPALIVE", "1s")
KEEPALIVE_TIMEOUT = os.environ.get("NL_TEST_KEEPALIVE_TIMEOUT", "3s")
GATEWAY_TERM_TIMEOUT = 15.0  # default drain_timeout (10 s) + margin
# The transport agents and clients use towards a TLS gateway: the suite runs once with
# "ws" and once with "quic" (CTest registers both); plain (ws://) gateways are WebSocket.
TRANSPORT = os.environ.get("NL_TEST_TRANSPORT", "ws")
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy", "socks_proxy"}


def _need_binaries():
    missing = [str(p) for p in (GATEWAY, AGENT, CLIENT) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("nl binaries not built: " + ", ".join(missing) +
                    " (run scripts/build.sh, or set NL_BIN_DIR to the build directory)", pytrace=False)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """Self-signed P-256 certificate for 127.0.0.1 / localhost: (cert, key)."""
    d = tmp_path_factory.mktemp("pki")
    cert, key = d / "gateway.crt", d / "gateway.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class Gateway:
    def __init__(self, nl: "NL", proc: Proc, port: int, tls: bool):
        self.nl, self.proc, self.port, self.tls = nl, proc, port, tls
        self.url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}"
        self.http_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    def _conn(self, timeout: float):
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.nl.cert))
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, token: Optional[str] = None, timeout: float = 10):
        """(status, headers(lower-case), body) of GET path."""
        c = self._conn(timeout)
        try:
            h = {"Authorization": f"Bearer {token}"} if token else {}
            c.request("GET", path, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def agents(self, tenant: str = "t1", token: Optional[str] = None) -> list:
        tok = token or self.nl.token("client", tenant, "probe")
        st, _, body = self.get("/v1/agents", tok)
        assert st == 200, f"/v1/agents -> {st} {body!r}"
        return json.loads(body)

    def agent(self, name: str, tenant: str = "t1") -> Optional[dict]:
        for a in self.agents(tenant):
            if a.get("name") == name:
                return a
        return None

    def wait_agent(self, name: str, tenant: str = "t1", present: bool = True, timeout: float = 10):
        return wait_until(lambda: (self.agent(name, tenant) is not None) == present, timeout,
                          f"agent {tenant}/{name} {'listed' if present else 'gone'} in /v1/agents")

    def total_streams(self, tenant: str = "t1") -> int:
        return sum(int(a.get("streams", 0)) for a in self.agents(tenant))


class Socks:
    def __init__(self, proc: Proc, port: int):
        self.proc, self.port = proc, port
        self.url = f"socks5h://127.0.0.1:{port}"


class Forward:
    def __init__(self, proc: Proc, ports: dict):
        self.proc = proc
        self.ports = ports  # "host:port" target -> local port


class NL:
    """Per-test environment: temp dir, secret, tokens, processes and servers to clean up."""

    def __init__(self, tmp: Path, certs):
        _need_binaries()
        self.tmp = tmp
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir()
        (tmp / "xdg").mkdir()
        self.cert, self.key = certs
        self.env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
        # no stray user/system config may leak into a test (config search path)
        self.env["XDG_CONFIG_HOME"] = str(tmp / "xdg")
        self.procs: list[Proc] = []
        self.servers: list = []
        self._tokens: dict = {}
        self.secret = tmp / "secret"
        r = self.run([GATEWAY, "gen-secret", "--out", self.secret])
        assert r.returncode == 0, f"gen-secret failed: {r.stderr}"
        assert self.secret.exists(), "gen-secret --out did not write the file"

    # -- one-shot commands ----------------------------------------------------------------
    def run(self, argv, timeout: float = 30, input: Optional[bytes] = None, check: bool = False):
        r = subprocess.run([str(a) for a in argv], input=input, capture_output=True, timeout=timeout,
                           env=self.env, cwd=str(self.tmp))
        r.stdout_text = r.stdout.decode("utf-8", "replace")
        r.stderr_text = r.stderr.decode("utf-8", "replace")
        if check:
            assert r.returncode == 0, f"{argv} -> {r.returncode}: {r.stderr_text}"
        return r

    def curl(self, *args, timeout: float = 30):
        return self.run(["curl", "-sS", "--max-time", str(int(timeout) - 2), *args], timeout=timeout)

    def token(self, role: str, tenant: str = "t1", name: str = "home", ttl: Optional[str] = None,
              secret: Optional[Path] = None) -> str:
        key = (role, tenant, name, ttl, str(secret))
        if ttl is None and key in self._tokens:
            return self._tokens[key]
        argv = [GATEWAY, "token", "--secret-file", secret or self.secret, "--role", role,
                "--tenant", tenant, "--name", name]
        if ttl is not None:
            argv += ["--ttl", ttl]
        r = self.run(argv, check=True)
        tok = r.stdout_text.strip()
        assert tok.count(".") == 2, f"token output is not a JWT: {r.stdout_text!r}"
        if ttl is None:
            self._tokens[key] = tok
        return tok

    def token_file(self, token: str) -> Path:
        p = self.tmp / f"token-{len(list(self.tmp.glob('token-*')))}.jwt"
        p.write_text(token + "\n")
        p.chmod(0o600)
        return p

    # -- long-running processes -------------------------------------------------------------
    def start(self, argv, name: str, **kw) -> Proc:
        p = Proc(argv, name, self.log_dir, self.env, self.tmp, **kw)
        self.procs.append(p)
        return p

    def write_config(self, name: str, text: str) -> Path:
        p = self.tmp / name
        p.write_text(text)
        return p

    def peer_config(self, keepalive: str = KEEPALIVE, keepalive_timeout: str = KEEPALIVE_TIMEOUT,
                    backoff_max: str = "2s", extra: str = "") -> Path:
        """YAML for an agent or client (-c): short liveness and reconnect settings."""
        n = len(list(self.tmp.glob("peer-*.yaml")))
        return self.write_config(f"peer-{n}.yaml", f"""\
session:
  keepalive: {keepalive}
  keepalive_timeout: {keepalive_timeout}
backoff_initial: 200ms
backoff_max: {backoff_max}
{extra}""")

    def start_gateway(self, tls: bool = True, port: int = 0, keepalive: Optional[str] = KEEPALIVE,
                      keepalive_timeout: Optional[str] = KEEPALIVE_TIMEOUT, extra=(), wait: bool = True,
                      name: str = "gateway", config: Optional[Path] = None) -> Gateway:
        argv = [GATEWAY] + (["-c", config] if config else [])
        argv += ["--listen", f"127.0.0.1:{port}", "--secret-file", self.secret]
        argv += ["--tls-cert", self.cert, "--tls-key", self.key] if tls else ["--plain"]
        if keepalive:
            argv += ["--keepalive", keepalive]
        if keepalive_timeout:
            argv += ["--keepalive-timeout", keepalive_timeout]
        argv += list(extra)
        p = self.start(argv, name, term_timeout=GATEWAY_TERM_TIMEOUT)
        if not wait:
            return Gateway(self, p, port, tls)
        m = p.wait_line(r"listening on 127\.0\.0\.1:(\d+) \((tls|plain)\)", timeout=15)
        assert m.group(2) == ("tls" if tls else "plain"), m.group(0)
        real = int(m.group(1))
        if port:
            assert real == port, f"asked for port {port}, gateway says {real}"
        return Gateway(self, p, real, tls)

    def peer_args(self, gw: Gateway, token: str, use_file: bool = True) -> list:
        argv = ["--gateway", gw.url]
        argv += ["--token-file", self.token_file(token)] if use_file else ["--token", token]
        if gw.tls:
            argv += ["--ca", self.cert, "--transport", TRANSPORT]
        return argv

    def start_agent(self, gw: Gateway, name: str = "home", tenant: str = "t1", allow=DEFAULT_ALLOW,
                    deny=(), token: Optional[str] = None, wait: bool = True, registered: bool = True,
                    extra=(), proc_name: Optional[str] = None, config: Optional[Path] = None) -> Proc:
        tok = token if token is not None else self.token("agent", tenant, name)
        argv = [AGENT] + (["-c", config] if config else []) + self.peer_args(gw, tok)
        for r in allow:
            argv += ["--allow", r]
        for r in deny:
            argv += ["--deny", r]
        argv += list(extra)
        p = self.start(argv, proc_name or f"agent-{name}")
        if wait:
            p.wait_line(r"session up: ", timeout=15)
            if registered and token is None:
                # the agent says "session up" once its handshake is done; give the gateway a
                # bounded moment to list it so that tests do not race the registration
                try:
                    gw.wait_agent(name, tenant, timeout=5)
                except AssertionError:
                    pass
        return p

    def client_args(self, gw: Gateway, tenant: str = "t1", name: str = "laptop",
                    token: Optional[str] = None, config: Optional[Path] = None) -> list:
        tok = token if token is not None else self.token("client", tenant, name)
        return [CLIENT] + (["-c", config] if config else []) + self.peer_args(gw, tok)

    def start_socks(self, gw: Gateway, agent: Optional[str] = "home", tenant: str = "t1",
                    user: Optional[str] = None, password: Optional[str] = None,
                    token: Optional[str] = None, extra=(), wait_session: bool = True,
                    config: Optional[Path] = None) -> Socks:
        argv = self.client_args(gw, tenant, token=token, config=config) + ["socks", "--listen", "127.0.0.1:0"]
        if agent:
            argv += ["--agent", agent]
        if user is not None:
            argv += ["--user", user, "--pass", password or ""]
        argv += list(extra)
        p = self.start(argv, "client-socks")
        m = p.wait_line(r"socks listening on 127\.0\.0\.1:(\d+)", timeout=15)
        if wait_session:
            p.wait_line(r"session up: ", timeout=15)
        return Socks(p, int(m.group(1)))

    def start_forward(self, gw: Gateway, specs: list[str], agent: str = "home", tenant: str = "t1") -> Forward:
        argv = self.client_args(gw, tenant) + ["forward", "--agent", agent]
        for s in specs:
            argv += ["-L", s]
        p = self.start(argv, "client-forward")
        ports = {}
        for i in range(len(specs)):
            m = p.wait_line(r"forward listening on 127\.0\.0\.1:(\d+) -> (\S+)", timeout=15, nth=i + 1)
            ports[m.group(2)] = int(m.group(1))
        p.wait_line(r"session up: ", timeout=15)
        return Forward(p, ports)

    def connect_argv(self, gw: Gateway, target: str, agent: Optional[str] = "home", tenant: str = "t1") -> list:
        argv = self.client_args(gw, tenant) + ["connect"]
        if agent:
            argv += ["--agent", agent]
        return argv + [target]

    # -- target servers ---------------------------------------------------------------------
    def _srv(self, s):
        self.servers.append(s)
        return s

    def echo_server(self):
        return self._srv(targets.EchoServer())

    def hash_server(self):
        return self._srv(targets.HashServer())

    def banner_server(self):
        return self._srv(targets.BannerServer())

    def source_server(self):
        return self._srv(targets.SourceServer())

    def slow_sink(self, **kw):
        return self._srv(targets.SlowSink(**kw))

    def http_server(self):
        return self._srv(targets.HttpServer())

    # -- teardown ---------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        complaints = []
        for p in reversed(self.procs):
            c = p.stop()
            if c:
                complaints.append(c)
        for p in self.procs:
            if nltest.pid_exists(p.pid):
                complaints.append(f"{p.name} (pid {p.pid}) is still running after cleanup")
        for s in self.servers:
            try:
                s.close()
            except OSError:
                pass
        return complaints

    def report(self, lines: int = 40) -> str:
        out = []
        for p in self.procs:
            out.append(f"--- {p.name} (pid {p.pid}, exit {p.returncode}) {p.log_path}")
            out.append(p.tail(lines))
        return "\n".join(out)


@pytest.fixture
def nl(tmp_path, certs, request):
    env = NL(tmp_path, certs)
    request.node._nl_env = env
    yield env
    complaints = env.cleanup()
    if complaints:
        pytest.fail("cleanup: " + "\n".join(complaints), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    env = getattr(item, "_nl_env", None)
    if env is not None and rep.failed and rep.when in ("call", "setup"):
        rep.sections.append(("nl process logs (tail)", env.report()))


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def sig_name(rc: Optional[int]) -> str:
    if rc is not None and rc < 0:
        return signal.Signals(-rc).name
    return str(rc)
