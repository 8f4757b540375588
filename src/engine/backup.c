/*
 * engine/backup.c - the backup pipeline of one volume.
 *
 * The calling thread walks the chunk positions in order (hb_pipe_walk_run).
 * A chunk outside the caller's changed ranges is copied from the previous
 * index and a chunk that is a file hole stays a hole; neither is read. Every other chunk is read into
 * one of a fixed set of buffers (2 per worker + 2) and handed to the workers,
 * which do zero detection, SHA-256, dedup, compression and upload (deferred:
 * one durability barrier per volume at the end, see below). The reader
 * blocks while every buffer is in use, so memory is bounded by
 * (workers * 2 + 2) * chunk size whatever the volume size.
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hole tracking over a regular file: one SEEK_DATA/SEEK_HOLE pair per extent.
 * [data, end) is the data extent at or after the last query position. */
typedef struct bk_holes {
    int fd;
    bool on;
    uint64_t data, end;
} bk_holes;

typedef struct bk_ctx {
    hb_pipe pipe;
    hb_store *st;
    const char *volname;
    hb_index *out;
    hb_dset *known;    /* shared with the caller; under hb_engine_set_mu */
    hb_dset *inflight; /* new ids some worker is uploading; under hb_engine_set_mu */
    bool known_is_store; /* an id not in known is absent: put, no head() */
    hb_pool scratch;   /* hb_buf per worker for encoded chunks */
    atomic_uint_fast64_t zero_chunks, new_chunks, uploaded_bytes, reused_chunks;
    /* the reader (calling thread only) */
    const hb_vol_io *vol;
    int fd;            /* the source, or -1 for the read callback */
    uint32_t cs;
    const hb_index *prev;
    const hb_rangeset *changed;
    bool use_prev;     /* chunks outside `changed` may be copied from prev */
    bk_holes holes;
    uint64_t read_bytes, skipped, hole_bytes;
} bk_ctx;

/* Make [h->data, h->end) the data extent at or after pos, unless pos is still
 * before the end of the one known. Off when the file cannot say (then all of
 * it is data). */
static void holes_seek(bk_holes *h, uint64_t pos)
{
    if (!h->on || pos < h->end)
        return;
    off_t d = lseek(h->fd, (off_t)pos, SEEK_DATA);
    if (d < 0) {
        if (errno == ENXIO) { /* hole up to the end of the file */
            h->data = h->end = UINT64_MAX;
        } else {              /* EINVAL: not supported here; treat all as data */
            h->on = false;
        }
        return;
    }
    off_t x = lseek(h->fd, d, SEEK_HOLE);
    if (x < 0) {
        h->on = false;
        return;
    }
    h->data = (uint64_t)d;
    h->end = (uint64_t)x > (uint64_t)d ? (uint64_t)x : (uint64_t)d + 1;
}

static bool chunk_is_hole(bk_holes *h, uint64_t off, uint64_t len)
{
    holes_seek(h, off);
    return h->on && off + len <= h->data;
}

static int set_add_locked(hb_dset *s, const uint8_t id[HB_DIGEST_LEN])
{
    pthread_mutex_lock(&hb_engine_set_mu);
    int r = hb_dset_add(s, id);
    pthread_mutex_unlock(&hb_engine_set_mu);
    return r < 0 ? r : 0;
}

/* Worker: one chunk read by bk_fill (it->data holds it->bytes bytes). */
static int bk_chunk(void *ctx, hb_walk_item *it)
{
    bk_ctx *c = ctx;
    const uint8_t *buf = it->data;
    uint32_t len = (uint32_t)it->bytes;
    if (hb_is_zero(buf, len)) {
        atomic_fetch_add(&c->zero_chunks, 1);
        return 0; /* id stays zero: restored as a hole */
    }
    uint8_t id[HB_DIGEST_LEN];
    hb_store_chunk_id(c->st, buf, len, id); /* keyed when the store is encrypted */

    /* Known to be in the store, or being uploaded right now by another worker
     * of this pipeline: reuse. The latter is safe because the index is only
     * used once the whole pipeline has succeeded, i.e. after that upload and
     * the barrier that makes it durable did. */
    pthread_mutex_lock(&hb_engine_set_mu);
    bool have = hb_dset_has(c->known, id) || hb_dset_has(c->inflight, id);
    int r = have ? 0 : hb_dset_add(c->inflight, id);
    pthread_mutex_unlock(&hb_engine_set_mu);
    if (r < 0)
        return hb_pipe_failf(&c->pipe, HARVBK_E_NOMEM, "out of memory");
    if (have) {
        atomic_fetch_add(&c->reused_chunks, 1);
        memcpy(hb_index_id(c->out, it->i), id, HB_DIGEST_LEN);
        return 0;
    }

    hb_err e;
    hb_err_clear(&e);
    /* Not known: one head(), unless known is the listing of the whole store
     * (job->known_is_store), which said absent. A chunk another writer stored
     * since that listing is simply put again: puts replace whole objects
     * atomically on every target (S3 PUT; a temporary renamed into place on
     * local and NFS), and any two objects of one id hold the same bytes (an
     * encrypted store's differ only in their nonce, and both decrypt to the
     * same content), so readers see one complete chunk either way. */
    r = c->known_is_store ? 0 : hb_store_chunk_exists(c->st, id, &e);
    if (r < 0) {
        hb_err_prefix(&e, "volume '%s'", c->volname);
        return hb_pipe_fail(&c->pipe, r, &e);
    }
    if (r == 1) {
        atomic_fetch_add(&c->reused_chunks, 1);
    } else {
        hb_buf *scratch = hb_pool_get(&c->scratch);
        uint64_t stored = 0;
        r = hb_store_chunk_put_deferred(c->st, id, buf, len, scratch, &stored, &e);
        hb_pool_put(&c->scratch, scratch);
        if (r < 0) {
            hb_err_prefix(&e, "volume '%s'", c->volname);
            return hb_pipe_fail(&c->pipe, r, &e);
        }
        atomic_fetch_add(&c->new_chunks, 1);
        atomic_fetch_add(&c->uploaded_bytes, stored);
    }
    if (set_add_locked(c->known, id) < 0)
        return hb_pipe_failf(&c->pipe, HARVBK_E_NOMEM, "out of memory");
    memcpy(hb_index_id(c->out, it->i), id, HB_DIGEST_LEN);
    return 0;
}

/* May chunk i of prev be copied without reading? A hole always; a chunk only
 * when it is known to be in the store (a chunk lost since prev was written,
 * or named by a damaged index, is read and stored again). */
static bool prev_present(bk_ctx *c, const hb_index *prev, uint64_t i)
{
    if (hb_index_is_hole(prev, i))
        return true;
    pthread_mutex_lock(&hb_engine_set_mu);
    bool have = hb_dset_has(c->known, hb_index_id(prev, i));
    pthread_mutex_unlock(&hb_engine_set_mu);
    return have;
}

static int read_fd(int fd, uint8_t *buf, size_t len, uint64_t off, const char *vol, hb_err *e)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return hb_seterr(e, HARVBK_E_IO, "volume '%s': read error at offset %" PRIu64 ": %s",
                             vol, off + done, strerror(errno));
        }
        if (n == 0)
            return hb_seterr(e, HARVBK_E_IO,
                             "volume '%s': unexpected end of data at offset %" PRIu64
                             " (did the volume shrink?)",
                             vol, off + done);
        done += (size_t)n;
    }
    return 0;
}

/* Read [off, off + len) of a regular file whose holes are tracked: only its
 * data extents are read, its holes are zeroed in buf. Reading a hole would
 * make the kernel allocate, zero and copy out page-cache pages for it (and
 * read ahead into more of it): an incremental of a sparse VM disk reads many
 * chunks that are partly a hole, wherever the guest wrote into unallocated
 * blocks (bench/RESULTS.md, "Holes inside chunks"). A hole that runs to the
 * end of the file is checked against the file's size, so that a volume that
 * shrank still fails as it does with pread. A chunk of more than
 * SPARSE_PIECES extents (a finely fragmented file) has the rest read in one
 * pread, so that the lseek and pread calls per chunk stay bounded. */
#define SPARSE_PIECES 8
static int read_sparse(bk_ctx *c, uint8_t *buf, size_t len, uint64_t off, hb_err *e)
{
    bk_holes *h = &c->holes;
    uint64_t pos = off, end = off + len;
    for (unsigned piece = 0; pos < end && piece < SPARSE_PIECES; piece++) {
        holes_seek(h, pos);
        if (!h->on)
            break;
        if (pos >= h->data) { /* data up to h->end */
            uint64_t r = h->end < end ? h->end : end;
            int rc = read_fd(c->fd, buf + (pos - off), (size_t)(r - pos), pos, c->volname, e);
            if (rc)
                return rc;
            pos = r;
            continue;
        }
        uint64_t size, z = h->data < end ? h->data : end;
        if (h->data == UINT64_MAX && (hb_fd_size(c->fd, &size, NULL) != 0 || size < end))
            break; /* no data after pos, and the file ends before the chunk: pread says why */
        memset(buf + (pos - off), 0, (size_t)(z - pos));
        pos = z;
    }
    return pos < end ? read_fd(c->fd, buf + (pos - off), (size_t)(end - pos), pos, c->volname, e)
                     : 0;
}

static int read_cb(const hb_vol_io *vol, uint8_t *buf, size_t len, uint64_t off, const char *name,
                   hb_err *e)
{
    int r = vol->read_cb(buf, len, off, vol->payload);
    if (r == 0)
        return 0;
    int code = hb_callback_code(r);
    return hb_seterr(e, code,
                     "volume '%s': the read callback returned %d at offset %" PRIu64
                     " (length %zu): %s",
                     name, r, off, len, harvbk_strerror(code));
}

/* Calling thread: copy from prev, skip a hole, or read (bk_fill). */
static int bk_visit(void *ctx, uint64_t i, uint64_t *bytes)
{
    bk_ctx *c = ctx;
    uint64_t off = i * (uint64_t)c->cs;
    uint32_t len = hb_index_chunk_len(c->out, i);
    *bytes = len;
    if (c->use_prev && i < c->prev->count && hb_index_chunk_len(c->prev, i) == len &&
        !hb_rangeset_overlaps(c->changed, off, len) && prev_present(c, c->prev, i)) {
        memcpy(hb_index_id(c->out, i), hb_index_id(c->prev, i), HB_DIGEST_LEN);
        c->skipped += len;
        return HB_PIPE_SKIP;
    }
    if (chunk_is_hole(&c->holes, off, len)) {
        c->hole_bytes += len;
        return HB_PIPE_SKIP;
    }
    return HB_PIPE_QUEUE;
}

static int bk_fill(void *ctx, hb_walk_item *it)
{
    bk_ctx *c = ctx;
    uint64_t off = it->i * (uint64_t)c->cs;
    size_t len = (size_t)it->bytes;
    hb_err re;
    hb_err_clear(&re);
    int r = c->fd < 0 ? read_cb(c->vol, it->data, len, off, c->volname, &re)
            : c->holes.on ? read_sparse(c, it->data, len, off, &re)
                          : read_fd(c->fd, it->data, len, off, c->volname, &re);
    if (r < 0)
        return hb_pipe_fail(&c->pipe, r, &re);
    c->read_bytes += len;
    return 0;
}

static const hb_pipe_walk_ops bk_walk_ops = { .visit = bk_visit, .fill = bk_fill,
                                              .work = bk_chunk };

int hb_engine_backup_volume(hb_job *job, const hb_vol_io *vol, const hb_index *prev,
                            const hb_rangeset *changed, hb_dset *known, hb_index *out,
                            hb_backup_stats *stats, hb_err *e)
{
    if (!job || !job->st || !vol || !out)
        return hb_seterr(e, HARVBK_E_INVALID, "backup: missing argument");
    memset(out, 0, sizeof *out);
    hb_store *st = job->st;
    const char *name = vol->name ? vol->name : "?";
    uint32_t cs = st->chunk_size;
    if (cs == 0)
        return hb_seterr(e, HARVBK_E_INVALID, "backup: store has no chunk size");

    /* ---- the source ---- */
    int fd = -1;
    bool own_fd = false;
    uint64_t size = 0;
    bk_holes holes = {.fd = -1, .on = false, .data = 0, .end = 0};
    if (vol->fd >= 0 || vol->path) {
        fd = vol->fd;
        if (fd < 0) {
            char what[200];
            snprintf(what, sizeof what, "volume '%s'", name);
            fd = hb_open_volume(vol->path, O_RDONLY, 0, what, e); /* never blocks */
            if (fd < 0)
                return fd;
            own_fd = true;
        }
        int rc = hb_fd_size(fd, &size, e);
        if (rc < 0) {
            hb_err_prefix(e, "volume '%s'", name);
            if (own_fd)
                close(fd);
            return rc;
        }
        if (vol->size && vol->size < size)
            size = vol->size; /* the volume's part of a larger capture */
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
            holes.fd = fd;
            holes.on = true;
#ifdef POSIX_FADV_SEQUENTIAL
            posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
        }
    } else if (vol->read_cb) {
        size = vol->size;
    } else {
        return hb_seterr(e, HARVBK_E_INVALID, "volume '%s': no path, descriptor or read callback",
                         name);
    }

    int rc = hb_index_init(out, size, cs);
    if (rc < 0) {
        if (own_fd)
            close(fd);
        return hb_seterr(e, rc, "volume '%s': cannot allocate the index", name);
    }

    bk_ctx c;
    memset(&c, 0, sizeof c);
    hb_pipe_init(&c.pipe, job);
    c.st = st;
    c.volname = name;
    c.out = out;
    atomic_init(&c.zero_chunks, 0);
    atomic_init(&c.new_chunks, 0);
    atomic_init(&c.uploaded_bytes, 0);
    atomic_init(&c.reused_chunks, 0);

    c.vol = vol;
    c.fd = fd;
    c.cs = cs;
    c.prev = prev;
    c.changed = changed;
    c.use_prev = prev && changed && prev->chunk_size == cs && prev->ids;
    c.holes = holes;

    unsigned nworkers = hb_pipe_workers(job);
    size_t nslots = (size_t)nworkers * 2 + 2;
    if (out->count < nslots)
        nslots = out->count ? (size_t)out->count : 1;
    if (nworkers > nslots)
        nworkers = (unsigned)nslots;
    uint8_t **bufs = hb_calloc(nslots, sizeof *bufs);
    hb_buf *scratch = hb_calloc(nworkers, sizeof *scratch);
    hb_dset *own_known = NULL;

    if (!bufs || !scratch) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    if (!known) {
        own_known = hb_dset_new(prev ? (size_t)prev->count : 1024);
        if (!own_known) {
            hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
            goto done;
        }
        known = own_known;
    }
    c.known = known;
    c.known_is_store = job->known_is_store && !own_known;
    c.inflight = hb_dset_new(1024);
    if (!c.inflight) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    if (prev && prev->ids && own_known) {
        /* no set from the caller: it vouches that prev's chunks are present */
        pthread_mutex_lock(&hb_engine_set_mu);
        for (uint64_t i = 0; i < prev->count && rc >= 0; i++)
            if (!hb_index_is_hole(prev, i))
                rc = hb_dset_add(known, hb_index_id(prev, i));
        pthread_mutex_unlock(&hb_engine_set_mu);
        if (rc < 0) {
            hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
            goto done;
        }
    }
    if (out->count == 0)
        goto done;

    if (hb_pool_init(&c.scratch, nworkers) < 0) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < nslots; k++) {
        bufs[k] = hb_engine_buf_alloc(cs);
        if (!bufs[k]) {
            hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory for chunk buffers");
            goto done;
        }
    }
    for (unsigned k = 0; k < nworkers; k++)
        hb_pool_put(&c.scratch, &scratch[k]);

    uint64_t sync_token = hb_store_chunk_sync_token(st); /* before the first put */

    /* ---- the reader (this thread) and the workers ---- */
    hb_pipe_walk_run(&c.pipe, out->count, nworkers, nslots, (void *const *)bufs, &bk_walk_ops,
                     &c);
    /* The barrier: every chunk the index names is durable and visible before
     * the caller may write anything that references it (chunks were put
     * deferred; docs/FORMAT.md section 8). Also covers chunks another writer
     * renamed into place that this volume reused after head(). */
    if (!hb_pipe_stopped(&c.pipe)) {
        hb_err se;
        hb_err_clear(&se);
        int r = hb_store_chunk_sync(st, sync_token, &se);
        if (r < 0) {
            hb_err_prefix(&se, "volume '%s'", name);
            hb_pipe_fail(&c.pipe, r, &se);
        }
    }

done:
    rc = hb_pipe_result(&c.pipe, e);
    uint64_t read_bytes = c.read_bytes, skipped = c.skipped, hole_bytes = c.hole_bytes;
    if (rc == 0) {
        if (stats) {
            stats->read_bytes += read_bytes;
            stats->skipped_bytes += skipped;
            stats->hole_bytes += hole_bytes;
            stats->zero_chunks += atomic_load(&c.zero_chunks);
            stats->new_chunks += atomic_load(&c.new_chunks);
            stats->uploaded_bytes += atomic_load(&c.uploaded_bytes);
            stats->reused_chunks += atomic_load(&c.reused_chunks);
        }
        hb_log_debug(job->log,
                     "backup of volume '%s': %" PRIu64 " bytes read, %" PRIu64
                     " skipped, %" PRIu64 " in holes, %" PRIu64 " new chunks (%" PRIu64
                     " bytes stored), %" PRIu64 " reused, %" PRIu64 " zero",
                     name, read_bytes, skipped, hole_bytes,
                     (uint64_t)atomic_load(&c.new_chunks),
                     (uint64_t)atomic_load(&c.uploaded_bytes),
                     (uint64_t)atomic_load(&c.reused_chunks),
                     (uint64_t)atomic_load(&c.zero_chunks));
    } else {
        hb_index_clear(out);
        memset(out, 0, sizeof *out);
    }
    if (bufs)
        for (size_t k = 0; k < nslots; k++)
            hb_engine_buf_free(bufs[k]);
    if (scratch)
        for (unsigned k = 0; k < nworkers; k++)
            hb_buf_free(&scratch[k]);
    hb_pool_destroy(&c.scratch); /* a no-op when never initialised (c is zeroed) */
    hb_free(bufs);
    hb_free(scratch);
    if (c.inflight)
        hb_dset_free(c.inflight);
    if (own_known)
        hb_dset_free(own_known);
    hb_pipe_destroy(&c.pipe);
    if (own_fd)
        close(fd);
    return rc;
}
