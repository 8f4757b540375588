/* fuzz_lease - lease objects of a store, locks/<role>-<owner>.json, as
 * every writer and gc reads those of the others (hb_lease_object_live,
 * docs/FORMAT.md "Concurrency"), with their holder identity
 * (hb_lease_ident_dead), and lease owner names (hb_lease_owner_valid). */
#include "fuzz.h"
#include "core/json.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t now = 1800000000;
    int64_t mtimes[] = { 0, now, now - 10 * HB_LEASE_TTL_S, now + 10 * HB_LEASE_TTL_S };
    for (size_t i = 0; i < sizeof mtimes / sizeof mtimes[0]; i++) {
        int live = hb_lease_object_live("writer", "self-1", "other-2", data, size, mtimes[i], now);
        FUZZ_CHECK(live == 0 || live == 1);
        live = hb_lease_object_live("gc", NULL, "x", data, size, mtimes[i], now);
        FUZZ_CHECK(live == 0 || live == 1);
        /* our own lease is never someone else's */
        live = hb_lease_object_live("writer", "self-1", "self-1", data, size, mtimes[i], now);
        FUZZ_CHECK(live == 0 || live == 1);
    }
    cJSON *root = NULL;
    if (hb_json_parse(data, size, "lease", &root, NULL) == 0) {
        (void)hb_lease_ident_dead(root);
        cJSON_Delete(root);
    }
    char *owner = fuzz_cstr(data, size < 300 ? size : 300);
    if (hb_lease_owner_valid(owner))
        FUZZ_CHECK(strlen(owner) >= 1 && strlen(owner) <= 128 && owner[0] != '.');
    free(owner);
    return 0;
}
