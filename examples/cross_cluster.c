/*
 * cross_cluster.c - two clusters, one backup target: cluster A backs a VM up,
 * cluster B (say, a disaster-recovery site) syncs its catalog, finds the
 * backup and restores the VM.
 *
 *   usage: cross_cluster STATE_A STATE_B TARGET_DIR DISK_IMAGE RESTORE_DIR
 *          (absolute paths)
 *
 * A context is one cluster: its own state directory (VM catalog, catalog of
 * the target's backups). Contexts on different state directories that share a
 * target see each other's backups after a sync (harvbk_target_sync). Cluster
 * B sets the target read-only: it can list, verify and restore, never write.
 */
#include <harvbk.h>

#include <inttypes.h>
#include <stdio.h>

static void print_error(const char *call, int rc)
{
    char msg[512];
    harvbk_error_last_copy(msg, sizeof msg); /* this thread's last error */
    fprintf(stderr, "%s failed: %s: %s\n", call, harvbk_error_name(rc), msg);
}

#define CHECK(call)                   \
    do {                              \
        if ((rc = (call)) != 0) {     \
            print_error(#call, rc);   \
            goto out;                 \
        }                             \
    } while (0)

/* Wait for an operation, print its own message when it failed, free it. */
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

/* Print the backups cluster `who` knows: its catalog, no request to the target. */
static int list_backups(harvbk_ctx *ctx, const char *who)
{
    harvbk_backup_list *list = NULL;
    int rc;
    CHECK(harvbk_backup_list_get(&list, ctx));
    printf("cluster %s knows %zu backup(s)\n", who, harvbk_backup_list_count(list));
    for (size_t i = 0; i < harvbk_backup_list_count(list); i++) {
        const harvbk_backup_info *b = harvbk_backup_list_at(list, i);
        printf("  %s/%s of VM %s: %s, %" PRIu64 " bytes\n", harvbk_backup_info_namespace(b),
               harvbk_backup_info_name(b), harvbk_backup_info_vm_name(b),
               harvbk_state_name(harvbk_backup_info_state(b)),
               harvbk_backup_info_logical_bytes(b));
    }
out:
    harvbk_backup_list_free(list);
    return rc;
}

int main(int argc, char **argv)
{
    harvbk_ctx *a = NULL, *b = NULL;
    harvbk_target_config *cfg = NULL;
    harvbk_vm *vm = NULL, *restored = NULL;
    harvbk_op *op = NULL;
    harvbk_sync_result *sync = NULL;
    harvbk_restore_options ropts = HARVBK_RESTORE_OPTIONS_INIT;
    char url[4200];
    int rc = 0;

    if (argc != 6) {
        fprintf(stderr, "usage: %s STATE_A STATE_B TARGET_DIR DISK_IMAGE RESTORE_DIR\n",
                argv[0]);
        return 2;
    }
    if ((size_t)snprintf(url, sizeof url, "file://%s", argv[3]) >= sizeof url) {
        fprintf(stderr, "TARGET_DIR is too long\n");
        return 2;
    }

    /* Both clusters point at the same target; A creates the store there.
     * harvbk_ctx_set_target copies the configuration: it can be changed and
     * used again for B. */
    CHECK(harvbk_ctx_open(&a, argv[1], NULL));
    CHECK(harvbk_ctx_open(&b, argv[2], NULL));
    CHECK(harvbk_target_config_new(&cfg));
    CHECK(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url));
    CHECK(harvbk_ctx_set_target(a, cfg));
    CHECK(harvbk_target_config_set(cfg, HARVBK_TARGET_READ_ONLY, "1"));
    CHECK(harvbk_ctx_set_target(b, cfg));

    /* Cluster A backs up its VM default/web. */
    CHECK(harvbk_vm_new(&vm, "default", "web"));
    CHECK(harvbk_vm_add_volume_file(vm, "rootdisk", argv[4]));
    CHECK(harvbk_backup_create(&op, a, vm, "web-1", NULL));
    if ((rc = wait_op(&op, "backup")) != 0)
        goto out;
    printf("cluster A backed up default/web-1\n");

    /* B's catalog was synced when its target was set, before the backup. */
    CHECK(list_backups(b, "B"));

    /* Sync B's catalog with the target: it imports A's backup. */
    CHECK(harvbk_target_sync(b, &sync));
    printf("cluster B synced: %" PRIu64 " imported, %" PRIu64 " manifest(s) read\n",
           harvbk_sync_result_count(sync, HARVBK_SYNC_IMPORTED),
           harvbk_sync_result_count(sync, HARVBK_SYNC_MANIFEST_READS));
    CHECK(list_backups(b, "B"));

    /* B restores it as its own VM default/web (B has no VM of that name). */
    ropts.new_vm_namespace = "default";
    ropts.new_vm_name = "web";
    ropts.target_dir = argv[5];
    CHECK(harvbk_restore_create(&op, b, "default", "web-1", &ropts));
    if ((rc = wait_op(&op, "restore")) != 0)
        goto out;
    CHECK(harvbk_vm_lookup(&restored, b, "default", "web"));
    printf("cluster B restored default/web: %s -> %s\n", harvbk_vm_volume_name(restored, 0),
           harvbk_vm_volume_path(restored, 0));

out:
    harvbk_vm_free(restored);
    harvbk_sync_result_free(sync);
    harvbk_op_free(op);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(b);
    harvbk_ctx_free(a);
    return rc == 0 ? 0 : 1;
}
