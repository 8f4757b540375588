package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"io"
	"runtime"
	"sync"
)

// PowerState is the power state the embedding program reports for a VM.
type PowerState int

const (
	PowerUnknown PowerState = 0
	PowerOn      PowerState = 1
	PowerOff     PowerState = 2
)

// Disk is one volume of a VM: a raw image file or block device at Path, or
// (IO true) a volume served by an io.ReaderAt / io.WriterAt.
type Disk struct {
	Name string
	Path string // "" for an IO volume
	IO   bool
	Size uint64 // IO volumes only
}

// VMInfo is a plain copy of a VM description (Context.VMs, VM.Info).
type VMInfo struct {
	Namespace  string
	Name       string
	Disks      []Disk
	Metadata   []byte
	Images     []string
	PowerState PowerState
}

type diskIO struct {
	size uint64
	r    io.ReaderAt
	w    io.WriterAt
}

// VM describes a VM: namespace/name, disks, an opaque metadata document,
// image references, a power state. It is a value the operations copy when
// they start, so it may be changed or closed right after. Safe for use by
// several goroutines. Close it when done.
type VM struct {
	mu  sync.RWMutex
	ptr *C.harvbk_vm
	io  map[string]diskIO
}

// NewVM returns a new VM description. namespace and name must be DNS-1123
// labels (NameIsValid), else the error matches ErrInvalid.
func NewVM(namespace, name string) (*VM, error) {
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
	var p *C.harvbk_vm
	if err := call(func() C.int { return C.harvbk_vm_new(&p, ns, n) }); err != nil {
		return nil, err
	}
	return wrapVM(p), nil
}

func wrapVM(p *C.harvbk_vm) *VM {
	v := &VM{ptr: p}
	runtime.SetFinalizer(v, (*VM).free) // a safety net: freeing a VM never blocks
	return v
}

func (v *VM) free() {
	if v.ptr != nil {
		C.harvbk_vm_free(v.ptr)
		v.ptr = nil
	}
}

// Close frees the VM description. Operations started with it are not
// affected. Closing twice is a no-op.
func (v *VM) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.free()
	runtime.SetFinalizer(v, nil)
	return nil
}

// modify runs f on the C VM under the write lock.
func (v *VM) modify(f func(p *C.harvbk_vm) C.int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ptr == nil {
		return closedError("VM")
	}
	return call(func() C.int { return f(v.ptr) })
}

// AddDisk adds a volume whose bytes are in the raw image file or block
// device at path. Errors: ErrInvalid (bad name), ErrExists (duplicate name).
func (v *VM) AddDisk(name, path string) error {
	var cs cstrings
	defer cs.free()
	n, err := cs.add(name)
	if err != nil {
		return err
	}
	p, err := cs.add(path)
	if err != nil {
		return err
	}
	return v.modify(func(vm *C.harvbk_vm) C.int { return C.harvbk_vm_add_volume_file(vm, n, p) })
}

// AddDiskIO adds a volume of size bytes served by Go: r is read by backups
// and snapshots, w is written by restores (either may be nil when not
// needed). Both are called from library threads, concurrently for different
// offsets (the io.ReaderAt / io.WriterAt contract allows it). An error they
// return fails the operation: with the code of an *Error it returned (e.g.
// ErrIO), else CodeCallback; the call's error wraps it. Such a VM cannot be
// registered in the catalog.
func (v *VM) AddDiskIO(name string, size uint64, r io.ReaderAt, w io.WriterAt) error {
	var cs cstrings
	defer cs.free()
	n, err := cs.add(name)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ptr == nil {
		return closedError("VM")
	}
	// the description itself gets payload 0 (no callback can run with it):
	// every operation copies the VM with payloads of its own (copyFor)
	rd, wr := C.int(0), C.int(0)
	if r != nil {
		rd = 1
	}
	if w != nil {
		wr = 1
	}
	var msg *C.char
	rc := C.hbgo_vm_add_volume_io(v.ptr, n, C.uint64_t(size), rd, wr, 0, &msg)
	if err := errFromMsg(rc, msg); err != nil {
		return err
	}
	if v.io == nil {
		v.io = map[string]diskIO{}
	}
	v.io[name] = diskIO{size: size, r: r, w: w}
	return nil
}

// SetMetadata sets the opaque metadata document (e.g. the VM spec JSON),
// stored with backups and snapshots.
func (v *VM) SetMetadata(doc []byte) error {
	return v.modify(func(vm *C.harvbk_vm) C.int {
		if len(doc) == 0 {
			return C.harvbk_vm_set_metadata(vm, nil, 0)
		}
		p := C.CBytes(doc)
		defer C.free(p)
		return C.harvbk_vm_set_metadata(vm, p, C.size_t(len(doc)))
	})
}

// AddImage adds an image reference: "NS/NAME" or "NAME" names an image of
// the context's registry, any other string is kept as it is.
func (v *VM) AddImage(ref string) error {
	var cs cstrings
	defer cs.free()
	r, err := cs.add(ref)
	if err != nil {
		return err
	}
	return v.modify(func(vm *C.harvbk_vm) C.int { return C.harvbk_vm_add_image(vm, r) })
}

// SetPowerState records the power state the embedding program observes.
func (v *VM) SetPowerState(s PowerState) error {
	return v.modify(func(vm *C.harvbk_vm) C.int {
		return C.harvbk_vm_set_power_state(vm, C.harvbk_power_state(s))
	})
}

// Namespace of the VM ("" once closed).
func (v *VM) Namespace() string { return v.Info().Namespace }

// Name of the VM ("" once closed).
func (v *VM) Name() string { return v.Info().Name }

// Info returns a copy of the description.
func (v *VM) Info() VMInfo {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ptr == nil {
		return VMInfo{}
	}
	return vmInfoFromC(v.ptr, v.io)
}

func vmInfoFromC(p *C.harvbk_vm, ios map[string]diskIO) VMInfo {
	info := VMInfo{
		Namespace:  gostr(C.harvbk_vm_namespace(p)),
		Name:       gostr(C.harvbk_vm_name(p)),
		PowerState: PowerState(C.harvbk_vm_power_state(p)),
	}
	n := int(C.harvbk_vm_volume_count(p))
	for i := 0; i < n; i++ {
		d := Disk{Name: gostr(C.harvbk_vm_volume_name(p, C.size_t(i)))}
		if path := C.harvbk_vm_volume_path(p, C.size_t(i)); path != nil {
			d.Path = C.GoString(path)
		} else {
			d.IO = true
			d.Size = ios[d.Name].size
		}
		info.Disks = append(info.Disks, d)
	}
	var mlen C.size_t
	if m := C.harvbk_vm_metadata(p, &mlen); m != nil && mlen > 0 {
		info.Metadata = C.GoBytes(m, C.int(mlen))
	}
	ni := int(C.harvbk_vm_image_count(p))
	for i := 0; i < ni; i++ {
		info.Images = append(info.Images, gostr(C.harvbk_vm_image(p, C.size_t(i))))
	}
	return info
}

// use gives f the C description for one call that copies it (backup,
// snapshot, register, restore's target VM). A VM with IO volumes is copied
// first with payloads of hk, so that the callbacks report to that call.
func (v *VM) use(hk *opHooks, f func(p *C.harvbk_vm) error) error {
	if v == nil {
		return newError(CodeInvalid, "no VM given", nil)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ptr == nil {
		return closedError("VM")
	}
	if len(v.io) == 0 || hk == nil {
		err := f(v.ptr)
		runtime.KeepAlive(v)
		return err
	}
	cp, err := v.copyLocked(hk)
	if err != nil {
		return err
	}
	defer C.harvbk_vm_free(cp)
	return f(cp)
}

// copyFor returns a new C copy of the VM (the caller owns it) whose IO
// volumes call back with payloads owned by hk.
func (v *VM) copyFor(hk *opHooks) (*C.harvbk_vm, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ptr == nil {
		return nil, closedError("VM")
	}
	return v.copyLocked(hk)
}

func (v *VM) copyLocked(hk *opHooks) (*C.harvbk_vm, error) {
	src := v.ptr
	var cp *C.harvbk_vm
	if err := call(func() C.int {
		return C.harvbk_vm_new(&cp, C.harvbk_vm_namespace(src), C.harvbk_vm_name(src))
	}); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			C.harvbk_vm_free(cp)
		}
	}()
	n := int(C.harvbk_vm_volume_count(src))
	for i := 0; i < n; i++ {
		name := C.harvbk_vm_volume_name(src, C.size_t(i))
		if path := C.harvbk_vm_volume_path(src, C.size_t(i)); path != nil {
			if err := call(func() C.int { return C.harvbk_vm_add_volume_file(cp, name, path) }); err != nil {
				return nil, err
			}
			continue
		}
		gname := C.GoString(name)
		d := v.io[gname]
		h := hk.addHandle(&volPayload{hooks: hk, name: gname, r: d.r, w: d.w})
		rd, wr := C.int(0), C.int(0)
		if d.r != nil {
			rd = 1
		}
		if d.w != nil {
			wr = 1
		}
		var msg *C.char
		rc := C.hbgo_vm_add_volume_io(cp, name, C.uint64_t(d.size), rd, wr, h, &msg)
		if err := errFromMsg(rc, msg); err != nil {
			return nil, err
		}
	}
	var mlen C.size_t
	if m := C.harvbk_vm_metadata(src, &mlen); m != nil && mlen > 0 {
		if err := call(func() C.int { return C.harvbk_vm_set_metadata(cp, m, mlen) }); err != nil {
			return nil, err
		}
	}
	ni := int(C.harvbk_vm_image_count(src))
	for i := 0; i < ni; i++ {
		img := C.harvbk_vm_image(src, C.size_t(i))
		if err := call(func() C.int { return C.harvbk_vm_add_image(cp, img) }); err != nil {
			return nil, err
		}
	}
	if err := call(func() C.int {
		return C.harvbk_vm_set_power_state(cp, C.harvbk_vm_power_state(src))
	}); err != nil {
		return nil, err
	}
	ok = true
	return cp, nil
}

// ---- the context's VM catalog ----

// RegisterVM saves vm in the context's catalog, replacing an entry of the
// same namespace/name. Disk paths must be absolute; IO volumes cannot be
// registered (ErrInvalid).
func (c *Context) RegisterVM(vm *VM) error {
	return c.do(func(p *C.harvbk_ctx) error {
		return vm.use(nil, func(v *C.harvbk_vm) error {
			return call(func() C.int { return C.harvbk_vm_register(p, v) })
		})
	})
}

// LookupVM loads registered VM namespace/name (ErrNotFound when absent). The
// caller closes it.
func (c *Context) LookupVM(namespace, name string) (*VM, error) {
	var out *VM
	err := c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		var v *C.harvbk_vm
		if err := call(func() C.int { return C.harvbk_vm_lookup(&v, p, ns, n) }); err != nil {
			return err
		}
		out = wrapVM(v)
		return nil
	})
	return out, err
}

// UnregisterVM removes a VM from the catalog (its volumes are not touched).
func (c *Context) UnregisterVM(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_vm_unregister(p, ns, n) })
	})
}

// SetRegisteredPowerState updates the recorded power state of a registered
// VM (a replace-restore needs PowerOff).
func (c *Context) SetRegisteredPowerState(namespace, name string, s PowerState) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int {
			return C.harvbk_vm_set_registered_power_state(p, ns, n, C.harvbk_power_state(s))
		})
	})
}

// VMs lists the registered VMs, sorted by namespace then name.
func (c *Context) VMs() ([]VMInfo, error) {
	var out []VMInfo
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_vm_list
		if err := call(func() C.int { return C.harvbk_vm_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_vm_list_free(l)
		n := int(C.harvbk_vm_list_count(l))
		out = make([]VMInfo, 0, n)
		for i := 0; i < n; i++ {
			out = append(out, vmInfoFromC(C.harvbk_vm_list_at(l, C.size_t(i)), nil))
		}
		return nil
	})
	return out, err
}
