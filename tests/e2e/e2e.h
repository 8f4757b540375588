/*
 * tests/e2e/e2e.h - helpers of the end-to-end tests: run the harvbk CLI as a
 * real process (posix_spawn, captured stdout/stderr, exit status, timeout with
 * kill by PID), temporary directories, disk images, file comparison, store
 * inspection and JSON parsing (cJSON).
 *
 * Environment:
 *   HARVBK_CLI          path of the harvbk CLI (required by CLI tests)
 *   HARVBK_TEST_TMP     where temporary directories go (default /tmp)
 *   HARVBK_CLI_WRAPPER  optional command prefix, split on spaces (e.g.
 *                       "valgrind -q --error-exitcode=99"), run before the CLI
 *   HARVBK_E2E_TIMEOUT_SCALE  optional integer multiplier of every timeout
 *   HARVBK_E2E_KEEP     when set, temporary directories are not removed
 *
 * All helpers are for single-threaded test code.
 */
#ifndef HARVBK_E2E_H
#define HARVBK_E2E_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

/* Default timeout of one CLI command, before scaling. */
#define E2E_TIMEOUT_MS 120000u

#define E2E_KiB 1024ull
#define E2E_MiB (1024ull * 1024ull)

/* ---------------------------------------------------------------- processes */

/** Outcome of one CLI run. */
typedef struct e2e_res {
    pid_t pid;
    bool exited;      /* exited normally; `code` is its exit status */
    int code;
    bool signaled;    /* killed by signal `sig` */
    int sig;
    bool timed_out;   /* we killed it (SIGKILL) because it overran its timeout */
    char *out, *err;  /* captured stdout/stderr, NUL-terminated, never NULL after a run */
    size_t out_len, err_len;
    char cmdline[1024]; /* for messages */
} e2e_res;

/** A CLI process started in the background. */
typedef struct e2e_proc {
    pid_t pid;       /* 0 when not running / already reaped */
    char *out_path, *err_path;
    char cmdline[1024];
} e2e_proc;

/** Path of the CLI ($HARVBK_CLI); fails the test when unset. */
const char *e2e_cli(void);
/** Timeout after HARVBK_E2E_TIMEOUT_SCALE. */
unsigned e2e_scaled_ms(unsigned ms);

/** Start `harvbk [--state STATE] ARGS...` (args NULL-terminated; state may be
 *  NULL to pass no --state). The child's cwd is a scratch directory of this
 *  test process, stdin is /dev/null, stdout/stderr go to capture files.
 *  Returns 0, or -1 (errno) when the spawn failed. */
int e2e_spawnv(e2e_proc *p, const char *state, const char *const *args);

/** Is it still running? (reaps nothing) */
bool e2e_proc_alive(e2e_proc *p);

/** Wait up to timeout_ms for it to end; on timeout SIGKILL it by PID and reap
 *  it (r->timed_out). Fills r (caller frees with e2e_res_free). Returns 0. */
int e2e_proc_wait(e2e_proc *p, e2e_res *r, unsigned timeout_ms);

/** kill -9 the process by PID, reap it and fill r. Returns 0. */
int e2e_proc_kill9(e2e_proc *p, e2e_res *r);

/** SIGKILL (by PID) and reap every child this process started that is still
 *  running. Also runs at exit. Call it from teardowns of tests that start
 *  background processes. */
void e2e_kill_children(void);

/** Run synchronously (spawn + wait with `timeout_ms`, 0 = default). */
int e2e_runv(e2e_res *r, const char *state, unsigned timeout_ms, const char *const *args);
/** Same, arguments as a NULL-terminated list. */
int e2e_run(e2e_res *r, const char *state, ...);
void e2e_res_free(e2e_res *r);

/** Number of lines of a string (a final line without '\n' counts). */
size_t e2e_line_count(const char *s);
/** Case-insensitive substring search. */
bool e2e_icontains(const char *hay, const char *needle);

/* Assertions on a run (they print the command, exit status and output). */
#define e2e_assert_ok(r) e2e_assert_ok_at((r), __FILE__, __LINE__)
/* Non-zero exit by a normal exit (no signal, no timeout), stderr non-empty. */
#define e2e_assert_fails(r) e2e_assert_fails_at((r), __FILE__, __LINE__)
/* e2e_assert_fails + stderr is exactly one non-empty line. */
#define e2e_assert_fails_1line(r) e2e_assert_fails_1line_at((r), __FILE__, __LINE__)
/* stderr contains `needle` (case-insensitive). */
#define e2e_assert_err_has(r, needle) e2e_assert_err_has_at((r), (needle), __FILE__, __LINE__)
/* Exit code exactly `code` by a normal exit. */
#define e2e_assert_exit(r, c) e2e_assert_exit_at((r), (c), __FILE__, __LINE__)
void e2e_assert_ok_at(const e2e_res *r, const char *file, int line);
void e2e_assert_fails_at(const e2e_res *r, const char *file, int line);
void e2e_assert_fails_1line_at(const e2e_res *r, const char *file, int line);
void e2e_assert_err_has_at(const e2e_res *r, const char *needle, const char *file, int line);
void e2e_assert_exit_at(const e2e_res *r, int code, const char *file, int line);
/* Print a run (command, status, output) to stderr, for context. */
void e2e_res_print(const e2e_res *r);

/* Run and assert exit 0 (result freed). */
#define e2e_ok(state, ...) e2e_ok_at(__FILE__, __LINE__, (state), __VA_ARGS__)
void e2e_ok_at(const char *file, int line, const char *state, ...);

/* ------------------------------------------------------- files and images */

/** Fresh empty directory $HARVBK_TEST_TMP/e2e-TAG-XXXXXX (malloc'd path). */
char *e2e_mkdtemp(const char *tag);
/** rm -rf (no-op for NULL; keeps the tree when HARVBK_E2E_KEEP is set). */
void e2e_rmrf(const char *path);
/** rm -rf regardless of HARVBK_E2E_KEEP. */
void e2e_rmrf_force(const char *path);
/** New string "a/b" (malloc'd). */
char *e2e_path(const char *a, const char *b);
/** printf into a new string. */
char *e2e_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Deterministic pseudo-random bytes (xorshift64; incompressible). */
void e2e_fill_random(void *buf, size_t n, uint64_t seed);
/** Compressible text ("line N: the quick brown fox ...\n" lines). */
void e2e_fill_text(void *buf, size_t n, uint64_t seed);

/** Create/replace `path` with `size` random bytes (dense). */
void e2e_make_random(const char *path, uint64_t size, uint64_t seed);
/** Create/replace `path` with `size` bytes of compressible text. */
void e2e_make_text(const char *path, uint64_t size, uint64_t seed);
/** Create/replace `path` with `size` zero bytes actually written (dense). */
void e2e_make_zeros(const char *path, uint64_t size);
/** Create/replace `path` as a hole of `size` bytes (ftruncate, no data). */
void e2e_make_hole(const char *path, uint64_t size);
/** Write `len` random bytes at `off` of existing `path` (no truncation). */
void e2e_write_random_at(const char *path, uint64_t off, uint64_t len, uint64_t seed);
/** Write bytes at offset of an existing or new file (no truncation). */
void e2e_pwrite_file(const char *path, uint64_t off, const void *data, size_t len);
/** Replace `path` with exactly these bytes. */
void e2e_write_file(const char *path, const void *data, size_t len);
/** Whole file into a malloc'd NUL-terminated buffer (*len may be NULL); NULL if absent. */
char *e2e_read_file(const char *path, size_t *len);
/** XOR one byte of a file with 0xFF. */
void e2e_flip_byte(const char *path, uint64_t off);
/** Truncate to len. */
void e2e_truncate(const char *path, uint64_t len);
/** Copy a file (dense copy). */
void e2e_copy_file(const char *src, const char *dst);

bool e2e_exists(const char *path);
/** File size, or -1. */
int64_t e2e_file_size(const char *path);
/** Bytes allocated on disk (st_blocks * 512), or -1. */
int64_t e2e_allocated(const char *path);

/** Compare two files byte for byte: 0 equal, 1 different (first difference
 *  printed), -1 when one cannot be read. */
int e2e_files_cmp(const char *a, const char *b);
#define e2e_assert_same_file(a, b) e2e_assert_same_file_at((a), (b), __FILE__, __LINE__)
void e2e_assert_same_file_at(const char *a, const char *b, const char *file, int line);

/** Sorted list of regular files below `dir`, relative to it (NULL-terminated,
 *  free with e2e_strv_free). An absent dir gives an empty list. */
char **e2e_list_files(const char *dir, size_t *count);
size_t e2e_count_files(const char *dir);
void e2e_strv_free(char **v);
/** Entries of `a` not in `b` (both sorted; returns a new list). */
char **e2e_strv_minus(char *const *a, char *const *b, size_t *count);
bool e2e_strv_has(char *const *v, const char *s);

/** Lowercase hex SHA-256 of a byte range of a file (out has 65 bytes). */
void e2e_sha256_file_range(const char *path, uint64_t off, uint64_t len, char out[65]);
/** Basename of a path (pointer into it). */
const char *e2e_basename(const char *path);

/* ----------------------------------------------------------- CLI helpers */

/** A test's world: a state dir, a file:// target dir, a scratch dir. */
typedef struct e2e_world {
    char *root;    /* everything below it */
    char *state;   /* root/state */
    char *target;  /* root/target (the store) */
    char *work;    /* root/work (images, restores) */
} e2e_world;

/** Create the dirs; when codec != NULL or chunk_size != 0 also run
 *  `target set file://TARGET [--codec C] [--chunk-size N]` (asserting success).
 *  Pass codec "" and chunk_size 0 to set the target with defaults; pass
 *  codec NULL to not set a target at all. */
void e2e_world_init(e2e_world *w, const char *tag, const char *codec, uint64_t chunk_size);
void e2e_world_free(e2e_world *w);
/** `target set file://DIR ...` on another state dir/target dir (asserts). */
void e2e_target_set(const char *state, const char *target_dir, const char *codec,
                    uint64_t chunk_size);

/** `backup show NS/NAME --json` parsed, or NULL when the command failed
 *  (then *res, if not NULL, receives the run; else it is freed). */
cJSON *e2e_show_json(const char *state, const char *ns_name, e2e_res *res);
/** `backup list --json`, asserted to succeed and be a JSON array. */
cJSON *e2e_list_json(const char *state);
/** Entry namespace/name of a list array, or NULL. */
cJSON *e2e_list_find(cJSON *arr, const char *ns, const char *name);
/** String member or NULL; number member as uint64 (asserts it exists and is a number). */
const char *e2e_json_str(const cJSON *o, const char *key);
uint64_t e2e_json_u64(const cJSON *o, const char *key);
/** State string of a backup, "" when `show` failed (malloc'd). */
char *e2e_backup_state(const char *state, const char *ns_name);

/** Chunk files of a file:// store (relative "chunks/aa/bb/<hex>" paths). */
char **e2e_chunk_files(const char *target, size_t *count);

/** Sleep milliseconds. */
void e2e_sleep_ms(unsigned ms);
/** Monotonic milliseconds. */
uint64_t e2e_now_ms(void);

#endif
