/* state/rjournal.h - restore journals in the state directory,
 * "restores/<ns>/<name>.json": new-VM restores (rjournal.c) and
 * replace-restores (rreplace.c). */
#ifndef HB_STATE_RJOURNAL_H
#define HB_STATE_RJOURNAL_H

#include "state.h"

/* ---- restore journals (rjournal.c) ----
 * "restores/<ns>/<name>.json" in the state directory records the files a
 * restore into new VM ns/name creates, so that the leftovers of a restore
 * whose process died (kill -9) can be removed: partial files always, and
 * volumes already moved into place unless the VM was registered. The writer
 * holds hb_restore_lock_try() while the journal exists. */
typedef struct hb_rj_volume {
    const char *name;            /* volume name */
    const char *part, *final;    /* DIR/.<name>.raw.part-<hex>, DIR/<name>.raw */
    uint64_t dev, ino;           /* of the part file, once written (phase "rename") */
} hb_rj_volume;
typedef struct hb_rjournal {
    const char *ns, *name;       /* the new VM */
    const char *dir;             /* absolute */
    bool renaming;               /* false: "write" phase, true: "rename" phase */
    const hb_rj_volume *vols;
    size_t n;
} hb_rjournal;
int hb_rjournal_write(hb_state *s, const hb_rjournal *j, hb_err *e);
/* Remove the journal of ns/name (absent is fine). */
int hb_rjournal_remove(hb_state *s, const char *ns, const char *name, hb_err *e);
/* With the restore lock of ns/name held: undo what the journal of a dead
 * restore into ns/name describes, then remove the journal. 0 when there was
 * none or it was recovered. */
int hb_rjournal_recover(hb_state *s, const char *ns, const char *name, hb_err *e);
/* At open: recover every journal whose restore lock nobody holds. */
int hb_rjournal_scan(hb_state *s, hb_err *e);
/* "<state>/restores/<ns>/<name>.json" (new string). */
char *hb_rjournal_path(hb_state *s, const char *ns, const char *name);

/* ---- replace-restores (rreplace.c) ----
 * The same journal file, with "mode":"replace". Phases: "write" (only the
 * hidden partial files beside the old volumes exist), "swap" (every partial
 * file is complete and verified; old volumes are being moved aside and the
 * new ones moved into place), "commit" (all swapped; the journal holds the
 * VM's new catalog entry). Recovery rolls "write" and "swap" back (the old
 * volumes are put back where they were) and "commit" forward. */
typedef struct hb_rr_vol {
    const char *name;
    const char *part;            /* DIR/.<file>.restore-<hex> */
    const char *final;           /* the volume's path */
    const char *aside;           /* DIR/.<file>.old-<hex>, NULL: no old file */
    const char *retain;          /* retain policy: <final>.retained-<UTC time> */
    uint64_t dev, ino;           /* of the part file once written */
} hb_rr_vol;
typedef struct hb_rr_drop {      /* a previous volume the source lacks */
    const char *path;
    const char *retain;          /* retain policy */
} hb_rr_drop;
typedef struct hb_rrjournal {
    const char *ns, *name;
    const char *phase;
    bool retain;
    const hb_rr_vol *vols;
    size_t n;
    const hb_rr_drop *drops;
    size_t ndrops;
    const char *vm_json;         /* phase "commit": the new catalog entry */
} hb_rrjournal;
int hb_rrjournal_write(hb_state *s, const hb_rrjournal *j, hb_err *e);
/* Move each old volume aside and the new one into place. */
int hb_rr_swap(hb_state *s, const hb_rrjournal *j, hb_err *e);
/* Undo phases "write"/"swap": partial files removed, old volumes back in place. */
int hb_rr_rollback(hb_state *s, const hb_rrjournal *j, hb_err *e);
/* Phase "commit": register the new entry (under cat_mu), then delete or
 * retain the previous volumes (the retained paths are returned when the
 * pointers are not NULL). */
int hb_rr_finish(hb_state *s, const hb_rrjournal *j, char ***retained, size_t *nretained,
                 hb_err *e);
/* Recovery of a parsed replace journal of VM ns/name (restore lock held). */
struct cJSON;
int hb_rr_recover(hb_state *s, const char *ns, const char *name, const struct cJSON *root,
                  hb_err *e);

#endif
