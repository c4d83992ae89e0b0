"""test_shutdown.py - SIGTERM stops accepting, tells idle sessions 421 4.3.2,
lets a message in DATA finish (250, and it is delivered), within
timeouts.shutdown; nothing acknowledged is lost.

Run:  /usr/bin/python3 -m pytest tests/integration/test_shutdown.py
"""

import signal
import socket
import time

from conftest import make_message, queue_id


def test_sigterm_idle_421_data_finishes(gateway, make_sink):
    """Three sessions at SIGTERM: one idle after EHLO, one inside a transaction
    (after RCPT), one in the middle of DATA. The first two get 421 4.3.2 at once
    and are closed; new connections are refused; the third finishes its text,
    gets 250, then 421; the daemon exits 0. The next hop was down: the message
    is in the spool and reaches it after the restart."""
    nexthop = make_sink(start=False)
    gw = gateway(routes={"example.test": "smtp:[127.0.0.1]:%d" % nexthop.port},
                 timeouts={"shutdown": 10})
    idle, in_tx, in_data = gw.client(), gw.client(), gw.client()
    idle.ehlo()
    in_tx.ehlo()
    in_tx.cmd("MAIL FROM:<a@client.test>").check(250)
    in_tx.cmd("RCPT TO:<bob@example.test>").check(250)
    in_data.ehlo()
    in_data.cmd("MAIL FROM:<a@client.test>").check(250)
    in_data.cmd("RCPT TO:<bob@example.test>").check(250)
    in_data.cmd("DATA").check(354)
    msg = make_message("sent across SIGTERM")
    in_data.send(msg[:40])

    mark = gw.log_mark()
    gw.proc.send_signal(signal.SIGTERM)
    for c in (idle, in_tx):
        c.read_reply().check(421, "4.3.2", "shutting down")
        c.expect_closed()
    gw.wait_log(r"event=draining sessions=3 timeout=10", since=mark)
    try:
        socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()
        raise AssertionError("a new connection was accepted while shutting down")
    except ConnectionRefusedError:
        pass
    assert gw.running, "exited with a message still in DATA"
    time.sleep(0.3)
    in_data.send(msg[40:] + b".\r\n")
    r = in_data.read_reply().check(250, "2.0.0")
    qid = queue_id(r.text)
    in_data.read_reply().check(421, "4.3.2")
    in_data.expect_closed()
    gw.proc.wait(5)
    assert gw.proc.returncode == 0
    gw.proc = None
    gw.wait_log(r"event=drained sessions_left=0")
    assert (gw.dir / "spool" / "queue" / qid).exists()

    nexthop.start()
    gw.start()
    got = nexthop.wait_for(1, timeout=10)
    assert b"Subject: sent across SIGTERM" in got[0].content


def test_sigterm_bounded_by_shutdown_timeout(gateway, sink):
    """A client that never finishes its text does not hold the daemon past
    timeouts.shutdown; its message was never acknowledged and is not queued."""
    gw = gateway(timeouts={"shutdown": 1})
    c = gw.client()
    c.ehlo()
    c.cmd("MAIL FROM:<a@client.test>").check(250)
    c.cmd("RCPT TO:<bob@example.test>").check(250)
    c.cmd("DATA").check(354)
    c.send(b"Subject: never ends\r\n")
    start = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    gw.proc.wait(5)
    took = time.monotonic() - start
    assert gw.proc.returncode == 0
    assert took < 3.5, "exit took %.1f s with shutdown = 1" % took
    gw.proc = None
    gw.wait_log(r"event=drained sessions_left=1")
    c.expect_closed()
    assert not list((gw.dir / "spool" / "queue").iterdir())
