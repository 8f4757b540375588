"""Fixtures of the Python binding's tests.

The binding is imported from this source tree (tests/run-pytest.sh puts it
on PYTHONPATH) and loads the library named by HARVBK_LIBRARY. S3 tests read
the servers' env file named by HARVBK_TEST_S3_ENV (tests/s3/s3env.sh); NFS
tests run inside the NFS server's network namespace with HARVBK_TEST_NFS_*
set (tests/nfs/in-netns.sh). Without those variables (a plain `pytest` run)
the S3/NFS tests are skipped, saying why; under ctest they are always set.
"""
from __future__ import annotations

import os
import pathlib
import uuid
from typing import Callable, Dict, Iterator

import pytest

import harvbk

HERE = pathlib.Path(__file__).resolve().parent
PKG = HERE.parent                 # bindings/python
REPO = PKG.parent.parent          # the repository


def pattern(size: int, seed: int = 1) -> bytes:
    """Reproducible disk bytes: pseudo-random data with a run of zeros in the
    middle (a hole the store never writes)."""
    import random
    rnd = random.Random(seed)
    third = size // 3
    return (rnd.randbytes(third) + bytes(third) + rnd.randbytes(size - 2 * third))


@pytest.fixture
def make_disk(tmp_path: pathlib.Path) -> Callable[..., pathlib.Path]:
    """make_disk(name, size=3 MiB + 12345, seed=1) -> path of a new raw image."""
    def make(name: str = "disk.raw", size: int = 3 * 1024 * 1024 + 12345,
             seed: int = 1) -> pathlib.Path:
        p = tmp_path / "images" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(pattern(size, seed))
        return p
    return make


@pytest.fixture
def local_ctx(tmp_path: pathlib.Path) -> Iterator[harvbk.Context]:
    """A context on a fresh state directory with a file:// target."""
    target = tmp_path / "target"
    target.mkdir()
    with harvbk.Context(tmp_path / "state") as ctx:
        ctx.set_target(f"file://{target}")
        yield ctx


# ---- S3

def _read_env(path: str) -> Dict[str, str]:
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                env[k] = v
    return env


@pytest.fixture(scope="session")
def s3_env() -> Dict[str, str]:
    path = os.environ.get("HARVBK_TEST_S3_ENV")
    if not path:
        pytest.skip("HARVBK_TEST_S3_ENV is not set: start the S3 test servers with "
                    "tests/s3/s3env.sh start DIR and set it to DIR/env (ctest does)")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: the S3 test servers are not running "
                    "(ctest fixture s3/setup failed?)")
    env = _read_env(path)
    with open(env["HARVBK_TEST_S3_SECRET_FILE"], encoding="utf-8") as f:
        env["secret"] = f.read().strip()
    return env


@pytest.fixture
def s3_target(s3_env: Dict[str, str]) -> Dict[str, object]:
    """set_target() arguments of a fresh prefix of the test bucket."""
    prefix = f"py-{uuid.uuid4().hex[:12]}"
    return {"url": f"s3://{s3_env['HARVBK_TEST_S3_BUCKET']}/{prefix}",
            "endpoint": s3_env["HARVBK_TEST_S3_ENDPOINT"],
            "region": s3_env["HARVBK_TEST_S3_REGION"],
            "access_key_id": s3_env["HARVBK_TEST_S3_ACCESS_KEY_ID"],
            "secret_access_key": s3_env["secret"],
            "prefix": prefix}


# ---- NFS

@pytest.fixture
def nfs_target() -> Dict[str, str]:
    url = os.environ.get("HARVBK_TEST_NFS_URL")
    if not url:
        pytest.skip("HARVBK_TEST_NFS_URL is not set: run inside the NFS test server's "
                    "namespace (tests/nfs/in-netns.sh; ctest python/nfs does)")
    sub = f"py-{uuid.uuid4().hex[:12]}"
    return {"url": f"{url}/{sub}", "sub": sub,
            "export_dir": os.environ["HARVBK_TEST_NFS_EXPORT_DIR"]}
