/*
 * ops/recovery.c - crash recovery.
 *
 * When a process dies while writing a backup, three things are left behind:
 *   - its local record says InProgress (and nobody holds the record's flock);
 *   - the target may hold its temporary objects (partial uploads);
 *   - the target holds its writer lease until the lease's TTL runs out, which
 *     would make gc refuse for that long.
 * At open (and whenever a record is looked at) such records become Error
 * "interrupted"; their owner strings are remembered, and when the store they
 * belong to is next opened the owner's temporaries and lease are removed.
 * A writer may also die after its commit (the manifest) but before its record
 * said Ready: when the store is opened, "interrupted" records whose manifest
 * is there become Ready again. Ready means a manifest in the target.
 * Snapshots are recovered the same way at open, against the local snapshot
 * store, which is always at hand: an interrupted snapshot becomes Error (or
 * Ready when its manifest is there) and its writer's temporaries and lease in
 * the snapshot store are removed at once.
 * Restores killed midway are undone from their journals (restore_journal.c,
 * restore_replace.c).
 * The state directory's own files are written atomically (temporary + rename,
 * hb_write_file_atomic): a writer killed between the two leaves its
 * temporary "<file>.tmp.<pid>.<hex>" behind. Open removes those of writers
 * that are gone: the pid in the name is not alive on this host and the file
 * has not changed for HB_STATE_TMP_GRACE_S (a writer in another pid namespace
 * sharing the directory finishes its write+fsync+rename well within that), or
 * the file is older than HB_TEMP_MAX_AGE_S whatever the pid (pid reuse). A
 * live writer's temporary (our own pid included) is never touched.
 */
#include "../core/fsutil.h"
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HB_STATE_TMP_GRACE_S 60

static bool pid_alive(long pid)
{
    if (pid <= 0 || (long)(pid_t)pid != pid)
        return false;
    if (pid == (long)getpid())
        return true;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH; /* EPERM: alive, not ours */
}

/* Remove dead writers' temporaries in the directory dfd (not recursive; links
 * and other non-regular files are left alone). */
static void sweep_tmp_dir(harvbk_ctx *ctx, int dfd, const char *where, int64_t now)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid = 0;
        if (!hb_atomic_tmp_parse(de->d_name, &pid))
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        int64_t age = now - (int64_t)st.st_mtim.tv_sec;
        bool dead = !pid_alive(pid) && age >= HB_STATE_TMP_GRACE_S;
        if (!dead && age < HB_TEMP_MAX_AGE_S)
            continue;
        if (unlinkat(dfd, de->d_name, 0) == 0)
            hb_log_info(&ctx->log, "removed the leftover temporary %s%s%s of a writer that "
                        "is gone (pid %ld)", where, *where ? "/" : "", de->d_name, pid);
        else if (errno != ENOENT)
            hb_log_warn(&ctx->log, "cannot remove the leftover temporary %s%s%s: %s", where,
                        *where ? "/" : "", de->d_name, strerror(errno));
    }
    closedir(d);
}

/* The state directory's atomic-file temporaries: the top level and the
 * per-namespace directories below the record, VM and journal trees. */
static void sweep_state_temporaries(harvbk_ctx *ctx)
{
    int top = open(ctx->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0)
        return;
    int64_t now = hb_now();
    sweep_tmp_dir(ctx, top, "", now);
    static const char *const trees[] = { HB_RECORDS_DIR, HB_SNAP_RECORDS_DIR, HB_VMS_DIR,
                                         HB_RESTORES_DIR };
    for (size_t i = 0; i < HB_ARRAY_LEN(trees); i++) {
        int tfd = openat(top, trees[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tfd < 0)
            continue;
        int fd = dup(tfd);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d && fd >= 0)
            close(fd);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (!hb_name_valid(de->d_name))
                continue;
            int nfd = openat(tfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd < 0)
                continue;
            char *where = hb_asprintf("%s/%s", trees[i], de->d_name);
            sweep_tmp_dir(ctx, nfd, where ? where : trees[i], now);
            hb_free(where);
            close(nfd);
        }
        if (d)
            closedir(d);
        close(tfd);
    }
    close(top);
}

int hb_recovery_remember(harvbk_ctx *ctx, const char *owner, const char *store_id)
{
    pthread_mutex_lock(&ctx->mu);
    for (hb_pending_owner *p = ctx->pending; p; p = p->next) {
        if (strcmp(p->owner, owner) == 0 && strcmp(p->store_id, store_id) == 0) {
            pthread_mutex_unlock(&ctx->mu);
            return 0;
        }
    }
    hb_pending_owner *p = hb_calloc(1, sizeof *p);
    if (p && (!(p->owner = hb_strdup(owner)) || !(p->store_id = hb_strdup(store_id)))) {
        hb_free(p->owner);
        hb_free(p);
        p = NULL;
    }
    if (!p) {
        pthread_mutex_unlock(&ctx->mu);
        return HARVBK_E_NOMEM;
    }
    p->next = ctx->pending;
    ctx->pending = p;
    pthread_mutex_unlock(&ctx->mu);
    return 0;
}

void hb_recovery_cleanup_store(harvbk_ctx *ctx, hb_store *st)
{
    /* records made Error before this store could be looked at */
    hb_recovery_fix_committed(ctx, st);
    hb_recovery_cleanup_pending(ctx, st);
}

void hb_recovery_cleanup_pending(harvbk_ctx *ctx, hb_store *st)
{
    /* take this store's entries out of the list, then work without the lock */
    hb_pending_owner *mine = NULL;
    pthread_mutex_lock(&ctx->mu);
    for (hb_pending_owner **pp = &ctx->pending; *pp;) {
        hb_pending_owner *p = *pp;
        if (strcmp(p->store_id, st->id) == 0) {
            *pp = p->next;
            p->next = mine;
            mine = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&ctx->mu);

    for (hb_pending_owner *p = mine; p; p = p->next) {
        hb_err e;
        hb_err_clear(&e);
        if (st->t->read_only) { /* nothing may be written there, not even a removal */
            hb_log_info(&ctx->log, "target %s is read-only: leftovers of interrupted writer "
                        "%s stay", st->t->display, p->owner);
        } else if (strcmp(p->owner, ctx->owner) != 0) {
            if (hb_target_cleanup(st->t, p->owner, HB_TEMP_MAX_AGE_S, &e) != 0)
                hb_log_warn(&ctx->log, "cannot remove temporaries of interrupted writer %s: %s",
                            p->owner, e.msg);
            static const char *const roles[] = { "writer", "gc" };
            for (size_t i = 0; i < HB_ARRAY_LEN(roles); i++) {
                char *key = hb_asprintf("locks/%s-%s.json", roles[i], p->owner);
                hb_err_clear(&e);
                if (key && hb_target_del(st->t, key, &e) != 0)
                    hb_log_warn(&ctx->log, "cannot remove stale lease %s: %s", key, e.msg);
                hb_free(key);
            }
            hb_log_info(&ctx->log, "removed leftovers of interrupted writer %s from %s",
                        p->owner, st->t->display);
        }
    }
    while (mine) {
        hb_pending_owner *p = mine;
        mine = p->next;
        hb_free(p->owner);
        hb_free(p->store_id);
        hb_free(p);
    }
}

static int scan_one(hb_record *r, void *ud)
{
    harvbk_ctx *ctx = ud;
    hb_err e;
    hb_err_clear(&e);
    if (hb_record_recover(ctx, r, NULL, &e) < 0)
        hb_log_warn(&ctx->log, "cannot recover backup record %s/%s: %s", r->ns, r->name, e.msg);
    return 0;
}

typedef struct snap_scan {
    harvbk_ctx *ctx;
    hb_store_ref *ref;   /* opened on the first interrupted snapshot */
    bool tried;
} snap_scan;

static int scan_snap_one(hb_record *r, void *ud)
{
    snap_scan *ss = ud;
    if (r->state != HARVBK_STATE_INPROGRESS)
        return 0;
    hb_err e;
    hb_err_clear(&e);
    if (!ss->tried) {
        ss->tried = true;
        if (hb_snapstore_open(ss->ctx, NULL, false, &ss->ref, &e) != 0)
            hb_log_warn(&ss->ctx->log, "cannot open the snapshot store to recover interrupted "
                        "snapshots: %s", e.msg);
        hb_err_clear(&e);
    }
    if (hb_record_recover(ss->ctx, r, ss->ref ? ss->ref->st : NULL, &e) < 0)
        hb_log_warn(&ss->ctx->log, "cannot recover snapshot record %s/%s: %s", r->ns, r->name,
                    e.msg);
    return 0;
}

int hb_recovery_scan(harvbk_ctx *ctx, hb_err *e)
{
    sweep_state_temporaries(ctx);
    int rc = hb_record_foreach(ctx, scan_one, ctx, e);
    if (rc == 0) {
        snap_scan ss = { ctx, NULL, false };
        rc = hb_record_foreach_k(ctx, HB_ENTRY_SNAPSHOT, scan_snap_one, &ss, e);
        if (ss.ref) { /* the dead snapshot writers' temporaries and leases */
            hb_recovery_cleanup_pending(ctx, ss.ref->st);
            hb_ctx_store_release(ctx, ss.ref);
        }
    }
    if (rc == 0)
        rc = hb_rjournal_scan(ctx, e);
    return rc;
}
