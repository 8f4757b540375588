/*
 * restore.c - `harvbk restore`: a backup or a snapshot restored as a new VM
 * or over an existing, powered-off VM.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char HELP_RESTORE[] =
    "Usage: harvbk restore NS/BACKUP --new-vm NS/NAME --into DIR [--keep-mac]\n"
    "       harvbk restore NS/BACKUP --replace NS/VM [--deletion-policy delete|retain]\n"
    "                                [--into DIR]\n"
    "       harvbk restore --snapshot NS/NAME --new-vm NS/NAME --into DIR [--keep-mac]\n"
    "       harvbk restore --snapshot NS/NAME --replace NS/VM [--deletion-policy retain]\n"
    "\n"
    "Restore a backup (or with --snapshot, a snapshot of the local snapshot store).\n"
    "\n"
    "--new-vm: a new VM. Each volume is written as the sparse file DIR/VOLNAME.raw\n"
    "(DIR is created when missing; existing files are never overwritten) and the\n"
    "new VM is registered with those files and the source's metadata, rewritten\n"
    "for the new VM (name, namespace, volume references; MAC addresses cleared\n"
    "unless --keep-mac, which is refused while the source VM still exists). A\n"
    "snapshot is restored only within its own namespace.\n"
    "\n"
    "--replace: over the registered VM NS/VM - only the VM the backup or snapshot\n"
    "was taken of - which must be reported powered off ('harvbk vm set-power NS/VM\n"
    "off'). New data is written beside the old volumes and swapped in only when\n"
    "complete and verified; the previous volumes are then deleted (backups'\n"
    "default) or kept as '<path>.retained-<UTC time>' (retain; snapshots can only\n"
    "retain). Volumes the VM does not have go to --into DIR (else the directory of\n"
    "its first volume). A restore killed midway leaves the old volumes in place.\n"
    "\n"
    "Every chunk is checked before it is written; on failure nothing is left\n"
    "behind. On a terminal a progress bar is drawn on stderr; Ctrl-C cancels.\n";

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

typedef struct restore_req {
    bool snapshot, replace, keep_mac;
    int policy;
    const char *ns, *name, *vm_ns, *vm_name, *dir;
} restore_req;

static int run_restore_req(harvbk_ctx *ctx, const restore_req *q, cli_op_result *res,
                           harvbk_op **out_op)
{
    char what[4 * CLI_NAME_MAX + 48];
    snprintf(what, sizeof what, "restore %s%s/%s", q->snapshot ? "snapshot " : "", q->ns,
             q->name);
    memset(res, 0, sizeof *res);
    *out_op = NULL;
    cli_progress pr;
    memset(&pr, 0, sizeof pr);
    harvbk_restore_options o;
    harvbk_restore_options_init(&o, HARVBK_RESTORE_OPTIONS_VERSION);
    o.new_vm_namespace = q->vm_ns;
    o.new_vm_name = q->vm_name;
    o.target_dir = q->dir;
    o.flags = (q->replace ? HARVBK_RESTORE_REPLACE : 0) | (q->keep_mac ? HARVBK_RESTORE_KEEP_MAC : 0);
    o.deletion_policy = q->policy;
    o.progress_cb = cli_progress_cb;
    o.progress_payload = &pr;
    if (cli_signal_pending()) {
        cli_err("%s: cancelled before it started", what);
        return CLI_EXIT_INTERRUPTED;
    }
    harvbk_op *op = NULL;
    int rc = q->snapshot ? harvbk_snapshot_restore(&op, ctx, q->ns, q->name, &o)
                         : harvbk_restore_create(&op, ctx, q->ns, q->name, &o);
    if (rc != 0) {
        if (rc == HARVBK_E_NOTARGET) {
            cli_err("%s: no backup target configured (set one with 'harvbk target set URL')",
                    what);
            return CLI_EXIT_FAIL;
        }
        return cli_fail_ctx(ctx, rc, what);
    }
    rc = cli_wait_op(op, &pr, what, &res->seconds);
    if (rc != 0 && !(rc == HARVBK_E_CANCELLED && cli_signal_pending())) {
        cli_fail_op(op, rc, what);
        harvbk_op_free(op);
        return CLI_EXIT_FAIL;
    }
    int ex = cli_finish_op(op, rc, what);
    if (ex == CLI_EXIT_OK) {
        harvbk_op_progress(op, &res->logical_bytes, NULL);
        *out_op = op;
    } else {
        harvbk_op_free(op);
    }
    return ex;
}

int cmd_restore(cli_env *env, int argc, char **argv)
{
    const char *H = "harvbk restore";
    cli_opt opts[] = {
        {"new-vm", CLI_OPT_VALUE, 0, 0, 0},
        {"into", CLI_OPT_VALUE, 0, 0, 0},
        {"snapshot", CLI_OPT_VALUE, 0, 0, 0},
        {"replace", CLI_OPT_VALUE, 0, 0, 0},
        {"deletion-policy", CLI_OPT_VALUE, 0, 0, 0},
        {"keep-mac", CLI_OPT_FLAG, 0, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    const char *pos[1];
    int npos = 0;
    bool help = false;
    harvbk_ctx *ctx = NULL;
    harvbk_op *op = NULL;
    char *dir = NULL;
    bool made_dir = false;
    restore_req q;
    memset(&q, 0, sizeof q);
    int ex = cli_parse(H, argc, argv, opts, pos, 1, &npos, &help);
    if (ex)
        goto out;
    if (help) {
        fputs(HELP_RESTORE, stdout);
        goto out;
    }
    char ns[CLI_NAME_MAX], name[CLI_NAME_MAX], vm_ns[CLI_NAME_MAX], vm_name[CLI_NAME_MAX];
    cli_opt *osnap = cli_opt_find(opts, "snapshot");
    cli_opt *onew = cli_opt_find(opts, "new-vm");
    cli_opt *orep = cli_opt_find(opts, "replace");
    cli_opt *ointo = cli_opt_find(opts, "into");
    cli_opt *opol = cli_opt_find(opts, "deletion-policy");
    q.snapshot = osnap->count > 0;
    if (q.snapshot && npos != 0) {
        ex = cli_usage_err(H, "give the source either as NAMESPACE/NAME or with --snapshot, not "
                              "both");
        goto out;
    }
    if (!q.snapshot && npos != 1) {
        ex = cli_usage_err(H, "restore needs the backup as NAMESPACE/NAME (or --snapshot "
                              "NAMESPACE/NAME)");
        goto out;
    }
    if ((ex = cli_split_name(H, q.snapshot ? "the snapshot" : "the backup",
                             q.snapshot ? osnap->value : pos[0], ns, name)))
        goto out;
    if (!!onew->count == !!orep->count) {
        ex = cli_usage_err(H, "restore needs either --new-vm NAMESPACE/NAME or --replace "
                              "NAMESPACE/NAME");
        goto out;
    }
    q.replace = orep->count > 0;
    q.keep_mac = cli_opt_find(opts, "keep-mac")->count > 0;
    if (q.replace && q.keep_mac) {
        ex = cli_usage_err(H, "--keep-mac applies only to --new-vm (a replaced VM keeps its own "
                              "MAC addresses)");
        goto out;
    }
    if (opol->count) {
        if (!q.replace) {
            ex = cli_usage_err(H, "--deletion-policy applies only to --replace");
            goto out;
        }
        if (strcmp(opol->value, "delete") == 0)
            q.policy = HARVBK_DELETION_POLICY_DELETE;
        else if (strcmp(opol->value, "retain") == 0)
            q.policy = HARVBK_DELETION_POLICY_RETAIN;
        else {
            ex = cli_usage_err(H, "invalid --deletion-policy '%s' (delete or retain)",
                               opol->value);
            goto out;
        }
    }
    if (!q.replace && (!ointo->count || !ointo->value[0])) {
        ex = cli_usage_err(H, "restore --new-vm needs --into DIR");
        goto out;
    }
    if (ointo->count && !ointo->value[0]) {
        ex = cli_usage_err(H, "--into needs a directory");
        goto out;
    }
    if ((ex = cli_split_name(H, q.replace ? "the VM to replace" : "the new VM",
                             q.replace ? orep->value : onew->value, vm_ns, vm_name)))
        goto out;
    q.ns = ns;
    q.name = name;
    q.vm_ns = vm_ns;
    q.vm_name = vm_name;

    if (ointo->count) {
        dir = cli_abspath(ointo->value);
        if (!dir) {
            cli_err("restore: cannot resolve '%s': %s", ointo->value, strerror(errno));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
    }
    q.dir = dir;
    ctx = cli_open_ctx(env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    harvbk_vm *existing = NULL;
    if (!q.replace && harvbk_vm_lookup(&existing, ctx, vm_ns, vm_name) == 0) {
        /* refuse early (before creating DIR) when the new VM exists */
        harvbk_vm_free(existing);
        cli_err("restore %s/%s: VM %s/%s already exists; choose another --new-vm, replace it "
                "with --replace, or remove it with 'harvbk vm remove %s/%s' (%s)",
                ns, name, vm_ns, vm_name, vm_ns, vm_name, harvbk_error_name(HARVBK_E_EXISTS));
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    if (!q.snapshot && cli_session_secret(ctx, "restore")) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    struct stat st;
    if (dir && stat(dir, &st) != 0) {
        int err = cli_mkdirs(dir, 0755);
        if (err) {
            cli_err("restore: cannot create directory '%s': %s", dir, strerror(err));
            ex = CLI_EXIT_FAIL;
            goto out;
        }
        made_dir = true;
    } else if (dir && !S_ISDIR(st.st_mode)) {
        cli_err("restore: '%s' is not a directory", dir);
        ex = CLI_EXIT_FAIL;
        goto out;
    }

    cli_op_result res;
    ex = run_restore_req(ctx, &q, &res, &op);
    if (ex == CLI_EXIT_OK) {
        char l[32], r[32];
        printf("restore %s%s/%s %s vm %s/%s Ready: %s in %.1fs (%s)\n",
               q.snapshot ? "snapshot " : "", ns, name, q.replace ? "over" : "->", vm_ns,
               vm_name, cli_fmt_size(res.logical_bytes, l, sizeof l), res.seconds,
               cli_fmt_rate(res.logical_bytes, res.seconds, r, sizeof r));
        harvbk_vm *vm = NULL;
        if (harvbk_vm_lookup(&vm, ctx, vm_ns, vm_name) == 0) {
            size_t nv = harvbk_vm_volume_count(vm);
            for (size_t i = 0; i < nv; i++) {
                const char *p = harvbk_vm_volume_path(vm, i);
                printf("  %s: %s\n", harvbk_vm_volume_name(vm, i), p ? p : "-");
            }
            harvbk_vm_free(vm);
        }
        size_t nr = harvbk_restore_retained_count(op);
        for (size_t i = 0; i < nr; i++)
            printf("  retained: %s\n", harvbk_restore_retained_path(op, i));
    } else if (made_dir) {
        rmdir(dir); /* only succeeds when the restore left it empty */
    }
out:
    harvbk_op_free(op);
    free(dir);
    harvbk_ctx_free(ctx);
    cli_opts_free(opts);
    return ex;
}
