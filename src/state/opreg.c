/*
 * state/opreg.c - operations in progress across processes, and the
 * maintenance-mode file (state/opreg.h).
 */
#include "opreg.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define OPFILE_MAX 4096u
#define MAINT_MAX (1024u * 1024u)
#define MAINT_FORMAT 1

int hb_opreg_add(const char *dir, const char *kind, const char *what, hb_opreg *out, hb_err *e)
{
    out->fd = -1;
    out->path = NULL;
    uint8_t rnd[8];
    char hex[17];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, hex);
    char *sub = hb_asprintf("%s/%s", dir, HB_OPS_DIR);
    char *path = hb_asprintf("%s/%s/%ld-%s.json", dir, HB_OPS_DIR, (long)getpid(), hex);
    cJSON *o = cJSON_CreateObject();
    int rc = (sub && path && o) ? 0 : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    bool ok = rc == 0;
    ok = ok && cJSON_AddStringToObject(o, "kind", kind) && cJSON_AddStringToObject(o, "what", what) &&
         cJSON_AddNumberToObject(o, "pid", (double)getpid()) &&
         cJSON_AddNumberToObject(o, "started", (double)hb_now_ms());
    char *text = ok ? hb_json_print(o) : NULL;
    if (rc == 0 && !text)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0)
        rc = hb_mkdir_p(sub, 0700, e);
    int fd = -1;
    if (rc == 0) {
        /* locked before it has content: a lister that finds it empty and
         * unlocked knows it is a dead writer's */
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            rc = hb_seterr(e, hb_errno_code(errno), "cannot register the operation in %s: %s",
                           sub, strerror(errno));
    }
    if (rc == 0 && flock(fd, LOCK_EX) != 0)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot lock %s: %s", path, strerror(errno));
    if (rc == 0)
        rc = hb_pwrite_all(fd, text, strlen(text), 0, e);
    if (rc && fd >= 0) {
        unlink(path);
        close(fd);
    }
    hb_free(text);
    cJSON_Delete(o);
    hb_free(sub);
    if (rc) {
        hb_free(path);
        return rc;
    }
    out->fd = fd;
    out->path = path;
    return 0;
}

void hb_opreg_remove(hb_opreg *r)
{
    if (!r || r->fd < 0)
        return;
    unlink(r->path);
    close(r->fd);
    hb_free(r->path);
    r->fd = -1;
    r->path = NULL;
}

static void read_info(int fd, hb_opinfo *in)
{
    char buf[OPFILE_MAX];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    cJSON *o = NULL;
    if (hb_json_parse(buf, (size_t)n, "operation file", &o, NULL) != 0)
        return;
    const char *s = NULL;
    int64_t v = 0;
    if (hb_json_get_str(o, "kind", true, &s, "op", NULL) == 0)
        snprintf(in->kind, sizeof in->kind, "%s", s);
    if (hb_json_get_str(o, "what", true, &s, "op", NULL) == 0)
        snprintf(in->what, sizeof in->what, "%s", s);
    if (hb_json_get_i64(o, "pid", true, &v, "op", NULL) == 0)
        in->pid = (long)v;
    if (hb_json_get_i64(o, "started", true, &v, "op", NULL) == 0)
        in->started = v;
    cJSON_Delete(o);
}

int hb_opreg_list(const char *dir, hb_opinfo **out, size_t *n, hb_err *e)
{
    *out = NULL;
    *n = 0;
    char *sub = hb_asprintf("%s/%s", dir, HB_OPS_DIR);
    if (!sub)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    DIR *d = opendir(sub);
    if (!d) {
        int err = errno;
        hb_free(sub);
        return err == ENOENT ? 0
                             : hb_seterr(e, hb_errno_code(err), "cannot list operations: %s",
                                         strerror(err));
    }
    hb_opinfo *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        char *path = hb_path_join(sub, de->d_name);
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
        if (fd < 0) {
            hb_free(path);
            continue;
        }
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            /* nobody holds it: its process died (or it just ended) */
            unlink(path);
        } else {
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 8;
                hb_opinfo *nv = hb_realloc(v, nc * sizeof *nv);
                if (!nv)
                    rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                else
                    v = nv, cap = nc;
            }
            if (rc == 0) {
                memset(&v[cnt], 0, sizeof v[cnt]);
                read_info(fd, &v[cnt]);
                cnt++;
            }
        }
        close(fd);
        hb_free(path);
    }
    closedir(d);
    hb_free(sub);
    if (rc) {
        hb_free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- maintenance file ---- */

void hb_maint_clear(hb_maint *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nsuspended; i++)
        hb_free(m->suspended[i]);
    hb_free(m->suspended);
    memset(m, 0, sizeof *m);
}

static char *maint_path(const char *dir) { return hb_asprintf("%s/%s", dir, HB_MAINTENANCE_FILE); }

int hb_maint_read(const char *dir, hb_maint *m, hb_err *e)
{
    memset(m, 0, sizeof *m);
    char *path = maint_path(dir);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, MAINT_MAX, e);
    hb_free(path);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        hb_buf_free(&b);
        return 0;
    }
    if (rc) {
        hb_buf_free(&b);
        return rc;
    }
    cJSON *o = NULL;
    hb_err pe;
    if (hb_json_parse(b.data, b.len, "maintenance file", &o, &pe) == 0) {
        int64_t since = 0;
        if (hb_json_get_i64(o, "since", true, &since, "maintenance file", &pe) == 0)
            m->since = since;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "suspended");
        size_t na = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
        if (na && na < 1000000 && (m->suspended = hb_calloc(na, sizeof *m->suspended))) {
            const cJSON *it;
            cJSON_ArrayForEach(it, arr)
            {
                if (cJSON_IsString(it) && strlen(it->valuestring) < 200 &&
                    (m->suspended[m->nsuspended] = hb_strdup(it->valuestring)))
                    m->nsuspended++;
            }
        }
        cJSON_Delete(o);
    }
    hb_buf_free(&b);
    return 1;
}

int hb_maint_write(const char *dir, const hb_maint *m, hb_err *e)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "format", MAINT_FORMAT) &&
              cJSON_AddNumberToObject(o, "since", (double)m->since);
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "suspended") : NULL;
    ok = ok && arr;
    for (size_t i = 0; ok && i < m->nsuspended; i++) {
        cJSON *s = cJSON_CreateString(m->suspended[i]);
        ok = s && cJSON_AddItemToArray(arr, s);
    }
    char *text = ok ? hb_json_print(o) : NULL;
    cJSON_Delete(o);
    char *path = maint_path(dir);
    int rc = (text && path) ? hb_write_file_atomic(path, text, strlen(text), 0600, e)
                            : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(text);
    hb_free(path);
    return rc;
}

int hb_maint_remove(const char *dir, hb_err *e)
{
    char *path = maint_path(dir);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot remove %s: %s", path, strerror(errno));
    hb_free(path);
    if (rc == 0) {
        hb_err fe;
        hb_fsync_dir(dir, &fe);
    }
    return rc;
}
