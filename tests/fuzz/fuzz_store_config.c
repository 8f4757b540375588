/* fuzz_store_config - the store config object harvbk-store.json read from a
 * target (hb_store_config_parse, FORMAT.md section 3), with the key slots of
 * an encrypted store (FORMAT.md section 10). */
#include "fuzz.h"
#include "store/internal.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_store_config sc;
    memset(&sc, 0, sizeof sc);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_store_config_parse(data, size, &sc, NULL, &e);
    if (rc == 0) {
        /* what a store accepts is what writers may use */
        FUZZ_CHECK(strlen(sc.id) == 36);
        FUZZ_CHECK(hb_chunk_size_valid(sc.chunk_size));
        FUZZ_CHECK(hb_codec_name(sc.codec) != NULL);
        if (sc.ring.encrypted) {
            /* an encrypted store names at least one bounded key slot */
            FUZZ_CHECK(sc.ring.n >= 1 && sc.ring.n <= HB_KEYS_MAX);
            FUZZ_CHECK(sc.ring.slots != NULL);
            FUZZ_CHECK(strlen(sc.ring.fingerprint) == HB_STORE_FP_HEX);
        } else {
            FUZZ_CHECK(sc.ring.n == 0);
        }
    } else {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
    }
    hb_store_config_clear(&sc);
    return 0;
}
