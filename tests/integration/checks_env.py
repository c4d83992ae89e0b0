"""checks_env.py - shared parts of the connection-check tests (test_checks_*.py).

A real NSD server (dnsserver.py) serves the reverse and forward zones of the
test clients 127.0.0.1..127.0.0.30, a DNS blocklist, a list that answers
127.255.255.254 (unusable) and a zone that never answers. The clients bind
their source address to 127.0.0.N, so mxgated sees each as its own host.

Client addresses (127.0.0.N):
   1      probe.good.test  (the harness's readiness probe: clean, trips nothing)
   2..7   dynamic-looking, forward-confirmed names, one per S25R rule 1..6
  10      mail.good.test   (forward-confirmed, not dynamic: a good server)
  11      mx11.good.test   listed in bl.test
  12      PTR host12.other.test whose A is 127.0.0.99: not forward-confirmed
  13      no PTR at all
  14..30  mxN.good.test (14 is also listed in bl.test)

Each test module imports the `dns_server` fixture (module scope) and builds
its gateway with checks_gateway().
"""

import errno
import re
import time
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from conftest import RawClient, Reply, Gateway, wait_until, make_message, queue_id
from dnsserver import DNSServer

# ---------------------------------------------------------------------------
# the clients and their DNS
# ---------------------------------------------------------------------------
# S25R rule -> (client address, forward-confirmed name that trips exactly that rule).
# The rules (src/policy/s25r.c, conf/s25r.rules) as published by S25R:
#   rule1 ^[^.]*[0-9][^0-9.]+[0-9].*\.        two digit runs in the lowest label
#   rule2 ^[^.]*[0-9]{5}                       five digits in a row in the lowest label
#   rule3 ^([^.]+\.)?[0-9][^.]*\.[^.]+\..+\.[a-z]   lowest/second label starts with a digit
#   rule4 ^[^.]*[0-9]\.[^.]*[0-9]-[0-9]        digit-dot, then digit-hyphen-digit
#   rule5 ^[^.]*[0-9]\.[^.]*[0-9]\.[^.]+\..+\. two labels ending in digits, deep name
#   rule6 ^(dhcp|dialup|ppp|[achrsvx]?dsl)[^.]*[0-9]
S25R_RULE_CLIENTS: Dict[str, Tuple[str, str]] = {
    "rule1": ("127.0.0.2", "p1234-ipad56tokyo.tokyo.example.jp"),
    "rule2": ("127.0.0.3", "x12345.example.jp"),
    "rule3": ("127.0.0.4", "3.pool.example.ne.jp"),
    "rule4": ("127.0.0.5", "host1.abc2-3.example.net"),
    "rule5": ("127.0.0.6", "host1.pool2.isp.example.net"),
    "rule6": ("127.0.0.7", "dhcp7.example.net"),
}
# The rule regexes above, to check that each name trips its rule and no other.
S25R_RULE_REGEX = {
    "rule1": r"^[^.]*[0-9][^0-9.]+[0-9].*\.",
    "rule2": r"^[^.]*[0-9]{5}",
    "rule3": r"^([^.]+\.)?[0-9][^.]*\.[^.]+\..+\.[a-z]",
    "rule4": r"^[^.]*[0-9]\.[^.]*[0-9]-[0-9]",
    "rule5": r"^[^.]*[0-9]\.[^.]*[0-9]\.[^.]+\..+\.",
    "rule6": r"^(dhcp|dialup|ppp|[achrsvx]?dsl)[^.]*[0-9]",
}

PROBE = "127.0.0.1"
GOOD = "127.0.0.10"
GOOD_NAME = "mail.good.test"
LISTED = "127.0.0.11"
UNCONFIRMED = "127.0.0.12"
UNCONFIRMED_PTR = "host12.other.test"
NO_PTR = "127.0.0.13"
LISTED_ALLOWED = "127.0.0.14"
BL_TXT = "listed for testing"


def good_name(ip: str) -> str:
    """The forward-confirmed name of a good client."""
    n = int(ip.rsplit(".", 1)[1])
    return GOOD_NAME if n == 10 else ("probe.good.test" if n == 1 else "mx%d.good.test" % n)


def _zones() -> Dict[str, List[str]]:
    rev = []
    fwd: Dict[str, List[str]] = {"jp": [], "net": [], "good.test": [], "other.test": []}
    for ip, name in S25R_RULE_CLIENTS.values():
        n = ip.rsplit(".", 1)[1]
        rev.append("%s PTR %s." % (n, name))
        tld = name.rsplit(".", 1)[1]
        fwd[tld].append("%s. A %s" % (name, ip))
    for n in [1, 10, 11] + list(range(14, 31)):
        ip = "127.0.0.%d" % n
        rev.append("%d PTR %s." % (n, good_name(ip)))
        fwd["good.test"].append("%s. A %s" % (good_name(ip), ip))
    rev.append("12 PTR %s." % UNCONFIRMED_PTR)
    fwd["other.test"].append("%s. A 127.0.0.99" % UNCONFIRMED_PTR)
    bl = []
    for ip in (LISTED, LISTED_ALLOWED):
        rname = ".".join(reversed(ip.split(".")))
        bl += ["%s A 127.0.0.2" % rname, '%s TXT "%s"' % (rname, BL_TXT)]
    zones = {"0.0.127.in-addr.arpa": rev, "bl.test": bl, "slow.bl.test": [],
             "unusable.test": ["* A 127.255.255.254"]}
    zones.update(fwd)
    return zones


ZONES = _zones()
SILENT_ZONES = ["slow.bl.test"]


@pytest.fixture(scope="module")
def dns_server():
    """NSD with ZONES; slow.bl.test never answers through .address."""
    for attempt in range(3):
        try:
            srv = DNSServer(ZONES, silent_zones=SILENT_ZONES).start()
            break
        except OSError as e:
            # dnsserver's filter binds TCP to the port number the kernel chose for its
            # UDP socket; now and then a TCP socket of an earlier test holds it.
            if e.errno != errno.EADDRINUSE or attempt == 2:
                raise
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------
def dns_section(server: str, on_timeout: str = "tempfail", timeout: int = 1) -> str:
    return ('dns {\n    servers = {"%s"}\n    timeout = %d\n    tries = 1\n'
            '    on_timeout = "%s"\n}\n' % (server, timeout, on_timeout))


DNSBL_ALL_ZONES = ('dnsbl {\n    threshold = 1\n    zone "bl.test" { weight = 1 }\n'
                   '    zone "unusable.test" { weight = 1 }\n'
                   '    zone "slow.bl.test" { weight = 1 timeout = 1 }\n}\n')


def checks_gateway(gateway, checks: Sequence[str], sections: str = "",
                   dns: Optional[str] = None, on_timeout: str = "tempfail", **kw) -> Gateway:
    """A started gateway whose listener runs `checks`, with the raw config text
    `sections` and a dns section pointing at `dns` ("127.0.0.1:PORT")."""
    extra = kw.pop("extra", "") + sections
    if dns:
        extra += dns_section(dns, on_timeout)
    gw = gateway(start=False, extra=extra, **kw)
    text = gw.config.read_text()
    old = 'listen mx { address = "127.0.0.1:%d"' % gw.port
    assert text.count(old) == 1, "unexpected listen line in %s" % text
    new = old + " checks = {%s}" % ", ".join('"%s"' % c for c in checks)
    gw.config.write_text(text.replace(old, new))
    gw.start()
    return gw


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------
def connect(gw: Gateway, ip: str, timeout: float = 8.0) -> RawClient:
    """A raw client from source address ip; .greeting_time is the seconds to the banner."""
    t0 = time.monotonic()
    c = RawClient(gw.port, source=ip, timeout=timeout)
    c.greeting_time = time.monotonic() - t0
    return c


def to_rcpt(gw: Gateway, ip: str, rcpts: Sequence[str] = ("bob@example.test",),
            sender: str = "alice@client.test", helo: str = "client.example.org"
            ) -> Tuple[RawClient, List[Reply]]:
    """Greeting 220, EHLO 250, MAIL 250 (connect/HELO refusals are held), then the
    RCPT replies. The client is left open."""
    c = connect(gw, ip)
    try:
        c.greeting.check(220, None, "mx.example.test ESMTP")
        c.ehlo(helo)
        c.cmd("MAIL FROM:<%s>" % sender).check(250, "2.1.0")
        replies = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
    except BaseException:
        c.close()
        raise
    return c, replies


def finish_data(c: RawClient, subject: str = "checks") -> str:
    """DATA and QUIT on a client with accepted recipients; returns the queue id."""
    c.cmd("DATA").check(354)
    c.send(make_message(subject) + b".\r\n")
    qid = queue_id(c.read_reply().check(250, "2.0.0").text)
    c.cmd("QUIT").check(221)
    c.close()
    return qid


def say_quit(c: RawClient) -> None:
    try:
        c.cmd("QUIT").check(221)
    finally:
        c.close()


def refused(gw: Gateway, ip: str, code: int, status: str, *keywords: str,
            rcpt: str = "bob@example.test", **kw) -> Reply:
    """A whole session whose RCPT is refused with code/status/keywords; a second
    RCPT gets the same answer (the held refusal applies to every recipient)."""
    c, (r1, r2) = to_rcpt(gw, ip, rcpts=(rcpt, "carol@example.test"), **kw)
    try:
        r1.check(code, status, *keywords)
        r2.check(code, status, *keywords)
        say_quit(c)
    finally:
        c.close()
    return r1


def accepted(gw: Gateway, ip: str, rcpt: str = "bob@example.test", **kw) -> str:
    """A whole session whose message is accepted; returns the queue id."""
    c, (r,) = to_rcpt(gw, ip, rcpts=(rcpt,), **kw)
    try:
        r.check(250, "2.1.5")
        return finish_data(c)
    finally:
        c.close()


def received_from(content: bytes) -> str:
    """The "from HELO (NAME [IP])" part of our Received header: the first one,
    under our Authentication-Results field (on every message through checks)."""
    m = re.match(rb"Authentication-Results: mx\.example\.test;[^\r]*\r\n(?:[ \t][^\r]*\r\n)*"
                 rb"Received: from (\S+ \([^)]*\))", content)
    assert m, "no Authentication-Results then Received on top: %r" % content[:300]
    return m.group(1).decode()


# ---------------------------------------------------------------------------
# log lines
# ---------------------------------------------------------------------------
def rdns_line(gw: Gateway, ip: str, status: str, name: str, ptr: str, since: int = 0):
    """The event=rdns line of client ip (status matched case-insensitively)."""
    return gw.wait_log(r"event=rdns sid=\S+ client=%s status=(?i:%s) name=%s ptr=%s$"
                       % (re.escape(ip), status, re.escape(name), re.escape(ptr)), since=since)


def reject_line(gw: Gateway, ip: str, code: int, status: str, check: str, stage: str = "rcpt",
                since: int = 0) -> str:
    """The event=reject line for ip with code/status/check; returns the line."""
    m = gw.wait_log(r"^.*event=reject sid=\S+ client=%s stage=%s code=%d status=%s check=%s "
                    r"reason=.*$" % (re.escape(ip), stage, code, re.escape(status),
                                     re.escape(check)), since=since)
    return m.group(0)


# ---------------------------------------------------------------------------
# mxgatectl stats
# ---------------------------------------------------------------------------
_STAT = re.compile(r"^( *)(\S+(?: \S+)*?) +(\d+)(?: +(\d+\.\d)%)?$")


_AUTH_HEAD = re.compile(r"^sender authentication: +reject +tempfail +score$")
_AUTH_ROW = re.compile(r"^  (\S+) +(\d+) +(\d+) +(\d+)$")
AUTH_MECHANISMS = ("spf", "sender", "dkim", "dmarc", "score")


class Stats:
    """`mxgatectl stats` parsed: totals, stopped-by mechanism, the sender-authentication
    rows (auth[mechanism] = {"reject": n, "tempfail": n, "score": n}), verdicts."""

    def __init__(self, text: str):
        self.text = text
        self.totals: Dict[str, int] = {}
        self.stopped: Dict[str, int] = {}
        self.pct: Dict[str, str] = {}
        self.verdicts: Dict[str, int] = {}
        self.auth: Dict[str, Dict[str, int]] = {}
        self.gateways: Dict[str, Tuple[int, int, int]] = {}  # a fleet: connections,
        in_verdicts = in_auth = in_fleet = False                # accepted, refused of each
        for ln in text.splitlines():
            if ln.startswith("gateways sharing the store: "):
                in_fleet = True
                continue
            if in_fleet:
                g = re.match(r"^  (\S+) +(\d+) +(\d+) +(\d+)$", ln)
                assert g or re.match(r"^  gateway +connections +accepted +refused$", ln), \
                    "bad gateway line %r in:\n%s" % (ln, text)
                if g:
                    self.gateways[g.group(1)] = tuple(int(x) for x in g.groups()[1:])
                continue
            if ln == "verdicts:":
                in_verdicts, in_auth = True, False
                continue
            if _AUTH_HEAD.match(ln):
                in_auth = True
                continue
            if in_auth:
                a = _AUTH_ROW.match(ln)
                assert a, "bad sender authentication line %r in:\n%s" % (ln, text)
                self.auth[a.group(1)] = {"reject": int(a.group(2)),
                                         "tempfail": int(a.group(3)), "score": int(a.group(4))}
                continue
            m = _STAT.match(ln)
            assert m, "unexpected line %r in mxgatectl stats output:\n%s" % (ln, text)
            indent, name, n, pct = m.groups()
            if in_verdicts:
                assert indent and pct is None, "bad verdict line %r" % ln
                self.verdicts[name] = int(n)
            elif indent:
                assert pct is not None, "mechanism line without a percentage: %r" % ln
                self.stopped[name] = int(n)
                self.pct[name] = pct
            else:
                self.totals[name] = int(n)
                if pct is not None:
                    self.pct[name] = pct
        for key in ("connections", "messages accepted", "connections refused"):
            assert key in self.totals, "no %r line in:\n%s" % (key, text)
        assert tuple(self.auth) == AUTH_MECHANISMS, "sender authentication rows:\n%s" % text
        for mech, cols in self.auth.items():  # the rows are the verdict counters
            for col, n in cols.items():
                assert self.verdicts.get("%s.%s" % (mech, col), 0) == n, text

    def check_percentages(self) -> None:
        conns = self.totals["connections"]
        for name, pct in self.pct.items():
            n = self.stopped.get(name, self.totals.get(name))
            want = "%.1f" % (100.0 * n / conns if conns else 0.0)
            assert pct == want, "%s: %s%% printed, %s%% expected:\n%s" % (name, pct, want,
                                                                         self.text)
        assert self.totals["connections refused"] == sum(self.stopped.values()), self.text


def read_stats(gw: Gateway, *args: str) -> Stats:
    res = gw.ctl("stats", *args)
    assert res.returncode == 0, "mxgatectl stats failed (%d): %s%s" % (
        res.returncode, res.stdout, res.stderr)
    return Stats(res.stdout)


def wait_stats(gw: Gateway, connections: Optional[int] = None, accepted: Optional[int] = None,
               stopped: Optional[Dict[str, int]] = None,
               verdicts: Optional[Dict[str, int]] = None, timeout: float = 6.0) -> Stats:
    """Poll `mxgatectl stats` until it shows exactly these numbers: `stopped` is the
    whole set of mechanism lines, `verdicts` a subset of the verdict lines (counters
    are written asynchronously, and a session is counted when it ends)."""
    last: List[Stats] = []

    def good() -> bool:
        st = read_stats(gw)
        last[:] = [st]
        if connections is not None and st.totals["connections"] != connections:
            return False
        if accepted is not None and st.totals["messages accepted"] != accepted:
            return False
        if stopped is not None and st.stopped != stopped:
            return False
        for k, v in (verdicts or {}).items():
            if st.verdicts.get(k, 0) != v:
                return False
        return True

    try:
        wait_until(good, timeout=timeout, interval=0.2, what="statistics")
    except AssertionError:
        raise AssertionError(
            "mxgatectl stats never showed connections=%s accepted=%s stopped=%s verdicts "
            "%s; last output:\n%s" % (connections, accepted, stopped, verdicts,
                                       last[0].text if last else "(none)"))
    last[0].check_percentages()
    return last[0]
