/*
 * state/catalog.c - the context's VM catalog: one JSON document per VM,
 * "vms/<ns>/<name>.json" in the state directory, each replaced atomically:
 *   {"namespace":..,"name":..,"volumes":[{"name":..,"path":..}],
 *    "metadata":"<base64>","images":[..],"power_state":"on"|"off"|"unknown"}
 * A volume restored through write callbacks has no path; it is recorded as
 * {"name":..,"size":..} ("external": its bytes live where the caller put them).
 */
#include "catalog.h"
#include "../core/base64.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VM_FILE_MAX (64u * 1024u * 1024u)
#define VM_WHAT "VM catalog entry"

static const char *power_name(harvbk_power_state s)
{
    return s == HARVBK_POWER_ON ? "on" : s == HARVBK_POWER_OFF ? "off" : "unknown";
}

static char *vm_encode(const harvbk_vm *vm)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *vols = NULL, *imgs = NULL;
    char *meta = hb_base64_encode(vm->metadata.data ? (const void *)vm->metadata.data : "",
                                  vm->metadata.len);
    bool ok = root && meta;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "namespace", vm->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", vm->name) != NULL;
        ok &= (vols = cJSON_AddArrayToObject(root, "volumes")) != NULL;
        ok &= cJSON_AddStringToObject(root, "metadata", meta) != NULL;
        ok &= (imgs = cJSON_AddArrayToObject(root, "images")) != NULL;
        ok &= cJSON_AddStringToObject(root, "power_state", power_name(vm->power)) != NULL;
    }
    for (size_t i = 0; ok && i < vm->nvols; i++) {
        const hb_vm_volume *v = &vm->vols[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(vols, o) && cJSON_AddStringToObject(o, "name", v->name);
        if (ok && v->path)
            ok = cJSON_AddStringToObject(o, "path", v->path) != NULL;
        else if (ok)
            ok = hb_json_add_u64(o, "size", v->size) != NULL;
    }
    for (size_t i = 0; ok && i < vm->nimages; i++) {
        cJSON *s = cJSON_CreateString(vm->images[i]);
        ok = s && cJSON_AddItemToArray(imgs, s);
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    hb_free(meta);
    return text;
}

static int vm_decode(const hb_buf *b, harvbk_vm **out, hb_err *e)
{
    *out = NULL;
    cJSON *root = NULL;
    const char *ns = NULL, *name = NULL, *meta = NULL, *power = NULL;
    harvbk_vm *vm = NULL;
    int rc = hb_json_parse(b->data, b->len, VM_WHAT, &root, e);
    if (rc == 0 && !cJSON_IsObject(root))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", VM_WHAT);
    if (rc == 0)
        rc = hb_json_get_str(root, "namespace", true, &ns, VM_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "name", true, &name, VM_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "metadata", false, &meta, VM_WHAT, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "power_state", false, &power, VM_WHAT, e);
    if (rc == 0 && harvbk_vm_new(&vm, ns, name) != 0)
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid VM name", VM_WHAT);
    if (rc == 0 && meta && *meta)
        rc = hb_base64_decode(meta, &vm->metadata, e);
    if (rc == 0 && power)
        vm->power = strcmp(power, "on") == 0    ? HARVBK_POWER_ON
                    : strcmp(power, "off") == 0 ? HARVBK_POWER_OFF
                                                : HARVBK_POWER_UNKNOWN;
    const cJSON *vols = root ? cJSON_GetObjectItemCaseSensitive(root, "volumes") : NULL;
    if (rc == 0 && !cJSON_IsArray(vols))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: volumes is not an array", VM_WHAT);
    const cJSON *it;
    if (rc == 0) {
        cJSON_ArrayForEach(it, vols)
        {
            const char *vn = NULL, *path = NULL;
            uint64_t size = 0;
            rc = cJSON_IsObject(it) ? 0 : hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad volume", VM_WHAT);
            if (rc == 0)
                rc = hb_json_get_str(it, "name", true, &vn, VM_WHAT, e);
            if (rc == 0)
                rc = hb_json_get_str(it, "path", false, &path, VM_WHAT, e);
            if (rc == 0 && !path)
                rc = hb_json_get_u64(it, "size", true, &size, VM_WHAT, e);
            if (rc == 0 && path && !*path)
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: empty volume path", VM_WHAT);
            if (rc == 0 && hb_vm_push_volume(vm, vn, path, size, NULL, NULL, NULL) != 0)
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad or duplicate volume \"%s\"",
                               VM_WHAT, vn);
            if (rc)
                break;
        }
    }
    const cJSON *imgs = root ? cJSON_GetObjectItemCaseSensitive(root, "images") : NULL;
    if (rc == 0 && imgs && !cJSON_IsArray(imgs))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: images is not an array", VM_WHAT);
    if (rc == 0 && imgs) {
        cJSON_ArrayForEach(it, imgs)
        {
            if (!cJSON_IsString(it) || harvbk_vm_add_image(vm, it->valuestring) != 0) {
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: bad image reference", VM_WHAT);
                break;
            }
        }
    }
    cJSON_Delete(root);
    if (rc)
        harvbk_vm_free(vm);
    else
        *out = vm;
    return rc;
}

char *hb_catalog_encode(const harvbk_vm *vm)
{
    return vm_encode(vm);
}

int hb_catalog_decode(const void *data, size_t len, harvbk_vm **out, hb_err *e)
{
    hb_buf b = { (uint8_t *)data, len, len };
    return vm_decode(&b, out, e);
}

static char *vm_path(hb_state *s, const char *ns, const char *name)
{
    char *file = hb_asprintf("%s.json", name);
    char *p = file ? hb_state_path(s, HB_VMS_DIR, ns, file) : NULL;
    hb_free(file);
    return p;
}

int hb_catalog_put(hb_state *s, const harvbk_vm *vm, bool allow_external, hb_err *e)
{
    if (vm->nvols == 0)
        return hb_seterr(e, HARVBK_E_INVALID, "VM %s/%s has no volume", vm->ns, vm->name);
    for (size_t i = 0; i < vm->nvols; i++) {
        const hb_vm_volume *v = &vm->vols[i];
        if (!v->path && !allow_external)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume %s of VM %s/%s is served by callbacks; only volumes "
                             "with a path can be registered",
                             v->name, vm->ns, vm->name);
        if (v->path && v->path[0] != '/')
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume %s of VM %s/%s: path '%s' is relative; register an "
                             "absolute path (a relative one would depend on the working "
                             "directory of every later process)",
                             v->name, vm->ns, vm->name, v->path);
    }
    char *dir = hb_state_path(s, HB_VMS_DIR, vm->ns, NULL);
    char *path = vm_path(s, vm->ns, vm->name);
    char *text = vm_encode(vm);
    int rc = (!dir || !path || !text) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_mkdir_p(dir, 0700, e);
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    if (rc)
        hb_err_prefix(e, "cannot register VM %s/%s", vm->ns, vm->name);
    hb_free(text);
    hb_free(path);
    hb_free(dir);
    return rc;
}

static int catalog_read_path(const char *path, harvbk_vm **out, hb_err *e)
{
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, VM_FILE_MAX, e);
    if (rc == 0) {
        rc = vm_decode(&b, out, e);
        if (rc)
            hb_err_prefix(e, "%s", path);
    }
    hb_buf_free(&b);
    return rc;
}

int hb_catalog_get(hb_state *s, const char *ns, const char *name, harvbk_vm **out, hb_err *e)
{
    *out = NULL;
    char *path = vm_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = catalog_read_path(path, out, e);
    if (rc == HARVBK_E_NOTFOUND)
        hb_seterr(e, rc, "VM %s/%s is not registered", ns, name);
    else if (rc == 0 && (strcmp((*out)->ns, ns) != 0 || strcmp((*out)->name, name) != 0)) {
        harvbk_vm_free(*out);
        *out = NULL;
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s describes another VM", path);
    }
    hb_free(path);
    return rc;
}

int hb_catalog_exists(hb_state *s, const char *ns, const char *name, hb_err *e)
{
    char *path = vm_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    struct stat sb;
    int rc = stat(path, &sb) == 0 ? 1 : 0;
    if (!rc && errno != ENOENT)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot look up VM %s/%s: %s", ns, name,
                       strerror(errno));
    hb_free(path);
    return rc;
}

int hb_catalog_remove(hb_state *s, const char *ns, const char *name, hb_err *e)
{
    char *path = vm_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            rc = hb_seterr(e, HARVBK_E_NOTFOUND, "VM %s/%s is not registered", ns, name);
        else
            rc = hb_seterr(e, hb_errno_code(errno), "cannot unregister VM %s/%s: %s", ns, name,
                           strerror(errno));
    } else {
        char *dir = hb_state_path(s, HB_VMS_DIR, ns, NULL);
        if (dir)
            rmdir(dir); /* only succeeds when it became empty */
        hb_free(dir);
    }
    hb_free(path);
    return rc;
}

typedef struct catalog_walk {
    hb_state *s;
    hb_catalog_cb cb;
    void *ud;
} catalog_walk;

static int catalog_walk_one(const char *ns, const char *name, void *ud)
{
    catalog_walk *w = ud;
    harvbk_vm *vm = NULL;
    hb_err ve;
    hb_err_clear(&ve);
    int vr = hb_catalog_get(w->s, ns, name, &vm, &ve);
    if (vr == HARVBK_E_NOTFOUND)
        return 0;
    if (vr) {
        hb_log_warn(w->s->log, "skipping unreadable VM catalog entry: %s", ve.msg);
        return 0;
    }
    return w->cb(vm, w->ud);
}

int hb_catalog_foreach(hb_state *s, hb_catalog_cb cb, void *ud, hb_err *e)
{
    char *top = hb_state_path(s, HB_VMS_DIR, NULL, NULL);
    catalog_walk w = { s, cb, ud };
    int rc = hb_state_walk(top, NULL, "the VM catalog", catalog_walk_one, &w, e);
    if (rc && e && e->code == 0)
        hb_seterr(e, rc, NULL);
    hb_free(top);
    return rc;
}
