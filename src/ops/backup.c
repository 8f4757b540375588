/*
 * ops/backup.c - harvbk_backup_create: the backup operation; also the writer
 * of snapshots (harvbk_snapshot_create, kind HB_ENTRY_SNAPSHOT), which are the
 * same thing written to the context's local snapshot store.
 *
 * At start (caller's thread): validate, refuse when the VM's or namespace's
 * snapshot usage is at or over its quota, take the entry's record lock, check
 * that no entry of that name exists, write the InProgress record, start the
 * thread. On the thread:
 *   1. publish the context's writer lease, claim the entry's name (exactly
 *      one writer of any cluster wins it: docs/FORMAT.md "Claims"), then
 *      wait while a gc runs (the lease protocol of "Concurrency");
 *   2. open the volumes (their sizes are the backup's sizes);
 *   3. load the VM's newest backup in the target as the previous one: its
 *      indexes give unchanged chunks (with changed ranges) and chunk ids that
 *      need no upload - only those the store still holds (one listing);
 *   4. the freeze window (docs/THREADING.md): freeze (optional), capture
 *      what can be captured (capture.c: reflink, capture hook), read the
 *      volumes that were not captured (bounded by the freeze deadline),
 *      thaw, then read the captures, releasing each after its read;
 *   5. write the records of the VM's images (images/<ns>/<name>.json,
 *      docs/IMAGES.md), confirm the claim (after a lease lapse: renew, wait
 *      for gc, re-check every referenced chunk), write the indexes, then the
 *      manifest: that commit makes it Ready.
 * The record ends Ready or Error; lease, lock and registry are released
 * before the operation is reported finished.
 * Snapshots differ in: their own writer lease per operation (the owner id
 * "<ctx owner>-s<hex>" also names their temporaries, so recovery removes a
 * dead writer's leftovers exactly); quota checks after every volume (the new
 * chunks alone already exceed a limit) and, exactly, before the commit under
 * the namespace's quota lock; and on any failure they remove what they wrote
 * (indexes, and the chunks no committed snapshot references).
 */
#include "ops.h"
#include "../state/locks.h"
#include "../state/record.h"
#include "../state/recovery.h"
#include "../state/vm.h"
#include "../engine/rangeset.h"
#include "../core/fsutil.h"
#include "../core/ticker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PERSIST_EVERY_MS 1000u

typedef struct backup_job {
    harvbk_op *op;
    int kind;                      /* HB_ENTRY_BACKUP / HB_ENTRY_SNAPSHOT */
    const char *word;              /* "backup" / "snapshot" */
    const char *kdir;              /* "backups" / "snapshots" */
    char *owner;                   /* snapshots: this writer's owner id */
    hb_lease *lease;               /* snapshots: this writer's lease */
    hb_quota_state quota;          /* snapshots: limits and usage at start */
    harvbk_vm *vm;                 /* copy of the caller's VM */
    char *name;                    /* entry name; its namespace is vm->ns */
    char *schedule;                /* the schedule making it, NULL: none */
    unsigned flags;
    harvbk_freeze_cb freeze_cb, thaw_cb;
    void *freeze_payload;
    hb_capture_hooks hooks;        /* the freeze window's capture */
    uint32_t freeze_deadline_ms;   /* 0: none */
    bool use_ranges;
    hb_rangeset *changed;          /* per VM volume when use_ranges */
    int lock_fd;
    hb_record rec;
    /* while the persister runs (backup_run's volumes): its copies of rec and
     * the thaw's updates of rec */
    pthread_mutex_t rec_mu;
    hb_img_rec *imgs;              /* the VM's images, recorded before the commit */
    size_t nimgs;
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
    pthread_mutex_destroy(&j->rec_mu);
    hb_images_free(j->imgs, j->nimgs);
    harvbk_vm_free(j->vm);
    hb_free(j->name);
    hb_free(j->schedule);
    hb_free(j->owner);
    hb_free(j);
}

/* ---- progress: the record, persisted about once a second beside the pipeline ---- */

static void persist_record(harvbk_ctx *ctx, const hb_record *r)
{
    hb_err e;
    hb_err_clear(&e);
    if (hb_record_write(&ctx->state, r, &e) != 0)
        hb_log_warn(&ctx->log, "%s", e.msg);
}

/* The ticker's call while the volumes are read: the record with the bytes
 * done so far. A rewrite fsyncs the file and its directory, so it runs on a
 * thread of its own, never on a pipeline worker (it did, under the
 * pipeline's progress lock, and every worker then waited for the state
 * directory's device flush; bench/RESULTS.md "The record's progress off the
 * pipeline"). It writes a copy taken under rec_mu, which the thaw also
 * takes; nothing else changes rec while the ticker runs. */
static void persist_tick(void *arg)
{
    backup_job *j = arg;
    uint64_t done = atomic_load(&j->op->done);
    pthread_mutex_lock(&j->rec_mu);
    bool moved = done != j->rec.progress_bytes;
    j->rec.progress_bytes = done;
    hb_record r = j->rec; /* the strings and volumes stay put meanwhile */
    pthread_mutex_unlock(&j->rec_mu);
    if (moved)
        persist_record(j->op->ctx, &r);
}

/* ---- steps ---- */

/* Wait while a gc holds a live lease. A gc lease of a dead process of this
 * host is not live at all; one of another host stops being live at most a
 * TTL after its holder's last heartbeat, so the wait is bounded by the TTL
 * (plus a heartbeat period): a crashed gc delays backups, it never fails
 * them. Only a gc that is really running for longer than that does. */
static int wait_for_gc(harvbk_op *op, hb_store *st, const char *what, const char *where,
                       hb_err *e)
{
    uint64_t start = hb_mono_ms();
    uint64_t bound_ms = (uint64_t)HB_LEASE_TTL_S * 1200u + 2u * HB_GC_POLL_MS;
    if (bound_ms < HB_GC_WAIT_MS)
        bound_ms = HB_GC_WAIT_MS;
    bool logged = false;
    for (;;) {
        unsigned n = 0;
        int rc = hb_lease_count_live(st, "gc", NULL, &n, e);
        if (rc)
            return hb_err_prefix(e, "cannot check for a running gc");
        if (n == 0) {
            if (logged)
                hb_log_info(&op->ctx->log, "%s goes on: no garbage collection of the %s runs "
                            "any more (waited %llu ms)", what, where,
                            (unsigned long long)(hb_mono_ms() - start));
            return 0;
        }
        if (hb_mono_ms() - start >= bound_ms)
            return hb_seterr(e, HARVBK_E_BUSY,
                             "garbage collection of the %s is running (%u gc lease(s) "
                             "kept alive for over %llu s); try again later",
                             where, n, (unsigned long long)(bound_ms / 1000u));
        if (!logged) {
            hb_log_info(&op->ctx->log, "%s waits for a garbage collection of the %s to end "
                        "(%u gc lease(s); a crashed gc of another host expires within %d s)",
                        what, where, n, HB_LEASE_TTL_S);
            logged = true;
        }
        if (hb_op_sleep(op, HB_GC_POLL_MS))
            return hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
    }
}

typedef struct prev_search {
    const char *kdir;
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
    if (hb_store_manifest_read(ps->st, ps->kdir, ns, name, &m, &e) != 0) {
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
    ps.kdir = j->kdir;
    ps.vm_ns = j->vm->ns;
    ps.vm_name = j->vm->name;
    ps.self = j->name;
    /* The caller's changed ranges are relative to a backup it made: another
     * cluster sharing the target may have a VM of the same namespace/name
     * (a different VM), whose newer backup must never be the base. */
    ps.writer = j->use_ranges ? ctx->id : NULL;
    ps.st = st;
    hb_manifest_init(&ps.best);
    int rc = hb_store_entry_list(st, j->kdir, prev_one, &ps, e);
    if (rc) {
        hb_manifest_clear(&ps.best);
        return hb_err_prefix(e, "cannot list the %ss in the %s", j->word,
                             j->kind == HB_ENTRY_SNAPSHOT ? "snapshot store" : "target");
    }
    if (!ps.found) {
        hb_log_debug(&ctx->log, "%s %s/%s: no previous %s of VM %s/%s", j->word, j->vm->ns,
                     j->name, j->word, j->vm->ns, j->vm->name);
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
    hb_log_info(&ctx->log, "%s %s/%s: incremental from %s/%s", j->word, j->vm->ns, j->name,
                ps.best.ns, ps.best.name);
    for (size_t k = 0; k < ps.best.nvols && rc == 0; k++) {
        hb_index ix;
        hb_err ie;
        hb_err_clear(&ie);
        if (hb_store_index_read(st, j->kdir, &ps.best, &ps.best.vols[k], &ix, &ie)) {
            hb_log_warn(&ctx->log, "previous %s unusable for volume %s: %s", j->word,
                        ps.best.vols[k].name, ie.msg);
            continue;
        }
        for (uint64_t c = 0; c < ix.count && rc == 0; c++)
            if (!hb_index_is_hole(&ix, c) && hb_dset_add(known, hb_index_id(&ix, c)) < 0)
                rc = hb_seterr(e, HARVBK_E_NOMEM, "out of memory loading the previous %s",
                               j->word);
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
        char what[256];
        snprintf(what, sizeof what, "volume %s of VM %s/%s", v->name, vm->ns, vm->name);
        /* never blocks (a FIFO), refuses anything but a file or block device */
        int fd = hb_open_volume(v->path, O_RDONLY, 0, what, e);
        if (fd < 0)
            return fd;
        fds[i] = fd;
        int rc = hb_fd_size(fds[i], &sizes[i], e);
        if (rc)
            return hb_err_prefix(e, "volume %s of VM %s/%s", v->name, vm->ns, vm->name);
    }
    return 0;
}

static int fill_manifest(backup_job *j, hb_store *st, bool crash, hb_manifest *m, hb_err *e)
{
    const harvbk_vm *vm = j->vm;
    m->kind = hb_strdup(j->word);
    m->ns = hb_strdup(vm->ns);
    m->name = hb_strdup(j->name);
    m->vm_ns = hb_strdup(vm->ns);
    m->vm_name = hb_strdup(vm->name);
    m->writer = hb_strdup(j->op->ctx->id);
    if (j->schedule)
        m->schedule = hb_strdup(j->schedule);
    m->created = j->rec.created;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->completed = (int64_t)now.tv_sec;
    m->completed_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    m->chunk_size = st->chunk_size;
    m->codec = st->codec;
    m->crash_consistent = crash;
    m->thaw_failed = j->rec.thaw_failed;
    m->freeze = j->rec.freeze;
    bool ok = m->kind && m->ns && m->name && m->vm_ns && m->vm_name && m->writer &&
              (!j->schedule || m->schedule);
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

/* Before the commit. The writer lease and the claim make this safe unless the
 * lease lapsed (this process was stopped, or the target unreachable, for
 * longer than the TTL): then a gc of another context may have started,
 * taking this writer for dead, and swept chunks this backup reuses; and
 * another writer may have taken its claim for dead. So after a lapse: make
 * the lease visible again, wait until no gc runs (one that started before
 * the renewal may still be sweeping; one that starts after it sees the lease
 * and stops), then check that every chunk the indexes reference exists and
 * that nobody else claims the name. A new lapse meanwhile starts over. */
static int confirm_commit(harvbk_op *op, backup_job *j, hb_store *st, hb_lease *wl,
                          uint64_t *lapses, hb_claim *claim, const hb_index *ix, size_t n,
                          const char *what, hb_err *e)
{
    harvbk_ctx *ctx = op->ctx;
    bool lapsed = false;
    for (int round = 0; wl && hb_lease_lapses(wl) != *lapses; round++) {
        lapsed = true;
        if (round == 3)
            return hb_seterr(e, HARVBK_E_BUSY, "%s: the writer lease keeps lapsing; not "
                             "committing", what);
        hb_log_warn(&ctx->log, "%s: the writer lease lapsed (no heartbeat for more than %d s); "
                    "renewing it and checking every referenced chunk", what, HB_LEASE_TTL_S);
        int rc = hb_lease_renew(wl, e);
        if (rc)
            return rc;
        *lapses = hb_lease_lapses(wl);
        if ((rc = wait_for_gc(op, st, what,
                              j->kind == HB_ENTRY_SNAPSHOT ? "snapshot store" : "target", e)))
            return rc;
        hb_dset *refs = hb_dset_new(1024), *present = NULL;
        if (!refs)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        for (size_t v = 0; v < n && rc == 0; v++)
            for (uint64_t i = 0; i < ix[v].count && rc == 0; i++)
                if (!hb_index_is_hole(&ix[v], i) && hb_dset_add(refs, hb_index_id(&ix[v], i)) < 0)
                    rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        if (rc == 0)
            rc = hb_store_chunks_present(st, refs, &present, NULL, e);
        for (size_t v = 0; v < n && rc == 0; v++) {
            for (uint64_t i = 0; i < ix[v].count && rc == 0; i++) {
                if (hb_index_is_hole(&ix[v], i) || hb_dset_has(present, hb_index_id(&ix[v], i)))
                    continue;
                char hex[HB_DIGEST_HEX_LEN + 1];
                hb_hex(hb_index_id(&ix[v], i), HB_DIGEST_LEN, hex);
                rc = hb_seterr(e, HARVBK_E_CHUNK,
                               "volume '%s': chunk %s vanished while the writer lease had "
                               "lapsed (a concurrent gc); run the %s again",
                               j->vm->vols[v].name, hex, j->word);
            }
        }
        hb_dset_free(refs);
        hb_dset_free(present);
        if (rc)
            return rc;
    }
    /* after a lapse strictly: another writer may have taken the claim for dead */
    return claim ? hb_store_claim_confirm(claim, lapsed, e) : 0;
}

/* Delete the manifest this backup wrote (or may have written): it is not to
 * be restored. Best effort, logged when it fails; a manifest that is not
 * there is no failure. */
static void withdraw_manifest(harvbk_ctx *ctx, const backup_job *j, hb_store *st,
                              const char *which, const char *what)
{
    char *mkey = hb_key_manifest(j->kdir, j->vm->ns, j->name);
    hb_err de;
    hb_err_clear(&de);
    if (!mkey)
        hb_seterr(&de, HARVBK_E_NOMEM, NULL);
    else if (hb_target_del(st->t, mkey, &de) == 0)
        hb_log_warn(&ctx->log, "%s: no manifest of %s is left in the store", what, which);
    if (de.msg[0])
        hb_log_error(&ctx->log, "%s: cannot withdraw the manifest of %s: %s", what, which,
                     de.msg);
    hb_free(mkey);
}

/* How many chunks this backup would check one by one (a head() each on S3):
 * one per id of the previous backup, and one per chunk it may read and
 * upload (the allocated part of a regular file, or the changed ranges when
 * they apply; a block device or callback whole). Bounds what a listing of
 * chunks/ may cost instead. */
static uint64_t expected_checks(const backup_job *j, const hb_store *st, const int *fds,
                                const uint64_t *sizes, const bool *has_prev,
                                const hb_index *prev, size_t nknown)
{
    uint64_t cs = st->chunk_size ? st->chunk_size : 1, sum = nknown;
    for (size_t i = 0; i < j->vm->nvols; i++) {
        uint64_t bytes = sizes[i];
        struct stat sb;
        if (fds[i] >= 0 && fstat(fds[i], &sb) == 0 && S_ISREG(sb.st_mode) &&
            (uint64_t)sb.st_blocks * 512u < bytes)
            bytes = (uint64_t)sb.st_blocks * 512u;
        if (j->use_ranges && has_prev[i] && prev[i].volume_size == sizes[i]) {
            uint64_t ch = hb_rangeset_bytes(&j->changed[i]);
            if (ch < bytes)
                bytes = ch;
        }
        sum += bytes / cs + 1;
    }
    return sum;
}

/* Chunk ids the listing keeps in memory at most: 16 per expected check, at
 * least 256 Ki (~12 MiB), at most 4 Mi (~192 MiB, a store of 16 TiB of 4 MiB
 * chunks). A store with more chunk objects costs a head() per unknown chunk,
 * as without the listing. */
#define CENSUS_MIN (256u * 1024u)
#define CENSUS_MAX (4u * 1024u * 1024u)

/* Which chunks this backup may reuse without reading or uploading, and which
 * it may put without a head() first.
 *
 * The ids of the previous backup that the store still holds may be reused
 * (a chunk lost since, or named by a damaged index of another cluster, is
 * read and stored again). When the store is listed for that anyway, or when
 * a listing costs less than the head() per chunk a backup without one makes
 * (a new VM, a full backup: hb_store_chunks_census decides by cost), and the
 * listing ends within CENSUS_MAX ids, *known becomes every chunk of the store
 * and *complete is set: a chunk another VM stored is reused without a
 * request, and one absent from the listing is put without a head().
 *
 * Why a listed chunk may be reused without a head() until the commit: gc
 * deletes chunks only while it holds the gc lease, which it takes only when
 * no writer lease of another owner is live; this backup took its writer
 * lease and then waited until no gc lease was live (wait_for_gc) before the
 * listing, so no sweep runs from the listing to the commit (docs/FORMAT.md
 * section 9). The one exception, a writer lease that lapsed (this process
 * stopped or the target unreachable for longer than the TTL), is caught by
 * confirm_commit: it checks every chunk the indexes reference before the
 * commit. That is the same guarantee a head() gives, which is no later than
 * the listing for a chunk checked when it is first met. */
static int keep_present(backup_job *j, hb_store *st, const int *fds, const uint64_t *sizes,
                        const bool *has_prev, const hb_index *prev, hb_dset **known,
                        bool *complete, hb_err *e)
{
    *complete = false;
    size_t n = hb_dset_count(*known);
    uint64_t checks = expected_checks(j, st, fds, sizes, has_prev, prev, n);
    uint64_t cap = checks > CENSUS_MAX / 16 ? CENSUS_MAX : checks * 16;
    if (cap < CENSUS_MIN)
        cap = CENSUS_MIN;
    hb_dset *present = NULL;
    uint64_t listed = 0, t0 = hb_mono_ms();
    size_t have = 0;
    int rc = hb_store_chunks_census(st, *known, checks, (size_t)cap, &present, complete, &listed,
                                    &have, e);
    if (rc)
        return rc;
    if (n)
        hb_log(&j->op->ctx->log, have < n ? HARVBK_LOG_WARN : HARVBK_LOG_INFO,
               "%s %s/%s: %zu of the previous %s's %zu chunk(s) are in the store (%llu checked "
               "or listed in %llu ms)%s", j->word, j->vm->ns, j->name, have, j->word, n,
               (unsigned long long)listed, (unsigned long long)(hb_mono_ms() - t0),
               have < n ? "; the missing ones are read and stored again" : "");
    hb_log_debug(&j->op->ctx->log, "%s %s/%s: %s", j->word, j->vm->ns, j->name,
                 *complete ? "the store's chunks are listed: no head() per chunk"
                           : "the store is not listed whole: a head() per unknown chunk");
    if (*complete)
        hb_log_debug(&j->op->ctx->log, "%s %s/%s: %zu chunk(s) in the store", j->word,
                     j->vm->ns, j->name, hb_dset_count(present));
    hb_dset_free(*known);
    *known = present;
    return 0;
}

/* ---- snapshots: quotas and undoing a failed snapshot ---- */

static int quota_fail(backup_job *j, bool vm_limit, uint64_t usage, uint64_t limit,
                      const char *when, hb_err *e)
{
    const harvbk_vm *vm = j->vm;
    if (vm_limit)
        return hb_seterr(e, HARVBK_E_QUOTA,
                         "snapshot %s/%s %s: VM %s/%s would use %llu bytes of snapshot space, "
                         "over its quota of %llu bytes",
                         vm->ns, j->name, when, vm->ns, vm->name, (unsigned long long)usage,
                         (unsigned long long)limit);
    return hb_seterr(e, HARVBK_E_QUOTA,
                     "snapshot %s/%s %s: namespace %s would use %llu bytes of snapshot space, "
                     "over its quota of %llu bytes",
                     vm->ns, j->name, when, vm->ns, (unsigned long long)usage,
                     (unsigned long long)limit);
}

/* After a volume: the new chunks this snapshot stored are referenced by no
 * committed snapshot, so they add at least their size to both usages. */
static int quota_check_partial(backup_job *j, uint64_t new_bytes, hb_err *e)
{
    const hb_quota_state *q = &j->quota;
    if (q->has_vm && q->vm_usage + new_bytes > q->vm_limit)
        return quota_fail(j, true, q->vm_usage + new_bytes, q->vm_limit, "stopped", e);
    if (q->has_ns && q->ns_usage + new_bytes > q->ns_limit)
        return quota_fail(j, false, q->ns_usage + new_bytes, q->ns_limit, "stopped", e);
    return 0;
}

/* Before the commit, under the namespace's quota lock: the exact usages with
 * this snapshot's chunks added. */
static int quota_check_final(backup_job *j, hb_store *st, const hb_index *ix, size_t n,
                             hb_err *e)
{
    hb_quota_state *q = &j->quota;
    bool has_ns = false, has_vm = false;
    uint64_t ns_limit = 0, vm_limit = 0, ns_use = 0, vm_use = 0;
    /* limits may have changed since the start */
    int rc = hb_quota_limits(j->op->ctx, j->vm->ns, j->vm->name, &has_ns, &ns_limit, &has_vm,
                             &vm_limit, e);
    if (rc || (!has_ns && !has_vm))
        return rc;
    rc = hb_quota_usage(st, j->vm->ns, j->vm->name, ix, n, &ns_use, &vm_use, e);
    if (rc)
        return hb_err_prefix(e, "cannot compute the snapshot space usage");
    q->has_ns = has_ns;
    q->has_vm = has_vm;
    if (has_vm && vm_use > vm_limit)
        return quota_fail(j, true, vm_use, vm_limit, "refused", e);
    if (has_ns && ns_use > ns_limit)
        return quota_fail(j, false, ns_use, ns_limit, "refused", e);
    return 0;
}

/* A snapshot that failed removes what it wrote: its indexes, and the chunks
 * its indexes reference that no committed snapshot references (when no other
 * snapshot is being written; else a later gc does it). Usage counts committed
 * snapshots only, so it is unchanged either way. */
static void snapshot_undo(harvbk_ctx *ctx, backup_job *j, hb_store *st, const hb_index *ix,
                          size_t n)
{
    hb_err e;
    hb_err_clear(&e);
    /* deferred chunk puts still pending become visible (then they can go) */
    hb_store_chunk_sync(st, hb_store_chunk_sync_token(st), &e);
    hb_err_clear(&e);
    if (hb_store_entry_delete(st, j->kdir, j->vm->ns, j->name, &e) != 0)
        hb_log_warn(&ctx->log, "snapshot %s/%s: cannot remove its indexes: %s", j->vm->ns,
                    j->name, e.msg);
    hb_dset *cand = hb_dset_new(1024);
    for (size_t v = 0; cand && v < n; v++)
        for (uint64_t i = 0; ix[v].ids && i < ix[v].count; i++)
            if (!hb_index_is_hole(&ix[v], i))
                hb_dset_add(cand, hb_index_id(&ix[v], i));
    if (j->lease) { /* our own writer lease would stop the sweep */
        hb_lease_release(j->lease);
        j->lease = NULL;
    }
    uint64_t chunks = 0, bytes = 0;
    bool skipped = false;
    hb_err_clear(&e);
    if (!cand)
        hb_log_warn(&ctx->log, "snapshot %s/%s: out of memory; its chunks stay until the next "
                    "snapshot gc", j->vm->ns, j->name);
    else if (hb_sweep_candidates(ctx, st, j->kdir, cand, &chunks, &bytes, &skipped, &e) != 0)
        hb_log_warn(&ctx->log, "snapshot %s/%s: its chunks stay until the next snapshot gc: %s",
                    j->vm->ns, j->name, e.msg);
    else if (skipped)
        hb_log_info(&ctx->log, "snapshot %s/%s: another snapshot is being written; its chunks "
                    "stay until the next snapshot gc", j->vm->ns, j->name);
    else
        hb_log_info(&ctx->log, "snapshot %s/%s: removed %llu chunk(s), %llu bytes it had written",
                    j->vm->ns, j->name, (unsigned long long)chunks, (unsigned long long)bytes);
    hb_dset_free(cand);
}

/* ---- the freeze window ---- */

/* Thaw, once: record how long the VM was frozen (since frozen_at) and a
 * failing thaw hook (the data read while frozen is good: the entry is not
 * failed for it, but the caller learns the VM may still be frozen). */
static void thaw_once(backup_job *j, bool *frozen, uint64_t frozen_at, const char *what)
{
    if (!*frozen)
        return;
    *frozen = false;
    harvbk_ctx *ctx = j->op->ctx;
    const harvbk_vm *vm = j->vm;
    uint64_t frozen_ms = hb_mono_ms() - frozen_at;
    int tr = j->thaw_cb ? j->thaw_cb(vm->ns, vm->name, j->freeze_payload) : 0;
    pthread_mutex_lock(&j->rec_mu); /* the persister may be copying rec */
    j->rec.freeze.frozen = true;
    j->rec.freeze.frozen_ms = frozen_ms;
    j->rec.thaw_failed |= tr != 0;
    pthread_mutex_unlock(&j->rec_mu);
    if (tr != 0) {
        hb_log_error(&ctx->log, "%s: the thaw hook of VM %s/%s returned %d", what, vm->ns,
                     vm->name, tr);
    } else {
        hb_log_debug(&ctx->log, "%s: filesystems of VM %s/%s thawed after %llu ms", what,
                     vm->ns, vm->name, (unsigned long long)j->rec.freeze.frozen_ms);
    }
}

/* Capture every volume that can be (while frozen): methods into the record,
 * reflink sizes (the file's size at the freeze) into sizes[] and *logical. */
static int capture_all(backup_job *j, const int *fds, uint64_t *sizes, uint64_t *logical,
                       hb_capture *caps, const char *what, hb_err *e)
{
    harvbk_ctx *ctx = j->op->ctx;
    const harvbk_vm *vm = j->vm;
    size_t n = vm->nvols, by[3] = {0, 0, 0};
    uint64_t t0 = hb_mono_ms();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (hb_op_cancelled(j->op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
            break;
        }
        rc = hb_capture_volume(&j->hooks, vm, i, fds[i], sizes[i], &ctx->log, &caps[i], e);
        if (rc == 0 && caps[i].method == HB_CAPTURE_REFLINK && caps[i].size != sizes[i]) {
            *logical = *logical - sizes[i] + caps[i].size;
            sizes[i] = j->rec.vols[i].size = caps[i].size;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = hb_capture_name(caps[i].method);
        memcpy(j->rec.vols[i].capture, name, strlen(name) + 1);
        by[caps[i].method]++;
    }
    j->rec.logical_bytes = *logical;
    atomic_store(&j->op->total, *logical);
    const char *all = by[HB_CAPTURE_NONE] == n      ? ""
                      : by[HB_CAPTURE_REFLINK] == n ? "reflink"
                      : by[HB_CAPTURE_HOOK] == n    ? "hook"
                                                    : "mixed";
    memcpy(j->rec.freeze.capture, all, strlen(all) + 1);
    if (rc == 0)
        hb_log_info(&ctx->log, "%s: %zu of %zu volume(s) captured (%zu by reflink, %zu by the "
                    "capture hook) in %llu ms", what, n - by[HB_CAPTURE_NONE], n,
                    by[HB_CAPTURE_REFLINK], by[HB_CAPTURE_HOOK],
                    (unsigned long long)(hb_mono_ms() - t0));
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
    bool snap = j->kind == HB_ENTRY_SNAPSHOT;
    char what[160];
    snprintf(what, sizeof what, "%s %s/%s", j->word, vm->ns, j->name);

    int *fds = hb_calloc(n, sizeof *fds);
    uint64_t *sizes = hb_calloc(n, sizeof *sizes);
    hb_index *ix = hb_calloc(n, sizeof *ix);
    hb_index *prev = hb_calloc(n, sizeof *prev);
    bool *has_prev = hb_calloc(n, sizeof *has_prev);
    hb_capture *caps = hb_calloc(n, sizeof *caps);
    hb_dset *known = hb_dset_new(1024);
    hb_manifest m;
    hb_manifest_init(&m);
    hb_backup_stats tot;
    memset(&tot, 0, sizeof tot);
    bool lease = false, frozen = false, crash = false, known_is_store = false;
    uint64_t frozen_at = 0;
    char deadline_msg[400];
    hb_claim *claim = NULL;
    hb_lease *wl = NULL;
    uint64_t lapses = 0;
    int quota_fd = -1;
    uint64_t new_bytes = 0;
    int rc = 0;
    for (size_t i = 0; fds && i < n; i++)
        fds[i] = -1;
    for (size_t i = 0; caps && i < n; i++)
        caps[i].fd = -1;
    if (!fds || !sizes || !ix || !prev || !has_prev || !caps || !known) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, "out of memory starting %s", what);
        goto out;
    }
    hb_log_info(&ctx->log, "%s of VM %s/%s started (%zu volume(s))", what, vm->ns, vm->name, n);

    if (snap) {
        rc = hb_lease_acquire(st, "writer", j->owner, &j->lease, e);
    } else {
        rc = hb_ctx_writer_lease_get(ctx, st, e);
        lease = rc == 0;
    }
    if (rc)
        goto out;
    wl = snap ? j->lease : ctx->writer_lease; /* stable while we hold it */
    /* exactly one writer wins the name (docs/FORMAT.md "Claims") */
    if ((rc = hb_store_claim(st, j->kdir, vm->ns, j->name, snap ? j->owner : ctx->owner, &claim,
                             e))) {
        if (rc == HARVBK_E_EXISTS)
            hb_err_prefix(e, "%s", what);
        goto out;
    }
    if ((rc = wait_for_gc(op, st, what, snap ? "snapshot store" : "target", e)))
        goto out;
    lapses = hb_lease_lapses(wl);
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
        persist_record(ctx, &j->rec);

    if ((rc = load_previous(j, st, prev, has_prev, known, e)))
        goto out;
    if ((rc = keep_present(j, st, fds, sizes, has_prev, prev, &known, &known_is_store, e)))
        goto out;
    if (hb_op_cancelled(op)) {
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
        goto out;
    }

    if (j->freeze_cb) {
        int fr = j->freeze_cb(vm->ns, vm->name, j->freeze_payload);
        if (fr == 0) {
            frozen = true;
            frozen_at = hb_mono_ms();
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

    /* the freeze window: capture what can be captured, so the VM is thawed
     * before the captures are read (also for a crash-consistent entry, or a
     * capture hook without a freeze hook: one point in time for all volumes) */
    if ((j->freeze_cb || j->hooks.capture_cb) &&
        (rc = capture_all(j, fds, sizes, &logical, caps, what, e)))
        goto out;

    hb_job job;
    hb_op_job(op, st, &job);
    job.known_is_store = known_is_store;
    /* the record's progress, rewritten beside the pipeline (persist_tick);
     * without the thread it is written at the end only */
    hb_ticker persister;
    if (hb_ticker_start(&persister, PERSIST_EVERY_MS, persist_tick, j) != 0)
        hb_log_debug(&ctx->log, "%s: progress is recorded at the end only (no thread)", what);
    /* pass 0: the volumes not captured, read as they are (while frozen, within
     * the freeze deadline); then thaw; pass 1: the captures, each released
     * right after its read */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        if (pass == 1)
            thaw_once(j, &frozen, frozen_at, what);
        for (size_t i = 0; i < n && rc == 0; i++) {
            const hb_vm_volume *v = &vm->vols[i];
            bool captured = caps[i].method != HB_CAPTURE_NONE;
            if (captured != (pass == 1))
                continue;
            if (hb_op_cancelled(op)) {
                rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
                break;
            }
            job.deadline_ms = 0;
            job.deadline_msg = NULL;
            if (frozen && j->freeze_deadline_ms) {
                job.deadline_ms = frozen_at + j->freeze_deadline_ms;
                snprintf(deadline_msg, sizeof deadline_msg,
                         "%s: freeze deadline of %u ms passed while volume '%s' was read with "
                         "VM %s/%s frozen (the volume was not captured); the VM was thawed",
                         what, j->freeze_deadline_ms, v->name, vm->ns, vm->name);
                job.deadline_msg = deadline_msg;
            }
            hb_vol_io io;
            memset(&io, 0, sizeof io);
            io.name = v->name;
            io.fd = captured ? caps[i].fd : fds[i];
            io.size = sizes[i];
            io.read_cb = captured || v->path ? NULL : v->read_cb;
            io.payload = v->payload;
            /* changed ranges are relative to the previous backup of the same size */
            const hb_rangeset *ch =
                j->use_ranges && has_prev[i] && prev[i].volume_size == sizes[i] ? &j->changed[i]
                                                                                 : NULL;
            hb_backup_stats s;
            memset(&s, 0, sizeof s);
            rc = hb_engine_backup_volume(&job, &io, has_prev[i] ? &prev[i] : NULL, ch, known,
                                         &ix[i], &s, e);
            if (rc == 0) {
                hb_log_debug(&ctx->log, "%s volume %s%s: %llu bytes read, %llu skipped, %llu "
                             "holes, %llu new chunks (%llu bytes stored), %llu reused, %llu zero",
                             what, v->name, captured ? " (from its capture)" : "",
                             (unsigned long long)s.read_bytes,
                             (unsigned long long)s.skipped_bytes,
                             (unsigned long long)s.hole_bytes, (unsigned long long)s.new_chunks,
                             (unsigned long long)s.uploaded_bytes,
                             (unsigned long long)s.reused_chunks,
                             (unsigned long long)s.zero_chunks);
                tot.read_bytes += s.read_bytes;
                tot.new_chunks += s.new_chunks;
                tot.uploaded_bytes += s.uploaded_bytes;
                tot.reused_chunks += s.reused_chunks;
                new_bytes += s.uploaded_bytes;
                if (snap)
                    rc = quota_check_partial(j, new_bytes, e);
            } else if (rc == HARVBK_E_CANCELLED || hb_op_cancelled(op)) {
                rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
            }
            if (captured) {
                hb_err re;
                hb_err_clear(&re);
                int rr = hb_capture_release(&j->hooks, vm, i, &caps[i], &re);
                if (rr && rc == 0) {
                    rc = rr;
                    *e = re;
                } else if (rr) {
                    hb_log_error(&ctx->log, "%s: %s", what, re.msg);
                }
            }
        }
    }
    hb_ticker_stop(&persister); /* j->rec is this thread's again */
    thaw_once(j, &frozen, frozen_at, what); /* failed while frozen */
    if (rc)
        goto out;

    /* every byte is read: the progress hook hears done == total before the
     * commit, so that a hook that says stop there still cancels */
    atomic_store(&op->done, logical);
    hb_op_progress_flush(op);
    /* commit: indexes, then the manifest */
    if (hb_op_cancelled(op)) {
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
        goto out;
    }
    /* the VM's image records, shared by every entry that refers to them */
    if ((rc = hb_images_store_write(ctx, st, j->imgs, j->nimgs, what, e)))
        goto out;
    if (snap) {
        bool has_ns = false, has_vm = false;
        if ((rc = hb_quota_limits(ctx, vm->ns, vm->name, &has_ns, NULL, &has_vm, NULL, e)))
            goto out;
        if (has_ns || has_vm) {
            /* decide and commit in one step against other snapshots of the namespace */
            if ((rc = hb_quota_lock(ctx, vm->ns, &quota_fd, e)))
                goto out;
            if ((rc = quota_check_final(j, st, ix, n, e)))
                goto out;
        }
    }
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
        memcpy(m.vols[i].capture, j->rec.vols[i].capture, sizeof m.vols[i].capture);
        rc = hb_store_index_write(st, j->kdir, vm->ns, j->name, &m.vols[i], &ix[i],
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
    if ((rc = confirm_commit(op, j, st, wl, &lapses, claim, ix, n, what, e)))
        goto out;
    if ((rc = hb_store_manifest_write(st, j->kdir, &m, e))) {
        /* The manifest may be in place all the same: a put whose last step
         * failed (the directory's fsync after the rename), an S3 answer lost
         * after the object was stored. The backup failed, so it must not be
         * in the store either; the name is this backup's (the claim). */
        withdraw_manifest(ctx, j, st, "a backup that failed", what);
        goto out;
    }
    if (wl && hb_lease_lapses(wl) != lapses) {
        /* lapsed while the manifest was being written: a gc may have swept
         * meanwhile. Check again; uncommit what would not restore. */
        rc = confirm_commit(op, j, st, wl, &lapses, NULL, ix, n, what, e);
        if (rc) {
            withdraw_manifest(ctx, j, st, "a backup that may not restore", what);
            goto out;
        }
    }
    hb_store_claim_release(claim); /* the manifest holds the name now */
    claim = NULL;
    if (!snap)
        hb_sync_note_ready(ctx, st, &m); /* the catalog lists it from now on */

    j->rec.state = HARVBK_STATE_READY;
    j->rec.uploaded_bytes = m.uploaded_bytes;
    j->rec.progress_bytes = logical;
    j->rec.crash_consistent = crash;
    atomic_store(&op->done, logical);

out:
    thaw_once(j, &frozen, frozen_at, what); /* failed or cancelled while frozen: exactly once */
    for (size_t i = 0; caps && i < n; i++) { /* captures not read: released after the thaw */
        hb_err re;
        hb_err_clear(&re);
        if (hb_capture_release(&j->hooks, vm, i, &caps[i], &re) != 0)
            hb_log_error(&ctx->log, "%s: %s", what, re.msg);
    }
    if (rc) {
        j->rec.state = HARVBK_STATE_ERROR;
        j->rec.progress_bytes = atomic_load(&op->done);
        hb_record_set_error(&j->rec, rc, e->msg[0] ? e->msg : harvbk_strerror(rc));
        /* a loser never wrote anything under the name: nothing to undo */
        bool won = claim != NULL;
        hb_store_claim_release(claim);
        claim = NULL;
        if (snap && ix && won)
            snapshot_undo(ctx, j, st, ix, n);
    }
    hb_quota_unlock(quota_fd);
    persist_record(ctx, &j->rec);
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
    hb_free(caps);
    hb_dset_free(known);
    hb_manifest_clear(&m);
    if (lease)
        hb_ctx_writer_lease_put(ctx);
    hb_lease_release(j->lease);
    j->lease = NULL;
    if (!snap)
        hb_ctx_use_del(ctx, HB_USE_WRITE, vm->ns, j->name);
    hb_reclock_release_k(&ctx->state, j->kind, vm->ns, j->name, j->lock_fd);
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

int hb_writer_start(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                    const hb_writer_params *p, hb_err *e)
{
    bool snap = p->kind == HB_ENTRY_SNAPSHOT;
    const char *word = hb_entry_word(p->kind);
    if (!vm)
        return hb_seterr(e, HARVBK_E_INVALID, "%s: vm is NULL",
                         snap ? "harvbk_snapshot_create" : "harvbk_backup_create");
    int rc = hb_check_name(snap ? "snapshot name" : "backup name", name, e);
    if (rc)
        return rc;
    if (vm->nvols == 0)
        return hb_seterr(e, HARVBK_E_INVALID, "VM %s/%s has no volume to %s", vm->ns, vm->name,
                         snap ? "snapshot" : "back up");
    for (size_t i = 0; i < vm->nvols; i++)
        if (!vm->vols[i].path && !vm->vols[i].read_cb)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume %s of VM %s/%s has neither a path nor a read callback",
                             vm->vols[i].name, vm->ns, vm->name);
    if (p->flags & ~(HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT | HARVBK_BACKUP_NO_REFLINK))
        return hb_seterr(e, HARVBK_E_INVALID, "unknown %s flags 0x%x", word, p->flags);
    if (p->capture_cb && !p->release_cb)
        return hb_seterr(e, HARVBK_E_INVALID, "a capture hook needs a release hook");
    if (!snap && hb_ctx_target_read_only(ctx))
        return hb_seterr(e, HARVBK_E_READ_ONLY,
                         "the backup target is read-only: backup %s/%s is not created", vm->ns,
                         name);

    backup_job *j = hb_calloc(1, sizeof *j);
    if (!j)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (pthread_mutex_init(&j->rec_mu, NULL) != 0) {
        hb_free(j);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    j->kind = p->kind;
    j->word = word;
    j->kdir = hb_entry_dir(p->kind);
    j->lock_fd = -1;
    j->flags = p->flags;
    j->freeze_cb = p->freeze_cb;
    j->thaw_cb = p->thaw_cb;
    j->freeze_payload = p->freeze_payload;
    j->hooks.capture_cb = p->capture_cb;
    j->hooks.release_cb = p->release_cb;
    j->hooks.payload = p->capture_payload;
    j->hooks.no_reflink = (p->flags & HARVBK_BACKUP_NO_REFLINK) != 0;
    j->freeze_deadline_ms = p->freeze_deadline_ms;
    if (!(j->name = hb_strdup(name)) || hb_vm_dup(&j->vm, vm) != 0 ||
        (p->schedule && !(j->schedule = hb_strdup(p->schedule)))) {
        backup_job_free(j);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if (snap) {
        uint8_t rnd[4];
        char rhex[9];
        hb_random(rnd, sizeof rnd);
        hb_hex(rnd, sizeof rnd, rhex);
        if (!(j->owner = hb_asprintf("%s-s%s", ctx->owner, rhex))) {
            backup_job_free(j);
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        }
    }
    if ((rc = build_ranges(j, snap ? NULL : p->changed_ranges, e))) {
        backup_job_free(j);
        return rc;
    }
    /* the seed's rule: refused once the VM or namespace is at or over its quota */
    char what[160];
    snprintf(what, sizeof what, "%s %s/%s", word, vm->ns, name);
    /* the images as registered now (docs/IMAGES.md) */
    if ((rc = hb_images_collect(ctx, j->vm, what, &j->imgs, &j->nimgs, e))) {
        backup_job_free(j);
        return rc;
    }
    if ((rc = hb_quota_check_start(ctx, vm->ns, vm->name, what, &j->quota, e))) {
        backup_job_free(j);
        return rc;
    }

    hb_store_ref *sref = NULL;
    bool registered = false, record_written = false;
    harvbk_op *op = NULL;
    if (snap)
        rc = hb_snapstore_open(ctx, j->owner, true, &sref, e);
    else
        rc = hb_ctx_store_acquire(ctx, &sref, e);
    if (rc)
        goto fail;
    hb_store *st = sref->st;
    if (!snap) {
        if ((rc = hb_ctx_use_add(ctx, HB_USE_WRITE, vm->ns, name, e)))
            goto fail;
        registered = true;
    }
    rc = hb_reclock_try_k(&ctx->state, p->kind, vm->ns, name, &j->lock_fd, e);
    if (rc == HARVBK_E_BUSY) {
        rc = hb_seterr(e, HARVBK_E_EXISTS, "%s %s/%s is already being created", word, vm->ns,
                       name);
        goto fail;
    }
    if (rc)
        goto fail;
    char *mkey = hb_key_manifest(j->kdir, vm->ns, name);
    if (!mkey) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        goto fail;
    }
    uint64_t msize;
    rc = hb_target_head(st->t, mkey, &msize, e);
    hb_free(mkey);
    if (rc == 0) {
        rc = hb_seterr(e, HARVBK_E_EXISTS, "%s %s/%s already exists in the %s", word, vm->ns,
                       name, snap ? "snapshot store" : "target");
        goto fail;
    }
    if (rc != HARVBK_E_NOTFOUND)
        goto fail;
    hb_err_clear(e);

    /* A record of that name can only be an Error one, or an InProgress one
     * whose writer died (we hold its lock): a new entry replaces it. */
    hb_record old;
    if (hb_record_read_k(&ctx->state, p->kind, vm->ns, name, &old, e) == 0) {
        if (old.state == HARVBK_STATE_INPROGRESS && old.owner && *old.owner && old.store_id)
            hb_recovery_remember(&ctx->state, old.owner, old.store_id);
        hb_log_info(&ctx->log, "%s %s/%s replaces an earlier %s attempt", word, vm->ns, name,
                    harvbk_state_name(old.state));
        hb_record_clear(&old);
        if (snap) /* its leftover indexes (chunks: only what no snapshot uses) */
            hb_store_entry_delete(st, j->kdir, vm->ns, name, e);
    }
    hb_err_clear(e);

    hb_record *r = &j->rec;
    r->kind = p->kind;
    r->ns = hb_strdup(vm->ns);
    r->name = hb_strdup(name);
    r->vm_ns = hb_strdup(vm->ns);
    r->vm_name = hb_strdup(vm->name);
    r->error = hb_strdup("");
    r->owner = hb_strdup(snap ? j->owner : ctx->owner);
    r->store_id = hb_strdup(st->id);
    if (j->schedule)
        r->schedule = hb_strdup(j->schedule);
    r->state = HARVBK_STATE_INPROGRESS;
    r->created = hb_now();
    r->vols = hb_calloc(vm->nvols, sizeof *r->vols);
    bool ok = r->ns && r->name && r->vm_ns && r->vm_name && r->error && r->owner &&
              r->store_id && r->vols && (!j->schedule || r->schedule);
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
    if ((rc = hb_record_write(&ctx->state, r, e)))
        goto fail;
    record_written = true;

    rc = hb_op_new(&op, ctx, snap ? "snapshot" : "backup", sref, p->progress_cb,
                   p->progress_payload, backup_run, backup_job_free, j, e);
    if (rc)
        goto fail;
    sref = NULL; /* the op holds it */
    j->op = op;
    snprintf(op->what, sizeof op->what, "%s %s/%s of VM %s/%s", word, vm->ns, name, vm->ns,
             vm->name);
    if ((rc = hb_op_start(op, e)))
        goto fail;
    *out = op;
    return 0;

fail:
    if (record_written) {
        hb_err ignore;
        hb_record_remove_k(&ctx->state, p->kind, vm->ns, name, &ignore);
    }
    if (j->lock_fd >= 0)
        hb_reclock_release_k(&ctx->state, p->kind, vm->ns, name, j->lock_fd);
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
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_backup_options o; /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_BACKUP, &o, opts, &e);
    opts = &o;
    if (rc == 0 && opts->freeze_cb && !opts->thaw_cb)
        rc = hb_seterr(&e, HARVBK_E_INVALID, "a freeze hook needs a thaw hook");
    if (rc == 0) {
        hb_writer_params p;
        memset(&p, 0, sizeof p);
        p.kind = HB_ENTRY_BACKUP;
        p.capture_cb = opts->capture_cb;
        p.release_cb = opts->release_cb;
        p.capture_payload = opts->capture_payload;
        p.freeze_deadline_ms = opts->freeze_deadline_ms;
        p.flags = opts->flags;
        p.changed_ranges = opts->changed_ranges;
        p.progress_cb = opts->progress_cb;
        p.progress_payload = opts->progress_payload;
        p.freeze_cb = opts->freeze_cb;
        p.thaw_cb = opts->thaw_cb;
        p.freeze_payload = opts->freeze_payload;
        rc = hb_writer_start(out, ctx, vm, name, &p, &e);
    }
    return hb_ctx_fail_rc(ctx, rc, &e);
}
