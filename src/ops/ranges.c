/* ops/ranges.c - harvbk_ranges: changed byte ranges per volume name. They are
 * kept as given and sorted/merged (hb_rangeset_build) when a backup starts. */
#include "ops.h"
#include <inttypes.h>
#include <string.h>

int harvbk_ranges_new(harvbk_ranges **out)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_ranges_new: out is NULL");
    *out = hb_calloc(1, sizeof **out);
    return *out ? 0 : hb_fail(HARVBK_E_NOMEM, NULL);
}

void harvbk_ranges_free(harvbk_ranges *ranges)
{
    if (!ranges)
        return;
    for (size_t i = 0; i < ranges->n; i++) {
        hb_free(ranges->v[i].volume);
        hb_free(ranges->v[i].r);
    }
    hb_free(ranges->v);
    hb_free(ranges);
}

const hb_ranges_vol *hb_ranges_find(const harvbk_ranges *rg, const char *volume)
{
    for (size_t i = 0; rg && i < rg->n; i++)
        if (strcmp(rg->v[i].volume, volume) == 0)
            return &rg->v[i];
    return NULL;
}

int harvbk_ranges_add(harvbk_ranges *ranges, const char *volume, uint64_t offset,
                      uint64_t length)
{
    if (!ranges)
        return hb_fail(HARVBK_E_INVALID, "harvbk_ranges_add: ranges is NULL");
    hb_err e;
    if (hb_check_name("volume name", volume, &e))
        return hb_fail_err(&e);
    if (offset + length < offset)
        return hb_fail(HARVBK_E_INVALID,
                       "volume '%s': range at offset %" PRIu64 " of length %" PRIu64
                       " wraps around",
                       volume, offset, length);
    hb_ranges_vol *v = (hb_ranges_vol *)hb_ranges_find(ranges, volume);
    if (!v) {
        if (ranges->n == ranges->cap) {
            size_t cap = ranges->cap ? ranges->cap * 2 : 4;
            hb_ranges_vol *nv = hb_realloc(ranges->v, cap * sizeof *nv);
            if (!nv)
                return hb_fail(HARVBK_E_NOMEM, NULL);
            ranges->v = nv;
            ranges->cap = cap;
        }
        v = &ranges->v[ranges->n];
        memset(v, 0, sizeof *v);
        if (!(v->volume = hb_strdup(volume)))
            return hb_fail(HARVBK_E_NOMEM, NULL);
        ranges->n++; /* a volume named with no range: "nothing changed" */
    }
    if (length == 0)
        return 0;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        hb_range *nr = hb_realloc(v->r, cap * sizeof *nr);
        if (!nr)
            return hb_fail(HARVBK_E_NOMEM, NULL);
        v->r = nr;
        v->cap = cap;
    }
    v->r[v->n].off = offset;
    v->r[v->n].len = length;
    v->n++;
    return 0;
}
