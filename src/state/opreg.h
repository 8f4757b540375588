/*
 * state/opreg.h - operations in progress, visible to every process on the
 * state directory, and the maintenance-mode file.
 *
 *   <state>/ops/<pid>-<16 hex>.json   one per running operation, holding
 *                                     {kind, what, pid, started}; its writer
 *                                     holds an exclusive flock on it until the
 *                                     operation ends, then removes it. A file
 *                                     nobody holds is a dead process's: listing
 *                                     removes it.
 *   <state>/maintenance.json          present while in maintenance mode:
 *                                     {format, since, suspended: ["ns/name"]}
 *
 * Ordering that makes maintenance safe: an operation registers first and then
 * checks for the maintenance file; entering writes the file first and then
 * lists the registered operations. Either the operation sees the file (and is
 * refused) or entering sees the operation. Depends on core only.
 */
#ifndef HB_STATE_OPREG_H
#define HB_STATE_OPREG_H

#include "../core/hb.h"

#define HB_OPS_DIR "ops"
#define HB_MAINTENANCE_FILE "maintenance.json"

typedef struct hb_opreg {
    int fd;       /* -1: not registered */
    char *path;
} hb_opreg;
#define HB_OPREG_INIT { -1, NULL }

/* Register an operation of `kind` ("backup", ...) described by `what`. */
int hb_opreg_add(const char *dir, const char *kind, const char *what, hb_opreg *out, hb_err *e);
void hb_opreg_remove(hb_opreg *r);

typedef struct hb_opinfo {
    char kind[32];
    char what[200];
    long pid;
    int64_t started; /* ms */
} hb_opinfo;
/* Every live registered operation (dead ones' files are removed). */
int hb_opreg_list(const char *dir, hb_opinfo **out, size_t *n, hb_err *e);

typedef struct hb_maint {
    int64_t since;
    char **suspended; /* "ns/name" */
    size_t nsuspended;
} hb_maint;
void hb_maint_clear(hb_maint *m);
/* 1 and *m filled when in maintenance mode, 0 when not, < 0 on error
 * (a damaged file counts as maintenance mode: 1 with what could be read). */
int hb_maint_read(const char *dir, hb_maint *m, hb_err *e);
int hb_maint_write(const char *dir, const hb_maint *m, hb_err *e);
int hb_maint_remove(const char *dir, hb_err *e);

#endif
