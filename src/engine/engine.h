/*
 * engine/engine.h - the chunk pipelines.
 *
 * backup:  read -> hole/zero detect -> SHA-256 -> dedup -> compress -> store
 * restore: fetch -> decompress -> verify -> (writer threads) write (holes stay holes)
 * verify:  fetch -> decompress -> verify
 * gc:      mark (every manifest's indexes) and sweep (unreferenced chunks)
 * Each keeps at most about (threads * 2) chunks in memory (a restore: threads
 * + HB_ENGINE_RESTORE_WRITERS), whatever the volume size.
 */
#ifndef HB_ENGINE_H
#define HB_ENGINE_H

#include "../core/digestset.h"
#include "../core/hb.h"
#include "../store/store.h"
#include <stdatomic.h>

/* A volume as the engine sees it. Exactly one of: fd >= 0, path, callbacks. */
typedef struct hb_vol_io {
    const char *name;
    const char *path;                  /* file or block device */
    int fd;                            /* already open descriptor, or -1 */
    uint64_t size;                     /* required for callbacks; else from the file,
                                          and when non-zero and smaller than the file
                                          only that many bytes (a capture larger
                                          than its volume) */
    harvbk_volume_read_cb read_cb;
    harvbk_volume_write_cb write_cb;
    void *payload;
} hb_vol_io;

/* Sorted, merged byte ranges of one volume. */
typedef struct hb_range { uint64_t off, len; } hb_range;
typedef struct hb_rangeset { hb_range *r; size_t n; } hb_rangeset;
/* Does [off, off+len) intersect the set? */
bool hb_rangeset_overlaps(const hb_rangeset *rs, uint64_t off, uint64_t len);

typedef struct hb_job {
    hb_store *st;
    const hb_logger *log;
    unsigned threads;                  /* 0 = hb_default_threads() */
    atomic_int *cancel;                /* set non-zero to stop; may be NULL */
    /* Called with bytes just processed, from any worker thread but never
     * concurrently (the engine serialises it under a mutex, so it must be
     * quick and never block: the ops layer only adds to counters; the
     * caller's own progress hook runs on a thread of its own, ops/op.c).
     * Non-zero return cancels. May be NULL. */
    int (*progress)(uint64_t delta, void *ud);
    void *progress_ud;
    /* May be NULL. gc: the total of its progress, once its listing knows it. */
    void (*progress_total)(uint64_t total, void *ud);
    /* May be NULL. gc: before it deletes anything, so that a hook that says
     * stop there stops the sweep (returns once the hook was told). */
    void (*progress_flush)(void *ud);
    /* gc only, may be NULL: the gc lease the caller holds. gc checks it before
     * it deletes anything and stops with HARVBK_E_BUSY once it has lapsed (a
     * backup may have started meanwhile; docs/FORMAT.md section 9). */
    hb_lease *lease;
    /* backup only: hb_mono_ms() time after which the pipeline stops with
     * HARVBK_E_TIMEOUT and deadline_msg (checked where cancellation is:
     * before each chunk); 0: none. The freeze deadline of a backup. */
    uint64_t deadline_ms;
    const char *deadline_msg;
    /* backup only: the `known` set given to hb_engine_backup_volume holds
     * EVERY chunk of the store as of a listing taken under the writer lease
     * (hb_store_chunks_census, complete), so an id in neither it nor this
     * run's uploads is put without a head() first. */
    bool known_is_store;
} hb_job;

typedef struct hb_backup_stats {
    uint64_t read_bytes;               /* bytes read from the volume */
    uint64_t skipped_bytes;            /* not read: outside changed ranges */
    uint64_t hole_bytes;               /* not read: file holes */
    uint64_t zero_chunks;              /* read but all zeros: not stored */
    uint64_t new_chunks;               /* chunks written to the store */
    uint64_t uploaded_bytes;           /* stored bytes of those chunks */
    uint64_t reused_chunks;            /* already in the store */
} hb_backup_stats;

/*
 * Back up one volume into out (initialised by the engine for the volume size
 * and the store's chunk size). `prev` (may be NULL) is the previous backup's
 * index of this volume: with `changed` (may be NULL) the chunks outside the
 * changed ranges are copied from prev without reading, when they are known
 * to be in the store (else they are read like changed ones). `known` (may be
 * NULL) is a digest set shared across volumes of chunks known to be in the
 * store (the caller checked them); the engine adds what it writes. Without
 * `known`, prev's ids are taken as present (the caller vouches for them).
 * Cancelled: HARVBK_E_CANCELLED.
 * On success every chunk `out` references is durable and visible in the store
 * (new chunks are put deferred and a barrier runs at the end), so the caller
 * may write indexes and the manifest right away.
 */
int hb_engine_backup_volume(hb_job *job, const hb_vol_io *vol, const hb_index *prev,
                            const hb_rangeset *changed, hb_dset *known, hb_index *out,
                            hb_backup_stats *stats, hb_err *e);

/* Restore one volume from ix into vol (fd, path or write_cb). For fd/path the
 * file is truncated to the volume size first and holes/zero chunks are not
 * written, so the result is sparse. Missing/corrupt chunk: HARVBK_E_CHUNK with
 * the chunk and the volume name in the message; nothing unverified is written. */
int hb_engine_restore_volume(hb_job *job, const hb_index *ix, const hb_vol_io *vol, hb_err *e);

/* Verify every distinct chunk of ix (skipping those already in `checked`, which
 * may be NULL; verified ones are added). HARVBK_E_CHUNK names chunk + volume. */
int hb_engine_verify_volume(hb_job *job, const hb_index *ix, const char *volume,
                            hb_dset *checked, hb_err *e);

/* Mark and sweep the store: removes chunks no manifest of any kind references.
 * Caller holds the gc lease. */
typedef struct hb_gc_stats {
    uint64_t referenced_chunks, total_chunks, removed_chunks, removed_bytes;
} hb_gc_stats;
int hb_engine_gc(hb_job *job, hb_gc_stats *stats, hb_err *e);

#endif
