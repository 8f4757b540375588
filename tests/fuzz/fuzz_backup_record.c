/* fuzz_backup_record - local backup and snapshot records of the state
 * directory, backups/<ns>/<name>.json and snapshots/<ns>/<name>.json
 * (hb_record_decode, state/record.h): what decodes re-encodes to the same
 * text. */
#include "fuzz.h"
#include "state/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_record r;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_record_decode(data, size, &r, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        return 0;
    }
    FUZZ_CHECK(hb_name_valid(r.ns) && hb_name_valid(r.name));
    FUZZ_CHECK(hb_name_valid(r.vm_ns) && hb_name_valid(r.vm_name));
    for (size_t i = 0; i < r.nvols; i++)
        FUZZ_CHECK(r.vols[i].name != NULL);
    char *t1 = hb_record_encode(&r);
    FUZZ_CHECK(t1 != NULL);
    hb_record r2;
    rc = hb_record_decode(t1, strlen(t1), &r2, &e);
    if (rc)
        fprintf(stderr, "cannot read back %s: %s\n", t1, e.msg);
    FUZZ_CHECK(rc == 0);
    char *t2 = hb_record_encode(&r2);
    FUZZ_CHECK(t2 != NULL && strcmp(t1, t2) == 0);
    hb_free(t1);
    hb_free(t2);
    hb_record_clear(&r2);
    hb_record_clear(&r);
    return 0;
}
