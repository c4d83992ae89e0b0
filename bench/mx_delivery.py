#!/usr/bin/python3
"""mx_delivery.py - outbound delivery through MX lookup, messages per second.

A small Internet on loopback: NSD (tests/integration/dnsserver.py) serves
DOMAINS destination domains d0.bench.test ... , each with two MX records of
equal preference among SINKS hosts 127.0.0.40 ...; Postfix's smtp-sink
listens on every one of them (one port for all). mxgated first accepts
MESSAGES messages (one recipient each, the domains in turn) while its "*"
route points at a closed port, so that they wait in the queue; it is then
restarted with route "*" { to = "mx:PORT" } and the clock runs from its start
until the log holds MESSAGES event=delivered lines: MX and address lookups on
c-ares, the flow control of each destination (default concurrency 20) and
the connection cache, at the queue's max_deliveries (100).

    /usr/bin/python3 bench/mx_delivery.py [--messages 3000] [--domains 50] [--sinks 4] [--runs 3]
"""
import argparse
import os
import re
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from dnsserver import DNSServer, free_port  # noqa: E402

MXGATED = os.environ.get("MXGATED", os.path.join(ROOT, "build", "mxgated"))
SMTP_SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin") or "smtp-sink"


def zones(ndom, nsink):
    recs = []
    for j in range(nsink):
        recs.append("mx%d A 127.0.0.%d" % (j, 40 + j))
    for i in range(ndom):
        recs.append("d%d MX 10 mx%d.bench.test." % (i, i % nsink))
        recs.append("d%d MX 10 mx%d.bench.test." % (i, (i + 1) % nsink))
    return {"bench.test": recs}


def config(d, port, sink_port, route, dns):
    return """hostname = "mx.bench.test"
spool_dir = "%(d)s/spool"
state_dir = "%(d)s/state"
domains = {"example.test"}
relay_networks = {"127.0.0.0/8"}
listen mx { address = "127.0.0.1:%(port)d" }
route "example.test" { to = "smtp:[127.0.0.1]:%(sink)d" }
route "*" { to = "%(route)s" }
queue { retry_min = 3600  retry_max = 3600 }
dns { servers = {"%(dns)s"}  timeout = 2  tries = 2 }
""" % {"d": d, "port": port, "sink": sink_port, "route": route, "dns": dns}


def start(d, text, port):
    with open(os.path.join(d, "mxgate.conf"), "w") as f:
        f.write(text)
    log = open(os.path.join(d, "mxgated.log"), "ab")
    p = subprocess.Popen([MXGATED, "-f", "-c", os.path.join(d, "mxgate.conf")],
                         stdout=log, stderr=log, cwd=d)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
            return p
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mxgated did not start; see %s" % d)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)


def delivered(d):
    with open(os.path.join(d, "mxgated.log"), errors="replace") as f:
        return len(re.findall(r"event=delivered ", f.read()))


def one_run(args, dns, sink_port):
    d = tempfile.mkdtemp(prefix="mxbench.")
    port = free_port()
    dead = free_port()
    p = start(d, config(d, port, dead, "smtp:[127.0.0.1]:%d" % dead, dns.address), port)
    msg = b"Subject: bench\r\n\r\n" + (b"x" * 70 + b"\r\n") * 14
    sent = 0
    while sent < args.messages:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            for _ in range(min(100, args.messages - sent)):
                s.sendmail("bench@example.test", ["u%d@d%d.bench.test" % (sent, sent % args.domains)],
                           msg)
                sent += 1
    stop(p)
    os.rename(os.path.join(d, "mxgated.log"), os.path.join(d, "accept.log"))
    t0 = time.monotonic()
    p = start(d, config(d, port, dead, "mx:%d" % sink_port, dns.address), port)
    deadline = t0 + 600
    while delivered(d) < args.messages and time.monotonic() < deadline:
        time.sleep(0.02)
    t = time.monotonic() - t0
    n = delivered(d)
    stop(p)
    if n < args.messages:
        raise RuntimeError("only %d of %d delivered; see %s" % (n, args.messages, d))
    shutil.rmtree(d)
    return args.messages / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--sinks", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    dns = DNSServer(zones(args.domains, args.sinks)).start()
    sink_port = free_port()
    root = ["-u", "nobody"] if os.geteuid() == 0 else []  # smtp-sink refuses root otherwise
    sinks = [subprocess.Popen([SMTP_SINK, *root, "127.0.0.%d:%d" % (40 + j, sink_port), "256"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for j in range(args.sinks)]
    time.sleep(0.5)
    try:
        rates = []
        for r in range(args.runs):
            rates.append(one_run(args, dns, sink_port))
            print("run %d: %.0f messages/s" % (r + 1, rates[-1]), flush=True)
        print("median: %.0f messages/s delivered (%d messages, %d domains, %d MX hosts)"
              % (statistics.median(rates), args.messages, args.domains, args.sinks))
    finally:
        for s in sinks:
            s.terminate()
        dns.stop()


if __name__ == "__main__":
    main()
