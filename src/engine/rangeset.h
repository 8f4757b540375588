/* engine/rangeset.h - building and freeing hb_rangeset (engine.h declares the type
 * and hb_rangeset_overlaps). */
#ifndef HB_ENGINE_RANGESET_H
#define HB_ENGINE_RANGESET_H

#include "engine.h"

/* Build rs from n ranges in any order (overlapping or adjacent ones are merged,
 * empty ones dropped, ranges running past 2^64 clamped). rs is overwritten, not
 * freed first; free it with hb_rangeset_clear(). 0 or HARVBK_E_NOMEM. */
int hb_rangeset_build(hb_rangeset *rs, const hb_range *in, size_t n);
/* Free the ranges and make rs empty. NULL ok. */
void hb_rangeset_clear(hb_rangeset *rs);
/* Total bytes covered. */
uint64_t hb_rangeset_bytes(const hb_rangeset *rs);

#endif
