/*
 * harvbk/vm.h - describing a VM: namespace/name, volumes, metadata, images.
 *
 * Names (namespaces, VM, volume, backup names) are DNS-1123 labels as
 * Kubernetes requires: 1-63 characters of [a-z0-9-], starting and ending with
 * a letter or digit. Anything else is refused with HARVBK_E_INVALID.
 *
 * Thread-safety: a harvbk_vm is a plain value; do not modify it from two
 * threads at once. Operations copy what they need when they start.
 */
#ifndef HARVBK_VM_H
#define HARVBK_VM_H

#include "common.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harvbk_vm harvbk_vm;
typedef struct harvbk_vm_list harvbk_vm_list;

/** Power state the embedding program reports for a VM. */
typedef enum harvbk_power_state {
    HARVBK_POWER_UNKNOWN = 0,
    HARVBK_POWER_ON = 1,
    HARVBK_POWER_OFF = 2
} harvbk_power_state;

/**
 * Caller-supplied volume I/O. Read exactly `len` bytes at `offset` into `buf`
 * (write: from `buf`). Return 0 on success or a negative HARVBK_E_* code.
 * Called from library worker threads, possibly concurrently for different
 * offsets of the same volume.
 * A failing callback fails the operation: a specific HARVBK_E_* code it
 * returns (e.g. HARVBK_E_IO) is the operation's result; any other non-zero
 * value (-1 = HARVBK_E_ERROR, a positive or unknown value) makes it
 * HARVBK_E_CALLBACK (since 1.1; before, HARVBK_E_ERROR or HARVBK_E_IO). The
 * operation's message names the volume, the offset and the returned value.
 * A restore calls the write callback for every byte of the volume, also for
 * runs of zeros (it passes a zeroed buffer), so the destination needs no
 * zeroing beforehand.
 */
typedef int (*harvbk_volume_read_cb)(void *buf, size_t len, uint64_t offset, void *payload);
typedef int (*harvbk_volume_write_cb)(const void *buf, size_t len, uint64_t offset,
                                      void *payload);

/** Returns 1 when `name` is a valid DNS-1123 label, else 0. */
HARVBK_API int harvbk_name_is_valid(const char *name);

/** New VM description in *out (caller frees with harvbk_vm_free()).
 *  Errors: HARVBK_E_INVALID when a name is not a DNS-1123 label. */
HARVBK_API int harvbk_vm_new(harvbk_vm **out, const char *namespace_, const char *name);
/** Free a VM description. NULL is a no-op. */
HARVBK_API void harvbk_vm_free(harvbk_vm *vm);

/** Add a volume whose bytes are in a raw image file or a block device at `path`
 *  (copied). The size is taken when an operation starts. A relative path is
 *  opened relative to the working directory at that time; harvbk_vm_register()
 *  accepts only absolute paths.
 *  Errors: HARVBK_E_INVALID (bad name), HARVBK_E_EXISTS (duplicate volume name). */
HARVBK_API int harvbk_vm_add_volume_file(harvbk_vm *vm, const char *volume, const char *path);

/** Add a volume of `size` bytes served by callbacks (either may be NULL when
 *  not needed: read for backup, write for restore). Such a VM cannot be
 *  registered in the catalog. */
HARVBK_API int harvbk_vm_add_volume_callbacks(harvbk_vm *vm, const char *volume, uint64_t size,
                                              harvbk_volume_read_cb read_cb,
                                              harvbk_volume_write_cb write_cb, void *payload);

/** Largest metadata document a VM may carry (it is stored in the manifest). */
#define HARVBK_VM_METADATA_MAX (16u * 1024u * 1024u)
/** Largest image reference, in bytes. */
#define HARVBK_VM_IMAGE_MAX 1024u

/** Set the opaque metadata document (e.g. the VM spec JSON); copied.
 *  HARVBK_E_INVALID when larger than HARVBK_VM_METADATA_MAX. */
HARVBK_API int harvbk_vm_set_metadata(harvbk_vm *vm, const void *data, size_t len);
/** Add an image reference (copied): 1..HARVBK_VM_IMAGE_MAX bytes of printable
 *  characters, else HARVBK_E_INVALID. "NS/NAME", or "NAME" in the VM's
 *  namespace, refers to an image of the context's registry (harvbk/image.h):
 *  backups record such images when they are registered, and restores need
 *  recorded images to exist or be recreated. Any other string is opaque:
 *  kept and restored as it is, never checked. */
HARVBK_API int harvbk_vm_add_image(harvbk_vm *vm, const char *image);
/** Record the power state the embedding program observes. */
HARVBK_API int harvbk_vm_set_power_state(harvbk_vm *vm, harvbk_power_state state);

/* Accessors. Returned pointers are borrowed from the VM. */
HARVBK_API const char *harvbk_vm_namespace(const harvbk_vm *vm);
HARVBK_API const char *harvbk_vm_name(const harvbk_vm *vm);
HARVBK_API size_t harvbk_vm_volume_count(const harvbk_vm *vm);
/** Name of volume i, NULL when out of range. */
HARVBK_API const char *harvbk_vm_volume_name(const harvbk_vm *vm, size_t i);
/** Path of volume i, NULL for callback volumes or when out of range. */
HARVBK_API const char *harvbk_vm_volume_path(const harvbk_vm *vm, size_t i);
/** Borrowed metadata document; *out_len receives its length (0 when unset). */
HARVBK_API const void *harvbk_vm_metadata(const harvbk_vm *vm, size_t *out_len);
HARVBK_API size_t harvbk_vm_image_count(const harvbk_vm *vm);
HARVBK_API const char *harvbk_vm_image(const harvbk_vm *vm, size_t i);
HARVBK_API harvbk_power_state harvbk_vm_power_state(const harvbk_vm *vm);

/* ---- The context's VM catalog (persisted in the state directory) ---- */

/** Save `vm` in the catalog, replacing any entry of the same namespace/name.
 *  Errors: HARVBK_E_INVALID for a VM with callback volumes, no volume, or a
 *  volume whose path is relative (the catalog outlives the caller's working
 *  directory: resolve paths first, e.g. with realpath()). */
HARVBK_API int harvbk_vm_register(harvbk_ctx *ctx, const harvbk_vm *vm);
/** Load a registered VM into *out (caller frees). HARVBK_E_NOTFOUND if absent. */
HARVBK_API int harvbk_vm_lookup(harvbk_vm **out, harvbk_ctx *ctx, const char *namespace_,
                                const char *name);
/** Remove a VM from the catalog (its volumes are not touched). */
HARVBK_API int harvbk_vm_unregister(harvbk_ctx *ctx, const char *namespace_, const char *name);
/** Update only the recorded power state of a registered VM. */
HARVBK_API int harvbk_vm_set_registered_power_state(harvbk_ctx *ctx, const char *namespace_,
                                                    const char *name, harvbk_power_state state);

/** All registered VMs, sorted by namespace then name, in *out (caller frees). */
HARVBK_API int harvbk_vm_list_get(harvbk_vm_list **out, harvbk_ctx *ctx);
HARVBK_API size_t harvbk_vm_list_count(const harvbk_vm_list *list);
/** Borrowed VM i of the list, NULL when out of range. */
HARVBK_API const harvbk_vm *harvbk_vm_list_at(const harvbk_vm_list *list, size_t i);
HARVBK_API void harvbk_vm_list_free(harvbk_vm_list *list);

#ifdef __cplusplus
}
#endif
#endif
