#!/usr/bin/env python3
"""bench/test_ceiling.py - harvbk_bench with its ceilings on a small image.

    test_ceiling.py HARVBK_BENCH SCRATCH_DIR

Runs every phase on a 32 MiB image (file:// target, 1 MiB chunks, a 16 MiB
disk test) and checks what the ceiling part says: the restore matched the
image; ceiling_bench walked exactly the chunks a backup reads (the generated
layout's data regions, plus the hole chunks the change wrote into); every
measured phase has a ceiling that is the larger of its disk and CPU parts and
a multiple that is wall / ceiling; --cold-store charges the verify every
stored byte; --no-ceiling leaves them out.
"""
import json
import subprocess
import sys
import tempfile

MiB = 1 << 20


def run(bench, scratch, *extra):
    out = subprocess.run([bench, "--size", "32M", "--dir", scratch, "--json", *extra],
                         stdout=subprocess.PIPE, check=True, timeout=600)
    return json.loads(out.stdout)


def main():
    bench, parent = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(dir=parent) as scratch:
        doc = run(bench, scratch, "--ceiling-disk-bytes", "16M")
        assert doc["ok"] and doc["restore_matches_image"], doc
        ce = doc["ceiling"]
        assert ce["chunk_size"] == MiB and ce["codec"] == "zstd" and ce["level"] == 1, ce
        assert ce["encrypted"] == 0 and ce["cpus"] >= 1, ce
        assert ce["disk_bytes"] == 16 * MiB and ce["disk_write_s"] > 0 and ce["disk_read_s"] > 0
        lay = doc["image_layout_bytes"]
        written = lay["zero"] + lay["text"] + lay["random"]  # 4 MiB regions: whole chunks
        touched = (doc["changed_bytes"] + MiB - 1) // MiB + 8  # chunks the change may open up
        assert written <= ce["data_bytes"] <= written + touched * MiB, (written, ce)
        assert ce["data_bytes"] == ce["data_chunks"] * MiB
        assert ce["zero_bytes"] + ce["nonzero_bytes"] == ce["data_bytes"], ce
        assert 0 < ce["unique_bytes"] <= ce["nonzero_bytes"], ce
        assert ce["image_cached_bytes"] <= ce["data_bytes"], ce
        # text compresses, random does not: some chunks shrank, the store is smaller
        assert 0 < ce["compressed_chunks"] < ce["unique_chunks"], ce
        assert ce["stored_bytes"] < ce["unique_bytes"] + 32 * ce["unique_chunks"], ce
        assert ce["hash_cpu_s"] > 0 and ce["compress_cpu_s"] > 0 and ce["decode_cpu_s"] > 0
        phases = {p["name"]: p for p in doc["phases"]}
        for name in ("full", "incr", "incr-ranges", "restore", "verify"):
            p = phases[name]
            c, d, u = p["ceiling_s"], p["ceiling_disk_s"], p["ceiling_cpu_s"]
            assert c > 0 and abs(c - max(d, u)) < 1e-3, p
            # (both rounded in the JSON: wall to 0.1 ms, the multiple to 0.001)
            w, m = p["wall_s"], p["ceiling_multiple"]
            assert abs(w / m - c) <= c * (1e-3 + 1e-4 / w) + 1e-6, p
        # the CPU parts follow the model: a backup hashes, an incremental only
        # compresses what changed, restore and verify decode
        assert phases["incr"]["ceiling_cpu_s"] < phases["full"]["ceiling_cpu_s"]
        assert phases["incr-ranges"]["ceiling_cpu_s"] < phases["incr"]["ceiling_cpu_s"]
        assert phases["restore"]["ceiling_disk_s"] > 0  # a restore always writes
        for name in ("mutate", "compare"):
            assert "ceiling_s" not in phases[name]

        assert doc["cold_store"] is False
        # --cold-store: restore and verify read the store from the disk; the
        # verify's ceiling charges every stored byte at the disk's read speed
        doc = run(bench, scratch, "--ceiling-disk-bytes", "16M", "--cold-store")
        assert doc["ok"] and doc["restore_matches_image"] and doc["cold_store"] is True, doc
        ce = doc["ceiling"]
        v = {p["name"]: p for p in doc["phases"]}["verify"]
        want = ce["stored_bytes"] * ce["disk_read_s"] / ce["disk_bytes"]
        assert abs(v["ceiling_disk_s"] - want) <= want * 1e-3 + 1e-5, (v, want)

        doc = run(bench, scratch, "--no-ceiling")
        assert doc["ok"] and "ceiling" not in doc
        assert all("ceiling_s" not in p for p in doc["phases"])
    print("ceiling test: ok")


if __name__ == "__main__":
    main()
