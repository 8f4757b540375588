/* core/digestset.h - set of 32-byte digests (open addressing). Not thread-safe:
 * callers lock. Memory: ~48 bytes per entry. */
#ifndef HB_DIGESTSET_H
#define HB_DIGESTSET_H

#include "hb.h"

typedef struct hb_dset hb_dset;
hb_dset *hb_dset_new(size_t expected);
void hb_dset_free(hb_dset *s);
/* 1 if added, 0 if already present, HARVBK_E_NOMEM. */
int hb_dset_add(hb_dset *s, const uint8_t d[HB_DIGEST_LEN]);
bool hb_dset_has(const hb_dset *s, const uint8_t d[HB_DIGEST_LEN]);
size_t hb_dset_count(const hb_dset *s);
/* Iterate: *pos starts at 0; returns false at the end. */
bool hb_dset_next(const hb_dset *s, size_t *pos, const uint8_t **out);

#endif
