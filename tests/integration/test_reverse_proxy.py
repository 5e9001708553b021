"""nl-gateway behind nginx, the stand-in for a CDN or TLS-terminating reverse proxy: nginx
terminates TLS and proxies the WebSocket sessions to a plain gateway on loopback. nginx's
configuration is the block given in examples/reverse-proxy.md, read from that file, so
what the documentation tells users to write is what runs here. WebSocket only (nginx
does not carry QUIC), so these run in the integration/ registration."""

import hashlib
import re
import shutil

import pytest
from conftest import REPO, TRANSPORT, Gateway
from nltest import echo_roundtrip, free_port, port_accepts, socks5_open, wait_until

pytestmark = pytest.mark.skipif(TRANSPORT != "ws", reason="nginx proxies WebSocket only (runs as integration/)")

EXAMPLE = REPO / "examples" / "reverse-proxy.md"


def example_server_block(listen_port: int, gateway_port: int, cert, key) -> str:
    """The nginx block of examples/reverse-proxy.md, pointed at this test's ports and
    certificate."""
    m = re.search(r"```nginx\n(.*?)```", EXAMPLE.read_text(), re.S)
    assert m, "examples/reverse-proxy.md has no ```nginx block"
    block = m.group(1)
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{listen_port} ssl;"),
                     ("listen [::]:443 ssl;", ""),
                     ("/etc/letsencrypt/live/gw.example.com/fullchain.pem", str(cert)),
                     ("/etc/letsencrypt/live/gw.example.com/privkey.pem", str(key)),
                     ("127.0.0.1:8080", f"127.0.0.1:{gateway_port}")):
        assert old in block, f"the nginx block of examples/reverse-proxy.md no longer says {old!r}: update this test"
        block = block.replace(old, new)
    return block


def run_nginx(nl, conf, name: str):
    """nginx in the foreground (its log on stderr, so in the test's logs); None if it exited
    before it listened (its port was taken)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert shutil.which(nginx), "nginx is not installed (scripts/deps.sh installs it)"
    p = nl.start([nginx, "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)], name)
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+) ssl;", conf.read_text()).group(1))
    wait_until(lambda: not p.alive() or port_accepts(port), 15, "nginx to listen")
    if p.alive():
        return p
    assert "Address already in use" in p.text(), f"nginx did not start:\n{p.tail()}"
    return None


def start_nginx(nl, server_block):
    """nginx with server_block(port) (http-level text, TLS on 127.0.0.1:port): (its process,
    its config, its port). A port picked free can be taken before nginx binds it: then
    another is tried (3 at most)."""
    d = nl.tmp / "nginx"
    d.mkdir()
    for attempt in range(3):
        port = free_port()
        conf = d / f"nginx-{attempt}.conf"
        conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{server_block(port)}
}}
""")
        p = run_nginx(nl, conf, "nginx")
        if p:
            return p, conf, port
    pytest.fail("nginx found no free port in 3 attempts")


@pytest.fixture
def behind_nginx(nl):
    """A plain gateway on loopback with nginx in front: the gateway, the gateway as agents
    and clients reach it (through nginx), nginx's process and its config."""
    cfg = nl.write_config("gw-behind-proxy.yaml", "max_pending_per_address: 0  # as reverse-proxy.md says\n")
    gw = nl.start_gateway(tls=False, config=cfg)
    proxy, conf, port = start_nginx(nl, lambda port: example_server_block(port, gw.port, nl.cert, nl.key))
    return gw, Gateway(nl, gw.proc, port, tls=True), proxy, conf


def stream_works(socks_port: int, echo_port: int) -> bool:
    try:
        s = socks5_open(socks_port, "127.0.0.1", echo_port, timeout=5)
    except Exception:  # SocksError or OSError: not through (yet)
        return False
    try:
        return echo_roundtrip(s, b"ping", timeout=5) == b"ping"
    except OSError:
        return False
    finally:
        s.close()


def start_peers(nl, front):
    """An agent and a SOCKS client through the proxy, with a 2 s backoff cap (-c) so that
    reconnecting is quick and bounded, and an echo target: ([agent, client], Socks, echo)
    once a stream works."""
    agent = nl.start_agent(front, "home", config=nl.peer_config())
    socks = nl.start_socks(front, config=nl.peer_config())
    echo = nl.echo_server()
    assert stream_works(socks.port, echo.port)
    return [agent, socks.proc], socks, echo


def wait_all(procs, marks, regex: str, timeout: float):
    for p, m in zip(procs, marks):
        p.wait_line(regex, timeout=timeout, after=m)


def test_sessions_and_streams_through_nginx(nl, behind_nginx):
    gw, front, _, _ = behind_nginx
    st, _, body = front.get("/healthz")
    assert (st, body) == (200, b"ok\n"), "GET /healthz through nginx"

    nl.start_agent(front, "home")
    # The session came through nginx: the gateway names the agent by X-Forwarded-For, via
    # nginx's address.
    gw.proc.wait_line(r"agent t1/home online from 127\.0\.0\.1 \(via 127\.0\.0\.1:\d+\) \(ws\)", timeout=10)
    assert [a["name"] for a in front.agents()] == ["home"]

    socks = nl.start_socks(front)
    http = nl.http_server()
    r = nl.curl("--proxy", socks.url, http.url + "/")
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert "Hello from behind the agent" in r.stdout_text

    # 4 MiB arrive intact both ways through nginx, its TLS and two WebSocket hops.
    echo = nl.echo_server()
    data = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4 * 1024 * 1024 // 32))
    s = socks5_open(socks.port, "127.0.0.1", echo.port)
    try:
        got = echo_roundtrip(s, data)
    finally:
        s.close()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_peers_reconnect_after_the_proxy_restarts(nl, behind_nginx):
    """When the proxy goes away the agent and the client see their sessions end, and they
    come back by themselves once it is there again; streams work again."""
    gw, front, proxy, conf = behind_nginx
    peers, socks, echo = start_peers(nl, front)
    marks = [p.mark() for p in peers]
    proxy.stop()  # SIGTERM: nginx's fast shutdown closes every connection
    wait_all(peers, marks, r"session down: ", 10)
    assert not stream_works(socks.port, echo.port)

    # nginx again, on the same port: the peers know only that one.
    assert run_nginx(nl, conf, "nginx-again"), "nginx's port was taken while it was down"
    wait_all(peers, marks, r"session up: ", 20)
    wait_until(lambda: stream_works(socks.port, echo.port), 10, "a stream through the restarted proxy")
    gw.proc.wait_line(r"agent t1/home online from 127\.0\.0\.1 \(via", timeout=10, nth=2)


def test_gateway_down_behind_a_live_proxy(nl, behind_nginx):
    """The gateway crashes while nginx stays up (a CDN's 502): agent and client are told
    502, keep retrying (it is not an authentication refusal) and are back once a gateway
    listens again on the same port."""
    gw, front, _, _ = behind_nginx
    peers, socks, echo = start_peers(nl, front)
    marks = [p.mark() for p in peers]
    gw.proc.kill()
    wait_all(peers, marks, r"session down: .*502.*; retrying in", 15)
    assert all(p.alive() for p in peers)

    cfg = nl.tmp / "gw-behind-proxy.yaml"
    gw2 = nl.start_gateway(tls=False, port=gw.port, config=cfg, name="gateway-restarted")
    wait_all(peers, marks, r"session up: ", 20)
    gw2.proc.wait_line(r"agent t1/home online from 127\.0\.0\.1 \(via", timeout=10)
    wait_until(lambda: stream_works(socks.port, echo.port), 10, "a stream through the new gateway")


def test_a_proxy_403_is_not_the_gateway_refusing_the_token(nl):
    """A 401/403 without X-NL-Error comes from something in front of the gateway (a CDN's
    firewall rule, an access gate), not from nl-gateway: the agent says so and keeps
    retrying. Only the gateway's own refusal stops it (test_errors)."""
    def gate(port):
        return f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {nl.cert};
        ssl_certificate_key {nl.key};
        location / {{ return 403; }}
    }}"""
    proxy, _, port = start_nginx(nl, gate)
    agent = nl.start_agent(Gateway(nl, proxy, port, tls=True), "home", wait=False, config=nl.peer_config())
    refused = r"session down: HTTP 403 Forbidden \(not from nl-gateway: .*\); retrying in"
    agent.wait_line(refused, timeout=10)
    agent.wait_line(refused, timeout=10, nth=2)
    assert agent.alive(), f"the agent gave up on a proxy's 403:\n{agent.tail()}"


def test_under_a_path_prefix(nl):
    """The gateway under a path prefix of the proxy, as examples/reverse-proxy.md describes
    (`location /nl/v1/ { proxy_pass http://127.0.0.1:8080/v1/; ... }`, peers pointed at
    `wss://host/nl`): sessions, a stream and `nl-client list` go through the prefix."""
    gw = nl.start_gateway(tls=False, config=nl.write_config("gw-prefix.yaml", "max_pending_per_address: 0\n"))

    def prefixed(port):
        block = example_server_block(port, gw.port, nl.cert, nl.key)
        upstream = f"proxy_pass http://127.0.0.1:{gw.port};"
        assert "location /v1/ {" in block and upstream in block
        block = block.replace("location /v1/ {", "location /nl/v1/ {")
        return block.replace(upstream, f"proxy_pass http://127.0.0.1:{gw.port}/v1/;", 1)  # the /v1/ location's

    _, _, port = start_nginx(nl, prefixed)
    front = Gateway(nl, gw.proc, port, tls=True)
    front.url += "/nl"
    start_peers(nl, front)  # a stream works through the prefix
    gw.proc.wait_line(r"agent t1/home online from 127\.0\.0\.1 \(via", timeout=10)
    r = nl.run(nl.client_args(front) + ["list"], timeout=20)
    assert r.returncode == 0, f"list -> {r.returncode}: {r.stderr_text}"
    assert re.search(r"^\s*home\b", r.stdout_text, re.M), f"'home' not in list output:\n{r.stdout_text}"
