/*
 * ops/ops.h - the ops layer: the implementation of the public API on top of
 * the engine, the store and the target. Internal; nothing here is exported.
 *
 * Files:
 *   options.c     options structs (*_options_init, version checks), state names
 *   ctx.c         contexts: state file, logging, error messages, store refs,
 *                 registry, recovery at open (hb_recovery_scan)
 *   ctx_target.c  harvbk_ctx_set_target / get_target / check_target
 *   keys.c        harvbk/key.h: session keys of the target and the snapshot
 *                 store, adding/removing/listing an encrypted store's keys
 *   vm_catalog.c  harvbk_vm_register / lookup / unregister / list (public)
 *   ranges.c      harvbk_ranges
 *   op.c          operation handles: thread, state, wait, cancel, progress
 *   backup.c      harvbk_backup_create (the backup operation)
 *   capture.c     the freeze window: capturing volumes (reflink, capture hook)
 *   backup_info.c harvbk_backup_get/list and the info accessors/JSON
 *   backup_delete.c harvbk_backup_delete
 *   verify.c      harvbk_backup_verify
 *   gc.c          harvbk_gc
 *   restore.c     harvbk_restore_create / harvbk_snapshot_restore (new VM and replace)
 *   rewrite.c     the metadata rewrite hook handle and the default KubeVirt rewrite
 *   snapshot.c    harvbk_snapshot_* (the writer is backup.c's, the readers
 *                 backup_info.c / verify.c / backup_delete.c, kind "snapshot")
 *   snapshot_store.c  the context's local snapshot store: where, how to open it
 *   quota.c       snapshot space quotas: limits file, usage, enforcement
 *   schedule.c    harvbk_schedule_create/update/delete/suspend/resume/get/list
 *   schedule_run.c  harvbk_schedule_run_due/next_due: one pass as one op,
 *                 failures, suspension, retention; settling dead runs at open
 *   scheduler.c   harvbk_scheduler_start/stop: the runner thread
 *   maintenance.c operations across processes, maintenance mode
 *   image.c       harvbk_image_register/lookup/unregister/list, the image hook,
 *                 image records written with backups and snapshots, and
 *                 finding or recreating a restore's images
 *   sync.c        the synced backup catalog: harvbk_target_sync, the periodic
 *                 sync, forget, deferred deletes (the file: state/synced.c)
 *
 * The state directory's persistence (harvbk_vm values, the VM catalog's
 * files, records, locks, record recovery, restore journals, schedule records,
 * the operations registry and the maintenance file) is the state
 * layer's, below this one: src/state/ (state.h and a header per concern;
 * each ops file includes the ones it uses). ctx->state is its handle.
 *
 * Locking order (outer first): ctx->target_mu -> ctx->mu -> op->mu;
 * ctx->state.cat_mu, ctx->state.pend_mu, ctx->lease_mu, ctx->err_mu,
 * op->prog_mu and ctx->log_lock are leaves (no other lock is taken while
 * holding them, except that user log callbacks run under the read side of
 * log_lock; progress hooks run with no lock held, op->prog_mu released).
 */
#ifndef HB_OPS_H
#define HB_OPS_H

#include "../core/hb.h"
#include "../engine/engine.h"
#include "../state/state.h"
#include "../store/store.h"
#include "../target/config.h"
#include "../target/target.h"
#include "../state/opreg.h"
#include <pthread.h>
#include <stdatomic.h>

#define HB_CTX_MAGIC 0x68624378u /* "hbCx" */
#define HB_OP_MAGIC 0x68624f70u  /* "hbOp" */
#define HB_OP_DEAD 0x64656164u   /* freed op */

/* The store's config object in the target (store/store.h, docs/FORMAT.md). */
#define HB_STORE_CONFIG_KEY HB_STORE_CONFIG_NAME

/* Waiting for a gc of the target to end before a backup writes. */
#define HB_GC_WAIT_MS 60000u
#define HB_GC_POLL_MS 1000u

/* ---- options (options.c) ---- */
/* HARVBK_E_VERSION for 0 or a version newer than `known`. */
int hb_opts_version_check(unsigned int version, unsigned int known, const char *what, hb_err *e);
/* The options structs (options.c): each public *_options_init() and every
 * function taking options goes through these, so that nothing beyond the
 * caller's version of a struct is ever read or written. */
enum hb_opts_type {
    HB_OPTS_CTX, HB_OPTS_BACKUP, HB_OPTS_OP, HB_OPTS_RESTORE, HB_OPTS_SNAPSHOT,
    HB_OPTS_SNAPSTORE, HB_OPTS_SCHEDULE, HB_OPTS_SCHEDULE_RUN, HB_OPTS_N
};
#define HB_OPTS_MAX_VERSION 2
/* Bytes of `version` of the struct; 0 for a version this library lacks. */
size_t hb_opts_size(int type, unsigned int version);
/* Zero `version`'s bytes of opts, set its version and defaults. */
int hb_opts_init(int type, void *opts, unsigned int version);
/* *out (a struct of the current version) = the defaults, overwritten by the
 * members the caller's version of src has (src NULL: the defaults alone).
 * HARVBK_E_VERSION (naming the struct) for a version this library lacks. */
int hb_opts_take(int type, void *out, const void *src, hb_err *e);

/* ---- the store a context uses, reference-counted (ctx.c) ---- */
typedef struct hb_store_ref {
    hb_store *st;
    unsigned refs; /* guarded by ctx->mu; the context's own slot counts as one */
} hb_store_ref;

/* ---- what this process is doing with which backup (ctx.c) ---- */
enum hb_use_kind { HB_USE_WRITE = 1, HB_USE_READ = 2, HB_USE_DELETE = 3, HB_USE_NEWVM = 4 };
typedef struct hb_use {
    int kind;
    char *ns, *name;
    unsigned count;
    struct hb_use *next;
} hb_use;

struct harvbk_ctx {
    uint32_t magic;
    hb_state state;             /* the state directory (its own locks) */
    char id[37];
    char owner[96];             /* "<ctx-id>-<pid>-<8 hex>": temporaries, leases */
    unsigned threads;

    /* logging: layers below get `log` whose callback is a trampoline that
     * reads the user's hook under log_lock, so the hook can be replaced. */
    hb_logger log;
    pthread_rwlock_t log_lock;
    harvbk_log_cb user_log_cb;
    void *user_log_payload;

    pthread_mutex_t err_mu;
    char errmsg[HB_ERRMSG_MAX];

    pthread_mutex_t target_mu;  /* serialises set_target and opening the store */
    pthread_mutex_t mu;         /* everything below */
    pthread_cond_t cv;
    bool has_target;
    hb_target_cfg cfg;
    hb_store_ref *store;
    harvbk_op *ops;             /* ops whose thread was not yet joined */
    unsigned nrunning;
    bool closing;
    bool gc_running;
    hb_use *uses;

    /* the snapshot store's key (keys.c, snapshot_store.c): the session key
     * (harvbk_snapshot_store_set_key) and the store key it unlocked last,
     * reused while the store's id and fingerprint match, so a passphrase is
     * not derived again for every snapshot; both dropped when the snapshot
     * store's settings or key change */
    hb_key *snap_key;
    hb_store_crypt *snap_crypt;

    harvbk_image_hook image_hook; /* NULL: none */
    void *image_hook_payload;

    pthread_mutex_t lease_mu;   /* the context's shared writer lease */
    hb_lease *writer_lease;
    unsigned writer_refs;
    hb_store *writer_store;
};

/* Set the context's message from e (when e->code != 0); returns e->code. */
int hb_ctx_fail(harvbk_ctx *ctx, const hb_err *e);
/* Format a message, set it as the context's message, return code. */
int hb_ctx_failf(harvbk_ctx *ctx, int code, const char *fmt, ...) HB_PRINTF(3, 4);
/* The failure rc described by e: hb_ctx_fail(ctx, e), but rc (with e's
 * message, else harvbk_strerror(rc)) when e holds no code, so a failing call
 * never returns 0 nor leaves the thread's last error unset. 0 when rc is 0. */
int hb_ctx_fail_rc(harvbk_ctx *ctx, int rc, const hb_err *e);
/* Public function `fn` given a NULL or invalid context: HARVBK_E_INVALID with
 * "fn: ctx is NULL" (or "... is not a valid context") as the thread's last
 * error. */
int hb_ctx_bad(const harvbk_ctx *ctx, const char *fn);
/* Common entry check of public functions taking a context. */
bool hb_ctx_ok(const harvbk_ctx *ctx);

/* Open target + store for cfg (no reference counting; for set_target). */
/* Open the store of cfg; create=true only when the user sets the target. */
/* An encrypted store's key comes from cfg, or is `reuse` (the store key the
 * context unlocked already: store/store.h hb_store_open_key); HARVBK_E_KEY
 * when missing or wrong. */
int hb_ctx_open_store(harvbk_ctx *ctx, const hb_target_cfg *cfg, bool create,
                      hb_store_crypt *reuse, hb_store **out, hb_err *e);
/* Take a reference on the context's store, opening it on first use.
 * HARVBK_E_NOTARGET when no target is configured. */
int hb_ctx_store_acquire(harvbk_ctx *ctx, hb_store_ref **out, hb_err *e);
void hb_ctx_store_release(harvbk_ctx *ctx, hb_store_ref *ref);
/* A reference to the context's store when it is open, else NULL: never opens
 * one (no request, no wait). Released with hb_ctx_store_release(). */
hb_store_ref *hb_ctx_store_peek(harvbk_ctx *ctx);

/* The registry. add fails with HARVBK_E_BUSY / HARVBK_E_EXISTS when it
 * conflicts (WRITE/READ vs DELETE, WRITE vs WRITE, NEWVM vs NEWVM). */
int hb_ctx_use_add(harvbk_ctx *ctx, int kind, const char *ns, const char *name, hb_err *e);
void hb_ctx_use_del(harvbk_ctx *ctx, int kind, const char *ns, const char *name);

/* The context's writer lease on st, shared by its running backups. */
int hb_ctx_writer_lease_get(harvbk_ctx *ctx, hb_store *st, hb_err *e);
/* 0 while the writer lease stayed alive; HARVBK_E_BUSY when it lapsed. */
int hb_ctx_writer_lease_check(harvbk_ctx *ctx, hb_err *e);
void hb_ctx_writer_lease_put(harvbk_ctx *ctx);

/* ---- crash recovery at open (ctx.c) ---- */
/* Sweep the state directory's dead temporaries, recover interrupted backup
 * and snapshot records (against the snapshot store) and restore journals. */
int hb_recovery_scan(harvbk_ctx *ctx, hb_err *e);

/* ---- the local snapshot store (snapshot_store.c) ---- */
/* Open the context's snapshot store as a new store reference (refs 1, released
 * with hb_ctx_store_release()). `owner` names the writer's temporaries (NULL:
 * ctx->owner). With create false and no store yet: HARVBK_E_NOTFOUND. Pending
 * cleanups of dead snapshot writers run when it is opened. */
int hb_snapstore_open(harvbk_ctx *ctx, const char *owner, bool create, hb_store_ref **out,
                      hb_err *e);
/* Forget the snapshot store's cached store key (its settings or key changed). */
void hb_snapstore_forget_key(harvbk_ctx *ctx);
/* The snapshot store's target and the configuration its store is opened
 * with (key settings and session key included); HARVBK_E_NOTFOUND when it
 * does not exist yet. */
int hb_snapstore_target(harvbk_ctx *ctx, hb_target **out_t, hb_target_cfg *out_cfg, hb_err *e);
/* The store of an entry kind: the target's (shared) or a new snapshot store ref. */
int hb_kind_store_acquire(harvbk_ctx *ctx, int kind, bool create, hb_store_ref **out, hb_err *e);

/* ---- quotas (quota.c) ---- */
/* Limits of namespace ns and VM ns/vm (*has_* false when none). */
int hb_quota_limits(harvbk_ctx *ctx, const char *ns, const char *vm, bool *has_ns,
                    uint64_t *ns_limit, bool *has_vm, uint64_t *vm_limit, hb_err *e);
/* Usage of namespace ns and VM ns/vm in st, plus the chunks of `extra`
 * indexes (a snapshot about to be committed; may be NULL). Either out may be
 * NULL. */
int hb_quota_usage(hb_store *st, const char *ns, const char *vm, const hb_index *extra,
                   size_t nextra, uint64_t *out_ns, uint64_t *out_vm, hb_err *e);
/* Refuse (HARVBK_E_QUOTA) a snapshot or backup of VM ns/vm whose namespace
 * or VM usage is already at or over its limit. `what` names the operation.
 * *out_* (may be NULL) receive the limits and usages for later checks. */
typedef struct hb_quota_state {
    bool has_ns, has_vm;
    uint64_t ns_limit, vm_limit, ns_usage, vm_usage;
} hb_quota_state;
int hb_quota_check_start(harvbk_ctx *ctx, const char *ns, const char *vm, const char *what,
                         hb_quota_state *out, hb_err *e);
/* Serialises quota decisions + commits of snapshots in namespace ns across
 * threads and processes (blocking flock on locks/<ns>.quota.lock). */
int hb_quota_lock(harvbk_ctx *ctx, const char *ns, int *out_fd, hb_err *e);
void hb_quota_unlock(int fd);

/* ---- operations (op.c) ---- */
typedef int (*hb_op_run_fn)(harvbk_op *op, hb_err *e);
typedef void (*hb_op_free_fn)(void *job);

struct harvbk_op {
    uint32_t magic;
    const char *kind;              /* "backup", "restore", "verify", "gc" */
    pthread_mutex_t mu;
    pthread_cond_t cv;             /* CLOCK_MONOTONIC */
    int state;                     /* guarded by mu */
    int result;
    char errmsg[HB_ERRMSG_MAX];
    _Atomic uint64_t done, total;
    atomic_int cancel;             /* the engine's job->cancel */
    atomic_uint refs;              /* user handle + ctx list */

    pthread_mutex_t join_mu;
    pthread_t thread;
    bool started, joined;

    harvbk_ctx *ctx;               /* guarded by mu; NULL once the ctx let go */
    harvbk_op *next;               /* ctx->ops, guarded by ctx->mu */

    harvbk_progress_cb progress_cb;
    void *progress_payload;
    /* The progress thread (op.c), started with the op when progress_cb is
     * set: the only thread that calls progress_cb, with no lock held. */
    pthread_mutex_t prog_mu;
    pthread_cond_t prog_cv;        /* CLOCK_MONOTONIC */
    pthread_t prog_thread;
    bool prog_started;
    bool prog_stop, prog_final;    /* guarded by prog_mu */
    unsigned prog_flush_req, prog_flush_done; /* guarded by prog_mu */
    atomic_bool prog_vetoed;       /* progress_cb returned non-zero */

    hb_op_run_fn run;              /* runs on the op thread; owns and frees job */
    hb_op_free_fn free_job;        /* frees job when the op never started */
    void *job;
    hb_store_ref *sref;            /* store reference held while running */

    uint64_t gc_chunks, gc_bytes;  /* gc results */
    char **retained;               /* replace-restore: kept previous volumes */
    size_t nretained;              /* (set before the op is reported finished) */
    struct hb_sched_pass *sched;   /* kind "schedule": its runs (freed with the op) */
    char what[200];                /* "backup ns/name of VM ns/vm": shown to other processes */
    hb_opreg reg;                  /* registered while running (maintenance.c) */
};

/* New op (not started). sref is taken over (released when the op ends). */
int hb_op_new(harvbk_op **out, harvbk_ctx *ctx, const char *kind, hb_store_ref *sref,
              harvbk_progress_cb cb, void *payload, hb_op_run_fn run, hb_op_free_fn free_job,
              void *job, hb_err *e);
/* Start the thread. On failure nothing ran: the caller undoes its own work
 * and calls hb_op_discard(). */
int hb_op_start(harvbk_op *op, hb_err *e);
/* Free an op that was never started (frees its job, releases sref). */
void hb_op_discard(harvbk_op *op);
/* Fill a job for the engine that reports progress through op. */
void hb_op_job(harvbk_op *op, hb_store *st, hb_job *job);
/* Progress. Workers only add to op->done (atomically; the default engine
 * hook below); the op's progress thread reads op->done / op->total and calls
 * the caller's progress_cb at most every HB_PROGRESS_INTERVAL_MS, with no
 * library lock held, never concurrently, never after the op ended. When
 * run() succeeds it makes one last call if the counters changed since the
 * previous one (or there was none), with done == total. A non-zero return
 * sets op->cancel (and no call follows). */
#define HB_PROGRESS_INTERVAL_MS 100u
/* The default engine progress hook (ud = op): adds delta to op->done;
 * non-zero once the op is cancelled. */
int hb_op_progress(uint64_t delta, void *ud);
/* Wait until the progress hook has been told the counters as they are now
 * (a call is made unless they are what it was last told; the interval is
 * kept). For the op's thread, before a step it cannot undo (a commit, a
 * sweep): the caller then checks hb_op_cancelled(), so a hook that says
 * stop there still cancels the op. A hook that blocks holds the op here.
 * No-op without a progress_cb. */
void hb_op_progress_flush(harvbk_op *op);
bool hb_op_cancelled(harvbk_op *op);
/* Public function `fn` given a NULL or invalid operation: HARVBK_E_INVALID
 * with "fn: op is NULL" (or "... is not a valid operation") as the thread's
 * last error. */
int hb_op_bad(const harvbk_op *op, const char *fn);
/* harvbk_ctx_free: cancel every op of ctx, join their threads, detach them. */
void hb_op_ctx_release_all(harvbk_ctx *ctx);
/* Sleep up to ms, returning early (true) when cancelled. */
bool hb_op_sleep(harvbk_op *op, uint64_t ms);

/* ---- ranges (ranges.c) ---- */
typedef struct hb_ranges_vol {
    char *volume;
    hb_range *r;
    size_t n, cap;
} hb_ranges_vol;
struct harvbk_ranges {
    hb_ranges_vol *v;
    size_t n, cap;
};
/* The raw ranges of a volume, NULL when the volume is absent from the set. */
const hb_ranges_vol *hb_ranges_find(const harvbk_ranges *rg, const char *volume);

/* ---- the metadata rewrite hook (rewrite.c) ---- */
typedef struct hb_rw_volume {
    const char *name, *claim, *path; /* claim NULL for a replace */
} hb_rw_volume;
struct harvbk_metadata_rewrite {
    const void *in;
    size_t in_len;
    const char *src_ns, *src_vm;     /* the VM the source was taken of */
    const char *ns, *vm;             /* the VM being created or replaced */
    bool keep_mac, replace;
    const hb_rw_volume *vols;
    size_t nvols;
    hb_buf out;                      /* set by harvbk_metadata_rewrite_set_output */
    bool has_out;
};
void hb_rewrite_init(harvbk_metadata_rewrite *rw);
void hb_rewrite_clear(harvbk_metadata_rewrite *rw);
/* Call cb (NULL: the default) and put the resulting document into result. */
int hb_rewrite_run(harvbk_metadata_rewrite *rw, harvbk_metadata_rewrite_cb cb, void *payload,
                   hb_buf *result, hb_err *e);

/* ---- backups (backup_info.c) ---- */
/* Locate the manifest of backup ns/name in st: 0 and *m filled, or
 * HARVBK_E_NOTFOUND / HARVBK_E_STATE (a local record says the backup is
 * InProgress or Error) / HARVBK_E_CORRUPT / HARVBK_E_FORMAT, with a message. */
int hb_backup_manifest_load(harvbk_ctx *ctx, hb_store *st, const char *ns, const char *name,
                            hb_manifest *m, hb_err *e);
/* The same for an entry kind; and get / list / delete / verify per kind
 * (the public backup and snapshot functions are wrappers). */
int hb_entry_manifest_load(harvbk_ctx *ctx, hb_store *st, int kind, const char *ns,
                           const char *name, hb_manifest *m, hb_err *e);
/* `fn` is the public function's name, for messages about its arguments. */
int hb_entry_get(const char *fn, harvbk_backup_info **out, harvbk_ctx *ctx, int kind,
                 const char *ns, const char *name);
int hb_entry_list(const char *fn, harvbk_backup_list **out, harvbk_ctx *ctx, int kind);
int hb_entry_delete(const char *fn, harvbk_ctx *ctx, int kind, const char *ns, const char *name);
int hb_entry_verify(const char *fn, harvbk_op **out, harvbk_ctx *ctx, int kind, const char *ns,
                    const char *name, const harvbk_op_options *opts);

/* ---- the freeze window: capturing volumes (capture.c) ---- */
enum { HB_CAPTURE_NONE = 0, HB_CAPTURE_REFLINK = 1, HB_CAPTURE_HOOK = 2 };
typedef struct hb_capture_hooks {
    harvbk_capture_cb capture_cb;         /* NULL: no hook */
    harvbk_capture_release_cb release_cb;
    void *payload;
    bool no_reflink;
} hb_capture_hooks;
/* One volume's capture. Zeroed with fd -1: none. */
typedef struct hb_capture {
    int method;          /* HB_CAPTURE_* */
    int fd;              /* the capture to read from; -1 */
    uint64_t size;       /* its size */
    char *path;          /* hook captures: the path the hook gave, until released */
} hb_capture;
/* "reflink", "hook", "" (none). */
const char *hb_capture_name(int method);
/* Capture volume i of vm by the first method that works: a reflink of the
 * regular file open on live_fd (-1 for callback volumes), else the capture
 * hook. 0 with c->method NONE when neither captured it. A reflink that does
 * not work is logged (debug) and passed over. The hook failing, or giving a
 * path that cannot be opened or is smaller than `need` bytes:
 * HARVBK_E_CALLBACK, with c still holding the capture to release. */
int hb_capture_volume(const hb_capture_hooks *h, const harvbk_vm *vm, size_t i, int live_fd,
                      uint64_t need, const hb_logger *log, hb_capture *c, hb_err *e);
/* Close c's descriptor and, for a hook capture, call the release hook: once,
 * however often this is called. 0, or HARVBK_E_CALLBACK when it failed. */
int hb_capture_release(const hb_capture_hooks *h, const harvbk_vm *vm, size_t i, hb_capture *c,
                       hb_err *e);

/* ---- writing backups and snapshots (backup.c) ---- */
typedef struct hb_writer_params {
    int kind;
    unsigned flags;              /* HARVBK_BACKUP_* (snapshot.c maps HARVBK_SNAPSHOT_*) */
    const harvbk_ranges *changed_ranges; /* backups only */
    harvbk_progress_cb progress_cb;
    void *progress_payload;
    harvbk_freeze_cb freeze_cb, thaw_cb;
    void *freeze_payload;
    harvbk_capture_cb capture_cb;            /* the freeze window (capture.c) */
    harvbk_capture_release_cb release_cb;
    void *capture_payload;
    uint32_t freeze_deadline_ms;             /* 0: none */
    const char *schedule;        /* the schedule making it (same namespace); NULL: none */
} hb_writer_params;
int hb_writer_start(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                    const hb_writer_params *p, hb_err *e);

/* ---- removing chunks nobody references (snapshot.c) ---- */
/* With no live writer lease on st (else 0 with nothing done and *out_skipped
 * true): delete the chunks among `cand` that no committed entry of
 * `kind_dir` references. Holds a gc lease meanwhile. */
int hb_sweep_candidates(harvbk_ctx *ctx, hb_store *st, const char *kind_dir, hb_dset *cand,
                        uint64_t *out_chunks, uint64_t *out_bytes, bool *out_skipped,
                        hb_err *e);

/* ---- schedules (schedule.c, schedule_run.c) ---- */
struct hb_sched_rec;
typedef struct hb_sched_pass hb_sched_pass;
void hb_sched_pass_free(hb_sched_pass *pass);
/* Namespace + schedule name checks (the name leaves room for the suffix). */
int hb_sched_check_name(const char *ns, const char *name, hb_err *e);
/* First firing of r's cron after after_ms. */
int hb_sched_next(const struct hb_sched_rec *r, int64_t after_ms, int64_t *out, hb_err *e);
/* HARVBK_SCHEDULE_RUN_* of a history item state. */
int hb_sched_public_state(int item_state);
/* Suspend (by "user"/"maintenance"...) or resume one schedule's flag only. */
int hb_sched_set_suspended(harvbk_ctx *ctx, const char *ns, const char *name, bool suspend,
                           const char *by, const char *reason, bool *changed, hb_err *e);
/* At open: settle the history items that processes which died left
 * InProgress (local records only; no target access). */
void hb_sched_recover(harvbk_ctx *ctx);
/* The checks of run options (a copy of the caller's): flags, hooks that need
 * their pair. HARVBK_E_INVALID with a message. */
int hb_sched_run_opts_check(const harvbk_schedule_run_options *opts, hb_err *e);
/* Delete the entries of a schedule's failed runs (HARVBK_E_BUSY when one is in use). */
int hb_sched_delete_failed(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e);

/* ---- maintenance mode (maintenance.c) ---- */
/* HARVBK_E_MAINTENANCE (naming `what`) while the state directory is in
 * maintenance mode. */
int hb_maintenance_check(harvbk_ctx *ctx, const char *what, hb_err *e);
/* Register op in the state directory's operations (visible to every process),
 * then refuse it (HARVBK_E_MAINTENANCE) in maintenance mode, unless a verify. */
int hb_op_register(harvbk_ctx *ctx, harvbk_op *op, hb_err *e);

/* ---- images (image.c, docs/IMAGES.md) ---- */
/* An image a backup or snapshot records (as registered in its context). */
typedef struct hb_img_rec {
    harvbk_image *img;
} hb_img_rec;
/* At a writer's start: the registered images vm refers to (NS/NAME or NAME
 * references, each once); an unregistered one is logged (warning) and not
 * recorded. `what` names the backup in messages. */
int hb_images_collect(harvbk_ctx *ctx, const harvbk_vm *vm, const char *what, hb_img_rec **out,
                      size_t *out_n, hb_err *e);
void hb_images_free(hb_img_rec *v, size_t n);
/* Before the commit: write the records to st's images area. */
int hb_images_store_write(harvbk_ctx *ctx, hb_store *st, const hb_img_rec *v, size_t n,
                          const char *what, hb_err *e);
/* Before a restore writes anything (caller's thread): every NS/NAME or NAME
 * reference of m that has a record in st (`where` = "target"/"snapshot
 * store") is found in the registry by name, else by the recorded display
 * name in its namespace, else recreated through the context's image hook and
 * registered; else HARVBK_E_IMAGE naming it (`src` names the backup).
 * References without a record (and opaque ones) are kept unchecked. *out
 * gets the references of the restored VM (m->nimages strings). */
int hb_images_resolve(harvbk_ctx *ctx, hb_store *st, const char *where, const hb_manifest *m,
                      const char *src, const char *new_ns, char ***out, size_t *out_n,
                      hb_err *e);

/* ---- the target (ctx_target.c) ---- */
/* harvbk_ctx_check_target without touching the context's message. */
int hb_ctx_check_target(harvbk_ctx *ctx, hb_err *e);

/* ---- the synced backup catalog (sync.c, docs/CATALOG.md) ---- */
#include "../state/synced.h"
/* Highest harvbk_sync_count value. */
#define HB_SYNC_COUNT_MAX 9
/* Sync the catalog with the target (res may be NULL). */
int hb_sync_run(harvbk_ctx *ctx, harvbk_sync_result *res, hb_err *e);
/* For the schedule runner: sync when the target's refresh_interval (seconds;
 * 0 = only on demand and when the target is set) has passed since the last
 * successful sync. *next_ms (may be NULL) receives when to call again (ms
 * since the epoch; 0 = no periodic sync is configured). Returns the sync's
 * result (0 when none was due). */
int hb_sync_if_due(harvbk_ctx *ctx, int64_t now_ms, int64_t *next_ms, hb_err *e);
/* Load the catalog; *usable when it describes the configured target and was
 * synced at least once. An unreadable catalog is logged and read as empty. */
int hb_sync_catalog_load(harvbk_ctx *ctx, hb_synced *c, bool *usable);
/* A backup of this context became Ready / was deleted: update the catalog
 * (failures are logged; the next sync repairs them). */
void hb_sync_note_ready(harvbk_ctx *ctx, hb_store *st, const hb_manifest *m);
void hb_sync_note_deleted(harvbk_ctx *ctx, const char *ns, const char *name);
/* A delete failed with e (the target unreachable): mark it pending in the
 * catalog. Returns HARVBK_E_TARGET with a "pending" message when it was
 * deferred, else e->code untouched. */
int hb_sync_defer_delete(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e);
bool hb_sync_delete_pending(harvbk_ctx *ctx, const char *ns, const char *name);
int hb_synced_entry_from_manifest(hb_synced_entry *x, const hb_manifest *m, hb_synced_fp fp,
                                  int64_t now_ms);
/* The configured target is read-only (HARVBK_TARGET_READ_ONLY). */
bool hb_ctx_target_read_only(harvbk_ctx *ctx);

#endif
