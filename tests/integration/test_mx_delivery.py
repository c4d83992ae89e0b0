"""route "*" { to = "mx" }: delivery by the recipient domain's MX records.

A small Internet on loopback: NSD serves mx.test, whose domains' MX records
name aiosmtpd servers on 127.0.0.21-26 (all on one port, given to the route as
"mx:PORT" since port 25 is not ours to take in a test). mxgate looks them up
on its c-ares resolver and must deliver to the right server, or bounce with a
clear diagnostic.
"""

import re
import ssl
import subprocess
import time

import pytest

from checks_env import dns_section
from conftest import RawClient, free_port, make_message, smtp_queue, wait_until
from dnsserver import DNSServer
from sink import Sink

ZONES = {
    "silent.test": [],  # never answers: a DNS error
    "mx.test": [
        # the first MX is down (nothing listens on .21): the second takes it
        "two MX 10 down.mx.test.",
        "two MX 20 up.mx.test.",
        "down A 127.0.0.21",
        "up A 127.0.0.22",
        # two MX of equal preference: both get mail
        "eq MX 10 e1.mx.test.",
        "eq MX 10 e2.mx.test.",
        "e1 A 127.0.0.23",
        "e2 A 127.0.0.24",
        # no MX: the domain's own address (RFC 5321 5.1)
        "implicit A 127.0.0.25",
        # "this domain takes no mail" (RFC 7505)
        "nullmx MX 0 .",
        # an MX that is our own listener: a loop, never a delivery
        "self MX 10 me.mx.test.",
        "me A 127.0.0.26",
        # an MX host without an address: try later
        "noaddr MX 10 nowhere.mx.test.",
        # TLS: a server whose certificate names it, and one whose certificate names another
        "tlsok MX 10 good.mx.test.",
        "good A 127.0.0.27",
        "tlsbad MX 10 wrong.mx.test.",
        "wrong A 127.0.0.28",
    ],
}


@pytest.fixture(scope="module")
def dns():
    srv = DNSServer(ZONES, silent_zones=["silent.test"]).start()
    yield srv
    srv.stop()


@pytest.fixture
def mxnet():
    """Sinks on 127.0.0.22-25 (and none on .21), all on one port."""
    port = free_port()
    sinks = {ip: Sink(port, host="127.0.0.%d" % ip).start() for ip in (22, 23, 24, 25)}
    yield port, sinks
    for s in sinks.values():
        s.stop()


def mx_gateway(gateway, dns, port, sink_port, extra=""):
    return gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink_port,
                           "*": "mx:%d" % port},
                   relay_networks=["127.0.0.0/8"],
                   extra=dns_section(dns.address) + extra)


def test_first_mx_down_goes_to_second(gateway, sink, dns, mxnet):
    port, sinks = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port)
    qid = smtp_queue(gw.port, "alice@example.test", ["bob@two.mx.test"], make_message("two"))
    got = sinks[22].wait_for(1, timeout=15)
    assert got[0].rcpt_tos == ["bob@two.mx.test"]
    assert b"Subject: two" in got[0].content
    gw.wait_log(r"event=delivered id=%s rcpt=<bob@two\.mx\.test> relay=up\.mx\.test\[127\.0\.0\.22\]:%d"
                % (qid, port), timeout=5)


def test_equal_preferences_both_used(gateway, sink, dns, mxnet):
    port, sinks = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port)
    n = 16
    for i in range(n):
        smtp_queue(gw.port, "alice@example.test", ["u%d@eq.mx.test" % i], make_message("eq%d" % i))
    # chance that one server gets all 16 with a fair order: 2 * 2^-16
    wait_until(lambda: len(sinks[23].messages) + len(sinks[24].messages) == n, timeout=30)
    assert len(sinks[23].messages) >= 1 and len(sinks[24].messages) >= 1, \
        (len(sinks[23].messages), len(sinks[24].messages))


def test_implicit_mx(gateway, sink, dns, mxnet):
    port, sinks = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port)
    smtp_queue(gw.port, "alice@example.test", ["carol@implicit.mx.test"], make_message("impl"))
    got = sinks[25].wait_for(1, timeout=15)
    assert got[0].rcpt_tos == ["carol@implicit.mx.test"]


def unfolded(content: bytes) -> bytes:
    return re.sub(rb"\r\n[ \t]+", b" ", content)


@pytest.mark.parametrize("domain,text", [
    ("nullmx.mx.test", "Diagnostic-Code: smtp; 556 5.1.10 domain nullmx.mx.test accepts no mail "
                       "(null MX)"),
    ("nonexistent.mx.test", "Diagnostic-Code: smtp; 550 5.1.10 domain nonexistent.mx.test does "
                            "not exist"),
])
def test_queued_mail_to_dead_domain_bounces(gateway, sink, dns, mxnet, domain, text):
    """Mail queued while the route was elsewhere (so RCPT did not look at the MX)
    meets the null MX or the missing domain at delivery: a bounce that says why."""
    port, _ = mxnet
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                         "*": "smtp:[127.0.0.1]:%d" % free_port()},  # nothing listens: deferred
                 relay_networks=["127.0.0.0/8"], extra=dns_section(dns.address))
    qid = smtp_queue(gw.port, "alice@example.test", ["dave@" + domain], make_message("perm"))
    gw.wait_log(r"event=deferred id=%s " % qid, timeout=10)
    gw.stop()
    text_conf = gw.config.read_text()
    gw.config.write_text(re.sub(r'route "\*" \{ to = "[^"]*" \}', 'route "*" { to = "mx:%d" }' % port,
                                text_conf))
    gw.start()
    gw.wait_log(r"event=bounced id=%s rcpt=<dave@%s> .*" % (qid, domain.replace(".", r"\.")),
                timeout=10)
    dsn = sink.wait_for(1, timeout=10)[0]
    assert dsn.rcpt_tos == ["alice@example.test"]
    assert text.encode() in unfolded(dsn.content), dsn.content


@pytest.mark.parametrize("domain,reply", [
    ("nullmx.mx.test", "556 5.1.10 <dave@nullmx.mx.test>: Recipient address rejected: "
                       "domain nullmx.mx.test accepts no mail (null MX)"),
    ("nonexistent.mx.test", "550 5.1.10 <dave@nonexistent.mx.test>: Recipient address "
                            "rejected: domain nonexistent.mx.test does not exist"),
    ("silent.test", "451 4.4.3 <dave@silent.test>: Recipient address rejected: "
                    "MX lookup of silent.test failed: timeout"),
])
def test_refused_at_rcpt(gateway, sink, dns, mxnet, domain, reply):
    """A relay client hears at RCPT that the domain cannot take mail; the next
    recipient of the same transaction, whose domain works, is still accepted."""
    port, sinks = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port)
    c = RawClient(gw.port)
    c.ehlo()
    c.cmd("MAIL FROM:<alice@example.test>").check(250)
    r = c.cmd("RCPT TO:<dave@%s>" % domain)
    assert "%d %s" % (r.code, r.text) == reply
    c.cmd("RCPT TO:<carol@implicit.mx.test>").check(250)
    c.cmd("DATA").check(354)
    c.send(make_message("after refusal") + b".\r\n")
    c.read_reply().check(250)
    c.cmd("QUIT")
    got = sinks[25].wait_for(1, timeout=15)
    assert got[0].rcpt_tos == ["carol@implicit.mx.test"]
    gw.wait_log(r"event=reject .*check=mx .*rcpt=<dave@%s>" % domain.replace(".", r"\."))


def test_mx_that_is_ourselves_is_a_loop(gateway, sink, dns, mxnet):
    port, _ = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port,
                    extra='listen loop { address = "127.0.0.26:%d" }\n' % port)
    smtp_queue(gw.port, "alice@example.test", ["eve@self.mx.test"], make_message("loop"))
    dsn = sink.wait_for(1, timeout=10)[0]
    assert b"5.4.6 mail for self.mx.test loops back to myself" in unfolded(dsn.content), dsn.content


def test_mx_without_address_defers(gateway, sink, dns, mxnet):
    port, _ = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port)
    qid = smtp_queue(gw.port, "alice@example.test", ["fay@noaddr.mx.test"], make_message("later"))
    gw.wait_log(r"event=deferred id=%s rcpt=<fay@noaddr\.mx\.test> .*"
                r"4\.4\.4 no address for the mail servers of noaddr\.mx\.test" % qid, timeout=10)
    assert sink.messages == []


def test_throttled_destination_keeps_its_rate(gateway, sink, dns, mxnet):
    """destination "implicit.mx.test" { rate = "3/2" }: arrivals at its server, by
    their timestamps, never exceed 3 in 2 s, while eq.mx.test (no limit) receives
    its whole batch before the throttled one is half done."""
    port, sinks = mxnet
    gw = mx_gateway(gateway, dns, port, sink.port,
                    extra='destination "implicit.mx.test" { rate = "3/2" }\n')
    n = 9
    for i in range(n):
        smtp_queue(gw.port, "alice@example.test", ["s%d@implicit.mx.test" % i],
                   make_message("slow%d" % i))
        smtp_queue(gw.port, "alice@example.test", ["f%d@eq.mx.test" % i],
                   make_message("fast%d" % i))
    slow = sinks[25].wait_for(n, timeout=30)
    fast = sinks[23].messages + sinks[24].messages
    assert len(fast) == n
    times = sorted(m.when for m in slow)
    # starts are limited to 3 per 2 s; an arrival lags its start by a little, so
    # any 4 consecutive arrivals span at least 2 s minus that lag
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] > 1.7, times
    # the unlimited destination was not held up behind the throttled one
    assert max(m.when for m in fast) < times[4], (sorted(m.when for m in fast), times)


def make_ca(d):
    """A test CA and two server certificates it signed: good.mx.test and other.example."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    for name in ("good.mx.test", "other.example"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
            "-keyout", str(d / (name + ".key")), "-out", str(d / (name + ".csr")))
        (d / (name + ".ext")).write_text("subjectAltName=DNS:%s\n" % name)
        run("x509", "-req", "-in", str(d / (name + ".csr")), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / (name + ".ext")), "-out", str(d / (name + ".pem")))
    return d / "ca.pem"


def server_ctx(d, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(d / (name + ".pem")), str(d / (name + ".key")))
    return ctx


def test_tls_policy(gateway, sink, dns, mxnet, tmp_path):
    """tls = "verify": delivered over TLS to the server whose certificate names the
    MX host; deferred (nothing sent) to one whose certificate names another host.
    tls = "encrypt": deferred when the server offers no STARTTLS."""
    port, sinks = mxnet
    ca = make_ca(tmp_path)
    good = Sink(port, host="127.0.0.27", tls_context=server_ctx(tmp_path, "good.mx.test")).start()
    wrong = Sink(port, host="127.0.0.28", tls_context=server_ctx(tmp_path, "other.example")).start()
    try:
        gw = mx_gateway(gateway, dns, port, sink.port, extra=(
            'destination "tlsok.mx.test" { tls = "verify"  ca_file = "%s" }\n'
            'destination "tlsbad.mx.test" { tls = "verify"  ca_file = "%s" }\n'
            'destination "implicit.mx.test" { tls = "encrypt" }\n' % (ca, ca)))
        smtp_queue(gw.port, "alice@example.test", ["a@tlsok.mx.test"], make_message("ok"))
        bad = smtp_queue(gw.port, "alice@example.test", ["b@tlsbad.mx.test"], make_message("x"))
        clear = smtp_queue(gw.port, "alice@example.test", ["c@implicit.mx.test"],
                           make_message("y"))
        got = good.wait_for(1, timeout=15)
        assert got[0].tls and got[0].rcpt_tos == ["a@tlsok.mx.test"]
        gw.wait_log(r"event=deferred id=%s rcpt=<b@tlsbad\.mx\.test> .*"
                    r"relay=wrong\.mx\.test\[127\.0\.0\.28\]:%d .*"
                    r"TLS handshake failed: .*certificate verify failed" % (bad, port), timeout=15)
        gw.wait_log(r"event=deferred id=%s rcpt=<c@implicit\.mx\.test> .*"
                    r"4\.7\.4 TLS required but not offered" % clear, timeout=15)
        assert wrong.messages == [] and sinks[25].messages == []
    finally:
        good.stop()
        wrong.stop()


class ThrottlingSink(Sink):
    """Answers RCPT number first..last (1-based) with 421 "too many connections";
    records when each RCPT came."""

    def __init__(self, *a, first=4, last=6, **kw):
        super().__init__(*a, **kw)
        self.first, self.last = first, last
        self.rcpt_times = []

    def rule_for(self, address):
        with self._cond:
            self.rcpt_times.append(time.monotonic())
            n = len(self.rcpt_times)
        if self.first <= n <= self.last:
            return "421 4.7.0 Too many connections, try later"
        return super().rule_for(address)


def test_421_backs_off_and_delivers_everything(gateway, sink, dns, mxnet):
    """A destination that answers 421 after three messages: mxgate stops sending
    to it for the back-off (no RCPT reaches it for 8 s after the 421), then
    delivers every message."""
    port, sinks = mxnet
    sinks[25].stop()
    slow = ThrottlingSink(port, host="127.0.0.25", first=4, last=4).start()
    try:
        gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                             "*": "mx:%d" % port},
                     relay_networks=["127.0.0.0/8"], queue={"retry_min": 1, "retry_max": 2},
                     extra=dns_section(dns.address)
                     + 'destination "implicit.mx.test" { concurrency = 1 }\n')
        n = 8
        for i in range(n):
            smtp_queue(gw.port, "alice@example.test", ["t%d@implicit.mx.test" % i],
                       make_message("t%d" % i))
        got = slow.wait_for(n, timeout=60)
        assert sorted(m.rcpt_tos[0] for m in got) == sorted("t%d@implicit.mx.test" % i
                                                             for i in range(n))
        times = slow.rcpt_times
        # concurrency 1: the first 421 (RCPT 4) is the only one before the back-off
        t421 = times[3]
        after = [t for t in times[4:] if t > t421]
        assert after and min(after) - t421 > 8, [round(t - t421, 2) for t in times]
        gw.wait_log(r"event=deferred .*rcpt=<t3@implicit\.mx\.test> .*Too many connections")
    finally:
        slow.stop()
        sinks[25].start()
