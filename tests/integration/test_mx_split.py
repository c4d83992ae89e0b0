"""test_mx_split.py - a bounce flood through mxgated makes dnsdist answer the
secondary MX to the resolvers of the bouncing sites (contrib/hooks/mx-split),
and the primary to everyone else; after the flood, the primary to everyone.

NSD (dnsserver.py) serves example.test with MX 10 mx1 and MX 20 mx2; dnsdist
(Debian's) answers in front of it on its own port with its console on
loopback, both per test module in a tmp dir. Queries are made with dig from a
127.0.x.y source address: the bouncing site is 127.0.5.0/24 (its gateway
127.0.5.25 sends the bounces, its resolver is 127.0.5.53), a resolver named in
MXS_RESOLVERS is 127.0.7.53, everyone else is 127.0.0.9 and 127.0.7.54.

Run:  /usr/bin/python3 -m pytest tests/integration/test_mx_split.py
"""

import base64
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import REPO, RawClient, free_port, make_message, wait_until
from dnsserver import DNSServer

HOOK = REPO / "contrib" / "hooks" / "mx-split"
DNSDIST = shutil.which("dnsdist") or "/usr/bin/dnsdist"
DIG = shutil.which("dig") or "/usr/bin/dig"
BOTH = [(10, "mx1.example.test."), (20, "mx2.example.test.")]
SECONDARY = [(20, "mx2.example.test.")]
BOUNCER, BOUNCER_RESOLVER = "127.0.5.25", "127.0.5.53"
LISTED_RESOLVER = "127.0.7.53"
OTHERS = ("127.0.0.9", "127.0.7.54")

pytestmark = pytest.mark.skipif(not (os.path.exists(DNSDIST) and os.path.exists(DIG)),
                                reason="dnsdist and dig (scripts/deps.sh test)")


class Dnsdist:
    """dnsdist on .port in front of backend_port, console on .console."""

    def __init__(self, workdir, backend_port):
        self.port = free_port()
        self.console = "127.0.0.1:%d" % free_port()
        self.conf = workdir / "dnsdist.conf"
        key = base64.b64encode(os.urandom(32)).decode()
        self.conf.write_text(
            'setLocal("127.0.0.1:%d")\n'
            'newServer({address="127.0.0.1:%d", checkName="example.test."})\n'
            'controlSocket("%s")\nsetKey("%s")\nsetSecurityPollSuffix("")\n'
            % (self.port, backend_port, self.console, key))
        os.chmod(str(self.conf), 0o600)
        self.log = open(workdir / "dnsdist.log", "wb")
        self.proc = subprocess.Popen([DNSDIST, "--supervised", "--disable-syslog", "-C",
                                      str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, cwd=str(workdir))
        wait_until(lambda: mx(self.port, "127.0.0.9") == BOTH, timeout=10,
                   what="dnsdist answering through NSD")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def mx(port, source):
    """(preference, host) of example.test MX as dnsdist answers source, sorted."""
    out = subprocess.run([DIG, "-b", source, "@127.0.0.1", "-p", str(port), "+noall", "+answer",
                          "+time=1", "+tries=1", "example.test", "MX"],
                         capture_output=True, text=True, timeout=10)
    recs = []
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) == 6 and f[3] == "MX":
            recs.append((int(f[4]), f[5].lower()))
    return sorted(recs)


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    nsd = DNSServer({"example.test": ["@ 86400 MX 10 mx1.example.test.",
                                      "@ 86400 MX 20 mx2.example.test.",
                                      "mx1 A 127.0.0.1", "mx2 A 127.0.0.2"]}).start()
    dd = Dnsdist(tmp_path_factory.mktemp("dnsdist"), nsd.port)
    yield dd
    dd.stop()
    nsd.stop()


def hook_env(dd, **kw):
    env = {"MXS_CONSOLE": dd.console, "MXS_DNSDIST_CONF": str(dd.conf),
           "MXS_DOMAIN": "example.test", "MXS_SECONDARY": "mx2.example.test",
           "MXS_PREF": "20", "MXS_TTL": "60", "MXS_TIMEOUT": "5", "MXS_CONFIG": "/dev/null"}
    env.update(kw)
    return env


def run_hook(env, event, **extra):
    e = dict(os.environ, **env)
    e.update(extra)
    return subprocess.run([str(HOOK), event], env=e, capture_output=True, text=True, timeout=30)


def send_bounces(port, n):
    with RawClient(port, source=BOUNCER) as c:
        c.ehlo("mta.bouncer.test")
        for i in range(n):
            c.cmd("MAIL FROM:<>").check(250, "2.1.0")
            c.cmd("RCPT TO:<forged%d@example.test>" % i).check(250, "2.1.5")
            c.cmd("DATA").check(354)
            c.send(make_message("bounce %d" % i) + b".\r\n")
            c.read_reply().check(250, "2.0.0")
        c.cmd("QUIT").check(221)


def test_flood_splits_the_mx_answer(gateway, sink, dns):
    """The flood: mxgated runs mx-split start with the bouncing network learned
    (127.0.5.0/24) and a listed resolver; those get MX 20 only, authoritative, with
    the short TTL; everyone else both records. The flood ends: everyone both."""
    env = hook_env(dns, MXS_RESOLVERS=LISTED_RESOLVER)
    section = ('bounce_flood {\n    interval = 2\n    start = 5\n    stop = 1\n    hold = 2\n'
               '    hook = "%s"\n}\n' % HOOK)
    gw = gateway(checks=["bounce_flood"], env=env, extra=section)
    for src in (BOUNCER_RESOLVER, LISTED_RESOLVER) + OTHERS:
        assert mx(dns.port, src) == BOTH, src

    wait_until(lambda: time.time() % 2 < 0.3, timeout=3, interval=0.01, what="a fresh window")
    mark = gw.log_mark()
    send_bounces(gw.port, 6)
    gw.wait_log(r"event=bounce_flood state=start count=5 interval=2$", since=mark, timeout=3)
    gw.wait_log(r"event=hook check=bounce_flood arg=start pid=\d+ status=exited code=0",
                since=mark)
    gw.wait_log(r"mx-split: start: bounces=5 domain=example\.test\. "
                r"secondary=\"20 mx2\.example\.test\.\" resolvers=\{127\.0\.7\.53, "
                r"127\.0\.5\.0/24\}: the secondary MX for them", since=mark)
    for src in (BOUNCER_RESOLVER, LISTED_RESOLVER):
        assert mx(dns.port, src) == SECONDARY, src
    for src in OTHERS:
        assert mx(dns.port, src) == BOTH, src
    out = subprocess.run([DIG, "-b", BOUNCER_RESOLVER, "@127.0.0.1", "-p", str(dns.port),
                          "+noall", "+answer", "+comments", "example.test", "MX"],
                         capture_output=True, text=True, timeout=10).stdout
    assert re.search(r"flags: qr aa", out), out
    assert re.search(r"^example\.test\.\s+60\s+IN\s+MX\s+20 mx2\.example\.test\.$", out, re.M), out

    gw.wait_log(r"event=bounce_flood state=stop count=0 interval=2 duration=\d+$", since=mark,
                timeout=8)
    gw.wait_log(r"event=hook check=bounce_flood arg=stop pid=\d+ status=exited code=0",
                since=mark)
    gw.wait_log(r"mx-split: stop: bounces=0 .*: the primary MX for everyone", since=mark)
    for src in (BOUNCER_RESOLVER, LISTED_RESOLVER) + OTHERS:
        assert mx(dns.port, src) == BOTH, src
    assert len(sink.wait_for(6)) == 6  # the bounces themselves were accepted


def test_hook_by_hand(dns):
    """Idempotent start and stop; only configured resolvers without learning; nobody to
    split for, a bad network or a bad setting refused before dnsdist is touched."""
    env = hook_env(dns, MXS_RESOLVERS="127.0.8.0/24, ::1", MXS_LEARN="no")
    for _ in range(2):
        r = run_hook(env, "start", MXGATE_NETWORKS="127.0.0.0/24")
        assert r.returncode == 0, r.stderr
        assert "resolvers={127.0.8.0/24, ::1}" in r.stderr, r.stderr
    assert mx(dns.port, "127.0.8.1") == SECONDARY
    assert mx(dns.port, "127.0.0.9") == BOTH  # MXGATE_NETWORKS ignored with MXS_LEARN=no
    for _ in range(2):
        r = run_hook(env, "stop")
        assert r.returncode == 0, r.stderr
    assert mx(dns.port, "127.0.8.1") == BOTH

    r = run_hook(hook_env(dns), "start")
    assert r.returncode == 1 and "no resolvers to split for" in r.stderr, r.stderr
    r = run_hook(hook_env(dns, MXS_RESOLVERS='1.2.3.4"), os.exit(1) --'), "start")
    assert r.returncode == 2 and "not an address or network" in r.stderr, r.stderr
    r = run_hook(hook_env(dns, MXS_SECONDARY="mx2.example.test\"x"), "start")
    assert r.returncode == 2 and "MXS_SECONDARY: not a host name" in r.stderr, r.stderr
    r = run_hook(hook_env(dns, MXS_CONSOLE="127.0.0.1:%d" % free_port(),
                          MXS_RESOLVERS="127.0.8.1"), "start")
    assert r.returncode == 1 and "dnsdist refused the rule" in r.stderr, r.stderr
    assert mx(dns.port, "127.0.8.1") == BOTH
