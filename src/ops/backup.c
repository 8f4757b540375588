/*
 * ops/backup.c - harvbk_backup_create: the backup operation.
 *
 * At start (caller's thread): validate, take the backup's record lock, check
 * that no backup of that name exists, write the InProgress record, start the
 * thread. On the thread:
 *   1. publish the context's writer lease, then wait while a gc runs
 *      (the lease protocol of docs/FORMAT.md "Concurrency");
 *   2. open the volumes (their sizes are the backup's sizes);
 *   3. load the VM's newest backup in the target as the previous one: its
 *      indexes give unchanged chunks (with changed ranges) and known chunk ids;
 *   4. freeze (optional), read every volume through the engine, thaw;
 *   5. write the indexes, then the manifest: that commit makes it Ready.
 * The record ends Ready or Error; lease, lock and registry are released
 * before the operation is reported finished.
 */
#include "ops.h"
#include "../engine/rangeset.h"
#include "../core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PERSIST_EVERY_MS 1000u

typedef struct backup_job {
    harvbk_op *op;
    harvbk_vm *vm;                 /* copy of the caller's VM */
    char *name;                    /* backup name; its namespace is vm->ns */
    unsigned flags;
    harvbk_freeze_cb freeze_cb, thaw_cb;
    void *freeze_payload;
    bool use_ranges;
    hb_rangeset *changed;          /* per VM volume when use_ranges */
    int lock_fd;
    hb_record rec;
    uint64_t last_persist_ms;
} backup_job;

static void backup_job_free(void *p)
{
    backup_job *j = p;
    if (!j)
        return;
    if (j->changed) {
        for (size_t i = 0; i < j->vm->nvols; i++)
            hb_rangeset_clear(&j->changed[i]);
        hb_free(j->changed);
    }
    hb_record_clear(&j->rec);
    harvbk_vm_free(j->vm);
    hb_free(j->name);
    hb_free(j);
}

/* ---- progress: the op's counters + the record, persisted about once a second ---- */

static void persist_record(harvbk_ctx *ctx, backup_job *j)
{
    hb_err e;
    hb_err_clear(&e);
    if (hb_record_write(ctx, &j->rec, &e) != 0)
        hb_log_warn(&ctx->log, "%s", e.msg);
}

static int backup_progress(uint64_t delta, void *ud)
{
    backup_job *j = ud;
    int stop = hb_op_progress(delta, j->op);
    uint64_t now = hb_mono_ms();
    if (now - j->last_persist_ms >= PERSIST_EVERY_MS) {
        j->last_persist_ms = now;
        j->rec.progress_bytes = atomic_load(&j->op->done);
        persist_record(j->op->ctx, j);
    }
    return stop;
}

/* ---- steps ---- */

static int wait_for_gc(harvbk_op *op, hb_store *st, const char *what, hb_err *e)
{
    uint64_t start = hb_mono_ms();
    bool logged = false;
    for (;;) {
        unsigned n = 0;
        int rc = hb_lease_count_live(st, "gc", NULL, &n, e);
        if (rc)
            return hb_err_prefix(e, "cannot check for a running gc");
        if (n == 0)
            return 0;
        if (hb_mono_ms() - start >= HB_GC_WAIT_MS)
            return hb_seterr(e, HARVBK_E_BUSY,
                             "garbage collection of the target is running (%u gc lease(s) "
                             "held for over %u s); try again later",
                             n, HB_GC_WAIT_MS / 1000u);
        if (!logged) {
            hb_log_info(&op->ctx->log, "%s waits for a garbage collection of the target to end",
                        what);
            logged = true;
        }
        if (hb_op_sleep(op, HB_GC_POLL_MS))
            return hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
    }
}

typedef struct prev_search {
    const char *vm_ns, *vm_name, *self;
    const char *writer;  /* only backups this context wrote; NULL: any */
    hb_store *st;
    hb_manifest best;
    bool found;
    bool tied;           /* another backup completed in the same millisecond as best */
    int64_t best_completed;
} prev_search;

static int prev_one(const char *ns, const char *name, void *ud)
{
    prev_search *ps = ud;
    if (strcmp(ns, ps->vm_ns) != 0 || strcmp(name, ps->self) == 0)
        return 0; /* a backup's namespace is its VM's namespace */
    hb_manifest m;
    hb_err e;
    hb_err_clear(&e);
    if (hb_store_manifest_read(ps->st, HB_KIND_BACKUPS, ns, name, &m, &e) != 0) {
        hb_log_debug(ps->st->log, "not a previous-backup candidate: %s", e.msg);
        return 0;
    }
    bool same_vm = strcmp(m.vm_ns, ps->vm_ns) == 0 && strcmp(m.vm_name, ps->vm_name) == 0 &&
                   m.chunk_size == ps->st->chunk_size &&
                   (!ps->writer || (m.writer && strcmp(m.writer, ps->writer) == 0));
    if (same_vm && ps->found && m.completed_ms == ps->best_completed)
        ps->tied = true;
    if (same_vm && (!ps->found || m.completed_ms > ps->best_completed)) {
        hb_manifest_clear(&ps->best);
        ps->best = m;
        ps->best_completed = m.completed_ms;
        ps->found = true;
        ps->tied = false;
        return 0;
    }
    hb_manifest_clear(&m);
    return 0;
}

/* Load the previous backup's indexes into prev[] (by volume name) and all its
 * chunk ids into known. Damage in the previous backup only costs dedup. */
static int load_previous(backup_job *j, hb_store *st, hb_index *prev, bool *has_prev,
                         hb_dset *known, hb_err *e)
{
    harvbk_ctx *ctx = j->op->ctx;
    prev_search ps;
    memset(&ps, 0, sizeof ps);
    ps.vm_ns = j->vm->ns;
    ps.vm_name = j->vm->name;
    ps.self = j->name;
    /* The caller's changed ranges are relative to a backup it made: another
     * cluster sharing the target may have a VM of the same namespace/name
     * (a different VM), whose newer backup must never be the base. */
    ps.writer = j->use_ranges ? ctx->id : NULL;
    ps.st = st;
    hb_manifest_init(&ps.best);
    int rc = hb_store_entry_list(st, HB_KIND_BACKUPS, prev_one, &ps, e);
    if (rc) {
        hb_manifest_clear(&ps.best);
        return hb_err_prefix(e, "cannot list the backups in the target");
    }
    if (!ps.found) {
        hb_log_debug(&ctx->log, "backup %s/%s: no previous backup of VM %s/%s", j->vm->ns,
                     j->name, j->vm->ns, j->vm->name);
        hb_manifest_clear(&ps.best);
        return 0;
    }
    if (ps.tied && j->use_ranges) {
        /* Completion times have millisecond resolution: with two candidates
         * in the same millisecond the caller's "previous backup" is unknown, and
         * copying unchanged chunks from the wrong one would store wrong
         * bytes. Read everything instead (dedup still applies). */
        hb_log_warn(&ctx->log, "backup %s/%s: several backups of VM %s/%s completed in the same "
                    "millisecond; changed ranges are ignored and every volume is read",
                    j->vm->ns, j->name, j->vm->ns, j->vm->name);
        j->use_ranges = false;
    }
    hb_log_info(&ctx->log, "backup %s/%s: incremental from %s/%s", j->vm->ns, j->name,
                ps.best.ns, ps.best.name);
    for (size_t k = 0; k < ps.best.nvols && rc == 0; k++) {
        hb_index ix;
        hb_err ie;
        hb_err_clear(&ie);
        if (hb_store_index_read(st, HB_KIND_BACKUPS, &ps.best, &ps.best.vols[k], &ix, &ie)) {
            hb_log_warn(&ctx->log, "previous backup unusable for volume %s: %s",
                        ps.best.vols[k].name, ie.msg);
            continue;
        }
        for (uint64_t c = 0; c < ix.count && rc == 0; c++)
            if (!hb_index_is_hole(&ix, c) && hb_dset_add(known, hb_index_id(&ix, c)) < 0)
                rc = hb_seterr(e, HARVBK_E_NOMEM, "out of memory loading the previous backup");
        bool used = false;
        for (size_t i = 0; i < j->vm->nvols && rc == 0; i++) {
            if (!has_prev[i] && strcmp(j->vm->vols[i].name, ps.best.vols[k].name) == 0) {
                prev[i] = ix;
                has_prev[i] = used = true;
                break;
            }
        }
        if (!used)
            hb_index_clear(&ix);
    }
    hb_manifest_clear(&ps.best);
    return rc;
}

static int open_volumes(backup_job *j, int *fds, uint64_t *sizes, hb_err *e)
{
    const harvbk_vm *vm = j->vm;
    for (size_t i = 0; i < vm->nvols; i++) {
        const hb_vm_volume *v = &vm->vols[i];
        if (!v->path) {
            sizes[i] = v->size;
            continue;
        }
        fds[i] = open(v->path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int err = errno;
            return hb_seterr(e, hb_errno_code(err), "cannot open volume %s of VM %s/%s at '%s': %s",
                             v->name, vm->ns, vm->name, v->path, strerror(err));
        }
        int rc = hb_fd_size(fds[i], &sizes[i], e);
        if (rc)
            return hb_err_prefix(e, "volume %s of VM %s/%s", v->name, vm->ns, vm->name);
    }
    return 0;
}

static int fill_manifest(backup_job *j, hb_store *st, bool crash, hb_manifest *m, hb_err *e)
{
    const harvbk_vm *vm = j->vm;
    m->kind = hb_strdup("backup");
    m->ns = hb_strdup(vm->ns);
    m->name = hb_strdup(j->name);
    m->vm_ns = hb_strdup(vm->ns);
    m->vm_name = hb_strdup(vm->name);
    m->writer = hb_strdup(j->op->ctx->id);
    m->created = j->rec.created;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->completed = (int64_t)now.tv_sec;
    m->completed_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    m->chunk_size = st->chunk_size;
    m->codec = st->codec;
    m->crash_consistent = crash;
    bool ok = m->kind && m->ns && m->name && m->vm_ns && m->vm_name && m->writer;
    if (ok && vm->metadata.len)
        ok = hb_buf_append(&m->metadata, vm->metadata.data, vm->metadata.len) == 0;
    if (ok && vm->nimages) {
        ok = (m->images = hb_calloc(vm->nimages, sizeof *m->images)) != NULL;
        for (size_t i = 0; ok && i < vm->nimages; i++, m->nimages++)
            ok = (m->images[i] = hb_strdup(vm->images[i])) != NULL;
    }
    return ok ? 0 : hb_seterr(e, HARVBK_E_NOMEM, "out of memory building the manifest");
}

/* ---- the thread ---- */

/* If the writer lease lapsed (this process was stopped, or the target was
 * unreachable, for longer than the lease TTL), a gc of another context may
 * have swept chunks this backup deduplicated against: before committing,
 * check that every chunk the indexes reference is still in the store. */
static int recheck_after_lapse(harvbk_ctx *ctx, backup_job *j, hb_store *st, const hb_index *ix, size_t n,
                               hb_err *e)
{
    hb_err why;
    hb_err_clear(&why);
    if (hb_ctx_writer_lease_check(ctx, &why) == 0)
        return 0;
    hb_log_warn(&ctx->log, "backup %s/%s: %s; checking every referenced chunk",
                j->vm->ns, j->name, why.msg);
    hb_dset *seen = hb_dset_new(1024);
    if (!seen)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    for (size_t v = 0; v < n && rc == 0; v++) {
        for (uint64_t i = 0; i < ix[v].count && rc == 0; i++) {
            if (hb_index_is_hole(&ix[v], i))
                continue;
            int added = hb_dset_add(seen, hb_index_id(&ix[v], i));
            if (added < 0)
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            if (added != 1)
                continue;
            int ex = hb_store_chunk_exists(st, hb_index_id(&ix[v], i), e);
            if (ex < 0) {
                rc = ex;
            } else if (ex == 0) {
                char hex[HB_DIGEST_HEX_LEN + 1];
                hb_hex(hb_index_id(&ix[v], i), HB_DIGEST_LEN, hex);
                rc = hb_seterr(e, HARVBK_E_CHUNK,
                               "volume '%s': chunk %s vanished while the writer lease had "
                               "lapsed (a concurrent gc); run the backup again",
                               j->vm->vols[v].name, hex);
            }
        }
    }
    hb_dset_free(seen);
    return rc;
}

static int backup_run(harvbk_op *op, hb_err *e)
{
    backup_job *j = op->job;
    harvbk_ctx *ctx = op->ctx;
    hb_store *st = op->sref->st;
    const harvbk_vm *vm = j->vm;
    size_t n = vm->nvols;
    uint64_t t0 = hb_mono_ms();
    char what[160];
    snprintf(what, sizeof what, "backup %s/%s", vm->ns, j->name);

    int *fds = hb_calloc(n, sizeof *fds);
    uint64_t *sizes = hb_calloc(n, sizeof *sizes);
    hb_index *ix = hb_calloc(n, sizeof *ix);
    hb_index *prev = hb_calloc(n, sizeof *prev);
    bool *has_prev = hb_calloc(n, sizeof *has_prev);
    hb_dset *known = hb_dset_new(1024);
    hb_manifest m;
    hb_manifest_init(&m);
    hb_backup_stats tot;
    memset(&tot, 0, sizeof tot);
    bool lease = false, frozen = false, crash = false;
    int rc = 0;
    for (size_t i = 0; fds && i < n; i++)
        fds[i] = -1;
    if (!fds || !sizes || !ix || !prev || !has_prev || !known) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, "out of memory starting %s", what);
        goto out;
    }
    hb_log_info(&ctx->log, "%s of VM %s/%s started (%zu volume(s))", what, vm->ns, vm->name, n);

    rc = hb_ctx_writer_lease_get(ctx, st, e);
    if (rc)
        goto out;
    lease = true;
    if ((rc = wait_for_gc(op, st, what, e)))
        goto out;
    if ((rc = open_volumes(j, fds, sizes, e)))
        goto out;
    uint64_t logical = 0;
    bool sizes_changed = false;
    for (size_t i = 0; i < n; i++) {
        logical += sizes[i];
        sizes_changed |= j->rec.vols[i].size != sizes[i];
        j->rec.vols[i].size = sizes[i];
    }
    atomic_store(&op->total, logical);
    sizes_changed |= j->rec.logical_bytes != logical;
    j->rec.logical_bytes = logical;
    /* The InProgress record written at start already holds the sizes when
     * they were known then (callbacks, regular files): rewriting it (file +
     * directory fsync) would only cost time. */
    if (sizes_changed)
        persist_record(ctx, j);
    j->last_persist_ms = hb_mono_ms();

    if ((rc = load_previous(j, st, prev, has_prev, known, e)))
        goto out;
    if (hb_op_cancelled(op)) {
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
        goto out;
    }

    if (j->freeze_cb) {
        int fr = j->freeze_cb(vm->ns, vm->name, j->freeze_payload);
        if (fr == 0) {
            frozen = true;
            hb_log_debug(&ctx->log, "%s: filesystems of VM %s/%s frozen", what, vm->ns, vm->name);
        } else if (j->flags & HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT) {
            crash = true;
            hb_log_warn(&ctx->log, "%s: failed to freeze filesystem of %s/%s (hook returned %d); "
                        "continuing crash-consistent", what, vm->ns, vm->name, fr);
        } else {
            rc = hb_seterr(e, HARVBK_E_FREEZE,
                           "failed to freeze filesystem of %s/%s: the freeze hook returned %d (%s)",
                           vm->ns, vm->name, fr, fr < 0 ? harvbk_strerror(fr) : "error");
            goto out;
        }
    }

    hb_job job;
    hb_op_job(op, st, &job);
    job.progress = backup_progress;
    job.progress_ud = j;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const hb_vm_volume *v = &vm->vols[i];
        if (hb_op_cancelled(op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
            break;
        }
        hb_vol_io io;
        memset(&io, 0, sizeof io);
        io.name = v->name;
        io.fd = fds[i];
        io.size = sizes[i];
        io.read_cb = v->path ? NULL : v->read_cb;
        io.payload = v->payload;
        /* changed ranges are relative to the previous backup of the same size */
        const hb_rangeset *ch = j->use_ranges && has_prev[i] && prev[i].volume_size == sizes[i]
                                    ? &j->changed[i]
                                    : NULL;
        hb_backup_stats s;
        memset(&s, 0, sizeof s);
        rc = hb_engine_backup_volume(&job, &io, has_prev[i] ? &prev[i] : NULL, ch, known, &ix[i],
                                     &s, e);
        if (rc == 0) {
            hb_log_debug(&ctx->log, "%s volume %s: %llu bytes read, %llu skipped, %llu holes, "
                         "%llu new chunks (%llu bytes stored), %llu reused, %llu zero",
                         what, v->name, (unsigned long long)s.read_bytes,
                         (unsigned long long)s.skipped_bytes, (unsigned long long)s.hole_bytes,
                         (unsigned long long)s.new_chunks, (unsigned long long)s.uploaded_bytes,
                         (unsigned long long)s.reused_chunks, (unsigned long long)s.zero_chunks);
            tot.read_bytes += s.read_bytes;
            tot.new_chunks += s.new_chunks;
            tot.uploaded_bytes += s.uploaded_bytes;
            tot.reused_chunks += s.reused_chunks;
        } else if (rc == HARVBK_E_CANCELLED || hb_op_cancelled(op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
        }
    }
    if (frozen) {
        frozen = false;
        int tr = j->thaw_cb ? j->thaw_cb(vm->ns, vm->name, j->freeze_payload) : 0;
        if (tr != 0)
            hb_log_error(&ctx->log, "%s: the thaw hook of VM %s/%s returned %d", what, vm->ns,
                         vm->name, tr);
        else
            hb_log_debug(&ctx->log, "%s: filesystems of VM %s/%s thawed", what, vm->ns, vm->name);
    }
    if (rc)
        goto out;

    /* commit: indexes, then the manifest */
    if (hb_op_cancelled(op)) {
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
        goto out;
    }
    if ((rc = recheck_after_lapse(ctx, j, st, ix, n, e)))
        goto out;
    if ((rc = fill_manifest(j, st, crash, &m, e)))
        goto out;
    if (!(m.vols = hb_calloc(n, sizeof *m.vols))) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        goto out;
    }
    uint64_t meta_bytes = 0;
    for (size_t i = 0; i < n && rc == 0; i++, m.nvols++) {
        if (!(m.vols[i].name = hb_strdup(vm->vols[i].name))) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        m.vols[i].size = sizes[i];
        rc = hb_store_index_write(st, HB_KIND_BACKUPS, vm->ns, j->name, &m.vols[i], &ix[i],
                                  &meta_bytes, e);
    }
    if (rc)
        goto out;
    m.logical_bytes = logical;
    m.uploaded_bytes = tot.uploaded_bytes + meta_bytes;
    hb_buf enc = HB_BUF_INIT;
    if (hb_manifest_encode(&m, &enc, e) == 0)
        m.uploaded_bytes += enc.len + 24; /* + room for the digits of this number */
    hb_buf_free(&enc);
    hb_err_clear(e);
    if ((rc = hb_store_manifest_write(st, HB_KIND_BACKUPS, &m, e)))
        goto out;

    j->rec.state = HARVBK_STATE_READY;
    j->rec.uploaded_bytes = m.uploaded_bytes;
    j->rec.progress_bytes = logical;
    j->rec.crash_consistent = crash;
    atomic_store(&op->done, logical);

out:
    if (frozen) { /* failed or cancelled while frozen: thaw exactly once */
        int tr = j->thaw_cb ? j->thaw_cb(vm->ns, vm->name, j->freeze_payload) : 0;
        if (tr != 0)
            hb_log_error(&ctx->log, "%s: the thaw hook of VM %s/%s returned %d", what, vm->ns,
                         vm->name, tr);
    }
    if (rc) {
        j->rec.state = HARVBK_STATE_ERROR;
        j->rec.progress_bytes = atomic_load(&op->done);
        hb_record_set_error(&j->rec, rc, e->msg[0] ? e->msg : harvbk_strerror(rc));
    }
    persist_record(ctx, j);
    uint64_t ms = hb_mono_ms() - t0;
    if (rc == 0)
        hb_log_info(&ctx->log, "%s Ready: %llu bytes in %zu volume(s), %llu bytes uploaded "
                    "(%llu new chunks, %llu reused)%s in %llu.%03llu s",
                    what, (unsigned long long)m.logical_bytes, n,
                    (unsigned long long)m.uploaded_bytes, (unsigned long long)tot.new_chunks,
                    (unsigned long long)tot.reused_chunks, crash ? ", crash-consistent" : "",
                    (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
    else
        hb_log_error(&ctx->log, "%s failed after %llu ms: %s", what, (unsigned long long)ms,
                     e->msg);

    for (size_t i = 0; i < n; i++) {
        if (fds && fds[i] >= 0)
            close(fds[i]);
        if (ix)
            hb_index_clear(&ix[i]);
        if (prev && has_prev && has_prev[i])
            hb_index_clear(&prev[i]);
    }
    hb_free(fds);
    hb_free(sizes);
    hb_free(ix);
    hb_free(prev);
    hb_free(has_prev);
    hb_dset_free(known);
    hb_manifest_clear(&m);
    if (lease)
        hb_ctx_writer_lease_put(ctx);
    hb_ctx_use_del(ctx, HB_USE_WRITE, vm->ns, j->name);
    hb_reclock_release(ctx, vm->ns, j->name, j->lock_fd);
    backup_job_free(j);
    return rc;
}

/* ---- start ---- */

static int build_ranges(backup_job *j, const harvbk_ranges *rg, hb_err *e)
{
    if (!rg)
        return 0;
    j->use_ranges = true;
    if (!(j->changed = hb_calloc(j->vm->nvols, sizeof *j->changed)))
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; i < j->vm->nvols; i++) {
        const hb_ranges_vol *rv = hb_ranges_find(rg, j->vm->vols[i].name);
        /* absent from the set: unchanged (an empty set) */
        if (rv && rv->n && hb_rangeset_build(&j->changed[i], rv->r, rv->n) != 0)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    return 0;
}

static int backup_start(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                        const harvbk_backup_options *opts, hb_err *e)
{
    if (!vm)
        return hb_seterr(e, HARVBK_E_INVALID, "VM is NULL");
    int rc = hb_check_name("backup name", name, e);
    if (rc)
        return rc;
    if (vm->nvols == 0)
        return hb_seterr(e, HARVBK_E_INVALID, "VM %s/%s has no volume to back up", vm->ns,
                         vm->name);
    for (size_t i = 0; i < vm->nvols; i++)
        if (!vm->vols[i].path && !vm->vols[i].read_cb)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume %s of VM %s/%s has neither a path nor a read callback",
                             vm->vols[i].name, vm->ns, vm->name);
    if (opts->flags & ~HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT)
        return hb_seterr(e, HARVBK_E_INVALID, "unknown backup flags 0x%x", opts->flags);

    backup_job *j = hb_calloc(1, sizeof *j);
    if (!j)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    j->lock_fd = -1;
    j->flags = opts->flags;
    j->freeze_cb = opts->freeze_cb;
    j->thaw_cb = opts->thaw_cb;
    j->freeze_payload = opts->freeze_payload;
    if (!(j->name = hb_strdup(name)) || hb_vm_dup(&j->vm, vm) != 0) {
        backup_job_free(j);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if ((rc = build_ranges(j, opts->changed_ranges, e))) {
        backup_job_free(j);
        return rc;
    }

    hb_store_ref *sref = NULL;
    bool registered = false, record_written = false;
    harvbk_op *op = NULL;
    if ((rc = hb_ctx_store_acquire(ctx, &sref, e)))
        goto fail;
    hb_store *st = sref->st;
    if ((rc = hb_ctx_use_add(ctx, HB_USE_WRITE, vm->ns, name, e)))
        goto fail;
    registered = true;
    rc = hb_reclock_try(ctx, vm->ns, name, &j->lock_fd, e);
    if (rc == HARVBK_E_BUSY) {
        rc = hb_seterr(e, HARVBK_E_EXISTS, "backup %s/%s is already being created", vm->ns, name);
        goto fail;
    }
    if (rc)
        goto fail;
    char *mkey = hb_key_manifest(HB_KIND_BACKUPS, vm->ns, name);
    if (!mkey) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        goto fail;
    }
    uint64_t msize;
    rc = hb_target_head(st->t, mkey, &msize, e);
    hb_free(mkey);
    if (rc == 0) {
        rc = hb_seterr(e, HARVBK_E_EXISTS, "backup %s/%s already exists in the target", vm->ns,
                       name);
        goto fail;
    }
    if (rc != HARVBK_E_NOTFOUND)
        goto fail;
    hb_err_clear(e);

    /* A record of that name can only be an Error one, or an InProgress one
     * whose writer died (we hold its lock): a new backup replaces it. */
    hb_record old;
    if (hb_record_read(ctx, vm->ns, name, &old, e) == 0) {
        if (old.state == HARVBK_STATE_INPROGRESS && old.owner && *old.owner && old.store_id)
            hb_recovery_remember(ctx, old.owner, old.store_id);
        hb_log_info(&ctx->log, "backup %s/%s replaces an earlier %s attempt", vm->ns, name,
                    harvbk_state_name(old.state));
        hb_record_clear(&old);
    }
    hb_err_clear(e);

    hb_record *r = &j->rec;
    r->ns = hb_strdup(vm->ns);
    r->name = hb_strdup(name);
    r->vm_ns = hb_strdup(vm->ns);
    r->vm_name = hb_strdup(vm->name);
    r->error = hb_strdup("");
    r->owner = hb_strdup(ctx->owner);
    r->store_id = hb_strdup(st->id);
    r->state = HARVBK_STATE_INPROGRESS;
    r->created = hb_now();
    r->vols = hb_calloc(vm->nvols, sizeof *r->vols);
    bool ok = r->ns && r->name && r->vm_ns && r->vm_name && r->error && r->owner &&
              r->store_id && r->vols;
    for (size_t i = 0; ok && i < vm->nvols; i++, r->nvols++) {
        ok = (r->vols[i].name = hb_strdup(vm->vols[i].name)) != NULL;
        /* sizes as far as known now (a regular file's from stat; the thread
         * rewrites the record only when what it opens differs) */
        struct stat sb;
        if (!vm->vols[i].path)
            r->vols[i].size = vm->vols[i].size;
        else if (stat(vm->vols[i].path, &sb) == 0 && S_ISREG(sb.st_mode))
            r->vols[i].size = (uint64_t)sb.st_size;
        else
            r->vols[i].size = 0;
        r->logical_bytes += r->vols[i].size;
    }
    if (!ok) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        goto fail;
    }
    if ((rc = hb_record_write(ctx, r, e)))
        goto fail;
    record_written = true;

    rc = hb_op_new(&op, ctx, "backup", sref, opts->progress_cb, opts->progress_payload,
                   backup_run, backup_job_free, j, e);
    if (rc)
        goto fail;
    sref = NULL; /* the op holds it */
    j->op = op;
    if ((rc = hb_op_start(op, e)))
        goto fail;
    *out = op;
    return 0;

fail:
    if (record_written) {
        hb_err ignore;
        hb_record_remove(ctx, vm->ns, name, &ignore);
    }
    if (j->lock_fd >= 0)
        hb_reclock_release(ctx, vm->ns, name, j->lock_fd);
    j->lock_fd = -1;
    if (registered)
        hb_ctx_use_del(ctx, HB_USE_WRITE, vm->ns, name);
    if (op) {
        hb_op_discard(op); /* frees j, releases the store */
    } else {
        hb_ctx_store_release(ctx, sref);
        backup_job_free(j);
    }
    return rc;
}

int harvbk_backup_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                         const harvbk_backup_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return HARVBK_E_INVALID;
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "out is NULL");
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_backup_options defaults;
    harvbk_backup_options_init(&defaults, HARVBK_BACKUP_OPTIONS_VERSION);
    int rc = 0;
    if (!opts)
        opts = &defaults;
    else
        rc = hb_opts_version_check(opts->version, HARVBK_BACKUP_OPTIONS_VERSION,
                                   "backup options", &e);
    if (rc == 0)
        rc = backup_start(out, ctx, vm, name, opts, &e);
    return rc ? hb_ctx_fail(ctx, &e) : 0;
}
