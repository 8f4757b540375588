/*
 * harvbk/restore.h - restoring a backup as a new VM.
 *
 * Thread-safety: may be called from any thread with a shared context.
 */
#ifndef HARVBK_RESTORE_H
#define HARVBK_RESTORE_H

#include "common.h"
#include "context.h"
#include "operation.h"
#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HARVBK_RESTORE_OPTIONS_VERSION 1

typedef struct harvbk_restore_options {
    unsigned int version;          /* HARVBK_RESTORE_OPTIONS_VERSION */
    unsigned int flags;            /* none defined yet; must be 0 */
    const char *new_vm_namespace;  /* required */
    const char *new_vm_name;       /* required; must not exist in the catalog */
    /* Where volumes are written: DIR/VOLNAME.raw (sparse). Required unless
     * `target_vm` supplies write callbacks for every volume. */
    const char *target_dir;
    /* Optional: a VM description whose volumes (matched by name) have write
     * callbacks; those volumes are written through them instead of files. */
    const harvbk_vm *target_vm;
    harvbk_progress_cb progress_cb;
    void *progress_payload;
} harvbk_restore_options;

#define HARVBK_RESTORE_OPTIONS_INIT { HARVBK_RESTORE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_restore_options_init(harvbk_restore_options *opts, unsigned int version);

/**
 * Start restoring backup NAMESPACE/NAME as a new VM. Each chunk is checked
 * before it is written; a missing or corrupt chunk ends the operation with
 * HARVBK_E_CHUNK and the partial volume files are removed (a restore never
 * leaves wrong bytes in place). On success the new VM (volumes pointing at the
 * restored files, the backup's metadata and images) is registered in the
 * catalog. Errors at start: HARVBK_E_INVALID, HARVBK_E_VERSION, HARVBK_E_NOTARGET,
 * HARVBK_E_NOTFOUND, HARVBK_E_EXISTS (the new VM or a volume file exists, or
 * another process restores into that VM), HARVBK_E_STATE (backup not Ready),
 * HARVBK_E_BUSY (the backup is being deleted). A restore killed midway is
 * undone by the next harvbk_ctx_open() (or restore into that VM): no partial
 * file, and no volume without its registered VM, is left behind.
 */
HARVBK_API int harvbk_restore_create(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                                     const char *backup_name,
                                     const harvbk_restore_options *opts);

#ifdef __cplusplus
}
#endif
#endif
