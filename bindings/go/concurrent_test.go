package harvbk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Operations from many goroutines on one shared Context (run it with -race):
// each goroutine backs up its own VM, restores it, reads infos and lists,
// while others snapshot, sync and list; every restored disk must equal its
// source.
func TestConcurrentOperations(t *testing.T) {
	e := newEnv(t)
	const workers = 8
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers)
	for i := 0; i < workers; i++ {
		vm, data, _ := e.vmWithDisk(t, "default", fmt.Sprintf("vm%d", i), 1<<20+i*4096, int64(100+i))
		wg.Add(1)
		go func(i int, vm *VM, data []byte) {
			defer wg.Done()
			fail := func(err error) { errs <- fmt.Errorf("worker %d: %w", i, err) }
			var progress uint64
			opts := &BackupOptions{Progress: func(done, total uint64) error { progress = done; return nil }}
			name := fmt.Sprintf("b%d", i)
			if err := e.ctx.Backup(ctx, vm, name, opts); err != nil {
				fail(err)
				return
			}
			if progress != uint64(len(data)) {
				fail(fmt.Errorf("progress %d of %d", progress, len(data)))
			}
			if err := e.ctx.Snapshot(ctx, vm, name, nil); err != nil {
				fail(err)
				return
			}
			if info, err := e.ctx.BackupInfo("default", name); err != nil || info.State != StateReady {
				fail(fmt.Errorf("info %+v %v", info, err))
			}
			if _, err := e.ctx.Backups(); err != nil {
				fail(err)
			}
			into := filepath.Join(e.dir, "restore", name)
			if err := e.ctx.Restore(ctx, "default", name,
				RestoreOptions{NewVM: fmt.Sprintf("copy%d", i), Into: into}); err != nil {
				fail(err)
				return
			}
			got, err := os.ReadFile(filepath.Join(into, "root.raw"))
			if err != nil || string(got) != string(data) {
				fail(fmt.Errorf("restored bytes differ (%v)", err))
			}
			// an error path too, concurrently: the message is this call's own
			_, err = e.ctx.BackupInfo("default", fmt.Sprintf("missing%d", i))
			var he *Error
			if !errors.As(err, &he) || he.Code != CodeNotFound ||
				!strings.Contains(he.Message, fmt.Sprintf("default/missing%d", i)) {
				fail(fmt.Errorf("missing backup: %v", err))
			}
		}(i, vm, data)
	}
	// readers beside the writers
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := e.ctx.Snapshots(); err != nil {
					errs <- err
				}
				if _, err := e.ctx.Quotas(); err != nil {
					errs <- err
				}
				if _, err := e.ctx.OpsInProgress(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := e.ctx.Backups()
	if err != nil || len(list) != workers {
		t.Fatalf("%d backups, want %d (%v)", len(list), workers, err)
	}
}

// One operation shared by goroutines: Wait, Progress, State, Cancel and
// Close at once.
func TestConcurrentOperationHandle(t *testing.T) {
	e := newEnv(t)
	vm, _, _ := e.vmWithDisk(t, "default", "web", 4<<20, 30)
	op, err := e.ctx.StartBackup(vm, "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch i % 3 {
			case 0:
				op.Wait(context.Background())
			case 1:
				op.Progress()
				op.State()
				op.Kind()
			case 2:
				if i == 5 {
					op.Close()
				}
			}
		}(i)
	}
	wg.Wait()
	op.Close()
}

func rssKB(t testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return v
		}
	}
	t.Skip("no VmRSS")
	return 0
}

func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// Many create/Close cycles: no cgo handle is left behind and the resident
// size does not grow with the number of cycles (C allocations are freed).
func TestCreateCloseCycles(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.raw")
	makeDisk(t, disk, 256<<10, 40)
	base := openHandles()

	cycle := func(n int) {
		for i := 0; i < n; i++ {
			vm, err := NewVM("default", "web")
			if err != nil {
				t.Fatal(err)
			}
			vm.AddDisk("root", disk)
			vm.AddDiskIO("mem", 4096, &memDisk{b: make([]byte, 4096)}, nil)
			vm.SetMetadata([]byte(`{"spec":{}}`))
			vm.Info()
			if _, err := NewVM("default", "Bad_Name"); err == nil {
				t.Fatal("bad name accepted")
			}
			vm.Close()
		}
	}
	cycle(2000) // warm up: allocator arenas, Go heap
	settle()
	rss0 := rssKB(t)
	cycle(20000)
	settle()
	rss1 := rssKB(t)
	t.Logf("20000 VM cycles: RSS %d -> %d KiB", rss0, rss1)
	// leaking the C VM of each cycle grows it by about 11 MiB
	if rss1-rss0 > 3<<10 {
		t.Errorf("RSS grew by %d KiB over 20000 VM create/Close cycles", rss1-rss0)
	}

	// contexts with hooks, operations with callbacks
	ctxCycle := func(n int) {
		for i := 0; i < n; i++ {
			c, err := Open(filepath.Join(dir, "state"), WithLogger(func(LogLevel, string) {}, LogInfo))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if err := c.SetTarget("file://" + filepath.Join(dir, "target")); err != nil {
					t.Fatal(err)
				}
			}
			c.SetImageHook(func(Image) error { return nil })
			vm, _ := NewVM("default", "web")
			vm.AddDiskIO("mem", 64<<10, &memDisk{b: make([]byte, 64<<10)}, nil)
			name := fmt.Sprintf("b%d", i)
			err = c.Backup(context.Background(), vm, name, &BackupOptions{
				Progress: func(done, total uint64) error { return nil },
				Freeze:   func(ns, vm string) error { return nil },
				Thaw:     func(ns, vm string) error { return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteBackup("default", name); err != nil {
				t.Fatal(err)
			}
			vm.Close()
			c.Close()
		}
	}
	ctxCycle(20)
	settle()
	rss0 = rssKB(t)
	ctxCycle(200)
	settle()
	rss1 = rssKB(t)
	t.Logf("200 context+backup cycles: RSS %d -> %d KiB", rss0, rss1)
	if rss1-rss0 > 16<<10 {
		t.Errorf("RSS grew by %d KiB over 200 context+backup cycles", rss1-rss0)
	}
	if n := openHandles(); n != base {
		t.Fatalf("%d cgo handles left open (had %d)", n, base)
	}
}
