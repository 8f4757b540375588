/*
 * ops/ctx.c - contexts: the state file, logging, per-context error
 * messages, the reference-counted store, the in-process registry of backups
 * in use, the shared writer lease, and the recovery scan at open.
 *
 * State directory layout (docs/THREADING.md tells who touches what; the
 * catalog, records, journals and locks are written by src/state/):
 *   harvbk-state.json          {"format":1,"context_id":"<uuid>"}, created once
 *   target.json                the target configuration (0600)
 *   vms/<ns>/<name>.json       the VM catalog
 *   backups/<ns>/<name>.json   local records of backups this context wrote
 *   restores/<ns>/<vm>.json    journals of restores into new VM ns/vm
 *   locks/<ns>_<name>.lock     flock held by the process writing that backup
 *   locks/<ns>_<name>.read.lock         shared by readers of it, exclusive for delete
 *   locks/<ns>_<vm>.restore.lock        held by the process restoring into that VM
 */
#include "ops.h"
#include "../core/ticker.h"
#include "../core/fsutil.h"
#include "../core/json.h"
#include "../state/recovery.h"
#include "../state/rjournal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE_MAX (64u * 1024u)
#define TARGET_FILE_MAX (1024u * 1024u)

/* ---- errors and logging ---- */

bool hb_ctx_ok(const harvbk_ctx *ctx)
{
    return ctx && ctx->magic == HB_CTX_MAGIC;
}

int hb_ctx_fail(harvbk_ctx *ctx, const hb_err *e)
{
    if (!e || e->code == 0)
        return 0;
    if (hb_ctx_ok(ctx)) {
        pthread_mutex_lock(&ctx->err_mu);
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s",
                 e->msg[0] ? e->msg : harvbk_strerror(e->code));
        pthread_mutex_unlock(&ctx->err_mu);
    }
    return hb_fail_err(e);
}

int hb_ctx_fail_rc(harvbk_ctx *ctx, int rc, const hb_err *e)
{
    if (rc == 0)
        return 0;
    if (e && e->code != 0)
        return hb_ctx_fail(ctx, e);
    hb_err x; /* a failure nobody described: its code and harvbk_strerror() */
    x.code = rc;
    snprintf(x.msg, sizeof x.msg, "%s", e && e->msg[0] ? e->msg : harvbk_strerror(rc));
    return hb_ctx_fail(ctx, &x);
}

int hb_ctx_bad(const harvbk_ctx *ctx, const char *fn)
{
    if (!ctx)
        return hb_fail(HARVBK_E_INVALID, "%s: ctx is NULL", fn);
    return hb_fail(HARVBK_E_INVALID, "%s: ctx is not a valid context (freed, or not a harvbk_ctx)",
                   fn);
}

int hb_ctx_failf(harvbk_ctx *ctx, int code, const char *fmt, ...)
{
    hb_err e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    e.code = code;
    return hb_ctx_fail(ctx, &e);
}

const char *harvbk_ctx_errmsg(const harvbk_ctx *ctx)
{
    return hb_ctx_ok(ctx) ? ctx->errmsg : "";
}

size_t harvbk_ctx_errmsg_copy(const harvbk_ctx *ctx, char *buf, size_t size)
{
    if (!hb_ctx_ok(ctx)) {
        if (buf && size)
            buf[0] = '\0';
        return 0;
    }
    harvbk_ctx *c = (harvbk_ctx *)ctx; /* the lock is not part of the value */
    pthread_mutex_lock(&c->err_mu);
    size_t len = strlen(c->errmsg);
    if (buf && size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, c->errmsg, n);
        buf[n] = '\0';
    }
    pthread_mutex_unlock(&c->err_mu);
    return len;
}

const char *harvbk_ctx_id(const harvbk_ctx *ctx)
{
    return hb_ctx_ok(ctx) ? ctx->id : "";
}

static void log_trampoline(int level, const char *message, void *payload)
{
    harvbk_ctx *ctx = payload;
    pthread_rwlock_rdlock(&ctx->log_lock);
    if (ctx->user_log_cb)
        ctx->user_log_cb(level, message, ctx->user_log_payload);
    pthread_rwlock_unlock(&ctx->log_lock);
}

int harvbk_ctx_set_log_hook(harvbk_ctx *ctx, harvbk_log_cb cb, void *payload, int max_level)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    pthread_rwlock_wrlock(&ctx->log_lock);
    ctx->user_log_cb = cb;
    ctx->user_log_payload = payload;
    /* hb_log() reads the level without the lock: an int store is the whole
     * change, and a message filtered by the old level is harmless. */
    __atomic_store_n(&ctx->log.level, cb ? max_level : -1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&ctx->log_lock);
    return 0;
}

/* ---- the state file ---- */

static int state_file_parse(harvbk_ctx *ctx, const char *path, const hb_buf *b, hb_err *e)
{
    cJSON *root = NULL;
    uint64_t format = 0;
    const char *id = NULL;
    int rc = hb_json_parse(b->data, b->len, "state file", &root, e);
    if (rc == 0 && !cJSON_IsObject(root))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "state file is not a JSON object");
    if (rc == 0)
        rc = hb_json_get_u64(root, "format", true, &format, "state file", e);
    if (rc == 0 && format > HB_STATE_FORMAT)
        rc = hb_seterr(e, HARVBK_E_FORMAT,
                       "state directory format %llu is newer than this library supports (%d)",
                       (unsigned long long)format, HB_STATE_FORMAT);
    if (rc == 0)
        rc = hb_json_get_str(root, "context_id", true, &id, "state file", e);
    if (rc == 0 && (strlen(id) != 36 || strspn(id, "0123456789abcdef-") != 36))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "state file: context_id \"%s\" is not a UUID", id);
    if (rc == 0)
        memcpy(ctx->id, id, 37);
    cJSON_Delete(root);
    if (rc)
        hb_err_prefix(e, "%s", path);
    return rc;
}

/* Load the state file, or create it exactly once even when two processes
 * open a new state directory at the same moment (link() is exclusive). */
static int state_file_init(harvbk_ctx *ctx, hb_err *e)
{
    char *path = hb_state_path(&ctx->state, HB_STATE_FILE, NULL, NULL);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = hb_read_file(path, &b, STATE_FILE_MAX, e);
        if (rc == 0) {
            rc = state_file_parse(ctx, path, &b, e);
            break;
        }
        if (rc != HARVBK_E_NOTFOUND)
            break;
        hb_err_clear(e);
        char id[37];
        hb_uuid(id);
        char *text = hb_asprintf("{\"format\":%d,\"context_id\":\"%s\"}\n", HB_STATE_FORMAT, id);
        uint8_t rnd[4];
        char rhex[9];
        hb_random(rnd, sizeof rnd);
        hb_hex(rnd, sizeof rnd, rhex);
        char *tmp = hb_asprintf("%s.new-%s", path, rhex);
        if (!text || !tmp) {
            hb_free(text);
            hb_free(tmp);
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        rc = hb_write_file_atomic(tmp, text, strlen(text), 0600, e);
        if (rc == 0) {
            if (link(tmp, path) == 0) {
                memcpy(ctx->id, id, sizeof id);
                rc = hb_fsync_dir(ctx->state.dir, e);
                unlink(tmp);
                hb_free(text);
                hb_free(tmp);
                break;
            }
            int err = errno;
            if (err != EEXIST)
                rc = hb_seterr(e, hb_errno_code(err), "cannot create '%s': %s", path,
                               strerror(err));
            unlink(tmp);
        }
        hb_free(text);
        hb_free(tmp);
        if (rc)
            break;
        /* somebody else created it first: read theirs */
        rc = HARVBK_E_NOTFOUND;
    }
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

static int target_file_load(harvbk_ctx *ctx, hb_err *e)
{
    char *path = hb_state_path(&ctx->state, HB_TARGET_FILE, NULL, NULL);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, TARGET_FILE_MAX, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        struct stat sb;
        if (stat(path, &sb) == 0 && (sb.st_mode & 077))
            chmod(path, 0600); /* it may hold a secret: never readable by others */
        rc = hb_target_cfg_from_json(&ctx->cfg, b.data, b.len, e);
        if (rc == 0 && (!ctx->cfg.url || !*ctx->cfg.url))
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "no URL");
        if (rc) {
            hb_err_prefix(e, "%s", path);
            hb_target_cfg_clear(&ctx->cfg);
            hb_target_cfg_init(&ctx->cfg);
        } else {
            ctx->has_target = true;
        }
    }
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

/* ---- recovery at open ---- */

typedef struct snap_open {
    harvbk_ctx *ctx;
    hb_store_ref *ref;
} snap_open;

/* The snapshot store, opened when the scan meets the first interrupted snapshot. */
static hb_store *snap_open_store(void *ud)
{
    snap_open *so = ud;
    hb_err e;
    hb_err_clear(&e);
    if (hb_snapstore_open(so->ctx, NULL, false, &so->ref, &e) != 0)
        hb_log_warn(&so->ctx->log, "cannot open the snapshot store to recover interrupted "
                    "snapshots: %s", e.msg);
    return so->ref ? so->ref->st : NULL;
}

int hb_recovery_scan(harvbk_ctx *ctx, hb_err *e)
{
    hb_recovery_sweep_temporaries(&ctx->state);
    int rc = hb_recovery_scan_records(&ctx->state, HB_ENTRY_BACKUP, NULL, NULL, e);
    if (rc == 0) {
        snap_open so = { ctx, NULL };
        rc = hb_recovery_scan_records(&ctx->state, HB_ENTRY_SNAPSHOT, snap_open_store, &so, e);
        if (so.ref) { /* the dead snapshot writers' temporaries and leases */
            hb_recovery_cleanup_pending(&ctx->state, so.ref->st, ctx->owner);
            hb_ctx_store_release(ctx, so.ref);
        }
    }
    if (rc == 0)
        rc = hb_rjournal_scan(&ctx->state, e);
    return rc;
}

/* ---- open / free ---- */

static int ctx_sync_init(harvbk_ctx *ctx)
{
    if (hb_cond_init_mono(&ctx->cv) != 0)
        return -1;
    pthread_mutex_init(&ctx->mu, NULL);
    pthread_mutex_init(&ctx->target_mu, NULL);
    pthread_mutex_init(&ctx->err_mu, NULL);
    pthread_mutex_init(&ctx->lease_mu, NULL);
    pthread_rwlock_init(&ctx->log_lock, NULL);
    return 0;
}

static void ctx_destroy(harvbk_ctx *ctx)
{
    if (ctx->store) {
        /* every op released its reference before its thread ended */
        if (--ctx->store->refs == 0) {
            hb_store_close(ctx->store->st);
            hb_free(ctx->store);
        }
        ctx->store = NULL;
    }
    hb_target_cfg_clear(&ctx->cfg);
    hb_key_free(ctx->snap_key);
    hb_store_crypt_unref(ctx->snap_crypt);
    while (ctx->uses) {
        hb_use *u = ctx->uses;
        ctx->uses = u->next;
        hb_free(u->ns);
        hb_free(u->name);
        hb_free(u);
    }
    pthread_cond_destroy(&ctx->cv);
    pthread_mutex_destroy(&ctx->mu);
    pthread_mutex_destroy(&ctx->target_mu);
    pthread_mutex_destroy(&ctx->err_mu);
    pthread_mutex_destroy(&ctx->lease_mu);
    pthread_rwlock_destroy(&ctx->log_lock);
    ctx->magic = 0;
    hb_state_fini(&ctx->state);
    hb_free(ctx);
}

int harvbk_ctx_open(harvbk_ctx **out, const char *state_dir, const harvbk_ctx_options *opts)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_ctx_open: out is NULL");
    *out = NULL;
    if (!state_dir || !*state_dir)
        return hb_fail(HARVBK_E_INVALID, "harvbk_ctx_open: the state directory must not be empty");
    harvbk_ctx_options o; /* only the members of the caller's version are read */
    hb_err oe;
    hb_err_clear(&oe);
    if (hb_opts_take(HB_OPTS_CTX, &o, opts, &oe) != 0)
        return hb_fail_err(&oe);
    opts = &o;

    harvbk_ctx *ctx = hb_calloc(1, sizeof *ctx);
    if (!ctx)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    if (ctx_sync_init(ctx) != 0) {
        hb_free(ctx);
        return hb_fail(HARVBK_E_NOMEM, NULL);
    }
    ctx->magic = HB_CTX_MAGIC;
    hb_target_cfg_init(&ctx->cfg);
    ctx->threads = opts->threads;
    ctx->user_log_cb = opts->log_cb;
    ctx->user_log_payload = opts->log_payload;
    ctx->log.cb = log_trampoline;
    ctx->log.payload = ctx;
    ctx->log.level = opts->log_cb ? opts->log_level : -1;

    hb_err e;
    hb_err_clear(&e);
    int rc = hb_state_init(&ctx->state, state_dir, &ctx->log, &e);
    if (rc == 0)
        rc = state_file_init(ctx, &e);
    if (rc == 0) {
        uint8_t rnd[4];
        char rhex[9];
        hb_random(rnd, sizeof rnd);
        hb_hex(rnd, sizeof rnd, rhex);
        snprintf(ctx->owner, sizeof ctx->owner, "%s-%ld-%s", ctx->id, (long)getpid(), rhex);
        rc = target_file_load(ctx, &e);
    }
    if (rc == 0)
        rc = hb_recovery_scan(ctx, &e);
    if (rc == 0)
        hb_sched_recover(ctx);
    if (rc) {
        hb_log_error(&ctx->log, "cannot open state directory '%s': %s", state_dir, e.msg);
        ctx_destroy(ctx);
        /* no context to hold the message: the thread's last error does */
        if (e.code == 0)
            e.code = rc;
        if (!strstr(e.msg, "state directory"))
            hb_err_prefix(&e, "cannot open state directory '%s'", state_dir);
        hb_fail(rc, "%s", e.msg);
        return rc;
    }
    hb_log_info(&ctx->log, "context %s opened on '%s'%s", ctx->id, ctx->state.dir,
                ctx->has_target ? "" : " (no backup target)");
    *out = ctx;
    return 0;
}

void harvbk_ctx_free(harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return;
    hb_op_ctx_release_all(ctx);
    hb_log_debug(&ctx->log, "context %s closed", ctx->id);
    ctx_destroy(ctx);
}

int harvbk_ctx_ops_in_progress(harvbk_ctx *ctx, unsigned int *out_count)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out_count)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out_count is NULL", __func__);
    pthread_mutex_lock(&ctx->mu);
    *out_count = ctx->nrunning;
    pthread_mutex_unlock(&ctx->mu);
    return 0;
}

/* ---- the store ---- */

int hb_ctx_open_store(harvbk_ctx *ctx, const hb_target_cfg *cfg, bool create,
                      hb_store_crypt *reuse, hb_store **out, hb_err *e)
{
    hb_target *t = NULL;
    *out = NULL;
    int rc = hb_target_open(&t, cfg, ctx->owner, &ctx->log, e);
    if (rc == 0)
        rc = hb_store_open_key(out, t, cfg, create, reuse, e);
    if (rc == HARVBK_E_KEY && e && !hb_target_cfg_encrypted(cfg)) {
        char msg[HB_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", e->msg);
        hb_seterr(e, rc, "%s: give its key (a key file or passphrase file in the target "
                  "configuration, or harvbk_ctx_set_target_key)", msg);
    }
    return rc;
}

int hb_ctx_store_acquire(harvbk_ctx *ctx, hb_store_ref **out, hb_err *e)
{
    pthread_mutex_lock(&ctx->target_mu);
    if ((*out = hb_ctx_store_peek(ctx))) {
        pthread_mutex_unlock(&ctx->target_mu);
        return 0;
    }
    pthread_mutex_lock(&ctx->mu);
    if (!ctx->has_target) {
        pthread_mutex_unlock(&ctx->mu);
        pthread_mutex_unlock(&ctx->target_mu);
        return hb_seterr(e, HARVBK_E_NOTARGET,
                         "no backup target is configured (see harvbk_ctx_set_target)");
    }
    hb_target_cfg cfg;
    hb_target_cfg_init(&cfg);
    int rc = hb_target_cfg_copy(&cfg, &ctx->cfg);
    pthread_mutex_unlock(&ctx->mu);
    if (rc) {
        hb_target_cfg_clear(&cfg);
        pthread_mutex_unlock(&ctx->target_mu);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    /* target_mu keeps set_target out while the store is opened */
    hb_store *st = NULL;
    rc = hb_ctx_open_store(ctx, &cfg, false, NULL, &st, e);
    hb_target_cfg_clear(&cfg);
    hb_store_ref *ref = NULL;
    if (rc == 0 && !(ref = hb_calloc(1, sizeof *ref))) {
        hb_store_close(st);
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if (rc == 0) {
        ref->st = st;
        ref->refs = 2; /* the context's slot + the caller */
        pthread_mutex_lock(&ctx->mu);
        ctx->store = ref;
        pthread_mutex_unlock(&ctx->mu);
        hb_log_debug(&ctx->log, "store %s opened in %s", st->id, st->t->display);
        hb_recovery_cleanup_store(&ctx->state, st, ctx->owner);
        *out = ref;
    }
    pthread_mutex_unlock(&ctx->target_mu);
    return rc;
}

hb_store_ref *hb_ctx_store_peek(harvbk_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    hb_store_ref *ref = ctx->store;
    if (ref)
        ref->refs++;
    pthread_mutex_unlock(&ctx->mu);
    return ref;
}

void hb_ctx_store_release(harvbk_ctx *ctx, hb_store_ref *ref)
{
    if (!ref)
        return;
    pthread_mutex_lock(&ctx->mu);
    bool last = --ref->refs == 0;
    pthread_mutex_unlock(&ctx->mu);
    if (last) {
        hb_store_close(ref->st);
        hb_free(ref);
    }
}

/* ---- the registry of backups in use in this process ---- */

static const char *use_conflict(int have, int want)
{
    switch (want) {
    case HB_USE_WRITE:
        if (have == HB_USE_WRITE)
            return "is being written";
        if (have == HB_USE_DELETE)
            return "is being deleted";
        return NULL;
    case HB_USE_READ:
        return have == HB_USE_DELETE ? "is being deleted" : NULL;
    case HB_USE_DELETE:
        if (have == HB_USE_WRITE)
            return "is being written";
        if (have == HB_USE_READ)
            return "is being restored or verified";
        if (have == HB_USE_DELETE)
            return "is being deleted";
        return NULL;
    case HB_USE_NEWVM:
        return have == HB_USE_NEWVM ? "is being restored" : NULL;
    default:
        return NULL;
    }
}

int hb_ctx_use_add(harvbk_ctx *ctx, int kind, const char *ns, const char *name, hb_err *e)
{
    pthread_mutex_lock(&ctx->mu);
    hb_use *same = NULL;
    for (hb_use *u = ctx->uses; u; u = u->next) {
        if (strcmp(u->ns, ns) != 0 || strcmp(u->name, name) != 0)
            continue;
        if ((kind == HB_USE_NEWVM) != (u->kind == HB_USE_NEWVM))
            continue; /* VM names and backup names are different spaces */
        const char *why = use_conflict(u->kind, kind);
        if (why) {
            pthread_mutex_unlock(&ctx->mu);
            int code = (kind == HB_USE_NEWVM || (kind == HB_USE_WRITE && u->kind == HB_USE_WRITE))
                           ? HARVBK_E_EXISTS
                           : HARVBK_E_BUSY;
            return hb_seterr(e, code, "%s %s/%s %s", kind == HB_USE_NEWVM ? "VM" : "backup", ns,
                             name, why);
        }
        if (u->kind == kind)
            same = u;
    }
    if (same) {
        same->count++;
        pthread_mutex_unlock(&ctx->mu);
        return 0;
    }
    hb_use *u = hb_calloc(1, sizeof *u);
    if (u && (!(u->ns = hb_strdup(ns)) || !(u->name = hb_strdup(name)))) {
        hb_free(u->ns);
        hb_free(u);
        u = NULL;
    }
    if (!u) {
        pthread_mutex_unlock(&ctx->mu);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    u->kind = kind;
    u->count = 1;
    u->next = ctx->uses;
    ctx->uses = u;
    pthread_mutex_unlock(&ctx->mu);
    return 0;
}

void hb_ctx_use_del(harvbk_ctx *ctx, int kind, const char *ns, const char *name)
{
    pthread_mutex_lock(&ctx->mu);
    for (hb_use **pp = &ctx->uses; *pp; pp = &(*pp)->next) {
        hb_use *u = *pp;
        if (u->kind != kind || strcmp(u->ns, ns) != 0 || strcmp(u->name, name) != 0)
            continue;
        if (--u->count == 0) {
            *pp = u->next;
            hb_free(u->ns);
            hb_free(u->name);
            hb_free(u);
        }
        break;
    }
    pthread_mutex_unlock(&ctx->mu);
}

/* ---- the writer lease, shared by the context's running backups ---- */

int hb_ctx_writer_lease_get(harvbk_ctx *ctx, hb_store *st, hb_err *e)
{
    pthread_mutex_lock(&ctx->lease_mu);
    int rc = 0;
    if (ctx->writer_refs > 0 && ctx->writer_store == st) {
        ctx->writer_refs++;
    } else if (ctx->writer_refs > 0) {
        /* cannot happen: set_target is refused while operations run */
        rc = hb_seterr(e, HARVBK_E_BUSY, "the context writes to another target");
    } else {
        rc = hb_lease_acquire(st, "writer", ctx->owner, &ctx->writer_lease, e);
        if (rc == 0) {
            ctx->writer_refs = 1;
            ctx->writer_store = st;
        }
    }
    pthread_mutex_unlock(&ctx->lease_mu);
    return rc;
}

int hb_ctx_writer_lease_check(harvbk_ctx *ctx, hb_err *e)
{
    pthread_mutex_lock(&ctx->lease_mu);
    int rc = ctx->writer_lease ? hb_lease_check(ctx->writer_lease, e) : 0;
    pthread_mutex_unlock(&ctx->lease_mu);
    return rc;
}

void hb_ctx_writer_lease_put(harvbk_ctx *ctx)
{
    pthread_mutex_lock(&ctx->lease_mu);
    if (ctx->writer_refs > 0 && --ctx->writer_refs == 0) {
        hb_lease_release(ctx->writer_lease);
        ctx->writer_lease = NULL;
        ctx->writer_store = NULL;
    }
    pthread_mutex_unlock(&ctx->lease_mu);
}
