"""test_policy_service.py - mxgate as a Postfix policy service (listen role = "policy").

A real Postfix from Debian (a private instance in a tmp dir: its own
config_directory and queue_directory, loopback, a high port) asks mxgated with
`check_policy_service inet:127.0.0.1:PORT`, as it would ask postgrey. Its
clients bind 127.0.0.N like those of mxgate's own listener, and each test
compares what Postfix answers with what mxgate's own listener, running the
same checks in the same daemon, answers. Then the protocol itself, from a
Python socket: several requests per connection, one transaction per
instance=, malformed and oversized requests refused with a clear action.

Postfix has no resolver it could point at the test DNS server
(smtpd_peername_lookup = no): it sends client_name=unknown, which is what the
S25R test uses (127.0.0.13 has no PTR for mxgate either).

Run:  /usr/bin/python3 -m pytest tests/integration/test_policy_service.py
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from checks_env import (BL_TXT, accepted, checks_gateway, refused, reject_line, to_rcpt,
                        say_quit, wait_stats)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import RawClient, free_port, make_message, wait_until
from dnsserver import DNSServer
from postfix_master import master_cf
from sink import Sink

DELAY = 2
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"


class PrivatePostfix:
    """A Postfix instance under workdir: smtpd on .port, relaying example.test to
    sink_port, asking the policy service on policy_port for every recipient."""

    def __init__(self, workdir, sink_port, policy_port):
        self.dir = workdir
        self.port = free_port()
        self.etc, queue, data = (str(workdir / x) for x in ("etc", "queue", "data"))
        os.makedirs(str(workdir))
        for d in (self.etc, queue, data):
            os.makedirs(d)
            os.chmod(d, 0o755)
        os.chmod(str(workdir), 0o755)
        shutil.chown(data, "postfix")
        main = f"""compatibility_level = 3.6
config_directory = {self.etc}
queue_directory = {queue}
data_directory = {data}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
myhostname = postfix.example.test
mydomain = example.test
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relay_domains = example.test
transport_maps = inline:{{ example.test=smtp:[127.0.0.1]:{sink_port} }}
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:{policy_port}
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtpd_client_connection_rate_limit = 0
maillog_file_prefixes = /var, /dev/stdout, {workdir}
maillog_file = {workdir}/maillog
biff = no
append_dot_mydomain = no
"""
        master = master_cf(self.port)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master)
        env = dict(os.environ, MAIL_CONFIG=self.etc)
        # `script` gives postfix a terminal so that its errors are seen (no syslog here)
        p = subprocess.run(["script", "-qec", "%s -c %s start" % (POSTFIX, self.etc),
                            "/dev/null"], env=env, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        wait_until(self._greets, timeout=30, what="postfix greeting")

    def _greets(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(100).startswith(b"220 ")
        except OSError:
            return False

    def log(self):
        try:
            return (self.dir / "maillog").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        subprocess.run([POSTFIX, "-c", self.etc, "stop"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def postfix_env():
    """(postfix, its sink, the policy port each test's gateway listens on)."""
    if not shutil.which("postfix") and not os.path.exists(POSTFIX):
        pytest.fail("postfix is not installed (scripts/deps.sh test)")
    sink = Sink(free_port()).start()
    policy_port = free_port()
    # Postfix's daemons run as postfix: a directory they can reach, not pytest's (0700)
    work = Path(tempfile.mkdtemp(prefix="mxgate-postfix-"))
    os.chmod(str(work), 0o755)
    pf = PrivatePostfix(work / "pf", sink.port, policy_port)
    yield pf, sink, policy_port
    pf.stop()
    sink.stop()
    shutil.rmtree(str(work), ignore_errors=True)


def policy_listener(port, checks):
    return ('listen policy {\n    address = "127.0.0.1:%d"\n    role = "policy"\n'
            '    checks = {%s}\n}\n' % (port, ", ".join('"%s"' % c for c in checks)))


class ViaPostfix:
    """The gateway's checks as Postfix's clients meet them (for checks_env's helpers)."""

    def __init__(self, gw, pf):
        self.gw = gw
        self.port = pf.port

    def __getattr__(self, name):
        return getattr(self.gw, name)


def postfix_rcpt(pf, ip, rcpt="bob@example.test", sender="alice@client.test",
                 helo="client.example.org"):
    """A session to Postfix from ip up to one RCPT; returns (client, reply)."""
    c = RawClient(pf.port, source=ip, timeout=20)
    c.greeting.check(220)
    c.ehlo(helo)
    c.cmd("MAIL FROM:<%s>" % sender).check(250)
    return c, c.cmd("RCPT TO:<%s>" % rcpt)


def postfix_refused(pf, ip, code, status, text):
    c, r = postfix_rcpt(pf, ip)
    try:
        r.check(code, status, "<bob@example.test>: Recipient address rejected: " + text)
        say_quit(c)
    finally:
        c.close()
    return r


def postfix_accepted(pf, sink, ip, subject):
    """A message through Postfix from ip; it reaches Postfix's sink."""
    n = len(sink.messages)
    c, r = postfix_rcpt(pf, ip)
    try:
        r.check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message(subject) + b".\r\n")
        c.read_reply().check(250)
        say_quit(c)
    finally:
        c.close()
    return sink.wait_for(n + 1, timeout=30)[n]


def test_greylists_like_postgrey(gateway, sink, dns_server, postfix_env):
    """The greylist check behind Postfix: the first try is deferred (450 4.7.1,
    DEFER_IF_PERMIT as postgrey answers), a retry inside the delay too, one after
    the delay passes and the message reaches the server behind Postfix. mxgate's
    own listener greylists its own client (451 4.7.1) the same way."""
    pf, pf_sink, pport = postfix_env
    checks = ["greylist"]
    gw = checks_gateway(gateway, checks,
                        "greylist {\n    delay = %d\n    retry_window = 3600\n"
                        "    only_suspicious = false\n}\n" % DELAY + policy_listener(pport, checks),
                        dns=dns_server.address)
    t0 = time.monotonic()
    r = postfix_refused(pf, "127.0.0.22", 450, "4.7.1", "Greylisted, please try again in")
    # greylisting keys on the client's /24: another sender keeps the two triplets apart
    own = refused(gw, "127.0.0.23", 451, "4.7.1", "Greylisted, please try again in",
                  sender="dave@client.test")
    assert r.text == own.text.replace("4.7.1 ", "4.7.1 <bob@example.test>: Recipient address "
                                      "rejected: ", 1), (r, own)
    postfix_refused(pf, "127.0.0.22", 450, "4.7.1", "Greylisted")
    line = reject_line(gw, "127.0.0.22", 451, "4.7.1", "greylist")
    assert "from=<alice@client.test> rcpt=<bob@example.test>" in line, line
    assert "helo=client.example.org" in line, line
    time.sleep(max(0.0, DELAY + 0.3 - (time.monotonic() - t0)))
    msg = postfix_accepted(pf, pf_sink, "127.0.0.22", "greylisted then passed")
    assert msg.rcpt_tos == ["bob@example.test"]
    assert b"Subject: greylisted then passed" in msg.content
    accepted(gw, "127.0.0.23", sender="dave@client.test")
    sink.wait_for(1)
    # two greylisted transactions through Postfix, one through mxgate: counted alike
    wait_stats(gw, stopped={"greylist": 3})


def test_refuses_and_passes_like_mxgate(gateway, sink, dns_server, postfix_env):
    """The DNSBL refuses 127.0.0.11 with the same code, status and text through
    Postfix as on mxgate's own listener; S25R refuses a client without a name the
    same way; a clean client passes both."""
    pf, pf_sink, pport = postfix_env
    checks = ["dnsbl", "s25r"]
    gw = checks_gateway(gateway, checks,
                        'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n'
                        's25r {\n    action = "reject"\n}\n' + policy_listener(pport, checks),
                        dns=dns_server.address)
    text = "Service unavailable; client [127.0.0.11] blocked using bl.test; " + BL_TXT
    r = postfix_refused(pf, "127.0.0.11", 554, "5.7.1", text)
    own = refused(gw, "127.0.0.11", 554, "5.7.1", text)
    assert r.text == own.text.replace("5.7.1 ", "5.7.1 <bob@example.test>: Recipient address "
                                      "rejected: ", 1), (r, own)
    assert len(gw.log_lines(r"event=reject .*client=127\.0\.0\.11 .*check=dnsbl")) >= 3

    nopr = "Client host rejected: cannot find your hostname"
    postfix_refused(pf, "127.0.0.13", 550, "5.7.1", nopr)
    refused(gw, "127.0.0.13", 550, "5.7.1", nopr)
    gw.wait_log(r"event=policy_client sid=\S+ client=127\.0\.0\.13 name=unknown ptr=- "
                r"listener=policy instance=\S+$")

    accepted(gw, "127.0.0.10", helo="mail.good.test")
    sink.wait_for(1)
    wait_stats(gw, stopped={"dnsbl": 2, "s25r": 2})


SPF_ZONES = {"spf.test": ['pass.spf.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
                         'fail.spf.test. TXT "v=spf1 ip4:192.0.2.1 -all"']}


@pytest.fixture(scope="module")
def spf_dns():
    srv = DNSServer(SPF_ZONES).start()
    yield srv
    srv.stop()


def test_spf_prepends_and_refuses_like_mxgate(gateway, sink, spf_dns, postfix_env):
    """SPF behind Postfix: a pass gets its Received-SPF field prepended (PREPEND) once
    on the message Postfix delivers; a fail is refused with mxgate's own 550 5.7.23
    and text (given at RCPT: Postfix asks there), which mxgate gives at MAIL."""
    pf, pf_sink, pport = postfix_env
    gw = checks_gateway(gateway, ["spf"], policy_listener(pport, ["spf"]),
                        dns=spf_dns.address)
    c, r = postfix_rcpt(pf, "127.0.0.21", sender="alice@fail.spf.test")
    r.check(550, "5.7.23", "<bob@example.test>: Recipient address rejected: SPF fail for "
            "fail.spf.test")
    say_quit(c)
    own = RawClient(gw.port, source="127.0.0.21")
    own.ehlo("client.example.org")
    o = own.cmd("MAIL FROM:<alice@fail.spf.test>").check(550, "5.7.23")
    say_quit(own)
    assert r.text == o.text.replace("5.7.23 ", "5.7.23 <bob@example.test>: Recipient address "
                                    "rejected: ", 1), (r, o)
    reject_line(gw, "127.0.0.21", 550, "5.7.23", "spf", stage="mail")

    n = len(pf_sink.messages)
    c, r = postfix_rcpt(pf, "127.0.0.21", sender="alice@pass.spf.test")
    r.check(250, "2.1.5")
    c.cmd("RCPT TO:<carol@example.test>").check(250, "2.1.5")
    c.cmd("DATA").check(354)
    c.send(make_message("spf pass") + b".\r\n")
    c.read_reply().check(250)
    say_quit(c)
    msg = pf_sink.wait_for(n + 1, timeout=30)[n]
    fields = [l for l in msg.content.split(b"\r\n") if l.startswith(b"Received-SPF:")]
    assert len(fields) == 1, msg.content[:600]
    assert fields[0].startswith(b"Received-SPF: pass (mx.example.test: domain of "
                                b"alice@pass.spf.test designates 127.0.0.21"), fields[0]


# ---------------------------------------------------------------------------
# the protocol, from a Python socket
# ---------------------------------------------------------------------------
def request(**attrs):
    base = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
            "client_address": "127.0.0.10", "client_name": "mail.good.test",
            "reverse_client_name": "mail.good.test", "helo_name": "mail.good.test",
            "sender": "alice@client.test", "recipient": "bob@example.test",
            "instance": "1a2b.5f3c.1.0"}
    base.update(attrs)
    return "".join("%s=%s\n" % (k, v) for k, v in base.items() if v is not None).encode() + b"\n"


class PolicyClient:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def answer(self):
        while b"\n\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += data
        ans, self.buf = self.buf.split(b"\n\n", 1)
        lines = ans.decode().split("\n")
        assert len(lines) == 1 and lines[0].startswith("action="), ans
        return lines[0][len("action="):]

    def closed(self):
        self.sock.settimeout(5)
        try:
            return self.sock.recv(100) == b""
        except ConnectionResetError:
            return True


@pytest.fixture
def policy_gw(gateway, dns_server):
    port = free_port()
    checks = ["access", "dnsbl", "greylist"]
    gw = checks_gateway(gateway, checks,
                        'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n'
                        "greylist {\n    delay = 3600\n    only_suspicious = false\n}\n"
                        + policy_listener(port, checks), dns=dns_server.address)
    gw.policy_port = port
    return gw


def test_requests_per_connection_and_instance(policy_gw):
    """Several requests on one connection, each answered in turn; one instance=
    is one transaction (its connect checks ran once: one policy_client line);
    a new instance is a new one; states before RCPT get DUNNO."""
    c = PolicyClient(policy_gw.policy_port)
    c.send(request(protocol_state="CONNECT", recipient=None, sender=None, helo_name=None,
                   instance="x1") + request(protocol_state="MAIL", recipient=None, instance="x1"))
    assert c.answer() == "DUNNO"
    assert c.answer() == "DUNNO"
    c.send(request(instance="x1") + request(instance="x1", recipient="carol@example.test"))
    a1, a2 = c.answer(), c.answer()
    assert a1.startswith("DEFER_IF_PERMIT 4.7.1 Greylisted, please try again in "), a1
    assert a2.startswith("DEFER_IF_PERMIT 4.7.1 Greylisted"), a2
    assert len(policy_gw.log_lines(r"event=policy_client .*instance=x1$")) == 1
    c.send(request(client_address="127.0.0.11", instance="x2"))
    assert c.answer() == ("554 5.7.1 Service unavailable; client [127.0.0.11] blocked using "
                          "bl.test; " + BL_TXT)
    assert len(policy_gw.log_lines(r"event=policy_client .*client=127\.0\.0\.11 .*"
                                   r"instance=x2$")) == 1
    # IPv6 client (written in full, logged canonical): one transaction for two
    # recipients; without instance= each request is its own
    v6 = "2001:db8:0:0:0:0:0:25"
    c.send(request(client_address=v6, instance="x3") +
           request(client_address=v6, instance="x3", recipient="carol@example.test") +
           request(client_address=v6, instance=None))
    for _ in range(3):
        assert c.answer().startswith("DEFER_IF_PERMIT 4.7.1 Greylisted")
    policy_gw.wait_log(r"event=reject sid=\S+ client=2001:db8::25 stage=rcpt code=451")
    assert len(policy_gw.log_lines(r"event=policy_client .*client=2001:db8::25 .*"
                                   r"instance=x3$")) == 1
    assert len(policy_gw.log_lines(r"event=policy_client .*client=2001:db8::25 .*"
                                   r"instance=-$")) == 1
    wait_stats(policy_gw, verdicts={"policy_service.requests": 8,
                                    "policy_service.errors": 0})


BAD = [
    (b"request=smtpd_access_policy\nno equals sign\n\n", "not a name=value line"),
    (b"Request=smtpd_access_policy\n\n", "not a name=value line"),
    (b"request=smtpd_access_policy\nhelo_name=a\rb\n\n", "control character in a value"),
    (b"request=smtpd_access_policy\nrequest=smtpd_access_policy\n\n", "attribute given twice"),
    (b"request=other\nprotocol_state=RCPT\nclient_address=127.0.0.1\n\n",
     "request is not smtpd_access_policy"),
    (request(protocol_state="QUIT"), "missing or unknown protocol_state"),
    (request(client_address="300.1.2.3"), "missing or bad client_address"),
    (request(client_address="unknown"), "missing or bad client_address"),
    (request(recipient=""), "RCPT without recipient"),
    (b"\n", "empty request"),
    (b"request=smtpd_access_policy\nx=" + b"a" * 3000 + b"\n\n", "attribute line too long"),
    (b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(101)) + b"\n",
     "too many attributes"),
]


@pytest.mark.parametrize("data,why", BAD, ids=[w for _, w in BAD])
def test_malformed_requests(policy_gw, data, why):
    """A request we cannot judge gets "451 4.3.0 Policy service error: WHY" (Postfix
    logs it and defers), a policy_error log line, and the connection is closed."""
    mark = policy_gw.log_mark()
    c = PolicyClient(policy_gw.policy_port)
    c.send(data)
    assert c.answer() == "451 4.3.0 Policy service error: " + why
    assert c.closed()
    policy_gw.wait_log(r"warning: event=policy_error client=127\.0\.0\.1 listener=policy "
                       r"error=\"%s\"$" % re.escape(why), since=mark)
    wait_stats(policy_gw, verdicts={"policy_service.errors": 1})


def test_endless_line_closed(policy_gw):
    """A line without end is refused once it passes the bound, not buffered forever."""
    c = PolicyClient(policy_gw.policy_port)
    c.send(b"request=" + b"x" * 100000)
    assert c.answer() == "451 4.3.0 Policy service error: attribute line too long"
    assert c.closed()
    # the service goes on
    c = PolicyClient(policy_gw.policy_port)
    c.send(request(client_address="127.0.0.11", instance="y"))
    assert c.answer().startswith("554 5.7.1 ")


def test_shutdown_closes_policy_connections(policy_gw):
    """SIGTERM: an idle policy connection is closed at once (Postfix opens a new one
    at its next request) and the daemon stops without waiting for it."""
    c = PolicyClient(policy_gw.policy_port)
    c.send(request(client_address="127.0.0.11", instance="z"))
    assert c.answer().startswith("554 5.7.1 ")
    t0 = time.monotonic()
    assert policy_gw.stop() == 0
    assert time.monotonic() - t0 < 3
    assert c.closed()
