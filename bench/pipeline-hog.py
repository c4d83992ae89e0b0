#!/usr/bin/python3
"""pipeline-hog.py - mxgated's memory when clients pipeline commands and never read.

N clients (default 1000) connect to a fresh mxgated on 127.0.0.1, each sends
one EHLO and goes idle: the daemon's RSS then is the "idle" figure. Then
every client pipelines "EHLO hog.test" lines (about 15 octets in, about 190
octets of reply out) as fast as its socket takes them, for --seconds, and
never reads a reply. The daemon's RSS is sampled every second; the figure
that counts is the highest sample against the idle one. Meanwhile a normal
client does EHLO/MAIL/RCPT/RSET/QUIT once a second, to show it is served.

    /usr/bin/python3 bench/pipeline-hog.py                     # build/mxgated
    /usr/bin/python3 bench/pipeline-hog.py --mxgated OTHER/mxgated --clients 1000

Run as root (the file descriptor limit is raised to fit the clients).
Everything lives in a temporary directory, removed at exit with the daemon.
"""
import argparse
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOG_LINE = b"EHLO hog.test\r\n"
CHUNK = HOG_LINE * 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """VmRSS of pid in KiB."""
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def write_config(d: Path, port: int, clients: int) -> Path:
    conf = d / "mxgate.conf"
    conf.write_text(
        'hostname = "mx.bench.test"\n'
        'spool_dir = "%s/spool"\n'
        'state_dir = "%s/state"\n'
        'log_level = "info"\n'
        'domains = {"example.test"}\n'
        'listen mx { address = "127.0.0.1:%d" }\n'
        'route "example.test" { to = "smtp:[127.0.0.1]:9" }\n'
        # every client from 127.0.0.1; no command limit, so that no hog is cut off early
        "limits { max_connections = %d max_connections_per_ip = %d max_commands = 100000000 }\n"
        "timeouts { command = 600 }\n" % (d, d, port, clients + 50, clients + 50))
    return conf


def start_daemon(binary: str, conf: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        p = subprocess.Popen([binary, "-f", "-c", str(conf)], stdin=subprocess.DEVNULL,
                             stdout=f, stderr=f, cwd=str(conf.parent))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if p.poll() is not None:
            sys.exit("mxgated exited at start:\n" + log.read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(512)
                s.sendall(b"QUIT\r\n")
                while s.recv(512):
                    pass
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("mxgated not accepting on port %d" % port)


def connect_all(port: int, n: int) -> list:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append(s)
        if i % 100 == 99:
            time.sleep(0.05)  # the listen backlog is 511
    for s in socks:
        s.send(b"EHLO idle.test\r\n")
    return socks


def probe(port: int) -> float:
    """One normal session; its duration in seconds, or -1 when it failed."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")

            def reply() -> bytes:
                line = f.readline()
                while line[3:4] == b"-":
                    line = f.readline()
                return line

            if not reply().startswith(b"220"):
                return -1
            for cmd, want in ((b"EHLO probe.test", b"250"), (b"MAIL FROM:<a@probe.test>", b"250"),
                              (b"RCPT TO:<b@example.test>", b"250"), (b"RSET", b"250"),
                              (b"QUIT", b"221")):
                s.sendall(cmd + b"\r\n")
                if not reply().startswith(want):
                    return -1
    except OSError:
        return -1
    return time.monotonic() - t0


def hog(pid: int, port: int, socks: list, seconds: float) -> tuple:
    """Pipeline into every socket for seconds; (peak RSS KiB, bytes sent, probe times)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    sent, peak, probes = 0, 0, []
    end = time.monotonic() + seconds
    next_sample = time.monotonic()
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            try:
                sent += key.fileobj.send(CHUNK)
            except BlockingIOError:
                pass
            except OSError:
                sel.unregister(key.fileobj)  # the daemon closed it
        if time.monotonic() >= next_sample:
            peak = max(peak, rss_kib(pid))
            probes.append(probe(port))
            next_sample = time.monotonic() + 1
    peak = max(peak, rss_kib(pid))
    return peak, sent, probes, len(sel.get_map())


def run(binary: str, clients: int, seconds: float) -> None:
    d = Path(tempfile.mkdtemp(prefix="mxgate-hog-"))
    port = free_port()
    p = None
    socks = []
    try:
        p = start_daemon(binary, write_config(d, port, clients), port, d / "mxgated.log")
        time.sleep(1)
        base = rss_kib(p.pid)
        socks = connect_all(port, clients)
        time.sleep(3)
        idle = rss_kib(p.pid)
        peak, sent, probes, alive = hog(p.pid, port, socks, seconds)
        ok = [t for t in probes if t >= 0]
        print("binary         %s" % binary)
        print("clients        %d pipelining for %.0f s, %d still connected at the end"
              % (clients, seconds, alive))
        print("sent           %.1f MiB of EHLO lines, no reply read" % (sent / 1048576))
        print("RSS no clients %7.1f MiB" % (base / 1024))
        print("RSS idle       %7.1f MiB  (%d clients after one EHLO each)" % (idle / 1024, clients))
        print("RSS hog peak   %7.1f MiB  (+%.1f MiB over idle, %.1f KiB per client)"
              % (peak / 1024, (peak - idle) / 1024, (peak - idle) / clients))
        print("normal client  %d/%d sessions served meanwhile, slowest %.3f s"
              % (len(ok), len(probes), max(ok) if ok else -1))
    finally:
        for s in socks:
            s.close()
        if p is not None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mxgated", default=os.environ.get("MXGATED", str(root / "build/mxgated")))
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    want = a.clients * 2 + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    run(a.mxgated, a.clients, a.seconds)


if __name__ == "__main__":
    main()
