/* tests/unit/testutil.h - helpers shared by the unit tests. */
#ifndef HB_TESTUTIL_H
#define HB_TESTUTIL_H
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh empty directory for this test (under $HARVBK_TEST_TMP or /tmp);
 * returns a malloc'd path. */
char *tu_mkdtemp(const char *tag);
/* rm -rf */
void tu_rmrf(const char *path);
/* Deterministic pseudo-random bytes. */
void tu_fill_random(void *buf, size_t n, uint64_t seed);
/* Write a file of the given bytes; returns 0. */
int tu_write_file(const char *path, const void *data, size_t n);
/* Compare two files byte for byte: 0 equal. */
int tu_files_equal(const char *a, const char *b);
/* "a/b", malloc'd. */
char *tu_path2(const char *a, const char *b);
/* Point ctx at the file:// target dir (64 KiB chunks); asserts success. */
struct harvbk_ctx;
void tu_set_file_target(struct harvbk_ctx *ctx, const char *dir);
/* The result of an operation started with `rc = harvbk_X_create(&op, ctx,
 * ...)`: rc when it did not start, else what harvbk_op_wait() says; the
 * message (of ctx or of op) into msg when msg is not NULL; op is freed. */
struct harvbk_op;
int tu_op_result(struct harvbk_ctx *ctx, int rc, struct harvbk_op *op, char *msg, size_t size);

/* A gate for a volume's read callback (tu_gated_read) or an operation's
 * progress callback (tu_gated_progress): calls wait until tu_gate_open;
 * `entered` counts the calls that reached the gate. Reads below `from` pass
 * without waiting (0: every read waits); reads copy from data[0..size). */
typedef struct tu_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, entered;
    uint64_t from;
    const uint8_t *data;
    size_t size;
} tu_gate;
void tu_gate_init(tu_gate *g, const uint8_t *data, size_t size, uint64_t from);
void tu_gate_open(tu_gate *g);
void tu_gate_wait_entered(tu_gate *g); /* until a call reached the gate */
int tu_gated_read(void *buf, size_t len, uint64_t off, void *gate);
int tu_gated_progress(uint64_t done, uint64_t total, void *gate);
#endif
