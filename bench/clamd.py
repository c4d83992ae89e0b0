#!/usr/bin/python3
"""clamd.py - what virus scanning with clamd costs per message: mxgate's clamd
check beside Postfix with clamav-milter, against the same clamd, same messages.

One clamd (Debian's, foreground, a UNIX socket under the work directory, the
test signature database of tests/integration/clamd_env.py: the EICAR string;
no freshclam) serves both sides. The same clean message is sent by
smtp-source to each configuration, interleaved, in rounds (bench/compare's
servers and sinks):

  mxgate-fcrdns   checks = {"userlists"} with nothing listed: the FCrDNS lookup
                  every checked client costs, and nothing else
  mxgate-clamd    checks = {"clamd"}: INSTREAM streamed while DATA arrives
  postfix         Debian's Postfix as a relay, no checks (bench/compare's instance)
  postfix-clamav  the same with smtpd_milters = clamav-milter (INSTREAM to clamd)

Printed: accepted and delivered msg/s and CPU per message (ms) of the server's
whole process group (clamav-milter is in Postfix's group: it is the part of
the integration Postfix needs), and clamd's own CPU per message (the same
work for both: the difference shows what each side makes it do), as medians.
Both mxgate variants resolve the client's name against NSD on 127.0.0.153:53
(tests/integration/dnsserver.py), so that the machine's resolver does not
set the pace; Postfix uses the system's, the same for both of its runs.
Before the rounds each scanning configuration is shown to work: the clean
message is accepted, the EICAR one refused.

    bench/clamd.py [--messages 3000] [--sessions 20] [--rounds 3] [--size 2048]
                   [--servers mxgate-fcrdns,mxgate-clamd,postfix,postfix-clamav]

Needs root (Postfix instance, cgroups), postfix, clamav-daemon, clamav-milter.
With a one-signature database clamd's scan is cheap: the figures are the
cost of the plumbing around it, which is what differs between the two.
"""
import argparse
import importlib.machinery
import os
import shutil
import signal
import smtplib
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import dnsserver  # noqa: E402
from clamd_env import EICAR, Clamd  # noqa: E402

compare = importlib.machinery.SourceFileLoader("compare", os.path.join(HERE, "compare")).load_module()
log = compare.log

SENDER = "bench@sender.example"
RCPT = "user@example.test"
HELO = "mail.sender.example"
SERVERS = ["mxgate-fcrdns", "mxgate-clamd", "postfix", "postfix-clamav"]
DNS_IP = "127.0.0.153"
ZONES = {"sender.example": ["mail A 127.0.0.1"],
         "0.0.127.in-addr.arpa": ["1 PTR mail.sender.example."]}
CLAMD = None  # the shared Clamd


def message(size, virus=False):
    """message - a MIME message of about size octets of body, CRLF lines"""
    body = b"".join(b"%05d The quick brown fox jumps over the lazy dog, again.\r\n" % i
                    for i in range(max(1, size // 60)))
    if virus:
        body += EICAR + b"\r\n"
    return (b"From: Bench <%s>\r\nTo: <%s>\r\nSubject: clamd bench\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <bench@sender.example>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" % (SENDER.encode(),
                                                                     RCPT.encode())) + body


class MxgateFcrdns(compare.Mxgate):
    name = "mxgate-fcrdns"
    check, section = "userlists", "userlists { store = false }\n"

    def config(self, sync=None):
        path = super().config(sync)
        with open(path) as f:
            text = f.read()
        old = 'listen mx { address = "127.0.0.1:%d" }' % self.port
        assert old in text
        text = text.replace(old, old[:-2] + ' checks = {"%s"} }' % self.check)
        text += self.section
        text += 'dns { servers = {"%s:53"}  timeout = 2  tries = 1 }\n' % DNS_IP
        with open(path, "w") as f:
            f.write(text)
        return path


class MxgateClamd(MxgateFcrdns):
    name = "mxgate-clamd"

    @property
    def section(self):
        return 'clamd { socket = "%s"  timeout = 60 }\n' % CLAMD.socket

    check = "clamd"


class PostfixClamav(compare.Postfix):
    """PostfixClamav - bench/compare's Postfix with clamav-milter on a TCP port"""
    name = "postfix-clamav"

    def write_config(self):
        etc = super().write_config()
        d = self.dir
        self.milter_port = self.bench.ports.get()
        with open(os.path.join(d, "clamav-milter.conf"), "w") as f:
            f.write("MilterSocket inet:%d@127.0.0.1\nClamdSocket unix:%s\nForeground yes\n"
                    "OnInfected Reject\nOnFail Defer\nAddHeader Replace\nLogSyslog no\n"
                    "PidFile %s/clamav-milter.pid\nMaxFileSize 25M\nReadTimeout 120\n"
                    "User root\n" % (self.milter_port, CLAMD.socket, d))
        main = os.path.join(etc, "main.cf")
        with open(main, "a") as f:
            f.write("smtpd_milters = inet:127.0.0.1:%d\nnon_smtpd_milters =\n"
                    "milter_default_action = tempfail\n" % self.milter_port)
        return etc

    def start(self):
        self.etc = self.write_config()
        self.bench.postfix_dirs.append(self.etc)
        self.milter = self.bench.spawn("exec clamav-milter -c %s/clamav-milter.conf >%s/"
                                       "clamav-milter.log 2>&1" % (self.dir, self.dir),
                                       self.group)
        if not wait_listen(self.milter_port, 30):
            log("postfix-clamav: clamav-milter did not start (%s)" % self.dir)
            return False
        out = os.path.join(self.dir, "start.log")
        p = self.bench.spawn("MAIL_CONFIG=%s exec script -qec 'postfix -c %s start' /dev/null "
                             ">%s 2>&1" % (self.etc, self.etc, out), self.group)
        p.wait(120)
        if p.returncode != 0:
            log("postfix-clamav: start failed, see %s" % out)
            return False
        return compare.wait_greeting(self.port, 60)

    def stop(self):
        super().stop()
        self.bench.stop(self.milter)


def wait_listen(port, timeout):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


CLASSES = {"mxgate": compare.Mxgate, "mxgate-fcrdns": MxgateFcrdns, "mxgate-clamd": MxgateClamd, "postfix": compare.Postfix,
           "postfix-clamav": PostfixClamav}


def clamd_cpu():
    """clamd_cpu - CPU seconds clamd used so far (utime + stime)"""
    with open("/proc/%d/stat" % CLAMD.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch(bench, name):
    sink = compare.Sink(bench, bench.ports.get())
    if not compare.wait_greeting(sink.port, 30):
        raise RuntimeError("smtp-sink for %s did not start" % name)
    server = CLASSES[name](bench, sink.port)
    if not server.start():
        server.stop()
        bench.stop(sink.proc)
        raise RuntimeError("%s did not start (files in %s)" % (name, server.dir))
    return server, sink


def source(port, sessions, messages, path, timeout):
    import subprocess
    cmd = ["smtp-source", "-s", str(sessions), "-m", str(messages), "-F", path, "-M", HELO,
           "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, "smtp-source timed out"
    if p.returncode != 0:
        return time.monotonic() - t0, (p.stderr.strip().splitlines() or
                                       ["exit %d" % p.returncode])[-1]
    return time.monotonic() - t0, None


def one_run(bench, name, args, path):
    res = {"ok": False}
    try:
        server, sink = launch(bench, name)
    except RuntimeError as e:
        res["error"] = str(e)
        return res
    try:
        warm = min(200, args.messages // 10)
        timeout = 300 + args.messages // 10
        _, err = source(server.port, args.sessions, warm, path, timeout)
        if err or sink.wait_count(warm, 120) is None:
            res["error"] = "warm-up: %s" % (err or "not all delivered")
            return res
        cpu0, ccpu0, t0 = bench.groups.cpu(server.group), clamd_cpu(), time.monotonic()
        dt, err = source(server.port, args.sessions, args.messages, path, timeout)
        if err:
            res["error"] = err
            return res
        t2 = sink.wait_count(warm + args.messages, 120 + args.messages / 20)
        if t2 is None:
            res["error"] = "delivered %d of %d" % (sink.count - warm, args.messages)
            return res
        time.sleep(1.0)
        cpu = bench.groups.cpu(server.group) - cpu0
        res.update(ok=True, accept=args.messages / dt, deliver=args.messages / (t2 - t0),
                   cpu=cpu / args.messages * 1000,
                   clamd=(clamd_cpu() - ccpu0) / args.messages * 1000)
        return res
    finally:
        server.stop()
        bench.stop(sink.proc)


def smtp_try(port, data):
    try:
        with smtplib.SMTP("127.0.0.1", port, HELO, timeout=60) as s:
            s.sendmail(SENDER, [RCPT], data)
            return "250"
    except smtplib.SMTPResponseException as e:
        return "%d %s" % (e.smtp_code, e.smtp_error.decode(errors="replace"))


def verify(bench, name, clean, virus):
    """verify - the clean message passes, the EICAR one is refused"""
    server, sink = launch(bench, name)
    try:
        a, b = smtp_try(server.port, clean), smtp_try(server.port, virus)
        ok = a.startswith("250") and b[:1] == "5"
        log("  %-15s clean: %s | EICAR: %s%s" % (name, a, b[:80], "" if ok else "  <-- WRONG"))
        return ok
    finally:
        server.stop()
        bench.stop(sink.proc)


def report(args, servers, results, size):
    log("")
    log("smtp-source -s %d -m %d -F (%d octets); median of %d rounds" % (
        args.sessions, args.messages, size, args.rounds))
    log("%-15s %11s %12s %12s %14s" % ("server", "accepted/s", "delivered/s", "CPU ms/msg",
                                      "clamd ms/msg"))
    med = {}
    for name in servers:
        good = [r for r in results[name] if r["ok"]]
        med[name] = {k: compare.median([r[k] for r in good])
                     for k in ("accept", "deliver", "cpu", "clamd")}
        m = med[name]
        log("%-15s %11s %12s %12s %14s   (%d/%d runs)" % (
            name, compare.fmt(m["accept"]), compare.fmt(m["deliver"]), compare.fmt(m["cpu"], 3),
            compare.fmt(m["clamd"], 3), len(good), len(results[name])))
    for scan, base in (("mxgate-clamd", "mxgate-fcrdns"), ("mxgate-clamd", "mxgate"),
                       ("postfix-clamav", "postfix")):
        if med.get(scan, {}).get("cpu") and med.get(base, {}).get("cpu"):
            log("%s - %s: %+.3f ms CPU per message" % (scan, base,
                                                        med[scan]["cpu"] - med[base]["cpu"]))
    a, b = med.get("mxgate-clamd", {}), med.get("postfix-clamav", {})
    if a.get("cpu") and b.get("cpu"):
        log("postfix-clamav / mxgate-clamd CPU per message: %.1fx" % (b["cpu"] / a["cpu"]))


def main():
    global CLAMD
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=2048, help="body octets (about)")
    ap.add_argument("--servers", default=",".join(SERVERS))
    args = ap.parse_args()
    args.cpu_accounting, args.keep = "auto", bool(os.environ.get("CLAMD_BENCH_KEEP"))
    servers = args.servers.split(",")
    if os.geteuid() != 0:
        sys.exit("clamd.py: run as root (Postfix instance, cgroups)")
    for tool in ("smtp-source", "smtp-sink", "postfix", "clamd", "clamav-milter"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("clamd.py: %s missing (apt-get install postfix clamav-daemon "
                     "clamav-milter)" % tool)
    bench = compare.Bench(args)
    dnsserver.HOST = DNS_IP  # NSD on 127.0.0.153:53
    dns = None
    try:
        from pathlib import Path
        dns = dnsserver.DNSServer(ZONES, port=53).start()
        CLAMD = Clamd(Path(bench.work) / "clamd").start()
        clean, virus = message(args.size), message(args.size, virus=True)
        path = os.path.join(bench.work, "message.txt")
        with open(path, "wb") as f:
            f.write(clean.replace(b"\r\n", b"\n"))  # smtp-source -F adds CRLF
        log("clamd.py: %s; CPU by %s" % (bench.mxgated, bench.groups.describe()))
        log("verify (message %d octets):" % len(clean))
        for name in servers:
            if name in ("mxgate-clamd", "postfix-clamav") and not verify(bench, name, clean,
                                                                           virus):
                log("clamd.py: %s does not scan as expected" % name)
                return 1
        results = {n: [] for n in servers}
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            for name in order:
                r = one_run(bench, name, args, path)
                results[name].append(r)
                log("  round %d %-15s %s" % (rnd + 1, name, (
                    "accepted %6.0f msg/s  delivered %6.0f msg/s  CPU %.3f ms/msg  clamd "
                    "%.3f ms/msg" % (r["accept"], r["deliver"], r["cpu"], r["clamd"]))
                    if r["ok"] else "FAILED: %s" % r.get("error")))
        report(args, servers, results, len(clean))
        return 0
    finally:
        if dns:
            dns.stop()
        if CLAMD:
            CLAMD.stop()
        bench.cleanup()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
