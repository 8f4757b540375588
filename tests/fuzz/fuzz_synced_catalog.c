/* fuzz_synced_catalog - the synced backup catalog of the state directory,
 * catalog/backups.json (hb_synced_decode, state/synced.h, docs/CATALOG.md):
 * what a sync and every backup listing read. A decoded catalog is sorted
 * and holds each backup once. */
#include "fuzz.h"
#include "state/synced.h"

static int cmp_id(const char *ans, const char *an, const char *bns, const char *bn)
{
    int c = strcmp(ans, bns);
    return c ? c : strcmp(an, bn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_synced c;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_synced_decode(data, size, "backups.json", &c, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        FUZZ_CHECK(c.n == 0 && c.nt == 0);
        hb_synced_clear(&c);
        return 0;
    }
    for (size_t i = 0; i < c.n; i++) {
        const hb_synced_entry *x = &c.v[i];
        FUZZ_CHECK(x->ns && x->name && x->vm_ns && x->vm_name && x->writer && x->error);
        if (i)
            FUZZ_CHECK(cmp_id(c.v[i - 1].ns, c.v[i - 1].name, x->ns, x->name) < 0);
        FUZZ_CHECK(hb_synced_find(&c, x->ns, x->name) == x);
        for (size_t k = 0; k < x->nvols; k++)
            FUZZ_CHECK(x->vols[k].name != NULL);
        hb_synced_entry copy;
        FUZZ_CHECK(hb_synced_entry_copy(&copy, x) == 0);
        FUZZ_CHECK(!strcmp(copy.ns, x->ns) && copy.nvols == x->nvols);
        hb_synced_entry_clear(&copy);
    }
    for (size_t i = 0; i < c.nt; i++) {
        FUZZ_CHECK(c.t[i].ns && c.t[i].name);
        if (i)
            FUZZ_CHECK(cmp_id(c.t[i - 1].ns, c.t[i - 1].name, c.t[i].ns, c.t[i].name) < 0);
        FUZZ_CHECK(hb_synced_tomb_find(&c, c.t[i].ns, c.t[i].name) == &c.t[i]);
    }
    /* the edits a sync makes */
    if (c.n) {
        char *ns = hb_strdup(c.v[0].ns), *name = hb_strdup(c.v[0].name);
        FUZZ_CHECK(ns && name);
        FUZZ_CHECK(hb_synced_remove(&c, ns, name));
        FUZZ_CHECK(hb_synced_find(&c, ns, name) == NULL);
        hb_free(ns);
        hb_free(name);
    }
    hb_synced_clear(&c);
    return 0;
}
