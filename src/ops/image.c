/*
 * ops/image.c - VM images (docs/IMAGES.md): the public registry functions on
 * a context, the image hook, the image records a backup or snapshot writes
 * to its store, and how a restore finds or recreates the images it needs.
 */
#include "ops.h"
#include "../state/image.h"
#include "../state/vm.h"

#include <stdio.h>
#include <string.h>

/* ---- the registry ---- */

static int check_ns_name(const char *ns, const char *name, hb_err *e)
{
    int rc = hb_check_name("image namespace", ns, e);
    return rc ? rc : hb_check_name("image name", name, e);
}

int harvbk_image_register(harvbk_ctx *ctx, const harvbk_image *image)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!image)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: image is NULL", __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_image_reg_put(&ctx->state, image, &e);
    if (rc == 0)
        hb_log_info(&ctx->log, "image %s/%s registered", image->ns, image->name);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_image_lookup(harvbk_image **out, harvbk_ctx *ctx, const char *namespace_,
                        const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = check_ns_name(namespace_, name, &e);
    if (rc == 0)
        rc = hb_image_reg_get(&ctx->state, namespace_, name, out, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_image_unregister(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = check_ns_name(namespace_, name, &e);
    if (rc == 0)
        rc = hb_image_reg_remove(&ctx->state, namespace_, name, &e);
    if (rc == 0)
        hb_log_info(&ctx->log, "image %s/%s unregistered", namespace_, name);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_image_list_get(harvbk_image_list **out, harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_image_reg_list(&ctx->state, NULL, out, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_ctx_set_image_hook(harvbk_ctx *ctx, harvbk_image_hook hook, void *payload)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    pthread_mutex_lock(&ctx->mu);
    ctx->image_hook = hook;
    ctx->image_hook_payload = hook ? payload : NULL;
    pthread_mutex_unlock(&ctx->mu);
    return 0;
}

/* ---- backups and snapshots: the records ---- */

void hb_images_free(hb_img_rec *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        harvbk_image_free(v[i].img);
    hb_free(v);
}

int hb_images_collect(harvbk_ctx *ctx, const harvbk_vm *vm, const char *what, hb_img_rec **out,
                      size_t *out_n, hb_err *e)
{
    *out = NULL;
    *out_n = 0;
    if (!vm->nimages)
        return 0;
    hb_img_rec *v = hb_calloc(vm->nimages, sizeof *v);
    if (!v)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < vm->nimages; i++) {
        char ns[64], name[64];
        if (!hb_image_ref_parse(vm->images[i], vm->ns, ns, name)) {
            hb_log_debug(&ctx->log, "%s: image reference \"%s\" is not NS/NAME or NAME: kept "
                         "as it is, no image recorded", what, vm->images[i]);
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(v[k].img->ns, ns) == 0 && strcmp(v[k].img->name, name) == 0;
        if (dup)
            continue;
        hb_err ie;
        hb_err_clear(&ie);
        int r = hb_image_reg_get(&ctx->state, ns, name, &v[n].img, &ie);
        if (r == 0) {
            n++;
            continue;
        }
        if (r == HARVBK_E_NOMEM) {
            rc = hb_seterr(e, r, NULL);
            break;
        }
        /* Not registered (or unreadable): no record, so that restores keep
         * the reference as it is, as before images were recorded (a 1.0
         * program never registers images; its restores must not start to
         * need them). */
        if (r == HARVBK_E_NOTFOUND)
            hb_log_warn(&ctx->log, "%s: image %s/%s of VM %s/%s is not registered in this "
                        "context: not recorded (a restore keeps the reference unchecked)",
                        what, ns, name, vm->ns, vm->name);
        else
            hb_log_warn(&ctx->log, "%s: image %s/%s of VM %s/%s: %s; not recorded", what, ns,
                        name, vm->ns, vm->name, ie.msg);
    }
    if (rc) {
        hb_images_free(v, n);
        return rc;
    }
    *out = v;
    *out_n = n;
    return 0;
}

int hb_images_store_write(harvbk_ctx *ctx, hb_store *st, const hb_img_rec *v, size_t n,
                          const char *what, hb_err *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const harvbk_image *img = v[i].img;
        char *key = hb_key_image(img->ns, img->name);
        char *text = key ? hb_image_encode(img) : NULL;
        if (!key || !text)
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        else
            rc = hb_store_meta_put(st, key, text, strlen(text), NULL, e); /* sealed when encrypted */
        if (rc)
            hb_err_prefix(e, "%s: cannot record image %s/%s", what, img->ns, img->name);
        else
            hb_log_debug(&ctx->log, "%s: image %s/%s recorded in '%s'", what, img->ns, img->name,
                         key);
        hb_free(key);
        hb_free(text);
    }
    return rc;
}

/* ---- restores: find or recreate ---- */

/* "image NS/NAME" plus ' (display name "X")' when known. */
static void describe(char *buf, size_t size, const harvbk_image *img)
{
    if (img->display)
        snprintf(buf, size, "image %s/%s (display name \"%s\")", img->ns, img->name,
                 img->display);
    else
        snprintf(buf, size, "image %s/%s", img->ns, img->name);
}

/* The record of ns/name in st; HARVBK_E_NOTFOUND (no message) when the
 * store has none. */
static int read_record(hb_store *st, const char *ns, const char *name, const char *where,
                       harvbk_image **out, hb_err *e)
{
    *out = NULL;
    char *key = hb_key_image(ns, name);
    if (!key)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    char what[200];
    snprintf(what, sizeof what, "image record '%s' in the %s", key, where);
    int rc = hb_store_meta_get(st, key, &b, HB_IMAGE_DOC_MAX, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
    } else if (rc) {
        hb_err_prefix(e, "cannot read the %s", what);
    } else {
        rc = hb_image_decode(b.data, b.len, what, out, e);
        if (rc == 0 && (strcmp((*out)->ns, ns) != 0 || strcmp((*out)->name, name) != 0)) {
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s describes image %s/%s", what, (*out)->ns,
                           (*out)->name);
            harvbk_image_free(*out);
            *out = NULL;
        }
    }
    hb_buf_free(&b);
    hb_free(key);
    return rc;
}

typedef struct resolved {
    char ns[64], name[64];       /* as referenced */
    char rns[64], rname[64];     /* the image the restored VM uses */
} resolved;

/* Find or recreate image ns/name; *r gets the image to use. */
static int resolve_one(harvbk_ctx *ctx, hb_store *st, const char *where, const char *src,
                       resolved *r, hb_err *e)
{
    harvbk_image *img = NULL, *rec = NULL;
    strcpy(r->rns, r->ns);
    strcpy(r->rname, r->name);
    int rc = hb_image_reg_get(&ctx->state, r->ns, r->name, &img, e);
    if (rc == 0) { /* exists by name: used as it is */
        harvbk_image_free(img);
        return 0;
    }
    if (rc != HARVBK_E_NOTFOUND)
        return hb_err_prefix(e, "%s refers to image %s/%s", src, r->ns, r->name);
    hb_err_clear(e);
    rc = read_record(st, r->ns, r->name, where, &rec, e);
    if (rc == HARVBK_E_NOTFOUND) {
        /* the writer did not have it registered (or wrote no records: an
         * older library): the reference is kept unchecked, as in 1.0 */
        hb_log_info(&ctx->log, "%s: image %s/%s has no record in the %s: the reference is "
                    "kept as it is, unchecked", src, r->ns, r->name, where);
        return 0;
    }
    if (rc)
        return hb_err_prefix(e, "%s refers to image %s/%s", src, r->ns, r->name);
    char desc[400];
    describe(desc, sizeof desc, rec);
    if (rec->display) { /* exists by display name in its namespace */
        rc = hb_image_reg_find_display(&ctx->state, rec->ns, rec->display, &img, e);
        if (rc == 0) {
            strcpy(r->rname, img->name);
            hb_log_info(&ctx->log, "%s: %s is image %s/%s of this context (same display name)",
                        src, desc, img->ns, img->name);
            harvbk_image_free(img);
            harvbk_image_free(rec);
            return 0;
        }
        if (rc != HARVBK_E_NOTFOUND) {
            harvbk_image_free(rec);
            return hb_err_prefix(e, "%s refers to %s", src, desc);
        }
        hb_err_clear(e);
    }
    pthread_mutex_lock(&ctx->mu);
    harvbk_image_hook hook = ctx->image_hook;
    void *payload = ctx->image_hook_payload;
    pthread_mutex_unlock(&ctx->mu);
    if (!hook) {
        rc = hb_seterr(e, HARVBK_E_IMAGE,
                       "%s refers to %s, which this context does not have, and no image hook "
                       "is set to recreate it: register the image first (harvbk_image_register, "
                       "'harvbk image register') or set an image hook; nothing was restored",
                       src, desc);
        harvbk_image_free(rec);
        return rc;
    }
    hb_log_info(&ctx->log, "%s: calling the image hook to recreate %s", src, desc);
    int hr = hook(rec, payload); /* no library mutex held */
    if (hr != 0) {
        rc = hb_seterr(e, HARVBK_E_IMAGE,
                       "%s refers to %s, which this context does not have, and the image hook "
                       "refused to recreate it (it returned %d); nothing was restored",
                       src, desc, hr);
        harvbk_image_free(rec);
        return rc;
    }
    /* the hook may have registered it itself: that one is used as it is */
    rc = hb_image_reg_get(&ctx->state, r->ns, r->name, &img, e);
    if (rc == 0) {
        harvbk_image_free(img);
    } else {
        hb_err_clear(e);
        rc = hb_image_reg_put(&ctx->state, rec, e);
        if (rc) {
            char why[HB_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", e->msg);
            rc = hb_seterr(e, HARVBK_E_IMAGE, "%s refers to %s: the image hook recreated it, "
                           "but it cannot be registered: %s; nothing was restored", src, desc,
                           why);
        }
    }
    if (rc == 0)
        hb_log_info(&ctx->log, "%s: %s recreated by the image hook and registered", src, desc);
    harvbk_image_free(rec);
    return rc;
}

int hb_images_resolve(harvbk_ctx *ctx, hb_store *st, const char *where, const hb_manifest *m,
                      const char *src, const char *new_ns, char ***out, size_t *out_n,
                      hb_err *e)
{
    *out = NULL;
    *out_n = 0;
    if (!m->nimages)
        return 0;
    char **refs = hb_calloc(m->nimages, sizeof *refs);
    resolved *rs = hb_calloc(m->nimages, sizeof *rs);
    size_t nr = 0;
    int rc = (!refs || !rs) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < m->nimages; i++, n++) {
        const char *ref = m->images[i];
        char ns[64], name[64];
        if (!hb_image_ref_parse(ref, m->vm_ns, ns, name)) {
            /* opaque (or hostile): kept as it is, never looked up */
            if (!(refs[i] = hb_strdup(ref)))
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            continue;
        }
        resolved *r = NULL;
        for (size_t k = 0; k < nr && !r; k++)
            if (strcmp(rs[k].ns, ns) == 0 && strcmp(rs[k].name, name) == 0)
                r = &rs[k];
        if (!r) {
            r = &rs[nr++];
            strcpy(r->ns, ns);
            strcpy(r->name, name);
            if ((rc = resolve_one(ctx, st, where, src, r, e)))
                break;
        }
        /* the same image, and the reference still means it in the new VM's
         * namespace: unchanged; else the explicit NS/NAME of the image used */
        bool same = strcmp(r->rns, r->ns) == 0 && strcmp(r->rname, r->name) == 0 &&
                    (strchr(ref, '/') || strcmp(r->ns, new_ns) == 0);
        refs[i] = same ? hb_strdup(ref) : hb_asprintf("%s/%s", r->rns, r->rname);
        if (!refs[i])
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_free(rs);
    if (rc) {
        for (size_t i = 0; refs && i < m->nimages; i++)
            hb_free(refs[i]);
        hb_free(refs);
        return rc;
    }
    *out = refs;
    *out_n = n;
    return 0;
}
