"""test_recipients.py - recipient verification at RCPT time and anti-harvesting
(issue 4) against the real daemon and the aiosmtpd sink as the internal server.

  example.test  verified from a recipients file (alice, bob)
  probe.test    verified by probing the sink (MAIL FROM:<> / RCPT TO / QUIT);
                the sink refuses an address when a rule says so
The listener runs checks = {"harvest", "recipients"}.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/integration/test_recipients.py
"""

import signal
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest

from checks_env import checks_gateway
from conftest import RawClient, Reply, free_port, make_message, queue_id, wait_until

HARVESTER = "127.0.0.2"
OTHER = "127.0.0.3"
UNKNOWN = "550 5.1.1 <%s>: Recipient address rejected: User unknown"
TEMPFAIL = "451 4.4.0 <%s>: Recipient address verification failed, try again later"
BLOCKED = "421 4.7.0 Too many unknown recipients from your address, try later"


def start_gateway(gateway, sink, tmp_path, harvest: str = "threshold = 5  window = 600  "
                  "tarpit = 1  block = 600"):
    """A gateway verifying example.test from a file and probe.test by probing
    the sink. DNS points at a closed local port: FCrDNS fails at once."""
    rcpts = tmp_path / "recipients.example.test"
    rcpts.write_text("# the staff of example.test\nalice@example.test\nBob@Example.Test\n")
    target = "smtp:[127.0.0.1]:%d" % sink.port
    extra = (
        'recipients "example.test" { file = "%s" }\n'
        'recipients "probe.test" { probe = true  positive_ttl = 3600  negative_ttl = 600 }\n'
        "harvest { %s }\n"
        'dns {\n    servers = {"127.0.0.1:%d"}\n    timeout = 1\n    tries = 1\n}\n'
        % (rcpts, harvest, free_port())
    )
    # max_errors above the harvest limits: the session's own error limit (421
    # after 10 errors by default) would otherwise end the harvester's session first
    return checks_gateway(gateway, ["harvest", "recipients"], extra,
                          routes={"example.test": target, "probe.test": target},
                          domains=("example.test", "probe.test"), limits={"max_errors": 100})


def session(gw, source: Optional[str] = None) -> RawClient:
    """Greeting, EHLO and MAIL FROM done; the client is left open."""
    c = RawClient(gw.port, source=source)
    c.greeting.check(220)
    c.ehlo()
    c.cmd("MAIL FROM:<sender@client.test>").check(250, "2.1.0")
    return c


def rcpt(c: RawClient, addr: str) -> Tuple[Reply, float]:
    """RCPT TO:<addr>: the reply and how long it took."""
    t0 = time.monotonic()
    r = c.cmd("RCPT TO:<%s>" % addr, timeout=10)
    return r, time.monotonic() - t0


def deliver(c: RawClient, to: str) -> str:
    """DATA of a small message on an open session whose RCPTs are done; the queue id."""
    c.cmd("DATA").check(354)
    c.send(make_message(to=to).replace(b"\r\n.", b"\r\n..") + b".\r\n")
    r = c.read_reply().check(250, "2.0.0")
    return queue_id(r.text)


def test_file_known_and_unknown(gateway, sink, tmp_path):
    """Listed recipients (any case) are accepted and delivered; an unlisted one
    gets 550 5.1.1 at RCPT, logged as check=recipients reason="unknown source=file"."""
    gw = start_gateway(gateway, sink, tmp_path)
    with session(gw) as c:
        assert rcpt(c, "alice@example.test")[0].code == 250
        assert rcpt(c, "BOB@example.test")[0].code == 250
        r, _ = rcpt(c, "carol@example.test")
        assert r.lines == [UNKNOWN % "carol@example.test"], r
        deliver(c, "alice@example.test")
        c.cmd("QUIT").check(221)
    msgs = sink.wait_for(1)
    assert sorted(a.lower() for a in msgs[0].rcpt_tos) == ["alice@example.test",
                                                          "bob@example.test"]
    line = gw.wait_log(r"^.*event=reject .*stage=rcpt code=550 status=5\.1\.1 "
                       r"check=recipients .*$").group(0)
    assert 'reason="unknown source=file"' in line, line
    assert "rcpt=<carol@example.test>" in line, line
    assert sink.rcpt_count("carol@example.test") == 0


def test_file_reload(gateway, sink, tmp_path):
    """SIGHUP reads the recipients file again."""
    gw = start_gateway(gateway, sink, tmp_path)
    with session(gw) as c:
        assert rcpt(c, "dave@example.test")[0].code == 550
    (tmp_path / "recipients.example.test").write_text("alice@example.test\ndave@example.test\n")
    mark = gw.log_mark()
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log(r"event=reload status=done generation=2 ", since=mark)
    with session(gw) as c:
        assert rcpt(c, "dave@example.test")[0].code == 250


def test_probe_known_and_unknown(gateway, sink, tmp_path):
    """probe.test asks the sink: its 550 becomes our 550 5.1.1 at RCPT; a known
    address gets 250 and the message arrives. The probe said MAIL FROM:<>."""
    sink.set_rule("unknown@probe.test", "550 5.1.1 no such user here")
    gw = start_gateway(gateway, sink, tmp_path)
    with session(gw) as c:
        r, _ = rcpt(c, "unknown@probe.test")
        assert r.lines == [UNKNOWN % "unknown@probe.test"], r
        assert rcpt(c, "known@probe.test")[0].code == 250
        deliver(c, "known@probe.test")
    msgs = sink.wait_for(1)
    assert msgs[0].rcpt_tos == ["known@probe.test"]
    assert msgs[0].mail_from == "sender@client.test"
    assert sink.rcpt_count("unknown@probe.test") == 1  # the probe, nothing more
    assert sink.rcpt_count("known@probe.test") == 2  # the probe and the delivery
    line = gw.wait_log(r"^.*event=reject .*check=recipients .*rcpt=<unknown@probe\.test>.*$")
    assert 'reason="probe 550"' in line.group(0), line.group(0)


def test_probe_cache(gateway, sink, tmp_path):
    """A second RCPT for a probed address is answered from the cache: the sink
    sees no second probe, for known and for unknown addresses."""
    sink.set_rule("gone@probe.test", "550 5.1.1 gone")
    gw = start_gateway(gateway, sink, tmp_path)
    with session(gw) as c:
        assert rcpt(c, "here@probe.test")[0].code == 250
        assert rcpt(c, "gone@probe.test")[0].code == 550
    assert sink.rcpt_count("here@probe.test") == 1
    assert sink.rcpt_count("gone@probe.test") == 1
    sink.set_rule("gone@probe.test", None)  # the cache, not the sink, must answer now
    with session(gw, source=OTHER) as c:
        assert rcpt(c, "HERE@probe.test")[0].code == 250
        r, _ = rcpt(c, "gone@probe.test")
        assert r.lines == [UNKNOWN % "gone@probe.test"], r
        c.cmd("QUIT").check(221)
    assert sink.rcpt_count("here@probe.test") == 1
    assert sink.rcpt_count("gone@probe.test") == 1
    line = gw.wait_log(r"^.*event=reject .*client=127\.0\.0\.3 .*check=recipients .*$")
    assert 'reason="cache negative"' in line.group(0), line.group(0)


def test_probe_server_down(gateway, sink, tmp_path):
    """The internal server is down: 451 4.4.0, never accepted; nothing cached, so
    the same address is accepted once the server is back."""
    gw = start_gateway(gateway, sink, tmp_path)
    sink.stop()
    with session(gw) as c:
        r, _ = rcpt(c, "someone@probe.test")
        assert r.lines == [TEMPFAIL % "someone@probe.test"], r
        assert rcpt(c, "alice@example.test")[0].code == 250  # the file needs no server
    line = gw.wait_log(r"^.*event=reject .*code=451 status=4\.4\.0 check=recipients .*$")
    assert "probe no-answer: connect to 127.0.0.1" in line.group(0), line.group(0)
    sink.start()
    with session(gw) as c:
        assert rcpt(c, "someone@probe.test")[0].code == 250


def harvest(gw, results: List[Tuple[Reply, float]], started: threading.Event,
            closed: List[bool]) -> None:
    """The harvester: up to 50 unknown recipients in one session from HARVESTER."""
    c = session(gw, source=HARVESTER)
    try:
        for i in range(50):
            r = rcpt(c, "user%d@example.test" % i)
            results.append(r)
            if i == 4:
                started.set()
            if r[0].code == 421:
                c.expect_closed(2.0)
                closed.append(True)
                return
    finally:
        started.set()
        c.close()


@pytest.mark.usefixtures("store_backend")  # on LMDB, and on a shared Redis
def test_harvester_tarpitted_and_blocked(gateway, sink, tmp_path):
    """threshold 5, tarpit 1 s: 5 unknown recipients are refused at once, the next
    5 after a second each, then 421 4.7.0 and the connection closes. Meanwhile
    another client is served at full speed. The harvester's next connection gets
    the 421 instead of a greeting, also after a daemon restart."""
    gw = start_gateway(gateway, sink, tmp_path)
    results: List[Tuple[Reply, float]] = []
    closed: List[bool] = []
    started = threading.Event()
    t = threading.Thread(target=harvest, args=(gw, results, started, closed), daemon=True)
    t.start()
    assert started.wait(15)

    # the other client, while the harvester sits in the tarpit
    with session(gw, source=OTHER) as c:
        for addr in ("alice@example.test", "bob@example.test"):
            r, secs = rcpt(c, addr)
            assert r.code == 250 and secs < 0.5, (r, secs)
        r, secs = rcpt(c, "nobody@example.test")
        assert r.code == 550 and secs < 0.5, (r, secs)
        deliver(c, "alice@example.test")
    assert t.is_alive(), "the harvester was not slowed down"
    t.join(30)
    assert not t.is_alive()
    sink.wait_for(1)

    assert len(results) == 11, results
    for i, (r, secs) in enumerate(results[:10]):
        assert r.lines == [UNKNOWN % ("user%d@example.test" % i)], (i, r)
        if i < 5:
            assert secs < 0.5, (i, secs)
        else:
            assert 0.9 < secs < 3.0, ("tarpit", i, secs)
    r, secs = results[10]
    assert r.lines == [BLOCKED], r
    assert secs < 0.5, secs
    assert closed == [True]
    gw.wait_log(r"event=harvest_block client=127\.0\.0\.2 count=10 threshold=5 block=600")
    line = gw.wait_log(r"^.*event=reject .*client=127\.0\.0\.2 .*code=421 .*check=harvest .*$")
    assert 'reason="count 10/5 blocked"' in line.group(0), line.group(0)

    assert_blocked_at_connect(gw)
    gw.restart()
    assert_blocked_at_connect(gw)
    with session(gw, source=OTHER) as c:
        assert rcpt(c, "alice@example.test")[0].code == 250

    # counted as its own mechanism: 3 sessions stopped (the harvester's and the two
    # refused at connect), 5 tarpitted replies, 3 blocks; 11 unknown recipients
    wait_stats(gw, {"harvest": "3", "harvest.score": "5", "harvest.tempfail": "3",
                    "recipients.reject": "11"})

    # the operator lifts the block (mxgatectl blocks): the next connection is served
    r = gw.ctl("blocks", "list")
    assert r.returncode == 0 and "127.0.0.2  harvest  blocked\n" in r.stdout, r
    r = gw.ctl("blocks", "clear", HARVESTER)
    assert r.returncode == 0 and r.stdout == "cleared 2 record(s)\n", r  # block, counter
    wait_until(lambda: "harvest" not in gw.ctl("blocks", "list").stdout, what="block gone")
    with session(gw, source=HARVESTER) as c:
        assert rcpt(c, "alice@example.test")[0].code == 250


def wait_stats(gw, want: Dict[str, str]) -> None:
    """Poll `mxgatectl stats` until its lines "<name> <count> ..." show want
    (counters are written asynchronously, a session is counted when it ends)."""
    last = [""]

    def good() -> bool:
        last[0] = gw.ctl("stats").stdout
        got = {f[0]: f[1] for f in (ln.split() for ln in last[0].splitlines()) if len(f) >= 2}
        return all(got.get(k) == v for k, v in want.items())

    try:
        wait_until(good, timeout=6.0, interval=0.2, what="statistics")
    except AssertionError:
        raise AssertionError("mxgatectl stats never showed %r:\n%s" % (want, last[0]))


def assert_blocked_at_connect(gw) -> None:
    """A new connection from HARVESTER gets the 421 at once and is closed."""
    t0 = time.monotonic()
    c = RawClient(gw.port, source=HARVESTER, greeting=False)
    try:
        r = c.read_reply()
        assert r.lines == [BLOCKED], r
        c.expect_closed(2.0)
    finally:
        c.close()
    assert time.monotonic() - t0 < 1.5
