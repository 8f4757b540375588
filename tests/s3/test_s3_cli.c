/* tests/s3/test_s3_cli.c - the harvbk CLI on the real S3 test server:
 *   target set s3://... with --secret-access-key-file (secret not stored),
 *   every later command given the secret by the global option,
 *   $HARVBK_SECRET_ACCESS_KEY_FILE or $AWS_SECRET_ACCESS_KEY (never written);
 *   target show reports reachability (and why not, without a secret);
 *   vm add, backup create (full + incremental), list, show, verify, restore
 *   (byte-identical), delete, gc;
 *   --store-secret keeps it in a 0600 file;
 *   an unreachable endpoint fails within --timeout with one line naming it;
 *   the secret never appears in any output (-vv: library debug log too) or
 *   any file of the state directory. */
#include "s3test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024u * 1024u)

static void no_secret(const s3t_run *r)
{
    const char *secret = s3t_env()->secret;
    if (strstr(r->out, secret) || strstr(r->err, secret))
        fail_msg("the secret appears in the CLI's output");
}

static void run_ok(s3t_run *r, const char *const *env, const char *const *args)
{
    s3t_cli(r, env, args);
    no_secret(r);
    if (r->status != 0)
        fail_msg("harvbk %s %s: exit %d\nstdout: %s\nstderr: %s", args[2], args[3], r->status,
                 r->out, r->err);
}

static void test_cli_session_secret_full_cycle(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir("cli");
    char *st = s3t_path(dir, "state"), *img = s3t_path(dir, "disk.img");
    char *orig = s3t_path(dir, "disk.orig"), *rdir = s3t_path(dir, "restored");
    char *prefix = s3t_prefix("cli");
    s3t_mode m = { "cli", false, false };
    char *url = s3t_url(&m, prefix);
    s3t_make_image(img, 6 * MiB, 3);
    s3t_copy(img, orig);
    char disk[4096], aws[1200], hfile[4096];
    snprintf(disk, sizeof disk, "disk0=%s", img);
    snprintf(aws, sizeof aws, "AWS_SECRET_ACCESS_KEY=%s", env->secret);
    snprintf(hfile, sizeof hfile, "HARVBK_SECRET_ACCESS_KEY_FILE=%s", env->secret_file);
    const char *env_aws[] = { aws, NULL };
    const char *env_file[] = { hfile, NULL };
    s3t_run r;

    const char *set[] = { "--state", st, "-vv", "target", "set", url, "--endpoint",
                          env->endpoint, "--region", env->region, "--access-key-id",
                          env->akid, "--secret-access-key-file", env->secret_file,
                          "--chunk-size", "256K", NULL };
    run_ok(&r, NULL, set);
    s3t_run_free(&r);
    char *tj = s3t_path(st, "target.json");
    struct stat sb;
    assert_int_equal(stat(tj, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_false(s3t_tree_contains(st, env->secret));

    /* no secret given: not reachable, and the reason says what to do */
    const char *show[] = { "--state", st, "target", "show", NULL };
    s3t_cli(&r, NULL, show);
    no_secret(&r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "reachable:           no ("));
    assert_non_null(strstr(r.out, "secret"));
    s3t_run_free(&r);
    /* given by the global option, the file variable or AWS_SECRET_ACCESS_KEY */
    const char *show_opt[] = { "--state", st, "--secret-access-key-file", env->secret_file,
                               "target", "show", NULL };
    run_ok(&r, NULL, show_opt);
    assert_non_null(strstr(r.out, "reachable:           yes"));
    assert_non_null(strstr(r.out, "secret-access-key:"));
    s3t_run_free(&r);
    run_ok(&r, env_aws, show);
    assert_non_null(strstr(r.out, "reachable:           yes"));
    s3t_run_free(&r);

    const char *vmadd[] = { "--state", st, "vm", "add", "prod/db", "--disk", disk, NULL };
    run_ok(&r, NULL, vmadd);
    s3t_run_free(&r);
    const char *b1[] = { "--state", st, "-vv", "backup", "create", "prod/db", "--name", "b1",
                         NULL };
    run_ok(&r, env_file, b1);
    s3t_run_free(&r);
    s3t_write_random_at(img, 3 * MiB, 100, 77);
    const char *b2[] = { "--state", st, "-vv", "--secret-access-key-file", env->secret_file,
                         "backup", "create", "prod/db", "--name", "b2", NULL };
    run_ok(&r, NULL, b2);
    s3t_run_free(&r);
    const char *list[] = { "--state", st, "-vv", "backup", "list", "--json", NULL };
    run_ok(&r, env_aws, list);
    assert_non_null(strstr(r.out, "\"b1\""));
    assert_non_null(strstr(r.out, "\"b2\""));
    s3t_run_free(&r);
    const char *showb[] = { "--state", st, "-vv", "backup", "show", "prod/b2", NULL };
    run_ok(&r, env_aws, showb);
    assert_non_null(strstr(r.out, "Ready"));
    s3t_run_free(&r);
    const char *verify[] = { "--state", st, "-vv", "backup", "verify", "prod/b1", NULL };
    run_ok(&r, env_file, verify);
    s3t_run_free(&r);
    assert_int_equal(mkdir(rdir, 0755), 0);
    const char *restore[] = { "--state", st, "-vv", "restore", "prod/b1", "--new-vm",
                              "prod/db-copy", "--into", rdir, NULL };
    run_ok(&r, env_aws, restore);
    s3t_run_free(&r);
    char *rf = s3t_path(rdir, "disk0.raw");
    s3t_assert_same_file(rf, orig);
    const char *del1[] = { "--state", st, "-vv", "backup", "delete", "prod/b1", NULL };
    run_ok(&r, env_aws, del1);
    s3t_run_free(&r);
    const char *del2[] = { "--state", st, "-vv", "backup", "delete", "prod/b2", NULL };
    run_ok(&r, env_file, del2);
    s3t_run_free(&r);
    usleep(1100 * 1000); /* gc keeps chunks written in its own second */
    const char *gc[] = { "--state", st, "-vv", "gc", NULL };
    run_ok(&r, env_aws, gc);
    s3t_run_free(&r);
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    s3t_objs all;
    s3t_list(cfg, "", &all);
    assert_int_equal(all.n, 1); /* the store config */
    s3t_objs_free(&all);
    assert_false(s3t_tree_contains(st, env->secret));

    /* --store-secret: later commands need nothing, the file is 0600 */
    const char *set2[] = { "--state", st, "target", "set", url, "--endpoint", env->endpoint,
                           "--access-key-id", env->akid, "--secret-access-key-file",
                           env->secret_file, "--store-secret", NULL };
    run_ok(&r, NULL, set2);
    s3t_run_free(&r);
    assert_int_equal(stat(tj, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_true(s3t_tree_contains(tj, env->secret));
    run_ok(&r, NULL, show);
    assert_non_null(strstr(r.out, "reachable:           yes"));
    assert_non_null(strstr(r.out, "stored in the state directory"));
    s3t_run_free(&r);

    harvbk_target_config_free(cfg);
    s3t_rmrf(dir);
    free(rf);
    free(tj);
    free(url);
    free(prefix);
    free(st);
    free(img);
    free(orig);
    free(rdir);
    free(dir);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void test_cli_unreachable_endpoint_one_line_within_timeout(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir("cli-down");
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", free_port());
    const char *set[] = { "--state", dir, "target", "set", "s3://bucket/p", "--endpoint", ep,
                          "--access-key-id", env->akid, "--secret-access-key-file",
                          env->secret_file, "--timeout", "2", NULL };
    s3t_run r;
    uint64_t t0 = s3t_now_ms();
    s3t_cli(&r, NULL, set);
    uint64_t took = s3t_now_ms() - t0;
    no_secret(&r);
    fprintf(stderr, "took %llu ms: %s", (unsigned long long)took, r.err);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, ep));
    assert_non_null(strstr(r.err, "cannot reach"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err)); /* one line */
    assert_true(took < 2000 + s3t_slack_ms());
    s3t_run_free(&r);
    s3t_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_session_secret_full_cycle),
        cmocka_unit_test(test_cli_unreachable_endpoint_one_line_within_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
