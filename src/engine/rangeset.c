/* engine/rangeset.c - sorted, merged byte ranges (the caller's dirty bitmap). */
#include "rangeset.h"

#include <stdlib.h>
#include <string.h>

static int range_cmp(const void *a, const void *b)
{
    const hb_range *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return 0;
}

int hb_rangeset_build(hb_rangeset *rs, const hb_range *in, size_t n)
{
    rs->r = NULL;
    rs->n = 0;
    if (n == 0)
        return 0;
    hb_range *v = hb_malloc(n * sizeof *v);
    if (!v)
        return HARVBK_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i].len == 0)
            continue;
        v[k] = in[i];
        if (v[k].len > UINT64_MAX - v[k].off)
            v[k].len = UINT64_MAX - v[k].off; /* clamp at the end of the address space */
        if (v[k].len)
            k++;
    }
    qsort(v, k, sizeof *v, range_cmp);
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m > 0 && v[i].off <= v[m - 1].off + v[m - 1].len) {
            uint64_t end = v[i].off + v[i].len;
            if (end > v[m - 1].off + v[m - 1].len)
                v[m - 1].len = end - v[m - 1].off;
        } else {
            v[m++] = v[i];
        }
    }
    if (m == 0) {
        hb_free(v);
        return 0;
    }
    rs->r = v;
    rs->n = m;
    return 0;
}

void hb_rangeset_clear(hb_rangeset *rs)
{
    if (!rs)
        return;
    hb_free(rs->r);
    rs->r = NULL;
    rs->n = 0;
}

uint64_t hb_rangeset_bytes(const hb_rangeset *rs)
{
    uint64_t t = 0;
    for (size_t i = 0; rs && i < rs->n; i++)
        t += rs->r[i].len;
    return t;
}

bool hb_rangeset_overlaps(const hb_rangeset *rs, uint64_t off, uint64_t len)
{
    if (!rs || rs->n == 0 || len == 0)
        return false;
    uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
    /* First range whose end lies after off (ends ascend: ranges are sorted and
     * disjoint). */
    size_t lo = 0, hi = rs->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->r[mid].off + rs->r[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rs->n && rs->r[lo].off < end;
}
