"""test_bounce_flood.py - a bounce flood (Joe job) through mxgated withdraws the
primary MX with contrib/hooks/mx-withdraw, and its end restores it.

A real Knot DNS server (knotd, Debian's `knot`) serves example.test on
127.0.0.1:<free port> with MX 10 mx1 and MX 20 mx2 (TTL one day) and accepts
dynamic updates (RFC 2136) signed with a TSIG key made for the test. It runs
in the foreground as the current user, with its configuration, journal and
control socket in the test's tmp directory.

mxgated runs the bounce_flood check with interval 2 s, start 5, stop 1,
hold 2 s, and the shipped hook; the hook's MXW_* settings are in the
daemon's environment, which the daemon passes on to it. The test sends
bounces (MAIL FROM:<>) and watches the zone with dig.
"""

import base64
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from conftest import MXGATED, REPO, RawClient, free_port, make_message, wait_until

HOOK = REPO / "contrib" / "hooks" / "mx-withdraw"
KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
DIG = shutil.which("dig") or "/usr/bin/dig"
ZONE = "example.test"
KEY_NAME = "mxgate-test-key"
PRIMARY = (10, "mx1.example.test.")
SECONDARY = (20, "mx2.example.test.")
DAY = 86400

pytestmark = pytest.mark.skipif(
    not (os.path.exists(KNOTD) and os.path.exists(DIG) and shutil.which("nsupdate")),
    reason="needs knot and bind9-dnsutils (scripts/deps.sh installs them)")

ZONE_FILE = """$ORIGIN example.test.
$TTL 86400
@    SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@    NS  ns1
@    MX  10 mx1
@    MX  20 mx2
ns1  A   127.0.0.1
mx1  A   127.0.0.1
mx2  A   127.0.0.2
"""

KNOT_CONF = """server:
    rundir: "{dir}"
    pidfile: "{dir}/knotd.pid"
    listen: 127.0.0.1@{port}
log:
  - target: stderr
    any: info
database:
    storage: "{dir}/db"
control:
    listen: "{dir}/knot.sock"
key:
  - id: {key}
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: tsig-update
    key: {key}
    action: update
template:
  - id: default
    storage: "{dir}"
    file: "%s.zone"
    zonefile-sync: -1
zone:
  - domain: {zone}
    acl: tsig-update
"""


class Knot:
    """knotd in the foreground on 127.0.0.1:port, serving example.test."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        (self.dir / "db").mkdir(parents=True)  # knotd does not create its journal directory
        self.port = free_port()
        secret = base64.b64encode(os.urandom(32)).decode()
        (self.dir / ("%s.zone" % ZONE)).write_text(ZONE_FILE)
        self.conf = self.dir / "knot.conf"
        self.conf.write_text(KNOT_CONF.format(dir=self.dir, port=self.port, key=KEY_NAME,
                                              secret=secret, zone=ZONE))
        # The same key in the format nsupdate -k reads.
        self.keyfile = self.dir / "tsig.key"
        self.keyfile.write_text('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n'
                                % (KEY_NAME, secret))
        self.keyfile.chmod(0o600)
        self.log = self.dir / "knotd.log"
        self.proc = None

    def start(self) -> "Knot":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([KNOTD, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        wait_until(lambda: self.proc.poll() is not None or mx_records(self.port),
                   timeout=10, what="knotd to serve %s" % ZONE)
        assert self.proc.poll() is None, "knotd exited: %s" % self.log.read_text()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def knot(tmp_path):
    k = Knot(tmp_path / "knot").start()
    yield k
    k.stop()
    print("---- knotd log ----\n%s" % k.log.read_text()[-3000:])


def mx_records(port: int) -> List[Tuple[int, str, int]]:
    """(preference, host, ttl) of example.test MX as the server answers now, sorted."""
    out = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+noall", "+answer", "+time=1",
                          "+tries=1", ZONE, "MX"], capture_output=True, text=True, timeout=10)
    recs = []
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) == 6 and f[3] == "MX":
            recs.append((int(f[4]), f[5].lower(), int(f[1])))
    return sorted(recs)


def prefs(port: int) -> List[Tuple[int, str]]:
    return [(p, h) for p, h, _ in mx_records(port)]


def send_bounces(port: int, n: int) -> None:
    """n bounces (null sender) to example.test in one session, each accepted for delivery."""
    with RawClient(port) as c:
        c.ehlo("mta.bouncer.test")
        for i in range(n):
            c.cmd("MAIL FROM:<>").check(250, "2.1.0")
            c.cmd("RCPT TO:<forged%d@example.test>" % i).check(250, "2.1.5")
            c.cmd("DATA").check(354)
            c.send(make_message("bounce %d" % i, sender="MAILER-DAEMON@bouncer.test",
                                to="forged%d@example.test" % i) + b".\r\n")
            c.read_reply().check(250, "2.0.0")
        c.cmd("QUIT").check(221)


def send_ordinary(port: int, n: int) -> None:
    """n messages with a real sender: not bounces."""
    with RawClient(port) as c:
        c.ehlo("mail.client.test")
        for i in range(n):
            c.cmd("MAIL FROM:<alice@client.test>").check(250, "2.1.0")
            c.cmd("RCPT TO:<bob@example.test>").check(250, "2.1.5")
            c.cmd("RSET").check(250)
        c.cmd("QUIT").check(221)


FLOOD_RE = (r"^flood since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+) bounces in the last "
            r"interval of 2 s, (\d+) in the current one\)$")
NORMAL_RE = (r"^normal since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+) bounces in the last "
             r"interval of 2 s, (\d+) in the current one\)$")


def flood_state(gw) -> str:
    r = gw.ctl("flood")
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.strip()


@pytest.mark.usefixtures("store_backend")  # on LMDB, and on a shared Redis
def test_flood_withdraws_and_restores_primary_mx(gateway, knot, sink):
    env = {
        "MXW_SERVER": "127.0.0.1", "MXW_PORT": str(knot.port), "MXW_ZONE": ZONE,
        "MXW_KEYFILE": str(knot.keyfile), "MXW_MX_HOST": "mx1.example.test",
        "MXW_MX_PREF": "10", "MXW_TTL": str(DAY), "MXW_TIMEOUT": "3",
        "MXW_CONFIG": "/dev/null",  # nothing from /etc on the test machine
    }
    section = ('bounce_flood {\n    interval = 2\n    start = 5\n    stop = 1\n    hold = 2\n'
               '    hook = "%s"\n}\n' % HOOK)
    gw = gateway(checks=["bounce_flood"], env=env, extra=section)
    assert mx_records(knot.port) == [PRIMARY + (DAY,), SECONDARY + (DAY,)]
    assert re.match(NORMAL_RE, flood_state(gw)), flood_state(gw)

    # Ordinary mail is no bounce, however much of it comes.
    send_ordinary(gw.port, 12)
    assert "event=bounce_flood " not in gw.log_text()  # (a fleet logs its leader: _leader)

    # The flood: 8 bounces right after a window starts (5 declare it).
    wait_until(lambda: time.time() % 2 < 0.3, timeout=3, interval=0.01, what="a fresh window")
    window = int(time.time()) // 2 * 2  # windows are aligned on the epoch
    mark = gw.log_mark()
    send_bounces(gw.port, 8)
    gw.wait_log(r"event=bounce_flood state=start count=5 interval=2$", since=mark, timeout=3)
    m = re.match(FLOOD_RE, flood_state(gw))
    assert m, flood_state(gw)
    assert int(m.group(1)) + int(m.group(2)) >= 5, m.group(0)

    # The hook withdrew the primary MX; the secondary stays.
    wait_until(lambda: prefs(knot.port) == [SECONDARY], timeout=5, what="MX 10 to disappear")
    gw.wait_log(r"mx-withdraw: start: bounces=5 domain=example\.test\. "
                r"mx=\"10 mx1\.example\.test\.\" .*primary MX withdrawn", since=mark)
    gw.wait_log(r"event=hook check=bounce_flood arg=start pid=\d+ status=exited code=0",
                since=mark)
    assert len(sink.wait_for(8)) == 8  # the bounces themselves were accepted and delivered

    # Silence: the flood window ends (8 > stop), then one empty window covers hold.
    gw.wait_log(r"event=bounce_flood state=stop count=0 interval=2 duration=\d+$", since=mark,
                timeout=8)
    ended = time.time()
    assert ended >= window + 2 + 2, "the flood ended %.2f s after its window began, before " \
        "interval + hold seconds" % (ended - window)
    wait_until(lambda: mx_records(knot.port) == [PRIMARY + (DAY,), SECONDARY + (DAY,)],
               timeout=5, what="MX 10 to come back with its long TTL")
    gw.wait_log(r"event=hook check=bounce_flood arg=stop pid=\d+ status=exited code=0",
                since=mark)
    assert re.match(NORMAL_RE, flood_state(gw)), flood_state(gw)

    # Each transition once, in order, and counted.
    text = gw.log_text()[mark:]
    events = re.findall(r"event=bounce_flood state=(\w+)", text)
    assert events == ["start", "stop"], events
    # Counters reach the store within a second (the daemon batches them).
    wait_until(lambda: re.search(r"^\s*bounce_flood\.stop\s+1$", gw.ctl("stats").stdout, re.M),
               timeout=5, what="bounce_flood.stop in mxgatectl stats")
    stats = gw.ctl("stats")
    assert stats.returncode == 0, stats.stderr
    assert re.search(r"^\s*bounce_flood\.start\s+1$", stats.stdout, re.M), stats.stdout
    assert re.search(r"^\s*bounce_flood\.stop\s+1$", stats.stdout, re.M), stats.stdout
    # The update really was TSIG-signed and applied by the server.
    assert "DDNS, finished" in knot.log.read_text()


def test_missing_hook_is_a_start_up_error(gateway, tmp_path):
    missing = tmp_path / "no-such-hook"
    gw = gateway(start=False, checks=["bounce_flood"],
                 extra='bounce_flood {\n    hook = "%s"\n}\n' % missing)
    # Run it directly: the start-up validation (the same as -n) refuses it before it listens,
    # with the configuration's file and line.
    r = subprocess.run([MXGATED, "-f", "-c", str(gw.config)], cwd=str(gw.dir),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(r"^%s:\d+: bounce_flood: hook %s: No such file or directory$"
                     % (re.escape(str(gw.config)), re.escape(str(missing))), r.stderr, re.M), \
        r.stderr
    assert "event=listen" not in r.stderr, r.stderr
