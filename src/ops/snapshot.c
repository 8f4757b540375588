/*
 * ops/snapshot.c - harvbk_snapshot_*: VM snapshots in the context's local
 * snapshot store (snapshot_store.c). A snapshot is written exactly like a
 * backup (backup.c, kind HB_ENTRY_SNAPSHOT) and read, verified and deleted
 * like one (backup_info.c, verify.c, backup_delete.c); what is particular to
 * snapshots is here: the options, and freeing the chunks a deleted or failed
 * snapshot leaves unreferenced (the local store is the context's own, so
 * space is given back at once instead of waiting for a gc).
 */
#include "ops.h"
#include "../core/digestset.h"

#include <stdio.h>
#include <string.h>

#define SWEEP_BATCH 256

int harvbk_snapshot_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm,
                           const char *name, const harvbk_snapshot_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_snapshot_options o; /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_SNAPSHOT, &o, opts, &e);
    opts = &o;
    if (rc == 0 &&
        (opts->flags & ~(HARVBK_SNAPSHOT_ALLOW_CRASH_CONSISTENT | HARVBK_SNAPSHOT_NO_REFLINK)))
        rc = hb_seterr(&e, HARVBK_E_INVALID, "unknown snapshot flags 0x%x", opts->flags);
    if (rc == 0 && opts->freeze_cb && !opts->thaw_cb)
        rc = hb_seterr(&e, HARVBK_E_INVALID, "a freeze hook needs a thaw hook");
    if (rc == 0) {
        hb_writer_params p;
        memset(&p, 0, sizeof p);
        p.kind = HB_ENTRY_SNAPSHOT;
        p.flags = ((opts->flags & HARVBK_SNAPSHOT_ALLOW_CRASH_CONSISTENT)
                       ? HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT
                       : 0) |
                  ((opts->flags & HARVBK_SNAPSHOT_NO_REFLINK) ? HARVBK_BACKUP_NO_REFLINK : 0);
        p.capture_cb = opts->capture_cb;
        p.release_cb = opts->release_cb;
        p.capture_payload = opts->capture_payload;
        p.freeze_deadline_ms = opts->freeze_deadline_ms;
        p.progress_cb = opts->progress_cb;
        p.progress_payload = opts->progress_payload;
        p.freeze_cb = opts->freeze_cb;
        p.thaw_cb = opts->thaw_cb;
        p.freeze_payload = opts->freeze_payload;
        rc = hb_writer_start(out, ctx, vm, name, &p, &e);
    }
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_snapshot_get(harvbk_backup_info **out, harvbk_ctx *ctx, const char *namespace_,
                        const char *name)
{
    return hb_entry_get(__func__, out, ctx, HB_ENTRY_SNAPSHOT, namespace_, name);
}

int harvbk_snapshot_list_get(harvbk_backup_list **out, harvbk_ctx *ctx)
{
    return hb_entry_list(__func__, out, ctx, HB_ENTRY_SNAPSHOT);
}

int harvbk_snapshot_verify(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                           const char *name, const harvbk_op_options *opts)
{
    return hb_entry_verify(__func__, out, ctx, HB_ENTRY_SNAPSHOT, namespace_, name, opts);
}

int harvbk_snapshot_delete(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    return hb_entry_delete(__func__, ctx, HB_ENTRY_SNAPSHOT, namespace_, name);
}

/* ---- freeing chunks nobody references ---- */

typedef struct mark_ctx {
    hb_store *st;
    const char *kind;
    hb_dset *cand, *keep;
    hb_err *e;
} mark_ctx;

static int mark_entry(const char *ns, const char *name, void *ud)
{
    mark_ctx *mc = ud;
    hb_manifest m;
    hb_err me;
    hb_err_clear(&me);
    int rc = hb_store_manifest_read(mc->st, mc->kind, ns, name, &m, &me);
    if (rc == HARVBK_E_NOTFOUND)
        return 0; /* deleted meanwhile */
    if (rc) {
        *mc->e = me;
        return rc;
    }
    for (size_t v = 0; rc == 0 && v < m.nvols; v++) {
        hb_index ix;
        rc = hb_store_index_read(mc->st, mc->kind, &m, &m.vols[v], &ix, &me);
        if (rc) {
            *mc->e = me;
            break;
        }
        for (uint64_t i = 0; rc == 0 && i < ix.count; i++) {
            const uint8_t *id = hb_index_id(&ix, i);
            if (!hb_index_is_hole(&ix, i) && hb_dset_has(mc->cand, id) &&
                hb_dset_add(mc->keep, id) < 0)
                rc = hb_seterr(mc->e, HARVBK_E_NOMEM, NULL);
        }
        hb_index_clear(&ix);
    }
    hb_manifest_clear(&m);
    return rc;
}

int hb_sweep_candidates(harvbk_ctx *ctx, hb_store *st, const char *kind_dir, hb_dset *cand,
                        uint64_t *out_chunks, uint64_t *out_bytes, bool *out_skipped,
                        hb_err *e)
{
    (void)kind_dir; /* every kind is marked: a chunk any entry uses stays */
    *out_chunks = *out_bytes = 0;
    *out_skipped = false;
    uint8_t rnd[4];
    char rhex[9], owner[128];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, rhex);
    snprintf(owner, sizeof owner, "%s-g%s", ctx->owner, rhex);
    /* the lease protocol of docs/FORMAT.md section 9: publish, then look */
    hb_lease *lease = NULL;
    int rc = hb_lease_acquire(st, "gc", owner, &lease, e);
    if (rc)
        return rc;
    unsigned writers = 0;
    rc = hb_lease_count_live(st, "writer", NULL, &writers, e);
    if (rc == 0 && writers) {
        *out_skipped = true;
        hb_lease_release(lease);
        return 0;
    }
    hb_dset *keep = hb_dset_new(hb_dset_count(cand) + 16);
    if (rc == 0 && !keep)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    static const char *const kinds[] = { HB_KIND_BACKUPS, HB_KIND_SNAPSHOTS };
    for (size_t k = 0; rc == 0 && k < HB_ARRAY_LEN(kinds); k++) {
        mark_ctx mc = { st, kinds[k], cand, keep, e };
        rc = hb_store_entry_list(st, kinds[k], mark_entry, &mc, e);
    }
    if (rc)
        hb_err_prefix(e, "nothing removed");
    size_t pos = 0;
    const uint8_t *id;
    const char *keys[SWEEP_BATCH];
    char keybuf[SWEEP_BATCH][HB_CHUNK_KEY_LEN];
    size_t nk = 0;
    bool more = true;
    while (rc == 0 && more) {
        more = hb_dset_next(cand, &pos, &id);
        if (more && !hb_dset_has(keep, id)) {
            hb_chunk_key(id, keybuf[nk]);
            uint64_t size = 0;
            hb_err he;
            hb_err_clear(&he);
            if (hb_target_head(st->t, keybuf[nk], &size, &he) == 0) {
                keys[nk] = keybuf[nk];
                nk++;
                *out_bytes += size;
            }
        }
        if (nk && (nk == SWEEP_BATCH || !more)) {
            /* never delete once the lease may have lapsed: a writer may have
             * started without seeing it */
            if ((rc = hb_lease_check(lease, e)) == 0)
                rc = hb_target_del_many(st->t, keys, nk, e);
            if (rc == 0)
                *out_chunks += nk;
            nk = 0;
        }
    }
    if (rc)
        *out_bytes = 0;
    hb_dset_free(keep);
    hb_lease_release(lease);
    return rc;
}
