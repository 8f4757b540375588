package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"context"
	"sort"
	"time"
)

// Range is a byte range [Offset, Offset+Length) of a volume.
type Range struct {
	Offset uint64
	Length uint64
}

// BackupOptions are the optional settings of a backup (nil: defaults).
// More fields may be added; the zero value of a new field keeps today's
// behaviour.
type BackupOptions struct {
	// Progress of the backup (bytes read of the VM's volumes).
	Progress ProgressFunc
	// Freeze and Thaw the VM's filesystems around capturing its volumes
	// (Freeze needs Thaw; see the freeze window below). A Freeze error fails
	// the backup with ErrFreeze wrapping it, unless AllowCrashConsistent; a
	// Thaw error does not fail it but marks it ThawFailed.
	Freeze, Thaw FreezeFunc
	// Go on when Freeze fails, marking the backup CrashConsistent.
	AllowCrashConsistent bool
	// What changed per volume name since the VM's latest Ready backup this
	// context wrote; chunks outside are taken from that backup unread. nil:
	// read everything. A volume absent from a non-nil map is unchanged.
	ChangedRanges map[string][]Range

	// The freeze window (docs/THREADING.md "Freeze window"): with Freeze or
	// Capture set, the backup runs freeze -> capture -> thaw -> read the
	// captures, so the VM stays frozen only while its volumes are captured.
	// Each volume is captured by the first method that works: a reflink
	// copy made by the library of a disk file on a filesystem with reflinks
	// (unless NoReflink), the Capture hook, else none (read where it is
	// before the thaw, bounded by FreezeDeadline). BackupInfo.Capture and
	// Frozen record what happened.
	//
	// Capture (needs Release, else ErrInvalid) captures the volumes a
	// reflink did not; Release removes each capture it made, exactly once.
	Capture CaptureFunc
	Release ReleaseFunc
	// Longest time the VM may stay frozen while volumes that were not
	// captured are read, from Freeze's return (rounded up to ms; 0: none).
	// When it passes first, the backup stops reading, thaws and fails with
	// ErrTimeout. Captures are not bounded by it.
	FreezeDeadline time.Duration
	// No reflink capture of disk files (the Capture hook, if any, is asked
	// for them instead).
	NoReflink bool
}

// OpOptions are the optional settings of verify and gc (nil: defaults).
type OpOptions struct {
	Progress ProgressFunc
}

func (o *OpOptions) hooks() (*opHooks, C.int) {
	if o == nil || o.Progress == nil {
		return &opHooks{}, 0
	}
	return &opHooks{progress: o.Progress}, 1
}

// VolumeInfo is one volume of a backup or snapshot.
type VolumeInfo struct {
	Name    string
	Size    uint64
	Capture CaptureMethod // how it was captured in the freeze window
}

// CaptureMethod is how the volumes of a backup or snapshot were captured in
// the freeze window (BackupOptions). A newer library may record other names.
type CaptureMethod string

const (
	CaptureReflink CaptureMethod = "reflink" // cloned by the library (FICLONE)
	CaptureHook    CaptureMethod = "hook"    // by the Capture hook
	CaptureNone    CaptureMethod = "none"    // read where it is, while frozen (also entries before 1.1)
	CaptureMixed   CaptureMethod = "mixed"   // BackupInfo.Capture only: the volumes differ
)

// NotFrozen is BackupInfo.Frozen of an entry whose VM was not frozen: no
// Freeze hook, or it failed (also entries written before library 1.1).
const NotFrozen time.Duration = -1

// CatalogFlags are the HARVBK_BACKUP_FLAG_* of a backup.
type CatalogFlags uint

const (
	FlagGone          CatalogFlags = 0x1 // its manifest vanished from the target
	FlagDeletePending CatalogFlags = 0x2 // deleted while the target was unreachable
	FlagIndexMissing  CatalogFlags = 0x4 // Ready manifest, an index is missing
	FlagLocal         CatalogFlags = 0x8 // this context's local record
)

// BackupInfo describes a backup or a snapshot (a plain copy).
type BackupInfo struct {
	Namespace       string
	Name            string
	VM              string // name of the VM it was taken of (same namespace)
	State           State  // "InProgress", "Ready", "Error"
	Error           string // why it is in state Error
	LogicalBytes    uint64 // sum of the volume sizes
	UploadedBytes   uint64 // bytes written to the target (new chunks + metadata)
	ProgressBytes   uint64 // bytes done while running
	Created         time.Time
	Volumes         []VolumeInfo
	CrashConsistent bool // freeze failed and AllowCrashConsistent went on
	ThawFailed      bool // the thaw hook failed (the VM may still be frozen)
	// How long the VM was kept frozen: from Freeze's return to Thaw's call
	// (ms precision), also on failed entries that got as far as the thaw;
	// NotFrozen (negative) when it was not frozen.
	Frozen time.Duration
	// How the volumes were captured: CaptureReflink or CaptureHook when all
	// of them were captured that way, CaptureMixed when they differ
	// (Volumes[i].Capture says which), CaptureNone when none was.
	Capture      CaptureMethod
	Schedule     string // the schedule that made it, "" when none
	CatalogFlags CatalogFlags
	SyncedAt     time.Time // when the catalog last confirmed it (backups)
	JSON         string    // the library's JSON description
}

func infoFromC(p *C.harvbk_backup_info) BackupInfo {
	b := BackupInfo{
		Namespace:       gostr(C.harvbk_backup_info_namespace(p)),
		Name:            gostr(C.harvbk_backup_info_name(p)),
		VM:              gostr(C.harvbk_backup_info_vm_name(p)),
		State:           stateName(C.harvbk_backup_info_state(p)),
		Error:           gostr(C.harvbk_backup_info_error(p)),
		LogicalBytes:    uint64(C.harvbk_backup_info_logical_bytes(p)),
		UploadedBytes:   uint64(C.harvbk_backup_info_uploaded_bytes(p)),
		ProgressBytes:   uint64(C.harvbk_backup_info_progress_bytes(p)),
		CrashConsistent: C.harvbk_backup_info_crash_consistent(p) == 1,
		ThawFailed:      C.harvbk_backup_info_thaw_failed(p) == 1,
		Frozen:          NotFrozen,
		Capture:         CaptureMethod(gostr(C.harvbk_backup_info_capture(p))),
		Schedule:        gostr(C.harvbk_backup_info_schedule(p)),
		CatalogFlags:    CatalogFlags(C.harvbk_backup_info_catalog_flags(p)),
		SyncedAt:        msTime(int64(C.harvbk_backup_info_synced_at(p))),
	}
	if ms := int64(C.harvbk_backup_info_frozen_ms(p)); ms >= 0 {
		b.Frozen = time.Duration(ms) * time.Millisecond
	}
	if s := int64(C.harvbk_backup_info_created(p)); s > 0 {
		b.Created = time.Unix(s, 0)
	}
	n := int(C.harvbk_backup_info_volume_count(p))
	for i := 0; i < n; i++ {
		b.Volumes = append(b.Volumes, VolumeInfo{
			Name:    gostr(C.harvbk_backup_info_volume_name(p, C.size_t(i))),
			Size:    uint64(C.harvbk_backup_info_volume_size(p, C.size_t(i))),
			Capture: CaptureMethod(gostr(C.harvbk_backup_info_volume_capture(p, C.size_t(i)))),
		})
	}
	var js *C.char
	if C.harvbk_backup_info_to_json(p, &js) == 0 {
		b.JSON = gostr(js)
		C.harvbk_string_free(js)
	}
	return b
}

func listFromC(l *C.harvbk_backup_list) []BackupInfo {
	n := int(C.harvbk_backup_list_count(l))
	out := make([]BackupInfo, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, infoFromC(C.harvbk_backup_list_at(l, C.size_t(i))))
	}
	return out
}

// makeRanges builds a harvbk_ranges (nil for a nil map); free it after use.
func makeRanges(m map[string][]Range) (*C.harvbk_ranges, error) {
	if m == nil {
		return nil, nil
	}
	var r *C.harvbk_ranges
	if err := call(func() C.int { return C.harvbk_ranges_new(&r) }); err != nil {
		return nil, err
	}
	vols := make([]string, 0, len(m))
	for v := range m {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for _, v := range vols {
		var cs cstrings
		cv, err := cs.add(v)
		if err != nil {
			C.harvbk_ranges_free(r)
			return nil, err
		}
		for _, rg := range m[v] {
			if err := call(func() C.int {
				return C.harvbk_ranges_add(r, cv, C.uint64_t(rg.Offset), C.uint64_t(rg.Length))
			}); err != nil {
				cs.free()
				C.harvbk_ranges_free(r)
				return nil, err
			}
		}
		cs.free()
	}
	return r, nil
}

// StartBackup starts a backup named name of vm into the target and returns
// the running operation (close it). The backup is InProgress at once.
// Errors: ErrInvalid, ErrNoTarget, ErrExists, ErrBusy, ...
func (c *Context) StartBackup(vm *VM, name string, opts *BackupOptions) (*Operation, error) {
	if opts == nil {
		opts = &BackupOptions{}
	}
	hk := &opHooks{progress: opts.Progress, freeze: opts.Freeze, thaw: opts.Thaw,
		capture: opts.Capture, captureRelease: opts.Release}
	var flags C.uint
	if opts.AllowCrashConsistent {
		flags |= C.HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT
	}
	if opts.NoReflink {
		flags |= C.HARVBK_BACKUP_NO_REFLINK
	}
	deadline, err := freezeDeadlineMS(opts.FreezeDeadline)
	if err != nil {
		return nil, err
	}
	var cs cstrings
	defer cs.free()
	cname, err := cs.add(name)
	if err != nil {
		return nil, err
	}
	ranges, err := makeRanges(opts.ChangedRanges)
	if err != nil {
		return nil, err
	}
	defer C.harvbk_ranges_free(ranges)
	return c.startOp(hk, func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int {
		var rc C.int
		cb := hk.cbs(deadline)
		err := vm.use(hk, func(v *C.harvbk_vm) error {
			rc = C.hbgo_backup_create(out, p, v, cname, flags, ranges, &cb, msg)
			return nil
		})
		if err != nil {
			return vmUseFailed(err, msg)
		}
		return rc
	})
}

// vmUseFailed reports an error of VM.use (a closed VM, a failed copy) from
// inside a startOp function.
func vmUseFailed(err error, msg **C.char) C.int {
	e, ok := err.(*Error)
	if !ok {
		e = newError(CodeInvalid, err.Error(), nil)
	}
	*msg = C.CString(e.Message)
	return C.int(e.Code)
}

// Backup backs vm up as name (in vm's namespace) and waits until it is
// Ready. Cancelling ctx cancels the backup (the error then matches both
// ErrCancelled and ctx.Err()); opts may be nil.
func (c *Context) Backup(ctx context.Context, vm *VM, name string, opts *BackupOptions) error {
	return c.run(ctx, func() (*Operation, error) { return c.StartBackup(vm, name, opts) }, nil)
}

// BackupInfo describes backup namespace/name from the context's catalog
// (ErrNotFound when unknown).
func (c *Context) BackupInfo(namespace, name string) (*BackupInfo, error) {
	var out *BackupInfo
	err := c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		var i *C.harvbk_backup_info
		if err := call(func() C.int { return C.harvbk_backup_get(&i, p, ns, n) }); err != nil {
			return err
		}
		defer C.harvbk_backup_info_free(i)
		b := infoFromC(i)
		out = &b
		return nil
	})
	return out, err
}

// Backups lists the backups of the catalog plus this context's unfinished
// ones, sorted by namespace then name.
func (c *Context) Backups() ([]BackupInfo, error) {
	var out []BackupInfo
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_backup_list
		if err := call(func() C.int { return C.harvbk_backup_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_backup_list_free(l)
		out = listFromC(l)
		return nil
	})
	return out, err
}

// StartVerifyBackup starts reading and checking every chunk of a backup.
func (c *Context) StartVerifyBackup(namespace, name string, opts *OpOptions) (*Operation, error) {
	return c.startVerify(0, namespace, name, opts)
}

// VerifyBackup reads and checks every chunk of a backup (ErrChunkCorrupt
// names a missing or corrupt one).
func (c *Context) VerifyBackup(ctx context.Context, namespace, name string, opts *OpOptions) error {
	return c.run(ctx, func() (*Operation, error) { return c.StartVerifyBackup(namespace, name, opts) }, nil)
}

func (c *Context) startVerify(snapshot C.int, namespace, name string, opts *OpOptions) (*Operation, error) {
	hk, progress := opts.hooks()
	var cs cstrings
	defer cs.free()
	ns, err := cs.add(namespace)
	if err != nil {
		return nil, err
	}
	n, err := cs.add(name)
	if err != nil {
		return nil, err
	}
	return c.startOp(hk, func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int {
		return C.hbgo_verify(out, p, snapshot, ns, n, h, progress, msg)
	})
}

// DeleteBackup deletes a backup from the target and the catalog (chunks are
// freed by GC). ErrNotFound, ErrBusy, ErrReadOnly, ErrTargetUnreachable
// (the deletion is then pending: see DeleteBackupDeferred).
func (c *Context) DeleteBackup(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_backup_delete(p, ns, n) })
	})
}

// DeleteBackupDeferred is DeleteBackup that accepts an unreachable target:
// deferred is then true and the next successful Sync finishes the deletion.
func (c *Context) DeleteBackupDeferred(namespace, name string) (deferred bool, err error) {
	var d C.int
	err = c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_backup_delete_ex(p, ns, n, &d) })
	})
	return d == 1, err
}

// ForgetBackup drops a backup from this context's catalog only.
func (c *Context) ForgetBackup(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_backup_forget(p, ns, n) })
	})
}

// StartGC starts garbage collection of the target's chunks.
func (c *Context) StartGC(opts *OpOptions) (*Operation, error) {
	return c.startGC(0, opts)
}

func (c *Context) startGC(snapshot C.int, opts *OpOptions) (*Operation, error) {
	hk, progress := opts.hooks()
	return c.startOp(hk, func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int {
		return C.hbgo_gc(out, p, snapshot, h, progress, msg)
	})
}

// GC removes the target's chunks no backup references and returns what it
// removed (ErrBusy while a backup writes).
func (c *Context) GC(ctx context.Context, opts *OpOptions) (GCResult, error) {
	var res GCResult
	err := c.run(ctx, func() (*Operation, error) { return c.StartGC(opts) }, func(op *Operation) {
		res, _ = op.GCResult()
	})
	return res, err
}
