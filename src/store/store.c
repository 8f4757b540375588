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

#define STORE_CONFIG_KEY HB_STORE_CONFIG_NAME
#define STORE_CONFIG_WHAT "store config " STORE_CONFIG_KEY
#define MANIFEST_LEAF "manifest.json"
#define INDEX_SUFFIX ".idx"
#define CHUNK_ID_SHA256 "sha256"
#define ENCRYPTION_NONE "none"
#define DELETE_BATCH 1000
#define STORE_CONFIG_MAX (1024u * 1024u) /* a few hundred bytes in practice */
#define INDEX_HEADER_TRAILER_LEN 64      /* FORMAT.md section 5 */

/* ---- store config ---- */

#define CHUNK_ID_HMAC "hmac-sha256"
#define ENCRYPTION_AES_GCM "aes-256-gcm"

void hb_store_config_clear(hb_store_config *sc)
{
    if (!sc)
        return;
    hb_keyring_clear(&sc->ring);
    memset(sc, 0, sizeof *sc);
}

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

int hb_store_config_parse(const void *data, size_t len, hb_store_config *sc, cJSON **keep,
                          hb_err *e)
{
    memset(sc, 0, sizeof *sc);
    if (keep)
        *keep = NULL;
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
     * chunks at all: an unknown value (or pair) is a format this library
     * cannot read. Format 1.0 knows sha256/none; 1.1 adds hmac-sha256 with
     * aes-256-gcm (section 10), which a 1.0 reader refuses here. */
    bool plain = chunk_id && enc && !strcmp(chunk_id, CHUNK_ID_SHA256) &&
                 !strcmp(enc, ENCRYPTION_NONE);
    bool sealed = chunk_id && enc && !strcmp(chunk_id, CHUNK_ID_HMAC) &&
                  !strcmp(enc, ENCRYPTION_AES_GCM);
    if (!plain && !sealed) {
        bool known_ids = chunk_id && (!strcmp(chunk_id, CHUNK_ID_SHA256) ||
                                      !strcmp(chunk_id, CHUNK_ID_HMAC));
        bool known_enc = enc && (!strcmp(enc, ENCRYPTION_NONE) ||
                                 !strcmp(enc, ENCRYPTION_AES_GCM));
        if (!known_ids)
            rc = hb_seterr(e, HARVBK_E_FORMAT,
                           "store uses chunk ids \"%s\", which this library does not support",
                           chunk_id ? chunk_id : "");
        else if (!known_enc)
            rc = hb_seterr(e, HARVBK_E_FORMAT,
                           "store uses encryption \"%s\", which this library does not support",
                           enc ? enc : "");
        else
            rc = hb_seterr(e, HARVBK_E_FORMAT,
                           "store uses chunk ids \"%s\" with encryption \"%s\", a combination "
                           "this library does not support",
                           chunk_id, enc);
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
    snprintf(sc->ring.store_id, sizeof sc->ring.store_id, "%s", id);
    if (sealed && (rc = hb_keyring_parse(root, id, &sc->ring, e)))
        goto out;
out:
    if (rc == 0 && keep)
        *keep = root;
    else
        cJSON_Delete(root);
    if (rc)
        hb_store_config_clear(sc);
    return rc;
}

int hb_store_config_read(hb_target *t, hb_store_config *sc, cJSON **root, hb_err *e)
{
    memset(sc, 0, sizeof *sc);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_target_get_max(t, STORE_CONFIG_KEY, &b, STORE_CONFIG_MAX, e);
    if (rc == 0)
        rc = hb_store_config_parse(b.data, b.len, sc, root, e);
    hb_buf_free(&b);
    return rc;
}

int hb_store_keyring_read(hb_target *t, hb_keyring *r, hb_err *e)
{
    memset(r, 0, sizeof *r);
    hb_store_config sc;
    int rc = hb_store_config_read(t, &sc, NULL, e);
    if (rc)
        return rc;
    *r = sc.ring;
    memset(&sc.ring, 0, sizeof sc.ring);
    hb_store_config_clear(&sc);
    return 0;
}

/* A new store's config; with a key, an encrypted one: a random master key
 * wrapped under key in the first key slot (*made gets its unlocked key). */
static int config_create(hb_target *t, uint32_t chunk_size, int codec, const hb_key *key,
                         hb_store_crypt **made, hb_err *e)
{
    char id[37];
    hb_uuid(id);
    int rc = 0;
    hb_store_crypt *c = NULL;
    cJSON *slot = NULL;
    if (key) {
        uint8_t *master = hb_secure_alloc(HB_STORE_KEY_LEN);
        if (!master)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        hb_random(master, HB_STORE_KEY_LEN);
        rc = hb_store_crypt_new(&c, id, master, e);
        hb_secure_free(master, HB_STORE_KEY_LEN);
        char sid[HB_KEY_ID_HEX + 1] = "";
        if (!rc)
            rc = hb_keyring_slot_new(c, key, &slot, sid, e);
        if (!rc)
            hb_store_crypt_set_slot(c, sid);
        if (rc) {
            hb_store_crypt_unref(c);
            return rc;
        }
    }
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddNumberToObject(root, "format_major", HB_FORMAT_MAJOR) != NULL;
        ok &= cJSON_AddNumberToObject(root, "format_minor",
                                      c ? HB_FORMAT_MINOR_ENCRYPTED : HB_FORMAT_MINOR) != NULL;
        ok &= cJSON_AddStringToObject(root, "store_id", id) != NULL;
        ok &= hb_json_add_u64(root, "chunk_size", chunk_size) != NULL;
        ok &= cJSON_AddStringToObject(root, "codec", hb_codec_name(codec)) != NULL;
        ok &= cJSON_AddStringToObject(root, "chunk_id", c ? CHUNK_ID_HMAC : CHUNK_ID_SHA256) !=
              NULL;
        ok &= cJSON_AddStringToObject(root, "encryption",
                                      c ? ENCRYPTION_AES_GCM : ENCRYPTION_NONE) != NULL;
        ok &= cJSON_AddNumberToObject(root, "created", (double)hb_now()) != NULL;
        if (c) {
            ok &= cJSON_AddStringToObject(root, "key_fingerprint",
                                          hb_store_crypt_fingerprint(c)) != NULL;
            cJSON *keys = cJSON_AddArrayToObject(root, "keys");
            ok = ok && keys && cJSON_AddItemToArray(keys, slot);
            if (ok)
                slot = NULL;
        }
    }
    cJSON_Delete(slot);
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        hb_store_crypt_unref(c);
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot encode the store config");
    }
    rc = hb_target_put(t, STORE_CONFIG_KEY, text, strlen(text), e);
    hb_free(text);
    if (rc)
        hb_store_crypt_unref(c);
    else if (made)
        *made = c;
    return rc;
}

int hb_store_open(hb_store **out, hb_target *t, const hb_target_cfg *cfg, hb_err *e)
{
    return hb_store_open_key(out, t, cfg, true, NULL, e);
}

int hb_store_open_ex(hb_store **out, hb_target *t, const hb_target_cfg *cfg, bool create,
                     hb_err *e)
{
    return hb_store_open_key(out, t, cfg, create, NULL, e);
}

/* The store key of an encrypted store described by sc: reuse when it is this
 * store's, else unwrap with the configuration's key. */
static int store_unlock(hb_store *st, const hb_store_config *sc, const hb_target_cfg *cfg,
                        hb_store_crypt *reuse, const char *where, hb_err *e)
{
    if (reuse && !strcmp(hb_store_crypt_store_id(reuse), sc->id) &&
        !strcmp(hb_store_crypt_fingerprint(reuse), sc->ring.fingerprint)) {
        st->crypt = hb_store_crypt_ref(reuse);
        memcpy(st->key_slot, hb_store_crypt_slot(reuse), sizeof st->key_slot);
        return 0;
    }
    hb_key *key = NULL;
    int rc = cfg ? hb_target_cfg_load_key(cfg, &key, e) : 0;
    if (rc)
        return rc;
    if (!key) {
        hb_key_free(key);
        return hb_seterr(e, HARVBK_E_KEY,
                         "the store in %s is encrypted (store key %s) and no key was given",
                         where, sc->ring.fingerprint);
    }
    size_t slot = 0;
    rc = hb_keyring_unlock(&sc->ring, key, &st->crypt, &slot, e);
    hb_key_free(key);
    if (rc)
        return hb_err_prefix(e, "store in %s", where);
    memcpy(st->key_slot, sc->ring.slots[slot].id, sizeof st->key_slot);
    return 0;
}

int hb_store_open_key(hb_store **out, hb_target *t, const hb_target_cfg *cfg, bool create,
                      hb_store_crypt *reuse, hb_err *e)
{
    *out = NULL;
    if (!t)
        return hb_seterr(e, HARVBK_E_INVALID, "no target to open a store in");
    int want_codec = cfg && cfg->codec >= 0 ? cfg->codec : HB_CODEC_ZSTD;
    uint32_t want_cs = cfg && cfg->chunk_size ? cfg->chunk_size : hb_target_cfg_default_chunk_size(cfg);
    bool want_enc = cfg && hb_target_cfg_encrypted(cfg);
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
    const char *where = t->display ? t->display : "target";
    hb_buf b = HB_BUF_INIT;
    hb_store_config sc;
    memset(&sc, 0, sizeof sc);
    hb_store_crypt *made = NULL;
    int rc = hb_target_get_max(t, STORE_CONFIG_KEY, &b, STORE_CONFIG_MAX, e);
    if (rc == HARVBK_E_NOTFOUND && !create) {
        rc = hb_seterr(e, HARVBK_E_TARGET,
                       "no libharvbk store in %s (its %s is missing): the target may be "
                       "unmounted or emptied; set the target again to create a new store",
                       where, STORE_CONFIG_KEY);
        goto fail;
    }
    if (rc == HARVBK_E_NOTFOUND) {
        if (!hb_chunk_size_valid(want_cs)) {
            rc = hb_seterr(e, HARVBK_E_INVALID,
                           "chunk size %u is not a power of two between %u and %u bytes",
                           want_cs, HB_MIN_CHUNK_SIZE, HB_MAX_CHUNK_SIZE);
            goto fail;
        }
        hb_key *key = NULL;
        if (want_enc) {
            /* the key is needed before anything is written */
            rc = hb_target_cfg_load_key(cfg, &key, e);
            if (rc == 0 && !key)
                rc = hb_seterr(e, HARVBK_E_KEY,
                               "an encrypted store is wanted in %s but no key was given", where);
            if (rc)
                goto fail;
        }
        hb_log_info(st->log, "creating a new %sstore in %s (chunk size %u, codec %s)",
                    key ? "encrypted " : "", where, want_cs, hb_codec_name(want_codec));
        rc = config_create(t, want_cs, want_codec, key, &made, e);
        hb_key_free(key);
        /* Two creators may race: both put, the last put wins. Re-read and adopt
         * whatever is there now; chunks, indexes and manifests are
         * self-describing, so a loser that already wrote needs nothing else. */
        if (!rc)
            rc = hb_target_get_max(t, STORE_CONFIG_KEY, &b, STORE_CONFIG_MAX, e);
    }
    if (rc)
        goto fail;
    rc = hb_store_config_parse(b.data, b.len, &sc, NULL, e);
    if (rc) {
        hb_err_prefix(e, "store in %s", where);
        goto fail;
    }
    hb_buf_free(&b);
    if (sc.ring.encrypted) {
        /* the store this process just made: its key is in hand */
        rc = store_unlock(st, &sc, cfg, made ? made : reuse, where, e);
        if (rc)
            goto fail;
    } else if (want_enc) {
        rc = hb_seterr(e, HARVBK_E_KEY,
                       "the store in %s is not encrypted but encryption is configured: a store "
                       "cannot be encrypted in place (use an empty location for an encrypted "
                       "store, or turn encryption off to use this one)",
                       where);
        goto fail;
    }
    hb_store_crypt_unref(made);
    made = NULL;
    memcpy(st->id, sc.id, sizeof st->id);
    st->chunk_size = sc.chunk_size;
    /* the codec for new chunks may differ from the store default: chunks
     * record their own codec */
    st->codec = cfg && cfg->codec >= 0 ? cfg->codec : sc.codec;
    st->level = 0;
    if (cfg && cfg->chunk_size && cfg->chunk_size != sc.chunk_size)
        hb_log_info(st->log, "store %s has chunk size %u; the configured %u applies only to new "
                    "stores", st->id, sc.chunk_size, cfg->chunk_size);
    hb_store_config_clear(&sc);
    *out = st;
    return 0;
fail:
    hb_store_crypt_unref(made);
    hb_store_config_clear(&sc);
    hb_buf_free(&b);
    hb_store_close(st);
    return rc;
}

void hb_store_close(hb_store *st)
{
    if (!st)
        return;
    hb_target_close(st->t);
    hb_store_crypt_unref(st->crypt);
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
    int rc = hb_target_get_max(st->t, key, &b, hb_store_sealed_max(st, HB_MANIFEST_MAX), e);
    if (!rc)
        rc = hb_store_unseal(st, key, &b, e);
    if (rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT)
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
        rc = hb_store_seal(st, key, &b, e);
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
        rc = hb_store_seal(st, key, &b, e);
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
    size_t want = hb_store_sealed_max(st, INDEX_HEADER_TRAILER_LEN +
                                              (size_t)v->chunks * HB_DIGEST_LEN);
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
    /* the manifest vouched for the stored bytes; in an encrypted store they
     * also authenticate under the store key, bound to this index's key */
    rc = hb_store_unseal(st, key, &b, e);
    if (rc == 0)
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
