/*
 * vm.c - `harvbk vm add|list|show|remove`: the context's VM catalog.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char HELP_VM[] =
    "Usage: harvbk vm add NS/NAME --disk VOLNAME=PATH [--disk VOLNAME=PATH ...]\n"
    "                     [--metadata FILE] [--image REF ...]\n"
    "       harvbk vm list [--json]\n"
    "       harvbk vm show NS/NAME [--json]\n"
    "       harvbk vm remove NS/NAME\n"
    "       harvbk vm set-power NS/NAME on|off|unknown\n"
    "\n"
    "'vm add' registers a VM (or replaces the registration of the same name):\n"
    "  --disk VOLNAME=PATH   a volume backed by a raw image file or block device;\n"
    "                        VOLNAME is a DNS-1123 label; PATH must exist (it is\n"
    "                        stored as an absolute path)\n"
    "  --metadata FILE       opaque metadata document kept with every backup\n"
    "                        (e.g. the VM spec JSON)\n"
    "  --image REF           an image the VM uses (repeatable): NS/NAME, or NAME in\n"
    "                        the VM's namespace ('harvbk image register'); backups\n"
    "                        record it, restores find or need it. Other strings\n"
    "                        are kept as they are and never checked\n"
    "'vm remove' forgets the VM; its disk files are not touched.\n"
    "'vm show --metadata' prints the VM's metadata document as it is stored.\n"
    "'vm set-power' records the power state the VM is in (as an embedding program\n"
    "reports it); 'restore --replace' needs the VM reported off.\n";

#define METADATA_MAX (16u * 1024u * 1024u)

/* Size of a file or block device; false when it cannot be opened. */
static bool disk_size(const char *path, uint64_t *out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    if (S_ISREG(st.st_mode)) {
        *out = (uint64_t)st.st_size;
        return true;
    }
    if (S_ISBLK(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return false;
        uint64_t sz = 0;
        bool ok = ioctl(fd, BLKGETSIZE64, &sz) == 0;
        close(fd);
        if (ok)
            *out = sz;
        return ok;
    }
    return false;
}

static const char *power_name(harvbk_power_state p)
{
    switch (p) {
    case HARVBK_POWER_ON: return "on";
    case HARVBK_POWER_OFF: return "off";
    default: return "unknown";
    }
}

static int vm_add(cli_args *a)
{
    const char *H = a->H, **pos = a->pos, *ns = a->ns, *name = a->name;
    cli_opt *opts = a->opts;
    harvbk_vm *vm = NULL;
    harvbk_ctx *ctx = NULL;
    char *meta = NULL;
    int ex = 0;
    cli_opt *disks = cli_opt_find(opts, "disk");
    if (disks->count == 0) {
        ex = cli_usage_err(H, "vm add needs at least one --disk VOLNAME=PATH");
        goto out;
    }
    int rc = harvbk_vm_new(&vm, ns, name);
    if (rc != 0) {
        cli_err("vm add %s: %s", pos[0], harvbk_strerror(rc));
        ex = rc == HARVBK_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < disks->count; i++) {
        const char *d = disks->values[i];
        const char *eq = strchr(d, '=');
        if (!eq || eq == d || eq[1] == '\0') {
            ex = cli_usage_err(H, "invalid --disk '%s': expected VOLNAME=PATH", d);
            goto out;
        }
        char vol[CLI_NAME_MAX + 1];
        size_t vlen = (size_t)(eq - d);
        if (vlen > CLI_NAME_MAX)
            vlen = CLI_NAME_MAX;
        memcpy(vol, d, vlen);
        vol[vlen] = '\0';
        if ((ex = cli_check_label(H, "volume", vol)))
            goto out;
        const char *path = eq + 1;
        struct stat st;
        if (stat(path, &st) != 0) {
            cli_err("vm add %s: disk '%s': cannot use '%s': %s", pos[0], vol, path,
                    strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            cli_err("vm add %s: disk '%s': '%s' is not a regular file or block device", pos[0],
                    vol, path);
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        if (access(path, R_OK) != 0) {
            cli_err("vm add %s: disk '%s': cannot read '%s': %s", pos[0], vol, path,
                    strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        char *abs = cli_abspath(path);
        rc = harvbk_vm_add_volume_file(vm, vol, abs ? abs : path);
        free(abs);
        if (rc == HARVBK_E_EXISTS) {
            ex = cli_usage_err(H, "volume '%s' given twice", vol);
            goto out;
        }
        if (rc != 0) {
            cli_err("vm add %s: disk '%s': %s", pos[0], vol, harvbk_strerror(rc));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
    }
    cli_opt *mo = cli_opt_find(opts, "metadata");
    if (mo->count) {
        size_t len = 0;
        int err = cli_read_file(mo->value, METADATA_MAX, &meta, &len);
        if (err) {
            cli_err("vm add %s: cannot read metadata file '%s': %s", pos[0], mo->value,
                    err == EFBIG ? "larger than 16 MiB" : strerror(err));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        rc = harvbk_vm_set_metadata(vm, meta, len);
        if (rc != 0) {
            cli_err("vm add %s: metadata: %s", pos[0], harvbk_strerror(rc));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
    }
    cli_opt *imgs = cli_opt_find(opts, "image");
    for (int i = 0; i < imgs->count; i++) {
        if (!imgs->values[i][0]) {
            ex = cli_usage_err(H, "--image needs a non-empty reference");
            goto out;
        }
        rc = harvbk_vm_add_image(vm, imgs->values[i]);
        if (rc != 0) {
            cli_err("vm add %s: image '%s': %s", pos[0], imgs->values[i], harvbk_strerror(rc));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
    }

    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    harvbk_vm *old = NULL;
    bool existed = harvbk_vm_lookup(&old, ctx, ns, name) == 0;
    harvbk_vm_free(old);
    rc = harvbk_vm_register(ctx, vm);
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "vm add %s", pos[0]);
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    printf("vm %s/%s %s (%zu volume%s)\n", ns, name, existed ? "replaced" : "registered",
           harvbk_vm_volume_count(vm), harvbk_vm_volume_count(vm) == 1 ? "" : "s");
    ex = CLI_EXIT_OK;
out:
    free(meta);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    return ex;
}

static cJSON *vm_json(const harvbk_vm *vm)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "namespace", harvbk_vm_namespace(vm));
    cJSON_AddStringToObject(o, "name", harvbk_vm_name(vm));
    cJSON_AddStringToObject(o, "power_state", power_name(harvbk_vm_power_state(vm)));
    cJSON *vols = cJSON_AddArrayToObject(o, "volumes");
    size_t nv = harvbk_vm_volume_count(vm);
    for (size_t i = 0; i < nv && vols; i++) {
        cJSON *v = cJSON_CreateObject();
        if (!v)
            break;
        const char *path = harvbk_vm_volume_path(vm, i);
        cJSON_AddStringToObject(v, "name", harvbk_vm_volume_name(vm, i));
        if (path)
            cJSON_AddStringToObject(v, "path", path);
        else
            cJSON_AddNullToObject(v, "path");
        uint64_t sz;
        if (path && disk_size(path, &sz))
            cJSON_AddNumberToObject(v, "size", (double)sz);
        else
            cJSON_AddNullToObject(v, "size");
        cJSON_AddItemToArray(vols, v);
    }
    cJSON *imgs = cJSON_AddArrayToObject(o, "images");
    size_t ni = harvbk_vm_image_count(vm);
    for (size_t i = 0; i < ni && imgs; i++)
        cJSON_AddItemToArray(imgs, cJSON_CreateString(harvbk_vm_image(vm, i)));
    size_t mlen = 0;
    harvbk_vm_metadata(vm, &mlen);
    cJSON_AddNumberToObject(o, "metadata_bytes", (double)mlen);
    return o;
}

static int vm_list(cli_args *a)
{
    int ex = CLI_EXIT_OK;
    bool json = cli_opt_find(a->opts, "json")->count > 0;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_vm_list *list = NULL;
    int rc = harvbk_vm_list_get(&list, ctx);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "vm list");
        harvbk_ctx_free(ctx);
        return ex;
    }
    size_t n = harvbk_vm_list_count(list);
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n && arr; i++)
            cJSON_AddItemToArray(arr, vm_json(harvbk_vm_list_at(list, i)));
        ex = cli_print_json(arr);
    } else if (n == 0) {
        printf("no VMs registered (add one with 'harvbk vm add NS/NAME --disk VOL=PATH')\n");
    } else {
        /* width of the first column */
        int w = (int)strlen("NS/NAME");
        for (size_t i = 0; i < n; i++) {
            const harvbk_vm *vm = harvbk_vm_list_at(list, i);
            int l = (int)(strlen(harvbk_vm_namespace(vm)) + 1 + strlen(harvbk_vm_name(vm)));
            if (l > w)
                w = l;
        }
        printf("%-*s  %7s  %10s  %s\n", w, "NS/NAME", "VOLUMES", "SIZE", "DISKS");
        for (size_t i = 0; i < n; i++) {
            const harvbk_vm *vm = harvbk_vm_list_at(list, i);
            char full[2 * CLI_NAME_MAX + 2];
            snprintf(full, sizeof full, "%s/%s", harvbk_vm_namespace(vm), harvbk_vm_name(vm));
            size_t nv = harvbk_vm_volume_count(vm);
            uint64_t total = 0;
            bool all = true;
            for (size_t k = 0; k < nv; k++) {
                uint64_t sz;
                const char *p = harvbk_vm_volume_path(vm, k);
                if (p && disk_size(p, &sz))
                    total += sz;
                else
                    all = false;
            }
            char sbuf[32];
            printf("%-*s  %7zu  %10s  ", w, full, nv,
                   all ? cli_fmt_size(total, sbuf, sizeof sbuf) : "?");
            for (size_t k = 0; k < nv; k++) {
                const char *p = harvbk_vm_volume_path(vm, k);
                printf("%s%s=%s", k ? "," : "", harvbk_vm_volume_name(vm, k), p ? p : "-");
            }
            printf("\n");
        }
    }
    harvbk_vm_list_free(list);
    harvbk_ctx_free(ctx);
    return ex;
}

static int vm_show(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    cli_opt *opts = a->opts;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_vm *vm = NULL;
    int rc = harvbk_vm_lookup(&vm, ctx, ns, name);
    if (rc == HARVBK_E_NOTFOUND) {
        cli_err("vm show: VM %s/%s is not registered (see 'harvbk vm list')", ns, name);
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "vm show");
        harvbk_ctx_free(ctx);
        return ex;
    }
    if (cli_opt_find(opts, "metadata")->count) {
        size_t mlen = 0;
        const void *meta = harvbk_vm_metadata(vm, &mlen);
        if (mlen && fwrite(meta, 1, mlen, stdout) != mlen)
            ex = CLI_EXIT_FAIL;
    } else if (cli_opt_find(opts, "json")->count) {
        ex = cli_print_json(vm_json(vm));
    } else {
        printf("%-12s %s/%s\n", "vm:", ns, name);
        printf("%-12s %s\n", "power:", power_name(harvbk_vm_power_state(vm)));
        size_t nv = harvbk_vm_volume_count(vm);
        for (size_t i = 0; i < nv; i++) {
            const char *p = harvbk_vm_volume_path(vm, i);
            uint64_t sz;
            char sbuf[32];
            printf("%-12s %s = %s (%s)\n", i == 0 ? "volumes:" : "", harvbk_vm_volume_name(vm, i),
                   p ? p : "-",
                   p && disk_size(p, &sz) ? cli_fmt_size(sz, sbuf, sizeof sbuf) : "missing");
        }
        size_t ni = harvbk_vm_image_count(vm);
        for (size_t i = 0; i < ni; i++)
            printf("%-12s %s\n", i == 0 ? "images:" : "", harvbk_vm_image(vm, i));
        size_t mlen = 0;
        harvbk_vm_metadata(vm, &mlen);
        printf("%-12s %zu bytes\n", "metadata:", mlen);
    }
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    return ex;
}

static int vm_remove(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    int rc = harvbk_vm_unregister(ctx, ns, name);
    if (rc == HARVBK_E_NOTFOUND) {
        cli_err("vm remove: VM %s/%s is not registered", ns, name);
        ex = CLI_EXIT_FAIL;
    } else if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "vm remove");
    } else {
        printf("vm %s/%s removed (its disks were not touched)\n", ns, name);
        ex = CLI_EXIT_OK;
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static int vm_set_power(cli_args *a)
{
    const char *H = a->H, **pos = a->pos, *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_power_state ps;
    if (strcmp(pos[1], "on") == 0)
        ps = HARVBK_POWER_ON;
    else if (strcmp(pos[1], "off") == 0)
        ps = HARVBK_POWER_OFF;
    else if (strcmp(pos[1], "unknown") == 0)
        ps = HARVBK_POWER_UNKNOWN;
    else
        return cli_usage_err(H, "invalid power state '%s' (on, off or unknown)", pos[1]);
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    int rc = harvbk_vm_set_registered_power_state(ctx, ns, name, ps);
    if (rc == HARVBK_E_NOTFOUND) {
        cli_err("vm set-power: VM %s/%s is not registered", ns, name);
        ex = CLI_EXIT_FAIL;
    } else if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "vm set-power");
    } else {
        printf("vm %s/%s power state: %s\n", ns, name, power_name(ps));
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static const cli_opt OPTS_ADD[] = {
    {"disk", CLI_OPT_MULTI, 0, 0, 0},
    {"metadata", CLI_OPT_VALUE, 0, 0, 0},
    {"image", CLI_OPT_MULTI, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
static const cli_opt OPTS_SHOW[] = {
    {"json", CLI_OPT_FLAG, 0, 0, 0}, {"metadata", CLI_OPT_FLAG, 0, 0, 0}, {NULL, 0, 0, 0, 0}};

static const cli_cmd VM_CMDS[] = {
    {"add", NULL, vm_add, OPTS_ADD, 1, 1, NULL, "the VM"},
    {"list", "ls", vm_list, CLI_OPTS_JSON, 0, 0, NULL, NULL},
    {"show", NULL, vm_show, OPTS_SHOW, 1, 1, NULL, "the VM"},
    {"remove", "rm", vm_remove, NULL, 1, 1, NULL, "the VM"},
    {"set-power", NULL, vm_set_power, NULL, 2, 2,
     "vm set-power needs the VM as NAMESPACE/NAME and on, off or unknown", "the VM"},
    {NULL},
};

int cmd_vm(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk vm", HELP_VM, "add, list, show, remove or set-power",
                                VM_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}
