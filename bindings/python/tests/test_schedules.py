"""Schedules driven by a fake clock (the library owns no clock)."""
from __future__ import annotations

import pytest

import harvbk
from conftest import pattern

MiB = 1024 * 1024


def H(h: float) -> int:
    """2030-01-01T00:00Z plus h hours, in ms since the epoch."""
    return 1893456000000 + int(h * 3600000)


class Boom(Exception):
    pass


def test_backup_schedule(local_ctx, make_disk):
    ctx = local_ctx
    disk = make_disk(size=2 * MiB)
    ctx.register_vm(harvbk.VM("default", "web", disks={"root": disk}))
    s = ctx.create_schedule("default", "hourly", vm="web", cron="0 * * * *", retain=3,
                            max_failure=2, now_ms=H(0))
    assert (s.namespace, s.name, s.type, s.vm_namespace, s.vm_name, s.cron) == \
        ("default", "hourly", "backup", "default", "web", "0 * * * *")
    assert (s.retain, s.max_failure, s.deadline_s, s.suspended) == (3, 2, None, False)
    assert s.next_run_ms == H(1) and s.created_ms == H(0)
    assert [x.name for x in ctx.schedules()] == ["hourly"]
    assert ctx.next_due(H(0)) == H(1)
    assert ctx.run_due(H(0.5)) is None                       # nothing due

    done = []
    for h in range(1, 6):
        p = ctx.run_due(H(h) + 60000, progress=lambda d, t: done.append(d))
        assert isinstance(p, harvbk.SchedulePass) and p.kind == "schedule"
        assert p.wait()
        [run] = p.runs
        assert (run.namespace, run.schedule, run.state, run.error_code, run.error) == \
            ("default", "hourly", "Ready", 0, None)
        assert run.entry == f"hourly-20300101-{h:02d}00" and run.planned_ms == H(h)
        assert ctx.backup_info("default", run.entry).schedule == "hourly"
        assert ctx.next_due(H(h) + 60000) == H(h + 1)
    # called at least at the end of each pass (its bytes: see the report of the
    # pass's progress in docs/THREADING.md)
    assert len(done) >= 5
    # retention kept the newest three
    assert [b.name for b in ctx.backups()] == \
        ["hourly-20300101-0300", "hourly-20300101-0400", "hourly-20300101-0500"]
    s.refresh()
    assert s.last_run_ms == H(5) and s.consecutive_failures == 0
    deleted = {h.entry: h.deleted for h in s.history}
    assert deleted["hourly-20300101-0100"] and not deleted["hourly-20300101-0500"]
    assert s.to_dict()["name"] == "hourly"

    s.suspend()
    assert s.suspended and s.suspend_reason == "suspended by user" and s.next_run_ms is None
    assert ctx.next_due(H(6)) is None
    assert ctx.run_due(H(7)) is None
    s.resume()
    assert not s.suspended
    assert ctx.next_due(H(7) + 1) is not None

    s.update(retain=4)
    assert ctx.schedule("default", "hourly").retain == 4
    s.delete()
    with pytest.raises(harvbk.NotFound):
        ctx.schedule("default", "hourly")
    assert ctx.next_due(H(8)) is None


def test_schedule_refusals(local_ctx, make_disk):
    ctx = local_ctx
    for name in ("a", "b", "c"):
        ctx.register_vm(harvbk.VM("default", name, disks={"root": make_disk()}))
    ctx.create_schedule("default", "sa", vm="a", cron="0 * * * *", now_ms=H(0))
    cases = [
        (harvbk.InvalidCron, dict(vm="b", cron="61 * * * *")),
        (harvbk.IntervalTooShort, dict(vm="b", cron="*/5 * * * *")),
        (harvbk.RetainOutOfRange, dict(vm="b", cron="30 * * * *", retain=251)),
        (harvbk.MaxFailureOutOfRange, dict(vm="b", cron="30 * * * *", retain=3,
                                            max_failure=3)),
        (harvbk.VMScheduled, dict(vm="a", cron="30 * * * *")),
        (harvbk.ScheduleConflict, dict(vm="b", cron="5 * * * *")),
        (harvbk.NotFound, dict(vm="nope", cron="30 * * * *")),
    ]
    for cls, kw in cases:
        with pytest.raises(cls) as ei:
            ctx.create_schedule("default", "sb", now_ms=H(0), **kw)
        assert ei.value.message, cls
    with pytest.raises(harvbk.AlreadyExists):
        ctx.create_schedule("default", "sa", vm="b", cron="30 * * * *", now_ms=H(0))
    with pytest.raises(ValueError):
        ctx.create_schedule("default", "sb", vm="b", cron="30 * * * *", type="archive")


def test_snapshot_schedule_with_a_resolver(tmp_path, make_disk):
    data = pattern(2 * MiB, seed=9)
    failing = []

    def resolve(ns, name):
        if failing:
            raise failing[0]
        return harvbk.VM(ns, name).add_volume(
            "disk0", len(data), read=lambda off, n: data[off:off + n])

    with harvbk.Context(tmp_path / "state") as ctx:
        # the catalog's VM (required to create the schedule) is not what is read:
        # the resolver supplies the current description
        ctx.register_vm(harvbk.VM("default", "db", disks={"root": make_disk()}))
        ctx.create_schedule("default", "snaps", vm="db", cron="0 */2 * * *", type="snapshot",
                            retain=3, max_failure=2, now_ms=H(0))
        p = ctx.run_due(H(2), resolve=resolve)
        assert p.wait()
        [run] = p.runs
        assert run.state == "Ready" and run.entry == "snaps-20300101-0200"
        info = ctx.snapshot_info("default", run.entry)
        assert info.ready and info.logical_bytes == len(data)
        assert [v.name for v in info.volumes] == ["disk0"]

        # a resolver that raises: the run fails with HARVBK_E_CALLBACK and the
        # exception comes out of the pass's wait(); twice suspends the schedule
        for h, boom in ((4, Boom("inventory down")), (6, Boom("still down"))):
            failing[:] = [boom]
            p = ctx.run_due(H(h), resolve=resolve)
            with pytest.raises(Boom) as ei:
                p.wait()
            assert ei.value is boom
            [run] = p.runs
            assert run.state == "Error" and run.error_code == harvbk.CallbackFailed.CODE
            assert isinstance(run.error, harvbk.CallbackFailed)
        s = ctx.schedule("default", "snaps")
        assert s.suspended and s.suspend_reason == "max failure reached"
        assert s.consecutive_failures == 2
        assert [h.state for h in s.history] == ["Ready", "Error", "Error"]
        assert ctx.run_due(H(8), resolve=resolve) is None
