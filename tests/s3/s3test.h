/*
 * tests/s3/s3test.h - helpers of the S3 target tests (tests/s3/test_s3_*.c).
 *
 * The tests talk to the real S3 test server that tests/s3/s3env.sh started
 * (s3rver behind the botocore-verifying, fault-injecting proxy); its env file
 * is named by $HARVBK_TEST_S3_ENV. They use the public API for everything a
 * user does and the library's own target layer (hb_target_list, linked from
 * the static library) to count and inspect the objects in the bucket.
 *
 * Environment: HARVBK_TEST_S3_ENV (required), HARVBK_TEST_TMP (scratch,
 * default /tmp), HARVBK_CLI (the harvbk program, for the CLI tests),
 * HARVBK_TEST_KEEP (keep scratch directories).
 *
 * Every message the library logs (DEBUG included) during a test is captured
 * (s3t_log_*) so tests can check that the secret never appears in it.
 */
#ifndef HARVBK_S3TEST_H
#define HARVBK_S3TEST_H

#include <harvbk.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/hb.h"
#include "target/config.h"
#include "target/target.h"

/* The test server, from $HARVBK_TEST_S3_ENV. */
typedef struct s3env {
    char *endpoint;     /* http://127.0.0.1:PORT (verifying proxy) */
    char *endpoint_tls; /* https://localhost:PORT */
    char *ca;           /* PEM of the CA that signed the proxy's certificate */
    char *region;
    char *akid;
    char *secret_file;
    char *secret;       /* read from secret_file */
    char *bucket;       /* path style */
    char *bucket_vhost; /* DNS-safe, for virtual-hosted style */
    char *control;      /* http://127.0.0.1:PORT/__control */
    char *dir;
} s3env;

/* Load (once per process) and return the environment; fails the test with a
 * clear message when $HARVBK_TEST_S3_ENV is missing or incomplete. */
const s3env *s3t_env(void);

/* How a target reaches the server. */
typedef struct s3t_mode {
    const char *name;
    bool tls;   /* the HTTPS endpoint with --ca-cert */
    bool vhost; /* virtual-hosted style (endpoint host "localhost") */
} s3t_mode;

/* A unique prefix for this test: "<tag>-<pid>-<random>/a b+c%ü" (spaces, '+',
 * '%' and UTF-8 on purpose). malloc'd. */
char *s3t_prefix(const char *tag);

/* Endpoint and bucket of a mode (borrowed / static storage per call). */
const char *s3t_endpoint(const s3t_mode *m);
const char *s3t_bucket(const s3t_mode *m);

/* A target configuration for mode m and prefix (caller frees). with_secret:
 * set the secret in the configuration; extra settings as key/value pairs
 * (NULL-terminated, keys as harvbk_target_key cast to intptr_t). */
harvbk_target_config *s3t_config(const s3t_mode *m, const char *prefix, bool with_secret);
/* The URL of mode m and prefix (malloc'd). */
char *s3t_url(const s3t_mode *m, const char *prefix);

/* Open a context on state_dir with the capturing log hook (DEBUG). */
harvbk_ctx *s3t_ctx(const char *state_dir);
/* Assert harvbk_ctx_set_target succeeds (prints the message otherwise). */
void s3t_set_target_ok(harvbk_ctx *ctx, const harvbk_target_config *cfg);

/* ---- captured library log ---- */
void s3t_log_cb(int level, const char *message, void *payload);
/* Whether any captured line contains needle. */
bool s3t_log_contains(const char *needle);
size_t s3t_log_lines(void);

/* ---- the proxy's control endpoint ---- */
/* POST json to the control URL (path suffix "" or "/stats/reset"); asserts 200. */
void s3t_control(const char *suffix, const char *json);
/* GET the stats; returns the value of an integer at a '.'-separated path
 * ("injected", "by_method.PUT"), 0 when absent. */
uint64_t s3t_stat(const char *path);

/* ---- operations through the public API (rc returned; message in msg) ---- */
harvbk_vm *s3t_vm(const char *ns, const char *name, const char *disk);
int s3t_backup(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name, harvbk_progress_cb cb,
               void *payload, char *msg, size_t msize);
int s3t_restore(harvbk_ctx *ctx, const char *ns, const char *backup, const char *new_vm,
                const char *dir, char *msg, size_t msize);
int s3t_verify(harvbk_ctx *ctx, const char *ns, const char *backup, char *msg, size_t msize);
int s3t_gc(harvbk_ctx *ctx, uint64_t *chunks, char *msg, size_t msize);
/* State of a backup (harvbk_state) or -1 when harvbk_backup_get fails. */
int s3t_backup_state(harvbk_ctx *ctx, const char *ns, const char *name);
uint64_t s3t_backup_uploaded(harvbk_ctx *ctx, const char *ns, const char *name);

/* ---- the bucket as the library's target layer sees it ---- */
typedef struct s3t_obj {
    char *key;
    uint64_t size;
} s3t_obj;
typedef struct s3t_objs {
    s3t_obj *v;
    size_t n;
} s3t_objs;
/* Every object under the target's prefix (keys relative to it, sorted),
 * listed with hb_target_list through a target opened from cfg. */
void s3t_list(const harvbk_target_config *cfg, const char *under, s3t_objs *out);
void s3t_objs_free(s3t_objs *o);
bool s3t_objs_has(const s3t_objs *o, const char *key);
/* Objects of a not in b. */
size_t s3t_objs_minus(const s3t_objs *a, const s3t_objs *b, uint64_t *bytes);
/* hb_target_head through a target opened from cfg: 0 or HARVBK_E_*. */
int s3t_head(const harvbk_target_config *cfg, const char *key);
/* hb_target_del through a target opened from cfg: 0 or HARVBK_E_*. */
int s3t_delete(const harvbk_target_config *cfg, const char *key);
/* Size of an object (asserts it exists). */
uint64_t s3t_size(const harvbk_target_config *cfg, const char *key);

/* ---- files ---- */
char *s3t_tmpdir(const char *tag);
void s3t_rmrf(const char *path);
char *s3t_path(const char *a, const char *b);
/* A disk image of `size` bytes: mixed random and text data, zero regions,
 * and one duplicated region (so dedup and holes are exercised). */
void s3t_make_image(const char *path, uint64_t size, uint64_t seed);
void s3t_write_random_at(const char *path, uint64_t off, uint64_t len, uint64_t seed);
void s3t_copy(const char *src, const char *dst);
/* Number of distinct non-zero chunk_size pieces of a file. */
size_t s3t_distinct_chunks(const char *path, size_t chunk_size);
void s3t_assert_same_file(const char *a, const char *b);
/* Whether the file (or any regular file below a directory) contains needle. */
bool s3t_tree_contains(const char *path, const char *needle);

/* ---- the CLI ---- */
typedef struct s3t_run {
    int status;    /* exit status, -1 when killed */
    char *out, *err;
} s3t_run;
/* Run $HARVBK_CLI with args (NULL-terminated) and extra environment entries
 * ("NAME=value", NULL-terminated list, may be NULL); timeout 120 s. */
void s3t_cli(s3t_run *r, const char *const *env, const char *const *args);
void s3t_run_free(s3t_run *r);

uint64_t s3t_now_ms(void);
/* Extra milliseconds timing assertions allow: 2500, more under valgrind or
 * with HARVBK_E2E_TIMEOUT_SCALE > 1 (the library then runs many times slower). */
unsigned s3t_slack_ms(void);

#endif
