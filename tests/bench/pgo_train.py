#!/usr/bin/env python3
"""pgo_train.py BUILD_DIR - the training run of scripts/build-pgo.sh.

Starts the instrumented nl-gateway, nl-agent and two nl-clients (forward and socks) from
BUILD_DIR on loopback, with a fresh secret, tokens and self-signed certificate, and an echo
target of its own. Drives through them what the profile should favour: new streams with a
one-byte echo, round trips on a warm stream, and bulk both ways. Then stops them with
SIGTERM, so that each writes its profile (.gcda files) on a clean exit.

Bounded: every wait has a deadline, every loop a count, and everything started is
stopped, also on failure. Only 127.0.0.1 is used.
"""
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

DEADLINE = 30.0  # seconds for any one process to become ready
NEW_STREAMS = 2000
ROUND_TRIPS = 2000
BULK_BYTES = 64 * 1024 * 1024  # each way


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def wait_line(path, regex, proc):
    """The first match of regex in the log at path, waiting at most DEADLINE seconds."""
    end = time.monotonic() + DEADLINE
    pat = re.compile(regex)
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"pgo_train: {path} exited early:\n{open(path).read()[-2000:]}")
        with open(path, errors="replace") as f:
            m = pat.search(f.read())
        if m:
            return m
        time.sleep(0.05)
    raise SystemExit(f"pgo_train: no /{regex}/ in {path} within {DEADLINE:.0f} s")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    got = bytearray()
    while len(got) < n:
        b = s.recv(min(65536, n - len(got)))
        if not b:
            raise SystemExit("pgo_train: stream ended early")
        got += b
    return bytes(got)


def socks_connect(port, target_port):
    s = connect(port)
    s.sendall(b"\x05\x01\x00")
    if recv_exactly(s, 2) != b"\x05\x00":
        raise SystemExit("pgo_train: SOCKS5 method refused")
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + target_port.to_bytes(2, "big"))
    reply = recv_exactly(s, 10)
    if reply[1] != 0:
        raise SystemExit(f"pgo_train: SOCKS5 reply {reply[1]}")
    return s


def workload(fwd_port, socks_port, target_port):
    for i in range(NEW_STREAMS):
        s = socks_connect(socks_port, target_port) if i % 4 == 3 else connect(fwd_port)
        s.sendall(b"x")
        if recv_exactly(s, 1) != b"x":
            raise SystemExit("pgo_train: bad echo")
        s.close()
    s = connect(fwd_port)
    for _ in range(ROUND_TRIPS):
        s.sendall(b"x")
        recv_exactly(s, 1)
    # bulk both ways at once: a writer thread while this one reads the echo back
    chunk = os.urandom(65536)
    sender = threading.Thread(target=lambda: [s.sendall(chunk) for _ in range(BULK_BYTES // len(chunk))],
                              daemon=True)
    sender.start()
    recv_exactly(s, BULK_BYTES)
    sender.join(timeout=DEADLINE)
    s.close()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    gw, ag, cl = (os.path.join(build, d, "nl-" + d) for d in ("gateway", "agent", "client"))
    procs = []
    echo = EchoServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    target_port = echo.server_address[1]
    with tempfile.TemporaryDirectory(prefix="nl-pgo-") as d:
        def start(name, *args):
            log = os.path.join(d, name + ".log")
            p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=d)
            procs.append(p)
            return p, log

        try:
            secret, crt, key = (os.path.join(d, n) for n in ("secret", "gateway.crt", "gateway.key"))
            subprocess.run([gw, "gen-secret", "--out", secret], check=True)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                           check=True, capture_output=True)
            tokens = {}
            for role, name in (("agent", "train"), ("client", "trainer")):
                tokens[role] = os.path.join(d, role + ".token")
                with open(tokens[role], "w") as f:
                    subprocess.run([gw, "token", "--secret-file", secret, "--role", role, "--tenant", "pgo",
                                    "--name", name, "--ttl", "1h"], check=True, stdout=f)
            p, log = start("gateway", gw, "--listen", "127.0.0.1:0", "--tls-cert", crt, "--tls-key", key,
                           "--secret-file", secret)
            url = "wss://127.0.0.1:" + wait_line(log, r"listening on 127\.0\.0\.1:(\d+) \(tls\)", p).group(1)
            p, log = start("agent", ag, "--gateway", url, "--token-file", tokens["agent"], "--ca", crt,
                           "--allow", "cidr=127.0.0.0/8", "--transport", "ws",
                           "--key-file", os.path.join(d, "agent.key"))
            wait_line(log, r"session up: ", p)
            common = ["--gateway", url, "--token-file", tokens["client"], "--ca", crt, "--transport", "ws"]
            p, log = start("forward", cl, *common, "forward", "--agent", "train",
                           "-L", f"127.0.0.1:0:127.0.0.1:{target_port}")
            fwd = int(wait_line(log, r"forward listening on 127\.0\.0\.1:(\d+)", p).group(1))
            wait_line(log, r"session up: ", p)
            p, log = start("socks", cl, *common, "socks", "--agent", "train", "--listen", "127.0.0.1:0")
            socks = int(wait_line(log, r"socks listening on 127\.0\.0\.1:(\d+)", p).group(1))
            wait_line(log, r"session up: ", p)
            t0 = time.monotonic()
            workload(fwd, socks, target_port)
            print(f"pgo_train: workload done in {time.monotonic() - t0:.1f} s")
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in reversed(procs):
                try:
                    p.wait(timeout=DEADLINE)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            echo.shutdown()
    bad = [p.args[0] for p in procs if p.returncode not in (0, -signal.SIGTERM)]
    if bad:
        raise SystemExit(f"pgo_train: unclean exit of {bad}; their profiles may be missing")


if __name__ == "__main__":
    main()
