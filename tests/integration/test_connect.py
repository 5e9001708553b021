"""`nl-client connect`: one stream on stdin/stdout (echo, EOF both ways) and ssh ProxyCommand."""

import getpass
import hashlib
import os
import shlex
import subprocess
import threading
import time

import pytest

from conftest import have
from nltest import free_port, port_accepts, wait_until


@pytest.fixture
def trio(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    return gw


def test_connect_echo_stdin_stdout(nl, trio):
    echo = nl.echo_server()
    data = os.urandom(2 * 1024 * 1024)
    t0 = time.monotonic()
    r = nl.run(nl.connect_argv(trio, echo.addr), input=data, timeout=60)
    assert r.returncode == 0, f"connect exit {r.returncode}: {r.stderr_text}"
    assert len(r.stdout) == len(data), f"got {len(r.stdout)} of {len(data)} bytes back"
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest()
    assert time.monotonic() - t0 < 30


def test_connect_empty_stdin_exits(nl, trio):
    """stdin at EOF at once: the EOF reaches the echo server, which closes; connect exits 0."""
    echo = nl.echo_server()
    r = nl.run(nl.connect_argv(trio, echo.addr), input=b"", timeout=20)
    assert r.returncode == 0, f"connect exit {r.returncode}: {r.stderr_text}"
    assert r.stdout == b""


def test_connect_remote_eof_reaches_stdout(nl, trio):
    """The target sends a banner and half-closes: stdout sees EOF while stdin is still open,
    then what we send afterwards still reaches the target."""
    banner = nl.banner_server()
    p = nl.start(nl.connect_argv(trio, banner.addr), "client-connect",
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    got = bytearray()
    eof = threading.Event()

    def reader():
        while True:
            b = p.popen.stdout.read1(65536)
            if not b:
                break
            got.extend(b)
        eof.set()

    threading.Thread(target=reader, daemon=True).start()
    assert eof.wait(15), f"no EOF on stdout after the target half-closed; got {bytes(got)!r}\n{p.tail()}"
    assert bytes(got) == banner.BANNER
    assert p.alive(), "connect exited although its stdin was still open (half-close not respected)"
    tail = os.urandom(300_000)
    p.popen.stdin.write(tail)
    p.popen.stdin.close()
    assert banner.done.wait(15), "target never saw EOF after stdin was closed"
    assert banner.results[-1] == (hashlib.sha256(tail).hexdigest(), len(tail))
    assert p.wait_exit(15) == 0


def _sshd_available() -> str:
    if not (have("ssh") and os.path.exists("/usr/sbin/sshd") and have("ssh-keygen")):
        return "openssh-server/openssh-client not installed"
    if os.geteuid() != 0 and not os.access("/run/sshd", os.F_OK):
        return "not root and /run/sshd missing"
    return ""


def test_ssh_proxycommand(nl, trio):
    why = _sshd_available()
    if why:
        pytest.skip(why)
    d = nl.tmp / "ssh"
    d.mkdir()
    for k in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / k)], check=True, timeout=30)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    for f in ("host", "user", "authorized_keys"):
        (d / f).chmod(0o600)
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege-separation dir any sshd needs
    port = free_port()  # sshd cannot listen on port 0
    (d / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host
PidFile none
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
UseDNS no
LogLevel INFO
""")
    sshd = nl.start(["/usr/sbin/sshd", "-D", "-e", "-f", d / "sshd_config"], "sshd")
    sshd.wait_line(rf"Server listening on 127\.0\.0\.1 port {port}", timeout=15)
    wait_until(lambda: port_accepts(port), 10, f"sshd on port {port}")

    proxy = " ".join(shlex.quote(str(a)) for a in nl.connect_argv(trio, "%h:%p"))
    ssh = ["ssh", "-F", "none", "-i", str(d / "user"), "-p", str(port),
           "-o", f"ProxyCommand={proxy}", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
           "-o", "LogLevel=ERROR", f"{getpass.getuser()}@127.0.0.1"]
    r = nl.run(ssh + ["echo nl-ssh-ok"], timeout=60)
    assert r.returncode == 0, f"ssh via ProxyCommand failed ({r.returncode}): {r.stderr_text}"
    assert r.stdout_text.strip() == "nl-ssh-ok"
    # a few MiB through the ssh session both ways
    data = os.urandom(4 * 1024 * 1024)
    r = nl.run(ssh + ["sha256sum"], input=data, timeout=60)
    assert r.returncode == 0, r.stderr_text
    assert r.stdout_text.split()[0] == hashlib.sha256(data).hexdigest()
