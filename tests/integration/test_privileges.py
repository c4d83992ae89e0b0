"""Started as root, mxgated binds, hands its directories to `user` and drops
every privilege; the spool still works afterwards."""
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import MXGATED, Gateway, make_message, smtp_queue, smtp_send


def _ids(pid):
    """(real, effective, saved, fs) uids and gids of a process."""
    status = Path("/proc/%d/status" % pid).read_text().splitlines()
    uid = next(l for l in status if l.startswith("Uid:")).split()[1:]
    gid = next(l for l in status if l.startswith("Gid:")).split()[1:]
    groups = next(l for l in status if l.startswith("Groups:")).split()[1:]
    return [int(u) for u in uid], [int(g) for g in gid], [int(g) for g in groups]


def test_drops_to_configured_user(sink):
    nobody = pwd.getpwnam("nobody")
    # A world-traversable work directory: pytest's tmp_path is 0700 root's.
    work = Path(tempfile.mkdtemp(prefix="mxgate-privs-"))
    os.chmod(work, 0o755)
    gw = Gateway(work / "gw", sink.port, extra='user = "nobody"\n')
    try:
        if os.geteuid() != 0:
            r = subprocess.run([MXGATED, "-f", "-c", str(gw.config)], capture_output=True,
                               text=True, timeout=10)
            assert r.returncode == 1, r
            assert "must be started as root" in r.stderr, r.stderr
            return
        gw.start()
        uids, gids, groups = _ids(gw.proc.pid)
        assert uids == [nobody.pw_uid] * 4, uids
        assert gids == [nobody.pw_gid] * 4, gids
        assert 0 not in groups, groups
        assert (work / "gw" / "spool" / "queue").stat().st_uid == nobody.pw_uid
        smtp_send(gw.port, "a@client.test", ["bob@example.test"], make_message("as nobody"))
        got = sink.wait_for(1)  # AssertionError if nothing arrives after the drop
        assert b"Subject: as nobody" in got[0].content
        problems = gw.teardown()
        assert not problems, problems
    finally:
        if gw.proc is not None:
            gw.teardown()
        shutil.rmtree(work, ignore_errors=True)


# -- what root does in the daemon's directories ----------------------------------------
# The daemon user owns the spool and the state directory: whatever it left
# there (a compromised account, before this start or during it) must never
# make root hand it anything else. Each test plants what such an account
# could, and checks that nothing outside the two trees changed owner.

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="starts mxgated as root")


@pytest.fixture
def work():
    """A world-traversable work directory (pytest's tmp_path is root's 0700) holding
    `outside`, root's files that the daemon user must never get."""
    d = Path(tempfile.mkdtemp(prefix="mxgate-privs-"))
    os.chmod(d, 0o755)
    out = d / "outside"
    (out / "sub").mkdir(parents=True)
    os.chmod(out, 0o755)
    for name in ("secret", "secret2"):
        (out / name).write_text("root's\n")
        os.chmod(out / name, 0o600)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _owners(work):
    """uid of every file and directory under work/outside (the symlinks' targets)."""
    out = work / "outside"
    return {str(p.relative_to(work)): p.lstat().st_uid
            for p in [out, *sorted(out.rglob("*"))]}


def _nobody_tree(root, subdirs=()):
    """root and its subdirs, made as an earlier start would have: nobody's, 0700."""
    nobody = pwd.getpwnam("nobody")
    for d in (root, *(root / s for s in subdirs)):
        d.mkdir(parents=True, exist_ok=True)
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
        os.chmod(d, 0o700)


SPOOL_SUBDIRS = ("tmp", "queue", "log", "corrupt", "free")


def _nobody_gateway(work, sink):
    return Gateway(work / "gw", sink.port, extra='user = "nobody"\n')


def _fails_to_start(gw, pattern):
    """mxgated exits 1 at start-up with a line matching pattern on stderr."""
    try:
        r = subprocess.run([MXGATED, "-f", "-c", str(gw.config)], capture_output=True,
                           text=True, timeout=5, cwd=str(gw.dir), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:  # run() has killed it
        pytest.fail("mxgated started instead of refusing to: %s" % (e.stderr or b"").decode())
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(r"event=fatal what=privileges error=.*" + pattern, r.stderr), r.stderr
    return r


@needs_root
def test_planted_links_are_never_followed(work, sink):
    gw = _nobody_gateway(work, sink)
    spool, state, out = gw.dir / "spool", gw.dir / "state", work / "outside"
    _nobody_tree(spool, SPOOL_SUBDIRS)
    _nobody_tree(state)
    before = _owners(work)
    # What the daemon account can plant (hard links to root's files need
    # fs.protected_hardlinks=0 for it; root here plants them regardless).
    os.link(out / "secret", spool / "queue" / "planted-hardlink")
    os.link(out / "secret", spool / "planted-hardlink")
    os.link(out / "secret2", state / "planted-hardlink")
    os.symlink(out, spool / "planted-dirlink")
    os.symlink(out, spool / "queue" / "planted-dirlink")
    os.symlink(out / "sub", state / "planted-dirlink")
    os.symlink(out / "secret2", state / "planted-filelink")
    try:
        gw.start()
        smtp_send(gw.port, "a@client.test", ["bob@example.test"], make_message("links"))
        assert b"Subject: links" in sink.wait_for(1)[0].content
        assert not gw.teardown()
    finally:
        gw.teardown()
    assert _owners(work) == before
    assert all(v == 0 for v in before.values()), before
    assert (out / "secret").stat().st_nlink == 3  # the hard links were there all along


@needs_root
@pytest.mark.parametrize("where", ["spool_dir", "state_dir", "spool/queue", "spool/free"])
def test_symlinked_directory_refused(work, sink, where):
    gw = _nobody_gateway(work, sink)
    spool, state, out = gw.dir / "spool", gw.dir / "state", work / "outside"
    _nobody_tree(spool, SPOOL_SUBDIRS)
    _nobody_tree(state)
    link = {"spool_dir": spool, "state_dir": state}.get(where, gw.dir / where)
    shutil.rmtree(link)
    os.symlink(out, link)
    before = _owners(work)
    _fails_to_start(gw, re.escape(str(link.name)) + " is a symbolic link")
    assert _owners(work) == before
    assert not any((out / s).exists() for s in SPOOL_SUBDIRS + ("db", "control.sock"))


@needs_root
def test_symlink_inside_the_daemons_tree_refused(work, sink):
    """spool_dir under state_dir: the daemon owns state_dir, so a symlink it puts
    there must not make root create (and give it) a directory elsewhere."""
    gw = _nobody_gateway(work, sink)
    state, out = gw.dir / "state", work / "outside"
    _nobody_tree(state)
    os.symlink(out, state / "in")
    gw.config.write_text(gw.config.read_text().replace(
        'spool_dir = "%s"' % (gw.dir / "spool"), 'spool_dir = "%s"' % (state / "in" / "spool")))
    before = _owners(work)
    _fails_to_start(gw, "in is a symbolic link in a directory that others than root can write")
    assert not (out / "spool").exists()
    assert _owners(work) == before


@needs_root
def test_dotdot_after_the_daemons_directory_refused(work, sink):
    """The daemon can move a directory it owns anywhere it can write: the ".." of
    state/x may be somewhere else by the time root looks it up."""
    gw = _nobody_gateway(work, sink)
    state = gw.dir / "state"
    _nobody_tree(state, ["x"])
    gw.config.write_text(gw.config.read_text().replace(
        'spool_dir = "%s"' % (gw.dir / "spool"), 'spool_dir = "%s/x/../spool"' % state))
    _fails_to_start(gw, r"\.\. after a directory that others than root can write")
    assert not (state / "spool").exists()


@needs_root
@pytest.mark.parametrize("relative", [False, True])
def test_root_symlink_on_the_way_is_followed(work, sink, relative):
    """A symlink only root could have made (in a root-owned 0755 directory) may lead
    to the spool, as /var/run -> /run does."""
    nobody = pwd.getpwnam("nobody")
    gw = _nobody_gateway(work, sink)
    real = work / "real"
    real.mkdir(mode=0o755)
    os.symlink("../real" if relative else real, gw.dir / "via")
    gw.config.write_text(gw.config.read_text().replace(
        'spool_dir = "%s"' % (gw.dir / "spool"), 'spool_dir = "%s"' % (gw.dir / "via" / "spool")))
    try:
        gw.start()
        assert (real / "spool").stat().st_uid == nobody.pw_uid
        assert (real / "spool" / "queue").stat().st_uid == nobody.pw_uid
        assert real.stat().st_uid == 0
        smtp_send(gw.port, "a@client.test", ["bob@example.test"], make_message("via"))
        assert b"Subject: via" in sink.wait_for(1)[0].content
        assert not gw.teardown()
    finally:
        gw.teardown()


@needs_root
def test_symlink_loop_on_the_way_refused(work, sink):
    gw = _nobody_gateway(work, sink)
    os.symlink("loop", gw.dir / "loop")
    gw.config.write_text(gw.config.read_text().replace(
        'spool_dir = "%s"' % (gw.dir / "spool"), 'spool_dir = "%s"' % (gw.dir / "loop" / "spool")))
    _fails_to_start(gw, "loop is a symbolic link")


@needs_root
@pytest.mark.parametrize("where", ["spool_dir", "spool/log", "state_dir"])
def test_directory_of_another_user_refused(work, sink, where):
    gw = _nobody_gateway(work, sink)
    _nobody_tree(gw.dir / "spool", SPOOL_SUBDIRS)
    _nobody_tree(gw.dir / "state")
    d = {"spool_dir": gw.dir / "spool", "state_dir": gw.dir / "state"}.get(where, gw.dir / where)
    os.chown(d, 4242, 4242)
    _fails_to_start(gw, re.escape(str(d)) + " is owned by uid 4242, neither root nor nobody")
    assert d.stat().st_uid == 4242


@needs_root
def test_restart_keeps_queue_as_nobody(work, sink):
    """The spool made by the first start as root keeps working: messages queued
    then survive a restart, mxgatectl (as root) reads them, and they go out."""
    nobody = pwd.getpwnam("nobody")
    gw = _nobody_gateway(work, sink)
    try:
        gw.start()
        for d in ("spool", "spool/queue", "spool/tmp", "state", "state/db"):
            assert (gw.dir / d).stat().st_uid == nobody.pw_uid, d
        sink.stop()
        qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"], make_message("kept"))
        gw.wait_log(r"event=deferred id=%s " % qid)
        assert gw.stop() == 0
        assert (gw.dir / "spool" / "queue" / qid).stat().st_uid == nobody.pw_uid
        r = gw.ctl("queue", "list")
        assert r.returncode == 0 and qid in r.stdout, r
        sink.start()
        gw.start()
        r = gw.ctl("queue", "flush")
        assert r.returncode == 0, r
        assert b"Subject: kept" in sink.wait_for(1, timeout=8)[0].content
        gw.wait_log(r"event=removed id=%s" % qid)
        assert not gw.teardown()
    finally:
        gw.teardown()


@needs_root
def test_mxgatectl_reads_the_spool_as_the_daemon_user(work, sink):
    """mxgatectl run by root reads the spool with the daemon user's rights: a queue
    file that the daemon account replaced by a symlink to a file only root may
    read shows nothing."""
    gw = _nobody_gateway(work, sink)
    sink.stop()
    try:
        gw.start()
        qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"],
                         make_message("only root may read this"))
        gw.wait_log(r"event=deferred id=%s " % qid)
        assert gw.stop() == 0
    finally:
        gw.teardown()
    r = gw.ctl("queue", "show", qid)
    assert r.returncode == 0 and "only root may read this" in r.stdout, r
    queued, private = gw.dir / "spool" / "queue" / qid, work / "outside" / qid
    shutil.copyfile(queued, private)
    os.chmod(private, 0o600)
    queued.unlink()
    os.symlink(private, queued)
    r = gw.ctl("queue", "show", qid)
    assert r.returncode == 1 and "no such message" in r.stderr, r
    assert "only root may read this" not in r.stdout, r.stdout


def _chown_tree(top, uid, gid):
    """chown -R, as the operator would (top is ours to trust here)."""
    os.lchown(top, uid, gid)
    for p in top.rglob("*"):
        os.lchown(p, uid, gid)


@needs_root
def test_files_of_a_root_only_run_are_named_not_taken_over(work, sink):
    """After a run as root without `user`, root hands over the directories but none
    of the files in them: the daemon says which ones wait for `chown -R`, and they go
    out once it is done."""
    nobody = pwd.getpwnam("nobody")
    gw = Gateway(work / "gw", sink.port)
    sink.stop()
    try:
        gw.start()
        qid = smtp_queue(gw.port, "a@client.test", ["b@example.test"],
                         make_message("from the root run"))
        gw.wait_log(r"event=deferred id=%s " % qid)
        assert gw.stop() == 0
    finally:
        gw.teardown()
    spool, state = gw.dir / "spool", gw.dir / "state"
    assert (spool / "queue" / qid).stat().st_uid == 0
    gw.config.write_text(gw.config.read_text() + 'user = "nobody"\n')
    _chown_tree(state, nobody.pw_uid, nobody.pw_gid)  # the store's files: or it cannot start
    sink.start()
    try:
        gw.start()
        assert (spool / "queue").stat().st_uid == nobody.pw_uid
        assert (spool / "queue" / qid).stat().st_uid == 0
        gw.wait_log(r"event=spool_foreign count=[12] first=(queue|log)/%s user=nobody " % qid)
        assert gw.stop() == 0
        _chown_tree(spool, nobody.pw_uid, nobody.pw_gid)
        mark = gw.log_mark()
        gw.start()
        assert b"Subject: from the root run" in sink.wait_for(1, timeout=8)[0].content
        gw.wait_log(r"event=removed id=%s" % qid, since=mark)
        assert "spool_foreign" not in gw.log_text()[mark:]
        assert not gw.teardown()
    finally:
        gw.teardown()
