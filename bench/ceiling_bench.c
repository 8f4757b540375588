/*
 * bench/ceiling_bench.c - the machine's own limits for the data of one image,
 * measured in the same run as harvbk_bench (which runs it and turns these
 * figures into a ceiling per phase; the model is in bench/README.md).
 *
 *   ceiling_bench --image IMG --dir DIR [--store-config FILE | --chunk-size N
 *                 --codec zstd|lz4|gzip|none [--encrypted]] [--disk-bytes N]
 *                 [--store-dir DIR] [--no-disk]
 *
 * The image is walked in the store's chunks, as a backup walks it: a chunk
 * that is a file hole is skipped, an all-zero chunk is only scanned. Every
 * other chunk is hashed (SHA-256, or HMAC-SHA-256 when the store is
 * encrypted), compressed with the store's codec at the level the library uses
 * (the library's own codec calls), and what shrank is decompressed again;
 * an encrypted store also seals and opens the payload (AES-256-GCM). Each
 * step is timed in CPU seconds of this one thread (CLOCK_THREAD_CPUTIME_ID),
 * so other load on the machine stretches it less than wall time. Reading the
 * image is not timed.
 *
 * Then the scratch disk: a file of --disk-bytes (default: the image's data,
 * at least 1 GiB, at most 2 GiB) in DIR is written sequentially with
 * O_DIRECT in 8 MiB blocks and fsync'd (timed together), then read back with
 * O_DIRECT, and removed.
 *
 * --store-dir: the files of a file:// store, for how much of them the page
 * cache holds (image_cached_bytes likewise for the image; both by mincore).
 *
 * Output: "key value" lines on stdout (bytes, seconds, counts).
 */
#include "core/crypt.h"
#include "core/hb.h"
#include "store/internal.h"
#include "store/store.h"
#include "target/config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DISK_BLOCK (8u << 20)

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ceiling_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        die("bad size '%s'", s);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end)
        die("bad size '%s'", s);
    return v;
}

static void *xalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n ? n : 1) != 0)
        die("out of memory (%zu bytes)", n);
    return p;
}

/* The store config's few fields we need (harvbk-store.json of a file://
 * target), found by name: "chunk_size": N, "codec": "x", "encryption": "y". */
static void read_store_config(const char *path, uint64_t *cs, int *codec, bool *enc)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("--store-config %s: %s", path, strerror(errno));
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, "\"chunk_size\"");
    if (!p || !(p = strchr(p, ':')))
        die("%s: no chunk_size", path);
    *cs = strtoull(p + 1, NULL, 10);
    char name[32];
    if (!(p = strstr(buf, "\"codec\"")) || !(p = strchr(p, ':')) ||
        sscanf(p + 1, " \"%31[a-z0-9]\"", name) != 1 || (*codec = hb_codec_parse(name)) < 0)
        die("%s: no codec this program knows", path);
    *enc = (p = strstr(buf, "\"encryption\"")) && (p = strchr(p, ':')) &&
           sscanf(p + 1, " \"%31[a-z0-9-]\"", name) == 1 && strcmp(name, "none") != 0;
}

/* Distinct chunk ids: open addressing over the first 8 bytes of the digest. */
typedef struct idset {
    uint8_t (*ids)[HB_DIGEST_LEN];
    double *dec_cpu; /* decompress (+ open) CPU seconds of that chunk, measured once */
    size_t cap, n;
} idset;

static ssize_t idset_find(idset *s, const uint8_t id[HB_DIGEST_LEN], bool *found)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (hb_is_zero(s->ids[i], HB_DIGEST_LEN)) {
            *found = false;
            return (ssize_t)i;
        }
        if (memcmp(s->ids[i], id, HB_DIGEST_LEN) == 0) {
            *found = true;
            return (ssize_t)i;
        }
    }
}

/* Bytes of a file, and how many of them the page cache holds. */
static void residency(int fd, uint64_t size, uint64_t *cached)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (!size)
        return;
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    size_t np = (size + (uint64_t)pg - 1) / (uint64_t)pg;
    unsigned char *vec = malloc(np);
    if (m != MAP_FAILED && vec && mincore(m, size, vec) == 0)
        for (size_t i = 0; i < np; i++)
            *cached += (vec[i] & 1) ? (uint64_t)pg : 0;
    free(vec);
    if (m != MAP_FAILED)
        munmap(m, size);
}

static uint64_t g_store_bytes, g_store_cached;
static int store_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)f;
    if (flag != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint64_t c = 0;
    residency(fd, (uint64_t)sb->st_size, &c);
    close(fd);
    g_store_bytes += (uint64_t)sb->st_size;
    g_store_cached += c > (uint64_t)sb->st_size ? (uint64_t)sb->st_size : c;
    return 0;
}

/* O_DIRECT sequential write (+ fsync) and read of a file in dir. */
static void disk_test(const char *dir, uint64_t disk_bytes, uint64_t data_bytes)
{
    if (!disk_bytes) {
        disk_bytes = data_bytes;
        if (disk_bytes < (1ull << 30))
            disk_bytes = 1ull << 30;
        if (disk_bytes > (2ull << 30))
            disk_bytes = 2ull << 30;
    }
    disk_bytes = (disk_bytes + DISK_BLOCK - 1) / DISK_BLOCK * DISK_BLOCK;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < disk_bytes + (256ull << 20))
        die("not enough free space in %s for the %" PRIu64 "-byte disk test", dir, disk_bytes);
    char path[4096];
    snprintf(path, sizeof path, "%s/ceiling-disk.XXXXXX", dir);
    int tfd = mkstemp(path);
    if (tfd < 0)
        die("mkstemp in %s: %s", dir, strerror(errno));
    close(tfd);
    int dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (dfd < 0) {
        unlink(path);
        die("%s: O_DIRECT: %s", path, strerror(errno));
    }
    uint8_t *blk = xalloc(DISK_BLOCK);
    uint64_t x = 0x9e3779b97f4a7c15ull; /* incompressible bytes: no shortcut for zeros */
    for (size_t i = 0; i < DISK_BLOCK / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(blk + i * 8, &x, 8);
    }
    double t0 = wall_now();
    for (uint64_t off = 0; off < disk_bytes; off += DISK_BLOCK) {
        blk[0] = (uint8_t)(off >> 23); /* every block differs */
        if (pwrite(dfd, blk, DISK_BLOCK, (off_t)off) != (ssize_t)DISK_BLOCK) {
            unlink(path);
            die("%s: O_DIRECT write: %s", path, strerror(errno));
        }
    }
    if (fsync(dfd) != 0) {
        unlink(path);
        die("%s: fsync: %s", path, strerror(errno));
    }
    double t_write = wall_now() - t0;
    t0 = wall_now();
    for (uint64_t off = 0; off < disk_bytes; off += DISK_BLOCK)
        if (pread(dfd, blk, DISK_BLOCK, (off_t)off) != (ssize_t)DISK_BLOCK) {
            unlink(path);
            die("%s: O_DIRECT read: %s", path, strerror(errno));
        }
    double t_read = wall_now() - t0;
    close(dfd);
    unlink(path);
    printf("disk_bytes %" PRIu64 "\ndisk_write_s %.6f\ndisk_read_s %.6f\n", disk_bytes, t_write,
           t_read);
    printf("disk_write_mb_per_s %.1f\ndisk_read_mb_per_s %.1f\n",
           (double)disk_bytes / t_write / 1e6, (double)disk_bytes / t_read / 1e6);
    free(blk);
}

static void usage(FILE *f)
{
    fputs("usage: ceiling_bench --image IMG --dir DIR [--store-config FILE |\n"
          "       --chunk-size N --codec zstd|lz4|gzip|none [--encrypted]]\n"
          "       [--store-dir DIR] [--disk-bytes N] [--no-disk]\n",
          f);
}

int main(int argc, char **argv)
{
    const char *image = NULL, *dir = NULL, *store_cfg = NULL, *store_dir = NULL;
    uint64_t cs = HB_DEFAULT_CHUNK_SIZE, disk_bytes = 0;
    int codec = HB_CODEC_ZSTD;
    bool enc = false, disk = true;
    enum { O_IMAGE = 1000, O_DIR, O_CFG, O_CS, O_CODEC, O_ENC, O_DISK, O_NODISK, O_SDIR, O_HELP };
    static const struct option lo[] = {
        {"image", required_argument, 0, O_IMAGE},   {"dir", required_argument, 0, O_DIR},
        {"store-config", required_argument, 0, O_CFG}, {"chunk-size", required_argument, 0, O_CS},
        {"codec", required_argument, 0, O_CODEC},   {"encrypted", no_argument, 0, O_ENC},
        {"disk-bytes", required_argument, 0, O_DISK}, {"no-disk", no_argument, 0, O_NODISK},
        {"store-dir", required_argument, 0, O_SDIR},
        {"help", no_argument, 0, O_HELP},           {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case O_IMAGE: image = optarg; break;
        case O_DIR: dir = optarg; break;
        case O_CFG: store_cfg = optarg; break;
        case O_CS: cs = parse_size(optarg); break;
        case O_CODEC:
            if ((codec = hb_codec_parse(optarg)) < 0)
                die("--codec: unknown codec '%s'", optarg);
            break;
        case O_ENC: enc = true; break;
        case O_DISK: disk_bytes = parse_size(optarg); break;
        case O_NODISK: disk = false; break;
        case O_SDIR: store_dir = optarg; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!image || (disk && !dir) || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (store_cfg)
        read_store_config(store_cfg, &cs, &codec, &enc);
    if (cs < 4096 || cs > (256u << 20))
        die("chunk size %" PRIu64 " out of range", cs);
    int level = hb_codec_default_level(codec); /* the store passes level 0 = this */

    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (cpus <= 0)
        cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);

    int fd = open(image, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("%s: %s", image, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("%s: %s", image, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;

    /* how much of the image (and the store) the page cache holds now: the
     * phases read those bytes from memory, not from the disk */
    uint64_t cached = 0; /* of the data chunks: a read of a hole caches zero pages too */
    long pg = sysconf(_SC_PAGESIZE);
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    unsigned char *vec = malloc((size + (uint64_t)pg - 1) / (uint64_t)pg + 1);
    if (!vec || (map != MAP_FAILED && mincore(map, size, vec) != 0)) {
        free(vec);
        vec = NULL;
    }
    if (map != MAP_FAILED)
        munmap(map, size);
    if (store_dir && nftw(store_dir, store_cb, 32, FTW_PHYS) != 0)
        die("--store-dir %s: cannot walk it", store_dir);

    hb_store_crypt *crypt = NULL;
    uint8_t gcm_key[HB_AES_KEY_LEN], nonce[HB_GCM_NONCE_LEN], tag[HB_GCM_TAG_LEN];
    if (enc) {
        uint8_t master[HB_STORE_KEY_LEN];
        int r = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (r < 0 || read(r, master, sizeof master) != (ssize_t)sizeof master ||
            read(r, gcm_key, sizeof gcm_key) != (ssize_t)sizeof gcm_key)
            die("/dev/urandom: cannot read a key");
        close(r);
        hb_err e;
        hb_err_clear(&e);
        if (hb_store_crypt_new(&crypt, "ceiling-bench", master, &e) != 0)
            die("key: %s", e.msg);
        memset(nonce, 7, sizeof nonce);
    }

    size_t bound = hb_codec_bound(codec, cs);
    if (bound < cs)
        bound = cs;
    uint8_t *raw = xalloc(cs), *cmp = xalloc(bound + HB_GCM_TAG_LEN), *back = xalloc(cs),
            *sealed = xalloc(bound);
    uint64_t nchunks = (size + cs - 1) / cs;
    idset ids = {0};
    ids.cap = 64;
    while (ids.cap < nchunks * 2)
        ids.cap <<= 1;
    ids.ids = calloc(ids.cap, HB_DIGEST_LEN);
    ids.dec_cpu = calloc(ids.cap, sizeof(double));
    if (!ids.ids || !ids.dec_cpu)
        die("out of memory");

    uint64_t data_bytes = 0, zero_bytes = 0, nonzero_bytes = 0, unique_bytes = 0, stored = 0;
    uint64_t data_chunks = 0, zero_chunks = 0, unique_chunks = 0, compressed_chunks = 0;
    double t_zero = 0, t_hash = 0, t_hash_u = 0, t_comp = 0, t_seal = 0, t_dec = 0, t_dec_u = 0;
    uint64_t hole_data = 0, hole_end = 0; /* current data extent [hole_data, hole_end) */
    bool holes_on = true;
    for (uint64_t i = 0; i < nchunks; i++) {
        uint64_t off = i * cs;
        size_t len = (size_t)(size - off < cs ? size - off : cs);
        if (holes_on && off >= hole_end) { /* the backup's hole test: chunk before the next data */
            off_t d = lseek(fd, (off_t)off, SEEK_DATA);
            if (d < 0 && errno == ENXIO) {
                hole_data = hole_end = UINT64_MAX;
            } else if (d < 0) {
                holes_on = false;
            } else {
                off_t x = lseek(fd, d, SEEK_HOLE);
                hole_data = (uint64_t)d;
                hole_end = x > d ? (uint64_t)x : (uint64_t)d + 1;
            }
        }
        if (holes_on && off + len <= hole_data)
            continue;
        for (size_t done = 0; done < len;) {
            ssize_t n = pread(fd, raw + done, len - done, (off_t)(off + done));
            if (n <= 0)
                die("%s: read at %" PRIu64 ": %s", image, off + done, n ? strerror(errno) : "EOF");
            done += (size_t)n;
        }
        data_bytes += len;
        data_chunks++;
        for (uint64_t pgo = off / (uint64_t)pg; vec && pgo * (uint64_t)pg < off + len; pgo++)
            cached += (vec[pgo] & 1) ? (uint64_t)pg : 0;
        double t0 = cpu_now();
        bool zero = hb_is_zero(raw, len);
        t_zero += cpu_now() - t0;
        if (zero) {
            zero_bytes += len;
            zero_chunks++;
            continue;
        }
        nonzero_bytes += len;
        uint8_t id[HB_DIGEST_LEN];
        t0 = cpu_now();
        hb_crypt_chunk_id(crypt, raw, len, id);
        double th = cpu_now() - t0;
        t_hash += th;
        bool found;
        size_t slot = (size_t)idset_find(&ids, id, &found);
        if (found) { /* a duplicate: restore decodes it again, backup and verify do not */
            t_dec += ids.dec_cpu[slot] + th;
            continue;
        }
        memcpy(ids.ids[slot], id, HB_DIGEST_LEN);
        t_hash_u += th;
        unique_bytes += len;
        unique_chunks++;

        size_t clen = 0;
        hb_err e;
        hb_err_clear(&e);
        t0 = cpu_now();
        int r = codec == HB_CODEC_NONE ? 1 : hb_codec_compress(codec, 0, raw, len, cmp, bound, &clen, &e);
        t_comp += cpu_now() - t0;
        if (r < 0)
            die("compress: %s", e.msg);
        bool shrank = r == 0 && clen < len;
        const uint8_t *payload = shrank ? cmp : raw;
        size_t plen = shrank ? clen : len;
        stored += 32 + plen + (enc ? HB_GCM_TAG_LEN : 0);
        compressed_chunks += shrank;
        double td = 0;
        if (enc) {
            t0 = cpu_now();
            if (hb_gcm_seal(gcm_key, nonce, id, HB_DIGEST_LEN, NULL, 0, payload, plen, sealed, tag))
                die("AES-256-GCM seal failed");
            t_seal += cpu_now() - t0;
            t0 = cpu_now();
            if (hb_gcm_open(gcm_key, nonce, id, HB_DIGEST_LEN, NULL, 0, sealed, plen, tag, cmp))
                die("AES-256-GCM open failed");
            td += cpu_now() - t0;
        }
        if (shrank) {
            const char *why = "?";
            t0 = cpu_now();
            r = hb_codec_decompress(codec, cmp, clen, back, len, &why);
            td += cpu_now() - t0;
            if (r != 0 || memcmp(back, raw, len) != 0)
                die("decompress: %s", r ? why : "bytes differ");
        }
        ids.dec_cpu[slot] = td;
        t_dec += td + th;   /* restore: decode + re-hash every chunk it writes */
        t_dec_u += td + th; /* verify: decode + re-hash every distinct chunk */
    }
    close(fd);
    free(vec);
    (void)t_hash_u;
    if (cached > data_bytes)
        cached = data_bytes;

    printf("cpus %d\n", cpus);
    printf("chunk_size %" PRIu64 "\ncodec %s\nlevel %d\nencrypted %d\n", cs, hb_codec_name(codec),
           level, enc ? 1 : 0);
    printf("image_bytes %" PRIu64 "\nimage_cached_bytes %" PRIu64 "\n", size, cached); /* of data_bytes */
    if (store_dir)
        printf("store_dir_bytes %" PRIu64 "\nstore_dir_cached_bytes %" PRIu64 "\n", g_store_bytes,
               g_store_cached);
    printf("data_bytes %" PRIu64 "\ndata_chunks %" PRIu64 "\n", data_bytes, data_chunks);
    printf("zero_bytes %" PRIu64 "\nzero_chunks %" PRIu64 "\n", zero_bytes, zero_chunks);
    printf("nonzero_bytes %" PRIu64 "\nunique_bytes %" PRIu64 "\nunique_chunks %" PRIu64 "\n",
           nonzero_bytes, unique_bytes, unique_chunks);
    printf("compressed_chunks %" PRIu64 "\nstored_bytes %" PRIu64 "\n", compressed_chunks, stored);
    printf("zero_scan_cpu_s %.6f\n", t_zero);
    printf("hash_cpu_s %.6f\n", t_hash);             /* every non-zero chunk (backup) */
    printf("compress_cpu_s %.6f\n", t_comp + t_seal); /* distinct chunks: compress (+ seal) */
    printf("seal_cpu_s %.6f\n", t_seal);
    printf("decode_cpu_s %.6f\n", t_dec);            /* restore: decompress (+ open) + hash, every chunk */
    printf("decode_unique_cpu_s %.6f\n", t_dec_u);   /* verify: the same, each distinct chunk once */
    if (nonzero_bytes)
        printf("sha_mb_per_s %.1f\n", (double)nonzero_bytes / (t_hash > 0 ? t_hash : 1e-9) / 1e6);
    if (unique_bytes)
        printf("compress_mb_per_s %.1f\n", (double)unique_bytes / (t_comp > 0 ? t_comp : 1e-9) / 1e6);

    if (disk)
        disk_test(dir, disk_bytes, data_bytes);
    free(raw);
    free(cmp);
    free(back);
    free(sealed);
    free(ids.ids);
    free(ids.dec_cpu);
    if (crypt)
        hb_store_crypt_unref(crypt);
    return 0;
}
