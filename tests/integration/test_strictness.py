"""Protocol strictness: every rule of DESIGN.md "Protocol strictness", on raw sockets
(smtplib would normalise line endings and hide what is being tested)."""

import socket
import struct
import time

import pytest

from conftest import Closed, RawClient, queue_id, check_received, send_data


def session_continues(c: RawClient, allowed_between=()):
    """After an error: NOOP still gets 250 2.0.0. Replies arriving before the
    NOOP's must have a code in allowed_between."""
    c.send(b"NOOP\r\n")
    for _ in range(3):
        r = c.read_reply()
        if r.code == 250 and r.status == "2.0.0":
            return
        assert r.code in allowed_between, "unexpected reply %r before the NOOP's" % r
    raise AssertionError("NOOP was not answered with 250 2.0.0")


def nothing_queued(gw, sink, wait: float = 0.5):
    sink.wait_quiet(0, wait)
    assert not gw.log_lines(r"event=queued"), gw.log_lines(r"event=queued")


def start_data(c: RawClient, rcpt: str = "b@example.test"):
    c.ehlo()
    c.cmd("MAIL FROM:<a@client.test>").check(250, "2.1.0")
    c.cmd("RCPT TO:<%s>" % rcpt).check(250, "2.1.5")
    c.cmd("DATA").check(354, None, "End data with")


# -- command lines ---------------------------------------------------------------
def test_bare_lf_in_command(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(b"VRFY x\nVRFY y\r\n")
        c.read_reply().check(500, "5.5.2", "bare <LF>")
        # Whether the text after the bare LF is read as a new line is the
        # server's choice; a VRFY answer (252) is the only thing it may produce.
        session_continues(c, allowed_between=(252,))


def test_bare_lf_does_not_run_mail(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@client.test>\nX\r\n")
        r = c.read_reply().check(500, "5.5.2", "bare <LF>")
        c.send(b"NOOP\r\n")
        r = c.read_reply()
        if r.code == 500:  # "X" taken as a line of its own: unknown command
            r.check(500, "5.5.1")
            r = c.read_reply()
        r.check(250, "2.0.0")
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")


@pytest.mark.parametrize("line", [b"NO\rOP", b"NOOP\r", b"\rNOOP", b"MAIL FROM:<a@client.test>\r"])
def test_bare_cr_in_command(gateway, line):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(line + b"\r\n")
        c.read_reply().check(500, "5.5.2", "bare <CR>")
        session_continues(c)
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")


@pytest.mark.parametrize("line", [b"NO\x00OP", b"\x00", b"MAIL FROM:<a\x00@client.test>",
                                  b"MAIL FROM:<a@client.test>\x00"])
def test_nul_in_command(gateway, line):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(line + b"\r\n")
        c.read_reply().check(500, "5.5.2", "NUL")
        session_continues(c)
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")


def test_command_line_600_octets(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        line = b"NOOP " + b"x" * 593 + b"\r\n"
        assert len(line) == 600
        c.send(line)
        c.read_reply().check(500, "5.5.2", "too long")
        c.cmd("NOOP").check(250, "2.0.0")  # exactly one reply to the long line
        c.expect_silence(0.3)


def test_long_mail_command_not_executed(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * 600 + b"@client.test>\r\n")
        c.read_reply().check(500, "5.5.2", "too long")
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")


def test_huge_command_line_not_buffered(gateway):
    """200 kB without a CRLF: one 500, the session goes on, the daemon survives."""
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        chunk = b"x" * 8192
        for _ in range(25):
            c.send(chunk)
        c.send(b"\r\n")
        c.read_reply(timeout=10).check(500, "5.5.2", "too long")
        c.cmd("NOOP").check(250, "2.0.0")
    assert gw.running


def test_command_line_512_octets_is_fine(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        line = b"HELO " + b"a" * 505 + b"\r\n"
        assert len(line) == 512
        c.send(line)
        r = c.read_reply()
        assert not (r.code == 500 and r.status == "5.5.2"), "512-octet line refused: %r" % r


# -- DATA -------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [b"line one\nline two\r\n", b"line one\rline two\r\n",
                                 b"ends in bare LF\n", b"\n", b"\r\r\n"])
def test_bare_cr_or_lf_in_data(gateway, sink, bad):
    gw = gateway()
    with RawClient(gw.port) as c:
        start_data(c)
        c.send(b"Subject: bare\r\n\r\n" + bad)
        c.expect_silence(0.4)  # the verdict only comes after the real end
        c.send(b"more text\r\n.\r\n")
        c.read_reply().check(550, "5.6.0", "bare")
        c.cmd("NOOP").check(250, "2.0.0")
        # The transaction is over: a new one can start.
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")
    nothing_queued(gw, sink)
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.1 stage=data code=550 status=5\.6\.0")


@pytest.mark.parametrize("sep", [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n", b"\r\n.\r"],
                         ids=["LF.CRLF", "CRLF.LF", "LF.LF", "CR.CRLF", "CRLF.CR"])
def test_smtp_smuggling(gateway, sink, sep):
    """A fake end of DATA followed by commands: the commands stay message text,
    the whole DATA gets exactly one reply (a 550 5.6.0), nothing is delivered."""
    gw = gateway()
    smuggled = (b"MAIL FROM:<evil@other.test>\r\n"
                b"RCPT TO:<victim@example.test>\r\n"
                b"DATA\r\n"
                b"From: <ceo@example.test>\r\nSubject: smuggled\r\n\r\nsmuggled\r\n")
    with RawClient(gw.port) as c:
        start_data(c, rcpt="legit@example.test")
        c.send(b"Subject: carrier\r\n\r\nhello" + sep + smuggled + b".\r\n")
        c.read_reply().check(550, "5.6.0", "bare")
        c.send(b"NOOP\r\n")
        c.read_reply().check(250, "2.0.0")  # and not a reply to a smuggled command
        c.expect_silence(0.3)
    nothing_queued(gw, sink)


def test_smuggling_inside_accepted_message_is_text(gateway, sink):
    """A proper CRLF..CRLF (stuffed dot) followed by commands is plain text."""
    gw = gateway()
    body = (b"Subject: stuffed\r\n\r\nhello\r\n..\r\nMAIL FROM:<evil@other.test>\r\n"
            b"RCPT TO:<victim@example.test>\r\nDATA\r\nx\r\n")
    with RawClient(gw.port) as c:
        start_data(c)
        c.send(body + b".\r\n")
        r = c.read_reply().check(250, "2.0.0")
        c.cmd("NOOP").check(250, "2.0.0")
    m = sink.wait_for(1)[0]
    assert m.rcpt_tos == ["b@example.test"]
    check_received(m.content, body.replace(b"\r\n..\r\n", b"\r\n.\r\n"), queue_id(r.text),
                   rcpt="b@example.test")
    sink.wait_quiet(1, 0.3)


def test_text_line_1200_octets(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        start_data(c)
        c.send(b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\r\n")
        c.expect_silence(0.4)
        c.send(b"end\r\n.\r\n")
        c.read_reply().check(500, "5.5.2", "too long")
        c.cmd("NOOP").check(250, "2.0.0")
    nothing_queued(gw, sink)


def test_text_line_of_1000_octets_is_fine(gateway, sink):
    gw = gateway()
    line = b"y" * 998 + b"\r\n"
    dotline = b"." + b"z" * 997 + b"\r\n"  # 1000 octets as the message line; 1001 stuffed
    msg = b"Subject: limit\r\n\r\n" + line + dotline
    with RawClient(gw.port) as c:
        start_data(c)
        c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        r = c.read_reply().check(250, "2.0.0")
    check_received(sink.wait_for(1)[0].content, msg, queue_id(r.text), rcpt="b@example.test")


def test_message_size_limit(gateway, sink):
    gw = gateway(limits={"max_message_size": 10000})
    with RawClient(gw.port) as c:
        r = c.ehlo()
        assert "SIZE 10000" in r.texts, r
        c.cmd("MAIL FROM:<a@client.test> SIZE=20000").check(552, "5.3.4", "exceeds")
        c.cmd("MAIL FROM:<a@client.test> SIZE=5000").check(250, "2.1.0")
        c.cmd("RCPT TO:<b@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: big\r\n\r\n")
        for _ in range(200):
            c.send(b"z" * 98 + b"\r\n")
        c.send(b".\r\n")
        c.read_reply().check(552, "5.3.4", "too big")
        c.cmd("NOOP").check(250, "2.0.0")
        # A small one still goes through on the same connection.
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(b"Subject: small\r\n\r\nsmall\r\n.\r\n")
        c.read_reply().check(250, "2.0.0")
    m = sink.wait_for(1)[0]
    assert b"Subject: small" in m.content
    sink.wait_quiet(1, 0.3)


def test_max_recipients(gateway, sink):
    gw = gateway(limits={"max_recipients": 3})
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        for i in range(3):
            c.cmd("RCPT TO:<r%d@example.test>" % i).check(250, "2.1.5")
        c.cmd("RCPT TO:<r3@example.test>").check(452, "4.5.3", "too many recipients")
        c.cmd("DATA").check(354)
        c.send(b"Subject: three\r\n\r\nx\r\n.\r\n")
        c.read_reply().check(250, "2.0.0")
    sink.wait_for(1)
    time.sleep(0.5)
    got = sorted(r for m in sink.messages for r in m.rcpt_tos)
    assert got == ["r0@example.test", "r1@example.test", "r2@example.test"], got


def test_max_errors(gateway):
    gw = gateway(limits={"max_errors": 3})
    with RawClient(gw.port) as c:
        codes = []
        try:
            for i in range(4):
                c.send(b"BOGUS%d\r\n" % i)
                r = c.read_reply()
                codes.append(r)
                if r.code == 421:
                    break
                r.check(500, "5.5.1", "not recognized")
                if i == 2:  # the 3rd error: a 421 must follow at once
                    codes.append(c.read_reply().check(421, "4.7.0", "too many errors"))
                    break
        except Closed as e:
            raise AssertionError("closed without a 421 after %r: %s" % (codes, e))
        assert codes[-1].code == 421, codes
        codes[-1].check(421, "4.7.0", "mx.example.test", "too many errors")
        assert len(codes) in (3, 4), "421 came after %d replies: %r" % (len(codes), codes)
        c.expect_closed()
    gw.wait_log(r"event=disconnect .*reason=errors")


def test_max_commands(gateway):
    gw = gateway(limits={"max_commands": 5})
    with RawClient(gw.port) as c:
        ok = 0
        for _ in range(8):
            c.send(b"NOOP\r\n")
            r = c.read_reply()
            if r.code == 421:
                r.check(421, "4.7.0", "too many commands")
                break
            r.check(250)
            ok += 1
        else:
            raise AssertionError("no 421 after 8 commands with max_commands = 5")
        assert ok in (4, 5), "421 after %d good commands" % ok
        c.expect_closed()


def test_command_timeout(gateway):
    gw = gateway(timeouts={"command": 2})
    with RawClient(gw.port) as c:
        c.ehlo()
        t0 = time.monotonic()
        c.read_reply(timeout=6).check(421, "4.4.2", "timeout")
        took = time.monotonic() - t0
        assert 1.5 <= took <= 5, "timeout after %.1f s with command = 2" % took
        c.expect_closed()
    gw.wait_log(r"event=disconnect .*reason=timeout")


def test_data_timeout(gateway, sink):
    gw = gateway(timeouts={"command": 30, "data": 2})
    with RawClient(gw.port) as c:
        start_data(c)
        c.send(b"Subject: stalled\r\n\r\nhalf a mess")
        c.read_reply(timeout=6).check(421, "4.4.2", "timeout")
        c.expect_closed()
    nothing_queued(gw, sink)


def test_per_ip_connection_limit(gateway):
    gw = gateway(limits={"max_connections_per_ip": 2})
    c1, c2 = RawClient(gw.port), RawClient(gw.port)
    try:
        c1.greeting.check(220)
        c2.greeting.check(220)
        c3 = RawClient(gw.port, greeting=False)
        c3.read_reply().check(421, "4.7.0", "too many connections from your address")
        c3.expect_closed()
        c3.close()
        # Another client address is not affected.
        with RawClient(gw.port, source="127.0.0.2") as other:
            other.greeting.check(220)
        # When one leaves, there is room again.
        c1.cmd("QUIT").check(221)
        c1.expect_closed()
        deadline = time.monotonic() + 3
        while True:
            with RawClient(gw.port, greeting=False) as c4:
                r = c4.read_reply()
                if r.code == 220:
                    break
            assert time.monotonic() < deadline, "slot not freed after QUIT"
            time.sleep(0.1)
    finally:
        c1.close()
        c2.close()


def test_total_connection_limit(gateway):
    gw = gateway(limits={"max_connections": 3})
    clients = [RawClient(gw.port, source="127.0.0.%d" % i) for i in (1, 2, 3)]
    try:
        for c in clients:
            c.greeting.check(220)
        with RawClient(gw.port, source="127.0.0.4", greeting=False) as c4:
            c4.read_reply().check(421, "4.7.0", "too many connections")
            c4.expect_closed()
    finally:
        for c in clients:
            c.close()


def test_early_talker(gateway):
    gw = gateway(timeouts={"greeting_delay": 2})
    with RawClient(gw.port, greeting=False) as c:
        c.send(b"EHLO impatient.test\r\n")
        c.read_reply(timeout=6).check(554, "5.5.0", "talked before greeting")
        c.expect_closed()
    with RawClient(gw.port, greeting=False) as c:
        t0 = time.monotonic()
        c.read_reply(timeout=6).check(220)
        assert time.monotonic() - t0 >= 1.5, "greeting not delayed"
        c.ehlo()


def test_pipelining(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.send(b"EHLO pipe.test\r\nMAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
        c.read_reply().check(250)
        c.read_reply().check(250, "2.1.0")
        c.read_reply().check(250, "2.1.5")
        c.read_reply().check(250, "2.1.5")
        c.read_reply().check(354)
        c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        r = c.read_reply().check(250, "2.0.0", "queued as")
        c.read_reply().check(250, "2.0.0")
        c.read_reply().check(221, "2.0.0")
        c.expect_closed()
    m = sink.wait_for(1)[0]
    check_received(m.content, b"Subject: pipelined\r\n\r\nbody\r\n", queue_id(r.text),
                   helo="pipe.test")


def test_pipelining_with_errors_in_order(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.send(b"EHLO pipe.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<x@other.test>\r\n"
               b"RCPT TO:<ok@example.test>\r\nRSET\r\nDATA\r\nNOOP\r\n")
        c.read_reply().check(250)
        c.read_reply().check(250, "2.1.0")
        c.read_reply().check(554, "5.7.1", "Relay access denied")
        c.read_reply().check(250, "2.1.5")
        c.read_reply().check(250, "2.0.0")
        c.read_reply().check(503, "5.5.1")
        c.read_reply().check(250, "2.0.0")


def test_sequence_errors(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.cmd("MAIL FROM:<a@client.test>").check(503, "5.5.1", "send HELO/EHLO first")
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1")
        c.ehlo()
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")
        c.cmd("DATA").check(503, "5.5.1")
        c.cmd("MAIL FROM:<a@client.test>").check(250, "2.1.0")
        c.cmd("MAIL FROM:<a@client.test>").check(503, "5.5.1", "nested MAIL")
        c.cmd("DATA").check(503, "5.5.1", "need RCPT")
    with RawClient(gw.port) as c:
        c.cmd("EXPN staff").check(502, "5.5.1", "not implemented")
        c.cmd("XYZZY").check(500, "5.5.1", "not recognized")
        c.cmd("EHLO").check(501, "5.5.4", "Syntax: EHLO")
        c.cmd("HELO").check(501, "5.5.4", "Syntax: HELO")
        c.cmd("AUTH PLAIN AGFAAGI=").check(502, "5.5.1")
        c.cmd("STARTTLS").check(502, "5.5.1", "not implemented")


def test_address_syntax(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<no-domain>").check(501, "5.1.7", "Bad sender address")
        c.cmd("MAIL FROM:<a@client.test> FROBNICATE=1").check(555, "5.5.4", "Unsupported")
        c.cmd("MAIL FROM:<a@client.test>").check(250, "2.1.0")
        c.cmd("RCPT TO:<>").check(501, "5.1.3", "Bad recipient address")
        c.cmd("RCPT TO:<nodomain>").check(501, "5.1.3")
        c.cmd("RCPT TO:<a@bad..example.test>").check(501, "5.1.3")
        c.cmd("RCPT TO:<" + "l" * 65 + "@example.test>").check(501, "5.1.3")
        c.cmd("RCPT TO:<b@example.test>").check(250, "2.1.5")


def test_reject_is_logged(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<x@other.test>").check(554, "5.7.1")
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.1 stage=rcpt code=554 status=5\.7\.1 "
                r"reason=.*from=<a@client\.test>.*rcpt=<x@other\.test>")


def test_many_bad_sessions_daemon_survives(gateway, sink):
    """Garbage, half-open connections and resets do not hurt the daemon."""
    gw = gateway()
    junk = [b"\x00" * 100 + b"\r\n", b"\xff\xfe\r\n" * 50, b"EHLO x\r\nMAIL FROM:<\r\n",
            b"DATA\r\n" * 20, b"\r\n" * 200, bytes(range(256)) + b"\r\n"]
    for j in junk:
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=2)
        try:
            s.sendall(j)
            s.recv(4096)
        except OSError:
            pass
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
    with RawClient(gw.port) as c:
        send_data(c, "a@client.test", ["b@example.test"],
                  b"Subject: still alive\r\n\r\nx\r\n.\r\n").check(250, "2.0.0")
    sink.wait_for(1)
    assert gw.running
