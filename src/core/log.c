/* core/log.c - formats a message and hands it to the embedding program's hook. */
#include "hb.h"

#include <stdio.h>

void hb_log(const hb_logger *lg, int level, const char *fmt, ...)
{
    if (!lg || !lg->cb || level > lg->level || !fmt)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); /* long messages are truncated */
    va_end(ap);
    hb_msg_sanitize(msg);
    lg->cb(level, msg, lg->payload);
}
