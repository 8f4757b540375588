/*
 * custom_volume_io.c - volumes served by callbacks instead of files: an
 * in-memory disk is backed up, restored into another buffer, and compared.
 *
 *   usage: custom_volume_io STATE_DIR TARGET_DIR   (absolute paths)
 *
 * Read and write callbacks let a program back up what is not a file (a
 * network block device, a storage appliance's API, memory) and restore into
 * it. The library calls them from its worker threads, possibly several at
 * once for different offsets of one volume, so they must be thread-safe.
 */
#include <harvbk.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An in-memory disk: the payload of its volume callbacks. */
struct mem_disk {
    unsigned char *bytes;
    uint64_t size;
};

/* Read callback (backup): exactly `len` bytes at `offset` into `buf`; 0, or a
 * negative HARVBK_E_* code that fails the backup. Concurrent calls copy
 * disjoint ranges: no lock is needed. */
static int mem_read(void *buf, size_t len, uint64_t offset, void *payload)
{
    const struct mem_disk *d = payload;
    if (offset > d->size || len > d->size - offset)
        return HARVBK_E_IO;
    memcpy(buf, d->bytes + offset, len);
    return 0;
}

/* Write callback (restore): the same, the other way. */
static int mem_write(const void *buf, size_t len, uint64_t offset, void *payload)
{
    struct mem_disk *d = payload;
    if (offset > d->size || len > d->size - offset)
        return HARVBK_E_IO;
    memcpy(d->bytes + offset, buf, len);
    return 0;
}

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

int main(int argc, char **argv)
{
    /* 6 MiB + 4321 bytes: 2 MiB of scrambled bytes, 2 MiB of zeros, text */
    const uint64_t size = 6u * 1024 * 1024 + 4321;
    struct mem_disk src = {NULL, size}, dst = {NULL, size};
    harvbk_ctx *ctx = NULL;
    harvbk_target_config *cfg = NULL;
    harvbk_vm *vm = NULL, *into = NULL;
    harvbk_op *op = NULL;
    harvbk_restore_options ropts = HARVBK_RESTORE_OPTIONS_INIT;
    char url[4200];
    int rc = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s STATE_DIR TARGET_DIR\n", argv[0]);
        return 2;
    }
    if ((size_t)snprintf(url, sizeof url, "file://%s", argv[2]) >= sizeof url) {
        fprintf(stderr, "TARGET_DIR is too long\n");
        return 2;
    }
    src.bytes = calloc(1, size);
    dst.bytes = malloc(size);
    if (!src.bytes || !dst.bytes) {
        fprintf(stderr, "out of memory\n");
        rc = HARVBK_E_NOMEM;
        goto out;
    }
    /* garbage in the destination: the restore must write every byte of it,
     * the run of zeros included */
    memset(dst.bytes, 0xAA, size);
    for (uint64_t i = 0; i < 2u * 1024 * 1024; i++) /* a multiplicative hash */
        src.bytes[i] = (unsigned char)((i * 2654435761u) >> 13);
    for (uint64_t i = 4u * 1024 * 1024; i < size; i++)
        src.bytes[i] = (unsigned char)"libharvbk "[i % 10];

    CHECK(harvbk_ctx_open(&ctx, argv[1], NULL));
    CHECK(harvbk_target_config_new(&cfg));
    CHECK(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url));
    CHECK(harvbk_ctx_set_target(ctx, cfg));

    /* The VM default/memvm: one volume "disk0" of `size` bytes, read through
     * mem_read (no write callback needed for a backup). */
    CHECK(harvbk_vm_new(&vm, "default", "memvm"));
    CHECK(harvbk_vm_add_volume_callbacks(vm, "disk0", size, mem_read, NULL, &src));
    CHECK(harvbk_backup_create(&op, ctx, vm, "memvm-1", NULL));
    if ((rc = wait_op(&op, "backup")) != 0)
        goto out;
    printf("backed up default/memvm-1: %" PRIu64 " bytes read through callbacks\n", size);

    /* Restore as the new VM default/memvm-copy. `target_vm` gives the volumes
     * (matched by name) write callbacks; every volume has one, so no
     * target_dir is needed and no file is written. */
    CHECK(harvbk_vm_new(&into, "default", "memvm-copy"));
    CHECK(harvbk_vm_add_volume_callbacks(into, "disk0", size, NULL, mem_write, &dst));
    ropts.new_vm_namespace = "default";
    ropts.new_vm_name = "memvm-copy";
    ropts.target_vm = into;
    CHECK(harvbk_restore_create(&op, ctx, "default", "memvm-1", &ropts));
    if ((rc = wait_op(&op, "restore")) != 0)
        goto out;

    /* The operation has ended: every write callback has returned. */
    if (memcmp(src.bytes, dst.bytes, size) != 0) {
        fprintf(stderr, "the restored disk differs from the source\n");
        rc = HARVBK_E_ERROR;
        goto out;
    }
    printf("restored default/memvm-copy: %" PRIu64 " bytes written through callbacks, "
           "identical to the source\n", size);

out:
    harvbk_op_free(op);
    harvbk_vm_free(into);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    free(dst.bytes);
    free(src.bytes);
    return rc == 0 ? 0 : 1;
}
