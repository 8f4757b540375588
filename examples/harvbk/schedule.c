/*
 * schedule.c - `harvbk schedule create|list|show|edit|suspend|resume|delete|
 * run-due` and `harvbk run`: cron schedules of backups and snapshots
 * (harvbk/schedule.h, docs/SCHEDULES.md).
 *
 * The library owns no clock: `schedule run-due` runs one pass at the time
 * given (--now, else the system clock), as a cron job or a test would;
 * `harvbk run` starts the library's runner thread (harvbk_scheduler_start)
 * and stops it on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char HELP_SCHEDULE[] =
    "Usage: harvbk schedule create NAME --type backup|snapshot --vm NS/VM --cron EXPR\n"
    "                              [--retain N] [--max-failure N] [--deadline SECONDS]\n"
    "                              [--skip-interval-check] [--now RFC3339]\n"
    "       harvbk schedule list [--json]\n"
    "       harvbk schedule show NAME [--json]\n"
    "       harvbk schedule edit NAME [--cron EXPR] [--retain N] [--max-failure N]\n"
    "                              [--deadline SECONDS] [--skip-interval-check]\n"
    "                              [--now RFC3339]\n"
    "       harvbk schedule suspend NAME\n"
    "       harvbk schedule resume NAME\n"
    "       harvbk schedule delete NAME\n"
    "       harvbk schedule run-due [--now RFC3339]\n"
    "\n"
    "A schedule makes a backup (in the target) or a snapshot (in the local\n"
    "snapshot store) of one VM at every time of a cron expression, named\n"
    "NAME-YYYYMMDD-HHMM (UTC of the planned time), keeps the newest N Ready ones\n"
    "and deletes the rest, and suspends itself after N consecutive failures.\n"
    "NAME is NS/NAME, or NAME in namespace 'default' (at most 49 characters);\n"
    "the VM must be in the schedule's namespace (--vm VM is NS/VM of it).\n"
    "  --type backup|snapshot  what each firing makes\n"
    "  --cron EXPR             minute hour day-of-month month day-of-week, or\n"
    "                          @hourly/@daily/...; optional 'CRON_TZ=Area/City '\n"
    "                          prefix (default UTC). Quote it.\n"
    "  --retain N              Ready entries kept, 2..250 (default 8)\n"
    "  --max-failure N         consecutive failures that suspend the schedule,\n"
    "                          at least 2 and less than retain (default 4)\n"
    "  --deadline SECONDS      a run taking longer is cancelled and counts as a\n"
    "                          failure; 'next' (default): until the next firing\n"
    "  --skip-interval-check   allow firing more often than once an hour and\n"
    "                          closer than 10 minutes to another schedule\n"
    "  --now RFC3339           the time the schedule counts from (default: now),\n"
    "                          e.g. 2030-01-01T00:00:00Z\n"
    "'schedule run-due' starts every schedule due at --now (default: the system\n"
    "clock), waits for the runs and prints one line per run: schedule, entry,\n"
    "state, error name. Exit 0 when every run was Ready or skipped, 1 when one\n"
    "failed. 'harvbk run' runs schedules continuously in the foreground.\n";

static const char HELP_RUN[] =
    "Usage: harvbk run\n"
    "\n"
    "Run the schedules of the state directory in the foreground: every firing at\n"
    "its time (system clock), plus the target's catalog sync at its refresh\n"
    "interval. Prints the library's log at info level (-vv: debug) on stderr.\n"
    "SIGINT (Ctrl-C) or SIGTERM stops it cleanly: runs in progress are cancelled\n"
    "(recorded as Cancelled, not as failures) and waited for; then it exits 130,\n"
    "as every command stopped by a signal does.\n";

#define SCHED_HISTORY_SHOWN 5

/* ------------------------------------------------------------------ */
/* arguments */

/* NAME: "NS/NAME" or "NAME" (namespace "default"). */
static int sched_name(const char *H, const char *arg, char *ns, char *name)
{
    int ex;
    if (strchr(arg, '/')) {
        if ((ex = cli_split_name(H, "the schedule", arg, ns, name)))
            return ex;
    } else {
        if ((ex = cli_check_label(H, "schedule", arg)))
            return ex;
        snprintf(ns, CLI_NAME_MAX, "default");
        snprintf(name, CLI_NAME_MAX, "%s", arg);
    }
    if (strlen(name) > HARVBK_SCHEDULE_NAME_MAX)
        return cli_usage_err(H,
                             "invalid schedule name '%s': at most %u characters (its backups "
                             "and snapshots are named NAME-YYYYMMDD-HHMM)",
                             name, HARVBK_SCHEDULE_NAME_MAX);
    return 0;
}

/* The single NAME argument of a subcommand into a->ns, a->name. */
static int one_name(cli_args *a)
{
    return sched_name(a->H, a->pos[0], a->ns, a->name);
}

/* --now RFC3339 (absent: 0, i.e. the library's / the system clock). */
static int opt_now(const char *H, cli_opt *opts, int64_t *out)
{
    cli_opt *o = cli_opt_find(opts, "now");
    *out = 0;
    if (o->count && !cli_parse_rfc3339(o->value, out))
        return cli_usage_err(H,
                             "invalid time '%s' for --now: expected an RFC 3339 UTC time such "
                             "as 2030-01-01T01:00:00Z",
                             o->value);
    return 0;
}

/* The numeric options of create and edit into o. A value the library would
 * read as "default/keep" (0) is refused here as the library refuses values
 * out of range (same error names). Returns an exit code, 0 to go on. */
static int opt_numbers(const char *H, const char *what, cli_opt *opts,
                       harvbk_schedule_options *o)
{
    static const struct {
        const char *name;
        int code;
    } nums[] = {{"retain", HARVBK_E_RETAIN}, {"max-failure", HARVBK_E_MAX_FAILURE}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        cli_opt *c = cli_opt_find(opts, nums[i].name);
        if (!c->count)
            continue;
        uint64_t v;
        if (!cli_parse_u64(c->value, &v))
            return cli_usage_err(H, "invalid --%s '%s': expected a whole number", nums[i].name,
                                 c->value);
        if (v == 0 || v > UINT32_MAX) {
            /* 0 means "default" in harvbk_schedule_options: say what the
             * library says of a value out of range */
            if (nums[i].code == HARVBK_E_RETAIN)
                cli_err("%s: retain %s is outside %u..%u (%s)", what, c->value,
                        HARVBK_SCHEDULE_RETAIN_MIN, HARVBK_SCHEDULE_RETAIN_MAX,
                        harvbk_error_name(nums[i].code));
            else
                cli_err("%s: max failure %s is below %u (%s)", what, c->value,
                        HARVBK_SCHEDULE_MAX_FAILURE_MIN, harvbk_error_name(nums[i].code));
            return CLI_EXIT_FAIL;
        }
        if (nums[i].code == HARVBK_E_RETAIN)
            o->retain = (unsigned)v;
        else
            o->max_failure = (unsigned)v;
    }
    cli_opt *d = cli_opt_find(opts, "deadline");
    if (d->count) {
        uint64_t v;
        if (strcmp(d->value, "next") == 0)
            o->deadline_s = HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING;
        else if (!cli_parse_u64(d->value, &v) || v == 0 ||
                 v >= HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING)
            return cli_usage_err(H,
                                 "invalid --deadline '%s': expected whole seconds (at least 1) "
                                 "or 'next'",
                                 d->value);
        else
            o->deadline_s = (uint32_t)v;
    }
    if (cli_opt_find(opts, "skip-interval-check")->count)
        o->flags |= HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK;
    return 0;
}

/* ------------------------------------------------------------------ */
/* printing */

static const char *type_word(int type)
{
    return type == HARVBK_SCHEDULE_SNAPSHOT ? "snapshot" : "backup";
}

static const char *fmt_ms(int64_t ms, char *buf, size_t size)
{
    if (ms < 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    return cli_fmt_time(ms / 1000, buf, size);
}

static const char *fmt_deadline(uint32_t d, char *buf, size_t size)
{
    if (d == HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING)
        snprintf(buf, size, "until the next firing");
    else
        snprintf(buf, size, "%lu s", (unsigned long)d);
    return buf;
}

static cJSON *sched_json(const harvbk_schedule *s)
{
    char *t = NULL;
    if (harvbk_schedule_to_json(s, &t) != 0 || !t)
        return NULL;
    cJSON *j = cJSON_Parse(t);
    harvbk_string_free(t);
    return j;
}

static void status_text(const harvbk_schedule *s, char *buf, size_t size)
{
    if (harvbk_schedule_suspended(s))
        snprintf(buf, size, "suspended (%s)", harvbk_schedule_suspend_reason(s));
    else
        snprintf(buf, size, "active");
}

static void print_show(const harvbk_schedule *s)
{
    char b1[64], st[128];
    const char *L = "%-22s %s\n";
    printf("%-22s %s/%s\n", "schedule:", harvbk_schedule_namespace(s), harvbk_schedule_name(s));
    printf(L, "type:", type_word(harvbk_schedule_type_of(s)));
    printf("%-22s %s/%s\n", "vm:", harvbk_schedule_vm_namespace(s), harvbk_schedule_vm_name(s));
    printf(L, "cron:", harvbk_schedule_cron(s));
    printf("%-22s %u\n", "retain:", harvbk_schedule_retain(s));
    printf("%-22s %u\n", "max failure:", harvbk_schedule_max_failure(s));
    printf(L, "deadline:", fmt_deadline(harvbk_schedule_deadline(s), b1, sizeof b1));
    printf(L, "skip interval check:", harvbk_schedule_skip_interval_check(s) ? "yes" : "no");
    status_text(s, st, sizeof st);
    printf(L, "status:", st);
    printf("%-22s %u\n", "consecutive failures:", harvbk_schedule_consecutive_failures(s));
    printf(L, "created:", fmt_ms(harvbk_schedule_created(s), b1, sizeof b1));
    printf(L, "last firing handled:", fmt_ms(harvbk_schedule_last_run(s), b1, sizeof b1));
    printf(L, "next run:",
           harvbk_schedule_suspended(s) ? "- (suspended)"
                                        : fmt_ms(harvbk_schedule_next_run(s), b1, sizeof b1));
    size_t n = harvbk_schedule_history_count(s);
    if (n == 0) {
        printf(L, "history:", "none yet");
        return;
    }
    size_t first = n > SCHED_HISTORY_SHOWN ? n - SCHED_HISTORY_SHOWN : 0;
    if (first)
        printf("history (the last %d of %zu):\n", SCHED_HISTORY_SHOWN, n);
    else
        printf("history:\n");
    printf("  %-20s  %-30s  %-10s  %s\n", "PLANNED", "ENTRY", "STATE", "ERROR");
    for (size_t i = first; i < n; i++) {
        const char *entry = "", *err = "";
        int64_t planned = -1;
        int state = 0, code = 0, deleted = 0;
        unsigned missed = 0;
        if (harvbk_schedule_history_at(s, i, &entry, &planned, &state, &code, &err, &missed,
                                       &deleted) != 0)
            continue;
        char e[64];
        snprintf(e, sizeof e, "%s%s", entry && *entry ? entry : "-",
                 deleted ? " (deleted)" : "");
        printf("  %-20s  %-30s  %-10s  ", fmt_ms(planned, b1, sizeof b1), e,
               harvbk_schedule_run_state_name(state));
        if (code)
            printf("%s%s%s", harvbk_error_name(code), err && *err ? ": " : "", err ? err : "");
        else
            printf("-");
        if (missed)
            printf(" (%u missed firing%s before it)", missed, missed == 1 ? "" : "s");
        printf("\n");
    }
}

/* "schedule default/s1: next run 2030-...", after a change. */
static void print_next(harvbk_ctx *ctx, const char *ns, const char *name)
{
    harvbk_schedule *s = NULL;
    if (harvbk_schedule_get(&s, ctx, ns, name) != 0)
        return;
    char b[64], st[128];
    if (harvbk_schedule_suspended(s)) {
        status_text(s, st, sizeof st);
        printf("  status: %s\n", st);
    } else {
        printf("  next run: %s\n", fmt_ms(harvbk_schedule_next_run(s), b, sizeof b));
    }
    harvbk_schedule_free(s);
}

/* ------------------------------------------------------------------ */
/* create / edit */

static int schedule_create(cli_args *a)
{
    const char *H = a->H, *ns = a->ns, *name = a->name;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    char vmns[CLI_NAME_MAX], vm[CLI_NAME_MAX];
    char what[3 * CLI_NAME_MAX];
    harvbk_schedule_options o;
    harvbk_schedule_options_init(&o, HARVBK_SCHEDULE_OPTIONS_VERSION);
    int ex;
    if ((ex = one_name(a)))
        goto out;
    cli_opt *ot = cli_opt_find(opts, "type"), *ov = cli_opt_find(opts, "vm"),
            *oc = cli_opt_find(opts, "cron");
    if (!ot->count) {
        ex = cli_usage_err(H, "schedule create needs --type backup or --type snapshot");
        goto out;
    }
    if (strcmp(ot->value, "backup") == 0) {
        o.type = HARVBK_SCHEDULE_BACKUP;
    } else if (strcmp(ot->value, "snapshot") == 0) {
        o.type = HARVBK_SCHEDULE_SNAPSHOT;
    } else {
        ex = cli_usage_err(H, "invalid --type '%s': expected backup or snapshot", ot->value);
        goto out;
    }
    if (!ov->count) {
        ex = cli_usage_err(H, "schedule create needs --vm NAMESPACE/VM");
        goto out;
    }
    if (strchr(ov->value, '/')) {
        if ((ex = cli_split_name(H, "the VM", ov->value, vmns, vm)))
            goto out;
    } else {
        if ((ex = cli_check_label(H, "VM", ov->value)))
            goto out;
        snprintf(vmns, sizeof vmns, "%s", ns);
        snprintf(vm, sizeof vm, "%s", ov->value);
    }
    if (!oc->count) {
        ex = cli_usage_err(H, "schedule create needs --cron EXPR (e.g. --cron '0 1 * * *')");
        goto out;
    }
    snprintf(what, sizeof what, "schedule create %s/%s", ns, name);
    if ((ex = opt_numbers(H, what, opts, &o)) || (ex = opt_now(H, opts, &o.now_ms)))
        goto out;
    o.vm_namespace = vmns; /* the library refuses another namespace than ns */
    o.vm_name = vm;
    o.cron = oc->value;

    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (cli_session_secret(ctx, "schedule create")) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = harvbk_schedule_create(ctx, ns, name, &o);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    char d[64];
    printf("schedule %s/%s created: %ss of VM %s/%s at '%s', retain %u, max failure %u, "
           "deadline %s\n",
           ns, name, type_word(o.type), vmns, vm, o.cron,
           o.retain ? o.retain : HARVBK_SCHEDULE_RETAIN_DEFAULT,
           o.max_failure ? o.max_failure : HARVBK_SCHEDULE_MAX_FAILURE_DEFAULT,
           fmt_deadline(o.deadline_s ? o.deadline_s : HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING, d,
                        sizeof d));
    print_next(ctx, ns, name);
out:
    harvbk_ctx_free(ctx);
    return ex;
}

static int schedule_edit(cli_args *a)
{
    const char *H = a->H, *ns = a->ns, *name = a->name;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    harvbk_schedule *s = NULL;
    char what[3 * CLI_NAME_MAX];
    harvbk_schedule_options o;
    harvbk_schedule_options_init(&o, HARVBK_SCHEDULE_OPTIONS_VERSION);
    int ex;
    if ((ex = one_name(a)))
        goto out;
    bool any = false;
    for (cli_opt *c = opts; c->name; c++)
        any |= c->count > 0 && strcmp(c->name, "now") != 0;
    if (!any) {
        ex = cli_usage_err(H, "schedule edit needs at least one of --cron, --retain, "
                              "--max-failure, --deadline, --skip-interval-check");
        goto out;
    }
    snprintf(what, sizeof what, "schedule edit %s/%s", ns, name);
    if ((ex = opt_numbers(H, what, opts, &o)) || (ex = opt_now(H, opts, &o.now_ms)))
        goto out;
    cli_opt *oc = cli_opt_find(opts, "cron");
    if (oc->count)
        o.cron = oc->value;
    ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    /* harvbk_schedule_update() compares `type` with the schedule's even
     * though 0 (backup) is documented as "keep": pass the schedule's own */
    int rc = harvbk_schedule_get(&s, ctx, ns, name);
    if (rc == 0) {
        o.type = harvbk_schedule_type_of(s);
        rc = harvbk_schedule_update(ctx, ns, name, &o);
    }
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    harvbk_schedule_free(s);
    s = NULL;
    if ((rc = harvbk_schedule_get(&s, ctx, ns, name)) != 0) {
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    char d[64];
    printf("schedule %s/%s updated: '%s', retain %u, max failure %u, deadline %s%s\n", ns, name,
           harvbk_schedule_cron(s), harvbk_schedule_retain(s), harvbk_schedule_max_failure(s),
           fmt_deadline(harvbk_schedule_deadline(s), d, sizeof d),
           harvbk_schedule_skip_interval_check(s) ? ", interval checks skipped" : "");
    print_next(ctx, ns, name);
out:
    harvbk_schedule_free(s);
    harvbk_ctx_free(ctx);
    return ex;
}

/* ------------------------------------------------------------------ */
/* list / show */

static int schedule_list(cli_args *a)
{
    int ex = CLI_EXIT_OK;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_schedule_list *l = NULL;
    int rc = harvbk_schedule_list_get(&l, ctx);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "schedule list");
        harvbk_ctx_free(ctx);
        return ex;
    }
    size_t n = harvbk_schedule_list_count(l);
    if (cli_opt_find(a->opts, "json")->count) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *j = sched_json(harvbk_schedule_list_at(l, i));
            if (!j) {
                cJSON_Delete(arr);
                arr = NULL;
                break;
            }
            cJSON_AddItemToArray(arr, j);
        }
        ex = cli_print_json(arr);
    } else if (n == 0) {
        printf("no schedules\n");
    } else {
        int w = (int)strlen("NS/NAME"), wv = (int)strlen("VM");
        for (size_t i = 0; i < n; i++) {
            const harvbk_schedule *s = harvbk_schedule_list_at(l, i);
            int l1 = (int)(strlen(harvbk_schedule_namespace(s)) + 1 +
                           strlen(harvbk_schedule_name(s)));
            int l2 = (int)strlen(harvbk_schedule_vm_name(s));
            w = l1 > w ? l1 : w;
            wv = l2 > wv ? l2 : wv;
        }
        printf("%-*s  %-8s  %-*s  %-20s  %-8s  %-31s  %s\n", w, "NS/NAME", "TYPE", wv, "VM",
               "NEXT RUN", "FAILURES", "STATUS", "CRON");
        for (size_t i = 0; i < n; i++) {
            const harvbk_schedule *s = harvbk_schedule_list_at(l, i);
            char full[2 * CLI_NAME_MAX + 2], nx[64], st[128], fl[32];
            snprintf(full, sizeof full, "%s/%s", harvbk_schedule_namespace(s),
                     harvbk_schedule_name(s));
            status_text(s, st, sizeof st);
            snprintf(fl, sizeof fl, "%u/%u", harvbk_schedule_consecutive_failures(s),
                     harvbk_schedule_max_failure(s));
            printf("%-*s  %-8s  %-*s  %-20s  %-8s  %-31s  %s\n", w, full,
                   type_word(harvbk_schedule_type_of(s)), wv, harvbk_schedule_vm_name(s),
                   harvbk_schedule_suspended(s)
                       ? "-"
                       : fmt_ms(harvbk_schedule_next_run(s), nx, sizeof nx),
                   fl, st, harvbk_schedule_cron(s));
        }
    }
    harvbk_schedule_list_free(l);
    harvbk_ctx_free(ctx);
    return ex;
}

static int schedule_show(cli_args *a)
{
    const char *ns = a->ns, *name = a->name;
    int ex;
    if ((ex = one_name(a)))
        return ex;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_schedule *s = NULL;
    int rc = harvbk_schedule_get(&s, ctx, ns, name);
    if (rc != 0) {
        char what[3 * CLI_NAME_MAX];
        snprintf(what, sizeof what, "schedule show %s/%s", ns, name);
        ex = cli_fail_ctx(ctx, rc, what);
    } else if (cli_opt_find(a->opts, "json")->count) {
        cJSON *j = sched_json(s);
        if (!j) {
            cli_err("schedule show %s/%s: cannot describe the schedule as JSON", ns, name);
            ex = CLI_EXIT_FAIL;
        } else {
            ex = cli_print_json(j);
        }
    } else {
        print_show(s);
    }
    harvbk_schedule_free(s);
    harvbk_ctx_free(ctx);
    return ex;
}

/* ------------------------------------------------------------------ */
/* suspend / resume / delete */

enum simple_action { ACT_SUSPEND, ACT_RESUME, ACT_DELETE };

static int schedule_simple(cli_args *a, enum simple_action act)
{
    static const char *const subs[] = {"suspend", "resume", "delete"};
    const char *sub = subs[act], *ns = a->ns, *name = a->name;
    char what[3 * CLI_NAME_MAX];
    int ex;
    if ((ex = one_name(a)))
        return ex;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    snprintf(what, sizeof what, "schedule %s %s/%s", sub, ns, name);
    int rc;
    if (act == ACT_RESUME && cli_session_secret(ctx, what)) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    switch (act) {
    case ACT_SUSPEND: rc = harvbk_schedule_suspend(ctx, ns, name); break;
    case ACT_RESUME: rc = harvbk_schedule_resume(ctx, ns, name); break;
    default: rc = harvbk_schedule_delete(ctx, ns, name); break;
    }
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, what);
    } else if (act == ACT_DELETE) {
        printf("schedule %s/%s deleted (the backups and snapshots it made stay)\n", ns, name);
    } else {
        printf("schedule %s/%s %s\n", ns, name, act == ACT_SUSPEND ? "suspended" : "resumed");
        print_next(ctx, ns, name);
    }
    harvbk_ctx_free(ctx);
    return ex;
}

static int schedule_suspend(cli_args *a)
{
    return schedule_simple(a, ACT_SUSPEND);
}

static int schedule_resume(cli_args *a)
{
    return schedule_simple(a, ACT_RESUME);
}

static int schedule_delete(cli_args *a)
{
    return schedule_simple(a, ACT_DELETE);
}

/* ------------------------------------------------------------------ */
/* run-due */

/* The schedule's type and the error message of the history item of `entry`
 * (for a failed run); "" when not found. */
/* The type of schedule ns/name (for the message's wording). */
static int schedule_type(harvbk_ctx *ctx, const char *ns, const char *name)
{
    int type = HARVBK_SCHEDULE_BACKUP;
    harvbk_schedule *s = NULL;
    if (harvbk_schedule_get(&s, ctx, ns, name) == 0)
        type = harvbk_schedule_type_of(s);
    harvbk_schedule_free(s);
    return type;
}

static int schedule_run_due(cli_args *a)
{
    int64_t now = 0;
    int ex;
    if ((ex = opt_now(a->H, a->opts, &now)))
        return ex;
    if (!cli_opt_find(a->opts, "now")->count)
        now = cli_wall_ms();
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "schedule run-due")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_schedule_run_options o;
    harvbk_schedule_run_options_init(&o, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    char tb[64];
    fmt_ms(now, tb, sizeof tb);
    harvbk_op *op = NULL;
    int rc = harvbk_schedule_run_due(&op, ctx, now, &o);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "schedule run-due");
        harvbk_ctx_free(ctx);
        return ex;
    }
    if (!op) {
        printf("no schedule is due at %s\n", tb);
        harvbk_ctx_free(ctx);
        return CLI_EXIT_OK;
    }
    rc = cli_wait_op(op, &pr, "schedule run-due", NULL);
    ex = cli_finish_op(op, rc, "schedule run-due");
    bool failed = false;
    size_t n = harvbk_schedule_run_count(op);
    for (size_t i = 0; i < n; i++) {
        const char *rns = "", *rname = "", *entry = "", *msg = "";
        int state = 0, code = 0;
        if (harvbk_schedule_run_at(op, i, &rns, &rname, &entry, NULL, &state, &code, &msg) != 0)
            continue;
        char full[2 * CLI_NAME_MAX + 2];
        snprintf(full, sizeof full, "%s/%s", rns, rname);
        printf("%-30s  %-30s  %-10s  %s\n", full, entry && *entry ? entry : "-",
               harvbk_schedule_run_state_name(state), code ? harvbk_error_name(code) : "-");
        if (state == HARVBK_SCHEDULE_RUN_ERROR || state == HARVBK_SCHEDULE_RUN_CANCELLED ||
            state == HARVBK_SCHEDULE_RUN_INPROGRESS) {
            failed = true;
            int type = schedule_type(ctx, rns, rname);
            cli_err("schedule %s: %s %s/%s %s: %s (%s)", full, type_word(type), rns,
                    entry && *entry ? entry : "-", harvbk_schedule_run_state_name(state),
                    *msg ? msg : harvbk_strerror(code), harvbk_error_name(code));
        }
    }
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
    if (ex == CLI_EXIT_OK && cli_signal_pending())
        ex = CLI_EXIT_INTERRUPTED; /* the pass ends with 0; its runs were cancelled */
    else if (ex == CLI_EXIT_OK && failed)
        ex = CLI_EXIT_FAIL;
    return ex;
}

static const cli_opt OPTS_CREATE[] = {
    {"type", CLI_OPT_VALUE, 0, 0, 0},
    {"vm", CLI_OPT_VALUE, 0, 0, 0},
    {"cron", CLI_OPT_VALUE, 0, 0, 0},
    {"retain", CLI_OPT_VALUE, 0, 0, 0},
    {"max-failure", CLI_OPT_VALUE, 0, 0, 0},
    {"deadline", CLI_OPT_VALUE, 0, 0, 0},
    {"skip-interval-check", CLI_OPT_FLAG, 0, 0, 0},
    {"now", CLI_OPT_VALUE, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
/* edit: the same but --type and --vm */
#define OPTS_EDIT (OPTS_CREATE + 2)
static const cli_opt OPTS_NOW[] = {{"now", CLI_OPT_VALUE, 0, 0, 0}, {NULL, 0, 0, 0, 0}};

#define NEEDS_SCHEDULE(sub) "schedule " sub " needs the schedule as NAME or NAMESPACE/NAME"
static const cli_cmd SCHEDULE_CMDS[] = {
    {"create", NULL, schedule_create, OPTS_CREATE, 1, 1, NEEDS_SCHEDULE("create"), NULL},
    {"list", "ls", schedule_list, CLI_OPTS_JSON, 0, 0, NULL, NULL},
    {"show", NULL, schedule_show, CLI_OPTS_JSON, 1, 1, NEEDS_SCHEDULE("show"), NULL},
    {"edit", NULL, schedule_edit, OPTS_EDIT, 1, 1, NEEDS_SCHEDULE("edit"), NULL},
    {"suspend", NULL, schedule_suspend, NULL, 1, 1, NEEDS_SCHEDULE("suspend"), NULL},
    {"resume", NULL, schedule_resume, NULL, 1, 1, NEEDS_SCHEDULE("resume"), NULL},
    {"delete", "rm", schedule_delete, NULL, 1, 1, NEEDS_SCHEDULE("delete"), NULL},
    {"run-due", NULL, schedule_run_due, OPTS_NOW, 0, 0, NULL, NULL},
    {NULL},
};

int cmd_schedule(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk schedule", HELP_SCHEDULE,
                                "create, list, show, edit, suspend, resume, delete or run-due",
                                SCHEDULE_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}

/* ------------------------------------------------------------------ */
/* harvbk run */

static int run_schedules(cli_args *a)
{
    const cli_env *env = a->env;
    int ex;
    /* a foreground service: its log is its output */
    cli_env e = *env;
    if (e.verbose < 1)
        e.verbose = 1;
    harvbk_ctx *ctx = cli_open_ctx(&e);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "run")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    harvbk_scheduler *s = NULL;
    int rc = harvbk_scheduler_start(&s, ctx, NULL);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "run: starting the schedule runner");
        harvbk_ctx_free(ctx);
        return ex;
    }
    int64_t now = cli_wall_ms(), next = -1;
    char nb[64];
    harvbk_schedule_next_due(ctx, now, &next);
    printf("harvbk run: schedule runner started on %s (next firing: %s); stop with Ctrl-C or "
           "SIGTERM\n",
           env->state_dir,
           next < 0 ? "none" : next <= now ? "due now" : fmt_ms(next, nb, sizeof nb));
    while (!cli_signal_pending()) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL); /* a signal ends it early */
    }
    int sig = cli_signal_pending();
    printf("harvbk run: %s, stopping the schedule runner (runs in progress are cancelled)\n",
           sig == SIGINT ? "interrupted" : "terminated");
    harvbk_scheduler_stop(s);
    harvbk_ctx_free(ctx);
    printf("harvbk run: stopped\n");
    return CLI_EXIT_INTERRUPTED;
}

int cmd_run(cli_env *env, int argc, char **argv)
{
    static const cli_cmd run = {"run", NULL, run_schedules, NULL, 0, 0, NULL, NULL};
    return cli_run_cmd(&run, "harvbk run", HELP_RUN, env, argc, argv);
}
