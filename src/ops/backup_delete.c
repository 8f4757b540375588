/*
 * ops/backup_delete.c - harvbk_backup_delete: the manifest first (the backup
 * stops being Ready at that instant), then its indexes; chunks are freed by gc.
 * Refused while a restore or verify reads it (any process on the state
 * directory: their shared read lock), or while a live writer (any process)
 * holds its record lock.
 */
#include "ops.h"

#include <string.h>

static int delete_locked(harvbk_ctx *ctx, hb_store *st, const char *ns, const char *name,
                         hb_err *e)
{
    char *mkey = hb_key_manifest(HB_KIND_BACKUPS, ns, name);
    if (!mkey)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    uint64_t size;
    int rc = hb_target_head(st->t, mkey, &size, e);
    hb_free(mkey);
    bool committed = rc == 0;
    if (rc && rc != HARVBK_E_NOTFOUND)
        return rc;
    hb_err_clear(e);

    hb_record r;
    bool local = hb_record_read(ctx, ns, name, &r, e) == 0;
    hb_err_clear(e);
    bool mine = local && r.store_id && strcmp(r.store_id, st->id) == 0;
    int state = local ? r.state : 0;
    if (local)
        hb_record_clear(&r);
    if (!committed && mine && state == HARVBK_STATE_READY) {
        /* deleted meanwhile by another context on the target: forget it */
        hb_record_remove(ctx, ns, name, e);
        mine = false;
    }
    if (!committed && !mine)
        return hb_seterr(e, HARVBK_E_NOTFOUND, "backup %s/%s not found in %s", ns, name,
                         st->t->display);

    /* also removes the objects of a backup that failed before its commit */
    rc = hb_store_entry_delete(st, HB_KIND_BACKUPS, ns, name, e);
    if (rc)
        return hb_err_prefix(e, "cannot delete backup %s/%s", ns, name);
    if (mine && (rc = hb_record_remove(ctx, ns, name, e)) == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    }
    if (rc == 0)
        hb_log_info(&ctx->log, "backup %s/%s deleted (%s)", ns, name,
                    committed ? "Ready" : harvbk_state_name(state));
    return rc;
}

int harvbk_backup_delete(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return HARVBK_E_INVALID;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_check_name("namespace", namespace_, &e);
    if (rc == 0)
        rc = hb_check_name("backup name", name, &e);
    hb_store_ref *ref = NULL;
    if (rc == 0)
        rc = hb_ctx_store_acquire(ctx, &ref, &e);
    if (rc)
        return hb_ctx_fail(ctx, &e);
    rc = hb_ctx_use_add(ctx, HB_USE_DELETE, namespace_, name, &e);
    if (rc == 0) {
        int fd = -1, rfd = -1;
        rc = hb_reclock_try(ctx, namespace_, name, &fd, &e);
        if (rc == 0) /* restores and verifies of other processes */
            rc = hb_readlock_try(ctx, namespace_, name, true, &rfd, &e);
        if (rc == 0)
            rc = delete_locked(ctx, ref->st, namespace_, name, &e);
        hb_readlock_release(ctx, namespace_, name, true, rfd);
        hb_reclock_release(ctx, namespace_, name, fd);
        hb_ctx_use_del(ctx, HB_USE_DELETE, namespace_, name);
    }
    hb_ctx_store_release(ctx, ref);
    return rc ? hb_ctx_fail(ctx, &e) : 0;
}
