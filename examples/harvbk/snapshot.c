/*
 * snapshot.c - `harvbk snapshot create|list|show|verify|delete|gc|store`:
 * VM snapshots in the state directory's local snapshot store.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char HELP_SNAPSHOT[] =
    "Usage: harvbk snapshot create NS/VM --name NAME [--allow-crash-consistent]\n"
    "       harvbk snapshot list [--json]\n"
    "       harvbk snapshot show NS/NAME [--json]\n"
    "       harvbk snapshot verify NS/NAME\n"
    "       harvbk snapshot delete NS/NAME\n"
    "       harvbk snapshot gc\n"
    "       harvbk snapshot store [--dir DIR] [--chunk-size BYTES] [--codec CODEC]\n"
    "                             [--encrypt] [--key-file FILE | --passphrase-file FILE]\n"
    "\n"
    "Snapshots are point-in-time copies of all of a VM's volumes and its metadata,\n"
    "kept in the state directory's local snapshot store (no backup target needed);\n"
    "snapshots of a VM share every chunk that did not change.\n"
    "'snapshot create' snapshots the registered VM NS/VM as NS/NAME and waits until\n"
    "it is Ready (exit 0) or failed (exit 1); refused when the VM's or namespace's\n"
    "snapshot space is at or over its quota ('harvbk quota').\n"
    "  --allow-crash-consistent   go on when freezing the filesystems fails\n"
    "'snapshot verify' reads and checks every chunk (exit 3 when one is bad).\n"
    "'snapshot delete' removes the snapshot and frees the chunks no other snapshot\n"
    "uses. 'snapshot gc' removes chunks no snapshot references.\n"
    "'snapshot store' shows, or with options sets, where the store is (default:\n"
    "STATE/snapshot-store) and the chunk size and codec of a new store.\n"
    "--encrypt (implied by --key-file / --passphrase-file) encrypts a new store\n"
    "(AES-256-GCM); the key file's path is recorded, never the key. Its keys are\n"
    "managed with 'harvbk target key ... --snapshot-store'.\n"
    "Restore a snapshot with 'harvbk restore --snapshot NS/NAME ...'.\n";

static cJSON *info_json(const harvbk_backup_info *info)
{
    char *s = NULL;
    if (harvbk_backup_info_to_json(info, &s) != 0 || !s)
        return NULL;
    cJSON *j = cJSON_Parse(s);
    harvbk_string_free(s);
    return j;
}

static void state_text(const harvbk_backup_info *info, char *buf, size_t size)
{
    int st = harvbk_backup_info_state(info);
    uint64_t total = harvbk_backup_info_logical_bytes(info);
    uint64_t done = harvbk_backup_info_progress_bytes(info);
    if (st == HARVBK_STATE_INPROGRESS && total > 0)
        snprintf(buf, size, "%s %u%%", harvbk_state_name(st),
                 (unsigned)((done >= total ? total : done) * 100 / total));
    else
        snprintf(buf, size, "%s", harvbk_state_name(st));
}

static int snap_create(cli_args *a)
{
    const char *H = a->H, *ns = a->ns, *vmname = a->name;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    harvbk_vm *vm = NULL;
    harvbk_op *op = NULL;
    int ex = 0;
    cli_opt *on = cli_opt_find(opts, "name");
    if (!on->count) {
        ex = cli_usage_err(H, "snapshot create needs --name NAME");
        goto out;
    }
    const char *sname = on->value;
    if ((ex = cli_check_label(H, "snapshot", sname)))
        goto out;
    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = cli_lookup_vm(ctx, "snapshot create", ns, vmname, &vm);
    if (rc == HARVBK_E_NOTFOUND) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "snapshot create");
        goto out;
    }
    for (size_t i = 0; i < harvbk_vm_volume_count(vm); i++) {
        const char *p = harvbk_vm_volume_path(vm, i);
        if (p && access(p, R_OK) != 0) {
            cli_err("snapshot create: volume '%s' of VM %s/%s: cannot read '%s': %s",
                    harvbk_vm_volume_name(vm, i), ns, vmname, p, strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
    }
    char what[3 * CLI_NAME_MAX + 32];
    snprintf(what, sizeof what, "snapshot %s/%s", ns, sname);
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_snapshot_options o;
    harvbk_snapshot_options_init(&o, HARVBK_SNAPSHOT_OPTIONS_VERSION);
    if (cli_opt_find(opts, "allow-crash-consistent")->count)
        o.flags |= HARVBK_SNAPSHOT_ALLOW_CRASH_CONSISTENT;
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    if (cli_signal_pending()) {
        cli_err("%s: cancelled before it started", what);
        ex = CLI_EXIT_INTERRUPTED;
        goto out;
    }
    rc = harvbk_snapshot_create(&op, ctx, vm, sname, &o);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "snapshot create");
        goto out;
    }
    double secs = 0;
    rc = cli_wait_op(op, &pr, what, &secs);
    if (rc != 0 && !(rc == HARVBK_E_CANCELLED && cli_signal_pending())) {
        ex = cli_fail_op(op, rc, what);
        goto out;
    }
    ex = cli_finish_op(op, rc, what);
    if (ex == CLI_EXIT_OK) {
        harvbk_backup_info *info = NULL;
        if (harvbk_snapshot_get(&info, ctx, ns, sname) == 0) {
            char l[32], u[32], r[32];
            uint64_t logical = harvbk_backup_info_logical_bytes(info);
            printf("snapshot %s/%s Ready: %s logical, %s stored in %.1fs (%s)%s\n", ns, sname,
                   cli_fmt_size(logical, l, sizeof l),
                   cli_fmt_size(harvbk_backup_info_uploaded_bytes(info), u, sizeof u), secs,
                   cli_fmt_rate(logical, secs, r, sizeof r),
                   harvbk_backup_info_crash_consistent(info) ? ", crash-consistent" : "");
            harvbk_backup_info_free(info);
        } else {
            printf("snapshot %s/%s Ready\n", ns, sname);
        }
    }
out:
    harvbk_op_free(op);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    return ex;
}

static int snap_list(cli_args *a)
{
    int ex = CLI_EXIT_OK;
    bool json = cli_opt_find(a->opts, "json")->count > 0;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_backup_list *list = NULL;
    int rc = harvbk_snapshot_list_get(&list, ctx);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "snapshot list");
        harvbk_ctx_free(ctx);
        return ex;
    }
    size_t n = harvbk_backup_list_count(list);
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n && arr; i++) {
            cJSON *j = info_json(harvbk_backup_list_at(list, i));
            if (!j) {
                cJSON_Delete(arr);
                arr = NULL;
                cli_err("snapshot list: cannot describe a snapshot as JSON");
                ex = CLI_EXIT_FAIL;
                break;
            }
            cJSON_AddItemToArray(arr, j);
        }
        if (arr)
            ex = cli_print_json(arr);
    } else if (n == 0) {
        printf("no snapshots\n");
    } else {
        int w = (int)strlen("NS/NAME"), wv = (int)strlen("VM");
        for (size_t i = 0; i < n; i++) {
            const harvbk_backup_info *b = harvbk_backup_list_at(list, i);
            int l = (int)(strlen(harvbk_backup_info_namespace(b)) + 1 +
                          strlen(harvbk_backup_info_name(b)));
            int lv = (int)strlen(harvbk_backup_info_vm_name(b));
            w = l > w ? l : w;
            wv = lv > wv ? lv : wv;
        }
        printf("%-*s  %-*s  %-15s  %10s  %10s  %s\n", w, "NS/NAME", wv, "VM", "STATE", "SIZE",
               "STORED", "CREATED");
        for (size_t i = 0; i < n; i++) {
            const harvbk_backup_info *b = harvbk_backup_list_at(list, i);
            char full[2 * CLI_NAME_MAX + 2], st[32], sz[32], up[32], cr[32];
            snprintf(full, sizeof full, "%s/%s", harvbk_backup_info_namespace(b),
                     harvbk_backup_info_name(b));
            state_text(b, st, sizeof st);
            const char *vmn = harvbk_backup_info_vm_name(b);
            printf("%-*s  %-*s  %-15s  %10s  %10s  %s\n", w, full, wv,
                   vmn && *vmn ? vmn : "-", st,
                   cli_fmt_size(harvbk_backup_info_logical_bytes(b), sz, sizeof sz),
                   cli_fmt_size(harvbk_backup_info_uploaded_bytes(b), up, sizeof up),
                   cli_fmt_time(harvbk_backup_info_created(b), cr, sizeof cr));
        }
    }
    harvbk_backup_list_free(list);
    harvbk_ctx_free(ctx);
    return ex;
}

static int snap_show(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_backup_info *b = NULL;
    int rc = harvbk_snapshot_get(&b, ctx, ns, name);
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "snapshot show %s/%s", ns, name);
        ex = cli_fail_ctx(ctx, rc, what);
        harvbk_ctx_free(ctx);
        return ex;
    }
    if (cli_opt_find(a->opts, "json")->count) {
        cJSON *j = info_json(b);
        if (!j) {
            cli_err("snapshot show %s/%s: cannot describe the snapshot as JSON", ns, name);
            ex = CLI_EXIT_FAIL;
        } else {
            ex = cli_print_json(j);
        }
    } else {
        char st[32], sz[32], up[32], cr[32];
        state_text(b, st, sizeof st);
        uint64_t logical = harvbk_backup_info_logical_bytes(b);
        uint64_t stored = harvbk_backup_info_uploaded_bytes(b);
        printf("%-18s %s/%s\n", "snapshot:", ns, name);
        const char *vmn = harvbk_backup_info_vm_name(b);
        printf("%-18s %s%s%s\n", "vm:", vmn && *vmn ? ns : "-", vmn && *vmn ? "/" : "",
               vmn && *vmn ? vmn : "");
        printf("%-18s %s\n", "state:", st);
        printf("%-18s %s\n", "created:",
               cli_fmt_time(harvbk_backup_info_created(b), cr, sizeof cr));
        printf("%-18s %s (%llu bytes)\n", "logical size:", cli_fmt_size(logical, sz, sizeof sz),
               (unsigned long long)logical);
        printf("%-18s %s (%llu bytes)\n", "stored (new):", cli_fmt_size(stored, up, sizeof up),
               (unsigned long long)stored);
        printf("%-18s %s\n", "crash-consistent:",
               harvbk_backup_info_crash_consistent(b) ? "yes" : "no");
        size_t nv = harvbk_backup_info_volume_count(b);
        for (size_t i = 0; i < nv; i++) {
            char vs[32];
            printf("%-18s %s (%s)\n", i == 0 ? "volumes:" : "",
                   harvbk_backup_info_volume_name(b, i),
                   cli_fmt_size(harvbk_backup_info_volume_size(b, i), vs, sizeof vs));
        }
        const char *err = harvbk_backup_info_error(b);
        if (err && *err)
            printf("%-18s %s\n", "error:", err);
    }
    harvbk_backup_info_free(b);
    harvbk_ctx_free(ctx);
    return ex;
}

static int snap_verify(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    char what[3 * CLI_NAME_MAX + 32];
    snprintf(what, sizeof what, "snapshot verify %s/%s", ns, name);
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_op_options o;
    harvbk_op_options_init(&o, HARVBK_OP_OPTIONS_VERSION);
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    harvbk_op *op = NULL;
    int rc = harvbk_snapshot_verify(&op, ctx, ns, name, &o);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, what);
        if (rc == HARVBK_E_CHUNK || rc == HARVBK_E_CORRUPT)
            ex = CLI_EXIT_BADDATA;
        harvbk_ctx_free(ctx);
        return ex;
    }
    double secs = 0;
    rc = cli_wait_op(op, &pr, what, &secs);
    ex = cli_finish_op(op, rc, what);
    if (rc == HARVBK_E_CHUNK || rc == HARVBK_E_CORRUPT)
        ex = CLI_EXIT_BADDATA;
    if (ex == CLI_EXIT_OK) {
        uint64_t done = 0;
        char r[32];
        harvbk_op_progress(op, &done, NULL);
        printf("snapshot %s/%s verified: every chunk present and intact (checked in %.1fs, "
               "%s)\n",
               ns, name, secs, cli_fmt_rate(done, secs, r, sizeof r));
    }
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
    return ex;
}

static int snap_delete(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    int rc = harvbk_snapshot_delete(ctx, ns, name);
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "snapshot delete %s/%s", ns, name);
        ex = cli_fail_ctx(ctx, rc, what);
    } else {
        printf("snapshot %s/%s deleted\n", ns, name);
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static int snap_gc(cli_args *a)
{
    int ex;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_op *op = NULL;
    int rc = harvbk_snapshot_gc(&op, ctx, NULL);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "snapshot gc");
        harvbk_ctx_free(ctx);
        return ex;
    }
    double secs = 0;
    rc = cli_wait_op(op, &pr, "snapshot gc", &secs);
    ex = cli_finish_op(op, rc, "snapshot gc");
    if (ex == CLI_EXIT_OK) {
        uint64_t chunks = 0, bytes = 0;
        char b[32];
        harvbk_gc_result(op, &chunks, &bytes);
        printf("snapshot gc: removed %llu chunks, %s (%llu bytes) in %.1fs\n",
               (unsigned long long)chunks, cli_fmt_size(bytes, b, sizeof b),
               (unsigned long long)bytes, secs);
    }
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
    return ex;
}

static int snap_store(cli_args *a)
{
    const char *H = a->H;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    char *dir = NULL, *kabs = NULL;
    int ex = 0;
    cli_opt *od = cli_opt_find(opts, "dir"), *oc = cli_opt_find(opts, "chunk-size"),
            *ok = cli_opt_find(opts, "codec");
    harvbk_snapshot_store_options o;
    harvbk_snapshot_store_options_init(&o, HARVBK_SNAPSHOT_STORE_OPTIONS_VERSION);
    if (oc->count) {
        uint64_t cs = 0;
        if (!cli_parse_size(oc->value, &cs) || cs > UINT32_MAX) {
            ex = cli_usage_err(H, "invalid --chunk-size '%s'", oc->value);
            goto out;
        }
        o.chunk_size = (uint32_t)cs;
    }
    if (od->count) {
        if (!od->value[0]) {
            ex = cli_usage_err(H, "--dir needs a directory");
            goto out;
        }
        if (!(dir = cli_abspath(od->value))) {
            cli_err("snapshot store: cannot resolve '%s': %s", od->value, strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        o.dir = dir;
    }
    if (ok->count)
        o.codec = ok->value;
    cli_opt *oe = cli_opt_find(opts, "encrypt"), *okf = cli_opt_find(opts, "key-file"),
            *opf = cli_opt_find(opts, "passphrase-file");
    if (okf->count && opf->count) {
        ex = cli_usage_err(H, "give --key-file or --passphrase-file, not both");
        goto out;
    }
    if (oe->count)
        o.flags |= HARVBK_SNAPSHOT_STORE_ENCRYPT;
    if (okf->count || opf->count) {
        kabs = cli_abspath(okf->count ? okf->value : opf->value);
        if (!kabs) {
            cli_err("snapshot store: cannot resolve '%s': %s",
                    okf->count ? okf->value : opf->value, strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        if (okf->count)
            o.key_file = kabs;
        else
            o.passphrase_file = kabs;
    }
    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (od->count || oc->count || ok->count || oe->count || okf->count || opf->count) {
        int rc = harvbk_snapshot_store_set(ctx, &o);
        if (rc != 0) {
            ex = rc == HARVBK_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
            cli_fail_ctx(ctx, rc, "snapshot store");
            goto out;
        }
    }
    char buf[4096];
    harvbk_snapshot_store_dir(ctx, buf, sizeof buf, NULL);
    printf("snapshot store: %s\n", buf);
    harvbk_store_keys *keys = NULL;
    if (harvbk_store_keys_get(ctx, HARVBK_STORE_SNAPSHOTS, &keys) == 0 &&
        harvbk_store_keys_encrypted(keys))
        printf("encryption: aes-256-gcm (store key %s)\n", harvbk_store_keys_fingerprint(keys));
    harvbk_store_keys_free(keys);
out:
    free(kabs);
    free(dir);
    harvbk_ctx_free(ctx);
    return ex;
}

static const cli_opt OPTS_CREATE[] = {
    {"name", CLI_OPT_VALUE, 0, 0, 0},
    {"allow-crash-consistent", CLI_OPT_FLAG, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
static const cli_opt OPTS_STORE[] = {
    {"dir", CLI_OPT_VALUE, 0, 0, 0},
    {"chunk-size", CLI_OPT_VALUE, 0, 0, 0},
    {"codec", CLI_OPT_VALUE, 0, 0, 0},
    {"encrypt", CLI_OPT_FLAG, 0, 0, 0},
    {"key-file", CLI_OPT_VALUE, 0, 0, 0},
    {"passphrase-file", CLI_OPT_VALUE, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static const cli_cmd SNAPSHOT_CMDS[] = {
    {"create", NULL, snap_create, OPTS_CREATE, 1, 1, NULL, "the VM"},
    {"list", "ls", snap_list, CLI_OPTS_JSON, 0, 0, NULL, NULL},
    {"show", NULL, snap_show, CLI_OPTS_JSON, 1, 1, NULL, "the snapshot"},
    {"verify", NULL, snap_verify, NULL, 1, 1, NULL, "the snapshot"},
    {"delete", "rm", snap_delete, NULL, 1, 1, NULL, "the snapshot"},
    {"gc", NULL, snap_gc, NULL, 0, 0, NULL, NULL},
    {"store", NULL, snap_store, OPTS_STORE, 0, 0, NULL, NULL},
    {NULL},
};

int cmd_snapshot(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk snapshot", HELP_SNAPSHOT,
                                "create, list, show, verify, delete, gc or store", SNAPSHOT_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}
