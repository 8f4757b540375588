/*
 * ops/recovery.c - crash recovery.
 *
 * When a process dies while writing a backup, three things are left behind:
 *   - its local record says InProgress (and nobody holds the record's flock);
 *   - the target may hold its temporary objects (partial uploads);
 *   - the target holds its writer lease until the lease's TTL runs out, which
 *     would make gc refuse for that long.
 * At open (and whenever a record is looked at) such records become Error
 * "interrupted"; their owner strings are remembered, and when the store they
 * belong to is next opened the owner's temporaries and lease are removed.
 * A writer may also die after its commit (the manifest) but before its record
 * said Ready: when the store is opened, "interrupted" records whose manifest
 * is there become Ready again. Ready means a manifest in the target.
 * Snapshots are recovered the same way at open, against the local snapshot
 * store, which is always at hand: an interrupted snapshot becomes Error (or
 * Ready when its manifest is there) and its writer's temporaries and lease in
 * the snapshot store are removed at once.
 * Restores killed midway are undone from their journals (restore_journal.c,
 * restore_replace.c).
 */
#include "ops.h"

#include <string.h>

int hb_recovery_remember(harvbk_ctx *ctx, const char *owner, const char *store_id)
{
    pthread_mutex_lock(&ctx->mu);
    for (hb_pending_owner *p = ctx->pending; p; p = p->next) {
        if (strcmp(p->owner, owner) == 0 && strcmp(p->store_id, store_id) == 0) {
            pthread_mutex_unlock(&ctx->mu);
            return 0;
        }
    }
    hb_pending_owner *p = hb_calloc(1, sizeof *p);
    if (p && (!(p->owner = hb_strdup(owner)) || !(p->store_id = hb_strdup(store_id)))) {
        hb_free(p->owner);
        hb_free(p);
        p = NULL;
    }
    if (!p) {
        pthread_mutex_unlock(&ctx->mu);
        return HARVBK_E_NOMEM;
    }
    p->next = ctx->pending;
    ctx->pending = p;
    pthread_mutex_unlock(&ctx->mu);
    return 0;
}

void hb_recovery_cleanup_store(harvbk_ctx *ctx, hb_store *st)
{
    /* records made Error before this store could be looked at */
    hb_recovery_fix_committed(ctx, st);
    hb_recovery_cleanup_pending(ctx, st);
}

void hb_recovery_cleanup_pending(harvbk_ctx *ctx, hb_store *st)
{
    /* take this store's entries out of the list, then work without the lock */
    hb_pending_owner *mine = NULL;
    pthread_mutex_lock(&ctx->mu);
    for (hb_pending_owner **pp = &ctx->pending; *pp;) {
        hb_pending_owner *p = *pp;
        if (strcmp(p->store_id, st->id) == 0) {
            *pp = p->next;
            p->next = mine;
            mine = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&ctx->mu);

    for (hb_pending_owner *p = mine; p; p = p->next) {
        hb_err e;
        hb_err_clear(&e);
        if (strcmp(p->owner, ctx->owner) != 0) {
            if (st->t->ops->cleanup &&
                st->t->ops->cleanup(st->t, p->owner, HB_TEMP_MAX_AGE_S, &e) != 0)
                hb_log_warn(&ctx->log, "cannot remove temporaries of interrupted writer %s: %s",
                            p->owner, e.msg);
            static const char *const roles[] = { "writer", "gc" };
            for (size_t i = 0; i < HB_ARRAY_LEN(roles); i++) {
                char *key = hb_asprintf("locks/%s-%s.json", roles[i], p->owner);
                hb_err_clear(&e);
                if (key && hb_target_del(st->t, key, &e) != 0)
                    hb_log_warn(&ctx->log, "cannot remove stale lease %s: %s", key, e.msg);
                hb_free(key);
            }
            hb_log_info(&ctx->log, "removed leftovers of interrupted writer %s from %s",
                        p->owner, st->t->display);
        }
    }
    while (mine) {
        hb_pending_owner *p = mine;
        mine = p->next;
        hb_free(p->owner);
        hb_free(p->store_id);
        hb_free(p);
    }
}

static int scan_one(hb_record *r, void *ud)
{
    harvbk_ctx *ctx = ud;
    hb_err e;
    hb_err_clear(&e);
    if (hb_record_recover(ctx, r, NULL, &e) < 0)
        hb_log_warn(&ctx->log, "cannot recover backup record %s/%s: %s", r->ns, r->name, e.msg);
    return 0;
}

typedef struct snap_scan {
    harvbk_ctx *ctx;
    hb_store_ref *ref;   /* opened on the first interrupted snapshot */
    bool tried;
} snap_scan;

static int scan_snap_one(hb_record *r, void *ud)
{
    snap_scan *ss = ud;
    if (r->state != HARVBK_STATE_INPROGRESS)
        return 0;
    hb_err e;
    hb_err_clear(&e);
    if (!ss->tried) {
        ss->tried = true;
        if (hb_snapstore_open(ss->ctx, NULL, false, &ss->ref, &e) != 0)
            hb_log_warn(&ss->ctx->log, "cannot open the snapshot store to recover interrupted "
                        "snapshots: %s", e.msg);
        hb_err_clear(&e);
    }
    if (hb_record_recover(ss->ctx, r, ss->ref ? ss->ref->st : NULL, &e) < 0)
        hb_log_warn(&ss->ctx->log, "cannot recover snapshot record %s/%s: %s", r->ns, r->name,
                    e.msg);
    return 0;
}

int hb_recovery_scan(harvbk_ctx *ctx, hb_err *e)
{
    int rc = hb_record_foreach(ctx, scan_one, ctx, e);
    if (rc == 0) {
        snap_scan ss = { ctx, NULL, false };
        rc = hb_record_foreach_k(ctx, HB_ENTRY_SNAPSHOT, scan_snap_one, &ss, e);
        if (ss.ref) { /* the dead snapshot writers' temporaries and leases */
            hb_recovery_cleanup_pending(ctx, ss.ref->st);
            hb_ctx_store_release(ctx, ss.ref);
        }
    }
    if (rc == 0)
        rc = hb_rjournal_scan(ctx, e);
    return rc;
}
