/* tests/unit/test_core.c - the core layer: errors, logging, names, hashing,
 * hex/base64, digest set, work queue, files, JSON helpers, time and ids. */
#include "testutil.h"

#include "core/base64.h"
#include "core/digestset.h"
#include "core/fsutil.h"
#include "core/hb.h"
#include "core/json.h"
#include "core/workq.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* fsync() of this executable: records which paths were synced while
 * `fsync_recording` is set (the library's static objects call this one), then
 * does the real system call. */
static bool fsync_recording;
static char fsync_paths[64][512];
static int fsync_count;

int fsync(int fd)
{
    if (fsync_recording && fsync_count < 64) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, fsync_paths[fsync_count], sizeof fsync_paths[0] - 1);
        fsync_paths[fsync_count][n > 0 ? n : 0] = '\0';
        fsync_count++;
    }
    return (int)syscall(SYS_fsync, fd);
}

static bool fsynced(const char *path)
{
    for (int i = 0; i < fsync_count; i++)
        if (!strcmp(fsync_paths[i], path))
            return true;
    return false;
}

/* ---- errors, version ---- */

static void test_error_table_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(harvbk_error_name(HARVBK_E_CHUNK), "HARVBK_E_CHUNK");
    assert_string_equal(harvbk_error_name(0), "HARVBK_OK");
    assert_string_equal(harvbk_error_name(HARVBK_E_INTERRUPTED), "HARVBK_E_INTERRUPTED");
    assert_string_equal(harvbk_strerror(HARVBK_E_FREEZE), "failed to freeze filesystem");
    assert_string_equal(harvbk_strerror(-999), "unknown error");
    assert_string_equal(harvbk_error_name(-999), "HARVBK_E_UNKNOWN");
    for (int c = 0; c >= HARVBK_ERROR_LAST_; c--)
        assert_string_not_equal(harvbk_strerror(c), "unknown error");
}

static void test_version_matches_header(void **state)
{
    (void)state;
    assert_string_equal(harvbk_version(), HARVBK_VERSION_STRING);
    assert_int_equal(harvbk_version_number(), HARVBK_VERSION_NUMBER);
}

static void test_seterr_truncates_prefixes_and_defaults(void **state)
{
    (void)state;
    hb_err e;
    hb_err_clear(&e);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(hb_seterr(&e, HARVBK_E_IO, "read: %s", big), HARVBK_E_IO);
    assert_int_equal(e.code, HARVBK_E_IO);
    assert_int_equal(strlen(e.msg), HB_ERRMSG_MAX - 1);
    assert_memory_equal(e.msg, "read: xxx", 9);

    /* empty message -> the code's text */
    hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    assert_string_equal(e.msg, "out of memory");

    /* the message itself may be an argument */
    hb_seterr(&e, HARVBK_E_NOTFOUND, "gone");
    hb_seterr(&e, HARVBK_E_NOTFOUND, "again: %s", e.msg);
    assert_string_equal(e.msg, "again: gone");

    assert_int_equal(hb_err_prefix(&e, "file:///t: %s", "chunks/ab"), HARVBK_E_NOTFOUND);
    assert_string_equal(e.msg, "file:///t: chunks/ab: again: gone");

    /* prefix of a huge message stays bounded */
    hb_seterr(&e, HARVBK_E_IO, "%s", big);
    hb_err_prefix(&e, "pre");
    assert_int_equal(strlen(e.msg), HB_ERRMSG_MAX - 1);
    assert_memory_equal(e.msg, "pre: xx", 7);

    /* NULL err is allowed */
    assert_int_equal(hb_seterr(NULL, HARVBK_E_IO, "x"), HARVBK_E_IO);
    hb_err_clear(&e);
    assert_int_equal(e.code, 0);
    assert_string_equal(e.msg, "");
}

static void test_errno_mapping(void **state)
{
    (void)state;
    assert_int_equal(hb_errno_code(ENOENT), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_errno_code(EACCES), HARVBK_E_PERM);
    assert_int_equal(hb_errno_code(EPERM), HARVBK_E_PERM);
    assert_int_equal(hb_errno_code(ENOSPC), HARVBK_E_IO);
    assert_int_equal(hb_errno_code(EIO), HARVBK_E_IO);
    assert_int_equal(hb_errno_code(ENOMEM), HARVBK_E_NOMEM);
}

/* ---- logging ---- */

typedef struct logrec {
    int n;
    int last_level;
    char last[256];
} logrec;

static void log_cb(int level, const char *msg, void *payload)
{
    logrec *r = payload;
    r->n++;
    r->last_level = level;
    snprintf(r->last, sizeof r->last, "%s", msg);
}

static void test_log_delivers_only_up_to_level(void **state)
{
    (void)state;
    logrec r = { 0 };
    hb_logger lg = { log_cb, &r, HARVBK_LOG_WARN };
    hb_log_error(&lg, "boom %d", 42);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.last, "boom 42");
    assert_int_equal(r.last_level, HARVBK_LOG_ERROR);
    hb_log_warn(&lg, "careful");
    assert_int_equal(r.n, 2);
    hb_log_info(&lg, "info");
    hb_log_debug(&lg, "debug");
    assert_int_equal(r.n, 2);
    assert_string_equal(r.last, "careful");
    hb_logger none = { NULL, &r, HARVBK_LOG_DEBUG };
    hb_log_error(&none, "dropped");
    hb_log_error(NULL, "dropped");
    assert_int_equal(r.n, 2);
}

/* ---- memory and buffers ---- */

static void test_buf_append_keeps_nul_and_grows(void **state)
{
    (void)state;
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_buf_append_str(&b, "abc"), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal((char *)b.data, "abc");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(hb_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10003);
    assert_int_equal(b.data[b.len], 0);
    assert_memory_equal(b.data + 9993, "0123456789", 10);
    hb_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    hb_buf_free(&b);
    assert_null(b.data);

    char *s = hb_asprintf("%s-%d", "vm", 7);
    assert_string_equal(s, "vm-7");
    hb_free(s);
    s = hb_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    hb_free_secret(s);
    assert_null(hb_strdup(NULL));
    harvbk_string_free(NULL);
}

/* ---- names ---- */

static void test_names_dns1123(void **state)
{
    (void)state;
    const char *good[] = { "a", "vm1", "my-vm", "0", "a-b-c", "default", "9x9" };
    const char *bad[] = { "", "A", "../x", "-a", "a-", "a_b", "a.b", "a b", "vm/1", "Ab", "ä" };
    for (size_t i = 0; i < HB_ARRAY_LEN(good); i++) {
        assert_true(hb_name_valid(good[i]));
        assert_int_equal(harvbk_name_is_valid(good[i]), 1);
    }
    for (size_t i = 0; i < HB_ARRAY_LEN(bad); i++) {
        assert_false(hb_name_valid(bad[i]));
        assert_int_equal(harvbk_name_is_valid(bad[i]), 0);
    }
    assert_false(hb_name_valid(NULL));
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_true(hb_name_valid(n63));
    assert_false(hb_name_valid(n64));

    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_check_name("VM name", "my-vm", &e), 0);
    assert_int_equal(hb_check_name("VM name", "Bad_Name", &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "VM name"));
    assert_non_null(strstr(e.msg, "Bad_Name"));
    assert_int_equal(hb_check_name("namespace", "", &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "namespace"));
    assert_int_equal(hb_check_name("namespace", n64, &e), HARVBK_E_INVALID);
}

/* ---- hashing, hex, zero detection ---- */

static void expect_sha(const char *input, const char *hex)
{
    uint8_t d[HB_DIGEST_LEN];
    char h[HB_DIGEST_HEX_LEN + 1];
    hb_sha256(input, strlen(input), d);
    hb_hex(d, sizeof d, h);
    assert_string_equal(h, hex);
}

static void test_sha256_known_vectors(void **state)
{
    (void)state;
    expect_sha("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sha("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

typedef struct sha_job {
    uint8_t data[4096];
    uint8_t expect[HB_DIGEST_LEN];
    int ok;
} sha_job;

static void *sha_thread(void *p)
{
    sha_job *j = p;
    j->ok = 1;
    for (int i = 0; i < 2000; i++) {
        uint8_t d[HB_DIGEST_LEN];
        hb_sha256(j->data, sizeof j->data, d);
        if (memcmp(d, j->expect, sizeof d) != 0)
            j->ok = 0;
    }
    return NULL;
}

static void test_sha256_is_thread_safe(void **state)
{
    (void)state;
    sha_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        tu_fill_random(jobs[i].data, sizeof jobs[i].data, (uint64_t)i + 1);
        hb_sha256(jobs[i].data, sizeof jobs[i].data, jobs[i].expect);
    }
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, sha_thread, &jobs[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].ok, 1);
    }
}

static void test_hex_round_trip_and_bad_input(void **state)
{
    (void)state;
    uint8_t in[32], out[32];
    char hex[65];
    tu_fill_random(in, sizeof in, 7);
    hb_hex(in, sizeof in, hex);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(hb_unhex(hex, out, sizeof out), 0);
    assert_memory_equal(in, out, sizeof in);
    uint8_t two[2];
    assert_int_equal(hb_unhex("ABcd", two, 2), 0);
    assert_int_equal(two[0], 0xab);
    assert_int_equal(two[1], 0xcd);
    assert_int_equal(hb_unhex("abc", two, 2), HARVBK_E_INVALID);   /* short */
    assert_int_equal(hb_unhex("abcd0", two, 2), HARVBK_E_INVALID); /* long */
    assert_int_equal(hb_unhex("abzz", two, 2), HARVBK_E_INVALID);
    assert_int_equal(hb_unhex("", two, 2), HARVBK_E_INVALID);
    assert_int_equal(hb_unhex(NULL, two, 2), HARVBK_E_INVALID);
}

static void test_is_zero_detects_any_nonzero_byte(void **state)
{
    (void)state;
    size_t sizes[] = { 0, 1, 15, 16, 17, 31, 32, 33, 100, 4096 };
    for (size_t s = 0; s < HB_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        uint8_t *b = calloc(1, n + 1);
        assert_true(hb_is_zero(b, n));
        for (size_t i = 0; i < n; i++) {
            b[i] = 0x10;
            assert_false(hb_is_zero(b, n));
            b[i] = 0;
        }
        b[n] = 1; /* beyond the range: ignored */
        assert_true(hb_is_zero(b, n));
        free(b);
    }
    size_t big = 4u << 20;
    uint8_t *b = calloc(1, big);
    assert_true(hb_is_zero(b, big));
    b[big - 1] = 1;
    assert_false(hb_is_zero(b, big));
    free(b);
}

/* ---- base64 ---- */

static void test_base64_vectors_round_trip_and_bad_input(void **state)
{
    (void)state;
    const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    const char *enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    hb_buf b = HB_BUF_INIT;
    hb_err e;
    for (size_t i = 0; i < HB_ARRAY_LEN(plain); i++) {
        char *s = hb_base64_encode(plain[i], strlen(plain[i]));
        assert_string_equal(s, enc[i]);
        hb_free(s);
        assert_int_equal(hb_base64_decode(enc[i], &b, &e), 0);
        assert_int_equal(b.len, strlen(plain[i]));
        assert_memory_equal(b.data, plain[i], b.len);
    }
    for (size_t n = 0; n < 300; n++) {
        uint8_t data[300];
        tu_fill_random(data, n, n + 100);
        char *s = hb_base64_encode(data, n);
        assert_int_equal(hb_base64_decode(s, &b, &e), 0);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, data, n);
        hb_free(s);
    }
    const char *bad[] = { "Zg=", "Z===", "Zh==", "Zm9=", "Zm9v\n", "Zm=v", "=m9v", "Zm9v====",
                          "Zm 9", "Zm9v*A==" };
    for (size_t i = 0; i < HB_ARRAY_LEN(bad); i++) {
        hb_err_clear(&e);
        assert_int_equal(hb_base64_decode(bad[i], &b, &e), HARVBK_E_CORRUPT);
        assert_int_equal(e.code, HARVBK_E_CORRUPT);
        assert_non_null(strstr(e.msg, "base64"));
    }
    hb_buf_free(&b);
}

/* ---- digest set ---- */

static void test_digestset_100k_members_and_absent(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint8_t(*in)[32] = malloc((size_t)N * 32);
    uint8_t(*out)[32] = malloc((size_t)N * 32);
    hb_random(in, (size_t)N * 32);
    hb_random(out, (size_t)N * 32);
    hb_dset *s = hb_dset_new(16); /* forces many grows */
    assert_non_null(s);
    for (int i = 0; i < N; i++)
        assert_int_equal(hb_dset_add(s, in[i]), 1);
    assert_int_equal(hb_dset_count(s), N);
    for (int i = 0; i < N; i++) {
        assert_true(hb_dset_has(s, in[i]));
        assert_false(hb_dset_has(s, out[i]));
    }
    for (int i = 0; i < N; i += 7)
        assert_int_equal(hb_dset_add(s, in[i]), 0);
    assert_int_equal(hb_dset_count(s), N);

    /* the all-zero digest is a member like any other */
    uint8_t zero[32] = { 0 };
    assert_false(hb_dset_has(s, zero));
    assert_int_equal(hb_dset_add(s, zero), 1);
    assert_int_equal(hb_dset_add(s, zero), 0);
    assert_true(hb_dset_has(s, zero));

    /* iteration yields every member once */
    hb_dset *seen = hb_dset_new(N);
    size_t pos = 0, n = 0;
    const uint8_t *d;
    while (hb_dset_next(s, &pos, &d)) {
        assert_true(hb_dset_has(s, d));
        assert_int_equal(hb_dset_add(seen, d), 1);
        n++;
    }
    assert_int_equal(n, N + 1);
    hb_dset_free(seen);
    hb_dset_free(s);
    hb_dset_free(NULL);
    free(in);
    free(out);
}

/* ---- work queue ---- */

typedef struct wq_state {
    atomic_int *runs;
    atomic_int running, max_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gate_open;
    bool use_gate;
    int sleep_us;
} wq_state;

static void wq_job(void *job, void *arg)
{
    wq_state *st = arg;
    int r = atomic_fetch_add(&st->running, 1) + 1;
    int m = atomic_load(&st->max_running);
    while (r > m && !atomic_compare_exchange_weak(&st->max_running, &m, r))
        ;
    if (st->use_gate) {
        pthread_mutex_lock(&st->mu);
        while (!st->gate_open)
            pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
    }
    if (st->sleep_us)
        usleep((useconds_t)st->sleep_us);
    atomic_fetch_add(&st->runs[(intptr_t)job], 1);
    atomic_fetch_sub(&st->running, 1);
}

static void test_workq_runs_every_job_exactly_once(void **state)
{
    (void)state;
    enum { N = 20000 };
    wq_state st = { 0 };
    st.runs = calloc(N, sizeof *st.runs);
    hb_workq *q;
    assert_int_equal(hb_workq_new(&q, 4, 8, wq_job, &st), 0);
    for (intptr_t i = 0; i < N; i++)
        assert_int_equal(hb_workq_submit(q, (void *)i), 0);
    hb_workq_drain(q);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&st.runs[i]), 1);
    assert_true(atomic_load(&st.max_running) <= 4);
    /* the queue is reusable after a drain */
    for (intptr_t i = 0; i < 100; i++)
        assert_int_equal(hb_workq_submit(q, (void *)i), 0);
    hb_workq_free(q); /* drains first */
    for (int i = 0; i < 100; i++)
        assert_int_equal(atomic_load(&st.runs[i]), 2);
    free(st.runs);
    hb_workq_free(NULL);
}

typedef struct submitter {
    hb_workq *q;
    int n;
    atomic_int submitted;
} submitter;

static void *submit_thread(void *p)
{
    submitter *s = p;
    for (intptr_t i = 0; i < s->n; i++) {
        hb_workq_submit(s->q, (void *)i);
        atomic_fetch_add(&s->submitted, 1);
    }
    return NULL;
}

static void test_workq_submit_blocks_when_queue_full(void **state)
{
    (void)state;
    enum { THREADS = 2, DEPTH = 3, N = 20 };
    wq_state st = { 0 };
    st.runs = calloc(N, sizeof *st.runs);
    st.use_gate = true;
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    hb_workq *q;
    assert_int_equal(hb_workq_new(&q, THREADS, DEPTH, wq_job, &st), 0);
    submitter s = { q, N, 0 };
    pthread_t th;
    pthread_create(&th, NULL, submit_thread, &s);
    /* workers hold THREADS jobs at the gate, DEPTH wait queued: then submit blocks */
    for (int i = 0; i < 100 && atomic_load(&s.submitted) < THREADS + DEPTH; i++)
        usleep(10000);
    usleep(200000);
    assert_int_equal(atomic_load(&s.submitted), THREADS + DEPTH);
    pthread_mutex_lock(&st.mu);
    st.gate_open = true;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    pthread_join(th, NULL);
    hb_workq_drain(q);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&st.runs[i]), 1);
    hb_workq_free(q);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    free(st.runs);
}

static void test_workq_drain_waits_for_running_jobs(void **state)
{
    (void)state;
    enum { N = 8 };
    wq_state st = { 0 };
    st.runs = calloc(N, sizeof *st.runs);
    st.sleep_us = 100000;
    hb_workq *q;
    assert_int_equal(hb_workq_new(&q, 4, 2, wq_job, &st), 0);
    for (intptr_t i = 0; i < N; i++)
        assert_int_equal(hb_workq_submit(q, (void *)i), 0);
    hb_workq_drain(q); /* the last jobs are running, not queued, when submit returns */
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&st.runs[i]), 1);
    assert_int_equal(atomic_load(&st.running), 0);
    hb_workq_free(q);
    free(st.runs);
}

static void test_default_threads_in_range(void **state)
{
    (void)state;
    unsigned n = hb_default_threads();
    assert_true(n >= 2 && n <= 16);
}

/* ---- files ---- */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_atomic_write_replaces_and_leaves_no_temp(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("core-atomic");
    char *path = hb_path_join(dir, "state.json");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_write_file_atomic(path, "first", 5, 0644, &e), 0);
    assert_int_equal(hb_read_file(path, &b, 0, &e), 0);
    assert_string_equal((char *)b.data, "first");
    assert_int_equal(hb_write_file_atomic(path, "second!", 7, 0600, &e), 0);
    assert_int_equal(hb_read_file(path, &b, 1024, &e), 0);
    assert_int_equal(b.len, 7);
    assert_string_equal((char *)b.data, "second!");
    assert_int_equal(count_entries(dir), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* empty content */
    assert_int_equal(hb_write_file_atomic(path, "", 0, 0644, &e), 0);
    assert_int_equal(hb_read_file(path, &b, 10, &e), 0);
    assert_int_equal(b.len, 0);

    /* failure (missing directory): error, nothing left behind */
    char *bad = hb_path_join(dir, "missing/x.json");
    assert_int_equal(hb_write_file_atomic(bad, "x", 1, 0644, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(count_entries(dir), 1);

    /* read limits and absence */
    assert_int_equal(hb_write_file_atomic(path, "0123456789", 10, 0644, &e), 0);
    assert_int_equal(hb_read_file(path, &b, 9, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_read_file(bad, &b, 0, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(e.code, HARVBK_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "missing/x.json"));
    assert_int_equal(count_entries(dir), 1);

    hb_buf_free(&b);
    hb_free(bad);
    hb_free(path);
    tu_rmrf(dir);
    free(dir);
}

static void test_mkdir_p_and_rm_rf(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("core-mkdir");
    char *deep = hb_asprintf("%s/a/b//c/d/", dir);
    hb_err e;
    assert_int_equal(hb_mkdir_p(deep, 0755, &e), 0);
    assert_int_equal(hb_mkdir_p(deep, 0755, &e), 0); /* idempotent */
    char *f = hb_asprintf("%s/a/b/c/d/file", dir);
    assert_int_equal(tu_write_file(f, "x", 1), 0);
    char *under_file = hb_asprintf("%s/a/b/c/d/file/sub", dir);
    assert_int_equal(hb_mkdir_p(under_file, 0755, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_fsync_dir(dir, &e), 0);
    char *a = hb_path_join(dir, "a");
    assert_int_equal(hb_rm_rf(a, &e), 0);
    assert_int_equal(count_entries(dir), 0);
    assert_int_equal(hb_rm_rf(a, &e), 0); /* absent is success */
    hb_free(a);
    hb_free(under_file);
    hb_free(f);
    hb_free(deep);
    char *j = hb_path_join("/x/", "y");
    assert_string_equal(j, "/x/y");
    hb_free(j);
    tu_rmrf(dir);
    free(dir);
}


/* A directory that hb_mkdir_p creates must be durable before it returns:
 * callers write a file into it atomically (which fsyncs only that file's own
 * directory) and count on it surviving a crash. So the parent of every
 * directory created is fsynced. */
static void test_mkdir_p_makes_created_directories_durable(void **state)
{
    (void)state;
    char *dir0 = tu_mkdtemp("core-mkdir-sync");
    char *dir = realpath(dir0, NULL); /* /proc/self/fd shows resolved paths */
    assert_non_null(dir);
    char *deep = hb_asprintf("%s/a/b/c", dir);
    char *a = hb_path_join(dir, "a"), *ab = hb_asprintf("%s/a/b", dir);
    hb_err e;
    fsync_count = 0;
    fsync_recording = true;
    int rc = hb_mkdir_p(deep, 0755, &e);
    fsync_recording = false;
    assert_int_equal(rc, 0);
    assert_true(fsynced(dir)); /* holds the new entry "a" */
    assert_true(fsynced(a));   /* holds "b" */
    assert_true(fsynced(ab));  /* holds "c" */
    /* nothing created, nothing synced */
    fsync_count = 0;
    fsync_recording = true;
    rc = hb_mkdir_p(deep, 0755, &e);
    fsync_recording = false;
    assert_int_equal(rc, 0);
    assert_int_equal(fsync_count, 0);
    hb_free(a);
    hb_free(ab);
    hb_free(deep);
    tu_rmrf(dir);
    free(dir);
    free(dir0);
}

static void test_pread_pwrite_all_and_fd_size(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("core-pio");
    char *path = hb_path_join(dir, "img");
    FILE *fp = fopen(path, "w+b");
    assert_non_null(fp);
    int fd = fileno(fp);
    hb_err e;
    uint8_t data[10000], back[10000];
    tu_fill_random(data, sizeof data, 3);
    assert_int_equal(hb_pwrite_all(fd, data, sizeof data, 5000, &e), 0);
    uint64_t sz = 0;
    assert_int_equal(hb_fd_size(fd, &sz, &e), 0);
    assert_int_equal(sz, 15000);
    assert_int_equal(hb_pread_all(fd, back, sizeof back, 5000, &e), 0);
    assert_memory_equal(data, back, sizeof data);
    assert_int_equal(hb_pread_all(fd, back, sizeof back, 10000, &e), HARVBK_E_IO);
    fclose(fp);
    hb_free(path);
    tu_rmrf(dir);
    free(dir);
}

/* ---- JSON ---- */

/* Messages quote names, codecs and server answers from targets: no control
 * character (terminal escapes, newlines) survives in one. */
static void test_messages_have_no_control_characters(void **state)
{
    (void)state;
    hb_err e;
    hb_err_clear(&e);
    hb_seterr(&e, HARVBK_E_CORRUPT, "codec \"%s\"", "z\x1b[2J\nx\x7f\ty");
    assert_string_equal(e.msg, "codec \"z?[2J?x??y\"");
    hb_err_prefix(&e, "backup %s", "a\rb");
    assert_string_equal(e.msg, "backup a?b: codec \"z?[2J?x??y\"");
    assert_string_equal(e.msg + strlen(e.msg) - 1, "\"");
    char utf8[] = "d\xc3\xadsk";
    hb_msg_sanitize(utf8);
    assert_string_equal(utf8, "d\xc3\xadsk"); /* UTF-8 is left alone */
}

static void test_json_parse_is_strict(void **state)
{
    (void)state;
    cJSON *j = NULL;
    hb_err e;
    const char *ok = "{\"a\":1} \n";
    assert_int_equal(hb_json_parse(ok, strlen(ok), "manifest", &j, &e), 0);
    cJSON_Delete(j);
    /* not NUL-terminated inside the length */
    char raw[7] = { '{', '"', 'b', '"', ':', '2', '}' };
    assert_int_equal(hb_json_parse(raw, sizeof raw, "manifest", &j, &e), 0);
    cJSON_Delete(j);
    const char *bad[] = { "{\"a\":1} x", "{\"a\":", "", "nope", "{\"a\":1}{}" };
    for (size_t i = 0; i < HB_ARRAY_LEN(bad); i++) {
        hb_err_clear(&e);
        assert_int_equal(hb_json_parse(bad[i], strlen(bad[i]), "manifest", &j, &e),
                         HARVBK_E_CORRUPT);
        assert_null(j);
        assert_non_null(strstr(e.msg, "manifest"));
    }
    /* a string holding U+0000, escaped or raw, is refused (cJSON would keep
     * only what comes before it); an escaped backslash before "u0000" is
     * text, and a NUL after the document is allowed */
    const char nul_raw[] = { '{', '"', 'n', '"', ':', '"', 'a', '\0', 'b', '"', '}' };
    assert_int_equal(hb_json_parse(nul_raw, sizeof nul_raw, "m", &j, &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "NUL"));
    const char *nul_bad[] = { "{\"n\":\"a\\u0000/../x\"}", "{\"n\\u0000x\":1}",
                              "[\"\\\\\\u0000\"]", "{\"a\":[\"x\",\"\\u0000\"]}",
                              "{\"n\":\"\\u00001\"}" };
    for (size_t i = 0; i < HB_ARRAY_LEN(nul_bad); i++) {
        assert_int_equal(hb_json_parse(nul_bad[i], strlen(nul_bad[i]), "m", &j, &e),
                         HARVBK_E_CORRUPT);
        assert_null(j);
    }
    const char *nul_ok[] = { "{\"n\":\"a\\\\u0000\"}", "{\"n\":\"\\\"u0000\"}",
                             "{\"n\":\"\\u0100\\u0001\"}" };
    for (size_t i = 0; i < HB_ARRAY_LEN(nul_ok); i++) {
        assert_int_equal(hb_json_parse(nul_ok[i], strlen(nul_ok[i]), "m", &j, &e), 0);
        cJSON_Delete(j);
    }
    const char tail_nul[] = "{\"n\":\"a\"}";
    assert_int_equal(hb_json_parse(tail_nul, sizeof tail_nul, "m", &j, &e), 0);
    cJSON_Delete(j);
    /* an opaque document (VM metadata) may hold it */
    assert_int_equal(hb_json_parse_opaque(nul_bad[0], strlen(nul_bad[0]), "m", &j, &e), 0);
    cJSON_Delete(j);
}

static void test_json_getters_check_types(void **state)
{
    (void)state;
    const char *doc = "{\"s\":\"x\",\"n\":42,\"neg\":-5,\"frac\":1.5,\"big\":9007199254740992,"
                      "\"b\":true,\"nul\":null,\"str_num\":\"7\"}";
    cJSON *j;
    hb_err e;
    assert_int_equal(hb_json_parse(doc, strlen(doc), "index", &j, &e), 0);
    const char *s = NULL;
    uint64_t u = 0;
    int64_t i = 0;
    bool b = false;
    assert_int_equal(hb_json_get_str(j, "s", true, &s, "index", &e), 0);
    assert_string_equal(s, "x");
    assert_int_equal(hb_json_get_u64(j, "n", true, &u, "index", &e), 0);
    assert_int_equal(u, 42);
    assert_int_equal(hb_json_get_u64(j, "big", true, &u, "index", &e), 0);
    assert_true(u == 9007199254740992ull);
    assert_int_equal(hb_json_get_i64(j, "neg", true, &i, "index", &e), 0);
    assert_int_equal(i, -5);
    assert_int_equal(hb_json_get_bool(j, "b", true, &b, "index", &e), 0);
    assert_true(b);

    /* wrong types name what and field */
    hb_err_clear(&e);
    assert_int_equal(hb_json_get_u64(j, "neg", true, &u, "index", &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "index"));
    assert_non_null(strstr(e.msg, "'neg'"));
    assert_int_equal(hb_json_get_u64(j, "frac", false, &u, "index", &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_json_get_i64(j, "frac", false, &i, "index", &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_json_get_u64(j, "str_num", false, &u, "index", &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "'str_num'"));
    assert_int_equal(hb_json_get_str(j, "n", false, &s, "index", &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_json_get_bool(j, "n", false, &b, "index", &e), HARVBK_E_CORRUPT);

    /* missing: required fails, optional leaves the default */
    hb_err_clear(&e);
    assert_int_equal(hb_json_get_str(j, "absent", true, &s, "index", &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "'absent'"));
    u = 77;
    assert_int_equal(hb_json_get_u64(j, "absent", false, &u, "index", &e), 0);
    assert_int_equal(u, 77);
    assert_int_equal(hb_json_get_u64(j, "nul", false, &u, "index", &e), 0);
    assert_int_equal(u, 77);
    assert_int_equal(hb_json_get_u64(j, "nul", true, &u, "index", &e), HARVBK_E_CORRUPT);

    /* not an object */
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(hb_json_get_str(arr, "s", false, &s, "index", &e), HARVBK_E_CORRUPT);
    cJSON_Delete(arr);
    cJSON_Delete(j);

    /* add + print round trip */
    cJSON *o = cJSON_CreateObject();
    assert_non_null(hb_json_add_u64(o, "size", 1ull << 40));
    char *txt = hb_json_print(o);
    assert_string_equal(txt, "{\"size\":1099511627776}");
    cJSON_Delete(o);
    assert_int_equal(hb_json_parse(txt, strlen(txt), "x", &o, &e), 0);
    assert_int_equal(hb_json_get_u64(o, "size", true, &u, "x", &e), 0);
    assert_true(u == (1ull << 40));
    cJSON_Delete(o);
    hb_free(txt);
}

/* ---- time and ids ---- */

static void test_uuid_iso8601_and_clocks(void **state)
{
    (void)state;
    char a[37], b[37];
    hb_uuid(a);
    hb_uuid(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[13], '-');
    assert_int_equal(a[14], '4');
    assert_int_equal(a[18], '-');
    assert_non_null(strchr("89ab", a[19]));
    assert_int_equal(a[23], '-');
    char t[32];
    hb_iso8601(0, t, sizeof t);
    assert_string_equal(t, "1970-01-01T00:00:00Z");
    hb_iso8601(1795600800, t, sizeof t);
    assert_string_equal(t, "2026-11-25T10:00:00Z");
    int64_t now = hb_now();
    assert_true(now > 1700000000);
    uint64_t m1 = hb_mono_ns();
    uint64_t m2 = hb_mono_ns();
    assert_true(m2 >= m1);
    uint8_t r1[16] = { 0 }, r2[16] = { 0 };
    hb_random(r1, sizeof r1);
    hb_random(r2, sizeof r2);
    assert_memory_not_equal(r1, r2, sizeof r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table_names_and_messages),
        cmocka_unit_test(test_version_matches_header),
        cmocka_unit_test(test_seterr_truncates_prefixes_and_defaults),
        cmocka_unit_test(test_errno_mapping),
        cmocka_unit_test(test_log_delivers_only_up_to_level),
        cmocka_unit_test(test_buf_append_keeps_nul_and_grows),
        cmocka_unit_test(test_names_dns1123),
        cmocka_unit_test(test_sha256_known_vectors),
        cmocka_unit_test(test_sha256_is_thread_safe),
        cmocka_unit_test(test_hex_round_trip_and_bad_input),
        cmocka_unit_test(test_is_zero_detects_any_nonzero_byte),
        cmocka_unit_test(test_base64_vectors_round_trip_and_bad_input),
        cmocka_unit_test(test_digestset_100k_members_and_absent),
        cmocka_unit_test(test_workq_runs_every_job_exactly_once),
        cmocka_unit_test(test_workq_submit_blocks_when_queue_full),
        cmocka_unit_test(test_workq_drain_waits_for_running_jobs),
        cmocka_unit_test(test_default_threads_in_range),
        cmocka_unit_test(test_atomic_write_replaces_and_leaves_no_temp),
        cmocka_unit_test(test_mkdir_p_and_rm_rf),
        cmocka_unit_test(test_mkdir_p_makes_created_directories_durable),
        cmocka_unit_test(test_pread_pwrite_all_and_fd_size),
        cmocka_unit_test(test_messages_have_no_control_characters),
        cmocka_unit_test(test_json_parse_is_strict),
        cmocka_unit_test(test_json_getters_check_types),
        cmocka_unit_test(test_uuid_iso8601_and_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
