#!/usr/bin/python3
"""Time to the first reply over slow links: what early data (nl.2) is worth.

Each leg to the gateway goes through a relay that delays every chunk by D ms one way
(--delay, default 10), so the laptop -> gateway -> agent path has a one-way delay of 2D, as
when the gateway sits between two distant sites. Measured, per connection (median of --n):
connect to the local port, send one byte, wait for its echo from the target behind the agent.

  nl-forward   nl-client forward: the byte goes with the OPEN (early data): ~4D
  nl-socks     SOCKS5 must hear the agent's verdict before it sends:        ~8D
  nl-socks --early-reply   the SOCKS5 reply comes at once, the byte rides with the OPEN: ~4D
  ssh-L        OpenSSH local forward over one link with the same 2D one-way delay: channel
               open, confirmation, then the byte: ~8D (needs ../shared/bench's sshd set-up,
               i.e. tests/bench/run.sh once, else the row is skipped)

Loopback only; every process is stopped at the end. Prints a markdown table and writes
build/rtt-bench.md.

    tests/bench/rtt_bench.py [--delay 10] [--n 15]
"""
import argparse
import socket
import statistics
import subprocess
import threading
import time
from collections import deque

from benchenv import bench_env, wait_port  # noqa: E402  (also puts tests/integration on the path)
import conftest  # noqa: E402
from conftest import Gateway  # noqa: E402
from nltest import free_port, socks5_open  # noqa: E402

SSH_CONF = conftest.BIN_DIR / "bench-harness" / "conf"


class DelayRelay:
    """TCP relay on 127.0.0.1 that holds every chunk for `delay` seconds, in order."""

    def __init__(self, target_port: int, delay: float):
        self.target, self.delay = target_port, delay
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stop_ev = threading.Event()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                q, cv = deque(), threading.Condition()
                threading.Thread(target=self._read, args=(a, q, cv), daemon=True).start()
                threading.Thread(target=self._write, args=(b, q, cv), daemon=True).start()

    def _read(self, s, q, cv):
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            with cv:
                q.append((time.monotonic() + self.delay, d))
                cv.notify()
            if not d:
                return

    def _write(self, s, q, cv):
        while True:
            with cv:
                while not q:
                    cv.wait()
                due, d = q.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # the delay being simulated, not synchronisation
            try:
                if not d:
                    s.shutdown(socket.SHUT_WR)
                    return
                s.sendall(d)
            except OSError:
                return

    def close(self):
        self.stop_ev.set()
        self.srv.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def first_reply_ms(port, target_port, socks=False):
    t0 = time.perf_counter()
    if socks:
        s = socks5_open(port, "127.0.0.1", target_port, timeout=10)
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"x")
    got = s.recv(1)
    dt = (time.perf_counter() - t0) * 1000
    s.close()
    assert got == b"x", got
    return dt


def measure(n, *args, **kw):
    first_reply_ms(*args, **kw)  # warm-up: session up, first-use costs paid
    return statistics.median(first_reply_ms(*args, **kw) for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=10, help="one-way delay per gateway leg, ms")
    ap.add_argument("--n", type=int, default=15)
    a = ap.parse_args()
    d = a.delay / 1000
    rows = []
    relays, procs = [], []
    with bench_env("nl-rtt-bench-") as (nl, tport):
        try:
            conftest.TRANSPORT = "ws"
            gw = nl.start_gateway(keepalive="10s", keepalive_timeout="30s")
            for _ in range(2):
                relays.append(DelayRelay(gw.port, d))
            agent_view = Gateway(nl, gw.proc, relays[0].port, gw.tls)
            client_view = Gateway(nl, gw.proc, relays[1].port, gw.tls)
            nl.start_agent(agent_view, "home")
            fwd = nl.start_forward(client_view, [f"127.0.0.1:0:127.0.0.1:{tport}"])
            socks = nl.start_socks(client_view)
            early = nl.start_socks(client_view, extra=["--early-reply"])
            fport = fwd.ports[f"127.0.0.1:{tport}"]
            rows.append(("nl-forward (early data)", measure(a.n, fport, tport), 4))
            rows.append(("nl-socks (waits for the verdict)", measure(a.n, socks.port, tport, socks=True), 8))
            rows.append(("nl-socks --early-reply", measure(a.n, early.port, tport, socks=True), 4))
            if (SSH_CONF / "sshd_config").exists():
                subprocess.run(["mkdir", "-p", "/run/sshd"], check=False)
                sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(SSH_CONF / "sshd_config")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(sshd)
                wait_port(27110, "sshd")
                relays.append(DelayRelay(27110, 2 * d))
                lport = free_port()
                ssh = subprocess.Popen(["ssh", "-F", str(SSH_CONF / "ssh_config"), "-p", str(relays[-1].port),
                                        "-L", f"127.0.0.1:{lport}:127.0.0.1:{tport}", "-N", "bench"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(ssh)
                wait_port(lport, "ssh -L", timeout=30)
                rows.append(("ssh-L (one link, same 2D one-way delay)", measure(a.n, lport, tport), 8))
            else:
                print(f"(ssh-L skipped: no {SSH_CONF}; run tests/bench/run.sh once)", flush=True)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
            for r in relays:
                r.close()
    out = [f"| path (one-way delay D = {a.delay:g} ms per gateway leg) | first reply, ms (median of {a.n}) "
           "| expected |", "|---|---:|---:|"]
    for name, ms, k in rows:
        out.append(f"| {name} | {ms:.1f} | {k}D = {k * a.delay:g} |")
    text = "\n".join(out) + "\n"
    print(text)
    (conftest.BIN_DIR / "rtt-bench.md").write_text(text)


if __name__ == "__main__":
    main()
