package harvbk

/*
#cgo pkg-config: harvbk
#include "helpers.h"
*/
import "C"

import (
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Version is the version of the loaded libharvbk, e.g. "1.0.0".
func Version() string { return C.GoString(C.harvbk_version()) }

// VersionNumber is MAJOR*10000 + MINOR*100 + PATCH of the loaded libharvbk.
func VersionNumber() int { return int(C.harvbk_version_number()) }

// NameIsValid reports whether name is a DNS-1123 label (1-63 characters of
// [a-z0-9-], starting and ending with a letter or digit), the rule for
// namespaces, VM, volume, backup and snapshot names.
func NameIsValid(name string) bool {
	if strings.IndexByte(name, 0) >= 0 {
		return false
	}
	s := C.CString(name)
	defer C.free(unsafe.Pointer(s))
	return C.harvbk_name_is_valid(s) == 1
}

// codeMessage is the library's static message of a code.
func codeMessage(rc C.int) string { return C.GoString(C.harvbk_strerror(rc)) }

// errFromMsg turns rc and a message the C helpers malloc'd (may be NULL)
// into an *Error, freeing the message.
func errFromMsg(rc C.int, msg *C.char) error {
	if rc == 0 {
		if msg != nil {
			C.free(unsafe.Pointer(msg))
		}
		return nil
	}
	m := ""
	if msg != nil {
		m = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	if m == "" {
		m = codeMessage(rc)
	}
	return newError(Code(rc), m, nil)
}

// call makes one library call and, when it fails, reads the calling thread's
// last error on the same OS thread: the goroutine is locked to its thread
// for the call and the read.
func call(f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := f()
	if rc == 0 {
		return nil
	}
	var msg *C.char
	C.hbgo_last_error(rc, &msg)
	return errFromMsg(rc, msg)
}

// cstrings converts Go strings to C strings for one call; free releases
// them. A string holding a NUL byte cannot be passed to C: error.
type cstrings []*C.char

func (cs *cstrings) add(s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, newError(CodeInvalid, "string contains a NUL byte: "+strings.ReplaceAll(s, "\x00", `\0`), nil)
	}
	p := C.CString(s)
	*cs = append(*cs, p)
	return p, nil
}

// addOpt is add, but "" gives NULL.
func (cs *cstrings) addOpt(s string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return cs.add(s)
}

func (cs *cstrings) free() {
	for _, p := range *cs {
		C.free(unsafe.Pointer(p))
	}
	*cs = nil
}

// gostr is C.GoString that maps NULL to "".
func gostr(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// msTime converts milliseconds since the epoch (0 or negative: none) to a
// time.Time (the zero Time for none).
func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// guard counts the calls in flight on a C handle so that the handle is
// freed only once none is inside the library (the library's rule for
// harvbk_ctx_free and harvbk_op_free). enter fails once close began; a call
// made from a callback while the handle closes therefore fails instead of
// deadlocking.
type guard struct {
	mu     sync.Mutex
	cond   sync.Cond
	busy   int
	closed bool
}

func (g *guard) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.busy++
	return true
}

func (g *guard) exit() {
	g.mu.Lock()
	g.busy--
	if g.busy == 0 && g.closed && g.cond.L != nil {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// close marks the guard closed and waits until no call is in flight.
// Returns false when it was closed already.
func (g *guard) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	for g.busy > 0 {
		g.cond.Wait()
	}
	return true
}

func (g *guard) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
