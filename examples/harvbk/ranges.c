/*
 * ranges.c - the changed-ranges file of `harvbk backup create --changed-ranges`.
 *
 * One range per line: "VOLNAME OFFSET LENGTH" (decimal bytes, separated by
 * spaces or tabs). '#' starts a comment (to the end of the line); blank lines
 * are ignored; ranges of length 0 are ignored. "-" reads standard input.
 *
 * A line is at most RANGES_LINE_MAX bytes (its newline not counted): a longer
 * one is an error naming the line, so that input that never ends a line
 * (/dev/zero) fails at once instead of being read into memory, and every read
 * error is an error - never taken for the end of the file, which would drop
 * the ranges after it and leave stale bytes in the backup.
 */
#define _GNU_SOURCE
#include "ranges.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RANGES_LINE_MAX 4096

enum { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NUL, LINE_ERROR };

/* Read one line (without its newline) into buf (RANGES_LINE_MAX + 1 bytes,
 * NUL-terminated). A last line without a newline is a line. LINE_ERROR leaves
 * errno set. */
static int read_line(FILE *f, char *buf)
{
    size_t n = 0;
    bool nul = false;
    for (;;) {
        int c = getc_unlocked(f);
        if (c == EOF) {
            if (ferror(f))
                return LINE_ERROR;
            if (n == 0)
                return LINE_EOF;
            break; /* last line, no newline */
        }
        if (c == '\n')
            break;
        if (n == RANGES_LINE_MAX)
            return LINE_TOO_LONG;
        if (c == '\0')
            nul = true;
        buf[n++] = (char)c;
    }
    buf[n] = '\0';
    return nul ? LINE_NUL : LINE_OK;
}

static bool vm_has_volume(const harvbk_vm *vm, const char *vol)
{
    size_t n = harvbk_vm_volume_count(vm);
    for (size_t i = 0; i < n; i++)
        if (strcmp(harvbk_vm_volume_name(vm, i), vol) == 0)
            return true;
    return false;
}

static void volume_names(const harvbk_vm *vm, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t n = harvbk_vm_volume_count(vm), used = 0;
    for (size_t i = 0; i < n && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                         harvbk_vm_volume_name(vm, i));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int cli_ranges_load(const char *help_cmd, const char *path, const harvbk_vm *vm,
                    harvbk_ranges **out, uint64_t *out_count, uint64_t *out_bytes)
{
    *out = NULL;
    bool is_stdin = strcmp(path, "-") == 0;
    const char *shown = is_stdin ? "(standard input)" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f) {
        return cli_usage_err(help_cmd, "cannot read changed-ranges file '%s': %s", path,
                             strerror(errno));
    }
    harvbk_ranges *r = NULL;
    int rc = harvbk_ranges_new(&r);
    if (rc != 0) {
        if (!is_stdin)
            fclose(f);
        cli_err("changed ranges: %s", harvbk_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    char *line = malloc(RANGES_LINE_MAX + 1);
    if (!line) {
        if (!is_stdin)
            fclose(f);
        harvbk_ranges_free(r);
        cli_err("changed ranges: %s", strerror(ENOMEM));
        return CLI_EXIT_FAIL;
    }
    unsigned long lineno = 0;
    uint64_t count = 0, bytes = 0;
    int ex = 0;
    for (;;) {
        errno = 0;
        int got = read_line(f, line);
        if (got == LINE_EOF)
            break;
        lineno++;
        if (got == LINE_ERROR) {
            int err = errno ? errno : EIO;
            ex = cli_usage_err(help_cmd, "cannot read changed-ranges file '%s' at line %lu: %s",
                               shown, lineno, strerror(err));
            break;
        }
        if (got == LINE_TOO_LONG) {
            ex = cli_usage_err(help_cmd,
                               "changed-ranges file '%s' line %lu: longer than %d bytes", shown,
                               lineno, RANGES_LINE_MAX);
            break;
        }
        if (got == LINE_NUL) {
            ex = cli_usage_err(help_cmd, "changed-ranges file '%s' line %lu: contains a NUL byte",
                               shown, lineno);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *f1 = strtok_r(line, " \t\r\n", &save);
        if (!f1)
            continue; /* blank or comment */
        char *f2 = strtok_r(NULL, " \t\r\n", &save);
        char *f3 = f2 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        char *f4 = f3 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!f3 || f4) {
            ex = cli_usage_err(help_cmd,
                               "changed-ranges file '%s' line %lu: expected 'VOLNAME OFFSET "
                               "LENGTH' (3 fields)",
                               shown, lineno);
            break;
        }
        if (!vm_has_volume(vm, f1)) {
            char names[512];
            volume_names(vm, names, sizeof names);
            ex = cli_usage_err(help_cmd,
                               "changed-ranges file '%s' line %lu: '%s' is not a volume of "
                               "VM %s/%s (volumes: %s)",
                               shown, lineno, f1, harvbk_vm_namespace(vm), harvbk_vm_name(vm),
                               names);
            break;
        }
        uint64_t off, n;
        if (!cli_parse_u64(f2, &off)) {
            ex = cli_usage_err(help_cmd,
                               "changed-ranges file '%s' line %lu: OFFSET '%s' is not a "
                               "decimal number of bytes",
                               shown, lineno, f2);
            break;
        }
        if (!cli_parse_u64(f3, &n)) {
            ex = cli_usage_err(help_cmd,
                               "changed-ranges file '%s' line %lu: LENGTH '%s' is not a "
                               "decimal number of bytes",
                               shown, lineno, f3);
            break;
        }
        if (n > UINT64_MAX - off) {
            ex = cli_usage_err(help_cmd,
                               "changed-ranges file '%s' line %lu: OFFSET + LENGTH overflows",
                               shown, lineno);
            break;
        }
        if (n == 0)
            continue;
        rc = harvbk_ranges_add(r, f1, off, n);
        if (rc != 0) {
            if (rc == HARVBK_E_INVALID)
                ex = cli_usage_err(help_cmd, "changed-ranges file '%s' line %lu: range refused: %s",
                                   shown, lineno, harvbk_strerror(rc));
            else {
                cli_err("changed-ranges file '%s' line %lu: %s", shown, lineno,
                        harvbk_strerror(rc));
                ex = CLI_EXIT_FAIL;
            }
            break;
        }
        count++;
        bytes += n;
    }
    free(line);
    if (!is_stdin)
        fclose(f);
    if (ex) {
        harvbk_ranges_free(r);
        return ex;
    }
    *out = r;
    if (out_count)
        *out_count = count;
    if (out_bytes)
        *out_bytes = bytes;
    return 0;
}
