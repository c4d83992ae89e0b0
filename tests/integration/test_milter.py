"""test_milter.py - the milter check against a scriptable milter (pymilter.py).

What a user sees: the SMTP reply (the milter's own reply code at RCPT or at
the end of DATA; 451 4.7.0 / 550 5.7.0 / 250 per on_error when the milter is
dead, slow or hostile), the message at the internal server byte for byte with
the milter's header and body changes, the event=milter / event=milter_error /
event=discarded log lines naming the milter, and the milter:NAME counters.
What mxgate sent the milter is asserted from the milter's side (the commands,
the macros, the header fields and the body).
"""

import re
import struct
import time

import pytest

from checks_env import checks_gateway, wait_stats
from conftest import RawClient, make_message, smtp_send, queue_id, wait_until
from pymilter import PyMilter, header, replycode

CLIENT = "127.0.0.1"


@pytest.fixture(scope="module")
def pym():
    m = PyMilter()
    yield m
    m.stop()


@pytest.fixture
def milter(pym):
    pym.reset()
    yield pym
    pym.reset()


def milter_gw(gateway, milters, checks=("milter",), extra=""):
    """milters: [(name, socket, options text)]"""
    text = "".join('milter "%s" { socket = "%s" %s }\n' % (n, s, o) for n, s, o in milters)
    return checks_gateway(gateway, list(checks), sections=text + extra)


def send(gw, msg=None, rcpts=("bob@example.test",), sender="alice@client.test"):
    """RawClient session; returns (mail reply, rcpt replies, data reply or None)."""
    msg = msg if msg is not None else make_message(subject="milter test")
    with RawClient(gw.port) as c:
        c.ehlo()
        mail = c.cmd("MAIL FROM:<%s>" % sender)
        rr = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        data = None
        if any(r.code == 250 for r in rr):
            d = c.cmd("DATA")
            assert d.code == 354, d
            c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
            data = c.read_reply()
        c.cmd("QUIT")
    return mail, rr, data


def parse_macros(payload: bytes):
    parts = payload[1:].split(b"\0")
    return payload[:1], dict(zip(parts[0::2], parts[1::2]))


def test_clean_message_passes_and_milter_sees_the_session(gateway, sink, milter):
    gw = milter_gw(gateway, [("py", milter.socket_spec, "")])
    msg = make_message(subject="hello", body=b"line one\r\n.dot line\r\n")
    mail, rr, data = send(gw, msg)
    assert data.code == 250, data
    qid = queue_id(data.text)
    got = sink.wait_for(1)[0]
    assert got.content.endswith(msg.split(b"\r\n\r\n", 1)[1])
    # the milter's QUIT comes after our session's end: wait for it
    wait_until(lambda: milter.seen and milter.commands()[-1:] == [b"Q"], what="milter QUIT")
    cmds = milter.commands()
    # negotiation, connect, helo, mail, rcpt, data, headers, EOH, body, EOM, quit
    assert cmds[0] == b"O"
    seq = [c for c in cmds if c != b"D"]
    assert seq[:5] == [b"O", b"C", b"H", b"M", b"R"], seq
    assert seq[-3:] == [b"B", b"E", b"Q"] or seq[-2:] == [b"E", b"Q"], seq
    seen = dict((c, p) for c, p in milter.seen[-1])
    host, rest = seen[b"C"].split(b"\0", 1)
    assert rest[:1] == b"4" and rest[3:].rstrip(b"\0") == b"127.0.0.1"
    assert seen[b"H"] == b"client.example.org\0"
    assert seen[b"M"] == b"<alice@client.test>\0"
    assert seen[b"R"] == b"<bob@example.test>\0"
    body = b"".join(p for c, p in milter.seen[-1] if c == b"B")
    assert body == b"line one\r\n.dot line\r\n"  # unstuffed
    headers = [p for c, p in milter.seen[-1] if c == b"L"]
    assert b"Subject\0hello\0" in headers
    macros = {}
    for c, p in milter.seen[-1]:
        if c == b"D":
            stage, kv = parse_macros(p)
            macros.setdefault(stage, {}).update(kv)
    assert macros[b"C"][b"j"] == b"mx.test" or macros[b"C"][b"j"]
    assert macros[b"C"][b"{client_addr}"] == b"127.0.0.1"
    assert macros[b"C"][b"{daemon_name}"] == b"mx"
    assert macros[b"M"][b"{mail_addr}"] == b"alice@client.test"
    assert macros[b"R"][b"{rcpt_addr}"] == b"bob@example.test"
    assert macros[b"E"][b"i"] == qid.encode()


def test_rcpt_refused_with_the_milters_own_reply(gateway, sink, milter):
    def rcpt(cmd, payload, idx):
        if b"nobody@" in payload:
            return [replycode("550 5.1.1 No such user here")]
        return None
    milter.on("R", rcpt)
    gw = milter_gw(gateway, [("py", milter.socket_spec, "")])
    mail, rr, data = send(gw, rcpts=("nobody@example.test", "bob@example.test"))
    assert (rr[0].code, rr[0].text) == (550, "5.1.1 No such user here"), rr[0]
    assert rr[1].code == 250
    assert data.code == 250
    assert sink.wait_for(1)[0].rcpt_tos == ["bob@example.test"]
    gw.wait_log(r'event=milter name="?py"? stage=rcpt action=reject client=127.0.0.1 code=550 '
                r'status=5.1.1 text="No such user here"')
    gw.wait_log(r"event=reject .*check=milter reason=\"milter py: reject\"")


def test_end_of_data_modifications_reach_the_delivered_message(gateway, sink, milter):
    def eom(cmd, payload, idx):
        return [(b"h", header("X-Filtered", "yes\n\tfolded")),
                (b"m", struct.pack(">I", 1) + header("Subject", "[tagged] hello")),
                (b"m", struct.pack(">I", 2) + header("X-Remove", "")),
                (b"b", b"new body\n.starts with dot\n"),
                (b"a", b"")]
    milter.on("E", eom)
    gw = milter_gw(gateway, [("py", milter.socket_spec, "")])
    msg = (b"From: alice@client.test\r\nTo: bob@example.test\r\nSubject: hello\r\n"
           b"X-Remove: first\r\nX-Remove: second\r\n\r\nold body\r\n")
    mail, rr, data = send(gw, msg)
    assert data.code == 250, data
    got = sink.wait_for(1)[0].content
    head, body = got.split(b"\r\n\r\n", 1)
    assert body == b"new body\r\n.starts with dot\r\n"
    assert b"\r\nSubject: [tagged] hello\r\n" in head + b"\r\n"
    assert b"X-Remove: first\r\n" in head + b"\r\n"
    assert b"X-Remove: second" not in head
    assert b"X-Filtered: yes\r\n\tfolded" in head
    gw.wait_log(r'event=edit sid=\S+ id=\S+ by="milter py" fields=2 body=replaced')


def test_discard_accepts_and_drops(gateway, sink, milter):
    milter.on("E", lambda c, p, i: [(b"h", header("X-Dropped", "1")), (b"d", b"")])
    gw = milter_gw(gateway, [("py", milter.socket_spec, "")])
    mail, rr, data = send(gw)
    assert data.code == 250
    gw.wait_log(r'event=discarded sid=\S+ id=\S+ client=127.0.0.1 from=<alice@client.test> '
                r'nrcpt=1 check=milter reason="milter py: discard"')
    gw.wait_log(r'event=milter name="?py"? stage=end action=discard')
    sink.wait_quiet(0, quiet=1.0)
    wait_stats(gw, verdicts={"milter:py.discard": 1, "milter.ok": 1})
    # in one session: a discarded message, then one delivered with nothing of the first
    calls = []
    milter.on("E", lambda c, p, i: calls.append(1) or (
        [(b"h", header("X-Dropped", "1")), (b"d", b"")] if len(calls) == 1 else None))
    with RawClient(gw.port) as c:
        c.ehlo()
        for n in range(2):
            assert c.cmd("MAIL FROM:<alice@client.test>").code == 250
            assert c.cmd("RCPT TO:<bob@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(make_message(subject="n%d" % n) + b".\r\n")
            assert c.read_reply().code == 250
    got = sink.wait_for(1)[0].content
    assert b"Subject: n1" in got and b"X-Dropped" not in got
    sink.wait_quiet(1, quiet=0.5)


def test_reject_at_end_with_default_code(gateway, sink, milter):
    milter.on("E", lambda c, p, i: [(b"r", b"")])
    gw = milter_gw(gateway, [("py", milter.socket_spec, "")])
    mail, rr, data = send(gw)
    assert (data.code, data.text) == (550, "5.7.1 Command rejected")
    sink.wait_quiet(0, quiet=0.5)


@pytest.mark.parametrize("reply", [
    b"250 2.0.0 fine\0",              # not a refusal
    b"550 5.7.1 evil\x1b[31m\0",      # a control in the text
    b"550 5.7.1 no nul",              # unterminated
    b"5xx bad\0",
])
def test_hostile_replycode_is_a_protocol_error(gateway, sink, milter, reply):
    milter.on("E", lambda c, p, i: [(b"y", reply)])
    gw = milter_gw(gateway, [("py", milter.socket_spec, "")])
    mail, rr, data = send(gw)
    assert (data.code, data.text) == (451, "4.7.0 Service unavailable - try again later")
    gw.wait_log(r'event=milter_error name="?py"? stage=end client=127.0.0.1 error=protocol '
                r'why=\S+ on_error=tempfail')


def test_header_injection_is_refused(gateway, sink, milter):
    milter.on("E", lambda c, p, i: [(b"h", header("X-A", "a\r\nBcc: victim@example.test")),
                                    (b"a", b"")])
    gw = milter_gw(gateway, [("py", milter.socket_spec, 'on_error = "accept"')])
    mail, rr, data = send(gw)
    assert data.code == 250
    got = sink.wait_for(1)[0].content
    assert b"Bcc" not in got and b"X-A" not in got
    gw.wait_log(r"error=protocol why=header-value-break on_error=accept")


@pytest.mark.parametrize("on_error,code,text", [
    ("tempfail", 451, "4.7.0 Service unavailable - try again later"),
    ("reject", 550, "5.7.0 Message content rejected"),
    ("accept", 250, None),
])
def test_slow_milter_times_out_to_on_error(gateway, sink, milter, on_error, code, text):
    milter.on("T", lambda c, p, i: 3)  # DATA answered after 3 s, timeout 1 s
    gw = milter_gw(gateway, [("slow", milter.socket_spec,
                              'timeout = 1 on_error = "%s"' % on_error)])
    t0 = time.monotonic()
    mail, rr, data = send(gw)
    assert time.monotonic() - t0 < 2.9
    assert data.code == code, data
    if text:
        assert data.text == text
    else:
        sink.wait_for(1)
    gw.wait_log(r'event=milter_error name="?slow"? stage=end client=127.0.0.1 error=timeout '
                r'why="?no-answer"? on_error=%s' % on_error)
    assert len(gw.log_lines(r"event=milter_error")) == 1
    wait_stats(gw, verdicts={"milter:slow.timeout": 1, "milter:slow.error": 1})


def test_garbage_and_disconnect(gateway, sink, milter):
    milter.on("M", lambda c, p, i: b"\xff\xff\xff\xffgarbage")
    gw = milter_gw(gateway, [("bad", milter.socket_spec, "")])
    mail, rr, data = send(gw)
    assert (mail.code, mail.text) == (451, "4.7.0 Service unavailable - try again later")
    gw.wait_log(r"error=protocol why=\"?packet-length\"?")
    milter.on("M", lambda c, p, i: "close")
    mail, rr, data = send(gw)
    assert mail.code == 451
    gw.wait_log(r"error=closed why=\"?eof\"?")


def test_dead_milter_tempfails_at_rcpt(gateway, sink):
    gw = milter_gw(gateway, [("down", "inet:127.0.0.1:9", "")])
    mail, rr, data = send(gw)
    # the connect-stage failure is held; the dead milter answers MAIL itself
    assert (mail.code, mail.text) == (451, "4.7.0 Service unavailable - try again later")
    assert rr[0].code == 503 and data is None
    gw.wait_log(r'event=milter_error name="?down"? stage=connect client=127.0.0.1 error=connect')
    # once per session (the readiness probe's and ours), not once per stage
    assert len(gw.log_lines(r"event=milter_error")) == 2


def test_two_milters_in_order(gateway, sink, milter, pym):
    second = PyMilter()
    try:
        milter.on("E", lambda c, p, i: [(b"h", header("X-First", "1")), (b"a", b"")])
        second.on("E", lambda c, p, i: [replycode("554 5.7.1 Second says no")])
        gw = milter_gw(gateway, [("one", milter.socket_spec, ""),
                                 ("two", second.socket_spec, "")])
        mail, rr, data = send(gw)
        assert (data.code, data.text) == (554, "5.7.1 Second says no")
        second.on("E", None)
        mail, rr, data = send(gw)
        assert data.code == 250
        assert b"X-First: 1\r\n" in sink.wait_for(1)[0].content
    finally:
        second.stop()


def test_spam_header_scores(gateway, sink, milter):
    milter.on("E", lambda c, p, i: [(b"h", header("X-Spam", "Yes")), (b"a", b"")])
    gw = milter_gw(gateway, [("py", milter.socket_spec, "score = 7")],
                   checks=("milter", "score"), extra="score { tag = 5 reject = 20 }\n")
    mail, rr, data = send(gw)
    assert data.code == 250
    got = sink.wait_for(1)[0].content
    assert b"X-Spam-Status: Yes, score=7 required=5 tests=milter=7" in got
    assert b"X-Spam: Yes" in got
