/* fuzz_image_record - image records: the image area of a store
 * (images/<ns>/<name>.json, written by backups, read by restores and syncs)
 * and the image registry of the state directory, one document
 * (hb_image_decode, state/image.h, docs/IMAGES.md); and the image references
 * of a VM (hb_image_ref_parse). What decodes re-encodes to the same text. */
#include "fuzz.h"
#include "state/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harvbk_image *img = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_image_decode(data, size, "image record", &img, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0] && img == NULL);
    } else {
        FUZZ_CHECK(img && hb_name_valid(img->ns) && hb_name_valid(img->name));
        char *t1 = hb_image_encode(img);
        FUZZ_CHECK(t1 != NULL);
        harvbk_image *img2 = NULL;
        rc = hb_image_decode(t1, strlen(t1), "image record", &img2, &e);
        if (rc)
            fprintf(stderr, "cannot read back %s: %s\n", t1, e.msg);
        FUZZ_CHECK(rc == 0);
        char *t2 = hb_image_encode(img2);
        FUZZ_CHECK(t2 != NULL && strcmp(t1, t2) == 0);
        hb_free(t1);
        hb_free(t2);
        harvbk_image_free(img2);
        harvbk_image_free(img);
    }
    /* the first line as an image reference of a VM */
    const uint8_t *nl = memchr(data, '\n', size);
    char *ref = fuzz_cstr(data, nl ? (size_t)(nl - data) : size);
    char ns[64], name[64];
    if (hb_image_ref_parse(ref, "default", ns, name)) {
        FUZZ_CHECK(hb_name_valid(ns) && hb_name_valid(name));
        FUZZ_CHECK(strchr(ref, '/') ? strlen(ref) == strlen(ns) + 1 + strlen(name)
                                    : !strcmp(ref, name) && !strcmp(ns, "default"));
    }
    free(ref);
    return 0;
}
