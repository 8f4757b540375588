/* fuzz_manifest - entry manifests read from a target (hb_manifest_decode,
 * FORMAT.md "Manifests"). What decodes and re-encodes must decode again to
 * the same document. */
#include "fuzz.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_manifest m;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_manifest_decode(data, size, &m, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        return 0;
    }
    FUZZ_CHECK(m.kind && m.ns && m.name && m.vm_ns && m.vm_name);
    FUZZ_CHECK(hb_chunk_size_valid(m.chunk_size));
    uint64_t sum = 0;
    for (size_t i = 0; i < m.nvols; i++) {
        FUZZ_CHECK(m.vols[i].name != NULL);
        FUZZ_CHECK(m.vols[i].chunks == m.vols[i].size / m.chunk_size +
                                           (m.vols[i].size % m.chunk_size != 0));
        FUZZ_CHECK(m.vols[i].data_chunks <= m.vols[i].chunks);
        sum += m.vols[i].size;
    }
    FUZZ_CHECK(sum == m.logical_bytes);
    hb_buf a = HB_BUF_INIT, b = HB_BUF_INIT;
    if (hb_manifest_encode(&m, &a, &e) == 0) {
        hb_manifest m2;
        rc = hb_manifest_decode(a.data, a.len, &m2, &e);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_NOMEM);
        if (rc == 0) {
            FUZZ_CHECK(m2.nvols == m.nvols && m2.nimages == m.nimages);
            FUZZ_CHECK(m2.metadata.len == m.metadata.len);
            FUZZ_CHECK(!m.metadata.len ||
                       memcmp(m2.metadata.data, m.metadata.data, m.metadata.len) == 0);
            for (size_t i = 0; i < m.nvols; i++) {
                FUZZ_CHECK(strcmp(m2.vols[i].name, m.vols[i].name) == 0);
                FUZZ_CHECK(m2.vols[i].size == m.vols[i].size);
                FUZZ_CHECK(strcmp(m2.vols[i].index_sha256, m.vols[i].index_sha256) == 0);
            }
            FUZZ_CHECK(hb_manifest_encode(&m2, &b, &e) == 0);
            FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
            hb_manifest_clear(&m2);
        }
    }
    hb_buf_free(&a);
    hb_buf_free(&b);
    hb_manifest_clear(&m);
    return 0;
}
