"""test_dkim_sign.py - DKIM signing of our own clients' mail (dkim_sign sections).

Keys are made by `mxgatectl dkim keygen`; the TXT records it prints are served
by a real NSD under sign.test. What a user sees: the DKIM-Signature fields on
top of the message at the internal server, verified by dkimpy and by
Mail::DKIM with the keys from that DNS server (a changed message fails both),
the event=dkim_signed log lines, no signature on inbound mail, and mxgated -n
refusing keys that others can read, of the wrong type or too short.
"""

import base64
import os
import re
import stat
import struct
import subprocess
from pathlib import Path

import dkim
import dns.resolver
import pytest

from conftest import MXGATECTL, MXGATED, make_message, smtp_send
from dnsserver import DNSServer
from pymilter import PyMilter, header

RELAY = "127.0.0.22"     # in relay_networks: our own client
OUTSIDE = "127.0.0.23"   # not: inbound mail
PERL = Path(__file__).resolve().parent / "dkim_verify.pl"


def keygen(tmp: Path, domain: str, selector: str, *args: str):
    """mxgatectl dkim keygen; (key path, zone line)."""
    p = subprocess.run([MXGATECTL, "dkim", "keygen", domain, selector, "--dir", str(tmp)]
                       + list(args), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return tmp / ("%s.%s.key" % (domain, selector)), p.stdout.strip()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dkimkeys")
    rsa, rsa_rec = keygen(tmp, "sign.test", "s2026")
    ed, ed_rec = keygen(tmp, "sign.test", "e2026", "--type", "ed25519")
    sub, sub_rec = keygen(tmp, "parent.test", "p1")
    recs = [r.split(" IN ", 1)[0] + " " + r.split(" IN ", 1)[1] for r in (rsa_rec, ed_rec, sub_rec)]
    srv = DNSServer({"sign.test": recs[:2], "parent.test": recs[2:]}).start()
    yield {"rsa": rsa, "ed": ed, "parent": sub, "dns": srv, "dir": tmp}
    srv.stop()


def resolver(srv):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = srv.resolver_port
    return r


def dkimpy_results(content: bytes, srv):
    """Each signature's outcome with dkimpy (keys asked of NSD), top first."""
    res = resolver(srv)

    def dnsfunc(name, timeout=5):
        ans = res.resolve(name.decode(), "TXT", lifetime=3)
        return b"".join(ans[0].strings)

    head = content.split(b"\r\n\r\n", 1)[0].lower()
    n = head.count(b"\ndkim-signature:") + head.startswith(b"dkim-signature:")
    d = dkim.DKIM(content)
    out = []
    for i in range(n):
        try:
            out.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
        except dkim.ValidationError:
            out.append(False)
    return out


def perl_results(content: bytes, srv, tmp: Path):
    """Mail::DKIM's lines: {(selector, algorithm): result}, and the overall result."""
    f = tmp / "msg.eml"
    f.write_bytes(content)
    p = subprocess.run(["perl", str(PERL), str(srv.resolver_port), str(f)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    res, overall = {}, None
    for line in p.stdout.splitlines():
        if line.startswith("overall: "):
            overall = line.split(" ", 1)[1]
        else:
            dom, sel, algo, result = line.split(" ")
            res[(sel, algo)] = result
    return res, overall


def conf(keys, rsa=True, ed=True, extra=""):
    body = 'dkim_sign "sign.test" {'
    if rsa:
        body += ' selector = "s2026" key = "%s"' % keys["rsa"]
    if ed:
        body += ' selector_ed25519 = "e2026" key_ed25519 = "%s"' % keys["ed"]
    body += " }\n"
    body += 'dkim_sign "parent.test" { selector = "p1" key = "%s" subdomains = true }\n' \
        % keys["parent"]
    return body + extra


def message(sender="alice@sign.test", body=b"Hello.\r\n.dot line\r\n\r\n\r\n"):
    m = make_message(subject="signed", body=body, extra_headers=b"Cc: carol@example.test\r\n")
    return re.sub(rb"^From: [^\r]*", b"From: Alice <" + sender.encode() + b">", m, flags=re.M)


def send(gw, msg, source=RELAY, sender="alice@sign.test"):
    code, text = smtp_send(gw.port, sender, ["bob@example.test"], msg, source=source)
    assert code == 250, (code, text)


def test_both_signatures_verify_with_dkimpy_and_mail_dkim(gateway, sink, keys, tmp_path):
    # the dkim check too: its Authentication-Results goes below our signatures
    gw = gateway(relay_networks=[RELAY + "/32"], checks=["dkim"],
                 extra=conf(keys) + 'dns { servers = {"%s"} }\n' % keys["dns"].address)
    msg = message()
    send(gw, msg)
    got = sink.wait_for(1)[0].content
    head = got.split(b"\r\n\r\n", 1)[0]
    assert got.startswith(b"DKIM-Signature: "), got[:300]
    names = [f.split(b":", 1)[0].lower() for f in re.split(rb"\r\n(?![ \t])", head)]
    assert names[:3] == [b"dkim-signature", b"dkim-signature", b"authentication-results"], names
    assert got.endswith(msg)
    sigs = [f for f in re.split(rb"\r\n(?![ \t])", head) if f.lower().startswith(b"dkim-signature:")]
    assert len(sigs) == 2, head
    flat = [re.sub(rb"\s", b"", s) for s in sigs]
    assert b"a=rsa-sha256" in flat[0] and b"s=s2026" in flat[0]
    assert b"a=ed25519-sha256" in flat[1] and b"s=e2026" in flat[1]
    for f in flat:
        assert b"c=relaxed/relaxed" in f and b"d=sign.test" in f and b";t=" in f
        assert b";l=" not in f
        h = re.search(rb";h=([^;]*)", f).group(1).lower().split(b":")
        assert h.count(b"from") == 2 and h.count(b"subject") == 2 and h.count(b"cc") == 2
        assert b"received" not in h and b"authentication-results" not in h
    assert dkimpy_results(got, keys["dns"]) == [True, True]
    res, overall = perl_results(got, keys["dns"], tmp_path)
    assert res[("s2026", "rsa-sha256")] == "pass", res
    assert overall == "pass", res
    gw.wait_log(r"event=dkim_signed sid=\S+ id=\S+ domain=sign.test selector=s2026 "
                r"algo=rsa-sha256$")
    gw.wait_log(r"event=dkim_signed sid=\S+ id=\S+ domain=sign.test selector=e2026 "
                r"algo=ed25519-sha256$")
    # a changed message fails both verifiers
    bad = got.replace(b"Hello.", b"Hallo.")
    assert dkimpy_results(bad, keys["dns"]) == [False, False]
    res, overall = perl_results(bad, keys["dns"], tmp_path)
    assert res[("s2026", "rsa-sha256")] == "fail", res
    assert overall == "fail", res
    bad = got.replace(b"Subject: signed", b"Subject: changed")
    assert dkimpy_results(bad, keys["dns"]) == [False, False]
    assert perl_results(bad, keys["dns"], tmp_path)[0][("s2026", "rsa-sha256")] == "fail"
    # an added From (oversigned) breaks them too
    bad = got.replace(b"\r\n\r\n", b"\r\nFrom: mallory@evil.test\r\n\r\n", 1)
    assert dkimpy_results(bad, keys["dns"]) == [False, False]


def test_rsa_only_and_parent_domain(gateway, sink, keys, tmp_path):
    gw = gateway(relay_networks=[RELAY + "/32"], extra=conf(keys, ed=False))
    send(gw, message())
    send(gw, message(sender="bob@mail.parent.test"), sender="bob@mail.parent.test")
    got = sink.wait_for(2)
    for m, sel, dom in ((got[0].content, b"s2026", b"sign.test"),
                        (got[1].content, b"p1", b"parent.test")):
        head = re.sub(rb"\s", b"", m.split(b"\r\n\r\n", 1)[0])
        assert head.count(b"DKIM-Signature:") == 1 and b";s=" + sel + b";" in head, head
        assert b";d=" + dom + b";" in head
        assert dkimpy_results(m, keys["dns"]) == [True]
        assert perl_results(m, keys["dns"], tmp_path)[1] == "pass"


def test_inbound_and_unknown_domains_not_signed(gateway, sink, keys):
    gw = gateway(relay_networks=[RELAY + "/32"], extra=conf(keys), log_level="debug")
    send(gw, message(), source=OUTSIDE)               # inbound, even From: our domain
    send(gw, message(sender="x@other.test"), sender="x@other.test")  # no section
    got = sink.wait_for(2)
    for m in got:
        assert b"DKIM-Signature" not in m.content.split(b"\r\n\r\n", 1)[0], m.content[:400]
    gw.wait_log(r"event=dkim_sign status=skipped sid=\S+ id=\S+ from_domain=other.test ")
    assert "event=dkim_signed" not in gw.log_text()


def check(path):
    return subprocess.run([MXGATED, "-n", "-c", str(path)], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("case,error", [
    ("group", r"permissions 0640 are too open"),
    ("world", r"permissions 0604 are too open"),
    ("missing", r"cannot read key \S+: No such file or directory"),
    ("wrongtype", r"an Ed25519 key wanted"),
    ("short", r"RSA of 768 bits \(1024 to 4096 are accepted"),
])
def test_bad_keys_refused_by_check(gateway, keys, tmp_path, case, error):
    key = tmp_path / "k.key"
    which = "key"
    if case in ("group", "world"):
        key.write_bytes(keys["rsa"].read_bytes())
        key.chmod(0o640 if case == "group" else 0o604)
    elif case == "wrongtype":
        key.write_bytes(keys["rsa"].read_bytes())
        key.chmod(0o600)
        which = "key_ed25519"
    elif case == "short":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:768", "-out", str(key)], check=True,
                       capture_output=True)
        key.chmod(0o600)
    gw = gateway(start=False, extra='dkim_sign "sign.test" { selector%s = "x" %s = "%s" }\n'
                 % ("_ed25519" if which == "key_ed25519" else "", which, key))
    p = check(gw.config)
    assert p.returncode != 0, p.stderr
    assert re.search(r"%s:\d+: dkim_sign sign.test: .*%s" % (re.escape(str(gw.config)), error),
                     p.stderr), p.stderr


def test_weak_rsa_warned(gateway, tmp_path):
    key = tmp_path / "k.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:1024", "-out", str(key)], check=True, capture_output=True)
    key.chmod(0o600)
    gw = gateway(start=False, extra='dkim_sign "sign.test" { selector = "x" key = "%s" }\n' % key)
    p = check(gw.config)
    assert p.returncode == 0, p.stderr
    assert re.search(r"warning: dkim_sign sign.test: key \S+: RSA of 1024 bits is weak", p.stderr)


def test_key_made_unreadable_refuses_reload(gateway, sink, keys, tmp_path):
    key = tmp_path / "r.key"
    key.write_bytes(keys["rsa"].read_bytes())
    key.chmod(0o600)
    gw = gateway(relay_networks=[RELAY + "/32"],
                 extra='dkim_sign "sign.test" { selector = "s2026" key = "%s" }\n' % key)
    key.chmod(0o644)
    mark = gw.log_mark()
    gw.proc.send_signal(1)
    gw.wait_log(r"event=reload status=refused error=.*permissions 0644 are too open", since=mark)
    send(gw, message())   # the running keys still sign
    assert dkimpy_results(sink.wait_for(1)[0].content, keys["dns"]) == [True]


def test_keygen_writes_0600_and_matching_record(tmp_path):
    for typ in ("rsa", "ed25519"):
        path, rec = keygen(tmp_path, "gen.test", "sel-" + typ, "--type", typ)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        m = re.fullmatch(r'sel-%s\._domainkey\.gen\.test\. IN TXT((?: "[^"]{1,255}")+)' % typ, rec)
        assert m, rec
        value = "".join(re.findall(r'"([^"]*)"', m.group(1)))
        assert value.startswith("v=DKIM1; k=%s; p=" % typ), value
        pub = base64.b64decode(value.split("p=", 1)[1])
        # the public half of the key file, by OpenSSL: SubjectPublicKeyInfo (DER)
        der = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        text = subprocess.run(["openssl", "pkey", "-in", str(path), "-noout", "-text"],
                              check=True, capture_output=True, text=True).stdout
        if typ == "rsa":
            assert "Private-Key: (2048 bit" in text, text[:200]
            assert pub == der
        else:
            assert "ED25519 Private-Key" in text, text[:200]
            assert len(pub) == 32 and der.endswith(pub) and len(der) == 44  # RFC 8463: raw key
        # never over an existing key
        p = subprocess.run([MXGATECTL, "dkim", "keygen", "gen.test", "sel-" + typ, "--dir",
                            str(tmp_path), "--type", typ], capture_output=True, text=True)
        assert p.returncode == 1 and "never overwritten" in p.stderr, p.stderr
    p = subprocess.run([MXGATECTL, "dkim", "keygen", "gen.test", "x", "--bits", "1024",
                        "--dir", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and "2048 to 4096" in p.stderr
    p = subprocess.run([MXGATECTL, "dkim", "keygen", "../evil", "x", "--dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and not list(tmp_path.glob("*evil*"))
    # a symbolic link where the key goes is not followed
    target = tmp_path / "target"
    (tmp_path / "gen.test.sym.key").symlink_to(target)
    p = subprocess.run([MXGATECTL, "dkim", "keygen", "gen.test", "sym", "--dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "File exists" in p.stderr and not target.exists(), p.stderr


def test_reload_rotates_keys(gateway, sink, keys, tmp_path):
    """A new selector and key in the file: SIGHUP, and new mail carries them."""
    gw = gateway(relay_networks=[RELAY + "/32"], extra=conf(keys, ed=False))
    send(gw, message())
    text = gw.config.read_text().replace(conf(keys, ed=False), conf(keys, rsa=False))
    gw.config.write_text(text)
    mark = gw.log_mark()
    gw.proc.send_signal(1)
    gw.wait_log(r"event=reload status=done ", since=mark)
    send(gw, message())
    got = sink.wait_for(2)
    heads = [re.sub(rb"\s", b"", m.content.split(b"\r\n\r\n", 1)[0]) for m in got]
    assert b";s=s2026;" in heads[0] and b";s=e2026;" not in heads[0]
    assert b";s=e2026;" in heads[1] and b";s=s2026;" not in heads[1]
    assert dkimpy_results(got[1].content, keys["dns"]) == [True]


def test_unsignable_messages_pass_unsigned(gateway, sink, keys):
    """Two From: fields, or a header section over 64 KiB: delivered, unsigned, logged."""
    gw = gateway(relay_networks=[RELAY + "/32"], extra=conf(keys))
    two = message().replace(b"\r\n\r\n", b"\r\nFrom: other@sign.test\r\n\r\n", 1)
    send(gw, two)
    gw.wait_log(r'event=dkim_sign status=skipped sid=\S+ id=\S+ reason="From: many"')
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 900) for i in range(80))
    big = message().replace(b"\r\n\r\n", b"\r\n" + filler + b"\r\n", 1)
    send(gw, big)
    gw.wait_log(r'event=dkim_sign status=skipped sid=\S+ id=\S+ reason="header section over '
                r'65536 octets"')
    for m in sink.wait_for(2):
        assert b"DKIM-Signature" not in m.content.split(b"\r\n\r\n", 1)[0]


def test_milter_edits_are_signed(gateway, sink, keys, tmp_path):
    """A milter's changes (a header field changed, one added, the body replaced) come
    before the signature: the signatures cover the message as delivered."""
    m = PyMilter()
    try:
        def eom(cmd, payload, idx):
            return [(b"h", header("Cc", "dave@example.test")),  # signed and oversigned
                    (b"m", struct.pack(">I", 1) + header("Subject", "[tagged] signed")),
                    (b"b", b"new body\n.starts with dot\n"),
                    (b"a", b"")]
        m.on("E", eom)
        gw = gateway(relay_networks=[RELAY + "/32"], checks=["milter"],
                     extra=conf(keys) + 'milter "py" { socket = "%s" }\n' % m.socket_spec)
        send(gw, message())
        got = sink.wait_for(1)[0].content
    finally:
        m.stop()
    head, body = got.split(b"\r\n\r\n", 1)
    assert body == b"new body\r\n.starts with dot\r\n"
    assert b"\r\nSubject: [tagged] signed\r\n" in head + b"\r\n"
    assert b"Cc: dave@example.test\r\n" in head
    gw.wait_log(r'event=edit sid=\S+ id=\S+ by="milter py" fields=1 body=replaced')
    assert dkimpy_results(got, keys["dns"]) == [True, True]
    res, overall = perl_results(got, keys["dns"], tmp_path)
    assert res[("s2026", "rsa-sha256")] == "pass", res
    assert overall == "pass", res
    # still a signature over these very octets: the body as it arrived fails
    bad = got.replace(b"new body", b"Hello.")
    assert dkimpy_results(bad, keys["dns"]) == [False, False]
