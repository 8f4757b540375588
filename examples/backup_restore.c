/*
 * backup_restore.c - back up a disk image into a file:// target, then restore
 * it as a new VM.
 *
 *   usage: backup_restore STATE_DIR TARGET_DIR DISK_IMAGE RESTORE_DIR
 *          (absolute paths; the directories are created when missing)
 *
 * Shows the life of every program that embeds libharvbk: open a context (one
 * "cluster" on a state directory), point it at a backup target, describe a VM,
 * start an operation and wait for it, read what it made, restore. Every call's
 * result is checked; on failure the program prints the library's message and
 * still frees everything it allocated.
 */
#include <harvbk.h>

#include <inttypes.h>
#include <stdio.h>

/* Print why a call failed: its code and the calling thread's last error
 * message, which every failing library call sets (harvbk/common.h). */
static void print_error(const char *call, int rc)
{
    char msg[512];
    harvbk_error_last_copy(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s: %s\n", call, harvbk_error_name(rc), msg);
}

/* Run a library call; on failure print the error and go to the cleanup. */
#define CHECK(call)                   \
    do {                              \
        if ((rc = (call)) != 0) {     \
            print_error(#call, rc);   \
            goto out;                 \
        }                             \
    } while (0)

/* Wait for an operation and free it. An operation fails later, on its own
 * thread, so its message is kept on the operation, not on this thread. */
static int wait_op(harvbk_op **op, const char *what)
{
    char msg[512];
    int rc = harvbk_op_wait(*op);
    if (rc != 0) {
        harvbk_op_errmsg_copy(*op, msg, sizeof msg);
        fprintf(stderr, "%s failed: %s: %s\n", what, harvbk_error_name(rc), msg);
    }
    harvbk_op_free(*op);
    *op = NULL;
    return rc;
}

/* Progress hook: called on a library thread, never concurrently for one
 * operation, at most every 100 ms and once at the end. Return 0 to go on. */
static int on_progress(uint64_t done, uint64_t total, void *payload)
{
    printf("  %s: %" PRIu64 " of %" PRIu64 " bytes\n", (const char *)payload, done, total);
    return 0;
}

int main(int argc, char **argv)
{
    harvbk_ctx *ctx = NULL;
    harvbk_target_config *cfg = NULL;
    harvbk_vm *vm = NULL, *copy = NULL;
    harvbk_op *op = NULL;
    harvbk_backup_info *info = NULL;
    harvbk_backup_options bopts = HARVBK_BACKUP_OPTIONS_INIT;
    harvbk_restore_options ropts = HARVBK_RESTORE_OPTIONS_INIT;
    char url[4200];
    int rc = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: %s STATE_DIR TARGET_DIR DISK_IMAGE RESTORE_DIR\n", argv[0]);
        return 2;
    }

    if ((size_t)snprintf(url, sizeof url, "file://%s", argv[2]) >= sizeof url) {
        fprintf(stderr, "TARGET_DIR is too long\n");
        return 2;
    }

    /* 1. Open (or create) the state directory. */
    CHECK(harvbk_ctx_open(&ctx, argv[1], NULL));

    /* 2. The backup target: a local directory, named by its file:// URL. */
    CHECK(harvbk_target_config_new(&cfg));
    CHECK(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url));
    CHECK(harvbk_ctx_set_target(ctx, cfg));

    /* 3. The VM default/web with one disk, a raw image file. */
    CHECK(harvbk_vm_new(&vm, "default", "web"));
    CHECK(harvbk_vm_add_volume_file(vm, "rootdisk", argv[3]));

    /* 4. Back it up as default/web-1 (a backup takes the VM's namespace). The
     *    call returns at once; the work runs on a library thread. */
    bopts.progress_cb = on_progress;
    bopts.progress_payload = "backup";
    CHECK(harvbk_backup_create(&op, ctx, vm, "web-1", &bopts));
    if ((rc = wait_op(&op, "backup")) != 0)
        goto out;

    /* 5. What the backup made. */
    CHECK(harvbk_backup_get(&info, ctx, "default", "web-1"));
    printf("backup %s/%s: %s, %" PRIu64 " bytes, %" PRIu64 " uploaded\n",
           harvbk_backup_info_namespace(info), harvbk_backup_info_name(info),
           harvbk_state_name(harvbk_backup_info_state(info)),
           harvbk_backup_info_logical_bytes(info), harvbk_backup_info_uploaded_bytes(info));

    /* 6. Restore it as the new VM default/web-copy: its volumes are written to
     *    RESTORE_DIR/VOLUME.raw and the VM is registered in the catalog. */
    ropts.new_vm_namespace = "default";
    ropts.new_vm_name = "web-copy";
    ropts.target_dir = argv[4];
    ropts.progress_cb = on_progress;
    ropts.progress_payload = "restore";
    CHECK(harvbk_restore_create(&op, ctx, "default", "web-1", &ropts));
    if ((rc = wait_op(&op, "restore")) != 0)
        goto out;

    /* 7. The restored VM, as the catalog knows it. */
    CHECK(harvbk_vm_lookup(&copy, ctx, "default", "web-copy"));
    for (size_t i = 0; i < harvbk_vm_volume_count(copy); i++)
        printf("restored %s/%s: %s -> %s\n", harvbk_vm_namespace(copy), harvbk_vm_name(copy),
               harvbk_vm_volume_name(copy, i), harvbk_vm_volume_path(copy, i));

out:
    /* Every free function accepts NULL. */
    harvbk_vm_free(copy);
    harvbk_backup_info_free(info);
    harvbk_op_free(op);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
