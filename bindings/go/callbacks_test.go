package harvbk

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// memDisk is an in-memory volume (io.ReaderAt + io.WriterAt, safe for
// parallel calls).
type memDisk struct {
	mu sync.Mutex
	b  []byte
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.b[off:]), nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.b[off:], p), nil
}

// gateReader serves data, but its calls after the first block until
// release is closed: an operation using it is certainly still running
// until then, without any sleep.
type gateReader struct {
	data    []byte
	once    sync.Once
	started chan struct{}
	release <-chan struct{}
}

func (g *gateReader) ReadAt(p []byte, off int64) (int, error) {
	g.once.Do(func() { close(g.started) })
	<-g.release
	return copy(p, g.data[off:]), nil
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestAlreadyCancelledContext(t *testing.T) {
	e := newEnv(t)
	vm, _, _ := e.vmWithDisk(t, "default", "web", 64<<10, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := e.ctx.Backup(ctx, vm, "b1", nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("Backup with a cancelled context: %v", err)
	}
	wantCode(t, err, CodeCancelled)
	// nothing was started
	_, err = e.ctx.BackupInfo("default", "b1")
	wantCode(t, err, CodeNotFound)
	err = e.ctx.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "x", Into: e.dir})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("Restore: %v", err)
	}
}

// Cancel through the context from another goroutine while the backup runs.
func TestCancelFromAnotherGoroutine(t *testing.T) {
	for _, deadline := range []bool{false, true} {
		e := newEnv(t)
		release := make(chan struct{})
		g := &gateReader{data: randomBytes(16<<20, 11), started: make(chan struct{}), release: release}
		vm, err := NewVM("default", "slow")
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Close()
		if err := vm.AddDiskIO("root", uint64(len(g.data)), g, nil); err != nil {
			t.Fatal(err)
		}
		var ctx context.Context
		var cancel context.CancelFunc
		if deadline {
			// the reader blocks until the context is done: the deadline
			// always passes while the backup runs
			ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
		} else {
			ctx, cancel = context.WithCancel(context.Background())
		}
		defer cancel()
		go func() {
			<-g.started
			cancel()
		}()
		go func() {
			<-ctx.Done()
			close(release)
		}()
		err = e.ctx.Backup(ctx, vm, "b1", nil)
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, ctx.Err()) {
			t.Fatalf("deadline %v: Backup: %v", deadline, err)
		}
		info, err := e.ctx.BackupInfo("default", "b1")
		if err != nil || info.State != StateError {
			t.Fatalf("cancelled backup: %+v %v", info, err)
		}
	}
}

// Operation.Cancel and concurrent Wait on one operation.
func TestOperationCancelAndWait(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	g := &gateReader{data: randomBytes(8<<20, 12), started: make(chan struct{}), release: release}
	vm, _ := NewVM("default", "slow")
	defer vm.Close()
	vm.AddDiskIO("root", uint64(len(g.data)), g, nil)
	op, err := e.ctx.StartBackup(vm, "b1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if op.Kind() != "backup" {
		t.Fatalf("kind %q", op.Kind())
	}
	<-g.started
	if op.State() != StateInProgress {
		t.Fatalf("state %q", op.State())
	}
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { errs <- op.Wait(context.Background()) }()
	}
	op.Cancel()
	close(release)
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, ErrCancelled) || errors.Is(err, context.Canceled) {
			t.Fatalf("Wait: %v", err)
		}
	}
	if op.State() != StateError {
		t.Fatalf("state %q", op.State())
	}
	op.Close()
	op.Close()
	if err := op.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
}

// A callback that returns an error or panics: the library sees a failure,
// the call returns it, and the backup is not Ready.
func TestCallbackFailures(t *testing.T) {
	e := newEnv(t)
	vm, _, _ := e.vmWithDisk(t, "default", "web", 2<<20, 13)
	ctx := context.Background()
	boom := errors.New("boom")
	notReady := func(name string) {
		t.Helper()
		info, err := e.ctx.BackupInfo("default", name)
		if err != nil || info.State == StateReady {
			t.Fatalf("%s: %+v %v", name, info, err)
		}
	}

	// progress returns an error
	err := e.ctx.Backup(ctx, vm, "p-err", &BackupOptions{Progress: func(d, t uint64) error { return boom }})
	wantCode(t, err, CodeCallback)
	if !errors.Is(err, boom) {
		t.Fatalf("progress error not wrapped: %v", err)
	}
	notReady("p-err")

	// progress panics
	err = e.ctx.Backup(ctx, vm, "p-panic", &BackupOptions{Progress: func(d, t uint64) error { panic("oops") }})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "oops" || len(pe.Stack) == 0 || !errors.Is(err, ErrCallback) {
		t.Fatalf("progress panic: %v", err)
	}
	notReady("p-panic")

	// freeze fails: ErrFreeze wrapping the error, thaw not called
	thawed := 0
	err = e.ctx.Backup(ctx, vm, "f-err", &BackupOptions{
		Freeze: func(ns, name string) error { return boom },
		Thaw:   func(ns, name string) error { thawed++; return nil },
	})
	wantCode(t, err, CodeFreeze)
	if !errors.Is(err, boom) || thawed != 0 {
		t.Fatalf("freeze error: %v (thawed %d)", err, thawed)
	}
	notReady("f-err")

	// freeze without thaw is refused at once
	_, err = e.ctx.StartBackup(vm, "f-nothaw", &BackupOptions{Freeze: func(ns, name string) error { return nil }})
	wantCode(t, err, CodeInvalid)

	// freeze + thaw succeed; a failing thaw marks the backup ThawFailed
	var frozen []string
	err = e.ctx.Backup(ctx, vm, "f-ok", &BackupOptions{
		Freeze: func(ns, name string) error { frozen = append(frozen, "freeze "+ns+"/"+name); return nil },
		Thaw:   func(ns, name string) error { frozen = append(frozen, "thaw "+ns+"/"+name); return boom },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(frozen) != 2 || frozen[0] != "freeze default/web" || frozen[1] != "thaw default/web" {
		t.Fatalf("hooks %v", frozen)
	}
	if info, _ := e.ctx.BackupInfo("default", "f-ok"); info.State != StateReady || !info.ThawFailed {
		t.Fatalf("thaw failure: %+v", info)
	}

	// a volume reader failing: plain error -> ErrCallback, *Error -> its code
	for _, tc := range []struct {
		name string
		err  error
		code Code
	}{{"r-err", boom, CodeCallback}, {"r-io", &Error{Code: CodeIO, Message: "disk gone"}, CodeIO}} {
		bad, _ := NewVM("default", "bad")
		bad.AddDiskIO("root", 1<<20, readerFunc(func(p []byte, off int64) (int, error) { return 0, tc.err }), nil)
		err = e.ctx.Backup(ctx, bad, tc.name, nil)
		bad.Close()
		wantCode(t, err, tc.code)
		if !errors.Is(err, tc.err) {
			t.Fatalf("reader error not wrapped: %v", err)
		}
	}

	// a reader that panics
	bad, _ := NewVM("default", "bad")
	bad.AddDiskIO("root", 1<<20, readerFunc(func(p []byte, off int64) (int, error) { panic(42) }), nil)
	err = e.ctx.Backup(ctx, bad, "r-panic", nil)
	bad.Close()
	if !errors.As(err, &pe) || pe.Value != 42 || !errors.Is(err, ErrCallback) {
		t.Fatalf("reader panic: %v", err)
	}
}

type readerFunc func(p []byte, off int64) (int, error)

func (f readerFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

// Volumes through io.ReaderAt / io.WriterAt, both ways.
func TestIOVolumes(t *testing.T) {
	e := newEnv(t)
	src := &memDisk{b: randomBytes(3<<20+777, 14)}
	vm, _ := NewVM("default", "mem")
	defer vm.Close()
	if err := vm.AddDiskIO("data", uint64(len(src.b)), src, nil); err != nil {
		t.Fatal(err)
	}
	if d := vm.Info().Disks; len(d) != 1 || !d[0].IO || d[0].Size != uint64(len(src.b)) {
		t.Fatalf("disks %+v", d)
	}
	wantCode(t, e.ctx.RegisterVM(vm), CodeInvalid)
	if err := e.ctx.Backup(context.Background(), vm, "m1", nil); err != nil {
		t.Fatal(err)
	}
	dst := &memDisk{b: make([]byte, len(src.b))}
	tvm, _ := NewVM("default", "mem-copy")
	defer tvm.Close()
	tvm.AddDiskIO("data", uint64(len(dst.b)), nil, dst)
	if err := e.ctx.Restore(context.Background(), "default", "m1",
		RestoreOptions{NewVM: "mem-copy", TargetVM: tvm}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.b, src.b) {
		t.Fatal("restored bytes differ")
	}
}

func TestMetadataRewrite(t *testing.T) {
	e := newEnv(t)
	vm, data, _ := e.vmWithDisk(t, "default", "web", 1<<20, 15)
	vm.SetMetadata([]byte(`{"metadata":{"name":"web","namespace":"default"}}`))
	ctx := context.Background()
	if err := e.ctx.Backup(ctx, vm, "b1", nil); err != nil {
		t.Fatal(err)
	}
	// an error: nothing written
	boom := errors.New("no rewrite")
	into := filepath.Join(e.dir, "r1")
	err := e.ctx.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "c1", Into: into,
		MetadataRewrite: func(m *MetadataRewrite) error { return boom }})
	if !errors.Is(err, boom) || !errors.Is(err, ErrCallback) {
		t.Fatalf("rewrite error: %v", err)
	}
	if ents, _ := os.ReadDir(into); len(ents) != 0 {
		t.Fatalf("files left: %v", ents)
	}
	// a rewrite that sees the restore and sets its own document
	var seen *MetadataRewrite
	err = e.ctx.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "c2", Into: into,
		MetadataRewrite: func(m *MetadataRewrite) error {
			seen = m
			if m.SourceVM() != "web" || m.VM() != "c2" || m.Namespace() != "default" || m.Replace() ||
				len(m.Volumes()) != 1 || m.Volumes()[0].Name != "root" ||
				!bytes.Contains(m.Input(), []byte(`"web"`)) {
				t.Errorf("rewrite sees %q %q %v %s", m.SourceVM(), m.VM(), m.Volumes(), m.Input())
			}
			return m.SetOutput([]byte(`{"rewritten":true}`))
		}})
	if err != nil {
		t.Fatal(err)
	}
	if seen.VM() != "" || seen.SetOutput(nil) == nil {
		t.Fatal("the rewrite handle is usable after the hook")
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), data)
	c2, err := e.ctx.LookupVM("default", "c2")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if string(c2.Info().Metadata) != `{"rewritten":true}` {
		t.Fatalf("metadata %s", c2.Info().Metadata)
	}
}

func TestImageHook(t *testing.T) {
	e := newEnv(t)
	if err := e.ctx.RegisterImage(Image{Namespace: "default", Name: "img", DisplayName: "Debian 12",
		URL: "https://example.invalid/d12.qcow2"}); err != nil {
		t.Fatal(err)
	}
	vm, data, _ := e.vmWithDisk(t, "default", "web", 256<<10, 16)
	vm.AddImage("img")
	ctx := context.Background()
	if err := e.ctx.Backup(ctx, vm, "b1", nil); err != nil {
		t.Fatal(err)
	}
	// a second cluster without the image
	b, err := Open(filepath.Join(e.dir, "state-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetTarget("file://" + e.target); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(e.dir, "rb")
	wantCode(t, b.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "web", Into: into}), CodeImage)
	boom := errors.New("cannot download")
	b.SetImageHook(func(img Image) error { return boom })
	err = b.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "web", Into: into})
	wantCode(t, err, CodeImage)
	if !errors.Is(err, boom) {
		t.Fatalf("image hook error not wrapped: %v", err)
	}
	var got []Image
	b.SetImageHook(func(img Image) error { got = append(got, img); return nil })
	if err := b.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "web", Into: into}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "img" || got[0].DisplayName != "Debian 12" {
		t.Fatalf("hook saw %+v", got)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), data)
	imgs, err := b.Images()
	if err != nil || len(imgs) != 1 || imgs[0].URL != "https://example.invalid/d12.qcow2" {
		t.Fatalf("images %+v %v", imgs, err)
	}
	if err := b.UnregisterImage("default", "img"); err != nil {
		t.Fatal(err)
	}
	_, err = b.LookupImage("default", "img")
	wantCode(t, err, CodeNotFound)
}
