/*
 * ops/ops.h - the ops layer: the implementation of the public API on top of
 * the engine, the store and the target. Internal; nothing here is exported.
 *
 * Files:
 *   options.c     options structs (*_options_init, version checks), state names
 *   ctx.c         contexts: state dir, logging, error messages, store refs, registry
 *   ctx_target.c  harvbk_ctx_set_target / get_target / check_target
 *   recovery.c    crash recovery of records a dead process left InProgress
 *   vm.c          harvbk_vm values
 *   catalog.c     the VM catalog in the state dir (vms/<ns>/<name>.json)
 *   record.c      local backup records (backups/<ns>/<name>.json) and their locks
 *   ranges.c      harvbk_ranges
 *   op.c          operation handles: thread, state, wait, cancel, progress
 *   backup.c      harvbk_backup_create (the backup operation)
 *   backup_info.c harvbk_backup_get/list and the info accessors/JSON
 *   backup_delete.c harvbk_backup_delete
 *   verify.c      harvbk_backup_verify
 *   gc.c          harvbk_gc
 *   restore.c     harvbk_restore_create / harvbk_snapshot_restore (new VM and replace)
 *   restore_journal.c  the journal that makes a killed restore recoverable
 *   restore_replace.c  the swap of a replace-restore and its journal
 *   rewrite.c     the metadata rewrite hook handle and the default KubeVirt rewrite
 *   snapshot.c    harvbk_snapshot_* (the writer is backup.c's, the readers
 *                 backup_info.c / verify.c / backup_delete.c, kind "snapshot")
 *   snapshot_store.c  the context's local snapshot store: where, how to open it
 *   quota.c       snapshot space quotas: limits file, usage, enforcement
 *   sync.c        the synced backup catalog: harvbk_target_sync, the periodic
 *                 sync, forget, deferred deletes (the file: state/synced.c)
 *
 * Locking order (outer first): ctx->target_mu -> ctx->mu -> op->mu;
 * ctx->cat_mu, ctx->lease_mu, ctx->err_mu and ctx->log_lock are leaves (no
 * other lock is taken while holding them, except that user log callbacks run
 * under the read side of log_lock).
 */
#ifndef HB_OPS_H
#define HB_OPS_H

#include "../core/hb.h"
#include "../engine/engine.h"
#include "../store/store.h"
#include "../target/config.h"
#include "../target/target.h"
#include <pthread.h>
#include <stdatomic.h>

#define HB_CTX_MAGIC 0x68624378u /* "hbCx" */
#define HB_OP_MAGIC 0x68624f70u  /* "hbOp" */
#define HB_OP_DEAD 0x64656164u   /* freed op */

/* File names inside the state directory. */
#define HB_STATE_FILE "harvbk-state.json"
#define HB_STATE_FORMAT 1
#define HB_TARGET_FILE "target.json"
#define HB_VMS_DIR "vms"
#define HB_RECORDS_DIR "backups"
#define HB_LOCKS_DIR "locks"
#define HB_RESTORES_DIR "restores"
#define HB_SNAP_RECORDS_DIR "snapshots"
#define HB_SNAPSTORE_FILE "snapshot-store.json"
#define HB_SNAPSTORE_DEFAULT_DIR "snapshot-store"
#define HB_QUOTAS_FILE "quotas.json"
/* The key prefix of snapshot entries in a store (docs/FORMAT.md). */
#define HB_KIND_SNAPSHOTS "snapshots"

/* What an entry is: a backup (in the target) or a snapshot (in the local
 * snapshot store). Records, locks and store keys depend on it. */
enum hb_entry_kind { HB_ENTRY_BACKUP = 0, HB_ENTRY_SNAPSHOT = 1 };
/* "backups" / "snapshots": the store's key prefix and the records directory. */
const char *hb_entry_dir(int kind);
/* "backup" / "snapshot" */
const char *hb_entry_word(int kind);
/* The store's config object in the target (store/store.h, docs/FORMAT.md). */
#define HB_STORE_CONFIG_KEY "harvbk-store.json"

/* Waiting for a gc of the target to end before a backup writes. */
#define HB_GC_WAIT_MS 60000u
#define HB_GC_POLL_MS 1000u
/* Age past which the target's temporaries of any owner are removed. */
#define HB_TEMP_MAX_AGE_S (24 * 3600)

/* ---- options (options.c) ---- */
/* HARVBK_E_VERSION for 0 or a version newer than `known`. */
int hb_opts_version_check(unsigned int version, unsigned int known, const char *what, hb_err *e);
/* Size of harvbk_restore_options in a (checked) version. */
size_t hb_restore_options_size(unsigned int version);

/* ---- VM values (vm.c) ---- */
typedef struct hb_vm_volume {
    char *name;
    char *path;                  /* NULL for callback/external volumes */
    uint64_t size;               /* callback volumes; catalog "external" volumes */
    harvbk_volume_read_cb read_cb;
    harvbk_volume_write_cb write_cb;
    void *payload;
} hb_vm_volume;

struct harvbk_vm {
    char *ns, *name;
    hb_vm_volume *vols;
    size_t nvols, capvols;
    hb_buf metadata;
    char **images;
    size_t nimages;
    harvbk_power_state power;
};

int hb_vm_dup(harvbk_vm **out, const harvbk_vm *src);
/* Append a volume (everything copied); HARVBK_E_EXISTS for a duplicate name. */
int hb_vm_push_volume(harvbk_vm *vm, const char *name, const char *path, uint64_t size,
                      harvbk_volume_read_cb rd, harvbk_volume_write_cb wr, void *payload);
const hb_vm_volume *hb_vm_find_volume(const harvbk_vm *vm, const char *name);

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

/* Owner strings of dead writers whose target leftovers must be removed when
 * the store with `store_id` is next opened (recovery.c). */
typedef struct hb_pending_owner {
    char *owner, *store_id;
    struct hb_pending_owner *next;
} hb_pending_owner;

struct harvbk_ctx {
    uint32_t magic;
    char *state_dir;
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
    hb_pending_owner *pending;
    harvbk_op *ops;             /* ops whose thread was not yet joined */
    unsigned nrunning;
    bool closing;
    bool gc_running;
    hb_use *uses;

    pthread_mutex_t cat_mu;     /* VM catalog read-modify-write */

    pthread_mutex_t lease_mu;   /* the context's shared writer lease */
    hb_lease *writer_lease;
    unsigned writer_refs;
    hb_store *writer_store;
};

/* Set the context's message from e (when e->code != 0); returns e->code. */
int hb_ctx_fail(harvbk_ctx *ctx, const hb_err *e);
/* Format a message, set it as the context's message, return code. */
int hb_ctx_failf(harvbk_ctx *ctx, int code, const char *fmt, ...) HB_PRINTF(3, 4);
/* Common entry check of public functions taking a context. */
bool hb_ctx_ok(const harvbk_ctx *ctx);

/* Open target + store for cfg (no reference counting; for set_target). */
/* Open the store of cfg; create=true only when the user sets the target. */
int hb_ctx_open_store(harvbk_ctx *ctx, const hb_target_cfg *cfg, bool create, hb_store **out,
                      hb_err *e);
/* Take a reference on the context's store, opening it on first use.
 * HARVBK_E_NOTARGET when no target is configured. */
int hb_ctx_store_acquire(harvbk_ctx *ctx, hb_store_ref **out, hb_err *e);
void hb_ctx_store_release(harvbk_ctx *ctx, hb_store_ref *ref);

/* The registry. add fails with HARVBK_E_BUSY / HARVBK_E_EXISTS when it
 * conflicts (WRITE/READ vs DELETE, WRITE vs WRITE, NEWVM vs NEWVM). */
int hb_ctx_use_add(harvbk_ctx *ctx, int kind, const char *ns, const char *name, hb_err *e);
void hb_ctx_use_del(harvbk_ctx *ctx, int kind, const char *ns, const char *name);

/* The context's writer lease on st, shared by its running backups. */
int hb_ctx_writer_lease_get(harvbk_ctx *ctx, hb_store *st, hb_err *e);
/* 0 while the writer lease stayed alive; HARVBK_E_BUSY when it lapsed. */
int hb_ctx_writer_lease_check(harvbk_ctx *ctx, hb_err *e);
void hb_ctx_writer_lease_put(harvbk_ctx *ctx);

/* "<state_dir>/<a>/<b>/<c>" style paths (NULL components end the list). */
char *hb_ctx_path(const harvbk_ctx *ctx, const char *a, const char *b, const char *c);

/* ---- crash recovery (recovery.c) ---- */
/* Remember owner/store_id for cleanup on the next store open (ctx->mu not held). */
int hb_recovery_remember(harvbk_ctx *ctx, const char *owner, const char *store_id);
/* Run the pending cleanups that belong to st (called when a store was opened). */
void hb_recovery_cleanup_store(harvbk_ctx *ctx, hb_store *st);
/* Only the temporaries and leases of dead writers remembered for st. */
void hb_recovery_cleanup_pending(harvbk_ctx *ctx, hb_store *st);
/* Scan all local records and turn dead InProgress ones into Error. */
int hb_recovery_scan(harvbk_ctx *ctx, hb_err *e);

/* ---- the local snapshot store (snapshot_store.c) ---- */
/* Open the context's snapshot store as a new store reference (refs 1, released
 * with hb_ctx_store_release()). `owner` names the writer's temporaries (NULL:
 * ctx->owner). With create false and no store yet: HARVBK_E_NOTFOUND. Pending
 * cleanups of dead snapshot writers run when it is opened. */
int hb_snapstore_open(harvbk_ctx *ctx, const char *owner, bool create, hb_store_ref **out,
                      hb_err *e);
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

/* ---- local backup records (record.c) ---- */
typedef struct hb_record_volume {
    char *name;
    uint64_t size;
} hb_record_volume;

typedef struct hb_record {
    int kind;                   /* enum hb_entry_kind; not stored in the file */
    char *ns, *name, *vm_ns, *vm_name;
    int state;                  /* harvbk_state */
    char *error;                /* "" when none */
    int error_code;
    int64_t created;
    uint64_t logical_bytes, uploaded_bytes, progress_bytes;
    char *owner, *store_id;
    bool crash_consistent;
    /* recovery made it Error without being able to look for its manifest
     * (the writer may have died after its commit): checked when its store
     * is next opened ("commit_unknown" in the file) */
    bool commit_unknown;
    hb_record_volume *vols;
    size_t nvols;
} hb_record;

void hb_record_clear(hb_record *r);
int hb_record_set_error(hb_record *r, int code, const char *msg);
int hb_record_read(harvbk_ctx *ctx, const char *ns, const char *name, hb_record *r, hb_err *e);
int hb_record_write(harvbk_ctx *ctx, const hb_record *r, hb_err *e);
int hb_record_remove(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e);
/* Calls cb for every readable record (unreadable ones are logged and skipped).
 * The record is cleared after cb returns; a non-zero cb return stops. */
typedef int (*hb_record_cb)(hb_record *r, void *ud);
int hb_record_foreach(harvbk_ctx *ctx, hb_record_cb cb, void *ud, hb_err *e);
/* The same for records of an entry kind (snapshots: "snapshots/<ns>/<name>.json";
 * hb_record_write() uses r->kind). */
int hb_record_read_k(harvbk_ctx *ctx, int kind, const char *ns, const char *name, hb_record *r,
                     hb_err *e);
int hb_record_remove_k(harvbk_ctx *ctx, int kind, const char *ns, const char *name, hb_err *e);
int hb_record_foreach_k(harvbk_ctx *ctx, int kind, hb_record_cb cb, void *ud, hb_err *e);

/* Record locks: an exclusive flock on <state>/locks/<ns>_<name>.lock held by
 * the process that writes the backup. 0 with *out_fd, HARVBK_E_BUSY when
 * another open file holds it. */
int hb_reclock_try(harvbk_ctx *ctx, const char *ns, const char *name, int *out_fd, hb_err *e);
void hb_reclock_release(harvbk_ctx *ctx, const char *ns, const char *name, int fd);
/* Reading a backup (restore, verify) holds a shared flock on
 * <state>/locks/<ns>_<name>.read.lock, deleting it an exclusive one, so that
 * no process on the state directory deletes a backup another one reads.
 * HARVBK_E_BUSY when the other kind holds it. */
int hb_readlock_try(harvbk_ctx *ctx, const char *ns, const char *name, bool exclusive,
                    int *out_fd, hb_err *e);
void hb_readlock_release(harvbk_ctx *ctx, const char *ns, const char *name, bool exclusive,
                         int fd);
/* The same per entry kind (snapshots: <ns>_<name>.snap.lock, .snap.read.lock). */
int hb_reclock_try_k(harvbk_ctx *ctx, int kind, const char *ns, const char *name, int *out_fd,
                     hb_err *e);
void hb_reclock_release_k(harvbk_ctx *ctx, int kind, const char *ns, const char *name, int fd);
int hb_readlock_try_k(harvbk_ctx *ctx, int kind, const char *ns, const char *name,
                      bool exclusive, int *out_fd, hb_err *e);
void hb_readlock_release_k(harvbk_ctx *ctx, int kind, const char *ns, const char *name,
                           bool exclusive, int fd);
/* The same for a restore into new VM ns/name: <state>/locks/<ns>_<name>.restore.lock,
 * held by the process restoring into that VM (HARVBK_E_BUSY when held). */
int hb_restore_lock_try(harvbk_ctx *ctx, const char *ns, const char *name, int *out_fd,
                        hb_err *e);
void hb_restore_lock_release(harvbk_ctx *ctx, const char *ns, const char *name, int fd);

/* If r is InProgress and nobody holds its lock, its writer died: make it
 * Error "interrupted" (persisted; owner remembered for target cleanup) - or
 * Ready when `st` (may be NULL: not known) is its store and holds its
 * manifest (the writer died after the commit). Returns 1 when changed. */
int hb_record_recover(harvbk_ctx *ctx, hb_record *r, hb_store *st, hb_err *e);
/* 1 when the manifest of backup ns/name is in st, 0 when not, < 0 on error. */
int hb_backup_committed(hb_store *st, const char *ns, const char *name, hb_err *e);
int hb_entry_committed(hb_store *st, int kind, const char *ns, const char *name, hb_err *e);
/* For records of st that recovery made Error with commit_unknown: Ready when
 * their manifest is in st (the writer died after its commit), else confirmed
 * Error; their writers' leftovers are queued for cleanup (hb_recovery_remember).
 * Called when a store was opened. */
void hb_recovery_fix_committed(harvbk_ctx *ctx, hb_store *st);

/* ---- restore journals (restore_journal.c) ----
 * "restores/<ns>/<name>.json" in the state directory records the files a
 * restore into new VM ns/name creates, so that the leftovers of a restore
 * whose process died (kill -9) can be removed: partial files always, and
 * volumes already moved into place unless the VM was registered. The writer
 * holds hb_restore_lock_try() while the journal exists. */
typedef struct hb_rj_volume {
    const char *name;            /* volume name */
    const char *part, *final;    /* DIR/.<name>.raw.part-<hex>, DIR/<name>.raw */
    uint64_t dev, ino;           /* of the part file, once written (phase "rename") */
} hb_rj_volume;
typedef struct hb_rjournal {
    const char *ns, *name;       /* the new VM */
    const char *dir;             /* absolute */
    bool renaming;               /* false: "write" phase, true: "rename" phase */
    const hb_rj_volume *vols;
    size_t n;
} hb_rjournal;
int hb_rjournal_write(harvbk_ctx *ctx, const hb_rjournal *j, hb_err *e);
/* Remove the journal of ns/name (absent is fine). */
int hb_rjournal_remove(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e);
/* With the restore lock of ns/name held: undo what the journal of a dead
 * restore into ns/name describes, then remove the journal. 0 when there was
 * none or it was recovered. */
int hb_rjournal_recover(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e);
/* At open: recover every journal whose restore lock nobody holds. */
int hb_rjournal_scan(harvbk_ctx *ctx, hb_err *e);
/* "<state>/restores/<ns>/<name>.json" (new string). */
char *hb_rjournal_path(harvbk_ctx *ctx, const char *ns, const char *name);
/* rename() that never replaces an existing file (-1 with errno EEXIST). */
int hb_rename_noreplace(const char *from, const char *to);

/* ---- replace-restores (restore_replace.c) ----
 * The same journal file, with "mode":"replace". Phases: "write" (only the
 * hidden partial files beside the old volumes exist), "swap" (every partial
 * file is complete and verified; old volumes are being moved aside and the
 * new ones moved into place), "commit" (all swapped; the journal holds the
 * VM's new catalog entry). Recovery rolls "write" and "swap" back (the old
 * volumes are put back where they were) and "commit" forward. */
typedef struct hb_rr_vol {
    const char *name;
    const char *part;            /* DIR/.<file>.restore-<hex> */
    const char *final;           /* the volume's path */
    const char *aside;           /* DIR/.<file>.old-<hex>, NULL: no old file */
    const char *retain;          /* retain policy: <final>.retained-<UTC time> */
    uint64_t dev, ino;           /* of the part file once written */
} hb_rr_vol;
typedef struct hb_rr_drop {      /* a previous volume the source lacks */
    const char *path;
    const char *retain;          /* retain policy */
} hb_rr_drop;
typedef struct hb_rrjournal {
    const char *ns, *name;
    const char *phase;
    bool retain;
    const hb_rr_vol *vols;
    size_t n;
    const hb_rr_drop *drops;
    size_t ndrops;
    const char *vm_json;         /* phase "commit": the new catalog entry */
} hb_rrjournal;
int hb_rrjournal_write(harvbk_ctx *ctx, const hb_rrjournal *j, hb_err *e);
/* Move each old volume aside and the new one into place. */
int hb_rr_swap(harvbk_ctx *ctx, const hb_rrjournal *j, hb_err *e);
/* Undo phases "write"/"swap": partial files removed, old volumes back in place. */
int hb_rr_rollback(harvbk_ctx *ctx, const hb_rrjournal *j, hb_err *e);
/* Phase "commit": register the new entry, then delete or retain the previous
 * volumes (the retained paths are returned when the pointers are not NULL). */
int hb_rr_finish(harvbk_ctx *ctx, const hb_rrjournal *j, char ***retained, size_t *nretained,
                 hb_err *e);
/* Recovery of a parsed replace journal of VM ns/name (restore lock held). */
struct cJSON;
int hb_rr_recover(harvbk_ctx *ctx, const char *ns, const char *name, const struct cJSON *root,
                  hb_err *e);

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

    hb_op_run_fn run;              /* runs on the op thread; owns and frees job */
    hb_op_free_fn free_job;        /* frees job when the op never started */
    void *job;
    hb_store_ref *sref;            /* store reference held while running */

    uint64_t gc_chunks, gc_bytes;  /* gc results */
    char **retained;               /* replace-restore: kept previous volumes */
    size_t nretained;              /* (set before the op is reported finished) */
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
/* The default engine progress hook (ud = op). */
int hb_op_progress(uint64_t delta, void *ud);
bool hb_op_cancelled(harvbk_op *op);
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

/* ---- VM catalog (catalog.c) ---- */
/* Save vm; with allow_external, volumes without a path are recorded by size
 * (a VM restored through write callbacks). */
int hb_catalog_put(harvbk_ctx *ctx, const harvbk_vm *vm, bool allow_external, hb_err *e);
int hb_catalog_get(harvbk_ctx *ctx, const char *ns, const char *name, harvbk_vm **out, hb_err *e);
/* 1 when registered, 0 when not, < 0 on error. */
int hb_catalog_exists(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e);
/* A catalog entry's JSON text (new string) and back. */
char *hb_catalog_encode(const harvbk_vm *vm);
int hb_catalog_decode(const void *data, size_t len, harvbk_vm **out, hb_err *e);

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
int hb_entry_get(harvbk_backup_info **out, harvbk_ctx *ctx, int kind, const char *ns,
                 const char *name);
int hb_entry_list(harvbk_backup_list **out, harvbk_ctx *ctx, int kind);
int hb_entry_delete(harvbk_ctx *ctx, int kind, const char *ns, const char *name);
int hb_entry_verify(harvbk_op **out, harvbk_ctx *ctx, int kind, const char *ns,
                    const char *name, const harvbk_op_options *opts);

/* ---- writing backups and snapshots (backup.c) ---- */
typedef struct hb_writer_params {
    int kind;
    unsigned flags;              /* HARVBK_BACKUP_* (== HARVBK_SNAPSHOT_*) */
    const harvbk_ranges *changed_ranges; /* backups only */
    harvbk_progress_cb progress_cb;
    void *progress_payload;
    harvbk_freeze_cb freeze_cb, thaw_cb;
    void *freeze_payload;
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
