#!/usr/bin/python3
"""connections.py - mxgated holding 100,000 connections that said EHLO.

A fresh mxgated on 127.0.0.1 (no checks, a durable queue, an aiosmtpd sink
as the next hop). First a well-behaved client sends --probes messages one
after the other (connect, EHLO, MAIL, RCPT, DATA, 2 KiB, QUIT) on the idle
server: the time from connect to the 250 after the dot, median and 90th
percentile. Then --connections clients connect, each from its own address in
127.0.0.0/8 (127.1.1.1, 127.1.1.2, ...: no per-address limit is involved),
read the greeting, send EHLO, read the reply and stay idle. With all of them
held: mxgated's RSS (VmRSS) and the same probes again.

    /usr/bin/python3 bench/connections.py                      # 100,000, build/mxgated
    /usr/bin/python3 bench/connections.py --connections 10000 --mxgated OTHER/mxgated

Run as root: the descriptor limit (RLIMIT_NOFILE, hard and soft) is raised
for this process and inherited by mxgated, which takes its soft limit up to
the hard one itself. Targets (issue 17): RSS <= 300 MiB; the probe's median
with the connections held within 2x of the idle server's. Exit status 1 when
a connection failed or a target is missed.
"""
import argparse
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller

MESSAGE = b"Subject: probe\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid: int, field: str) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def write_config(d: Path, port: int, sink: int, n: int) -> Path:
    conf = d / "mxgate.conf"
    conf.write_text(
        'hostname = "mx.bench.test"\n'
        'spool_dir = "%s/spool"\nstate_dir = "%s/state"\n'
        'log_level = "info"\n'
        'domains = {"example.test"}\n'
        'listen mx { address = "127.0.0.1:%d" }\n'
        'route "example.test" { to = "smtp:[127.0.0.1]:%d" }\n'
        "limits { max_connections = %d  max_connections_per_ip = 100 }\n"
        "timeouts { command = 3600  session = 7200 }\n"
        "delivery { starttls = false }\n" % (d, d, port, sink, n + 100))
    return conf


def soft_1024() -> None:
    """mxgated starts with the usual soft limit and raises it itself (core/fdlimit.c)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


def start_daemon(binary: str, conf: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        p = subprocess.Popen([binary, "-f", "-c", str(conf)], stdin=subprocess.DEVNULL,
                             stdout=f, stderr=f, cwd=str(conf.parent), preexec_fn=soft_1024)
    deadline = time.monotonic() + 15
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


def probe(port: int) -> float:
    """One message from 127.0.0.1; seconds from connect to the 250 after the dot, or -1."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")

            def reply() -> bytes:
                line = f.readline()
                while line[3:4] == b"-":
                    line = f.readline()
                return line

            if not reply().startswith(b"220"):
                return -1
            for cmd, want in ((b"EHLO probe.test", b"250"), (b"MAIL FROM:<a@probe.test>", b"250"),
                              (b"RCPT TO:<b@example.test>", b"250"), (b"DATA", b"354")):
                s.sendall(cmd + b"\r\n")
                if not reply().startswith(want):
                    return -1
            s.sendall(MESSAGE + b".\r\n")
            if not reply().startswith(b"250"):
                return -1
            took = time.monotonic() - t0
            s.sendall(b"QUIT\r\n")
            reply()
            return took
    except OSError:
        return -1


def probes(port: int, n: int) -> tuple:
    times = []
    for _ in range(n):
        times.append(probe(port))
        time.sleep(0.1)
    ok = sorted(t for t in times if t >= 0)
    if not ok:
        return -1, -1, n
    return statistics.median(ok), ok[min(len(ok) - 1, int(len(ok) * 0.9))], n - len(ok)


def source(i: int) -> str:
    """The i-th client address: 127.1.1.1, 127.1.1.2, ... (no .0, no .255)."""
    return "127.%d.%d.%d" % (1 + i // 62500, 1 + (i // 250) % 250, 1 + i % 250)


def connect_range(port: int, lo: int, hi: int, pid: int, window: int = 1000) -> tuple:
    """clients lo..hi-1 that said EHLO and got its reply; (sockets, failures, seconds)."""
    sel = selectors.EpollSelector()
    buf = {}
    n = hi - lo
    done, failed, started, pending = [], 0, lo, 0
    t0 = time.monotonic()
    last = t0
    while len(done) + failed < n:
        while started < hi and pending < window:
            s = socket.socket()
            s.setblocking(False)
            s.bind((source(started), 0))
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            buf[s] = b""
            sel.register(s, selectors.EVENT_READ, 0)  # 0: waiting for the greeting
            started += 1
            pending += 1
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                failed += 1
                pending -= 1
                continue
            buf[s] += data
            if not buf[s].endswith(b"\r\n") or buf[s].split(b"\r\n")[-2][3:4] == b"-":
                continue
            if key.data == 0 and buf[s].startswith(b"220"):
                buf[s] = b""
                s.send(b"EHLO idle%d.test\r\n" % started)
                sel.modify(s, selectors.EVENT_READ, 1)
            elif key.data == 1 and buf[s].startswith(b"250"):
                sel.unregister(s)
                del buf[s]
                done.append(s)
                pending -= 1
            else:
                sel.unregister(s)
                s.close()
                failed += 1
                pending -= 1
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            print("  [%d..%d) %6d connected, %d failed, %.0f s, mxgated RSS %.1f MiB"
                  % (lo, hi, len(done), failed, last - t0, status_kib(pid, "VmRSS") / 1024),
                  flush=True)
    return done, failed, time.monotonic() - t0


def holder(port: int, lo: int, hi: int, pid: int, conn) -> None:
    """A client process: open its share, report, hold it until told to close."""
    socks, failed, secs = connect_range(port, lo, hi, pid)
    conn.send((len(socks), failed, secs))
    conn.recv()
    for s in socks:
        s.close()


def connect_all(port: int, n: int, pid: int, per_process: int) -> tuple:
    """n held connections in processes of per_process each (the descriptor limit of
    one process); (processes with their pipes, connected, failed, seconds)."""
    t0 = time.monotonic()
    procs = []
    for lo in range(0, n, per_process):
        a, b = multiprocessing.Pipe()
        pr = multiprocessing.Process(target=holder, args=(port, lo, min(n, lo + per_process),
                                                          pid, b), daemon=True)
        pr.start()
        procs.append((pr, a))
    ok = failed = 0
    for _, a in procs:
        k, f, _ = a.recv()
        ok += k
        failed += f
    return procs, ok, failed, time.monotonic() - t0


def release(procs: list) -> None:
    for pr, a in procs:
        try:
            a.send("close")
        except OSError:
            pass
    for pr, _ in procs:
        pr.join(30)
        if pr.is_alive():
            pr.kill()


def run(a) -> int:
    d = Path(tempfile.mkdtemp(prefix="mxgate-conns-"))
    port, sinkport = free_port(), free_port()
    sink = Controller(Sink(), hostname="127.0.0.1", port=sinkport)
    sink.start()
    p = None
    procs = []
    try:
        p = start_daemon(a.mxgated, write_config(d, port, sinkport, a.connections), port,
                         d / "mxgated.log")
        time.sleep(1)
        for line in (d / "mxgated.log").read_text().splitlines():
            if "event=fd_limit" in line:
                print(line)
        rss0 = status_kib(p.pid, "VmRSS")
        idle_med, idle_p90, idle_fail = probes(port, a.probes)
        print("idle server: probe median %.1f ms, p90 %.1f ms, RSS %.1f MiB"
              % (idle_med * 1000, idle_p90 * 1000, rss0 / 1024), flush=True)
        procs, held, failed, secs = connect_all(port, a.connections, p.pid, a.per_process)
        time.sleep(3)
        rss = status_kib(p.pid, "VmRSS")
        held_med, held_p90, held_fail = probes(port, a.probes)
        rss_after = status_kib(p.pid, "VmRSS")
        hwm = status_kib(p.pid, "VmHWM")
        per = (rss - rss0) * 1024.0 / max(1, held)
        print()
        print("binary                 %s" % a.mxgated)
        print("connections held       %d (%d failed), opened in %.1f s (%.0f/s)"
              % (held, failed, secs, held / secs))
        print("RSS no clients         %7.1f MiB" % (rss0 / 1024))
        print("RSS with connections   %7.1f MiB  (%.0f octets per connection; peak %.1f MiB)"
              % (max(rss, rss_after) / 1024, per, hwm / 1024))
        print("probe idle server      median %6.1f ms  p90 %6.1f ms  (%d failed of %d)"
              % (idle_med * 1000, idle_p90 * 1000, idle_fail, a.probes))
        print("probe with connections median %6.1f ms  p90 %6.1f ms  (%d failed of %d)"
              % (held_med * 1000, held_p90 * 1000, held_fail, a.probes))
        ok_rss = max(rss, rss_after) <= 300 * 1024
        ok_lat = held_med > 0 and idle_med > 0 and held_med <= 2 * idle_med
        print("target RSS <= 300 MiB           %s" % ("PASS" if ok_rss else "FAIL"))
        print("target probe within 2x of idle  %s (%.2fx)"
              % ("PASS" if ok_lat else "FAIL", held_med / idle_med if idle_med > 0 else -1))
        return 0 if ok_rss and ok_lat and not failed and not held_fail else 1
    finally:
        release(procs)
        if p is not None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        sink.stop()
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mxgated", default=os.environ.get("MXGATED", str(root / "build/mxgated")))
    ap.add_argument("--connections", type=int, default=100000)
    ap.add_argument("--probes", type=int, default=30)
    ap.add_argument("--per-process", type=int, default=15000,
                    help="connections per client process (default 15000)")
    a = ap.parse_args()
    want = max(a.connections, a.per_process) + 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError) as e:
            # A container without CAP_SYS_RESOURCE: mxgated cannot hold more either.
            print("warning: RLIMIT_NOFILE stays at %d (%s): mxgated holds fewer than %d"
                  % (hard, e, a.connections), flush=True)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    elif soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    sys.exit(run(a))


if __name__ == "__main__":
    main()
