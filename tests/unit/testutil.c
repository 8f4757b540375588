#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"
#include <harvbk.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_mkdtemp(const char *tag)
{
    const char *base = getenv("HARVBK_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char *p = malloc(strlen(base) + strlen(tag) + 32);
    sprintf(p, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

void tu_rmrf(const char *path)
{
    if (!path)
        return;
    char *cmd = malloc(strlen(path) + 16);
    sprintf(cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        /* best effort */
    }
    free(cmd);
}

void tu_fill_random(void *buf, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(p + i, &x, k);
    }
}

int tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(data, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int tu_files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int rc = -1;
    if (fa && fb) {
        char ba[65536], bb[65536];
        for (;;) {
            size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
            if (na != nb || memcmp(ba, bb, na) != 0)
                break;
            if (na == 0) {
                rc = 0;
                break;
            }
        }
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return rc;
}

char *tu_path2(const char *a, const char *b)
{
    char *p = malloc(strlen(a) + strlen(b) + 2);
    sprintf(p, "%s/%s", a, b);
    return p;
}

void tu_set_file_target(harvbk_ctx *ctx, const char *dir)
{
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = malloc(strlen(dir) + 8);
    sprintf(url, "file://%s", dir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg), 0);
    harvbk_target_config_free(cfg);
    free(url);
}

int tu_op_result(harvbk_ctx *ctx, int rc, harvbk_op *op, char *msg, size_t size)
{
    if (rc) {
        if (msg)
            harvbk_ctx_errmsg_copy(ctx, msg, size);
        return rc;
    }
    rc = harvbk_op_wait(op);
    if (msg)
        harvbk_op_errmsg_copy(op, msg, size);
    harvbk_op_free(op);
    return rc;
}

void tu_gate_init(tu_gate *g, const uint8_t *data, size_t size, uint64_t from)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->data = data;
    g->size = size;
    g->from = from;
}

void tu_gate_open(tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void tu_gate_wait_entered(tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_pass(tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

int tu_gated_read(void *buf, size_t len, uint64_t off, void *gate)
{
    tu_gate *g = gate;
    if (off >= g->from)
        gate_pass(g);
    if (off + len > g->size)
        return HARVBK_E_IO;
    memcpy(buf, g->data + off, len);
    return 0;
}

int tu_gated_progress(uint64_t done, uint64_t total, void *gate)
{
    (void)done;
    (void)total;
    gate_pass(gate);
    return 0;
}
