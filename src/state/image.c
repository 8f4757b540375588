/*
 * state/image.c - harvbk_image values, their JSON document, and the image
 * registry of the state directory (state/image.h, docs/IMAGES.md).
 */
#include "image.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- validation ---- */

static bool display_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HARVBK_IMAGE_DISPLAY_NAME_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static bool url_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HARVBK_IMAGE_URL_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return false;
    return true;
}

/* Lower-case copy of a valid checksum, NULL when invalid (or OOM: *oom). */
static char *checksum_norm(const char *s, bool *oom)
{
    *oom = false;
    size_t n = strlen(s);
    if (n != 64 && n != 128)
        return NULL;
    char *c = hb_strdup(s);
    if (!c) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = c[i];
        if (ch >= 'A' && ch <= 'F')
            c[i] = (char)(ch - 'A' + 'a');
        else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            hb_free(c);
            return NULL;
        }
    }
    return c;
}

bool hb_image_ref_parse(const char *ref, const char *default_ns, char ns[64], char name[64])
{
    if (!ref)
        return false;
    const char *sl = strchr(ref, '/');
    if (!sl) {
        if (!hb_name_valid(ref) || !hb_name_valid(default_ns))
            return false;
        strcpy(ns, default_ns);
        strcpy(name, ref);
        return true;
    }
    size_t nl = (size_t)(sl - ref);
    if (nl == 0 || nl > 63 || strchr(sl + 1, '/'))
        return false;
    char tmp[64];
    memcpy(tmp, ref, nl);
    tmp[nl] = '\0';
    if (!hb_name_valid(tmp) || !hb_name_valid(sl + 1))
        return false;
    strcpy(ns, tmp);
    strcpy(name, sl + 1);
    return true;
}

/* ---- the value ---- */

int harvbk_image_new(harvbk_image **out, const char *namespace_, const char *name)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_image_new: out is NULL");
    *out = NULL;
    hb_err e;
    if (hb_check_name("image namespace", namespace_, &e) ||
        hb_check_name("image name", name, &e))
        return hb_fail_err(&e);
    harvbk_image *img = hb_calloc(1, sizeof *img);
    if (!img)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    img->ns = hb_strdup(namespace_);
    img->name = hb_strdup(name);
    if (!img->ns || !img->name) {
        harvbk_image_free(img);
        return hb_fail(HARVBK_E_NOMEM, NULL);
    }
    *out = img;
    return 0;
}

void harvbk_image_free(harvbk_image *image)
{
    if (!image)
        return;
    hb_free(image->ns);
    hb_free(image->name);
    hb_free(image->display);
    hb_free(image->url);
    hb_free(image->checksum);
    hb_free(image);
}

static int set_str(char **slot, const char *v, bool (*valid)(const char *), const char *what)
{
    if (!v || !*v) {
        hb_free(*slot);
        *slot = NULL;
        return 0;
    }
    if (!valid(v))
        return hb_fail(HARVBK_E_INVALID, "%s", what);
    char *c = hb_strdup(v);
    if (!c)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    hb_free(*slot);
    *slot = c;
    return 0;
}

int harvbk_image_set_display_name(harvbk_image *image, const char *display_name)
{
    if (!image)
        return hb_fail(HARVBK_E_INVALID, "harvbk_image_set_display_name: image is NULL");
    return set_str(&image->display, display_name, display_valid,
                   "image display name must be 1 to 253 bytes without control characters");
}

int harvbk_image_set_url(harvbk_image *image, const char *url)
{
    if (!image)
        return hb_fail(HARVBK_E_INVALID, "harvbk_image_set_url: image is NULL");
    return set_str(&image->url, url, url_valid,
                   "image URL must be 1 to 4096 bytes of printable ASCII without spaces");
}

int harvbk_image_set_checksum(harvbk_image *image, const char *checksum)
{
    if (!image)
        return hb_fail(HARVBK_E_INVALID, "harvbk_image_set_checksum: image is NULL");
    if (!checksum || !*checksum) {
        hb_free(image->checksum);
        image->checksum = NULL;
        return 0;
    }
    bool oom;
    char *c = checksum_norm(checksum, &oom);
    if (!c)
        return oom ? hb_fail(HARVBK_E_NOMEM, NULL)
                   : hb_fail(HARVBK_E_INVALID,
                             "image checksum must be 64 (SHA-256) or 128 (SHA-512) hex digits");
    hb_free(image->checksum);
    image->checksum = c;
    return 0;
}

const char *harvbk_image_namespace(const harvbk_image *image) { return image ? image->ns : NULL; }
const char *harvbk_image_name(const harvbk_image *image) { return image ? image->name : NULL; }
const char *harvbk_image_display_name(const harvbk_image *image)
{
    return image ? image->display : NULL;
}
const char *harvbk_image_url(const harvbk_image *image) { return image ? image->url : NULL; }
const char *harvbk_image_checksum(const harvbk_image *image)
{
    return image ? image->checksum : NULL;
}

int hb_image_dup(harvbk_image **out, const harvbk_image *src)
{
    harvbk_image *img = NULL;
    int rc = harvbk_image_new(&img, src->ns, src->name);
    if (rc == 0)
        rc = harvbk_image_set_display_name(img, src->display);
    if (rc == 0)
        rc = harvbk_image_set_url(img, src->url);
    if (rc == 0)
        rc = harvbk_image_set_checksum(img, src->checksum);
    if (rc) {
        harvbk_image_free(img);
        img = NULL;
    }
    *out = img;
    return rc;
}

char *hb_image_encode(const harvbk_image *img)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "namespace", img->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "name", img->name) != NULL;
        if (img->display)
            ok &= cJSON_AddStringToObject(root, "display_name", img->display) != NULL;
        if (img->url)
            ok &= cJSON_AddStringToObject(root, "url", img->url) != NULL;
        if (img->checksum)
            ok &= cJSON_AddStringToObject(root, "checksum", img->checksum) != NULL;
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

int harvbk_image_to_json(const harvbk_image *image, char **out)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    if (!image)
        return hb_fail(HARVBK_E_INVALID, "%s: image is NULL", __func__);
    if (!(*out = hb_image_encode(image)))
        return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
    return 0;
}

int hb_image_decode(const void *data, size_t len, const char *what, harvbk_image **out,
                    hb_err *e)
{
    *out = NULL;
    cJSON *root = NULL;
    const char *ns = NULL, *name = NULL, *disp = NULL, *url = NULL, *sum = NULL;
    harvbk_image *img = NULL;
    int rc = hb_json_parse(data, len, what, &root, e);
    if (rc == 0 && !cJSON_IsObject(root))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", what);
    if (rc == 0)
        rc = hb_json_get_str(root, "namespace", true, &ns, what, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "name", true, &name, what, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "display_name", false, &disp, what, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "url", false, &url, what, e);
    if (rc == 0)
        rc = hb_json_get_str(root, "checksum", false, &sum, what, e);
    if (rc == 0 && (!hb_name_valid(ns) || !hb_name_valid(name)))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: namespace or name is not a DNS-1123 label",
                       what);
    if (rc == 0) {
        int r = harvbk_image_new(&img, ns, name);
        if (r == HARVBK_E_NOMEM)
            rc = hb_seterr(e, r, NULL);
    }
    if (rc == 0 && harvbk_image_set_display_name(img, disp) != 0)
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "%s: display_name is empty, longer than %u bytes or has control "
                       "characters", what, HARVBK_IMAGE_DISPLAY_NAME_MAX);
    if (rc == 0 && harvbk_image_set_url(img, url) != 0)
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "%s: url is empty, longer than %u bytes or not printable ASCII without "
                       "spaces", what, HARVBK_IMAGE_URL_MAX);
    if (rc == 0 && harvbk_image_set_checksum(img, sum) != 0)
        rc = hb_seterr(e, HARVBK_E_CORRUPT,
                       "%s: checksum is not 64 or 128 hexadecimal digits", what);
    /* an empty string where a value is optional is not what a writer writes */
    if (rc == 0 && ((disp && !*disp) || (url && !*url) || (sum && !*sum)))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: an optional field is an empty string", what);
    cJSON_Delete(root);
    if (rc)
        harvbk_image_free(img);
    else
        *out = img;
    return rc;
}

/* ---- the registry ---- */

static char *image_path(hb_state *s, const char *ns, const char *name)
{
    char *file = hb_asprintf("%s.json", name);
    char *p = file ? hb_state_path(s, HB_IMAGES_DIR, ns, file) : NULL;
    hb_free(file);
    return p;
}

static int reg_lock(hb_state *s, int *out_fd, hb_err *e)
{
    char *dir = hb_state_path(s, HB_LOCKS_DIR, NULL, NULL);
    int rc = dir ? hb_lock_file(dir, "images.lock", true, out_fd, e)
                 : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(dir);
    return rc;
}

static void reg_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int hb_image_reg_get(hb_state *s, const char *ns, const char *name, harvbk_image **out,
                     hb_err *e)
{
    *out = NULL;
    if (!hb_name_valid(ns) || !hb_name_valid(name))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid image name");
    char *path = image_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, HB_IMAGE_DOC_MAX, e);
    if (rc == HARVBK_E_NOTFOUND)
        hb_seterr(e, rc, "image %s/%s is not registered", ns, name);
    if (rc == 0)
        rc = hb_image_decode(b.data, b.len, "image registry entry", out, e);
    if (rc == 0 && (strcmp((*out)->ns, ns) != 0 || strcmp((*out)->name, name) != 0)) {
        harvbk_image_free(*out);
        *out = NULL;
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "image registry entry describes another image");
    }
    if (rc && rc != HARVBK_E_NOTFOUND)
        hb_err_prefix(e, "%s", path);
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

static int cmp_image(const void *a, const void *b)
{
    const harvbk_image *x = *(harvbk_image *const *)a, *y = *(harvbk_image *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

void harvbk_image_list_free(harvbk_image_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        harvbk_image_free(list->v[i]);
    hb_free(list->v);
    hb_free(list);
}

size_t harvbk_image_list_count(const harvbk_image_list *list) { return list ? list->n : 0; }

const harvbk_image *harvbk_image_list_at(const harvbk_image_list *list, size_t i)
{
    return list && i < list->n ? list->v[i] : NULL;
}

static int list_push(harvbk_image_list *l, harvbk_image *img, size_t *cap)
{
    if (l->n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        harvbk_image **v = hb_realloc(l->v, c * sizeof *v);
        if (!v)
            return HARVBK_E_NOMEM;
        l->v = v;
        *cap = c;
    }
    l->v[l->n++] = img;
    return 0;
}

typedef struct image_walk {
    hb_state *s;
    harvbk_image_list *l;
    size_t cap;
} image_walk;

static int image_walk_one(const char *ns, const char *name, void *ud)
{
    image_walk *w = ud;
    harvbk_image *img = NULL;
    hb_err ie;
    hb_err_clear(&ie);
    int r = hb_image_reg_get(w->s, ns, name, &img, &ie);
    if (r == HARVBK_E_NOTFOUND)
        return 0;
    if (r == HARVBK_E_NOMEM)
        return r;
    if (r) {
        hb_log_warn(w->s->log, "skipping unreadable image registry entry: %s", ie.msg);
        return 0;
    }
    if (list_push(w->l, img, &w->cap) != 0) {
        harvbk_image_free(img);
        return HARVBK_E_NOMEM;
    }
    return 0;
}

int hb_image_reg_list(hb_state *s, const char *ns, harvbk_image_list **out, hb_err *e)
{
    *out = NULL;
    image_walk w = { s, hb_calloc(1, sizeof *w.l), 0 };
    if (!w.l)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    char *top = hb_state_path(s, HB_IMAGES_DIR, NULL, NULL);
    int rc = hb_state_walk(top, ns, "the image registry", image_walk_one, &w, e);
    hb_free(top);
    if (rc) {
        if (e && e->code == 0)
            hb_seterr(e, rc, NULL);
        harvbk_image_list_free(w.l);
        return rc;
    }
    if (w.l->n > 1)
        qsort(w.l->v, w.l->n, sizeof *w.l->v, cmp_image);
    *out = w.l;
    return 0;
}

int hb_image_reg_find_display(hb_state *s, const char *ns, const char *display,
                              harvbk_image **out, hb_err *e)
{
    *out = NULL;
    harvbk_image_list *l = NULL;
    int rc = hb_image_reg_list(s, ns, &l, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i]->display && strcmp(l->v[i]->display, display) == 0) {
            *out = l->v[i];
            l->v[i] = NULL;
            break;
        }
    }
    for (size_t i = 0; i < l->n; i++)
        harvbk_image_free(l->v[i]);
    l->n = 0;
    harvbk_image_list_free(l);
    return *out ? 0 : hb_seterr(e, HARVBK_E_NOTFOUND, "no image of namespace %s is named \"%s\"",
                                ns, display);
}

int hb_image_reg_put(hb_state *s, const harvbk_image *img, hb_err *e)
{
    if (!hb_name_valid(img->ns) || !hb_name_valid(img->name))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid image name");
    int fd = -1;
    int rc = reg_lock(s, &fd, e);
    if (rc)
        return rc;
    if (img->display) {
        harvbk_image_list *l = NULL;
        rc = hb_image_reg_list(s, img->ns, &l, e);
        for (size_t i = 0; rc == 0 && i < l->n; i++) {
            const harvbk_image *other = l->v[i];
            if (other->display && strcmp(other->display, img->display) == 0 &&
                strcmp(other->name, img->name) != 0)
                rc = hb_seterr(e, HARVBK_E_EXISTS,
                               "display name \"%s\" is already used by image %s/%s", img->display,
                               other->ns, other->name);
        }
        harvbk_image_list_free(l);
    }
    char *dir = rc ? NULL : hb_state_path(s, HB_IMAGES_DIR, img->ns, NULL);
    char *path = rc ? NULL : image_path(s, img->ns, img->name);
    char *text = rc ? NULL : hb_image_encode(img);
    if (rc == 0 && (!dir || !path || !text))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0)
        rc = hb_mkdir_p(dir, 0700, e);
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    reg_unlock(fd);
    if (rc)
        hb_err_prefix(e, "cannot register image %s/%s", img->ns, img->name);
    hb_free(text);
    hb_free(path);
    hb_free(dir);
    return rc;
}

int hb_image_reg_remove(hb_state *s, const char *ns, const char *name, hb_err *e)
{
    if (!hb_name_valid(ns) || !hb_name_valid(name))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid image name");
    char *path = image_path(s, ns, name);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int fd = -1;
    int rc = reg_lock(s, &fd, e);
    if (rc == 0 && unlink(path) != 0) {
        if (errno == ENOENT)
            rc = hb_seterr(e, HARVBK_E_NOTFOUND, "image %s/%s is not registered", ns, name);
        else
            rc = hb_seterr(e, hb_errno_code(errno), "cannot unregister image %s/%s: %s", ns,
                           name, strerror(errno));
    } else if (rc == 0) {
        char *dir = hb_state_path(s, HB_IMAGES_DIR, ns, NULL);
        if (dir) {
            hb_err ignore;
            hb_fsync_dir(dir, &ignore);
            rmdir(dir); /* only succeeds when it became empty */
        }
        hb_free(dir);
    }
    reg_unlock(fd);
    hb_free(path);
    return rc;
}
