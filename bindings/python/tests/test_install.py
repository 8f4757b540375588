"""`pip install` of the package works offline with what Debian ships
(python3-pip, python3-setuptools, python3-wheel; no download)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import PKG


def test_pip_install_offline(tmp_path):
    # a copy: setuptools builds in the source tree (build/, *.egg-info)
    src = tmp_path / "src"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("tests", "examples", "build",
                                                            "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-deps", "--target", str(target), str(src)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    files = sorted(p.name for p in (target / "harvbk").iterdir() if p.is_file())
    assert "py.typed" in files and "__init__.py" in files and "_lib.py" in files
    assert not (target / "tests").exists()

    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c",
                        "import harvbk, sys; print(harvbk.__file__); "
                        "print(harvbk.version()); print(harvbk.NotFound.CODE)"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path, version, code = r.stdout.split()
    assert path == str(target / "harvbk" / "__init__.py")
    assert version.startswith("1.") and code == "-5"
