/* tests/unit/test_ops_ready.c - "Ready means restorable" against a second
 * cluster, a damaged store and stalled processes, on a file:// target:
 *   two contexts creating the same backup at once: exactly one is Ready, the
 *   other fails with HARVBK_E_EXISTS and wrote nothing under the name;
 *   a chunk lost from the store is read and stored again by the next backup,
 *   with and without changed ranges, also when the previous backup is
 *   another cluster's;
 *   a writer whose lease lapsed while a gc swept either fails or commits a
 *   backup that verifies;
 *   a gc killed with -9 on this host blocks nobody; a gc lease of another
 *   host is waited out (and the wait is logged), not failed on. */
#include "testutil.h"

#include "store/store.h"
#include <harvbk.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

typedef struct env {
    char *root, *tdir, *disks;
    harvbk_ctx *a, *b; /* two clusters on one target */
} env;

static void env_open(env *v, const char *tag)
{
    memset(v, 0, sizeof *v);
    v->root = tu_mkdtemp(tag);
    assert_non_null(v->root);
    v->tdir = tu_path2(v->root, "target");
    v->disks = tu_path2(v->root, "disks");
    mkdir(v->disks, 0755);
    char *sa = tu_path2(v->root, "cluster-a"), *sb = tu_path2(v->root, "cluster-b");
    assert_int_equal(harvbk_ctx_open(&v->a, sa, NULL), 0);
    assert_int_equal(harvbk_ctx_open(&v->b, sb, NULL), 0);
    tu_set_file_target(v->a, v->tdir);
    tu_set_file_target(v->b, v->tdir);
    free(sa);
    free(sb);
}

static void env_close(env *v)
{
    harvbk_ctx_free(v->a);
    harvbk_ctx_free(v->b);
    tu_rmrf(v->root);
    free(v->root);
    free(v->tdir);
    free(v->disks);
}

static char *make_disk(env *v, const char *name, size_t size, uint64_t seed)
{
    char *p = tu_path2(v->disks, name);
    uint8_t *buf = malloc(size);
    tu_fill_random(buf, size, seed);
    assert_int_equal(tu_write_file(p, buf, size), 0);
    free(buf);
    return p;
}

static harvbk_vm *file_vm(const char *name, const char *disk)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", name), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", disk), 0);
    return vm;
}

static int backup(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                  const harvbk_backup_options *opts, char *msg, size_t msgsz)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, vm, name, opts);
    return tu_op_result(ctx, rc, op, msg, msgsz);
}

static int verify(harvbk_ctx *ctx, const char *name)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, ctx, "default", name, NULL);
    if (rc)
        return rc;
    rc = harvbk_op_wait(op);
    harvbk_op_free(op);
    return rc;
}

/* Restore `name` as a new VM into dir/<name> and compare disk0 with want. */
static void restore_equals(harvbk_ctx *ctx, env *v, const char *name, const char *want)
{
    char *dir = tu_path2(v->root, name);
    char vmname[64];
    snprintf(vmname, sizeof vmname, "r-%s", name);
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = vmname;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_restore_create(&op, ctx, "default", name, &ro), 0);
    int rc = harvbk_op_wait(op);
    if (rc) {
        char msg[512];
        harvbk_op_errmsg_copy(op, msg, sizeof msg);
        fail_msg("restore %s: %s: %s", name, harvbk_error_name(rc), msg);
    }
    harvbk_op_free(op);
    char *got = tu_path2(dir, "disk0.raw");
    assert_int_equal(tu_files_equal(want, got), 0);
    free(got);
    free(dir);
}

static int count_files_n;
static int count_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)p;
    (void)sb;
    (void)f;
    if (flag == FTW_F)
        count_files_n++;
    return 0;
}

static int count_files(const char *dir)
{
    count_files_n = 0;
    nftw(dir, count_one, 16, FTW_PHYS);
    return count_files_n;
}

/* Remove `n` chunk objects from the store; returns how many it removed. */
static char lost_paths[16][4096];
static int lost_n;
static int lose_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    if (flag != FTW_F || lost_n >= 16)
        return 0;
    snprintf(lost_paths[lost_n], sizeof lost_paths[0], "%s", p);
    assert_int_equal(unlink(p), 0);
    lost_n++;
    return lost_n >= 16 ? 1 : 0;
}

static int lose_chunks(env *v, int n)
{
    char *c = tu_path2(v->tdir, "chunks");
    lost_n = 0;
    (void)n;
    nftw(c, lose_one, 16, FTW_PHYS);
    free(c);
    return lost_n;
}

static int backdate_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    if (flag == FTW_F) {
        struct timeval tv[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
        utimes(p, tv);
    }
    return 0;
}

static void backdate_chunks(env *v)
{
    char *c = tu_path2(v->tdir, "chunks");
    nftw(c, backdate_one, 16, FTW_PHYS);
    free(c);
}

/* ---- log capture ---- */

typedef struct logcap {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *needle;
    int seen;
} logcap;

static void log_hook(int level, const char *message, void *payload)
{
    (void)level;
    logcap *lc = payload;
    pthread_mutex_lock(&lc->mu);
    if (lc->needle && strstr(message, lc->needle)) {
        lc->seen++;
        pthread_cond_broadcast(&lc->cv);
    }
    pthread_mutex_unlock(&lc->mu);
}

static void logcap_init(logcap *lc, const char *needle)
{
    memset(lc, 0, sizeof *lc);
    pthread_mutex_init(&lc->mu, NULL);
    pthread_cond_init(&lc->cv, NULL);
    lc->needle = needle;
}

/* Wait up to ms for the needle; returns whether it was seen. */
static int logcap_wait(logcap *lc, unsigned ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&lc->mu);
    while (!lc->seen)
        if (pthread_cond_timedwait(&lc->cv, &lc->mu, &dl) != 0)
            break;
    int seen = lc->seen;
    pthread_mutex_unlock(&lc->mu);
    return seen;
}

/* ---- 1. two clusters create the same name at once ---- */

typedef struct racer {
    harvbk_ctx *ctx;
    const harvbk_vm *vm;
    const char *name;
    pthread_barrier_t *bar;
    int rc;
    char msg[512];
} racer;

static void *race_main(void *p)
{
    racer *r = p;
    pthread_barrier_wait(r->bar);
    r->rc = backup(r->ctx, r->vm, r->name, NULL, r->msg, sizeof r->msg);
    return NULL;
}

static void test_same_name_from_two_clusters_exactly_one_wins(void **state)
{
    (void)state;
    env v;
    env_open(&v, "ready-race");
    /* different disks: a mix of both would not verify */
    char *da = make_disk(&v, "a.raw", 6 * CHUNK, 1), *db = make_disk(&v, "b.raw", 6 * CHUNK, 2);
    harvbk_vm *va = file_vm("vm1", da), *vb = file_vm("vm1", db);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    for (int round = 0; round < 8; round++) {
        char name[32];
        snprintf(name, sizeof name, "race-%d", round);
        racer ra = { v.a, va, name, &bar, -1, "" }, rb = { v.b, vb, name, &bar, -1, "" };
        pthread_t ta, tb;
        pthread_create(&ta, NULL, race_main, &ra);
        pthread_create(&tb, NULL, race_main, &rb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        if (!((ra.rc == 0 && rb.rc == HARVBK_E_EXISTS) || (rb.rc == 0 && ra.rc == HARVBK_E_EXISTS)))
            fail_msg("round %d: cluster a: %s (%s), cluster b: %s (%s)", round,
                     harvbk_error_name(ra.rc), ra.msg, harvbk_error_name(rb.rc), rb.msg);
        const char *loser_msg = ra.rc ? ra.msg : rb.msg;
        assert_non_null(strstr(loser_msg, name));
        /* the winner's backup is whole: it verifies and restores its own disk */
        assert_int_equal(verify(v.a, name), 0);
        restore_equals(v.b, &v, name, ra.rc == 0 ? da : db);
        /* under the name: the manifest and the index, no claim left */
        char *edir = malloc(strlen(v.tdir) + 64);
        sprintf(edir, "%s/backups/default/%s", v.tdir, name);
        assert_int_equal(count_files(edir), 2);
        free(edir);
    }
    pthread_barrier_destroy(&bar);
    harvbk_vm_free(va);
    harvbk_vm_free(vb);
    free(da);
    free(db);
    env_close(&v);
}

/* A name being created by another live writer is refused, and deleting the
 * half-written entry meanwhile leaves the other writer's objects alone. */
static void test_claim_of_a_live_writer_blocks_the_name(void **state)
{
    (void)state;
    env v;
    env_open(&v, "ready-claim");
    char *da = make_disk(&v, "a.raw", 2 * CHUNK, 3);
    harvbk_vm *va = file_vm("vm1", da);
    /* a claim as another live writer leaves it (fresh, pid of this process) */
    char *cdir = tu_path2(v.tdir, "backups/default/held/claims");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", cdir);
    assert_int_equal(system(cmd), 0);
    char *claim = tu_path2(cdir, "other-writer.0000abcd.json");
    char doc[256];
    snprintf(doc, sizeof doc, "{\"owner\":\"other-writer\",\"created\":%lld,\"pid\":%d}",
             (long long)time(NULL), (int)getpid());
    assert_int_equal(tu_write_file(claim, doc, strlen(doc)), 0);
    char msg[512];
    assert_int_equal(backup(v.a, va, "held", NULL, msg, sizeof msg), HARVBK_E_EXISTS);
    assert_non_null(strstr(msg, "other-writer"));
    struct stat sb;
    assert_int_equal(stat(claim, &sb), 0); /* never removed: it is live */

    /* a claim of a dead process of this host is stale at once */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    harvbk_ctx_free(v.b); /* nothing else uses the store from here */
    v.b = NULL;
    unlink(claim);
    char *ident = NULL;
    {
        /* the identity fields as this library writes them */
        char boot[64] = "", ns[64] = "", host[256] = "";
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
        if (f) {
            if (fgets(boot, sizeof boot, f))
                boot[strcspn(boot, "\n")] = '\0';
            fclose(f);
        }
        ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
        ns[n > 0 ? n : 0] = '\0';
        gethostname(host, sizeof host - 1);
        ident = malloc(1024);
        snprintf(ident, 1024,
                 "{\"owner\":\"dead-writer\",\"created\":%lld,\"pid\":%d,\"host\":\"%s\","
                 "\"boot\":\"%s\",\"pidns\":\"%s\"}",
                 (long long)time(NULL), (int)pid, host, boot, ns);
    }
    char *dead = tu_path2(cdir, "dead-writer.0000beef.json");
    assert_int_equal(tu_write_file(dead, ident, strlen(ident)), 0);
    if (backup(v.a, va, "held", NULL, msg, sizeof msg) != 0)
        fail_msg("backup over a dead writer's claim: %s", msg);
    assert_int_equal(verify(v.a, "held"), 0);
    assert_int_not_equal(stat(dead, &sb), 0); /* the stale claim was removed */

    free(ident);
    free(dead);
    free(claim);
    free(cdir);
    harvbk_vm_free(va);
    free(da);
    env_close(&v);
}

/* ---- 2. a lost chunk is stored again ---- */

static void lost_chunk_case(int with_ranges)
{
    env v;
    env_open(&v, with_ranges ? "ready-lost-r" : "ready-lost");
    char *d = make_disk(&v, "d.raw", 8 * CHUNK, 4);
    harvbk_vm *vm = file_vm("vm1", d);
    assert_int_equal(backup(v.a, vm, "b1", NULL, NULL, 0), 0);
    int before = count_files(v.tdir);
    assert_int_equal(lose_chunks(&v, 1), 8); /* every chunk of b1 is gone */
    assert_int_equal(verify(v.a, "b1"), HARVBK_E_CHUNK);

    harvbk_ranges *rg = NULL;
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    if (with_ranges) { /* "nothing changed": every chunk would come from b1 */
        assert_int_equal(harvbk_ranges_new(&rg), 0);
        bo.changed_ranges = rg;
    }
    char msg[512];
    if (backup(v.a, vm, "b2", &bo, msg, sizeof msg) != 0)
        fail_msg("b2: %s", msg);
    harvbk_ranges_free(rg);
    /* b2 is restorable, and the chunks it stored again heal b1 too */
    assert_int_equal(verify(v.a, "b2"), 0);
    restore_equals(v.a, &v, "b2", d);
    for (int i = 0; i < 8; i++) {
        struct stat sb;
        assert_int_equal(stat(lost_paths[i], &sb), 0);
    }
    assert_int_equal(verify(v.a, "b1"), 0);
    assert_true(count_files(v.tdir) >= before);
    harvbk_vm_free(vm);
    free(d);
    env_close(&v);
}

static void test_lost_chunk_is_stored_again(void **state)
{
    (void)state;
    lost_chunk_case(0);
}

static void test_lost_chunk_is_stored_again_outside_changed_ranges(void **state)
{
    (void)state;
    lost_chunk_case(1);
}

/* The previous backup of the VM is another cluster's, and the store lacks
 * its chunks (lost, or an index that names chunks never stored). */
static void test_previous_backup_of_another_cluster_with_missing_chunks(void **state)
{
    (void)state;
    env v;
    env_open(&v, "ready-other");
    char *d = make_disk(&v, "d.raw", 5 * CHUNK, 5);
    harvbk_vm *vm = file_vm("vm1", d);
    assert_int_equal(backup(v.b, vm, "from-b", NULL, NULL, 0), 0);
    assert_int_equal(lose_chunks(&v, 5), 5);
    char msg[512];
    if (backup(v.a, vm, "from-a", NULL, msg, sizeof msg) != 0)
        fail_msg("from-a: %s", msg);
    assert_int_equal(verify(v.a, "from-a"), 0);
    restore_equals(v.a, &v, "from-a", d);
    harvbk_vm_free(vm);
    free(d);
    env_close(&v);
}

/* ---- 3. a lapsed writer and a sweeping gc ---- */

static void test_lapsed_writer_never_commits_what_a_gc_sweeps(void **state)
{
    (void)state;
    /* short, but long against the 1 s heartbeat period on a loaded machine:
     * the gc's own lease must not lapse while it waits for the test */
    int saved_ttl = hb_lease_ttl_s;
    hb_lease_ttl_s = 5;
    env v;
    env_open(&v, "ready-lapse");
    size_t size = 3 * CHUNK;
    uint8_t *data = malloc(size);
    tu_fill_random(data, size, 6);
    tu_gate rg;
    tu_gate_init(&rg, data, size, 2 * CHUNK);
    rg.open = 1;
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "disk0", size, tu_gated_read, NULL, &rg), 0);
    /* b0 stores the chunks; deleted, they are garbage that b1 will reuse */
    assert_int_equal(backup(v.a, vm, "b0", NULL, NULL, 0), 0);
    assert_int_equal(harvbk_backup_delete(v.a, "default", "b0"), 0);
    backdate_chunks(&v);

    logcap lc;
    logcap_init(&lc, "waits for a garbage collection");
    assert_int_equal(harvbk_ctx_set_log_hook(v.a, log_hook, &lc, HARVBK_LOG_DEBUG), 0);
    rg.open = 0;
    harvbk_op *bk = NULL;
    assert_int_equal(harvbk_backup_create(&bk, v.a, vm, "b1", NULL), 0);
    tu_gate_wait_entered(&rg); /* chunks 0 and 1 are read (and found in the store) */
    usleep(300 * 1000);

    /* the writer stalls for longer than the TTL: others take it for dead */
    atomic_store(&hb_lease_test_stall, 1);
    sleep((unsigned)hb_lease_ttl_s + 2);
    tu_gate gg;
    tu_gate_init(&gg, NULL, 0, 0);
    harvbk_op_options go = HARVBK_OP_OPTIONS_INIT;
    go.progress_cb = tu_gated_progress;
    go.progress_payload = &gg;
    harvbk_op *gc = NULL;
    assert_int_equal(harvbk_gc(&gc, v.b, &go), 0);
    tu_gate_wait_entered(&gg); /* marked (nothing), listed: about to delete */
    atomic_store(&hb_lease_test_stall, 0);

    /* the writer resumes and reaches its commit while the gc is mid-sweep */
    tu_gate_open(&rg);
    int waited = logcap_wait(&lc, 8000);
    tu_gate_open(&gg);
    assert_int_equal(harvbk_op_wait(gc), 0);
    uint64_t removed = 0;
    assert_int_equal(harvbk_gc_result(gc, &removed, NULL), 0);
    assert_int_equal(removed, 3);
    harvbk_op_free(gc);

    int rc = harvbk_op_wait(bk);
    char msg[512];
    harvbk_op_errmsg_copy(bk, msg, sizeof msg);
    harvbk_op_free(bk);
    if (rc == 0) {
        /* Ready must mean restorable */
        int vr = verify(v.b, "b1");
        if (vr != 0)
            fail_msg("b1 is Ready but does not verify (%s)", harvbk_error_name(vr));
    } else {
        assert_int_equal(rc, HARVBK_E_CHUNK);
        assert_non_null(strstr(msg, "lapsed"));
        harvbk_backup_info *bi = NULL;
        assert_int_equal(harvbk_backup_get(&bi, v.b, "default", "b1"), HARVBK_E_NOTFOUND);
    }
    assert_true(waited); /* it waited for the gc instead of racing it */
    harvbk_ctx_set_log_hook(v.a, NULL, NULL, 0);
    harvbk_vm_free(vm);
    free(data);
    env_close(&v);
    hb_lease_ttl_s = saved_ttl;
}

/* ---- 5. a gc killed with -9, a gc of another host ---- */

static void test_gc_killed_on_this_host_blocks_no_backup(void **state)
{
    (void)state;
    env v;
    env_open(&v, "ready-gckill");
    char *d = make_disk(&v, "d.raw", 3 * CHUNK, 7);
    harvbk_vm *vm = file_vm("vm1", d);
    assert_int_equal(backup(v.a, vm, "b0", NULL, NULL, 0), 0);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* a gc that stops mid-run until it is killed */
        close(pfd[0]);
        tu_gate gg;
        tu_gate_init(&gg, NULL, 0, 0);
        harvbk_op_options go = HARVBK_OP_OPTIONS_INIT;
        go.progress_cb = tu_gated_progress;
        go.progress_payload = &gg;
        harvbk_op *gc = NULL;
        if (harvbk_gc(&gc, v.b, &go) != 0)
            _exit(3);
        tu_gate_wait_entered(&gg);
        if (write(pfd[1], "x", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    char *locks = tu_path2(v.tdir, "locks");
    DIR *dir = opendir(locks);
    free(locks);
    int gc_leases = 0;
    for (struct dirent *de; dir && (de = readdir(dir));)
        gc_leases += strncmp(de->d_name, "gc-", 3) == 0;
    if (dir)
        closedir(dir);
    assert_int_equal(gc_leases, 1); /* the gc holds its lease */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    logcap lc;
    logcap_init(&lc, "waits for a garbage collection");
    assert_int_equal(harvbk_ctx_set_log_hook(v.a, log_hook, &lc, HARVBK_LOG_DEBUG), 0);
    char msg[512];
    if (backup(v.a, vm, "b1", NULL, msg, sizeof msg) != 0)
        fail_msg("b1 after a gc was killed: %s", msg);
    assert_int_equal(lc.seen, 0); /* not even a wait */
    assert_int_equal(verify(v.a, "b1"), 0);
    harvbk_ctx_set_log_hook(v.a, NULL, NULL, 0);
    harvbk_vm_free(vm);
    free(d);
    env_close(&v);
}

static void test_gc_lease_of_another_host_is_waited_out(void **state)
{
    (void)state;
    int saved_ttl = hb_lease_ttl_s;
    hb_lease_ttl_s = 2;
    env v;
    env_open(&v, "ready-gcother");
    char *d = make_disk(&v, "d.raw", 3 * CHUNK, 8);
    harvbk_vm *vm = file_vm("vm1", d);
    assert_int_equal(backup(v.a, vm, "b0", NULL, NULL, 0), 0);
    /* a gc of another host that stopped heartbeating just now */
    char *locks = tu_path2(v.tdir, "locks");
    mkdir(locks, 0755);
    char *lease = tu_path2(locks, "gc-elsewhere.json");
    char doc[256];
    snprintf(doc, sizeof doc,
             "{\"role\":\"gc\",\"owner\":\"elsewhere\",\"heartbeat\":%lld,\"pid\":1,"
             "\"host\":\"another-host\",\"boot\":\"x\",\"pidns\":\"pid:[1]\"}",
             (long long)time(NULL));
    assert_int_equal(tu_write_file(lease, doc, strlen(doc)), 0);

    logcap lc;
    logcap_init(&lc, "waits for a garbage collection");
    assert_int_equal(harvbk_ctx_set_log_hook(v.a, log_hook, &lc, HARVBK_LOG_DEBUG), 0);
    char msg[512];
    if (backup(v.a, vm, "b1", NULL, msg, sizeof msg) != 0)
        fail_msg("b1 with a gc lease of another host: %s", msg);
    assert_true(lc.seen >= 1); /* it said it waited */
    assert_int_equal(verify(v.a, "b1"), 0);
    harvbk_ctx_set_log_hook(v.a, NULL, NULL, 0);
    free(lease);
    free(locks);
    harvbk_vm_free(vm);
    free(d);
    env_close(&v);
    hb_lease_ttl_s = saved_ttl;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_name_from_two_clusters_exactly_one_wins),
        cmocka_unit_test(test_claim_of_a_live_writer_blocks_the_name),
        cmocka_unit_test(test_lost_chunk_is_stored_again),
        cmocka_unit_test(test_lost_chunk_is_stored_again_outside_changed_ranges),
        cmocka_unit_test(test_previous_backup_of_another_cluster_with_missing_chunks),
        cmocka_unit_test(test_lapsed_writer_never_commits_what_a_gc_sweeps),
        cmocka_unit_test(test_gc_killed_on_this_host_blocks_no_backup),
        cmocka_unit_test(test_gc_lease_of_another_host_is_waited_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
