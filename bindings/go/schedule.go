package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// ScheduleType is what a schedule creates.
type ScheduleType int

const (
	ScheduleBackup   ScheduleType = 0
	ScheduleSnapshot ScheduleType = 1
)

// DeadlineNextFiring is the ScheduleOptions.Deadline (and Schedule.Deadline)
// meaning "until the next firing", the default.
const DeadlineNextFiring = time.Duration(0xffffffff) * time.Second

// ScheduleOptions are the settings of CreateSchedule and UpdateSchedule. For
// an update, zero values keep the schedule's current ones.
type ScheduleOptions struct {
	Type        ScheduleType
	VMNamespace string // "": the schedule's namespace
	VM          string // required at create
	Cron        string // required at create (docs/SCHEDULES.md)
	Retain      uint   // 0: 8
	MaxFailure  uint   // 0: 4 (or Retain-1 when smaller)
	// How long a run may take before it is cancelled and counted as a
	// failure, whole seconds; 0: DeadlineNextFiring.
	Deadline time.Duration
	// Skip the once-an-hour and 10-minutes-apart checks.
	SkipIntervalCheck bool
	// "Now" for the checks and the first firing; zero: the system clock.
	Now time.Time
}

// RunState is the state of a schedule's run: "InProgress", "Ready",
// "Error", "Skipped" or "Cancelled".
type RunState string

func runStateName(s C.int) RunState {
	return RunState(C.GoString(C.harvbk_schedule_run_state_name(s)))
}

// ScheduleHistoryItem is one firing a schedule ran or skipped.
type ScheduleHistoryItem struct {
	Entry   string // the backup or snapshot it created ("" when skipped)
	Planned time.Time
	State   RunState
	Err     error // nil when none
	Missed  int   // firings missed by downtime before it
	Deleted bool  // its entry was deleted since (retention)
}

// Schedule is a plain copy of a schedule (Context.Schedule, Schedules).
type Schedule struct {
	Namespace           string
	Name                string
	Type                ScheduleType
	VMNamespace         string
	VM                  string
	Cron                string
	Retain              uint
	MaxFailure          uint
	Deadline            time.Duration // or DeadlineNextFiring
	SkipIntervalCheck   bool
	Suspended           bool
	SuspendReason       string
	ConsecutiveFailures uint
	Created             time.Time
	NextRun             time.Time // zero when suspended
	LastRun             time.Time
	History             []ScheduleHistoryItem // oldest first
	JSON                string
}

func codeErr(code C.int, msg string) error {
	if code == 0 {
		return nil
	}
	if msg == "" {
		msg = codeMessage(code)
	}
	return newError(Code(code), msg, nil)
}

func scheduleFromC(s *C.harvbk_schedule) Schedule {
	out := Schedule{
		Namespace:           gostr(C.harvbk_schedule_namespace(s)),
		Name:                gostr(C.harvbk_schedule_name(s)),
		Type:                ScheduleType(C.harvbk_schedule_type_of(s)),
		VMNamespace:         gostr(C.harvbk_schedule_vm_namespace(s)),
		VM:                  gostr(C.harvbk_schedule_vm_name(s)),
		Cron:                gostr(C.harvbk_schedule_cron(s)),
		Retain:              uint(C.harvbk_schedule_retain(s)),
		MaxFailure:          uint(C.harvbk_schedule_max_failure(s)),
		Deadline:            time.Duration(C.harvbk_schedule_deadline(s)) * time.Second,
		SkipIntervalCheck:   C.harvbk_schedule_skip_interval_check(s) == 1,
		Suspended:           C.harvbk_schedule_suspended(s) == 1,
		SuspendReason:       gostr(C.harvbk_schedule_suspend_reason(s)),
		ConsecutiveFailures: uint(C.harvbk_schedule_consecutive_failures(s)),
		Created:             msTime(int64(C.harvbk_schedule_created(s))),
		NextRun:             msTime(int64(C.harvbk_schedule_next_run(s))),
		LastRun:             msTime(int64(C.harvbk_schedule_last_run(s))),
	}
	n := int(C.harvbk_schedule_history_count(s))
	for i := 0; i < n; i++ {
		var h C.hbgo_hist
		if C.hbgo_schedule_history_at(s, C.size_t(i), &h) != 0 {
			continue
		}
		out.History = append(out.History, ScheduleHistoryItem{
			Entry: gostr(h.entry), Planned: msTime(int64(h.planned_ms)),
			State: runStateName(h.state), Err: codeErr(h.error_code, gostr(h.error)),
			Missed: int(h.missed), Deleted: h.deleted == 1,
		})
	}
	var js *C.char
	if C.harvbk_schedule_to_json(s, &js) == 0 {
		out.JSON = gostr(js)
		C.harvbk_string_free(js)
	}
	return out
}

func timeMS(t time.Time) C.int64_t {
	if t.IsZero() {
		return 0
	}
	return C.int64_t(t.UnixMilli())
}

func (c *Context) setSchedule(update C.int, namespace, name string, o ScheduleOptions) error {
	var cs cstrings
	defer cs.free()
	var s [5]*C.char
	for i, v := range []string{namespace, name, o.VMNamespace, o.VM, o.Cron} {
		var err error
		if i < 2 {
			s[i], err = cs.add(v)
		} else {
			s[i], err = cs.addOpt(v)
		}
		if err != nil {
			return err
		}
	}
	var flags C.uint
	if o.SkipIntervalCheck {
		flags |= C.HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK
	}
	return c.do(func(p *C.harvbk_ctx) error {
		var msg *C.char
		rc := C.hbgo_schedule_set(p, update, s[0], s[1], flags, C.int(o.Type), s[2], s[3], s[4],
			C.uint(o.Retain), C.uint(o.MaxFailure), C.uint32_t(o.Deadline/time.Second),
			timeMS(o.Now), &msg)
		return errFromMsg(rc, msg)
	})
}

// CreateSchedule creates schedule namespace/name: each firing of opts.Cron
// backs up (or snapshots) the VM. Refusals have their own codes: ErrCron,
// ErrInterval, ErrScheduleConflict, ErrRetain, ErrMaxFailure,
// ErrVMScheduled, ErrNotFound (VM not registered), ErrExists...
func (c *Context) CreateSchedule(namespace, name string, opts ScheduleOptions) error {
	return c.setSchedule(0, namespace, name, opts)
}

// UpdateSchedule changes the cron, retain, max failure or deadline of a
// schedule (zero values keep the current ones).
func (c *Context) UpdateSchedule(namespace, name string, opts ScheduleOptions) error {
	return c.setSchedule(1, namespace, name, opts)
}

// DeleteSchedule deletes a schedule (the entries it made stay).
func (c *Context) DeleteSchedule(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_schedule_delete(p, ns, n) })
	})
}

// SuspendSchedule suspends a schedule ("suspended by user").
func (c *Context) SuspendSchedule(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_schedule_suspend(p, ns, n) })
	})
}

// ResumeSchedule resumes a suspended schedule.
func (c *Context) ResumeSchedule(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_schedule_resume(p, ns, n) })
	})
}

// Schedule returns schedule namespace/name (ErrNotFound).
func (c *Context) Schedule(namespace, name string) (*Schedule, error) {
	var out *Schedule
	err := c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		var s *C.harvbk_schedule
		if err := call(func() C.int { return C.harvbk_schedule_get(&s, p, ns, n) }); err != nil {
			return err
		}
		defer C.harvbk_schedule_free(s)
		sc := scheduleFromC(s)
		out = &sc
		return nil
	})
	return out, err
}

// Schedules lists every schedule, sorted by namespace then name.
func (c *Context) Schedules() ([]Schedule, error) {
	var out []Schedule
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_schedule_list
		if err := call(func() C.int { return C.harvbk_schedule_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_schedule_list_free(l)
		n := int(C.harvbk_schedule_list_count(l))
		for i := 0; i < n; i++ {
			out = append(out, scheduleFromC(C.harvbk_schedule_list_at(l, C.size_t(i))))
		}
		return nil
	})
	return out, err
}

// RunOptions are the optional settings of a schedule pass (RunDue) and of a
// Scheduler.
type RunOptions struct {
	MaxParallel int          // runs at once; 0: 2
	Progress    ProgressFunc // bytes of all the pass's runs
	// Freeze and thaw each VM around its backup or snapshot.
	Freeze, Thaw FreezeFunc
	// The current description of a VM (nil: the VM as registered). The
	// binding copies the VM it returns and then closes it.
	Resolve func(namespace, name string) (*VM, error)
	// The freeze window of each run, as in BackupOptions (the hooks are
	// called on each run's thread; runs of a pass may be concurrent).
	Capture        CaptureFunc
	Release        ReleaseFunc
	FreezeDeadline time.Duration
	NoReflink      bool
}

// runConfig is what the C wrappers of a schedule pass take.
type runConfig struct {
	maxParallel C.uint
	flags       C.uint
	deadline    C.uint32_t
}

func (o *RunOptions) hooks() (*opHooks, runConfig, error) {
	if o == nil {
		return &opHooks{}, runConfig{}, nil
	}
	deadline, err := freezeDeadlineMS(o.FreezeDeadline)
	if err != nil {
		return nil, runConfig{}, err
	}
	if o.MaxParallel < 0 {
		return nil, runConfig{}, newError(CodeInvalid, "negative MaxParallel", nil)
	}
	rc := runConfig{maxParallel: C.uint(o.MaxParallel), deadline: deadline}
	if o.NoReflink {
		rc.flags |= C.HARVBK_SCHEDULE_RUN_NO_REFLINK
	}
	hk := &opHooks{progress: o.Progress, freeze: o.Freeze, thaw: o.Thaw, resolve: o.Resolve,
		capture: o.Capture, captureRelease: o.Release}
	return hk, rc, nil
}

// ScheduleRun is one run of a schedule pass.
type ScheduleRun struct {
	Namespace string
	Schedule  string
	Entry     string // the backup or snapshot it created ("" when skipped)
	Planned   time.Time
	State     RunState
	Err       error // nil when it succeeded
}

// ScheduleRuns lists the runs of a schedule pass (RunDue) operation.
func (o *Operation) ScheduleRuns() []ScheduleRun {
	if !o.enter() {
		return nil
	}
	defer o.exit()
	n := int(C.harvbk_schedule_run_count(o.ptr))
	out := make([]ScheduleRun, 0, n)
	for i := 0; i < n; i++ {
		var r C.hbgo_run
		if C.hbgo_schedule_run_at(o.ptr, C.size_t(i), &r) != 0 {
			continue
		}
		out = append(out, ScheduleRun{
			Namespace: gostr(r.namespace_), Schedule: gostr(r.schedule), Entry: gostr(r.entry),
			Planned: msTime(int64(r.planned_ms)), State: runStateName(r.state),
			Err: codeErr(r.error_code, gostr(r.message)),
		})
	}
	return out
}

// StartRunDue starts, as one operation, every active schedule due at now
// (the caller's clock: a controller's loop, or a fake clock in tests). It
// returns nil, nil when nothing is due.
func (c *Context) StartRunDue(now time.Time, opts *RunOptions) (*Operation, error) {
	hk, rc, err := opts.hooks()
	if err != nil {
		return nil, err
	}
	return c.startOp(hk, func(p *C.harvbk_ctx, h C.uintptr_t, out **C.harvbk_op, msg **C.char) C.int {
		cb := hk.cbs(rc.deadline)
		return C.hbgo_run_due(out, p, timeMS(now), rc.maxParallel, rc.flags, &cb, msg)
	})
}

// RunDue runs every schedule due at now and waits for its runs; it returns
// them (failed runs have Err set: the error is only for the pass itself).
// ctx cancels the pass (its runs are then recorded as Cancelled).
func (c *Context) RunDue(ctx context.Context, now time.Time, opts *RunOptions) ([]ScheduleRun, error) {
	var runs []ScheduleRun
	err := c.run(ctx, func() (*Operation, error) { return c.StartRunDue(now, opts) }, func(op *Operation) {
		runs = op.ScheduleRuns()
	})
	return runs, err
}

// NextDue says when RunDue should next be called: the earliest next firing
// of an active schedule after now (now itself when one is due); ok is false
// when no schedule is active.
func (c *Context) NextDue(now time.Time) (next time.Time, ok bool, err error) {
	var ms C.int64_t
	err = c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_schedule_next_due(p, timeMS(now), &ms) })
	})
	if err != nil || ms < 0 {
		return time.Time{}, false, err
	}
	return time.UnixMilli(int64(ms)), true, nil
}

// Scheduler is a library thread running the context's schedules on the
// system clock (StartScheduler). Stop it before closing the context (Close
// does it).
type Scheduler struct {
	mu    sync.Mutex
	ptr   *C.harvbk_scheduler
	ctx   *Context
	hooks *opHooks
}

// StartScheduler starts a runner thread that runs due schedules and syncs
// the catalog every refresh interval.
func (c *Context) StartScheduler(opts *RunOptions) (*Scheduler, error) {
	hk, rc, err := opts.hooks()
	if err != nil {
		return nil, err
	}
	s := &Scheduler{ctx: c, hooks: hk}
	err = c.do(func(p *C.harvbk_ctx) error {
		var msg *C.char
		cb := hk.cbs(rc.deadline)
		ret := C.hbgo_scheduler_start(&s.ptr, p, rc.maxParallel, rc.flags, &cb, &msg)
		return errFromMsg(ret, msg)
	})
	if err != nil {
		hk.release()
		return nil, err
	}
	c.mu.Lock()
	if c.schedulers == nil {
		c.schedulers = map[*Scheduler]struct{}{}
	}
	c.schedulers[s] = struct{}{}
	c.mu.Unlock()
	runtime.SetFinalizer(s, func(s *Scheduler) { go s.Stop() })
	return s, nil
}

// Stop cancels the runs in progress (recorded as Cancelled), waits for them
// and the thread. Stopping twice is a no-op.
func (s *Scheduler) Stop() {
	// held until the thread is joined: a second Stop (Context.Close, the
	// finalizer) returns only once the first one is done
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.ptr
	s.ptr = nil
	if p == nil {
		return
	}
	C.harvbk_scheduler_stop(p)
	s.hooks.release()
	s.ctx.mu.Lock()
	delete(s.ctx.schedulers, s)
	s.ctx.mu.Unlock()
	runtime.SetFinalizer(s, nil)
}

// Close is Stop.
func (s *Scheduler) Close() error {
	s.Stop()
	return nil
}
