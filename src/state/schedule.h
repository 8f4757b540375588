/*
 * state/schedule.h - schedule records in the state directory and their locks.
 *
 *   <state>/schedules/<ns>/<name>.json          the record (atomic rewrite)
 *   <state>/locks/schedule_<ns>_<name>.lock     short exclusive flock around
 *                                               every read-modify-write
 *   <state>/locks/schedule_<ns>_<name>.run.lock exclusive flock held by the
 *                                               process running a firing
 *
 * docs/SCHEDULES.md describes the record. This file only reads and writes it;
 * the rules (validation, when a firing is due, retention) live in ops.
 * Depends on core only.
 */
#ifndef HB_STATE_SCHEDULE_H
#define HB_STATE_SCHEDULE_H

#include "../core/hb.h"

#define HB_SCHEDULES_DIR "schedules"
#define HB_SCHED_FORMAT 1
/* History items kept besides those whose entries still exist. */
#define HB_SCHED_HISTORY_KEEP 32u
/* Largest record file accepted. */
#define HB_SCHED_FILE_MAX (1024u * 1024u)

/* State of a history item (the names are those of docs/SCHEDULES.md). */
enum hb_sched_item_state {
    HB_SI_RUNNING = 0, /* "InProgress" */
    HB_SI_READY = 1,   /* "Ready" */
    HB_SI_ERROR = 2,   /* "Error" */
    HB_SI_SKIPPED = 3, /* "Skipped": the previous firing was still running */
    HB_SI_CANCELLED = 4 /* "Cancelled": the runner was stopped (not a failure) */
};
const char *hb_sched_item_state_name(int s);

typedef struct hb_sched_item {
    char *entry;        /* backup/snapshot name; "" for a skipped firing */
    int64_t planned;    /* ms since the epoch, the cron time of the firing */
    int64_t started, finished; /* ms, 0 when not (yet) */
    int state;          /* enum hb_sched_item_state */
    int code;           /* HARVBK_E_* of an Error, else 0 */
    char *error;        /* message, "" when none */
    uint32_t missed;    /* firings skipped by downtime before this one */
    bool deleted;       /* the entry was deleted (retention or failure clean-up) */
} hb_sched_item;

typedef struct hb_sched_rec {
    char *ns, *name;
    int type;           /* HARVBK_SCHEDULE_BACKUP / _SNAPSHOT */
    char *vm_ns, *vm_name;
    char *cron;
    uint32_t retain, max_failure;
    uint32_t deadline_s; /* 0: until the next firing */
    bool skip_interval_check;
    bool suspended;
    char *suspend_reason; /* "" when not suspended */
    char *suspended_by;   /* "user", "max-failure", "maintenance"; "" */
    uint32_t consecutive_failures;
    int64_t created;      /* ms */
    int64_t last_planned; /* ms: latest firing handled (run or skipped); creation time at first */
    hb_sched_item *hist;
    size_t nhist, caphist;
} hb_sched_rec;

void hb_sched_rec_clear(hb_sched_rec *r);
/* Append a history item (strings copied); returns its index or < 0. */
int hb_sched_rec_push(hb_sched_rec *r, const char *entry, int64_t planned, int state,
                      uint32_t missed);
int hb_sched_item_set_error(hb_sched_item *it, int code, const char *msg);
/* Drop the oldest items that no longer matter (skipped, cancelled, deleted
 * ones) beyond HB_SCHED_HISTORY_KEEP. */
void hb_sched_rec_trim(hb_sched_rec *r);

/* JSON text (new string) and back (strict: HARVBK_E_CORRUPT naming the field). */
char *hb_sched_encode(const hb_sched_rec *r);
int hb_sched_decode(const void *data, size_t len, hb_sched_rec *r, hb_err *e);

/* Read / write / remove the record of ns/name in state directory `dir`.
 * read: HARVBK_E_NOTFOUND when absent. */
int hb_sched_read(const char *dir, const char *ns, const char *name, hb_sched_rec *r, hb_err *e);
int hb_sched_write(const char *dir, const hb_sched_rec *r, hb_err *e);
int hb_sched_remove(const char *dir, const char *ns, const char *name, hb_err *e);
/* Every schedule, sorted by namespace then name, into *out (hb_free it). */
typedef struct hb_sched_id {
    char ns[64], name[64];
} hb_sched_id;
int hb_sched_list(const char *dir, hb_sched_id **out, size_t *n, hb_err *e);

/* Record lock: blocking exclusive flock (milliseconds at most; every holder
 * only reads and rewrites the record). Returns the fd in *out_fd. */
int hb_sched_lock(const char *dir, const char *ns, const char *name, int *out_fd, hb_err *e);
/* Run lock: non-blocking; HARVBK_E_BUSY when another open file holds it. */
int hb_sched_run_lock_try(const char *dir, const char *ns, const char *name, int *out_fd,
                          hb_err *e);
/* The lock of the whole schedule set (create/update: one schedule per VM,
 * 10 minutes apart), blocking: <state>/locks/schedules.lock. */
int hb_sched_global_lock(const char *dir, int *out_fd, hb_err *e);
void hb_sched_unlock(int fd);

/* "NAME-YYYYMMDD-HHMM" of planned time ms (UTC) into out; false when it would
 * not be a valid name. */
bool hb_sched_entry_name(const char *name, int64_t planned_ms, char *out, size_t size);

#endif
