/* state/recovery.h - crash recovery of records, and the cleanup of dead
 * writers' leftovers (recovery.c). */
#ifndef HB_STATE_RECOVERY_H
#define HB_STATE_RECOVERY_H

#include "../store/store.h"
#include "record.h"
#include "state.h"

/* If r is InProgress and nobody holds its lock, its writer died: make it
 * Error "interrupted" (persisted; owner remembered for target cleanup) - or
 * Ready when `st` (may be NULL: not known) is its store and holds its
 * manifest (the writer died after the commit). Returns 1 when changed. */
int hb_record_recover(hb_state *s, hb_record *r, hb_store *st, hb_err *e);
/* 1 when the manifest of backup ns/name is in st, 0 when not, < 0 on error. */
int hb_backup_committed(hb_store *st, const char *ns, const char *name, hb_err *e);
int hb_entry_committed(hb_store *st, int kind, const char *ns, const char *name, hb_err *e);
/* For records of st that recovery made Error with commit_unknown: Ready when
 * their manifest is in st (the writer died after its commit), else confirmed
 * Error; their writers' leftovers are queued for cleanup (hb_recovery_remember).
 * Called when a store was opened. */
void hb_recovery_fix_committed(hb_state *s, hb_store *st);

/* Remember owner/store_id for cleanup on the next store open (takes pend_mu). */
int hb_recovery_remember(hb_state *s, const char *owner, const char *store_id);
/* Run the pending cleanups that belong to st (called when a store was opened):
 * hb_recovery_fix_committed(), then hb_recovery_cleanup_pending(). */
void hb_recovery_cleanup_store(hb_state *s, hb_store *st, const char *self_owner);
/* Only the temporaries and leases of dead writers remembered for st; those of
 * `self_owner` (this context's own owner string) are left alone. */
void hb_recovery_cleanup_pending(hb_state *s, hb_store *st, const char *self_owner);

/* At open: remove the state directory's atomic-file temporaries of writers
 * that are gone. */
void hb_recovery_sweep_temporaries(hb_state *s);
/* At open: hb_record_recover() every InProgress record of `kind` (unreadable
 * or unrecoverable ones are logged and skipped). open_store (may be NULL) is
 * called once, before the first InProgress record, for the store to look for
 * their manifests in (its NULL result: not known). */
typedef hb_store *(*hb_recovery_store_fn)(void *ud);
int hb_recovery_scan_records(hb_state *s, int kind, hb_recovery_store_fn open_store, void *ud,
                             hb_err *e);

#endif
