"""Round trips on S3 (the verifying proxy in front of s3rver) and NFS
(nfs-ganesha) targets: the test servers of tests/s3 and tests/nfs."""
from __future__ import annotations

import os

import pytest

import harvbk

MiB = 1024 * 1024


def round_trip(tmp_path, make_disk, settings, inspect=None):
    """Back up a two-disk VM, restore it in the same and in a second context,
    delete it; inspect() looks at the target after the backup."""
    root = make_disk("root.raw", 9 * MiB + 100, seed=21)      # > 2 chunks of 4 MiB
    data = make_disk("data.raw", 1 * MiB, seed=22)
    vm = harvbk.VM("default", "web", disks={"root": root, "data": data})
    with harvbk.Context(tmp_path / "a") as ctx:
        ctx.set_target(**settings)
        op = ctx.backup(vm, "web-1")
        assert op.wait()
        info = ctx.backup_info("default", "web-1")
        assert info.ready and info.logical_bytes == 10 * MiB + 100
        assert 0 < info.uploaded_bytes < info.logical_bytes
        if inspect:
            inspect()
        assert ctx.verify("default", "web-1").wait()
        into = tmp_path / "ra"
        into.mkdir()
        assert ctx.restore("default", "web-1", new_vm="web-copy", into=into).wait()
        assert (into / "root.raw").read_bytes() == root.read_bytes()
        assert (into / "data.raw").read_bytes() == data.read_bytes()

    # another cluster on the same target: imports the backup and restores it
    with harvbk.Context(tmp_path / "b") as other:
        other.set_target(**settings)
        assert [(b.name, b.state) for b in other.backups()] == [("web-1", "Ready")]
        into = tmp_path / "rb"
        into.mkdir()
        assert other.restore("default", "web-1", new_vm="web-copy", into=into).wait()
        assert (into / "root.raw").read_bytes() == root.read_bytes()
        assert other.delete_backup("default", "web-1")
        with pytest.raises(harvbk.NotFound):
            other.backup_info("default", "web-1")


def _s3_keys(s3_env, prefix):
    import boto3
    import botocore.config
    client = boto3.client("s3", endpoint_url=s3_env["HARVBK_TEST_S3_ENDPOINT"],
                          region_name=s3_env["HARVBK_TEST_S3_REGION"],
                          aws_access_key_id=s3_env["HARVBK_TEST_S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3_env["secret"],
                          config=botocore.config.Config(s3={"addressing_style": "path"}))
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=s3_env["HARVBK_TEST_S3_BUCKET"], Prefix=prefix + "/"):
        keys += [o["Key"][len(prefix) + 1:] for o in page.get("Contents", [])]
    return keys


@pytest.mark.s3
def test_s3_round_trip(tmp_path, make_disk, s3_env, s3_target):
    prefix = s3_target.pop("prefix")

    def inspect():   # the bucket holds the manifest, the indexes and chunks
        keys = _s3_keys(s3_env, prefix)
        assert "harvbk-store.json" in keys
        assert {"backups/default/web-1/manifest.json", "backups/default/web-1/root.idx",
                "backups/default/web-1/data.idx"} <= set(keys)
        assert sum(k.startswith("chunks/") for k in keys) >= 3

    round_trip(tmp_path, make_disk, s3_target, inspect)
    assert "backups/default/web-1/manifest.json" not in _s3_keys(s3_env, prefix)


@pytest.mark.s3
def test_s3_over_tls_with_a_target_config(tmp_path, make_disk, s3_env, s3_target):
    s3_target.pop("prefix")
    cfg = harvbk.TargetConfig(**s3_target)
    cfg.set("endpoint", s3_env["HARVBK_TEST_S3_ENDPOINT_TLS"])
    cfg["ca_cert_file"] = s3_env["HARVBK_TEST_S3_CA"]
    assert cfg.has_secret and "secret_access_key" not in cfg.as_dict()
    assert cfg["secret_access_key"] == ""                   # write-only
    disk = make_disk(size=2 * MiB)
    with harvbk.Context(tmp_path / "s") as ctx:
        ctx.set_target(cfg)
        shown = ctx.target
        assert shown.url == s3_target["url"] and shown["ca_cert_file"] == s3_env["HARVBK_TEST_S3_CA"]
        assert ctx.backup(harvbk.VM("default", "web", disks={"root": disk}), "b1").wait()
        into = tmp_path / "r"
        into.mkdir()
        assert ctx.restore("default", "b1", new_vm="copy", into=into).wait()
        assert (into / "root.raw").read_bytes() == disk.read_bytes()


@pytest.mark.s3
def test_s3_wrong_secret(tmp_path, s3_target):
    s3_target.pop("prefix")
    s3_target["secret_access_key"] = "not-the-secret"
    with harvbk.Context(tmp_path / "s") as ctx:
        with pytest.raises(harvbk.HarvbkError) as ei:
            ctx.set_target(**s3_target)
        assert isinstance(ei.value, (harvbk.TargetUnreachable, harvbk.PermissionDenied))
        assert "not-the-secret" not in ei.value.message


@pytest.mark.nfs
def test_nfs_round_trip(tmp_path, make_disk, nfs_target):
    store = os.path.join(nfs_target["export_dir"], nfs_target["sub"])

    def inspect():   # the server's side of the export: the store where the URL said
        entry = os.path.join(store, "backups", "default", "web-1")
        assert os.path.exists(os.path.join(store, "harvbk-store.json"))
        assert {"manifest.json", "root.idx", "data.idx"} <= set(os.listdir(entry))

    round_trip(tmp_path, make_disk, {"url": nfs_target["url"]}, inspect)
    assert not os.path.exists(os.path.join(store, "backups", "default", "web-1",
                                           "manifest.json"))


def _s3_bodies(s3_env, prefix):
    """Every object under prefix/: key -> bytes."""
    import boto3
    import botocore.config
    client = boto3.client("s3", endpoint_url=s3_env["HARVBK_TEST_S3_ENDPOINT"],
                          region_name=s3_env["HARVBK_TEST_S3_REGION"],
                          aws_access_key_id=s3_env["HARVBK_TEST_S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3_env["secret"],
                          config=botocore.config.Config(s3={"addressing_style": "path"}))
    return {k: client.get_object(Bucket=s3_env["HARVBK_TEST_S3_BUCKET"],
                                 Key=f"{prefix}/{k}")["Body"].read()
            for k in _s3_keys(s3_env, prefix)}


@pytest.mark.s3
def test_s3_encrypted_round_trip(tmp_path, make_disk, s3_env, s3_target):
    """An encrypted store on S3 under a session key (harvbk.Key): round trip
    in two contexts, no plaintext in the bucket, a wrong key is WrongKey and
    changes no object."""
    prefix = s3_target.pop("prefix")
    secret = b"py-s3-metadata-secret"
    key_bytes = os.urandom(32)
    root = make_disk("root.raw", 5 * MiB + 99, seed=31)
    vm = harvbk.VM("default", "web", disks={"root": root},
                   metadata=b'{"spec":{"password":"' + secret + b'"}}')
    with harvbk.Key.from_bytes(key_bytes) as key, harvbk.Context(tmp_path / "a") as ctx:
        ctx.set_target(key=key, chunk_size=MiB, **s3_target)
        assert ctx.target["encrypt"] == "1"
        assert ctx.backup(vm, "web-1").wait()
        keys = ctx.store_keys()
        assert keys.encrypted and keys.unlocked and len(keys.fingerprint) == 32
    objects = _s3_bodies(s3_env, prefix)
    assert "harvbk-store.json" in objects and b"aes-256-gcm" in objects["harvbk-store.json"]
    assert sum(k.startswith("chunks/") for k in objects) >= 5
    everything = b"".join(objects.values())
    assert secret not in everything and key_bytes not in everything
    assert root.read_bytes()[:64] not in everything
    assert root.read_bytes()[-4096:-4032] not in everything

    with harvbk.Context(tmp_path / "b") as other:
        with harvbk.Key.from_bytes(os.urandom(32)) as wrong:
            with pytest.raises(harvbk.WrongKey):
                other.set_target(key=wrong, **s3_target)
        assert _s3_bodies(s3_env, prefix) == objects          # nothing written
        with harvbk.Key.from_bytes(key_bytes) as key:
            other.set_target(key=key, **s3_target)
        into = tmp_path / "rb"
        into.mkdir()
        assert other.restore("default", "web-1", new_vm="web-copy", into=into).wait()
        assert (into / "root.raw").read_bytes() == root.read_bytes()
        assert other.delete_backup("default", "web-1")
