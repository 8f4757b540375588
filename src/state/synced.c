/*
 * state/synced.c - the synced backup catalog file (state/synced.h,
 * docs/CATALOG.md): JSON encode/decode, atomic save, the lock, and the sorted
 * in-memory form that the sync and the readers edit.
 */
#include "synced.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void hb_synced_init(hb_synced *c)
{
    memset(c, 0, sizeof *c);
}

void hb_synced_entry_clear(hb_synced_entry *x)
{
    if (!x)
        return;
    hb_free(x->ns);
    hb_free(x->name);
    hb_free(x->vm_ns);
    hb_free(x->vm_name);
    hb_free(x->writer);
    hb_free(x->schedule);
    hb_free(x->error);
    for (size_t i = 0; i < x->nvols; i++)
        hb_free(x->vols[i].name);
    hb_free(x->vols);
    memset(x, 0, sizeof *x);
}

static void tomb_clear(hb_synced_tomb *t)
{
    hb_free(t->ns);
    hb_free(t->name);
    memset(t, 0, sizeof *t);
}

void hb_synced_reset(hb_synced *c)
{
    for (size_t i = 0; i < c->n; i++)
        hb_synced_entry_clear(&c->v[i]);
    for (size_t i = 0; i < c->nt; i++)
        tomb_clear(&c->t[i]);
    c->n = c->nt = 0;
}

void hb_synced_clear(hb_synced *c)
{
    if (!c)
        return;
    hb_synced_reset(c);
    hb_free(c->v);
    hb_free(c->t);
    hb_free(c->target);
    hb_free(c->store_id);
    hb_synced_init(c);
}

int hb_synced_entry_copy(hb_synced_entry *dst, const hb_synced_entry *src)
{
    *dst = *src;
    dst->ns = hb_strdup(src->ns);
    dst->name = hb_strdup(src->name);
    dst->vm_ns = hb_strdup(src->vm_ns ? src->vm_ns : "");
    dst->vm_name = hb_strdup(src->vm_name ? src->vm_name : "");
    dst->writer = hb_strdup(src->writer ? src->writer : "");
    dst->schedule = src->schedule ? hb_strdup(src->schedule) : NULL;
    dst->error = hb_strdup(src->error ? src->error : "");
    dst->vols = src->nvols ? hb_calloc(src->nvols, sizeof *dst->vols) : NULL;
    dst->nvols = 0;
    bool ok = dst->ns && dst->name && dst->vm_ns && dst->vm_name && dst->writer && dst->error &&
              (!src->nvols || dst->vols) && (!src->schedule || dst->schedule);
    for (size_t i = 0; ok && i < src->nvols; i++, dst->nvols++) {
        dst->vols[i].size = src->vols[i].size;
        memcpy(dst->vols[i].capture, src->vols[i].capture, sizeof dst->vols[i].capture);
        ok = (dst->vols[i].name = hb_strdup(src->vols[i].name)) != NULL;
    }
    if (!ok) {
        hb_synced_entry_clear(dst);
        return HARVBK_E_NOMEM;
    }
    return 0;
}

/* ---- sorted lookups ---- */

static int key_cmp(const char *ns1, const char *n1, const char *ns2, const char *n2)
{
    int c = strcmp(ns1, ns2);
    return c ? c : strcmp(n1, n2);
}

/* Index of ns/name in a sorted array of structs that start with
 * `char *ns, *name` (entries, tombs), or where it would go (*found says which). */
static size_t key_pos(const void *base, size_t n, size_t stride, const char *ns,
                      const char *name, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        char *const *k = (char *const *)((const char *)base + mid * stride);
        int r = key_cmp(k[0], k[1], ns, name);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

_Static_assert(offsetof(hb_synced_entry, ns) == 0 && offsetof(hb_synced_entry, name) ==
                   sizeof(char *),
               "entries start with ns, name");
_Static_assert(offsetof(hb_synced_tomb, ns) == 0 && offsetof(hb_synced_tomb, name) ==
                   sizeof(char *),
               "tombs start with ns, name");

static size_t entry_pos(const hb_synced *c, const char *ns, const char *name, bool *found)
{
    return key_pos(c->v, c->n, sizeof *c->v, ns, name, found);
}

static size_t tomb_pos(const hb_synced *c, const char *ns, const char *name, bool *found)
{
    return key_pos(c->t, c->nt, sizeof *c->t, ns, name, found);
}

hb_synced_entry *hb_synced_find(const hb_synced *c, const char *ns, const char *name)
{
    bool found;
    size_t i = entry_pos(c, ns, name, &found);
    return found ? &c->v[i] : NULL;
}

int hb_synced_put(hb_synced *c, hb_synced_entry *x)
{
    bool found;
    size_t i = entry_pos(c, x->ns, x->name, &found);
    if (found) {
        hb_synced_entry_clear(&c->v[i]);
        c->v[i] = *x;
        memset(x, 0, sizeof *x);
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        hb_synced_entry *v = hb_realloc(c->v, cap * sizeof *v);
        if (!v)
            return HARVBK_E_NOMEM;
        c->v = v;
        c->cap = cap;
    }
    memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof *c->v);
    c->v[i] = *x;
    c->n++;
    memset(x, 0, sizeof *x);
    return 0;
}

bool hb_synced_remove(hb_synced *c, const char *ns, const char *name)
{
    bool found;
    size_t i = entry_pos(c, ns, name, &found);
    if (!found)
        return false;
    hb_synced_entry_clear(&c->v[i]);
    memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof *c->v);
    c->n--;
    return true;
}

hb_synced_tomb *hb_synced_tomb_find(const hb_synced *c, const char *ns, const char *name)
{
    bool found;
    size_t i = tomb_pos(c, ns, name, &found);
    return found ? &c->t[i] : NULL;
}

int hb_synced_tomb_put(hb_synced *c, const char *ns, const char *name, hb_synced_fp fp,
                       int64_t now_ms)
{
    bool found;
    size_t i = tomb_pos(c, ns, name, &found);
    if (found) {
        c->t[i].fp = fp;
        c->t[i].forgotten_ms = now_ms;
        return 0;
    }
    if (c->nt == c->capt) {
        size_t cap = c->capt ? c->capt * 2 : 16;
        hb_synced_tomb *t = hb_realloc(c->t, cap * sizeof *t);
        if (!t)
            return HARVBK_E_NOMEM;
        c->t = t;
        c->capt = cap;
    }
    hb_synced_tomb nt = { hb_strdup(ns), hb_strdup(name), fp, now_ms };
    if (!nt.ns || !nt.name) {
        tomb_clear(&nt);
        return HARVBK_E_NOMEM;
    }
    memmove(&c->t[i + 1], &c->t[i], (c->nt - i) * sizeof *c->t);
    c->t[i] = nt;
    c->nt++;
    return 0;
}

bool hb_synced_tomb_remove(hb_synced *c, const char *ns, const char *name)
{
    bool found;
    size_t i = tomb_pos(c, ns, name, &found);
    if (!found)
        return false;
    tomb_clear(&c->t[i]);
    memmove(&c->t[i], &c->t[i + 1], (c->nt - i - 1) * sizeof *c->t);
    c->nt--;
    return true;
}

/* ---- paths ---- */

static char *cat_path(const char *dir, const char *leaf)
{
    return hb_asprintf("%s/%s/%s", dir, HB_SYNCED_DIR, leaf);
}

/* ---- decode ---- */

static int bad(hb_err *e, const char *path, const char *what)
{
    return hb_seterr(e, HARVBK_E_CORRUPT, "catalog %s: %s", path, what);
}

static int get_fp(const cJSON *o, hb_synced_fp *fp, const char *path, hb_err *e)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "manifest");
    if (!cJSON_IsObject(m))
        return bad(e, path, "an entry has no manifest fingerprint");
    int rc = hb_json_get_u64(m, "size", true, &fp->size, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_i64(m, "mtime", true, &fp->mtime, "catalog", e);
    return rc;
}

static int str_field(const cJSON *o, const char *f, bool name, char **out, const char *path,
                     hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(o, f, name, &s, "catalog", e);
    if (rc)
        return rc;
    if (name && !hb_name_valid(s))
        return bad(e, path, "an entry has an invalid name");
    if (!(*out = hb_strdup(s ? s : "")))
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    return 0;
}

static int decode_entry(const cJSON *o, hb_synced_entry *x, const char *path, hb_err *e)
{
    memset(x, 0, sizeof *x);
    if (!cJSON_IsObject(o))
        return bad(e, path, "an entry is not an object");
    int rc = str_field(o, "namespace", true, &x->ns, path, e);
    if (rc == 0)
        rc = str_field(o, "name", true, &x->name, path, e);
    if (rc == 0)
        rc = str_field(o, "vm_namespace", false, &x->vm_ns, path, e);
    if (rc == 0)
        rc = str_field(o, "vm_name", false, &x->vm_name, path, e);
    if (rc == 0)
        rc = str_field(o, "writer", false, &x->writer, path, e);
    const cJSON *sj = rc == 0 ? cJSON_GetObjectItemCaseSensitive(o, "schedule") : NULL;
    if (sj && (!cJSON_IsString(sj) || !hb_name_valid(sj->valuestring)))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid schedule name", path);
    else if (sj && !(x->schedule = hb_strdup(sj->valuestring)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0)
        rc = str_field(o, "error", false, &x->error, path, e);
    if (rc == 0)
        rc = hb_json_get_i64(o, "created", true, &x->created, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_i64(o, "completed_ms", false, &x->completed_ms, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_u64(o, "logical_bytes", true, &x->logical, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_u64(o, "uploaded_bytes", false, &x->uploaded, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_bool(o, "crash_consistent", false, &x->crash_consistent, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_bool(o, "thaw_failed", false, &x->thaw_failed, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_freeze(o, &x->freeze, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_bool(o, "unreadable", false, &x->unreadable, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_bool(o, "index_missing", false, &x->index_missing, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_bool(o, "delete_pending", false, &x->delete_pending, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_i64(o, "added_ms", false, &x->added_ms, "catalog", e);
    if (rc == 0)
        rc = hb_json_get_i64(o, "gone_ms", false, &x->gone_ms, "catalog", e);
    if (rc == 0)
        rc = get_fp(o, &x->fp, path, e);
    const cJSON *vols = cJSON_GetObjectItemCaseSensitive(o, "volumes");
    if (rc == 0 && !cJSON_IsArray(vols))
        rc = bad(e, path, "an entry has no volume list");
    if (rc == 0) {
        int nv = cJSON_GetArraySize(vols);
        if (nv > 0 && !(x->vols = hb_calloc((size_t)nv, sizeof *x->vols)))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        const cJSON *v;
        cJSON_ArrayForEach(v, vols)
        {
            if (rc)
                break;
            hb_synced_vol *sv = &x->vols[x->nvols];
            rc = str_field(v, "name", true, &sv->name, path, e);
            if (rc == 0)
                x->nvols++;
            if (rc == 0)
                rc = hb_json_get_u64(v, "size", true, &sv->size, "catalog", e);
            if (rc == 0)
                rc = hb_json_get_capture(v, "capture", sv->capture, "catalog", e);
        }
    }
    if (rc)
        hb_synced_entry_clear(x);
    return rc;
}

static int decode(const void *data, size_t len, hb_synced *c, const char *path, hb_err *e)
{
    cJSON *root = NULL;
    int rc = hb_json_parse(data, len, "catalog", &root, e);
    if (rc)
        return rc == HARVBK_E_NOMEM ? rc : bad(e, path, "not a JSON document");
    uint64_t format = 0;
    rc = hb_json_get_u64(root, "format", true, &format, "catalog", e);
    if (rc == 0 && format > HB_SYNCED_FORMAT)
        rc = hb_seterr(e, HARVBK_E_FORMAT,
                       "catalog %s: format %llu is newer than this library reads (%d)", path,
                       (unsigned long long)format, HB_SYNCED_FORMAT);
    else if (rc == 0 && format < 1)
        rc = bad(e, path, "format 0");
    if (rc == 0)
        rc = str_field(root, "target", false, &c->target, path, e);
    if (rc == 0)
        rc = str_field(root, "store_id", false, &c->store_id, path, e);
    if (rc == 0)
        rc = hb_json_get_i64(root, "synced_at_ms", true, &c->synced_at_ms, "catalog", e);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "backups");
    if (rc == 0 && !cJSON_IsArray(arr))
        rc = bad(e, path, "no backup list");
    const cJSON *o;
    if (rc == 0) {
        cJSON_ArrayForEach(o, arr)
        {
            hb_synced_entry x;
            if ((rc = decode_entry(o, &x, path, e)))
                break;
            if (hb_synced_find(c, x.ns, x.name)) {
                hb_synced_entry_clear(&x);
                rc = bad(e, path, "a backup is listed twice");
                break;
            }
            if ((rc = hb_synced_put(c, &x))) {
                hb_synced_entry_clear(&x);
                rc = hb_seterr(e, rc, NULL);
                break;
            }
        }
    }
    const cJSON *tombs = cJSON_GetObjectItemCaseSensitive(root, "forgotten");
    if (rc == 0 && tombs && !cJSON_IsArray(tombs))
        rc = bad(e, path, "the forgotten list is not a list");
    if (rc == 0 && tombs) {
        cJSON_ArrayForEach(o, tombs)
        {
            char *ns = NULL, *name = NULL;
            hb_synced_fp fp = { 0, 0 };
            int64_t when = 0;
            if (!cJSON_IsObject(o))
                rc = bad(e, path, "a forgotten entry is not an object");
            if (rc == 0)
                rc = str_field(o, "namespace", true, &ns, path, e);
            if (rc == 0)
                rc = str_field(o, "name", true, &name, path, e);
            if (rc == 0)
                rc = get_fp(o, &fp, path, e);
            if (rc == 0)
                rc = hb_json_get_i64(o, "forgotten_ms", false, &when, "catalog", e);
            if (rc == 0 && hb_synced_tomb_put(c, ns, name, fp, when) != 0)
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            hb_free(ns);
            hb_free(name);
            if (rc)
                break;
        }
    }
    cJSON_Delete(root);
    if (rc && rc != HARVBK_E_NOMEM && rc != HARVBK_E_FORMAT && e && e->code == rc &&
        strncmp(e->msg, "catalog ", 8) != 0)
        hb_err_prefix(e, "catalog %s", path);
    if (rc && e && e->code != HARVBK_E_NOMEM && e->code != HARVBK_E_FORMAT)
        e->code = rc = HARVBK_E_CORRUPT;
    return rc;
}

int hb_synced_decode(const void *data, size_t len, const char *path, hb_synced *c, hb_err *e)
{
    hb_synced_init(c);
    int rc = decode(data, len, c, path ? path : HB_SYNCED_FILE, e);
    if (rc)
        hb_synced_clear(c);
    return rc;
}

int hb_synced_load(const char *dir, hb_synced *c, hb_err *e)
{
    hb_synced_init(c);
    char *path = cat_path(dir, HB_SYNCED_FILE);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, HB_SYNCED_MAX, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        rc = decode(b.data, b.len, c, path, e);
    } else if (rc == HARVBK_E_CORRUPT) {
        hb_err_prefix(e, "catalog %s", path);
    }
    hb_buf_free(&b);
    hb_free(path);
    if (rc)
        hb_synced_clear(c);
    return rc;
}

/* ---- encode ---- */

static cJSON *fp_json(hb_synced_fp fp)
{
    cJSON *m = cJSON_CreateObject();
    if (m && (!hb_json_add_u64(m, "size", fp.size) ||
              !cJSON_AddNumberToObject(m, "mtime", (double)fp.mtime))) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

static cJSON *entry_json(const hb_synced_entry *x)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *vols = NULL, *fp = fp_json(x->fp);
    bool ok = o && fp;
    ok = ok && cJSON_AddStringToObject(o, "namespace", x->ns);
    ok = ok && cJSON_AddStringToObject(o, "name", x->name);
    ok = ok && cJSON_AddStringToObject(o, "vm_namespace", x->vm_ns ? x->vm_ns : "");
    ok = ok && cJSON_AddStringToObject(o, "vm_name", x->vm_name ? x->vm_name : "");
    ok = ok && cJSON_AddStringToObject(o, "writer", x->writer ? x->writer : "");
    if (x->schedule)
        ok = ok && cJSON_AddStringToObject(o, "schedule", x->schedule);
    ok = ok && cJSON_AddNumberToObject(o, "created", (double)x->created);
    ok = ok && cJSON_AddNumberToObject(o, "completed_ms", (double)x->completed_ms);
    ok = ok && hb_json_add_u64(o, "logical_bytes", x->logical);
    ok = ok && hb_json_add_u64(o, "uploaded_bytes", x->uploaded);
    ok = ok && cJSON_AddBoolToObject(o, "crash_consistent", x->crash_consistent);
    if (x->thaw_failed)
        ok = ok && cJSON_AddBoolToObject(o, "thaw_failed", true);
    ok = ok && hb_json_add_freeze(o, &x->freeze);
    ok = ok && (vols = cJSON_AddArrayToObject(o, "volumes"));
    for (size_t i = 0; ok && i < x->nvols; i++) {
        cJSON *v = cJSON_CreateObject();
        ok = v && cJSON_AddItemToArray(vols, v) &&
             cJSON_AddStringToObject(v, "name", x->vols[i].name) &&
             hb_json_add_u64(v, "size", x->vols[i].size) &&
             hb_json_add_capture(v, x->vols[i].capture);
    }
    ok = ok && cJSON_AddItemToObject(o, "manifest", fp);
    if (ok)
        fp = NULL;
    ok = ok && cJSON_AddNumberToObject(o, "added_ms", (double)x->added_ms);
    if (ok && x->error && *x->error)
        ok = cJSON_AddStringToObject(o, "error", x->error) != NULL;
    if (ok && x->unreadable)
        ok = cJSON_AddBoolToObject(o, "unreadable", true) != NULL;
    if (ok && x->index_missing)
        ok = cJSON_AddBoolToObject(o, "index_missing", true) != NULL;
    if (ok && x->delete_pending)
        ok = cJSON_AddBoolToObject(o, "delete_pending", true) != NULL;
    if (ok && x->gone_ms)
        ok = cJSON_AddNumberToObject(o, "gone_ms", (double)x->gone_ms) != NULL;
    cJSON_Delete(fp);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Remove temporaries of hb_write_file_atomic left by dead processes (a kill
 * -9 between the write and the rename). */
static void sweep_temporaries(const char *cdir)
{
    DIR *d = opendir(cdir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = 0;
        if (!hb_atomic_tmp_parse(de->d_name, &pid) || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *p = hb_path_join(cdir, de->d_name);
        if (p)
            unlink(p);
        hb_free(p);
    }
    closedir(d);
}

int hb_synced_save(const char *dir, const hb_synced *c, hb_err *e)
{
    char *cdir = hb_asprintf("%s/%s", dir, HB_SYNCED_DIR);
    char *path = cat_path(dir, HB_SYNCED_FILE);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = NULL, *tombs = NULL;
    bool ok = cdir && path && root;
    ok = ok && hb_json_add_u64(root, "format", HB_SYNCED_FORMAT);
    ok = ok && cJSON_AddStringToObject(root, "target", c->target ? c->target : "");
    ok = ok && cJSON_AddStringToObject(root, "store_id", c->store_id ? c->store_id : "");
    ok = ok && cJSON_AddNumberToObject(root, "synced_at_ms", (double)c->synced_at_ms);
    ok = ok && (arr = cJSON_AddArrayToObject(root, "backups"));
    for (size_t i = 0; ok && i < c->n; i++) {
        cJSON *o = entry_json(&c->v[i]);
        ok = o && cJSON_AddItemToArray(arr, o);
        if (!ok)
            cJSON_Delete(o);
    }
    ok = ok && (tombs = cJSON_AddArrayToObject(root, "forgotten"));
    for (size_t i = 0; ok && i < c->nt; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON *fp = fp_json(c->t[i].fp);
        ok = o && fp && cJSON_AddItemToArray(tombs, o);
        if (!ok) {
            cJSON_Delete(o);
            cJSON_Delete(fp);
            break;
        }
        ok = cJSON_AddStringToObject(o, "namespace", c->t[i].ns) &&
             cJSON_AddStringToObject(o, "name", c->t[i].name) &&
             cJSON_AddItemToObject(o, "manifest", fp) &&
             cJSON_AddNumberToObject(o, "forgotten_ms", (double)c->t[i].forgotten_ms);
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    int rc = text ? 0 : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0)
        rc = hb_mkdir_p(cdir, 0700, e);
    if (rc == 0) {
        sweep_temporaries(cdir);
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    }
    if (rc && rc != HARVBK_E_NOMEM)
        hb_err_prefix(e, "cannot write the catalog");
    hb_free(text);
    hb_free(cdir);
    hb_free(path);
    return rc;
}

/* ---- lock ---- */

int hb_synced_lock(const char *dir, int *out_fd, hb_err *e)
{
    char *cdir = hb_asprintf("%s/%s", dir, HB_SYNCED_DIR);
    int rc = cdir ? hb_lock_file(cdir, HB_SYNCED_LOCK, true, out_fd, e)
                  : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(cdir);
    return rc;
}

void hb_synced_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

int hb_synced_update(const char *dir, const hb_logger *log, hb_synced_edit_fn fn, void *ud,
                     hb_err *e)
{
    int fd;
    int rc = hb_synced_lock(dir, &fd, e);
    if (rc)
        return rc;
    hb_synced c;
    hb_err le;
    hb_err_clear(&le);
    rc = hb_synced_load(dir, &c, &le);
    if (rc == HARVBK_E_NOMEM) {
        hb_synced_unlock(fd);
        return hb_seterr(e, rc, NULL);
    }
    if (rc) {
        hb_log_warn(log, "%s; starting an empty catalog (the next sync rebuilds it from the "
                    "target)", le.msg);
        hb_synced_init(&c);
    }
    rc = fn(&c, ud, e);
    if (rc == 1)
        rc = hb_synced_save(dir, &c, e);
    hb_synced_clear(&c);
    hb_synced_unlock(fd);
    return rc < 0 ? rc : 0;
}
