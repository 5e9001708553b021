#!/usr/bin/python3
"""WebSocket vs QUIC between nl peers and the gateway, one run, loopback (TLS both):
nl-client socks -> gateway -> agent -> target, one agent and one SOCKS client per
transport (`--transport ws`, `--transport quic`), all up at once; the rounds alternate
between the transports so that the machine's slow spells fall on both. Per transport:

  bulk     one stream, target -> client, MB/s (best of ROUNDS x SECS)
  4 par    four streams at once, aggregate MB/s
  streams  sequential new streams per second (SOCKS5 connect + 1-byte echo + close, 300)
  cold     cold connect to first byte, ms: nl-dial-bench (tests/bench/dial) builds a new
           link to the gateway in one process, opens a stream and waits for the target's
           banner (median of 20; the transport only; in brackets the first round, which
           also pays the process's one-time TLS library and CA set-up)
  exec     `nl-client connect` from exec to the first byte of the banner, ms (median of
           15; adds process start and config loading to `cold`)

The target is ../shared/bench/bench.py server (a separate process: 'D' = endless zeros,
anything else = echo). Prints a markdown table and writes build/transport-bench.md.

    tests/bench/transport_bench.py [--secs 3] [--rounds 3]
"""
import argparse
import os
import statistics
import subprocess
import threading
import time

from benchenv import bench_env  # noqa: E402  (also puts tests/integration on the path)
import conftest  # noqa: E402
from conftest import CLIENT  # noqa: E402
from nltest import socks5_open  # noqa: E402


def read_for(sock, secs, box, i):
    buf = bytearray(1 << 20)
    sock.sendall(b"D0\n")  # endless zeros
    end = time.monotonic() + 0.3
    while time.monotonic() < end:  # warm-up
        sock.recv_into(buf)
    n, t0 = 0, time.monotonic()
    end = t0 + secs
    while time.monotonic() < end:
        k = sock.recv_into(buf)
        if not k:
            break
        n += k
    box[i] = n / (time.monotonic() - t0) / 1e6


def bulk(socks_port, target, streams, secs):
    socks = [socks5_open(socks_port, "127.0.0.1", target) for _ in range(streams)]
    box = [0.0] * streams
    ts = [threading.Thread(target=read_for, args=(s, secs, box, i)) for i, s in enumerate(socks)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(secs + 30)
    for s in socks:
        s.close()
    return sum(box)


def stream_rate(socks_port, target, n=300):
    t0 = time.monotonic()
    for _ in range(n):
        s = socks5_open(socks_port, "127.0.0.1", target)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        s.close()
    return n / (time.monotonic() - t0)


def dial_bench(nl, gw, transport, banner_port, agent, rounds=20):
    tok = nl.token_file(nl.token("client", "t1", "laptop"))
    argv = [str(conftest.BIN_DIR / "tests" / "bench" / "dial" / "nl-dial-bench"), "--gateway", gw.url,
            "--token-file", str(tok), "--ca", str(nl.cert), "--transport", transport, "--agent", agent,
            "--target", f"127.0.0.1:{banner_port}", "--rounds", str(rounds)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=nl.env, check=True).stdout
    last = out.strip().splitlines()[-1]
    assert last.startswith("median "), out
    return float(last.split("first_byte_ms=")[1].split()[0]), float(last.split("first_round_ms=")[1].split()[0])


def cold_connect(nl, gw, transport, banner_port, agent, n=15):
    times = []
    tok = nl.token_file(nl.token("client", "t1", "laptop"))
    for _ in range(n):
        argv = [str(CLIENT), "--gateway", gw.url, "--token-file", str(tok), "--ca", str(nl.cert), "--transport",
                transport, "connect", "--agent", agent, f"127.0.0.1:{banner_port}"]
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=nl.env)
        b = p.stdout.read(1)
        times.append((time.monotonic() - t0) * 1000)
        assert b, "no first byte"
        p.stdin.close()
        p.kill()
        p.wait(10)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--transports", default="ws,quic", help="comma-separated subset of ws,quic")
    a = ap.parse_args()
    rows = {}
    with bench_env("nl-transport-bench-") as (nl, port):
        banner = nl.banner_server()
        gw = nl.start_gateway(keepalive="10s", keepalive_timeout="30s")
        # Both transports are up at once (an agent and a SOCKS client each) and the
        # rounds alternate between them, so that a slow spell of this shared machine
        # falls on both rows rather than on one.
        transports = a.transports.split(",")
        peers = {}
        for t in transports:
            conftest.TRANSPORT = t
            agent = nl.start_agent(gw, name=f"home-{t}", proc_name=f"agent-{t}")
            socks = nl.start_socks(gw, agent=f"home-{t}")
            socks.proc.wait_line(r"session up: .*\((wss|quic)\)")
            peers[t] = (agent, socks)
        best = {t: [0.0, 0.0, 0.0] for t in transports}
        for _ in range(a.rounds):
            for i, (fn, arg) in enumerate(((bulk, 1), (bulk, 4), (stream_rate, None))):
                for t in transports:
                    sp = peers[t][1].port
                    v = fn(sp, port, arg, a.secs) if arg else fn(sp, port)
                    best[t][i] = max(best[t][i], v)
        for t in transports:
            conftest.TRANSPORT = t
            cold, first = dial_bench(nl, gw, t, banner.port, f"home-{t}")
            ex = cold_connect(nl, gw, t, banner.port, f"home-{t}")
            b1, b4, rate = best[t]
            rows[t] = (b1, b4, rate, cold, first, ex)
            print(f"{t:5} bulk {b1:7.0f} MB/s  4 par {b4:7.0f} MB/s  streams {rate:6.0f}/s  "
                  f"cold {cold:5.2f} ms (first {first:5.2f})  exec {ex:5.1f} ms", flush=True)
        for agent, socks in peers.values():
            socks.proc.stop()
            agent.stop()
    out = ["| transport | bulk MB/s | 4 streams MB/s | new streams/s | cold connect ms (first in process) "
           "| exec to first byte ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        out.append(f"| {name} | {r[0]:.0f} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.2f} ({r[4]:.2f}) | {r[5]:.1f} |")
    if "ws" in rows and "quic" in rows:
        ws, q = rows["ws"], rows["quic"]
        out.append(f"| quic / ws | {q[0] / ws[0]:.2f}x | {q[1] / ws[1]:.2f}x | {q[2] / ws[2]:.2f}x | | |")
    text = "\n".join(out) + f"\n\n(best of {a.rounds} x {a.secs:.0f} s per cell; loopback, {os.cpu_count()} CPUs)\n"
    print(text)
    (conftest.BIN_DIR / "transport-bench.md").write_text(text)


if __name__ == "__main__":
    main()
