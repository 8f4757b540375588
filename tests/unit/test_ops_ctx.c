/* tests/unit/test_ops_ctx.c - contexts: state directory, options versions,
 * error messages, targets, crash recovery of interrupted backups. */
#include "testutil.h"

#include <harvbk.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static harvbk_target_config *file_target(const char *dir)
{
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = malloc(strlen(dir) + 8);
    sprintf(url, "file://%s", dir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    free(url);
    return cfg;
}

static void test_open_creates_private_state_dir_with_stable_id(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-open");
    char *sd = tu_path2(root, "a/b/state");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    assert_non_null(ctx);
    struct stat st;
    assert_int_equal(stat(sd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char *id = strdup(harvbk_ctx_id(ctx));
    assert_int_equal(strlen(id), 36);
    assert_string_equal(harvbk_ctx_errmsg(ctx), "");
    unsigned n = 99;
    assert_int_equal(harvbk_ctx_ops_in_progress(ctx, &n), 0);
    assert_int_equal(n, 0);
    harvbk_ctx_free(ctx);

    char *sf = tu_path2(sd, "harvbk-state.json");
    char *text = read_text(sf);
    assert_non_null(text);
    assert_non_null(strstr(text, id));
    assert_non_null(strstr(text, "\"format\":1"));
    free(text);

    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    assert_string_equal(harvbk_ctx_id(ctx), id);
    harvbk_ctx_free(ctx);
    harvbk_ctx_free(NULL);
    free(sf);
    free(id);
    free(sd);
    tu_rmrf(root);
    free(root);
}

static void test_open_refuses_bad_arguments_and_newer_state(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-bad");
    harvbk_ctx *ctx = (harvbk_ctx *)1;
    assert_int_equal(harvbk_ctx_open(&ctx, NULL, NULL), HARVBK_E_INVALID);
    assert_null(ctx);
    assert_int_equal(harvbk_ctx_open(&ctx, "", NULL), HARVBK_E_INVALID);
    assert_int_equal(harvbk_ctx_open(NULL, root, NULL), HARVBK_E_INVALID);

    char *sf = tu_path2(root, "harvbk-state.json");
    assert_int_equal(tu_write_file(sf, "{\"format\":7,\"context_id\":\"x\"}", 30), 0);
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), HARVBK_E_FORMAT);
    assert_null(ctx);
    assert_int_equal(tu_write_file(sf, "{\"format\":1", 11), 0);
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), HARVBK_E_CORRUPT);
    free(sf);
    tu_rmrf(root);
    free(root);
}

static void test_options_versions_zero_and_newer_are_refused(void **state)
{
    harvbk_ctx_options co;
    harvbk_backup_options bo;
    harvbk_restore_options ro;
    harvbk_op_options oo;
    assert_int_equal(harvbk_ctx_options_init(&co, 0), HARVBK_E_VERSION);
    assert_int_equal(harvbk_ctx_options_init(&co, 99), HARVBK_E_VERSION);
    assert_int_equal(harvbk_backup_options_init(&bo, 0), HARVBK_E_VERSION);
    assert_int_equal(harvbk_backup_options_init(&bo, 99), HARVBK_E_VERSION);
    assert_int_equal(harvbk_restore_options_init(&ro, 0), HARVBK_E_VERSION);
    assert_int_equal(harvbk_restore_options_init(&ro, 99), HARVBK_E_VERSION);
    assert_int_equal(harvbk_op_options_init(&oo, 0), HARVBK_E_VERSION);
    assert_int_equal(harvbk_op_options_init(&oo, 99), HARVBK_E_VERSION);
    assert_int_equal(harvbk_ctx_options_init(NULL, 1), HARVBK_E_INVALID);

    /* the init functions give what the INIT macros give */
    harvbk_ctx_options ci = HARVBK_CTX_OPTIONS_INIT;
    assert_int_equal(harvbk_ctx_options_init(&co, HARVBK_CTX_OPTIONS_VERSION), 0);
    assert_int_equal(co.version, ci.version);
    assert_int_equal(co.log_level, ci.log_level);
    assert_int_equal(co.log_level, HARVBK_LOG_INFO);
    assert_null(co.log_cb);
    assert_int_equal(co.threads, ci.threads);
    harvbk_backup_options bi = HARVBK_BACKUP_OPTIONS_INIT;
    assert_int_equal(harvbk_backup_options_init(&bo, HARVBK_BACKUP_OPTIONS_VERSION), 0);
    assert_int_equal(bo.version, bi.version);
    assert_int_equal(bo.flags, 0);
    assert_null(bo.changed_ranges);
    assert_null(bo.freeze_cb);
    assert_null(bo.progress_cb);
    assert_null(bo.capture_cb);
    assert_int_equal(bo.freeze_deadline_ms, 0);
    harvbk_restore_options ri = HARVBK_RESTORE_OPTIONS_INIT;
    assert_int_equal(harvbk_restore_options_init(&ro, HARVBK_RESTORE_OPTIONS_VERSION), 0);
    assert_int_equal(ro.version, ri.version);
    assert_null(ro.target_dir);
    assert_null(ro.new_vm_name);
    harvbk_op_options oi = HARVBK_OP_OPTIONS_INIT;
    assert_int_equal(harvbk_op_options_init(&oo, 1), 0);
    assert_int_equal(oo.version, oi.version);
    assert_null(oo.progress_cb);

    /* the functions that take options refuse them too, with a message */
    char *root = tu_mkdtemp("ops-ctx-ver");
    harvbk_ctx *ctx = NULL;
    co.version = 0;
    assert_int_equal(harvbk_ctx_open(&ctx, root, &co), HARVBK_E_VERSION);
    co.version = 99;
    assert_int_equal(harvbk_ctx_open(&ctx, root, &co), HARVBK_E_VERSION);
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    char *tdir = tu_path2(root, "target");
    harvbk_target_config *cfg = file_target(tdir);
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg), 0);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", "/nonexistent"), 0);
    harvbk_op *op = (harvbk_op *)1;
    bo.version = 0;
    assert_int_equal(harvbk_backup_create(&op, ctx, vm, "b1", &bo), HARVBK_E_VERSION);
    assert_null(op);
    assert_non_null(strstr(harvbk_ctx_errmsg(ctx), "version"));
    bo.version = 99;
    assert_int_equal(harvbk_backup_create(&op, ctx, vm, "b1", &bo), HARVBK_E_VERSION);
    oo.version = 99;
    assert_int_equal(harvbk_backup_verify(&op, ctx, "default", "b1", &oo), HARVBK_E_VERSION);
    assert_int_equal(harvbk_gc(&op, ctx, &oo), HARVBK_E_VERSION);
    oo.version = 0;
    assert_int_equal(harvbk_gc(&op, ctx, &oo), HARVBK_E_VERSION);
    ro.version = 99;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = "x";
    ro.target_dir = root;
    assert_int_equal(harvbk_restore_create(&op, ctx, "default", "b1", &ro), HARVBK_E_VERSION);
    ro.version = 0;
    assert_int_equal(harvbk_restore_create(&op, ctx, "default", "b1", &ro), HARVBK_E_VERSION);
    assert_int_equal(harvbk_restore_create(&op, ctx, "default", "b1", NULL), HARVBK_E_INVALID);
    assert_null(op);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    free(tdir);
    tu_rmrf(root);
    free(root);
}

static void test_state_names(void **state)
{
    assert_string_equal(harvbk_state_name(HARVBK_STATE_INPROGRESS), "InProgress");
    assert_string_equal(harvbk_state_name(HARVBK_STATE_READY), "Ready");
    assert_string_equal(harvbk_state_name(HARVBK_STATE_ERROR), "Error");
    assert_string_equal(harvbk_state_name(0), "Unknown");
}

typedef struct logbook {
    int n;
    int levels[64];
    char last[1024];
} logbook;

static void log_cb(int level, const char *message, void *payload)
{
    logbook *lb = payload;
    if (lb->n < 64)
        lb->levels[lb->n] = level;
    lb->n++;
    snprintf(lb->last, sizeof lb->last, "%s", message);
}

static void test_log_hook_gets_messages_up_to_its_level(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-log");
    logbook lb;
    memset(&lb, 0, sizeof lb);
    harvbk_ctx_options co = HARVBK_CTX_OPTIONS_INIT;
    co.log_cb = log_cb;
    co.log_payload = &lb;
    co.log_level = HARVBK_LOG_DEBUG;
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, root, &co), 0);
    assert_true(lb.n >= 1); /* "context ... opened" */
    assert_non_null(strstr(lb.last, harvbk_ctx_id(ctx)));
    int before = lb.n;
    assert_int_equal(harvbk_ctx_set_log_hook(ctx, NULL, NULL, HARVBK_LOG_DEBUG), 0);
    harvbk_vm *vm = NULL;
    harvbk_vm_new(&vm, "default", "v");
    harvbk_vm_add_volume_file(vm, "d", "/x");
    assert_int_equal(harvbk_vm_register(ctx, vm), 0); /* logs at info */
    assert_int_equal(lb.n, before);
    assert_int_equal(harvbk_ctx_set_log_hook(ctx, log_cb, &lb, HARVBK_LOG_ERROR), 0);
    assert_int_equal(harvbk_vm_unregister(ctx, "default", "v"), 0); /* info: filtered */
    assert_int_equal(lb.n, before);
    assert_int_equal(harvbk_ctx_set_log_hook(ctx, log_cb, &lb, HARVBK_LOG_INFO), 0);
    assert_int_equal(harvbk_vm_register(ctx, vm), 0);
    assert_int_equal(lb.n, before + 1);
    assert_non_null(strstr(lb.last, "default/v"));
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    tu_rmrf(root);
    free(root);
}

static void test_errmsg_is_kept_per_context_and_copied_safely(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-err");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_lookup(&vm, ctx, "default", "nope"), HARVBK_E_NOTFOUND);
    const char *msg = harvbk_ctx_errmsg(ctx);
    assert_non_null(strstr(msg, "default/nope"));
    char small[8];
    size_t full = harvbk_ctx_errmsg_copy(ctx, small, sizeof small);
    assert_int_equal(full, strlen(msg));
    assert_int_equal(strlen(small), 7);
    assert_memory_equal(small, msg, 7);
    assert_int_equal(harvbk_vm_lookup(&vm, ctx, "Bad", "x"), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_ctx_errmsg(ctx), "namespace"));
    harvbk_ctx_free(ctx);
    tu_rmrf(root);
    free(root);
}

static void test_target_set_get_check_and_persist(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-target");
    char *sd = tu_path2(root, "state");
    char *tdir = tu_path2(root, "target");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    harvbk_target_config *got = NULL;
    assert_int_equal(harvbk_ctx_get_target(ctx, &got), HARVBK_E_NOTARGET);
    assert_null(got);
    assert_int_equal(harvbk_ctx_check_target(ctx), HARVBK_E_NOTARGET);

    /* no URL; unknown scheme */
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg), HARVBK_E_INVALID);
    assert_int_equal(harvbk_ctx_set_target(ctx, NULL), HARVBK_E_INVALID);
    int rc = harvbk_target_config_set(cfg, HARVBK_TARGET_URL, "gopher://host/x");
    if (rc == 0) /* the config may already refuse it; set_target must in any case */
        assert_int_equal(harvbk_ctx_set_target(ctx, cfg), HARVBK_E_UNSUPPORTED);
    else
        assert_int_equal(rc, HARVBK_E_UNSUPPORTED);
    assert_int_equal(harvbk_ctx_get_target(ctx, &got), HARVBK_E_NOTARGET);
    harvbk_target_config_free(cfg);

    cfg = file_target(tdir);
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg), 0);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);
    char *tf = tu_path2(sd, "target.json");
    struct stat st;
    assert_int_equal(stat(tf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(harvbk_ctx_get_target(ctx, &got), 0);
    char buf[512];
    assert_int_equal(harvbk_target_config_get(got, HARVBK_TARGET_URL, buf, sizeof buf, NULL), 0);
    assert_non_null(strstr(buf, tdir));
    harvbk_target_config_free(got);
    harvbk_ctx_free(ctx);

    /* a new context on the state dir finds the target again */
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);
    assert_int_equal(harvbk_ctx_get_target(ctx, &got), 0);
    harvbk_target_config_free(got);
    harvbk_ctx_free(ctx);

    /* a store of a newer format is refused at set_target */
    char *tdir2 = tu_path2(root, "newer");
    mkdir(tdir2, 0755);
    char *cfgf = tu_path2(tdir2, "harvbk-store.json");
    const char *newer = "{\"format_major\":9,\"format_minor\":0}";
    assert_int_equal(tu_write_file(cfgf, newer, strlen(newer)), 0);
    harvbk_target_config *cfg2 = file_target(tdir2);
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg2), HARVBK_E_FORMAT);
    assert_true(strlen(harvbk_ctx_errmsg(ctx)) > 0);
    /* the old target is still the one in use */
    assert_int_equal(harvbk_ctx_get_target(ctx, &got), 0);
    assert_int_equal(harvbk_target_config_get(got, HARVBK_TARGET_URL, buf, sizeof buf, NULL), 0);
    assert_non_null(strstr(buf, tdir));
    assert_null(strstr(buf, "newer"));
    harvbk_target_config_free(got);
    harvbk_ctx_free(ctx);

    harvbk_target_config_free(cfg);
    harvbk_target_config_free(cfg2);
    free(cfgf);
    free(tdir2);
    free(tf);
    free(tdir);
    free(sd);
    tu_rmrf(root);
    free(root);
}

/* A store that vanished (unmounted or emptied directory) is reported, never
 * silently re-created by the next operation. */
static void test_vanished_store_is_an_error_not_a_new_store(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-vanish");
    char *sd = tu_path2(root, "state");
    char *tdir = tu_path2(root, "target");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    harvbk_target_config *cfg = file_target(tdir);
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg), 0);
    harvbk_ctx_free(ctx);

    tu_rmrf(tdir);
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    assert_int_equal(harvbk_ctx_check_target(ctx), HARVBK_E_TARGET);
    assert_non_null(strstr(harvbk_ctx_errmsg(ctx), "no libharvbk store"));
    /* the list answers from the catalog; a sync reports the vanished store */
    harvbk_backup_list *list = NULL;
    assert_int_equal(harvbk_backup_list_get(&list, ctx), 0);
    assert_int_equal(harvbk_backup_list_count(list), 0);
    harvbk_backup_list_free(list);
    assert_int_equal(harvbk_target_sync(ctx, NULL), HARVBK_E_TARGET);
    char *cfgf = tu_path2(tdir, "harvbk-store.json");
    struct stat st;
    assert_int_not_equal(stat(cfgf, &st), 0); /* nothing was re-created */
    /* setting the target again explicitly creates a new store */
    assert_int_equal(harvbk_ctx_set_target(ctx, cfg), 0);
    assert_int_equal(stat(cfgf, &st), 0);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);
    harvbk_ctx_free(ctx);
    harvbk_target_config_free(cfg);
    free(cfgf);
    free(tdir);
    free(sd);
    tu_rmrf(root);
    free(root);
}

/* ---- crash recovery ---- */

static void write_inprogress_record(const char *sd, const char *name)
{
    char *dir = tu_path2(sd, "backups");
    mkdir(dir, 0700);
    char *nsdir = tu_path2(dir, "default");
    mkdir(nsdir, 0700);
    char file[128];
    snprintf(file, sizeof file, "%s.json", name);
    char *p = tu_path2(nsdir, file);
    char text[1024];
    snprintf(text, sizeof text,
             "{\"namespace\":\"default\",\"name\":\"%s\",\"vm_namespace\":\"default\","
             "\"vm_name\":\"vm1\",\"state\":\"InProgress\",\"error\":\"\",\"created\":1700000000,"
             "\"logical_bytes\":1024,\"uploaded_bytes\":0,\"progress_bytes\":100,"
             "\"owner\":\"00000000-0000-4000-8000-000000000000-1-deadbeef\","
             "\"store_id\":\"00000000-0000-4000-8000-000000000001\","
             "\"volumes\":[{\"name\":\"disk0\",\"size\":1024}]}",
             name);
    assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
    free(p);
    free(nsdir);
    free(dir);
}

static char *record_text(const char *sd, const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "backups/default/%s.json", name);
    char *p = tu_path2(sd, rel);
    char *t = read_text(p);
    free(p);
    return t;
}

static void test_open_marks_dead_inprogress_records_interrupted(void **state)
{
    char *root = tu_mkdtemp("ops-ctx-recover");
    write_inprogress_record(root, "b-dead");
    write_inprogress_record(root, "b-alive");

    /* a live writer: a child process holding b-alive's lock */
    char *locks = tu_path2(root, "locks");
    mkdir(locks, 0700);
    char *lockp = tu_path2(locks, "default_b-alive.lock");
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(lockp, O_RDWR | O_CREAT, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) != 0)
            _exit(1);
        if (write(pipefd[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(pipefd[0], &c, 1), 1);

    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    harvbk_ctx_free(ctx);
    char *dead = record_text(root, "b-dead");
    char *alive = record_text(root, "b-alive");
    assert_non_null(strstr(dead, "\"state\":\"Error\""));
    assert_non_null(strstr(dead, "interrupted"));
    assert_non_null(strstr(dead, "\"error_code\":-20"));
    assert_non_null(strstr(alive, "\"state\":\"InProgress\""));
    free(dead);
    free(alive);

    /* the holder dies (kill -9): the next open recovers that one too */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    harvbk_ctx_free(ctx);
    alive = record_text(root, "b-alive");
    assert_non_null(strstr(alive, "\"state\":\"Error\""));
    assert_non_null(strstr(alive, "interrupted"));
    free(alive);

    close(pipefd[0]);
    close(pipefd[1]);
    free(lockp);
    free(locks);
    tu_rmrf(root);
    free(root);
}

/* Leftover temporaries of hb_write_file_atomic ("<file>.tmp.<pid>.<12 hex>")
 * in the state directory: open removes those of dead writers (a pid that is
 * not alive, once a short grace has passed) and any older than a day, and
 * keeps those a live writer may be renaming right now. */
static char *make_tmp(const char *sd, const char *rel, long pid, const char *hex, int64_t age)
{
    char *p = malloc(strlen(sd) + strlen(rel) + 64);
    sprintf(p, "%s/%s.tmp.%ld.%s", sd, rel, pid, hex);
    assert_int_equal(tu_write_file(p, "{\"half\":", 8), 0);
    if (age) {
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    }
    return p;
}

static void test_open_removes_dead_writers_state_temporaries(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("ops-ctx-tmp");
    char *sd = tu_path2(root, "state");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    harvbk_ctx_free(ctx);
    const char *dirs[] = { "backups/default", "snapshots/ns-1", "vms/default", "restores/x" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *d = tu_path2(sd, dirs[i]);
        char *cmd = malloc(strlen(d) + 16);
        sprintf(cmd, "mkdir -p '%s'", d);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(d);
    }
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    long dead = (long)child, me = (long)getpid();

    char *gone[] = {
        make_tmp(sd, "target.json", dead, "0123456789ab", 120),
        make_tmp(sd, "quotas.json", dead, "aaaaaaaaaaaa", 3600),
        make_tmp(sd, "backups/default/bk-1.json", dead, "bbbbbbbbbbbb", 120),
        make_tmp(sd, "snapshots/ns-1/snap-1.json", dead, "cccccccccccc", 120),
        make_tmp(sd, "vms/default/vm-1.json", dead, "dddddddddddd", 120),
        make_tmp(sd, "restores/x/r-1.json", dead, "eeeeeeeeeeee", 120),
        make_tmp(sd, "harvbk-state.json.new-0a0b0c0d", dead, "ffffffffffff", 120),
        make_tmp(sd, "target.json", me, "000000000001", 3 * 24 * 3600), /* too old */
    };
    char *kept[] = {
        make_tmp(sd, "target.json", me, "000000000002", 120),    /* a live writer */
        make_tmp(sd, "quotas.json", dead, "000000000003", 0),    /* just written */
        make_tmp(sd, "backups/default/x.json", 1, "000000000004", 120), /* init: alive */
    };
    /* not temporaries of ours: never touched */
    char *foreign[] = { tu_path2(sd, "notes.tmp.1.txt"), tu_path2(sd, "target.json.tmp.x.0123"),
                        tu_path2(sd, "backups/default/y.json.tmp.12.0123456789AB") };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        assert_int_equal(tu_write_file(foreign[i], "x", 1), 0);

    assert_int_equal(harvbk_ctx_open(&ctx, sd, NULL), 0);
    harvbk_ctx_free(ctx);
    struct stat st;
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        if (lstat(gone[i], &st) == 0)
            fail_msg("%s survived the open", gone[i]);
        free(gone[i]);
    }
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        if (lstat(kept[i], &st) != 0)
            fail_msg("%s was removed", kept[i]);
        free(kept[i]);
    }
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        assert_int_equal(lstat(foreign[i], &st), 0);
        free(foreign[i]);
    }
    free(sd);
    tu_rmrf(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_private_state_dir_with_stable_id),
        cmocka_unit_test(test_open_refuses_bad_arguments_and_newer_state),
        cmocka_unit_test(test_options_versions_zero_and_newer_are_refused),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_log_hook_gets_messages_up_to_its_level),
        cmocka_unit_test(test_errmsg_is_kept_per_context_and_copied_safely),
        cmocka_unit_test(test_target_set_get_check_and_persist),
        cmocka_unit_test(test_vanished_store_is_an_error_not_a_new_store),
        cmocka_unit_test(test_open_marks_dead_inprogress_records_interrupted),
        cmocka_unit_test(test_open_removes_dead_writers_state_temporaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
