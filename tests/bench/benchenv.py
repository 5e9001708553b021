"""Shared set-up of the nl benchmark scripts (transport_bench.py, rtt_bench.py): a throwaway
self-signed certificate, the integration tests' NL process helper in a temporary directory,
and the shared harness' target server (../shared/bench/bench.py server: 'D' = endless zeros,
anything else = echo). Everything is stopped and removed on exit."""
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import NL  # noqa: E402
from nltest import free_port, wait_until  # noqa: E402

HARNESS = ROOT.parent / "shared" / "bench" / "bench.py"


def wait_port(port: int, what: str, timeout: float = 10):
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, timeout, what)


@contextmanager
def bench_env(prefix: str):
    """Yields (nl, target_port)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp = Path(tmp)
        (tmp / "pki").mkdir()
        cert, key = tmp / "pki" / "gw.crt", tmp / "pki" / "gw.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        (tmp / "run").mkdir()
        nl = NL(tmp / "run", (cert, key))
        port = free_port()
        target = subprocess.Popen([sys.executable, str(HARNESS), "server", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, "bench target")
            yield nl, port
        finally:
            target.kill()
            target.wait(5)
            nl.cleanup()
