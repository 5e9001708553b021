"""Per-stream flow control: a stalled stream must not stall the others in the same session.

Both directions are checked. A slow stream (1 KiB per 100 ms at the reading end) is saturated
first, then a bulk stream of 64 MiB runs beside it in the same direction. Without per-stream
windows the bulk stream would queue behind the stalled one and never finish; with them it
must reach a good fraction of the rate measured alone (baseline, same test, same machine).
Afterwards the slow stream is still open and every byte of it arrives intact. Memory of the
three processes stays bounded meanwhile (bounded by windows, not by traffic).
"""

import hashlib
import socket
import struct
import threading
import time

from nltest import (PATTERN, Timeout, assert_rss_growth_below, pattern_bytes, pattern_sha256, recv_all,
                    recv_exact, socks5_open, wait_until)

BULK = 64 * 1024 * 1024
MIN_FRACTION = 0.30       # fast stream beside a stalled one vs alone
BULK_DEADLINE = 60.0      # absolute bound for one bulk transfer
MEM_GROWTH_KIB = 64 * 1024


def upload(socks_port: int, hash_port: int, n: int) -> float:
    """Sends n PATTERN bytes to the hash server, half-closes, checks its sha256. Seconds."""
    t0 = time.monotonic()
    with socks5_open(socks_port, "127.0.0.1", hash_port, timeout=BULK_DEADLINE) as s:
        mv = memoryview(PATTERN)
        sent = 0
        while sent < n:
            k = min(len(PATTERN), n - sent)
            s.sendall(mv[:k])
            sent += k
        s.shutdown(socket.SHUT_WR)
        reply = recv_all(s, timeout=BULK_DEADLINE).decode().split()
    dt = time.monotonic() - t0
    assert reply == [pattern_sha256(n), str(n)], f"hash server got {reply}"
    return dt


def download(socks_port: int, source_port: int, n: int) -> float:
    t0 = time.monotonic()
    with socks5_open(socks_port, "127.0.0.1", source_port, timeout=BULK_DEADLINE) as s:
        s.sendall(struct.pack(">Q", n))
        h = hashlib.sha256()
        buf = bytearray(1 << 20)
        got = 0
        deadline = t0 + BULK_DEADLINE
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            k = s.recv_into(buf)
            if not k:
                break
            h.update(memoryview(buf)[:k])
            got += k
    dt = time.monotonic() - t0
    assert got == n, f"downloaded {got} of {n} bytes"
    assert h.hexdigest() == pattern_sha256(n), "download corrupted"
    return dt


def rss_all(procs) -> dict:
    return {p.name: p.rss_kib() for p in procs}


def assert_rss_all_below(mem0: dict, mem1: dict) -> None:
    """Each process grew by less than MEM_GROWTH_KIB between the two rss_all() samples."""
    for name in mem0:
        assert_rss_growth_below(mem1[name] - mem0[name], MEM_GROWTH_KIB,
                                f"{name} RSS grew {mem0[name]} -> {mem1[name]} KiB")


def wait_stalled(counter, what: str, timeout: float = 20.0, quiet: float = 0.5):
    """Waits until counter() stops moving for `quiet` seconds (the stream's windows and
    socket buffers are full)."""
    state = {"v": -1, "t": time.monotonic()}

    def stalled():
        v = counter()
        now = time.monotonic()
        if v != state["v"]:
            state["v"], state["t"] = v, now
            return False
        return v > 0 and now - state["t"] >= quiet

    wait_until(stalled, timeout, f"{what} to stall", interval=0.05)


def _setup(nl):
    gw = nl.start_gateway()
    agent = nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    return gw, agent, socks


def test_slow_upload_does_not_stall_fast_upload(nl):
    gw, agent, socks = _setup(nl)
    hashsrv = nl.hash_server()
    sink = nl.slow_sink()

    base = upload(socks.port, hashsrv.port, BULK)
    mem0 = rss_all([gw.proc, agent, socks.proc])

    # saturate the slow stream: a writer pushes as fast as it can into a 10 KiB/s reader
    slow = socks5_open(socks.port, "127.0.0.1", sink.port)
    stop = threading.Event()
    sent = {"n": 0, "err": None}
    h_sent = hashlib.sha256()

    def writer():
        chunk = 64 * 1024
        try:
            slow.settimeout(120)
            while not stop.is_set():
                b = pattern_bytes(sent["n"], chunk)
                slow.sendall(b)
                h_sent.update(b)
                sent["n"] += len(b)
            slow.shutdown(socket.SHUT_WR)
        except OSError as e:
            sent["err"] = e

    wt = threading.Thread(target=writer, daemon=True)
    wt.start()
    wait_stalled(lambda: sent["n"], "the slow upload")
    buffered = sent["n"] - sink.received

    try:
        fast = upload(socks.port, hashsrv.port, BULK)
    except (OSError, Timeout) as e:
        raise AssertionError(f"bulk upload beside a stalled stream did not finish: {e!r}") from e
    mem1 = rss_all([gw.proc, agent, socks.proc])

    assert sent["err"] is None, f"slow stream broke: {sent['err']!r}"
    assert wt.is_alive(), "slow writer ended early"
    assert fast <= base / MIN_FRACTION, (
        f"bulk upload beside a stalled stream took {fast:.2f}s vs {base:.2f}s alone "
        f"(< {MIN_FRACTION:.0%} of the baseline rate)")
    assert_rss_all_below(mem0, mem1)

    # the slow stream is intact: let the sink read at full speed, then compare every byte
    stop.set()
    sink.fast.set()
    wt.join(30)
    assert not wt.is_alive() and sent["err"] is None, f"slow writer: {sent['err']!r}"
    assert sink.done.wait(30), f"slow sink did not see EOF ({sink.received} of {sent['n']} bytes)"
    assert sink.results[-1] == (h_sent.hexdigest(), sent["n"]), (
        f"slow stream corrupted: sink got {sink.results[-1][1]} bytes, sent {sent['n']}")
    slow.close()
    print(f"upload: alone {BULK / base / 1e6:.0f} MB/s, beside stalled stream {BULK / fast / 1e6:.0f} MB/s; "
          f"{buffered} bytes were in flight on the stalled stream; RSS {mem0} -> {mem1}")


def test_slow_download_does_not_stall_fast_download(nl):
    gw, agent, socks = _setup(nl)
    src = nl.source_server()

    base = download(socks.port, src.port, BULK)
    mem0 = rss_all([gw.proc, agent, socks.proc])

    # a reader at the client side that takes 1 KiB every 100 ms from an endless source
    slow = socks5_open(socks.port, "127.0.0.1", src.port)
    slow.sendall(struct.pack(">Q", 0))
    stop = threading.Event()
    state = {"off": 0, "err": None}

    def reader():
        try:
            slow.settimeout(30)
            while not stop.is_set():
                b = slow.recv(1024)
                if not b:
                    state["err"] = "EOF on the slow stream"
                    return
                if b != pattern_bytes(state["off"], len(b)):
                    state["err"] = f"corrupt data at offset {state['off']}"
                    return
                state["off"] += len(b)
                stop.wait(0.1)
        except OSError as e:
            state["err"] = repr(e)

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    wait_until(lambda: state["off"] > 0, 15, "the slow download to start")

    try:
        fast = download(socks.port, src.port, BULK)
    except (OSError, Timeout) as e:
        raise AssertionError(f"bulk download beside a stalled stream did not finish: {e!r}") from e
    mem1 = rss_all([gw.proc, agent, socks.proc])

    stop.set()
    rt.join(10)
    assert state["err"] is None, f"slow stream: {state['err']}"
    assert fast <= base / MIN_FRACTION, (
        f"bulk download beside a stalled stream took {fast:.2f}s vs {base:.2f}s alone "
        f"(< {MIN_FRACTION:.0%} of the baseline rate)")
    assert_rss_all_below(mem0, mem1)

    # the slow stream is still alive and in order: read 8 MiB more at full speed
    more = recv_exact(slow, 8 * 1024 * 1024, timeout=30)
    assert more == pattern_bytes(state["off"], len(more)), "slow stream corrupted after the bulk transfer"
    slow.close()
    print(f"download: alone {BULK / base / 1e6:.0f} MB/s, beside stalled stream {BULK / fast / 1e6:.0f} MB/s; "
          f"RSS {mem0} -> {mem1}")
