#!/usr/bin/python3
"""make_fixtures.py - the DKIM test messages, signed by others' signers.

Signs one message (tricky white space, a folded Subject, trailing empty lines,
a line that starts with a dot) with dkimpy (python3-dkim, python3-nacl for
ed25519) and with Mail::DKIM (libmail-dkim-perl; this Debian version has no
ed25519), using the keys beside this script, at a fixed time so that the
output is the same on every run. Writes:

  keys.txt        "NAME TXT-VALUE" per line: the key records to publish
  *.eml           the signed messages (CRLF, as stored: not dot-stuffed)

The unit tests (tests/unit/policy/test_dkim.c) and the integration test
(tests/integration/test_checks_dkim.py) read these files. Run it again after
changing a key or the message:

    /usr/bin/python3 tests/data/dkim/make_fixtures.py
"""

import base64
import os
import subprocess
import sys
from unittest import mock

import dkim

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "dkim.test"
WHEN = 1767225600  # 2026-01-01T00:00:00Z: t= of every fixture

MESSAGE = (
    b"From: Alice Example <alice@dkim.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: A  test\r\n"
    b"\t of   folding \r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    b"Message-ID: <fixture-1@dkim.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob,  \r\n"
    b"\r\n"
    b"This  line has\tinner   white space. \t\r\n"
    b" A line that starts with a space.\r\n"
    b".A line that starts with a dot.\r\n"
    b"\r\n"
    b"\r\n"
)

SIGN_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                b"content-type"]


def run(*cmd: str, data: bytes = b"") -> bytes:
    return subprocess.run(cmd, input=data, check=True, capture_output=True).stdout


def key_path(name: str) -> str:
    return os.path.join(HERE, name + ".key")


def rsa_record(name: str) -> str:
    der = run("openssl", "rsa", "-in", key_path(name), "-pubout", "-outform", "DER")
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def ed25519_seed() -> bytes:
    der = run("openssl", "pkey", "-in", key_path("ed25519"), "-outform", "DER")
    return base64.b64encode(der[-32:])


def ed25519_record() -> str:
    der = run("openssl", "pkey", "-in", key_path("ed25519"), "-pubout", "-outform", "DER")
    return "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()


def py_sign(msg: bytes, selector: str, algo: bytes = b"rsa-sha256",
            canon=(b"relaxed", b"relaxed"), length: bool = False) -> bytes:
    key = ed25519_seed() if algo == b"ed25519-sha256" else open(key_path(selector), "rb").read()
    with mock.patch("time.time", return_value=WHEN):
        sig = dkim.sign(msg, selector.encode(), DOMAIN.encode(), key, canonicalize=canon,
                        signature_algorithm=algo, include_headers=SIGN_HEADERS, length=length)
    return sig + msg


def perl_sign(msg: bytes, selector: str, method: str) -> bytes:
    script = os.path.join(HERE, "sign_mail_dkim.pl")
    sig = run("perl", script, key_path(selector), DOMAIN, selector, method, str(WHEN), data=msg)
    return sig + msg


def main() -> int:
    fixtures = {
        "py_rsa_relaxed.eml": py_sign(MESSAGE, "rsa2048"),
        "py_rsa_simple.eml": py_sign(MESSAGE, "rsa2048", canon=(b"simple", b"simple")),
        "py_ed25519.eml": py_sign(MESSAGE, "ed25519", algo=b"ed25519-sha256"),
        "py_rsa1024.eml": py_sign(MESSAGE, "rsa1024"),
        "py_rsa_sha1.eml": py_sign(MESSAGE, "rsa2048", algo=b"rsa-sha1"),
        # l= covers the body as signed; text appended later is not covered
        "py_rsa_length.eml": py_sign(MESSAGE, "rsa2048", canon=(b"relaxed", b"simple"),
                                     length=True) + b"Appended after signing.\r\n",
        "perl_rsa_relaxed.eml": perl_sign(MESSAGE, "rsa2048", "relaxed/relaxed"),
        "perl_rsa_simple.eml": perl_sign(MESSAGE, "rsa2048", "simple/simple"),
    }
    # two signatures, ed25519 over rsa (RFC 8463 8: sign with both)
    fixtures["py_two.eml"] = py_sign(fixtures["py_rsa_relaxed.eml"], "ed25519",
                                     algo=b"ed25519-sha256")
    for name, data in fixtures.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "keys.txt"), "w") as f:
        f.write("rsa2048._domainkey.%s %s\n" % (DOMAIN, rsa_record("rsa2048")))
        f.write("rsa1024._domainkey.%s %s\n" % (DOMAIN, rsa_record("rsa1024")))
        f.write("ed25519._domainkey.%s %s\n" % (DOMAIN, ed25519_record()))
    # every fixture must verify with dkimpy itself (rsa-sha1 too: dkimpy still accepts
    # it, mxgate refuses it)
    keys = dict(ln.split(" ", 1) for ln in open(os.path.join(HERE, "keys.txt")).read().splitlines())

    def dnsfunc(name, timeout=5):
        return keys.get(name.decode().rstrip("."), "").encode()

    for name, data in fixtures.items():
        d = dkim.DKIM(data)
        nsig = data.split(b"\r\n\r\n", 1)[0].lower().count(b"dkim-signature:")
        ok = all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(nsig))
        if not ok:
            print("%s: dkimpy verify says %s" % (name, ok), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
