"""Basics: versions, gateway health, agent listing, tenant isolation, plain (ws://) mode."""

import json
import re

from conftest import AGENT, CLIENT, GATEWAY
from nltest import recv_all, socks5_open, socks5_reply_code


def test_version_and_help(nl):
    for b, prog in ((GATEWAY, "nl-gateway"), (AGENT, "nl-agent"), (CLIENT, "nl-client")):
        r = nl.run([b, "--version"], timeout=10)
        assert r.returncode == 0, f"{prog} --version -> {r.returncode}: {r.stderr_text}"
        assert re.search(rf"^{prog} \d+\.\d+\.\d+", r.stdout_text + r.stderr_text, re.M), r.stdout_text
        h = nl.run([b, "--help"], timeout=10)
        assert h.returncode == 0, f"{prog} --help -> {h.returncode}"
        assert len(h.stdout_text + h.stderr_text) > 100


def test_healthz_with_curl(nl):
    gw = nl.start_gateway()
    r = nl.curl("--cacert", nl.cert, f"https://127.0.0.1:{gw.port}/healthz", "-D", "-")
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert re.match(r"HTTP/1\.1 200", r.stdout_text), r.stdout_text
    assert r.stdout_text.endswith("\r\n\r\nok\n"), repr(r.stdout_text)
    # the certificate is verified by name too
    r = nl.curl("--cacert", nl.cert, "--resolve", f"localhost:{gw.port}:127.0.0.1",
                f"https://localhost:{gw.port}/healthz")
    assert r.returncode == 0 and r.stdout_text == "ok\n", r.stderr_text


def test_list_shows_agent(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home", tenant="t1")
    r = nl.run(nl.client_args(gw, "t1") + ["list"], timeout=20)
    assert r.returncode == 0, f"list -> {r.returncode}: {r.stderr_text}"
    assert re.search(r"^\s*home\b", r.stdout_text, re.M), f"'home' not in list output:\n{r.stdout_text}"

    r = nl.run(nl.client_args(gw, "t1") + ["list", "--json"], timeout=20)
    assert r.returncode == 0, r.stderr_text
    agents = json.loads(r.stdout_text)
    assert [a["name"] for a in agents] == ["home"], agents
    a = agents[0]
    assert a["streams"] == 0
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", a["online_since"]), a
    assert re.match(r"127\.0\.0\.1:\d+$", a["address"]), a

    # the HTTP API says the same (with curl, as an operator would)
    tok = nl.token("client", "t1", "ops")
    r = nl.curl("--cacert", nl.cert, "-H", f"Authorization: Bearer {tok}", f"https://127.0.0.1:{gw.port}/v1/agents")
    assert r.returncode == 0, r.stderr_text
    assert [x["name"] for x in json.loads(r.stdout_text)] == ["home"]


def test_tenants_are_isolated(nl):
    gw = nl.start_gateway()
    http = nl.http_server()
    nl.start_agent(gw, "home", tenant="alpha")
    nl.start_agent(gw, "other", tenant="beta")

    assert [a["name"] for a in gw.agents("alpha")] == ["home"]
    assert [a["name"] for a in gw.agents("beta")] == ["other"]
    r = nl.run(nl.client_args(gw, "beta") + ["list", "--json"], timeout=20)
    assert r.returncode == 0, r.stderr_text
    assert "home" not in [a["name"] for a in json.loads(r.stdout_text)]

    # a beta client asking for alpha's agent: as if it did not exist (0x03), not "denied"
    beta = nl.start_socks(gw, agent="home", tenant="beta")
    assert socks5_reply_code(beta.port, "127.0.0.1", http.port) == 0x03
    # the same client reaches its own tenant's agent
    alpha = nl.start_socks(gw, agent="home", tenant="alpha")
    s = socks5_open(alpha.port, "127.0.0.1", http.port)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert b"Hello from behind the agent" in recv_all(s, timeout=15)
    s.close()
    # and beta via the connect sub-command is refused too
    r = nl.run(nl.connect_argv(gw, http.addr, agent="home", tenant="beta"), input=b"", timeout=20)
    assert r.returncode == 1, f"connect to another tenant's agent -> {r.returncode}"
    assert re.search(rf"nl-client: {re.escape(http.addr)} via home: ", r.stderr_text), r.stderr_text


def test_plain_ws_mode(nl):
    """Behind a TLS-terminating proxy the gateway runs plain; ws:// URLs work end to end."""
    gw = nl.start_gateway(tls=False)
    st, _, body = gw.get("/healthz")
    assert (st, body) == (200, b"ok\n")
    http = nl.http_server()
    nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    r = nl.curl("--proxy", socks.url, http.url + "/")
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr_text}"
    assert "Hello from behind the agent" in r.stdout_text


def test_agents_api_needs_a_token(nl):
    gw = nl.start_gateway()
    st, hdr, body = gw.get("/v1/agents")
    assert st == 401, (st, body)
    assert hdr.get("x-nl-error") == "missing token", hdr
    assert body == b"nl: missing token\n"


def test_subprotocol_negotiation(nl):
    """Peers offer nl.2 (nl.1 plus early data) and nl.1; the gateway picks the newest offered,
    still serves a peer that offers only nl.1, and refuses an offer of neither."""
    import http.client
    gw = nl.start_gateway(tls=False)
    tok = nl.token("client", "t1", "probe")

    def upgrade(offer):
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            c.request("GET", "/v1/client", headers={
                "Authorization": f"Bearer {tok}", "Connection": "Upgrade", "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": offer})
            r = c.getresponse()
            return r.status, r.getheader("Sec-WebSocket-Protocol"), r.getheader("X-NL-Error")
        finally:
            c.close()

    assert upgrade("nl.2, nl.1")[:2] == (101, "nl.2")
    assert upgrade("nl.1")[:2] == (101, "nl.1")
    assert upgrade("nl.1,nl.2")[:2] == (101, "nl.2")
    st, _, why = upgrade("nl.10, nl.3")
    assert st == 400 and "nl.2 or nl.1" in (why or ""), (st, why)
