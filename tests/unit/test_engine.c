/* tests/unit/test_engine.c - the chunk pipelines (backup, restore, verify) and gc,
 * against a real file:// store. */
#include "testutil.h"

#include "core/digestset.h"
#include "engine/engine.h"
#include "engine/pipeline.h"
#include "engine/rangeset.h"
#include "store/store.h"
#include "target/target.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CS (64u * 1024u)

static const hb_logger quiet = { NULL, NULL, 0 };

typedef struct fx {
    char *dir;   /* test directory */
    char *sdir;  /* store root */
    hb_store *st;
    hb_job job;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("engine");
    assert_non_null(f->dir);
    f->sdir = hb_path_join(f->dir, "store");
    assert_int_equal(mkdir(f->sdir, 0755), 0);
    hb_target_cfg cfg;
    hb_target_cfg_init(&cfg);
    cfg.url = hb_asprintf("file://%s", f->sdir);
    cfg.chunk_size = CS;
    cfg.codec = HB_CODEC_ZSTD;
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = NULL;
    int rc = hb_target_open(&t, &cfg, "engine-test", &quiet, &e);
    if (rc)
        fprintf(stderr, "target open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    rc = hb_store_open(&f->st, t, &cfg, &e);
    if (rc)
        fprintf(stderr, "store open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(f->st->chunk_size, CS);
    hb_target_cfg_clear(&cfg);
    f->job.st = f->st;
    f->job.log = &quiet;
    f->job.threads = 2;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hb_store_close(f->st);
    tu_rmrf(f->dir);
    free(f->dir);
    hb_free(f->sdir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static char *tpath(fx *f, const char *name) { return hb_path_join(f->dir, name); }

static hb_vol_io vol_path(const char *name, const char *path)
{
    hb_vol_io v;
    memset(&v, 0, sizeof v);
    v.name = name;
    v.path = path;
    v.fd = -1;
    return v;
}

static int do_backup(fx *f, const char *path, const hb_index *prev, const hb_rangeset *changed,
                     hb_index *out, hb_backup_stats *s, hb_err *e)
{
    hb_vol_io v = vol_path("disk0", path);
    memset(s, 0, sizeof *s);
    hb_err_clear(e);
    int rc = hb_engine_backup_volume(&f->job, &v, prev, changed, NULL, out, s, e);
    if (rc)
        fprintf(stderr, "backup: %d %s\n", rc, e->msg);
    return rc;
}

static void backup_ok(fx *f, const char *path, const hb_index *prev, hb_index *out,
                      hb_backup_stats *s)
{
    hb_err e;
    assert_int_equal(do_backup(f, path, prev, NULL, out, s, &e), 0);
}

static int do_restore(fx *f, const hb_index *ix, const char *path, hb_err *e)
{
    hb_vol_io v = vol_path("disk0", path);
    hb_err_clear(e);
    return hb_engine_restore_volume(&f->job, ix, &v, e);
}

static void restore_ok(fx *f, const hb_index *ix, const char *path)
{
    hb_err e;
    int rc = do_restore(f, ix, path, &e);
    if (rc)
        fprintf(stderr, "restore: %d %s\n", rc, e.msg);
    assert_int_equal(rc, 0);
}

static char *chunk_file(fx *f, const uint8_t *id)
{
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    return hb_path_join(f->sdir, key);
}

static uint8_t *make_random_file(const char *path, size_t n, uint64_t seed)
{
    uint8_t *d = malloc(n ? n : 1);
    tu_fill_random(d, n, seed);
    assert_int_equal(tu_write_file(path, d, n), 0);
    return d;
}

static uint64_t file_size(const char *p)
{
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return (uint64_t)sb.st_size;
}

static uint64_t file_alloc(const char *p)
{
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return (uint64_t)sb.st_blocks * 512;
}

/* Count chunk objects in the store (and their bytes). */
static size_t nchunkfiles;
static uint64_t chunkfile_bytes;
static int count_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag == FTW_F) {
        nchunkfiles++;
        chunkfile_bytes += (uint64_t)sb->st_size;
    }
    return 0;
}
static size_t count_chunks(fx *f)
{
    char *d = hb_path_join(f->sdir, "chunks");
    nchunkfiles = 0;
    chunkfile_bytes = 0;
    nftw(d, count_cb, 16, FTW_PHYS);
    hb_free(d);
    return nchunkfiles;
}

/* Set every chunk object's mtime to `t`. */
static time_t age_to;
static int age_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag == FTW_F) {
        struct timespec ts[2] = { { age_to, 0 }, { age_to, 0 } };
        utimensat(AT_FDCWD, p, ts, 0);
    }
    return 0;
}
static void age_chunks(fx *f, time_t t)
{
    char *d = hb_path_join(f->sdir, "chunks");
    age_to = t;
    nftw(d, age_cb, 16, FTW_PHYS);
    hb_free(d);
}

/* In-memory volume with callbacks that count reads per chunk. */
typedef struct memvol {
    uint8_t *data;
    uint64_t size;
    unsigned reads[4096];
    atomic_int *cancel_at_read; /* set *cancel after `cancel_after` reads */
    unsigned cancel_after, nreads;
    int fail_chunk;             /* read of this chunk fails (-1 none) */
} memvol;

static int mem_read(void *buf, size_t len, uint64_t off, void *p)
{
    memvol *m = p;
    if (off + len > m->size)
        return HARVBK_E_INVALID;
    if (m->fail_chunk >= 0 && off / CS == (uint64_t)m->fail_chunk)
        return HARVBK_E_IO;
    m->reads[off / CS]++;
    m->nreads++;
    if (m->cancel_at_read && m->nreads == m->cancel_after)
        atomic_store(m->cancel_at_read, 1);
    memcpy(buf, m->data + off, len);
    return 0;
}

static int mem_write(const void *buf, size_t len, uint64_t off, void *p)
{
    memvol *m = p;
    if (off + len > m->size)
        return HARVBK_E_INVALID;
    memcpy(m->data + off, buf, len);
    return 0;
}

static hb_vol_io vol_mem(const char *name, memvol *m)
{
    hb_vol_io v;
    memset(&v, 0, sizeof v);
    v.name = name;
    v.fd = -1;
    v.size = m->size;
    v.read_cb = mem_read;
    v.write_cb = mem_write;
    v.payload = m;
    return v;
}

/* ---- rangeset ---- */

static void test_rangeset_build_and_overlaps(void **state)
{
    hb_range in[] = { { 100, 10 }, { 0, 5 }, { 105, 20 }, { 50, 0 }, { 200, 1 }, { 125, 5 } };
    hb_rangeset rs;
    assert_int_equal(hb_rangeset_build(&rs, in, HB_ARRAY_LEN(in)), 0);
    assert_int_equal(rs.n, 3); /* [0,5) [100,130) [200,201) */
    assert_true(rs.r[0].off == 0 && rs.r[0].len == 5);
    assert_true(rs.r[1].off == 100 && rs.r[1].len == 30);
    assert_true(rs.r[2].off == 200 && rs.r[2].len == 1);
    assert_int_equal(hb_rangeset_bytes(&rs), 36);
    assert_true(hb_rangeset_overlaps(&rs, 0, 1));
    assert_true(hb_rangeset_overlaps(&rs, 4, 100));
    assert_false(hb_rangeset_overlaps(&rs, 5, 95));
    assert_true(hb_rangeset_overlaps(&rs, 5, 96));
    assert_true(hb_rangeset_overlaps(&rs, 129, 1));
    assert_false(hb_rangeset_overlaps(&rs, 130, 70));
    assert_true(hb_rangeset_overlaps(&rs, 150, 1000));
    assert_false(hb_rangeset_overlaps(&rs, 201, UINT64_MAX));
    assert_false(hb_rangeset_overlaps(&rs, 0, 0));
    hb_rangeset_clear(&rs);
    assert_int_equal(rs.n, 0);
    assert_false(hb_rangeset_overlaps(&rs, 0, 1000));
    assert_false(hb_rangeset_overlaps(NULL, 0, 1000));
    assert_int_equal(hb_rangeset_build(&rs, NULL, 0), 0);
    assert_int_equal(rs.n, 0);
    hb_range big = { UINT64_MAX - 10, 100 };
    assert_int_equal(hb_rangeset_build(&rs, &big, 1), 0);
    assert_true(hb_rangeset_overlaps(&rs, UINT64_MAX - 1, 1));
    hb_rangeset_clear(&rs);
}

/* ---- round trips ---- */

static void test_dense_roundtrip_odd_size(void **state)
{
    fx *f = *state;
    size_t n = (1u << 20) + 123; /* 16 full chunks and a short one */
    char *src = tpath(f, "dense.img"), *dst = tpath(f, "dense.out");
    uint8_t *d = make_random_file(src, n, 1);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    assert_int_equal(ix.count, 17);
    assert_int_equal(ix.volume_size, n);
    assert_int_equal(ix.chunk_size, CS);
    assert_int_equal(s.read_bytes, n);
    assert_int_equal(s.new_chunks, 17);
    assert_int_equal(s.reused_chunks, 0);
    assert_int_equal(s.hole_bytes, 0);
    assert_int_equal(hb_index_chunk_len(&ix, 16), 123);
    /* ids are the SHA-256 of the plaintext */
    uint8_t id[HB_DIGEST_LEN];
    hb_sha256(d + 16 * (size_t)CS, 123, id);
    assert_memory_equal(id, hb_index_id(&ix, 16), HB_DIGEST_LEN);

    /* the destination exists with larger, older content: it is replaced */
    uint8_t junk[4096];
    memset(junk, 0x5a, sizeof junk);
    FILE *fp = fopen(dst, "wb");
    for (int i = 0; i < 400; i++)
        fwrite(junk, 1, sizeof junk, fp);
    fclose(fp);
    restore_ok(f, &ix, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);

    /* restore into an open descriptor too */
    char *dst2 = tpath(f, "dense.fd");
    int fd = open(dst2, O_RDWR | O_CREAT, 0600);
    hb_vol_io v = vol_path("disk0", NULL);
    v.fd = fd;
    hb_err e;
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &v, &e), 0);
    close(fd);
    assert_int_equal(tu_files_equal(src, dst2), 0);

    hb_dset *checked = hb_dset_new(16);
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", checked, &e), 0);
    assert_int_equal(hb_dset_count(checked), 17);
    hb_dset_free(checked);
    assert_int_equal(hb_engine_buf_live(), 0);

    hb_index_clear(&ix);
    free(d);
    hb_free(src);
    hb_free(dst);
    hb_free(dst2);
}

static void test_sparse_file_holes_not_read_and_restored_sparse(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "sparse.img"), *dst = tpath(f, "sparse.out");
    uint64_t size = 32u << 20; /* 512 chunks */
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint8_t buf[100 * 1024];
    tu_fill_random(buf, sizeof buf, 7);
    assert_int_equal(pwrite(fd, buf, 100, 0), 100);                        /* chunk 0 */
    assert_int_equal(pwrite(fd, buf, sizeof buf, (5u << 20) + 10), sizeof buf); /* 80..82 */
    assert_int_equal(pwrite(fd, buf, 50, (off_t)size - 50), 50);           /* last chunk */
    close(fd);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    assert_int_equal(ix.count, 512);
    /* Filesystems allocate in blocks, so a chunk next to data may be read; at
     * most a handful of chunks are read, the rest are holes. */
    assert_true(s.read_bytes <= 8 * (uint64_t)CS);
    assert_true(s.hole_bytes >= size - 8 * (uint64_t)CS);
    assert_int_equal(s.read_bytes + s.hole_bytes, size);
    assert_true(s.new_chunks >= 4 && s.new_chunks <= 8);
    assert_false(hb_index_is_hole(&ix, 0));
    assert_true(hb_index_is_hole(&ix, 1));
    assert_true(hb_index_is_hole(&ix, 300));
    assert_false(hb_index_is_hole(&ix, 511));

    restore_ok(f, &ix, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);
    assert_int_equal(file_size(dst), size);
    assert_true(file_alloc(dst) < size / 16);

    /* write callbacks get the holes as zeros (the destination may hold junk) */
    memvol m;
    memset(&m, 0, sizeof m);
    m.size = size;
    m.data = malloc(size);
    memset(m.data, 0xaa, size);
    hb_vol_io v = vol_mem("cbvol", &m);
    hb_err e;
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &v, &e), 0);
    uint8_t *want = malloc(size);
    fd = open(src, O_RDONLY);
    assert_int_equal(pread(fd, want, size, 0), (ssize_t)size);
    close(fd);
    assert_memory_equal(want, m.data, size);
    free(want);
    free(m.data);

    hb_index_clear(&ix);
    hb_free(src);
    hb_free(dst);
}

/* The bytes this process has read through read(2)/pread(2) so far
 * (/proc/self/io, rchar; all threads); -1 where the kernel does not say. */
static int64_t proc_rchar(void)
{
    FILE *fp = fopen("/proc/self/io", "r");
    if (!fp)
        return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "rchar: %lld", &v) == 1)
            break;
    fclose(fp);
    return v;
}

/* Chunks that are partly a hole (a guest wrote into unallocated blocks of a
 * sparse disk): only their data extents are read, their holes are zeros in
 * the chunk, never read through the page cache. A finely fragmented chunk
 * (more extents than read_sparse takes one by one) and a chunk whose hole
 * runs to the end of the file come out right too. */
static void test_holes_inside_chunks_not_read(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "partial.img"), *dst = tpath(f, "partial.out");
    const uint64_t nchunks = 64, size = nchunks * CS;
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint8_t data[CS];
    tu_fill_random(data, sizeof data, 11);
    uint64_t data_bytes = 0;
    for (uint64_t i = 0; i < nchunks; i++) {
        uint64_t at = i * CS;
        if (i == 10) { /* all data */
            assert_int_equal(pwrite(fd, data, CS, (off_t)at), (ssize_t)CS);
            data_bytes += CS;
        } else if (i == 20) { /* every other 4 KiB: 16 extents and holes */
            for (uint64_t o = 0; o < CS; o += 8192)
                assert_int_equal(pwrite(fd, data + o, 4096, (off_t)(at + o)), 4096);
            data_bytes += CS / 2;
        } else { /* 4 KiB of data at 8 KiB; the last chunk's hole runs to the end */
            assert_int_equal(pwrite(fd, data + i * 16, 4096, (off_t)(at + 8192)), 4096);
            data_bytes += 4096;
        }
    }
    assert_int_equal(fsync(fd), 0);
    /* what the filesystem itself keeps as data (its blocks may be larger
     * than the 4 KiB written) */
    uint64_t fs_data = 0;
    for (off_t p = lseek(fd, 0, SEEK_DATA); p >= 0 && (uint64_t)p < size;) {
        off_t q = lseek(fd, p, SEEK_HOLE);
        assert_true(q > p);
        fs_data += (uint64_t)(q - p);
        p = lseek(fd, q, SEEK_DATA);
    }
    assert_true(fs_data >= data_bytes);
    close(fd);

    int64_t before = proc_rchar();
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    int64_t after = proc_rchar();
    assert_int_equal(s.read_bytes + s.hole_bytes, size);
    assert_int_equal(s.new_chunks, nchunks);
    for (uint64_t i = 0; i < nchunks; i++)
        assert_false(hb_index_is_hole(&ix, i));
    if (before >= 0 && after >= 0) {
        /* reading every chunk whole would be 4 MiB; the data is 380 KiB on a
         * filesystem of 4 KiB blocks (and the fragmented chunk is read whole
         * after its first extents) */
        uint64_t read = (uint64_t)(after - before);
        assert_true(read >= data_bytes);
        assert_true(read <= fs_data + CS + (256u << 10));
    }

    restore_ok(f, &ix, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);
    hb_err e;
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", NULL, &e), 0);
    hb_index_clear(&ix);
    hb_free(src);
    hb_free(dst);
}

/* A volume that shrinks during its backup still fails as "unexpected end of
 * data", also where the chunk read last ends in a hole that now runs past
 * the end of the file (the holes are zeroed, not read: the file's size is
 * checked instead). */
typedef struct shrink_at {
    const char *path;
    off_t to;
    unsigned calls;
} shrink_at;

static int shrink_cb(uint64_t delta, void *ud)
{
    (void)delta;
    shrink_at *sa = ud;
    if (sa->calls++ == 0)
        assert_int_equal(truncate(sa->path, sa->to), 0);
    return 0;
}

static void test_volume_shrinking_into_a_hole_fails(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "shrink.img");
    const uint64_t nchunks = 64, size = nchunks * CS;
    uint8_t *buf = malloc(size);
    tu_fill_random(buf, size, 12);
    /* every chunk data, but the last one: 4 KiB of data, then a hole to the end */
    assert_int_equal(tu_write_file(src, buf, size - CS + 4096), 0);
    assert_int_equal(truncate(src, (off_t)size), 0);
    free(buf);
    shrink_at sa = { src, (off_t)(size - CS + 8192), 0 };
    f->job.progress = shrink_cb;
    f->job.progress_ud = &sa;
    hb_index ix;
    hb_err e;
    hb_err_clear(&e);
    hb_backup_stats st;
    int rc = do_backup(f, src, NULL, NULL, &ix, &st, &e);
    f->job.progress = NULL;
    f->job.progress_ud = NULL;
    assert_int_equal(rc, HARVBK_E_IO);
    assert_non_null(strstr(e.msg, "unexpected end of data"));
    assert_true(sa.calls >= 1);
    assert_null(ix.ids);
    assert_int_equal(hb_engine_buf_live(), 0);
    hb_free(src);
}

static void test_all_zero_volume_stores_nothing(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "zero.img"), *dst = tpath(f, "zero.out");
    size_t n = (1u << 20) + 7;
    uint8_t *z = calloc(1, n);
    assert_int_equal(tu_write_file(src, z, n), 0); /* written: not a hole */
    free(z);
    size_t before = count_chunks(f);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    assert_int_equal(s.zero_chunks, 17);
    assert_int_equal(s.new_chunks, 0);
    assert_int_equal(s.read_bytes, n);
    assert_int_equal(count_chunks(f), before);
    for (uint64_t i = 0; i < ix.count; i++)
        assert_true(hb_index_is_hole(&ix, i));
    restore_ok(f, &ix, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);
    assert_int_equal(file_alloc(dst), 0);
    hb_err e;
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", NULL, &e), 0);
    hb_index_clear(&ix);
    hb_free(src);
    hb_free(dst);
}

static void test_mostly_zero_chunk_restores_sparse(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "few.img"), *dst = tpath(f, "few.out");
    size_t n = 8 * CS;
    uint8_t *b = calloc(1, n);
    memcpy(b + 3 * CS + 100, "hello", 5); /* one chunk with 5 data bytes, rest zeros */
    assert_int_equal(tu_write_file(src, b, n), 0);
    free(b);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    assert_int_equal(s.new_chunks, 1);
    restore_ok(f, &ix, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);
    /* Only the 16 KiB block holding the data is written, not the whole chunk. */
    assert_true(file_alloc(dst) <= 16 * 1024);
    assert_true(file_alloc(dst) > 0);
    hb_index_clear(&ix);
    hb_free(src);
    hb_free(dst);
}

static void test_zero_length_volume(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "empty.img"), *dst = tpath(f, "empty.out");
    assert_int_equal(tu_write_file(src, "", 0), 0);
    assert_int_equal(tu_write_file(dst, "old content", 11), 0);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    assert_int_equal(ix.count, 0);
    assert_int_equal(ix.volume_size, 0);
    assert_int_equal(s.read_bytes, 0);
    restore_ok(f, &ix, dst);
    assert_int_equal(file_size(dst), 0);
    hb_err e;
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", NULL, &e), 0);
    /* callbacks: zero-length too */
    memvol m;
    memset(&m, 0, sizeof m);
    m.data = malloc(1);
    hb_vol_io v = vol_mem("cb", &m);
    hb_index ix2;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix2, NULL, &e), 0);
    assert_int_equal(ix2.count, 0);
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix2, &v, &e), 0);
    free(m.data);
    hb_index_clear(&ix);
    hb_index_clear(&ix2);
    hb_free(src);
    hb_free(dst);
}

/* ---- incremental ---- */

static void test_incremental_unchanged_uploads_nothing_one_change_one_chunk(void **state)
{
    fx *f = *state;
    size_t n = 40 * (size_t)CS + 999;
    char *src = tpath(f, "inc.img"), *dst = tpath(f, "inc.out");
    uint8_t *d = make_random_file(src, n, 3);
    hb_index a, b, c;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &a, &s);
    assert_int_equal(s.new_chunks, 41);

    /* unchanged, no prev: all found in the store */
    backup_ok(f, src, NULL, &b, &s);
    assert_int_equal(s.new_chunks, 0);
    assert_int_equal(s.uploaded_bytes, 0);
    assert_int_equal(s.reused_chunks, 41);
    assert_memory_equal(a.ids, b.ids, a.count * 32);
    hb_index_clear(&b);

    /* unchanged with prev */
    backup_ok(f, src, &a, &b, &s);
    assert_int_equal(s.new_chunks, 0);
    assert_int_equal(s.reused_chunks, 41);
    hb_index_clear(&b);

    /* one byte of chunk 7 changes: exactly one new chunk */
    d[7 * (size_t)CS + 100] ^= 0x01;
    int fd = open(src, O_WRONLY);
    assert_int_equal(pwrite(fd, d + 7 * (size_t)CS + 100, 1, 7 * (off_t)CS + 100), 1);
    close(fd);
    backup_ok(f, src, &a, &c, &s);
    assert_int_equal(s.new_chunks, 1);
    assert_int_equal(s.reused_chunks, 40);
    assert_true(s.uploaded_bytes > 0);
    for (uint64_t i = 0; i < c.count; i++)
        if (i == 7)
            assert_memory_not_equal(hb_index_id(&a, i), hb_index_id(&c, i), 32);
        else
            assert_memory_equal(hb_index_id(&a, i), hb_index_id(&c, i), 32);
    restore_ok(f, &c, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);

    /* a shared known set is filled and used across volumes */
    hb_dset *known = hb_dset_new(64);
    hb_vol_io v = vol_path("disk0", src);
    hb_err e;
    memset(&s, 0, sizeof s);
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, known, &b, &s, &e), 0);
    assert_int_equal(hb_dset_count(known), 41);
    hb_index_clear(&b);
    hb_dset_free(known);

    hb_index_clear(&a);
    hb_index_clear(&c);
    free(d);
    hb_free(src);
    hb_free(dst);
}

static void test_changed_ranges_only_those_chunks_read(void **state)
{
    fx *f = *state;
    memvol m;
    memset(&m, 0, sizeof m);
    m.fail_chunk = -1;
    m.size = 20 * (uint64_t)CS + 500;
    m.data = malloc(m.size);
    tu_fill_random(m.data, m.size, 11);
    memset(m.data + 4 * (size_t)CS, 0, CS); /* one zero chunk */
    hb_vol_io v = vol_mem("cbvol", &m);
    hb_index a, b;
    hb_backup_stats s;
    hb_err e;
    memset(&s, 0, sizeof s);
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &a, &s, &e), 0);
    for (unsigned i = 0; i < 21; i++)
        assert_int_equal(m.reads[i], 1);
    assert_int_equal(s.zero_chunks, 1);
    assert_int_equal(s.new_chunks, 20);

    /* change chunks 3, 9 and the short tail; report them as changed */
    m.data[3 * (size_t)CS + 5] ^= 0xff;
    memset(m.data + 9 * (size_t)CS, 0x42, 100);
    m.data[m.size - 1] ^= 0x10;
    hb_range r[] = { { 3 * (uint64_t)CS + 5, 10 }, { 9 * (uint64_t)CS, 100 }, { m.size - 1, 1 } };
    hb_rangeset rs;
    assert_int_equal(hb_rangeset_build(&rs, r, 3), 0);
    memset(m.reads, 0, sizeof m.reads);
    memset(&s, 0, sizeof s);
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, &a, &rs, NULL, &b, &s, &e), 0);
    for (unsigned i = 0; i < 21; i++)
        assert_int_equal(m.reads[i], (i == 3 || i == 9 || i == 20) ? 1 : 0);
    assert_int_equal(s.read_bytes, 2 * (uint64_t)CS + 500);
    assert_int_equal(s.skipped_bytes, m.size - s.read_bytes);
    assert_int_equal(s.new_chunks, 3);
    assert_true(hb_index_is_hole(&b, 4)); /* copied from prev */

    /* restore into a buffer and compare */
    uint8_t *want = malloc(m.size);
    memcpy(want, m.data, m.size);
    memset(m.data, 0x77, m.size);
    assert_int_equal(hb_engine_restore_volume(&f->job, &b, &v, &e), 0);
    assert_memory_equal(want, m.data, m.size);

    /* an empty changed set with prev: nothing is read at all */
    hb_rangeset none = { NULL, 0 };
    hb_index c;
    memset(m.reads, 0, sizeof m.reads);
    m.nreads = 0;
    memset(&s, 0, sizeof s);
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, &b, &none, NULL, &c, &s, &e), 0);
    assert_int_equal(m.nreads, 0);
    assert_int_equal(s.skipped_bytes, m.size);
    assert_memory_equal(b.ids, c.ids, b.count * 32);

    /* prev of another geometry (larger volume now): the new tail is read */
    memvol m2 = m;
    m2.size = m.size + 2 * CS;
    m2.data = malloc(m2.size);
    memcpy(m2.data, want, m.size);
    tu_fill_random(m2.data + m.size, 2 * CS, 99);
    memset(m2.reads, 0, sizeof m2.reads);
    m2.nreads = 0;
    hb_vol_io v2 = vol_mem("cbvol", &m2);
    hb_index d2;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v2, &b, &none, NULL, &d2, NULL, &e), 0);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(m2.reads[i], 0);
    assert_int_equal(m2.reads[20], 1); /* was short in prev, full now */
    assert_int_equal(m2.reads[21], 1);
    assert_int_equal(m2.reads[22], 1);
    memset(m2.data, 0, m2.size);
    assert_int_equal(hb_engine_restore_volume(&f->job, &d2, &v2, &e), 0);
    assert_memory_equal(want, m2.data, m.size);

    free(m2.data);
    hb_index_clear(&d2);
    hb_index_clear(&c);
    hb_rangeset_clear(&rs);
    hb_index_clear(&a);
    hb_index_clear(&b);
    free(want);
    free(m.data);
}

static void test_repeated_chunk_uploaded_once(void **state)
{
    fx *f = *state;
    memvol m;
    memset(&m, 0, sizeof m);
    m.fail_chunk = -1;
    m.size = 64 * (uint64_t)CS;
    m.data = malloc(m.size);
    tu_fill_random(m.data, CS, 5);
    for (unsigned i = 1; i < 64; i++)
        memcpy(m.data + i * (size_t)CS, m.data, CS);
    hb_vol_io v = vol_mem("rep", &m);
    hb_index ix;
    hb_backup_stats s;
    memset(&s, 0, sizeof s);
    hb_err e;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix, &s, &e), 0);
    assert_int_equal(s.new_chunks, 1);
    assert_int_equal(s.reused_chunks, 63);
    memset(m.data, 0, m.size);
    uint8_t *want = malloc(CS);
    tu_fill_random(want, CS, 5);
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &v, &e), 0);
    for (unsigned i = 0; i < 64; i++)
        assert_memory_equal(want, m.data + i * (size_t)CS, CS);
    free(want);
    free(m.data);
    hb_index_clear(&ix);
}

/* ---- damage ---- */

static void test_corrupt_chunk_fails_restore_and_verify(void **state)
{
    fx *f = *state;
    size_t n = 10 * (size_t)CS;
    char *src = tpath(f, "c.img"), *dst = tpath(f, "c.out");
    uint8_t *d = make_random_file(src, n, 21);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    char *cf = chunk_file(f, hb_index_id(&ix, 6));
    chmod(cf, 0644);
    int fd = open(cf, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    off_t at = (off_t)file_size(cf) - 1000;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    char hex[65];
    hb_hex(hb_index_id(&ix, 6), 32, hex);

    hb_err e;
    assert_int_equal(do_restore(f, &ix, dst, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    assert_non_null(strstr(e.msg, "volume 'disk0'"));
    assert_non_null(strstr(e.msg, "corrupt"));
    /* nothing unverified was written: chunk 6's range is still a hole */
    uint8_t *got = malloc(CS);
    fd = open(dst, O_RDONLY);
    assert_int_equal(pread(fd, got, CS, 6 * (off_t)CS), CS);
    close(fd);
    assert_true(hb_is_zero(got, CS));
    free(got);

    hb_err_clear(&e);
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", NULL, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    assert_non_null(strstr(e.msg, "volume 'disk0'"));

    /* a checked set keeps only the verified ones */
    hb_dset *checked = hb_dset_new(16);
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", checked, &e), HARVBK_E_CHUNK);
    assert_false(hb_dset_has(checked, hb_index_id(&ix, 6)));
    hb_dset_free(checked);

    hb_index_clear(&ix);
    free(d);
    hb_free(cf);
    hb_free(src);
    hb_free(dst);
}

static void test_missing_chunk_fails_restore_and_verify(void **state)
{
    fx *f = *state;
    size_t n = 10 * (size_t)CS;
    char *src = tpath(f, "m.img"), *dst = tpath(f, "m.out");
    uint8_t *d = make_random_file(src, n, 22);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    char *cf = chunk_file(f, hb_index_id(&ix, 9));
    assert_int_equal(unlink(cf), 0);
    char hex[65];
    hb_hex(hb_index_id(&ix, 9), 32, hex);
    hb_err e;
    assert_int_equal(do_restore(f, &ix, dst, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    assert_non_null(strstr(e.msg, "missing"));
    assert_non_null(strstr(e.msg, "volume 'disk0'"));
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "disk0", NULL, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    /* a later backup without prev asks the store and puts the chunk back */
    hb_index ix2;
    backup_ok(f, src, NULL, &ix2, &s);
    assert_int_equal(s.new_chunks, 1);
    restore_ok(f, &ix2, dst);
    assert_int_equal(tu_files_equal(src, dst), 0);
    hb_index_clear(&ix2);
    hb_index_clear(&ix);
    free(d);
    hb_free(cf);
    hb_free(src);
    hb_free(dst);
}

static void test_read_errors_name_the_volume(void **state)
{
    fx *f = *state;
    memvol m;
    memset(&m, 0, sizeof m);
    m.size = 8 * (uint64_t)CS;
    m.data = malloc(m.size);
    tu_fill_random(m.data, m.size, 1);
    m.fail_chunk = 5;
    hb_vol_io v = vol_mem("cbvol", &m);
    hb_index ix;
    hb_err e;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix, NULL, &e),
                     HARVBK_E_IO);
    assert_non_null(strstr(e.msg, "volume 'cbvol'"));
    assert_null(ix.ids);
    free(m.data);

    /* a file path that does not exist */
    hb_vol_io vp = vol_path("gone", "/nonexistent-harvbk-test/x.img");
    assert_int_equal(hb_engine_backup_volume(&f->job, &vp, NULL, NULL, NULL, &ix, NULL, &e),
                     HARVBK_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "volume 'gone'"));
    assert_int_equal(hb_engine_buf_live(), 0);
}

/* A path that is a FIFO (or a character device) is neither read from nor
 * written to: opening it must not block (a FIFO without a writer blocks a
 * plain open for reading, one without a reader a plain open for writing), and
 * it is refused with HARVBK_E_INVALID naming the volume and the path. A
 * hang fails the test through alarm(). */
static void test_special_files_refused_without_blocking(void **state)
{
    fx *f = *state;
    char *src = tpath(f, "src.img"), *fifo = tpath(f, "vol.fifo");
    uint8_t *d = make_random_file(src, 3 * CS + 5, 4);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    hb_index ix, bad;
    hb_backup_stats s;
    hb_err e;
    backup_ok(f, src, NULL, &ix, &s);

    alarm(30);
    hb_vol_io v = vol_path("fvol", fifo);
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &bad, NULL, &e),
                     HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "volume 'fvol'"));
    assert_non_null(strstr(e.msg, fifo));
    assert_non_null(strstr(e.msg, "FIFO"));
    hb_vol_io c = vol_path("cvol", "/dev/null");
    assert_int_equal(hb_engine_backup_volume(&f->job, &c, NULL, NULL, NULL, &bad, NULL, &e),
                     HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "volume 'cvol'"));

    /* restoring over them */
    assert_int_equal(do_restore(f, &ix, fifo, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, fifo));
    assert_int_equal(do_restore(f, &ix, "/dev/null", &e), HARVBK_E_INVALID);
    /* ... or into a caller's descriptor of a pipe */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    hb_vol_io pv = vol_path("pvol", NULL);
    pv.fd = pfd[1];
    hb_err_clear(&e);
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &pv, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "volume 'pvol'"));
    close(pfd[0]);
    close(pfd[1]);
    alarm(0);
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode)); /* left as it was */
    assert_int_equal(hb_engine_buf_live(), 0);

    hb_index_clear(&ix);
    free(d);
    hb_free(src);
    hb_free(fifo);
}

/* ---- cancel ---- */

typedef struct prog {
    unsigned calls;
    unsigned stop_at; /* return non-zero on this call (0: never) */
    uint64_t total;
    uint64_t said_total; /* through progress_total (gc) */
    unsigned flushes;    /* progress_flush calls (gc) */
} prog;

static void prog_total_cb(uint64_t total, void *ud)
{
    ((prog *)ud)->said_total = total;
}

static void prog_flush_cb(void *ud)
{
    ((prog *)ud)->flushes++;
}

static int prog_cb(uint64_t delta, void *ud)
{
    prog *p = ud;
    p->calls++;
    p->total += delta;
    return p->stop_at && p->calls >= p->stop_at;
}

static void test_cancel_from_progress_and_flag(void **state)
{
    fx *f = *state;
    memvol m;
    memset(&m, 0, sizeof m);
    m.fail_chunk = -1;
    m.size = 400 * (uint64_t)CS;
    m.data = malloc(m.size);
    tu_fill_random(m.data, m.size, 2);
    hb_vol_io v = vol_mem("cbvol", &m);
    prog p = { 0, 2, 0, 0, 0 };
    f->job.progress = prog_cb;
    f->job.progress_ud = &p;
    hb_index ix;
    hb_err e;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix, NULL, &e),
                     HARVBK_E_CANCELLED);
    assert_int_equal(p.calls, 2); /* never called again after it said stop */
    assert_true(m.nreads < 40);  /* stopped promptly: about the buffers in flight */
    assert_null(ix.ids);

    /* the cancel flag, set from the volume's read callback */
    atomic_int cancel;
    atomic_init(&cancel, 0);
    f->job.cancel = &cancel;
    p.stop_at = 0;
    m.nreads = 0;
    m.cancel_at_read = &cancel;
    m.cancel_after = 10;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix, NULL, &e),
                     HARVBK_E_CANCELLED);
    assert_true(m.nreads <= 11);

    /* full backup, then cancelled restore and verify */
    atomic_store(&cancel, 0);
    m.cancel_at_read = NULL;
    p = (prog){ 0, 0, 0, 0, 0 };
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix, NULL, &e), 0);
    assert_int_equal(p.total, m.size); /* progress covers the volume exactly */
    p = (prog){ 0, 3, 0, 0, 0 };
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &v, &e), HARVBK_E_CANCELLED);
    assert_int_equal(p.calls, 3);
    p = (prog){ 0, 3, 0, 0, 0 };
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "cbvol", NULL, &e),
                     HARVBK_E_CANCELLED);
    atomic_store(&cancel, 1);
    p = (prog){ 0, 0, 0, 0, 0 };
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "cbvol", NULL, &e),
                     HARVBK_E_CANCELLED);
    assert_int_equal(p.calls, 0);
    atomic_store(&cancel, 0);
    p = (prog){ 0, 0, 0, 0, 0 };
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &v, &e), 0);
    assert_int_equal(p.total, m.size);
    f->job.progress = NULL;
    f->job.cancel = NULL;
    assert_int_equal(hb_engine_buf_live(), 0);
    hb_index_clear(&ix);
    free(m.data);
}

/* ---- memory bound ---- */

static void test_buffers_bounded_by_workers(void **state)
{
    fx *f = *state;
    memvol m;
    memset(&m, 0, sizeof m);
    m.fail_chunk = -1;
    m.size = 1000 * (uint64_t)CS;
    m.data = malloc(m.size);
    tu_fill_random(m.data, m.size, 8);
    hb_vol_io v = vol_mem("big", &m);
    unsigned w = hb_pipe_workers(&f->job);
    assert_true(w >= 2);
    hb_engine_buf_peak_reset();
    hb_index ix;
    hb_err e;
    assert_int_equal(hb_engine_backup_volume(&f->job, &v, NULL, NULL, NULL, &ix, NULL, &e), 0);
    assert_true(hb_engine_buf_peak() <= 2 * w + 2);
    assert_int_equal(hb_engine_buf_live(), 0);
    hb_engine_buf_peak_reset();
    assert_int_equal(hb_engine_restore_volume(&f->job, &ix, &v, &e), 0);
    assert_true(hb_engine_buf_peak() <= w + 1);
    hb_engine_buf_peak_reset();
    assert_int_equal(hb_engine_verify_volume(&f->job, &ix, "big", NULL, &e), 0);
    assert_true(hb_engine_buf_peak() <= w);
    assert_int_equal(hb_engine_buf_live(), 0);
    hb_index_clear(&ix);
    free(m.data);
}

/* A restore into a file goes through the writer threads: the bytes and the
 * holes are restored exactly, the chunk buffers stay workers + writers
 * whatever the volume size, and a cancel from the progress hook (now called
 * by the writers) stops it with no further call and no buffer left over. */
static void test_restore_through_writers_bounded_and_cancellable(void **state)
{
    fx *f = *state;
    size_t n = 600 * (size_t)CS + 4321;
    char *src = tpath(f, "w.img"), *dst = tpath(f, "w.out");
    uint8_t *d = malloc(n);
    tu_fill_random(d, n, 33);
    for (size_t k = 0; k < 600; k += 5) /* every fifth chunk: zeros, a hole after restore */
        memset(d + k * CS, 0, CS);
    memset(d + 7 * (size_t)CS + 100, 0, CS / 2); /* a zero run inside a chunk */
    assert_int_equal(tu_write_file(src, d, n), 0);
    hb_index ix;
    hb_backup_stats s;
    backup_ok(f, src, NULL, &ix, &s);
    assert_int_equal(s.zero_chunks, 120);

    unsigned w = hb_pipe_workers(&f->job);
    hb_engine_buf_peak_reset();
    prog p = { 0, 0, 0, 0, 0 };
    f->job.progress = prog_cb;
    f->job.progress_ud = &p;
    restore_ok(f, &ix, dst);
    assert_true(hb_engine_buf_peak() <= w + HB_ENGINE_RESTORE_WRITERS);
    assert_int_equal(hb_engine_buf_live(), 0);
    assert_int_equal(p.total, n); /* progress covers the volume exactly */
    assert_int_equal(tu_files_equal(src, dst), 0);
    assert_true(file_alloc(dst) < n - 100 * (uint64_t)CS); /* the zero chunks stayed holes */

    p = (prog){ 0, 4, 0, 0, 0 };
    hb_err e;
    assert_int_equal(do_restore(f, &ix, dst, &e), HARVBK_E_CANCELLED);
    assert_int_equal(p.calls, 4);
    assert_int_equal(hb_engine_buf_live(), 0);
    f->job.progress = NULL;

    /* a corrupt chunk late in the volume: the writers stop, nothing
     * unverified is written */
    char *cf = chunk_file(f, hb_index_id(&ix, 598));
    chmod(cf, 0644);
    int fd = open(cf, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    off_t at = (off_t)file_size(cf) / 2;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    assert_int_equal(do_restore(f, &ix, dst, &e), HARVBK_E_CHUNK);
    uint8_t *got = malloc(CS);
    fd = open(dst, O_RDONLY);
    assert_int_equal(pread(fd, got, CS, 598 * (off_t)CS), CS);
    close(fd);
    assert_true(hb_is_zero(got, CS));
    assert_int_equal(hb_engine_buf_live(), 0);

    free(got);
    hb_free(cf);
    hb_index_clear(&ix);
    free(d);
    hb_free(src);
    hb_free(dst);
}

/* hb_engine_bufs_alloc: count buffers of the asked size at a page-aligned
 * stride, every byte usable, counted as count buffers; a block of 2 MiB or
 * more is 2 MiB-aligned (huge pages where the system gives them). */
static void test_chunk_buffer_block(void **state)
{
    (void)state;
    size_t live = hb_engine_buf_live();
    size_t stride = 0;
    uint8_t *b = hb_engine_bufs_alloc(1u << 20, 6, &stride);
    assert_non_null(b);
    assert_int_equal(stride, 1u << 20);
    assert_int_equal((uintptr_t)b % (2u << 20), 0);
    assert_int_equal(hb_engine_buf_live(), live + 6);
    for (size_t k = 0; k < 6; k++)
        memset(b + k * stride, (int)k + 1, 1u << 20);
    for (size_t k = 0; k < 6; k++) {
        assert_int_equal(b[k * stride], k + 1);
        assert_int_equal(b[k * stride + (1u << 20) - 1], k + 1);
    }
    hb_engine_bufs_free(b, 6);
    assert_int_equal(hb_engine_buf_live(), live);

    /* small, odd sizes: page-aligned stride, page-aligned buffers */
    b = hb_engine_bufs_alloc(5000, 3, &stride);
    assert_non_null(b);
    assert_int_equal(stride, 8192);
    assert_int_equal((uintptr_t)b % HB_ENGINE_BUF_ALIGN, 0);
    memset(b, 0x11, 2 * stride + 5000);
    assert_int_equal(hb_engine_buf_live(), live + 3);
    hb_engine_bufs_free(b, 3);
    hb_engine_bufs_free(NULL, 3); /* no-op */
    assert_int_equal(hb_engine_buf_live(), live);
    assert_null(hb_engine_bufs_alloc(SIZE_MAX / 2, 4, &stride)); /* overflow: refused */
    assert_int_equal(hb_engine_buf_live(), live);
}

/* Text-like, compressible bytes that differ from chunk to chunk. */
static void fill_text(uint8_t *d, size_t n, uint64_t seed)
{
    size_t pos = 0;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    while (pos < n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        char line[96];
        int len = snprintf(line, sizeof line,
                           "2024-08-20T18:%02u:%02u db-%02u query took %u ms id=%08x\n",
                           (unsigned)(x % 60), (unsigned)(x >> 8) % 60, (unsigned)(x >> 16) % 8,
                           (unsigned)(x >> 24) % 5000, (unsigned)(x >> 32));
        size_t m = HB_MIN((size_t)len, n - pos);
        memcpy(d + pos, line, m);
        pos += m;
    }
}

/* A zstd store with the store's real chunk size (1 MiB) in directory `name`
 * of the fixture (its path in *sdir), written as `owner`. */
static hb_store *open_store_1m(fx *f, const char *name, const char *owner, char **sdir)
{
    *sdir = tpath(f, name);
    assert_int_equal(mkdir(*sdir, 0755), 0);
    hb_target_cfg cfg;
    hb_target_cfg_init(&cfg);
    cfg.url = hb_asprintf("file://%s", *sdir);
    cfg.chunk_size = 1u << 20;
    cfg.codec = HB_CODEC_ZSTD;
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = NULL;
    assert_int_equal(hb_target_open(&t, &cfg, owner, &quiet, &e), 0);
    hb_store *st = NULL;
    assert_int_equal(hb_store_open(&st, t, &cfg, &e), 0);
    hb_target_cfg_clear(&cfg);
    assert_int_equal(st->chunk_size, 1u << 20);
    return st;
}

/* Restore with the store's real chunk size (1 MiB): the chunk buffers are one
 * huge-page block and go round the writers many times; compressed chunks are
 * decoded into buffers that came back from an O_DIRECT write (claimed first,
 * rs_claim), stored ones copied, the short last chunk into a buffer that held
 * a full one. Bytes equal, holes kept, buffers bounded; a corrupt compressed
 * chunk is refused and nothing of it written. */
static void test_restore_1m_chunks_compressed_reused_buffers(void **state)
{
    fx *f = *state;
    char *sdir = NULL;
    hb_store *st = open_store_1m(f, "store1m", "engine-test-1m", &sdir);
    hb_err e;
    hb_err_clear(&e);
    hb_job job = f->job;
    job.st = st;

    const size_t C = 1u << 20, N = 24;
    size_t n = N * C + 777;
    uint8_t *d = calloc(1, n);
    for (size_t k = 0; k < N; k++) {
        if (k % 6 == 5)
            continue; /* zeros: a hole */
        if (k % 4 == 3)
            tu_fill_random(d + k * C, C, 40 + k); /* stored as is */
        else
            fill_text(d + k * C, C, k); /* zstd */
    }
    memset(d + 2 * C + 4096, 0, 64 * 1024); /* a zero run inside a compressed chunk */
    fill_text(d + N * C, 777, 99);
    char *src = tpath(f, "t1m.img"), *dst = tpath(f, "t1m.out");
    assert_int_equal(tu_write_file(src, d, n), 0);
    hb_vol_io v = vol_path("disk0", src);
    hb_index ix;
    hb_backup_stats s;
    memset(&s, 0, sizeof s);
    assert_int_equal(hb_engine_backup_volume(&job, &v, NULL, NULL, NULL, &ix, &s, &e), 0);
    assert_int_equal(ix.count, N + 1);
    assert_int_equal(s.zero_chunks, 4);

    hb_engine_buf_peak_reset();
    v = vol_path("disk0", dst);
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), 0);
    assert_true(hb_engine_buf_peak() <= hb_pipe_workers(&job) + HB_ENGINE_RESTORE_WRITERS);
    assert_int_equal(hb_engine_buf_live(), 0);
    assert_int_equal(tu_files_equal(src, dst), 0);
    assert_true(file_alloc(dst) <= n - 4 * C); /* the zero chunks stayed holes */
    /* twice in one process, over the old result: same bytes */
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), 0);
    assert_int_equal(tu_files_equal(src, dst), 0);

    /* corrupt a compressed chunk near the end: refused, its range not written */
    char hex[HB_DIGEST_HEX_LEN + 1];
    hb_hex(hb_index_id(&ix, 20), HB_DIGEST_LEN, hex);
    char *cf = hb_asprintf("%s/chunks/%.2s/%.2s/%s", sdir, hex, hex + 2, hex);
    chmod(cf, 0644);
    int fd = open(cf, O_RDWR);
    assert_true(fd >= 0);
    assert_true(file_size(cf) < C / 2); /* it is compressed */
    uint8_t b;
    off_t at = (off_t)file_size(cf) / 2;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    char *dst2 = tpath(f, "t1m.bad");
    v = vol_path("disk0", dst2);
    hb_err_clear(&e);
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    uint8_t *got = malloc(C);
    fd = open(dst2, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, got, C, 20 * (off_t)C), (ssize_t)C);
    close(fd);
    assert_true(hb_is_zero(got, C));
    assert_int_equal(hb_engine_buf_live(), 0);

    free(got);
    hb_free(cf);
    hb_free(dst2);
    hb_index_clear(&ix);
    hb_store_close(st);
    free(d);
    hb_free(src);
    hb_free(dst);
    hb_free(sdir);
}

/* A restore many flush intervals long (restore.c flushes every 8 MiB written
 * while it writes, besides the final fdatasync): into a path over an old
 * larger file and into a caller's descriptor, the bytes equal the source, the
 * zero chunks and a zero run stay holes, the buffers stay workers + writers;
 * a cancel half-way (flusher running) stops it with no buffer left over, and
 * a restore over the cancelled result is complete again. */
static void test_restore_flushes_while_writing(void **state)
{
    fx *f = *state;
    char *sdir = NULL;
    hb_store *st = open_store_1m(f, "storefl", "engine-test-fl", &sdir);
    hb_err e;
    hb_err_clear(&e);
    hb_job job = f->job;
    job.st = st;

    const size_t C = 1u << 20, N = 56; /* ~47 MiB of data: 5 flush intervals */
    size_t n = N * C + 12345;
    uint8_t *d = calloc(1, n);
    for (size_t k = 0; k < N; k++) {
        if (k % 7 == 3)
            continue; /* zeros: a hole */
        if (k % 3 == 0)
            tu_fill_random(d + k * C, C, 70 + k);
        else
            fill_text(d + k * C, C, 300 + k);
    }
    memset(d + 40 * C + 8192, 0, 256 * 1024); /* a zero run inside a chunk */
    tu_fill_random(d + N * C, 12345, 7);
    char *src = tpath(f, "fl.img"), *dst = tpath(f, "fl.out"), *dst2 = tpath(f, "fl.fd");
    assert_int_equal(tu_write_file(src, d, n), 0);
    hb_vol_io v = vol_path("disk0", src);
    hb_index ix;
    hb_backup_stats s;
    memset(&s, 0, sizeof s);
    assert_int_equal(hb_engine_backup_volume(&job, &v, NULL, NULL, NULL, &ix, &s, &e), 0);
    assert_int_equal(s.zero_chunks, 8);

    /* an old, larger file at the destination: replaced, not merged */
    uint8_t *junk = malloc(n + C);
    memset(junk, 0x5a, n + C);
    assert_int_equal(tu_write_file(dst, junk, n + C), 0);
    hb_engine_buf_peak_reset();
    v = vol_path("disk0", dst);
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), 0);
    assert_true(hb_engine_buf_peak() <= hb_pipe_workers(&job) + HB_ENGINE_RESTORE_WRITERS);
    assert_int_equal(hb_engine_buf_live(), 0);
    assert_int_equal(tu_files_equal(src, dst), 0);
    assert_true(file_alloc(dst) <= n - 8 * C - 256 * 1024 + C / 2); /* holes kept */

    /* a caller's descriptor */
    int fd = open(dst2, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    v = vol_path("disk0", NULL);
    v.fd = fd;
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), 0);
    close(fd);
    assert_int_equal(tu_files_equal(src, dst2), 0);

    /* cancelled half-way, then restored again over the partial result */
    prog p = { 0, 0, 0, 0, 0 };
    p.stop_at = 30;
    job.progress = prog_cb;
    job.progress_ud = &p;
    v = vol_path("disk0", dst);
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), HARVBK_E_CANCELLED);
    assert_int_equal(p.calls, 30);
    assert_int_equal(hb_engine_buf_live(), 0);
    job.progress = NULL;
    assert_int_equal(hb_engine_restore_volume(&job, &ix, &v, &e), 0);
    assert_int_equal(tu_files_equal(src, dst), 0);

    hb_index_clear(&ix);
    hb_store_close(st);
    free(junk);
    free(d);
    hb_free(src);
    hb_free(dst);
    hb_free(dst2);
    hb_free(sdir);
}

/* Worker count: the job's threads (else the CPU count), raised to the
 * backend's min_workers, capped by an explicitly configured parallel. */
static void test_worker_count_rules(void **state)
{
    fx *f = *state;
    hb_target *t = f->job.st->t;
    unsigned saved_threads = f->job.threads, smin = t->min_workers, smax = t->max_workers;
    t->min_workers = t->max_workers = 0;
    f->job.threads = 3;
    assert_int_equal(hb_pipe_workers(&f->job), 3);
    t->min_workers = 8; /* a network backend's requests in flight */
    assert_int_equal(hb_pipe_workers(&f->job), 8);
    t->min_workers = t->max_workers = 1; /* --parallel 1 */
    assert_int_equal(hb_pipe_workers(&f->job), 1);
    f->job.threads = 0;
    assert_int_equal(hb_pipe_workers(&f->job), 1);
    t->min_workers = t->max_workers = 0;
    assert_int_equal(hb_pipe_workers(&f->job), hb_default_threads());
    f->job.threads = 1000;
    assert_int_equal(hb_pipe_workers(&f->job), HB_ENGINE_MAX_WORKERS);
    f->job.threads = saved_threads;
    t->min_workers = smin;
    t->max_workers = smax;
}

/* ---- gc ---- */

static void commit_entry(fx *f, const char *name, const char *vol, const hb_index *ix)
{
    hb_manifest mf;
    hb_manifest_init(&mf);
    mf.format_major = HB_FORMAT_MAJOR;
    mf.format_minor = HB_FORMAT_MINOR;
    mf.kind = hb_strdup("backup");
    mf.ns = hb_strdup("default");
    mf.name = hb_strdup(name);
    mf.vm_ns = hb_strdup("default");
    mf.vm_name = hb_strdup("vm1");
    mf.writer = hb_strdup("engine-test");
    mf.created = mf.completed = hb_now();
    mf.chunk_size = CS;
    mf.codec = f->st->codec;
    mf.logical_bytes = ix->volume_size;
    mf.vols = hb_calloc(1, sizeof *mf.vols);
    mf.nvols = 1;
    mf.vols[0].name = hb_strdup(vol);
    hb_err e;
    int rc = hb_store_index_write(f->st, HB_KIND_BACKUPS, "default", name, &mf.vols[0], ix, NULL,
                                  &e);
    if (rc)
        fprintf(stderr, "index write: %s\n", e.msg);
    assert_int_equal(rc, 0);
    rc = hb_store_manifest_write(f->st, HB_KIND_BACKUPS, &mf, &e);
    if (rc)
        fprintf(stderr, "manifest write: %s\n", e.msg);
    assert_int_equal(rc, 0);
    hb_manifest_clear(&mf);
}

static bool chunk_present(fx *f, const uint8_t *id)
{
    char *p = chunk_file(f, id);
    bool r = access(p, F_OK) == 0;
    hb_free(p);
    return r;
}

static void test_gc_removes_only_unreferenced(void **state)
{
    fx *f = *state;
    /* A = chunks 0..9 of X, B = chunks 0..4 of X (shared) + 5 of Y */
    size_t n = 10 * (size_t)CS;
    char *pa = tpath(f, "a.img"), *pb = tpath(f, "b.img"), *dst = tpath(f, "b.out");
    uint8_t *a = make_random_file(pa, n, 31);
    uint8_t *b = malloc(n);
    memcpy(b, a, 5 * (size_t)CS);
    tu_fill_random(b + 5 * (size_t)CS, 5 * (size_t)CS, 32);
    assert_int_equal(tu_write_file(pb, b, n), 0);
    hb_index ia, ib;
    hb_backup_stats s;
    backup_ok(f, pa, NULL, &ia, &s);
    backup_ok(f, pb, NULL, &ib, &s);
    assert_int_equal(s.new_chunks, 5);
    commit_entry(f, "bk-a", "disk0", &ia);
    commit_entry(f, "bk-b", "disk0", &ib);
    age_chunks(f, time(NULL) - 3600);
    assert_int_equal(count_chunks(f), 15);

    hb_gc_stats gs;
    hb_err e;
    prog p = { 0, 0, 0, 0, 0 };
    f->job.progress = prog_cb;
    f->job.progress_ud = &p;
    f->job.progress_total = prog_total_cb;
    f->job.progress_flush = prog_flush_cb;
    assert_int_equal(count_chunks(f), 15);
    uint64_t stored = chunkfile_bytes;
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), 0);
    assert_int_equal(gs.removed_chunks, 0);
    assert_int_equal(gs.total_chunks, 15);
    assert_int_equal(gs.referenced_chunks, 15);
    /* progress in bytes: every chunk listed (nothing to remove) */
    assert_int_equal(p.total, stored);
    assert_int_equal(p.said_total, stored);
    assert_int_equal(p.flushes, 1);

    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "bk-a", &e), 0);
    /* an unreferenced chunk written "during" gc (mtime not before its start) stays */
    uint8_t extra[1000], xid[32];
    tu_fill_random(extra, sizeof extra, 77);
    hb_sha256(extra, sizeof extra, xid);
    hb_buf scratch = HB_BUF_INIT;
    assert_int_equal(hb_store_chunk_put(f->st, xid, extra, sizeof extra, &scratch, NULL, &e), 0);
    hb_buf_free(&scratch);
    char *xf = chunk_file(f, xid);
    struct timespec ts[2] = { { time(NULL) + 100, 0 }, { time(NULL) + 100, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, xf, ts, 0), 0);

    assert_int_equal(count_chunks(f), 16);
    stored = chunkfile_bytes;
    p = (prog){ 0, 0, 0, 0, 0 };
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), 0);
    assert_int_equal(gs.total_chunks, 16);
    assert_int_equal(gs.referenced_chunks, 10);
    assert_int_equal(gs.removed_chunks, 5);
    assert_true(gs.removed_bytes >= 5 * (uint64_t)CS); /* random data stays raw */
    /* every chunk listed, then the removed ones: done ends at the total */
    assert_int_equal(p.said_total, stored + gs.removed_bytes);
    assert_int_equal(p.total, p.said_total);
    assert_int_equal(p.flushes, 1);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(chunk_present(f, hb_index_id(&ia, i)), i < 5);
    for (unsigned i = 0; i < 10; i++)
        assert_true(chunk_present(f, hb_index_id(&ib, i)));
    assert_true(access(xf, F_OK) == 0);
    restore_ok(f, &ib, dst);
    assert_int_equal(tu_files_equal(pb, dst), 0);
    f->job.progress = NULL;
    f->job.progress_total = NULL;
    f->job.progress_flush = NULL;

    /* once old enough it goes */
    age_chunks(f, time(NULL) - 3600);
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), 0);
    assert_int_equal(gs.removed_chunks, 1);
    assert_false(access(xf, F_OK) == 0);
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), 0);
    assert_int_equal(gs.removed_chunks, 0);

    hb_free(xf);
    hb_index_clear(&ia);
    hb_index_clear(&ib);
    free(a);
    free(b);
    hb_free(pa);
    hb_free(pb);
    hb_free(dst);
}

static void test_gc_deletes_nothing_when_marking_fails(void **state)
{
    fx *f = *state;
    size_t n = 4 * (size_t)CS;
    char *pa = tpath(f, "a.img"), *pb = tpath(f, "b.img");
    uint8_t *a = make_random_file(pa, n, 41), *b = make_random_file(pb, n, 42);
    hb_index ia, ib;
    hb_backup_stats s;
    backup_ok(f, pa, NULL, &ia, &s);
    backup_ok(f, pb, NULL, &ib, &s);
    commit_entry(f, "bk-a", "disk0", &ia);
    commit_entry(f, "bk-b", "disk0", &ib);
    /* chunks of an uncommitted backup: unreferenced garbage */
    char *pc = tpath(f, "c.img");
    uint8_t *c = make_random_file(pc, n, 43);
    hb_index ic;
    backup_ok(f, pc, NULL, &ic, &s);
    age_chunks(f, time(NULL) - 3600);
    assert_int_equal(count_chunks(f), 12);

    /* b's index is damaged: nothing may be deleted */
    char *ik = hb_key_index(HB_KIND_BACKUPS, "default", "bk-b", "disk0");
    char *ipath = hb_path_join(f->sdir, ik);
    chmod(ipath, 0644);
    assert_int_equal(tu_write_file(ipath, "garbage", 7), 0);
    hb_gc_stats gs;
    hb_err e;
    int rc = hb_engine_gc(&f->job, &gs, &e);
    assert_true(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, "bk-b"));
    assert_int_equal(gs.removed_chunks, 0);
    assert_int_equal(count_chunks(f), 12);

    /* b's index is gone: same */
    assert_int_equal(unlink(ipath), 0);
    rc = hb_engine_gc(&f->job, &gs, &e);
    assert_true(rc < 0);
    assert_int_equal(count_chunks(f), 12);

    /* a's manifest is garbage: same */
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "bk-b", &e), 0);
    char *mk = hb_key_manifest(HB_KIND_BACKUPS, "default", "bk-a");
    char *mpath = hb_path_join(f->sdir, mk);
    chmod(mpath, 0644);
    assert_int_equal(tu_write_file(mpath, "{\"format_major\":1", 17), 0);
    rc = hb_engine_gc(&f->job, &gs, &e);
    assert_int_equal(rc, HARVBK_E_CORRUPT);
    assert_int_equal(count_chunks(f), 12);

    /* repaired: b's and c's chunks go, a's stay */
    commit_entry(f, "bk-a", "disk0", &ia);
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), 0);
    assert_int_equal(gs.removed_chunks, 8);
    assert_int_equal(count_chunks(f), 4);

    /* cancelled gc deletes nothing */
    hb_index id;
    backup_ok(f, pb, NULL, &id, &s);
    age_chunks(f, time(NULL) - 3600);
    atomic_int cancel;
    atomic_init(&cancel, 1);
    f->job.cancel = &cancel;
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), HARVBK_E_CANCELLED);
    assert_int_equal(count_chunks(f), 8);
    f->job.cancel = NULL;

    hb_index_clear(&id);
    hb_free(mk);
    hb_free(mpath);
    hb_free(ik);
    hb_free(ipath);
    hb_index_clear(&ia);
    hb_index_clear(&ib);
    hb_index_clear(&ic);
    free(a);
    free(b);
    free(c);
    hb_free(pa);
    hb_free(pb);
    hb_free(pc);
}


/* FORMAT.md section 9: "A gc whose own heartbeat lapsed for longer than the
 * TTL must stop sweeping" - other contexts then consider it dead, and a backup
 * they start may dedup against the very chunks this gc is about to delete. */
static void test_gc_stops_when_its_lease_lapsed(void **state)
{
    fx *f = *state;
    size_t n = 4 * (size_t)CS;
    char *pa = tpath(f, "a.img");
    uint8_t *a = make_random_file(pa, n, 51);
    hb_index ia;
    hb_backup_stats s;
    backup_ok(f, pa, NULL, &ia, &s); /* never committed: garbage for gc */
    age_chunks(f, time(NULL) - 3600);
    assert_int_equal(count_chunks(f), 4);

    int saved = hb_lease_ttl_s;
    hb_lease_ttl_s = 1;
    hb_err e;
    hb_err_clear(&e);
    hb_lease *l = NULL;
    assert_int_equal(hb_lease_acquire(f->st, "gc", "gc-test", &l, &e), 0);
    /* the target is unreachable for longer than the TTL: heartbeats fail */
    char *away = hb_asprintf("%s.away", f->sdir);
    assert_int_equal(rename(f->sdir, away), 0);
    sleep(3);
    assert_int_equal(rename(away, f->sdir), 0);
    assert_int_equal(hb_lease_check(l, &e), HARVBK_E_BUSY);

    hb_gc_stats gs;
    f->job.lease = l;
    hb_err_clear(&e);
    int rc = hb_engine_gc(&f->job, &gs, &e);
    f->job.lease = NULL;
    assert_int_equal(rc, HARVBK_E_BUSY);
    assert_non_null(strstr(e.msg, "lapsed"));
    assert_int_equal(gs.removed_chunks, 0);
    assert_int_equal(count_chunks(f), 4);
    hb_lease_release(l);

    /* with a healthy lease it sweeps */
    hb_lease_ttl_s = saved;
    assert_int_equal(hb_lease_acquire(f->st, "gc", "gc-test", &l, &e), 0);
    f->job.lease = l;
    assert_int_equal(hb_engine_gc(&f->job, &gs, &e), 0);
    f->job.lease = NULL;
    hb_lease_release(l);
    assert_int_equal(gs.removed_chunks, 4);
    assert_int_equal(count_chunks(f), 0);

    hb_free(away);
    hb_index_clear(&ia);
    free(a);
    hb_free(pa);
}


/* A target whose get_max() deletes an entry (manifest first, then its index,
 * as hb_store_entry_delete does) just before it reads `trigger`: a delete from
 * another context landing while gc marks. */
static const hb_target_ops *racy_own;
static const char *racy_trigger, *racy_victim; /* under racy_mu while gc runs */
static pthread_mutex_t racy_mu = PTHREAD_MUTEX_INITIALIZER;
static int racy_get_max(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e)
{
    pthread_mutex_lock(&racy_mu);
    if (racy_trigger && !strcmp(key, racy_trigger)) {
        hb_err de;
        char *mk = hb_key_manifest(HB_KIND_BACKUPS, "default", racy_victim);
        char *ik = hb_key_index(HB_KIND_BACKUPS, "default", racy_victim, "disk0");
        assert_int_equal(racy_own->del(t, mk, &de), 0);
        assert_int_equal(racy_own->del(t, ik, &de), 0);
        hb_free(mk);
        hb_free(ik);
        racy_trigger = NULL;
    }
    pthread_mutex_unlock(&racy_mu);
    return racy_own->get_max(t, key, out, max, e);
}

/* Deleting a backup while gc marks (a retention schedule of another cluster,
 * say) makes its manifest or its index vanish under gc. That entry needs no
 * protection any more: gc goes on without it instead of failing. */
static void test_gc_tolerates_entries_deleted_while_marking(void **state)
{
    fx *f = *state;
    size_t n = 3 * (size_t)CS;
    char *pa = tpath(f, "a.img"), *pb = tpath(f, "b.img");
    uint8_t *a = make_random_file(pa, n, 61), *b = make_random_file(pb, n, 62);
    hb_index ia, ib;
    hb_backup_stats s;
    backup_ok(f, pa, NULL, &ia, &s);
    backup_ok(f, pb, NULL, &ib, &s);
    static hb_target_ops racy; /* static: the target may outlive a failed assertion */
    racy = *f->st->t->ops;
    racy.get_max = racy_get_max;
    racy_own = f->st->t->ops;
    f->st->t->ops = &racy;
    char *mk = hb_key_manifest(HB_KIND_BACKUPS, "default", "bk-gone");
    char *ik = hb_key_index(HB_KIND_BACKUPS, "default", "bk-gone", "disk0");
    hb_gc_stats gs;
    hb_err e;
    for (int pass = 0; pass < 2; pass++) {
        commit_entry(f, "bk-keep", "disk0", &ia);
        commit_entry(f, "bk-gone", "disk0", &ib);
        age_chunks(f, time(NULL) - 3600);
        /* pass 0: deleted before gc reads its manifest; 1: between manifest and index */
        racy_trigger = pass == 0 ? mk : ik;
        racy_victim = "bk-gone";
        hb_err_clear(&e);
        int rc = hb_engine_gc(&f->job, &gs, &e);
        if (rc)
            fprintf(stderr, "pass %d: %d %s\n", pass, rc, e.msg);
        assert_int_equal(rc, 0);
        assert_null(racy_trigger); /* the race did happen */
        assert_int_equal(gs.removed_chunks, 3); /* bk-gone's */
        for (unsigned i = 0; i < 3; i++) {
            assert_true(chunk_present(f, hb_index_id(&ia, i)));
            assert_false(chunk_present(f, hb_index_id(&ib, i)));
        }
        hb_index_clear(&ib);
        backup_ok(f, pb, NULL, &ib, &s); /* its chunks again, for pass 1 */
    }
    f->st->t->ops = racy_own;
    hb_free(mk);
    hb_free(ik);
    hb_index_clear(&ia);
    hb_index_clear(&ib);
    free(a);
    free(b);
    hb_free(pa);
    hb_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rangeset_build_and_overlaps),
        cmocka_unit_test_setup_teardown(test_dense_roundtrip_odd_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mostly_zero_chunk_restores_sparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_file_holes_not_read_and_restored_sparse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_holes_inside_chunks_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_shrinking_into_a_hole_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_zero_volume_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_incremental_unchanged_uploads_nothing_one_change_one_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_ranges_only_those_chunks_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_repeated_chunk_uploaded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_chunk_fails_restore_and_verify, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_chunk_fails_restore_and_verify, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_errors_name_the_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_files_refused_without_blocking, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_progress_and_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffers_bounded_by_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_through_writers_bounded_and_cancellable,
                                        setup, teardown),
        cmocka_unit_test(test_chunk_buffer_block),
        cmocka_unit_test_setup_teardown(test_restore_1m_chunks_compressed_reused_buffers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restore_flushes_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_count_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_removes_only_unreferenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_deletes_nothing_when_marking_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gc_stops_when_its_lease_lapsed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_tolerates_entries_deleted_while_marking, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
