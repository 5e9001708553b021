#!/usr/bin/env python3
"""pgo_train.py BUILD_DIR - the training run of scripts/build-pgo.sh.

Starts the instrumented nl-gateway, nl-agent and two nl-clients (forward and socks) from
BUILD_DIR on loopback, with a fresh secret, tokens and self-signed certificate, and the
integration tests' echo target. Drives through them what the profile should favour: new streams with a
one-byte echo, round trips on a warm stream, and bulk both ways. Then stops them with
SIGTERM, so that each writes its profile (.gcda files) on a clean exit.

Bounded: every wait has a deadline, every loop a count, and everything started is
stopped, also on failure. Only 127.0.0.1 is used.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The integration tests' helpers: processes with deadline-bounded log waits, SOCKS5, the
# echo target (stdlib only, no pytest).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from nltest import Proc, echo_roundtrip, recv_exact, socks5_open  # noqa: E402
from targets import EchoServer  # noqa: E402

DEADLINE = 30.0  # seconds for any one process to become ready or to exit
NEW_STREAMS = 2000
ROUND_TRIPS = 2000
BULK_BYTES = 64 * 1024 * 1024  # each way


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def workload(fwd_port, socks_port, target_port):
    for i in range(NEW_STREAMS):
        s = socks5_open(socks_port, "127.0.0.1", target_port) if i % 4 == 3 else connect(fwd_port)
        s.sendall(b"x")
        if recv_exact(s, 1) != b"x":
            raise SystemExit("pgo_train: bad echo")
        s.close()
    s = connect(fwd_port)
    for _ in range(ROUND_TRIPS):
        s.sendall(b"x")
        recv_exact(s, 1)
    echo_roundtrip(s, os.urandom(BULK_BYTES), timeout=DEADLINE)  # bulk both ways at once
    s.close()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    gw, ag, cl = (os.path.join(build, d, "nl-" + d) for d in ("gateway", "agent", "client"))
    procs = []
    echo = EchoServer()
    with tempfile.TemporaryDirectory(prefix="nl-pgo-") as tmp:
        d = Path(tmp)

        def start(name, *args):
            p = Proc(args, name, d, dict(os.environ), d, term_timeout=DEADLINE)
            procs.append(p)
            return p

        try:
            secret, crt, key = d / "secret", d / "gateway.crt", d / "gateway.key"
            subprocess.run([gw, "gen-secret", "--out", secret], check=True, capture_output=True)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                           check=True, capture_output=True)
            tokens = {}
            for role, name in (("agent", "train"), ("client", "trainer")):
                tokens[role] = d / (role + ".token")
                with open(tokens[role], "w") as f:
                    subprocess.run([gw, "token", "--secret-file", secret, "--role", role, "--tenant", "pgo",
                                    "--name", name, "--ttl", "1h"], check=True, stdout=f)
            p = start("gateway", gw, "--listen", "127.0.0.1:0", "--tls-cert", crt, "--tls-key", key,
                      "--secret-file", secret)
            url = "wss://127.0.0.1:" + p.wait_line(r"listening on 127\.0\.0\.1:(\d+) \(tls\)", DEADLINE).group(1)
            p = start("agent", ag, "--gateway", url, "--token-file", tokens["agent"], "--ca", crt,
                      "--allow", "cidr=127.0.0.0/8", "--transport", "ws", "--key-file", d / "agent.key")
            p.wait_line(r"session up: ", DEADLINE)
            common = ["--gateway", url, "--token-file", tokens["client"], "--ca", crt, "--transport", "ws"]
            p = start("forward", cl, *common, "forward", "--agent", "train",
                      "-L", f"127.0.0.1:0:127.0.0.1:{echo.port}")
            fwd = int(p.wait_line(r"forward listening on 127\.0\.0\.1:(\d+)", DEADLINE).group(1))
            p.wait_line(r"session up: ", DEADLINE)
            p = start("socks", cl, *common, "socks", "--agent", "train", "--listen", "127.0.0.1:0")
            socks = int(p.wait_line(r"socks listening on 127\.0\.0\.1:(\d+)", DEADLINE).group(1))
            p.wait_line(r"session up: ", DEADLINE)
            t0 = time.monotonic()
            workload(fwd, socks, echo.port)
            print(f"pgo_train: workload done in {time.monotonic() - t0:.1f} s")
        finally:
            # SIGTERM, the last started first; a program that needs SIGKILL writes no profile
            complaints = [c for c in (p.stop() for p in reversed(procs)) if c]
            echo.close()
    bad = complaints + [f"{p.name} exited with {p.returncode}" for p in procs if p.returncode not in (0, -signal.SIGTERM)]
    if bad:
        raise SystemExit("pgo_train: unclean exits; their profiles may be missing:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
