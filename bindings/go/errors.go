package harvbk

import (
	"errors"
	"fmt"
)

// Code is a libharvbk error code (HARVBK_E_* of harvbk/common.h): 0 or a
// negative number, fixed forever. Its String is the C name, e.g.
// "HARVBK_E_NOTFOUND".
type Code int

// The error codes of harvbk/common.h, in its order.
const (
	CodeOK               Code = 0
	CodeUnspecified      Code = -1  // HARVBK_E_ERROR
	CodeNoMemory         Code = -2  // HARVBK_E_NOMEM
	CodeInvalid          Code = -3  // HARVBK_E_INVALID
	CodeVersion          Code = -4  // HARVBK_E_VERSION
	CodeNotFound         Code = -5  // HARVBK_E_NOTFOUND
	CodeExists           Code = -6  // HARVBK_E_EXISTS
	CodeIO               Code = -7  // HARVBK_E_IO
	CodeChunk            Code = -8  // HARVBK_E_CHUNK
	CodeCorrupt          Code = -9  // HARVBK_E_CORRUPT
	CodeFormat           Code = -10 // HARVBK_E_FORMAT
	CodeCancelled        Code = -11 // HARVBK_E_CANCELLED
	CodeFreeze           Code = -12 // HARVBK_E_FREEZE
	CodeTarget           Code = -13 // HARVBK_E_TARGET
	CodeUnsupported      Code = -14 // HARVBK_E_UNSUPPORTED
	CodeBusy             Code = -15 // HARVBK_E_BUSY
	CodeState            Code = -16 // HARVBK_E_STATE
	CodeTimeout          Code = -17 // HARVBK_E_TIMEOUT
	CodePermission       Code = -18 // HARVBK_E_PERM
	CodeNoTarget         Code = -19 // HARVBK_E_NOTARGET
	CodeInterrupted      Code = -20 // HARVBK_E_INTERRUPTED
	CodeQuota            Code = -21 // HARVBK_E_QUOTA
	CodeVMRunning        Code = -22 // HARVBK_E_VM_RUNNING
	CodeCrossNamespace   Code = -23 // HARVBK_E_CROSS_NAMESPACE
	CodeDeletionPolicy   Code = -24 // HARVBK_E_DELETION_POLICY
	CodeKeepMAC          Code = -25 // HARVBK_E_KEEP_MAC
	CodeCron             Code = -26 // HARVBK_E_CRON
	CodeInterval         Code = -27 // HARVBK_E_INTERVAL
	CodeScheduleConflict Code = -28 // HARVBK_E_SCHEDULE_CONFLICT
	CodeRetain           Code = -29 // HARVBK_E_RETAIN
	CodeMaxFailure       Code = -30 // HARVBK_E_MAX_FAILURE
	CodeVMScheduled      Code = -31 // HARVBK_E_VM_SCHEDULED
	CodeMaintenance      Code = -32 // HARVBK_E_MAINTENANCE
	CodeReadOnly         Code = -33 // HARVBK_E_READ_ONLY
	CodeImage            Code = -34 // HARVBK_E_IMAGE
	CodeCallback         Code = -35 // HARVBK_E_CALLBACK
	CodeKey              Code = -36 // HARVBK_E_KEY
)

// One sentinel per error code, for errors.Is: every error the package
// returns for a failing library call is an *Error, and errors.Is(err,
// ErrNotFound) is true when its Code is CodeNotFound.
var (
	ErrUnspecified       = sentinel(CodeUnspecified, "unspecified error")
	ErrNoMemory          = sentinel(CodeNoMemory, "out of memory")
	ErrInvalid           = sentinel(CodeInvalid, "invalid argument")
	ErrVersion           = sentinel(CodeVersion, "options structure version not supported")
	ErrNotFound          = sentinel(CodeNotFound, "not found")
	ErrExists            = sentinel(CodeExists, "already exists")
	ErrIO                = sentinel(CodeIO, "input/output error")
	ErrChunkCorrupt      = sentinel(CodeChunk, "chunk missing or corrupt")
	ErrCorrupt           = sentinel(CodeCorrupt, "metadata corrupt or malformed")
	ErrFormat            = sentinel(CodeFormat, "store format version not supported")
	ErrCancelled         = sentinel(CodeCancelled, "operation cancelled")
	ErrFreeze            = sentinel(CodeFreeze, "failed to freeze filesystem")
	ErrTargetUnreachable = sentinel(CodeTarget, "backup target unreachable or failed")
	ErrUnsupported       = sentinel(CodeUnsupported, "not supported")
	ErrBusy              = sentinel(CodeBusy, "resource busy")
	ErrState             = sentinel(CodeState, "object in the wrong state for this call")
	ErrTimeout           = sentinel(CodeTimeout, "timed out")
	ErrPermission        = sentinel(CodePermission, "permission denied")
	ErrNoTarget          = sentinel(CodeNoTarget, "no backup target configured")
	ErrInterrupted       = sentinel(CodeInterrupted, "operation interrupted")
	ErrQuotaExceeded     = sentinel(CodeQuota, "snapshot space quota exceeded")
	ErrVMRunning         = sentinel(CodeVMRunning, "VM is not powered off")
	ErrCrossNamespace    = sentinel(CodeCrossNamespace, "a snapshot cannot be restored into another namespace")
	ErrDeletionPolicy    = sentinel(CodeDeletionPolicy, "deletion policy not allowed for this restore")
	ErrKeepMAC           = sentinel(CodeKeepMAC, "MAC addresses cannot be kept while the source VM exists")
	ErrCron              = sentinel(CodeCron, "cron expression invalid or never fires")
	ErrInterval          = sentinel(CodeInterval, "schedule fires more often than once an hour")
	ErrScheduleConflict  = sentinel(CodeScheduleConflict, "schedule fires too close to another schedule")
	ErrRetain            = sentinel(CodeRetain, "retain count out of range")
	ErrMaxFailure        = sentinel(CodeMaxFailure, "max failure out of range")
	ErrVMScheduled       = sentinel(CodeVMScheduled, "VM already has a schedule")
	ErrMaintenance       = sentinel(CodeMaintenance, "state directory is in maintenance mode")
	ErrReadOnly          = sentinel(CodeReadOnly, "backup target is read-only")
	ErrImage             = sentinel(CodeImage, "VM image missing and cannot be recreated")
	ErrCallback          = sentinel(CodeCallback, "a callback reported failure")
	ErrKey               = sentinel(CodeKey, "encryption key missing or wrong")
)

// ErrClosed is wrapped by the *Error (CodeInvalid) returned when a Context,
// VM, Operation or Scheduler is used after Close.
var ErrClosed = errors.New("harvbk: use of a closed handle")

var sentinels = map[Code]*Error{}

func sentinel(c Code, msg string) *Error {
	e := &Error{Code: c, Message: msg}
	sentinels[c] = e
	return e
}

// Sentinel returns the exported sentinel error of a code (ErrNotFound for
// CodeNotFound...), nil for CodeOK or a code this package does not know.
func Sentinel(c Code) error {
	if e, ok := sentinels[c]; ok {
		return e
	}
	return nil
}

// String is the C name of the code, e.g. "HARVBK_E_NOTFOUND".
func (c Code) String() string {
	if c == CodeOK {
		return "HARVBK_OK"
	}
	if n, ok := codeNames[c]; ok {
		return "HARVBK_E_" + n
	}
	return fmt.Sprintf("HARVBK_E_UNKNOWN(%d)", int(c))
}

var codeNames = map[Code]string{
	CodeUnspecified: "ERROR", CodeNoMemory: "NOMEM", CodeInvalid: "INVALID",
	CodeVersion: "VERSION", CodeNotFound: "NOTFOUND", CodeExists: "EXISTS", CodeIO: "IO",
	CodeChunk: "CHUNK", CodeCorrupt: "CORRUPT", CodeFormat: "FORMAT",
	CodeCancelled: "CANCELLED", CodeFreeze: "FREEZE", CodeTarget: "TARGET",
	CodeUnsupported: "UNSUPPORTED", CodeBusy: "BUSY", CodeState: "STATE",
	CodeTimeout: "TIMEOUT", CodePermission: "PERM", CodeNoTarget: "NOTARGET",
	CodeInterrupted: "INTERRUPTED", CodeQuota: "QUOTA", CodeVMRunning: "VM_RUNNING",
	CodeCrossNamespace: "CROSS_NAMESPACE", CodeDeletionPolicy: "DELETION_POLICY",
	CodeKeepMAC: "KEEP_MAC", CodeCron: "CRON", CodeInterval: "INTERVAL",
	CodeScheduleConflict: "SCHEDULE_CONFLICT", CodeRetain: "RETAIN",
	CodeMaxFailure: "MAX_FAILURE", CodeVMScheduled: "VM_SCHEDULED",
	CodeMaintenance: "MAINTENANCE", CodeReadOnly: "READ_ONLY", CodeImage: "IMAGE",
	CodeCallback: "CALLBACK", CodeKey: "KEY",
}

// Error is the error of a failing library call or operation: the HARVBK_E_*
// code and the library's detailed message (the calling thread's last error
// for calls, the operation's message for operations). Use errors.As to get
// it, errors.Is with the Err* sentinels to test the code.
//
// An Error may wrap a cause, returned by Unwrap: the context.Context error
// (context.Canceled, context.DeadlineExceeded) of an operation stopped
// through its context, or the error (or *PanicError) of a Go callback that
// made the operation fail.
type Error struct {
	Code    Code
	Message string
	cause   error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.String()
	}
	if e.cause != nil {
		return "harvbk: " + msg + ": " + e.cause.Error()
	}
	return "harvbk: " + msg
}

// Is reports whether target is an *Error of the same code (the Err*
// sentinels are).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap returns the cause: a context error or a Go callback's error.
func (e *Error) Unwrap() error { return e.cause }

// PanicError is the cause of an operation that failed because a Go callback
// panicked: the library saw a failure, and the call returns an *Error
// wrapping this.
type PanicError struct {
	Value interface{} // what was passed to panic
	Stack []byte      // the callback goroutine's stack at the panic
}

func (p *PanicError) Error() string { return fmt.Sprintf("callback panicked: %v", p.Value) }

func newError(c Code, msg string, cause error) *Error {
	return &Error{Code: c, Message: msg, cause: cause}
}

func closedError(what string) error {
	return newError(CodeInvalid, what+" is closed", ErrClosed)
}
