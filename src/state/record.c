/*
 * state/record.c - local records of the backups and snapshots a context writes.
 *
 * A record "backups/<ns>/<name>.json" in the state directory says what this
 * context knows of a backup it started: InProgress (with progress, persisted
 * about once a second so other processes see it), Error (with the message),
 * or Ready (the manifest in the target is then the truth). The process writing
 * a backup holds an exclusive flock on "locks/<ns>_<name>.lock" for the whole
 * operation (locks.c); the kernel drops it when the process dies, which is
 * how a later open tells an interrupted backup from a running one
 * (recovery.c). Snapshots have the same records in "snapshots/<ns>/".
 */
#include "record.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RECORD_MAX (1024u * 1024u)
#define RECORD_WHAT "backup record"

void hb_record_clear(hb_record *r)
{
    if (!r)
        return;
    hb_free(r->ns);
    hb_free(r->name);
    hb_free(r->vm_ns);
    hb_free(r->vm_name);
    hb_free(r->error);
    hb_free(r->owner);
    hb_free(r->store_id);
    hb_free(r->schedule);
    for (size_t i = 0; i < r->nvols; i++)
        hb_free(r->vols[i].name);
    hb_free(r->vols);
    memset(r, 0, sizeof *r);
}

int hb_record_set_error(hb_record *r, int code, const char *msg)
{
    char *m = hb_strdup(msg ? msg : "");
    if (!m)
        return HARVBK_E_NOMEM;
    hb_free(r->error);
    r->error = m;
    r->error_code = code;
    return 0;
}

static int state_from_name(const char *s)
{
    for (int st = HARVBK_STATE_INPROGRESS; st <= HARVBK_STATE_ERROR; st++)
        if (strcmp(s, harvbk_state_name(st)) == 0)
            return st;
    return 0;
}

char *hb_record_encode(const hb_record *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *vols = NULL;
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "namespace", r->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", r->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_namespace", r->vm_ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "vm_name", r->vm_name) != NULL;
        ok &= cJSON_AddStringToObject(root, "state", harvbk_state_name(r->state)) != NULL;
        ok &= cJSON_AddStringToObject(root, "error", r->error ? r->error : "") != NULL;
        ok &= cJSON_AddNumberToObject(root, "error_code", r->error_code) != NULL;
        ok &= cJSON_AddNumberToObject(root, "created", (double)r->created) != NULL;
        ok &= hb_json_add_u64(root, "logical_bytes", r->logical_bytes) != NULL;
        ok &= hb_json_add_u64(root, "uploaded_bytes", r->uploaded_bytes) != NULL;
        ok &= hb_json_add_u64(root, "progress_bytes", r->progress_bytes) != NULL;
        ok &= cJSON_AddStringToObject(root, "owner", r->owner ? r->owner : "") != NULL;
        ok &= cJSON_AddStringToObject(root, "store_id", r->store_id ? r->store_id : "") != NULL;
        ok &= cJSON_AddBoolToObject(root, "crash_consistent", r->crash_consistent) != NULL;
        if (r->commit_unknown)
            ok &= cJSON_AddBoolToObject(root, "commit_unknown", true) != NULL;
        if (r->thaw_failed)
            ok &= cJSON_AddBoolToObject(root, "thaw_failed", true) != NULL;
        ok &= hb_json_add_freeze(root, &r->freeze);
        if (r->schedule)
            ok &= cJSON_AddStringToObject(root, "schedule", r->schedule) != NULL;
        ok &= (vols = cJSON_AddArrayToObject(root, "volumes")) != NULL;
    }
    for (size_t i = 0; ok && i < r->nvols; i++) {
        cJSON *v = cJSON_CreateObject();
        ok = v && cJSON_AddItemToArray(vols, v);
        ok = ok && cJSON_AddStringToObject(v, "name", r->vols[i].name) != NULL &&
             hb_json_add_u64(v, "size", r->vols[i].size) != NULL &&
             hb_json_add_capture(v, r->vols[i].capture);
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

static int dup_field(const cJSON *root, const char *field, bool required, char **out, hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(root, field, required, &s, RECORD_WHAT, e);
    if (rc == 0 && !(*out = hb_strdup(s ? s : "")))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    return rc;
}

int hb_record_decode(const void *data, size_t len, hb_record *r, hb_err *e)
{
    cJSON *root = NULL;
    const char *state = NULL;
    memset(r, 0, sizeof *r);
    int rc = hb_json_parse(data, len, RECORD_WHAT, &root, e);
    if (rc == 0 && !cJSON_IsObject(root))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", RECORD_WHAT);
    if (rc == 0)
        rc = dup_field(root, "namespace", true, &r->ns, e);
    if (rc == 0)
        rc = dup_field(root, "name", true, &r->name, e);
    if (rc == 0)
        rc = dup_field(root, "vm_namespace", true, &r->vm_ns, e);
    if (rc == 0)
        rc = dup_field(root, "vm_name", true, &r->vm_name, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "state", true, &state, RECORD_WHAT, e);
    if (rc == 0 && !(r->state = state_from_name(state)))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unknown state \"%s\"", RECORD_WHAT, state);
    if (rc == 0)
        rc = dup_field(root, "error", false, &r->error, e);
    int64_t code = 0;
    if (rc == 0)
        rc = hb_json_get_i64(root, "error_code", false, &code, RECORD_WHAT, e);
    r->error_code = (int)code;
    if (rc == 0)
        rc = hb_json_get_i64(root, "created", true, &r->created, RECORD_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_u64(root, "logical_bytes", false, &r->logical_bytes, RECORD_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_u64(root, "uploaded_bytes", false, &r->uploaded_bytes, RECORD_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_u64(root, "progress_bytes", false, &r->progress_bytes, RECORD_WHAT, e);
    if (rc == 0)
        rc = dup_field(root, "owner", false, &r->owner, e);
    if (rc == 0)
        rc = dup_field(root, "store_id", false, &r->store_id, e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "crash_consistent", false, &r->crash_consistent,
                              RECORD_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "commit_unknown", false, &r->commit_unknown, RECORD_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_bool(root, "thaw_failed", false, &r->thaw_failed, RECORD_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_freeze(root, &r->freeze, RECORD_WHAT, e);
    const char *sched = NULL; /* optional: the schedule making it */
    if (rc == 0)
        rc = hb_json_get_str(root, "schedule", false, &sched, RECORD_WHAT, e);
    if (rc == 0 && sched && !hb_name_valid(sched))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid schedule name", RECORD_WHAT);
    if (rc == 0 && sched && !(r->schedule = hb_strdup(sched)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0 && (!hb_name_valid(r->ns) || !hb_name_valid(r->name) ||
                    !hb_name_valid(r->vm_ns) || !hb_name_valid(r->vm_name)))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid names", RECORD_WHAT);
    const cJSON *vols = root ? cJSON_GetObjectItemCaseSensitive(root, "volumes") : NULL;
    if (rc == 0 && vols && !cJSON_IsArray(vols))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: volumes is not an array", RECORD_WHAT);
    size_t n = vols ? (size_t)cJSON_GetArraySize(vols) : 0;
    if (rc == 0 && n && !(r->vols = hb_calloc(n, sizeof *r->vols)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(vols, (int)i);
        if (!cJSON_IsObject(v)) {
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad volume entry", RECORD_WHAT);
            break;
        }
        rc = dup_field(v, "name", true, &r->vols[i].name, e);
        if (rc == 0)
            rc = hb_json_get_u64(v, "size", true, &r->vols[i].size, RECORD_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_capture(v, "capture", r->vols[i].capture, RECORD_WHAT, e);
        if (r->vols[i].name)
            r->nvols = i + 1;
    }
    cJSON_Delete(root);
    if (rc)
        hb_record_clear(r);
    return rc;
}

static char *record_path(hb_state *s, int kind, const char *ns, const char *name)
{
    char *file = hb_asprintf("%s.json", name);
    char *p = file ? hb_state_path(s, hb_entry_dir(kind), ns, file) : NULL;
    hb_free(file);
    return p;
}

int hb_record_read(hb_state *s, const char *ns, const char *name, hb_record *r, hb_err *e)
{
    return hb_record_read_k(s, HB_ENTRY_BACKUP, ns, name, r, e);
}

int hb_record_read_k(hb_state *s, int kind, const char *ns, const char *name, hb_record *r,
                     hb_err *e)
{
    memset(r, 0, sizeof *r);
    char *path = record_path(s, kind, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, RECORD_MAX, e);
    if (rc == 0) {
        rc = hb_record_decode(b.data, b.len, r, e);
        if (rc == 0 && (strcmp(r->ns, ns) != 0 || strcmp(r->name, name) != 0)) {
            hb_record_clear(r);
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s names another %s", RECORD_WHAT,
                           hb_entry_word(kind));
        }
        if (rc == 0)
            r->kind = kind;
        if (rc)
            hb_err_prefix(e, "%s", path);
    }
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

int hb_record_write(hb_state *s, const hb_record *r, hb_err *e)
{
    char *dir = hb_state_path(s, hb_entry_dir(r->kind), r->ns, NULL);
    char *path = record_path(s, r->kind, r->ns, r->name);
    char *text = hb_record_encode(r);
    int rc = (!dir || !path || !text) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_mkdir_p(dir, 0700, e);
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    if (rc)
        hb_err_prefix(e, "cannot save the record of %s %s/%s", hb_entry_word(r->kind), r->ns,
                      r->name);
    hb_free(text);
    hb_free(path);
    hb_free(dir);
    return rc;
}

int hb_record_remove(hb_state *s, const char *ns, const char *name, hb_err *e)
{
    return hb_record_remove_k(s, HB_ENTRY_BACKUP, ns, name, e);
}

int hb_record_remove_k(hb_state *s, int kind, const char *ns, const char *name, hb_err *e)
{
    char *path = record_path(s, kind, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            rc = hb_seterr(e, HARVBK_E_NOTFOUND, "no record of %s %s/%s", hb_entry_word(kind),
                           ns, name);
        else
            rc = hb_seterr(e, hb_errno_code(errno), "cannot remove '%s': %s", path,
                           strerror(errno));
    }
    hb_free(path);
    return rc;
}

int hb_record_foreach(hb_state *s, hb_record_cb cb, void *ud, hb_err *e)
{
    return hb_record_foreach_k(s, HB_ENTRY_BACKUP, cb, ud, e);
}

typedef struct record_walk {
    hb_state *s;
    int kind;
    hb_record_cb cb;
    void *ud;
} record_walk;

static int record_walk_one(const char *ns, const char *name, void *ud)
{
    record_walk *w = ud;
    hb_record r;
    hb_err re;
    hb_err_clear(&re);
    int rr = hb_record_read_k(w->s, w->kind, ns, name, &r, &re);
    if (rr == HARVBK_E_NOTFOUND)
        return 0; /* removed meanwhile */
    if (rr) {
        hb_log_warn(w->s->log, "skipping unreadable %s record: %s", hb_entry_word(w->kind),
                    re.msg);
        return 0;
    }
    int rc = w->cb(&r, w->ud);
    hb_record_clear(&r);
    return rc;
}

int hb_record_foreach_k(hb_state *s, int kind, hb_record_cb cb, void *ud, hb_err *e)
{
    char *top = hb_state_path(s, hb_entry_dir(kind), NULL, NULL);
    char what[64];
    snprintf(what, sizeof what, "the %s records", hb_entry_word(kind));
    record_walk w = { s, kind, cb, ud };
    int rc = hb_state_walk(top, NULL, what, record_walk_one, &w, e);
    hb_free(top);
    if (rc < 0 && e && e->code == 0)
        hb_seterr(e, rc, NULL);
    return rc;
}
