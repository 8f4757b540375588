/* fuzz_target_options - target settings as a user gives them
 * (harvbk_target_config_set: hb_target_cfg_set for every key) and as the
 * state directory keeps them (hb_target_cfg_from_json): what is accepted is
 * written and read back to the same settings, and the secret never shows
 * unless it is to be stored.
 *
 * Input: either a JSON document (first byte '{': a stored configuration), or
 * lines "KEY VALUE" with KEY a harvbk_target_key number. */
#include "fuzz.h"
#include "target/config.h"

#include <cjson/cJSON.h>

static void roundtrip(const hb_target_cfg *c)
{
    char *j1 = hb_target_cfg_to_json(c);
    FUZZ_CHECK(j1 != NULL);
    cJSON *doc = cJSON_Parse(j1);
    FUZZ_CHECK(doc != NULL);
    /* the secret is written only when it is to be stored */
    FUZZ_CHECK(cJSON_HasObjectItem(doc, "secret_access_key") ==
               (c->store_secret && c->secret_access_key != NULL));
    cJSON_Delete(doc);
    hb_target_cfg c2;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_cfg_from_json(&c2, j1, strlen(j1), &e);
    if (rc != 0)
        fprintf(stderr, "cannot read back %s: %s\n", j1, e.msg);
    FUZZ_CHECK(rc == 0);
    char *j2 = hb_target_cfg_to_json(&c2);
    FUZZ_CHECK(j2 != NULL);
    FUZZ_CHECK(strcmp(j1, j2) == 0);
    for (int key = HARVBK_TARGET_URL; key <= HARVBK_TARGET_READ_ONLY; key++) {
        char a[8192], b[8192];
        const harvbk_target_config *pa = (const harvbk_target_config *)c;
        const harvbk_target_config *pb = (const harvbk_target_config *)&c2;
        int ra = harvbk_target_config_get(pa, (harvbk_target_key)key, a, sizeof a, NULL);
        int rb = harvbk_target_config_get(pb, (harvbk_target_key)key, b, sizeof b, NULL);
        FUZZ_CHECK(ra == rb);
        if (ra >= 0)
            FUZZ_CHECK(strcmp(a, b) == 0);
        if (key == HARVBK_TARGET_SECRET_ACCESS_KEY && ra >= 0)
            FUZZ_CHECK(a[0] == '\0'); /* write-only */
    }
    hb_free_secret(j1);
    hb_free_secret(j2);
    hb_target_cfg_clear(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    hb_target_cfg c;
    hb_err e;
    hb_err_clear(&e);
    if (size && data[0] == '{') {
        int rc = hb_target_cfg_from_json(&c, data, size, &e);
        if (rc) {
            /* (an unknown URL scheme stays HARVBK_E_UNSUPPORTED) */
            FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM ||
                       rc == HARVBK_E_UNSUPPORTED);
            FUZZ_CHECK(e.code == rc && e.msg[0]);
            return 0;
        }
        roundtrip(&c);
        hb_target_cfg_clear(&c);
        return 0;
    }
    char *text = fuzz_cstr(data, size);
    hb_target_cfg_init(&c);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *end = NULL;
        long key = strtol(line, &end, 10);
        if (end == line)
            continue;
        const char *value = *end == ' ' ? end + 1 : end;
        int rc = hb_target_cfg_set(&c, (int)key, value, &e);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_INVALID || rc == HARVBK_E_UNSUPPORTED ||
                   rc == HARVBK_E_NOMEM);
    }
    roundtrip(&c);
    hb_target_cfg_clear(&c);
    free(text);
    return 0;
}
