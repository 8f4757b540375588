/*
 * harvbk/maintenance.h - what is running on a state directory (in every
 * process), and maintenance mode: stop everything before an upgrade.
 *
 * Entering maintenance mode suspends every active schedule (remembering
 * which), waits up to a given time for the operations in progress to end
 * (or refuses while they run), and from then on refuses new backups,
 * snapshots, restores, deletions, gc and schedule runs with
 * HARVBK_E_MAINTENANCE, in every process on the state directory. Verify and
 * every read stay allowed. Leaving it resumes exactly the schedules it
 * suspended. docs/SCHEDULES.md "Maintenance mode".
 *
 * Thread-safety: every function may be called from any thread; several
 * processes may use one state directory at once.
 */
#ifndef HARVBK_MAINTENANCE_H
#define HARVBK_MAINTENANCE_H

#include "common.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harvbk_op_list harvbk_op_list;

/** Every operation in progress on the context's state directory, in any
 *  process (backups, snapshots, restores, verifies, gc, deletions, schedule
 *  passes), in *out (free with harvbk_op_list_free()). */
HARVBK_API int harvbk_op_list_get(harvbk_op_list **out, harvbk_ctx *ctx);
HARVBK_API size_t harvbk_op_list_count(const harvbk_op_list *list);
/** Operation i: its kind ("backup", "restore", "delete"...), what it works on
 *  (e.g. "backup default/b1 of VM default/vm1"), the process id and the start
 *  time (ms since the epoch). Strings live as long as the list. Any out
 *  pointer may be NULL. */
HARVBK_API int harvbk_op_list_at(const harvbk_op_list *list, size_t i, const char **kind,
                                 const char **what, int64_t *pid, int64_t *started_ms);
HARVBK_API void harvbk_op_list_free(harvbk_op_list *list);

/**
 * Enter maintenance mode. Waits up to wait_s seconds for the operations in
 * progress (in every process, this one's included) to end; when some still
 * run then, nothing changes and HARVBK_E_BUSY names them (wait_s 0: refuse at
 * once while anything runs). Entering while already in maintenance mode is a
 * no-op.
 */
HARVBK_API int harvbk_maintenance_enter(harvbk_ctx *ctx, uint32_t wait_s);

/** Leave maintenance mode and resume the schedules entering suspended (those
 *  deleted or resumed meanwhile are left alone). A no-op when not in it. */
HARVBK_API int harvbk_maintenance_exit(harvbk_ctx *ctx);

/** *active 1 while in maintenance mode (since *since_ms), 0 when not. Either
 *  pointer may be NULL. */
HARVBK_API int harvbk_maintenance_status(harvbk_ctx *ctx, int *active, int64_t *since_ms);

/** JSON (free with harvbk_string_free()): {"active", "since", "suspended_schedules":
 *  ["ns/name"...], "operations": [{"kind","what","pid","started"}...]}. */
HARVBK_API int harvbk_maintenance_status_json(harvbk_ctx *ctx, char **out);

#ifdef __cplusplus
}
#endif
#endif
