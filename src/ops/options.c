/* ops/options.c - options structures: defaults, version checks; state names. */
#include "ops.h"
#include <stddef.h>
#include <string.h>

int hb_opts_version_check(unsigned int version, unsigned int known, const char *what, hb_err *e)
{
    if (version == 0 || version > known)
        return hb_seterr(e, HARVBK_E_VERSION,
                         "%s version %u is not supported (this library knows 1..%u)", what,
                         version, known);
    return 0;
}

/* Every options struct: its name in messages, the version this library
 * knows, and the size of each version (what a caller of that version
 * allocated: nothing past it is ever read or written; docs/ABI.md). */
typedef struct opts_kind {
    const char *what;
    const char *init_fn; /* its public harvbk_*_options_init */
    unsigned current;
    size_t size[HB_OPTS_MAX_VERSION + 1]; /* by version; [0] unused */
} opts_kind;

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

static const opts_kind kinds[HB_OPTS_N] = {
    [HB_OPTS_CTX] = {"context options", "harvbk_ctx_options_init",
                     HARVBK_CTX_OPTIONS_VERSION, {0, sizeof(harvbk_ctx_options)}},
    /* version 1 ended with freeze_payload */
    [HB_OPTS_BACKUP] = {"backup options", "harvbk_backup_options_init",
                        HARVBK_BACKUP_OPTIONS_VERSION,
                        {0, END_OF(harvbk_backup_options, freeze_payload),
                         sizeof(harvbk_backup_options)}},
    [HB_OPTS_OP] = {"operation options", "harvbk_op_options_init",
                    HARVBK_OP_OPTIONS_VERSION, {0, sizeof(harvbk_op_options)}},
    /* version 1 ended with progress_payload */
    [HB_OPTS_RESTORE] = {"restore options", "harvbk_restore_options_init",
                         HARVBK_RESTORE_OPTIONS_VERSION,
                         {0, END_OF(harvbk_restore_options, progress_payload),
                          sizeof(harvbk_restore_options)}},
    /* version 1 ended with freeze_payload */
    [HB_OPTS_SNAPSHOT] = {"snapshot options", "harvbk_snapshot_options_init",
                          HARVBK_SNAPSHOT_OPTIONS_VERSION,
                          {0, END_OF(harvbk_snapshot_options, freeze_payload),
                           sizeof(harvbk_snapshot_options)}},
    /* version 1 ended with codec */
    [HB_OPTS_SNAPSTORE] = {"snapshot store options", "harvbk_snapshot_store_options_init",
                           HARVBK_SNAPSHOT_STORE_OPTIONS_VERSION,
                           {0, END_OF(harvbk_snapshot_store_options, codec),
                            sizeof(harvbk_snapshot_store_options)}},
    [HB_OPTS_SCHEDULE] = {"schedule options", "harvbk_schedule_options_init",
                          HARVBK_SCHEDULE_OPTIONS_VERSION, {0, sizeof(harvbk_schedule_options)}},
    /* version 1 ended with resolve_payload */
    [HB_OPTS_SCHEDULE_RUN] = {"schedule run options", "harvbk_schedule_run_options_init",
                              HARVBK_SCHEDULE_RUN_OPTIONS_VERSION,
                              {0, END_OF(harvbk_schedule_run_options, resolve_payload),
                               sizeof(harvbk_schedule_run_options)}},
};

size_t hb_opts_size(int type, unsigned int version)
{
    if (type < 0 || type >= HB_OPTS_N || version == 0 || version > kinds[type].current)
        return 0;
    return kinds[type].size[version];
}

int hb_opts_init(int type, void *opts, unsigned int version)
{
    if (!opts)
        return hb_fail(HARVBK_E_INVALID, "%s: opts is NULL", kinds[type].init_fn);
    size_t n = hb_opts_size(type, version);
    if (n == 0)
        return hb_fail(HARVBK_E_VERSION,
                       "%s: %s version %u is not supported (this library knows 1..%u)",
                       kinds[type].init_fn, kinds[type].what, version, kinds[type].current);
    memset(opts, 0, n);
    *(unsigned int *)opts = version; /* every options struct starts with it */
    if (type == HB_OPTS_CTX)
        ((harvbk_ctx_options *)opts)->log_level = HARVBK_LOG_INFO;
    return 0;
}

int hb_opts_take(int type, void *out, const void *src, hb_err *e)
{
    const opts_kind *k = &kinds[type];
    hb_opts_init(type, out, k->current); /* the defaults */
    if (!src)
        return 0;
    unsigned int version = *(const unsigned int *)src;
    int rc = hb_opts_version_check(version, k->current, k->what, e);
    if (rc)
        return rc;
    memcpy(out, src, k->size[version]);
    return 0;
}

int harvbk_ctx_options_init(harvbk_ctx_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_CTX, opts, version);
}

int harvbk_backup_options_init(harvbk_backup_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_BACKUP, opts, version);
}

int harvbk_op_options_init(harvbk_op_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_OP, opts, version);
}

int harvbk_restore_options_init(harvbk_restore_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_RESTORE, opts, version);
}

int harvbk_snapshot_options_init(harvbk_snapshot_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_SNAPSHOT, opts, version);
}

int harvbk_snapshot_store_options_init(harvbk_snapshot_store_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_SNAPSTORE, opts, version);
}

int harvbk_schedule_options_init(harvbk_schedule_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_SCHEDULE, opts, version);
}

int harvbk_schedule_run_options_init(harvbk_schedule_run_options *opts, unsigned int version)
{
    return hb_opts_init(HB_OPTS_SCHEDULE_RUN, opts, version);
}

const char *harvbk_state_name(int state)
{
    switch (state) {
    case HARVBK_STATE_INPROGRESS:
        return "InProgress";
    case HARVBK_STATE_READY:
        return "Ready";
    case HARVBK_STATE_ERROR:
        return "Error";
    default:
        return "Unknown";
    }
}
