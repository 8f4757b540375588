/*
 * harvbk/restore.h - restoring a backup or a snapshot, as a new VM or over an
 * existing one (docs/SNAPSHOTS.md "Restore").
 *
 * New VM: the volumes are written to new files and the VM is registered with
 * its metadata rewritten (name, namespace, volume references; MAC addresses
 * cleared unless HARVBK_RESTORE_KEEP_MAC). Refused with HARVBK_E_EXISTS when a
 * VM of that name exists. A snapshot is only restored into its own namespace
 * (else HARVBK_E_CROSS_NAMESPACE).
 *
 * Replace (HARVBK_RESTORE_REPLACE): only the VM the backup or snapshot was
 * taken of (same namespace and name; another VM: HARVBK_E_INVALID), which must
 * be registered and reported powered off
 * (harvbk_vm_set_registered_power_state(); else HARVBK_E_VM_RUNNING). Each
 * volume is written beside the old one and swapped in only once every volume
 * is complete and verified; the previous volumes are then deleted or retained
 * (backups: delete by default; snapshots: only retain, else
 * HARVBK_E_DELETION_POLICY). A process killed before the swap completed
 * leaves the old volumes in place (the next harvbk_ctx_open() rolls back).
 *
 * Images (harvbk/image.h, docs/IMAGES.md): before anything is written, the
 * images the backup or snapshot recorded are found in the context's image
 * registry or recreated through its image hook, else HARVBK_E_IMAGE.
 *
 * While a restore reads a backup or snapshot, deleting it is refused
 * (HARVBK_E_BUSY); only one restore writes a given VM at a time.
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

#define HARVBK_RESTORE_OPTIONS_VERSION 2

/** Flags of harvbk_restore_options.flags. */
#define HARVBK_RESTORE_KEEP_MAC 0x1u /* new VM: keep the MAC addresses of the metadata;
                                        refused (HARVBK_E_KEEP_MAC) while the source VM
                                        is registered */
#define HARVBK_RESTORE_REPLACE 0x2u  /* replace the existing VM new_vm_namespace/
                                        new_vm_name instead of creating one */

/** What happens to the previous volumes of a replaced VM. Numbers fixed forever. */
typedef enum harvbk_deletion_policy {
    HARVBK_DELETION_POLICY_DEFAULT = 0, /* backups: delete; snapshots: retain */
    HARVBK_DELETION_POLICY_DELETE = 1,  /* removed once the restore completed (backups only) */
    HARVBK_DELETION_POLICY_RETAIN = 2   /* kept as "<old path>.retained-<UTC time>" */
} harvbk_deletion_policy;

/*
 * The hook that rewrites the metadata document of a restored VM. It is called
 * once on the operation's thread, before any volume is written, with a handle
 * describing the restore; it reads the input document and sets the output with
 * harvbk_metadata_rewrite_set_output() (not setting it keeps the input as it
 * is). Return 0, or a negative HARVBK_E_* code to fail the restore (nothing is
 * written then). A hook can call harvbk_metadata_rewrite_default() itself.
 */
typedef struct harvbk_metadata_rewrite harvbk_metadata_rewrite;
typedef int (*harvbk_metadata_rewrite_cb)(harvbk_metadata_rewrite *rw, void *payload);

typedef struct harvbk_restore_options {
    unsigned int version;          /* HARVBK_RESTORE_OPTIONS_VERSION */
    unsigned int flags;            /* HARVBK_RESTORE_* */
    /* The VM to create (must not exist in the catalog), or with
     * HARVBK_RESTORE_REPLACE the registered VM to replace (the VM the backup
     * or snapshot was taken of). Required. */
    const char *new_vm_namespace;
    const char *new_vm_name;
    /* Where volumes are written: DIR/VOLNAME.raw (sparse). Required for a new
     * VM unless `target_vm` supplies write callbacks for every volume. With
     * HARVBK_RESTORE_REPLACE: where volumes the replaced VM does not have yet
     * go (default: the directory of its first volume). A symbolic link as
     * target_dir (or in its path) is resolved once, when the restore starts;
     * volume files are then created only under the resolved directory and
     * never through a link: a link already named DIR/VOLNAME.raw is refused
     * (HARVBK_E_EXISTS), never followed. Names from the backup are DNS-1123
     * labels (a manifest naming "../x", "/x" or "a/b" is HARVBK_E_CORRUPT). */
    const char *target_dir;
    /* Optional (new VM only): a VM description whose volumes (matched by
     * name) have write callbacks; those volumes are written through them
     * instead of files. */
    const harvbk_vm *target_vm;
    harvbk_progress_cb progress_cb;
    void *progress_payload;
    /* ---- version 2 ---- */
    /* HARVBK_RESTORE_REPLACE only: a harvbk_deletion_policy. */
    int deletion_policy;
    /* NULL: harvbk_metadata_rewrite_default(). */
    harvbk_metadata_rewrite_cb metadata_rewrite_cb;
    void *metadata_rewrite_payload;
} harvbk_restore_options;

#define HARVBK_RESTORE_OPTIONS_INIT { HARVBK_RESTORE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_restore_options_init(harvbk_restore_options *opts, unsigned int version);

/**
 * Start restoring backup NAMESPACE/NAME as a new VM (or over an existing VM
 * with HARVBK_RESTORE_REPLACE: see the top of this header). Each chunk is checked
 * before it is written; a missing or corrupt chunk ends the operation with
 * HARVBK_E_CHUNK and the partial volume files are removed (a restore never
 * leaves wrong bytes in place). On success the new VM (volumes pointing at the
 * restored files, the backup's metadata and images) is registered in the
 * catalog. Errors at start: HARVBK_E_INVALID, HARVBK_E_VERSION, HARVBK_E_NOTARGET,
 * HARVBK_E_KEY (an encrypted store without the right key: nothing is written),
 * HARVBK_E_NOTFOUND, HARVBK_E_EXISTS (the new VM or a volume file exists, or
 * another process restores into that VM), HARVBK_E_STATE (backup not Ready),
 * HARVBK_E_BUSY (the backup is being deleted; replace: another restore writes
 * the VM), HARVBK_E_KEEP_MAC, HARVBK_E_VM_RUNNING, HARVBK_E_DELETION_POLICY,
 * HARVBK_E_IMAGE (an image the backup recorded is missing in this context and
 * no image hook recreated it: harvbk/image.h; the hook is called inside this
 * call, on this thread), HARVBK_E_CORRUPT (a damaged image record). A restore killed midway is
 * undone by the next harvbk_ctx_open() (or restore into that VM): no partial
 * file, and no volume without its registered VM, is left behind.
 */
HARVBK_API int harvbk_restore_create(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                                     const char *backup_name,
                                     const harvbk_restore_options *opts);

/**
 * The same for snapshot NAMESPACE/NAME of the context's snapshot store (no
 * backup target needed). new_vm_namespace must be NAMESPACE
 * (HARVBK_E_CROSS_NAMESPACE otherwise); with HARVBK_RESTORE_REPLACE the
 * deletion policy must be DEFAULT or RETAIN (HARVBK_E_DELETION_POLICY).
 */
HARVBK_API int harvbk_snapshot_restore(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                                       const char *snapshot_name,
                                       const harvbk_restore_options *opts);

/** After a replace ended successfully with the retain policy: the number of
 *  previous volume files kept, and their paths (borrowed from the operation,
 *  valid until harvbk_op_free()). 0 / NULL otherwise. */
HARVBK_API size_t harvbk_restore_retained_count(const harvbk_op *op);
HARVBK_API const char *harvbk_restore_retained_path(const harvbk_op *op, size_t i);

/* ---- The metadata rewrite hook's handle (valid only during the call) ---- */

/** The document to rewrite: the backup's or snapshot's metadata. */
HARVBK_API const void *harvbk_metadata_rewrite_input(const harvbk_metadata_rewrite *rw,
                                                     size_t *out_len);
/** The VM the backup or snapshot was taken of. */
HARVBK_API const char *harvbk_metadata_rewrite_source_namespace(const harvbk_metadata_rewrite *rw);
HARVBK_API const char *harvbk_metadata_rewrite_source_vm(const harvbk_metadata_rewrite *rw);
/** The VM being created or replaced. */
HARVBK_API const char *harvbk_metadata_rewrite_namespace(const harvbk_metadata_rewrite *rw);
HARVBK_API const char *harvbk_metadata_rewrite_vm(const harvbk_metadata_rewrite *rw);
/** 1 when MAC addresses are to be kept (HARVBK_RESTORE_KEEP_MAC, or a replace). */
HARVBK_API int harvbk_metadata_rewrite_keep_mac(const harvbk_metadata_rewrite *rw);
/** 1 for a replace, 0 for a new VM. */
HARVBK_API int harvbk_metadata_rewrite_replace(const harvbk_metadata_rewrite *rw);
HARVBK_API size_t harvbk_metadata_rewrite_volume_count(const harvbk_metadata_rewrite *rw);
/** Volume i: its name, the name its references should get in the new
 *  document ("<vm>-<volume>" for a new VM; NULL for a replace, whose volume
 *  references stay as they are), and the file it is restored to (NULL for
 *  callback volumes). */
HARVBK_API const char *harvbk_metadata_rewrite_volume_name(const harvbk_metadata_rewrite *rw,
                                                           size_t i);
HARVBK_API const char *harvbk_metadata_rewrite_volume_claim(const harvbk_metadata_rewrite *rw,
                                                            size_t i);
HARVBK_API const char *harvbk_metadata_rewrite_volume_path(const harvbk_metadata_rewrite *rw,
                                                           size_t i);
/** Set the rewritten document (copied; at most HARVBK_VM_METADATA_MAX bytes). */
HARVBK_API int harvbk_metadata_rewrite_set_output(harvbk_metadata_rewrite *rw, const void *data,
                                                  size_t len);
/**
 * The default hook. A KubeVirt VirtualMachine JSON document (an object with
 * "kind":"VirtualMachine") gets metadata.name/namespace of the new VM, the
 * server-set metadata fields (uid, resourceVersion, creationTimestamp,
 * generation, managedFields, selfLink) removed, its volume references
 * (spec.template.spec.volumes[].persistentVolumeClaim.claimName and
 * .dataVolume.name, spec.dataVolumeTemplates[].metadata.name, for the volumes
 * restored) renamed to the volume claims, the labels kubevirt.io/vm and
 * harvesterhci.io/vmName of the template renamed, and every
 * spec.template.spec.domain.devices.interfaces[].macAddress removed unless
 * MACs are kept. Any other JSON object with a "metadata" object only gets
 * name/namespace rewritten where they named the source VM (and is left byte
 * for byte when neither did); any other document (not a JSON object, or JSON
 * followed by other bytes) is left unchanged. A rewritten document is printed
 * compactly, every value it does not change keeping its exact text (numbers
 * are never rounded). A VirtualMachine document that cannot be printed back
 * exactly (an object key holding an escaped NUL character) or that is
 * ambiguous (an object holding the same key twice: JSON readers disagree about
 * which one counts) fails the restore with HARVBK_E_UNSUPPORTED; any other
 * such document is left unchanged. A document that needs rewriting and has bytes
 * other than JSON's four whitespace characters (space, tab, line feed,
 * carriage return) between its tokens (a form feed, a vertical tab, other
 * control bytes), or a raw NUL byte inside a string, fails it with
 * HARVBK_E_INVALID: it is not JSON, and guessing would risk moving values
 * between keys or cutting a string short. `payload` is unused.
 */
HARVBK_API int harvbk_metadata_rewrite_default(harvbk_metadata_rewrite *rw, void *payload);

#ifdef __cplusplus
}
#endif
#endif
