/* state/vm.c - harvbk_vm: a plain value describing a VM. */
#include "vm.h"
#include <string.h>

int harvbk_vm_new(harvbk_vm **out, const char *namespace_, const char *name)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_vm_new: out is NULL");
    *out = NULL;
    hb_err e;
    if (hb_check_name("VM namespace", namespace_, &e) || hb_check_name("VM name", name, &e))
        return hb_fail_err(&e);
    harvbk_vm *vm = hb_calloc(1, sizeof *vm);
    if (!vm)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    vm->ns = hb_strdup(namespace_);
    vm->name = hb_strdup(name);
    vm->power = HARVBK_POWER_UNKNOWN;
    if (!vm->ns || !vm->name) {
        harvbk_vm_free(vm);
        return hb_fail(HARVBK_E_NOMEM, NULL);
    }
    *out = vm;
    return 0;
}

void harvbk_vm_free(harvbk_vm *vm)
{
    if (!vm)
        return;
    for (size_t i = 0; i < vm->nvols; i++) {
        hb_free(vm->vols[i].name);
        hb_free(vm->vols[i].path);
    }
    hb_free(vm->vols);
    for (size_t i = 0; i < vm->nimages; i++)
        hb_free(vm->images[i]);
    hb_free(vm->images);
    hb_buf_free(&vm->metadata);
    hb_free(vm->ns);
    hb_free(vm->name);
    hb_free(vm);
}

const hb_vm_volume *hb_vm_find_volume(const harvbk_vm *vm, const char *name)
{
    for (size_t i = 0; vm && name && i < vm->nvols; i++)
        if (strcmp(vm->vols[i].name, name) == 0)
            return &vm->vols[i];
    return NULL;
}

int hb_vm_push_volume(harvbk_vm *vm, const char *name, const char *path, uint64_t size,
                      harvbk_volume_read_cb rd, harvbk_volume_write_cb wr, void *payload)
{
    hb_err e;
    if (hb_check_name("volume name", name, &e))
        return hb_fail_err(&e);
    if (hb_vm_find_volume(vm, name))
        return hb_fail(HARVBK_E_EXISTS, "VM %s/%s already has a volume '%s'", vm->ns, vm->name,
                       name);
    if (vm->nvols == vm->capvols) {
        size_t cap = vm->capvols ? vm->capvols * 2 : 4;
        hb_vm_volume *v = hb_realloc(vm->vols, cap * sizeof *v);
        if (!v)
            return hb_fail(HARVBK_E_NOMEM, NULL);
        vm->vols = v;
        vm->capvols = cap;
    }
    hb_vm_volume *v = &vm->vols[vm->nvols];
    memset(v, 0, sizeof *v);
    v->name = hb_strdup(name);
    v->path = path ? hb_strdup(path) : NULL;
    if (!v->name || (path && !v->path)) {
        hb_free(v->name);
        hb_free(v->path);
        return hb_fail(HARVBK_E_NOMEM, NULL);
    }
    v->size = size;
    v->read_cb = rd;
    v->write_cb = wr;
    v->payload = payload;
    vm->nvols++;
    return 0;
}

int harvbk_vm_add_volume_file(harvbk_vm *vm, const char *volume, const char *path)
{
    if (!vm)
        return hb_fail(HARVBK_E_INVALID, "harvbk_vm_add_volume_file: vm is NULL");
    if (!path || !*path)
        return hb_fail(HARVBK_E_INVALID, "volume '%s': the file path must not be empty",
                       volume ? volume : "(null)");
    return hb_vm_push_volume(vm, volume, path, 0, NULL, NULL, NULL);
}

int harvbk_vm_add_volume_callbacks(harvbk_vm *vm, const char *volume, uint64_t size,
                                   harvbk_volume_read_cb read_cb,
                                   harvbk_volume_write_cb write_cb, void *payload)
{
    if (!vm)
        return hb_fail(HARVBK_E_INVALID, "harvbk_vm_add_volume_callbacks: vm is NULL");
    if (!read_cb && !write_cb)
        return hb_fail(HARVBK_E_INVALID,
                       "volume '%s': at least one of the read and write callbacks is needed",
                       volume ? volume : "(null)");
    return hb_vm_push_volume(vm, volume, NULL, size, read_cb, write_cb, payload);
}

int harvbk_vm_set_metadata(harvbk_vm *vm, const void *data, size_t len)
{
    if (!vm)
        return hb_fail(HARVBK_E_INVALID, "harvbk_vm_set_metadata: vm is NULL");
    if (!data && len)
        return hb_fail(HARVBK_E_INVALID, "VM metadata: data is NULL but len is %zu", len);
    if (len > HARVBK_VM_METADATA_MAX)
        return hb_fail(HARVBK_E_INVALID, "VM metadata of %zu bytes is over the %u byte limit",
                       len, (unsigned)HARVBK_VM_METADATA_MAX);
    hb_buf b = HB_BUF_INIT;
    if (len && hb_buf_append(&b, data, len) != 0)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    hb_buf_free(&vm->metadata);
    vm->metadata = b;
    return 0;
}

int harvbk_vm_add_image(harvbk_vm *vm, const char *image)
{
    if (!vm)
        return hb_fail(HARVBK_E_INVALID, "harvbk_vm_add_image: vm is NULL");
    if (!image || !*image)
        return hb_fail(HARVBK_E_INVALID, "image reference must not be empty");
    if (strlen(image) > HARVBK_VM_IMAGE_MAX)
        return hb_fail(HARVBK_E_INVALID, "image reference is longer than %u bytes",
                       (unsigned)HARVBK_VM_IMAGE_MAX);
    for (const unsigned char *c = (const unsigned char *)image; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return hb_fail(HARVBK_E_INVALID,
                           "image reference contains a control character (0x%02x)", *c);
    char **imgs = hb_realloc(vm->images, (vm->nimages + 1) * sizeof *imgs);
    if (!imgs)
        return hb_fail(HARVBK_E_NOMEM, NULL);
    vm->images = imgs;
    if (!(imgs[vm->nimages] = hb_strdup(image)))
        return hb_fail(HARVBK_E_NOMEM, NULL);
    vm->nimages++;
    return 0;
}

int harvbk_vm_set_power_state(harvbk_vm *vm, harvbk_power_state state)
{
    if (!vm)
        return hb_fail(HARVBK_E_INVALID, "harvbk_vm_set_power_state: vm is NULL");
    if (state != HARVBK_POWER_UNKNOWN && state != HARVBK_POWER_ON && state != HARVBK_POWER_OFF)
        return hb_fail(HARVBK_E_INVALID, "power state %d is not a harvbk_power_state",
                       (int)state);
    vm->power = state;
    return 0;
}

const char *harvbk_vm_namespace(const harvbk_vm *vm) { return vm ? vm->ns : NULL; }
const char *harvbk_vm_name(const harvbk_vm *vm) { return vm ? vm->name : NULL; }
size_t harvbk_vm_volume_count(const harvbk_vm *vm) { return vm ? vm->nvols : 0; }

const char *harvbk_vm_volume_name(const harvbk_vm *vm, size_t i)
{
    return vm && i < vm->nvols ? vm->vols[i].name : NULL;
}

const char *harvbk_vm_volume_path(const harvbk_vm *vm, size_t i)
{
    return vm && i < vm->nvols ? vm->vols[i].path : NULL;
}

const void *harvbk_vm_metadata(const harvbk_vm *vm, size_t *out_len)
{
    if (out_len)
        *out_len = vm ? vm->metadata.len : 0;
    return vm && vm->metadata.len ? vm->metadata.data : NULL;
}

size_t harvbk_vm_image_count(const harvbk_vm *vm) { return vm ? vm->nimages : 0; }

const char *harvbk_vm_image(const harvbk_vm *vm, size_t i)
{
    return vm && i < vm->nimages ? vm->images[i] : NULL;
}

harvbk_power_state harvbk_vm_power_state(const harvbk_vm *vm)
{
    return vm ? vm->power : HARVBK_POWER_UNKNOWN;
}

int hb_vm_dup(harvbk_vm **out, const harvbk_vm *src)
{
    harvbk_vm *vm = NULL;
    int rc = harvbk_vm_new(&vm, src->ns, src->name);
    for (size_t i = 0; rc == 0 && i < src->nvols; i++) {
        const hb_vm_volume *v = &src->vols[i];
        rc = hb_vm_push_volume(vm, v->name, v->path, v->size, v->read_cb, v->write_cb,
                               v->payload);
    }
    if (rc == 0 && src->metadata.len)
        rc = harvbk_vm_set_metadata(vm, src->metadata.data, src->metadata.len);
    for (size_t i = 0; rc == 0 && i < src->nimages; i++)
        rc = harvbk_vm_add_image(vm, src->images[i]);
    if (rc == 0)
        vm->power = src->power;
    if (rc != 0) {
        harvbk_vm_free(vm);
        vm = NULL;
    }
    *out = vm;
    return rc;
}
