"""test_log_quoting.py - log lines that outsiders cannot forge.

Every value that comes from outside - envelope addresses with quoted local
parts holding spaces, '=', '"', backslashes and 8-bit octets, the HELO name,
the client's reverse name (from a real NSD), the next hop's reply texts with
escape sequences and octets that are not UTF-8 - goes into the log through
one quoting function. Every line the daemon writes is parsed back with a
strict logfmt parser (key=value separated by single spaces; a value is a
plain token or a double-quoted string with \\" \\\\ and \\xHH escapes and
well-formed UTF-8), and the values must be exactly what was sent.

Run:  /usr/bin/python3 -m pytest tests/integration/test_log_quoting.py
"""

import re
import socket
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from checks_env import connect
from conftest import make_message, queue_id, wait_until
from dnsserver import DNSServer
# the strict parser; the gateway fixture runs it over every line of every test's log
from logfmt import parse_line

def test_parser_itself():
    """The parser takes what log_quote writes and nothing else."""
    p = parse_line(rb'mxgated[1]: event=x a=<b@c> q="a \"b\" \\ \x0a' + b"\xc3\xa9" + rb'" e=""')
    assert p == {"event": b"x", "a": b"<b@c>", "q": b'a "b" \\ \n\xc3\xa9', "e": b""}
    for bad in (rb'mxgated[1]: event=x a=b c', rb'mxgated[1]: event=x a="b', rb'event=x',
                rb'mxgated[1]: event=x a=b  c=d', rb'mxgated[1]: event=x a=b"c"',
                rb'mxgated[1]: event=x a="\q"', b'mxgated[1]: event=x a="\xff"',
                b'mxgated[1]: event=x a="\xc2\x9b"', rb'mxgated[1]: event=x a=1 a=2',
                rb'mxgated[1]: event=x a=<b c>'):
        with pytest.raises(ValueError):
            parse_line(bad)


def log_records(gw) -> List[Dict[str, bytes]]:
    """Every line of the gateway's log, parsed; fails naming the first bad line."""
    out = []
    for raw in gw.logfile.read_bytes().split(b"\n"):
        if not raw:
            continue
        try:
            out.append(parse_line(raw))
        except ValueError as e:
            raise AssertionError("log line does not parse (%s):\n%r" % (e, raw))
    return out


def records(gw, event: str, **match: bytes) -> List[Dict[str, bytes]]:
    return [r for r in log_records(gw) if r.get("event") == event.encode()
            and all(r.get(k) == v for k, v in match.items())]


# ---------------------------------------------------------------------------
# a next hop whose replies carry hostile octets
# ---------------------------------------------------------------------------
class RogueNextHop:
    """A minimal SMTP server: RCPT replies per recipient (default 250), and the
    DATA reply given; replies are raw octets."""

    def __init__(self, rcpt_replies: Dict[bytes, bytes], data_reply: bytes):
        self.rcpt_replies = rcpt_replies
        self.data_reply = data_reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 rogue.test ESMTP\r\n")
        try:
            for line in f:
                cmd = line.rstrip(b"\r\n")
                verb = cmd[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-rogue.test\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n")
                elif verb == b"RCPT":
                    addr = cmd[cmd.index(b"<") + 1:cmd.rindex(b">")]
                    conn.sendall(self.rcpt_replies.get(addr, b"250 2.1.5 Ok") + b"\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    for body in f:
                        if body == b".\r\n":
                            break
                    self.messages += 1
                    conn.sendall(self.data_reply + b"\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 2.0.0 Ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# what the outsiders send
# ---------------------------------------------------------------------------
CLIENT = "127.0.0.40"
# A PTR name whose labels hold a quote, a blank, '=', a backslash and 8-bit octets
# (zone-file escapes): the resolver refuses it as no host name.
PTR_ZONE = r'40 PTR we\"ird\032k=v\\x.\195\169\255.bad.test.'
SENDER = rb'"a b=c \"q\" \\ back"@client.test'
SENDER_UTF8 = b'"j\xc3\xbcrgen x=y \\"z\\""@client.test'
HELO = b'h"=\\ \xc3\xa9 x=y'
RCPT_OK = rb'"x y=z \"w\" \\v"@example.test'
RCPT_UTF8 = b'"\xc3\xa9l\xc3\xa8ve k=v"@example.test'
RCPT_DEFER = rb'"d e=f"@example.test'
RCPT_BOUNCE = b'"g h"@example.test'
RCPT_REFUSED = rb'"r s=t \"u\""@refuse.test'
RCPT_BAD = b'"\xff x=y"@example.test'
DATA_REPLY = b'2.0.0 Ok "queued" as=\\ x\xff\x1b[31m \xc3\xa9 event=forged'
DEFER_REPLY = b'4.2.0 busy "now" k=v \x1b[2J\xfe'
BOUNCE_REPLY = b'5.1.1 no "such" user=\\ \xc2\x9b'


@pytest.fixture
def rogue():
    hop = RogueNextHop({RCPT_DEFER: b"450 " + DEFER_REPLY, RCPT_BOUNCE: b"550 " + BOUNCE_REPLY},
                       b"250 " + DATA_REPLY)
    yield hop
    hop.close()


@pytest.fixture(scope="module")
def odd_dns():
    srv = DNSServer({"0.0.127.in-addr.arpa": [PTR_ZONE], "bad.test": []}).start()
    yield srv
    srv.stop()


def shown(reply: bytes) -> bytes:
    """A next hop's reply text as the SMTP client keeps it: printable ASCII, '?' for
    every other octet (so an escape sequence is defused before it is logged)."""
    return bytes(b if 0x20 <= b < 0x7F else 0x3F for b in reply)


def raw_cmd(c, line: bytes):
    c.send(line + b"\r\n")
    return c.read_reply()


def test_every_line_parses_and_keeps_what_was_sent(gateway, rogue, odd_dns, tmp_path):
    rcpt_list = tmp_path / "rcpt"
    rcpt_list.write_text("@refuse.test deny Refused here\n")
    hop = "smtp:[127.0.0.1]:%d" % rogue.port
    gw = gateway(checks=["access"], domains=("example.test", "refuse.test"),
                 routes={"example.test": hop, "refuse.test": hop},
                 queue={"retry_min": 600},
                 extra='access {\n    rcpt = "%s"\n}\n' % rcpt_list
                 + 'dns {\n    servers = {"%s"}\n    timeout = 1\n    tries = 1\n}\n'
                 % odd_dns.address)
    c = connect(gw, CLIENT)
    try:
        c.greeting.check(220)
        r = raw_cmd(c, b"EHLO " + HELO)
        helo_taken = r.code == 250
        if not helo_taken:  # the HELO name is refused as invalid: its refusal is logged
            r.check(501)
            c.ehlo("client.example.org")
        raw_cmd(c, b"MAIL FROM:<" + SENDER + b">").check(250, "2.1.0")
        raw_cmd(c, b"RCPT TO:<" + RCPT_OK + b">").check(250, "2.1.5")
        raw_cmd(c, b"RCPT TO:<" + RCPT_DEFER + b">").check(250, "2.1.5")
        raw_cmd(c, b"RCPT TO:<" + RCPT_BOUNCE + b">").check(250, "2.1.5")
        raw_cmd(c, b"RCPT TO:<" + RCPT_REFUSED + b">").check(554, "5.7.1", "Refused here")
        bad = raw_cmd(c, b"RCPT TO:<" + RCPT_BAD + b">")
        assert 500 <= bad.code < 600, bad
        c.cmd("DATA").check(354)
        c.send(make_message("quoting") + b".\r\n")
        qid = queue_id(c.read_reply().check(250, "2.0.0").text)
        # a second transaction in UTF-8 (SMTPUTF8)
        raw_cmd(c, b"MAIL FROM:<" + SENDER_UTF8 + b"> SMTPUTF8").check(250, "2.1.0")
        raw_cmd(c, b"RCPT TO:<" + RCPT_UTF8 + b">").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("utf8") + b".\r\n")
        qid2 = queue_id(c.read_reply().check(250, "2.0.0").text)
        c.cmd("QUIT").check(221)
    finally:
        c.close()
    wait_until(lambda: records(gw, "bounced", id=qid.encode()) and records(gw, "deferred")
               and len(records(gw, "delivered")) == 2, timeout=10, what="delivery log lines")

    # c-ares refuses a PTR name that is no host name: no octet of it gets anywhere
    (rdns,) = records(gw, "rdns", client=CLIENT.encode())
    assert rdns["name"] == b"unknown" and rdns["ptr"] == b"-", rdns

    # the policy refusal: HELO, sender and recipient as sent
    (rej,) = records(gw, "reject", check=b"access")
    assert rej["rcpt"] == b"<" + RCPT_REFUSED + b">", rej
    assert rej["from"] == b"<" + SENDER + b">", rej
    if helo_taken:
        assert rej["helo"] == HELO, rej
    else:  # the HELO's own refusal, if it names the HELO, names it as sent
        assert rej["helo"] == b"client.example.org", rej
        for r in records(gw, "reject", code=b"501"):
            assert r.get("helo", HELO) == HELO, r
    # the syntax error names the recipient as it came
    (syn,) = [r for r in records(gw, "reject", stage=b"rcpt") if r.get("code") != b"554"]
    assert syn["rcpt"] == b"<" + RCPT_BAD + b">", syn

    (q1,) = records(gw, "queued", id=qid.encode())
    assert q1["from"] == b"<" + SENDER + b">", q1
    (q2,) = records(gw, "queued", id=qid2.encode())
    assert q2["from"] == b"<" + SENDER_UTF8 + b">", q2

    # the next hop's replies, octet for octet
    (ok,) = records(gw, "delivered", id=qid.encode())
    assert ok["rcpt"] == b"<" + RCPT_OK + b">", ok
    assert ok["reply"] == b"250 " + shown(DATA_REPLY), ok
    (ok2,) = records(gw, "delivered", id=qid2.encode())
    assert ok2["rcpt"] == b"<" + RCPT_UTF8 + b">", ok2
    (dfr,) = records(gw, "deferred", id=qid.encode())
    assert dfr["rcpt"] == b"<" + RCPT_DEFER + b">", dfr
    assert dfr["reason"] == shown(DEFER_REPLY), dfr
    (bnc,) = records(gw, "bounced", id=qid.encode())
    assert bnc["rcpt"] == b"<" + RCPT_BOUNCE + b">", bnc
    assert bnc["reason"] == shown(BOUNCE_REPLY), bnc
    # and nothing anyone sent became a field of its own
    for r in log_records(gw):
        assert b"forged" not in r.get("event", b""), r


# ---------------------------------------------------------------------------
# the sources: log_q() is hard to forget
# ---------------------------------------------------------------------------
SRC = Path(__file__).resolve().parents[2] / "src"
_CALL = re.compile(r"\blog_(?:info|warn|err|debug|fatal|panic|msg)\(")
# a value whose name says it came from outside or from the configuration
_OUTSIDE = re.compile(r"(?:helo|sender|rcpt|addr|address|text|reason|name|ptr|path|err|error|"
                      r"reply|relay|hostname|uri|zone|key|subject|tls_desc|cipher)\)?$")


# local variables that hold " key=" followed by a log_q()/log_qaddr() value (optional
# fields), and the daemon's own names that look like outside ones
_PREQUOTED = {"addr", "from", "rcpt", "helo", "kind->name", "j->kind->name"}


def _split_args(body: str) -> List[str]:
    """Top-level comma-separated arguments of a call body (strings and parens respected)."""
    args, depth, cur, i = [], 0, "", 0
    while i < len(body):
        ch = body[i]
        if ch == '"':
            j = i + 1
            while body[j] != '"':
                j += 2 if body[j] == "\\" else 1
            cur += body[i:j + 1]
            i = j + 1
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    args.append(cur.strip())
    return args


def _log_calls():
    """(file:line, format string, the arguments of its %s conversions) of every log call."""
    for path in sorted(SRC.rglob("*.c")):
        text = path.read_text()
        for m in _CALL.finditer(text):
            depth, i = 1, m.end()
            while depth:
                if text[i] == '"':
                    i += 1
                    while text[i] != '"':
                        i += 2 if text[i] == "\\" else 1
                elif text[i] == "(":
                    depth += 1
                elif text[i] == ")":
                    depth -= 1
                i += 1
            args = _split_args(text[m.end():i - 1])
            if m.group().startswith("log_msg"):
                args = args[1:]
            fmt = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', args[0]))
            convs = re.findall(r"%[-+ #0-9.*]*(?:l{0,2}|z|h{0,2})[diouxXsc%]", fmt)
            values = args[1:]
            where = "%s:%d" % (path.relative_to(SRC), text.count("\n", 0, m.start()) + 1)
            # %.Ns: a bounded slice of our own reply (code, status), not a value from outside
            yield where, fmt, [a for c, a in zip([c for c in convs if c != "%%"], values)
                               if c.endswith("s") and "." not in c]


def test_sources_quote_outside_values():
    """No log line quotes by hand (\"%s\") or brackets an address itself (<%s>), and
    no %s value named like outside input (helo, sender, rcpt, text, name, path...)
    goes into a line without log_q()/log_qaddr()/log_quote()."""
    calls = list(_log_calls())
    assert len(calls) > 80, "the scan found only %d log calls" % len(calls)
    bad = []
    for where, fmt, svals in calls:
        if '\\"%s\\"' in fmt or "<%s>" in fmt:
            bad.append("%s: quotes or brackets by hand: %s" % (where, fmt))
        for v in svals:
            if re.match(r"log_(?:q|qaddr|quote|quote_addr)\(", v) or v in _PREQUOTED:
                continue
            last = re.split(r"[^A-Za-z0-9_]+", v.rstrip(")"))[-1]
            if _OUTSIDE.search(last) and not v.startswith('"'):
                bad.append("%s: %s goes into the line unquoted: %s" % (where, v, fmt))
    assert not bad, "\n".join(bad)
