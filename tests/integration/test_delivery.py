"""Delivery end to end: client -> mxgated -> internal server, byte for byte."""

import re

from conftest import (HOSTNAME, RawClient, check_received, make_message, queue_id,
                      send_data, smtp_queue, split_received, wait_until)


def test_greeting_and_ehlo(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.greeting.check(220)
        assert c.greeting.lines == ["220 %s ESMTP mxgate" % HOSTNAME]
        r = c.cmd("EHLO client.example.org").check(250)
        assert r.lines[0] == "250-%s Hello client.example.org [127.0.0.1]" % HOSTNAME
        kw = [t.split(" ")[0].upper() for t in r.texts[1:]]
        for ext in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"):
            assert ext in kw, "%s not advertised: %r" % (ext, r)
        assert "SIZE 10240000" in r.texts, r
        assert "STARTTLS" not in kw, "STARTTLS advertised without a tls section: %r" % r
        assert r.lines[-1] == "250 ENHANCEDSTATUSCODES", r
        c.cmd("HELO client.example.org").check(250)
        assert c.cmd("HELO client.example.org").lines == ["250 %s" % HOSTNAME]


def test_message_arrives_byte_for_byte_with_received(gateway, sink):
    gw = gateway()
    msg = make_message("byte for byte", body=b"Line one.\r\n\r\n  indented line \t\r\nlast\r\n")
    qid = smtp_queue(gw.port, "alice@client.test", ["bob@example.test"], msg)
    m = sink.wait_for(1)[0]
    assert m.mail_from == "alice@client.test"
    assert m.rcpt_tos == ["bob@example.test"]
    check_received(m.content, msg, qid, rcpt="bob@example.test")
    gw.wait_log(r"event=queued sid=\S+ id=%s client=127\.0\.0\.1 from=<alice@client\.test> "
                r"nrcpt=1 size=\d+" % qid)
    gw.wait_log(r"event=delivered id=%s rcpt=<bob@example\.test> relay=\S+ reply=\"250 " % qid)
    gw.wait_log(r"event=connect sid=\S+ client=127\.0\.0\.1 port=\d+ listener=mx")


def test_queued_reply_format(gateway, sink):
    gw = gateway()
    msg = make_message("reply format")
    with RawClient(gw.port) as c:
        r = send_data(c, "a@client.test", ["b@example.test"], msg + b".\r\n")
        r.check(250, "2.0.0")
        assert re.fullmatch(r"2\.0\.0 Ok: queued as [0-9A-F]{16}", r.text), r
        c.cmd("QUIT").check(221, "2.0.0", "Bye")
        c.expect_closed()
    qid = queue_id(r.text)
    check_received(sink.wait_for(1)[0].content, msg, qid, rcpt="b@example.test")
    gw.wait_log(r"event=delivered id=%s " % qid)


def test_ids_are_unique(gateway, sink):
    gw = gateway()
    ids = {smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("n%d" % i))
           for i in range(5)}
    assert len(ids) == 5
    sink.wait_for(5)


def test_dot_leading_lines_arrive_intact(gateway, sink):
    gw = gateway()
    body = b".hidden\r\n..two\r\n.\r\n...\r\n. space\r\nend\r\n"
    msg = make_message("dots", body=body)
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    m = sink.wait_for(1)[0]
    check_received(m.content, msg, qid, rcpt="b@example.test")


def test_dot_stuffing_on_the_raw_wire(gateway, sink):
    """The client's dot-stuffing is undone exactly once."""
    gw = gateway()
    wire = b"Subject: raw\r\n\r\n..hidden\r\n...two\r\n..\r\n.\r\n"
    with RawClient(gw.port) as c:
        r = send_data(c, "a@client.test", ["b@example.test"], wire).check(250, "2.0.0")
    m = sink.wait_for(1)[0]
    check_received(m.content, b"Subject: raw\r\n\r\n.hidden\r\n..two\r\n.\r\n",
                   queue_id(r.text), rcpt="b@example.test")


def test_8bit_body(gateway, sink):
    gw = gateway()
    body = ("Grüße aus Köln – ¥€ 日本語\r\n".encode("utf-8")
            + bytes(range(0x80, 0x100)) + b"\r\n")
    msg = make_message("8bit", body=body,
                       extra_headers=b"MIME-Version: 1.0\r\n"
                                     b"Content-Type: text/plain; charset=utf-8\r\n"
                                     b"Content-Transfer-Encoding: 8bit\r\n")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg,
                     mail_options=["BODY=8BITMIME"])
    m = sink.wait_for(1)[0]
    check_received(m.content, msg, qid, rcpt="b@example.test")
    assert "BODY=8BITMIME" in [o.upper() for o in m.mail_options], \
        "BODY=8BITMIME not passed to the next hop: %r" % m.mail_options


def test_multiple_recipients_one_transaction(gateway, sink):
    gw = gateway()
    rcpts = ["one@example.test", "two@example.test", "Three@Example.Test"]
    msg = make_message("many")
    qid = smtp_queue(gw.port, "a@client.test", rcpts, msg)
    sink.wait_for(1)
    wait_until(lambda: sum(len(m.rcpt_tos) for m in sink.messages) >= 3, what="3 recipients")
    msgs = sink.wait_quiet(len(sink.messages), 0.5)
    got = sorted(r.lower() for m in msgs for r in m.rcpt_tos)
    assert got == sorted(r.lower() for r in rcpts), got
    for m in msgs:
        unfolded = check_received(m.content, msg, qid)
        assert " for <" not in unfolded, "'for' clause with several recipients: %s" % unfolded
    for r in ("one", "two"):
        gw.wait_log(r"event=delivered id=%s rcpt=<%s@example\.test>" % (qid, r))


def test_lmtp_route(gateway, make_sink):
    lsink = make_sink(lmtp=True)
    gw = gateway(routes={"example.test": "lmtp:[127.0.0.1]:%d" % lsink.port})
    msg = make_message("lmtp")
    qid = smtp_queue(gw.port, "a@client.test", ["x@example.test", "y@example.test"], msg)
    m = lsink.wait_for(1)[0]
    assert m.helo, "no LHLO seen"
    assert sorted(m.rcpt_tos) == ["x@example.test", "y@example.test"]
    check_received(m.content, msg, qid)
    gw.wait_log(r"event=delivered id=%s rcpt=<x@example\.test>" % qid)
    gw.wait_log(r"event=delivered id=%s rcpt=<y@example\.test>" % qid)


def test_lmtp_partial_failure(gateway, make_sink):
    """LMTP answers per recipient: a 550 for one recipient bounces only that one."""
    lsink = make_sink(lmtp=True)
    lsink.set_rule("nobody@example.test", "550 5.1.1 No such user")
    gw = gateway(routes={"example.test": "lmtp:[127.0.0.1]:%d" % lsink.port,
                         "*": "lmtp:[127.0.0.1]:%d" % lsink.port})
    qid = smtp_queue(gw.port, "a@client.test", ["x@example.test", "nobody@example.test"],
                     make_message("lmtp partial"))
    m = lsink.wait_for(1)[0]
    assert m.rcpt_tos == ["x@example.test"]
    gw.wait_log(r"event=delivered id=%s rcpt=<x@example\.test>" % qid)
    gw.wait_log(r"event=bounced id=%s rcpt=<nobody@example\.test>" % qid)


def test_maildir_route(gateway, tmp_path):
    root = tmp_path / "mail"
    (root / "bob").mkdir(parents=True)  # an existing mailbox: no create needed
    gw = gateway(routes={"example.test": "maildir:%s" % root})
    msg = make_message("maildir", body=b"first\r\n.dot\r\n\r\nlast\r\n")
    qid = smtp_queue(gw.port, "alice@client.test", ["bob@example.test"], msg)
    new = root / "bob" / "new"
    files = wait_until(lambda: list(new.glob("*")) if new.is_dir() else [],
                       what="a file in %s" % new)
    assert len(files) == 1
    for sub in ("tmp", "cur"):
        assert (root / "bob" / sub).is_dir(), "maildir %s/ missing" % sub
    data = files[0].read_bytes()
    assert b"\r" not in data, "CR left in a maildir file: %r" % data[:300]
    lines = data.split(b"\n")
    assert lines[0] == b"Return-Path: <alice@client.test>", lines[0]
    assert re.fullmatch(rb"Delivered-To: <?bob@example\.test>?", lines[1]), lines[1]
    rest = b"\n".join(lines[2:])
    # The rest is the Received header and the message, with LF line ends.
    crlf = rest.replace(b"\n", b"\r\n")
    check_received(crlf, msg, qid, rcpt="bob@example.test")
    gw.wait_log(r"event=delivered id=%s rcpt=<bob@example\.test> relay=maildir:" % qid)
    assert not list((root / "bob" / "tmp").glob("*")), "left-over file in tmp/"


def test_maildir_two_recipients_two_folders(gateway, tmp_path):
    root = tmp_path / "mail"
    gw = gateway(routes={"example.test": {"to": "maildir:%s" % root, "create": True}})
    smtp_queue(gw.port, "s@client.test", ["ann@example.test", "ben@example.test"],
               make_message("two"))
    for who in ("ann", "ben"):
        new = root / who / "new"
        wait_until(lambda: new.is_dir() and len(list(new.glob("*"))) == 1,
                   what="one file in %s" % new)
        data = next(new.glob("*")).read_bytes()
        assert re.search(rb"^Delivered-To: <?%s@example\.test>?$" % who.encode(), data, re.M)


def test_rset_clears_transaction(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250, "2.1.0")
        c.cmd("RCPT TO:<b@example.test>").check(250, "2.1.5")
        c.cmd("RSET").check(250, "2.0.0", "Ok")
        c.cmd("RCPT TO:<b@example.test>").check(503, "5.5.1", "need MAIL")
        c.cmd("DATA").check(503, "5.5.1")
        # A new transaction may start: not "nested MAIL".
        c.cmd("MAIL FROM:<c@client.test>").check(250, "2.1.0")
        c.cmd("RCPT TO:<d@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: after rset\r\n\r\nx\r\n.\r\n")
        c.read_reply().check(250, "2.0.0", "queued as")
    m = sink.wait_for(1)[0]
    assert m.mail_from == "c@client.test" and m.rcpt_tos == ["d@example.test"]
    sink.wait_quiet(1, 0.3)


def test_simple_commands(gateway):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.cmd("NOOP").check(250, "2.0.0", "Ok")
        c.cmd("VRFY postmaster").check(252, "2.0.0", "Cannot VRFY")
        c.cmd("VRFY nosuchuser@example.test").check(252, "2.0.0")
        c.cmd("HELP").check(214, "2.0.0", "rfc5321")
        c.cmd("noop").check(250, "2.0.0")  # verbs are case-insensitive
        c.cmd("QUIT").check(221, "2.0.0", "Bye")
        c.expect_closed()
    gw.wait_log(r"event=disconnect sid=\S+ client=127\.0\.0\.1 .*reason=quit")


def test_two_messages_one_session(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        r1 = send_data(c, "a@client.test", ["b@example.test"], b"Subject: 1\r\n\r\none\r\n.\r\n")
        r2 = send_data(c, "a@client.test", ["c@example.test"], b"Subject: 2\r\n\r\ntwo\r\n.\r\n",
                       helo=False)
        r1.check(250, "2.0.0")
        r2.check(250, "2.0.0")
        assert queue_id(r1.text) != queue_id(r2.text)
        c.cmd("QUIT").check(221)
    msgs = sink.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in msgs) == ["b@example.test", "c@example.test"]
    gw.wait_log(r"event=disconnect .*messages=2")


def test_null_sender_accepted(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<>").check(250, "2.1.0")
        c.cmd("RCPT TO:<b@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n")
        r = c.read_reply().check(250, "2.0.0")
    m = sink.wait_for(1)[0]
    assert m.mail_from == ""
    check_received(m.content, b"Subject: bounce\r\n\r\nx\r\n", queue_id(r.text),
                   rcpt="b@example.test")


def test_helo_gives_smtp_protocol(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.cmd("HELO old.client.test").check(250)
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(b"Subject: helo\r\n\r\nx\r\n.\r\n")
        r = c.read_reply().check(250, "2.0.0")
    check_received(sink.wait_for(1)[0].content, b"Subject: helo\r\n\r\nx\r\n",
                   queue_id(r.text), helo="old.client.test", proto="SMTP",
                   rcpt="b@example.test")


def test_large_message_under_limit(gateway, sink):
    gw = gateway()
    body = b"".join(b"%06d " % i + b"y" * 70 + b"\r\n" for i in range(30000))  # ~2.3 MB
    msg = make_message("large", body=body)
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    m = sink.wait_for(1, timeout=20)[0]
    raw, rest = split_received(m.content)
    assert rest == msg, "large message altered (len %d vs %d)" % (len(rest), len(msg))
    gw.wait_log(r"event=queued sid=\S+ id=%s .*size=\d+" % qid)


def test_smtputf8_address(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<jörg@client.test>".encode())
        assert 500 <= r.code < 600, "8-bit sender accepted without SMTPUTF8: %r" % r
        c.cmd("MAIL FROM:<jörg@client.test> SMTPUTF8".encode()).check(250, "2.1.0")
        c.cmd("RCPT TO:<ständig@example.test>".encode()).check(250, "2.1.5")
        c.cmd("DATA").check(354)
        msg = "Subject: ütf8\r\n\r\nGrüße\r\n".encode()
        c.send(msg + b".\r\n")
        r = c.read_reply().check(250, "2.0.0")
    m = sink.wait_for(1)[0]
    assert m.mail_from == "jörg@client.test"
    assert m.rcpt_tos == ["ständig@example.test"]
    assert "SMTPUTF8" in [o.upper() for o in m.mail_options], m.mail_options
    raw, rest = split_received(m.content)
    assert rest == msg
    assert queue_id(r.text).encode() in raw


def test_opportunistic_starttls_to_next_hop(gateway, make_sink, server_tls_context):
    tsink = make_sink(tls_context=server_tls_context)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % tsink.port})
    msg = make_message("tls next hop")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    m = tsink.wait_for(1)[0]
    assert m.tls, "next hop offered STARTTLS but the message came in plaintext"
    check_received(m.content, msg, qid, rcpt="b@example.test")


def test_next_hop_starttls_can_be_disabled(gateway, make_sink, server_tls_context):
    tsink = make_sink(tls_context=server_tls_context)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % tsink.port},
                 delivery={"starttls": False})
    smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("plain next hop"))
    assert not tsink.wait_for(1)[0].tls


def test_lmtp_unix_socket_route(gateway, make_sink, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    lsink = make_sink(lmtp=True, unix_path=path)
    gw = gateway(routes={"example.test": "lmtp:unix:%s" % path})
    msg = make_message("lmtp unix")
    qid = smtp_queue(gw.port, "a@client.test", ["u@example.test"], msg)
    m = lsink.wait_for(1)[0]
    assert m.rcpt_tos == ["u@example.test"]
    check_received(m.content, msg, qid, rcpt="u@example.test")
    gw.wait_log(r"event=delivered id=%s rcpt=<u@example\.test> relay=lmtp:unix:" % qid)
