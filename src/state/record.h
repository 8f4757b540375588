/* state/record.h - local backup and snapshot records (record.c):
 * "backups/<ns>/<name>.json" and "snapshots/<ns>/<name>.json". */
#ifndef HB_STATE_RECORD_H
#define HB_STATE_RECORD_H

#include "state.h"

typedef struct hb_record_volume {
    char *name;
    uint64_t size;
    char capture[HB_CAPTURE_MAX]; /* how it was captured; "": none */
} hb_record_volume;

typedef struct hb_record {
    int kind;                   /* enum hb_entry_kind; not stored in the file */
    char *ns, *name, *vm_ns, *vm_name;
    int state;                  /* harvbk_state */
    char *error;                /* "" when none */
    int error_code;
    int64_t created;
    uint64_t logical_bytes, uploaded_bytes, progress_bytes;
    char *owner, *store_id;
    bool crash_consistent;
    bool thaw_failed;           /* the thaw hook returned non-zero */
    hb_freeze_rec freeze;       /* how long frozen, how captured */
    char *schedule;             /* the schedule making it; NULL: none */
    /* recovery made it Error without being able to look for its manifest
     * (the writer may have died after its commit): checked when its store
     * is next opened ("commit_unknown" in the file) */
    bool commit_unknown;
    hb_record_volume *vols;
    size_t nvols;
} hb_record;

void hb_record_clear(hb_record *r);
int hb_record_set_error(hb_record *r, int code, const char *msg);
/* A record's JSON text (new string, NULL on OOM) and back (strict:
 * HARVBK_E_CORRUPT naming the field; r is cleared first). */
char *hb_record_encode(const hb_record *r);
int hb_record_decode(const void *data, size_t len, hb_record *r, hb_err *e);
int hb_record_read(hb_state *s, const char *ns, const char *name, hb_record *r, hb_err *e);
int hb_record_write(hb_state *s, const hb_record *r, hb_err *e);
int hb_record_remove(hb_state *s, const char *ns, const char *name, hb_err *e);
/* Calls cb for every readable record (unreadable ones are logged and skipped).
 * The record is cleared after cb returns; a non-zero cb return stops. */
typedef int (*hb_record_cb)(hb_record *r, void *ud);
int hb_record_foreach(hb_state *s, hb_record_cb cb, void *ud, hb_err *e);
/* The same for records of an entry kind (snapshots: "snapshots/<ns>/<name>.json";
 * hb_record_write() uses r->kind). */
int hb_record_read_k(hb_state *s, int kind, const char *ns, const char *name, hb_record *r,
                     hb_err *e);
int hb_record_remove_k(hb_state *s, int kind, const char *ns, const char *name, hb_err *e);
int hb_record_foreach_k(hb_state *s, int kind, hb_record_cb cb, void *ud, hb_err *e);

#endif
