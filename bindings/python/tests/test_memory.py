"""10,000 create/free cycles of each kind of object without RSS growth.

Each test runs 1,000 cycles first (caches, allocator pools, lazily loaded
code), then measures the resident set size (/proc/self/statm) around 10,000
more. A leak of the C object of one cycle - a VM with a 4 KiB metadata
document, a target configuration with long settings, a 4 KiB key, a
context, a backup list - is at least several hundred bytes, i.e. megabytes over 10,000 cycles;
the bound (4 MiB) leaves room for the allocator's noise.
"""
from __future__ import annotations

import gc
import os
import threading

import pytest

import harvbk

pytestmark = pytest.mark.slow

CYCLES = 10_000
BOUND = 4 * 1024 * 1024


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def assert_no_growth(cycle):
    for i in range(1000):
        cycle(i)
    gc.collect()
    before = rss()
    for i in range(CYCLES):
        cycle(i)
    gc.collect()
    grown = rss() - before
    assert grown < BOUND, f"RSS grew by {grown} bytes over {CYCLES} cycles"


METADATA = b"m" * 4096


def test_vm_cycles():
    def cycle(i):
        vm = harvbk.VM("default", f"vm-{i % 97}",
                       disks={"root": "/images/root.raw", "data": "/images/data.raw"},
                       metadata=METADATA, images=["ubuntu"], power_state="off")
        vm.add_volume("cb", 1 << 20, read=lambda o, n: bytes(n))
        if i % 2:
            vm.close()              # explicit; else freed when collected
    assert_no_growth(cycle)


KEY = bytes(range(256)) * 16        # 4 KiB, the largest key


def test_key_cycles():
    """Keys live in the library's locked memory: a leaked one would also
    exhaust RLIMIT_MEMLOCK long before 10,000 cycles."""
    def cycle(i):
        k = harvbk.Key.from_bytes(KEY)
        with harvbk.Key.from_passphrase(f"passphrase {i}") as p, \
                harvbk.TargetConfig("file:///backups", key=p) as cfg:
            cfg.set_key(k)
        if i % 2:
            k.close()               # explicit; else freed when collected
    assert_no_growth(cycle)


def test_target_config_cycles():
    def cycle(i):
        with harvbk.TargetConfig("s3://bucket/prefix", endpoint="https://s3.example:9000",
                                 region="us-east-1", access_key_id="AKIDEXAMPLE",
                                 secret_access_key="s" * 40,
                                 ca_cert_file="/etc/ssl/certs/" + "c" * 400 + ".pem",
                                 virtual_hosted=True, timeout_ms=5000) as cfg:
            cfg.as_dict()
    assert_no_growth(cycle)


def test_context_cycles(tmp_path):
    state = tmp_path / "state"

    def cycle(i):
        with harvbk.Context(state) as ctx:
            ctx.id
    assert_no_growth(cycle)


def test_list_and_error_cycles(local_ctx):
    vm = harvbk.VM("default", "web").add_volume("root", 1 << 20, read=lambda o, n: bytes(n))
    local_ctx.backup(vm, "b1").wait()
    local_ctx.snapshot(vm, "s1").wait()

    def cycle(i):
        assert len(local_ctx.backups()) == 1
        assert local_ctx.snapshot_info("default", "s1").ready
        assert len(local_ctx.quotas()) == 2
        try:
            local_ctx.backup_info("default", "missing")
        except harvbk.NotFound:
            pass
    assert_no_growth(cycle)


def test_operation_cycles(local_ctx):
    """Operations (with their callbacks) that start, end and are freed."""
    vm = harvbk.VM("default", "web").add_volume("root", 4096, read=lambda o, n: bytes(n))
    local_ctx.backup(vm, "b1").wait()
    seen = threading.Event()

    def cycle(i):
        op = local_ctx.verify("default", "b1", progress=lambda d, t: seen.set())
        op.wait()
        op.close()
    # operations are slower: fewer cycles, same bound per cycle
    for i in range(200):
        cycle(i)
    gc.collect()
    before = rss()
    for i in range(2000):
        cycle(i)
    gc.collect()
    assert rss() - before < BOUND
    assert seen.is_set()
