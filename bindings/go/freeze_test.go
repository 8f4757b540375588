package harvbk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// captureRig is a VM of two volumes - a disk file "root" and an
// io.ReaderAt volume "data" - with freeze/thaw/capture/release hooks that
// record what they were called with. Capture copies the volume's current
// bytes to a file of its own; thaw overwrites both sources, so an entry
// holding the bytes at freeze proves it was read from the captures.
type captureRig struct {
	t        *testing.T
	vm       *VM
	path     string   // root's file
	mem      *memDisk // data
	capDir   string
	wantRoot []byte // the bytes at freeze
	wantData []byte

	mu       sync.Mutex
	events   []string
	captured map[string]string // volume -> captured path
	released map[string]int    // captured path -> release calls
	decline  map[string]bool   // volumes the capture hook declines
	failOn   string            // volume whose capture fails with errBoom
}

var errBoom = errors.New("boom")

func newCaptureRig(t *testing.T, e *env, name string, seed int64) *captureRig {
	vm, root, path := e.vmWithDisk(t, "default", name, 3<<20+123, seed)
	r := &captureRig{t: t, vm: vm, path: path, mem: &memDisk{b: randomBytes(2<<20+5, seed+1)},
		capDir: filepath.Join(e.dir, name+"-captures"), wantRoot: root}
	r.wantData = append([]byte(nil), r.mem.b...)
	if err := vm.AddDiskIO("data", uint64(len(r.mem.b)), r.mem, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.capDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.reset()
	return r
}

func (r *captureRig) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
	r.captured = map[string]string{}
	r.released = map[string]int{}
	r.decline = map[string]bool{}
	r.failOn = ""
}

func (r *captureRig) event(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *captureRig) eventList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *captureRig) freeze(ns, vm string) error {
	r.event("freeze " + ns + "/" + vm)
	return nil
}

// thaw overwrites both sources with other bytes.
func (r *captureRig) thaw(ns, vm string) error {
	r.event("thaw " + ns + "/" + vm)
	if err := os.WriteFile(r.path, randomBytes(len(r.wantRoot), 99), 0o644); err != nil {
		return err
	}
	_, err := r.mem.WriteAt(randomBytes(len(r.wantData), 98), 0)
	return err
}

func (r *captureRig) capture(ns, vm, volume, path string) (string, error) {
	r.event("capture " + volume)
	r.mu.Lock()
	decline, fail := r.decline[volume], r.failOn == volume
	r.mu.Unlock()
	if decline {
		return "", nil
	}
	if fail {
		return "", errBoom
	}
	var b []byte
	switch volume {
	case "root":
		if path != r.path {
			return "", fmt.Errorf("capture of root: path %q, want %q", path, r.path)
		}
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return "", err
		}
	case "data":
		if path != "" {
			return "", fmt.Errorf("capture of an io volume: path %q", path)
		}
		r.mem.mu.Lock()
		b = append([]byte(nil), r.mem.b...)
		r.mem.mu.Unlock()
	default:
		return "", fmt.Errorf("capture of unknown volume %q", volume)
	}
	f, err := os.CreateTemp(r.capDir, vm+"-"+volume+"-*")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.captured[volume] = f.Name()
	r.mu.Unlock()
	return f.Name(), nil
}

func (r *captureRig) release(ns, vm, volume, captured string) error {
	r.event("release " + volume)
	r.mu.Lock()
	r.released[captured]++
	want := r.captured[volume]
	r.mu.Unlock()
	if captured != want {
		return fmt.Errorf("release of %s: path %q, captured %q", volume, captured, want)
	}
	return os.Remove(captured)
}

// checkReleased: every capture was released exactly once, nothing else
// was released, and no capture file is left.
func (r *captureRig) checkReleased() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for vol, p := range r.captured {
		if r.released[p] != 1 {
			r.t.Errorf("capture of %s (%s) released %d times", vol, p, r.released[p])
		}
	}
	if len(r.released) != len(r.captured) {
		r.t.Errorf("released %v, captured %v", r.released, r.captured)
	}
	if left, _ := os.ReadDir(r.capDir); len(left) != 0 {
		r.t.Errorf("capture files left: %v", left)
	}
}

// checkOrder: freeze, the captures in volume order, thaw, then one
// release per capture (after its read, so in any order).
func (r *captureRig) checkOrder(captures ...string) {
	r.t.Helper()
	ev := r.eventList()
	want := []string{"freeze default/" + r.vm.Info().Name}
	for _, c := range captures {
		want = append(want, "capture "+c)
	}
	want = append(want, "thaw default/"+r.vm.Info().Name)
	if len(ev) < len(want) || strings.Join(ev[:len(want)], ",") != strings.Join(want, ",") {
		r.t.Fatalf("hooks called %v, want %v then the releases", ev, want)
	}
	for _, s := range ev[len(want):] {
		if !strings.HasPrefix(s, "release ") {
			r.t.Fatalf("hooks called %v: %q after the thaw", ev, s)
		}
	}
}

// The freeze window through a capture hook: the entry holds the bytes at
// freeze although thaw rewrote both volumes before they were read; each
// capture is released exactly once; the info says "hook" and how long the
// VM was frozen. For a backup, a snapshot and a schedule run.
func TestFreezeWindowCaptureHook(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"backup", "snapshot"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			r := newCaptureRig(t, e, "web", 40)
			var info *BackupInfo
			var err error
			into := filepath.Join(e.dir, "restore")
			if kind == "backup" {
				err = e.ctx.Backup(ctx, r.vm, "b1", &BackupOptions{Freeze: r.freeze, Thaw: r.thaw,
					Capture: r.capture, Release: r.release, NoReflink: true, FreezeDeadline: time.Hour})
				if err == nil {
					info, err = e.ctx.BackupInfo("default", "b1")
				}
				if err == nil {
					err = e.ctx.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "web-copy", Into: into})
				}
			} else {
				err = e.ctx.Snapshot(ctx, r.vm, "s1", &SnapshotOptions{Freeze: r.freeze, Thaw: r.thaw,
					Capture: r.capture, Release: r.release, NoReflink: true, FreezeDeadline: time.Hour})
				if err == nil {
					info, err = e.ctx.SnapshotInfo("default", "s1")
				}
				if err == nil {
					err = e.ctx.RestoreSnapshot(ctx, "default", "s1", RestoreOptions{NewVM: "web-copy", Into: into})
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			r.checkOrder("root", "data")
			r.checkReleased()
			if len(r.captured) != 2 {
				t.Fatalf("captured %v", r.captured)
			}
			if info.State != StateReady || info.Capture != CaptureHook || info.Frozen < 0 ||
				info.ThawFailed || len(info.Volumes) != 2 ||
				info.Volumes[0].Capture != CaptureHook || info.Volumes[1].Capture != CaptureHook ||
				!strings.Contains(info.JSON, `"capture":"hook"`) {
				t.Fatalf("info %+v", info)
			}
			mustEqualFile(t, filepath.Join(into, "root.raw"), r.wantRoot)
			mustEqualFile(t, filepath.Join(into, "data.raw"), r.wantData)
		})
	}

	t.Run("schedule", func(t *testing.T) {
		e := newEnv(t)
		vm, data, path := e.vmWithDisk(t, "default", "db", 1<<20+7, 45)
		if err := e.ctx.RegisterVM(vm); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := e.ctx.CreateSchedule("default", "nightly", ScheduleOptions{VM: "db", Cron: "0 2 * * *", Now: t0}); err != nil {
			t.Fatal(err)
		}
		capDir := t.TempDir()
		var captures, releases, thaws atomic.Int32
		var capturedPath atomic.Value
		opts := &RunOptions{
			Freeze: func(ns, name string) error { return nil },
			Thaw: func(ns, name string) error {
				thaws.Add(1)
				return os.WriteFile(path, randomBytes(len(data), 97), 0o644)
			},
			Capture: func(ns, name, volume, p string) (string, error) {
				captures.Add(1)
				b, err := os.ReadFile(p)
				if err != nil {
					return "", err
				}
				c := filepath.Join(capDir, volume+".capture")
				capturedPath.Store(c)
				return c, os.WriteFile(c, b, 0o600)
			},
			Release: func(ns, name, volume, p string) error {
				releases.Add(1)
				if p != capturedPath.Load() {
					return fmt.Errorf("release of %q", p)
				}
				return os.Remove(p)
			},
			NoReflink:      true,
			FreezeDeadline: time.Hour,
		}
		runs, err := e.ctx.RunDue(context.Background(), t0.Add(2*time.Hour), opts)
		if err != nil || len(runs) != 1 || runs[0].State != "Ready" || runs[0].Err != nil {
			t.Fatalf("RunDue: %+v %v", runs, err)
		}
		if captures.Load() != 1 || releases.Load() != 1 || thaws.Load() != 1 {
			t.Fatalf("capture %d, release %d, thaw %d calls", captures.Load(), releases.Load(), thaws.Load())
		}
		info, err := e.ctx.BackupInfo("default", runs[0].Entry)
		if err != nil || info.Capture != CaptureHook || info.Frozen < 0 || info.Schedule != "nightly" {
			t.Fatalf("info %+v %v", info, err)
		}
		into := filepath.Join(e.dir, "restore")
		if err := e.ctx.Restore(context.Background(), "default", runs[0].Entry,
			RestoreOptions{NewVM: "db-copy", Into: into}); err != nil {
			t.Fatal(err)
		}
		mustEqualFile(t, filepath.Join(into, "root.raw"), data)
	})
}

// A capture hook that declines a volume: it is read where it is, before
// the thaw (still the bytes at freeze), and not released; the entry's
// capture is "mixed". Without NoReflink, a disk file is either cloned by
// the library (reflink; the hook is not asked for it) or given to the hook,
// and the info says which.
func TestFreezeWindowDeclineAndReflink(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := newCaptureRig(t, e, "web", 50)
	r.decline["data"] = true
	err := e.ctx.Backup(ctx, r.vm, "b1", &BackupOptions{Freeze: r.freeze, Thaw: r.thaw,
		Capture: r.capture, Release: r.release, NoReflink: true})
	if err != nil {
		t.Fatal(err)
	}
	r.checkOrder("root", "data")
	r.checkReleased()
	info, err := e.ctx.BackupInfo("default", "b1")
	if err != nil || info.Capture != CaptureMixed || info.Frozen < 0 ||
		info.Volumes[0].Capture != CaptureHook || info.Volumes[1].Capture != CaptureNone {
		t.Fatalf("info %+v %v", info, err)
	}
	into := filepath.Join(e.dir, "restore")
	if err := e.ctx.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "web-copy", Into: into}); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), r.wantRoot)
	mustEqualFile(t, filepath.Join(into, "data.raw"), r.wantData)

	// reflink allowed: whatever the filesystem of the test directory is, the
	// hook is asked for root exactly when no reflink captured it
	r2 := newCaptureRig(t, e, "web2", 51)
	if err := e.ctx.Backup(ctx, r2.vm, "b2", &BackupOptions{Freeze: r2.freeze, Thaw: r2.thaw,
		Capture: r2.capture, Release: r2.release}); err != nil {
		t.Fatal(err)
	}
	info, err = e.ctx.BackupInfo("default", "b2")
	if err != nil {
		t.Fatal(err)
	}
	_, hooked := r2.captured["root"]
	switch root := info.Volumes[0].Capture; {
	case root == CaptureReflink && !hooked && info.Capture == CaptureMixed:
		t.Logf("the test directory's filesystem has reflinks: root was cloned")
		r2.checkOrder("data")
	case root == CaptureHook && hooked && info.Capture == CaptureHook:
		r2.checkOrder("root", "data")
	default:
		t.Fatalf("root captured by %q, hook asked: %v, info %+v", root, hooked, info)
	}
	r2.checkReleased()
	if info.Volumes[1].Capture != CaptureHook {
		t.Fatalf("data captured by %q", info.Volumes[1].Capture)
	}
	into = filepath.Join(e.dir, "restore2")
	if err := e.ctx.Restore(ctx, "default", "b2", RestoreOptions{NewVM: "web2-copy", Into: into}); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), r2.wantRoot)
	mustEqualFile(t, filepath.Join(into, "data.raw"), r2.wantData)
}

// Capture and release hooks that fail (an error, a panic, an unusable path)
// fail the operation with ErrCallback wrapping what they returned; the VM
// is thawed once and every capture made is released once.
func TestFreezeWindowCallbackFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := newCaptureRig(t, e, "web", 60)
	base := openHandles()
	opts := func() *BackupOptions {
		return &BackupOptions{Freeze: r.freeze, Thaw: r.thaw, Capture: r.capture, Release: r.release,
			NoReflink: true}
	}
	notReady := func(name string) {
		t.Helper()
		info, err := e.ctx.BackupInfo("default", name)
		if err != nil || info.State != StateError {
			t.Fatalf("%s: %+v %v", name, info, err)
		}
	}
	thaws := func() (n int) {
		for _, ev := range r.eventList() {
			if strings.HasPrefix(ev, "thaw ") {
				n++
			}
		}
		return n
	}

	// the second volume's capture fails: the first one's is released
	r.failOn = "data"
	err := e.ctx.Backup(ctx, r.vm, "c-err", opts())
	wantCode(t, err, CodeCallback)
	if !errors.Is(err, errBoom) || thaws() != 1 {
		t.Fatalf("capture error: %v, events %v", err, r.eventList())
	}
	r.checkOrder("root", "data")
	r.checkReleased()
	if len(r.captured) != 1 {
		t.Fatalf("captured %v", r.captured)
	}
	notReady("c-err")

	// the same through a snapshot
	r.reset()
	r.failOn = "root"
	err = e.ctx.Snapshot(ctx, r.vm, "s-err", &SnapshotOptions{Freeze: r.freeze, Thaw: r.thaw,
		Capture: r.capture, Release: r.release, NoReflink: true})
	wantCode(t, err, CodeCallback)
	if !errors.Is(err, errBoom) || thaws() != 1 || len(r.released) != 0 {
		t.Fatalf("snapshot capture error: %v, events %v", err, r.eventList())
	}

	// a capture hook that panics
	r.reset()
	o := opts()
	o.Capture = func(ns, vm, volume, path string) (string, error) { panic("capture oops") }
	err = e.ctx.Backup(ctx, r.vm, "c-panic", o)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "capture oops" || !errors.Is(err, ErrCallback) || thaws() != 1 {
		t.Fatalf("capture panic: %v, events %v", err, r.eventList())
	}
	notReady("c-panic")

	// a path the library cannot take
	for i, bad := range []string{strings.Repeat("x", 5000), "a\x00b"} {
		r.reset()
		o = opts()
		o.Capture = func(ns, vm, volume, path string) (string, error) { return bad, nil }
		name := fmt.Sprintf("c-path-%d", i)
		err = e.ctx.Backup(ctx, r.vm, name, o)
		wantCode(t, err, CodeCallback)
		if !strings.Contains(err.Error(), "capture of volume root") || thaws() != 1 {
			t.Fatalf("bad path: %v", err)
		}
		notReady(name)
	}

	// a capture smaller than the volume: the library refuses it (and still
	// releases it)
	r.reset()
	o = opts()
	small := filepath.Join(r.capDir, "small")
	var smallReleased atomic.Int32
	o.Capture = func(ns, vm, volume, path string) (string, error) {
		return small, os.WriteFile(small, []byte("short"), 0o600)
	}
	o.Release = func(ns, vm, volume, p string) error {
		smallReleased.Add(1)
		return nil
	}
	err = e.ctx.Backup(ctx, r.vm, "c-small", o)
	wantCode(t, err, CodeCallback)
	if smallReleased.Load() != 1 || thaws() != 1 {
		t.Fatalf("small capture: %v, released %d times", err, smallReleased.Load())
	}
	os.Remove(small)

	// a release hook that fails: the backup fails (not committed); every
	// capture is still released once
	r.reset()
	o = opts()
	o.Release = func(ns, vm, volume, p string) error {
		if err := r.release(ns, vm, volume, p); err != nil {
			return err
		}
		return errBoom
	}
	err = e.ctx.Backup(ctx, r.vm, "r-err", o)
	wantCode(t, err, CodeCallback)
	if !errors.Is(err, errBoom) || thaws() != 1 {
		t.Fatalf("release error: %v", err)
	}
	r.checkReleased()
	notReady("r-err")

	// a release hook that panics
	r.reset()
	o = opts()
	o.Release = func(ns, vm, volume, p string) error {
		r.release(ns, vm, volume, p)
		panic("release oops")
	}
	err = e.ctx.Backup(ctx, r.vm, "r-panic", o)
	if !errors.As(err, &pe) || pe.Value != "release oops" || !errors.Is(err, ErrCallback) {
		t.Fatalf("release panic: %v", err)
	}
	r.checkReleased()
	notReady("r-panic")

	// refused at once: a capture hook without a release hook, a negative
	// deadline; nothing is called
	r.reset()
	_, err = e.ctx.StartBackup(r.vm, "refused", &BackupOptions{Capture: r.capture})
	wantCode(t, err, CodeInvalid)
	_, err = e.ctx.StartSnapshot(r.vm, "refused", &SnapshotOptions{Capture: r.capture})
	wantCode(t, err, CodeInvalid)
	_, err = e.ctx.StartBackup(r.vm, "refused", &BackupOptions{FreezeDeadline: -time.Second})
	wantCode(t, err, CodeInvalid)
	_, err = e.ctx.StartRunDue(time.Now(), &RunOptions{FreezeDeadline: -time.Second})
	wantCode(t, err, CodeInvalid)
	if ev := r.eventList(); len(ev) != 0 {
		t.Fatalf("hooks called: %v", ev)
	}
	if _, err := e.ctx.BackupInfo("default", "refused"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused backup recorded: %v", err)
	}
	if n := openHandles(); n != base {
		t.Fatalf("%d cgo handles left open (had %d)", n, base)
	}
}

// An operation cancelled while its volumes are captured still releases
// every capture once; a release hook failing then does not hide the cancel
// (the library keeps its first error).
func TestFreezeWindowCancelReleases(t *testing.T) {
	e := newEnv(t)
	r := newCaptureRig(t, e, "web", 65)
	opReady := make(chan *Operation, 1)
	var cancelled atomic.Bool
	o := &BackupOptions{Freeze: r.freeze, Thaw: r.thaw, NoReflink: true,
		Capture: func(ns, vm, volume, path string) (string, error) {
			if !cancelled.Swap(true) {
				op := <-opReady // StartBackup returned it
				op.Cancel()     // a library call from a callback: allowed
			}
			return r.capture(ns, vm, volume, path)
		},
		Release: func(ns, vm, volume, p string) error {
			if err := r.release(ns, vm, volume, p); err != nil {
				return err
			}
			return errBoom
		}}
	op, err := e.ctx.StartBackup(r.vm, "b1", o)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	opReady <- op
	err = op.Wait(context.Background())
	wantCode(t, err, CodeCancelled)
	if errors.Is(err, ErrCallback) || errors.Is(err, errBoom) {
		t.Fatalf("cancelled backup: %v", err)
	}
	// the library stops capturing at the cancel (between steps)
	r.checkOrder("root")
	r.checkReleased()
	if info, err := e.ctx.BackupInfo("default", "b1"); err != nil || info.State != StateError {
		t.Fatalf("info %+v %v", info, err)
	}
}

// slowReader serves data, each read taking at least delay (a slow volume
// read while the VM is frozen).
type slowReader struct {
	data  []byte
	delay time.Duration
	reads atomic.Int32
}

func (s *slowReader) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	time.Sleep(s.delay)
	return copy(p, s.data[off:]), nil
}

// A freeze deadline that passes while an uncaptured volume is read: the
// backup stops reading, thaws once and fails with ErrTimeout. Every read
// takes longer than the deadline, so it has passed by the end of the first
// one, however loaded the machine.
func TestFreezeWindowDeadline(t *testing.T) {
	e := newEnv(t, WithThreads(2))
	if err := e.ctx.SetTarget("file://"+e.target, WithChunkSize(256<<10)); err != nil {
		t.Fatal(err)
	}
	const deadline = 50 * time.Millisecond
	const chunks = 32
	for _, kind := range []string{"backup", "snapshot"} {
		slow := &slowReader{data: randomBytes(chunks*256<<10, 70), delay: 2 * deadline}
		vm, err := NewVM("default", "slow-"+kind)
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Close()
		if err := vm.AddDiskIO("root", uint64(len(slow.data)), slow, nil); err != nil {
			t.Fatal(err)
		}
		var freezes, thaws atomic.Int32
		freeze := func(ns, name string) error { freezes.Add(1); return nil }
		thaw := func(ns, name string) error { thaws.Add(1); return nil }
		var info *BackupInfo
		if kind == "backup" {
			err = e.ctx.Backup(context.Background(), vm, "b1",
				&BackupOptions{Freeze: freeze, Thaw: thaw, FreezeDeadline: deadline})
			info, _ = e.ctx.BackupInfo("default", "b1")
		} else {
			err = e.ctx.Snapshot(context.Background(), vm, "s1",
				&SnapshotOptions{Freeze: freeze, Thaw: thaw, FreezeDeadline: deadline})
			info, _ = e.ctx.SnapshotInfo("default", "s1")
		}
		he := wantCode(t, err, CodeTimeout)
		if !errors.Is(err, ErrTimeout) || !strings.Contains(he.Message, "freeze deadline of 50 ms") {
			t.Fatalf("%s: %v", kind, err)
		}
		if freezes.Load() != 1 || thaws.Load() != 1 {
			t.Fatalf("%s: freeze called %d times, thaw %d", kind, freezes.Load(), thaws.Load())
		}
		if n := slow.reads.Load(); n == 0 || n >= chunks {
			t.Fatalf("%s: %d reads of %d chunks", kind, n, chunks)
		}
		t.Logf("%s: %d of %d chunks read before the deadline of %v passed; frozen %v",
			kind, slow.reads.Load(), chunks, deadline, info.Frozen)
		if info == nil || info.State != StateError || info.Frozen < deadline || info.Capture != CaptureNone {
			t.Fatalf("%s: info %+v", kind, info)
		}
	}
}
