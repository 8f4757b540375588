/*
 * backup.c - `harvbk backup create|list|show|verify|delete`.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "ranges.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

static const char HELP_BACKUP[] =
    "Usage: harvbk backup create NS/VM --name NAME [--changed-ranges FILE]\n"
    "                                [--allow-crash-consistent]\n"
    "       harvbk backup list [--json]\n"
    "       harvbk backup show NS/NAME [--json]\n"
    "       harvbk backup verify NS/NAME\n"
    "       harvbk backup delete NS/NAME\n"
    "       harvbk backup forget NS/NAME\n"
    "\n"
    "'backup create' backs up the registered VM NS/VM into the target as backup\n"
    "NS/NAME and waits until it is Ready (exit 0) or failed (exit 1). On a\n"
    "terminal a progress bar is drawn on stderr. Ctrl-C cancels the backup.\n"
    "  --changed-ranges FILE      only read these byte ranges; chunks outside them\n"
    "                             are taken from the VM's previous Ready backup.\n"
    "                             One range per line: \"VOLNAME OFFSET LENGTH\"\n"
    "                             (decimal bytes); '#' comments and blank lines are\n"
    "                             allowed; a volume not listed is unchanged; '-'\n"
    "                             reads standard input\n"
    "  --allow-crash-consistent   go on when freezing the filesystems fails\n"
    "'backup verify' reads and checks every chunk; exit 3 when one is missing or\n"
    "corrupt. 'backup delete' removes the backup; 'harvbk gc' then frees its\n"
    "chunks. While the target is unreachable the deletion is recorded as pending\n"
    "and finished by the next successful 'harvbk sync'.\n"
    "'backup list' and 'backup show' answer from the state directory's catalog\n"
    "(also while the target is unreachable); 'backup list' says on stderr how old\n"
    "it is (\"catalog synced 12 s ago\"); 'harvbk sync' refreshes it.\n"
    "'backup forget' drops a backup from this catalog only: the target keeps it\n"
    "and a later sync brings it back only if its manifest changes.\n";

/* ------------------------------------------------------------------ */
/* shared operation runners */

static void fmt_name(char *buf, size_t size, const char *ns, const char *name)
{
    snprintf(buf, size, "%s/%s", ns, name);
}

int cli_run_backup(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                   const harvbk_ranges *ranges, unsigned flags, cli_op_result *res)
{
    char full[2 * CLI_NAME_MAX + 2], what[3 * CLI_NAME_MAX + 32];
    fmt_name(full, sizeof full, harvbk_vm_namespace(vm), name);
    snprintf(what, sizeof what, "backup %s", full);
    memset(res, 0, sizeof *res);

    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_backup_options o;
    harvbk_backup_options_init(&o, HARVBK_BACKUP_OPTIONS_VERSION);
    o.flags = flags;
    o.changed_ranges = ranges;
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;

    if (cli_signal_pending()) {
        cli_err("%s: cancelled before it started", what);
        return CLI_EXIT_INTERRUPTED;
    }
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, vm, name, &o);
    if (rc != 0) {
        if (rc == HARVBK_E_NOTARGET) {
            cli_err("%s: no backup target configured (set one with 'harvbk target set URL')",
                    what);
            return CLI_EXIT_FAIL;
        }
        return cli_fail_ctx(ctx, rc, "backup create");
    }
    rc = cli_wait_op(op, &pr, what, &res->seconds);
    int ex = cli_finish_op(op, rc, what);
    if (ex == CLI_EXIT_OK) {
        harvbk_backup_info *info = NULL;
        if (harvbk_backup_get(&info, ctx, harvbk_vm_namespace(vm), name) == 0) {
            res->logical_bytes = harvbk_backup_info_logical_bytes(info);
            res->uploaded_bytes = harvbk_backup_info_uploaded_bytes(info);
            harvbk_backup_info_free(info);
        } else {
            harvbk_op_progress(op, NULL, &res->logical_bytes);
        }
    }
    harvbk_op_free(op);
    return ex;
}

int cli_run_verify(harvbk_ctx *ctx, const char *ns, const char *name, cli_op_result *res)
{
    char what[3 * CLI_NAME_MAX + 32];
    snprintf(what, sizeof what, "backup verify %s/%s", ns, name);
    memset(res, 0, sizeof *res);
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_op_options o;
    harvbk_op_options_init(&o, HARVBK_OP_OPTIONS_VERSION);
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, ctx, ns, name, &o);
    if (rc != 0) {
        if (rc == HARVBK_E_NOTARGET) {
            cli_err("%s: no backup target configured", what);
            return CLI_EXIT_FAIL;
        }
        if (rc == HARVBK_E_CHUNK || rc == HARVBK_E_CORRUPT) {
            cli_fail_ctx(ctx, rc, what);
            return CLI_EXIT_BADDATA;
        }
        return cli_fail_ctx(ctx, rc, what);
    }
    char label[3 * CLI_NAME_MAX + 32];
    snprintf(label, sizeof label, "verify %s/%s", ns, name);
    rc = cli_wait_op(op, &pr, label, &res->seconds);
    int ex = cli_finish_op(op, rc, what);
    if (rc == HARVBK_E_CHUNK || rc == HARVBK_E_CORRUPT)
        ex = CLI_EXIT_BADDATA;
    if (ex == CLI_EXIT_OK)
        harvbk_op_progress(op, &res->logical_bytes, NULL);
    harvbk_op_free(op);
    return ex;
}

/* ------------------------------------------------------------------ */
/* backup create */

static int backup_create(cli_args *a)
{
    const char *H = a->H, *ns = a->ns, *vmname = a->name;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    harvbk_vm *vm = NULL;
    harvbk_ranges *ranges = NULL;
    int ex = 0;
    cli_opt *on = cli_opt_find(opts, "name");
    if (!on->count) {
        ex = cli_usage_err(H, "backup create needs --name NAME");
        goto out;
    }
    const char *bname = on->value;
    if ((ex = cli_check_label(H, "backup", bname)))
        goto out;

    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = cli_lookup_vm(ctx, "backup create", ns, vmname, &vm);
    if (rc == HARVBK_E_NOTFOUND) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "backup create: loading VM %s/%s", ns, vmname);
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    /* A missing disk is reported before the backup exists (else it would be
     * recorded as a failed backup of that name). */
    for (size_t i = 0; i < harvbk_vm_volume_count(vm); i++) {
        const char *p = harvbk_vm_volume_path(vm, i);
        if (p && access(p, R_OK) != 0) {
            cli_err("backup create: volume '%s' of VM %s/%s: cannot read '%s': %s",
                    harvbk_vm_volume_name(vm, i), ns, vmname, p, strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
    }
    cli_opt *oc = cli_opt_find(opts, "changed-ranges");
    if (oc->count && (ex = cli_ranges_load(H, oc->value, vm, &ranges, NULL, NULL)))
        goto out;
    if (cli_session_secret(ctx, "backup create")) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    unsigned flags = 0;
    if (cli_opt_find(opts, "allow-crash-consistent")->count)
        flags |= HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT;

    cli_op_result res;
    ex = cli_run_backup(ctx, vm, bname, ranges, flags, &res);
    if (ex == CLI_EXIT_OK) {
        char l[32], u[32], r[32];
        printf("backup %s/%s Ready: %s logical, %s uploaded in %.1fs (%s)\n", ns, bname,
               cli_fmt_size(res.logical_bytes, l, sizeof l),
               cli_fmt_size(res.uploaded_bytes, u, sizeof u), res.seconds,
               cli_fmt_rate(res.logical_bytes, res.seconds, r, sizeof r));
    }
out:
    harvbk_ranges_free(ranges);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    return ex;
}

/* ------------------------------------------------------------------ */
/* list / show */

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
    unsigned fl = harvbk_backup_info_catalog_flags(info);
    const char *extra = (fl & HARVBK_BACKUP_FLAG_DELETE_PENDING) ? " (delete pending)"
                        : (fl & HARVBK_BACKUP_FLAG_GONE)         ? " (gone)"
                        : (fl & HARVBK_BACKUP_FLAG_INDEX_MISSING) ? " (index missing)"
                                                                  : "";
    if (st == HARVBK_STATE_INPROGRESS && total > 0)
        snprintf(buf, size, "%s %u%%", harvbk_state_name(st),
                 (unsigned)((done >= total ? total : done) * 100 / total));
    else
        snprintf(buf, size, "%s%s", harvbk_state_name(st), extra);
}

/* "catalog synced 12 s ago" on stderr (never synced: says so). */
static void catalog_age_line(int64_t synced_at_ms)
{
    if (synced_at_ms <= 0) {
        cli_err("catalog never synced (run 'harvbk sync')");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t age = (now - synced_at_ms) / 1000;
    if (age < 0)
        age = 0;
    cli_stderr_lock();
    fprintf(stderr, "catalog synced %lld s ago\n", (long long)age);
    cli_stderr_unlock();
}

static int backup_list(cli_args *a)
{
    int ex = CLI_EXIT_OK;
    bool json = cli_opt_find(a->opts, "json")->count > 0;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "backup list")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    harvbk_backup_list *list = NULL;
    int rc = harvbk_backup_list_get(&list, ctx);
    if (rc != 0) {
        if (rc == HARVBK_E_NOTARGET)
            cli_err("backup list: no backup target configured (set one with 'harvbk target "
                    "set URL')");
        else
            cli_fail_ctx(ctx, rc, "backup list");
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    size_t n = harvbk_backup_list_count(list);
    catalog_age_line(harvbk_backup_list_synced_at(list));
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n && arr; i++) {
            cJSON *j = info_json(harvbk_backup_list_at(list, i));
            if (!j) {
                cJSON_Delete(arr);
                arr = NULL;
                cli_err("backup list: cannot describe backup as JSON");
                ex = CLI_EXIT_FAIL;
                break;
            }
            cJSON_AddItemToArray(arr, j);
        }
        if (arr)
            ex = cli_print_json(arr);
    } else if (n == 0) {
        printf("no backups in the target\n");
    } else {
        int w = (int)strlen("NS/NAME"), wv = (int)strlen("VM");
        for (size_t i = 0; i < n; i++) {
            const harvbk_backup_info *b = harvbk_backup_list_at(list, i);
            int l = (int)(strlen(harvbk_backup_info_namespace(b)) + 1 +
                          strlen(harvbk_backup_info_name(b)));
            int lv = (int)strlen(harvbk_backup_info_vm_name(b));
            if (l > w)
                w = l;
            if (lv > wv)
                wv = lv;
        }
        printf("%-*s  %-*s  %-22s  %10s  %10s  %s\n", w, "NS/NAME", wv, "VM", "STATE", "SIZE",
               "UPLOADED", "CREATED");
        for (size_t i = 0; i < n; i++) {
            const harvbk_backup_info *b = harvbk_backup_list_at(list, i);
            char full[2 * CLI_NAME_MAX + 2], st[48], sz[32], up[32], cr[32];
            fmt_name(full, sizeof full, harvbk_backup_info_namespace(b),
                     harvbk_backup_info_name(b));
            state_text(b, st, sizeof st);
            const char *vmn = harvbk_backup_info_vm_name(b);
            printf("%-*s  %-*s  %-22s  %10s  %10s  %s\n", w, full, wv,
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

static int backup_show(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "backup show")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    harvbk_backup_info *b = NULL;
    int rc = harvbk_backup_get(&b, ctx, ns, name);
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "backup show %s/%s", ns, name);
        ex = cli_fail_ctx(ctx, rc, what);
        harvbk_ctx_free(ctx);
        return ex;
    }
    if (cli_opt_find(a->opts, "json")->count) {
        cJSON *j = info_json(b);
        if (!j) {
            cli_err("backup show %s/%s: cannot describe backup as JSON", ns, name);
            ex = CLI_EXIT_FAIL;
        } else {
            ex = cli_print_json(j);
        }
    } else {
        char st[48], sz[32], up[32], cr[32];
        state_text(b, st, sizeof st);
        uint64_t logical = harvbk_backup_info_logical_bytes(b);
        uint64_t uploaded = harvbk_backup_info_uploaded_bytes(b);
        printf("%-18s %s/%s\n", "backup:", ns, name);
        const char *vmn = harvbk_backup_info_vm_name(b);
        if (vmn && *vmn)
            printf("%-18s %s/%s\n", "vm:", harvbk_backup_info_namespace(b), vmn);
        else
            printf("%-18s %s\n", "vm:", "-");
        printf("%-18s %s\n", "state:", st);
        printf("%-18s %s\n", "created:",
               cli_fmt_time(harvbk_backup_info_created(b), cr, sizeof cr));
        printf("%-18s %s (%llu bytes)\n", "logical size:", cli_fmt_size(logical, sz, sizeof sz),
               (unsigned long long)logical);
        printf("%-18s %s (%llu bytes)\n", "uploaded:", cli_fmt_size(uploaded, up, sizeof up),
               (unsigned long long)uploaded);
        if (harvbk_backup_info_state(b) == HARVBK_STATE_INPROGRESS) {
            char pd[32];
            printf("%-18s %s\n", "progress:",
                   cli_fmt_size(harvbk_backup_info_progress_bytes(b), pd, sizeof pd));
        }
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

/* ------------------------------------------------------------------ */
/* verify / delete */

static int backup_verify(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "backup verify")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    cli_op_result res;
    ex = cli_run_verify(ctx, ns, name, &res);
    if (ex == CLI_EXIT_OK) {
        char r[32];
        printf("backup %s/%s verified: every chunk present and intact (checked in %.1fs, %s)\n",
               ns, name, res.seconds, cli_fmt_rate(res.logical_bytes, res.seconds, r, sizeof r));
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static int backup_delete(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "backup delete")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    int deferred = 0;
    int rc = harvbk_backup_delete_ex(ctx, ns, name, &deferred);
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "backup delete %s/%s", ns, name);
        if (rc == HARVBK_E_READ_ONLY)
            cli_err("%s: the target is read-only; 'harvbk backup forget %s/%s' drops it from "
                    "this state directory's catalog only", what, ns, name);
        ex = rc == HARVBK_E_READ_ONLY ? CLI_EXIT_FAIL : cli_fail_ctx(ctx, rc, what);
    } else if (deferred) {
        printf("backup %s/%s: the target is unreachable; deletion pending (the next "
               "successful 'harvbk sync' finishes it)\n", ns, name);
        ex = CLI_EXIT_OK;
    } else {
        printf("backup %s/%s deleted (run 'harvbk gc' to free its chunks)\n", ns, name);
        ex = CLI_EXIT_OK;
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static int backup_forget(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    int rc = harvbk_backup_forget(ctx, ns, name);
    if (rc != 0) {
        char what[256];
        snprintf(what, sizeof what, "backup forget %s/%s", ns, name);
        ex = cli_fail_ctx(ctx, rc, what);
    } else {
        printf("backup %s/%s forgotten (dropped from this catalog; the target keeps it)\n", ns,
               name);
        ex = CLI_EXIT_OK;
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static const cli_opt OPTS_CREATE[] = {
    {"name", CLI_OPT_VALUE, 0, 0, 0},
    {"changed-ranges", CLI_OPT_VALUE, 0, 0, 0},
    {"allow-crash-consistent", CLI_OPT_FLAG, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static const cli_cmd BACKUP_CMDS[] = {
    {"create", NULL, backup_create, OPTS_CREATE, 1, 1, NULL, "the VM"},
    {"list", "ls", backup_list, CLI_OPTS_JSON, 0, 0, NULL, NULL},
    {"show", NULL, backup_show, CLI_OPTS_JSON, 1, 1, NULL, "the backup"},
    {"verify", NULL, backup_verify, NULL, 1, 1, NULL, "the backup"},
    {"delete", "rm", backup_delete, NULL, 1, 1, NULL, "the backup"},
    {"forget", NULL, backup_forget, NULL, 1, 1, NULL, "the backup"},
    {NULL},
};

int cmd_backup(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk backup", HELP_BACKUP,
                                "create, list, show, verify, delete or forget", BACKUP_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}
