/*
 * freeze_hooks.c - application-consistent backups: freeze and thaw hooks that
 * talk to a (simulated) guest agent, and how long the guest stayed frozen.
 *
 *   usage: freeze_hooks STATE_DIR TARGET_DIR DISK_IMAGE   (absolute paths)
 *
 * Before a backup reads the disks, the freeze hook asks the guest to flush and
 * freeze its filesystems (what qemu-guest-agent's guest-fsfreeze-freeze does);
 * once the data is captured the thaw hook lets it go on. The hooks measure the
 * freeze window. Three backups: one with the agent answering; one with the
 * agent down, which fails with HARVBK_E_FREEZE; one with the agent down and
 * HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT, which goes on and is marked so.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <harvbk.h>

#include <stdio.h>
#include <time.h>

/* The simulated guest agent: the payload of both hooks. The hooks run on
 * the operation's thread; main() reads these fields only after
 * harvbk_op_wait() returned, which orders them after the hooks. */
struct guest_agent {
    int answering;             /* 0: the agent does not answer */
    unsigned freezes, thaws;   /* successful freezes and thaws */
    struct timespec frozen_at; /* when the last freeze took effect */
    double frozen_ms;          /* length of the last freeze window */
};

/* Freeze hook: return 0 once frozen, non-zero when the guest could not be
 * frozen. When it returns 0 the library calls the thaw hook exactly once
 * afterwards, whatever happens (failure, cancel). */
static int agent_freeze(const char *ns, const char *vm, void *payload)
{
    struct guest_agent *a = payload;
    if (!a->answering) {
        printf("agent: %s/%s does not answer\n", ns, vm);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &a->frozen_at);
    a->freezes++;
    printf("agent: froze %s/%s\n", ns, vm);
    return 0;
}

static int agent_thaw(const char *ns, const char *vm, void *payload)
{
    struct guest_agent *a = payload;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    a->frozen_ms = (double)(now.tv_sec - a->frozen_at.tv_sec) * 1e3 +
                   (double)(now.tv_nsec - a->frozen_at.tv_nsec) / 1e6;
    a->thaws++;
    printf("agent: thawed %s/%s after %.1f ms\n", ns, vm, a->frozen_ms);
    return 0;
}

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

/* Back up `vm` as `name` with the agent's hooks; prints the outcome and
 * returns the backup's result (0 or HARVBK_E_*). */
static int backup(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name, unsigned flags,
                  struct guest_agent *agent)
{
    harvbk_backup_options opts = HARVBK_BACKUP_OPTIONS_INIT;
    harvbk_op *op = NULL;
    harvbk_backup_info *info = NULL;
    char msg[512];
    int rc;

    opts.flags = flags;
    opts.freeze_cb = agent_freeze;
    opts.thaw_cb = agent_thaw; /* required with a freeze hook */
    opts.freeze_payload = agent;
    CHECK(harvbk_backup_create(&op, ctx, vm, name, &opts));
    if ((rc = harvbk_op_wait(op)) != 0) {
        harvbk_op_errmsg_copy(op, msg, sizeof msg); /* the operation's own message */
        printf("backup default/%s failed: %s: %s\n", name, harvbk_error_name(rc), msg);
        goto out;
    }
    CHECK(harvbk_backup_get(&info, ctx, "default", name));
    printf("backup default/%s: %s, crash-consistent: %s, thaw failed: %s\n", name,
           harvbk_state_name(harvbk_backup_info_state(info)),
           harvbk_backup_info_crash_consistent(info) ? "yes" : "no",
           harvbk_backup_info_thaw_failed(info) ? "yes" : "no");
    /* the library's count: -1 when never frozen; "reflink" when the disk was
     * cloned while frozen and read after the thaw (a short window) */
    printf("  library: frozen %lld ms, capture %s\n", (long long)harvbk_backup_info_frozen_ms(info),
           harvbk_backup_info_capture(info));
out:
    harvbk_backup_info_free(info);
    harvbk_op_free(op);
    return rc;
}

int main(int argc, char **argv)
{
    struct guest_agent agent = {1, 0, 0, {0, 0}, 0.0};
    harvbk_ctx *ctx = NULL;
    harvbk_target_config *cfg = NULL;
    harvbk_vm *vm = NULL;
    char url[4200];
    int rc, ok = 0;

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
    CHECK(harvbk_vm_new(&vm, "default", "web"));
    CHECK(harvbk_vm_add_volume_file(vm, "rootdisk", argv[3]));

    /* 1. The agent answers: the backup is application-consistent. */
    if (backup(ctx, vm, "web-1", 0, &agent) != 0)
        goto out;
    printf("guest was frozen for %.1f ms (measured by the hooks)\n", agent.frozen_ms);

    /* 2. The agent is down: by default the backup fails with HARVBK_E_FREEZE
     *    and no thaw is sent (nothing was frozen). */
    agent.answering = 0;
    if (backup(ctx, vm, "web-2", 0, &agent) != HARVBK_E_FREEZE)
        goto out;

    /* 3. The agent is down, but a crash-consistent backup is acceptable. */
    if (backup(ctx, vm, "web-3", HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT, &agent) != 0)
        goto out;

    printf("agent: %u freeze(s), %u thaw(s)\n", agent.freezes, agent.thaws);
    ok = agent.freezes == 1 && agent.thaws == 1;

out:
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    return ok ? 0 : 1;
}
