package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// State is the state of an operation, a backup or a snapshot.
type State string

const (
	StateInProgress State = "InProgress"
	StateReady      State = "Ready"
	StateError      State = "Error"
)

func stateName(s C.int) State { return State(C.GoString(C.harvbk_state_name(s))) }

// Operation is a running (or finished) backup, snapshot, restore, verify, gc
// or schedule pass, as returned by the Start* methods. The blocking methods
// (Context.Backup, Restore...) are Start* + Wait + Close. Its methods are
// safe for use by several goroutines. Close it when done.
type Operation struct {
	g     guard
	ptr   *C.harvbk_op
	hooks *opHooks
	ctx   *Context // keeps the context reachable while the operation is
}

func newOperation(c *Context, p *C.harvbk_op, hk *opHooks) *Operation {
	o := &Operation{ptr: p, hooks: hk, ctx: c}
	// a safety net only: freeing a running operation waits for it, so the
	// finalizer hands Close to a goroutine and never blocks
	runtime.SetFinalizer(o, func(o *Operation) { go o.Close() })
	return o
}

// startOp starts an operation through f (a C wrapper of helpers.c) with the
// hooks' handle as payload.
func (c *Context) startOp(hk *opHooks, f func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int) (*Operation, error) {
	if hk == nil {
		hk = &opHooks{}
	}
	var op *C.harvbk_op
	err := c.do(func(p *C.harvbk_ctx) error {
		var msg *C.char
		rc := f(p, hk.handle(), &op, &msg)
		return errFromMsg(rc, msg)
	})
	if err != nil {
		hk.release() // the library calls no callback of a call that failed
		if cbErr := hk.firstErr(); cbErr != nil {
			if e, ok := err.(*Error); ok {
				e.cause = cbErr
			}
		}
		return nil, err
	}
	if op == nil { // nothing to do (a schedule pass with nothing due)
		hk.release()
		return nil, nil
	}
	return newOperation(c, op, hk), nil
}

// run is the blocking form: start, wait (ctx cancels), close. A context
// already done starts nothing.
func (c *Context) run(ctx context.Context, start func() (*Operation, error), after func(*Operation)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return newError(CodeCancelled, "operation cancelled before it started", err)
	}
	op, err := start()
	if err != nil || op == nil {
		return err
	}
	defer op.Close()
	err = op.Wait(ctx)
	if after != nil {
		after(op)
	}
	return err
}

func (o *Operation) enter() bool { return o != nil && o.g.enter() }
func (o *Operation) exit()       { o.g.exit(); runtime.KeepAlive(o) }

// Kind is "backup", "snapshot", "restore", "verify", "gc" or "schedule".
func (o *Operation) Kind() string {
	if !o.enter() {
		return ""
	}
	defer o.exit()
	return gostr(C.harvbk_op_kind(o.ptr))
}

// State is the operation's state now.
func (o *Operation) State() State {
	if !o.enter() {
		return ""
	}
	defer o.exit()
	return stateName(C.harvbk_op_state(o.ptr))
}

// Progress returns the bytes done and the total so far.
func (o *Operation) Progress() (done, total uint64) {
	if !o.enter() {
		return 0, 0
	}
	defer o.exit()
	var d, t C.uint64_t
	C.harvbk_op_progress(o.ptr, &d, &t)
	return uint64(d), uint64(t)
}

// Cancel asks the operation to stop; it ends soon with ErrCancelled unless
// it already finished. It does not wait.
func (o *Operation) Cancel() {
	if !o.enter() {
		return
	}
	defer o.exit()
	C.harvbk_op_cancel(o.ptr)
}

// Wait waits until the operation ends and returns its error (nil on
// success). When ctx is done first, the operation is cancelled and waited
// for; the error then matches both ErrCancelled and ctx.Err() (unless the
// operation finished anyway). Several goroutines may wait at once.
func (o *Operation) Wait(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if !o.enter() {
		return closedError("Operation")
	}
	defer o.exit()
	var cause error
	if err := ctx.Err(); err != nil {
		cause = err
		C.harvbk_op_cancel(o.ptr)
	}
	if ctx.Done() == nil || C.harvbk_op_state(o.ptr) != C.HARVBK_STATE_INPROGRESS {
		C.harvbk_op_wait(o.ptr)
	} else {
		done := make(chan struct{})
		go func() {
			C.harvbk_op_wait(o.ptr) // the guard is held until done is closed
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			cause = ctx.Err()
			C.harvbk_op_cancel(o.ptr)
			<-done
		}
	}
	return o.resultErr(cause)
}

// Err returns the outcome of an ended operation (nil while it runs or when
// it succeeded).
func (o *Operation) Err() error {
	if !o.enter() {
		return closedError("Operation")
	}
	defer o.exit()
	return o.resultErr(nil)
}

func (o *Operation) resultErr(cause error) error {
	rc := C.harvbk_op_result(o.ptr)
	if rc == 0 {
		return nil
	}
	n := C.harvbk_op_errmsg_copy(o.ptr, nil, 0)
	msg := ""
	if n > 0 {
		buf := make([]byte, int(n)+1)
		C.harvbk_op_errmsg_copy(o.ptr, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		msg = string(buf[:n])
	}
	if msg == "" {
		msg = codeMessage(rc)
	}
	code := Code(rc)
	cbErr, stopped, releaseErr := o.hooks.errs()
	switch {
	case code == CodeCancelled && stopped:
		// a progress callback stopped it: the library sees a cancel
		return newError(CodeCallback, msg, cbErr)
	case code == CodeCancelled:
		return newError(code, msg, cause) // ctx.Err(), or nil: Cancel
	case cbErr != nil:
		return newError(code, msg, cbErr)
	case code == CodeCallback && releaseErr != nil:
		// only a release hook failed (when the operation had failed before,
		// the library kept that error and only logged the release's)
		return newError(code, msg, releaseErr)
	}
	return newError(code, msg, nil)
}

// Close cancels the operation when it still runs, waits for it and frees
// it. Closing twice is a no-op.
func (o *Operation) Close() error {
	if o == nil {
		return nil
	}
	if o.enter() {
		C.harvbk_op_cancel(o.ptr)
		o.exit()
	}
	if !o.g.close() {
		return nil
	}
	C.harvbk_op_free(o.ptr) // joins the operation's thread: no callback after
	o.ptr = nil
	o.hooks.release()
	runtime.SetFinalizer(o, nil)
	return nil
}

// GCResult is what a gc removed.
type GCResult struct {
	Chunks uint64
	Bytes  uint64
}

// GCResult reads what an ended gc operation removed.
func (o *Operation) GCResult() (GCResult, error) {
	if !o.enter() {
		return GCResult{}, closedError("Operation")
	}
	defer o.exit()
	var ch, by C.uint64_t
	err := call(func() C.int { return C.harvbk_gc_result(o.ptr, &ch, &by) })
	return GCResult{Chunks: uint64(ch), Bytes: uint64(by)}, err
}

// RetainedPaths are the previous volume files a replace-restore with
// DeletionRetain kept.
func (o *Operation) RetainedPaths() []string {
	if !o.enter() {
		return nil
	}
	defer o.exit()
	n := int(C.harvbk_restore_retained_count(o.ptr))
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, gostr(C.harvbk_restore_retained_path(o.ptr, C.size_t(i))))
	}
	return out
}
