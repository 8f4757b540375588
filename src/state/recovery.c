/*
 * state/recovery.c - crash recovery.
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
 * Restores killed midway are undone from their journals (rjournal.c,
 * rreplace.c).
 * The state directory's own files are written atomically (temporary + rename,
 * hb_write_file_atomic): a writer killed between the two leaves its
 * temporary "<file>.tmp.<pid>.<hex>" behind. Open removes those of writers
 * that are gone: the pid in the name is not alive on this host and the file
 * has not changed for HB_STATE_TMP_GRACE_S (a writer in another pid namespace
 * sharing the directory finishes its write+fsync+rename well within that), or
 * the file is older than HB_TEMP_MAX_AGE_S whatever the pid (pid reuse). A
 * live writer's temporary (our own pid included) is never touched.
 */
#include "recovery.h"
#include "../core/fsutil.h"
#include "locks.h"

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
static void sweep_tmp_dir(hb_state *s, int dfd, const char *where, int64_t now)
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
            hb_log_info(s->log, "removed the leftover temporary %s%s%s of a writer that "
                        "is gone (pid %ld)", where, *where ? "/" : "", de->d_name, pid);
        else if (errno != ENOENT)
            hb_log_warn(s->log, "cannot remove the leftover temporary %s%s%s: %s", where,
                        *where ? "/" : "", de->d_name, strerror(errno));
    }
    closedir(d);
}

/* The state directory's atomic-file temporaries: the top level and the
 * per-namespace directories below the record, VM and journal trees. */
void hb_recovery_sweep_temporaries(hb_state *s)
{
    int top = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0)
        return;
    int64_t now = hb_now();
    sweep_tmp_dir(s, top, "", now);
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
            sweep_tmp_dir(s, nfd, where ? where : trees[i], now);
            hb_free(where);
            close(nfd);
        }
        if (d)
            closedir(d);
        close(tfd);
    }
    close(top);
}

int hb_recovery_remember(hb_state *s, const char *owner, const char *store_id)
{
    pthread_mutex_lock(&s->pend_mu);
    for (hb_pending_owner *p = s->pending; p; p = p->next) {
        if (strcmp(p->owner, owner) == 0 && strcmp(p->store_id, store_id) == 0) {
            pthread_mutex_unlock(&s->pend_mu);
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
        pthread_mutex_unlock(&s->pend_mu);
        return HARVBK_E_NOMEM;
    }
    p->next = s->pending;
    s->pending = p;
    pthread_mutex_unlock(&s->pend_mu);
    return 0;
}

void hb_recovery_cleanup_store(hb_state *s, hb_store *st, const char *self_owner)
{
    /* records made Error before this store could be looked at */
    hb_recovery_fix_committed(s, st);
    hb_recovery_cleanup_pending(s, st, self_owner);
}

void hb_recovery_cleanup_pending(hb_state *s, hb_store *st, const char *self_owner)
{
    /* take this store's entries out of the list, then work without the lock */
    hb_pending_owner *mine = NULL;
    pthread_mutex_lock(&s->pend_mu);
    for (hb_pending_owner **pp = &s->pending; *pp;) {
        hb_pending_owner *p = *pp;
        if (strcmp(p->store_id, st->id) == 0) {
            *pp = p->next;
            p->next = mine;
            mine = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&s->pend_mu);

    for (hb_pending_owner *p = mine; p; p = p->next) {
        hb_err e;
        hb_err_clear(&e);
        if (st->t->read_only) { /* nothing may be written there, not even a removal */
            hb_log_info(s->log, "target %s is read-only: leftovers of interrupted writer "
                        "%s stay", st->t->display, p->owner);
        } else if (strcmp(p->owner, self_owner) != 0) {
            if (hb_target_cleanup(st->t, p->owner, HB_TEMP_MAX_AGE_S, &e) != 0)
                hb_log_warn(s->log, "cannot remove temporaries of interrupted writer %s: %s",
                            p->owner, e.msg);
            static const char *const roles[] = { "writer", "gc" };
            for (size_t i = 0; i < HB_ARRAY_LEN(roles); i++) {
                char *key = hb_asprintf("locks/%s-%s.json", roles[i], p->owner);
                hb_err_clear(&e);
                if (key && hb_target_del(st->t, key, &e) != 0)
                    hb_log_warn(s->log, "cannot remove stale lease %s: %s", key, e.msg);
                hb_free(key);
            }
            hb_log_info(s->log, "removed leftovers of interrupted writer %s from %s",
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

/* ---- recovery of one record ---- */

int hb_backup_committed(hb_store *st, const char *ns, const char *name, hb_err *e)
{
    return hb_entry_committed(st, HB_ENTRY_BACKUP, ns, name, e);
}

int hb_entry_committed(hb_store *st, int kind, const char *ns, const char *name, hb_err *e)
{
    char *key = hb_key_manifest(hb_entry_dir(kind), ns, name);
    if (!key)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    uint64_t size;
    int rc = hb_target_head(st->t, key, &size, e);
    hb_free(key);
    if (rc == 0)
        return 1;
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        return 0;
    }
    return rc;
}

static void record_make_ready(hb_record *r)
{
    r->state = HARVBK_STATE_READY;
    r->commit_unknown = false;
    r->progress_bytes = r->logical_bytes;
    if (hb_record_set_error(r, 0, "") != 0) { /* keep the old text rather than fail */
        r->error_code = 0;
    }
}

int hb_record_recover(hb_state *s, hb_record *r, hb_store *st, hb_err *e)
{
    if (r->state != HARVBK_STATE_INPROGRESS)
        return 0;
    int fd;
    hb_err le;
    hb_err_clear(&le);
    int rc = hb_reclock_try_k(s, r->kind, r->ns, r->name, &fd, &le);
    if (rc == HARVBK_E_BUSY)
        return 0; /* its writer is alive */
    if (rc)
        return hb_seterr(e, le.code, "%s", le.msg);
    /* We hold the lock: re-read, the record may have changed meanwhile. */
    hb_record cur;
    rc = hb_record_read_k(s, r->kind, r->ns, r->name, &cur, e);
    int changed = 0;
    if (rc == 0 && cur.state == HARVBK_STATE_INPROGRESS) {
        /* The writer may have died between the commit (the manifest) and
         * saving the record: then the backup is Ready, not interrupted. */
        int committed = -1; /* unknown */
        if (st && cur.store_id && strcmp(cur.store_id, st->id) == 0) {
            hb_err ce;
            hb_err_clear(&ce);
            committed = hb_entry_committed(st, cur.kind, cur.ns, cur.name, &ce);
            if (committed < 0)
                hb_log_warn(s->log, "%s %s/%s: %s", hb_entry_word(cur.kind), cur.ns,
                            cur.name, ce.msg);
        }
        if (committed > 0) {
            record_make_ready(&cur);
        } else {
            /* unknown: Error for now, looked at again when its store is opened */
            cur.commit_unknown = committed < 0;
            cur.state = HARVBK_STATE_ERROR;
            rc = hb_record_set_error(&cur, HARVBK_E_INTERRUPTED,
                                     cur.kind == HB_ENTRY_SNAPSHOT
                                         ? "interrupted: the process writing this snapshot "
                                           "ended before it completed"
                                         : "interrupted: the process writing this backup ended "
                                           "before it completed");
            if (rc)
                hb_seterr(e, rc, NULL);
        }
        if (rc == 0)
            rc = hb_record_write(s, &cur, e);
        if (rc == 0 && cur.owner && *cur.owner && cur.store_id && *cur.store_id)
            rc = hb_recovery_remember(s, cur.owner, cur.store_id);
        if (rc == 0) {
            hb_log_warn(s->log, "%s %s/%s was interrupted (writer %s)%s",
                        hb_entry_word(cur.kind), cur.ns, cur.name, cur.owner,
                        committed > 0 ? " after its commit; it is Ready" : "; marked Error");
            changed = 1;
        }
    }
    hb_reclock_release_k(s, r->kind, r->ns, r->name, fd);
    if (rc == 0) {
        hb_record_clear(r);
        *r = cur;
    } else {
        hb_record_clear(&cur);
    }
    if (rc == HARVBK_E_NOTFOUND) { /* removed meanwhile: nothing to recover */
        hb_err_clear(e);
        rc = 0;
    }
    return rc ? rc : changed;
}

/* ---- committed backups that recovery marked Error ---- */

typedef struct fix_ud {
    hb_state *s;
    hb_store *st;
} fix_ud;

static int fix_one(hb_record *r, void *ud)
{
    fix_ud *fc = ud;
    if (r->state != HARVBK_STATE_ERROR || !r->commit_unknown || !r->store_id ||
        strcmp(r->store_id, fc->st->id) != 0)
        return 0;
    hb_err e;
    hb_err_clear(&e);
    int committed = hb_backup_committed(fc->st, r->ns, r->name, &e);
    if (committed < 0)
        return 0; /* still unknown: next time */
    int fd;
    if (hb_reclock_try(fc->s, r->ns, r->name, &fd, &e) != 0)
        return 0; /* a new backup of that name runs: it is not ours to touch */
    hb_record cur;
    if (hb_record_read(fc->s, r->ns, r->name, &cur, &e) == 0) {
        if (cur.state == HARVBK_STATE_ERROR && cur.commit_unknown && cur.store_id &&
            strcmp(cur.store_id, fc->st->id) == 0) {
            if (committed)
                record_make_ready(&cur);
            else
                cur.commit_unknown = false;
            if (hb_record_write(fc->s, &cur, &e) != 0)
                hb_log_warn(fc->s->log, "%s", e.msg);
            else if (committed)
                hb_log_info(fc->s->log, "backup %s/%s was committed before its writer "
                            "ended: Ready", cur.ns, cur.name);
            /* its writer's temporaries and lease, whichever process found it dead */
            if (cur.owner && *cur.owner)
                hb_recovery_remember(fc->s, cur.owner, cur.store_id);
        }
        hb_record_clear(&cur);
    }
    hb_reclock_release(fc->s, r->ns, r->name, fd);
    return 0;
}

void hb_recovery_fix_committed(hb_state *s, hb_store *st)
{
    fix_ud fc = { s, st };
    hb_err e;
    hb_err_clear(&e);
    if (hb_record_foreach(s, fix_one, &fc, &e) < 0)
        hb_log_warn(s->log, "cannot check interrupted backups: %s", e.msg);
}

/* ---- the scan at open ---- */

typedef struct scan_ud {
    hb_state *s;
    int kind;
    hb_recovery_store_fn open_store;
    void *open_ud;
    hb_store *st;        /* from open_store, on the first InProgress record */
    bool tried;
} scan_ud;

static int scan_one(hb_record *r, void *ud)
{
    scan_ud *ss = ud;
    if (r->state != HARVBK_STATE_INPROGRESS)
        return 0;
    hb_err e;
    hb_err_clear(&e);
    if (ss->open_store && !ss->tried) {
        ss->tried = true;
        ss->st = ss->open_store(ss->open_ud);
    }
    if (hb_record_recover(ss->s, r, ss->st, &e) < 0)
        hb_log_warn(ss->s->log, "cannot recover %s record %s/%s: %s", hb_entry_word(ss->kind),
                    r->ns, r->name, e.msg);
    return 0;
}

int hb_recovery_scan_records(hb_state *s, int kind, hb_recovery_store_fn open_store, void *ud,
                             hb_err *e)
{
    scan_ud ss = { s, kind, open_store, ud, NULL, false };
    return hb_record_foreach_k(s, kind, scan_one, &ss, e);
}
