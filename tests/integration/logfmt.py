"""logfmt.py - the strict parser of mxgated's log lines.

A line is "mxgated[PID]: " (plus "warning: ", "error: " or "debug: ") and then
key=value fields separated by single spaces, each key once. A value is a
plain token (printable ASCII but space, '"', '=' and backslash) or a double-
quoted string with only \\" \\\\ and \\xHH escapes and well-formed UTF-8 -
what log_quote writes and what logfmt readers (Loki's, Go's logfmt) take.
The gateway fixture parses every line of every test's log with it
(conftest.py: Gateway.teardown), test_log_quoting.py tests it.
"""

import re
from typing import Dict, Tuple

_PREFIX = re.compile(rb"^mxgated\[\d+\]: (?:(?:warning|error|debug): )?")
_KEY = re.compile(rb"[a-z][a-z0-9_.-]*")
_PLAIN = re.compile(rb"[!#-<>-\[\]-~]+")  # printable ASCII but SP " = \
_HEX = re.compile(rb"[0-9a-f]{2}")


def _quoted(line: bytes, i: int) -> Tuple[bytes, int]:
    """The value of the quoted string at line[i] == '"'; the index after it."""
    out = bytearray()
    i += 1
    while True:
        if i >= len(line):
            raise ValueError("unterminated quoted value")
        c = line[i]
        if c == 0x22:
            return bytes(out), i + 1
        if c == 0x5C:
            nxt = line[i + 1:i + 2]
            if nxt in (b'"', b"\\"):
                out += nxt
                i += 2
            elif nxt == b"x" and _HEX.fullmatch(line[i + 2:i + 4]):
                out.append(int(line[i + 2:i + 4], 16))
                i += 4
            else:
                raise ValueError("bad escape %r at %d" % (line[i:i + 4], i))
            continue
        if c < 0x20 or c == 0x7F:
            raise ValueError("raw control octet %#x at %d" % (c, i))
        if c < 0x80:
            out.append(c)
            i += 1
            continue
        # raw 8-bit: one well-formed UTF-8 sequence that is no C1 control
        n = 2 if c >= 0xC2 and c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
        seq = line[i:i + n]
        try:
            ch = seq.decode("utf-8") if n else None
        except UnicodeDecodeError:
            ch = None
        if ch is None or len(ch) != 1 or 0x80 <= ord(ch) <= 0x9F:
            raise ValueError("raw 8-bit octets that are not printable UTF-8 at %d" % i)
        out += seq
        i += n


def parse_line(raw: bytes) -> Dict[str, bytes]:
    """One log line (without its newline) as {key: value}; ValueError unless the
    whole line is key=value fields, each once, separated by single spaces."""
    m = _PREFIX.match(raw)
    if not m:
        raise ValueError("no mxgated[pid]: prefix")
    i, fields = m.end(), {}
    while True:
        k = _KEY.match(raw, i)
        if not k or raw[k.end():k.end() + 1] != b"=":
            raise ValueError("no key= at %d" % i)
        key = k.group().decode()
        if key in fields:
            raise ValueError("key %s twice" % key)
        i = k.end() + 1
        if raw[i:i + 1] == b'"':
            fields[key], i = _quoted(raw, i)
        else:
            v = _PLAIN.match(raw, i)
            if not v:
                raise ValueError("bad value at %d" % i)
            fields[key], i = v.group(), v.end()
        if i == len(raw):
            return fields
        if raw[i:i + 1] != b" ":
            raise ValueError("no single space after the value of %s at %d" % (key, i))
        i += 1


