/*
 * ranges.h - loading the changed-ranges file (docs/CLI.md "Changed-ranges file").
 */
#ifndef HARVBK_CLI_RANGES_H
#define HARVBK_CLI_RANGES_H

#include "cli.h"

/*
 * Parse `path` ("-" = standard input) into a new harvbk_ranges (*out, caller
 * frees). Every VOLNAME must be a volume of `vm`. On a malformed line prints one
 * error naming the file and the line number and returns CLI_EXIT_USAGE; an
 * unreadable file is also CLI_EXIT_USAGE. *out_count / *out_bytes (may be NULL)
 * receive the number of ranges and their total length.
 */
int cli_ranges_load(const char *help_cmd, const char *path, const harvbk_vm *vm,
                    harvbk_ranges **out, uint64_t *out_count, uint64_t *out_bytes);

#endif
