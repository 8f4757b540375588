/*
 * ops/snapshot_store.c - the context's local snapshot store.
 *
 * Where it is and how it is made are recorded in "snapshot-store.json" in the
 * state directory ({"dir":"/abs","chunk_size":N,"codec":"zstd"}, plus
 * "encrypt":true and "key_file"/"passphrase_file" (paths only) for an
 * encrypted store; absent: the directory "snapshot-store" in the state
 * directory, 4 MiB chunks, zstd, not encrypted).
 * The store itself is an ordinary store (docs/FORMAT.md) in that directory,
 * opened through the local-directory target; snapshots are its entries of
 * kind "snapshots". Each user (an operation, a listing) opens its own handle:
 * opening a local store reads one small file, and a writer's handle carries
 * the writer's own owner id, which names its temporaries and its lease so that
 * recovery can remove exactly a dead writer's leftovers.
 */
#include "ops.h"
#include "../state/recovery.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SNAPSTORE_FILE_MAX (64u * 1024u)
#define SNAPSTORE_WHAT "snapshot store settings"

typedef struct snapstore_cfg {
    char *dir;          /* absolute */
    uint32_t chunk_size;
    int codec;          /* -1: default */
    bool encrypt;
    char *key_file, *passphrase_file; /* absolute; NULL: none */
} snapstore_cfg;

static void cfg_clear(snapstore_cfg *c)
{
    hb_free(c->dir);
    hb_free(c->key_file);
    hb_free(c->passphrase_file);
    memset(c, 0, sizeof *c);
    c->codec = -1;
}

/* The settings in the state directory, or the defaults. */
static int cfg_load(harvbk_ctx *ctx, snapstore_cfg *c, hb_err *e)
{
    memset(c, 0, sizeof *c);
    c->codec = -1;
    char *path = hb_state_path(&ctx->state, HB_SNAPSTORE_FILE, NULL, NULL);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, SNAPSTORE_FILE_MAX, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        cJSON *root = NULL;
        const char *dir = NULL, *codec = NULL, *kf = NULL, *pf = NULL;
        uint64_t cs = 0;
        rc = hb_json_parse(b.data, b.len, SNAPSTORE_WHAT, &root, e);
        if (rc == 0 && !cJSON_IsObject(root))
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", SNAPSTORE_WHAT);
        if (rc == 0)
            rc = hb_json_get_str(root, "dir", false, &dir, SNAPSTORE_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_u64(root, "chunk_size", false, &cs, SNAPSTORE_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(root, "codec", false, &codec, SNAPSTORE_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_bool(root, "encrypt", false, &c->encrypt, SNAPSTORE_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(root, "key_file", false, &kf, SNAPSTORE_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(root, "passphrase_file", false, &pf, SNAPSTORE_WHAT, e);
        if (rc == 0 && ((kf && kf[0] != '/') || (pf && pf[0] != '/')))
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: a key path is not absolute",
                           SNAPSTORE_WHAT);
        if (rc == 0 && ((kf && !(c->key_file = hb_strdup(kf))) ||
                        (pf && !(c->passphrase_file = hb_strdup(pf)))))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        if (rc == 0 && dir && dir[0] != '/')
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: dir is not absolute", SNAPSTORE_WHAT);
        if (rc == 0 && cs && (cs < HB_MIN_CHUNK_SIZE || cs > HB_MAX_CHUNK_SIZE || (cs & (cs - 1))))
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad chunk_size", SNAPSTORE_WHAT);
        if (rc == 0 && codec && hb_codec_parse(codec) < 0)
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unknown codec", SNAPSTORE_WHAT);
        if (rc == 0) {
            c->chunk_size = (uint32_t)cs;
            c->codec = codec ? hb_codec_parse(codec) : -1;
            if (dir && !(c->dir = hb_strdup(dir)))
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        }
        cJSON_Delete(root);
        if (rc)
            hb_err_prefix(e, "%s", path);
    }
    if (rc == 0 && !c->dir &&
        !(c->dir = hb_state_path(&ctx->state, HB_SNAPSTORE_DEFAULT_DIR, NULL, NULL)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf_free(&b);
    hb_free(path);
    if (rc)
        cfg_clear(c);
    return rc;
}

static bool store_exists(const char *dir)
{
    char *p = hb_path_join(dir, HB_STORE_CONFIG_KEY);
    struct stat sb;
    bool ok = p && stat(p, &sb) == 0;
    hb_free(p);
    return ok;
}

/* The target configuration of the store c describes, with the context's
 * session key of the snapshot store. */
static int store_tcfg(harvbk_ctx *ctx, const snapstore_cfg *c, hb_target_cfg *tc, hb_err *e)
{
    hb_target_cfg_init(tc);
    tc->url = hb_asprintf("file://%s", c->dir);
    tc->codec = c->codec;
    tc->chunk_size = c->chunk_size;
    tc->encrypt = c->encrypt;
    tc->private_files = true; /* private like the state directory it is usually in */
    tc->key_file = hb_strdup(c->key_file);
    tc->passphrase_file = hb_strdup(c->passphrase_file);
    pthread_mutex_lock(&ctx->mu);
    int krc = hb_key_dup(&tc->key, ctx->snap_key);
    pthread_mutex_unlock(&ctx->mu);
    if (!tc->url || (c->key_file && !tc->key_file) ||
        (c->passphrase_file && !tc->passphrase_file) || krc) {
        hb_target_cfg_clear(tc);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    return 0;
}

static int open_dir(harvbk_ctx *ctx, const snapstore_cfg *c, const char *owner, bool create,
                    hb_store **out, hb_err *e)
{
    *out = NULL;
    if (!create && !store_exists(c->dir))
        return hb_seterr(e, HARVBK_E_NOTFOUND, "no snapshot store in '%s' yet", c->dir);
    hb_target_cfg tc;
    int rc = store_tcfg(ctx, c, &tc, e);
    if (rc)
        return rc;
    if (create)
        rc = hb_mkdir_p(c->dir, 0700, e);
    hb_target *t = NULL;
    if (rc == 0)
        rc = hb_target_open(&t, &tc, owner ? owner : ctx->owner, &ctx->log, e);
    pthread_mutex_lock(&ctx->mu);
    hb_store_crypt *reuse = hb_store_crypt_ref(ctx->snap_crypt);
    pthread_mutex_unlock(&ctx->mu);
    if (rc == 0)
        rc = hb_store_open_key(out, t, &tc, create, reuse, e); /* takes t */
    if (rc == 0 && (*out)->crypt && (*out)->crypt != reuse) {
        /* unlocked now: keep it for the next snapshot operation */
        pthread_mutex_lock(&ctx->mu);
        hb_store_crypt *old = ctx->snap_crypt;
        ctx->snap_crypt = hb_store_crypt_ref((*out)->crypt);
        pthread_mutex_unlock(&ctx->mu);
        hb_store_crypt_unref(old);
    }
    hb_store_crypt_unref(reuse);
    hb_target_cfg_clear(&tc);
    if (rc)
        hb_err_prefix(e, "snapshot store '%s'", c->dir);
    return rc;
}

void hb_snapstore_forget_key(harvbk_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    hb_store_crypt *old = ctx->snap_crypt;
    ctx->snap_crypt = NULL;
    pthread_mutex_unlock(&ctx->mu);
    hb_store_crypt_unref(old);
}

int hb_snapstore_target(harvbk_ctx *ctx, hb_target **out_t, hb_target_cfg *out_cfg, hb_err *e)
{
    *out_t = NULL;
    hb_target_cfg_init(out_cfg);
    snapstore_cfg c;
    int rc = cfg_load(ctx, &c, e);
    if (rc == 0 && !store_exists(c.dir))
        rc = hb_seterr(e, HARVBK_E_NOTFOUND, "no snapshot store in '%s' yet", c.dir);
    if (rc == 0)
        rc = store_tcfg(ctx, &c, out_cfg, e);
    if (rc == 0)
        rc = hb_target_open(out_t, out_cfg, ctx->owner, &ctx->log, e);
    if (rc)
        hb_target_cfg_clear(out_cfg);
    cfg_clear(&c);
    return rc;
}

int hb_snapstore_open(harvbk_ctx *ctx, const char *owner, bool create, hb_store_ref **out,
                      hb_err *e)
{
    *out = NULL;
    snapstore_cfg c;
    int rc = cfg_load(ctx, &c, e);
    hb_store *st = NULL;
    if (rc == 0)
        rc = open_dir(ctx, &c, owner, create, &st, e);
    cfg_clear(&c);
    if (rc)
        return rc;
    hb_store_ref *ref = hb_calloc(1, sizeof *ref);
    if (!ref) {
        hb_store_close(st);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    ref->st = st;
    ref->refs = 1;
    /* leftovers (temporaries, leases) of snapshot writers found dead */
    hb_recovery_cleanup_pending(&ctx->state, st, ctx->owner);
    *out = ref;
    return 0;
}

int hb_kind_store_acquire(harvbk_ctx *ctx, int kind, bool create, hb_store_ref **out, hb_err *e)
{
    if (kind == HB_ENTRY_SNAPSHOT)
        return hb_snapstore_open(ctx, NULL, create, out, e);
    return hb_ctx_store_acquire(ctx, out, e);
}

/* ---- public ---- */

typedef struct count_ud {
    size_t n;
} count_ud;

static int count_entry(const char *ns, const char *name, void *ud)
{
    (void)ns;
    (void)name;
    ((count_ud *)ud)->n++;
    return 0;
}

static int store_set(harvbk_ctx *ctx, const harvbk_snapshot_store_options *o, hb_err *e)
{
    const char *dir = o && o->dir && *o->dir ? o->dir : NULL;
    uint32_t cs = o ? o->chunk_size : 0;
    int codec = -1;
    if (dir && dir[0] != '/')
        return hb_seterr(e, HARVBK_E_INVALID, "snapshot store directory '%s' is not absolute",
                         dir);
    if (cs && (cs < HB_MIN_CHUNK_SIZE || cs > HB_MAX_CHUNK_SIZE || (cs & (cs - 1))))
        return hb_seterr(e, HARVBK_E_INVALID,
                         "chunk size %u is not a power of two from 64 KiB to 64 MiB", cs);
    if (o && o->codec && (codec = hb_codec_parse(o->codec)) < 0)
        return hb_seterr(e, HARVBK_E_INVALID, "unknown codec '%s' (zstd, lz4, gzip, none)",
                         o->codec);
    unsigned flags = o ? o->flags : 0;
    const char *kf = o && o->key_file && *o->key_file ? o->key_file : NULL;
    const char *pf = o && o->passphrase_file && *o->passphrase_file ? o->passphrase_file : NULL;
    if (flags & ~HARVBK_SNAPSHOT_STORE_ENCRYPT)
        return hb_seterr(e, HARVBK_E_INVALID, "unknown snapshot store flags 0x%x",
                         flags & ~HARVBK_SNAPSHOT_STORE_ENCRYPT);
    if ((kf && kf[0] != '/') || (pf && pf[0] != '/'))
        return hb_seterr(e, HARVBK_E_INVALID, "the snapshot store's %s '%s' is not absolute",
                         kf && kf[0] != '/' ? "key file" : "passphrase file",
                         kf && kf[0] != '/' ? kf : pf);
    if (kf && pf)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "give the snapshot store a key file or a passphrase file, not both");
    bool encrypt = (flags & HARVBK_SNAPSHOT_STORE_ENCRYPT) || kf || pf;
    if (kf || pf) { /* a key file that cannot be used is said now, not at the first snapshot */
        hb_key *k = NULL;
        int krc = hb_key_load_file(&k, kf ? HB_KEY_RAW : HB_KEY_PASSPHRASE, kf ? kf : pf, e);
        hb_key_free(k);
        if (krc)
            return krc;
    }
    pthread_mutex_lock(&ctx->mu);
    unsigned running = ctx->nrunning;
    pthread_mutex_unlock(&ctx->mu);
    if (running)
        return hb_seterr(e, HARVBK_E_BUSY, "%u operation(s) of the context are running", running);

    char *real = NULL;
    if (dir) {
        int rc = hb_mkdir_p(dir, 0700, e);
        if (rc)
            return rc;
        char *r = realpath(dir, NULL);
        if (!r)
            return hb_seterr(e, hb_errno_code(errno), "cannot resolve '%s': %s", dir,
                             strerror(errno));
        real = hb_strdup(r);
        free(r);
        if (!real)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    snapstore_cfg cur;
    int rc = cfg_load(ctx, &cur, e);
    char *def = hb_state_path(&ctx->state, HB_SNAPSTORE_DEFAULT_DIR, NULL, NULL);
    if (rc == 0 && !def)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    const char *want = real ? real : def;
    if (rc == 0 && strcmp(cur.dir, want) != 0 && store_exists(cur.dir)) {
        /* moving away from a store that holds snapshots would hide them */
        hb_store *st = NULL;
        count_ud cu = { 0 };
        hb_err oe;
        hb_err_clear(&oe);
        if (open_dir(ctx, &cur, NULL, false, &st, &oe) == 0) {
            hb_store_entry_list(st, HB_KIND_SNAPSHOTS, count_entry, &cu, &oe);
            hb_store_close(st);
        }
        if (cu.n)
            rc = hb_seterr(e, HARVBK_E_STATE,
                           "the snapshot store '%s' holds %zu snapshot(s); delete them before "
                           "moving the store",
                           cur.dir, cu.n);
    }
    if (rc == 0 && store_exists(want)) {
        /* the store already there must fit: never encrypted in place; an
         * encrypted one must open with the key given (when one is) */
        snapstore_cfg nc;
        memset(&nc, 0, sizeof nc);
        nc.dir = (char *)want;
        nc.codec = -1;
        nc.encrypt = encrypt;
        nc.key_file = (char *)kf;
        nc.passphrase_file = (char *)pf;
        hb_target_cfg tc;
        hb_target *t = NULL;
        rc = store_tcfg(ctx, &nc, &tc, e);
        if (rc == 0)
            rc = hb_target_open(&t, &tc, ctx->owner, &ctx->log, e);
        hb_keyring ring;
        memset(&ring, 0, sizeof ring);
        if (rc == 0)
            rc = hb_store_keyring_read(t, &ring, e);
        if (rc == 0 && encrypt && !ring.encrypted)
            rc = hb_seterr(e, HARVBK_E_STATE,
                           "the snapshot store in '%s' is not encrypted, and a store cannot be "
                           "encrypted in place: choose another directory for an encrypted "
                           "store",
                           want);
        hb_key *k = NULL;
        if (rc == 0 && ring.encrypted && (kf || pf))
            rc = hb_key_load_file(&k, kf ? HB_KEY_RAW : HB_KEY_PASSPHRASE, kf ? kf : pf, e);
        if (rc == 0 && k)
            rc = hb_keyring_match(&ring, k, NULL, e);
        if (rc)
            hb_err_prefix(e, "snapshot store '%s'", want);
        hb_key_free(k);
        hb_keyring_clear(&ring);
        hb_target_close(t);
        hb_target_cfg_clear(&tc);
    }
    if (rc == 0) {
        cJSON *root = cJSON_CreateObject();
        bool ok = root && cJSON_AddStringToObject(root, "dir", want);
        if (ok && cs)
            ok = hb_json_add_u64(root, "chunk_size", cs) != NULL;
        if (ok && codec >= 0)
            ok = cJSON_AddStringToObject(root, "codec", hb_codec_name(codec)) != NULL;
        if (ok && encrypt)
            ok = cJSON_AddBoolToObject(root, "encrypt", true) != NULL;
        if (ok && kf) /* the path only: the key never enters the state directory */
            ok = cJSON_AddStringToObject(root, "key_file", kf) != NULL;
        if (ok && pf)
            ok = cJSON_AddStringToObject(root, "passphrase_file", pf) != NULL;
        char *text = ok ? hb_json_print(root) : NULL;
        cJSON_Delete(root);
        char *path = hb_state_path(&ctx->state, HB_SNAPSTORE_FILE, NULL, NULL);
        if (!text || !path)
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        else
            rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
        hb_free(text);
        hb_free(path);
    }
    if (rc == 0) {
        hb_snapstore_forget_key(ctx);
        hb_log_info(&ctx->log, "snapshot store: '%s'%s", want, encrypt ? " (encrypted)" : "");
    }
    cfg_clear(&cur);
    hb_free(def);
    hb_free(real);
    return rc;
}

int harvbk_snapshot_store_set(harvbk_ctx *ctx, const harvbk_snapshot_store_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    harvbk_snapshot_store_options o; /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_SNAPSTORE, &o, opts, &e);
    if (rc == 0)
        rc = store_set(ctx, opts ? &o : NULL, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_snapshot_store_dir(harvbk_ctx *ctx, char *buf, size_t size, size_t *out_len)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!buf && size)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: buf is NULL but size is %zu", __func__,
                            size);
    hb_err e;
    hb_err_clear(&e);
    snapstore_cfg c;
    int rc = cfg_load(ctx, &c, &e);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    size_t len = strlen(c.dir);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, c.dir, n);
        buf[n] = '\0';
    }
    if (out_len)
        *out_len = len;
    cfg_clear(&c);
    return 0;
}
