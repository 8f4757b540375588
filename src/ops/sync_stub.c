/* ops/sync_stub.c - placeholder until the synced catalog lands (sync.c). */
#include "ops.h"

int hb_sync_if_due(harvbk_ctx *ctx, int64_t now_ms, int64_t *next_ms, hb_err *e)
{
    (void)ctx;
    (void)now_ms;
    (void)e;
    *next_ms = -1;
    return 0;
}
