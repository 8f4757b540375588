/*
 * util.c - messages, option parsing, names, numbers, files and JSON helpers
 * shared by the commands of the `harvbk` CLI.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* messages */

static void vline(const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* One line, whatever the pieces contained. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    cli_stderr_lock();
    fprintf(stderr, "harvbk: %s\n", buf);
    fflush(stderr);
    cli_stderr_unlock();
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

int cli_usage_err(const char *help_cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", help_cmd ? help_cmd : "harvbk");
    return CLI_EXIT_USAGE;
}

void cli_libmsg(const harvbk_ctx *ctx, const harvbk_op *op, int code, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    if (op)
        harvbk_op_errmsg_copy(op, buf, size);
    else if (ctx)
        harvbk_ctx_errmsg_copy(ctx, buf, size);
    if (buf[0] == '\0')
        snprintf(buf, size, "%s", harvbk_strerror(code));
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int cli_fail_ctx(const harvbk_ctx *ctx, int code, const char *what)
{
    char msg[1024];
    cli_libmsg(ctx, NULL, code, msg, sizeof msg);
    cli_err("%s: %s (%s)", what, msg, harvbk_error_name(code));
    return CLI_EXIT_FAIL;
}

int cli_lookup_vm(harvbk_ctx *ctx, const char *what, const char *ns, const char *name,
                  harvbk_vm **out)
{
    int rc = harvbk_vm_lookup(out, ctx, ns, name);
    if (rc == HARVBK_E_NOTFOUND)
        cli_err("%s: VM %s/%s is not registered; register it first with 'harvbk vm add %s/%s "
                "--disk VOLNAME=PATH'",
                what, ns, name, ns, name);
    return rc;
}

int cli_fail_op(const harvbk_op *op, int code, const char *what)
{
    char msg[1024];
    cli_libmsg(NULL, op, code, msg, sizeof msg);
    cli_err("%s: %s (%s)", what, msg, harvbk_error_name(code));
    return CLI_EXIT_FAIL;
}

/* ------------------------------------------------------------------ */
/* option parsing */

cli_opt *cli_opt_find(cli_opt *opts, const char *name)
{
    for (cli_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

void cli_opts_free(cli_opt *opts)
{
    for (cli_opt *o = opts; o->name; o++) {
        free(o->values);
        o->values = NULL;
    }
}

int cli_parse(const char *help_cmd, int argc, char **argv, cli_opt *opts, const char **pos,
              int pos_cap, int *npos, bool *help)
{
    bool only_pos = false;
    *npos = 0;
    *help = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            *help = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            cli_opt *o = NULL;
            for (cli_opt *c = opts; c->name; c++)
                if (strlen(c->name) == nlen && strncmp(c->name, name, nlen) == 0)
                    o = c;
            if (!o)
                return cli_usage_err(help_cmd, "unknown option '--%.*s'", (int)nlen, name);
            const char *val = NULL;
            if (o->kind == CLI_OPT_FLAG) {
                if (eq)
                    return cli_usage_err(help_cmd, "option '--%s' takes no value", o->name);
            } else if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                return cli_usage_err(help_cmd, "option '--%s' needs a value", o->name);
            }
            if (o->kind == CLI_OPT_MULTI) {
                const char **nv = realloc(o->values, sizeof(*nv) * (size_t)(o->count + 1));
                if (!nv) {
                    cli_err("out of memory");
                    return CLI_EXIT_FAIL;
                }
                o->values = nv;
                o->values[o->count] = val;
            }
            o->value = val;
            o->count++;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0')
            return cli_usage_err(help_cmd, "unknown option '%s'", a);
        if (*npos >= pos_cap)
            return cli_usage_err(help_cmd, "unexpected argument '%s'", a);
        pos[(*npos)++] = a;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* table-driven subcommands */

const cli_opt CLI_OPTS_JSON[] = {{"json", CLI_OPT_FLAG, 0, 0, 0}, {NULL, 0, 0, 0, 0}};

int cli_run_cmd(const cli_cmd *c, const char *H, const char *help, cli_env *env, int argc,
                char **argv)
{
    cli_opt opts[CLI_OPTS_MAX + 1];
    int n = 0;
    for (const cli_opt *o = c->opts; o && o->name && n < CLI_OPTS_MAX; o++)
        opts[n++] = (cli_opt){o->name, o->kind, 0, NULL, NULL};
    opts[n] = (cli_opt){NULL, 0, 0, NULL, NULL};
    cli_args a = {.env = env, .H = H, .opts = opts};
    bool help_asked = false;
    int ex = cli_parse(H, argc, argv, opts, a.pos, c->max_pos, &a.npos, &help_asked);
    if (ex == 0 && help_asked) {
        fputs(help, stdout);
    } else if (ex == 0) {
        if (a.npos < c->min_pos || (c->min_pos == c->max_pos && a.npos != c->max_pos))
            ex = c->need ? cli_usage_err(H, "%s", c->need)
                         : cli_usage_err(H, "%s needs %s as NAMESPACE/NAME",
                                         H + strlen("harvbk "), c->split);
        else if (c->split && a.npos > 0)
            ex = cli_split_name(H, c->split, a.pos[0], a.ns, a.name);
        if (ex == 0)
            ex = c->run(&a);
    }
    cli_opts_free(opts);
    return ex;
}

int cli_dispatch(const cli_group *g, cli_env *env, int argc, char **argv)
{
    const char *word = g->prefix + strlen("harvbk ");
    if (argc < 1)
        return cli_usage_err(g->prefix, "missing subcommand (%s)", g->list);
    const char *s = argv[0];
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
        fputs(g->help, stdout);
        return CLI_EXIT_OK;
    }
    for (const cli_cmd *c = g->cmds; c->name; c++) {
        if (strcmp(s, c->name) != 0 && !(c->alias && strcmp(s, c->alias) == 0))
            continue;
        char H[96];
        snprintf(H, sizeof H, "%s %s", g->prefix, c->name);
        return cli_run_cmd(c, H, g->help, env, argc - 1, argv + 1);
    }
    return cli_usage_err(g->prefix, "unknown subcommand '%s %s' (expected %s)", word, s,
                         g->list);
}

/* ------------------------------------------------------------------ */
/* names */

#define LABEL_RULE                                                                        \
    "must be a DNS-1123 label (1-63 characters of a-z, 0-9 and '-', starting and ending " \
    "with a letter or digit)"

int cli_check_label(const char *help_cmd, const char *what, const char *s)
{
    if (!harvbk_name_is_valid(s))
        return cli_usage_err(help_cmd, "invalid %s name '%s': %s", what, s, LABEL_RULE);
    return 0;
}

int cli_split_name(const char *help_cmd, const char *what, const char *arg, char *ns,
                   char *name)
{
    const char *slash = strchr(arg, '/');
    if (!slash || strchr(slash + 1, '/') || slash == arg || slash[1] == '\0')
        return cli_usage_err(help_cmd, "invalid name '%s': expected %s as NAMESPACE/NAME", arg,
                             what);
    size_t nslen = (size_t)(slash - arg);
    size_t nlen = strlen(slash + 1);
    char a[CLI_NAME_MAX], b[CLI_NAME_MAX];
    bool ok = nslen < CLI_NAME_MAX && nlen < CLI_NAME_MAX;
    if (ok) {
        memcpy(a, arg, nslen);
        a[nslen] = '\0';
        memcpy(b, slash + 1, nlen + 1);
        ok = harvbk_name_is_valid(a) && harvbk_name_is_valid(b);
    }
    if (!ok) {
        if (nslen >= CLI_NAME_MAX || nlen >= CLI_NAME_MAX)
            return cli_usage_err(help_cmd,
                                 "invalid name '%s': must be a DNS-1123 label on each side of "
                                 "the '/' (at most 63 characters each)",
                                 arg);
        return cli_usage_err(help_cmd,
                             "invalid name '%s': must be a DNS-1123 label on each side of the "
                             "'/' (1-63 characters of a-z, 0-9 and '-', starting and ending "
                             "with a letter or digit); the %s '%s' is not",
                             arg, harvbk_name_is_valid(a) ? "name" : "namespace",
                             harvbk_name_is_valid(a) ? b : a);
    }
    memcpy(ns, a, nslen + 1);
    memcpy(name, b, nlen + 1);
    return 0;
}

/* ------------------------------------------------------------------ */
/* numbers, sizes, time */

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool cli_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == s)
        return false;
    char num[32];
    size_t n = (size_t)(p - s);
    if (n >= sizeof num)
        return false;
    memcpy(num, s, n);
    num[n] = '\0';
    uint64_t v;
    if (!cli_parse_u64(num, &v))
        return false;
    unsigned shift = 0;
    if (*p) {
        switch (*p) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 'b': case 'B': shift = 0; break;
        default: return false;
        }
        p++;
        if (shift && (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0 || strcmp(p, "ib") == 0 ||
                      strcmp(p, "b") == 0))
            p += strlen(p);
        if (*p)
            return false;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

bool cli_parse_seconds_ms(const char *s, uint64_t *out_ms)
{
    if (!s || !*s)
        return false;
    uint64_t whole = 0, frac_ms = 0;
    const char *dot = strchr(s, '.');
    char ip[32];
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    if (n == 0 || n >= sizeof ip)
        return false;
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (!cli_parse_u64(ip, &whole))
        return false;
    if (dot) {
        const char *f = dot + 1;
        if (!*f)
            return false;
        uint64_t scale = 100;
        for (; *f; f++) {
            if (*f < '0' || *f > '9')
                return false;
            frac_ms += (uint64_t)(*f - '0') * scale;
            scale /= 10;
        }
    }
    if (whole > UINT64_MAX / 1000 - 1)
        return false;
    *out_ms = whole * 1000 + frac_ms;
    return true;
}

const char *cli_fmt_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

const char *cli_fmt_rate(uint64_t bytes, double seconds, char *buf, size_t size)
{
    if (seconds < 0.001)
        seconds = 0.001;
    snprintf(buf, size, "%.1f MB/s", (double)bytes / seconds / 1e6);
    return buf;
}

const char *cli_fmt_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "-");
    return buf;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t cli_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n decimal digits at *p (advanced); false when fewer. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool cli_parse_rfc3339(const char *s, int64_t *out_ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s)
        return false;
    const char *p = s;
    int y, mo, d, h, mi, sec, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &sec))
        return false;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        for (int scale = 100; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale; /* beyond ms: dropped (scale 0) */
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if ((*p == '+' || *p == '-') && strcmp(p + 1, "00:00") == 0)
        p += 6;
    else
        return false;
    if (*p)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || sec > 59)
        return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    *out_ms = secs * 1000 + ms;
    return true;
}

/* ------------------------------------------------------------------ */
/* files */

int cli_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return EISDIR;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                cli_wipe(buf, len);
                free(buf);
                close(fd);
                return EFBIG;
            }
            size_t ncap = cap * 2 > max ? max : cap * 2;
            char *nb = malloc(ncap + 1); /* not realloc: secrets must not linger */
            if (!nb) {
                cli_wipe(buf, len);
                free(buf);
                close(fd);
                return ENOMEM;
            }
            memcpy(nb, buf, len);
            cli_wipe(buf, len);
            free(buf);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            cli_wipe(buf, len);
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max) {
            cli_wipe(buf, len);
            free(buf);
            close(fd);
            return EFBIG;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    return 0;
}

char *cli_abspath(const char *path)
{
    if (!path || !*path)
        return NULL;
    char *r = realpath(path, NULL);
    if (r)
        return r;
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", cwd, path);
    free(cwd);
    return out;
}

int cli_mkdirs(const char *path, unsigned mode)
{
    char *p = strdup(path);
    if (!p)
        return ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return e;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST)
        rc = errno;
    free(p);
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            rc = errno;
        else if (!S_ISDIR(st.st_mode))
            rc = ENOTDIR;
    }
    return rc;
}

static int g_rm_err;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = (flag == FTW_DP || flag == FTW_D) ? rmdir(path) : unlink(path);
    if (r != 0 && errno != ENOENT && g_rm_err == 0)
        g_rm_err = errno;
    return 0;
}

int cli_remove_tree(const char *path)
{
    g_rm_err = 0;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT && g_rm_err == 0)
        g_rm_err = errno;
    return g_rm_err;
}

void cli_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

/* ------------------------------------------------------------------ */
/* JSON */

int cli_print_json(struct cJSON *item)
{
    if (!item) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    char *s = cJSON_Print(item);
    cJSON_Delete(item);
    if (!s) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    cJSON_free(s);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* context */

harvbk_ctx *cli_open_ctx(const cli_env *env)
{
    harvbk_ctx_options o;
    harvbk_ctx_options_init(&o, HARVBK_CTX_OPTIONS_VERSION);
    if (env->verbose > 0) {
        o.log_cb = cli_log_cb;
        o.log_level = env->verbose > 1 ? HARVBK_LOG_DEBUG : HARVBK_LOG_INFO;
    } else {
        o.log_cb = NULL;
    }
    harvbk_ctx *ctx = NULL;
    int rc = harvbk_ctx_open(&ctx, env->state_dir, &o);
    if (rc != 0) {
        /* no context holds the reason: the thread's last error does */
        const char *why = harvbk_error_last();
        if (strstr(why, "state directory"))
            cli_err("%s", why);
        else
            cli_err("cannot open state directory '%s': %s", env->state_dir,
                    why[0] ? why : harvbk_strerror(rc));
        return NULL;
    }
    return ctx;
}

int cli_read_secret(const char *path, char **out)
{
    size_t len = 0;
    *out = NULL;
    /* a secret that group or others may read is not a secret: refuse it
     * before reading a byte (the library's rule for key files too) */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & (S_IRWXG | S_IRWXO)))
        return EPERM;
    int err = cli_read_file(path, 4096, out, &len);
    if (err)
        return err;
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' ||
                       (*out)[len - 1] == ' ' || (*out)[len - 1] == '\t'))
        (*out)[--len] = '\0';
    if (len == 0) {
        free(*out);
        *out = NULL;
        return ENODATA;
    }
    return 0;
}

const char *cli_secret_error(int err)
{
    switch (err) {
    case ENODATA:
        return "the file is empty";
    case EFBIG:
        return "file too large for a secret";
    case EPERM:
        return "it is accessible by group or others; make it private to its owner (chmod 600)";
    default:
        return strerror(err);
    }
}

/* The target's key for this process (--key-file / --passphrase-file, i.e.
 * $HARVBK_KEY_FILE / $HARVBK_PASSPHRASE_FILE): harvbk_ctx_set_target_key. */
static int session_key(harvbk_ctx *ctx, const char *what)
{
    harvbk_key *key = NULL;
    int rc = cli_env_key(&key, what);
    if (rc || !key)
        return rc;
    rc = harvbk_ctx_set_target_key(ctx, key);
    harvbk_key_free(key);
    if (rc != 0) {
        char buf[1200];
        snprintf(buf, sizeof buf, "%s: using the key given for this command", what);
        cli_fail_ctx(ctx, rc, buf);
    }
    return rc;
}

int cli_env_key(harvbk_key **out, const char *what)
{
    *out = NULL;
    const char *kf = getenv("HARVBK_KEY_FILE"), *pf = getenv("HARVBK_PASSPHRASE_FILE");
    if (kf && !*kf)
        kf = NULL;
    if (pf && !*pf)
        pf = NULL;
    if (!kf && !pf)
        return 0;
    if (kf && pf) {
        cli_err("%s: give a key file or a passphrase file, not both", what);
        return HARVBK_E_INVALID;
    }
    int rc = kf ? harvbk_key_from_file(out, kf) : harvbk_key_from_passphrase_file(out, pf);
    if (rc != 0)
        cli_err("%s: %s", what, harvbk_error_last());
    return rc;
}

int cli_session_secret(harvbk_ctx *ctx, const char *what)
{
    harvbk_target_config *cfg = NULL;
    int rc = harvbk_ctx_get_target(ctx, &cfg);
    if (rc != 0)
        return 0; /* no target: the command reports it when it matters */
    if ((rc = session_key(ctx, what)) != 0) {
        harvbk_target_config_free(cfg);
        return rc;
    }
    char url[16], stored[8];
    harvbk_target_config_get(cfg, HARVBK_TARGET_URL, url, sizeof url, NULL);
    harvbk_target_config_get(cfg, HARVBK_TARGET_STORE_SECRET, stored, sizeof stored, NULL);
    harvbk_target_config_free(cfg);
    if (strncmp(url, "s3://", 5) != 0)
        return 0;
    /* --secret-access-key-file (or $HARVBK_SECRET_ACCESS_KEY_FILE) always wins;
     * $AWS_SECRET_ACCESS_KEY only stands in for a secret that was not stored */
    const char *file = getenv("HARVBK_SECRET_ACCESS_KEY_FILE");
    const char *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
    char *secret = NULL;
    const char *src;
    char buf[1200];
    if (file && *file) {
        int err = cli_read_secret(file, &secret);
        if (err) {
            cli_err("%s: cannot read secret access key file '%s': %s", what, file,
                    cli_secret_error(err));
            return err == EPERM ? HARVBK_E_PERM : HARVBK_E_INVALID;
        }
        src = "the secret access key file";
    } else if (strcmp(stored, "1") != 0 && env_secret && *env_secret) {
        secret = strdup(env_secret);
        if (!secret) {
            cli_err("%s: out of memory", what);
            return HARVBK_E_NOMEM;
        }
        src = "$AWS_SECRET_ACCESS_KEY";
    } else {
        return 0;
    }
    rc = harvbk_ctx_set_target_secret(ctx, secret);
    cli_wipe(secret, strlen(secret));
    free(secret);
    if (rc != 0) {
        snprintf(buf, sizeof buf, "%s: using the secret from %s", what, src);
        cli_fail_ctx(ctx, rc, buf);
        return rc;
    }
    return 0;
}
