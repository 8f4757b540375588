/* fuzz_chunk - chunk objects read from a target: the 32-byte header and the
 * payload of every codec (hb_chunk_decode, hb_codec_decompress, FORMAT.md
 * "Chunk objects"), chunk keys of a listing (hb_chunk_key_parse), and the
 * encoder: what hb_chunk_encode writes decodes to the same bytes.
 *
 * The input is used three ways: as a whole chunk object (checked against a
 * fixed id, so the hash check fails after the payload was decompressed); as
 * [codec byte][expected length, 4 bytes LE][payload] for the decompressors
 * directly; and as raw data for an encode/decode round trip. */
#include "fuzz.h"
#include "store/internal.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *raw = fuzz_raw_buf();
    hb_err e;
    hb_err_clear(&e);

    /* 1. a chunk object */
    uint8_t id[HB_DIGEST_LEN];
    memset(id, 0x5a, sizeof id);
    size_t rlen = 0;
    int rc = hb_chunk_decode(data, size, id, raw, FUZZ_RAW_CAP, &rlen, &e);
    FUZZ_CHECK(rc == HARVBK_E_CHUNK || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
    FUZZ_CHECK(e.code == rc && e.msg[0]);

    /* 2. a payload for each decompressor */
    if (size >= 5) {
        int codec = data[0] & 3;
        size_t expect = ((size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 |
                         (size_t)data[4] << 24) % (FUZZ_RAW_CAP + 1);
        const char *why = NULL;
        rc = hb_codec_decompress(codec, data + 5, size - 5, raw, expect, &why);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_CHUNK || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM || why != NULL);
        if (rc == 0 && codec == HB_CODEC_NONE)
            FUZZ_CHECK(expect == size - 5 && memcmp(raw, data + 5, expect) == 0);
    }

    /* 3. encode then decode: the same bytes back, under their id */
    if (size >= 1) {
        int codec = data[0] & 3;
        int level = (data[0] >> 2) & 3; /* 0 = the codec's default */
        hb_buf obj = HB_BUF_INIT;
        rc = hb_chunk_encode(codec, level, data, size, &obj, &e);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM);
        if (rc == 0) {
            FUZZ_CHECK(obj.len >= HB_CHUNK_HEADER_LEN);
            FUZZ_CHECK(obj.len <= HB_CHUNK_HEADER_LEN + size); /* never larger than stored raw */
            hb_sha256(data, size, id);
            rc = hb_chunk_decode(obj.data, obj.len, id, raw, FUZZ_RAW_CAP, &rlen, &e);
            FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM);
            if (rc == 0)
                FUZZ_CHECK(rlen == size && memcmp(raw, data, size) == 0);
        }
        hb_buf_free(&obj);
    }

    /* 4. a chunk key from a listing */
    char *key = fuzz_cstr(data, size < 200 ? size : 200);
    if (hb_chunk_key_parse(key, id)) {
        char again[HB_CHUNK_KEY_LEN];
        hb_chunk_key(id, again);
        FUZZ_CHECK(strcmp(again, key) == 0);
    }
    free(key);
    return 0;
}
