/*
 * ops/backup_delete.c - harvbk_backup_delete: the manifest first (the backup
 * stops being Ready at that instant), then its indexes; chunks are freed by gc.
 * Refused while a restore or verify reads it (any process on the state
 * directory: their shared read lock), or while a live writer (any process)
 * holds its record lock. Snapshots are deleted the same way from the local
 * snapshot store, which then also frees the chunks no other snapshot uses.
 */
#include "ops.h"
#include "../state/locks.h"
#include "../state/record.h"

#include <stdio.h>

#include <string.h>

static int delete_locked(harvbk_ctx *ctx, hb_store *st, int kind, const char *ns,
                         const char *name, hb_dset *cand, hb_err *e)
{
    const char *word = hb_entry_word(kind);
    char *mkey = hb_key_manifest(hb_entry_dir(kind), ns, name);
    if (!mkey)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    uint64_t size;
    int rc = hb_target_head(st->t, mkey, &size, e);
    hb_free(mkey);
    bool committed = rc == 0;
    if (rc && rc != HARVBK_E_NOTFOUND)
        return rc;
    hb_err_clear(e);

    /* the chunks the entry references: candidates for the sweep */
    if (committed && cand) {
        hb_manifest m;
        hb_err me;
        hb_err_clear(&me);
        if (hb_store_manifest_read(st, hb_entry_dir(kind), ns, name, &m, &me) == 0) {
            for (size_t v = 0; v < m.nvols; v++) {
                hb_index ix;
                if (hb_store_index_read(st, hb_entry_dir(kind), &m, &m.vols[v], &ix, &me) != 0)
                    continue;
                for (uint64_t i = 0; i < ix.count; i++)
                    if (!hb_index_is_hole(&ix, i))
                        hb_dset_add(cand, hb_index_id(&ix, i));
                hb_index_clear(&ix);
            }
            hb_manifest_clear(&m);
        }
    }

    hb_record r;
    bool local = hb_record_read_k(&ctx->state, kind, ns, name, &r, e) == 0;
    hb_err_clear(e);
    bool mine = local && r.store_id && strcmp(r.store_id, st->id) == 0;
    int state = local ? r.state : 0;
    if (local)
        hb_record_clear(&r);
    if (!committed && mine && state == HARVBK_STATE_READY) {
        /* deleted meanwhile by another context on the target: forget it */
        hb_record_remove_k(&ctx->state, kind, ns, name, e);
        mine = false;
    }
    if (!committed && !mine)
        return hb_seterr(e, HARVBK_E_NOTFOUND, "%s %s/%s not found in %s", word, ns, name,
                         kind == HB_ENTRY_SNAPSHOT ? "the snapshot store" : st->t->display);

    /* also removes the objects of an entry that failed before its commit */
    rc = hb_store_entry_delete(st, hb_entry_dir(kind), ns, name, e);
    if (rc)
        return hb_err_prefix(e, "cannot delete %s %s/%s", word, ns, name);
    if (mine && (rc = hb_record_remove_k(&ctx->state, kind, ns, name, e)) == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    }
    if (rc == 0)
        hb_log_info(&ctx->log, "%s %s/%s deleted (%s)", word, ns, name,
                    committed ? "Ready" : harvbk_state_name(state));
    return rc;
}

int hb_entry_delete(const char *fn, harvbk_ctx *ctx, int kind, const char *namespace_,
                    const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, fn);
    hb_err e;
    hb_err_clear(&e);
    bool snap = kind == HB_ENTRY_SNAPSHOT;
    int rc = hb_check_name("namespace", namespace_, &e);
    if (rc == 0)
        rc = hb_check_name(snap ? "snapshot name" : "backup name", name, &e);
    /* registered, then checked against maintenance mode (state/opreg.h) */
    hb_opreg reg = HB_OPREG_INIT;
    char what[200];
    snprintf(what, sizeof what, "delete %s %s/%s", hb_entry_word(kind), namespace_, name);
    if (rc == 0 && (rc = hb_opreg_add(ctx->state.dir, "delete", what, &reg, &e)) == 0)
        rc = hb_maintenance_check(ctx, what, &e);
    if (rc == 0 && !snap && hb_ctx_target_read_only(ctx))
        rc = hb_seterr(&e, HARVBK_E_READ_ONLY,
                       "the backup target is read-only: backup %s/%s is not deleted "
                       "(harvbk_backup_forget drops it from this context's catalog only)",
                       namespace_, name);
    hb_store_ref *ref = NULL;
    if (rc == 0)
        rc = hb_kind_store_acquire(ctx, kind, false, &ref, &e);
    if (rc == HARVBK_E_NOTFOUND)
        hb_seterr(&e, rc, "snapshot %s/%s not found", namespace_, name);
    if (!snap && (rc == HARVBK_E_TARGET || rc == HARVBK_E_TIMEOUT))
        rc = hb_sync_defer_delete(ctx, namespace_, name, &e);
    if (rc) {
        hb_opreg_remove(&reg);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    hb_dset *cand = snap ? hb_dset_new(1024) : NULL;
    /* backups also register in the process (clearer messages for threads of
     * one context); the flocks below decide across processes */
    bool used = false;
    if (snap && !cand)
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    if (rc == 0 && !snap) {
        rc = hb_ctx_use_add(ctx, HB_USE_DELETE, namespace_, name, &e);
        used = rc == 0;
    }
    if (rc == 0) {
        int fd = -1, rfd = -1;
        rc = hb_reclock_try_k(&ctx->state, kind, namespace_, name, &fd, &e);
        if (rc == 0) /* restores and verifies of other processes */
            rc = hb_readlock_try_k(&ctx->state, kind, namespace_, name, true, &rfd, &e);
        if (rc == 0)
            rc = delete_locked(ctx, ref->st, kind, namespace_, name, cand, &e);
        hb_readlock_release_k(&ctx->state, kind, namespace_, name, true, rfd);
        hb_reclock_release_k(&ctx->state, kind, namespace_, name, fd);
    }
    if (used)
        hb_ctx_use_del(ctx, HB_USE_DELETE, namespace_, name);
    if (rc == 0 && cand && hb_dset_count(cand)) {
        /* the local store is this context's: free the space right away */
        uint64_t chunks = 0, bytes = 0;
        bool skipped = false;
        hb_err se;
        hb_err_clear(&se);
        if (hb_sweep_candidates(ctx, ref->st, HB_KIND_SNAPSHOTS, cand, &chunks, &bytes, &skipped,
                                &se) != 0)
            hb_log_warn(&ctx->log, "snapshot %s/%s deleted; its chunks stay until the next "
                        "snapshot gc: %s", namespace_, name, se.msg);
        else if (skipped)
            hb_log_info(&ctx->log, "snapshot %s/%s deleted; a snapshot is being written, so its "
                        "chunks stay until the next snapshot gc", namespace_, name);
        else
            hb_log_info(&ctx->log, "snapshot %s/%s: %llu chunk(s), %llu bytes freed", namespace_,
                        name, (unsigned long long)chunks, (unsigned long long)bytes);
    }
    if (!snap && rc == 0)
        hb_sync_note_deleted(ctx, namespace_, name);
    else if (!snap && rc == HARVBK_E_NOTFOUND)
        hb_sync_note_deleted(ctx, namespace_, name); /* not in the target: a stale entry */
    else if (!snap && (rc == HARVBK_E_TARGET || rc == HARVBK_E_TIMEOUT))
        rc = hb_sync_defer_delete(ctx, namespace_, name, &e);
    hb_dset_free(cand);
    hb_ctx_store_release(ctx, ref);
    hb_opreg_remove(&reg);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_backup_delete(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    return hb_entry_delete(__func__, ctx, HB_ENTRY_BACKUP, namespace_, name);
}
