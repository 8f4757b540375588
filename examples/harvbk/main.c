/*
 * main.c - the `harvbk` command-line program: global options and dispatch.
 *
 *   harvbk [--state DIR] [-v] COMMAND [ARGS...]
 *
 * Uses only the public libharvbk API. docs/CLI.md documents every command.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>

void cli_help_main(FILE *f)
{
    fputs(
        "Usage: harvbk [--state DIR] [--secret-access-key-file FILE]\n"
        "              [--key-file FILE | --passphrase-file FILE] [-v] COMMAND [ARGS...]\n"
        "\n"
        "Back up VM disks into a backup target and restore them as new VMs.\n"
        "\n"
        "Global options:\n"
        "  --state DIR        state directory (else $HARVBK_STATE, else ./.harvbk)\n"
        "  --secret-access-key-file FILE\n"
        "                     S3 secret for this command (else\n"
        "                     $HARVBK_SECRET_ACCESS_KEY_FILE, else $AWS_SECRET_ACCESS_KEY)\n"
        "  --key-file FILE, --passphrase-file FILE\n"
        "                     the encrypted target's key for this command (else\n"
        "                     $HARVBK_KEY_FILE / $HARVBK_PASSPHRASE_FILE, else the key\n"
        "                     file recorded by 'target set'); never written anywhere\n"
        "  -v, --verbose      show library log messages (-vv: debug)\n"
        "  -h, --help         this help; 'harvbk COMMAND --help' for one command\n"
        "  --version          print the CLI and library versions\n"
        "\n"
        "Commands:\n"
        "  target set URL [options]        configure the backup target (file:///path,\n"
        "                                  nfs://server/export/path, s3://bucket/prefix)\n"
        "  target show                     print the target settings and reachability\n"
        "  target key add|remove|list|generate\n"
        "                                  keys of an encrypted store (target or snapshots)\n"
        "  vm add NS/NAME --disk VOL=PATH [--disk ...] [--metadata FILE] [--image REF ...]\n"
        "  vm list [--json]                list registered VMs\n"
        "  vm show NS/NAME [--json]        show one registered VM\n"
        "  vm remove NS/NAME               forget a VM (its disks are not touched)\n"
        "  backup create NS/VM --name NAME [--changed-ranges FILE] [--allow-crash-consistent]\n"
        "  backup list [--json]            list backups in the target\n"
        "  backup show NS/NAME [--json]    show one backup\n"
        "  backup verify NS/NAME           read and check every chunk of a backup\n"
        "  backup delete NS/NAME           delete a backup (then 'harvbk gc' frees space)\n"
        "  restore NS/BACKUP --new-vm NS/NAME --into DIR [--keep-mac]\n"
        "                                  restore a backup as a new VM (DIR/VOL.raw)\n"
        "  restore NS/BACKUP --replace NS/VM [--deletion-policy delete|retain]\n"
        "                                  restore over a powered-off VM\n"
        "  restore --snapshot NS/NAME (--new-vm NS/NAME --into DIR | --replace NS/VM)\n"
        "                                  restore a snapshot (same namespace only)\n"
        "  vm set-power NS/NAME on|off     record the power state of a VM\n"
        "  image register|list|show|delete VM images restores need (register NS/NAME\n"
        "                                  [--display-name S] [--url U] [--checksum HEX])\n"
        "  snapshot create NS/VM --name NAME [--allow-crash-consistent]\n"
        "  snapshot list|show|verify|delete|gc|store\n"
        "                                  VM snapshots in the local snapshot store\n"
        "  quota set|clear (--namespace NS | --vm NS/VM) [BYTES]\n"
        "  quota show [--json]             snapshot space limits and usage\n"
        "  schedule create NAME --type backup|snapshot --vm NS/VM --cron EXPR\n"
        "                  [--retain N] [--max-failure N] [--deadline SECONDS]\n"
        "                  [--skip-interval-check] [--now RFC3339]\n"
        "  schedule list [--json] | show NAME [--json]\n"
        "  schedule edit NAME [--cron EXPR] [--retain N] [--max-failure N] [--deadline S]\n"
        "  schedule suspend|resume|delete NAME\n"
        "  schedule run-due [--now RFC3339] run the schedules due now, once\n"
        "  run                             run schedules in the foreground until\n"
        "                                  SIGINT/SIGTERM\n"
        "  maintenance status [--json] | enter [--wait S] | exit\n"
        "                                  stop everything, e.g. before an upgrade\n"
        "  sync [--json]                   bring the backup catalog in step with the target\n"
        "  gc                              remove chunks no backup references\n"
        "  demo [--target] [--keep]        self-contained demo in a temporary directory\n"
        "                                  (--target: against the configured target)\n"
        "  help [COMMAND]                  help for a command\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 usage error, 3 verify found missing or\n"
        "corrupt data, 130 cancelled by SIGINT/SIGTERM.\n",
        f);
}

static void print_version(void)
{
    printf("harvbk %s (libharvbk %s)\n", HARVBK_VERSION_STRING, harvbk_version());
}

typedef struct command {
    const char *name;
    int (*fn)(cli_env *env, int argc, char **argv);
} command;

static const command g_commands[] = {
    {"target", cmd_target}, {"vm", cmd_vm}, {"backup", cmd_backup}, {"restore", cmd_restore},
    {"gc", cmd_gc},         {"demo", cmd_demo}, {"snapshot", cmd_snapshot},
    {"quota", cmd_quota},   {"schedule", cmd_schedule}, {"run", cmd_run},
    {"maintenance", cmd_maintenance}, {"image", cmd_image}, {"sync", cmd_sync}, {NULL, NULL},
};

static const command *find_command(const char *name)
{
    for (const command *c = g_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int main(int argc, char **argv)
{
    cli_env env = {NULL, 0};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--state") == 0) {
            if (i + 1 >= argc)
                return cli_usage_err("harvbk", "option '--state' needs a value");
            env.state_dir = argv[++i];
        } else if (strncmp(a, "--state=", 8) == 0) {
            env.state_dir = a + 8;
        } else if (strcmp(a, "--secret-access-key-file") == 0 ||
                   strncmp(a, "--secret-access-key-file=", 25) == 0) {
            /* S3 secret for this process only; commands read it through
             * $HARVBK_SECRET_ACCESS_KEY_FILE (cli_session_secret) */
            const char *v = a[24] == '=' ? a + 25 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !*v)
                return cli_usage_err("harvbk", "option '--secret-access-key-file' needs a value");
            setenv("HARVBK_SECRET_ACCESS_KEY_FILE", v, 1);
        } else if (strcmp(a, "--key-file") == 0 || strncmp(a, "--key-file=", 11) == 0 ||
                   strcmp(a, "--passphrase-file") == 0 ||
                   strncmp(a, "--passphrase-file=", 18) == 0) {
            /* the target's key for this process only; commands read it
             * through $HARVBK_KEY_FILE / $HARVBK_PASSPHRASE_FILE (cli_env_key) */
            bool pass = a[2] == 'p';
            size_t n = pass ? 17 : 10;
            const char *opt = pass ? "--passphrase-file" : "--key-file";
            const char *v = a[n] == '=' ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !*v)
                return cli_usage_err("harvbk", "option '%s' needs a value", opt);
            char *abs = cli_abspath(v);
            setenv(pass ? "HARVBK_PASSPHRASE_FILE" : "HARVBK_KEY_FILE", abs ? abs : v, 1);
            unsetenv(pass ? "HARVBK_KEY_FILE" : "HARVBK_PASSPHRASE_FILE");
            free(abs);
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            env.verbose++;
        } else if (strcmp(a, "-vv") == 0) {
            env.verbose += 2;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_help_main(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            print_version();
            return CLI_EXIT_OK;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_err("harvbk", "unknown option '%s'", a);
        } else {
            break;
        }
    }
    if (i >= argc)
        return cli_usage_err("harvbk", "no command given");
    if (env.state_dir && !*env.state_dir)
        return cli_usage_err("harvbk", "option '--state' needs a non-empty value");
    if (!env.state_dir) {
        const char *s = getenv("HARVBK_STATE");
        env.state_dir = (s && *s) ? s : "./.harvbk";
    }

    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc) {
            const command *c = find_command(argv[i + 1]);
            if (!c)
                return cli_usage_err("harvbk", "unknown command '%s'", argv[i + 1]);
            /* "harvbk help backup create" == "harvbk backup create --help" */
            int n = argc - (i + 2);
            char **sub = calloc((size_t)n + 2, sizeof *sub);
            if (!sub) {
                cli_err("out of memory");
                return CLI_EXIT_FAIL;
            }
            for (int k = 0; k < n; k++)
                sub[k] = argv[i + 2 + k];
            sub[n] = (char *)"--help";
            int rc = c->fn(&env, n + 1, sub);
            free(sub);
            return rc;
        }
        cli_help_main(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "version") == 0) {
        print_version();
        return CLI_EXIT_OK;
    }
    const command *c = find_command(name);
    if (!c)
        return cli_usage_err("harvbk", "unknown command '%s'", name);

    cli_signals_install();
    /* Library output goes to stdout/stderr in whole lines. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    return c->fn(&env, argc - i - 1, argv + i + 1);
}
