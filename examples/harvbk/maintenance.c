/*
 * maintenance.c - `harvbk maintenance status|enter|exit`: what runs on the
 * state directory (in every process) and maintenance mode
 * (harvbk/maintenance.h).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char HELP_MAINTENANCE[] =
    "Usage: harvbk maintenance status [--json]\n"
    "       harvbk maintenance enter [--wait SECONDS]\n"
    "       harvbk maintenance exit\n"
    "\n"
    "Maintenance mode stops everything on the state directory, e.g. before an\n"
    "upgrade: entering it suspends every active schedule and then refuses new\n"
    "backups, snapshots, restores, deletions, gc and schedule runs\n"
    "(HARVBK_E_MAINTENANCE), in every process; verify and every read stay allowed.\n"
    "'maintenance enter' waits up to --wait SECONDS (default 0) for the operations\n"
    "in progress to end; when some still run, nothing changes and it fails with\n"
    "HARVBK_E_BUSY naming them. 'maintenance exit' resumes exactly the schedules\n"
    "entering suspended. 'maintenance status' shows whether the mode is on, the\n"
    "schedules it suspended and the operations in progress.\n";

/* harvbk_maintenance_status_json() parsed; NULL after printing an error. */
static cJSON *status_json(harvbk_ctx *ctx, const char *what)
{
    char *t = NULL;
    int rc = harvbk_maintenance_status_json(ctx, &t);
    if (rc != 0) {
        cli_fail_ctx(ctx, rc, what);
        return NULL;
    }
    cJSON *j = cJSON_Parse(t);
    harvbk_string_free(t);
    if (!j)
        cli_err("%s: the library's status is not valid JSON", what);
    return j;
}

/* "a/b, c/d" of the JSON array `key` of j ("none" when empty). */
static void join_names(const cJSON *j, const char *key, char *buf, size_t size)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, key), *it;
    size_t off = 0;
    buf[0] = '\0';
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || off >= size)
            continue;
        off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "",
                                it->valuestring);
    }
    if (!buf[0])
        snprintf(buf, size, "none");
}

/* One line per operation in progress, indented; returns how many. */
static size_t print_ops(harvbk_ctx *ctx, const char *what)
{
    harvbk_op_list *l = NULL;
    int rc = harvbk_op_list_get(&l, ctx);
    if (rc != 0) {
        cli_fail_ctx(ctx, rc, what);
        return 0;
    }
    size_t n = harvbk_op_list_count(l);
    for (size_t i = 0; i < n; i++) {
        const char *kind = "", *w = "";
        int64_t pid = 0, started = 0;
        char tb[64];
        if (harvbk_op_list_at(l, i, &kind, &w, &pid, &started) != 0)
            continue;
        printf("  %-10s %s (pid %lld, since %s)\n", kind, w, (long long)pid,
               cli_fmt_time(started / 1000, tb, sizeof tb));
    }
    harvbk_op_list_free(l);
    return n;
}

static int maint_status(cli_args *a)
{
    int ex;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    cJSON *j = status_json(ctx, "maintenance status");
    if (!j) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    if (cli_opt_find(a->opts, "json")->count) {
        ex = cli_print_json(j);
        harvbk_ctx_free(ctx);
        return ex;
    }
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(j, "since");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "active")))
        printf("maintenance mode:      active since %s\n",
               cJSON_IsString(since) ? since->valuestring : "?");
    else
        printf("maintenance mode:      not active\n");
    char names[2048];
    join_names(j, "suspended_schedules", names, sizeof names);
    printf("suspended by it:       %s\n", names);
    cJSON_Delete(j);
    harvbk_op_list *l = NULL;
    size_t nops = 0;
    if (harvbk_op_list_get(&l, ctx) == 0)
        nops = harvbk_op_list_count(l);
    harvbk_op_list_free(l);
    printf("operations running:    %zu\n", nops);
    if (nops)
        print_ops(ctx, "maintenance status");
    harvbk_ctx_free(ctx);
    return CLI_EXIT_OK;
}

static int maint_enter(cli_args *a)
{
    int ex;
    uint64_t wait = 0;
    cli_opt *ow = cli_opt_find(a->opts, "wait");
    if (ow->count && (!cli_parse_u64(ow->value, &wait) || wait > UINT32_MAX))
        return cli_usage_err(a->H, "invalid --wait '%s': expected whole seconds", ow->value);
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    int active = 0;
    int64_t since = 0;
    char tb[64];
    int rc = harvbk_maintenance_status(ctx, &active, &since);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "maintenance enter");
        harvbk_ctx_free(ctx);
        return ex;
    }
    if (active) {
        printf("maintenance mode is already active (since %s)\n",
               cli_fmt_time(since / 1000, tb, sizeof tb));
        harvbk_ctx_free(ctx);
        return CLI_EXIT_OK;
    }
    harvbk_op_list *l = NULL;
    if (wait && harvbk_op_list_get(&l, ctx) == 0 && harvbk_op_list_count(l)) {
        printf("waiting up to %llu s for %zu operation(s) in progress:\n",
               (unsigned long long)wait, harvbk_op_list_count(l));
        fflush(stdout);
        print_ops(ctx, "maintenance enter");
    }
    harvbk_op_list_free(l);
    /* The library's wait cannot be interrupted: a signal is acted on when it
     * returns (and undoes a successful enter). */
    rc = harvbk_maintenance_enter(ctx, (uint32_t)wait);
    int sig = cli_signal_pending();
    if (rc != 0) {
        if (sig) {
            cli_err("maintenance enter: cancelled (%s); maintenance mode not entered",
                    sig == SIGINT ? "interrupted" : "terminated");
            ex = CLI_EXIT_INTERRUPTED;
        } else {
            ex = cli_fail_ctx(ctx, rc, "maintenance enter");
        }
        harvbk_ctx_free(ctx);
        return ex;
    }
    if (sig) {
        rc = harvbk_maintenance_exit(ctx);
        if (rc != 0)
            ex = cli_fail_ctx(ctx, rc, "maintenance enter: cancelled, but leaving it again");
        else {
            cli_err("maintenance enter: cancelled (%s); maintenance mode left again",
                    sig == SIGINT ? "interrupted" : "terminated");
            ex = CLI_EXIT_INTERRUPTED;
        }
        harvbk_ctx_free(ctx);
        return ex;
    }
    cJSON *j = status_json(ctx, "maintenance enter");
    char names[2048] = "?";
    const char *st = "?";
    if (j) {
        join_names(j, "suspended_schedules", names, sizeof names);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "since");
        if (cJSON_IsString(s))
            st = s->valuestring;
    }
    printf("maintenance mode entered (since %s); schedules suspended: %s\n", st, names);
    cJSON_Delete(j);
    harvbk_ctx_free(ctx);
    return CLI_EXIT_OK;
}

static int maint_exit(cli_args *a)
{
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    cJSON *j = status_json(ctx, "maintenance exit");
    if (!j) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    bool active = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "active"));
    char names[2048];
    join_names(j, "suspended_schedules", names, sizeof names);
    cJSON_Delete(j);
    int rc = harvbk_maintenance_exit(ctx);
    if (rc != 0)
        ex = cli_fail_ctx(ctx, rc, "maintenance exit");
    else if (!active)
        printf("maintenance mode was not active\n");
    else
        printf("maintenance mode left; the schedules it suspended are resumed: %s\n", names);
    harvbk_ctx_free(ctx);
    return ex;
}

static const cli_opt OPTS_ENTER[] = {{"wait", CLI_OPT_VALUE, 0, 0, 0}, {NULL, 0, 0, 0, 0}};

static const cli_cmd MAINTENANCE_CMDS[] = {
    {"status", NULL, maint_status, CLI_OPTS_JSON, 0, 0, NULL, NULL},
    {"enter", NULL, maint_enter, OPTS_ENTER, 0, 0, NULL, NULL},
    {"exit", NULL, maint_exit, NULL, 0, 0, NULL, NULL},
    {NULL},
};

int cmd_maintenance(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk maintenance", HELP_MAINTENANCE, "status, enter or exit",
                                MAINTENANCE_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}
