package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
)

// Context is one "cluster": a state directory (catalog of VMs, backups,
// snapshots, schedules, quotas) and its backup target. It is safe for use by
// several goroutines at once. Close it when done: Close cancels the
// context's running operations and waits for them.
type Context struct {
	g   guard
	ptr *C.harvbk_ctx

	mu         sync.Mutex
	hookHs     []cgo.Handle // log and image hooks: deleted by Close
	schedulers map[*Scheduler]struct{}
}

// Option configures Open.
type Option func(*openOptions)

type openOptions struct {
	log     func(LogLevel, string)
	level   LogLevel
	threads uint
}

// WithLogger delivers the library's log messages up to maxLevel to fn. fn
// may be called from any library thread, concurrently; it must not call
// SetLogger.
func WithLogger(fn func(level LogLevel, message string), maxLevel LogLevel) Option {
	return func(o *openOptions) { o.log, o.level = fn, maxLevel }
}

// WithThreads sets the worker threads per operation (0: automatic).
func WithThreads(n int) Option {
	return func(o *openOptions) {
		if n > 0 {
			o.threads = uint(n)
		}
	}
}

// Open opens (creating it when needed) the state directory stateDir and
// returns its Context. Crash recovery of an earlier process happens here.
func Open(stateDir string, opts ...Option) (*Context, error) {
	o := openOptions{level: LogInfo}
	for _, f := range opts {
		f(&o)
	}
	var cs cstrings
	defer cs.free()
	dir, err := cs.add(stateDir)
	if err != nil {
		return nil, err
	}
	c := &Context{}
	var logH cgo.Handle
	if o.log != nil {
		logH = newHandle(&logHook{fn: o.log})
	}
	var p *C.harvbk_ctx
	var msg *C.char
	rc := C.hbgo_ctx_open(&p, dir, boolInt(o.log != nil), C.uintptr_t(logH), C.int(o.level),
		C.uint(o.threads), &msg)
	if err := errFromMsg(rc, msg); err != nil {
		deleteHandle(logH)
		return nil, err
	}
	c.ptr = p
	if logH != 0 {
		c.hookHs = append(c.hookHs, logH)
	}
	// a safety net only: Close may wait for operations, so the finalizer
	// hands it to a goroutine of its own and never blocks
	runtime.SetFinalizer(c, func(c *Context) { go c.Close() })
	return c, nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Close stops the context's schedulers, cancels its running operations and
// waits for them, then frees the context. Operations stay valid (their
// result can be read) and must still be closed. Calls made on the context
// afterwards fail with an error wrapping ErrClosed. Closing twice is a no-op.
func (c *Context) Close() error {
	c.mu.Lock()
	var scheds []*Scheduler
	for s := range c.schedulers {
		scheds = append(scheds, s)
	}
	c.mu.Unlock()
	for _, s := range scheds {
		s.Stop()
	}
	if !c.g.close() {
		return nil
	}
	C.harvbk_ctx_free(c.ptr) // no library thread outlives it
	c.ptr = nil
	c.mu.Lock()
	hs := c.hookHs
	c.hookHs = nil
	c.mu.Unlock()
	for _, h := range hs {
		deleteHandle(h)
	}
	runtime.SetFinalizer(c, nil)
	return nil
}

// enter returns the C context for one call; exit must follow.
func (c *Context) enter() (*C.harvbk_ctx, error) {
	if c == nil || !c.g.enter() {
		return nil, closedError("Context")
	}
	return c.ptr, nil
}

func (c *Context) exit() {
	c.g.exit()
	runtime.KeepAlive(c)
}

// do runs f with the C context, keeping the context open meanwhile.
func (c *Context) do(f func(p *C.harvbk_ctx) error) error {
	p, err := c.enter()
	if err != nil {
		return err
	}
	defer c.exit()
	return f(p)
}

// withNames is do with two strings converted (namespace, name).
func (c *Context) withNames(a, b string, f func(p *C.harvbk_ctx, a, b *C.char) error) error {
	var cs cstrings
	defer cs.free()
	ca, err := cs.add(a)
	if err != nil {
		return err
	}
	cb, err := cs.add(b)
	if err != nil {
		return err
	}
	return c.do(func(p *C.harvbk_ctx) error { return f(p, ca, cb) })
}

func (c *Context) keepHandle(h cgo.Handle) {
	c.mu.Lock()
	c.hookHs = append(c.hookHs, h)
	c.mu.Unlock()
}

// ID is the stable identifier of the state directory (a UUID).
func (c *Context) ID() string {
	var id string
	_ = c.do(func(p *C.harvbk_ctx) error {
		id = gostr(C.harvbk_ctx_id(p))
		return nil
	})
	return id
}

// SetLogger replaces the log hook (nil disables logging).
func (c *Context) SetLogger(fn func(level LogLevel, message string), maxLevel LogLevel) error {
	return c.do(func(p *C.harvbk_ctx) error {
		var h cgo.Handle
		if fn != nil {
			h = newHandle(&logHook{fn: fn})
		}
		var msg *C.char
		rc := C.hbgo_set_log_hook(p, boolInt(fn != nil), C.uintptr_t(h), C.int(maxLevel), &msg)
		if err := errFromMsg(rc, msg); err != nil {
			deleteHandle(h)
			return err
		}
		// the previous hook may still be running on another thread: its
		// handle lives until Close
		if h != 0 {
			c.keepHandle(h)
		}
		return nil
	})
}

// OpsInProgress is the number of this context's operations running in this
// process.
func (c *Context) OpsInProgress() (int, error) {
	var n C.uint
	err := c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_ctx_ops_in_progress(p, &n) })
	})
	return int(n), err
}

// ---- maintenance ----

// RunningOperation is an operation in progress on the state directory, in
// any process (Context.Operations).
type RunningOperation struct {
	Kind    string // "backup", "restore", "delete"...
	What    string // e.g. "backup default/b1 of VM default/vm1"
	PID     int64
	Started time.Time
}

// Operations lists every operation in progress on the state directory.
func (c *Context) Operations() ([]RunningOperation, error) {
	var out []RunningOperation
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_op_list
		if err := call(func() C.int { return C.harvbk_op_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_op_list_free(l)
		n := int(C.harvbk_op_list_count(l))
		for i := 0; i < n; i++ {
			var kind, what *C.char
			var pid, started C.int64_t
			if C.harvbk_op_list_at(l, C.size_t(i), &kind, &what, &pid, &started) != 0 {
				continue
			}
			out = append(out, RunningOperation{Kind: gostr(kind), What: gostr(what),
				PID: int64(pid), Started: msTime(int64(started))})
		}
		return nil
	})
	return out, err
}

// EnterMaintenance enters maintenance mode: suspends every schedule, waits
// up to wait for running operations (ErrBusy when some still run), then
// refuses new writes in every process on the state directory.
func (c *Context) EnterMaintenance(wait time.Duration) error {
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_maintenance_enter(p, C.uint32_t(wait/time.Second)) })
	})
}

// ExitMaintenance leaves maintenance mode and resumes the schedules entering
// it suspended.
func (c *Context) ExitMaintenance() error {
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_maintenance_exit(p) })
	})
}

// MaintenanceStatus reports whether the state directory is in maintenance
// mode, and since when.
func (c *Context) MaintenanceStatus() (active bool, since time.Time, err error) {
	var a C.int
	var s C.int64_t
	err = c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_maintenance_status(p, &a, &s) })
	})
	return a == 1, msTime(int64(s)), err
}
