/*
 * engine/gc.c - mark and sweep of the chunk store.
 *
 * Mark: every committed entry (manifest present) of every kind, its manifest
 * and each of its volume indexes; every non-hole id goes into a digest set.
 * Any manifest or index that cannot be read (missing, corrupt, newer format,
 * target error) aborts gc before anything is deleted: sweeping on incomplete
 * marking would destroy chunks a live backup needs.
 * Sweep: list all chunk objects; those not marked are deleted in batches
 * (hb_target_del_many: DeleteObjects on S3).
 *
 * Concurrency: the caller holds the gc lease, which writers check (see
 * docs/FORMAT.md). As a second line of defence, chunks whose object is not
 * older than the start of this gc run are never deleted: they may belong to a
 * writer whose manifest is not committed yet. (A target clock running behind
 * ours weakens that guard, one running ahead only makes gc keep more.)
 * With job->lease set, nothing is deleted once that lease has lapsed.
 *
 * Progress is in bytes of stored chunks (their size in the store): the
 * marking reports nothing; each chunk listed adds its size to done, the total
 * staying 0 (unknown) until the listing ends; then the total becomes the
 * listed bytes plus the bytes to remove, and each deleted batch adds its
 * bytes, so done reaches the total when the sweep is complete.
 */
#include "pipeline.h"

#include <inttypes.h>
#include <string.h>

#define GC_DELETE_BATCH 1000
#define GC_PROGRESS_BATCH 256

static const char *const gc_kinds[] = {HB_KIND_BACKUPS, "snapshots"};

typedef struct gc_entry {
    const char *kind;
    char *ns, *name;
} gc_entry;

typedef struct gc_victim {
    uint8_t id[HB_DIGEST_LEN];
    uint64_t size;
} gc_victim;

typedef struct gc_ctx {
    hb_pipe pipe;
    hb_store *st;
    const char *kind; /* while listing entries */
    gc_entry *ents;
    size_t nents, capents;
    pthread_mutex_t refs_mu;
    hb_dset *refs;
    /* sweep */
    int64_t start;
    gc_victim *vic;
    size_t nvic, capvic;
    uint64_t total, kept_new;
    uint64_t listed_bytes;         /* stored bytes of every chunk listed */
    uint64_t unreported, unreported_bytes; /* chunks / bytes not yet reported */
} gc_ctx;

static int gc_entry_cb(const char *ns, const char *name, void *ud)
{
    gc_ctx *c = ud;
    if (c->nents == c->capents) {
        size_t cap = c->capents ? c->capents * 2 : 64;
        gc_entry *n = hb_realloc(c->ents, cap * sizeof *n);
        if (!n)
            return HARVBK_E_NOMEM;
        c->ents = n;
        c->capents = cap;
    }
    gc_entry *en = &c->ents[c->nents];
    en->kind = c->kind;
    en->ns = hb_strdup(ns);
    en->name = hb_strdup(name);
    if (!en->ns || !en->name) {
        hb_free(en->ns);
        hb_free(en->name);
        return HARVBK_E_NOMEM;
    }
    c->nents++;
    return 0;
}

/* Was the entry deleted since it was listed? Deleting removes the manifest
 * first, then the indexes (FORMAT.md section 8), so an entry whose manifest is
 * gone is no longer committed and needs no protection. */
static bool gc_entry_gone(gc_ctx *c, const gc_entry *en)
{
    char *key = hb_key_manifest(en->kind, en->ns, en->name);
    if (!key)
        return false;
    hb_err he;
    hb_err_clear(&he);
    int rc = hb_target_head(c->st->t, key, NULL, &he);
    hb_free(key);
    return rc == HARVBK_E_NOTFOUND;
}

/* Mark one entry: its manifest and each volume index. */
static int gc_mark_entry(gc_ctx *c, const gc_entry *en)
{
    hb_manifest m;
    hb_manifest_init(&m);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_store_manifest_read(c->st, en->kind, en->ns, en->name, &m, &e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_log_debug(c->pipe.job->log, "gc: %s/%s/%s was deleted meanwhile", en->kind, en->ns,
                     en->name);
        return 0;
    }
    if (rc < 0) {
        hb_err_prefix(&e, "gc: %s/%s/%s", en->kind, en->ns, en->name);
        hb_manifest_clear(&m);
        return hb_pipe_fail(&c->pipe, rc, &e);
    }
    for (size_t v = 0; v < m.nvols && rc == 0; v++) {
        hb_index ix;
        memset(&ix, 0, sizeof ix);
        rc = hb_store_index_read(c->st, en->kind, &m, &m.vols[v], &ix, &e);
        if (rc < 0 && gc_entry_gone(c, en)) {
            hb_log_debug(c->pipe.job->log, "gc: %s/%s/%s was deleted meanwhile", en->kind,
                         en->ns, en->name);
            rc = 0;
            break;
        }
        if (rc < 0) {
            hb_err_prefix(&e, "gc: %s/%s/%s volume '%s'", en->kind, en->ns, en->name,
                          m.vols[v].name ? m.vols[v].name : "?");
            hb_pipe_fail(&c->pipe, rc, &e);
            break;
        }
        pthread_mutex_lock(&c->refs_mu);
        for (uint64_t i = 0; i < ix.count && rc == 0; i++)
            if (!hb_index_is_hole(&ix, i) && hb_dset_add(c->refs, hb_index_id(&ix, i)) < 0)
                rc = HARVBK_E_NOMEM;
        pthread_mutex_unlock(&c->refs_mu);
        hb_index_clear(&ix);
        if (rc < 0)
            hb_pipe_failf(&c->pipe, rc, "gc: out of memory while marking");
        if (hb_pipe_stopped(&c->pipe))
            rc = HARVBK_E_CANCELLED;
    }
    hb_manifest_clear(&m);
    return rc;
}

static void gc_mark_work(void *job, void *arg)
{
    gc_ctx *c = arg;
    if (!hb_pipe_stopped(&c->pipe))
        gc_mark_entry(c, job);
}

/* Before deleting anything: is our gc lease still good? Once it lapsed, other
 * contexts may have taken us for dead and started a backup that dedups
 * against chunks we did not mark (FORMAT.md section 9). false = stop. */
static bool gc_lease_ok(gc_ctx *c)
{
    hb_lease *l = c->pipe.job->lease;
    if (!l)
        return true;
    hb_err le;
    hb_err_clear(&le);
    if (hb_lease_check(l, &le) == 0)
        return true;
    hb_err_prefix(&le, "gc stopped before deleting");
    hb_pipe_fail(&c->pipe, HARVBK_E_BUSY, &le);
    return false;
}

static int gc_chunk_cb(const uint8_t id[HB_DIGEST_LEN], uint64_t size, int64_t mtime, void *ud)
{
    gc_ctx *c = ud;
    c->total++;
    c->listed_bytes += size;
    c->unreported_bytes += size;
    if (++c->unreported >= GC_PROGRESS_BATCH) {
        if (!hb_pipe_progress(&c->pipe, c->unreported_bytes))
            return HARVBK_E_CANCELLED;
        c->unreported = 0;
        c->unreported_bytes = 0;
    }
    if (hb_dset_has(c->refs, id))
        return 0;
    if (mtime >= c->start) {
        c->kept_new++; /* written during this run: maybe an uncommitted writer's */
        return 0;
    }
    if (c->nvic == c->capvic) {
        size_t cap = c->capvic ? c->capvic * 2 : 1024;
        gc_victim *n = hb_realloc(c->vic, cap * sizeof *n);
        if (!n)
            return HARVBK_E_NOMEM;
        c->vic = n;
        c->capvic = cap;
    }
    memcpy(c->vic[c->nvic].id, id, HB_DIGEST_LEN);
    c->vic[c->nvic].size = size;
    c->nvic++;
    return 0;
}

int hb_engine_gc(hb_job *job, hb_gc_stats *stats, hb_err *e)
{
    if (!job || !job->st)
        return hb_seterr(e, HARVBK_E_INVALID, "gc: missing argument");
    gc_ctx c;
    memset(&c, 0, sizeof c);
    hb_pipe_init(&c.pipe, job);
    pthread_mutex_init(&c.refs_mu, NULL);
    c.st = job->st;
    c.start = hb_now();
    hb_gc_stats s;
    memset(&s, 0, sizeof s);
    hb_workq *q = NULL;
    char (*keys)[HB_CHUNK_KEY_LEN] = NULL;
    const char **keyp = NULL;
    int rc;

    c.refs = hb_dset_new(1u << 16);
    if (!c.refs) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }

    /* ---- mark ---- */
    for (size_t k = 0; k < HB_ARRAY_LEN(gc_kinds); k++) {
        hb_err le;
        hb_err_clear(&le);
        c.kind = gc_kinds[k];
        rc = hb_store_entry_list(c.st, c.kind, gc_entry_cb, &c, &le);
        if (rc == HARVBK_E_NOTFOUND)
            rc = 0; /* no entry of that kind yet */
        if (rc < 0) {
            if (rc == HARVBK_E_NOMEM && !le.msg[0])
                hb_seterr(&le, rc, "gc: out of memory");
            else
                hb_err_prefix(&le, "gc: listing %s", c.kind);
            hb_pipe_fail(&c.pipe, rc, &le);
            goto done;
        }
        if (hb_pipe_stopped(&c.pipe))
            goto done;
    }
    if (c.nents) {
        unsigned n = hb_pipe_workers(job);
        if (n > c.nents)
            n = (unsigned)c.nents;
        rc = hb_workq_new(&q, n, (size_t)n * 2, gc_mark_work, &c);
        if (rc < 0) {
            q = NULL;
            hb_pipe_failf(&c.pipe, rc, "gc: cannot start worker threads");
            goto done;
        }
        for (size_t i = 0; i < c.nents && !hb_pipe_stopped(&c.pipe); i++) {
            rc = hb_workq_submit(q, &c.ents[i]);
            if (rc < 0) {
                hb_pipe_failf(&c.pipe, rc, "gc: cannot queue work");
                break;
            }
        }
        hb_workq_free(q);
        q = NULL;
    }
    if (hb_pipe_stopped(&c.pipe))
        goto done; /* incomplete marking: delete nothing */
    s.referenced_chunks = hb_dset_count(c.refs);

    /* ---- sweep ---- */
    {
        hb_err le;
        hb_err_clear(&le);
        rc = hb_store_chunk_list(c.st, gc_chunk_cb, &c, &le);
        if (rc < 0) {
            if (!hb_pipe_stopped(&c.pipe)) {
                if (!le.msg[0])
                    hb_seterr(&le, rc, "%s", "");
                hb_err_prefix(&le, "gc: listing chunks");
                hb_pipe_fail(&c.pipe, rc, &le);
            }
            goto done;
        }
    }
    if (c.unreported_bytes && !hb_pipe_progress(&c.pipe, c.unreported_bytes))
        goto done;
    s.total_chunks = c.total;
    {
        uint64_t victim_bytes = 0;
        for (size_t i = 0; i < c.nvic; i++)
            victim_bytes += c.vic[i].size;
        if (job->progress_total)
            job->progress_total(c.listed_bytes + victim_bytes, job->progress_ud);
    }
    /* the caller's progress hook hears of it before anything is deleted */
    if (job->progress_flush)
        job->progress_flush(job->progress_ud);
    if (hb_pipe_stopped(&c.pipe))
        goto done;

    keys = hb_malloc((size_t)GC_DELETE_BATCH * sizeof *keys);
    keyp = hb_malloc((size_t)GC_DELETE_BATCH * sizeof *keyp);
    if (!keys || !keyp) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c.nvic; i += GC_DELETE_BATCH) {
        if (hb_pipe_stopped(&c.pipe) || !gc_lease_ok(&c))
            break; /* a partial sweep is safe */
        size_t n = HB_MIN((size_t)GC_DELETE_BATCH, c.nvic - i);
        uint64_t bytes = 0;
        for (size_t k = 0; k < n; k++) {
            hb_chunk_key(c.vic[i + k].id, keys[k]);
            keyp[k] = keys[k];
            bytes += c.vic[i + k].size;
        }
        hb_err de;
        hb_err_clear(&de);
        rc = hb_target_del_many(c.st->t, keyp, n, &de);
        if (rc < 0) {
            hb_err_prefix(&de, "gc: deleting chunks");
            hb_pipe_fail(&c.pipe, rc, &de);
            break;
        }
        s.removed_chunks += n;
        s.removed_bytes += bytes;
        if (job->progress) /* one thread here; a stop shows at the next batch */
            job->progress(bytes, job->progress_ud);
    }

done:
    hb_workq_free(q);
    rc = hb_pipe_result(&c.pipe, e);
    if (stats)
        *stats = s;
    if (rc == 0 || s.removed_chunks)
        hb_log_info(job->log,
                    "gc: %" PRIu64 " chunks, %" PRIu64 " referenced, %" PRIu64
                    " removed (%" PRIu64 " bytes), %" PRIu64 " too new to remove",
                    s.total_chunks, s.referenced_chunks, s.removed_chunks, s.removed_bytes,
                    c.kept_new);
    for (size_t i = 0; i < c.nents; i++) {
        hb_free(c.ents[i].ns);
        hb_free(c.ents[i].name);
    }
    hb_free(c.ents);
    hb_free(c.vic);
    hb_free(keys);
    hb_free(keyp);
    if (c.refs)
        hb_dset_free(c.refs);
    pthread_mutex_destroy(&c.refs_mu);
    hb_pipe_destroy(&c.pipe);
    return rc;
}
