/*
 * ops/backup_info.c - reading backups: harvbk_backup_get / list, the info
 * accessors and JSON.
 *
 * The target's manifests are the truth for Ready backups (any context on the
 * same target sees them). This context's local records add what the target
 * cannot show: backups still InProgress (with progress) and failed ones
 * (Error, with the message) - only those that belong to the current store.
 * A manifest that cannot be read is listed in state Error with the reason.
 * Snapshots are read the same way from the local snapshot store (kind
 * HB_ENTRY_SNAPSHOT): harvbk_snapshot_get / list are thin wrappers here.
 */
#include "ops.h"
#include "../state/record.h"
#include "../state/recovery.h"
#include "../core/json.h"

#include <stdlib.h>
#include <string.h>

struct harvbk_backup_info {
    char *ns, *name, *vm_ns, *vm_name;
    int state;
    char *error;
    uint64_t logical, uploaded, progress;
    int64_t created;
    bool crash_consistent;
    bool thaw_failed;
    hb_freeze_rec freeze;       /* frozen_ms, capture */
    char *schedule;             /* NULL: not made by a schedule */
    hb_record_volume *vols;
    size_t nvols;
    unsigned flags;          /* HARVBK_BACKUP_FLAG_* */
    int64_t synced_at;       /* ms; catalog entries only */
};

struct harvbk_backup_list {
    harvbk_backup_info **v;
    size_t n;
    int64_t synced_at;       /* ms; backups only */
};

void harvbk_backup_info_free(harvbk_backup_info *info)
{
    if (!info)
        return;
    hb_free(info->ns);
    hb_free(info->name);
    hb_free(info->vm_ns);
    hb_free(info->vm_name);
    hb_free(info->error);
    hb_free(info->schedule);
    for (size_t i = 0; i < info->nvols; i++)
        hb_free(info->vols[i].name);
    hb_free(info->vols);
    hb_free(info);
}

static harvbk_backup_info *info_new(const char *ns, const char *name, const char *vm_ns,
                                    const char *vm_name, const char *error, size_t nvols)
{
    harvbk_backup_info *in = hb_calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->ns = hb_strdup(ns);
    in->name = hb_strdup(name);
    in->vm_ns = hb_strdup(vm_ns ? vm_ns : "");
    in->vm_name = hb_strdup(vm_name ? vm_name : "");
    in->error = hb_strdup(error ? error : "");
    in->vols = nvols ? hb_calloc(nvols, sizeof *in->vols) : NULL;
    if (!in->ns || !in->name || !in->vm_ns || !in->vm_name || !in->error ||
        (nvols && !in->vols)) {
        harvbk_backup_info_free(in);
        return NULL;
    }
    return in;
}

static harvbk_backup_info *info_from_manifest(const hb_manifest *m)
{
    harvbk_backup_info *in = info_new(m->ns, m->name, m->vm_ns, m->vm_name, "", m->nvols);
    if (!in)
        return NULL;
    in->state = HARVBK_STATE_READY;
    in->logical = m->logical_bytes;
    in->uploaded = m->uploaded_bytes;
    in->progress = m->logical_bytes;
    in->created = m->created;
    in->crash_consistent = m->crash_consistent;
    in->thaw_failed = m->thaw_failed;
    in->freeze = m->freeze;
    if (m->schedule && !(in->schedule = hb_strdup(m->schedule))) {
        harvbk_backup_info_free(in);
        return NULL;
    }
    for (size_t i = 0; i < m->nvols; i++, in->nvols++) {
        if (!(in->vols[i].name = hb_strdup(m->vols[i].name))) {
            harvbk_backup_info_free(in);
            return NULL;
        }
        in->vols[i].size = m->vols[i].size;
        memcpy(in->vols[i].capture, m->vols[i].capture, sizeof in->vols[i].capture);
    }
    return in;
}

static harvbk_backup_info *info_from_record(const hb_record *r)
{
    harvbk_backup_info *in = info_new(r->ns, r->name, r->vm_ns, r->vm_name, r->error, r->nvols);
    if (!in)
        return NULL;
    in->state = r->state;
    in->logical = r->logical_bytes;
    in->uploaded = r->uploaded_bytes;
    in->progress = r->progress_bytes;
    in->created = r->created;
    in->crash_consistent = r->crash_consistent;
    in->thaw_failed = r->thaw_failed;
    in->freeze = r->freeze;
    if (r->schedule && !(in->schedule = hb_strdup(r->schedule))) {
        harvbk_backup_info_free(in);
        return NULL;
    }
    for (size_t i = 0; i < r->nvols; i++, in->nvols++) {
        if (!(in->vols[i].name = hb_strdup(r->vols[i].name))) {
            harvbk_backup_info_free(in);
            return NULL;
        }
        in->vols[i].size = r->vols[i].size;
        memcpy(in->vols[i].capture, r->vols[i].capture, sizeof in->vols[i].capture);
    }
    return in;
}

/* A backup whose manifest exists but cannot be read. */
static harvbk_backup_info *info_unreadable(const char *ns, const char *name, const char *msg)
{
    harvbk_backup_info *in = info_new(ns, name, ns, "", msg, 0);
    if (in)
        in->state = HARVBK_STATE_ERROR;
    return in;
}

/* The local record of ns/name when it says something the target cannot:
 * InProgress or Error, in the current store. 0 with *r, or NOTFOUND. */
static int local_unfinished(harvbk_ctx *ctx, hb_store *st, int kind, const char *ns,
                            const char *name, hb_record *r)
{
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_record_read_k(&ctx->state, kind, ns, name, r, &e);
    if (rc)
        return HARVBK_E_NOTFOUND;
    if (r->state == HARVBK_STATE_READY || !r->store_id || strcmp(r->store_id, st->id) != 0) {
        hb_record_clear(r);
        return HARVBK_E_NOTFOUND;
    }
    hb_record_recover(&ctx->state, r, st, &e); /* a dead writer's record reads as Error */
    if (r->state == HARVBK_STATE_READY) { /* committed after all: the target is the truth */
        hb_record_clear(r);
        return HARVBK_E_NOTFOUND;
    }
    return 0;
}

int hb_backup_manifest_load(harvbk_ctx *ctx, hb_store *st, const char *ns, const char *name,
                            hb_manifest *m, hb_err *e)
{
    return hb_entry_manifest_load(ctx, st, HB_ENTRY_BACKUP, ns, name, m, e);
}

static const char *where(const hb_store *st, int kind)
{
    return kind == HB_ENTRY_SNAPSHOT ? "the snapshot store" : st->t->display;
}

int hb_entry_manifest_load(harvbk_ctx *ctx, hb_store *st, int kind, const char *ns,
                           const char *name, hb_manifest *m, hb_err *e)
{
    int rc = hb_store_manifest_read(st, hb_entry_dir(kind), ns, name, m, e);
    if (rc != HARVBK_E_NOTFOUND)
        return rc;
    hb_record r;
    if (local_unfinished(ctx, st, kind, ns, name, &r) == 0) {
        rc = hb_seterr(e, HARVBK_E_STATE, "%s %s/%s is %s%s%s, not Ready", hb_entry_word(kind),
                       ns, name, harvbk_state_name(r.state), r.error && *r.error ? ": " : "",
                       r.error ? r.error : "");
        hb_record_clear(&r);
        return rc;
    }
    return hb_seterr(e, HARVBK_E_NOTFOUND, "%s %s/%s not found in %s", hb_entry_word(kind), ns,
                     name, where(st, kind));
}

/* ---- get ---- */

static int catalog_get(harvbk_backup_info **out, harvbk_ctx *ctx, const char *ns,
                       const char *name);

int hb_entry_get(const char *fn, harvbk_backup_info **out, harvbk_ctx *ctx, int kind,
                 const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, fn);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", fn);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_check_name("namespace", namespace_, &e);
    if (rc == 0)
        rc = hb_check_name(kind == HB_ENTRY_SNAPSHOT ? "snapshot name" : "backup name", name, &e);
    if (rc == 0 && kind == HB_ENTRY_BACKUP)
        return catalog_get(out, ctx, namespace_, name);
    hb_store_ref *ref = NULL;
    if (rc == 0)
        rc = hb_kind_store_acquire(ctx, kind, false, &ref, &e);
    if (rc == HARVBK_E_NOTFOUND) /* no snapshot store yet */
        hb_seterr(&e, rc, "%s %s/%s not found", hb_entry_word(kind), namespace_, name);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    hb_store *st = ref->st;
    hb_manifest m;
    harvbk_backup_info *in = NULL;
    rc = hb_store_manifest_read(st, hb_entry_dir(kind), namespace_, name, &m, &e);
    if (rc == 0) {
        in = info_from_manifest(&m);
        hb_manifest_clear(&m);
        rc = in ? 0 : HARVBK_E_NOMEM;
    } else if (rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT) {
        /* damaged or newer: shown as Error with the reason */
        in = info_unreadable(namespace_, name, e.msg);
        rc = in ? 0 : HARVBK_E_NOMEM;
    } else if (rc == HARVBK_E_NOTFOUND) {
        hb_record r;
        if (local_unfinished(ctx, st, kind, namespace_, name, &r) == 0) {
            in = info_from_record(&r);
            hb_record_clear(&r);
            rc = in ? 0 : HARVBK_E_NOMEM;
        } else {
            hb_seterr(&e, HARVBK_E_NOTFOUND, "%s %s/%s not found in %s", hb_entry_word(kind),
                      namespace_, name, where(st, kind));
        }
    }
    hb_ctx_store_release(ctx, ref);
    if (rc == HARVBK_E_NOMEM)
        hb_seterr(&e, rc, NULL);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    *out = in;
    return 0;
}

int harvbk_backup_get(harvbk_backup_info **out, harvbk_ctx *ctx, const char *namespace_,
                      const char *name)
{
    return hb_entry_get(__func__, out, ctx, HB_ENTRY_BACKUP, namespace_, name);
}

/* ---- list ---- */

typedef struct list_build {
    harvbk_ctx *ctx;
    int kind;
    hb_store *st;
    harvbk_backup_list *l;
    size_t committed; /* entries 0..committed-1 came from manifests */
    hb_err *e;
} list_build;

static int list_push(harvbk_backup_list *l, harvbk_backup_info *in)
{
    if (!in)
        return HARVBK_E_NOMEM;
    harvbk_backup_info **v = hb_realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
        harvbk_backup_info_free(in);
        return HARVBK_E_NOMEM;
    }
    l->v = v;
    l->v[l->n++] = in;
    return 0;
}

static int list_manifest(const char *ns, const char *name, void *ud)
{
    list_build *lb = ud;
    hb_manifest m;
    hb_err me;
    hb_err_clear(&me);
    int rc = hb_store_manifest_read(lb->st, hb_entry_dir(lb->kind), ns, name, &m, &me);
    if (rc == HARVBK_E_NOTFOUND)
        return 0; /* deleted meanwhile */
    if (rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT)
        return list_push(lb->l, info_unreadable(ns, name, me.msg));
    if (rc) {
        *lb->e = me;
        return rc;
    }
    rc = list_push(lb->l, info_from_manifest(&m));
    hb_manifest_clear(&m);
    return rc;
}

static int info_cmp(const void *a, const void *b)
{
    const harvbk_backup_info *x = *(harvbk_backup_info *const *)a;
    const harvbk_backup_info *y = *(harvbk_backup_info *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int list_record(hb_record *r, void *ud)
{
    list_build *lb = ud;
    if (r->state == HARVBK_STATE_READY || !r->store_id || strcmp(r->store_id, lb->st->id) != 0)
        return 0;
    harvbk_backup_info key = { .ns = r->ns, .name = r->name };
    harvbk_backup_info *kp = &key;
    if (lb->committed &&
        bsearch(&kp, lb->l->v, lb->committed, sizeof *lb->l->v, info_cmp))
        return 0; /* its manifest exists: the target is the truth */
    hb_err e;
    hb_err_clear(&e);
    hb_record_recover(&lb->ctx->state, r, lb->st, &e);
    return list_push(lb->l, info_from_record(r));
}

/* ---- backups: from the synced catalog (sync.c, docs/CATALOG.md) ---- */

static harvbk_backup_info *info_from_synced(const hb_synced_entry *x, int64_t synced_at)
{
    harvbk_backup_info *in = info_new(x->ns, x->name, x->vm_ns, x->vm_name, x->error, x->nvols);
    if (!in)
        return NULL;
    in->state = HARVBK_STATE_READY;
    in->logical = x->logical;
    in->uploaded = x->uploaded;
    in->progress = x->logical;
    in->created = x->created;
    in->crash_consistent = x->crash_consistent;
    in->thaw_failed = x->thaw_failed;
    in->freeze = x->freeze;
    in->synced_at = synced_at;
    if (x->schedule && !(in->schedule = hb_strdup(x->schedule))) {
        harvbk_backup_info_free(in);
        return NULL;
    }
    if (x->gone_ms)
        in->flags |= HARVBK_BACKUP_FLAG_GONE;
    if (x->delete_pending)
        in->flags |= HARVBK_BACKUP_FLAG_DELETE_PENDING;
    if (x->index_missing)
        in->flags |= HARVBK_BACKUP_FLAG_INDEX_MISSING;
    if (x->unreadable || x->index_missing || x->gone_ms)
        in->state = HARVBK_STATE_ERROR;
    if (x->gone_ms && !*in->error) {
        char *msg = hb_strdup("its manifest vanished from the target (forgotten at the next "
                              "sync unless it returns)");
        if (!msg) {
            harvbk_backup_info_free(in);
            return NULL;
        }
        hb_free(in->error);
        in->error = msg;
    }
    for (size_t i = 0; i < x->nvols; i++, in->nvols++) {
        if (!(in->vols[i].name = hb_strdup(x->vols[i].name))) {
            harvbk_backup_info_free(in);
            return NULL;
        }
        in->vols[i].size = x->vols[i].size;
        memcpy(in->vols[i].capture, x->vols[i].capture, sizeof in->vols[i].capture);
    }
    return in;
}

/* The catalog of the configured target, syncing first when it never was. */
static int catalog_open(harvbk_ctx *ctx, hb_synced *c, hb_err *e)
{
    pthread_mutex_lock(&ctx->mu);
    bool has = ctx->has_target;
    pthread_mutex_unlock(&ctx->mu);
    if (!has)
        return hb_seterr(e, HARVBK_E_NOTARGET,
                         "no backup target is configured (see harvbk_ctx_set_target)");
    bool usable = false;
    if (hb_sync_catalog_load(ctx, c, &usable) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (usable)
        return 0;
    hb_synced_clear(c);
    int rc = hb_sync_run(ctx, NULL, e);
    if (rc)
        return hb_err_prefix(e, "the backup catalog was never synced with this target");
    if (hb_sync_catalog_load(ctx, c, &usable) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    return 0;
}

typedef struct cat_build {
    harvbk_ctx *ctx;
    const hb_synced *c;
    harvbk_backup_list *l;
    const char *ns, *name; /* get: only this one */
    hb_store *st;          /* the catalog's store when the context has it open, or NULL */
} cat_build;

/* The context's store, when it is open and the catalog's: a record whose
 * writer is gone is then checked against the target (Ready when its manifest
 * is there: a writer that committed but could not save its record), not
 * marked Error "commit unknown" until the store is next opened. */
static hb_store_ref *cat_store(harvbk_ctx *ctx, const hb_synced *c, cat_build *cb)
{
    hb_store_ref *ref = hb_ctx_store_peek(ctx);
    if (ref && c->store_id && strcmp(ref->st->id, c->store_id) == 0)
        cb->st = ref->st;
    return ref;
}

static int cat_record(hb_record *r, void *ud)
{
    cat_build *cb = ud;
    if (cb->ns && (strcmp(r->ns, cb->ns) != 0 || strcmp(r->name, cb->name) != 0))
        return 0;
    if (r->state == HARVBK_STATE_READY || !r->store_id || !cb->c->store_id ||
        strcmp(r->store_id, cb->c->store_id) != 0)
        return 0;
    if (hb_synced_find(cb->c, r->ns, r->name))
        return 0; /* its manifest is in the catalog: that is the truth */
    hb_err e;
    hb_err_clear(&e);
    /* a dead writer's record reads as Error, or Ready when it committed */
    hb_record_recover(&cb->ctx->state, r, cb->st, &e);
    harvbk_backup_info *in = info_from_record(r);
    if (in)
        in->flags |= HARVBK_BACKUP_FLAG_LOCAL;
    return list_push(cb->l, in);
}

static int catalog_list(harvbk_backup_list **out, harvbk_ctx *ctx)
{
    hb_err e;
    hb_err_clear(&e);
    hb_synced c;
    hb_synced_init(&c);
    int rc = catalog_open(ctx, &c, &e);
    harvbk_backup_list *l = NULL;
    if (rc == 0 && !(l = hb_calloc(1, sizeof *l)))
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    if (rc == 0 && c.n && !(l->v = hb_calloc(c.n, sizeof *l->v)))
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        if (!(l->v[i] = info_from_synced(&c.v[i], c.synced_at_ms)))
            rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
        else
            l->n++;
    }
    if (rc == 0) {
        l->synced_at = c.synced_at_ms;
        cat_build cb = { ctx, &c, l, NULL, NULL, NULL };
        hb_store_ref *ref = cat_store(ctx, &c, &cb);
        rc = hb_record_foreach_k(&ctx->state, HB_ENTRY_BACKUP, cat_record, &cb, &e);
        hb_ctx_store_release(ctx, ref);
        if (rc == HARVBK_E_NOMEM)
            hb_seterr(&e, rc, NULL);
    }
    hb_synced_clear(&c);
    if (rc) {
        harvbk_backup_list_free(l);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, info_cmp);
    *out = l;
    return 0;
}

static int catalog_get(harvbk_backup_info **out, harvbk_ctx *ctx, const char *ns,
                       const char *name)
{
    hb_err e;
    hb_err_clear(&e);
    hb_synced c;
    hb_synced_init(&c);
    int rc = catalog_open(ctx, &c, &e);
    harvbk_backup_info *in = NULL;
    if (rc == 0) {
        const hb_synced_entry *x = hb_synced_find(&c, ns, name);
        if (x) {
            in = info_from_synced(x, c.synced_at_ms);
            rc = in ? 0 : hb_seterr(&e, HARVBK_E_NOMEM, NULL);
        }
    }
    if (rc == 0 && !in) {
        harvbk_backup_list one = { NULL, 0, 0 };
        cat_build cb = { ctx, &c, &one, ns, name, NULL };
        hb_store_ref *ref = cat_store(ctx, &c, &cb);
        rc = hb_record_foreach_k(&ctx->state, HB_ENTRY_BACKUP, cat_record, &cb, &e);
        hb_ctx_store_release(ctx, ref);
        if (rc == HARVBK_E_NOMEM)
            hb_seterr(&e, rc, NULL);
        if (rc == 0 && one.n)
            in = one.v[0];
        else
            for (size_t i = 0; i < one.n; i++)
                harvbk_backup_info_free(one.v[i]);
        hb_free(one.v);
        if (rc == 0 && !in) {
            int64_t age = (hb_now_ms() - c.synced_at_ms) / 1000;
            rc = hb_seterr(&e, HARVBK_E_NOTFOUND,
                           "backup %s/%s not found in the catalog of %s (synced %lld s ago; a "
                           "sync imports the backups other contexts wrote)",
                           ns, name, c.target ? c.target : "the target", (long long)age);
        }
    }
    hb_synced_clear(&c);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    *out = in;
    return 0;
}

int64_t harvbk_backup_list_synced_at(const harvbk_backup_list *list)
{
    return list ? list->synced_at : 0;
}

unsigned int harvbk_backup_info_catalog_flags(const harvbk_backup_info *info)
{
    return info ? info->flags : 0;
}

int64_t harvbk_backup_info_synced_at(const harvbk_backup_info *info)
{
    return info ? info->synced_at : 0;
}

int hb_entry_list(const char *fn, harvbk_backup_list **out, harvbk_ctx *ctx, int kind)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, fn);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", fn);
    *out = NULL;
    if (kind == HB_ENTRY_BACKUP)
        return catalog_list(out, ctx);
    hb_err e;
    hb_err_clear(&e);
    hb_store_ref *ref = NULL;
    int rc = hb_kind_store_acquire(ctx, kind, false, &ref, &e);
    if (rc == HARVBK_E_NOTFOUND) { /* no snapshot store yet: no snapshot */
        if (!(*out = hb_calloc(1, sizeof(harvbk_backup_list))))
            return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
        return 0;
    }
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    list_build lb = { ctx, kind, ref->st, hb_calloc(1, sizeof(harvbk_backup_list)), 0, &e };
    if (!lb.l)
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    if (rc == 0) {
        rc = hb_store_entry_list(ref->st, hb_entry_dir(kind), list_manifest, &lb, &e);
        if (rc == HARVBK_E_NOMEM)
            hb_seterr(&e, rc, NULL);
        else if (rc)
            hb_err_prefix(&e, "cannot list the %ss in %s", hb_entry_word(kind),
                          where(ref->st, kind));
    }
    if (rc == 0) {
        lb.committed = lb.l->n;
        if (lb.committed > 1)
            qsort(lb.l->v, lb.committed, sizeof *lb.l->v, info_cmp);
        rc = hb_record_foreach_k(&ctx->state, kind, list_record, &lb, &e);
        if (rc == HARVBK_E_NOMEM)
            hb_seterr(&e, rc, NULL);
    }
    hb_ctx_store_release(ctx, ref);
    if (rc) {
        harvbk_backup_list_free(lb.l);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    if (lb.l->n > 1)
        qsort(lb.l->v, lb.l->n, sizeof *lb.l->v, info_cmp);
    *out = lb.l;
    return 0;
}

int harvbk_backup_list_get(harvbk_backup_list **out, harvbk_ctx *ctx)
{
    return hb_entry_list(__func__, out, ctx, HB_ENTRY_BACKUP);
}

size_t harvbk_backup_list_count(const harvbk_backup_list *list) { return list ? list->n : 0; }

const harvbk_backup_info *harvbk_backup_list_at(const harvbk_backup_list *list, size_t i)
{
    return list && i < list->n ? list->v[i] : NULL;
}

void harvbk_backup_list_free(harvbk_backup_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        harvbk_backup_info_free(list->v[i]);
    hb_free(list->v);
    hb_free(list);
}

/* ---- accessors ---- */

const char *harvbk_backup_info_namespace(const harvbk_backup_info *info)
{
    return info ? info->ns : NULL;
}
const char *harvbk_backup_info_name(const harvbk_backup_info *info)
{
    return info ? info->name : NULL;
}
const char *harvbk_backup_info_vm_name(const harvbk_backup_info *info)
{
    return info ? info->vm_name : NULL;
}
int harvbk_backup_info_state(const harvbk_backup_info *info)
{
    return info ? info->state : hb_fail(HARVBK_E_INVALID, "%s: info is NULL", __func__);
}
const char *harvbk_backup_info_error(const harvbk_backup_info *info)
{
    return info ? info->error : "";
}
uint64_t harvbk_backup_info_logical_bytes(const harvbk_backup_info *info)
{
    return info ? info->logical : 0;
}
uint64_t harvbk_backup_info_uploaded_bytes(const harvbk_backup_info *info)
{
    return info ? info->uploaded : 0;
}
uint64_t harvbk_backup_info_progress_bytes(const harvbk_backup_info *info)
{
    return info ? info->progress : 0;
}
int64_t harvbk_backup_info_created(const harvbk_backup_info *info)
{
    return info ? info->created : 0;
}
size_t harvbk_backup_info_volume_count(const harvbk_backup_info *info)
{
    return info ? info->nvols : 0;
}
const char *harvbk_backup_info_volume_name(const harvbk_backup_info *info, size_t i)
{
    return info && i < info->nvols ? info->vols[i].name : NULL;
}
uint64_t harvbk_backup_info_volume_size(const harvbk_backup_info *info, size_t i)
{
    return info && i < info->nvols ? info->vols[i].size : 0;
}
const char *harvbk_backup_info_schedule(const harvbk_backup_info *info)
{
    return info ? info->schedule : NULL;
}

int harvbk_backup_info_thaw_failed(const harvbk_backup_info *info)
{
    return info && info->thaw_failed ? 1 : 0;
}

int64_t harvbk_backup_info_frozen_ms(const harvbk_backup_info *info)
{
    return info && info->freeze.frozen ? (int64_t)info->freeze.frozen_ms : -1;
}

const char *harvbk_backup_info_capture(const harvbk_backup_info *info)
{
    if (!info)
        return NULL;
    return info->freeze.capture[0] ? info->freeze.capture : "none";
}

const char *harvbk_backup_info_volume_capture(const harvbk_backup_info *info, size_t i)
{
    if (!info || i >= info->nvols)
        return NULL;
    return info->vols[i].capture[0] ? info->vols[i].capture : "none";
}

int harvbk_backup_info_crash_consistent(const harvbk_backup_info *info)
{
    return info && info->crash_consistent ? 1 : 0;
}

int harvbk_backup_info_to_json(const harvbk_backup_info *info, char **out)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    if (!info)
        return hb_fail(HARVBK_E_INVALID, "%s: info is NULL", __func__);
    char created[32];
    hb_iso8601(info->created, created, sizeof created);
    char *vm = hb_asprintf("%s/%s", info->vm_ns, info->vm_name);
    cJSON *root = cJSON_CreateObject();
    cJSON *vols = NULL;
    bool ok = root && vm;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "namespace", info->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", info->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm", vm) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_namespace", info->vm_ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_name", info->vm_name) != NULL;
        ok &= cJSON_AddStringToObject(root, "state", harvbk_state_name(info->state)) != NULL;
        ok &= hb_json_add_u64(root, "logical_bytes", info->logical) != NULL;
        ok &= hb_json_add_u64(root, "uploaded_bytes", info->uploaded) != NULL;
        ok &= hb_json_add_u64(root, "progress_bytes", info->progress) != NULL;
        ok &= cJSON_AddStringToObject(root, "error", info->error) != NULL;
        ok &= cJSON_AddStringToObject(root, "created", created) != NULL;
        ok &= cJSON_AddBoolToObject(root, "crash_consistent", info->crash_consistent) != NULL;
        ok &= cJSON_AddBoolToObject(root, "thaw_failed", info->thaw_failed) != NULL;
        ok &= (info->freeze.frozen
                   ? hb_json_add_u64(root, "frozen_ms", info->freeze.frozen_ms)
                   : cJSON_AddNullToObject(root, "frozen_ms")) != NULL;
        ok &= cJSON_AddStringToObject(root, "capture", harvbk_backup_info_capture(info)) != NULL;
        ok &= (info->schedule ? cJSON_AddStringToObject(root, "schedule", info->schedule)
                              : cJSON_AddNullToObject(root, "schedule")) != NULL;
        ok &= cJSON_AddBoolToObject(root, "gone", info->flags & HARVBK_BACKUP_FLAG_GONE) != NULL;
        ok &= cJSON_AddBoolToObject(root, "delete_pending",
                                    info->flags & HARVBK_BACKUP_FLAG_DELETE_PENDING) != NULL;
        ok &= cJSON_AddBoolToObject(root, "index_missing",
                                    info->flags & HARVBK_BACKUP_FLAG_INDEX_MISSING) != NULL;
        ok &= cJSON_AddNumberToObject(root, "synced_at_ms", (double)info->synced_at) != NULL;
        ok &= (vols = cJSON_AddArrayToObject(root, "volumes")) != NULL;
    }
    for (size_t i = 0; ok && i < info->nvols; i++) {
        cJSON *v = cJSON_CreateObject();
        ok = v && cJSON_AddItemToArray(vols, v) &&
             cJSON_AddStringToObject(v, "name", info->vols[i].name) &&
             hb_json_add_u64(v, "size", info->vols[i].size) &&
             cJSON_AddStringToObject(v, "capture", harvbk_backup_info_volume_capture(info, i));
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    hb_free(vm);
    if (!text)
        return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
    /* harvbk_string_free() frees with the library's allocator */
    *out = text;
    return 0;
}
