"""The next hop can take it: what a route's internal server cannot take is
refused during the SMTP session (never accepted and bounced later), and a
reply after the final dot is read safely.

The internal servers are real: the aiosmtpd sink configured without
SMTPUTF8 or with a small SIZE, and a raw asyncio server that answers the
final dot with a 5000-octet line or not at all.
"""

import asyncio
import re
import threading
import time

from conftest import RawClient, free_port, make_message, smtp_queue, split_received


def known(gw, sink, what=r"status=known"):
    """Wait until mxgated learned the sink's EHLO (its start-up probe)."""
    return gw.wait_log(r"event=nexthop relay=smtp:\[127\.0\.0\.1\]:%d %s" % (sink.port, what),
                       timeout=10)


def ehlo_keywords(gw):
    with RawClient(gw.port) as c:
        r = c.ehlo().check(250)
    return r, [t.split(" ")[0].upper() for t in r.texts[1:]]


def test_route_without_smtputf8(gateway, make_sink):
    sink = make_sink(smtputf8=False)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port})
    known(gw, sink, r"status=known smtputf8=no eightbitmime=yes size=33554432")
    r, kw = ehlo_keywords(gw)
    assert "SMTPUTF8" not in kw, "SMTPUTF8 announced for a route without it: %r" % r
    assert "8BITMIME" in kw
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test> SMTPUTF8").check(250, "2.1.0")
        c.cmd("RCPT TO:<ständig@example.test>".encode()).check(
            553, "5.6.7", "Non-ASCII addresses not permitted")
        c.cmd("RCPT TO:<bob@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send("Subject: Grüße\r\n\r\nbody\r\n.\r\n".encode())
        c.read_reply().check(550, "5.6.9", "UTF-8 header message cannot be transferred")
        # a non-ASCII sender cannot reach this route either
        c.cmd("MAIL FROM:<jörg@client.test> SMTPUTF8".encode()).check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(553, "5.6.7", "sender")
        c.cmd("RSET").check(250)
        # an ASCII message with SMTPUTF8 given: accepted, and sent without it
        c.cmd("MAIL FROM:<alice@client.test> SMTPUTF8").check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: plain\r\n\r\nascii only\r\n.\r\n")
        c.read_reply().check(250, "2.0.0", "queued as")
    got = sink.wait_for(1)[0]
    assert got.rcpt_tos == ["bob@example.test"]
    assert "SMTPUTF8" not in [o.upper() for o in got.mail_options], got.mail_options
    assert split_received(got.content)[1] == b"Subject: plain\r\n\r\nascii only\r\n"
    sink.wait_quiet(1, 0.5)
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.1 stage=rcpt code=553 status=5\.6\.7 "
                r"check=nexthop reason=\"?nexthop no-smtputf8")
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.1 stage=data code=550 status=5\.6\.9 "
                r"check=nexthop")
    assert not gw.log_lines(r"event=bounced"), "something was bounced"


def test_route_with_small_size(gateway, make_sink):
    sink = make_sink(size=5000)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port})
    known(gw, sink, r"status=known smtputf8=yes eightbitmime=yes size=5000")
    r, _ = ehlo_keywords(gw)
    assert "SIZE 5000" in r.texts, r
    big = make_message("big", body=(b"y" * 98 + b"\r\n") * 60)  # about 6 KB
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test> SIZE=6000").check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(552, "5.3.4", "size")
        c.cmd("RSET").check(250)
        c.cmd("MAIL FROM:<alice@client.test>").check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(big + b".\r\n")
        c.read_reply().check(552, "5.3.4", "exceeds the limit")
        c.cmd("MAIL FROM:<alice@client.test> SIZE=300").check(250, "2.1.0")
        c.cmd("RCPT TO:<bob@example.test>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("small") + b".\r\n")
        c.read_reply().check(250, "2.0.0")
    assert len(sink.wait_for(1)) == 1
    sink.wait_quiet(1, 0.5)
    gw.wait_log(r"event=reject .* stage=data code=552 status=5\.3\.4 check=nexthop")


def test_unknown_next_hop_queues_then_dsn(gateway, make_sink):
    """Down at start: capabilities unknown, nothing refused, the message is
    queued; when the next hop answers without SMTPUTF8 the failure after 250
    is a DSN (and the next hop is known from then on)."""
    sink = make_sink(smtputf8=False, start=False)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % sink.port,
                         "client.test": "smtp:[127.0.0.1]:%d" % sink.port},
                 queue={"retry_min": 1, "retry_max": 2})
    known(gw, sink, r"status=unknown")
    r, kw = ehlo_keywords(gw)
    assert "SMTPUTF8" in kw, r
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test> SMTPUTF8").check(250, "2.1.0")
        c.cmd("RCPT TO:<ständig@example.test>".encode()).check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send("Subject: Grüße\r\n\r\nbody\r\n.\r\n".encode())
        c.read_reply().check(250, "2.0.0", "queued as")
    gw.wait_log(r"event=deferred .*rcpt=\"?<st", timeout=10)
    sink.start()
    gw.wait_log(r"event=bounced .*5\.6\.7 SMTPUTF8 not supported by next hop.* dsn=[0-9A-F]{16}",
                timeout=15)
    dsn = sink.wait_for(1, timeout=10)[0]
    assert dsn.mail_from == "" and dsn.rcpt_tos == ["alice@client.test"]
    known(gw, sink, r"status=known smtputf8=no")
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@client.test> SMTPUTF8").check(250, "2.1.0")
        c.cmd("RCPT TO:<ständig@example.test>".encode()).check(553, "5.6.7")


class RawPeer:
    """A raw asyncio SMTP server on 127.0.0.1 that stores every message and
    answers the final dot with `dot_reply` (bytes; None: close at once)."""

    def __init__(self, dot_reply, ehlo=b"250-raw.test\r\n250 8BITMIME\r\n"):
        self.port = free_port()
        self.dot_reply = dot_reply
        self.ehlo = ehlo
        self.messages = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _session(self, reader, writer):
        try:
            writer.write(b"220 raw.test ESMTP\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(self.ehlo)
                elif verb == b"DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    body = b""
                    while True:
                        ln = await reader.readline()
                        if not ln or ln == b".\r\n":
                            break
                        body += ln
                    self.messages.append(body)
                    if self.dot_reply is None:
                        writer.close()
                        return
                    writer.write(self.dot_reply)
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return

    def stop(self):
        async def shutdown():
            self.server.close()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_long_reply_after_dot_delivers_once(gateway):
    peer = RawPeer(b"250 2.0.0 stored " + b"x" * 5000 + b"\r\n")
    try:
        gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % peer.port},
                     queue={"retry_min": 1, "retry_max": 1})
        qid = smtp_queue(gw.port, "alice@client.test", ["bob@example.test"],
                         make_message("long reply"))
        gw.wait_log(r"event=delivered id=%s rcpt=<bob@example\.test> relay=\S+ "
                    r"reply=\"250 2\.0\.0 stored xxxx" % qid, timeout=10)
        time.sleep(3)  # several retry periods
        assert len(peer.messages) == 1, "delivered %d times" % len(peer.messages)
        assert not gw.log_lines(r"event=deferred")
    finally:
        peer.stop()


def test_lost_reply_after_dot_is_maybe_delivered(gateway):
    peer = RawPeer(None)
    try:
        gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % peer.port},
                     queue={"retry_min": 1, "retry_max": 60})
        qid = smtp_queue(gw.port, "alice@client.test", ["bob@example.test"],
                         make_message("lost reply"))
        gw.wait_log(r"event=maybe_delivered id=%s rcpt=<bob@example\.test> relay=\S+ "
                    r"reason=\"4\.4\.2 lost connection after end of data.*may have been "
                    r"delivered\" next_retry=60" % qid, timeout=10)
        gw.wait_log(r"event=deferred id=%s .* next_retry=60" % qid)
        time.sleep(3)  # retry_min would have retried by now
        assert len(peer.messages) == 1, "re-sent %d times" % len(peer.messages)
        out = gw.ctl("queue", "list").stdout
        assert qid in out, out
    finally:
        peer.stop()


def test_route_without_8bitmime(gateway):
    """A next hop that announces neither 8BITMIME nor SMTPUTF8: 8-bit text
    is refused after DATA (554 5.6.3), 7-bit text goes through."""
    peer = RawPeer(b"250 2.0.0 ok\r\n", ehlo=b"250-raw.test\r\n250 PIPELINING\r\n")
    try:
        gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % peer.port})
        gw.wait_log(r"event=nexthop relay=smtp:\[127\.0\.0\.1\]:%d status=known smtputf8=no "
                    r"eightbitmime=no size=0" % peer.port, timeout=10)
        r, kw = ehlo_keywords(gw)
        assert "8BITMIME" not in kw and "SMTPUTF8" not in kw, r
        with RawClient(gw.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<alice@client.test>").check(250)
            c.cmd("RCPT TO:<bob@example.test>").check(250)
            c.cmd("DATA").check(354)
            c.send("Subject: x\r\n\r\nGrüße\r\n.\r\n".encode())
            c.read_reply().check(554, "5.6.3", "conversion required")
            c.cmd("MAIL FROM:<alice@client.test>").check(250)
            c.cmd("RCPT TO:<bob@example.test>").check(250)
            c.cmd("DATA").check(354)
            c.send(b"Subject: x\r\n\r\nplain\r\n.\r\n")
            c.read_reply().check(250, "2.0.0")
        wait = time.monotonic() + 5
        while not peer.messages and time.monotonic() < wait:
            time.sleep(0.05)
        assert len(peer.messages) == 1 and peer.messages[0].endswith(b"\r\n\r\nplain\r\n")
    finally:
        peer.stop()
