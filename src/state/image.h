/*
 * state/image.h - harvbk_image values and the context's image registry in
 * the state directory (image.c, docs/IMAGES.md):
 *
 *   <state>/images/<ns>/<name>.json   one image, replaced atomically
 *   <state>/locks/images.lock         blocking flock around every change
 *                                     (display names unique per namespace)
 *
 * The JSON document of a registry file is also the image record a backup
 * writes to its store (docs/FORMAT.md "Images"):
 *   {"namespace":..,"name":..,"display_name":..,"url":..,"checksum":..}
 * Depends on core only.
 */
#ifndef HB_STATE_IMAGE_H
#define HB_STATE_IMAGE_H

#include "state.h"

#define HB_IMAGES_DIR "images"
/* Largest image document read (registry file or store record). */
#define HB_IMAGE_DOC_MAX (64u * 1024u)

struct harvbk_image {
    char *ns, *name;
    char *display;   /* NULL: unset */
    char *url;       /* NULL: unset */
    char *checksum;  /* lower-case hex; NULL: unset */
};

struct harvbk_image_list {
    harvbk_image **v;
    size_t n;
};

/* An image reference of a VM: "NS/NAME", or "NAME" in namespace default_ns.
 * false (ns/name untouched) for anything else: an opaque reference. */
bool hb_image_ref_parse(const char *ref, const char *default_ns, char ns[64], char name[64]);

int hb_image_dup(harvbk_image **out, const harvbk_image *src);
/* The JSON document (new string, NULL on OOM) and back. decode is strict:
 * HARVBK_E_CORRUPT naming `what` for a missing or invalid field. */
char *hb_image_encode(const harvbk_image *img);
int hb_image_decode(const void *data, size_t len, const char *what, harvbk_image **out,
                    hb_err *e);

/* The registry. put: HARVBK_E_EXISTS when another image of the namespace has
 * the same display name. get: HARVBK_E_NOTFOUND when absent, HARVBK_E_CORRUPT
 * when the file does not describe ns/name. remove: HARVBK_E_NOTFOUND. */
int hb_image_reg_put(hb_state *s, const harvbk_image *img, hb_err *e);
int hb_image_reg_get(hb_state *s, const char *ns, const char *name, harvbk_image **out,
                     hb_err *e);
int hb_image_reg_remove(hb_state *s, const char *ns, const char *name, hb_err *e);
/* Every readable image (unreadable files are logged and skipped), sorted by
 * namespace then name; ns non-NULL: only that namespace. */
int hb_image_reg_list(hb_state *s, const char *ns, harvbk_image_list **out, hb_err *e);
/* The registered image of namespace ns whose display name is `display` (the
 * first by name should there be several): HARVBK_E_NOTFOUND when none. */
int hb_image_reg_find_display(hb_state *s, const char *ns, const char *display,
                              harvbk_image **out, hb_err *e);

#endif
