/*
 * state/rjournal.c - the journal that makes a restore all-or-nothing
 * even when its process is killed.
 *
 * A restore writes every file volume to a hidden partial file, then moves the
 * partial files into place one by one, then registers the new VM. A process
 * killed in between would leave hidden partial files, or - worse - some
 * volumes already under their final names with no VM that owns them (and a
 * second restore into the same directory would then be refused). So before
 * it creates any file, the restore saves "restores/<ns>/<name>.json" in the
 * state directory:
 *
 *   {"namespace":..,"name":..,"dir":"/abs","phase":"write"|"rename",
 *    "volumes":[{"name":..,"part":"/abs/.v.raw.part-1a2b3c4d","final":"/abs/v.raw",
 *                "dev":"2049","ino":"1234"}]}
 *
 * and holds the lock "locks/<ns>_<name>.restore.lock" until it has removed
 * the journal again. Phase "write": only partial files can exist. Phase
 * "rename" (saved after every volume was written, with the device and inode
 * of each partial file): final files with that device and inode are this
 * restore's. Recovery (at open, and before a restore into the same VM)
 * removes the partial files and, unless the VM was registered with those
 * files (the restore completed and only the journal was left), the final
 * files that are still the restore's own inodes. Nothing else is touched:
 * paths must be the ones a restore of that volume name would use.
 * A journal with "mode":"replace" belongs to a replace-restore and is
 * recovered by rreplace.c.
 */
#include "rjournal.h"
#include "catalog.h"
#include "locks.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAX (1024u * 1024u)
#define JOURNAL_WHAT "restore journal"

static char *journal_path(hb_state *s, const char *ns, const char *name)
{
    char *file = hb_asprintf("%s.json", name);
    char *p = file ? hb_state_path(s, HB_RESTORES_DIR, ns, file) : NULL;
    hb_free(file);
    return p;
}

char *hb_rjournal_path(hb_state *s, const char *ns, const char *name)
{
    return journal_path(s, ns, name);
}

static bool add_u64_string(cJSON *o, const char *field, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    return cJSON_AddStringToObject(o, field, num) != NULL;
}

int hb_rjournal_write(hb_state *s, const hb_rjournal *j, hb_err *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *vols = NULL;
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "namespace", j->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", j->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "dir", j->dir) != NULL;
        ok &= cJSON_AddStringToObject(root, "phase", j->renaming ? "rename" : "write") != NULL;
        ok &= (vols = cJSON_AddArrayToObject(root, "volumes")) != NULL;
    }
    for (size_t i = 0; ok && i < j->n; i++) {
        const hb_rj_volume *v = &j->vols[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(vols, o);
        ok = ok && cJSON_AddStringToObject(o, "name", v->name) != NULL &&
             cJSON_AddStringToObject(o, "part", v->part) != NULL &&
             cJSON_AddStringToObject(o, "final", v->final) != NULL &&
             add_u64_string(o, "dev", v->dev) && add_u64_string(o, "ino", v->ino);
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    char *dir = hb_state_path(s, HB_RESTORES_DIR, j->ns, NULL);
    char *path = journal_path(s, j->ns, j->name);
    int rc = (!text || !dir || !path) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_mkdir_p(dir, 0700, e);
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    if (rc)
        hb_err_prefix(e, "cannot save the journal of the restore into VM %s/%s", j->ns, j->name);
    hb_free(text);
    hb_free(dir);
    hb_free(path);
    return rc;
}

int hb_rjournal_remove(hb_state *s, const char *ns, const char *name, hb_err *e)
{
    char *path = journal_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot remove '%s': %s", path,
                       strerror(errno));
    hb_free(path);
    return rc;
}

/* ---- recovery ---- */

typedef struct jvol {
    const char *name, *part, *final;
    uint64_t dev, ino;
} jvol;

static int get_u64_string(const cJSON *o, const char *field, uint64_t *out, hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(o, field, true, &s, JOURNAL_WHAT, e);
    if (rc)
        return rc;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: %s is not a number", JOURNAL_WHAT, field);
    *out = v;
    return 0;
}

/* A journal only ever names DIR/.<vol>.raw.part-<hex> and DIR/<vol>.raw. */
static bool paths_are_a_restores(const char *dir, const jvol *v)
{
    size_t dl = strlen(dir);
    if (!hb_name_valid(v->name) || dir[0] != '/')
        return false;
    char *final = hb_asprintf("%s/%s.raw", dir, v->name);
    char *prefix = hb_asprintf("%s/.%s.raw.part-", dir, v->name);
    bool ok = final && prefix && strcmp(v->final, final) == 0 &&
              strncmp(v->part, prefix, strlen(prefix)) == 0 &&
              strspn(v->part + strlen(prefix), "0123456789abcdef") ==
                  strlen(v->part + strlen(prefix)) &&
              strlen(v->part) > dl + 1;
    hb_free(final);
    hb_free(prefix);
    return ok;
}

/* The restore completed (VM registered with exactly these files) and only
 * the journal was left behind. */
static bool vm_owns_files(hb_state *s, const char *ns, const char *name, const jvol *v,
                          size_t n)
{
    harvbk_vm *vm = NULL;
    hb_err e;
    hb_err_clear(&e);
    if (hb_catalog_get(s, ns, name, &vm, &e) != 0)
        return false;
    bool all = true;
    for (size_t i = 0; all && i < n; i++) {
        const hb_vm_volume *vv = hb_vm_find_volume(vm, v[i].name);
        all = vv && vv->path && strcmp(vv->path, v[i].final) == 0;
    }
    harvbk_vm_free(vm);
    return all;
}

static int undo(hb_state *s, const char *ns, const char *name, const cJSON *root, hb_err *e)
{
    const char *jns = NULL, *jname = NULL, *dir = NULL, *phase = NULL;
    int rc = hb_json_get_str(root, "namespace", true, &jns, JOURNAL_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "name", true, &jname, JOURNAL_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "dir", true, &dir, JOURNAL_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "phase", true, &phase, JOURNAL_WHAT, e);
    if (rc == 0 && (strcmp(jns, ns) != 0 || strcmp(jname, name) != 0))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s names another VM", JOURNAL_WHAT);
    bool renaming = rc == 0 && strcmp(phase, "rename") == 0;
    if (rc == 0 && !renaming && strcmp(phase, "write") != 0)
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unknown phase \"%s\"", JOURNAL_WHAT, phase);
    const cJSON *vols = root ? cJSON_GetObjectItemCaseSensitive(root, "volumes") : NULL;
    if (rc == 0 && !cJSON_IsArray(vols))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: volumes is not an array", JOURNAL_WHAT);
    size_t n = rc == 0 ? (size_t)cJSON_GetArraySize(vols) : 0;
    jvol *v = n ? hb_calloc(n, sizeof *v) : NULL;
    if (n && !v)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(vols, (int)i);
        rc = cJSON_IsObject(o) ? 0 : hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad volume", JOURNAL_WHAT);
        if (rc == 0)
            rc = hb_json_get_str(o, "name", true, &v[i].name, JOURNAL_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "part", true, &v[i].part, JOURNAL_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "final", true, &v[i].final, JOURNAL_WHAT, e);
        if (rc == 0)
            rc = get_u64_string(o, "dev", &v[i].dev, e);
        if (rc == 0)
            rc = get_u64_string(o, "ino", &v[i].ino, e);
        if (rc == 0 && !paths_are_a_restores(dir, &v[i]))
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unexpected paths for volume %s",
                           JOURNAL_WHAT, v[i].name);
    }
    if (rc == 0 && renaming && vm_owns_files(s, ns, name, v, n)) {
        hb_log_debug(s->log, "restore into VM %s/%s had completed; its journal is removed",
                     ns, name);
        n = 0;
    }
    unsigned removed = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (unlink(v[i].part) == 0)
            removed++;
        else if (errno != ENOENT)
            rc = hb_seterr(e, hb_errno_code(errno), "cannot remove '%s': %s", v[i].part,
                           strerror(errno));
        struct stat sb;
        /* a final file is this restore's only while it is the partial file's inode */
        if (rc == 0 && renaming && lstat(v[i].final, &sb) == 0 && S_ISREG(sb.st_mode) &&
            (uint64_t)sb.st_dev == v[i].dev && (uint64_t)sb.st_ino == v[i].ino) {
            if (unlink(v[i].final) == 0)
                removed++;
            else if (errno != ENOENT)
                rc = hb_seterr(e, hb_errno_code(errno), "cannot remove '%s': %s", v[i].final,
                               strerror(errno));
        }
    }
    if (rc == 0 && removed) {
        hb_err ignore;
        hb_fsync_dir(dir, &ignore);
        hb_log_warn(s->log, "restore into VM %s/%s was interrupted; removed %u file(s) it "
                    "had written in '%s'", ns, name, removed, dir);
    }
    hb_free(v);
    return rc;
}

int hb_rjournal_recover(hb_state *s, const char *ns, const char *name, hb_err *e)
{
    char *path = journal_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, JOURNAL_MAX, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        cJSON *root = NULL;
        rc = hb_json_parse(b.data, b.len, JOURNAL_WHAT, &root, e);
        if (rc == 0 && !cJSON_IsObject(root))
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", JOURNAL_WHAT);
        const char *mode = NULL;
        if (rc == 0)
            rc = hb_json_get_str(root, "mode", false, &mode, JOURNAL_WHAT, e);
        if (rc == 0 && mode && strcmp(mode, "replace") == 0)
            rc = hb_rr_recover(s, ns, name, root, e);
        else if (rc == 0 && mode)
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unknown mode \"%s\"", JOURNAL_WHAT, mode);
        else if (rc == 0)
            rc = undo(s, ns, name, root, e);
        cJSON_Delete(root);
        if (rc == HARVBK_E_CORRUPT) {
            /* written atomically, so this is damage from outside: nothing in
             * it can be trusted to delete files; keep the files, drop it */
            hb_log_warn(s->log, "%s: %s; ignored", path, e->msg);
            hb_err_clear(e);
            rc = 0;
        }
        if (rc == 0 && unlink(path) != 0 && errno != ENOENT)
            rc = hb_seterr(e, hb_errno_code(errno), "cannot remove '%s': %s", path,
                           strerror(errno));
        if (rc)
            hb_err_prefix(e, "cannot clean up after an interrupted restore into VM %s/%s", ns,
                          name);
    }
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

static int rjournal_scan_one(const char *ns, const char *name, void *ud)
{
    hb_state *s = ud;
    int fd = -1;
    hb_err re;
    hb_err_clear(&re);
    int rc = hb_restore_lock_try(s, ns, name, &fd, &re);
    if (rc == HARVBK_E_BUSY)
        return 0; /* its restore is running in a live process */
    if (rc == 0)
        rc = hb_rjournal_recover(s, ns, name, &re);
    hb_restore_lock_release(s, ns, name, fd);
    if (rc)
        hb_log_warn(s->log, "%s", re.msg);
    return 0;
}

int hb_rjournal_scan(hb_state *s, hb_err *e)
{
    char *top = hb_state_path(s, HB_RESTORES_DIR, NULL, NULL);
    int rc = hb_state_walk(top, NULL, "the restore journals", rjournal_scan_one, s, e);
    hb_free(top);
    return rc;
}
