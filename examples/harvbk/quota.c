/*
 * quota.c - `harvbk quota set|clear|show`: snapshot space limits per
 * namespace and per VM.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

static const char HELP_QUOTA[] =
    "Usage: harvbk quota set (--namespace NS | --vm NS/VM) BYTES\n"
    "       harvbk quota clear (--namespace NS | --vm NS/VM)\n"
    "       harvbk quota show [--namespace NS | --vm NS/VM] [--json]\n"
    "\n"
    "Limits on the space that snapshots take in the local snapshot store. Usage\n"
    "is the stored (compressed) size of the distinct chunks that the snapshots of\n"
    "the VM (of every VM of the namespace) reference; a chunk shared by several\n"
    "snapshots counts once. A snapshot or backup of a VM is refused while the VM's\n"
    "or its namespace's usage is at or over its limit, and a snapshot whose new\n"
    "data would go over a limit fails and leaves nothing behind.\n"
    "BYTES takes K/M/G/T suffixes (binary: 1K = 1024). 'quota show' lists every\n"
    "namespace and VM that has a limit or snapshots.\n";

/* --namespace NS or --vm NS/VM, exactly one (unless optional and absent). */
static int pick(const char *H, cli_opt *opts, bool optional, char *ns, char *vm, bool *has_vm,
                bool *given)
{
    cli_opt *on = cli_opt_find(opts, "namespace"), *ov = cli_opt_find(opts, "vm");
    *has_vm = false;
    *given = on->count || ov->count;
    if (on->count && ov->count)
        return cli_usage_err(H, "give either --namespace or --vm, not both");
    if (!*given)
        return optional ? 0 : cli_usage_err(H, "give --namespace NS or --vm NS/VM");
    if (on->count) {
        int ex = cli_check_label(H, "namespace", on->value);
        if (ex == 0)
            snprintf(ns, CLI_NAME_MAX, "%s", on->value);
        return ex;
    }
    *has_vm = true;
    return cli_split_name(H, "the VM", ov->value, ns, vm);
}

static int quota_set_clear(cli_args *a, bool set)
{
    const char *H = a->H, **pos = a->pos;
    int npos = a->npos;
    bool has_vm = false, given = false;
    harvbk_ctx *ctx = NULL;
    char ns[CLI_NAME_MAX], vm[CLI_NAME_MAX];
    int ex;
    if ((ex = pick(H, a->opts, false, ns, vm, &has_vm, &given)))
        goto out;
    uint64_t limit = 0;
    if (set && npos != 1) {
        ex = cli_usage_err(H, "quota set needs the limit in BYTES");
        goto out;
    }
    if (!set && npos != 0) {
        ex = cli_usage_err(H, "quota clear takes no positional argument");
        goto out;
    }
    if (set && !cli_parse_size(pos[0], &limit)) {
        ex = cli_usage_err(H, "invalid size '%s' (bytes, or with a K/M/G/T suffix)", pos[0]);
        goto out;
    }
    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = set ? harvbk_quota_set(ctx, ns, has_vm ? vm : NULL, limit)
                 : harvbk_quota_clear(ctx, ns, has_vm ? vm : NULL);
    char who[2 * CLI_NAME_MAX + 16];
    if (has_vm)
        snprintf(who, sizeof who, "VM %s/%s", ns, vm);
    else
        snprintf(who, sizeof who, "namespace %s", ns);
    if (rc != 0) {
        char what[2 * CLI_NAME_MAX + 40];
        snprintf(what, sizeof what, "quota %s %s", set ? "set" : "clear", who);
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    if (set) {
        char l[32];
        printf("snapshot quota of %s: %s (%llu bytes)\n", who, cli_fmt_size(limit, l, sizeof l),
               (unsigned long long)limit);
    } else {
        printf("snapshot quota of %s cleared\n", who);
    }
out:
    harvbk_ctx_free(ctx);
    return ex;
}

static int quota_set(cli_args *a)
{
    return quota_set_clear(a, true);
}

static int quota_clear(cli_args *a)
{
    return quota_set_clear(a, false);
}

static int quota_show(cli_args *a)
{
    bool has_vm = false, given = false;
    harvbk_ctx *ctx = NULL;
    harvbk_quota_list *ql = NULL;
    char ns[CLI_NAME_MAX] = "", vm[CLI_NAME_MAX] = "";
    int ex;
    if ((ex = pick(a->H, a->opts, true, ns, vm, &has_vm, &given)))
        goto out;
    bool json = cli_opt_find(a->opts, "json")->count > 0;
    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (given) { /* one entry, also when it has neither limit nor snapshots */
        int has = 0;
        uint64_t limit = 0, usage = 0;
        int rc = harvbk_quota_get(ctx, ns, has_vm ? vm : NULL, &has, &limit, &usage);
        if (rc != 0) {
            ex = cli_fail_ctx(ctx, rc, "quota show");
            goto out;
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "namespace", ns);
            if (has_vm)
                cJSON_AddStringToObject(o, "vm", vm);
            else
                cJSON_AddNullToObject(o, "vm");
            if (has)
                cJSON_AddNumberToObject(o, "limit", (double)limit);
            else
                cJSON_AddNullToObject(o, "limit");
            cJSON_AddNumberToObject(o, "usage", (double)usage);
            ex = cli_print_json(o);
        } else {
            char l[32], u[32];
            printf("%s%s%s: usage %s (%llu bytes), limit %s\n", ns, has_vm ? "/" : "",
                   has_vm ? vm : "", cli_fmt_size(usage, u, sizeof u),
                   (unsigned long long)usage, has ? cli_fmt_size(limit, l, sizeof l) : "none");
        }
        goto out;
    }
    int rc = harvbk_quota_list_get(&ql, ctx);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "quota show");
        goto out;
    }
    size_t n = harvbk_quota_list_count(ql);
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            const char *v = harvbk_quota_list_vm(ql, i);
            cJSON_AddStringToObject(o, "namespace", harvbk_quota_list_namespace(ql, i));
            if (v)
                cJSON_AddStringToObject(o, "vm", v);
            else
                cJSON_AddNullToObject(o, "vm");
            if (harvbk_quota_list_has_limit(ql, i))
                cJSON_AddNumberToObject(o, "limit", (double)harvbk_quota_list_limit(ql, i));
            else
                cJSON_AddNullToObject(o, "limit");
            cJSON_AddNumberToObject(o, "usage", (double)harvbk_quota_list_usage(ql, i));
            cJSON_AddNumberToObject(o, "snapshots", (double)harvbk_quota_list_snapshots(ql, i));
            cJSON_AddItemToArray(arr, o);
        }
        ex = cli_print_json(arr);
    } else if (n == 0) {
        printf("no snapshot quotas and no snapshots\n");
    } else {
        printf("%-40s  %12s  %12s  %9s\n", "NAMESPACE[/VM]", "USAGE", "LIMIT", "SNAPSHOTS");
        for (size_t i = 0; i < n; i++) {
            char who[2 * CLI_NAME_MAX + 2], u[32], l[32];
            const char *v = harvbk_quota_list_vm(ql, i);
            snprintf(who, sizeof who, "%s%s%s", harvbk_quota_list_namespace(ql, i),
                     v ? "/" : "", v ? v : "");
            printf("%-40s  %12s  %12s  %9zu\n", who,
                   cli_fmt_size(harvbk_quota_list_usage(ql, i), u, sizeof u),
                   harvbk_quota_list_has_limit(ql, i)
                       ? cli_fmt_size(harvbk_quota_list_limit(ql, i), l, sizeof l)
                       : "-",
                   harvbk_quota_list_snapshots(ql, i));
        }
    }
out:
    harvbk_quota_list_free(ql);
    harvbk_ctx_free(ctx);
    return ex;
}

static const cli_opt OPTS_SET[] = {
    {"namespace", CLI_OPT_VALUE, 0, 0, 0},
    {"vm", CLI_OPT_VALUE, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
static const cli_opt OPTS_SHOW[] = {
    {"namespace", CLI_OPT_VALUE, 0, 0, 0},
    {"vm", CLI_OPT_VALUE, 0, 0, 0},
    {"json", CLI_OPT_FLAG, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

/* (the positional BYTES is checked after --namespace / --vm, by the handler) */
static const cli_cmd QUOTA_CMDS[] = {
    {"set", NULL, quota_set, OPTS_SET, 0, 1, NULL, NULL},
    {"clear", NULL, quota_clear, OPTS_SET, 0, 1, NULL, NULL},
    {"show", NULL, quota_show, OPTS_SHOW, 0, 0, NULL, NULL},
    {NULL},
};

int cmd_quota(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk quota", HELP_QUOTA, "set, clear or show", QUOTA_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}
