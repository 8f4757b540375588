/* fuzz_metadata_rewrite - the VM metadata document a restore hands to the
 * default metadata rewrite (harvbk_metadata_rewrite_default, ops/rewrite.c,
 * harvbk/restore.h): it comes from a backup's manifest, so from the target.
 *
 * Input: one flags byte (bit 0: keep MAC addresses, bit 1: replace the
 * source VM, bit 2: restore under the same names), then the document. */
#include "fuzz.h"
#include "core/json.h"
#include "ops/ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    bool same = flags & 4;
    bool replace = flags & 2;
    hb_rw_volume vols[2] = {
        { "rootdisk", replace ? NULL : "web-copy-rootdisk", "/restore/rootdisk.raw" },
        { "data", replace ? NULL : "web-copy-data", "/restore/data.raw" },
    };
    harvbk_metadata_rewrite rw;
    hb_rewrite_init(&rw);
    rw.in = size > 1 ? data + 1 : NULL;
    rw.in_len = size - 1;
    rw.src_ns = "default";
    rw.src_vm = "web";
    rw.ns = same ? "default" : "other";
    rw.vm = same ? "web" : "web-copy";
    rw.keep_mac = flags & 1;
    rw.replace = replace;
    rw.vols = vols;
    rw.nvols = 2;
    hb_buf result = HB_BUF_INIT;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_rewrite_run(&rw, NULL, NULL, &result, &e);
    FUZZ_CHECK(rc == 0 || rc == HARVBK_E_INVALID || rc == HARVBK_E_UNSUPPORTED ||
               rc == HARVBK_E_NOMEM);
    if (rc == 0 && !rw.has_out) {
        /* untouched: the document byte for byte */
        FUZZ_CHECK(result.len == rw.in_len);
        FUZZ_CHECK(!result.len || !memcmp(result.data, rw.in, rw.in_len));
    } else if (rc == 0) {
        /* rewritten: still a JSON object, naming the new VM when it is one */
        cJSON *root = NULL;
        /* opaque: a string value holding \u0000 keeps it (pinned as written) */
        FUZZ_CHECK(hb_json_parse_opaque(result.data, result.len, "rewritten", &root, NULL) == 0);
        FUZZ_CHECK(cJSON_IsObject(root));
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
        if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "VirtualMachine")) {
            const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
            const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
            FUZZ_CHECK(cJSON_IsString(name) && !strcmp(name->valuestring, rw.vm));
            FUZZ_CHECK(cJSON_IsString(ns) && !strcmp(ns->valuestring, rw.ns));
            FUZZ_CHECK(!cJSON_GetObjectItemCaseSensitive(root, "status"));
        }
        cJSON_Delete(root);
    }
    hb_buf_free(&result);
    hb_rewrite_clear(&rw);
    return 0;
}
