"""Configuration checking (mxgated -n) and the daemon's life cycle."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

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
    (7, 'listen again { address = "127.0.0.1:02525" }'),
], ids=["unknown-key", "bad-route-scheme", "bad-route-port", "empty-maildir", "bad-listen-ip",
        "bad-listen-tls", "bad-cidr-prefix", "bad-cidr", "bad-number", "listen-same-address"])
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


# ---- mxgated -n runs the start-up validation: every error, each with its line ----

def error_lines(path, stderr):
    """{line: message} of the 'path:line: message' errors (warnings left out)."""
    out = {}
    for m in re.finditer(r"^%s:(\d+): (?!warning: )(.*)$" % re.escape(str(path)), stderr, re.M):
        out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def warning_lines(path, stderr):
    return {int(m.group(1)): m.group(2) for m in re.finditer(
        r"^%s:(\d+): warning: (.*)$" % re.escape(str(path)), stderr, re.M)}


def test_several_errors_in_one_file_all_reported(tmp_path):
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "999.1.2.3:2525" }'                           # 6
    lines += [
        'route "other.test" { to = "carrier-pigeon:[192.0.2.1]" }',             # 8
        'harvest { threshold = 0 }',                                            # 9
        'queue { fsync_threads = 65 }',                                         # 10
        'store { uri = "nosuch:/tmp/x" }',                                       # 11
        'greylist { delay = 600  retry_window = 300 }',                         # 12
    ]
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    got = error_lines(p, r.stderr)
    assert set(got) == {6, 8, 9, 10, 11, 12}, r.stderr
    assert "harvest: threshold must be between 1 and 1000000" in got[9], got
    assert "queue: fsync_threads must be between 1 and 64" in got[10], got
    assert 'store: unknown store backend "nosuch"' in got[11], got
    assert "greylist: retry_window (300) must be longer than delay (600)" in got[12], got
    assert "ok" not in r.stdout.split(), r.stdout


def tls_lines(tls_files, key=None):
    cert, k = tls_files
    return ['tls { certificate = "%s"  key = "%s" }' % (cert, key or k)]


def test_start_up_errors_all_reported(tmp_path, tls_files):
    """What only the start found, one at a time, -n reports together, with lines."""
    bad = tmp_path / "access.bad"
    bad.write_text("192.0.2.1 allow\n192.0.2.300 deny\n")
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "127.0.0.1:2525"  checks = {"access", "s25r"} }'
    lines += [
        'user = "no-such-user-mxgate"',                                         # 8
        tls_lines(tls_files, key=tmp_path / "missing.key")[0],                   # 9
        'access { client = "%s" }' % bad,                                       # 10
        's25r { rules = "%s" }' % (tmp_path / "missing.rules"),                  # 11
    ]
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    got = error_lines(p, r.stderr)
    assert got.get(8) == ['user "no-such-user-mxgate" does not exist'], r.stderr
    assert got.get(9) == ["tls: key %s: No such file or directory" % (tmp_path / "missing.key")], \
        r.stderr
    assert got.get(11) == ["s25r: %s: cannot open: No such file or directory"
                           % (tmp_path / "missing.rules")], r.stderr
    # an error inside a list file is reported at that file's own line
    assert re.search(r"^%s:2: bad address or network \"192\.0\.2\.300\"$" % re.escape(str(bad)),
                     r.stderr, re.M), r.stderr
    # the daemon itself refuses the same file with the same lines, before it listens
    d = subprocess.run([MXGATED, "-f", "-c", str(p)], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert d.returncode == 1, d
    assert error_lines(p, d.stderr) == got, d.stderr
    assert "event=listen" not in d.stderr, d.stderr


def test_unreadable_access_file(tmp_path):
    lst = tmp_path / "clients"
    lst.mkdir()  # a directory: cannot be read as a list, even by root
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "127.0.0.1:2525"  checks = {"access"} }'
    lines.append('access { client = "%s" }' % lst)                               # 8
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    # pointed at the line that names the file
    assert error_lines(p, r.stderr) == {8: ["access: %s: read error: Is a directory" % lst]}, \
        r.stderr


@pytest.mark.parametrize("uri,text", [
    ("nosuch:/var/x", 'unknown store backend "nosuch"'),
    ("redis:127.0.0.1:6379", "redis uri: expected redis://..."),
    ("redis://:s3cret@127.0.0.1:6379/99", 'redis uri: database "99" is not 0..15'),
    ("redis+unix://run/redis.sock", "redis+unix uri: the socket must be an absolute path"),
    ("lmdb:", 'store uri "lmdb:" has no location'),
    ("just-a-path", 'store uri "just-a-path" is not scheme:location'),
], ids=["unknown-scheme", "redis-no-slashes", "redis-bad-db", "redis-unix-relative",
        "no-location", "no-scheme"])
def test_bad_store_uri(tmp_path, uri, text):
    lines = list(BASE_LINES) + ['store { uri = "%s" }' % uri]                   # 8
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    assert error_lines(p, r.stderr) == {8: ["store: " + text]}, r.stderr


def test_unknown_check_name(tmp_path):
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "127.0.0.1:2525"  checks = {"access", "spamassassin"} }'
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    assert error_lines(p, r.stderr) == {6: ['listen mx: unknown check "spamassassin"']}, r.stderr


def test_valid_tls_and_user_pass(tmp_path, tls_files):
    lines = list(BASE_LINES) + ['user = "nobody"'] + tls_lines(tls_files)
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr


# ---- settings that can have no effect: warnings, not errors ----

@pytest.mark.parametrize("checks,extra,line,text", [
    ('"s25r"', ['s25r { action = "greylist" }'], 6,
     's25r action "greylist" has no effect: the listener does not run greylist'),
    ('"greylist"', ['greylist { only_suspicious = true }'], 8,
     'greylist only_suspicious has no effect without s25r'),
    ('"access"', ['recipients "example.test" { probe = true }'], 8,
     'recipients section has no effect: no listener runs the recipients check'),
    ('"access"', ['batv { domains = {"example.test"}  secrets = {"1:s3cret"} }'], 8,
     'batv section has no effect: no listener runs the batv check'),
    ('"access"', ['harvest { threshold = 5 }'], 8,
     'harvest section has no effect: no listener runs the harvest check'),
    ('"s25r"', ['s25r { action = "score" }'], 8,
     's25r action = "score" has no effect: the listener does not run the score check'),
    ('"dnsbl"', ['dns { servers = {"127.0.0.1:53"} }',
                 'dnsbl { action = "score"  zone "bl.example" { weight = 1 } }'], 9,
     'dnsbl action = "score" has no effect: the listener does not run the score check'),
    ('"spf"', ['dns { servers = {"127.0.0.1:53"} }', 'spf { softfail = "score" }'], 9,
     'spf softfail = "score" has no effect: the listener does not run the score check'),
    ('"sender", "spf"', ['dns { servers = {"127.0.0.1:53"} }', 'sender { helo_exists = "score" }'],
     9, 'sender helo_exists = "score" has no effect: the listener does not run the score check'),
    ('"dkim"', ['dns { servers = {"127.0.0.1:53"} }', 'dkim { temperror = "score" }'], 9,
     'dkim temperror = "score" has no effect: the listener does not run the score check'),
    ('"sender"', ['dns { servers = {"127.0.0.1:53"} }', 'sender { }'], 9,
     'sender own_domains = "spf" without the spf check refuses every sender of our domains'),
    ('"score", "access"', [], 6,
     'listen mx: score is not the last check: the points of the checks after it are not judged'),
    ('"greylist"', ['greylist { dkim_pass = "defer" }'], 8,
     'listen mx: greylist dkim_pass = "defer" without dkim listed before greylist'),
], ids=["s25r-greylist-without-greylist", "only-suspicious-without-s25r", "recipients-unused",
        "batv-unused", "harvest-unused", "s25r-score", "dnsbl-score", "spf-score",
        "sender-score", "dkim-score", "sender-own-without-spf", "score-not-last", "dkim-defer-without-dkim"])
def test_warnings(tmp_path, checks, extra, line, text):
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "127.0.0.1:2525"  checks = {%s} }' % checks
    p = write_conf(tmp_path, lines + extra)
    r = check(p, tmp_path)
    assert r.returncode == 0, r                      # a warning is not an error
    assert "%s: ok" % p in r.stdout, r
    warned = warning_lines(p, r.stderr)
    assert line in warned and text in warned[line], r.stderr
    assert len(warned) == 1, r.stderr
    assert not error_lines(p, r.stderr), r.stderr


def test_no_warning_when_it_all_works(tmp_path):
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "127.0.0.1:2525"  checks = {"s25r", "greylist"} }'
    lines += ['s25r { action = "greylist" }', 'greylist { only_suspicious = true }']
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr


def test_no_score_warning_with_the_score_check(tmp_path):
    lines = list(BASE_LINES)
    lines[5] = ('listen mx { address = "127.0.0.1:2525"  checks = {"s25r", "sender", "spf", '
                '"score"} }')
    lines += ['dns { servers = {"127.0.0.1:53"} }', 's25r { action = "score" }',
              'spf { softfail = "score" }', 'sender { helo_exists = "score" }',
              'score { tag = 3  tempfail = 0  reject = 12 }']
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr


def test_score_thresholds_in_order(tmp_path):
    lines = list(BASE_LINES)
    lines[5] = 'listen mx { address = "127.0.0.1:2525"  checks = {"score"} }'
    lines += ['score { tempfail = 15  reject = 15 }']
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    assert error_lines(p, r.stderr) == {8: ["score: tempfail (15) must be below reject (15)"]}, \
        r.stderr


def test_warning_at_start(gateway):
    gw = gateway(start=False, checks=["s25r"], extra='s25r { action = "greylist" }\n')
    gw.start()
    gw.wait_log(r"^%s:\d+: warning: listen mx: s25r action \"greylist\" has no effect"
                % re.escape(str(gw.config)))
    gw.wait_log(r"event=ready\b")


def man_examples():
    """The configurations in mxgate.conf(5)'s EXAMPLES: (title, text)."""
    man = (Path(__file__).resolve().parent.parent.parent / "docs" / "mxgate.conf.5").read_text()
    part = man.split(".SH EXAMPLES", 1)[1].split(".SH ", 1)[0]
    out = []
    for sec in part.split(".SS ")[1:]:
        title = sec.split("\n", 1)[0]
        body = sec.split(".nf\n.RS\n", 1)[1].split(".RE\n.fi", 1)[0]
        out.append((title, body.replace("\\(dq", '"').replace("\\-", "-")))
    return out


def test_man_page_examples_pass(tmp_path, tls_files):
    """Each worked example of mxgate.conf(5) is a configuration mxgated takes
    (its files made up in a scratch directory, the user line left out)."""
    examples = man_examples()
    assert [t for t, _ in examples] == ["A university gateway", "An ISP submission service",
                                        "Two gateways sharing Redis",
                                        "Behind a load balancer, beside Postfix"]
    cert, key = tls_files
    etc = tmp_path / "etc"
    (etc / "dkim").mkdir(parents=True)
    for name in ("access.client", "access.rcpt", "senders"):
        (etc / name).write_text("")
    (etc / "users").write_text("alice:$6$salt$abcdefghijklmnopqrstuvwxyz0123456789:created=2026-01-31\n")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(etc / "dkim" / "isp.example.jp.s2026.key")],
                   check=True, capture_output=True, timeout=60)
    os.chmod(etc / "dkim" / "isp.example.jp.s2026.key", 0o600)
    for title, text in examples:
        text = "\n".join(l for l in text.splitlines() if not l.startswith("user "))
        for pem in ("mx", "smtp"):
            text = text.replace("/etc/mxgate/%s.pem" % pem, cert)
            text = text.replace("/etc/mxgate/%s.key" % pem, key)
        text = text.replace("/etc/mxgate/", str(etc) + "/")
        text = text.replace("/var/spool/mxgate", str(tmp_path / "spool"))
        text = text.replace("/var/lib/mxgate", str(tmp_path / "state"))
        p = tmp_path / "example.conf"
        p.write_text(text + "\n")
        r = check(p, tmp_path)
        assert r.returncode == 0, (title, r.stdout, r.stderr, text)


@pytest.mark.parametrize("text,message", [
    ('listen lb { address = "127.0.0.1:2526" proxy_protocol = "v3" proxy_from = {"10.0.0.1"} }',
     'listen lb: proxy_protocol must be "none", "v1", "v2" or "any"'),
    ('listen lb { address = "127.0.0.1:2526" proxy_protocol = "v2" }',
     "listen lb: proxy_protocol needs proxy_from (the load balancers' addresses)"),
    ('listen lb { address = "127.0.0.1:2526" proxy_from = {"10.0.0.1"} }',
     "listen lb: proxy_from without proxy_protocol"),
    ('listen lb { address = "127.0.0.1:2526" proxy_protocol = "any" proxy_from = {"10.0.0.300"} }',
     'listen lb: proxy_from: bad address or network "10.0.0.300"'),
    ('listen lb { address = "127.0.0.1:2526" proxy_protocol = "v1" proxy_from = {"10.0.0.1"} '
     'proxy_timeout = 0 }', "listen lb: proxy_timeout must be between 1 and 3600"),
    ('listen pol { address = "127.0.0.1:2526" role = "policy" proxy_protocol = "v1" '
     'proxy_from = {"10.0.0.1"} }', 'listen pol: role = "policy" takes no proxy_protocol'),
    ('listen pol { address = "127.0.0.1:2526" role = "milter" }',
     'listen pol: role must be "mx", "submission" or "policy"'),
], ids=["proxy-version", "proxy-no-from", "from-no-proxy", "proxy-from-bad", "proxy-timeout",
        "policy-proxy", "bad-role"])
def test_proxy_and_policy_listener_errors(tmp_path, text, message):
    """The PROXY protocol and policy listener options: each mistake named on its line."""
    lines = list(BASE_LINES) + [text]
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 1, r
    assert "%s:%d: %s" % (p, len(lines), message) in r.stderr, r.stderr


def test_proxy_and_policy_listeners_pass(tmp_path):
    lines = list(BASE_LINES) + [
        'listen lb { address = "127.0.0.1:2526" proxy_protocol = "any" '
        'proxy_from = {"127.0.0.1", "10.0.0.0/8", "2001:db8::/32"} proxy_timeout = 5 }',
        'listen pol { address = "127.0.0.1:10023" role = "policy" checks = {"greylist"} }']
    p = write_conf(tmp_path, lines)
    r = check(p, tmp_path)
    assert r.returncode == 0, r
