/*
 * tests/e2e/e2e_snap.h - helpers of the snapshot, restore and quota
 * end-to-end tests (header-only, static): JSON of the snapshot and quota
 * commands, and an independent recount of snapshot space usage read straight
 * from the store's files (docs/FORMAT.md: manifests, HBI1 indexes, chunk
 * objects) without the library.
 */
#ifndef HARVBK_E2E_SNAP_H
#define HARVBK_E2E_SNAP_H

#include "e2e.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Run a CLI command expected to print JSON; NULL when it failed. */
static inline cJSON *snap_cli_json(const char *state, const char *const *args)
{
    e2e_res r;
    e2e_runv(&r, state, 0, args);
    if (r.timed_out || r.signaled) {
        e2e_res_print(&r);
        fail_msg("command crashed or hung");
    }
    cJSON *j = NULL;
    if (r.exited && r.code == 0) {
        j = cJSON_Parse(r.out);
        if (!j) {
            e2e_res_print(&r);
            fail_msg("no JSON printed");
        }
    }
    e2e_res_free(&r);
    return j;
}

/* `snapshot show NS/NAME --json` or NULL */
static inline cJSON *snap_show_json(const char *state, const char *nsname)
{
    const char *args[] = { "snapshot", "show", nsname, "--json", NULL };
    return snap_cli_json(state, args);
}

static inline char *snap_state(const char *state, const char *nsname)
{
    cJSON *j = snap_show_json(state, nsname);
    const char *s = j ? e2e_json_str(j, "state") : NULL;
    char *out = strdup(s ? s : "");
    cJSON_Delete(j);
    return out;
}

/* Usage of NS (vm NULL) or NS/VM from `quota show --json` (0 when absent);
 * *limit (may be NULL) gets the limit or UINT64_MAX when none. */
static inline uint64_t quota_usage_cli(const char *state, const char *ns, const char *vm,
                                uint64_t *limit)
{
    const char *args[] = { "quota", "show", "--json", NULL };
    cJSON *arr = snap_cli_json(state, args);
    assert_non_null(arr);
    assert_true(cJSON_IsArray(arr));
    uint64_t u = 0;
    if (limit)
        *limit = UINT64_MAX;
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = e2e_json_str(it, "namespace");
        cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "vm");
        bool match = n && strcmp(n, ns) == 0 &&
                     (vm ? cJSON_IsString(v) && strcmp(v->valuestring, vm) == 0 : cJSON_IsNull(v));
        if (!match)
            continue;
        u = e2e_json_u64(it, "usage");
        cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "limit");
        if (limit && cJSON_IsNumber(l))
            *limit = (uint64_t)l->valuedouble;
    }
    cJSON_Delete(arr);
    return u;
}

/* ---- the independent recount ---- */

typedef struct idset {
    unsigned char (*v)[32];
    size_t n, cap;
} idset;

static inline void idset_add(idset *s, const unsigned char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * 32);
        assert_non_null(s->v);
    }
    memcpy(s->v[s->n++], id, 32);
}

static inline int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static inline uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Add every non-hole chunk id of an HBI1 index file. */
static inline void recount_index(idset *s, const char *path)
{
    size_t len = 0;
    unsigned char *b = (unsigned char *)e2e_read_file(path, &len);
    if (!b)
        fail_msg("index %s is missing", path);
    assert_true(len >= 64);
    assert_memory_equal(b, "HBI1", 4);
    uint64_t count = le64(b + 24);
    assert_int_equal(len, 64 + count * 32);
    static const unsigned char zero[32];
    for (uint64_t i = 0; i < count; i++)
        if (memcmp(b + 32 + i * 32, zero, 32) != 0)
            idset_add(s, b + 32 + i * 32);
    free(b);
}

/* Usage of namespace ns (vm NULL) or VM ns/vm in the snapshot store at
 * `store`: the distinct chunk ids of the committed snapshots' indexes, each
 * counted with the size of its chunk file. Also counts the snapshots. */
static inline uint64_t recount_usage(const char *store, const char *ns, const char *vm,
                              size_t *nsnaps)
{
    idset s = { 0 };
    size_t snaps = 0;
    char *nsdir = e2e_strf("%s/snapshots/%s", store, ns);
    DIR *d = opendir(nsdir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *mpath = e2e_strf("%s/%s/manifest.json", nsdir, de->d_name);
        char *m = e2e_read_file(mpath, NULL);
        free(mpath);
        if (!m)
            continue; /* not committed */
        cJSON *j = cJSON_Parse(m);
        free(m);
        assert_non_null(j);
        const char *vn = e2e_json_str(j, "vm_name");
        assert_non_null(vn);
        if (!vm || strcmp(vn, vm) == 0) {
            snaps++;
            cJSON *vols = cJSON_GetObjectItemCaseSensitive(j, "volumes"), *v;
            cJSON_ArrayForEach(v, vols)
            {
                char *ip = e2e_strf("%s/%s/%s.idx", nsdir, de->d_name, e2e_json_str(v, "name"));
                recount_index(&s, ip);
                free(ip);
            }
        }
        cJSON_Delete(j);
    }
    if (d)
        closedir(d);
    free(nsdir);
    if (s.n)
        qsort(s.v, s.n, 32, id_cmp);
    uint64_t sum = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (i && memcmp(s.v[i], s.v[i - 1], 32) == 0)
            continue;
        char hex[65];
        for (int k = 0; k < 32; k++)
            sprintf(hex + 2 * k, "%02x", s.v[i][k]);
        char *cp = e2e_strf("%s/chunks/%.2s/%.2s/%s", store, hex, hex + 2, hex);
        int64_t sz = e2e_file_size(cp);
        if (sz < 0)
            fail_msg("chunk %s referenced by a snapshot is missing", cp);
        sum += (uint64_t)sz;
        free(cp);
    }
    free(s.v);
    if (nsnaps)
        *nsnaps = snaps;
    return sum;
}

#endif
