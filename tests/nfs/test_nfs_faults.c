/*
 * tests/nfs/test_nfs_faults.c - the NFS target when things go wrong, against
 * the real ganesha of tests/nfs/nfsenv.sh (which these tests kill, stop and
 * restart: the ctest resource lock "nfs_server" keeps the other NFS tests
 * away meanwhile).
 *
 *   - ganesha killed during a backup and restarted soon: the backup retries
 *     and ends Ready with every chunk, or fails cleanly; either way nothing
 *     is Ready with missing data and the next backup is correct and uploads
 *     only what is missing (no existing chunk rewritten);
 *   - ganesha killed and kept down longer than the timeout: the backup fails
 *     with HARVBK_E_TARGET naming the server, is not Ready, and the next
 *     backup after the restart completes the store;
 *   - ganesha restarted while the target was idle: every pooled connection
 *     is dead, and the next operations still succeed (each dead connection
 *     is discarded, a new one connects);
 *   - a hung server (SIGSTOP), a port nobody listens on: clear errors within
 *     the configured timeout, never a hang;
 *   - export not found, permission denied, bad URLs: clear one-line errors
 *     naming the server, with the right codes.
 *
 * ctest-timeout: 600
 */
#include "nfstest.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct world {
    const nfst_env *env;
    char *work, *sub, *url, *store_dir;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->env = nfst_get_env();
    w->work = nfst_mkdtemp("fault");
    const char *slash = strrchr(w->work, '/');
    w->sub = nfst_strf("stores/%s", slash + 1);
    w->url = nfst_strf("%s/%s", w->env->url, w->sub);
    w->store_dir = nfst_strf("%s/%s", w->env->export_dir, w->sub);
    *state = w;
    return 0;
}

/* Whatever a test did to the server, it serves again afterwards. */
static void server_up(const world *w)
{
    char *out = NULL;
    nfst_sh(NULL, "bash '%s' cont-server '%s'", w->env->script, w->env->env_dir);
    int rc = nfst_sh(&out, "ps -p \"$(cat '%s/ganesha.pid')\" >/dev/null 2>&1 || "
                           "bash '%s' restart-server '%s'",
                     w->env->env_dir, w->env->script, w->env->env_dir);
    if (rc != 0)
        print_error("could not restart ganesha: %s\n", out);
    free(out);
}

static int teardown(void **state)
{
    world *w = *state;
    server_up(w);
    nfst_rmrf(w->work);
    nfst_rmrf(w->store_dir);
    free(w->work);
    free(w->sub);
    free(w->url);
    free(w->store_dir);
    free(w);
    return 0;
}

static void server_cmd(const world *w, const char *cmd)
{
    char *out = NULL;
    int rc = nfst_sh(&out, "bash '%s' %s '%s'", w->env->script, cmd, w->env->env_dir);
    if (rc != 0)
        fail_msg("nfsenv.sh %s: %s", cmd, out);
    free(out);
}

static harvbk_ctx *ctx_ok(const world *w, const char *tag, const char *url, unsigned timeout)
{
    char *st = nfst_strf("%s/state-%s", w->work, tag);
    harvbk_ctx *ctx = nfst_ctx_ok(st, url, timeout);
    free(st);
    return ctx;
}

static void restore_same(const world *w, harvbk_ctx *ctx, const char *name, const char *orig)
{
    char *dir = nfst_strf("%s/restore-%s", w->work, name);
    char *vm = nfst_strf("r-%s", name);
    char *msg = NULL;
    int rc = nfst_restore(ctx, "default", name, vm, dir, &msg);
    if (rc)
        fail_msg("restore %s: %s: %s", name, harvbk_error_name(rc), msg);
    char *out = nfst_strf("%s/root.raw", dir);
    nfst_assert_same_file(orig, out);
    free(out);
    free(msg);
    free(vm);
    free(dir);
}

/* The backed-up volume, read through callbacks from the image file: a read
 * at or past `gate` waits until the test has killed the server, so the
 * backup cannot finish before the server is down however slow the test's
 * own thread is scheduled (under load it once polled the progress, found a
 * fifth done and the backup not finished, and the backup then finished
 * while the kill was still on its way: Ready, with the server never missed). */
typedef struct gated_vol {
    int fd;
    uint64_t gate;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool reached, open;
} gated_vol;

static int gated_read(void *buf, size_t len, uint64_t off, void *payload)
{
    gated_vol *g = payload;
    if (off + len > g->gate) {
        pthread_mutex_lock(&g->mu);
        g->reached = true;
        pthread_cond_broadcast(&g->cv);
        while (!g->open)
            pthread_cond_wait(&g->cv, &g->mu);
        pthread_mutex_unlock(&g->mu);
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(g->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Start a backup of img; once it has read a fifth of the volume and wants
 * more, kill ganesha, let the backup go on, bring the server back after
 * down_ms. Returns the backup's result; *msg its message. */
static int backup_with_kill(const world *w, harvbk_ctx *ctx, const char *img, const char *name,
                            unsigned down_ms, char **msg)
{
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    gated_vol g = { .fd = open(img, O_RDONLY | O_CLOEXEC), .gate = (uint64_t)st.st_size / 5 };
    assert_true(g.fd >= 0);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    harvbk_vm *v = NULL;
    assert_int_equal(harvbk_vm_new(&v, "default", "big"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(v, "root", (uint64_t)st.st_size, gated_read,
                                                    NULL, &g),
                     0);
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, v, name, NULL);
    harvbk_vm_free(v);
    if (rc)
        fail_msg("backup_create: %s", harvbk_ctx_errmsg(ctx));
    /* bounded: 60 s for the backup to read a fifth of 40 chunks */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&g.mu);
    while (!g.reached && pthread_cond_timedwait(&g.cv, &g.mu, &until) == 0) {
    }
    bool reached = g.reached;
    pthread_mutex_unlock(&g.mu);
    if (!reached)
        print_error("the backup never read past a fifth of the volume in 60 s\n");
    server_cmd(w, "kill-server");
    pthread_mutex_lock(&g.mu); /* the server is down: the backup goes on */
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    struct timespec ts = { (time_t)(down_ms / 1000), (long)(down_ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    server_cmd(w, "restart-server");
    rc = harvbk_op_wait(op);
    char buf[1024] = "";
    harvbk_op_errmsg_copy(op, buf, sizeof buf);
    *msg = nfst_strf("%s", buf);
    harvbk_op_free(op);
    assert_true(reached);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    close(g.fd);
    return rc;
}

/* After a disturbed backup `name` (result rc): it is Ready only if complete;
 * the next backup uploads exactly the missing chunks and restores. */
static void check_after_fault(const world *w, harvbk_ctx *ctx, const char *img, const char *name,
                              int rc)
{
    int st = nfst_backup_state(ctx, "default", name);
    if (rc == 0) {
        assert_int_equal(st, HARVBK_STATE_READY);
        char *msg = NULL;
        int v = nfst_verify(ctx, "default", name, &msg);
        if (v)
            fail_msg("verify of the Ready backup %s: %s: %s", name, harvbk_error_name(v), msg);
        free(msg);
        restore_same(w, ctx, name, img);
    } else {
        assert_int_not_equal(st, HARVBK_STATE_READY);
    }
    size_t nb = 0, ni = 0;
    uint64_t *inos_before = NULL;
    char **before = nfst_store_chunks(w->store_dir, &nb, &inos_before);
    char **ids = nfst_chunk_ids(img, &ni);
    char *next = nfst_strf("%s-next", name);
    char *msg = NULL;
    int r = nfst_backup(ctx, "default", "big", img, next, &msg);
    if (r)
        fail_msg("backup after the server came back: %s: %s", harvbk_error_name(r), msg);
    free(msg);
    size_t na = 0;
    uint64_t *inos_after = NULL;
    char **after = nfst_store_chunks(w->store_dir, &na, &inos_after);
    /* the store now holds exactly the image's chunks ... */
    if (na != ni)
        fail_msg("after the second backup the store holds %zu chunk files, expected %zu", na, ni);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(after[i], ids[i]);
    /* ... and the chunks that were there were not uploaded again */
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < na; j++)
            if (!strcmp(before[i], after[j]) && inos_before[i] != inos_after[j])
                fail_msg("chunk %s was uploaded again", before[i]);
    print_message("disturbed backup: %s; %zu of %zu chunks were stored before the next backup\n",
                  rc == 0 ? "Ready (retried)" : harvbk_error_name(rc), nb, ni);
    msg = NULL;
    r = nfst_verify(ctx, "default", next, &msg);
    if (r)
        fail_msg("verify %s: %s: %s", next, harvbk_error_name(r), msg);
    free(msg);
    restore_same(w, ctx, next, img);
    nfst_free_strv(before, nb);
    nfst_free_strv(after, na);
    nfst_free_strv(ids, ni);
    free(inos_before);
    free(inos_after);
    free(next);
}

/* Killed and back within a second: retried to success or a clean failure. */
static void test_kill_restart_quick(void **state)
{
    world *w = *state;
    harvbk_ctx *ctx = ctx_ok(w, "q", w->url, 10000);
    char *img = nfst_strf("%s/big.img", w->work);
    nfst_write_disk(img, 40ull * NFST_CHUNK, 11, NULL);
    char *msg = NULL;
    int rc = backup_with_kill(w, ctx, img, "quick", 700, &msg);
    if (rc)
        print_message("backup after a quick restart failed (allowed): %s: %s\n",
                      harvbk_error_name(rc), msg);
    free(msg);
    check_after_fault(w, ctx, img, "quick", rc);
    harvbk_ctx_free(ctx);
    free(img);
}

/* Down longer than the timeout: the backup must fail, cleanly. */
static void test_kill_down_long(void **state)
{
    world *w = *state;
    harvbk_ctx *ctx = ctx_ok(w, "l", w->url, 2000);
    char *img = nfst_strf("%s/big.img", w->work);
    nfst_write_disk(img, 40ull * NFST_CHUNK, 12, NULL);
    char *msg = NULL;
    uint64_t t0 = nfst_now_ms();
    int rc = backup_with_kill(w, ctx, img, "long", 6000, &msg);
    uint64_t took = nfst_now_ms() - t0;
    if (rc != HARVBK_E_TARGET)
        fail_msg("backup with the server down 6 s: %s (%s), expected HARVBK_E_TARGET",
                 harvbk_error_name(rc), msg);
    assert_non_null(strstr(msg, "127.0.0.1"));
    assert_null(strchr(msg, '\n'));
    print_message("failed as expected after %llu ms: %s\n", (unsigned long long)took, msg);
    free(msg);
    check_after_fault(w, ctx, img, "long", rc);
    harvbk_ctx_free(ctx);
    free(img);
}

/* The server restarted while the target sat idle: every pooled connection is
 * dead (its socket was closed by the old server) but nothing has noticed yet.
 * The operations that follow must each discard the dead connection they take
 * and go on with a new one: with a small timeout (2 s) and a pool of many
 * dead connections, a retry budget counted in attempts or eaten by backoff
 * pauses runs out before a live connection is tried. Twice: a backup (writes)
 * and then a verify and a restore (reads) each meet a pool of dead ones. */
static void test_restart_idle_pool(void **state)
{
    world *w = *state;
    harvbk_ctx *ctx = ctx_ok(w, "i", w->url, 2000);
    char *img = nfst_strf("%s/big.img", w->work);
    nfst_write_disk(img, 24ull * NFST_CHUNK, 14, NULL);
    char *msg = NULL;
    /* fills the pool: 8 workers, each on its own connection */
    int rc = nfst_backup(ctx, "default", "big", img, "i1", &msg);
    if (rc)
        fail_msg("first backup: %s: %s", harvbk_error_name(rc), msg);
    free(msg);

    server_cmd(w, "kill-server");
    server_cmd(w, "restart-server");
    uint64_t t0 = nfst_now_ms();
    nfst_write_disk(img, 24ull * NFST_CHUNK, 15, NULL); /* new chunks: puts */
    msg = NULL;
    rc = nfst_backup(ctx, "default", "big", img, "i2", &msg);
    if (rc)
        fail_msg("backup after the server restarted (idle pool): %s: %s",
                 harvbk_error_name(rc), msg);
    free(msg);
    print_message("backup after the restart: Ready in %llu ms\n",
                  (unsigned long long)(nfst_now_ms() - t0));

    server_cmd(w, "kill-server");
    server_cmd(w, "restart-server");
    msg = NULL;
    rc = nfst_verify(ctx, "default", "i2", &msg);
    if (rc)
        fail_msg("verify after the server restarted (idle pool): %s: %s",
                 harvbk_error_name(rc), msg);
    free(msg);
    restore_same(w, ctx, "i2", img);
    harvbk_ctx_free(ctx);
    free(img);
}

/* A hung server: errors within the timeout, naming the server. */
static void test_hung_server(void **state)
{
    world *w = *state;
    harvbk_ctx *ctx = ctx_ok(w, "h", w->url, 2000);
    char *img = nfst_strf("%s/disk.img", w->work);
    nfst_write_disk(img, 3ull * NFST_CHUNK, 13, NULL);
    server_cmd(w, "stop-server");

    /* a new target on the hung server */
    char *st = nfst_strf("%s/state-h2", w->work);
    harvbk_ctx *c2 = NULL;
    char *msg = NULL;
    uint64_t t0 = nfst_now_ms();
    int rc = nfst_ctx(&c2, st, w->url, 2000, &msg);
    uint64_t took = nfst_now_ms() - t0;
    print_message("set target on a hung server: %s after %llu ms: %s\n", harvbk_error_name(rc),
                  (unsigned long long)took, msg);
    assert_int_equal(rc, HARVBK_E_TARGET);
    assert_non_null(strstr(msg, "127.0.0.1"));
    assert_non_null(strstr(msg, "2000 ms"));
    assert_true(took < 2000 + 1500);
    free(msg);
    harvbk_ctx_free(c2);

    /* a backup on an open target */
    t0 = nfst_now_ms();
    rc = nfst_backup(ctx, "default", "hung", img, "h1", &msg);
    took = nfst_now_ms() - t0;
    print_message("backup on a hung server: %s after %llu ms: %s\n", harvbk_error_name(rc),
                  (unsigned long long)took, msg);
    assert_int_equal(rc, HARVBK_E_TARGET);
    assert_non_null(strstr(msg, "127.0.0.1"));
    assert_true(took < 10000);
    free(msg);
    server_cmd(w, "cont-server");
    /* and it works again once the server answers */
    rc = nfst_backup(ctx, "default", "hung", img, "h2", &msg);
    if (rc)
        fail_msg("backup after the server resumed: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    restore_same(w, ctx, "h2", img);
    harvbk_ctx_free(ctx);
    free(st);
    free(img);
}

/* set target `url`: expect code `want`, a one-line message containing
 * `needle` (and the server's name unless needle is given as "!"), within
 * max_ms. */
static void expect_target_error(const world *w, const char *url, unsigned timeout, int want,
                                const char *needle, uint64_t max_ms)
{
    static unsigned seq;
    char *st = nfst_strf("%s/state-e%u", w->work, ++seq);
    harvbk_ctx *ctx = NULL;
    char *msg = NULL;
    uint64_t t0 = nfst_now_ms();
    int rc = nfst_ctx(&ctx, st, url, timeout, &msg);
    uint64_t took = nfst_now_ms() - t0;
    print_message("%s -> %s (%llu ms): %s\n", url, harvbk_error_name(rc),
                  (unsigned long long)took, msg);
    if (rc != want)
        fail_msg("%s: got %s (%s), expected %s", url, harvbk_error_name(rc), msg,
                 harvbk_error_name(want));
    if (needle && !strstr(msg, needle))
        fail_msg("%s: message '%s' does not mention '%s'", url, msg, needle);
    assert_null(strchr(msg, '\n'));
    assert_true(msg[0] != '\0');
    assert_true(took <= max_ms);
    free(msg);
    harvbk_ctx_free(ctx);
    free(st);
}

static void test_unreachable(void **state)
{
    world *w = *state;
    /* nobody listens on these ports inside the namespace */
    char *u1 = nfst_strf("%s/x?nfsport=1&mountport=20048", w->env->url);
    expect_target_error(w, u1, 3000, HARVBK_E_TARGET, "127.0.0.1", 3000 + 1500);
    char *u2 = nfst_strf("%s/x?nfsport=2049&mountport=1", w->env->url);
    expect_target_error(w, u2, 3000, HARVBK_E_TARGET, "127.0.0.1", 3000 + 1500);
    /* an address with no route in the namespace */
    expect_target_error(w, "nfs://10.255.255.1/export/x", 3000, HARVBK_E_TARGET, "10.255.255.1",
                        3000 + 1500);
    free(u1);
    free(u2);
}

static void test_export_not_found(void **state)
{
    world *w = *state;
    expect_target_error(w, "nfs://127.0.0.1/no-such-export/store", 0, HARVBK_E_TARGET,
                        "no export /no-such-export/store", 10000);
    expect_target_error(w, "nfs://127.0.0.1/no-such-export/store", 0, HARVBK_E_TARGET,
                        "127.0.0.1", 10000);
}

static void test_permission_denied(void **state)
{
    world *w = *state;
    /* the export mounts, but this client (squashed to nobody) cannot write:
     * creating the store directory, or the store in the export's root */
    char *u1 = nfst_strf("%s/store", w->env->ro_url);
    expect_target_error(w, u1, 0, HARVBK_E_PERM, "127.0.0.1", 10000);
    expect_target_error(w, w->env->ro_url, 0, HARVBK_E_PERM, "127.0.0.1", 10000);
    free(u1);
}

static void test_bad_urls(void **state)
{
    world *w = *state;
    expect_target_error(w, "nfs://127.0.0.1:2049/export/x", 0, HARVBK_E_INVALID, "nfsport", 1000);
    expect_target_error(w, "nfs://127.0.0.1/export/a/../b", 0, HARVBK_E_INVALID, "'..'", 1000);
    expect_target_error(w, "nfs://127.0.0.1/export/x?version=4", 0, HARVBK_E_UNSUPPORTED,
                        "NFS version 3", 1000);
    /* refused by harvbk_target_config_set already */
    expect_target_error(w, "nfs:///export", 0, HARVBK_E_INVALID, NULL, 1000);
    expect_target_error(w, "nfs://127.0.0.1", 0, HARVBK_E_INVALID, NULL, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_restart_quick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_down_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_idle_pool, setup, teardown),
    };
    /* HARVBK_TEST_FILTER=test_kill_down_long: run only the matching tests */
    const char *filter = getenv("HARVBK_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
