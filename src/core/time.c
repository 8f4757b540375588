/* core/time.c - clocks, random bytes, UUIDs, ISO 8601. */
#include "hb.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int64_t hb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t hb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t hb_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t hb_mono_ms(void)
{
    return hb_mono_ns() / 1000000ull;
}

/* RAND_bytes is thread-safe; if it ever fails the kernel CSPRNG is used. */
void hb_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (RAND_bytes(p, chunk) != 1) {
            size_t got = 0;
            while (got < (size_t)chunk) {
                ssize_t r = getrandom(p + got, (size_t)chunk - got, 0);
                if (r < 0) {
                    if (errno == EINTR)
                        continue;
                    break;
                }
                got += (size_t)r;
            }
            /* Both failed (no entropy source at all): never leave the bytes
             * unset; fill the rest from the clock, the pid and a counter so
             * identifiers stay distinct. Only temporaries' names and ids use
             * this function; key material must not (docs/FORMAT.md s.10). */
            static _Atomic uint64_t ctr;
            for (size_t i = got; i < (size_t)chunk; i++) {
                uint64_t z = hb_mono_ns() ^ ((uint64_t)getpid() << 32) ^
                             (atomic_fetch_add(&ctr, 1) * 0x9e3779b97f4a7c15ull);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                p[i] = (uint8_t)(z ^ (z >> 31));
            }
        }
        p += chunk;
        n -= (size_t)chunk;
    }
}

void hb_uuid(char out[37])
{
    uint8_t b[16];
    hb_random(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char hex[33];
    hb_hex(b, sizeof b, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void hb_iso8601(int64_t t, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
