/* tests/unit/test_ops_restore.c - restoring backups as new VMs: refusals,
 * write callbacks, damaged backups leave nothing behind, the busy rules. */
#include "testutil.h"

#include <harvbk.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 65536

typedef struct env {
    char *root, *tdir, *disk0, *disk1;
    harvbk_ctx *ctx;
    size_t s0, s1;
} env;

static void write_disk(const char *p, size_t size, uint64_t seed)
{
    uint8_t *buf = malloc(size);
    tu_fill_random(buf, size, seed);
    memset(buf + size / 3, 0, size / 4);
    assert_int_equal(tu_write_file(p, buf, size), 0);
    free(buf);
}

/* A context on a file:// target holding backup default/b1 of VM default/vm1
 * with two volumes. */
static void env_open(env *v, const char *tag)
{
    memset(v, 0, sizeof *v);
    v->root = tu_mkdtemp(tag);
    char *sd = tu_path2(v->root, "state");
    v->tdir = tu_path2(v->root, "target");
    v->disk0 = tu_path2(v->root, "d0.raw");
    v->disk1 = tu_path2(v->root, "d1.raw");
    v->s0 = 10 * CHUNK + 333;
    v->s1 = 3 * CHUNK;
    write_disk(v->disk0, v->s0, 1);
    write_disk(v->disk1, v->s1, 2);
    assert_int_equal(harvbk_ctx_open(&v->ctx, sd, NULL), 0);
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = malloc(strlen(v->tdir) + 8);
    sprintf(url, "file://%s", v->tdir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    assert_int_equal(harvbk_ctx_set_target(v->ctx, cfg), 0);
    harvbk_target_config_free(cfg);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", v->disk0), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk1", v->disk1), 0);
    assert_int_equal(harvbk_vm_set_metadata(vm, "meta", 4), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v->ctx, vm, "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    harvbk_vm_free(vm);
    free(url);
    free(sd);
}

static void env_close(env *v)
{
    harvbk_ctx_free(v->ctx);
    tu_rmrf(v->root);
    free(v->root);
    free(v->tdir);
    free(v->disk0);
    free(v->disk1);
}

static harvbk_restore_options ropts(const char *name, const char *dir)
{
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = name;
    ro.target_dir = dir;
    return ro;
}

static int restore(env *v, const harvbk_restore_options *ro, char *msg, size_t size)
{
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, v->ctx, "default", "b1", ro);
    return tu_op_result(v->ctx, rc, op, msg, size);
}

static int nfiles;
static int count_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag == FTW_F)
        nfiles++;
    return 0;
}

static int count_files(const char *dir)
{
    nfiles = 0;
    nftw(dir, count_cb, 8, FTW_PHYS);
    return nfiles;
}

static void test_refuses_existing_vm_existing_files_and_bad_options(void **state)
{
    env v;
    env_open(&v, "ops-rs-refuse");
    char *dir = tu_path2(v.root, "out");
    harvbk_restore_options ro;
    char msg[512];

    /* the new VM exists */
    harvbk_vm *taken = NULL;
    assert_int_equal(harvbk_vm_new(&taken, "default", "taken"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(taken, "d", "/x"), 0);
    assert_int_equal(harvbk_vm_register(v.ctx, taken), 0);
    harvbk_vm_free(taken);
    ro = ropts("taken", dir);
    assert_int_equal(restore(&v, &ro, msg, sizeof msg), HARVBK_E_EXISTS);
    assert_non_null(strstr(msg, "default/taken"));

    /* a volume file exists: refused, and left as it was */
    mkdir(dir, 0755);
    char *f1 = tu_path2(dir, "disk1.raw");
    assert_int_equal(tu_write_file(f1, "keep", 4), 0);
    ro = ropts("fresh", dir);
    assert_int_equal(restore(&v, &ro, msg, sizeof msg), HARVBK_E_EXISTS);
    assert_non_null(strstr(msg, "disk1.raw"));
    struct stat sb;
    assert_int_equal(stat(f1, &sb), 0);
    assert_int_equal(sb.st_size, 4);
    assert_int_equal(count_files(dir), 1);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "fresh"), HARVBK_E_NOTFOUND);

    /* options */
    ro = ropts("fresh", NULL);
    assert_int_equal(restore(&v, &ro, msg, sizeof msg), HARVBK_E_INVALID);
    assert_non_null(strstr(msg, "target_dir"));
    ro = ropts("Fresh", dir);
    assert_int_equal(restore(&v, &ro, NULL, 0), HARVBK_E_INVALID);
    ro = ropts(NULL, dir);
    assert_int_equal(restore(&v, &ro, NULL, 0), HARVBK_E_INVALID);
    ro = ropts("fresh", dir);
    ro.flags = 0x80; /* no such flag */
    assert_int_equal(restore(&v, &ro, NULL, 0), HARVBK_E_INVALID);
    ro = ropts("fresh", dir);
    harvbk_op *op = (harvbk_op *)1;
    assert_int_equal(harvbk_restore_create(&op, v.ctx, "default", "nope", &ro), HARVBK_E_NOTFOUND);
    assert_null(op);
    assert_int_equal(harvbk_restore_create(&op, v.ctx, "default", "b1", NULL), HARVBK_E_INVALID);

    free(f1);
    free(dir);
    env_close(&v);
}

typedef struct membuf {
    uint8_t *data;
    size_t size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int blocked, writes;
} membuf;

static void membuf_init(membuf *m, size_t size)
{
    memset(m, 0, sizeof *m);
    m->data = calloc(1, size);
    m->size = size;
}

static int mem_write(const void *buf, size_t len, uint64_t off, void *p)
{
    membuf *m = p;
    pthread_mutex_lock(&m->mu);
    m->writes++;
    pthread_cond_broadcast(&m->cv);
    while (m->blocked)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    if (off + len > m->size)
        return HARVBK_E_IO;
    memcpy(m->data + off, buf, len);
    return 0;
}

static uint8_t *slurp(const char *p, size_t size)
{
    uint8_t *b = malloc(size);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, size, f), size);
    fclose(f);
    return b;
}

static void test_restore_through_write_callbacks(void **state)
{
    env v;
    env_open(&v, "ops-rs-cb");
    membuf m0, m1;
    membuf_init(&m0, v.s0);
    membuf_init(&m1, v.s1);
    pthread_mutex_init(&m0.mu, NULL);
    pthread_cond_init(&m0.cv, NULL);
    pthread_mutex_init(&m1.mu, NULL);
    pthread_cond_init(&m1.cv, NULL);
    harvbk_vm *tv = NULL;
    assert_int_equal(harvbk_vm_new(&tv, "default", "ignored"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(tv, "disk0", v.s0, NULL, mem_write, &m0), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(tv, "disk1", v.s1, NULL, mem_write, &m1), 0);
    /* a device is not known to read zeros: holes must be written as zeros */
    memset(m0.data, 0xAA, v.s0);
    harvbk_restore_options ro = ropts("viacb", NULL);
    ro.target_vm = tv;
    assert_int_equal(restore(&v, &ro, NULL, 0), 0);
    uint8_t *a = slurp(v.disk0, v.s0), *b = slurp(v.disk1, v.s1);
    assert_memory_equal(a, m0.data, v.s0);
    assert_memory_equal(b, m1.data, v.s1);
    free(a);
    free(b);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "viacb"), 0);
    assert_int_equal(harvbk_vm_volume_count(got), 2);
    assert_null(harvbk_vm_volume_path(got, 0)); /* its bytes live where the caller put them */
    size_t ml = 0;
    assert_memory_equal(harvbk_vm_metadata(got, &ml), "meta", 4);
    harvbk_vm_free(got);

    /* a callback volume smaller than the backup's is refused */
    harvbk_vm *small = NULL;
    assert_int_equal(harvbk_vm_new(&small, "default", "s"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(small, "disk0", 10, NULL, mem_write, &m0), 0);
    char *dir = tu_path2(v.root, "mixed");
    ro = ropts("small", dir);
    ro.target_vm = small;
    assert_int_equal(restore(&v, &ro, NULL, 0), HARVBK_E_INVALID);
    harvbk_vm_free(small);

    /* mixed: disk0 through a callback, disk1 into the directory */
    harvbk_vm *one = NULL;
    assert_int_equal(harvbk_vm_new(&one, "default", "one"), 0);
    memset(m0.data, 0, v.s0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(one, "disk0", v.s0, NULL, mem_write, &m0), 0);
    ro = ropts("mixed", dir);
    ro.target_vm = one;
    assert_int_equal(restore(&v, &ro, NULL, 0), 0);
    char *f1 = tu_path2(dir, "disk1.raw");
    assert_int_equal(tu_files_equal(v.disk1, f1), 0);
    assert_int_equal(count_files(dir), 1);
    harvbk_vm_free(one);

    free(f1);
    free(dir);
    harvbk_vm_free(tv);
    free(m0.data);
    free(m1.data);
    env_close(&v);
}

static int corrupt_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag != FTW_F || sb->st_size < 64)
        return 0;
    int fd = open(p, O_RDWR);
    uint8_t byte;
    off_t at = sb->st_size / 2;
    if (pread(fd, &byte, 1, at) == 1) {
        byte ^= 0x5a;
        if (pwrite(fd, &byte, 1, at) != 1)
            byte = 0;
    }
    close(fd);
    return 0; /* all of them */
}

static void test_damaged_backup_leaves_no_files(void **state)
{
    env v;
    env_open(&v, "ops-rs-corrupt");
    char *chunks = tu_path2(v.tdir, "chunks");
    nftw(chunks, corrupt_one, 8, FTW_PHYS);
    char *dir = tu_path2(v.root, "out");
    harvbk_restore_options ro = ropts("broken", dir);
    char msg[512];
    assert_int_equal(restore(&v, &ro, msg, sizeof msg), HARVBK_E_CHUNK);
    assert_non_null(strstr(msg, "disk0"));
    assert_int_equal(count_files(dir), 0);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "broken"), HARVBK_E_NOTFOUND);

    /* verify finds it too */
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_verify(&op, v.ctx, "default", "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_CHUNK);
    harvbk_op_errmsg_copy(op, msg, sizeof msg);
    assert_non_null(strstr(msg, "disk"));
    harvbk_op_free(op);

    free(dir);
    free(chunks);
    env_close(&v);
}

static void rewrite_manifest(env *v, const char *from, const char *to, bool truncate)
{
    /* the catalog knows the manifest's listed size and mtime */
    assert_int_equal(harvbk_target_sync(v->ctx, NULL), 0);
    char *p = tu_path2(v->tdir, "backups/default/b1/manifest.json");
    FILE *f = fopen(p, "rb");
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (truncate) {
        n /= 2;
    } else {
        char *at = strstr(buf, from);
        assert_non_null(at);
        memcpy(at, to, strlen(to)); /* same length */
    }
    assert_int_equal(tu_write_file(p, buf, n), 0);
    /* a rewrite seen by a later listing: another modification time (the
     * catalog notices a changed manifest by its listed size or mtime) */
    struct timeval tv[2] = { { time(NULL) + 3600, 0 }, { time(NULL) + 3600, 0 } };
    assert_int_equal(utimes(p, tv), 0);
    free(p);
    assert_int_equal(harvbk_target_sync(v->ctx, NULL), 0);
}

static void test_newer_or_damaged_manifest(void **state)
{
    env v;
    env_open(&v, "ops-rs-manifest");
    char *dir = tu_path2(v.root, "out");
    harvbk_restore_options ro = ropts("x", dir);

    rewrite_manifest(&v, "\"format_major\":1", "\"format_major\":9", false);
    char msg[512];
    assert_int_equal(restore(&v, &ro, msg, sizeof msg), HARVBK_E_FORMAT);
    assert_non_null(strstr(msg, "newer"));
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_verify(&op, v.ctx, "default", "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_FORMAT);
    harvbk_op_free(op);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    assert_non_null(strstr(harvbk_backup_info_error(in), "newer"));
    harvbk_backup_info_free(in);

    rewrite_manifest(&v, NULL, NULL, true);
    assert_int_equal(restore(&v, &ro, NULL, 0), HARVBK_E_CORRUPT);
    assert_int_equal(harvbk_backup_verify(&op, v.ctx, "default", "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_CORRUPT);
    harvbk_op_free(op);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 1);
    assert_int_equal(harvbk_backup_info_state(harvbk_backup_list_at(l, 0)), HARVBK_STATE_ERROR);
    harvbk_backup_list_free(l);
    assert_int_equal(count_files(dir), 0);

    /* a damaged backup can still be deleted */
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), HARVBK_E_NOTFOUND);
    free(dir);
    env_close(&v);
}

static void test_delete_refused_while_restoring_and_cancel_cleans_up(void **state)
{
    env v;
    env_open(&v, "ops-rs-busy");
    membuf m0;
    membuf_init(&m0, v.s0);
    pthread_mutex_init(&m0.mu, NULL);
    pthread_cond_init(&m0.cv, NULL);
    m0.blocked = 1;
    harvbk_vm *tv = NULL;
    assert_int_equal(harvbk_vm_new(&tv, "default", "t"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(tv, "disk1", v.s1, NULL, mem_write, &m0), 0);
    char *dir = tu_path2(v.root, "out");
    harvbk_restore_options ro = ropts("vm2", dir);
    ro.target_vm = tv; /* disk0 goes to a file first, then disk1 blocks */
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_restore_create(&op, v.ctx, "default", "b1", &ro), 0);
    pthread_mutex_lock(&m0.mu);
    while (!m0.writes)
        pthread_cond_wait(&m0.cv, &m0.mu);
    pthread_mutex_unlock(&m0.mu);

    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), HARVBK_E_BUSY);
    assert_non_null(strstr(harvbk_ctx_errmsg(v.ctx), "restored"));
    /* the same new VM cannot be restored twice at once */
    harvbk_op *op2 = NULL;
    char *dir2 = tu_path2(v.root, "out2");
    harvbk_restore_options ro2 = ropts("vm2", dir2);
    assert_int_equal(harvbk_restore_create(&op2, v.ctx, "default", "b1", &ro2), HARVBK_E_EXISTS);
    assert_int_equal(count_files(dir), 1); /* disk0's partial file, hidden */

    assert_int_equal(harvbk_op_cancel(op), 0);
    pthread_mutex_lock(&m0.mu);
    m0.blocked = 0;
    pthread_cond_broadcast(&m0.cv);
    pthread_mutex_unlock(&m0.mu);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_CANCELLED);
    harvbk_op_free(op);
    assert_int_equal(count_files(dir), 0);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "vm2"), HARVBK_E_NOTFOUND);

    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), 0);
    free(dir2);
    free(dir);
    harvbk_vm_free(tv);
    free(m0.data);
    env_close(&v);
}

/* ---- kill -9 during a restore ---- */

static int die_progress(uint64_t done, uint64_t total, void *payload)
{
    if (done > *(const uint64_t *)payload)
        _exit(9); /* like kill -9: no cleanup runs */
    return 0;
}

static void die_on_move(int level, const char *msg, void *payload)
{
    if (strstr(msg, "moved into place"))
        _exit(9);
}

/* Runs a restore of b1 as default/<name> into dir in a child process that
 * dies at the chosen point; returns the child's exit status. */
static int restore_and_die(env *v, const char *name, const char *dir, bool in_rename)
{
    char *sd = tu_path2(v->root, "state");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        harvbk_ctx_options co = HARVBK_CTX_OPTIONS_INIT;
        if (in_rename) {
            co.log_cb = die_on_move;
            co.log_level = HARVBK_LOG_DEBUG;
        }
        harvbk_ctx *c = NULL;
        if (harvbk_ctx_open(&c, sd, &co) != 0)
            _exit(1);
        uint64_t limit = v->s0 / 2;
        harvbk_restore_options ro = ropts(name, dir);
        if (!in_rename) {
            ro.progress_cb = die_progress;
            ro.progress_payload = &limit;
        }
        harvbk_op *op = NULL;
        if (harvbk_restore_create(&op, c, "default", "b1", &ro) != 0)
            _exit(2);
        harvbk_op_wait(op);
        _exit(3); /* the restore ended without reaching the point */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    free(sd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void reopen(env *v)
{
    char *sd = tu_path2(v->root, "state");
    harvbk_ctx_free(v->ctx);
    v->ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&v->ctx, sd, NULL), 0);
    free(sd);
}

static void restore_again_is_exact(env *v, const char *name, const char *dir)
{
    harvbk_restore_options ro = ropts(name, dir);
    assert_int_equal(restore(v, &ro, NULL, 0), 0);
    char *r0 = tu_path2(dir, "disk0.raw"), *r1 = tu_path2(dir, "disk1.raw");
    assert_int_equal(tu_files_equal(v->disk0, r0), 0);
    assert_int_equal(tu_files_equal(v->disk1, r1), 0);
    assert_int_equal(count_files(dir), 2);
    free(r0);
    free(r1);
}

/* Killed while writing: the hidden partial files are removed by the next
 * open of the state directory, and the VM was never registered. */
static void test_killed_while_writing_leaves_nothing_after_reopen(void **state)
{
    env v;
    env_open(&v, "ops-rs-kill-write");
    char *dir = tu_path2(v.root, "out");
    assert_int_equal(restore_and_die(&v, "vmk", dir, false), 9);
    assert_true(count_files(dir) >= 1); /* a partial file was left behind */
    reopen(&v);
    assert_int_equal(count_files(dir), 0);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "vmk"), HARVBK_E_NOTFOUND);
    restore_again_is_exact(&v, "vmk", dir);
    free(dir);
    env_close(&v);
}

/* Killed after the first volume was moved into place and before the second:
 * all-or-nothing - the next open removes the moved volume too (it was never
 * part of a registered VM), and a new restore into the same place works. */
static void test_killed_while_moving_volumes_into_place_is_all_or_nothing(void **state)
{
    env v;
    env_open(&v, "ops-rs-kill-move");
    char *dir = tu_path2(v.root, "out");
    assert_int_equal(restore_and_die(&v, "vmk", dir, true), 9);
    char *r0 = tu_path2(dir, "disk0.raw");
    assert_int_equal(access(r0, F_OK), 0); /* died with one volume in place */
    free(r0);
    reopen(&v);
    assert_int_equal(count_files(dir), 0);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "vmk"), HARVBK_E_NOTFOUND);
    restore_again_is_exact(&v, "vmk", dir);

    /* the same crash, then a restore into that VM without reopening: the
     * leftovers of the dead restore are removed before it starts */
    char *dir2 = tu_path2(v.root, "out2");
    assert_int_equal(restore_and_die(&v, "vmk2", dir2, true), 9);
    restore_again_is_exact(&v, "vmk2", dir2);
    free(dir2);
    free(dir);
    env_close(&v);
}

static int g_pause_fd = -1;
/* Pauses the restore at its last progress call (done == total): every volume
 * is written, none moved into place yet, and nothing changes until the hook
 * returns (the hook runs on the operation's progress thread, so pausing it
 * earlier would not stop the workers: docs/THREADING.md). */
static int pause_progress(uint64_t done, uint64_t total, void *payload)
{
    (void)payload;
    if (total > 0 && done >= total) {
        if (write(g_pause_fd, "x", 1) != 1)
            _exit(4);
        for (;;)
            pause(); /* alive, mid-restore, until killed */
    }
    return 0;
}

/* Recovery never touches the files of a restore whose process is alive. */
static void test_open_leaves_a_live_restore_alone(void **state)
{
    env v;
    env_open(&v, "ops-rs-live");
    char *dir = tu_path2(v.root, "out");
    char *sd = tu_path2(v.root, "state");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* never outlive a failed test */
        g_pause_fd = pfd[1];
        harvbk_ctx *c = NULL;
        if (harvbk_ctx_open(&c, sd, NULL) != 0)
            _exit(1);
        uint64_t limit = v.s0 / 2;
        harvbk_restore_options ro = ropts("vml", dir);
        ro.progress_cb = pause_progress;
        ro.progress_payload = &limit;
        harvbk_op *op = NULL;
        if (harvbk_restore_create(&op, c, "default", "b1", &ro) != 0)
            _exit(2);
        harvbk_op_wait(op);
        _exit(3);
    }
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    int before = count_files(dir);
    reopen(&v); /* a second process opening the state directory */
    int after = count_files(dir);
    /* nor can it restore into the same VM meanwhile */
    char *dir2 = tu_path2(v.root, "out2");
    harvbk_restore_options ro = ropts("vml", dir2);
    int rrc = restore(&v, &ro, NULL, 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(before >= 1);
    assert_int_equal(after, before);
    assert_int_equal(rrc, HARVBK_E_EXISTS);
    reopen(&v);
    assert_int_equal(count_files(dir), 0);
    close(pfd[0]);
    close(pfd[1]);
    free(dir2);
    free(sd);
    free(dir);
    env_close(&v);
}

/* Another process (the CLI in a second terminal) cannot delete a backup while
 * a restore from it runs. */
static void test_delete_from_another_process_refused_while_restoring(void **state)
{
    env v;
    env_open(&v, "ops-rs-xdel");
    char *dir = tu_path2(v.root, "out");
    char *sd = tu_path2(v.root, "state");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* never outlive a failed test */
        g_pause_fd = pfd[1];
        harvbk_ctx *c = NULL;
        if (harvbk_ctx_open(&c, sd, NULL) != 0)
            _exit(1);
        uint64_t limit = v.s0 / 2;
        harvbk_restore_options ro = ropts("vmx", dir);
        ro.progress_cb = pause_progress;
        ro.progress_payload = &limit;
        harvbk_op *op = NULL;
        if (harvbk_restore_create(&op, c, "default", "b1", &ro) != 0)
            _exit(2);
        harvbk_op_wait(op);
        _exit(3);
    }
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    int drc = harvbk_backup_delete(v.ctx, "default", "b1");
    char msg[512];
    harvbk_ctx_errmsg_copy(v.ctx, msg, sizeof msg);
    harvbk_backup_info *in = NULL;
    int grc = harvbk_backup_get(&in, v.ctx, "default", "b1");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_int_equal(drc, HARVBK_E_BUSY);
    assert_non_null(strstr(msg, "restored"));
    assert_int_equal(grc, 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    harvbk_backup_info_free(in);
    /* the restorer is gone: deleting works again */
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), 0);
    close(pfd[0]);
    close(pfd[1]);
    free(sd);
    free(dir);
    env_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_existing_vm_existing_files_and_bad_options),
        cmocka_unit_test(test_restore_through_write_callbacks),
        cmocka_unit_test(test_damaged_backup_leaves_no_files),
        cmocka_unit_test(test_newer_or_damaged_manifest),
        cmocka_unit_test(test_delete_refused_while_restoring_and_cancel_cleans_up),
        cmocka_unit_test(test_killed_while_writing_leaves_nothing_after_reopen),
        cmocka_unit_test(test_killed_while_moving_volumes_into_place_is_all_or_nothing),
        cmocka_unit_test(test_open_leaves_a_live_restore_alone),
        cmocka_unit_test(test_delete_from_another_process_refused_while_restoring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
