/*
 * sync.c - `harvbk sync`: bring the state directory's backup catalog in step
 * with the target (docs/CATALOG.md).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <string.h>

static const char HELP_SYNC[] =
    "Usage: harvbk sync [--json]\n"
    "\n"
    "Bring the backup catalog of the state directory in step with the target:\n"
    "import backups other clusters wrote, update changed ones, mark backups whose\n"
    "manifest vanished as gone (forgotten at the next sync), flag Ready backups\n"
    "whose index is missing, and finish deletions requested while the target was\n"
    "unreachable. 'backup list' and 'backup show' answer from the catalog. Costs\n"
    "one listing of the target's backups plus one read per new or changed\n"
    "manifest; nothing is written to the target (except pending deletions).\n"
    "  --json    print the counters as a JSON object\n";

static const struct {
    int what;
    const char *key;
} g_counts[] = {
    {HARVBK_SYNC_IMPORTED, "imported"},
    {HARVBK_SYNC_UPDATED, "updated"},
    {HARVBK_SYNC_GONE, "gone"},
    {HARVBK_SYNC_FORGOTTEN, "forgotten"},
    {HARVBK_SYNC_UNCHANGED, "unchanged"},
    {HARVBK_SYNC_INDEX_MISSING, "index_missing"},
    {HARVBK_SYNC_DELETED, "deleted"},
    {HARVBK_SYNC_MANIFEST_READS, "manifest_reads"},
    {HARVBK_SYNC_SKIPPED, "skipped_forgotten"},
};

int cmd_sync(cli_env *env, int argc, char **argv)
{
    const char *H = "harvbk sync";
    cli_opt opts[] = {{"json", CLI_OPT_FLAG, 0, 0, 0}, {NULL, 0, 0, 0, 0}};
    const char *pos[1];
    int npos = 0;
    bool help = false;
    int ex = cli_parse(H, argc, argv, opts, pos, 0, &npos, &help);
    if (ex)
        goto out;
    if (help) {
        fputs(HELP_SYNC, stdout);
        goto out;
    }
    bool json = cli_opt_find(opts, "json")->count > 0;
    harvbk_ctx *ctx = cli_open_ctx(env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (cli_session_secret(ctx, "sync")) {
        harvbk_ctx_free(ctx);
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    double t0 = cli_now();
    harvbk_sync_result *r = NULL;
    int rc = harvbk_target_sync(ctx, &r);
    double secs = cli_now() - t0;
    if (rc == HARVBK_E_NOTARGET) {
        cli_err("sync: no backup target configured (set one with 'harvbk target set URL')");
        ex = CLI_EXIT_FAIL;
    } else if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "sync");
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; o && i < sizeof g_counts / sizeof g_counts[0]; i++)
            cJSON_AddNumberToObject(o, g_counts[i].key,
                                    (double)harvbk_sync_result_count(r, g_counts[i].what));
        if (o)
            cJSON_AddNumberToObject(o, "synced_at_ms",
                                    (double)harvbk_sync_result_synced_at(r));
        ex = o ? cli_print_json(o) : CLI_EXIT_FAIL;
    } else {
        printf("sync: %llu imported, %llu updated, %llu gone, %llu forgotten, %llu unchanged",
               (unsigned long long)harvbk_sync_result_count(r, HARVBK_SYNC_IMPORTED),
               (unsigned long long)harvbk_sync_result_count(r, HARVBK_SYNC_UPDATED),
               (unsigned long long)harvbk_sync_result_count(r, HARVBK_SYNC_GONE),
               (unsigned long long)harvbk_sync_result_count(r, HARVBK_SYNC_FORGOTTEN),
               (unsigned long long)harvbk_sync_result_count(r, HARVBK_SYNC_UNCHANGED));
        uint64_t im = harvbk_sync_result_count(r, HARVBK_SYNC_INDEX_MISSING);
        uint64_t del = harvbk_sync_result_count(r, HARVBK_SYNC_DELETED);
        if (im)
            printf(", %llu with a missing index", (unsigned long long)im);
        if (del)
            printf(", %llu pending deletion%s finished", (unsigned long long)del,
                   del == 1 ? "" : "s");
        printf(" (%llu manifest%s read) in %.1fs\n",
               (unsigned long long)harvbk_sync_result_count(r, HARVBK_SYNC_MANIFEST_READS),
               harvbk_sync_result_count(r, HARVBK_SYNC_MANIFEST_READS) == 1 ? "" : "s", secs);
        ex = CLI_EXIT_OK;
    }
    harvbk_sync_result_free(r);
    harvbk_ctx_free(ctx);
out:
    cli_opts_free(opts);
    return ex;
}
