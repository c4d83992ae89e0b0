"""test_checks_earlytalk.py - greeting delay: a client that talks before the 220
is refused 554 5.5.0 and disconnected (postscreen's pregreet test).

Run:  /usr/bin/python3 -m pytest tests/integration/test_checks_earlytalk.py
"""

import time

from checks_env import accepted, checks_gateway, wait_stats
from checks_env import dns_server  # noqa: F401  (the NSD fixture, by name)
from conftest import HOSTNAME, Closed, RawClient

DELAY = 1
TRIES = 20
EARLY = "554 5.5.0 %s Error: talked before greeting" % HOSTNAME


def talk_early(gw, ip: str, pause: float) -> None:
    """Connect, send EHLO after `pause` s (before the greeting), expect 554 and close."""
    t0 = time.monotonic()
    c = RawClient(gw.port, source=ip, greeting=False, timeout=5)
    try:
        if pause:
            time.sleep(pause)
        c.send(b"EHLO early.example.org\r\n")
        try:
            r = c.read_reply()
        except Closed as e:
            raise AssertionError("early talker (EHLO after %.1f s): closed without the 554 "
                                 "reply: %s" % (pause, e))
        assert r.lines == [EARLY], r
        c.expect_closed(2.0)
    finally:
        c.close()
    assert time.monotonic() - t0 < DELAY + 1.0


def test_earlytalk_refused_patient_client_served(gateway, sink, dns_server):
    """A client talking in the middle of the 1 s delay gets 554 5.5.0 and is
    disconnected; one that waits gets the greeting after the delay and is served."""
    gw = checks_gateway(gateway, ["s25r"], 's25r {\n    action = "reject"\n}\n',
                        dns=dns_server.address, timeouts={"greeting_delay": DELAY})
    ip = "127.0.0.18"
    talk_early(gw, ip, 0.3)
    gw.wait_log(r"event=reject sid=\S+ client=127\.0\.0\.18 stage=connect code=554 "
                r"status=5\.5\.0 .*talked before greeting")

    t0 = time.monotonic()
    accepted(gw, ip)  # waits for the greeting: served
    assert time.monotonic() - t0 >= DELAY - 0.05, "the greeting came before the delay"
    sink.wait_for(1)
    # probe + early talker + patient client
    wait_stats(gw, connections=3, accepted=1, stopped={"earlytalk": 1})


def test_earlytalk_immediate_talker_gets_the_554(gateway):
    """A bot that sends its EHLO together with the connection (the common case)
    must get the 554 reply before the close, every time: the reply is flushed
    before the session ends even when the input arrives in the same event-loop
    pass as the socket's first write event."""
    gw = checks_gateway(gateway, [], "", timeouts={"greeting_delay": DELAY})
    for _ in range(TRIES):
        talk_early(gw, "127.0.0.23", 0)
    assert len(gw.log_lines(r"event=reject .*client=127\.0\.0\.23 .*talked before")) == TRIES
    wait_stats(gw, connections=TRIES + 1, accepted=0, stopped={"earlytalk": TRIES})
