/* ops/options.c - options structures: defaults, version checks; state names. */
#include "ops.h"
#include <stddef.h>
#include <string.h>

int hb_opts_version_check(unsigned int version, unsigned int known, const char *what, hb_err *e)
{
    if (version == 0 || version > known) {
        hb_err tmp;
        if (!e) /* a caller without an hb_err reports it as the thread's last error */
            e = &tmp;
        hb_seterr(e, HARVBK_E_VERSION, "%s version %u is not supported (this library knows 1..%u)",
                  what, version, known);
        return e == &tmp ? hb_fail_err(e) : HARVBK_E_VERSION;
    }
    return 0;
}

int harvbk_ctx_options_init(harvbk_ctx_options *opts, unsigned int version)
{
    if (!opts)
        return hb_fail(HARVBK_E_INVALID, "harvbk_ctx_options_init: opts is NULL");
    if (hb_opts_version_check(version, HARVBK_CTX_OPTIONS_VERSION, "context options", NULL))
        return HARVBK_E_VERSION;
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    opts->log_level = HARVBK_LOG_INFO;
    return 0;
}

int harvbk_backup_options_init(harvbk_backup_options *opts, unsigned int version)
{
    if (!opts)
        return hb_fail(HARVBK_E_INVALID, "harvbk_backup_options_init: opts is NULL");
    if (hb_opts_version_check(version, HARVBK_BACKUP_OPTIONS_VERSION, "backup options", NULL))
        return HARVBK_E_VERSION;
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return 0;
}

int harvbk_op_options_init(harvbk_op_options *opts, unsigned int version)
{
    if (!opts)
        return hb_fail(HARVBK_E_INVALID, "harvbk_op_options_init: opts is NULL");
    if (hb_opts_version_check(version, HARVBK_OP_OPTIONS_VERSION, "operation options", NULL))
        return HARVBK_E_VERSION;
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return 0;
}

size_t hb_restore_options_size(unsigned int version)
{
    /* version 1 ended with progress_payload; only what the caller's version
     * has is ever touched (docs/ABI.md "Options structs") */
    if (version == 1)
        return offsetof(harvbk_restore_options, progress_payload) + sizeof(void *);
    return sizeof(harvbk_restore_options);
}

int harvbk_restore_options_init(harvbk_restore_options *opts, unsigned int version)
{
    if (!opts)
        return hb_fail(HARVBK_E_INVALID, "harvbk_restore_options_init: opts is NULL");
    if (hb_opts_version_check(version, HARVBK_RESTORE_OPTIONS_VERSION, "restore options", NULL))
        return HARVBK_E_VERSION;
    memset(opts, 0, hb_restore_options_size(version));
    opts->version = version;
    return 0;
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
