"""Encrypted stores through the binding: Key objects, session keys, key slots
(add, remove, list, rotation), refused key files and the encrypted snapshot
store (harvbk/key.h)."""
from __future__ import annotations

import hashlib
import os
import pathlib
import pickle
import re
from typing import Dict

import pytest

import harvbk

MiB = 1024 * 1024
METADATA_SECRET = b"py-keys-metadata-secret"


def private_file(path: pathlib.Path, data: bytes, mode: int = 0o600) -> pathlib.Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def tree(root: pathlib.Path) -> Dict[str, str]:
    """Every file under root: relative path -> SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def blobs(root: pathlib.Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def vm_of(disk: pathlib.Path, name: str = "web") -> harvbk.VM:
    return harvbk.VM("default", name, disks={"root": disk},
                     metadata=b'{"spec":{"password":"' + METADATA_SECRET + b'"}}')


def restore_equal(ctx: harvbk.Context, backup: str, disk: pathlib.Path,
                  into: pathlib.Path, *, snapshot: bool = False) -> None:
    into.mkdir()
    if snapshot:
        op = ctx.restore_snapshot("default", backup, new_vm=f"default/copy-{into.name}",
                                  into=into)
    else:
        op = ctx.restore("default", backup, new_vm=f"default/copy-{into.name}", into=into)
    assert op.wait()
    assert (into / "root.raw").read_bytes() == disk.read_bytes()


# ---- Key objects

def test_key_objects(tmp_path):
    kf = private_file(tmp_path / "k", os.urandom(32))
    pf = private_file(tmp_path / "p", b"correct horse battery staple\n")
    keys = [harvbk.Key.from_file(kf), harvbk.Key.from_file(str(kf)),
            harvbk.Key.from_passphrase_file(pf), harvbk.Key.from_passphrase("pass phrase"),
            harvbk.Key.from_passphrase(b"pass phrase"),
            harvbk.Key.from_bytes(os.urandom(32)), harvbk.Key.from_bytes(bytearray(64)),
            harvbk.Key.from_bytes(memoryview(os.urandom(48)))]
    assert [k.kind for k in keys] == ["key-file"] * 2 + ["passphrase"] * 3 + ["key-file"] * 3
    for k in keys:
        assert not k.closed and "pass phrase" not in repr(k)
        k.close()
        k.close()                       # twice is fine
        assert k.closed and "closed" in repr(k)
    with pytest.raises(ValueError):     # a closed key is refused before the library
        harvbk.TargetConfig("file:///x", key=keys[0])
    with harvbk.Key.from_passphrase("x") as k:
        with pytest.raises(TypeError):
            pickle.dumps(k)
    assert k.closed
    with pytest.raises(TypeError):
        harvbk.Key()                    # type: ignore[call-arg]

    # sizes and contents the library refuses
    with pytest.raises(harvbk.InvalidArgument) as ei:
        harvbk.Key.from_bytes(b"too short")
    assert "32 to 4096" in ei.value.message
    with pytest.raises(harvbk.InvalidArgument):
        harvbk.Key.from_bytes(bytes(4097))
    with pytest.raises(harvbk.InvalidArgument):
        harvbk.Key.from_passphrase("")
    with pytest.raises(ValueError):
        harvbk.Key.from_passphrase(b"nul\0inside")
    with pytest.raises(harvbk.NotFound):
        harvbk.Key.from_file(tmp_path / "missing")
    with pytest.raises(harvbk.InvalidArgument):
        harvbk.Key.from_file(private_file(tmp_path / "short", b"12345"))

    # a configuration's session key: has_key, never in its settings
    with harvbk.Key.from_bytes(os.urandom(32)) as k, harvbk.TargetConfig("file:///x") as cfg:
        assert not cfg.has_key and cfg["encrypt"] == "0"
        cfg.set_key(k)
        assert cfg.has_key and cfg["encrypt"] == "1" and "key=set" in repr(cfg)
        cfg.set_key(None)
        assert not cfg.has_key
        with pytest.raises(TypeError):
            cfg.set_key("not a key")    # type: ignore[arg-type]


def test_group_readable_key_file_refused(tmp_path):
    """A key or passphrase file group or others may read: PermissionDenied
    (a PermissionError) saying chmod 600, and no store is created."""
    kf = private_file(tmp_path / "store.key", os.urandom(32), 0o640)
    pf = private_file(tmp_path / "pass", b"a passphrase\n", 0o604)
    for make, path in ((harvbk.Key.from_file, kf), (harvbk.Key.from_passphrase_file, pf)):
        with pytest.raises(PermissionError) as ei:
            make(path)
        assert isinstance(ei.value, harvbk.PermissionDenied) and ei.value.code == -18
        assert "chmod 600" in ei.value.message
    target = tmp_path / "target"
    with harvbk.Context(tmp_path / "state") as ctx:
        with pytest.raises(harvbk.PermissionDenied):
            ctx.set_target(f"file://{target}", key_file=str(kf))
        with pytest.raises(harvbk.PermissionDenied):
            ctx.set_target(f"file://{target}", passphrase_file=str(pf))
        with pytest.raises(harvbk.PermissionDenied):
            ctx.set_snapshot_store(str(tmp_path / "snaps"), key_file=str(kf))
        with pytest.raises(harvbk.NoTarget):
            ctx.target
    assert not (target / "harvbk-store.json").exists()
    assert not (tmp_path / "snaps" / "harvbk-store.json").exists()
    kf.chmod(0o600)
    harvbk.Key.from_file(kf).close()


# ---- session keys

def test_session_key_round_trip(tmp_path, make_disk):
    """A store encrypted under a key given for the session only: round trip,
    and neither the key nor the passphrase appear in the state directory; a
    new process (context) needs the key again."""
    raw = os.urandom(32)
    passphrase = "session passphrase never stored"
    target, state = tmp_path / "target", tmp_path / "state"
    disk = make_disk("root.raw", 2 * MiB + 777, seed=5)
    with harvbk.Context(state) as ctx:
        with harvbk.Key.from_bytes(raw) as key:
            ctx.set_target(f"file://{target}", key=key, chunk_size=65536)
        shown = ctx.target
        assert shown["encrypt"] == "1" and shown["key_file"] == "" and not shown.has_key
        assert ctx.backup(vm_of(disk), "b1").wait()
        restore_equal(ctx, "b1", disk, tmp_path / "r1")
        keys = ctx.store_keys()
        assert keys.encrypted and keys.unlocked and len(keys) == 1
        assert re.fullmatch(r"[0-9a-f]{32}", keys.fingerprint)
        assert keys.keys[0].kind == "key-file" and keys.keys[0].in_use
        # a passphrase slot too, then the session switches to it
        with harvbk.Key.from_passphrase(passphrase) as pw:
            pid = ctx.store_key_add(pw)
            ctx.set_target_key(pw)
        assert re.fullmatch(r"[0-9a-f]{16}", pid)
        assert ctx.store_keys().in_use.id == pid      # type: ignore[union-attr]
        restore_equal(ctx, "b1", disk, tmp_path / "r2")

    # another process on the same state directory: no key, then the key
    with harvbk.Context(state) as ctx:
        with pytest.raises(harvbk.WrongKey) as ei:
            ctx.check_target()
        assert "key" in ei.value.message
        assert not ctx.store_keys().unlocked
        with harvbk.Key.from_passphrase(passphrase) as pw:
            ctx.set_target_key(pw)
        ctx.check_target()
        restore_equal(ctx, "b1", disk, tmp_path / "r3")
        ctx.set_target_key(None)
        with pytest.raises(harvbk.WrongKey):
            ctx.check_target()

    state_bytes = blobs(state)
    assert state_bytes                                   # the state directory was written
    assert raw not in state_bytes and raw.hex().encode() not in state_bytes
    assert passphrase.encode() not in state_bytes
    store = blobs(target)
    assert METADATA_SECRET not in store and raw not in store
    assert disk.read_bytes()[:64] not in store           # no plaintext run of the disk


def test_wrong_key_writes_nothing(tmp_path, make_disk):
    """A wrong key: WrongKey when the target is set or an operation starts,
    and not a byte of the store changes; nothing is restored."""
    k1 = private_file(tmp_path / "k1", os.urandom(32))
    k2 = private_file(tmp_path / "k2", os.urandom(32))
    target = tmp_path / "target"
    disk = make_disk("root.raw", 1 * MiB, seed=6)
    with harvbk.Context(tmp_path / "state") as ctx:
        ctx.set_target(f"file://{target}", key_file=str(k1), chunk_size=65536)
        assert ctx.backup(vm_of(disk), "b1").wait()
        fp = ctx.store_keys().fingerprint
    before = tree(target)
    assert "harvbk-store.json" in before and len(before) > 3

    with harvbk.Context(tmp_path / "state2") as ctx2:
        with pytest.raises(harvbk.WrongKey) as ei:
            ctx2.set_target(f"file://{target}", key_file=str(k2))
        assert ei.value.code == -36 and "wrong key" in ei.value.message
        with harvbk.Key.from_passphrase("not it") as bad:
            with pytest.raises(harvbk.WrongKey):
                ctx2.set_target(f"file://{target}", key=bad)
        with pytest.raises(harvbk.WrongKey):
            ctx2.set_target(f"file://{target}")          # no key for an encrypted store
    assert tree(target) == before

    # the context whose key is now wrong: every operation is refused
    with harvbk.Context(tmp_path / "state") as ctx:
        with harvbk.Key.from_file(k2) as bad:
            ctx.set_target_key(bad)
        with pytest.raises(harvbk.WrongKey):
            ctx.backup(vm_of(disk), "b2").wait()
        into = tmp_path / "restore"
        with pytest.raises(harvbk.WrongKey):
            ctx.restore("default", "b1", new_vm="default/copy", into=into).wait()
        assert not into.exists()
        with pytest.raises(harvbk.WrongKey):
            ctx.verify("default", "b1").wait()
        with pytest.raises(harvbk.WrongKey):
            ctx.store_key_add(harvbk.Key.from_passphrase("x"))
        listed = ctx.store_keys()                        # readable without the key
        assert listed.encrypted and not listed.unlocked and listed.fingerprint == fp
        assert listed.in_use is None
    assert tree(target) == before


def test_key_rotation(tmp_path, make_disk):
    """Add a passphrase, switch the configuration to it, remove the key
    file's slot: the store key (fingerprint) and every chunk stay, restores
    still give the same bytes, the old key file no longer opens the store."""
    k1 = private_file(tmp_path / "k1", os.urandom(32))
    pf = private_file(tmp_path / "pass", b"rotate me, I am the new key\n")
    target = tmp_path / "target"
    url = f"file://{target}"
    disk = make_disk("root.raw", 2 * MiB, seed=7)
    with harvbk.Context(tmp_path / "state") as ctx:
        ctx.set_target(url, key_file=str(k1), chunk_size=65536)
        assert ctx.backup(vm_of(disk), "b1").wait()
        keys = ctx.store_keys()
        old = keys.in_use
        assert old is not None and old.kind == "key-file" and old.created > 0
        assert old.created_at is not None
        chunks = {p: h for p, h in tree(target).items() if p.startswith("chunks")}
        assert chunks

        with harvbk.Key.from_passphrase_file(pf) as pw:
            new_id = ctx.store_key_add(pw)
            with pytest.raises(harvbk.AlreadyExists):
                ctx.store_key_add(pw)
        with pytest.raises(harvbk.WrongState) as ei:
            ctx.store_key_remove(old.id)             # the key in use
        assert "opened the store with" in ei.value.message
        listed = ctx.store_keys()
        assert sorted(k.id for k in listed) == sorted([old.id, new_id])
        assert {k.kind for k in listed} == {"key-file", "passphrase"}

        ctx.set_target(url, passphrase_file=str(pf))  # switch
        assert ctx.target["passphrase_file"] == str(pf) and ctx.target["key_file"] == ""
        ctx.store_key_remove(old.id)
        with pytest.raises(harvbk.NotFound):
            ctx.store_key_remove(old.id)
        with pytest.raises(harvbk.WrongState):
            ctx.store_key_remove(new_id)                 # the last key
        after = ctx.store_keys()
        assert after.fingerprint == keys.fingerprint
        assert [(k.id, k.kind, k.in_use) for k in after] == [(new_id, "passphrase", True)]
        restore_equal(ctx, "b1", disk, tmp_path / "r1")
        assert ctx.backup(vm_of(disk), "b2").wait()
    current = tree(target)
    assert all(current.get(p) == h for p, h in chunks.items())   # no chunk rewritten

    with harvbk.Context(tmp_path / "state2") as ctx2:
        with pytest.raises(harvbk.WrongKey):
            ctx2.set_target(url, key_file=str(k1))
        ctx2.set_target(url, passphrase_file=str(pf))
        restore_equal(ctx2, "b2", disk, tmp_path / "r2")


# ---- the snapshot store

def test_encrypted_snapshot_store(tmp_path, make_disk):
    snaps = tmp_path / "snaps"
    kf = private_file(tmp_path / "snap.key", os.urandom(32))
    disk = make_disk("root.raw", 1 * MiB + 4321, seed=8)
    passphrase = "snapshot passphrase"
    with harvbk.Context(tmp_path / "state") as ctx:
        with harvbk.Key.from_passphrase(passphrase) as pw:
            ctx.set_snapshot_store(str(snaps), chunk_size=65536, key=pw)
        assert ctx.snapshot(vm_of(disk), "s1").wait()
        restore_equal(ctx, "s1", disk, tmp_path / "r1", snapshot=True)
        keys = ctx.store_keys(snapshot_store=True)
        assert keys.encrypted and keys.unlocked
        assert [k.kind for k in keys] == ["passphrase"]
        with harvbk.Key.from_file(kf) as k:
            kid = ctx.store_key_add(k, snapshot_store=True)
        assert {k.id for k in ctx.store_keys(snapshot_store=True)} >= {kid}
        with pytest.raises(harvbk.NoTarget):             # the target's store: none here
            ctx.store_keys()
    store = blobs(snaps)
    assert b"aes-256-gcm" in store and METADATA_SECRET not in store
    assert disk.read_bytes()[:64] not in store
    assert passphrase.encode() not in blobs(tmp_path / "state")

    # a new process: no key -> WrongKey and nothing written; then the key
    # file through the settings
    before = tree(snaps)
    with harvbk.Context(tmp_path / "state") as ctx:
        with pytest.raises(harvbk.WrongKey):
            ctx.snapshot(vm_of(disk), "s2").wait()
        with harvbk.Key.from_passphrase("wrong") as bad:
            ctx.set_snapshot_store_key(bad)
        with pytest.raises(harvbk.WrongKey):
            ctx.restore_snapshot("default", "s1", new_vm="default/x",
                                 into=tmp_path / "rx").wait()
        assert not (tmp_path / "rx").exists()
        assert tree(snaps) == before
        ctx.set_snapshot_store_key(None)
        ctx.set_snapshot_store(str(snaps), key_file=str(kf))
        restore_equal(ctx, "s1", disk, tmp_path / "r2", snapshot=True)
        assert ctx.snapshot(vm_of(disk), "s2").wait()
        assert ctx.store_keys(snapshot_store=True).in_use.id == kid  # type: ignore[union-attr]

    # a plaintext snapshot store cannot be made encrypted
    with harvbk.Context(tmp_path / "state3") as ctx3:
        plain = tmp_path / "plain"
        ctx3.set_snapshot_store(str(plain))
        assert ctx3.snapshot(vm_of(disk), "p1").wait()
        assert not ctx3.store_keys(snapshot_store=True).encrypted
        with pytest.raises(harvbk.WrongState):
            ctx3.set_snapshot_store(str(plain), key_file=str(kf))
        with pytest.raises(harvbk.WrongState):
            ctx3.store_key_add(harvbk.Key.from_file(kf), snapshot_store=True)
