"""examples/backup_restore.py runs and says what it did."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import PKG


def run_example(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PKG) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, str(PKG / "examples" / "backup_restore.py"), *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_backup_restore_example(tmp_path, make_disk):
    disk = make_disk("web.raw", size=4 * 1024 * 1024 + 100)
    restore = tmp_path / "restore"
    restore.mkdir()
    r = run_example(str(tmp_path / "state"), str(tmp_path / "target"), str(disk), str(restore))
    assert r.returncode == 0, r.stderr
    size = os.path.getsize(disk)
    lines = r.stdout.splitlines()
    assert lines[-1] == f"restored as default/web-copy: {restore / 'root.raw'}"
    assert f"  backup 100% ({size} of {size} bytes)" in lines
    [summary] = [ln for ln in lines if ln.startswith("backup default/web-1: ")]
    assert summary.startswith(f"backup default/web-1: Ready, {size} bytes, ")
    assert "no backup default/web-0: HARVBK_E_NOTFOUND" in lines
    assert (restore / "root.raw").read_bytes() == disk.read_bytes()

    # run again: the backup exists now, reported as an error
    r = run_example(str(tmp_path / "state"), str(tmp_path / "target"), str(disk), str(restore))
    assert r.returncode == 1
    assert r.stderr.startswith("failed: HARVBK_E_EXISTS: ")

    r = run_example()
    assert r.returncode == 2 and "usage: backup_restore.py" in r.stderr
