/*
 * store/store.c - opening a store (its config object), entry keys, manifest
 * and index objects in the target, listing and deleting entries.
 * docs/FORMAT.md is the reference for every key and object.
 */
#include "../core/json.h"
#include "internal.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

#define STORE_CONFIG_KEY "harvbk-store.json"
#define STORE_CONFIG_WHAT "store config " STORE_CONFIG_KEY
#define MANIFEST_LEAF "manifest.json"
#define INDEX_SUFFIX ".idx"
#define CHUNK_ID_SHA256 "sha256"
#define ENCRYPTION_NONE "none"
#define DELETE_BATCH 1000
#define STORE_CONFIG_MAX (1024u * 1024u) /* a few hundred bytes in practice */
#define INDEX_HEADER_TRAILER_LEN 64      /* FORMAT.md section 5 */

/* ---- store config ---- */

static bool uuid_valid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

int hb_store_config_parse(const void *data, size_t len, hb_store_config *sc, hb_err *e)
{
    cJSON *root = NULL;
    int rc = hb_json_parse(data, len, STORE_CONFIG_WHAT, &root, e);
    if (rc)
        return rc;
    uint64_t major = 0, minor = 0, cs = 0;
    int64_t created = 0;
    const char *id = NULL, *codec = NULL, *chunk_id = NULL, *enc = NULL;
    if (!cJSON_IsObject(root)) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", STORE_CONFIG_WHAT);
        goto out;
    }
    if ((rc = hb_json_get_u64(root, "format_major", true, &major, STORE_CONFIG_WHAT, e)))
        goto out;
    if (major > HB_FORMAT_MAJOR) {
        rc = hb_seterr(e, HARVBK_E_FORMAT,
                       "store format %llu.x is newer than this library supports (%d.x)",
                       (unsigned long long)major, HB_FORMAT_MAJOR);
        goto out;
    }
    if (major < 1) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has invalid format_major 0", STORE_CONFIG_WHAT);
        goto out;
    }
    if ((rc = hb_json_get_u64(root, "format_minor", true, &minor, STORE_CONFIG_WHAT, e)) ||
        (rc = hb_json_get_str(root, "store_id", true, &id, STORE_CONFIG_WHAT, e)) ||
        (rc = hb_json_get_u64(root, "chunk_size", true, &cs, STORE_CONFIG_WHAT, e)) ||
        (rc = hb_json_get_str(root, "codec", true, &codec, STORE_CONFIG_WHAT, e)) ||
        (rc = hb_json_get_str(root, "chunk_id", true, &chunk_id, STORE_CONFIG_WHAT, e)) ||
        (rc = hb_json_get_str(root, "encryption", true, &enc, STORE_CONFIG_WHAT, e)) ||
        (rc = hb_json_get_i64(root, "created", true, &created, STORE_CONFIG_WHAT, e)))
        goto out;
    /* chunk ids and encryption are what a 1.x reader must understand to read
     * chunks at all: an unknown value is a format this library cannot read. */
    if (!chunk_id || strcmp(chunk_id, CHUNK_ID_SHA256) != 0) {
        rc = hb_seterr(e, HARVBK_E_FORMAT,
                       "store uses chunk ids \"%s\", which this library does not support",
                       chunk_id ? chunk_id : "");
        goto out;
    }
    if (!enc || strcmp(enc, ENCRYPTION_NONE) != 0) {
        rc = hb_seterr(e, HARVBK_E_FORMAT,
                       "store uses encryption \"%s\", which this library does not support",
                       enc ? enc : "");
        goto out;
    }
    if (!id || !uuid_valid(id)) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has an invalid store_id", STORE_CONFIG_WHAT);
        goto out;
    }
    /* what writers write (target setting, FORMAT.md section 3): a hostile
     * config must not make writers cut volumes into 1-byte chunks */
    if (!hb_chunk_size_valid(cs)) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "store config: chunk_size %llu is not a power of two between %u and %u",
                       (unsigned long long)cs, HB_MIN_CHUNK_SIZE, HB_MAX_CHUNK_SIZE);
        goto out;
    }
    int c = hb_codec_parse(codec);
    if (c < 0) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has an unknown codec \"%s\"", STORE_CONFIG_WHAT,
                       codec ? codec : "");
        goto out;
    }
    memcpy(sc->id, id, 37);
    sc->chunk_size = (uint32_t)cs;
    sc->codec = c;
out:
    cJSON_Delete(root);
    return rc;
}

static int config_create(hb_target *t, uint32_t chunk_size, int codec, hb_err *e)
{
    char id[37];
    hb_uuid(id);
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddNumberToObject(root, "format_major", HB_FORMAT_MAJOR) != NULL;
        ok &= cJSON_AddNumberToObject(root, "format_minor", HB_FORMAT_MINOR) != NULL;
        ok &= cJSON_AddStringToObject(root, "store_id", id) != NULL;
        ok &= hb_json_add_u64(root, "chunk_size", chunk_size) != NULL;
        ok &= cJSON_AddStringToObject(root, "codec", hb_codec_name(codec)) != NULL;
        ok &= cJSON_AddStringToObject(root, "chunk_id", CHUNK_ID_SHA256) != NULL;
        ok &= cJSON_AddStringToObject(root, "encryption", ENCRYPTION_NONE) != NULL;
        ok &= cJSON_AddNumberToObject(root, "created", (double)hb_now()) != NULL;
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot encode the store config");
    int rc = hb_target_put(t, STORE_CONFIG_KEY, text, strlen(text), e);
    hb_free(text);
    return rc;
}

int hb_store_open(hb_store **out, hb_target *t, const hb_target_cfg *cfg, hb_err *e)
{
    return hb_store_open_ex(out, t, cfg, true, e);
}

int hb_store_open_ex(hb_store **out, hb_target *t, const hb_target_cfg *cfg, bool create,
                     hb_err *e)
{
    *out = NULL;
    if (!t)
        return hb_seterr(e, HARVBK_E_INVALID, "no target to open a store in");
    int want_codec = cfg && cfg->codec >= 0 ? cfg->codec : HB_CODEC_ZSTD;
    uint32_t want_cs = cfg && cfg->chunk_size ? cfg->chunk_size : hb_target_cfg_default_chunk_size(cfg);
    if (want_codec > HB_CODEC_MAX || !hb_codec_name(want_codec)) {
        hb_target_close(t);
        return hb_seterr(e, HARVBK_E_INVALID, "unknown codec %d", want_codec);
    }
    hb_store *st = hb_calloc(1, sizeof *st);
    if (!st) {
        hb_target_close(t);
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory opening the store");
    }
    st->t = t;
    st->log = t->log;
    hb_buf b = HB_BUF_INIT;
    hb_store_config sc;
    memset(&sc, 0, sizeof sc);
    int rc = hb_target_get_max(t, STORE_CONFIG_KEY, &b, STORE_CONFIG_MAX, e);
    if (rc == HARVBK_E_NOTFOUND && !create) {
        rc = hb_seterr(e, HARVBK_E_TARGET,
                       "no libharvbk store in %s (its %s is missing): the target may be "
                       "unmounted or emptied; set the target again to create a new store",
                       t->display ? t->display : "target", STORE_CONFIG_KEY);
        goto fail;
    }
    if (rc == HARVBK_E_NOTFOUND) {
        if (!hb_chunk_size_valid(want_cs)) {
            rc = hb_seterr(e, HARVBK_E_INVALID,
                           "chunk size %u is not a power of two between %u and %u bytes",
                           want_cs, HB_MIN_CHUNK_SIZE, HB_MAX_CHUNK_SIZE);
            goto fail;
        }
        hb_log_info(st->log, "creating a new store in %s (chunk size %u, codec %s)",
                    t->display ? t->display : "target", want_cs, hb_codec_name(want_codec));
        rc = config_create(t, want_cs, want_codec, e);
        /* Two creators may race: both put, the last put wins. Re-read and adopt
         * whatever is there now; chunks, indexes and manifests are
         * self-describing, so a loser that already wrote needs nothing else. */
        if (!rc)
            rc = hb_target_get_max(t, STORE_CONFIG_KEY, &b, STORE_CONFIG_MAX, e);
    }
    if (rc)
        goto fail;
    rc = hb_store_config_parse(b.data, b.len, &sc, e);
    if (rc) {
        hb_err_prefix(e, "store in %s", t->display ? t->display : "target");
        goto fail;
    }
    hb_buf_free(&b);
    memcpy(st->id, sc.id, sizeof st->id);
    st->chunk_size = sc.chunk_size;
    /* the codec for new chunks may differ from the store default: chunks
     * record their own codec */
    st->codec = cfg && cfg->codec >= 0 ? cfg->codec : sc.codec;
    st->level = 0;
    if (cfg && cfg->chunk_size && cfg->chunk_size != sc.chunk_size)
        hb_log_info(st->log, "store %s has chunk size %u; the configured %u applies only to new "
                    "stores", st->id, sc.chunk_size, cfg->chunk_size);
    *out = st;
    return 0;
fail:
    hb_buf_free(&b);
    hb_store_close(st);
    return rc;
}

void hb_store_close(hb_store *st)
{
    if (!st)
        return;
    hb_target_close(st->t);
    hb_free(st);
}

/* ---- keys ---- */

char *hb_key_manifest(const char *kind_dir, const char *ns, const char *name)
{
    if (!kind_dir || !ns || !name || !hb_name_valid(kind_dir) || !hb_name_valid(ns) ||
        !hb_name_valid(name))
        return NULL;
    return hb_asprintf("%s/%s/%s/" MANIFEST_LEAF, kind_dir, ns, name);
}

char *hb_key_image(const char *ns, const char *name)
{
    if (!ns || !name || !hb_name_valid(ns) || !hb_name_valid(name))
        return NULL;
    return hb_asprintf(HB_IMAGES_AREA "/%s/%s.json", ns, name);
}

char *hb_key_index(const char *kind_dir, const char *ns, const char *name, const char *volume)
{
    if (!kind_dir || !ns || !name || !volume || !hb_name_valid(kind_dir) ||
        !hb_name_valid(ns) || !hb_name_valid(name) || !hb_name_valid(volume))
        return NULL;
    return hb_asprintf("%s/%s/%s/%s" INDEX_SUFFIX, kind_dir, ns, name, volume);
}

/* "backups" -> "backup", for messages */
static void kind_word(const char *kind_dir, char *out, size_t size)
{
    snprintf(out, size, "%s", kind_dir ? kind_dir : "entry");
    size_t n = strlen(out);
    if (n > 1 && out[n - 1] == 's')
        out[n - 1] = '\0';
}

static int bad_names(hb_err *e, const char *kind_dir, const char *ns, const char *name)
{
    return hb_seterr(e, HARVBK_E_INVALID, "invalid %s name \"%s/%s\"",
                     kind_dir ? kind_dir : "entry", ns ? ns : "", name ? name : "");
}

/* ---- manifests ---- */

int hb_store_manifest_read(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                           hb_manifest *m, hb_err *e)
{
    hb_manifest_init(m);
    char *key = hb_key_manifest(kind_dir, ns, name);
    if (!key)
        return bad_names(e, kind_dir, ns, name);
    char what[32];
    kind_word(kind_dir, what, sizeof what);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_target_get_max(st->t, key, &b, HB_MANIFEST_MAX, e);
    if (rc == HARVBK_E_CORRUPT)
        hb_err_prefix(e, "%s %s/%s: manifest", what, ns, name);
    if (!rc) {
        rc = hb_manifest_decode(b.data, b.len, m, e);
        if (rc)
            hb_err_prefix(e, "%s %s/%s", what, ns, name);
    }
    if (!rc && (strcmp(m->ns, ns) != 0 || strcmp(m->name, name) != 0)) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s %s/%s: manifest at %s names %s/%s", what, ns,
                       name, key, m->ns, m->name);
        hb_manifest_clear(m);
    }
    hb_buf_free(&b);
    hb_free(key);
    return rc;
}

int hb_store_manifest_write(hb_store *st, const char *kind_dir, const hb_manifest *m, hb_err *e)
{
    char *key = hb_key_manifest(kind_dir, m->ns, m->name);
    if (!key)
        return bad_names(e, kind_dir, m->ns, m->name);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_manifest_encode(m, &b, e);
    if (!rc)
        rc = hb_target_put(st->t, key, b.data, b.len, e);
    hb_buf_free(&b);
    hb_free(key);
    return rc;
}

/* ---- indexes ---- */

int hb_store_index_write(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                         hb_manifest_volume *v, const hb_index *ix, uint64_t *out_bytes,
                         hb_err *e)
{
    char *key = hb_key_index(kind_dir, ns, name, v->name);
    if (!key)
        return hb_seterr(e, HARVBK_E_INVALID, "invalid index key for %s/%s volume \"%s\"",
                         ns ? ns : "", name ? name : "", v->name ? v->name : "");
    hb_buf b = HB_BUF_INIT;
    int rc = hb_index_encode(ix, &b, e);
    if (!rc)
        rc = hb_target_put(st->t, key, b.data, b.len, e);
    if (!rc) {
        uint8_t sum[HB_DIGEST_LEN];
        hb_sha256(b.data, b.len, sum);
        hb_hex(sum, HB_DIGEST_LEN, v->index_sha256);
        uint64_t data = 0;
        for (uint64_t i = 0; i < ix->count; i++)
            data += !hb_index_is_hole(ix, i);
        v->size = ix->volume_size;
        v->chunks = ix->count;
        v->data_chunks = data;
        if (out_bytes)
            *out_bytes += b.len;
    }
    hb_buf_free(&b);
    hb_free(key);
    return rc;
}

int hb_store_index_read(hb_store *st, const char *kind_dir, const hb_manifest *m,
                        const hb_manifest_volume *v, hb_index *ix, hb_err *e)
{
    memset(ix, 0, sizeof *ix);
    char *key = hb_key_index(kind_dir, m->ns, m->name, v->name);
    if (!key)
        return hb_seterr(e, HARVBK_E_INVALID, "invalid index key for %s/%s volume \"%s\"",
                         m->ns ? m->ns : "", m->name ? m->name : "", v->name ? v->name : "");
    char what[32];
    kind_word(kind_dir, what, sizeof what);
    hb_buf b = HB_BUF_INIT;
    int rc;
    /* the manifest says exactly how long the index is: never read more */
    if (v->chunks > (SIZE_MAX - INDEX_HEADER_TRAILER_LEN) / HB_DIGEST_LEN) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "%s %s/%s: volume \"%s\" has an impossible number of chunks (%llu)", what,
                       m->ns, m->name, v->name, (unsigned long long)v->chunks);
        goto out;
    }
    size_t want = INDEX_HEADER_TRAILER_LEN + (size_t)v->chunks * HB_DIGEST_LEN;
    rc = hb_target_get_max(st->t, key, &b, want, e);
    if (rc == HARVBK_E_NOTFOUND) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s %s/%s: index of volume \"%s\" is missing (%s)",
                       what, m->ns, m->name, v->name, key);
        goto out;
    }
    if (rc == HARVBK_E_CORRUPT) {
        hb_err_prefix(e, "%s %s/%s: index of volume \"%s\"", what, m->ns, m->name, v->name);
        goto out;
    }
    if (rc)
        goto out;
    uint8_t sum[HB_DIGEST_LEN];
    char hex[HB_DIGEST_HEX_LEN + 1];
    hb_sha256(b.data, b.len, sum);
    hb_hex(sum, HB_DIGEST_LEN, hex);
    if (strcmp(hex, v->index_sha256) != 0) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "%s %s/%s: index of volume \"%s\" does not match the checksum in its "
                       "manifest",
                       what, m->ns, m->name, v->name);
        goto out;
    }
    rc = hb_index_decode(b.data, b.len, ix, e);
    if (rc) {
        hb_err_prefix(e, "%s %s/%s volume \"%s\"", what, m->ns, m->name, v->name);
        goto out;
    }
    if (ix->volume_size != v->size || ix->chunk_size != m->chunk_size ||
        ix->count != v->chunks) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "%s %s/%s: index of volume \"%s\" (%llu bytes, %u-byte chunks, %llu "
                       "entries) disagrees with the manifest (%llu bytes, %u-byte chunks, %llu "
                       "entries)",
                       what, m->ns, m->name, v->name, (unsigned long long)ix->volume_size,
                       ix->chunk_size, (unsigned long long)ix->count,
                       (unsigned long long)v->size, m->chunk_size,
                       (unsigned long long)v->chunks);
        hb_index_clear(ix);
    }
out:
    hb_buf_free(&b);
    hb_free(key);
    return rc;
}

/* ---- entries ---- */

typedef struct entry_list_ctx {
    size_t prefix_len;
    hb_entry_cb cb;
    void *ud;
} entry_list_ctx;

static int entry_list_one(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    entry_list_ctx *c = ud;
    const char *p = key + c->prefix_len; /* "<ns>/<name>/manifest.json" */
    const char *s1 = strchr(p, '/');
    if (!s1)
        return 0;
    const char *s2 = strchr(s1 + 1, '/');
    if (!s2 || strcmp(s2 + 1, MANIFEST_LEAF) != 0)
        return 0;
    size_t nl = (size_t)(s1 - p), ml = (size_t)(s2 - s1 - 1);
    char ns[64], name[64];
    if (nl == 0 || nl >= sizeof ns || ml == 0 || ml >= sizeof name)
        return 0;
    memcpy(ns, p, nl);
    ns[nl] = '\0';
    memcpy(name, s1 + 1, ml);
    name[ml] = '\0';
    if (!hb_name_valid(ns) || !hb_name_valid(name))
        return 0;
    return c->cb(ns, name, c->ud);
}

int hb_store_entry_list(hb_store *st, const char *kind_dir, hb_entry_cb cb, void *ud, hb_err *e)
{
    if (!kind_dir || !hb_name_valid(kind_dir))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid entry kind \"%s\"",
                         kind_dir ? kind_dir : "");
    char *prefix = hb_asprintf("%s/", kind_dir);
    if (!prefix)
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory listing %s", kind_dir);
    entry_list_ctx c = { strlen(prefix), cb, ud };
    int rc = hb_target_list(st->t, prefix, entry_list_one, &c, e);
    hb_free(prefix);
    return rc;
}

typedef struct key_vec {
    char **keys;
    size_t n, cap;
} key_vec;

static int collect_key(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    key_vec *v = ud;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        char **k = hb_realloc(v->keys, cap * sizeof *k);
        if (!k)
            return HARVBK_E_NOMEM;
        v->keys = k;
        v->cap = cap;
    }
    if (!(v->keys[v->n] = hb_strdup(key)))
        return HARVBK_E_NOMEM;
    v->n++;
    return 0;
}

int hb_store_entry_delete(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                          hb_err *e)
{
    char *mkey = hb_key_manifest(kind_dir, ns, name);
    if (!mkey)
        return bad_names(e, kind_dir, ns, name);
    /* Claim the name first (docs/FORMAT.md "Claims"): a creator that looks
     * after this sees the claim and backs off, so it never writes indexes
     * that the removal below would take away. */
    hb_claim *claim = NULL;
    const char *owner = st->t->owner && *st->t->owner ? st->t->owner : "deleter";
    int rc = hb_store_claim_for_delete(st, kind_dir, ns, name, owner, &claim, e);
    if (rc) {
        hb_free(mkey);
        return hb_err_prefix(e, "cannot delete %s/%s", ns, name);
    }
    /* the manifest first: from here on the entry is not committed */
    uint64_t msize;
    int hr = hb_target_head(st->t, mkey, &msize, NULL);
    bool committed = hr == 0;
    rc = hb_target_del(st->t, mkey, e);
    hb_free(mkey);
    if (rc) {
        hb_store_claim_release(claim);
        return rc;
    }
    if (!committed) {
        /* Leftovers of an attempt that never committed: while another
         * writer claims the name, they may be its indexes in the making. */
        unsigned live = 0;
        rc = hb_store_claim_others_live(claim, &live, e);
        if (rc || live) {
            hb_store_claim_release(claim);
            if (live)
                hb_log_info(st->log, "%s/%s/%s: left as it is, another writer is creating it",
                            kind_dir, ns, name);
            return rc;
        }
    }
    char *prefix = hb_asprintf("%s/%s/%s/", kind_dir, ns, name);
    if (!prefix) {
        hb_store_claim_release(claim);
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory deleting %s/%s", ns, name);
    }
    key_vec v = { NULL, 0, 0 };
    rc = hb_target_list(st->t, prefix, collect_key, &v, e);
    if (rc == HARVBK_E_NOMEM)
        hb_seterr(e, rc, "out of memory deleting %s/%s", ns, name);
    /* Claims stay: ours goes last, others' belong to writers that back off
     * (or expire); they are small and ignored by everything but claimants. */
    size_t k = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (hb_store_key_is_claim(prefix, v.keys[i]))
            hb_free(v.keys[i]);
        else
            v.keys[k++] = v.keys[i];
    }
    v.n = k;
    for (size_t i = 0; !rc && i < v.n; i += DELETE_BATCH)
        rc = hb_target_del_many(st->t, (const char *const *)v.keys + i,
                                HB_MIN((size_t)DELETE_BATCH, v.n - i), e);
    for (size_t i = 0; i < v.n; i++)
        hb_free(v.keys[i]);
    hb_free(v.keys);
    hb_free(prefix);
    hb_store_claim_release(claim);
    return rc;
}
