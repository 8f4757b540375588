/* tests/fuzz/cli_stubs.c - what examples/harvbk/util.c needs from the rest
 * of the CLI, for fuzz_ranges_file, which links the CLI's changed-ranges
 * loader (ranges.c) and its helpers (util.c) without the CLI's main. */
#include "cli.h"

#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

void cli_stderr_lock(void)
{
    pthread_mutex_lock(&mu);
}

void cli_stderr_unlock(void)
{
    pthread_mutex_unlock(&mu);
}

void cli_log_cb(int level, const char *message, void *payload)
{
    (void)level;
    (void)message;
    (void)payload;
}
