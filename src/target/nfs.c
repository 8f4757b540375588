/*
 * target/nfs.c - the NFS backend (nfs://server/export/path?options), a user
 * space NFSv3 client through libnfs: no kernel mount, no root on the client.
 *
 * URL and the export/path split (docs/NFS.md):
 *   - the URL is handed to libnfs' nfs_parse_url_dir() on every connection, so
 *     every libnfs URL option works (nfsport=, mountport= to skip the
 *     portmapper, uid=, gid=, tcp-syncnt= ...). version=4 is refused: the
 *     libnfs this is built against (Debian's 4.0.0) cannot write over NFSv4.
 *   - the path names a directory: the export followed by the store's
 *     directory below it. Open mounts the whole path if the server allows it
 *     (servers that allow subdirectory mounts do, once it exists); otherwise
 *     it tries each parent in turn, longest first, and the first that mounts
 *     is the export: the rest is the store root, created (mkdir -p) if missing.
 *
 * Layout is the local backend's (target/local.c): object "a/b/c" is the file
 * <root>/a/b/c; writers stage objects in <root>/tmp/<owner>-<counter>-<random>
 * and rename them into place (an NFSv3 RENAME replaces atomically), so a copy
 * of the directory opened as file:// is the same store.
 *
 * Durability: temporaries are written with FILE_SYNC writes (O_SYNC): every
 * WRITE is on the server's stable storage when acknowledged, so no COMMIT and
 * no write-verifier check (which libnfs' high level API does not expose) are
 * needed: a server that reboots between our WRITE and the rename cannot lose
 * data we already rename into place. CREATE, MKDIR, RENAME and REMOVE are
 * synchronous in NFSv3. Every put is durable when it returns (no deferred
 * puts / barrier).
 *
 * Concurrency: libnfs contexts are not thread-safe, so the backend keeps a
 * pool of connections (one nfs_context, one TCP connection and one mount
 * each), created on demand; a caller takes one for the duration of an
 * operation. Within an operation requests are pipelined: an object is
 * written/read as several WRITE/READ requests in flight, del_many() keeps
 * many REMOVEs in flight.
 *
 * Timeouts: libnfs 4.0.0's own timeout does not cover connecting and
 * mounting, and its sync calls may then block forever. So every request is
 * asynchronous and this file runs the event loop (poll + nfs_service) with a
 * deadline: an operation (including its retries and reconnections) ends
 * within the target's timeout_ms. A connection that timed out or failed is
 * destroyed (which cancels its requests) and a later operation connects
 * again. Operations whose connection broke (server restarted, connection
 * reset) are retried on a fresh connection while time remains: they are all
 * idempotent (a put writes a new temporary and renames it again).
 *
 * Symbolic links (as in local.c): a link planted in the store is never
 * followed. libnfs resolves paths itself and follows links in them, so before
 * an object is reached every directory component of its key below the root
 * is checked with LOOKUP/GETATTR without following (nfs_lstat64): a link is
 * refused with HARVBK_E_CORRUPT (get, head, put, del) or skipped (list; a
 * prefix through one lists nothing); the object itself is opened with
 * O_NOFOLLOW, checked with lstat, and REMOVE of a link removes the link.
 * list descends only into entries READDIRPLUS reports as directories. Puts,
 * gets and heads remember the directories they found real (a direct-mapped
 * cache of path hashes; chunks/<aa>/<bb> would otherwise cost three more
 * round trips per chunk); deletes, listings and cleanup check afresh.
 * Path-based NFSv3 calls cannot close the race with someone swapping a
 * checked directory for a link at the same instant; the local backend can.
 */
#include "target.h"

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_DIR "tmp"
#define NFS_DEFAULT_PARALLEL 8u /* workers / connections an NFS target wants */
#define NFS_POOL_MAX 64u        /* connections at most */
#define NFS_WINDOW 8            /* READ/WRITE requests in flight per object */
#define NFS_DEL_WINDOW 32       /* REMOVEs in flight in del_many */
#define NFS_PIECE_MAX (1u << 20)
#define NFS_SLICE_MS 100        /* poll slice (libnfs timers run in nfs_service) */
#define NFS_DIRCACHE (1u << 16) /* slots of the checked-directory cache */
#define NFS_MIN_TRY_MS 100      /* no new connection attempt with less time left */

typedef struct nfs_conn {
    struct nfs_context *nfs; /* NULL: not connected */
    bool busy;
    bool broken;             /* failed or timed out: destroyed on release */
    unsigned gen;            /* the pool's generation when it connected */
    uint64_t rsize, wsize;   /* piece sizes for READ / WRITE */
    struct nfsfh *fh;        /* the file open on it (one operation at a time) */
} nfs_conn;

typedef struct nfs_target {
    hb_target base;   /* first */
    char *url;        /* as configured; parsed by libnfs on every connection */
    char *server;     /* host, for messages and mounts */
    char *export;     /* the path mounted */
    char *root;       /* store root below the export: "" or "/a/b" */
    char *tmpdir;     /* root + "/tmp" (absolute in the export) */
    unsigned file_mode, dir_mode; /* of what it creates (nfs_store_modes) */
    uint32_t timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nfs_conn conns[NFS_POOL_MAX];
    unsigned nconns;  /* pool size */
    /* pool generation: bumped when a connection of the current generation
     * breaks. An idle connection of an older generation sat in the pool when
     * a sibling broke (a server restart kills them all at once, unnoticed
     * until used): pool_get() discards it and connects anew. */
    atomic_uint gen;
    atomic_uint_least64_t counter;
    atomic_uint_fast64_t n_connects, n_reconnects, n_retries, n_timeouts;
    atomic_bool had_conn;
    _Atomic uint64_t *dircache; /* NFS_DIRCACHE slots: hashes of real directories */
} nfs_target;

static const hb_target_ops nfs_ops;

/* ---- one request: the callback's result ---- */

typedef struct nfs_req {
    int *pending;  /* decremented when the callback ran */
    bool done;
    int status;    /* libnfs status: >= 0 ok (bytes for read/write), -errno */
    char msg[200]; /* libnfs' error text on failure */
    union {
        struct nfs_stat_64 st;
        struct nfsfh *fh;
        struct nfsdir *dir;
    } u;
    uint8_t *dst;  /* reads: where the bytes go */
    uint64_t off, len; /* reads/writes: the piece */
    char *extext;  /* getexports: the directories, one per line */
} nfs_req;

static void req_init(nfs_req *r, int *pending)
{
    memset(r, 0, sizeof *r);
    r->pending = pending;
}

static void req_finish(nfs_req *r, int err, void *data)
{
    r->status = err;
    if (err < 0)
        snprintf(r->msg, sizeof r->msg, "%s", data ? (const char *)data : strerror(-err));
    r->done = true;
    (*r->pending)--;
}

static void cb_plain(int err, struct nfs_context *nfs, void *data, void *priv)
{
    (void)nfs;
    req_finish(priv, err, err < 0 ? data : NULL);
}

static void cb_stat(int err, struct nfs_context *nfs, void *data, void *priv)
{
    (void)nfs;
    nfs_req *r = priv;
    if (err >= 0 && data)
        r->u.st = *(struct nfs_stat_64 *)data;
    req_finish(r, err, err < 0 ? data : NULL);
}

static void cb_fh(int err, struct nfs_context *nfs, void *data, void *priv)
{
    (void)nfs;
    nfs_req *r = priv;
    if (err >= 0)
        r->u.fh = data;
    req_finish(r, err, err < 0 ? data : NULL);
}

static void cb_dir(int err, struct nfs_context *nfs, void *data, void *priv)
{
    (void)nfs;
    nfs_req *r = priv;
    if (err >= 0)
        r->u.dir = data;
    req_finish(r, err, err < 0 ? data : NULL);
}

static void cb_read(int err, struct nfs_context *nfs, void *data, void *priv)
{
    (void)nfs;
    nfs_req *r = priv;
    if (err > 0 && (uint64_t)err <= r->len && data)
        memcpy(r->dst, data, (size_t)err);
    else if (err > 0) /* more than asked for: refuse */
        err = -EIO;
    req_finish(r, err, err < 0 ? data : NULL);
}

/* getexports: the list is the reply's (freed after the callback): copy the
 * directories, one per line. */
static void cb_exports(struct rpc_context *rpc, int status, void *data, void *priv)
{
    (void)rpc;
    nfs_req *r = priv;
    if (status == 0 && data) {
        hb_buf b = HB_BUF_INIT;
        /* libnfs 4.0 allocates the nodes only 4-byte aligned: copy them out
         * with memcpy rather than reading through the pointer */
        exports x;
        memcpy(&x, data, sizeof x);
        while (x) {
            struct exportnode node;
            memcpy(&node, (const void *)x, sizeof node);
            if (node.ex_dir &&
                (hb_buf_append_str(&b, node.ex_dir) || hb_buf_append_str(&b, "\n")))
                break;
            x = node.ex_next;
        }
        r->extext = b.len ? (char *)b.data : NULL;
        if (!b.len)
            hb_buf_free(&b);
    } else {
        status = -EIO;
    }
    r->status = status;
    r->done = true;
    (*r->pending)--;
}

/* ---- errors ---- */

/* A request failed because of the connection rather than the server's
 * answer: libnfs reports RPC errors as -EFAULT, cancelled and timed out
 * requests as -EINTR. */
static bool conn_error(int status)
{
    return status == -EFAULT || status == -EINTR || status == -ECONNRESET ||
           status == -EPIPE || status == -ENOTCONN || status == -ETIMEDOUT ||
           status == -ECONNREFUSED || status == -EHOSTUNREACH || status == -ENETUNREACH;
}

/* The error of a failed request r doing `what` on path. */
static int req_err(nfs_target *nt, nfs_conn *c, const nfs_req *r, const char *what,
                   const char *path, hb_err *e)
{
    int st = r->status;
    if (conn_error(st) || c->broken) {
        c->broken = true;
        if (st == -EINTR) /* libnfs' own timeout (the same as ours) */
            return hb_seterr(e, HARVBK_E_TARGET, "NFS server %s did not answer within %u ms "
                             "(%s %s%s)", nt->server, nt->timeout_ms, what,
                             nt->export ? nt->export : "", path);
        return hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: %s %s%s: %s", nt->server, what,
                         nt->export ? nt->export : "", path,
                         r->msg[0] ? r->msg : "connection failed");
    }
    int code;
    switch (-st) {
    case ENOENT:
    case ENOTDIR:
    case ESTALE: /* removed between the LOOKUP and the use of its handle */
        code = HARVBK_E_NOTFOUND;
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        code = HARVBK_E_PERM;
        break;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        code = HARVBK_E_IO;
        break;
    case ENOMEM:
        code = HARVBK_E_NOMEM;
        break;
    default:
        code = hb_errno_code(-st);
        if (code == HARVBK_E_ERROR || code == HARVBK_OK)
            code = HARVBK_E_IO;
    }
    return hb_seterr(e, code, "NFS server %s: %s %s%s: %s", nt->server, what,
                     nt->export ? nt->export : "", path, r->msg[0] ? r->msg : strerror(-st));
}

/* ---- the event loop ---- */

static uint64_t left_ms(uint64_t deadline)
{
    uint64_t now = hb_mono_ms();
    return now >= deadline ? 0 : deadline - now;
}

static void conn_destroy(nfs_conn *c);

/* libnfs 4.0 leaks the state of a connection attempt (rpc_connect_program_
 * async: ~230 bytes, and never calls its callback) when the context is
 * destroyed while it is connecting. The kernel may well have completed the
 * connect already (at once on a local network), but libnfs only notices in
 * nfs_service(): let it see what is ready, without waiting, before c is
 * destroyed on a timeout (a mount cut by the deadline, which a loaded
 * machine makes likely). Callbacks that run here land in the caller's
 * requests, which are alive (the same rule as for conn_destroy()). */
static void conn_settle(nfs_conn *c)
{
    for (int i = 0; i < 4 && c->nfs; i++) {
        int fd = nfs_get_fd(c->nfs);
        if (fd < 0)
            break;
        struct pollfd p = { fd, (short)nfs_which_events(c->nfs), 0 };
        if (poll(&p, 1, 0) <= 0)
            break;
        if (nfs_service(c->nfs, p.revents) < 0)
            break;
    }
}

/* Run c's event loop while *pending >= below (below = 1: until every request
 * finished; below = *pending: until one more finished) or until the deadline.
 * On timeout or a dead socket the connection is marked broken and destroyed
 * at once, which cancels its requests: their callbacks run here, while the
 * caller's requests are alive (callers wait from the frame that owns them). */
static int conn_wait_below(nfs_target *nt, nfs_conn *c, int *pending, int below,
                           uint64_t deadline, hb_err *e)
{
    int rc = 0;
    while (*pending >= below && *pending > 0) {
        if (c->broken || !c->nfs) {
            rc = hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: connection lost", nt->server);
            break;
        }
        uint64_t left = left_ms(deadline);
        if (left == 0) {
            atomic_fetch_add(&nt->n_timeouts, 1);
            rc = hb_seterr(e, HARVBK_E_TARGET, "NFS server %s did not answer within %u ms",
                           nt->server, nt->timeout_ms);
            break;
        }
        int fd = nfs_get_fd(c->nfs);
        struct pollfd p = { fd, (short)nfs_which_events(c->nfs), 0 };
        int slice = (int)HB_MIN(left, (uint64_t)NFS_SLICE_MS);
        int r;
        if (fd < 0) {
            struct timespec ts = { 0, (long)slice * 1000000L };
            nanosleep(&ts, NULL);
            r = 0;
        } else {
            r = poll(&p, 1, slice);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                r = 0;
        }
        /* libnfs keeps its last error text (often an earlier request's
         * server answer, e.g. "MKDIR ... NFS3ERR_EXIST") when a socket dies
         * without a new one: only a text set by this nfs_service() is shown */
        char before[160];
        const char *m0 = nfs_get_error(c->nfs);
        snprintf(before, sizeof before, "%s", m0 ? m0 : "");
        if (nfs_service(c->nfs, r > 0 ? p.revents : 0) < 0) {
            const char *m = nfs_get_error(c->nfs);
            bool fresh = m && *m && strncmp(m, before, sizeof before - 1) != 0;
            rc = hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: connection lost: %s", nt->server,
                           fresh ? m : "the server closed the connection or went away");
            break;
        }
    }
    if (rc) {
        c->broken = true;
        if (*pending > 0) {
            conn_settle(c);
            conn_destroy(c);
        }
    }
    return rc;
}

static int conn_wait(nfs_target *nt, nfs_conn *c, int *pending, uint64_t deadline, hb_err *e)
{
    return conn_wait_below(nt, c, pending, 1, deadline, e);
}

/* A request could not even be queued (out of memory or a dead context). */
static int queue_err(nfs_target *nt, nfs_conn *c, const char *what, const char *path, hb_err *e)
{
    const char *m = nfs_get_error(c->nfs);
    c->broken = true;
    return hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: cannot send %s %s: %s", nt->server,
                     what, path, m && *m ? m : "request not queued");
}

/* ---- connections ---- */

/* Destroy c's context (cancelling what is in flight: the callbacks run now,
 * so the requests' owner must still be alive). c stays marked broken until
 * pool_put() releases it; nothing may be sent on it before. */
static void cb_ignore(int err, struct nfs_context *nfs, void *data, void *priv)
{
    (void)err;
    (void)nfs;
    (void)data;
    (void)priv;
}

static void conn_destroy(nfs_conn *c)
{
    /* the open file handle is freed by a close (no round trip without
     * unstable data; with, the cancelled COMMIT's callback frees it) */
    if (c->nfs && c->fh)
        (void)nfs_close_async(c->nfs, c->fh, cb_ignore, NULL);
    c->fh = NULL;
    if (c->nfs)
        nfs_destroy_context(c->nfs);
    c->nfs = NULL;
    c->broken = true;
}

/* Check before sending on c. */
static int conn_ok(nfs_target *nt, nfs_conn *c, hb_err *e)
{
    if (c->nfs && !c->broken)
        return 0;
    c->broken = true;
    return hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: connection lost", nt->server);
}

/* A new context with the URL's options, our overrides, not connected. */
static struct nfs_context *new_context(nfs_target *nt, struct nfs_url **url, hb_err *e)
{
    struct nfs_context *nfs = nfs_init_context();
    if (!nfs) {
        hb_seterr(e, HARVBK_E_NOMEM, "cannot create an NFS context");
        return NULL;
    }
    struct nfs_url *u = nfs_parse_url_dir(nfs, nt->url);
    if (!u) {
        const char *m = nfs_get_error(nfs);
        hb_seterr(e, HARVBK_E_INVALID, "invalid nfs:// URL: %s", m && *m ? m : "cannot parse");
        nfs_destroy_context(nfs);
        return NULL;
    }
    /* we reconnect ourselves (bounded); libnfs' directory cache would show
     * other writers' changes late; our own loop runs the timeouts, but let
     * libnfs time requests out as well */
    nfs_set_autoreconnect(nfs, 0);
    nfs_set_dircache(nfs, 0);
    nfs_set_timeout(nfs, (int)nt->timeout_ms);
    if (url)
        *url = u;
    else
        nfs_destroy_url(u);
    return nfs;
}

/* libnfs' words for a refused or reset connection, made plain. */
static const char *conn_msg(const char *m)
{
    if (strstr(m, "POLLHUP") || strstr(m, "POLLERR") || strstr(m, "refused"))
        return "connection refused or closed (no NFS/MOUNT service on that port, or the "
               "server went away)";
    return m;
}

/* Mount `path` on a new context within the deadline. *status gets the mount's
 * libnfs status (0, or -errno: -EACCES/-ENOENT are the server's refusals). */
static int mount_path(nfs_target *nt, const char *path, uint64_t deadline, nfs_conn *c,
                      int *status, hb_err *e)
{
    *status = 0;
    c->broken = false;
    c->nfs = new_context(nt, NULL, e);
    if (!c->nfs)
        return e ? e->code : HARVBK_E_ERROR;
    int pending = 1;
    nfs_req r;
    req_init(&r, &pending);
    if (nfs_mount_async(c->nfs, nt->server, path, cb_plain, &r) != 0) {
        const char *m = nfs_get_error(c->nfs);
        int rc = hb_seterr(e, HARVBK_E_TARGET, "cannot connect to NFS server %s: %s",
                           nt->server, m && *m ? m : "mount not started");
        *status = -EIO;
        conn_destroy(c);
        return rc;
    }
    int rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc) {
        *status = -ETIMEDOUT;
        if (r.done && r.status < 0 && r.status != -EINTR) /* not our cancellation */
            hb_seterr(e, HARVBK_E_TARGET, "cannot connect to NFS server %s: %s", nt->server,
                      conn_msg(r.msg));
        conn_destroy(c);
        return rc;
    }
    if (r.status < 0) {
        *status = r.status;
        if (r.status == -EACCES || r.status == -ENOENT || r.status == -ENOTDIR ||
            r.status == -EPERM)
            rc = hb_seterr(e, HARVBK_E_PERM, "NFS server %s refused to mount %s: %s",
                           nt->server, path, r.msg);
        else if (r.status == -EINTR)
            rc = hb_seterr(e, HARVBK_E_TARGET, "NFS server %s did not answer within %u ms "
                           "(mounting %s)", nt->server, nt->timeout_ms, path);
        else if (conn_error(r.status))
            rc = hb_seterr(e, HARVBK_E_TARGET, "cannot connect to NFS server %s: %s",
                           nt->server, conn_msg(r.msg));
        else
            rc = hb_seterr(e, HARVBK_E_TARGET, "cannot mount %s from NFS server %s: %s", path,
                           nt->server, r.msg);
        conn_destroy(c);
        return rc;
    }
    uint64_t rmax = nfs_get_readmax(c->nfs), wmax = nfs_get_writemax(c->nfs);
    c->rsize = rmax ? HB_MIN(rmax, (uint64_t)NFS_PIECE_MAX) : 65536;
    c->wsize = wmax ? HB_MIN(wmax, (uint64_t)NFS_PIECE_MAX) : 65536;
    atomic_fetch_add(&nt->n_connects, 1);
    if (atomic_exchange(&nt->had_conn, true))
        atomic_fetch_add(&nt->n_reconnects, 1);
    return 0;
}

/* Take a connection (connected) from the pool. *reused: it was connected
 * before (it sat idle in the pool, and may have died there unnoticed);
 * false: connected just now. An idle connection older than the last
 * connection failure (see nfs_target.gen) is discarded, not handed out. */
static int pool_get(nfs_target *nt, uint64_t deadline, nfs_conn **out, bool *reused, hb_err *e)
{
    *out = NULL;
    *reused = false;
    pthread_mutex_lock(&nt->mu);
    nfs_conn *c = NULL;
    unsigned gen = 0;
    for (;;) {
        nfs_conn *idle = NULL;
        gen = atomic_load(&nt->gen);
        for (unsigned i = 0; i < nt->nconns; i++) {
            if (nt->conns[i].busy)
                continue;
            if (nt->conns[i].nfs && nt->conns[i].gen == gen) {
                c = &nt->conns[i];
                break;
            }
            if (!idle) /* not connected, or stale: connects anew */
                idle = &nt->conns[i];
        }
        if (!c)
            c = idle;
        if (c)
            break;
        uint64_t left = left_ms(deadline);
        if (left == 0) {
            pthread_mutex_unlock(&nt->mu);
            return hb_seterr(e, HARVBK_E_TARGET,
                             "NFS server %s: no connection became free within %u ms",
                             nt->server, nt->timeout_ms);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&nt->cv, &nt->mu, &ts);
    }
    c->busy = true;
    pthread_mutex_unlock(&nt->mu);
    if (c->nfs && c->gen != gen) {
        hb_log_debug(nt->base.log, "NFS server %s: discarding an idle connection opened "
                     "before a connection failure", nt->server);
        conn_destroy(c);
        c->broken = false;
    }
    *reused = c->nfs != NULL;
    if (!c->nfs) {
        int status;
        c->gen = gen; /* taken before connecting: a failure meanwhile makes it stale */
        int rc = mount_path(nt, nt->export, deadline, c, &status, e);
        if (rc) {
            c->broken = false;
            pthread_mutex_lock(&nt->mu);
            c->busy = false;
            pthread_cond_signal(&nt->cv);
            pthread_mutex_unlock(&nt->mu);
            return rc;
        }
    }
    *out = c;
    return 0;
}

/* Give a connection back; a broken one is destroyed first (which runs the
 * callbacks of its cancelled requests: call this before the requests of the
 * operation go out of scope). */
static void pool_put(nfs_target *nt, nfs_conn *c)
{
    if (!c)
        return;
    if (c->broken) {
        /* the idle connections of its generation are suspect from now on
         * (only the first failure of a generation starts a new one) */
        unsigned g = c->gen;
        atomic_compare_exchange_strong(&nt->gen, &g, g + 1);
        conn_destroy(c);
    }
    c->broken = false; /* a free slot: connected, or reconnected on next use */
    pthread_mutex_lock(&nt->mu);
    c->busy = false;
    pthread_cond_signal(&nt->cv);
    pthread_mutex_unlock(&nt->mu);
}

/* ---- paths and keys ---- */

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

/* Absolute path (inside the export) of key, or of the root for "". */
static char *obj_path(const nfs_target *nt, const char *rel)
{
    if (!*rel)
        return hb_strdup(*nt->root ? nt->root : "/");
    return hb_asprintf("%s/%s", nt->root, rel);
}

/* ---- single requests on a connection (the caller owns c) ---- */

/* GETATTR of path; `follow` false: of a symbolic link itself (lstat). */
static int stat_path(nfs_target *nt, nfs_conn *c, const char *path, bool follow,
                     uint64_t deadline, struct nfs_stat_64 *st, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    int pending = 1;
    nfs_req r;
    req_init(&r, &pending);
    int q = follow ? nfs_stat64_async(c->nfs, path, cb_stat, &r)
                   : nfs_lstat64_async(c->nfs, path, cb_stat, &r);
    if (q != 0)
        return queue_err(nt, c, follow ? "GETATTR" : "LOOKUP", path, e);
    int rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc)
        return rc;
    if (r.status < 0)
        return req_err(nt, c, &r, "cannot stat", path, e);
    *st = r.u.st;
    return 0;
}

static int do_stat(nfs_target *nt, nfs_conn *c, const char *path, uint64_t deadline,
                   struct nfs_stat_64 *st, hb_err *e)
{
    return stat_path(nt, c, path, true, deadline, st, e);
}

static int do_lstat(nfs_target *nt, nfs_conn *c, const char *path, uint64_t deadline,
                    struct nfs_stat_64 *st, hb_err *e)
{
    return stat_path(nt, c, path, false, deadline, st, e);
}

/* The modes of what the target creates: private, unless the store's config
 * object (a regular file, not a link) lets the group or others read it; then
 * they may read what is added too (hb_store_modes, as the local target). Best
 * effort: an error leaves them private. */
static void nfs_store_modes(nfs_target *nt, nfs_conn *c, uint64_t deadline)
{
    char *p = obj_path(nt, HB_STORE_CONFIG_NAME);
    struct nfs_stat_64 st;
    hb_err ignored;
    if (p && do_lstat(nt, c, p, deadline, &st, &ignored) == 0 &&
        (st.nfs_mode & S_IFMT) == S_IFREG)
        hb_store_modes((unsigned)st.nfs_mode, &nt->file_mode, &nt->dir_mode);
    hb_free(p);
}

/* Check that every component of rel[0..n) (a key's directory, below the
 * root) is a real directory, not a symbolic link, from the top down (libnfs
 * follows links while it resolves a path; the components above the one
 * checked are known real). Returns 0, HARVBK_E_NOTFOUND at the first
 * component that is missing or not a directory, HARVBK_E_CORRUPT at a link.
 * Directories found real are remembered in `cache` (`slots` slots, a power
 * of two; NULL: check all) and not checked again. */
static int check_dirs(nfs_target *nt, nfs_conn *c, const char *rel, size_t n,
                      _Atomic uint64_t *cache, size_t slots, uint64_t deadline, hb_err *e)
{
    for (size_t j = 0; j < n;) {
        while (j < n && rel[j] != '/')
            j++;
        uint64_t h = hb_key_hash(rel, j);
        _Atomic uint64_t *slot = cache ? &cache[h & (slots - 1)] : NULL;
        if (!(slot && atomic_load(slot) == h)) {
            char *path = hb_asprintf("%s/%.*s", nt->root, (int)j, rel);
            if (!path)
                return hb_seterr(e, HARVBK_E_NOMEM, NULL);
            struct nfs_stat_64 st;
            int rc = do_lstat(nt, c, path, deadline, &st, e);
            hb_free(path);
            if (rc == 0 && (st.nfs_mode & S_IFMT) == S_IFLNK)
                return hb_target_link_err(e, rel, j);
            if (rc == 0 && (st.nfs_mode & S_IFMT) != S_IFDIR)
                return hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
            if (rc)
                return rc;
            if (slot)
                atomic_store(slot, h);
        }
        j++;
    }
    return 0;
}

/* check_dirs on the directory of key. */
static int check_parent(nfs_target *nt, nfs_conn *c, const char *key, _Atomic uint64_t *cache,
                        size_t slots, uint64_t deadline, hb_err *e)
{
    const char *slash = strrchr(key, '/');
    return slash ? check_dirs(nt, c, key, (size_t)(slash - key), cache, slots, deadline, e) : 0;
}

/* The same with the target's cache of checked directories. */
static int check_parent_cached(nfs_target *nt, nfs_conn *c, const char *key, uint64_t deadline,
                               hb_err *e)
{
    return check_parent(nt, c, key, nt->dircache, NFS_DIRCACHE, deadline, e);
}

static int do_simple(nfs_target *nt, nfs_conn *c, int op, const char *p1, const char *p2,
                     uint64_t deadline, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    int pending = 1;
    nfs_req r;
    req_init(&r, &pending);
    int q;
    const char *what;
    switch (op) {
    case 'm':
        q = nfs_mkdir2_async(c->nfs, p1, (int)nt->dir_mode, cb_plain, &r);
        what = "cannot create directory";
        break;
    case 'r':
        q = nfs_rename_async(c->nfs, p1, p2, cb_plain, &r);
        what = "cannot rename into place";
        break;
    case 'u':
        q = nfs_unlink_async(c->nfs, p1, cb_plain, &r);
        what = "cannot delete";
        break;
    default: /* 'a': writable? */
        q = nfs_access_async(c->nfs, p1, W_OK, cb_plain, &r);
        what = "no write access to";
        break;
    }
    if (q != 0)
        return queue_err(nt, c, what, p1, e);
    int rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc)
        return rc;
    if (r.status < 0)
        return req_err(nt, c, &r, what, op == 'r' ? p2 : p1, e);
    return 0;
}

/* mkdir -p of the absolute path `dir` (inside the export), tolerating
 * concurrent creators. */
static int mkdir_p(nfs_target *nt, nfs_conn *c, const char *dir, uint64_t deadline, hb_err *e)
{
    char *p = hb_strdup(dir);
    if (!p)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    size_t n = strlen(p);
    int rc = 0;
    /* find the deepest existing ancestor quickly in the common case: try the
     * full path first */
    hb_err e2;
    rc = do_simple(nt, c, 'm', p, NULL, deadline, &e2);
    if (rc == 0 || rc == HARVBK_E_EXISTS) {
        hb_free(p);
        if (rc == HARVBK_E_EXISTS) {
            struct nfs_stat_64 st;
            rc = do_stat(nt, c, dir, deadline, &st, e);
            if (rc == 0 && (st.nfs_mode & S_IFMT) != S_IFDIR)
                rc = hb_seterr(e, HARVBK_E_INVALID,
                               "'%s' is an object, it cannot also be a directory", dir);
        }
        return rc;
    }
    if (rc != HARVBK_E_NOTFOUND) {
        hb_free(p);
        if (e)
            *e = e2;
        return rc;
    }
    rc = 0;
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (i < n && p[i] != '/')
            continue;
        p[i] = '\0';
        hb_err e3;
        int r = do_simple(nt, c, 'm', p, NULL, deadline, &e3);
        if (r == HARVBK_E_EXISTS) {
            struct nfs_stat_64 st;
            r = do_stat(nt, c, p, deadline, &st, &e3);
            if (r == 0 && (st.nfs_mode & S_IFMT) != S_IFDIR)
                r = hb_seterr(&e3, HARVBK_E_INVALID,
                              "'%s' is an object, it cannot also be a directory", p);
        }
        if (r) {
            rc = r;
            if (e)
                *e = e3;
        }
        if (i < n)
            p[i] = '/';
    }
    hb_free(p);
    return rc;
}

/* Close a file handle (no round trip for handles without unstable data). */
static void close_fh(nfs_target *nt, nfs_conn *c, struct nfsfh *fh, uint64_t deadline)
{
    if (!fh || !c->nfs)
        return;
    c->fh = NULL;
    int pending = 1;
    nfs_req r;
    req_init(&r, &pending);
    if (nfs_close_async(c->nfs, fh, cb_plain, &r) != 0)
        return;
    if (pending > 0 && !c->broken)
        (void)conn_wait(nt, c, &pending, deadline, NULL);
    if (pending > 0)
        conn_destroy(c); /* runs the callback while r is alive */
}

/* ---- operations with retries ---- */

typedef int (*nfs_op_fn)(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e);

/* Run fn on a pooled connection; when the connection broke (not when the
 * server answered with an error), retry on a new one while the operation's
 * time budget (timeout_ms) lasts: the budget is time, not a number of
 * attempts, so fast failures do not use it up.
 *
 * A connection taken idle from the pool that turns out dead (the server
 * restarted, or reset it, while it sat there) says nothing about the server
 * now: the operation is retried at once, on a new connection (the failure
 * also makes every other idle connection of its time stale, see pool_get()).
 * After a failure on a connection made for this attempt (server down,
 * refusing, or dropping us), the retry waits 100, 200, 400, 800, then
 * 1000 ms, shortened to half the time left. */
static int run_op(nfs_target *nt, nfs_op_fn fn, void *arg, hb_err *e)
{
    uint64_t deadline = hb_mono_ms() + nt->timeout_ms;
    unsigned backoff = 0;
    for (;;) {
        nfs_conn *c = NULL;
        bool broken = true, reused = false;
        int rc = pool_get(nt, deadline, &c, &reused, e);
        if (rc == 0) {
            rc = fn(nt, c, arg, deadline, e);
            broken = c->broken;
            pool_put(nt, c);
        } else if (rc == HARVBK_E_PERM || rc == HARVBK_E_NOMEM || rc == HARVBK_E_INVALID) {
            broken = false; /* the server refused the mount: no point retrying */
        }
        if (rc == 0 || !broken)
            return rc;
        uint64_t left = left_ms(deadline);
        if (left == 0)
            return rc;
        if (reused) {
            atomic_fetch_add(&nt->n_retries, 1);
            hb_log_debug(nt->base.log, "NFS server %s: a pooled connection was dead, retrying "
                         "at once on a new one: %s", nt->server, e ? e->msg : "error");
            continue;
        }
        uint64_t pause = backoff < 4 ? 100u << backoff : 1000u;
        backoff++;
        pause = HB_MIN(pause, left / 2);
        if (left - pause < NFS_MIN_TRY_MS)
            return rc;
        atomic_fetch_add(&nt->n_retries, 1);
        hb_log_debug(nt->base.log, "NFS server %s: retrying in %llu ms (%llu ms left) after: %s",
                     nt->server, (unsigned long long)pause, (unsigned long long)left,
                     e ? e->msg : "error");
        struct timespec ts = { (time_t)(pause / 1000), (long)(pause % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* ---- put ---- */

typedef struct put_arg {
    const char *key;
    const void *data;
    size_t len;
} put_arg;

/* Pipelined WRITEs (write) or READs of [0, len) of fh from / into buf:
 * NFS_WINDOW requests in flight, pieces of the server's preferred size,
 * short transfers continued. On failure with requests in flight the
 * connection is destroyed here, while r[] is alive. */
static int pipe_io(nfs_target *nt, nfs_conn *c, struct nfsfh *fh, bool write, uint8_t *buf,
                   uint64_t len, const char *path, uint64_t deadline, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    nfs_req r[NFS_WINDOW];
    bool inuse[NFS_WINDOW];
    memset(r, 0, sizeof r);
    memset(inuse, 0, sizeof inuse);
    uint64_t piece = write ? c->wsize : c->rsize, next = 0;
    int pending = 0, rc = 0;
    for (;;) {
        for (int i = 0; i < NFS_WINDOW && rc == 0; i++) {
            uint64_t off, n;
            if (inuse[i] && !r[i].done)
                continue;
            if (inuse[i]) { /* finished: check it */
                inuse[i] = false;
                if (r[i].status < 0) {
                    rc = req_err(nt, c, &r[i], write ? "cannot write" : "cannot read", path, e);
                    break;
                }
                uint64_t got = (uint64_t)r[i].status;
                if (got == 0 && r[i].len) {
                    rc = hb_seterr(e, HARVBK_E_IO, write
                                   ? "NFS server %s: a write to %s made no progress"
                                   : "NFS server %s: %s ended early", nt->server, path);
                    break;
                }
                if (got < r[i].len) {
                    off = r[i].off + got;
                    n = r[i].len - got;
                } else if (next < len) {
                    off = next;
                    n = HB_MIN(len - next, piece);
                    next += n;
                } else {
                    continue;
                }
            } else if (next < len) {
                off = next;
                n = HB_MIN(len - next, piece);
                next += n;
            } else {
                continue;
            }
            req_init(&r[i], &pending);
            r[i].off = off;
            r[i].len = n;
            r[i].dst = buf + off;
            pending++;
            inuse[i] = true;
            int q = write ? nfs_pwrite_async(c->nfs, fh, off, n, buf + off, cb_plain, &r[i])
                          : nfs_pread_async(c->nfs, fh, off, n, cb_read, &r[i]);
            if (q != 0) {
                pending--;
                inuse[i] = false;
                rc = queue_err(nt, c, write ? "WRITE" : "READ", path, e);
            }
        }
        if (rc || pending == 0)
            break;
        rc = conn_wait_below(nt, c, &pending, pending, deadline, e);
        if (rc)
            break;
    }
    if (rc && pending > 0) {
        c->broken = true;
        conn_destroy(c); /* cancels the requests in flight: r[] is alive */
    }
    return rc;
}

/* Create path and write data into it with FILE_SYNC writes, pipelined. */
static int write_file(nfs_target *nt, nfs_conn *c, const char *path, const void *data,
                      size_t len, uint64_t deadline, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    int pending = 1;
    nfs_req cr;
    req_init(&cr, &pending);
    if (nfs_create_async(c->nfs, path, O_WRONLY | O_CREAT | O_TRUNC | O_SYNC, (int)nt->file_mode,
                         cb_fh, &cr) != 0)
        return queue_err(nt, c, "CREATE", path, e);
    int rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc)
        return rc;
    if (cr.status < 0)
        return req_err(nt, c, &cr, "cannot create", path, e);
    struct nfsfh *fh = cr.u.fh;
    c->fh = fh;
    rc = pipe_io(nt, c, fh, true, (uint8_t *)(uintptr_t)data, len, path, deadline, e);
    if (c->nfs && !c->broken)
        close_fh(nt, c, fh, deadline);
    else
        conn_destroy(c);
    if (rc == 0 && c->broken)
        rc = conn_ok(nt, c, e);
    return rc;
}

static int put_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    put_arg *a = arg;
    uint8_t rnd[4];
    char rhex[9];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, rhex);
    unsigned long long n = (unsigned long long)atomic_fetch_add(&nt->counter, 1);
    char *tmp = hb_asprintf("%s/%s-%llu-%s", nt->tmpdir,
                            nt->base.owner ? nt->base.owner : "harvbk", n, rhex);
    char *path = obj_path(nt, a->key);
    if (!tmp || !path) {
        hb_free(tmp);
        hb_free(path);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_err e2;
    /* neither tmp/ nor the key's directories may be links; missing ones are
     * created below */
    int rc = check_dirs(nt, c, TMP_DIR, sizeof TMP_DIR - 1, nt->dircache, NFS_DIRCACHE, deadline,
                        e);
    if (rc == 0 || rc == HARVBK_E_NOTFOUND)
        rc = check_parent_cached(nt, c, a->key, deadline, e);
    if (rc && rc != HARVBK_E_NOTFOUND) {
        hb_free(tmp);
        hb_free(path);
        return rc;
    }
    rc = write_file(nt, c, tmp, a->data, a->len, deadline, &e2);
    if (rc == HARVBK_E_NOTFOUND && !c->broken) { /* tmp/ is missing */
        rc = mkdir_p(nt, c, nt->tmpdir, deadline, e);
        if (rc == 0)
            rc = write_file(nt, c, tmp, a->data, a->len, deadline, e);
    } else if (rc && e) {
        *e = e2;
    }
    if (rc == 0) {
        rc = do_simple(nt, c, 'r', tmp, path, deadline, &e2);
        if (rc == HARVBK_E_NOTFOUND && !c->broken) {
            /* the key's directory is missing: create it and rename again */
            char *slash = strrchr(path, '/');
            *slash = '\0';
            rc = mkdir_p(nt, c, path, deadline, e);
            *slash = '/';
            if (rc == 0)
                rc = do_simple(nt, c, 'r', tmp, path, deadline, e);
        } else if (rc && e) {
            *e = e2;
        }
        if (rc == HARVBK_E_EXISTS || (rc == HARVBK_E_IO && !c->broken)) {
            /* the key is a directory */
            struct nfs_stat_64 st;
            hb_err e3;
            if (do_stat(nt, c, path, deadline, &st, &e3) == 0 &&
                (st.nfs_mode & S_IFMT) == S_IFDIR)
                rc = hb_seterr(e, HARVBK_E_INVALID, "the key is a prefix of other objects, "
                                                    "it cannot also be an object");
        }
    }
    if (rc && !c->broken) {
        hb_err ignored;
        (void)do_simple(nt, c, 'u', tmp, NULL, deadline, &ignored);
    }
    hb_free(tmp);
    hb_free(path);
    return rc;
}

static int nt_put(hb_target *t, const char *key, const void *data, size_t len, hb_err *e)
{
    nfs_target *nt = (nfs_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    put_arg a = { key, data, len };
    return run_op(nt, put_fn, &a, e);
}

/* ---- get ---- */

typedef struct get_arg {
    const char *key;
    hb_buf *out;
    size_t max;
} get_arg;

static int get_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    get_arg *a = arg;
    hb_buf_reset(a->out);
    char *path = obj_path(nt, a->key);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int pending = 1;
    nfs_req op;
    req_init(&op, &pending);
    int rc = check_parent_cached(nt, c, a->key, deadline, e);
    if (rc == 0 && nfs_open_async(c->nfs, path, O_RDONLY | O_NOFOLLOW, cb_fh, &op) != 0)
        rc = queue_err(nt, c, "OPEN", path, e);
    if (rc == 0)
        rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc == 0 && op.status < 0) {
        struct nfs_stat_64 lst;
        hb_err e2;
        if (!conn_error(op.status) && op.status != -ENOENT &&
            do_lstat(nt, c, path, deadline, &lst, &e2) == 0 &&
            (lst.nfs_mode & S_IFMT) == S_IFLNK) {
            rc = hb_target_link_err(e, a->key, strlen(a->key));
        } else {
            rc = req_err(nt, c, &op, "cannot open", path, e);
            if (rc == HARVBK_E_NOTFOUND || op.status == -EISDIR)
                rc = hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
        }
    }
    if (rc) {
        hb_free(path);
        return rc;
    }
    struct nfsfh *fh = op.u.fh;
    c->fh = fh;
    pending = 1;
    nfs_req sr;
    req_init(&sr, &pending);
    if (nfs_fstat64_async(c->nfs, fh, cb_stat, &sr) != 0)
        rc = queue_err(nt, c, "GETATTR", path, e);
    if (rc == 0)
        rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc == 0 && sr.status < 0)
        rc = req_err(nt, c, &sr, "cannot stat", path, e);
    uint64_t size = sr.u.st.nfs_size;
    if (rc == 0 && (sr.u.st.nfs_mode & S_IFMT) != S_IFREG)
        rc = hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
    else if (rc == 0 && size > (uint64_t)a->max)
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "object is %llu bytes, more than the %zu expected",
                       (unsigned long long)size, a->max);
    else if (rc == 0 && (size >= SIZE_MAX || hb_buf_reserve(a->out, (size_t)size + 1)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, "object of %llu bytes does not fit in memory",
                       (unsigned long long)size);
    /* pipelined READs; objects are never modified in place, so the size holds */
    if (rc == 0)
        rc = pipe_io(nt, c, fh, false, a->out->data, size, path, deadline, e);
    if (c->nfs && !c->broken)
        close_fh(nt, c, fh, deadline);
    else
        conn_destroy(c);
    if (rc == 0 && c->broken)
        rc = conn_ok(nt, c, e);
    if (rc == 0) {
        a->out->len = (size_t)size;
        a->out->data[size] = '\0';
    } else {
        hb_buf_reset(a->out);
    }
    hb_free(path);
    return rc;
}

static int nt_get_max(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e)
{
    nfs_target *nt = (nfs_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    get_arg a = { key, out, max };
    return run_op(nt, get_fn, &a, e);
}

static int nt_get(hb_target *t, const char *key, hb_buf *out, hb_err *e)
{
    return nt_get_max(t, key, out, SIZE_MAX - 1, e);
}

/* ---- head ---- */

typedef struct head_arg {
    const char *key;
    uint64_t *size;
} head_arg;

static int head_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    head_arg *a = arg;
    char *path = obj_path(nt, a->key);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    struct nfs_stat_64 st;
    int rc = check_parent_cached(nt, c, a->key, deadline, e);
    if (rc == 0)
        rc = do_lstat(nt, c, path, deadline, &st, e);
    hb_free(path);
    if (rc == 0 && (st.nfs_mode & S_IFMT) == S_IFLNK)
        return hb_target_link_err(e, a->key, strlen(a->key));
    if (rc == HARVBK_E_NOTFOUND || (rc == 0 && (st.nfs_mode & S_IFMT) != S_IFREG))
        return hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
    if (rc == 0)
        *a->size = st.nfs_size;
    return rc;
}

static int nt_head(hb_target *t, const char *key, uint64_t *size, hb_err *e)
{
    nfs_target *nt = (nfs_target *)t;
    int rc = check_key(key, e);
    if (rc)
        return rc;
    head_arg a = { key, size };
    return run_op(nt, head_fn, &a, e);
}

/* ---- delete ---- */

#define NFS_DEL_MEMO 256u /* directories checked once per del_many call */

typedef struct del_arg {
    const char *const *keys; /* keys (relative) or, with abs, absolute paths */
    size_t n;
    size_t done; /* keys [0, done) are gone: a retry resumes there */
    bool abs;
    _Atomic uint64_t *memo; /* NFS_DEL_MEMO slots: directories checked by this call */
} del_arg;

/* A REMOVE that failed on something that is not an object (a directory)
 * counts as done: a directory is not an object. */
static int del_check(nfs_target *nt, nfs_conn *c, nfs_req *r, const char *path,
                     uint64_t deadline, hb_err *e)
{
    if (r->status >= 0 || r->status == -ENOENT || r->status == -ENOTDIR)
        return 0;
    if (conn_error(r->status))
        return req_err(nt, c, r, "cannot delete", path, e);
    struct nfs_stat_64 st;
    hb_err e2;
    if (r->status != -EACCES && r->status != -EROFS &&
        do_stat(nt, c, path, deadline, &st, &e2) == 0 && (st.nfs_mode & S_IFMT) == S_IFDIR)
        return 0;
    return req_err(nt, c, r, "cannot delete", path, e);
}

static int del_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    del_arg *a = arg;
    nfs_req r[NFS_DEL_WINDOW];
    char *paths[NFS_DEL_WINDOW];
    int rc = 0;
    while (rc == 0 && a->done < a->n) {
        size_t batch = HB_MIN(a->n - a->done, (size_t)NFS_DEL_WINDOW);
        int pending = 0;
        size_t queued = 0;
        /* never delete through a link: check the keys' directories afresh
         * (a key whose directory is missing is already gone) */
        bool gone[NFS_DEL_WINDOW];
        for (size_t i = 0; i < batch && rc == 0; i++) {
            gone[i] = false;
            if (a->abs)
                continue;
            rc = check_parent(nt, c, a->keys[a->done + i], a->memo, NFS_DEL_MEMO, deadline, e);
            if (rc == HARVBK_E_NOTFOUND) {
                hb_err_clear(e);
                gone[i] = true;
                rc = 0;
            }
        }
        if (rc)
            break;
        for (size_t i = 0; i < batch; i++) {
            const char *k = a->keys[a->done + i];
            if (gone[i]) {
                paths[i] = NULL;
                req_init(&r[i], &pending);
                r[i].done = true;
                r[i].status = -ENOENT;
                queued = i + 1;
                continue;
            }
            paths[i] = a->abs ? hb_strdup(k) : obj_path(nt, k);
            if (!paths[i]) {
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                break;
            }
            req_init(&r[i], &pending);
            pending++;
            queued = i + 1;
            if (nfs_unlink_async(c->nfs, paths[i], cb_plain, &r[i]) != 0) {
                pending--;
                rc = queue_err(nt, c, "REMOVE", paths[i], e);
                hb_free(paths[i]);
                queued = i;
                break;
            }
        }
        if (rc == 0 || pending > 0) {
            hb_err e2;
            int wr = conn_wait(nt, c, &pending, deadline, rc ? &e2 : e);
            if (rc == 0)
                rc = wr;
        }
        if (pending > 0)
            conn_destroy(c); /* r[] alive: cancelled callbacks land here */
        for (size_t i = 0; i < queued; i++) {
            if (rc == 0 && !c->broken && c->nfs) {
                /* NFSv3 REMOVE is synchronous: nothing more to make durable */
                rc = del_check(nt, c, &r[i], paths[i], deadline, e);
            }
            hb_free(paths[i]);
        }
        if (rc == 0)
            a->done += batch;
    }
    return rc;
}

static int nt_del_many(hb_target *t, const char *const *keys, size_t n, hb_err *e)
{
    nfs_target *nt = (nfs_target *)t;
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(keys[i], e);
        if (rc)
            return rc;
    }
    _Atomic uint64_t *memo = hb_calloc(NFS_DEL_MEMO, sizeof *memo);
    if (!memo)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    del_arg a = { keys, n, 0, false, memo };
    /* each batch of the window gets its own time budget */
    int rc = 0;
    while (rc == 0 && a.done < n) {
        size_t before = a.done;
        rc = run_op(nt, del_fn, &a, e);
        if (rc && a.done > before)
            rc = 0; /* progress made: a new budget for the rest */
    }
    hb_free(memo);
    return rc;
}

static int nt_del(hb_target *t, const char *key, hb_err *e)
{
    return nt_del_many(t, &key, 1, e);
}

/* ---- list ---- */

typedef struct dent {
    char *name;
    bool is_dir, is_reg;
    uint64_t size;
    int64_t mtime;
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

typedef struct readdir_arg {
    const char *path;
    dent *v;
    size_t n;
} readdir_arg;

/* Entries of a directory (READDIRPLUS: type, size, mtime come along),
 * sorted; a missing directory is an empty one. */
static int readdir_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    if (conn_ok(nt, c, e))
        return HARVBK_E_TARGET;
    readdir_arg *a = arg;
    a->v = NULL;
    a->n = 0;
    int pending = 1;
    nfs_req r;
    req_init(&r, &pending);
    if (nfs_opendir_async(c->nfs, a->path, cb_dir, &r) != 0)
        return queue_err(nt, c, "READDIR", a->path, e);
    int rc = conn_wait(nt, c, &pending, deadline, e);
    if (rc)
        return rc;
    if (r.status < 0) {
        rc = req_err(nt, c, &r, "cannot read directory", a->path, e);
        return rc == HARVBK_E_NOTFOUND ? 0 : rc;
    }
    struct nfsdir *d = r.u.dir;
    size_t cap = 0;
    struct nfsdirent *de;
    while (rc == 0 && (de = nfs_readdir(c->nfs, d)) != NULL) {
        if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
            continue;
        if (a->n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            dent *nv = hb_realloc(a->v, ncap * sizeof *nv);
            if (!nv) {
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                break;
            }
            a->v = nv;
            cap = ncap;
        }
        dent *x = &a->v[a->n];
        x->name = hb_strdup(de->name);
        if (!x->name) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        x->is_dir = de->type == NF3DIR;
        x->is_reg = de->type == NF3REG;
        x->size = de->size;
        x->mtime = (int64_t)de->mtime.tv_sec;
        a->n++;
    }
    nfs_closedir(c->nfs, d);
    if (rc) {
        dents_free(a->v, a->n);
        a->v = NULL;
        a->n = 0;
        return rc;
    }
    if (a->n > 1)
        qsort(a->v, a->n, sizeof *a->v, dent_cmp);
    return 0;
}

static int read_dir(nfs_target *nt, const char *path, dent **out, size_t *nout, hb_err *e)
{
    readdir_arg a = { path, NULL, 0 };
    int rc = run_op(nt, readdir_fn, &a, e);
    *out = a.v;
    *nout = a.n;
    return rc;
}

typedef struct checkdirs_arg {
    const char *rel;
    size_t n;
} checkdirs_arg;

static int checkdirs_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    checkdirs_arg *a = arg;
    return check_dirs(nt, c, a->rel, a->n, NULL, 0, deadline, e);
}

typedef struct list_ctx {
    nfs_target *nt;
    const char *prefix;
    size_t plen;
    hb_list_cb cb;
    void *ud;
} list_ctx;

int hb_nfs_walk_entry(const char *rel, const char *name, bool is_dir, bool is_reg,
                      const char *prefix, size_t plen, char **key)
{
    *key = NULL;
    if (!rel[0] && !strcmp(name, TMP_DIR))
        return HB_WALK_SKIP;
    if (!is_dir && !is_reg)
        return HB_WALK_SKIP;
    /* one segment of a key, whatever the server says (a name with '/' would
     * make the next READDIR path leave this directory) */
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
        return HB_WALK_SKIP;
    char *k = hb_asprintf(is_dir ? "%s%s/" : "%s%s", rel, name);
    if (!k)
        return HARVBK_E_NOMEM;
    size_t klen = strlen(k) - (is_dir ? 1 : 0);
    if (is_dir) {
        /* descend only where keys can still start with prefix, and only
         * while a valid key fits below ("<dir>/x"): a server that shows a
         * directory inside itself, forever, ends here instead of recursing
         * until the stack runs out */
        if (klen + 2 > HB_KEY_MAX) {
            hb_free(k);
            return HB_WALK_SKIP;
        }
        size_t cmp = HB_MIN(klen, plen);
        if (strncmp(k, prefix, cmp) == 0 && (klen >= plen || prefix[klen] == '/')) {
            *key = k;
            return HB_WALK_DESCEND;
        }
    } else if (klen >= plen && !strncmp(k, prefix, plen) && hb_key_valid(k)) {
        *key = k;
        return HB_WALK_EMIT;
    }
    hb_free(k);
    return HB_WALK_SKIP;
}

/* Walk <root>/<rel> where rel is "" or ends with '/'. */
static int walk(list_ctx *lc, const char *rel, hb_err *e)
{
    nfs_target *nt = lc->nt;
    char *dir = rel[0] ? hb_asprintf("%s/%.*s", nt->root, (int)(strlen(rel) - 1), rel)
                       : obj_path(nt, "");
    if (!dir)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    dent *v;
    size_t n;
    int rc = read_dir(nt, dir, &v, &n, e);
    hb_free(dir);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *key = NULL;
        int what = hb_nfs_walk_entry(rel, v[i].name, v[i].is_dir, v[i].is_reg, lc->prefix,
                                     lc->plen, &key);
        if (what < 0)
            rc = hb_seterr(e, what, NULL);
        else if (what == HB_WALK_DESCEND)
            rc = walk(lc, key, e);
        else if (what == HB_WALK_EMIT)
            rc = lc->cb(key, v[i].size, v[i].mtime, lc->ud);
        hb_free(key);
    }
    dents_free(v, n);
    return rc;
}

static int nt_list(hb_target *t, const char *prefix, hb_list_cb cb, void *ud, hb_err *e)
{
    nfs_target *nt = (nfs_target *)t;
    if (!prefix)
        prefix = "";
    if (key_reserved(prefix))
        return 0;
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
    if (dlen) {
        /* a prefix through a link lists nothing (walk never descends into one) */
        checkdirs_arg ca = { prefix, dlen - 1 };
        hb_err e2;
        hb_err_clear(&e2);
        int rc = run_op(nt, checkdirs_fn, &ca, &e2);
        if (rc == HARVBK_E_NOTFOUND)
            return 0;
        if (rc == HARVBK_E_CORRUPT) {
            hb_log_warn(nt->base.log, "%s: not listing %s: %s",
                        nt->base.display ? nt->base.display : nt->server, prefix, e2.msg);
            return 0;
        }
        if (rc) {
            if (e)
                *e = e2;
            return rc;
        }
    }
    char *rel = hb_strndup(prefix, dlen);
    if (!rel)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    list_ctx lc = { nt, prefix, strlen(prefix), cb, ud };
    int rc = walk(&lc, rel, e);
    hb_free(rel);
    return rc;
}

/* ---- maintenance ---- */

static int nt_cleanup(hb_target *t, const char *owner, int64_t max_age_s, hb_err *e)
{
    nfs_target *nt = (nfs_target *)t;
    dent *v;
    size_t n;
    checkdirs_arg ca = { TMP_DIR, sizeof TMP_DIR - 1 };
    int rc = run_op(nt, checkdirs_fn, &ca, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        return 0;
    }
    if (rc)
        return rc; /* tmp/ is a link: nothing there is ours */
    rc = read_dir(nt, nt->tmpdir, &v, &n, e);
    if (rc)
        return rc;
    int64_t now = hb_now();
    char **doomed = n ? hb_calloc(n, sizeof *doomed) : NULL;
    size_t nd = 0;
    if (n && !doomed)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t olen = hb_tmp_owner_len(v[i].name);
        bool remove = false;
        if (olen && v[i].is_reg) {
            if (owner && strlen(owner) == olen && !strncmp(v[i].name, owner, olen))
                remove = true;
            else if (max_age_s >= 0 && v[i].mtime <= now - max_age_s)
                remove = true;
        }
        if (remove) {
            doomed[nd] = hb_asprintf("%s/%s", nt->tmpdir, v[i].name);
            if (!doomed[nd])
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            else
                hb_log_debug(t->log, "removing stale temporary %s", v[i].name);
            nd++;
        }
    }
    if (rc == 0 && nd) {
        del_arg a = { (const char *const *)doomed, nd, 0, true, NULL };
        while (rc == 0 && a.done < nd) {
            size_t before = a.done;
            rc = run_op(nt, del_fn, &a, e);
            if (rc && a.done > before)
                rc = 0;
        }
    }
    for (size_t i = 0; i < nd; i++)
        hb_free(doomed[i]);
    hb_free(doomed);
    dents_free(v, n);
    return rc;
}

static int ping_fn(nfs_target *nt, nfs_conn *c, void *arg, uint64_t deadline, hb_err *e)
{
    (void)arg;
    const char *root = *nt->root ? nt->root : "/";
    struct nfs_stat_64 st;
    int rc = do_stat(nt, c, root, deadline, &st, e);
    if (rc == HARVBK_E_NOTFOUND)
        return hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: the store directory %s%s does "
                         "not exist", nt->server, nt->export, nt->root);
    if (rc)
        return rc;
    if ((st.nfs_mode & S_IFMT) != S_IFDIR)
        return hb_seterr(e, HARVBK_E_TARGET, "NFS server %s: %s%s is not a directory",
                         nt->server, nt->export, nt->root);
    rc = do_simple(nt, c, 'a', root, NULL, deadline, e);
    if (rc == HARVBK_E_PERM)
        return hb_seterr(e, HARVBK_E_PERM, "NFS server %s: the store directory %s%s is not "
                         "writable for this client (uid %d)", nt->server, nt->export, nt->root,
                         (int)getuid());
    return rc;
}

static int nt_ping(hb_target *t, hb_err *e)
{
    return run_op((nfs_target *)t, ping_fn, NULL, e);
}

static void nfs_target_free(nfs_target *nt)
{
    for (unsigned i = 0; i < NFS_POOL_MAX; i++)
        conn_destroy(&nt->conns[i]);
    pthread_mutex_destroy(&nt->mu);
    pthread_cond_destroy(&nt->cv);
    hb_free(nt->url);
    hb_free(nt->server);
    hb_free(nt->export);
    hb_free(nt->root);
    hb_free(nt->tmpdir);
    hb_free((void *)nt->dircache);
    hb_free(nt);
}

static void nt_close(hb_target *t)
{
    nfs_target_free((nfs_target *)t);
}

static const hb_target_ops nfs_ops = {
    .scheme = "nfs",
    .put = nt_put,
    .get = nt_get,
    .head = nt_head,
    .del = nt_del,
    .del_many = nt_del_many,
    .list = nt_list,
    .cleanup = nt_cleanup,
    .ping = nt_ping,
    .close = nt_close,
    .get_max = nt_get_max,
    .put_deferred = NULL,
    .sync = NULL,
};

bool hb_target_nfs_stats(hb_target *t, hb_nfs_stats *out)
{
    if (!t || t->ops != &nfs_ops)
        return false;
    nfs_target *nt = (nfs_target *)t;
    if (out) {
        out->connects = atomic_load(&nt->n_connects);
        out->reconnects = atomic_load(&nt->n_reconnects);
        out->retries = atomic_load(&nt->n_retries);
        out->rpc_waits_timed_out = atomic_load(&nt->n_timeouts);
    }
    return true;
}

/* ---- open ---- */

/* The URL's query option `name` ("version") as an integer, -1 when absent. */
static long url_option(const char *url, const char *name)
{
    const char *q = strchr(url, '?');
    size_t nl = strlen(name);
    while (q) {
        q++;
        if (!strncmp(q, name, nl) && q[nl] == '=')
            return strtol(q + nl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return -1;
}

/* Normalise the URL's path: no empty, "." or ".." segments; no trailing '/'. */
static int check_path(const char *path, hb_err *e)
{
    if (!path || path[0] != '/' || !path[1])
        return hb_seterr(e, HARVBK_E_INVALID,
                         "nfs:// target URL needs an export path (nfs://server/export/path)");
    const char *s = path + 1;
    for (;;) {
        const char *end = strchr(s, '/');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if ((len == 0 && end) || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
            return hb_seterr(e, HARVBK_E_INVALID, "nfs:// target URL: the path must not "
                                                  "contain empty, '.' or '..' segments");
        if (!end)
            return 0;
        s = end + 1;
    }
}

char *hb_nfs_exports_text(const char *list, const char *path, bool *under)
{
    *under = false;
    hb_buf b = HB_BUF_INIT;
    size_t plen = strlen(path);
    for (const char *d = list; d && *d;) {
        const char *nl = strchr(d, '\n');
        size_t dl = nl ? (size_t)(nl - d) : strlen(d), full = dl;
        while (dl > 1 && d[dl - 1] == '/')
            dl--;
        if (dl <= plen && !strncmp(d, path, dl) && (path[dl] == '/' || path[dl] == '\0'))
            *under = true;
        if (b.len)
            hb_buf_append_str(&b, ", ");
        hb_buf_append(&b, d, full);
        d = nl ? nl + 1 : d + full;
    }
    if (!b.len)
        hb_buf_append_str(&b, "none");
    char *s = b.len ? hb_strdup((char *)b.data) : NULL;
    hb_buf_free(&b);
    return s;
}

/* The export list the server shows this client (for the "no such export"
 * message), within the deadline; "" when unavailable. */
static char *exports_text(nfs_target *nt, const char *path, uint64_t deadline, bool *under)
{
    *under = false;
    struct rpc_context *rpc = rpc_init_context();
    if (!rpc)
        return hb_strdup("");
    int pending = 1;
    nfs_req r;
    req_init(&r, &pending);
    if (mount_getexports_async(rpc, nt->server, cb_exports, &r) == 0) {
        while (pending > 0 && left_ms(deadline) > 0) {
            int fd = rpc_get_fd(rpc);
            struct pollfd p = { fd, (short)rpc_which_events(rpc), 0 };
            int x = fd < 0 ? 0
                           : poll(&p, 1, (int)HB_MIN(left_ms(deadline), (uint64_t)NFS_SLICE_MS));
            if (x < 0)
                x = 0;
            if (rpc_service(rpc, x > 0 ? p.revents : 0) < 0)
                break;
        }
    }
    char *s = pending == 0 && r.status == 0 ? hb_nfs_exports_text(r.extext, path, under)
                                             : hb_strdup("");
    rpc_destroy_context(rpc); /* cancels the request if still pending; r is alive */
    hb_free(r.extext);
    return s;
}

/* Find the export: mount the whole path or its longest parent that mounts. */
static int probe_mount(nfs_target *nt, const char *path, uint64_t deadline, hb_err *e)
{
    char *p = hb_strdup(path);
    if (!p)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    nfs_conn *c = &nt->conns[0];
    hb_err first;
    hb_err_clear(&first);
    int first_rc = 0, rc = 0;
    for (;;) {
        int status = 0;
        hb_err e2;
        rc = mount_path(nt, p, deadline, c, &status, &e2);
        if (rc == 0)
            break;
        if (!first_rc || rc != HARVBK_E_PERM) {
            /* the first refusal, or any other failure (which ends the search) */
            first_rc = rc;
            first = e2;
        }
        /* only the server's refusals make a shorter path worth trying */
        char *slash = strrchr(p, '/');
        if (rc != HARVBK_E_PERM || !slash || slash == p)
            break;
        *slash = '\0';
    }
    if (rc) {
        if (first_rc == HARVBK_E_PERM) {
            bool under = false;
            char *ex = exports_text(nt, path, deadline, &under);
            if (ex && *ex && !under)
                rc = hb_seterr(e, HARVBK_E_TARGET, "NFS server %s has no export %s for this "
                               "client (exports it offers: %s)", nt->server, path, ex);
            else
                rc = hb_seterr(e, HARVBK_E_PERM, "%s", first.msg);
            hb_free(ex);
        } else {
            rc = hb_seterr(e, first_rc, "%s", first.msg);
        }
        hb_free(p);
        return rc;
    }
    size_t plen = strlen(p);
    nt->export = p;
    nt->root = hb_strdup(path + plen); /* "" or "/rest" */
    nt->tmpdir = nt->root ? hb_asprintf("%s/" TMP_DIR, nt->root) : NULL;
    if (!nt->root || !nt->tmpdir)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    return 0;
}

int hb_nfs_url_parse(const char *url, char **server, char **path, hb_err *e)
{
    *server = *path = NULL;
    if (!url || strncmp(url, "nfs://", 6) != 0)
        return hb_seterr(e, HARVBK_E_INVALID, "NFS target needs an nfs://server/export/path URL");
    long version = url_option(url, "version");
    if (version != -1 && version != 3)
        return hb_seterr(e, HARVBK_E_UNSUPPORTED,
                         "nfs:// target URL: only NFS version 3 is supported (libnfs 4.0 "
                         "cannot write over NFSv4); drop the version= option");
    struct nfs_context *nfs = nfs_init_context();
    if (!nfs)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot create an NFS context");
    int rc = 0;
    struct nfs_url *u = nfs_parse_url_dir(nfs, url);
    if (!u) {
        const char *m = nfs_get_error(nfs);
        rc = hb_seterr(e, HARVBK_E_INVALID, "invalid nfs:// URL: %s", m && *m ? m : "cannot parse");
    } else if (!u->server || !*u->server) {
        rc = hb_seterr(e, HARVBK_E_INVALID,
                       "nfs:// target URL needs a server (nfs://server/export/path)");
    } else if (strchr(u->server, ':')) {
        rc = hb_seterr(e, HARVBK_E_INVALID, "nfs:// target URL: give the port as "
                       "?nfsport=N (and ?mountport=N), not as server:port");
    } else {
        rc = check_path(u->path, e);
    }
    if (rc == 0) {
        *server = hb_strdup(u->server);
        *path = hb_strdup(u->path);
        if (!*server || !*path) {
            hb_free(*server);
            hb_free(*path);
            *server = *path = NULL;
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        } else {
            size_t n = strlen(*path);
            while (n > 1 && (*path)[n - 1] == '/')
                (*path)[--n] = '\0';
        }
    }
    if (u)
        nfs_destroy_url(u);
    nfs_destroy_context(nfs);
    return rc;
}

int hb_target_nfs_open(hb_target **out, const hb_target_cfg *cfg, hb_err *e)
{
    *out = NULL;
    char *server = NULL, *path = NULL;
    int rc = hb_nfs_url_parse(cfg ? cfg->url : NULL, &server, &path, e);
    if (rc)
        return rc;
    nfs_target *nt = hb_calloc(1, sizeof *nt);
    if (!nt) {
        hb_free(server);
        hb_free(path);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    pthread_mutex_init(&nt->mu, NULL);
    pthread_cond_init(&nt->cv, NULL);
    atomic_init(&nt->counter, 0);
    atomic_init(&nt->n_connects, 0);
    atomic_init(&nt->n_reconnects, 0);
    atomic_init(&nt->n_retries, 0);
    atomic_init(&nt->n_timeouts, 0);
    atomic_init(&nt->had_conn, false);
    atomic_init(&nt->gen, 0);
    atomic_init(&nt->base.lost, 0);
    nt->base.ops = &nfs_ops;
    hb_store_modes(0, &nt->file_mode, &nt->dir_mode); /* private until the config says */
    nt->dircache = hb_calloc(NFS_DIRCACHE, sizeof *nt->dircache); /* NULL: no cache */
    nt->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HB_DEFAULT_TIMEOUT_MS;
    nt->url = hb_strdup(cfg->url);
    nt->server = server;
    if (!nt->url)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0) {
        uint64_t deadline = hb_mono_ms() + nt->timeout_ms;
        rc = probe_mount(nt, path, deadline, e);
        if (rc == 0 && *nt->root) {
            /* create the store directory below the export */
            nfs_conn *c = &nt->conns[0];
            struct nfs_stat_64 st;
            hb_err e2;
            int r = do_stat(nt, c, nt->root, deadline, &st, &e2);
            if (r == HARVBK_E_NOTFOUND)
                r = mkdir_p(nt, c, nt->root, deadline, &e2);
            else if (r == 0 && (st.nfs_mode & S_IFMT) != S_IFDIR)
                r = hb_seterr(&e2, HARVBK_E_INVALID, "NFS server %s: %s is not a directory",
                              nt->server, path);
            if (r) {
                rc = r;
                if (e)
                    *e = e2;
            }
        }
        if (rc == 0) { /* best effort: the modes, and tmp/ (a read-only store can still be read) */
            hb_err ignored;
            nfs_conn *c = &nt->conns[0];
            nfs_store_modes(nt, c, deadline);
            if (!c->broken) /* else put() creates tmp/ on demand */
                (void)do_simple(nt, c, 'm', nt->tmpdir, NULL, hb_mono_ms() + nt->timeout_ms,
                                &ignored);
            if (c->broken)
                conn_destroy(c);
            c->broken = false;
        }
    }
    hb_free(path);
    if (rc) {
        nfs_target_free(nt);
        return rc;
    }
    unsigned par = cfg->parallel ? cfg->parallel : NFS_DEFAULT_PARALLEL;
    nt->nconns = HB_MIN(HB_MAX(par * 2, 16u), NFS_POOL_MAX);
    nt->base.parallel = par;
    nt->base.min_workers = par; /* round trips are latency, not CPU */
    nt->base.list_per_head = 32; /* one LOOKUP against entries per READDIRPLUS */
    *out = &nt->base;
    return 0;
}
