/* tests/unit/test_options.c - options structs across versions (docs/ABI.md):
 *   every *_options_init() writes exactly its version's bytes, never past them
 *   (a version-1 restore options struct is shorter than version 2);
 *   functions taking options read only the caller's version (a version-1
 *   struct at the very end of an allocation: ASan would see an overread);
 *   version 0 and versions newer than the library are HARVBK_E_VERSION;
 *   a flag of one options type is refused by another. */
#include "testutil.h"

#include "ops/ops.h"
#include <harvbk.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GUARD 64

typedef int (*init_fn)(void *opts, unsigned int version);

static void check_init(int type, init_fn fn, unsigned version, const char *what)
{
    size_t n = hb_opts_size(type, version);
    assert_true(n > sizeof(unsigned int));
    unsigned char *buf = malloc(n + GUARD);
    memset(buf, 0xAA, n + GUARD);
    assert_int_equal(fn(buf, version), 0);
    assert_int_equal(*(unsigned int *)buf, version);
    for (size_t i = n; i < n + GUARD; i++)
        if (buf[i] != 0xAA)
            fail_msg("%s v%u init wrote byte %zu past its %zu bytes", what, version, i - n, n);
    assert_int_equal(fn(buf, 0), HARVBK_E_VERSION);
    assert_int_equal(fn(buf, version + 100), HARVBK_E_VERSION);
    assert_int_equal(fn(NULL, version), HARVBK_E_INVALID);
    free(buf);
}

static void test_init_writes_only_its_version(void **state)
{
    (void)state;
    check_init(HB_OPTS_CTX, (init_fn)harvbk_ctx_options_init, 1, "ctx");
    check_init(HB_OPTS_BACKUP, (init_fn)harvbk_backup_options_init, 1, "backup");
    check_init(HB_OPTS_BACKUP, (init_fn)harvbk_backup_options_init, 2, "backup");
    check_init(HB_OPTS_OP, (init_fn)harvbk_op_options_init, 1, "op");
    check_init(HB_OPTS_RESTORE, (init_fn)harvbk_restore_options_init, 1, "restore");
    check_init(HB_OPTS_RESTORE, (init_fn)harvbk_restore_options_init, 2, "restore");
    check_init(HB_OPTS_SNAPSHOT, (init_fn)harvbk_snapshot_options_init, 1, "snapshot");
    check_init(HB_OPTS_SNAPSHOT, (init_fn)harvbk_snapshot_options_init, 2, "snapshot");
    check_init(HB_OPTS_SNAPSTORE, (init_fn)harvbk_snapshot_store_options_init, 1, "store");
    check_init(HB_OPTS_SNAPSTORE, (init_fn)harvbk_snapshot_store_options_init, 2, "store");
    /* version 2 of the snapshot store options added encryption */
    assert_int_equal(hb_opts_size(HB_OPTS_SNAPSTORE, 1),
                     offsetof(harvbk_snapshot_store_options, flags));
    assert_int_equal(hb_opts_size(HB_OPTS_SNAPSTORE, 2), sizeof(harvbk_snapshot_store_options));
    check_init(HB_OPTS_SCHEDULE, (init_fn)harvbk_schedule_options_init, 1, "schedule");
    check_init(HB_OPTS_SCHEDULE_RUN, (init_fn)harvbk_schedule_run_options_init, 1, "run");
    check_init(HB_OPTS_SCHEDULE_RUN, (init_fn)harvbk_schedule_run_options_init, 2, "run");
    assert_int_equal(hb_opts_size(HB_OPTS_SCHEDULE_RUN, 1),
                     offsetof(harvbk_schedule_run_options, capture_cb));
    assert_int_equal(hb_opts_size(HB_OPTS_SCHEDULE_RUN, 2),
                     sizeof(harvbk_schedule_run_options));
    assert_true(hb_opts_size(HB_OPTS_RESTORE, 1) < hb_opts_size(HB_OPTS_RESTORE, 2));
    assert_int_equal(hb_opts_size(HB_OPTS_RESTORE, 2), sizeof(harvbk_restore_options));
    /* version 2 of backup and snapshot options added the freeze window */
    assert_int_equal(hb_opts_size(HB_OPTS_BACKUP, 1),
                     offsetof(harvbk_backup_options, capture_cb));
    assert_int_equal(hb_opts_size(HB_OPTS_BACKUP, 2), sizeof(harvbk_backup_options));
    assert_int_equal(hb_opts_size(HB_OPTS_SNAPSHOT, 1),
                     offsetof(harvbk_snapshot_options, capture_cb));
    assert_int_equal(hb_opts_size(HB_OPTS_SNAPSHOT, 2), sizeof(harvbk_snapshot_options));
    harvbk_ctx_options co;
    harvbk_ctx_options_init(&co, HARVBK_CTX_OPTIONS_VERSION);
    assert_int_equal(co.log_level, HARVBK_LOG_INFO);
}

static void test_calls_read_only_the_callers_version(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("opts");
    char *st = tu_path2(root, "state"), *tdir = tu_path2(root, "target");
    char *disk = tu_path2(root, "d.img"), *out = tu_path2(root, "out");
    unsigned char data[65536];
    tu_fill_random(data, sizeof data, 3);
    assert_int_equal(tu_write_file(disk, data, sizeof data), 0);
    assert_int_equal(mkdir(out, 0755), 0);

    /* a version-1 context options struct that ends where its allocation ends */
    harvbk_ctx_options *co = malloc(hb_opts_size(HB_OPTS_CTX, 1));
    harvbk_ctx_options_init(co, 1);
    harvbk_ctx *c = NULL;
    assert_int_equal(harvbk_ctx_open(&c, st, co), 0);
    free(co);
    tu_set_file_target(c, tdir);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", disk), 0);

    harvbk_backup_options *bo = malloc(hb_opts_size(HB_OPTS_BACKUP, 1));
    harvbk_backup_options_init(bo, 1);
    bo->flags = HARVBK_RESTORE_REPLACE; /* a restore flag: not a backup's */
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, c, vm, "b1", bo), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "unknown backup flags 0x2"));
    bo->flags = 0;
    assert_int_equal(harvbk_backup_create(&op, c, vm, "b1", bo), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    bo->version = 7;
    assert_int_equal(harvbk_backup_create(&op, c, vm, "b2", bo), HARVBK_E_VERSION);
    free(bo);
    /* version 2: its own flag is taken, the snapshot one is refused */
    harvbk_backup_options b2 = HARVBK_BACKUP_OPTIONS_INIT;
    b2.flags = HARVBK_SNAPSHOT_NO_REFLINK;
    assert_int_equal(harvbk_backup_create(&op, c, vm, "b2", &b2), HARVBK_E_INVALID);
    b2.flags = HARVBK_BACKUP_NO_REFLINK;
    assert_int_equal(harvbk_backup_create(&op, c, vm, "b2", &b2), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);

    harvbk_op_options *oo = malloc(hb_opts_size(HB_OPTS_OP, 1));
    harvbk_op_options_init(oo, 1);
    assert_int_equal(harvbk_backup_verify(&op, c, "default", "b1", oo), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    free(oo);

    /* restore options of version 1 (shorter than the current version 2) */
    harvbk_restore_options *ro = malloc(hb_opts_size(HB_OPTS_RESTORE, 1));
    harvbk_restore_options_init(ro, 1);
    ro->new_vm_namespace = "default";
    ro->new_vm_name = "copy";
    ro->target_dir = out;
    /* restore flags are 0x1 and 0x2, the values of the other types' flags:
     * only a flag no type has is told apart (docs/ABI.md) */
    ro->flags = 0x4;
    assert_int_equal(harvbk_restore_create(&op, c, "default", "b1", ro), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "unknown restore flags 0x4"));
    ro->flags = 0;
    assert_int_equal(harvbk_restore_create(&op, c, "default", "b1", ro), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    free(ro);
    char *copy = tu_path2(out, "disk0.raw");
    assert_int_equal(tu_files_equal(copy, disk), 0);

    harvbk_snapshot_options *so = malloc(hb_opts_size(HB_OPTS_SNAPSHOT, 1));
    harvbk_snapshot_options_init(so, 1);
    so->flags = HARVBK_RESTORE_REPLACE; /* a restore flag: not a snapshot's */
    assert_int_equal(harvbk_snapshot_create(&op, c, vm, "s1", so), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "unknown snapshot flags 0x2"));
    so->flags = HARVBK_BACKUP_NO_REFLINK; /* a backup flag */
    assert_int_equal(harvbk_snapshot_create(&op, c, vm, "s1", so), HARVBK_E_INVALID);
    so->flags = 0;
    assert_int_equal(harvbk_snapshot_create(&op, c, vm, "s1", so), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    free(so);

    harvbk_schedule_options *sc = malloc(hb_opts_size(HB_OPTS_SCHEDULE, 1));
    harvbk_schedule_options_init(sc, 1);
    assert_int_equal(harvbk_vm_register(c, vm), 0);
    sc->vm_name = "vm1";
    sc->cron = "0 * * * *";
    sc->flags = HARVBK_RESTORE_REPLACE; /* a restore flag: not a schedule's */
    assert_int_equal(harvbk_schedule_create(c, "default", "h", sc), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "unknown schedule flags 0x2"));
    sc->flags = 0x4; /* no type's flag */
    assert_int_equal(harvbk_schedule_create(c, "default", "h", sc), HARVBK_E_INVALID);
    sc->flags = 0;
    assert_int_equal(harvbk_schedule_create(c, "default", "h", sc), 0);
    free(sc);
    harvbk_schedule_run_options *rr = malloc(hb_opts_size(HB_OPTS_SCHEDULE_RUN, 1));
    harvbk_schedule_run_options_init(rr, 1);
    harvbk_scheduler *sch = NULL;
    assert_int_equal(harvbk_scheduler_start(&sch, c, rr), 0);
    free(rr); /* copied at start */
    harvbk_scheduler_stop(sch);

    free(copy);
    harvbk_vm_free(vm);
    harvbk_ctx_free(c);
    tu_rmrf(root);
    free(root);
    free(st);
    free(tdir);
    free(disk);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_writes_only_its_version),
        cmocka_unit_test(test_calls_read_only_the_callers_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
