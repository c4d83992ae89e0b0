"""The durable queue: deferral, retry, flush, restart, kill -9, bounces (DSN),
and mxgatectl queue list|show|flush|delete."""

import email
import email.policy
import re
import subprocess
import threading
import time
import zlib

from conftest import (HOSTNAME, MXGATECTL, check_received, make_message, smtp_queue, wait_until)

LIST_LINE = (r"^%s\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\d+\s+<%s>\s+pending=%d\s+attempts=\d+\s*$")


def both_routes(sink):
    t = "smtp:[127.0.0.1]:%d" % sink.port
    return {"example.test": t, "*": t}


def wait_deferred(gw, qid, rcpt="b@example.test", since=0):
    return gw.wait_log(r"event=deferred id=%s rcpt=<%s> relay=\S+ reason=.* next_retry=\d+"
                       % (qid, re.escape(rcpt)), since=since)


def queue_empty(gw):
    r = gw.ctl("queue", "list")
    return r.returncode == 0 and "queue is empty" in r.stdout


def check_dsn(m, sender, failed_rcpt, subject):
    """m is a delivery status notification for failed_rcpt sent to sender."""
    assert m.mail_from == "", "DSN envelope sender is %r, not <>" % m.mail_from
    assert m.rcpt_tos == [sender]
    raw = m.content
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    assert "mailer-daemon@%s" % HOSTNAME in msg["From"].lower(), msg["From"]
    assert sender in (msg["To"] or ""), msg["To"]
    assert msg["Date"], "DSN lacks a Date header"
    assert msg["Auto-Submitted"] is None or msg["Auto-Submitted"].startswith("auto-")
    assert re.search(rb"^Final-Recipient:\s*rfc822;\s*%s\r$" % re.escape(failed_rcpt.encode()),
                     raw, re.M | re.I), raw.decode(errors="replace")
    assert re.search(rb"^Action:\s*failed\r$", raw, re.M | re.I)
    assert re.search(rb"^Status:\s*5\.\d{1,3}\.\d{1,3}\r$", raw, re.M | re.I)
    assert re.search(rb"^Reporting-MTA:\s*dns;\s*" + HOSTNAME.encode(), raw, re.M | re.I)
    assert b"Subject: " + subject.encode() in raw, "original header not included"
    for ln in raw.split(b"\r\n"):
        assert b"\n" not in ln and b"\r" not in ln, "bare CR/LF in DSN"
        assert len(ln) <= 998


# -- internal server down ----------------------------------------------------------
def test_server_down_then_flush(gateway, sink):
    gw = gateway()
    sink.stop()
    msg = make_message("waits")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    wait_deferred(gw, qid)
    r = gw.ctl("queue", "list")
    assert r.returncode == 0, r
    assert re.search(LIST_LINE % (qid, re.escape("a@client.test"), 1), r.stdout, re.M), r.stdout
    assert re.search(r"^\s+<b@example\.test>", r.stdout, re.M), r.stdout
    sink.start()
    r = gw.ctl("queue", "flush")
    assert r.returncode == 0, r
    assert re.search(r"^flushed [1-9]\d*$", r.stdout, re.M), r.stdout
    m = sink.wait_for(1)[0]
    check_received(m.content, msg, qid, rcpt="b@example.test")
    gw.wait_log(r"event=delivered id=%s rcpt=<b@example\.test>" % qid)
    gw.wait_log(r"event=removed id=%s" % qid)
    wait_until(lambda: queue_empty(gw), what="queue is empty")
    sink.wait_quiet(1, 0.5)


def test_retry_by_itself(gateway, sink):
    gw = gateway(queue={"retry_min": 1, "retry_max": 2})
    sink.stop()
    msg = make_message("retries")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    wait_deferred(gw, qid)
    sink.start()
    m = sink.wait_for(1, timeout=8)[0]
    check_received(m.content, msg, qid, rcpt="b@example.test")
    gw.wait_log(r"event=delivered id=%s" % qid)
    sink.wait_quiet(1, 1.0)


def test_exponential_backoff(gateway, sink):
    gw = gateway(queue={"retry_min": 1, "retry_max": 60})
    sink.stop()
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("backoff"))
    wait_until(lambda: len(gw.log_lines(r"event=deferred id=%s " % qid)) >= 3, timeout=10,
               what="three deferrals")
    delays = [int(re.search(r"next_retry=(\d+)", ln).group(1))
              for ln in gw.log_lines(r"event=deferred id=%s " % qid)][:3]
    assert delays == [1, 2, 4], delays


def test_lifetime_expiry_bounces(gateway, sink, make_sink):
    other = make_sink()
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                         "*": "smtp:[127.0.0.1]:%d" % other.port},
                 queue={"retry_min": 1, "retry_max": 1, "lifetime": 3})
    sink.stop()
    qid = smtp_queue(gw.port, "sender@other.test", ["b@example.test"],
                     make_message("expires", sender="sender@other.test"))
    dsn = other.wait_for(1, timeout=12)[0]
    check_dsn(dsn, "sender@other.test", "b@example.test", "expires")
    gw.wait_log(r"event=(expired|bounced) id=%s" % qid)
    gw.wait_log(r"event=removed id=%s" % qid)


def test_kill9_after_250_then_restart(gateway, sink):
    gw = gateway()
    sink.stop()
    msg = make_message("survives kill -9")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    gw.kill9()
    sink.start()
    gw.start()
    m = sink.wait_for(1, timeout=8)[0]
    check_received(m.content, msg, qid, rcpt="b@example.test")
    gw.wait_log(r"event=delivered id=%s" % qid)
    sink.wait_quiet(1, 1.5)
    wait_until(lambda: queue_empty(gw), what="queue is empty")


def test_kill9_with_server_up_delivers_at_least_once(gateway, sink):
    gw = gateway()
    msg = make_message("kill with server up")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    gw.kill9()
    gw.start()
    m = sink.wait_for(1, timeout=8)[0]
    check_received(m.content, msg, qid, rcpt="b@example.test")
    time.sleep(1.0)
    assert len(sink.messages) <= 2, "delivered %d times" % len(sink.messages)
    wait_until(lambda: queue_empty(gw), what="queue is empty")


def test_graceful_restart_keeps_queue(gateway, sink):
    gw = gateway()
    sink.stop()
    msg = make_message("sigterm")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    wait_deferred(gw, qid)
    assert gw.stop() == 0
    r = gw.ctl("queue", "list")  # works without the daemon: reads the spool
    assert r.returncode == 0 and qid in r.stdout, r
    r = gw.ctl("queue", "flush")  # needs the daemon
    assert r.returncode == 1 and r.stderr.strip(), r
    sink.start()
    gw.start()
    check_received(sink.wait_for(1, timeout=8)[0].content, msg, qid, rcpt="b@example.test")
    sink.wait_quiet(1, 1.0)


def test_mixed_recipients_no_duplicate(gateway, sink):
    gw = gateway()
    sink.set_rule("later@example.test", "451 4.3.0 try again later")
    msg = make_message("mixed")
    qid = smtp_queue(gw.port, "a@client.test", ["good@example.test", "later@example.test"], msg)
    first = sink.wait_for(1)[0]
    assert first.rcpt_tos == ["good@example.test"]
    gw.wait_log(r"event=delivered id=%s rcpt=<good@example\.test>" % qid)
    wait_deferred(gw, qid, "later@example.test")
    r = gw.ctl("queue", "list")
    assert re.search(LIST_LINE % (qid, re.escape("a@client.test"), 1), r.stdout, re.M), r.stdout
    assert "<later@example.test>" in r.stdout and "<good@example.test>" not in r.stdout, r.stdout
    assert "try again later" in r.stdout, "last reply text not listed: %r" % r.stdout
    sink.set_rule("later@example.test", None)
    assert gw.ctl("queue", "flush").returncode == 0
    msgs = sink.wait_for(2)
    assert msgs[1].rcpt_tos == ["later@example.test"], msgs[1].rcpt_tos
    check_received(msgs[1].content, msg, qid)
    sink.wait_quiet(2, 1.0)
    wait_until(lambda: queue_empty(gw), what="queue is empty")


def test_spellings_of_one_recipient_delivered_once(gateway, sink):
    """ "bob"@, BOB@ and bob@ name one mailbox: each RCPT gets its 250, the
    internal server gets the message once, for the first spelling given."""
    gw = gateway()
    msg = make_message("spellings")
    rcpts = ["bob@example.test", '"bob"@example.test', "BOB@Example.TEST", '"b\\ob"@example.test',
             "carol@example.test"]
    qid = smtp_queue(gw.port, "a@client.test", rcpts, msg)
    got = sink.wait_quiet(1, 1.0)
    assert got[0].rcpt_tos == ["bob@example.test", "carol@example.test"], got[0].rcpt_tos
    gw.wait_log(r"event=delivered id=%s rcpt=<carol@example\.test>" % qid)


def test_restart_does_not_redeliver_done_recipients(gateway, sink):
    gw = gateway()
    sink.set_rule("later@example.test", "451 4.3.0 try again later")
    qid = smtp_queue(gw.port, "a@client.test", ["good@example.test", "later@example.test"],
                     make_message("mixed restart"))
    sink.wait_for(1)
    wait_deferred(gw, qid, "later@example.test")
    sink.set_rule("later@example.test", None)
    gw.kill9()
    gw.start()
    msgs = sink.wait_for(2, timeout=8)
    assert msgs[1].rcpt_tos == ["later@example.test"]
    sink.wait_quiet(2, 1.0)


# -- bounces -----------------------------------------------------------------------
def test_permanent_failure_sends_dsn(gateway, sink):
    gw = gateway(routes=both_routes(sink))
    sink.set_rule("bad@example.test", "550 5.1.1 <bad@example.test>: no such user")
    qid = smtp_queue(gw.port, "sender@other.test", ["bad@example.test"],
                     make_message("will bounce", sender="sender@other.test"))
    m = gw.wait_log(r"event=bounced id=%s rcpt=<bad@example\.test> relay=\S+ reason=.* "
                    r"dsn=([0-9A-F]{16})\s*$" % qid)
    dsn_id = m.group(1)
    dsn = sink.wait_for(1)[0]
    check_dsn(dsn, "sender@other.test", "bad@example.test", "will bounce")
    assert re.search(rb"^Diagnostic-Code:\s*smtp;\s*550", dsn.content, re.M | re.I)
    gw.wait_log(r"event=delivered id=%s rcpt=<sender@other\.test>" % dsn_id)
    gw.wait_log(r"event=removed id=%s" % qid)
    sink.wait_quiet(1, 0.5)


def test_partial_bounce_one_dsn_for_the_failed_one(gateway, sink):
    gw = gateway(routes=both_routes(sink))
    sink.set_rule("bad@example.test", "550 5.1.1 no such user")
    qid = smtp_queue(gw.port, "sender@other.test", ["ok@example.test", "bad@example.test"],
                     make_message("half", sender="sender@other.test"))
    gw.wait_log(r"event=bounced id=%s rcpt=<bad@example\.test>" % qid)
    msgs = sink.wait_for(2)
    by_from = {m.mail_from: m for m in msgs}
    assert sorted(by_from) == ["", "sender@other.test"], sorted(by_from)
    assert by_from["sender@other.test"].rcpt_tos == ["ok@example.test"]
    dsn = by_from[""]
    check_dsn(dsn, "sender@other.test", "bad@example.test", "half")
    assert not re.search(rb"^Final-Recipient:.*ok@example\.test", dsn.content, re.M | re.I), \
        "the delivered recipient is reported as failed"
    sink.wait_quiet(2, 0.5)


def test_no_dsn_for_null_sender(gateway, sink):
    gw = gateway(routes=both_routes(sink))
    sink.set_rule("bad@example.test", "550 5.1.1 no such user")
    qid = smtp_queue(gw.port, "", ["bad@example.test"], make_message("null sender"))
    gw.wait_log(r"event=bounced id=%s rcpt=<bad@example\.test> .*dsn=none" % qid)
    gw.wait_log(r"event=removed id=%s" % qid)
    sink.wait_quiet(0, 1.0)


def test_no_dsn_for_a_dsn(gateway, sink):
    gw = gateway(routes=both_routes(sink))
    sink.set_rule("bad@example.test", "550 5.1.1 no such user")
    sink.set_rule("gone@other.test", "550 5.1.1 sender gone too")
    qid = smtp_queue(gw.port, "gone@other.test", ["bad@example.test"],
                     make_message("double bounce", sender="gone@other.test"))
    m = gw.wait_log(r"event=bounced id=%s rcpt=<bad@example\.test> .*dsn=([0-9A-F]{16})" % qid)
    dsn_id = m.group(1)
    gw.wait_log(r"event=bounced id=%s rcpt=<gone@other\.test> .*dsn=none" % dsn_id)
    gw.wait_log(r"event=removed id=%s" % dsn_id)
    sink.wait_quiet(0, 1.0)


def test_bounce_rate_limit(gateway, sink):
    gw = gateway(routes=both_routes(sink), queue={"bounce_limit": 2})
    sink.set_rule("bad@example.test", "550 5.1.1 no such user")
    ids = []
    for i in range(3):
        ids.append(smtp_queue(gw.port, "victim@other.test", ["bad@example.test"],
                              make_message("flood %d" % i, sender="victim@other.test")))
        gw.wait_log(r"event=bounced id=%s " % ids[-1])
    for qid in ids[:2]:
        gw.wait_log(r"event=bounced id=%s .*dsn=[0-9A-F]{16}" % qid)
    gw.wait_log(r"event=bounced id=%s .*dsn=suppressed" % ids[2])
    sink.wait_for(2)
    msgs = sink.wait_quiet(2, 1.0)
    assert all(m.mail_from == "" and m.rcpt_tos == ["victim@other.test"] for m in msgs)


def test_bounce_limit_variants_domain_and_restart(gateway, sink):
    """Spellings of one sender ("victim"@, VICTIM@) share its bounce limit; many
    forged senders of one domain share the domain's; both survive a restart (the
    counters are in the state store). Other domains still get their DSNs."""
    gw = gateway(routes=both_routes(sink), queue={"bounce_limit": 1, "bounce_domain_limit": 2})
    sink.set_rule("bad@example.test", "550 5.1.1 no such user")

    def bounce(sender: str, note: str) -> None:
        qid = smtp_queue(gw.port, sender, ["bad@example.test"],
                         make_message("flood", sender="x@other.test"))
        gw.wait_log(r"event=bounced id=%s .*dsn=%s" % (qid, note))

    bounce("victim@other.test", "[0-9A-F]{16}")
    bounce('"victim"@other.test', "suppressed$")
    bounce("VICTIM@other.test", "suppressed$")
    bounce("second@other.test", "[0-9A-F]{16}")
    gw.restart()
    bounce('"Victim"@OTHER.test', "suppressed$")
    bounce("third@other.test", "suppressed-domain")
    bounce("someone@else.test", "[0-9A-F]{16}")
    sink.wait_for(3)
    msgs = sink.wait_quiet(3, 1.0)
    assert sorted(m.rcpt_tos[0] for m in msgs if m.mail_from == "") == [
        "second@other.test", "someone@else.test", "victim@other.test"]


# -- mxgatectl -----------------------------------------------------------------------
def test_queue_show(gateway, sink):
    gw = gateway()
    sink.stop()
    qid = smtp_queue(gw.port, "shown@client.test", ["b@example.test", "c@example.test"],
                     make_message("show me", sender="shown@client.test"))
    wait_deferred(gw, qid)
    r = gw.ctl("queue", "show", qid)
    assert r.returncode == 0, r
    out = r.stdout
    for needle in (qid, "shown@client.test", "b@example.test", "c@example.test",
                   "127.0.0.1", "Subject: show me"):
        assert needle in out, "%r not in queue show output:\n%s" % (needle, out)
    assert "Hello." not in out, "queue show printed the body"
    r = gw.ctl("queue", "show", "0123456789ABCDEF")
    assert r.returncode == 1 and r.stderr.strip(), r
    r = gw.ctl("queue", "show", "../../../etc/passwd")
    assert r.returncode in (1, 2) and "root:" not in r.stdout, r


def test_queue_delete(gateway, sink):
    gw = gateway()
    sink.stop()
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("delete me"))
    wait_deferred(gw, qid)
    r = gw.ctl("queue", "delete", qid)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "deleted %s" % qid, r.stdout
    gw.wait_log(r"event=removed id=%s" % qid)
    assert queue_empty(gw)
    sink.start()
    r = gw.ctl("queue", "flush")
    assert r.returncode == 0 and re.search(r"^flushed 0$", r.stdout, re.M), r
    sink.wait_quiet(0, 1.0)
    r = gw.ctl("queue", "delete", qid)
    assert r.returncode == 1 and r.stderr.strip(), r


def test_queue_list_empty_and_usage(gateway):
    gw = gateway()
    r = gw.ctl("queue", "list")
    assert r.returncode == 0 and r.stdout.strip() == "queue is empty", r
    assert gw.ctl().returncode == 2
    assert gw.ctl("queue", "frobnicate").returncode == 2
    assert gw.ctl("queue", "show").returncode == 2


# Octets a terminal acts on: C0 controls but LF (mxgatectl's own line ends) and a
# tab that starts a line (a folded header line, as mxgatectl lays it out), DEL, and
# C1 controls (U+0080..U+009F, as UTF-8 C2 80..C2 9F; CSI is U+009B).
TERMINAL_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|(?<!\n)\t|\xc2[\x80-\x9f]")


def ctl_raw(gw, *args):
    """mxgatectl's output as octets, undecoded."""
    return subprocess.run([MXGATECTL, "-c", str(gw.config), *args], cwd=str(gw.dir),
                          capture_output=True, timeout=20, stdin=subprocess.DEVNULL)


def assert_terminal_safe(r):
    for name, out in (("stdout", r.stdout), ("stderr", r.stderr)):
        m = TERMINAL_CONTROL.search(out)
        assert not m, "%s holds control octet %r at %d:\n%r" % (name, m.group(0), m.start(), out)


def test_ctl_escapes_controls_from_smtp(gateway, sink):
    """Through SMTP: controls in headers, C1 controls in SMTPUTF8 quoted local parts
    (C0 controls in addresses are refused at MAIL/RCPT already)."""
    gw = gateway()
    sink.stop()
    sender = '"ev\u009b31mil"@client.test'
    rcpt = '"\u009b2J\u0085x"@example.test'
    hdrs = (b"X-Evil: \x1b[2J\x1b]0;pwned\x07 bell\x08\x7f end\r\n"
            b"X-C1: \xc2\x9b31m red\r\n"
            b"X-Folded: first\r\n\tsecond\tthird\x1b[8m\r\n")
    msg = make_message("ctl escapes", extra_headers=hdrs)
    qid = smtp_queue(gw.port, sender, [rcpt], msg, mail_options=["SMTPUTF8"])
    gw.wait_log(r"event=deferred id=%s " % qid)
    for args in (("queue", "list"), ("queue", "show", qid)):
        r = ctl_raw(gw, *args)
        assert r.returncode == 0, r
        assert_terminal_safe(r)
        assert b"<\"ev\\xc2\\x9b31mil\"@client.test>" in r.stdout, r.stdout
        assert b"<\"\\xc2\\x9b2J\\xc2\\x85x\"@example.test>" in r.stdout, r.stdout
    assert (b"X-Evil: \\x1b[2J\\x1b]0;pwned\\x07 bell\\x08\\x7f end\n" in r.stdout), r.stdout
    assert b"X-C1: \\xc2\\x9b31m red\n" in r.stdout, r.stdout
    assert b"X-Folded: first\n\tsecond\\x09third\\x1b[8m\n" in r.stdout, r.stdout


def test_ctl_escapes_controls_in_queue_files(gateway):
    """Whatever a queue file holds (written by another version, or by hand): envelope
    values and delivery log texts reach the terminal escaped."""
    gw = gateway(start=False)
    qid = "00000000000ABCDE"
    body = b"Subject: \x1b[31mred\x1b[0m\r\n\r\nbody\r\n"
    env = (b"id %s\narrival %d\nclient-ip 192.0.2.1\nclient-name \x1b]2;title\x07\n"
           b"helo h\x08\x08\x7felo\nsender s\x1b[1m\x01@client.test\n"
           b"body 7bit\nsmtputf8 1\nis-bounce 0\nrcpt r\x1b[5m\\@example.test\n\n"
           % (qid.encode(), int(time.time())))
    rest = env + body
    first = b"MXQ2 %012d %08x\n" % (len(body), zlib.crc32(rest))
    (gw.dir / "spool" / "queue").mkdir(parents=True, exist_ok=True)
    (gw.dir / "spool" / "log").mkdir(parents=True, exist_ok=True)
    (gw.dir / "spool" / "queue" / qid).write_bytes(first + rest)
    (gw.dir / "spool" / "log" / qid).write_bytes(
        b"1700000000 0 deferred 451 \xc2\x9b2J busy \xc2\x85\n")
    r = ctl_raw(gw, "queue", "list")
    assert r.returncode == 0, r
    assert_terminal_safe(r)
    assert re.search(rb"^%s  \S+  %d  <s\\x1b\[1m\\x01@client.test>  pending=1 attempts=1$"
                     % (qid.encode(), len(body)), r.stdout, re.M), r.stdout
    assert b"  <r\\x1b[5m\\\\@example.test>  (451 \\xc2\\x9b2J busy \\xc2\\x85)\n" in r.stdout
    r = ctl_raw(gw, "queue", "show", qid)
    assert r.returncode == 0, r
    assert_terminal_safe(r)
    for needle in (b"client: \\x1b]2;title\\x07 [192.0.2.1]\n", b"helo: h\\x08\\x08\\x7felo\n",
                   b"Subject: \\x1b[31mred\\x1b[0m\n"):
        assert needle in r.stdout, (needle, r.stdout)
    r = ctl_raw(gw, "queue", "show", "\x1b[2J")
    assert r.returncode == 1
    assert_terminal_safe(r)


def test_concurrent_clients_none_lost_none_duplicated(gateway, sink):
    gw = gateway()
    errors = []
    ids = []
    lock = threading.Lock()

    def worker(n):
        try:
            for i in range(10):
                subj = "load %d-%d" % (n, i)
                qid = smtp_queue(gw.port, "a%d@client.test" % n, ["b%d@example.test" % i],
                                 make_message(subj))
                with lock:
                    ids.append(qid)
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(set(ids)) == 50
    msgs = sink.wait_for(50, timeout=20)
    subjects = sorted(re.search(rb"Subject: (load \d+-\d+)", m.content).group(1) for m in msgs)
    assert len(subjects) == len(set(subjects)) == 50
    sink.wait_quiet(50, 0.5)
    wait_until(lambda: queue_empty(gw), what="queue is empty")


# -- recycled queue files and their checksum ---------------------------------------
def spool_names(gw, sub):
    return sorted(p.name for p in (gw.dir / "spool" / sub).iterdir())


def test_delivered_files_are_recycled(gateway, sink):
    gw = gateway()
    sink.stop()  # three queued at once, so that three files exist side by side
    for i in range(3):
        smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("r%d" % i))
    assert len(spool_names(gw, "queue")) == 3
    sink.start()
    assert gw.ctl("queue", "flush").returncode == 0
    sink.wait_for(3, timeout=8)
    wait_until(lambda: len(spool_names(gw, "free")) == 3, what="3 files kept in spool/free")
    assert spool_names(gw, "queue") == []
    kept = set(spool_names(gw, "free"))
    # The next message is written over one of them: no new file, none lost.
    msg = make_message("over a kept file")
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], msg)
    check_received(sink.wait_for(4, timeout=8)[3].content, msg, qid, rcpt="b@example.test")
    wait_until(lambda: len(spool_names(gw, "free")) == 3, what="3 files in spool/free again")
    assert set(spool_names(gw, "free")) - kept == {qid}, spool_names(gw, "free")
    assert spool_names(gw, "tmp") == []


def test_recycle_off(gateway, sink):
    gw = gateway(queue={"recycle": 0})
    smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("no recycling"))
    sink.wait_for(1, timeout=8)
    wait_until(lambda: queue_empty(gw), what="queue is empty")
    assert spool_names(gw, "free") == []


def test_changed_queue_file_is_quarantined_not_delivered(gateway, sink):
    gw = gateway()
    sink.stop()
    qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("to be damaged"))
    wait_deferred(gw, qid)
    assert gw.stop() == 0
    path = gw.dir / "spool" / "queue" / qid
    raw = bytearray(path.read_bytes())
    assert raw.startswith(b"MXQ3 "), raw[:40]
    i = raw.index(b"to be damaged")
    raw[i] = ord("T")  # same length: only the checksum notices
    path.write_bytes(bytes(raw))
    # mxgatectl only looks: it shows the file as corrupt and leaves it to mxgated,
    # which moves, logs and counts it.
    r = gw.ctl("queue", "list")
    assert r.returncode == 0, r
    assert re.search(r"^%s  corrupt  reason=checksum  file=\S+/queue/%s " % (qid, qid),
                     r.stdout, re.M), r.stdout
    assert spool_names(gw, "queue") == [qid] and spool_names(gw, "corrupt") == []
    sink.start()
    mark = gw.log_mark()
    gw.start()
    gw.wait_log(r"event=dropped id=%s reason=corrupt-moved-to-corrupt" % qid)
    line = gw.wait_log(r"^.*event=corrupt id=%s .*$" % qid, since=mark).group(0)
    assert re.search(r"\berror: event=corrupt id=%s reason=checksum file=\S+/spool/corrupt/%s$"
                     % (qid, qid), line), line
    assert len(gw.log_lines(r"event=corrupt ")) == 1
    assert spool_names(gw, "corrupt") == sorted([qid, qid + ".log", qid + ".why"])
    assert spool_names(gw, "queue") == []
    sink.wait_quiet(0, 1.0)
    wait_until(lambda: re.search(r"^queue files corrupt +1$", gw.ctl("stats").stdout, re.M),
               timeout=5, what="queue files corrupt 1 in mxgatectl stats")
    # Listed as such, with why and what to do about it.
    r = gw.ctl("queue", "list")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == "queue is empty", r.stdout
    assert re.match(r"^%s  corrupt  reason=checksum  moved=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  "
                    r"size=%d  file=\S+/spool/corrupt/%s" % (qid, len(raw), qid), lines[1]), lines
    assert "mxgatectl queue show ID" in lines[2] and "mxgatectl queue delete ID" in lines[2], lines
    r = gw.ctl("queue", "show", qid)
    assert r.returncode == 0, r
    assert "state: corrupt (reason=checksum), moved to corrupt/" in r.stdout, r.stdout
    assert "Subject: To be damaged" in r.stdout and "sender a@client.test" in r.stdout, r.stdout
    r = gw.ctl("queue", "delete", qid)
    assert r.returncode == 0 and r.stdout.strip() == "deleted %s" % qid, r
    assert spool_names(gw, "corrupt") == []
    assert gw.ctl("queue", "list").stdout.strip() == "queue is empty"
