"""test_checks_sender.py - the sender and score checks and identity-aware
greylisting, with the real daemon against a real NSD.

What a user sees: a sender domain that does not exist refused at MAIL
(550 5.1.8), a null-MX domain (550 5.7.27), our own domain from outside
refused at RCPT unless SPF passes, a header From: domain that does not exist
refused at the end of DATA, DNS trouble answered 451, a softfail scored and
tagged (X-Spam-Score / X-Spam-Status at the internal server), a score over the
limit refused with every check's points in the reject log line, an
SPF-authorised pool retrying from another address passing the greylist at its
second attempt, and the rows of `mxgatectl stats`.

Clients are 127.0.0.31..45 (no reverse zone: nothing here looks at names).
"""

import time

import pytest

from conftest import make_message, queue_id
from checks_env import checks_gateway, connect, read_stats, reject_line, say_quit, wait_stats
from dnsserver import DNSServer

ZONES = {
    "sender.test": [
        "mx.sender.test. MX 10 mail.sender.test.",
        "mail.sender.test. A 127.0.0.2",
        "aonly.sender.test. A 127.0.0.2",
        # RFC 7505: "." says the domain takes no mail, whatever its A record says
        "nullmx.sender.test. MX 0 .",
        "nullmx.sender.test. A 127.0.0.3",
        'norecords.sender.test. TXT "v=spf1 -all"',
        "soft.sender.test. MX 10 mail.sender.test.",
        'soft.sender.test. TXT "v=spf1 ~all"',
        "pool.sender.test. MX 10 mail.sender.test.",
        'pool.sender.test. TXT "v=spf1 ip4:127.0.0.41 ip4:127.0.0.42 -all"',
        "nospf.sender.test. MX 10 mail.sender.test.",
        "helo.sender.test. A 127.0.0.33",
    ],
    # our own domain: only 127.0.0.40 is authorised (softfail for the rest)
    "example.test": [
        "example.test. MX 10 mx.example.test.",
        'example.test. TXT "v=spf1 ip4:127.0.0.40 ~all"',
    ],
    "slow.test": [],
}


@pytest.fixture(scope="module")
def sender_dns():
    srv = DNSServer(ZONES, silent_zones=["slow.test"]).start()
    yield srv
    srv.stop()


def sender_gateway(gateway, dns, checks=("sender", "spf"), sections=""):
    return checks_gateway(gateway, list(checks), sections=sections, dns=dns.address)


def mail(gw, ip, sender, helo="helo.sender.test"):
    """Greeting, EHLO, MAIL: the client and the MAIL reply."""
    c = connect(gw, ip)
    c.greeting.check(220)
    c.ehlo(helo)
    return c, c.cmd("MAIL FROM:<%s>" % sender)


def send(c, rcpt="bob@example.test", author="alice@mx.sender.test"):
    """RCPT 250, DATA, a message from author: the reply to the final dot."""
    c.cmd("RCPT TO:<%s>" % rcpt).check(250, "2.1.5")
    c.cmd("DATA").check(354)
    c.send(make_message("sender", sender=author) + b".\r\n")
    return c.read_reply()


def test_sender_domains_must_exist(gateway, sink, sender_dns):
    gw = sender_gateway(gateway, sender_dns)
    c, r = mail(gw, "127.0.0.31", "a@nx.sender.test")
    r.check(550, "5.1.8", "Sender address rejected: domain nx.sender.test does not exist")
    r = c.cmd("MAIL FROM:<a@norecords.sender.test>")
    r.check(550, "5.1.8", "domain norecords.sender.test has no MX, A or AAAA record")
    r = c.cmd("MAIL FROM:<a@nullmx.sender.test>")
    r.check(550, "5.7.27", "domain nullmx.sender.test accepts no mail (null MX, RFC 7505)")
    # an A record alone is an implicit MX; the null sender is not checked
    c.cmd("MAIL FROM:<a@aonly.sender.test>").check(250, "2.1.0")
    c.cmd("RSET").check(250)
    c.cmd("MAIL FROM:<>").check(250, "2.1.0")
    say_quit(c)
    line = reject_line(gw, "127.0.0.31", 550, "5.1.8", "sender", stage="mail")
    assert 'reason="part=mailfrom domain=nx.sender.test result=nxdomain"' in line, line
    st = wait_stats(gw, verdicts={"sender.reject": 3})
    assert st.auth["sender"] == {"reject": 3, "tempfail": 0, "score": 0}, st.text
    assert st.auth["spf"]["reject"] == 0, st.text


def test_dns_trouble_is_a_temporary_refusal(gateway, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("sender",))
    c, r = mail(gw, "127.0.0.32", "a@never.slow.test")
    r.check(451, "4.1.8", "Sender address rejected: domain never.slow.test: cannot look it "
                          "up (timeout); try again later")
    say_quit(c)
    st = wait_stats(gw, verdicts={"sender.tempfail": 1})
    assert st.auth["sender"]["tempfail"] == 1, st.text


def test_helo_name_is_judged_at_rcpt(gateway, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("sender",),
                        sections='sender { helo_exists = "reject" }\n')
    c, r = mail(gw, "127.0.0.33", "a@mx.sender.test", helo="nx.sender.test")
    r.check(250, "2.1.0")  # a HELO refusal waits for RCPT, as every HELO check's
    c.cmd("RCPT TO:<bob@example.test>").check(
        550, "5.1.8", "Helo command rejected: host name nx.sender.test does not exist")
    c.cmd("RCPT TO:<postmaster@example.test>").check(250)  # RFC 5321 4.5.1
    say_quit(c)
    c, r = mail(gw, "127.0.0.33", "a@mx.sender.test", helo="[127.0.0.33]")
    r.check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    say_quit(c)


def test_our_own_domain_from_outside(gateway, sink, sender_dns):
    gw = sender_gateway(gateway, sender_dns, sections='spf { softfail = "dunno" }\n')
    c, r = mail(gw, "127.0.0.34", "ceo@example.test")
    r.check(250, "2.1.0")
    c.cmd("RCPT TO:<bob@example.test>").check(
        550, "5.7.1", "Sender address rejected: example.test is our own domain and SPF does not "
                      "authorise this client for it (SPF softfail)")
    say_quit(c)
    line = reject_line(gw, "127.0.0.34", 550, "5.7.1", "sender", stage="rcpt")
    assert 'reason="part=own domain=example.test spf=softfail"' in line, line
    # the address SPF authorises may use it
    c, r = mail(gw, "127.0.0.40", "ceo@example.test")
    r.check(250)
    queue_id(send(c, author="ceo@example.test").check(250, "2.0.0").text)
    say_quit(c)
    assert sink.wait_for(1)[0].mail_from == "ceo@example.test"


def test_header_from_must_exist(gateway, sink, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("sender",))
    c, r = mail(gw, "127.0.0.35", "a@mx.sender.test")
    r.check(250)
    send(c, author="service@nx.sender.test").check(
        550, "5.1.8", "Message rejected: From: header domain nx.sender.test does not exist")
    c, r = c, c.cmd("MAIL FROM:<a@mx.sender.test>")
    r.check(250)
    send(c, author="a@aonly.sender.test").check(250, "2.0.0")
    say_quit(c)
    reject_line(gw, "127.0.0.35", 550, "5.1.8", "sender", stage="data")
    assert len(sink.wait_for(1)) == 1


def test_softfail_is_scored_and_tagged(gateway, sink, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("sender", "spf", "score"),
                        sections='spf { softfail = "score"  score = 3 }\n'
                                 "score { tag = 3  tempfail = 0  reject = 15 }\n")
    c, r = mail(gw, "127.0.0.36", "a@soft.sender.test")
    r.check(250)
    send(c, author="a@soft.sender.test").check(250, "2.0.0")
    c, r = c, c.cmd("MAIL FROM:<a@mx.sender.test>")  # a new transaction starts from 0
    r.check(250)
    send(c).check(250, "2.0.0")
    say_quit(c)
    got = sink.wait_for(2)
    lines = got[0].content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"X-Spam-Score: 3" in lines, lines
    assert b"X-Spam-Status: Yes, score=3 required=3 tests=spf=3" in lines, lines
    lines = got[1].content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"X-Spam-Status: No, score=0 required=3 tests=none" in lines, lines
    st = wait_stats(gw, verdicts={"spf.score": 1})
    assert st.auth["spf"]["score"] == 1 and st.auth["score"]["reject"] == 0, st.text


def test_score_over_the_limit_names_every_checks_points(gateway, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("sender", "spf", "score"),
                        sections='sender { helo_exists = "score"  score = 8 }\n'
                                 'spf { softfail = "score"  score = 8  helo = false }\n'
                                 "score { tag = 5  tempfail = 10  reject = 15 }\n")
    c, r = mail(gw, "127.0.0.37", "a@soft.sender.test", helo="nohost.sender.test")
    r.check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(550, "5.7.1",
                                              "Message rejected as spam (score 16, limit 15)")
    say_quit(c)
    line = reject_line(gw, "127.0.0.37", 550, "5.7.1", "score", stage="rcpt")
    assert 'reason="score=16 required=15 tests=sender=8,spf=8"' in line, line
    # the HELO's points alone: over tempfail only after the softfail
    c, r = mail(gw, "127.0.0.37", "a@mx.sender.test", helo="nohost.sender.test")
    r.check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    say_quit(c)
    st = wait_stats(gw, verdicts={"score.reject": 1, "sender.score": 2})
    assert st.auth["score"]["reject"] == 1, st.text


GREYLIST = ("greylist {\n    delay = 1\n    retry_window = 3600\n    ipv4_prefix = 32\n"
            "    awl_count = 0\n%s}\n")


def rcpt_reply(gw, ip, sender):
    c, r = mail(gw, ip, sender, helo="[%s]" % ip)
    r.check(250)
    reply = c.cmd("RCPT TO:<bob@example.test>")
    return c, reply


def test_spf_pool_retrying_from_another_address_passes(gateway, sink, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("spf", "greylist"),
                        sections=GREYLIST % "")
    c, r = rcpt_reply(gw, "127.0.0.41", "news@pool.sender.test")
    r.check(451, "4.7.1", "Greylisted")
    say_quit(c)
    c, r = rcpt_reply(gw, "127.0.0.43", "news@nospf.sender.test")
    r.check(451, "4.7.1", "Greylisted")
    say_quit(c)
    time.sleep(1.2)
    # another machine of the pool, authorised by the same SPF record: the second attempt
    c, r = rcpt_reply(gw, "127.0.0.42", "news@pool.sender.test")
    r.check(250, "2.1.5")
    c.cmd("DATA").check(354)
    c.send(make_message("pool", sender="news@pool.sender.test") + b".\r\n")
    c.read_reply().check(250, "2.0.0")
    say_quit(c)
    assert sink.wait_for(1)[0].mail_from == "news@pool.sender.test"
    # without SPF a retry from another address is a new triplet
    c, r = rcpt_reply(gw, "127.0.0.44", "news@nospf.sender.test")
    r.check(451, "4.7.1", "Greylisted")
    say_quit(c)
    gw.wait_log(r'event=greylist_pass key="?gl:t:spf:pool\.sender\.test:news@pool\.sender\.test:'
                r'bob@example\.test"? reason="passed after \d+s"')


def test_spf_pass_can_skip_the_greylist(gateway, sender_dns):
    gw = sender_gateway(gateway, sender_dns, checks=("spf", "greylist"),
                        sections=GREYLIST % '    spf_pass = "skip"\n')
    c, r = rcpt_reply(gw, "127.0.0.41", "news@pool.sender.test")
    r.check(250, "2.1.5")
    say_quit(c)
    c, r = rcpt_reply(gw, "127.0.0.45", "news@nospf.sender.test")  # SPF none
    r.check(451, "4.7.1", "Greylisted")
    say_quit(c)
    gw.wait_log(r'event=greylist_pass key="?gl:t:spf:pool\.sender\.test:\S+"? '
                r'reason="spf-pass domain=pool\.sender\.test"')


def test_incoming_spam_fields_are_removed_where_we_score(gateway, sink, sender_dns):
    """A spammer's own "X-Spam-Status: No" must not reach the servers that sort on it."""
    gw = sender_gateway(gateway, sender_dns, checks=("sender", "spf", "score"),
                        sections="score { tag = 5  tempfail = 0  reject = 15 }\n")
    c, r = mail(gw, "127.0.0.37", "a@mx.sender.test")
    r.check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    c.cmd("DATA").check(354)
    c.send(b"X-Spam-Status: No, score=-100\r\nX-Spam-Score:\r\n -100\r\nx-spam-flag: NO\r\n"
           b"X-Spam-Statusbar: kept\r\nSubject: forged\r\nFrom: a@mx.sender.test\r\n\r\nbody\r\n.\r\n")
    c.read_reply().check(250, "2.0.0")
    say_quit(c)
    head = sink.wait_for(1)[0].content.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    assert [l for l in lines if l.lower().startswith(b"x-spam-")] == [
        b"X-Spam-Score: 0", b"X-Spam-Status: No, score=0 required=5 tests=none",
        b"X-Spam-Statusbar: kept"], lines
    assert b"-100" not in head
    assert gw.log_text().count("event=field_removed") == 3
    assert 'field=x-spam-flag why="ours to write"' in gw.log_text()
