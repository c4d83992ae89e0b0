"""test_clamd.py - the clamd check against a real clamd (clamd_env.py).

What a user sees: EICAR refused at the end of DATA with 554 5.7.1 naming the
signature (and nothing at the internal server), a clean message accepted and
delivered byte for byte, clamd stopped -> 451 4.7.0 (on_error tempfail) or
passed with X-Mxgate-Virus-Scan: skipped (error), over max_size passed with
X-Mxgate-Virus-Scan: skipped (size), the event=clamd and event=reject lines
and the clamd.* counters; with action = "quarantine" the virus is accepted
and kept (see test_quarantine.py for the operator's side).
"""

import pytest

from checks_env import checks_gateway, reject_line, wait_stats
from clamd_env import EICAR, SIGNATURE, Clamd, clamd_section
from conftest import make_message, smtp_send

CLIENT = "127.0.0.1"


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    c = Clamd(tmp_path_factory.mktemp("clamd")).start()
    yield c
    c.stop()


def virus_message() -> bytes:
    return make_message("invoice", b"Please see below.\r\n" + EICAR + b"\r\n")


def clamd_gateway(gateway, socket_, **opts):
    return checks_gateway(gateway, ["clamd"], sections=clamd_section(socket_, **opts))


def test_eicar_refused_at_data(gateway, sink, clamd):
    gw = clamd_gateway(gateway, clamd.socket)
    code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"], virus_message())
    assert code == 554, (code, text)
    assert text == '5.7.1 Virus found: "%s"' % SIGNATURE
    line = reject_line(gw, CLIENT, 554, "5.7.1", "clamd", stage="data")
    assert "reason=\"signature=%s\"" % SIGNATURE in line or "signature=%s" % SIGNATURE in line
    gw.wait_log(r"event=clamd result=virus client=127\.0\.0\.1 signature=%s action=reject"
                % SIGNATURE.replace(".", r"\."))
    sink.wait_quiet(0, quiet=0.5)
    wait_stats(gw, verdicts={"clamd.reject": 1, "clamd.virus": 1})


def test_clean_message_delivered_over_tcp(gateway, sink, clamd):
    gw = clamd_gateway(gateway, "127.0.0.1:%d" % clamd.port)
    msg = make_message("clean", b"Nothing to see here.\r\n")
    code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"], msg)
    assert code == 250, (code, text)
    got = sink.wait_for(1)[0]
    assert got.content.endswith(msg)
    assert b"X-Mxgate-Virus-Scan" not in got.content
    wait_stats(gw, verdicts={"clamd.clean": 1})


def test_over_max_size_passed_with_header(gateway, sink, clamd):
    """Marked by us only: a field of that name the sender wrote is removed."""
    gw = clamd_gateway(gateway, clamd.socket, max_size=2048)
    msg = make_message("big", b"x" * 70 + b"\r\n" + (b"y" * 78 + b"\r\n") * 40 + EICAR + b"\r\n",
                       extra_headers=b"X-Mxgate-Virus-Scan: clean (forged)\r\n")
    code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"], msg)
    assert code == 250, (code, text)
    got = sink.wait_for(1)[0]
    assert b"\r\nX-Mxgate-Virus-Scan: skipped (size)\r\n" in got.content
    assert b"forged" not in got.content
    gw.wait_log(r"event=field_removed sid=\S+ client=127\.0\.0\.1 field=X-Mxgate-Virus-Scan")
    gw.wait_log(r"event=clamd result=skipped client=127\.0\.0\.1 why=size")
    wait_stats(gw, verdicts={"clamd.skipped": 1})


def test_clamd_size_limit_below_ours_is_skipped(gateway, sink, tmp_path):
    small = Clamd(tmp_path / "small", stream_max="4K").start()
    try:
        gw = clamd_gateway(gateway, small.socket)
        msg = make_message("big", (b"z" * 78 + b"\r\n") * 200)
        code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"], msg)
        assert code == 250, (code, text)
        got = sink.wait_for(1)[0]
        assert b"\r\nX-Mxgate-Virus-Scan: skipped (size)\r\n" in got.content
    finally:
        small.stop()


def test_clamd_down_tempfails(gateway, sink, tmp_path):
    gw = clamd_gateway(gateway, str(tmp_path / "nothing.sock"))
    code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"],
                           make_message("x", b"Hello.\r\n"))
    assert code == 451, (code, text)
    assert text == "4.7.0 Virus scanner unavailable; try again later"
    reject_line(gw, CLIENT, 451, "4.7.0", "clamd", stage="data")
    gw.wait_log(r"event=clamd result=error client=127\.0\.0\.1 error=.* on_error=tempfail")
    sink.wait_quiet(0, quiet=0.5)
    wait_stats(gw, verdicts={"clamd.tempfail": 1})


def test_clamd_stopped_tempfails_then_accept_mode_passes(gateway, sink, tmp_path):
    c = Clamd(tmp_path / "stopping").start()
    gw = clamd_gateway(gateway, c.socket)
    code, _ = smtp_send(gw.port, "alice@client.test", ["bob@example.test"],
                        make_message("a", b"Hello.\r\n"))
    assert code == 250
    c.stop()
    code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"],
                           make_message("b", b"Hello.\r\n"))
    assert (code, text) == (451, "4.7.0 Virus scanner unavailable; try again later")
    gw2 = clamd_gateway(gateway, c.socket, on_error="accept")
    code, text = smtp_send(gw2.port, "alice@client.test", ["bob@example.test"],
                           make_message("c", b"Hello.\r\n"))
    assert code == 250, (code, text)
    got = sink.wait_for(2)
    assert b"X-Mxgate-Virus-Scan: skipped (error)\r\n" in got[1].content
    assert b"X-Mxgate-Virus-Scan" not in got[0].content


def test_slow_clamd_times_out(gateway, sink, tmp_path):
    """A socket that accepts and never answers: the timeout, then on_error."""
    import socket as so
    path = str(tmp_path / "slow.sock")
    srv = so.socket(so.AF_UNIX)
    srv.bind(path)
    srv.listen(8)
    try:
        gw = clamd_gateway(gateway, path, timeout=1)
        code, text = smtp_send(gw.port, "alice@client.test", ["bob@example.test"],
                               make_message("x", b"Hello.\r\n"))
        assert code == 451, (code, text)
        gw.wait_log(r"event=clamd result=error client=127\.0\.0\.1 error=\"timeout after 1s\"")
    finally:
        srv.close()


def test_bad_socket_refused_by_config_check(gateway):
    gw = gateway(start=False, extra='clamd { socket = "clamd-host:3310" }\n', checks=["clamd"])
    import subprocess
    from conftest import MXGATED
    r = subprocess.run([MXGATED, "-n", "-c", str(gw.config)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "clamd: socket \"clamd-host:3310\" must be a path" in r.stdout + r.stderr
