/*
 * store/keys.c - the key slots of an encrypted store (docs/FORMAT.md section
 * 10): the store master key wrapped by key-encryption keys (KEKs) derived
 * from the users' key files (HKDF-SHA-256) or passphrases (scrypt), in the
 * "keys" array of harvbk-store.json. Unlocking, adding and removing slots.
 *
 * A slot:
 *   {"id":"<16 hex>","kdf":"hkdf-sha256"|"scrypt","salt":"<64 hex>",
 *    "n":32768,"r":8,"p":1 (scrypt only),"nonce":"<24 hex>","wrapped":"<96 hex>",
 *    "created":<unix s>}
 * KEK     = HKDF-SHA-256(key file bytes, salt, "harvbk 1.1 key file"), or
 *           scrypt(passphrase, salt, n, r, p), 32 bytes
 * id      = first 8 bytes of HMAC-SHA-256(KEK, "harvbk 1.1 key id")
 * wrapped = AES-256-GCM(KEK, nonce, master key; additional data
 *           "harvbk 1.1 store key " || store_id || id): 32 bytes + 16-byte tag
 * Every KEK lives in secure memory and is wiped as soon as it was used.
 */
#include "../core/crypt.h"
#include "../core/json.h"
#include "internal.h"
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define INFO_KEYFILE "harvbk 1.1 key file"
#define INFO_KEYID "harvbk 1.1 key id"
#define WRAP_AAD "harvbk 1.1 store key "
#define SALT_LEN 32
#define WRAPPED_LEN (HB_STORE_KEY_LEN + HB_GCM_TAG_LEN)
#define WHAT "store config harvbk-store.json"

/* scrypt costs a reader accepts from a (possibly hostile) config */
#define SCRYPT_N_MIN (1ull << 10)
#define SCRYPT_N_MAX (1ull << 20)
#define SCRYPT_R_MAX 32u
#define SCRYPT_P_MAX 16u
#define SCRYPT_MEM_MAX (256ull << 20) /* 128 * n * r */
#define SCRYPT_WORK_MAX (1ull << 25)  /* n * r * p */

const char *hb_kdf_name(int kdf)
{
    return kdf == HB_KDF_HKDF ? "hkdf-sha256" : kdf == HB_KDF_SCRYPT ? "scrypt" : "unknown";
}

void hb_keyring_clear(hb_keyring *r)
{
    if (!r)
        return;
    hb_free(r->slots);
    memset(r, 0, sizeof *r);
}

static bool hex_field(const cJSON *o, const char *field, uint8_t *out, size_t n)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsString(x) || !x->valuestring || strlen(x->valuestring) != 2 * n)
        return false;
    for (const char *c = x->valuestring; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return hb_unhex(x->valuestring, out, n) == 0;
}

static int slot_parse(const cJSON *o, size_t i, hb_key_slot *s, hb_err *e)
{
    memset(s, 0, sizeof *s);
    const char *id = NULL, *kdf = NULL;
    int rc;
    if (!cJSON_IsObject(o))
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: keys[%zu] is not an object", WHAT, i);
    if ((rc = hb_json_get_str(o, "id", true, &id, WHAT, e)) ||
        (rc = hb_json_get_str(o, "kdf", true, &kdf, WHAT, e)) ||
        (rc = hb_json_get_i64(o, "created", false, &s->created, WHAT, e)))
        return rc;
    uint8_t idb[HB_KEY_ID_HEX / 2];
    if (strlen(id) != HB_KEY_ID_HEX || hb_unhex(id, idb, sizeof idb) != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: keys[%zu] has an invalid id", WHAT, i);
    for (size_t k = 0; k < HB_KEY_ID_HEX; k++)
        s->id[k] = (char)(id[k] >= 'A' && id[k] <= 'F' ? id[k] - 'A' + 'a' : id[k]);
    if (!strcmp(kdf, "hkdf-sha256")) {
        s->kdf = HB_KDF_HKDF;
    } else if (!strcmp(kdf, "scrypt")) {
        s->kdf = HB_KDF_SCRYPT;
        if ((rc = hb_json_get_u64(o, "n", true, &s->n, WHAT, e)) ||
            (rc = hb_json_get_u64(o, "r", true, &s->r, WHAT, e)) ||
            (rc = hb_json_get_u64(o, "p", true, &s->p, WHAT, e)))
            return rc;
        if (s->n < SCRYPT_N_MIN || s->n > SCRYPT_N_MAX || (s->n & (s->n - 1)) || s->r < 1 ||
            s->r > SCRYPT_R_MAX || s->p < 1 || s->p > SCRYPT_P_MAX ||
            128ull * s->n * s->r > SCRYPT_MEM_MAX || s->n * s->r * s->p > SCRYPT_WORK_MAX)
            return hb_seterr(e, HARVBK_E_CORRUPT,
                             "%s: key %s has scrypt costs out of range (n %llu, r %llu, p %llu)",
                             WHAT, s->id, (unsigned long long)s->n, (unsigned long long)s->r,
                             (unsigned long long)s->p);
    } else {
        /* a newer library's derivation: kept in the config, never used here */
        s->kdf = 0;
        return 0;
    }
    if (!hex_field(o, "salt", s->salt, SALT_LEN) ||
        !hex_field(o, "nonce", s->nonce, HB_GCM_NONCE_LEN) ||
        !hex_field(o, "wrapped", s->wrapped, WRAPPED_LEN))
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "%s: key %s needs salt (64 hex), nonce (24 hex) and wrapped (96 hex)",
                         WHAT, s->id);
    return 0;
}

int hb_keyring_parse(const cJSON *root, const char *store_id, hb_keyring *r, hb_err *e)
{
    memset(r, 0, sizeof *r);
    r->encrypted = true;
    snprintf(r->store_id, sizeof r->store_id, "%s", store_id);
    const char *fp = NULL;
    int rc = hb_json_get_str(root, "key_fingerprint", true, &fp, WHAT, e);
    if (rc)
        return rc;
    uint8_t fpb[HB_STORE_FP_HEX / 2];
    if (strlen(fp) != HB_STORE_FP_HEX || hb_unhex(fp, fpb, sizeof fpb) != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid key_fingerprint", WHAT);
    hb_hex(fpb, sizeof fpb, r->fingerprint);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    int n = cJSON_IsArray(keys) ? cJSON_GetArraySize(keys) : -1;
    if (n < 1 || n > HB_KEYS_MAX)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "%s: an encrypted store needs \"keys\", an array of 1 to %d key slots",
                         WHAT, HB_KEYS_MAX);
    r->slots = hb_calloc((size_t)n, sizeof *r->slots);
    if (!r->slots)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (int i = 0; i < n; i++) {
        rc = slot_parse(cJSON_GetArrayItem(keys, i), (size_t)i, &r->slots[i], e);
        if (rc) {
            hb_keyring_clear(r);
            return rc;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(r->slots[j].id, r->slots[i].id)) {
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: two keys have the id %s", WHAT,
                               r->slots[i].id);
                hb_keyring_clear(r);
                return rc;
            }
        r->n++;
    }
    return 0;
}

/* KEK of key for a slot's derivation (kdf, salt, costs) into kek (secure,
 * 32 bytes). 1 when the key's kind does not fit the derivation. */
static int derive_kek(const hb_key *key, int kdf, const uint8_t salt[SALT_LEN], uint64_t n,
                      uint64_t r, uint64_t p, uint8_t *kek)
{
    if (kdf == HB_KDF_HKDF && key->kind == HB_KEY_RAW)
        return hb_hkdf_sha256(key->data, key->len, salt, SALT_LEN, INFO_KEYFILE, kek,
                              HB_AES_KEY_LEN);
    if (kdf == HB_KDF_SCRYPT && key->kind == HB_KEY_PASSPHRASE)
        return hb_scrypt(key->data, key->len, salt, SALT_LEN, n, r, p, kek, HB_AES_KEY_LEN);
    return 1;
}

static void kek_id(const uint8_t *kek, char id[HB_KEY_ID_HEX + 1])
{
    uint8_t mac[HB_DIGEST_LEN];
    hb_hmac_sha256(kek, HB_AES_KEY_LEN, INFO_KEYID, sizeof INFO_KEYID - 1, mac);
    hb_hex(mac, HB_KEY_ID_HEX / 2, id);
}

static char *wrap_aad(const char *store_id)
{
    return hb_asprintf(WRAP_AAD "%s", store_id);
}

int hb_keyring_unlock(const hb_keyring *r, const hb_key *key, hb_store_crypt **out,
                      size_t *out_slot, hb_err *e)
{
    *out = NULL;
    if (!key)
        return hb_seterr(e, HARVBK_E_KEY, "the store is encrypted (key %s) and no key was given",
                         r->fingerprint);
    uint8_t *sec = hb_secure_alloc(HB_AES_KEY_LEN + HB_STORE_KEY_LEN);
    char *aad = wrap_aad(r->store_id);
    if (!sec || !aad) {
        hb_secure_free(sec, HB_AES_KEY_LEN + HB_STORE_KEY_LEN);
        hb_free(aad);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    uint8_t *kek = sec, *master = sec + HB_AES_KEY_LEN;
    int rc = HARVBK_E_KEY;
    size_t tried = 0;
    for (size_t i = 0; i < r->n && rc == HARVBK_E_KEY; i++) {
        const hb_key_slot *s = &r->slots[i];
        int d = derive_kek(key, s->kdf, s->salt, s->n, s->r, s->p, kek);
        if (d == 1)
            continue;
        tried++;
        if (d) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, "cannot derive a key (OpenSSL failed)");
            break;
        }
        char id[HB_KEY_ID_HEX + 1];
        kek_id(kek, id);
        if (strcmp(id, s->id) != 0)
            continue; /* another key's slot */
        int g = hb_gcm_open(kek, s->nonce, aad, strlen(aad), s->id, HB_KEY_ID_HEX, s->wrapped,
                            HB_STORE_KEY_LEN, s->wrapped + HB_STORE_KEY_LEN, master);
        if (g == HARVBK_E_CHUNK) {
            rc = hb_seterr(e, HARVBK_E_CORRUPT,
                           "key %s of the store is damaged: the key matches its id but does not "
                           "unwrap the store key",
                           s->id);
            break;
        }
        if (g) {
            rc = hb_seterr(e, g, "cannot decrypt the store key (OpenSSL failed)");
            break;
        }
        hb_store_crypt *c = NULL;
        rc = hb_store_crypt_new(&c, r->store_id, master, e);
        if (rc)
            break;
        if (strcmp(hb_store_crypt_fingerprint(c), r->fingerprint) != 0) {
            hb_store_crypt_unref(c);
            rc = hb_seterr(e, HARVBK_E_CORRUPT,
                           "key %s of the store wraps a key whose fingerprint is not the "
                           "store's (%s)",
                           s->id, r->fingerprint);
            break;
        }
        hb_store_crypt_set_slot(c, s->id);
        *out = c;
        if (out_slot)
            *out_slot = i;
        rc = 0;
    }
    hb_secure_free(sec, HB_AES_KEY_LEN + HB_STORE_KEY_LEN);
    hb_free(aad);
    if (rc == HARVBK_E_KEY) {
        char ids[HB_KEYS_MAX * (HB_KEY_ID_HEX + 2) + 1] = "";
        for (size_t i = 0; i < r->n; i++)
            if (r->slots[i].kdf == (key->kind == HB_KEY_RAW ? HB_KDF_HKDF : HB_KDF_SCRYPT))
                snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", *ids ? ", " : "",
                         r->slots[i].id);
        if (tried == 0)
            hb_seterr(e, HARVBK_E_KEY,
                      "wrong key: the store (key %s) has no %s key; it is opened by %s",
                      r->fingerprint, hb_key_kind_name(key->kind),
                      key->kind == HB_KEY_RAW ? "a passphrase" : "a key file");
        else
            hb_seterr(e, HARVBK_E_KEY,
                      "wrong key: the %s given opens none of the store's %s keys (%s; store key "
                      "%s)",
                      hb_key_kind_name(key->kind), hb_key_kind_name(key->kind), ids,
                      r->fingerprint);
    }
    return rc;
}

int hb_keyring_match(const hb_keyring *r, const hb_key *key, size_t *out_slot, hb_err *e)
{
    hb_store_crypt *c = NULL;
    int rc = hb_keyring_unlock(r, key, &c, out_slot, e);
    hb_store_crypt_unref(c);
    return rc;
}

/* The JSON object of a new slot wrapping c's master key under key. */
int hb_keyring_slot_new(const hb_store_crypt *c, const hb_key *key, cJSON **out,
                        char id_out[HB_KEY_ID_HEX + 1], hb_err *e)
{
    *out = NULL;
    uint8_t salt[SALT_LEN], nonce[HB_GCM_NONCE_LEN], wrapped[WRAPPED_LEN];
    hb_random(salt, sizeof salt);
    hb_random(nonce, sizeof nonce);
    int kdf = key->kind == HB_KEY_RAW ? HB_KDF_HKDF : HB_KDF_SCRYPT;
    uint64_t n = 1ull << hb_scrypt_log2n, r = 8, p = 1;
    uint8_t *kek = hb_secure_alloc(HB_AES_KEY_LEN);
    char *aad = wrap_aad(hb_store_crypt_store_id(c));
    int rc = (!kek || !aad) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (!rc && derive_kek(key, kdf, salt, n, r, p, kek) != 0)
        rc = hb_seterr(e, HARVBK_E_NOMEM, "cannot derive a key (OpenSSL failed)");
    char id[HB_KEY_ID_HEX + 1] = "";
    if (!rc) {
        kek_id(kek, id);
        rc = hb_gcm_seal(kek, nonce, aad, strlen(aad), id, HB_KEY_ID_HEX,
                         hb_store_crypt_master(c), HB_STORE_KEY_LEN, wrapped,
                         wrapped + HB_STORE_KEY_LEN);
        if (rc)
            hb_seterr(e, rc, "cannot wrap the store key (OpenSSL failed)");
    }
    hb_secure_free(kek, HB_AES_KEY_LEN);
    hb_free(aad);
    if (rc)
        return rc;
    char salt_hex[2 * SALT_LEN + 1], nonce_hex[2 * HB_GCM_NONCE_LEN + 1],
        wrapped_hex[2 * WRAPPED_LEN + 1];
    hb_hex(salt, sizeof salt, salt_hex);
    hb_hex(nonce, sizeof nonce, nonce_hex);
    hb_hex(wrapped, sizeof wrapped, wrapped_hex);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", id) &&
              cJSON_AddStringToObject(o, "kdf", hb_kdf_name(kdf)) &&
              cJSON_AddStringToObject(o, "salt", salt_hex);
    if (ok && kdf == HB_KDF_SCRYPT)
        ok = hb_json_add_u64(o, "n", n) && hb_json_add_u64(o, "r", r) &&
             hb_json_add_u64(o, "p", p);
    ok = ok && cJSON_AddStringToObject(o, "nonce", nonce_hex) &&
         cJSON_AddStringToObject(o, "wrapped", wrapped_hex) &&
         cJSON_AddNumberToObject(o, "created", (double)hb_now());
    if (!ok) {
        cJSON_Delete(o);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    *out = o;
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return 0;
}

/* ---- adding and removing keys of an open store ---- */

/* Put the config tree and read it back: the change must be there (another
 * process rewriting the config at the same instant may have won). */
static int config_rewrite(hb_store *st, cJSON *root, const char *id, bool want_present,
                          hb_err *e)
{
    char *text = hb_json_print(root);
    if (!text)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = hb_target_put(st->t, HB_STORE_CONFIG_NAME, text, strlen(text), e);
    hb_free(text);
    if (rc)
        return rc;
    hb_store_config sc;
    rc = hb_store_config_read(st->t, &sc, NULL, e);
    if (rc)
        return rc;
    bool present = false;
    for (size_t i = 0; i < sc.ring.n; i++)
        present |= !strcmp(sc.ring.slots[i].id, id);
    if (strcmp(sc.id, st->id) != 0 || strcmp(sc.ring.fingerprint, hb_store_crypt_fingerprint(st->crypt)) != 0)
        rc = hb_seterr(e, HARVBK_E_BUSY, "the store config changed under us (another store?)");
    else if (present != want_present)
        rc = hb_seterr(e, HARVBK_E_BUSY,
                       "another process rewrote the store config at the same time; the key "
                       "change was lost: try again");
    hb_store_config_clear(&sc);
    return rc;
}

int hb_store_key_add(hb_store *st, const hb_key *key, char id_out[HB_KEY_ID_HEX + 1], hb_err *e)
{
    if (!st->crypt)
        return hb_seterr(e, HARVBK_E_STATE, "the store is not encrypted: it has no keys");
    if (!key)
        return hb_seterr(e, HARVBK_E_INVALID, "no key to add");
    cJSON *root = NULL;
    hb_store_config sc;
    int rc = hb_store_config_read(st->t, &sc, &root, e);
    if (rc)
        return rc;
    if (strcmp(sc.id, st->id) != 0 || strcmp(sc.ring.fingerprint, hb_store_crypt_fingerprint(st->crypt)) != 0)
        rc = hb_seterr(e, HARVBK_E_STATE, "the target now holds another store than the one open");
    size_t slot = 0;
    hb_err me;
    hb_err_clear(&me);
    if (!rc) {
        int m = hb_keyring_match(&sc.ring, key, &slot, &me);
        if (m == 0)
            rc = hb_seterr(e, HARVBK_E_EXISTS, "that %s already opens the store (key %s)",
                           hb_key_kind_name(key->kind), sc.ring.slots[slot].id);
        else if (m != HARVBK_E_KEY)
            rc = hb_seterr(e, m, "%s", me.msg);
    }
    if (!rc && sc.ring.n >= HB_KEYS_MAX)
        rc = hb_seterr(e, HARVBK_E_INVALID, "the store has %d keys already, the most it may have",
                       HB_KEYS_MAX);
    cJSON *slot_obj = NULL;
    char id[HB_KEY_ID_HEX + 1] = "";
    if (!rc)
        rc = hb_keyring_slot_new(st->crypt, key, &slot_obj, id, e);
    if (!rc && !cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(root, "keys"), slot_obj)) {
        cJSON_Delete(slot_obj);
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if (!rc)
        rc = config_rewrite(st, root, id, true, e);
    if (!rc && id_out)
        memcpy(id_out, id, sizeof id);
    cJSON_Delete(root);
    hb_store_config_clear(&sc);
    return rc;
}

int hb_store_key_remove(hb_store *st, const char *id, hb_err *e)
{
    if (!st->crypt)
        return hb_seterr(e, HARVBK_E_STATE, "the store is not encrypted: it has no keys");
    if (!id || strlen(id) != HB_KEY_ID_HEX)
        return hb_seterr(e, HARVBK_E_INVALID, "a key id is %d hex digits (see the key list)",
                         HB_KEY_ID_HEX);
    cJSON *root = NULL;
    hb_store_config sc;
    int rc = hb_store_config_read(st->t, &sc, &root, e);
    if (rc)
        return rc;
    if (strcmp(sc.id, st->id) != 0 || strcmp(sc.ring.fingerprint, hb_store_crypt_fingerprint(st->crypt)) != 0)
        rc = hb_seterr(e, HARVBK_E_STATE, "the target now holds another store than the one open");
    size_t at = sc.ring.n, usable = 0;
    for (size_t i = 0; i < sc.ring.n; i++) {
        if (!strcasecmp(sc.ring.slots[i].id, id))
            at = i;
        usable += sc.ring.slots[i].kdf != 0;
    }
    if (!rc && at == sc.ring.n)
        rc = hb_seterr(e, HARVBK_E_NOTFOUND, "the store has no key %s", id);
    if (!rc && !strcmp(sc.ring.slots[at].id, st->key_slot))
        rc = hb_seterr(e, HARVBK_E_STATE,
                       "key %s is the one this context opened the store with; open it with "
                       "another of its keys first",
                       sc.ring.slots[at].id);
    if (!rc && sc.ring.slots[at].kdf != 0 && usable <= 1)
        rc = hb_seterr(e, HARVBK_E_STATE, "key %s is the store's last key", id);
    char idl[HB_KEY_ID_HEX + 1] = "";
    if (!rc) {
        memcpy(idl, sc.ring.slots[at].id, sizeof idl);
        cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(root, "keys"), (int)at);
        rc = config_rewrite(st, root, idl, false, e);
    }
    cJSON_Delete(root);
    hb_store_config_clear(&sc);
    return rc;
}
