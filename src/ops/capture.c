/*
 * ops/capture.c - the freeze window of backups and snapshots: capturing a
 * volume while the VM is frozen, so that it can be thawed before the volume
 * is read (docs/THREADING.md "Freeze window"). Methods, in order: a reflink
 * copy of a regular file (FICLONE into an unnamed file next to it; gone when
 * closed), then the caller's capture hook (an LVM/Ceph/Longhorn snapshot),
 * whose captures are handed back to its release hook exactly once.
 */
#include "ops.h"
#include "../state/vm.h"
#include "../core/fsutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *hb_capture_name(int method)
{
    switch (method) {
    case HB_CAPTURE_REFLINK:
        return "reflink";
    case HB_CAPTURE_HOOK:
        return "hook";
    default:
        return "";
    }
}

static int capture_hook(const hb_capture_hooks *h, const harvbk_vm *vm, const hb_vm_volume *v,
                        uint64_t need, hb_capture *c, hb_err *e)
{
    char *buf = hb_calloc(1, HARVBK_CAPTURE_PATH_MAX);
    if (!buf)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int r = h->capture_cb(vm->ns, vm->name, v->name, v->path, buf, HARVBK_CAPTURE_PATH_MAX,
                          h->payload);
    buf[HARVBK_CAPTURE_PATH_MAX - 1] = 0;
    if (r != 0) {
        hb_free(buf);
        return hb_seterr(e, HARVBK_E_CALLBACK,
                         "the capture hook returned %d for volume '%s' of VM %s/%s", r,
                         v->name, vm->ns, vm->name);
    }
    if (!buf[0]) { /* declined: read the volume as it is, before the thaw */
        hb_free(buf);
        return 0;
    }
    /* from here on it is a capture: released exactly once, whatever happens */
    c->method = HB_CAPTURE_HOOK;
    c->path = buf;
    char what[256];
    snprintf(what, sizeof what, "the capture of volume %s of VM %s/%s", v->name, vm->ns,
             vm->name);
    hb_err oe;
    hb_err_clear(&oe);
    int fd = hb_open_volume(buf, O_RDONLY, 0, what, &oe);
    if (fd < 0)
        return hb_seterr(e, HARVBK_E_CALLBACK, "the capture hook gave a path that cannot be "
                         "read: %s", oe.msg);
    c->fd = fd;
    if (hb_fd_size(fd, &c->size, &oe) != 0)
        return hb_seterr(e, HARVBK_E_CALLBACK, "%s at '%s': %s", what, buf, oe.msg);
    if (c->size < need)
        return hb_seterr(e, HARVBK_E_CALLBACK,
                         "%s at '%s' has %llu bytes, fewer than the volume's %llu", what, buf,
                         (unsigned long long)c->size, (unsigned long long)need);
    return 0;
}

int hb_capture_volume(const hb_capture_hooks *h, const harvbk_vm *vm, size_t i, int live_fd,
                      uint64_t need, const hb_logger *log, hb_capture *c, hb_err *e)
{
    const hb_vm_volume *v = &vm->vols[i];
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (v->path && live_fd >= 0 && !h->no_reflink) {
        hb_err re;
        hb_err_clear(&re);
        int fd = -1;
        int rc = hb_reflink_clone(live_fd, v->path, &fd, &re);
        if (rc == 0) {
            c->method = HB_CAPTURE_REFLINK;
            c->fd = fd;
            rc = hb_fd_size(fd, &c->size, &re);
            if (rc == 0)
                return 0;
            /* a clone we cannot size is no use: drop it, try the next method */
            close(fd);
            memset(c, 0, sizeof *c);
            c->fd = -1;
        }
        if (rc == HARVBK_E_NOMEM)
            return hb_seterr(e, rc, "%s", re.msg);
        hb_log_debug(log, "volume %s of VM %s/%s: no reflink capture (%s)", v->name, vm->ns,
                     vm->name, re.msg);
    }
    if (h->capture_cb)
        return capture_hook(h, vm, v, need, c, e);
    return 0;
}

int hb_capture_release(const hb_capture_hooks *h, const harvbk_vm *vm, size_t i, hb_capture *c,
                       hb_err *e)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    int rc = 0;
    if (c->method == HB_CAPTURE_HOOK && c->path) {
        const hb_vm_volume *v = &vm->vols[i];
        int r = h->release_cb(vm->ns, vm->name, v->name, c->path, h->payload);
        if (r != 0)
            rc = hb_seterr(e, HARVBK_E_CALLBACK,
                           "the release hook returned %d for the capture '%s' of volume '%s' "
                           "of VM %s/%s (it may remain)",
                           r, c->path, v->name, vm->ns, vm->name);
        hb_free(c->path);
        c->path = NULL;
    }
    return rc;
}
