package harvbk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSnapshotsRestore(t *testing.T) {
	e := newEnv(t)
	vm, data, path := e.vmWithDisk(t, "default", "web", 3<<20+5, 20)
	ctx := context.Background()
	if err := e.ctx.Snapshot(ctx, vm, "s1", nil); err != nil {
		t.Fatal(err)
	}
	info, err := e.ctx.SnapshotInfo("default", "s1")
	if err != nil || info.State != StateReady || info.LogicalBytes != uint64(len(data)) {
		t.Fatalf("SnapshotInfo: %+v %v", info, err)
	}
	snaps, err := e.ctx.Snapshots()
	if err != nil || len(snaps) != 1 || snaps[0].Name != "s1" {
		t.Fatalf("Snapshots: %+v %v", snaps, err)
	}
	if err := e.ctx.VerifySnapshot(ctx, "default", "s1", nil); err != nil {
		t.Fatal(err)
	}
	dir, err := e.ctx.SnapshotStoreDir()
	if err != nil || !strings.HasPrefix(dir, e.dir) {
		t.Fatalf("SnapshotStoreDir %q %v", dir, err)
	}

	// restore as a new VM, into the snapshot's own namespace only
	into := filepath.Join(e.dir, "snap-restore")
	wantCode(t, e.ctx.RestoreSnapshot(ctx, "default", "s1",
		RestoreOptions{NewVM: "other/web", Into: into}), CodeCrossNamespace)
	if err := e.ctx.RestoreSnapshot(ctx, "default", "s1", RestoreOptions{NewVM: "web-copy", Into: into}); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), data)

	// replace the VM itself: registered, powered off, then its disk changes
	if err := e.ctx.RegisterVM(vm); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.ctx.RestoreSnapshot(ctx, "default", "s1", RestoreOptions{Replace: "default/web"}), CodeVMRunning)
	if err := e.ctx.SetRegisteredPowerState("default", "web", PowerOff); err != nil {
		t.Fatal(err)
	}
	changed := append([]byte(nil), data...)
	copy(changed, "changed after the snapshot")
	os.WriteFile(path, changed, 0o644)
	op, err := e.ctx.StartRestoreSnapshot("default", "s1",
		RestoreOptions{Replace: "default/web", DeletionPolicy: DeletionRetain})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	kept := op.RetainedPaths()
	op.Close()
	mustEqualFile(t, path, data)
	if len(kept) != 1 {
		t.Fatalf("retained %v", kept)
	}
	mustEqualFile(t, kept[0], changed)

	if err := e.ctx.DeleteSnapshot("default", "s1"); err != nil {
		t.Fatal(err)
	}
	_, err = e.ctx.SnapshotInfo("default", "s1")
	wantCode(t, err, CodeNotFound)
	if _, err := e.ctx.SnapshotGC(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestQuotas(t *testing.T) {
	e := newEnv(t)
	vm, _, _ := e.vmWithDisk(t, "team", "db", 2<<20, 21)
	ctx := context.Background()
	if err := e.ctx.Snapshot(ctx, vm, "s1", nil); err != nil {
		t.Fatal(err)
	}
	q, err := e.ctx.Quota("team", "db")
	if err != nil || q.HasLimit || q.Usage == 0 {
		t.Fatalf("Quota: %+v %v", q, err)
	}
	usage := q.Usage
	// a VM limit below its usage: the next snapshot is refused at once
	if err := e.ctx.SetQuota("team", "db", usage-1); err != nil {
		t.Fatal(err)
	}
	if q, _ := e.ctx.Quota("team", "db"); !q.HasLimit || q.Limit != usage-1 || q.Usage != usage {
		t.Fatalf("Quota after set: %+v", q)
	}
	err = e.ctx.Snapshot(ctx, vm, "s2", nil)
	wantCode(t, err, CodeQuota)
	if !errors.Is(err, ErrQuotaExceeded) {
		t.Fatal(err)
	}
	// a namespace limit
	if err := e.ctx.ClearQuota("team", "db"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.ctx.ClearQuota("team", "db"), CodeNotFound)
	if err := e.ctx.SetQuota("team", "", usage); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.ctx.Snapshot(ctx, vm, "s2", nil), CodeQuota)
	list, err := e.ctx.Quotas()
	if err != nil || len(list) != 2 || list[0].VM != "" || !list[0].HasLimit || list[0].Limit != usage ||
		list[1].VM != "db" || list[1].Snapshots != 1 || list[1].Usage != usage {
		t.Fatalf("Quotas: %+v %v", list, err)
	}
	if err := e.ctx.ClearQuota("team", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.Snapshot(ctx, vm, "s2", nil); err != nil {
		t.Fatal(err)
	}
	// a running snapshot whose new data would go over: fails, usage unchanged
	vm2, _, _ := e.vmWithDisk(t, "team", "db", 2<<20, 22)
	q, _ = e.ctx.Quota("team", "db")
	if err := e.ctx.SetQuota("team", "db", q.Usage+1000); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.ctx.Snapshot(ctx, vm2, "s3", nil), CodeQuota)
	if q2, _ := e.ctx.Quota("team", "db"); q2.Usage != q.Usage {
		t.Fatalf("usage %d after a refused snapshot, was %d", q2.Usage, q.Usage)
	}
}

// Schedules driven by a fake clock: nothing is due before the first cron
// time, each day's firing makes one backup named after its planned time,
// retention keeps the newest ones.
func TestSchedulesFakeClock(t *testing.T) {
	e := newEnv(t)
	vm, data, _ := e.vmWithDisk(t, "default", "web", 512<<10, 23)
	if err := e.ctx.RegisterVM(vm); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()

	wantCode(t, e.ctx.CreateSchedule("default", "bad", ScheduleOptions{VM: "web", Cron: "61 * * * *", Now: t0}), CodeCron)
	wantCode(t, e.ctx.CreateSchedule("default", "bad", ScheduleOptions{VM: "web", Cron: "*/5 * * * *", Now: t0}), CodeInterval)
	wantCode(t, e.ctx.CreateSchedule("default", "bad", ScheduleOptions{VM: "web", Cron: "0 2 * * *", Retain: 1, Now: t0}), CodeRetain)
	wantCode(t, e.ctx.CreateSchedule("default", "bad", ScheduleOptions{VM: "nope", Cron: "0 2 * * *", Now: t0}), CodeNotFound)
	if err := e.ctx.CreateSchedule("default", "nightly", ScheduleOptions{
		VM: "web", Cron: "0 2 * * *", Retain: 3, MaxFailure: 2, Now: t0}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.ctx.CreateSchedule("default", "again", ScheduleOptions{VM: "web", Cron: "0 3 * * *", Now: t0}), CodeVMScheduled)

	next, ok, err := e.ctx.NextDue(t0)
	if err != nil || !ok || !next.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("NextDue: %v %v %v", next, ok, err)
	}
	runs, err := e.ctx.RunDue(ctx, t0.Add(time.Hour), nil)
	if err != nil || len(runs) != 0 {
		t.Fatalf("RunDue before the first firing: %+v %v", runs, err)
	}
	var progressed atomic.Bool
	var resolved atomic.Int32
	opts := &RunOptions{
		Progress: func(done, total uint64) error { progressed.Store(true); return nil },
		Resolve: func(ns, name string) (*VM, error) {
			resolved.Add(1)
			v, err := e.ctx.LookupVM(ns, name)
			return v, err // the binding closes it
		},
	}
	for day := 0; day < 5; day++ {
		now := t0.Add(time.Duration(day)*24*time.Hour + 2*time.Hour + time.Minute)
		runs, err := e.ctx.RunDue(ctx, now, opts)
		if err != nil || len(runs) != 1 {
			t.Fatalf("day %d: RunDue %+v %v", day, runs, err)
		}
		r := runs[0]
		want := fmt.Sprintf("nightly-203001%02d-0200", day+1)
		if r.State != "Ready" || r.Err != nil || r.Entry != want || r.Schedule != "nightly" ||
			!r.Planned.Equal(t0.Add(time.Duration(day)*24*time.Hour+2*time.Hour)) {
			t.Fatalf("day %d: run %+v", day, r)
		}
	}
	if !progressed.Load() || resolved.Load() != 5 {
		t.Fatalf("progress %v, resolver called %d times", progressed.Load(), resolved.Load())
	}
	list, err := e.ctx.Backups()
	if err != nil || len(list) != 3 {
		t.Fatalf("retention: %+v %v", list, err)
	}
	for i, b := range list {
		if want := fmt.Sprintf("nightly-203001%02d-0200", i+3); b.Name != want || b.Schedule != "nightly" ||
			b.State != StateReady {
			t.Fatalf("backup %d: %+v, want %s", i, b, want)
		}
	}
	into := filepath.Join(e.dir, "sched-restore")
	if err := e.ctx.Restore(ctx, "default", "nightly-20300105-0200", RestoreOptions{NewVM: "copy", Into: into}); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), data)

	s, err := e.ctx.Schedule("default", "nightly")
	if err != nil || s.Cron != "0 2 * * *" || s.Retain != 3 || s.MaxFailure != 2 || s.Suspended ||
		!s.LastRun.Equal(t0.Add(4*24*time.Hour+2*time.Hour)) || len(s.History) < 3 ||
		s.Deadline != DeadlineNextFiring {
		t.Fatalf("Schedule: %+v %v", s, err)
	}

	// a resolver that fails: the run fails with its error, twice suspends
	boom := errors.New("vm gone")
	failing := &RunOptions{Resolve: func(ns, name string) (*VM, error) { return nil, boom }}
	for day := 5; day < 7; day++ {
		runs, err := e.ctx.RunDue(ctx, t0.Add(time.Duration(day)*24*time.Hour+2*time.Hour), failing)
		if err != nil || len(runs) != 1 || runs[0].State != "Error" || runs[0].Err == nil {
			t.Fatalf("day %d: %+v %v", day, runs, err)
		}
	}
	s, _ = e.ctx.Schedule("default", "nightly")
	if !s.Suspended || s.SuspendReason != "max failure reached" || s.ConsecutiveFailures != 2 {
		t.Fatalf("after failures: %+v", s)
	}
	if _, ok, _ := e.ctx.NextDue(t0.Add(8 * 24 * time.Hour)); ok {
		t.Fatal("a suspended schedule is due")
	}
	if err := e.ctx.DeleteSchedule("default", "nightly"); err != nil {
		t.Fatal(err)
	}
	all, err := e.ctx.Schedules()
	if err != nil || len(all) != 0 {
		t.Fatalf("Schedules: %+v %v", all, err)
	}
}

// The runner thread: started, stopped explicitly, and stopped by Close.
func TestScheduler(t *testing.T) {
	e := newEnv(t)
	base := openHandles()
	s, err := e.ctx.StartScheduler(&RunOptions{Progress: func(d, t uint64) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop()
	if n := openHandles(); n != base {
		t.Fatalf("%d handles after Stop, had %d", n, base)
	}
	if _, err := e.ctx.StartScheduler(nil); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.Close(); err != nil { // stops it first
		t.Fatal(err)
	}
	if n := openHandles(); n != base {
		t.Fatalf("%d handles after Close, had %d", n, base)
	}
}

func TestMaintenance(t *testing.T) {
	e := newEnv(t)
	vm, _, _ := e.vmWithDisk(t, "default", "web", 64<<10, 24)
	if err := e.ctx.EnterMaintenance(0); err != nil {
		t.Fatal(err)
	}
	active, since, err := e.ctx.MaintenanceStatus()
	if err != nil || !active || since.IsZero() {
		t.Fatalf("status %v %v %v", active, since, err)
	}
	wantCode(t, e.ctx.Backup(context.Background(), vm, "b", nil), CodeMaintenance)
	if err := e.ctx.ExitMaintenance(); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.Backup(context.Background(), vm, "b", nil); err != nil {
		t.Fatal(err)
	}
	ops, err := e.ctx.Operations()
	if err != nil || len(ops) != 0 {
		t.Fatalf("operations %+v %v", ops, err)
	}
}
