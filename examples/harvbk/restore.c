/*
 * restore.c - `harvbk restore NS/BACKUP --new-vm NS/NAME --into DIR`.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char HELP_RESTORE[] =
    "Usage: harvbk restore NS/BACKUP --new-vm NS/NAME --into DIR\n"
    "\n"
    "Restore backup NS/BACKUP as a new VM. Each volume is written as the sparse\n"
    "file DIR/VOLNAME.raw (DIR is created when missing; existing files are never\n"
    "overwritten) and the new VM is registered with those files as its disks.\n"
    "Every chunk is checked before it is written; on failure the partial files\n"
    "are removed. On a terminal a progress bar is drawn on stderr; Ctrl-C cancels.\n";

int cli_run_restore(harvbk_ctx *ctx, const char *ns, const char *name, const char *new_ns,
                    const char *new_name, const char *dir, cli_op_result *res)
{
    char what[4 * CLI_NAME_MAX + 32];
    snprintf(what, sizeof what, "restore %s/%s", ns, name);
    memset(res, 0, sizeof *res);
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_restore_options o;
    harvbk_restore_options_init(&o, HARVBK_RESTORE_OPTIONS_VERSION);
    o.new_vm_namespace = new_ns;
    o.new_vm_name = new_name;
    o.target_dir = dir;
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    if (cli_signal_pending()) {
        cli_err("%s: cancelled before it started", what);
        return CLI_EXIT_INTERRUPTED;
    }
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, ctx, ns, name, &o);
    if (rc != 0) {
        if (rc == HARVBK_E_NOTARGET) {
            cli_err("%s: no backup target configured (set one with 'harvbk target set URL')",
                    what);
            return CLI_EXIT_FAIL;
        }
        return cli_fail_ctx(ctx, rc, what);
    }
    rc = cli_wait_op(op, &pr, what, &res->seconds);
    int ex = cli_finish_op(op, rc, what);
    if (ex == CLI_EXIT_OK)
        harvbk_op_progress(op, &res->logical_bytes, NULL);
    harvbk_op_free(op);
    return ex;
}

int cmd_restore(cli_env *env, int argc, char **argv)
{
    const char *H = "harvbk restore";
    cli_opt opts[] = {
        {"new-vm", CLI_OPT_VALUE, 0, 0, 0},
        {"into", CLI_OPT_VALUE, 0, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    const char *pos[1];
    int npos = 0;
    bool help = false;
    harvbk_ctx *ctx = NULL;
    char *dir = NULL;
    bool made_dir = false;
    int ex = cli_parse(H, argc, argv, opts, pos, 1, &npos, &help);
    if (ex)
        goto out;
    if (help) {
        fputs(HELP_RESTORE, stdout);
        goto out;
    }
    if (npos != 1) {
        ex = cli_usage_err(H, "restore needs the backup as NAMESPACE/NAME");
        goto out;
    }
    char ns[CLI_NAME_MAX], name[CLI_NAME_MAX], new_ns[CLI_NAME_MAX], new_name[CLI_NAME_MAX];
    if ((ex = cli_split_name(H, "the backup", pos[0], ns, name)))
        goto out;
    cli_opt *onew = cli_opt_find(opts, "new-vm");
    cli_opt *ointo = cli_opt_find(opts, "into");
    if (!onew->count) {
        ex = cli_usage_err(H, "restore needs --new-vm NAMESPACE/NAME");
        goto out;
    }
    if (!ointo->count || !ointo->value[0]) {
        ex = cli_usage_err(H, "restore needs --into DIR");
        goto out;
    }
    if ((ex = cli_split_name(H, "the new VM", onew->value, new_ns, new_name)))
        goto out;

    dir = cli_abspath(ointo->value);
    if (!dir) {
        cli_err("restore: cannot resolve '%s': %s", ointo->value, strerror(errno));
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    ctx = cli_open_ctx(env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    /* Refuse early (before creating DIR) when the new VM exists. */
    harvbk_vm *existing = NULL;
    if (harvbk_vm_lookup(&existing, ctx, new_ns, new_name) == 0) {
        harvbk_vm_free(existing);
        cli_err("restore %s/%s: VM %s/%s already exists; choose another --new-vm or remove it "
                "with 'harvbk vm remove %s/%s'",
                ns, name, new_ns, new_name, new_ns, new_name);
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (cli_session_secret(ctx, "restore")) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        int err = cli_mkdirs(dir, 0755);
        if (err) {
            cli_err("restore: cannot create directory '%s': %s", dir, strerror(err));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        made_dir = true;
    } else if (!S_ISDIR(st.st_mode)) {
        cli_err("restore: '%s' is not a directory", dir);
        ex = CLI_EXIT_FAIL;
        goto out;
    }

    cli_op_result res;
    ex = cli_run_restore(ctx, ns, name, new_ns, new_name, dir, &res);
    if (ex == CLI_EXIT_OK) {
        char l[32], r[32];
        printf("restore %s/%s -> vm %s/%s Ready: %s in %.1fs (%s)\n", ns, name, new_ns, new_name,
               cli_fmt_size(res.logical_bytes, l, sizeof l), res.seconds,
               cli_fmt_rate(res.logical_bytes, res.seconds, r, sizeof r));
        harvbk_vm *vm = NULL;
        if (harvbk_vm_lookup(&vm, ctx, new_ns, new_name) == 0) {
            size_t nv = harvbk_vm_volume_count(vm);
            for (size_t i = 0; i < nv; i++) {
                const char *p = harvbk_vm_volume_path(vm, i);
                printf("  %s: %s\n", harvbk_vm_volume_name(vm, i), p ? p : "-");
            }
            harvbk_vm_free(vm);
        }
    } else if (made_dir) {
        rmdir(dir); /* only succeeds when the restore left it empty */
    }
out:
    free(dir);
    harvbk_ctx_free(ctx);
    cli_opts_free(opts);
    return ex;
}
