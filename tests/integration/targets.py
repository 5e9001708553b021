"""Real target servers for the nl integration tests, each a threaded TCP server on
127.0.0.1:0: echo, a hash server that answers only after the client's half-close, a
banner server, a source that streams a deterministic pattern, a slow reader, and an
HTTP server with deterministic bodies. The fixtures in conftest.py start and stop them.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import socketserver
import struct
import threading

from nltest import PATTERN, pattern_bytes, recv_exact

# ----------------------------------------------------------------------------------------
# target servers


class _Server:
    """Threaded TCP server on 127.0.0.1:0; subclasses implement handle(conn)."""

    def __init__(self, name: str):
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0
        self.errors: list[str] = []
        self._t = threading.Thread(target=self._accept_loop, name=f"srv-{name}", daemon=True)
        self._t.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.add(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c: socket.socket):
        try:
            self.handle(c)
        except (OSError, ValueError) as e:
            if not self._stop.is_set():
                self.errors.append(repr(e))
        finally:
            with self._lock:
                self._conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def handle(self, c: socket.socket):
        raise NotImplementedError

    def close(self):
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class EchoServer(_Server):
    """Echoes everything; on EOF from the peer shuts down its write side after echoing."""

    def __init__(self):
        super().__init__("echo")

    def handle(self, c):
        buf = bytearray(256 * 1024)
        mv = memoryview(buf)
        while True:
            n = c.recv_into(buf)
            if n == 0:
                c.shutdown(socket.SHUT_WR)
                return
            c.sendall(mv[:n])


class HashServer(_Server):
    """Half-close server: reads until EOF, then replies `<sha256hex> <length>\\n` and closes."""

    def __init__(self):
        super().__init__("hash")
        self.results: list[tuple[str, int]] = []

    def handle(self, c):
        h = hashlib.sha256()
        n = 0
        buf = bytearray(256 * 1024)
        while True:
            k = c.recv_into(buf)
            if k == 0:
                break
            h.update(memoryview(buf)[:k])
            n += k
        self.results.append((h.hexdigest(), n))
        c.sendall(f"{h.hexdigest()} {n}\n".encode())


class BannerServer(_Server):
    """Sends a banner, half-closes (SHUT_WR) at once, then reads the peer until EOF and
    records sha256/length of what arrived (to check the client->target direction keeps
    working after the target half-closed)."""

    BANNER = b"banner-then-half-close\n"

    def __init__(self):
        super().__init__("banner")
        self.results: list[tuple[str, int]] = []
        self.done = threading.Event()

    def handle(self, c):
        c.sendall(self.BANNER)
        c.shutdown(socket.SHUT_WR)
        h = hashlib.sha256()
        n = 0
        while True:
            b = c.recv(256 * 1024)
            if not b:
                break
            h.update(b)
            n += len(b)
        self.results.append((h.hexdigest(), n))
        self.done.set()


class SourceServer(_Server):
    """Sends the deterministic PATTERN stream. The client first sends an 8-byte big-endian
    length (0 = endless), the server sends that many bytes and closes."""

    def __init__(self):
        super().__init__("source")

    def handle(self, c):
        hdr = recv_exact(c, 8, timeout=30)
        (n,) = struct.unpack(">Q", hdr)
        endless = n == 0
        off = 0
        L = len(PATTERN)
        mv = memoryview(PATTERN + PATTERN)
        while endless or off < n:
            o = off % L
            k = L if endless else min(L, n - off)
            c.sendall(mv[o:o + k])
            off += k
        c.shutdown(socket.SHUT_WR)
        # wait for the peer to close so the last bytes are not lost to an RST
        c.settimeout(30)
        while c.recv(65536):
            pass


class SlowSink(_Server):
    """Reads 1 KiB every 100 ms (configurable) until `fast` is set, then drains at full
    speed until EOF and records sha256/length of everything it got."""

    def __init__(self, chunk: int = 1024, interval: float = 0.1):
        super().__init__("slowsink")
        self.chunk = chunk
        self.interval = interval
        self.fast = threading.Event()
        self.received = 0
        self.results: list[tuple[str, int]] = []
        self.done = threading.Event()

    def handle(self, c):
        # (no small SO_RCVBUF here: it would also cripple the fast drain at the end)
        h = hashlib.sha256()
        while True:
            if self.fast.is_set():
                b = c.recv(1 << 20)
            else:
                # wake up early when switched to fast mode
                self.fast.wait(self.interval)
                b = c.recv(self.chunk)
            if not b:
                break
            h.update(b)
            self.received += len(b)
        self.results.append((h.hexdigest(), self.received))
        self.done.set()


class HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    PAGE = b"<html><body><h1>Hello from behind the agent</h1></body></html>\n"

    def log_message(self, *a):  # keep test output quiet
        pass

    def do_GET(self):
        m = re.fullmatch(r"/bytes/(\d+)", self.path)
        if m:
            n = int(m.group(1))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            off = 0
            while off < n:
                k = min(1 << 20, n - off)
                self.wfile.write(pattern_bytes(off, k))
                off += k
            return
        body = self.PAGE
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HttpServer:
    """HTTP/1.1 server: `/` -> a small page, `/bytes/N` -> N bytes of PATTERN."""

    def __init__(self):
        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

        self.httpd = S(("127.0.0.1", 0), HttpHandler)
        self.port = self.httpd.server_address[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self._t = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._t.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
