/*
 * cli.h - shared declarations of the `harvbk` command-line program.
 *
 * The CLI uses only the public API (<harvbk.h>) plus cJSON for JSON output.
 * Every command is a function `int cmd_xxx(cli_env *env, int argc, char **argv)`
 * returning the process exit code (see cli_exit below).
 */
#ifndef HARVBK_CLI_H
#define HARVBK_CLI_H

#include <harvbk.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (docs/CLI.md "Exit codes"). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,        /* the operation failed */
    CLI_EXIT_USAGE = 2,       /* bad command line or bad input file */
    CLI_EXIT_BADDATA = 3,     /* verify found missing or corrupt data */
    CLI_EXIT_INTERRUPTED = 130 /* cancelled by SIGINT/SIGTERM */
};

/* What every command gets: the global options. */
typedef struct cli_env {
    const char *state_dir; /* --state, else $HARVBK_STATE, else ./.harvbk */
    int verbose;           /* -v: library log at INFO, -vv: DEBUG */
} cli_env;

/* ---- messages (util.c) ---- */

/* Print "harvbk: <fmt...>" as one line on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: one line "harvbk: <fmt...>" plus a hint to run `help_cmd --help`;
 * returns CLI_EXIT_USAGE. help_cmd is e.g. "harvbk backup create" or "harvbk". */
int cli_usage_err(const char *help_cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "harvbk: <what>: <ctx message or strerror(code)>"; returns CLI_EXIT_FAIL. */
int cli_fail_ctx(const harvbk_ctx *ctx, int code, const char *what);
/* "harvbk: <what>: <op message or strerror(code)>"; returns CLI_EXIT_FAIL. */
int cli_fail_op(const harvbk_op *op, int code, const char *what);
/* The library's message for a failed call (ctx or op, either may be NULL),
 * flattened to one line, falling back to harvbk_strerror(code). */
void cli_libmsg(const harvbk_ctx *ctx, const harvbk_op *op, int code, char *buf, size_t size);

/* ---- command-line option parsing (util.c) ---- */

enum cli_opt_kind { CLI_OPT_FLAG, CLI_OPT_VALUE, CLI_OPT_MULTI };

typedef struct cli_opt {
    const char *name;     /* long name without "--", e.g. "name" */
    enum cli_opt_kind kind;
    /* results */
    int count;            /* times given */
    const char *value;    /* last value (VALUE) */
    const char **values;  /* all values (MULTI), `count` of them */
} cli_opt;

/*
 * Parse argv[0..argc) (the words after the command name) into `opts` (an array
 * terminated by an entry with name NULL) and positional arguments. Accepts
 * "--opt value", "--opt=value", "--" ends options, "-h"/"--help" sets *help.
 * Positional args are returned in pos (capacity pos_cap), count in *npos.
 * On error prints a usage error and returns CLI_EXIT_USAGE; else 0.
 */
int cli_parse(const char *help_cmd, int argc, char **argv, cli_opt *opts, const char **pos,
              int pos_cap, int *npos, bool *help);
void cli_opts_free(cli_opt *opts);
cli_opt *cli_opt_find(cli_opt *opts, const char *name);

/* ---- table-driven subcommands (util.c) ---- */

#define CLI_POS_MAX 2   /* positional arguments a subcommand takes at most */
#define CLI_OPTS_MAX 24 /* options a subcommand takes at most (cli_run_cmd drops more) */
#define CLI_NAME_MAX 64

/* What a subcommand's handler gets: the parsed command line. */
typedef struct cli_args {
    cli_env *env;
    const char *H;               /* "harvbk vm add": the usage errors' hint */
    cli_opt *opts;               /* the options given (cli_opt_find) */
    const char *pos[CLI_POS_MAX];
    int npos;
    char ns[CLI_NAME_MAX];       /* pos[0] split, when the entry's `split` is set */
    char name[CLI_NAME_MAX];
} cli_args;

/* One subcommand. The dispatcher parses its options, prints the help, checks
 * the count of positional arguments and splits pos[0] as NS/NAME, then calls
 * run. */
typedef struct cli_cmd {
    const char *name;     /* "remove"; NULL ends a table */
    const char *alias;    /* "rm", or NULL */
    int (*run)(cli_args *a);
    const cli_opt *opts;  /* option templates ending in a NULL name; NULL: none */
    int min_pos, max_pos; /* positional arguments (max_pos <= CLI_POS_MAX) */
    const char *need;     /* usage error when fewer than min_pos or a count other
                           * than max_pos when min_pos == max_pos; NULL with
                           * split: "vm show needs the VM as NAMESPACE/NAME" */
    const char *split;    /* pos[0] is NS/NAME ("the VM" in its errors), or NULL */
} cli_cmd;

/* A command of subcommands: "harvbk vm" + help text + "add, list, ... or
 * set-power" (the missing/unknown subcommand errors) + table. */
typedef struct cli_group {
    const char *prefix;
    const char *help;
    const char *list;
    const cli_cmd *cmds;
} cli_group;

/* The options of a subcommand that takes only --json. */
extern const cli_opt CLI_OPTS_JSON[];

/* Run argv[0]'s subcommand of g (--help / -h: g's help); returns the exit code. */
int cli_dispatch(const cli_group *g, cli_env *env, int argc, char **argv);
/* Run one subcommand: H is its usage hint, help its --help text. */
int cli_run_cmd(const cli_cmd *c, const char *H, const char *help, cli_env *env, int argc,
                char **argv);

/* ---- names (util.c) ---- */

/* Split "NS/NAME" (exactly one '/', both parts valid DNS-1123 labels checked
 * with harvbk_name_is_valid). Writes the parts into ns/name (each at least 64
 * bytes). On error prints a usage error (hint to help_cmd) and returns
 * CLI_EXIT_USAGE; else 0. `what` names the argument ("VM", "backup"). */
int cli_split_name(const char *help_cmd, const char *what, const char *arg, char *ns,
                   char *name);
/* Check one DNS-1123 label; same error behaviour as cli_split_name. */
int cli_check_label(const char *help_cmd, const char *what, const char *s);

/* ---- numbers, sizes, time (util.c) ---- */

/* Strict unsigned decimal; false on garbage or overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);
/* Bytes with optional K/M/G suffix (binary: K=1024), also "KiB"/"MB" forms. */
bool cli_parse_size(const char *s, uint64_t *out);
/* Seconds (integer or decimal) into milliseconds. */
bool cli_parse_seconds_ms(const char *s, uint64_t *out_ms);
/* Human size "12.3 MiB" into buf. */
const char *cli_fmt_size(uint64_t bytes, char *buf, size_t size);
/* Throughput "123.4 MB/s" (decimal megabytes) into buf. */
const char *cli_fmt_rate(uint64_t bytes, double seconds, char *buf, size_t size);
/* ISO 8601 UTC time "2026-11-25T10:00:00Z". */
const char *cli_fmt_time(int64_t t, char *buf, size_t size);
/* Monotonic seconds. */
double cli_now(void);
/* Wall clock, ms since the epoch. */
int64_t cli_wall_ms(void);
/* RFC 3339 UTC time ("2030-01-01T01:00:00Z", optional fraction, 'Z' or a
 * +00:00 / -00:00 offset) into ms since the epoch; false when malformed, not
 * UTC, or before 1970. */
bool cli_parse_rfc3339(const char *s, int64_t *out_ms);

/* ---- files (util.c) ---- */

/* Read a whole file (at most max bytes) into a malloc'd NUL-terminated buffer.
 * Returns 0 or an errno value (EFBIG when larger than max). */
int cli_read_file(const char *path, size_t max, char **out, size_t *out_len);
/* Absolute form of path (the file need not exist); malloc'd, NULL on error. */
char *cli_abspath(const char *path);
/* mkdir -p; returns 0 or errno. */
int cli_mkdirs(const char *path, unsigned mode);
/* rm -rf; returns 0 or errno of the first failure. */
int cli_remove_tree(const char *path);
/* Wipe memory that held a secret. */
void cli_wipe(void *p, size_t n);

/* ---- JSON (util.c) ---- */

/* Print a cJSON item (pretty) plus newline to stdout and delete it. Returns
 * CLI_EXIT_OK or CLI_EXIT_FAIL (out of memory). */
struct cJSON;
int cli_print_json(struct cJSON *item);

/* ---- context (util.c) ---- */

/* Open the state directory of env; on error prints it and returns NULL. */
harvbk_ctx *cli_open_ctx(const cli_env *env);
/* harvbk_vm_lookup() for a command that works on a registered VM ("backup
 * create"): a VM that is not registered is reported here, with how to
 * register it. Returns the library's code; other errors are the caller's. */
int cli_lookup_vm(harvbk_ctx *ctx, const char *what, const char *ns, const char *name,
                  harvbk_vm **out);
/* Read a secret from a file (at most 4 KiB, trailing whitespace dropped) into a
 * malloc'd string (wipe and free it). 0, an errno value, ENODATA if empty, or
 * EPERM when group or others may access the file (it is not read then). */
int cli_read_secret(const char *path, char **out);
/* The message for an error of cli_read_secret. */
const char *cli_secret_error(int err);
/* The target key given for this command (--key-file / --passphrase-file:
 * $HARVBK_KEY_FILE / $HARVBK_PASSPHRASE_FILE) into *out (NULL when none;
 * caller frees). Errors are printed (prefixed by `what`); returns the code. */
int cli_env_key(harvbk_key **out, const char *what);
/*
 * For commands that talk to the target: the target key given for this
 * command (cli_env_key), for any target, goes to harvbk_ctx_set_target_key.
 * Then, when the configured target is S3,
 * give the context the secret for this process only
 * (harvbk_ctx_set_target_secret; nothing is written): from the file named by
 * --secret-access-key-file / $HARVBK_SECRET_ACCESS_KEY_FILE, else, when the
 * secret was not stored in the state directory, from $AWS_SECRET_ACCESS_KEY.
 * Silent when nothing is to be done. Returns 0 or a library error (already printed,
 * prefixed by `what`).
 */
int cli_session_secret(harvbk_ctx *ctx, const char *what);

/* ---- progress and signals (progress.c) ---- */

typedef struct cli_progress {
    _Atomic uint64_t done;
    _Atomic uint64_t total;
    atomic_int seen;      /* the callback ran at least once */
} cli_progress;

/* The harvbk_progress_cb to pass with a cli_progress as payload. Runs on a
 * library thread: only stores numbers. Always returns 0. */
int cli_progress_cb(uint64_t done, uint64_t total, void *payload);

/* Install SIGINT/SIGTERM handlers that only set a flag (a second signal
 * terminates at once). */
void cli_signals_install(void);
/* Non-zero once SIGINT or SIGTERM arrived (the signal number). */
int cli_signal_pending(void);

/*
 * Wait for `op` to end while drawing a progress bar on stderr when it is a
 * terminal (label e.g. "backup default/b1"), cancelling the operation when a
 * signal arrives. Returns the operation's result (0 or HARVBK_E_*); sets
 * *out_seconds (may be NULL) to the wall time waited.
 */
int cli_wait_op(harvbk_op *op, cli_progress *pr, const char *label, double *out_seconds);
/* Exit code for an operation that ended with rc: 0 -> CLI_EXIT_OK; cancelled
 * by a signal -> CLI_EXIT_INTERRUPTED; else prints "harvbk: <what>: <op message>"
 * and returns CLI_EXIT_FAIL. */
int cli_finish_op(const harvbk_op *op, int rc, const char *what);
/* Whether bars are drawn (stderr is a terminal and TERM is not "dumb"). */
bool cli_bar_enabled(void);
/* Serialises writes to stderr between the bar and library log lines. */
void cli_stderr_lock(void);
void cli_stderr_unlock(void);
/* Log hook printing library messages on stderr (payload unused). */
void cli_log_cb(int level, const char *message, void *payload);

/* ---- running operations (backup.c, restore.c), shared with demo.c ---- */

typedef struct cli_op_result {
    double seconds;          /* wall time of the operation */
    uint64_t logical_bytes;  /* backup: sum of volume sizes; restore/verify: bytes done */
    uint64_t uploaded_bytes; /* backup: bytes written to the target */
} cli_op_result;

/* Back up `vm` as backup VMNS/`name`, waiting with a progress bar. Errors are
 * printed; returns an exit code (CLI_EXIT_INTERRUPTED after a signal). */
int cli_run_backup(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                   const harvbk_ranges *ranges, unsigned flags, cli_op_result *res);
/* Restore backup ns/name as new VM new_ns/new_name into dir (must exist). */
int cli_run_restore(harvbk_ctx *ctx, const char *ns, const char *name, const char *new_ns,
                    const char *new_name, const char *dir, cli_op_result *res);
/* Verify backup ns/name; CLI_EXIT_BADDATA when a chunk or index is bad. */
int cli_run_verify(harvbk_ctx *ctx, const char *ns, const char *name, cli_op_result *res);

/* ---- commands ---- */
int cmd_target(cli_env *env, int argc, char **argv);
int cmd_vm(cli_env *env, int argc, char **argv);
int cmd_backup(cli_env *env, int argc, char **argv);
int cmd_restore(cli_env *env, int argc, char **argv);
int cmd_gc(cli_env *env, int argc, char **argv);
int cmd_snapshot(cli_env *env, int argc, char **argv);
int cmd_quota(cli_env *env, int argc, char **argv);
int cmd_schedule(cli_env *env, int argc, char **argv);
int cmd_run(cli_env *env, int argc, char **argv);
int cmd_maintenance(cli_env *env, int argc, char **argv);
int cmd_image(cli_env *env, int argc, char **argv);
int cmd_demo(cli_env *env, int argc, char **argv);
int cmd_sync(cli_env *env, int argc, char **argv);

/* Usage texts (main.c); print to the stream given. */
void cli_help_main(FILE *f);

#endif
