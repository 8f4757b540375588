/*
 * harvbk/schedule.h - cron schedules of backups and snapshots: retention,
 * automatic suspension after repeated failures, and running them from the
 * caller's clock or from a runner thread.
 *
 * A schedule belongs to a namespace and names one VM of that namespace (one
 * schedule per VM). Each firing creates a backup (in the target) or a
 * snapshot (in the local snapshot store) named "<schedule>-YYYYMMDD-HHMM"
 * (UTC of the planned time), keeps the newest `retain` Ready ones and deletes
 * the rest, and suspends the schedule after `max_failure` consecutive
 * failures. docs/SCHEDULES.md has the rules, the cron syntax and the time
 * zones.
 *
 * The library owns no clock: harvbk_schedule_run_due() starts what is due at
 * the time it is given, and harvbk_schedule_next_due() says when to call it
 * again, so a controller drives schedules from its own loop (and tests from a
 * fake clock). harvbk_scheduler_start() is a small runner thread built on
 * those two calls for programs that have no loop of their own.
 *
 * Thread-safety: every function may be called from any thread with a shared
 * context; several processes may use one state directory at once (a firing
 * runs once, whoever calls run_due). Info and list handles are immutable
 * snapshots: read them from any thread, free them once.
 */
#ifndef HARVBK_SCHEDULE_H
#define HARVBK_SCHEDULE_H

#include "common.h"
#include "context.h"
#include "operation.h"
#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a schedule creates. */
typedef enum harvbk_schedule_type {
    HARVBK_SCHEDULE_BACKUP = 0,
    HARVBK_SCHEDULE_SNAPSHOT = 1
} harvbk_schedule_type;

/** Flags of harvbk_schedule_options.flags. */
#define HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK 0x1u /* skip the 1-hour and the 10-minute
                                                    checks; recorded on the schedule */

/** Limits and defaults. */
#define HARVBK_SCHEDULE_RETAIN_DEFAULT 8u
/* The model system's bounds; with max failure >= 2 and below retain, the
 * smallest retain that can be set is 3. */
#define HARVBK_SCHEDULE_RETAIN_MIN 2u
#define HARVBK_SCHEDULE_RETAIN_MAX 250u
#define HARVBK_SCHEDULE_MAX_FAILURE_DEFAULT 4u
#define HARVBK_SCHEDULE_MAX_FAILURE_MIN 2u
/** Longest schedule name: the entries it creates append "-YYYYMMDD-HHMM". */
#define HARVBK_SCHEDULE_NAME_MAX 49u
/** deadline_s value that means "until the next firing" (the default). */
#define HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING 0xffffffffu

#define HARVBK_SCHEDULE_OPTIONS_VERSION 1

/**
 * Settings of harvbk_schedule_create() and harvbk_schedule_update(). For an
 * update, 0 / NULL members keep the schedule's current value; `type` is
 * ignored (it cannot change), and `vm_namespace` / `vm_name`, which cannot
 * change either, are refused with HARVBK_E_INVALID when they name another VM.
 */
typedef struct harvbk_schedule_options {
    unsigned int version;     /* HARVBK_SCHEDULE_OPTIONS_VERSION */
    unsigned int flags;       /* HARVBK_SCHEDULE_* */
    int type;                 /* harvbk_schedule_type */
    const char *vm_namespace; /* NULL: the schedule's namespace (it must be that one) */
    const char *vm_name;      /* required at create */
    const char *cron;         /* required at create; docs/SCHEDULES.md */
    unsigned int retain;      /* 0: HARVBK_SCHEDULE_RETAIN_DEFAULT */
    /* 0: HARVBK_SCHEDULE_MAX_FAILURE_DEFAULT, or retain - 1 when that is
     * smaller (max failure must stay below retain, so retain is at least 3) */
    unsigned int max_failure;
    /* Seconds a run may take before it is cancelled and counted as a failure;
     * 0 keeps / defaults to HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING. */
    uint32_t deadline_s;
    /* "Now" for the checks and as the first firing's reference, in ms since
     * the epoch; 0: the system clock. */
    int64_t now_ms;
} harvbk_schedule_options;

#define HARVBK_SCHEDULE_OPTIONS_INIT \
    { HARVBK_SCHEDULE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_schedule_options_init(harvbk_schedule_options *opts,
                                            unsigned int version);

/**
 * Create schedule NAMESPACE/NAME. Its first firing is the first cron time
 * after now. Refusals, each with its own code and a message naming the value:
 *   HARVBK_E_CRON              the expression does not parse or never fires
 *   HARVBK_E_INTERVAL          it fires more often than once an hour
 *   HARVBK_E_SCHEDULE_CONFLICT another schedule of the same interval fires
 *                              less than 10 minutes apart from it
 *   HARVBK_E_RETAIN            retain outside 2..250
 *   HARVBK_E_MAX_FAILURE       max failure below 2, or not below retain
 *   HARVBK_E_VM_SCHEDULED      the VM already has a schedule
 *   HARVBK_E_NOTFOUND          the VM is not in the context's catalog
 *   HARVBK_E_TARGET / HARVBK_E_NOTARGET  a backup schedule while the target
 *                              is unreachable (checked with a bounded timeout)
 *   HARVBK_E_EXISTS            a schedule of that name exists
 *   HARVBK_E_INVALID, HARVBK_E_VERSION, HARVBK_E_MAINTENANCE, HARVBK_E_IO
 */
HARVBK_API int harvbk_schedule_create(harvbk_ctx *ctx, const char *namespace_, const char *name,
                                      const harvbk_schedule_options *opts);

/** Change the cron, retain, max failure or deadline of a schedule (the same
 *  checks as create). HARVBK_E_NOTFOUND when there is no such schedule. */
HARVBK_API int harvbk_schedule_update(harvbk_ctx *ctx, const char *namespace_, const char *name,
                                      const harvbk_schedule_options *opts);

/** Delete a schedule. The backups and snapshots it made stay. A run in
 *  progress finishes and is no longer recorded. */
HARVBK_API int harvbk_schedule_delete(harvbk_ctx *ctx, const char *namespace_, const char *name);

/** Suspend a schedule (reason "suspended by user"): no firing runs until it is
 *  resumed. Suspending a suspended schedule is a no-op. */
HARVBK_API int harvbk_schedule_suspend(harvbk_ctx *ctx, const char *namespace_,
                                       const char *name);

/** Resume a suspended schedule. One suspended because it reached its max
 *  failure first deletes the entries of its failed runs and resets its failure
 *  count. A backup schedule needs the target reachable (HARVBK_E_TARGET).
 *  Firings missed while suspended are not caught up beyond the one rule of
 *  harvbk_schedule_run_due(). Resuming an active schedule is a no-op. */
HARVBK_API int harvbk_schedule_resume(harvbk_ctx *ctx, const char *namespace_,
                                      const char *name);

/* ---- Reading schedules ---- */

typedef struct harvbk_schedule harvbk_schedule;
typedef struct harvbk_schedule_list harvbk_schedule_list;

/** States of a schedule's history items (numbers fixed forever). */
typedef enum harvbk_schedule_run_state {
    HARVBK_SCHEDULE_RUN_INPROGRESS = 1,
    HARVBK_SCHEDULE_RUN_READY = 2,
    HARVBK_SCHEDULE_RUN_ERROR = 3,
    HARVBK_SCHEDULE_RUN_SKIPPED = 4,  /* the previous firing was still running */
    HARVBK_SCHEDULE_RUN_CANCELLED = 5 /* the runner stopped it; not a failure */
} harvbk_schedule_run_state;

/** Static name: "InProgress", "Ready", "Error", "Skipped", "Cancelled". */
HARVBK_API const char *harvbk_schedule_run_state_name(int state);

/** Schedule NAMESPACE/NAME in *out (free with harvbk_schedule_free()). */
HARVBK_API int harvbk_schedule_get(harvbk_schedule **out, harvbk_ctx *ctx,
                                   const char *namespace_, const char *name);
HARVBK_API void harvbk_schedule_free(harvbk_schedule *s);

HARVBK_API const char *harvbk_schedule_namespace(const harvbk_schedule *s);
HARVBK_API const char *harvbk_schedule_name(const harvbk_schedule *s);
HARVBK_API int harvbk_schedule_type_of(const harvbk_schedule *s); /* harvbk_schedule_type */
HARVBK_API const char *harvbk_schedule_vm_namespace(const harvbk_schedule *s);
HARVBK_API const char *harvbk_schedule_vm_name(const harvbk_schedule *s);
HARVBK_API const char *harvbk_schedule_cron(const harvbk_schedule *s);
HARVBK_API unsigned int harvbk_schedule_retain(const harvbk_schedule *s);
HARVBK_API unsigned int harvbk_schedule_max_failure(const harvbk_schedule *s);
/** Seconds, or HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING. */
HARVBK_API uint32_t harvbk_schedule_deadline(const harvbk_schedule *s);
/** 1 when created or updated with HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK. */
HARVBK_API int harvbk_schedule_skip_interval_check(const harvbk_schedule *s);
/** 1 when suspended; the reason ("" when active): "suspended by user",
 *  "max failure reached", "maintenance". */
HARVBK_API int harvbk_schedule_suspended(const harvbk_schedule *s);
HARVBK_API const char *harvbk_schedule_suspend_reason(const harvbk_schedule *s);
HARVBK_API unsigned int harvbk_schedule_consecutive_failures(const harvbk_schedule *s);
/** ms since the epoch: when it was created; its next firing (-1 when
 *  suspended); the latest firing it handled (its creation time before the
 *  first). */
HARVBK_API int64_t harvbk_schedule_created(const harvbk_schedule *s);
HARVBK_API int64_t harvbk_schedule_next_run(const harvbk_schedule *s);
HARVBK_API int64_t harvbk_schedule_last_run(const harvbk_schedule *s);

/** History, oldest first: the firings it ran or skipped (the newest ones and
 *  every one whose entry still exists). */
HARVBK_API size_t harvbk_schedule_history_count(const harvbk_schedule *s);
/** Item i: the entry created ("" for a skipped firing), the planned time (ms),
 *  its harvbk_schedule_run_state, its HARVBK_E_* code and message ("" when
 *  none), the firings missed by downtime before it, and whether its entry was
 *  deleted since (by retention). Any out pointer may be NULL. */
HARVBK_API int harvbk_schedule_history_at(const harvbk_schedule *s, size_t i, const char **entry,
                                          int64_t *planned_ms, int *state, int *error_code,
                                          const char **error, unsigned int *missed,
                                          int *deleted);

/** JSON text of the schedule (caller frees with harvbk_string_free()): name,
 *  namespace, type, vm, cron, retain, max_failure, deadline_s,
 *  skip_interval_check, suspended, suspend_reason, consecutive_failures,
 *  created, next_run, last_run (RFC 3339 UTC, null when none) and history. */
HARVBK_API int harvbk_schedule_to_json(const harvbk_schedule *s, char **out);

/** Every schedule of the context, sorted by namespace then name. */
HARVBK_API int harvbk_schedule_list_get(harvbk_schedule_list **out, harvbk_ctx *ctx);
HARVBK_API size_t harvbk_schedule_list_count(const harvbk_schedule_list *list);
HARVBK_API const harvbk_schedule *harvbk_schedule_list_at(const harvbk_schedule_list *list,
                                                          size_t i);
HARVBK_API void harvbk_schedule_list_free(harvbk_schedule_list *list);

/* ---- Running ---- */

/**
 * VM resolver: put into *out the current description of VM namespace_/name
 * (a harvbk_vm the library frees), or return a HARVBK_E_* code (the run then
 * fails with it). Called on the run's thread, never with a library lock held.
 */
typedef int (*harvbk_vm_resolve_cb)(harvbk_vm **out, const char *namespace_, const char *name,
                                    void *payload);

/** Flags of harvbk_schedule_run_options.flags (since 1.1). */
#define HARVBK_SCHEDULE_RUN_NO_REFLINK 0x40u /* no reflink capture of file volumes
                                                (a value no other options type uses) */

/* Version 2 (since 1.1) added capture_cb .. flags. */
#define HARVBK_SCHEDULE_RUN_OPTIONS_VERSION 2

typedef struct harvbk_schedule_run_options {
    unsigned int version;           /* HARVBK_SCHEDULE_RUN_OPTIONS_VERSION */
    unsigned int max_parallel;      /* runs at once; 0: 2 */
    /* Progress of the whole pass: bytes of all its runs (the pass's progress
     * thread calls it, like any operation's: harvbk/common.h). */
    harvbk_progress_cb progress_cb;
    void *progress_payload;
    /* Freeze/thaw each VM around its backup or snapshot (harvbk/backup.h). */
    harvbk_freeze_cb freeze_cb;
    harvbk_freeze_cb thaw_cb;
    void *freeze_payload;
    /* NULL: the VM as registered in the context's catalog (harvbk_vm_lookup). */
    harvbk_vm_resolve_cb resolve_cb;
    void *resolve_payload;
    /* ---- version 2: the freeze window of each run, as in
     * harvbk_backup_options (harvbk/operation.h, docs/THREADING.md) ---- */
    harvbk_capture_cb capture_cb;         /* NULL: none */
    harvbk_capture_release_cb release_cb; /* required with capture_cb */
    void *capture_payload;
    uint32_t freeze_deadline_ms;          /* 0: none */
    unsigned int flags;                   /* HARVBK_SCHEDULE_RUN_* */
} harvbk_schedule_run_options;

#define HARVBK_SCHEDULE_RUN_OPTIONS_INIT \
    { HARVBK_SCHEDULE_RUN_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_schedule_run_options_init(harvbk_schedule_run_options *opts,
                                                unsigned int version);

/**
 * Start, as one operation (kind "schedule"), every active schedule due at
 * `now_ms` (ms since the epoch): a schedule is due when a cron time after the
 * latest firing it handled is at or before now. Only the latest such firing
 * runs (missed ones are counted, not caught up). A firing whose schedule is
 * still running its previous one (in any process) is recorded as skipped.
 * *out is NULL and 0 is returned when nothing is due. The operation ends
 * when every run it started has ended; its result is 0 even when runs failed
 * (read them with harvbk_schedule_run_count/_at) and non-zero only when the
 * pass itself could not run. Cancelling it cancels its runs, which are
 * recorded as Cancelled, not as failures (a run cancelled by its deadline is
 * an Error, HARVBK_E_TIMEOUT). Errors: HARVBK_E_INVALID, HARVBK_E_VERSION,
 * HARVBK_E_MAINTENANCE, HARVBK_E_IO.
 */
HARVBK_API int harvbk_schedule_run_due(harvbk_op **out, harvbk_ctx *ctx, int64_t now_ms,
                                       const harvbk_schedule_run_options *opts);

/** Runs of a finished (or running) run_due operation: 0 for other ops. */
HARVBK_API size_t harvbk_schedule_run_count(const harvbk_op *op);
/** Run i: the schedule, the entry it created ("" when skipped), the planned
 *  time of its firing (ms), its harvbk_schedule_run_state (InProgress until
 *  it ended), its HARVBK_E_* code and message ("" when none; set once the run
 *  ended). Strings live as long as the op. Any out pointer may be NULL. */
HARVBK_API int harvbk_schedule_run_at(const harvbk_op *op, size_t i, const char **namespace_,
                                      const char **schedule, const char **entry,
                                      int64_t *planned_ms, int *state, int *error_code,
                                      const char **message);

/** When harvbk_schedule_run_due() should next be called: the earliest next
 *  firing of an active schedule after now_ms (now_ms itself when one is due),
 *  or -1 when no schedule is active. */
HARVBK_API int harvbk_schedule_next_due(harvbk_ctx *ctx, int64_t now_ms, int64_t *out_ms);

/* ---- A runner thread ---- */

typedef struct harvbk_scheduler harvbk_scheduler;

/**
 * Start a thread that calls harvbk_schedule_run_due() at every
 * harvbk_schedule_next_due() time of the system clock (re-reading the
 * schedules at least every 30 s, so changes from other processes are seen)
 * and syncs the target's catalog every refresh interval of the target
 * settings. `opts` (may be NULL) is copied; its callbacks run on library
 * threads. The context must outlive the runner.
 */
HARVBK_API int harvbk_scheduler_start(harvbk_scheduler **out, harvbk_ctx *ctx,
                                      const harvbk_schedule_run_options *opts);
/** Stop the runner: runs in progress are cancelled (recorded as Cancelled,
 *  not as failures) and waited for; then the thread is joined and the handle
 *  freed. NULL is a no-op. */
HARVBK_API void harvbk_scheduler_stop(harvbk_scheduler *s);

#ifdef __cplusplus
}
#endif
#endif
