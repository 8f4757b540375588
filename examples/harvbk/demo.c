/*
 * demo.c - `harvbk demo [--target] [--keep]`: the whole product in well under a
 * minute, self-contained in a fresh temporary directory:
 *
 *   make a 256 MiB sparse disk (text, zero runs, random data, a duplicate
 *   region, holes) -> file:// target -> register VM -> full backup -> change
 *   about 1% of the disk -> backup with changed ranges (only the changed
 *   chunks are read and uploaded) -> restore as a new VM -> compare bytes ->
 *   verify -> report.
 *
 * With --target the backups go to the target configured in the state
 * directory (`harvbk target set`: file://, nfs:// or s3://) instead, in a
 * namespace of their own (harvbk-demo-<random>), and are deleted at the end
 * followed by gc, so the target is left holding what it held before. The
 * state directory is only read; the demo's VMs and records live in its own
 * temporary state directory.
 *
 * Exit 0 only when the restored bytes are identical and verify passed (and,
 * with --target, the demo's backups were removed again).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "ranges.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ull * 1024ull)
#define DISK_SIZE (256 * MiB)
#define CHUNK_SIZE (1 * MiB)
#define IO_BUF (4 * MiB)

static const char HELP_DEMO[] =
    "Usage: harvbk demo [--target] [--keep]\n"
    "\n"
    "Run a self-contained demonstration in a new temporary directory (under\n"
    "$TMPDIR, else /tmp): make a 256 MiB sparse disk, back it up to a file://\n"
    "target, change about 1% of it, back it up again with changed ranges, restore\n"
    "the second backup as a new VM, compare the restored bytes with the source,\n"
    "verify, and print a report. Without --target it ignores --state. Takes well\n"
    "under a minute.\n"
    "  --target  back up to the target configured in the state directory (--state,\n"
    "            $HARVBK_STATE, ./.harvbk; see 'harvbk target set') instead of a\n"
    "            temporary file:// directory: s3://, nfs:// or file://. The\n"
    "            backups go to a namespace of their own (harvbk-demo-<random>) and\n"
    "            are deleted at the end, followed by gc (which, as 'harvbk gc',\n"
    "            also frees any other unreferenced chunks), so the target is left\n"
    "            as it was. The state directory is only read. An S3 secret is\n"
    "            taken as by every command (harvbk --secret-access-key-file FILE,\n"
    "            $HARVBK_SECRET_ACCESS_KEY_FILE, $AWS_SECRET_ACCESS_KEY); a secret\n"
    "            stored with --store-secret cannot be read back, so give it again.\n"
    "  --keep    keep the temporary directory (its path is printed); with --target\n"
    "            also keep the demo's backups in the target\n";

/* ------------------------------------------------------------------ */
/* disk content */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_next(rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

static void fill_random(uint8_t *buf, size_t len, rng *r)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = rng_next(r);
        memcpy(buf + i, &v, 8);
    }
    for (; i < len; i++)
        buf[i] = (uint8_t)rng_next(r);
}

/* Log-like text: compresses well but no two lines are equal. */
static void fill_text(uint8_t *buf, size_t len, uint64_t *counter, const char *tag)
{
    static const char *msgs[] = {
        "eth0: link up, 1000 Mbps, full duplex, flow control rx/tx",
        "systemd[1]: Started Daily apt download activities.",
        "sshd[812]: Accepted publickey for admin from 10.0.0.12 port 50122",
        "kernel: EXT4-fs (vda1): mounted filesystem with ordered data mode",
        "cron[733]: (root) CMD (run-parts --report /etc/cron.hourly)",
        "containerd: pulled image registry.local/app:1.4.2 in 2.1s",
    };
    size_t used = 0;
    char line[256];
    while (used < len) {
        uint64_t c = (*counter)++;
        int n = snprintf(line, sizeof line,
                         "2026-11-25T%02u:%02u:%02u.%06uZ vm1 %s[%" PRIu64 "]: %s\n",
                         (unsigned)(c / 3600000) % 24, (unsigned)(c / 60000) % 60,
                         (unsigned)(c / 1000) % 60, (unsigned)(c * 7919u) % 1000000u, tag, c,
                         msgs[c % (sizeof msgs / sizeof msgs[0])]);
        size_t take = (size_t)n < len - used ? (size_t)n : len - used;
        memcpy(buf + used, line, take);
        used += take;
    }
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

enum region_kind { R_TEXT, R_ZERO, R_RANDOM, R_COPY };

typedef struct region {
    enum region_kind kind;
    uint64_t off, len;
    uint64_t src; /* R_COPY: where to copy from */
} region;

/* Layout of the demo disk; everything not listed is a hole. */
static const region g_layout[] = {
    {R_TEXT, 0, 48 * MiB, 0},
    /* 48..96 MiB: hole */
    {R_ZERO, 96 * MiB, 32 * MiB, 0},
    {R_RANDOM, 128 * MiB, 48 * MiB, 0},
    {R_COPY, 176 * MiB, 16 * MiB, 128 * MiB}, /* duplicate chunks: stored once */
    /* 192..256 MiB: hole */
};

static int make_disk(const char *path, uint8_t *buf)
{
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int err = 0;
    if (ftruncate(fd, (off_t)DISK_SIZE) != 0) {
        err = errno;
        goto out;
    }
    rng r = {0x9E3779B97F4A7C15ull};
    uint64_t counter = 0;
    for (size_t i = 0; i < sizeof g_layout / sizeof g_layout[0] && !err; i++) {
        const region *g = &g_layout[i];
        for (uint64_t done = 0; done < g->len && !err; done += IO_BUF) {
            if (cli_signal_pending()) {
                err = EINTR;
                break;
            }
            size_t n = (size_t)(g->len - done < IO_BUF ? g->len - done : IO_BUF);
            switch (g->kind) {
            case R_TEXT: fill_text(buf, n, &counter, "app"); break;
            case R_ZERO: memset(buf, 0, n); break;
            case R_RANDOM: fill_random(buf, n, &r); break;
            case R_COPY:
                if (pread_full(fd, buf, n, g->src + done) != (ssize_t)n)
                    err = errno ? errno : EIO;
                break;
            }
            if (!err)
                err = pwrite_all(fd, buf, n, g->off + done);
        }
    }
out:
    if (close(fd) != 0 && !err)
        err = errno;
    return err;
}

/* The ~1% change between the two backups. */
typedef struct change { uint64_t off, len; int kind; } change;
static const change g_changes[] = {
    {8 * MiB, 1 * MiB, R_TEXT},                   /* rewrite 1 MiB of text */
    {150 * MiB, 1 * MiB, R_RANDOM},               /* rewrite 1 MiB of random data */
    {200 * MiB + 256 * 1024, 512 * 1024, R_TEXT}, /* new data in a former hole */
};

static int apply_changes(const char *path, const char *ranges_path, uint8_t *buf,
                         uint64_t chunk_size, uint64_t *out_bytes, uint64_t *out_chunks)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno;
    FILE *rf = fopen(ranges_path, "w");
    if (!rf) {
        int e = errno;
        close(fd);
        return e;
    }
    fprintf(rf, "# changed ranges for the second backup: VOLNAME OFFSET LENGTH\n");
    rng r = {0xD1B54A32D192ED03ull};
    uint64_t counter = 1000000, bytes = 0, chunks = 0;
    int err = 0;
    for (size_t i = 0; i < sizeof g_changes / sizeof g_changes[0] && !err; i++) {
        const change *c = &g_changes[i];
        if (c->kind == R_TEXT)
            fill_text(buf, (size_t)c->len, &counter, "edited");
        else
            fill_random(buf, (size_t)c->len, &r);
        err = pwrite_all(fd, buf, (size_t)c->len, c->off);
        fprintf(rf, "root %" PRIu64 " %" PRIu64 "\n", c->off, c->len);
        bytes += c->len;
        chunks += (c->off + c->len - 1) / chunk_size - c->off / chunk_size + 1;
    }
    if (fclose(rf) != 0 && !err)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    *out_bytes = bytes;
    *out_chunks = chunks;
    return err;
}

/* Compare two files; *first_diff = offset of the first difference or UINT64_MAX. */
static int compare_files(const char *a, const char *b, uint8_t *buf1, uint8_t *buf2,
                         uint64_t *first_diff)
{
    *first_diff = UINT64_MAX;
    int fa = open(a, O_RDONLY | O_CLOEXEC);
    if (fa < 0)
        return errno;
    int fb = open(b, O_RDONLY | O_CLOEXEC);
    if (fb < 0) {
        int e = errno;
        close(fa);
        return e;
    }
    struct stat sa, sb;
    int err = 0;
    if (fstat(fa, &sa) != 0 || fstat(fb, &sb) != 0) {
        err = errno;
        goto out;
    }
    uint64_t size = (uint64_t)(sa.st_size < sb.st_size ? sa.st_size : sb.st_size);
    for (uint64_t off = 0; off < size; off += IO_BUF) {
        if (cli_signal_pending()) {
            err = EINTR;
            goto out;
        }
        size_t n = (size_t)(size - off < IO_BUF ? size - off : IO_BUF);
        if (pread_full(fa, buf1, n, off) != (ssize_t)n || pread_full(fb, buf2, n, off) != (ssize_t)n) {
            err = errno ? errno : EIO;
            goto out;
        }
        if (memcmp(buf1, buf2, n) != 0) {
            size_t k = 0;
            while (buf1[k] == buf2[k])
                k++;
            *first_diff = off + k;
            goto out;
        }
    }
    if (sa.st_size != sb.st_size)
        *first_diff = size;
out:
    close(fa);
    close(fb);
    return err;
}

/* ------------------------------------------------------------------ */
/* measurements */

/* Bytes this process read through read()/pread() so far (Linux
 * /proc/self/io "rchar"), or -1 when unavailable. */
static int64_t proc_rchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    int64_t v = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long long x;
        if (sscanf(line, "rchar: %llu", &x) == 1) {
            v = (int64_t)x;
            break;
        }
    }
    fclose(f);
    return v;
}

static uint64_t g_du_alloc, g_du_apparent, g_du_files;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode)) {
        g_du_alloc += (uint64_t)st->st_blocks * 512u;
        g_du_apparent += (uint64_t)st->st_size;
        g_du_files++;
    }
    return 0;
}

static void disk_usage(const char *dir, uint64_t *alloc, uint64_t *apparent, uint64_t *files)
{
    g_du_alloc = g_du_apparent = g_du_files = 0;
    nftw(dir, du_one, 16, FTW_PHYS);
    *alloc = g_du_alloc;
    *apparent = g_du_apparent;
    *files = g_du_files;
}

static uint64_t file_alloc(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* ------------------------------------------------------------------ */

typedef struct demo {
    char *root, *state, *target, *disks, *disk, *restore_dir, *restored, *ranges_file;
    uint8_t *buf1, *buf2;
    harvbk_ctx *ctx;
    harvbk_vm *vm;
    harvbk_ranges *ranges;
    /* --target: the state directory's target (a copy, secret included), the
     * demo's own namespace in it, and what cleaning up needs to know */
    harvbk_target_config *tcfg;
    bool remote;
    char ns[CLI_NAME_MAX];
    char url[4200];
    uint64_t chunk_size;  /* for the changed-chunk arithmetic and the report */
    bool chunk_size_known;
    bool wrote;           /* a backup was started: the target needs cleaning */
    time_t last_write;    /* wall clock when the last backup ended */
} demo;

static void demo_free(demo *d)
{
    harvbk_ranges_free(d->ranges);
    harvbk_vm_free(d->vm);
    harvbk_ctx_free(d->ctx);
    harvbk_target_config_free(d->tcfg);
    free(d->buf1);
    free(d->buf2);
    free(d->state);
    free(d->target);
    free(d->disks);
    free(d->disk);
    free(d->restore_dir);
    free(d->restored);
    free(d->ranges_file);
}

static int sys_fail(const char *what, int err)
{
    if (err == EINTR && cli_signal_pending()) {
        cli_err("demo: interrupted");
        return CLI_EXIT_INTERRUPTED;
    }
    cli_err("demo: %s: %s", what, strerror(err));
    return CLI_EXIT_FAIL;
}

/* The local file:// target of the self-contained demo. */
static int demo_local_target(demo *d)
{
    int err = cli_mkdirs(d->target, 0755);
    if (err)
        return sys_fail("creating the target directory", err);
    harvbk_target_config *cfg = NULL;
    int rc = harvbk_target_config_new(&cfg);
    char num[32];
    snprintf(d->url, sizeof d->url, "file://%s", d->target);
    snprintf(num, sizeof num, "%llu", (unsigned long long)CHUNK_SIZE);
    if (rc == 0)
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_URL, d->url);
    if (rc == 0)
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_CODEC, "zstd");
    if (rc == 0)
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, num);
    if (rc != 0) {
        harvbk_target_config_free(cfg);
        cli_err("demo: target configuration: %s", harvbk_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    rc = harvbk_ctx_set_target(d->ctx, cfg);
    harvbk_target_config_free(cfg);
    if (rc != 0)
        return cli_fail_ctx(d->ctx, rc, "demo: target set");
    return CLI_EXIT_OK;
}

static int demo_run(demo *d, const cli_env *env)
{
    char s1[32], s2[32], s3[32], s4[32];
    char vmname[2 * CLI_NAME_MAX], b1name[2 * CLI_NAME_MAX], b2name[2 * CLI_NAME_MAX];
    int rc, err;
    snprintf(vmname, sizeof vmname, "%s/vm1", d->ns);
    snprintf(b1name, sizeof b1name, "%s/backup-1", d->ns);
    snprintf(b2name, sizeof b2name, "%s/backup-2", d->ns);

    /* 1. the disk */
    err = cli_mkdirs(d->disks, 0755);
    if (err)
        return sys_fail("creating the disk directory", err);
    double t = cli_now();
    err = make_disk(d->disk, d->buf1);
    if (err)
        return sys_fail("making the demo disk", err);
    uint64_t disk_alloc = file_alloc(d->disk);
    printf("[1/7] made disk root.raw: %s sparse, %s allocated (48 MiB text, 32 MiB zero runs, "
           "48 MiB random, 16 MiB duplicate of it, 112 MiB holes) in %.1fs\n",
           cli_fmt_size(DISK_SIZE, s1, sizeof s1), cli_fmt_size(disk_alloc, s2, sizeof s2),
           cli_now() - t);

    /* 2. context, target, VM */
    cli_env denv = *env;
    denv.state_dir = d->state;
    d->ctx = cli_open_ctx(&denv);
    if (!d->ctx)
        return CLI_EXIT_FAIL;
    if (d->remote) {
        rc = harvbk_ctx_set_target(d->ctx, d->tcfg);
        /* the copy held the secret: drop it now that the context has its own */
        harvbk_target_config_free(d->tcfg);
        d->tcfg = NULL;
        if (rc != 0)
            return cli_fail_ctx(d->ctx, rc, "demo: target set");
    } else {
        int ex = demo_local_target(d);
        if (ex)
            return ex;
    }

    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
             "\"metadata\":{\"namespace\":\"%s\",\"name\":\"vm1\"},"
             "\"spec\":{\"template\":{\"spec\":{\"domain\":{\"devices\":{\"interfaces\":"
             "[{\"name\":\"default\",\"macAddress\":\"52:54:00:12:34:56\"}]}}}}}}",
             d->ns);
    rc = harvbk_vm_new(&d->vm, d->ns, "vm1");
    if (rc == 0)
        rc = harvbk_vm_add_volume_file(d->vm, "root", d->disk);
    if (rc == 0)
        rc = harvbk_vm_set_metadata(d->vm, meta, strlen(meta));
    if (rc == 0)
        rc = harvbk_vm_add_image(d->vm, "demo/ubuntu-24.04");
    if (rc != 0) {
        cli_err("demo: describing the VM: %s", harvbk_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    rc = harvbk_vm_register(d->ctx, d->vm);
    if (rc != 0) {
        char what[200];
        snprintf(what, sizeof what, "demo: vm add %s", vmname);
        return cli_fail_ctx(d->ctx, rc, what);
    }
    if (d->remote)
        printf("[2/7] target %s (the state directory's target; backups in namespace %s, "
               "deleted at the end); VM %s registered with volume root\n",
               d->url, d->ns, vmname);
    else
        printf("[2/7] target %s (zstd, %s chunks); VM %s registered with volume root\n", d->url,
               cli_fmt_size(CHUNK_SIZE, s1, sizeof s1), vmname);

    /* 3. full backup */
    cli_op_result b1, b2, rs, vf;
    int64_t r0 = proc_rchar();
    d->wrote = true;
    int ex = cli_run_backup(d->ctx, d->vm, "backup-1", NULL, 0, &b1);
    d->last_write = time(NULL);
    int64_t r1 = proc_rchar();
    if (ex)
        return ex;
    int64_t read1 = (r0 >= 0 && r1 >= r0) ? r1 - r0 : -1;
    printf("[3/7] backup %s (full): %s logical, read %s, uploaded %s in %.1fs (%s)\n", b1name,
           cli_fmt_size(b1.logical_bytes, s1, sizeof s1),
           read1 >= 0 ? cli_fmt_size((uint64_t)read1, s2, sizeof s2) : "n/a",
           cli_fmt_size(b1.uploaded_bytes, s3, sizeof s3), b1.seconds,
           cli_fmt_rate(b1.logical_bytes, b1.seconds, s4, sizeof s4));

    /* 4. change ~1% */
    uint64_t changed = 0, changed_chunks = 0;
    err = apply_changes(d->disk, d->ranges_file, d->buf1, d->chunk_size, &changed,
                        &changed_chunks);
    if (err)
        return sys_fail("changing the demo disk", err);
    ex = cli_ranges_load("harvbk demo", d->ranges_file, d->vm, &d->ranges, NULL, NULL);
    if (ex)
        return ex;
    printf("[4/7] changed %s of the disk (%.1f%%) in %zu regions touching %llu chunks%s; "
           "changed-ranges file:\n",
           cli_fmt_size(changed, s1, sizeof s1), 100.0 * (double)changed / (double)DISK_SIZE,
           sizeof g_changes / sizeof g_changes[0], (unsigned long long)changed_chunks,
           d->chunk_size_known ? "" : " (of the default chunk size)");
    for (size_t i = 0; i < sizeof g_changes / sizeof g_changes[0]; i++)
        printf("        root %llu %llu\n", (unsigned long long)g_changes[i].off,
               (unsigned long long)g_changes[i].len);

    /* 5. incremental backup with changed ranges */
    r0 = proc_rchar();
    ex = cli_run_backup(d->ctx, d->vm, "backup-2", d->ranges, 0, &b2);
    d->last_write = time(NULL);
    r1 = proc_rchar();
    if (ex)
        return ex;
    int64_t read2 = (r0 >= 0 && r1 >= r0) ? r1 - r0 : -1;
    /* Only the changed chunks may have been read (plus a little metadata). */
    bool only_changed_read =
        read2 >= 0 && (uint64_t)read2 <= changed_chunks * d->chunk_size + 1 * MiB;
    char why[96] = "";
    if (only_changed_read)
        snprintf(why, sizeof why, " (only the %llu changed chunks)",
                 (unsigned long long)changed_chunks);
    else if (read2 >= 0 && d->chunk_size_known)
        snprintf(why, sizeof why, " (more than the %llu changed chunks!)",
                 (unsigned long long)changed_chunks);
    printf("[5/7] backup %s (changed ranges): read %s%s, uploaded %s in %.2fs\n", b2name,
           read2 >= 0 ? cli_fmt_size((uint64_t)read2, s1, sizeof s1) : "n/a", why,
           cli_fmt_size(b2.uploaded_bytes, s2, sizeof s2), b2.seconds);

    /* 6. restore as a new VM and compare */
    ex = cli_run_restore(d->ctx, d->ns, "backup-2", d->ns, "vm1-restored", d->restore_dir, &rs);
    if (ex)
        return ex;
    uint64_t diff = 0;
    err = compare_files(d->disk, d->restored, d->buf1, d->buf2, &diff);
    if (err)
        return sys_fail("comparing the restored disk", err);
    bool identical = diff == UINT64_MAX;
    uint64_t rest_alloc = file_alloc(d->restored);
    printf("[6/7] restored %s as VM %s-restored: %s in %.1fs (%s), %s allocated (sparse)\n",
           b2name, vmname, cli_fmt_size(rs.logical_bytes, s1, sizeof s1), rs.seconds,
           cli_fmt_rate(rs.logical_bytes, rs.seconds, s2, sizeof s2),
           cli_fmt_size(rest_alloc, s3, sizeof s3));

    /* 7. verify */
    ex = cli_run_verify(d->ctx, d->ns, "backup-2", &vf);
    if (ex && ex != CLI_EXIT_BADDATA)
        return ex;
    bool verified = ex == CLI_EXIT_OK;
    printf("[7/7] verify %s: %s in %.1fs (%s)\n", b2name,
           verified ? "every chunk present and intact" : "FAILED", vf.seconds,
           cli_fmt_rate(b2.logical_bytes, vf.seconds, s1, sizeof s1));

    /* report */
    uint64_t logical_total = b1.logical_bytes + b2.logical_bytes;
    printf("\nReport\n");
    if (d->remote)
        printf("  %-26s %s (1 volume)\n", "logical size:",
               cli_fmt_size(b1.logical_bytes, s1, sizeof s1));
    else
        printf("  %-26s %s (1 volume, %s chunks, zstd)\n", "logical size:",
               cli_fmt_size(b1.logical_bytes, s1, sizeof s1),
               cli_fmt_size(CHUNK_SIZE, s2, sizeof s2));
    printf("  %-26s %s (%.1f:1 reduction: holes and zero runs skipped, duplicate chunks "
           "stored once, compressed)\n",
           "backup-1 uploaded:", cli_fmt_size(b1.uploaded_bytes, s1, sizeof s1),
           b1.uploaded_bytes ? (double)b1.logical_bytes / (double)b1.uploaded_bytes : 0.0);
    printf("  %-26s %s (changed %s in %llu chunks; read %s of %s)\n", "backup-2 uploaded:",
           cli_fmt_size(b2.uploaded_bytes, s1, sizeof s1), cli_fmt_size(changed, s2, sizeof s2),
           (unsigned long long)changed_chunks,
           read2 >= 0 ? cli_fmt_size((uint64_t)read2, s3, sizeof s3) : "n/a",
           cli_fmt_size(b2.logical_bytes, s4, sizeof s4));
    if (d->remote) {
        uint64_t up = b1.uploaded_bytes + b2.uploaded_bytes;
        printf("  %-26s %s for %s of backups (%.1f:1)\n", "uploaded to the target:",
               cli_fmt_size(up, s1, sizeof s1), cli_fmt_size(logical_total, s2, sizeof s2),
               up ? (double)logical_total / (double)up : 0.0);
    } else {
        uint64_t st_alloc, st_apparent, st_files;
        disk_usage(d->target, &st_alloc, &st_apparent, &st_files);
        printf("  %-26s %s in %llu files for %s of backups (%.1f:1)\n", "store size on disk:",
               cli_fmt_size(st_alloc, s1, sizeof s1), (unsigned long long)st_files,
               cli_fmt_size(logical_total, s2, sizeof s2),
               st_alloc ? (double)logical_total / (double)st_alloc : 0.0);
    }
    printf("  %-26s %s\n", "throughput backup-1:",
           cli_fmt_rate(b1.logical_bytes, b1.seconds, s1, sizeof s1));
    printf("  %-26s %s (logical size / time: unchanged chunks are not read)\n",
           "throughput backup-2:", cli_fmt_rate(b2.logical_bytes, b2.seconds, s1, sizeof s1));
    printf("  %-26s %s\n", "throughput restore:",
           cli_fmt_rate(rs.logical_bytes, rs.seconds, s1, sizeof s1));
    printf("  %-26s %s\n", "throughput verify:",
           cli_fmt_rate(b2.logical_bytes, vf.seconds, s1, sizeof s1));
    if (identical)
        printf("restored bytes identical: yes\n");
    else
        printf("restored bytes identical: NO (first difference at byte %llu)\n",
               (unsigned long long)diff);
    if (!identical) {
        cli_err("demo: the restored disk differs from the source at byte %llu",
                (unsigned long long)diff);
        return CLI_EXIT_FAIL;
    }
    return verified ? CLI_EXIT_OK : CLI_EXIT_BADDATA;
}

/*
 * --target: delete the demo's backups from the target and gc, so the target
 * holds what it held before. Runs after failures and interruptions too (the
 * operations are waited for without the signal check). Returns an exit code.
 */
static int demo_clean_target(demo *d)
{
    static const char *const names[] = {"backup-2", "backup-1"};
    char what[256];
    int ex = CLI_EXIT_OK;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rc = harvbk_backup_delete(d->ctx, d->ns, names[i]);
        if (rc != 0 && rc != HARVBK_E_NOTFOUND) {
            snprintf(what, sizeof what, "demo: removing backup %s/%s from the target", d->ns,
                     names[i]);
            ex = cli_fail_ctx(d->ctx, rc, what);
        }
    }
    if (ex)
        return ex;
    /* gc keeps chunks written in the second it starts or later (they may be
     * an unfinished writer's): let the second of the last write pass, plus
     * one for a target clock slightly ahead of ours */
    while (time(NULL) <= d->last_write + 1)
        usleep(100 * 1000);
    harvbk_op *op = NULL;
    uint64_t chunks = 0, bytes = 0;
    int rc = harvbk_gc(&op, d->ctx, NULL);
    if (rc != 0)
        return cli_fail_ctx(d->ctx, rc, "demo: gc of the target");
    rc = harvbk_op_wait(op);
    if (rc == 0)
        harvbk_gc_result(op, &chunks, &bytes);
    else
        ex = cli_fail_op(op, rc, "demo: gc of the target");
    harvbk_op_free(op);
    if (ex)
        return ex;
    char s1[32];
    printf("cleanup: removed the demo's backups (namespace %s) from the target; gc removed "
           "%llu chunks (%s)\n",
           d->ns, (unsigned long long)chunks, cli_fmt_size(bytes, s1, sizeof s1));
    return CLI_EXIT_OK;
}

/* A secret for an s3:// target copied out of the state directory (the library
 * never hands a stored one out): the file of --secret-access-key-file /
 * $HARVBK_SECRET_ACCESS_KEY_FILE, else $AWS_SECRET_ACCESS_KEY. */
static int demo_target_secret(harvbk_target_config *cfg, const char *state_dir)
{
    char stored[8];
    harvbk_target_config_get(cfg, HARVBK_TARGET_STORE_SECRET, stored, sizeof stored, NULL);
    const char *file = getenv("HARVBK_SECRET_ACCESS_KEY_FILE");
    const char *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
    char *secret = NULL;
    if (file && *file) {
        int err = cli_read_secret(file, &secret);
        if (err) {
            cli_err("demo: cannot read secret access key file '%s': %s", file,
                    cli_secret_error(err));
            return CLI_EXIT_FAIL;
        }
    } else if (env_secret && *env_secret) {
        secret = strdup(env_secret);
        if (!secret) {
            cli_err("demo: out of memory");
            return CLI_EXIT_FAIL;
        }
    } else {
        cli_err("demo: the S3 target of '%s' needs its secret access key%s: give it with "
                "'harvbk --secret-access-key-file FILE demo --target' or $AWS_SECRET_ACCESS_KEY",
                state_dir,
                strcmp(stored, "1") == 0 ? " (the copy stored in the state directory is never "
                                           "handed out)"
                                         : "");
        return CLI_EXIT_FAIL;
    }
    int rc = harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, secret);
    cli_wipe(secret, strlen(secret));
    free(secret);
    if (rc == 0) /* the demo's own state directory never keeps it */
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_STORE_SECRET, "0");
    if (rc != 0) {
        cli_err("demo: the secret access key was refused: %s", harvbk_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* --target: copy the state directory's target configuration into d (read
 * only: the state directory is not modified). */
static int demo_load_target(demo *d, const cli_env *env)
{
    struct stat sb;
    if (stat(env->state_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_err("demo --target: no state directory '%s' (set a target first with "
                "'harvbk --state DIR target set URL', or run 'harvbk demo' without --target)",
                env->state_dir);
        return CLI_EXIT_FAIL;
    }
    harvbk_ctx *uctx = cli_open_ctx(env);
    if (!uctx)
        return CLI_EXIT_FAIL;
    int rc = harvbk_ctx_get_target(uctx, &d->tcfg);
    int ex = CLI_EXIT_OK;
    if (rc == HARVBK_E_NOTARGET) {
        cli_err("demo --target: no backup target is configured in '%s' (set one with 'harvbk "
                "target set URL', or run 'harvbk demo' without --target)",
                env->state_dir);
        ex = CLI_EXIT_FAIL;
    } else if (rc != 0) {
        ex = cli_fail_ctx(uctx, rc, "demo --target");
    }
    harvbk_ctx_free(uctx);
    if (ex)
        return ex;
    harvbk_target_config_get(d->tcfg, HARVBK_TARGET_URL, d->url, sizeof d->url, NULL);
    bool s3 = strncmp(d->url, "s3://", 5) == 0;
    if (s3 && (ex = demo_target_secret(d->tcfg, env->state_dir)))
        return ex;

    /* the chunk size is the store's; the configuration knows it when it was
     * given, else assume the default */
    char num[32];
    uint64_t cs = 0;
    harvbk_target_config_get(d->tcfg, HARVBK_TARGET_CHUNK_SIZE, num, sizeof num, NULL);
    d->chunk_size_known = num[0] && cli_parse_u64(num, &cs) && cs > 0;
    d->chunk_size = d->chunk_size_known ? cs : s3 ? 4 * MiB : 1 * MiB;

    /* a namespace of our own: nothing of anyone else's is touched */
    uint8_t r[4];
    if (getentropy(r, sizeof r) != 0) {
        uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
        memcpy(r, &x, sizeof r);
    }
    snprintf(d->ns, sizeof d->ns, "harvbk-demo-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    d->remote = true;
    return CLI_EXIT_OK;
}

int cmd_demo(cli_env *env, int argc, char **argv)
{
    const char *H = "harvbk demo";
    cli_opt opts[] = {{"keep", CLI_OPT_FLAG, 0, 0, 0},
                      {"target", CLI_OPT_FLAG, 0, 0, 0},
                      {NULL, 0, 0, 0, 0}};
    const char *pos[1];
    int npos = 0;
    bool help = false;
    int ex = cli_parse(H, argc, argv, opts, pos, 0, &npos, &help);
    if (ex)
        return ex;
    if (help) {
        fputs(HELP_DEMO, stdout);
        return CLI_EXIT_OK;
    }
    bool keep = cli_opt_find(opts, "keep")->count > 0;
    bool use_target = cli_opt_find(opts, "target")->count > 0;

    demo d;
    memset(&d, 0, sizeof d);
    snprintf(d.ns, sizeof d.ns, "demo");
    d.chunk_size = CHUNK_SIZE;
    d.chunk_size_known = true;
    if (use_target && (ex = demo_load_target(&d, env))) {
        demo_free(&d);
        return ex;
    }

    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/harvbk-demo-XXXXXX", tmp);
    char *root = mkdtemp(tmpl);
    if (!root) {
        cli_err("demo: cannot create a temporary directory in '%s': %s", tmp, strerror(errno));
        demo_free(&d);
        return CLI_EXIT_FAIL;
    }
    /* absolute: volume paths are registered with the library, which refuses
     * relative ones (a relative $TMPDIR) */
    char *abs = realpath(root, NULL);
    if (!abs) {
        cli_err("demo: cannot resolve '%s': %s", root, strerror(errno));
        rmdir(root);
        demo_free(&d);
        return CLI_EXIT_FAIL;
    }
    snprintf(tmpl, sizeof tmpl, "%s", abs);
    free(abs);
    d.root = root;
    d.state = join(root, "state");
    d.target = join(root, "target");
    d.disks = join(root, "disks");
    d.disk = join(root, "disks/root.raw");
    d.restore_dir = join(root, "restore");
    d.restored = join(root, "restore/root.raw");
    d.ranges_file = join(root, "changed-ranges.txt");
    d.buf1 = malloc(IO_BUF);
    d.buf2 = malloc(IO_BUF);
    if (!d.state || !d.target || !d.disks || !d.disk || !d.restore_dir || !d.restored ||
        !d.ranges_file || !d.buf1 || !d.buf2) {
        cli_err("demo: out of memory");
        ex = CLI_EXIT_FAIL;
    } else {
        printf("harvbk demo: working in %s (%s at the end)\n\n", root,
               keep ? "kept" : "removed");
        double t0 = cli_now();
        ex = demo_run(&d, env);
        if (d.remote && d.wrote && d.ctx) {
            if (keep) {
                printf("kept the demo's backups in %s: remove them with 'harvbk --state %s "
                       "backup delete %s/backup-1' (and %s/backup-2), then 'harvbk gc'\n",
                       d.url, d.state, d.ns, d.ns);
            } else {
                int cex = demo_clean_target(&d);
                if (cex && ex == CLI_EXIT_OK)
                    ex = cex;
            }
        }
        if (ex == CLI_EXIT_OK)
            printf("demo finished in %.1fs\n", cli_now() - t0);
    }
    /* Close the context before removing its state directory. */
    harvbk_ranges_free(d.ranges);
    d.ranges = NULL;
    harvbk_vm_free(d.vm);
    d.vm = NULL;
    harvbk_ctx_free(d.ctx);
    d.ctx = NULL;
    if (keep) {
        printf("kept %s (state: %s/state, target: %s)\n", root, root,
               d.remote ? d.url : d.target);
    } else {
        int err = cli_remove_tree(root);
        if (err)
            cli_err("demo: could not remove '%s' completely: %s", root, strerror(err));
    }
    demo_free(&d);
    return ex;
}
