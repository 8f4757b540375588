/*
 * gc.c - `harvbk gc`: remove chunks no backup references.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <string.h>

int cmd_gc(cli_env *env, int argc, char **argv)
{
    const char *H = "harvbk gc";
    cli_opt opts[] = {{NULL, 0, 0, 0, 0}};
    const char *pos[1];
    int npos = 0;
    bool help = false;
    int ex = cli_parse(H, argc, argv, opts, pos, 0, &npos, &help);
    if (ex)
        return ex;
    if (help) {
        fputs("Usage: harvbk gc\n"
              "\n"
              "Remove the chunks of the target that no backup references (after 'backup\n"
              "delete'), and print how many chunks and bytes were removed. Safe while\n"
              "backups run from other contexts; fails with \"resource busy\" while a\n"
              "writer holds the store.\n",
              stdout);
        return CLI_EXIT_OK;
    }
    harvbk_ctx *ctx = cli_open_ctx(env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    if (cli_session_secret(ctx, "gc")) {
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_op_options o;
    harvbk_op_options_init(&o, HARVBK_OP_OPTIONS_VERSION);
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    harvbk_op *op = NULL;
    int rc = harvbk_gc(&op, ctx, &o);
    if (rc != 0) {
        if (rc == HARVBK_E_NOTARGET)
            cli_err("gc: no backup target configured (set one with 'harvbk target set URL')");
        else
            cli_fail_ctx(ctx, rc, "gc");
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    double secs = 0;
    rc = cli_wait_op(op, &pr, "gc", &secs);
    ex = cli_finish_op(op, rc, "gc");
    if (ex == CLI_EXIT_OK) {
        uint64_t chunks = 0, bytes = 0;
        rc = harvbk_gc_result(op, &chunks, &bytes);
        if (rc != 0) {
            ex = cli_fail_op(op, rc, "gc: reading the result");
        } else {
            char b[32];
            printf("gc: removed %llu chunk%s, %s (%llu bytes) in %.1fs\n",
                   (unsigned long long)chunks, chunks == 1 ? "" : "s",
                   cli_fmt_size(bytes, b, sizeof b), (unsigned long long)bytes, secs);
        }
    }
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
    return ex;
}
