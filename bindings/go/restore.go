package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"context"
	"strings"
)

// DeletionPolicy says what happens to the previous volumes of a replaced VM.
type DeletionPolicy int

const (
	DeletionDefault DeletionPolicy = 0 // backups: delete; snapshots: retain
	DeletionDelete  DeletionPolicy = 1 // removed once the restore completed (backups only)
	DeletionRetain  DeletionPolicy = 2 // kept as "<old path>.retained-<UTC time>"
)

// RestoreOptions say where a backup or snapshot is restored: as a new VM
// (NewVM, Into) or over the registered, powered-off VM it was taken of
// (Replace).
type RestoreOptions struct {
	// The VM to create, "namespace/name" (or "name": the source's
	// namespace). Its volumes are written to Into/VOLNAME.raw.
	NewVM string
	// The VM to replace, "namespace/name", instead of NewVM.
	Replace string
	// Directory of the volume files (required for NewVM unless TargetVM
	// writes every volume).
	Into string
	// New VM: keep the metadata's MAC addresses.
	KeepMAC bool
	// Replace: what becomes of the previous volumes.
	DeletionPolicy DeletionPolicy
	// New VM: volumes (by name) written through the io.WriterAt of
	// VM.AddDiskIO instead of files.
	TargetVM *VM
	Progress ProgressFunc
	// Rewrites the VM's metadata document for the restored VM (nil: the
	// library's default rewrite). The *MetadataRewrite is valid only during
	// the call. An error fails the restore (nothing written).
	MetadataRewrite func(*MetadataRewrite) error
}

// StartRestore starts restoring backup namespace/name.
func (c *Context) StartRestore(namespace, name string, opts RestoreOptions) (*Operation, error) {
	return c.startRestore(0, namespace, name, opts)
}

// Restore restores backup namespace/name as opts says and waits (ctx
// cancels; a cancelled or failed restore leaves no volume file behind).
func (c *Context) Restore(ctx context.Context, namespace, name string, opts RestoreOptions) error {
	return c.run(ctx, func() (*Operation, error) { return c.StartRestore(namespace, name, opts) }, nil)
}

// StartRestoreSnapshot starts restoring snapshot namespace/name (into its
// own namespace only: ErrCrossNamespace).
func (c *Context) StartRestoreSnapshot(namespace, name string, opts RestoreOptions) (*Operation, error) {
	return c.startRestore(1, namespace, name, opts)
}

// RestoreSnapshot restores snapshot namespace/name and waits.
func (c *Context) RestoreSnapshot(ctx context.Context, namespace, name string, opts RestoreOptions) error {
	return c.run(ctx, func() (*Operation, error) { return c.StartRestoreSnapshot(namespace, name, opts) }, nil)
}

func splitVM(ref, defNS string) (string, string) {
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return defNS, ref
}

func (c *Context) startRestore(snapshot C.int, namespace, name string, opts RestoreOptions) (*Operation, error) {
	var flags C.uint
	vmRef := opts.NewVM
	if opts.Replace != "" {
		if opts.NewVM != "" {
			return nil, newError(CodeInvalid, "RestoreOptions: NewVM and Replace are exclusive", nil)
		}
		vmRef = opts.Replace
		flags |= C.HARVBK_RESTORE_REPLACE
	}
	if opts.KeepMAC {
		flags |= C.HARVBK_RESTORE_KEEP_MAC
	}
	newNS, newName := splitVM(vmRef, namespace)
	var cs cstrings
	defer cs.free()
	strs := make([]*C.char, 0, 5)
	for i, s := range []string{namespace, name, newNS, newName, opts.Into} {
		var p *C.char
		var err error
		if i < 2 {
			p, err = cs.add(s)
		} else {
			p, err = cs.addOpt(s)
		}
		if err != nil {
			return nil, err
		}
		strs = append(strs, p)
	}
	hk := &opHooks{progress: opts.Progress, rewrite: opts.MetadataRewrite}
	progress, rewrite := boolInt(opts.Progress != nil), boolInt(opts.MetadataRewrite != nil)
	return c.startOp(hk, func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int {
		start := func(tvm *C.harvbk_vm) C.int {
			return C.hbgo_restore(out, p, snapshot, strs[0], strs[1], flags, strs[2], strs[3], strs[4],
				tvm, C.int(opts.DeletionPolicy), h, progress, rewrite, msg)
		}
		if opts.TargetVM == nil {
			return start(nil)
		}
		var rc C.int
		if err := opts.TargetVM.use(hk, func(v *C.harvbk_vm) error {
			rc = start(v)
			return nil
		}); err != nil {
			return vmUseFailed(err, msg)
		}
		return rc
	})
}

// MetadataRewrite is the handle a RestoreOptions.MetadataRewrite hook gets:
// the source document and the restore it is for. Valid only during the hook.
type MetadataRewrite struct {
	p *C.harvbk_metadata_rewrite
}

// RewriteVolume is a volume of the restore a MetadataRewrite describes.
type RewriteVolume struct {
	Name  string
	Claim string // the name its references get in a new VM ("" for a replace)
	Path  string // the file it is restored to ("" for IO volumes)
}

// Input is the backup's or snapshot's metadata document.
func (m *MetadataRewrite) Input() []byte {
	if m.p == nil {
		return nil
	}
	var n C.size_t
	d := C.harvbk_metadata_rewrite_input(m.p, &n)
	if d == nil || n == 0 {
		return nil
	}
	return C.GoBytes(d, C.int(n))
}

// SourceNamespace and SourceVM name the VM the backup was taken of.
func (m *MetadataRewrite) SourceNamespace() string {
	if m.p == nil {
		return ""
	}
	return gostr(C.harvbk_metadata_rewrite_source_namespace(m.p))
}

// SourceVM is the name of the VM the backup was taken of.
func (m *MetadataRewrite) SourceVM() string {
	if m.p == nil {
		return ""
	}
	return gostr(C.harvbk_metadata_rewrite_source_vm(m.p))
}

// Namespace of the VM being created or replaced.
func (m *MetadataRewrite) Namespace() string {
	if m.p == nil {
		return ""
	}
	return gostr(C.harvbk_metadata_rewrite_namespace(m.p))
}

// VM is the name of the VM being created or replaced.
func (m *MetadataRewrite) VM() string {
	if m.p == nil {
		return ""
	}
	return gostr(C.harvbk_metadata_rewrite_vm(m.p))
}

// KeepMAC reports whether MAC addresses are to be kept.
func (m *MetadataRewrite) KeepMAC() bool {
	return m.p != nil && C.harvbk_metadata_rewrite_keep_mac(m.p) == 1
}

// Replace reports whether the restore replaces an existing VM.
func (m *MetadataRewrite) Replace() bool {
	return m.p != nil && C.harvbk_metadata_rewrite_replace(m.p) == 1
}

// Volumes of the restore.
func (m *MetadataRewrite) Volumes() []RewriteVolume {
	if m.p == nil {
		return nil
	}
	n := int(C.harvbk_metadata_rewrite_volume_count(m.p))
	out := make([]RewriteVolume, 0, n)
	for i := 0; i < n; i++ {
		j := C.size_t(i)
		out = append(out, RewriteVolume{
			Name:  gostr(C.harvbk_metadata_rewrite_volume_name(m.p, j)),
			Claim: gostr(C.harvbk_metadata_rewrite_volume_claim(m.p, j)),
			Path:  gostr(C.harvbk_metadata_rewrite_volume_path(m.p, j)),
		})
	}
	return out
}

// SetOutput sets the rewritten document (not calling it keeps the input).
func (m *MetadataRewrite) SetOutput(doc []byte) error {
	if m.p == nil {
		return closedError("MetadataRewrite")
	}
	return call(func() C.int {
		if len(doc) == 0 {
			return C.harvbk_metadata_rewrite_set_output(m.p, nil, 0)
		}
		d := C.CBytes(doc)
		defer C.free(d)
		return C.harvbk_metadata_rewrite_set_output(m.p, d, C.size_t(len(doc)))
	})
}

// Default applies the library's default rewrite (harvbk_metadata_rewrite_default).
func (m *MetadataRewrite) Default() error {
	if m.p == nil {
		return closedError("MetadataRewrite")
	}
	return call(func() C.int { return C.harvbk_metadata_rewrite_default(m.p, nil) })
}
