/* tests/s3/test_s3_demo.c - `harvbk demo`:
 *   without --target: self-contained (file:// in a temporary directory it
 *   removes), exit 0, restored bytes identical, well under a minute;
 *   --target against the S3 test server (through the verifying proxy: no
 *   request rejected): exit 0, restored bytes identical, and afterwards the
 *   bucket holds exactly what it held before, byte for byte as boto3 sees it
 *   (the state directory's own backup included), the state directory's
 *   backups and VMs are unchanged, the secret appears nowhere;
 *   --target without the secret (also when it was stored with
 *   --store-secret) or without a configured target: one clear line, exit 1,
 *   nothing written.
 * ctest-timeout: 600 */
#include "s3boto.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        fail_msg("harvbk ... %s: exit %d\nstdout: %s\nstderr: %s", args[3], r->status, r->out,
                 r->err);
}

/* entries of dir whose name starts with "harvbk-demo-" */
static size_t demo_dirs_left(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "harvbk-demo-", 12)) {
            fprintf(stderr, "left behind: %s/%s\n", dir, de->d_name);
            n++;
        }
    closedir(d);
    return n;
}

static void test_demo_self_contained(void **state)
{
    (void)state;
    char *dir = s3t_tmpdir("demo-local");
    char tmpenv[4200];
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", dir);
    const char *env[] = { tmpenv, NULL };
    const char *args[] = { "demo", NULL };
    s3t_run r;
    uint64_t t0 = s3t_now_ms();
    s3t_cli(&r, env, args);
    uint64_t took = s3t_now_ms() - t0;
    if (r.status != 0)
        fail_msg("harvbk demo: exit %d\n%s%s", r.status, r.out, r.err);
    assert_non_null(strstr(r.out, "target file://"));
    assert_non_null(strstr(r.out, "backup demo/backup-2 (changed ranges)"));
    assert_non_null(strstr(r.out, "restored bytes identical: yes"));
    assert_null(strstr(r.out, "cleanup:"));
    assert_int_equal(demo_dirs_left(dir), 0);
    fprintf(stderr, "harvbk demo took %llu ms\n", (unsigned long long)took);
    assert_true(took < 60000u * (s3t_slack_ms() / 2500u)); /* README: under a minute */
    s3t_run_free(&r);
    s3t_rmrf(dir);
    free(dir);
}

static void test_demo_against_s3_leaves_nothing(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    s3t_mode m = { "demo-s3", false, false };
    char *dir = s3t_tmpdir("demo-s3");
    char *st = s3t_path(dir, "state"), *img = s3t_path(dir, "disk.img");
    char *tmp = s3t_path(dir, "tmp");
    assert_int_equal(mkdir(tmp, 0755), 0);
    char *prefix = s3t_prefix("demo");
    char *url = s3t_url(&m, prefix);
    char *slash = NULL;
    if (asprintf(&slash, "%s/", prefix) < 0)
        abort();
    char disk[4096], tmpenv[4200];
    snprintf(disk, sizeof disk, "disk0=%s", img);
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", tmp);
    const char *cenv[] = { tmpenv, NULL };
    s3t_run r;

    /* the state directory's target, with a backup of its own */
    const char *set[] = { "--state", st, "target", "set", url, "--endpoint", env->endpoint,
                          "--region", env->region, "--access-key-id", env->akid,
                          "--secret-access-key-file", env->secret_file, NULL };
    run_ok(&r, NULL, set);
    s3t_run_free(&r);
    s3t_make_image(img, 6 * MiB, 5);
    const char *vmadd[] = { "--state", st, "vm", "add", "prod/db", "--disk", disk, NULL };
    run_ok(&r, NULL, vmadd);
    s3t_run_free(&r);
    const char *b1[] = { "--state", st, "--secret-access-key-file", env->secret_file, "backup",
                         "create", "prod/db", "--name", "b1", NULL };
    run_ok(&r, NULL, b1);
    s3t_run_free(&r);
    const char *vmlist[] = { "--state", st, "vm", "list", "--json", NULL };
    run_ok(&r, NULL, vmlist);
    char *vms_before = strdup(r.out);
    s3t_run_free(&r);
    char *before = s3b_view_text(&m, slash, true, 0);
    assert_non_null(strstr(before, "backups/prod/b1/manifest.json"));

    /* the demo, every request checked by the proxy */
    s3t_control("/stats/reset", "{}");
    const char *demo[] = { "--state", st, "--secret-access-key-file", env->secret_file, "demo",
                           "--target", NULL };
    run_ok(&r, cenv, demo);
    fprintf(stderr, "%s", r.out);
    assert_non_null(strstr(r.out, url));
    assert_non_null(strstr(r.out, "backup harvbk-demo-"));
    assert_non_null(strstr(r.out, "restored bytes identical: yes"));
    assert_non_null(strstr(r.out, "every chunk present and intact"));
    assert_non_null(strstr(r.out, "cleanup: removed the demo's backups (namespace harvbk-demo-"));
    s3t_run_free(&r);
    assert_true(s3t_stat("by_method.PUT") > 10);
    assert_int_equal(s3t_stat("rejected"), 0);
    assert_int_equal(demo_dirs_left(tmp), 0);

    /* the bucket holds exactly what it held before */
    char *after = s3b_view_text(&m, slash, true, 0);
    if (strcmp(before, after) != 0)
        fail_msg("the demo changed the bucket:\nbefore: %s\nafter:  %s", before, after);
    /* and the state directory still has its VM and its backup only */
    run_ok(&r, NULL, vmlist);
    assert_string_equal(r.out, vms_before);
    s3t_run_free(&r);
    const char *blist[] = { "--state", st, "--secret-access-key-file", env->secret_file,
                            "backup", "list", NULL };
    run_ok(&r, NULL, blist);
    assert_non_null(strstr(r.out, "prod/b1"));
    assert_null(strstr(r.out, "harvbk-demo-"));
    s3t_run_free(&r);
    const char *verify[] = { "--state", st, "--secret-access-key-file", env->secret_file,
                             "backup", "verify", "prod/b1", NULL };
    run_ok(&r, NULL, verify);
    s3t_run_free(&r);
    assert_false(s3t_tree_contains(st, env->secret));

    s3t_rmrf(dir);
    free(before);
    free(after);
    free(vms_before);
    free(slash);
    free(url);
    free(prefix);
    free(tmp);
    free(img);
    free(st);
    free(dir);
}

static void test_demo_target_refusals(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    s3t_mode m = { "demo-refuse", false, false };
    char *dir = s3t_tmpdir("demo-refuse");
    char *st = s3t_path(dir, "state"), *none = s3t_path(dir, "none");
    char *tmp = s3t_path(dir, "tmp");
    assert_int_equal(mkdir(tmp, 0755), 0);
    char *prefix = s3t_prefix("demo-refuse");
    char *url = s3t_url(&m, prefix);
    char *slash = NULL;
    if (asprintf(&slash, "%s/", prefix) < 0)
        abort();
    char tmpenv[4200];
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", tmp);
    const char *cenv[] = { tmpenv, NULL };
    s3t_run r;

    /* no state directory / no target */
    const char *d0[] = { "--state", none, "demo", "--target", NULL };
    s3t_cli(&r, cenv, d0);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no state directory"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err));
    s3t_run_free(&r);
    struct stat sb;
    assert_int_not_equal(stat(none, &sb), 0); /* not created */
    assert_int_equal(mkdir(none, 0755), 0);
    s3t_cli(&r, cenv, d0);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no backup target is configured"));
    s3t_run_free(&r);

    /* an S3 target without its secret */
    const char *set[] = { "--state", st, "target", "set", url, "--endpoint", env->endpoint,
                          "--region", env->region, "--access-key-id", env->akid,
                          "--secret-access-key-file", env->secret_file, NULL };
    run_ok(&r, NULL, set);
    s3t_run_free(&r);
    char *before = s3b_view_text(&m, slash, true, 0);
    const char *d1[] = { "--state", st, "demo", "--target", NULL };
    s3t_cli(&r, cenv, d1);
    no_secret(&r);
    fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "secret access key"));
    assert_non_null(strstr(r.err, "--secret-access-key-file"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err));
    s3t_run_free(&r);
    /* stored with --store-secret: the library never hands it out */
    const char *set2[] = { "--state", st, "target", "set", url, "--endpoint", env->endpoint,
                           "--region", env->region, "--access-key-id", env->akid,
                           "--secret-access-key-file", env->secret_file, "--store-secret",
                           NULL };
    run_ok(&r, NULL, set2);
    s3t_run_free(&r);
    s3t_cli(&r, cenv, d1);
    no_secret(&r);
    fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "never handed out"));
    s3t_run_free(&r);
    /* a wrong secret: refused by the server before anything is written */
    char *bad = s3t_path(dir, "bad-secret");
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("not-the-right-secret-0123456789\n", f);
    assert_int_equal(fclose(f), 0);
    /* group- or world-readable: refused before the server is asked */
    assert_int_equal(chmod(bad, 0644), 0);
    const char *dopen[] = { "--state", st, "--secret-access-key-file", bad, "demo",
                            "--target", NULL };
    s3t_cli(&r, cenv, dopen);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "group or others"));
    assert_null(strstr(r.err, "not-the-right-secret"));
    s3t_run_free(&r);
    assert_int_equal(chmod(bad, 0600), 0);
    const char *d2[] = { "--state", st, "--secret-access-key-file", bad, "demo", "--target",
                         NULL };
    s3t_cli(&r, cenv, d2);
    no_secret(&r);
    fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "SignatureDoesNotMatch"));
    assert_null(strstr(r.err, "not-the-right-secret"));
    assert_null(strstr(r.out, "not-the-right-secret"));
    s3t_run_free(&r);

    char *after = s3b_view_text(&m, slash, true, 0);
    assert_string_equal(before, after);
    assert_int_equal(demo_dirs_left(tmp), 0);

    s3t_rmrf(dir);
    free(bad);
    free(before);
    free(after);
    free(slash);
    free(url);
    free(prefix);
    free(tmp);
    free(none);
    free(st);
    free(dir);
}

static void test_no_secret_in_server_logs(void **state)
{
    (void)state;
    s3b_assert_server_logs_clean();
    assert_false(s3t_log_contains(s3t_env()->secret));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_self_contained),
        cmocka_unit_test(test_demo_against_s3_leaves_nothing),
        cmocka_unit_test(test_demo_target_refusals),
        cmocka_unit_test(test_no_secret_in_server_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
