/* tests/faultfs/test_faultfs.c - what backups and restores do when the disk
 * under the store, a volume or a restore fails: a FUSE file system
 * (harvbk_faultfs, beside this test) passes every call to a real directory
 * and fails the ones a test names with EIO or ENOSPC.
 *
 * Each case asserts the outcome: the operation fails with the system's own
 * words for the error, no backup that failed is Ready or restorable, what
 * was there before (older backups, the volumes of a VM being replaced) is
 * intact byte for byte, and the same operation succeeds once the disk is
 * well again.
 *
 * Needs /dev/fuse and the right to mount (root): else it exits 77 (skipped),
 * saying why. */
#include "testutil.h"

#include <harvbk.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024u * 1024u)

static struct {
    char *root, *backing, *mnt, *ctl;
    pid_t pid;
} fs;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool mounted(void)
{
    struct stat a, b;
    return stat(fs.mnt, &a) == 0 && stat(fs.root, &b) == 0 && a.st_dev != b.st_dev;
}

static void fs_stop(void)
{
    if (fs.pid > 0) {
        kill(fs.pid, SIGTERM);
        int status;
        uint64_t t0 = now_ms();
        while (waitpid(fs.pid, &status, WNOHANG) == 0) {
            if (now_ms() - t0 > 10000) {
                umount2(fs.mnt, MNT_DETACH);
                kill(fs.pid, SIGKILL);
                waitpid(fs.pid, &status, 0);
                break;
            }
            usleep(10000);
        }
        fs.pid = 0;
    }
    if (fs.mnt && mounted())
        umount2(fs.mnt, MNT_DETACH);
    tu_rmrf(fs.root);
    free(fs.root);
    free(fs.backing);
    free(fs.mnt);
    free(fs.ctl);
    memset(&fs, 0, sizeof fs);
}

/* NULL, or why the file system cannot be mounted here */
static const char *fs_start(void)
{
    static char why[256];
    const char *prog = getenv("HARVBK_FAULTFS");
    if (!prog || access(prog, X_OK) != 0)
        return "HARVBK_FAULTFS does not name the harvbk_faultfs program";
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        snprintf(why, sizeof why, "/dev/fuse: %s", strerror(errno));
        return why;
    }
    fs.root = tu_mkdtemp("faultfs");
    fs.backing = tu_path2(fs.root, "backing");
    fs.mnt = tu_path2(fs.root, "mnt");
    fs.ctl = tu_path2(fs.mnt, ".faultfs");
    if (!fs.root || mkdir(fs.backing, 0700) != 0 || mkdir(fs.mnt, 0700) != 0)
        return "cannot make the test directories";
    fs.pid = fork();
    if (fs.pid == 0) {
        /* this test killed (a crash, ctest's timeout): the file system
         * unmounts and ends too */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        execl(prog, prog, fs.backing, fs.mnt, (char *)NULL);
        _exit(127);
    }
    uint64_t t0 = now_ms();
    while (!mounted()) {
        int status;
        if (waitpid(fs.pid, &status, WNOHANG) == fs.pid) {
            fs.pid = 0;
            snprintf(why, sizeof why, "harvbk_faultfs could not mount (exit status %d; "
                     "its reason is above)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            return why;
        }
        if (now_ms() - t0 > 20000)
            return "harvbk_faultfs did not mount within 20 s";
        usleep(20000);
    }
    return NULL;
}

/* Replace the file system's fault rules (faultfs.c; "" clears them). */
static void faults(const char *rules)
{
    int fd = open(fs.ctl, O_WRONLY);
    assert_true(fd >= 0);
    char text[512];
    int n = snprintf(text, sizeof text, "%s\n", rules);
    assert_int_equal(write(fd, text, (size_t)n), n);
    assert_int_equal(close(fd), 0);
}

/* the calls failed since the rules were set */
static unsigned long injected(void)
{
    int fd = open(fs.ctl, O_RDONLY);
    assert_true(fd >= 0);
    char text[64] = { 0 };
    assert_true(read(fd, text, sizeof text - 1) > 0);
    close(fd);
    unsigned long k = 0;
    assert_int_equal(sscanf(text, "injected %lu", &k), 1);
    return k;
}

static void write_disk(const char *path, size_t size, uint64_t seed)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    tu_fill_random(buf, size, seed);
    memset(buf + size / 4, 0, size / 8); /* some zero chunks too */
    assert_int_equal(tu_write_file(path, buf, size), 0);
    free(buf);
}

typedef struct world {
    char *dir;                 /* on the ordinary disk: state, restores */
    char *store, *disk_dir, *disk, *state;
    harvbk_ctx *ctx;
    harvbk_vm *vm;
} world;

enum { ON_DISK = 0, STORE_ON_FAULTFS = 1, VOLUME_ON_FAULTFS = 2, STATE_ON_FAULTFS = 4 };

/* A context (state on the ordinary disk) with a file:// store and VM
 * default/vm of one volume `disk` of `size` bytes, the store or the volume's
 * directory on the fault-injecting file system as `where` says; backup b0
 * of it taken when `b0`. */
static void world_open(world *w, const char *tag, int where, size_t size, bool b0)
{
    memset(w, 0, sizeof *w);
    w->dir = tu_mkdtemp(tag);
    char sub[64];
    snprintf(sub, sizeof sub, "%s-store", tag);
    w->store = tu_path2(where & STORE_ON_FAULTFS ? fs.mnt : w->dir, sub);
    snprintf(sub, sizeof sub, "%s-disk", tag);
    w->disk_dir = tu_path2(where & VOLUME_ON_FAULTFS ? fs.mnt : w->dir, sub);
    assert_int_equal(mkdir(w->disk_dir, 0700), 0);
    w->disk = tu_path2(w->disk_dir, "disk.raw");
    write_disk(w->disk, size, 1);
    snprintf(sub, sizeof sub, "%s-state", tag);
    char *state = tu_path2(where & STATE_ON_FAULTFS ? fs.mnt : w->dir, sub);
    assert_int_equal(harvbk_ctx_open(&w->ctx, state, NULL), 0);
    w->state = state;
    tu_set_file_target(w->ctx, w->store);
    assert_int_equal(harvbk_vm_new(&w->vm, "default", "vm"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(w->vm, "disk", w->disk), 0);
    if (b0) {
        harvbk_op *op = NULL;
        int rc = harvbk_backup_create(&op, w->ctx, w->vm, "b0", NULL);
        assert_int_equal(tu_op_result(w->ctx, rc, op, NULL, 0), 0);
    }
}

static void world_close(world *w)
{
    harvbk_vm_free(w->vm);
    harvbk_ctx_free(w->ctx);
    tu_rmrf(w->store);
    tu_rmrf(w->disk_dir);
    tu_rmrf(w->state);
    tu_rmrf(w->dir);
    free(w->dir);
    free(w->store);
    free(w->disk_dir);
    free(w->disk);
    free(w->state);
}

static int backup(world *w, const char *name, char *msg, size_t size)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, w->ctx, w->vm, name, NULL);
    return tu_op_result(w->ctx, rc, op, msg, size);
}

static int restore_into(world *w, const char *name, const char *vm_name, const char *dir,
                        unsigned flags, char *msg, size_t size)
{
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.flags = flags;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = vm_name;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, w->ctx, "default", name, &ro);
    return tu_op_result(w->ctx, rc, op, msg, size);
}

static int verify(world *w, const char *name)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, w->ctx, "default", name, NULL);
    return tu_op_result(w->ctx, rc, op, NULL, 0);
}

/* a gc to its end: its result, *removed the chunks it deleted */
static int gc(world *w, char *msg, size_t size, uint64_t *removed)
{
    harvbk_op *op = NULL;
    int rc = harvbk_gc(&op, w->ctx, NULL);
    *removed = 0;
    if (rc) {
        harvbk_ctx_errmsg_copy(w->ctx, msg, size);
        return rc;
    }
    rc = harvbk_op_wait(op);
    harvbk_op_errmsg_copy(op, msg, size);
    uint64_t bytes;
    harvbk_gc_result(op, removed, &bytes);
    harvbk_op_free(op);
    return rc;
}

static int state_of(world *w, const char *name)
{
    harvbk_backup_info *info = NULL;
    int rc = harvbk_backup_get(&info, w->ctx, "default", name);
    if (rc)
        return rc;
    int st = harvbk_backup_info_state(info);
    harvbk_backup_info_free(info);
    return st;
}

/* files in dir (not . and ..), -1 when it cannot be read */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* Restore `name` as a new VM into a fresh directory; bytes equal `disk`. */
static void restores_as(world *w, const char *name, const char *disk, const char *vm_name)
{
    char *out = tu_path2(w->dir, vm_name);
    char msg[512];
    assert_int_equal(restore_into(w, name, vm_name, out, 0, msg, sizeof msg), 0);
    char *vol = tu_path2(out, "disk.raw");
    assert_int_equal(tu_files_equal(vol, disk), 0);
    free(vol);
    free(out);
}

/* ------------------------------------------------------------- the store */

/* A write, flush, create, rename or mkdir in the store fails during a
 * backup: the backup fails with that error and is not Ready, nor
 * restorable; the backup before it still verifies and restores; the next
 * backup, on a well disk, is Ready and restores the volume's bytes. */
static void test_store_errors_fail_the_backup(void **state)
{
    (void)state;
    static const struct {
        const char *rules; /* %s: the backup's name */
        int err;
        const char *where; /* in the message */
    } cases[] = {
        { "write ENOSPC after=3", ENOSPC, "chunks/" }, /* the disk fills up */
        { "write EIO after=20", EIO, "chunks/" },
        { "create EIO after=2", EIO, "cannot create temporary file" },
        { "rename EIO path=/tmp/ after=2", EIO, "cannot rename into place" },
        { "mkdir EIO path=/chunks/ after=1", EIO, "cannot create directory" },
        /* chunks are flushed by syncfs, everything else by fsync */
        { "fsync EIO path=/tmp/ count=1", EIO, "writer lease" },
        { "fsync EIO path=/tmp/ after=1 count=1", EIO, "claims/" },
        { "fsync EIO path=/tmp/ after=2 count=1", EIO, "disk.idx" },
        { "fsync EIO path=/tmp/ after=3 count=1", EIO, "manifest.json" },
        { "rename EIO path=manifest.json", EIO, "manifest.json" }, /* the commit's last step */
        /* the directory of the backup's claim, index, manifest (its rename
         * done, its durability unknown: withdrawn) */
        { "fsyncdir EIO path=/%s count=1", EIO, "claims/" },
        { "fsyncdir EIO path=/%s$ after=1 count=1", EIO, "disk.idx" },
        { "fsyncdir EIO path=/%s$ after=2 count=1", EIO, "manifest.json" },
        { "fsyncdir EIO path=/%s$ after=2", EIO, "manifest.json" }, /* the withdrawal's too */
    };
    world w;
    world_open(&w, "faultfs-store", STORE_ON_FAULTFS, 3 * MiB, true);
    char msg[512];
    char *disk0 = tu_path2(w.disk_dir, "disk0.raw");
    assert_int_equal(rename(w.disk, disk0), 0);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16], ok[16];
        snprintf(name, sizeof name, "bad%zu", i);
        snprintf(ok, sizeof ok, "good%zu", i);
        write_disk(w.disk, 3 * MiB, 100 + i); /* new chunks to write */
        char rules[128];
        snprintf(rules, sizeof rules, cases[i].rules, name); /* %s: the backup's name */
        faults(rules);
        int rc = backup(&w, name, msg, sizeof msg);
        unsigned long hits = injected();
        faults("");
        fprintf(stderr, "%-36s -> %d (%lu injected): %s\n", rules, rc, hits, msg);
        assert_true(hits >= 1);
        assert_int_equal(rc, HARVBK_E_IO);
        assert_non_null(strstr(msg, strerror(cases[i].err)));
        assert_non_null(strstr(msg, cases[i].where));
        int st = state_of(&w, name);
        assert_true(st == HARVBK_STATE_ERROR || st == HARVBK_E_NOTFOUND);
        char *out = tu_path2(w.dir, "never");
        assert_int_not_equal(restore_into(&w, name, "never", out, 0, msg, sizeof msg), 0);
        assert_int_equal(entries(out), -1); /* nothing was written */
        free(out);

        /* what was there is intact; the disk well again, the same works */
        assert_int_equal(verify(&w, "b0"), 0);
        assert_int_equal(backup(&w, ok, msg, sizeof msg), 0);
        assert_int_equal(state_of(&w, ok), HARVBK_STATE_READY);
        assert_int_equal(verify(&w, ok), 0);
        char vm_name[16];
        snprintf(vm_name, sizeof vm_name, "r%zu", i);
        restores_as(&w, ok, w.disk, vm_name);
    }
    restores_as(&w, "b0", disk0, "r0-again");
    world_close(&w);
    free(disk0);
}

/* ------------------------------------------------------------ the volume */

/* The VM's disk cannot be read part-way: the backup fails naming the
 * volume, the offset and the error, and is not Ready. */
static void test_volume_read_error_fails_the_backup(void **state)
{
    (void)state;
    world w;
    world_open(&w, "faultfs-vol", VOLUME_ON_FAULTFS, 3 * MiB, false);
    char msg[512];
    faults("read EIO path=disk.raw after=4");
    int rc = backup(&w, "b", msg, sizeof msg);
    unsigned long hits = injected();
    faults("");
    fprintf(stderr, "volume read error -> %d: %s\n", rc, msg);
    assert_true(hits >= 1);
    assert_int_equal(rc, HARVBK_E_IO);
    assert_non_null(strstr(msg, "volume 'disk'"));
    assert_non_null(strstr(msg, "offset"));
    assert_non_null(strstr(msg, strerror(EIO)));
    int st = state_of(&w, "b");
    assert_true(st == HARVBK_STATE_ERROR || st == HARVBK_E_NOTFOUND);
    assert_int_equal(backup(&w, "b2", msg, sizeof msg), 0);
    restores_as(&w, "b2", w.disk, "r");
    world_close(&w);
}

/* ----------------------------------------------------------- the restore */

/* The restore's disk fails its first flush, while the restore is still
 * writing (every 8 MiB: the later flushes and the final one would succeed;
 * the restore's flusher must report it):
 * the restore fails, leaves no volume file and no VM, and succeeds once the
 * disk is well. The same for a write that fails and a full disk. */
static void test_restore_disk_errors(void **state)
{
    (void)state;
    static const struct {
        const char *rules;
        int err;
    } cases[] = {
        { "fsync EIO count=1", EIO },   /* the first flush only: mid-way */
        { "write EIO after=40", EIO },
        { "write ENOSPC after=100", ENOSPC },
        { "fsync EIO after=1", EIO },   /* a later one (24 MiB: at 8, 16 and the end;
                                           two may fall together on a busy machine) */
    };
    world w;
    world_open(&w, "faultfs-restore", ON_DISK, 24 * MiB, true);
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64], vm_name[16];
        snprintf(vm_name, sizeof vm_name, "r%zu", i);
        snprintf(out, sizeof out, "restore-%zu", i);
        char *dir = tu_path2(fs.mnt, out);
        faults(cases[i].rules);
        int rc = restore_into(&w, "b0", vm_name, dir, 0, msg, sizeof msg);
        unsigned long hits = injected();
        faults("");
        fprintf(stderr, "%-24s -> %d (%lu injected): %s\n", cases[i].rules, rc, hits, msg);
        assert_true(hits >= 1);
        assert_int_equal(rc, HARVBK_E_IO);
        assert_non_null(strstr(msg, strerror(cases[i].err)));
        assert_true(entries(dir) <= 0); /* no volume file left behind */
        harvbk_vm *vm = NULL;
        assert_int_equal(harvbk_vm_lookup(&vm, w.ctx, "default", vm_name), HARVBK_E_NOTFOUND);
        /* well again: the same restore */
        assert_int_equal(restore_into(&w, "b0", vm_name, dir, 0, msg, sizeof msg), 0);
        char *vol = tu_path2(dir, "disk.raw");
        assert_int_equal(tu_files_equal(vol, w.disk), 0);
        free(vol);
        free(dir);
    }
    world_close(&w);
}

/* Replacing a powered-off VM from a store whose disk fails a read part-way:
 * the restore fails and the VM's volume keeps its bytes (it is only swapped
 * once the new one is complete); well again, the replace restores the
 * backup's bytes. */
static void test_replace_keeps_the_old_volume_when_the_store_fails(void **state)
{
    (void)state;
    world w;
    world_open(&w, "faultfs-replace", STORE_ON_FAULTFS, 4 * MiB, true);
    char msg[512];
    const char *disk = w.disk;
    char *backed = tu_path2(w.disk_dir, "backed.copy");
    char *now = tu_path2(w.disk_dir, "now.copy");
    assert_int_equal(rename(disk, backed), 0);
    write_disk(disk, 4 * MiB, 77); /* the VM's disk moved on */
    assert_int_equal(link(disk, now), 0);
    struct stat before;
    assert_int_equal(stat(disk, &before), 0);
    assert_int_equal(harvbk_vm_register(w.ctx, w.vm), 0);
    assert_int_equal(harvbk_vm_set_registered_power_state(w.ctx, "default", "vm",
                                                          HARVBK_POWER_OFF), 0);
    int files = entries(w.disk_dir);

    faults("read EIO path=/chunks/ after=10");
    int rc = restore_into(&w, "b0", "vm", NULL, HARVBK_RESTORE_REPLACE, msg, sizeof msg);
    unsigned long hits = injected();
    faults("");
    fprintf(stderr, "replace, store read error -> %d (%lu injected): %s\n", rc, hits, msg);
    assert_true(hits >= 1);
    assert_true(rc < 0);
    assert_non_null(strstr(msg, strerror(EIO)));
    struct stat after;
    assert_int_equal(stat(disk, &after), 0);
    assert_true(after.st_ino == before.st_ino); /* the same file, */
    assert_int_equal(tu_files_equal(disk, now), 0); /* and its bytes */
    assert_int_equal(entries(w.disk_dir), files); /* nothing left beside it */

    assert_int_equal(restore_into(&w, "b0", "vm", NULL, HARVBK_RESTORE_REPLACE, msg, sizeof msg),
                     0);
    assert_int_equal(tu_files_equal(disk, backed), 0);
    world_close(&w);
    free(backed);
    free(now);
}

/* The context's state directory fails: before the commit, the backup fails
 * and is not Ready; after it (the Ready record or the catalog cannot be
 * saved), the backup succeeded, so it reads Ready (its writer gone, the
 * record is checked against the target) and restores. Either way the next
 * backup, the disk well again, is Ready. */
static void test_state_dir_errors(void **state)
{
    (void)state;
    static const struct {
        const char *rules;
        int rc; /* what the backup returns */
    } cases[] = {
        { "fsync EIO", HARVBK_E_IO },      /* the InProgress record, first */
        { "fsyncdir EIO", HARVBK_E_IO },
        { "rename EIO", HARVBK_E_IO },
        { "write ENOSPC", HARVBK_E_IO },
        { "create EIO", HARVBK_E_IO },     /* the record's lock */
        { "fsync EIO after=1", 0 },        /* everything after the first record */
        { "rename EIO after=1", 0 },
    };
    world w;
    world_open(&w, "faultfs-state", STATE_ON_FAULTFS, 2 * MiB, true);
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16], ok[16], vm_name[16];
        snprintf(name, sizeof name, "s%zu", i);
        snprintf(ok, sizeof ok, "ok%zu", i);
        snprintf(vm_name, sizeof vm_name, "r%zu", i);
        write_disk(w.disk, 2 * MiB, 200 + i);
        faults(cases[i].rules);
        int rc = backup(&w, name, msg, sizeof msg);
        unsigned long hits = injected();
        faults("");
        int st = state_of(&w, name);
        fprintf(stderr, "state dir: %-20s -> %d (%lu injected), reads %d: %s\n",
                cases[i].rules, rc, hits, st, msg);
        assert_true(hits >= 1);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(st, HARVBK_STATE_READY);
            restores_as(&w, name, w.disk, vm_name);
        } else {
            assert_true(st == HARVBK_STATE_ERROR || st == HARVBK_E_NOTFOUND);
            char *out = tu_path2(w.dir, "never");
            assert_int_not_equal(restore_into(&w, name, "never", out, 0, msg, sizeof msg), 0);
            free(out);
        }
        assert_int_equal(backup(&w, ok, msg, sizeof msg), 0);
        assert_int_equal(state_of(&w, ok), HARVBK_STATE_READY);
    }
    world_close(&w);
}

/* gc and deletion on a failing store: a gc whose deletions fail ends with
 * the error and removes nothing still referenced (the backup kept verifies
 * and restores); run again on a well disk it finishes the sweep. A
 * deletion whose unlink fails leaves the backup Ready and restorable. */
static void test_gc_and_delete_errors(void **state)
{
    (void)state;
    world w;
    world_open(&w, "faultfs-gc", STORE_ON_FAULTFS, 3 * MiB, true);
    char msg[512];
    write_disk(w.disk, 3 * MiB, 300); /* b1 shares nothing with b0 but zeros */
    assert_int_equal(backup(&w, "b1", msg, sizeof msg), 0);
    assert_int_equal(harvbk_backup_delete(w.ctx, "default", "b0"), 0);
    /* gc keeps chunks written in the second it starts (a writer's, maybe):
     * b0's must be older */
    usleep(1100 * 1000);

    faults("unlink EIO path=/chunks/ after=3");
    uint64_t removed = 0;
    int rc = gc(&w, msg, sizeof msg, &removed);
    unsigned long hits = injected();
    faults("");
    fprintf(stderr, "gc, unlink fails -> %d (%lu injected): %s\n", rc, hits, msg);
    assert_true(hits >= 1);
    assert_int_equal(rc, HARVBK_E_IO);
    assert_non_null(strstr(msg, strerror(EIO)));
    assert_int_equal(verify(&w, "b1"), 0);

    /* an incremental whose listing of the store's chunks fails: it fails,
     * or it is Ready and restores, never Ready on a guess */
    faults("readdir EIO path=/chunks/");
    rc = backup(&w, "b2", msg, sizeof msg);
    hits = injected();
    faults("");
    fprintf(stderr, "incremental, listing fails -> %d (%lu injected): %s\n", rc, hits, msg);
    assert_true(hits >= 1);
    if (rc == 0) {
        assert_int_equal(verify(&w, "b2"), 0);
        restores_as(&w, "b2", w.disk, "r-b2");
    } else {
        assert_int_equal(rc, HARVBK_E_IO);
        assert_int_not_equal(state_of(&w, "b2"), HARVBK_STATE_READY);
    }

    /* a gc that cannot list the backups (what it must keep) deletes nothing */
    static const char *const blind[] = { "readdir EIO path=/backups", "read EIO path=.idx",
                                         "read EIO path=manifest.json" };
    for (size_t i = 0; i < sizeof blind / sizeof blind[0]; i++) {
        faults(blind[i]);
        rc = gc(&w, msg, sizeof msg, &removed);
        hits = injected();
        faults("");
        fprintf(stderr, "gc, %s -> %d (%lu injected, %llu removed): %s\n", blind[i], rc, hits,
                (unsigned long long)removed, msg);
        assert_true(hits >= 1);
        assert_int_equal(rc, HARVBK_E_IO);
        assert_int_equal(removed, 0);
        assert_int_equal(verify(&w, "b1"), 0);
    }

    /* a verify that cannot read a chunk says so (not "corrupt") and the
     * backup stays as it was */
    faults("read EIO path=/chunks/ after=2");
    harvbk_op *op = NULL;
    rc = harvbk_backup_verify(&op, w.ctx, "default", "b1", NULL);
    rc = tu_op_result(w.ctx, rc, op, msg, sizeof msg);
    hits = injected();
    faults("");
    fprintf(stderr, "verify, read fails -> %d (%lu injected): %s\n", rc, hits, msg);
    assert_true(hits >= 1);
    assert_int_equal(rc, HARVBK_E_IO);
    assert_non_null(strstr(msg, strerror(EIO)));
    assert_int_equal(state_of(&w, "b1"), HARVBK_STATE_READY);
    assert_int_equal(verify(&w, "b1"), 0);

    assert_int_equal(gc(&w, msg, sizeof msg, &removed), 0);
    assert_true(removed >= 1); /* what the first gc could not */
    assert_int_equal(verify(&w, "b1"), 0);
    restores_as(&w, "b1", w.disk, "r1");

    faults("unlink EIO path=manifest.json");
    rc = harvbk_backup_delete(w.ctx, "default", "b1");
    hits = injected();
    faults("");
    harvbk_ctx_errmsg_copy(w.ctx, msg, sizeof msg);
    fprintf(stderr, "delete, unlink fails -> %d (%lu injected): %s\n", rc, hits, msg);
    assert_true(hits >= 1);
    assert_true(rc < 0);
    assert_non_null(strstr(msg, strerror(EIO)));
    assert_int_equal(state_of(&w, "b1"), HARVBK_STATE_READY);
    restores_as(&w, "b1", w.disk, "r2");
    assert_int_equal(harvbk_backup_delete(w.ctx, "default", "b1"), 0);
    world_close(&w);
}

/* A snapshot into a local snapshot store whose disk fills up fails, is not
 * Ready, and the next one is. */
static void test_snapshot_store_full(void **state)
{
    (void)state;
    world w;
    world_open(&w, "faultfs-snap", ON_DISK, 3 * MiB, false);
    char *dir = tu_path2(fs.mnt, "faultfs-snap-store");
    harvbk_snapshot_store_options so = HARVBK_SNAPSHOT_STORE_OPTIONS_INIT;
    so.dir = dir;
    so.chunk_size = 65536;
    assert_int_equal(harvbk_snapshot_store_set(w.ctx, &so), 0);
    char msg[512];
    harvbk_op *op = NULL;
    int rc = harvbk_snapshot_create(&op, w.ctx, w.vm, "s0", NULL);
    assert_int_equal(tu_op_result(w.ctx, rc, op, msg, sizeof msg), 0);
    write_disk(w.disk, 3 * MiB, 400);
    faults("write ENOSPC after=5");
    op = NULL;
    rc = harvbk_snapshot_create(&op, w.ctx, w.vm, "s1", NULL);
    rc = tu_op_result(w.ctx, rc, op, msg, sizeof msg);
    unsigned long hits = injected();
    faults("");
    fprintf(stderr, "snapshot, disk full -> %d (%lu injected): %s\n", rc, hits, msg);
    assert_true(hits >= 1);
    assert_int_equal(rc, HARVBK_E_IO);
    assert_non_null(strstr(msg, strerror(ENOSPC)));
    harvbk_backup_info *info = NULL;
    rc = harvbk_snapshot_get(&info, w.ctx, "default", "s1");
    if (rc == 0) {
        assert_int_not_equal(harvbk_backup_info_state(info), HARVBK_STATE_READY);
        harvbk_backup_info_free(info);
    } else {
        assert_int_equal(rc, HARVBK_E_NOTFOUND);
    }
    op = NULL;
    rc = harvbk_snapshot_verify(&op, w.ctx, "default", "s0", NULL);
    assert_int_equal(tu_op_result(w.ctx, rc, op, NULL, 0), 0);
    op = NULL;
    rc = harvbk_snapshot_create(&op, w.ctx, w.vm, "s2", NULL);
    assert_int_equal(tu_op_result(w.ctx, rc, op, msg, sizeof msg), 0);
    op = NULL;
    rc = harvbk_snapshot_verify(&op, w.ctx, "default", "s2", NULL);
    assert_int_equal(tu_op_result(w.ctx, rc, op, NULL, 0), 0);
    world_close(&w);
    tu_rmrf(dir);
    free(dir);
}

/* Replacing a two-volume VM whose volumes' disk fails during the swap (a
 * rename, the directory's flush): the restore fails and both volumes are
 * the VM's own again, byte for byte, nothing left beside them; well again,
 * the replace puts the backup's bytes in place. */
static void test_replace_swap_errors(void **state)
{
    (void)state;
    static const struct {
        const char *rules, *where;
    } cases[] = {
        /* the second volume cannot be moved aside, nor the second restored
         * one into place; both swapped, the directory's flush fails */
        { "rename EIO after=2 count=1", "cannot move aside" },
        { "rename EIO after=3 count=1", "cannot move the restored volume into place" },
        { "fsyncdir EIO path=faultfs-swap-disk count=1", "cannot sync directory" },
    };
    world w;
    world_open(&w, "faultfs-swap", VOLUME_ON_FAULTFS, 2 * MiB, false);
    char *disk2 = tu_path2(w.disk_dir, "disk2.raw");
    write_disk(disk2, 1 * MiB, 2);
    assert_int_equal(harvbk_vm_add_volume_file(w.vm, "disk2", disk2), 0);
    char msg[512];
    assert_int_equal(backup(&w, "b0", msg, sizeof msg), 0);
    char *keep = tu_path2(w.dir, "backed1"), *keep2 = tu_path2(w.dir, "backed2");
    char *now = tu_path2(w.dir, "now1"), *now2 = tu_path2(w.dir, "now2");
    write_disk(keep, 2 * MiB, 1); /* what was backed up (write_disk is deterministic) */
    write_disk(keep2, 1 * MiB, 2);
    write_disk(w.disk, 2 * MiB, 500);
    write_disk(disk2, 1 * MiB, 501);
    write_disk(now, 2 * MiB, 500);
    write_disk(now2, 1 * MiB, 501);
    assert_int_equal(harvbk_vm_register(w.ctx, w.vm), 0);
    assert_int_equal(harvbk_vm_set_registered_power_state(w.ctx, "default", "vm",
                                                          HARVBK_POWER_OFF), 0);
    int files = entries(w.disk_dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        faults(cases[i].rules);
        int rc = restore_into(&w, "b0", "vm", NULL, HARVBK_RESTORE_REPLACE, msg, sizeof msg);
        unsigned long hits = injected();
        faults("");
        fprintf(stderr, "replace swap: %-44s -> %d (%lu injected): %s\n", cases[i].rules, rc,
                hits, msg);
        assert_true(hits >= 1);
        assert_true(rc < 0);
        assert_non_null(strstr(msg, strerror(EIO)));
        assert_non_null(strstr(msg, cases[i].where));
        assert_int_equal(tu_files_equal(w.disk, now), 0);
        assert_int_equal(tu_files_equal(disk2, now2), 0);
        assert_int_equal(entries(w.disk_dir), files);
    }
    assert_int_equal(restore_into(&w, "b0", "vm", NULL, HARVBK_RESTORE_REPLACE, msg, sizeof msg),
                     0);
    assert_int_equal(tu_files_equal(w.disk, keep), 0);
    assert_int_equal(tu_files_equal(disk2, keep2), 0);
    world_close(&w);
    free(disk2);
    free(keep);
    free(keep2);
    free(now);
    free(now2);
}

int main(void)
{
    const char *why = fs_start();
    if (why) {
        fprintf(stderr, "SKIP: cannot mount the fault-injecting file system: %s\n", why);
        fs_stop();
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_errors_fail_the_backup),
        cmocka_unit_test(test_volume_read_error_fails_the_backup),
        cmocka_unit_test(test_restore_disk_errors),
        cmocka_unit_test(test_replace_keeps_the_old_volume_when_the_store_fails),
        cmocka_unit_test(test_state_dir_errors),
        cmocka_unit_test(test_gc_and_delete_errors),
        cmocka_unit_test(test_snapshot_store_full),
        cmocka_unit_test(test_replace_swap_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fs_stop();
    return rc;
}
