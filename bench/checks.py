#!/usr/bin/python3
"""checks.py - what the connection checks cost.

Runs the same smtp-source load through mxgated twice, interleaved, against a
real DNS server (NSD, from tests/integration/dnsserver.py) on loopback:
once with no checks, once with access, dnsbl (two zones), s25r, greylist
(only_suspicious, so the forward-confirmed client is not delayed) and
ratelimit (limits high enough not to bite). Prints accepted messages per
second and mxgated's CPU time per connection for each, as medians.

    /usr/bin/python3 bench/checks.py [--messages 5000] [--sessions 20] [--runs 3]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from dnsserver import DNSServer, free_port  # noqa: E402

ZONES = {
    "good.test": ["mail A 127.0.0.1"],
    "0.0.127.in-addr.arpa": ["1 PTR mail.good.test."],
    "bl.test": ["99.0.0.127 A 127.0.0.2"],
    "wl.test": ["98.0.0.127 A 127.0.0.2"],
}

CHECKS = """
dns { servers = {"%(dns)s"}  timeout = 2  tries = 1 }
s25r { action = "greylist" }
dnsbl { threshold = 1  zone "bl.test" { weight = 1 }  zone "wl.test" { weight = -1 } }
greylist { delay = 300  only_suspicious = true }
ratelimit { interval = 60  connections = 1000000  messages = 1000000  recipients = 1000000 }
"""


def config(work, port, sink, dns, checks):
    text = """hostname = "mx.example.test"
spool_dir = "%(w)s/spool"
state_dir = "%(w)s/state"
domains = {"example.test"}
listen mx { address = "127.0.0.1:%(p)d" %(c)s }
route "example.test" { to = "smtp:[127.0.0.1]:%(s)d" }
limits { max_connections_per_ip = 1000 }
delivery { starttls = false }
""" % {"w": work, "p": port, "s": sink,
       "c": 'checks = {"access", "dnsbl", "s25r", "greylist", "ratelimit"}' if checks else ""}
    if checks:
        text += CHECKS % {"dns": dns}
    path = os.path.join(work, "mxgate.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(mxgated, dns, checks, messages, sessions):
    work = tempfile.mkdtemp(prefix="mxgate-checks.")
    port, sink = free_port(), free_port()
    sink_cmd = ["smtp-sink"] + (["-u", "root"] if os.geteuid() == 0 else []) + \
        ["127.0.0.1:%d" % sink, "1000"]
    sinkp = subprocess.Popen(sink_cmd)
    log = open(os.path.join(work, "mxgated.log"), "w")
    gw = subprocess.Popen([mxgated, "-f", "-c", config(work, port, sink, dns, checks)],
                          stderr=log)
    try:
        for _ in range(100):
            if "event=ready" in open(log.name).read():
                break
            time.sleep(0.05)
        c0, t0 = cpu_seconds(gw.pid), time.monotonic()
        # smtp-source makes one connection per message: the checks are paid each time
        subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(messages), "-l",
                        "2048", "-t", "user@example.test", "127.0.0.1:%d" % port],
                       check=False, stdout=subprocess.DEVNULL)
        t1, c1 = time.monotonic(), cpu_seconds(gw.pid)
        text = open(log.name).read()
        queued = text.count("event=queued")
        if queued != messages:
            print(text[-3000:])
            raise SystemExit("only %d of %d messages accepted:\n%s" % (queued, messages,
                                                                       text[-2000:]))
        return messages / (t1 - t0), (c1 - c0) / messages * 1e6
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(10)
        sinkp.kill()
        sinkp.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mxgated", default=os.path.join(ROOT, "build", "mxgated"))
    a = ap.parse_args()
    res = {False: [], True: []}
    with DNSServer(ZONES) as dns:
        for _ in range(a.runs):
            for checks in (False, True):
                res[checks].append(one_run(a.mxgated, dns.address, checks, a.messages,
                                           a.sessions))
    for checks in (False, True):
        rate = statistics.median(r[0] for r in res[checks])
        cpu = statistics.median(r[1] for r in res[checks])
        print("checks %-3s  %7.0f msg/s accepted   %6.0f us CPU per connection" %
              ("on" if checks else "off", rate, cpu))
    off = statistics.median(r[1] for r in res[False])
    on = statistics.median(r[1] for r in res[True])
    print("the checks cost %.0f us of CPU per connection (%d messages, %d sessions, median of %d)"
          % (on - off, a.messages, a.sessions, a.runs))


if __name__ == "__main__":
    main()
