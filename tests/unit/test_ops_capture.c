/* tests/unit/test_ops_capture.c - the freeze window (docs/THREADING.md
 * "Freeze window"): freeze -> capture -> thaw -> read the captures.
 *
 * Without arguments, on any filesystem: the capture hook path (the VM is
 * thawed before any volume is read, the backup holds the bytes of the freeze
 * even when the thaw hook changes the volumes, every capture is released
 * exactly once, after the thaw, also on failures), a hook that declines a
 * volume ("mixed"), failing hooks (HARVBK_E_CALLBACK), the freeze deadline
 * (HARVBK_E_TIMEOUT, thaw exactly once) and the fallback without capture
 * ("none": flag HARVBK_BACKUP_NO_REFLINK, or a tmpfs, where FICLONE fails).
 *
 * With --reflink: the reflink capture on an XFS (reflink=1) this program
 * makes on a loop device and mounts under a temporary directory; a guardian
 * process unmounts and detaches it when the program ends, however it ends.
 * Exits 77 (ctest SKIP_RETURN_CODE) with the reason when it cannot: not
 * root, no loop devices, no mkfs.xfs, no XFS in the kernel. */
#include "testutil.h"

#include <harvbk.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define NVOL 2
#define SKIP_CODE 77
#define TMPFS_MAGIC_ 0x01021994

static const size_t vol_size[NVOL] = {8 * CHUNK, 4 * CHUNK + 1000};
static const char *vol_name[NVOL] = {"disk0", "disk1"};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- what the hooks see and do ---- */

typedef struct hk hk;
typedef struct volp {
    hk *h;
    int v;
} volp;

struct hk {
    pthread_mutex_t mu;
    int seq;
    int freezes, thaws, freeze_at, thaw_at;
    bool frozen;
    uint64_t freeze_ms;
    /* callback volumes: their current bytes (the thaw hook may change them) */
    uint8_t *data[NVOL];
    uint8_t *orig[NVOL];
    volp vp[NVOL];
    int reads, reads_frozen, reads_after_thaw;
    uint64_t slow_ms;        /* reads wait until this long after the freeze */
    /* the thaw hook */
    bool mutate_on_thaw;     /* change the callback volumes' bytes */
    const char *overwrite;   /* overwrite this file (a file volume) */
    const char *chunks_dir;  /* count the target's chunks at the thaw */
    long chunks_at_thaw;
    /* the capture hook */
    char *dir;               /* where captures are written */
    const char *decline;     /* volume it declines ("" path) */
    const char *fail;        /* volume it fails for (returns -1) */
    int bad;                 /* 1: gives a missing path, 2: a capture too small,
                                3: a capture larger than the volume (fine) */
    int sleep_ms;            /* takes this long */
    int captures, capture_at[NVOL + 1];
    /* the release hook */
    int release_rc;
    int releases, release_at[NVOL + 1];
    char released[NVOL + 1][512];
    int released_existed;    /* the capture file still existed at its release */
    /* checks made in callbacks (library threads: no cmocka assert there) */
    atomic_int cb_errors;
    char cb_error[256];
};

#define CB_CHECK(h, cond)                                                                \
    do {                                                                                 \
        if (!(cond) && atomic_fetch_add(&(h)->cb_errors, 1) == 0)                        \
            snprintf((h)->cb_error, sizeof (h)->cb_error, "line %d: %s", __LINE__, #cond); \
    } while (0)

static void hk_init(hk *h, const char *root)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->chunks_at_thaw = -1;
    h->dir = tu_path2(root, "captures");
    assert_int_equal(mkdir(h->dir, 0700), 0);
    for (int v = 0; v < NVOL; v++) {
        h->data[v] = malloc(vol_size[v]);
        h->orig[v] = malloc(vol_size[v]);
        tu_fill_random(h->data[v], vol_size[v], 100 + v);
        memcpy(h->orig[v], h->data[v], vol_size[v]);
        h->vp[v].h = h;
        h->vp[v].v = v;
    }
}

static void hk_free(hk *h)
{
    for (int v = 0; v < NVOL; v++) {
        free(h->data[v]);
        free(h->orig[v]);
    }
    free(h->dir);
    pthread_mutex_destroy(&h->mu);
}

static long count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = tu_path2(dir, de->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0)
            n += S_ISDIR(sb.st_mode) ? count_files(p) : S_ISREG(sb.st_mode) ? 1 : 0;
        free(p);
    }
    closedir(d);
    return n;
}

static int freeze_cb(const char *ns, const char *vm, void *p)
{
    (void)ns;
    (void)vm;
    hk *h = p;
    pthread_mutex_lock(&h->mu);
    h->freezes++;
    h->freeze_at = ++h->seq;
    h->frozen = true;
    h->freeze_ms = mono_ms();
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static int thaw_cb(const char *ns, const char *vm, void *p)
{
    (void)ns;
    (void)vm;
    hk *h = p;
    pthread_mutex_lock(&h->mu);
    h->thaws++;
    h->thaw_at = ++h->seq;
    h->frozen = false;
    if (h->chunks_dir)
        h->chunks_at_thaw = count_files(h->chunks_dir);
    if (h->mutate_on_thaw)
        for (int v = 0; v < NVOL; v++)
            for (size_t i = 0; i < vol_size[v]; i++)
                h->data[v][i] ^= 0x5a;
    pthread_mutex_unlock(&h->mu);
    if (h->overwrite) { /* the guest writes again: every byte changes */
        int fd = open(h->overwrite, O_WRONLY);
        struct stat sb;
        CB_CHECK(h, fd >= 0 && fstat(fd, &sb) == 0);
        if (fd >= 0) {
            uint8_t *b = malloc((size_t)sb.st_size);
            tu_fill_random(b, (size_t)sb.st_size, 999);
            CB_CHECK(h, pwrite(fd, b, (size_t)sb.st_size, 0) == sb.st_size);
            CB_CHECK(h, fsync(fd) == 0);
            close(fd);
            free(b);
        }
    }
    return 0;
}

static int read_cb(void *buf, size_t len, uint64_t off, void *p)
{
    volp *vp = p;
    hk *h = vp->h;
    while (h->slow_ms) { /* a slow read: until well after the freeze deadline */
        pthread_mutex_lock(&h->mu);
        uint64_t until = h->freeze_ms + h->slow_ms;
        pthread_mutex_unlock(&h->mu);
        if (mono_ms() >= until)
            break;
        usleep(5000);
    }
    pthread_mutex_lock(&h->mu);
    h->reads++;
    if (h->frozen)
        h->reads_frozen++;
    else if (h->thaws)
        h->reads_after_thaw++;
    memcpy(buf, h->data[vp->v] + off, len);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        return -1;
    char b[65536];
    size_t n;
    while ((n = fread(b, 1, sizeof b, in)) > 0)
        if (fwrite(b, 1, n, out) != n)
            return -1;
    fclose(in);
    return fclose(out);
}

static int capture_cb(const char *ns, const char *vm, const char *volume, const char *path,
                      char *out, size_t size, void *p)
{
    (void)ns;
    (void)vm;
    hk *h = p;
    CB_CHECK(h, size == HARVBK_CAPTURE_PATH_MAX);
    CB_CHECK(h, out[0] == 0); /* the library hands an empty buffer */
    if (h->sleep_ms)
        usleep((useconds_t)h->sleep_ms * 1000u);
    pthread_mutex_lock(&h->mu);
    CB_CHECK(h, h->frozen || !h->freezes); /* only while frozen */
    h->capture_at[h->captures < NVOL ? h->captures : NVOL] = ++h->seq;
    h->captures++;
    pthread_mutex_unlock(&h->mu);
    if (h->fail && strcmp(volume, h->fail) == 0)
        return -1;
    if (h->decline && strcmp(volume, h->decline) == 0)
        return 0;
    int v = strcmp(volume, vol_name[0]) == 0 ? 0 : 1;
    snprintf(out, size, "%s/%s.snap", h->dir, volume);
    if (h->bad == 1) {
        snprintf(out, size, "%s/no-such-%s", h->dir, volume);
        return 0;
    }
    if (path) { /* a file volume: an LVM snapshot would be made here */
        CB_CHECK(h, copy_file(path, out) == 0);
    } else if (h->bad == 3) { /* larger than the volume: its bytes, then others */
        size_t n = vol_size[v] + 3 * CHUNK + 17;
        uint8_t *b = malloc(n);
        tu_fill_random(b, n, 55);
        memcpy(b, h->data[v], vol_size[v]);
        CB_CHECK(h, tu_write_file(out, b, n) == 0);
        free(b);
    } else {
        CB_CHECK(h, tu_write_file(out, h->data[v], h->bad == 2 ? 100 : vol_size[v]) == 0);
    }
    return 0;
}

static int release_cb(const char *ns, const char *vm, const char *volume, const char *captured,
                      void *p)
{
    (void)ns;
    (void)vm;
    (void)volume;
    hk *h = p;
    pthread_mutex_lock(&h->mu);
    int k = h->releases < NVOL ? h->releases : NVOL;
    h->release_at[k] = ++h->seq;
    snprintf(h->released[k], sizeof h->released[k], "%s", captured);
    h->releases++;
    pthread_mutex_unlock(&h->mu);
    if (unlink(captured) == 0)
        h->released_existed++;
    return h->release_rc;
}

/* ---- a context on a file:// target, a VM ---- */

typedef struct env {
    char *root, *target;
    harvbk_ctx *ctx;
    harvbk_vm *vm;
    hk h;
} env;

static void env_open(env *v, const char *tag, const char *base)
{
    if (base) {
        v->root = malloc(strlen(base) + strlen(tag) + 16);
        sprintf(v->root, "%s/%s-XXXXXX", base, tag);
        assert_non_null(mkdtemp(v->root));
    } else {
        v->root = tu_mkdtemp(tag);
    }
    char *sd = tu_path2(v->root, "state");
    v->target = tu_path2(v->root, "target");
    assert_int_equal(harvbk_ctx_open(&v->ctx, sd, NULL), 0);
    tu_set_file_target(v->ctx, v->target);
    free(sd);
    hk_init(&v->h, v->root);
    assert_int_equal(harvbk_vm_new(&v->vm, "default", "vm1"), 0);
}

static void env_callback_volumes(env *v)
{
    for (int k = 0; k < NVOL; k++)
        assert_int_equal(harvbk_vm_add_volume_callbacks(v->vm, vol_name[k], vol_size[k], read_cb,
                                                        NULL, &v->h.vp[k]),
                         0);
}

static void env_close(env *v)
{
    harvbk_vm_free(v->vm);
    harvbk_ctx_free(v->ctx);
    hk_free(&v->h);
    tu_rmrf(v->root);
    free(v->root);
    free(v->target);
}

static harvbk_backup_options hooks_opts(env *v)
{
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = freeze_cb;
    bo.thaw_cb = thaw_cb;
    bo.freeze_payload = &v->h;
    bo.capture_cb = capture_cb;
    bo.release_cb = release_cb;
    bo.capture_payload = &v->h;
    return bo;
}

static int run_backup(env *v, const char *name, const harvbk_backup_options *bo, char *msg,
                      size_t size)
{
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v->ctx, v->vm, name, bo), 0);
    int rc = harvbk_op_wait(op);
    if (msg)
        harvbk_op_errmsg_copy(op, msg, size);
    harvbk_op_free(op);
    if (atomic_load(&v->h.cb_errors))
        fail_msg("a check in a callback failed: %s", v->h.cb_error);
    return rc;
}

static int run_snapshot(env *v, const char *name, const harvbk_snapshot_options *so, char *msg,
                        size_t size)
{
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_snapshot_create(&op, v->ctx, v->vm, name, so), 0);
    int rc = harvbk_op_wait(op);
    if (msg)
        harvbk_op_errmsg_copy(op, msg, size);
    harvbk_op_free(op);
    if (atomic_load(&v->h.cb_errors))
        fail_msg("a check in a callback failed: %s", v->h.cb_error);
    return rc;
}

/* Restore entry `name` (snapshot or backup) into a fresh directory and
 * compare volume k's file with want. */
static void assert_restored(env *v, bool snap, const char *name, const char *vmname, int k,
                            const void *want, size_t len)
{
    char sub[128];
    snprintf(sub, sizeof sub, "restore-%s", vmname);
    char *dir = tu_path2(v->root, sub);
    mkdir(dir, 0755);
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = vmname;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    assert_int_equal(snap ? harvbk_snapshot_restore(&op, v->ctx, "default", name, &ro)
                          : harvbk_restore_create(&op, v->ctx, "default", name, &ro),
                     0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    char file[128];
    snprintf(file, sizeof file, "%s.raw", vol_name[k]);
    char *p = tu_path2(dir, file);
    char *w = tu_path2(v->root, "want.raw");
    assert_int_equal(tu_write_file(w, want, len), 0);
    if (tu_files_equal(p, w) != 0)
        fail_msg("%s %s: restored %s differs from the bytes at the freeze", snap ? "snapshot"
                                                                                 : "backup",
                 name, vol_name[k]);
    unlink(w);
    free(w);
    free(p);
    free(dir);
}

static harvbk_backup_info *get_info(env *v, bool snap, const char *name)
{
    harvbk_backup_info *in = NULL;
    assert_int_equal(snap ? harvbk_snapshot_get(&in, v->ctx, "default", name)
                          : harvbk_backup_get(&in, v->ctx, "default", name),
                     0);
    return in;
}

static void assert_json_has(const harvbk_backup_info *in, const char *needle)
{
    char *js = NULL;
    assert_int_equal(harvbk_backup_info_to_json(in, &js), 0);
    if (!strstr(js, needle))
        fail_msg("%s not in %s", needle, js);
    harvbk_string_free(js);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

/* ---- the capture hook ---- */

/* Callback volumes captured by the hook: the VM is thawed before any read,
 * no volume is read through its callbacks, the thaw hook changing every byte
 * does not reach the backup, each capture is released once after the thaw
 * and after its read. Recorded: capture "hook", frozen_ms; in the info, its
 * JSON, the manifest, and the catalog after a sync. */
static void test_hook_capture_is_point_in_time(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-hook", NULL);
    env_callback_volumes(&v);
    v.h.mutate_on_thaw = true;
    v.h.chunks_dir = tu_path2(v.target, "chunks");
    harvbk_backup_options bo = hooks_opts(&v);
    char msg[512] = "";
    assert_int_equal(run_backup(&v, "b1", &bo, msg, sizeof msg), 0);
    assert_int_equal(v.h.freezes, 1);
    assert_int_equal(v.h.thaws, 1);
    assert_int_equal(v.h.captures, 2);
    assert_int_equal(v.h.releases, 2);
    assert_int_equal(v.h.released_existed, 2);
    assert_int_equal(v.h.reads, 0); /* read from the captures only */
    assert_int_equal(v.h.chunks_at_thaw, 0); /* nothing was read before the thaw */
    for (int k = 0; k < NVOL; k++) {
        assert_true(v.h.capture_at[k] > v.h.freeze_at);
        assert_true(v.h.capture_at[k] < v.h.thaw_at);
        assert_true(v.h.release_at[k] > v.h.thaw_at);
        char want[512];
        snprintf(want, sizeof want, "%s/%s.snap", v.h.dir, vol_name[k]);
        assert_string_equal(v.h.released[k], want);
    }
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_string_equal(harvbk_backup_info_capture(in), "hook");
    assert_string_equal(harvbk_backup_info_volume_capture(in, 0), "hook");
    assert_string_equal(harvbk_backup_info_volume_capture(in, 1), "hook");
    assert_null(harvbk_backup_info_volume_capture(in, 2));
    int64_t fz = harvbk_backup_info_frozen_ms(in);
    assert_true(fz >= 0);
    assert_json_has(in, "\"capture\":\"hook\"");
    assert_json_has(in, "\"frozen_ms\":");
    assert_json_has(in, "{\"name\":\"disk0\",\"size\":524288,\"capture\":\"hook\"}");
    harvbk_backup_info_free(in);
    /* the manifest carries them (optional keys) */
    char *mp = tu_path2(v.target, "backups/default/b1/manifest.json");
    char *mj = read_text(mp);
    assert_non_null(mj);
    assert_non_null(strstr(mj, "\"capture\":\"hook\""));
    assert_non_null(strstr(mj, "\"frozen_ms\":"));
    free(mj);
    free(mp);
    /* a fresh context on the same target reads them through its catalog */
    char *sd2 = tu_path2(v.root, "state2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    tu_set_file_target(c2, v.target);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, c2), 0);
    assert_int_equal(harvbk_backup_list_count(l), 1);
    const harvbk_backup_info *li = harvbk_backup_list_at(l, 0);
    assert_string_equal(harvbk_backup_info_capture(li), "hook");
    assert_string_equal(harvbk_backup_info_volume_capture(li, 1), "hook");
    assert_int_equal(harvbk_backup_info_frozen_ms(li), fz);
    harvbk_backup_list_free(l);
    harvbk_ctx_free(c2);
    free(sd2);

    for (int k = 0; k < NVOL; k++)
        assert_restored(&v, false, "b1", k ? "copy1" : "copy0", k, v.h.orig[k], vol_size[k]);
    free((char *)v.h.chunks_dir);
    env_close(&v);
}

/* A hook returning "" for disk1: disk1 is read as it is, while frozen, and
 * disk0 from its capture after the thaw: "mixed". Both hold the bytes of the
 * freeze. */
static void test_hook_declines_a_volume(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-decline", NULL);
    env_callback_volumes(&v);
    v.h.mutate_on_thaw = true;
    v.h.decline = "disk1";
    harvbk_backup_options bo = hooks_opts(&v);
    assert_int_equal(run_backup(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.h.captures, 2);
    assert_int_equal(v.h.releases, 1);
    assert_true(v.h.reads >= 5); /* disk1's chunks */
    assert_int_equal(v.h.reads, v.h.reads_frozen);
    assert_int_equal(v.h.reads_after_thaw, 0);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_string_equal(harvbk_backup_info_capture(in), "mixed");
    assert_string_equal(harvbk_backup_info_volume_capture(in, 0), "hook");
    assert_string_equal(harvbk_backup_info_volume_capture(in, 1), "none");
    assert_true(harvbk_backup_info_frozen_ms(in) >= 0);
    harvbk_backup_info_free(in);
    assert_restored(&v, false, "b1", "copy0", 0, v.h.orig[0], vol_size[0]);
    assert_restored(&v, false, "b1", "copy1", 1, v.h.orig[1], vol_size[1]);
    env_close(&v);
}

/* The capture hook failing for disk1: HARVBK_E_CALLBACK naming the volume;
 * thaw once; disk0's capture released once, after the thaw; the entry is
 * Error and still says how long the VM was frozen. */
static void test_capture_hook_failure(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-fail", NULL);
    env_callback_volumes(&v);
    v.h.fail = "disk1";
    harvbk_backup_options bo = hooks_opts(&v);
    char msg[512] = "";
    assert_int_equal(run_backup(&v, "b1", &bo, msg, sizeof msg), HARVBK_E_CALLBACK);
    assert_non_null(strstr(msg, "the capture hook returned -1 for volume 'disk1'"));
    assert_int_equal(v.h.thaws, 1);
    assert_int_equal(v.h.releases, 1);
    assert_true(v.h.release_at[0] > v.h.thaw_at);
    assert_int_equal(v.h.reads, 0);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    assert_true(harvbk_backup_info_frozen_ms(in) >= 0);
    harvbk_backup_info_free(in);
    env_close(&v);
}

/* A capture the library cannot use (a missing path; a file smaller than the
 * volume) fails with HARVBK_E_CALLBACK and is released all the same. */
static void test_unusable_capture(void **state)
{
    (void)state;
    for (int bad = 1; bad <= 2; bad++) {
        env v;
        env_open(&v, "cap-bad", NULL);
        env_callback_volumes(&v);
        v.h.bad = bad;
        harvbk_backup_options bo = hooks_opts(&v);
        char msg[512] = "";
        assert_int_equal(run_backup(&v, "b1", &bo, msg, sizeof msg), HARVBK_E_CALLBACK);
        assert_non_null(strstr(msg, bad == 1 ? "cannot be read" : "fewer than the volume's"));
        assert_int_equal(v.h.captures, 1); /* stops at the first */
        assert_int_equal(v.h.releases, 1);
        assert_int_equal(v.h.thaws, 1);
        env_close(&v);
    }
}

/* The release hook failing: HARVBK_E_CALLBACK, the entry is not committed,
 * and every capture is still released exactly once (the first release fails,
 * the second volume is not read but released). */
static void test_release_failure(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-relfail", NULL);
    env_callback_volumes(&v);
    v.h.release_rc = 3;
    harvbk_backup_options bo = hooks_opts(&v);
    char msg[512] = "";
    assert_int_equal(run_backup(&v, "b1", &bo, msg, sizeof msg), HARVBK_E_CALLBACK);
    assert_non_null(strstr(msg, "the release hook returned 3"));
    assert_int_equal(v.h.captures, 2);
    assert_int_equal(v.h.releases, 2);
    assert_int_equal(v.h.thaws, 1);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    harvbk_backup_info_free(in);
    env_close(&v);
}

/* A capture hook without a release hook is refused before anything starts,
 * for backups and snapshots; no hook is called. */
static void test_capture_without_release_is_refused(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-norel", NULL);
    env_callback_volumes(&v);
    harvbk_backup_options bo = hooks_opts(&v);
    bo.release_cb = NULL;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, v.vm, "b1", &bo), HARVBK_E_INVALID);
    assert_null(op);
    assert_string_equal(harvbk_error_last(), "a capture hook needs a release hook");
    harvbk_snapshot_options so = HARVBK_SNAPSHOT_OPTIONS_INIT;
    so.capture_cb = capture_cb;
    so.capture_payload = &v.h;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, v.vm, "s1", &so), HARVBK_E_INVALID);
    assert_null(op);
    assert_int_equal(v.h.captures + v.h.freezes, 0);
    env_close(&v);
}

/* A capture hook alone (no freeze hook) still captures: one point in time
 * for all volumes; frozen_ms says the VM was not frozen (-1). */
static void test_capture_without_freeze(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-nofreeze", NULL);
    env_callback_volumes(&v);
    harvbk_backup_options bo = hooks_opts(&v);
    bo.freeze_cb = NULL;
    bo.thaw_cb = NULL;
    assert_int_equal(run_backup(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.h.captures, 2);
    assert_int_equal(v.h.releases, 2);
    assert_int_equal(v.h.reads, 0);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_string_equal(harvbk_backup_info_capture(in), "hook");
    assert_int_equal(harvbk_backup_info_frozen_ms(in), -1);
    assert_json_has(in, "\"frozen_ms\":null");
    harvbk_backup_info_free(in);
    env_close(&v);
}

/* Snapshots alike: the hook capture, point in time, recorded. */
static void test_snapshot_hook_capture(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-snap", NULL);
    env_callback_volumes(&v);
    v.h.mutate_on_thaw = true;
    harvbk_snapshot_options so = HARVBK_SNAPSHOT_OPTIONS_INIT;
    so.freeze_cb = freeze_cb;
    so.thaw_cb = thaw_cb;
    so.freeze_payload = &v.h;
    so.capture_cb = capture_cb;
    so.release_cb = release_cb;
    so.capture_payload = &v.h;
    assert_int_equal(run_snapshot(&v, "s1", &so, NULL, 0), 0);
    assert_int_equal(v.h.releases, 2);
    assert_int_equal(v.h.reads, 0);
    harvbk_backup_info *in = get_info(&v, true, "s1");
    assert_string_equal(harvbk_backup_info_capture(in), "hook");
    assert_true(harvbk_backup_info_frozen_ms(in) >= 0);
    harvbk_backup_info_free(in);
    assert_restored(&v, true, "s1", "copy0", 0, v.h.orig[0], vol_size[0]);
    env_close(&v);
}

/* Scheduled runs take the same hooks (schedule run options version 2). */
static int resolve_cb(harvbk_vm **out, const char *ns, const char *name, void *p)
{
    hk *h = p;
    harvbk_vm *vm = NULL;
    int rc = harvbk_vm_new(&vm, ns, name);
    for (int k = 0; rc == 0 && k < NVOL; k++)
        rc = harvbk_vm_add_volume_callbacks(vm, vol_name[k], vol_size[k], read_cb, NULL,
                                            &h->vp[k]);
    *out = vm;
    return rc;
}

#define H(h) (1893456000000LL + (int64_t)(h)*3600000LL) /* 2030-01-01 + h hours, UTC */

static void test_scheduled_run_captures(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-sched", NULL);
    v.h.mutate_on_thaw = true;
    char *disk = tu_path2(v.root, "disk0.raw"); /* the catalog wants a file volume */
    assert_int_equal(tu_write_file(disk, "x", 1), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v.vm, "disk0", disk), 0);
    assert_int_equal(harvbk_vm_register(v.ctx, v.vm), 0);
    harvbk_schedule_options o = HARVBK_SCHEDULE_OPTIONS_INIT;
    o.type = HARVBK_SCHEDULE_BACKUP;
    o.vm_name = "vm1";
    o.cron = "0 * * * *";
    o.now_ms = H(0) + 30 * 60000;
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "hourly", &o), 0);
    harvbk_schedule_run_options ro = HARVBK_SCHEDULE_RUN_OPTIONS_INIT;
    ro.resolve_cb = resolve_cb;
    ro.resolve_payload = &v.h;
    ro.freeze_cb = freeze_cb;
    ro.thaw_cb = thaw_cb;
    ro.freeze_payload = &v.h;
    ro.capture_cb = capture_cb;
    ro.capture_payload = &v.h;
    harvbk_op *op = NULL;
    /* refused: a capture hook without a release hook; an unknown flag */
    assert_int_equal(harvbk_schedule_run_due(&op, v.ctx, H(1), &ro), HARVBK_E_INVALID);
    assert_string_equal(harvbk_error_last(), "a capture hook needs a release hook");
    ro.release_cb = release_cb;
    ro.flags = HARVBK_BACKUP_NO_REFLINK;
    assert_int_equal(harvbk_schedule_run_due(&op, v.ctx, H(1), &ro), HARVBK_E_INVALID);
    harvbk_scheduler *sch = NULL;
    assert_int_equal(harvbk_scheduler_start(&sch, v.ctx, &ro), HARVBK_E_INVALID);
    ro.flags = HARVBK_SCHEDULE_RUN_NO_REFLINK;
    assert_int_equal(harvbk_schedule_run_due(&op, v.ctx, H(1), &ro), 0);
    assert_non_null(op);
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_int_equal(harvbk_schedule_run_count(op), 1);
    int st = 0;
    assert_int_equal(harvbk_schedule_run_at(op, 0, NULL, NULL, NULL, NULL, &st, NULL, NULL), 0);
    assert_int_equal(st, HARVBK_SCHEDULE_RUN_READY);
    harvbk_op_free(op);
    assert_int_equal(v.h.captures, 2);
    assert_int_equal(v.h.releases, 2);
    assert_int_equal(v.h.reads, 0);
    harvbk_backup_info *in = get_info(&v, false, "hourly-20300101-0100");
    assert_string_equal(harvbk_backup_info_capture(in), "hook");
    assert_true(harvbk_backup_info_frozen_ms(in) >= 0);
    harvbk_backup_info_free(in);
    assert_restored(&v, false, "hourly-20300101-0100", "copy0", 0, v.h.orig[0], vol_size[0]);
    free(disk);
    env_close(&v);
}

/* A capture larger than its volume (an LVM snapshot rounded up to its
 * extents): only the volume's size is read. */
static void test_larger_capture(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-larger", NULL);
    env_callback_volumes(&v);
    v.h.bad = 3;
    harvbk_backup_options bo = hooks_opts(&v);
    assert_int_equal(run_backup(&v, "b1", &bo, NULL, 0), 0);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_int_equal(harvbk_backup_info_volume_size(in, 1), vol_size[1]);
    assert_int_equal(harvbk_backup_info_logical_bytes(in), vol_size[0] + vol_size[1]);
    harvbk_backup_info_free(in);
    assert_restored(&v, false, "b1", "copy1", 1, v.h.orig[1], vol_size[1]);
    env_close(&v);
}

/* ---- the freeze deadline ---- */

/* No capture, reads slower than the deadline: the backup stops, thaws once
 * and fails with HARVBK_E_TIMEOUT ("freeze deadline"); nothing is read after
 * the thaw; frozen_ms is at least the deadline. The same for a snapshot. */
static void test_freeze_deadline(void **state)
{
    (void)state;
    for (int snap = 0; snap < 2; snap++) {
        env v;
        env_open(&v, "cap-deadline", NULL);
        env_callback_volumes(&v);
        v.h.slow_ms = 600;
        char msg[512] = "";
        int rc;
        if (snap) {
            harvbk_snapshot_options so = HARVBK_SNAPSHOT_OPTIONS_INIT;
            so.freeze_cb = freeze_cb;
            so.thaw_cb = thaw_cb;
            so.freeze_payload = &v.h;
            so.freeze_deadline_ms = 150;
            rc = run_snapshot(&v, "s1", &so, msg, sizeof msg);
        } else {
            harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
            bo.freeze_cb = freeze_cb;
            bo.thaw_cb = thaw_cb;
            bo.freeze_payload = &v.h;
            bo.freeze_deadline_ms = 150;
            rc = run_backup(&v, "b1", &bo, msg, sizeof msg);
        }
        assert_int_equal(rc, HARVBK_E_TIMEOUT);
        assert_non_null(strstr(msg, "freeze deadline of 150 ms passed"));
        assert_non_null(strstr(msg, "volume 'disk0'"));
        assert_int_equal(v.h.freezes, 1);
        assert_int_equal(v.h.thaws, 1);
        assert_true(v.h.reads >= 1);
        assert_int_equal(v.h.reads_after_thaw, 0);
        harvbk_backup_info *in = get_info(&v, snap, snap ? "s1" : "b1");
        assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
        assert_non_null(strstr(harvbk_backup_info_error(in), "freeze deadline"));
        assert_true(harvbk_backup_info_frozen_ms(in) >= 150);
        assert_string_equal(harvbk_backup_info_capture(in), "none");
        harvbk_backup_info_free(in);
        env_close(&v);
    }
}

/* The deadline bounds reads while frozen, not captures: a capture step
 * longer than the deadline, everything captured, succeeds. */
static void test_deadline_does_not_bound_captures(void **state)
{
    (void)state;
    env v;
    env_open(&v, "cap-deadline-cap", NULL);
    env_callback_volumes(&v);
    v.h.sleep_ms = 30; /* per capture */
    harvbk_backup_options bo = hooks_opts(&v);
    bo.freeze_deadline_ms = 1;
    assert_int_equal(run_backup(&v, "b1", &bo, NULL, 0), 0);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_true(harvbk_backup_info_frozen_ms(in) >= 60);
    harvbk_backup_info_free(in);
    env_close(&v);
}

/* ---- no capture: today's behaviour ---- */

/* A file volume, freeze hook, reflink capture off: read while frozen (the
 * target holds its chunks at the thaw), capture "none", frozen_ms set, the
 * bytes of the freeze (the thaw hook overwrites the file only afterwards). */
static void check_fallback(const char *base, unsigned flags, const char *tag)
{
    env v;
    env_open(&v, tag, base);
    char *disk = tu_path2(v.root, "disk0.raw");
    uint8_t *orig = malloc(vol_size[0]);
    tu_fill_random(orig, vol_size[0], 7);
    assert_int_equal(tu_write_file(disk, orig, vol_size[0]), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v.vm, "disk0", disk), 0);
    v.h.overwrite = disk;
    v.h.chunks_dir = tu_path2(v.target, "chunks");
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.flags = flags;
    bo.freeze_cb = freeze_cb;
    bo.thaw_cb = thaw_cb;
    bo.freeze_payload = &v.h;
    assert_int_equal(run_backup(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.h.thaws, 1);
    assert_int_equal(v.h.chunks_at_thaw, 8); /* every chunk read while frozen */
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_string_equal(harvbk_backup_info_capture(in), "none");
    assert_string_equal(harvbk_backup_info_volume_capture(in, 0), "none");
    assert_true(harvbk_backup_info_frozen_ms(in) >= 0);
    assert_json_has(in, "\"capture\":\"none\"");
    harvbk_backup_info_free(in);
    char *mp = tu_path2(v.target, "backups/default/b1/manifest.json");
    char *mj = read_text(mp);
    assert_null(strstr(mj, "\"capture\"")); /* "none" is never written */
    assert_non_null(strstr(mj, "\"frozen_ms\":"));
    free(mj);
    free(mp);
    assert_restored(&v, false, "b1", "copy0", 0, orig, vol_size[0]);
    free((char *)v.h.chunks_dir);
    free(orig);
    free(disk);
    env_close(&v);
}

static void test_no_reflink_flag_reads_frozen(void **state)
{
    (void)state;
    check_fallback(NULL, HARVBK_BACKUP_NO_REFLINK, "cap-noreflink");
}

static bool shm_is_tmpfs(void)
{
    struct statfs sf;
    return statfs("/dev/shm", &sf) == 0 && (unsigned long)sf.f_type == TMPFS_MAGIC_ &&
           access("/dev/shm", W_OK) == 0;
}

/* On a tmpfs (no reflinks) the reflink capture falls through: without a
 * capture hook to "none" (as before), with one to the hook. */
static void test_tmpfs_falls_through(void **state)
{
    (void)state;
    if (!shm_is_tmpfs()) {
        print_message("skipped: /dev/shm is not a writable tmpfs\n");
        return;
    }
    check_fallback("/dev/shm", 0, "harvbk-cap-tmpfs");

    env v;
    env_open(&v, "harvbk-cap-tmpfs-hook", "/dev/shm");
    char *disk = tu_path2(v.root, "disk0.raw");
    uint8_t *orig = malloc(vol_size[0]);
    tu_fill_random(orig, vol_size[0], 8);
    assert_int_equal(tu_write_file(disk, orig, vol_size[0]), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v.vm, "disk0", disk), 0);
    v.h.overwrite = disk;
    harvbk_backup_options bo = hooks_opts(&v);
    assert_int_equal(run_backup(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.h.captures, 1);
    assert_int_equal(v.h.releases, 1);
    harvbk_backup_info *in = get_info(&v, false, "b1");
    assert_string_equal(harvbk_backup_info_capture(in), "hook");
    harvbk_backup_info_free(in);
    assert_restored(&v, false, "b1", "copy0", 0, orig, vol_size[0]);
    free(orig);
    free(disk);
    env_close(&v);
}

/* ---- reflinks on a loop-mounted XFS (--reflink) ---- */

static char *xfs_base, *xfs_mnt;
static pid_t guardian = -1;
static int guardian_fd = -1;

/* Run argv (PATH plus /sbin and /usr/sbin); 0 when it exited 0. With out, its
 * first line of output. Quiet. */
static int run_cmd(char *const argv[], char *out, size_t size)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, 2);
        close(p[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    char buf[512];
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (out) {
        size_t k = strcspn(buf, "\n");
        if (k >= size)
            k = size - 1;
        memcpy(out, buf, k);
        out[k] = 0;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The guardian: a child that waits until the pipe from this process closes
 * (at teardown, or when this process dies, whatever kills it), then
 * unmounts, detaches and removes what it was told about, and exits 0 when
 * that worked. */
static void guardian_main(int rfd)
{
    signal(SIGINT, SIG_IGN); /* Ctrl-C on the test must still clean up */
    signal(SIGTERM, SIG_IGN);
    char buf[2048];
    size_t n = 0;
    ssize_t r;
    while ((r = read(rfd, buf + n, sizeof buf - 1 - n)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            n += (size_t)r;
    buf[n] = 0;
    char dev[256] = "", mnt[1024] = "", dir[1024] = "";
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "dev ", 4) == 0)
            snprintf(dev, sizeof dev, "%s", line + 4);
        else if (strncmp(line, "mnt ", 4) == 0)
            snprintf(mnt, sizeof mnt, "%s", line + 4);
        else if (strncmp(line, "dir ", 4) == 0)
            snprintf(dir, sizeof dir, "%s", line + 4);
    }
    int bad = 0;
    if (mnt[0]) {
        char *um[] = {"umount", mnt, NULL};
        if (run_cmd(um, NULL, 0) != 0) {
            char *lazy[] = {"umount", "-l", mnt, NULL};
            bad |= run_cmd(lazy, NULL, 0) != 0;
        }
    }
    if (dev[0]) {
        char *d[] = {"losetup", "-d", dev, NULL};
        bad |= run_cmd(d, NULL, 0) != 0;
    }
    if (dir[0] && !bad) { /* never into a file system still mounted */
        char *rm[] = {"rm", "-rf", dir, NULL};
        bad |= run_cmd(rm, NULL, 0) != 0;
    }
    _exit(bad);
}

static void tell_guardian(const char *what, const char *value)
{
    char line[1100];
    int n = snprintf(line, sizeof line, "%s %s\n", what, value);
    if (write(guardian_fd, line, (size_t)n) != n)
        fprintf(stderr, "cannot reach the guardian process\n");
}

/* NULL when the XFS is mounted at xfs_mnt, else why not (a skip). */
static const char *xfs_make(void)
{
    static char why[512];
    if (geteuid() != 0)
        return "not root (losetup and mount need it)";
    if (access("/dev/loop-control", F_OK) != 0 && access("/dev/loop0", F_OK) != 0)
        return "no loop devices (/dev/loop-control, /dev/loop0)";
    char *which[] = {"mkfs.xfs", "-V", NULL};
    if (run_cmd(which, NULL, 0) != 0)
        return "no mkfs.xfs (install xfsprogs)";
    /* the guardian first, while this process has allocated nothing it could
     * be blamed for leaking */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return "pipe failed";
    fflush(NULL);
    guardian = fork();
    if (guardian == 0) {
        close(p[1]);
        guardian_main(p[0]);
    }
    close(p[0]);
    if (guardian < 0) {
        close(p[1]);
        return "fork failed";
    }
    guardian_fd = p[1];
    xfs_base = tu_mkdtemp("cap-xfs");
    if (!xfs_base)
        return "cannot make a temporary directory";
    tell_guardian("dir", xfs_base);
    char *img = tu_path2(xfs_base, "xfs.img");
    xfs_mnt = tu_path2(xfs_base, "mnt");
    int fd = open(img, O_CREAT | O_WRONLY | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, 512ll << 20) != 0) {
        snprintf(why, sizeof why, "cannot create %s: %s", img, strerror(errno));
        free(img);
        return why;
    }
    close(fd);
    if (mkdir(xfs_mnt, 0755) != 0) {
        free(img);
        return "cannot make the mount point";
    }
    char *mk[] = {"mkfs.xfs", "-q", "-m", "reflink=1", img, NULL};
    if (run_cmd(mk, NULL, 0) != 0) {
        free(img);
        return "mkfs.xfs -m reflink=1 failed";
    }
    char dev[256] = "";
    char *ls[] = {"losetup", "-f", "--show", img, NULL};
    int rc = run_cmd(ls, dev, sizeof dev);
    free(img);
    if (rc != 0 || strncmp(dev, "/dev/", 5) != 0)
        return "losetup -f --show failed (no free loop device?)";
    tell_guardian("dev", dev);
    char *mt[] = {"mount", "-t", "xfs", dev, xfs_mnt, NULL};
    if (run_cmd(mt, NULL, 0) != 0)
        return "cannot mount the XFS (no XFS in this kernel, or no permission)";
    tell_guardian("mnt", xfs_mnt);
    return NULL;
}

/* 0 when the guardian cleaned up (or there was nothing to clean). */
static int xfs_remove(void)
{
    int rc = 0;
    if (guardian_fd >= 0) {
        close(guardian_fd); /* the guardian unmounts and detaches now */
        guardian_fd = -1;
    }
    if (guardian > 0) {
        int st = 0;
        while (waitpid(guardian, &st, 0) < 0 && errno == EINTR)
            ;
        rc = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        if (rc)
            fprintf(stderr, "the XFS at %s was not cleanly unmounted/detached\n", xfs_mnt);
        guardian = -1;
    }
    free(xfs_base); /* the guardian removed it */
    free(xfs_mnt);
    xfs_base = xfs_mnt = NULL;
    return rc;
}

/* A file volume on the XFS, backed up (or snapshotted) with freeze hooks:
 * captured by reflink; at the thaw nothing was read yet; the thaw hook
 * overwrites every byte of the volume file, and the entry still restores
 * the bytes of the freeze. The clone leaves nothing in the volume's
 * directory. */
static void check_reflink(bool snap, bool with_callback_volume)
{
    env v;
    env_open(&v, snap ? "snap" : "backup", xfs_mnt);
    char *vdir = tu_path2(v.root, "images");
    assert_int_equal(mkdir(vdir, 0755), 0);
    char *disk = tu_path2(vdir, "disk0.raw");
    size_t size = 64 * CHUNK + 12345; /* not a whole number of chunks */
    uint8_t *orig = malloc(size);
    tu_fill_random(orig, size, 21);
    memset(orig + 8 * CHUNK, 0, 4 * CHUNK); /* a zero run */
    assert_int_equal(tu_write_file(disk, orig, size), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v.vm, "disk0", disk), 0);
    if (with_callback_volume) /* only the hook can capture it */
        assert_int_equal(harvbk_vm_add_volume_callbacks(v.vm, "disk1", vol_size[1], read_cb,
                                                        NULL, &v.h.vp[1]),
                         0);
    v.h.overwrite = disk;
    v.h.mutate_on_thaw = with_callback_volume;
    v.h.chunks_dir = tu_path2(v.target, "chunks");
    if (snap) {
        char *sst = tu_path2(v.root, "state/snapshot-store/chunks");
        free((char *)v.h.chunks_dir);
        v.h.chunks_dir = sst;
        harvbk_snapshot_options so = HARVBK_SNAPSHOT_OPTIONS_INIT;
        so.freeze_cb = freeze_cb;
        so.thaw_cb = thaw_cb;
        so.freeze_payload = &v.h;
        if (with_callback_volume) {
            so.capture_cb = capture_cb;
            so.release_cb = release_cb;
            so.capture_payload = &v.h;
        }
        assert_int_equal(run_snapshot(&v, "e1", &so, NULL, 0), 0);
    } else {
        harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
        bo.freeze_cb = freeze_cb;
        bo.thaw_cb = thaw_cb;
        bo.freeze_payload = &v.h;
        if (with_callback_volume) {
            bo.capture_cb = capture_cb;
            bo.release_cb = release_cb;
            bo.capture_payload = &v.h;
        }
        assert_int_equal(run_backup(&v, "e1", &bo, NULL, 0), 0);
    }
    assert_int_equal(v.h.thaws, 1);
    assert_int_equal(v.h.chunks_at_thaw, 0); /* nothing read before the thaw */
    assert_int_equal(v.h.captures, with_callback_volume ? 1 : 0); /* disk0: reflink */
    assert_int_equal(v.h.releases, v.h.captures);
    assert_int_equal(v.h.reads, 0);
    assert_int_equal(count_files(vdir), 1); /* only disk0.raw: the clone had no name */
    harvbk_backup_info *in = get_info(&v, snap, "e1");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_string_equal(harvbk_backup_info_capture(in), with_callback_volume ? "mixed"
                                                                             : "reflink");
    assert_string_equal(harvbk_backup_info_volume_capture(in, 0), "reflink");
    if (with_callback_volume)
        assert_string_equal(harvbk_backup_info_volume_capture(in, 1), "hook");
    assert_true(harvbk_backup_info_frozen_ms(in) >= 0);
    harvbk_backup_info_free(in);
    /* the bytes of the freeze, not those the thaw hook wrote */
    assert_restored(&v, snap, "e1", "copy0", 0, orig, size);
    if (with_callback_volume)
        assert_restored(&v, snap, "e1", "copy1", 1, v.h.orig[1], vol_size[1]);
    free((char *)v.h.chunks_dir);
    free(orig);
    free(disk);
    free(vdir);
    env_close(&v);
}

static void test_reflink_backup_is_point_in_time(void **state)
{
    (void)state;
    check_reflink(false, false);
}

static void test_reflink_snapshot_is_point_in_time(void **state)
{
    (void)state;
    check_reflink(true, false);
}

static void test_reflink_and_hook_mixed(void **state)
{
    (void)state;
    check_reflink(false, true);
}

/* The same filesystem with the reflink capture off: "none", read while
 * frozen, as before. */
static void test_reflink_off_on_xfs(void **state)
{
    (void)state;
    check_fallback(xfs_mnt, HARVBK_BACKUP_NO_REFLINK, "noreflink");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest any_fs[] = {
        cmocka_unit_test(test_hook_capture_is_point_in_time),
        cmocka_unit_test(test_hook_declines_a_volume),
        cmocka_unit_test(test_capture_hook_failure),
        cmocka_unit_test(test_unusable_capture),
        cmocka_unit_test(test_release_failure),
        cmocka_unit_test(test_capture_without_release_is_refused),
        cmocka_unit_test(test_capture_without_freeze),
        cmocka_unit_test(test_snapshot_hook_capture),
        cmocka_unit_test(test_scheduled_run_captures),
        cmocka_unit_test(test_larger_capture),
        cmocka_unit_test(test_freeze_deadline),
        cmocka_unit_test(test_deadline_does_not_bound_captures),
        cmocka_unit_test(test_no_reflink_flag_reads_frozen),
        cmocka_unit_test(test_tmpfs_falls_through),
    };
    const struct CMUnitTest xfs[] = {
        cmocka_unit_test(test_reflink_backup_is_point_in_time),
        cmocka_unit_test(test_reflink_snapshot_is_point_in_time),
        cmocka_unit_test(test_reflink_and_hook_mixed),
        cmocka_unit_test(test_reflink_off_on_xfs),
    };
    if (argc > 1 && strcmp(argv[1], "--reflink") == 0) {
        char path[4096]; /* mkfs.xfs, losetup, mount live in sbin */
        const char *old = getenv("PATH");
        snprintf(path, sizeof path, "%s:/usr/sbin:/sbin", old ? old : "/usr/bin:/bin");
        setenv("PATH", path, 1);
        const char *why = xfs_make();
        if (why) {
            printf("SKIP: reflink capture test on a loop-mounted XFS: %s\n", why);
            xfs_remove();
            return SKIP_CODE;
        }
        int rc = cmocka_run_group_tests(xfs, NULL, NULL);
        if (xfs_remove() != 0 && rc == 0)
            rc = 1;
        return rc;
    }
    return cmocka_run_group_tests(any_fs, NULL, NULL);
}
