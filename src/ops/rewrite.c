/*
 * ops/rewrite.c - the metadata rewrite hook of restores: the handle the hook
 * gets (harvbk_metadata_rewrite_*) and the default hook, which understands a
 * KubeVirt VirtualMachine JSON document (harvbk/restore.h describes exactly
 * what it changes). Anything it does not understand stays byte for byte.
 */
#include "ops.h"
#include "../core/json.h"

#include <string.h>

void hb_rewrite_init(harvbk_metadata_rewrite *rw)
{
    memset(rw, 0, sizeof *rw);
}

void hb_rewrite_clear(harvbk_metadata_rewrite *rw)
{
    hb_buf_free(&rw->out);
    memset(rw, 0, sizeof *rw);
}

int hb_rewrite_run(harvbk_metadata_rewrite *rw, harvbk_metadata_rewrite_cb cb, void *payload,
                   hb_buf *result, hb_err *e)
{
    if (!cb)
        cb = harvbk_metadata_rewrite_default;
    int rc = cb(rw, payload);
    if (rc > 0 || (rc < 0 && strcmp(harvbk_error_name(rc), "HARVBK_E_UNKNOWN") == 0))
        rc = HARVBK_E_ERROR; /* not one of ours */
    if (rc)
        return hb_seterr(e, rc, "the metadata rewrite hook failed: %s", harvbk_strerror(rc));
    hb_buf_reset(result);
    const void *src = rw->has_out ? rw->out.data : rw->in;
    size_t len = rw->has_out ? rw->out.len : rw->in_len;
    if (len && hb_buf_append(result, src, len) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    return 0;
}

/* ---- accessors ---- */

const void *harvbk_metadata_rewrite_input(const harvbk_metadata_rewrite *rw, size_t *out_len)
{
    if (out_len)
        *out_len = rw ? rw->in_len : 0;
    return rw && rw->in_len ? rw->in : NULL;
}

const char *harvbk_metadata_rewrite_source_namespace(const harvbk_metadata_rewrite *rw)
{
    return rw ? rw->src_ns : NULL;
}

const char *harvbk_metadata_rewrite_source_vm(const harvbk_metadata_rewrite *rw)
{
    return rw ? rw->src_vm : NULL;
}

const char *harvbk_metadata_rewrite_namespace(const harvbk_metadata_rewrite *rw)
{
    return rw ? rw->ns : NULL;
}

const char *harvbk_metadata_rewrite_vm(const harvbk_metadata_rewrite *rw)
{
    return rw ? rw->vm : NULL;
}

int harvbk_metadata_rewrite_keep_mac(const harvbk_metadata_rewrite *rw)
{
    return rw && rw->keep_mac ? 1 : 0;
}

int harvbk_metadata_rewrite_replace(const harvbk_metadata_rewrite *rw)
{
    return rw && rw->replace ? 1 : 0;
}

size_t harvbk_metadata_rewrite_volume_count(const harvbk_metadata_rewrite *rw)
{
    return rw ? rw->nvols : 0;
}

const char *harvbk_metadata_rewrite_volume_name(const harvbk_metadata_rewrite *rw, size_t i)
{
    return rw && i < rw->nvols ? rw->vols[i].name : NULL;
}

const char *harvbk_metadata_rewrite_volume_claim(const harvbk_metadata_rewrite *rw, size_t i)
{
    return rw && i < rw->nvols ? rw->vols[i].claim : NULL;
}

const char *harvbk_metadata_rewrite_volume_path(const harvbk_metadata_rewrite *rw, size_t i)
{
    return rw && i < rw->nvols ? rw->vols[i].path : NULL;
}

int harvbk_metadata_rewrite_set_output(harvbk_metadata_rewrite *rw, const void *data, size_t len)
{
    if (!rw || (!data && len) || len > HARVBK_VM_METADATA_MAX)
        return HARVBK_E_INVALID;
    hb_buf b = HB_BUF_INIT;
    if (len && hb_buf_append(&b, data, len) != 0)
        return HARVBK_E_NOMEM;
    hb_buf_free(&rw->out);
    rw->out = b;
    rw->has_out = true;
    return 0;
}

/* ---- the default: KubeVirt VirtualMachine ---- */

static cJSON *obj(cJSON *o, const char *key)
{
    cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsObject(it) ? it : NULL;
}

static cJSON *arr(cJSON *o, const char *key)
{
    cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsArray(it) ? it : NULL;
}

static const char *str(cJSON *o, const char *key)
{
    cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Set o[key] to the string s (replacing whatever is there). */
static bool set_str(cJSON *o, const char *key, const char *s)
{
    cJSON *n = cJSON_CreateString(s);
    if (!n)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(o, key, n) != 0;
    return cJSON_AddItemToObject(o, key, n) != 0;
}

/* o[key] = to where it is the string `from` */
static bool rename_str(cJSON *o, const char *key, const char *from, const char *to)
{
    const char *cur = str(o, key);
    if (!cur || strcmp(cur, from) != 0)
        return true;
    return set_str(o, key, to);
}

static const char *claim_of(const harvbk_metadata_rewrite *rw, const char *volume)
{
    for (size_t i = 0; volume && i < rw->nvols; i++)
        if (strcmp(rw->vols[i].name, volume) == 0)
            return rw->vols[i].claim;
    return NULL;
}

static bool rename_labels(cJSON *meta, const char *from, const char *to)
{
    cJSON *labels = obj(meta, "labels");
    static const char *const keys[] = { "kubevirt.io/vm", "harvesterhci.io/vmName" };
    bool ok = true;
    for (size_t i = 0; labels && ok && i < HB_ARRAY_LEN(keys); i++)
        ok = rename_str(labels, keys[i], from, to);
    return ok;
}

static bool rewrite_vm(const harvbk_metadata_rewrite *rw, cJSON *root)
{
    cJSON *meta = obj(root, "metadata");
    bool ok = true;
    if (!meta) {
        ok = (meta = cJSON_AddObjectToObject(root, "metadata")) != NULL;
        if (!ok)
            return false;
    }
    ok = set_str(meta, "name", rw->vm) && set_str(meta, "namespace", rw->ns);
    /* set by the API server for the object that existed; a new one gets its own */
    static const char *const server_set[] = { "uid", "resourceVersion", "creationTimestamp",
                                               "generation", "managedFields", "selfLink" };
    for (size_t i = 0; i < HB_ARRAY_LEN(server_set); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(meta, server_set[i]);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "status");
    ok = ok && rename_labels(meta, rw->src_vm, rw->vm);

    cJSON *spec = obj(root, "spec");
    cJSON *tmpl = obj(spec, "template");
    cJSON *tspec = obj(tmpl, "spec");
    ok = ok && rename_labels(obj(tmpl, "metadata"), rw->src_vm, rw->vm);

    /* volume references: restored volumes get their claims */
    cJSON *vols = arr(tspec, "volumes");
    cJSON *dvts = arr(spec, "dataVolumeTemplates");
    cJSON *v;
    cJSON_ArrayForEach(v, vols)
    {
        if (!ok || !cJSON_IsObject(v))
            continue;
        const char *claim = claim_of(rw, str(v, "name"));
        if (!claim)
            continue;
        cJSON *pvc = obj(v, "persistentVolumeClaim");
        if (pvc && str(pvc, "claimName"))
            ok = set_str(pvc, "claimName", claim);
        cJSON *dv = obj(v, "dataVolume");
        const char *old = dv ? str(dv, "name") : NULL;
        if (ok && old) {
            cJSON *t;
            cJSON_ArrayForEach(t, dvts)
            {
                if (ok && cJSON_IsObject(t))
                    ok = rename_str(obj(t, "metadata"), "name", old, claim);
            }
            ok = ok && set_str(dv, "name", claim);
        }
    }
    if (ok && !rw->keep_mac) {
        cJSON *ifs = arr(obj(obj(tspec, "domain"), "devices"), "interfaces");
        cJSON *it;
        cJSON_ArrayForEach(it, ifs)
        {
            if (cJSON_IsObject(it))
                cJSON_DeleteItemFromObjectCaseSensitive(it, "macAddress");
        }
    }
    return ok;
}

int harvbk_metadata_rewrite_default(harvbk_metadata_rewrite *rw, void *payload)
{
    (void)payload;
    if (!rw)
        return HARVBK_E_INVALID;
    if (!rw->in_len)
        return 0;
    cJSON *root = cJSON_ParseWithLength((const char *)rw->in, rw->in_len);
    if (!cJSON_IsObject(root)) { /* not a JSON object: nothing we can safely change */
        cJSON_Delete(root);
        return 0;
    }
    bool ok = true;
    const char *kind = str(root, "kind");
    if (kind && strcmp(kind, "VirtualMachine") == 0) {
        ok = rewrite_vm(rw, root);
    } else {
        cJSON *meta = obj(root, "metadata");
        if (!meta) { /* not a Kubernetes-style object */
            cJSON_Delete(root);
            return 0;
        }
        ok = rename_str(meta, "name", rw->src_vm, rw->vm) &&
             rename_str(meta, "namespace", rw->src_ns, rw->ns);
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return HARVBK_E_NOMEM;
    int rc = harvbk_metadata_rewrite_set_output(rw, text, strlen(text));
    cJSON_free(text);
    return rc;
}
