/* tests/unit/test_errors.c - the calling thread's last error
 * (harvbk_error_last*): set by every failing call, context or not, kept per
 * thread, not cleared by successful calls, never quoting a secret. */
#include "testutil.h"

#include <harvbk.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 200

static void test_nothing_failed_yet(void **state)
{
    (void)state;
    assert_string_equal(harvbk_error_last(), "");
    assert_int_equal(harvbk_error_last_code(), 0);
    char buf[8] = "xxxxxxx";
    assert_int_equal(harvbk_error_last_copy(buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(harvbk_error_last_copy(NULL, 0), 0);
}

static void test_context_less_calls_set_a_message(void **state)
{
    (void)state;
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "Bad_Name", "/dev/null"), HARVBK_E_INVALID);
    assert_int_equal(harvbk_error_last_code(), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "volume name 'Bad_Name' is not a valid DNS-1123"));
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", "/dev/null"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", "/dev/zero"), HARVBK_E_EXISTS);
    assert_string_equal(harvbk_error_last(), "VM default/vm1 already has a volume 'disk0'");
    assert_int_equal(harvbk_error_last_code(), HARVBK_E_EXISTS);

    /* a successful call does not clear it */
    assert_int_equal(harvbk_vm_set_power_state(vm, HARVBK_POWER_OFF), 0);
    assert_string_equal(harvbk_error_last(), "VM default/vm1 already has a volume 'disk0'");
    assert_int_equal(harvbk_vm_set_power_state(vm, (harvbk_power_state)7), HARVBK_E_INVALID);
    assert_string_equal(harvbk_error_last(), "power state 7 is not a harvbk_power_state");
    harvbk_vm_free(vm);
    assert_int_equal(harvbk_vm_new(&vm, "default", ""), HARVBK_E_INVALID);
    assert_string_equal(harvbk_error_last(), "VM name must not be empty");

    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_REGION, "eu west"),
                     HARVBK_E_INVALID);
    assert_string_equal(harvbk_error_last(),
                        "region must be 1 to 64 letters, digits, '-' or '_'");
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, "ftp://host/x"),
                     HARVBK_E_UNSUPPORTED);
    assert_non_null(strstr(harvbk_error_last(), "unknown target URL scheme 'ftp'"));
    /* a bad secret: the message never quotes it */
    assert_int_equal(
        harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, "s3cr3t value"),
        HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "secret access key"));
    assert_null(strstr(harvbk_error_last(), "s3cr3t"));
    harvbk_target_config_free(cfg);

    harvbk_ranges *rg = NULL;
    assert_int_equal(harvbk_ranges_new(&rg), 0);
    assert_int_equal(harvbk_ranges_add(rg, "disk0", UINT64_MAX, 2), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "volume 'disk0': range at offset"));
    harvbk_ranges_free(rg);

    harvbk_image *img = NULL;
    assert_int_equal(harvbk_image_new(&img, "default", "ubuntu"), 0);
    assert_int_equal(harvbk_image_set_checksum(img, "abc"), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "image checksum must be 64"));
    assert_int_equal(harvbk_image_set_url(img, "http://a b"), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "image URL must be"));
    harvbk_image_free(img);

    harvbk_backup_options bo;
    assert_int_equal(harvbk_backup_options_init(&bo, 99), HARVBK_E_VERSION);
    assert_non_null(strstr(harvbk_error_last(), "backup options version 99 is not supported"));
    assert_int_equal(harvbk_error_last_code(), HARVBK_E_VERSION);

    /* the copy: truncated, NUL-terminated, full length returned */
    char small[8];
    size_t len = harvbk_error_last_copy(small, sizeof small);
    assert_int_equal(len, strlen(harvbk_error_last()));
    assert_int_equal(strlen(small), 7);
    assert_memory_equal(small, harvbk_error_last(), 7);
}

/* The state directory must be writable: as root, check it as "nobody". */
static int open_unwritable(const char *dir, char *msg, size_t size)
{
    harvbk_ctx *ctx = NULL;
    int rc = harvbk_ctx_open(&ctx, dir, NULL);
    harvbk_error_last_copy(msg, size);
    if (ctx)
        harvbk_ctx_free(ctx);
    return rc;
}

static void test_ctx_open_on_an_unwritable_dir(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("err-ctxopen");
    char *ro = tu_path2(root, "ro");
    assert_int_equal(mkdir(ro, 0555), 0);
    assert_int_equal(chmod(ro, 0555), 0);
    assert_int_equal(chmod(root, 0755), 0);
    char want[1024];
    char *real = realpath(ro, NULL);
    assert_non_null(real);
    snprintf(want, sizeof want, "state directory '%s' is not writable: ", real);
    free(real);
    if (geteuid() != 0) {
        char msg[1024];
        assert_int_equal(open_unwritable(ro, msg, sizeof msg), HARVBK_E_PERM);
        assert_non_null(strstr(msg, want));
        assert_int_equal(harvbk_error_last_code(), HARVBK_E_PERM);
    } else {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* the child frees its copies of the parent's allocations, so a
             * leak check at its exit (valgrind) finds none */
            free(root);
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(10);
            char msg[1024];
            int rc = open_unwritable(ro, msg, sizeof msg);
            free(ro);
            if (rc != HARVBK_E_PERM)
                _exit(11);
            if (!strstr(msg, want)) {
                fprintf(stderr, "message: %s\n", msg);
                _exit(12);
            }
            if (harvbk_error_last_code() != HARVBK_E_PERM)
                _exit(13);
            _exit(0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    /* a path that cannot be a directory */
    char *file = tu_path2(root, "file");
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, file, NULL), HARVBK_E_INVALID);
    assert_null(ctx);
    assert_non_null(strstr(harvbk_error_last(), "exists and is not a directory"));
    assert_non_null(strstr(harvbk_error_last(), "cannot open state directory"));
    assert_int_equal(harvbk_ctx_open(&ctx, "", NULL), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_error_last(), "state directory must not be empty"));
    free(file);
    free(ro);
    tu_rmrf(root);
    free(root);
}

/* ---- per-thread isolation ---- */

typedef struct shared {
    pthread_barrier_t go, read;
    harvbk_ctx *ctx;
    int failures; /* of the checks, written by each thread for itself */
} shared;

typedef struct worker {
    shared *sh;
    int which;
    int bad;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    harvbk_vm *vm = NULL;
    harvbk_target_config *cfg = NULL;
    if (harvbk_vm_new(&vm, "default", "vm1") || harvbk_target_config_new(&cfg))
        w->bad++;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(&w->sh->go);
        int rc;
        if (w->which == 0)
            rc = harvbk_vm_add_volume_file(vm, "Not_A_Label", "/dev/null");
        else if (w->which == 1)
            rc = harvbk_target_config_set(cfg, HARVBK_TARGET_TIMEOUT_MS, "0");
        else /* a call on the shared context */
            rc = harvbk_vm_unregister(w->sh->ctx, "default", "no-such-vm");
        pthread_barrier_wait(&w->sh->read); /* all three failed: now read */
        char buf[512];
        harvbk_error_last_copy(buf, sizeof buf);
        if (w->which == 0) {
            if (rc != HARVBK_E_INVALID || !strstr(buf, "'Not_A_Label'") ||
                harvbk_error_last_code() != HARVBK_E_INVALID)
                w->bad++;
        } else if (w->which == 1) {
            if (rc != HARVBK_E_INVALID || strcmp(buf, "timeout must be at least 1 ms") != 0 ||
                strcmp(harvbk_error_last(), buf) != 0)
                w->bad++;
        } else {
            if (rc != HARVBK_E_NOTFOUND || !strstr(buf, "no-such-vm") ||
                harvbk_error_last_code() != HARVBK_E_NOTFOUND)
                w->bad++;
        }
    }
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    return NULL;
}

static void *bystander_main(void *p)
{
    int *bad = p;
    for (int i = 0; i < ROUNDS; i++) {
        if (harvbk_error_last()[0] != '\0' || harvbk_error_last_code() != 0)
            (*bad)++;
        harvbk_vm *vm = NULL;
        if (harvbk_vm_new(&vm, "default", "vm2") != 0) /* succeeding calls */
            (*bad)++;
        harvbk_vm_free(vm);
    }
    return NULL;
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("err-threads");
    shared sh;
    memset(&sh, 0, sizeof sh);
    assert_int_equal(harvbk_ctx_open(&sh.ctx, root, NULL), 0);
    pthread_barrier_init(&sh.go, NULL, 3);
    pthread_barrier_init(&sh.read, NULL, 3);
    worker w[3];
    pthread_t t[3], by;
    int by_bad = 0;
    assert_int_equal(pthread_create(&by, NULL, bystander_main, &by_bad), 0);
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){ &sh, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    pthread_join(by, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w[i].bad, 0);
    assert_int_equal(by_bad, 0);
    /* the context's message is still there for compatibility */
    assert_non_null(strstr(harvbk_ctx_errmsg(sh.ctx), "no-such-vm"));
    pthread_barrier_destroy(&sh.go);
    pthread_barrier_destroy(&sh.read);
    harvbk_ctx_free(sh.ctx);
    tu_rmrf(root);
    free(root);
}

static void test_error_table(void **state)
{
    (void)state;
    assert_int_equal(HARVBK_E_CALLBACK, -35);
    assert_string_equal(harvbk_strerror(HARVBK_E_CALLBACK), "a callback reported failure");
    assert_string_equal(harvbk_error_name(HARVBK_E_CALLBACK), "HARVBK_E_CALLBACK");
    assert_int_equal(HARVBK_E_KEY, -36);
    assert_int_equal(HARVBK_ERROR_LAST_, HARVBK_E_KEY);
    assert_string_equal(harvbk_strerror(HARVBK_E_KEY), "encryption key missing or wrong");
    assert_string_equal(harvbk_error_name(HARVBK_E_KEY), "HARVBK_E_KEY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_failed_yet),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_context_less_calls_set_a_message),
        cmocka_unit_test(test_ctx_open_on_an_unwritable_dir),
        cmocka_unit_test(test_last_error_is_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
