"""test_logs.py - what an operator reads in the log about each message.

  * every accepted message in one line: queue id, Message-ID, size, sender
    and recipients (event=queued);
  * delivery lines carry Postfix's delay=total and delays=before queue/in
    queue/connection set-up/transmission, and the parts add up;
  * session ids do not repeat across restarts (nor, being time- and
    random-based, across hosts).
Every line of every test's log is parsed as strict logfmt by the gateway
fixture itself (conftest.py, logfmt.py).

Run:  /usr/bin/python3 -m pytest tests/integration/test_logs.py
"""

import re

from conftest import make_message, smtp_queue
from logfmt import parse_line


def records(gw, event: str):
    out = []
    for raw in gw.logfile.read_bytes().split(b"\n"):
        if raw and b"event=%s " % event.encode() in raw:
            out.append(parse_line(raw))
    return out


def test_queued_line_names_the_message(gateway, sink):
    """One line: Message-ID, size, sender and every recipient, as logfmt values."""
    gw = gateway()
    msg = make_message("logged", extra_headers=b"X-Test: 1\r\n").replace(
        b"Message-ID: <", b"Message-ID:\r\n <folded.")
    qid = smtp_queue(gw.port, "alice@client.test",
                     ["bob@example.test", '"odd, one"@example.test'], msg)
    sink.wait_for(1)
    gw.wait_log(r"event=queued .*id=%s " % qid)
    (q,) = [r for r in records(gw, "queued") if r["id"] == qid.encode()]
    msgid = re.search(rb"Message-ID:\r\n (<[^>]+>)", msg).group(1)
    assert q["msgid"] == msgid, q
    assert q["from"] == b"<alice@client.test>"
    assert q["rcpts"] == b'<bob@example.test>,<"odd, one"@example.test>', q
    assert q["nrcpt"] == b"2"
    # size: what was stored, our Received header included
    assert int(q["size"]) > len(msg)


def test_queued_line_without_message_id(gateway, sink):
    gw = gateway()
    qid = smtp_queue(gw.port, "alice@client.test", ["bob@example.test"],
                     b"Subject: no id\r\n\r\nbody\r\n")
    gw.wait_log(r"event=queued .*id=%s " % qid)
    (q,) = [r for r in records(gw, "queued") if r["id"] == qid.encode()]
    assert q["msgid"] == b"", q


def test_delivery_delays_add_up(gateway, make_sink):
    """delay= is the total since the transaction began; delays= its four parts.
    A next hop that is down first: the in-queue part holds the wait for the
    retry, the connection part is what the connect took."""
    nexthop = make_sink(start=False)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % nexthop.port},
                 queue={"retry_min": 1, "retry_max": 1})
    qid = smtp_queue(gw.port, "alice@client.test", ["bob@example.test"], make_message("d"))
    gw.wait_log(r"event=deferred id=%s .* delay=" % qid)
    nexthop.start()
    gw.wait_log(r"event=delivered id=%s " % qid, timeout=10)
    for ev in ("deferred", "delivered"):
        (r,) = [x for x in records(gw, ev) if x["id"] == qid.encode()][:1]
        total = float(r["delay"])
        parts = [float(p) for p in r["delays"].split(b"/")]
        assert len(parts) == 4, r
        assert all(p >= 0 for p in parts), r
        assert abs(sum(parts) - total) <= 0.03, r
    delivered = [x for x in records(gw, "delivered") if x["id"] == qid.encode()][0]
    parts = [float(p) for p in delivered["delays"].split(b"/")]
    assert parts[1] >= 0.5, "the retry wait is time in the queue: %r" % delivered
    assert float(delivered["delay"]) < 10


def test_session_ids_unique_across_restarts(gateway, sink):
    """A sid is a 12-character prefix of the start (time and randomness) and a
    counter: the first session after a restart does not reuse an earlier id."""
    gw = gateway()
    smtp_queue(gw.port, "a@client.test", ["bob@example.test"], make_message("one"))
    gw.restart()
    smtp_queue(gw.port, "a@client.test", ["bob@example.test"], make_message("two"))
    sids = [r["sid"] for r in records(gw, "connect")]
    assert len(sids) >= 4, sids  # each start's readiness probe, and a message each
    assert len(set(sids)) == len(sids), sids
    for s in sids:
        assert re.fullmatch(rb"[0-9a-hjkmnp-tv-z]{12}[0-9a-f]+", s), s
    prefixes = {s[:12] for s in sids}
    assert len(prefixes) == 2, prefixes
