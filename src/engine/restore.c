/*
 * engine/restore.c - the restore pipeline of one volume.
 *
 * The calling thread walks the index (hb_pipe_walk_run) and queues chunk
 * positions; decode workers (one per CPU) fetch each chunk into a free buffer
 * (hb_store_chunk_get decompresses and checks the SHA-256 before returning,
 * so nothing unverified is ever written) and hand the buffer to a few writer
 * threads (RS_WRITERS), which write it at its offset and return the buffer.
 * A decode worker therefore never waits for the disk unless every buffer is
 * queued or being written: disk time overlaps with decoding instead of adding
 * to it (bench/RESULTS.md, "Restore overlap"). Regular files are truncated to
 * the volume size first and holes are not written, so the result is sparse.
 * Block devices get holes zeroed (they may hold old data). While a regular
 * file is written, a flusher thread calls fdatasync every RS_FLUSH_BYTES
 * (rs_flush), so the device's write-back overlaps with decoding instead of
 * all of it waiting for the final fdatasync, which stays. Write callbacks
 * keep the direct path (the decode worker calls the callback, as before) and
 * get zero buffers for holes.
 * Memory: one encoded buffer per decode worker, plus decode workers + writers
 * chunk buffers (decode workers only, for callbacks), allocated as one block
 * in transparent huge pages where available (fewer pinned pages and device
 * segments per O_DIRECT write): independent of the volume size.
 */
#include "pipeline.h"
#include "../core/ticker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <pthread.h>
#include <unistd.h>

#define RS_WRITE_PIECE (1u << 20)
#define RS_WRITERS HB_ENGINE_RESTORE_WRITERS
/* Bytes handed to the disk between two fdatasync calls of the flusher. */
#define RS_FLUSH_BYTES ((uint64_t)8 << 20)

typedef enum { DST_FILE, DST_DEV, DST_CB } rs_dst;

/* A decoded chunk (or, with `zero`, a range of a device to zero) on its way
 * to the disk. */
typedef struct rs_wbuf {
    uint8_t *raw;
    uint64_t off;
    uint32_t len;
    bool zero;
    bool written; /* raw went to a writer thread: claim it before decoding (rs_claim) */
} rs_wbuf;

typedef struct rs_worker {
    hb_buf scratch;
} rs_worker;

typedef struct rs_ctx {
    hb_pipe pipe;
    hb_store *st;
    const hb_index *ix;
    const hb_vol_io *vol;
    const char *volname;
    rs_dst dst;
    int fd;
    int dfd;                /* the same file opened O_DIRECT, or -1 */
    atomic_bool direct_ok;  /* cleared when the filesystem refuses O_DIRECT */
    const uint8_t *zeros;   /* chunk_size zero bytes (callbacks, devices) */
    bool zero_range_ok;     /* fallocate(FALLOC_FL_ZERO_RANGE) works on fd */
    hb_pool bufs;           /* free rs_wbuf */
    hb_pool workers;        /* free rs_worker (encoded-data scratch) */
    hb_workq *wq;           /* the writers; NULL: decode workers write (callbacks) */
    hb_flusher fl; /* regular files with writer threads (rs_flush); else off */
} rs_ctx;

static int write_fd(int fd, const uint8_t *buf, size_t len, uint64_t off, const char *vol,
                    hb_err *e)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return hb_seterr(e, errno == ENOSPC ? HARVBK_E_IO : hb_errno_code(errno),
                             "volume '%s': write error at offset %" PRIu64 ": %s", vol,
                             off + done, strerror(errno));
        }
        if (n == 0)
            return hb_seterr(e, HARVBK_E_IO, "volume '%s': write error at offset %" PRIu64
                             ": no progress", vol, off + done);
        done += (size_t)n;
    }
    return 0;
}

static int rs_write(rs_ctx *c, const uint8_t *buf, size_t len, uint64_t off, hb_err *e)
{
    if (c->dst == DST_CB) {
        int r = c->vol->write_cb(buf, len, off, c->vol->payload);
        if (r == 0)
            return 0;
        int code = hb_callback_code(r);
        return hb_seterr(e, code,
                         "volume '%s': the write callback returned %d at offset %" PRIu64
                         " (length %zu): %s",
                         c->volname, r, off, len, harvbk_strerror(code));
    }
    /* Aligned data goes around the page cache (O_DIRECT): copying a restore
     * into the page cache cost ~2 CPU s per GiB here, more than decompressing
     * and hashing it (bench/RESULTS.md). The final fdatasync still makes the
     * allocation durable. A filesystem that refuses it gets buffered writes. */
    if (c->dfd >= 0 && atomic_load_explicit(&c->direct_ok, memory_order_relaxed) &&
        ((uintptr_t)buf % HB_ENGINE_BUF_ALIGN) == 0 && off % HB_ENGINE_BUF_ALIGN == 0 &&
        len % HB_ENGINE_BUF_ALIGN == 0) {
        size_t done = 0;
        while (done < len) {
            ssize_t n = pwrite(c->dfd, buf + done, len - done, (off_t)(off + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || (size_t)n % HB_ENGINE_BUF_ALIGN)
                break;
            done += (size_t)n;
        }
        if (done == len)
            return 0;
        if (errno != EINVAL || done) {
            /* a real error (or a short write: finish it buffered, below,
             * where errors are reported) */
            buf += done;
            off += done;
            len -= done;
        } else {
            atomic_store(&c->direct_ok, false);
        }
    }
    /* In pieces of at most RS_WRITE_PIECE: every worker writes into the same
     * file, and a buffered write holds the inode lock for its whole length
     * (and the writeback started below competes with it for the pages), so
     * 4 MiB writes from several workers serialise in the kernel, spinning on
     * the lock: 1 MiB pieces halved a 1 GiB restore (bench/RESULTS.md). */
    for (size_t done = 0; done < len;) {
        size_t n = HB_MIN(len - done, (size_t)RS_WRITE_PIECE);
        int r = write_fd(c->fd, buf + done, n, off + done, c->volname, e);
        if (r < 0)
            return r;
#ifdef SYNC_FILE_RANGE_WRITE
        /* Start writeback now so the final fdatasync overlaps with the
         * pipeline instead of flushing the whole volume at the end (and dirty
         * pages stay few). Errors surface in that fdatasync. */
        (void)sync_file_range(c->fd, (off_t)(off + done), (off_t)n, SYNC_FILE_RANGE_WRITE);
#endif
        done += n;
    }
    return 0;
}

/* Regular files were truncated to the volume size, so unwritten ranges read
 * as zeros: write only the runs of non-zero blocks of a chunk, so that a chunk
 * holding a little data and many zeros restores as sparse as its source. */
#define RS_SPARSE_BLOCK (16u * 1024u)
static int rs_write_sparse(rs_ctx *c, const uint8_t *buf, size_t len, uint64_t off, hb_err *e)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = HB_MIN((size_t)RS_SPARSE_BLOCK, len - pos);
        if (hb_is_zero(buf + pos, n)) {
            pos += n;
            continue;
        }
        size_t start = pos;
        while (pos < len) {
            n = HB_MIN((size_t)RS_SPARSE_BLOCK, len - pos);
            if (hb_is_zero(buf + pos, n))
                break;
            pos += n;
        }
        int r = rs_write(c, buf + start, pos - start, off + start, e);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Zero [off, off+len) of a non-regular destination. */
static int rs_zero(rs_ctx *c, uint64_t off, uint32_t len, hb_err *e)
{
#ifdef FALLOC_FL_ZERO_RANGE
    if (c->dst == DST_DEV && c->zero_range_ok) {
        if (fallocate(c->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, len) == 0)
            return 0;
        c->zero_range_ok = false; /* benign race: workers fall back to writing */
    }
#endif
    return rs_write(c, c->zeros, len, off, e);
}

/* The flusher's call (its thread: hb_flusher): fdatasync whenever
 * RS_FLUSH_BYTES more were written.
 * Why: the data reaches the disk with O_DIRECT, but the device (here a VM's
 * virtio disk with a write-back cache on the host) only stores it for good on
 * a flush, and flushing ~0.4-0.8 ms per MiB is most of its work: one flush at
 * the end added ~0.22 s to a 1 GiB restore (532 MiB of data) after all the
 * decoding, the same as the disk ceiling's own fsync. Small flushes while
 * decoding spread that work over the pipeline (bench/RESULTS.md "Restore:
 * flushing while writing"): a flush holds the device's queue, but for a few
 * milliseconds only, which the free chunk buffers bridge. This adds no
 * durability by itself (the final fdatasync still decides), but an error it
 * sees fails the restore: fdatasync reports a write-back error once per open
 * file, so the final call might not see it again. */
static int rs_flush(void *arg)
{
    rs_ctx *c = arg;
    /* buffered writes (no O_DIRECT) have their own write-back started by
     * rs_write: waiting for it here would only stall */
    if (hb_pipe_stopped(&c->pipe) || !atomic_load_explicit(&c->direct_ok, memory_order_relaxed))
        return 0;
    if (fdatasync(c->fd) == 0 || errno == EINTR)
        return 0;
    int err = errno;
    if (err != EINVAL && err != EROFS)
        hb_pipe_failf(&c->pipe, HARVBK_E_IO, "volume '%s': cannot flush the destination: %s",
                      c->volname, strerror(err));
    return -1; /* not flushable (the final call treats it the same) or failed: no more */
}

/* Writer thread: write one decoded chunk (or zero a device range). */
static void rs_write_job(void *job, void *arg)
{
    rs_wbuf *b = job;
    rs_ctx *c = arg;
    if (!hb_pipe_stopped(&c->pipe)) {
        hb_err e;
        hb_err_clear(&e);
        int r;
        if (b->zero)
            r = rs_zero(c, b->off, b->len, &e);
        else if (c->dst == DST_FILE)
            r = rs_write_sparse(c, b->raw, b->len, b->off, &e);
        else
            r = rs_write(c, b->raw, b->len, b->off, &e);
        if (r < 0) {
            hb_pipe_fail(&c->pipe, r, &e);
        } else {
            hb_flusher_count(&c->fl, b->len);
            hb_pipe_progress(&c->pipe, b->len);
        }
    }
    hb_pool_put(&c->bufs, b);
}

/* A buffer that a writer thread handed to the disk (O_DIRECT) comes back
 * with its cache lines owned elsewhere: decompressing into it then stalls on
 * every scattered store (zstd writes literals and match copies of a few
 * dozen bytes). One sequential store pass over the bytes about to be decoded
 * takes them back first at memory speed; in the 1 GiB restore of
 * harvbk_bench it cut restore CPU by about a sixth (zstd 0.41 -> 0.29 s, as
 * much as verify spends on the same chunks; bench/RESULTS.md "Restore:
 * decode buffers"). A touch per page or prefetchw did not help; a store per
 * cache line did as much. */
static void rs_claim(rs_wbuf *b, uint32_t len)
{
    if (b->written) {
        memset(b->raw, 0, len);
        b->written = false;
    }
}

/* Hand b to the writers. 1 (progress is theirs) or the failure. */
static int rs_queue_write(rs_ctx *c, rs_wbuf *b)
{
    if (!b->zero)
        b->written = true;
    int r = hb_workq_submit(c->wq, b);
    if (r < 0) {
        hb_pool_put(&c->bufs, b);
        return hb_pipe_failf(&c->pipe, r, "cannot queue a write");
    }
    return 1;
}

/* Decode worker: chunk i (a queued position). */
static int rs_chunk(void *ctx, hb_walk_item *it)
{
    rs_ctx *c = ctx;
    const hb_index *ix = c->ix;
    uint64_t i = it->i;
    uint64_t off = i * (uint64_t)ix->chunk_size;
    uint32_t len = hb_index_chunk_len(ix, i);
    hb_err e;
    hb_err_clear(&e);
    int r;
    if (hb_index_is_hole(ix, i)) { /* not a regular file: zero it */
        if (c->wq) {
            rs_wbuf *b = hb_pool_get(&c->bufs);
            b->off = off;
            b->len = len;
            b->zero = true;
            return rs_queue_write(c, b);
        }
        r = rs_zero(c, off, len, &e);
        return r < 0 ? hb_pipe_fail(&c->pipe, r, &e) : 0;
    }
    rs_wbuf *b = hb_pool_get(&c->bufs);
    rs_claim(b, len);
    rs_worker *w = hb_pool_get(&c->workers);
    size_t got = 0;
    r = hb_store_chunk_get(c->st, hb_index_id(ix, i), b->raw, ix->chunk_size, &got, &w->scratch,
                           &e);
    hb_pool_put(&c->workers, w);
    if (r < 0) {
        hb_err_prefix(&e, "volume '%s'", c->volname);
    } else if (got != len) {
        char hex[HB_DIGEST_HEX_LEN + 1];
        hb_hex(hb_index_id(ix, i), HB_DIGEST_LEN, hex);
        r = hb_seterr(&e, HARVBK_E_CHUNK,
                      "volume '%s': chunk %s at offset %" PRIu64 " has %zu bytes, the index"
                      " expects %" PRIu32,
                      c->volname, hex, off, got, len);
    } else if (c->wq) {
        /* checked: now the writers may have it */
        b->off = off;
        b->len = len;
        b->zero = false;
        return rs_queue_write(c, b);
    } else if (c->dst == DST_FILE) {
        r = rs_write_sparse(c, b->raw, len, off, &e);
    } else {
        r = rs_write(c, b->raw, len, off, &e);
    }
    hb_pool_put(&c->bufs, b);
    return r < 0 ? hb_pipe_fail(&c->pipe, r, &e) : 0;
}

/* Calling thread: a hole of a regular file is already a hole (truncated). */
static int rs_visit(void *ctx, uint64_t i, uint64_t *bytes)
{
    rs_ctx *c = ctx;
    *bytes = hb_index_chunk_len(c->ix, i);
    if (hb_index_is_hole(c->ix, i))
        return c->dst == DST_FILE ? HB_PIPE_SKIP : HB_PIPE_QUEUE;
    /* read ahead: a decode worker takes it a few chunks from now, and finds
     * it in memory instead of waiting for the store's disk */
    hb_store_chunk_prefetch(c->st, hb_index_id(c->ix, i));
    return HB_PIPE_QUEUE;
}

static const hb_pipe_walk_ops rs_walk_ops = { .visit = rs_visit, .fill = NULL, .work = rs_chunk };

/* Open/prepare the destination. */
static int rs_open(rs_ctx *c, bool *own_fd, hb_err *e)
{
    const hb_vol_io *vol = c->vol;
    const hb_index *ix = c->ix;
    *own_fd = false;
    if (vol->fd < 0 && !vol->path) {
        if (!vol->write_cb)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "volume '%s': no path, descriptor or write callback", c->volname);
        c->dst = DST_CB;
        c->fd = -1;
        return 0;
    }
    char what[200];
    snprintf(what, sizeof what, "volume '%s'", c->volname);
    c->fd = vol->fd;
    if (c->fd < 0) {
        /* never blocks (a FIFO without a reader), refuses anything but a
         * file or block device */
        c->fd = hb_open_volume(vol->path, O_WRONLY | O_CREAT, 0600, what, e);
        if (c->fd < 0) {
            int rc = c->fd;
            c->fd = -1;
            return rc;
        }
        *own_fd = true;
    } else if (hb_check_volume_fd(c->fd, what, e) != 0) {
        return HARVBK_E_INVALID;
    }
    struct stat sb;
    if (fstat(c->fd, &sb) < 0)
        return hb_seterr(e, hb_errno_code(errno), "volume '%s': cannot stat the destination: %s",
                         c->volname, strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        c->dst = DST_FILE;
#ifdef O_DIRECT
        /* A second, O_DIRECT description of the same file (rs_write); through
         * /proc so that a caller's descriptor keeps its own flags. */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", c->fd);
        c->dfd = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
        struct stat db;
        if (c->dfd >= 0 && (fstat(c->dfd, &db) != 0 || db.st_ino != sb.st_ino ||
                            db.st_dev != sb.st_dev)) {
            close(c->dfd);
            c->dfd = -1;
        }
        atomic_store(&c->direct_ok, c->dfd >= 0);
#endif
        /* Drop old content, then extend: the whole file is one hole. */
        if (ftruncate(c->fd, 0) < 0 || ftruncate(c->fd, (off_t)ix->volume_size) < 0)
            return hb_seterr(e, hb_errno_code(errno),
                             "volume '%s': cannot size the destination to %" PRIu64
                             " bytes: %s",
                             c->volname, ix->volume_size, strerror(errno));
        return 0;
    }
    /* Block device: cannot be truncated, holes are zeroed explicitly. */
    c->dst = DST_DEV;
    c->zero_range_ok = S_ISBLK(sb.st_mode);
    uint64_t have = 0;
    if (hb_fd_size(c->fd, &have, NULL) == 0 && have < ix->volume_size)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "volume '%s': the destination has %" PRIu64
                         " bytes, the volume needs %" PRIu64,
                         c->volname, have, ix->volume_size);
    return 0;
}

int hb_engine_restore_volume(hb_job *job, const hb_index *ix, const hb_vol_io *vol, hb_err *e)
{
    if (!job || !job->st || !ix || !vol)
        return hb_seterr(e, HARVBK_E_INVALID, "restore: missing argument");
    const char *name = vol->name ? vol->name : "?";
    if (ix->count && (ix->chunk_size == 0 || !ix->ids))
        return hb_seterr(e, HARVBK_E_INVALID, "volume '%s': empty index", name);

    rs_ctx c;
    memset(&c, 0, sizeof c);
    hb_pipe_init(&c.pipe, job);
    c.st = job->st;
    c.ix = ix;
    c.vol = vol;
    c.volname = name;
    c.fd = -1;
    c.dfd = -1;

    bool own_fd = false;
    hb_err oe;
    hb_err_clear(&oe);
    unsigned nworkers = hb_pipe_workers(job);
    unsigned nwriters = 0;
    size_t nbufs = 0;
    rs_worker *workers = NULL;
    rs_wbuf *bufs = NULL;
    uint8_t *block = NULL; /* the nbufs chunk buffers */
    uint8_t *zeros = NULL;
    int rc = rs_open(&c, &own_fd, &oe);
    if (rc < 0) {
        hb_pipe_fail(&c.pipe, rc, &oe);
        goto done;
    }
    if (ix->count == 0)
        goto sync;
    if (ix->count < nworkers)
        nworkers = (unsigned)ix->count;
    if (c.dst != DST_CB)
        nwriters = ix->count < RS_WRITERS ? (unsigned)ix->count : RS_WRITERS;
    nbufs = (size_t)nworkers + nwriters;
    if (c.dst != DST_FILE) {
        zeros = hb_engine_buf_alloc(ix->chunk_size);
        if (!zeros) {
            hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
            goto done;
        }
        memset(zeros, 0, ix->chunk_size);
        c.zeros = zeros;
    }
    workers = hb_calloc(nworkers, sizeof *workers);
    bufs = hb_calloc(nbufs, sizeof *bufs);
    if (!workers || !bufs || hb_pool_init(&c.bufs, nbufs) < 0 ||
        hb_pool_init(&c.workers, nworkers) < 0) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    /* one block, in huge pages where the system gives them: see
     * hb_engine_bufs_alloc */
    size_t stride = 0;
    block = hb_engine_bufs_alloc(ix->chunk_size, nbufs, &stride);
    if (!block) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory for chunk buffers");
        goto done;
    }
    for (size_t k = 0; k < nbufs; k++) {
        bufs[k].raw = block + k * stride;
        hb_pool_put(&c.bufs, &bufs[k]);
    }
    for (unsigned k = 0; k < nworkers; k++)
        hb_pool_put(&c.workers, &workers[k]);
    if (nwriters) {
        /* depth nbufs: a decode worker never waits for room in the queue,
         * only (through the buffer pool) for a writer to finish */
        rc = hb_workq_new(&c.wq, nwriters, nbufs, rs_write_job, &c);
        if (rc < 0) {
            c.wq = NULL;
            hb_pipe_failf(&c.pipe, rc, "cannot start writer threads");
            goto done;
        }
        if (c.dst == DST_FILE && c.dfd >= 0)
            (void)hb_flusher_init(&c.fl, RS_FLUSH_BYTES, rs_flush, &c); /* else none */
    }

    hb_pipe_walk_run(&c.pipe, ix->count, nworkers, (size_t)nworkers * 2 + 2, NULL, &rs_walk_ops,
                     &c);
    hb_workq_free(c.wq); /* waits for the queued writes */
    c.wq = NULL;
    hb_flusher_stop(&c.fl); /* before the final flush (it may be in one) */

sync:
    if (!hb_pipe_stopped(&c.pipe) && c.dst != DST_CB) {
        if (fdatasync(c.fd) < 0 && errno != EINVAL && errno != EROFS)
            hb_pipe_failf(&c.pipe, HARVBK_E_IO, "volume '%s': cannot flush the destination: %s",
                          name, strerror(errno));
    }

done:
    hb_workq_free(c.wq);
    hb_flusher_stop(&c.fl);
    rc = hb_pipe_result(&c.pipe, e);
    if (workers)
        for (unsigned k = 0; k < nworkers; k++)
            hb_buf_free(&workers[k].scratch);
    hb_engine_bufs_free(block, nbufs);
    hb_free(workers);
    hb_free(bufs);
    hb_engine_buf_free(zeros);
    hb_pool_destroy(&c.bufs);
    hb_pool_destroy(&c.workers);
    hb_pipe_destroy(&c.pipe);
    if (c.dfd >= 0)
        close(c.dfd);
    if (own_fd && close(c.fd) < 0 && rc == 0)
        rc = hb_seterr(e, HARVBK_E_IO, "volume '%s': cannot close the destination: %s", name,
                       strerror(errno));
    if (rc == 0)
        hb_log_debug(job->log, "restored volume '%s': %" PRIu64 " bytes", name, ix->volume_size);
    return rc;
}
