/*
 * target/target.h - the byte-level backend interface behind every store.
 *
 * A target is a flat namespace of objects named by keys: relative paths of
 * '/'-separated segments ("chunks/ab/cd/<hex>", "backups/ns/name/manifest.json").
 * The interface is the lowest common denominator of a local directory, NFS
 * (libnfs) and S3 so the store above never knows which one it talks to:
 *   - put() replaces an object atomically: readers see the old object or the
 *     complete new one, never a partial one (local/NFS: temp + rename; S3: PUT).
 *   - there are no directories: they exist implicitly, list() is by prefix,
 *     recursive, and may be paged internally.
 *   - every call may be slow (network): callers keep several in flight from
 *     several threads. All functions must be safe to call concurrently.
 * Errors: HARVBK_E_NOTFOUND (absent object), HARVBK_E_TARGET (unreachable,
 * timeouts, server errors after retries), HARVBK_E_PERM, HARVBK_E_IO.
 */
#ifndef HB_TARGET_H
#define HB_TARGET_H

#include "../core/hb.h"
#include "config.h"

#include <stdatomic.h>

typedef struct hb_target hb_target;

/* list() callback: key relative to the target root, object size, mtime
 * (seconds since epoch, 0 when unknown). Return non-zero to stop listing
 * (list then returns that value). */
typedef int (*hb_list_cb)(const char *key, uint64_t size, int64_t mtime, void *ud);

typedef struct hb_target_ops {
    const char *scheme; /* "file", "nfs", "s3" */
    int (*put)(hb_target *t, const char *key, const void *data, size_t len, hb_err *e);
    /* Whole object into out (replacing its content). */
    int (*get)(hb_target *t, const char *key, hb_buf *out, hb_err *e);
    /* Existence and size; HARVBK_E_NOTFOUND when absent. */
    int (*head)(hb_target *t, const char *key, uint64_t *size, hb_err *e);
    /* Remove; an absent object is success. */
    int (*del)(hb_target *t, const char *key, hb_err *e);
    /* Remove many (S3: DeleteObjects batches). May be NULL: del() in a loop. */
    int (*del_many)(hb_target *t, const char *const *keys, size_t n, hb_err *e);
    /* All keys starting with prefix ("" = everything). */
    int (*list)(hb_target *t, const char *prefix, hb_list_cb cb, void *ud, hb_err *e);
    /* Remove temporary objects left by writer `owner` (a crashed process of
     * the same context) and any temporaries older than max_age_s. */
    int (*cleanup)(hb_target *t, const char *owner, int64_t max_age_s, hb_err *e);
    /* Check reachability (cheap request). */
    int (*ping)(hb_target *t, hb_err *e);
    void (*close)(hb_target *t);
    /* get() that refuses an object of more than max bytes with
     * HARVBK_E_CORRUPT before buffering more than max bytes (a damaged or
     * hostile target must not make readers allocate what it likes). May be
     * NULL: hb_target_get_max() then uses head() + get(). */
    int (*get_max)(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e);

    /* ---- deferred puts and the durability barrier (both optional) ----
     * put_deferred() is put() without the per-object durability cost: the
     * object need be neither durable nor visible (get/head/list may not see it)
     * until the next sync() returns 0; it never becomes visible in part or in
     * a form that is not durable (local: the temporary's data is made durable
     * before it is renamed into place, so a crash leaves either no object or
     * the complete one). Backends may make deferred objects durable and
     * visible earlier (e.g. when many are pending). May be NULL:
     * hb_target_put_deferred() then uses put().
     * sync() is the barrier: when it returns 0, every put_deferred() that
     * returned 0 before sync() was called is durable and visible at its key,
     * and so is every object this process saw at its key before the call
     * (another writer's object that was visible but not yet durable). When
     * pending objects cannot be made durable they are dropped (never renamed
     * into place), the backend adds their number to `lost` and the sync()
     * that found the failure returns the error. May be NULL (every put is
     * durable when it returns). */
    int (*put_deferred)(hb_target *t, const char *key, const void *data, size_t len, hb_err *e);
    int (*sync)(hb_target *t, hb_err *e);

    /* A hint: key will be read soon (a restore's next chunks). Starts
     * reading it in the background where that helps; reports nothing. May be
     * NULL. */
    void (*prefetch)(hb_target *t, const char *key);
} hb_target_ops;

struct hb_target {
    const hb_target_ops *ops;
    char *display;         /* URL without secrets, for messages */
    char *owner;           /* writer id used for temporaries: "<ctx-id>-<pid>" */
    const hb_logger *log;  /* borrowed from the context */
    unsigned parallel;     /* requests this backend wants in flight */
    /* Workers the engine runs at least, whatever the CPU count: network
     * backends set it to `parallel` (round trips are latency, not CPU); a
     * local directory leaves it 0 (the work is CPU-bound, so more workers than
     * CPUs only compete); an explicitly configured parallel always sets it. */
    unsigned min_workers;
    /* An explicitly configured `parallel` is also the most the engine runs
     * (HARVBK_TARGET_PARALLEL means "requests in flight"); 0 = no cap. */
    unsigned max_workers;
    /* Deferred puts dropped because they could not be made durable (only
     * grows; see put_deferred/sync). Backends add to it, wrappers read it. */
    atomic_uint_fast64_t lost;
    /* What one existence check (head) costs in listed objects: S3 lists 1000
     * keys per request, NFS some dozens per READDIRPLUS, a local directory
     * many per getdents. Chooses between listing and heads (0 = 1000). */
    unsigned list_per_head;
    /* HARVBK_TARGET_READ_ONLY: the wrappers below refuse every write (put,
     * put_deferred, del, del_many, cleanup) with HARVBK_E_READ_ONLY before
     * the backend sees it. Set by hb_target_open() from the configuration. */
    bool read_only;
};

/* Open the backend named by cfg->url. `owner` and `log` are borrowed.
 * HARVBK_E_UNSUPPORTED for unknown schemes or backends not in this build. */
int hb_target_open(hb_target **out, const hb_target_cfg *cfg, const char *owner,
                   const hb_logger *log, hb_err *e);
void hb_target_close(hb_target *t);

/* Convenience wrappers that dispatch through ops and prefix errors with the
 * target's display name and key. */
int hb_target_put(hb_target *t, const char *key, const void *data, size_t len, hb_err *e);
int hb_target_get(hb_target *t, const char *key, hb_buf *out, hb_err *e);
/* hb_target_get() for objects of a known maximum size: a larger object is
 * HARVBK_E_CORRUPT ("object is N bytes, more than the M expected") and is not
 * read. Use it for everything whose size a reader can bound. */
int hb_target_get_max(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e);
/* ops->prefetch (a hint, nothing reported; a no-op where the backend has none). */
void hb_target_prefetch(hb_target *t, const char *key);
int hb_target_head(hb_target *t, const char *key, uint64_t *size, hb_err *e);
int hb_target_del(hb_target *t, const char *key, hb_err *e);
int hb_target_del_many(hb_target *t, const char *const *keys, size_t n, hb_err *e);
int hb_target_list(hb_target *t, const char *prefix, hb_list_cb cb, void *ud, hb_err *e);
/* ops->cleanup (a no-op for backends without one); refused on a read-only target. */
int hb_target_cleanup(hb_target *t, const char *owner, int64_t max_age_s, hb_err *e);

/* Deferred puts (see put_deferred/sync above). A writer takes a token before
 * its first deferred put and passes it to hb_target_sync(), which runs the
 * barrier and then also fails (HARVBK_E_IO) when deferred puts were dropped
 * since the token was taken, by this call or by a concurrent one of another
 * writer sharing the target (so nobody commits a reference to an object
 * another writer's failed barrier dropped). Backends without these ops: puts
 * are synchronous and the barrier is a no-op. */
int hb_target_put_deferred(hb_target *t, const char *key, const void *data, size_t len,
                           hb_err *e);
uint64_t hb_target_sync_token(hb_target *t);
int hb_target_sync(hb_target *t, uint64_t token, hb_err *e);

/* Backend constructors (target/local.c; later nfs.c, s3.c). */
int hb_target_local_open(hb_target **out, const hb_target_cfg *cfg, hb_err *e);
/* S3 backend (target/s3.c, docs/S3.md). */
int hb_target_s3_open(hb_target **out, const hb_target_cfg *cfg, hb_err *e);
/* S3 backend counters (tests, benchmarks); false when t is not an S3 target. */
typedef struct hb_s3_stats {
    uint64_t requests, retries, puts, gets, heads, deletes, list_pages, multipart;
    uint64_t bytes_up, bytes_down;
} hb_s3_stats;
bool hb_target_s3_stats(hb_target *t, hb_s3_stats *out);
/* NFS backend through libnfs (target/nfs.c, docs/NFS.md). */
int hb_target_nfs_open(hb_target **out, const hb_target_cfg *cfg, hb_err *e);
/* The parts of the NFS backend that read what comes from outside without a
 * server (tests/fuzz feeds them directly):
 * the URL check of hb_target_nfs_open(): the server and the path (without
 * trailing '/') of an nfs:// URL, or HARVBK_E_INVALID / HARVBK_E_UNSUPPORTED
 * with open's message; */
int hb_nfs_url_parse(const char *url, char **server, char **path, hb_err *e);
/* what a listing does with the entry `name` (READDIRPLUS: is_dir, is_reg) of
 * the directory <root>/<rel> (rel "" or ending with '/') when it lists the
 * keys starting with prefix (plen = strlen(prefix)): HB_WALK_SKIP,
 * HB_WALK_DESCEND into *key (the directory's key + '/'), HB_WALK_EMIT the
 * key *key; HARVBK_E_NOMEM. The caller frees *key; */
enum { HB_WALK_SKIP = 0, HB_WALK_DESCEND = 1, HB_WALK_EMIT = 2 };
int hb_nfs_walk_entry(const char *rel, const char *name, bool is_dir, bool is_reg,
                      const char *prefix, size_t plen, char **key);
/* the export list of a MOUNT EXPORT answer (one directory per line) as
 * "a, b" ("none" when empty; NULL on OOM) for a message, and whether path is
 * at or below one of them (*under). */
char *hb_nfs_exports_text(const char *list, const char *path, bool *under);
/* NFS backend counters (tests, benchmarks); false when t is not an NFS target. */
typedef struct hb_nfs_stats {
    uint64_t connects, reconnects, retries, rpc_waits_timed_out;
} hb_nfs_stats;
bool hb_target_nfs_stats(hb_target *t, hb_nfs_stats *out);
/* Local backend counters (tests, logs): barriers run, syncfs() calls made,
 * deferred puts queued now. False when t is not a local target. */
bool hb_target_local_stats(hb_target *t, uint64_t *barriers, uint64_t *syncfs_calls,
                           size_t *pending);
/* Local backend: deferred bytes written between two device flushes of the
 * pre-flusher. Each flush slows the writers beyond its own cost (on a
 * virtual disk, seemingly the host's flush work on the CPUs they compress
 * on): flushing every 8 MiB made two threads compress ~9% slower, every
 * 32 MiB ~2%, and the barrier still finds at most 32 MiB left
 * (bench/RESULTS.md). */
#define HB_LOCAL_PREFLUSH_BYTES ((uint64_t)32 << 20)
/* Local backend (tests): device flushes the pre-flusher made (0 for others). */
uint64_t hb_target_local_preflushes(hb_target *t);
/* Local backend key resolution (tests): opens done in one openat2() call
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and walks one directory at a time
 * (no openat2, or it refused: a link, something missing). use_openat2(false)
 * makes the target always walk. False / no-op when t is not a local target. */
bool hb_target_local_resolve_stats(hb_target *t, uint64_t *beneath, uint64_t *walks);
void hb_target_local_use_openat2(hb_target *t, bool on);

/* Key sanity: non-empty, relative, no "", "." or ".." segments, no NUL/backslash,
 * control characters, at most HB_KEY_MAX bytes. */
#define HB_KEY_MAX 1024 /* S3's limit; the strictest of our backends */
bool hb_key_valid(const char *key);

/* Temporary names of the file-system backends (local.c, nfs.c) are
 * "<owner>-<counter>-<random hex>" (owners may contain '-' themselves): the
 * length of the owner part, or 0 when `name` is not one of our temporaries
 * (those are never touched, even when old: a root pointed at a shared
 * directory must not lose other programs' files). */
size_t hb_tmp_owner_len(const char *name);

/* FNV-1a of the first n bytes of a key (never 0): the directory caches of
 * the file-system backends. */
uint64_t hb_key_hash(const char *s, size_t n);
/* HARVBK_E_CORRUPT: "'<rel[0..n)>' in the store is a symbolic link" (local
 * and NFS stores never reach an object through a link). */
int hb_target_link_err(hb_err *e, const char *rel, size_t n);

#endif
