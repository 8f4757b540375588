/*
 * state/rreplace.c - the crash-safe swap of a replace-restore.
 *
 * The restore holds the VM's restore lock ("locks/<ns>_<vm>.restore.lock")
 * and keeps "restores/<ns>/<vm>.json" in the state directory:
 *
 *   {"mode":"replace","namespace":..,"name":..,"phase":"write"|"swap"|"commit",
 *    "policy":"delete"|"retain",
 *    "volumes":[{"name":..,"final":"/abs/disk.raw","part":"/abs/.disk.raw.restore-1a2b3c4d",
 *                "aside":"/abs/.disk.raw.old-5e6f7a8b"|"","retain":"/abs/disk.raw.retained-..."|"",
 *                "dev":"2049","ino":"1234"}],
 *    "drop":[{"path":..,"retain":..|""}],
 *    "vm":"<the VM's new catalog entry, JSON text>"}
 *
 * Phase "write": the new data goes into the partial files beside the old
 * volumes; the old volumes are untouched. Phase "swap" (saved once every
 * partial file is written, synced and read back correct, with each partial
 * file's device and inode): each old volume is renamed to its hidden "aside"
 * name, then its partial file to the volume's path. Phase "commit" (saved
 * once every volume is swapped and the directories synced; "vm" is set): the
 * catalog entry is replaced, then the previous volumes ("aside" files, and
 * the "drop" volumes the source does not have) are removed (policy delete)
 * or renamed to their "retain" name (policy retain); then the journal goes.
 *
 * A process killed in "write" or "swap" is rolled back by the next open (or
 * the next restore of that VM): a file at a volume's path that is the
 * partial file's inode is removed, the aside file is renamed back, partial
 * files are removed - the VM's old volumes are exactly where they were. One
 * killed in "commit" is rolled forward. Every path is checked to have the
 * shape above before anything is touched.
 */
#include "rjournal.h"
#include "catalog.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RR_WHAT "replace journal"

static bool add_u64_string(cJSON *o, const char *field, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    return cJSON_AddStringToObject(o, field, num) != NULL;
}

int hb_rrjournal_write(hb_state *s, const hb_rrjournal *j, hb_err *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *vols = NULL, *drops = NULL;
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "mode", "replace") != NULL;
        ok &= cJSON_AddStringToObject(root, "namespace", j->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", j->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "phase", j->phase) != NULL;
        ok &= cJSON_AddStringToObject(root, "policy", j->retain ? "retain" : "delete") != NULL;
        ok &= (vols = cJSON_AddArrayToObject(root, "volumes")) != NULL;
        ok &= (drops = cJSON_AddArrayToObject(root, "drop")) != NULL;
        if (ok && j->vm_json)
            ok = cJSON_AddStringToObject(root, "vm", j->vm_json) != NULL;
    }
    for (size_t i = 0; ok && i < j->n; i++) {
        const hb_rr_vol *v = &j->vols[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(vols, o);
        ok = ok && cJSON_AddStringToObject(o, "name", v->name) &&
             cJSON_AddStringToObject(o, "final", v->final) &&
             cJSON_AddStringToObject(o, "part", v->part) &&
             cJSON_AddStringToObject(o, "aside", v->aside ? v->aside : "") &&
             cJSON_AddStringToObject(o, "retain", v->retain ? v->retain : "") &&
             add_u64_string(o, "dev", v->dev) && add_u64_string(o, "ino", v->ino);
    }
    for (size_t i = 0; ok && i < j->ndrops; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(drops, o);
        ok = ok && cJSON_AddStringToObject(o, "path", j->drops[i].path) &&
             cJSON_AddStringToObject(o, "retain", j->drops[i].retain ? j->drops[i].retain : "");
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    char *dir = hb_state_path(s, HB_RESTORES_DIR, j->ns, NULL);
    char *path = hb_rjournal_path(s, j->ns, j->name);
    int rc = (!text || !dir || !path) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_mkdir_p(dir, 0700, e);
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    if (rc)
        hb_err_prefix(e, "cannot save the journal of the restore over VM %s/%s", j->ns, j->name);
    hb_free(text);
    hb_free(dir);
    hb_free(path);
    return rc;
}

/* ---- file steps ---- */

static char *dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    return sl && sl != path ? hb_strndup(path, (size_t)(sl - path)) : hb_strdup("/");
}

/* fsync the directory of every volume (and dropped volume) */
static int sync_dirs(const hb_rrjournal *j, hb_err *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < j->n + j->ndrops; i++) {
        const char *p = i < j->n ? j->vols[i].final : j->drops[i - j->n].path;
        char *d = dir_of(p);
        if (!d)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        rc = hb_fsync_dir(d, e);
        hb_free(d);
    }
    return rc;
}

static bool is_inode(const char *path, uint64_t dev, uint64_t ino)
{
    struct stat sb;
    return (dev || ino) && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
           (uint64_t)sb.st_dev == dev && (uint64_t)sb.st_ino == ino;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static int sys_fail(hb_err *e, const char *what, const char *path)
{
    return hb_seterr(e, hb_errno_code(errno), "cannot %s '%s': %s", what, path,
                     strerror(errno));
}

int hb_rr_swap(hb_state *s, const hb_rrjournal *j, hb_err *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        const hb_rr_vol *v = &j->vols[i];
        if (v->aside && rename(v->final, v->aside) != 0)
            rc = sys_fail(e, "move aside", v->final);
        else if (hb_rename_noreplace(v->part, v->final) != 0)
            rc = sys_fail(e, "move the restored volume into place as", v->final);
        else
            hb_log_debug(s->log, "restore over VM %s/%s: volume %s swapped in at '%s'", j->ns,
                         j->name, v->name, v->final);
    }
    if (rc == 0)
        rc = sync_dirs(j, e);
    return rc;
}

int hb_rr_rollback(hb_state *s, const hb_rrjournal *j, hb_err *e)
{
    bool swapping = strcmp(j->phase, "write") != 0;
    int rc = 0;
    unsigned restored = 0;
    for (size_t k = j->n; rc == 0 && k > 0; k--) {
        const hb_rr_vol *v = &j->vols[k - 1];
        /* the new data at the volume's path: only if it is our partial file */
        if (swapping && is_inode(v->final, v->dev, v->ino) && unlink(v->final) != 0)
            rc = sys_fail(e, "remove", v->final);
        if (rc == 0 && v->aside && exists(v->aside) && !exists(v->final)) {
            if (rename(v->aside, v->final) != 0)
                rc = sys_fail(e, "put back", v->final);
            else
                restored++;
        }
        if (rc == 0 && unlink(v->part) != 0 && errno != ENOENT)
            rc = sys_fail(e, "remove", v->part);
    }
    if (rc == 0) {
        hb_err ignore;
        sync_dirs(j, &ignore);
        hb_log_warn(s->log, "restore over VM %s/%s rolled back (%s phase): its previous "
                    "volumes are in place%s", j->ns, j->name, j->phase,
                    restored ? " again" : "");
    }
    return rc;
}

int hb_rr_finish(hb_state *s, const hb_rrjournal *j, char ***retained, size_t *nretained,
                 hb_err *e)
{
    harvbk_vm *vm = NULL;
    int rc = j->vm_json ? hb_catalog_decode(j->vm_json, strlen(j->vm_json), &vm, e)
                        : hb_seterr(e, HARVBK_E_CORRUPT, "%s: no VM in phase commit", RR_WHAT);
    if (rc == 0 && (strcmp(vm->ns, j->ns) != 0 || strcmp(vm->name, j->name) != 0))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s describes another VM", RR_WHAT);
    if (rc == 0) {
        pthread_mutex_lock(&s->cat_mu);
        rc = hb_catalog_put(s, vm, true, e);
        pthread_mutex_unlock(&s->cat_mu);
    }
    harvbk_vm_free(vm);
    if (rc)
        return rc;
    size_t cap = j->n + j->ndrops, nr = 0;
    char **kept = retained && cap ? hb_calloc(cap, sizeof *kept) : NULL;
    for (size_t i = 0; rc == 0 && i < cap; i++) {
        const char *from = i < j->n ? j->vols[i].aside : j->drops[i - j->n].path;
        const char *to = i < j->n ? j->vols[i].retain : j->drops[i - j->n].retain;
        if (!from || !exists(from))
            continue; /* no previous file, or already done */
        if (j->retain && to && *to) {
            if (hb_rename_noreplace(from, to) != 0)
                rc = sys_fail(e, "retain the previous volume as", to);
            else if (kept)
                kept[nr++] = hb_strdup(to);
        } else if (!j->retain && unlink(from) != 0 && errno != ENOENT) {
            rc = sys_fail(e, "remove the previous volume", from);
        }
    }
    if (rc == 0) {
        hb_err ignore;
        sync_dirs(j, &ignore);
        hb_log_info(s->log, "restore over VM %s/%s committed; previous volumes %s", j->ns,
                    j->name, j->retain ? "retained" : "deleted");
    }
    if (retained) {
        *retained = kept;
        *nretained = nr;
    } else {
        hb_free(kept);
    }
    return rc;
}

/* ---- recovery ---- */

/* DIR/.<base>.<tag>-<hex> for final = DIR/<base> */
static bool hidden_beside(const char *final, const char *p, const char *tag)
{
    const char *sl = strrchr(final, '/');
    if (!sl || !p)
        return false;
    char *prefix = hb_asprintf("%.*s/.%s.%s-", (int)(sl - final), final, sl + 1, tag);
    bool ok = prefix && strncmp(p, prefix, strlen(prefix)) == 0 && p[strlen(prefix)] &&
              strspn(p + strlen(prefix), "0123456789abcdef") == strlen(p + strlen(prefix));
    hb_free(prefix);
    return ok;
}

static bool retain_of(const char *path, const char *r)
{
    if (!*r)
        return true;
    size_t n = strlen(path);
    return strncmp(r, path, n) == 0 && strncmp(r + n, ".retained-", 10) == 0 && r[n + 10] &&
           strspn(r + n + 10, "0123456789TZ-") == strlen(r + n + 10);
}

static int get_u64_string(const cJSON *o, const char *field, uint64_t *out, hb_err *e)
{
    const char *s = NULL;
    int rc = hb_json_get_str(o, field, true, &s, RR_WHAT, e);
    if (rc)
        return rc;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: %s is not a number", RR_WHAT, field);
    *out = v;
    return 0;
}

int hb_rr_recover(hb_state *s, const char *ns, const char *name, const cJSON *root,
                  hb_err *e)
{
    const char *jns = NULL, *jname = NULL, *phase = NULL, *policy = NULL, *vm_json = NULL;
    int rc = hb_json_get_str(root, "namespace", true, &jns, RR_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "name", true, &jname, RR_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "phase", true, &phase, RR_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "policy", true, &policy, RR_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "vm", false, &vm_json, RR_WHAT, e);
    if (rc == 0 && (strcmp(jns, ns) != 0 || strcmp(jname, name) != 0))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s names another VM", RR_WHAT);
    if (rc == 0 && strcmp(phase, "write") && strcmp(phase, "swap") && strcmp(phase, "commit"))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unknown phase \"%s\"", RR_WHAT, phase);
    if (rc == 0 && strcmp(policy, "retain") && strcmp(policy, "delete"))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unknown policy \"%s\"", RR_WHAT, policy);
    const cJSON *vols = root ? cJSON_GetObjectItemCaseSensitive(root, "volumes") : NULL;
    const cJSON *drops = root ? cJSON_GetObjectItemCaseSensitive(root, "drop") : NULL;
    if (rc == 0 && (!cJSON_IsArray(vols) || !cJSON_IsArray(drops)))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: volumes or drop is not an array", RR_WHAT);
    size_t n = rc == 0 ? (size_t)cJSON_GetArraySize(vols) : 0;
    size_t nd = rc == 0 ? (size_t)cJSON_GetArraySize(drops) : 0;
    hb_rr_vol *v = n ? hb_calloc(n, sizeof *v) : NULL;
    hb_rr_drop *d = nd ? hb_calloc(nd, sizeof *d) : NULL;
    if ((n && !v) || (nd && !d))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(vols, (int)i);
        const char *aside = NULL, *retain = NULL;
        rc = cJSON_IsObject(o) ? 0 : hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad volume", RR_WHAT);
        if (rc == 0)
            rc = hb_json_get_str(o, "name", true, &v[i].name, RR_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "final", true, &v[i].final, RR_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "part", true, &v[i].part, RR_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "aside", true, &aside, RR_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "retain", true, &retain, RR_WHAT, e);
        if (rc == 0)
            rc = get_u64_string(o, "dev", &v[i].dev, e);
        if (rc == 0)
            rc = get_u64_string(o, "ino", &v[i].ino, e);
        if (rc == 0) {
            v[i].aside = *aside ? aside : NULL;
            v[i].retain = *retain ? retain : NULL;
            if (!hb_name_valid(v[i].name) || v[i].final[0] != '/' ||
                !hidden_beside(v[i].final, v[i].part, "restore") ||
                (v[i].aside && !hidden_beside(v[i].final, v[i].aside, "old")) ||
                !retain_of(v[i].final, retain))
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unexpected paths for volume %s",
                               RR_WHAT, v[i].name);
        }
    }
    for (size_t i = 0; rc == 0 && i < nd; i++) {
        const cJSON *o = cJSON_GetArrayItem(drops, (int)i);
        const char *retain = NULL;
        rc = cJSON_IsObject(o) ? 0 : hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad drop", RR_WHAT);
        if (rc == 0)
            rc = hb_json_get_str(o, "path", true, &d[i].path, RR_WHAT, e);
        if (rc == 0)
            rc = hb_json_get_str(o, "retain", true, &retain, RR_WHAT, e);
        if (rc == 0) {
            d[i].retain = *retain ? retain : NULL;
            if (d[i].path[0] != '/' || !retain_of(d[i].path, retain))
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: unexpected drop path", RR_WHAT);
        }
    }
    if (rc == 0) {
        hb_rrjournal j = { ns, name, phase, strcmp(policy, "retain") == 0, v, n, d, nd, vm_json };
        if (strcmp(phase, "commit") == 0) {
            rc = hb_rr_finish(s, &j, NULL, NULL, e);
            if (rc == 0)
                hb_log_warn(s->log, "restore over VM %s/%s was interrupted after its commit; "
                            "it was completed", ns, name);
        } else {
            rc = hb_rr_rollback(s, &j, e);
        }
    }
    hb_free(v);
    hb_free(d);
    return rc;
}
