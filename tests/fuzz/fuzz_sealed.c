/* fuzz_sealed - what an encrypted store reads from a target (FORMAT.md
 * section 10): sealed envelopes of indexes, manifests and image records
 * (hb_store_unseal) and encrypted chunk objects (hb_chunk_decode_ex), under
 * a fixed store key.
 *
 * The input is used three ways: as an envelope and as a chunk object read
 * from the target (nothing forged opens: anything accepted must re-seal and
 * open to the same bytes); and as plaintext that is sealed, opened again,
 * and then changed in one byte chosen by the input, which must be refused
 * (the tamper check of every sealed object and chunk). */
#include "fuzz.h"
#include "store/internal.h"
#include "store/store.h"

#define META_KEY "indexes/default/vm/b1/root.idx"

static hb_store_crypt *crypt_key(void)
{
    static hb_store_crypt *c;
    if (!c) {
        uint8_t master[HB_STORE_KEY_LEN];
        memset(master, 0x42, sizeof master);
        hb_err e;
        hb_err_clear(&e);
        if (hb_store_crypt_new(&c, "6f1c1f4e-8d2a-4f0e-9a57-3b1d2c4e5f60", master, &e) != 0)
            abort();
    }
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_store st;
    memset(&st, 0, sizeof st);
    st.crypt = crypt_key();
    hb_err e;
    hb_err_clear(&e);

    /* 1. an envelope read from the target */
    hb_buf b = HB_BUF_INIT;
    if (hb_buf_append(&b, data, size) != 0)
        return 0;
    int rc = hb_store_unseal(&st, META_KEY, &b, &e);
    FUZZ_CHECK(rc == 0 || rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT);
    FUZZ_CHECK(rc == 0 || (e.code == rc && e.msg[0]));
    FUZZ_CHECK(rc != 0 || b.len + HB_ENVELOPE_OVERHEAD == size);
    hb_buf_free(&b);

    /* 2. an encrypted chunk object read from the target */
    uint8_t id[HB_DIGEST_LEN];
    memset(id, 0x5a, sizeof id);
    uint8_t *raw = fuzz_raw_buf();
    size_t rlen = 0;
    uint8_t *obj = malloc(size ? size : 1);
    if (!obj)
        return 0;
    if (size)
        memcpy(obj, data, size);
    hb_err_clear(&e);
    rc = hb_chunk_decode_ex(st.crypt, obj, size, id, raw, FUZZ_RAW_CAP, &rlen, &e);
    FUZZ_CHECK(rc == HARVBK_E_CHUNK || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
    FUZZ_CHECK(e.code == rc && e.msg[0]);
    free(obj);

    /* 3. seal, open, tamper: envelopes */
    hb_buf s = HB_BUF_INIT;
    if (hb_buf_append(&s, data, size) != 0)
        return 0;
    hb_err_clear(&e);
    rc = hb_store_seal(&st, META_KEY, &s, &e);
    FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM);
    if (rc == 0) {
        FUZZ_CHECK(s.len == size + HB_ENVELOPE_OVERHEAD);
        FUZZ_CHECK(size < 16 || memmem(s.data, s.len, data, size) == NULL);
        hb_buf t = HB_BUF_INIT;
        FUZZ_CHECK(hb_buf_append(&t, s.data, s.len) == 0);
        FUZZ_CHECK(hb_store_unseal(&st, META_KEY, &t, &e) == 0);
        FUZZ_CHECK(t.len == size && (size == 0 || memcmp(t.data, data, size) == 0));
        hb_buf_free(&t);
        /* under another key name (an object moved): refused */
        FUZZ_CHECK(hb_buf_append(&t, s.data, s.len) == 0);
        FUZZ_CHECK(hb_store_unseal(&st, "manifests/default/vm/b1.json", &t, &e) ==
                   HARVBK_E_CORRUPT);
        hb_buf_free(&t);
        /* one byte changed anywhere: refused */
        size_t at = size ? (data[0] | (size_t)(size > 1 ? data[1] : 0) << 8) % s.len : 0;
        uint8_t flip = size > 2 && data[2] ? data[2] : 1;
        ((uint8_t *)s.data)[at] ^= flip;
        rc = hb_store_unseal(&st, META_KEY, &s, &e);
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT);
    }
    hb_buf_free(&s);

    /* 4. seal, open, tamper: chunks */
    if (size >= 1 && size <= FUZZ_RAW_CAP) {
        int codec = data[0] & 3;
        hb_crypt_chunk_id(st.crypt, data, size, id);
        hb_buf c = HB_BUF_INIT;
        rc = hb_chunk_encode_ex(st.crypt, id, codec, 0, data, size, &c, &e);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM);
        if (rc == 0) {
            uint8_t *copy = malloc(c.len);
            FUZZ_CHECK(copy != NULL);
            memcpy(copy, c.data, c.len);
            rc = hb_chunk_decode_ex(st.crypt, copy, c.len, id, raw, FUZZ_RAW_CAP, &rlen, &e);
            FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM);
            if (rc == 0)
                FUZZ_CHECK(rlen == size && memcmp(raw, data, size) == 0);
            /* one byte changed anywhere: refused */
            memcpy(copy, c.data, c.len);
            size_t at = (data[0] | (size_t)(size > 1 ? data[1] : 0) << 8) % c.len;
            copy[at] ^= size > 2 && data[2] ? data[2] : 1;
            rc = hb_chunk_decode_ex(st.crypt, copy, c.len, id, raw, FUZZ_RAW_CAP, &rlen, &e);
            FUZZ_CHECK(rc == HARVBK_E_CHUNK || rc == HARVBK_E_FORMAT);
            /* a plaintext chunk of the same bytes in an encrypted store: refused */
            hb_buf p = HB_BUF_INIT;
            if (hb_chunk_encode(codec, 0, data, size, &p, &e) == 0) {
                rc = hb_chunk_decode_ex(st.crypt, p.data, p.len, id, raw, FUZZ_RAW_CAP, &rlen, &e);
                FUZZ_CHECK(rc == HARVBK_E_CHUNK);
            }
            hb_buf_free(&p);
            free(copy);
        }
        hb_buf_free(&c);
    }
    return 0;
}
