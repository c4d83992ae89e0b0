"""Started as root, mxgated binds, hands its directories to `user` and drops
every privilege; the spool still works afterwards."""
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import MXGATED, Gateway, make_message, smtp_send


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
