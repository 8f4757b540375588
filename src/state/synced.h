/*
 * state/synced.h - the synced backup catalog in the state directory
 * (docs/CATALOG.md is the reference).
 *
 *   <state>/catalog/backups.json   the catalog: what the last sync found in the
 *                                  target, plus the entries this context added
 *                                  since (its own Ready backups, forgets,
 *                                  pending deletions); format 1
 *   <state>/catalog/backups.lock   flock: serialises read-modify-write cycles
 *                                  of every thread and process on the state dir
 *
 * The file is replaced whole and atomically (temporary + fsync + rename +
 * directory fsync), so a reader (or a process killed at any instant) sees the
 * previous catalog or the new one. A catalog that cannot be read is reported
 * as HARVBK_E_CORRUPT (or HARVBK_E_FORMAT when newer); callers then start from
 * an empty one, which the next sync fills again.
 *
 * This layer knows files only: it takes the state directory and a logger,
 * never a context, and talks to no target.
 */
#ifndef HB_STATE_SYNCED_H
#define HB_STATE_SYNCED_H

#include "../core/hb.h"

#define HB_SYNCED_DIR "catalog"
#define HB_SYNCED_FILE "backups.json"
#define HB_SYNCED_LOCK "backups.lock"
#define HB_SYNCED_FORMAT 1
/* Largest catalog file read (about 300 bytes per backup: millions fit). */
#define HB_SYNCED_MAX (512u * 1024u * 1024u)

typedef struct hb_synced_vol {
    char *name;
    uint64_t size;
    char capture[HB_CAPTURE_MAX]; /* how it was captured; "": none */
} hb_synced_vol;

/* What the listing said about a manifest object: its size and modification
 * time. mtime 0 = not known yet (an entry this context added when its own
 * backup became Ready): the next sync adopts the listed fingerprint when the
 * size matches, without reading the manifest. */
typedef struct hb_synced_fp {
    uint64_t size;
    int64_t mtime;
} hb_synced_fp;

typedef struct hb_synced_entry {
    char *ns, *name, *vm_ns, *vm_name;
    char *writer;           /* context id that wrote it ("" when unknown) */
    char *schedule;         /* the schedule that made it; NULL: none */
    char *error;            /* "" or why it is not usable (unreadable manifest,
                               missing index) */
    bool unreadable;        /* the manifest could not be parsed (error says why) */
    bool index_missing;     /* a volume index was absent at the last sync */
    bool delete_pending;    /* deleted while the target was unreachable */
    bool crash_consistent;
    bool thaw_failed;       /* its thaw hook failed */
    hb_freeze_rec freeze;   /* how long frozen, how captured */
    int64_t created;        /* seconds */
    int64_t completed_ms;
    uint64_t logical, uploaded;
    hb_synced_vol *vols;
    size_t nvols;
    hb_synced_fp fp;        /* of the manifest object */
    int64_t added_ms;       /* when it entered (or last changed in) the catalog */
    int64_t gone_ms;        /* 0, or the sync that found its manifest gone */
} hb_synced_entry;

/* A forgotten backup: a sync skips a manifest with this fingerprint. */
typedef struct hb_synced_tomb {
    char *ns, *name;
    hb_synced_fp fp;
    int64_t forgotten_ms;
} hb_synced_tomb;

typedef struct hb_synced {
    char *target;           /* display URL of the target it describes ("" none) */
    char *store_id;         /* id of the store in that target ("" none) */
    int64_t synced_at_ms;   /* last successful sync, 0 never */
    hb_synced_entry *v;     /* sorted by ns, then name */
    size_t n, cap;
    hb_synced_tomb *t;      /* sorted by ns, then name */
    size_t nt, capt;
} hb_synced;

void hb_synced_init(hb_synced *c);
void hb_synced_clear(hb_synced *c);
void hb_synced_entry_clear(hb_synced_entry *x);
/* Deep copy (dst is overwritten). */
int hb_synced_entry_copy(hb_synced_entry *dst, const hb_synced_entry *src);

/* Load <dir>/catalog/backups.json into c (initialised here). Absent: 0 with
 * an empty catalog. Unreadable: HARVBK_E_CORRUPT / HARVBK_E_FORMAT / HARVBK_E_IO
 * with a message naming the file; c is then empty. */
int hb_synced_load(const char *dir, hb_synced *c, hb_err *e);
/* Decode the text of a catalog file (`path` names it in messages) into c
 * (initialised here; empty on failure): the errors of hb_synced_load. */
int hb_synced_decode(const void *data, size_t len, const char *path, hb_synced *c, hb_err *e);
/* Write c atomically (creates catalog/). */
int hb_synced_save(const char *dir, const hb_synced *c, hb_err *e);

/* Exclusive flock on <dir>/catalog/backups.lock (blocking). */
int hb_synced_lock(const char *dir, int *out_fd, hb_err *e);
void hb_synced_unlock(int fd);

/* Read-modify-write under the lock: load (an unreadable catalog is logged as
 * a warning and replaced by an empty one), call fn; when fn returns 1 the
 * catalog is saved, 0 leaves the file alone, < 0 is an error (not saved). */
typedef int (*hb_synced_edit_fn)(hb_synced *c, void *ud, hb_err *e);
int hb_synced_update(const char *dir, const hb_logger *log, hb_synced_edit_fn fn, void *ud,
                     hb_err *e);

/* Lookups and edits of a loaded catalog (kept sorted). */
hb_synced_entry *hb_synced_find(const hb_synced *c, const char *ns, const char *name);
/* Insert or replace by ns/name; takes over x's contents (x is zeroed). */
int hb_synced_put(hb_synced *c, hb_synced_entry *x);
/* Remove ns/name; true when it was there. */
bool hb_synced_remove(hb_synced *c, const char *ns, const char *name);
hb_synced_tomb *hb_synced_tomb_find(const hb_synced *c, const char *ns, const char *name);
int hb_synced_tomb_put(hb_synced *c, const char *ns, const char *name, hb_synced_fp fp,
                       int64_t now_ms);
bool hb_synced_tomb_remove(hb_synced *c, const char *ns, const char *name);
/* Drop every entry and tombstone (another store), keep nothing. */
void hb_synced_reset(hb_synced *c);

/* Is the listed fingerprint `listed` the one recorded (`have`)? An unknown
 * mtime (0) in `have` matches on size alone. */
static inline bool hb_synced_fp_same(hb_synced_fp have, hb_synced_fp listed)
{
    return have.size == listed.size && (have.mtime == 0 || have.mtime == listed.mtime);
}

#endif
