/*
 * harvbk/quota.h - limits on the space that snapshots consume in the
 * context's local snapshot store, per namespace and per VM.
 *
 * Usage of a VM (of a namespace) is the stored size of the distinct chunks
 * that its Ready snapshots reference: every chunk id that appears in an index
 * of a committed snapshot of the VM (of any VM of the namespace) is counted
 * once, with the size of its chunk object in the store (32-byte header +
 * compressed payload, docs/FORMAT.md section 4). Holes and zero chunks are
 * never stored and count 0; manifests and indexes are not counted. A chunk
 * shared by two snapshots of the VM counts once; a chunk shared by two VMs
 * counts for each VM and once for their namespace. Usage is computed from the
 * store each time it is asked for, so it is exact after any create or delete.
 *
 * Enforcement: a snapshot or a backup of a VM is refused with HARVBK_E_QUOTA
 * when the VM's or its namespace's usage is already at or over its limit. A
 * running snapshot whose new data would push a usage over its limit fails with
 * HARVBK_E_QUOTA, removes the chunks it wrote, and leaves the usage unchanged.
 * No limits are set by default. Limits live in the state directory.
 *
 * Thread-safety: all functions may be called from any thread with a shared
 * context; limits are updated atomically across processes.
 */
#ifndef HARVBK_QUOTA_H
#define HARVBK_QUOTA_H

#include "common.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Set the snapshot space limit of namespace `namespace_` (vm NULL) or of VM
 * namespace_/vm to `limit_bytes` (0 is a valid limit: no snapshot may be
 * taken). Replaces an earlier limit. Errors: HARVBK_E_INVALID (bad name),
 * HARVBK_E_IO.
 */
HARVBK_API int harvbk_quota_set(harvbk_ctx *ctx, const char *namespace_, const char *vm,
                                uint64_t limit_bytes);

/** Remove the limit of a namespace (vm NULL) or VM. HARVBK_E_NOTFOUND when
 *  none was set. */
HARVBK_API int harvbk_quota_clear(harvbk_ctx *ctx, const char *namespace_, const char *vm);

/**
 * Limit and current usage of a namespace (vm NULL) or VM. *out_has_limit
 * (may be NULL) receives 1 when a limit is set, else 0 (then *out_limit is 0);
 * *out_limit and *out_usage may be NULL.
 */
HARVBK_API int harvbk_quota_get(harvbk_ctx *ctx, const char *namespace_, const char *vm,
                                int *out_has_limit, uint64_t *out_limit, uint64_t *out_usage);

typedef struct harvbk_quota_list harvbk_quota_list;

/** Every namespace and VM that has a limit or snapshots, with limit and usage,
 *  sorted by namespace, then the namespace itself before its VMs, then VM
 *  name, in *out (caller frees). */
HARVBK_API int harvbk_quota_list_get(harvbk_quota_list **out, harvbk_ctx *ctx);
HARVBK_API size_t harvbk_quota_list_count(const harvbk_quota_list *list);
/** Namespace of entry i (borrowed), NULL when out of range. */
HARVBK_API const char *harvbk_quota_list_namespace(const harvbk_quota_list *list, size_t i);
/** VM name of entry i (borrowed), or NULL for a namespace entry / out of range. */
HARVBK_API const char *harvbk_quota_list_vm(const harvbk_quota_list *list, size_t i);
/** 1 when entry i has a limit, else 0. */
HARVBK_API int harvbk_quota_list_has_limit(const harvbk_quota_list *list, size_t i);
HARVBK_API uint64_t harvbk_quota_list_limit(const harvbk_quota_list *list, size_t i);
HARVBK_API uint64_t harvbk_quota_list_usage(const harvbk_quota_list *list, size_t i);
/** Number of Ready snapshots counted in entry i. */
HARVBK_API size_t harvbk_quota_list_snapshots(const harvbk_quota_list *list, size_t i);
HARVBK_API void harvbk_quota_list_free(harvbk_quota_list *list);

#ifdef __cplusplus
}
#endif
#endif
