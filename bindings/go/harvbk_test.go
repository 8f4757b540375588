package harvbk

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ---- helpers ----

// makeDisk writes a disk image of size bytes (random data, a run of zeros in
// the middle) to path and returns its bytes.
func makeDisk(t testing.TB, path string, size int, seed int64) []byte {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewSource(seed))
	r.Read(b[:size/3])
	r.Read(b[2*size/3:])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	dir    string
	ctx    *Context
	target string
}

// newEnv opens a context on a fresh state directory with a file:// target.
func newEnv(t testing.TB, opts ...Option) *env {
	t.Helper()
	dir := t.TempDir()
	c, err := Open(filepath.Join(dir, "state"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	e := &env{dir: dir, ctx: c, target: filepath.Join(dir, "target")}
	if err := c.SetTarget("file://" + e.target); err != nil {
		t.Fatalf("SetTarget: %v", err)
	}
	return e
}

// vmWithDisk makes VM ns/name with one disk "root" of size bytes.
func (e *env) vmWithDisk(t testing.TB, ns, name string, size int, seed int64) (*VM, []byte, string) {
	t.Helper()
	path := filepath.Join(e.dir, ns+"-"+name+".raw")
	data := makeDisk(t, path, size, seed)
	vm, err := NewVM(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	if err := vm.AddDisk("root", path); err != nil {
		t.Fatal(err)
	}
	return vm, data, path
}

// backdate sets the modification time of every file under dir back by d.
func backdate(t testing.TB, dir string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustEqualFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d expected", path, len(got), len(want))
	}
}

// wantCode checks that err is an *Error of code c matching sentinel s.
func wantCode(t testing.TB, err error, c Code) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Code != c {
		t.Fatalf("error %v: code %v, want %v", err, e.Code, c)
	}
	if !errors.Is(err, Sentinel(c)) {
		t.Fatalf("errors.Is(%v, %v) is false", err, Sentinel(c))
	}
	if e.Message == "" {
		t.Fatalf("error %v has no message", err)
	}
	return e
}

// ---- tests ----

func TestVersion(t *testing.T) {
	if Version() == "" || VersionNumber() < 10000 {
		t.Fatalf("version %q %d", Version(), VersionNumber())
	}
}

// Every code of harvbk/common.h has a Code constant named like the C one and
// an exported sentinel; the sentinels match only their own code.
func TestErrorCodesComplete(t *testing.T) {
	for c := CodeUnspecified; c >= cLastCode; c-- {
		if got, want := c.String(), cErrorName(c); got != want {
			t.Errorf("Code(%d).String() = %q, C says %q: add it to errors.go", int(c), got, want)
		}
		s := Sentinel(c)
		if s == nil {
			t.Errorf("no sentinel for %s (%d): add one to errors.go", cErrorName(c), int(c))
			continue
		}
		if !errors.Is(&Error{Code: c}, s) || errors.Is(&Error{Code: c - 1}, s) {
			t.Errorf("sentinel of %v matches the wrong codes", c)
		}
	}
	if len(sentinels) != int(-cLastCode) {
		t.Errorf("%d sentinels for %d codes", len(sentinels), -cLastCode)
	}
}

func TestRoundTripFile(t *testing.T) {
	e := newEnv(t)
	vm, data, _ := e.vmWithDisk(t, "default", "web", 5<<20+4321, 1)
	ctx := context.Background()

	var calls int
	var last uint64
	err := e.ctx.Backup(ctx, vm, "web-1", &BackupOptions{Progress: func(done, total uint64) error {
		calls++
		if done < last || done > total {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
		return nil
	}})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if calls == 0 || last != uint64(len(data)) {
		t.Fatalf("progress: %d calls, last %d, want %d", calls, last, len(data))
	}
	info, err := e.ctx.BackupInfo("default", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Ready" || info.Name != "web-1" || info.Namespace != "default" || info.VM != "web" ||
		info.LogicalBytes != uint64(len(data)) || info.UploadedBytes == 0 ||
		len(info.Volumes) != 1 ||
		info.Volumes[0] != (VolumeInfo{Name: "root", Size: uint64(len(data)), Capture: CaptureNone}) ||
		info.Frozen != NotFrozen || info.Capture != CaptureNone ||
		info.Created.IsZero() || !strings.Contains(info.JSON, `"web-1"`) {
		t.Fatalf("info %+v", info)
	}
	list, err := e.ctx.Backups()
	if err != nil || len(list) != 1 || list[0].Name != "web-1" || list[0].UploadedBytes != info.UploadedBytes {
		t.Fatalf("Backups: %v %+v", err, list)
	}
	if err := e.ctx.VerifyBackup(ctx, "default", "web-1", nil); err != nil {
		t.Fatalf("VerifyBackup: %v", err)
	}

	into := filepath.Join(e.dir, "restore")
	if err := e.ctx.Restore(ctx, "default", "web-1", RestoreOptions{NewVM: "default/web-copy", Into: into}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), data)
	copyVM, err := e.ctx.LookupVM("default", "web-copy")
	if err != nil {
		t.Fatalf("LookupVM: %v", err)
	}
	defer copyVM.Close()
	if d := copyVM.Info().Disks; len(d) != 1 || d[0].Path != filepath.Join(into, "root.raw") {
		t.Fatalf("restored VM disks %+v", d)
	}
	// a restore into the same new VM again: it exists
	wantCode(t, e.ctx.Restore(ctx, "default", "web-1", RestoreOptions{NewVM: "web-copy", Into: into}), CodeExists)

	if err := e.ctx.DeleteBackup("default", "web-1"); err != nil {
		t.Fatal(err)
	}
	_, err = e.ctx.BackupInfo("default", "web-1")
	wantCode(t, err, CodeNotFound)
	// gc keeps chunks not older than its start (a writer may still need
	// them): age the target's files first
	backdate(t, e.target, time.Hour)
	res, err := e.ctx.GC(ctx, nil)
	if err != nil || res.Chunks == 0 || res.Bytes == 0 {
		t.Fatalf("GC: %+v %v", res, err)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	_, err := e.ctx.BackupInfo("default", "nope")
	ee := wantCode(t, err, CodeNotFound)
	if !strings.Contains(ee.Message, "default/nope") {
		t.Fatalf("message %q does not name the backup", ee.Message)
	}
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		t.Fatal("errors.Is against sentinels")
	}

	// context-less calls: the message is the calling thread's last error
	_, err = NewVM("default", "Not_A_Label")
	ee = wantCode(t, err, CodeInvalid)
	if !strings.Contains(ee.Message, "Not_A_Label") {
		t.Fatalf("NewVM message %q", ee.Message)
	}
	file := filepath.Join(e.dir, "a-file")
	os.WriteFile(file, nil, 0o644)
	_, err = Open(file)
	var oe *Error
	if !errors.As(err, &oe) || !strings.Contains(oe.Message, file) {
		t.Fatalf("Open on a file: %v", err)
	}
	_, err = NewVM("default", "a\x00b")
	wantCode(t, err, CodeInvalid)

	vm, _, _ := e.vmWithDisk(t, "default", "web", 64<<10, 2)
	wantCode(t, vm.AddDisk("root", "/elsewhere"), CodeExists)
	wantCode(t, e.ctx.SetTarget("ftp://x/y"), CodeUnsupported)
	wantCode(t, e.ctx.SetTarget("file:///x", WithSetting(TargetKey(99), "1")), CodeInvalid)
	if err := e.ctx.Backup(context.Background(), vm, "b1", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.ctx.Backup(context.Background(), vm, "b1", nil), CodeExists)
	wantCode(t, e.ctx.Restore(context.Background(), "default", "b1",
		RestoreOptions{NewVM: "x", Replace: "y"}), CodeInvalid)
}

func TestClosed(t *testing.T) {
	e := newEnv(t)
	vm, _, _ := e.vmWithDisk(t, "default", "web", 64<<10, 3)
	if err := e.ctx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, err := e.ctx.Backups()
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("after Close: %v", err)
	}
	if err := e.ctx.Backup(context.Background(), vm, "b", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Backup after Close: %v", err)
	}
	vm.Close()
	vm.Close()
	if err := vm.AddDisk("d2", "/x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddDisk after Close: %v", err)
	}
	if vm.Name() != "" {
		t.Fatal("closed VM has a name")
	}
}

func TestTargetConfig(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "t2")
	if err := e.ctx.SetTarget("file://"+dir, WithCodec("lz4"), WithChunkSize(256<<10)); err != nil {
		t.Fatal(err)
	}
	cfg, err := e.ctx.Target()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "file://"+dir || cfg.Settings[TargetCodec] != "lz4" ||
		cfg.Settings[TargetChunkSize] != "262144" || cfg.HasSecret {
		t.Fatalf("Target() = %+v", cfg)
	}
	if err := e.ctx.CheckTarget(); err != nil {
		t.Fatal(err)
	}
}

// Two contexts (clusters) on one target: the second sees the first's backup
// after a sync and restores it.
func TestCrossClusterSync(t *testing.T) {
	a := newEnv(t)
	vm, data, _ := a.vmWithDisk(t, "prod", "db", 1<<20, 4)
	if err := a.ctx.Backup(context.Background(), vm, "db-1", nil); err != nil {
		t.Fatal(err)
	}
	b, err := Open(filepath.Join(a.dir, "state-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetTarget("file://" + a.target); err != nil {
		t.Fatal(err)
	}
	res, err := b.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if res.SyncedAt.IsZero() {
		t.Fatalf("sync %+v", res)
	}
	info, err := b.BackupInfo("prod", "db-1")
	if err != nil || info.State != StateReady {
		t.Fatalf("B: %+v %v", info, err)
	}
	into := filepath.Join(a.dir, "b-restore")
	if err := b.Restore(context.Background(), "prod", "db-1", RestoreOptions{NewVM: "prod/db", Into: into}); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), data)
}

func TestLogger(t *testing.T) {
	var msgs []string
	logged := make(chan string, 1000)
	e := newEnv(t, WithLogger(func(level LogLevel, m string) {
		select {
		case logged <- m:
		default:
		}
	}, LogDebug), WithThreads(2))
	vm, _, _ := e.vmWithDisk(t, "default", "web", 256<<10, 5)
	if err := e.ctx.Backup(context.Background(), vm, "b", nil); err != nil {
		t.Fatal(err)
	}
	e.ctx.Close()
	close(logged)
	for m := range logged {
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		t.Fatal("no log message delivered")
	}
}

func TestVMInfoAndCatalog(t *testing.T) {
	e := newEnv(t)
	vm, _, path := e.vmWithDisk(t, "default", "web", 64<<10, 6)
	if err := vm.SetMetadata([]byte(`{"k":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := vm.AddImage("opaque:ref"); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetPowerState(PowerOff); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.RegisterVM(vm); err != nil {
		t.Fatal(err)
	}
	vms, err := e.ctx.VMs()
	if err != nil || len(vms) != 1 {
		t.Fatalf("VMs: %v %+v", err, vms)
	}
	got := vms[0]
	if got.Namespace != "default" || got.Name != "web" || string(got.Metadata) != `{"k":1}` ||
		len(got.Images) != 1 || got.Images[0] != "opaque:ref" || got.PowerState != PowerOff ||
		len(got.Disks) != 1 || got.Disks[0].Path != path {
		t.Fatalf("VM %+v", got)
	}
	if err := e.ctx.UnregisterVM("default", "web"); err != nil {
		t.Fatal(err)
	}
	_, err = e.ctx.LookupVM("default", "web")
	wantCode(t, err, CodeNotFound)
}

// Restore a backup over the VM it was taken of (replace), default policy
// (the previous volume is deleted).
func TestRestoreReplace(t *testing.T) {
	e := newEnv(t)
	vm, data, path := e.vmWithDisk(t, "default", "web", 2<<20, 7)
	ctx := context.Background()
	if err := e.ctx.RegisterVM(vm); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.Backup(ctx, vm, "b1", nil); err != nil {
		t.Fatal(err)
	}
	changed := append([]byte(nil), data...)
	copy(changed[1000:], "overwritten")
	os.WriteFile(path, changed, 0o644)
	wantCode(t, e.ctx.Restore(ctx, "default", "b1", RestoreOptions{Replace: "default/web"}), CodeVMRunning)
	if err := e.ctx.SetRegisteredPowerState("default", "web", PowerOff); err != nil {
		t.Fatal(err)
	}
	if err := e.ctx.Restore(ctx, "default", "b1", RestoreOptions{Replace: "default/web"}); err != nil {
		t.Fatal(err)
	}
	mustEqualFile(t, path, data)
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, en := range ents {
		if strings.Contains(en.Name(), "retained") {
			t.Fatalf("previous volume kept: %s", en.Name())
		}
	}
}
