#!/usr/bin/python3
"""verify_dkimpy.py FILE... - every DKIM signature of each message checked by dkimpy
(python3-dkim; python3-nacl for ed25519), keys from keys.txt beside this script.
Prints "FILE: pass" when all pass, else "FILE: fail REASON". Used by
tests/unit/mail/test_dkim_sign.c to check mxgate's signer against dkimpy."""

import os
import sys

import dkim

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = dict(ln.split(" ", 1) for ln in open(os.path.join(HERE, "keys.txt")).read().splitlines())


def dnsfunc(name, timeout=5):
    return KEYS.get(name.decode().rstrip("."), "").encode()


for path in sys.argv[1:]:
    msg = open(path, "rb").read()
    n = msg.split(b"\r\n\r\n", 1)[0].lower().count(b"dkim-signature:")
    d = dkim.DKIM(msg)
    try:
        ok = n > 0 and all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n))
        print("%s: %s" % (path, "pass" if ok else "fail"))
    except dkim.DKIMException as e:
        print("%s: fail %s" % (path, str(e).splitlines()[0][:60]))
