/*
 * state/state.h - the state layer: the persistence of a context's state
 * directory (VM catalog, backup and snapshot records, their locks, crash
 * recovery of records, restore journals). Internal; nothing here is exported.
 *
 * It sits between store and ops: it uses core, target and store, and never
 * the ops layer (it knows no context, only an hb_state). tests/layers-check.sh
 * checks that.
 *
 * Files (one concern each, with their headers):
 *   state.c       the handle (hb_state), paths, entry kinds     state.h
 *   vm.c          harvbk_vm values                               vm.h
 *   catalog.c     the VM catalog (vms/<ns>/<name>.json)          catalog.h
 *   record.c      backup/snapshot records (backups|snapshots/<ns>/<name>.json)  record.h
 *   locks.c       record locks, read locks, restore locks (locks/)  locks.h
 *   recovery.c    crash recovery of records a dead process left InProgress,
 *                 dead writers' leftovers in a store, temporaries  recovery.h
 *   rjournal.c    restore journals (restores/<ns>/<name>.json)   rjournal.h
 *   rreplace.c    the swap of a replace-restore and its journal  rjournal.h
 *
 * Locking: cat_mu serialises read-modify-writes of the VM catalog; pend_mu
 * guards `pending`. Both are leaves (no other lock is taken while holding
 * them).
 */
#ifndef HB_STATE_H
#define HB_STATE_H

#include "../core/hb.h"
#include <pthread.h>

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

/* Age past which the target's temporaries of any owner are removed. */
#define HB_TEMP_MAX_AGE_S (24 * 3600)

/* What an entry is: a backup (in the target) or a snapshot (in the local
 * snapshot store). Records, locks and store keys depend on it. */
enum hb_entry_kind { HB_ENTRY_BACKUP = 0, HB_ENTRY_SNAPSHOT = 1 };
/* "backups" / "snapshots": the store's key prefix and the records directory. */
const char *hb_entry_dir(int kind);
/* "backup" / "snapshot" */
const char *hb_entry_word(int kind);

/* Owner strings of dead writers whose target leftovers must be removed when
 * the store with `store_id` is next opened (recovery.c). */
typedef struct hb_pending_owner {
    char *owner, *store_id;
    struct hb_pending_owner *next;
} hb_pending_owner;

typedef struct hb_state {
    char *dir;                 /* the state directory (owned, absolute) */
    hb_logger *log;            /* borrowed: the context's logger */
    pthread_mutex_t cat_mu;    /* VM catalog read-modify-write */
    pthread_mutex_t pend_mu;   /* guards pending */
    hb_pending_owner *pending;
} hb_state;

/* Create the directory `dir` if needed (0700; an existing one of ours that
 * group or others may access is made 0700, with a warning), resolve it to an
 * absolute path and check that it is writable. On failure s is left zeroed. */
int hb_state_init(hb_state *s, const char *dir, hb_logger *log, hb_err *e);
/* Free what s owns (pending owners included); a zeroed s is fine. */
void hb_state_fini(hb_state *s);
/* "<dir>/<a>/<b>/<c>" (NULL components end the list); new string */
char *hb_state_path(const hb_state *s, const char *a, const char *b, const char *c);

/* The state directory keeps one file per object: "<top>/<ns>/<name>.json".
 * Calls cb(ns, name, ud) for each such file whose namespace and name are valid
 * names (temporaries and hostile names are skipped), only in namespace
 * `only_ns` when it is not NULL. An absent top or namespace folder is empty; a
 * top that cannot be read is an error naming `what` ("the VM catalog"). A
 * non-zero cb return stops the walk and is returned. */
typedef int (*hb_state_walk_cb)(const char *ns, const char *name, void *ud);
int hb_state_walk(const char *top, const char *only_ns, const char *what, hb_state_walk_cb cb,
                  void *ud, hb_err *e);

#endif
