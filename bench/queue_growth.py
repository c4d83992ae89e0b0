#!/usr/bin/python3
"""queue_growth.py - how mxgated's cost grows with its queue while the next hop is down.

Issue 17, case 1. One mxgated relays example.test to a Postfix smtp-sink on
127.0.0.1:HOP. In order:

  1. relay rate, empty queue: BATCH messages through smtp-source with the sink
     up, timed until the sink has counted the last one (acc+deliv/s);
  2. the sink is stopped (connection refused: the next hop is down) and BATCH
     messages are accepted with the queue empty, REPEAT times: the median rate
     is the accept-rate baseline;
  3. for each SIZE: smtp-source fills the queue up to SIZE - REPEAT x BATCH, then
     REPEAT batches of BATCH more are timed (the median: accept rate with SIZE
     queued; the machine is shared, one batch is noisy); then mxgated's RSS (VmRSS)
     less its RSS with the queue empty, per queued message; the spool's disk
     use (du) per message; and the CPU seconds mxgated spends per second over
     IDLE seconds while nothing can be delivered;
  4. restart with the largest queue: seconds until mxgated greets a client,
     and until every message is scheduled (its destination known:
     `mxgatectl --json queue destinations`, the destinations' messages add up
     to the queue);
  5. the sink comes back: drain rate, queued messages / seconds from the
     first to the last message at the sink (mxgated probes the dead next hop
     every retry_min doubling up to retry_max; `mxgatectl queue flush` makes
     the probe due at once, as an operator would).

Load: smtp-source -s SESSIONS -l 2048 (2 KiB messages), one recipient each.

    /usr/bin/python3 bench/queue_growth.py [--sizes 10000,100000,1000000]
        [--batch 5000] [--repeat 3] [--sessions 20] [--idle 10] [--keep] [--postfix]
        [--drop-caches]

--postfix measures Debian's Postfix the same way (its retries matched:
queue_run_delay and minimal_backoff_time 5 s, maximal_backoff_time 60 s); "all
scheduled" has no counterpart there and is not measured.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "integration"))
from postfix_master import master_cf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MXGATED = os.environ.get("MXGATED", os.path.join(ROOT, "build", "mxgated"))
MXGATECTL = os.environ.get("MXGATECTL", os.path.join(ROOT, "build", "mxgatectl"))
SMTP_SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin") or "smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source", path="/usr/sbin:/usr/bin") or "smtp-source"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """smtp-sink with its running counter (-c) read from a pipe."""

    def __init__(self, port):
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([SMTP_SINK, *user, "-c", "-m", "1000",
                                      "127.0.0.1:%d" % port, "1000"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.count = 0
        self.first = None
        self.last = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.3)

    def _read(self):
        tail = b""
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            tail = (tail + chunk)[-256:]
            found = re.findall(rb"mesg=(\d+)", tail)
            if found and int(found[-1]) > self.count:
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                self.count = int(found[-1])

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        while self.count < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count >= n

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def greets(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            data = s.recv(512)
            if data.startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                return True
    except OSError:
        pass
    return False


class Mxgated:
    def __init__(self, d, port, hop):
        self.d, self.port, self.proc = d, port, None
        self.conf = os.path.join(d, "mxgate.conf")
        with open(self.conf, "w") as f:
            f.write("""hostname = "mx.bench.test"
spool_dir = "%(d)s/spool"
state_dir = "%(d)s/state"
domains = {"example.test"}
listen mx { address = "127.0.0.1:%(port)d" }
route "example.test" { to = "smtp:[127.0.0.1]:%(hop)d" }
limits { max_connections = 20000  max_connections_per_ip = 20000 }
delivery { starttls = false }
queue { retry_min = 5  retry_max = 60 }
""" % {"d": d, "port": port, "hop": hop})

    def start(self):
        """seconds until it greets"""
        t0 = time.monotonic()
        logf = open(os.path.join(self.d, "mxgated.log"), "ab")
        self.proc = subprocess.Popen([MXGATED, "-f", "-c", self.conf], stdout=logf, stderr=logf)
        while not greets(self.port):
            if self.proc.poll() is not None or time.monotonic() - t0 > 600:
                raise RuntimeError("mxgated did not start; see %s" % self.d)
            time.sleep(0.02)
        return time.monotonic() - t0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024

    def cpu(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def ctl(self, *args):
        return subprocess.run([MXGATECTL, "-c", self.conf, *args], capture_output=True,
                              text=True, timeout=600)

    def scheduled(self):
        """messages whose destination the scheduler knows; None: it cannot say (an
        mxgated without per-destination scheduling)"""
        r = self.ctl("--json", "queue", "destinations")
        if r.returncode != 0:
            return None
        return sum(d["messages"] for d in json.loads(r.stdout)["destinations"])


class Postfix:
    """Debian's Postfix as the same relay, in a private instance (as bench/compare sets
    it up), its retries matched to mxgated's: queue_run_delay and minimal_backoff_time
    5 s, maximal_backoff_time 60 s. Its memory (PSS) and CPU are those of every
    process of the instance (found by a tag in their environment)."""

    def __init__(self, d, port, hop):
        self.d, self.port = d, port
        self.etc, self.queue, data = (os.path.join(d, x) for x in ("etc", "queue", "data"))
        self.tag = "MXQG_TAG=" + os.path.basename(d)
        os.chmod(d, 0o755)  # the postfix user walks into its directories
        for x in (self.etc, self.queue, data):
            os.makedirs(x)
            os.chmod(x, 0o755)
        shutil.chown(data, "postfix")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
config_directory = %(etc)s
queue_directory = %(queue)s
data_directory = %(data)s
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C %(tag)s
myhostname = postfix.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.test
transport_maps = inline:{ example.test=smtp:[127.0.0.1]:%(hop)d }
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_process_limit = 300
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtp_destination_concurrency_limit = 100
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 60s
maillog_file_prefixes = /var, /dev/stdout, %(dir)s
maillog_file = %(dir)s/maillog
biff = no
append_dot_mydomain = no
""" % {"etc": self.etc, "queue": self.queue, "data": data, "tag": self.tag, "hop": hop,
                "dir": d})
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master_cf(port))

    def start(self):
        t0 = time.monotonic()
        env = dict(os.environ, MAIL_CONFIG=self.etc)
        subprocess.run(["postfix", "-c", self.etc, "start"], env=env, capture_output=True,
                       timeout=120, check=True)
        while not greets(self.port):
            if time.monotonic() - t0 > 600:
                raise RuntimeError("postfix did not start; see %s" % self.d)
            time.sleep(0.02)
        return time.monotonic() - t0

    def stop(self):
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=120)
        time.sleep(2)

    def pids(self):
        out = []
        for p in os.listdir("/proc"):
            try:
                with open("/proc/%s/environ" % p, "rb") as f:
                    if self.tag.encode() in f.read().split(b"\0"):
                        out.append(int(p))
            except (OSError, ValueError):
                pass
        return out

    def rss(self):
        """the processes' proportional set sizes (PSS: a shared page counts once in all)"""
        total = 0
        for p in self.pids():
            try:
                with open("/proc/%d/smaps_rollup" % p) as f:
                    total += int(re.search(r"Pss:\s+(\d+) kB", f.read()).group(1)) * 1024
            except (OSError, AttributeError):
                pass
        return total

    def cpu(self):
        """live processes' CPU and what their exited children used"""
        total = 0.0
        for p in self.pids():
            try:
                with open("/proc/%d/stat" % p) as f:
                    x = f.read().rsplit(")", 1)[1].split()
                total += sum(int(v) for v in x[11:15]) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
        return total

    def ctl(self, *args):
        if args == ("queue", "flush"):
            return subprocess.run(["postqueue", "-c", self.etc, "-f"], capture_output=True)
        return None

    def scheduled(self):
        return None


def source(port, n, sessions):
    """accepted messages per second (smtp-source stops at the first refusal)"""
    t0 = time.monotonic()
    subprocess.run([SMTP_SOURCE, "-s", str(sessions), "-m", str(n), "-l", "2048",
                    "-f", "bench@sender.test", "-t", "user@example.test",
                    "127.0.0.1:%d" % port], check=True, stdout=subprocess.DEVNULL)
    return n / (time.monotonic() - t0)


def du(path):
    """bytes the file system allocated (4 KiB blocks: a 2.5 KiB queue file takes one)"""
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout
    return int(out.split()[0]) * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3,
                    help="accept rates are the median of this many batches")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--drop-caches", action="store_true",
                    help="sync and drop the page cache before the drain (root): cold reads")
    ap.add_argument("--postfix", action="store_true", help="measure Postfix instead")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    d = tempfile.mkdtemp(prefix="mxqueue.")
    port, hop = free_port(), free_port()
    mx = (Postfix if args.postfix else Mxgated)(d, port, hop)
    sink = Sink(hop)
    mx.start()
    rows = []
    try:
        t0 = time.monotonic()
        source(port, args.batch, args.sessions)
        if not sink.wait_count(args.batch, 300):
            raise RuntimeError("relay: only %d delivered" % sink.count)
        relay = args.batch / (sink.last - t0)
        sink.stop()
        time.sleep(1)
        rss0 = mx.rss()
        base = statistics.median(source(port, args.batch, args.sessions)
                                 for _ in range(args.repeat))
        log("empty queue: relay %.0f/s, accept %.0f/s (next hop down), RSS %.1f MiB"
            % (relay, base, rss0 / 2**20))
        queued = args.batch * args.repeat
        for size in sizes:
            timed = args.batch * args.repeat
            if size - timed > queued:
                source(port, size - timed - queued, args.sessions)
                queued = size - timed
            rate = statistics.median(source(port, args.batch, args.sessions)
                                     for _ in range(args.repeat))
            queued += timed
            time.sleep(2)
            rss = mx.rss()
            c0 = mx.cpu()
            time.sleep(args.idle)
            cpu = (mx.cpu() - c0) / args.idle
            disk = du(os.path.join(d, "queue" if args.postfix else "spool"))
            row = {"queued": queued, "accept": rate, "accept_pct": 100 * rate / base,
                   "rss_per_msg": (rss - rss0) / queued, "rss_mib": rss / 2**20,
                   "disk_per_msg": disk / queued, "disk_mib": disk / 2**20, "idle_cpu": cpu}
            rows.append(row)
            log("%(queued)d queued: accept %(accept).0f/s (%(accept_pct).0f%%), RSS %(rss_mib).1f "
                "MiB (%(rss_per_msg).0f B/msg), spool %(disk_mib).0f MiB (%(disk_per_msg).0f B/msg), "
                "idle CPU %(idle_cpu).4f s/s" % row)
        mx.stop()
        t0 = time.monotonic()
        ready = mx.start()
        sched = None
        while not args.postfix and time.monotonic() - t0 < 1800:
            n = mx.scheduled()
            if n is None or n >= queued:
                sched = None if n is None else time.monotonic() - t0
                break
            time.sleep(0.2)
        log("restart with %d queued: greeting after %.2f s, all scheduled after %s s"
            % (queued, ready, "%.1f" % sched if sched is not None else "n/a"))
        if args.drop_caches:
            subprocess.run(["sync"], check=True)
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        sink = Sink(hop)
        mx.ctl("queue", "flush")
        if not sink.wait_count(queued, 3600):
            raise RuntimeError("drain: only %d of %d delivered" % (sink.count, queued))
        drain = queued / (sink.last - sink.first)
        log("drain: %.0f/s (%.0f%% of the empty-queue relay rate)" % (drain, 100 * drain / relay))
        print(json.dumps({"relay": relay, "accept_empty": base, "rows": rows,
                          "restart_greeting_s": ready, "restart_scheduled_s": sched,
                          "drain": drain, "queued": queued}, indent=1))
    finally:
        if args.postfix:
            mx.stop()
        elif mx.proc and mx.proc.poll() is None:
            mx.stop()
        if sink.proc.poll() is None:
            sink.stop()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
