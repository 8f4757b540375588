"""The Python program of README.md works exactly as written.

Its first ```python block is run as it is, with only the four paths it names
replaced by temporary ones; the restored disk must equal the original.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from conftest import PKG, REPO

PATHS = ('"/var/lib/harvbk"', '"file:///backups"', '"/images/web.raw"', '"/restore"')


def readme_program() -> str:
    readme = pathlib.Path(os.environ.get("HARVBK_README", REPO / "README.md"))
    lines, inside = [], False
    for line in readme.read_text().splitlines():
        if not inside and line.strip() == "```python":
            inside = True
        elif inside and line.startswith("```"):
            break
        elif inside:
            lines.append(line)
    assert lines, f"no ```python block in {readme}"
    return "\n".join(lines) + "\n"


def test_readme_program(tmp_path, make_disk):
    program = readme_program()
    assert len(program.splitlines()) <= 10, "the README program is meant to be 10 lines"
    disk = make_disk("web.raw", size=5 * 1024 * 1024 + 4321, seed=11)
    restore = tmp_path / "restore"
    restore.mkdir()
    subst = dict(zip(PATHS, (f'"{tmp_path / "state"}"', f'"file://{tmp_path / "backups"}"',
                             f'"{disk}"', f'"{restore}"')))
    for old, new in subst.items():
        assert program.count(old) == 1, f"the README program no longer names {old}"
        program = program.replace(old, new)
    script = tmp_path / "readme_program.py"
    script.write_text(program)

    env = dict(os.environ)
    env["PYTHONPATH"] = str(PKG) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    size = os.path.getsize(disk)
    out = r.stdout.splitlines()
    # progress lines "done total", the last one complete
    i = out.index("Ready")
    progress = [tuple(map(int, ln.split())) for ln in out[:i]]
    assert progress and progress[-1] == (size, size)
    assert all(t == size for _, t in progress)
    [listed] = out[i + 1:]
    name, uploaded = listed.split()
    assert name == "web-1" and 0 < int(uploaded) < size
    assert (restore / "root.raw").read_bytes() == disk.read_bytes()
