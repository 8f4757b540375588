/*
 * scheduler.c - a controller loop that drives an hourly backup schedule with
 * its own clock: harvbk_schedule_next_due() says when, harvbk_schedule_run_due()
 * runs what is due.
 *
 *   usage: scheduler STATE_DIR TARGET_DIR DISK_IMAGE   (absolute paths)
 *
 * The library owns no clock. A controller asks when the next firing is, sleeps
 * until then, and runs what is due at that time. This one uses a fake clock
 * that jumps from firing to firing, so five hours of schedule run in about a
 * second: five backups, of which the schedule keeps the newest three.
 */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */
#include <harvbk.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FAKE_START_MS INT64_C(1893456000000) /* 2030-01-01T00:00:00Z */
#define ITERATIONS 5

static void print_error(const char *call, int rc)
{
    char msg[512];
    harvbk_error_last_copy(msg, sizeof msg); /* this thread's last error */
    fprintf(stderr, "%s failed: %s: %s\n", call, harvbk_error_name(rc), msg);
}

#define CHECK(call)                   \
    do {                              \
        if ((rc = (call)) != 0) {     \
            print_error(#call, rc);   \
            goto out;                 \
        }                             \
    } while (0)

/* ms since the epoch as "2030-01-01T01:00Z" in buf. */
static const char *utc(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%MZ", &tm))
        snprintf(buf, size, "%" PRId64 " ms", ms);
    return buf;
}

int main(int argc, char **argv)
{
    harvbk_ctx *ctx = NULL;
    harvbk_target_config *cfg = NULL;
    harvbk_vm *vm = NULL;
    harvbk_op *op = NULL;
    harvbk_backup_list *list = NULL;
    harvbk_schedule_options sopts = HARVBK_SCHEDULE_OPTIONS_INIT;
    int64_t now = FAKE_START_MS, due;
    char url[4200], when[32];
    int rc = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: %s STATE_DIR TARGET_DIR DISK_IMAGE\n", argv[0]);
        return 2;
    }
    if ((size_t)snprintf(url, sizeof url, "file://%s", argv[2]) >= sizeof url) {
        fprintf(stderr, "TARGET_DIR is too long\n");
        return 2;
    }
    CHECK(harvbk_ctx_open(&ctx, argv[1], NULL));
    CHECK(harvbk_target_config_new(&cfg));
    CHECK(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url));
    CHECK(harvbk_ctx_set_target(ctx, cfg));

    /* Schedules name VMs of the context's catalog: register default/web. */
    CHECK(harvbk_vm_new(&vm, "default", "web"));
    CHECK(harvbk_vm_add_volume_file(vm, "rootdisk", argv[3]));
    CHECK(harvbk_vm_register(ctx, vm));

    /* default/hourly: a backup of default/web at minute 0 of every hour,
     * keeping 3. `now_ms` is the fake "now" the first firing counts from. */
    sopts.type = HARVBK_SCHEDULE_BACKUP;
    sopts.vm_name = "web";
    sopts.cron = "0 * * * *";
    sopts.retain = 3;
    sopts.now_ms = now;
    CHECK(harvbk_schedule_create(ctx, "default", "hourly", &sopts));

    for (int i = 0; i < ITERATIONS; i++) {
        CHECK(harvbk_schedule_next_due(ctx, now, &due));
        if (due < 0) {
            printf("no active schedule\n");
            break;
        }
        now = due; /* a real controller sleeps until `due` on its clock here */
        CHECK(harvbk_schedule_run_due(&op, ctx, now, NULL));
        if (!op) /* nothing due after all (e.g. another process ran it) */
            continue;
        /* The pass ends when its runs ended; its result is 0 even when a run
         * failed: each run's outcome is read from the operation. */
        if ((rc = harvbk_op_wait(op)) != 0) {
            char msg[512];
            harvbk_op_errmsg_copy(op, msg, sizeof msg); /* the operation's own message */
            fprintf(stderr, "schedule pass failed: %s: %s\n", harvbk_error_name(rc), msg);
            goto out;
        }
        for (size_t r = 0; r < harvbk_schedule_run_count(op); r++) {
            const char *ns, *sched, *entry, *msg;
            int state, code;
            CHECK(harvbk_schedule_run_at(op, r, &ns, &sched, &entry, NULL, &state, &code, &msg));
            printf("%s: %s/%s made %s: %s", utc(now, when, sizeof when), ns, sched, entry,
                   harvbk_schedule_run_state_name(state));
            if (code != 0)
                printf(" (%s: %s)", harvbk_error_name(code), msg);
            printf("\n");
        }
        harvbk_op_free(op);
        op = NULL;
    }

    /* What retention kept: the backups the schedule made. */
    CHECK(harvbk_backup_list_get(&list, ctx));
    for (size_t i = 0; i < harvbk_backup_list_count(list); i++) {
        const harvbk_backup_info *b = harvbk_backup_list_at(list, i);
        const char *by = harvbk_backup_info_schedule(b);
        if (by && strcmp(by, "hourly") == 0)
            printf("kept %s/%s: %s\n", harvbk_backup_info_namespace(b),
                   harvbk_backup_info_name(b), harvbk_state_name(harvbk_backup_info_state(b)));
    }

out:
    harvbk_backup_list_free(list);
    harvbk_op_free(op);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
