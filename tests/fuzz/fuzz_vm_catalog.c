/* fuzz_vm_catalog - the VM catalog of the state directory,
 * vms/<ns>/<name>.json (hb_catalog_decode, state/catalog.h): what decodes
 * re-encodes to a document that decodes to the same text again. */
#include "fuzz.h"
#include "state/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harvbk_vm *vm = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_catalog_decode(data, size, &vm, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0] && vm == NULL);
        return 0;
    }
    FUZZ_CHECK(vm != NULL);
    FUZZ_CHECK(hb_name_valid(harvbk_vm_namespace(vm)) && hb_name_valid(harvbk_vm_name(vm)));
    size_t n = harvbk_vm_volume_count(vm);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(harvbk_vm_volume_name(vm, i) != NULL);
    char *t1 = hb_catalog_encode(vm);
    FUZZ_CHECK(t1 != NULL);
    harvbk_vm *vm2 = NULL;
    rc = hb_catalog_decode(t1, strlen(t1), &vm2, &e);
    if (rc)
        fprintf(stderr, "cannot read back %s: %s\n", t1, e.msg);
    FUZZ_CHECK(rc == 0);
    char *t2 = hb_catalog_encode(vm2);
    FUZZ_CHECK(t2 != NULL && strcmp(t1, t2) == 0);
    hb_free(t1);
    hb_free(t2);
    harvbk_vm_free(vm2);
    harvbk_vm_free(vm);
    return 0;
}
