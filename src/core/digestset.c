/*
 * core/digestset.c - set of 32-byte digests: open addressing with linear
 * probing over a power-of-two table, grown (doubled) before it passes 50% load.
 * The slot hash is the first 8 bytes of the digest (digests are uniform).
 * An all-zero slot marks "empty"; the all-zero digest itself is kept in a flag.
 */
#include "digestset.h"

#include <stdlib.h>
#include <string.h>

struct hb_dset {
    uint8_t (*slots)[HB_DIGEST_LEN];
    size_t cap;   /* power of two */
    size_t count; /* entries in slots (not counting the zero digest) */
    bool has_zero;
};

static const uint8_t zero_digest[HB_DIGEST_LEN];

static size_t slot_of(const uint8_t d[HB_DIGEST_LEN], size_t cap)
{
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return (size_t)h & (cap - 1);
}

hb_dset *hb_dset_new(size_t expected)
{
    size_t cap = 16;
    while (cap / 2 < expected) {
        if (cap > SIZE_MAX / 2 / HB_DIGEST_LEN)
            return NULL;
        cap *= 2;
    }
    hb_dset *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->slots = calloc(cap, HB_DIGEST_LEN);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    s->cap = cap;
    return s;
}

void hb_dset_free(hb_dset *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s);
}

static void insert_slot(uint8_t (*slots)[HB_DIGEST_LEN], size_t cap, const uint8_t *d)
{
    size_t i = slot_of(d, cap);
    while (!hb_is_zero(slots[i], HB_DIGEST_LEN))
        i = (i + 1) & (cap - 1);
    memcpy(slots[i], d, HB_DIGEST_LEN);
}

static int grow(hb_dset *s)
{
    if (s->cap > SIZE_MAX / 2 / HB_DIGEST_LEN)
        return HARVBK_E_NOMEM;
    size_t ncap = s->cap * 2;
    uint8_t (*n)[HB_DIGEST_LEN] = calloc(ncap, HB_DIGEST_LEN);
    if (!n)
        return HARVBK_E_NOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (!hb_is_zero(s->slots[i], HB_DIGEST_LEN))
            insert_slot(n, ncap, s->slots[i]);
    free(s->slots);
    s->slots = n;
    s->cap = ncap;
    return 0;
}

int hb_dset_add(hb_dset *s, const uint8_t d[HB_DIGEST_LEN])
{
    if (hb_is_zero(d, HB_DIGEST_LEN)) {
        if (s->has_zero)
            return 0;
        s->has_zero = true;
        return 1;
    }
    if (hb_dset_has(s, d))
        return 0;
    if ((s->count + 1) * 2 > s->cap) {
        int rc = grow(s);
        if (rc)
            return rc;
    }
    insert_slot(s->slots, s->cap, d);
    s->count++;
    return 1;
}

bool hb_dset_has(const hb_dset *s, const uint8_t d[HB_DIGEST_LEN])
{
    if (hb_is_zero(d, HB_DIGEST_LEN))
        return s->has_zero;
    size_t i = slot_of(d, s->cap);
    for (;;) {
        if (memcmp(s->slots[i], d, HB_DIGEST_LEN) == 0)
            return true;
        if (hb_is_zero(s->slots[i], HB_DIGEST_LEN))
            return false;
        i = (i + 1) & (s->cap - 1);
    }
}

size_t hb_dset_count(const hb_dset *s)
{
    return s->count + (s->has_zero ? 1 : 0);
}

/* *pos == 0 yields the zero digest (if present); *pos == k + 1 is slot k. */
bool hb_dset_next(const hb_dset *s, size_t *pos, const uint8_t **out)
{
    if (*pos == 0) {
        *pos = 1;
        if (s->has_zero) {
            *out = zero_digest;
            return true;
        }
    }
    while (*pos - 1 < s->cap) {
        const uint8_t *slot = s->slots[*pos - 1];
        (*pos)++;
        if (!hb_is_zero(slot, HB_DIGEST_LEN)) {
            *out = slot;
            return true;
        }
    }
    return false;
}
