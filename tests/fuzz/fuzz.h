/*
 * tests/fuzz/fuzz.h - shared by the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Every target defines LLVMFuzzerTestOneInput(). Built with clang and
 * -DHARVBK_FUZZ=ON it is a libFuzzer program (-fsanitize=fuzzer,address,
 * undefined); otherwise driver.c gives it a main() that feeds it every file
 * of the directories on its command line (the committed corpus and the
 * regression inputs), so the ordinary, ASan and valgrind passes of the test
 * suite run the same inputs.
 *
 * A target checks what must hold for any input (a round trip gives back what
 * was decoded, a key handed out is a valid key...); FUZZ_CHECK aborts when it
 * does not, which libFuzzer reports as a crash with the input saved.
 */
#ifndef HB_FUZZ_H
#define HB_FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, memfd_create */
#endif
#include "core/hb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* Largest input the targets look at (libFuzzer's -max_len is smaller). */
#define FUZZ_MAX_INPUT (1u << 20)

/* Largest raw chunk length the chunk decoders are given here (the store's is
 * HB_MAX_CHUNK_SIZE; a smaller bound keeps every run fast), and one buffer of
 * that size, allocated once for the life of the fuzz program. */
#define FUZZ_RAW_CAP (4u << 20)

static inline uint8_t *fuzz_raw_buf(void)
{
    static uint8_t *raw;
    if (!raw && !(raw = malloc(FUZZ_RAW_CAP)))
        abort();
    return raw;
}

/* A NUL-terminated copy of data[0..size) (malloc'd; NUL bytes inside stay:
 * C-string parsers then see a prefix, as they would). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Input split into parts by a separator line: for targets that take several
 * strings. fuzz_next() returns the next part (not NUL-terminated), false at
 * the end. */
typedef struct fuzz_reader {
    const uint8_t *p, *end;
} fuzz_reader;

static inline bool fuzz_next(fuzz_reader *r, const char *sep, const uint8_t **part, size_t *len)
{
    if (r->p > r->end || !r->p)
        return false;
    size_t sl = strlen(sep);
    const uint8_t *q = r->p;
    const uint8_t *hit = NULL;
    if ((size_t)(r->end - q) >= sl)
        hit = memmem(q, (size_t)(r->end - q), sep, sl);
    *part = q;
    if (hit) {
        *len = (size_t)(hit - q);
        r->p = hit + sl;
    } else {
        *len = (size_t)(r->end - q);
        r->p = r->end + 1;
    }
    return true;
}

#endif
