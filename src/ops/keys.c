/*
 * ops/keys.c - the keys of a context's encrypted stores (harvbk/key.h):
 * session keys of the target and the snapshot store, adding, removing and
 * listing a store's key slots. The slots themselves are the store layer's
 * (store/keys.c); the key handles are core/crypt.c's.
 */
#include "ops.h"

#include <stdio.h>
#include <string.h>

#define KEYS_MAGIC 0x68624b6cu /* "hbKl" */

/* ---- session keys ---- */

int harvbk_ctx_set_target_key(harvbk_ctx *ctx, const harvbk_key *key)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (key && !hb_key_ok(key))
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: not a valid key", __func__);
    hb_key *copy = NULL;
    if (hb_key_dup(&copy, key) != 0)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "cannot allocate memory for a key");
    hb_err e;
    hb_err_clear(&e);
    int rc = 0;
    hb_store_ref *old = NULL;
    pthread_mutex_lock(&ctx->target_mu);
    pthread_mutex_lock(&ctx->mu);
    if (!ctx->has_target) {
        rc = hb_seterr(&e, HARVBK_E_NOTARGET, "no backup target is configured");
    } else if (ctx->nrunning) {
        rc = hb_seterr(&e, HARVBK_E_BUSY,
                       "cannot change the target's key while %u operation(s) run",
                       ctx->nrunning);
    } else {
        hb_key *prev = ctx->cfg.key;
        ctx->cfg.key = copy;
        copy = prev; /* wiped below */
        /* the open store was opened with the old key: reopen on next use */
        old = ctx->store;
        ctx->store = NULL;
    }
    pthread_mutex_unlock(&ctx->mu);
    pthread_mutex_unlock(&ctx->target_mu);
    hb_key_free(copy);
    if (old)
        hb_ctx_store_release(ctx, old);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_snapshot_store_set_key(harvbk_ctx *ctx, const harvbk_key *key)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (key && !hb_key_ok(key))
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: not a valid key", __func__);
    hb_key *copy = NULL;
    if (hb_key_dup(&copy, key) != 0)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "cannot allocate memory for a key");
    pthread_mutex_lock(&ctx->mu);
    unsigned running = ctx->nrunning;
    if (!running) {
        hb_key *prev = ctx->snap_key;
        ctx->snap_key = copy;
        copy = prev;
    }
    pthread_mutex_unlock(&ctx->mu);
    hb_key_free(copy);
    if (running)
        return hb_ctx_failf(ctx, HARVBK_E_BUSY,
                            "cannot change the snapshot store's key while %u operation(s) run",
                            running);
    hb_snapstore_forget_key(ctx); /* the next open unwraps with the new key */
    return 0;
}

/* ---- adding and removing keys ---- */

static int which_check(harvbk_ctx *ctx, harvbk_store_kind store, const char *fn)
{
    if (store != HARVBK_STORE_TARGET && store != HARVBK_STORE_SNAPSHOTS)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID,
                            "%s: unknown store %d (HARVBK_STORE_TARGET or HARVBK_STORE_SNAPSHOTS)",
                            fn, (int)store);
    return 0;
}

static const char *which_name(harvbk_store_kind store)
{
    return store == HARVBK_STORE_SNAPSHOTS ? "snapshot store" : "target's store";
}

/* The store, opened with the context's key (so it is unlocked). */
static int store_open(harvbk_ctx *ctx, harvbk_store_kind store, hb_store_ref **out, hb_err *e)
{
    if (store == HARVBK_STORE_SNAPSHOTS)
        return hb_snapstore_open(ctx, NULL, false, out, e);
    return hb_ctx_store_acquire(ctx, out, e);
}

int harvbk_store_key_add(harvbk_ctx *ctx, harvbk_store_kind store, const harvbk_key *key,
                         char *id_buf, size_t id_size)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    int rc = which_check(ctx, store, __func__);
    if (rc)
        return rc;
    if (!hb_key_ok(key))
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: key is %s", __func__,
                            key ? "not a valid key" : "NULL");
    if (id_buf && id_size && id_size < HB_KEY_ID_HEX + 1)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: id_size must be at least %d", __func__,
                            HB_KEY_ID_HEX + 1);
    hb_err e;
    hb_err_clear(&e);
    hb_store_ref *ref = NULL;
    rc = hb_maintenance_check(ctx, "adding a key", &e);
    if (rc == 0)
        rc = store_open(ctx, store, &ref, &e);
    char id[HB_KEY_ID_HEX + 1] = "";
    if (rc == 0)
        rc = hb_store_key_add(ref->st, key, id, &e);
    if (rc)
        hb_err_prefix(&e, "cannot add a key to the %s", which_name(store));
    else
        hb_log_info(&ctx->log, "%s %s: key %s (%s) added", which_name(store), ref->st->id, id,
                    hb_key_kind_name(key->kind));
    if (ref)
        hb_ctx_store_release(ctx, ref);
    if (rc == 0 && id_buf && id_size)
        snprintf(id_buf, id_size, "%s", id);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_store_key_remove(harvbk_ctx *ctx, harvbk_store_kind store, const char *id)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    int rc = which_check(ctx, store, __func__);
    if (rc)
        return rc;
    if (!id)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: id is NULL", __func__);
    hb_err e;
    hb_err_clear(&e);
    hb_store_ref *ref = NULL;
    rc = hb_maintenance_check(ctx, "removing a key", &e);
    if (rc == 0)
        rc = store_open(ctx, store, &ref, &e);
    if (rc == 0)
        rc = hb_store_key_remove(ref->st, id, &e);
    if (rc)
        hb_err_prefix(&e, "cannot remove key %.32s from the %s", id, which_name(store));
    else
        hb_log_info(&ctx->log, "%s %s: key %s removed", which_name(store), ref->st->id, id);
    if (ref)
        hb_ctx_store_release(ctx, ref);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

/* ---- listing ---- */

struct harvbk_store_keys {
    uint32_t magic;
    bool encrypted, unlocked;
    char fingerprint[HB_STORE_FP_HEX + 1];
    hb_keyring ring;
    size_t in_use; /* ring.n: none */
};

static bool keys_ok(const harvbk_store_keys *k)
{
    return k && k->magic == KEYS_MAGIC;
}

/* The slot the context's key opens: from the store key it holds unlocked
 * already (no derivation), else by deriving with its key (none or a wrong
 * one: not unlocked, no error). */
static int keys_match(harvbk_ctx *ctx, harvbk_store_kind store, const hb_target_cfg *cfg,
                      harvbk_store_keys *k, hb_err *e)
{
    k->in_use = k->ring.n;
    hb_store_crypt *held = NULL;
    pthread_mutex_lock(&ctx->mu);
    if (store == HARVBK_STORE_SNAPSHOTS)
        held = hb_store_crypt_ref(ctx->snap_crypt);
    else if (ctx->store && ctx->store->st->crypt)
        held = hb_store_crypt_ref(ctx->store->st->crypt);
    pthread_mutex_unlock(&ctx->mu);
    if (held && !strcmp(hb_store_crypt_fingerprint(held), k->fingerprint) &&
        !strcmp(hb_store_crypt_store_id(held), k->ring.store_id)) {
        for (size_t i = 0; i < k->ring.n; i++)
            if (!strcmp(k->ring.slots[i].id, hb_store_crypt_slot(held)))
                k->in_use = i;
        k->unlocked = true;
    }
    hb_store_crypt_unref(held);
    if (k->unlocked)
        return 0;
    hb_key *key = NULL;
    int rc = hb_target_cfg_load_key(cfg, &key, e);
    if (rc || !key)
        return rc;
    hb_err me;
    hb_err_clear(&me);
    size_t slot = 0;
    rc = hb_keyring_match(&k->ring, key, &slot, &me);
    hb_key_free(key);
    if (rc == 0) {
        k->unlocked = true;
        k->in_use = slot;
    } else if (rc != HARVBK_E_KEY) {
        *e = me;
        return rc;
    }
    return 0;
}

int harvbk_store_keys_get(harvbk_ctx *ctx, harvbk_store_kind store, harvbk_store_keys **out)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    int rc = which_check(ctx, store, __func__);
    if (rc)
        return rc;
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = NULL;
    hb_target_cfg cfg;
    hb_target_cfg_init(&cfg);
    if (store == HARVBK_STORE_SNAPSHOTS) {
        rc = hb_snapstore_target(ctx, &t, &cfg, &e);
    } else {
        pthread_mutex_lock(&ctx->mu);
        if (!ctx->has_target)
            rc = hb_seterr(&e, HARVBK_E_NOTARGET, "no backup target is configured");
        else if (hb_target_cfg_copy(&cfg, &ctx->cfg) != 0)
            rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
        pthread_mutex_unlock(&ctx->mu);
        if (rc == 0)
            rc = hb_target_open(&t, &cfg, ctx->owner, &ctx->log, &e);
    }
    harvbk_store_keys *k = NULL;
    if (rc == 0 && !(k = hb_calloc(1, sizeof *k)))
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    if (rc == 0) {
        k->magic = KEYS_MAGIC;
        rc = hb_store_keyring_read(t, &k->ring, &e);
        if (rc == HARVBK_E_NOTFOUND)
            rc = hb_seterr(&e, store == HARVBK_STORE_SNAPSHOTS ? HARVBK_E_NOTFOUND
                                                                : HARVBK_E_TARGET,
                           "no libharvbk store in %s", t->display ? t->display : "the target");
    }
    if (rc == 0) {
        k->encrypted = k->ring.encrypted;
        memcpy(k->fingerprint, k->ring.fingerprint, sizeof k->fingerprint);
        k->in_use = k->ring.n;
        if (k->encrypted)
            rc = keys_match(ctx, store, &cfg, k, &e);
    }
    hb_target_close(t);
    hb_target_cfg_clear(&cfg);
    if (rc) {
        harvbk_store_keys_free(k);
        hb_err_prefix(&e, "cannot list the keys of the %s", which_name(store));
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    *out = k;
    return 0;
}

int harvbk_store_keys_encrypted(const harvbk_store_keys *keys)
{
    return keys_ok(keys) && keys->encrypted ? 1 : 0;
}

const char *harvbk_store_keys_fingerprint(const harvbk_store_keys *keys)
{
    return keys_ok(keys) ? keys->fingerprint : "";
}

int harvbk_store_keys_unlocked(const harvbk_store_keys *keys)
{
    return keys_ok(keys) && keys->unlocked ? 1 : 0;
}

size_t harvbk_store_keys_count(const harvbk_store_keys *keys)
{
    return keys_ok(keys) ? keys->ring.n : 0;
}

const char *harvbk_store_keys_id(const harvbk_store_keys *keys, size_t i)
{
    return keys_ok(keys) && i < keys->ring.n ? keys->ring.slots[i].id : "";
}

const char *harvbk_store_keys_kind(const harvbk_store_keys *keys, size_t i)
{
    if (!keys_ok(keys) || i >= keys->ring.n)
        return "";
    switch (keys->ring.slots[i].kdf) {
    case HB_KDF_HKDF:
        return "key-file";
    case HB_KDF_SCRYPT:
        return "passphrase";
    default:
        return "unknown";
    }
}

int64_t harvbk_store_keys_created(const harvbk_store_keys *keys, size_t i)
{
    return keys_ok(keys) && i < keys->ring.n ? keys->ring.slots[i].created : 0;
}

int harvbk_store_keys_in_use(const harvbk_store_keys *keys, size_t i)
{
    return keys_ok(keys) && keys->unlocked && i == keys->in_use ? 1 : 0;
}

void harvbk_store_keys_free(harvbk_store_keys *keys)
{
    if (!keys_ok(keys))
        return;
    hb_keyring_clear(&keys->ring);
    keys->magic = 0;
    hb_free(keys);
}
