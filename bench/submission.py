#!/usr/bin/python3
"""bench/submission.py - authenticated submission: sessions per second, each
EHLO, STARTTLS, EHLO, AUTH PLAIN, QUIT, against mxgated's submission listener,
with the credential cache (auth.cache_ttl = 300) and without it (0).

  /usr/bin/python3 bench/submission.py [--mxgated PATH] [--clients N] [--seconds S]
                                       [--hash yescrypt|bcrypt|sha512crypt]

Everything runs on 127.0.0.1 in a temporary directory that is removed at exit."""

import argparse
import base64
import multiprocessing
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "bench password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(mxgated, tmp, cache_ttl, hash_method):
    tmp.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=mx.bench.test", "-keyout", str(tmp / "key.pem"),
                    "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
    h = subprocess.run(["mkpasswd", "-m", hash_method, "-s"], input=PASSWORD.encode(),
                       capture_output=True, check=True).stdout.decode().strip()
    (tmp / "users").write_text("".join("user%d@bench.test:%s\n" % (i, h) for i in range(64)))
    mx, sub = free_port(), free_port()
    (tmp / "mxgate.conf").write_text(
        'hostname = "mx.bench.test"\nspool_dir = "%s/spool"\nstate_dir = "%s/state"\n'
        'domains = {"bench.test"}\nlog_level = "info"\n'
        'listen mx { address = "127.0.0.1:%d" }\n'
        'listen submission { address = "127.0.0.1:%d" role = "submission" }\n'
        'route "*" { to = "maildir:%s/mail" create = true }\n'
        'tls { certificate = "%s/cert.pem" key = "%s/key.pem" }\n'
        'limits { max_connections_per_ip = 1000 }\n'
        'auth { users = "%s/users" cache_ttl = %d max_failures = 10000 }\n'
        % (tmp, tmp, mx, sub, tmp, tmp, tmp, tmp, cache_ttl))
    log = open(tmp / "mxgated.log", "wb")
    p = subprocess.Popen([mxgated, "-f", "-c", str(tmp / "mxgate.conf")], stdout=log,
                         stderr=log)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", sub), 0.2).close()
            return p, sub
        except OSError:
            time.sleep(0.1)
    raise SystemExit("mxgated did not start; see %s" % (tmp / "mxgated.log"))


def client(args):
    port, seconds, n = args
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.starttls(context=ctx)
            s.ehlo()
            code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
                ("\0user%d@bench.test\0%s" % (n % 64, PASSWORD)).encode()).decode())
            if code != 235:
                raise SystemExit("AUTH got %d" % code)
        done += 1
    return done


def run(mxgated, base, cache_ttl, clients, seconds, hash_method):
    p, port = start(mxgated, base / ("ttl%d" % cache_ttl), cache_ttl, hash_method)
    try:
        with multiprocessing.Pool(clients) as pool:
            t0 = time.monotonic()
            n = sum(pool.map(client, [(port, seconds, i) for i in range(clients)]))
            return n / (time.monotonic() - t0)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mxgated", default=os.environ.get("MXGATED", str(REPO / "build/mxgated")))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--hash", default="yescrypt")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mxgate-bench-sub."))
    try:
        for ttl in (300, 0):
            rate = run(a.mxgated, base, ttl, a.clients, a.seconds, a.hash)
            print("%-28s %8.1f sessions/s  (%s, %d clients, %g s)"
                  % ("cache on (ttl 300)" if ttl else "cache off (ttl 0)", rate, a.hash,
                     a.clients, a.seconds))
            sys.stdout.flush()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
