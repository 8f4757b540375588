/*
 * store/manifest.c - entry manifests (docs/FORMAT.md "Manifests"): JSON
 * encoding and strict decoding.
 */
#include "../core/base64.h"
#include "../core/json.h"
#include "internal.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define WHAT "manifest"
#define TIME_S_MAX (INT64_MAX / 1000)
/* byte counts stay exact in every JSON parser (FORMAT.md section 1) */
#define BYTES_MAX (1ull << 53)

void hb_manifest_init(hb_manifest *m)
{
    memset(m, 0, sizeof *m);
    m->format_major = HB_FORMAT_MAJOR;
    m->format_minor = HB_FORMAT_MINOR;
    m->codec = HB_CODEC_ZSTD;
}

void hb_manifest_clear(hb_manifest *m)
{
    if (!m)
        return;
    hb_free(m->kind);
    hb_free(m->ns);
    hb_free(m->name);
    hb_free(m->vm_ns);
    hb_free(m->vm_name);
    hb_free(m->writer);
    hb_free(m->schedule);
    hb_buf_free(&m->metadata);
    for (size_t i = 0; i < m->nimages; i++)
        hb_free(m->images[i]);
    hb_free(m->images);
    for (size_t i = 0; i < m->nvols; i++)
        hb_free(m->vols[i].name);
    hb_free(m->vols);
    hb_manifest_init(m);
}

/* Image references as harvbk_vm_add_image accepts them. */
static bool image_ref_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HARVBK_VM_IMAGE_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static uint64_t chunk_count(uint64_t size, uint32_t chunk_size)
{
    return size / chunk_size + (size % chunk_size != 0);
}

static bool is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int cmp_vol_name(const void *a, const void *b)
{
    const hb_manifest_volume *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* A volume name that appears twice (NULL: none; *nomem on allocation
 * failure). Sorted, not pairwise: a hostile manifest may list hundreds of
 * thousands of volumes, and comparing every pair of them took minutes. */
static const char *duplicate_volume(const hb_manifest *m, bool *nomem)
{
    *nomem = false;
    if (m->nvols < 2)
        return NULL;
    const hb_manifest_volume **v = hb_calloc(m->nvols, sizeof *v);
    if (!v) {
        *nomem = true;
        return NULL;
    }
    for (size_t i = 0; i < m->nvols; i++)
        v[i] = &m->vols[i];
    qsort(v, m->nvols, sizeof *v, cmp_vol_name);
    const char *dup = NULL;
    for (size_t i = 1; i < m->nvols && !dup; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            dup = v[i]->name;
    hb_free(v);
    return dup;
}

/* ---- encode ---- */

static int check_for_encode(const hb_manifest *m, hb_err *e)
{
    const struct {
        const char *what, *v;
    } names[] = { { "manifest kind", m->kind },         { "namespace", m->ns },
                  { "name", m->name },                  { "VM namespace", m->vm_ns },
                  { "VM name", m->vm_name } };
    for (size_t i = 0; i < HB_ARRAY_LEN(names); i++) {
        int rc = hb_check_name(names[i].what, names[i].v, e);
        if (rc)
            return rc;
    }
    if (!hb_codec_name(m->codec) || m->codec < HB_CODEC_NONE || m->codec > HB_CODEC_MAX)
        return hb_seterr(e, HARVBK_E_INVALID, "manifest has unknown codec %d", m->codec);
    if (!hb_chunk_size_valid(m->chunk_size))
        return hb_seterr(e, HARVBK_E_INVALID, "manifest has invalid chunk size %u",
                         m->chunk_size);
    if (m->uploaded_bytes > BYTES_MAX)
        return hb_seterr(e, HARVBK_E_INVALID, "manifest uploaded_bytes %llu is more than 2^53",
                         (unsigned long long)m->uploaded_bytes);
    uint64_t sum = 0;
    for (size_t i = 0; i < m->nvols; i++) {
        const hb_manifest_volume *v = &m->vols[i];
        int rc = hb_check_name("volume name", v->name, e);
        if (rc)
            return rc;
        if (v->size > BYTES_MAX || (sum += v->size) > BYTES_MAX)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume \"%s\": sizes beyond 2^53 bytes cannot be recorded",
                             v->name);
        if (v->chunks != chunk_count(v->size, m->chunk_size) || v->data_chunks > v->chunks)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume \"%s\": chunk counts do not match its size", v->name);
        if (!is_lower_hex(v->index_sha256, HB_DIGEST_HEX_LEN))
            return hb_seterr(e, HARVBK_E_INVALID, "volume \"%s\" has no index checksum",
                             v->name);
    }
    bool nomem = false;
    const char *dup = duplicate_volume(m, &nomem);
    if (nomem)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot encode the manifest");
    if (dup)
        return hb_seterr(e, HARVBK_E_INVALID, "volume \"%s\" appears twice", dup);
    if (m->logical_bytes != sum)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "manifest logical_bytes %llu is not the sum of its volume sizes (%llu)",
                         (unsigned long long)m->logical_bytes, (unsigned long long)sum);
    for (size_t i = 0; i < m->nimages; i++)
        if (!m->images[i])
            return hb_seterr(e, HARVBK_E_INVALID, "manifest image %zu is NULL", i);
    return 0;
}

int hb_manifest_encode(const hb_manifest *m, hb_buf *out, hb_err *e)
{
    int rc = check_for_encode(m, e);
    if (rc)
        return rc;
    char *meta = m->metadata.len ? hb_base64_encode(m->metadata.data, m->metadata.len)
                                 : hb_strdup("");
    cJSON *root = cJSON_CreateObject();
    bool ok = meta && root;
    if (ok) {
        ok &= cJSON_AddNumberToObject(root, "format_major", m->format_major) != NULL;
        ok &= cJSON_AddNumberToObject(root, "format_minor", m->format_minor) != NULL;
        ok &= cJSON_AddStringToObject(root, "kind", m->kind) != NULL;
        ok &= cJSON_AddStringToObject(root, "namespace", m->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", m->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_namespace", m->vm_ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_name", m->vm_name) != NULL;
        ok &= cJSON_AddStringToObject(root, "writer", m->writer ? m->writer : "") != NULL;
        if (m->schedule)
            ok &= cJSON_AddStringToObject(root, "schedule", m->schedule) != NULL;
        ok &= cJSON_AddNumberToObject(root, "created", (double)m->created) != NULL;
        ok &= cJSON_AddNumberToObject(root, "completed", (double)m->completed) != NULL;
        ok &= cJSON_AddNumberToObject(root, "completed_ms",
                                      (double)(m->completed_ms ? m->completed_ms
                                                               : m->completed * 1000)) != NULL;
        ok &= hb_json_add_u64(root, "chunk_size", m->chunk_size) != NULL;
        ok &= cJSON_AddStringToObject(root, "codec", hb_codec_name(m->codec)) != NULL;
        ok &= cJSON_AddBoolToObject(root, "crash_consistent", m->crash_consistent) != NULL;
        if (m->thaw_failed) /* optional (1.1): absent means false */
            ok &= cJSON_AddBoolToObject(root, "thaw_failed", true) != NULL;
        ok &= hb_json_add_freeze(root, &m->freeze); /* optional (1.1), only when set */
        ok &= hb_json_add_u64(root, "logical_bytes", m->logical_bytes) != NULL;
        ok &= hb_json_add_u64(root, "uploaded_bytes", m->uploaded_bytes) != NULL;
        ok &= cJSON_AddStringToObject(root, "metadata", meta) != NULL;
    }
    cJSON *images = ok ? cJSON_AddArrayToObject(root, "images") : NULL;
    ok &= images != NULL;
    for (size_t i = 0; ok && i < m->nimages; i++) {
        cJSON *s = cJSON_CreateString(m->images[i]);
        ok &= s && cJSON_AddItemToArray(images, s);
    }
    cJSON *vols = ok ? cJSON_AddArrayToObject(root, "volumes") : NULL;
    ok &= vols != NULL;
    for (size_t i = 0; ok && i < m->nvols; i++) {
        const hb_manifest_volume *v = &m->vols[i];
        cJSON *o = cJSON_CreateObject();
        ok &= o && cJSON_AddItemToArray(vols, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        ok &= cJSON_AddStringToObject(o, "name", v->name) != NULL;
        ok &= hb_json_add_u64(o, "size", v->size) != NULL;
        ok &= hb_json_add_u64(o, "chunks", v->chunks) != NULL;
        ok &= hb_json_add_u64(o, "data_chunks", v->data_chunks) != NULL;
        ok &= cJSON_AddStringToObject(o, "index_sha256", v->index_sha256) != NULL;
        ok &= hb_json_add_capture(o, v->capture); /* optional (1.1), only when set */
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    hb_free(meta);
    if (!text)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot encode the manifest");
    size_t tlen = strlen(text);
    if (tlen > HB_MANIFEST_MAX) {
        hb_free(text);
        return hb_seterr(e, HARVBK_E_INVALID,
                         "the manifest would be %zu bytes, more than the %u a reader accepts "
                         "(VM metadata of %zu bytes is too large)",
                         tlen, HB_MANIFEST_MAX, m->metadata.len);
    }
    hb_buf_reset(out);
    rc = hb_buf_append_str(out, text);
    hb_free(text);
    if (rc)
        return hb_seterr(e, rc, "cannot encode the manifest");
    return 0;
}

/* ---- decode ---- */

static int get_name(const cJSON *o, const char *field, char **out, hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(o, field, true, &s, WHAT, e);
    if (rc)
        return rc;
    if (!s || !hb_name_valid(s))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest field \"%s\" is not a valid name: \"%s\"",
                         field, s ? s : "");
    if (!(*out = hb_strdup(s)))
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory reading the manifest");
    return 0;
}

static int get_volume(const cJSON *o, uint32_t chunk_size, hb_manifest_volume *v, hb_err *e)
{
    if (!cJSON_IsObject(o))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest volume entry is not an object");
    int rc = get_name(o, "name", &v->name, e);
    if (!rc)
        rc = hb_json_get_u64(o, "size", true, &v->size, WHAT, e);
    if (!rc && v->size > BYTES_MAX)
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "manifest volume \"%s\": size %llu is more than 2^53 bytes", v->name,
                       (unsigned long long)v->size);
    if (!rc)
        rc = hb_json_get_u64(o, "chunks", true, &v->chunks, WHAT, e);
    if (!rc)
        rc = hb_json_get_u64(o, "data_chunks", true, &v->data_chunks, WHAT, e);
    const char *hex = NULL;
    if (!rc)
        rc = hb_json_get_str(o, "index_sha256", true, &hex, WHAT, e);
    if (rc)
        return rc;
    if (!hex || !is_lower_hex(hex, HB_DIGEST_HEX_LEN))
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "manifest volume \"%s\": index_sha256 is not 64 hex digits", v->name);
    memcpy(v->index_sha256, hex, HB_DIGEST_HEX_LEN + 1);
    if ((rc = hb_json_get_capture(o, "capture", v->capture, WHAT, e)))
        return rc;
    uint64_t want = chunk_count(v->size, chunk_size);
    if (v->chunks != want)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "manifest volume \"%s\": %llu chunks, but size %llu needs %llu",
                         v->name, (unsigned long long)v->chunks, (unsigned long long)v->size,
                         (unsigned long long)want);
    if (v->data_chunks > v->chunks)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest volume \"%s\": data_chunks exceeds chunks",
                         v->name);
    return 0;
}

static int from_json(const cJSON *root, hb_manifest *m, hb_err *e)
{
    if (!cJSON_IsObject(root))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest is not a JSON object");
    uint64_t major = 0, minor = 0, u = 0;
    int rc = hb_json_get_u64(root, "format_major", true, &major, WHAT, e);
    if (rc)
        return rc;
    if (major > HB_FORMAT_MAJOR)
        return hb_seterr(e, HARVBK_E_FORMAT,
                         "store format %llu.x is newer than this library supports (%d.x)",
                         (unsigned long long)major, HB_FORMAT_MAJOR);
    if (major < 1)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest has invalid format_major 0");
    if ((rc = hb_json_get_u64(root, "format_minor", true, &minor, WHAT, e)))
        return rc;
    if (minor > 0xffff)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest has invalid format_minor");
    m->format_major = (int)major;
    m->format_minor = (int)minor;

    if ((rc = get_name(root, "kind", &m->kind, e)) || (rc = get_name(root, "namespace", &m->ns, e)) ||
        (rc = get_name(root, "name", &m->name, e)) ||
        (rc = get_name(root, "vm_namespace", &m->vm_ns, e)) ||
        (rc = get_name(root, "vm_name", &m->vm_name, e)))
        return rc;
    const char *s = NULL;
    if ((rc = hb_json_get_str(root, "writer", true, &s, WHAT, e)))
        return rc;
    if (!(m->writer = hb_strdup(s ? s : "")))
        return HARVBK_E_NOMEM;
    s = NULL; /* optional: the schedule that made it */
    if ((rc = hb_json_get_str(root, "schedule", false, &s, WHAT, e)))
        return rc;
    if (s && !hb_name_valid(s))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest has an invalid schedule name");
    if (s && !(m->schedule = hb_strdup(s)))
        return HARVBK_E_NOMEM;
    if ((rc = hb_json_get_i64(root, "created", true, &m->created, WHAT, e)) ||
        (rc = hb_json_get_i64(root, "completed", true, &m->completed, WHAT, e)) ||
        (rc = hb_json_get_u64(root, "chunk_size", true, &u, WHAT, e)))
        return rc;
    /* times in seconds whose milliseconds fit in 64 bits (readers and ops
     * compute with both) */
    if (m->created < -TIME_S_MAX || m->created > TIME_S_MAX || m->completed < -TIME_S_MAX ||
        m->completed > TIME_S_MAX)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest has an out-of-range created or "
                                              "completed time");
    m->completed_ms = m->completed * 1000; /* optional key; older writers lack it */
    if ((rc = hb_json_get_i64(root, "completed_ms", false, &m->completed_ms, WHAT, e)))
        return rc;
    if (!hb_chunk_size_valid(u))
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "manifest has invalid chunk_size %llu (not a power of two between %u "
                         "and %u)",
                         (unsigned long long)u, HB_MIN_CHUNK_SIZE, HB_MAX_CHUNK_SIZE);
    m->chunk_size = (uint32_t)u;
    if ((rc = hb_json_get_str(root, "codec", true, &s, WHAT, e)))
        return rc;
    if ((m->codec = hb_codec_parse(s)) < 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest has unknown codec \"%s\"", s ? s : "");
    if ((rc = hb_json_get_bool(root, "thaw_failed", false, &m->thaw_failed, WHAT, e)) ||
        (rc = hb_json_get_freeze(root, &m->freeze, WHAT, e)))
        return rc;
    if ((rc = hb_json_get_bool(root, "crash_consistent", true, &m->crash_consistent, WHAT, e)) ||
        (rc = hb_json_get_u64(root, "logical_bytes", true, &m->logical_bytes, WHAT, e)) ||
        (rc = hb_json_get_u64(root, "uploaded_bytes", true, &m->uploaded_bytes, WHAT, e)) ||
        (rc = hb_json_get_str(root, "metadata", true, &s, WHAT, e)))
        return rc;
    if (m->uploaded_bytes > BYTES_MAX)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest uploaded_bytes %llu is more than 2^53",
                         (unsigned long long)m->uploaded_bytes);
    if ((rc = hb_base64_decode(s ? s : "", &m->metadata, e)))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest metadata is not valid base64");

    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    if (!cJSON_IsArray(images))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest field \"images\" is missing or not an array");
    size_t n = (size_t)cJSON_GetArraySize(images);
    if (n && !(m->images = hb_calloc(n, sizeof *m->images)))
        return HARVBK_E_NOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, images)
    {
        if (!cJSON_IsString(it) || !it->valuestring)
            return hb_seterr(e, HARVBK_E_CORRUPT, "manifest image entry is not a string");
        if (!image_ref_valid(it->valuestring))
            return hb_seterr(e, HARVBK_E_CORRUPT,
                             "manifest image entry is empty, too long or has control characters");
        if (!(m->images[m->nimages] = hb_strdup(it->valuestring)))
            return HARVBK_E_NOMEM;
        m->nimages++;
    }

    const cJSON *vols = cJSON_GetObjectItemCaseSensitive(root, "volumes");
    if (!cJSON_IsArray(vols))
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest field \"volumes\" is missing or not an array");
    n = (size_t)cJSON_GetArraySize(vols);
    if (n && !(m->vols = hb_calloc(n, sizeof *m->vols)))
        return HARVBK_E_NOMEM;
    cJSON_ArrayForEach(it, vols)
    {
        hb_manifest_volume *v = &m->vols[m->nvols];
        rc = get_volume(it, m->chunk_size, v, e);
        m->nvols++; /* owns v->name even on failure, so clear() frees it */
        if (rc)
            return rc;
    }
    bool nomem = false;
    const char *dup = duplicate_volume(m, &nomem);
    if (nomem)
        return HARVBK_E_NOMEM;
    if (dup)
        return hb_seterr(e, HARVBK_E_CORRUPT, "manifest lists volume \"%s\" twice", dup);
    /* each size is at most 2^53, so the sum cannot wrap before this check */
    uint64_t sum = 0;
    for (size_t i = 0; i < m->nvols; i++) {
        sum += m->vols[i].size;
        if (sum > BYTES_MAX)
            return hb_seterr(e, HARVBK_E_CORRUPT,
                             "manifest volume sizes add up to more than 2^53 bytes "
                             "(logical_bytes %llu)",
                             (unsigned long long)m->logical_bytes);
    }
    if (m->logical_bytes != sum)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "manifest logical_bytes %llu is not the sum of its volume sizes (%llu)",
                         (unsigned long long)m->logical_bytes, (unsigned long long)sum);
    return 0;
}

int hb_manifest_decode(const void *data, size_t len, hb_manifest *m, hb_err *e)
{
    hb_manifest_init(m);
    cJSON *root = NULL;
    int rc = hb_json_parse(data, len, WHAT, &root, e);
    if (rc)
        return rc;
    rc = from_json(root, m, e);
    cJSON_Delete(root);
    if (rc == HARVBK_E_NOMEM)
        hb_seterr(e, rc, "out of memory reading the manifest");
    if (rc)
        hb_manifest_clear(m);
    return rc;
}
