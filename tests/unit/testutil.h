/* tests/unit/testutil.h - helpers shared by the unit tests. */
#ifndef HB_TESTUTIL_H
#define HB_TESTUTIL_H
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
#endif
