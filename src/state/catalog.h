/* state/catalog.h - the VM catalog in the state directory,
 * "vms/<ns>/<name>.json" (catalog.c). Callers serialise read-modify-writes
 * with hb_state.cat_mu. */
#ifndef HB_STATE_CATALOG_H
#define HB_STATE_CATALOG_H

#include "state.h"
#include "vm.h"

/* Save vm; with allow_external, volumes without a path are recorded by size
 * (a VM restored through write callbacks). */
int hb_catalog_put(hb_state *s, const harvbk_vm *vm, bool allow_external, hb_err *e);
int hb_catalog_get(hb_state *s, const char *ns, const char *name, harvbk_vm **out, hb_err *e);
/* 1 when registered, 0 when not, < 0 on error. */
int hb_catalog_exists(hb_state *s, const char *ns, const char *name, hb_err *e);
/* Remove the entry of ns/name (HARVBK_E_NOTFOUND: "VM ns/name is not
 * registered"), and its namespace directory when that became empty. */
int hb_catalog_remove(hb_state *s, const char *ns, const char *name, hb_err *e);
/* Calls cb for every readable entry (unreadable ones are logged and skipped);
 * cb takes the VM over. A non-zero cb return (a HARVBK_E_* code) stops and is
 * returned. */
typedef int (*hb_catalog_cb)(harvbk_vm *vm, void *ud);
int hb_catalog_foreach(hb_state *s, hb_catalog_cb cb, void *ud, hb_err *e);
/* A catalog entry's JSON text (new string) and back. */
char *hb_catalog_encode(const harvbk_vm *vm);
int hb_catalog_decode(const void *data, size_t len, harvbk_vm **out, hb_err *e);

#endif
