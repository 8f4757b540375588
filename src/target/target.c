/*
 * target/target.c - opens the backend named by a target URL and wraps its
 * operations: keys are validated here once for every backend, and error
 * messages get the target's display name and the key as a prefix.
 */
#include "target.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

uint64_t hb_key_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

int hb_target_link_err(hb_err *e, const char *rel, size_t n)
{
    return hb_seterr(e, HARVBK_E_CORRUPT,
                     "'%.*s' in the store is a symbolic link: objects are never reached "
                     "through links",
                     (int)n, rel);
}

bool hb_key_valid(const char *key)
{
    if (!key || !*key)
        return false;
    size_t n = strlen(key);
    if (n > HB_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            return false;
    }
    const char *seg = key;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') ||
            (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (!end)
            return true;
        seg = end + 1;
    }
}

/* Temporary names are "<owner>-<counter>-<random hex>" (owners may contain
 * '-' themselves). Returns the length of the owner part, or 0 when `name` is
 * not one of our temporaries: those are never touched, even when old (a root
 * pointed at a shared directory must not lose other programs' files). */
size_t hb_tmp_owner_len(const char *name)
{
    size_t n = strlen(name), i = n;
    while (i > 0 && strchr("0123456789abcdef", name[i - 1]))
        i--;
    if (i == n || i == 0 || name[i - 1] != '-')
        return 0;
    size_t j = --i;
    while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
        i--;
    if (i == j || i < 2 || name[i - 1] != '-')
        return 0;
    size_t olen = i - 1;
    for (size_t k = 0; k < olen; k++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", name[k]))
            return 0;
    return olen;
}

/* A list() prefix: "" or a key, optionally ending in '/' ("chunks/"). */
static bool prefix_valid(const char *prefix)
{
    if (!prefix)
        return false;
    size_t n = strlen(prefix);
    if (n == 0)
        return true;
    if (prefix[n - 1] != '/')
        return hb_key_valid(prefix);
    char *p = hb_strndup(prefix, n - 1);
    bool ok = p && hb_key_valid(p);
    hb_free(p);
    return ok;
}

/* Owners become part of temporary file names: keep them to a safe alphabet. */
static bool owner_valid(const char *o)
{
    size_t n = strlen(o);
    if (n == 0 || n > 128)
        return false;
    return strspn(o, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int hb_target_open(hb_target **out, const hb_target_cfg *cfg, const char *owner,
                   const hb_logger *log, hb_err *e)
{
    *out = NULL;
    if (!cfg || !cfg->url)
        return hb_seterr(e, HARVBK_E_NOTARGET, "no target URL configured");
    char defowner[32];
    if (!owner) {
        snprintf(defowner, sizeof defowner, "harvbk-%ld", (long)getpid());
        owner = defowner;
    }
    if (!owner_valid(owner))
        return hb_seterr(e, HARVBK_E_INVALID,
                         "invalid target writer id (1 to 128 of letters, digits, '.', '_', '-')");
    const char *sep = strstr(cfg->url, "://");
    size_t slen = sep ? (size_t)(sep - cfg->url) : 0;
    hb_target *t = NULL;
    int rc;
    if (slen == 4 && !strncmp(cfg->url, "file", 4))
        rc = hb_target_local_open(&t, cfg, e);
    else if (slen == 3 && !strncmp(cfg->url, "nfs", 3))
        rc = hb_target_nfs_open(&t, cfg, e);
    else if (slen == 2 && !strncmp(cfg->url, "s3", 2))
        rc = hb_target_s3_open(&t, cfg, e);
    else
        rc = hb_seterr(e, HARVBK_E_UNSUPPORTED,
                       "unknown target URL scheme '%.*s' (expected file://, nfs:// or s3://)",
                       (int)HB_MIN(slen, 32), cfg->url);
    if (rc)
        return rc;
    t->display = hb_target_cfg_display(cfg);
    t->owner = hb_strdup(owner);
    t->log = log;
    t->read_only = cfg->read_only;
    if (cfg->parallel)
        t->parallel = t->min_workers = t->max_workers = cfg->parallel;
    if (t->parallel == 0)
        t->parallel = 1;
    if (!t->display || !t->owner) {
        hb_target_close(t);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_log_debug(log, "opened target %s", t->display);
    *out = t;
    return 0;
}

/* Backends' close() frees the backend (and the embedded hb_target) but not
 * display/owner, which this layer set and frees. */
void hb_target_close(hb_target *t)
{
    if (!t)
        return;
    char *display = t->display, *owner = t->owner;
    t->ops->close(t);
    hb_free(display);
    hb_free(owner);
}

static const char *disp(const hb_target *t)
{
    return t->display ? t->display : "target";
}

/* Make sure e holds rc (backends always set it; be robust if one did not),
 * then prefix "<display>: <key>: ". */
static int wrap_err(hb_target *t, const char *key, int rc, hb_err *e)
{
    if (!e)
        return rc;
    if (e->code != rc) {
        e->code = rc;
        e->msg[0] = '\0';
    }
    if (key)
        hb_err_prefix(e, "%s: %s", disp(t), key);
    else
        hb_err_prefix(e, "%s", disp(t));
    return rc;
}

static int bad_key(hb_target *t, const char *key, hb_err *e)
{
    return hb_seterr(e, HARVBK_E_INVALID, "%s: invalid object key '%.200s'", disp(t),
                     key ? key : "(null)");
}

/* Every write passes one of the wrappers below, which all start here. */
static int refuse_write(hb_target *t, const char *what, const char *key, hb_err *e)
{
    return hb_seterr(e, HARVBK_E_READ_ONLY,
                     "%s: the target is read-only: %s%s%.200s refused (the target setting "
                     "read_only)",
                     disp(t), what, key ? " of " : "", key ? key : "");
}

int hb_target_put(hb_target *t, const char *key, const void *data, size_t len, hb_err *e)
{
    if (t->read_only)
        return refuse_write(t, "writing", key, e);
    if (!hb_key_valid(key))
        return bad_key(t, key, e);
    if (!data && len)
        return hb_seterr(e, HARVBK_E_INVALID, "%s: %s: NULL data", disp(t), key);
    int rc = t->ops->put(t, key, data ? data : "", len, e);
    return rc < 0 ? wrap_err(t, key, rc, e) : rc;
}

int hb_target_get(hb_target *t, const char *key, hb_buf *out, hb_err *e)
{
    if (!hb_key_valid(key))
        return bad_key(t, key, e);
    int rc = t->ops->get(t, key, out, e);
    return rc < 0 ? wrap_err(t, key, rc, e) : rc;
}

void hb_target_prefetch(hb_target *t, const char *key)
{
    if (t && t->ops->prefetch && hb_key_valid(key))
        t->ops->prefetch(t, key);
}

static int too_large(hb_err *e, uint64_t size, size_t max)
{
    return hb_seterr(e, HARVBK_E_CORRUPT, "object is %llu bytes, more than the %zu expected",
                     (unsigned long long)size, max);
}

int hb_target_get_max(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e)
{
    if (!hb_key_valid(key))
        return bad_key(t, key, e);
    int rc;
    if (t->ops->get_max) {
        rc = t->ops->get_max(t, key, out, max, e);
    } else {
        uint64_t size = 0;
        rc = t->ops->head(t, key, &size, e);
        if (rc == 0 && size > max)
            rc = too_large(e, size, max);
        if (rc == 0)
            rc = t->ops->get(t, key, out, e);
        if (rc == 0 && out->len > max) { /* replaced in between */
            rc = too_large(e, out->len, max);
            hb_buf_reset(out);
        }
    }
    return rc < 0 ? wrap_err(t, key, rc, e) : rc;
}

int hb_target_head(hb_target *t, const char *key, uint64_t *size, hb_err *e)
{
    if (!hb_key_valid(key))
        return bad_key(t, key, e);
    uint64_t dummy;
    int rc = t->ops->head(t, key, size ? size : &dummy, e);
    return rc < 0 ? wrap_err(t, key, rc, e) : rc;
}

int hb_target_del(hb_target *t, const char *key, hb_err *e)
{
    if (t->read_only)
        return refuse_write(t, "deleting", key, e);
    if (!hb_key_valid(key))
        return bad_key(t, key, e);
    int rc = t->ops->del(t, key, e);
    return rc < 0 ? wrap_err(t, key, rc, e) : rc;
}

int hb_target_del_many(hb_target *t, const char *const *keys, size_t n, hb_err *e)
{
    if (t->read_only && n)
        return refuse_write(t, "deleting", keys[0], e);
    for (size_t i = 0; i < n; i++)
        if (!hb_key_valid(keys[i]))
            return bad_key(t, keys[i], e);
    if (n == 0)
        return 0;
    if (t->ops->del_many) {
        int rc = t->ops->del_many(t, keys, n, e);
        return rc < 0 ? wrap_err(t, NULL, rc, e) : rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = t->ops->del(t, keys[i], e);
        if (rc < 0)
            return wrap_err(t, keys[i], rc, e);
    }
    return 0;
}

/* The caller's callback may stop the listing with any value; that value is
 * returned untouched (no message added to e). */
typedef struct list_wrap {
    hb_list_cb cb;
    void *ud;
    int stopped;
} list_wrap;

static int list_tramp(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    list_wrap *w = ud;
    int rc = w->cb(key, size, mtime, w->ud);
    if (rc)
        w->stopped = rc;
    return rc;
}

int hb_target_list(hb_target *t, const char *prefix, hb_list_cb cb, void *ud, hb_err *e)
{
    if (!prefix)
        prefix = "";
    if (!prefix_valid(prefix))
        return hb_seterr(e, HARVBK_E_INVALID, "%s: invalid list prefix '%.200s'", disp(t),
                         prefix);
    if (!cb)
        return hb_seterr(e, HARVBK_E_INVALID, "%s: list without a callback", disp(t));
    list_wrap w = { cb, ud, 0 };
    int rc = t->ops->list(t, prefix, list_tramp, &w, e);
    if (w.stopped && rc == w.stopped)
        return rc;
    return rc < 0 ? wrap_err(t, *prefix ? prefix : NULL, rc, e) : rc;
}

int hb_target_put_deferred(hb_target *t, const char *key, const void *data, size_t len,
                           hb_err *e)
{
    if (t->read_only)
        return refuse_write(t, "writing", key, e);
    if (!t->ops->put_deferred)
        return hb_target_put(t, key, data, len, e);
    if (!hb_key_valid(key))
        return bad_key(t, key, e);
    if (!data && len)
        return hb_seterr(e, HARVBK_E_INVALID, "%s: %s: NULL data", disp(t), key);
    int rc = t->ops->put_deferred(t, key, data ? data : "", len, e);
    return rc < 0 ? wrap_err(t, key, rc, e) : rc;
}

int hb_target_cleanup(hb_target *t, const char *owner, int64_t max_age_s, hb_err *e)
{
    if (t->read_only)
        return refuse_write(t, "removing temporaries", NULL, e);
    if (!t->ops->cleanup)
        return 0;
    int rc = t->ops->cleanup(t, owner, max_age_s, e);
    return rc < 0 ? wrap_err(t, NULL, rc, e) : rc;
}

uint64_t hb_target_sync_token(hb_target *t)
{
    return atomic_load(&t->lost);
}

int hb_target_sync(hb_target *t, uint64_t token, hb_err *e)
{
    int rc = t->ops->sync ? t->ops->sync(t, e) : 0;
    if (rc < 0)
        return wrap_err(t, NULL, rc, e);
    uint64_t lost = atomic_load(&t->lost);
    if (lost != token)
        return hb_seterr(e, HARVBK_E_IO,
                         "%s: %llu object(s) written since this operation started could not be "
                         "made durable (a barrier failed); nothing that references them may "
                         "be committed",
                         disp(t), (unsigned long long)(lost - token));
    return 0;
}
