"""Exceptions: every HARVBK_E_* code has its class, messages are per thread."""
from __future__ import annotations

import pickle
import re
import threading

import pytest

import harvbk
from conftest import REPO


def header_codes():
    """(NAME, value) of every error code in include/harvbk/common.h."""
    text = (REPO / "include" / "harvbk" / "common.h").read_text()
    codes = [(m.group(1), int(m.group(2)))
             for m in re.finditer(r"X\((E_[A-Z_]+),\s*(-\d+),", text)]
    assert len(codes) >= 35, "could not read the error table of common.h"
    return codes


def test_every_code_has_its_class():
    seen = set()
    for name, value in header_codes():
        cls = harvbk.error_class(value)
        assert cls is not harvbk.HarvbkError, f"HARVBK_{name} ({value}) has no exception class"
        assert issubclass(cls, harvbk.HarvbkError)
        assert cls.CODE == value
        assert cls not in seen, f"{cls.__name__} is used for two codes"
        seen.add(cls)
        assert getattr(harvbk, cls.__name__) is cls          # exported
        e = harvbk.error_from_code(value, f"detail of {name}")
        assert type(e) is cls
        assert e.code == value
        assert e.name == f"HARVBK_{name}"                    # harvbk_error_name()
        assert e.message == f"detail of {name}"
        assert str(e) == f"detail of {name}"
        # without a message: the library's static text
        assert str(cls()) == harvbk.strerror(value) != "unknown error"
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is cls and again.code == value and again.message == e.message
    # and no class for a code the header does not have
    assert set(harvbk.ERRORS) == {v for _, v in header_codes()}


def test_named_classes_of_the_issue():
    assert harvbk.NotFound.CODE == -5
    assert harvbk.QuotaExceeded.CODE == -21
    assert harvbk.VMRunning.CODE == -22
    assert harvbk.ChunkCorrupt.CODE == -8
    assert harvbk.TargetUnreachable.CODE == -13
    assert harvbk.Cancelled.CODE == -11
    assert harvbk.CallbackFailed.CODE == -35


def test_builtin_bases():
    assert issubclass(harvbk.InvalidArgument, ValueError)
    assert issubclass(harvbk.NotFound, LookupError)
    assert issubclass(harvbk.OutOfMemory, MemoryError)
    assert issubclass(harvbk.TimedOut, TimeoutError)
    assert issubclass(harvbk.PermissionDenied, PermissionError)


def test_unknown_code():
    e = harvbk.error_from_code(-999, "from a newer library")
    assert type(e) is harvbk.HarvbkError
    assert e.code == -999 and e.message == "from a newer library"


def test_not_found_on_a_missing_backup(local_ctx):
    with pytest.raises(harvbk.NotFound) as ei:
        local_ctx.backup_info("default", "web-1")
    e = ei.value
    assert isinstance(e, harvbk.HarvbkError)
    assert e.code == -5 and e.name == "HARVBK_E_NOTFOUND"
    assert "default/web-1" in e.message
    with pytest.raises(harvbk.NotFound):
        local_ctx.restore("default", "web-1", new_vm="default/copy", into="/nonexistent")
    with pytest.raises(harvbk.NotFound):
        local_ctx.snapshot_info("default", "snap-1")
    with pytest.raises(harvbk.NotFound):
        local_ctx.vm("default", "web")
    with pytest.raises(harvbk.NotFound):
        local_ctx.schedule("default", "nightly")
    with pytest.raises(harvbk.NotFound):
        local_ctx.delete_backup("default", "web-1")


def test_calls_without_a_context_carry_the_message(tmp_path):
    with pytest.raises(harvbk.InvalidArgument) as ei:
        harvbk.VM("default", "Not_A_Label")
    assert "Not_A_Label" in ei.value.message
    vm = harvbk.VM("default", "web", disks={"root": "/a.raw"})
    with pytest.raises(harvbk.AlreadyExists) as ei:
        vm.add_disk("root", "/b.raw")
    assert "root" in ei.value.message
    with pytest.raises(harvbk.InvalidArgument) as ei:
        harvbk.TargetConfig("file:///x", chunk_size=1000)
    assert ei.value.message
    with pytest.raises(TypeError):
        harvbk.TargetConfig("file:///x", no_such_setting=1)
    notdir = tmp_path / "file"
    notdir.write_text("x")
    with pytest.raises(harvbk.HarvbkError) as ei:
        harvbk.Context(notdir / "state")     # harvbk_ctx_open: no context to hold it
    assert str(notdir) in ei.value.message


def test_messages_are_per_thread():
    """Two threads failing at the same time each read their own message."""
    errors = []
    barrier = threading.Barrier(2)

    def run(tag):
        try:
            barrier.wait()
            for i in range(2000):
                bad = f"bad_{tag}_{i}"
                try:
                    harvbk.VM("default", bad)
                except harvbk.InvalidArgument as e:
                    if bad not in e.message:
                        errors.append(f"{tag}: {e.message!r} does not name {bad}")
                        return
                else:
                    errors.append(f"{tag}: {bad} accepted")
                    return
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(t,)) for t in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_target_unreachable(tmp_path):
    """A refused connection (nothing listens on port 1)."""
    with harvbk.Context(tmp_path / "state") as ctx:
        with pytest.raises(harvbk.TargetUnreachable) as ei:
            ctx.set_target("s3://bucket/prefix", endpoint="http://127.0.0.1:1",
                           region="us-east-1", access_key_id="AKIDEXAMPLE",
                           secret_access_key="very-secret", timeout_ms=2000)
        assert "127.0.0.1:1" in ei.value.message
        assert "very-secret" not in ei.value.message
        with pytest.raises(harvbk.NoTarget):
            ctx.check_target()
