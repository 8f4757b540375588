/*
 * harvbk/image.h - VM images: the context's image registry, and the hook
 * that recreates a missing image when a backup or snapshot is restored
 * (docs/IMAGES.md).
 *
 * An image is named like a VM: NAMESPACE/NAME (DNS-1123 labels), with an
 * optional display name, URL and checksum (the fields of a Harvester
 * VirtualMachineImage). A VM refers to images with harvbk_vm_add_image():
 * a reference "NS/NAME", or "NAME" for an image of the VM's own namespace.
 * Other reference strings stay opaque: they are stored and restored as they
 * are and never checked.
 *
 * A backup (snapshot) records every image its VM refers to in the target's
 * (snapshot store's) images area, from this registry. Restoring it in a
 * context where an image is missing - neither registered by name nor, in
 * the image's namespace, by the recorded display name - calls the context's
 * image hook (harvbk_ctx_set_image_hook) to recreate it; with no hook, or
 * when the hook refuses, the restore fails with HARVBK_E_IMAGE before
 * anything is written.
 *
 * Thread-safety: a harvbk_image and a harvbk_image_list are plain values;
 * the registry functions may be called from any thread with a shared
 * context (registrations are serialised across threads and processes).
 */
#ifndef HARVBK_IMAGE_H
#define HARVBK_IMAGE_H

#include "common.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harvbk_image harvbk_image;
typedef struct harvbk_image_list harvbk_image_list;

/** Longest display name, in bytes. */
#define HARVBK_IMAGE_DISPLAY_NAME_MAX 253u
/** Longest URL, in bytes. */
#define HARVBK_IMAGE_URL_MAX 4096u

/** New image description NAMESPACE/NAME in *out, no display name, URL or
 *  checksum (caller frees with harvbk_image_free()).
 *  Errors: HARVBK_E_INVALID when a name is not a DNS-1123 label. */
HARVBK_API int harvbk_image_new(harvbk_image **out, const char *namespace_, const char *name);
/** Free an image description. NULL is a no-op. */
HARVBK_API void harvbk_image_free(harvbk_image *image);

/** Set the display name (copied): 1..HARVBK_IMAGE_DISPLAY_NAME_MAX bytes, no
 *  control characters (UTF-8 is fine). NULL or "" clears it. Else
 *  HARVBK_E_INVALID and the image is unchanged. */
HARVBK_API int harvbk_image_set_display_name(harvbk_image *image, const char *display_name);
/** Set the URL the image was made from (copied): 1..HARVBK_IMAGE_URL_MAX
 *  bytes of printable ASCII without spaces. NULL or "" clears it. Else
 *  HARVBK_E_INVALID. */
HARVBK_API int harvbk_image_set_url(harvbk_image *image, const char *url);
/** Set the checksum (copied): 64 (SHA-256) or 128 (SHA-512) hex digits,
 *  kept in lower case. NULL or "" clears it. Else HARVBK_E_INVALID. */
HARVBK_API int harvbk_image_set_checksum(harvbk_image *image, const char *checksum);

/* Accessors; returned strings are borrowed from the image. The optional ones
 * return NULL when unset. */
HARVBK_API const char *harvbk_image_namespace(const harvbk_image *image);
HARVBK_API const char *harvbk_image_name(const harvbk_image *image);
HARVBK_API const char *harvbk_image_display_name(const harvbk_image *image);
HARVBK_API const char *harvbk_image_url(const harvbk_image *image);
HARVBK_API const char *harvbk_image_checksum(const harvbk_image *image);

/** JSON object describing the image in *out (free with harvbk_string_free()):
 *  {"namespace":..,"name":..,"display_name":..,"url":..,"checksum":..}; the
 *  keys of unset fields are absent. It is also the format of the records
 *  (docs/FORMAT.md "Images"). */
HARVBK_API int harvbk_image_to_json(const harvbk_image *image, char **out);

/* ---- The context's image registry (persisted in the state directory) ---- */

/**
 * Save `image` in the context's registry, replacing an image of the same
 * namespace/name. Display names are unique within a namespace: an image of
 * another name with the same display name is HARVBK_E_EXISTS.
 * Errors: HARVBK_E_INVALID, HARVBK_E_EXISTS, HARVBK_E_IO.
 */
HARVBK_API int harvbk_image_register(harvbk_ctx *ctx, const harvbk_image *image);
/** Load registered image NAMESPACE/NAME into *out (caller frees).
 *  HARVBK_E_NOTFOUND when it is not registered. */
HARVBK_API int harvbk_image_lookup(harvbk_image **out, harvbk_ctx *ctx, const char *namespace_,
                                   const char *name);
/** Remove image NAMESPACE/NAME from the registry (HARVBK_E_NOTFOUND when it
 *  is not registered). Backups and snapshots that refer to it are not
 *  touched; their records in the target stay. */
HARVBK_API int harvbk_image_unregister(harvbk_ctx *ctx, const char *namespace_,
                                       const char *name);

/** All registered images, sorted by namespace then name, in *out (caller
 *  frees with harvbk_image_list_free()). */
HARVBK_API int harvbk_image_list_get(harvbk_image_list **out, harvbk_ctx *ctx);
HARVBK_API size_t harvbk_image_list_count(const harvbk_image_list *list);
/** Borrowed image i of the list, NULL when out of range. */
HARVBK_API const harvbk_image *harvbk_image_list_at(const harvbk_image_list *list, size_t i);
/** NULL is a no-op. */
HARVBK_API void harvbk_image_list_free(harvbk_image_list *list);

/**
 * The image hook: recreate `image` (as recorded with the backup or snapshot
 * being restored: namespace, name, and the display name, URL and checksum
 * when they were known) in the embedding system. Return 0 once the image
 * exists there: the library then registers it in the context's registry
 * (unless the hook registered NAMESPACE/NAME itself, which is then used as
 * it is). Any other value refuses: the restore fails with HARVBK_E_IMAGE.
 *
 * It is called on the thread calling harvbk_restore_create() or
 * harvbk_snapshot_restore(), before that call returns and before anything
 * is written, at most once per missing image, with no library mutex held
 * (the restore already holds its file locks on the backup and the VM, so a
 * slow hook delays only that restore, and another restore into the same VM
 * is refused meanwhile). `image` is borrowed for the duration of the call.
 * The hook may call the library (e.g. harvbk_image_register()) but must not
 * restore into the same VM, nor free the context.
 */
typedef int (*harvbk_image_hook)(const harvbk_image *image, void *payload);

/** Set the context's image hook (NULL clears it; `payload` is passed to it).
 *  Without a hook, a restore that needs a missing image fails with
 *  HARVBK_E_IMAGE naming it. */
HARVBK_API int harvbk_ctx_set_image_hook(harvbk_ctx *ctx, harvbk_image_hook hook, void *payload);

#ifdef __cplusplus
}
#endif
#endif
