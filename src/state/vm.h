/* state/vm.h - harvbk_vm: a plain value describing a VM (vm.c). */
#ifndef HB_STATE_VM_H
#define HB_STATE_VM_H

#include "../core/hb.h"

typedef struct hb_vm_volume {
    char *name;
    char *path;                  /* NULL for callback/external volumes */
    uint64_t size;               /* callback volumes; catalog "external" volumes */
    harvbk_volume_read_cb read_cb;
    harvbk_volume_write_cb write_cb;
    void *payload;
} hb_vm_volume;

struct harvbk_vm {
    char *ns, *name;
    hb_vm_volume *vols;
    size_t nvols, capvols;
    hb_buf metadata;
    char **images;
    size_t nimages;
    harvbk_power_state power;
};

int hb_vm_dup(harvbk_vm **out, const harvbk_vm *src);
/* Append a volume (everything copied); HARVBK_E_EXISTS for a duplicate name. */
int hb_vm_push_volume(harvbk_vm *vm, const char *name, const char *path, uint64_t size,
                      harvbk_volume_read_cb rd, harvbk_volume_write_cb wr, void *payload);
const hb_vm_volume *hb_vm_find_volume(const harvbk_vm *vm, const char *name);

#endif
