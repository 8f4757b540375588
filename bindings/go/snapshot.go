package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"context"
	"time"
	"unsafe"
)

// SnapshotOptions are the optional settings of a snapshot (nil: defaults).
type SnapshotOptions struct {
	Progress             ProgressFunc
	Freeze, Thaw         FreezeFunc // as in BackupOptions
	AllowCrashConsistent bool
	// The freeze window, as in BackupOptions.
	Capture        CaptureFunc
	Release        ReleaseFunc
	FreezeDeadline time.Duration
	NoReflink      bool
}

// SnapshotStoreOptions configure the context's local snapshot store.
type SnapshotStoreOptions struct {
	Dir       string // absolute; "": <state dir>/snapshot-store
	ChunkSize uint32 // when the store is created; 0: 4 MiB
	Codec     string // "": zstd
	// Encryption at rest (harvbk/key.h): an encrypted store (implied by any
	// key; a plaintext store is never encrypted in place: ErrState), its key
	// file or passphrase file (absolute paths, mode 0600: recorded, read at
	// every use), or Key, for this session only (SetSnapshotStoreKey, which
	// every process then calls).
	Encrypt        bool
	KeyFile        string
	PassphraseFile string
	Key            *Key
}

// SetSnapshotStore configures the snapshot store (nil: the defaults).
// Errors: ErrInvalid, ErrBusy (snapshot operations run), ErrState (another
// directory while the current store holds snapshots; encryption asked for a
// plaintext store), ErrPermission (a key file group or others may access),
// ErrKey (an encrypted store there that the key file does not open), ErrIO.
func (c *Context) SetSnapshotStore(opts *SnapshotStoreOptions) error {
	var cs cstrings
	defer cs.free()
	o := SnapshotStoreOptions{}
	if opts != nil {
		o = *opts
	}
	dir, err := cs.addOpt(o.Dir)
	if err != nil {
		return err
	}
	codec, err := cs.addOpt(o.Codec)
	if err != nil {
		return err
	}
	kf, err := cs.addOpt(o.KeyFile)
	if err != nil {
		return err
	}
	pf, err := cs.addOpt(o.PassphraseFile)
	if err != nil {
		return err
	}
	var flags C.uint
	if o.Encrypt || o.Key != nil {
		flags |= C.HARVBK_SNAPSHOT_STORE_ENCRYPT
	}
	if o.Key != nil { // a closed key fails before anything is set
		if err := withKey(o.Key, func(*C.harvbk_key) error { return nil }); err != nil {
			return err
		}
	}
	if err := c.do(func(p *C.harvbk_ctx) error {
		var msg *C.char
		rc := C.hbgo_snapshot_store_set(p, boolInt(opts == nil), dir, C.uint32_t(o.ChunkSize), codec,
			flags, kf, pf, &msg)
		return errFromMsg(rc, msg)
	}); err != nil {
		return err
	}
	if o.Key != nil {
		return c.SetSnapshotStoreKey(o.Key)
	}
	return nil
}

// SnapshotStoreDir is the absolute directory of the snapshot store.
func (c *Context) SnapshotStoreDir() (string, error) {
	var out string
	err := c.do(func(p *C.harvbk_ctx) error {
		var n C.size_t
		if err := call(func() C.int { return C.harvbk_snapshot_store_dir(p, nil, 0, &n) }); err != nil {
			return err
		}
		buf := make([]byte, int(n)+1)
		if err := call(func() C.int {
			return C.harvbk_snapshot_store_dir(p, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), nil)
		}); err != nil {
			return err
		}
		out = string(buf[:n])
		return nil
	})
	return out, err
}

// StartSnapshot starts a snapshot named name of vm into the snapshot store.
// Errors at once: ErrExists, ErrQuotaExceeded (already at or over a
// limit)...; while it runs: ErrQuotaExceeded (it would go over), ErrFreeze...
func (c *Context) StartSnapshot(vm *VM, name string, opts *SnapshotOptions) (*Operation, error) {
	if opts == nil {
		opts = &SnapshotOptions{}
	}
	hk := &opHooks{progress: opts.Progress, freeze: opts.Freeze, thaw: opts.Thaw,
		capture: opts.Capture, captureRelease: opts.Release}
	var flags C.uint
	if opts.AllowCrashConsistent {
		flags |= C.HARVBK_SNAPSHOT_ALLOW_CRASH_CONSISTENT
	}
	if opts.NoReflink {
		flags |= C.HARVBK_SNAPSHOT_NO_REFLINK
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
	return c.startOp(hk, func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int {
		var rc C.int
		cb := hk.cbs(deadline)
		err := vm.use(hk, func(v *C.harvbk_vm) error {
			rc = C.hbgo_snapshot_create(out, p, v, cname, flags, &cb, msg)
			return nil
		})
		if err != nil {
			return vmUseFailed(err, msg)
		}
		return rc
	})
}

// Snapshot takes a snapshot named name of vm and waits until it is Ready
// (ctx cancels it).
func (c *Context) Snapshot(ctx context.Context, vm *VM, name string, opts *SnapshotOptions) error {
	return c.run(ctx, func() (*Operation, error) { return c.StartSnapshot(vm, name, opts) }, nil)
}

// SnapshotInfo describes snapshot namespace/name (ErrNotFound when absent).
func (c *Context) SnapshotInfo(namespace, name string) (*BackupInfo, error) {
	var out *BackupInfo
	err := c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		var i *C.harvbk_backup_info
		if err := call(func() C.int { return C.harvbk_snapshot_get(&i, p, ns, n) }); err != nil {
			return err
		}
		defer C.harvbk_backup_info_free(i)
		b := infoFromC(i)
		out = &b
		return nil
	})
	return out, err
}

// Snapshots lists every snapshot of the store, sorted by namespace then name.
func (c *Context) Snapshots() ([]BackupInfo, error) {
	var out []BackupInfo
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_backup_list
		if err := call(func() C.int { return C.harvbk_snapshot_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_backup_list_free(l)
		out = listFromC(l)
		return nil
	})
	return out, err
}

// StartVerifySnapshot starts reading and checking every chunk of a snapshot.
func (c *Context) StartVerifySnapshot(namespace, name string, opts *OpOptions) (*Operation, error) {
	return c.startVerify(1, namespace, name, opts)
}

// VerifySnapshot reads and checks every chunk of a snapshot.
func (c *Context) VerifySnapshot(ctx context.Context, namespace, name string, opts *OpOptions) error {
	return c.run(ctx, func() (*Operation, error) { return c.StartVerifySnapshot(namespace, name, opts) }, nil)
}

// DeleteSnapshot deletes a snapshot (ErrNotFound, ErrBusy).
func (c *Context) DeleteSnapshot(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_snapshot_delete(p, ns, n) })
	})
}

// StartSnapshotGC starts garbage collection of the snapshot store.
func (c *Context) StartSnapshotGC(opts *OpOptions) (*Operation, error) {
	return c.startGC(1, opts)
}

// SnapshotGC removes the snapshot store's chunks no snapshot references.
func (c *Context) SnapshotGC(ctx context.Context, opts *OpOptions) (GCResult, error) {
	var res GCResult
	err := c.run(ctx, func() (*Operation, error) { return c.StartSnapshotGC(opts) }, func(op *Operation) {
		res, _ = op.GCResult()
	})
	return res, err
}
