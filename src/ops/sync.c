/*
 * ops/sync.c - the synced backup catalog (docs/CATALOG.md): harvbk_target_sync,
 * the periodic sync (hb_sync_if_due), harvbk_backup_forget,
 * harvbk_backup_delete_ex, and the hooks that keep the catalog in step with
 * what this context writes and deletes. The catalog file itself is
 * state/synced.c.
 *
 * A sync costs one recursive listing of backups/ (ceil(objects / 1000) LIST
 * requests on S3) plus one GET per manifest that is new or whose listed size
 * or modification time changed; the indexes of Ready backups are checked
 * against the same listing. It never writes to the target, except to finish
 * deletions requested while the target was unreachable.
 */
#include "ops.h"
#include "../state/locks.h"
#include "../state/record.h"
#include "../core/workq.h"
#include "../state/synced.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harvbk_sync_result {
    uint64_t count[HB_SYNC_COUNT_MAX + 1];
    int64_t synced_at_ms;
};

/* ---- small helpers ---- */

bool hb_ctx_target_read_only(harvbk_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    bool ro = ctx->has_target && ctx->cfg.read_only;
    pthread_mutex_unlock(&ctx->mu);
    return ro;
}

/* Display URL of the configured target (new string), NULL when none. */
static char *target_display(harvbk_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    char *d = ctx->has_target ? hb_target_cfg_display(&ctx->cfg) : NULL;
    pthread_mutex_unlock(&ctx->mu);
    return d;
}

int hb_sync_catalog_load(harvbk_ctx *ctx, hb_synced *c, bool *usable)
{
    *usable = false;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_synced_load(ctx->state.dir, c, &e);
    if (rc == HARVBK_E_NOMEM)
        return rc;
    if (rc) {
        hb_log_warn(&ctx->log, "%s; the next sync rebuilds the catalog from the target", e.msg);
        hb_synced_init(c);
        return 0;
    }
    char *disp = target_display(ctx);
    *usable = disp && c->target && strcmp(disp, c->target) == 0 && c->synced_at_ms > 0;
    hb_free(disp);
    return 0;
}

/* ---- the listing ---- */

enum { LK_MANIFEST = 0, LK_INDEX = 1 };
typedef struct lkey {
    char *ns, *name, *vol; /* vol: LK_INDEX only */
    int what;
    hb_synced_fp fp;
} lkey;

typedef struct lscan {
    lkey *v;
    size_t n, cap;
    size_t prefix_len;
    uint64_t ignored;
    char first_ignored[128];
} lscan;

static int lkey_cmp(const void *a, const void *b)
{
    const lkey *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (c)
        return c;
    if ((c = strcmp(x->name, y->name)))
        return c;
    if (x->what != y->what)
        return x->what - y->what; /* the manifest first */
    return strcmp(x->vol ? x->vol : "", y->vol ? y->vol : "");
}

static void ignore_key(lscan *s, const char *key)
{
    if (s->ignored++ == 0)
        snprintf(s->first_ignored, sizeof s->first_ignored, "%s", key);
}

static int scan_cb(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    lscan *s = ud;
    const char *p = key + s->prefix_len; /* "<ns>/<name>/<leaf>" */
    const char *s1 = strchr(p, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!s1 || !s2) {
        ignore_key(s, key);
        return 0;
    }
    const char *leaf = s2 + 1;
    size_t nl = (size_t)(s1 - p), ml = (size_t)(s2 - s1 - 1), ll = strlen(leaf);
    char ns[64], name[64], vol[64];
    if (nl == 0 || nl >= sizeof ns || ml == 0 || ml >= sizeof name) {
        ignore_key(s, key);
        return 0;
    }
    memcpy(ns, p, nl);
    ns[nl] = '\0';
    memcpy(name, s1 + 1, ml);
    name[ml] = '\0';
    if (!hb_name_valid(ns) || !hb_name_valid(name)) { /* "..", "%2e", upper case, ... */
        ignore_key(s, key);
        return 0;
    }
    int what;
    if (strcmp(leaf, "manifest.json") == 0) {
        what = LK_MANIFEST;
        vol[0] = '\0';
    } else if (ll > 4 && ll - 4 < sizeof vol && strcmp(leaf + ll - 4, ".idx") == 0) {
        memcpy(vol, leaf, ll - 4);
        vol[ll - 4] = '\0';
        if (!hb_name_valid(vol))
            return 0;
        what = LK_INDEX;
    } else {
        return 0; /* claims and whatever a later format adds */
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        lkey *v = hb_realloc(s->v, cap * sizeof *v);
        if (!v)
            return HARVBK_E_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    lkey *k = &s->v[s->n];
    k->ns = hb_strdup(ns);
    k->name = hb_strdup(name);
    k->vol = what == LK_INDEX ? hb_strdup(vol) : NULL;
    k->what = what;
    k->fp = (hb_synced_fp){ size, mtime };
    if (!k->ns || !k->name || (what == LK_INDEX && !k->vol)) {
        hb_free(k->ns);
        hb_free(k->name);
        hb_free(k->vol);
        return HARVBK_E_NOMEM;
    }
    s->n++;
    return 0;
}

static void lscan_free(lscan *s)
{
    for (size_t i = 0; i < s->n; i++) {
        hb_free(s->v[i].ns);
        hb_free(s->v[i].name);
        hb_free(s->v[i].vol);
    }
    hb_free(s->v);
}

/* One listed backup: its manifest (if listed) and its index keys
 * (s->v[first .. first+count) sorted: manifest first, then indexes). */
typedef struct lentry {
    const char *ns, *name;
    bool has_manifest;
    hb_synced_fp fp;
    size_t first, count;
    bool deleted;        /* a pending deletion finished during this sync */
    /* fetch result */
    bool fetch, fetched;
    int fetch_rc;
    hb_synced_entry got;
} lentry;

static bool lentry_has_index(const lscan *s, const lentry *l, const char *vol)
{
    for (size_t i = l->first; i < l->first + l->count; i++)
        if (s->v[i].what == LK_INDEX && strcmp(s->v[i].vol, vol) == 0)
            return true;
    return false;
}

static lentry *lentry_find(lentry *v, size_t n, const char *ns, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid].ns, ns);
        if (!c)
            c = strcmp(v[mid].name, name);
        if (!c)
            return &v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- entries from manifests ---- */

int hb_synced_entry_from_manifest(hb_synced_entry *x, const hb_manifest *m, hb_synced_fp fp,
                                  int64_t now_ms)
{
    memset(x, 0, sizeof *x);
    hb_synced_entry tmp = {
        .ns = m->ns, .name = m->name, .vm_ns = m->vm_ns, .vm_name = m->vm_name,
        .writer = m->writer ? m->writer : (char *)"", .schedule = m->schedule,
        .error = (char *)"",
        .crash_consistent = m->crash_consistent, .thaw_failed = m->thaw_failed,
        .freeze = m->freeze,
        .created = m->created,
        .completed_ms = m->completed_ms, .logical = m->logical_bytes,
        .uploaded = m->uploaded_bytes, .fp = fp, .added_ms = now_ms,
    };
    hb_synced_vol *vols = m->nvols ? hb_calloc(m->nvols, sizeof *vols) : NULL;
    if (m->nvols && !vols)
        return HARVBK_E_NOMEM;
    for (size_t i = 0; i < m->nvols; i++) {
        vols[i] = (hb_synced_vol){ m->vols[i].name, m->vols[i].size, "" };
        memcpy(vols[i].capture, m->vols[i].capture, sizeof vols[i].capture);
    }
    tmp.vols = vols;
    tmp.nvols = m->nvols;
    int rc = hb_synced_entry_copy(x, &tmp);
    hb_free(vols);
    return rc;
}

/* An entry for a manifest that is listed but cannot be read. */
static int entry_unreadable(hb_synced_entry *x, const char *ns, const char *name,
                            hb_synced_fp fp, const char *msg, int64_t now_ms)
{
    hb_synced_entry tmp = { .ns = (char *)ns, .name = (char *)name, .vm_ns = (char *)ns,
                            .vm_name = (char *)"", .writer = (char *)"", .error = (char *)msg,
                            .unreadable = true, .fp = fp, .added_ms = now_ms };
    return hb_synced_entry_copy(x, &tmp);
}

/* ---- fetching manifests (in parallel) ---- */

typedef struct fetch_ctx {
    hb_store *st;
    int64_t now_ms;
} fetch_ctx;

static void fetch_one(void *job, void *arg)
{
    lentry *l = job;
    fetch_ctx *fc = arg;
    hb_manifest m;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_store_manifest_read(fc->st, HB_KIND_BACKUPS, l->ns, l->name, &m, &e);
    if (rc == 0) {
        if (strcmp(m.ns, l->ns) != 0 || strcmp(m.name, l->name) != 0) {
            char msg[HB_ERRMSG_MAX];
            snprintf(msg, sizeof msg, "the manifest of %s/%s names %s/%s", l->ns, l->name, m.ns,
                     m.name);
            rc = entry_unreadable(&l->got, l->ns, l->name, l->fp, msg, fc->now_ms);
        } else {
            rc = hb_synced_entry_from_manifest(&l->got, &m, l->fp, fc->now_ms);
        }
        hb_manifest_clear(&m);
    } else if (rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT) {
        rc = entry_unreadable(&l->got, l->ns, l->name, l->fp, e.msg, fc->now_ms);
    }
    l->fetch_rc = rc;
    l->fetched = rc == 0;
}

/* ---- the sync ---- */

typedef struct merge_ctx {
    harvbk_ctx *ctx;
    hb_store *st;
    const char *display;
    lscan *scan;
    lentry *le;
    size_t nle;
    int64_t list_ms, now_ms;
    uint64_t *count;
    hb_synced_entry *gone; /* copies of the entries marked gone by this sync */
    size_t ngone;
} merge_ctx;

static void check_indexes(merge_ctx *mc, hb_synced_entry *x, const lentry *l)
{
    if (x->unreadable)
        return;
    const char *missing = NULL;
    for (size_t v = 0; v < x->nvols && !missing; v++)
        if (!lentry_has_index(mc->scan, l, x->vols[v].name))
            missing = x->vols[v].name;
    if (missing) {
        if (!x->index_missing)
            hb_log_warn(&mc->ctx->log, "sync: backup %s/%s: the index of volume %s is missing "
                        "in %s", x->ns, x->name, missing, mc->display);
        char *msg = hb_asprintf("the index of volume %s is missing in the target", missing);
        if (msg) {
            hb_free(x->error);
            x->error = msg;
        }
        x->index_missing = true;
        mc->count[HARVBK_SYNC_INDEX_MISSING]++;
    } else if (x->index_missing) {
        x->index_missing = false;
        char *empty = hb_strdup("");
        if (empty) {
            hb_free(x->error);
            x->error = empty;
        }
    }
}

static int merge(hb_synced *c, void *ud, hb_err *e)
{
    merge_ctx *mc = ud;
    uint64_t *count = mc->count;
    if (c->store_id && *c->store_id && strcmp(c->store_id, mc->st->id) != 0) {
        hb_log_info(&mc->ctx->log, "sync: the catalog described store %s; rebuilding it for "
                    "store %s in %s", c->store_id, mc->st->id, mc->display);
        hb_synced_reset(c);
    }
    char *sid = hb_strdup(mc->st->id), *tgt = hb_strdup(mc->display);
    if (!sid || !tgt) {
        hb_free(sid);
        hb_free(tgt);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_free(c->store_id);
    hb_free(c->target);
    c->store_id = sid;
    c->target = tgt;

    for (size_t i = 0; i < mc->nle; i++) {
        lentry *l = &mc->le[i];
        if (!l->has_manifest || l->deleted)
            continue;
        hb_synced_tomb *t = hb_synced_tomb_find(c, l->ns, l->name);
        if (t) {
            if (hb_synced_fp_same(t->fp, l->fp)) {
                t->fp = l->fp;
                count[HARVBK_SYNC_SKIPPED]++;
                continue;
            }
            hb_log_info(&mc->ctx->log, "sync: forgotten backup %s/%s has a new manifest: "
                        "imported again", l->ns, l->name);
            hb_synced_tomb_remove(c, l->ns, l->name);
        }
        hb_synced_entry *x = hb_synced_find(c, l->ns, l->name);
        if (x && hb_synced_fp_same(x->fp, l->fp)) {
            x->fp = l->fp; /* adopts the mtime of an entry this context added */
            if (x->gone_ms) {
                x->gone_ms = 0;
                hb_log_info(&mc->ctx->log, "sync: backup %s/%s is back in the target", x->ns,
                            x->name);
            }
            count[HARVBK_SYNC_UNCHANGED]++;
            check_indexes(mc, x, l);
            continue;
        }
        if (!l->fetched)
            continue; /* changed after this sync looked (or vanished): the next one */
        bool had = x != NULL;
        bool pending = x && x->delete_pending;
        hb_synced_entry got;
        if (hb_synced_entry_copy(&got, &l->got) != 0)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        got.delete_pending = pending;
        got.added_ms = mc->now_ms;
        if (hb_synced_put(c, &got) != 0) {
            hb_synced_entry_clear(&got);
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        }
        count[had ? HARVBK_SYNC_UPDATED : HARVBK_SYNC_IMPORTED]++;
        x = hb_synced_find(c, l->ns, l->name);
        check_indexes(mc, x, l);
    }

    /* catalog entries whose manifest the listing did not show */
    for (size_t i = 0; i < c->n;) {
        hb_synced_entry *x = &c->v[i];
        lentry *l = lentry_find(mc->le, mc->nle, x->ns, x->name);
        if (l && l->has_manifest && !l->deleted) {
            i++;
            continue;
        }
        if (x->added_ms >= mc->list_ms) { /* entered after the listing started */
            i++;
            continue;
        }
        if (x->delete_pending || (l && l->deleted)) {
            hb_log_info(&mc->ctx->log, "sync: the pending deletion of backup %s/%s is done",
                        x->ns, x->name);
            count[HARVBK_SYNC_DELETED]++;
            hb_synced_remove(c, x->ns, x->name);
            continue;
        }
        if (x->gone_ms) {
            hb_log_info(&mc->ctx->log, "sync: backup %s/%s forgotten (its manifest is still "
                        "gone)", x->ns, x->name);
            count[HARVBK_SYNC_FORGOTTEN]++;
            hb_synced_remove(c, x->ns, x->name);
            continue;
        }
        x->gone_ms = mc->now_ms;
        hb_synced_entry *g = hb_realloc(mc->gone, (mc->ngone + 1) * sizeof *g);
        if (g) {
            mc->gone = g;
            if (hb_synced_entry_copy(&g[mc->ngone], x) == 0)
                mc->ngone++;
        }
        hb_log_warn(&mc->ctx->log, "sync: the manifest of backup %s/%s vanished from %s: "
                    "marked gone (forgotten after the next sync)", x->ns, x->name,
                    mc->display);
        count[HARVBK_SYNC_GONE]++;
        i++;
    }
    /* tombstones of manifests that are gone: nothing left to skip */
    for (size_t i = 0; i < c->nt;) {
        lentry *l = lentry_find(mc->le, mc->nle, c->t[i].ns, c->t[i].name);
        if ((!l || !l->has_manifest) && c->t[i].forgotten_ms < mc->list_ms)
            hb_synced_tomb_remove(c, c->t[i].ns, c->t[i].name);
        else
            i++;
    }
    c->synced_at_ms = mc->now_ms;
    return 1;
}

/* A backup the catalog held (so its writer committed it) vanished. A local
 * Error record of the same attempt (written by this context, not newer than
 * the manifest) is one that recovery made Error because it could not tell
 * whether its writer had committed before dying: the backup was Ready and
 * is deleted now, so the record must not reappear as a failed backup. */
static void settle_gone_records(harvbk_ctx *ctx, hb_store *st, const hb_synced_entry *gone,
                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const hb_synced_entry *x = &gone[i];
        size_t wl = x->writer ? strlen(x->writer) : 0;
        if (!wl)
            continue;
        hb_record r;
        hb_err e;
        hb_err_clear(&e);
        if (hb_record_read(&ctx->state, x->ns, x->name, &r, &e) != 0)
            continue;
        bool settle = r.state == HARVBK_STATE_ERROR && r.store_id &&
                      strcmp(r.store_id, st->id) == 0 && r.owner &&
                      strncmp(r.owner, x->writer, wl) == 0 && r.owner[wl] == '-' &&
                      r.created <= x->created;
        hb_record_clear(&r);
        int fd = -1;
        if (settle && hb_reclock_try(&ctx->state, x->ns, x->name, &fd, &e) == 0) {
            hb_record_remove(&ctx->state, x->ns, x->name, &e);
            hb_reclock_release(&ctx->state, x->ns, x->name, fd);
        }
    }
}

/* Finish the deletions asked for while the target was unreachable. */
static void finish_pending_deletes(harvbk_ctx *ctx, const hb_synced *snap, lentry *le, size_t nle,
                                   uint64_t *count)
{
    for (size_t i = 0; i < snap->n; i++) {
        const hb_synced_entry *x = &snap->v[i];
        if (!x->delete_pending)
            continue;
        lentry *l = lentry_find(le, nle, x->ns, x->name);
        if (!l || !l->has_manifest)
            continue; /* gone already: merge() drops the entry */
        int rc = hb_entry_delete("harvbk_target_sync", ctx, HB_ENTRY_BACKUP, x->ns, x->name);
        if (rc == 0) {
            l->deleted = true;
            count[HARVBK_SYNC_DELETED]++;
        } else {
            char msg[HB_ERRMSG_MAX];
            harvbk_ctx_errmsg_copy(ctx, msg, sizeof msg);
            hb_log_warn(&ctx->log, "sync: the pending deletion of backup %s/%s failed again: %s",
                        x->ns, x->name, msg);
        }
    }
}

int hb_sync_run(harvbk_ctx *ctx, harvbk_sync_result *res, hb_err *e)
{
    uint64_t count[HB_SYNC_COUNT_MAX + 1];
    memset(count, 0, sizeof count);
    uint64_t t0 = hb_mono_ms();
    hb_store_ref *ref = NULL;
    int rc = hb_ctx_store_acquire(ctx, &ref, e);
    if (rc)
        return hb_err_prefix(e, "sync");
    hb_store *st = ref->st;
    char *display = hb_strdup(st->t->display);
    lscan scan = { .prefix_len = strlen(HB_KIND_BACKUPS) + 1 };
    lentry *le = NULL;
    size_t nle = 0;
    hb_synced snap;
    hb_synced_init(&snap);
    int64_t list_ms = hb_now_ms();
    if (!display)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0) {
        rc = hb_target_list(st->t, HB_KIND_BACKUPS "/", scan_cb, &scan, e);
        if (rc == HARVBK_E_NOMEM)
            hb_seterr(e, rc, NULL);
        else if (rc)
            hb_err_prefix(e, "sync: cannot list the backups in %s", display);
    }
    if (rc == 0 && scan.ignored)
        hb_log_warn(&ctx->log, "sync: %llu key(s) in %s that are not backup objects were "
                    "ignored (first: '%s')", (unsigned long long)scan.ignored, display,
                    scan.first_ignored);
    /* group the keys per backup */
    if (rc == 0 && scan.n) {
        qsort(scan.v, scan.n, sizeof *scan.v, lkey_cmp);
        if (!(le = hb_calloc(scan.n, sizeof *le)))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        for (size_t i = 0; rc == 0 && i < scan.n; i++) {
            lkey *k = &scan.v[i];
            lentry *l = nle ? &le[nle - 1] : NULL;
            if (!l || strcmp(l->ns, k->ns) != 0 || strcmp(l->name, k->name) != 0) {
                l = &le[nle++];
                l->ns = k->ns;
                l->name = k->name;
                l->first = i;
            }
            l->count++;
            if (k->what == LK_MANIFEST) {
                l->has_manifest = true;
                l->fp = k->fp;
            }
        }
    }
    /* what to read: manifests that are new or changed */
    bool usable = false;
    if (rc == 0 && hb_sync_catalog_load(ctx, &snap, &usable) != 0)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    bool same_store = snap.store_id && strcmp(snap.store_id, st->id) == 0;
    if (rc == 0 && same_store)
        finish_pending_deletes(ctx, &snap, le, nle, count);
    size_t nfetch = 0;
    for (size_t i = 0; rc == 0 && i < nle; i++) {
        lentry *l = &le[i];
        if (!l->has_manifest || l->deleted)
            continue;
        if (same_store) {
            hb_synced_tomb *t = hb_synced_tomb_find(&snap, l->ns, l->name);
            if (t && hb_synced_fp_same(t->fp, l->fp))
                continue;
            hb_synced_entry *x = hb_synced_find(&snap, l->ns, l->name);
            if (x && hb_synced_fp_same(x->fp, l->fp))
                continue;
        }
        l->fetch = true;
        nfetch++;
    }
    int64_t now_ms = hb_now_ms();
    if (rc == 0 && nfetch) {
        fetch_ctx fc = { st, now_ms };
        unsigned threads = st->t->parallel ? st->t->parallel : 1;
        if (threads > 16)
            threads = 16;
        if (threads > nfetch)
            threads = (unsigned)nfetch;
        hb_workq *q = NULL;
        if (threads > 1 && hb_workq_new(&q, threads, 2 * threads, fetch_one, &fc) == 0) {
            for (size_t i = 0; i < nle; i++)
                if (le[i].fetch)
                    hb_workq_submit(q, &le[i]);
            hb_workq_free(q); /* drains */
        } else {
            for (size_t i = 0; i < nle; i++)
                if (le[i].fetch)
                    fetch_one(&le[i], &fc);
        }
        /* an unreachable target while reading: fail the sync, keep the catalog */
        for (size_t i = 0; rc == 0 && i < nle; i++) {
            int fr = le[i].fetch_rc;
            if (le[i].fetch && fr && fr != HARVBK_E_NOTFOUND)
                rc = hb_seterr(e, fr, "sync: cannot read the manifest of backup %s/%s in %s: %s",
                               le[i].ns, le[i].name, display, harvbk_strerror(fr));
        }
    }
    if (rc == 0) {
        merge_ctx mc = { ctx, st, display, &scan, le, nle, list_ms, hb_now_ms(), count,
                         NULL, 0 };
        rc = hb_synced_update(ctx->state.dir, &ctx->log, merge, &mc, e);
        if (rc == 0 && res)
            res->synced_at_ms = mc.now_ms;
        if (rc == 0)
            settle_gone_records(ctx, st, mc.gone, mc.ngone);
        for (size_t i = 0; i < mc.ngone; i++)
            hb_synced_entry_clear(&mc.gone[i]);
        hb_free(mc.gone);
    }
    count[HARVBK_SYNC_MANIFEST_READS] = nfetch;
    uint64_t ms = hb_mono_ms() - t0;
    if (rc == 0)
        hb_log_info(&ctx->log, "sync of %s: %llu imported, %llu updated, %llu gone, %llu "
                    "forgotten, %llu unchanged, %llu index(es) missing, %llu deletion(s) "
                    "finished; %llu manifest(s) read in %llu ms",
                    display, (unsigned long long)count[HARVBK_SYNC_IMPORTED],
                    (unsigned long long)count[HARVBK_SYNC_UPDATED],
                    (unsigned long long)count[HARVBK_SYNC_GONE],
                    (unsigned long long)count[HARVBK_SYNC_FORGOTTEN],
                    (unsigned long long)count[HARVBK_SYNC_UNCHANGED],
                    (unsigned long long)count[HARVBK_SYNC_INDEX_MISSING],
                    (unsigned long long)count[HARVBK_SYNC_DELETED], (unsigned long long)nfetch,
                    (unsigned long long)ms);
    if (res)
        memcpy(res->count, count, sizeof count);
    for (size_t i = 0; i < nle; i++)
        hb_synced_entry_clear(&le[i].got);
    hb_free(le);
    lscan_free(&scan);
    hb_synced_clear(&snap);
    hb_free(display);
    hb_ctx_store_release(ctx, ref);
    return rc;
}

/* ---- public: sync ---- */

int harvbk_target_sync(harvbk_ctx *ctx, harvbk_sync_result **out)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (out)
        *out = NULL;
    harvbk_sync_result *r = hb_calloc(1, sizeof *r);
    if (!r)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_sync_run(ctx, r, &e);
    if (rc) {
        hb_free(r);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    if (out)
        *out = r;
    else
        hb_free(r);
    return 0;
}

uint64_t harvbk_sync_result_count(const harvbk_sync_result *r, int what)
{
    if (!r || what < 1 || what > HB_SYNC_COUNT_MAX)
        return 0;
    return r->count[what];
}

int64_t harvbk_sync_result_synced_at(const harvbk_sync_result *r)
{
    return r ? r->synced_at_ms : 0;
}

void harvbk_sync_result_free(harvbk_sync_result *r)
{
    hb_free(r);
}

int hb_sync_if_due(harvbk_ctx *ctx, int64_t now_ms, int64_t *next_ms, hb_err *e)
{
    if (next_ms)
        *next_ms = 0;
    pthread_mutex_lock(&ctx->mu);
    bool has = ctx->has_target;
    int64_t interval_ms = (int64_t)ctx->cfg.refresh_interval * 1000;
    pthread_mutex_unlock(&ctx->mu);
    if (!has || interval_ms == 0)
        return 0; /* only on demand and when the target is set */
    hb_synced c;
    bool usable = false;
    if (hb_sync_catalog_load(ctx, &c, &usable) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int64_t last = usable ? c.synced_at_ms : 0;
    hb_synced_clear(&c);
    if (last && now_ms < last + interval_ms) {
        if (next_ms)
            *next_ms = last + interval_ms;
        return 0;
    }
    int rc = hb_sync_run(ctx, NULL, e);
    if (next_ms) /* after a failure: again in one interval, at most a minute */
        *next_ms = now_ms + (rc == 0 ? interval_ms : HB_MIN(interval_ms, (int64_t)60000));
    return rc;
}

/* ---- hooks of the writers and deleters ---- */

typedef struct note_ready {
    const char *store_id, *display;
    hb_synced_entry *x;
} note_ready;

static int note_ready_edit(hb_synced *c, void *ud, hb_err *e)
{
    note_ready *nr = ud;
    (void)e;
    if (c->store_id && *c->store_id && strcmp(c->store_id, nr->store_id) != 0)
        return 0; /* a catalog of another store: the next sync rebuilds it */
    if (!c->store_id || !*c->store_id) {
        hb_free(c->store_id);
        hb_free(c->target);
        c->store_id = hb_strdup(nr->store_id);
        c->target = hb_strdup(nr->display);
        if (!c->store_id || !c->target)
            return HARVBK_E_NOMEM;
    }
    hb_synced_tomb_remove(c, nr->x->ns, nr->x->name);
    return hb_synced_put(c, nr->x) == 0 ? 1 : HARVBK_E_NOMEM;
}

void hb_sync_note_ready(harvbk_ctx *ctx, hb_store *st, const hb_manifest *m)
{
    hb_buf enc = HB_BUF_INIT;
    hb_err e;
    hb_err_clear(&e);
    hb_synced_entry x;
    int rc = hb_manifest_encode(m, &enc, &e);
    /* the manifest's size is known, its mtime not: the next sync adopts it */
    if (rc == 0)
        rc = hb_synced_entry_from_manifest(&x, m, (hb_synced_fp){ enc.len, 0 },
                                           hb_now_ms());
    hb_buf_free(&enc);
    if (rc == 0) {
        note_ready nr = { st->id, st->t->display, &x };
        rc = hb_synced_update(ctx->state.dir, &ctx->log, note_ready_edit, &nr, &e);
        hb_synced_entry_clear(&x);
    }
    if (rc)
        hb_log_warn(&ctx->log, "backup %s/%s is Ready but not yet in the catalog (the next "
                    "sync adds it): %s", m->ns, m->name, e.msg[0] ? e.msg : harvbk_strerror(rc));
}

typedef struct name_edit {
    const char *ns, *name;
    int result;
    hb_synced_fp fp;
} name_edit;

static int drop_edit(hb_synced *c, void *ud, hb_err *e)
{
    name_edit *ne = ud;
    (void)e;
    return hb_synced_remove(c, ne->ns, ne->name) ? 1 : 0;
}

void hb_sync_note_deleted(harvbk_ctx *ctx, const char *ns, const char *name)
{
    name_edit ne = { ns, name, 0, { 0, 0 } };
    hb_err e;
    hb_err_clear(&e);
    if (hb_synced_update(ctx->state.dir, &ctx->log, drop_edit, &ne, &e) != 0)
        hb_log_warn(&ctx->log, "backup %s/%s deleted, but the catalog was not updated: %s", ns,
                    name, e.msg);
}

static int pending_edit(hb_synced *c, void *ud, hb_err *e)
{
    name_edit *ne = ud;
    (void)e;
    hb_synced_entry *x = hb_synced_find(c, ne->ns, ne->name);
    if (!x) {
        ne->result = HARVBK_E_NOTFOUND;
        return 0;
    }
    ne->result = 0;
    if (x->delete_pending)
        return 0;
    x->delete_pending = true;
    return 1;
}

int hb_sync_defer_delete(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e)
{
    char why[HB_ERRMSG_MAX];
    snprintf(why, sizeof why, "%s", e->msg);
    name_edit ne = { ns, name, HARVBK_E_NOTFOUND, { 0, 0 } };
    hb_err ue;
    hb_err_clear(&ue);
    if (hb_synced_update(ctx->state.dir, &ctx->log, pending_edit, &ne, &ue) != 0 ||
        ne.result != 0)
        return e->code; /* not in the catalog: nothing to defer */
    hb_log_warn(&ctx->log, "backup %s/%s: the target is unreachable; its deletion is pending "
                "and finishes on the next successful sync (%s)", ns, name, why);
    return hb_seterr(e, HARVBK_E_TARGET,
                     "the target is unreachable: the deletion of backup %s/%s is pending and "
                     "finishes on the next successful sync (%s)",
                     ns, name, why);
}

bool hb_sync_delete_pending(harvbk_ctx *ctx, const char *ns, const char *name)
{
    hb_synced c;
    bool usable;
    if (hb_sync_catalog_load(ctx, &c, &usable) != 0)
        return false;
    hb_synced_entry *x = hb_synced_find(&c, ns, name);
    bool pending = x && x->delete_pending;
    hb_synced_clear(&c);
    return pending;
}

int harvbk_backup_delete_ex(harvbk_ctx *ctx, const char *namespace_, const char *name,
                            int *out_deferred)
{
    if (out_deferred)
        *out_deferred = 0;
    int rc = hb_entry_delete(__func__, ctx, HB_ENTRY_BACKUP, namespace_, name);
    if (rc == HARVBK_E_TARGET && hb_sync_delete_pending(ctx, namespace_, name)) {
        if (out_deferred)
            *out_deferred = 1;
        return 0; /* the message of the context still says why */
    }
    return rc;
}

/* ---- forget ---- */

static int forget_edit(hb_synced *c, void *ud, hb_err *e)
{
    name_edit *ne = ud;
    (void)e;
    hb_synced_entry *x = hb_synced_find(c, ne->ns, ne->name);
    if (!x) {
        ne->result = HARVBK_E_NOTFOUND;
        return 0;
    }
    ne->fp = x->fp;
    if (hb_synced_tomb_put(c, ne->ns, ne->name, x->fp, hb_now_ms()) != 0)
        return HARVBK_E_NOMEM;
    hb_synced_remove(c, ne->ns, ne->name);
    ne->result = 0;
    return 1;
}

int harvbk_backup_forget(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_check_name("namespace", namespace_, &e);
    if (rc == 0)
        rc = hb_check_name("backup name", name, &e);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    name_edit ne = { namespace_, name, 0, { 0, 0 } };
    rc = hb_synced_update(ctx->state.dir, &ctx->log, forget_edit, &ne, &e);
    if (rc == HARVBK_E_NOMEM)
        hb_seterr(&e, rc, NULL);
    if (rc == 0 && ne.result == HARVBK_E_NOTFOUND)
        rc = hb_seterr(&e, HARVBK_E_NOTFOUND, "backup %s/%s is not in the catalog", namespace_,
                       name);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    hb_log_info(&ctx->log, "backup %s/%s forgotten: dropped from the catalog, left in the "
                "target (a sync brings it back only when its manifest changes)",
                namespace_, name);
    return 0;
}
