"""End-to-end encryption, proven against a wiretap that sees what the gateway relays.

The tap (wstap.py) sits between the agent and a plain-WebSocket gateway and records every
message payload, unmasked and reassembled: exactly what the gateway process can read. Each
test first shows that the tap does see plaintext when e2e is off, so it can fail.
"""

import hashlib
import re
import socket
import threading

import pytest

from nltest import wait_until
from wstap import WsTap

MARKER = b"NL-E2E-MARKER-" + bytes(range(48, 58)) * 3  # 44 recognisable bytes
MIB = 1 << 20


def marker_data(size: int = MIB) -> bytes:
    return (MARKER * (size // len(MARKER) + 1))[:size]


def agent_key(nl, key_file):
    """(public key text, fingerprint) printed by `nl-agent key` (creates the key pair)."""
    from conftest import AGENT
    r = nl.run([AGENT, "key", "--key-file", key_file], check=True)
    lines = r.stdout_text.strip().splitlines()
    assert lines[0].startswith("nl1:"), r.stdout_text
    m = re.match(r"fingerprint ([0-9a-f:]+)$", lines[1])
    assert m, r.stdout_text
    return lines[0], m.group(1)


class Recorder:
    """TCP server that keeps every byte it receives (one connection at a time)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.accepted = 0
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        self.accepted += 1
        with c:
            while True:
                try:
                    b = c.recv(65536)
                except OSError:
                    break
                if not b:
                    break
                self.data += b
        self.done.set()

    def close(self):
        self.sock.close()


@pytest.fixture
def tapped(nl):
    """A plain gateway, a tap in front of it, and an agent connected through the tap."""
    gw = nl.start_gateway(tls=False)
    tap = WsTap(gw.port)
    nl.servers.append(tap)
    key_file = nl.tmp / "agent.key"
    pub, fp = agent_key(nl, key_file)
    tok = nl.token("agent", "t1", "home")
    from conftest import AGENT
    argv = [AGENT, "--gateway", f"ws://127.0.0.1:{tap.port}", "--token-file", nl.token_file(tok),
            "--key-file", key_file, "--allow", "cidr=127.0.0.0/8"]
    agent = nl.start(argv, "agent-home")
    agent.wait_line(r"session up: ", timeout=15)
    gw.wait_agent("home")
    return gw, tap, agent, pub, fp


def echo_roundtrip(nl, gw, target, data, pin=None):
    argv = nl.client_args(gw) + (["--pin", f"home={pin}"] if pin else []) + ["connect", "--agent", "home", target]
    r = nl.run(argv, input=data, timeout=60)
    assert r.returncode == 0, f"connect exit {r.returncode}: {r.stderr_text}"
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest(), "echo mismatch"
    return r


def test_gateway_sees_neither_data_nor_destination(nl, tapped):
    gw, tap, agent, pub, _ = tapped
    echo = nl.echo_server()
    target = f"localhost:{echo.port}"
    data = marker_data()

    # Control: without e2e the tap reads both the marker and the destination.
    echo_roundtrip(nl, gw, target, data)
    seen = tap.seen()
    assert MARKER in seen, "the tap must see plaintext when e2e is off (else this test proves nothing)"
    assert b"localhost" in seen

    # With the agent's key pinned: the same 1 MiB through the same gateway, nothing readable.
    before = len(seen)
    echo_roundtrip(nl, gw, target, data, pin=pub)
    seen = tap.seen()[before:]
    assert len(seen) > 2 * len(data), "the encrypted stream went through the tap"
    assert MARKER[:16] not in seen, "plaintext marker visible to the gateway with e2e on"
    assert b"localhost" not in seen, "destination name visible to the gateway with e2e on"
    agent.wait_line(r"to localhost:\d+ \(e2e\) closed", timeout=10)


def test_wrong_pinned_key_is_refused_with_fingerprints(nl, tapped):
    gw, tap, agent, pub, fp = tapped
    other_pub, other_fp = agent_key(nl, nl.tmp / "other.key")
    assert other_fp != fp
    rec = Recorder()
    nl.servers.append(rec)
    argv = nl.client_args(gw) + ["--pin", f"home={other_pub}", "connect", "--agent", "home",
                                 f"127.0.0.1:{rec.port}"]
    r = nl.run(argv, input=b"secret bytes", timeout=30)
    assert r.returncode != 0
    err = r.stderr_text
    assert other_fp in err, f"the message should name the pinned fingerprint: {err}"
    assert fp in err, f"the message should name the agent's real fingerprint: {err}"
    assert "end-to-end" in err
    assert rec.accepted == 0, "nothing may reach the target when the handshake fails"
    assert b"secret bytes" not in tap.seen()


def test_passphrase_is_needed_too(nl):
    gw = nl.start_gateway()
    key_file = nl.tmp / "agent.key"
    pub, _ = agent_key(nl, key_file)
    phrase = nl.tmp / "phrase"
    phrase.write_text("correct horse battery staple\n")
    phrase.chmod(0o600)
    wrong = nl.tmp / "wrong"
    wrong.write_text("incorrect horse\n")
    nl.start_agent(gw, "home", extra=["--key-file", key_file, "--e2e-passphrase-file", phrase])
    echo = nl.echo_server()
    base = nl.client_args(gw) + ["--pin", f"home={pub}"]
    ok = nl.run(base + ["--e2e-passphrase-file", phrase, "connect", "--agent", "home", echo.addr],
                input=b"hello", timeout=30)
    assert ok.returncode == 0 and ok.stdout == b"hello", ok.stderr_text
    bad = nl.run(base + ["--e2e-passphrase-file", wrong, "connect", "--agent", "home", echo.addr],
                 input=b"hello", timeout=30)
    assert bad.returncode != 0 and bad.stdout == b""
    assert "end-to-end" in bad.stderr_text
    none = nl.run(base + ["connect", "--agent", "home", echo.addr], input=b"hello", timeout=30)
    assert none.returncode != 0 and none.stdout == b""


def test_agent_can_require_e2e(nl):
    gw = nl.start_gateway()
    key_file = nl.tmp / "agent.key"
    pub, _ = agent_key(nl, key_file)
    nl.start_agent(gw, "home", extra=["--key-file", key_file, "--require-e2e"])
    echo = nl.echo_server()
    plain = nl.run(nl.connect_argv(gw, echo.addr), input=b"hello", timeout=30)
    assert plain.returncode != 0
    assert "requires end-to-end" in plain.stderr_text, plain.stderr_text
    assert echo.accepted == 0
    sealed = nl.run(nl.client_args(gw) + ["--pin", f"home={pub}", "connect", "--agent", "home", echo.addr],
                    input=b"hello", timeout=30)
    assert sealed.returncode == 0 and sealed.stdout == b"hello", sealed.stderr_text


def test_denial_text_travels_encrypted(nl, tapped):
    """A policy refusal names the rule to the user, but the gateway sees only a generic text."""
    gw, tap, agent, pub, _ = tapped
    argv = nl.client_args(gw) + ["--pin", f"home={pub}", "connect", "--agent", "home", "10.99.0.1:22"]
    r = nl.run(argv, input=b"", timeout=30)
    assert r.returncode != 0
    assert "denied" in r.stderr_text and "default deny" in r.stderr_text, r.stderr_text
    assert b"10.99.0.1" not in tap.seen()
    assert b"default deny" not in tap.seen()


@pytest.mark.parametrize("kind", ["flip", "drop", "duplicate", "reorder"])
def test_tampered_records_reset_the_stream(nl, tapped, kind):
    """A relay that flips, drops, duplicates or reorders DATA towards the agent: the agent
    resets the stream and the target receives only an intact prefix, never corrupted data."""
    gw, tap, agent, pub, _ = tapped
    rec = Recorder()
    nl.servers.append(rec)
    tap.tamper = (kind, 3)
    blocks = [hashlib.sha256(bytes([i])).digest() * 2048 for i in range(12)]  # 12 x 64 KiB, all different
    data = b"".join(blocks)
    argv = nl.client_args(gw) + ["--pin", f"home={pub}", "connect", "--agent", "home", f"127.0.0.1:{rec.port}"]
    mark = agent.mark()
    r = nl.run(argv, input=data, timeout=60)
    assert tap.tampered >= 1, "the tap did not get to tamper (too little data?)"
    agent.wait_line(r"end-to-end check failed", timeout=15, after=mark)
    assert rec.done.wait(15), "the target connection was not closed"
    got = bytes(rec.data)
    assert len(got) < len(data), f"{kind}: everything arrived although the stream was tampered with"
    assert data.startswith(got), f"{kind}: the target received corrupted data"
    assert r.returncode != 0 or len(r.stdout) == 0
