/*
 * ops/restore.c - harvbk_restore_create / harvbk_snapshot_restore: a backup
 * or a snapshot restored as a new VM, or over an existing VM (replace).
 *
 * New VM: every volume is written to a hidden partial file
 * "DIR/.<vol>.raw.part-<hex>" (or through the caller's write callback). Only
 * after ALL volumes were written and synced are the partial files renamed to
 * "DIR/<vol>.raw" (never replacing an existing file) and DIR synced; then the
 * new VM is registered with its rewritten metadata (rewrite.c). On any
 * failure or cancel the partial files (and any file this restore already
 * renamed into place) are removed: a restore never leaves wrong bytes under a
 * volume's name. The restore holds the new VM's restore lock and keeps a
 * journal of its files in the state directory (restore_journal.c), so that a
 * process killed at any point leaves nothing that the next open (or the next
 * restore into that VM) does not remove.
 *
 * Replace: the VM must be registered and reported powered off. Each volume is
 * written beside the old one ("<dir>/.<file>.restore-<hex>"), synced, and
 * read back and checked against the index; only then are they swapped in and
 * the catalog entry switched; the previous volumes are deleted or retained
 * afterwards (restore_replace.c has the journal that makes this crash-safe).
 *
 * Both hold the source's shared read lock (a delete is refused meanwhile)
 * and the target VM's restore lock (one restore writes a VM at a time).
 *
 * Before the operation starts (on the caller's thread, after every other
 * check), the images the source refers to are found or recreated through
 * the context's image hook (image.c, docs/IMAGES.md); a missing one fails
 * the call with HARVBK_E_IMAGE and nothing written.
 */
#include "ops.h"
#include "../state/catalog.h"
#include "../state/locks.h"
#include "../state/rjournal.h"
#include "../state/vm.h"
#include "../core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct rs_vol {
    const hb_manifest_volume *mv;  /* in job->m */
    harvbk_volume_write_cb write_cb;
    void *payload;
    char *final, *part;            /* file volumes */
    char *aside, *retain;          /* replace: the old file at `final`, if any */
    char *claim;                   /* new VM: the name its references get */
    bool part_made, renamed;
    bool like_old;                 /* replace: give the new file the old one's mode/owner */
    mode_t mode;
    uid_t uid;
    gid_t gid;
} rs_vol;

typedef struct restore_job {
    harvbk_ctx *ctx;
    int kind;                      /* source: HB_ENTRY_BACKUP / HB_ENTRY_SNAPSHOT */
    bool replace, keep_mac, retain;
    int lock_fd;                   /* the target VM's restore lock */
    int read_fd;                   /* the source's shared read lock */
    char *ns, *name;               /* the source */
    char *new_ns, *new_name;       /* the VM created or replaced */
    char *dir;                     /* absolute; NULL when no file goes there */
    hb_manifest m;
    rs_vol *vols;
    size_t n;
    hb_rr_drop *drops;             /* replace: previous volumes the source lacks */
    size_t ndrops;
    harvbk_vm *old_vm;             /* replace: the VM as registered */
    harvbk_metadata_rewrite_cb rw_cb;
    void *rw_payload;
    hb_buf meta;                   /* the rewritten metadata */
    char **retained;               /* replace: kept previous volumes (to the op) */
    size_t nretained;
    char **images;                 /* the restored VM's image references (image.c) */
    size_t nimages;
} restore_job;

static void restore_job_free(void *p)
{
    restore_job *j = p;
    if (!j)
        return;
    if (j->lock_fd >= 0)
        hb_restore_lock_release(&j->ctx->state, j->new_ns, j->new_name, j->lock_fd);
    if (j->read_fd >= 0)
        hb_readlock_release_k(&j->ctx->state, j->kind, j->ns, j->name, false, j->read_fd);
    for (size_t i = 0; j->vols && i < j->n; i++) {
        hb_free(j->vols[i].final);
        hb_free(j->vols[i].part);
        hb_free(j->vols[i].aside);
        hb_free(j->vols[i].retain);
        hb_free(j->vols[i].claim);
    }
    hb_free(j->vols);
    for (size_t i = 0; i < j->ndrops; i++) {
        hb_free((char *)j->drops[i].path);
        hb_free((char *)j->drops[i].retain);
    }
    hb_free(j->drops);
    for (size_t i = 0; i < j->nretained; i++)
        hb_free(j->retained[i]);
    hb_free(j->retained);
    for (size_t i = 0; i < j->nimages; i++)
        hb_free(j->images[i]);
    hb_free(j->images);
    harvbk_vm_free(j->old_vm);
    hb_buf_free(&j->meta);
    hb_manifest_clear(&j->m);
    hb_free(j->ns);
    hb_free(j->name);
    hb_free(j->new_ns);
    hb_free(j->new_name);
    hb_free(j->dir);
    hb_free(j);
}

static int restore_file_volume(hb_job *job, rs_vol *v, const hb_index *ix, hb_err *e)
{
    int fd = open(v->part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return hb_seterr(e, hb_errno_code(errno), "cannot create '%s': %s", v->part,
                         strerror(errno));
    v->part_made = true;
    if (v->like_old) { /* the replaced volume keeps its permissions (owner: when allowed) */
        if (fchown(fd, v->uid, v->gid) != 0) {
            /* not root: the file stays ours */
        }
        if (fchmod(fd, v->mode & 07777) != 0) {
            int err = errno;
            close(fd);
            return hb_seterr(e, hb_errno_code(err), "cannot set the mode of '%s': %s", v->part,
                             strerror(err));
        }
    }
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

/* Read a written partial file back and check every chunk against the index
 * (holes and zero chunks must read as zeros). */
static int verify_part(harvbk_op *op, const hb_store *st, const rs_vol *v, const hb_index *ix,
                       hb_err *e)
{
    char what[200];
    snprintf(what, sizeof what, "restored volume %s", v->mv->name);
    int fd = hb_open_volume(v->part, O_RDONLY, 0, what, e); /* never blocks */
    if (fd < 0)
        return fd;
    uint64_t size = 0;
    int rc = hb_fd_size(fd, &size, e);
    if (rc == 0 && size != ix->volume_size)
        rc = hb_seterr(e, HARVBK_E_IO, "volume %s: '%s' has %llu bytes, not %llu", v->mv->name,
                       v->part, (unsigned long long)size, (unsigned long long)ix->volume_size);
    uint8_t *buf = rc == 0 ? hb_malloc(ix->chunk_size) : NULL;
    if (rc == 0 && !buf)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (uint64_t i = 0; rc == 0 && i < ix->count; i++) {
        if ((i & 63) == 0 && hb_op_cancelled(op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "cancelled");
            break;
        }
        uint32_t len = hb_index_chunk_len(ix, i);
        if ((rc = hb_pread_all(fd, buf, len, i * (uint64_t)ix->chunk_size, e)))
            break;
        bool ok;
        if (hb_index_is_hole(ix, i)) {
            ok = hb_is_zero(buf, len);
        } else {
            uint8_t d[HB_DIGEST_LEN];
            hb_store_chunk_id(st, buf, len, d);
            ok = memcmp(d, hb_index_id(ix, i), HB_DIGEST_LEN) == 0;
        }
        if (!ok)
            rc = hb_seterr(e, HARVBK_E_IO,
                           "volume %s: '%s' does not read back as written at offset %llu",
                           v->mv->name, v->part,
                           (unsigned long long)(i * (uint64_t)ix->chunk_size));
    }
    hb_free(buf);
    close(fd);
    return rc;
}

/* The new VM as it will be registered (volumes at their final paths). */
static int describe_vm(restore_job *j, harvbk_vm **out, hb_err *e)
{
    harvbk_vm *vm = NULL;
    int rc = harvbk_vm_new(&vm, j->new_ns, j->new_name);
    for (size_t i = 0; rc == 0 && i < j->n; i++)
        rc = hb_vm_push_volume(vm, j->vols[i].mv->name, j->vols[i].final, j->vols[i].mv->size,
                               NULL, NULL, NULL);
    if (rc == 0 && j->meta.len)
        rc = harvbk_vm_set_metadata(vm, j->meta.data, j->meta.len);
    for (size_t i = 0; rc == 0 && i < j->nimages; i++)
        rc = harvbk_vm_add_image(vm, j->images[i]);
    if (rc) {
        harvbk_vm_free(vm);
        return hb_seterr(e, rc, "cannot describe the VM %s/%s", j->new_ns, j->new_name);
    }
    vm->power = j->old_vm ? j->old_vm->power : HARVBK_POWER_OFF;
    *out = vm;
    return 0;
}

static int register_new_vm(harvbk_ctx *ctx, restore_job *j, hb_err *e)
{
    harvbk_vm *vm = NULL;
    int rc = describe_vm(j, &vm, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&ctx->state.cat_mu);
    rc = hb_catalog_exists(&ctx->state, j->new_ns, j->new_name, e);
    if (rc == 1)
        rc = hb_seterr(e, HARVBK_E_EXISTS, "VM %s/%s was registered while it was being restored",
                       j->new_ns, j->new_name);
    if (rc == 0)
        rc = hb_catalog_put(&ctx->state, vm, true, e);
    pthread_mutex_unlock(&ctx->state.cat_mu);
    harvbk_vm_free(vm);
    return rc;
}

static int rewrite_metadata(restore_job *j, hb_err *e)
{
    hb_rw_volume *rv = j->n ? hb_calloc(j->n, sizeof *rv) : NULL;
    if (j->n && !rv)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; i < j->n; i++) {
        rv[i].name = j->vols[i].mv->name;
        rv[i].claim = j->vols[i].claim;
        rv[i].path = j->vols[i].final;
    }
    harvbk_metadata_rewrite rw;
    hb_rewrite_init(&rw);
    rw.in = j->m.metadata.data;
    rw.in_len = j->m.metadata.len;
    rw.src_ns = j->m.vm_ns;
    rw.src_vm = j->m.vm_name;
    rw.ns = j->new_ns;
    rw.vm = j->new_name;
    rw.keep_mac = j->keep_mac || j->replace;
    rw.replace = j->replace;
    rw.vols = rv;
    rw.nvols = j->n;
    int rc = hb_rewrite_run(&rw, j->rw_cb, j->rw_payload, &j->meta, e);
    hb_rewrite_clear(&rw);
    hb_free(rv);
    return rc;
}

/* ---- writing the volumes (both kinds) ---- */

static int write_volumes(harvbk_op *op, restore_job *j, hb_store *st, const char *what,
                         bool verify, hb_rr_vol *rr, hb_err *e)
{
    hb_job job;
    hb_op_job(op, st, &job);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        if (hb_op_cancelled(op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
            break;
        }
        hb_index ix;
        rc = hb_store_index_read(st, hb_entry_dir(j->kind), &j->m, v->mv, &ix, e);
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
            rc = restore_file_volume(&job, v, &ix, e);
            if (rc == 0 && verify)
                rc = verify_part(op, st, v, &ix, e);
        }
        hb_index_clear(&ix);
        if (rc == HARVBK_E_CANCELLED || (rc && hb_op_cancelled(op)))
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
        if (rc == 0 && rr && v->part) {
            struct stat sb;
            if (stat(v->part, &sb) != 0)
                rc = hb_seterr(e, hb_errno_code(errno), "cannot stat '%s': %s", v->part,
                               strerror(errno));
            else {
                rr[i].dev = (uint64_t)sb.st_dev;
                rr[i].ino = (uint64_t)sb.st_ino;
            }
        }
    }
    if (rc == 0) /* before anything is moved into place or swapped */
        hb_op_progress_flush(op);
    if (rc == 0 && hb_op_cancelled(op))
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
    return rc;
}

/* ---- new VM ---- */

static int run_new_vm(harvbk_op *op, restore_job *j, hb_store *st, const char *what, hb_err *e)
{
    harvbk_ctx *ctx = op->ctx;
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
        rc = hb_rjournal_write(&ctx->state, &jr, e);
        journaled = rc == 0;
    }
    if (rc == 0)
        rc = write_volumes(op, j, st, what, false, NULL, e);

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
        rc = hb_rjournal_write(&ctx->state, &jr, e);
    }

    /* all written: move them into place, never over an existing file */
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        if (!v->part)
            continue;
        if (hb_rename_noreplace(v->part, v->final) != 0) {
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
        if (hb_rjournal_remove(&ctx->state, j->new_ns, j->new_name, &je) != 0)
            hb_log_warn(&ctx->log, "%s: %s", what, je.msg); /* recovery finds it done */
    }
    hb_free(jv);
    return rc;
}

/* ---- replace ---- */

static int run_replace(harvbk_op *op, restore_job *j, hb_store *st, const char *what, hb_err *e)
{
    harvbk_ctx *ctx = op->ctx;
    hb_rr_vol *rv = j->n ? hb_calloc(j->n, sizeof *rv) : NULL;
    int rc = j->n && !rv ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rv[i].name = j->vols[i].mv->name;
        rv[i].part = j->vols[i].part;
        rv[i].final = j->vols[i].final;
        rv[i].aside = j->vols[i].aside;
        rv[i].retain = j->vols[i].retain;
    }
    hb_rrjournal jr = { j->new_ns, j->new_name, "write", j->retain, rv, j->n,
                        j->drops, j->ndrops, NULL };
    bool journaled = false;
    char *vm_json = NULL;
    if (rc == 0) {
        rc = hb_rrjournal_write(&ctx->state, &jr, e);
        journaled = rc == 0;
    }
    /* written beside the old volumes, synced, read back and checked */
    if (rc == 0)
        rc = write_volumes(op, j, st, what, true, rv, e);
    if (rc == 0) {
        for (size_t i = 0; i < j->n; i++)
            if (j->vols[i].part_made)
                hb_log_debug(&ctx->log, "%s: volume %s written and verified in '%s'", what,
                             j->vols[i].mv->name, j->vols[i].part);
        jr.phase = "swap";
        rc = hb_rrjournal_write(&ctx->state, &jr, e);
    }
    /* still powered off? (the embedding program may have started it) */
    if (rc == 0) {
        harvbk_vm *cur = NULL;
        rc = hb_catalog_get(&ctx->state, j->new_ns, j->new_name, &cur, e);
        if (rc == 0 && cur->power != HARVBK_POWER_OFF)
            rc = hb_seterr(e, HARVBK_E_VM_RUNNING,
                           "VM %s/%s was reported %s during the restore; nothing was replaced",
                           j->new_ns, j->new_name,
                           cur->power == HARVBK_POWER_ON ? "powered on"
                                                         : "in an unknown power state");
        harvbk_vm_free(cur);
    }
    if (rc == 0 && hb_op_cancelled(op))
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "%s cancelled", what);
    if (rc == 0)
        rc = hb_rr_swap(&ctx->state, &jr, e);
    harvbk_vm *vm = NULL;
    if (rc == 0)
        rc = describe_vm(j, &vm, e);
    if (rc == 0 && !(vm_json = hb_catalog_encode(vm)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    harvbk_vm_free(vm);
    if (rc == 0) { /* the commit point: from here on the restore rolls forward */
        jr.phase = "commit";
        jr.vm_json = vm_json;
        rc = hb_rrjournal_write(&ctx->state, &jr, e);
    }
    if (rc) {
        if (journaled) {
            hb_err re;
            hb_err_clear(&re);
            if (hb_rr_rollback(&ctx->state, &jr, &re) == 0)
                hb_rjournal_remove(&ctx->state, j->new_ns, j->new_name, &re);
            else
                hb_log_error(&ctx->log, "%s: %s (the next open retries)", what, re.msg);
        }
        hb_free(vm_json);
        hb_free(rv);
        return rc;
    }
    rc = hb_rr_finish(&ctx->state, &jr, &j->retained, &j->nretained, e);
    if (rc == 0) {
        hb_err je;
        hb_err_clear(&je);
        if (hb_rjournal_remove(&ctx->state, j->new_ns, j->new_name, &je) != 0)
            hb_log_warn(&ctx->log, "%s: %s", what, je.msg);
    } else {
        hb_err_prefix(e, "%s completed, but its last step failed (the next open completes it)",
                      what);
    }
    hb_free(vm_json);
    hb_free(rv);
    return rc;
}

static int restore_run(harvbk_op *op, hb_err *e)
{
    restore_job *j = op->job;
    harvbk_ctx *ctx = op->ctx;
    hb_store *st = op->sref->st;
    uint64_t t0 = hb_mono_ms();
    char what[240];
    snprintf(what, sizeof what, "restore of %s %s/%s %s VM %s/%s", hb_entry_word(j->kind),
             j->ns, j->name, j->replace ? "over" : "as", j->new_ns, j->new_name);
    atomic_store(&op->total, j->m.logical_bytes);
    hb_log_info(&ctx->log, "%s started (%zu volume(s), %llu bytes)", what, j->n,
                (unsigned long long)j->m.logical_bytes);

    int rc = rewrite_metadata(j, e);
    if (rc == 0)
        rc = j->replace ? run_replace(op, j, st, what, e) : run_new_vm(op, j, st, what, e);

    uint64_t ms = hb_mono_ms() - t0;
    if (rc == 0) {
        atomic_store(&op->done, j->m.logical_bytes);
        /* handed to the op before it is reported finished */
        op->retained = j->retained;
        op->nretained = j->nretained;
        j->retained = NULL;
        j->nretained = 0;
        hb_log_info(&ctx->log, "%s done: %llu bytes in %llu.%03llu s", what,
                    (unsigned long long)j->m.logical_bytes, (unsigned long long)(ms / 1000),
                    (unsigned long long)(ms % 1000));
    } else {
        hb_log_error(&ctx->log, "%s failed after %llu ms: %s", what, (unsigned long long)ms,
                     e->msg);
    }
    if (!j->replace)
        hb_ctx_use_del(ctx, HB_USE_NEWVM, j->new_ns, j->new_name);
    if (j->kind == HB_ENTRY_BACKUP)
        hb_ctx_use_del(ctx, HB_USE_READ, j->ns, j->name);
    restore_job_free(j);
    return rc;
}

/* ---- start ---- */

static char *random_name(const char *dir, const char *base, const char *tag)
{
    uint8_t rnd[4];
    char rhex[9];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, rhex);
    return hb_asprintf("%s/.%s.%s-%s", dir, base, tag, rhex);
}

static int plan_new_vm(restore_job *j, const harvbk_restore_options *opts, hb_err *e)
{
    bool need_dir = false;
    for (size_t i = 0; i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        if (!(v->claim = hb_asprintf("%s-%s", j->new_name, v->mv->name)))
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        const hb_vm_volume *tv = hb_vm_find_volume(opts->target_vm, v->mv->name);
        if (tv && tv->write_cb) {
            if (tv->size < v->mv->size)
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "target volume %s has %llu bytes; the %s's volume has %llu",
                                 tv->name, (unsigned long long)tv->size,
                                 hb_entry_word(j->kind), (unsigned long long)v->mv->size);
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

/* "<path>.retained-<UTC time>[-N]" that does not exist yet and is not taken
 * by another volume of this restore. */
static char *retain_name(const char *path, const char *stamp, char **taken, size_t ntaken)
{
    for (unsigned k = 1; k < 1000; k++) {
        char *p = k == 1 ? hb_asprintf("%s.retained-%s", path, stamp)
                         : hb_asprintf("%s.retained-%s-%u", path, stamp, k);
        if (!p)
            return NULL;
        struct stat sb;
        bool used = lstat(p, &sb) == 0;
        for (size_t i = 0; !used && i < ntaken; i++)
            used = taken[i] && strcmp(taken[i], p) == 0;
        if (!used)
            return p;
        hb_free(p);
    }
    return NULL;
}

static char *dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    return sl && sl != path ? hb_strndup(path, (size_t)(sl - path)) : hb_strdup("/");
}

static int plan_replace(restore_job *j, const harvbk_restore_options *opts, hb_err *e)
{
    const harvbk_vm *old = j->old_vm;
    for (size_t i = 0; i < old->nvols; i++)
        if (!old->vols[i].path)
            return hb_seterr(e, HARVBK_E_UNSUPPORTED,
                             "volume %s of VM %s/%s is served by callbacks; only VMs whose "
                             "volumes are files or devices can be replaced",
                             old->vols[i].name, old->ns, old->name);
    char stamp[32];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tmv);
    char **taken = hb_calloc(j->n + old->nvols + 1, sizeof *taken);
    size_t ntaken = 0;
    if (!taken)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    /* where volumes the VM does not have yet go */
    if (opts->target_dir && *opts->target_dir) {
        if ((rc = hb_mkdir_p(opts->target_dir, 0700, e)) == 0) {
            char *real = realpath(opts->target_dir, NULL);
            if (!real)
                rc = hb_seterr(e, hb_errno_code(errno), "cannot resolve '%s': %s",
                               opts->target_dir, strerror(errno));
            else if (!(j->dir = hb_strdup(real)))
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            free(real);
        }
    } else if (old->nvols && !(j->dir = dir_of(old->vols[0].path))) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rs_vol *v = &j->vols[i];
        const hb_vm_volume *ov = hb_vm_find_volume(old, v->mv->name);
        char *dir = NULL;
        if (ov) {
            v->final = hb_strdup(ov->path);
            dir = dir_of(ov->path);
        } else if (j->dir) {
            v->final = hb_asprintf("%s/%s.raw", j->dir, v->mv->name);
            dir = hb_strdup(j->dir);
        } else {
            rc = hb_seterr(e, HARVBK_E_INVALID, "no directory for the new volume %s: give "
                           "target_dir", v->mv->name);
            break;
        }
        const char *base = v->final ? strrchr(v->final, '/') + 1 : NULL;
        if (!v->final || !dir || !(v->part = random_name(dir, base, "restore"))) {
            hb_free(dir);
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        struct stat sb;
        if (ov) {
            if (lstat(v->final, &sb) != 0) {
                rc = hb_seterr(e, hb_errno_code(errno), "volume %s of VM %s/%s: '%s': %s",
                               v->mv->name, old->ns, old->name, v->final, strerror(errno));
            } else if (!S_ISREG(sb.st_mode)) {
                rc = hb_seterr(e, HARVBK_E_UNSUPPORTED,
                               "volume %s of VM %s/%s is not a regular file ('%s'); it cannot "
                               "be replaced crash-safely",
                               v->mv->name, old->ns, old->name, v->final);
            } else if (!(v->aside = random_name(dir, base, "old"))) {
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            } else if (j->retain &&
                       !(v->retain = retain_name(v->final, stamp, taken, ntaken))) {
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            } else {
                if (v->retain)
                    taken[ntaken++] = v->retain;
                v->like_old = true;
                v->mode = sb.st_mode;
                v->uid = sb.st_uid;
                v->gid = sb.st_gid;
            }
        } else if (lstat(v->final, &sb) == 0) {
            rc = hb_seterr(e, HARVBK_E_EXISTS, "'%s' already exists", v->final);
        }
        hb_free(dir);
    }
    /* previous volumes the source does not have */
    for (size_t i = 0; rc == 0 && i < old->nvols; i++) {
        const hb_vm_volume *ov = &old->vols[i];
        bool kept = false;
        for (size_t k = 0; k < j->n; k++)
            kept |= strcmp(j->vols[k].mv->name, ov->name) == 0;
        if (kept)
            continue;
        if (!j->drops && !(j->drops = hb_calloc(old->nvols, sizeof *j->drops))) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        hb_rr_drop *d = &j->drops[j->ndrops++];
        d->path = hb_strdup(ov->path);
        if (j->retain && d->path) {
            d->retain = retain_name(d->path, stamp, taken, ntaken);
            taken[ntaken++] = (char *)d->retain;
        }
        if (!d->path || (j->retain && !d->retain))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_free(taken);
    return rc;
}

static int restore_start(harvbk_op **out, harvbk_ctx *ctx, int kind, const char *ns,
                         const char *name, const harvbk_restore_options *opts, hb_err *e)
{
    bool snap = kind == HB_ENTRY_SNAPSHOT;
    bool replace = (opts->flags & HARVBK_RESTORE_REPLACE) != 0;
    int rc = hb_check_name("namespace", ns, e);
    if (rc == 0)
        rc = hb_check_name(snap ? "snapshot name" : "backup name", name, e);
    if (rc == 0)
        rc = hb_check_name(replace ? "VM namespace" : "new VM namespace", opts->new_vm_namespace,
                           e);
    if (rc == 0)
        rc = hb_check_name(replace ? "VM name" : "new VM name", opts->new_vm_name, e);
    if (rc == 0 && (opts->flags & ~(HARVBK_RESTORE_KEEP_MAC | HARVBK_RESTORE_REPLACE)))
        rc = hb_seterr(e, HARVBK_E_INVALID, "unknown restore flags 0x%x", opts->flags);
    int policy = opts->deletion_policy;
    if (rc == 0 && policy != HARVBK_DELETION_POLICY_DEFAULT &&
        policy != HARVBK_DELETION_POLICY_DELETE && policy != HARVBK_DELETION_POLICY_RETAIN)
        rc = hb_seterr(e, HARVBK_E_INVALID, "unknown deletion policy %d", policy);
    if (rc == 0 && !replace && policy != HARVBK_DELETION_POLICY_DEFAULT)
        rc = hb_seterr(e, HARVBK_E_INVALID,
                       "a deletion policy applies only when replacing an existing VM");
    if (rc == 0 && replace && (opts->flags & HARVBK_RESTORE_KEEP_MAC))
        rc = hb_seterr(e, HARVBK_E_INVALID,
                       "keeping MAC addresses applies only to a new VM (a replaced VM keeps "
                       "its own)");
    if (rc == 0 && replace && opts->target_vm)
        rc = hb_seterr(e, HARVBK_E_INVALID,
                       "write callbacks (target_vm) are not supported when replacing a VM");
    if (rc == 0 && snap && strcmp(opts->new_vm_namespace, ns) != 0)
        rc = hb_seterr(e, HARVBK_E_CROSS_NAMESPACE,
                       "snapshot %s/%s cannot be restored into namespace %s: a snapshot is "
                       "restored only within its own namespace",
                       ns, name, opts->new_vm_namespace);
    if (rc == 0 && snap && replace && policy == HARVBK_DELETION_POLICY_DELETE)
        rc = hb_seterr(e, HARVBK_E_DELETION_POLICY,
                       "snapshot %s/%s: a restore from a snapshot can only retain the previous "
                       "volumes (deletion policy \"retain\")",
                       ns, name);
    if (rc)
        return rc;
    restore_job *j = hb_calloc(1, sizeof *j);
    if (j) {
        hb_manifest_init(&j->m);
        j->ctx = ctx;
        j->kind = kind;
        j->replace = replace;
        j->keep_mac = (opts->flags & HARVBK_RESTORE_KEEP_MAC) != 0;
        j->retain = policy == HARVBK_DELETION_POLICY_RETAIN ||
                    (policy == HARVBK_DELETION_POLICY_DEFAULT && snap);
        j->rw_cb = opts->metadata_rewrite_cb;
        j->rw_payload = opts->metadata_rewrite_payload;
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
    rc = hb_kind_store_acquire(ctx, kind, false, &ref, e);
    if (rc == HARVBK_E_NOTFOUND)
        hb_seterr(e, rc, "snapshot %s/%s not found", ns, name);
    if (rc)
        goto fail;
    if (!snap) {
        if ((rc = hb_ctx_use_add(ctx, HB_USE_READ, ns, name, e)))
            goto fail;
        reading = true;
    }
    if ((rc = hb_readlock_try_k(&ctx->state, kind, ns, name, false, &j->read_fd, e)))
        goto fail;
    if (!replace) {
        if ((rc = hb_ctx_use_add(ctx, HB_USE_NEWVM, j->new_ns, j->new_name, e)))
            goto fail;
        newvm = true;
    }
    if ((rc = hb_entry_manifest_load(ctx, ref->st, kind, ns, name, &j->m, e)))
        goto fail;
    if (!replace) {
        rc = hb_catalog_exists(&ctx->state, j->new_ns, j->new_name, e);
        if (rc == 1)
            rc = hb_seterr(e, HARVBK_E_EXISTS, "VM %s/%s already exists", j->new_ns,
                           j->new_name);
        if (rc)
            goto fail;
        if (j->keep_mac) {
            rc = hb_catalog_exists(&ctx->state, j->m.vm_ns, j->m.vm_name, e);
            if (rc == 1)
                rc = hb_seterr(e, HARVBK_E_KEEP_MAC,
                               "MAC addresses cannot be kept: the source VM %s/%s of %s %s/%s "
                               "still exists, and two VMs would share them",
                               j->m.vm_ns, j->m.vm_name, hb_entry_word(kind), ns, name);
            if (rc)
                goto fail;
        }
    }
    /* across processes: one restore into a VM at a time; and the leftovers
     * of a killed restore into it go before anything else is checked */
    rc = hb_restore_lock_try(&ctx->state, j->new_ns, j->new_name, &j->lock_fd, e);
    if (rc == HARVBK_E_BUSY && !replace)
        rc = hb_seterr(e, HARVBK_E_EXISTS, "VM %s/%s is being restored by another process",
                       j->new_ns, j->new_name);
    else if (rc == HARVBK_E_BUSY)
        rc = hb_seterr(e, HARVBK_E_BUSY, "VM %s/%s is being restored by another restore",
                       j->new_ns, j->new_name);
    if (rc == 0)
        rc = hb_rjournal_recover(&ctx->state, j->new_ns, j->new_name, e);
    if (rc)
        goto fail;
    j->n = j->m.nvols;
    if (j->n && !(j->vols = hb_calloc(j->n, sizeof *j->vols))) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        goto fail;
    }
    for (size_t i = 0; i < j->n; i++)
        j->vols[i].mv = &j->m.vols[i];
    if (replace) {
        rc = hb_catalog_get(&ctx->state, j->new_ns, j->new_name, &j->old_vm, e);
        if (rc == HARVBK_E_NOTFOUND)
            rc = hb_seterr(e, HARVBK_E_NOTFOUND,
                           "VM %s/%s is not registered: only an existing VM can be replaced "
                           "(restore as a new VM instead)",
                           j->new_ns, j->new_name);
        /* the seed's "replace existing" restores the VM the source was taken
         * of: its metadata (MAC addresses, volume references) describes that
         * VM, and would make another VM a twin of it */
        if (rc == 0 && (strcmp(j->m.vm_ns, j->new_ns) != 0 ||
                        strcmp(j->m.vm_name, j->new_name) != 0))
            rc = hb_seterr(e, HARVBK_E_INVALID,
                           "%s %s/%s was taken of VM %s/%s: it can replace only that VM, not "
                           "%s/%s (restore it as a new VM instead)",
                           hb_entry_word(kind), ns, name, j->m.vm_ns, j->m.vm_name, j->new_ns,
                           j->new_name);
        if (rc == 0 && j->old_vm->power != HARVBK_POWER_OFF)
            rc = hb_seterr(e, HARVBK_E_VM_RUNNING,
                           "VM %s/%s is %s; it must be reported powered off before it is "
                           "replaced",
                           j->new_ns, j->new_name,
                           j->old_vm->power == HARVBK_POWER_ON
                               ? "reported powered on"
                               : "not reported powered off (its power state is unknown)");
        if (rc == 0)
            rc = plan_replace(j, opts, e);
    } else {
        rc = plan_new_vm(j, opts, e);
    }
    if (rc)
        goto fail;
    /* the images the VM refers to exist here, or are recreated through the
     * image hook (on this thread), before anything is written */
    char src[160];
    snprintf(src, sizeof src, "%s %s/%s", hb_entry_word(kind), ns, name);
    if (j->m.nimages) { /* (a refusal the op would meet anyway: before the hook) */
        char what[240];
        snprintf(what, sizeof what, "restore of %s into VM %s/%s", src, j->new_ns, j->new_name);
        if ((rc = hb_maintenance_check(ctx, what, e)))
            goto fail;
    }
    if ((rc = hb_images_resolve(ctx, ref->st, snap ? "snapshot store" : "target", &j->m, src,
                                j->new_ns, &j->images, &j->nimages, e)))
        goto fail;
    if ((rc = hb_op_new(&op, ctx, "restore", ref, opts->progress_cb, opts->progress_payload,
                        restore_run, restore_job_free, j, e)))
        goto fail;
    ref = NULL;
    snprintf(op->what, sizeof op->what, "restore of %s %s/%s into VM %s/%s", snap ? "snapshot" : "backup",
             ns, name, j->new_ns, j->new_name);
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

static int restore_public(const char *fn, harvbk_op **out, harvbk_ctx *ctx, int kind,
                          const char *namespace_, const char *name,
                          const harvbk_restore_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, fn);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", fn);
    *out = NULL;
    if (!opts)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID,
                            "%s: opts is NULL (restore options are required)", fn);
    hb_err e;
    hb_err_clear(&e);
    harvbk_restore_options o; /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_RESTORE, &o, opts, &e);
    if (rc == 0)
        rc = restore_start(out, ctx, kind, namespace_, name, &o, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_restore_create(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                          const char *backup_name, const harvbk_restore_options *opts)
{
    return restore_public(__func__, out, ctx, HB_ENTRY_BACKUP, namespace_, backup_name, opts);
}

int harvbk_snapshot_restore(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                            const char *snapshot_name, const harvbk_restore_options *opts)
{
    return restore_public(__func__, out, ctx, HB_ENTRY_SNAPSHOT, namespace_, snapshot_name, opts);
}

size_t harvbk_restore_retained_count(const harvbk_op *op)
{
    if (!op || op->magic != HB_OP_MAGIC || strcmp(op->kind, "restore") != 0 ||
        harvbk_op_state(op) != HARVBK_STATE_READY)
        return 0;
    return op->nretained;
}

const char *harvbk_restore_retained_path(const harvbk_op *op, size_t i)
{
    return i < harvbk_restore_retained_count(op) ? op->retained[i] : NULL;
}
