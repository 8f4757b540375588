/*
 * ops/restore.c - harvbk_restore_create: a backup restored as a new VM.
 *
 * Every volume is written to a hidden partial file "DIR/.<vol>.raw.part-<hex>"
 * (or through the caller's write callback). Only after ALL volumes were
 * written and synced are the partial files renamed to "DIR/<vol>.raw"
 * (never replacing an existing file) and DIR synced; then the new VM is
 * registered. On any failure or cancel the partial files (and any file this
 * restore already renamed into place) are removed: a restore never leaves
 * wrong bytes under a volume's name. The restore holds the new VM's restore
 * lock and keeps a journal of its files in the state directory
 * (restore_journal.c), so that a process killed at any point leaves nothing
 * that the next open (or the next restore into that VM) does not remove.
 */
#include "ops.h"
#include "../core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct rs_vol {
    const hb_manifest_volume *mv;  /* in job->m */
    harvbk_volume_write_cb write_cb;
    void *payload;
    char *final, *part;            /* file volumes */
    bool part_made, renamed;
} rs_vol;

typedef struct restore_job {
    harvbk_ctx *ctx;
    int lock_fd;                   /* the new VM's restore lock */
    int read_fd;                   /* the backup's shared read lock */
    char *ns, *name;               /* the backup */
    char *new_ns, *new_name;
    char *dir;                     /* absolute; NULL when every volume has a callback */
    hb_manifest m;
    rs_vol *vols;
    size_t n;
} restore_job;

static void restore_job_free(void *p)
{
    restore_job *j = p;
    if (!j)
        return;
    if (j->lock_fd >= 0)
        hb_restore_lock_release(j->ctx, j->new_ns, j->new_name, j->lock_fd);
    if (j->read_fd >= 0)
        hb_readlock_release(j->ctx, j->ns, j->name, false, j->read_fd);
    for (size_t i = 0; j->vols && i < j->n; i++) {
        hb_free(j->vols[i].final);
        hb_free(j->vols[i].part);
    }
    hb_free(j->vols);
    hb_manifest_clear(&j->m);
    hb_free(j->ns);
    hb_free(j->name);
    hb_free(j->new_ns);
    hb_free(j->new_name);
    hb_free(j->dir);
    hb_free(j);
}

/* rename that fails with EEXIST instead of replacing */
static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    if (link(from, to) != 0) /* filesystems without renameat2 flags */
        return -1;
    unlink(from);
    return 0;
}

static int restore_file_volume(harvbk_op *op, hb_job *job, rs_vol *v, const hb_index *ix,
                               hb_err *e)
{
    int fd = open(v->part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return hb_seterr(e, hb_errno_code(errno), "cannot create '%s': %s", v->part,
                         strerror(errno));
    v->part_made = true;
    hb_vol_io io;
    memset(&io, 0, sizeof io);
    io.name = v->mv->name;
    io.fd = fd;
    io.size = v->mv->size;
    int rc = hb_engine_restore_volume(job, ix, &io, e);
    if (rc == 0 && fsync(fd) != 0)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot sync '%s': %s", v->part, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot close '%s': %s", v->part,
                       strerror(errno));
    return rc;
}

static int register_new_vm(harvbk_ctx *ctx, restore_job *j, hb_err *e)
{
    harvbk_vm *vm = NULL;
    int rc = harvbk_vm_new(&vm, j->new_ns, j->new_name);
    for (size_t i = 0; rc == 0 && i < j->n; i++)
        rc = hb_vm_push_volume(vm, j->vols[i].mv->name, j->vols[i].final, j->vols[i].mv->size,
                               NULL, NULL, NULL);
    if (rc == 0 && j->m.metadata.len)
        rc = harvbk_vm_set_metadata(vm, j->m.metadata.data, j->m.metadata.len);
    for (size_t i = 0; rc == 0 && i < j->m.nimages; i++)
        rc = harvbk_vm_add_image(vm, j->m.images[i]);
    if (rc) {
        harvbk_vm_free(vm);
        return hb_seterr(e, rc, "cannot describe the new VM %s/%s", j->new_ns, j->new_name);
    }
    vm->power = HARVBK_POWER_OFF;
    pthread_mutex_lock(&ctx->cat_mu);
    rc = hb_catalog_exists(ctx, j->new_ns, j->new_name, e);
    if (rc == 1)
        rc = hb_seterr(e, HARVBK_E_EXISTS, "VM %s/%s was registered while it was being restored",
                       j->new_ns, j->new_name);
    if (rc == 0)
        rc = hb_catalog_put(ctx, vm, true, e);
    pthread_mutex_unlock(&ctx->cat_mu);
    harvbk_vm_free(vm);
    return rc;
}

static int restore_run(harvbk_op *op, hb_err *e)
{
    restore_job *j = op->job;
    harvbk_ctx *ctx = op->ctx;
    hb_store *st = op->sref->st;
    uint64_t t0 = hb_mono_ms();
    char what[200];
    snprintf(what, sizeof what, "restore of backup %s/%s as VM %s/%s", j->ns, j->name, j->new_ns,
             j->new_name);
    atomic_store(&op->total, j->m.logical_bytes);
    hb_log_info(&ctx->log, "%s started (%zu volume(s), %llu bytes)", what, j->n,
                (unsigned long long)j->m.logical_bytes);

    /* the journal names every file this restore may create, before it does */
    int rc = 0;
    hb_rj_volume *jv = j->n ? hb_calloc(j->n, sizeof *jv) : NULL;
    hb_rjournal jr = { j->new_ns, j->new_name, j->dir, false, jv, 0 };
    bool journaled = false;
    if (j->n && !jv)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        if (j->vols[i].part) {
            jv[jr.n].name = j->vols[i].mv->name;
            jv[jr.n].part = j->vols[i].part;
            jv[jr.n].final = j->vols[i].final;
            jr.n++;
        }
    }
    if (rc == 0 && jr.n) {
        rc = hb_rjournal_write(ctx, &jr, e);
        journaled = rc == 0;
    }

    hb_job job;
    hb_op_job(op, st, &job);
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        if (hb_op_cancelled(op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
            break;
        }
        hb_index ix;
        rc = hb_store_index_read(st, HB_KIND_BACKUPS, &j->m, v->mv, &ix, e);
        if (rc)
            break;
        if (v->write_cb) {
            hb_vol_io io;
            memset(&io, 0, sizeof io);
            io.name = v->mv->name;
            io.fd = -1;
            io.size = v->mv->size;
            io.write_cb = v->write_cb;
            io.payload = v->payload;
            rc = hb_engine_restore_volume(&job, &ix, &io, e);
        } else {
            rc = restore_file_volume(op, &job, v, &ix, e);
        }
        hb_index_clear(&ix);
        if (rc == HARVBK_E_CANCELLED || (rc && hb_op_cancelled(op)))
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
    }
    if (rc == 0 && hb_op_cancelled(op))
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);

    /* before any file gets its final name: the journal learns which inodes
     * are this restore's, so that recovery removes exactly those */
    for (size_t i = 0; rc == 0 && journaled && i < jr.n; i++) {
        struct stat sb;
        if (stat(jv[i].part, &sb) != 0) {
            rc = hb_seterr(e, hb_errno_code(errno), "cannot stat '%s': %s", jv[i].part,
                           strerror(errno));
            break;
        }
        jv[i].dev = (uint64_t)sb.st_dev;
        jv[i].ino = (uint64_t)sb.st_ino;
    }
    if (rc == 0 && journaled) {
        jr.renaming = true;
        rc = hb_rjournal_write(ctx, &jr, e);
    }

    /* all written: move them into place, never over an existing file */
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        if (!v->part)
            continue;
        if (rename_noreplace(v->part, v->final) != 0) {
            int err = errno;
            rc = hb_seterr(e, err == EEXIST ? HARVBK_E_EXISTS : hb_errno_code(err),
                           "cannot move the restored volume %s to '%s': %s", v->mv->name,
                           v->final, strerror(err));
            break;
        }
        v->renamed = true;
        hb_log_debug(&ctx->log, "%s: volume %s moved into place as '%s'", what, v->mv->name,
                     v->final);
    }
    if (rc == 0 && j->dir)
        rc = hb_fsync_dir(j->dir, e);
    if (rc == 0)
        rc = register_new_vm(ctx, j, e);

    bool left_over = false;
    if (rc) { /* never leave wrong or partial bytes behind */
        for (size_t i = 0; i < j->n; i++) {
            rs_vol *v = &j->vols[i];
            const char *p = v->renamed ? v->final : v->part_made ? v->part : NULL;
            if (p && unlink(p) != 0 && errno != ENOENT) {
                hb_log_error(&ctx->log, "%s: cannot remove '%s': %s", what, p, strerror(errno));
                left_over = true; /* the journal stays: the next open tries again */
            }
        }
        if (j->dir) {
            hb_err ignore;
            hb_fsync_dir(j->dir, &ignore);
        }
    }
    if (journaled && !left_over) {
        hb_err je;
        hb_err_clear(&je);
        if (hb_rjournal_remove(ctx, j->new_ns, j->new_name, &je) != 0)
            hb_log_warn(&ctx->log, "%s: %s", what, je.msg); /* recovery finds it done */
    }
    hb_free(jv);
    uint64_t ms = hb_mono_ms() - t0;
    if (rc == 0) {
        atomic_store(&op->done, j->m.logical_bytes);
        hb_log_info(&ctx->log, "%s done: %llu bytes in %llu.%03llu s", what,
                    (unsigned long long)j->m.logical_bytes, (unsigned long long)(ms / 1000),
                    (unsigned long long)(ms % 1000));
    } else {
        hb_log_error(&ctx->log, "%s failed after %llu ms: %s", what, (unsigned long long)ms,
                     e->msg);
    }
    hb_ctx_use_del(ctx, HB_USE_NEWVM, j->new_ns, j->new_name);
    hb_ctx_use_del(ctx, HB_USE_READ, j->ns, j->name);
    restore_job_free(j);
    return rc;
}

/* ---- start ---- */

static int plan_volumes(restore_job *j, const harvbk_restore_options *opts, hb_err *e)
{
    j->n = j->m.nvols;
    if (j->n && !(j->vols = hb_calloc(j->n, sizeof *j->vols)))
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    bool need_dir = false;
    for (size_t i = 0; i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        v->mv = &j->m.vols[i];
        const hb_vm_volume *tv = hb_vm_find_volume(opts->target_vm, v->mv->name);
        if (tv && tv->write_cb) {
            if (tv->size < v->mv->size)
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "target volume %s has %llu bytes; the backup's volume has %llu",
                                 tv->name, (unsigned long long)tv->size,
                                 (unsigned long long)v->mv->size);
            v->write_cb = tv->write_cb;
            v->payload = tv->payload;
        } else {
            need_dir = true;
        }
    }
    if (!need_dir)
        return 0;
    if (!opts->target_dir || !*opts->target_dir)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "target_dir is required: not every volume has a write callback");
    int rc = hb_mkdir_p(opts->target_dir, 0700, e);
    if (rc)
        return rc;
    char *real = realpath(opts->target_dir, NULL);
    if (!real)
        return hb_seterr(e, hb_errno_code(errno), "cannot resolve '%s': %s", opts->target_dir,
                         strerror(errno));
    j->dir = hb_strdup(real);
    free(real);
    if (!j->dir)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        if (v->write_cb)
            continue;
        uint8_t rnd[4];
        char rhex[9];
        hb_random(rnd, sizeof rnd);
        hb_hex(rnd, sizeof rnd, rhex);
        v->final = hb_asprintf("%s/%s.raw", j->dir, v->mv->name);
        v->part = hb_asprintf("%s/.%s.raw.part-%s", j->dir, v->mv->name, rhex);
        if (!v->final || !v->part)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        struct stat sb;
        if (lstat(v->final, &sb) == 0)
            return hb_seterr(e, HARVBK_E_EXISTS, "'%s' already exists", v->final);
    }
    return 0;
}

static int restore_start(harvbk_op **out, harvbk_ctx *ctx, const char *ns, const char *name,
                         const harvbk_restore_options *opts, hb_err *e)
{
    int rc = hb_check_name("namespace", ns, e);
    if (rc == 0)
        rc = hb_check_name("backup name", name, e);
    if (rc == 0)
        rc = hb_check_name("new VM namespace", opts->new_vm_namespace, e);
    if (rc == 0)
        rc = hb_check_name("new VM name", opts->new_vm_name, e);
    if (rc == 0 && opts->flags)
        rc = hb_seterr(e, HARVBK_E_INVALID, "unknown restore flags 0x%x", opts->flags);
    if (rc)
        return rc;
    restore_job *j = hb_calloc(1, sizeof *j);
    if (j) {
        hb_manifest_init(&j->m);
        j->ctx = ctx;
        j->lock_fd = -1;
        j->read_fd = -1;
    }
    if (!j || !(j->ns = hb_strdup(ns)) || !(j->name = hb_strdup(name)) ||
        !(j->new_ns = hb_strdup(opts->new_vm_namespace)) ||
        !(j->new_name = hb_strdup(opts->new_vm_name))) {
        restore_job_free(j);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_store_ref *ref = NULL;
    harvbk_op *op = NULL;
    bool reading = false, newvm = false;
    if ((rc = hb_ctx_store_acquire(ctx, &ref, e)))
        goto fail;
    if ((rc = hb_ctx_use_add(ctx, HB_USE_READ, ns, name, e)))
        goto fail;
    reading = true;
    if ((rc = hb_readlock_try(ctx, ns, name, false, &j->read_fd, e)))
        goto fail;
    if ((rc = hb_ctx_use_add(ctx, HB_USE_NEWVM, j->new_ns, j->new_name, e)))
        goto fail;
    newvm = true;
    if ((rc = hb_backup_manifest_load(ctx, ref->st, ns, name, &j->m, e)))
        goto fail;
    rc = hb_catalog_exists(ctx, j->new_ns, j->new_name, e);
    if (rc == 1)
        rc = hb_seterr(e, HARVBK_E_EXISTS, "VM %s/%s already exists", j->new_ns, j->new_name);
    if (rc)
        goto fail;
    /* across processes: one restore into a VM at a time; and the leftovers
     * of a killed restore into it go before anything else is checked */
    rc = hb_restore_lock_try(ctx, j->new_ns, j->new_name, &j->lock_fd, e);
    if (rc == HARVBK_E_BUSY)
        rc = hb_seterr(e, HARVBK_E_EXISTS, "VM %s/%s is being restored by another process",
                       j->new_ns, j->new_name);
    if (rc == 0)
        rc = hb_rjournal_recover(ctx, j->new_ns, j->new_name, e);
    if (rc)
        goto fail;
    if ((rc = plan_volumes(j, opts, e)))
        goto fail;
    if ((rc = hb_op_new(&op, ctx, "restore", ref, opts->progress_cb, opts->progress_payload,
                        restore_run, restore_job_free, j, e)))
        goto fail;
    ref = NULL;
    if ((rc = hb_op_start(op, e)))
        goto fail;
    *out = op;
    return 0;
fail:
    if (newvm)
        hb_ctx_use_del(ctx, HB_USE_NEWVM, opts->new_vm_namespace, opts->new_vm_name);
    if (reading)
        hb_ctx_use_del(ctx, HB_USE_READ, ns, name);
    if (op) {
        hb_op_discard(op);
    } else {
        hb_ctx_store_release(ctx, ref);
        restore_job_free(j);
    }
    return rc;
}

int harvbk_restore_create(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                          const char *backup_name, const harvbk_restore_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return HARVBK_E_INVALID;
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "out is NULL");
    *out = NULL;
    if (!opts)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "restore options are required");
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_opts_version_check(opts->version, HARVBK_RESTORE_OPTIONS_VERSION,
                                   "restore options", &e);
    if (rc == 0)
        rc = restore_start(out, ctx, namespace_, backup_name, opts, &e);
    return rc ? hb_ctx_fail(ctx, &e) : 0;
}
