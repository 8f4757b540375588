/*
 * state/schedule.c - schedule records in the state directory and their locks
 * (state/schedule.h, docs/SCHEDULES.md "Where schedules live").
 */
#include "schedule.h"
#include "state.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WHAT "schedule record"
/* Bound on history items read from a file. */
#define HIST_MAX 4096u

static const char *const item_states[] = {"InProgress", "Ready", "Error", "Skipped",
                                          "Cancelled"};

const char *hb_sched_item_state_name(int s)
{
    return s >= 0 && s < (int)HB_ARRAY_LEN(item_states) ? item_states[s] : "unknown";
}

static void item_clear(hb_sched_item *it)
{
    hb_free(it->entry);
    hb_free(it->error);
    memset(it, 0, sizeof *it);
}

void hb_sched_rec_clear(hb_sched_rec *r)
{
    if (!r)
        return;
    hb_free(r->ns);
    hb_free(r->name);
    hb_free(r->vm_ns);
    hb_free(r->vm_name);
    hb_free(r->cron);
    hb_free(r->suspend_reason);
    hb_free(r->suspended_by);
    for (size_t i = 0; i < r->nhist; i++)
        item_clear(&r->hist[i]);
    hb_free(r->hist);
    memset(r, 0, sizeof *r);
}

int hb_sched_rec_push(hb_sched_rec *r, const char *entry, int64_t planned, int state,
                      uint32_t missed)
{
    if (r->nhist == r->caphist) {
        size_t cap = r->caphist ? r->caphist * 2 : 8;
        hb_sched_item *h = hb_realloc(r->hist, cap * sizeof *h);
        if (!h)
            return HARVBK_E_NOMEM;
        r->hist = h;
        r->caphist = cap;
    }
    hb_sched_item *it = &r->hist[r->nhist];
    memset(it, 0, sizeof *it);
    it->entry = hb_strdup(entry ? entry : "");
    it->error = hb_strdup("");
    if (!it->entry || !it->error) {
        item_clear(it);
        return HARVBK_E_NOMEM;
    }
    it->planned = planned;
    it->state = state;
    it->missed = missed;
    return (int)r->nhist++;
}

int hb_sched_item_set_error(hb_sched_item *it, int code, const char *msg)
{
    char *m = hb_strdup(msg ? msg : "");
    if (!m)
        return HARVBK_E_NOMEM;
    hb_free(it->error);
    it->error = m;
    it->code = code;
    return 0;
}

/* An item that no longer matters: its entry is gone or never existed. */
static bool item_droppable(const hb_sched_item *it)
{
    return it->deleted || it->state == HB_SI_SKIPPED || it->state == HB_SI_CANCELLED ||
           !it->entry[0];
}

void hb_sched_rec_trim(hb_sched_rec *r)
{
    size_t droppable = 0;
    for (size_t i = 0; i < r->nhist; i++)
        droppable += item_droppable(&r->hist[i]);
    if (droppable <= HB_SCHED_HISTORY_KEEP)
        return;
    size_t drop = droppable - HB_SCHED_HISTORY_KEEP, w = 0;
    for (size_t i = 0; i < r->nhist; i++) {
        if (drop && item_droppable(&r->hist[i])) {
            item_clear(&r->hist[i]);
            drop--;
            continue;
        }
        r->hist[w++] = r->hist[i];
    }
    r->nhist = w;
}

/* ---- JSON ---- */

static const char *type_name(int t) { return t == HARVBK_SCHEDULE_SNAPSHOT ? "snapshot" : "backup"; }

char *hb_sched_encode(const hb_sched_rec *r)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddNumberToObject(root, "format", HB_SCHED_FORMAT) != NULL;
        ok &= cJSON_AddStringToObject(root, "namespace", r->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", r->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "type", type_name(r->type)) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_namespace", r->vm_ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_name", r->vm_name) != NULL;
        ok &= cJSON_AddStringToObject(root, "cron", r->cron) != NULL;
        ok &= hb_json_add_u64(root, "retain", r->retain) != NULL;
        ok &= hb_json_add_u64(root, "max_failure", r->max_failure) != NULL;
        ok &= hb_json_add_u64(root, "deadline_s", r->deadline_s) != NULL;
        ok &= cJSON_AddBoolToObject(root, "skip_interval_check", r->skip_interval_check) != NULL;
        ok &= cJSON_AddBoolToObject(root, "suspended", r->suspended) != NULL;
        ok &= cJSON_AddStringToObject(root, "suspend_reason",
                                      r->suspend_reason ? r->suspend_reason : "") != NULL;
        ok &= cJSON_AddStringToObject(root, "suspended_by",
                                      r->suspended_by ? r->suspended_by : "") != NULL;
        ok &= hb_json_add_u64(root, "consecutive_failures", r->consecutive_failures) != NULL;
        ok &= cJSON_AddNumberToObject(root, "created", (double)r->created) != NULL;
        ok &= cJSON_AddNumberToObject(root, "last_planned", (double)r->last_planned) != NULL;
    }
    cJSON *hist = ok ? cJSON_AddArrayToObject(root, "history") : NULL;
    ok &= hist != NULL;
    for (size_t i = 0; ok && i < r->nhist; i++) {
        const hb_sched_item *it = &r->hist[i];
        cJSON *o = cJSON_CreateObject();
        ok &= o && cJSON_AddItemToArray(hist, o);
        if (!ok)
            break;
        ok &= cJSON_AddStringToObject(o, "entry", it->entry) != NULL;
        ok &= cJSON_AddNumberToObject(o, "planned", (double)it->planned) != NULL;
        ok &= cJSON_AddNumberToObject(o, "started", (double)it->started) != NULL;
        ok &= cJSON_AddNumberToObject(o, "finished", (double)it->finished) != NULL;
        ok &= cJSON_AddStringToObject(o, "state", hb_sched_item_state_name(it->state)) != NULL;
        ok &= cJSON_AddNumberToObject(o, "code", it->code) != NULL;
        ok &= cJSON_AddStringToObject(o, "error", it->error) != NULL;
        ok &= hb_json_add_u64(o, "missed", it->missed) != NULL;
        ok &= cJSON_AddBoolToObject(o, "deleted", it->deleted) != NULL;
    }
    char *s = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    return s;
}

/* Times are ms since the epoch within years 1970..9999. */
#define TIME_MS_MAX 253402300799999LL

static int get_time(const cJSON *o, const char *field, int64_t *out, hb_err *e)
{
    int rc = hb_json_get_i64(o, field, true, out, WHAT, e);
    if (rc == 0 && (*out < 0 || *out > TIME_MS_MAX))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has an out-of-range '%s'", WHAT, field);
    return rc;
}

static int get_u32(const cJSON *o, const char *field, uint32_t *out, hb_err *e)
{
    uint64_t u = 0;
    int rc = hb_json_get_u64(o, field, true, &u, WHAT, e);
    if (rc == 0 && u > UINT32_MAX)
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has an out-of-range '%s'", WHAT, field);
    *out = (uint32_t)u;
    return rc;
}

static int get_dup(const cJSON *o, const char *field, bool name, char **out, hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(o, field, true, &s, WHAT, e);
    if (rc)
        return rc;
    if (name && !hb_name_valid(s))
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s has an invalid '%s'", WHAT, field);
    if (strlen(s) > 4096)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s has an overlong '%s'", WHAT, field);
    return (*out = hb_strdup(s)) ? 0 : HARVBK_E_NOMEM;
}

static int decode_item(const cJSON *o, hb_sched_item *it, hb_err *e)
{
    const char *st = NULL;
    int64_t code = 0;
    int rc;
    if (!cJSON_IsObject(o))
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s has a history item that is not an object",
                         WHAT);
    if ((rc = get_dup(o, "entry", false, &it->entry, e)) ||
        (rc = get_dup(o, "error", false, &it->error, e)) ||
        (rc = get_time(o, "planned", &it->planned, e)) ||
        (rc = get_time(o, "started", &it->started, e)) ||
        (rc = get_time(o, "finished", &it->finished, e)) ||
        (rc = hb_json_get_str(o, "state", true, &st, WHAT, e)) ||
        (rc = hb_json_get_i64(o, "code", true, &code, WHAT, e)) ||
        (rc = get_u32(o, "missed", &it->missed, e)) ||
        (rc = hb_json_get_bool(o, "deleted", true, &it->deleted, WHAT, e)))
        return rc;
    if (it->entry[0] && !hb_name_valid(it->entry))
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s has an invalid history entry name", WHAT);
    if (code > 0 || code < -1000)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s has an invalid error code", WHAT);
    it->code = (int)code;
    it->state = -1;
    for (int i = 0; i < (int)HB_ARRAY_LEN(item_states); i++)
        if (strcmp(st, item_states[i]) == 0)
            it->state = i;
    if (it->state < 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s has an unknown history state", WHAT);
    return 0;
}

int hb_sched_decode(const void *data, size_t len, hb_sched_rec *r, hb_err *e)
{
    memset(r, 0, sizeof *r);
    cJSON *root = NULL;
    int rc = hb_json_parse(data, len, WHAT, &root, e);
    if (rc)
        return rc;
    uint64_t format = 0;
    const char *type = NULL;
    if (!cJSON_IsObject(root))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", WHAT);
    if (rc == 0 && (rc = hb_json_get_u64(root, "format", true, &format, WHAT, e)) == 0 &&
        format != HB_SCHED_FORMAT)
        rc = hb_seterr(e, HARVBK_E_FORMAT, "%s has format %llu; this library reads %d", WHAT,
                       (unsigned long long)format, HB_SCHED_FORMAT);
    if (rc == 0)
        rc = get_dup(root, "namespace", true, &r->ns, e);
    if (rc == 0)
        rc = get_dup(root, "name", true, &r->name, e);
    if (rc == 0)
        rc = get_dup(root, "vm_namespace", true, &r->vm_ns, e);
    if (rc == 0)
        rc = get_dup(root, "vm_name", true, &r->vm_name, e);
    if (rc == 0)
        rc = get_dup(root, "cron", false, &r->cron, e);
    if (rc == 0)
        rc = get_dup(root, "suspend_reason", false, &r->suspend_reason, e);
    if (rc == 0)
        rc = get_dup(root, "suspended_by", false, &r->suspended_by, e);
    if (rc == 0 && (rc = hb_json_get_str(root, "type", true, &type, WHAT, e)) == 0) {
        if (strcmp(type, "backup") == 0)
            r->type = HARVBK_SCHEDULE_BACKUP;
        else if (strcmp(type, "snapshot") == 0)
            r->type = HARVBK_SCHEDULE_SNAPSHOT;
        else
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has an unknown type", WHAT);
    }
    if (rc == 0)
        rc = get_u32(root, "retain", &r->retain, e);
    if (rc == 0)
        rc = get_u32(root, "max_failure", &r->max_failure, e);
    if (rc == 0)
        rc = get_u32(root, "deadline_s", &r->deadline_s, e);
    if (rc == 0)
        rc = get_u32(root, "consecutive_failures", &r->consecutive_failures, e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "skip_interval_check", true, &r->skip_interval_check, WHAT, e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "suspended", true, &r->suspended, WHAT, e);
    if (rc == 0)
        rc = get_time(root, "created", &r->created, e);
    if (rc == 0)
        rc = get_time(root, "last_planned", &r->last_planned, e);
    const cJSON *hist = rc == 0 ? cJSON_GetObjectItemCaseSensitive(root, "history") : NULL;
    if (rc == 0 && !cJSON_IsArray(hist))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has no history array", WHAT);
    if (rc == 0 && (size_t)cJSON_GetArraySize(hist) > HIST_MAX)
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s has more than %u history items", WHAT, HIST_MAX);
    const cJSON *o;
    if (rc == 0)
        cJSON_ArrayForEach(o, hist)
        {
            if ((rc = hb_sched_rec_push(r, "", 0, 0, 0)) < 0)
                break;
            hb_sched_item *it = &r->hist[rc];
            hb_free(it->entry);
            hb_free(it->error);
            it->entry = it->error = NULL;
            if ((rc = decode_item(o, it, e)) != 0) {
                item_clear(it);
                r->nhist--;
                break;
            }
        }
    if (rc > 0)
        rc = 0;
    cJSON_Delete(root);
    if (rc)
        hb_sched_rec_clear(r);
    return rc;
}

/* ---- files ---- */

static char *rec_path(const char *dir, const char *ns, const char *name)
{
    return hb_asprintf("%s/%s/%s/%s.json", dir, HB_SCHEDULES_DIR, ns, name);
}

int hb_sched_read(const char *dir, const char *ns, const char *name, hb_sched_rec *r, hb_err *e)
{
    memset(r, 0, sizeof *r);
    if (!hb_name_valid(ns) || !hb_name_valid(name))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid schedule name");
    char *path = rec_path(dir, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, HB_SCHED_FILE_MAX, e);
    if (rc == HARVBK_E_NOTFOUND)
        rc = hb_seterr(e, rc, "no schedule %s/%s", ns, name);
    else if (rc == 0 && (rc = hb_sched_decode(b.data, b.len, r, e)) != 0)
        hb_err_prefix(e, "%s", path);
    else if (rc == 0 && (strcmp(r->ns, ns) != 0 || strcmp(r->name, name) != 0)) {
        hb_sched_rec_clear(r);
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: the record names another schedule", path);
    }
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

int hb_sched_write(const char *dir, const hb_sched_rec *r, hb_err *e)
{
    char *sub = hb_asprintf("%s/%s/%s", dir, HB_SCHEDULES_DIR, r->ns);
    char *path = rec_path(dir, r->ns, r->name);
    char *text = hb_sched_encode(r);
    int rc = (sub && path && text) ? 0 : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0)
        rc = hb_mkdir_p(sub, 0700, e);
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    hb_free(text);
    hb_free(path);
    hb_free(sub);
    return rc;
}

int hb_sched_remove(const char *dir, const char *ns, const char *name, hb_err *e)
{
    char *path = rec_path(dir, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    if (unlink(path) != 0) {
        int err = errno;
        rc = err == ENOENT ? hb_seterr(e, HARVBK_E_NOTFOUND, "no schedule %s/%s", ns, name)
                           : hb_seterr(e, hb_errno_code(err), "cannot remove %s: %s", path,
                                       strerror(err));
    }
    hb_free(path);
    return rc;
}

typedef struct sched_walk {
    hb_sched_id *v;
    size_t n, cap;
} sched_walk;

static int sched_walk_one(const char *ns, const char *name, void *ud)
{
    sched_walk *w = ud;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        hb_sched_id *v = hb_realloc(w->v, cap * sizeof *v);
        if (!v)
            return HARVBK_E_NOMEM;
        w->v = v;
        w->cap = cap;
    }
    snprintf(w->v[w->n].ns, sizeof w->v[w->n].ns, "%s", ns);
    snprintf(w->v[w->n].name, sizeof w->v[w->n].name, "%s", name);
    w->n++;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    const hb_sched_id *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

int hb_sched_list(const char *dir, hb_sched_id **out, size_t *n, hb_err *e)
{
    *out = NULL;
    *n = 0;
    char *top = hb_asprintf("%s/%s", dir, HB_SCHEDULES_DIR);
    sched_walk w = { NULL, 0, 0 };
    int rc = hb_state_walk(top, NULL, "the schedules", sched_walk_one, &w, e);
    hb_free(top);
    if (rc) {
        if (e && e->code == 0)
            hb_seterr(e, rc, NULL);
        hb_free(w.v);
        return rc;
    }
    if (w.n > 1)
        qsort(w.v, w.n, sizeof *w.v, cmp_id);
    *out = w.v;
    *n = w.n;
    return 0;
}

/* ---- locks: never unlinked, so every process locks the same inode ---- */

/* locks/schedule_<ns>_<name><suffix>.lock, or locks/schedules.lock (ns NULL) */
static int lock(const char *dir, const char *ns, const char *name, const char *suffix, bool block,
                int *out_fd, hb_err *e)
{
    char *locks = hb_asprintf("%s/locks", dir);
    char file[200];
    if (ns)
        snprintf(file, sizeof file, "schedule_%s_%s%s.lock", ns, name, suffix);
    else
        snprintf(file, sizeof file, "schedules.lock");
    int rc = locks ? hb_lock_file(locks, file, block, out_fd, e)
                   : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(locks);
    return rc;
}

int hb_sched_global_lock(const char *dir, int *out_fd, hb_err *e)
{
    return lock(dir, NULL, NULL, "", true, out_fd, e);
}

int hb_sched_lock(const char *dir, const char *ns, const char *name, int *out_fd, hb_err *e)
{
    return lock(dir, ns, name, "", true, out_fd, e);
}

int hb_sched_run_lock_try(const char *dir, const char *ns, const char *name, int *out_fd,
                          hb_err *e)
{
    int rc = lock(dir, ns, name, ".run", false, out_fd, e);
    if (rc == HARVBK_E_BUSY)
        hb_seterr(e, rc, "schedule %s/%s is running a firing", ns, name);
    return rc;
}

void hb_sched_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

bool hb_sched_entry_name(const char *name, int64_t planned_ms, char *out, size_t size)
{
    time_t t = (time_t)(planned_ms / 1000);
    struct tm tm;
    if (planned_ms < 0 || !gmtime_r(&t, &tm))
        return false;
    int n = snprintf(out, size, "%s-%04d%02d%02d-%02d%02d", name, tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
    return n > 0 && (size_t)n < size && hb_name_valid(out);
}
