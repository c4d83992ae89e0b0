"""test_milter_real.py - the milter check with real milters from Debian (milters_env.py).

rspamd's proxy worker in milter mode refuses GTUBE with its own reply and tags
a clean message (its X-Spamd-Result field at the internal server, its queue id
ours); clamav-milter, before a clamd whose only signature is the EICAR test
string written by the test, refuses EICAR and marks clean mail; OpenDKIM in
signing mode signs, and its DKIM-Signature verifies with dkimpy against the
key published in the test DNS (NSD); the three together, in order, on one
message. Each daemon starts once for the module.
"""

import re

import dkim
import dns.message
import dns.query
import dns.rdatatype
import pytest

from checks_env import checks_gateway, wait_stats
from conftest import make_message, queue_id, smtp_send
from dnsserver import DNSServer
from milters_env import EICAR, ClamMilter, OpenDKIM, Rspamd

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SIGNER = "signer.test"


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    r = Rspamd(tmp_path_factory.mktemp("rspamd")).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def clam(tmp_path_factory):
    c = ClamMilter(tmp_path_factory.mktemp("clam")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def opendkim(tmp_path_factory):
    o = OpenDKIM(tmp_path_factory.mktemp("opendkim"), SIGNER).start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def key_dns(opendkim):
    value = opendkim.txt_record
    parts = " ".join('"%s"' % value[i:i + 250] for i in range(0, len(value), 250))
    srv = DNSServer({SIGNER: ["%s._domainkey TXT %s" % (opendkim.selector, parts)]}).start()
    yield srv
    srv.stop()


def gw_with(gateway, milters, extra=""):
    text = "".join('milter "%s" { socket = "%s" timeout = 60 }\n' % (n, s) for n, s in milters)
    return checks_gateway(gateway, ["milter"], sections=text + extra)


def send(gw, body=b"Hello, a clean test message.\r\n", sender="alice@%s" % SIGNER):
    msg = make_message(subject="real milter", body=body, sender=sender)
    return smtp_send(gw.port, sender, ["bob@example.test"], msg, source="127.0.0.1")


def dns_txt(srv: DNSServer):
    """dkimpy's dnsfunc, asking the test NSD."""
    def fn(name, timeout=5):
        q = dns.message.make_query(name.decode(), dns.rdatatype.TXT)
        r = dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=timeout)
        for rrset in r.answer:
            for rd in rrset:
                return b"".join(rd.strings)
        return b""
    return fn


def test_rspamd_refuses_gtube(gateway, sink, rspamd):
    gw = gw_with(gateway, [("rspamd", rspamd.socket)])
    code, text = send(gw, body=b"Spam test:\r\n" + GTUBE + b"\r\n")
    # rspamd answers GTUBE with its own SMFIR_REPLYCODE, given as it is
    assert (code, text) == (554, "5.7.1 Gtube pattern")
    gw.wait_log(r'event=milter name="?rspamd"? stage=end action=reject client=127.0.0.1 '
                r'code=554 status=5\.7\.1 text="Gtube pattern"')
    wait_stats(gw, verdicts={"milter:rspamd.reject": 1})
    sink.wait_quiet(0, quiet=0.5)


def test_rspamd_tags_a_clean_message(gateway, sink, rspamd):
    gw = gw_with(gateway, [("rspamd", rspamd.socket)])
    code, text = send(gw)
    assert code == 250, text
    got = sink.wait_for(1)[0].content
    head = got.split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"\r\nX-Spamd-Result: default: False \[", b"\r\n" + head), head
    assert b"X-Rspamd-Queue-Id: " + queue_id(text).encode() in head
    assert got.endswith(b"\r\n\r\nHello, a clean test message.\r\n")


def test_clamav_milter_refuses_eicar(gateway, sink, clam):
    gw = gw_with(gateway, [("clamav", clam.socket)])
    code, text = send(gw, body=EICAR + b"\r\n")
    assert code == 550 and "Mxgate-Test-EICAR" in text, (code, text)
    gw.wait_log(r'event=milter name="?clamav"? stage=end action=reject .*Mxgate-Test-EICAR')
    code, text = send(gw)
    assert code == 250, text
    head = sink.wait_for(1)[0].content.split(b"\r\n\r\n", 1)[0]
    assert b"X-Virus-Status: Clean" in head


def test_opendkim_signature_verifies(gateway, sink, opendkim, key_dns):
    gw = gw_with(gateway, [("opendkim", opendkim.socket)])
    code, text = send(gw, body=b"Signed by OpenDKIM\r\nthrough mxgate.\r\n")
    assert code == 250, text
    got = sink.wait_for(1)[0].content
    assert b"\r\nDKIM-Signature: " in b"\r\n" + got.split(b"\r\n\r\n", 1)[0]
    assert dkim.verify(got, dnsfunc=dns_txt(key_dns))
    assert not dkim.verify(got.replace(b"through mxgate", b"through evil"),
                           dnsfunc=dns_txt(key_dns))


def test_three_milters_in_order(gateway, sink, clam, rspamd, opendkim, key_dns):
    gw = gw_with(gateway, [("clamav", clam.socket), ("rspamd", rspamd.socket),
                           ("opendkim", opendkim.socket)])
    code, text = send(gw, body=GTUBE + b"\r\n")
    assert (code, text) == (554, "5.7.1 Gtube pattern")
    code, text = send(gw, body=EICAR + b"\r\n")
    assert code == 550 and "Mxgate-Test-EICAR" in text
    code, text = send(gw)
    assert code == 250
    got = sink.wait_for(1)[0].content
    head = got.split(b"\r\n\r\n", 1)[0]
    assert b"X-Virus-Status: Clean" in head and b"X-Spamd-Result:" in head
    assert dkim.verify(got, dnsfunc=dns_txt(key_dns))
    assert len(sink.messages) == 1
