/*
 * target/config.c - the target configuration: validation of every setting,
 * the public harvbk_target_config_* accessors, JSON persistence, display form.
 *
 * Conventions:
 *   - a NULL or "" value resets a setting to its default;
 *   - URLs never carry credentials (userinfo is refused), so the URL can be
 *     logged and persisted; the secret access key is only serialised when
 *     store_secret is set and is never echoed in messages;
 *   - unset settings read back as "" (codec, chunk size, parallel and the
 *     strings); booleans read "0"/"1"; numbers read their decimal value.
 */
#include "config.h"

#include "../core/json.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_JSON_VERSION 1
/* A read-only configuration is written as version 2, so that a library older
 * than the setting refuses it ("newer") instead of ignoring "read_only" and
 * writing to a target the user made read-only. Version 1 files read as ever. */
#define CFG_JSON_VERSION_MAX 2
#define MAX_PARALLEL 256u

void hb_target_cfg_init(hb_target_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->codec = -1;
    c->timeout_ms = HB_DEFAULT_TIMEOUT_MS;
}

static void free_secret(char **s)
{
    hb_secure_strfree(*s);
    *s = NULL;
}

void hb_target_cfg_clear(hb_target_cfg *c)
{
    if (!c)
        return;
    hb_free(c->url);
    hb_free(c->endpoint);
    hb_free(c->region);
    hb_free(c->access_key_id);
    free_secret(&c->secret_access_key);
    hb_free(c->ca_cert_file);
    hb_free(c->key_file);
    hb_free(c->passphrase_file);
    hb_key_free(c->key);
    hb_target_cfg_init(c);
}

/* dst is overwritten (it must not own strings); on failure it is left empty. */
int hb_target_cfg_copy(hb_target_cfg *dst, const hb_target_cfg *src)
{
    *dst = *src;
    dst->url = hb_strdup(src->url);
    dst->endpoint = hb_strdup(src->endpoint);
    dst->region = hb_strdup(src->region);
    dst->access_key_id = hb_strdup(src->access_key_id);
    dst->secret_access_key = hb_secure_strdup(src->secret_access_key);
    dst->ca_cert_file = hb_strdup(src->ca_cert_file);
    dst->key_file = hb_strdup(src->key_file);
    dst->passphrase_file = hb_strdup(src->passphrase_file);
    dst->key = NULL;
    int krc = hb_key_dup(&dst->key, src->key);
    if ((src->url && !dst->url) || (src->endpoint && !dst->endpoint) ||
        (src->region && !dst->region) || (src->access_key_id && !dst->access_key_id) ||
        (src->secret_access_key && !dst->secret_access_key) ||
        (src->ca_cert_file && !dst->ca_cert_file) || (src->key_file && !dst->key_file) ||
        (src->passphrase_file && !dst->passphrase_file) || krc) {
        hb_target_cfg_clear(dst);
        return HARVBK_E_NOMEM;
    }
    return 0;
}

/* ---- codecs ---- */

static const char *const codec_names[] = { "none", "zstd", "lz4", "gzip" };

int hb_codec_parse(const char *s)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < HB_ARRAY_LEN(codec_names); i++)
        if (!strcmp(s, codec_names[i]))
            return (int)i;
    return -1;
}

const char *hb_codec_name(int codec)
{
    if (codec == -1)
        return "default";
    if (codec >= 0 && (size_t)codec < HB_ARRAY_LEN(codec_names))
        return codec_names[codec];
    return "unknown";
}

/* ---- value parsers ---- */

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static int parse_u32(const char *what, const char *v, uint32_t *out, hb_err *e)
{
    size_t n = strlen(v);
    uint64_t x = 0;
    if (n == 0 || n > 10)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            goto bad;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > UINT32_MAX)
        goto bad;
    *out = (uint32_t)x;
    return 0;
bad:
    return hb_seterr(e, HARVBK_E_INVALID, "%s must be a decimal number from 0 to %u, got '%.32s'",
                     what, UINT32_MAX, v);
}

static int parse_bool(const char *what, const char *v, bool *out, hb_err *e)
{
    if (!strcmp(v, "1") || !strcmp(v, "true")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false")) {
        *out = false;
        return 0;
    }
    return hb_seterr(e, HARVBK_E_INVALID, "%s must be 0, 1, true or false, got '%.32s'", what, v);
}

static bool ieq_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Checks a target URL; *norm receives it with the scheme lower-cased. Messages
 * never echo the URL (it might hold credentials the caller pasted in). */
static int check_url(const char *url, char **norm, hb_err *e)
{
    *norm = NULL;
    const char *sep = strstr(url, "://");
    size_t slen = sep ? (size_t)(sep - url) : 0;
    if (!sep || slen == 0 || slen > 16)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "invalid target URL: expected file:///path, nfs://server/export/path "
                         "or s3://bucket/prefix");
    char scheme[17];
    for (size_t i = 0; i < slen; i++) {
        char ch = url[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '-' || ch == '.'))
            return hb_seterr(e, HARVBK_E_INVALID, "invalid target URL: bad scheme");
        scheme[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    scheme[slen] = '\0';
    if (strcmp(scheme, "file") && strcmp(scheme, "nfs") && strcmp(scheme, "s3"))
        return hb_seterr(e, HARVBK_E_UNSUPPORTED,
                         "unknown target URL scheme '%s' (expected file://, nfs:// or s3://)",
                         scheme);
    if (has_ctl(url))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid target URL: control characters");
    const char *rest = sep + 3;
    size_t alen = strcspn(rest, "/?#");
    if (memchr(rest, '@', alen))
        return hb_seterr(e, HARVBK_E_INVALID,
                         "credentials in the target URL are not supported; set the access key "
                         "id and secret access key settings instead");
    const char *path = rest + alen;
    if (!strcmp(scheme, "file")) {
        if (alen != 0 || path[0] != '/')
            return hb_seterr(e, HARVBK_E_INVALID,
                             "file:// target URL must name an absolute path (file:///path)");
    } else if (!strcmp(scheme, "nfs")) {
        if (alen == 0)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "nfs:// target URL needs a server (nfs://server/export/path)");
        if (path[0] != '/' || path[1] == '\0' || path[1] == '?')
            return hb_seterr(e, HARVBK_E_INVALID,
                             "nfs:// target URL needs an export path (nfs://server/export/path)");
    } else { /* s3 */
        if (alen == 0 || alen > 255)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "s3:// target URL needs a bucket (s3://bucket/prefix)");
        for (size_t i = 0; i < alen; i++) {
            char ch = rest[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "s3:// target URL: invalid character in the bucket name");
        }
        if (strpbrk(path, "?#\\"))
            return hb_seterr(e, HARVBK_E_INVALID,
                             "s3:// target URL: the prefix must not contain '?', '#' or '\\'");
        if (strstr(path, "/../") || strstr(path, "/./") ||
            (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")))
            return hb_seterr(e, HARVBK_E_INVALID,
                             "s3:// target URL: the prefix must not contain '.' or '..' segments");
    }
    *norm = hb_asprintf("%s://%s", scheme, rest);
    return *norm ? 0 : hb_seterr(e, HARVBK_E_NOMEM, NULL);
}

static int check_endpoint(const char *v, hb_err *e)
{
    const char *host;
    if (ieq_prefix(v, "https://"))
        host = v + 8;
    else if (ieq_prefix(v, "http://"))
        host = v + 7;
    else
        return hb_seterr(e, HARVBK_E_INVALID,
                         "endpoint must be an http:// or https:// URL (e.g. https://s3.example:9000)");
    size_t alen = strcspn(host, "/?#");
    if (alen == 0)
        return hb_seterr(e, HARVBK_E_INVALID, "endpoint URL needs a host");
    if (memchr(host, '@', alen))
        return hb_seterr(e, HARVBK_E_INVALID, "credentials in the endpoint URL are not supported");
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "endpoint URL must not contain spaces or control characters");
    return 0;
}

/* 1..max characters, each in 0x21..0x7e (plus extra allowed set when given). */
static bool printable_token(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return false;
    return true;
}

static int set_str(char **field, const char *v, bool secret, hb_err *e)
{
    char *copy = NULL;
    if (v && *v) {
        copy = secret ? hb_secure_strdup(v) : hb_strdup(v);
        if (!copy)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if (secret)
        hb_secure_strfree(*field);
    else
        hb_free(*field);
    *field = copy;
    return 0;
}

int hb_target_cfg_set(hb_target_cfg *c, int key, const char *value, hb_err *e)
{
    if (!c)
        return hb_seterr(e, HARVBK_E_INVALID, "NULL target configuration");
    bool reset = !value || !*value;
    uint32_t u = 0;
    bool b = false;
    int rc;
    switch (key) {
    case HARVBK_TARGET_URL: {
        char *norm = NULL;
        if (!reset && (rc = check_url(value, &norm, e)) != 0)
            return rc;
        hb_free(c->url);
        c->url = norm;
        return 0;
    }
    case HARVBK_TARGET_ENDPOINT:
        if (!reset && (rc = check_endpoint(value, e)) != 0)
            return rc;
        return set_str(&c->endpoint, value, false, e);
    case HARVBK_TARGET_REGION:
        if (!reset) {
            size_t n = strlen(value);
            if (n > 64 || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789-_") != n)
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "region must be 1 to 64 letters, digits, '-' or '_'");
        }
        return set_str(&c->region, value, false, e);
    case HARVBK_TARGET_ACCESS_KEY_ID:
        if (!reset && !printable_token(value, 256))
            return hb_seterr(e, HARVBK_E_INVALID,
                             "access key id must be 1 to 256 printable characters without spaces");
        return set_str(&c->access_key_id, value, false, e);
    case HARVBK_TARGET_SECRET_ACCESS_KEY:
        if (!reset && !printable_token(value, 1024))
            return hb_seterr(e, HARVBK_E_INVALID,
                             "secret access key must be 1 to 1024 printable characters without "
                             "spaces");
        return set_str(&c->secret_access_key, value, true, e);
    case HARVBK_TARGET_CA_CERT_FILE:
        if (!reset && (has_ctl(value) || strlen(value) > 4096))
            return hb_seterr(e, HARVBK_E_INVALID, "CA certificate file name is not valid");
        return set_str(&c->ca_cert_file, value, false, e);
    case HARVBK_TARGET_VIRTUAL_HOSTED:
        if (!reset && (rc = parse_bool("virtual hosted", value, &b, e)) != 0)
            return rc;
        c->virtual_hosted = b;
        return 0;
    case HARVBK_TARGET_REFRESH_INTERVAL:
        if (!reset && (rc = parse_u32("refresh interval", value, &u, e)) != 0)
            return rc;
        c->refresh_interval = u;
        return 0;
    case HARVBK_TARGET_CODEC: {
        int codec = -1;
        if (!reset && (codec = hb_codec_parse(value)) < 0)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "unknown codec '%.32s' (expected zstd, lz4, gzip or none)", value);
        c->codec = codec;
        return 0;
    }
    case HARVBK_TARGET_CHUNK_SIZE:
        if (!reset) {
            if ((rc = parse_u32("chunk size", value, &u, e)) != 0)
                return rc;
            if (!hb_chunk_size_valid(u))
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "chunk size must be a power of two from %u to %u bytes, got %u",
                                 HB_MIN_CHUNK_SIZE, HB_MAX_CHUNK_SIZE, u);
        }
        c->chunk_size = u;
        return 0;
    case HARVBK_TARGET_TIMEOUT_MS:
        u = HB_DEFAULT_TIMEOUT_MS;
        if (!reset) {
            if ((rc = parse_u32("timeout", value, &u, e)) != 0)
                return rc;
            if (u == 0)
                return hb_seterr(e, HARVBK_E_INVALID, "timeout must be at least 1 ms");
        }
        c->timeout_ms = u;
        return 0;
    case HARVBK_TARGET_PARALLEL:
        if (!reset) {
            if ((rc = parse_u32("parallel", value, &u, e)) != 0)
                return rc;
            if (u > MAX_PARALLEL)
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "parallel must be from 0 (automatic) to %u", MAX_PARALLEL);
        }
        c->parallel = u;
        return 0;
    case HARVBK_TARGET_STORE_SECRET:
        if (!reset && (rc = parse_bool("store secret", value, &b, e)) != 0)
            return rc;
        c->store_secret = b;
        return 0;
    case HARVBK_TARGET_READ_ONLY:
        if (!reset && (rc = parse_bool("read only", value, &b, e)) != 0)
            return rc;
        c->read_only = b;
        return 0;
    case HARVBK_TARGET_ENCRYPT:
        if (!reset && (rc = parse_bool("encrypt", value, &b, e)) != 0)
            return rc;
        c->encrypt = b;
        return 0;
    case HARVBK_TARGET_KEY_FILE:
    case HARVBK_TARGET_PASSPHRASE_FILE: {
        const char *what = key == HARVBK_TARGET_KEY_FILE ? "key file" : "passphrase file";
        if (!reset && (value[0] != '/' || has_ctl(value) || strlen(value) > 4096))
            return hb_seterr(e, HARVBK_E_INVALID,
                             "the %s must be named by an absolute path without control "
                             "characters",
                             what);
        return set_str(key == HARVBK_TARGET_KEY_FILE ? &c->key_file : &c->passphrase_file,
                       value, false, e);
    }
    default:
        return hb_seterr(e, HARVBK_E_INVALID, "unknown target setting key %d", key);
    }
}

/* The current value of a setting as text into tmp (or a borrowed string). */
static int cfg_value(const hb_target_cfg *c, int key, char tmp[16], const char **out)
{
    *out = tmp;
    tmp[0] = '\0';
    switch (key) {
    case HARVBK_TARGET_URL:
        *out = c->url ? c->url : "";
        return 0;
    case HARVBK_TARGET_ENDPOINT:
        *out = c->endpoint ? c->endpoint : "";
        return 0;
    case HARVBK_TARGET_REGION:
        *out = c->region ? c->region : "";
        return 0;
    case HARVBK_TARGET_ACCESS_KEY_ID:
        *out = c->access_key_id ? c->access_key_id : "";
        return 0;
    case HARVBK_TARGET_SECRET_ACCESS_KEY:
        *out = ""; /* write-only */
        return 0;
    case HARVBK_TARGET_CA_CERT_FILE:
        *out = c->ca_cert_file ? c->ca_cert_file : "";
        return 0;
    case HARVBK_TARGET_VIRTUAL_HOSTED:
        *out = c->virtual_hosted ? "1" : "0";
        return 0;
    case HARVBK_TARGET_REFRESH_INTERVAL:
        snprintf(tmp, 16, "%u", c->refresh_interval);
        return 0;
    case HARVBK_TARGET_CODEC:
        *out = c->codec < 0 ? "" : hb_codec_name(c->codec);
        return 0;
    case HARVBK_TARGET_CHUNK_SIZE:
        if (c->chunk_size)
            snprintf(tmp, 16, "%u", c->chunk_size);
        return 0;
    case HARVBK_TARGET_TIMEOUT_MS:
        snprintf(tmp, 16, "%u", c->timeout_ms);
        return 0;
    case HARVBK_TARGET_PARALLEL:
        if (c->parallel)
            snprintf(tmp, 16, "%u", c->parallel);
        return 0;
    case HARVBK_TARGET_STORE_SECRET:
        *out = c->store_secret ? "1" : "0";
        return 0;
    case HARVBK_TARGET_READ_ONLY:
        *out = c->read_only ? "1" : "0";
        return 0;
    case HARVBK_TARGET_ENCRYPT:
        *out = hb_target_cfg_encrypted(c) ? "1" : "0";
        return 0;
    case HARVBK_TARGET_KEY_FILE:
        *out = c->key_file ? c->key_file : "";
        return 0;
    case HARVBK_TARGET_PASSPHRASE_FILE:
        *out = c->passphrase_file ? c->passphrase_file : "";
        return 0;
    default:
        return HARVBK_E_INVALID;
    }
}

/* ---- JSON ---- */

/* Print into a buffer we own so no unwiped copy of the secret is left behind
 * in memory cJSON reallocates and frees. */
static char *print_owned(cJSON *root, size_t hint)
{
    size_t size = hint;
    for (int tries = 0; tries < 8; tries++, size *= 2) {
        if (size > INT32_MAX)
            return NULL;
        char *buf = hb_malloc(size);
        if (!buf)
            return NULL;
        if (cJSON_PrintPreallocated(root, buf, (int)size, 0))
            return buf;
        OPENSSL_cleanse(buf, size);
        hb_free(buf);
    }
    return NULL;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

char *hb_target_cfg_to_json(const hb_target_cfg *c)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON *secret = NULL;
    bool ok = hb_json_add_u64(root, "version",
                              c->read_only ? CFG_JSON_VERSION_MAX : CFG_JSON_VERSION) != NULL;
#define ADD_STR(name, v)                                               \
    do {                                                               \
        if (ok && (v))                                                 \
            ok = cJSON_AddStringToObject(root, name, (v)) != NULL;     \
    } while (0)
    ADD_STR("url", c->url);
    ADD_STR("endpoint", c->endpoint);
    ADD_STR("region", c->region);
    ADD_STR("access_key_id", c->access_key_id);
    if (ok && c->store_secret && c->secret_access_key)
        ok = (secret = cJSON_AddStringToObject(root, "secret_access_key",
                                               c->secret_access_key)) != NULL;
    ADD_STR("ca_cert_file", c->ca_cert_file);
    ADD_STR("key_file", c->key_file); /* paths only: a key is never written */
    ADD_STR("passphrase_file", c->passphrase_file);
    if (c->codec >= 0)
        ADD_STR("codec", hb_codec_name(c->codec));
#undef ADD_STR
    ok = ok && cJSON_AddBoolToObject(root, "virtual_hosted", c->virtual_hosted);
    ok = ok && hb_json_add_u64(root, "refresh_interval", c->refresh_interval);
    if (c->chunk_size)
        ok = ok && hb_json_add_u64(root, "chunk_size", c->chunk_size);
    ok = ok && hb_json_add_u64(root, "timeout_ms", c->timeout_ms);
    if (c->parallel)
        ok = ok && hb_json_add_u64(root, "parallel", c->parallel);
    ok = ok && cJSON_AddBoolToObject(root, "store_secret", c->store_secret);
    if (c->read_only) /* absent = false: files of older versions read the same */
        ok = ok && cJSON_AddBoolToObject(root, "read_only", true);
    if (hb_target_cfg_encrypted(c)) /* absent = false */
        ok = ok && cJSON_AddBoolToObject(root, "encrypt", true);
    char *out = NULL;
    if (ok) {
        size_t hint = 512 + 6 * (slen(c->url) + slen(c->endpoint) + slen(c->region) +
                                 slen(c->access_key_id) + slen(c->ca_cert_file) +
                                 slen(c->key_file) + slen(c->passphrase_file) +
                                 (secret ? slen(c->secret_access_key) : 0));
        out = print_owned(root, hint);
    }
    if (secret && secret->valuestring)
        OPENSSL_cleanse(secret->valuestring, strlen(secret->valuestring));
    cJSON_Delete(root);
    return out;
}

static int json_str(hb_target_cfg *c, const cJSON *root, const char *field, int key, hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(root, field, false, &s, "target configuration", e);
    if (rc || !s)
        return rc;
    rc = hb_target_cfg_set(c, key, s, e);
    return rc ? hb_err_prefix(e, "target configuration: %s", field) : 0;
}

static int json_num(hb_target_cfg *c, const cJSON *root, const char *field, int key, hb_err *e)
{
    uint64_t v = 0;
    if (!cJSON_GetObjectItemCaseSensitive(root, field))
        return 0;
    int rc = hb_json_get_u64(root, field, false, &v, "target configuration", e);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return hb_seterr(e, HARVBK_E_CORRUPT, "target configuration: %s is out of range", field);
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%u", (uint32_t)v);
    rc = hb_target_cfg_set(c, key, tmp, e);
    return rc ? hb_err_prefix(e, "target configuration: %s", field) : 0;
}

/* c is overwritten (it must not own strings); on failure it is left empty. */
int hb_target_cfg_from_json(hb_target_cfg *c, const void *data, size_t len, hb_err *e)
{
    hb_target_cfg_init(c);
    cJSON *root = NULL;
    int rc = hb_json_parse(data, len, "target configuration", &root, e);
    if (rc)
        return rc;
    uint64_t version = 0;
    rc = hb_json_get_u64(root, "version", true, &version, "target configuration", e);
    if (rc == 0 && (version < CFG_JSON_VERSION || version > CFG_JSON_VERSION_MAX))
        rc = hb_seterr(e, version > CFG_JSON_VERSION_MAX ? HARVBK_E_FORMAT : HARVBK_E_CORRUPT,
                       "target configuration version %llu is not supported (this library "
                       "reads versions up to %d)",
                       (unsigned long long)version, CFG_JSON_VERSION_MAX);
    if (rc == 0)
        rc = json_str(c, root, "url", HARVBK_TARGET_URL, e);
    if (rc == 0)
        rc = json_str(c, root, "endpoint", HARVBK_TARGET_ENDPOINT, e);
    if (rc == 0)
        rc = json_str(c, root, "region", HARVBK_TARGET_REGION, e);
    if (rc == 0)
        rc = json_str(c, root, "access_key_id", HARVBK_TARGET_ACCESS_KEY_ID, e);
    if (rc == 0)
        rc = json_str(c, root, "secret_access_key", HARVBK_TARGET_SECRET_ACCESS_KEY, e);
    if (rc == 0)
        rc = json_str(c, root, "ca_cert_file", HARVBK_TARGET_CA_CERT_FILE, e);
    if (rc == 0)
        rc = json_str(c, root, "key_file", HARVBK_TARGET_KEY_FILE, e);
    if (rc == 0)
        rc = json_str(c, root, "passphrase_file", HARVBK_TARGET_PASSPHRASE_FILE, e);
    if (rc == 0)
        rc = json_str(c, root, "codec", HARVBK_TARGET_CODEC, e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "virtual_hosted", false, &c->virtual_hosted,
                              "target configuration", e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "store_secret", false, &c->store_secret,
                              "target configuration", e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "read_only", false, &c->read_only, "target configuration",
                              e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "encrypt", false, &c->encrypt, "target configuration", e);
    if (rc == 0)
        rc = json_num(c, root, "refresh_interval", HARVBK_TARGET_REFRESH_INTERVAL, e);
    if (rc == 0)
        rc = json_num(c, root, "chunk_size", HARVBK_TARGET_CHUNK_SIZE, e);
    if (rc == 0)
        rc = json_num(c, root, "timeout_ms", HARVBK_TARGET_TIMEOUT_MS, e);
    if (rc == 0)
        rc = json_num(c, root, "parallel", HARVBK_TARGET_PARALLEL, e);
    /* wipe the parsed copy of the secret before cJSON frees it */
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, "secret_access_key");
    if (cJSON_IsString(sec) && sec->valuestring)
        OPENSSL_cleanse(sec->valuestring, strlen(sec->valuestring));
    cJSON_Delete(root);
    if (rc) {
        /* a value our own writer never produces: the file is corrupt */
        if (e && rc == HARVBK_E_INVALID)
            e->code = HARVBK_E_CORRUPT;
        if (rc == HARVBK_E_INVALID)
            rc = HARVBK_E_CORRUPT;
        hb_target_cfg_clear(c);
    }
    return rc;
}

char *hb_target_cfg_display(const hb_target_cfg *c)
{
    if (!c || !c->url)
        return hb_strdup("(no target)");
    const char *sep = strstr(c->url, "://");
    if (!sep)
        return hb_strdup("(invalid target URL)");
    const char *rest = sep + 3;
    size_t alen = strcspn(rest, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (rest[i] == '@')
            at = rest + i;
    if (!at)
        return hb_strdup(c->url);
    return hb_asprintf("%.*s://%s", (int)(sep - c->url), c->url, at + 1);
}

/* ---- public API ---- */

int harvbk_target_config_new(harvbk_target_config **out)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_target_config_new: out is NULL");
    *out = hb_calloc(1, sizeof **out);
    if (!*out)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    hb_target_cfg_init(&(*out)->cfg);
    return HARVBK_OK;
}

void harvbk_target_config_free(harvbk_target_config *cfg)
{
    if (!cfg)
        return;
    hb_target_cfg_clear(&cfg->cfg);
    hb_free(cfg);
}

int harvbk_target_config_set(harvbk_target_config *cfg, harvbk_target_key key, const char *value)
{
    if (!cfg)
        return hb_fail(HARVBK_E_INVALID, "harvbk_target_config_set: cfg is NULL");
    /* the messages of hb_target_cfg_set never quote a secret value */
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_cfg_set(&cfg->cfg, (int)key, value, &e);
    return hb_fail_rc(rc, &e);
}

int harvbk_target_config_get(const harvbk_target_config *cfg, harvbk_target_key key, char *buf,
                             size_t size, size_t *out_len)
{
    if (!cfg || (!buf && size > 0))
        return hb_fail(HARVBK_E_INVALID, "harvbk_target_config_get: %s",
                       cfg ? "buf is NULL but size is not 0" : "cfg is NULL");
    char tmp[16];
    const char *v;
    if (cfg_value(&cfg->cfg, (int)key, tmp, &v) != 0)
        return hb_fail(HARVBK_E_INVALID, "unknown target setting key %d (or a secret, which "
                       "cannot be read back)", (int)key);
    size_t n = strlen(v);
    if (out_len)
        *out_len = n;
    if (size > 0) {
        size_t k = n < size - 1 ? n : size - 1;
        memcpy(buf, v, k);
        buf[k] = '\0';
    }
    return HARVBK_OK;
}

int harvbk_target_config_has_secret(const harvbk_target_config *cfg)
{
    return cfg && cfg->cfg.secret_access_key ? 1 : 0;
}

int harvbk_target_config_set_key(harvbk_target_config *cfg, const harvbk_key *key)
{
    if (!cfg)
        return hb_fail(HARVBK_E_INVALID, "harvbk_target_config_set_key: cfg is NULL");
    if (key && !hb_key_ok(key))
        return hb_fail(HARVBK_E_INVALID, "harvbk_target_config_set_key: not a valid key");
    hb_key *copy = NULL;
    if (hb_key_dup(&copy, key) != 0)
        return hb_fail(HARVBK_E_NOMEM, "cannot allocate memory for a key");
    hb_key_free(cfg->cfg.key);
    cfg->cfg.key = copy;
    return 0;
}

int harvbk_target_config_has_key(const harvbk_target_config *cfg)
{
    return cfg && cfg->cfg.key ? 1 : 0;
}

int hb_target_cfg_load_key(const hb_target_cfg *c, hb_key **out, hb_err *e)
{
    *out = NULL;
    if (c->key)
        return hb_key_dup(out, c->key) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (c->key_file)
        return hb_key_load_file(out, HB_KEY_RAW, c->key_file, e);
    if (c->passphrase_file)
        return hb_key_load_file(out, HB_KEY_PASSPHRASE, c->passphrase_file, e);
    return 0;
}

uint32_t hb_target_cfg_default_chunk_size(const hb_target_cfg *c)
{
    if (c && c->url && (strncmp(c->url, "s3://", 5) == 0 || strncmp(c->url, "nfs://", 6) == 0))
        return HB_DEFAULT_CHUNK_SIZE_REMOTE;
    return HB_DEFAULT_CHUNK_SIZE;
}
