"""Helpers for the nl integration tests: process control with log capture, a minimal
SOCKS5 / HTTP CONNECT client, token re-signing, and small waiting utilities. The target
servers (echo, HTTP, slow reader, half-close hash server) are in targets.py.

Rules these helpers follow (see STYLE.md): nothing waits with a blind sleep for a condition;
every wait polls the condition with a deadline and fails with evidence (log tail) when the
deadline passes. Every process and server started here is stopped by the fixtures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

# ----------------------------------------------------------------------------------------
# waiting


class Timeout(AssertionError):
    pass


def wait_until(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Polls cond() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - a failing probe just means "not yet"
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise Timeout(f"timed out after {timeout:.1f}s waiting for {what}{extra}")
        time.sleep(interval)


def free_port() -> int:
    """A port that was free a moment ago (bind 0, read, close). Only for programs that
    cannot listen on port 0 themselves (sshd) or for a fixed port that must be reused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# Set by CMake for -DNL_SANITIZE=ON builds. AddressSanitizer keeps freed memory in a
# quarantine (256 MiB by default) and adds shadow pages, so RSS says nothing about nl there.
SANITIZED = os.environ.get("NL_SANITIZED") == "1"


def assert_rss_growth_below(grown_kib: int, limit_kib: int, what: str) -> None:
    """Memory bound on a process's RSS growth; reported but not judged under the sanitizers."""
    if SANITIZED:
        print(f"(sanitized build, not judged) {what}")
        return
    assert grown_kib < limit_kib, what


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pattern_block(seed: int = 1, size: int = 1 << 20) -> bytes:
    return random.Random(seed).randbytes(size)


PATTERN = pattern_block()


def pattern_bytes(offset: int, n: int) -> bytes:
    """n bytes of the endless deterministic stream PATTERN[...] repeated, from offset."""
    out = bytearray()
    L = len(PATTERN)
    while n > 0:
        o = offset % L
        k = min(n, L - o)
        out += PATTERN[o:o + k]
        n -= k
        offset += k
    return bytes(out)


def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    L = len(PATTERN)
    full, rest = divmod(n, L)
    for _ in range(full):
        h.update(PATTERN)
    h.update(PATTERN[:rest])
    return h.hexdigest()


def recv_all(sock: socket.socket, limit: Optional[int] = None, timeout: float = 30) -> bytes:
    """Reads until EOF (or `limit` bytes) with an overall deadline."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while limit is None or len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"recv_all: no EOF after {timeout}s ({len(buf)} bytes so far)")
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20 if limit is None else min(1 << 20, limit - len(buf)))
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_exact(sock: socket.socket, n: int, timeout: float = 30) -> bytes:
    data = recv_all(sock, limit=n, timeout=timeout)
    if len(data) != n:
        raise AssertionError(f"expected {n} bytes, got {len(data)} before EOF")
    return data


# ----------------------------------------------------------------------------------------
# processes

LOG_TS = r"^\S+ (?P<prog>nl-\w+) (?P<level>\w+): "


class Proc:
    """One started program. stderr is read by a thread into `lines` and written to a log
    file; wait_line() polls those lines with a deadline."""

    def __init__(self, argv: list[str], name: str, log_dir: Path, env: dict, cwd: Path,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, term_timeout: float = 5.0):
        self.argv = [str(a) for a in argv]
        self.name = name
        self.term_timeout = term_timeout
        self.log_path = log_dir / f"{name}.log"
        n = 1
        while self.log_path.exists():
            n += 1
            self.log_path = log_dir / f"{name}.{n}.log"
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.started_at = time.monotonic()
        self.exited_at: Optional[float] = None
        self.killed_by_cleanup = False
        self._log = open(self.log_path, "w", buffering=1)
        self._log.write("# " + " ".join(self.argv) + "\n")
        self.popen = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                                      env=env, cwd=str(cwd), start_new_session=True)
        self.pid = self.popen.pid
        self._reader = threading.Thread(target=self._read, name=f"stderr-{name}", daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.popen.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.write(line + "\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self._log.flush()

    # -- observation --------------------------------------------------------------------
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self.popen.poll()

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def tail(self, n: int = 25) -> str:
        with self._cond:
            return "\n".join(self.lines[-n:])

    def count(self, regex: str) -> int:
        r = re.compile(regex)
        with self._cond:
            return sum(1 for l in self.lines if r.search(l))

    def wait_line(self, regex: str, timeout: float = 15.0, after: int = 0, nth: int = 1) -> re.Match:
        """Waits until the nth line (from line index `after`) matching regex appears.
        Fails early, with the log tail, when the process ends without printing it."""
        r = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = 0
                for line in self.lines[after:]:
                    m = r.search(line)
                    if m:
                        seen += 1
                        if seen == nth:
                            return m
                if self._eof:
                    self.popen.wait(timeout=5)
                    raise AssertionError(
                        f"{self.name} exited (code {self.popen.returncode}) without printing /{regex}/"
                        f"{' #'+str(nth) if nth > 1 else ''}; log {self.log_path}:\n{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(f"{self.name}: no line /{regex}/{' #'+str(nth) if nth > 1 else ''} "
                                  f"within {timeout}s; log {self.log_path}:\n{self.tail()}")
                self._cond.wait(min(left, 0.2))

    def mark(self) -> int:
        """Index to pass as `after=` to wait only for lines printed from now on."""
        with self._cond:
            return len(self.lines)

    def wait_exit(self, timeout: float) -> int:
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"{self.name} (pid {self.pid}) still running {timeout}s later; log tail:\n{self.tail()}")
        self._reader.join(timeout=5)
        if self.exited_at is None:
            self.exited_at = time.monotonic()
        return rc

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    # -- control ------------------------------------------------------------------------
    def signal(self, sig: int):
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._reader.join(timeout=5)

    def stop(self) -> Optional[str]:
        """SIGTERM, wait term_timeout, then SIGKILL. Returns a complaint when SIGKILL was needed."""
        complaint = None
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=self.term_timeout)
            except subprocess.TimeoutExpired:
                complaint = (f"{self.name} (pid {self.pid}) ignored SIGTERM for {self.term_timeout}s; "
                             f"killed. log tail:\n{self.tail(10)}")
                self.killed_by_cleanup = True
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._reader.join(timeout=5)
        for f in (self.popen.stdin, self.popen.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        try:
            self._log.close()
        except OSError:
            pass
        return complaint


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not "left behind" as a running program, but report it anyway
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------------------
# SOCKS5 / HTTP CONNECT client

SOCKS_REPLIES = {
    0x00: "succeeded", 0x01: "general failure", 0x02: "not allowed by ruleset",
    0x03: "network unreachable", 0x04: "host unreachable", 0x05: "connection refused",
    0x06: "TTL expired", 0x07: "command not supported", 0x08: "address type not supported",
}


class SocksError(Exception):
    def __init__(self, stage: str, code: int, msg: str = ""):
        super().__init__(f"SOCKS5 {stage}: 0x{code:02x} {SOCKS_REPLIES.get(code, '') if stage == 'reply' else ''} {msg}".strip())
        self.stage = stage
        self.code = code


def _addr_bytes(host: str) -> bytes:
    try:
        return b"\x01" + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        pass
    try:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        pass
    h = host.encode()
    return b"\x03" + bytes([len(h)]) + h


def socks5_open(proxy_port: int, host: str, port: int, user: Optional[str] = None,
                password: Optional[str] = None, methods: Optional[Iterable[int]] = None,
                timeout: float = 15) -> socket.socket:
    """SOCKS5 CONNECT through 127.0.0.1:proxy_port. Returns the connected socket or raises
    SocksError(stage, code) with stage 'method' (server chose 0xFF), 'auth' (RFC 1929
    status) or 'reply' (REP field of the CONNECT reply). Timeout = overall bound."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if methods is None:
            methods = [0x02] if user is not None else [0x00]
        methods = list(methods)
        s.sendall(bytes([5, len(methods)] + methods))
        ver, method = recv_exact(s, 2, timeout)
        if ver != 5:
            raise SocksError("method", 0xFE, f"bad version {ver}")
        if method == 0xFF:
            raise SocksError("method", 0xFF, "no acceptable method")
        if method == 0x02:
            u = (user or "").encode()
            p = (password or "").encode()
            s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
            _, status = recv_exact(s, 2, timeout)
            if status != 0:
                raise SocksError("auth", status)
        elif method != 0x00:
            raise SocksError("method", method, "unexpected method")
        s.sendall(b"\x05\x01\x00" + _addr_bytes(host) + struct.pack(">H", port))
        ver, rep, _rsv, atyp = recv_exact(s, 4, timeout)
        if atyp == 1:
            recv_exact(s, 4 + 2, timeout)
        elif atyp == 4:
            recv_exact(s, 16 + 2, timeout)
        elif atyp == 3:
            (ln,) = recv_exact(s, 1, timeout)
            recv_exact(s, ln + 2, timeout)
        if rep != 0:
            raise SocksError("reply", rep)
        s.settimeout(timeout)
        return s
    except BaseException:
        s.close()
        raise


def socks5_reply_code(proxy_port: int, host: str, port: int, timeout: float = 15, **kw) -> int:
    """REP code of a CONNECT attempt (0 on success; the socket is closed)."""
    try:
        s = socks5_open(proxy_port, host, port, timeout=timeout, **kw)
    except SocksError as e:
        if e.stage != "reply":
            raise
        return e.code
    s.close()
    return 0


def http_connect(proxy_port: int, target: str, auth: Optional[tuple[str, str]] = None,
                 timeout: float = 15, method: str = "CONNECT") -> tuple[int, dict, socket.socket]:
    """Sends `CONNECT target HTTP/1.1` to the proxy; returns (status, headers, socket).
    The socket is positioned after the response header (tunnel bytes follow)."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    req = f"{method} {target} HTTP/1.1\r\nHost: {target}\r\n"
    if auth:
        tok = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req += f"Proxy-Authorization: Basic {tok}\r\n"
    req += "\r\n"
    s.sendall(req.encode())
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        b = s.recv(1)  # byte by byte: do not swallow tunnel data
        if not b:
            break
        buf += b
    head = buf.decode("latin-1")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0] if lines else "")
    if not m:
        s.close()
        raise AssertionError(f"bad HTTP CONNECT response: {head!r}")
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    s.settimeout(timeout)
    return int(m.group(1)), headers, s


def echo_roundtrip(sock: socket.socket, data: bytes, timeout: float = 30) -> bytes:
    """Sends data (in a thread, so a full echo pipe cannot deadlock) and reads as many bytes back."""
    err = []

    def send():
        try:
            sock.sendall(data)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    got = recv_exact(sock, len(data), timeout=timeout)
    t.join(timeout)
    if err:
        raise err[0]
    return got


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict:
    return json.loads(_b64url_decode(token.strip().split(".")[1]))


def jwt_resign(token: str, secret_file: Path, **changes) -> str:
    """Returns `token` with its claims updated by `changes` and signed again with HS256
    (RFC 7515) under the gateway's secret file (base64url or base64 of the key). Used to
    make tokens `nl-gateway token` cannot issue, e.g. one that expired an hour ago.
    Tests first check that an unchanged re-signed token is accepted."""
    header, payload, _ = token.strip().split(".")
    claims = json.loads(_b64url_decode(payload))
    claims.update(changes)
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    text = Path(secret_file).read_text().strip().rstrip("=")
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        key = base64.b64decode(text + "=" * (-len(text) % 4))
    sig = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"
