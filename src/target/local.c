/*
 * target/local.c - the local directory backend (file:///path).
 *
 * Layout: object "a/b/c" is the file <root>/a/b/c. Writers stage objects in
 * <root>/tmp/<owner>-<counter>-<random> and rename them into place, so readers
 * see the old or the complete new object. "tmp" is therefore reserved: keys
 * under tmp/ are refused and list() never shows it.
 *
 * Durability (a crash at any instant must leave the store restorable, and
 * "manifest last = commit" must hold):
 *   - put() fsyncs the file data before the rename, and fsyncs the parent
 *     directory after it. Skipping the directory fsync would rely on the
 *     filesystem journalling renames in order, which POSIX does not promise:
 *     a manifest could become durable while a chunk it names did not.
 *   - put_deferred() (chunks) writes the temporary, starts its writeback
 *     (sync_file_range, no wait) and queues it; nothing is renamed yet. The
 *     barrier sync() then makes the whole batch durable with two syncfs()
 *     calls on the target's filesystem instead of 2-5 fsyncs per object:
 *       1. syncfs: the data of every queued temporary is durable;
 *       2. rename each temporary into place (mkdir without fsync);
 *       3. syncfs: the renames and new directories are durable.
 *     Renaming only after step 1 keeps put atomic across a crash: an object
 *     is at its key only once its bytes are durable (renaming first would let
 *     a crash leave an empty or short chunk at its final key, which the next
 *     backup would then deduplicate against). A crash before step 3 leaves
 *     temporaries (removed by cleanup) or complete chunks no manifest names.
 *     Step 3 (always run, even with nothing queued) also makes durable any
 *     other writer's chunk this process saw in place but whose barrier has not
 *     finished: a writer deduplicating against it commits only after its own
 *     barrier. syncfs() reports writeback errors of the whole filesystem
 *     since the target was opened (Linux >= 5.8), conservatively.
 *     When more than PEND_MAX_ITEMS objects or PEND_MAX_BYTES bytes are
 *     queued, the put that crosses the bound runs the barrier itself (bounded
 *     memory, young temporaries). A failed barrier drops (unlinks) what it
 *     could not make durable and counts it in hb_target.lost, so every
 *     writer with deferred puts in flight fails its own barrier too.
     Beside the writers a pre-flusher thread (started by the first deferred
     put, joined by close) fsyncs the root directory after every
     HB_LOCAL_PREFLUSH_BYTES of deferred puts written: the device flush that brings
     (on a disk with a write-back cache, such as a virtual disk) also takes
     the temporaries' data written so far, so step 1 finds little left. It
     decides nothing: what is durable is still what the barrier synced.
 *   - a directory this process has not yet seen is created (if needed) and its
 *     own parent fsynced once, so its entry is durable; afterwards it is kept in
 *     a per-target cache of known directories (64-bit hashes of the relative
 *     path) and the mkdir/fsync cost is skipped. If a cached directory vanished
 *     (someone removed it) the rename fails with ENOENT and the directory chain
 *     is re-created without the cache.
 *   - deletions of objects outside chunks/ (manifests, indexes, leases) fsync
 *     the parent directory so a deleted manifest cannot reappear after a crash
 *     once GC went on to sweep its chunks; a reappearing chunk is harmless.
 * Empty directories are left in place (they are reused and cost nothing).
 *
 * Symbolic links: a store is a tree of plain directories and files that this
 * backend wrote; a link someone planted in it is never followed. Every key is
 * reached from the root one component at a time with openat(O_NOFOLLOW |
 * O_DIRECTORY) (dir_open), and the leaf with O_NOFOLLOW / fstatat /
 * unlinkat / renameat relative to its directory, so no get, head, put, del,
 * list or cleanup can reach or change anything outside the root:
 *   - a link as a directory component (backups/default/x -> /elsewhere) or as
 *     the object itself: get, head, put and del refuse with HARVBK_E_CORRUPT
 *     ("... is a symbolic link"); del of a key that is itself a link removes
 *     the link, never its target;
 *   - list skips links (never descends into them, never reports them), and a
 *     prefix that runs through one lists nothing;
 *   - tmp/ itself a link: puts and cleanup refuse.
 * Only the root path itself (the URL) is resolved as given.
 * Where the kernel has openat2(2) (Linux >= 5.6), a key's directory (and a
 * get's object) is first opened in one call relative to the root with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (beneath_open): the kernel refuses a
 * link anywhere on the way and anything outside the root, i.e. the same
 * guarantee as the walk, in one syscall instead of one per level (the walk
 * cost ~5 openat per chunk, bench/RESULTS.md). Any refusal or failure goes
 * on to the walk, which explains it (or creates what is missing); ENOSYS,
 * EINVAL and EPERM (an old kernel, a seccomp filter) switch openat2 off for
 * the process.
 */
#include "target.h"

#include "../core/fsutil.h"
#include "../core/ticker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#include <sys/syscall.h>
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
#define HAVE_OPENAT2 1
#endif
#endif
#endif

#define TMP_DIR "tmp"
#define DIRCACHE_MAX (1u << 20) /* entries; the cache restarts empty beyond this */
#define PEND_MAX_ITEMS 256u          /* deferred puts queued before a barrier runs */
#define PEND_MAX_BYTES (1ull << 30)  /* ... or bytes */

typedef struct pend_item {
    char *tmp; /* name of the temporary in tmp/ */
    char *key;
} pend_item;

typedef struct local_target {
    hb_target base; /* first: the hb_target pointer is the local_target pointer */
    char *root;     /* absolute path, no trailing '/' (unless it is "/") */
    char *tmpdir;   /* <root>/tmp */
    mode_t dir_mode, file_mode; /* of what it creates */
    atomic_uint_least64_t counter;
    pthread_mutex_t mu; /* protects the directory cache */
    uint64_t *dirs;     /* open addressing set of hashes, 0 = empty */
    size_t dirs_cap, dirs_count;
    /* deferred puts */
    int rootfd;             /* the root directory, for syncfs (-1: opened on demand) */
    pthread_mutex_t pend_mu; /* protects pend* */
    pend_item *pend;
    size_t pend_n, pend_cap;
    uint64_t pend_bytes;
    pthread_mutex_t flush_mu; /* one barrier at a time */
    hb_flusher pf; /* the pre-flusher (its thread starts with the first deferred put) */
    /* statistics, for tests and logs */
    atomic_uint_fast64_t n_barriers, n_syncfs;
    atomic_bool no_openat2;                   /* test hook: always walk */
    atomic_uint_fast64_t n_beneath, n_walks;  /* opens done by openat2 / by the walk */
} local_target;

static const hb_target_ops local_ops;

/* ---- helpers ---- */

static int sys_err(hb_err *e, int errnum, const char *what)
{
    return hb_seterr(e, hb_errno_code(errnum), "%s: %s", what, strerror(errnum));
}

static bool key_reserved(const char *key)
{
    return !strcmp(key, TMP_DIR) || !strncmp(key, TMP_DIR "/", sizeof TMP_DIR);
}

static int check_key(const char *key, hb_err *e)
{
    if (!hb_key_valid(key))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid object key '%.200s'", key ? key : "");
    if (key_reserved(key))
        return hb_seterr(e, HARVBK_E_INVALID, "object keys under '" TMP_DIR
                                              "/' are reserved for temporary files");
    return 0;
}

static const char *owner_of(const hb_target *t)
{
    return t->owner ? t->owner : "harvbk";
}

/* ---- directory cache ---- */

/* Caller holds mu. */
static bool dirs_has(const local_target *lt, uint64_t h)
{
    if (!lt->dirs)
        return false;
    for (size_t i = h & (lt->dirs_cap - 1);; i = (i + 1) & (lt->dirs_cap - 1)) {
        if (lt->dirs[i] == h)
            return true;
        if (lt->dirs[i] == 0)
            return false;
    }
}

static void dirs_insert(uint64_t *tab, size_t cap, uint64_t h)
{
    size_t i = h & (cap - 1);
    while (tab[i] != 0 && tab[i] != h)
        i = (i + 1) & (cap - 1);
    tab[i] = h;
}

/* Caller holds mu. Failure to remember is harmless (only costs a re-check). */
static void dirs_add(local_target *lt, uint64_t h)
{
    if (dirs_has(lt, h))
        return;
    if (lt->dirs_count >= DIRCACHE_MAX) {
        memset(lt->dirs, 0, lt->dirs_cap * sizeof *lt->dirs);
        lt->dirs_count = 0;
    }
    if ((lt->dirs_count + 1) * 2 > lt->dirs_cap) {
        size_t ncap = lt->dirs_cap ? lt->dirs_cap * 2 : 1024;
        uint64_t *n = calloc(ncap, sizeof *n);
        if (!n)
            return;
        for (size_t i = 0; i < lt->dirs_cap; i++)
            if (lt->dirs[i])
                dirs_insert(n, ncap, lt->dirs[i]);
        free(lt->dirs);
        lt->dirs = n;
        lt->dirs_cap = ncap;
    }
    dirs_insert(lt->dirs, lt->dirs_cap, h);
    lt->dirs_count++;
}

static bool dir_known(local_target *lt, const char *rel, size_t n)
{
    uint64_t h = hb_key_hash(rel, n);
    pthread_mutex_lock(&lt->mu);
    bool known = dirs_has(lt, h);
    pthread_mutex_unlock(&lt->mu);
    return known;
}

static void dir_remember(local_target *lt, const char *rel, size_t n)
{
    uint64_t h = hb_key_hash(rel, n);
    pthread_mutex_lock(&lt->mu);
    dirs_add(lt, h);
    pthread_mutex_unlock(&lt->mu);
}

/* Hashes of directories a barrier made exist; remembered once they are durable. */
typedef struct dir_vec {
    uint64_t *h;
    size_t n, cap;
} dir_vec;

static void dir_vec_add(dir_vec *v, uint64_t h)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 64;
        uint64_t *nh = hb_realloc(v->h, ncap * sizeof *nh);
        if (!nh)
            return; /* forgetting only costs a later mkdir */
        v->h = nh;
        v->cap = ncap;
    }
    v->h[v->n++] = h;
}

static int open_root(local_target *lt, hb_err *e)
{
    int fd = open(lt->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(e, errno, "cannot open the target directory");
    return fd;
}

#ifdef HAVE_OPENAT2
static atomic_bool openat2_missing; /* process-wide: ENOSYS/EINVAL/EPERM seen */
#endif

/* May beneath_open be tried? */
static bool beneath_usable(local_target *lt)
{
#ifdef HAVE_OPENAT2
    return !atomic_load_explicit(&openat2_missing, memory_order_relaxed) &&
           !atomic_load_explicit(&lt->no_openat2, memory_order_relaxed);
#else
    (void)lt;
    return false;
#endif
}

/* Did beneath_open fail only because a component does not exist? ENOENT
 * cannot come from a link: a link on the way stops the resolution first
 * (ELOOP), and the last component is opened O_NOFOLLOW, so a link there
 * (also a dangling one) is ELOOP or ENOTDIR, never ENOENT. So "not found"
 * needs no walk. (ENOTDIR does not qualify: it is also what a link as the
 * last component of an O_DIRECTORY open gives.) */
static bool beneath_missing(int err)
{
    return err == ENOENT;
}

/* Open <rootfd>/<rel[0..n)> with `flags` in one openat2() call that
 * refuses every symbolic link on the way (also the last component) and
 * anything outside rootfd. -1 with errno when it cannot (ENOSYS: openat2
 * missing or switched off; ELOOP, ENOTDIR: maybe a link; ENOENT: see
 * beneath_missing): the caller walks instead, which explains the refusal. */
static int beneath_open(local_target *lt, int rootfd, const char *rel, size_t n, int flags)
{
#ifdef HAVE_OPENAT2
    char path[HB_KEY_MAX + 1];
    if (n == 0 || n > HB_KEY_MAX || !beneath_usable(lt)) {
        errno = ENOSYS;
        return -1;
    }
    memcpy(path, rel, n);
    path[n] = '\0';
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    do {
        fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0) {
        atomic_fetch_add_explicit(&lt->n_beneath, 1, memory_order_relaxed);
        return (int)fd;
    }
    if (errno == ENOSYS || errno == EINVAL || errno == EPERM || errno == E2BIG)
        atomic_store(&openat2_missing, true);
    return -1; /* errno: why */
#else
    (void)lt;
    (void)rootfd;
    (void)rel;
    (void)n;
    (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

/* Every directory level of rel[0..n) known (durable, see dir_open)? */
static bool dirs_known(local_target *lt, const char *rel, size_t n)
{
    bool known = true;
    pthread_mutex_lock(&lt->mu);
    for (size_t j = 0; j <= n && known; j++)
        if (j == n || rel[j] == '/')
            known = dirs_has(lt, hb_key_hash(rel, j));
    pthread_mutex_unlock(&lt->mu);
    return known;
}

/* Open the directory <root>/<rel[0..n)> (*out, caller closes) without
 * following a symbolic link in any component. Errors: HARVBK_E_NOTFOUND when
 * a component is missing or not a directory (without `create`),
 * HARVBK_E_CORRUPT when one is a symbolic link.
 * With `create` missing components are created and each component that is
 * not known (or every one, with `force`) has its entry made durable: its
 * parent is fsynced and it is remembered, or, with `nosync` (a barrier, which
 * syncfs()es afterwards), its hash goes to *nosync instead (remembered once
 * the barrier made it durable). */
static int dir_open(local_target *lt, const char *rel, size_t n, bool create, bool force,
                    dir_vec *nosync, int *out, hb_err *e)
{
    *out = -1;
    int fd = open_root(lt, e);
    if (fd < 0)
        return fd;
    /* One openat2 when nothing needs creating or syncing: everything known
     * exists and is durable (if a known directory vanished, openat2 fails
     * and the walk below re-creates it). */
    if (n && (!create || (!force && dirs_known(lt, rel, n)))) {
        int nfd = beneath_open(lt, fd, rel, n, O_RDONLY | O_DIRECTORY);
        if (nfd >= 0) {
            close(fd);
            *out = nfd;
            return 0;
        }
        if (!create && beneath_missing(errno)) {
            close(fd);
            return hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
        }
    }
    if (n)
        atomic_fetch_add_explicit(&lt->n_walks, 1, memory_order_relaxed);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && rel[j] != '/')
            j++;
        char *comp = hb_strndup(rel + i, j - i);
        if (!comp) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        bool created = false;
        int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, comp, lt->dir_mode) == 0)
                created = true;
            else if (errno != EEXIST)
                rc = sys_err(e, errno, "cannot create directory");
            if (rc == 0)
                nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (rc == 0 && nfd < 0) {
            int err = errno;
            struct stat st;
            bool is_link = fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            if (is_link)
                rc = hb_target_link_err(e, rel, j);
            else if ((err == ENOENT || err == ENOTDIR) && !create)
                rc = hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
            else if (err == ENOTDIR)
                rc = hb_seterr(e, HARVBK_E_INVALID,
                               "'%.*s' is an object, it cannot also be a directory", (int)j, rel);
            else
                rc = sys_err(e, err, create ? "cannot create directory" : "cannot open directory");
        }
        hb_free(comp);
        if (rc == 0 && create && (created || force || !dir_known(lt, rel, j))) {
            /* make the entry durable in its parent */
            if (nosync) {
                dir_vec_add(nosync, hb_key_hash(rel, j));
            } else if (fsync(fd) != 0) {
                rc = sys_err(e, errno, "cannot sync directory");
            } else {
                dir_remember(lt, rel, j);
            }
        }
        close(fd);
        fd = nfd;
        i = j + 1;
    }
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* The directory of key (its parent, or the root) and the leaf name in key. */
static const char *key_leaf(const char *key, size_t *plen)
{
    const char *slash = strrchr(key, '/');
    *plen = slash ? (size_t)(slash - key) : 0;
    return slash ? slash + 1 : key;
}

static int tmpdir_open(local_target *lt, bool create, int *out, hb_err *e)
{
    return dir_open(lt, TMP_DIR, sizeof TMP_DIR - 1, create, false, NULL, out, e);
}

/* Remove a temporary by name (best effort). */
static void tmp_unlink(local_target *lt, const char *name)
{
    int tfd;
    if (tmpdir_open(lt, false, &tfd, NULL) == 0) {
        (void)unlinkat(tfd, name, 0);
        close(tfd);
    }
}

/* ---- operations ---- */

/* Write data into a new temporary in tmp/; *out_tmp is its name (caller
 * frees). With `durable` its data is fsynced; otherwise its writeback is only
 * started. */
static int write_tmp(local_target *lt, const void *data, size_t len, bool durable,
                     char **out_tmp, hb_err *e)
{
    *out_tmp = NULL;
    uint8_t rnd[4];
    char rhex[9];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, rhex);
    unsigned long long n = (unsigned long long)atomic_fetch_add(&lt->counter, 1);
    char *tmp = hb_asprintf("%s-%llu-%s", owner_of(&lt->base), n, rhex);
    if (!tmp)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int tfd;
    int rc = tmpdir_open(lt, true, &tfd, e);
    if (rc) {
        hb_free(tmp);
        return rc;
    }
    int fd = openat(tfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, lt->file_mode);
    if (fd < 0) {
        rc = sys_err(e, errno, "cannot create temporary file");
        close(tfd);
        hb_free(tmp);
        return rc;
    }
    rc = hb_pwrite_all(fd, data, len, 0, e);
    if (rc == 0 && durable && fsync(fd) != 0)
        rc = sys_err(e, errno, "cannot sync temporary file");
#ifdef SYNC_FILE_RANGE_WRITE
    /* start the writeback now, so the barrier's syncfs finds little left to
     * write; errors surface in that syncfs */
    if (rc == 0 && !durable && len)
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    if (close(fd) != 0 && rc == 0)
        rc = sys_err(e, errno, "cannot close temporary file");
    if (rc) {
        (void)unlinkat(tfd, tmp, 0);
        close(tfd);
        hb_free(tmp);
        return rc;
    }
    close(tfd);
    *out_tmp = tmp;
    return 0;
}

/* Rename the temporary tmp (a name in tmp/) to key, creating the key's
 * directories (durably unless `nosync`, see dir_open); with `sync_parent` the
 * key's directory is fsynced afterwards. The temporary is gone on success
 * and left in place on failure. */
static int rename_into_place(local_target *lt, const char *tmp, const char *key, dir_vec *nosync,
                             bool sync_parent, hb_err *e)
{
    size_t plen;
    const char *leaf = key_leaf(key, &plen);
    int tfd = -1, pfd = -1;
    int rc = tmpdir_open(lt, false, &tfd, e);
    if (rc == 0)
        rc = dir_open(lt, key, plen, true, false, nosync, &pfd, e);
    if (rc == 0 && renameat(tfd, tmp, pfd, leaf) != 0) {
        if (errno == ENOENT && plen) {
            /* the directory vanished after it was opened: re-create the chain */
            close(pfd);
            pfd = -1;
            rc = dir_open(lt, key, plen, true, true, nosync, &pfd, e);
            if (rc == 0 && renameat(tfd, tmp, pfd, leaf) != 0)
                rc = sys_err(e, errno, "cannot rename into place");
        } else if (errno == EISDIR) {
            rc = hb_seterr(e, HARVBK_E_INVALID,
                           "the key is a prefix of other objects, it cannot also be an object");
        } else {
            rc = sys_err(e, errno, "cannot rename into place");
        }
    }
    if (rc == 0 && sync_parent && fsync(pfd) != 0)
        rc = sys_err(e, errno, "cannot sync directory");
    if (pfd >= 0)
        close(pfd);
    if (tfd >= 0)
        close(tfd);
    return rc;
}

/* Is the directory at the root path still the one opened as rootfd? Objects
 * are placed by path, but syncfs() (the barrier) runs on rootfd: a root that
 * was mounted over, moved away or re-created since the target was opened
 * would have its objects synced on the wrong filesystem, or not at all, and
 * said durable. Found replaced, a put or barrier fails instead. */
static int root_still_here(local_target *lt, hb_err *e)
{
    if (lt->rootfd < 0)
        return 0;
    struct stat was, now;
    if (fstat(lt->rootfd, &was) != 0)
        return sys_err(e, errno, "cannot stat the target directory");
    if (stat(lt->root, &now) != 0 || now.st_dev != was.st_dev || now.st_ino != was.st_ino)
        return hb_seterr(e, HARVBK_E_IO,
                         "target directory '%s' was replaced while in use (mounted over, moved "
                         "or removed and created again): what was written there cannot be made "
                         "durable; open the target again",
                         lt->base.display ? lt->base.display : lt->root);
    return 0;
}

static int local_put(hb_target *t, const char *key, const void *data, size_t len, hb_err *e)
{
    local_target *lt = (local_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    char *tmp = NULL;
    rc = write_tmp(lt, data, len, true, &tmp, e);
    if (rc == 0) {
        rc = rename_into_place(lt, tmp, key, NULL, true, e);
        if (rc)
            tmp_unlink(lt, tmp);
    }
    hb_free(tmp);
    return rc ? rc : root_still_here(lt, e);
}

/* ---- deferred puts and the barrier ---- */

static void pend_free(local_target *lt, pend_item *v, size_t n, bool unlink_tmp)
{
    for (size_t i = 0; i < n; i++) {
        if (unlink_tmp && v[i].tmp)
            tmp_unlink(lt, v[i].tmp);
        hb_free(v[i].tmp);
        hb_free(v[i].key);
    }
    hb_free(v);
}

static int do_syncfs(local_target *lt, hb_err *e)
{
    atomic_fetch_add(&lt->n_syncfs, 1);
    int fd = lt->rootfd;
    if (fd < 0) {
        fd = open(lt->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return sys_err(e, errno, "cannot open the target directory to sync it");
    }
    int rc = 0;
    if (syncfs(fd) != 0)
        rc = sys_err(e, errno, "cannot sync the target's filesystem");
    if (fd != lt->rootfd)
        close(fd);
    return rc;
}

/* The barrier: see the header comment. */
static int local_flush(local_target *lt, hb_err *e)
{
    pthread_mutex_lock(&lt->flush_mu);
    pthread_mutex_lock(&lt->pend_mu);
    pend_item *v = lt->pend;
    size_t n = lt->pend_n;
    lt->pend = NULL;
    lt->pend_n = lt->pend_cap = 0;
    lt->pend_bytes = 0;
    pthread_mutex_unlock(&lt->pend_mu);
    atomic_fetch_add(&lt->n_barriers, 1);

    int rc = 0;
    size_t done = 0; /* items renamed into place */
    dir_vec dirs = { NULL, 0, 0 };
    rc = root_still_here(lt, e); /* 0. (else the steps below fail less clearly) */
    if (rc == 0 && n) {
        rc = do_syncfs(lt, e); /* 1. the temporaries' data */
        while (rc == 0 && done < n) {
            rc = rename_into_place(lt, v[done].tmp, v[done].key, &dirs, false, e); /* 2. */
            if (rc)
                hb_err_prefix(e, "%s", v[done].key); /* v[done] stays a temporary */
            else
                done++;
        }
    }
    /* 3. the renames and directories (and objects others renamed into place) */
    int src = do_syncfs(lt, rc ? NULL : e);
    if (rc == 0)
        rc = src;
    if (rc == 0) /* 4. still where they were synced */
        rc = root_still_here(lt, e);
    if (rc == 0) {
        for (size_t i = 0; i < dirs.n; i++) {
            pthread_mutex_lock(&lt->mu);
            dirs_add(lt, dirs.h[i]);
            pthread_mutex_unlock(&lt->mu);
        }
        pend_free(lt, v, n, false);
    } else {
        /* nothing of this batch may be relied on: drop what is not in place
         * (objects already renamed are complete, merely maybe not durable) */
        atomic_fetch_add(&lt->base.lost, n ? n : 1);
        for (size_t i = 0; i < done; i++) {
            hb_free(v[i].tmp);
            v[i].tmp = NULL;
        }
        pend_free(lt, v, n, true);
        hb_log_warn(lt->base.log, "%s: a barrier failed, %zu pending object(s) dropped: %s",
                    lt->base.display ? lt->base.display : lt->root, n, e ? e->msg : "");
    }
    hb_free(dirs.h);
    pthread_mutex_unlock(&lt->flush_mu);
    return rc;
}

static int local_sync(hb_target *t, hb_err *e)
{
    return local_flush((local_target *)t, e);
}

/* The pre-flusher: after every HB_LOCAL_PREFLUSH_BYTES of deferred puts written, one
 * fsync of the root directory, whose device flush (a virtual disk with a
 * write-back cache writes there) also takes the temporaries' data written
 * so far. Durability is unchanged: the barrier's syncfs still decides; it
 * then finds little left for the device, and the barrier (serial at the end
 * of a backup) is shorter. Errors are the barrier's to report. */
static int local_preflush(void *arg)
{
    local_target *lt = arg;
    (void)fsync(lt->rootfd);
    return 0;
}

static int local_put_deferred(hb_target *t, const char *key, const void *data, size_t len,
                              hb_err *e)
{
    local_target *lt = (local_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    char *tmp = NULL, *k = hb_strdup(key);
    if (!k)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    rc = write_tmp(lt, data, len, false, &tmp, e);
    if (rc) {
        hb_free(k);
        return rc;
    }
    if (lt->rootfd >= 0)
        hb_flusher_count(&lt->pf, len);
    pthread_mutex_lock(&lt->pend_mu);
    if (lt->pend_n == lt->pend_cap) {
        size_t ncap = lt->pend_cap ? lt->pend_cap * 2 : 64;
        pend_item *nv = hb_realloc(lt->pend, ncap * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&lt->pend_mu);
            tmp_unlink(lt, tmp);
            hb_free(tmp);
            hb_free(k);
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        }
        lt->pend = nv;
        lt->pend_cap = ncap;
    }
    lt->pend[lt->pend_n++] = (pend_item){ tmp, k };
    lt->pend_bytes += len;
    bool full = lt->pend_n >= PEND_MAX_ITEMS || lt->pend_bytes >= PEND_MAX_BYTES;
    pthread_mutex_unlock(&lt->pend_mu);
    return full ? local_flush(lt, e) : 0;
}

/* Open the directory of key (see dir_open, without creating). */
static int parent_open(local_target *lt, const char *key, const char **leaf, int *out, hb_err *e)
{
    size_t plen;
    *leaf = key_leaf(key, &plen);
    return dir_open(lt, key, plen, false, false, NULL, out, e);
}

/* Open the object at key for reading: *out is its descriptor (a regular
 * file or not: the caller checks), or an error (HARVBK_E_NOTFOUND when
 * there is none). */
static int obj_open(local_target *lt, const char *key, int *out, hb_err *e)
{
    *out = -1;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    const char *leaf;
    int pfd;
    /* O_NONBLOCK: a FIFO (or device) someone put at a key must not block the
     * open until a writer appears; it is refused below as "not an object".
     * Reads of regular files ignore the flag. O_NOFOLLOW: a link is refused. */
    int fd = -1;
    if (beneath_usable(lt)) {
        int rootfd = open_root(lt, e);
        if (rootfd < 0)
            return rootfd;
        fd = beneath_open(lt, rootfd, key, strlen(key), O_RDONLY | O_NONBLOCK);
        int err = errno;
        close(rootfd);
        if (fd >= 0)
            goto opened;
        if (beneath_missing(err))
            return hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
    }
    if ((rc = parent_open(lt, key, &leaf, &pfd, e)))
        return rc;
    fd = openat(pfd, leaf, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        int err = errno;
        struct stat st;
        if (err == ELOOP && fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
            rc = hb_target_link_err(e, key, strlen(key));
        else if (err == ENOENT || err == ENOTDIR)
            rc = hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
        else
            rc = sys_err(e, err, "cannot open object");
        close(pfd);
        return rc;
    }
    close(pfd);
opened:
    *out = fd;
    return 0;
}

/* A hint (the restore's): the object will be read soon; its reading from
 * the disk starts now, in the background. Errors are the read's to report. */
static void local_prefetch(hb_target *t, const char *key)
{
    int fd;
    struct stat st;
    if (obj_open((local_target *)t, key, &fd, NULL) == 0) {
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) /* not a device someone put there */
            (void)posix_fadvise(fd, 0, st.st_size, POSIX_FADV_WILLNEED);
        close(fd);
    }
}

static int local_get_max(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e)
{
    hb_buf_reset(out);
    int fd;
    int rc = obj_open((local_target *)t, key, &fd, e);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = sys_err(e, errno, "cannot stat object");
    } else if (!S_ISREG(st.st_mode)) {
        rc = hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
    } else if ((uint64_t)st.st_size > (uint64_t)max) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "object is %lld bytes, more than the %zu expected",
                       (long long)st.st_size, max);
    } else if ((uint64_t)st.st_size >= SIZE_MAX || hb_buf_reserve(out, (size_t)st.st_size + 1)) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, "object of %lld bytes does not fit in memory",
                       (long long)st.st_size);
    } else {
        /* objects are never modified in place (only replaced by rename), so
         * the open file keeps the size it had at fstat */
        rc = hb_pread_all(fd, out->data, (size_t)st.st_size, 0, e);
        if (rc == 0) {
            out->len = (size_t)st.st_size;
            out->data[out->len] = '\0';
        }
    }
    close(fd);
    if (rc)
        hb_buf_reset(out);
    return rc;
}

static int local_get(hb_target *t, const char *key, hb_buf *out, hb_err *e)
{
    return local_get_max(t, key, out, SIZE_MAX, e);
}

static int local_head(hb_target *t, const char *key, uint64_t *size, hb_err *e)
{
    local_target *lt = (local_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    const char *leaf;
    int pfd;
    if ((rc = parent_open(lt, key, &leaf, &pfd, e)))
        return rc;
    struct stat st;
    int r = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW);
    int err = errno;
    close(pfd);
    if (r != 0) {
        if (err == ENOENT || err == ENOTDIR)
            return hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
        return sys_err(e, err, "cannot stat object");
    }
    if (S_ISLNK(st.st_mode))
        return hb_target_link_err(e, key, strlen(key));
    if (!S_ISREG(st.st_mode))
        return hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
    *size = (uint64_t)st.st_size;
    return 0;
}

static int local_del(hb_target *t, const char *key, hb_err *e)
{
    local_target *lt = (local_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    const char *leaf;
    int pfd;
    rc = parent_open(lt, key, &leaf, &pfd, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        return 0; /* no such object */
    }
    if (rc)
        return rc; /* a link on the way: never delete through it */
    /* unlinkat removes a link itself, never its target */
    if (unlinkat(pfd, leaf, 0) != 0) {
        int err = errno;
        struct stat st;
        if (err == ENOENT || err == ENOTDIR || err == EISDIR ||
            (err == EPERM && fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
             S_ISDIR(st.st_mode)))
            rc = 0; /* no such object (a directory is not an object) */
        else
            rc = sys_err(e, err, "cannot delete object");
    } else if (strncmp(key, "chunks/", 7) != 0 && fsync(pfd) != 0) {
        rc = sys_err(e, errno, "cannot sync directory");
    }
    close(pfd);
    return rc;
}

/* ---- list ---- */

#define DIRBUF_LEN 32768 /* getdents64 buffer */

typedef struct dent {
    char *name;
    unsigned char type;
} dent;

static int dent_cmp(const void *a, const void *b)
{
    return strcmp(((const dent *)a)->name, ((const dent *)b)->name);
}

static void dents_free(dent *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hb_free(v[i].name);
    hb_free(v);
}

/* Entries of the directory freshly opened on dfd, sorted by name. They are
 * read with getdents64 from dfd itself, which is left at its end (no dup and
 * DIR stream per directory: a listing of chunks/ opens about one directory
 * per chunk). */
static int read_dir(int dfd, dent **out, size_t *nout, hb_err *e)
{
    *out = NULL;
    *nout = 0;
    char *buf = hb_malloc(DIRBUF_LEN);
    if (!buf)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    dent *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    ssize_t got;
    while (rc == 0 && (got = getdents64(dfd, buf, DIRBUF_LEN)) != 0) {
        if (got < 0) {
            rc = sys_err(e, errno, "cannot read directory");
            break;
        }
        for (ssize_t off = 0; off < got && rc == 0;) {
            const struct dirent64 *de = (const struct dirent64 *)(buf + off);
            off += de->d_reclen;
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                dent *nv = hb_realloc(v, ncap * sizeof *nv);
                if (!nv) {
                    rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                    break;
                }
                v = nv;
                cap = ncap;
            }
            v[n].name = hb_strdup(de->d_name);
            v[n].type = de->d_type;
            if (!v[n].name) {
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                break;
            }
            n++;
        }
    }
    hb_free(buf);
    if (rc) {
        dents_free(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, dent_cmp);
    *out = v;
    *nout = n;
    return 0;
}

typedef struct list_ctx {
    local_target *lt;
    const char *prefix;
    size_t plen;
    hb_list_cb cb;
    void *ud;
} list_ctx;

/* Walk the directory dfd = <root>/<rel>, where rel is "" or ends with '/'.
 * Links are neither descended into nor reported. */
static int walk(list_ctx *lc, int dfd, const char *rel, hb_err *e)
{
    dent *v;
    size_t n;
    int rc = read_dir(dfd, &v, &n, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!rel[0] && !strcmp(v[i].name, TMP_DIR))
            continue;
        if (v[i].type == DT_LNK)
            continue;
        char *key = hb_asprintf("%s%s", rel, v[i].name);
        if (!key) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        struct stat st;
        /* a directory the entry names as one is opened without a stat first:
         * the open (O_DIRECTORY | O_NOFOLLOW) checks it is still one */
        bool is_dir = false, is_reg = false;
        if (v[i].type == DT_DIR) {
            is_dir = true;
        } else if (fstatat(dfd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) /* vanished meanwhile: skip */
                rc = sys_err(e, errno, "cannot stat object");
        } else {
            is_dir = S_ISDIR(st.st_mode);
            is_reg = S_ISREG(st.st_mode);
        }
        size_t klen = strlen(key);
        if (rc == 0 && is_dir) {
            /* descend only where keys can still start with prefix, and only
             * while a valid key fits below ("<dir>/x"; a bind mount of a
             * parent inside the store would otherwise recurse forever) */
            size_t cmp = HB_MIN(klen, lc->plen);
            if (klen + 2 <= HB_KEY_MAX && strncmp(key, lc->prefix, cmp) == 0 &&
                (klen >= lc->plen || lc->prefix[klen] == '/')) {
                /* O_NOFOLLOW: a directory swapped for a link meanwhile is skipped */
                int sfd = openat(dfd, v[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                char *sub = sfd >= 0 ? hb_asprintf("%s/", key) : NULL;
                if (sfd >= 0 && !sub)
                    rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                else if (sfd >= 0)
                    rc = walk(lc, sfd, sub, e);
                else if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
                    rc = sys_err(e, errno, "cannot open directory");
                hb_free(sub);
                if (sfd >= 0)
                    close(sfd);
            }
        } else if (rc == 0 && is_reg && klen >= lc->plen &&
                   !strncmp(key, lc->prefix, lc->plen) && hb_key_valid(key)) {
            rc = lc->cb(key, (uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, lc->ud);
        }
        hb_free(key);
    }
    dents_free(v, n);
    return rc;
}

static int local_list(hb_target *t, const char *prefix, hb_list_cb cb, void *ud, hb_err *e)
{
    local_target *lt = (local_target *)t;
    if (!prefix)
        prefix = "";
    if (key_reserved(prefix))
        return 0; /* nothing but temporaries there */
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
    int dfd;
    hb_err e2;
    hb_err_clear(&e2);
    int rc = dir_open(lt, prefix, dlen ? dlen - 1 : 0, false, false, NULL, &dfd, &e2);
    if (rc == HARVBK_E_NOTFOUND)
        return 0;
    if (rc == HARVBK_E_CORRUPT) {
        /* the prefix runs through a link: nothing of the store is there */
        hb_log_warn(lt->base.log, "%s: not listing %s: %s",
                    lt->base.display ? lt->base.display : lt->root, prefix, e2.msg);
        return 0;
    }
    if (rc) {
        if (e)
            *e = e2;
        return rc;
    }
    char *rel = hb_strndup(prefix, dlen);
    list_ctx lc = { lt, prefix, strlen(prefix), cb, ud };
    rc = rel ? walk(&lc, dfd, rel, e) : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(rel);
    close(dfd);
    return rc;
}

/* ---- maintenance ---- */

static int local_cleanup(hb_target *t, const char *owner, int64_t max_age_s, hb_err *e)
{
    local_target *lt = (local_target *)t;
    int tfd;
    int rc = tmpdir_open(lt, false, &tfd, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        return 0;
    }
    if (rc)
        return rc; /* tmp/ is a link: nothing there is ours */
    dent *v;
    size_t n;
    rc = read_dir(tfd, &v, &n, e);
    if (rc) {
        close(tfd);
        return rc;
    }
    int64_t now = hb_now();
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        bool remove = false;
        size_t olen = hb_tmp_owner_len(v[i].name);
        if (olen && fstatat(tfd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
            if (owner && strlen(owner) == olen && !strncmp(v[i].name, owner, olen))
                remove = true;
            else if (max_age_s >= 0 && (int64_t)st.st_mtim.tv_sec <= now - max_age_s)
                remove = true;
        }
        if (remove && unlinkat(tfd, v[i].name, 0) != 0 && errno != ENOENT && rc == 0)
            rc = sys_err(e, errno, "cannot remove temporary file");
        else if (remove)
            hb_log_debug(t->log, "removed stale temporary %s", v[i].name);
    }
    dents_free(v, n);
    close(tfd);
    return rc;
}

static int local_ping(hb_target *t, hb_err *e)
{
    local_target *lt = (local_target *)t;
    struct stat st;
    if (stat(lt->root, &st) != 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return hb_seterr(e, HARVBK_E_TARGET, "target directory '%s' does not exist",
                             lt->root);
        return sys_err(e, err, "cannot reach target directory");
    }
    if (!S_ISDIR(st.st_mode))
        return hb_seterr(e, HARVBK_E_TARGET, "target path '%s' is not a directory", lt->root);
    if (access(lt->root, W_OK) != 0)
        return hb_seterr(e, HARVBK_E_PERM, "target directory '%s' is not writable: %s",
                         lt->root, strerror(errno));
    return 0;
}

static void local_close(hb_target *t)
{
    local_target *lt = (local_target *)t;
    hb_flusher_stop(&lt->pf);
    /* deferred puts never synced: their writer failed or gave up, nobody may
     * reference them */
    if (lt->pend_n)
        atomic_fetch_add(&lt->base.lost, lt->pend_n);
    pend_free(lt, lt->pend, lt->pend_n, true);
    if (lt->rootfd >= 0)
        close(lt->rootfd);
    pthread_mutex_destroy(&lt->pend_mu);
    pthread_mutex_destroy(&lt->flush_mu);
    pthread_mutex_destroy(&lt->mu);
    hb_free(lt->dirs);
    hb_free(lt->root);
    hb_free(lt->tmpdir);
    hb_free(lt);
}

static const hb_target_ops local_ops = {
    .scheme = "file",
    .put = local_put,
    .get = local_get,
    .head = local_head,
    .del = local_del,
    .del_many = NULL,
    .list = local_list,
    .cleanup = local_cleanup,
    .ping = local_ping,
    .close = local_close,
    .get_max = local_get_max,
    .put_deferred = local_put_deferred,
    .prefetch = local_prefetch,
    .sync = local_sync,
};

bool hb_target_local_resolve_stats(hb_target *t, uint64_t *beneath, uint64_t *walks)
{
    if (!t || t->ops != &local_ops)
        return false;
    local_target *lt = (local_target *)t;
    if (beneath)
        *beneath = atomic_load(&lt->n_beneath);
    if (walks)
        *walks = atomic_load(&lt->n_walks);
    return true;
}

void hb_target_local_use_openat2(hb_target *t, bool on)
{
    if (t && t->ops == &local_ops)
        atomic_store(&((local_target *)t)->no_openat2, !on);
}

uint64_t hb_target_local_preflushes(hb_target *t)
{
    if (!t || t->ops != &local_ops)
        return 0;
    return hb_flusher_calls(&((local_target *)t)->pf);
}

bool hb_target_local_stats(hb_target *t, uint64_t *barriers, uint64_t *syncfs_calls,
                           size_t *pending)
{
    if (!t || t->ops != &local_ops)
        return false;
    local_target *lt = (local_target *)t;
    if (barriers)
        *barriers = atomic_load(&lt->n_barriers);
    if (syncfs_calls)
        *syncfs_calls = atomic_load(&lt->n_syncfs);
    if (pending) {
        pthread_mutex_lock(&lt->pend_mu);
        *pending = lt->pend_n;
        pthread_mutex_unlock(&lt->pend_mu);
    }
    return true;
}

/* The mode of the store's config object when it is a regular file (not a
 * link), else 0: what the target creates takes the group's and others' read
 * access it grants (hb_store_modes; a store an earlier version made, 0644,
 * stays readable as it was; a new one is private, docs/CLI.md). */
static unsigned local_config_mode(const local_target *lt)
{
    char *p = hb_path_join(lt->root, HB_STORE_CONFIG_NAME);
    struct stat st;
    unsigned m = p && lstat(p, &st) == 0 && S_ISREG(st.st_mode) ? (unsigned)st.st_mode : 0;
    hb_free(p);
    return m;
}

int hb_target_local_open(hb_target **out, const hb_target_cfg *cfg, hb_err *e)
{
    *out = NULL;
    if (!cfg || !cfg->url || strncmp(cfg->url, "file://", 7) != 0 || cfg->url[7] != '/')
        return hb_seterr(e, HARVBK_E_INVALID, "local target needs a file:///path URL");
    const char *p = cfg->url + 7;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    if (n == 1) /* "/": its tmp/ would be the system's /tmp */
        return hb_seterr(e, HARVBK_E_INVALID, "the root directory cannot be a backup target");
    local_target *lt = hb_calloc(1, sizeof *lt);
    if (!lt)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    lt->root = hb_strndup(p, n);
    lt->tmpdir = lt->root ? hb_path_join(lt->root, TMP_DIR) : NULL;
    if (!lt->root || !lt->tmpdir) {
        hb_free(lt->root);
        hb_free(lt->tmpdir);
        hb_free(lt);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    unsigned fmode, dmode; /* private_files (the snapshot store): private whatever the config */
    hb_store_modes(cfg->private_files ? 0 : local_config_mode(lt), &fmode, &dmode);
    lt->file_mode = fmode;
    lt->dir_mode = dmode;
    int rc = 0;
    struct stat st;
    if (stat(lt->root, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            rc = hb_seterr(e, HARVBK_E_INVALID, "target path '%s' is not a directory", lt->root);
    } else if (errno == ENOENT) {
        rc = hb_mkdir_p(lt->root, lt->dir_mode, e);
    } else {
        rc = sys_err(e, errno, "cannot reach target directory");
    }
    if (rc) {
        hb_free(lt->root);
        hb_free(lt->tmpdir);
        hb_free(lt);
        return rc;
    }
    /* Best effort: a read-only target can still be read; put() creates tmp/
     * on demand (mkdir never follows a link at its last component). */
    if (mkdir(lt->tmpdir, lt->dir_mode) != 0 && errno != EEXIST) {
        /* ignored */
    }
    atomic_init(&lt->counter, 0);
    atomic_init(&lt->n_barriers, 0);
    atomic_init(&lt->n_syncfs, 0);
    atomic_init(&lt->no_openat2, false);
    atomic_init(&lt->n_beneath, 0);
    atomic_init(&lt->n_walks, 0);
    atomic_init(&lt->base.lost, 0);
    pthread_mutex_init(&lt->mu, NULL);
    pthread_mutex_init(&lt->pend_mu, NULL);
    pthread_mutex_init(&lt->flush_mu, NULL);
    (void)hb_flusher_init(&lt->pf, HB_LOCAL_PREFLUSH_BYTES, local_preflush, lt); /* else none */
    /* opened now so that syncfs() reports writeback errors from here on */
    lt->rootfd = open(lt->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    lt->base.ops = &local_ops;
    lt->base.parallel = 4;
    lt->base.min_workers = 0; /* CPU-bound: the engine's CPU count is right */
    lt->base.list_per_head = 16; /* a stat() against a share of a getdents() */
    *out = &lt->base;
    return 0;
}
