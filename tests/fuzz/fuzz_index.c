/* fuzz_index - per-volume chunk indexes read from a target (hb_index_decode,
 * FORMAT.md "Index objects"). A decoded index re-encodes to the same bytes. */
#include "fuzz.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_index ix;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_index_decode(data, size, &ix, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        FUZZ_CHECK(ix.ids == NULL);
        return 0;
    }
    FUZZ_CHECK(ix.chunk_size > 0 && ix.chunk_size <= HB_MAX_CHUNK_SIZE);
    FUZZ_CHECK(ix.count == ix.volume_size / ix.chunk_size + (ix.volume_size % ix.chunk_size != 0));
    uint64_t total = 0, holes = 0;
    for (uint64_t i = 0; i < ix.count; i++) {
        uint32_t l = hb_index_chunk_len(&ix, i);
        FUZZ_CHECK(l > 0 && l <= ix.chunk_size);
        total += l;
        holes += hb_index_is_hole(&ix, i);
    }
    FUZZ_CHECK(total == ix.volume_size);
    FUZZ_CHECK(holes <= ix.count);
    hb_buf out = HB_BUF_INIT;
    FUZZ_CHECK(hb_index_encode(&ix, &out, &e) == 0);
    FUZZ_CHECK(out.len == size && memcmp(out.data, data, size) == 0);
    hb_buf_free(&out);
    hb_index_clear(&ix);
    return 0;
}
