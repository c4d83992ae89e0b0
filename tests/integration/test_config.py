"""Configuration checking (mxgated -n) and the daemon's life cycle."""

import re
import signal
import subprocess
import time

import pytest

from conftest import MXGATED, RawClient

README_EXAMPLE = """\
hostname       = "mx.example.test"
spool_dir      = "var/spool"
state_dir      = "var/state"
domains        = {"example.test"}        # accepted from anyone (inbound)
relay_networks = {}                      # may relay anywhere without AUTH
listen mx { address = "127.0.0.1:2525" }
route "example.test" { to = "smtp:[127.0.0.1]:2626" }
"""

BASE_LINES = [
    'hostname = "mx.example.test"',                          # 1
    'spool_dir = "var/spool"',                               # 2
    'state_dir = "var/state"',                               # 3
    'domains = {"example.test"}',                            # 4
    'relay_networks = {"127.0.0.0/8"}',                      # 5
    'listen mx { address = "127.0.0.1:2525" }',              # 6
    'route "example.test" { to = "smtp:[127.0.0.1]:2626" }',  # 7
]


def check(path, cwd):
    return subprocess.run([MXGATED, "-n", "-c", str(path)], cwd=str(cwd), capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def write_conf(tmp_path, lines, name="mxgate.conf"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_readme_example_passes(tmp_path):
    p = tmp_path / "readme.conf"
    p.write_text(README_EXAMPLE)
    r = check(p, tmp_path)
    assert r.returncode == 0, r
    assert "%s: ok" % p in r.stdout + r.stderr, r


def test_generated_config_passes(gateway):
    gw = gateway(start=False, tls=True, limits={"max_recipients": 5},
                 timeouts={"command": 60}, queue={"retry_min": 1})
    r = check(gw.config, gw.dir)
    assert r.returncode == 0, (r, gw.config.read_text())
    assert "%s: ok" % gw.config in r.stdout + r.stderr


def test_base_config_passes(tmp_path):
    p = write_conf(tmp_path, BASE_LINES)
    r = check(p, tmp_path)
    assert r.returncode == 0, r


@pytest.mark.parametrize("line,text", [
    (3, 'frobnicate = 42'),
    (8, 'route "other.test" { to = "carrier-pigeon:[192.0.2.1]:25" }'),
    (8, 'route "other.test" { to = "smtp:[127.0.0.1]:99999" }'),
    (8, 'route "other.test" { to = "maildir:" }'),
    (6, 'listen mx { address = "999.1.2.3:2525" }'),
    (6, 'listen mx { address = "127.0.0.1:2525" tls = "sometimes" }'),
    (5, 'relay_networks = {"10.0.0.0/33"}'),
    (5, 'relay_networks = {"not-a-network"}'),
    (8, 'limits { max_recipients = "many" }'),
], ids=["unknown-key", "bad-route-scheme", "bad-route-port", "empty-maildir", "bad-listen-ip",
        "bad-listen-tls", "bad-cidr-prefix", "bad-cidr", "bad-number"])
def test_errors_name_their_line(tmp_path, line, text):
    lines = list(BASE_LINES)
    if line <= len(lines) and text.split()[0] == lines[line - 1].split()[0]:
        lines[line - 1] = text   # replace the option of the same name
    else:
        lines.insert(line - 1, text)
    assert lines[line - 1] == text
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    assert re.search(r"^%s:%d: \S" % (re.escape(str(p)), line), r.stderr, re.M), \
        "no '%s:%d: message' in stderr: %r" % (p, line, r.stderr)
    assert "ok" not in r.stdout.split(), r.stdout


def test_every_error_is_reported(tmp_path):
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "999.1.2.3:2525" }'                 # line 6
    lines.append('route "other.test" { to = "carrier-pigeon:[192.0.2.1]" }')  # line 8
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    for ln in (6, 8):
        assert re.search(r"^%s:%d: \S" % (re.escape(str(p)), ln), r.stderr, re.M), \
            "error on line %d not reported: %r" % (ln, r.stderr)


def test_missing_file(tmp_path):
    r = check(tmp_path / "nope.conf", tmp_path)
    assert r.returncode == 1, r
    assert "nope.conf" in r.stderr, r


def test_daemon_refuses_bad_config(tmp_path):
    lines = list(BASE_LINES)
    lines.insert(2, "frobnicate = 42")
    p = write_conf(tmp_path, lines)
    r = subprocess.run([MXGATED, "-f", "-c", str(p)], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0, r
    assert re.search(r"^%s:3: " % re.escape(str(p)), r.stderr, re.M), r.stderr


def test_startup_log_and_sigterm(gateway):
    gw = gateway()
    gw.wait_log(r"^mxgated\[\d+\]: event=listen listener=mx address=127\.0\.0\.1:%d\b" % gw.port)
    gw.wait_log(r"^mxgated\[\d+\]: event=ready\b")
    with RawClient(gw.port) as c:
        c.cmd("QUIT").check(221)
    assert gw.stop() == 0, gw.log_text()[-3000:]


def test_sigterm_with_open_session(gateway):
    gw = gateway()
    c = RawClient(gw.port)
    try:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        t0 = time.monotonic()
        assert gw.stop() == 0
        assert time.monotonic() - t0 < 5
    finally:
        c.close()


def test_sigint_stops(gateway):
    gw = gateway()
    p = gw.proc
    p.send_signal(signal.SIGINT)
    assert p.wait(5) == 0
    gw.proc = None


def test_log_lines_are_key_value(gateway, sink):
    gw = gateway()
    with RawClient(gw.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@client.test>").check(250)
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(b"Subject: log\r\n\r\nx\r\n.\r\n")
        c.read_reply().check(250)
        c.cmd("QUIT").check(221)
    sink.wait_for(1)
    gw.wait_log(r"event=disconnect sid=\S+ client=127\.0\.0\.1 commands=\d+ messages=1 reason=quit")
    pair = r'[a-z][a-z0-9_-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'
    for ln in gw.log_text().splitlines():
        if not ln.startswith("mxgated["):
            continue
        m = re.match(r"^mxgated\[\d+\]: (%s(?: %s)*)$" % (pair, pair), ln)
        assert m, "log line not key=value: %r" % ln
