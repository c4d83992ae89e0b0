"""test_checks_dkim.py - the dkim check (RFC 6376 at the end of DATA) against a real NSD.

The messages are tests/data/dkim/*.eml, signed by dkimpy and Mail::DKIM with
the keys beside them (make_fixtures.py); NSD serves the key records of
keys.txt under dkim.test. What a user sees: the reply to the final dot (250,
or 550 5.7.20 when `fail = "reject"`), the message at the internal server
byte for byte (still verifiable by dkimpy), the event=dkim log line of each
signature, the reject line and the dkim.* counters, and the
Authentication-Results field on top of the message.
"""

import re
from pathlib import Path
from typing import Dict

import dkim
import pytest

from checks_env import checks_gateway, reject_line, wait_stats
from conftest import smtp_send
from dnsserver import DNSServer

CLIENT = "127.0.0.22"
DATA = Path(__file__).resolve().parent.parent / "data" / "dkim"


def key_records() -> Dict[str, str]:
    """keys.txt: key name -> TXT value."""
    recs = {}
    for line in (DATA / "keys.txt").read_text().splitlines():
        name, value = line.split(" ", 1)
        recs[name] = value
    return recs


def zone_lines():
    """The key records in zone-file syntax, split into strings of 250 octets."""
    out = []
    for name, value in key_records().items():
        parts = " ".join('"%s"' % value[i:i + 250] for i in range(0, len(value), 250))
        out.append("%s. TXT %s" % (name, parts))
    return out


@pytest.fixture(scope="module")
def dkim_dns():
    srv = DNSServer({"dkim.test": zone_lines(), "slow.test": []},
                    silent_zones=["slow.test"]).start()
    yield srv
    srv.stop()


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def dkim_gateway(gateway, dns, section: str = ""):
    return checks_gateway(gateway, ["dkim"], sections="dkim {%s}\n" % section, dns=dns.address)


def send(gw, msg: bytes):
    """The message from CLIENT with smtplib (dot-stuffed); (code, text) of the final dot."""
    return smtp_send(gw.port, "alice@dkim.test", ["bob@example.test"], msg, source=CLIENT,
                     helo="mail.dkim.test")


def dkimpy_verifies(content: bytes) -> bool:
    """Every signature of content verifies with dkimpy, keys from keys.txt."""
    recs = key_records()

    def dnsfunc(name, timeout=5):
        return recs.get(name.decode().rstrip("."), "").encode()

    head = content.split(b"\r\n\r\n", 1)[0].lower()
    n = head.count(b"\ndkim-signature:") + head.startswith(b"dkim-signature:")
    d = dkim.DKIM(content)
    try:
        return n > 0 and all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n))
    except dkim.ValidationError:
        return False


def dkim_line(gw, selector: str, result: str, since: int = 0):
    return gw.wait_log(r"event=dkim client=%s result=%s domain=dkim.test selector=%s "
                       r"algo=(\S+) b=(\S+) testing=no reason=(.*)$"
                       % (re.escape(CLIENT), result, selector), since=since)


def test_messages_signed_by_dkimpy_and_mail_dkim_pass(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns, 'fail = "reject"')
    cases = [("py_rsa_relaxed.eml", "rsa2048", "rsa-sha256"),
             ("py_rsa_simple.eml", "rsa2048", "rsa-sha256"),
             ("py_ed25519.eml", "ed25519", "ed25519-sha256"),
             ("perl_rsa_relaxed.eml", "rsa2048", "rsa-sha256"),
             ("perl_rsa_simple.eml", "rsa2048", "rsa-sha256")]
    for i, (name, selector, algo) in enumerate(cases):
        msg = fixture(name)
        mark = gw.log_mark()
        code, text = send(gw, msg)
        assert code == 250, (name, code, text)
        m = dkim_line(gw, selector, "pass", since=mark)
        assert m.group(1) == algo, m.group(0)
        b = re.search(rb"\bb=([^;]+)", msg.split(b"\r\n\r\n")[0]).group(1)
        assert m.group(2) == re.sub(rb"\s", b"", b)[:8].decode(), m.group(0)
        got = sink.wait_for(i + 1)[i].content
        # the gateway adds fields on top and changes nothing of the message
        assert got.endswith(msg), (name, got[:600])
        assert dkimpy_verifies(got), name
    wait_stats(gw, verdicts={"dkim.reject": 0})


def test_two_signatures_each_logged(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns)
    code, text = send(gw, fixture("py_two.eml"))
    assert code == 250, (code, text)
    dkim_line(gw, "ed25519", "pass")
    dkim_line(gw, "rsa2048", "pass")
    assert sink.wait_for(1)[0].content.endswith(fixture("py_two.eml"))


def test_modified_message_fails_and_is_refused_when_configured(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns, 'fail = "reject"')
    msg = fixture("py_rsa_relaxed.eml").replace(b"Hello Bob", b"Hello Eve")
    code, text = send(gw, msg)
    assert (code, text) == (550, "5.7.20 DKIM: no valid signature"), (code, text)
    m = dkim_line(gw, "rsa2048", "fail")
    assert m.group(3) == '"body hash mismatch"', m.group(0)
    line = reject_line(gw, CLIENT, 550, "5.7.20", "dkim", stage="data")
    assert "result=fail domain=dkim.test signatures=1" in line, line
    msg = fixture("perl_rsa_relaxed.eml").replace(b"Subject: A  test", b"Subject: A  tent")
    code, text = send(gw, msg)
    assert code == 550, (code, text)
    wait_stats(gw, stopped={"dkim": 2}, verdicts={"dkim.reject": 2})
    assert sink.messages == []


def test_modified_message_is_accepted_by_default(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns)
    msg = fixture("py_ed25519.eml").replace(b"Hello Bob", b"Hello Eve")
    code, text = send(gw, msg)
    assert code == 250, (code, text)
    m = dkim_line(gw, "ed25519", "fail")
    assert m.group(3) == '"body hash mismatch"', m.group(0)
    assert not dkimpy_verifies(sink.wait_for(1)[0].content)


def test_rsa_sha1_is_refused_as_policy(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns)
    code, text = send(gw, fixture("py_rsa_sha1.eml"))
    assert code == 250, (code, text)
    m = dkim_line(gw, "rsa2048", "policy")
    assert m.group(3) == '"rsa-sha1 is not accepted (RFC 8301)"', m.group(0)


def test_key_lookup_timeout_is_temperror(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns, 'temperror = "tempfail"')
    msg = (fixture("py_rsa_relaxed.eml").replace(b"d=dkim.test;", b"d=dkim.slow.test;")
           .replace(b"i=@dkim.test;", b"i=@dkim.slow.test;"))
    code, text = send(gw, msg)
    assert (code, text) == (451, "4.4.3 DKIM: key lookup failed, try again later"), (code, text)
    m = gw.wait_log(r"event=dkim client=%s result=temperror domain=dkim\.slow\.test "
                    r"selector=rsa2048 .* reason=\"key lookup: timeout\"$" % re.escape(CLIENT))
    assert "testing=no" in m.group(0), m.group(0)
    wait_stats(gw, verdicts={"dkim.tempfail": 1})
    assert sink.messages == []


def auth_results(content: bytes):
    """The Authentication-Results fields of a message, unfolded, blanks as one SP."""
    head = re.sub(rb"\r\n([ \t])", rb"\1", content.split(b"\r\n\r\n", 1)[0]).decode()
    return [re.sub(r"\s+", " ", ln) for ln in head.split("\r\n")
            if ln.startswith("Authentication-Results:")]


def test_authentication_results_at_the_sink(gateway, sink, dkim_dns):
    gw = dkim_gateway(gateway, dkim_dns)
    good = fixture("py_two.eml")
    bad = fixture("py_ed25519.eml").replace(b"Hello Bob", b"Hello Eve")
    for msg in (good, bad):
        code, text = send(gw, msg)
        assert code == 250, (code, text)
    got = sink.wait_for(2)
    heads = good.split(b"\r\n\r\n")[0]
    b_ed, b_rsa = [re.sub(rb"\s", b"", b)[:8].decode()
                   for b in re.findall(rb"\bb=([^;]+)", heads)]
    ar = auth_results(got[0].content)
    assert got[0].content.startswith(b"Authentication-Results: "), got[0].content[:300]
    assert len(ar) == 1, ar
    assert re.fullmatch(r"Authentication-Results: mx\.example\.test; "
                        r"dkim=pass header\.d=dkim\.test header\.s=ed25519 header\.b=\"?%s\"?; "
                        r"dkim=pass header\.d=dkim\.test header\.s=rsa2048 header\.b=\"?%s\"?"
                        % (re.escape(b_ed), re.escape(b_rsa)), ar[0]), ar
    ar = auth_results(got[1].content)
    assert len(ar) == 1, ar
    assert re.fullmatch(r'Authentication-Results: mx\.example\.test; '
                        r'dkim=fail reason="body hash mismatch" header\.d=dkim\.test '
                        r'header\.s=ed25519 header\.b=\S+', ar[0]), ar
