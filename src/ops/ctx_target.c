/* ops/ctx_target.c - pointing a context at a backup target. */
#include "ops.h"
#include "../state/recovery.h"
#include "../core/fsutil.h"

#include <string.h>

static int save_target_file(harvbk_ctx *ctx, const hb_target_cfg *cfg, hb_err *e)
{
    char *path = hb_state_path(&ctx->state, HB_TARGET_FILE, NULL, NULL);
    char *text = hb_target_cfg_to_json(cfg); /* the secret only when store_secret */
    int rc = (!path || !text) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    if (rc)
        hb_err_prefix(e, "cannot save the target configuration");
    if (text)
        hb_free_secret(text);
    hb_free(path);
    return rc;
}

int harvbk_ctx_set_target(harvbk_ctx *ctx, const harvbk_target_config *cfg)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!cfg)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: cfg is NULL", __func__);
    if (!cfg->cfg.url || !*cfg->cfg.url)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "the target configuration has no URL");
    hb_err e;
    hb_err_clear(&e);
    hb_target_cfg copy;
    hb_target_cfg_init(&copy);
    if (hb_target_cfg_copy(&copy, &cfg->cfg) != 0) {
        hb_target_cfg_clear(&copy);
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    }
    char *display = hb_target_cfg_display(&copy);

    pthread_mutex_lock(&ctx->target_mu);
    pthread_mutex_lock(&ctx->mu);
    unsigned running = ctx->nrunning;
    pthread_mutex_unlock(&ctx->mu);
    int rc = 0;
    hb_store *st = NULL;
    if (running)
        rc = hb_seterr(&e, HARVBK_E_BUSY,
                       "cannot change the target while %u operation(s) run; wait for them",
                       running);
    /* Open it now, so that a bad scheme, an unreachable target or a store of
     * a newer format is reported here and not by the first backup. */
    if (rc == 0)
        rc = hb_ctx_open_store(ctx, &copy, true, NULL, &st, &e);
    if (rc == 0)
        rc = save_target_file(ctx, &copy, &e);
    hb_store_ref *ref = NULL;
    if (rc == 0 && !(ref = hb_calloc(1, sizeof *ref)))
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    hb_store_ref *old = NULL;
    if (rc == 0) {
        ref->st = st;
        ref->refs = 1; /* the context's slot */
        st = NULL;
        pthread_mutex_lock(&ctx->mu);
        old = ctx->store;
        ctx->store = ref;
        hb_target_cfg tmp = ctx->cfg;
        ctx->cfg = copy;
        copy = tmp; /* the old configuration is cleared below */
        ctx->has_target = true;
        pthread_mutex_unlock(&ctx->mu);
        hb_recovery_cleanup_store(&ctx->state, ref->st, ctx->owner);
    }
    pthread_mutex_unlock(&ctx->target_mu);
    hb_store_close(st);
    hb_target_cfg_clear(&copy);
    if (old)
        hb_ctx_store_release(ctx, old); /* closed once nobody uses it */
    if (rc) {
        hb_log_error(&ctx->log, "cannot set the backup target %s: %s",
                     display ? display : "", e.msg);
        hb_free(display);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    hb_log_info(&ctx->log, "backup target set to %s (store %s)", display ? display : "",
                ref->st->id);
    hb_free(display);
    /* a new target: its backups enter the catalog now (docs/CATALOG.md); a
     * failure leaves the catalog to the next sync (list syncs first) */
    hb_err_clear(&e);
    if (hb_sync_run(ctx, NULL, &e) != 0)
        hb_log_warn(&ctx->log, "the backup catalog is not synced yet: %s", e.msg);
    return 0;
}

int harvbk_ctx_set_target_secret(harvbk_ctx *ctx, const char *secret)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    hb_target_cfg tmp; /* validates the value; holds the secret being replaced after the swap */
    hb_target_cfg_init(&tmp);
    int rc = hb_target_cfg_set(&tmp, HARVBK_TARGET_SECRET_ACCESS_KEY, secret, &e);
    hb_store_ref *old = NULL;
    if (rc == 0) {
        pthread_mutex_lock(&ctx->target_mu);
        pthread_mutex_lock(&ctx->mu);
        if (!ctx->has_target) {
            rc = hb_seterr(&e, HARVBK_E_NOTARGET, "no backup target is configured");
        } else if (ctx->nrunning) {
            rc = hb_seterr(&e, HARVBK_E_BUSY,
                           "cannot change the target's secret while %u operation(s) run",
                           ctx->nrunning);
        } else {
            char *prev = ctx->cfg.secret_access_key;
            ctx->cfg.secret_access_key = tmp.secret_access_key;
            tmp.secret_access_key = prev;
            /* the open store's target was made with the old secret: reopen on next use */
            old = ctx->store;
            ctx->store = NULL;
        }
        pthread_mutex_unlock(&ctx->mu);
        pthread_mutex_unlock(&ctx->target_mu);
    }
    hb_target_cfg_clear(&tmp); /* wipes whichever secret it holds */
    if (old)
        hb_ctx_store_release(ctx, old);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_ctx_get_target(harvbk_ctx *ctx, harvbk_target_config **out)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    harvbk_target_config *c = NULL;
    if (harvbk_target_config_new(&c) != 0)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    pthread_mutex_lock(&ctx->mu);
    bool has = ctx->has_target;
    int rc = has ? hb_target_cfg_copy(&c->cfg, &ctx->cfg) : 0;
    pthread_mutex_unlock(&ctx->mu);
    if (!has || rc) {
        harvbk_target_config_free(c);
        if (!has)
            return hb_ctx_failf(ctx, HARVBK_E_NOTARGET, "no backup target is configured");
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    }
    if (c->cfg.secret_access_key) { /* the secret never leaves the library */
        hb_secure_strfree(c->cfg.secret_access_key);
        c->cfg.secret_access_key = NULL;
    }
    if (c->cfg.key) /* nor does a session key; the encryption it implied stays said */
        c->cfg.encrypt = true;
    hb_key_free(c->cfg.key);
    c->cfg.key = NULL;
    *out = c;
    return 0;
}

int hb_ctx_check_target(harvbk_ctx *ctx, hb_err *ep)
{
    hb_err e;
    hb_err_clear(&e);
    hb_store_ref *ref = NULL;
    /* opening the store (first use) reads and checks its config */
    int rc = hb_ctx_store_acquire(ctx, &ref, &e);
    if (rc == 0) {
        hb_target *t = ref->st->t;
        rc = t->ops->ping(t, &e);
        if (rc)
            hb_err_prefix(&e, "target %s", t->display);
    }
    if (rc == 0) {
        /* the store must still be there, be the same one and be readable by
         * this library (its format may have been upgraded since it was opened) */
        hb_buf b = HB_BUF_INIT;
        rc = hb_target_get_max(ref->st->t, HB_STORE_CONFIG_KEY, &b, 1024u * 1024u, &e);
        hb_buf_free(&b);
        if (rc == HARVBK_E_NOTFOUND)
            rc = hb_seterr(&e, HARVBK_E_TARGET, "target %s no longer holds the store %s",
                           ref->st->t->display, ref->st->id);
        hb_target_cfg cfg;
        hb_target_cfg_init(&cfg);
        if (rc == 0) {
            pthread_mutex_lock(&ctx->mu);
            if (hb_target_cfg_copy(&cfg, &ctx->cfg) != 0)
                rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
            pthread_mutex_unlock(&ctx->mu);
        }
        hb_store *fresh = NULL;
        if (rc == 0)
            rc = hb_ctx_open_store(ctx, &cfg, false, ref->st->crypt, &fresh,
                                   &e); /* parses the config again */
        if (rc == 0 && strcmp(fresh->id, ref->st->id) != 0)
            rc = hb_seterr(&e, HARVBK_E_TARGET,
                           "target %s now holds store %s instead of %s; set the target again",
                           ref->st->t->display, fresh->id, ref->st->id);
        hb_store_close(fresh);
        hb_target_cfg_clear(&cfg);
    }
    hb_ctx_store_release(ctx, ref);
    if (rc && ep)
        *ep = e;
    return rc;
}

int harvbk_ctx_check_target(harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_ctx_check_target(ctx, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}
