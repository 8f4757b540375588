/* fuzz_ranges_file - the changed-ranges file of `harvbk backup create
 * --changed-ranges FILE` (examples/harvbk/ranges.c, docs/CLI.md), read by the
 * CLI's own loader, then merged as a backup merges them (hb_rangeset_build).
 * The file is given through a memfd; the VM has the volumes rootdisk, data
 * and a. Run with -close_fd_mask=2 when fuzzing: the CLI reports every
 * malformed line on stderr. */
#include "fuzz.h"

#include "engine/rangeset.h"
#include "ops/ops.h"
#include "ranges.h"

#include <sys/mman.h>
#include <unistd.h>

static harvbk_vm *vm;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (harvbk_vm_new(&vm, "default", "web") != 0 ||
        harvbk_vm_add_volume_file(vm, "rootdisk", "/nonexistent/rootdisk.img") != 0 ||
        harvbk_vm_add_volume_file(vm, "data", "/nonexistent/data.img") != 0 ||
        harvbk_vm_add_volume_file(vm, "a", "/nonexistent/a.img") != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("ranges", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        FUZZ_CHECK(w > 0);
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    harvbk_ranges *r = NULL;
    uint64_t count = 0, bytes = 0;
    int ex = cli_ranges_load("harvbk backup create", path, vm, &r, &count, &bytes);
    close(fd);
    if (ex) {
        FUZZ_CHECK(ex == CLI_EXIT_USAGE || ex == CLI_EXIT_FAIL);
        FUZZ_CHECK(r == NULL);
        return 0;
    }
    FUZZ_CHECK(r != NULL);
    uint64_t n = 0, sum = 0;
    for (size_t i = 0; i < r->n; i++) {
        const hb_ranges_vol *v = &r->v[i];
        FUZZ_CHECK(hb_ranges_find(r, v->volume) == v);
        FUZZ_CHECK(!strcmp(v->volume, "rootdisk") || !strcmp(v->volume, "data") ||
                   !strcmp(v->volume, "a"));
        uint64_t raw = 0;
        bool wrapped = false;
        for (size_t k = 0; k < v->n; k++) {
            FUZZ_CHECK(v->r[k].len > 0 && v->r[k].len <= UINT64_MAX - v->r[k].off);
            wrapped |= raw + v->r[k].len < raw;
            raw += v->r[k].len;
        }
        n += v->n;
        sum += raw;
        /* merged: sorted, disjoint, not adjacent, covering no more than given */
        hb_rangeset rs;
        FUZZ_CHECK(hb_rangeset_build(&rs, v->r, v->n) == 0);
        uint64_t covered = hb_rangeset_bytes(&rs);
        FUZZ_CHECK(wrapped || covered <= raw);
        for (size_t k = 0; k < rs.n; k++) {
            FUZZ_CHECK(rs.r[k].len > 0);
            if (k)
                FUZZ_CHECK(rs.r[k].off > rs.r[k - 1].off + rs.r[k - 1].len);
        }
        for (size_t k = 0; k < v->n; k++)
            FUZZ_CHECK(hb_rangeset_overlaps(&rs, v->r[k].off, v->r[k].len));
        hb_rangeset_clear(&rs);
    }
    FUZZ_CHECK(n == count && sum == bytes);
    harvbk_ranges_free(r);
    return 0;
}
