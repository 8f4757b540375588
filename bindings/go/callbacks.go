package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/cgo"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Callbacks reach Go through runtime/cgo.Handle: the library gets the
// handle's integer as its `payload` and the trampolines of helpers.c pass it
// back to the exported functions below, which look the Go value up. No Go
// pointer is ever stored in C memory. Each handle is deleted once the library
// can no longer call with it (the operation was freed, the context closed).

// ProgressFunc receives the bytes done and the total of an operation. It is
// called from a library thread, never concurrently for one operation, at most
// about every 100 ms and once at the end. Returning an error (or panicking)
// stops the operation: the call then fails with an *Error of code
// CodeCallback wrapping that error.
type ProgressFunc func(done, total uint64) error

// FreezeFunc freezes (or thaws) the filesystems of VM namespace/vm, e.g. via
// a guest agent. Called on the operation's thread, once per operation.
type FreezeFunc func(namespace, vm string) error

// CaptureFunc makes a point-in-time copy of volume `volume` of VM
// namespace/vm while the VM is frozen (an LVM, Ceph RBD or Longhorn
// snapshot...) and returns the path of a regular file or block device
// holding the volume's bytes: at least the volume's size, of which the
// first size bytes are read after the thaw. path is the volume's file as
// given to VM.AddDisk, "" for a volume of VM.AddDiskIO. Returning "" (and
// nil) declines: the volume is then read as it is, before the thaw. Called
// on the operation's thread, one volume at a time, for each volume a reflink
// did not capture (see BackupOptions). An error (or a panic), a path longer
// than the library takes (HARVBK_CAPTURE_PATH_MAX - 1 bytes) or holding a
// NUL byte fails the operation: ErrCallback wrapping it.
type CaptureFunc func(namespace, vm, volume, path string) (capturedPath string, err error)

// ReleaseFunc removes a capture once it is no longer needed: called exactly
// once per capture a CaptureFunc made (returned a path), with that path,
// whatever happens (right after the volume was read, or after the thaw when
// the operation failed or was cancelled first), before the operation ends.
// An error (or a panic) fails the operation with ErrCallback wrapping it,
// unless it failed already (its first error stays; the library logs this
// one).
type ReleaseFunc func(namespace, vm, volume, capturedPath string) error

// LogLevel is the level of a library log message.
type LogLevel int

const (
	LogError LogLevel = 0
	LogWarn  LogLevel = 1
	LogInfo  LogLevel = 2
	LogDebug LogLevel = 3
)

var liveHandles atomic.Int64

func newHandle(v interface{}) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

func deleteHandle(h cgo.Handle) {
	if h != 0 {
		h.Delete()
		liveHandles.Add(-1)
	}
}

// handleValue is h.Value(), nil for 0 or a handle already deleted.
func handleValue(h C.uintptr_t) (v interface{}) {
	if h == 0 {
		return nil
	}
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	return cgo.Handle(h).Value()
}

// opHooks holds the Go callbacks of one call or operation and the first
// error one of them reported.
type opHooks struct {
	progress       ProgressFunc
	freeze         FreezeFunc
	thaw           FreezeFunc
	capture        CaptureFunc
	captureRelease ReleaseFunc
	rewrite        func(*MetadataRewrite) error
	resolve        func(namespace, name string) (*VM, error)

	self       cgo.Handle
	mu         sync.Mutex
	err        error        // first error of a callback whose failure fails the operation
	stopped    bool         // a progress callback failed: the library saw a cancel
	releaseErr error        // first error of a release hook (may come after another failure)
	handles    []cgo.Handle // volume payloads made for this operation
}

// cbs describes the hooks for the C wrappers (helpers.h) with the freeze
// deadline deadlineMS; resolve says whether the VM resolver is set.
func (hk *opHooks) cbs(deadlineMS C.uint32_t) C.hbgo_cbs {
	return C.hbgo_cbs{
		h:                  hk.handle(),
		progress:           boolInt(hk.progress != nil),
		freeze:             boolInt(hk.freeze != nil),
		thaw:               boolInt(hk.thaw != nil),
		capture:            boolInt(hk.capture != nil),
		release:            boolInt(hk.captureRelease != nil),
		resolve:            boolInt(hk.resolve != nil),
		freeze_deadline_ms: deadlineMS,
	}
}

// freezeDeadlineMS converts a FreezeDeadline to the library's milliseconds
// (rounded up: a positive duration never becomes "no deadline").
func freezeDeadlineMS(d time.Duration) (C.uint32_t, error) {
	if d < 0 {
		return 0, newError(CodeInvalid, fmt.Sprintf("negative freeze deadline %v", d), nil)
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return 0, newError(CodeInvalid, fmt.Sprintf("freeze deadline %v is over %d ms", d, uint32(math.MaxUint32)), nil)
	}
	return C.uint32_t(ms), nil
}

func (hk *opHooks) handle() C.uintptr_t {
	if hk.self == 0 {
		hk.self = newHandle(hk)
	}
	return C.uintptr_t(hk.self)
}

func (hk *opHooks) fail(err error) {
	hk.mu.Lock()
	if hk.err == nil {
		hk.err = err
	}
	hk.mu.Unlock()
}

func (hk *opHooks) firstErr() error {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	return hk.err
}

// errs returns the first callback error, whether a progress callback
// stopped the operation, and the first release hook error.
func (hk *opHooks) errs() (err error, stopped bool, releaseErr error) {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	return hk.err, hk.stopped, hk.releaseErr
}

func (hk *opHooks) stop() {
	hk.mu.Lock()
	hk.stopped = true
	hk.mu.Unlock()
}

func (hk *opHooks) addHandle(v interface{}) C.uintptr_t {
	h := newHandle(v)
	hk.mu.Lock()
	hk.handles = append(hk.handles, h)
	hk.mu.Unlock()
	return C.uintptr_t(h)
}

// release deletes the handles; call it once the library can no longer call
// any of these callbacks.
func (hk *opHooks) release() {
	hk.mu.Lock()
	hs := hk.handles
	hk.handles = nil
	self := hk.self
	hk.self = 0
	hk.mu.Unlock()
	for _, h := range hs {
		deleteHandle(h)
	}
	deleteHandle(self)
}

// recovered turns a panic of a callback into the hooks' error and the C
// return value rcOnPanic.
func (hk *opHooks) recovered(r interface{}, rc *C.int, rcOnPanic C.int) {
	if r == nil {
		return
	}
	if hk != nil {
		hk.fail(&PanicError{Value: r, Stack: debug.Stack()})
	}
	*rc = rcOnPanic
}

func hooksOf(h C.uintptr_t) *opHooks {
	hk, _ := handleValue(h).(*opHooks)
	return hk
}

// callbackCode is what a failing Go callback returns to the library: the
// code of an *Error it returned (kept by the library as the result), else
// HARVBK_E_CALLBACK.
func callbackCode(err error) C.int {
	var e *Error
	if errors.As(err, &e) && e.Code < CodeUnspecified {
		return C.int(e.Code)
	}
	return C.int(CodeCallback)
}

//export hbgoProgress
func hbgoProgress(done, total C.uint64_t, h C.uintptr_t) (rc C.int) {
	hk := hooksOf(h)
	if hk == nil || hk.progress == nil {
		return 0
	}
	defer func() {
		hk.recovered(recover(), &rc, 1)
		if rc != 0 {
			hk.stop()
		}
	}()
	if err := hk.progress(uint64(done), uint64(total)); err != nil {
		hk.fail(err)
		return 1
	}
	return 0
}

//export hbgoFreeze
func hbgoFreeze(ns, vm *C.char, h C.uintptr_t, thaw C.int) (rc C.int) {
	hk := hooksOf(h)
	if hk == nil {
		return -1
	}
	fn := hk.freeze
	if thaw != 0 {
		fn = hk.thaw
	}
	if fn == nil {
		return -1
	}
	if thaw != 0 {
		// a failing thaw does not fail the operation (the data was read
		// while frozen): the entry is marked ThawFailed instead
		defer func() {
			if recover() != nil {
				rc = -1
			}
		}()
		if fn(C.GoString(ns), C.GoString(vm)) != nil {
			return -1
		}
		return 0
	}
	defer func() { hk.recovered(recover(), &rc, -1) }()
	if err := fn(C.GoString(ns), C.GoString(vm)); err != nil {
		hk.fail(err)
		return -1
	}
	return 0
}

//export hbgoCapture
func hbgoCapture(ns, vm, volume, path *C.char, out *C.char, outSize C.size_t, h C.uintptr_t) (rc C.int) {
	hk := hooksOf(h)
	if hk == nil || hk.capture == nil || out == nil || outSize == 0 {
		return -1
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(out)), int(outSize))
	buf[0] = 0 // declined unless the hook gives a path
	defer func() { hk.recovered(recover(), &rc, -1) }()
	vol := C.GoString(volume)
	p, err := hk.capture(C.GoString(ns), C.GoString(vm), vol, gostr(path))
	if err == nil && strings.IndexByte(p, 0) >= 0 {
		err = fmt.Errorf("capture of volume %s: path %q contains a NUL byte", vol, p)
	}
	if err == nil && len(p) >= len(buf) {
		err = fmt.Errorf("capture of volume %s: path of %d bytes is longer than %d", vol, len(p), len(buf)-1)
	}
	if err != nil {
		hk.fail(err)
		return -1
	}
	copy(buf, p)
	buf[len(p)] = 0
	return 0
}

//export hbgoRelease
func hbgoRelease(ns, vm, volume, captured *C.char, h C.uintptr_t) (rc C.int) {
	hk := hooksOf(h)
	if hk == nil || hk.captureRelease == nil {
		return -1
	}
	fail := func(err error) {
		hk.mu.Lock()
		if hk.releaseErr == nil {
			hk.releaseErr = err
		}
		hk.mu.Unlock()
	}
	defer func() {
		if r := recover(); r != nil {
			fail(&PanicError{Value: r, Stack: debug.Stack()})
			rc = -1
		}
	}()
	if err := hk.captureRelease(C.GoString(ns), C.GoString(vm), C.GoString(volume), C.GoString(captured)); err != nil {
		fail(err)
		return -1
	}
	return 0
}

// volPayload is the payload of one callback volume of one operation.
type volPayload struct {
	hooks *opHooks
	name  string
	r     io.ReaderAt
	w     io.WriterAt
}

func volOf(h C.uintptr_t) *volPayload {
	vp, _ := handleValue(h).(*volPayload)
	return vp
}

//export hbgoVolRead
func hbgoVolRead(buf unsafe.Pointer, n C.size_t, off C.uint64_t, h C.uintptr_t) (rc C.int) {
	vp := volOf(h)
	if vp == nil || vp.r == nil {
		return C.int(CodeCallback)
	}
	defer func() { vp.hooks.recovered(recover(), &rc, C.int(CodeCallback)) }()
	p := unsafe.Slice((*byte)(buf), int(n))
	got, err := vp.r.ReadAt(p, int64(off))
	if got == len(p) {
		return 0 // io.ReaderAt may say io.EOF with a full read at the end
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	err = fmt.Errorf("volume %s: read %d bytes at %d: %w", vp.name, len(p), uint64(off), err)
	vp.hooks.fail(err)
	return callbackCode(err)
}

//export hbgoVolWrite
func hbgoVolWrite(buf unsafe.Pointer, n C.size_t, off C.uint64_t, h C.uintptr_t) (rc C.int) {
	vp := volOf(h)
	if vp == nil || vp.w == nil {
		return C.int(CodeCallback)
	}
	defer func() { vp.hooks.recovered(recover(), &rc, C.int(CodeCallback)) }()
	p := unsafe.Slice((*byte)(buf), int(n))
	put, err := vp.w.WriteAt(p, int64(off))
	if err == nil && put == len(p) {
		return 0
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	err = fmt.Errorf("volume %s: write %d bytes at %d: %w", vp.name, len(p), uint64(off), err)
	vp.hooks.fail(err)
	return callbackCode(err)
}

//export hbgoRewrite
func hbgoRewrite(rw unsafe.Pointer, h C.uintptr_t) (rc C.int) {
	hk := hooksOf(h)
	if hk == nil || hk.rewrite == nil {
		return C.int(CodeCallback)
	}
	m := &MetadataRewrite{p: (*C.harvbk_metadata_rewrite)(rw)}
	defer func() { m.p = nil }() // valid only during the call
	defer func() { hk.recovered(recover(), &rc, C.int(CodeCallback)) }()
	if err := hk.rewrite(m); err != nil {
		hk.fail(err)
		return callbackCode(err)
	}
	return 0
}

// imageHook is what a context's image hook handle holds.
type imageHook struct{ fn func(Image) error }

//export hbgoImageHook
func hbgoImageHook(img unsafe.Pointer, h C.uintptr_t, callToken C.uintptr_t) (rc C.int) {
	ih, _ := handleValue(h).(*imageHook)
	if ih == nil || ih.fn == nil {
		return -1
	}
	hk := hooksOf(callToken) // the restore call this runs inside of
	defer func() { hk.recovered(recover(), &rc, -1) }()
	if err := ih.fn(imageFromC((*C.harvbk_image)(img))); err != nil {
		if hk != nil {
			hk.fail(err)
		}
		return -1
	}
	return 0
}

// logHook is what a context's log hook handle holds.
type logHook struct{ fn func(LogLevel, string) }

//export hbgoLog
func hbgoLog(level C.int, msg *C.char, h C.uintptr_t) {
	lh, _ := handleValue(h).(*logHook)
	if lh == nil || lh.fn == nil {
		return
	}
	defer func() { _ = recover() }() // a log hook cannot fail anything
	lh.fn(LogLevel(level), C.GoString(msg))
}

//export hbgoResolve
func hbgoResolve(out unsafe.Pointer, ns, name *C.char, h C.uintptr_t) (rc C.int) {
	hk := hooksOf(h)
	if hk == nil || hk.resolve == nil {
		return C.int(CodeCallback)
	}
	defer func() { hk.recovered(recover(), &rc, C.int(CodeCallback)) }()
	vm, err := hk.resolve(C.GoString(ns), C.GoString(name))
	if err == nil && vm == nil {
		err = fmt.Errorf("VM resolver returned no VM for %s/%s", C.GoString(ns), C.GoString(name))
	}
	if err != nil {
		hk.fail(err)
		return callbackCode(err)
	}
	defer vm.Close()
	cvm, err := vm.copyFor(hk)
	if err != nil {
		hk.fail(err)
		return callbackCode(err)
	}
	*(**C.harvbk_vm)(out) = cvm // the library frees it
	return 0
}
