"""test_proxy_protocol.py - a listener behind Debian's HAProxy speaking the PROXY
protocol (send-proxy: v1, send-proxy-v2: v2): S25R, the DNSBL, greylisting, the
Received field and the log's client= see the original client (127.0.0.N, bound
by the test client), not the balancer (127.0.0.1). Connections from elsewhere
than proxy_from, malformed, absent or slow headers are closed and logged.

HAProxy runs once for the module (haproxy -db in a tmp dir); its two frontends
forward to one fixed port that each test's gateway listens on (listener "lb").

Run:  /usr/bin/python3 -m pytest tests/integration/test_proxy_protocol.py
"""

import re
import shutil
import socket
import struct
import subprocess
import time

import pytest

from checks_env import (GOOD, GOOD_NAME, S25R_RULE_CLIENTS, accepted, checks_gateway, rdns_line,
                        received_from, refused, reject_line, wait_stats)
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import RawClient, free_port, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
DELAY = 2


class Balancer:
    """HAProxy: .v1_port and .v2_port forward to 127.0.0.1:.backend_port."""

    def __init__(self, workdir, backend_port=None, checked=False):
        self.dir = workdir
        self.backend_port = backend_port or free_port()
        self.v1_port = free_port()
        self.v2_port = free_port()
        self.cfg = workdir / "haproxy.cfg"
        # health checks: an SMTP check (EHLO, expects 2xx) behind a PROXY header of its own
        check = (" check check-send-proxy inter 300ms" if checked else "")
        smtpchk = ("    option smtpchk EHLO haproxy.example.test\n" if checked else "")
        self.cfg.write_text(
            "global\n    maxconn 100\n"
            "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n"
            "    timeout server 30s\n"
            "frontend v1\n    bind 127.0.0.1:%d\n    default_backend gw_v1\n"
            "frontend v2\n    bind 127.0.0.1:%d\n    default_backend gw_v2\n"
            "backend gw_v1\n%s    server gw 127.0.0.1:%d send-proxy%s\n"
            "backend gw_v2\n%s    server gw 127.0.0.1:%d send-proxy-v2%s\n"
            % (self.v1_port, self.v2_port, smtpchk, self.backend_port, check, smtpchk,
               self.backend_port, check))
        self.log = open(workdir / "haproxy.log", "wb")
        self.proc = subprocess.Popen([HAPROXY, "-f", str(self.cfg), "-db"], cwd=str(workdir),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

        def listening():
            assert self.proc.poll() is None, (workdir / "haproxy.log").read_text()
            for port in (self.v1_port, self.v2_port):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    return False
            return True
        wait_until(listening, what="haproxy listening")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def balancer(tmp_path_factory):
    b = Balancer(tmp_path_factory.mktemp("haproxy"))
    yield b
    b.stop()


class Via:
    """The gateway as clients reach it through one of the balancer's frontends."""

    def __init__(self, gw, port):
        self.gw = gw
        self.port = port

    def __getattr__(self, name):
        return getattr(self.gw, name)


def lb_listener(port, checks, proxy_from=("127.0.0.1",), protocol="any", extra=""):
    return ('listen lb {\n    address = "127.0.0.1:%d"\n    proxy_protocol = "%s"\n'
            '    proxy_from = {%s}\n    checks = {%s}\n%s}\n'
            % (port, protocol, ", ".join('"%s"' % a for a in proxy_from),
               ", ".join('"%s"' % c for c in checks), extra))


def proxy_line(gw, ip, version):
    return gw.wait_log(r"event=proxy client=%s via=127\.0\.0\.1 listener=lb version=%d$"
                       % (re.escape(ip), version))


def test_s25r_and_received_see_the_client(gateway, sink, dns_server, balancer):
    """Through v1 and v2 alike, a dynamic-looking client is refused by its own S25R
    rule and a good server passes with its own name and address in the Received
    field; the log's connect, rdns and reject lines name the client."""
    checks = ["s25r"]
    gw = checks_gateway(gateway, checks, 's25r {\n    action = "reject"\n}\n' +
                        lb_listener(balancer.backend_port, checks), dns=dns_server.address)
    for version, port in ((1, balancer.v1_port), (2, balancer.v2_port)):
        mark = gw.log_mark()
        via = Via(gw, port)
        rule, (ip, name) = list(S25R_RULE_CLIENTS.items())[version - 1]
        refused(via, ip, 550, "5.7.1", "(S25R rule=%s)" % rule)
        proxy_line(gw, ip, version)
        gw.wait_log(r"event=connect sid=\S+ client=%s port=\d+ listener=lb$" % re.escape(ip),
                    since=mark)
        rdns_line(gw, ip, "ok", name, name, since=mark)
        reject_line(gw, ip, 550, "5.7.1", "s25r", since=mark)

        accepted(via, GOOD, helo="mail.good.test")
        proxy_line(gw, GOOD, version)
        msg = sink.wait_for(version)[version - 1]
        assert received_from(msg.content) == "mail.good.test (%s [%s])" % (GOOD_NAME, GOOD)
    # the balancer's address is nowhere a client
    assert not gw.log_lines(r"event=(?:connect|rdns|reject) sid=\S+ client=127\.0\.0\.1 .*lb")
    assert not gw.log_lines(r"event=proxy_(?:error|refused)")
    wait_stats(gw, connections=5, accepted=2, stopped={"s25r": 2})


def test_dnsbl_and_greylist_see_the_client(gateway, sink, dns_server, balancer):
    """bl.test lists 127.0.0.11: refused through the balancer as directly. A
    greylisted client's first try comes through v1, the retry after the delay
    through v2: one triplet, so the retry passes."""
    checks = ["dnsbl", "greylist"]
    gw = checks_gateway(gateway, checks,
                        'dnsbl {\n    zone "bl.test" { weight = 1 }\n}\n'
                        "greylist {\n    delay = %d\n    retry_window = 3600\n"
                        "    only_suspicious = false\n}\n" % DELAY +
                        lb_listener(balancer.backend_port, checks),
                        dns=dns_server.address)
    r = refused(Via(gw, balancer.v2_port), "127.0.0.11", 554, "5.7.1")
    assert "client [127.0.0.11] blocked using bl.test" in r.text, r.text
    reject_line(gw, "127.0.0.11", 554, "5.7.1", "dnsbl")

    ip = "127.0.0.21"
    t0 = time.monotonic()
    refused(Via(gw, balancer.v1_port), ip, 451, "4.7.1", "Greylisted")
    reject_line(gw, ip, 451, "4.7.1", "greylist")
    time.sleep(max(0.0, DELAY + 0.3 - (time.monotonic() - t0)))
    accepted(Via(gw, balancer.v2_port), ip)
    msg = sink.wait_for(1)[0]
    assert received_from(msg.content) == "client.example.org (mx21.good.test [%s])" % ip
    wait_stats(gw, accepted=1, stopped={"dnsbl": 1, "greylist": 1})


def test_only_from_proxy_from(gateway, dns_server, balancer):
    """proxy_from names another host: the balancer's connection is closed unanswered
    and logged with its address; the mx listener is untouched."""
    lb = lb_listener(balancer.backend_port, [], proxy_from=("127.0.0.200", "10.0.0.0/8"))
    gw = checks_gateway(gateway, [], lb)
    c = RawClient(balancer.v1_port, source="127.0.0.5", greeting=False)
    c.expect_closed()
    line = gw.wait_log(r"event=proxy_refused client=127\.0\.0\.1 listener=lb "
                       r"reason=\"not in proxy_from\"$")
    assert line
    assert not gw.log_lines(r"event=connect .*listener=lb")
    RawClient(gw.port).greeting.check(220)
    wait_stats(gw, verdicts={"proxy.refused": 1, "proxy.errors": 0})


def raw_lb(balancer, source="127.0.0.1"):
    return RawClient(balancer.backend_port, source=source, greeting=False)


def test_bad_headers_closed_and_logged(gateway, sink, balancer):
    """From an allowed address: SMTP without a header, a v1 line without CRLF in
    107 octets, a v2 header of a UNIX socket, and a header that never comes are
    each closed with a proxy_error line; a good v2 header with TLVs and a v1
    UNKNOWN (a health check) start sessions as the named and the real peer."""
    gw = checks_gateway(gateway, [], lb_listener(balancer.backend_port, [],
                                                 extra="    proxy_timeout = 1\n"))
    cases = [
        (b"EHLO client.example\r\n", "no PROXY header"),
        (b"PROXY TCP4 " + b"1" * 120, "v1: no CRLF within 107 octets"),
        (b"PROXY TCP4 127.0.0.9 127.0.0.1 1234 25\n", "v1: the line does not end with CRLF"),
        (V2_SIG + b"\x21\x31" + struct.pack("!H", 216) + b"\0" * 216,
         "v2: address family is not TCP over IPv4 or IPv6"),
    ]
    for data, why in cases:
        mark = gw.log_mark()
        c = raw_lb(balancer)
        c.send(data)
        c.expect_closed()
        gw.wait_log(r"event=proxy_error client=127\.0\.0\.1 listener=lb error=\"%s\"$"
                    % re.escape(why), since=mark)
    mark = gw.log_mark()
    t0 = time.monotonic()
    c = raw_lb(balancer)
    c.send(b"PROXY TCP4 ")
    c.expect_closed(timeout=5)
    assert 0.8 < time.monotonic() - t0 < 4
    gw.wait_log(r"event=proxy_error .*error=\"no complete PROXY header in time\"", since=mark)
    assert not gw.log_lines(r"event=connect .*listener=lb")
    wait_stats(gw, verdicts={"proxy.errors": 5, "proxy.refused": 0})

    # v2 with a NOOP and an AUTHORITY TLV, sent in two pieces
    block = socket.inet_aton("127.0.0.9") + socket.inet_aton("127.0.0.1") + struct.pack("!HH",
                                                                                       4321, 25)
    block += b"\x04\x00\x02ab" + b"\x02\x00\x0fmx.example.test"
    c = raw_lb(balancer)
    hdr = V2_SIG + b"\x21\x11" + struct.pack("!H", len(block)) + block
    c.send(hdr[:10])
    time.sleep(0.2)
    c.send(hdr[10:])
    c.read_reply().check(220)
    c.cmd("QUIT").check(221)
    gw.wait_log(r"event=connect sid=\S+ client=127\.0\.0\.9 port=4321 listener=lb$")
    gw.wait_log(r"event=proxy client=127\.0\.0\.9 via=127\.0\.0\.1 listener=lb version=2$")

    # a health check: UNKNOWN; the session is the balancer's own
    c = raw_lb(balancer, source="127.0.0.1")
    c.send(b"PROXY UNKNOWN\r\n")
    c.read_reply().check(220)
    c.cmd("QUIT").check(221)
    gw.wait_log(r"event=proxy client=127\.0\.0\.1 via=127\.0\.0\.1 listener=lb version=1 "
                r"local=yes$")


def test_client_early_talk_after_header(gateway, balancer):
    """The octets after the header are the client's: sent before the greeting with
    the header in one segment, they make it an early talker as on a direct listener."""
    gw = checks_gateway(gateway, [], lb_listener(balancer.backend_port, []),
                        timeouts={"greeting_delay": 1})
    c = raw_lb(balancer)
    c.send(b"PROXY TCP4 127.0.0.8 127.0.0.1 5555 25\r\nEHLO early.example\r\n")
    c.read_reply(timeout=5).check(554, "5.5.0", "talked before greeting")
    c.expect_closed()
    gw.wait_log(r"event=disconnect sid=\S+ client=127\.0\.0\.8 .*reason=earlytalk")


def test_health_checks_are_the_balancers_own(gateway, tmp_path):
    """HAProxy's SMTP health checks with check-send-proxy (v1: its own address, v2:
    LOCAL): each is a short session of the balancer's own (EHLO, 250), never a
    proxy_error; and a client still comes through as itself."""
    port = free_port()
    gw = checks_gateway(gateway, [], lb_listener(port, []))
    b = Balancer(tmp_path, backend_port=port, checked=True)
    try:
        gw.wait_log(r"event=proxy client=127\.0\.0\.1 via=127\.0\.0\.1 listener=lb version=1$")
        gw.wait_log(r"event=proxy client=127\.0\.0\.1 via=127\.0\.0\.1 listener=lb version=2 "
                    r"local=yes$")
        c = RawClient(b.v2_port, source="127.0.0.26")
        c.greeting.check(220)
        c.cmd("QUIT").check(221)
        gw.wait_log(r"event=connect sid=\S+ client=127\.0\.0\.26 port=\d+ listener=lb$")
        time.sleep(1)  # a few more rounds of checks
    finally:
        b.stop()
    assert not gw.log_lines(r"event=proxy_(?:error|refused)")
    checks = gw.log_lines(r"event=proxy client=127\.0\.0\.1 via=127\.0\.0\.1 listener=lb ")
    assert len(checks) >= 4, checks
    assert len(gw.log_lines(r"event=disconnect sid=\S+ client=127\.0\.0\.1 commands=2 "
                            r"messages=0 reason=quit$")) >= 3
