"""test_dnsserver.py - the DNS fixture itself: NSD answers, the filter and blackhole are silent.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/integration/test_dnsserver.py
"""

import os
import socket
import time

import dns.exception
import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from dnsserver import DNSServer

ZONES = {
    "example.test": [
        "host2 A 127.0.0.2",
        'host2 TXT "v=spf1 " "-all"',
        "@ MX 20 mx2",
        "@ MX 10 mx1",
        "mx1 A 127.0.0.1",
    ],
    "0.0.127.in-addr.arpa": ["2 PTR host2.example.test."],
    "bl.test": ["2.0.0.127 A 127.0.0.2", '2.0.0.127 TXT "listed: see https://bl.test/2"'],
    "slow.test": ["2.0.0.127 A 127.0.0.2"],
}


@pytest.fixture(scope="module")
def srv():
    s = DNSServer(ZONES, silent_zones=["slow.test"]).start()
    yield s
    s.stop()


def rrset(msg, rdtype):
    """The answer RRset of one type, as a sorted list of text."""
    for rr in msg.answer:
        if rr.rdtype == dns.rdatatype.from_text(rdtype):
            return sorted(r.to_text() for r in rr)
    return []


def test_records_answer_authoritatively(srv):
    r = srv.query("2.0.0.127.in-addr.arpa", "PTR")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert rrset(r, "PTR") == ["host2.example.test."]
    assert rrset(srv.query("host2.example.test", "A"), "A") == ["127.0.0.2"]
    assert rrset(srv.query("host2.example.test", "TXT"), "TXT") == ['"v=spf1 " "-all"']
    assert rrset(srv.query("example.test", "MX"), "MX") == ["10 mx1.example.test.",
                                                             "20 mx2.example.test."]


def test_dnsbl_zone(srv):
    assert rrset(srv.query("2.0.0.127.bl.test", "A"), "A") == ["127.0.0.2"]
    assert rrset(srv.query("2.0.0.127.bl.test", "TXT"), "TXT") == ['"listed: see https://bl.test/2"']
    assert srv.query("3.0.0.127.bl.test", "A").rcode() == dns.rcode.NXDOMAIN


def test_tcp_answers(srv):
    assert rrset(srv.query("host2.example.test", "A", tcp=True), "A") == ["127.0.0.2"]


def test_outside_zones_refused(srv):
    assert srv.query("www.example.com", "A").rcode() == dns.rcode.REFUSED


def test_filter_forwards_other_zones(srv):
    assert srv.resolver_port == srv.filter_port != srv.port
    assert srv.address == "127.0.0.1:%d" % srv.filter_port
    r = srv.query("2.0.0.127.bl.test", "A", port=srv.filter_port)
    assert rrset(r, "A") == ["127.0.0.2"]
    r = srv.query("host2.example.test", "A", port=srv.filter_port, tcp=True)
    assert rrset(r, "A") == ["127.0.0.2"]


def test_silent_zone_never_answers(srv):
    # NSD itself serves the zone; only the filter keeps quiet about it
    assert rrset(srv.query("2.0.0.127.slow.test", "A"), "A") == ["127.0.0.2"]
    t0 = time.monotonic()
    with pytest.raises(dns.exception.Timeout):
        srv.query("2.0.0.127.slow.test", "A", port=srv.filter_port, timeout=0.3)
    assert time.monotonic() - t0 >= 0.3


def test_blackhole_never_answers(srv):
    with pytest.raises(dns.exception.Timeout):
        srv.query("host2.example.test", "A", port=srv.blackhole_port, timeout=0.3)


def test_bad_zone_fails_fast():
    with pytest.raises(ValueError, match="invalid"):
        DNSServer({"bad.test": ["host A not-an-address"]}).start()


def test_stop_frees_port():
    s = DNSServer({"one.test": ["a A 127.0.0.9"]}).start()
    port, tmp = s.port, s.dir
    assert rrset(s.query("a.one.test"), "A") == ["127.0.0.9"]
    s.stop()
    assert s.proc is None and s.dir is None
    assert not os.path.exists(tmp)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", port))  # NSD is gone: the port is free again
