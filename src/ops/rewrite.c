/*
 * ops/rewrite.c - the metadata rewrite hook of restores: the handle the hook
 * gets (harvbk_metadata_rewrite_*) and the default hook, which understands a
 * KubeVirt VirtualMachine JSON document (harvbk/restore.h describes exactly
 * what it changes). Anything it does not understand stays byte for byte.
 */
#include "ops.h"
#include "../core/json.h"

#include <stdio.h>
#include <stdlib.h>
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
    bool dflt = cb == harvbk_metadata_rewrite_default;
    int rc = cb(rw, payload);
    if (rc > 0 || (rc < 0 && strcmp(harvbk_error_name(rc), "HARVBK_E_UNKNOWN") == 0))
        rc = HARVBK_E_ERROR; /* not one of ours */
    if (rc == HARVBK_E_UNSUPPORTED && dflt)
        return hb_seterr(e, rc, "the default metadata rewrite cannot change this VirtualMachine "
                         "document without altering other values or guessing (an object key "
                         "contains \\u0000, or an object has the same key twice); give a "
                         "metadata rewrite hook of your own");
    if (rc == HARVBK_E_INVALID && dflt)
        return hb_seterr(e, rc, "the default metadata rewrite refuses this document: it has "
                         "bytes JSON does not allow where they are (between its tokens a byte "
                         "that is not JSON whitespace, e.g. a form feed or vertical tab, or a "
                         "raw NUL byte inside a string); give a metadata rewrite hook of your "
                         "own or fix the document");
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
    if (!rw)
        return hb_fail(HARVBK_E_INVALID, "%s: rw is NULL", __func__);
    if (!data && len)
        return hb_fail(HARVBK_E_INVALID, "%s: data is NULL but len is %zu", __func__, len);
    if (len > HARVBK_VM_METADATA_MAX)
        return hb_fail(HARVBK_E_INVALID, "%s: %zu bytes are over the %u byte limit of VM metadata",
                       __func__, len, (unsigned)HARVBK_VM_METADATA_MAX);
    hb_buf b = HB_BUF_INIT;
    if (len && hb_buf_append(&b, data, len) != 0)
        return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
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

/* ---- keeping every value the rewrite does not touch exactly as it was ----
 *
 * cJSON holds numbers as doubles (an integer above 2^53 would come back
 * rounded, 1.0 as 1) and strings as C strings (an escaped NUL would cut one
 * short). Before anything is changed, every number, and every string value
 * holding an escaped NUL, becomes a raw node carrying its original text, so
 * that printing gives it back byte for byte. The original text is found by a
 * scan of the (valid) document: its value tokens come in the order of a
 * pre-order walk of the tree. */

typedef struct lexer {
    const char *p, *end;
} lexer;

/* The whitespace of JSON (RFC 8259): the only bytes the scan below skips
 * between tokens. */
static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Between tokens cJSON skips every byte up to 32 (form feed, vertical tab,
 * other control bytes, NUL), not only JSON's four. The scan must agree with
 * the parser exactly on what is a token and what is a key, or it pairs
 * values with the wrong keys; rather than imitate the parser's leniency, a
 * document with such a byte outside its strings is refused. A single NUL
 * ending the document (hb_json_parse accepts it) is not between tokens.
 * Inside a string cJSON also takes a raw NUL byte (JSON allows none) and
 * cuts the string there: nothing could print that value back, so a raw NUL
 * inside a string is refused as well. */
static bool lenient_bytes(const char *p, const char *end)
{
    if (end > p && end[-1] == '\0')
        end--;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            p++;
            while (p < end && *p != '"') {
                if (*p == '\0')
                    return true;
                p += *p == '\\' && p + 1 < end ? 2 : 1;
            }
            if (p < end)
                p++;
            continue;
        }
        if (c < 0x20 && !json_ws((char)c))
            return true;
        p++;
    }
    return false;
}

/* Next number or string *value* (not a key) of the document: its text in
 * [*tok, *tok + *len), *is_num set. false at the end. */
static bool next_value_token(lexer *lx, const char **tok, size_t *len, bool *is_num)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == '"') {
            const char *s = lx->p++;
            while (lx->p < lx->end && *lx->p != '"')
                lx->p += *lx->p == '\\' && lx->p + 1 < lx->end ? 2 : 1;
            if (lx->p < lx->end)
                lx->p++; /* the closing quote */
            const char *q = lx->p;
            while (q < lx->end && json_ws(*q))
                q++;
            if (q < lx->end && *q == ':')
                continue; /* an object key */
            *tok = s;
            *len = (size_t)(lx->p - s);
            *is_num = false;
            return true;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            const char *s = lx->p;
            while (lx->p < lx->end && *lx->p && strchr("0123456789+-.eE", *lx->p))
                lx->p++;
            *tok = s;
            *len = (size_t)(lx->p - s);
            *is_num = true;
            return true;
        }
        lx->p++;
    }
    return false;
}

static bool has_nul_escape(const char *s, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (s[i] == '\\' && s[i + 1] == '\\') {
            i++; /* an escaped backslash */
            continue;
        }
        if (s[i] == '\\' && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
    }
    return false;
}

static bool to_raw(cJSON *it, const char *tok, size_t len)
{
    char *raw = cJSON_malloc(len + 1);
    if (!raw)
        return false;
    memcpy(raw, tok, len);
    raw[len] = '\0';
    if (it->valuestring)
        cJSON_free(it->valuestring);
    it->valuestring = raw;
    it->type = cJSON_Raw;
    return true;
}

/* 1: done; 0: the document cannot be reprinted exactly; -1: out of memory */
static int pin_values(cJSON *it, lexer *lx)
{
    for (; it; it = it->next) {
        if (cJSON_IsNumber(it) || cJSON_IsString(it)) {
            const char *tok = NULL;
            size_t len = 0;
            bool is_num = false;
            if (!next_value_token(lx, &tok, &len, &is_num) || is_num != cJSON_IsNumber(it))
                return 0; /* cannot happen with a document cJSON accepted */
            if ((is_num || has_nul_escape(tok, len)) && !to_raw(it, tok, len))
                return -1;
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            int r = pin_values(it->child, lx);
            if (r != 1)
                return r;
        }
    }
    return 1;
}

/* An object key holding an escaped NUL (cJSON cuts it short: not reprintable). */
static bool nul_in_keys(const char *p, const char *end)
{
    lexer lx = { p, end };
    while (lx.p < lx.end) {
        if (*lx.p != '"') {
            lx.p++;
            continue;
        }
        const char *s = lx.p++;
        while (lx.p < lx.end && *lx.p != '"')
            lx.p += *lx.p == '\\' && lx.p + 1 < lx.end ? 2 : 1;
        if (lx.p < lx.end)
            lx.p++;
        const char *q = lx.p;
        while (q < lx.end && json_ws(*q))
            q++;
        if (q < lx.end && *q == ':' && has_nul_escape(s, (size_t)(lx.p - s)))
            return true;
    }
    return false;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Does an object of the tree hold the same key twice? JSON readers disagree
 * about which one counts (cJSON takes the first, Go and Python the last), so
 * a rewrite of such a document could change a value its readers never see
 * and leave the one they do. 1 yes, 0 no, -1 out of memory. */
static int dup_keys(const cJSON *it)
{
    for (; it; it = it->next) {
        if (!cJSON_IsObject(it) && !cJSON_IsArray(it))
            continue;
        if (cJSON_IsObject(it)) {
            size_t n = 0;
            for (const cJSON *c = it->child; c; c = c->next)
                n++;
            if (n > 1) {
                const char **keys = hb_malloc(n * sizeof *keys);
                if (!keys)
                    return -1;
                size_t k = 0;
                for (const cJSON *c = it->child; c; c = c->next)
                    keys[k++] = c->string ? c->string : "";
                qsort(keys, n, sizeof *keys, cmp_key);
                bool dup = false;
                for (size_t i = 1; i < n && !dup; i++)
                    dup = strcmp(keys[i - 1], keys[i]) == 0;
                hb_free(keys);
                if (dup)
                    return 1;
            }
        }
        int r = dup_keys(it->child); /* depth: cJSON's nesting limit */
        if (r)
            return r;
    }
    return 0;
}

int harvbk_metadata_rewrite_default(harvbk_metadata_rewrite *rw, void *payload)
{
    (void)payload;
    if (!rw)
        return hb_fail(HARVBK_E_INVALID, "%s: rw is NULL", __func__);
    if (!rw->in_len)
        return 0;
    cJSON *root = NULL;
    hb_err pe;
    hb_err_clear(&pe);
    if (hb_json_parse_opaque(rw->in, rw->in_len, NULL, &root, &pe) != 0 ||
        !cJSON_IsObject(root)) {
        cJSON_Delete(root); /* not a JSON object: nothing we can safely change */
        return 0;
    }
    const char *kind = str(root, "kind");
    bool is_vm = kind && strcmp(kind, "VirtualMachine") == 0;
    cJSON *meta = obj(root, "metadata");
    if (!is_vm && !meta) { /* not a Kubernetes-style object */
        cJSON_Delete(root);
        return 0;
    }
    const char *text_in = rw->in;
    if (lenient_bytes(text_in, text_in + rw->in_len)) {
        bool renames = is_vm;
        if (!is_vm) { /* refused only when something would change */
            const char *n = str(meta, "name"), *ns = str(meta, "namespace");
            renames = (n && strcmp(n, rw->src_vm) == 0 && strcmp(n, rw->vm) != 0) ||
                      (ns && strcmp(ns, rw->src_ns) == 0 && strcmp(ns, rw->ns) != 0);
        }
        cJSON_Delete(root);
        if (renames)
            return hb_fail(HARVBK_E_INVALID,
                           "%s: the document has bytes JSON does not allow where they are (a "
                           "byte between its tokens that is not JSON whitespace, e.g. a form "
                           "feed, or a raw NUL byte inside a string): it cannot be rewritten "
                           "without changing them", __func__);
        return 0;
    }
    if (nul_in_keys(text_in, text_in + rw->in_len)) {
        cJSON_Delete(root);
        if (is_vm)
            return hb_fail(HARVBK_E_UNSUPPORTED,
                           "%s: an object key of the VirtualMachine document contains \\u0000: "
                           "it cannot be rewritten without altering other values", __func__);
        return 0;
    }
    int dup = dup_keys(root);
    if (dup) {
        cJSON_Delete(root);
        if (dup < 0)
            return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
        if (is_vm)
            return hb_fail(HARVBK_E_UNSUPPORTED,
                           "%s: an object of the VirtualMachine document has the same key twice: "
                           "readers disagree about which one counts", __func__);
        return 0;
    }
    const cJSON *meta_item = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (is_vm && meta_item && !cJSON_IsObject(meta_item)) {
        /* adding names would give the document a second "metadata" */
        cJSON_Delete(root);
        return hb_fail(HARVBK_E_INVALID,
                       "%s: the VirtualMachine document's \"metadata\" is not an object", __func__);
    }
    lexer lx = { text_in, text_in + rw->in_len };
    int pinned = pin_values(root->child, &lx);
    if (pinned == 1) {
        /* every value token paired with a value of the tree, none left over
         * (else the scan and the parser disagree: nothing is trusted) */
        const char *tok;
        size_t tlen;
        bool is_num;
        if (next_value_token(&lx, &tok, &tlen, &is_num))
            pinned = 0;
    }
    if (pinned != 1) {
        cJSON_Delete(root);
        if (pinned < 0)
            return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
        if (is_vm)
            return hb_fail(HARVBK_E_UNSUPPORTED,
                           "%s: the VirtualMachine document cannot be rewritten without "
                           "altering other values", __func__);
        return 0;
    }
    bool ok = true;
    if (is_vm) {
        ok = rewrite_vm(rw, root);
    } else {
        /* only name/namespace, and only where they named the source VM */
        const char *n = str(meta, "name"), *ns = str(meta, "namespace");
        bool renames = (n && strcmp(n, rw->src_vm) == 0 && strcmp(n, rw->vm) != 0) ||
                       (ns && strcmp(ns, rw->src_ns) == 0 && strcmp(ns, rw->ns) != 0);
        if (!renames) { /* nothing to change: the document stays byte for byte */
            cJSON_Delete(root);
            return 0;
        }
        ok = rename_str(meta, "name", rw->src_vm, rw->vm) &&
             rename_str(meta, "namespace", rw->src_ns, rw->ns);
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
    int rc = harvbk_metadata_rewrite_set_output(rw, text, strlen(text));
    cJSON_free(text);
    return rc;
}
